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
 *	request	ID SIG GRACE_MS HOST WPID [HOST WPID ...] [* 0 [HOST -PID ...]]
 *	answer	HOST WPID ERRNO [PID ERRNO ...]
 *	or	* SLOT NSLOTS HOST WPID ERRNO [PID ERRNO ...]
 *
 * A request names the holders it is for by host id and wrapper PID: a
 * command started later is not touched. During a hold after a loss
 * (store_redis_hold.c) the key lacks holders that still run (N-4 of
 * brk-redis8): the request then also asks every listener of the gate
 * ("* 0") but the kill-all's own ancestors ("HOST -PID"), and those it
 * did not name answer with their slot and how many they hold (the second
 * form), so that kill-all can tell whether all those missing answered.
 * A watchdog of an older version reads "* 0" and "HOST -PID" as holders
 * named (no wrapper has PID 0 or below): it serves only a request naming
 * it, and a holder of its the key lacks is reported not reached. Such a
 * request read from the stored copy is served only by a listener made
 * again (after a lost connection): a first one is a holder that started
 * after it. A listener subscribes first and
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

/* A holder's listener. again: not the watchdog's first (see above). */
struct rkill {
	redisContext	*sub;		/* subscribed to the channel */
	redisContext	*c;		/* to read the request, answer */
	char		host[STATE_HOST_LEN + 1];
	pid_t		wpid;
	char		chan[KEY_MAX + 8];
	char		*pending;	/* the request stored at listen */
	char		last[40];	/* the last one served */
	struct redis_loc loc;		/* to connect c again */
	int		again;
};

/* A holder asked: who it is, and whether it answered. */
struct target {
	const struct store_holder *h;
	int		answered;
};

/*
 * One kill-all: its targets, the caller's ancestors (spared), the holder
 * slots the key lacks (-1: unknown; see rs_hold_missing), the holders
 * that answered the request to all (w) and the slots they hold, and what
 * they did.
 */
struct kreq {
	struct target	*t;
	size_t		nt;
	struct procid	*anc;
	size_t		na;
	long		missing;
	struct store_holder *w;
	size_t		nw;
	unsigned long	wslots;
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
	size_t i, j;

	if ((q->t = calloc(n + 1, sizeof(*q->t))) == NULL ||
	    proc_ancestors(&q->anc, &q->na) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		for (j = 0; j < q->nt; j++)
			if (q->t[j].h->wrapper.pid == h[i].wrapper.pid &&
			    strcmp(q->t[j].h->host, h[i].host) == 0)
				break;
		if (j < q->nt)
			continue;
		if (strcmp(h[i].host, r->host) == 0 &&
		    is_ancestor(q->anc, q->na, &h[i].cmd)) {
			if (out_add(q, h[i].cmd.pid, EDEADLK, h[i].slot,
			    h[i].host) == -1)
				break;
			continue;
		}
		q->t[q->nt++].h = &h[i];
	}
	return i < n ? -1 : 0;
}

