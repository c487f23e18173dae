/*
 * EINTR-safe system helpers. Every blocking call that gaterun makes on a
 * file goes through here, so retrying and short transfers are handled once.
 */
#include "config.h"

#include <sys/timerfd.h>

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * Waiting for a lock with a deadline, and deaf to nothing. flock(2) has no
 * timeout and no signal mask of its own, so the wait runs with the
 * caller's sleep mask in force (its stop signals end flock with EINTR)
 * and a timer of ours (a POSIX timer on CLOCK_MONOTONIC, its SIGALRM sent
 * to this thread, caught by a handler that does nothing) ends it at the
 * deadline and at every tick. A signal that lands between the look at
 * *stop and the flock call, or a timer that fires there, is seen at the
 * next tick: the timer repeats every tick until disarmed.
 */
#define LOCK_SIG	SIGALRM

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id	_sigev_un._tid
#endif

/* The timer's signal only interrupts flock. */
static void
on_lock_sig(int sig)
{
	(void)sig;
}

/* Arm the timer for target (ns on CLOCK_MONOTONIC), then every tick. */
static int
lock_arm(timer_t tm, int64_t target, int64_t tick)
{
	struct itimerspec its;

	its.it_value.tv_sec = target / 1000000000;
	its.it_value.tv_nsec = target % 1000000000;
	its.it_interval.tv_sec = tick / 1000000000;
	its.it_interval.tv_nsec = tick % 1000000000;
	return timer_settime(tm, TIMER_ABSTIME, &its, NULL);
}

/* The blocking part of lock_wait: timer made, mask and handler set. */
static int
lock_sleep(int fd, const struct lock_wait *lw, timer_t tm)
{
	int64_t start = mono_ns(), next = start + lw->tick, now, target;

	for (;;) {
		if (lw->stop != NULL && *lw->stop) {
			errno = EINTR;
			return -1;
		}
		now = mono_ns();
		if (lw->deadline >= 0 && now >= lw->deadline) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (now >= next) {
			if (lw->fn != NULL)
				lw->fn(lw->arg, now - start);
			while (next <= now)
				next += lw->tick;
		}
		target = lw->deadline >= 0 && lw->deadline < next ?
		    lw->deadline : next;
		if (lock_arm(tm, target, lw->tick) == -1)
			return -1;
		if (flock(fd, LOCK_EX) == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

int
lock_wait(int fd, const struct lock_wait *lw)
{
	struct sigaction sa, oldsa;
	struct sigevent sev;
	sigset_t mask, oldmask;
	timer_t tm;
	int r, e;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_lock_sig;	/* no SA_RESTART: flock says EINTR */
	sigemptyset(&sa.sa_mask);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = LOCK_SIG;
	sev.sigev_notify_thread_id = gettid();
	if (sigaction(LOCK_SIG, &sa, &oldsa) == -1)
		return -1;
	if (timer_create(CLOCK_MONOTONIC, &sev, &tm) == -1) {
		e = errno;
		(void)sigaction(LOCK_SIG, &oldsa, NULL);
		errno = e;
		return -1;
	}
	if (lw->sigmask != NULL)
		mask = *lw->sigmask;
	else
		(void)sigprocmask(SIG_SETMASK, NULL, &mask);
	(void)sigdelset(&mask, LOCK_SIG);
	(void)sigprocmask(SIG_SETMASK, &mask, &oldmask);
	r = lock_sleep(fd, lw, tm);
	e = errno;
	/* Unblocked until deleted: no signal of the timer is left pending. */
	(void)timer_delete(tm);
	(void)sigprocmask(SIG_SETMASK, &oldmask, NULL);
	(void)sigaction(LOCK_SIG, &oldsa, NULL);
	errno = e;
	return r;
}

/* See sys.h. */
int
write_two(int fd, const char *a, size_t alen, const char *b, size_t blen)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)(uintptr_t)a, .iov_len = alen },
		{ .iov_base = (void *)(uintptr_t)b, .iov_len = blen },
	};
	ssize_t n;

	while ((n = writev(fd, iov, 2)) == -1 && errno == EINTR)
		;
	if (n == -1)
		return -1;
	if ((size_t)n == alen + blen)
		return 0;
	if ((size_t)n < alen)
		return write_full(fd, a + n, alen - (size_t)n) == 0 ?
		    write_full(fd, b, blen) : -1;
	return write_full(fd, b + (n - (ssize_t)alen), blen -
	    ((size_t)n - alen));
}

/*
 * Slurp fd, of size bytes as fstat(2) said (the caller's, so one call is
 * enough), into a NUL-terminated buffer; EFBIG past max bytes.
 */
int
read_fd_all(int fd, off_t size, size_t max, char **bufp, size_t *lenp)
{
	size_t cap;
	ssize_t n;
	char *buf;

	if (size < 0 || (size_t)size > max) {
		errno = EFBIG;
		return -1;
	}
	/* One byte more than the size, so growth since fstat is seen. */
	cap = (size_t)size + 1;
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
boot_ns(void)
{
	return clock_ns(CLOCK_BOOTTIME);
}

int
timerfd_at(int fd, int64_t at, int64_t period)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = at / 1000000000;
	its.it_value.tv_nsec = at % 1000000000;
	its.it_interval.tv_sec = period / 1000000000;
	its.it_interval.tv_nsec = period % 1000000000;
	return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
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
