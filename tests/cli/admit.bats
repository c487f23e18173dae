#!/usr/bin/env bats
# Admission beyond a count (issue 15): weights and priorities, from the
# command line; overlaps computed from start/end logs.

load common

# Largest sum of weights open at once, from "s NS W" / "e NS W" lines.
max_weight() {
	sort -k2,2n -k1,1 "$1" | awk '$1 == "s" { n += $3; if (n > m) m = n } $1 == "e" { n -= $3 } END { print m + 0 }'
}

@test "bad --weight and --priority values are refused with 125 and change nothing" {
	for bad in 0 5000 -1 abc '' ' 2' 2x +2 1.5; do
		run "$G" --weight "$bad" -- true
		[ "$status" -eq 125 ]
		[[ "$output" == "gaterun: --weight must be an integer from 1 to 4096: "* ]]
	done
	for bad in abc 1.5 '' - 2000000 -1000001 ' 1' +1 1x; do
		run "$G" --priority "$bad" -- true
		[ "$status" -eq 125 ]
		[[ "$output" == "gaterun: --priority must be an integer from -1000000 to 1000000: "* ]]
	done
	run "$G" -N 2 --status
	[ "$status" -eq 125 ]
	run "$G" -p 1 --limit 3
	[ "$status" -eq 125 ]
	[ ! -e "$GATERUN_DIR/default.gate" ]
	run "$G" -N 4096 -p -1000000 -n -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"--weight 4096 is above its limit 5: it could never run" ]]
}

@test "a weight above the limit exits 125 at once; -n with too few free exits 75" {
	"$G" --limit 2 >/dev/null
	run "$G" -N 3 -- true
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: cannot start: gate 'default': --weight 3 is above its limit 2: it could never run" ]
	[ "$(waiting)" -eq 0 ]
	bg "$G" -- sleep 30
	until_true '[ "$(active)" -eq 1 ]'
	run "$G" -n -N 2 -- true
	[ "$status" -eq 75 ]
	[ "$output" = "gaterun: cannot start: 2 slots needed, 1/2 in use on gate 'default'" ]
	run "$G" -n -N 1 -- true
	[ "$status" -eq 0 ]
}

@test "a weighted command holds its slots until it ends, then every one is free" {
	"$G" --limit 4 >/dev/null
	bg "$G" -N 3 -- sh -c 'echo $$ > cmd.pid; exec sleep 30'
	until_true '[ "$(active)" -eq 3 ] && [ -s cmd.pid ]'
	[ "$(status_field '[.slots[].weight] | unique | join(",")')" = 3 ]
	[ "$(status_field .free_slots)" -eq 1 ]
	kill -KILL "$BG"	# the wrapper: its command holds the 3 on
	until_true '! kill -0 "$BG" 2>/dev/null'
	[ "$(active)" -eq 3 ]
	kill -KILL "$(cat cmd.pid)"
	until_true '[ "$(active)" -eq 0 ]'
	run "$G" -n -N 4 -- true
	[ "$status" -eq 0 ]
}

@test "60 jobs of weights 1 to 3 on limit 4: never more than 4 slots at once, 4 reached" {
	"$G" --limit 4 >/dev/null
	pids=()
	for i in $(seq 60); do
		w=$((i % 3 + 1))
		"$G" -N $w -- sh -c "echo \"s \$(date +%s%N) $w\" >> log; sleep 0.1; echo \"e \$(date +%s%N) $w\" >> log" &
		pids+=($!)
		BG_PIDS+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p"
	done
	[ "$(grep -c '^s' log)" -eq 60 ]
	[ "$(grep -c '^e' log)" -eq 60 ]
	m=$(max_weight log)
	echo "most slots at once: $m"
	[ "$m" -le 4 ]
	[ "$m" -ge 3 ]
	[ "$(active)" -eq 0 ]
	[ "$(waiting)" -eq 0 ]
}

