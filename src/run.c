/*
 * gaterun's run mode: take a slot of the gate (waiting in line or not),
 * run the command in it and give the slot back however the command ends.
 * Signals, the parked child that execs the command, the wait and the exit
 * status passed back live here.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcodes.h"
#include "gate.h"
#include "gaterun.h"
#include "jobserver.h"
#include "proc.h"
#include "report.h"
#include "sys.h"

/* How long -n (and at least -w) waits for the gate's lock: 1 s. */
#define LOCK_WAIT_NS	1000000000LL
#define RELEASE_NS	1500000000LL	/* see release_bound */
#define RENEW_NS	2000000000LL	/* see renew_bounded */

/* The only global state: what signal handlers saw. */
static volatile sig_atomic_t got_stop;		/* leave the queue */
static volatile sig_atomic_t got_chld;
static volatile sig_atomic_t pending[NSIG];	/* to forward to CMD */
static volatile sig_atomic_t shared_group;	/* CMD is in our group */
static volatile sig_atomic_t got_alrm;		/* renew the lease */
static volatile sig_atomic_t execing;		/* -x: execve is next */

/*
 * The parent gates of the gate, nearest first, each taken after the one
 * below it: a request holds slots only of gates below the one it waits
 * for, so waits never go round in a circle, and nobody holds a parent's
 * slot while waiting for a gate below it.
 */
static struct gate *parents[MAX_CHAIN];
static char parent_names[MAX_CHAIN][GATE_NAME_MAX + 1];
static size_t nparents, nheld_parents;

static void	lock_bound(struct gate *, const struct opts *,
		    const struct gate_wait *);

/* Give back the parents' slots taken (every path that gives back ours). */
static void
release_parents(void)
{
	size_t i;

	for (i = 0; i < nheld_parents; i++)
		(void)gate_release(parents[i]);
	nheld_parents = 0;
}

/*
 * Signals we catch: those forwarded to CMD (all but SIGTSTP also end a
 * wait in line; SIGTSTP is caught only once CMD runs), then SIGCHLD.
 */
static const int our_sigs[] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT,
	SIGTSTP,
	SIGCHLD		/* last: caught, never forwarded */
};
#define NOURS	(sizeof(our_sigs) / sizeof(our_sigs[0]))
#define NFWD	(NOURS - 1)

/* Handlers only set flags; the main flow acts on them. */
static void
on_signal(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	if (execing) {		/* see exec_signals: as if not caught */
		(void)signal(sig, SIG_DFL);
		(void)raise(sig);
		return;
	}
	if (sig == SIGCHLD) {
		got_chld = 1;
		return;
	}
	if (sig != SIGWINCH && sig != SIGCONT && sig != SIGTSTP)
		got_stop = sig;
	/*
	 * When CMD shares our process group, a terminal's signal (SI_KERNEL)
	 * went to the whole group, CMD included: forwarding it would deliver
	 * it twice. In a group of its own CMD got nothing: pass it on.
	 */
	if (si == NULL || si->si_code != SI_KERNEL || !shared_group)
		pending[sig] = 1;
}

static void
on_alrm(int sig)
{
	(void)sig;
	got_alrm = 1;
}

/*
 * On a store of leases (Redis): renew from the wait loop on SIGALRM,
 * blocked but while asleep; start the watchdog over CMD (lease.c).
 */
static void
lease_begin(struct lease *ls, struct gate *g, const struct opts *o,
    const struct job *job, pid_t cmd, sigset_t *sleepmask)
{
	struct sigaction sa;
	sigset_t set;

	if (gate_lease_period(g) == 0) {
		memset(ls, 0, sizeof(*ls));
		ls->fd = -1;
		ls->dog = -1;
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alrm;
	sigfillset(&sa.sa_mask);
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	(void)sigprocmask(SIG_BLOCK, &set, NULL);
	(void)sigaction(SIGALRM, &sa, NULL);
	(void)sigdelset(sleepmask, SIGALRM);
	if (lease_start(ls, g, o->gate, cmd, job->own) == -1)
		warn("gate '%s': cannot watch the lease", o->gate);
}

/* Signal state inherited from the caller, restored in the child. */
struct sigsaved {
	sigset_t	mask;		/* caller's mask */
	sigset_t	ours;		/* signals we handle */
	int		ignored[NSIG];
};

/*
 * Catch the forwarded signals and SIGCHLD, and block them until we sleep.
 * Signals the caller ignored stay ignored (nohup, background jobs), except
 * SIGCHLD, which we need to wait for CMD; exec mode, which has no child,
 * leaves SIGCHLD as the caller set it (a caller's own children that end
 * meanwhile are reaped as the caller asked). Each handler is installed by the
 * call that reads the caller's disposition, under a mask that blocks it:
 * one the caller ignored gets SIG_IGN back at once, which also drops what
 * came meanwhile (POSIX: setting SIG_IGN discards a pending signal), and
 * is unblocked again unless the caller blocked it. SIGTSTP is only looked
 * at (signals_run catches it).
 */
static void
signals_setup(struct sigsaved *ss, int exec)
{
	struct sigaction sa, old;
	sigset_t block, unblock;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	sigemptyset(&block);
	sigemptyset(&unblock);
	for (i = 0; i < NOURS; i++)
		if (our_sigs[i] != SIGTSTP && (!exec || our_sigs[i] != SIGCHLD))
			sigaddset(&block, our_sigs[i]);
	/*
	 * SIGPIPE stays blocked in the wrapper alone, asleep too (do_run):
	 * writing the go-ahead to a child that has just died, or a request
	 * to a Redis server that closed our connection (hiredis writes with
	 * write(2)), must not kill us, now or later; CMD gets the caller's
	 * mask back.
	 */
	sigaddset(&block, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &block, &ss->mask) == -1)
		err(EXIT_GATERUN, "sigprocmask");
	ss->ours = block;
	sigdelset(&ss->ours, SIGPIPE);
	for (i = 0; i < NOURS; i++) {
		int sig = our_sigs[i];

		if (exec && sig == SIGCHLD)
			continue;	/* -x forks nothing: left as it is */
		if (sigaction(sig, sig == SIGTSTP ? NULL : &sa, &old) == -1)
			err(EXIT_GATERUN, "sigaction");
		ss->ignored[sig] = old.sa_handler == SIG_IGN;
		if (!ss->ignored[sig] || sig == SIGCHLD || sig == SIGTSTP)
			continue;
		if (sigaction(sig, &old, NULL) == -1)
			err(EXIT_GATERUN, "sigaction");
		sigdelset(&ss->ours, sig);
		if (!sigismember(&ss->mask, sig))
			sigaddset(&unblock, sig);
	}
	if (!sigisemptyset(&unblock) &&
	    sigprocmask(SIG_UNBLOCK, &unblock, NULL) == -1)
		err(EXIT_GATERUN, "sigprocmask");
}

