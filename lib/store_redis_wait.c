/*
 * How a waiter of the Redis store sleeps (see store_redis.c): its wake fd
 * is an epoll fd over a connection of its own blocked in BLPOP on its list
 * PREFIX "wake:" ADDR (a waker RPUSHes one item: nothing is lost when the
 * waiter is not blocked yet, the item waits in the list) and a timer that
 * fires every third of the lease, so the look that follows renews its
 * record. A record of another host is watched by a timer set to the
 * instant its lease can end; one of this host by its pidfd. A lost
 * connection is made again after the next sleep, or, the server being
 * away then, by the next transaction it answers (rs_wait_arm).
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store_redis.h"
#include "sys.h"

/* A pidfd for a record of this host, else a timer at its lease's end. */
int
rs_watch(struct store *s, const struct procid *id)
{
	const struct rstore *r = (struct rstore *)s;
	int64_t at = rs_lease_end(r, id);
	int fd;

	if (at == -1)
		return proc_pidfd_id(id);
	if (at <= boot_ns()) {
		errno = ESRCH;		/* ended already: look again */
		return -1;
	}
	if ((fd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC |
	    TFD_NONBLOCK)) == -1)
		return -1;
	if (timerfd_at(fd, at, 0) == -1) {
		(void)xclose(fd);
		return -1;
	}
	return fd;
}

/*
 * See store_redis.h: the waiter's timer set to fire at at (boot ns) if
 * that comes before its next renewal: a waiter kept out by a hold looks
 * again when the hold ends (H-1 of brk-redis7: it slept to its renewal,
 * a third of its lease, with the gate empty).
 */
void
rs_wait_until(struct rstore *r, int64_t at)
{
	struct itimerspec cur;
	int64_t next;

	if (r->tfd == -1 || timerfd_gettime(r->tfd, &cur) == -1)
		return;
	next = boot_ns() + cur.it_value.tv_sec * 1000000000LL +
	    cur.it_value.tv_nsec;
	if (at < next)
		(void)timerfd_at(r->tfd, at, r->ttl_ms * MS / 3);
}

/* Send BLPOP on the waiter's connection (its reply is read by drain). */
static void
blpop_send(struct rstore *r)
{
	char key[sizeof(PREFIX) + 8 + STATE_ADDR_LEN];
	int done = 0;

	(void)snprintf(key, sizeof(key), PREFIX "wake:%s", r->addr);
	if (redisAppendCommand(r->wc, "BLPOP %s 0", key) != REDIS_OK)
		return;
	while (!done)
		if (redisBufferWrite(r->wc, &done) != REDIS_OK)
			return;
	r->blpop = 1;
}

/* Drop the waiter's connection (lost): the timer still wakes us. */
static void
wait_drop(struct rstore *r)
{
	if (r->wc == NULL)
		return;
	(void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->wc->fd, NULL);
	redisFree(r->wc);
	r->wc = NULL;
	r->blpop = 0;
}

/* Connect the waiter's connection and block it in BLPOP. */
static void
wait_connect(struct rstore *r)
{
	struct epoll_event ev;

	if ((r->wc = rs_connect_io(&r->loc, &r->io)) == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wc->fd, &ev) == -1) {
		redisFree(r->wc);
		r->wc = NULL;
		return;
	}
	blpop_send(r);
}

/* The waiter's epoll fd: its BLPOP connection and its renewal timer. */
int
rs_listen(struct store *s, store_addr addr)
{
	struct rstore *r = (struct rstore *)s;
	struct epoll_event ev;
	int64_t period = r->ttl_ms * MS / 3;

	if (r->epfd != -1)
		goto done;
	(void)snprintf(r->addr, sizeof(r->addr), "%08x%08x", arc4random(),
	    arc4random());
	if ((r->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    (r->tfd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC |
	    TFD_NONBLOCK)) == -1 || timerfd_at(r->tfd, boot_ns() + period,
	    period) == -1)
		goto fail;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->tfd, &ev) == -1)
		goto fail;
	wait_connect(r);
	if (r->wc == NULL)
		goto fail;
