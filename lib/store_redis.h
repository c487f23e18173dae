/*
 * The Redis store's parts (store_redis*.c), private to them: the store,
 * its locator, and the helpers its files share. See store_redis.c.
 */
#ifndef GATERUN_STORE_REDIS_H
#define GATERUN_STORE_REDIS_H

#include <signal.h>
#include <stdint.h>

#include <hiredis.h>

#include "store.h"

#define PREFIX		"gaterun:"
#define KEY_MAX		(sizeof(PREFIX) + 8 + GATE_NAME_MAX + 1)
#define MS		1000000LL	/* ns */
#define REDIS_TTL_DEFAULT 10		/* lease, seconds */
#define COMMAND_MS	10000		/* a reply's timeout */

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], as parsed (HOST may be an
   IPv6 address in brackets, kept here without them). */
struct redis_loc {
	char		host[256];
	int		port;
	int		db;
	char		user[128];
	char		pass[512];
};

/*
 * How a wait for the server ends (rs_wait_fd): at its deadline, or when a
 * signal says leave. Set by set_wait (a gate_wait), and at open.
 */
struct rs_io {
	int64_t		deadline;	/* mono ns replies are waited for
					   until, or -1 (COMMAND_MS each) */
	const sigset_t	*sigmask;	/* the caller's mask while it waits
					   (lets its signals in), or NULL */
	const volatile sig_atomic_t *stop; /* set by a signal: leave */
	int64_t		stop_end;	/* told to leave: its waits end by
					   then (mono ns), or 0 */
};

/*
 * A hold after a loss, as the line "hold MS WHY CREDIT FIRST WAIT LIMIT0
 * AT N0 EXACT BACK W0 WBACK" of a gate's key says it (see rs_hold_begin in
 * store_redis_hold.c): nobody new until ms (server ms), why (GATE_HOLD_*),
 * the slots given back in it not yet taken, the first ticket not given
 * before the loss, until when waiters in line before it may come back,
 * the limit before the loss, when the line was written, the holder slots
 * before the loss (-1: unknown; all of them if exact, else at least) and
 * how many were recorded again, the waiters before it (-1: unknown) and
 * how many came back.
 */
struct rs_hold {
	int64_t		ms;
	int		why;
	unsigned	credit;
	uint64_t	first;
	int64_t		wait;
	unsigned	limit0;
	int64_t		at;
	long		n0;
	int		exact;
	unsigned	back;
	long		w0;
	unsigned	wback;
};

/*
 * What PREFIX "ends" keeps of a gate's last value, "END NEXT WAIT LIMIT NH
 * NW AT WAKE [PARENT]" (see rs_ends_format): until when its holders'
 * leases run (server ms; 0: none kept), its next ticket, until when its
 * waiters' leases run, its limit (-1: a default), holder slots and waiters
 * (-1: unknown), when it was written, the wake addresses of its first
 * RS_ENDS_WAKE waiters, joined by commas ("-": none; older versions wrote
 * no WAKE), and its parent gate ("": none, or written by a version that
 * did not keep it).
 */
#define RS_ENDS_WAKE	4
struct rs_ends {
	int64_t		ms;
	uint64_t	next;
	int64_t		wait;
	long		limit;
	long		nh;
	long		nw;
	int64_t		at;		/* when it was written (server ms) */
	char		wake[RS_ENDS_WAKE][STATE_ADDR_LEN + 1];
	size_t		nwake;		/* the first waiters' wake addresses */
	char		parent[GATE_NAME_MAX + 1];
};

/* A record as a loss needs it: its ticket and wrapper name it. */
struct rs_rec {
	uint64_t	ticket;
	pid_t		pid;
	unsigned long long start;
};

