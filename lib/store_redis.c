/*
 * The Redis store: one gate's state in one key of a Redis server shared
 * by many hosts, leases instead of PIDs. See store_redis.h for the
 * locator, and README.md ("One gate across many hosts") for what it
 * guarantees and what a failover without persistence can do.
 *
 * Keys (PREFIX is "gaterun:"): PREFIX "gate:" NAME holds the state, a
 * text of lease lines then the file store's text (state.c):
 *
 *	gaterun-redis 1
 *	[hold MS WHY ...]		(after a loss: nobody new until; WHY
 *					 lost, dropped or check: GATE_HOLD_*;
 *					 the rest: see rs_hold_begin)
 *	[dflt]				(the limit is a default, never set)
 *	l TICKET WPID WSTART LEASE_MS HOST [TTL]	(TTL: the lease's ms)
 *	...
 *	gaterun-state 1 ...
 *
 * PREFIX "epoch" a random id made by the first gaterun to use the server
 * (a server that lost its data has none, or another: "restarted"),
 * PREFIX "wake:" ADDR a waiter's list, PREFIX "gates" the set of names,
 * PREFIX "ends" a hash of each gate's "END NEXT WAIT LIMIT NH NW AT"
 * (rs_ends_format: what a hold needs of a key that was deleted), PREFIX
 * "changes" the channel every change is published on, and PREFIX "kill:"
 * NAME and PREFIX "killed:" ID for kill-all across hosts
 * (store_redis_kill.c).
 *
 * A transaction (https://redis.io/docs/interact/transactions/: WATCH,
 * MULTI, EXEC; EXEC answers nil when a watched key changed): WATCH key,
 * GET key, GET epoch, TIME; the policy runs here; then MULTI, SET key,
 * SADD gates, HSET ends, PUBLISH, RPUSH to each waiter woken, EXEC. A nil
 * EXEC is EAGAIN: gate.c runs the policy again on what the winner wrote.
 * Nothing is locked on the server, so a client that dies mid-transaction
 * leaves nothing behind.
 *
 * Liveness. Each record carries its host id and a lease end in the
 * server's clock (TIME at the transaction's start + TTL): a record is
 * alive while its lease runs and, on its own host, while its processes
 * run too (PID + start time), so a crash is seen at once where it can be.
 * Every commit by a process renews its own records; a holder renews from
 * its wrapper's loop (gate_renew), a waiter on a timer in its wake fd.
 *
 * Waits. Every wait for the server (a connect, a reply, a pause before
 * connecting again) is a ppoll bounded by the caller's deadline, with the
 * caller's signal mask: a signal that says leave cuts it short (EINTR),
 * and the waits that follow are one short try (rs_wait_fd, stopping).
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "store.h"
#include "store_redis.h"
#include "sys.h"

#define CONNECT_MS	5000
#define BOUND_MIN_MS	200		/* a reply, at a deadline */
#define RETRY_MS	2000		/* reconnecting, at most */
#define LEAVE_MS	1000		/* told to leave: its one try */


/* Tell the caller something a person should know. */
void
rs_say(struct rstore *r, const char *msg)
{
	int v6 = strchr(r->loc.host, ':') != NULL;
	char buf[400];

	if (r->notify == NULL)
		return;
	(void)snprintf(buf, sizeof(buf), "gate '%s' (Redis %s%s%s:%d): %s",
	    r->name, v6 ? "[" : "", r->loc.host, v6 ? "]" : "", r->loc.port,
	    msg);
	r->notify(r->notify_arg, buf);
}

/*
 * The errno of a getaddrinfo failure: a name that does not resolve (for
 * now, or at all) is EADDRNOTAVAIL.
 */
static int
gai_errno(int g)
{
	switch (g) {
	case EAI_SYSTEM:
		return errno != 0 ? errno : EIO;
	case EAI_MEMORY:
		return ENOMEM;
	case EAI_NONAME:
	case EAI_AGAIN:
	case EAI_FAIL:
	case EAI_NODATA:
	case EAI_ADDRFAMILY:
		return EADDRNOTAVAIL;
	default:
		return EPROTO;
	}
}

