#!/usr/bin/env bats
# Running a command: exit status, transparency, -n, -w, -E, named gates.

load common

@test "exit status of the command is passed through" {
	run "$G" -- sh -c 'exit 3'
	[ "$status" -eq 3 ]
	run "$G" -- true
	[ "$status" -eq 0 ]
}

@test "argv reaches the command unchanged" {
	run "$G" -- printf '[%s]' 'a b' '' "c'd" '$HOME' '--'
	[ "$status" -eq 0 ]
	[ "$output" = "[a b][][c'd][\$HOME][--]" ]
}

@test "options after the command belong to the command" {
	run "$G" echo -n --status
	[ "$status" -eq 0 ]
	[ "$output" = "--status" ]
}

@test "environment, cwd and stdin are the caller's, plus GATERUN_SLOT and GATERUN_SLOT_GATE" {
	mkdir sub && cd sub
	run env FOO=bar "$G" -g envgate -- sh -c 'cat; echo "$FOO $PWD $GATERUN_SLOT $GATERUN_SLOT_GATE"' <<<"input"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "input" ]
	[ "${lines[1]}" = "bar $BATS_TEST_TMPDIR/sub 0 envgate" ]
}

# Run gaterun ARGS... with exactly the environment entries given on stdin
# (one a line, a line "<empty>" for an empty entry) through execve(2),
# since no shell or env(1) makes duplicates or entries without '='; print
# the command's own /proc/self/environ, one entry a line.
run_env() {
	python3 -c '
import ctypes, os, sys
env = [b"" if l == "<empty>" else l.encode() for l in sys.stdin.read().splitlines()]
args = [a.encode() for a in sys.argv[1:]]
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.dup2(w, 1)
    libc = ctypes.CDLL(None, use_errno=True)
    vec = lambda v: (ctypes.c_char_p * (len(v) + 1))(*v, None)
    libc.execve(args[0], vec(args), vec(env))
    os._exit(99)
os.close(w)
out = b""
while True:
    b = os.read(r, 65536)
    if not b:
        break
    out += b
_, st = os.waitpid(pid, 0)
for e in out.split(b"\0")[:-1]:
    print(e.decode() if e else "<empty>")
sys.exit(os.waitstatus_to_exitcode(st))
' "$G" "$@"
}

@test "the environment reaches the command verbatim: duplicates, no '=', empty entries" {
	env="A=1
A=2
NOEQUALS
<empty>
PATH=$PATH
GATERUN_DIR=$GATERUN_DIR
GATERUN_SLOT=stale
GATERUN_CONF=$GATERUN_CONF
Z=last"
	want="A=1
A=2
NOEQUALS
<empty>
PATH=$PATH
GATERUN_DIR=$GATERUN_DIR
GATERUN_CONF=$GATERUN_CONF
Z=last
GATERUN_SLOT=0
GATERUN_SLOT_GATE=default"
	run run_env -- cat /proc/self/environ <<<"$env"
	[ "$status" -eq 0 ]
	[ "$output" = "$want" ]
	run run_env -x -- cat /proc/self/environ <<<"$env"
	[ "$status" -eq 0 ]
	[ "$output" = "$want" ]
}

@test "no file descriptor of gaterun reaches the command" {
	base=$(sh -c 'ls /proc/self/fd' | sort | tr '\n' ' ')
	run "$G" -- sh -c 'ls /proc/self/fd'
	[ "$status" -eq 0 ]
	got=$(printf '%s\n' "${lines[@]}" | sort | tr '\n' ' ')
	[ "$got" = "$base" ]
}

@test "missing command exits 127, not executable exits 126" {
	run -127 "$G" -- /nonexistent/cmd
	[[ "$output" == *"gaterun: /nonexistent/cmd: No such file or directory"* ]]
	run -127 "$G" -- no-such-command-anywhere
	printf 'echo hi\n' > noexec
	run -126 "$G" -- ./noexec
	[ "$(active)" -eq 0 ]
}

@test "a command killed by a signal kills gaterun with the same signal" {
	run "$G" -- sh -c 'kill -USR1 $$'
	[ "$status" -eq $((128 + 10)) ]
	run bash -c '"$0" -- sh -c "kill -SEGV \$\$"; echo "rc=$?"' "$G"
	[[ "$output" == *"rc=139"* ]]
	[ "$(active)" -eq 0 ]
}

@test "-n exits 75 without queueing when the gate is full" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	run "$G" -n -- true
	[ "$status" -eq 75 ]
	[ "$output" = "gaterun: cannot start: maximum concurrent processes reached (1/1 on gate 'default')" ]
	run "$G" -n -E 9 -- true
	[ "$status" -eq 9 ]
	[ "$(waiting)" -eq 0 ]
	# The child forked ahead of the slot never runs the command.
	run "$G" -n -- touch ran
	[ "$status" -eq 75 ]
	[ ! -e ran ]
}

