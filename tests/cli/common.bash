# Shared helpers for the command-line tests: every test gets a fresh state
# directory, and every process a test starts is stopped by PID at teardown.
# shellcheck shell=bash

bats_require_minimum_version 1.5.0

G=${GATERUN:-$BATS_TEST_DIRNAME/../../src/gaterun}
BG_PIDS=()
declare -A BG_START=()

setup() {
	export GATERUN_DIR="$BATS_TEST_TMPDIR/state"
	export GATERUN_CONF="$BATS_TEST_TMPDIR/gaterun.conf"
	unset GATERUN_GATE GATERUN_LIMIT GATERUN_LOG
	cd "$BATS_TEST_TMPDIR" || return 1
}

teardown() {
	stop_bg
	# a terminal's server, should its PID not have been noted
	[ -z "${SOCK:-}" ] || tmux -S "$SOCK" kill-server 2>/dev/null || true
}

# Stop every background process a test started, with all below them: only
# those still the processes noted (same start time), for a PID reaped by
# a wait may name another process by now (pid_max is 32768 on 2 cores).
stop_bg() {
	local p
	for p in "${BG_PIDS[@]}"; do
		start_time "$p"
		[ "$START" = "${BG_START[$p]:-}" ] && kill_tree "$p"
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	return 0
}

# Note a background process for stop_bg, with its start time.
track() {
	[ -n "$1" ] || return 0
	BG_PIDS+=("$1")
	start_time "$1"
	BG_START[$1]=$START
}

# The start time of process $1 (field 22 of its stat) in START, empty if
# none; no fork, for tests that note a thousand processes.
start_time() {
	local stat f
	START=
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
	read -ra f <<<"${stat##*) }"
	START=${f[19]}
}

# The state letter of process $1 (R, S, T stopped, Z zombie...: the field
# after its name in /proc/PID/stat); nothing if there is no such process.
proc_state() {
	local stat
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
	stat=${stat##*) }
	echo "${stat%% *}"
}

# SIGKILL a process and everything below it, children first (by PID).
kill_tree() {
	local c
	kill -STOP "$1" 2>/dev/null || return 0
	for c in $(pgrep -P "$1"); do
		kill_tree "$c"
	done
	kill -KILL "$1" 2>/dev/null || true
}

# Start a command in the background and remember its PID in $BG. A shell
# starts background jobs with INT and QUIT ignored (POSIX); give them back
# their defaults, as a job in an interactive shell has them.
bg() {
	env --default-signal=INT,QUIT "$@" >>"$BATS_TEST_TMPDIR/bg.out" 2>&1 &
	BG=$!
	track "$BG"
}

# A line of shell for a job that logs "s ..." to $1 on start: it waits (at
# most ~10 s) until $2 starts are logged, so that a test of "N reached"
# does not depend on how fast jobs start on a busy machine.
hold_line() {
	# shellcheck disable=SC2016  # the job's shell expands them
	printf 'n=0; until [ "$(grep -c "^s" %s)" -ge %d ] || [ $n -ge 1000 ]; do sleep 0.01; n=$((n + 1)); done' "$1" "$2"
}

# wait for a background PID and put its exit status in $status, as run does.
# shellcheck disable=SC2034
wait_status() {
	status=0
	wait "$1" || status=$?
}

# Wait (at most ~10 s, or $2 hundredths) until a shell condition holds.
until_true() {
	local i
	for ((i = 0; i < ${2:-1000}; i++)); do
		if eval "$1"; then
			return 0
		fi
		sleep 0.01
	done
	echo "timed out waiting for: $1" >&2
	return 1
}

# Field of --status --json, by jq path.
status_field() {
	"$G" --status --json ${2:+-g "$2"} | jq -r "$1"
}

active() { status_field .active_processes "${1:-}"; }
waiting() { status_field .waiting "${1:-}"; }

# A terminal: a tmux server of the test's own on socket $SOCK, its one
# pane (160x50, in the test's directory) running "$@". The server is
# stopped at teardown like any background process.
tmux_start() {
	command -v tmux >/dev/null || skip "tmux needed for a terminal"
	SOCK=$BATS_TEST_TMPDIR/tmux.sock
	tmux -S "$SOCK" -f /dev/null new-session -d -s t -x 160 -y 50 \
	    -c "$BATS_TEST_TMPDIR" "$@" 3>&-
	track "$(tmux -S "$SOCK" display -p '#{pid}')"
}

# What the terminal shows, its scrollback included, trailing blanks cut.
screen() {
	tmux -S "$SOCK" capture-pane -p -J -S - -t t | sed -e 's/ *$//'
}

# Type a line at the terminal.
type_line() {
	tmux -S "$SOCK" send-keys -t t -l "$1"
	tmux -S "$SOCK" send-keys -t t Enter
}

# Press a key (C-c, C-z).
press() {
	tmux -S "$SOCK" send-keys -t t "$1"
}

# Write launch.py: "python3 launch.py COMMAND [ARG...]" runs the command
# (exec) with the signals named in $1 ignored and those in $2 blocked
# ("HUP CHLD", "USR1"), as a caller may have them (nohup, a build tool's
# mask). Python, not sh: sh would unblock them and reset the mask.
launcher() {
	cat >launch.py <<-PY
		import os, signal, sys
		for n in "$1".split():
		    signal.signal(signal.Signals["SIG" + n], signal.SIG_IGN)
		signal.pthread_sigmask(signal.SIG_BLOCK,
		                       {signal.Signals["SIG" + n] for n in "$2".split()})
		os.execvp(sys.argv[1], sys.argv[1:])
	PY
}

# The one slot of the default gate (limit 1) taken by a command that runs
# until a line is written to FIFO go; its wrapper's PID in $h.
# shellcheck disable=SC2016,SC2034  # until_true expands it; $h is the test's
fifo_holder() {
	"$G" --limit 1
	mkfifo go
	bg "$G" -- sh -c 'read x < go'
	h=$BG
	until_true '[ "$(active)" -eq 1 ]'
}