/* The errno of a failed context: how a person is told what happened. */
static int
ctx_errno(const redisContext *c)
{
	if (c == NULL)
		return ENOMEM;
	switch (c->err) {
	case REDIS_ERR_IO:
		if (errno == EAGAIN || errno == EINPROGRESS || errno == ETIMEDOUT)
			return ETIME;
		return errno != 0 ? errno : EIO;
	case REDIS_ERR_EOF:
		return ECONNRESET;
	case REDIS_ERR_OOM:
		return ENOMEM;
	default:
		return strstr(c->errstr, "imed out") != NULL ? ETIME : EPROTO;
	}
}

/*
 * Error replies known by their first word, the error's kind ("the first
 * word after the '-', up to the first space or newline, represents the
 * kind of error returned": https://redis.io/docs/reference/protocol-spec/,
 * "Simple errors"), each an errno of its own that gate_strerror() names.
 * Whether a waiter rides it out is gate.c's (lost_link): those marked
 * "for now" are a server that cannot serve for a moment.
 */
static const struct {
	const char	*word;
	int		e;
} kinds[] = {
	{ "WRONGTYPE", EPROTOTYPE },
	{ "NOAUTH", EKEYEXPIRED },	/* no password sent, one needed */
	{ "WRONGPASS", EKEYREJECTED },
	{ "NOPERM", EBADRQC },		/* an ACL user without a right */
	{ "READONLY", EREMCHG },	/* for now: a replica (failover) */
	{ "OOM", ENOSR },		/* for now: maxmemory reached */
	{ "LOADING", ENOANO },		/* for now: a server restarting */
	{ "BUSY", ESTRPIPE },		/* for now: a script running */
	{ "MASTERDOWN", ENOLINK },	/* for now: a replica cut off */
};

/*
 * The errno of an error reply. Its text is never shown: it may echo what
 * was sent. Only its first word is read, and a few texts of "ERR" (the
 * kind of any error without one of its own).
 */
static int
reply_errno(const redisReply *rp)
{
	size_t i, n = strcspn(rp->str, " \r\n");

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (n == strlen(kinds[i].word) &&
		    strncmp(rp->str, kinds[i].word, n) == 0)
			return kinds[i].e;
	/* Sent on connecting, then the server closes (networking.c). */
	if (strncmp(rp->str, "ERR max number of clients", 25) == 0)
		return EXFULL;
	/* Redis 6 and later, then 5 and before, to an AUTH. */
	if (strstr(rp->str, "without any password configured") != NULL ||
	    strstr(rp->str, "no password is set") != NULL)
		return EKEYREVOKED;
	if (strstr(rp->str, "password") != NULL ||
	    strstr(rp->str, "AUTH") != NULL)
		return EKEYREJECTED;
	if (strstr(rp->str, "DB index") != NULL)	/* SELECT's */
		return EDOM;
	return EPROTO;
}

/*
 * How long to wait for a reply (ms): COMMAND_MS, or less up to a caller's
 * deadline (-w, -n), but at least BOUND_MIN_MS, so that a wait begun at
 * its deadline (leaving the line) still gets an answer from a live server.
 */
static int64_t
bound_ms(int64_t deadline)
{
	int64_t ms;

	if (deadline < 0)
		return COMMAND_MS;
	ms = (deadline - mono_ns()) / MS;
	return ms < BOUND_MIN_MS ? BOUND_MIN_MS : ms > COMMAND_MS ?
	    COMMAND_MS : ms;
}

/*
 * 1 if a signal told the caller to leave (io->stop). From the first wait
 * that sees it on, its waits end within LEAVE_MS of then in all, each
 * connect made once (rs_reconnect): a waiter leaving while its server is
 * out of reach makes one short try to take its records out, which end
 * with their lease anyway (on this host at once, with its process).
 */
