#!/usr/bin/env bats
# A gate directory shared into other PID and network namespaces (a
# container's bind mount): a holder there is never taken for dead, and a
# waiter there is woken like any other.

load common

# Skip unless namespaces of kind $1 (-p or -n) can be made here (root).
need_ns() {
	[ "$(id -u)" -eq 0 ] || skip "needs root for namespaces"
	command -v unshare >/dev/null || skip "unshare needed"
	if [ "$1" = -p ]; then
		unshare -p -f --mount-proc true 2>/dev/null ||
			skip "no PID namespaces here"
	else
		unshare -n true 2>/dev/null || skip "no network namespaces here"
	fi
}

# 1 when gate $1's state file names a holder.
held() { grep -q '^h ' "$GATERUN_DIR/$1.gate" 2>/dev/null; }

@test "a holder in another PID namespace is not taken for dead: others are refused (125) until it ends" {
	need_ns -p
	"$G" -g k --limit 1
	bg unshare -p -f --mount-proc --kill-child "$G" -g k -- sleep 1000
	c=$BG
	until_true 'held k'
	run "$G" -g k -n -- touch over
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"gate 'k'"*"in use by processes of another PID namespace"* ]]
	[ ! -e over ]
	run "$G" -g k -- touch over
	[ "$status" -eq 125 ]
	[ ! -e over ]
	# Its wrapper SIGKILLed, the namespace ends (once its last zombie is
	# reaped): its record is dropped.
	kill_tree "$c"
	wait "$c" 2>/dev/null || true
	until_true '"$G" -g k -n -- touch after 2>out'
	[ -e after ]
	[[ "$(cat out)" == *"which has ended: dropped"* ]]
}

@test "a process in a PID namespace is refused (125) a gate whose holder runs outside" {
	need_ns -p
	"$G" -g k --limit 1
	bg "$G" -g k -- sleep 1000
	h=$BG
	until_true 'held k'
	run unshare -p -f --mount-proc "$G" -g k -n -- touch over
	echo "$output"
	[ "$status" -eq 125 ]
	[[ "$output" == *"another PID namespace"* ]]
	[ ! -e over ]
	kill "$h"
	wait "$h" || true
	# Free again: a process of any namespace takes it.
	run unshare -p -f --mount-proc "$G" -g k -n -- touch inside
	[ "$status" -eq 0 ]
	[ -e inside ]
}

@test "a PID namespace's own processes share a gate as usual" {
	need_ns -p
	run timeout 60 unshare -p -f --mount-proc bash -c '
		"$0" -g k --limit 1 >/dev/null
		"$0" -g k -- sleep 1000 & h=$!
		until grep -q "^h " "$GATERUN_DIR/k.gate" 2>/dev/null; do sleep 0.01; done
		"$0" -g k -n -- true; echo "rc=$?"
		kill $h; wait $h
		"$0" -g k -n -- true; echo "rc=$?"' "$G"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"rc=75"*"rc=0"* ]]
}

@test "a waiter in another network namespace starts when a limit raise promotes it" {
	need_ns -n
	"$G" -g k --limit 1
	bg "$G" -g k -- sleep 1000
	until_true 'held k'
	bg unshare -n "$G" -g k -- touch ran
	until_true '[ "$(waiting k)" -eq 1 ]'
	"$G" -g k --limit 2
	# Its datagram cannot reach it; the holder it watches runs on.
	until_true '[ -e ran ]' 300
}

@test "a waiter in another network namespace starts when the holder before it releases" {
	need_ns -n
	"$G" -g k --limit 1
	bg "$G" -g k -- sleep 1000
	h=$BG
	until_true 'held k'
	# A waiter ahead that outlives its turn: the one behind watches it.
	bg "$G" -g k -- sh -c 'until [ -e go ]; do sleep 0.01; done'
	until_true '[ "$(waiting k)" -eq 1 ]'
	bg unshare -n "$G" -g k -- touch ran
	until_true '[ "$(waiting k)" -eq 2 ]'
	"$G" -g k --limit 2
	until_true '[ "$(waiting k)" -eq 1 ]'
	kill "$h"
	until_true '[ -e ran ]' 300
	touch go
}
