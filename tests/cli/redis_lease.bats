#!/usr/bin/env bats
# The lease watchdog of the Redis store: what it stops when a lease is
# lost (the command's whole tree, under a terminal it leads too), a job
# stopped by Ctrl-Z (kept, not killed), and pkill of gaterun. Real
# redis-server processes on free loopback ports (no persistence, stopped
# by PID); hosts simulated by GATERUN_HOST; terminals are a pty of
# python3 and a tmux pane.

load common
load redis

setup() {
	redis_setup
	"$G" -g farm --limit 1 >/dev/null
	# Run by the next host: "after" if every PID in the files named is
	# gone or a zombie when it starts, else "during".
	cat >check.sh <<-'EOF'
		for p in $(cat "$@"); do
			s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
			s=${s##*) }
			[ "${s%% *}" = Z ] || { echo during > b.ran; exit 0; }
		done
		echo after > b.ran
	EOF
}

# Run "$@" in the background as a session leader on a new terminal (a
# pty, as under ssh -t): its PID in pty.pid, what it writes there in
# pty.out, its exit status in pty.rc (-N: killed by signal N).
pty_run() {
	bg python3 -c '
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
with open("pty.pid", "w") as f:
    f.write(str(pid))
with open("pty.out", "wb") as out:
    while True:
        try:
            b = os.read(fd, 4096)
        except OSError:
            break
        if not b:
            break
        out.write(b)
        out.flush()
st = os.waitpid(pid, 0)[1]
with open("pty.rc.new", "w") as f:
    f.write(str(os.waitstatus_to_exitcode(st)))
os.rename("pty.rc.new", "pty.rc")
' "$@"
}

# 0 if process $1 is stopped (state T).
stopped() {
	[ "$(proc_state "$1")" = T ]
}

# The lease end (server ms) of host A's record of gate farm; the server's
# clock now (ms).
lease_end() {
	redis-cli -p "$RPORT" get gaterun:gate:farm |
		awk '$1 == "l" && $6 == "A" { print $5; exit }'
}
server_ms() {
	redis-cli -p "$RPORT" time | { read -r s; read -r u; echo $((s * 1000 + u / 1000)); }
}

@test "a lease lost under a terminal gaterun leads (command in its group): the whole tree is stopped before another host gets in" {
	# Failed before: the watchdog signalled the command's PID alone (it
	# leads no group here); its child ran on next to B.
	pty_run env GATERUN_HOST=A "$G" -g farm --lease 3 -- \
		sh -c 'trap "" HUP; sh -c "echo \$\$ > kid.pid; exec sleep 600" & echo $$ > a.pid; wait'
	until_true '[ -s pty.pid ] && [ -s a.pid ] && [ -s kid.pid ] && [ "$(active farm)" -eq 1 ]'
	lead=$(cat pty.pid)
	[ "$(ps -o sid= -p "$lead" | tr -d ' ')" = "$lead" ]
	[ "$(ps -o pgid= -p "$(cat a.pid)" | tr -d ' ')" = "$lead" ]
	on_host B -- sh check.sh a.pid kid.pid
	b=$BG
	until_true '[ "$(waiting farm)" -eq 1 ]'
	kill -STOP "$RPID"
	until_true 'ended "$(cat a.pid)"' 2000
	kill -CONT "$RPID"
	wait_status "$b"
	[ "$status" -eq 0 ]
	[ "$(cat b.ran)" = after ]
	# gaterun died of the command's SIGTERM, as the command did.
	until_true '[ -s pty.rc ]' 2000
	[ "$(cat pty.rc)" = -15 ]
	grep -q "lease could not be renewed in time: stopping the command" pty.out
}

@test "a lease lost: an orphan the command moved out of its group (setsid) is stopped too, before another host gets in" {
	# Failed before: TERM and KILL went to the command's group alone; the
	# setsid orphan (below the wrapper, a subreaper) ran on next to B.
	on_host A --lease 3 -- sh -c '(setsid sh -c "echo \$\$ > kid.pid; exec sleep 600" &); echo $$ > a.pid; exec sleep 600'
	a=$BG
	until_true '[ -s a.pid ] && [ -s kid.pid ] && [ "$(active farm)" -eq 1 ]'
	[ "$(ps -o ppid= -p "$(cat kid.pid)" | tr -d ' ')" = "$a" ]
	on_host B -- sh check.sh a.pid kid.pid
	b=$BG
	until_true '[ "$(waiting farm)" -eq 1 ]'
	kill -STOP "$a"
	wait_status "$b"
	[ "$status" -eq 0 ]
	[ "$(cat b.ran)" = after ]
	kill -CONT "$a"
	wait_status "$a"
	[ "$status" -eq 143 ]
}

@test "Ctrl-Z of a job at an interactive shell keeps its slot past its lease (renewed while stopped), and fg resumes it" {
	# Failed before: the stopped wrapper could not renew, its watchdog
	# KILLed the stopped command (fg: "Killed", 137) and B got the slot.
	tmux_start env -i PATH="$PATH" HOME="$BATS_TEST_TMPDIR" TERM=screen \
		GATERUN_STORE="$GATERUN_STORE" GATERUN_CONF="$GATERUN_CONF" \
		GATERUN_HOST=A G="$G" PS1='P> ' bash --norc --noprofile -i
	until_true 'screen | grep -q "^P>"'
	type_line '"$G" -g farm --lease 3 -- sh -c '\''echo $$ > a.pid; until [ -e go ]; do sleep 0.05; done; exit 7'\'
	until_true '[ -s a.pid ] && [ "$(active farm)" -eq 1 ]'
	on_host B -- sh -c 'echo ran > b.ran'
	b=$BG
	until_true '[ "$(waiting farm)" -eq 1 ]'
	press C-z
	until_true 'screen | grep -qE "^\[1\]\+ +Stopped"'
	stopped "$(cat a.pid)"
	end=$(lease_end)
	[ -n "$end" ]
	# A second past the lease the wrapper had when it stopped.
	until_true '[ "$(server_ms)" -gt $((end + 1000)) ]'
	stopped "$(cat a.pid)"
	[ ! -e b.ran ]
	[ "$(status_field '.slots[0].host' farm)" = A ]
	[ "$(lease_end)" -gt "$(server_ms)" ]
	touch go
	type_line 'fg; echo "fg-rc=$?"'
	until_true 'screen | grep -q "^fg-rc=7$"'
	wait_status "$b"
	[ "$status" -eq 0 ]
	[ -e b.ran ]
}

# Kill (or stop) with signal $1 what pkill gaterun and pkill -f gaterun
# would find of the job of wrapper $2: itself, and its children named so.
pkill_job() {
	local p
	for p in "$2" $(pgrep -P "$2"); do
		if grep -q gaterun "/proc/$p/comm" ||
			tr '\0' ' ' <"/proc/$p/cmdline" | grep -q gaterun; then
			kill "-$1" "$p"
		fi
	done
}

@test "pkill -9 gaterun (by name or command line) leaves the watchdog, which stops the command before another host gets in" {
	# Failed before: the watchdog was named gaterun too and died with the
	# wrapper; the command ran on past its lease, next to B.
	termable_a 10
	until_true '[ -n "$(others_of "$a" "$(cat a.pid)")" ]'
	dog=$(others_of "$a" "$(cat a.pid)")
	name=$(ps -o comm= -p "$dog")
	args=$(ps -o args= -p "$dog")
	after_a
	pkill_job KILL "$a"
	wait_status "$b"
	[ "$status" -eq 0 ]
	[ "$(cat b.ran)" = after ]
	until_true 'ended "$dog"'
	[ "$name" = gate-watchdog ]
	[[ "$args" == "gate-watchdog: lease of 'farm' (wrapper $a, command "* ]]
}

@test "kill -STOP of what pgrep gaterun finds does not stop the watchdog: the command is stopped before another host gets in" {
	# Failed before: the watchdog was stopped with the wrapper, and B got
	# in at the lease end while the command still ran.
	termable_a 10
	until_true '[ -n "$(pgrep -P "$a")" ]'
	after_a
	pkill_job STOP "$a"
	wait_status "$b"
	pkill_job CONT "$a"
	[ "$status" -eq 0 ]
	[ "$(cat b.ran)" = after ]
	wait_status "$a"
	[ "$status" -eq 3 ]
}

@test "a SIGSTOPped watchdog is continued by its wrapper, never taken for dead: one watchdog, and the command runs on past the lease it knew" {
	# Failed before: the wrapper took it for dead and started a second
	# one; the first, once continued, stopped the command at the lease
	# end it knew, renewed since (143).
	on_host A --lease 3 -- sh -c 'echo $$ > a.pid; until [ -e go ]; do sleep 0.05; done; exit 7'
	a=$BG
	until_true '[ -s a.pid ] && [ "$(active farm)" -eq 1 ]'
	until_true '[ -n "$(others_of "$a" "$(cat a.pid)")" ]'
	dog=$(others_of "$a" "$(cat a.pid)")
	end=$(lease_end)
	kill -STOP "$dog"
	until_true 'grep -q "watchdog ($dog) was stopped (SIGSTOP): continuing it" bg.out || grep -q "watchdog is gone" bg.out'
	kill -CONT "$dog"
	# A second past the lease end the watchdog knew when stopped.
	until_true '[ "$(server_ms)" -gt $((end + 1000)) ]'
	[ "$(others_of "$a" "$(cat a.pid)")" = "$dog" ]
	touch go
	wait_status "$a"
	[ "$status" -eq 7 ]
	run ! grep -q "watchdog is gone" bg.out
	grep -q "watchdog ($dog) was stopped (SIGSTOP): continuing it, as it stops the command if the lease ends" bg.out
}

# Signal $1 to process $2 and everything below it, parents first.
sig_tree() {
	local c
	kill "-$1" "$2" 2>/dev/null || return 0
	for c in $(pgrep -P "$2"); do
		sig_tree "$1" "$c"
	done
}

# The most jobs seen running at once in heartbeat log $1 ("beat NAME"
# lines): a job runs from its first beat to its last.
hb_overlap() {
	awk '{ if (!($2 in f)) f[$2] = NR; l[$2] = NR }
	END { for (i = 1; i <= NR; i++) { n = 0
		for (k in f) if (f[k] <= i && i <= l[k]) n++
		if (n > m) m = n }
	print m + 0 }' "$1"
}

@test "a host suspended past its lease (CLOCK_MONOTONIC stood still): on resume its command is stopped at once, its record not written back beside the holder admitted meanwhile" {
	# Failed before (N1 of brk-redis4): leases were timed on
	# CLOCK_MONOTONIC, which a suspend stops. The resumed wrapper took
	# its record for "dropped though renewed in time" and wrote it back
	# beside B (2/1 active), its watchdog saw no lease end, and the
	# command ran on next to B. A suspend is simulated: A's processes are
	# SIGSTOPped, then a preloaded shim (monoshift.c) takes the time they
	# were stopped off their CLOCK_MONOTONIC, and all are continued. The
	# command beats only once the test says it is awake: on a real
	# resume it runs until the watchdog's first look, and here that look
	# must come without its help.
	command -v cc >/dev/null || skip "a C compiler is needed for the clock shim"
	cc -shared -fPIC -o monoshift.so "$BATS_TEST_DIRNAME/monoshift.c" -ldl
	echo 0 > mono.shift
	bg env GATERUN_HOST=A LD_PRELOAD="$PWD/monoshift.so" \
		MONOSHIFT_FILE="$PWD/mono.shift" \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		"$G" -g farm --lease 3 -- sh -c 'echo $$ > a.pid; n=0
			while [ $n -lt 300 ]; do
				[ -e asleep ] || echo "beat A" >> hb.log
				sleep 0.05; n=$((n + 1))
			done'
	a=$BG
	until_true '[ -s a.pid ] && grep -q "beat A" hb.log'
	until_true '[ -n "$(others_of "$a" "$(cat a.pid)")" ]'
	dog=$(others_of "$a" "$(cat a.pid)")
	cmd=$(cat a.pid)
	# Host A goes to sleep: its wrapper, watchdog and command.
	touch asleep
	t0=$(date +%s%N)
	kill -STOP "$a" "$dog"
	sig_tree STOP "$cmd"
	on_host B -- sh -c 'n=0; until [ -e b.stop ] || [ $n -ge 600 ]; do echo "beat B" >> hb.log; sleep 0.05; n=$((n + 1)); done'
	b=$BG
	# B gets in when A's lease ends on the server.
	until_true 'grep -q "beat B" hb.log' 2000
	# A wakes, its monotonic clock short of the time it slept.
	echo $(($(date +%s%N) - t0)) > mono.shift
	sig_tree CONT "$cmd"
	kill -CONT "$dog" "$a"
	# The watchdog stopped the command (before: A's record came back).
	until_true 'ended "$cmd" || [ -n "$(lease_end)" ]'
	rm asleep
	until_true 'ended "$a"' 2000
	wait_status "$a"
	[ "$status" -eq 143 ] || { cat bg.out; false; }
	grep -q "lease could not be renewed in time: stopping the command" bg.out
	run ! grep -q "though renewed in time" bg.out
	# The watchdog that slept did it (the wrapper saw it neither stopped
	# nor gone, and started no other).
	run ! grep -q "watchdog is gone" bg.out
	# Only B's record is in the key, and the gate is 1/1.
	[ -z "$(lease_end)" ]
	[ "$(redis-cli -p "$RPORT" get gaterun:gate:farm | grep -c '^l ')" -eq 1 ]
	"$G" -g farm --status | grep -q "1/1 active"
	[ "$(status_field '.slots[0].host' farm)" = B ]
	[ "$(hb_overlap hb.log)" -eq 1 ] || { uniq -c hb.log; false; }
	touch b.stop
	wait_status "$b"
	[ "$status" -eq 0 ]
}