/*
 * The mask we sleep with: the caller's, less the signals we catch that the
 * caller did not block. One the caller blocked stays pending while we
 * wait, as it would in the command (execve keeps it pending for -x);
 * SIGCHLD is always let in: we wait for CMD by it. SIGPIPE stays out.
 */
static void
sleep_mask(const struct sigsaved *ss, sigset_t *m)
{
	int sig;

	*m = ss->mask;
	for (sig = 1; sig < NSIG; sig++)
		if (sigismember(&ss->ours, sig) &&
		    (sig == SIGCHLD || !sigismember(&ss->mask, sig)))
			(void)sigdelset(m, sig);
	(void)sigaddset(m, SIGPIPE);	/* see signals_setup */
}

/*
 * Once CMD runs, SIGTSTP too is caught (and passed on: CMD then stops, and
 * so do we); before, Ctrl-Z stops a waiter as it stops any process.
 */
static void
signals_run(const struct sigsaved *ss, sigset_t *sleepmask)
{
	struct sigaction sa;
	sigset_t set;

	if (ss->ignored[SIGTSTP])
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	sigemptyset(&set);
	sigaddset(&set, SIGTSTP);
	(void)sigprocmask(SIG_BLOCK, &set, NULL);
	if (sigaction(SIGTSTP, &sa, NULL) == 0 &&
	    !sigismember(&ss->mask, SIGTSTP))
		(void)sigdelset(sleepmask, SIGTSTP);
}

/* In the child: the caller's dispositions and mask, as if never wrapped. */
static void
signals_restore(const struct sigsaved *ss)
{
	size_t i;

	for (i = 0; i < NOURS; i++) {
		int sig = our_sigs[i];

		(void)signal(sig, ss->ignored[sig] ? SIG_IGN : SIG_DFL);
	}
	(void)sigprocmask(SIG_SETMASK, &ss->mask, NULL);
}

/*
 * Exec mode, just before execve: the caller's mask and dispositions, in
 * one syscall instead of one per signal. execve itself resets a caught
 * signal to SIG_DFL (POSIX), and SIGCHLD was never touched (signals_setup).
 * A signal that comes once the mask is lifted finds its default action
 * (the handler re-raises it with SIG_DFL), as it would after
 * signals_restore.
 */
static void
exec_signals(const struct sigsaved *ss)
{
	execing = 1;
	(void)sigprocmask(SIG_SETMASK, &ss->mask, NULL);
}

/* Die of sig as CMD did, without a core file of our own. */
static void __dead
die_of(int sig)
{
	struct rlimit rl = { 0, 0 };
	sigset_t set;

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)fflush(stdout);
	(void)signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL);
	(void)raise(sig);
	_exit(128 + sig);
}

/* argv joined by spaces, for status and ps. */
static char *
join_cmd(char **argv)
{
	size_t len = 0, i;
	char *s;

	for (i = 0; argv[i] != NULL; i++)
		len += strlen(argv[i]) + 1;
	if ((s = malloc(len + 1)) == NULL)
		err(EXIT_GATERUN, "malloc");
	s[0] = '\0';
	for (i = 0; argv[i] != NULL; i++) {
		if (i > 0)
			(void)strlcat(s, " ", len + 1);
		(void)strlcat(s, argv[i], len + 1);
	}
	return s;
}

/* ps shows where a waiter stands. */
static void
on_progress(void *arg, size_t pos, size_t nq)
{
	const char *sfx = pos % 100 >= 11 && pos % 100 <= 13 ? "th" :
	    pos % 10 == 1 ? "st" : pos % 10 == 2 ? "nd" :
	    pos % 10 == 3 ? "rd" : "th";

	(void)nq;
	setproctitle("waiting on '%s' (%zu%s in line)", (const char *)arg,
	    pos, sfx);
}

/* 1 if the environment entry is of variable name ("NAME=..." or "NAME"). */
static int
env_named(const char *entry, const char *name)
{
	size_t len = strlen(name);

	return strncmp(entry, name, len) == 0 &&
	    (entry[len] == '=' || entry[len] == '\0');
}

/*
 * CMD's environment: the caller's entries as they came (duplicates, entries
 * with no '=' and empty ones included), less those of the variables we set,
 * then ours: the slot and its gate. GATERUN_GATE, the default gate, is the
 * caller's, untouched. environ points to it too, so that execvp looks CMD
 * up in the caller's first PATH, as the caller would have. -1 when out of
 * memory.
 */
static int
cmd_env(const struct opts *o, const char *slot)
{
	static const char *const ours[] = {
		"GATERUN_SLOT", "GATERUN_SLOT_GATE"
	};
	char **env;
	size_t n, i, j, k;

	for (n = 0; o->envp[n] != NULL; n++)
		;
	if ((env = reallocarray(NULL, n + 3, sizeof(*env))) == NULL)
		return -1;
	for (i = k = 0; i < n; i++) {
		for (j = 0; j < 2 && !env_named(o->envp[i], ours[j]); j++)
			;
		if (j == 2)
			env[k++] = o->envp[i];
	}
	if (asprintf(&env[k++], "%s=%s", ours[0], slot) == -1 ||
	    asprintf(&env[k++], "%s=%s", ours[1], o->gate) == -1)
		return -1;
	env[k] = NULL;
	environ = env;
	return 0;
}

/* The child: wait for the go-ahead (the slot number), then exec CMD. */
static void __dead
child(int go, const struct opts *o, const struct sigsaved *ss,
    const struct job *job)
{
	char slot[16];
	ssize_t n;

	job_child(job);
	signals_restore(ss);
	n = read_full(go, slot, sizeof(slot) - 1);
	if (n <= 0)
		_exit(EXIT_GATERUN);	/* the wrapper died: no slot, no run */
	slot[n] = '\0';
	(void)xclose(go);
	if (cmd_env(o, slot) == -1)
		_exit(EXIT_GATERUN);
	execvp(o->cmd[0], o->cmd);
	warn("%s", o->cmd[0]);
	_exit(errno == ENOENT || errno == ENOTDIR ? EXIT_NOTFOUND :
	    EXIT_NOEXEC);
}

