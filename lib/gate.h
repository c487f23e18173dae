/*
 * The gate engine: a bounded set of slots shared by unrelated processes,
 * with a first-come, first-served queue. Where a gate lives is named by a
 * locator (a directory today); the store behind it is private to lib/:
 * the programs see only this.
 */
#ifndef GATERUN_GATE_H
#define GATERUN_GATE_H

#include <sys/types.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "resource.h"

#define GATE_MAX_LIMIT		4096
#define GATE_NAME_MAX		64
#define GATE_HOST_MAX		64	/* a host id (a store shared by hosts) */
#define GATE_DEFAULT_LIMIT	5
#define GATE_HOST_MAX		64	/* a host id (STATE_HOST_LEN) */
#define GATE_MAX_PRIO		1000000	/* priorities: -MAX..MAX */
#define GATE_KEY_MAX		32	/* a unique key's length */
/*
 * Priorities never starve anyone: a waiter lets at most GATE_MAX_PASS
 * later requests of a higher priority ahead of it, and the head of the
 * line (served next) none.
 */
#define GATE_MAX_PASS		16

struct gate;

/* What a caller supplies about the command it will run. */
struct gate_req {
	const char	*cwd;
	const char	*command;	/* argv joined by spaces */
	int		self_cmd;	/* the caller will exec the command */
	pid_t		cmd;		/* a child already forked: recorded if
					   the slot is taken at once, else 0 */
	unsigned	weight;		/* slots taken at once (0: 1) */
	int		priority;	/* higher first; FIFO within one */
	const char	*key;		/* unique key (gate_key_valid) or NULL */
	int		join;		/* with key: follow a live request of
					   that key instead of failing */
	const struct res_need *need;	/* what the machine must have free
					   when it starts, or NULL */
};

/* How a wait in line sleeps. */
struct gate_wait {
	int64_t		deadline;	/* CLOCK_MONOTONIC ns; -1: forever */
	const sigset_t	*sigmask;	/* mask while asleep (ppoll) */
	const volatile sig_atomic_t *stop; /* set by a signal: leave queue */
};

/* A holder or waiter, as status reports it. */
struct gate_proc {
	int		slot;		/* -1 for a waiter */
	pid_t		pid;		/* the command (0: not started) */
	pid_t		wrapper_pid;
	uid_t		uid;
	int64_t		time_ns;	/* realtime: started, or queued */
	char		*cwd;
	char		*command;
	int		state;		/* GATE_PROC_* bits, from /proc */
	char		host[GATE_HOST_MAX + 1]; /* its host in a store shared
					   by hosts (Redis), else "" */
	unsigned	weight;		/* slots of its request (1..) */
	int		priority;	/* a waiter's */
	unsigned	passed;		/* a waiter's: later ones let ahead */
	char		key[GATE_KEY_MAX + 1]; /* its unique key, or "" */
	struct res_need	need;		/* a waiter's resource needs */
};

/* gate_proc.state: what its processes are doing now. */
#define GATE_PROC_STOPPED	0x1	/* its command or wrapper is stopped */
#define GATE_PROC_NOT_STARTED	0x2	/* a holder whose command has not
					   started: pid is the wrapper's child
					   waiting for the go-ahead, or 0 */

/* A snapshot of one gate. */
struct gate_info {
	int		exists;		/* 0: never used, defaults shown */
	unsigned	limit;
	char		parent[GATE_NAME_MAX + 1]; /* its parent gate, or "" */
	uint64_t	acquired;	/* requests granted, ever */
	uint64_t	wait_ns;	/* time those spent queued */
	struct gate_proc *h;		/* holders, by slot */
	size_t		nh;
	struct gate_proc *w;		/* waiters, in order */
	size_t		nw;
	/*
	 * A store shared by hosts (Redis), after a loss of the server's data
	 * or of records (see GATE_HOLD_*): nobody new starts until hold_until
	 * (CLOCK_REALTIME ns; 0: no hold) while the holders record their
	 * slots again; limit_lost 1 when the limit went with the data (limit
	 * is then a default, until a holder records the one it saw).
	 */
	int64_t		hold_until;
	int		hold_why;
	int		limit_lost;
	/*
	 * 1: read from a read-only Redis replica with no gaterun data (not
	 * synced with its master yet, or none there): what is shown is a new
	 * gate's defaults, not the gate's state.
	 */
	int		replica_unsynced;
};

/* Why a gate is held (gate_info.hold_why, gate_hold). */
#define GATE_HOLD_LOST		1	/* the server lost the gate's data: a
					   restart without persistence, a
					   failover, the key deleted */
