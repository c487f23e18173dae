#!/usr/bin/env bats
# Options: help, version, every bad value, exclusive modes. Nothing changes
# on a bad value.

load common

@test "--help lists every option and the exit codes" {
	run "$G" --help
	[ "$status" -eq 0 ]
	for o in --gate --no-wait --wait --conflict-exit-code --status --json \
	    --limit --kill-all --signal --grace --is-active --help --version; do
		[[ "$output" == *"$o"* ]]
	done
	[[ "$output" == *"125       gaterun itself failed"* ]]
	run "$G" -h
	[ "$status" -eq 0 ]
}

@test "--version" {
	run "$G" --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^gaterun\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "bad limits are refused with 125 and change nothing" {
	"$G" --limit 4 >/dev/null
	for bad in -3 abc 1e3 4097 99999999999 '' ' 5' 5x 0x10 +5; do
		run "$G" --limit "$bad"
		[ "$status" -eq 125 ]
		[[ "$output" == "gaterun: limit "* ]]
	done
	[ "$(status_field .max_allowed)" -eq 4 ]
}

@test "the limit's bounds are accepted" {
	run "$G" --limit 4096
	[ "$status" -eq 0 ]
	run "$G" --limit 0
	[ "$status" -eq 0 ]
	[ "$output" = "gate 'default': limit 4096 -> 0 (paused)" ]
}

@test "bad gate names are refused" {
	for bad in a/b .hidden '' 'sp ace' ../x "$(printf 'x%.0s' {1..65})"; do
		run "$G" -g "$bad" -- true
		[ "$status" -eq 125 ]
		[[ "$output" == "gaterun: invalid gate name"* ]]
	done
	run env GATERUN_GATE=a/b "$G" -- true
	[ "$status" -eq 125 ]
	[ ! -e "$GATERUN_DIR" ]
}

@test "a long bad gate name is quoted by its first 40 characters, then '...'; a short one whole" {
	# Failed before: a 5000-character name made a 5000-character message.
	x40=$(printf 'x%.0s' {1..40})
	e40=$(printf '\303\251%.0s' {1..40})	# U+00E9, two bytes each
	run -125 "$G" -g "$(printf 'x%.0s' {1..5000})" -- true
	[ "$output" = "gaterun: invalid gate name '$x40...': use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'" ]
	run -125 "$G" -g "${e40}zz" -- true
	[ "$output" = "gaterun: invalid gate name '$e40...': use 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'" ]
	run -125 "$G" -g "$x40/" -- true
	[[ "$output" == "gaterun: invalid gate name '$x40...': "* ]]
	run -125 "$G" -g "${x40:1}/" -- true
	[[ "$output" == "gaterun: invalid gate name '${x40:1}/': "* ]]
	# Control bytes (a terminal's escapes) are shown as '?'.
	run -125 "$G" -g "$(printf 'a\033[31mb')" -- true
	[[ "$output" == "gaterun: invalid gate name 'a?[31mb': "* ]]
	run -125 "$G" -R "$(printf 'y%.0s' {1..5000})" --limit 2
	[ "$output" = "gaterun: invalid parent gate name '$(printf 'y%.0s' {1..40})...'" ]
	[ ! -e "$GATERUN_DIR" ]
}

@test "a missing command is a usage error" {
	run "$G"
	[ "$status" -eq 125 ]
	[[ "$output" == *"no command given"* ]]
	run "$G" --
	[ "$status" -eq 125 ]
}

@test "unknown options are usage errors" {
	run "$G" --bogus -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"usage: gaterun"* ]]
	run "$G" -Z
	[ "$status" -eq 125 ]
}

@test "modes exclude each other and take no command" {
	run "$G" --status --limit 3
	[ "$status" -eq 125 ]
	run "$G" --status -- true
	[ "$status" -eq 125 ]
	run "$G" --kill-all --is-active 1
	[ "$status" -eq 125 ]
	run "$G" -n -w 1 -- true
	[ "$status" -eq 125 ]
	run "$G" -n --status
	[ "$status" -eq 125 ]
	run "$G" --signal KILL --status
	[ "$status" -eq 125 ]
	run "$G" --json -- true
	[ "$status" -eq 125 ]
}

@test "bad -w, --grace, -E, --signal, --is-active and GATERUN_LIMIT values" {
	for bad in abc -1 '' 1e999 nan inf 0x10; do
		run "$G" -w "$bad" -- true
		[ "$status" -eq 125 ]
	done
	run "$G" --kill-all --grace soon
	[ "$status" -eq 125 ]
	run "$G" -E 256 -- true
	[ "$status" -eq 125 ]
	run "$G" --kill-all --signal NOPE
	[ "$status" -eq 125 ]
	[[ "$output" == *"unknown signal"* ]]
	run "$G" --is-active abc
	[ "$status" -eq 125 ]
	run env GATERUN_LIMIT=lots "$G" -- true
	[ "$status" -eq 125 ]
	[ ! -e "$GATERUN_DIR" ]
}

@test "signal names and numbers are accepted" {
	for s in TERM SIGTERM term 15 HUP KILL; do
		run "$G" --kill-all --signal "$s" --grace 0
		[ "$status" -eq 0 ]
	done
}
