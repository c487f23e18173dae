/*
 * The gate policy: who holds a slot, who waits and in what order, the
 * limit, promotion and reaping, and the waiting loop. The state lives in
 * a store (store.h): this file never knows where, and a store never
 * decides who runs.
 *
 * Every change is one transaction (txn_run): begin -> the policy changes
 * the state -> commit with the wake-ups to send, or abort.
 *
 * Liveness. A record names its processes by PID and start time; the
 * store says whether they still run. A holder's slot is taken while its
 * wrapper or its command lives, so a SIGKILLed wrapper whose command runs
 * on still counts. Dead holders are reaped by a transaction that finds
 * the gate full (they would keep someone out; with room, nobody needs to
 * look at them) and by every status call; dead waiters when they reach
 * the head of the queue, when the waiter behind them notices, or by a
 * status call.
 *
 * Queue and wake-ups. Requests are served by ticket. Any transaction that
 * frees capacity hands slots to the requests at the head ("promotes"
 * them: the waiter record becomes a holder record) and wakes exactly
 * those. Crashes free capacity without a release, so a waiter also
 * watches the processes that could free it: the head waiter every holder,
 * every other waiter the one just ahead of it. No waiter polls on a timer.
 *
 * Several slots per process. A process may hold any number of slots of a
 * gate, each a holder record of its own, each request taken in line like
 * any other and freed when released or when the process is gone. A
 * request of weight K becomes K holder records sharing its ticket, given
 * at once when K are free and its turn has come; until then it stays at
 * the head, and nobody behind it passes it.
 *
 * Priorities. A request joins the line behind every waiter of its priority
 * or higher, and ahead of lower ones, with two bounds that make starvation
 * impossible: it never passes the head (the next to be served), nor a
 * waiter that already let GATE_MAX_PASS later requests ahead of it. So a
 * waiter is served after at most those ahead of it when it came plus
 * GATE_MAX_PASS more. No clock is involved: the order is decided once, at
 * arrival, in the transaction that queues.
 *
 * Unique keys. A request may carry a key: in the transaction that would
 * queue it, a live record of the same key (a waiter, or a holder whose
 * wrapper or command runs) refuses it, or, to a request that joins,
 * names the request to follow. A dead holder's key goes with it: dead
 * records are not looked at. When a keyed request's slots are given back,
 * its exit status is kept in the state (the last STATE_MAX_RESULTS), where
 * a follower finds it once the request's processes are gone.
 *
 * Resource needs. A waiter may need the machine to have memory free, or
 * its pressure stall or load below a bound (resource.h), when its command
 * starts. Only its own process checks that (the machine is the one its
 * command runs on; a store may be shared by several): a transaction of
 * another process that finds slots free for such a head waiter does not
 * promote it but wakes it, and the head promotes itself when its need is
 * met. While it is not, the head keeps its place and nobody behind it
 * passes it (FIFO, as for a heavy weight), and it looks again every
 * RES_PERIOD_MS: no kernel interface tells when memory is freed or a
 * stall or load falls. Only the head polls, and only while slots are
 * free for it; a need is checked when the command starts, never after.
 */
#include "config.h"

#include <sys/resource.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gate.h"
#include "killall.h"
#include "store.h"
#include "sys.h"

/*
 * Every limit a gate accepts must be one a state can hold and read back
 * (slots 0..limit-1), and no more: one number, named twice in lib/.
 */
_Static_assert(GATE_MAX_LIMIT == STATE_MAX_SLOTS,
    "GATE_MAX_LIMIT (gate.h) and STATE_MAX_SLOTS (state.h) must agree");
_Static_assert(GATE_HOST_MAX == STATE_HOST_LEN,
    "GATE_HOST_MAX (gate.h) and STATE_HOST_LEN (state.h) must agree");
_Static_assert(GATE_MAX_PRIO == STATE_MAX_PRIO &&
    GATE_KEY_MAX == STATE_KEY_MAX && GATE_NAME_MAX == STATE_NAME_MAX,
    "gate.h and state.h must agree on priorities and keys");

#define MAX_WAKES	8
#define MAX_GONE	4
#define STR2(x)		#x
#define STR(x)		STR2(x)

/* A slot this process holds. */
struct held {
	uint64_t	ticket;
	int		slot;
	int		has_cmd;	/* its record names the command */
};

/* Fds a waiter sleeps on: its wake fd, then those it watches. */
struct watch {
	struct pollfd	*fds;
	size_t		n;
	int		ready;		/* built by the last look, not slept */
	int		now;		/* something died already: re-check */
	int		degraded;	/* could not watch all: time out */
	int64_t		due;		/* CLOCK_MONOTONIC ns: look again
					   then (a need not met), or 0 */
};

struct gate {
	struct store	*store;
	char		name[GATE_NAME_MAX + 1];
	struct procid	self;
	uid_t		uid;
	int		wakefd;		/* -1 until first queued */
	store_addr	addr;		/* its address, in our waiter record */
	uint64_t	ticket;		/* of the request in line */
	int		queued;
	size_t		pos, nq;	/* last reported place in line */
	struct watch	watch;
	int		unwritable;	/* said that the state cannot be written
					   (1), or the server reached (2) */
	int		rejoin;		/* in line with no record known: join
					   it at the next look, quietly */
	int		lost_said;	/* "place was lost" said since our
					   record was last seen */
	int		bounded;	/* the wait has a deadline (-w, -n) */
	int64_t		wait_end;	/* that deadline (CLOCK_MONOTONIC ns) */
	int64_t		arrive_end;	/* a new arrival not yet seen in line
					   (rejoin) gives up then, or -1 */
	int		link_err;	/* why the last look failed (a server
					   out of reach or refusing), or 0 */
	struct held	*held;		/* slots held, in the order taken */
	size_t		nheld;
	size_t		last_active;
	unsigned	last_limit;
	int64_t		last_hold;	/* see gate_hold: until, or 0 */
	int		last_hold_why, last_limit_lost;
	char		last_parent[GATE_NAME_MAX + 1];
	int		status;		/* for followers; -1: none */
	uint64_t	follow;		/* ticket of the request followed */
	struct procid	follow_id;	/* its wrapper */
	gate_notify_fn	*notify;
	void		*notify_arg;
	int		res_held;	/* the last look: a need not met */
	int		key_unknown;	/* see gate_key_unknown */
	char		res_why[200];	/* which, in words */
};

/* One transaction's working copy. */
struct txn {
	struct store_txn s;
	struct gate	*g;
	int		readonly;	/* a snapshot: never committed */
	int		reaped_holder;	/* a holder went away */
	int		reaped;		/* reap_holders() ran */
	uint64_t	head;		/* ticket of the head waiter at start */
	int		has_head;
	store_addr	wake[MAX_WAKES];
	size_t		nwake;
	int		wake_all;	/* more than MAX_WAKES: see txn_wakes */
	store_addr	gone[MAX_GONE];	/* addresses of dead waiters reaped */
	size_t		ngone;
	int		looked;		/* op_look built our watch from this */
};

typedef int	txn_fn(struct txn *, void *);

int
gate_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= GATE_NAME_MAX && s[0] != '.' &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

int
gate_key_valid(const char *s)
{
	return state_key_valid(s);
}

/* --- the state, under a transaction ------------------------------- */

static int
alive(const struct txn *t, const struct procid *id)
{
	return t->g->store->ops->alive(t->g->store, id);
}

/*
 * A holder is alive while its wrapper or its command runs; in exec mode
 * they are one process, asked about once.
 */
static int
holder_alive(const struct txn *t, const struct entry *e)
{
	return alive(t, &e->wrapper) || (e->cmd.pid != 0 &&
	    (e->cmd.pid != e->wrapper.pid || e->cmd.start != e->wrapper.start) &&
	    alive(t, &e->cmd));
}

/* Queue a wake-up for a waiter's address. */
static void
wake_add(struct txn *t, const char *addr)
{
	if (t->nwake == MAX_WAKES)
		t->wake_all = 1;
	else
		(void)strlcpy(t->wake[t->nwake++], addr, sizeof(t->wake[0]));
}

/*
 * Note a dead waiter's address, for the store to tidy what it left (the
 * file store's FIFO) once the transaction is over; the first MAX_GONE of
 * a transaction: the others are tidied by later ones, or stay (harmless).
 */
static void
wake_dead(struct txn *t, const char *addr)
{
	if (addr[0] != '\0' && t->ngone < MAX_GONE)
		(void)strlcpy(t->gone[t->ngone++], addr, sizeof(t->gone[0]));
}

/* Lowest free slot index below the limit, or -1. */
static int
free_slot(const struct state *st)
{
	unsigned char used[STATE_MAX_SLOTS / 8];
	size_t i;
	int s;

	memset(used, 0, sizeof(used));
	for (i = 0; i < st->nh; i++)
		used[st->h[i].slot / 8] |= 1 << (st->h[i].slot % 8);
	for (s = 0; s < (int)st->limit; s++)
		if (!(used[s / 8] & (1 << (s % 8))))
			return s;
	return -1;
}

/* Drop dead holders. */
static void
reap_holders(struct txn *t)
{
	struct state *st = &t->s.st;
	size_t i;

	t->reaped = 1;
	for (i = 0; i < st->nh;)
		if (!holder_alive(t, &st->h[i])) {
			state_remove(st->h, &st->nh, i);
			t->s.dirty = t->reaped_holder = 1;
		} else
			i++;
}

/* Drop every dead waiter (status, and a waiter whose neighbour died). */
static void
reap_waiters(struct txn *t)
{
	struct state *st = &t->s.st;
	size_t i;

	for (i = 0; i < st->nw;)
		if (!alive(t, &st->w[i].wrapper)) {
			wake_dead(t, st->w[i].addr);
			state_remove(st->w, &st->nw, i);
			t->s.dirty = 1;
		} else
			i++;
}

/*
 * Drop dead waiters just ahead of position pos, nearest first, up to the
 * first live one: that is the one we watch. Dead waiters further ahead are
 * the business of the waiters behind them, so a wake costs O(1) checks.
 */
static void
reap_ahead(struct txn *t, size_t pos)
{
	while (pos > 0 && !alive(t, &t->s.st.w[pos - 1].wrapper)) {
		wake_dead(t, t->s.st.w[pos - 1].addr);
		state_remove(t->s.st.w, &t->s.st.nw, pos - 1);
		t->s.dirty = 1;
		pos--;
	}
}

