/*
 * Where gates live: the store locator (today a directory) chosen from the
 * environment and the configuration file, and the one default directory
 * of each user. Nothing here touches the store itself.
 */
#ifndef GATERUN_LOCATE_H
#define GATERUN_LOCATE_H

#include <sys/types.h>

#include <stddef.h>

#define LOCATE_ROOT_DIR		"/run/gaterun"	/* root's default */
#define LOCATE_USER_FMT		"/tmp/gaterun-%u"	/* by the outer uid */

/*
 * Where gates live ("the store locator"): $GATERUN_DIR (made absolute
 * against the cwd at start if relative), then $GATERUN_STORE (the same,
 * unless it begins with a scheme such as "file:": then as is), then
 * conf_store (the configuration file's `store =` value, may be NULL: an
 * absolute path or a scheme), else the default directory of the real
 * user. Writes it to buf. Returns 0, or -1 with errno (EINVAL: a relative
 * conf_store, ENAMETOOLONG: longer than len, or what getcwd or
 * locate_default set).
 */
int	locate_store(const char *conf_store, char *buf, size_t len);
/*
 * 1 if s names the same store from any working directory: an absolute
 * path, or a locator that begins with a scheme ("file:", "redis:"); else 0.
 */
int	locate_absolute(const char *s);
/* The default directory alone (for messages and docs); 0 or -1 + errno. */
int	locate_default(char *buf, size_t len);
/*
 * Our effective uid outside our user namespace (one level up: the real
 * owner unless namespaces nest), as *uid: 0 is root, not "root" of
 * unshare -r. Returns 0, or -1 with errno (ENOENT: not mapped).
 */
int	locate_real_uid(uid_t *uid);
/*
 * The same for a process of effective uid euid in a user namespace whose
 * /proc/self/uid_map reads map: LOCATE_ROOT_DIR if euid is root outside
 * the namespace, else LOCATE_USER_FMT of that outer uid. 0 or -1 + errno.
 */
int	locate_default_of(const char *map, uid_t euid, char *buf, size_t len);
/*
 * Parse a uid_map text ("INSIDE OUTSIDE COUNT" lines) and set *outer to
 * what uid is in the parent namespace. Returns 0, or -1 with errno EINVAL
 * (a malformed text) or ENOENT (uid not mapped, or an empty map).
 */
int	locate_uid_map(const char *map, uid_t uid, uid_t *outer);
/*
 * What to do when dir could not be used as the gate directory (err as
 * gate_open left it): a sentence without a final period, or NULL when
 * there is no advice beyond the error itself. Leaves errno alone.
 */
const char *locate_advice(int err, const char *dir);

/*
 * loc as it may be shown: a password in it ("redis://:PASS@host",
 * "redis://USER:PASS@host") replaced by "***". Into buf (cut to len).
 */
void	locate_redact(const char *loc, char *buf, size_t len);

#endif
