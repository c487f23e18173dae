/*
 * A holder's lease on a store shared by hosts (Redis): the wrapper renews
 * it every third of its TTL from its wait loop (a SIGALRM timer), and a
 * watchdog process stops the command and everything it started (TERM,
 * then KILL, over the trees kill-all walks) before the lease can end
 * unrenewed, so the limit holds through a partition, a stopped or a
 * killed wrapper; while the job is stopped whole (Ctrl-Z) it renews the
 * lease itself instead, on a connection of its own. It also serves
 * kill-all requests from other hosts for the command (gate_kill_listen).
 * The watchdog has a process group of its own and a name of its own (not
 * "gaterun": pkill gaterun leaves it), and the wrapper starts it again if
 * it is gone while the command runs. Nothing of this runs on the file
 * store. Leases are timed on CLOCK_BOOTTIME (boot_ns), which counts a
 * suspend as the server's clock does: a host resumed after its lease
 * ended stops its command at once, and a renewal asked for after the end
 * does not save it. Waits for the server's replies are bounded on
 * CLOCK_MONOTONIC.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gate.h"
#include "gaterun.h"
#include "killall.h"
#include "proc.h"
#include "sys.h"

#define MARGIN_NS	500000000LL	/* KILL lands this long before the end */
#define RELISTEN_FIRST	20000000LL	/* see relisten: the first try, */
#define RELISTEN_MAX	500000000LL	/* the most between two, */
#define RELISTEN_WAIT	1000000000LL	/* and the longest wait of one */

/* Grace between TERM and KILL: a fifth of the lease, at most 2 s. */
static int64_t
grace_ns(int64_t period)
{
	int64_t g = period * 3 / 5;

	return g > 2000000000LL ? 2000000000LL : g;
}

/* What a watchdog watches, and where it stands. */
struct dog {
	struct gate	*g;
	const char	*gate;
	struct killall_holder h;	/* the wrapper, the command, the slot */
	int		own;		/* the command leads its group */
	int64_t		until;		/* the lease surely runs to (boot ns) */
	int64_t		period;		/* the wrapper renews every */
	int64_t		look;		/* next look at a stopped job */
	int		forked;		/* gate_forked done: renews itself */
	int		termed;
	int64_t		relisten;	/* the kill-all listener was lost:
					   listen again then (boot ns), or 0 */
	int64_t		backoff;	/* and after that, if it fails */
};

/*
 * Stop everything the command started, as kill-all does (killall.c): the
 * command and its tree, and the tree of the wrapper, the subreaper every
 * orphan of the command comes to (a setsid child, a daemon), whatever
 * their process groups (the command stays in the caller's group under a
 * terminal it leads); TERM, and KILL what is left after the grace. We are
 * in the wrapper's tree: kill-all never signals itself or its ancestors,
 * the wrapper among them. Without memory for it, the command and its
 * group alone, KILLed.
 */
static void
stop_tree(const struct dog *d, int64_t grace)
{
	struct gate_kill *out;
	size_t n;

	if (killall_run(&d->h, 1, SIGTERM, (double)grace / 1e9, &out, &n) ==
	    0) {
		free(out);
		return;
	}
	if (d->own)
		(void)kill(-d->h.cmd.pid, SIGKILL);
	(void)kill(d->h.cmd.pid, SIGKILL);
}

/*
 * 1 if the job is stopped whole, as job control stops it (Ctrl-Z, and the
 * wrapper stops itself to mirror its command): the wrapper and the
 * command both stopped. A wrapper stopped alone (or dead) is not renewed
 * for: its command is stopped when the lease ends.
 */
static int
paused(const struct dog *d)
{
	return (proc_runstate(&d->h.wrapper) & PROC_STOPPED) &&
	    (proc_runstate(&d->h.cmd) & PROC_STOPPED);
}

/*
 * The job is stopped whole: renew the wrapper's lease in its stead, on a
 * connection of our own (gate_forked), waiting for the server no later
 * than by, when the command would be stopped. 1 if renewed further.
 */
