/*
 * The Redis store's transactions (see store_redis.c): the value's lease
 * lines, begin (WATCH, GET, epoch, TIME), commit (MULTI ... EXEC, a nil
 * EXEC is EAGAIN), liveness by lease, and a server that lost its data
 * (a new epoch, or the gate's key gone while in use), dropped our
 * records though renewed in time, or whose clock jumped ahead of ours (a
 * stall, a step): see rs_loss_seen.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_redis.h"
#include "sys.h"

/*
 * Renew our records when the commit writes anyway or their lease is a
 * quarter gone (gate_renew comes every third: always due then), on the
 * server's clock or on ours: after the server's clock was stepped back a
 * record looks fresh there, but the watchdog counts on ours (r->until),
 * and stopped commands that kept their slots (H-C of brk-redis6). 1 if
 * some were renewed.
 */
static int
renew_ours(struct rstore *r, struct store_txn *t)
{
	struct state *st = &t->st;
	int64_t end = r->now_ms + r->ttl_ms;
	struct entry *e;
	size_t i, n = st->nh + st->nw;
	int any = 0;

	for (i = 0; i < n; i++) {
		e = i < st->nh ? &st->h[i] : &st->w[i - st->nh];
		if (!rs_ours(r, e))
			continue;
		if (e->lease_ms - r->ttl_ms / 4 * 3 <= r->now_ms ||
		    r->until - r->t0 <= r->ttl_ms / 4 * 3 * MS)
			t->dirty = 1;
		any = 1;
	}
	if (!t->dirty || !any)
		return 0;
	for (i = 0; i < n; i++) {
		e = i < st->nh ? &st->h[i] : &st->w[i - st->nh];
		if (rs_ours(r, e)) {
			(void)strlcpy(e->host, r->host, sizeof(e->host));
			e->lease_ms = end;
			e->lease_ttl = r->ttl_ms;
		}
	}
	return 1;
}

/* Free a saved copy of records. */
static void
saved_free(struct entry **vp, size_t *np)
{
	size_t i;

	for (i = 0; i < *np; i++)
		free((*vp)[i].strs);
	free(*vp);
	*vp = NULL;
	*np = 0;
}

/* 1 if ticket t is in v[0..n). */
static int
has_ticket(const uint64_t *v, size_t n, uint64_t t)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == t)
			return 1;
	return 0;
}

/* 1 if a saved copy holds a record of ticket t. */
static int
saved_has(const struct entry *v, size_t n, uint64_t t)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].ticket == t)
			return 1;
	return 0;
}

/*
 * 1 if e is a record of this handle: ours (this process's), and either
 * saved at our last commit or not in what our transaction read (made by
 * it). Another handle of this process on the same gate (gaterun-httpd,
 * several slots per process) has records of our PID too: not these.
 */
int
rs_mine(const struct rstore *r, const struct entry *e)
{
	return rs_ours(r, e) && (saved_has(r->mine, r->nmine, e->ticket) ||
	    saved_has(r->minew, r->nminew, e->ticket) ||
	    !has_ticket(r->rtix, r->nrtix, e->ticket));
}

/* A copy of this handle's records among e[0..n) into *vp (its strings
 * its own); *vp is not freed until the copy is made. */
static void
saved_copy(const struct rstore *r, const struct entry *e, size_t n,
    struct entry **vp, size_t *np)
{
	struct entry *v;
	size_t i, k = 0;

	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (!rs_mine(r, &e[i]))
			continue;
		v[k] = e[i];
		v[k].strs_shared = 0;
		v[k].strs = NULL;
		if (e[i].strs != NULL &&
		    (v[k].strs = malloc(e[i].strslen + 1)) != NULL) {
			memcpy(v[k].strs, e[i].strs, e[i].strslen);
			v[k].strs[e[i].strslen] = '\0';
		} else
			v[k].strslen = 0;
		k++;
	}
	*vp = v;
	*np = k;
}

/* Keep a copy of this handle's holder and waiter records, to make again
 * on a server that lost them (see remake). */
static void
mine_save(struct rstore *r, const struct state *st)
{
	struct entry *h = NULL, *w = NULL;
	size_t nh = 0, nw = 0;

	saved_copy(r, st->h, st->nh, &h, &nh);
	saved_copy(r, st->w, st->nw, &w, &nw);
	saved_free(&r->mine, &r->nmine);
	saved_free(&r->minew, &r->nminew);
	r->mine = h;
	r->nmine = nh;
	r->minew = w;
	r->nminew = nw;
}