#define GATE_HOLD_DROPPED	2	/* records dropped though renewed in
					   time: the server stalled, or its
					   clock was stepped */
#define GATE_HOLD_CHECK		3	/* records of other processes all ended
					   at once, first seen by a newcomer:
					   maybe a step of the server's clock;
					   their owners have a renewal period
					   to show they live */

/* One process kill-all tried to signal. */
struct gate_kill {
	pid_t		pid;
	int		error;		/* 0, or errno from signalling; ESTALE:
					   not signalled, the record names no
					   process gaterun started here (PID
					   1, a kernel thread, another PID
					   namespace's); EDEADLK: not
					   signalled, the caller's own slot */
	int		slot;		/* whose record led to it */
	/*
	 * A store shared by hosts (Redis): the host that signalled it, or
	 * that did not answer within the grace (error ETIMEDOUT: pid is the
	 * command's, which may still run). "" elsewhere.
	 *
	 * There, during the hold after a loss of the server's data, one
	 * entry is no process (error EHOSTUNREACH, host ""): slot is how
	 * many holder slots the key lacked (-1: not known), pid how many of
	 * them answered a request sent to every holder; the others were
	 * not reached.
	 */
	char		host[GATE_HOST_MAX + 1];
};

/* Warnings the engine wants a person to see (the caller prints them). */
typedef void	gate_notify_fn(void *, const char *);

/* 1 if name is a valid gate name (1-64 of [A-Za-z0-9._-], no leading .) */
int	gate_name_valid(const char *);
/* 1 if s is a valid unique key (1-32 of [A-Za-z0-9._:@+/-]). */
int	gate_key_valid(const char *);
/*
 * A sentence on why a gate call failed with errno e, for "what: why"
 * messages: the engine's own reasons, else strerror(e).
 */
const char *gate_strerror(int);
/*
 * The gates of the store at locator loc (a directory, or file:DIR),
 * sorted by name, as a malloc'd array of malloc'd names (free with
 * gate_list_free). A store not made yet has none.
 */
int	gate_list(const char *, char ***, size_t *);
void	gate_list_free(char **, size_t);
/*
 * Make the store at locator loc, if it does not exist yet, shared by the
 * members of group gid (a directory of mode 2770). One that exists is
 * left as it is. 0, or -1 (ENOTSUP: the store cannot be shared so).
 */
int	gate_share(const char *, gid_t);
/*
 * Open gate name in the store at locator loc. With create set, the store
 * and the gate are made on first use, with limit deflimit. 0 or -1
 * (EPROTONOSUPPORT: no such kind of store).
 */
/*
 * How the gate_open calls that follow may wait for a store's server
 * (Redis; the file store never waits to open): until w's deadline
 * (CLOCK_MONOTONIC ns), or -1, the store's own timeouts; a signal that
 * sets w->stop, let in by w->sigmask, ends the wait (EINTR). NULL: no
 * deadline, no signal. w is copied. Later waits are set per gate with
 * gate_set_wait.
 */
void	gate_set_open_wait(const struct gate_wait *);
/*
 * 1 if gate_open at loc failed with e for a while only: a store of
 * leases (Redis) whose server cannot be reached or cannot serve for now
 * (restarting, failing over, full). errno is left as e.
 */
int	gate_open_transient(const char *, int);
int	gate_open(struct gate **, const char *, const char *, unsigned, int,
	    gate_notify_fn *, void *);
/*
 * How this gate's transactions wait for its lock while another process
 * holds it (for microseconds, unless that process is stopped or stuck):
 * until w->deadline (the call fails with ENOLCK), or until *w->stop is
 * set (EINTR), asleep with w->sigmask; a wait that begins past the
 * deadline or told to stop still gives the lock a second. A wait that
 * lasts names the holder through the notify function. w is copied; NULL (the default): as long as it takes. Reads
 * (gate_info, gate_is_active) take no lock at all. For single-threaded
 * programs: SIGALRM is caught while a wait lasts.
 */
