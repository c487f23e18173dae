#!/usr/bin/env bats
# Resource-aware admission: --min-mem, --max-pressure, --max-load. Most
# tests point gaterun at a procfs of their own (GATERUN_PROCFS) and flip
# it by rewriting a file; the last one fills real memory.

load common

# A procfs of the test's own: MemAvailable $1 kB of 4 GiB, memory
# pressure (some avg10) $2, load $3. Each file is written whole, then
# renamed in place, so a reader never sees half of one.
fake_proc() {
	local p="$BATS_TEST_TMPDIR/proc"
	mkdir -p "$p/pressure"
	printf 'MemTotal:        4194304 kB\nMemFree:  1000 kB\nMemAvailable:   %s kB\n' \
		"$1" >"$p/meminfo.new"
	printf 'some avg10=%s avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n' \
		"${2:-0.00}" >"$p/pressure/memory.new"
	printf '%s 0.50 0.50 1/100 4242\n' "${3:-0.10}" >"$p/loadavg.new"
	mv "$p/meminfo.new" "$p/meminfo"
	mv "$p/pressure/memory.new" "$p/pressure/memory"
	mv "$p/loadavg.new" "$p/loadavg"
	export GATERUN_PROCFS="$p"
}

@test "bad values are refused with 125 and change nothing" {
	# the bounds the man page gives: 1 EiB, six decimals (1T is below)
	run "$G" -n -F 1048576T -- true
	[ "$status" -eq 75 ]
	run "$G" -n -F 1.123456 -- true
	[ "$status" -eq 0 ]
	for a in "--min-mem 12X" "--min-mem 0" "--min-mem 101%" "-F 1.5%" \
		"-F 1025P" "-F 1048577T" "-F 1.1234567" \
		"--max-pressure 101" "--max-pressure disk:5" "-I -1" \
		"--max-load -1" "--max-load x" "-O 1.234"; do
		# shellcheck disable=SC2086
		run "$G" $a -- true
		[ "$status" -eq 125 ]
		[[ "$output" == "gaterun: --"* ]]
		[[ "$output" == *"'"* ]]
	done
	run "$G" --min-mem 12X -- true
	[[ "$output" == *"--min-mem must be a size"*"'12X'" ]]
	run "$G" --max-pressure 101 -- true
	[[ "$output" == *"PCT from 0 to 100"*"'101'" ]]
	run "$G" --status --min-mem 1G
	[ "$status" -eq 125 ]
	[[ "$output" == *"only go with a command"* ]]
	[ ! -e "$GATERUN_DIR" ]
}

@test "a need that cannot be checked is refused before anything changes" {
	GATERUN_PROCFS=$BATS_TEST_TMPDIR/none run "$G" --min-mem 1G -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"cannot read $BATS_TEST_TMPDIR/none/meminfo"* ]]
	fake_proc 1048576
	run "$G" --max-pressure cpu:5 -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"pressure/cpu"* ]]
	[ ! -e "$GATERUN_DIR" ]
}

@test "-n with a need not met exits 75 at once and says which" {
	fake_proc 1048576 34.50 3.20
	run "$G" -n --min-mem 2G -- touch ran
	[ "$status" -eq 75 ]
	[[ "$output" == *"gate 'default': waiting for memory: 1 GiB available, needs 2 GiB"* ]]
	run "$G" -n --min-mem 50% -- touch ran
	[ "$status" -eq 75 ]
	[[ "$output" == *"1 GiB available (25% of 4 GiB), needs 50%"* ]]
	run "$G" -n --max-pressure 20 -- touch ran
	[ "$status" -eq 75 ]
	[[ "$output" == *"waiting for memory pressure: 34.5% (some avg10), at most 20%"* ]]
	run "$G" -n --max-load 2.5 -- touch ran
	[ "$status" -eq 75 ]
	[[ "$output" == *"waiting for load: 3.2 (1 min), at most 2.5"* ]]
	[ ! -e ran ]
	run "$G" -n --min-mem 1G --max-pressure 40 --max-load 4 -- touch ran
	[ "$status" -eq 0 ]
	[ -e ran ]
	[ "$(active)" -eq 0 ]
	[ "$(waiting)" -eq 0 ]
}

