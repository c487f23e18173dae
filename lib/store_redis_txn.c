/*
 * The Redis store's transactions (see store_redis.c): the value's lease
 * lines, begin (WATCH, GET, epoch, TIME), commit (MULTI ... EXEC, a nil
 * EXEC is EAGAIN), liveness by lease, and a server that lost its data
 * (a new epoch, or the gate's key gone while in use), dropped our
 * records though renewed in time, or whose clock jumped ahead of ours (a
 * stall, a step): see loss_seen.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_redis.h"
#include "sys.h"

#define MAGIC		"gaterun-redis 1\n"
#define MAGIC_LEN	(sizeof(MAGIC) - 1)

/*
 * One lease line as read: a record is named by its ticket and its
 * wrapper (a holder made again after a loss may share its ticket with
 * one given out meanwhile).
 */
struct lease {
	uint64_t	ticket;
	long long	pid;
	unsigned long long start;
	int64_t		ms;
	char		host[STATE_HOST_LEN + 1];
	int64_t		ttl;		/* its length (ms); 0: not written */
};

/* For qsort and bsearch: by ticket, then wrapper PID and start. */
static int
lease_cmp(const void *a, const void *b)
{
	const struct lease *x = a, *y = b;

	if (x->ticket != y->ticket)
		return x->ticket < y->ticket ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Read "l TICKET WPID WSTART MS HOST [TTL]" lines from *p on; *p left at
 * the state's text. TTL, the lease's length, is not written by older
 * versions (which read a line that has it all the same).
 */
static int
leases_parse(const char **p, const char *end, struct lease **v, size_t *n)
{
	struct lease *l;
	const char *nl;
	char line[160];
	int k;

	*v = NULL;
	*n = 0;
	while (*p < end && (*p)[0] == 'l' && (*p)[1] == ' ') {
		if ((nl = memchr(*p, '\n', (size_t)(end - *p))) == NULL ||
		    nl - *p >= (long)sizeof(line))
			goto bad;
		if ((l = reallocarray(*v, *n + 1, sizeof(**v))) == NULL)
			return -1;
		*v = l;
		l += *n;
		memcpy(line, *p, (size_t)(nl - *p));
		line[nl - *p] = '\0';
		l->ttl = 0;
		k = sscanf(line, "l %" SCNu64 " %lld %llu %" SCNd64 " %64s %"
		    SCNd64, &l->ticket, &l->pid, &l->start, &l->ms, l->host,
		    &l->ttl);
		if (k != 5 && k != 6)
			goto bad;
		(*n)++;
		*p = nl + 1;
	}
	if (*n > 1)
		qsort(*v, *n, sizeof(**v), lease_cmp);
	return 0;
bad:
	free(*v);
	*v = NULL;
	errno = EBADMSG;
	return -1;
}

/* 1 if e is this process's own record (made here, or renewed by us). */
static int
ours(const struct rstore *r, const struct entry *e)
{
	return e->wrapper.pid == r->self.pid &&
	    e->wrapper.start == r->self.start &&
	    (e->host[0] == '\0' || strcmp(e->host, r->host) == 0);
}

/*
 * Note how long the longest leases of another's holder and waiter read
 * may run (on our clock), and the highest next ticket: after a loss, a
 * holder records its slot again before its lease ends, and a waiter its
 * place (see hold_begin). Ours we record again now.
 */
static void
leases_seen(struct rstore *r, const struct state *st)
{
	const struct entry *e;
	int64_t end, *to;
	size_t i;

	for (i = 0; i < st->nh + st->nw; i++) {
		e = i < st->nh ? &st->h[i] : &st->w[i - st->nh];
		to = i < st->nh ? &r->seen_end : &r->seen_wait;
		if (e->lease_ms == 0 || ours(r, e))
			continue;
		if (i < st->nh && e->lease_ttl > r->seen_ttl)
			r->seen_ttl = e->lease_ttl;
		end = r->t0 + (e->lease_ms - r->now_ms) * MS;
		if (end > *to)
			*to = end;
	}
	if (st->next_ticket > r->seen_next)
		r->seen_next = st->next_ticket;
}

/* Give each record its lease line's host and end (see H-C, H-D of
   brk-redis6). */
static void
leases_apply(struct rstore *r, struct entry *e, size_t n,
    const struct lease *v, size_t nv)
{
	struct lease key, *l;
	size_t i;

	for (i = 0; i < n; i++) {
		key.ticket = e[i].ticket;
		key.pid = e[i].wrapper.pid;
		key.start = e[i].wrapper.start;
		l = nv ? bsearch(&key, v, nv, sizeof(*v), lease_cmp) : NULL;
		if (l == NULL)
			continue;	/* none: treated as ours, renewed */
		(void)strlcpy(e[i].host, l->host, sizeof(e[i].host));
		e[i].lease_ms = l->ms;
		e[i].lease_ttl = l->ttl;
		/* Written before the server's clock went back: no lease
		 * runs longer than its length from now. */
		if (l->ttl > 0 && l->ms - r->now_ms > l->ttl)
			e[i].lease_ms = r->now_ms + l->ttl;
		e[i].foreign = strcmp(l->host, r->host) != 0;
	}
}

/*
 * Records of other processes that ended though alive at the last renewal
 * the key shows, before this process first read the server (N4 of
 * brk-redis4). A live owner renews every third of its lease, so on an
 * honest clock its record is renewed again long before it ends: one that
 * ended with no renewal of anyone's since is the last of a gate whose
 * host died, or ended with the others at once when the server's clock
 * was stepped forward. A step after our first read shows in our own
 * reads (rs_clock_lag); one before it does not. Local records whose
 * process is gone are dead for sure, and those that ended before a hold
 * began were checked by it. Their count into r->nsusp, their longest
 * lease into r->susp_ttl (see check_begin).
 */
static void
suspects(struct rstore *r, const struct lease *v, size_t n)
{
	struct procid id;
	int64_t last = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].ttl > 0 && v[i].ms - v[i].ttl > last)
			last = v[i].ms - v[i].ttl;
	for (i = 0; i < n; i++) {
		if (v[i].ttl <= 0 || v[i].ms > r->now_ms || v[i].ms <= last ||
		    v[i].ms <= r->hold.ms || v[i].ms > r->first_ms)
			continue;
		id.pid = (pid_t)v[i].pid;
		id.start = v[i].start;
		if (strcmp(v[i].host, r->host) == 0 &&
		    (id.pid == r->self.pid || !proc_alive(&id)))
			continue;	/* ours, or gone */
		r->nsusp++;
		if (v[i].ttl > r->susp_ttl)
			r->susp_ttl = v[i].ttl;
	}
}

