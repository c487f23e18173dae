/*
 * Kill-all across hosts on the Redis store. PIDs of other hosts mean
 * nothing here, so kill-all is a request: each holder's lease watchdog
 * (src/lease.c), a process on the holder's own host, listens for it,
 * stops its command and what it started as kill-all does on one host
 * (killall.c), and answers what it signalled.
 *
 * Keys (PREFIX "gaterun:"): PREFIX "kill:" NAME is both the channel a
 * request is published on and a string holding the last request, which
 * expires with it; PREFIX "killed:" ID the list the answers are pushed to.
 *
 *	request	ID SIG GRACE_MS HOST WPID [HOST WPID ...]
 *	answer	HOST WPID ERRNO [PID ERRNO ...]
 *
 * A request names the holders it is for by host id and wrapper PID: a
 * command started later is not touched. A listener subscribes first and
 * reads the stored request next, so one that subscribes just after the
 * PUBLISH still sees it (Redis pub/sub keeps nothing for a subscriber
 * that was not there: https://redis.io/docs/interact/pubsub/). Whoever
 * does not answer within the grace and GATE_KILL_SLACK is reported
 * ETIMEDOUT: its command may still run (a stopped or cut-off host).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "store.h"
#include "store_redis.h"
#include "sys.h"

#define ANSWER_TTL	"60000"		/* ms an answer list is kept */
#define ANSWER_MS	2000		/* an answer's connection made again */

/* A holder's listener. */
struct rkill {
	redisContext	*sub;		/* subscribed to the channel */
	redisContext	*c;		/* to read the request, answer */
	char		host[STATE_HOST_LEN + 1];
	pid_t		wpid;
	char		chan[KEY_MAX + 8];
	char		*pending;	/* the request stored at listen */
	char		last[40];	/* the last one served */
	struct redis_loc loc;		/* to connect c again */
};

/* A holder asked: who it is, and whether it answered. */
struct target {
	const struct store_holder *h;
	int		answered;
};

/* One kill-all: its targets, and what they did. */
struct kreq {
	struct target	*t;
	size_t		nt;
	struct gate_kill *out;
	size_t		nout, cap;
};

/* A gate's kill-all channel, also the key of its last request. */
static void
chan_name(char *buf, size_t len, const char *gate)
{
	(void)snprintf(buf, len, PREFIX "kill:%s", gate);
}

/* Note one process (or a holder that did not answer). */
static int
out_add(struct kreq *q, pid_t pid, int error, int slot, const char *host)
{
	struct gate_kill *k;
	void *p;

	if (q->nout == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 16;
		if ((p = reallocarray(q->out, q->cap, sizeof(*q->out))) == NULL)
			return -1;
		q->out = p;
	}
	k = &q->out[q->nout++];
	memset(k, 0, sizeof(*k));
	k->pid = pid;
	k->error = error;
	k->slot = slot;
	(void)strlcpy(k->host, host, sizeof(k->host));
	return 0;
}

/* 1 if id is the caller or one of its ancestors (anc[0..n)). */
static int
is_ancestor(const struct procid *anc, size_t n, const struct procid *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (anc[i].pid == id->pid && anc[i].start == id->start)
			return 1;
	return 0;
}

/*
 * The holders to ask, one per wrapper (a weighted request holds several
 * slots); a slot the caller runs in on this host is spared (EDEADLK), as
 * on one host.
 */
static int
targets(struct rstore *r, const struct store_holder *h, size_t n,
    struct kreq *q)
{
	struct procid *anc = NULL;
	size_t i, j, na = 0;

	if ((q->t = calloc(n + 1, sizeof(*q->t))) == NULL ||
	    proc_ancestors(&anc, &na) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		for (j = 0; j < q->nt; j++)
			if (q->t[j].h->wrapper.pid == h[i].wrapper.pid &&
			    strcmp(q->t[j].h->host, h[i].host) == 0)
				break;
		if (j < q->nt)
			continue;
		if (strcmp(h[i].host, r->host) == 0 &&
		    is_ancestor(anc, na, &h[i].cmd)) {
			if (out_add(q, h[i].cmd.pid, EDEADLK, h[i].slot,
			    h[i].host) == -1)
				break;
			continue;
		}
		q->t[q->nt++].h = &h[i];
	}
	free(anc);
	return i < n ? -1 : 0;
}