/*
 * Exec mode: the slot is recorded under this very process (PID and start
 * time survive execve), so CMD holds it with no wrapper around it and the
 * engine frees it once CMD is gone, as for any holder that never released.
 */
static void __dead
exec_cmd(struct gate *g, const struct opts *o, const struct sigsaved *ss)
{
	char slot[16];
	int e;

	if (got_stop) {
		(void)gate_release(g);
		release_parents();
		die_of(got_stop);
	}
	(void)snprintf(slot, sizeof(slot), "%d", gate_slot(g));
	logev(o, "gate '%s': slot %d taken by %s, pid %d (exec): %s", o->gate,
	    gate_slot(g), me(), (int)getpid(), o->cmd[0]);
	closelog();
	if (cmd_env(o, slot) == -1)
		err(EXIT_GATERUN, "malloc");
	exec_signals(ss);
	execvp(o->cmd[0], o->cmd);
	e = errno;
	(void)gate_release(g);
	release_parents();
	errno = e;
	warn("%s", o->cmd[0]);
	exit(e == ENOENT || e == ENOTDIR ? EXIT_NOTFOUND : EXIT_NOEXEC);
}

/*
 * The slot of this gate held by an ancestor of ours (its wrapper or its
 * command), or -1: then we run below that holder, and a second slot could
 * wait for ever on our own ancestor. Looked for only when GATERUN_SLOT is
 * in our environment (every command run in a slot has it), then checked
 * against the gate's live holders. *holder gets the ancestor's PID; *held,
 * unless NULL, the end of the gate's hold after a loss (0: none).
 */
static int
ancestor_slot(struct gate *g, pid_t *holder, int64_t *held)
{
	struct gate_info gi;
	struct procid *a;
	size_t na, i, j;
	int slot = -1;

	if (held != NULL)
		*held = 0;
	if (getenv("GATERUN_SLOT") == NULL || proc_ancestors(&a, &na) == -1)
		return -1;
	if (gate_info(g, &gi) == -1) {
		free(a);
		return -1;
	}
	if (held != NULL)
		*held = gi.hold_until;
	/* a[0] is us: after -x of an outer gaterun, the holder itself. */
	for (i = 0; i < na && slot == -1; i++)
		for (j = 0; j < gi.nh && slot == -1; j++)
			if (gi.h[j].pid == a[i].pid ||
			    gi.h[j].wrapper_pid == a[i].pid) {
				slot = gi.h[j].slot;
				*holder = a[i].pid;
			}
	gate_info_free(&gi);
	free(a);
	return slot;
}

/*
 * 1 if an ancestor of ours (not ourselves) runs our own executable (its
 * /proc/PID/exe is the same file): a gaterun, the wrapper of a slot.
 */
static int
below_gaterun(void)
{
	struct procid *a;
	struct stat self, st;
	char path[32];
	size_t na, i;
	int found = 0;

	if (stat("/proc/self/exe", &self) == -1 ||
	    proc_ancestors(&a, &na) == -1)
		return 0;
	for (i = 1; i < na && !found; i++) {
		(void)snprintf(path, sizeof(path), "/proc/%d/exe",
		    (int)a[i].pid);
		found = stat(path, &st) == 0 && st.st_dev == self.st_dev &&
		    st.st_ino == self.st_ino;
	}
	free(a);
	return found;
}

/* What a watch read names: the gate waited on, changed (or any may have). */
struct watched {
	const char	*name;
	int		hit;
};

/* A gate changed (name), or any may have (NULL): hit if it is ours. */
static void
on_watch(void *arg, const char *name)
{
	struct watched *wd = arg;

	if (name == NULL || strcmp(name, wd->name) == 0)
		wd->hit = 1;
}

/*
 * Sleep until gate name changes (w, if any: the store's change channel),
 * the hold seen ends (held, CLOCK_REALTIME ns), gw's deadline passes or
 * a signal sets its stop. 0 to look again, -1 when the deadline passed or
 * told to stop (the caller's next step in line says so). A watch that
 * fails is closed (*w NULL): the hold's end alone wakes us then.
 */
static int
sleep_change(struct gate_watch **w, const char *name, int64_t held,
    const struct gate_wait *gw)
{
	struct watched wd = { name, 0 };
	struct pollfd pfd;
	struct timespec ts;
	int64_t ns;

	while (!wd.hit && !*gw->stop) {
		ns = held - real_ns() + 1000000;	/* past its end */
		if (gw->deadline >= 0 && gw->deadline - mono_ns() < ns)
			ns = gw->deadline - mono_ns();
		if (ns <= 0)
			return gw->deadline >= 0 &&
			    mono_ns() >= gw->deadline ? -1 : 0;
		ts.tv_sec = ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pfd.fd = *w != NULL ? gate_watch_fd(*w) : -1;
		pfd.events = POLLIN;
		if (ppoll(&pfd, 1, &ts, gw->sigmask) > 0 &&
		    gate_watch_read(*w, on_watch, &wd) == -1) {
			gate_watch_close(*w);
			*w = NULL;
		}
	}
	return *gw->stop ? -1 : 0;
}

/*
 * ancestor_slot, for a request that would queue on gate g named name (the
 * run's gate if own, else a parent). After a loss of the Redis server's
 * data the holders' records are missing until each renews (a third of its
 * lease) and the gate is held meanwhile: a nested request that finds no
 * ancestor holder then would queue behind its own ancestor, which waits
 * for it: a deadlock (N-8 of brk-redis8). So when a gaterun is among our
 * ancestors, the gate is held and (own) GATERUN_SLOT_GATE names it, we
 * sleep on the store's change channel (gate_watch) until it changes or
 * the hold ends, and look again: the ancestor recorded again, we run in
 * its slot; the hold over and still no ancestor holder, we queue as any
 * request (the environment alone proves nothing). -n does not wait; gw
 * bounds the wait. The slot, or -1.
 */
static int
ancestor_wait(struct gate *g, const struct opts *o, const char *name,
    int own, const struct gate_wait *gw, pid_t *holder)
{
	const char *sg = getenv("GATERUN_SLOT_GATE");
	struct gate_watch *w = NULL;
	int64_t held;
	int slot;

	if ((slot = ancestor_slot(g, holder, &held)) >= 0 || held == 0 ||
	    o->nowait || (own && (sg == NULL || strcmp(sg, name) != 0)) ||
	    !below_gaterun())
		return slot;
	logev(o, "gate '%s': pid %d waits for its ancestor's slot to be "
	    "recorded again (the gate is held after a loss)", name,
	    (int)getpid());
	setproctitle("waiting on '%s' for its ancestor's slot to be recorded "
	    "again", name);
	if (gate_watch_open(&w, o->dir) == -1)
		w = NULL;	/* then by the hold's end alone */
	/* The watch is open before the look: no change falls between. */
	while ((slot = ancestor_slot(g, holder, &held)) < 0 && held != 0 &&
	    sleep_change(&w, name, held, gw) == 0)
		;
	gate_watch_close(w);
	return slot;
}

