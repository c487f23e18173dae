/*
 * One gate's storage, as the policy (gate.c) sees it: a transaction
 * (begin -> the state -> commit with the wake-ups to send, or abort),
 * liveness of the processes records name, how a waiter is woken, and
 * the gates of a store. The file store (store_file.c) is one; a store
 * never decides who runs, and the policy never knows where state lives.
 */
#ifndef GATERUN_STORE_H
#define GATERUN_STORE_H

#include <stddef.h>

#include "gate.h"
#include "proc.h"
#include "state.h"

/* A wake-up to send at commit: a waiter's address from its record. */
typedef char	store_addr[STATE_ADDR_LEN + 1];

/* What begin found; the policy changes st and sets dirty. */
struct store_txn {
	struct state	st;
	int		exists;	/* 0: gate never made and create off:
				   st holds the defaults, nothing locked */
	int		lost;	/* damaged or missing: some waiters may be
				   named nowhere; commit wakes them all */
	int		dirty;	/* st must be written */
	int		wake_late; /* send the wake-ups after st is stored:
				   whoever they wake watches the sender */
	/*
	 * A store of leases (Redis) after a loss, or while it checks that
	 * records ended all at once are dead: nobody new starts until
	 * hold_until (CLOCK_REALTIME ns; 0: no hold), for hold_why
	 * (GATE_HOLD_*). Meanwhile a transaction's st.limit shows the policy
	 * only as many slots as hold, and hold_limit is the gate's own limit
	 * (a change of limit goes there); limit_lost 1: the server lost it
	 * with its data, and hold_limit is a default until a holder records
	 * the limit it saw again.
	 */
	int64_t		hold_until;
	int		hold_why;
	unsigned	hold_limit;
	int		limit_lost;
	/*
	 * 1: during that hold, holders from before the loss are not recorded
	 * again: the keys (gate_req.key) they hold are not known, and a keyed
	 * request is not let in (N-7 of brk-redis8).
	 */
	int		keys_unknown;
	/*
	 * 1: a reader of a read-only replica with no gaterun data (Redis: not
	 * synced with its master yet, or none there): st is a new gate's,
	 * not what the master holds.
	 */
	int		unsynced;
};

/* Every store starts with this. */
struct store {
	const struct store_ops	*ops;
};

/* A holder kill-all asks to stop, on a store shared by hosts. */
struct store_holder {
	int		slot;
	struct procid	wrapper;
	struct procid	cmd;		/* pid 0: not started */
	char		host[STATE_HOST_LEN + 1];
};

/*
 * A kill-all request as a holder's listener took it. wild: it did not
 * name this holder but asked every listener of the gate (the holders
 * the key lacks during a hold after a loss); the answer then says the
 * holder's slot and how many it holds (slot, nslots: set by the server
 * of the request, gate_kill_serve).
 */
struct store_killreq {
	char		id[40];
	int		sig;
	double		grace;
	int		wild;
	int		slot;
	unsigned	nslots;
};

