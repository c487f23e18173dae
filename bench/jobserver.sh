#!/usr/bin/env bash
# shellcheck disable=SC2016  # make and shell text written out as is
# gaterun -J against plain make: two builds of the same tree (gaterun's own
# C sources, compiled for real at -O2) started together, three ways:
#   - each under 'gaterun -g bench -J -- make' on a limit-4 gate,
#   - each with 'make -j4' (8 compilers may run at once),
#   - each with 'make -j2' (the static split of 4).
# Wall time until both are done (median of $REPS runs) and the most
# compilers ever running at once (each compile logs its start and end).
# Replaces its own section of bench/RESULTS.md (between the markers).
#
#   bench/jobserver.sh [REPS]        (GATERUN=path/to/gaterun, default ./src/gaterun)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
G=${GATERUN:-$top/src/gaterun}
build=$(cd "$(dirname "$G")/.." && pwd)	# where config.h is
reps=${1:-3}
[ -x "$G" ] || { echo "build gaterun first (make)" >&2; exit 1; }
[ -f "$build/config.h" ] || { echo "no config.h in $build" >&2; exit 1; }

W=$(mktemp -d /dev/shm/gaterun-jsbench.XXXXXX)
trap 'rm -rf "$W"' EXIT
export GATERUN_DIR=$W/state TMPDIR=$W
unset MAKEFLAGS MFLAGS CARGO_MAKEFLAGS
LOG=$W/log

# The compiler, logging its start and end.
printf '%s\n' '#!/bin/sh' \
    "echo \"s \$(date +%s%N)\" >>$LOG" 'cc "$@"; r=$?' \
    "echo \"e \$(date +%s%N)\" >>$LOG" 'exit $r' >"$W/cc.sh"
chmod +x "$W/cc.sh"

# One tree: lib/ and the command's sources (not the HTTP server's).
srcs=$(cd "$top" && ls lib/*.c src/admin.c src/common.c src/conffile.c \
    src/gaterun.c src/job.c src/jobserver.c src/report.c src/run.c)
for t in t1 t2; do
	mkdir -p "$W/$t"
	{
		echo "CC = $W/cc.sh"
		echo "CFLAGS = -O2 -I$build -I$top/lib -I$top/src $(pkg-config --cflags libbsd-overlay)"
		printf 'OBJS ='
		for s in $srcs; do printf ' %s' "$(basename "${s%.c}").o"; done
		printf '\nall: $(OBJS)\n'
		echo "vpath %.c $top/lib $top/src"
		echo '%.o: %.c'
		echo '	@$(CC) $(CFLAGS) -DGATERUN_CONF=\"/etc/gaterun.conf\" -c -o $@ $<'
		echo 'clean:'
		echo '	@rm -f *.o'
	} >"$W/$t/Makefile"
done
njobs=$(wc -w <<<"$srcs")

# The most compilers the log shows at once.
peak() {
	sort -k2,2n -k1,1 "$LOG" |
	    awk '{ c += $1 == "s" ? 1 : -1; if (c > m) m = c } END { print m + 0 }'
}

# Both builds together, one way ($1: gaterun or -jN); prints "SECONDS PEAK".
once() {
	local t0 t1 p1 p2
	make -s -C "$W/t1" clean
	make -s -C "$W/t2" clean
	: >"$LOG"
	t0=$(date +%s%N)
	if [ "$1" = gaterun ]; then
		"$G" -g bench -J -- make -s -C "$W/t1" & p1=$!
		"$G" -g bench -J -- make -s -C "$W/t2" & p2=$!
	else
		make -s "$1" -C "$W/t1" & p1=$!
		make -s "$1" -C "$W/t2" & p2=$!
	fi
	wait "$p1"
	wait "$p2"
	t1=$(date +%s%N)
	[ "$(grep -c '^e ' "$LOG")" -eq $((2 * njobs)) ] || { echo "a build failed" >&2; exit 1; }
	echo "$(((t1 - t0) / 1000000)) $(peak)"
}

"$G" -g bench --limit 4 >/dev/null
# The ways take turns, so that a change of load on the machine hits all.
declare -A all peak
for ((i = 0; i < reps; i++)); do
	for way in gaterun -j4 -j2; do
		read -r m p < <(once "$way")
		all[$way]+="$m "
		((p > ${peak[$way]:-0})) && peak[$way]=$p
	done
done
rows=
for way in gaterun -j4 -j2; do
	read -r -a ms <<<"${all[$way]}"
	pk=${peak[$way]}
	med=$(printf '%s\n' "${ms[@]}" | sort -n | sed -n "$(((reps + 1) / 2))p")
	case $way in
	gaterun) name='`gaterun -g bench -J -- make` each, limit 4' ;;
	*) name="\`make $way\` each" ;;
	esac
	runs=$(for m in "${ms[@]}"; do printf '%d.%01d ' $((m / 1000)) $((m % 1000 / 100)); done)
	rows+=$(printf '| %s | %d.%03d | %s| %d |' "$name" $((med / 1000)) $((med % 1000)) "$runs" "$pk")$'\n'
	echo "$way: median ${med} ms, peak $pk (runs: ${ms[*]})" >&2
done

section=$(cat <<EOF
<!-- jobserver: begin (bench/jobserver.sh writes this section) -->
## Jobserver: two builds at once, limit 4

One run of \`bench/jobserver.sh\` on $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%M:%SZ).
Two copies of gaterun's own C sources ($njobs files each, \`cc -O2\`) built
together; wall time until both are done (median of $reps runs, the three
ways taking turns) and the most compilers running at once (each compile
logs its start and end). Machine load during the run: $(cut -d' ' -f1-3 /proc/loadavg)
(other work shares these 2 cores: compare rows of this run only).

| way | median s | each run, in turn (s) | peak compilers |
|---|---:|---:|---:|
$rows
<!-- jobserver: end -->
EOF
)
out=$here/RESULTS.md
if grep -q '^<!-- jobserver: begin' "$out"; then
	awk -v s="$section" '/^<!-- jobserver: begin/ { print s; skip = 1; next }
	    /^<!-- jobserver: end/ { skip = 0; next } !skip' "$out" >"$out.tmp"
	mv "$out.tmp" "$out"
else
	printf '\n%s\n' "$section" >>"$out"
fi
echo "$section"
