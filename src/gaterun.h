/*
 * What the parts of the gaterun command line share: the options as parsed
 * (gaterun.c), the run mode (run.c) and the admin modes (admin.c), and the
 * few helpers they all use to open a gate and to word its errors.
 */
#ifndef GATERUN_CLI_H
#define GATERUN_CLI_H

#include <sys/types.h>

#include <stdint.h>
#include <syslog.h>
#include <time.h>

#include "gate.h"
#include "proc.h"

#define __dead	__attribute__((__noreturn__))

enum mode {
	MODE_RUN, MODE_STATUS, MODE_LIMIT, MODE_KILL, MODE_ACTIVE, MODE_CHECK,
	MODE_METRICS
};

struct opts {
	enum mode	mode;
	int		nmodes;
	const char	*gate;
	const char	*dir;
	char		where[1024];	/* dir as shown: no password */
	unsigned	deflimit;
	unsigned	limit;		/* --limit N */
	int		nowait;		/* -n */
	int		exec;		/* -x: become the command */
	int		leaseset;	/* --lease given */
	unsigned	weight;		/* -N K: slots taken at once */
	int		priority;	/* -p N: place in line */
	const char	*key;		/* -u/-U KEY: unique key */
	const char	*parent;	/* --limit N --parent GATE ("": none) */
	char		conf_parent[GATE_NAME_MAX + 1]; /* the configuration's */
	int		join;		/* -U: follow a run of the key */
	struct res_need	need;		/* --min-mem, --max-pressure, --max-load */
	int		jobserver;	/* -J: JS_* of jobserver.h */
	double		wait;		/* -w SECS; < 0: forever */
	int		conflict;	/* exit code when no slot */
	int		json;
	int		log;		/* --log or GATERUN_LOG: syslog events */
	int		persist;	/* --limit N --persist */
	const char	*conf;		/* configuration file */
	int		all;		/* --all: every gate of the directory */
	double		watch;		/* --watch: redraw period; < 0 off */
	unsigned	warn, crit;	/* --check thresholds, percent */
	double		maxwait;	/* --check: a waiter stuck this long */
	int		sig;		/* --kill-all signal */
	double		grace;
	pid_t		pid;		/* --is-active */
	int		killset;	/* --signal or --grace given */
	int		checkset;	/* --warn, --crit or --max-wait given */
	char		**cmd;
	char		**envp;		/* the environment as it came */
};

struct gate;

/*
 * One event to syslog (journald picks it up), when logging is on. A macro,
 * so that its arguments (a user lookup among them) cost nothing when off.
 */
#define logev(o, ...)	do {						\
	if ((o)->log)							\
		syslog(LOG_INFO, __VA_ARGS__);				\
} while (0)

/* gaterun.c: the caller's user name, for the log. */
const char	*me(void);
/* gaterun.c: die with the reason a person can act on (errno set). */
void __dead	die_gate(const struct opts *, const char *);
/* gaterun.c: print an engine warning the way every diagnostic is printed. */
void		on_notify(void *, const char *);
/* gaterun.c: open o->gate (made on first use if create), or die. */
struct gate	*open_gate(const struct opts *, int);
/* The most gates a chain of parents holds, the gate itself included. */
#define MAX_CHAIN	8
/*
 * gaterun.c: the gate name, then its parent (first, if not NULL, else
 * looked up), the parent's parent... (each gate's own, else its [gate
 * NAME] parent in the configuration), into chain[0..*n); dies on a cycle
 * or a chain longer than MAX_CHAIN.
 */
void		gate_chain(const struct opts *, const char *, const char *,
		    char (*)[GATE_NAME_MAX + 1], size_t *);
/* gaterun.c: open gate name (made on first use), or die. */
struct gate	*open_named_gate(const struct opts *, const char *);

/*
 * job.c: the command as a job of its own (process group, terminal, job
 * control). Not used with -x, where gaterun becomes the command.
 */
struct job {
	pid_t	cmd;		/* the command */
	pid_t	pgrp;		/* its process group: cmd, or ours if !own */
	pid_t	ours;		/* our process group, the caller's */
	int	own;		/* the command leads a process group of its own */
	int	tty;		/* our controlling terminal, or -1 */
	int	give;		/* a job of our own: the command's group gets
				   the terminal whenever ours has it */
	int	held;		/* the command had or wanted the terminal when
				   it last stopped */
};

/* Open the terminal; choose whether the command gets a group of its own. */
void	job_init(struct job *);
/* In the forked child, before anything: join the command's group. */
void	job_child(const struct job *);
/* In the parent, after fork: the same (whichever runs first wins). */
void	job_forked(const struct job *, pid_t);
/* Just before the command runs: give it the terminal if ours has it. */
void	job_start(struct job *, pid_t);
/* Pass a signal on to the command's process group (or to it alone). */
void	job_signal(const struct job *, int);
/*
 * The command stopped with sig: hand it the terminal it asked for, or take
 * the terminal back and stop ourselves with sig; returns once continued.
 */
void	job_stopped(struct job *, int);
/* We were continued: the terminal to the command's group, then SIGCONT. */
void	job_continued(struct job *);
/* The command is gone: take the terminal back, close it. */
void	job_ended(struct job *);

/*
 * lease.c: a holder's lease on a store shared by hosts (Redis): renewed
 * by the wrapper, watched by a watchdog process that stops the command
 * before the lease can end unrenewed. All no-ops on other stores.
 */
struct lease {
	struct gate	*g;
	const char	*gate;
	int64_t		period;		/* renew every (ns); 0: no lease */
	int64_t		until;		/* boot ns the lease surely runs to */
	int		fd;		/* to the watchdog: lease ends */
	pid_t		dog;		/* the watchdog, or -1 (gone) */
	pid_t		cmd;		/* the command it watches */
	struct procid	self;		/* the wrapper (us) */
	int		own;		/* cmd leads its process group */
	int		on;		/* a lease is kept */
	timer_t		timer;		/* SIGALRM every period (boot clock) */
	int		armed, failing;
	int		dog_stops;	/* times the watchdog was stopped */
};
/* Renew now, start the watchdog over cmd and the timer; 0 or -1. */
int	lease_start(struct lease *, struct gate *, const char *, pid_t, int);
/* The timer fired: renew, and tell the watchdog. */
void	lease_tick(struct lease *);
/*
 * A child the wrapper waited for, with its status: 1 if it was the
 * watchdog (gone; or stopped: continued, never taken for dead).
 */
int	lease_reaped(struct lease *, pid_t, int);
/* The command still runs: start the watchdog again if it is gone. */
void	lease_check(struct lease *);
/* The command ended: stop the timer and the watchdog. */
void	lease_stop(struct lease *);

/* run.c: take a slot, run the command, give the slot back. */
int	do_run(const struct opts *);

/* admin.c: --status, --check, --metrics (once or --watch). */
int	do_show(const struct opts *);
/* admin.c: --limit. */
int	do_limit(const struct opts *);
/* admin.c: --kill-all; 1 when some process could not be signalled. */
int	do_kill(const struct opts *);
/* admin.c: --is-active: 0 if the PID holds a slot, else 1. */
int	do_active(const struct opts *);

#endif
