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
	bg "$G" -- sleep 1000
	w=$BG
	until_true '[ "$(active)" -eq 1 ]'
	kill -INT "$w"
	wait_status "$w"
	[ "$status" -eq 130 ]
	[ "$(active)" -eq 0 ]
}

@test "a waiting gaterun that gets TERM or INT leaves the queue cleanly" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
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
	bg "$G" -- sleep 1000
	h=$BG
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -- sleep 999
	w=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	until_true '[[ "$(cat /proc/$w/cmdline | tr "\0" " ")" == *"waiting on '"'default'"' (1st in line)"* ]]'
	[[ "$(tr '\0' ' ' < "/proc/$h/cmdline")" == *"running on 'default': sleep 1000"* ]]
}

# A pipeline in a process group of its own, as a job-control shell or a
# service manager makes one, with no terminal: signals sent to the whole
# group and signals sent to gaterun alone each reach the command once
# (sigspy.py logs one line per delivery, even two back to back).
@test "a signal sent to the process group or to gaterun reaches the command once, in a pipeline" {
	run timeout -s INT 60 python3 - "$G" "$BATS_TEST_DIRNAME/sigspy.py" <<'PY'
import os, signal, subprocess, sys, time
g, spy = sys.argv[1], sys.argv[2]
job = subprocess.Popen(["bash", "-c", 'trap : HUP USR1 USR2 TERM; '
                        '"$0" -- python3 "$1" log | cat >/dev/null; wait',
                        g, spy], process_group=0, stderr=subprocess.DEVNULL)
def got():
    try:
        return open("log").read().split("\n")
    except FileNotFoundError:
        return []
def until(line):
    end = time.time() + 20
    while not [l for l in got() if l.startswith(line)] and time.time() < end:
        time.sleep(0.01)
    return [l for l in got() if l.startswith(line)]
spy_pid = 0
try:
    spy_pid = int(until("ready ")[0].split()[1])
    stat = open("/proc/%d/stat" % spy_pid).read()
    w = int(stat.rsplit(")", 1)[1].split()[1])     # the spy's parent
    os.killpg(job.pid, signal.SIGHUP)          # kill -HUP -- -PGID
    until("got HUP")
    os.killpg(job.pid, signal.SIGUSR1)         # kill -USR1 %1
    until("got USR1")
    os.kill(w, signal.SIGUSR2)                 # kill -USR2 PID
    until("got USR2")
    os.kill(w, signal.SIGTERM)
    job.wait(20)
finally:
    for kill, pid in ((os.killpg, job.pid), (os.kill, spy_pid)):
        try:
            if pid > 0:
                kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
print(" ".join(l for l in got() if l.startswith("got")))
PY
	[ "$status" -eq 0 ]
	[ "$output" = "got HUP got USR1 got USR2 got TERM" ]
}

# The parent sees gaterun stop with the signal that stopped the command, as
# a shell would see the command itself (a process group of its own, so that
# the stop is not discarded as in an orphaned group).
@test "a command that stops itself stops gaterun with the same signal, and CONT resumes it" {
	run timeout -s INT 30 python3 - "$G" <<'PY'
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

# The command leads a process group of its own; SIGTSTP sent to gaterun is
# passed on, and gaterun stops once the command has; CONT continues both.
@test "the command has a process group of its own; SIGTSTP to gaterun stops both, CONT continues both" {
	run timeout -s INT 30 python3 - "$G" <<'PY'
import os, signal, subprocess, sys, time
# (A command that forks, stopped mid-vfork, would wait for its child.)
p = subprocess.Popen([sys.argv[1], "--", "sh", "-c",
                      "echo $$ > pid; exec sleep 300"], process_group=0)
def state(pid):
    return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0]
def until(cond):
    end = time.time() + 20
    while not cond() and time.time() < end:
        time.sleep(0.01)
c = 0
try:
    until(lambda: os.path.exists("pid") and open("pid").read().endswith("\n"))
    c = int(open("pid").read())
    print("groups", os.getpgid(c) == c, os.getpgid(p.pid) == p.pid)
    os.kill(p.pid, signal.SIGTSTP)
    _, st = os.waitpid(p.pid, os.WUNTRACED)
    print("stopped", os.WIFSTOPPED(st) and signal.Signals(os.WSTOPSIG(st)).name,
          state(c))
    os.kill(p.pid, signal.SIGCONT)
    until(lambda: state(c) != "T")
    print("continued", state(c) != "T")
    os.kill(p.pid, signal.SIGTERM)
    print("exit", os.waitstatus_to_exitcode(os.waitpid(p.pid, 0)[1]))
finally:
    for pid in (p.pid, c):
        try:
            if pid > 0:
                os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
PY
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'groups True True\nstopped SIGTSTP T\ncontinued True\nexit -15')" ]
	[ "$(active)" -eq 0 ]
}