done:
	(void)strlcpy(addr, r->addr, sizeof(store_addr));
	return r->epfd;
fail:
	rs_wait_close(r);
	return -1;
}

/* 1 if fd can be read now. */
static int
readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, 0) == 1;
}

/*
 * After a sleep: the timer read, a BLPOP answered (then sent again), a
 * connection lost made again (one try: a look follows, and says). A BLPOP
 * refused (READONLY on a replica, OOM, NOPERM) would be refused again at
 * once, and its reply would wake us at once, for ever: the connection is
 * dropped and made again a second later (the looks meanwhile say why).
 */
void
rs_drain(struct store *s)
{
	struct rstore *r = (struct rstore *)s;
	redisReply *rp;
	uint64_t n;

	if (r->epfd == -1)
		return;
	(void)read(r->tfd, &n, sizeof(n));
	if (r->wc != NULL && readable(r->wc->fd)) {
		if (redisBufferRead(r->wc) != REDIS_OK)
			wait_drop(r);
		while (r->wc != NULL) {
			rp = NULL;
			if (redisGetReplyFromReader(r->wc, (void **)&rp) !=
			    REDIS_OK) {
				wait_drop(r);
				break;
			}
			if (rp == NULL)
				break;
			if (rp->type == REDIS_REPLY_ERROR) {
				wait_drop(r);
				r->wc_after = mono_ns() + 1000 * MS;
			}
			freeReplyObject(rp);
			r->blpop = 0;
		}
	}
	if (r->wc == NULL) {
		/* Told to leave (rs_io.stop): its one try is the leave's. */
		if (mono_ns() >= r->wc_after && (r->io.stop == NULL ||
		    !*r->io.stop))
			wait_connect(r);
	} else if (!r->blpop)
		blpop_send(r);
}

/*
 * After a read the server answered: a waiter's connection lost and not
 * made again (drain's one try came while the server was away, and the
 * look that followed waited for it: a restart) is made again now, and
 * its BLPOP sent, so that a wake-up of the slot it is given finds it
 * listening, not its next renewal.
 */
void
rs_wait_arm(struct rstore *r)
{
	if (r->epfd == -1)
		return;
	if (r->wc == NULL) {
		if (mono_ns() >= r->wc_after)
			wait_connect(r);
	} else if (!r->blpop)
		blpop_send(r);
}

/* The waiter's connection, timer and epoll fds closed, its address gone. */
static void
wait_fds_close(struct rstore *r)
{
	redisFree(r->wc);
	r->wc = NULL;
	if (r->tfd != -1)
		(void)xclose(r->tfd);
	if (r->epfd != -1)
		(void)xclose(r->epfd);
	r->tfd = r->epfd = -1;
	r->addr[0] = '\0';
}

/* The waiter's list deleted, its connection and fds closed. */
void
rs_wait_close(struct rstore *r)
{
	const char *av[2];
	char key[sizeof(PREFIX) + 8 + STATE_ADDR_LEN];

	if (r->addr[0] != '\0' && r->c != NULL) {
		(void)snprintf(key, sizeof(key), PREFIX "wake:%s", r->addr);
		av[0] = "DEL";
		av[1] = key;
		(void)rs_command(&r->c, &r->io, 2, av);
	}
	wait_fds_close(r);
}

/*
 * See store.h: in a fork of the owner, its connections and fds closed
 * here alone (redisFree only closes the fd: nothing goes to the server,
 * whose connections stay the owner's); the next transaction connects.
 */
void
rs_forked(struct store *s)
{
	struct rstore *r = (struct rstore *)s;

	redisFree(r->c);
	r->c = NULL;
	r->blpop = 0;
	wait_fds_close(r);
}