static int
renew_paused(struct dog *d, int64_t by)
{
	struct gate_wait w;
	int64_t until, left = by - boot_ns();

	if (left < 300000000LL)
		return 0;		/* no time left to ask */
	if (!d->forked)
		gate_forked(d->g);
	d->forked = 1;
	memset(&w, 0, sizeof(w));
	w.deadline = mono_ns() + left;	/* replies: on the monotonic clock */
	gate_set_wait(d->g, &w);
	if (gate_renew(d->g, &until) == -1 || until <= d->until)
		return 0;
	d->until = until;
	return 1;
}

/*
 * Once the wrapper's renewal is due (a third of the lease gone) and not
 * come, look whether the job is stopped whole, and renew for it then;
 * again every quarter period. When to look next.
 */
static int64_t
look_paused(struct dog *d, int64_t at)
{
	int64_t now = boot_ns(), due = d->until - 2 * d->period;

	if (d->termed)
		return at;
	if (now >= due && now >= d->look) {
		if (paused(d) && renew_paused(d, at))
			return boot_ns();	/* a new lease end: again */
		d->look = now + d->period / 4;
	}
	due = due > d->look ? due : d->look;
	return due < at ? due : at;
}

/*
 * Listen for kill-all requests of other hosts (gate_kill_listen), again
 * when the last try failed for a cause that may pass (a lost server;
 * said once), spending at most half the time left before the command is
 * to be stopped at (none when under a second: at the next renewal). The
 * fd, or -1.
 */
static int
kill_listen(struct gate *g, const char *gate, pid_t cmd, int64_t at,
    void **kl, int *said)
{
	int64_t left = at - boot_ns();
	int fd;

	if (*said == -1 || left < 1000000000LL)
		return -1;		/* no such requests, or no time */
	if ((fd = gate_kill_listen(g, cmd, mono_ns() + left / 2, kl)) != -1) {
		*said = 0;
		return fd;
	}
	if (errno == ENOTSUP || errno == ESRCH)
		*said = -1;	/* none, or the command is gone: no one to kill */
	else if (!*said) {
		warnx("gate '%s': cannot listen for kill-all from other hosts: "
		    "%s (trying again at the next renewal)", gate,
		    gate_strerror(errno));
		*said = 1;
	}
	return -1;
}

/* The instant to TERM the tree at (KILL, once TERMed). */
static int64_t
stop_at(const struct dog *d)
{
	return d->until - MARGIN_NS - (d->termed ? 0 : grace_ns(d->period));
}

/*
 * The kill-all listener's connection was lost: the server went away, and
 * when it comes back it may have lost every record (a restart without
 * persistence), ours among them, and let newcomers in on our slots until
 * the wrapper's next renewal, a third of a lease away (20 min at -e 3600:
 * M-3 of brk-redis7). So listen again soon: from 20 ms on, twice as long
 * after each failed try up to 0.5 s, give or take a quarter at random
 * (the watchdogs of many holders do not all come at once), each try
 * bounded. Once the server answers, have the wrapper, our parent, renew
 * at once (SIGALRM, its renewal timer's signal): its renewal sees a
 * restart (a new epoch) and records its slots again. Kill-all requests
 * reach us again as soon.
 */
static int
relisten(struct dog *d, void **kl, int *said)
{
	int64_t left = stop_at(d) - boot_ns(), wait = left / 2;
	int fd;

	if (d->relisten == 0 || boot_ns() < d->relisten)
		return -1;
	if (*said == -1 || left < 1000000000LL) {
		d->relisten = 0;	/* none, or no time: at the renewal */
		return -1;
	}
	fd = gate_kill_listen(d->g, d->h.cmd.pid, mono_ns() +
	    (wait < RELISTEN_WAIT ? wait : RELISTEN_WAIT), kl);
	if (fd == -1 && (errno == ENOTSUP || errno == ESRCH)) {
		*said = -1;		/* the command is gone */
		d->relisten = 0;
	} else if (fd == -1) {
		d->backoff = d->backoff * 2 < RELISTEN_MAX ? d->backoff * 2 :
		    RELISTEN_MAX;
		d->relisten = boot_ns() + d->backoff * 3 / 4 +
		    arc4random_uniform((uint32_t)(d->backoff / 2000)) * 1000LL;
	} else {
		d->relisten = 0;
		*said = 0;
		if (getppid() == d->h.wrapper.pid)
			(void)kill(d->h.wrapper.pid, SIGALRM);
	}
	return fd;
}

