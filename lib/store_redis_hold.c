/*
 * The Redis store's loss hold (see store_redis.c): how a loss is seen (a
 * key gone while in use, records dropped though renewed in time, a clock
 * that jumped: rs_loss_seen; a new epoch is store_redis_txn.c's), and
 * the hold that follows: nobody new starts until every holder from
 * before the loss has recorded its slot again or could have seen its
 * lease end (rs_hold_begin, rs_hold_end), with what PREFIX "ends" keeps
 * of a gate's last value for a key that was deleted (rs_ends_format), the
 * hold after records that ended at once (rs_check_begin), and the hold a
 * look reports (rs_look_hold).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_redis.h"
#include "sys.h"

/* No hold: its line's fields as none (see struct rs_hold). */
void
rs_hold_clear(struct rs_hold *h)
{
	memset(h, 0, sizeof(*h));
	h->n0 = -1;
	h->w0 = -1;
}

/* Nothing kept of a value (see struct rs_ends). */
void
rs_ends_clear(struct rs_ends *e)
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
void
rs_hold_parse(struct rstore *r, const char *p, const char *end)
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
	rs_hold_clear(&h);
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

/* The hold line of the key's value (see struct rs_hold) into buf, if a
   hold is on; its length (0: none). */
size_t
rs_hold_format(const struct rstore *r, char *buf, size_t size)
{
	int k;

	if (r->hold.ms <= r->now_ms && !reserving(r))
		return 0;
	k = snprintf(buf, size, "hold %" PRId64 " %s %u %" PRIu64 " %" PRId64
	    " %u %" PRId64 " %ld %d %u %ld %u\n", r->hold.ms,
	    r->hold.why == GATE_HOLD_CHECK ? "check" :
	    r->hold.why == GATE_HOLD_DROPPED ? "dropped" : "lost",
	    r->hold.credit, r->hold.first, r->hold.wait, r->hold.limit0,
	    r->now_ms, r->hold.n0, r->hold.exact, r->hold.back, r->hold.w0,
	    r->hold.wback);
	return k > 0 && (size_t)k < size ? (size_t)k : 0;
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
 * The hold in force, for the policy and the views (store_txn.hold_until):
 * its end on this host's clock, why, and the limit (t->st.limit, read
 * before rs_hold_begin lowers it), lost if the key was made again with a
 * default one that remake could not put back; and whether holders not
 * recorded again may hold keys (store_txn.keys_unknown).
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
	t->keys_unknown = hold_unknown(r) > 0;
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
void
rs_check_begin(struct rstore *r, struct store_txn *t)
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
 * hold line's credit, see rs_hold_end), so the line gets exactly the slots
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

/*
 * For kill-all (store_redis_kill.c), after a read: the holder slots from
 * before a loss not recorded again, 0 without a hold, -1 during one that
 * does not know how many. A reader that found the key lost (not made
 * again: no hold written yet) counts the holders PREFIX "ends" kept, if
 * their leases may run.
 */
long
rs_hold_missing(const struct rstore *r)
{
	if (r->hold.ms > r->now_ms)
		return r->hold.n0 < 0 ? -1 : hold_unknown(r);
	if (r->lost != 1 || !r->fresh)
		return 0;
	if (r->ends.nh < 0)
		return -1;
	return r->ends.ms > r->now_ms ? r->ends.nh : 0;
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
		n += rs_mine(r, &st->h[i]);
	return n;
}

/* See store_redis.h; on no memory, none are kept (no hold counts them). */
void
rs_seen_save(struct rstore *r, const struct state *st)
{
	struct rs_rec *v;
	size_t i;

	if ((v = reallocarray(r->seenh, st->nh + 1, sizeof(*v))) == NULL) {
		r->nseenh = 0;
		return;
	}
	r->seenh = v;
	for (i = 0; i < st->nh; i++) {
		v[i].ticket = st->h[i].ticket;
		v[i].pid = st->h[i].wrapper.pid;
		v[i].start = st->h[i].wrapper.start;
	}
	r->nseenh = st->nh;
}

/* How many records of the request of e st holds. */
static size_t
rec_count(const struct entry *v, size_t n, const struct rs_rec *e)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += v[i].ticket == e->ticket && v[i].wrapper.pid == e->pid &&
		    v[i].wrapper.start == e->start;
	return k;
}

