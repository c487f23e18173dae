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