struct rstore {
	struct store	base;
	struct redis_loc loc;
	redisContext	*c;		/* transactions */
	redisContext	*wc;		/* a waiter's BLPOP, or NULL */
	char		name[GATE_NAME_MAX + 1];
	char		key[KEY_MAX];
	char		host[STATE_HOST_LEN + 1];
	struct procid	self;
	unsigned	deflimit;
	int		create;
	int64_t		ttl_ms;
	struct rs_io	io;		/* how waits on c (and wc's connect)
					   end: set_wait's, or open's */
	char		epoch[40];
	int		no_epoch;	/* a reader on a replica with none: the
					   first one seen is taken as ours */
	gate_notify_fn	*notify;
	void		*notify_arg;
	struct store_txn *cur;		/* the transaction under way */
	int64_t		now_ms;		/* server TIME at its start */
	int64_t		t0;		/* our clock (boot ns) before asking */
	int64_t		until;		/* boot ns our lease surely runs to */
	int		epfd, tfd;	/* a waiter's wake fd, its timer */
	int		blpop;		/* a BLPOP is out on wc */
	int64_t		wc_after;	/* wc refused: not again before */
	store_addr	addr;
	int		lost;		/* the server lost our records */
	int		fresh;		/* the key was not there */
	unsigned	last_limit;	/* as last read: made again if lost */
	int		deflt;		/* the value's limit is a default one
					   (the key was made), never set */
	unsigned	read_limit;	/* the limit as read (or defaulted) */
	struct rs_hold	hold;		/* the key's hold line */
	struct rs_ends	ends;		/* PREFIX "ends", read after a loss */
	int64_t		first_ms;	/* server TIME at our first read of
					   it (see suspects), or 0 */
	size_t		nsusp;		/* records that ended at once: see
					   suspects */
	int64_t		susp_ttl;	/* the longest lease among them (ms) */
	int		restored;	/* remake put the limit back */
	int64_t		seen_end;	/* boot ns the longest lease of
					   another's holder read may run to
					   (see rs_hold_begin) */
	uint64_t	seen_next;	/* the highest next ticket read */
	int64_t		seen_wait;	/* boot ns the longest lease of
					   another's waiter read may run to */
	int64_t		seen_ttl;	/* the longest lease (ms) of another's
					   holder read */
	struct rs_rec	*seenh;		/* the holder records last read or
					   written, kept as they were before
					   a loss until it is written (see
					   hold_new) */
	size_t		nseenh;
	unsigned	remade;		/* holder records remake made, */
	unsigned	remadew;	/* and waiter records */
	int		hold_read;	/* the value read had a hold line */
	int		klistens;	/* kill-all listeners made (a watchdog's:
					   see store_redis_kill.c) */
	size_t		hold_nh;	/* holders when the policy was shown
					   the gate full (see rs_hold_end) */
	int		shown;		/* the policy sees the gate full: its
					   limit in store_txn.hold_limit */
	struct entry	*mine;		/* our holders at the last commit */
	size_t		nmine;
	struct entry	*minew;		/* our waiters at the last commit */
	size_t		nminew;
	uint64_t	*rtix;		/* tickets of this process's records
					   in what begin read */
	size_t		nrtix;
	int		known;		/* this process saw the gate's key */
	int		said_fresh;	/* "no gaterun data" said */
	int		said_ends;	/* PREFIX "ends" not a hash: said */
	int		gates_empty;	/* the key and PREFIX "gates" missing */
	int64_t		prev_t0, prev_ms; /* the last read's t0 and now_ms */
	int64_t		lag_ms;		/* see rs_clock_lag: the most since
					   a transaction last looked */
	int		dropped;	/* a read found a record of ours gone
					   though asked in time */
	int64_t		asked;		/* boot ns the transaction under way
					   was first tried (see in_time), or 0 */
	int64_t		unanswered;	/* boot ns a request went out that
					   no reply answered yet (it timed
					   out: see fetch), or 0 */
};

/*
 * How far the server's clock ran ahead of ours (ms) between two reads:
 * t0 (boot ns) when each was sent, ms the server's TIME in each reply.
 * About 0 normally (at most the reply's own delay); large when the server
 * answered late (it stalled: its TIME is read when it answers) or its
 * clock was stepped forward; negative when stepped back.
 */
int64_t	rs_clock_lag(int64_t, int64_t, int64_t, int64_t);
/* 1 if a lag (ms) may have ended a lease of ttl (ms) nobody could renew. */
int	rs_clock_jumped(int64_t, int64_t);

/* Parse a locator (what follows "redis:"), with the password file. */
int	rs_parse_loc(const char *, struct redis_loc *);
/* Tell the caller something a person should know about this gate. */
void	rs_say(struct rstore *, const char *);
/* Connect, log in, choose the database; NULL with errno set. */
redisContext *rs_connect(const struct redis_loc *);
/* The same, waiting for replies until deadline (mono ns; -1: 10 s). */
redisContext *rs_connect_until(const struct redis_loc *, int64_t);
/* The same, waiting as io says (EINTR: a signal said leave). */
redisContext *rs_connect_io(const struct redis_loc *, struct rs_io *);
/* Wait until fd is ready for events, as io says, up to ms: 0 or -1. */
int	rs_wait_fd(int, short, struct rs_io *, int64_t);
/* Wait for replies on r->c until its deadline (at least a moment). */
void	rs_bound(struct rstore *);
void	rs_set_wait(struct store *, const struct gate_wait *);
/* The same, trying again for a moment (a restarting server). */
redisContext *rs_reconnect(struct rstore *);
/* One reply of a pipeline, waited for as io says (NULL: within the
   socket's timeout); NULL with errno (a failed *cp is freed). */