/* The slots a record's request takes. */
static unsigned
weight_of(const struct entry *e)
{
	return e->weight > 1 ? e->weight : 1;
}

/*
 * The gate's own limit: during a hold (store_txn.hold_until) st.limit
 * shows the policy only as many slots as hold.
 */
static unsigned
gate_limit(const struct txn *t)
{
	return t->s.hold_until != 0 ? t->s.hold_limit : t->s.st.limit;
}

/*
 * 1 if k more slots fit under the limit. Dead holders matter only when
 * they would keep someone out: they are reaped (once a transaction) when
 * the gate looks full, so a take or a release on a gate with room looks
 * at no process at all, however many hold.
 */
static int
has_room(struct txn *t, unsigned k)
{
	const struct state *st = &t->s.st;

	if (st->nh + k <= st->limit)
		return 1;
	if (t->reaped)
		return 0;
	reap_holders(t);
	return st->nh + k <= st->limit;
}

/*
 * Add the k holder records of request e (taking its strings, copied for
 * all but the first), each at the lowest free slot; the caller checked
 * has_room. Only the first keeps the wake address. 0 or -1.
 */
static int
holders_add(struct state *st, struct entry *e)
{
	unsigned j, k = weight_of(e);
	size_t nh0 = st->nh;
	struct entry c;

	e->prio = 0;
	e->passed = 0;
	memset(&e->need, 0, sizeof(e->need));
	for (j = 0; j < k; j++) {
		c = *e;
		c.slot = free_slot(st);
		if (j > 0) {
			c.addr[0] = '\0';
			c.strs_shared = 0;
			if (e->strs != NULL &&
			    (c.strs = malloc(e->strslen + 1)) == NULL)
				goto fail;
			if (e->strs != NULL)
				memcpy(c.strs, e->strs, e->strslen + 1);
		}
		if (state_add(&st->h, &st->nh, &c) == -1) {
			if (j > 0)
				free(c.strs);
			goto fail;
		}
	}
	return 0;
fail:
	if (st->nh > nh0)
		st->h[nh0].strs = NULL;	/* still e's */
	while (st->nh > nh0)
		state_remove(st->h, &st->nh, st->nh - 1);
	return -1;
}

/* Turn waiter w[0] into the holder records of its request. */
static int
promote_head(struct txn *t, int64_t now)
{
	struct state *st = &t->s.st;
	struct entry e = st->w[0];

	st->wait_ns += (uint64_t)(now > e.time_ns ? now - e.time_ns : 0);
	e.time_ns = now;
	if (holders_add(st, &e) == -1)
		return -1;
	wake_add(t, e.addr);
	st->w[0].strs = NULL;		/* moved */
	state_remove(st->w, &st->nw, 0);
	st->acquired++;
	t->s.dirty = 1;
	return 0;
}

static int	ours(const struct gate *, const struct entry *, uint64_t);

/*
 * A head waiter with resource needs and slots free for it: 1 if it may
 * have them now. Its own process checks the needs (top comment); any
 * other wakes it to do so, and 0: it stays where it is. Checked and not
 * met (or not readable, which is said the same way), 0 and g->res_held.
 */
static int
head_admits(struct txn *t, const struct entry *h)
{
	struct gate *g = t->g;

	if (!g->queued || !ours(g, h, g->ticket)) {
		wake_add(t, h->addr);
		return 0;
	}
	if (res_check(&h->need, g->res_why, sizeof(g->res_why)) == 1)
		return 1;
	g->res_held = 1;
	return 0;
}

/* Hand free capacity to the waiters at the head, in order. */
static int
promote(struct txn *t)
{
	int64_t now = real_ns();

	while (t->s.st.nw > 0 && has_room(t, weight_of(&t->s.st.w[0]))) {
		if (!alive(t, &t->s.st.w[0].wrapper)) {
			wake_dead(t, t->s.st.w[0].addr);
			state_remove(t->s.st.w, &t->s.st.nw, 0);
			t->s.dirty = 1;
			continue;
		}
		if (t->s.st.w[0].need.has != 0 &&
		    !head_admits(t, &t->s.st.w[0]))
			return 0;
		if (promote_head(t, now) == -1)
			return -1;
	}
	return 0;
}

/*
 * Join the line at e's priority (see the top comment: never ahead of the
 * head, nor of a waiter passed GATE_MAX_PASS times), taking its strings;
 * the waiter now behind it is woken to watch it instead. 0 or -1.
 */
static int
queue_insert(struct txn *t, struct entry *e)
{
	struct state *st = &t->s.st;
	size_t pos = st->nw, k;

	while (pos > 1 && st->w[pos - 1].prio < e->prio &&
	    st->w[pos - 1].passed < GATE_MAX_PASS)
		pos--;
	if (state_add(&st->w, &st->nw, e) == -1)
		return -1;
	t->s.dirty = 1;
	if (pos == st->nw - 1)
		return 0;
	for (k = pos; k < st->nw - 1; k++)
		st->w[k].passed++;
	memmove(&st->w[pos + 1], &st->w[pos], (st->nw - 1 - pos) *
	    sizeof(*st->w));
	st->w[pos] = *e;
	wake_add(t, st->w[pos + 1].addr);
	return 0;
}

/* --- transactions ---------------------------------------------------- */

/*
 * The wake-ups to send: those queued, and the head waiter when it changed
 * or a holder went away, so it re-reads whom to watch. Past MAX_WAKES,
 * every waiter, and every holder that still has a wake address, which
 * only those promoted in this transaction have. *np set; NULL on ENOMEM
 * with *np 0 (the promoted then still watch what could free them).
 */
static store_addr *
txn_wakes(struct txn *t, size_t *np)
{
	const struct state *st = &t->s.st;
	store_addr *v;
	size_t i, n = 0;

	if (st->nw > 0 && (t->reaped_holder || !t->has_head ||
	    st->w[0].ticket != t->head))
		wake_add(t, st->w[0].addr);
	*np = t->nwake;
	if (!t->wake_all)
		return t->wake;
	*np = 0;
	if ((v = reallocarray(NULL, st->nw + st->nh + 1, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < st->nw; i++)
		(void)strlcpy(v[n++], st->w[i].addr, sizeof(*v));
	for (i = 0; i < st->nh; i++)
		if (st->h[i].addr[0] != '\0')
			(void)strlcpy(v[n++], st->h[i].addr, sizeof(*v));
	*np = n;
	return v;
}

static void	watch_close(struct watch *);

/*
 * 1 if our own address is among the wake-ups: a transaction of ours moved
 * our own place in line, and the store sends nothing to its sender.
 */
static int
woken(const struct gate *g, const store_addr *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], g->addr) == 0)
			return 1;
	return 0;
}

/*
 * 1 if the one wake-up is to the head waiter this transaction began with,
 * promoted by a holder: that waiter watches every holder, the sender too,
 * so the wake may go after the commit (store_txn.wake_late) and carry the
 * news that the slot is stored: a sender killed before it sends is seen
 * to die. Wakes from others (a limit raise) go before, as they always did.
 */
static int
wakes_head_only(const struct txn *t, const store_addr *v, size_t n)
{
	const struct state *st = &t->s.st;
	size_t i;

	if (n != 1 || t->g->nheld == 0 || !t->has_head)
		return 0;
	for (i = 0; i < st->nh; i++)
		if (st->h[i].ticket == t->head)
			return strcmp(st->h[i].addr, v[0]) == 0;
	return 0;
}

/* End a transaction: wake who must re-check, store if changed. */
static int
txn_commit(struct txn *t)
{
	struct store *s = t->g->store;
	store_addr *v;
	size_t n;
	int r;

	t->g->last_active = t->s.st.nh;
	t->g->last_limit = t->s.hold_until != 0 ? t->s.hold_limit :
	    t->s.st.limit;
	t->g->last_hold = t->s.hold_until;
	t->g->last_hold_why = t->s.hold_why;
	t->g->last_limit_lost = t->s.limit_lost;
	(void)strlcpy(t->g->last_parent, t->s.st.parent,
	    sizeof(t->g->last_parent));
	v = txn_wakes(t, &n);
	if (t->g->queued && !t->looked && woken(t->g, v, n))
		watch_close(&t->g->watch);	/* look again before sleeping */
	t->s.wake_late = v == t->wake && wakes_head_only(t, v, n);
	r = s->ops->commit(s, &t->s, v, n);
	if (v != t->wake)
		free(v);
	for (n = 0; s->ops->forget != NULL && n < t->ngone; n++)
		s->ops->forget(s, t->gone[n]);
	return r;
}

/*
 * One transaction: begin, fn, then commit, or abort when fn fails.
 * Returns what fn returned (>= 0), or -1. A gate never made (and not to
 * be made) runs fn on the defaults, and nothing is written.
 */
static int
txn_once(struct gate *g, txn_fn *fn, void *arg)
{
	struct store *s = g->store;
	struct txn t;
	int r;

	memset(&t, 0, sizeof(t));
	t.g = g;
	if (s->ops->begin(s, &t.s) == -1)
		return -1;
	if ((t.has_head = t.s.st.nw > 0))
		t.head = t.s.st.w[0].ticket;
	if ((r = fn(&t, arg)) == -1) {
		s->ops->abort(s, &t.s);
		return -1;
	}
	return txn_commit(&t) == -1 ? -1 : r;
}

static txn_fn op_enqueue;

/*
 * A store without a lock (Redis: WATCH, MULTI, EXEC) fails a commit with
 * EAGAIN when another wrote first, having written nothing: what fn did
 * to this process's view is undone, and it runs again on the new state.
 * A connection lost mid-transaction (ECONNRESET: the server closed it, a
 * proxy, a failover) runs it again too, a few times, but for a new
 * request (op_enqueue: see gate_enqueue): each other fn finds our
 * records by the ticket it knows, so a commit that did land unbeknown
 * to us is found, not made twice (and a ticket made by fn is kept).
 */
static int
txn_run(struct gate *g, txn_fn *fn, void *arg)
{
	size_t nheld = g->nheld;
	uint64_t ticket = g->ticket;
	int queued = g->queued, r, has_cmd = 0, lost = 0;

	if (nheld > 0)
		has_cmd = g->held[nheld - 1].has_cmd;
	while ((r = txn_once(g, fn, arg)) == -1 && g->store->ops->optimistic &&
	    (errno == EAGAIN || (errno == ECONNRESET && fn != op_enqueue &&
	    lost++ < 3))) {
		g->nheld = nheld;
		if (errno == EAGAIN)
			g->ticket = ticket;
		g->queued = queued;
		if (nheld > 0)
			g->held[nheld - 1].has_cmd = has_cmd;
		watch_close(&g->watch);
	}
	return r;
}

