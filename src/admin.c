/*
 * gaterun's admin modes: --status, --check and --metrics (once, or redrawn
 * with --watch), --limit, --kill-all and --is-active. Each reads or changes
 * the gate through lib/gate.h and prints through report.c.
 */
#include "config.h"

#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "conffile.h"
#include "exitcodes.h"
#include "gate.h"
#include "gaterun.h"
#include "report.h"

/*
 * How --limit and --kill-all wait for the gate's lock: as long as it
 * takes (Ctrl-C ends it), naming the holder if that lasts.
 */
static const struct gate_wait lock_forever = { -1, NULL, NULL };

/*
 * Gates that could not be read: named on stderr, or for --check as one
 * UNKNOWN line (exit 3). The others are shown all the same.
 */
static void
report_failed(const struct opts *o, const struct snapshots *s)
{
	size_t i;

	if (s->nfailed > 0 && o->mode == MODE_CHECK) {
		(void)printf("GATERUN UNKNOWN - ");
		for (i = 0; i < s->nfailed; i++)
			(void)printf("%s%s", i > 0 ? "; " : "", s->why[i]);
		(void)printf("\n");
		exit(3);
	}
	for (i = 0; i < s->nfailed; i++)
		warnx("%s", s->why[i]);
}

/*
 * --status, --metrics and --check, of one gate or all, once. A gate that
 * cannot be read makes it 125 (--check: 3), after the others are shown.
 */
static int
show_once(const struct opts *o)
{
	struct snapshots s;
	size_t i;
	int r = 0;

	if (snapshots_of(o->dir, o->all ? NULL : o->gate, o->conf, on_notify,
	    &s) == -1) {
		if (o->mode == MODE_CHECK) {
			(void)printf("GATERUN UNKNOWN - cannot list the gates "
			    "in %s: %s\n", o->where, gate_strerror(errno));
			exit(3);
		}
		if (o->all)
			errx(EXIT_GATERUN, "cannot list the gates in %s: %s",
			    o->where, gate_strerror(errno));
		die_gate(o, "cannot read");
	}
	report_failed(o, &s);
	if (o->mode == MODE_CHECK)
		r = report_check(stdout, s.names, s.gi, s.n, o->warn, o->crit,
		    o->maxwait);
	else if (o->mode == MODE_METRICS)
		report_metrics(stdout, s.names, s.gi, s.n);
	else if (o->json && o->all)
		report_status_all_json(stdout, s.names, s.gi, s.n);
	else if (o->json && s.n > 0)
		report_status_json(stdout, s.names[0], &s.gi[0]);
	else if (o->all && s.n == 0 && s.nfailed == 0)
		(void)printf("no gates in %s\n", o->where);
	else
		for (i = 0; i < s.n; i++) {
			if (i > 0)
				(void)putchar('\n');
			report_status(stdout, s.names[i], &s.gi[i]);
		}
	if (s.nfailed > 0)
		r = EXIT_GATERUN;
	snapshots_free(&s);
	return r;
}

/* A change seen while watching: nothing to do but redraw. */
static void
on_change(void *arg, const char *name)
{
	(void)arg;
	(void)name;
}

/*
 * The watch on the store, (re)opened when there is none. A watch that was
 * there and was lost (a Redis server restarting, a connection killed)
 * is tried again every second, said once, with no redraw meanwhile: 0
 * when there is a watch (redraw), 1 when there is none for now (a second
 * has passed: try again), -1 when the store cannot be watched (redraw by
 * time alone). *said: the loss was said.
 */
static int
watch_again(const struct opts *o, struct gate_watch **wp, int lost,
    int *said)
{
	if (*wp != NULL || gate_watch_open(wp, o->dir) == 0) {
		if (*said)
			warnx("watching the gates in %s again", o->where);
		*said = 0;
		return 0;
	}
	*wp = NULL;
	if (!lost)
		return -1;
	if (!*said)
		warnx("cannot watch the gates in %s: %s: trying again every "
		    "second", o->where, gate_strerror(errno));
	*said = 1;
	(void)poll(NULL, 0, 1000);
	return 1;
}

/*
 * --status --watch: redraw at once when a gate of the store changes
 * (gate_watch), and every period for the elapsed times, until
 * interrupted. A watch lost is opened again (watch_again), then the
 * gates redrawn: never a redraw in a loop on a dead connection.
 */
