#!/usr/bin/env bats
# Nested requests: a command run in a slot that runs gaterun again on the
# same gate runs inside its ancestor's slot, instead of waiting for ever on
# its own ancestor; the default gate is the caller's, not the slot's.

load common

@test "a nested gaterun on the same gate runs inside the ancestor's slot (limit 1)" {
	"$G" -g a --limit 1 >/dev/null
	run timeout 20 "$G" -g a -- "$G" -g a -- \
	    sh -c 'echo "inner $GATERUN_SLOT $GATERUN_SLOT_GATE"'
	[ "$status" -eq 0 ]
	[ "$output" = "inner 0 a" ]
	[ "$(active a)" -eq 0 ]
}

@test "a nested command's exit status comes back; no second slot is recorded" {
	"$G" -g a --limit 2 >/dev/null
	run timeout 20 "$G" -g a -- "$G" -g a -- sh -c 'exit 7'
	[ "$status" -eq 7 ]
	run timeout 20 "$G" -g a -- "$G" -g a -- "$G" -g a --status --json
	[ "$status" -eq 0 ]
	[ "$(jq .active_processes <<<"$output")" -eq 1 ]
	# Nested under -x too: the holder is then the nested gaterun itself.
	run timeout 20 "$G" -g a -x -- "$G" -g a -- sh -c 'echo "$GATERUN_SLOT"'
	[ "$status" -eq 0 ]
	[ "$output" = 0 ]
}

@test "a recursive make whose recipes all use the gate finishes at limit 2" {
	command -v make >/dev/null || skip "make needed"
	"$G" -g x --limit 2 >/dev/null
	printf '%s\n' 'all: 1 2 3' '1 2 3:' \
	    "	\"$G\" -g x -- sh -c 'echo \"\$(T)\$@ slot \$\$GATERUN_SLOT\"'" \
	    >inner.mk
	printf '%s\n' 'all: a b' 'a b:' \
	    "	\"$G\" -g x -- \$(MAKE) -s -f inner.mk T=\$@" >Makefile
	run timeout 60 make -s -j4
	[ "$status" -eq 0 ]
	[ "$(grep -c '^[ab][123] slot [01]$' <<<"$output")" -eq 6 ]
	[ "$(active x)" -eq 0 ]
}

@test "GATERUN_GATE is the caller's: an inner gaterun without -g uses it, not the slot's gate" {
	run "$G" -g a -- "$G" -- sh -c 'echo "$GATERUN_SLOT_GATE ${GATERUN_GATE-unset}"'
	[ "$status" -eq 0 ]
	[ "$output" = "default unset" ]
	run env GATERUN_GATE=mine "$G" -g a -- sh -c 'echo "$GATERUN_GATE $GATERUN_SLOT_GATE"'
	[ "$status" -eq 0 ]
	[ "$output" = "mine a" ]
}

@test "GATERUN_SLOT with no ancestor holding the gate: a slot is taken as usual" {
	"$G" -g a --limit 1 >/dev/null
	mkfifo go
	bg env GATERUN_SLOT=3 GATERUN_SLOT_GATE=a "$G" -g a -- sh -c 'read -r _ < go'
	until_true '[ "$(active a)" -eq 1 ]'
	run env GATERUN_SLOT=0 "$G" -g a -n -- true
	[ "$status" -eq 75 ]
	echo >go
	wait_status "$BG"
	[ "$status" -eq 0 ]
}
