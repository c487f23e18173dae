/*
 * gaterun-httpd's connections: how many are let in, from one address and
 * in all, and how long a client has to send a whole request. Every open
 * connection is in a list; one that has not yet sent a whole request has
 * a deadline, and is the first to go when room is needed.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <err.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpd.h"
#include "sys.h"

/*
 * libmicrohttpd's own timeout is idle time: a client that sends a header
 * line every few seconds never reaches it and holds its connection (and
 * its thread) for good; a few dozen such clients used to lock every other
 * client out. So a connection gets a deadline when it opens and again
 * after each answer; a thread closes those still reading a request when
 * it passes. And when a new connection finds its address's share, or the
 * whole server, full, the connection that has been waiting longest for a
 * whole request is closed to make room (a client that talks at the speed
 * of a network is never the one waiting longest); only when every
 * connection is being answered (event streams) is the new one refused.
 *
 * A connection is closed with shutdown(2): its thread sees the end of
 * the stream and closes it. libmicrohttpd tells us a connection is closed
 * (conns_notify) before it closes the socket, and the list's mutex is
 * held across both, so a shutdown never reaches a reused descriptor.
 */

struct conns;

/* One open connection. */
struct conn {
	struct conn	*next, *prev;
	struct conns	*cs;
	int		fd;
	int		cut;		/* shut down: counted no more */
	int64_t		since_ns;	/* reading a request since; 0: not */
	struct sockaddr_storage addr;
};

/* Every open connection, and the thread that enforces deadlines. */
struct conns {
	pthread_mutex_t	mu;		/* guards everything here */
	pthread_cond_t	due;		/* CLOCK_MONOTONIC: a deadline is set */
	struct conn	*head;
	size_t		n;		/* connections not cut */
	int64_t		next_ns;	/* the reaper wakes then; 0: idle */
	int64_t		bound_ns;	/* to send a whole request */
	unsigned	bound_s;
	unsigned	maxconn, perip;
};

/* The same client address (the port aside). */
static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr,
		    sizeof(struct in6_addr)) == 0;
	return 1;
}

/* Close k: its thread sees the end of the stream. cs->mu held. */
static void
conn_cut(struct conns *cs, struct conn *k)
{
	(void)shutdown(k->fd, SHUT_RDWR);
	k->cut = 1;
	k->since_ns = 0;
	cs->n--;
}

/*
 * Make room for k, just opened, if its address or the server is full:
 * close the connection of that address (or of any) waiting longest for
 * a whole request, or else k itself. cs->mu held, k not yet listed.
 */
static void
conn_admit(struct conns *cs, struct conn *k)
{
	struct conn *j, *old = NULL, *oldhere = NULL;
	size_t here = 0;
	int same;

	for (j = cs->head; j != NULL; j = j->next) {
		if (j->cut)
			continue;
		if ((same = same_addr(&j->addr, &k->addr)))
			here++;
		if (j->since_ns == 0)
			continue;
		if (old == NULL || j->since_ns < old->since_ns)
			old = j;
		if (same && (oldhere == NULL ||
		    j->since_ns < oldhere->since_ns))
			oldhere = j;
	}
	cs->n++;
	if (here >= cs->perip)
		conn_cut(cs, oldhere != NULL ? oldhere : k);
	else if (cs->n > cs->maxconn)
		conn_cut(cs, old != NULL ? old : k);
}

/* Wake the reaper if it sleeps with no deadline. cs->mu held. */
static void
conn_arm(struct conns *cs, struct conn *k)
{
	k->since_ns = mono_ns();
	if (cs->next_ns == 0)
		(void)pthread_cond_signal(&cs->due);
}

