#!/usr/bin/env bats
# The limit under load, first-come first-served order, idle waiters.

load common

# Largest number of intervals open at once, from "s NS" / "e NS" lines.
max_overlap() {
	sort -k2,2n -k1,1 "$1" | awk '$1 == "s" { n++; if (n > m) m = n } $1 == "e" { n-- } END { print m + 0 }'
}

@test "60 jobs of sleep 0.1 on limit 3: never more than 3 at once, and 3 reached" {
	"$G" --limit 3 >/dev/null
	pids=()
	for i in $(seq 60); do
		"$G" -- sh -c 'echo "s $(date +%s%N)" >> log; '"$(hold_line log 3)"'; sleep 0.1; echo "e $(date +%s%N)" >> log' &
		pids+=($!)
		track $!
	done
	for p in "${pids[@]}"; do
		wait "$p"
	done
	[ "$(grep -c '^s' log)" -eq 60 ]
	[ "$(grep -c '^e' log)" -eq 60 ]
	m=$(max_overlap log)
	echo "max overlap: $m"
	[ "$m" -eq 3 ]
	[ "$(active)" -eq 0 ]
	[ "$(waiting)" -eq 0 ]
}

@test "waiters start in the order they arrived" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
	holder=$BG
	until_true '[ "$(active)" -eq 1 ]'
	pids=()
	for i in $(seq 12); do
		bg "$G" -- sh -c "echo $i >> order"
		pids+=("$BG")
		until_true "[ \"\$(waiting)\" -eq $i ]"
	done
	kill -TERM "$holder"
	for p in "${pids[@]}"; do
		wait "$p"
	done
	[ "$(tr '\n' ' ' < order)" = "1 2 3 4 5 6 7 8 9 10 11 12 " ]
}

@test "a waiting wrapper burns no CPU" {
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -- true
	w=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	t0=$(awk '{ print $14 + $15 }' "/proc/$w/stat")
	sleep 1
	t1=$(awk '{ print $14 + $15 }' "/proc/$w/stat")
	echo "CPU ticks while waiting 1 s: $((t1 - t0))"
	[ $((t1 - t0)) -le 1 ]
}

@test "hand-offs need no timer: 20 waiters of true drain within 15 s of the holder's end" {
	# A few ms each when idle; a waiter that noticed its turn on a 1 s
	# timer would take 20 s. The bound leaves room for a loaded machine.
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
	holder=$BG
	until_true '[ "$(active)" -eq 1 ]'
	pids=()
	for i in $(seq 20); do
		bg "$G" -- true
		pids+=("$BG")
	done
	until_true '[ "$(waiting)" -eq 20 ]'
	t0=$(date +%s%N)
	kill -TERM "$holder"
	for p in "${pids[@]}"; do
		wait "$p"
	done
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "drain of 20 waiters: $ms ms"
	[ "$ms" -lt 15000 ]
	[ "$(active)" -eq 0 ]
	[ "$(waiting)" -eq 0 ]
}

@test "1000 waiters on a limit-1 gate burn no CPU, then all run, in arrival order" {
	"$G" --limit 0 >/dev/null
	pids=()
	for i in $(seq 1000); do
		"$G" -x -- sh -c 'echo $$ >> order' &
		pids+=($!)
		track $!
	done
	until_true '[ "$(waiting)" -eq 1000 ]' 6000
	"$G" --status --json | jq -r '.waiters[].wrapper_pid' > queued
	t0=0
	for p in "${pids[@]}"; do t0=$((t0 + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
	sleep 1
	t1=0
	for p in "${pids[@]}"; do t1=$((t1 + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
	echo "CPU ticks of 1000 waiters in 1 s: $((t1 - t0))"
	[ $((t1 - t0)) -le 2 ]
	"$G" --limit 1 >/dev/null
	for p in "${pids[@]}"; do
		wait "$p"
	done
	[ "$(wc -l < order)" -eq 1000 ]
	cmp queued order
	[ "$(active)" -eq 0 ]
	[ "$(waiting)" -eq 0 ]
}

@test "a limit raised past many waiters in one step wakes every one it promotes" {
	# More promotions in one transaction than the engine lists by name.
	"$G" --limit 0 >/dev/null
	for _ in $(seq 30); do
		bg "$G" -- true
	done
	until_true '[ "$(waiting)" = 30 ]'
	"$G" --limit 20 >/dev/null
	until_true '[ "$(active)" = 0 ] && [ "$(waiting)" = 0 ]'
	for p in "${BG_PIDS[@]}"; do
		wait_status "$p"
		[ "$status" -eq 0 ]
	done
	[ "$(status_field .acquired_total)" = 30 ]
}
