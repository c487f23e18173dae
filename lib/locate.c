/*
 * Where gates live. The locator is $GATERUN_DIR, then $GATERUN_STORE,
 * then the configuration file's `store =`, else one default directory per
 * user: /run/gaterun for root, /tmp/gaterun-UID for everyone else.
 *
 * The default must not depend on the session: a user's interactive shell
 * and the same user's cron job must meet in the same gate, or the limit
 * silently does not hold between them (issue 10). Why these directories:
 *
 * - Not $XDG_RUNTIME_DIR: pam_systemd runs for interactive sessions only
 *   (Debian's libpam-systemd, /usr/share/pam-configs/systemd:
 *   "Session-Interactive-Only: yes"), so a cron job has no logind session
 *   and no XDG_RUNTIME_DIR, and /run/user/UID is removed when the last
 *   session ends (systemd src/login/logind-user.c, user_finalize(): "Kill
 *   XDG_RUNTIME_DIR") while cron jobs may still run.
 * - Not /dev/shm/gaterun-UID, although every Linux has that tmpfs: with
 *   RemoveIPC=yes, the default (logind.conf(5)), user_finalize() calls
 *   clean_ipc() at the user's last logout, and clean_posix_shm()
 *   (systemd src/shared/clean-ipc.c) removes every file and directory the
 *   user owns under /dev/shm, recursing into directories. A cron job
 *   holding a slot would lose its gate under it, and the next run would
 *   start on a fresh, empty gate: more than the limit would run. Only
 *   system users (uid <= SYS_UID_MAX) and root are spared.
 * - /tmp/gaterun-UID: the same path from every session, cron and su
 *   included. Debian 12 empties /tmp at boot and never ages it
 *   (/usr/lib/tmpfiles.d/tmp.conf: "D /tmp 1777 root root -"); upstream
 *   systemd (tmpfiles.d/tmp.conf: "q /tmp 1777 root root 10d", as on
 *   Fedora, Arch and Debian 13) removes what was not touched for 10 days,
 *   which would take a gate from under a holder that runs that long: our
 *   tmpfiles snippet (systemd/gaterun.conf) excludes "x /tmp/gaterun-*"
 *   from aging (tmpfiles.d(5), as systemd does for
 *   /tmp/systemd-private-*). A reboot ends every holder anyway.
 * - /tmp is shared: another user can make /tmp/gaterun-UID first. The
 *   store refuses a directory that is not ours (a denial of service, not
 *   a takeover); locate_advice() tells the user to set GATERUN_DIR.
 * - A service with PrivateTmp= sees a /tmp of its own (as PrivateDevices=
 *   gives it a /dev/shm of its own): it needs GATERUN_DIR to meet others.
 *
 * Root or not is decided by the owner outside a user namespace: in
 * `unshare -r` the effective uid is 0, but /run/gaterun (owned by the real
 * root, seen as nobody) would be refused. /proc/self/uid_map maps our uid
 * to the parent namespace's; the initial namespace reads "0 0 4294967295"
 * (user_namespaces(7)), so the same rule covers both. A namespace nested
 * in another one sees only its parent's uid: GATERUN_DIR there.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "locate.h"
#include "sys.h"

/* The uid_map of the initial user namespace, where uids are themselves. */
#define IDENTITY_MAP	"0 0 4294967295\n"

