#!/usr/bin/env bash
# The Redis store against the file store, through lib/ (bench/redis_bench.c):
# acquire+release per second, hand-off latency, and the cost of one
# transaction as holders and waiters grow. A redis-server of its own on a
# free loopback port (no persistence), the file store on tmpfs. Replaces
# the "Redis store" section of bench/RESULTS.md.
#
#   bench/redis.sh [BUILD_DIR] [--quick]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
build=${1:-$top}
quick=0
[ "${2:-}" = --quick ] && quick=1
B=$(mktemp -d /dev/shm/gaterun-rbench.XXXXXX)
rpid=
cleanup() {
	[ -z "$rpid" ] || kill "$rpid" 2>/dev/null || true
	rm -rf "$B"
}
trap cleanup EXIT

read -ra cflags <<<"$(pkg-config --cflags libbsd-overlay hiredis)"
read -ra libs <<<"$(pkg-config --libs libbsd-overlay hiredis)"
cc -O2 -I"$build" -I"$top/lib" "${cflags[@]}" -o "$B/rb" \
	"$here/redis_bench.c" "$build/lib/libgaterun.a" "${libs[@]}"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
	--maxclients 4096 --dir "$B" >"$B/redis.log" 2>&1 &
rpid=$!
until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.05; done
ulimit -n 8192 2>/dev/null || true

R=redis://127.0.0.1:$port
F=$B/state
N=$((quick ? 300 : 2000))
S=$((quick ? 20 : 100))
sizes="1 10 100 1000"

row() { # what, then the command for each store
	printf '| %s | %s | %s |\n' "$1" "$("$B/rb" "$F" "${@:2}")" \
		"$("$B/rb" "$R" "${@:2}")"
}
{
	echo "<!-- redis.sh begin -->"
	echo "## Redis store against the file store (bench/redis.sh)"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, $(redis-server --version | cut -d' ' -f3), loopback;"
	echo "through lib/ (no process start-up); file store on tmpfs."
	echo
	echo "| | file store | Redis store |"
	echo "|---|---|---|"
	row "acquire+release per second ($N pairs)" ops "$N"
	row "hand-off: release -> next holder, median us ($S)" handoff "$S"
	for k in $sizes; do
		row "acquire+release with $k held, median us" holders "$k" "$S"
	done
	# 1000 waiters do not settle on Redis: see RESULTS.md's paragraph.
	for w in 1 10 100; do
		row "a written transaction with $w waiting, median us" waiters "$w" "$S"
	done
	echo "<!-- redis.sh end -->"
} >"$B/section.md"
cat "$B/section.md"
out=$here/RESULTS.md
python3 - "$out" "$B/section.md" <<'PY'
import re, sys
out, sec = sys.argv[1], open(sys.argv[2]).read()
text = open(out).read()
pat = re.compile(r'<!-- redis.sh begin -->.*?<!-- redis.sh end -->\n?', re.S)
text = pat.sub(lambda m: sec, text) if pat.search(text) else text.rstrip('\n') + '\n\n' + sec
open(out, 'w').write(text)
PY