int
do_show(const struct opts *o)
{
	struct gate_watch *w = NULL;
	struct pollfd pfd;
	int lost = 0, said = 0, r;

	if (o->watch < 0)
		return show_once(o);
	for (;;) {
		if ((r = watch_again(o, &w, lost, &said)) == 1)
			continue;
		lost = 0;
		pfd.fd = r == 0 ? gate_watch_fd(w) : -1;  /* -1: by time */
		pfd.events = POLLIN;
		(void)printf("\033[H\033[2J");	/* home, clear */
		(void)show_once(o);
		(void)printf("\n(every %.1f s and on every change; Ctrl-C to "
		    "stop)\n", o->watch);
		(void)fflush(stdout);
		if (poll(&pfd, 1, (int)(o->watch * 1000)) > 0 &&
		    gate_watch_read(w, on_change, NULL) == -1) {
			gate_watch_close(w);
			w = NULL;
			lost = 1;
		}
	}
}

/*
 * --parent: refused when the parent's own chain of parents leads back to
 * this gate (then a command would wait on itself), or when the gate has
 * holders or waiters, else recorded. Every change of parents in the store
 * is made under one lock, so two of them never store a cycle between
 * them; and the chain above a gate in use stays fixed, so requests take
 * parents only upwards along parent links that exist, and a cycle of
 * waits would need a cycle of parents, which is refused: no deadlock.
 */
static void
set_parent(const struct opts *o, struct gate *g)
{
	char chain[MAX_CHAIN][GATE_NAME_MAX + 1];
	size_t n, i;

	/*
	 * A Redis store has no such lock: the parent is set in the gate's
	 * key all the same (a transaction that checks the gate is idle).
	 * Two changes made at once could store a cycle between them; no
	 * deadlock follows, for every run reads its chain and refuses one
	 * (gate_chain): a run holding a slot while it waits on another read
	 * a chain without the cycle, so no run waits the other way round.
	 */
	if (gate_lease_period(g) == 0 && gate_lock_store(o->dir) == -1)
		errx(EXIT_GATERUN, "cannot lock %s to change a parent: %s",
		    o->where, gate_strerror(errno));
	if (*o->parent != '\0') {
		if (strcmp(o->parent, o->gate) == 0)
			errx(EXIT_GATERUN, "gate '%s' cannot be its own parent",
			    o->gate);
		gate_chain(o, o->parent, NULL, chain, &n);
		for (i = 0; i < n; i++)
			if (strcmp(chain[i], o->gate) == 0)
				errx(EXIT_GATERUN, "gate '%s' cannot have parent "
				    "'%s': '%s' is above '%s' already (a cycle)",
				    o->gate, o->parent, o->gate, o->parent);
		if (n == MAX_CHAIN)
			errx(EXIT_GATERUN, "gate '%s': more than %d parents "
			    "above it", o->gate, MAX_CHAIN - 1);
	}
	if (gate_set_parent(g, o->parent) == -1) {
		if (errno == EBUSY)
			errx(EXIT_GATERUN, "cannot change the parent of gate "
			    "'%s' while commands run or wait in it", o->gate);
		die_gate(o, "cannot set the parent of");
	}
}

/* --limit N: set it, log it, save it with --persist, say what it was. */
int
do_limit(const struct opts *o)
{
	struct gate *g = open_gate(o, 1);
	char err[512], conf[PATH_MAX], ob[64];
	unsigned old;
	int64_t until;
	int why, lost;

	gate_set_wait(g, &lock_forever);
	/* A file --persist may not write changes nothing. */
	if (o->persist && config_target(o->conf, conf, sizeof(conf), err,
	    sizeof(err)) == -1)
		errx(EXIT_GATERUN, "cannot save a limit: %s", err);
	if (o->parent != NULL)
		set_parent(o, g);
	if (gate_set_limit(g, o->limit, &old) == -1)
		die_gate(o, "cannot set the limit of");
	/* After a loss of a Redis server's data the old one may be unknown. */
	if (gate_hold(g, &until, &why, &lost) && lost)
		(void)strlcpy(ob, "unknown (lost with the Redis server's data)",
		    sizeof(ob));
	else
		(void)snprintf(ob, sizeof(ob), "%u", old);
	logev(o, "gate '%s': limit %s -> %u by %s", o->gate, ob, o->limit,
	    me());
	if (o->persist && config_set_limit(conf, o->gate, o->limit, err,
	    sizeof(err)) == -1)
		errx(EXIT_GATERUN, "limit set to %u, but not saved: %s",
		    o->limit, err);
	if (o->json)
		report_limit_json(stdout, o->gate, lost ? -1 : (long long)old,
		    o->limit, o->parent);
	else
		(void)printf("gate '%s': limit %s -> %u%s\n", o->gate, ob,
		    o->limit, o->limit == 0 ? " (paused)" : "");
	gate_close(g);
	return 0;
}

