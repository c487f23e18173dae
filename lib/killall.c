/*
 * Kill-all over process trees. A wrapper is a child subreaper, so every
 * process its command starts stays below it even when orphaned; the tree
 * is found by one scan of /proc and signalled through pidfds verified
 * against PID and start time, so a PID reused meanwhile is never hit.
 *
 * What is trusted. A record names its processes by PID and start time as
 * its maker's /proc showed them (proc_id refuses a /proc of another PID
 * namespace). A recorded wrapper or command is a root, signalled or its
 * tree walked, only if it still runs with that start time, lives in our
 * own PID namespace, is neither PID 1 (whose tree is every process) nor a
 * kernel thread, and, for a command whose wrapper still runs, is that
 * wrapper's child, as every command a wrapper starts is; a wrapper's tree
 * is walked only along with such a command. A holder with a live wrapper
 * or command that fails these checks is left alone whole: its record
 * names some other process. What is refused is reported (ESTALE), never
 * signalled.
 *
 * Kill-all from inside the gate. The caller and its ancestors are never
 * signalled: a kill-all run by a command of the gate signals and waits
 * for every other process first, then reports its own slot as spared
 * (EDEADLK) instead of dying of its own signal halfway.
 */
#include "config.h"

#include <sys/syscall.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "killall.h"
#include "sys.h"

#define USE_CMD		0x1	/* signal the command, walk its tree */
#define USE_WRAPPER	0x2	/* walk the wrapper's tree, wait for it */

/* pidfd_send_signal(2): no PID-reuse race between checking and signalling. */
static int
pidfd_signal(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* A process to signal, with the slot whose tree it was found in. */
struct pent {
	struct procid	id;
	int		fd;		/* verified pidfd; -1: already gone */
	int		slot;
};

/* A growing list of processes with their pidfds. */
struct plist {
	struct pent	*v;
	size_t		n, cap;
};

/* One kill-all: the holders, what may be touched, what was done. */
struct run {
	const struct killall_holder *h;
	size_t		nh;
	int		*use;		/* USE_* per holder */
	struct procid	*self;		/* we and our ancestors: spared */
	size_t		nself;
	struct plist	tg;		/* targets, then wrappers to wait for */
	struct gate_kill *out;
	size_t		nout, capout;
};

/* 1 if id is this kill-all or one of its ancestors. */
static int
is_self(const struct run *r, const struct procid *id)
{
	size_t i;

	for (i = 0; i < r->nself; i++)
		if (r->self[i].pid == id->pid && r->self[i].start == id->start)
			return 1;
	return 0;
}

/* Note what was done about pid. */
static int
out_add(struct run *r, pid_t pid, int error, int slot)
{
	void *p;

	if (r->nout == r->capout) {
		r->capout = r->capout ? r->capout * 2 : 16;
		if ((p = reallocarray(r->out, r->capout, sizeof(*r->out))) ==
		    NULL)
			return -1;
		r->out = p;
	}
	r->out[r->nout].pid = pid;
	r->out[r->nout].error = error;
	r->out[r->nout].slot = slot;
	r->out[r->nout].host[0] = '\0';	/* this host */
	r->nout++;
	return 0;
}

static int
plist_has(const struct plist *l, pid_t pid)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i].id.pid == pid)
			return 1;
	return 0;
}

/* Add id with a verified pidfd (-1 if already gone); never ourselves. */
static int
plist_add(struct run *r, const struct procid *id, int slot)
{
	struct plist *l = &r->tg;
	void *p;

	if (id->pid <= 1 || is_self(r, id) || plist_has(l, id->pid))
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		if ((p = reallocarray(l->v, l->cap, sizeof(*l->v))) == NULL)
			return -1;
		l->v = p;
	}
	l->v[l->n].id = *id;
	l->v[l->n].fd = proc_pidfd_id(id);
	l->v[l->n].slot = slot;
	l->n++;
	return 0;
}

