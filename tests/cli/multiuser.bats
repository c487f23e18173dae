#!/usr/bin/env bats
# A gate shared by several users: a root-owned, group-writable directory.
# Members run through it, see it and change it; what the kernel would not
# let them signal, --kill-all reports instead of touching; others can do
# nothing; root follows no link a member plants. And where a user's gates
# live when nothing is set: one directory whatever the session (a shell
# with XDG_RUNTIME_DIR, cron without, a user namespace), and advice when
# another user made it first. Needs root to create the users; each test
# skips otherwise.

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

# A copy of gaterun every test user can run, and U1's default directory
# (removed now and at teardown: nothing of an earlier run may stay).
own_dir() {
	SHARED=$(mktemp -d /tmp/gaterun-mu.XXXXXX)
	chmod 755 "$SHARED"
	install -m 755 "$G" "$SHARED/gaterun"
	G=$SHARED/gaterun
	DEF=/tmp/gaterun-$(id -u "$U1")
	rm -rf "$DEF"
}

# mine USER CMD...: as a test user with nothing set, as cron runs a job:
# no GATERUN_DIR, no XDG_RUNTIME_DIR, no configuration file.
mine() {
	local u=$1
	shift
	runuser -u "$u" -- env -u GATERUN_DIR -u XDG_RUNTIME_DIR \
	    GATERUN_CONF="$SHARED/gaterun.conf" "$@"
}

teardown() {
	stop_bg
	[ -z "${SHARED:-}" ] || rm -rf "$SHARED"
	[ -z "${DEF:-}" ] || rm -rf "$DEF"
}

@test "members share the gate: one's slot counts for the other" {
	need_root
	shared_dir
	as "$U1" "$G" --limit 1 >/dev/null
	bg runuser -u "$U1" -- env GATERUN_DIR="$GATERUN_DIR" "$G" -- sleep 1000
	until_true '[ "$(active)" -eq 1 ]'
	run as "$U2" "$G" -n -- true
	[ "$status" -eq 75 ]
	run as "$U2" "$G" --status
	[ "$status" -eq 0 ]
	[[ "$output" == *"$U1"*"sleep 1000"* ]]
	[ "$(stat -c %G "$GATERUN_DIR/default.gate")" = "$GRP" ]
}

@test "a member's --kill-all does not signal another member's command" {
	need_root
	shared_dir
	bg runuser -u "$U1" -- env GATERUN_DIR="$GATERUN_DIR" "$G" -- sleep 1000
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

@test "one user, one gate: a session with XDG_RUNTIME_DIR meets cron without" {
	need_root
	own_dir
	xdg=$SHARED/xdg	# the session's /run/user/UID
	install -d -m 700 -o "$U1" "$xdg"
	mine "$U1" XDG_RUNTIME_DIR="$xdg" "$G" --limit 1 >/dev/null
	bg runuser -u "$U1" -- env -u GATERUN_DIR XDG_RUNTIME_DIR="$xdg" \
	    GATERUN_CONF="$SHARED/gaterun.conf" "$G" -- sleep 1000
	until_true '[ "$(mine "$U1" XDG_RUNTIME_DIR="$xdg" "$G" --status --json |
	    jq -r .active_processes)" = 1 ]'
	run mine "$U1" "$G" -n -- true
	[ "$status" -eq 75 ]
	[ "$(stat -c '%U %a' "$DEF")" = "$U1 700" ]
	[ -z "$(ls -A "$xdg")" ]
}

@test "in a user namespace (unshare -r) a user keeps their own gate" {
	need_root
	command -v unshare >/dev/null || skip "unshare needed"
	own_dir
	mine "$U1" unshare -r true || skip "no unprivileged user namespaces"
	run mine "$U1" unshare -r "$G" -- echo ran
	[ "$status" -eq 0 ]
	[ "$output" = ran ]
	[ "$(stat -c %U "$DEF")" = "$U1" ]
	# A user's own, not root's: nobody else may read it.
	[ "$(stat -c %a "$DEF")" = 700 ]
	[ "$(stat -c %a "$DEF/default.gate")" = 600 ]
	mine "$U1" "$G" --limit 1 >/dev/null
	bg runuser -u "$U1" -- env -u GATERUN_DIR -u XDG_RUNTIME_DIR \
	    GATERUN_CONF="$SHARED/gaterun.conf" "$G" -- sleep 1000
	until_true '[ "$(mine "$U1" "$G" --status --json |
	    jq -r .active_processes)" = 1 ]'
	run mine "$U1" unshare -r "$G" -n -- true
	[ "$status" -eq 75 ]
}

@test "a default directory another user made first: refused, with what to do" {
	need_root
	own_dir
	runuser -u "$U3" -- mkdir -m 700 "$DEF"
	run mine "$U1" "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"$DEF"*"set GATERUN_DIR to a directory of your own"* ]]
	rmdir "$DEF"
	runuser -u "$U3" -- mkdir -m 755 "$DEF"
	run mine "$U1" "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *"$DEF"*"set GATERUN_DIR"* ]]
	# Done as told, it works.
	install -d -m 700 -o "$U1" "$SHARED/own"
	run runuser -u "$U1" -- env GATERUN_DIR="$SHARED/own" "$G" -- echo ran
	[ "$status" -eq 0 ]
	[ "$output" = ran ]
}

@test "a relative GATERUN_DIR is made absolute at start" {
	mkdir sub
	touch file
	run env GATERUN_DIR=file "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == *" in $PWD/file: "* ]]
	GATERUN_DIR=sub/state "$G" --limit 2 >/dev/null
	[ "$(GATERUN_DIR="$PWD/sub/state" "$G" --status --json |
	    jq .max_allowed)" -eq 2 ]
}

@test "store = in the configuration file, GATERUN_STORE, GATERUN_DIR: in that order" {
	printf 'store = %s/conf\n' "$PWD" > "$GATERUN_CONF"
	env -u GATERUN_DIR "$G" --limit 3 >/dev/null
	env -u GATERUN_DIR GATERUN_STORE="$PWD/var" "$G" --limit 4 >/dev/null
	"$G" --limit 6 >/dev/null
	[ "$(GATERUN_DIR=conf "$G" --status --json | jq .max_allowed)" -eq 3 ]
	[ "$(GATERUN_DIR=var "$G" --status --json | jq .max_allowed)" -eq 4 ]
	[ "$(status_field .max_allowed)" -eq 6 ]
	printf 'store = gates\n' > "$GATERUN_CONF"
	run env -u GATERUN_DIR "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == "gaterun: $GATERUN_CONF:1: store must be "* ]]
	printf '[gate cc]\nstore = /srv/gates\n' > "$GATERUN_CONF"
	run env -u GATERUN_DIR "$G" -- true
	[ "$status" -eq 125 ]
	[[ "$output" == "gaterun: $GATERUN_CONF:2: store "* ]]
}