static int
stopping(struct rs_io *io)
{
	if (io->stop == NULL || !*io->stop)
		return 0;
	if (io->stop_end == 0)
		io->stop_end = mono_ns() + LEAVE_MS * MS;
	return 1;
}

/*
 * Wait until fd is ready for events (fd -1: a pause), ms at most and no
 * longer than io's deadline allows (bound_ms). The caller's signals are
 * let in meanwhile (ppoll with its mask, as its wait in line sleeps): one
 * that says leave ends the wait at once (EINTR), not when the server
 * answers or the time is up; another (SIGCHLD...) is handled, and the
 * wait goes on. Told to leave already, it ends by io->stop_end, and no
 * signal cuts it. 0, or -1 with errno ETIME (time up), EINTR, or ppoll's.
 */
int
rs_wait_fd(int fd, short events, struct rs_io *io, int64_t ms)
{
	struct pollfd pfd = { fd, events, 0 };
	struct timespec ts;
	int64_t left, end, b = bound_ms(io->deadline);
	int stop = stopping(io), r;

	end = mono_ns() + (b < ms ? b : ms) * MS;
	if (stop && io->stop_end < end)
		end = io->stop_end;
	for (;;) {
		if ((left = end - mono_ns()) <= 0) {
			errno = ETIME;
			return -1;
		}
		ts.tv_sec = (time_t)(left / 1000000000);
		ts.tv_nsec = (long)(left % 1000000000);
		if ((r = ppoll(&pfd, 1, &ts, stop ? NULL : io->sigmask)) > 0)
			return 0;
		if (r == 0)
			errno = ETIME;
		if (r == 0 || errno != EINTR)
			return -1;
		if (!stop && stopping(io))
			return -1;	/* EINTR: told to leave */
	}
}

/*
 * The next reply on c into *rp: one read already, else the requests sent
 * (small: the socket's buffer takes them, within SO_SNDTIMEO: rs_bound)
 * and the reply waited for as io says (rs_wait_fd); with io NULL, as
 * hiredis waits (blocked in read, within SO_RCVTIMEO). REDIS_OK, or
 * REDIS_ERR with *e set if the wait ended it (else 0: c's error).
 */
static int
reply_get(redisContext *c, struct rs_io *io, redisReply **rp, int *e)
{
	int done = 0;

	*e = 0;
	if (io == NULL)
		return redisGetReply(c, (void **)rp);
	if (redisGetReplyFromReader(c, (void **)rp) != REDIS_OK)
		return REDIS_ERR;
	while (*rp == NULL && !done)
		if (redisBufferWrite(c, &done) != REDIS_OK)
			return REDIS_ERR;
	while (*rp == NULL) {
		if (rs_wait_fd(c->fd, POLLIN, io, COMMAND_MS) == -1) {
			*e = errno;
			return REDIS_ERR;
		}
		if (redisBufferRead(c) != REDIS_OK ||
		    redisGetReplyFromReader(c, (void **)rp) != REDIS_OK)
			return REDIS_ERR;
	}
	return REDIS_OK;
}

/*
 * One reply of a pipeline: NULL with errno set when the connection failed
 * or the wait for it ended (out of time, ETIME, or cut by a signal, EINTR:
 * either way the connection is dropped, as the replies still to come
 * would be out of step; the next transaction connects again), or when
 * the reply is an error.
 */
redisReply *
rs_reply(redisContext **cp, struct rs_io *io)
{
	redisReply *rp = NULL;
	int e;

	if (reply_get(*cp, io, &rp, &e) != REDIS_OK || rp == NULL) {
		if (e == 0)
			e = ctx_errno(*cp);
		redisFree(*cp);
		*cp = NULL;
		errno = e;
		return NULL;
	}
	if (rp->type == REDIS_REPLY_ERROR) {
		e = reply_errno(rp);
		freeReplyObject(rp);
		errno = e;
		return NULL;
	}
	return rp;
}

