#!/usr/bin/env bats
# valgrind memcheck over the command line: no invalid access, no definite
# leak in the wrapper, on every mode. Skipped in a sanitizer build.

load common

VG=(valgrind -q --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite --trace-children=no)

# bats 1.8 cannot skip from setup_file: each test asks.
need_valgrind() {
	command -v valgrind >/dev/null || skip "valgrind not installed"
	[ -z "${GATERUN_SANITIZED:-}" ] || skip "a sanitizer build runs without valgrind"
}

@test "valgrind: run, exit status, -x" {
	need_valgrind
	run "${VG[@]}" "$G" -- sh -c 'exit 3'
	[ "$status" -eq 3 ]
	run "${VG[@]}" "$G" -x -- true
	[ "$status" -eq 0 ]
}

@test "valgrind: -n on a full gate, -w running out, damaged state" {
	need_valgrind
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	run "${VG[@]}" "$G" -n -- true
	[ "$status" -eq 75 ]
	run "${VG[@]}" "$G" -w 0.2 -- true
	[ "$status" -eq 75 ]
	printf 'gaterun-state 1\nlimit x\n' > "$GATERUN_DIR/default.gate"
	run "${VG[@]}" "$G" --status --json
	[ "$status" -eq 0 ]
}

@test "valgrind: waiting, then running" {
	need_valgrind
	"$G" --limit 1 >/dev/null
	bg "$G" -- sleep 0.5
	until_true '[ "$(active)" -eq 1 ]'
	run "${VG[@]}" "$G" -- echo ran
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = ran ]
}

@test "valgrind: status, json, limit, is-active, kill-all, bad input" {
	need_valgrind
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	for args in "--status" "--status --json" "--limit 3" "--limit 2 --json" \
	    "--is-active 1" "--kill-all --grace 1" "--kill-all --json"; do
		# shellcheck disable=SC2086
		run "${VG[@]}" "$G" $args
		[ "$status" -ne 99 ] || { echo "$args: $output"; false; }
	done
	run "${VG[@]}" "$G" --limit abc
	[ "$status" -eq 125 ]
	run "${VG[@]}" "$G" -g a/b -- true
	[ "$status" -eq 125 ]
}

@test "valgrind: weights, priorities, unique keys and following" {
	need_valgrind
	"$G" --limit 2 >/dev/null
	bg "$G" -U k -- sh -c 'until [ -e go ]; do sleep 0.01; done; exit 4'
	until_true '[ "$(active)" -eq 1 ]'
	bg "$G" -p 3 -N 2 -- true
	until_true '[ "$(waiting)" -eq 1 ]'
	for args in "--status" "--status --json" "--metrics"; do
		# shellcheck disable=SC2086
		run "${VG[@]}" "$G" $args
		[ "$status" -eq 0 ] || { echo "$args: $output"; false; }
	done
	run "${VG[@]}" "$G" -u k -- true
	[ "$status" -eq 75 ]
	run "${VG[@]}" "$G" -N 3 -- true
	[ "$status" -eq 125 ]
	bg "${VG[@]}" "$G" -U k -- true
	f=$BG
	sleep 1		# not a condition: the follow path or the run path
	touch go
	wait_status "$f"
	[ "$status" -eq 4 ] || [ "$status" -eq 0 ]
	run "${VG[@]}" "$G" -N 2 -p -1 -- echo ran
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = ran ]
}
