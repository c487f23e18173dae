#!/usr/bin/env bash
# gaterun benchmarks, side by side with the tools users would pick instead,
# all in one run on one machine (figures from different runs are never
# compared). Writes bench/RESULTS.md and bench/results.png.
#
#   bench/run.sh [--quick]
#
# Peers come from Debian: util-linux flock, daemontools setlock, moreutils
# lckdo, GNU parallel sem, task-spooler tsp, findutils xargs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
G=${G:-$top/src/gaterun}
STAMP=${STAMP:-$here/stamp}
quick=0
[ "${1:-}" = --quick ] && quick=1

need() {
	local pkgs=()
	command -v hyperfine >/dev/null || pkgs+=(hyperfine)
	command -v setlock >/dev/null || pkgs+=(daemontools)
	command -v lckdo >/dev/null || pkgs+=(moreutils)
	command -v sem >/dev/null || pkgs+=(parallel)
	command -v tsp >/dev/null || pkgs+=(task-spooler)
	command -v gnuplot >/dev/null || pkgs+=(gnuplot-nox)
	command -v python3 >/dev/null || pkgs+=(python3)
	if ((${#pkgs[@]})); then
		apt-get install -y -q "${pkgs[@]}" >/dev/null
	fi
}
need
[ -x "$G" ] || { echo "build gaterun first (make)" >&2; exit 1; }
[ -x "$STAMP" ] || cc -O2 -static -o "$STAMP" "$here/stamp.c"

# Everything on tmpfs, as /run is on a real system.
W=$(mktemp -d /dev/shm/gaterun-bench.XXXXXX)
export GATERUN_DIR=$W/state TS_SOCKET=$W/tsp.sock TS_SAVELIST=$W/tsp.list
export TMPDIR=$W
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	tsp -K >/dev/null 2>&1 || true
	rm -rf "$W"
}
trap cleanup EXIT
mkdir -p ~/.parallel && touch ~/.parallel/will-cite
OUT=$here/RESULTS.md
# The sections other scripts write (between "<!-- NAME: begin" and
# "<!-- NAME: end" lines) are kept and put back at the end.
KEEP=$W/kept.md
awk '/^<!-- [a-z0-9]+: begin/ { k = 1 } k { print } /^<!-- [a-z0-9]+: end/ { k = 0; print "" }' \
    "$OUT" >"$KEEP" 2>/dev/null || :
DATA=$W/data
mkdir -p "$DATA"

N_OVER=$((quick ? 50 : 300))
N_LAT=$((quick ? 50 : 200))
N_SCALE=$((quick ? 100 : 1000))
N_DRAIN=$((quick ? 100 : 500))

ms() { python3 -c "import sys; print('%.3f' % (float(sys.argv[1]) * 1000))" "$1"; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

{
echo "# gaterun benchmarks"
echo
echo "One run of \`bench/run.sh\` on $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%M:%SZ)."
echo "State and lock files on tmpfs. Ratios compare figures from this run only."
echo
} > "$OUT"

# 1. Overhead ------------------------------------------------------------
echo "== overhead" >&2
tsp -S 1 >/dev/null
hyperfine -N -w 20 -r "$N_OVER" --export-json "$DATA/over.json" \
	-n true "/bin/true" \
	-n "timeout 100 true" "timeout 100 /bin/true" \
	-n "flock F true" "flock $W/f.lock /bin/true" \
	-n "setlock F true" "setlock $W/s.lock /bin/true" \
	-n "lckdo F true" "lckdo $W/l.lock /bin/true" \
	-n "gaterun -- true" "$G -- /bin/true" \
	-n "gaterun -x -- true" "$G -x -- /bin/true" \
	-n "tsp -f true" "tsp -f /bin/true" >/dev/null 2>&1
hyperfine -N -w 2 -r $((quick ? 5 : 20)) --export-json "$DATA/over_sem.json" \
	-n "sem --fg true" "sem --fg --id bench$$ /bin/true" >/dev/null 2>&1
python3 - "$DATA/over.json" "$DATA/over_sem.json" >> "$OUT" <<'PY'
import json, sys
rows = []
for p in sys.argv[1:]:
    rows += json.load(open(p))["results"]
med = {r["command"]: r["median"] * 1000 for r in rows}
g = med["gaterun -- true"]
gx = med["gaterun -x -- true"]
print("## 1. Overhead (median of %d runs, ms)\n" % len(rows[0]["times"]))
print("| command | median ms | above bare true | gaterun -- true / this | gaterun -x / this |")
print("|---|---:|---:|---:|---:|")
for r in rows:
    m = r["median"] * 1000
    print("| `%s` | %.3f | %+.3f | %.2f | %.2f |" % (r["command"], m, m - med["true"], g / m, gx / m))
print()
PY

# 2. Throughput under contention ----------------------------------------
echo "== throughput" >&2
NJ=200
run_many() {	# run_many CMD...: NJ copies at once, wait for all
	local i p list=()
	for ((i = 0; i < NJ; i++)); do
		"$@" &
		list+=($!)
	done
	for p in "${list[@]}"; do wait "$p" || true; done
}
"$G" -g tp --limit 5 >/dev/null
t0=$(now); run_many "$G" -g tp -- sleep 0.02; t_g=$(elapsed "$t0" "$(now)")
"$G" -g tpx --limit 5 >/dev/null
t0=$(now); run_many "$G" -g tpx -x -- sleep 0.02; t_gx=$(elapsed "$t0" "$(now)")
t0=$(now); seq $NJ | xargs -P5 -n1 sh -c 'exec sleep 0.02' x; t_x=$(elapsed "$t0" "$(now)")
t0=$(now); seq $NJ | xargs -P5 -I{} sleep 0.02; t_x2=$(elapsed "$t0" "$(now)")
flock5() { flock "$W/slot$((RANDOM % 5))" sleep 0.02; }
t0=$(now); run_many flock5; t_f=$(elapsed "$t0" "$(now)")
tsp -S 5 >/dev/null
t0=$(now); for ((i = 0; i < NJ; i++)); do tsp -n sleep 0.02 >/dev/null; done; tsp -w >/dev/null 2>&1 || true
while [ -n "$(tsp | awk 'NR > 1 && $2 != "finished"')" ]; do sleep 0.01; done
t_t=$(elapsed "$t0" "$(now)")
if ((quick)); then
	t_s=NA
else
	t0=$(now); for ((i = 0; i < NJ; i++)); do sem -j5 --id tp$$ sleep 0.02; done; sem --wait --id tp$$; t_s=$(elapsed "$t0" "$(now)")
fi
# The overlap, with each command logging its start and end.
"$G" -g ov --limit 5 >/dev/null
run_many "$G" -g ov -- sh -c "$STAMP $DATA/ov.log s; sleep 0.02; $STAMP $DATA/ov.log e"
ov=$(python3 "$here/stats.py" overlap "$DATA/ov.log")
{
echo "## 2. Throughput: $NJ separate \`sleep 0.02\` started at once, 5 at a time (s)"
echo
echo "Ideal: 0.80 s. Max overlap seen under gaterun (each command logging start and end): **$ov** (limit 5)."
echo
echo "| tool | seconds | gaterun / this |"
echo "|---|---:|---:|"
echo "| gaterun | $t_g | 1.00 |"
echo "| gaterun -x | $t_gx | $(ratio "$t_g" "$t_gx") |"
echo "| xargs -P5 (one parent) | $t_x2 | $(ratio "$t_g" "$t_x2") |"
echo "| xargs -P5 sh -c 'exec sleep' | $t_x | $(ratio "$t_g" "$t_x") |"
echo "| tsp -S 5 | $t_t | $(ratio "$t_g" "$t_t") |"
echo "| 5-file flock semaphore | $t_f | $(ratio "$t_g" "$t_f") |"
if [ "$t_s" != NA ]; then echo "| sem -j5 | $t_s | $(ratio "$t_g" "$t_s") |"; fi
echo
} >> "$OUT"
echo "throughput gaterun $t_g gaterun-x $t_gx xargs $t_x2 tsp $t_t flock5 $t_f sem $t_s" > "$DATA/tp.txt"

# 3. Wake latency -------------------------------------------------------
echo "== latency" >&2
until_n() {	# until_n GATE N: wait until N are queued
	while [ "$("$G" -g "$1" --status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["waiting"])')" -lt "$2" ]; do sleep 0.05; done
}
lat_gate() {	# lat_gate NAME LOG [ARGS...]: N_LAT queued, then opened
	local name=$1 log=$2 i list=()
	shift 2
	"$G" -g "$name" --limit 0 >/dev/null
	for ((i = 0; i < N_LAT; i++)); do
		"$G" -g "$name" "$@" &
		list+=($!)
	done
	until_n "$name" "$N_LAT"
	"$G" -g "$name" --limit 1 >/dev/null
	for p in "${list[@]}"; do wait "$p" 2>/dev/null || true; done
}
lat_gate lat "$DATA/lat_g.log" -- "$STAMP" "$DATA/lat_g.log" s
lat_gate latx "$DATA/lat_gx.log" -x -- "$STAMP" "$DATA/lat_gx.log" s
lat_gate latk "$DATA/lat_gk.log" -x -- "$STAMP" "$DATA/lat_gk.log" s kill
lat_lock() {	# lat_lock LOG TOOL...: a holder, N_LAT queued, holder ends
	local log=$1 i list=()
	shift
	"$@" "$W/hold.lock" sleep 1 &
	local h=$!
	sleep 0.1
	for ((i = 0; i < N_LAT; i++)); do
		"$@" "$W/hold.lock" "$STAMP" "$log" s &
		list+=($!)
	done
	wait "$h"
	for p in "${list[@]}"; do wait "$p" 2>/dev/null || true; done
}
lat_lock "$DATA/lat_f.log" flock
lat_lock "$DATA/lat_s.log" setlock
for ((i = 0; i < N_LAT; i++)); do "$STAMP" "$DATA/lat_none.log" s; done
tsp -S 1 >/dev/null
tsp -n sleep 0.5 >/dev/null
for ((i = 0; i < N_LAT; i++)); do tsp -n "$STAMP" "$DATA/lat_t.log" s >/dev/null; done
while [ "$( { wc -l < "$DATA/lat_t.log"; } 2>/dev/null || echo 0)" -lt "$N_LAT" ]; do sleep 0.05; done
if ((!quick)); then
	sem --id lat$$ -j1 sleep 0.5
	for ((i = 0; i < 50; i++)); do sem --id lat$$ -j1 "$STAMP" "$DATA/lat_sem.log" s; done
	sem --wait --id lat$$
fi
{
echo "## 3. Wake latency: holder's command ends -> next waiter's command starts (ms)"
echo
echo "$N_LAT hand-offs on a limit-1 gate or one lock; each command is a static probe that stamps the time. The gap includes starting the probe, so the first row (a shell running the probe back to back, no gate) is the floor."
echo
echo "| tool | p50 | p99 | max | hand-offs |"
echo "|---|---:|---:|---:|---:|"
for k in none:"no gate (shell loop)" g:"gaterun" gx:"gaterun -x" gk:"gaterun -x, holder SIGKILLed" f:"flock" s:"setlock" t:"tsp" sem:"sem"; do
	f=${k%%:*}
	[ -s "$DATA/lat_$f.log" ] || continue
	read -r p50 p99 mx n < <(python3 "$here/stats.py" gaps "$DATA/lat_$f.log")
	echo "| ${k#*:} | $p50 | $p99 | $mx | $n |"
	echo "$f $p50 $p99 $mx" >> "$DATA/lat.txt"
done
echo
} >> "$OUT"

# 4. Scale of waiting ---------------------------------------------------
echo "== scale" >&2
"$G" -g scale --limit 0 >/dev/null
list=()
for ((i = 0; i < N_SCALE; i++)); do
	"$G" -g scale -- "$STAMP" "$DATA/order.log" ppid &
	list+=($!)
done
until_n scale "$N_SCALE"
# Arrival order is the queue's (ticket) order, as status lists it.
"$G" -g scale --status --json > "$DATA/queue.json"
w1=${list[$((N_SCALE / 2))]}
pss=$(awk '/^Pss:/ { print $2 }' "/proc/$w1/smaps_rollup")
rss=$(awk '/^Rss:/ { print $2 }' "/proc/$w1/smaps_rollup")
cpu0=0; for p in "${list[@]}"; do cpu0=$((cpu0 + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
sleep 2
cpu1=0; for p in "${list[@]}"; do cpu1=$((cpu1 + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
st=$(hyperfine -N -w 2 -r 10 --export-json "$DATA/st.json" "$G -g scale --status --json" >/dev/null 2>&1; python3 -c 'import json; print("%.2f" % (json.load(open("'"$DATA/st.json"'"))["results"][0]["median"] * 1000))')
t0=$(now)
"$G" -g scale --limit 1 >/dev/null
for p in "${list[@]}"; do wait "$p"; done
t_drain=$(elapsed "$t0" "$(now)")
order=$(python3 "$here/stats.py" order "$DATA/order.log" "$DATA/queue.json")
# The same drain for setlock and flock: N_DRAIN of the probe queued behind
# one holder; drain = last probe's stamp - the holder's last stamp.
drain_lock() {	# drain_lock NAME TOOL...
	local name=$1 i list=() log=$DATA/drain_$1.log
	shift
	"$@" "$W/d$name.lock" sh -c "sleep 0.5; $STAMP $log h" &
	local h=$!
	sleep 0.1
	for ((i = 0; i < N_DRAIN; i++)); do "$@" "$W/d$name.lock" "$STAMP" "$log" s & list+=($!); done
	wait "$h"
	for p in "${list[@]}"; do wait "$p"; done
	python3 "$here/stats.py" drain "$log"
}
drain_gate() {	# drain_gate NAME [-x]
	local name=$1 i list=() log=$DATA/drain_$1.log
	shift
	"$G" -g "$name" --limit 0 >/dev/null
	for ((i = 0; i < N_DRAIN; i++)); do "$G" -g "$name" "$@" -- "$STAMP" "$log" s & list+=($!); done
	until_n "$name" "$N_DRAIN"
	"$STAMP" "$log" h
	"$G" -g "$name" --limit 1 >/dev/null
	for p in "${list[@]}"; do wait "$p"; done
	python3 "$here/stats.py" drain "$log"
}
d_g=$(drain_gate drain)
d_gx=$(drain_gate drainx -x)
d_s=$(drain_lock s setlock)
d_f=$(drain_lock f flock)
flock "$W/pss.lock" sleep 3 & fh=$!
sleep 0.1
flock "$W/pss.lock" /bin/true & fw=$!
sleep 0.3
fpss=$(awk '/^Pss:/ { print $2 }' "/proc/$fw/smaps_rollup")
wait "$fh" "$fw"
{
echo "## 4. Scale of waiting"
echo
echo "- $N_SCALE wrappers of a probe queued on a paused gate: PSS of one waiting wrapper **$pss kB** (RSS $rss kB; a waiting \`flock\`: $fpss kB PSS); CPU burnt by all $N_SCALE waiters in 2 s of waiting: **$((cpu1 - cpu0)) ticks**."
echo "- \`--status --json\` with $N_SCALE queued: **$st ms** (median)."
echo "- Opening the gate (limit 1): all $N_SCALE ran in **$t_drain s**; start order vs arrival order: $order."
echo
echo "| $N_DRAIN queued probes, limit 1: drain time | seconds | gaterun / this |"
echo "|---|---:|---:|"
echo "| gaterun | $d_g | 1.00 |"
echo "| gaterun -x | $d_gx | $(ratio "$d_g" "$d_gx") |"
echo "| setlock | $d_s | $(ratio "$d_g" "$d_s") |"
echo "| flock | $d_f | $(ratio "$d_g" "$d_f") |"
echo
} >> "$OUT"

# 5. Cost as work grows -------------------------------------------------
echo "== growth" >&2
{
echo "## 5. Cost as the gate grows (ms, median)"
echo
echo "\`-n -- true\` (take a slot, run, release) with H holders already running and one slot free; \`--status --json\` with H holders and Q queued."
echo
echo "| holders H | queued Q | -n -- true | --status --json |"
echo "|---:|---:|---:|---:|"
} >> "$OUT"
for h in 1 10 100 $((quick ? 100 : 1000)); do
	for q in 0 10 100 $((quick ? 100 : 1000)); do
		gname=grow$h-$q
		"$G" -g "$gname" --limit "$h" >/dev/null
		list=()
		for ((i = 0; i < h; i++)); do "$G" -g "$gname" -- sleep 600 & list+=($!); done
		while [ "$("$G" -g "$gname" --status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["active_processes"])')" -lt "$h" ]; do sleep 0.05; done
		for ((i = 0; i < q; i++)); do "$G" -g "$gname" -- true & list+=($!); done
		until_n "$gname" "$q"
		hyperfine -N -w 3 -r 20 --export-json "$DATA/grow_s.json" "$G -g $gname --status --json" >/dev/null 2>&1
		s_ms=$(python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$DATA/grow_s.json")
		a_ms=-
		if [ "$q" -eq 0 ]; then
			"$G" -g "$gname" --limit $((h + 1)) >/dev/null
			hyperfine -N -w 3 -r 20 --export-json "$DATA/grow_a.json" "$G -g $gname -n -- /bin/true" >/dev/null 2>&1
			a_ms=$(python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$DATA/grow_a.json")
		fi
		echo "| $h | $q | $a_ms | $s_ms |" >> "$OUT"
		echo "$h $q $a_ms $s_ms" >> "$DATA/grow.txt"
		"$G" -g "$gname" --kill-all --grace 1 >/dev/null
		for p in "${list[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
		for p in "${list[@]}"; do wait "$p" 2>/dev/null || true; done
	done
done
echo >> "$OUT"

# 6. Plot ---------------------------------------------------------------
awk '{ print NR - 1, $1, $2, $3 }' "$DATA/lat.txt" > "$DATA/lat.dat"
gnuplot <<EOF
set terminal png size 900,420
set output "$here/results.png"
set multiplot layout 1,2
set title "Wake latency, ms (p50, p99; log scale: sem is 100x the rest)"
set style data histograms
set style fill solid 0.8
set xtics rotate by -30
set logscale y
set yrange [0.1:*]
plot "$DATA/lat.dat" using 3:xtic(2) title "p50", "" using 4 title "p99"
unset logscale y
set title "200 x sleep 0.02 at 5 at a time, s"
set yrange [0:*]
plot "-" using 2:xtic(1) title "seconds"
gaterun $t_g
gaterun-x $t_gx
xargs $t_x2
tsp $t_t
flock5 $t_f
ideal 0.8
e
unset multiplot
EOF
echo "![latency and throughput](results.png)" >> "$OUT"
if [ -s "$KEEP" ]; then printf '\n' >>"$OUT"; cat "$KEEP" >>"$OUT"; fi
echo "wrote $OUT" >&2
