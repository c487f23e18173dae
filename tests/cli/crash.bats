#!/usr/bin/env bats
# Crashes: SIGKILL of a waiting wrapper, of a holding wrapper, of the
# command; damaged state. The next call recovers by itself.

load common

# End a command waiting in "read -r _ < go" (at most 20 s for it to open).
release() {
	timeout 20 sh -c 'echo > go'
}

@test "a SIGKILLed waiting wrapper leaves no ghost and blocks nobody" {
	"$G" --limit 1 >/dev/null
	# The holder ends when the test says so (a line on a FIFO), not after
	# a time the rest must fit in.
	mkfifo go
	bg "$G" -- sh -c 'read -r _ < go'
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -- touch never
	dead=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	bg "$G" -- touch ran
	until_true '[ "$(waiting)" -eq 2 ]'
	kill -KILL "$dead"
	release
	until_true '[ -e ran ]'
	[ ! -e never ]
	until_true '[ "$(active)" -eq 0 ]'
	[ "$(waiting)" -eq 0 ]
}

@test "a SIGKILLed holding wrapper keeps the slot while its command runs, then frees it" {
	"$G" --limit 1 >/dev/null
	mkfifo go
	bg "$G" -- sh -c 'read -r _ < go; echo end > held-end'
	h=$BG
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -- sh -c 'test -e held-end && echo after > next'
	until_true '[ "$(waiting)" -eq 1 ]'
	kill -KILL "$h"
	# Once the wrapper is reaped, all it could do is done: its command
	# still runs, so the slot stays taken and the waiter waits.
	wait_status "$h"
	[ "$status" -eq 137 ]
	[ "$(active)" -eq 1 ]
	[ "$(waiting)" -eq 1 ]
	run "$G" -n -- true
	[ "$status" -eq 75 ]
	[ ! -e next ]
	# The waiter watches the command's pidfd: it starts when the command ends.
	release
	until_true '[ -e next ]'
	[ "$(cat next)" = after ]
	until_true '[ "$(active)" -eq 0 ]'
}

@test "a SIGKILLed command frees its slot; gaterun dies of SIGKILL too" {
	bg "$G" -- sleep 1000
	w=$BG
	until_true '[ "$(active)" -eq 1 ]'
	kill -KILL "$(status_field '.slots[0].pid')"
	wait_status "$w"
	[ "$status" -eq 137 ]
	[ "$(active)" -eq 0 ]
}

@test "a slot whose wrapper and command are both SIGKILLed is reclaimed by the next run" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
	w=$BG
	until_true '[ "$(active)" -eq 1 ]'
	c=$(status_field '.slots[0].pid')
	kill -STOP "$w"
	kill -KILL "$c" "$w"
	# SIGKILL lands asynchronously: wait until both are gone (or zombies).
	wait_status "$w"
	until_true "[ ! -d /proc/$c ] || grep -q '^State:.Z' /proc/$c/status"
	run "$G" -n -- echo reclaimed
	[ "$status" -eq 0 ]
	[ "$output" = reclaimed ]
}

@test "a damaged state file is moved aside with a warning and the gate works" {
	"$G" -- true
	printf 'gaterun-state 1\nlimit banana\n' > "$GATERUN_DIR/default.gate"
	run "$G" -- echo works
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "gaterun: state file default.gate is damaged ("*"): moved aside to default.corrupt-"* ]]
	[ "${lines[1]}" = works ]
	ls "$GATERUN_DIR"/default.corrupt-*
	run "$G" -- echo quiet
	[ "$output" = quiet ]
}

@test "random bytes and an empty file as state" {
	"$G" -- true
	head -c 4096 /dev/urandom > "$GATERUN_DIR/default.gate"
	run "$G" -- echo ok
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = ok ]
	: > "$GATERUN_DIR/default.gate"
	run "$G" -- echo ok
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = ok ]
}

@test "a symlink as state directory or state file is refused" {
	mkdir real
	ln -s real "$GATERUN_DIR"
	run "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"a symlink stands where"* ]]
	rm "$GATERUN_DIR"
	mkdir -m 700 "$GATERUN_DIR"
	ln -s "$BATS_TEST_TMPDIR/victim" "$GATERUN_DIR/default.gate"
	echo keep > victim
	run "$G" -- true
	[ "$status" -eq 125 ]
	[ "$(cat victim)" = keep ]
}

@test "a world-writable state directory is refused" {
	mkdir -m 777 "$GATERUN_DIR"
	chmod 777 "$GATERUN_DIR"
	run "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"refused"* ]]
}

@test "a group-writable state directory not marked shared (no set-group-ID bit) is refused" {
	mkdir -m 775 "$GATERUN_DIR"
	chmod 775 "$GATERUN_DIR"
	run "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"refused"* ]]
	chmod 2775 "$GATERUN_DIR"
	run "$G" -- echo shared
	[ "$status" -eq 0 ]
	[ "$output" = shared ]
}
