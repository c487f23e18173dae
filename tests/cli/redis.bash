# Shared helpers of the Redis store's tests (redis.bats, redis_lease.bats):
# real redis-server processes on free loopback ports (no persistence,
# stopped by PID), hosts simulated by GATERUN_HOST. Loaded after common.
# shellcheck shell=bash
# shellcheck disable=SC2016  # until_true's conditions: it expands them

# Any loopback port free now.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start a redis-server on port $1 (a new one: free_port), remember its PID
# in $RPID (stopped by stop_bg), and wait until it answers.
# shellcheck disable=SC2120  # redis.bats starts one again on its port
redis_start() {
	RPORT=${1:-$(free_port)}
	redis-server --port "$RPORT" --bind 127.0.0.1 --save '' \
		--appendonly no --dir "$BATS_TEST_TMPDIR" \
		>>"$BATS_TEST_TMPDIR/redis.log" 2>&1 &
	RPID=$!
	track "$RPID"
	until_true 'redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG'
	export GATERUN_STORE=redis://127.0.0.1:$RPORT
}

# The start of every test's setup: no state directory or other settings
# of the caller's, a server of its own (skipped without redis-server).
redis_setup() {
	export GATERUN_CONF="$BATS_TEST_TMPDIR/gaterun.conf"
	unset GATERUN_DIR GATERUN_GATE GATERUN_LIMIT GATERUN_LOG GATERUN_HOST \
		GATERUN_LEASE GATERUN_REDIS_PASSWORD_FILE
	cd "$BATS_TEST_TMPDIR" || return 1
	command -v redis-server >/dev/null || skip "redis-server is not installed"
	redis_start
}

# Start a job on host $1 of gate farm (the rest: its command). Its lease
# is 30 s unless the rest says otherwise: a renewal late by seconds (ASan
# on a loaded machine) must not get a healthy command stopped.
on_host() {
	local h=$1
	shift
	bg env GATERUN_HOST="$h" "$G" -g farm --lease 30 "$@"
}

# Host A takes gate farm's one free slot, lease $1, started through the
# rest if any (setsid): its command (PID in a.pid) runs until a TERM,
# then writes a.termed and exits 3. Its wrapper's PID in $a. The watchdog
# gives a TERMed command a fifth of the lease before KILL: a lease of 10 s
# or more gives the trap 2 s, which a loaded machine needs (0.6 s of a 3 s
# lease was once too short for sh to run it).
# shellcheck disable=SC2034  # $a is the test's
termable_a() {
	local lease=$1
	shift
	bg "$@" env GATERUN_HOST=A "$G" -g farm --lease "$lease" -- sh -c 'trap "echo > a.termed; exit 3" TERM; echo $$ > a.pid; while :; do sleep 0.05; done'
	a=$BG
	until_true '[ -s a.pid ] && [ "$(active farm)" -eq 1 ]'
}

# Host A takes gate farm's one free slot, lease $1, with a command that
# sleeps a minute (its PID in a.pid). Its wrapper's PID in $a.
# shellcheck disable=SC2034  # $a is the test's
sleeping_a() {
	on_host A --lease "$1" -- sh -c 'echo $$ > a.pid; exec sleep 60'
	a=$BG
	until_true '[ -s a.pid ] && [ "$(active farm)" -eq 1 ]'
}

# Gate farm (limit 1) taken by host A's command, which sleeps a minute
# (a.ran once it runs), and in line behind it a waiter of lease $1 on each
# host named after ($2...), its command "echo HOST ran" (said in bg.out),
# its PID in the variable named after the host in lower case ($b for B).
# Returns once all are in line.
held_with_waiters() {
	local lease=$1 host
	shift
	"$G" -g farm --limit 1 >/dev/null
	on_host A -- sh -c 'echo > a.ran; exec sleep 60'
	until_true '[ -e a.ran ]'
	for host; do
		on_host "$host" --lease "$lease" -- echo "$host ran"
		printf -v "${host,,}" %s "$BG"
	done
	until_true "[ \"\$(waiting farm)\" -eq $# ]"
}

# Host B waits in line behind A; once in, it writes to b.ran "after" if
# A's command was stopped (a.termed), else "during". Its PID in $b.
# shellcheck disable=SC2034  # $b is the test's
after_a() {
	on_host B -- sh -c 'if [ -e a.termed ]; then echo after > b.ran; else echo during > b.ran; fi'
	b=$BG
	until_true '[ "$(waiting farm)" -eq 1 ]'
}

