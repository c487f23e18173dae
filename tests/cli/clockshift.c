/*
 * A wall clock a test can step: LD_PRELOADed into a redis-server, it adds
 * the microseconds written in the file CLOCKSHIFT_FILE names (0 if none)
 * to CLOCK_REALTIME as clock_gettime(2), gettimeofday(2) and time(2) give
 * it, as an NTP step or an administrator's date(1) would. The file is
 * read again at most every 10 ms. Built without the sanitizers (make
 * check), to load into a program that has none.
 */
#define _GNU_SOURCE
#include <sys/time.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int	clock_fn(clockid_t, struct timespec *);

/* The C library's clock_gettime. */
static clock_fn *
real_clock(void)
{
	static clock_fn *fn;

	if (fn == NULL)
		fn = (clock_fn *)dlsym(RTLD_NEXT, "clock_gettime");
	return fn;
}

/* The step (microseconds) the file says, read again every 10 ms. */
static long long
offset_us(void)
{
	static long long off, at = -1;
	struct timespec m;
	const char *path;
	long long now, v;
	FILE *f;

	if (real_clock()(CLOCK_MONOTONIC, &m) == -1)
		return off;
	now = (long long)m.tv_sec * 1000 + m.tv_nsec / 1000000;
	if (at >= 0 && now - at < 10)
		return off;
	at = now;
	if ((path = getenv("CLOCKSHIFT_FILE")) == NULL ||
	    (f = fopen(path, "re")) == NULL)
		return off;
	if (fscanf(f, "%lld", &v) == 1)
		off = v;
	(void)fclose(f);
	return off;
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	long long ns;
	int r;

	if ((r = real_clock()(id, ts)) != 0 ||
	    (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE))
		return r;
	ns = (long long)ts->tv_sec * 1000000000 + ts->tv_nsec +
	    offset_us() * 1000;
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
	return 0;
}

int
gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;

	(void)tz;
	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return -1;
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}

time_t
time(time_t *t)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return (time_t)-1;
	if (t != NULL)
		*t = ts.tv_sec;
	return ts.tv_sec;
}