/* "ID SIG GRACE_MS HOST WPID ...", malloc'd. */
static char *
request_text(const struct kreq *q, const char *id, int sig, double grace)
{
	size_t i, len = 64 + q->nt * (STATE_HOST_LEN + 16);
	char *s;
	int k;

	if ((s = malloc(len)) == NULL)
		return NULL;
	k = snprintf(s, len, "%s %d %lld", id, sig,
	    (long long)(grace * 1000));
	for (i = 0; i < q->nt && k > 0; i++)
		k += snprintf(s + k, len - (size_t)k, " %s %d", q->t[i].h->host,
		    (int)q->t[i].h->wrapper.pid);
	return s;
}

/*
 * A command, sent again on a new connection when ours was lost (a CLIENT
 * KILL, a server restarting): for one that does the same twice. 0 or -1.
 */
static int
command_again(struct rstore *r, int argc, const char **argv)
{
	int tries;

	for (tries = 0; tries < 3; tries++) {
		if (r->c == NULL && (r->c = rs_reconnect(r)) == NULL)
			return -1;
		if (rs_command(&r->c, &r->io, argc, argv) == 0)
			return 0;
		if (r->c != NULL)	/* an error reply: not the link */
			return -1;
	}
	return -1;
}

/*
 * Store the request for late listeners (then it is sent: a listener that
 * subscribes reads it), then publish it. 0, 1 (stored, not published:
 * only listeners that subscribe again see it) or -1 (nothing sent).
 */
static int
publish(struct rstore *r, const char *chan, const char *req, double grace)
{
	const char *av[5];
	char px[32];

	(void)snprintf(px, sizeof(px), "%lld",
	    (long long)((grace + GATE_KILL_SLACK) * 1000));
	av[0] = "SET";
	av[1] = chan;
	av[2] = req;
	av[3] = "PX";
	av[4] = px;
	if (command_again(r, 5, av) == -1)
		return -1;
	av[0] = "PUBLISH";
	return command_again(r, 3, av) == -1 ? 1 : 0;
}

/* One answer "HOST WPID ERRNO [PID ERRNO ...]" into q; junk is ignored. */
static int
take_answer(struct kreq *q, char *text)
{
	char *host, *w, *e, *p, *save;
	struct target *t = NULL;
	size_t i;

	if ((host = strtok_r(text, " ", &save)) == NULL ||
	    (w = strtok_r(NULL, " ", &save)) == NULL ||
	    (e = strtok_r(NULL, " ", &save)) == NULL)
		return 0;
	for (i = 0; i < q->nt && t == NULL; i++)
		if (!q->t[i].answered && strcmp(q->t[i].h->host, host) == 0 &&
		    q->t[i].h->wrapper.pid == atoi(w))
			t = &q->t[i];
	if (t == NULL)
		return 0;
	t->answered = 1;
	if (atoi(e) != 0)
		return out_add(q, t->h->cmd.pid, atoi(e), t->h->slot, host);
	while ((p = strtok_r(NULL, " ", &save)) != NULL &&
	    (e = strtok_r(NULL, " ", &save)) != NULL)
		if (out_add(q, atoi(p), atoi(e), t->h->slot, host) == -1)
			return -1;
	return 0;
}

/* BLPOP one answer for at most left ns: 1, 0 (none came), -1. */
static int
next_answer(struct rstore *r, const char *list, int64_t left, struct kreq *q)
{
	struct timeval tv = { (time_t)(left / 1000000000 + 2), 0 };
	struct timeval back = { COMMAND_MS / 1000, 0 };
	const char *av[3];
	char secs[32];
	redisReply *rp;
	int k = 0;

	(void)snprintf(secs, sizeof(secs), "%.3f", (double)left / 1e9);
	av[0] = "BLPOP";
	av[1] = list;
	av[2] = secs;
	if (r->c == NULL && (r->c = rs_reconnect(r)) == NULL)
		return -1;
	(void)redisSetTimeout(r->c, tv);
	if (redisAppendCommandArgv(r->c, 3, av, NULL) != REDIS_OK ||
	    (rp = rs_reply(&r->c, &r->io)) == NULL)
		return -1;
	(void)redisSetTimeout(r->c, back);
	if (rp->type == REDIS_REPLY_ARRAY && rp->elements == 2 &&
	    rp->element[1]->type == REDIS_REPLY_STRING) {
		k = take_answer(q, rp->element[1]->str) == -1 ? -1 : 1;
	}
	freeReplyObject(rp);
	return k;
}

/*
 * Collect the answers to a request sent, until all came or end (mono
 * ns). A lost connection is made again and BLPOP sent again: the answers
 * wait in their list (ANSWER_TTL). 0, or -1 (out of memory).
 */