/*
 * 1 if e says the server of a store of leases (Redis) could not be
 * reached, lost our connection, or cannot serve for a moment (it is
 * restarting, failing over, full, or has too many clients).
 */
static int
link_down(int e)
{
	switch (e) {
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case EPIPE:
	case EIO:
	case ENOANO:		/* LOADING: a server restarting */
	case EREMCHG:		/* READONLY: a failover under way */
	case ENOSR:		/* OOM: maxmemory, until keys expire */
	case EXFULL:		/* maxclients, until some leave */
	case ESTRPIPE:		/* BUSY: a script running */
	case ENOLINK:		/* MASTERDOWN: a replica cut off */
	case ENETUNREACH:
	case EHOSTUNREACH:
	case EADDRNOTAVAIL:	/* its name does not resolve, for now */
		return 1;
	default:
		return 0;
	}
}

/*
 * 1 if e says the server of a store of leases (Redis) cannot be had for
 * a while (link_down): a waiter stays in line through it. Out of time
 * (ETIME) counts only for a wait without a deadline: with one, its
 * deadline has come.
 */
static int
lost_link(const struct gate *g, int e)
{
	if (g->store->ops->lease == NULL)
		return 0;
	return e == ETIME ? !g->bounded : link_down(e);
}

/*
 * A look for those who only read (status, is-active): fn runs on the state
 * as it stands, read without the lock, and what it changes (dead records
 * it filters out) is thrown away: the head waiter reaps dead holders
 * itself. A store that cannot read without its lock runs fn in a
 * transaction it then aborts.
 */
static int
txn_look(struct gate *g, txn_fn *fn, void *arg)
{
	struct store *s = g->store;
	struct txn t;
	int r;

	memset(&t, 0, sizeof(t));
	t.g = g;
	t.readonly = 1;
	if (s->ops->snapshot == NULL) {
		if (s->ops->begin(s, &t.s) == -1)
			return -1;
		r = fn(&t, arg);
		s->ops->abort(s, &t.s);
		return r;
	}
	if (s->ops->snapshot(s, &t.s) == -1)
		return -1;
	r = fn(&t, arg);
	state_free(&t.s.st);
	return r;
}

void
gate_set_wait(struct gate *g, const struct gate_wait *w)
{
	g->bounded = w != NULL && w->deadline >= 0;
	g->wait_end = g->bounded ? w->deadline : -1;
	if (g->store->ops->set_wait != NULL)
		g->store->ops->set_wait(g->store, w);
}

/* --- this process's records ------------------------------------------ */

/* Our record of ticket: holder (1) or waiter (0), index in *idx; or -1. */
static int
find_self(const struct gate *g, const struct state *st, uint64_t ticket,
    size_t *idx)
{
	size_t i;

	for (i = 0; i < st->nh; i++)
		if (st->h[i].ticket == ticket &&
		    st->h[i].wrapper.pid == g->self.pid &&
		    st->h[i].wrapper.start == g->self.start) {
			*idx = i;
			return 1;
		}
	for (i = 0; i < st->nw; i++)
		if (st->w[i].ticket == ticket &&
		    st->w[i].wrapper.pid == g->self.pid &&
		    st->w[i].wrapper.start == g->self.start) {
			*idx = i;
			return 0;
		}
	return -1;
}

/* Note a slot as ours. */
static int
held_add(struct gate *g, uint64_t ticket, int slot, int has_cmd)
{
	struct held *h;

	h = reallocarray(g->held, g->nheld + 1, sizeof(*g->held));
	if (h == NULL)
		return -1;
	g->held = h;
	h[g->nheld].ticket = ticket;
	h[g->nheld].slot = slot;
	h[g->nheld].has_cmd = has_cmd;
	g->nheld++;
	return 0;
}

/* Forget held slot k (its record is gone). */
static void
held_drop(struct gate *g, size_t k)
{
	memmove(&g->held[k], &g->held[k + 1],
	    (g->nheld - k - 1) * sizeof(*g->held));
	g->nheld--;
}

/* 1 if holder record e is ours, of ticket. */
static int
ours(const struct gate *g, const struct entry *e, uint64_t ticket)
{
	return e->ticket == ticket && e->wrapper.pid == g->self.pid &&
	    e->wrapper.start == g->self.start;
}

/*
 * We hold the holder records of ticket (one a slot of the request): note
 * the slots, and in exec mode record this process as the command too, in
 * the same transaction.
 */
static int
claim(struct txn *t, uint64_t ticket, const struct gate_req *req)
{
	struct gate *g = t->g;
	struct entry *e;
	size_t i;

	g->queued = 0;
	for (i = 0; i < t->s.st.nh; i++) {
		e = &t->s.st.h[i];
		if (!ours(g, e, ticket))
			continue;
		if (req != NULL && req->self_cmd && e->cmd.pid == 0) {
			e->cmd = g->self;
			t->s.dirty = 1;
		}
		if (held_add(g, e->ticket, e->slot, e->cmd.pid != 0) == -1)
			return -1;
	}
	return 0;
}

/* A new record for this process, with a new ticket. */
static int
self_entry(struct txn *t, const struct gate_req *req, struct entry *e)
{
	struct gate *g = t->g;

	memset(e, 0, sizeof(*e));
	e->slot = -1;			/* a waiter until promoted */
	e->ticket = g->ticket = t->s.st.next_ticket++;
	e->wrapper = g->self;
	if (req != NULL && req->self_cmd)
		e->cmd = g->self;	/* promotion then needs no second step */
	e->uid = g->uid;
	e->time_ns = real_ns();
	e->weight = req != NULL && req->weight > 1 ? req->weight : 1;
	e->prio = req != NULL ? req->priority : 0;
	if (req != NULL && req->key != NULL)
		(void)strlcpy(e->key, req->key, sizeof(e->key));
	if (req != NULL && req->need != NULL)
		e->need = *req->need;
	(void)strlcpy(e->addr, g->addr, sizeof(e->addr));
	t->s.dirty = 1;
	return state_entry_encode(e, req ? req->cwd : NULL,
	    req ? req->command : NULL);
}

/*
 * 1 (errno EUSERS) if the line holds as many waiters as a state may: one
 * more would be written and then refused by every reader.
 */
static int
queue_full(const struct txn *t)
{
	if (t->s.st.nw < STATE_MAX_WAITERS)
		return 0;
	errno = EUSERS;
	return 1;
}

/* Take the free slots now if nobody is queued; 1 taken, 0 not. */
static int
take_now(struct txn *t, const struct gate_req *req)
{
	struct entry e;

	if (t->s.st.nw > 0 ||
	    !has_room(t, req != NULL && req->weight > 1 ? req->weight : 1))
		return 0;
	if (req != NULL && req->need != NULL && req->need->has != 0 &&
	    res_check(req->need, t->g->res_why, sizeof(t->g->res_why)) != 1) {
		t->g->res_held = 1;
		return 0;
	}
	if (self_entry(t, req, &e) == -1)
		return -1;
	e.addr[0] = '\0';		/* a holder is woken by nobody */
	if ((req != NULL && req->cmd > 0 && proc_id(req->cmd, &e.cmd) == -1) ||
	    holders_add(&t->s.st, &e) == -1) {
		free(e.strs);
		return -1;
	}
	t->s.st.acquired++;
	return claim(t, e.ticket, NULL) == -1 ? -1 : 1;
}

/* --- opening --------------------------------------------------------- */

/* The store a locator names; *rest is what the store is given. */
static const struct store_ops *
store_of(const char *loc, const char **rest)
{
	static const struct store_ops *const stores[] = { &store_file_ops,
#ifdef HAVE_HIREDIS
		&store_redis_ops,
#endif
	};
	size_t i, n;

	if (loc[0] == '/') {
		*rest = loc;		/* a directory: the file store */
		return &store_file_ops;
	}
	for (i = 0; i < sizeof(stores) / sizeof(stores[0]); i++) {
		n = strlen(stores[i]->scheme);
		if (strncmp(loc, stores[i]->scheme, n) == 0 && loc[n] == ':') {
			*rest = loc + n + 1;
			if (strncmp(*rest, "//", 2) == 0 && (*rest)[2] == '/')
				*rest += 2;	/* file:///run/gaterun */
			if (stores[i] == &store_file_ops && **rest != '/')
				break;
			return stores[i];
		}
	}
	/* A store known but not built in: said so (gate_strerror). */
	errno = strncmp(loc, "redis:", 6) == 0 ? ENOPROTOOPT : EPROTONOSUPPORT;
	return NULL;
}

