#!/usr/bin/env bats
# A gate shared by several users: a root-owned, group-writable directory.
# Members run through it, see it and change it; what the kernel would not
# let them signal, --kill-all reports instead of touching; others can do
# nothing; root follows no link a member plants. Needs root to create the
# users; each test skips otherwise.

load common

U1=gaterun-t-u1
U2=gaterun-t-u2
U3=gaterun-t-u3
GRP=gaterun-t-grp

need_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root to create test users"
	command -v useradd >/dev/null || skip "useradd needed"
	command -v runuser >/dev/null || skip "runuser needed"
}

setup_file() {
	[ "$(id -u)" -eq 0 ] || return 0
	groupadd -f "$GRP"
	for u in "$U1" "$U2" "$U3"; do
		id "$u" >/dev/null 2>&1 || useradd -M -N -s /bin/sh "$u"
	done
	usermod -a -G "$GRP" "$U1"
	usermod -a -G "$GRP" "$U2"
}

teardown_file() {
	[ "$(id -u)" -eq 0 ] || return 0
	for u in "$U1" "$U2" "$U3"; do userdel "$u" 2>/dev/null || true; done
	groupdel "$GRP" 2>/dev/null || true
}

# as USER CMD...: run as a test user with the shared state directory.
as() {
	local u=$1
	shift
	runuser -u "$u" -- env GATERUN_DIR="$GATERUN_DIR" "$@"
}

# A place every test user can reach: the gate directory and a copy of
# gaterun (the build tree may sit below a private directory).
shared_dir() {
	SHARED=$(mktemp -d /tmp/gaterun-mu.XXXXXX)
	chmod 755 "$SHARED"
	export GATERUN_DIR=$SHARED/state
	install -d -m 2770 -o root -g "$GRP" "$GATERUN_DIR"
	install -m 755 "$G" "$SHARED/gaterun"
	G=$SHARED/gaterun
}

teardown() {
	stop_bg
	[ -z "${SHARED:-}" ] || rm -rf "$SHARED"
}

@test "members share the gate: one's slot counts for the other" {
	need_root
	shared_dir
	as "$U1" "$G" --limit 1 >/dev/null
	bg runuser -u "$U1" -- env GATERUN_DIR="$GATERUN_DIR" "$G" -- sleep 30
	until_true '[ "$(active)" -eq 1 ]'
	run as "$U2" "$G" -n -- true
	[ "$status" -eq 75 ]
	run as "$U2" "$G" --status
	[ "$status" -eq 0 ]
	[[ "$output" == *"$U1"*"sleep 30"* ]]
	[ "$(stat -c %G "$GATERUN_DIR/default.gate")" = "$GRP" ]
}

@test "a member's --kill-all does not signal another member's command" {
	need_root
	shared_dir
	bg runuser -u "$U1" -- env GATERUN_DIR="$GATERUN_DIR" "$G" -- sleep 30
	until_true '[ "$(active)" -eq 1 ]'
	cmd=$(status_field '.slots[0].pid')
	run as "$U2" "$G" --kill-all --grace 0.2
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot signal $cmd: Operation not permitted"* ]]
	kill -0 "$cmd"
	[ "$(active)" -eq 1 ]
}

@test "a user outside the group can neither run, nor change the limit" {
	need_root
	shared_dir
	as "$U1" "$G" --limit 2 >/dev/null
	run as "$U3" "$G" --limit 10
	[ "$status" -eq 125 ]
	[[ "$output" == *"Permission denied"* ]]
	run as "$U3" "$G" -- true
	[ "$status" -eq 125 ]
	[ "$(status_field .max_allowed)" -eq 2 ]
}

@test "root follows no symlink a member plants, and overwrites nothing" {
	need_root
	shared_dir
	as "$U1" "$G" -- true
	echo keep > "$SHARED/victim"
	chmod 644 "$SHARED/victim"
	as "$U1" ln -sf "$SHARED/victim" "$GATERUN_DIR/.default.new"
	run "$G" -- echo root-ran
	[ "$status" -eq 0 ]
	[ "$output" = root-ran ]
	[ "$(cat "$SHARED/victim")" = keep ]
	as "$U1" rm -f "$GATERUN_DIR/default.gate"
	as "$U1" ln -s "$SHARED/victim" "$GATERUN_DIR/default.gate"
	run "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"symlink"* ]]
	[ "$(cat "$SHARED/victim")" = keep ]
}

@test "gaterun is not installed set-user-ID" {
	[ ! -u "$G" ]
	[ ! -g "$G" ]
}