static int
collect(struct rstore *r, const char *list, int64_t end, struct kreq *q)
{
	struct timespec pause = { 0, 100000000 };
	int64_t left;
	size_t done = 0;
	int k;

	while (done < q->nt && (left = end - mono_ns()) > 0) {
		if ((k = next_answer(r, list, left, q)) == 1)
			done++;
		else if (k == -1 && errno == ENOMEM)
			return -1;
		else if (k == -1 && r->c != NULL)
			break;		/* an error reply: no answers to read */
		else if (k == -1)
			(void)nanosleep(&pause, NULL);	/* lost: again */
	}
	return 0;
}

/*
 * See store.h: ask, wait for the answers, list who did not answer. Once
 * the request is sent, a lost connection only costs answers not read in
 * time (ETIMEDOUT): -1 means nothing was sent.
 */
int
rs_kill_remote(struct store *s, const struct store_holder *h, size_t n,
    int sig, double grace, struct gate_kill **outp, size_t *np)
{
	struct rstore *r = (struct rstore *)s;
	struct kreq q;
	char id[40], chan[KEY_MAX + 8], list[sizeof(PREFIX) + 48];
	const char *del[2];
	char *req = NULL;
	size_t i;
	int e;

	memset(&q, 0, sizeof(q));
	(void)snprintf(id, sizeof(id), "%08x%08x", arc4random(), arc4random());
	(void)snprintf(list, sizeof(list), PREFIX "killed:%s", id);
	chan_name(chan, sizeof(chan), r->name);
	if (targets(r, h, n, &q) == -1)
		goto fail;
	if (q.nt > 0 && ((req = request_text(&q, id, sig, grace)) == NULL ||
	    publish(r, chan, req, grace) == -1))
		goto fail;
	if (collect(r, list, mono_ns() + (int64_t)((grace + GATE_KILL_SLACK) *
	    1e9), &q) == -1)
		goto fail;
	for (i = 0; i < q.nt; i++)
		if (!q.t[i].answered && out_add(&q, q.t[i].h->cmd.pid ?
		    q.t[i].h->cmd.pid : q.t[i].h->wrapper.pid, ETIMEDOUT,
		    q.t[i].h->slot, q.t[i].h->host) == -1)
			goto fail;
	del[0] = "DEL";
	del[1] = list;
	if (r->c != NULL)
		(void)rs_command(&r->c, &r->io, 2, del);
	if (q.out == NULL && (q.out = calloc(1, sizeof(*q.out))) == NULL)
		goto fail;
	free(req);
	free(q.t);
	*outp = q.out;
	*np = q.nout;
	return 0;
fail:
	e = errno;
	free(req);
	free(q.t);
	free(q.out);
	errno = e;
	return -1;
}

/*
 * A holder's listener: subscribe, make the subscription never block,
 * then read the request stored (one published before we subscribed);
 * the server waited for until deadline at most (the watchdog has a lease
 * to watch meanwhile).
 */
int
rs_kill_listen(struct store *s, int64_t deadline, void **lp)
{
	struct rstore *r = (struct rstore *)s;
	const char *av[2];
	struct rkill *k;
	redisReply *rp;
	int e;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return -1;
	(void)strlcpy(k->host, r->host, sizeof(k->host));
	k->wpid = r->self.pid;
	k->loc = r->loc;
	chan_name(k->chan, sizeof(k->chan), r->name);
	av[0] = "SUBSCRIBE";
	av[1] = k->chan;
	if ((k->sub = rs_connect_until(&r->loc, deadline)) == NULL ||
	    rs_command(&k->sub, NULL, 2, av) == -1 ||
	    fcntl(k->sub->fd, F_SETFL, O_NONBLOCK) == -1 ||
	    (k->c = rs_connect_until(&r->loc, deadline)) == NULL)
		goto fail;
	k->sub->flags &= ~REDIS_BLOCK;	/* hiredis: EAGAIN is no error */
	av[0] = "GET";
	/* A key of another type holds no request: kill-all overwrites it. */
	if (redisAppendCommandArgv(k->c, 2, av, NULL) != REDIS_OK ||
	    ((rp = rs_reply(&k->c, NULL)) == NULL && errno != EPROTOTYPE))
		goto fail;
	if (rp != NULL && rp->type == REDIS_REPLY_STRING)
		k->pending = strdup(rp->str);
	if (rp != NULL)
		freeReplyObject(rp);
	*lp = k;
	return k->sub->fd;
fail:
	e = errno;
	rs_kill_close(k);
	errno = e;
	return -1;
}

