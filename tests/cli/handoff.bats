#!/usr/bin/env bats
# A hand-off with no second transaction: a release stores the promotion,
# then wakes the waiter it promoted, which reads its slot without the lock
# and starts; a releaser killed between the two does not strand it.

load common

need_strace() {
	command -v strace >/dev/null || skip "strace needed"
	strace -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
}

# A holder of gate k that ends when the file go appears, traced to $1.
holder() {
	bg strace -f -o "$1" -e trace=renameat,rename,renameat2,sendto \
		"$G" -g k -- sh -c 'until [ -e go ]; do sleep 0.01; done'
	until_true '[ "$(active k)" -eq 1 ]'
}

@test "a release wakes the waiter it promoted after the promotion is stored" {
	need_strace
	"$G" -g k --limit 1
	holder trace
	bg "$G" -g k -- touch ran
	until_true '[ "$(waiting k)" -eq 1 ]'
	touch go
	until_true '[ -e ran ]'
	cat trace
	last_rename=$(grep -n 'rename' trace | tail -1 | cut -d: -f1)
	last_send=$(grep -n 'sendto' trace | tail -1 | cut -d: -f1)
	[ -n "$last_send" ]
	[ "$last_send" -gt "$last_rename" ]
}

@test "a waiter woken by a release starts without taking the lock again" {
	need_strace
	"$G" -g k --limit 1
	bg "$G" -g k -- sh -c 'until [ -e go ]; do sleep 0.01; done'
	until_true '[ "$(active k)" -eq 1 ]'
	bg strace -f -o wtrace -e trace=flock,ppoll,execve \
		"$G" -x -g k -- touch ran
	until_true '[ "$(waiting k)" -eq 1 ]'
	touch go
	until_true '[ -e ran ]'
	cat wtrace
	# From its last sleep to the command: no lock taken.
	after=$(sed -n '/ppoll/h; /ppoll/!H; ${x;p}' wtrace)
	[[ "$after" == *'execve("'*'touch"'* ]]
	[[ "$after" != *LOCK_EX* ]]
}

@test "a releaser SIGKILLed between its commit and its wake-up does not strand the waiter it promoted" {
	need_strace
	"$G" -g k --limit 1
	# The injected SIGKILL stops the wrapper at its first sendto: the
	# wake-up of the release, after the promotion was stored.
	bg strace -f -o trace -e trace=renameat,sendto -e inject=sendto:signal=KILL \
		"$G" -g k -- sh -c 'until [ -e go ]; do sleep 0.01; done'
	r=$BG
	until_true '[ "$(active k)" -eq 1 ]'
	bg "$G" -g k -- touch ran
	until_true '[ "$(waiting k)" -eq 1 ]'
	touch go
	until_true '[ -e ran ]' 300
	wait "$r" || true
	cat trace
	grep -q 'killed by SIGKILL' trace
	# It died after storing the promotion: its last rename came first.
	[ "$(grep -n 'rename' trace | tail -1 | cut -d: -f1)" -lt \
		"$(grep -n 'sendto' trace | tail -1 | cut -d: -f1)" ]
}
