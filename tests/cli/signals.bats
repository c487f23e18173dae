#!/usr/bin/env bats
# Signals: forwarding to the command, leaving the queue, a terminal's Ctrl-C.

load common

@test "TERM to gaterun reaches the command and frees the slot" {
	bg "$G" -- sh -c 'trap "echo got-term > got; exit 7" TERM; while :; do sleep 0.05; done'
	w=$BG
	until_true '[ "$(active)" -eq 1 ]'
	sleep 0.1
	kill -TERM "$w"
	wait_status "$w"
	[ "$status" -eq 7 ]
	[ "$(cat got)" = got-term ]
	[ "$(active)" -eq 0 ]
}

@test "INT, HUP, QUIT, USR1, USR2, WINCH and CONT are forwarded" {
	bg "$G" -- bash -c 'for s in INT HUP QUIT USR1 USR2 WINCH CONT; do trap "echo $s >> got" $s; done; echo ready > ready; while :; do sleep 0.05; done'
	w=$BG
	until_true '[ -e ready ]'
	for s in INT HUP QUIT USR1 USR2 WINCH CONT; do
		kill -"$s" "$w"
		until_true "grep -qx $s got"
	done
	kill -TERM "$w"
	wait_status "$w"
	[ "$status" -eq 143 ]
}

@test "a command that dies of the forwarded signal makes gaterun die of it" {
	bg "$G" -- sleep 30
	w=$BG
	until_true '[ "$(active)" -eq 1 ]'
	kill -INT "$w"
	wait_status "$w"
	[ "$status" -eq 130 ]
	[ "$(active)" -eq 0 ]
}

@test "a waiting gaterun that gets TERM or INT leaves the queue cleanly" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 30
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -- touch ran1
	w1=$BG
	bg "$G" -- touch ran2
	w2=$BG
	until_true '[ "$(waiting)" -eq 2 ]'
	kill -TERM "$w1"
	kill -INT "$w2"
	wait_status "$w1"
	[ "$status" -eq 143 ]
	wait_status "$w2"
	[ "$status" -eq 130 ]
	[ "$(waiting)" -eq 0 ]
	[ ! -e ran1 ] && [ ! -e ran2 ]
}

@test "ps shows what a gaterun is doing" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 30
	h=$BG
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -- sleep 29
	w=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	until_true '[[ "$(cat /proc/$w/cmdline | tr "\0" " ")" == *"waiting on '"'default'"' (1st in line)"* ]]'
	[[ "$(tr '\0' ' ' < "/proc/$h/cmdline")" == *"running on 'default': sleep 30"* ]]
}

# The parent sees gaterun stop with the signal that stopped the command, as
# a shell would see the command itself (a process group of its own, so that
# the stop is not discarded as in an orphaned group).
@test "a command that stops itself stops gaterun with the same signal, and CONT resumes it" {
	run timeout 30 python3 - "$G" <<'PY'
import os, signal, subprocess, sys
p = subprocess.Popen([sys.argv[1], "--", "sh", "-c",
                      "kill -TSTP $$; echo resumed"], process_group=0)
def give_up(*_):
    os.killpg(p.pid, signal.SIGKILL)
    sys.exit("gaterun did not stop")
signal.signal(signal.SIGALRM, give_up)
signal.alarm(10)
_, st = os.waitpid(p.pid, os.WUNTRACED)
signal.alarm(0)
print("stopped", os.WIFSTOPPED(st) and signal.Signals(os.WSTOPSIG(st)).name)
os.kill(p.pid, signal.SIGCONT)
_, st = os.waitpid(p.pid, 0)
print("exit", os.waitstatus_to_exitcode(st))
PY
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'stopped SIGTSTP\nresumed\nexit 0')" ]
	[ "$(active)" -eq 0 ]
}

# A real terminal: the command and gaterun share the foreground process
# group, as they would without gaterun, so Ctrl-C reaches the command once.
@test "Ctrl-C at a terminal stops the command like it stops it without gaterun" {
	command -v python3 >/dev/null || skip "python3 needed for a pty"
	run python3 - "$G" <<'PY'
import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "--", "sh", "-c",
             "n=0; trap 'n=$((n+1)); echo int-$n' INT; echo ready; "
             'while [ $n -lt 1 ]; do sleep 0.05; done; sleep 0.3; echo done-$n; exit 42'])
buf = b""
def read_until(s, t=10):
    global buf
    end = time.time() + t
    while s not in buf and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                buf += os.read(fd, 1024)
            except OSError:
                break
read_until(b"ready")
os.write(fd, b"\x03")
read_until(b"done-")
_, st = os.waitpid(pid, 0)
print(buf.decode(errors="replace").replace("\r", ""))
print("exit", os.waitstatus_to_exitcode(st))
PY
	[ "$status" -eq 0 ]
	[[ "$output" == *"int-1"* ]]
	[[ "$output" == *"done-1"* ]]
	[[ "$output" != *"int-2"* ]]
	[[ "$output" == *"exit 42"* ]]
	[ "$(active)" -eq 0 ]
}
