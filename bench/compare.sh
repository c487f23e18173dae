#!/usr/bin/env bash
# The rows of issue 12's table, side by side: gaterun builds (before and
# after a change) against setlock (daemontools), flock (util-linux),
# task-spooler, GNU parallel's sem and xargs -P, with the state on tmpfs
# (/dev/shm) and on disk (/tmp, ext4 here). Every figure of a table comes
# from this one run: REPS rounds, each measuring every cell once in turn,
# and each cell is the median of its rounds, so that load from other work
# falls on all columns alike.
#
#   bench/compare.sh NAME=PATH/TO/gaterun...
#
# Prints the tables and puts them in bench/RESULTS.md between the
# "compare" markers (OUT=FILE to write elsewhere, OUT= for stdout only),
# with a plot, compare.png, beside OUT when gnuplot is there.
# Environment: REPS (3), N_LAT (200 hand-offs), N_DRAIN (500), NJ (200),
# N_ONE (100 hyperfine runs), N_SEM (50: sem's hand-offs; it polls, ~65 ms
# a call), STAMP (the probe; built from stamp.c when absent), RAW_KEEP
# (a file to keep every round's figures in, written as they come).
# Needs hyperfine, daemontools, task-spooler, parallel, python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
STAMP=${STAMP:-$here/stamp}
REPS=${REPS:-3}
N_LAT=${N_LAT:-200}
N_DRAIN=${N_DRAIN:-500}
NJ=${NJ:-200}
N_ONE=${N_ONE:-100}
N_SEM=${N_SEM:-50}
OUT=${OUT-$here/RESULTS.md}
builds=("$@")
[ ${#builds[@]} -gt 0 ] || { echo "usage: $0 NAME=GATERUN..." >&2; exit 2; }
for t in hyperfine setlock flock tsp sem python3; do
	command -v "$t" >/dev/null ||
	    { echo "compare.sh: $t is missing (apt-get install hyperfine daemontools task-spooler parallel)" >&2; exit 2; }
done
[ -x "$STAMP" ] || cc -O2 -static -o "$STAMP" "$here/stamp.c"
mkdir -p ~/.parallel && touch ~/.parallel/will-cite

# Every process this script starts in the background is recorded here and
# killed by PID at exit; tsp's server is ours alone (TS_SOCKET) and told
# to stop.
TOP=$(mktemp -d /dev/shm/gaterun-cmp.XXXXXX)
PIDS=$TOP/pids
RAW=${RAW_KEEP:-$TOP/raw.tsv}
: >"$PIDS"
: >"$RAW"
W=$TOP
cleanup() {
	local p t
	while read -r p t; do
		start_time "$p"
		if [ -n "$t" ] && [ "$START" = "$t" ]; then
			kill -KILL "$p" 2>/dev/null || true
		fi
	done <"$PIDS"
	tsp -K >/dev/null 2>&1 || true
	rm -rf "$TOP" "${WDISK:-}"
}
trap cleanup EXIT
# The start time of process $1 (field 22 of its stat) in START, empty if
# none, without a fork. The cleanup kills a recorded PID only while it
# still names the process started here: a PID reaped long ago may name
# anyone's process by now (pid_max is 32768 on 2 cores; killing recycled
# PIDs once took down another engineer's make check). tests/cli/common.bash
# has the same function; it is not sourced here: it is bats code (it calls
# bats_require_minimum_version and defines a bg of its own), and a bench
# that sources the test tree breaks when a test helper changes.
start_time() {
	local stat f
	START=
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
	read -ra f <<<"${stat##*) }"
	START=${f[19]}
}
bg() {
	"$@" &
	BGPID=$!
	start_time "$BGPID"
	echo "$BGPID $START" >>"$PIDS"
}

now() { date +%s.%N; }
elapsed() { python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
rec() { printf '%s\t%s\t%s\t%s\n' "$FS" "$1" "$2" "$3" >>"$RAW"; }
gaps() { python3 "$here/stats.py" gaps "$1" | cut -d' ' -f1,2; }
drainof() { python3 "$here/stats.py" drain "$1"; }
pss() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
# Median of a hyperfine run of one command, ms.
hf() {
	hyperfine -N -w "${3:-10}" -r "$2" --export-json "$W/hf.json" "$1" >/dev/null 2>&1
	python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$W/hf.json"
}
waiting() {
	"$G" -g "$1" --status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["waiting"])'
}
until_n() { while [ "$(waiting "$1")" -lt "$2" ]; do sleep 0.02; done; }
# Until every PID given has exec'd NAME and sleeps (a lock tool waiting),
# or is gone or a zombie (one that failed must not stall the run: its hand-off is
# missing from the gaps), then a settling pause for the last ones to
# reach their lock call.
until_exec() {
	local name=$1 p st
	shift
	for p in "$@"; do
		while st=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) &&
		    [ "$st" != Z ] && { [ "$st" != S ] ||
		    [ "$(cat "/proc/$p/comm" 2>/dev/null)" != "$name" ]; }; do
			sleep 0.01
		done
	done
	sleep 0.3
}
# Until the holder a lock tool started has the lock (its command ran).
until_held() { until [ -e "$W/held" ]; do sleep 0.01; done; rm -f "$W/held"; }
# A lock tool as "TOOL LOCKFILE CMD...": sem needs an id, not a file.
semlock() { local id=$1; shift; exec sem --fg --id "sem${id//\//_}" -j1 "$@"; }

# Hand-off on a gate: N probes queued on a paused gate, then limit 1; the
# gaps between consecutive probes' stamps, p50 p99. KILL=kill: each probe
# SIGKILLs itself after its stamp.
g_lat() {	# COL NAME GATERUN-FLAGS...
	local col=$1 name=$2 log=$W/lat_$2 i list=() p
	shift 2
	"$G" -g "$name" --limit 0 >/dev/null
	for ((i = 0; i < N_LAT; i++)); do
		# shellcheck disable=SC2086  # KILL: empty, or one word
		bg "$G" -g "$name" "$@" -- "$STAMP" "$log" s ${KILL:-}
		list+=("$BGPID")
	done
	until_n "$name" "$N_LAT"
	"$G" -g "$name" --limit 1 >/dev/null
	for p in "${list[@]}"; do wait "$p" 2>/dev/null || true; done
	rec "lat${KILL:-}" "$col" "$(gaps "$log")"
	rm -f "$log"
}
# The same for a lock tool: a holder waiting on a FIFO, N queued behind it.
l_lat() {	# COL COMM N TOOL...
	local col=$1 comm=$2 n=$3 log=$W/lat_$1 i list=() h p
	shift 3
	rm -f "$W/go"; mkfifo "$W/go"
	bg "$@" "$W/l.lock" sh -c ": >$W/held; read _ < $W/go"; h=$BGPID
	until_held
	for ((i = 0; i < n; i++)); do
		# shellcheck disable=SC2086
		bg "$@" "$W/l.lock" "$STAMP" "$log" s ${KILL:-}; list+=("$BGPID")
	done
	until_exec "$comm" "${list[@]}"
	echo >"$W/go"
	wait "$h" || true
	for p in "${list[@]}"; do wait "$p" 2>/dev/null || true; done
	rec "lat${KILL:-}" "$col" "$(gaps "$log")"
	rm -f "$log"
}
t_lat() {
	local log=$W/lat_tsp i
	rm -f "$W/go"; mkfifo "$W/go"
	tsp -S 1 >/dev/null
	tsp -n sh -c "read _ < $W/go" >/dev/null
	# shellcheck disable=SC2086
	for ((i = 0; i < N_LAT; i++)); do tsp -n "$STAMP" "$log" s ${KILL:-} >/dev/null; done
	echo >"$W/go"
	tsp -w >/dev/null 2>&1 || true
	while [ -n "$(tsp | awk 'NR > 1 && $2 != "finished"')" ]; do sleep 0.05; done
	tsp -C >/dev/null
	rec "lat${KILL:-}" tsp "$(gaps "$log")"
	rm -f "$log"
}
# No gate: xargs -P1 starting the probes back to back (the floor).
x_lat() {
	local log=$W/lat_x
	seq "$N_LAT" | xargs -P1 -I{} "$STAMP" "$log" s
	rec lat xargs "$(gaps "$log")"
	rm -f "$log"
}
# Drain: N_DRAIN probes queued at limit 1, seconds from open to last.
g_drain() {	# COL NAME FLAGS...
	local col=$1 name=$2 log=$W/dr_$2 i list=() p
	shift 2
	"$G" -g "$name" --limit 0 >/dev/null
	for ((i = 0; i < N_DRAIN; i++)); do
		bg "$G" -g "$name" "$@" -- "$STAMP" "$log" s; list+=("$BGPID")
	done
	until_n "$name" "$N_DRAIN"
	"$STAMP" "$log" h
	"$G" -g "$name" --limit 1 >/dev/null
	for p in "${list[@]}"; do wait "$p"; done
	rec drain "$col" "$(drainof "$log")"
	rm -f "$log"
}
l_drain() {	# COL COMM TOOL...
	local col=$1 comm=$2 log=$W/dr_$1 i list=() h p
	shift 2
	rm -f "$W/go"; mkfifo "$W/go"
	bg "$@" "$W/d.lock" sh -c ": >$W/held; read _ < $W/go; $STAMP $log h"
	h=$BGPID
	until_held
	for ((i = 0; i < N_DRAIN; i++)); do
		bg "$@" "$W/d.lock" "$STAMP" "$log" s; list+=("$BGPID")
	done
	until_exec "$comm" "${list[@]}"
	echo >"$W/go"
	wait "$h"
	for p in "${list[@]}"; do wait "$p"; done
	rec drain "$col" "$(drainof "$log")"
	rm -f "$log"
}
t_drain() {
	local log=$W/dr_tsp i
	rm -f "$W/go"; mkfifo "$W/go"
	tsp -S 1 >/dev/null
	tsp -n sh -c "read _ < $W/go; $STAMP $log h" >/dev/null
	for ((i = 0; i < N_DRAIN; i++)); do tsp -n "$STAMP" "$log" s >/dev/null; done
	echo >"$W/go"
	while [ "$( { wc -l <"$log"; } 2>/dev/null || echo 0)" -le "$N_DRAIN" ]; do sleep 0.05; done
	tsp -C >/dev/null
	rec drain tsp "$(drainof "$log")"
	rm -f "$log"
}
x_drain() {
	local log=$W/dr_x
	"$STAMP" "$log" h
	seq "$N_DRAIN" | xargs -P1 -I{} "$STAMP" "$log" s
	rec drain xargs "$(drainof "$log")"
	rm -f "$log"
}
# Throughput: NJ x sleep 0.02 started at once, 5 at a time: seconds.
run_many() {
	local i p list=()
	for ((i = 0; i < NJ; i++)); do bg "$@"; list+=("$BGPID"); done
	for p in "${list[@]}"; do wait "$p" || true; done
}
g_tp() {	# COL NAME FLAGS...
	local t0 col=$1 name=$2
	shift 2
	"$G" -g "$name" --limit 5 >/dev/null
	t0=$(now); run_many "$G" -g "$name" "$@" -- sleep 0.02
	rec tp "$col" "$(elapsed "$t0" "$(now)")"
}
flock5() { flock "$W/slot$((RANDOM % 5))" sleep 0.02; }
o_tp() {
	local t0 i
	t0=$(now); run_many flock5; rec tp flock "$(elapsed "$t0" "$(now)")"
	tsp -S 5 >/dev/null
	t0=$(now)
	for ((i = 0; i < NJ; i++)); do tsp -n sleep 0.02 >/dev/null; done
	while [ -n "$(tsp | awk 'NR > 1 && $2 != "finished"')" ]; do sleep 0.01; done
	rec tp tsp "$(elapsed "$t0" "$(now)")"
	tsp -C >/dev/null
	t0=$(now); seq "$NJ" | xargs -P5 -I{} sleep 0.02
	rec tp xargs "$(elapsed "$t0" "$(now)")"
}
# PSS (kB) of the third of 5 waiters.
g_pss() {	# COL NAME FLAGS...
	local col=$1 name=$2 i list=() p
	shift 2
	"$G" -g "$name" --limit 0 >/dev/null
	for ((i = 0; i < 5; i++)); do
		bg "$G" -g "$name" "$@" -- /bin/true; list+=("$BGPID")
	done
	until_n "$name" 5
	rec pss "$col" "$(pss "${list[2]}")"
	"$G" -g "$name" --limit 5 >/dev/null
	for p in "${list[@]}"; do wait "$p"; done
}
l_pss() {	# COL COMM TOOL...
	local col=$1 comm=$2 i list=() h p
	shift 2
	rm -f "$W/go"; mkfifo "$W/go"
	bg "$@" "$W/p.lock" sh -c ": >$W/held; read _ < $W/go"; h=$BGPID
	until_held
	for ((i = 0; i < 5; i++)); do
		bg "$@" "$W/p.lock" /bin/true; list+=("$BGPID")
	done
	until_exec "$comm" "${list[@]}"
	rec pss "$col" "$(pss "${list[2]}")"
	echo >"$W/go"
	wait "$h"
	for p in "${list[@]}"; do wait "$p"; done
}
t_pss() {
	local i list=() p
	rm -f "$W/go"; mkfifo "$W/go"
	tsp -S 1 >/dev/null
	tsp -n sh -c "read _ < $W/go" >/dev/null
	for ((i = 0; i < 5; i++)); do bg tsp -f /bin/true >/dev/null; list+=("$BGPID"); done
	until_exec tsp "${list[@]}"
	rec pss tsp "$(pss "${list[2]}")"
	echo >"$W/go"
	for p in "${list[@]}"; do wait "$p"; done
	tsp -C >/dev/null
}

# One round of every cell on one file system.
round() {	# ROUND
	local b name KILL
	for b in "${builds[@]}"; do
		name=${b%%=*}
		G=${b#*=}
		export GATERUN_DIR=$W/st-$name
		KILL=
		g_lat "$name" "l$name"
		g_lat "$name -x" "lx$name" -x
		KILL="kill"
		g_lat "$name" "lk$name"
		g_lat "$name -x" "lkx$name" -x
		KILL=
		g_drain "$name" "d$name"
		g_drain "$name -x" "dx$name" -x
		g_tp "$name" "t$name"
		g_tp "$name -x" "tx$name" -x
		rec one "$name" "$(hf "$G -- /bin/true" "$N_ONE")"
		rec one "$name -x" "$(hf "$G -x -- /bin/true" "$N_ONE")"
		g_pss "$name" "p$name"
		g_pss "$name -x" "px$name" -x
	done
	for KILL in "" kill; do
		l_lat setlock setlock "$N_LAT" setlock
		l_lat flock flock "$N_LAT" flock
		t_lat
	done
	KILL=
	x_lat
	l_drain setlock setlock setlock
	l_drain flock flock flock
	t_drain
	x_drain
	o_tp
	rec one setlock "$(hf "setlock $W/o.lock /bin/true" "$N_ONE")"
	rec one flock "$(hf "flock $W/o.lock /bin/true" "$N_ONE")"
	rec one tsp "$(hf "tsp -f /bin/true" "$N_ONE")"
	rec one timeout "$(hf "timeout 100 /bin/true" "$N_ONE")"
	rec one true "$(hf /bin/true "$N_ONE")"
	l_pss setlock setlock setlock
	l_pss flock flock flock
	t_pss
	if [ "$1" = 1 ]; then	# sem polls: ~65 ms a call; once, N_SEM hand-offs
		for KILL in "" kill; do l_lat sem sem "$N_SEM" semlock; done
		KILL=
		rec one sem "$(hf "sem --fg --id one$$ /bin/true" 10 1)"
		l_pss sem sem semlock
	fi
}

{
	echo "Load at start: $(uptime)"
	echo "Builds: $(printf '%s ' "${builds[@]}")"
} >"$TOP/meta"
WDISK=$(mktemp -d /tmp/gaterun-cmp.XXXXXX)
for ((r = 1; r <= REPS; r++)); do
	for fs in tmpfs:"$TOP/shm" ext4:"$WDISK/disk"; do
		FS=${fs%%:*}
		W=${fs#*:}
		mkdir -p "$W"
		export TMPDIR=$W TS_SOCKET=$W/tsp.sock TS_SAVELIST=$W/tsp.list
		echo "compare.sh: round $r/$REPS on $FS ($(stat -f -c %T "$W")), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
		round "$r"
		tsp -K >/dev/null 2>&1 || true
		rm -rf "$W"
	done
done
echo "Load at end: $(uptime)" >>"$TOP/meta"

table=$(python3 "$here/stats.py" compare "$RAW" "$TOP/meta" "$REPS" \
    "$N_LAT" "$N_DRAIN" "$NJ" "$N_SEM" "${builds[@]%%=*}")
plot=
if command -v gnuplot >/dev/null && [ -n "$OUT" ]; then
	python3 "$here/stats.py" plotdata "$RAW" "${builds[@]%%=*}" >"$TOP/plot.dat"
	gnuplot <<EOF
set terminal png size 1000,420
set output "$(dirname "$OUT")/compare.png"
set multiplot layout 1,2
set style data histograms
set style fill solid 0.8
set xtics rotate by -30
set yrange [0:*]
set title "hand-off p50, ms (median of $REPS rounds)"
plot "$TOP/plot.dat" using 2:xtic(1) title "tmpfs", "" using 3 title "ext4"
set title "one call on an idle gate, ms"
plot "$TOP/plot.dat" using 4:xtic(1) title "tmpfs", "" using 5 title "ext4"
unset multiplot
EOF
	plot="
![hand-off and one call, side by side](compare.png)"
fi
section="<!-- compare: begin (bench/compare.sh writes this section) -->
$table
$plot
<!-- compare: end -->"
echo "$section"
if [ -n "$OUT" ]; then
	if grep -q '^<!-- compare: begin' "$OUT" 2>/dev/null; then
		awk -v s="$section" '/^<!-- compare: begin/ { print s; skip = 1; next }
		    /^<!-- compare: end/ { skip = 0; next } !skip' "$OUT" >"$OUT.tmp"
		mv "$OUT.tmp" "$OUT"
	else
		printf '\n%s\n' "$section" >>"$OUT"
	fi
fi
