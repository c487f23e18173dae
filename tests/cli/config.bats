#!/usr/bin/env bats
# The configuration file: defaults for new gates, logging, --persist.

load common

@test "a new gate takes its limit from the file: its section, else the global key" {
	printf '# defaults\nlimit = 7\n\n[gate cc]\nlimit = 2   # compilers\n' > "$GATERUN_CONF"
	[ "$(status_field .max_allowed)" -eq 7 ]
	[ "$(status_field .max_allowed cc)" -eq 2 ]
	run env GATERUN_LIMIT=3 "$G" -g cc --status --json
	[ "$(jq -r .max_allowed <<<"$output")" -eq 3 ]
	# Read when a gate is made, not after.
	"$G" -g cc -- true
	printf 'limit = 9\n' > "$GATERUN_CONF"
	[ "$(status_field .max_allowed cc)" -eq 2 ]
}

@test "log = yes turns logging on; GATERUN_LOG=0 turns it off" {
	printf 'log = yes\n' > "$GATERUN_CONF"
	run env GATERUN_LOG=stderr "$G" -- true
	[[ "$output" == *"slot 0 taken"* ]]
	run env GATERUN_LOG=0 "$G" -- true
	[ -z "$output" ]
}

@test "--limit --persist writes the gate's limit into its section" {
	printf 'limit = 4\n[gate cc]\nlog = no\n[gate other]\nlimit = 1\n' > "$GATERUN_CONF"
	run "$G" -g cc --limit 6 --persist
	[ "$status" -eq 0 ]
	[ "$output" = "gate 'cc': limit 4 -> 6" ]
	[ "$(cat "$GATERUN_CONF")" = "$(printf 'limit = 4\n[gate cc]\nlog = no\nlimit = 6\n[gate other]\nlimit = 1')" ]
	run "$G" -g cc --limit 8 --persist
	[ "$(grep -c 'limit = 8' "$GATERUN_CONF")" -eq 1 ]
	run "$G" -g fresh --limit 3 --persist
	[ "$(tail -2 "$GATERUN_CONF")" = "$(printf '[gate fresh]\nlimit = 3')" ]
	rm -rf "$GATERUN_DIR"		# a reboot empties /run
	[ "$(status_field .max_allowed fresh)" -eq 3 ]
}

@test "errors name the file and the line, and change nothing" {
	printf 'limit = 4\nlimt = 3\n' > "$GATERUN_CONF"
	run "$G" -- true
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: $GATERUN_CONF:2: unknown key (limit, log, group and store are known)" ]
	printf 'limit = 4097\n' > "$GATERUN_CONF"
	run "$G" --status
	[ "$output" = "gaterun: $GATERUN_CONF:1: limit must be an integer from 0 to 4096" ]
	for bad in 'limit = 4097' 'limit = -1' 'limit = x' 'log = maybe' '[gate a/b]' '[oops]' 'just words'; do
		printf '%s\n' "$bad" > "$GATERUN_CONF"
		run "$G" --status
		[ "$status" -eq 125 ]
		[[ "$output" == "gaterun: $GATERUN_CONF:1: "* ]]
	done
	[ ! -e "$GATERUN_DIR" ]
	run "$G" --status --persist
	[ "$status" -eq 125 ]
}

@test "a limit that cannot be saved is still set, and says so" {
	mkdir "$BATS_TEST_TMPDIR/ro"
	export GATERUN_CONF=$BATS_TEST_TMPDIR/ro/missing-dir/gaterun.conf
	run "$G" --limit 2 --persist
	[ "$status" -eq 125 ]
	[[ "$output" == *"limit set to 2, but not saved: $GATERUN_CONF: "* ]]
	[ "$(status_field .max_allowed)" -eq 2 ]
}

@test "a configuration file the caller may not read is skipped" {
	[ "$(id -u)" -ne 0 ] || skip "root reads every file"
	printf 'limit = 2\n' > "$GATERUN_CONF"
	chmod 000 "$GATERUN_CONF"
	[ "$(status_field .max_allowed)" -eq 5 ]
}

@test "group = NAME: a state directory made now is shared with the group" {
	grp=$(id -gn)
	printf 'group = %s\n' "$grp" > "$GATERUN_CONF"
	run "$G" -- echo ok
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
	[ "$(stat -c '%a %G' "$GATERUN_DIR")" = "2770 $grp" ]
	[ "$(stat -c '%a %G' "$GATERUN_DIR/default.gate")" = "660 $grp" ]
	printf 'group = no-such-group-here\n' > "$GATERUN_CONF"
	rm -rf "$GATERUN_DIR"
	run "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"group 'no-such-group-here' does not exist"* ]]
}

