#!/usr/bin/env bats
# Exec mode (-x): gaterun becomes the command; the command's own PID and
# start time hold the slot, which the engine frees when it is gone.

load common

@test "-x: the command replaces gaterun (same PID) and its status is exact" {
	run bash -c 'exec "$0" -x -- sh -c "echo \$\$; exit 5"' "$G"
	[ "$status" -eq 5 ]
	bg "$G" -x -- sleep 1000
	w=$BG
	until_true '[ "$(active)" -eq 1 ]'
	[ "$(status_field '.slots[0].pid')" -eq "$w" ]
	[ "$(status_field '.slots[0].wrapper_pid')" -eq "$w" ]
	[ "$(ps -o comm= -p "$w")" = sleep ]
	run "$G" --is-active "$w"
	[ "$status" -eq 0 ]
}

@test "-x: the slot is freed when the command ends, and the next waiter starts" {
	"$G" --limit 1 >/dev/null
	# The command ends when the test says so (a line on a FIFO), not after
	# a time the checks must fit in.
	mkfifo go
	bg "$G" -x -- sh -c 'read -r _ < go'
	until_true '[ "$(active)" -eq 1 ]'
	run "$G" -n -- true
	[ "$status" -eq 75 ]
	timeout 20 sh -c 'echo > go'
	run "$G" -w 20 -- echo next
	[ "$status" -eq 0 ]
	[ "$output" = next ]
	[ "$(active)" -eq 0 ]
}

@test "-x: the head of the line forks nothing ahead, and the command runs in its own PID" {
	"$G" --limit 1 >/dev/null
	mkfifo go
	bg "$G" -x -- sh -c 'read -r _ < go'
	h=$BG
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -x -- sh -c 'echo $$ > ran'
	w=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	# Fork mode parks its command's child here; exec mode becomes the
	# command itself, so a child would only cost a fork and a change.
	[ -z "$(ps -o pid= --ppid "$w")" ]
	echo > go
	wait_status "$w"
	[ "$status" -eq 0 ]
	[ "$(cat ran)" -eq "$w" ]
	wait_status "$h"
}

@test "-x: the slot of a SIGKILLed command goes to the waiter" {
	"$G" --limit 1 >/dev/null
	bg "$G" -x -- sleep 1000
	h=$BG
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -- touch ran
	until_true '[ "$(waiting)" -eq 1 ]'
	kill -KILL "$h"
	until_true '[ -e ran ]'
}

@test "-x: a missing command gives 127 and frees the slot" {
	"$G" --limit 1 >/dev/null
	run -127 "$G" -x -- /nonexistent/cmd
	[ "$(active)" -eq 0 ]
	run "$G" -n -- echo free
	[ "$output" = free ]
}

@test "-x: --kill-all stops the command and its children" {
	bg "$G" -x -- sh -c 'sleep 300 & wait'
	w=$BG
	until_true '[ "$(active)" -eq 1 ]'
	until_true '[ -n "$(pgrep -P "$w")" ]'
	kid=$(pgrep -P "$w")
	run "$G" --kill-all
	[ "$status" -eq 0 ]
	[ "$output" = "killed 2 processes: $w $kid" ]
	wait_status "$w"
	[ "$status" -eq 143 ]
	[ "$(active)" -eq 0 ]
}

@test "-x only goes with a command" {
	run "$G" -x --status
	[ "$status" -eq 125 ]
}

@test "-x: the command gets the caller's signal mask and dispositions, SIGCHLD included" {
	# The caller ignores HUP and SIGCHLD and blocks USR1; gaterun catches
	# all three while it waits. cat catches nothing of its own: what it
	# sees must be what it sees without gaterun.
	launcher "HUP CHLD" USR1
	python3 launch.py cat /proc/self/status | grep -E '^Sig(Blk|Ign|Cgt)' > want
	python3 launch.py "$G" -x -- cat /proc/self/status |
	    grep -E '^Sig(Blk|Ign|Cgt)' > got
	# HUP is bit 0 (0x1), CHLD bit 16 (0x10000), USR1 bit 9 (0x200).
	[ $((0x$(awk '/^SigIgn/ { print $2 }' want) & 0x10001)) -eq $((0x10001)) ]
	[ $((0x$(awk '/^SigBlk/ { print $2 }' want))) -eq $((0x200)) ]
	diff want got
}

@test "-x: a signal that reaches gaterun as it execs the command acts as it would on the command" {
	# A TERM sent while -x waits ends the wait (143); one sent once the
	# command runs kills the command: either way the status is TERM's.
	fifo_holder
	bg "$G" -x -- sh -c 'echo $$ > ran; exec sleep 100'
	w=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	echo > go
	wait_status "$h"
	until_true '[ -s ran ]'
	kill -TERM "$w"
	wait_status "$w"
	[ "$status" -eq 143 ]
	[ "$(active)" -eq 0 ]
}

@test "-x: a caller that ignores SIGCHLD has its children reaped while gaterun waits, as without gaterun" {
	fifo_holder
	mkfifo cgo
	# The caller starts a child, ignores SIGCHLD, then execs gaterun -x;
	# the child ends while gaterun waits: the kernel reaps it at once.
	cat > launch.py <<'PY'
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    open("cgo").read()
    os._exit(0)
open("child", "w").write("%d\n" % pid)
os.execvp(sys.argv[1], sys.argv[1:])
PY
	bg python3 launch.py "$G" -x -- true
	w=$BG
	until_true '[ "$(waiting)" -eq 1 ] && [ -s child ]'
	c=$(cat child)
	echo > cgo
	# A zombie left unreaped would still answer kill -0.
	until_true '! kill -0 "$c" 2>/dev/null'
	echo > go
	wait_status "$h"
	wait_status "$w"
	[ "$status" -eq 0 ]
}