/*
 * A nested request runs inside its ancestor's slot: part of that job, as
 * the processes a make starts are part of the make. No record and no
 * wrapper: we become CMD, with the ancestor's slot in GATERUN_SLOT.
 */
static void __dead
exec_nested(struct gate *g, const struct opts *o, const struct sigsaved *ss,
    int slot, pid_t holder)
{
	char buf[16];
	int e;

	(void)snprintf(buf, sizeof(buf), "%d", slot);
	logev(o, "gate '%s': pid %d runs inside slot %d, held by its ancestor "
	    "%d: %s", o->gate, (int)getpid(), slot, (int)holder, o->cmd[0]);
	closelog();
	gate_close(g);
	if (cmd_env(o, buf) == -1)
		err(EXIT_GATERUN, "malloc");
	signals_restore(ss);
	execvp(o->cmd[0], o->cmd);
	e = errno;
	warn("%s", o->cmd[0]);
	exit(e == ENOENT || e == ENOTDIR ? EXIT_NOTFOUND : EXIT_NOEXEC);
}

/* Forward what arrived for CMD; being continued continues CMD's job. */
static void
forward(struct job *job)
{
	size_t i;

	for (i = 0; i < NFWD; i++)
		if (pending[our_sigs[i]]) {
			pending[our_sigs[i]] = 0;
			if (our_sigs[i] == SIGCONT)
				job_continued(job);
			else
				job_signal(job, our_sigs[i]);
		}
}

/*
 * Renew the lease (lease_tick), its server's reply waited for RENEW_NS at
 * most, never past the lease's end (a later reply is of no use: the
 * watchdog acts then): a server stalled or cut off holds up the wait for
 * CMD that long only, so CMD's end is seen, and passed on, soon after.
 * The lease's end is on the lease clock (boot_ns), the wait's deadline
 * on the monotonic one.
 */
static void
renew_bounded(struct lease *ls)
{
	struct gate_wait w = { -1, NULL, NULL };
	int64_t left;

	if (!ls->on) {
		lease_tick(ls);
		return;
	}
	left = ls->until > 0 ? ls->until - boot_ns() : RENEW_NS;
	w.deadline = mono_ns() + (left < RENEW_NS ? left : RENEW_NS);
	gate_set_wait(ls->g, &w);
	lease_tick(ls);
	w.deadline = -1;
	gate_set_wait(ls->g, &w);
}

/*
 * Wait for CMD, reaping orphans we adopted as subreaper on the way, and
 * stopping when it stops. Returns CMD's wait status, or -1.
 */
static int
wait_cmd(struct job *job, const sigset_t *sleepmask, struct lease *ls,
    struct jobserver *js)
{
	pid_t p, pid = job->cmd;
	int st, cst = 0, done = 0;

	for (;;) {
		got_chld = 0;
		while ((p = waitpid(-1, &st, WNOHANG | WUNTRACED)) > 0)
			if (p == pid && WIFSTOPPED(st))
				job_stopped(job, WSTOPSIG(st));
			else if (p == pid) {
				cst = st;
				done = 1;
			} else
				(void)lease_reaped(ls, p, st);
		if (p == -1 && errno != ECHILD && errno != EINTR)
			return -1;
		if (done)
			return cst;
		if (p == -1 && errno == ECHILD)
			return -1;
		forward(job);
		if (got_alrm) {
			got_alrm = 0;
			renew_bounded(ls);
		}
		lease_check(ls);	/* a watchdog gone is started again */
		if (!got_chld && !got_alrm && js != NULL)
			jobserver_step(js, sleepmask);	/* -J: serve tokens */
		else if (!got_chld && !got_alrm)
			(void)sigsuspend(sleepmask);
	}
}

/* The command's child while it waits for the go-ahead. */
struct runner {
	const struct opts	*o;
	const struct sigsaved	*ss;
	struct job		*job;
	struct gate		*g;
	struct jobserver	*js;	/* -J, or NULL */
	pid_t			pid;	/* parked child, or -1 */
	int			go;	/* write end of its go pipe */
	int			recorded; /* in our waiter record */
};

/* Fork the child that will exec CMD once told its slot. */
static int
park(struct runner *rn)
{
	int go[2];

	if (pipe2(go, O_CLOEXEC) == -1)
		return -1;
	if ((rn->pid = fork()) == -1) {
		(void)xclose(go[0]);
		(void)xclose(go[1]);
		return -1;
	}
	if (rn->pid == 0) {
		(void)xclose(go[1]);
		child(go[0], rn->o, rn->ss, rn->job);
	}
	job_forked(rn->job, rn->pid);
	(void)xclose(go[0]);
	rn->go = go[1];
	return 0;
}

/* Let the parked child go without running CMD: it sees EOF and exits. */
static void
unpark(struct runner *rn)
{
	if (rn->pid <= 0)
		return;
	(void)xclose(rn->go);
	while (waitpid(rn->pid, NULL, 0) == -1 && errno == EINTR)
		;
	rn->pid = -1;
	rn->recorded = 0;
}

/*
 * Queued after all: a parked child is not kept behind others (it would
 * double every waiter's memory), but the head of the queue forks its child
 * now and records it in its place, so when the slot comes the command
 * starts at once, with no fork and no second transaction on the way. FIFO
 * means the head stays the head until it is served. In exec mode (-x) the
 * wrapper is the command's process: its record names itself already.
 */
static void
on_queued(struct runner *rn, size_t pos, size_t nq)
{
	if (rn->o->exec)
		;	/* we become the command ourselves: nothing to fork */
	else if (pos > 1)
		unpark(rn);
	else if ((rn->pid > 0 || park(rn) == 0) && !rn->recorded) {
		if (gate_set_cmd(rn->g, rn->pid) == 0)
			rn->recorded = 1;
		else
			unpark(rn);	/* forked again when served */
	}
	on_progress((void *)rn->o->gate, pos, nq);
}

/*
 * Take a slot: one free now, else (without -n) in line until served;
 * between steps in line the head forks its command ahead (on_queued).
 * Returns 1 (taken), 0 (none: full, or -w ran out) or -1.
 */