@test "the head held by memory keeps its place; it starts when memory frees, then the rest" {
	fake_proc 1258291
	"$G" --limit 1 >/dev/null
	bg "$G" --min-mem 2G -- sh -c 'echo mem >> order'
	mem=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	bg "$G" -p 9 -- sh -c 'echo plain >> order'
	plain=$BG
	until_true '[ "$(waiting)" -eq 2 ]'
	[ "$(active)" -eq 0 ]
	[ "$(status_field .head_waits_for)" = "waiting for memory: 1.2 GiB available, needs 2 GiB" ]
	[ "$(status_field '.waiters[0].needs.min_mem_bytes')" -eq 2147483648 ]
	[ "$(status_field '.waiters[1].needs')" = null ]
	run "$G" --status
	[ "$status" -eq 0 ]
	[[ "${lines[1]}" == "waiting for memory: 1.2 GiB available, needs 2 GiB" ]]
	[[ "$output" == *"(waiting #1, min-mem 2 GiB)"* ]]
	[[ "$output" == *"(waiting #2, priority 9)"* ]]
	run "$G" --metrics
	[[ "$output" == *'gaterun_head_resource_held{gate="default"} 1'* ]]
	grep -q ' mem=2147483648' "$GATERUN_DIR/default.gate"
	[ ! -e order ]
	fake_proc 3145728
	wait_status "$mem"
	[ "$status" -eq 0 ]
	wait_status "$plain"
	[ "$status" -eq 0 ]
	[ "$(tr '\n' ' ' < order)" = "mem plain " ]
	run "$G" --metrics
	[[ "$output" == *'gaterun_head_resource_held{gate="default"} 0'* ]]
}

@test "a head held by memory does not wait for slots it has: it waits for a holder first, then for memory" {
	fake_proc 1048576
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
	holder=$BG
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" --min-mem 2G -- touch ran
	mem=$BG
	until_true '[ "$(waiting)" -eq 1 ]'
	[ "$(status_field .head_waits_for)" = null ]
	kill -TERM "$holder"
	until_true '[ "$(active)" -eq 0 ]'
	until_true '[ "$(status_field .head_waits_for)" != null ]'
	[ "$(waiting)" -eq 1 ]
	[ ! -e ran ]
	fake_proc 2097152
	wait_status "$mem"
	[ "$status" -eq 0 ]
	[ -e ran ]
}

@test "a stopped head whose need is met is said to be able to start, and starts when continued" {
	fake_proc 1048576
	"$G" --limit 2 >/dev/null
	bg "$G" --min-mem 2G -- touch ran
	mem=$BG
	until_true '[[ "$(status_field .head_waits_for)" == "waiting for memory: "* ]]'
	kill -STOP "$mem"
	fake_proc 2097152
	[ "$(status_field .head_waits_for)" = "the head can start (needs 1, 2 free): it does at its next look, within a second, unless it is stopped" ]
	[ ! -e ran ]
	kill -CONT "$mem"
	wait_status "$mem"
	[ "$status" -eq 0 ]
	[ -e ran ]
}

@test "pressure and load hold the head the same way" {
	fake_proc 1048576 50.00 8.00
	bg "$G" --max-pressure memory:10 --max-load 4 -- touch ran
	w=$BG
	until_true '[ "$(status_field .head_waits_for)" = "waiting for memory pressure: 50% (some avg10), at most 10%" ]'
	fake_proc 1048576 5.00 8.00
	until_true '[ "$(status_field .head_waits_for)" = "waiting for load: 8 (1 min), at most 4" ]'
	[ "$(status_field '.waiters[0].needs.max_pressure.memory')" = 10 ]
	[ "$(status_field '.waiters[0].needs.max_load')" = 4 ]
	[ ! -e ran ]
	fake_proc 1048576 5.00 1.00
	wait_status "$w"
	[ "$status" -eq 0 ]
	[ -e ran ]
}