/* Note the tickets of this process's records in what was read. */
static void
read_tickets(struct rstore *r, const struct state *st)
{
	size_t i, n = st->nh + st->nw;
	const struct entry *e;
	uint64_t *v;

	r->nrtix = 0;
	if ((v = reallocarray(r->rtix, n + 1, sizeof(*v))) == NULL)
		return;
	r->rtix = v;
	for (i = 0; i < n; i++) {
		e = i < st->nh ? &st->h[i] : &st->w[i - st->nh];
		if (rs_ours(r, e))
			v[r->nrtix++] = e->ticket;
	}
}

/* Both copies freed, and the holder records seen (the store closed). */
void
rs_mine_free(struct rstore *r)
{
	saved_free(&r->mine, &r->nmine);
	saved_free(&r->minew, &r->nminew);
	free(r->rtix);
	r->rtix = NULL;
	r->nrtix = 0;
	free(r->seenh);
	r->seenh = NULL;
	r->nseenh = 0;
}

/*
 * Slot want if free in used, else the first free one past it (wrapping
 * round to 0); marked used. -1 if all STATE_MAX_SLOTS are.
 */
static int
slot_take(unsigned char *used, int want)
{
	int i, s;

	for (i = 0; i < STATE_MAX_SLOTS; i++) {
		s = (want + i) % STATE_MAX_SLOTS;
		if (!(used[s / 8] & (1 << (s % 8)))) {
			used[s / 8] |= 1 << (s % 8);
			return s;
		}
	}
	return -1;
}

/* How many of our records v[0..n) name the same request as e. */
static size_t
same_request(const struct entry *v, size_t n, const struct entry *e)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (v[i].ticket == e->ticket &&
		    v[i].wrapper.pid == e->wrapper.pid &&
		    v[i].wrapper.start == e->wrapper.start)
			k++;
	return k;
}

/* 1 if the request of e has a record in st, holding or waiting. */
static int
present(const struct state *st, const struct entry *e)
{
	return same_request(st->h, st->nh, e) +
	    same_request(st->w, st->nw, e) > 0;
}

/* 1 if a waiter of st has ticket t. */
static int
ticket_waits(const struct state *st, uint64_t t)
{
	size_t i;

	for (i = 0; i < st->nw; i++)
		if (st->w[i].ticket == t)
			return 1;
	return 0;
}

/*
 * Our waiter records missing from st put back in line by their tickets
 * (before the first waiter of a later ticket and no higher priority), so
 * that a waiter keeps its place through a loss. Not one whose ticket
 * another waiter has now (a server restarted from a copy older than our
 * ticket gave it out again: two waiters of one ticket are no line, N-2 of
 * brk-redis8): that waiter finds its place lost and queues again.
 */
static int
remake_waiters(struct rstore *r, struct store_txn *t)
{
	struct state *st = &t->st;
	struct entry e;
	size_t k, pos;

	for (k = 0; k < r->nminew; k++) {
		e = r->minew[k];
		if (present(st, &e) || ticket_waits(st, e.ticket))
			continue;
		for (pos = 0; pos < st->nw; pos++)
			if (st->w[pos].ticket > e.ticket &&
			    st->w[pos].prio <= e.prio)
				break;
		if (e.ticket >= st->next_ticket)
			st->next_ticket = e.ticket + 1;
		if (e.strs != NULL && (e.strs = strdup(e.strs)) == NULL)
			return -1;
		if (state_add(&st->w, &st->nw, &e) == -1) {
			free(e.strs);
			return -1;
		}
		memmove(&st->w[pos + 1], &st->w[pos], (st->nw - 1 - pos) *
		    sizeof(*st->w));
		st->w[pos] = e;
		r->remadew++;
		t->dirty = 1;
	}
	return 0;
}