# The children of process $1 but those named after it (of a wrapper: its
# watchdog).
others_of() {
	local w=$1 c
	shift
	for c in $(pgrep -P "$w"); do
		[[ " $* " == *" $c "* ]] || echo "$c"
	done
}

# 0 if process $1 is gone or a zombie (its parent has not reaped it yet).
ended() {
	local st
	st=$(proc_state "$1")
	[ -z "$st" ] || [ "$st" = Z ]
}

# How many TCP connections process $1 has established to the test's
# server (port $RPORT, on 127.0.0.1): its sockets' inodes looked up in
# /proc/net/tcp (state 01, established).
conns() {
	local inodes
	inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n' | tr '\n' ' ')
	awk -v port="$(printf ':%04X' "$RPORT")" -v inodes=" $inodes" '
		$4 == "01" && substr($3, length($3) - 4) == port && index(inodes, " " $10 " ") { n++ }
		END { print n + 0 }' /proc/net/tcp
}

# The most lines "start" seen before their "end" in log $1.
max_overlap() {
	awk '$1 == "start" { n++; if (n > m) m = n } $1 == "end" { n-- } END { print m + 0 }' "$1"
}

# Wait for each PID given: all exited 0, or show bg.out and fail.
# shellcheck disable=SC2154  # wait_status sets $status
all_ok() {
	local p
	for p; do
		wait_status "$p"
		[ "$status" -eq 0 ] || { cat bg.out; return 1; }
	done
}

# A job on host $1 of gate farm with lease $2 that logs "start NAME MS"
# and "end NAME MS" to file log (NAME: $3; MS: the time, ms since the
# epoch) and, when $4 is given, runs until that file exists. date's format
# comes in the environment: the command's text is recorded in the gate's
# key, which a test edits with Lua's gsub (where % is special).
logged_job() {
	local h=$1 lease=$2 name=$3 until=${4:-}
	local -x LOGGED_MS=+%s%3N
	on_host "$h" --lease "$lease" -- sh -c "echo \"start $name \$(date \$LOGGED_MS)\" >> log; until [ -z '$until' ] || [ -e '$until' ]; do sleep 0.05; done; echo \"end $name \$(date \$LOGGED_MS)\" >> log"
}

# The names logged as started, in order, on one line.
start_order() { awk '$1 == "start" { printf "%s ", $2 }' log; }

# Host $1 takes a slot of gate farm: a logged job named $1, lease $2, that
# runs until file $3 exists. Its wrapper's PID in the variable named after
# the host in lower case ($a for A). Returns once $4 (1 unless given) are
# active.
logged_holder() {
	logged_job "$1" "$2" "$1" "$3"
	printf -v "${1,,}" %s "$BG"
	until_true "[ \"\$(active farm)\" -eq ${4:-1} ]"
}

# Host $1 queues at gate farm: a logged job named $1, lease $2, that ends
# once in (or runs until file $4 exists, if given). Its wrapper's PID in
# the variable named after the host in lower case ($b for B). Returns once
# $3 (1 unless given) are waiting.
logged_waiter() {
	logged_job "$1" "$2" "$1" "${4:-}"
	printf -v "${1,,}" %s "$BG"
	until_true "[ \"\$(waiting farm 2>/dev/null)\" = ${3:-1} ]"
}

# Gate farm (limit 1) held by host A until file go exists, host B in
# line: both logged jobs (logged_holder, logged_waiter), PIDs in $a and $b.
# A's lease (20 s unless $1 says) has room for a slow restart of the
# server (ASan, a busy machine: a 9 s lease was lost there; one of 20 s is
# stopped unrenewed at 17.5 s), and A waits for a file, not a FIFO, so
# that the test never blocks on a holder that is gone. Not 30 s: the hold
# after a loss lasts as long as the longest lease seen. The waiter's lease
# (6 s unless $2 says) is short: a waiter that notices the loss holds
# newcomers back for one.
holder_and_waiter() {
	"$G" -g farm --limit 1 >/dev/null
	logged_holder A "${1:-20}" go
	logged_waiter B "${2:-6}"
}

# Gate farm (limit 1) held by host A (logged_holder, lease $1) until file
# go exists, and saved so: a copy of the server's data with A in it, which
# the server loads when it starts again (redis_restart).
saved_with_holder() {
	"$G" -g farm --limit 1 >/dev/null 2>&1
	logged_holder A "$1" go
	redis-cli -p "$RPORT" save >/dev/null
}