void	gate_set_wait(struct gate *, const struct gate_wait *);
/* Close the gate; slots still held are released, a place in line left. */
void	gate_close(struct gate *);
/*
 * Ask for one more slot (a process may hold several), or req->weight
 * slots at once (each a holder record; given in one go when that many are
 * free and the request's turn has come: nobody behind it passes it).
 * Returns 1 when the slots free now are taken (see gate_slot); else, with
 * wait set, joins the line at its priority and returns 0 (then call
 * gate_wait), without it 0 means full. -1 on error (EBUSY: already in
 * line; EUSERS: the line holds as many waiters as a state may,
 * STATE_MAX_WAITERS; E2BIG: the weight is above the gate's limit, which
 * is not 0; EINVAL: a weight, priority, key or need out of range).
 *
 * With req->need, the slots are given only while the machine meets it
 * (res_check), checked by this process alone (where the command will
 * run): at once, and at the head of the line whenever slots are free for
 * it; held there, it keeps its place and nobody behind it passes it, and
 * gate_wait looks again every RES_PERIOD_MS (see gate_res_why).
 *
 * With req->key, a live request of the same key (queued or holding) is
 * looked for in the same transaction that would queue this one: if there
 * is one, -1 with EEXIST, or with req->join, 2: this process follows it
 * (gate_follow) and takes nothing. Else the key is this request's until
 * its slots are given back or its processes are gone.
 */
int	gate_enqueue(struct gate *, const struct gate_req *, int);
/*
 * Wait in line after gate_enqueue returned 0. Returns 1 when the slot is
 * taken; 0 when the place in line changed (*pos, 1 = head, of *nq queued):
 * the caller may act (fork its command ahead, gate_set_cmd) and calls
 * again; -1 on error, with ETIMEDOUT when w->deadline passed and EINTR
 * when *w->stop was set (the line was left in both cases).
 */
int	gate_wait(struct gate *, const struct gate_req *,
	    const struct gate_wait *, size_t *, size_t *);
/*
 * gate_wait for a caller that sleeps in a poll loop of its own (a
 * jobserver serving a build while it waits): one step in line, without
 * sleeping. Returns 1 when the slot is taken; 0 while still in line, with
 * *fds (*n of them, events POLLIN) to poll and *ms the longest sleep (-1:
 * none), after which, or when one is readable, it is called again; -1 on
 * error. The fds are the gate's: never closed by the caller.
 */
struct pollfd;
int	gate_poll(struct gate *, const struct gate_req *,
	    const struct pollfd **, size_t *, int *);
/*
 * gate_enqueue then gate_wait until done. With w NULL, only a slot free
 * now. Returns 1 (taken), 0 (full, or the deadline passed), -1 (EINTR:
 * *w->stop was set and the line was left).
 */
int	gate_acquire(struct gate *, const struct gate_req *,
	    const struct gate_wait *);
/*
 * After gate_enqueue returned 2: wait until the request followed ends.
 * 1 with *status its exit status (gate_set_status), 0 if it ended without
 * one (its wrapper killed, exec mode, or it left the line unserved), -1 on
 * error: ETIMEDOUT when w->deadline passed, EINTR when *w->stop was set.
 * *pid gets its wrapper's PID, for messages.
 */
int	gate_follow(struct gate *, const struct gate_wait *, int *, pid_t *);
/*
 * The exit status (0..255) those who follow this process's keyed request
 * get: recorded when its slots are given back.
 */
void	gate_set_status(struct gate *, int);
/*
 * Why the last look held this process's request though slots were free:
 * a resource need not met (res_check's sentence); NULL if it did not.
 */
const char *gate_res_why(const struct gate *);
/* The slot index taken last (0..limit-1), or -1 if none is held. */
int	gate_slot(const struct gate *);
/* How many slots this process holds. */
size_t	gate_held(const struct gate *);
/* 1 if the slot taken last records its command (see gate_req.cmd). */
int	gate_has_cmd(const struct gate *);
/* The parent gate the last transaction saw ("" for none). */
const char *gate_parent(const struct gate *);
/* Active count and limit seen by the last transaction (for messages). */
void	gate_counts(const struct gate *, size_t *, unsigned *);
/*
 * 1 if the last transaction found the gate held (a store shared by hosts,
 * after a loss: see gate_info.hold_until), with *until (CLOCK_REALTIME ns),
 * *why (GATE_HOLD_*) and *limit_lost; 0 if not. gate_counts's limit is
 * then the gate's own (or the default shown while it is lost).
 */
int	gate_hold(const struct gate *, int64_t *, int *, int *);
/*
 * 1 if the last gate_enqueue neither took a slot nor queued because the
 * request's key cannot be checked: the gate is held after a loss (see
 * gate_hold) and holders not recorded again may hold it. The caller may
 * sleep until the hold ends (gate_hold_sleep) and enqueue again.
 */
int	gate_key_unknown(const struct gate *);
/*
 * Sleep until the hold gate_hold saw ends, gw's deadline (ETIMEDOUT) or a
 * signal gw->stop records (EINTR). 0 or -1.
 */