/* A command, its reply checked; 0 or -1. */
int
rs_command(redisContext **cp, struct rs_io *io, int argc, const char **argv)
{
	redisReply *rp;

	if (*cp == NULL) {
		errno = ECONNRESET;
		return -1;
	}
	if (redisAppendCommandArgv(*cp, argc, argv, NULL) != REDIS_OK)
		return -1;
	if ((rp = rs_reply(cp, io)) == NULL)
		return -1;
	freeReplyObject(rp);
	return 0;
}

/* ms as a struct timeval. */
static struct timeval
tv_ms(int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000 *
	    1000) };

	return tv;
}

/* See store_redis.h. */
void
rs_bound(struct rstore *r)
{
	if (r->c != NULL)
		(void)redisSetTimeout(r->c, tv_ms(bound_ms(r->io.deadline)));
}

/*
 * set_wait: replies are waited for up to w's deadline from now on, and a
 * signal that sets w->stop while we wait (w->sigmask lets it in) ends the
 * wait: the caller is leaving.
 */
void
rs_set_wait(struct store *s, const struct gate_wait *w)
{
	struct rstore *r = (struct rstore *)s;

	r->io.deadline = w == NULL ? -1 : w->deadline;
	r->io.sigmask = w == NULL ? NULL : w->sigmask;
	r->io.stop = w == NULL ? NULL : w->stop;
	rs_bound(r);
}

/*
 * A TCP connection to l's host and port, made without blocking so that a
 * wait as io says (CONNECT_MS at most) bounds it; each address in turn
 * until one answers. Its fd (blocking, close-on-exec: never to CMD), or
 * -1 with errno set.
 */
