/*
 * EINTR-safe system helpers. Every blocking call that gaterun makes on a
 * file goes through here, so retrying and short transfers are handled once.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

/* close(2) without clobbering errno, for cleanup paths. */
int
xclose(int fd)
{
	int saved = errno, r;

	if (fd < 0)
		return 0;
	r = close(fd);		/* Linux: never retry close on EINTR */
	errno = saved;
	return r;
}

/* Read until len bytes or end of file. */
ssize_t
read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, (char *)buf + done, len - done);
		if (n == 0)
			break;
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* Write all of buf. */
int
write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = write(fd, (const char *)buf + done, len - done);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/* flock(LOCK_EX), retried on EINTR unless the caller asked to stop. */
int
lock_fd(int fd)
{
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

/* Slurp fd into a NUL-terminated buffer; EFBIG past max bytes. */
int
read_fd_all(int fd, size_t max, char **bufp, size_t *lenp)
{
	struct stat sb;
	size_t cap;
	ssize_t n;
	char *buf;

	if (fstat(fd, &sb) == -1)
		return -1;
	if (sb.st_size < 0 || (size_t)sb.st_size > max) {
		errno = EFBIG;
		return -1;
	}
	/* One byte more than the size, so growth since fstat is seen. */
	cap = (size_t)sb.st_size + 1;
	if ((buf = malloc(cap + 1)) == NULL)
		return -1;
	if ((n = read_full(fd, buf, cap)) == -1) {
		free(buf);
		return -1;
	}
	if ((size_t)n == cap) {		/* grew under us: not ours to trust */
		free(buf);
		errno = EFBIG;
		return -1;
	}
	buf[n] = '\0';
	*bufp = buf;
	*lenp = (size_t)n;
	return 0;
}

/* Nanoseconds on a clock; 0 if the clock fails, which Linux never does. */
static int64_t
clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) == -1)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

int64_t
real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

uint32_t
fnv1a(uint32_t h, const void *p, size_t len)
{
	const unsigned char *s = p;

	while (len-- > 0)
		h = (h ^ *s++) * 16777619u;
	return h;
}
