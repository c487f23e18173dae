#!/usr/bin/env bats
# At a real terminal: an interactive bash in a tmux server of the test's
# own, driven by send-keys; every check waits for a line on the screen.

load common

# Start the terminal (tmux_start) running an interactive bash with a
# known prompt.
tty_start() {
	# The interpreter itself: a version manager's shim would start slowly.
	PY=$(python3 -c 'import sys; print(sys.executable)')
	tmux_start env -i PATH="$PATH" HOME="$BATS_TEST_TMPDIR" TERM=screen \
	    GATERUN_DIR="$GATERUN_DIR" GATERUN_CONF="$GATERUN_CONF" G="$G" \
	    PY="$PY" SPY="$BATS_TEST_DIRNAME/sigspy.py" \
	    PS1='P> ' bash --norc --noprofile -i
	until_lines 'P>'
}

# How many lines of the screen are $1, after what the terminal echoes of
# Ctrl-C or Ctrl-Z (^C, ^Z) if anything.
count_lines() {
	screen | grep -cE -- "^(\^[CZ])*$1\$" || true
}

# The PID the signal spy printed ("ready PID"), once it has.
spy_pid() {
	local end=$((SECONDS + 20))
	while ((SECONDS < end)); do
		if screen | grep -q '^ready '; then
			screen | sed -n 's/^ready //p' | tail -n 1
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# Wait (at most 20 s) until $2 (default 1) lines of the screen are exactly
# $1; on time-out show the screen.
until_lines() {
	local end=$((SECONDS + 20))
	while ((SECONDS < end)); do
		if [ "$(count_lines "$1")" -eq "${2:-1}" ]; then
			return 0
		fi
		sleep 0.05
	done
	echo "timed out waiting for ${2:-1} line(s) '$1'; the screen:" >&2
	screen | grep -v '^$' >&2
	return 1
}

@test "a command that stops itself gives the prompt back, and fg resumes it" {
	tty_start
	type_line '"$G" -- sh -c '\''kill -TSTP $$; echo resumed'\''; echo "rc=$?"'
	until_lines 'rc=148'
	screen | grep -q '^\[1\]+ *Stopped'
	type_line 'fg; echo "fg-rc=$?"'
	until_lines 'fg-rc=0'
	[ "$(count_lines resumed)" -eq 1 ]
	[ "$(active)" -eq 0 ]
}

# The command leads a process group of its own, which gets the terminal:
# Ctrl-C and a resized window reach it from the terminal alone; kill %1
# reaches gaterun alone, which passes it on; Ctrl-Z stops both, bg and fg
# continue both.
@test "Ctrl-C, a resize, kill %1 and kill PID each reach the command once at a terminal" {
	# Once in CI's ASan build, the signals sent right after 'bg' were not
	# seen within the wait (3 reruns passed; the cause is not found yet).
	# It runs in the normal build every time.
	[ -z "${GATERUN_SANITIZED:-}" ] || skip "flaky under ASan, see above"
	tty_start
	type_line '"$G" -- "$PY" "$SPY" -; echo "rc=$?"'
	spy=$(spy_pid)
	w=$(ps -o ppid= -p "$spy" | tr -d ' ')
	press C-c
	until_lines 'got INT'
	tmux -S "$SOCK" resize-window -t t -x 120 -y 40
	until_lines 'got WINCH'
	press C-z
	until_lines 'rc=148'
	type_line 'bg; kill -USR1 %1; kill -HUP %1'
	until_lines 'got HUP'
	until_lines 'got USR1'
	type_line 'fg'
	kill -USR2 "$w"
	until_lines 'got USR2'
	kill -TERM "$w"
	until_lines 'got TERM'
	type_line 'echo "end-rc=$?"'
	until_lines 'end-rc=0'
	for s in INT WINCH HUP USR1 USR2 TERM; do
		[ "$(count_lines "got $s")" -eq 1 ]
	done
	[ "$(active)" -eq 0 ]
}

# In a pipeline gaterun shares its process group with the other commands:
# the terminal stays with that group, and what gaterun gets from it (Ctrl-C,
# Ctrl-Z) or from kill %1 is passed on once.
@test "in a pipeline at a terminal, Ctrl-C and kill %1 reach the command once" {
	tty_start
	type_line 'sleep 1000 | "$G" -- "$PY" "$SPY" log'
	until_true '[ -s log ]'
	spy=$(sed -n 's/^ready //p' log)
	w=$(ps -o ppid= -p "$spy" | tr -d ' ')
	press C-c
	until_true 'grep -qx "got INT" log'
	press C-z
	until_true 'screen | grep -q "Stopped"'
	type_line 'bg; kill -USR1 %1; kill -HUP %1'
	until_true 'grep -qx "got HUP" log && grep -qx "got USR1" log'
	type_line 'fg'
	kill -TERM "$w"
	until_true 'grep -qx "got TERM" log'
	type_line 'echo "end-$?"'
	until_true 'screen | grep -q "^end-"'
	for s in INT HUP USR1 TERM; do
		[ "$(grep -cx "got $s" log)" -eq 1 ]
	done
}

# bash -i takes the terminal for itself; "suspend" stops it with SIGSTOP.
@test "an interactive shell run through gaterun can be suspended and resumed" {
	tty_start
	type_line 'PS1="I> " "$G" -- bash --norc --noprofile -i; echo "rc=$?"'
	until_lines 'I>'
	type_line 'suspend'
	until_lines 'rc=147'
	type_line 'fg; echo "fg-rc=$?"'
	type_line 'echo "inner-$((6 * 7))"'
	until_lines 'inner-42'
	type_line 'exit 7'
	until_lines 'fg-rc=7'
	[ "$(active)" -eq 0 ]
}

# The command asks for the terminal (its process group is not the
# foreground one): gaterun hands it over while its own group has it.
@test "a command reads the terminal in a pipeline, and in a job brought to the foreground" {
	tty_start
	type_line 'echo | "$G" -- sh -c '\''read -r x </dev/tty; echo "read=$x"'\'''
	type_line 'hello'
	until_lines 'read=hello'
	type_line '"$G" -- sh -c '\''read -r x; echo "read=$x"'\'' &'
	until_true 'screen | grep -q "^\[1\] [0-9]"'
	w=$(screen | sed -n 's/^\[1\] //p')
	until_true '[ "$(ps -o stat= -p "$w" | cut -c1)" = T ]'
	type_line 'fg'
	type_line 'again'
	until_lines 'read=again'
	[ "$(active)" -eq 0 ]
}