/*
 * The server lost the gate (it restarted without persistence, or failed
 * over to a replica that had not seen it, or its key was deleted), or
 * dropped our records though we renewed them in time (it stalled, or its
 * clock was stepped; see rs_loss_seen): make our holder records again
 * in what it holds now, at their slot if free, else at a free one past
 * it (its slot may have been given away meanwhile), and the limit last
 * seen if the gate is gone or was made again with a default limit (the
 * limit PREFIX "ends" kept of the last value first: ours may be older),
 * and, if the gate is gone, the parent PREFIX "ends" kept. A
 * request of weight k has k records: as many are made as are missing.
 * Commands that run are counted again, even over the limit (then nobody
 * is let in until enough have ended): what ran before the loss was seen
 * may have let others in meanwhile, and that is said. Our waiters get
 * their places back (remake_waiters).
 */
static int
remake(struct rstore *r, struct store_txn *t)
{
	struct state *st = &t->st;
	unsigned char used[STATE_MAX_SLOTS / 8];
	struct entry e;
	size_t i, k, nh0 = st->nh;
	int s;

	if (r->fresh && r->ends.limit >= 0) {
		st->limit = (unsigned)r->ends.limit;	/* the last written */
		r->restored = 1;
	} else if ((r->fresh || r->deflt) && r->last_limit != 0) {
		st->limit = r->last_limit;	/* lost with the rest */
		r->restored = 1;
	}
	if (r->fresh && r->ends.parent[0] != '\0')	/* N-5 of brk-redis8 */
		(void)strlcpy(st->parent, r->ends.parent, sizeof(st->parent));
	memset(used, 0, sizeof(used));
	for (i = 0; i < st->nh; i++)
		used[st->h[i].slot / 8] |= 1 << (st->h[i].slot % 8);
	for (k = 0; k < r->nmine; k++) {
		e = r->mine[k];
		/* The first ones of its request that are there still. */
		if (same_request(r->mine, k, &e) <
		    same_request(st->h, nh0, &e))
			continue;
		if ((s = slot_take(used, e.slot)) == -1)
			break;
		e.slot = s;
		if (e.ticket >= st->next_ticket)
			st->next_ticket = e.ticket + 1;
		if (e.strs != NULL && (e.strs = strdup(e.strs)) == NULL)
			return -1;
		if (state_add(&st->h, &st->nh, &e) == -1) {
			free(e.strs);
			return -1;
		}
		r->remade++;
		t->dirty = 1;
	}
	return remake_waiters(r, t);
}

/* 1 if a record of ours at the last commit is not in st. */
int
rs_missing_ours(const struct rstore *r, const struct state *st)
{
	size_t k;

	for (k = 0; k < r->nmine; k++)
		if (!present(st, &r->mine[k]))
			return 1;
	for (k = 0; k < r->nminew; k++)
		if (!present(st, &r->minew[k]))
			return 1;
	return 0;
}

/* The server's TIME reply in ms; -1 if it is not one. */
static int64_t
time_ms(const redisReply *rp)
{
	if (rp->type != REDIS_REPLY_ARRAY || rp->elements != 2 ||
	    rp->element[0]->type != REDIS_REPLY_STRING ||
	    rp->element[1]->type != REDIS_REPLY_STRING)
		return -1;
	return strtoll(rp->element[0]->str, NULL, 10) * 1000 +
	    strtoll(rp->element[1]->str, NULL, 10) / 1000;
}

/*
 * Read the 4 replies of a fetch (all of them, even after an error reply,
 * so the connection stays in step); 0, 1 (the epoch changed) or -1.
 */
