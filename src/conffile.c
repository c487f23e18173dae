/*
 * The configuration file, one "key = value" a line, '#' comments:
 *
 *	limit = 5		# every new gate
 *	log = no
 *	group = builders	# a new state directory is shared with it
 *	store = /srv/gates	# where gates live (global only)
 *	[gate cc]
 *	limit = 4		# gate "cc" only
 *
 * Read when a gate is made; --limit N --persist writes a gate's limit back.
 */
#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conffile.h"
#include "gate.h"
#include "locate.h"
#include "sys.h"

/* Strip comments and surrounding white space in place. */
static char *
trim(char *s)
{
	char *e;

	if ((e = strchr(s, '#')) != NULL)
		*e = '\0';
	while (isspace((unsigned char)*s))
		s++;
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	return s;
}

/* "[gate NAME]": the name, or NULL if the line is no section header. */
static const char *
section(char *s)
{
	size_t n = strlen(s);

	if (n < 8 || strncmp(s, "[gate ", 6) != 0 || s[n - 1] != ']')
		return NULL;
	s[n - 1] = '\0';
	return trim(s + 6);
}

/*
 * One "key = value" into c; NULL, or the reason it is wrong (in why, of
 * whylen bytes, when it needs words of its own).
 */
static const char *
setting(char *line, struct config *c, int global, char *why, size_t whylen)
{
	const char *errstr;
	char *eq, *k, *v;

	if ((eq = strchr(line, '=')) == NULL)
		return "expected key = value";
	*eq = '\0';
	k = trim(line);
	v = trim(eq + 1);
	if (strcmp(k, "limit") == 0) {
		c->limit = (int)strtonum(v, 0, GATE_MAX_LIMIT, &errstr);
		if (errstr == NULL && isdigit((unsigned char)*v))
			return NULL;
		(void)snprintf(why, whylen,
		    "limit must be an integer from 0 to %d", GATE_MAX_LIMIT);
		return why;
	}
	if (strcmp(k, "log") == 0) {
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
		    strcmp(v, "1") == 0)
			c->log = 1;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
		    strcmp(v, "0") == 0)
			c->log = 0;
		else
			return "log must be yes or no";
		return NULL;
	}
	if (strcmp(k, "group") == 0) {
		if (*v == '\0' || strlen(v) >= sizeof(c->group))
			return "group must be a group name";
		(void)strlcpy(c->group, v, sizeof(c->group));
		return NULL;
	}
	if (strcmp(k, "store") == 0) {
		if (!global)
			return "store goes before any [gate NAME] section";
		if (!locate_absolute(v) || strlen(v) >= sizeof(c->store))
			return "store must be an absolute directory or a locator";
		(void)strlcpy(c->store, v, sizeof(c->store));
		return NULL;
	}
	return "unknown key (limit, log, group and store are known)";
}

int
config_read(const char *path, const char *gate, struct config *c, char *err,
    size_t errlen)
{
	struct config other;
	char *line = NULL, *s, buf[64];
	const char *name, *why = NULL;
	size_t cap = 0;
	int lineno = 0, ours = 1, global = 1;
	FILE *fp;

	c->limit = c->log = -1;
	c->group[0] = c->store[0] = '\0';
	if ((fp = fopen(path, "re")) == NULL) {
		/* None, or one this user may not read (root's own): defaults. */
		if (errno == ENOENT || errno == EACCES || errno == ENOTDIR)
			return 0;
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (why == NULL && getline(&line, &cap, fp) != -1) {
		lineno++;
		if (*(s = trim(line)) == '\0')
			continue;
		if (*s == '[') {
			if ((name = section(s)) == NULL || !gate_name_valid(name))
				why = "expected [gate NAME] with a valid name";
			else
				ours = gate != NULL && strcmp(name, gate) == 0;
			global = 0;
			continue;
		}
		/* Other gates' sections are checked too, then dropped. */
		why = setting(s, ours ? c : &other, global, buf, sizeof(buf));
	}
	free(line);
	(void)fclose(fp);
	if (why != NULL) {
		(void)snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
		return -1;
	}
	return 0;
}

/* Write len bytes of text over path through a new file and a rename. */
static int
replace_file(const char *path, const char *text, size_t len, mode_t mode)
{
	char tmp[4096];
	int fd, r;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new.%d", path,
	    (int)getpid()) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd == -1)
		return -1;
	r = write_full(fd, text, len);
	if (close(fd) == -1)
		r = -1;
	if (r == 0 && rename(tmp, path) == 0)
		return 0;
	(void)unlink(tmp);
	return -1;
}

