#!/usr/bin/env bats
# Admission beyond a count (issue 15): weights and priorities, from the
# command line; overlaps computed from start/end logs.

load common

# Largest sum of weights open at once, from "s NS W" / "e NS W" lines.
max_weight() {
	sort -k2,2n -k1,1 "$1" | awk '$1 == "s" { n += $3; if (n > m) m = n } $1 == "e" { n -= $3 } END { print m + 0 }'
}

# How many of the PIDs given still run (not ended, not zombies).
running() {
	local p n=0
	for p in "$@"; do
		if [ -e "/proc/$p/stat" ] && [ "$(sed 's/.*) //' "/proc/$p/stat" | cut -c1)" != Z ]; then
			n=$((n + 1))
		fi
	done
	echo "$n"
}

# How many gaterun processes follow the run of key $1 (their title says).
followers() {
	pgrep -cf "following '$1' on" || true
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
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	run "$G" -n -N 2 -- true
	[ "$status" -eq 75 ]
	[ "$output" = "gaterun: cannot start: 2 slots needed, 1/2 in use on gate 'default'" ]
	run "$G" -n -N 1 -- true
	[ "$status" -eq 0 ]
	# A heavy request at the head keeps the free slot: -n says why.
	bg "$G" -N 2 -- true
	until_true '[ "$(waiting)" -eq 1 ]'
	run "$G" -n -- true
	[ "$status" -eq 75 ]
	[ "$output" = "gaterun: cannot start: 1/2 in use on gate 'default', and the free ones are kept for a waiter ahead (heavier, or waiting for a resource): -n never passes it" ]
}

@test "a weighted command holds its slots until it ends, then every one is free" {
	"$G" --limit 4 >/dev/null
	bg "$G" -N 3 -- sh -c 'echo $$ > cmd.pid; exec sleep 1000'
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
		track $!
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
	bg "$G" -- sleep 1000
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
	bg "$G" -- sleep 1000
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
	bg "$G" -- sleep 1000
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
	bg "$G" -- sleep 1000
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
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -N 2 -p 3 -- true
	until_true '[ "$(waiting)" -eq 1 ]'
	"${GATERUN_HTTPD:-$BATS_TEST_DIRNAME/../../src/gaterun-httpd}" -r 127.0.0.1:0 >httpd.out 2>httpd.err &
	track $!
	until_true "grep -q listening httpd.out"
	url=http://127.0.0.1:$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' httpd.out)
	body=$(curl -s "$url/api/process-status")
	[ "$(jq -r .head_waits_for <<<"$body")" = "the head needs 2 slots, 1 free" ]
	[ "$(jq -r '.waiters[0] | "\(.weight) \(.priority)"' <<<"$body")" = "2 3" ]
	[ "$(jq -r '.slots[0].weight' <<<"$body")" = 1 ]
	curl -s "$url/metrics" | grep -qx 'gaterun_head_weight{gate="default"} 2'
}

@test "bad --unique keys are refused with 125; -u and -U exclude each other" {
	for bad in '' 'a b' 'x;y' "$(printf 'k%.0s' $(seq 33))" 'é'; do
		run "$G" --unique "$bad" -- true
		[ "$status" -eq 125 ]
		[[ "$output" == "gaterun: --unique must be 1 to 32 of "* ]]
	done
	run "$G" -U 'a b' -- true
	[ "$status" -eq 125 ]
	[[ "$output" == "gaterun: --unique-join must be 1 to 32 of "* ]]
	run "$G" -u a -U a -- true
	[ "$status" -eq 125 ]
	run "$G" -u a --status
	[ "$status" -eq 125 ]
	[ ! -e "$GATERUN_DIR/default.gate" ]
	run "$G" -u "build:1.2/x@y+z_-" -- echo ran
	[ "$status" -eq 0 ]
	[ "$output" = ran ]
}

@test "--unique: a second request with the key, running or queued, exits 75 at once" {
	"$G" --limit 1 >/dev/null
	bg "$G" -u backup -- sleep 1000
	first=$BG
	until_true '[ "$(active)" -eq 1 ]'
	[ "$(status_field '.slots[0].key')" = backup ]
	run "$G" -u backup -- echo ran
	[ "$status" -eq 75 ]
	[ "$output" = "gaterun: cannot start: gate 'default': a request with key 'backup' is already queued or running" ]
	run "$G" -E 3 -u backup -- echo ran
	[ "$status" -eq 3 ]
	bg "$G" -u queued -- true
	until_true '[ "$(waiting)" -eq 1 ]'
	run "$G" -u queued -- echo ran
	[ "$status" -eq 75 ]
	run "$G" --status
	[[ "$output" == *"sleep 1000 (key backup)"* ]]
	[[ "$output" == *"(waiting #1, key queued)"* ]]
	kill -TERM "$first"
	until_true '[ "$(waiting)" -eq 0 ] && [ "$(active)" -eq 0 ]'
	run "$G" -u backup -- echo ran
	[ "$status" -eq 0 ]
}