redisReply *rs_reply(redisContext **, struct rs_io *);
/* 1 if an epoch value is one gaterun makes. */
int	rs_epoch_valid(const char *, size_t);
/* The server's epoch into r->epoch: read, or made if none. 0 or -1. */
int	rs_epoch(struct rstore *);
/* A command, its reply checked and thrown away; 0 or -1. */
int	rs_command(redisContext **, struct rs_io *, int, const char **);
/* The txn and wait parts' store operations (store_redis_txn.c, _wait.c). */
int	rs_begin(struct store *, struct store_txn *);
int	rs_commit(struct store *, struct store_txn *, const store_addr *,
	    size_t);
void	rs_abort(struct store *, struct store_txn *);
int	rs_snapshot(struct store *, struct store_txn *);
int	rs_alive(struct store *, const struct procid *);
int	rs_lease(struct store *, int64_t *, int64_t *);
int	rs_watch(struct store *, const struct procid *);
int	rs_listen(struct store *, store_addr);
void	rs_drain(struct store *);
/* A foreign record's lease end on our clock (boot ns), or -1. */
int64_t	rs_lease_end(const struct rstore *, const struct procid *);
/* Kill-all across hosts (store_redis_kill.c): see store.h. */
int	rs_kill_remote(struct store *, const struct store_holder *, size_t,
	    int, double, struct gate_kill **, size_t *);
int	rs_kill_listen(struct store *, int64_t, void **);
int	rs_kill_take(void *, struct store_killreq *);
int	rs_kill_answer(void *, const struct store_killreq *, int,
	    const struct gate_kill *, size_t);
void	rs_kill_close(void *);
/* The copies of our records freed (store_redis_txn.c). */
void	rs_mine_free(struct rstore *);
/* 1 if a record is this handle's (store_redis_txn.c: see there). */
int	rs_mine(const struct rstore *, const struct entry *);
/* 1 if a record of ours at the last commit is missing from a state. */
int	rs_missing_ours(const struct rstore *, const struct state *);
/* 1 if the transaction under way was asked for before our lease ended. */
int	rs_in_time(const struct rstore *);

/* The key's text (store_redis_value.c). 1 if a record is this process's. */
int	rs_ours(const struct rstore *, const struct entry *);
/* The key's value into t->st: 0, or -1 (EBADMSG: not ours to read). */
int	rs_value_parse(struct rstore *, const char *, size_t,
	    struct store_txn *);
/* The key's value for a state, malloc'd: 0 or -1. */
int	rs_value_format(const struct rstore *, const struct state *, char **,
	    size_t *);
/* 1 if a state's limit is a default one, never set. */
int	rs_limit_default(const struct rstore *, const struct state *);

/* The loss hold (store_redis_hold.c). No hold, nothing kept: cleared. */
void	rs_hold_clear(struct rs_hold *);
void	rs_ends_clear(struct rs_ends *);
/* The hold line's rest (after "hold MS") into r->hold. */
void	rs_hold_parse(struct rstore *, const char *, const char *);
/* The hold line into a buffer, if a hold is on; its length (0: none). */
size_t	rs_hold_format(const struct rstore *, char *, size_t);
/* A loss seen (r->lost): said once; 0 or -1. */
int	rs_loss_seen(struct rstore *, const struct store_txn *);
/* The hold after records that ended at once with no renewal since. */
void	rs_check_begin(struct rstore *, struct store_txn *);
/* The hold begun or lengthened, and shown to the policy; then undone
   before the commit writes. */
void	rs_hold_begin(struct rstore *, struct store_txn *);
void	rs_hold_end(struct rstore *, struct store_txn *);
/* The holder records of a state read or written, for a loss to come. */
void	rs_seen_save(struct rstore *, const struct state *);
/* PREFIX "ends" holds another type of value: said once. */
void	rs_ends_alien(struct rstore *);
/* The hold a look reports: 0 or -1. */
int	rs_look_hold(struct rstore *, struct store_txn *);
/* Holder slots a hold lacks after the last read (-1: unknown), or 0. */
long	rs_hold_missing(const struct rstore *);
/* What PREFIX "ends" keeps of a value ("END NEXT WAIT LIMIT NH NW AT"). */
void	rs_ends_format(const struct rstore *, const struct state *, char *,
	    size_t);
/* A waiter's timer brought forward to at (boot ns) (store_redis_wait.c). */
void	rs_wait_until(struct rstore *, int64_t);
/* A waiter's lost connection made again, the server being back. */
void	rs_wait_arm(struct rstore *);
/* A waiter's parts, closed (store_redis_wait.c). */
void	rs_wait_close(struct rstore *);
/* See forked in store.h (store_redis_wait.c). */
void	rs_forked(struct store *);

#endif