static int
tcp_connect(const struct redis_loc *l, struct rs_io *io)
{
	struct addrinfo hints, *res, *ai;
	socklen_t len = sizeof(int);
	char port[8];
	int fd = -1, e = ECONNREFUSED, one = 1, g;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	(void)snprintf(port, sizeof(port), "%d", l->port);
	errno = 0;
	if ((g = getaddrinfo(l->host, port, &hints, &res)) != 0) {
		errno = gai_errno(g);
		return -1;
	}
	for (ai = res; ai != NULL && fd == -1; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol)) == -1) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
		    (errno != EINPROGRESS ||
		    rs_wait_fd(fd, POLLOUT, io, CONNECT_MS) == -1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1 ||
		    (errno = e) != 0)) {
			e = errno == ETIMEDOUT ? ETIME : errno;
			(void)xclose(fd);
			fd = -1;
			if (e == ETIME || e == EINTR)
				break;		/* the wait is over */
		}
	}
	freeaddrinfo(res);
	if (fd == -1) {
		errno = e;
		return -1;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* See store_redis.h. */
redisContext *
rs_connect(const struct redis_loc *l)
{
	return rs_connect_until(l, -1);
}

/* See store_redis.h. */
redisContext *
rs_connect_until(const struct redis_loc *l, int64_t deadline)
{
	struct rs_io io = { deadline, NULL, NULL, 0 };

	return rs_connect_io(l, &io);
}

/*
 * Connect, log in, choose the database, each wait as io says. NULL with
 * errno set (EINTR: a signal said leave).
 */
redisContext *
rs_connect_io(const struct redis_loc *l, struct rs_io *io)
{
	const char *av[3];
	char db[16];
	redisContext *c;
	int e, fd, n = 0;

	if (stopping(io) && mono_ns() >= io->stop_end) {
		errno = ETIME;		/* told to leave: its try is over */
		return NULL;
	}
	if ((fd = tcp_connect(l, io)) == -1)
		return NULL;
	if ((c = redisConnectFd(fd)) == NULL) {
		(void)xclose(fd);
		errno = ENOMEM;
		return NULL;
	}
	(void)redisSetTimeout(c, tv_ms(bound_ms(io->deadline)));
	av[n++] = "AUTH";
	if (l->user[0] != '\0')
		av[n++] = l->user;
	av[n++] = l->pass;
	if (l->pass[0] != '\0' && rs_command(&c, io, n, av) == -1)
		goto fail;
	(void)snprintf(db, sizeof(db), "%d", l->db);
	av[0] = "SELECT";
	av[1] = db;
	if (l->db != 0 && rs_command(&c, io, 2, av) == -1)
		goto fail;
	return c;
fail:
	e = errno;
	redisFree(c);
	errno = e;
	return NULL;
}

/*
 * Connect again after a lost connection, for a while (a server restarting
 * takes a moment): a few tries, RETRY_MS in all, the pauses between them
 * cut short by a signal that says leave (rs_wait_fd). Refusals that another
 * try would not change (a password, a type) end it at once, and so does
 * being told to leave: one try is all it gets (stopping).
 */
redisContext *
rs_reconnect(struct rstore *r)
{
	int64_t end = mono_ns() + RETRY_MS * MS, pause = 50;
	redisContext *c;

	if (r->io.deadline >= 0 && r->io.deadline < end)
		end = r->io.deadline;
	for (;;) {
		if ((c = rs_connect_io(&r->loc, &r->io)) != NULL)
			return c;
		if (errno == EKEYREJECTED || errno == EKEYREVOKED ||
		    errno == EKEYEXPIRED || errno == EBADRQC ||
		    errno == EPROTO || errno == EDOM || errno == EINTR ||
		    stopping(&r->io) || mono_ns() + pause * MS > end)
			return NULL;
		if (rs_wait_fd(-1, 0, &r->io, pause) == -1 && errno == EINTR)
			return NULL;
		pause *= 2;
	}
}


/* Copy [s, e) into buf of size n; 0, or -1 when it does not fit. */
static int
part(char *buf, size_t n, const char *s, const char *e)
{
	if ((size_t)(e - s) >= n)
		return -1;
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = '\0';
	return 0;
}

/* The password from $GATERUN_REDIS_PASSWORD_FILE's first line, if set. */
static int
pass_file(struct redis_loc *l)
{
	const char *path = getenv("GATERUN_REDIS_PASSWORD_FILE");
	struct stat sb;
	char *buf;
	size_t len;
	int fd, r;

	if (path == NULL || *path == '\0' || l->pass[0] != '\0')
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		errno = ENOKEY;
		return -1;
	}
	/* The whole file, its size as fstat says (sys.c, since main). */
	r = fstat(fd, &sb) == -1 ? -1 : read_fd_all(fd, sb.st_size,
	    sizeof(l->pass) - 1, &buf, &len);
	(void)xclose(fd);
	if (r == -1) {
		errno = ENOKEY;
		return -1;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	(void)strlcpy(l->pass, buf, sizeof(l->pass));
	explicit_bzero(buf, len);
	free(buf);
	return 0;
}

/*
 * HOST[:PORT] of a locator, [s, end): the host into l, *colonp at the ':'
 * before the port, or at end. An IPv6 address is written in brackets
 * (RFC 3986, 3.2.2: "[::1]:6379"), kept without them. 0 or -1.
 */
static int
host_part(const char *s, const char *end, struct redis_loc *l,
    const char **colonp)
{
	const char *c;

	if (*s != '[') {
		if ((c = memchr(s, ':', (size_t)(end - s))) == NULL)
			c = end;
		*colonp = c;
		return c == s ? -1 : part(l->host, sizeof(l->host), s, c);
	}
	if ((c = memchr(s, ']', (size_t)(end - s))) == NULL ||
	    part(l->host, sizeof(l->host), s + 1, c) == -1 ||
	    strspn(l->host, "0123456789abcdefABCDEF:.") != strlen(l->host) ||
	    strchr(l->host, ':') == NULL)
		return -1;
	*colonp = ++c;
	return c == end || *c == ':' ? 0 : -1;
}

int
rs_parse_loc(const char *s, struct redis_loc *l)
{
	const char *end, *at, *colon, *errstr = NULL;

	memset(l, 0, sizeof(*l));
	l->port = 6379;
	if (strncmp(s, "//", 2) != 0)
		goto bad;
	s += 2;
	end = s + strcspn(s, "/");
	if ((at = memrchr(s, '@', (size_t)(end - s))) != NULL) {
		if ((colon = memchr(s, ':', (size_t)(at - s))) == NULL ||
		    part(l->user, sizeof(l->user), s, colon) == -1 ||
		    part(l->pass, sizeof(l->pass), colon + 1, at) == -1)
			goto bad;
		s = at + 1;
	}
	if (host_part(s, end, l, &colon) == -1)
		goto bad;
	if (colon < end) {
		char port[8];

		if (part(port, sizeof(port), colon + 1, end) == -1)
			goto bad;
		l->port = (int)strtonum(port, 1, 65535, &errstr);
	}
	if (errstr == NULL && *end == '/' && end[1] != '\0')
		l->db = (int)strtonum(end + 1, 0, 1000000, &errstr);
	if (errstr != NULL)
		goto bad;
	return pass_file(l);
bad:
	explicit_bzero(l, sizeof(*l));
	errno = EDESTADDRREQ;
	return -1;
}

/*
 * This host's id in records: $GATERUN_HOST (tests: simulated hosts), else
 * the host name, the start of the boot id (a host rebooted is another:
 * its old records' PIDs mean nothing now) and the inode of our PID
 * namespace (containers on one kernel share its boot id, and often its
 * name: each must see the other's records as another host's, whose PIDs
 * it cannot check). A $GATERUN_HOST that could not be kept as it is
 * (spaces, control characters, too long) would name the same host as
 * another value: ENOTUNIQ. 0 or -1.
 */
static int
host_id(char *buf, size_t len)
{
	const char *env = getenv("GATERUN_HOST");
	char name[256], boot[40];
	struct stat sb;
	size_t i;

	if (env != NULL && *env != '\0') {
		for (i = 0; env[i] != '\0'; i++)
			if ((unsigned char)env[i] <= ' ' || env[i] == 0x7f)
				break;
		if (env[i] != '\0' || strlcpy(buf, env, len) >= len) {
			errno = ENOTUNIQ;
			return -1;
		}
		return 0;
	}
	if (gethostname(name, sizeof(name)) == -1)
		(void)strlcpy(name, "localhost", sizeof(name));
	if (proc_bootid(boot, sizeof(boot)) == -1)
		boot[0] = '\0';
	if (stat("/proc/self/ns/pid", &sb) == -1)
		sb.st_ino = 0;
	/* 40 + 1 + 8 + 1 + 8: within STATE_HOST_LEN (64). */
	(void)snprintf(buf, len, "%.40s/%.8s/%x", name, boot,
	    (unsigned)sb.st_ino);
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f)
			buf[i] = '_';
	return 0;
}