@test "--unique: the key of a SIGKILLed run frees with it" {
	bg "$G" -u k -x -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	run "$G" -u k -- true
	[ "$status" -eq 75 ]
	kill -KILL "$BG"
	until_true '[ "$(active)" -eq 0 ]'
	run "$G" -u k -- echo ran
	[ "$status" -eq 0 ]
	[ "$output" = ran ]
}

@test "--unique: of 20 requests at the same instant, exactly one runs" {
	"$G" --limit 20 >/dev/null
	pids=()
	for i in $(seq 20); do
		"$G" -u once -- sh -c 'echo x >> ran; until [ -e go ]; do sleep 0.01; done' 2>/dev/null &
		pids+=($!)
		track $!
	done
	# The one that runs waits until the 19 others have ended.
	until_true '[ "$(running "${pids[@]}")" -eq 1 ]'
	touch go
	ok=0
	n75=0
	for p in "${pids[@]}"; do
		wait_status "$p"
		[ "$status" -ne 0 ] || ok=$((ok + 1))
		[ "$status" -ne 75 ] || n75=$((n75 + 1))
	done
	[ "$ok" -eq 1 ]
	[ "$n75" -eq 19 ]
	[ "$(wc -l < ran)" -eq 1 ]
}

@test "--unique-join: followers exit with the status of the run they joined" {
	"$G" --limit 1 >/dev/null
	bg "$G" -U build -- sh -c 'until [ -e go ]; do sleep 0.01; done; echo first >> ran; exit 7'
	first=$BG
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -U build -- sh -c 'echo second >> ran'
	f1=$BG
	bg "$G" -U build -- sh -c 'echo third >> ran'
	f2=$BG
	until_true '[ "$(followers build)" -eq 2 ]'
	[ "$(waiting)" -eq 0 ]	# followers do not queue
	touch go
	wait_status "$first"
	[ "$status" -eq 7 ]
	wait_status "$f1"
	[ "$status" -eq 7 ]
	wait_status "$f2"
	[ "$status" -eq 7 ]
	[ "$(cat ran)" = first ]
	run "$G" -U build -- sh -c 'exit 3'
	[ "$status" -eq 3 ]	# nobody runs it now: this one runs
}

@test "--unique-join: a run killed by a signal gives 128+N; a killed wrapper gives 125" {
	bg "$G" -U k -- sh -c 'echo $$ > pid; exec sleep 1000'
	until_true '[ -s pid ]'
	bg "$G" -U k -- true
	f=$BG
	until_true '[ "$(followers k)" -eq 1 ]'
	kill -TERM "$(cat pid)"
	wait_status "$f"
	[ "$status" -eq $((128 + 15)) ]
	rm pid
	bg "$G" -U k -- sh -c 'echo $$ > pid; exec sleep 1000'
	w=$BG
	until_true '[ -s pid ]'
	bg "$G" -U k -- true
	f=$BG
	until_true '[ "$(followers k)" -eq 1 ]'
	kill -KILL "$w"
	kill -KILL "$(cat pid)"
	wait_status "$f"
	[ "$status" -eq 125 ]
	grep -q "ended without leaving its exit status" bg.out
}

@test "--unique-join with -n exits 75 at once, with -w when the time runs out" {
	bg "$G" -u k -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	run "$G" -n -U k -- true
	[ "$status" -eq 75 ]
	run "$G" -w 0.2 -U k -- true
	[ "$status" -eq 75 ]
	[[ "$output" == *"the run with key 'k' (wrapper $BG) did not end in time" ]]
}

