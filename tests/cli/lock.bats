#!/usr/bin/env bats
# A gate's lock held by a process that is stopped (Ctrl-Z, SIGSTOP, a
# frozen cgroup): reads need no lock and answer; -n and -w bound the wait
# for it, Ctrl-C and SIGTERM end it, and a wait that lasts names the
# holder.

load common

# Take the gate's lock with flock(1) and stop it there: sets HOLDER. (-o:
# the lock is flock's own, not its command's, and goes with it.)
stopped_holder() {
	"$G" --limit 2 >/dev/null
	"$G" -- true
	bg flock -o "$GATERUN_DIR/default.lock" sleep 1000
	HOLDER=$BG
	until_true '! flock -n "$GATERUN_DIR/default.lock" true'
	kill -STOP "$HOLDER"
}

# Milliseconds on the monotonic clock.
now_ms() {
	echo $(($(cut -d' ' -f1 /proc/uptime | tr -d .) * 10))
}

# 0 once PID has ended (a zombie has: it waits for our wait).
ended() {
	[ ! -d "/proc/$1" ] || grep -q '^State:.Z' "/proc/$1/status"
}

# 0 once PID waits for a lock (/proc/locks shows it blocked: "->").
lock_waiter() {
	grep -q -- "-> FLOCK  ADVISORY  WRITE $1 " /proc/locks
}

@test "a stopped lock holder: --status, --check, --metrics and --is-active still answer" {
	stopped_holder
	run timeout -k 1 5 "$G" --status
	[ "$status" -eq 0 ]
	[ "$output" = "gate 'default': 0/2 active (0%), 0 waiting, can start: yes" ]
	run timeout -k 1 5 "$G" --check
	[ "$status" -eq 0 ]
	[[ "$output" == "GATERUN OK"* ]]
	run timeout -k 1 5 "$G" --metrics
	[ "$status" -eq 0 ]
	[[ "$output" == *'gaterun_max_allowed{gate="default"} 2'* ]]
	run timeout -k 1 5 "$G" --is-active $$
	[ "$status" -eq 1 ]
	run timeout -k 1 5 "$G" --all --status --json
	[ "$status" -eq 0 ]
}

@test "a stopped lock holder: -n gives up within its second, exit 75, naming the holder" {
	stopped_holder
	t0=$(now_ms)
	run timeout -k 1 10 "$G" -n -- echo ran
	t1=$(now_ms)
	echo "$output"
	[ "$status" -eq 75 ]
	[ "${lines[0]}" = "gaterun: gate 'default' locked by PID $HOLDER (flock, stopped) for 1 s" ]
	[[ "${lines[1]}" == "gaterun: cannot start: gate 'default': its lock was not free in time"* ]]
	[ "$((t1 - t0))" -lt 3000 ]
	run timeout -k 1 10 "$G" -n -E 9 -- echo ran
	[ "$status" -eq 9 ]
}

@test "a stopped lock holder: -w 0.2 gives up within about a second" {
	stopped_holder
	t0=$(now_ms)
	run timeout -k 1 10 "$G" -w 0.2 -- echo ran
	t1=$(now_ms)
	echo "$output"
	[ "$status" -eq 75 ]
	[[ "$output" == *"locked by PID $HOLDER (flock, stopped)"* ]]
	[ "$((t1 - t0))" -lt 2500 ]
}

@test "SIGTERM and Ctrl-C (SIGINT) end a wait for the lock" {
	stopped_holder
	bg "$G" -- echo ran
	w=$BG
	until_true "lock_waiter $w"
	t0=$(now_ms)
	kill -TERM "$w"
	until_true "ended $w"
	wait_status "$w"
	[ "$status" -eq 143 ]
	[ "$(($(now_ms) - t0))" -lt 2000 ]
	bg "$G" -- echo ran
	w=$BG
	until_true "lock_waiter $w"
	kill -INT "$w"
	until_true "ended $w"
	wait_status "$w"
	[ "$status" -eq 130 ]
	run grep -c ran "$BATS_TEST_TMPDIR/bg.out"
	[ "$output" = 0 ]
}

@test "a wait for the lock without a bound lasts, says who keeps it, and runs once it is free" {
	stopped_holder
	bg "$G" -- echo ran
	w=$BG
	until_true "grep -q 'locked by PID $HOLDER (flock, stopped) for 2 s' '$BATS_TEST_TMPDIR/bg.out'"
	bg "$G" --limit 3
	l=$BG
	until_true "grep -q \"locked by PID $HOLDER (flock, stopped) for 1 s\" '$BATS_TEST_TMPDIR/bg.out'"
	kill_tree "$HOLDER"
	wait_status "$w"
	[ "$status" -eq 0 ]
	wait_status "$l"
	[ "$status" -eq 0 ]
	grep -qx ran "$BATS_TEST_TMPDIR/bg.out"
	[ "$(status_field .max_allowed)" = 3 ]
}

@test "a stopped lock holder: gaterun-httpd's reads still answer" {
	H=${GATERUN_HTTPD:-$BATS_TEST_DIRNAME/../../src/gaterun-httpd}
	[ -x "$H" ] || skip "gaterun-httpd not built"
	command -v curl >/dev/null || skip "curl needed"
	stopped_holder
	"$H" --public-read 127.0.0.1:0 >httpd.out 2>httpd.err &
	track "$!"
	until_true "grep -q listening httpd.out"
	url=$(grep -o 'http://127.0.0.1:[0-9]*' httpd.out)
	run curl -s -m 5 "$url/api/process-status"
	[ "$status" -eq 0 ]
	[ "$(jq .max_allowed <<<"$output")" = 2 ]
	run curl -s -m 5 "$url/api/gates"
	[ "$status" -eq 0 ]
}