/* The lease TTL: $GATERUN_LEASE (set by --lease), else the default. */
static int64_t
ttl_ms(void)
{
	const char *env = getenv("GATERUN_LEASE"), *errstr;
	long long v;

	if (env == NULL)
		return REDIS_TTL_DEFAULT * 1000;
	v = strtonum(env, 1, 86400, &errstr);
	return errstr == NULL ? v * 1000 : REDIS_TTL_DEFAULT * 1000;
}

/* 1 if an epoch value is one gaterun makes: 32 hex digits. */
int
rs_epoch_valid(const char *s, size_t len)
{
	return len == 32 && strspn(s, "0123456789abcdef") == 32;
}

/*
 * A reader (--status...) of a replica with no gaterun data (not synced
 * with its master yet, or none there): it cannot make the epoch, and
 * needs none to read: the gate is shown as new, and that said. 0.
 */
static int
epoch_none(struct rstore *r)
{
	r->epoch[0] = '\0';
	r->no_epoch = 1;
	rs_say(r, "the Redis server is a read-only replica with no gaterun "
	    "data (not synced with its master yet, or none there): the gate "
	    "is shown as a new one");
	return 0;
}

/*
 * The server's epoch: read it, or make it if it has none (a reader on a
 * replica: epoch_none); EILSEQ if the key holds something gaterun did
 * not write (left as it is). 0 or -1.
 */