/* The listener's connection is lost: listen again soon (relisten). */
static void
listener_lost(struct dog *d, void *kl)
{
	gate_kill_unlisten(kl);
	d->backoff = RELISTEN_FIRST;
	d->relisten = boot_ns() + d->backoff;
}

/*
 * The lease is ending unrenewed: stop the tree (TERM, the grace, KILL),
 * then wait for the command's end (its pidfd), for a watchdog gone while
 * it is there would be started again by the wrapper.
 */
static void __dead
lease_lost(struct dog *d, int cmdfd)
{
	struct pollfd p = { cmdfd, POLLIN, 0 };

	warnx("gate '%s': the lease could not be renewed in time: stopping "
	    "the command (TERM, then KILL)", d->gate);
	d->termed = 1;
	stop_tree(d, stop_at(d) - boot_ns());
	while (poll(&p, 1, -1) == -1 && errno == EINTR)
		;
	_exit(0);
}

/*
 * Sleep in poll(2) on p[0..2] and the timer p[3] (a CLOCK_BOOTTIME
 * timerfd), armed for the instant at (boot ns): a poll timeout runs on
 * CLOCK_MONOTONIC, which stands still while the host is suspended, and a
 * lease that ended then would be seen only that long after the resume.
 * Without the timer (it could not be made), a timeout. poll's result.
 */
static int
dog_sleep(struct pollfd *p, int64_t at)
{
	int64_t now = boot_ns();

	if (at <= now)
		return poll(p, 4, 0);
	if (p[3].fd != -1 && timerfd_at(p[3].fd, at, 0) == -1) {
		(void)xclose(p[3].fd);
		p[3].fd = -1;
	}
	if (p[3].fd == -1)
		return poll(p, 4, (int)((at - now) / 1000000 + 1));
	return poll(p, 4, -1);
}

/*
 * The watchdog's life: read lease ends from the wrapper (one whose
 * renewal was asked for once the lease had ended comes too late: this
 * host was suspended, or the wrapper stopped, past it); at the last one
 * less the grace, stop the command's tree (TERM, then KILL by the end
 * less a margin), unless the job is stopped whole (look_paused). Serves
 * kill-all requests from other hosts for the command meanwhile. Ends
 * when told (0), or when the command has ended.
 */
static void __dead
watchdog(int rd, struct dog *d)
{
	struct pollfd p[4];
	int64_t v[2], at;
	void *kl = NULL;
	int said = 0;

	p[0].fd = rd;
	p[0].events = POLLIN;
	if ((p[1].fd = proc_pidfd_id(&d->h.cmd)) == -1)
		_exit(0);
	p[1].events = POLLIN;
	p[2].fd = kill_listen(d->g, d->gate, d->h.cmd.pid, stop_at(d), &kl,
	    &said);
	p[2].events = POLLIN;
	p[3].fd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	p[3].events = POLLIN;
	for (;;) {
		if (boot_ns() >= stop_at(d))
			lease_lost(d, p[1].fd);
		at = look_paused(d, stop_at(d));
		if (d->relisten != 0 && d->relisten < at)
			at = d->relisten;
		if (dog_sleep(p, at) == -1 && errno != EINTR)
			_exit(1);
		if (p[2].fd != -1 && p[2].revents &&
		    gate_kill_serve(kl) == -1) {
			listener_lost(d, kl);
			p[2].fd = -1;
		}
		if (p[2].fd == -1)
			p[2].fd = relisten(d, &kl, &said);
		if (p[1].revents)
			_exit(0);		/* the command ended */
		if (p[0].fd != -1 && p[0].revents) {
			if (read_full(rd, v, sizeof(v)) != sizeof(v))
				p[0].fd = -1;	/* the wrapper died */
			else if (v[0] == 0)
				_exit(0);
			else if (v[0] > d->until && v[1] < d->until)
				d->until = v[0];	/* else asked too late */
			if (p[2].fd == -1 && (p[2].fd = kill_listen(d->g,
			    d->gate, d->h.cmd.pid, stop_at(d), &kl,
			    &said)) != -1)
				d->relisten = 0;
		}
	}
}

