/*
 * EINTR-safe system helpers: the one place that retries interrupted calls
 * and loops on short transfers.
 */
#ifndef GATERUN_SYS_H
#define GATERUN_SYS_H

#include <sys/types.h>

#include <signal.h>
#include <stdint.h>

/* close(2) that keeps errno; returns 0 or -1. */
int	xclose(int);
/* Read up to len bytes, looping on short reads; returns bytes read or -1. */
ssize_t	read_full(int, void *, size_t);
/* Write all len bytes, looping on short writes; returns 0 or -1. */
int	write_full(int, const void *, size_t);
/* Two buffers in one writev where it takes them whole; 0 or -1. */
int	write_two(int, const char *, size_t, const char *, size_t);
/* Take an exclusive flock(2), retrying on EINTR. */
int	lock_fd(int);

/* How lock_wait() waits for a lock another process holds. */
struct lock_wait {
	int64_t		deadline;	/* CLOCK_MONOTONIC ns; -1: none */
	const sigset_t	*sigmask;	/* mask while blocked; NULL: as is */
	const volatile sig_atomic_t *stop; /* set by a signal: give up */
	int64_t		tick;		/* fn every tick ns waited (> 0) */
	void		(*fn)(void *, int64_t);	/* told ns waited so far */
	void		*arg;
};
/*
 * flock(LOCK_EX) that can give up: 0, or -1 with ETIMEDOUT at the
 * deadline, EINTR once *stop is set, else flock's errno. A lock free now
 * is taken whatever the deadline or stop say. For single-threaded
 * callers: SIGALRM is caught (then given back its disposition) to end the
 * sleep at the deadline or the next tick.
 */
int	lock_wait(int, const struct lock_wait *);
/* Read a whole file (at most max bytes) into a malloc'd, NUL-ended buffer. */
int	read_fd_all(int, off_t, size_t, char **, size_t *);
/* FNV-1a (32 bits) of len bytes, continuing from h (start: SYS_FNV_INIT). */
#define SYS_FNV_INIT	2166136261u
uint32_t	fnv1a(uint32_t, const void *, size_t);
/*
 * CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds. Monotonic time is
 * for waits bounded by this host alone (-w, -n, lock waits, reply
 * timeouts): a suspend does not eat them.
 */
int64_t	mono_ns(void);
/*
 * CLOCK_BOOTTIME in nanoseconds: the lease clock. Like CLOCK_MONOTONIC,
 * but it counts the time the system was suspended, as the Redis server's
 * clock does (a lease that ended while this host slept has ended).
 */
int64_t	boot_ns(void);
/*
 * Arm timerfd fd (of the clock it was made on) to fire at the absolute
 * instant at (ns), then every period (0: once). Arming again clears a
 * count of expiries not read. 0 or -1.
 */
int	timerfd_at(int, int64_t, int64_t);
int64_t	real_ns(void);

#endif
