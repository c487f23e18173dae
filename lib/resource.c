/*
 * Resource-aware admission: parsing a request's needs, and checking them
 * against the machine. Formats read (proc(5), Documentation/accounting/
 * psi.rst of the Linux kernel): /proc/meminfo "MemAvailable:  N kB"
 * lines, /proc/pressure/{memory,cpu,io} "some avg10=X.XX avg60=..." and
 * /proc/loadavg "L1 L5 L15 R/T PID". Numbers are kept as integers
 * (hundredths), so no locale and no floating point decide a comparison.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resource.h"
#include "sys.h"

static const char *const psi_name[RES_NPSI] = { "memory", "cpu", "io" };

/*
 * A decimal number at s: digits, then optionally '.' and up to maxf
 * digits. *ip the integer part (at most 10^15), *fr the fraction scaled to
 * maxf digits. Returns the characters used, 0 if none fit.
 */
static size_t
dec_parse(const char *s, unsigned maxf, uint64_t *ip, uint64_t *fr)
{
	size_t i = 0, f;

	*ip = *fr = 0;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (*ip >= UINT64_C(100000000000000))
			return 0;
		*ip = *ip * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return 0;
	if (s[i] != '.')
		return i;
	for (i++, f = 0; s[i] >= '0' && s[i] <= '9'; i++, f++) {
		if (f == maxf)
			return 0;
		*fr = *fr * 10 + (uint64_t)(s[i] - '0');
	}
	if (f == 0)
		return 0;		/* "1." */
	for (; f < maxf; f++)
		*fr *= 10;
	return i;
}

/* Hundredths v as a person writes it: "20", "20.5", "0.25". */
static const char *
fix2(unsigned v, char *buf, size_t len)
{
	if (v % 100 == 0)
		(void)snprintf(buf, len, "%u", v / 100);
	else if (v % 10 == 0)
		(void)snprintf(buf, len, "%u.%u", v / 100, v % 100 / 10);
	else
		(void)snprintf(buf, len, "%u.%02u", v / 100, v % 100);
	return buf;
}

/* A number 0..max (in hundredths) with two decimals at most; -1 if not. */
static int64_t
hundredths(const char *s, unsigned max)
{
	uint64_t ip, fr;
	size_t n;

	if ((n = dec_parse(s, 2, &ip, &fr)) == 0 || s[n] != '\0' ||
	    ip > max / 100 || ip * 100 + fr > max)
		return -1;
	return (int64_t)(ip * 100 + fr);
}

int
res_parse_mem(const char *s, struct res_need *n)
{
	static const char units[] = "KMGT";
	uint64_t ip, fr, mult = 1;
	const char *u;
	size_t k;

	if ((k = dec_parse(s, 6, &ip, &fr)) == 0)
		goto bad;
	if (strcmp(s + k, "%") == 0) {
		if (fr != 0 || ip < 1 || ip > 100)
			goto bad;
		n->has = (n->has & ~(unsigned)RES_MEM) | RES_MEMPCT;
		n->mem_pct = (unsigned)ip;
		n->mem = 0;
		return 0;
	}
	if (s[k] != '\0') {
		if ((u = strchr(units, s[k] & ~0x20)) == NULL ||
		    s[k + 1] != '\0')
			goto bad;
		mult = UINT64_C(1) << (10 * (u - units + 1));
	}
	if (ip > RES_MAX_MEM / mult ||
	    ip * mult + fr * mult / 1000000 > RES_MAX_MEM ||
	    ip * mult + fr * mult / 1000000 == 0)
		goto bad;
	n->has = (n->has & ~(unsigned)RES_MEMPCT) | RES_MEM;
	n->mem = ip * mult + fr * mult / 1000000;
	n->mem_pct = 0;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

int
res_parse_pressure(const char *s, struct res_need *n)
{
	const char *c = strchr(s, ':');
	size_t i = RES_PSI_MEMORY;
	int64_t v;

	if (c != NULL) {
		for (i = 0; i < RES_NPSI; i++)
			if (strlen(psi_name[i]) == (size_t)(c - s) &&
			    strncmp(s, psi_name[i], (size_t)(c - s)) == 0)
				break;
		s = c + 1;
	}
	if (i == RES_NPSI || (v = hundredths(s, 10000)) < 0) {
		errno = EINVAL;
		return -1;
	}
	n->has |= RES_PSI(i);
	n->psi[i] = (unsigned)v;
	return 0;
}

int
res_parse_load(const char *s, struct res_need *n)
{
	int64_t v;

	if ((v = hundredths(s, RES_MAX_LOAD)) < 0) {
		errno = EINVAL;
		return -1;
	}
	n->has |= RES_LOAD;
	n->load = (unsigned)v;
	return 0;
}

int
res_valid(const struct res_need *n)
{
	size_t i;

	if ((n->has & ~(unsigned)RES_ALL) != 0 ||
	    (n->has & (RES_MEM | RES_MEMPCT)) == (RES_MEM | RES_MEMPCT) ||
	    ((n->has & RES_MEM) && (n->mem == 0 || n->mem > RES_MAX_MEM)) ||
	    ((n->has & RES_MEMPCT) && (n->mem_pct < 1 || n->mem_pct > 100)) ||
	    ((n->has & RES_LOAD) && n->load > RES_MAX_LOAD))
		return 0;
	for (i = 0; i < RES_NPSI; i++)
		if ((n->has & RES_PSI(i)) && n->psi[i] > 10000)
			return 0;
	return 1;
}

const char *
res_procfs(void)
{
	const char *e = getenv("GATERUN_PROCFS");

	return e != NULL && *e != '\0' ? e : "/proc";
}

/*
 * Read procfs file name (meminfo, pressure/cpu...) into buf, NUL ended.
 * Only a regular file, opened without blocking: the head waiter reads it
 * under the gate's lock, and a FIFO put there would stop the whole gate.
 */
static int
read_proc(const char *name, char *buf, size_t len, char *why, size_t wlen)
{
	char path[4096];
	struct stat sb;
	ssize_t r = -1;
	int fd, e;

	(void)snprintf(path, sizeof(path), "%s/%s", res_procfs(), name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) != -1) {
		if (fstat(fd, &sb) == 0 && !S_ISREG(sb.st_mode))
			errno = EINVAL;
		else
			r = read_full(fd, buf, len - 1);
		(void)xclose(fd);
	}
	if (r <= 0) {
		e = r == 0 ? EINVAL : errno;
		(void)snprintf(why, wlen, "cannot read %s: %s", path,
		    r == 0 ? "it is empty" : e == EINVAL ?
		    "not a regular file" : strerror(e));
		errno = e;
		return -1;
	}
	buf[r] = '\0';
	return 0;
}