/* No hold: its line's fields as none (see struct rs_hold). */
static void
hold_clear(struct rs_hold *h)
{
	memset(h, 0, sizeof(*h));
	h->n0 = -1;
	h->w0 = -1;
}

/* Nothing kept of a value (see struct rs_ends). */
static void
ends_clear(struct rs_ends *e)
{
	memset(e, 0, sizeof(*e));
	e->limit = -1;
	e->nh = -1;
	e->nw = -1;
}

/*
 * The rest of a hold line, "WHY [CREDIT FIRST WAIT LIMIT0 AT N0 EXACT BACK
 * W0 WBACK]", into r->hold (see struct rs_hold). Older versions write the
 * word alone (none: a loss), and read no more. A line written on a
 * server clock later than the one it is read on (stepped back since, or a
 * jump ahead that came back: H-D of brk-redis6) is moved back with it: a
 * hold lasts as long as it was meant to, not until the clock catches up.
 */
static void
hold_rest(struct rstore *r, const char *p, const char *end)
{
	struct rs_hold h;
	char buf[160];
	size_t n;

	while (p < end && *p == ' ')
		p++;
	if (end - p >= 7 && memcmp(p, "dropped", 7) == 0)
		r->hold.why = GATE_HOLD_DROPPED;
	else if (end - p >= 5 && memcmp(p, "check", 5) == 0)
		r->hold.why = GATE_HOLD_CHECK;
	else
		r->hold.why = GATE_HOLD_LOST;
	n = (size_t)(end - p) < sizeof(buf) ? (size_t)(end - p) :
	    sizeof(buf) - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	hold_clear(&h);
	if (sscanf(buf, "%*s %u %" SCNu64 " %" SCNd64 " %u %" SCNd64
	    " %ld %d %u %ld %u", &h.credit, &h.first, &h.wait, &h.limit0,
	    &h.at, &h.n0, &h.exact, &h.back, &h.w0, &h.wback) == 10 &&
	    h.n0 <= STATE_MAX_SLOTS) {
		h.ms = r->hold.ms;
		h.why = r->hold.why;
		r->hold = h;
	}
	if (r->hold.credit > STATE_MAX_SLOTS)
		r->hold.credit = STATE_MAX_SLOTS;
	if (r->hold.at > r->now_ms) {
		r->hold.ms -= r->hold.at - r->now_ms;
		if (r->hold.wait > 0)
			r->hold.wait -= r->hold.at - r->now_ms;
		r->hold.at = r->now_ms;
	}
}

/* The key's value into t->st. 0, or -1 (EBADMSG: not ours to read). */
static int
value_parse(struct rstore *r, const char *buf, size_t len,
    struct store_txn *t)
{
	const char *p = buf + MAGIC_LEN, *end = buf + len, *why;
	char *q;
	struct lease *v;
	size_t nv;