static int
fetch_read(struct rstore *r, struct store_txn *t, int watch)
{
	redisReply *rp[4] = { NULL, NULL, NULL, NULL };
	int i, e = 0, ret = -1, first = watch ? 0 : 1;

	for (i = first; i < 4 && r->c != NULL; i++)
		if ((rp[i] = rs_reply(&r->c, &r->io)) == NULL && e == 0)
			e = errno;
	if (e != 0 || r->c == NULL) {
		errno = e != 0 ? e : ECONNRESET;
		goto out;
	}
	if ((r->now_ms = time_ms(rp[3])) == -1) {
		errno = EPROTO;
		goto out;
	}
	if (r->first_ms == 0)
		r->first_ms = r->now_ms;	/* see suspects */
	if (rp[2]->type == REDIS_REPLY_STRING &&
	    !rs_epoch_valid(rp[2]->str, rp[2]->len)) {
		errno = EILSEQ;		/* not ours: say so, touch nothing */
		goto out;
	}
	if (r->no_epoch && rp[2]->type == REDIS_REPLY_STRING) {
		/* A reader's replica has data now (rs_epoch): not a loss. */
		memcpy(r->epoch, rp[2]->str, rp[2]->len + 1);
		r->no_epoch = 0;
	}
	if (rp[2]->type == REDIS_REPLY_NIL ? !r->no_epoch :
	    strcmp(rp[2]->str, r->epoch) != 0) {
		ret = 1;
		goto out;
	}
	if (rp[1]->type == REDIS_REPLY_NIL) {
		t->exists = r->create;
		t->dirty = r->create;
		(void)strlcpy(t->st.boot, "00000000-0000-0000-0000-000000000000",
		    sizeof(t->st.boot));
		ret = 0;
		r->fresh = 1;
		r->read_limit = r->deflimit;
	} else if (rp[1]->type == REDIS_REPLY_STRING) {
		t->exists = 1;
		r->known = 1;
		if ((ret = rs_value_parse(r, rp[1]->str, rp[1]->len, t)) == 0) {
			/* Only a limit someone set is made again after a loss. */
			r->read_limit = t->st.limit;
			if (!r->deflt)
				r->last_limit = t->st.limit;
		}
	} else
		errno = EPROTO;
out:
	for (i = first; i < 4; i++)
		if (rp[i] != NULL)
			freeReplyObject(rp[i]);
	return ret;
}

/*
 * 1 if this transaction was first asked for before our lease ended (on
 * our clock): its first try (r->asked), or this read. A try whose commit
 * waited out a server stall and failed (EAGAIN) was in time, and so was
 * one sent again after a request left unanswered (see fetch).
 */
int
rs_in_time(const struct rstore *r)
{
	return (r->asked != 0 ? r->asked : r->t0) < r->until;
}

/* WATCH (if watch), GET the key and the epoch, TIME: 0, 1 or -1. */
static int
fetch(struct rstore *r, struct store_txn *t, int watch)
{
	const char *w[] = { "WATCH", r->key }, *g[] = { "GET", r->key };
	const char *ep[] = { "GET", PREFIX "epoch" }, *tm[] = { "TIME" };
	int64_t lag, sent;
	int v;

	memset(t, 0, sizeof(*t));
	t->st.limit = r->deflimit;
	rs_hold_clear(&r->hold);
	rs_ends_clear(&r->ends);
	r->remade = 0;
	r->remadew = 0;
	r->hold_read = 0;
	r->nsusp = 0;
	r->susp_ttl = 0;
	r->restored = 0;
	r->fresh = 0;
	r->deflt = 0;
	if (r->c == NULL && (r->c = rs_reconnect(r)) == NULL)
		return -1;
	rs_bound(r);
	r->t0 = boot_ns();
	if (r->unanswered == 0)
		r->unanswered = r->t0;
	if ((watch && redisAppendCommandArgv(r->c, 2, w, NULL) != REDIS_OK) ||
	    redisAppendCommandArgv(r->c, 2, g, NULL) != REDIS_OK ||
	    redisAppendCommandArgv(r->c, 2, ep, NULL) != REDIS_OK ||
	    redisAppendCommandArgv(r->c, 1, tm, NULL) != REDIS_OK)
		return -1;
	if ((v = fetch_read(r, t, watch)) != 0)
		return v;
	/*
	 * The lag, kept until a transaction sees it (a look may come first),
	 * is counted from the first request left unanswered since the last
	 * read, if any: one given up after COMMAND_MS and sent again would
	 * hide that much of a stall (it was a known bug), and was asked
	 * then (see rs_in_time).
	 */
	sent = r->unanswered > r->prev_t0 && r->unanswered < r->t0 ?
	    r->unanswered : r->t0;
	r->unanswered = 0;
	lag = r->prev_t0 > 0 ? rs_clock_lag(r->prev_t0, r->prev_ms, sent,
	    r->now_ms) : 0;
	if (lag > r->lag_ms)
		r->lag_ms = lag;
	r->prev_t0 = r->t0;
	r->prev_ms = r->now_ms;
	if (watch && r->asked == 0)
		r->asked = sent;
	if (!r->fresh && rs_in_time(r) && rs_missing_ours(r, &t->st))
		r->dropped = 1;
	t->unsynced = r->no_epoch;	/* a reader's replica with no data */
	return 0;
}

/* See store_redis.h: the server's advance less ours, sent to sent. */
int64_t
rs_clock_lag(int64_t t0a, int64_t msa, int64_t t0b, int64_t msb)
{
	return (msb - msa) - (t0b - t0a) / MS;
}

