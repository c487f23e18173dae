/*
 * Kill-all: stop every running command of a gate with everything below
 * it, TERM (or the signal asked) first, SIGKILL after a grace period.
 */
#ifndef GATERUN_KILLALL_H
#define GATERUN_KILLALL_H

#include <stddef.h>

#include "gate.h"
#include "proc.h"

/* A holder as kill-all sees it: its slot, its wrapper and its command. */
struct killall_holder {
	int		slot;
	struct procid	wrapper;
	struct procid	cmd;		/* pid 0: not started */
};

/*
 * Send sig to the commands of the n holders and all their descendants,
 * wait up to grace seconds for them and their wrappers to end, then
 * SIGKILL what is left (and what it forked meanwhile). Only processes
 * that pass the checks at the top of killall.c are touched; the caller
 * and its ancestors never are. *out lists the processes first signalled,
 * those refused (error ESTALE or EPERM) and the caller's own slots
 * (error EDEADLK); malloc'd. Returns 0 or -1.
 */
int	killall_run(const struct killall_holder *, size_t, int, double,
	    struct gate_kill **, size_t *);

#endif