/* Signals the watchdog leaves to the wrapper and the command. */
static void
watchdog_signals(void)
{
	static const int sigs[] = {
		SIGINT, SIGQUIT, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH,
		SIGUSR1, SIGUSR2, SIGPIPE
	};
	sigset_t none;
	size_t i;

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		(void)signal(sigs[i], SIG_IGN);
	(void)signal(SIGALRM, SIG_DFL);
	(void)signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * The watchdog's own name: not "gaterun", so that pkill or killall of
 * gaterun (the everyday "unstick it"), or a kill -STOP of what pgrep
 * gaterun finds, reaches the wrappers but not it, and it still stops
 * their commands before their leases end (ps shows it as such).
 */
static void
dog_name(const struct lease *ls)
{
	(void)prctl(PR_SET_NAME, "gate-watchdog");
	setproctitle("-gate-watchdog: lease of '%s' (wrapper %d, command %d)",
	    ls->gate, (int)getppid(), (int)ls->cmd);
}

/* In the new watchdog: what it watches, then its life. */
static void __dead
dog_run(struct lease *ls, int rd)
{
	struct dog d;

	memset(&d, 0, sizeof(d));
	d.g = ls->g;
	d.gate = ls->gate;
	d.own = ls->own;
	d.until = ls->until;
	d.period = ls->period;
	d.h.slot = gate_slot(ls->g);
	d.h.wrapper = ls->self;
	if (proc_id(ls->cmd, &d.h.cmd) == -1)
		_exit(0);		/* the command is gone */
	dog_name(ls);
	watchdog_signals();
	watchdog(rd, &d);
}

/*
 * Start a watchdog over the command, in a process group of its own (set
 * here and in the child, so there is no race): a SIGSTOP or SIGKILL sent
 * to the wrapper's group (kill -STOP %1) does not reach it. It talks to
 * us on a socket, written with MSG_NOSIGNAL: a watchdog gone is EPIPE
 * there, never a SIGPIPE for us (the caller's disposition of SIGPIPE is
 * the command's, left as it came). 0 or -1.
 */
static int
dog_start(struct lease *ls)
{
	int p[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) == -1)
		return -1;
	if ((ls->dog = fork()) == -1) {
		(void)xclose(p[0]);
		(void)xclose(p[1]);
		return -1;
	}
	if (ls->dog == 0) {
		(void)setpgid(0, 0);
		(void)xclose(p[1]);
		dog_run(ls, p[0]);
	}
	(void)setpgid(ls->dog, ls->dog);
	(void)xclose(p[0]);
	ls->fd = p[1];
	return 0;
}

/* The watchdog is gone (its socket closed, or it was reaped): forget it. */
static void
dog_gone(struct lease *ls)
{
	if (ls->fd != -1)
		(void)xclose(ls->fd);
	ls->fd = -1;
	ls->dog = -1;
}

/*
 * Tell the watchdog a lease end and when its renewal was asked for (boot
 * ns), or 0, 0: the command ended. 0 or -1.
 */
static int
dog_send(struct lease *ls, int64_t until, int64_t asked)
{
	int64_t v[2] = { until, asked };
	ssize_t n;

	if (ls->fd == -1)
		return -1;
	while ((n = send(ls->fd, v, sizeof(v), MSG_NOSIGNAL)) == -1 &&
	    errno == EINTR)
		;
	if (n == (ssize_t)sizeof(v))
		return 0;
	dog_gone(ls);		/* EPIPE: it died */
	return -1;
}