struct store_ops {
	const char	*scheme;	/* locator prefix, "file" */
	/* Gate name at loc (locator without "scheme:"). 0 or -1. */
	int	(*open)(struct store **, const char *loc, const char *name,
		    unsigned deflimit, int create, gate_notify_fn *, void *);
	void	(*close)(struct store *);
	/* Lock and read (or defaults, exists 0). 0 or -1. */
	int	(*begin)(struct store *, struct store_txn *);
	/* Wake addrs[0..n), write st if dirty, unlock, free st. 0 or -1. */
	int	(*commit)(struct store *, struct store_txn *,
		    const store_addr *, size_t);
	/* Unlock and free st; nothing written. */
	void	(*abort)(struct store *, struct store_txn *);
	/*
	 * Optional (NULL: gate.c runs a transaction and aborts it). The
	 * state as it stands, without the lock, for a caller that only looks:
	 * st as begin gives it (nothing is written back); free it with
	 * state_free. 0 or -1.
	 */
	int	(*snapshot)(struct store *, struct store_txn *);
	/*
	 * Optional (NULL: begin waits as it does). How begin waits for a
	 * lock another process holds, or a server for its replies
	 * (gate_set_wait): w copied, NULL as long as it takes. A signal
	 * that sets w->stop while w->sigmask lets it in ends the wait:
	 * EINTR.
	 */
	void	(*set_wait)(struct store *, const struct gate_wait *);
	/* 1 if the process a record names still runs, else 0. */
	int	(*alive)(struct store *, const struct procid *);
	/* An fd readable once id has ended; -1 (ESRCH: ended already). */
	int	(*watch)(struct store *, const struct procid *);
	/* A waiter's wake fd, its address copied to addr. -1 on error. */
	int	(*listen)(struct store *, store_addr);
	/* Throw away wake-ups received. */
	void	(*drain)(struct store *);
	/* Optional: close the wake fd listen gave (out of line for now). */
	void	(*unlisten)(struct store *);
	/*
	 * Optional: tidy what a waiter found dead (its record dropped) left
	 * behind, by its address; called after the commit, unlocked.
	 */
	void	(*forget)(struct store *, const char *);
	/* Make the store at loc shared by a group (gate_share); or NULL. */
	int	(*share)(const char *loc, gid_t);
	/* The gates of the store at loc, sorted (gate_list). */
	int	(*list)(const char *loc, char ***, size_t *);
	/* See gate_watch_open(): an fd, and what a read of it says. */
	int	(*watch_open)(const char *loc, void **);
	int	(*watch_fd)(void *);
	int	(*watch_read)(void *, void (*)(void *, const char *), void *);
	void	(*watch_close)(void *);
	/*
	 * Optional (NULL: a record lives as long as its processes). A store
	 * whose records are leases (Redis): *period, how often (ns) this
	 * process must renew them (any commit of its own does); *until, the
	 * CLOCK_BOOTTIME instant up to which they surely run (-1: none
	 * renewed yet). 0 or -1.
	 */
	int	(*lease)(struct store *, int64_t *, int64_t *);
	/*
	 * Optional (NULL: kill-all signals here). Kill-all on a store shared
	 * by hosts: ask the holders h[0..n) (alive, as reaped) to stop their
	 * commands, wait for their answers (see gate_kill_all). 0 or -1.
	 */
	int	(*kill_remote)(struct store *, const struct store_holder *,
		    size_t, int, double, struct gate_kill **, size_t *);
	/*
	 * A holder's listener (gate_kill_listen): the fd to poll, or -1;
	 * take a request naming it (1), none (0), the connection lost (-1);
	 * answer what was done; close.
	 */
	int	(*kill_listen)(struct store *, int64_t, void **);
	int	(*kill_take)(void *, struct store_killreq *);
	int	(*kill_answer)(void *, const struct store_killreq *, int,
		    const struct gate_kill *, size_t);
	void	(*kill_close)(void *);
	/*
	 * Optional: this process is a fork of the store's owner (the lease
	 * watchdog): the connections it shares with the owner are let go
	 * here alone, nothing sent on them; its next transaction opens one
	 * of its own.
	 */
	void	(*forked)(struct store *);
	/*
	 * 1: no lock; commit fails with EAGAIN, having written nothing, when
	 * another process wrote first, and gate.c runs the policy again.
	 */
	int	optimistic;
};

extern const struct store_ops store_file_ops;
#ifdef HAVE_HIREDIS
extern const struct store_ops store_redis_ops;	/* store_redis.c */
#endif

/* The wait of gate_set_open_wait, for a store's open (never NULL). */
const struct gate_wait *gate_open_wait(void);

/*
 * Open a gate on the given store directly (the unit tests' own stores):
 * as gate_open, with the locator already stripped of its scheme.
 */
int	gate_open_store(struct gate **, const struct store_ops *,
	    const char *, const char *, unsigned, int, gate_notify_fn *,
	    void *);

#endif
