#!/usr/bin/env bats
# How the values a person types are read: seconds (-w, --grace,
# --max-wait, --watch), as gaterun and gaterun-httpd share them.

load common

@test "-w takes a value too small to represent as 0: -n, in effect" {
	# strtod() reports underflow (ERANGE) for 1e-400 and gives 0: the
	# number is fine, only its precision is not.
	"$G" --limit 1 >/dev/null
	for tiny in 1e-400 0.0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001 4.9e-330 1e-310; do
		run "$G" -w "$tiny" -- echo ran
		[ "$status" -eq 0 ]
		[ "$output" = ran ]
	done
	# ... and gives up at once on a full gate, as -w 0 does.
	bg "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	run "$G" -w 1e-400 -- echo ran
	[ "$status" -eq 75 ]
	run "$G" --kill-all --grace 1e-400
	[ "$status" -eq 0 ]
}

@test "seconds still refuse overflow, negatives, hex, nan and inf" {
	for bad in 1e400 1e999 31536001 -1 -1e-400 -0 0x10 0x1p-2000 nan inf infinity \
	    '' ' ' 5s 1e; do
		run "$G" -w "$bad" -- true
		[ "$status" -eq 125 ]
		[ "$output" = "gaterun: --wait is not a number of seconds: '$bad'" ]
	done
	run "$G" -w 31536000 -- true
	[ "$status" -eq 0 ]
}
