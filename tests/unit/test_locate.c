/*
 * Unit tests of lib/locate.c: which variable wins, relative directories
 * made absolute, the default directory by the uid outside a user
 * namespace (fed as uid_map texts), and the advice on a refused default.
 * Each test runs in a fresh working directory with no GATERUN_* set.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "locate.h"
#include "sys.h"

static char dir[64];
static char cwd[PATH_MAX];	/* dir as getcwd(3) spells it */

static void
setup(void)
{
	strcpy(dir, "/tmp/gaterun-unit-XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	cr_assert(eq(int, chdir(dir), 0));
	cr_assert(not(eq(ptr, getcwd(cwd, sizeof(cwd)), NULL)));
	(void)unsetenv("GATERUN_DIR");
	(void)unsetenv("GATERUN_STORE");
}

static void
teardown(void)
{
	(void)chdir("/");
	(void)rmdir(dir);
}

TestSuite(locate, .init = setup, .fini = teardown);

Test(locate, gaterun_dir_wins)
{
	char buf[PATH_MAX];

	setenv("GATERUN_DIR", "/srv/a", 1);
	setenv("GATERUN_STORE", "/srv/b", 1);
	cr_assert(eq(int, locate_store("/srv/c", buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, "/srv/a"));
}

Test(locate, store_variable_before_configuration)
{
	char buf[PATH_MAX];

	setenv("GATERUN_DIR", "", 1);		/* empty: as if unset */
	setenv("GATERUN_STORE", "/srv/b", 1);
	cr_assert(eq(int, locate_store("/srv/c", buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, "/srv/b"));
}

Test(locate, configuration_before_default)
{
	char buf[PATH_MAX];

	setenv("GATERUN_STORE", "", 1);
	cr_assert(eq(int, locate_store("/srv/c", buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, "/srv/c"));
}

Test(locate, default_last)
{
	char buf[PATH_MAX], def[PATH_MAX];

	cr_assert(eq(int, locate_default(def, sizeof(def)), 0));
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, def));
	cr_assert(eq(int, locate_store("", buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, def));
}

Test(locate, relative_configuration_refused)
{
	char buf[PATH_MAX];

	cr_assert(eq(int, locate_store("gates", buf, sizeof(buf)), -1));
	cr_assert(eq(int, errno, EINVAL));
}

Test(locate, relative_dir_made_absolute)
{
	char buf[PATH_MAX], want[PATH_MAX + 8];

	(void)snprintf(want, sizeof(want), "%s/state", cwd);
	setenv("GATERUN_DIR", "state", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, want));
	setenv("GATERUN_DIR", ".//./state", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, want));
	setenv("GATERUN_DIR", ".", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, cwd));
	/* The same directory after the process moves elsewhere. */
	setenv("GATERUN_DIR", "state", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), 0));
	cr_assert(eq(int, chdir("/"), 0));
	cr_assert(eq(str, buf, want));
}

Test(locate, relative_store_variable_made_absolute)
{
	char buf[PATH_MAX], want[PATH_MAX + 8];

	(void)snprintf(want, sizeof(want), "%s/st", cwd);
	setenv("GATERUN_STORE", "st", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, want));
}

Test(locate, locator_with_a_scheme_as_is)
{
	char buf[PATH_MAX];

	setenv("GATERUN_STORE", "file:/srv/g", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, "file:/srv/g"));
	unsetenv("GATERUN_STORE");
	cr_assert(eq(int, locate_store("redis://h:6379/0", buf, sizeof(buf)),
	    0));
	cr_assert(eq(str, buf, "redis://h:6379/0"));
	/* GATERUN_DIR names a directory, whatever it looks like. */
	setenv("GATERUN_DIR", "a:b", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), 0));
	cr_assert(eq(int, strncmp(buf, cwd, strlen(cwd)), 0));
	cr_assert(eq(str, buf + strlen(cwd), "/a:b"));
}