/*
 * See store_redis.h: a lag that may have ended leases nobody could renew,
 * more than half a lease (a record is renewed when a quarter of its lease
 * is gone, or every third: it has at least half left), and a second.
 */
int
rs_clock_jumped(int64_t lag_ms, int64_t ttl)
{
	return lag_ms > (ttl / 2 < 1000 ? 1000 : ttl / 2);
}

/* Throw a WATCH away (a transaction that writes nothing). */
static void
unwatch(struct rstore *r)
{
	const char *av[] = { "UNWATCH" };

	(void)rs_command(&r->c, &r->io, 1, av);
}

/* The epoch changed: say so, adopt the new one, and make ours again. */
static int
epoch_changed(struct rstore *r, int watch)
{
	if (watch && r->c != NULL)
		unwatch(r);
	rs_say(r, "the server lost the gate's state (restarted without "
	    "persistence, or failed over): slots held here are recorded "
	    "again; meanwhile others may have been let in over the limit");
	r->epoch[0] = '\0';
	r->lost = 1;
	r->prev_t0 = 0;		/* another server's clock, maybe */
	r->first_ms = 0;
	return rs_epoch(r);
}

/* Begin, or look (watch 0): connect again once if the link was lost. */
static int
start(struct rstore *r, struct store_txn *t, int watch)
{
	int tries, v = -1;

	for (tries = 0; tries < 4; tries++) {
		r->cur = t;
		if ((v = fetch(r, t, watch)) == 0)
			break;
		state_free(&t->st);
		if (v == -1 && (r->c != NULL || tries > 0 || errno == EINTR ||
		    (errno == ETIME && r->io.deadline >= 0)))
			return -1;	/* refused, unreachable, too late, or
					   a signal says leave */
		if (v == 1 && epoch_changed(r, watch) == -1)
			return -1;
	}
	if (v != 0)
		return -1;
	if (watch && rs_loss_seen(r, t) == -1) {
		state_free(&t->st);
		return -1;
	}
	if (r->lost && watch && t->exists && remake(r, t) == -1) {
		state_free(&t->st);
		return -1;
	}
	if (watch) {
		rs_check_begin(r, t);
		read_tickets(r, &t->st);
		rs_hold_begin(r, t);
	} else if (rs_look_hold(r, t) == -1) {
		state_free(&t->st);
		return -1;
	}
	/* What was read, but during a loss: what was before it, until the
	 * commit that begins the hold is written. */
	if (t->exists && !r->fresh && !r->lost)
		rs_seen_save(r, &t->st);
	return 0;
}

/* WATCH and read: see store.h. */
int
rs_begin(struct store *s, struct store_txn *t)
{
	struct rstore *r = (struct rstore *)s;

	if (start(r, t, 1) == -1) {
		r->asked = 0;	/* ended: the next try is another */
		if (errno != ETIME)
			r->unanswered = 0;	/* not a stall */
		return -1;
	}
	rs_wait_arm(r);		/* the server answers: a waiter listens */
	return 0;
}

/* Read without WATCH, for a look. */
int
rs_snapshot(struct store *s, struct store_txn *t)
{
	struct rstore *r = (struct rstore *)s;

	if (start(r, t, 0) == -1) {
		if (errno != ETIME)
			r->unanswered = 0;	/* not a stall */
		return -1;
	}
	return 0;
}

/* Nothing written: the WATCH dropped. */
void
rs_abort(struct store *s, struct store_txn *t)
{
	struct rstore *r = (struct rstore *)s;

	unwatch(r);
	state_free(&t->st);
	r->cur = NULL;
	r->shown = 0;
	r->asked = 0;
}

/*
 * Queue MULTI, the writes (the value, the gate's name in PREFIX "gates",
 * its longest lease in PREFIX "ends", which outlive a DEL of the key: see
 * rs_hold_begin), the wake-ups, EXEC; the count of replies. When the key
 * was lost, the first waiters PREFIX "ends" names are woken too: their
 * records went with it, and nobody else knows them; each looks, finds its
 * record gone, and records its place again, which it did only at its
 * renewal before, a third of its lease, with the gate idle meanwhile
 * (N-1 of brk-redis8).
 */