@test "--persist leaves the file untouched when it cannot read it whole" {
	# A path that opens but cannot be read (a directory, reached through a
	# symbolic link): the copy fails at its first read. The rename used
	# to replace the link by a file holding the new section alone.
	mkdir "$BATS_TEST_TMPDIR/confdir"
	ln -s "$BATS_TEST_TMPDIR/confdir" "$GATERUN_CONF"
	run "$G" -g cc --limit 3 --persist
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: cannot save a limit: $GATERUN_CONF: not a regular file" ]
	[ -L "$GATERUN_CONF" ] && [ -d "$GATERUN_CONF" ]
	[ -z "$(find "$BATS_TEST_TMPDIR" -maxdepth 1 -name '*.new.*')" ]
	# Refused before anything changed: the limit too.
	[ "$(status_field .max_allowed cc)" -ne 3 ]
}

@test "--persist never replaces a device or a symbolic link with a file" {
	# GATERUN_CONF=/dev/null and --persist, as root, used to rename a new
	# file over /dev/null itself. Here: a device of our own.
	[ "$(id -u)" -eq 0 ] || skip "mknod needs root"
	mknod -m 666 "$BATS_TEST_TMPDIR/null" c 1 3
	run env GATERUN_CONF="$BATS_TEST_TMPDIR/null" "$G" -g cc --limit 3 --persist
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: cannot save a limit: $BATS_TEST_TMPDIR/null: not a regular file" ]
	[ -c "$BATS_TEST_TMPDIR/null" ]
	[ "$(status_field .max_allowed cc)" -ne 3 ]
}

@test "--persist writes through a symbolic link and keeps it" {
	printf '[gate cc]\nlimit = 2\n' > "$BATS_TEST_TMPDIR/real.conf"
	ln -sf "$BATS_TEST_TMPDIR/real.conf" "$GATERUN_CONF"
	run "$G" -g cc --limit 6 --persist
	[ "$status" -eq 0 ]
	[ -L "$GATERUN_CONF" ]
	[ "$(cat "$BATS_TEST_TMPDIR/real.conf")" = "$(printf '[gate cc]\nlimit = 6')" ]
	# A link to nothing is refused: the file it names may be elsewhere.
	ln -sf "$BATS_TEST_TMPDIR/none/x.conf" "$GATERUN_CONF"
	run "$G" -g cc --limit 5 --persist
	[ "$status" -eq 125 ]
	[[ "$output" == "gaterun: cannot save a limit: $GATERUN_CONF: No such file or directory" ]]
}

@test "--persist leaves the file untouched when memory runs out in the copy" {
	[ -z "${GATERUN_SANITIZED:-}" ] || skip "ASan reserves more address space than any ulimit -v here"
	# A 16 MiB comment: the copy needs it three times (the line read, its
	# trimmed copy, the new text), and gets 24 MiB of address space in all.
	# The copy used to stop at the failed allocation and rename what it
	# had (the [gate a] section alone) over the file.
	{
		printf '[gate a]\nlimit = 2\n#'
		head -c $((16 << 20)) /dev/zero | tr '\0' x
		printf '\n[gate b]\nlimit = 3\n'
	} > "$GATERUN_CONF"
	cp "$GATERUN_CONF" before.conf
	"$G" -g a --status >/dev/null	# the gate exists before the ulimit
	run env LC_ALL=C bash -c 'ulimit -v $((24 << 10)) && exec "$0" -g a --limit 4 --persist' "$G"
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: limit set to 4, but not saved: $GATERUN_CONF: Cannot allocate memory" ]
	cmp "$GATERUN_CONF" before.conf
	[ -z "$(find "$BATS_TEST_TMPDIR" -maxdepth 1 -name '*.new.*')" ]
	[ "$(status_field .max_allowed a)" -eq 4 ]
}

@test "--persist to a path that cannot be opened frees what it made (valgrind)" {
	command -v valgrind >/dev/null || skip "valgrind not installed"
	[ -z "${GATERUN_SANITIZED:-}" ] || skip "a sanitizer build runs without valgrind"
	# In a directory that does not exist: reading finds no file
	# (defaults), writing fails with ENOENT; the new text in memory used
	# to be leaked.
	export GATERUN_CONF=$BATS_TEST_TMPDIR/missing-dir/gaterun.conf
	run valgrind -q --error-exitcode=99 --leak-check=full \
	    --errors-for-leak-kinds=definite "$G" --limit 2 --persist
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: limit set to 2, but not saved: $GATERUN_CONF: No such file or directory" ]
	# Under a regular file: refused before anything changes.
	touch plain
	export GATERUN_CONF=$BATS_TEST_TMPDIR/plain/gaterun.conf
	run "$G" --limit 3 --persist
	[ "$status" -eq 125 ]
	[ "$output" = "gaterun: cannot save a limit: $GATERUN_CONF: Not a directory" ]
}