static void
plist_free(struct plist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		(void)xclose(l->v[i].fd);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/*
 * Add root's descendants to the targets. root is alive again after the
 * scan, so it was all along and the PIDs found below it are its own.
 */
static int
plist_add_tree(struct run *r, const struct procid *root, int slot)
{
	struct procid *d;
	size_t n, i;
	int e = 0;

	if (!proc_alive(root))
		return 0;
	if (proc_descendants(root->pid, &d, &n) == -1)
		return -1;
	for (i = 0; i < n && e == 0 && proc_alive(root); i++)
		e = plist_add(r, &d[i], slot);
	free(d);
	return e;
}

/*
 * 0 if the recorded id may be signalled and its tree walked (see the top
 * of the file), with *ps read; else why not: ESRCH gone, EPERM not ours
 * to inspect, ESTALE not a process a wrapper of our namespace recorded.
 */
static int
check_root(const struct procid *id, struct procstat *ps)
{
	int same;

	if (id->pid <= 0 || !proc_alive(id))
		return ESRCH;
	if (proc_stat(id->pid, ps) == -1 || ps->id.start != id->start)
		return proc_alive(id) ? EPERM : ESRCH;	/* hidepid=, or gone */
	if (id->pid == 1 || (ps->flags & PROC_PF_KTHREAD))
		return ESTALE;
	if ((same = proc_same_pidns(id->pid)) == 1)
		return 0;
	if (same == 0)
		return ESTALE;
	return errno == ESRCH ? ESRCH : EPERM;
}

/*
 * Decide what of holder i may be touched (r->use[i]): its command, if it
 * passes check_root and, while its wrapper lives, is the wrapper's child;
 * the wrapper's tree only along with such a command (a wrapper whose
 * command is gone releases the slot by itself). A live wrapper or command
 * that fails leaves the whole holder alone, and is noted; so is our own
 * slot, spared.
 */
static int
check_holder(struct run *r, size_t i)
{
	const struct killall_holder *h = &r->h[i];
	struct procstat w, c;
	int ew, ec, one = h->cmd.pid == h->wrapper.pid;

	ew = check_root(&h->wrapper, &w);
	ec = h->cmd.pid <= 0 ? ESRCH : one ? ew : check_root(&h->cmd, &c);
	if (ec == 0 && !one && ew == 0 && c.ppid != h->wrapper.pid)
		ec = ESTALE;		/* not the child its wrapper forked */
	if (ec != 0 && ec != ESRCH)
		return out_add(r, h->cmd.pid, ec, h->slot);
	if (ew != 0 && ew != ESRCH)
		return out_add(r, h->wrapper.pid, ew, h->slot);
	if (ec != 0)
		return 0;		/* no command (left) to stop */
	r->use[i] = one || ew != 0 ? USE_CMD : USE_CMD | USE_WRAPPER;
	if (is_self(r, &h->cmd))	/* we run inside this slot */
		return out_add(r, h->cmd.pid, EDEADLK, h->slot);
	return 0;
}

/* The commands of the holders and everything below them and their wrappers. */
static int
targets(struct run *r)
{
	size_t i;

	for (i = 0; i < r->nh; i++) {
		const struct killall_holder *h = &r->h[i];

		if ((r->use[i] & USE_CMD) && proc_alive(&h->cmd) &&
		    (plist_add(r, &h->cmd, h->slot) == -1 ||
		    plist_add_tree(r, &h->cmd, h->slot) == -1))
			return -1;
		if ((r->use[i] & USE_WRAPPER) &&
		    plist_add_tree(r, &h->wrapper, h->slot) == -1)
			return -1;
	}
	return 0;
}

/* Wait until every pidfd in l is readable (exited) or the deadline. */
static void
wait_exit(const struct plist *l, int64_t deadline)
{
	struct pollfd *p;
	size_t i, n;
	int64_t left;

	if ((p = reallocarray(NULL, l->n + 1, sizeof(*p))) == NULL)
		return;
	for (;;) {
		for (i = n = 0; i < l->n; i++)
			if (l->v[i].fd != -1 && proc_alive(&l->v[i].id)) {
				p[n].fd = l->v[i].fd;
				p[n++].events = POLLIN;
			}
		left = (deadline - mono_ns()) / 1000000;
		if (n == 0 || left <= 0)
			break;
		(void)poll(p, n, left > INT_MAX ? INT_MAX : (int)left);
	}
	free(p);
}

/* Signal every target once, noting the result of each. */
static int
first_round(struct run *r, int sig)
{
	struct pent *t;
	size_t i;

	for (i = 0; i < r->tg.n; i++) {
		t = &r->tg.v[i];
		if (out_add(r, t->id.pid, t->fd == -1 ? ESRCH :
		    pidfd_signal(t->fd, sig) == -1 ? errno : 0, t->slot) == -1)
			return -1;
	}
	return 0;
}

/* What outlived the grace, and what it forked meanwhile: SIGKILL. */
static void
kill_rest(struct run *r)
{
	struct plist *tg = &r->tg;
	size_t round, i;

	for (round = 0; round < 8; round++) {
		size_t before = tg->n, killed = 0;

		if (targets(r) == -1)
			break;
		for (i = 0; i < tg->n; i++)
			if (tg->v[i].fd != -1 && proc_alive(&tg->v[i].id) &&
			    pidfd_signal(tg->v[i].fd, SIGKILL) == 0)
				killed++;
		if (killed == 0 && tg->n == before)
			break;
		wait_exit(tg, mono_ns() + 1000000000);
	}
}

/* Decide, signal, wait, SIGKILL the rest. */
static int
run_all(struct run *r, int sig, double grace)
{
	size_t i;

	for (i = 0; i < r->nh; i++)
		if (check_holder(r, i) == -1)
			return -1;
	if (targets(r) == -1 || first_round(r, sig) == -1)
		return -1;
	/* The wrappers too: they release their slots as their commands die. */
	for (i = 0; i < r->nh; i++)
		if ((r->use[i] & USE_WRAPPER) &&
		    plist_add(r, &r->h[i].wrapper, r->h[i].slot) == -1)
			return -1;
	wait_exit(&r->tg, mono_ns() + (int64_t)(grace * 1e9));
	kill_rest(r);
	return 0;
}

int
killall_run(const struct killall_holder *h, size_t nh, int sig,
    double grace, struct gate_kill **outp, size_t *np)
{
	struct run r;
	int e = 0;

	*outp = NULL;
	*np = 0;
	memset(&r, 0, sizeof(r));
	r.h = h;
	r.nh = nh;
	if ((r.use = calloc(nh + 1, sizeof(*r.use))) == NULL ||
	    proc_ancestors(&r.self, &r.nself) == -1 ||
	    run_all(&r, sig, grace) == -1 ||
	    (r.out == NULL && (r.out = calloc(1, sizeof(*r.out))) == NULL)) {
		e = errno;
		free(r.out);
		r.out = NULL;
	}
	plist_free(&r.tg);
	free(r.self);
	free(r.use);
	if (r.out == NULL) {
		errno = e;
		return -1;
	}
	*outp = r.out;
	*np = r.nout;
	return 0;
}