/* 1 if the request text names us and is new, with rq filled. */
static int
names_us(struct rkill *k, char *text, struct store_killreq *rq)
{
	char *id, *sig, *ms, *h, *w, *save;
	const char *errstr;

	if ((id = strtok_r(text, " ", &save)) == NULL ||
	    (sig = strtok_r(NULL, " ", &save)) == NULL ||
	    (ms = strtok_r(NULL, " ", &save)) == NULL ||
	    strlen(id) >= sizeof(rq->id) || strcmp(id, k->last) == 0)
		return 0;
	rq->sig = (int)strtonum(sig, 1, NSIG - 1, &errstr);
	if (errstr != NULL)
		return 0;
	rq->grace = (double)strtonum(ms, 0, 86400000, &errstr) / 1000;
	if (errstr != NULL)
		return 0;
	while ((h = strtok_r(NULL, " ", &save)) != NULL &&
	    (w = strtok_r(NULL, " ", &save)) != NULL)
		if (strcmp(h, k->host) == 0 && atoi(w) == (int)k->wpid) {
			(void)strlcpy(rq->id, id, sizeof(rq->id));
			(void)strlcpy(k->last, id, sizeof(k->last));
			return 1;
		}
	return 0;
}

/* A request for us, read without blocking: 1, 0 (none), -1 (lost). */
int
rs_kill_take(void *p, struct store_killreq *rq)
{
	struct rkill *k = p;
	redisReply *rp;
	char *text;
	int m, read = 0;

	if ((text = k->pending) != NULL) {
		k->pending = NULL;
		m = names_us(k, text, rq);
		free(text);
		if (m)
			return 1;
	}
	for (;;) {
		rp = NULL;
		if (redisGetReplyFromReader(k->sub, (void **)&rp) != REDIS_OK)
			return -1;
		if (rp == NULL) {
			if (read++)
				return 0;
			if (redisBufferRead(k->sub) != REDIS_OK)
				return -1;
			continue;
		}
		m = rp->type == REDIS_REPLY_ARRAY && rp->elements == 3 &&
		    rp->element[2]->type == REDIS_REPLY_STRING &&
		    names_us(k, rp->element[2]->str, rq);
		freeReplyObject(rp);
		if (m)
			return 1;
	}
}

/*
 * A command on the listener's connection, made again (for ANSWER_MS at
 * most) when it was lost: a killed connection must not lose an answer
 * whose commands were killed. 0 or -1.
 */
static int
answer_command(struct rkill *k, int argc, const char **argv)
{
	int tries;

	for (tries = 0; tries < 2; tries++) {
		if (k->c == NULL && (k->c = rs_connect_until(&k->loc,
		    mono_ns() + ANSWER_MS * MS)) == NULL)
			return -1;
		if (rs_command(&k->c, NULL, argc, argv) == 0)
			return 0;
		if (k->c != NULL)	/* an error reply: not the link */
			return -1;
	}
	return -1;
}

/* Push "HOST WPID ERRNO [PID ERRNO ...]" to the request's list. */
int
rs_kill_answer(void *p, const struct store_killreq *rq, int err,
    const struct gate_kill *out, size_t n)
{
	struct rkill *k = p;
	const char *av[3];
	char list[sizeof(PREFIX) + 48], *s;
	size_t i, len = 64 + STATE_HOST_LEN + n * 24;
	int w, r;

	if ((s = malloc(len)) == NULL)
		return -1;
	w = snprintf(s, len, "%s %d %d", k->host, (int)k->wpid, err);
	for (i = 0; i < n; i++)
		if (out[i].error != ESRCH)	/* gone: nothing done */
			w += snprintf(s + w, len - (size_t)w, " %d %d",
			    (int)out[i].pid, out[i].error);
	(void)snprintf(list, sizeof(list), PREFIX "killed:%s", rq->id);
	av[0] = "RPUSH";
	av[1] = list;
	av[2] = s;
	r = answer_command(k, 3, av);
	free(s);
	av[0] = "PEXPIRE";
	av[2] = ANSWER_TTL;
	if (r == 0)
		r = answer_command(k, 3, av);
	return r;
}

/* Both connections closed, the listener freed. */
void
rs_kill_close(void *p)
{
	struct rkill *k = p;

	if (k == NULL)
		return;
	redisFree(k->sub);
	redisFree(k->c);
	free(k->pending);
	explicit_bzero(&k->loc, sizeof(k->loc));
	free(k);
}