int
rs_epoch(struct rstore *r)
{
	const char *set[] = { "SET", PREFIX "epoch", NULL, "NX" };
	const char *get[] = { "GET", PREFIX "epoch" };
	char fresh[40];
	redisReply *rp;
	int tries;

	(void)snprintf(fresh, sizeof(fresh), "%08x%08x%08x%08x",
	    arc4random(), arc4random(), arc4random(), arc4random());
	set[2] = fresh;
	for (tries = 0; tries < 2; tries++) {
		if (redisAppendCommandArgv(r->c, 2, get, NULL) != REDIS_OK ||
		    (rp = rs_reply(&r->c, &r->io)) == NULL)
			return -1;
		if (rp->type == REDIS_REPLY_STRING && rs_epoch_valid(rp->str,
		    rp->len)) {
			memcpy(r->epoch, rp->str, rp->len);
			r->epoch[rp->len] = '\0';
			freeReplyObject(rp);
			return 0;
		}
		if (rp->type != REDIS_REPLY_NIL) {	/* not ours: leave it */
			freeReplyObject(rp);
			errno = EILSEQ;
			return -1;
		}
		freeReplyObject(rp);
		if (rs_command(&r->c, &r->io, 4, set) == -1)
			return errno == EREMCHG && !r->create ?
			    epoch_none(r) : -1;
	}
	errno = EPROTO;
	return -1;
}

/* Parse the locator, connect, read or make the epoch. */
static int
redis_open(struct store **sp, const char *loc, const char *name,
    unsigned deflimit, int create, gate_notify_fn *fn, void *arg)
{
	struct rstore *r;
	int e;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->base.ops = &store_redis_ops;
	r->epfd = r->tfd = -1;
	r->notify = fn;
	r->notify_arg = arg;
	r->deflimit = deflimit;
	r->create = create;
	r->ttl_ms = ttl_ms();
	r->io.deadline = gate_open_wait()->deadline;
	r->io.sigmask = gate_open_wait()->sigmask;	/* a TERM ends it */
	r->io.stop = gate_open_wait()->stop;
	r->until = -1;
	(void)strlcpy(r->name, name, sizeof(r->name));
	(void)snprintf(r->key, sizeof(r->key), PREFIX "gate:%s", name);
	/* A connection lost at once (a server closing it) is made again. */
	if (host_id(r->host, sizeof(r->host)) == -1 ||
	    proc_id(getpid(), &r->self) == -1 ||
	    rs_parse_loc(loc, &r->loc) == -1 ||
	    (r->c = rs_connect_io(&r->loc, &r->io)) == NULL ||
	    (rs_epoch(r) == -1 && (r->c != NULL || errno != ECONNRESET ||
	    (r->c = rs_connect_io(&r->loc, &r->io)) == NULL ||
	    rs_epoch(r) == -1))) {
		e = errno;
		redisFree(r->c);
		explicit_bzero(&r->loc, sizeof(r->loc));
		free(r);
		errno = e;
		return -1;
	}
	*sp = &r->base;
	return 0;
}

/* A waiter's list and connection gone, the password wiped. */
static void
redis_close(struct store *s)
{
	struct rstore *r = (struct rstore *)s;

	rs_wait_close(r);
	redisFree(r->c);
	rs_mine_free(r);
	explicit_bzero(&r->loc, sizeof(r->loc));
	free(r);
}

