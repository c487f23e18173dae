/*
 * Processes: identity that survives PID reuse (pid + start time), liveness,
 * pidfds, and the process tree below a PID.
 */
#ifndef GATERUN_PROC_H
#define GATERUN_PROC_H

#include <sys/types.h>

#include <errno.h>

/* A process as the kernel names it for its whole life. */
struct procid {
	pid_t			pid;	/* 0: none */
	unsigned long long	start;	/* field 22 of /proc/PID/stat */
};

/* What /proc/PID/stat says about a process now. */
struct procstat {
	struct procid	id;
	pid_t		ppid;
	char		state;	/* R, S, D, T (stopped), t (traced), Z... */
	unsigned long	flags;	/* the kernel's PF_* bits */
	long		nthreads;	/* field 20: threads in its group */
};

/* The PF_* bits of the kernel's include/linux/sched.h used here. */
#define PROC_PF_FORKNOEXEC	0x00000040UL	/* forked, no execve yet */
#define PROC_PF_KTHREAD		0x00200000UL	/* a kernel thread */

/*
 * proc_id's errno when /proc is not our PID namespace's: "Object is
 * remote", for want of a better one.
 */
#define PROC_EFOREIGN		EREMOTE
/*
 * A store's errno when a gate's records name processes of another PID
 * namespace, which this one cannot check: "Invalid cross-device link".
 */
#define PROC_EPIDNS		EXDEV

/* Bits of proc_runstate(). */
#define PROC_STOPPED		0x1	/* stopped (state T or t) */
#define PROC_UNEXECED		0x2	/* a fork that has not exec'd yet */

/* Read /proc/PID/stat; returns 0, or -1 (ESRCH when gone). */
int	proc_stat(pid_t, struct procstat *);
/*
 * 1 if ps shows a process that has ended: a zombie, unless only its main
 * thread has (pthread_exit: state Z while other threads run on).
 */
int	proc_ended(const struct procstat *);
/*
 * 1 if /proc is this process's PID namespace's (/proc/self names
 * getpid()), 0 if another's, -1 if it cannot be read.
 */
int	proc_trusted(void);
/*
 * Fill id for pid from /proc, to be recorded; returns 0, or -1: ESRCH
 * when gone, PROC_EFOREIGN when /proc is not our PID namespace's.
 */
int	proc_id(pid_t, struct procid *);
/* This process's own identity (read once per process). */
int	proc_self(struct procid *);
/* 1 if id still names a running (not zombie) process, 0 if not. */
int	proc_alive(const struct procid *);
/* PROC_STOPPED and PROC_UNEXECED bits for id; 0 if neither or gone. */
int	proc_runstate(const struct procid *);
/*
 * 1 if pid lives in our PID namespace, 0 if in another; -1 (ESRCH gone,
 * EACCES not ours to inspect).
 */
int	proc_same_pidns(pid_t);
/*
 * This process and its ancestors, nearest first, up to the top of our
 * PID namespace; *out is malloc'd. Returns 0 or -1.
 */
int	proc_ancestors(struct procid **, size_t *);
/*
 * Open a pidfd for id and check it still names id (no PID reuse between
 * reading the state and opening). Returns the fd, or -1 (ESRCH if dead).
 */
int	proc_pidfd_id(const struct procid *);
/* This boot's id (/proc/sys/kernel/random/boot_id), 36 chars + NUL. */
int	proc_bootid(char *, size_t);
/*
 * Every descendant of root (not root itself, no kernel thread), as found
 * in one scan of /proc; *out is malloc'd. Returns 0 or -1 (EINVAL: root
 * is PID 1 or below, whose tree is every process).
 */
int	proc_descendants(pid_t, struct procid **, size_t *);

#endif