static int
take_slot(struct runner *rn, const struct gate_req *req,
    const struct gate_wait *gw)
{
	size_t pos, nq;
	int r;

	r = gate_enqueue(rn->g, req, !rn->o->nowait);
	/* Its key checked once a hold after a loss ends (gate_key_unknown). */
	while (r == 0 && !rn->o->nowait && gate_key_unknown(rn->g))
		if ((r = gate_hold_sleep(rn->g, gw)) == 0)
			r = gate_enqueue(rn->g, req, 1);
	while (r == 0 && !rn->o->nowait)
		if ((r = gate_wait(rn->g, req, gw, &pos, &nq)) == 0)
			on_queued(rn, pos, nq);
	if (r == -1 && errno == ETIMEDOUT)
		return 0;
	return r;
}

/*
 * Record CMD in the parents' slots too, so that they stay taken while it
 * runs even if we are killed. 0, or -1 (CMD must not run: unparked).
 */
static int
parents_cmd(struct runner *rn)
{
	size_t i;

	for (i = 0; i < nheld_parents; i++)
		if (!gate_has_cmd(parents[i]) &&
		    gate_set_cmd(parents[i], rn->pid) == -1) {
			warn("cannot record the command in gate '%s'",
			    parent_names[i]);
			unpark(rn);
			return -1;
		}
	return 0;
}

/*
 * 1 if an ancestor of ours holds a slot of parent i (as its gate or as a
 * parent): we run within that slot, as a nested request of that gate
 * would, and the parents above it are held there too. Taking it again
 * could wait for ever on our own ancestor. A parent held after a loss,
 * with no ancestor recorded yet, is waited for within gw (ancestor_wait).
 */
static int
ancestor_parent(const struct opts *o, size_t i, const struct gate_wait *gw)
{
	pid_t holder;
	int slot;

	if ((slot = ancestor_wait(parents[i], o, parent_names[i], 0, gw,
	    &holder)) < 0)
		return 0;
	logev(o, "gate '%s': pid %d runs inside slot %d of its parent '%s', "
	    "held by its ancestor %d", o->gate, (int)getpid(), slot,
	    parent_names[i], (int)holder);
	return 1;
}

/*
 * Take a slot of each parent gate, in order, as many as of the gate (no
 * key: that is the gate's). With -n, a parent full is no slot; -w's one
 * deadline covers them all. 1, or what take_slot would return, with
 * *which the parent that gave none.
 */
static int
take_parents(struct runner *rn, const struct gate_req *req,
    const struct gate_wait *gw, size_t *which)
{
	struct gate_req preq = *req;
	size_t pos, nq;
	int r;

	preq.key = NULL;
	preq.join = 0;
	preq.need = NULL;	/* checked once, at the gate */
	preq.cmd = rn->pid > 0 ? rn->pid : 0;
	for (*which = 0; *which < nparents; (*which)++) {
		lock_bound(parents[*which], rn->o, gw);
		if (ancestor_parent(rn->o, *which, gw))
			break;
		r = gate_enqueue(parents[*which], &preq, !rn->o->nowait);
		while (r == 0 && !rn->o->nowait)
			r = gate_wait(parents[*which], &preq, gw, &pos, &nq);
		if (r == -1 && errno == ETIMEDOUT)
			r = 0;
		if (r != 1)
			return r;
		nheld_parents++;
		lock_bound(parents[*which], NULL, gw);
	}
	return 1;
}

/*
 * No slot of parent i (r 0) or no way to get one (r -1): say so, exit.
 * A parent held after a loss or paused is named so, as the gate would be.
 */
static void __dead
no_parent_slot(struct runner *rn, size_t i, int r)
{
	const struct opts *o = rn->o;
	size_t active;
	unsigned limit;
	int64_t until;
	int e = errno, hw, lost;
	char hb[400];

	unpark(rn);
	(void)gate_release(rn->g);
	release_parents();
	if (r == -1 && e == EINTR)
		die_of(got_stop);
	gate_counts(parents[i], &active, &limit);
	if (r == -1 && e == E2BIG)
		errx(EXIT_GATERUN, "cannot start: --weight %u is above the "
		    "limit %u of gate '%s', parent of '%s': it could never run",
		    o->weight, limit, parent_names[i], o->gate);
	if (r == -1)
		errx(e == ENOLCK ? o->conflict : EXIT_GATERUN, "cannot take a "
		    "slot of gate '%s', parent of '%s': %s", parent_names[i],
		    o->gate, gate_strerror(e));
	if (gate_hold(parents[i], &until, &hw, &lost))
		errx(o->conflict, "cannot start: gate '%s', parent of '%s', is "
		    "%s", parent_names[i], o->gate, report_hold(hb, sizeof(hb),
		    until, hw, lost));
	if (limit == 0)
		errx(o->conflict, "cannot start: gate '%s', parent of '%s', is "
		    "paused (limit 0, %zu running): 'gaterun -g %s --limit N' "
		    "resumes it", parent_names[i], o->gate, active,
		    parent_names[i]);
	errx(o->conflict, "cannot start: maximum concurrent processes reached "
	    "(%zu/%u on gate '%s', parent of '%s')", active, limit,
	    parent_names[i], o->gate);
}

/*
 * Open the parents of o->gate (gate_chain: cycles refused): the one the
 * gate's state named in our transaction, else the configuration's. A gate
 * without one costs nothing more.
 */
static void
open_parents(const struct opts *o, struct gate *g)
{
	char chain[MAX_CHAIN][GATE_NAME_MAX + 1];
	const char *p = gate_parent(g);
	size_t n, i;

	if (*p == '\0' && *(p = o->conf_parent) == '\0')
		return;
	gate_chain(o, o->gate, p, chain, &n);
	for (i = 1; i < n; i++) {
		(void)strlcpy(parent_names[nparents], chain[i],
		    sizeof(parent_names[0]));
		parents[nparents++] = open_named_gate(o, chain[i]);
	}
}

/*
 * The slot is held: signals are CMD's from now on (forwarded to it), and
 * on a store of leases (Redis) cut none of its waits for the server: a
 * wrapper told to stop still renews its lease (its watchdog stops CMD if
 * it cannot) until CMD has ended, then gives the slot back within
 * RELEASE_NS (release_bound). The file store's lock waits stay as they
 * were set (lock_bound).
 */
