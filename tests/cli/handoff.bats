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
	bg strace -f -o "$1" -e trace=renameat,rename,renameat2,openat \
		"$G" -g k -- sh -c 'until [ -e go ]; do sleep 0.01; done'
	until_true '[ "$(active k)" -eq 1 ]'
}

# The line number of the last line of file $2 matching $1.
last() { grep -n -- "$1" "$2" | tail -1 | cut -d: -f1; }

@test "a release wakes the waiter it promoted after the promotion is stored" {
	need_strace
	"$G" -g k --limit 1
	holder trace
	bg "$G" -g k -- touch ran
	until_true '[ "$(waiting k)" -eq 1 ]'
	touch go
	until_true '[ -e ran ]'
	cat trace
	# The wake-up: its FIFO opened to write a byte.
	last_send=$(last '"\.w\.[0-9a-f]*", O_WRONLY' trace)
	[ -n "$last_send" ]
	[ "$last_send" -gt "$(last rename trace)" ]
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
	bg "$G" -g k -- sh -c 'until [ -e go ]; do sleep 0.01; done'
	r=$BG
	until_true '[ "$(active k)" -eq 1 ]'
	bg "$G" -g k -- touch ran
	until_true '[ "$(waiting k)" -eq 1 ]'
	fifo=$(cd "$GATERUN_DIR" && echo .w.*)
	[ -p "$GATERUN_DIR/$fifo" ]
	# The holder's wrapper gets a SIGKILL when it opens that FIFO: the
	# wake-up of its release, after the promotion was stored.
	# (-P by the name as the wrapper opens it, relative to the directory)
	bg strace -o trace -p "$r" -P "$fifo" -e trace=openat \
		-e inject=openat:signal=KILL
	until_true 'grep -Eq "TracerPid:[[:space:]]+[1-9]" /proc/$r/status'
	touch go
	until_true '[ -e ran ]' 300
	wait "$r" || true
	until_true 'grep -q "killed by SIGKILL" trace'
	cat trace
	grep -q "$fifo" trace
	# The waiter found its slot in the state the releaser stored.
	[ ! -e "$GATERUN_DIR/$fifo" ]
}

@test "a change exchanges the new state file with the old one, never renames over it" {
	need_strace
	"$G" -- true
	strace -f -o trace -e trace=rename,renameat,renameat2,unlinkat "$G" -- true
	cat trace
	# A rename over an existing file makes ext4 write its data out first.
	grep -Eq 'renameat2\(.*"default.gate", RENAME_EXCHANGE\) += 0' trace
	[ "$(grep -cE 'renameat\(|rename\(' trace)" -eq 0 ]
	# The old state, now under the temporary name, is removed.
	grep -Eq 'unlinkat\(.*"\.default\.new", 0\) += 0' trace
	[ ! -e "$GATERUN_DIR/.default.new" ]
	run "$G" -n -- echo works
	[ "$output" = works ]
}

@test "a change removes a leftover new state only when one is there" {
	need_strace
	"$G" -- true
	strace -f -o trace -e trace=unlinkat,openat "$G" -- true
	# No unlink of a file that is not there on the way of every change.
	[ "$(grep -c 'unlinkat(.*ENOENT' trace)" -eq 0 ]
	# A writer SIGKILLed between creating and exchanging left one.
	echo "half a state" > "$GATERUN_DIR/.default.new"
	run "$G" -n -- echo works
	[ "$status" -eq 0 ]
	[ "$output" = works ]
	[ ! -e "$GATERUN_DIR/.default.new" ]
	[ "$(status_field .active_processes)" -eq 0 ]
}