static int
commit_send(struct rstore *r, const char *val, size_t len,
    const char *ends, const store_addr *wakes, size_t n)
{
	const char *av[3];
	size_t avl[3];
	char wk[sizeof(PREFIX) + 8 + STATE_ADDR_LEN];
	const char *w;
	size_t i;
	int k = 0;

	k += redisAppendCommand(r->c, "MULTI") == REDIS_OK;
	if (val != NULL) {
		av[0] = "SET";
		av[1] = r->key;
		av[2] = val;
		avl[0] = 3;
		avl[1] = strlen(r->key);
		avl[2] = len;
		k += redisAppendCommandArgv(r->c, 3, av, avl) == REDIS_OK;
		k += redisAppendCommand(r->c, "SADD %s %s", PREFIX "gates",
		    r->name) == REDIS_OK;
		k += redisAppendCommand(r->c, "HSET %s %s %s", PREFIX "ends",
		    r->name, ends) == REDIS_OK;
		k += redisAppendCommand(r->c, "PUBLISH %s %s", PREFIX "changes",
		    r->name) == REDIS_OK;
	}
	for (i = 0; i < n + (r->lost == 1 ? r->ends.nwake : 0); i++) {
		w = i < n ? wakes[i] : r->ends.wake[i - n];
		if (strcmp(w, r->addr) == 0)
			continue;	/* nothing to our own address */
		(void)snprintf(wk, sizeof(wk), PREFIX "wake:%s", w);
		k += redisAppendCommand(r->c, "RPUSH %s 1", wk) == REDIS_OK;
		k += redisAppendCommand(r->c, "EXPIRE %s 3600", wk) == REDIS_OK;
	}
	k += redisAppendCommand(r->c, "EXEC") == REDIS_OK;
	return k;
}

/*
 * Read k replies, the last EXEC's: 0, or -1 (EAGAIN: a nil EXEC). If the
 * value was written (wrote), the HSET of PREFIX "ends" is EXEC's third
 * reply: an error there (another type at the key) is said once, on the
 * first write, not only when a loss needs what it keeps (M-1 of
 * brk-redis8: --check said OK meanwhile).
 */
static int
commit_read(struct rstore *r, int k, int wrote)
{
	redisReply *rp;
	int i, e = 0;

	for (i = 0; i < k && r->c != NULL; i++) {
		if ((rp = rs_reply(&r->c, &r->io)) == NULL) {
			if (e == 0)
				e = errno;
			continue;
		}
		if (i == k - 1 && rp->type == REDIS_REPLY_NIL && e == 0)
			e = EAGAIN;	/* the key changed: run again */
		if (i == k - 1 && wrote && rp->type == REDIS_REPLY_ARRAY &&
		    rp->elements > 2 &&
		    rp->element[2]->type == REDIS_REPLY_ERROR)
			rs_ends_alien(r);
		freeReplyObject(rp);
	}
	if (e == 0 && r->c == NULL)
		e = ECONNRESET;
	errno = e;
	return e == 0 ? 0 : -1;
}

/*
 * The gate was made on a server with no gaterun data: a new one, or one
 * restarted without persistence, which forgot every limit set with
 * --limit (nobody can know it): said once.
 */
static void
say_fresh(struct rstore *r, unsigned limit)
{
	char buf[300];

	if (r->said_fresh)
		return;
	r->said_fresh = 1;
	(void)snprintf(buf, sizeof(buf), "the Redis server has no gaterun "
	    "data (new, or restarted without persistence): the gate starts "
	    "with limit %u", limit);
	rs_say(r, buf);
}

/*
 * Renew our records, then MULTI, SET (if changed), the wake-ups, EXEC.
 * -1 with EAGAIN when another wrote first: nothing was written.
 */