static void
hold_waits(struct gate *g)
{
	struct gate_wait w = { -1, NULL, NULL };
	size_t i;

	if (gate_lease_period(g) > 0)
		gate_set_wait(g, &w);
	for (i = 0; i < nheld_parents; i++)
		if (gate_lease_period(parents[i]) > 0)
			gate_set_wait(parents[i], &w);
}

/*
 * The slot is held: start CMD (forked ahead, or now) in the foreground of
 * the terminal when ours has it, and wait for it. Returns its wait status,
 * or -1 (it did not run, or could not be waited for).
 */
static int
run_held(struct runner *rn, sigset_t *sleepmask, const struct gate_req *req,
    int64_t t0)
{
	const char *command = req->command;
	const struct opts *o = rn->o;
	struct gate *g = rn->g;
	struct lease ls;
	char slot[16];
	int n, st;

	hold_waits(g);
	/*
	 * No child parked though the record names one: it was let go while
	 * we were not the head (a Redis restart can reorder the line), and
	 * the record kept its old PID. Fork again and record the new one.
	 */
	if (!gate_has_cmd(g) || rn->pid <= 0) {
		unpark(rn);
		if (park(rn) == -1) {
			warn("fork");
			return -1;
		}
		if (gate_set_cmd(g, rn->pid) == -1) {
			/* Unrecorded, CMD must not run: EOF stops it. */
			warn("cannot record the command in gate '%s'", o->gate);
			unpark(rn);
			return -1;
		}
	}
	if (parents_cmd(rn) == -1)
		return -1;
	signals_run(rn->ss, sleepmask);
	job_start(rn->job, rn->pid);
	n = snprintf(slot, sizeof(slot), "%d", gate_slot(g));
	(void)write_full(rn->go, slot, (size_t)n);	/* EPIPE: it died */
	(void)xclose(rn->go);
	lease_begin(&ls, g, o, rn->job, rn->pid, sleepmask);
	setproctitle("running on '%s': %s", o->gate, command);
	logev(o, "gate '%s': slot %d taken by %s, pid %d, after %.3f s: %s",
	    o->gate, gate_slot(g), me(), (int)rn->pid,
	    (double)(mono_ns() - t0) / 1e9, command);
	t0 = mono_ns();
	if (rn->js != NULL)
		jobserver_serve(rn->js, g, req, rn->pid);
	st = wait_cmd(rn->job, sleepmask, &ls, rn->js);
	lease_stop(&ls);
	if (st == -1)
		warn("wait for %s", o->cmd[0]);
	else if (WIFSIGNALED(st))
		logev(o, "gate '%s': slot %d released: pid %d killed by signal "
		    "%d after %.3f s", o->gate, gate_slot(g), (int)rn->pid,
		    WTERMSIG(st), (double)(mono_ns() - t0) / 1e9);
	else
		logev(o, "gate '%s': slot %d released: pid %d exited %d after "
		    "%.3f s", o->gate, gate_slot(g), (int)rn->pid,
		    WEXITSTATUS(st), (double)(mono_ns() - t0) / 1e9);
	job_ended(rn->job);
	return st;
}

/*
 * How long the gate's transactions wait for its lock while another process
 * holds it (for microseconds, unless that one is stopped or stuck): with
 * -n LOCK_WAIT_NS, with -w until its deadline but at least as long, else
 * (and with o NULL: a slot held, to be given back) as long as it takes.
 * The signals that end a wait in line end it too.
 */
static void
lock_bound(struct gate *g, const struct opts *o, const struct gate_wait *gw)
{
	struct gate_wait lw = *gw;
	int64_t least = mono_ns() + LOCK_WAIT_NS;

	if (o == NULL || (!o->nowait && o->wait < 0))
		lw.deadline = -1;
	else if (o->nowait || lw.deadline < least)
		lw.deadline = least;
	gate_set_wait(g, &lw);
}

/*
 * Fork the command's child before asking, so a slot free now is taken and
 * its command recorded in one transaction; orphans of the command are to
 * stay below us. Returns the child's PID.
 */
static pid_t
park_first(struct runner *rn)
{
	job_init(rn->job);
	shared_group = !rn->job->own;
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (park(rn) == -1)
		err(EXIT_GATERUN, "fork");
	return rn->pid;
}

/*
 * -n and -w bound the wait for a store's server too (Redis): one that does
 * not answer in their time (stopped, overloaded, cut off) is no slot in
 * time, exit o->conflict; without them its own timeouts hold (10 s, 125).
 * With -w, one that cannot serve till then (refused, restarting, full:
 * e) is no slot in time either.
 */
static void __dead
server_late_e(const struct opts *o, int e)
{
	if (o->nowait)
		errx(o->conflict, "cannot start: gate '%s': %s (-n waits a "
		    "second for it)", o->gate, gate_strerror(e));
	errx(o->conflict, "cannot start: gate '%s': %s (-w %g)", o->gate,
	    gate_strerror(e), o->wait);
}

/*
 * How long a new arrival without -n or -w waits for a store's server that
 * cannot serve for now (restarting, failing over: gate_open_transient):
 * its lease, --lease (in GATERUN_LEASE) or the Redis store's default
 * (REDIS_TTL_DEFAULT, lib/store_redis.h), as a waiter already in line
 * would not lose its place in that time.
 */
static int64_t
open_patience(void)
{
	const char *env = getenv("GATERUN_LEASE"), *errstr = NULL;
	long long v = 10;

	if (env != NULL)
		v = strtonum(env, 1, 86400, &errstr);
	return (errstr == NULL ? v : 10) * 1000000000LL;
}

/*
 * Open the gate, its server waited for as -n and -w say, or die. A server
 * that cannot serve for now is tried again every second, said once, up
 * to -w's deadline or (without -n and -w) open_patience(): a job started
 * during a restart runs once the server is back. A signal that ends a
 * wait in line ends this one too, at once, and we die of it: one that
 * came while the store waited for its server (EINTR) as well.
 */