/*
 * Kill-all during the hold after a loss (see struct gate_kill): said on
 * stderr when not all the holders the key lacked answered (1: a failure;
 * when how many is not known, only if none answered), else on stdout
 * unless to says nothing (--json says it).
 */
static int
kill_hold(const struct gate_kill *k, FILE *to)
{
	long n = k->slot, got = k->pid;

	if (n < 0) {
		warnx("the gate is held after a loss: holders not recorded "
		    "again may run (how many is not known); %ld answered; any "
		    "that did not answer were not reached", got);
		return got == 0;
	}
	if (got < n) {
		warnx("the gate is held after a loss: %ld holder slot%s not "
		    "recorded again; %ld answered; those that did not answer "
		    "were not reached: their commands may still run", n,
		    n == 1 ? "" : "s", got);
		return 1;
	}
	if (to != NULL)
		(void)fprintf(to, "the gate is held after a loss: %ld holder "
		    "slot%s not recorded again; %ld answered\n", n,
		    n == 1 ? "" : "s", got);
	return 0;
}

/* Say why a process kill-all tried was not signalled; 1 if a failure. */
static int
kill_failed(const struct gate_kill *k)
{
	switch (k->error) {
	case 0:
	case ESRCH:		/* gone meanwhile: nothing left to do */
	case EDEADLK:		/* our own slot: said on stdout */
		return 0;
	case ESTALE:
		warnx("slot %d left alone: PID %d in its record is no process "
		    "gaterun started in this PID namespace", k->slot,
		    (int)k->pid);
		return 1;
	case EHOSTUNREACH:	/* no process: said by kill_hold */
		return kill_hold(k, NULL);
	case ETIMEDOUT:		/* a store shared by hosts: see gate.h */
		warnx("host '%s' did not answer within the grace: its command "
		    "in slot %d (PID %d there) may still run", k->host,
		    k->slot, (int)k->pid);
		return 1;
	default:
		errno = k->error;
		warn("cannot signal %d", (int)k->pid);
		return 1;
	}
}

/* --kill-all: signal every running command and what it started. */
int
do_kill(const struct opts *o)
{
	struct gate_kill *k;
	struct gate *g = open_gate(o, 0);
	size_t n, i, nok = 0;
	int failed = 0, e;

	gate_set_wait(g, &lock_forever);
	if (gate_kill_all(g, o->sig, o->grace, &k, &n) == -1) {
		/* Across hosts, once sent a request has an outcome (gate.h). */
		e = errno;
		if (gate_lease_period(g) > 0)
			errx(EXIT_GATERUN, "cannot kill the commands of gate "
			    "'%s' in %s: %s: nothing was sent, no command was "
			    "signalled", o->gate, o->where, gate_strerror(e));
		errno = e;
		die_gate(o, "cannot kill the commands of");
	}
	for (i = 0; i < n; i++) {
		nok += k[i].error == 0;
		failed |= kill_failed(&k[i]);
	}
	if (o->json)
		report_kill_json(stdout, o->gate, k, n);
	else {
		(void)printf("killed %zu process%s%s", nok, nok == 1 ? "" : "es",
		    nok ? ":" : "");
		for (i = 0; i < n; i++)
			if (k[i].error == 0)
				(void)printf(" %d%s%s", (int)k[i].pid,
				    k[i].host[0] != '\0' ? "@" : "", k[i].host);
		(void)printf("\n");
		for (i = 0; i < n; i++)
			if (k[i].error == EDEADLK)
				(void)printf("the caller's own slot %d (PID %d) "
				    "was spared: it is this kill-all%s\n",
				    k[i].slot, (int)k[i].pid,
				    k[i].pid == getpid() ? "" : "'s ancestor");
		for (i = 0; i < n; i++)
			if (k[i].error == EHOSTUNREACH && k[i].slot >= 0 &&
			    k[i].pid >= k[i].slot)
				(void)kill_hold(&k[i], stdout);
	}
	logev(o, "gate '%s': kill-all by %s: signal %d sent to %zu "
	    "processes%s", o->gate, me(), o->sig, nok,
	    failed ? ", some not signalled" : "");
	free(k);
	gate_close(g);
	return failed;
}

/* --is-active PID: 0 if PID is a live holder's command or wrapper. */
int
do_active(const struct opts *o)
{
	struct gate *g = open_gate(o, 0);
	int r;

	if ((r = gate_is_active(g, o->pid)) == -1)
		die_gate(o, "cannot read");
	gate_close(g);
	return r ? 0 : 1;
}
