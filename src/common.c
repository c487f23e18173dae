/*
 * Shared by gaterun and gaterun-httpd: the state directory and the
 * parsers of seconds, signals and limits.
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
