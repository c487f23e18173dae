/*
 * Kill-all over process trees. A wrapper is a child subreaper, so every
 * process its command starts stays below it even when orphaned; the tree
 * is found by one scan of /proc and signalled through pidfds verified
 * against PID and start time, so a PID reused meanwhile is never hit.
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

/* pidfd_send_signal(2): no PID-reuse race between checking and signalling. */
static int
pidfd_signal(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* A growing list of processes with their pidfds. */
struct plist {
	struct procid	*id;
	int		*fd;
	size_t		n, cap;
};

static int
plist_has(const struct plist *l, pid_t pid)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->id[i].pid == pid)
			return 1;
	return 0;
}

/* Add id with a verified pidfd (-1 if it is already gone). */
static int
plist_add(struct plist *l, const struct procid *id)
{
	void *p;

	if (id->pid <= 0 || plist_has(l, id->pid))
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		if ((p = reallocarray(l->id, l->cap, sizeof(*l->id))) == NULL)
			return -1;
		l->id = p;
		if ((p = reallocarray(l->fd, l->cap, sizeof(*l->fd))) == NULL)
			return -1;
		l->fd = p;
	}
	l->id[l->n] = *id;
	l->fd[l->n] = proc_pidfd_id(id);
	l->n++;
	return 0;
}

static void
plist_free(struct plist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		(void)xclose(l->fd[i]);
	free(l->id);
	free(l->fd);
	memset(l, 0, sizeof(*l));
}

/* Add root's descendants (as the kernel shows them now) to l. */
static int
plist_add_tree(struct plist *l, pid_t root)
{
	struct procid *d;
	size_t n, i;
	int r = 0;

	if (proc_descendants(root, &d, &n) == -1)
		return -1;
	for (i = 0; i < n && r == 0; i++)
		r = plist_add(l, &d[i]);
	free(d);
	return r;
}

/* The commands of the holders and everything below them and their wrappers. */
static int
targets(const struct killall_holder *h, size_t nh, struct plist *t)
{
	size_t i;

	for (i = 0; i < nh; i++) {
		const struct procid *w = &h[i].wrapper, *c = &h[i].cmd;

		if (c->pid > 0 && proc_alive(c) &&
		    (plist_add(t, c) == -1 || plist_add_tree(t, c->pid) == -1))
			return -1;
		if (w->pid != c->pid && proc_alive(w) &&
		    plist_add_tree(t, w->pid) == -1)
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
			if (l->fd[i] != -1 && proc_alive(&l->id[i])) {
				p[n].fd = l->fd[i];
				p[n++].events = POLLIN;
			}
		left = (deadline - mono_ns()) / 1000000;
		if (n == 0 || left <= 0)
			break;
		(void)poll(p, n, left > INT_MAX ? INT_MAX : (int)left);
	}
	free(p);
}

/* Signal every target once; the result of each goes to a new *out. */
static int
first_round(struct plist *tg, int sig, struct gate_kill **outp, size_t *np)
{
	struct gate_kill *out;
	size_t i;

	if ((out = calloc(tg->n + 1, sizeof(*out))) == NULL)
		return -1;
	for (i = 0; i < tg->n; i++) {
		out[i].pid = tg->id[i].pid;
		if (tg->fd[i] == -1 || pidfd_signal(tg->fd[i], sig) == -1)
			out[i].error = tg->fd[i] == -1 ? ESRCH : errno;
	}
	*outp = out;
	*np = tg->n;
	return 0;
}

/* What outlived the grace, and what it forked meanwhile: SIGKILL. */
static void
kill_rest(const struct killall_holder *h, size_t nh, struct plist *tg)
{
	size_t round, i;

	for (round = 0; round < 8; round++) {
		size_t before = tg->n, killed = 0;

		if (targets(h, nh, tg) == -1)
			break;
		for (i = 0; i < tg->n; i++)
			if (tg->fd[i] != -1 && proc_alive(&tg->id[i]) &&
			    pidfd_signal(tg->fd[i], SIGKILL) == 0)
				killed++;
		if (killed == 0 && tg->n == before)
			break;
		wait_exit(tg, mono_ns() + 1000000000);
	}
}

int
killall_run(const struct killall_holder *h, size_t nh, int sig,
    double grace, struct gate_kill **outp, size_t *np)
{
	struct plist tg;
	size_t i;

	*outp = NULL;
	*np = 0;
	memset(&tg, 0, sizeof(tg));
	if (targets(h, nh, &tg) == -1 || first_round(&tg, sig, outp, np) == -1) {
		plist_free(&tg);
		return -1;
	}
	/* The wrappers too: they release their slots as their commands die. */
	for (i = 0; i < nh; i++)
		if (plist_add(&tg, &h[i].wrapper) == -1)
			break;
	wait_exit(&tg, mono_ns() + (int64_t)(grace * 1e9));
	kill_rest(h, nh, &tg);
	plist_free(&tg);
	return 0;
}