/* For qsort: gate names in strcmp order. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The gates ever made on the server (the set PREFIX "gates"), sorted. */
static int
redis_list(const char *loc, char ***outp, size_t *np)
{
	const char *av[] = { "SMEMBERS", PREFIX "gates" };
	struct redis_loc l;
	redisContext *c;
	redisReply *rp = NULL;
	size_t i;

	if (rs_parse_loc(loc, &l) == -1)
		return -1;
	c = rs_connect(&l);
	explicit_bzero(&l, sizeof(l));
	if (c == NULL || redisAppendCommandArgv(c, 2, av, NULL) != REDIS_OK ||
	    (rp = rs_reply(&c, NULL)) == NULL)
		goto fail;
	if ((*outp = calloc(rp->elements + 1, sizeof(**outp))) == NULL)
		goto fail;
	for (i = 0; i < rp->elements; i++)
		if (rp->element[i]->type == REDIS_REPLY_STRING &&
		    gate_name_valid(rp->element[i]->str) &&
		    ((*outp)[*np] = strdup(rp->element[i]->str)) != NULL)
			(*np)++;
	qsort(*outp, *np, sizeof(**outp), name_cmp);
	freeReplyObject(rp);
	redisFree(c);
	return 0;
fail:
	if (rp != NULL)
		freeReplyObject(rp);
	redisFree(c);
	return -1;
}

/* A watch on every gate: a connection subscribed to the change channel. */
static int
redis_watch_open(const char *loc, void **wp)
{
	const char *av[] = { "SUBSCRIBE", PREFIX "changes" };
	struct redis_loc l;
	redisContext *c;

	if (rs_parse_loc(loc, &l) == -1)
		return -1;
	c = rs_connect(&l);
	explicit_bzero(&l, sizeof(l));
	if (c == NULL || rs_command(&c, NULL, 2, av) == -1) {
		redisFree(c);
		return -1;
	}
	*wp = c;
	return 0;
}

/* Readable when a message (a change) arrived. */
static int
redis_watch_fd(void *p)
{
	return ((redisContext *)p)->fd;
}

/* Each message names a gate that changed; never blocks. */
static int
redis_watch_read(void *p, void (*fn)(void *, const char *), void *arg)
{
	redisContext *c = p;
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	redisReply *rp;

	if (poll(&pfd, 1, 0) <= 0)
		return 0;
	if (redisBufferRead(c) != REDIS_OK) {
		errno = ctx_errno(c);
		return -1;
	}
	for (;;) {
		rp = NULL;
		if (redisGetReplyFromReader(c, (void **)&rp) != REDIS_OK)
			return -1;
		if (rp == NULL)
			return 0;
		if (rp->type == REDIS_REPLY_ARRAY && rp->elements == 3 &&
		    rp->element[2]->type == REDIS_REPLY_STRING)
			fn(arg, gate_name_valid(rp->element[2]->str) ?
			    rp->element[2]->str : NULL);
		freeReplyObject(rp);
	}
}

/* The subscribed connection closed. */
static void
redis_watch_close(void *p)
{
	redisFree(p);
}

const struct store_ops store_redis_ops = {
	.scheme = "redis",
	.open = redis_open,
	.close = redis_close,
	.begin = rs_begin,
	.commit = rs_commit,
	.abort = rs_abort,
	.snapshot = rs_snapshot,
	.set_wait = rs_set_wait,
	.alive = rs_alive,
	.watch = rs_watch,
	.listen = rs_listen,
	.drain = rs_drain,
	.list = redis_list,
	.watch_open = redis_watch_open,
	.watch_fd = redis_watch_fd,
	.watch_read = redis_watch_read,
	.watch_close = redis_watch_close,
	.lease = rs_lease,
	.kill_remote = rs_kill_remote,
	.kill_listen = rs_kill_listen,
	.kill_take = rs_kill_take,
	.kill_answer = rs_kill_answer,
	.kill_close = rs_kill_close,
	.forked = rs_forked,
	.optimistic = 1,
};