# gaterun as the session leader of a terminal (as ssh -t or a terminal
# emulator starts a command): no shell controls its process group, so the
# command stays in it, as without gaterun, and Ctrl-C reaches it once.
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

@test "outside job control, a command stopped and continued by another process: gaterun waits on" {
	# bats runs this without job control: gaterun shares the test's group,
	# as in a script or under cron, where nobody would continue a stopped
	# gaterun. It must not stop itself when its command is stopped.
	"$G" --limit 1 >/dev/null
	mkfifo go
	bg "$G" -- sh -c 'echo $$ > cmd.pid; read -r _ < go; echo done > out'
	w=$BG
	until_true '[ -s cmd.pid ]'
	c=$(cat cmd.pid)
	kill -STOP "$c"
	until_true '[ "$(awk "{ print \$3 }" /proc/"$c"/stat)" = T ]'
	until_true '"$G" --status | grep -q "(stopped)"'
	kill -CONT "$c"
	timeout 20 sh -c 'echo > go'
	until_true '[ "$(active)" -eq 0 ]'
	wait_status "$w"
	[ "$status" -eq 0 ]
	[ "$(cat out)" = "done" ]
}

@test "a signal the caller ignores or blocks changes nothing for a waiter, and reaches the command so" {
	fifo_holder
	# The caller ignores HUP and blocks USR1 (a nohup, a build tool's
	# mask): the waiter must not leave the line on HUP, and the command
	# gets both as the caller had them.
	# (sh would reset the mask: the command is python itself.)
	launcher HUP USR1
	bg python3 launch.py "$G" -- python3 -c 'import shutil
shutil.copy("/proc/self/status", "masks")
open("ran", "w").write("ran\n")'
	w=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	kill -HUP "$w"
	echo > go
	wait_status "$w"
	[ "$status" -eq 0 ]
	[ "$(cat ran)" = ran ]
	# HUP is bit 1 (0x1) of SigIgn, USR1 bit 10 (0x200) of SigBlk.
	blk=$(awk '/^SigBlk/ { print $2 }' masks)
	ign=$(awk '/^SigIgn/ { print $2 }' masks)
	[ $((0x$blk & 0x200)) -ne 0 ]
	[ $((0x$ign & 0x1)) -ne 0 ]
	[ $((0x$blk & ~0x200)) -eq 0 ]
	wait_status "$h"
}

@test "a signal the caller blocks stays pending while gaterun waits: the waiter stays in line, and -x hands it on pending" {
	fifo_holder
	launcher "" "USR1 TERM"
	# (sh would unblock them: the command is python itself.)
	bg python3 launch.py "$G" -x -- python3 -c 'import shutil
shutil.copy("/proc/self/status", "st")'
	w=$BG
	bg python3 launch.py "$G" -- sh -c 'echo ran > ran2'
	w2=$BG
	until_true '[ "$(waiting)" -eq 2 ]'
	kill -USR1 "$w"
	kill -TERM "$w"
	kill -TERM "$w2"
	# Blocked: both stay in line (before, USR1 took the -x one out, 138).
	[ "$(waiting)" -eq 2 ]
	echo > go
	wait_status "$h"
	wait_status "$w"
	[ "$status" -eq 0 ]
	wait_status "$w2"
	[ "$status" -eq 0 ]
	[ "$(cat ran2)" = ran ]
	# USR1 is bit 9 (0x200) and TERM bit 14 (0x4000) of ShdPnd.
	pnd=$(awk '/^ShdPnd/ { print $2 }' st)
	[ $((0x$pnd & 0x4200)) -eq $((0x4200)) ]
}