static struct gate *
open_bounded(const struct opts *o, const sigset_t *sleepmask)
{
	int64_t least = mono_ns() + LOCK_WAIT_NS, d = -1, end;
	struct timespec sec = { 1, 0 };
	struct gate_wait ow = { -1, NULL, NULL };
	struct gate *g;
	int said = 0;

	if (o->nowait || o->wait >= 0) {
		d = o->nowait ? 0 : mono_ns() + (int64_t)(o->wait * 1e9);
		d = d < least ? least : d;
	}
	end = d >= 0 ? d : mono_ns() + open_patience();
	ow.deadline = end;
	ow.sigmask = sleepmask;
	ow.stop = &got_stop;
	gate_set_open_wait(&ow);
	while (gate_open(&g, o->dir, o->gate, o->deflimit, 1, on_notify,
	    NULL) == -1) {
		if (got_stop)
			die_of(got_stop);
		if (o->nowait || !gate_open_transient(o->dir, errno) ||
		    mono_ns() + LOCK_WAIT_NS > end) {
			if (d >= 0 && (errno == ETIME || (!o->nowait &&
			    gate_open_transient(o->dir, errno))))
				server_late_e(o, errno);
			die_gate(o, "cannot open");
		}
		if (!said++)
			warnx("gate '%s': %s: trying again every second, for "
			    "up to %.0f s", o->gate, gate_strerror(errno),
			    (double)(end - mono_ns()) / 1e9);
		(void)ppoll(NULL, 0, &sec, sleepmask);
		if (got_stop)
			die_of(got_stop);
	}
	if (said)
		warnx("gate '%s': the Redis server answers again", o->gate);
	gate_set_open_wait(NULL);
	return g;
}

/* No slot (r 0) or no way to get one (r -1): say why and exit. */
static void __dead
no_slot(struct runner *rn, int r)
{
	const struct opts *o = rn->o;
	const char *why;
	char hb[400];
	size_t active;
	unsigned limit;
	int64_t until;
	int hw, lost;

	unpark(rn);
	jobserver_close(rn->js);
	if (r == -1 && errno == EINTR)
		die_of(got_stop);
	if (r == -1 && errno == EUSERS)
		errx(EXIT_GATERUN, "cannot queue on gate '%s': %s", o->gate,
		    gate_strerror(errno));
	if (r == -1 && errno == EEXIST) {
		gate_close(rn->g);
		errx(o->conflict, "cannot start: gate '%s': a request with key "
		    "'%s' is already queued or running", o->gate, o->key);
	}
	if (r == -1 && errno == E2BIG) {
		gate_counts(rn->g, &active, &limit);
		errx(EXIT_GATERUN, "cannot start: gate '%s': --weight %u is "
		    "above its limit %u: it could never run", o->gate,
		    o->weight, limit);
	}
	if (r == -1 && (o->nowait || o->wait >= 0) && (errno == ETIME ||
	    (!o->nowait && gate_open_transient(o->dir, errno))))
		server_late_e(o, errno);	/* as open_bounded */
	if (r == -1 && errno == ENOLCK) {
		gate_close(rn->g);
		errx(o->conflict, "cannot start: gate '%s': %s", o->gate,
		    gate_strerror(ENOLCK));
	}
	if (r == -1)
		die_gate(o, "cannot take a slot of");
	if ((why = gate_res_why(rn->g)) != NULL)	/* a need not met */
		errx(o->conflict, "cannot start: gate '%s': %s", o->gate, why);
	gate_counts(rn->g, &active, &limit);
	if (gate_key_unknown(rn->g) && gate_hold(rn->g, &until, &hw, &lost))
		errx(o->conflict, "cannot start: gate '%s': key '%s' cannot be "
		    "checked while holders from before a loss of the server's "
		    "data are not recorded again (one may hold it): the gate "
		    "is %s", o->gate, o->key, report_hold(hb, sizeof(hb),
		    until, hw, lost));
	if (gate_hold(rn->g, &until, &hw, &lost))	/* not a pause */
		errx(o->conflict, "cannot start: gate '%s' is %s", o->gate,
		    report_hold(hb, sizeof(hb), until, hw, lost));
	gate_close(rn->g);
	if (limit == 0)		/* as the last look saw it */
		errx(o->conflict, "cannot start: gate '%s' is paused "
		    "(limit 0, %zu running): 'gaterun -g %s --limit N' "
		    "resumes it", o->gate, active, o->gate);
	if (o->weight > 1)
		errx(o->conflict, "cannot start: %u slots needed, %zu/%u in "
		    "use on gate '%s'", o->weight, active, limit, o->gate);
	if (active < limit)	/* free slots, kept for the head of the line */
		errx(o->conflict, "cannot start: %zu/%u in use on gate '%s', "
		    "and the free ones are kept for a waiter ahead (heavier, "
		    "or waiting for a resource): -n never passes it", active,
		    limit, o->gate);
	errx(o->conflict, "cannot start: maximum concurrent processes "
	    "reached (%zu/%u on gate '%s')", active, limit, o->gate);
}

/*
 * --unique-join found a live request with our key: wait for its end and
 * exit with its exit status (128+N for a signal), without running
 * anything; with -n, exit at once as --unique does.
 */
static void __dead
follow(struct runner *rn, const struct gate_wait *gw)
{
	const struct opts *o = rn->o;
	int r, status;
	pid_t pid;

	unpark(rn);
	if (o->nowait) {
		errno = EEXIST;
		no_slot(rn, -1);
	}
	setproctitle("following '%s' on '%s'", o->key, o->gate);
	r = gate_follow(rn->g, gw, &status, &pid);
	if (r == -1 && errno == EINTR)
		die_of(got_stop);
	if (r == -1 && errno == ETIMEDOUT)
		errx(o->conflict, "cannot start: gate '%s': the run with key "
		    "'%s' (wrapper %d) did not end in time", o->gate, o->key,
		    (int)pid);
	if (r == -1)
		die_gate(o, "cannot follow the run of");
	gate_close(rn->g);
	if (r == 0)
		errx(EXIT_GATERUN, "gate '%s': the run with key '%s' (wrapper "
		    "%d) ended without leaving its exit status (killed, or "
		    "run with -x)", o->gate, o->key, (int)pid);
	exit(status);
}

/* What we ask the gate for, from the options. */
static void
make_req(const struct opts *o, struct gate_req *req, char *cwd, size_t len)
{
	memset(req, 0, sizeof(*req));
	req->cwd = getcwd(cwd, len) ? cwd : "";
	req->command = join_cmd(o->cmd);
	req->self_cmd = o->exec;
	req->weight = o->weight;
	req->priority = o->priority;
	req->key = o->key;
	req->join = o->join;
	req->need = o->need.has != 0 ? &o->need : NULL;
}

/*
 * The resource needs must be checkable here (procfs mounted, PSI in the
 * kernel): refused before anything changes, not found out in line.
 */
static void
needs_readable(const struct opts *o)
{
	char why[256];

	if (o->need.has != 0 && res_check(&o->need, why, sizeof(why)) == -1)
		errx(EXIT_GATERUN, "cannot check --min-mem, --max-pressure or "
		    "--max-load: %s", why);
}