/* "ID SIG GRACE_MS HOST WPID ... [* 0 [HOST -PID ...]]", malloc'd. */
static char *
request_text(const struct rstore *r, const struct kreq *q, const char *id,
    int sig, double grace)
{
	size_t i, len = 64 + (q->nt + q->na) * (STATE_HOST_LEN + 16);
	char *s;
	int k;

	if ((s = malloc(len)) == NULL)
		return NULL;
	k = snprintf(s, len, "%s %d %lld", id, sig,
	    (long long)(grace * 1000));
	for (i = 0; i < q->nt && k > 0; i++)
		k += snprintf(s + k, len - (size_t)k, " %s %d", q->t[i].h->host,
		    (int)q->t[i].h->wrapper.pid);
	if (q->missing != 0 && k > 0)
		k += snprintf(s + k, len - (size_t)k, " * 0");
	for (i = 0; q->missing != 0 && i < q->na && k > 0; i++)
		k += snprintf(s + k, len - (size_t)k, " %s -%d", r->host,
		    (int)q->anc[i].pid);
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

/*
 * A holder the request did not name answered the request to all: noted
 * once (a listener made again may serve it twice). 1 if new, 0, -1.
 */
static int
wild_add(struct kreq *q, const char *host, pid_t wpid, unsigned nslots)
{
	struct store_holder *p;
	size_t i;

	for (i = 0; i < q->nw; i++)
		if (q->w[i].wrapper.pid == wpid &&
		    strcmp(q->w[i].host, host) == 0)
			return 0;
	if ((p = reallocarray(q->w, q->nw + 1, sizeof(*p))) == NULL)
		return -1;
	q->w = p;
	memset(&p[q->nw], 0, sizeof(*p));
	p[q->nw].wrapper.pid = wpid;
	(void)strlcpy(p[q->nw].host, host, sizeof(p[q->nw].host));
	q->nw++;
	q->wslots += nslots > 0 && nslots <= STATE_MAX_SLOTS ? nslots : 1;
	return 1;
}

/*
 * One answer "[* SLOT NSLOTS] HOST WPID ERRNO [PID ERRNO ...]" into q;
 * junk is ignored.
 */
static int
take_answer(struct kreq *q, char *text)
{
	char *host, *w, *e, *p, *save;
	struct target *t = NULL;
	int wild, slot = -1, k = 0;
	pid_t cmd;
	size_t i;

	p = strtok_r(text, " ", &save);
	if ((wild = p != NULL && strcmp(p, "*") == 0) &&
	    (p = strtok_r(NULL, " ", &save)) != NULL) {
		slot = atoi(p);
		p = strtok_r(NULL, " ", &save);
	}
	if (p == NULL || (host = wild ? strtok_r(NULL, " ", &save) : p) ==
	    NULL || (w = strtok_r(NULL, " ", &save)) == NULL ||
	    (e = strtok_r(NULL, " ", &save)) == NULL)
		return 0;
	for (i = 0; i < q->nt && t == NULL; i++)
		if (!q->t[i].answered && strcmp(q->t[i].h->host, host) == 0 &&
		    q->t[i].h->wrapper.pid == atoi(w))
			t = &q->t[i];
	if (t != NULL) {
		t->answered = 1;
		slot = t->h->slot;
		cmd = t->h->cmd.pid;
	} else if (!wild || (k = wild_add(q, host, atoi(w), (unsigned)
	    atoi(p))) <= 0)
		return wild ? k : 0;
	else
		cmd = atoi(w);	/* its command's PID is not known here */
	if (atoi(e) != 0)
		return out_add(q, cmd, atoi(e), slot, host);
	while ((p = strtok_r(NULL, " ", &save)) != NULL &&
	    (e = strtok_r(NULL, " ", &save)) != NULL)
		if (out_add(q, atoi(p), atoi(e), slot, host) == -1)
			return -1;
	return 0;
}

/* 1 while answers are awaited: of a holder named, or of those missing. */
static int
awaited(const struct kreq *q)
{
	size_t i;

	for (i = 0; i < q->nt; i++)
		if (!q->t[i].answered)
			return 1;
	return q->missing < 0 || q->wslots < (unsigned long)q->missing;
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
 * Collect the answers to a request sent, until all came (awaited; when
 * how many holders the key lacks is not known, all that come) or end
 * (mono ns). A lost connection is made again and BLPOP sent again: the
 * answers wait in their list (ANSWER_TTL). 0, or -1 (out of memory).
 */
static int
collect(struct rstore *r, const char *list, int64_t end, struct kreq *q)
{
	struct timespec pause = { 0, 100000000 };
	int64_t left;
	int k;

	while (awaited(q) && (left = end - mono_ns()) > 0) {
		if ((k = next_answer(r, list, left, q)) == 1)
			continue;
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
 * time (ETIMEDOUT): -1 means nothing was sent. During a hold that lacks
 * holders, one entry more (EHOSTUNREACH: see struct gate_kill) says how
 * many and how many of them answered.
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
	q.missing = rs_hold_missing(r);
	(void)snprintf(id, sizeof(id), "%08x%08x", arc4random(), arc4random());
	(void)snprintf(list, sizeof(list), PREFIX "killed:%s", id);
	chan_name(chan, sizeof(chan), r->name);
	if (targets(r, h, n, &q) == -1)
		goto fail;
	if ((q.nt > 0 || q.missing != 0) &&
	    ((req = request_text(r, &q, id, sig, grace)) == NULL ||
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
	if (q.missing != 0 && out_add(&q, (pid_t)q.wslots, EHOSTUNREACH,
	    (int)q.missing, "") == -1)
		goto fail;
	del[0] = "DEL";
	del[1] = list;
	if (r->c != NULL)
		(void)rs_command(&r->c, &r->io, 2, del);
	if (q.out == NULL && (q.out = calloc(1, sizeof(*q.out))) == NULL)
		goto fail;
	free(req);
	free(q.t);
	free(q.anc);
	free(q.w);
	*outp = q.out;
	*np = q.nout;
	return 0;
fail:
	e = errno;
	free(req);
	free(q.t);
	free(q.anc);
	free(q.w);
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
	k->again = r->klistens++ > 0;
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

/*
 * 1 if the request text is new and names us, or asks all but us (and is
 * not the stored copy, for a first listener: see above), with rq filled.
 */
static int
names_us(struct rkill *k, char *text, int stored, struct store_killreq *rq)
{
	char *id, *sig, *ms, *h, *w, *save;
	int named = 0, all = 0, spared = 0;
	const char *errstr;
	long pid;

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
	    (w = strtok_r(NULL, " ", &save)) != NULL) {
		pid = strtol(w, NULL, 10);
		if (pid == 0 && strcmp(h, "*") == 0)
			all = 1;
		else if (strcmp(h, k->host) == 0 && pid == (long)k->wpid)
			named = 1;
		else if (strcmp(h, k->host) == 0 && pid == -(long)k->wpid)
			spared = 1;
	}
	if (!named && (!all || spared || (stored && !k->again)))
		return 0;
	rq->wild = !named;
	(void)strlcpy(rq->id, id, sizeof(rq->id));
	(void)strlcpy(k->last, id, sizeof(k->last));
	return 1;
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
		m = names_us(k, text, 1, rq);
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
		    names_us(k, rp->element[2]->str, 0, rq);
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

/* Push "[* SLOT NSLOTS] HOST WPID ERRNO [PID ERRNO ...]" to the request's
   list (the first part if the request did not name us). */
int
rs_kill_answer(void *p, const struct store_killreq *rq, int err,
    const struct gate_kill *out, size_t n)
{
	struct rkill *k = p;
	const char *av[3];
	char list[sizeof(PREFIX) + 48], *s;
	size_t i, len = 96 + STATE_HOST_LEN + n * 24;
	int w = 0, r;

	if ((s = malloc(len)) == NULL)
		return -1;
	if (rq->wild)
		w = snprintf(s, len, "* %d %u ", rq->slot, rq->nslots);
	w += snprintf(s + w, len - (size_t)w, "%s %d %d", k->host,
	    (int)k->wpid, err);
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
