#!/usr/bin/env bats
# The file store's limits: a state never grows past what reading accepts,
# and a state file larger than that (an older gaterun's, or forged) is
# salvaged with every live holder and the limit it names.

load common

# The start time of PID (field 22 of /proc/PID/stat), as records hold it.
start_of() {
	sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f20
}

# A holder record of slot $1, ticket $2, for the live process $3.
holder() {
	echo "h $1 $2 $3 $(start_of "$3") 0 0 0 1 - :/ :sleep"
}

@test "an oversized state file: the salvage keeps every live holder and the limit" {
	"$G" --limit 2 >/dev/null
	bg sleep 123457
	a=$BG
	bg sleep 123458
	b=$BG
	# 10,300 waiter lines of 8 KB each (a process long gone, whose cwd and
	# command are 1,024 bytes of 0x80): 84 MB, more than reading accepts
	# (80 MiB).
	enc=$(printf '\\200%.0s' $(seq 1024))
	{
		echo "gaterun-state 1"
		echo "boot $(cat /proc/sys/kernel/random/boot_id)"
		printf 'limit 2\nticket 10\nacquired 2\nwaitns 0\n'
		holder 0 1 "$a"
		yes "w - 5 999999 1 0 0 0 1 ab :$enc :$enc" | head -n 10300
		holder 1 2 "$b"		# forged: a holder after the waiters
		echo end
	} > "$GATERUN_DIR/default.gate"
	[ "$(stat -c %s "$GATERUN_DIR/default.gate")" -gt $((80 << 20)) ]
	run "$G" -n -- echo ran
	echo "$output"
	[ "$status" -eq 75 ]
	[[ "${lines[0]}" == *"default.gate is damaged (larger than any real gate): moved aside"* ]]
	[ "${lines[-1]}" = "gaterun: cannot start: maximum concurrent processes reached (2/2 on gate 'default')" ]
	[ "$(status_field .max_allowed)" = 2 ]
	[ "$(status_field '.active_pids | sort | join(" ")')" = "$(printf '%s\n' "$a" "$b" | sort | paste -sd' ')" ]
	[ "$(stat -c %s "$GATERUN_DIR/default.gate")" -lt 4096 ]
}

@test "a full queue refuses one more waiter with a clear message, and the state stays readable" {
	"$G" --limit 1 >/dev/null
	bg sleep 123459
	w=$BG
	# A live holder, then 100,000 live waiters (the ceiling a state holds).
	{
		echo "gaterun-state 1"
		echo "boot $(cat /proc/sys/kernel/random/boot_id)"
		printf 'limit 1\nticket 200000\nacquired 1\nwaitns 0\n'
		holder 0 1 "$w"
		awk -v p="$w" -v s="$(start_of "$w")" 'BEGIN {
			for (i = 2; i < 100002; i++)
				printf "w - %d %d %d 0 0 0 1 ab :/ :x\n", i, p, s }'
		echo end
	} > "$GATERUN_DIR/default.gate"
	run "$G" -w 5 -- echo ran
	echo "$output"
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: cannot queue on gate 'default': the gate's queue is full (100000 waiting): try again later" ]
	# Nothing was written: the state reads as it was, not damaged.
	run "$G" -n -- echo ran
	[ "$status" -eq 75 ]
	[ "$output" = "gaterun: cannot start: maximum concurrent processes reached (1/1 on gate 'default')" ]
	[ "$(grep -c '^w ' "$GATERUN_DIR/default.gate")" -eq 100000 ]
	[ -z "$(find "$GATERUN_DIR" -name 'default.corrupt-*')" ]
}

# A user of its own for the test of reading root's gates (root only).
U=gaterun-t-reader

setup_file() {
	[ "$(id -u)" -eq 0 ] || return 0
	command -v useradd >/dev/null || return 0
	id "$U" >/dev/null 2>&1 || useradd -M -N -s /bin/sh "$U"
}

teardown_file() {
	[ "$(id -u)" -eq 0 ] || return 0
	userdel "$U" 2>/dev/null || true
}

teardown() {
	stop_bg
	[ -z "${SHARED:-}" ] || rm -rf "$SHARED"
}

@test "a user who may read root's gate files may look: --status, --check, --metrics, --is-active" {
	[ "$(id -u)" -eq 0 ] || skip "needs root to make a test user"
	command -v runuser >/dev/null || skip "runuser needed"
	id "$U" >/dev/null 2>&1 || skip "useradd needed"
	# Root's gates in a directory everyone may read, as /run/gaterun.
	SHARED=$(mktemp -d /tmp/gaterun-st.XXXXXX)
	chmod 755 "$SHARED"
	export GATERUN_DIR=$SHARED/state
	install -m 755 "$G" "$SHARED/gaterun"
	G=$SHARED/gaterun
	"$G" --limit 2 >/dev/null
	bg "$G" -- sleep 123460
	until_true '[ "$(active)" = 1 ]'
	cmd=$(status_field '.slots[0].pid')
	[ "$(stat -c %a "$GATERUN_DIR")" = 755 ]
	[ "$(stat -c %a "$GATERUN_DIR/default.gate" "$GATERUN_DIR/default.lock" | sort -u)" = 644 ]
	run runuser -u "$U" -- env GATERUN_DIR="$GATERUN_DIR" "$G" --status
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "gate 'default': 1/2 active (50%), 0 waiting, can start: yes" ]]
	[[ "$output" == *"sleep 123460"* ]]
	run runuser -u "$U" -- env GATERUN_DIR="$GATERUN_DIR" "$G" --check
	[ "$status" -eq 0 ]
	[[ "$output" == "GATERUN OK"* ]]
	run runuser -u "$U" -- env GATERUN_DIR="$GATERUN_DIR" "$G" --metrics
	[ "$status" -eq 0 ]
	[[ "$output" == *'gaterun_active_processes{gate="default"} 1'* ]]
	run runuser -u "$U" -- env GATERUN_DIR="$GATERUN_DIR" "$G" --is-active "$cmd"
	[ "$status" -eq 0 ]
	run runuser -u "$U" -- env GATERUN_DIR="$GATERUN_DIR" "$G" --all --status --json
	[ "$status" -eq 0 ]
	[ "$(jq '.gates[0].active_processes' <<<"$output")" = 1 ]
	# Looking is all: changes stay root's.
	run runuser -u "$U" -- env GATERUN_DIR="$GATERUN_DIR" "$G" --limit 5
	[ "$status" -eq 125 ]
	[ "$(status_field .max_allowed)" = 2 ]
}

@test "a SIGKILLed waiter's FIFO goes with its record, not left in the directory" {
	"$G" -g k --limit 1
	bg "$G" -g k -- sh -c 'until [ -e go ]; do sleep 0.01; done'
	h=$BG
	until_true '[ "$(active k)" -eq 1 ]'
	bg "$G" -g k -- true
	until_true '[ "$(waiting k)" -eq 1 ]'
	fifo=$(cd "$GATERUN_DIR" && echo .w.*)
	[ -p "$GATERUN_DIR/$fifo" ]
	kill -KILL "$BG"
	# kill(2) returns before the process has ended: an ASan waiter still
	# tearing down its memory holds its FIFO open and is alive to the
	# release, which would wake it rather than reap it. Dead first.
	wait "$BG" || true
	touch go
	wait_status "$h"
	[ "$status" -eq 0 ]
	# the release reaped the dead head of the line, and its FIFO with it
	until_true '[ ! -e "$GATERUN_DIR/$fifo" ]'
	[ "$(waiting k)" -eq 0 ]
}