# Holder A's command ends (file go made): A and the waiter named $1 (its
# PID in the variable named after it in lower case) exit 0, and $1 starts
# less than $2 ms after A ended.
a_releases_to() {
	local pid=${1,,}
	touch go
	all_ok "$a" "${!pid}" || return 1
	started_within A "$1" "$2"
}

# Host A holds a slot of gate $1 (lease 30 s) with a command that, once
# file go exists, runs a nested gaterun of gate $2 whose command writes
# "inner ran in slot N" to file inner. A's PID in $a. Returns once $1 has
# it active.
# shellcheck disable=SC2034  # $a is the test's
nested_holder() {
	bg env GATERUN_HOST=A "$G" -g "$1" --lease 30 -- sh -c 'until [ -e go ]; do sleep 0.05; done; "$0" -g "$1" -- sh -c "echo inner ran in slot \$GATERUN_SLOT > inner"' "$G" "$2"
	a=$BG
	until_true "[ \"\$(active $1)\" -eq 1 ]"
}

# File go made: nested_holder's inner command runs (up to A's renewal,
# 10 s, and a loaded machine's slack; if not, show bg.out and gate $1),
# in slot 0; A exits 0, and gate $1 is left with nobody in or waiting.
nested_ran() {
	touch go
	until_true '[ -s inner ]' 2000 || { cat bg.out; "$G" -g "$1" --status; return 1; }
	all_ok "$a" || return 1
	[ "$(cat inner)" = "inner ran in slot 0" ] || return 1
	[ "$(active "$1")" -eq 0 ] || return 1
	[ "$(waiting "$1")" -eq 0 ]
}

# Waiters W1, W2... of lease $1, one on each host named after it, queued
# at gate farm in that order (each in line before the next comes): their
# PIDs in array pids.
line_up() {
	local lease=$1 h n=0
	shift
	pids=()
	for h; do
		n=$((n + 1))
		logged_job "$h" "$lease" "W$n"
		pids+=("$BG")
		until_true "[ \"\$(waiting farm)\" -eq $n ]"
	done
}

# Check log: never two jobs at once, and the jobs started in the order
# given ("A B ", as start_order says it).
one_at_a_time() {
	[ "$(max_overlap log)" -eq 1 ] || { cat log bg.out; return 1; }
	[ "$(start_order)" = "$1" ] || { cat log bg.out; return 1; }
}

# The time (ms) logged with event $1 (start, end) of job $2.
logged_ms() {
	awk -v e="$1" -v n="$2" '$1 == e && $2 == n { print $3 }' log
}

# Check that job $2 started less than $3 ms after job $1 ended (the times
# in log); if not, say how long after, and show log and bg.out.
started_within() {
	local end start
	end=$(logged_ms end "$1")
	start=$(logged_ms start "$2")
	[ $((start - end)) -lt "$3" ] ||
		{ echo "$2 started $((start - end)) ms after $1 ended"; cat log bg.out; return 1; }
}

# Delete the key of gate $1 (farm unless given) on the server, as an
# eviction or a stray DEL would: its state is lost under its processes.
del_gate_key() {
	redis-cli -p "$RPORT" del "gaterun:gate:${1:-farm}" >/dev/null
}

# Stop the test's server by signal $1 and wait until it is gone (with its
# data: it is started with no persistence, and loads only what a SAVE
# wrote before).
redis_stop() {
	kill -"$1" "$RPID"
	wait "$RPID" 2>/dev/null || true
}

# Stop the test's server by signal $1 (see redis_stop) and start it again
# on its port.
redis_restart() {
	redis_stop "$1"
	redis_start "$RPORT"
}

# Start a server of the test's own (in $RPORT, $RPID) whose wall clock the
# test steps: the microseconds written to file clock.shift (0 now) are
# added to it (clockshift.c). Skipped if clockshift.so is not built.
clockshift_start() {
	[ -e "${GATERUN_ARTIFACTS:-}/clockshift.so" ] ||
		skip "tests/clockshift.so is not built (make check builds it)"
	echo 0 >clock.shift
	CLOCKSHIFT_FILE=$PWD/clock.shift \
		LD_PRELOAD=$GATERUN_ARTIFACTS/clockshift.so redis_start
}
