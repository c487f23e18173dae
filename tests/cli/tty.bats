#!/usr/bin/env bats
# At a real terminal: an interactive bash in a tmux server of the test's
# own, driven by send-keys; every check waits for a line on the screen.

load common

# Start the terminal: a tmux server on a socket in the test's directory
# running an interactive bash with a known prompt. Its PID is stopped at
# teardown like any background process.
tty_start() {
	command -v tmux >/dev/null || skip "tmux needed for a terminal"
	SOCK=$BATS_TEST_TMPDIR/tmux.sock
	tmux -S "$SOCK" -f /dev/null new-session -d -s t -x 160 -y 50 \
	    env -i PATH="$PATH" HOME="$BATS_TEST_TMPDIR" TERM=screen \
	    GATERUN_DIR="$GATERUN_DIR" GATERUN_CONF="$GATERUN_CONF" G="$G" \
	    PS1='P> ' bash --norc --noprofile -i 3>&-
	BG_PIDS+=("$(tmux -S "$SOCK" display -p '#{pid}')")
	until_lines 'P>'
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

# How many lines of the screen are exactly $1.
count_lines() {
	screen | grep -cx -- "$1" || true
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