Test(locate, absolute_or_not)
{
	cr_assert(eq(int, locate_absolute("/srv/g"), 1));
	cr_assert(eq(int, locate_absolute("file:/srv/g"), 1));
	cr_assert(eq(int, locate_absolute("redis://h:6379/0"), 1));
	cr_assert(eq(int, locate_absolute("gates"), 0));
	cr_assert(eq(int, locate_absolute("./gates"), 0));
	cr_assert(eq(int, locate_absolute("rel/dir:x"), 0));
	cr_assert(eq(int, locate_absolute(":x"), 0));
	cr_assert(eq(int, locate_absolute(""), 0));
}

Test(locate, relative_dir_at_root)
{
	char buf[PATH_MAX];

	cr_assert(eq(int, chdir("/"), 0));
	setenv("GATERUN_DIR", "state", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, "/state"));
}

Test(locate, too_long)
{
	char buf[8];

	setenv("GATERUN_DIR", "/a/rather/long/path", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), -1));
	cr_assert(eq(int, errno, ENAMETOOLONG));
	setenv("GATERUN_DIR", "state", 1);
	cr_assert(eq(int, locate_store(NULL, buf, sizeof(buf)), -1));
	cr_assert(eq(int, errno, ENAMETOOLONG));
	cr_assert(eq(int, locate_default_of("0 0 4294967295\n", 1001, buf,
	    sizeof(buf)), -1));
	cr_assert(eq(int, errno, ENAMETOOLONG));
}

Test(locate, uid_map_identity)
{
	uid_t out;

	/* The initial namespace, padded as the kernel writes it. */
	cr_assert(eq(int, locate_uid_map(
	    "         0          0 4294967295\n", 1001, &out), 0));
	cr_assert(eq(uint, out, 1001));
	cr_assert(eq(int, locate_uid_map("0 0 4294967295", 0, &out), 0));
	cr_assert(eq(uint, out, 0));
}

Test(locate, uid_map_unshare_r)
{
	uid_t out;

	/* unshare -r by uid 1001: root inside is 1001 outside, alone. */
	cr_assert(eq(int, locate_uid_map("         0       1001          1\n",
	    0, &out), 0));
	cr_assert(eq(uint, out, 1001));
	cr_assert(eq(int, locate_uid_map("0 1001 1\n", 1, &out), -1));
	cr_assert(eq(int, errno, ENOENT));
}

Test(locate, uid_map_ranges)
{
	const char *map = "0 1000 1\n1 100000 65536\n";
	uid_t out;

	cr_assert(eq(int, locate_uid_map(map, 0, &out), 0));
	cr_assert(eq(uint, out, 1000));
	cr_assert(eq(int, locate_uid_map(map, 5, &out), 0));
	cr_assert(eq(uint, out, 100004));
	cr_assert(eq(int, locate_uid_map(map, 65536, &out), 0));
	cr_assert(eq(uint, out, 165535));
	cr_assert(eq(int, locate_uid_map(map, 65537, &out), -1));
	cr_assert(eq(int, errno, ENOENT));
}

Test(locate, uid_map_empty_or_malformed)
{
	uid_t out;

	cr_assert(eq(int, locate_uid_map("", 0, &out), -1));
	cr_assert(eq(int, errno, ENOENT));	/* no map written yet */
	cr_assert(eq(int, locate_uid_map("0 x 1\n", 0, &out), -1));
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, locate_uid_map("0 0\n", 0, &out), -1));
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, locate_uid_map("0 0 1 7\n", 0, &out), -1));
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, locate_uid_map("0 -1 1\n", 0, &out), -1));
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, locate_uid_map("0 99999999999 1\n", 0, &out), -1));
	cr_assert(eq(int, errno, EINVAL));
	/* Would map onto (uid_t)-1, which is no uid. */
	cr_assert(eq(int, locate_uid_map("0 4294967295 1\n", 0, &out), -1));
	cr_assert(eq(int, errno, EINVAL));
}

