/*
 * The gate engine: a bounded set of slots shared by unrelated processes,
 * with a first-come, first-served queue. The storage behind it (today one
 * file per gate) is private to lib/: the command line sees only this.
 */
#ifndef GATERUN_GATE_H
#define GATERUN_GATE_H

#include <sys/types.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define GATE_MAX_LIMIT		4096
#define GATE_NAME_MAX		64
#define GATE_DEFAULT_LIMIT	5

struct gate;

/* What a caller supplies about the command it will run. */
struct gate_req {
	const char	*cwd;
	const char	*command;	/* argv joined by spaces */
	int		self_cmd;	/* the caller will exec the command */
	pid_t		cmd;		/* a child already forked: recorded if
					   the slot is taken at once, else 0 */
};

/* How a blocking acquire waits. */
struct gate_wait {
	int64_t		deadline;	/* CLOCK_MONOTONIC ns; -1: forever */
	const sigset_t	*sigmask;	/* mask while asleep (ppoll) */
	const volatile sig_atomic_t *stop; /* set by a signal: leave queue */
	void		(*progress)(void *, size_t, size_t); /* pos, queued */
	void		*arg;
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
};

/* A snapshot of one gate. */
struct gate_info {
	int		exists;		/* 0: never used, defaults shown */
	unsigned	limit;
	uint64_t	acquired;	/* slots granted, ever */
	uint64_t	wait_ns;	/* time those spent queued */
	struct gate_proc *h;		/* holders, by slot */
	size_t		nh;
	struct gate_proc *w;		/* waiters, in order */
	size_t		nw;
};

/* One process kill-all tried to signal. */
struct gate_kill {
	pid_t		pid;
	int		error;		/* 0, or errno from signalling */
};

/* Warnings the engine wants a person to see (the caller prints them). */
typedef void	gate_notify_fn(void *, const char *);

/* 1 if name is a valid gate name (1-64 of [A-Za-z0-9._-], no leading .) */
int	gate_name_valid(const char *);
/*
 * The gates in directory dir, sorted by name, as a malloc'd array of
 * malloc'd names (free with gate_list_free). A missing directory has none.
 */
int	gate_list(const char *, char ***, size_t *);
void	gate_list_free(char **, size_t);
/*
 * Open gate name in directory dir. With create set, the directory and the
 * gate are made on first use, with limit deflimit. Returns 0 or -1.
 */
int	gate_open(struct gate **, const char *, const char *, unsigned, int,
	    gate_notify_fn *, void *);
/* Close the gate; a slot still held is released first. */
void	gate_close(struct gate *);
/*
 * Take a slot. With w NULL, only if one is free now; else wait in line
 * until w->deadline. Returns 1 when a slot is taken (see gate_slot), 0
 * when the gate is full (or the deadline passed), -1 on error (EINTR when
 * *w->stop was set: the caller left the queue).
 */
int	gate_acquire(struct gate *, const struct gate_req *,
	    const struct gate_wait *);
/* The slot index held (0..limit-1), or -1. */
int	gate_slot(const struct gate *);
/* 1 if the held slot already records its command (see gate_req.cmd). */
int	gate_has_cmd(const struct gate *);
/* Active count and limit seen by the last transaction (for messages). */
void	gate_counts(const struct gate *, size_t *, unsigned *);
/*
 * Record the command this process started for its slot: the held one, or,
 * while queued, the one it will get (the record carries it on promotion).
 */
int	gate_set_cmd(struct gate *, pid_t);
/* Give the held slot back. Returns 0 or -1. */
int	gate_release(struct gate *);
/* Snapshot the gate (dead entries are reaped first). */
int	gate_info(struct gate *, struct gate_info *);
void	gate_info_free(struct gate_info *);
/* Set the limit (0 pauses); *old gets the previous one. */
int	gate_set_limit(struct gate *, unsigned, unsigned *);
/*
 * Send sig to every running command of the gate and all its descendants;
 * after grace seconds, SIGKILL what is left. *out lists what was tried.
 */
int	gate_kill_all(struct gate *, int, double, struct gate_kill **,
	    size_t *);
/* 1 if pid is a live holder's command or wrapper, 0 if not, -1 error. */
int	gate_is_active(struct gate *, pid_t);

#endif
