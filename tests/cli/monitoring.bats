#!/usr/bin/env bats
# Monitoring: --check (Nagios/Icinga plugin), --metrics (Prometheus text),
# --all for every gate.

load common

@test "--check: OK with perfdata, nothing created for an unused gate" {
	run "$G" --check
	[ "$status" -eq 0 ]
	[ "$output" = "GATERUN OK - default 0/5 (0%) | active=0;4;5;0;5 waiting=0" ]
	[ ! -e "$GATERUN_DIR" ]
}

@test "--check: WARNING and CRITICAL by utilization, thresholds set" {
	"$G" --limit 4 >/dev/null
	for i in 1 2 3; do bg "$G" -- sleep 1000; done
	until_true '[ "$(active)" -eq 3 ]'
	run "$G" --check
	[ "$status" -eq 0 ]
	[[ "$output" == "GATERUN OK - default 3/4 (75%) | active=3;4;4;0;4 waiting=0" ]]
	run "$G" --check --warn 50
	[ "$status" -eq 1 ]
	[[ "$output" == "GATERUN WARNING - default 3/4 (75%) |"* ]]
	run "$G" --check --warn 50 --crit 70
	[ "$status" -eq 2 ]
	[[ "$output" == "GATERUN CRITICAL - default 3/4 (75%) | active=3;2;3;0;4 waiting=0" ]]
}

@test "--check: a waiter stuck longer than --max-wait is CRITICAL; paused is WARNING" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -- true
	until_true '[ "$(waiting)" -eq 1 ]'
	sleep 0.3
	run "$G" --check --warn 100 --crit 100 --max-wait 0.1
	[ "$status" -eq 2 ]
	[[ "$output" == *"waiter stuck"* ]]
	"$G" -g quiet --limit 0 >/dev/null
	run "$G" -g quiet --check
	[ "$status" -eq 1 ]
	[[ "$output" == "GATERUN WARNING - quiet 0/0 (100%, paused) |"* ]]
}

@test "--check: UNKNOWN when the state cannot be read" {
	mkdir -m 777 "$GATERUN_DIR"
	chmod 777 "$GATERUN_DIR"
	run "$G" --check
	[ "$status" -eq 3 ]
	[[ "$output" == "GATERUN UNKNOWN - cannot read gate 'default'"* ]]
}

@test "--all: a gate that cannot be read is named, the others are shown, the exit says so" {
	"$G" -g a --limit 2 >/dev/null
	"$G" -g BAD -- true
	"$G" -g c -- true
	# A directory where BAD's state file should be: refused for root too.
	rm "$GATERUN_DIR/BAD.gate"
	mkdir "$GATERUN_DIR/BAD.gate"
	why="gaterun: cannot read gate 'BAD' in $GATERUN_DIR: "
	run --separate-stderr "$G" --all --status
	[ "$status" -eq 125 ]
	[[ "$stderr" == "$why"* ]]
	[[ "$output" == "gate 'a': 0/2 active"*"gate 'c': 0/5 active"* ]]
	[[ "$output" != *BAD* ]]
	run --separate-stderr "$G" --all --status --json
	[ "$status" -eq 125 ]
	[[ "$stderr" == "$why"* ]]
	[ "$(jq -r '[.gates[].gate] | join(" ")' <<<"$output")" = "a c" ]
	run --separate-stderr "$G" --all --metrics
	[ "$status" -eq 125 ]
	[[ "$stderr" == "$why"* ]]
	grep -qx 'gaterun_max_allowed{gate="a"} 2' <<<"$output"
	grep -qx 'gaterun_max_allowed{gate="c"} 5' <<<"$output"
	[[ "$output" != *BAD* ]]
	run --separate-stderr "$G" --all --check
	[ "$status" -eq 3 ]
	[[ "$output" == "GATERUN UNKNOWN - ${why#gaterun: }"* ]]
	# One gate: named as it was asked for; the others still read alone.
	run --separate-stderr "$G" -g BAD --status
	[ "$status" -eq 125 ]
	[[ "$stderr" == "$why"* ]]
	[ -z "$output" ]
	run "$G" -g a --status
	[ "$status" -eq 0 ]
}

@test "--all --check covers every gate, the worst state wins" {
	"$G" -g a --limit 1 >/dev/null
	"$G" -g b --limit 2 >/dev/null
	bg "$G" -g a -- sleep 1000
	until_true '[ "$(active a)" -eq 1 ]'
	run "$G" --all --check
	[ "$status" -eq 2 ]
	[ "$output" = "GATERUN CRITICAL - a 1/1 (100%), b 0/2 (0%) | a_active=1;1;1;0;1 a_waiting=0 b_active=0;2;2;0;2 b_waiting=0" ]
}

