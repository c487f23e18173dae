/*
 * Processes: identity that survives PID reuse (pid + start time), liveness,
 * pidfds, and the process tree below a PID.
 */
#ifndef GATERUN_PROC_H
#define GATERUN_PROC_H

#include <sys/types.h>

/* A process as the kernel names it for its whole life. */
struct procid {
	pid_t			pid;	/* 0: none */
	unsigned long long	start;	/* field 22 of /proc/PID/stat */
};

/* Fill id for pid from /proc; returns 0, or -1 (ESRCH when gone). */
int	proc_id(pid_t, struct procid *);
/* 1 if id still names a running (not zombie) process, 0 if not. */
int	proc_alive(const struct procid *);
/* pidfd_open(2) with close-on-exec; -1 on error. */
int	proc_pidfd(pid_t);
/*
 * Open a pidfd for id and check it still names id (no PID reuse between
 * reading the state and opening). Returns the fd, or -1 (ESRCH if dead).
 */
int	proc_pidfd_id(const struct procid *);
/* This boot's id (/proc/sys/kernel/random/boot_id), 36 chars + NUL. */
int	proc_bootid(char *, size_t);
/*
 * Every descendant of root (not root itself), as found in one scan of
 * /proc; *out is malloc'd. Returns 0 or -1.
 */
int	proc_descendants(pid_t, struct procid **, size_t *);

#endif