/*
 * A weight above the limit of a parent could never run: refuse it before
 * it waits in line at the gate (where it would hold the others back).
 */
static void
parents_fit(const struct opts *o, struct gate *g)
{
	char chain[MAX_CHAIN][GATE_NAME_MAX + 1], first[GATE_NAME_MAX + 1];
	struct gate_info gi;
	struct gate *p;
	unsigned limit;
	size_t n, i;

	if (o->weight <= 1 || gate_info(g, &gi) == -1)
		return;
	(void)strlcpy(first, gi.parent[0] != '\0' ? gi.parent :
	    o->conf_parent, sizeof(first));
	gate_info_free(&gi);
	if (first[0] == '\0')
		return;
	gate_chain(o, o->gate, first, chain, &n);
	for (i = 1; i < n; i++) {
		p = open_named_gate(o, chain[i]);
		limit = gate_info(p, &gi) == -1 ? 0 : gi.limit;
		gate_info_free(&gi);	/* emptied on failure too */
		gate_close(p);
		if (limit > 0 && o->weight > limit)
			errx(EXIT_GATERUN, "cannot start: --weight %u is above "
			    "the limit %u of gate '%s', parent of '%s': it "
			    "could never run", o->weight, limit, chain[i],
			    o->gate);
	}
}

/*
 * The slots of the gate, then of each parent; or follow the run of our
 * key; or exit saying why there is no slot.
 */
static void
take_all(struct runner *rn, const struct gate_req *req,
    const struct gate_wait *gw)
{
	size_t i;
	int r;

	parents_fit(rn->o, rn->g);
	if ((r = take_slot(rn, req, gw)) == 2)
		follow(rn, gw);
	if (r != 1)
		no_slot(rn, r);
	open_parents(rn->o, rn->g);
	if (nparents > 0 && (r = take_parents(rn, req, gw, &i)) != 1)
		no_parent_slot(rn, i, r);
}

/*
 * On a store of leases (Redis), the slots are given back within
 * RELEASE_NS: a server stalled or cut off frees them anyway when their
 * leases end, and the command's exit status is not to wait for it. A
 * wrapper told to stop (TERM...) makes one try, a second at most (see
 * stopping in store_redis.c).
 */
static void
release_bound(struct gate *g)
{
	struct gate_wait w = { -1, NULL, NULL };
	size_t i;

	if (gate_lease_period(g) == 0)
		return;
	w.deadline = mono_ns() + RELEASE_NS;
	w.stop = &got_stop;	/* told to stop: one try, a second at most */
	gate_set_wait(g, &w);
	for (i = 0; i < nheld_parents; i++)
		gate_set_wait(parents[i], &w);
}

/*
 * CMD ended with wait status st (-1: did not run): record it for those
 * who join a keyed run, give every slot back, close the gates.
 */
static void
give_back(struct gate *g, const struct opts *o, int st)
{
	size_t i;

	release_bound(g);
	if (st != -1)
		gate_set_status(g, WIFSIGNALED(st) ? 128 + WTERMSIG(st) :
		    WEXITSTATUS(st));
	if (gate_release(g) == -1)
		warnx("cannot release the slot of gate '%s': %s; %s", o->gate,
		    gate_strerror(errno), gate_lease_period(g) > 0 ? "other "
		    "hosts see it free when its lease ends, this host when "
		    "this process is gone" : "it is freed when this process "
		    "is gone");
	release_parents();
	gate_close(g);
	for (i = 0; i < nparents; i++)
		gate_close(parents[i]);
}

/* Take a slot, run the command in it, release, pass its status back. */
int
do_run(const struct opts *o)
{
	struct runner rn = { o, NULL, NULL, NULL, NULL, -1, -1, 0 };
	struct opts oj;
	struct gate_req req;
	struct gate_wait gw;
	struct sigsaved ss;
	struct job job;
	sigset_t sleepmask;
	pid_t holder;
	char cwd[PATH_MAX];
	struct gate *g;
	int64_t t0;
	int r, st = -1;

	t0 = mono_ns();
	needs_readable(o);
	signals_setup(&ss, o->exec);
	rn.ss = &ss;
	sleep_mask(&ss, &sleepmask);
	g = open_bounded(o, &sleepmask);
	rn.g = g;
	if (o->exec && gate_lease_period(g) > 0)
		errx(EXIT_GATERUN, "-x: gate '%s' is on a store of leases "
		    "(Redis): a slot there needs its gaterun to renew it, so "
		    "gaterun cannot become the command; run without -x",
		    o->gate);
	if (o->jobserver && gate_lease_period(g) > 0)
		errx(EXIT_GATERUN, "-J: gate '%s' is on a store of leases "
		    "(Redis): a jobserver there is not done; run without -J",
		    o->gate);
	memset(&gw, 0, sizeof(gw));
	gw.deadline = o->wait < 0 ? -1 : mono_ns() + (int64_t)(o->wait * 1e9);
	gw.sigmask = &sleepmask;
	gw.stop = &got_stop;
	if ((r = ancestor_wait(g, o, o->gate, 1, &gw, &holder)) >= 0)
		exec_nested(g, o, &ss, r, holder);
	if (o->jobserver) {	/* the build's environment names it */
		rn.js = jobserver_open(o, &oj);
		rn.o = o = &oj;
	}
	make_req(o, &req, cwd, sizeof(cwd));
	memset(&job, 0, sizeof(job));
	job.tty = -1;
	rn.job = &job;
	if (!o->exec)
		req.cmd = park_first(&rn);
	lock_bound(g, o, &gw);
	take_all(&rn, &req, &gw);
	if (rn.js != NULL && nparents > 0)	/* known once the slot is ours */
		errx(EXIT_GATERUN, "-J is not supported on gate '%s', which "
		    "has a parent gate: its tokens would not count there",
		    o->gate);

	lock_bound(g, NULL, &gw);
	if (o->exec)
		exec_cmd(g, o, &ss);

	/* Slot held: from here every path reaches gate_release(). */
	if (got_stop) {		/* told to stop just as the slot came */
		unpark(&rn);
		(void)gate_release(g);
		release_parents();
		jobserver_close(rn.js);
		die_of(got_stop);
	}
	st = run_held(&rn, &sleepmask, &req, t0);
	give_back(g, o, st);
	jobserver_close(rn.js);
	free((void *)req.command);
	if (st == -1)
		return EXIT_GATERUN;
	if (WIFSIGNALED(st))
		die_of(WTERMSIG(st));
	return WEXITSTATUS(st);
}
