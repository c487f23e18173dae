/*
 * Shared by gaterun and gaterun-httpd: the state directory, the parsers
 * of seconds, signals and limits, the limit a new gate gets, and the
 * snapshots of a store's gates that status, metrics and the API show.
 */
#include "config.h"

#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common.h"
#include "conffile.h"
#include "exitcodes.h"
#include "gate.h"
#include "locate.h"

const char *
state_dir(void)
{
	static char buf[PATH_MAX];
	char why[PATH_MAX + 128];
	struct config c;
	const char *conf;

	conf = (conf = getenv("GATERUN_CONF")) != NULL && *conf != '\0' ?
	    conf : GATERUN_CONF;
	if (config_read(conf, NULL, &c, why, sizeof(why)) == -1)
		errx(EXIT_GATERUN, "%s", why);
	if (locate_store(c.store, buf, sizeof(buf)) == -1)
		err(EXIT_GATERUN, "cannot tell where gates live (GATERUN_DIR, "
		    "GATERUN_STORE, store = in %s, or your default directory)",
		    conf);
	return buf;
}

int
secs_parse(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	/* Underflow (1e-400) is ERANGE too, with 0 or a subnormal: keep it. */
	if (errno == ERANGE && fabs(v) <= DBL_MIN)
		errno = 0;
	/* A minus sign is refused even where the value rounds to -0. */
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v) ||
	    signbit(v) || v > 31536000 || strchr(s, 'x') || strchr(s, 'X'))
		return -1;
	*out = v;
	return 0;
}

int
signal_parse(const char *s)
{
	const char *errstr, *abbr;
	int n;

	n = (int)strtonum(s, 1, NSIG - 1, &errstr);
	if (errstr == NULL)
		return n;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (n = 1; n < NSIG; n++)
		if ((abbr = sigabbrev_np(n)) != NULL && strcasecmp(s, abbr) == 0)
			return n;
	return -1;
}

int
limit_parse(const char *s, unsigned min, unsigned *out)
{
	const char *errstr;
	long long v;

	if (*s == '\0' || s[strspn(s, "0123456789")] != '\0')
		return -1;
	v = strtonum(s, min, GATE_MAX_LIMIT, &errstr);
	if (errstr != NULL)
		return -1;
	*out = (unsigned)v;
	return 0;
}

const char *
name_shown(const char *s, name_buf buf)
{
	size_t i, n = 0;

	/* i stops at the byte that would begin character NAME_SHOWN + 1. */
	for (i = 0; s[i] != '\0'; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80 && n++ == NAME_SHOWN)
			break;
	if (i >= NAME_SHOWN * 4)	/* bytes that begin no character */
		i = NAME_SHOWN * 4;
	memcpy(buf, s, i);
	(void)strlcpy(buf + i, s[i] != '\0' ? "..." : "", 4);
	/* Control bytes as '?': no terminal escapes (L-1 of brk-redis7). */
	for (n = 0; n < i; n++)
		if ((unsigned char)buf[n] < 0x20 || buf[n] == 0x7f)
			buf[n] = '?';
	return buf;
}

int
limit_default(const struct config *c, unsigned *out)
{
	const char *e;

	*out = c != NULL && c->limit >= 0 ? (unsigned)c->limit :
	    GATE_DEFAULT_LIMIT;
	if ((e = getenv("GATERUN_LIMIT")) == NULL)
		return 0;
	return limit_parse(e, 0, out);
}

/*
 * Read gate name of dir into gi: 0, or -1 with *why a new message naming
 * the gate (NULL if even that could not be made).
 */
static int
snapshot_one(const char *dir, const char *conf, const char *name,
    void (*notify)(void *, const char *), struct gate_info *gi, char **why)
{
	struct config c;
	struct gate *g;
	const char *advice;
	char err[512], where[PATH_MAX];
	unsigned deflimit;
	int e;

	/* A wrong file was reported at start; here it gives no limit. */
	(void)limit_default(config_read(conf, name, &c, err, sizeof(err)) ==
	    0 ? &c : NULL, &deflimit);
	memset(gi, 0, sizeof(*gi));
	if (gate_open(&g, dir, name, deflimit, 0, notify, NULL) == 0) {
		if (gate_info(g, gi) == 0) {
			gate_close(g);
			if (gi->parent[0] == '\0')	/* else the gate's own */
				(void)strlcpy(gi->parent, c.parent,
				    sizeof(gi->parent));
			return 0;
		}
		e = errno;
		gate_close(g);
		errno = e;
	}
	e = errno;
	advice = locate_advice(e, dir);
	locate_redact(dir, where, sizeof(where));	/* no password shown */
	if (asprintf(why, "cannot read gate '%s' in %s: %s%s%s", name, where,
	    gate_strerror(e), advice != NULL ? ": " : "",
	    advice != NULL ? advice : "") == -1)
		*why = NULL;
	return -1;
}

/* The names snapshots_of() reads: only, or every gate of dir. */
static int
names_of(const char *dir, const char *only, char ***names, size_t *n)
{
	if (only == NULL)
		return gate_list(dir, names, n);
	*n = 0;
	if ((*names = calloc(1, sizeof(**names))) == NULL)
		return -1;
	if (((*names)[0] = strdup(only)) == NULL) {
		free(*names);
		return -1;
	}
	*n = 1;
	return 0;
}

/* Free s, whose names array holds nnames names; zero it. */
static void
release(struct snapshots *s, size_t nnames)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		gate_info_free(&s->gi[i]);
	free(s->gi);
	for (i = 0; i < s->nfailed; i++)
		free(s->why[i]);
	free(s->why);
	gate_list_free(s->names, nnames);
	memset(s, 0, sizeof(*s));
}

int
snapshots_of(const char *dir, const char *only, const char *conf,
    void (*notify)(void *, const char *), struct snapshots *s)
{
	char **names, **bad = NULL, *why;
	size_t total, i;

	memset(s, 0, sizeof(*s));
	if (names_of(dir, only, &names, &total) == -1)
		return -1;
	s->names = names;
	if ((s->gi = calloc(total + 1, sizeof(*s->gi))) == NULL ||
	    (s->why = calloc(total + 1, sizeof(*s->why))) == NULL ||
	    (bad = calloc(total + 1, sizeof(*bad))) == NULL)
		goto fail;
	/*
	 * Read ones move to the front of names, in order (to an index no
	 * greater than their own, already looked at); the others to bad.
	 */
	for (i = 0; i < total; i++) {
		if (snapshot_one(dir, conf, names[i], notify, &s->gi[s->n],
		    &why) == 0) {
			names[s->n++] = names[i];
			continue;
		}
		bad[s->nfailed] = names[i];
		if ((s->why[s->nfailed++] = why) == NULL)
			goto fail;
	}
	for (i = 0; i < s->nfailed; i++)
		names[s->n + i] = bad[i];
	free(bad);
	return 0;
fail:
	/* Those not looked at yet are still in names[n + nfailed..]. */
	for (i = 0; bad != NULL && i < s->nfailed; i++)
		names[s->n + i] = bad[i];
	free(bad);
	release(s, total);
	errno = ENOMEM;
	return -1;
}

void
snapshots_free(struct snapshots *s)
{
	release(s, s->n + s->nfailed);
}
