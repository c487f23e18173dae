/*
 * The Redis store's value (see store_redis.c): the text of a gate's key,
 * read into a state and written from one. A magic line, the hold line
 * (store_redis_hold.c), "dflt" for a limit never set, one lease line per
 * record (its host, its lease's end and length), then the file store's
 * state text (state.c). Reading it also notes what a loss would need:
 * the longest leases and next ticket seen, and records that ended with
 * no renewal since (suspects).
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
int
rs_ours(const struct rstore *r, const struct entry *e)
{
	return e->wrapper.pid == r->self.pid &&
	    e->wrapper.start == r->self.start &&
	    (e->host[0] == '\0' || strcmp(e->host, r->host) == 0);
}

/*
 * Note how long the longest leases of another's holder and waiter read
 * may run (on our clock), and the highest next ticket: after a loss, a
 * holder records its slot again before its lease ends, and a waiter its
 * place (see rs_hold_begin). Ours we record again now.
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
		if (e->lease_ms == 0 || rs_ours(r, e))
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
 * lease into r->susp_ttl (see rs_check_begin).
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

/*
 * The state part of a value of ours that does not parse (why): damaged,
 * by a hand or by a bug (two waiters of one ticket once left a gate
 * refused by every gaterun until its key was deleted: N-2 of
 * brk-redis8). What can be read of it is kept, as the file store does
 * with a damaged file, said, and written again by the next change (the
 * waiters whose records went with the damage queue again). 0 or -1.
 */
static int
value_salvage(struct rstore *r, const char *p, const char *end,
    struct store_txn *t, const char *why)
{
	char buf[200];

	(void)snprintf(buf, sizeof(buf), "the gate's key is damaged (%s): "
	    "kept as far as it can be read, and written again at the next "
	    "change", why);
	rs_say(r, buf);
	if (state_parse(p, (size_t)(end - p), &t->st, 1, &why) == -1)
		return -1;	/* out of memory: salvage never fails else */
	t->lost = 1;
	t->dirty = 1;
	return 0;
}

/* The key's value into t->st. 0, or -1 (EBADMSG: not ours to read). */
int
rs_value_parse(struct rstore *r, const char *buf, size_t len,
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
		rs_hold_parse(r, q, p);
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
	if (state_parse(p, (size_t)(end - p), &t->st, 0, &why) == -1 &&
	    (errno != EINVAL || value_salvage(r, p, end, t, why) == -1)) {
		free(v);
		errno = errno == EINVAL ? EBADMSG : errno;
		return -1;
	}
	leases_apply(r, t->st.h, t->st.nh, v, nv);
	leases_apply(r, t->st.w, t->st.nw, v, nv);
	leases_seen(r, &t->st);
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

/* 1 if st's limit is a default one, never set (the key was made). */
int
rs_limit_default(const struct rstore *r, const struct state *st)
{
	return (r->fresh || r->deflt) && st->limit == r->read_limit;
}

/* The key's value for st: magic, lease lines, the state's text. */
int
rs_value_format(const struct rstore *r, const struct state *st, char **bufp,
    size_t *lenp)
{
	size_t len = MAGIC_LEN, cap = 256, tlen;
	char *b, *text, *nb;

	if ((b = malloc(cap)) == NULL)
		return -1;
	memcpy(b, MAGIC, MAGIC_LEN);
	len += rs_hold_format(r, b + len, cap - len);
	if (rs_limit_default(r, st))
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