@test "a FIFO in place of a procfs file stops neither the gate nor a reader" {
	fake_proc 1048576 0.00 9.00
	bg "$G" --max-load 5 -- touch ran
	until_true '[ "$(status_field .head_waits_for)" = "waiting for load: 9 (1 min), at most 5" ]'
	rm "$GATERUN_PROCFS/loadavg"
	mkfifo "$GATERUN_PROCFS/loadavg"
	# The head reads it under the gate's lock once a second; for 3 s, a
	# limit change (which takes that lock) still goes through at once.
	end=$((SECONDS + 3))
	while [ "$SECONDS" -lt "$end" ]; do
		run timeout 20 "$G" --limit 4
		[ "$status" -eq 0 ]
	done
	run timeout 20 "$G" --status
	[ "$status" -eq 0 ]
	rm "$GATERUN_PROCFS/meminfo"
	mkfifo "$GATERUN_PROCFS/meminfo"
	run timeout 20 "$G" -n --min-mem 1G -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"meminfo: not a regular file"* ]]
	[ ! -e ran ]
}

@test "-w bounds a wait for memory: 75, saying why, and the line is left" {
	fake_proc 1048576
	run "$G" -w 0.5 --min-mem 2G -- touch ran
	[ "$status" -eq 75 ]
	[[ "$output" == *"waiting for memory: 1 GiB available, needs 2 GiB"* ]]
	[ ! -e ran ]
	[ "$(waiting)" -eq 0 ]
}

@test "real memory: a --min-mem waiter waits while memory is filled and starts when it is freed" {
	avail_kb() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
	if [ "$(avail_kb)" -lt $((2 << 20)) ]; then
		skip "less than 2 GiB available"
	fi
	# Fill 512 MiB (bounded: the first touch of a page is slow in some
	# VMs, 40 MB/s under load), then ask for what is available now plus
	# half of that: short while it is filled, met once it is freed, with
	# 256 MiB of margin either way for what others do meanwhile.
	hog=$((512 << 20))
	bg python3 -c 'import sys, time
x = b"\1" * int(sys.argv[1])
open(sys.argv[2], "w").close()
time.sleep(600)' "$hog" "$BATS_TEST_TMPDIR/filled"
	hogpid=$BG
	until_true '[ -e filled ] || ! kill -0 '"$hogpid" 12000
	[ -e filled ]
	need=$(($(avail_kb) + (hog >> 11)))K
	bg "$G" --min-mem "$need" -- touch ran
	until_true '[[ "$(status_field .head_waits_for)" == "waiting for memory: "* ]]'
	[ ! -e ran ]
	kill -KILL "$hogpid"
	until_true '[ -e ran ]' 3000
	until_true '[ "$(waiting)" -eq 0 ]'
}

@test "the HTTP API says why the head waits for memory" {
	[ -x "${GATERUN_HTTPD:-}" ] || skip "gaterun-httpd not built"
	fake_proc 1048576
	bg "$G" --min-mem 2G -- true
	until_true '[ "$(waiting)" -eq 1 ]'
	"$GATERUN_HTTPD" -r 127.0.0.1:0 >httpd.out 2>httpd.err &
	track $!
	until_true "grep -q listening httpd.out"
	url=http://127.0.0.1:$(sed -n 's|.*http://127.0.0.1:\([0-9]*\)/.*|\1|p' httpd.out)
	body=$(curl -s "$url/api/process-status")
	[ "$(jq -r .head_waits_for <<<"$body")" = "waiting for memory: 1 GiB available, needs 2 GiB" ]
	[ "$(jq -r '.waiters[0].needs.min_mem_bytes' <<<"$body")" = 2147483648 ]
	curl -s "$url/metrics" | grep -qx 'gaterun_head_resource_held{gate="default"} 1'
}