int	gate_hold_sleep(const struct gate *, const struct gate_wait *);
/*
 * Record the command this process started: for the request in line (the
 * record carries it on promotion), else for the slot taken last.
 */
int	gate_set_cmd(struct gate *, pid_t);
/*
 * On a store whose records are leases (Redis): how often (ns) this
 * process must renew them while it holds or waits; 0 on other stores.
 */
int64_t	gate_lease_period(const struct gate *);
/*
 * Renew this process's records now (one transaction); *until gets the
 * CLOCK_BOOTTIME instant up to which they surely stay (-1: none held),
 * set as the last renewal left it when this one fails. 0 or -1; on other
 * stores 0 and *until -1.
 */
int	gate_renew(struct gate *, int64_t *);
/* Give back every slot held. Returns 0 or -1. */
int	gate_release(struct gate *);
/* Give back one slot held (EINVAL: not ours). Returns 0 or -1. */
int	gate_release_slot(struct gate *, int);
/*
 * Snapshot the gate, without its lock: what the last change left, dead
 * records left out (their slots pass on when a writer reaps them).
 */
int	gate_info(struct gate *, struct gate_info *);
void	gate_info_free(struct gate_info *);
/* Set the limit (0 pauses); *old gets the previous one. */
int	gate_set_limit(struct gate *, unsigned, unsigned *);
/*
 * Set the gate's parent gate (a valid name, or "" for none): a command
 * run in the gate then also takes a slot of the parent (the caller does
 * that, and refuses cycles). 0 or -1 (EINVAL: not a gate name; EBUSY:
 * a different parent while the gate has holders or waiters).
 */
int	gate_set_parent(struct gate *, const char *);
/*
 * Lock the store at loc for a change of parents (held until the returned
 * descriptor is closed; changes of parents take it, nothing else): the
 * chains checked under it stay as seen. A descriptor, or -1.
 */
int	gate_lock_store(const char *);
/*
 * Send sig to every running command of the gate and all its descendants;
 * after grace seconds, SIGKILL what is left. *out lists what was tried.
 * On a store shared by hosts (Redis) it is a request each holder's
 * watchdog serves on its own host (gate_kill_listen); a holder that did
 * not answer within grace + GATE_KILL_SLACK seconds is listed ETIMEDOUT
 * (also when the server was lost meanwhile): there, -1 means that no
 * request was sent.
 */
int	gate_kill_all(struct gate *, int, double, struct gate_kill **,
	    size_t *);
#define GATE_KILL_SLACK	3	/* s: a host's SIGKILL round and the trip */
/*
 * A holder's side of kill-all on a store shared by hosts, in a process of
 * its own on the holder's host (the lease watchdog): listen for requests
 * naming this process's slot, whose command is cmd, waiting for the
 * server until deadline (CLOCK_MONOTONIC ns) at most; an fd readable when
 * one may have come, or -1 (ENOTSUP: the store has no such requests).
 */
int	gate_kill_listen(struct gate *, pid_t, int64_t, void **);
/*
 * Serve what came: stop the command and its tree as gate_kill_all does
 * here, and answer what was done. 0, or -1 when the connection is lost
 * (gate_kill_unlisten it; listen again later). Never blocks on the fd.
 */
int	gate_kill_serve(void *);
void	gate_kill_unlisten(void *);
/*
 * In a process forked from the gate's owner that goes on using it (the
 * lease watchdog, to renew the owner's records while the owner is
 * stopped): the store's connections shared with the owner are let go
 * here, and the next transaction opens its own. Never gate_close such a
 * copy (it would give the owner's slots back): _exit.
 */
void	gate_forked(struct gate *);
/* 1 if pid is a live holder's command or wrapper, 0 if not, -1 error. */
int	gate_is_active(struct gate *, pid_t);

/* A watch on every gate of a store. */
struct gate_watch;
/* Watch the store at locator loc (it need not exist yet). 0 or -1. */
int	gate_watch_open(struct gate_watch **, const char *);
/* The fd to poll: readable when some gate of the store may have changed. */
int	gate_watch_fd(const struct gate_watch *);
/*
 * Consume what is readable: fn(arg, name) for each gate that changed, or
 * fn(arg, NULL) when any may have. Never blocks. 0 or -1.
 */
int	gate_watch_read(struct gate_watch *, void (*)(void *, const char *),
	    void *);
void	gate_watch_close(struct gate_watch *);

#endif