/* See gaterun.h. */
int
lease_start(struct lease *ls, struct gate *g, const char *gate, pid_t cmd,
    int own)
{
	struct sigevent sev;
	struct itimerspec its;
	int dogged;

	memset(ls, 0, sizeof(*ls));
	ls->fd = -1;
	ls->dog = -1;
	if ((ls->period = gate_lease_period(g)) == 0)
		return 0;
	ls->g = g;
	ls->gate = gate;
	ls->cmd = cmd;
	ls->own = own;
	if (proc_id(getpid(), &ls->self) == -1)
		return -1;
	if (gate_renew(g, &ls->until) == -1)
		warnx("cannot renew the lease of gate '%s': %s", gate,
		    gate_strerror(errno));
	ls->on = 1;
	dogged = dog_start(ls);		/* else started again: lease_check */
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGALRM;
	if (timer_create(CLOCK_BOOTTIME, &sev, &ls->timer) == -1)
		return -1;
	ls->armed = 1;
	its.it_value.tv_sec = ls->period / 1000000000;
	its.it_value.tv_nsec = ls->period % 1000000000;
	its.it_interval = its.it_value;
	if (timer_settime(ls->timer, 0, &its, NULL) == -1)
		return -1;
	return dogged;
}

/*
 * See gaterun.h. A watchdog stopped (a SIGSTOP by its PID: job control
 * never reaches it) is not dead: starting another would leave two, and
 * the first, once continued, would stop the command at a lease end long
 * renewed. It is continued at once instead, for it alone stops the
 * command if the lease ends (said the first time).
 */
int
lease_reaped(struct lease *ls, pid_t pid, int status)
{
	if (!ls->on || pid != ls->dog)
		return 0;
	if (!WIFSTOPPED(status)) {
		dog_gone(ls);
		return 1;
	}
	if (ls->dog_stops++ == 0)
		warnx("gate '%s': the lease's watchdog (%d) was stopped "
		    "(SIG%s): continuing it, as it stops the command if the "
		    "lease ends", ls->gate, (int)pid,
		    sigabbrev_np(WSTOPSIG(status)));
	(void)kill(pid, SIGCONT);
	return 1;
}

/*
 * See gaterun.h: a watchdog gone (killed, or failed) while the command
 * runs is started again, with the lease end we know, so the command
 * never outlives its lease (a new one stops it at once if it ended).
 */
void
lease_check(struct lease *ls)
{
	siginfo_t si;

	if (!ls->on || ls->dog != -1)
		return;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)ls->cmd, &si, WEXITED | WNOHANG | WNOWAIT) ==
	    0 && si.si_pid != 0)
		return;		/* the command ended: reaped next */
	warnx("gate '%s': the lease's watchdog is gone: starting it again",
	    ls->gate);
	if (dog_start(ls) == -1) {
		warn("gate '%s': cannot watch the lease", ls->gate);
		ls->on = 0;
	}
}

/*
 * Renew; a new end goes to the watchdog with when it was asked for, a
 * failure is said once.
 */
void
lease_tick(struct lease *ls)
{
	int64_t until, asked = boot_ns();

	if (!ls->on)
		return;
	if (gate_renew(ls->g, &until) == -1) {
		if (!ls->failing)
			warnx("cannot renew the lease of gate '%s': %s (trying "
			    "again; the command is stopped if the lease ends)",
			    ls->gate, gate_strerror(errno));
		ls->failing = 1;
		return;
	}
	if (ls->failing)
		warnx("gate '%s': lease renewed", ls->gate);
	ls->failing = 0;
	if (until > ls->until) {
		ls->until = until;
		(void)dog_send(ls, until, asked);
	}
}

/* Tell the watchdog the command ended (0), and reap it. */
void
lease_stop(struct lease *ls)
{
	pid_t dog = ls->dog;

	if (ls->armed)
		(void)timer_delete(ls->timer);
	ls->armed = 0;
	ls->on = 0;
	if (dog == -1)
		return;
	(void)dog_send(ls, 0, 0);
	dog_gone(ls);
	while (waitpid(dog, NULL, 0) == -1 && errno == EINTR)
		;
}