	if (len < MAGIC_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0) {
		errno = EBADMSG;
		return -1;
	}
	if (end - p > 5 && memcmp(p, "hold ", 5) == 0) {
		r->hold.ms = strtoll(p + 5, &q, 10);
		if ((p = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			errno = EBADMSG;
			return -1;
		}
		hold_rest(r, q, p);
		r->hold_read = 1;
		p++;
	}
	if (end - p >= 5 && memcmp(p, "dflt\n", 5) == 0) {
		r->deflt = 1;	/* a default limit, never set */
		p += 5;
	}
	if (leases_parse(&p, end, &v, &nv) == -1)
		return -1;
	suspects(r, v, nv);
	if (state_parse(p, (size_t)(end - p), &t->st, 0, &why) == -1) {
		free(v);
		errno = EBADMSG;
		return -1;
	}
	leases_apply(r, t->st.h, t->st.nh, v, nv);
	leases_apply(r, t->st.w, t->st.nw, v, nv);
	leases_seen(r, &t->st);
	r->seen_nh = (long)t->st.nh;
	free(v);
	return 0;
}

/* Append the lease lines of n records to a malloc'd buffer. */
static int
leases_format(char **b, size_t *len, size_t *cap, const struct entry *e,
    size_t n)
{
	size_t i;
	char *nb;
	int k;

	for (i = 0; i < n; i++) {
		if (*cap - *len < 200) {
			*cap = *cap * 2 + 256;
			if ((nb = realloc(*b, *cap)) == NULL)
				return -1;
			*b = nb;
		}
		k = snprintf(*b + *len, *cap - *len, "l %" PRIu64 " %lld %llu %"
		    PRId64 " %s", e[i].ticket, (long long)e[i].wrapper.pid,
		    e[i].wrapper.start, e[i].lease_ms, e[i].host);
		if (e[i].lease_ttl > 0)
			k += snprintf(*b + *len + k, *cap - *len - k, " %" PRId64,
			    e[i].lease_ttl);
		(*b)[*len + k++] = '\n';
		*len += (size_t)k;
	}
	return 0;
}

/*
 * 1 while waiters in line before a loss may still come back to their
 * places (see hold_free): the hold's line is kept for them, after its
 * holders are all back or their leases ended.
 */
static int
reserving(const struct rstore *r)
{
	return r->hold.first != 0 && r->now_ms < r->hold.wait &&
	    (r->hold.w0 < 0 || (long)r->hold.wback < r->hold.w0);
}

/* 1 if st's limit is a default one, never set (the key was made). */
static int
limit_default(const struct rstore *r, const struct state *st)
{
	return (r->fresh || r->deflt) && st->limit == r->read_limit;
}

/* The key's value for st: magic, lease lines, the state's text. */
static int
value_format(const struct rstore *r, const struct state *st, char **bufp,
    size_t *lenp)
{
	size_t len = MAGIC_LEN, cap = 256, tlen;
	char *b, *text, *nb;

	if ((b = malloc(cap)) == NULL)
		return -1;
	memcpy(b, MAGIC, MAGIC_LEN);
	if (r->hold.ms > r->now_ms || reserving(r))
		len += (size_t)snprintf(b + len, cap - len, "hold %" PRId64
		    " %s %u %" PRIu64 " %" PRId64 " %u %" PRId64 " %ld %d %u"
		    " %ld %u\n", r->hold.ms, r->hold.why == GATE_HOLD_CHECK ?
		    "check" : r->hold.why == GATE_HOLD_DROPPED ? "dropped" :
		    "lost", r->hold.credit, r->hold.first, r->hold.wait,
		    r->hold.limit0, r->now_ms, r->hold.n0, r->hold.exact,
		    r->hold.back, r->hold.w0, r->hold.wback);
	if (limit_default(r, st))
		len += (size_t)snprintf(b + len, cap - len, "dflt\n");
	if (leases_format(&b, &len, &cap, st->h, st->nh) == -1 ||
	    leases_format(&b, &len, &cap, st->w, st->nw) == -1 ||
	    state_format(st, &text, &tlen) == -1)
		goto fail;
	if ((nb = realloc(b, len + tlen)) == NULL) {
		free(text);
		goto fail;
	}
	b = nb;
	memcpy(b + len, text, tlen);
	free(text);
	*bufp = b;
	*lenp = len + tlen;
	return 0;
fail:
	free(b);
	return -1;
}

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
		if (!ours(r, e))
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
		if (ours(r, e)) {
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
static int
mine(const struct rstore *r, const struct entry *e)
{
	return ours(r, e) && (saved_has(r->mine, r->nmine, e->ticket) ||
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
		if (!mine(r, &e[i]))
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
		if (ours(r, e))
			v[r->nrtix++] = e->ticket;
	}
}

/* Both copies freed (the store closed). */
void
rs_mine_free(struct rstore *r)
{
	saved_free(&r->mine, &r->nmine);
	saved_free(&r->minew, &r->nminew);
	free(r->rtix);
	r->rtix = NULL;
	r->nrtix = 0;
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

/*
 * Our waiter records missing from st put back in line by their tickets
 * (before the first waiter of a later ticket and no higher priority), so
 * that a waiter keeps its place through a loss.
 */
static int
remake_waiters(struct rstore *r, struct store_txn *t)
{
	struct state *st = &t->st;
	struct entry e;
	size_t k, pos;

	for (k = 0; k < r->nminew; k++) {
		e = r->minew[k];
		if (present(st, &e))
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
 * clock was stepped; see loss_seen): make our holder records again
 * in what it holds now, at their slot if free, else at a free one past
 * it (its slot may have been given away meanwhile), and the limit last
 * seen if the gate is gone or was made again with a default limit (the
 * limit PREFIX "ends" kept of the last value first: ours may be older). A
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
static int
missing_ours(const struct rstore *r, const struct state *st)
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
		if ((ret = value_parse(r, rp[1]->str, rp[1]->len, t)) == 0) {
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
static int
in_time(const struct rstore *r)
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
	hold_clear(&r->hold);
	ends_clear(&r->ends);
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
	 * then (see in_time).
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
	if (!r->fresh && in_time(r) && missing_ours(r, &t->st))
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

/*
 * The hold in force, for the policy and the views (store_txn.hold_until):
 * its end on this host's clock, why, and the limit (t->st.limit, read
 * before hold_begin lowers it), lost if the key was made again with a
 * default one that remake could not put back.
 */
static void
hold_tell(const struct rstore *r, struct store_txn *t)
{
	int64_t end = r->hold.ms;

	if (reserving(r) && r->hold.wait > end)
		end = r->hold.wait;
	if (end <= r->now_ms)
		return;
	t->hold_until = real_ns() + (end - r->now_ms) * MS;
	t->hold_why = r->hold.why != 0 ? r->hold.why : GATE_HOLD_LOST;
	t->hold_limit = t->st.limit;
	t->limit_lost = (r->fresh || r->deflt) && !r->restored;
}

/*
 * A newcomer that finds records ended at once (suspects: the server's
 * clock stepped before it came, or a host died) does not let anyone in
 * on their slots yet: it holds the gate a renewal period of theirs and a
 * second, written to the key. If the clock was stepped, their owners
 * renew meanwhile (and see the step in their own reads: a hold of a
 * lease); if their host died, nobody does, and the first look after the
 * hold frees their slots (the hold marks them checked). So an ordinary
 * expiry costs only the newcomer that finds it first (no waiter was
 * there to free the slot at the lease's end) a third of that lease more;
 * N4 of brk-redis4.
 */
static void
check_begin(struct rstore *r, struct store_txn *t)
{
	char buf[300];

	if (r->nsusp == 0 || r->lost || !t->exists || r->hold.ms > r->now_ms)
		return;
	r->hold.ms = r->now_ms + r->susp_ttl / 3 + 1000;
	r->hold.why = GATE_HOLD_CHECK;
	t->dirty = 1;
	(void)snprintf(buf, sizeof(buf), "%zu record%s of other processes "
	    "ended at once with no renewal since (a host died, or the "
	    "server's clock was stepped): nobody new starts for %.1f s, while "
	    "their owners may renew them", r->nsusp, r->nsusp == 1 ? "" : "s",
	    (double)(r->hold.ms - r->now_ms) / 1000);
	rs_say(r, buf);
}

/*
 * After a loss, nobody new is let in until every holder of every host
 * has recorded its slot again or seen its lease end: the policy is shown
 * the gate full (its limit as many as hold), and the commit writes the
 * real limit back (or the one a --limit set meanwhile). A holder renews,
 * and so records its slot again, before its lease ends: the hold lasts
 * until the longest lease known can end. Known are the leases of other
 * processes' holders we read before (r->seen_end) and the longest lease
 * of the gate's last value (PREFIX "ends", read when the key was lost:
 * a newcomer read no lease, and a holder of a 60 s lease renews only
 * every 20 s, H3 of brk-redis5). The first to begin a hold who knows
 * neither holds for a lease of ours; one that finds a hold begun only
 * lengthens it to a lease it knows of (a waiter's own lease lengthened
 * it past its holder's, and idled the slot, H1 of brk-redis5).
 *
 * Whom the hold keeps out (N3 of brk-redis4). The policy sees the gate
 * full at the holders recorded when the transaction began plus the
 * slots recorded holders gave back during the hold that nobody took (the
 * hold line's credit, see hold_end), so the line gets exactly the slots
 * recorded holders give back (a release, a holder of this host found
 * dead), be it a waiter that kept its place or one that came since, and
 * whether it was in line when the slot was given back or recorded its
 * place again later. Such a slot was one of the limit before the loss,
 * so whoever takes it leaves the count where it was. What is never given
 * is room below the limit that no recorded holder gave back: a holder
 * that has not yet renewed since the loss may run in it, and nothing
 * here tells its slot from a free one until it does (or its lease ends,
 * after the hold). A holder recorded again over the limit (its slot was
 * given away before the loss was seen) keeps the gate shown full (never
 * above the limit) until enough have left.
 *
 * How long a hold begun now must last (ms). Records dropped (a stall, a
 * step: lost 2) are still in what was read, or were in what we read
 * before: their leases are known, and a holder whose lease ended has
 * seen its command stopped (its watchdog's deadline comes before the
 * lease the server wrote). Records lost with the key or the epoch (lost
 * 1) with nothing kept of them: holders let in since our last read are
 * unknown, so the hold lasts at least the longest lease of another's
 * holder we read, or ours if none (a waiter of 120 s began a 120 s hold
 * for a holder of 6 s, H-F of brk-redis6). A re-record of a dropped
 * waiter after the hold ended began another of its own (H-E): no more.
 */
static int64_t
hold_length(const struct rstore *r, int lost)
{
	int64_t ms = (r->seen_end - boot_ns()) / MS, least;

	if (r->ends.ms - r->now_ms > ms)
		ms = r->ends.ms - r->now_ms;
	least = r->seen_ttl > 0 ? r->seen_ttl : r->ttl_ms;
	if (lost && r->ends.ms == 0 && r->hold.ms <= r->now_ms && ms < least)
		ms = least;
	return ms;
}

/*
 * The line before a loss, as far as known, into the hold: the first
 * ticket not given before it (set once), and until when a waiter in
 * line before it may come back (its lease's end); newcomers get tickets
 * from there on, so that one who came back goes before them.
 */
static void
hold_line(struct rstore *r, struct store_txn *t)
{
	int64_t wait = r->ends.wait;

	if (r->seen_wait != 0 &&
	    r->now_ms + (r->seen_wait - boot_ns()) / MS > wait)
		wait = r->now_ms + (r->seen_wait - boot_ns()) / MS;
	if (wait > r->hold.wait)
		r->hold.wait = wait;
	if (r->hold.first == 0)
		r->hold.first = r->seen_next > r->ends.next ? r->seen_next :
		    r->ends.next;
	if (t->st.next_ticket < r->hold.first) {
		t->st.next_ticket = r->hold.first;
		t->dirty = 1;
	}
}

/* Holder slots from before the loss not recorded again (at least). */
static long
hold_unknown(const struct rstore *r)
{
	if (r->hold.ms <= r->now_ms || r->hold.n0 < 0 ||
	    r->hold.n0 <= (long)r->hold.back)
		return 0;
	return r->hold.n0 - (long)r->hold.back;
}

/*
 * The slots the line may take now, beyond the holders but this handle's
 * (mine: if it gives them back in this transaction, as a release does,
 * they are the line's too, and the policy hands them on):
 * - with the holder slots from before the loss all known (from PREFIX
 *   "ends": EXACT), what the limit leaves once the holders not recorded
 *   again are counted: the gate is known but for them;
 * - else the credit and ours, less what a limit lowered in the hold
 *   (below the one before the loss) takes away (H-A of brk-redis6), and
 *   no more than the limit leaves once the holders we know of that were
 *   not recorded again are counted (one let in before the loss was seen
 *   sits in the place of one of them: H-H);
 * - while a waiter in line before the loss may still come back, only as
 *   much as such waiters in line ask for (they are first, by ticket), so
 *   that a newcomer does not take a slot given back before one of them
 *   recorded its place again (H-E).
 */
static long
hold_free(const struct rstore *r, const struct state *st, unsigned mine_h)
{
	long n = 0, c, cut, known;
	size_t i;

	known = (long)st->limit - hold_unknown(r) - (long)(st->nh - mine_h);
	if (r->hold.exact || r->hold.ms <= r->now_ms)
		c = known;	/* or only reserving: the room there is */
	else {
		cut = r->hold.limit0 > st->limit ? r->hold.limit0 - st->limit :
		    0;
		c = (long)r->hold.credit + mine_h - cut;
		if (r->hold.n0 >= 0 && known < c)
			c = known;
	}
	if (c <= 0)
		return 0;
	if (!reserving(r))
		return c;
	for (i = 0; i < st->nw && n < c; i++)
		if (st->w[i].ticket < r->hold.first)
			n += st->w[i].weight > 0 ? st->w[i].weight : 1;
	return n < c ? n : c;
}

/* How many holder records of st are this handle's. */
static unsigned
mine_held(const struct rstore *r, const struct state *st)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < st->nh; i++)
		n += mine(r, &st->h[i]);
	return n;
}

/*
 * A hold begun now: what is known of the holders before the loss, from
 * PREFIX "ends" (all of them) or our last read (at least those).
 */
static void
hold_new(struct rstore *r, const struct store_txn *t)
{
	r->hold.credit = 0;
	r->hold.first = 0;
	r->hold.wait = 0;
	r->hold.limit0 = t->st.limit;
	r->hold.back = 0;
	r->hold.wback = 0;
	r->hold.exact = r->lost == 1 && r->ends.nh >= 0;
	r->hold.n0 = r->hold.exact ? r->ends.nh : r->known ? r->seen_nh : -1;
	r->hold.w0 = r->hold.exact ? r->ends.nw : -1;
}

/*
 * Begin or lengthen the hold after a loss, and show the policy it: the
 * gate full at the holders but this handle's, plus what the line may take
 * (hold_free), never above the limit. Once every holder slot from before
 * the loss is recorded again (all known: EXACT), the hold on holders ends:
 * the gate is known again (a holder of a day-long lease held it a day,
 * H-G); what is left of the hold is kept for the waiters from before the
 * loss until they are back (all known) or their leases ended.
 */
static void
hold_begin(struct rstore *r, struct store_txn *t)
{
	int64_t ms = hold_length(r, r->lost == 1), end;
	unsigned mh;
	long room;

	/* Records dropped from a key that has a hold: whoever began it knew
	 * more (a waiter back after its holder left lengthened it again). */
	if (r->lost == 2 && r->hold_read)
		ms = 0;
	if (r->lost && t->exists && ms > 0 && r->hold.ms < r->now_ms + ms) {
		/* A loss of the key is said on, over the drops it leads to. */
		if (r->hold.ms <= r->now_ms || r->hold.why != GATE_HOLD_LOST)
			r->hold.why = r->lost == 1 ? GATE_HOLD_LOST :
			    GATE_HOLD_DROPPED;
		if (r->hold.ms <= r->now_ms)
			hold_new(r, t);
		r->hold.ms = r->now_ms + ms;
	}
	r->shown = 0;
	if (!t->exists || (r->hold.ms <= r->now_ms && !reserving(r)))
		return;
	if (r->lost)
		hold_line(r, t);
	r->hold.back += r->remade;
	r->hold.wback += r->remadew;
	if (r->hold.exact && (long)r->hold.back >= r->hold.n0 &&
	    r->hold.ms > r->now_ms)
		r->hold.ms = r->now_ms;		/* all back */
	if (r->hold.ms <= r->now_ms && !reserving(r))
		return;
	if (r->restored)
		r->hold.limit0 = t->st.limit;	/* the one before the loss */
	hold_tell(r, t);
	end = reserving(r) && r->hold.wait > r->hold.ms ? r->hold.wait :
	    r->hold.ms;
	rs_wait_until(r, r->t0 + (end - r->now_ms + 2) * MS);
	r->hold_nh = t->st.nh;
	mh = mine_held(r, &t->st);
	room = (long)(t->st.nh - mh) + hold_free(r, &t->st, mh);
	if (room < (long)t->st.limit)
		t->st.limit = (unsigned)room;
	r->shown = 1;
}

/*
 * Before writing: the gate's own limit back (a change of limit during the
 * hold went to t->hold_limit), and the credit: the slots given back in
 * the hold (holders fewer than when shown, with the credit it had) that
 * nobody took.
 */
static void
hold_end(struct rstore *r, struct store_txn *t)
{
	size_t room = r->hold_nh + r->hold.credit;

	if (r->shown) {
		t->st.limit = t->hold_limit;
		r->hold.credit = room > t->st.nh ?
		    (unsigned)(room - t->st.nh) : 0;
		if (r->hold.credit > STATE_MAX_SLOTS)
			r->hold.credit = STATE_MAX_SLOTS;
	}
	r->shown = 0;
}

/*
 * PREFIX "ends" holds another type of value: said once (M-1 of brk-redis7:
 * its writes failed in silence, and the hold after a loss is shorter
 * without it).
 */
static void
ends_alien(struct rstore *r)
{
	if (r->said_ends)
		return;
	r->said_ends = 1;
	rs_say(r, "the key " PREFIX "ends holds a value gaterun did not "
	    "write (another type): what a lost key needs is not kept, so a "
	    "hold after a loss lasts only the longest lease seen; delete "
	    "it, and gaterun makes it again");
}

/*
 * What PREFIX "ends" keeps of the gate's last value (see value_ends) into
 * r->ends.ms, ends_next, ends_wait, ends_limit and ends_nh: 0 (-1) if
 * none. 0 or -1.
 */
static int
ends_read(struct rstore *r)
{
	const char *av[] = { "HGET", PREFIX "ends", r->name };
	redisReply *rp;

	if (redisAppendCommandArgv(r->c, 3, av, NULL) != REDIS_OK)
		return -1;
	if ((rp = rs_reply(&r->c, &r->io)) == NULL) {
		if (r->c == NULL || errno != EPROTOTYPE)
			return -1;
		ends_alien(r);		/* not a hash: as if none */
		return 0;
	}
	if (rp->type != REDIS_REPLY_STRING ||
	    sscanf(rp->str, "%" SCNd64 " %" SCNu64 " %" SCNd64 " %ld %ld %ld %"
	    SCNd64, &r->ends.ms, &r->ends.next, &r->ends.wait, &r->ends.limit,
	    &r->ends.nh, &r->ends.nw, &r->ends.at) != 7 || r->ends.ms < 0 ||
	    r->ends.limit > STATE_MAX_SLOTS || r->ends.nh < 0 ||
	    r->ends.nh > STATE_MAX_SLOTS || r->ends.nw < 0)
		ends_clear(&r->ends);	/* none, or not ours: as if none */
	else if (r->ends.at > r->now_ms) {
		/* Written before the server's clock went back (H-2 of
		 * brk-redis7): its ends move back with it. */
		r->ends.ms -= r->ends.at - r->now_ms;
		r->ends.wait -= r->ends.wait > 0 ? r->ends.at - r->now_ms : 0;
		if (r->ends.ms <= 0)
			r->ends.ms = 1;		/* known, and past */
	}
	freeReplyObject(rp);
	return 0;
}

/*
 * Ask whether the gate was ever made on this server (it is in PREFIX
 * "gates") and whether the server holds any gate at all: r->gates_empty.
 * 1 if it was made, 0 if not, -1.
 */
static int
gates_probe(struct rstore *r)
{
	const char *is[] = { "SISMEMBER", PREFIX "gates", r->name };
	const char *card[] = { "SCARD", PREFIX "gates" };
	redisReply *rp[2] = { NULL, NULL };
	int i, e = 0, ret = -1;

	if (redisAppendCommandArgv(r->c, 3, is, NULL) != REDIS_OK ||
	    redisAppendCommandArgv(r->c, 2, card, NULL) != REDIS_OK)
		return -1;
	for (i = 0; i < 2 && r->c != NULL; i++)
		if ((rp[i] = rs_reply(&r->c, &r->io)) == NULL && e == 0)
			e = errno;
	if (e == 0 && rp[0] != NULL && rp[1] != NULL &&
	    rp[0]->type == REDIS_REPLY_INTEGER &&
	    rp[1]->type == REDIS_REPLY_INTEGER) {
		ret = rp[0]->integer != 0;
		r->gates_empty = rp[1]->integer == 0;
	} else
		errno = e != 0 ? e : r->c == NULL ? ECONNRESET : EPROTO;
	for (i = 0; i < 2; i++)
		if (rp[i] != NULL)
			freeReplyObject(rp[i]);
	return ret;
}

/*
 * The gate's key was lost when no lease of its last value ran (PREFIX
 * "ends" says so): nobody is held; said, with the limit it is made
 * again with (M-B of brk-redis6: it silently became 5).
 */
static void
lost_idle(struct rstore *r)
{
	char buf[200];

	if (r->ends.limit >= 0)
		(void)snprintf(buf, sizeof(buf), "the server lost the gate's "
		    "key (deleted or evicted) while no lease of it ran: it is "
		    "made again with its limit, %ld", r->ends.limit);
	else
		(void)snprintf(buf, sizeof(buf), "the server lost the gate's "
		    "key (deleted or evicted) while no lease of it ran: it is "
		    "made again with a default limit");
	rs_say(r, buf);
}

/*
 * A loss the epoch does not show. The gate's key is missing though this
 * process saw it, or has records in it, or the server's set of gates
 * names it (gaterun never deletes a key: it was deleted or evicted, or
 * the server restarted from an old copy): r->lost 1, as for a new epoch.
 * A record of ours is missing though we asked before its lease ended (on
 * our clock), or the server's clock ran ahead of ours by more than half
 * a lease while we asked (it stalled, or was stepped): leases ended that
 * nobody could renew, r->lost 2. Said once per loss; 0 or -1.
 */
static int
loss_seen(struct rstore *r, const struct store_txn *t)
{
	int64_t lag = r->lag_ms;
	int v, dropped = r->dropped;
	char buf[300];

	r->gates_empty = 0;
	r->lag_ms = 0;
	r->dropped = 0;
	if (r->lost)
		return 0;
	if (r->fresh) {
		if (!r->known && r->nmine + r->nminew == 0 &&
		    (v = gates_probe(r)) != 1)
			return v;
		r->lost = 1;
		if (ends_read(r) == -1)
			return -1;
		if (r->ends.ms != 0 && r->ends.ms <= r->now_ms)
			lost_idle(r);
		else
			rs_say(r, "the server lost the gate's key though it "
			    "was in use (deleted, evicted, or restarted from "
			    "an old copy): slots held here are recorded again "
			    "and nobody new starts until every holder's lease "
			    "could end; meanwhile others may have been let in "
			    "over the limit");
	} else if (dropped || (in_time(r) && missing_ours(r, &t->st))) {
		r->lost = 2;
		rs_say(r, "records made here were dropped on the server "
		    "though renewed in time (the gate's key was deleted, or "
		    "the server stalled or its clock was stepped): they are "
		    "recorded again, in their places, and nobody new starts "
		    "until every holder's lease could end");
	} else if (rs_clock_jumped(lag, r->ttl_ms)) {
		r->lost = 2;
		(void)snprintf(buf, sizeof(buf), "the server's clock ran %.1f "
		    "s ahead of this host's while it was asked (it stalled, "
		    "this host was cut off from it, or its clock was "
		    "stepped): leases that ended meanwhile "
		    "are recorded again by their owners, and nobody new "
		    "starts until every holder's lease could end",
		    (double)lag / 1000);
		rs_say(r, buf);
	}
	return 0;
}

/*
 * The hold a look (status) reports: the one the key holds, or, if the key
 * is gone though the gate was in use (the server's set of gates names
 * it), the one the first to write will begin (see loss_seen and
 * hold_length). 0 or -1.
 */
static int
look_hold(struct rstore *r, struct store_txn *t)
{
	int64_t ms;
	int v;

	if (r->fresh && r->hold.ms <= r->now_ms) {
		if ((v = gates_probe(r)) == -1)
			return -1;
		if (v == 1 && ends_read(r) == -1)
			return -1;
		if (v == 1 && r->ends.limit >= 0) {
			t->st.limit = (unsigned)r->ends.limit;
			r->restored = 1;	/* what remake will do */
		}
		if (v == 1 && (ms = hold_length(r, 1)) > 0) {
			r->hold.ms = r->now_ms + ms;
			r->hold.why = GATE_HOLD_LOST;
		}
	}
	hold_tell(r, t);
	return 0;
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
	if (watch && loss_seen(r, t) == -1) {
		state_free(&t->st);
		return -1;
	}
	if (r->lost && watch && t->exists && remake(r, t) == -1) {
		state_free(&t->st);
		return -1;
	}
	if (watch) {
		check_begin(r, t);
		read_tickets(r, &t->st);
		hold_begin(r, t);
	} else if (look_hold(r, t) == -1) {
		state_free(&t->st);
		return -1;
	}
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
 * What PREFIX "ends" keeps of a value for after a DEL of its key (see
 * hold_begin), "END NEXT WAIT LIMIT NH NW AT": until when (server ms) its
 * holders may run without renewing (the longest lease, or the hold's end
 * if later), its next ticket, until when its waiters may (or those of a
 * hold), its limit (-1: a default one; during a hold, the gate's own),
 * its holder slots (with those a hold knows of but not recorded), its
 * waiters, and when (struct rs_ends).
 */
static void
value_ends(const struct rstore *r, const struct state *st, char *buf,
    size_t size)
{
	int64_t end = r->hold.ms > r->now_ms ? r->hold.ms : r->now_ms;
	int64_t wait = r->hold.ms > r->now_ms || reserving(r) ?
	    r->hold.wait : 0;
	size_t i;

	for (i = 0; i < st->nh; i++)
		if (st->h[i].lease_ms > end)
			end = st->h[i].lease_ms;
	for (i = 0; i < st->nw; i++)
		if (st->w[i].lease_ms > wait)
			wait = st->w[i].lease_ms;
	(void)snprintf(buf, size, "%" PRId64 " %" PRIu64 " %" PRId64 " %ld"
	    " %ld %zu %" PRId64, end, st->next_ticket, wait,
	    limit_default(r, st) ? -1L : (long)st->limit, (long)st->nh +
	    hold_unknown(r), st->nw, r->now_ms);
}

/*
 * Queue MULTI, the writes (the value, the gate's name in PREFIX "gates",
 * its longest lease in PREFIX "ends", which outlive a DEL of the key: see
 * hold_begin), the wake-ups, EXEC; the count of replies.
 */
static int
commit_send(struct rstore *r, const char *val, size_t len,
    const char *ends, const store_addr *wakes, size_t n)
{
	const char *av[3];
	size_t avl[3];
	char wk[sizeof(PREFIX) + 8 + STATE_ADDR_LEN];
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
	for (i = 0; i < n; i++) {
		if (strcmp(wakes[i], r->addr) == 0)
			continue;	/* nothing to our own address */
		(void)snprintf(wk, sizeof(wk), PREFIX "wake:%s", wakes[i]);
		k += redisAppendCommand(r->c, "RPUSH %s 1", wk) == REDIS_OK;
		k += redisAppendCommand(r->c, "EXPIRE %s 3600", wk) == REDIS_OK;
	}
	k += redisAppendCommand(r->c, "EXEC") == REDIS_OK;
	return k;
}

/* Read k replies, the last EXEC's: 0, or -1 (EAGAIN: a nil EXEC). */
static int
commit_read(struct rstore *r, int k)
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
	char *val = NULL, ends[128] = "";
	size_t len = 0;
	int k, renewed, ret = -1;

	r->cur = NULL;
	hold_end(r, t);
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
	if (t->dirty && value_format(r, &t->st, &val, &len) == -1) {
		unwatch(r);
		goto out;
	}
	if (r->c == NULL) {
		errno = ECONNRESET;
		goto out;
	}
	if (val != NULL)
		value_ends(r, &t->st, ends, sizeof(ends));
	if (r->unanswered == 0)
		r->unanswered = boot_ns();
	k = commit_send(r, val, len, ends, wakes, n);
	if ((ret = commit_read(r, k)) == 0) {
		r->unanswered = 0;
		if (renewed)
			r->until = r->t0 + r->ttl_ms * MS;
		if (t->dirty) {
			mine_save(r, &t->st);
			r->known = 1;
			/* Ours too, as written (H-H of brk-redis7). */
			r->seen_nh = (long)t->st.nh;
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

	if (e != NULL && id == &e->wrapper && ours(r, e))
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