@test "parents: gates a and b (limit 3) under p (limit 4): never more than 4 at once, never more than 3 of a" {
	"$G" -g p --limit 4 >/dev/null
	"$G" -g a --limit 3 --parent p >/dev/null
	"$G" -g b --limit 3 --parent p >/dev/null
	pids=()
	for i in $(seq 40); do
		g=$([ $((i % 2)) -eq 0 ] && echo a || echo b)
		"$G" -g "$g" -- sh -c "echo \"s \$(date +%s%N) 1 $g\" >> log; $(hold_line log 4); sleep 0.1; echo \"e \$(date +%s%N) 1 $g\" >> log" &
		pids+=($!)
		track $!
	done
	for p in "${pids[@]}"; do
		wait "$p"
	done
	[ "$(grep -c '^s' log)" -eq 40 ]
	all=$(max_weight log)
	ma=$(grep ' a$' log > log.a; max_weight log.a)
	mb=$(grep ' b$' log > log.b; max_weight log.b)
	echo "at once: $all in all, $ma of a, $mb of b"
	[ "$all" -eq 4 ]
	[ "$ma" -le 3 ]
	[ "$mb" -le 3 ]
	for g in p a b; do
		[ "$(active "$g")" -eq 0 ]
		[ "$(waiting "$g")" -eq 0 ]
	done
}

@test "parents: a full parent holds the child's command back; -n gives back the child's slot" {
	"$G" -g p --limit 1 >/dev/null
	"$G" -g a --limit 3 --parent p >/dev/null
	bg "$G" -g p -- sleep 1000
	until_true '[ "$(active p)" -eq 1 ]'
	run "$G" -g a -n -- echo ran
	[ "$status" -eq 75 ]
	[ "$output" = "gaterun: cannot start: maximum concurrent processes reached (1/1 on gate 'p', parent of 'a')" ]
	[ "$(active a)" -eq 0 ]
	bg "$G" -g a -- sh -c 'echo ran > ran'
	until_true '[ "$(waiting p)" -eq 1 ]'
	[ "$(active a)" -eq 1 ]	# a's slot is held while p's is waited for
	[ ! -e ran ]
	run "$G" -g a -N 4 -- true
	[ "$status" -eq 125 ]
	kill -TERM "${BG_PIDS[0]}"
	until_true '[ -e ran ]'
	until_true '[ "$(active a)" -eq 0 ] && [ "$(active p)" -eq 0 ]'
}

@test "parents: a -n newcomer refused by a paused parent is told it is paused, not that the maximum is reached" {
	# Failed before: "maximum concurrent processes reached (0/0 on gate
	# 'p', parent of 'a')".
	"$G" -g p --limit 0 >/dev/null
	"$G" -g a --limit 3 --parent p >/dev/null
	run -75 "$G" -g a -n -- echo ran
	[ "$output" = "gaterun: cannot start: gate 'p', parent of 'a', is paused (limit 0, 0 running): 'gaterun -g p --limit N' resumes it" ]
	[ "$(active a)" -eq 0 ]
}

@test "parents: a SIGKILLed wrapper's command keeps its slots in the gate and the parent" {
	"$G" -g p --limit 2 >/dev/null
	"$G" -g a --parent p --limit 2 >/dev/null
	bg "$G" -g a -- sh -c 'echo $$ > cmd.pid; exec sleep 1000'
	until_true '[ -s cmd.pid ] && [ "$(active p)" -eq 1 ]'
	kill -KILL "$BG"
	until_true '! kill -0 "$BG" 2>/dev/null'
	[ "$(active a)" -eq 1 ]
	[ "$(active p)" -eq 1 ]
	kill -KILL "$(cat cmd.pid)"
	until_true '[ "$(active a)" -eq 0 ] && [ "$(active p)" -eq 0 ]'
}

@test "parents: cycles, a gate its own parent, bad names and --parent without --limit are refused" {
	"$G" -g b --limit 2 --parent a >/dev/null
	"$G" -g c --limit 2 --parent b >/dev/null
	run "$G" -g a --limit 2 --parent c
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: gate 'a' cannot have parent 'c': 'a' is above 'c' already (a cycle)" ]
	run "$G" -g a --limit 2 --parent a
	[ "$status" -eq 125 ]
	run "$G" -g a --limit 2 --parent 'x/y'
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: invalid parent gate name 'x/y'" ]
	run "$G" -g a --parent b -- true
	[ "$status" -eq 125 ]
	[ "$(status_field .parent a)" = null ]
	# A cycle made in the configuration is refused at run time.
	printf '[gate a]\nparent = c\n' > "$GATERUN_CONF"
	run "$G" -g c -- echo ran
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: gate 'c': its parents make a cycle through 'c'" ]
	"$G" -g b --limit 2 --parent '' >/dev/null
	run "$G" -g c -- echo ran
	[ "$status" -eq 0 ]
	[ "$output" = ran ]
}

