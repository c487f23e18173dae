#!/usr/bin/env bats
# The documents agree with the program: every option has a man page entry,
# the exit-code table is the same in --help, the man page and the README.

load common

MAN=$BATS_TEST_DIRNAME/../../man/gaterun.1
README=$BATS_TEST_DIRNAME/../../README.md

@test "every option of --help has a man page entry" {
	for o in $("$G" --help | grep -o -- '--[a-z-]*' | sort -u); do
		grep -q -- "^\.It \(Fl .*\)\?Fl ${o#-}\b" "$MAN" || { echo "no entry for $o"; false; }
	done
}

@test "the man page is clean under mandoc -Tlint" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	run mandoc -Tlint -W warning "$MAN"
	[ "$status" -eq 0 ]
}

@test "the exit codes are the same in --help, the man page and the README" {
	for code in 75 125 126 127; do
		"$G" --help | grep -q "^  $code " || { echo "--help lacks $code"; false; }
		grep -q "^\.It $code\$" "$MAN" || { echo "man lacks $code"; false; }
		grep -q "^| $code " "$README" || { echo "README lacks $code"; false; }
	done
}

@test "gaterun-httpd: every option of --help has a man page entry; mandoc clean" {
	[ -x "${GATERUN_HTTPD:-}" ] || skip "gaterun-httpd not built"
	man8=$BATS_TEST_DIRNAME/../../man/gaterun-httpd.8
	for o in $("$GATERUN_HTTPD" --help | grep -o -- '--[a-z-]*' | sort -u); do
		grep -q -- "^\.It \(Fl .*\)\?Fl ${o#-}\b" "$man8" || { echo "no entry for $o"; false; }
	done
	# Every endpoint of --help is described.
	for e in $("$GATERUN_HTTPD" --help | grep -o '/[a-z/-]*' | grep -v '^/$' | sort -u); do
		grep -q -- "$e" "$man8" || { echo "no entry for $e"; false; }
	done
	if command -v mandoc >/dev/null; then
		mandoc -Tlint -W warning "$man8"
	fi
}