/*
 * The holder records seen before the loss that st lacks, and those of
 * ours remake just made again (they lacked too, and count back at once):
 * the holders who may come back. Not those still there (a restart from an
 * old copy kept them: its holder never counted back, and its slot sat
 * idle for its lease, N-3 of brk-redis8), nor those let in since (a
 * newcomer in the window before the loss was seen, counted as not back:
 * N-3b). A record of a request of weight k: as many as are missing.
 */
static long
seen_missing(const struct rstore *r, const struct state *st)
{
	size_t i, j, seen, now;
	long n = 0;

	for (i = 0; i < r->nseenh; i++) {
		for (j = 0; j < i; j++)
			if (r->seenh[j].ticket == r->seenh[i].ticket &&
			    r->seenh[j].pid == r->seenh[i].pid &&
			    r->seenh[j].start == r->seenh[i].start)
				break;
		if (j < i)
			continue;	/* its request was counted */
		seen = 0;
		for (j = i; j < r->nseenh; j++)
			seen += r->seenh[j].ticket == r->seenh[i].ticket &&
			    r->seenh[j].pid == r->seenh[i].pid &&
			    r->seenh[j].start == r->seenh[i].start;
		now = rec_count(st->h, st->nh, &r->seenh[i]);
		if (seen > now)
			n += (long)(seen - now);
	}
	return n + (long)r->remade;
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
	r->hold.n0 = r->hold.exact ? r->ends.nh : r->known ?
	    seen_missing(r, &t->st) : -1;
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
void
rs_hold_begin(struct rstore *r, struct store_txn *t)
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
void
rs_hold_end(struct rstore *r, struct store_txn *t)
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
void
rs_ends_alien(struct rstore *r)
{
	if (r->said_ends)
		return;
	r->said_ends = 1;
	rs_say(r, "the key " PREFIX "ends holds a value gaterun did not "
	    "write (another type): what a lost key needs is not kept, so a "
	    "hold after a loss lasts only the longest lease seen; delete "
	    "it, and gaterun makes it again");
}

/* The WAKE field of PREFIX "ends" (see struct rs_ends) into e: what is a
   wake address (STATE_ADDR_LEN hex digits) of the first few. */
static void
ends_wake(struct rs_ends *e, const char *p)
{
	size_t n;

	while (*p == ' ')
		p++;
	while (e->nwake < RS_ENDS_WAKE && *p != '\0') {
		n = strspn(p, "0123456789abcdef");
		if (n != STATE_ADDR_LEN || (p[n] != ',' && p[n] != ' ' &&
		    p[n] != '\0'))
			return;
		memcpy(e->wake[e->nwake], p, n);
		e->wake[e->nwake++][n] = '\0';
		p += n + (p[n] == ',');
	}
}

/*
 * The PARENT field of PREFIX "ends" (N-5 of brk-redis8: a DEL of a child's
 * key lost its parent), after WAKE in p: r->ends.parent, "" if none
 * (written by a version that kept none, or no parent). -1 if it is not a
 * gate name.
 */
static int
ends_parent(struct rstore *r, const char *p)
{
	size_t n;

	r->ends.parent[0] = '\0';
	p += strspn(p, " ");
	p += strcspn(p, " ");		/* WAKE */
	p += strspn(p, " ");
	n = strcspn(p, " ");
	if (n == 0)
		return 0;
	if (n > GATE_NAME_MAX)
		return -1;
	memcpy(r->ends.parent, p, n);
	r->ends.parent[n] = '\0';
	return gate_name_valid(r->ends.parent) ? 0 : -1;
}

/*
 * What PREFIX "ends" keeps of the gate's last value (see rs_ends_format)
 * into r->ends (see struct rs_ends): cleared if none. 0 or -1.
 */
static int
ends_read(struct rstore *r)
{
	const char *av[] = { "HGET", PREFIX "ends", r->name };
	redisReply *rp;
	int n = 0;

	if (redisAppendCommandArgv(r->c, 3, av, NULL) != REDIS_OK)
		return -1;
	if ((rp = rs_reply(&r->c, &r->io)) == NULL) {
		if (r->c == NULL || errno != EPROTOTYPE)
			return -1;
		rs_ends_alien(r);	/* not a hash: as if none */
		return 0;
	}
	if (rp->type != REDIS_REPLY_STRING ||
	    sscanf(rp->str, "%" SCNd64 " %" SCNu64 " %" SCNd64 " %ld %ld %ld %"
	    SCNd64 "%n", &r->ends.ms, &r->ends.next, &r->ends.wait,
	    &r->ends.limit, &r->ends.nh, &r->ends.nw, &r->ends.at, &n) != 7 ||
	    r->ends.ms < 0 || r->ends.limit > STATE_MAX_SLOTS ||
	    r->ends.nh < 0 || r->ends.nh > STATE_MAX_SLOTS || r->ends.nw < 0)
		rs_ends_clear(&r->ends);	/* none, or not ours: as if none */
	else if (ends_parent(r, rp->str + n) == -1)
		rs_ends_clear(&r->ends);
	else
		ends_wake(&r->ends, rp->str + n);
	if (r->ends.at > r->now_ms) {
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
int
rs_loss_seen(struct rstore *r, const struct store_txn *t)
{
	int64_t lag = r->lag_ms;
	int v, dropped = r->dropped;
	char buf[300];

	r->gates_empty = 0;
	r->lag_ms = 0;
	r->dropped = 0;
	if (r->lost == 1 && r->fresh)
		return ends_read(r);	/* again: a try after EAGAIN */
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
	} else if (dropped || (rs_in_time(r) && rs_missing_ours(r, &t->st))) {
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
 * it), the one the first to write will begin (see rs_loss_seen and
 * hold_length). 0 or -1.
 */
int
rs_look_hold(struct rstore *r, struct store_txn *t)
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
		if (v == 1 && r->ends.parent[0] != '\0')
			(void)strlcpy(t->st.parent, r->ends.parent,
			    sizeof(t->st.parent));
		if (v == 1 && (ms = hold_length(r, 1)) > 0) {
			r->hold.ms = r->now_ms + ms;
			r->hold.why = GATE_HOLD_LOST;
		}
	}
	hold_tell(r, t);
	return 0;
}

/*
 * What PREFIX "ends" keeps of a value for after a DEL of its key (see
 * rs_hold_begin), "END NEXT WAIT LIMIT NH NW AT WAKE [PARENT]": until when
 * (server ms) its holders may run without renewing (the longest lease, or
 * the hold's end if later), its next ticket, until when its waiters may
 * (or those of a hold), its limit (-1: a default one; during a hold, the
 * gate's own), its holder slots (with those a hold knows of but not
 * recorded), its waiters, when, its first waiters' wake addresses
 * (struct rs_ends), and its parent gate if it has one (last: older
 * versions read the fields before it and no more; a name has no spaces).
 */
void
rs_ends_format(const struct rstore *r, const struct state *st, char *buf,
    size_t size)
{
	int64_t end = r->hold.ms > r->now_ms ? r->hold.ms : r->now_ms;
	int64_t wait = r->hold.ms > r->now_ms || reserving(r) ?
	    r->hold.wait : 0;
	size_t i, k, n;

	for (i = 0; i < st->nh; i++)
		if (st->h[i].lease_ms > end)
			end = st->h[i].lease_ms;
	for (i = 0; i < st->nw; i++)
		if (st->w[i].lease_ms > wait)
			wait = st->w[i].lease_ms;
	n = (size_t)snprintf(buf, size, "%" PRId64 " %" PRIu64 " %" PRId64
	    " %ld %ld %zu %" PRId64 " ", end, st->next_ticket, wait,
	    rs_limit_default(r, st) ? -1L : (long)st->limit, (long)st->nh +
	    hold_unknown(r), st->nw, r->now_ms);
	for (i = 0, k = 0; i < st->nw && k < RS_ENDS_WAKE && n < size; i++)
		if (st->w[i].addr[0] != '\0')
			n += (size_t)snprintf(buf + n, size - n, "%s%s",
			    k++ > 0 ? "," : "", st->w[i].addr);
	if (k == 0 && n < size)
		n += (size_t)snprintf(buf + n, size - n, "-");
	if (st->parent[0] != '\0' && n < size)
		(void)snprintf(buf + n, size - n, " %s", st->parent);
}