@test "parents: 'parent = p' in a [gate a] section; --status and --json show it" {
	printf '[gate a]\nparent = p\nlimit = 2\n' > "$GATERUN_CONF"
	"$G" -g p --limit 1 >/dev/null
	bg "$G" -g a -- sleep 1000
	until_true '[ "$(active p)" -eq 1 ]'
	[ "$(active a)" -eq 1 ]
	[ "$(status_field .parent a)" = p ]
	run "$G" -g a --status
	[ "${lines[1]}" = "parent gate 'p': each command also takes a slot there" ]
	printf '[gate a]\nparent = .bad\n' > "$GATERUN_CONF"
	run "$G" -g a -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"parent must be a gate name"* ]]
}

@test "parents: a nested gaterun into a child of a gate its ancestor holds runs within that slot (no hang)" {
	"$G" -g p --limit 1 >/dev/null
	"$G" -g c1 --limit 2 --parent p >/dev/null
	"$G" -g c2 --limit 2 --parent p >/dev/null
	run timeout 20 "$G" -g p -- "$G" -g c1 -- sh -c 'echo "$GATERUN_SLOT_GATE"'
	[ "$status" -eq 0 ]
	[ "$output" = c1 ]
	run timeout 20 "$G" -g c1 -- "$G" -g c2 -- echo hi
	[ "$status" -eq 0 ]
	[ "$output" = hi ]
	# c1's own limit still counts: two c1 slots held, a third waits.
	bg "$G" -g p -- "$G" -g c1 -- sleep 1000
	until_true '[ "$(active c1)" -eq 1 ]'
	[ "$(active p)" -eq 1 ]
	for g in p c1 c2; do
		[ "$(waiting "$g")" -eq 0 ]
	done
}

@test "parents: a gate's parent does not change while commands run or wait in it (no deadlock)" {
	"$G" -g x --limit 1 >/dev/null
	"$G" -g y --limit 1 >/dev/null
	bg "$G" -g x -- sleep 1000
	until_true '[ "$(active x)" -eq 1 ]'
	run "$G" -g x --limit 1 --parent y
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: cannot change the parent of gate 'x' while commands run or wait in it" ]
	[ "$(status_field .parent x)" = null ]
	bg "$G" -g x -- true
	until_true '[ "$(waiting x)" -eq 1 ]'
	kill -TERM "${BG_PIDS[0]}"
	until_true '[ "$(active x)" -eq 0 ] && [ "$(waiting x)" -eq 0 ]'
	# The same parent again is no change; an idle gate's parent changes.
	"$G" -g x --limit 1 --parent y >/dev/null
	bg "$G" -g x -- sleep 1000
	until_true '[ "$(active y)" -eq 1 ]'
	"$G" -g x --limit 1 --parent y >/dev/null
	run "$G" -g x --limit 1 --parent ''
	[ "$status" -eq 125 ]
	[ "$(status_field .parent x)" = y ]
}

@test "parents: concurrent --parent settings never store a cycle" {
	for i in $(seq 30); do
		"$G" -g "a$i" --limit 2 --parent "b$i" >/dev/null 2>&1 &
		p1=$!
		"$G" -g "b$i" --limit 2 --parent "a$i" >/dev/null 2>&1 &
		p2=$!
		wait "$p1" || true
		wait "$p2" || true
		[ "$(status_field .parent "a$i")" = null ] || [ "$(status_field .parent "b$i")" = null ]
	done
}

@test "parents: a weight above a parent's limit is refused at once, not after waiting at the head" {
	"$G" -g p --limit 2 >/dev/null
	"$G" -g c --limit 3 --parent p >/dev/null
	bg "$G" -g c -- sleep 1000
	until_true '[ "$(active c)" -eq 1 ]'
	run timeout 20 "$G" -g c -N 3 -- echo heavy
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: cannot start: --weight 3 is above the limit 2 of gate 'p', parent of 'c': it could never run" ]
	[ "$(waiting c)" -eq 0 ]
	[ "$(active c)" -eq 1 ]
}

@test "parents: --parent without --limit says so; --limit --parent --json reports the parent" {
	run "$G" -g x --parent p
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: --parent only goes with --limit (gaterun -g GATE --limit N --parent PARENT)" ]
	run "$G" -g x --limit 2 --parent p --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -c '[.new_limit, .parent]')" = '[2,"p"]' ]
	run "$G" -g x --limit 3 --json
	[ "$output" = '{"gate":"x","old_limit":2,"new_limit":3}' ]
}