int
gate_open_store(struct gate **gp, const struct store_ops *ops,
    const char *loc, const char *name, unsigned deflimit, int create,
    gate_notify_fn *fn, void *arg)
{
	struct gate *g;

	if (!gate_name_valid(name) || deflimit > GATE_MAX_LIMIT) {
		errno = EINVAL;
		return -1;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -1;
	g->wakefd = -1;
	g->status = -1;
	g->arrive_end = gate_open_wait()->deadline; /* run.c's, for a job */
	g->uid = geteuid();
	g->notify = fn;
	g->notify_arg = arg;
	(void)strlcpy(g->name, name, sizeof(g->name));
	if (proc_self(&g->self) == -1 ||
	    ops->open(&g->store, loc, name, deflimit, create, fn, arg) == -1) {
		free(g);
		return -1;
	}
	*gp = g;
	return 0;
}

int
gate_lock_store(const char *loc)
{
	const char *rest;
	int fd, e;

	if (store_of(loc, &rest) == NULL)
		return -1;
	/* Only the file store: a flock on its directory (flock(2) takes one). */
	if ((fd = open(rest, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (lock_fd(fd) == -1) {
		e = errno;
		(void)xclose(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* See gate.h: an open worth trying again in a moment. */
int
gate_open_transient(const char *loc, int e)
{
	const struct store_ops *ops;
	const char *rest;
	int r;

	ops = store_of(loc, &rest);
	r = ops != NULL && ops->lease != NULL && (e == ETIME || link_down(e));
	errno = e;
	return r;
}

static struct gate_wait open_wait = { -1, NULL, NULL }; /* see below */

/* See gate.h: how the opens that follow may wait for a server. */
void
gate_set_open_wait(const struct gate_wait *w)
{
	struct gate_wait none = { -1, NULL, NULL };

	open_wait = w != NULL ? *w : none;
}

/* See store.h: that wait, for a store's open. */
const struct gate_wait *
gate_open_wait(void)
{
	return &open_wait;
}

int
gate_open(struct gate **gp, const char *loc, const char *name,
    unsigned deflimit, int create, gate_notify_fn *fn, void *arg)
{
	const struct store_ops *ops;
	const char *rest;

	if ((ops = store_of(loc, &rest)) == NULL)
		return -1;
	return gate_open_store(gp, ops, rest, name, deflimit, create, fn, arg);
}

int
gate_list(const char *loc, char ***names, size_t *n)
{
	const struct store_ops *ops;
	const char *rest;

	*names = NULL;
	*n = 0;
	if ((ops = store_of(loc, &rest)) == NULL)
		return -1;
	return ops->list(rest, names, n);
}

void
gate_list_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The Redis store's errors (store_redis*.c), or NULL. */
static const char *
redis_strerror(int e)
{
	switch (e) {
	case ENOPROTOOPT:
		return "this gaterun was built without the Redis store "
		    "(configure found no hiredis: install libhiredis-dev and "
		    "build again)";
	case EDESTADDRREQ:
		return "not a Redis locator: "
		    "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (an IPv6 HOST "
		    "in brackets: [::1])";
	case EKEYREJECTED:
		return "the Redis server refused the password (give it in the "
		    "locator or in $GATERUN_REDIS_PASSWORD_FILE)";
	case EKEYEXPIRED:	/* NOAUTH */
		return "the Redis server requires a password and none was "
		    "given (give it in the locator or in "
		    "$GATERUN_REDIS_PASSWORD_FILE)";
	case EBADRQC:		/* NOPERM */
		/* Every command store_redis*.c sends; README and the man
		   page ("NOPERM") say the same. */
		return "the Redis user lacks a permission (NOPERM): gaterun "
		    "needs the keys and channels gaterun:* and the commands "
		    "GET SET DEL EXPIRE PEXPIRE SADD SMEMBERS SISMEMBER SCARD "
		    "HSET HGET RPUSH BLPOP WATCH UNWATCH MULTI EXEC TIME "
		    "PUBLISH SUBSCRIBE (and AUTH with a password, SELECT for a "
		    "database other than 0)";
	case EREMCHG:
		return "the Redis server is a read-only replica (READONLY: "
		    "after a failover, the master is elsewhere)";
	case ENOSR:
		return "the Redis server is out of memory (OOM: its maxmemory "
		    "is reached)";
	case EXFULL:
		return "the Redis server has too many clients (its maxclients "
		    "is reached)";
	case ENOANO:
		return "the Redis server is loading its data (LOADING)";
	case ESTRPIPE:
		return "the Redis server is busy running a script (BUSY)";
	case ENOLINK:
		return "the Redis server is a replica cut off from its master "
		    "(MASTERDOWN)";
	case EKEYREVOKED:
		return "a password was given (in the locator or "
		    "$GATERUN_REDIS_PASSWORD_FILE) but the Redis server has none "
		    "set: give none, or set one there (requirepass)";
	case EILSEQ:
		return "the Redis key gaterun:epoch holds a value gaterun did not "
		    "write: is the database shared with another program? (left "
		    "as it is; delete it if gaterun alone uses the database)";
	case ENOKEY:
		return "cannot read the Redis password file named by "
		    "$GATERUN_REDIS_PASSWORD_FILE";
	case EPROTOTYPE:	/* WRONGTYPE (EMEDIUMTYPE is the file store's) */
		return "a Redis key gaterun uses holds another type of value "
		    "(WRONGTYPE): is the database shared with another program?";
	case EBADMSG:
		return "the gate's Redis key holds something that is not a "
		    "gate's state: refused";
	case ECONNREFUSED:
		return "the Redis server refused the connection (is it running "
		    "there, on that port?)";
	case ECONNRESET:
		return "the connection to the Redis server was lost";
	case ETIME:
		return "the Redis server did not answer in time";
	case EADDRNOTAVAIL:
		return "cannot find the Redis server: its host name does not "
		    "resolve";
	case EDOM:
		return "the Redis server has no database of that number (see "
		    "its 'databases' setting)";
	case ENOTUNIQ:
		return "$GATERUN_HOST is not a host id: 1 to 64 characters, "
		    "none of them a space or a control character (one changed "
		    "to fit would name the same host as another value)";
	default:
		return NULL;
	}
}

const char *
gate_strerror(int e)
{
	switch (e) {
	case PROC_EFOREIGN:
		return "/proc belongs to another PID namespace (it names another "
		    "process as this one): refused, lest another process be "
		    "recorded (give this namespace its own /proc: unshare "
		    "--mount-proc)";
	case PROC_EPIDNS:
		return "the gate is in use by processes of another PID "
		    "namespace, which cannot be checked from this one: refused "
		    "(share a gate directory between PID namespaces only "
		    "while one of them uses it)";
	case ELOOP:
		return "a symlink stands where the state directory or a state "
		    "file should be: refused";
	case EMEDIUMTYPE:
		return "something other than a file (a directory, a FIFO, a "
		    "device) stands where a state or lock file should be: "
		    "refused";
	case EPERM:
		return "the state directory or file is not owned by you or "
		    "root, or others may write it: refused";
	case EPROTONOSUPPORT:
		return "not a store this gaterun knows (give a directory, or "
		    "file:DIRECTORY)";
	case ENOLCK:
		return "its lock was not free in time (each change holds it for "
		    "microseconds: its holder is stopped or stuck)";
	case EUSERS:
		return "the gate's queue is full (" STR(STATE_MAX_WAITERS)
		    " waiting): try again later";
	case EFBIG:
		return "the gate's state would grow larger than gaterun reads "
		    "back: refused";
	case E2BIG:
		return "the request's weight is above the gate's limit: it "
		    "could never run";
	default:
		return redis_strerror(e) != NULL ? redis_strerror(e) :
		    strerror(e);
	}
}

int
gate_share(const char *loc, gid_t gid)
{
	const struct store_ops *ops;
	const char *rest;

	if ((ops = store_of(loc, &rest)) == NULL)
		return -1;
	if (ops->share == NULL) {
		errno = ENOTSUP;
		return -1;
	}
	return ops->share(rest, gid);
}

/* --- watching a store ------------------------------------------------ */

struct gate_watch {
	const struct store_ops	*ops;
	void			*w;
};

int
gate_watch_open(struct gate_watch **wp, const char *loc)
{
	const struct store_ops *ops;
	struct gate_watch *w;
	const char *rest;

	if ((ops = store_of(loc, &rest)) == NULL)
		return -1;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->ops = ops;
	if (ops->watch_open(rest, &w->w) == -1) {
		free(w);
		return -1;
	}
	*wp = w;
	return 0;
}

int
gate_watch_fd(const struct gate_watch *w)
{
	return w->ops->watch_fd(w->w);
}

int
gate_watch_read(struct gate_watch *w, void (*fn)(void *, const char *),
    void *arg)
{
	return w->ops->watch_read(w->w, fn, arg);
}

void
gate_watch_close(struct gate_watch *w)
{
	if (w == NULL)
		return;
	w->ops->watch_close(w->w);
	free(w);
}

/* --- waiting in line ------------------------------------------------- */

static void
watch_close(struct watch *w)
{
	size_t i;

	for (i = 1; i < w->n; i++)
		(void)xclose(w->fds[i].fd);
	free(w->fds);
	memset(w, 0, sizeof(*w));
}

/* Watch id's end; one already ended means "re-check now". */
static void
watch_add(struct gate *g, struct watch *w, const struct procid *id)
{
	int fd;

	if (w->now || w->degraded)
		return;
	if ((fd = g->store->ops->watch(g->store, id)) == -1) {
		if (errno == ESRCH)
			w->now = 1;
		else
			w->degraded = 1;	/* EMFILE and the like */
		return;
	}
	w->fds[w->n].fd = fd;
	w->fds[w->n].events = POLLIN;
	w->n++;
}

/*
 * Whom to watch from position pos: the head watches every holder (the
 * wrapper while it lives, else the command); others the waiter ahead.
 */
static int
watch_build(struct txn *t, size_t pos, struct watch *w)
{
	const struct state *st = &t->s.st;
	struct gate *g = t->g;
	size_t i;

	memset(w, 0, sizeof(*w));
	if ((w->fds = reallocarray(NULL, st->nh + 2, sizeof(*w->fds))) == NULL)
		return -1;
	w->fds[0].fd = g->wakefd;
	w->fds[0].events = POLLIN;
	w->n = 1;
	if (pos > 0) {
		watch_add(g, w, &st->w[pos - 1].wrapper);
		return 0;
	}
	for (i = 0; i < st->nh; i++)
		if (alive(t, &st->h[i].wrapper))
			watch_add(g, w, &st->h[i].wrapper);
		else if (st->h[i].cmd.pid > 0)
			watch_add(g, w, &st->h[i].cmd);
		else
			w->now = 1;	/* a dead holder: reap it */
	return 0;
}

/* What a waiter says when a damaged or removed state lost its place
 * (on a Redis store: when the server lost it). */
static const char *
lost_msg(const struct gate *g)
{
	static char buf[200];

	if (g->store->ops->lease != NULL)	/* Redis: lost on the server */
		(void)snprintf(buf, sizeof(buf), "gate '%s': this waiter's "
		    "place was lost on the Redis server (it lost its data, or "
		    "did not answer within the lease); queueing again",
		    g->name);
	else
		(void)snprintf(buf, sizeof(buf), "gate '%s': this waiter's "
		    "place was lost with the damaged state; queueing again",
		    g->name);
	return buf;
}

/*
 * When a new arrival that could not join the line yet (its server out of
 * reach or refusing: rejoin) gives up: at -w's deadline, else at the end
 * of its lease from its arrival (arrive_start), as a job that arrives
 * during an outage does (run.c, open_bounded).
 */
static int64_t
arrive_by(const struct gate *g)
{
	return g->bounded ? g->wait_end : g->arrive_end;
}

/*
 * A new arrival could not join: its patience runs from its open (the
 * deadline run.c gave it) if some is left, else for a lease from now.
 */
static void
arrive_start(struct gate *g, int e)
{
	int64_t now = mono_ns();

	if (g->arrive_end < now)
		g->arrive_end = now + 3 * gate_lease_period(g);
	g->queued = g->rejoin = 1;
	g->link_err = e;
}

/* What a waiter says when its state cannot be written. */
static const char *
unwritten_msg(const struct gate *g, int e)
{
	static char buf[300];

	if (lost_link(g, e) && g->rejoin)	/* not in line yet */
		(void)snprintf(buf, sizeof(buf), "gate '%s': %s: trying again "
		    "every second, for up to %.0f s", g->name,
		    gate_strerror(e), (double)(arrive_by(g) - mono_ns()) / 1e9);
	else if (lost_link(g, e))
		(void)snprintf(buf, sizeof(buf), "gate '%s': %s: still in "
		    "line, trying again every second", g->name,
		    gate_strerror(e));
	else
		(void)snprintf(buf, sizeof(buf), "gate '%s': cannot write its "
		    "state (%s): still in line, looking again every second",
		    g->name, strerror(e));
	return buf;
}

/* What a waiter says when its server answers again. */
static const char *
reached_msg(const struct gate *g)
{
	static char buf[200];

	(void)snprintf(buf, sizeof(buf), "gate '%s': the Redis server "
	    "answers again: %s", g->name, g->rejoin ? "in line" :
	    "still in line");
	return buf;
}

/* What a look at the line found. */
struct look {
	const struct gate_req	*req;
	size_t			pos, nq;
};

/*
 * One look at the state while queued: reap the dead ahead of us, take a
 * slot if granted, rejoin if our record was lost. Returns 1 (holding),
 * 0 (still waiting; g->watch built), -1.
 */
static int
op_look(struct txn *t, void *arg)
{
	struct look *l = arg;
	struct gate *g = t->g;
	struct entry e;
	size_t i;
	int where;

	g->res_held = 0;
	if ((where = find_self(g, &t->s.st, g->ticket, &i)) == 0)
		reap_ahead(t, i);
	if (where != -1)
		g->lost_said = 0;
	if (promote(t) == -1)
		return -1;
	if ((where = find_self(g, &t->s.st, g->ticket, &i)) == -1) {
		/* Once per loss: not again when a commit is run again. */
		if (g->notify != NULL && !g->rejoin && !g->lost_said)
			g->notify(g->notify_arg, lost_msg(g));
		g->lost_said = 1;
		if (g->wakefd == -1 && (g->wakefd = t->g->store->ops->listen(
		    t->g->store, g->addr)) == -1)
			return -1;
		if (queue_full(t) || self_entry(t, l->req, &e) == -1 ||
		    queue_insert(t, &e) == -1 ||
		    promote(t) == -1 ||
		    (where = find_self(g, &t->s.st, g->ticket, &i)) == -1)
			return -1;	/* just added: always found */
	}
	if (where == 1)
		return claim(t, g->ticket, l->req) == -1 ? -1 : 1;
	l->pos = i;
	l->nq = t->s.st.nw;
	t->looked = 1;
	if (watch_build(t, i, &g->watch) == -1)
		return -1;
	if (i == 0 && g->res_held)	/* the head, held by a need */
		g->watch.due = mono_ns() + RES_PERIOD_MS * INT64_C(1000000);
	return 0;
}

/* Leaving the line: keep a slot granted meanwhile, or give all up. */
struct leave {
	int			keep;
	const struct gate_req	*req;
};

static int
op_leave(struct txn *t, void *arg)
{
	const struct leave *lv = arg;
	struct gate *g = t->g;
	size_t i;
	int where;

	where = find_self(g, &t->s.st, g->ticket, &i);
	g->queued = 0;
	if (where == 1 && lv->keep)
		return claim(t, g->ticket, lv->req) == -1 ? -1 : 1;
	if (where == 1) {
		for (i = t->s.st.nh; i-- > 0;)
			if (ours(g, &t->s.st.h[i], g->ticket))
				state_remove(t->s.st.h, &t->s.st.nh, i);
		t->reaped_holder = 1;
	} else if (where == 0)
		state_remove(t->s.st.w, &t->s.st.nw, i);
	t->s.dirty |= where != -1;
	return promote(t) == -1 ? -1 : 0;
}

/* 1 if a signal told the waiter to leave. */
static int
told_stop(const struct gate_wait *gw)
{
	return gw->stop != NULL && *gw->stop;
}

/*
 * Sleep until woken, a watched process ends, a signal, the deadline, or
 * the time to look at a need again. Told to leave already (a signal let
 * in while a store waited for its server: Redis), no sleep at all.
 */
static int
wait_sleep(const struct gate_wait *gw, struct watch *w)
{
	struct timespec ts, *tsp = NULL;
	int64_t left;
	int r;

	if (w->now || told_stop(gw))
		return 0;
	if (gw->deadline >= 0 || w->due > 0) {
		left = gw->deadline >= 0 && (w->due == 0 ||
		    gw->deadline < w->due) ? gw->deadline : w->due;
		left -= mono_ns();
		if (left < 0)
			left = 0;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		tsp = &ts;
	}
#ifdef __GLIBC__
	/*
	 * A long queue's state passed through our heap (about 200 kB with
	 * 1000 queued): give it back before a sleep that may last hours,
	 * so a waiter's footprint stays that of a small process.
	 */
	(void)malloc_trim(0);
#endif
	/* Only when the kernel would not let us watch everyone. */
	if (w->degraded && (tsp == NULL || ts.tv_sec >= 1)) {
		ts.tv_sec = 1;
		ts.tv_nsec = 0;
		tsp = &ts;
	}
	r = ppoll(w->fds, w->n, tsp, gw->sigmask);
	if (r > 0 && w->degraded) {
		/*
		 * Ready at once lets no pending signal in (only an EINTR
		 * does), and a look that fails (its server gone) can leave
		 * the wake fd ready every time (the renewal timer fired
		 * meanwhile): a TERM would wait for ever. No fd and no time
		 * lets it in.
		 */
		ts.tv_sec = ts.tv_nsec = 0;
		(void)ppoll(NULL, 0, &ts, gw->sigmask);
	}
	return r == -1 && errno != EINTR ? -1 : 0;
}

/* Raise the fd limit for watching many holders; see nofile_restore. */
static void
nofile_raise(struct rlimit *saved)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, saved) == -1) {
		saved->rlim_cur = RLIM_INFINITY;
		return;
	}
	rl = *saved;
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur > 65536)
		rl.rlim_cur = 65536;
	if (rl.rlim_cur > saved->rlim_cur)
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	else
		saved->rlim_cur = RLIM_INFINITY;	/* nothing to undo */
}

static void
nofile_restore(const struct rlimit *saved)
{
	if (saved->rlim_cur != RLIM_INFINITY)
		(void)setrlimit(RLIMIT_NOFILE, saved);
}

/* After a sleep: leave the line when told to stop or out of time. */
static int
wait_after(struct gate *g, const struct gate_req *req,
    const struct gate_wait *gw)
{
	struct leave lv = { 0, req };
	int r;

	/*
	 * A server out of reach cannot take our record away: it ends with
	 * its lease (on this host, with us). Told to stop, we stop; out of
	 * time, the server did not answer in it (ETIME).
	 */
	if (gw->stop != NULL && *gw->stop) {
		if ((r = txn_run(g, op_leave, &lv)) == 0 ||
		    (r == -1 && (lost_link(g, errno) || errno == ETIME))) {
			errno = EINTR;
			r = -1;
		}
		return r;
	}
	if (gw->deadline >= 0 && mono_ns() >= gw->deadline) {
		lv.keep = 1;
		if ((r = txn_run(g, op_leave, &lv)) == 0 && g->rejoin &&
		    g->link_err != 0) {
			errno = g->link_err;	/* never in line: say why */
			r = -1;
		} else if (r == 0) {
			errno = ETIMEDOUT;
			r = -1;
		} else if (r == -1 && lost_link(g, errno))	/* say why */
			errno = g->link_err != 0 ? g->link_err : ETIME;
		return r;
	}
	return 0;
}

/*
 * A look whose state could not be written (a full disk, a quota), or
 * whose server could not be reached (Redis: lost_link, stopped or
 * restarting): what it decided was not stored, so we are still in line,
 * and stay there. Sleep on our wake fd and look again within a second
 * (no death can be watched without a look); a person hears of it once.
 * 0, or -1 for any other failure.
 */
static int
look_unwritten(struct gate *g, int e, size_t nheld)
{
	if (e != ENOSPC && e != EDQUOT && !lost_link(g, e))
		return -1;
	g->link_err = e;
	if (g->rejoin && !g->bounded && mono_ns() >= arrive_by(g)) {
		g->queued = g->rejoin = 0;	/* never in line: give up */
		g->nheld = nheld;
		errno = e;
		return -1;
	}
	g->nheld = nheld;		/* a slot claimed was not stored */
	g->queued = 1;
	if (!g->unwritable && g->notify != NULL)
		g->notify(g->notify_arg, unwritten_msg(g, e));
	g->unwritable = lost_link(g, e) ? 2 : 1;
	watch_close(&g->watch);
	if ((g->watch.fds = calloc(1, sizeof(*g->watch.fds))) == NULL)
		return -1;
	g->watch.fds[0].fd = g->wakefd;
	g->watch.fds[0].events = POLLIN;
	g->watch.n = 1;
	g->watch.degraded = g->watch.ready = 1;
	if (g->rejoin && !g->bounded)	/* look again when it gives up */
		g->watch.due = arrive_by(g);
	errno = e;
	return 0;
}

/*
 * Woken: if the state as stored already names us a holder (a release
 * promoted us and woke us after its commit), the slot is ours without a
 * transaction. 1 if so, 0 if not (look with the lock), -1 on error. A
 * command still to be recorded (exec mode) needs the lock: not here.
 */
static int
look_promoted(struct gate *g, const struct gate_req *req)
{
	struct store *s = g->store;
	struct store_txn st;
	const struct entry *e;
	size_t i;
	int r = 0;

	if (s->ops->snapshot == NULL || s->ops->snapshot(s, &st) == -1)
		return 0;
	if (find_self(g, &st.st, g->ticket, &i) == 1 && (e = &st.st.h[i],
	    req == NULL || !req->self_cmd || e->cmd.pid != 0)) {
		g->last_active = st.st.nh;
		g->last_limit = st.st.limit;
		(void)strlcpy(g->last_parent, st.st.parent,
		    sizeof(g->last_parent));
		g->queued = 0;
		r = 1;
		for (; i < st.st.nh && r == 1; i++)	/* each slot of a weight */
			if (ours(g, &st.st.h[i], g->ticket) &&
			    held_add(g, g->ticket, st.st.h[i].slot,
			    st.st.h[i].cmd.pid != 0) == -1)
				r = -1;
	}
	state_free(&st.st);
	return r;
}

/*
 * One step in line: look, and either report a new place (0), or sleep
 * and look again until something is to be said. See gate.h.
 */
static int
wait_step(struct gate *g, const struct gate_req *req,
    const struct gate_wait *gw, size_t *pos, size_t *nq)
{
	struct look l = { req, 0, 0 };
	size_t n;
	int r, woke;

	for (;;) {
		if (!g->watch.ready && !told_stop(gw)) {
			n = g->nheld;
			r = txn_run(g, op_look, &l);
			if (r == -1 && errno == EINTR && told_stop(gw)) {
				/*
				 * Cut short by a signal (the store waited for
				 * its server): what it decided was not stored,
				 * or not known to be. Still in line: leave it
				 * (wait_after finds our records by ticket).
				 */
				g->nheld = n;
				g->queued = 1;
				watch_close(&g->watch);
				goto sleep;
			}
			if (r == -1 && look_unwritten(g, errno, n) == 0)
				goto sleep;
			if (r != 0) {
				watch_close(&g->watch);
				return r;
			}
			g->watch.ready = 1;
			if (g->unwritable == 2 && g->notify != NULL)
				g->notify(g->notify_arg, reached_msg(g));
			g->unwritable = g->link_err = 0;
			g->rejoin = 0;
			if (l.pos + 1 != g->pos || l.nq != g->nq) {
				*pos = g->pos = l.pos + 1;
				*nq = g->nq = l.nq;
				return 0;
			}
		}
sleep:
		r = wait_sleep(gw, &g->watch);
		woke = g->watch.n > 0 && g->watch.fds[0].revents & POLLIN;
		watch_close(&g->watch);
		if (r == -1)
			return -1;
		g->store->ops->drain(g->store);
		if ((r = wait_after(g, req, gw)) != 0)
			return r;
		if (woke && (r = look_promoted(g, req)) != 0)
			return r;
	}
}

int
gate_wait(struct gate *g, const struct gate_req *req,
    const struct gate_wait *gw, size_t *pos, size_t *nq)
{
	struct rlimit saved;
	int r;

	if (!g->queued) {
		errno = EINVAL;
		return -1;
	}
	nofile_raise(&saved);
	r = wait_step(g, req, gw, pos, nq);
	nofile_restore(&saved);
	if (!g->queued && g->wakefd != -1 &&
	    g->store->ops->unlisten != NULL) {
		/* Out of line: its wake fd (a FIFO's name) is given back. */
		g->store->ops->unlisten(g->store);
		g->wakefd = -1;
	}
	return r;
}

/*
 * One step of gate_wait for a caller's own poll loop: look again only
 * when something the last look watched fired (or it could not watch).
 */
int
gate_poll(struct gate *g, const struct gate_req *req,
    const struct pollfd **fds, size_t *n, int *ms)
{
	struct look l = { req, 0, 0 };
	struct rlimit saved;
	size_t nh;
	int r;

	if (!g->queued) {
		errno = EINVAL;
		return -1;
	}
	if (!g->watch.ready || g->watch.now || g->watch.degraded ||
	    (g->watch.due > 0 && mono_ns() >= g->watch.due) ||
	    poll(g->watch.fds, g->watch.n, 0) != 0) {
		watch_close(&g->watch);
		g->store->ops->drain(g->store);
		nofile_raise(&saved);
		nh = g->nheld;
		if ((r = txn_run(g, op_look, &l)) == -1 &&
		    look_unwritten(g, errno, nh) == 0)
			r = 0;
		nofile_restore(&saved);
		if (r != 0) {
			watch_close(&g->watch);
			return r;
		}
		g->watch.ready = 1;
	}
	*fds = g->watch.fds;
	*n = g->watch.n;
	*ms = g->watch.now ? 0 : g->watch.degraded ? 1000 : -1;
	if (g->watch.due > 0 && *ms != 0)	/* a need: RES_PERIOD_MS */
		*ms = (int)((g->watch.due - mono_ns()) / 1000000 + 1);
	return 0;
}

/* --- taking and giving back slots ------------------------------------ */

struct enqueue {
	const struct gate_req	*req;
	int			wait;
};

/* The live record holding key, or NULL (dead ones are not looked at). */
static const struct entry *
key_owner(const struct txn *t, const char *key)
{
	const struct state *st = &t->s.st;
	size_t i;

	for (i = 0; i < st->nh; i++)
		if (strcmp(st->h[i].key, key) == 0 &&
		    holder_alive(t, &st->h[i]))
			return &st->h[i];
	for (i = 0; i < st->nw; i++)
		if (strcmp(st->w[i].key, key) == 0 &&
		    alive(t, &st->w[i].wrapper))
			return &st->w[i];
	return NULL;
}

/*
 * A keyed request whose key a live request holds: note that one, and
 * follow it (2) or fail (EEXIST). 0 when the key is free.
 */
static int
key_taken(struct txn *t, const struct gate_req *req)
{
	const struct entry *e;

	if (req == NULL || req->key == NULL ||
	    (e = key_owner(t, req->key)) == NULL)
		return 0;
	t->g->follow = e->ticket;
	t->g->follow_id = e->wrapper;
	if (req->join)
		return 2;
	errno = EEXIST;
	return -1;
}

/* Take a slot free now, or (with wait) join the line. 1, 0 or -1. */
static int
op_enqueue(struct txn *t, void *arg)
{
	const struct enqueue *q = arg;
	struct store *s = t->g->store;
	struct gate *g = t->g;
	struct entry e;
	int r;

	g->res_held = 0;
	g->key_unknown = 0;
	if (promote(t) == -1)
		return -1;
	if (q->req != NULL && q->req->weight > gate_limit(t) &&
	    gate_limit(t) > 0) {
		t->g->last_active = t->s.st.nh;	/* for the message */
		t->g->last_limit = gate_limit(t);
		errno = E2BIG;		/* it would wait for ever */
		return -1;
	}
	if ((r = key_taken(t, q->req)) != 0)
		return r;
	if (q->req != NULL && q->req->key != NULL && t->s.keys_unknown) {
		g->key_unknown = 1;	/* see gate_key_unknown */
		return 0;
	}
	if ((r = take_now(t, q->req)) != 0 || !q->wait)
		return r;
	if (queue_full(t))
		return -1;
	/* Only a waiter needs a wake fd: made here, not before. */
	if (g->wakefd == -1 && (g->wakefd = s->ops->listen(s, g->addr)) == -1)
		return -1;
	if (self_entry(t, q->req, &e) == -1)
		return -1;
	if (queue_insert(t, &e) == -1) {
		free(e.strs);
		return -1;
	}
	g->queued = 1;
	g->pos = g->nq = 0;
	return 0;
}

int
gate_enqueue(struct gate *g, const struct gate_req *req, int wait)
{
	struct enqueue q = { req, wait };
	size_t n = g->nheld;
	int r;

	if (g->queued) {
		errno = EBUSY;
		return -1;
	}
	if (req != NULL && (req->weight > GATE_MAX_LIMIT ||
	    req->priority > GATE_MAX_PRIO || req->priority < -GATE_MAX_PRIO ||
	    (req->key != NULL && !gate_key_valid(req->key)) ||
	    (req->need != NULL && !res_valid(req->need)))) {
		errno = EINVAL;
		return -1;
	}
	if ((r = txn_run(g, op_enqueue, &q)) == -1 && wait &&
	    lost_link(g, errno)) {
		/*
		 * The server went away mid-way: whether our record was stored
		 * is not known (on a refusal, READONLY, OOM..., it was not).
		 * In line all the same: the next look finds it by its ticket,
		 * or joins the line then (see op_look); but a new arrival
		 * only for its patience (arrive_start), then it gives up as
		 * one that could not reach its server at all (look_unwritten).
		 */
		g->nheld = n;
		arrive_start(g, errno);
		if (g->notify != NULL)
			g->notify(g->notify_arg, unwritten_msg(g, errno));
		g->unwritable = 2;
		g->pos = g->nq = 0;
		watch_close(&g->watch);
		return 0;
	}
	if (r == -1) {
		g->nheld = n;		/* nothing was stored */
		g->queued = 0;
	}
	return r;
}

int
gate_acquire(struct gate *g, const struct gate_req *req,
    const struct gate_wait *gw)
{
	size_t pos, nq;
	int r;

	r = gate_enqueue(g, req, gw != NULL);
	while (r == 0 && gw != NULL && g->key_unknown)	/* as run.c */
		if ((r = gate_hold_sleep(g, gw)) == 0)
			r = gate_enqueue(g, req, 1);
	while (r == 0 && gw != NULL)
		r = gate_wait(g, req, gw, &pos, &nq);
	if (r == -1 && errno == ETIMEDOUT)
		return 0;
	return r;
}

void
gate_set_status(struct gate *g, int status)
{
	g->status = status;
}

/* What a look at the request followed found. */
struct follow {
	struct procid	watch;		/* a process of it still running */
	int		running;
	int		status;		/* its result, or -1 */
};

/*
 * Is the request followed still there (a record of its ticket whose
 * wrapper or command runs)? Else its result, if it left one.
 */
static int
op_follow(struct txn *t, void *arg)
{
	const struct state *st = &t->s.st;
	const struct result *res;
	struct follow *f = arg;
	const struct gate *g = t->g;
	const struct entry *e;
	size_t i;

	f->running = 0;
	for (i = 0; i < st->nh + st->nw && !f->running; i++) {
		e = i < st->nh ? &st->h[i] : &st->w[i - st->nh];
		if (e->ticket != g->follow ||
		    e->wrapper.pid != g->follow_id.pid ||
		    e->wrapper.start != g->follow_id.start)
			continue;
		if (alive(t, &e->wrapper))
			f->watch = e->wrapper;
		else if (e->cmd.pid > 0 && alive(t, &e->cmd))
			f->watch = e->cmd;
		else
			continue;
		f->running = 1;
	}
	res = state_result(st, g->follow);
	f->status = res != NULL ? res->status : -1;
	return 0;
}

/* -1 if a wait is over: a signal said leave (EINTR), or its deadline
   passed (ETIMEDOUT); else 0. */
static int
wait_over(const struct gate_wait *gw)
{
	if (gw->stop != NULL && *gw->stop) {
		errno = EINTR;
		return -1;
	}
	if (gw->deadline >= 0 && mono_ns() >= gw->deadline) {
		errno = ETIMEDOUT;
		return -1;
	}
	return 0;
}

/*
 * Sleep on fd until it is readable, the deadline, or a signal; with fd -1
 * (the process could not be watched: no pidfd under valgrind, no fd
 * left), look again within a second, as a degraded waiter does.
 */
static int
follow_sleep(int fd, const struct gate_wait *gw)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	struct timespec ts, *tsp = NULL;
	int64_t left;

	if (gw->deadline >= 0) {
		left = gw->deadline - mono_ns();
		if (left < 0)
			left = 0;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		tsp = &ts;
	}
	if (fd == -1 && (tsp == NULL || ts.tv_sec >= 1)) {
		ts.tv_sec = 1;
		ts.tv_nsec = 0;
		tsp = &ts;
	}
	if (ppoll(fd == -1 ? NULL : &pfd, fd == -1 ? 0 : 1, tsp,
	    gw->sigmask) == -1 && errno != EINTR)
		return -1;
	return 0;
}

int
gate_follow(struct gate *g, const struct gate_wait *gw, int *status,
    pid_t *pid)
{
	struct follow f;
	int fd, r;

	*pid = g->follow_id.pid;
	for (;;) {
		if (txn_look(g, op_follow, &f) == -1)
			return -1;
		if (!f.running) {
			*status = f.status;
			return f.status >= 0;
		}
		if ((fd = g->store->ops->watch(g->store, &f.watch)) == -1 &&
		    errno == ESRCH)
			continue;		/* ended meanwhile */
		r = follow_sleep(fd, gw);
		if (fd != -1)
			(void)xclose(fd);
		if (r == -1)
			return -1;
		if (wait_over(gw) == -1)
			return -1;
	}
}

/*
 * A keyed request is not let in while holders from before a loss are not
 * recorded again (N-7 of brk-redis8: after a DEL of the key, a second -u K
 * ran beside the first). Of the ways to keep a key unique then, this is
 * the simplest sound one: those holders write their records, keys and
 * all, back at their renewal, and the hold lasts until they have or their
 * leases could end; keeping the keys in PREFIX "ends" would not survive a
 * restart without data, and would have to name each key's request for
 * --unique-join to follow it. The hold is short (a third of a lease when
 * the holders are alive), and only keyed requests wait it out.
 */
int
gate_key_unknown(const struct gate *g)
{
	return g->key_unknown;
}

int
gate_hold_sleep(const struct gate *g, const struct gate_wait *gw)
{
	struct timespec ts;
	int64_t left = g->last_hold - real_ns() + 1000000, d;

	if (gw->deadline >= 0 && (d = gw->deadline - mono_ns()) < left)
		left = d;
	if (left < 0)
		left = 0;
	ts.tv_sec = left / 1000000000;
	ts.tv_nsec = left % 1000000000;
	if (ppoll(NULL, 0, &ts, gw->sigmask) == -1 && errno != EINTR)
		return -1;
	return wait_over(gw);
}

const char *
gate_res_why(const struct gate *g)
{
	return g->res_held ? g->res_why : NULL;
}

int
gate_slot(const struct gate *g)
{
	return g->nheld > 0 ? g->held[g->nheld - 1].slot : -1;
}

size_t
gate_held(const struct gate *g)
{
	return g->nheld;
}

int
gate_has_cmd(const struct gate *g)
{
	return g->nheld > 0 && g->held[g->nheld - 1].has_cmd;
}

const char *
gate_parent(const struct gate *g)
{
	return g->last_parent;
}

void
gate_counts(const struct gate *g, size_t *active, unsigned *limit)
{
	*active = g->last_active;
	*limit = g->last_limit;
}

int
gate_hold(const struct gate *g, int64_t *until, int *why, int *limit_lost)
{
	*until = g->last_hold;
	*why = g->last_hold_why;
	*limit_lost = g->last_limit_lost;
	return g->last_hold != 0;
}

/* Record pid as the command of the request in line or the last slot. */
static int
op_set_cmd(struct txn *t, void *arg)
{
	struct gate *g = t->g;
	uint64_t ticket = g->queued ? g->ticket : g->held[g->nheld - 1].ticket;
	struct entry *e;
	size_t i;
	int where;

	where = find_self(g, &t->s.st, ticket, &i);
	e = where == 1 ? &t->s.st.h[i] : where == 0 ? &t->s.st.w[i] : NULL;
	if (e == NULL || proc_id(*(pid_t *)arg, &e->cmd) == -1) {
		errno = ESRCH;
		return -1;
	}
	for (; where == 1 && i < t->s.st.nh; i++)	/* every slot of it */
		if (ours(g, &t->s.st.h[i], ticket))
			t->s.st.h[i].cmd = e->cmd;
	t->s.dirty = 1;
	/*
	 * A waiter's command rides along when it is promoted (and when it
	 * was already, unbeknown to us, claim() sees it recorded).
	 */
	if (!g->queued)
		g->held[g->nheld - 1].has_cmd = 1;
	return 0;
}

int
gate_set_cmd(struct gate *g, pid_t pid)
{
	if (g->nheld == 0 && !g->queued) {
		errno = EINVAL;
		return -1;
	}
	return txn_run(g, op_set_cmd, &pid);
}

int64_t
gate_lease_period(const struct gate *g)
{
	int64_t period, until;

	if (g->store->ops->lease == NULL ||
	    g->store->ops->lease(g->store, &period, &until) == -1)
		return 0;
	return period;
}

/* Nothing to change: the commit renews this process's records. */
static int
op_renew(struct txn *t, void *arg)
{
	(void)t;
	(void)arg;
	return 0;
}

int
gate_renew(struct gate *g, int64_t *until)
{
	int64_t period;
	int r, e;

	*until = -1;
	if (g->store->ops->lease == NULL)
		return 0;
	r = txn_run(g, op_renew, NULL);
	e = errno;
	/* Failed, *until still says how long the last renewal holds. */
	if (g->store->ops->lease(g->store, &period, until) == -1)
		return -1;
	errno = e;
	return r;
}

/*
 * The index of the holder record of held slot h, or nh. A store shared
 * by hosts that lost its data has our record made again at another slot
 * when its own was given away meanwhile (store_redis_txn.c, remake): then
 * a record of the same request at a slot none of our held slots names.
 * Not found so, it stayed until its lease ended and kept the head of the
 * line out of the slot freed (N3 of brk-redis4).
 */
static size_t
held_record(const struct txn *t, const struct held *h)
{
	const struct gate *g = t->g;
	const struct state *st = &t->s.st;
	size_t i, k;

	for (i = 0; i < st->nh; i++)
		if (st->h[i].slot == h->slot && ours(g, &st->h[i], h->ticket))
			return i;
	for (i = 0; i < st->nh; i++) {
		if (!ours(g, &st->h[i], h->ticket))
			continue;
		for (k = 0; k < g->nheld; k++)
			if (g->held[k].ticket == h->ticket &&
			    g->held[k].slot == st->h[i].slot)
				break;
		if (k == g->nheld)
			return i;
	}
	return st->nh;
}

/* Give back one slot held (arg), or every slot held (NULL). */
static int
op_release(struct txn *t, void *arg)
{
	const struct held *one = arg;
	struct gate *g = t->g;
	const struct held *h;
	size_t k, i;

	for (k = 0; k < g->nheld; k++) {
		h = one != NULL ? one : &g->held[k];
		if ((i = held_record(t, h)) < t->s.st.nh) {
			if (t->s.st.h[i].key[0] != '\0' && g->status >= 0 &&
			    state_result(&t->s.st, h->ticket) == NULL)
				state_result_add(&t->s.st, h->ticket,
				    g->status, real_ns());
			state_remove(t->s.st.h, &t->s.st.nh, i);
			t->s.dirty = t->reaped_holder = 1;
		}
		if (one != NULL)
			break;
	}
	return promote(t);
}

/*
 * Whatever the transaction's fate, the slots count as given back: a
 * record left behind is freed once this process is gone.
 */
int
gate_release(struct gate *g)
{
	int r;

	if (g->nheld == 0)
		return 0;
	r = txn_run(g, op_release, NULL);
	g->nheld = 0;
	return r;
}

int
gate_release_slot(struct gate *g, int slot)
{
	struct held one;
	size_t k;
	int r;

	for (k = 0; k < g->nheld && g->held[k].slot != slot; k++)
		;
	if (k == g->nheld) {
		errno = EINVAL;
		return -1;
	}
	one = g->held[k];
	r = txn_run(g, op_release, &one);
	held_drop(g, k);
	return r;
}

void
gate_close(struct gate *g)
{
	struct leave lv = { 0, NULL };

	if (g == NULL)
		return;
	if (g->nheld > 0)
		(void)gate_release(g);
	if (g->queued)
		(void)txn_run(g, op_leave, &lv);
	watch_close(&g->watch);
	g->store->ops->close(g->store);
	free(g->held);
	free(g);
}

/* --- looking at and steering a gate ---------------------------------- */

/*
 * Copy one record out for status, with what its processes are doing: a
 * holder's command has not started while the child its wrapper forked
 * has not exec'd (a stopped head waiter is promoted all the same).
 */
static int
proc_copy(struct gate_proc *p, const struct entry *e)
{
	int w = 0, c = 0;

	(void)strlcpy(p->host, e->host, sizeof(p->host));
	if (!e->foreign)		/* not in our /proc */
		w = proc_runstate(&e->wrapper);
	if (!e->foreign && e->cmd.pid != 0 && e->cmd.pid != e->wrapper.pid)
		c = proc_runstate(&e->cmd);
	p->slot = e->slot;
	p->pid = e->cmd.pid;
	p->wrapper_pid = e->wrapper.pid;
	p->uid = e->uid;
	p->time_ns = e->time_ns;
	p->state = (w | c) & PROC_STOPPED ? GATE_PROC_STOPPED : 0;
	p->weight = weight_of(e);
	p->priority = e->prio;
	p->passed = e->passed;
	(void)strlcpy(p->key, e->key, sizeof(p->key));
	p->need = e->need;
	if (e->slot >= 0 && (e->cmd.pid == 0 || (c & PROC_UNEXECED)))
		p->state |= GATE_PROC_NOT_STARTED;
	return state_entry_decode(e, &p->cwd, &p->command);
}

static int
slot_cmp(const void *a, const void *b)
{
	return ((const struct gate_proc *)a)->slot -
	    ((const struct gate_proc *)b)->slot;
}

void
gate_info_free(struct gate_info *gi)
{
	size_t i;

	for (i = 0; i < gi->nh; i++) {
		free(gi->h[i].cwd);
		free(gi->h[i].command);
	}
	for (i = 0; i < gi->nw; i++) {
		free(gi->w[i].cwd);
		free(gi->w[i].command);
	}
	free(gi->h);
	free(gi->w);
	memset(gi, 0, sizeof(*gi));
}

/* Leave out dead records (reap them, in a transaction), copy the rest. */
static int
op_info(struct txn *t, void *arg)
{
	const struct state *st = &t->s.st;
	struct gate_info *gi = arg;

	reap_holders(t);
	reap_waiters(t);
	if (!t->readonly && promote(t) == -1)
		return -1;
	gi->exists = t->s.exists;
	gi->limit = gate_limit(t);
	gi->hold_until = t->s.hold_until;
	gi->hold_why = t->s.hold_why;
	gi->limit_lost = t->s.hold_until != 0 && t->s.limit_lost;
	gi->replica_unsynced = t->s.unsynced;
	(void)strlcpy(gi->parent, st->parent, sizeof(gi->parent));
	gi->acquired = st->acquired;
	gi->wait_ns = st->wait_ns;
	gi->h = calloc(st->nh + 1, sizeof(*gi->h));
	gi->w = calloc(st->nw + 1, sizeof(*gi->w));
	if (gi->h == NULL || gi->w == NULL)
		return -1;
	for (; gi->nh < st->nh; gi->nh++)
		if (proc_copy(&gi->h[gi->nh], &st->h[gi->nh]) == -1)
			return -1;
	for (; gi->nw < st->nw; gi->nw++)
		if (proc_copy(&gi->w[gi->nw], &st->w[gi->nw]) == -1)
			return -1;
	qsort(gi->h, gi->nh, sizeof(*gi->h), slot_cmp);
	return 0;
}

int
gate_info(struct gate *g, struct gate_info *gi)
{
	memset(gi, 0, sizeof(*gi));
	if (txn_look(g, op_info, gi) == -1) {
		gate_info_free(gi);
		return -1;
	}
	return 0;
}

struct set_limit {
	unsigned	limit;
	unsigned	old;
};

/*
 * During a hold (a store shared by hosts, after a loss) the policy sees
 * the gate full: the new limit is the store's to write back, and nobody
 * is let in until the hold ends (waiters look again then).
 */
static int
op_set_limit(struct txn *t, void *arg)
{
	struct set_limit *sl = arg;

	sl->old = gate_limit(t);
	if (t->s.hold_until != 0) {
		t->s.hold_limit = sl->limit;
		t->s.dirty = 1;
		return 0;
	}
	if (t->s.st.limit != sl->limit) {
		t->s.st.limit = sl->limit;
		t->s.dirty = 1;
	}
	return promote(t);
}

int
gate_set_limit(struct gate *g, unsigned limit, unsigned *old)
{
	struct set_limit sl = { limit, 0 };

	if (limit > GATE_MAX_LIMIT) {
		errno = EINVAL;
		return -1;
	}
	if (txn_run(g, op_set_limit, &sl) == -1)
		return -1;
	*old = sl.old;
	return 0;
}

/*
 * A gate's parent changes only while nobody holds or waits for its slots:
 * every request then took or will take the parents named now, and the
 * chain above a gate with holders or waiters stays as it was.
 */
static int
op_set_parent(struct txn *t, void *arg)
{
	const char *name = arg;

	if (strcmp(t->s.st.parent, name) != 0) {
		reap_holders(t);
		reap_waiters(t);
		if (t->s.st.nh > 0 || t->s.st.nw > 0) {
			errno = EBUSY;
			return -1;
		}
		(void)strlcpy(t->s.st.parent, name, sizeof(t->s.st.parent));
		t->s.dirty = 1;
	}
	return 0;
}

int
gate_set_parent(struct gate *g, const char *name)
{
	if (*name != '\0' && (!gate_name_valid(name) ||
	    strcmp(name, g->name) == 0)) {
		errno = EINVAL;
		return -1;
	}
	return txn_run(g, op_set_parent, (void *)name);
}

/* 1 if pid (arg) is a live holder's wrapper or command. */
static int
op_is_active(struct txn *t, void *arg)
{
	const struct state *st = &t->s.st;
	pid_t pid = *(pid_t *)arg;
	size_t i;
	int found = 0;

	for (i = 0; i < st->nh && pid > 0 && !found; i++)
		found = !st->h[i].foreign && ((st->h[i].wrapper.pid == pid &&
		    alive(t, &st->h[i].wrapper)) ||
		    (st->h[i].cmd.pid == pid && alive(t, &st->h[i].cmd)));
	return !t->readonly && promote(t) == -1 ? -1 : found;
}

int
gate_is_active(struct gate *g, pid_t pid)
{
	return txn_look(g, op_is_active, &pid);
}

/* Reap the dead and hand their slots on. */
static int
op_reap(struct txn *t, void *arg)
{
	(void)arg;
	reap_holders(t);
	return promote(t);
}

/* The holders, as kill-all needs them. */
struct holders {
	struct killall_holder	*h;
	size_t			n;
};

static int
op_holders(struct txn *t, void *arg)
{
	const struct state *st = &t->s.st;
	struct holders *hs = arg;
	size_t i;

	if ((hs->h = calloc(st->nh + 1, sizeof(*hs->h))) == NULL)
		return -1;
	for (i = 0; i < st->nh; i++) {
		hs->h[i].slot = st->h[i].slot;
		hs->h[i].wrapper = st->h[i].wrapper;
		hs->h[i].cmd = st->h[i].cmd;
	}
	hs->n = st->nh;
	return 0;
}

/* The live holders with their hosts, for kill-all across hosts. */
struct remote {
	struct store_holder	*h;
	size_t			n;
};

/* Reap ended leases, hand their slots on, and list the holders left. */
static int
op_remote_holders(struct txn *t, void *arg)
{
	const struct state *st = &t->s.st;
	struct remote *rh = arg;
	size_t i;

	reap_holders(t);		/* leases ended: no one to ask */
	if (promote(t) == -1)
		return -1;
	if ((rh->h = calloc(st->nh + 1, sizeof(*rh->h))) == NULL)
		return -1;
	for (i = 0; i < st->nh; i++) {
		rh->h[i].slot = st->h[i].slot;
		rh->h[i].wrapper = st->h[i].wrapper;
		rh->h[i].cmd = st->h[i].cmd;
		(void)strlcpy(rh->h[i].host, st->h[i].host,
		    sizeof(rh->h[i].host));
	}
	rh->n = st->nh;
	return 0;
}

/* Kill-all on a store shared by hosts: a request the holders serve. */
static int
kill_remote(struct gate *g, int sig, double grace, struct gate_kill **outp,
    size_t *np)
{
	struct remote rh = { NULL, 0 };
	int r;

	if (g->store->ops->kill_remote == NULL) {
		errno = ENOTSUP;
		return -1;
	}
	if (txn_run(g, op_remote_holders, &rh) == -1) {
		free(rh.h);
		return -1;
	}
	r = g->store->ops->kill_remote(g->store, rh.h, rh.n, sig, grace,
	    outp, np);
	free(rh.h);
	return r;
}

int
gate_kill_all(struct gate *g, int sig, double grace, struct gate_kill **outp,
    size_t *np)
{
	struct holders hs = { NULL, 0 };
	int r;

	*outp = NULL;
	*np = 0;
	if (g->store->ops->lease != NULL)	/* PIDs of other hosts */
		return kill_remote(g, sig, grace, outp, np);
	if (txn_run(g, op_holders, &hs) == -1) {
		free(hs.h);
		return -1;
	}
	r = killall_run(hs.h, hs.n, sig, grace, outp, np);
	free(hs.h);
	/* Reap what died, so the slots are free when we return. */
	if (r == 0 && txn_run(g, op_reap, NULL) == -1)
		r = -1;
	return r;
}

/* A holder's kill-all listener: the store's, what it stops, its slots. */
struct gate_killer {
	const struct store_ops	*ops;
	void			*l;
	struct killall_holder	h;
	unsigned		nslots;
};

/* See gate.h: a listener for the slot this process holds. */
int
gate_kill_listen(struct gate *g, pid_t cmd, int64_t deadline, void **lp)
{
	struct gate_killer *k;
	int fd;

	if (g->store->ops->kill_listen == NULL || g->nheld == 0) {
		errno = ENOTSUP;
		return -1;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return -1;
	k->ops = g->store->ops;
	k->h.slot = gate_slot(g);
	k->h.wrapper = g->self;
	k->nslots = (unsigned)g->nheld;
	if (proc_id(cmd, &k->h.cmd) == -1 ||
	    (fd = k->ops->kill_listen(g->store, deadline, &k->l)) == -1) {
		free(k);
		return -1;
	}
	*lp = k;
	return fd;
}

/* See gate.h: each request taken is served by killall_run, answered. */
int
gate_kill_serve(void *p)
{
	struct gate_killer *k = p;
	struct store_killreq rq;
	struct gate_kill *out;
	size_t n;
	int r, e;

	while ((r = k->ops->kill_take(k->l, &rq)) == 1) {
		rq.slot = k->h.slot;
		rq.nslots = k->nslots;
		e = killall_run(&k->h, 1, rq.sig, rq.grace, &out, &n) == -1 ?
		    errno : 0;
		r = k->ops->kill_answer(k->l, &rq, e, out, n);
		free(out);
		if (r == -1)
			return -1;
	}
	return r;
}

/* See gate.h. */
void
gate_forked(struct gate *g)
{
	if (g->store->ops->forked != NULL)
		g->store->ops->forked(g->store);
}

/* See gate.h. */
void
gate_kill_unlisten(void *p)
{
	struct gate_killer *k = p;

	if (k == NULL)
		return;
	k->ops->kill_close(k->l);
	free(k);
}