/*
 * A number of procfs text at s, ending where a field ends (a blank, a
 * newline or the end): "1e308", "0x10" or "7junk" are none. The
 * characters used, 0 if none.
 */
static size_t
field_num(const char *s, unsigned maxf, uint64_t *ip, uint64_t *fr)
{
	size_t n = dec_parse(s, maxf, ip, fr);

	return n > 0 && (s[n] == ' ' || s[n] == '\n' || s[n] == '\0') ?
	    n : 0;
}

/* The "Key: N kB" value of meminfo text, in bytes; -1 if absent. */
static int64_t
meminfo_bytes(const char *buf, const char *key)
{
	size_t kl = strlen(key);
	const char *p;
	uint64_t ip, fr;
	size_t n;

	for (p = buf; p != NULL; p = (p = strchr(p, '\n')) ? p + 1 : NULL)
		if (strncmp(p, key, kl) == 0 && p[kl] == ':') {
			for (p += kl + 1; *p == ' '; p++)
				;
			if ((n = field_num(p, 0, &ip, &fr)) == 0 ||
			    strncmp(p + n, " kB", 3) != 0 ||
			    ip > (uint64_t)INT64_MAX / 1024)
				return -1;
			return (int64_t)ip * 1024;	/* always in kB */
		}
	return -1;
}

/* The memory needs: 1 met, 0 not (why), -1. */
static int
check_mem(const struct res_need *n, char *why, size_t len)
{
	char buf[8192], a[32], b[32];
	int64_t avail, total;

	if (read_proc("meminfo", buf, sizeof(buf), why, len) == -1)
		return -1;
	avail = meminfo_bytes(buf, "MemAvailable");
	total = meminfo_bytes(buf, "MemTotal");
	if (avail < 0 || total <= 0) {
		(void)snprintf(why, len, "cannot read %s/meminfo: no "
		    "MemAvailable or MemTotal", res_procfs());
		errno = EINVAL;
		return -1;
	}
	res_size((uint64_t)avail, a, sizeof(a));
	if ((n->has & RES_MEM) && (uint64_t)avail < n->mem) {
		res_size(n->mem, b, sizeof(b));
		(void)snprintf(why, len, "waiting for memory: %s available, "
		    "needs %s", a, b);
		return 0;
	}
	if ((n->has & RES_MEMPCT) &&
	    (uint64_t)avail * 100 < (uint64_t)total * n->mem_pct) {
		res_size((uint64_t)total, b, sizeof(b));
		(void)snprintf(why, len, "waiting for memory: %s available "
		    "(%u%% of %s), needs %u%%", a,
		    (unsigned)((uint64_t)avail * 100 / (uint64_t)total), b,
		    n->mem_pct);
		return 0;
	}
	return 1;
}

