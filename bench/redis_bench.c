/*
 * redis_bench: the engine's cost on one store (a directory or a redis://
 * locator), through lib/ directly so process start-up is left out:
 *
 *	redis_bench LOCATOR ops N	acquire+release per second (N pairs)
 *	redis_bench LOCATOR handoff N	release -> waiter holding (median us)
 *	redis_bench LOCATOR holders K N	acquire+release with K held (median us)
 *	redis_bench LOCATOR waiters W N	a written transaction, W queued (us)
 *
 * Built by bench/redis.sh against the build's lib/libgaterun.a.
 */
#include "config.h"

#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate.h"
#include "sys.h"

static const struct gate_req req = { "/", "bench", 0, 0 };
static const struct gate_wait forever = { -1, NULL, NULL };

static struct gate *
gopen(const char *loc, const char *name, unsigned limit)
{
	struct gate *g;

	if (gate_open(&g, loc, name, limit, 1, NULL, NULL) == -1) {
		perror("gate_open");
		exit(1);
	}
	return g;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median of n samples (ns) in microseconds. */
static double
median_us(int64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp64);
	return (double)v[n / 2] / 1e3;
}

/* Set the limit of name to limit (a gate left by an earlier run). */
static struct gate *
fresh(const char *loc, const char *name, unsigned limit)
{
	struct gate *g = gopen(loc, name, limit);
	unsigned old;

	(void)gate_set_limit(g, limit, &old);
	return g;
}

static void
ops(const char *loc, int n)
{
	struct gate *g = fresh(loc, "bench-ops", 1000);
	int64_t t0 = mono_ns();
	int i;

	for (i = 0; i < n; i++)
		if (gate_acquire(g, &req, NULL) != 1 || gate_release(g) == -1)
			exit(1);
	printf("%.0f\n", n / ((double)(mono_ns() - t0) / 1e9));
	gate_close(g);
}

/*
 * Wait until the gate has n waiters, renewing what we hold on a store of
 * leases (else another host would take it as gone) every half second.
 */
static void
until_waiting(struct gate *g, size_t n)
{
	struct gate_info gi;
	int64_t until, last = mono_ns();
	size_t nw;

	do {
		if (mono_ns() - last > 500000000LL) {
			(void)gate_renew(g, &until);
			last = mono_ns();
		}
		if (gate_info(g, &gi) == -1)
			exit(1);
		nw = gi.nw;
		gate_info_free(&gi);
	} while (nw != n);
}

/*
 * Two processes pass one slot back and forth: each, once holding, waits
 * for the other to queue, notes the time and releases; the other notes
 * when it holds. Samples: holds minus releases, through a pipe.
 */
static void
handoff(const char *loc, int n)
{
	struct gate *g = fresh(loc, "bench-handoff", 1);
	int64_t *lat = calloc((size_t)n, sizeof(*lat)), t[2];
	int p[2], i, k;
	pid_t pid;

	gate_close(g);
	if (pipe(p) == -1)
		exit(1);
	for (k = 0; k < 2; k++)
		if ((pid = fork()) == 0) {
			g = gopen(loc, "bench-handoff", 1);
			for (i = 0; i < n / 2 + 1; i++) {
				if (gate_acquire(g, &req, &forever) != 1)
					_exit(1);
				t[0] = mono_ns();
				until_waiting(g, 1);
				t[1] = mono_ns();
				if (write(p[1], t, sizeof(t)) != sizeof(t))
					_exit(1);
				(void)gate_release(g);
			}
			_exit(0);
		}
	(void)close(p[1]);
	/* A release at t[1] of sample i is followed by a hold at t[0]. */
	for (i = 0; i <= n && read_full(p[0], t, sizeof(t)) == sizeof(t);
	    i++) {
		if (i > 0)
			lat[i - 1] = t[0] - lat[i - 1];
		if (i < n)
			lat[i] = t[1];
	}
	(void)signal(SIGTERM, SIG_IGN);
	(void)kill(0, SIGTERM);
	while (wait(NULL) > 0)
		;
	printf("%.1f\n", median_us(lat, n));
}

static void
holders(const char *loc, int k, int n)
{
	struct gate *g = fresh(loc, "bench-holders", (unsigned)k + 1);
	int64_t *v = calloc((size_t)n, sizeof(*v)), t0;
	int i;

	for (i = 0; i < k; i++)
		if (gate_acquire(g, &req, NULL) != 1)
			exit(1);
	for (i = 0; i < n; i++) {
		t0 = mono_ns();
		if (gate_acquire(g, &req, NULL) != 1 ||
		    gate_release_slot(g, gate_slot(g)) == -1)
			exit(1);
		v[i] = mono_ns() - t0;
	}
	printf("%.1f\n", median_us(v, n));
	gate_close(g);
}

static void
waiters(const char *loc, int w, int n)
{
	struct gate *g = fresh(loc, "bench-waiters", 1);
	int64_t *v = calloc((size_t)n, sizeof(*v)), t0;
	unsigned old;
	int i;

	if (gate_acquire(g, &req, NULL) != 1)
		exit(1);
	for (i = 0; i < w; i++) {	/* one at a time: no herd */
		if (fork() == 0) {
			struct gate *q = gopen(loc, "bench-waiters", 1);

			(void)gate_acquire(q, &req, &forever);
			_exit(0);
		}
		until_waiting(g, (size_t)i + 1);
	}
	for (i = 0; i < n; i++) {
		t0 = mono_ns();
		if (gate_set_limit(g, (unsigned)(i % 2), &old) == -1)
			exit(1);
		v[i] = mono_ns() - t0;
	}
	(void)gate_set_limit(g, 0, &old);
	(void)signal(SIGTERM, SIG_IGN);
	(void)kill(0, SIGTERM);
	while (wait(NULL) > 0)
		;
	printf("%.1f\n", median_us(v, n));
	gate_close(g);
}

int
main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	(void)setpgid(0, 0);		/* kill(0, ...) reaches ours alone */
	if (strcmp(argv[2], "ops") == 0)
		ops(argv[1], atoi(argv[3]));
	else if (strcmp(argv[2], "handoff") == 0)
		handoff(argv[1], atoi(argv[3]));
	else if (strcmp(argv[2], "holders") == 0 && argc == 5)
		holders(argv[1], atoi(argv[3]), atoi(argv[4]));
	else if (strcmp(argv[2], "waiters") == 0 && argc == 5)
		waiters(argv[1], atoi(argv[3]), atoi(argv[4]));
	else
		return 2;
	return 0;
}