/*
 * Copy fp to o with "limit = N" (newl) in gate's section: in place of the
 * section's first limit line, or before the next section if it has none.
 * *in tells whether the text ends inside that section, *done whether newl
 * was written. 0, or -1 with errno if a read, an allocation or a write
 * failed: o then holds part of the text only, never to be saved.
 */
static int
copy_with_limit(FILE *fp, FILE *o, const char *gate, const char *newl,
    int *in, int *done)
{
	char *line = NULL, *copy, *s;
	const char *name;
	size_t cap = 0;
	ssize_t n;
	int nomem = 0;

	while ((n = getline(&line, &cap, fp)) != -1) {
		if ((copy = strdup(line)) == NULL) {
			nomem = 1;
			break;
		}
		s = trim(copy);
		if (*s == '[') {
			if (*in && !*done) {	/* section had none */
				(void)fputs(newl, o);
				*done = 1;
			}
			name = section(s);
			*in = name != NULL && strcmp(name, gate) == 0;
		} else if (*in && !*done && strncmp(s, "limit", 5) == 0 &&
		    trim(s + 5)[0] == '=') {
			(void)fputs(newl, o);	/* in place of the old one */
			*done = 1;
			n = 0;
		}
		(void)fwrite(line, 1, (size_t)n, o);
		free(copy);
	}
	free(line);
	/* getline() fails alike at the end and on ENOMEM: feof() tells. */
	if (!nomem && feof(fp) && !ferror(fp) && !ferror(o))
		return 0;
	if (nomem)
		errno = ENOMEM;
	else if (errno == 0)
		errno = EIO;
	return -1;
}

/* Add gate's limit where the copy left none: to the last section, or new. */
static void
append_limit(FILE *o, const char *out, size_t olen, const char *gate,
    const char *newl, int in)
{
	if (olen > 0 && out[olen - 1] != '\n')
		(void)fputc('\n', o);
	if (in)		/* the last section, and it had no limit */
		(void)fputs(newl, o);
	else
		(void)fprintf(o, "%s[gate %s]\n%s", olen ? "\n" : "", gate,
		    newl);
}

/*
 * The file --persist rewrites into real: path itself, or the file a symbolic
 * link there names (the link stays). Anything but a regular file is refused,
 * so that GATERUN_CONF=/dev/null never replaces the device with a file. 0,
 * or -1 with err set.
 */
int
config_target(const char *path, char *real, size_t reallen, char *err,
    size_t errlen)
{
	char buf[PATH_MAX];
	struct stat sb;
	const char *t = buf;

	if (realpath(path, buf) == NULL) {
		/* None yet is fine; a link to nothing is not. */
		if (errno != ENOENT || lstat(path, &sb) == 0)
			goto fail;
		t = path;
	} else if (stat(buf, &sb) == -1)
		goto fail;
	else if (!S_ISREG(sb.st_mode)) {
		(void)snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (strlcpy(real, t, reallen) < reallen)
		return 0;
	errno = ENAMETOOLONG;
fail:
	(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
	return -1;
}

/*
 * The whole file is copied with the new line before anything is written:
 * a copy that fails leaves the file as it was.
 */
int
config_set_limit(const char *path, const char *gate, unsigned limit,
    char *err, size_t errlen)
{
	char *out = NULL, newl[32];
	size_t olen = 0;
	int in = 0, done = 0, r = -1, e;
	mode_t mode = 0644;
	struct stat sb;
	FILE *fp, *o;

	(void)snprintf(newl, sizeof(newl), "limit = %u\n", limit);
	if ((o = open_memstream(&out, &olen)) == NULL)
		goto out;
	errno = 0;
	if ((fp = fopen(path, "re")) != NULL) {
		if (fstat(fileno(fp), &sb) == 0)
			mode = sb.st_mode & 07777;
		r = copy_with_limit(fp, o, gate, newl, &in, &done);
		e = errno;
		(void)fclose(fp);
		errno = e;
		if (r == -1)
			goto out;
	} else if (errno != ENOENT)
		goto out;
	r = -1;
	if (!done && fflush(o) == 0)
		append_limit(o, out, olen, gate, newl, in);
	if (ferror(o)) {
		errno = ENOMEM;		/* the only way a memstream fails */
		goto out;
	}
	if (fclose(o) == EOF) {
		o = NULL;
		goto out;
	}
	o = NULL;
	r = replace_file(path, out, olen, mode);
out:
	if (r == -1)
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
	if (o != NULL)
		(void)fclose(o);
	free(out);
	return r;
}