Test(locate, default_by_outer_uid)
{
	char buf[PATH_MAX];

	cr_assert(eq(int, locate_default_of("0 0 4294967295\n", 0, buf,
	    sizeof(buf)), 0));
	cr_assert(eq(str, buf, "/run/gaterun"));
	cr_assert(eq(int, locate_default_of("0 0 4294967295\n", 1001, buf,
	    sizeof(buf)), 0));
	cr_assert(eq(str, buf, "/tmp/gaterun-1001"));
	/* Root in unshare -r of uid 1001: that user's own directory. */
	cr_assert(eq(int, locate_default_of("0 1001 1\n", 0, buf,
	    sizeof(buf)), 0));
	cr_assert(eq(str, buf, "/tmp/gaterun-1001"));
	/* A namespace made by the real root, mapping root to root. */
	cr_assert(eq(int, locate_default_of("0 0 1\n", 0, buf, sizeof(buf)),
	    0));
	cr_assert(eq(str, buf, "/run/gaterun"));
	/* Not mapped (a namespace before its map is written): no guess. */
	cr_assert(eq(int, locate_default_of("", 0, buf, sizeof(buf)), -1));
	cr_assert(eq(int, errno, ENOENT));
}

Test(locate, default_of_this_process)
{
	char map[16384], buf[PATH_MAX], want[PATH_MAX];
	ssize_t n;
	int fd;

	cr_assert(ge(int, fd = open("/proc/self/uid_map", O_RDONLY), 0));
	cr_assert(ge(long, n = read_full(fd, map, sizeof(map) - 1), 0));
	(void)close(fd);
	map[n] = '\0';
	cr_assert(eq(int, locate_default_of(map, geteuid(), want,
	    sizeof(want)), 0));
	cr_assert(eq(int, locate_default(buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, want));
}

Test(locate, real_uid_of_this_process)
{
	char map[16384];
	uid_t want, got;
	ssize_t n;
	int fd;

	cr_assert(ge(int, fd = open("/proc/self/uid_map", O_RDONLY), 0));
	cr_assert(ge(long, n = read_full(fd, map, sizeof(map) - 1), 0));
	(void)close(fd);
	map[n] = '\0';
	cr_assert(eq(int, locate_uid_map(map, geteuid(), &want), 0));
	cr_assert(eq(int, locate_real_uid(&got), 0));
	cr_assert(eq(uint, got, want));
}

Test(locate, advice_for_a_refused_default)
{
	char def[PATH_MAX];
	const char *a;

	cr_assert(eq(int, locate_default(def, sizeof(def)), 0));
	errno = EACCES;
	a = locate_advice(errno, def);
	cr_assert(eq(int, errno, EACCES));	/* for the caller's message */
	cr_assert(not(eq(ptr, (void *)a, NULL)));
	cr_assert(not(eq(ptr, strstr(a, "set GATERUN_DIR"), NULL)));
	cr_assert(not(eq(ptr, (void *)locate_advice(EPERM, def), NULL)));
	cr_assert(not(eq(ptr, (void *)locate_advice(ELOOP, def), NULL)));
	cr_assert(eq(ptr, (void *)locate_advice(ENOSPC, def), NULL));
	/* A directory chosen by hand: its owner knows what they meant. */
	cr_assert(eq(ptr, (void *)locate_advice(EPERM, "/srv/gates"), NULL));
	cr_assert(eq(ptr, (void *)locate_advice(EPERM, NULL), NULL));
}

/* The password's place in loc redacted as locate_redact() shows it. */
static void
assert_redacted(const char *loc, const char *want)
{
	char buf[256];

	locate_redact(loc, buf, sizeof(buf));
	cr_assert(eq(str, buf, (char *)want), "%s: got %s", loc, buf);
}

Test(locate, redact_up_to_the_last_at)
{
	/* Failed before for '/' in the password: cut at the first '/'. */
	assert_redacted("redis://:pw@h:1/0", "redis://:***@h:1/0");
	assert_redacted("redis://u:pw@h/0", "redis://u:***@h/0");
	assert_redacted("redis://:pa/ss@h:1/0", "redis://:***@h:1/0");
	assert_redacted("redis://:p@a/ss:x@h:1/0", "redis://:***@h:1/0");
	assert_redacted("redis://:pw@/0", "redis://:***@/0");
	assert_redacted("redis://:pw@[::1]:1/0", "redis://:***@[::1]:1/0");
	/* Nothing to hide: no password, no authority, no scheme. */
	assert_redacted("redis://u@h/0", "redis://u@h/0");
	assert_redacted("redis://h:6379/0", "redis://h:6379/0");
	assert_redacted("file:///a:b@c", "file:///a:b@c");
	assert_redacted("/srv/gates", "/srv/gates");
}