/* A connection opened: list it, make room; closed: forget it. */
void
conns_notify(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_ConnectionNotificationCode what)
{
	const union MHD_ConnectionInfo *ci;
	struct conns *cs = cls;
	struct conn *k = *ctx;

	(void)pthread_mutex_lock(&cs->mu);
	if (what == MHD_CONNECTION_NOTIFY_CLOSED && k != NULL) {
		if (!k->cut)
			cs->n--;
		if (k->next != NULL)
			k->next->prev = k->prev;
		if (k->prev != NULL)
			k->prev->next = k->next;
		else
			cs->head = k->next;
		free(k);
		*ctx = NULL;
	} else if (what == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if ((k = calloc(1, sizeof(*k))) == NULL) {
			if (ci != NULL)	/* untracked: not let in */
				(void)shutdown(ci->connect_fd, SHUT_RDWR);
		} else {
			k->cs = cs;
			k->fd = ci != NULL ? ci->connect_fd : -1;
			ci = MHD_get_connection_info(c,
			    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
			if (ci != NULL && ci->client_addr != NULL)
				memcpy(&k->addr, ci->client_addr,
				    ci->client_addr->sa_family == AF_INET6 ?
				    sizeof(struct sockaddr_in6) :
				    sizeof(struct sockaddr_in));
			conn_admit(cs, k);
			if ((k->next = cs->head) != NULL)
				k->next->prev = k;
			cs->head = k;
			if (!k->cut)
				conn_arm(cs, k);
		}
		*ctx = k;
	}
	(void)pthread_mutex_unlock(&cs->mu);
}

/* The connection of c, or NULL when it is not tracked. */
static struct conn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* c's request is whole: no deadline while it is answered. */
void
conns_received(struct MHD_Connection *c)
{
	struct conn *k = conn_of(c);

	if (k == NULL)
		return;
	(void)pthread_mutex_lock(&k->cs->mu);
	k->since_ns = 0;
	(void)pthread_mutex_unlock(&k->cs->mu);
}

/* c's answer went out: the next request's deadline starts now. */
void
conns_answered(struct MHD_Connection *c)
{
	struct conn *k = conn_of(c);

	if (k == NULL)
		return;
	(void)pthread_mutex_lock(&k->cs->mu);
	if (!k->cut)
		conn_arm(k->cs, k);
	(void)pthread_mutex_unlock(&k->cs->mu);
}

/*
 * Close every connection past its deadline; the next deadline, or 0.
 * *ncut counts those closed. cs->mu held.
 */
static int64_t
conns_cut_late(struct conns *cs, size_t *ncut)
{
	struct conn *k;
	int64_t now = mono_ns(), next = 0, due;

	for (k = cs->head; k != NULL; k = k->next) {
		if (k->cut || k->since_ns == 0)
			continue;
		due = k->since_ns + cs->bound_ns;
		if (due <= now) {
			conn_cut(cs, k);
			(*ncut)++;
		} else if (next == 0 || due < next)
			next = due;
	}
	return next;
}

/* The reaper thread: sleep until the next deadline, close the late. */
static void *
conns_reaper(void *arg)
{
	struct conns *cs = arg;
	struct timespec ts;
	size_t ncut;

	(void)pthread_mutex_lock(&cs->mu);
	for (;;) {
		ncut = 0;
		cs->next_ns = conns_cut_late(cs, &ncut);
		if (ncut > 0) {
			/* Not under the lock: stderr may be slow. */
			(void)pthread_mutex_unlock(&cs->mu);
			warnx("closed %zu connection%s that sent no whole "
			    "request within %u s", ncut, ncut > 1 ? "s" : "",
			    cs->bound_s);
			(void)pthread_mutex_lock(&cs->mu);
		} else if (cs->next_ns == 0)
			(void)pthread_cond_wait(&cs->due, &cs->mu);
		else {
			ts.tv_sec = (time_t)(cs->next_ns / 1000000000);
			ts.tv_nsec = (long)(cs->next_ns % 1000000000);
			(void)pthread_cond_timedwait(&cs->due, &cs->mu, &ts);
		}
	}
	/* NOTREACHED */
	return NULL;
}

/*
 * Track connections: at most maxconn, perip from one address, bound_s
 * seconds to send a whole request. The closure of conns_notify, or NULL
 * with errno set.
 */
void *
conns_start(unsigned maxconn, unsigned perip, unsigned bound_s)
{
	pthread_condattr_t ca;
	struct conns *cs;
	pthread_t t;

	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return NULL;
	cs->maxconn = maxconn;
	cs->perip = perip;
	cs->bound_s = bound_s;
	cs->bound_ns = (int64_t)bound_s * 1000000000;
	(void)pthread_mutex_init(&cs->mu, NULL);
	if ((errno = pthread_condattr_init(&ca)) != 0 ||
	    (errno = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) != 0 ||
	    (errno = pthread_cond_init(&cs->due, &ca)) != 0 ||
	    (errno = pthread_create(&t, NULL, conns_reaper, cs)) != 0) {
		free(cs);
		return NULL;
	}
	(void)pthread_condattr_destroy(&ca);
	return cs;
}
