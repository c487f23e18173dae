/*
 * A suspend, as far as clocks go, for redis_lease.bats (no test can
 * suspend the machine): preloaded (LD_PRELOAD), this takes the
 * nanoseconds written in the file named by $MONOSHIFT_FILE off every
 * CLOCK_MONOTONIC reading, as a suspend that long leaves that clock
 * behind (it stops while the system sleeps; CLOCK_BOOTTIME goes on,
 * clock_gettime(2)). The test stops the processes (SIGSTOP) for the
 * "suspend", writes how long, and continues them. Built by the test:
 * cc -shared -fPIC -o monoshift.so monoshift.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int	clock_gettime(clockid_t, struct timespec *);

/* The shift (ns) written in $MONOSHIFT_FILE now; 0 if none. */
static int64_t
shift_ns(void)
{
	const char *path = getenv("MONOSHIFT_FILE");
	char buf[32];
	ssize_t n;
	int fd, e = errno;
	int64_t v = 0;

	if (path != NULL && (fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		if ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
			buf[n] = '\0';
			v = strtoll(buf, NULL, 10);
		}
		(void)close(fd);
	}
	errno = e;
	return v;
}

/* The C library's clock_gettime, then CLOCK_MONOTONIC set back. */
int
clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	int64_t ns;

	if (real == NULL &&
	    (real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT,
	    "clock_gettime")) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	if (real(id, ts) == -1)
		return -1;
	if (id != CLOCK_MONOTONIC)
		return 0;
	ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec - shift_ns();
	ts->tv_sec = (time_t)(ns / 1000000000);
	ts->tv_nsec = (long)(ns % 1000000000);
	return 0;
}
