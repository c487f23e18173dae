#!/usr/bin/env bats
# Which processes --kill-all may signal (only those a wrapper of this PID
# namespace recorded; never itself or its ancestors), and how --status
# shows a holder that is stopped or whose command has not started.

load common

# Run script $1 as PID 1 of a PID namespace with its own /proc (root only):
# whatever a kill-all there signals, even a broken one, nothing outside the
# sandbox can be hit, and the sandbox dies with unshare (--kill-child).
sandbox() {
	[ "$(id -u)" -eq 0 ] || skip "needs root for PID namespaces"
	unshare -p -f --mount-proc true 2>/dev/null ||
		skip "no PID namespaces here"
	run env G="$G" timeout 60 unshare -p -f --mount-proc --kill-child \
		bash -c "$1"
	echo "$output"
}

@test "a wrapper whose /proc is another PID namespace's refuses to record (125)" {
	# Inside, unshare -p -f without --mount-proc: the wrapper is PID 1 of
	# a new namespace, /proc is the sandbox's, whose PID 1 is not it.
	sandbox '
		unshare -p -f "$G" -g k -- touch ran; echo "rc=$?"
		"$G" -g k --status --json | jq -c "[.active_processes, .slots]"
		if [ -e ran ]; then echo "it ran"; fi'
	[ "$status" -eq 0 ]
	[[ "$output" == *"rc=125"* ]]
	[[ "$output" == *"cannot open gate 'k'"*": /proc belongs to another PID namespace"* ]]
	[[ "$output" == *"[0,[]]"* ]]
	[[ "$output" != *"it ran"* ]]
}

@test "--kill-all never walks PID 1's tree nor signals what a record cannot vouch for" {
	# Records as a wrapper without a /proc of its own wrote them: slot 0
	# names PID 1 (the sandbox's shell) as its wrapper, slot 1 a command
	# that is not its wrapper's child. Harmless signal first (CONT); a
	# kill-all that trusted them would SIGKILL every process in the
	# sandbox after the grace, itself included.
	sandbox '
		alive() { [ -e /proc/$1 ] && [ "$(cut -d" " -f3 /proc/$1/stat)" != Z ]; }
		start() { sed "s/.*) //" /proc/$1/stat | cut -d" " -f20; }
		sleep 1000 & v1=$!
		sleep 1000 & v2=$!
		sleep 1000 & v3=$!
		mkdir -p "$GATERUN_DIR"
		: > "$GATERUN_DIR/k.lock"
		printf "gaterun-state 1\nboot %s\nlimit 5\nticket 2\nacquired 2\nwaitns 0\n%s\n%s\nend\n" \
			"$(cat /proc/sys/kernel/random/boot_id)" \
			"h 0 0 1 $(start 1) $v2 $(start $v2) 0 1 - :/ :sleep" \
			"h 1 1 $v1 $(start $v1) $v3 $(start $v3) 0 1 - :/ :sleep" \
			> "$GATERUN_DIR/k.gate"
		"$G" -g k --kill-all --signal CONT --grace 0.2 --json; echo "rc=$?"
		for v in $v1 $v2 $v3; do alive $v && echo "alive $v"; done
		echo "victims $v1 $v2 $v3"'
	[ "$status" -eq 0 ]
	read -r _ v1 v2 v3 < <(grep '^victims' <<<"$output")
	[[ "$output" == *"alive $v1"* ]]
	[[ "$output" == *"alive $v2"* ]]
	[[ "$output" == *"alive $v3"* ]]
	[[ "$output" == *"slot 0 left alone: PID 1 in its record is no process gaterun started in this PID namespace"* ]]
	[[ "$output" == *"slot 1 left alone: PID $v3 in its record"* ]]
	[[ "$output" == *"{\"gate\":\"k\",\"killed_count\":0,\"killed_pids\":[],\"failed_pids\":[1,$v3]}"* ]]
	[[ "$output" == *"rc=1"* ]]
}

@test "--kill-all from inside the gate signals the others first and spares its own slot" {
	bg "$G" -g k -- sleep 1000
	o1=$BG
	bg "$G" -g k -- sleep 1000
	o2=$BG
	until_true '[ "$(active k)" -eq 2 ]'
	run env G="$G" "$G" -g k -- sh -c 'echo "me $$"
		"$G" -g k --kill-all --grace 5; echo "text rc=$?"
		"$G" -g k --kill-all --json; echo "json rc=$?"'
	echo "$output"
	[ "$status" -eq 0 ]
	me=$(sed -n 's/^me //p' <<<"$output")
	[[ "$output" =~ killed\ 2\ processes:\ [0-9]+\ [0-9]+ ]]
	[[ "$output" =~ "the caller's own slot "[0-9]+" (PID $me) was spared: it is this kill-all's ancestor" ]]
	[[ "$output" == *"text rc=0"* ]]
	[[ "$output" =~ \"killed_count\":0,\"killed_pids\":\[\],\"failed_pids\":\[\],\"spared\":\[\{\"slot\":[0-9]+,\"pid\":$me\}\] ]]
	[[ "$output" == *"json rc=0"* ]]
	# Both others ended by the signal, their slots free.
	wait_status "$o1"
	[ "$status" -eq 143 ]
	wait_status "$o2"
	[ "$status" -eq 143 ]
	[ "$(active k)" -eq 0 ]
}

@test "--status shows a stopped holder, and a promoted stopped waiter as not started" {
	"$G" -g s --limit 1 >/dev/null
	bg "$G" -g s -- sh -c 'until [ -e go ]; do sleep 0.02; done'
	first=$BG
	until_true '[ "$(active s)" -eq 1 ]'
	bg "$G" -g s -- touch started
	w=$BG
	until_true '[ "$(waiting s)" -eq 1 ]'
	kill -STOP "$w"
	until_true '[ "$(status_field .waiters[0].state s)" = stopped ]'
	run "$G" -g s --status
	[[ "$output" == *"(waiting #1, stopped)"* ]]
	# The stopped head waiter is promoted when the slot frees; its
	# command cannot start until it is continued.
	touch go
	wait_status "$first"
	until_true '[ "$(status_field .slots[0].wrapper_pid s)" = "$w" ]'
	run "$G" -g s --status
	echo "$output"
	[[ "$output" == *"touch started (stopped, not started yet)"* ]]
	[ "$(status_field .slots[0].state s)" = stopped ]
	[ "$(status_field .slots[0].command_started s)" = false ]
	[ ! -e started ]
	kill -CONT "$w"
	wait_status "$w"
	[ "$status" -eq 0 ]
	[ -e started ]
	# A running command stopped by itself or another: "stopped".
	bg "$G" -g s -- sleep 1000
	until_true '[ "$(status_field .slots[0].command_started s)" = true ]'
	[ "$(status_field .slots[0].state s)" = running ]
	kill -STOP "$(status_field .slots[0].pid s)"
	until_true '[ "$(status_field .slots[0].state s)" = stopped ]'
	run "$G" -g s --status
	[[ "$output" == *"sleep 1000 (stopped)"* ]]
}