@test "a paused gate says it is paused, with -n and when -w runs out" {
	"$G" --limit 0 >/dev/null
	msg="gaterun: cannot start: gate 'default' is paused (limit 0, 0 running): 'gaterun -g default --limit N' resumes it"
	run "$G" -n -- touch ran
	[ "$status" -eq 75 ]
	[ "$output" = "$msg" ]
	run "$G" -w 0.2 -- touch ran
	[ "$status" -eq 75 ]
	[ "$output" = "$msg" ]
	[ ! -e ran ]
	[ "$(waiting)" -eq 0 ]
}

@test "-n runs when there is room" {
	run "$G" -n -- echo ok
	[ "$status" -eq 0 ]
	[ "$output" = "ok" ]
}

@test "-w gives up after the time and leaves no waiter" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	start=$(date +%s%N)
	run "$G" -w 0.3 -- true
	end=$(date +%s%N)
	[ "$status" -eq 75 ]
	[ $(( (end - start) / 1000000 )) -ge 300 ]
	[ "$(waiting)" -eq 0 ]
}

@test "-w runs the command when a slot frees before the wait runs out" {
	# The holder ends once the -w job waits: a holder of a fixed 0.3 s
	# could end before a loaded machine saw it hold (ASan, load 11).
	"$G" --limit 1 >/dev/null
	bg "$G" -- sh -c 'until [ -e go ]; do sleep 0.05; done'
	until_true '[ "$(active)" -eq 1 ]'
	bg bash -c "until [ \"\$('$G' --status --json | jq -r .waiting)\" = 1 ]; do sleep 0.05; done; touch go"
	run "$G" -w 20 -- echo ran
	[ "$status" -eq 0 ]
	[ "$output" = "ran" ]
}

@test "named gates are independent" {
	"$G" -g one --limit 1 >/dev/null
	bg "$G" -g one -- sleep 1000
	until_true '[ "$(active one)" -eq 1 ]'
	run "$G" -g two -n -- echo two
	[ "$status" -eq 0 ]
	run env GATERUN_GATE=one "$G" -n -- true
	[ "$status" -eq 75 ]
}

@test "a gate is created with GATERUN_LIMIT" {
	GATERUN_LIMIT=7 "$G" -- true
	[ "$(status_field .max_allowed)" -eq 7 ]
	GATERUN_LIMIT=2 "$G" -- true
	[ "$(status_field .max_allowed)" -eq 7 ]
}

@test "a parent that ignores SIGCHLD changes nothing" {
	run perl -e '$SIG{CHLD} = "IGNORE"; exec @ARGV' "$G" -- sh -c 'exit 4'
	[ "$status" -eq 4 ]
	[ "$(active)" -eq 0 ]
}

@test "ignored signals stay ignored in the command (nohup, background jobs)" {
	run perl -e '$SIG{INT} = "IGNORE"; exec @ARGV' "$G" -- sh -c 'kill -INT $$; echo survived'
	[ "$status" -eq 0 ]
	[ "$output" = "survived" ]
}

@test "the state directory is made with mode 0755 for root, 0700 for a user, and re-made when gone" {
	"$G" -- true
	[ -f "$GATERUN_DIR/default.gate" ]
	if [ "$(id -u)" -eq 0 ]; then want=755; else want=700; fi
	[ "$(stat -c %a "$GATERUN_DIR")" = "$want" ]
	rm -rf "$GATERUN_DIR"
	run "$G" -- echo again
	[ "$status" -eq 0 ]
	[ -d "$GATERUN_DIR" ]
}

@test "gaterun works inside a pipeline, at both ends" {
	run bash -c 'printf "b\na\nc\n" | "$0" -- sort | "$0" -- head -n 2' "$G"
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'a\nb')" ]
	[ "$(active)" -eq 0 ]
}

@test "a user's state directory is /tmp/gaterun-UID, whatever XDG_RUNTIME_DIR says" {
	[ "$(id -u)" -ne 0 ] || skip "root uses /run/gaterun"
	unset GATERUN_DIR
	def=/tmp/gaterun-$(id -u)
	[ -e "$def" ] || made=1
	XDG_RUNTIME_DIR=$BATS_TEST_TMPDIR "$G" -g "xdg-$$" -n -- true
	[ ! -e "$BATS_TEST_TMPDIR/gaterun" ]
	[ -f "$def/xdg-$$.gate" ]
	rm -f "$def/xdg-$$.gate" "$def/xdg-$$.lock"
	[ -z "${made:-}" ] || rm -rf "$def"
}

@test "a message goes out in one write, so that jobs sharing a log do not interleave their lines" {
	command -v strace >/dev/null || skip "strace is not installed"
	strace -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	run strace -f -s 200 -e trace=write -o tr "$G" --limit nope
	[ "$status" -eq 125 ]
	# One write to fd 2, holding the whole line (it was three before).
	[ "$(grep -c 'write(2, ' tr)" -eq 1 ]
	grep -q 'write(2, "gaterun: limit must be an integer.*\\n", ' tr
}