@test "--metrics: Prometheus text with HELP and TYPE for every metric" {
	"$G" -g x --limit 2 >/dev/null
	"$G" -g x -- true
	bg "$G" -g x -- sleep 1000
	until_true '[ "$(active x)" -eq 1 ]'
	run "$G" -g x --metrics
	[ "$status" -eq 0 ]
	for m in active_processes max_allowed utilization_ratio waiting acquired_total wait_seconds_total; do
		grep -qx "# HELP gaterun_$m .*" <<<"$output"
		grep -qx "# TYPE gaterun_$m \(gauge\|counter\)" <<<"$output"
	done
	grep -qx 'gaterun_active_processes{gate="x"} 1' <<<"$output"
	grep -qx 'gaterun_max_allowed{gate="x"} 2' <<<"$output"
	grep -qx 'gaterun_utilization_ratio{gate="x"} 0.5' <<<"$output"
	grep -qx 'gaterun_acquired_total{gate="x"} 2' <<<"$output"
	# Every sample line is NAME{gate="..."} NUMBER.
	bad=$(grep -v '^#' <<<"$output" | grep -vE '^gaterun_[a-z_]+\{gate="[A-Za-z0-9._-]+"\} [0-9.e+-]+$' || true)
	[ -z "$bad" ]
	if command -v promtool >/dev/null; then
		promtool check metrics <<<"$output"
	fi
}

@test "--all --status: every gate, human and JSON" {
	"$G" -g one -- true
	"$G" -g two -- true
	run "$G" --all --status
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "gate 'one': 0/5 active"* ]]
	[[ "${lines[-1]}" == "gate 'two': 0/5 active"* ]]
	run "$G" --all --status --json
	[ "$(jq -r '[.gates[].gate] | join(",")' <<<"$output")" = "one,two" ]
	[ "$(jq -r .schema <<<"$output")" -eq 1 ]
}

@test "--all, --warn, --crit and --max-wait only go with their modes" {
	run "$G" --all -- true
	[ "$status" -eq 125 ]
	run "$G" --warn 50 --status
	[ "$status" -eq 125 ]
	run "$G" --check --warn 90 --crit 80
	[ "$status" -eq 125 ]
	run "$G" --check --crit 101
	[ "$status" -eq 125 ]
	run "$G" --check --metrics
	[ "$status" -eq 125 ]
}

@test "--log and GATERUN_LOG log takes, releases, limit changes and kill-alls" {
	run env GATERUN_LOG=stderr "$G" -- sh -c 'exit 3'
	[ "$status" -eq 3 ]
	[[ "$output" == *"gate 'default': slot 0 taken by $(id -un), pid "*", after "*" s: sh -c exit 3"* ]]
	[[ "$output" == *"gate 'default': slot 0 released: pid "*" exited 3 after "* ]]
	run env GATERUN_LOG=stderr "$G" --limit 2
	[[ "$output" == *"limit 5 -> 2 by $(id -un)"* ]]
	run env GATERUN_LOG=stderr "$G" -- sh -c 'kill -TERM $$'
	[[ "$output" == *"killed by signal 15"* ]]
	run env GATERUN_LOG=stderr "$G" --kill-all
	[[ "$output" == *"kill-all by $(id -un): signal 15 sent to 0 processes"* ]]
	# Off by default and with GATERUN_LOG=0; no fd of the log reaches CMD.
	run env GATERUN_LOG=0 "$G" -- true
	[ -z "$output" ]
	base=$(sh -c 'ls /proc/self/fd' | sort | tr '\n' ' ')
	run env GATERUN_LOG=1 "$G" -- sh -c 'ls /proc/self/fd'
	[ "$(printf '%s\n' "${lines[@]}" | sort | tr '\n' ' ')" = "$base" ]
}

@test "--status --watch redraws on every change, long before its period, and on its period" {
	"$G" -- true
	# A period of 600 s: what this watcher redraws within the test comes
	# from the changes, not from time.
	bg "$G" --status --watch=600
	until_true "grep -q \"gate 'default': 0/5\" \"$BATS_TEST_TMPDIR/bg.out\""
	mkfifo go
	bg "$G" -- sh -c 'read -r _ < go'
	h=$BG
	until_true "grep -q \"gate 'default': 1/5\" \"$BATS_TEST_TMPDIR/bg.out\""
	timeout 20 sh -c 'echo > go'
	wait "$h"
	until_true "[ \"\$(grep -c \"gate 'default': 0/5\" \"$BATS_TEST_TMPDIR/bg.out\")\" -ge 2 ]"
	# With nothing changing, a short period still redraws.
	"$G" --status --watch=0.2 > periodic.out 2>&1 &
	track $!
	until_true "[ \"\$(grep -c \"gate 'default': 0/5\" periodic.out)\" -ge 3 ]"
	run "$G" --watch
	[ "$status" -eq 125 ]
	run "$G" --status --json --watch
	[ "$status" -eq 125 ]
	run "$G" --status --watch=0.01
	[ "$status" -eq 125 ]
}