int
rs_commit(struct store *s, struct store_txn *t, const store_addr *wakes,
    size_t n)
{
	struct rstore *r = (struct rstore *)s;
	char *val = NULL, ends[128 + RS_ENDS_WAKE * (STATE_ADDR_LEN + 1) +
	    GATE_NAME_MAX + 1] = "";
	size_t len = 0;
	int k, renewed, ret = -1;

	r->cur = NULL;
	rs_hold_end(r, t);
	renewed = t->exists ? renew_ours(r, t) : 0;
	if (!t->exists || (!t->dirty && n == 0)) {
		unwatch(r);
		/* What was read is ours as it is: a waiter served by another's
		 * release is a holder now, not the waiter it saved (H-0 of
		 * brk-redis7: made again as a waiter after a loss, it stayed
		 * behind when it ended). */
		if (t->exists)
			mine_save(r, &t->st);
		state_free(&t->st);
		r->asked = 0;
		return 0;
	}
	if (t->dirty && rs_value_format(r, &t->st, &val, &len) == -1) {
		unwatch(r);
		goto out;
	}
	if (r->c == NULL) {
		errno = ECONNRESET;
		goto out;
	}
	if (val != NULL)
		rs_ends_format(r, &t->st, ends, sizeof(ends));
	if (r->unanswered == 0)
		r->unanswered = boot_ns();
	k = commit_send(r, val, len, ends, wakes, n);
	if ((ret = commit_read(r, k, val != NULL)) == 0) {
		r->unanswered = 0;
		if (renewed)
			r->until = r->t0 + r->ttl_ms * MS;
		if (t->dirty) {
			mine_save(r, &t->st);
			r->known = 1;
			/* Ours too, as written (H-H of brk-redis7). */
			rs_seen_save(r, &t->st);
		}
		if (r->fresh && r->gates_empty && t->dirty)
			say_fresh(r, t->st.limit);
		r->lost = 0;
	}
out:
	if (ret == -1 && errno != ETIME)
		r->unanswered = 0;	/* answered, or not a stall */
	if (ret == 0 || errno != EAGAIN)
		r->asked = 0;	/* else run again: the same request */
	free(val);
	state_free(&t->st);
	return ret;
}

/*
 * The record an id belongs to, found by where it lies: gate.c asks about
 * &e->wrapper and &e->cmd of the records of the transaction under way.
 * NULL for any other (then it is treated as a local process).
 */
static const struct entry *
entry_of(const struct rstore *r, const struct procid *id)
{
	const struct state *st;
	uintptr_t p = (uintptr_t)id, b;

	if (r->cur == NULL)
		return NULL;
	st = &r->cur->st;
	b = (uintptr_t)st->h;
	if (st->nh > 0 && p >= b && p < b + st->nh * sizeof(*st->h))
		return &st->h[(p - b) / sizeof(*st->h)];
	b = (uintptr_t)st->w;
	if (st->nw > 0 && p >= b && p < b + st->nw * sizeof(*st->w))
		return &st->w[(p - b) / sizeof(*st->w)];
	return NULL;
}

/*
 * Alive while its lease runs (the server's clock at the transaction's
 * start), and, on this host, while its process runs. A record whose
 * wrapper is this process is alive whatever its lease says (the server
 * stalled, or its clock jumped): the commit renews it; a waiter reaped
 * its own record before, and lost its place. While a hold after a loss
 * lasts, leases are not judged (a stall or a step ended them all): a
 * holder whose slot was taken thus would be counted again over the limit.
 */
int
rs_alive(struct store *s, const struct procid *id)
{
	const struct rstore *r = (struct rstore *)s;
	const struct entry *e = entry_of(r, id);

	if (e != NULL && id == &e->wrapper && rs_ours(r, e))
		return 1;
	/* During a hold after a loss no lease ends: their owners renew. */
	if (e != NULL && e->lease_ms != 0 && r->now_ms >= e->lease_ms &&
	    r->hold.ms <= r->now_ms)
		return 0;
	if (e != NULL && e->foreign)
		return 1;
	return proc_alive(id);
}

/*
 * When a record's lease ends, on our clock: no earlier than the server
 * says, as the server's TIME was read after r->t0 (plus 2 ms, so the
 * look that follows finds it ended), nor before a hold ends.
 */
int64_t
rs_lease_end(const struct rstore *r, const struct procid *id)
{
	const struct entry *e = entry_of(r, id);

	int64_t ms;

	if (e == NULL || !e->foreign || e->lease_ms == 0)
		return -1;
	ms = e->lease_ms > r->hold.ms ? e->lease_ms : r->hold.ms;
	return r->t0 + (ms - r->now_ms) * MS + 2 * MS;
}

/* Our renewal period and how long our lease surely runs. */
int
rs_lease(struct store *s, int64_t *period, int64_t *until)
{
	const struct rstore *r = (struct rstore *)s;

	*period = r->ttl_ms * MS / 3;
	*until = r->until;
	return 0;
}