@test "nobody passes a heavy request at the head, though a slot is free" {
	"$G" --limit 2 >/dev/null
	bg "$G" -- sleep 30
	holder=$BG
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -N 2 -- sh -c 'echo heavy >> order'
	heavy=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	bg "$G" -p 9 -- sh -c 'echo light >> order'
	light=$BG
	until_true '[ "$(waiting)" -eq 2 ]'
	[ "$(active)" -eq 1 ]
	[ "$(status_field .head_waits_for)" = "the head needs 2 slots, 1 free" ]
	run "$G" --status
	[[ "${lines[1]}" == "the head needs 2 slots, 1 free" ]]
	[[ "$output" == *"(waiting #1, weight 2)"* ]]
	[[ "$output" == *"(waiting #2, priority 9)"* ]]
	[ ! -e order ]
	kill -TERM "$holder"
	wait "$heavy"
	wait "$light"
	[ "$(tr '\n' ' ' < order)" = "heavy light " ]
}

@test "priorities: higher first, first come first served within one, the head never passed" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 30
	holder=$BG
	until_true '[ "$(active)" -eq 1 ]'
	pids=()
	n=0
	for spec in a:0 b:0 c:5 d:5 e:10 f:-1 g:0; do
		bg "$G" -p "${spec#*:}" -- sh -c "echo ${spec%%:*} >> order"
		pids+=("$BG")
		n=$((n + 1))
		until_true "[ \"\$(waiting)\" -eq $n ]"
	done
	[ "$(status_field '[.waiters[].priority] | join(",")')" = "0,10,5,5,0,0,-1" ]
	kill -TERM "$holder"
	for p in "${pids[@]}"; do
		wait "$p"
	done
	[ "$(tr '\n' ' ' < order)" = "a e c d b g f " ]
}

@test "a waiter is passed by at most 16 later requests of a higher priority" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 30
	holder=$BG
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -- true
	until_true '[ "$(waiting)" -eq 1 ]'
	bg "$G" -p -5 -- true
	until_true '[ "$(waiting)" -eq 2 ]'
	for n in $(seq 3 20); do
		bg "$G" -p 7 -- true
		until_true "[ \"\$(waiting)\" -eq $n ]"
	done
	[ "$(status_field '.waiters[17].priority')" -eq -5 ]
	[ "$(status_field '.waiters[17].passed')" -eq 16 ]
	[ "$(status_field '[.waiters[18:][].priority] | join(",")')" = "7,7" ]
}

@test "--status, --json and --metrics say when the limit is lowered below a queued weight" {
	"$G" --limit 3 >/dev/null
	bg "$G" -- sleep 30
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -N 3 -- true
	until_true '[ "$(waiting)" -eq 1 ]'
	"$G" --limit 2 >/dev/null
	run "$G" --status
	[ "${lines[1]}" = "the head needs 3 slots, above the limit 2: it waits until the limit is raised" ]
	[ "$(status_field .head_weight)" -eq 3 ]
	[[ "$(status_field .head_waits_for)" == *"above the limit 2"* ]]
	run "$G" --metrics
	[[ "$output" == *'gaterun_head_weight{gate="default"} 3'* ]]
	[[ "$output" == *'gaterun_free_slots{gate="default"} 1'* ]]
	"$G" --limit 4 >/dev/null
	until_true '[ "$(waiting)" -eq 0 ]'
}

@test "the HTTP API shows weights, priorities and why the head waits" {
	"$G" --limit 2 >/dev/null
	bg "$G" -- sleep 30
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -N 2 -p 3 -- true
	until_true '[ "$(waiting)" -eq 1 ]'
	"${GATERUN_HTTPD:-$BATS_TEST_DIRNAME/../../src/gaterun-httpd}" -r 127.0.0.1:0 >httpd.out 2>httpd.err &
	BG_PIDS+=($!)
	until_true "grep -q listening httpd.out"
	url=http://127.0.0.1:$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' httpd.out)
	body=$(curl -s "$url/api/process-status")
	[ "$(jq -r .head_waits_for <<<"$body")" = "the head needs 2 slots, 1 free" ]
	[ "$(jq -r '.waiters[0] | "\(.weight) \(.priority)"' <<<"$body")" = "2 3" ]
	[ "$(jq -r '.slots[0].weight' <<<"$body")" = 1 ]
	curl -s "$url/metrics" | grep -qx 'gaterun_head_weight{gate="default"} 2'
}
