# fish completion for gaterun(1)

function __gaterun_gates
    set -l dir $GATERUN_DIR
    if test -z "$dir"
        if test (id -u) -eq 0
            set dir /run/gaterun
        else
            set dir /tmp/gaterun-(id -u)
        end
    end
    for f in $dir/*.gate
        basename $f .gate
    end
end

# Options stop at the command: complete it and its own arguments after.
complete -c gaterun -x -a '(__fish_complete_subcommand)' -n 'not __fish_seen_subcommand_from --'
complete -c gaterun -s g -l gate -x -a '(__gaterun_gates)' -d 'gate to use'
complete -c gaterun -s n -l no-wait -d 'fail at once when the gate is full'
complete -c gaterun -s w -l wait -x -d 'wait at most SECONDS'
complete -c gaterun -s E -l conflict-exit-code -x -d 'exit code when no slot'
complete -c gaterun -s x -l exec -d 'become the command once the slot is taken'
complete -c gaterun -s e -l lease -x -d 'Redis store: lease of a record (seconds)'
complete -c gaterun -s N -l weight -x -d 'take K slots at once'
complete -c gaterun -s p -l priority -x -d 'served before lower priorities'
complete -c gaterun -s u -l unique -x -d 'exit 75 if a request with KEY is queued or running'
complete -c gaterun -s U -l unique-join -x -d 'wait for the run with KEY, exit with its status'
complete -c gaterun -s F -l min-mem -x -d 'start only while MemAvailable is at least SIZE (K M G T, or PCT%)'
complete -c gaterun -s I -l max-pressure -x -a 'memory: cpu: io:' -d 'start only while PSI some avg10 is at most [RES:]PCT'
complete -c gaterun -s O -l max-load -x -d 'start only while the 1-minute load is at most LOAD'
complete -c gaterun -s J -l jobserver -d 'serve the build a jobserver of the gate\'s slots (=auto, pipe, fifo)'
complete -c gaterun -s s -l status -d 'show slots, PIDs, utilization and waiters'
complete -c gaterun -s j -l json -d 'print as JSON'
complete -c gaterun -s A -l all -d 'every gate of the state directory'
complete -c gaterun -s c -l check -d 'health check as a Nagios plugin'
complete -c gaterun -s W -l warn -x -d '--check warning threshold, percent'
complete -c gaterun -s C -l crit -x -d '--check critical threshold, percent'
complete -c gaterun -s M -l max-wait -x -d '--check: longest acceptable wait'
complete -c gaterun -s m -l metrics -d 'Prometheus text format'
complete -c gaterun -s L -l log -d 'log events to syslog'
complete -c gaterun -s P -l persist -d 'with --limit: save it in the configuration file'
complete -c gaterun -s R -l parent -x -a '(__gaterun_gates)' -d 'with --limit: the parent gate'
complete -c gaterun -l watch -d 'redraw --status on every change'
complete -c gaterun -s l -l limit -x -d 'set the limit (0 pauses)'
complete -c gaterun -s K -l kill-all -d 'stop every running command of the gate'
complete -c gaterun -s S -l signal -x -a '(string replace SIG "" (__fish_make_completion_signals | string replace -r "\t.*" ""))' -d 'signal for --kill-all'
complete -c gaterun -s G -l grace -x -d 'seconds before SIGKILL'
complete -c gaterun -s a -l is-active -x -a '(__fish_complete_pids)' -d 'exit 0 if PID runs in a slot'
complete -c gaterun -s h -l help -d 'show help'
complete -c gaterun -s V -l version -d 'show version'