/* Copy s into buf, or fail with ENAMETOOLONG. */
static int
copy(const char *s, char *buf, size_t len)
{
	if (strlcpy(buf, s, len) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * s as an absolute path: a relative one is joined to the working
 * directory now, so that it names the same directory whatever the process
 * does later ("./" in front is dropped, "." is the directory itself).
 */
static int
absolute(const char *s, char *buf, size_t len)
{
	char cwd[PATH_MAX];

	if (*s == '/')
		return copy(s, buf, len);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	while (s[0] == '.' && s[1] == '/')
		for (s++; *s == '/'; s++)
			;
	if (*s == '\0' || strcmp(s, ".") == 0)
		return copy(cwd, buf, len);
	if ((size_t)snprintf(buf, len, "%s%s%s", cwd,
	    strcmp(cwd, "/") == 0 ? "" : "/", s) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* 1 if s begins with a URL scheme ("file:", "redis:"): a locator as is. */
static int
has_scheme(const char *s)
{
	size_t n;

	if (!isalpha((unsigned char)*s))
		return 0;
	n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789+.-");
	return s[n] == ':';
}

int
locate_absolute(const char *s)
{
	return *s == '/' || has_scheme(s);
}

int
locate_store(const char *conf_store, char *buf, size_t len)
{
	const char *s;

	if ((s = getenv("GATERUN_DIR")) != NULL && *s != '\0')
		return absolute(s, buf, len);	/* a directory, always */
	if ((s = getenv("GATERUN_STORE")) != NULL && *s != '\0')
		return has_scheme(s) ? copy(s, buf, len) :
		    absolute(s, buf, len);
	if (conf_store != NULL && *conf_store != '\0') {
		/* Relative to what? Not to the caller's working directory. */
		if (!locate_absolute(conf_store)) {
			errno = EINVAL;
			return -1;
		}
		return copy(conf_store, buf, len);
	}
	return locate_default(buf, len);
}

/* One unsigned decimal field of a uid_map line at *sp, past blanks. */
static int
map_field(const char **sp, unsigned long long *v)
{
	const char *s = *sp;
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno != 0 || *v > UINT32_MAX)
		return -1;
	*sp = end;
	return 0;
}

int
locate_uid_map(const char *map, uid_t uid, uid_t *outer)
{
	unsigned long long in, out, n;
	const char *s = map;

	while (*s != '\0') {
		if (map_field(&s, &in) == -1 || map_field(&s, &out) == -1 ||
		    map_field(&s, &n) == -1)
			goto bad;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s != '\n' && *s != '\0')
			goto bad;
		if (*s == '\n')
			s++;
		if (uid >= in && uid - in < n) {
			if (out + (uid - in) >= UINT32_MAX)
				goto bad;	/* (uid_t)-1 is no uid */
			*outer = (uid_t)(out + (uid - in));
			return 0;
		}
	}
	errno = ENOENT;		/* unmapped: overflowuid, or no map yet */
	return -1;
bad:
	errno = EINVAL;
	return -1;
}

int
locate_default_of(const char *map, uid_t euid, char *buf, size_t len)
{
	uid_t outer;

	if (locate_uid_map(map, euid, &outer) == -1)
		return -1;
	if (outer == 0)
		return copy(LOCATE_ROOT_DIR, buf, len);
	if ((size_t)snprintf(buf, len, LOCATE_USER_FMT,
	    (unsigned)outer) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Our uid_map into map (NUL-ended), or the identity map if there is none. */
static int
read_map(char *map, size_t len)
{
	ssize_t n;
	int fd;

	if ((fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC)) == -1) {
		/* No user namespaces in the kernel, or no /proc: uids as is. */
		if (errno != ENOENT)
			return -1;
		return copy(IDENTITY_MAP, map, len);
	}
	n = read_full(fd, map, len - 1);
	(void)xclose(fd);
	if (n == -1)
		return -1;
	map[n] = '\0';
	return 0;
}

int
locate_real_uid(uid_t *uid)
{
	char map[16384];	/* the kernel's limit: 340 lines of 33 bytes */

	if (read_map(map, sizeof(map)) == -1)
		return -1;
	return locate_uid_map(map, geteuid(), uid);
}

int
locate_default(char *buf, size_t len)
{
	char map[16384];

	if (read_map(map, sizeof(map)) == -1)
		return -1;
	return locate_default_of(map, geteuid(), buf, len);
}

const char *
locate_advice(int err, const char *dir)
{
	char def[PATH_MAX];
	int saved = errno, ours;

	if (err != EACCES && err != EPERM && err != ELOOP && err != ENOTDIR)
		return NULL;
	/*
	 * Chosen by hand, the directory's owner knows what they meant; the
	 * default one in /tmp may have been made first by somebody else.
	 */
	ours = dir != NULL && locate_default(def, sizeof(def)) == 0 &&
	    strcmp(dir, def) == 0;
	errno = saved;		/* called on the way to print errno */
	if (!ours)
		return NULL;
	return "another user may have made it first: ask root to remove it, "
	    "or set GATERUN_DIR to a directory of your own (the same in all "
	    "your sessions and cron jobs)";
}

/*
 * The userinfo ends at the LAST '@', not at the first '/': a password may
 * hold '/' (base64 ones often do) and '@', and a host never holds '@'. A
 * locator with no authority ("file:///dir") is left as it is.
 */
void
locate_redact(const char *loc, char *buf, size_t len)
{
	const char *a, *at, *colon;

	(void)strlcpy(buf, loc, len);
	if ((a = strstr(loc, "://")) == NULL || a[3] == '/')
		return;
	a += 3;
	if ((at = strrchr(a, '@')) == NULL ||
	    (colon = memchr(a, ':', (size_t)(at - a))) == NULL)
		return;
	(void)snprintf(buf, len, "%.*s***%s", (int)(colon + 1 - loc), loc, at);
}