/* The value after "name=" in the "some" line of PSI text; -1 if none. */
static int64_t
psi_some(const char *buf, const char *name)
{
	const char *p;
	uint64_t ip, fr;

	if (strncmp(buf, "some ", 5) != 0 || (p = strstr(buf, name)) == NULL ||
	    field_num(p + strlen(name), 2, &ip, &fr) == 0 || ip > 100)
		return -1;
	return (int64_t)(ip * 100 + fr);
}

/* Pressure need i: 1 met, 0 not (why), -1. */
static int
check_psi(const struct res_need *n, size_t i, char *why, size_t len)
{
	char buf[512], name[32], a[16], b[16];
	int64_t v;

	(void)snprintf(name, sizeof(name), "pressure/%s", psi_name[i]);
	if (read_proc(name, buf, sizeof(buf), why, len) == -1)
		return -1;
	if ((v = psi_some(buf, " avg10=")) < 0) {
		(void)snprintf(why, len, "cannot read %s/%s: no \"some "
		    "avg10\"", res_procfs(), name);
		errno = EINVAL;
		return -1;
	}
	if ((unsigned)v <= n->psi[i])
		return 1;
	(void)snprintf(why, len, "waiting for %s pressure: %s%% (some "
	    "avg10), at most %s%%", psi_name[i], fix2((unsigned)v, a,
	    sizeof(a)), fix2(n->psi[i], b, sizeof(b)));
	return 0;
}

/* The load need: 1 met, 0 not (why), -1. */
static int
check_load(const struct res_need *n, char *why, size_t len)
{
	char buf[256], a[16], b[16];
	uint64_t ip, fr, v;

	if (read_proc("loadavg", buf, sizeof(buf), why, len) == -1)
		return -1;
	if (field_num(buf, 2, &ip, &fr) == 0 || ip > RES_MAX_LOAD) {
		(void)snprintf(why, len, "cannot read %s/loadavg: not a load "
		    "average", res_procfs());
		errno = EINVAL;
		return -1;
	}
	if ((v = ip * 100 + fr) <= n->load)
		return 1;
	(void)snprintf(why, len, "waiting for load: %s (1 min), at most %s",
	    fix2((unsigned)v, a, sizeof(a)), fix2(n->load, b, sizeof(b)));
	return 0;
}

int
res_check(const struct res_need *n, char *why, size_t len)
{
	size_t i;
	int r;

	if (len > 0)
		why[0] = '\0';
	if ((n->has & (RES_MEM | RES_MEMPCT)) &&
	    (r = check_mem(n, why, len)) != 1)
		return r;
	for (i = 0; i < RES_NPSI; i++)
		if ((n->has & RES_PSI(i)) &&
		    (r = check_psi(n, i, why, len)) != 1)
			return r;
	if ((n->has & RES_LOAD) && (r = check_load(n, why, len)) != 1)
		return r;
	return 1;
}

void
res_size(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
	    "PiB", "EiB" };
	uint64_t d = 1, q;
	size_t u = 0;

	while (u + 1 < sizeof(unit) / sizeof(unit[0]) && v / d >= 1024)
		d <<= 10, u++;
	/* Tenths, rounded to the nearest (1258291 kB is 1.2 GiB). */
	q = v <= UINT64_MAX / 10 ? (v * 10 + d / 2) / d : v / d * 10;
	if (q % 10 == 0)
		(void)snprintf(buf, len, "%llu %s", (unsigned long long)(q / 10),
		    unit[u]);
	else
		(void)snprintf(buf, len, "%llu.%llu %s",
		    (unsigned long long)(q / 10), (unsigned long long)(q % 10),
		    unit[u]);
}

void
res_describe(const struct res_need *n, char *buf, size_t len)
{
	char s[32];
	size_t i, k = 0;

	buf[0] = '\0';
	if (n->has & RES_MEM) {
		res_size(n->mem, s, sizeof(s));
		k += (size_t)snprintf(buf, len, "min-mem %s", s);
	} else if (n->has & RES_MEMPCT)
		k += (size_t)snprintf(buf, len, "min-mem %u%%", n->mem_pct);
	for (i = 0; i < RES_NPSI && k < len; i++)
		if (n->has & RES_PSI(i))
			k += (size_t)snprintf(buf + k, len - k, "%smax-pressure "
			    "%s:%s%%", k ? ", " : "", psi_name[i],
			    fix2(n->psi[i], s, sizeof(s)));
	if ((n->has & RES_LOAD) && k < len)
		(void)snprintf(buf + k, len - k, "%smax-load %s", k ? ", " : "",
		    fix2(n->load, s, sizeof(s)));
}
