#!/usr/bin/env bash
# The rows of issue 12's table in one run, side by side: gaterun builds
# (before and after a change) against setlock, flock, task-spooler and
# xargs -P, with the state on tmpfs (/dev/shm) and on disk (ext4 /tmp).
#
#   bench/compare.sh NAME=PATH/TO/gaterun... > table.md
#
# Needs bench/stamp (make bench builds it), hyperfine, daemontools
# (setlock), task-spooler (tsp). Every figure comes from this one run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
STAMP=$here/stamp
N_LAT=${N_LAT:-200}
N_DRAIN=${N_DRAIN:-500}
NJ=200
builds=("$@")
[ ${#builds[@]} -gt 0 ] || { echo "usage: $0 NAME=GATERUN..." >&2; exit 2; }
[ -x "$STAMP" ] || cc -O2 -static -o "$STAMP" "$here/stamp.c"
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done' EXIT

ms() { python3 -c 'import sys; print("%.3f" % (float(sys.argv[1]) * 1000))' "$1"; }
now() { date +%s.%N; }
elapsed() { python3 -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
# Median of a hyperfine run of one command, ms.
hf() {
	hyperfine -N -w 20 -r "${N_ONE:-300}" --export-json "$W/hf.json" "$1" >/dev/null 2>&1
	python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$W/hf.json"
}
waiting() {
	"$G" -g "$1" --status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["waiting"])'
}
until_n() { while [ "$(waiting "$1")" -lt "$2" ]; do sleep 0.02; done; }
gaps() { python3 "$here/stats.py" gaps "$1" | cut -d' ' -f1,2; }
drainof() { python3 "$here/stats.py" drain "$1"; }
pss() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }

# Hand-off: N_LAT probes queued on a paused gate, then limit 1: p50 p99.
g_lat() {
	local name=$1 log=$W/lat_$1 i list=()
	shift
	"$G" -g "$name" --limit 0 >/dev/null
	for ((i = 0; i < N_LAT; i++)); do
		# shellcheck disable=SC2086  # KILL: empty, or one word
		"$G" -g "$name" "$@" -- "$STAMP" "$log" s ${KILL:-} & list+=($!)
	done
	until_n "$name" "$N_LAT"
	"$G" -g "$name" --limit 1 >/dev/null
	for p in "${list[@]}"; do wait "$p" 2>/dev/null || true; done
	gaps "$log"
}
# The same for a lock tool: one holder, N_LAT queued behind it.
l_lat() {
	local log=$W/lat_$1 i list=() h
	shift
	"$@" "$W/l.lock" sleep 1 & h=$!
	sleep 0.1
	for ((i = 0; i < N_LAT; i++)); do
		"$@" "$W/l.lock" "$STAMP" "$log" s & list+=($!)
	done
	wait "$h"
	for p in "${list[@]}"; do wait "$p" 2>/dev/null || true; done
	gaps "$log"
}
# Drain: N_DRAIN probes queued at limit 1, seconds from open to last.
g_drain() {
	local name=$1 log=$W/dr_$1 i list=()
	shift
	"$G" -g "$name" --limit 0 >/dev/null
	for ((i = 0; i < N_DRAIN; i++)); do
		"$G" -g "$name" "$@" -- "$STAMP" "$log" s & list+=($!)
	done
	until_n "$name" "$N_DRAIN"
	"$STAMP" "$log" h
	"$G" -g "$name" --limit 1 >/dev/null
	for p in "${list[@]}"; do wait "$p"; done
	drainof "$log"
}
l_drain() {
	local log=$W/dr_$1 i list=() h
	shift
	"$@" "$W/d.lock" sh -c "sleep 0.5; $STAMP $log h" & h=$!
	sleep 0.1
	for ((i = 0; i < N_DRAIN; i++)); do
		"$@" "$W/d.lock" "$STAMP" "$log" s & list+=($!)
	done
	wait "$h"
	for p in "${list[@]}"; do wait "$p"; done
	drainof "$log"
}
t_lat() {
	local log=$W/lat_tsp i
	tsp -S 1 >/dev/null
	tsp -n sleep 0.5 >/dev/null
	for ((i = 0; i < N_LAT; i++)); do tsp -n "$STAMP" "$log" s >/dev/null; done
	while [ "$( { wc -l < "$log"; } 2>/dev/null || echo 0)" -lt "$N_LAT" ]; do sleep 0.05; done
	gaps "$log"
}
t_drain() {
	local log=$W/dr_tsp i
	tsp -S 1 >/dev/null
	tsp -n sh -c "sleep 0.5; $STAMP $log h" >/dev/null
	for ((i = 0; i < N_DRAIN; i++)); do tsp -n "$STAMP" "$log" s >/dev/null; done
	while [ "$( { wc -l < "$log"; } 2>/dev/null || echo 0)" -le "$N_DRAIN" ]; do sleep 0.05; done
	drainof "$log"
}
# Throughput: NJ x sleep 0.02 started at once, 5 at a time: seconds.
run_many() {
	local i p list=()
	for ((i = 0; i < NJ; i++)); do "$@" & list+=($!); done
	for p in "${list[@]}"; do wait "$p" || true; done
}
g_tp() {
	local t0 name=$1
	shift
	"$G" -g "$name" --limit 5 >/dev/null
	t0=$(now); run_many "$G" -g "$name" "$@" -- sleep 0.02; elapsed "$t0" "$(now)"
}
# PSS (kB) of the third of 5 waiters of a tool.
g_pss() {
	local name=$1 i list=() r
	shift
	"$G" -g "$name" --limit 0 >/dev/null
	for ((i = 0; i < 5; i++)); do "$G" -g "$name" "$@" -- /bin/true & list+=($!); done
	until_n "$name" 5
	r=$(pss "${list[2]}")
	"$G" -g "$name" --limit 5 >/dev/null
	for p in "${list[@]}"; do wait "$p"; done
	echo "$r"
}
l_pss() {
	local i list=() h r
	"$@" "$W/p.lock" sleep 2 & h=$!
	sleep 0.1
	for ((i = 0; i < 5; i++)); do "$@" "$W/p.lock" /bin/true & list+=($!); done
	sleep 0.3
	r=$(pss "${list[2]}")
	wait "$h" "${list[@]}"
	echo "$r"
}
t_pss() {
	local i list=() r
	tsp -S 1 >/dev/null
	tsp -n sleep 2 >/dev/null
	for ((i = 0; i < 5; i++)); do tsp -f /bin/true >/dev/null & list+=($!); done
	sleep 0.3
	r=$(pss "${list[2]}")
	wait "${list[@]}"
	echo "$r"
}

one_fs() {	# one_fs LABEL DIR
	local label=$1 b name
	W=$(mktemp -d "$2/gaterun-cmp.XXXXXX")
	export TMPDIR=$W TS_SOCKET=$W/tsp.sock TS_SAVELIST=$W/tsp.list
	echo "### state on $label ($(stat -f -c %T "$W"))"
	echo
	echo "| what | $(for b in "${builds[@]}"; do n=${b%%=*}; printf '%s | %s -x | ' "$n" "$n"; done)setlock | flock | tsp | xargs -P5 / timeout |"
	echo "|---|$(for b in "${builds[@]}"; do printf -- '---:|---:|'; done)---:|---:|---:|---:|"
	local lat="" latk="" dr="" tp="" one="" ps=""
	for b in "${builds[@]}"; do
		name=${b%%=*}
		G=${b#*=}
		export GATERUN_DIR=$W/st-$name
		lat+="$(g_lat "l$name") | $(g_lat "lx$name" -x) | "
		latk+="- | $(KILL="kill" g_lat "lk$name" -x) | "
		dr+="$(g_drain "d$name") | $(g_drain "dx$name" -x) | "
		tp+="$(g_tp "t$name") | $(g_tp "tx$name" -x) | "
		one+="$(hf "$G -- /bin/true") | $(hf "$G -x -- /bin/true") | "
		ps+="$(g_pss "p$name") | $(g_pss "px$name" -x) | "
	done
	tsp -K >/dev/null 2>&1 || true
	tsp >/dev/null 2>&1 || true
	local t0 tx tt tf
	t0=$(now); seq $NJ | xargs -P5 -I{} sleep 0.02; tx=$(elapsed "$t0" "$(now)")
	tsp -S 5 >/dev/null
	t0=$(now)
	for ((i = 0; i < NJ; i++)); do tsp -n sleep 0.02 >/dev/null; done
	while [ -n "$(tsp | awk 'NR > 1 && $2 != "finished"')" ]; do sleep 0.01; done
	tt=$(elapsed "$t0" "$(now)")
	flock5() { flock "$W/slot$((RANDOM % 5))" sleep 0.02; }
	t0=$(now); run_many flock5; tf=$(elapsed "$t0" "$(now)")
	tsp -C >/dev/null 2>&1 || true
	echo "| hand-off p50 p99, ms | $lat$(l_lat s setlock) | $(l_lat f flock) | $(t_lat) | - |"
	echo "| hand-off, holder SIGKILLed, p50 p99 | $latk- | - | - | - |"
	echo "| $N_DRAIN x true queued at limit 1, drain s | $dr$(l_drain s setlock) | $(l_drain f flock) | $(t_drain) | - |"
	echo "| $NJ x sleep 0.02 at limit 5, s | $tp- | $tf (5 files) | $tt | $tx |"
	echo "| one call on an idle gate, ms | $one$(hf "setlock $W/o.lock /bin/true") | $(hf "flock $W/o.lock /bin/true") | - | $(hf "timeout 100 /bin/true") |"
	echo "| PSS of one of 5 waiters, kB | $ps$(l_pss setlock) | $(l_pss flock) | $(t_pss) | - |"
	echo
	tsp -K >/dev/null 2>&1 || true
	rm -rf "$W"
}

echo "## Side by side ($(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo
echo "Builds: $(for b in "${builds[@]}"; do printf '%s = %s; ' "${b%%=*}" "${b#*=}"; done)"
echo "Load at start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
one_fs tmpfs /dev/shm
one_fs ext4 /tmp
echo "Load at end: $(cut -d' ' -f1-3 /proc/loadavg)."
