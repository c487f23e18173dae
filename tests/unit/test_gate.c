/*
 * Unit tests of lib/gate.c, the policy: slots, FIFO order, reaping of the
 * dead, limit changes, several slots per process. Each POLICY test runs
 * on the file store (a fresh directory), on the in-memory test store
 * (store_mem.c) and, when redis-server is installed, on the Redis store
 * (a server of the test's own on a free loopback port); the file store's
 * own cases (damage, trust, boot, locators, watching) follow. Every test has a timeout: a wait that
 * never ends fails instead of hanging.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate.h"
#include "proc.h"
#include "store_mem.h"
#include "sys.h"
#ifdef HAVE_HIREDIS
#include "store_redis.h"
#endif

static char dir[64];
static int notified;
static int use_mem;		/* the in-memory store, not the file store */
static pid_t redis_pid = -1;	/* the Redis store: the test's server */
static char redis_loc[64];

static void
tmpdir_setup(void)
{
	strcpy(dir, "/tmp/gaterun-unit-XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	notified = 0;
	use_mem = 0;
}

static void
mem_setup(void)
{
	tmpdir_setup();
	cr_assert(eq(int, store_mem_init(), 0));
	use_mem = 1;
}

static void	tmpdir_teardown(void);

/* A loopback port free now, or -1. */
static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	(void)close(fd);
	return port;
}

/* 1 once something accepts on the port. */
static int
accepting(int port)
{
	struct sockaddr_in sa;
	int fd, r;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	(void)close(fd);
	return r;
}

/*
 * A redis-server of this test's own (no persistence), stopped by its PID
 * in the teardown; none (the test is skipped) if it is not installed.
 */
static void
redis_setup(void)
{
	char port[16];
	int n, i;

	tmpdir_setup();
	if ((n = free_port()) == -1)
		return;
	(void)snprintf(port, sizeof(port), "%d", n);
	if ((redis_pid = fork()) == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		(void)freopen("/dev/null", "w", stdout);
		execlp("redis-server", "redis-server", "--port", port,
		    "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		    "--dir", dir, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500 && !accepting(n); i++)
		if (waitpid(redis_pid, NULL, WNOHANG) == redis_pid) {
			redis_pid = -1;		/* not installed */
			return;
		} else
			usleep(10000);
	(void)snprintf(redis_loc, sizeof(redis_loc), "redis://127.0.0.1:%d",
	    n);
}

static void
redis_teardown(void)
{
	if (redis_pid > 0) {
		(void)kill(redis_pid, SIGTERM);
		(void)waitpid(redis_pid, NULL, 0);
	}
	redis_pid = -1;
	redis_loc[0] = '\0';
	tmpdir_teardown();
}

static void
tmpdir_teardown(void)
{
	char cmd[128];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", dir);
}

static void
on_notify(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
	notified++;
}

static struct gate *
gopen(unsigned limit)
{
	struct gate *g;

	if (use_mem)
		cr_assert(eq(int, gate_open_store(&g, &store_mem_ops, "", "t",
		    limit, 1, on_notify, NULL), 0));
	else if (redis_loc[0] != '\0')
		cr_assert(eq(int, gate_open(&g, redis_loc, "t", limit, 1,
		    on_notify, NULL), 0));
	else
		cr_assert(eq(int, gate_open(&g, dir, "t", limit, 1, on_notify,
		    NULL), 0));
	return g;
}

static const struct gate_req req = { .cwd = "/", .command = "test" };

TestSuite(file, .init = tmpdir_setup, .fini = tmpdir_teardown, .timeout = 30);
TestSuite(mem, .init = mem_setup, .fini = tmpdir_teardown, .timeout = 30);
TestSuite(redis, .init = redis_setup, .fini = redis_teardown, .timeout = 30);

/* The Redis store's test, skipped without a server. */
#define NEED_REDIS()	do {						\
	if (redis_loc[0] == '\0')					\
		cr_skip_test("redis-server is not installed");		\
} while (0)

/* A test of the policy: run on every store. */
#define POLICY(name)							\
	static void name(void);						\
	Test(file, name) { name(); }					\
	Test(mem, name) { name(); }					\
	Test(redis, name) { NEED_REDIS(); name(); }			\
	static void name(void)

Test(file, names)
{
	cr_assert(gate_name_valid("default"));
	cr_assert(gate_name_valid("cc.gpu-1_x"));
	cr_assert(not(gate_name_valid("")));
	cr_assert(not(gate_name_valid(".hidden")));
	cr_assert(not(gate_name_valid("a/b")));
	cr_assert(not(gate_name_valid("a b")));
	cr_assert(not(gate_name_valid(
	    "x2345678901234567890123456789012345678901234567890123456789012345")));
}

POLICY(try_until_full_then_release)
{
	struct gate *a = gopen(2), *b = gopen(2), *c = gopen(2);
	size_t active;
	unsigned limit;

	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 1));
	cr_assert(eq(int, gate_slot(a), 0));
	cr_assert(eq(int, gate_slot(b), 1));
	cr_assert(eq(int, gate_acquire(c, &req, NULL), 0));
	gate_counts(c, &active, &limit);
	cr_assert(eq(sz, active, 2));
	cr_assert(eq(u32, limit, 2));
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, gate_acquire(c, &req, NULL), 1));
	cr_assert(eq(int, gate_slot(c), 0), "the lowest free slot");
	gate_close(a);
	gate_close(b);
	gate_close(c);
}

Test(file, status_of_unused_gate_creates_nothing)
{
	struct gate_info gi;
	struct gate *g;
	char sub[128];

	(void)snprintf(sub, sizeof(sub), "%s/none", dir);
	cr_assert(eq(int, gate_open(&g, sub, "t", 5, 0, NULL, NULL), 0));
	cr_assert(eq(int, gate_info(g, &gi), 0));
	cr_assert(eq(int, gi.exists, 0));
	cr_assert(eq(u32, gi.limit, 5));
	cr_assert(eq(sz, gi.nh, 0));
	gate_info_free(&gi);
	gate_close(g);
	cr_assert(eq(int, access(sub, F_OK), -1));
}

POLICY(limit_zero_pauses)
{
	struct gate *a = gopen(1);
	unsigned old;

	cr_assert(eq(int, gate_set_limit(a, 0, &old), 0));
	cr_assert(eq(u32, old, 1));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 0));
	cr_assert(eq(int, gate_set_limit(a, 1, &old), 0));
	cr_assert(eq(u32, old, 0));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, gate_set_limit(a, 4097, &old), -1));
	gate_close(a);
}

POLICY(lowering_kills_nothing)
{
	struct gate *a = gopen(3), *b = gopen(3), *c = gopen(3);
	struct gate_info gi;
	unsigned old;

	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 1));
	cr_assert(eq(int, gate_set_limit(a, 1, &old), 0));
	cr_assert(eq(int, gate_info(a, &gi), 0));
	cr_assert(eq(sz, gi.nh, 2));
	gate_info_free(&gi);
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, gate_acquire(c, &req, NULL), 0),
	    "1 active is not below the new limit 1");
	cr_assert(eq(int, gate_release(b), 0));
	cr_assert(eq(int, gate_acquire(c, &req, NULL), 1));
	gate_close(a);
	gate_close(b);
	gate_close(c);
}

/* A child that takes a slot and dies without releasing it. */
POLICY(dead_holder_is_reaped)
{
	struct gate *a;
	pid_t pid;
	int st;

	if ((pid = fork()) == 0) {
		struct gate *g = gopen(1);

		_exit(gate_acquire(g, &req, NULL) == 1 ? 0 : 1);
	}
	cr_assert(eq(int, waitpid(pid, &st, 0), pid));
	cr_assert(eq(int, WEXITSTATUS(st), 0));
	a = gopen(1);
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	gate_close(a);
}

/* Fork a waiter that reports its index on fd once it holds a slot. */
static pid_t
waiter(int fd, char id, int hold)
{
	pid_t pid;

	if ((pid = fork()) == 0) {
		struct gate_wait gw = { -1, NULL, NULL };
		struct gate *g;

		/* A failed assertion must not leave waiters behind. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		g = gopen(1);

		if (gate_acquire(g, &req, &gw) != 1)
			_exit(1);
		if (write(fd, &id, 1) != 1)
			_exit(1);
		if (hold)
			pause();
		gate_close(g);
		_exit(0);
	}
	return pid;
}

/* Wait until n are queued. */
static void
until_queued(struct gate *g, size_t n)
{
	struct gate_info gi;
	size_t nw;

	do {
		cr_assert(eq(int, gate_info(g, &gi), 0));
		nw = gi.nw;
		gate_info_free(&gi);
		if (nw != n)
			usleep(2000);
	} while (nw != n);
}

POLICY(waiters_are_served_in_order)
{
	struct gate *a = gopen(1);
	pid_t pids[8];
	char got[9];
	int p[2], i;

	cr_assert(eq(int, pipe(p), 0));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	for (i = 0; i < 8; i++) {
		pids[i] = waiter(p[1], (char)('a' + i), 0);
		until_queued(a, (size_t)i + 1);
	}
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, (int)read_full(p[0], got, 8), 8));
	got[8] = '\0';
	cr_assert(eq(str, got, "abcdefgh"));
	for (i = 0; i < 8; i++)
		(void)waitpid(pids[i], NULL, 0);
	gate_close(a);
}

POLICY(dead_waiter_leaves_the_queue)
{
	struct gate *a = gopen(1);
	pid_t x, y;
	int p[2];
	char c;

	cr_assert(eq(int, pipe(p), 0));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	x = waiter(p[1], 'x', 0);
	until_queued(a, 1);
	y = waiter(p[1], 'y', 0);
	until_queued(a, 2);
	(void)kill(x, SIGKILL);
	(void)waitpid(x, NULL, 0);
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, (int)read(p[0], &c, 1), 1));
	cr_assert(eq(chr, c, 'y'));
	(void)waitpid(y, NULL, 0);
	gate_close(a);
}

POLICY(killed_holder_wakes_the_head)
{
	struct gate *a = gopen(1);
	pid_t h, w;
	int p[2];
	char c;

	cr_assert(eq(int, pipe(p), 0));
	h = waiter(p[1], 'h', 1);		/* takes the free slot, holds */
	cr_assert(eq(int, (int)read(p[0], &c, 1), 1));
	w = waiter(p[1], 'w', 0);
	until_queued(a, 1);
	(void)kill(h, SIGKILL);		/* no release: the pidfd tells */
	(void)waitpid(h, NULL, 0);
	cr_assert(eq(int, (int)read(p[0], &c, 1), 1));
	cr_assert(eq(chr, c, 'w'));
	(void)waitpid(w, NULL, 0);
	gate_close(a);
}

POLICY(raised_limit_wakes_waiters)
{
	struct gate *a = gopen(1);
	unsigned old;
	pid_t w1, w2;
	int p[2];
	char c[2];

	cr_assert(eq(int, pipe(p), 0));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	w1 = waiter(p[1], '1', 1);
	until_queued(a, 1);
	w2 = waiter(p[1], '2', 1);
	until_queued(a, 2);
	cr_assert(eq(int, gate_set_limit(a, 3, &old), 0));
	/* Both start in the one transaction that raised the limit. */
	cr_assert(eq(int, (int)read_full(p[0], c, 2), 2));
	cr_assert(eq(int, c[0] + c[1], '1' + '2'));
	(void)kill(w1, SIGKILL);
	(void)kill(w2, SIGKILL);
	(void)waitpid(w1, NULL, 0);
	(void)waitpid(w2, NULL, 0);
	gate_close(a);
}

POLICY(deadline_gives_up)
{
	struct gate *a = gopen(1), *b = gopen(1);
	struct gate_wait gw = { 0, NULL, NULL };
	struct gate_info gi;

	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	gw.deadline = mono_ns() + 50000000;
	cr_assert(eq(int, gate_acquire(b, &req, &gw), 0));
	cr_assert(eq(int, gate_info(a, &gi), 0));
	cr_assert(eq(sz, gi.nw, 0), "a waiter that gave up is gone");
	gate_info_free(&gi);
	gate_close(a);
	gate_close(b);
}

POLICY(is_active)
{
	struct gate *a = gopen(1);

	cr_assert(eq(int, gate_is_active(a, getpid()), 0));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, gate_is_active(a, getpid()), 1));
	cr_assert(eq(int, gate_is_active(a, 1), 0));
	gate_close(a);
}

/* Holders of the gate as status shows them, by wrapper PID. */
static size_t
held_by(struct gate *g, pid_t pid)
{
	struct gate_info gi;
	size_t i, n = 0;

	cr_assert(eq(int, gate_info(g, &gi), 0));
	for (i = 0; i < gi.nh; i++)
		n += gi.h[i].wrapper_pid == pid;
	gate_info_free(&gi);
	return n;
}

POLICY(one_process_holds_several_slots)
{
	struct gate *a = gopen(4), *b = gopen(4);
	int s0, s1, s2;

	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	s0 = gate_slot(a);
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	s1 = gate_slot(a);
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	s2 = gate_slot(a);
	cr_assert(eq(sz, gate_held(a), 3));
	cr_assert(s0 != s1 && s1 != s2 && s0 != s2, "three distinct slots");
	cr_assert(eq(sz, held_by(b, getpid()), 3), "one record per slot");
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 1));
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 0), "4 of 4 taken");
	cr_assert(eq(int, gate_release_slot(a, s1), 0));
	cr_assert(eq(sz, gate_held(a), 2));
	cr_assert(eq(int, gate_release_slot(a, s1), -1), "no longer ours");
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 1));
	cr_assert(eq(int, gate_slot(b), s1), "the slot given back");
	cr_assert(eq(int, gate_release(a), 0), "every slot at once");
	cr_assert(eq(sz, gate_held(a), 0));
	cr_assert(eq(sz, held_by(b, getpid()), 2), "b's two remain");
	gate_close(a);
	gate_close(b);
}

/* A process holding 3 of 4 slots, SIGKILLed: all three come back. */
POLICY(killed_multi_holder_frees_every_slot)
{
	struct gate *a = gopen(4);
	pid_t pid;
	int p[2], i;
	char c;

	cr_assert(eq(int, pipe(p), 0));
	if ((pid = fork()) == 0) {
		struct gate *g;

		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		g = gopen(4);
		for (i = 0; i < 3; i++)
			if (gate_acquire(g, &req, NULL) != 1)
				_exit(1);
		if (write(p[1], "k", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	cr_assert(eq(int, (int)read(p[0], &c, 1), 1));
	cr_assert(eq(sz, held_by(a, pid), 3));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 0), "full: 3 + 1");
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	for (i = 0; i < 3; i++)
		cr_assert(eq(int, gate_acquire(a, &req, NULL), 1),
		    "slot %d of the dead holder's three", i);
	cr_assert(eq(sz, gate_held(a), 4));
	cr_assert(eq(sz, held_by(a, pid), 0));
	gate_close(a);
}

/*
 * FIFO among the requests of one process and others: this process holds
 * both slots, x queues, then this process asks for a third. Giving one
 * back serves x, not us; the next serves us.
 */
POLICY(requests_of_one_process_wait_their_turn)
{
	struct gate_wait gw = { -1, NULL, NULL };
	struct gate *a = gopen(2);
	size_t pos, nq;
	pid_t x;
	int p[2], first;
	char c;

	cr_assert(eq(int, pipe(p), 0));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	first = gate_slot(a);
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	x = waiter(p[1], 'x', 1);
	until_queued(a, 1);
	cr_assert(eq(int, gate_enqueue(a, &req, 1), 0), "queued behind x");
	cr_assert(eq(int, gate_enqueue(a, &req, 1), -1), "one in line");
	cr_assert(eq(int, errno, EBUSY));
	cr_assert(eq(int, gate_wait(a, &req, &gw, &pos, &nq), 0));
	cr_assert(eq(sz, pos, 2));
	cr_assert(eq(sz, nq, 2));
	cr_assert(eq(int, gate_release_slot(a, first), 0));
	cr_assert(eq(int, (int)read(p[0], &c, 1), 1));
	cr_assert(eq(chr, c, 'x'), "x was first in line");
	cr_assert(eq(int, gate_wait(a, &req, &gw, &pos, &nq), 0));
	cr_assert(eq(sz, pos, 1), "now the head");
	(void)kill(x, SIGKILL);		/* frees a slot: ours at last */
	(void)waitpid(x, NULL, 0);
	cr_assert(eq(int, gate_wait(a, &req, &gw, &pos, &nq), 1));
	cr_assert(eq(sz, gate_held(a), 2));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 0), "full again");
	gate_close(a);
}

/* A request for k slots, with a priority. */
static struct gate_req
wreq(unsigned weight, int prio, const char *command)
{
	struct gate_req r = req;

	r.weight = weight;
	r.priority = prio;
	r.command = command;
	return r;
}

POLICY(weight_takes_k_slots_at_once)
{
	struct gate *a = gopen(4), *b = gopen(4);
	struct gate_req three = wreq(3, 0, "three"), two = wreq(2, 0, "two");
	struct gate_info gi;

	cr_assert(eq(int, gate_acquire(a, &three, NULL), 1));
	cr_assert(eq(sz, gate_held(a), 3));
	cr_assert(eq(int, gate_info(b, &gi), 0));
	cr_assert(eq(sz, gi.nh, 3), "one record per slot");
	cr_assert(eq(u32, gi.h[0].weight, 3));
	gate_info_free(&gi);
	cr_assert(eq(int, gate_acquire(b, &two, NULL), 0), "1 of 4 free");
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 1));
	cr_assert(eq(int, gate_release(a), 0), "all three at once");
	cr_assert(eq(int, gate_acquire(a, &three, NULL), 1));
	cr_assert(eq(sz, gate_held(a), 3));
	gate_close(a);
	gate_close(b);
}

POLICY(weight_above_the_limit_is_refused_at_once)
{
	struct gate_req three = wreq(3, 0, "three"), big = wreq(4097, 0, "x");
	struct gate *a = gopen(2);
	unsigned old;

	cr_assert(eq(int, gate_enqueue(a, &three, 1), -1));
	cr_assert(eq(int, errno, E2BIG));
	cr_assert(eq(int, gate_enqueue(a, &big, 1), -1));
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, gate_set_limit(a, 0, &old), 0));
	cr_assert(eq(int, gate_acquire(a, &three, NULL), 0),
	    "a paused gate: not an error, the limit may come back higher");
	cr_assert(eq(int, gate_set_limit(a, 3, &old), 0));
	cr_assert(eq(int, gate_acquire(a, &three, NULL), 1));
	gate_close(a);
}

/*
 * A heavy request at the head is not passed: with 1 of 2 slots free, the
 * request of 2 waits and so does the light one behind it, though it
 * would fit; one release serves the heavy one with both slots.
 */
POLICY(nobody_passes_a_heavy_head)
{
	struct gate_req two = wreq(2, 0, "two"), one = wreq(1, 9, "one");
	struct gate_wait gw = { -1, NULL, NULL };
	struct gate *a = gopen(2), *h = gopen(2), *l = gopen(2);
	struct gate_info gi;
	size_t pos, nq;

	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, gate_enqueue(h, &two, 1), 0));
	cr_assert(eq(int, gate_enqueue(l, &one, 1), 0),
	    "a slot is free, but the head needs two");
	cr_assert(eq(int, gate_info(a, &gi), 0));
	cr_assert(eq(sz, gi.nh, 1));
	cr_assert(eq(sz, gi.nw, 2));
	cr_assert(eq(str, gi.w[0].command, "two"), "a higher priority does "
	    "not pass the head either");
	cr_assert(eq(u32, gi.w[0].weight, 2));
	gate_info_free(&gi);
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, gate_wait(h, &two, &gw, &pos, &nq), 1));
	cr_assert(eq(sz, gate_held(h), 2));
	cr_assert(eq(int, gate_release_slot(h, gate_slot(h)), 0));
	cr_assert(eq(int, gate_wait(l, &one, &gw, &pos, &nq), 1),
	    "one slot given back serves the light one");
	cr_assert(eq(sz, gate_held(h), 1));
	gate_close(a);
	gate_close(h);
	gate_close(l);
}

/* A procfs of our own with MemAvailable kb; GATERUN_PROCFS names it. */
static void
fake_meminfo(unsigned long kb)
{
	char p[128];
	FILE *fp;

	(void)snprintf(p, sizeof(p), "%s/meminfo", dir);
	cr_assert(ne(ptr, (fp = fopen(p, "w")), NULL));
	(void)fprintf(fp, "MemTotal: 4194304 kB\nMemAvailable: %lu kB\n", kb);
	cr_assert(eq(int, fclose(fp), 0));
	cr_assert(eq(int, setenv("GATERUN_PROCFS", dir, 1), 0));
}

/*
 * A head waiter whose need is not met keeps its place though a slot is
 * free: a release does not promote it, the one behind it (of a higher
 * priority) does not pass it; it looks again within RES_PERIOD_MS, and
 * takes the slot itself once memory is there. Without a wait, a need
 * not met is no slot, and says why.
 */
POLICY(a_head_held_by_a_need_is_not_passed)
{
	struct gate_req m = wreq(1, 0, "mem"), one = wreq(1, 9, "one");
	struct gate_wait gw = { -1, NULL, NULL };
	struct gate *a = gopen(1), *h = gopen(1), *l = gopen(1);
	const struct pollfd *fds;
	struct res_need need;
	struct gate_info gi;
	size_t pos, nq, n;
	int ms, r;

	memset(&need, 0, sizeof(need));
	cr_assert(eq(int, res_parse_mem("2G", &need), 0));
	m.need = &need;
	fake_meminfo(1048576);
	cr_assert(eq(int, gate_enqueue(h, &m, 0), 0), "1 GiB: no slot");
	cr_assert(ne(ptr, (void *)gate_res_why(h), NULL));
	cr_assert(eq(str, (char *)gate_res_why(h), "waiting for memory: 1 GiB "
	    "available, needs 2 GiB"));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, gate_enqueue(h, &m, 1), 0));
	cr_assert(eq(int, gate_enqueue(l, &one, 1), 0));
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, gate_poll(h, &m, &fds, &n, &ms), 0));
	cr_assert(ne(ptr, (void *)gate_res_why(h), NULL), "held by memory");
	cr_assert(gt(int, ms, 0));
	cr_assert(le(int, ms, RES_PERIOD_MS + 1), "the head looks again");
	cr_assert(eq(int, gate_poll(l, &one, &fds, &n, &ms), 0));
	cr_assert(eq(int, ms, -1), "the one behind sleeps until woken");
	cr_assert(eq(int, gate_info(a, &gi), 0));
	cr_assert(eq(sz, gi.nh, 0));
	cr_assert(eq(sz, gi.nw, 2));
	cr_assert(eq(str, gi.w[0].command, "mem"));
	cr_assert(eq(u64, gi.w[0].need.mem, UINT64_C(2) << 30), "recorded");
	gate_info_free(&gi);
	fake_meminfo(3145728);
	while ((r = gate_wait(h, &m, &gw, &pos, &nq)) == 0)
		;
	cr_assert(eq(int, r, 1), "3 GiB: the head takes the slot");
	cr_assert(eq(ptr, (void *)gate_res_why(h), NULL));
	cr_assert(eq(int, gate_release(h), 0));
	cr_assert(eq(int, gate_wait(l, &one, &gw, &pos, &nq), 1));
	(void)unsetenv("GATERUN_PROCFS");
	gate_close(a);
	gate_close(h);
	gate_close(l);
}

/* The commands of the line, in order, joined by spaces. */
static void
line_of(struct gate *g, char *buf, size_t len)
{
	struct gate_info gi;
	size_t i;

	buf[0] = '\0';
	cr_assert(eq(int, gate_info(g, &gi), 0));
	for (i = 0; i < gi.nw; i++) {
		if (i > 0)
			(void)strlcat(buf, " ", len);
		(void)strlcat(buf, gi.w[i].command, len);
	}
	gate_info_free(&gi);
}

POLICY(priorities_order_the_line_fifo_within_one)
{
	static const struct { int prio; const char *name; } in[] = {
		{ 0, "h" }, { 0, "a" }, { 5, "b" }, { 5, "c" }, { -1, "d" },
		{ 10, "e" }, { 0, "f" }
	};
	struct gate *a = gopen(1), *g[7];
	struct gate_req r;
	char line[64];
	size_t i;

	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	for (i = 0; i < 7; i++) {
		g[i] = gopen(1);
		r = wreq(1, in[i].prio, in[i].name);
		cr_assert(eq(int, gate_enqueue(g[i], &r, 1), 0));
	}
	line_of(a, line, sizeof(line));
	cr_assert(eq(str, line, "h e b c a f d"), "the head stays first");
	for (i = 0; i < 7; i++)
		gate_close(g[i]);
	gate_close(a);
}

/*
 * No starvation: a waiter lets GATE_MAX_PASS later requests of a higher
 * priority ahead of it, and no more: the next ones queue behind it.
 */
POLICY(a_low_priority_is_passed_a_bounded_number_of_times)
{
	struct gate *a = gopen(1), *g[GATE_MAX_PASS + 4];
	struct gate_req r;
	struct gate_info gi;
	size_t i, n = GATE_MAX_PASS + 4;

	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	for (i = 0; i < n; i++) {
		g[i] = gopen(1);
		r = wreq(1, i < 2 ? 0 : 100, i == 1 ? "low" : "high");
		cr_assert(eq(int, gate_enqueue(g[i], &r, 1), 0));
	}
	cr_assert(eq(int, gate_info(a, &gi), 0));
	cr_assert(eq(sz, gi.nw, n));
	cr_assert(eq(str, gi.w[GATE_MAX_PASS + 1].command, "low"),
	    "passed exactly GATE_MAX_PASS times");
	cr_assert(eq(u32, gi.w[GATE_MAX_PASS + 1].passed, GATE_MAX_PASS));
	for (i = GATE_MAX_PASS + 2; i < n; i++)
		cr_assert(eq(str, gi.w[i].command, "high"));
	gate_info_free(&gi);
	for (i = 0; i < n; i++)
		gate_close(g[i]);
	gate_close(a);
}

/*
 * Weighted waiters in other processes are served in turn: x (2 slots)
 * after this process's two, and y behind it only once x is done.
 */
static pid_t
wwaiter(int fd, char id, unsigned weight, int prio)
{
	pid_t pid;

	if ((pid = fork()) == 0) {
		struct gate_wait gw = { -1, NULL, NULL };
		struct gate_req r = wreq(weight, prio, "w");
		struct gate *g;

		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		g = gopen(3);
		if (gate_acquire(g, &r, &gw) != 1 || gate_held(g) != weight)
			_exit(1);
		if (write(fd, &id, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	return pid;
}

POLICY(a_killed_weighted_holder_frees_all_its_slots)
{
	struct gate *a = gopen(3);
	pid_t x, y;
	int p[2];
	char c;

	cr_assert(eq(int, pipe(p), 0));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	x = wwaiter(p[1], 'x', 3, 0);
	until_queued(a, 1);
	y = wwaiter(p[1], 'y', 2, 0);
	until_queued(a, 2);
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, (int)read(p[0], &c, 1), 1));
	cr_assert(eq(chr, c, 'x'), "x (3 slots) first");
	cr_assert(eq(sz, held_by(a, x), 3));
	(void)kill(x, SIGKILL);		/* every one of its 3 comes back */
	(void)waitpid(x, NULL, 0);
	cr_assert(eq(int, (int)read(p[0], &c, 1), 1));
	cr_assert(eq(chr, c, 'y'));
	cr_assert(eq(sz, held_by(a, y), 2));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1), "the third");
	(void)kill(y, SIGKILL);
	(void)waitpid(y, NULL, 0);
	gate_close(a);
}

/* A request with a unique key; join: follow one already there. */
static struct gate_req
kreq(const char *key, int join)
{
	struct gate_req r = req;

	r.key = key;
	r.join = join;
	return r;
}

POLICY(a_key_is_refused_while_queued_or_running)
{
	struct gate_req k = kreq("backup", 0), q = kreq("q", 0);
	struct gate_req other = kreq("other", 0), bad = kreq("a b", 0);
	struct gate *a = gopen(1), *b = gopen(1), *c = gopen(1);

	cr_assert(eq(int, gate_acquire(a, &k, NULL), 1));
	cr_assert(eq(int, gate_acquire(b, &k, NULL), -1));
	cr_assert(eq(int, errno, EEXIST));
	cr_assert(eq(int, gate_enqueue(b, &k, 1), -1), "nor queued");
	cr_assert(eq(int, errno, EEXIST));
	cr_assert(eq(int, gate_acquire(b, &other, NULL), 0), "full");
	cr_assert(eq(int, gate_enqueue(b, &q, 1), 0), "queued with key q");
	cr_assert(eq(int, gate_enqueue(c, &q, 1), -1), "q is queued");
	cr_assert(eq(int, errno, EEXIST));
	cr_assert(eq(int, gate_enqueue(c, &bad, 1), -1));
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, gate_acquire(c, &k, NULL), 0), "free key, full gate");
	gate_close(b);
	cr_assert(eq(int, gate_acquire(c, &k, NULL), 1), "backup is free again");
	gate_close(a);
	gate_close(c);
}

/* The pipes of a keyed holder: it says it holds on rd, is told on go. */
static void
keyed_pipes(int rd[2], int go[2])
{
	cr_assert(eq(int, pipe(rd), 0));
	cr_assert(eq(int, pipe(go), 0));
}

/*
 * A child holding a slot with key, once it does (it says so on pipe rd):
 * it exits with status when told (a byte on pipe go).
 */
static pid_t
keyed_holder(int rd[2], int go[2], const char *key, int status)
{
	pid_t pid;
	char c;

	if ((pid = fork()) == 0) {
		struct gate_req r = kreq(key, 0);
		struct gate *g;

		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		g = gopen(2);
		if (gate_acquire(g, &r, NULL) != 1 || write(rd[1], "r", 1) != 1)
			_exit(1);
		if (read(go[0], &c, 1) != 1)
			pause();
		gate_set_status(g, status);
		gate_close(g);
		_exit(0);
	}
	cr_assert(eq(int, (int)read(rd[0], &c, 1), 1));
	return pid;
}

POLICY(a_dead_holders_key_frees_with_it)
{
	struct gate_req k = kreq("k", 0);
	struct gate *a = gopen(2);
	int rd[2], go[2];
	pid_t x;

	keyed_pipes(rd, go);
	x = keyed_holder(rd, go, "k", 0);
	cr_assert(eq(int, gate_acquire(a, &k, NULL), -1));
	cr_assert(eq(int, errno, EEXIST));
	(void)kill(x, SIGKILL);
	(void)waitpid(x, NULL, 0);
	cr_assert(eq(int, gate_acquire(a, &k, NULL), 1));
	gate_close(a);
}

POLICY(a_follower_gets_the_exit_status_of_the_run_it_joined)
{
	struct gate_wait gw = { -1, NULL, NULL };
	struct gate_req j = kreq("k", 1);
	struct gate *a = gopen(2);
	int rd[2], go[2], st;
	pid_t x, pid;

	keyed_pipes(rd, go);
	x = keyed_holder(rd, go, "k", 42);
	cr_assert(eq(int, gate_enqueue(a, &j, 1), 2), "follows x");
	cr_assert(eq(sz, gate_held(a), 0), "and takes nothing");
	cr_assert(eq(int, (int)write(go[1], "g", 1), 1));
	cr_assert(eq(int, gate_follow(a, &gw, &st, &pid), 1));
	cr_assert(eq(int, st, 42));
	cr_assert(eq(int, pid, x));
	(void)waitpid(x, NULL, 0);
	cr_assert(eq(int, gate_enqueue(a, &j, 1), 1),
	    "nobody holds k now: the follower runs itself");
	cr_assert(eq(int, gate_release(a), 0));
	gate_close(a);
}

POLICY(a_follower_of_a_killed_run_gets_no_status)
{
	struct gate_wait gw = { -1, NULL, NULL };
	struct gate_req j = kreq("k", 1);
	struct gate *a = gopen(2);
	int rd[2], go[2], st;
	pid_t x, pid;

	keyed_pipes(rd, go);
	x = keyed_holder(rd, go, "k", 42);
	cr_assert(eq(int, gate_enqueue(a, &j, 1), 2));
	(void)kill(x, SIGKILL);
	cr_assert(eq(int, gate_follow(a, &gw, &st, &pid), 0));
	(void)waitpid(x, NULL, 0);
	gw.deadline = mono_ns() + 50000000;
	x = keyed_holder(rd, go, "k", 42);
	cr_assert(eq(int, gate_enqueue(a, &j, 1), 2));
	cr_assert(eq(int, gate_follow(a, &gw, &st, &pid), -1), "-w runs out");
	cr_assert(eq(int, errno, ETIMEDOUT));
	(void)kill(x, SIGKILL);
	(void)waitpid(x, NULL, 0);
	gate_close(a);
}

POLICY(a_gate_keeps_its_parent)
{
	struct gate *a = gopen(1);
	struct gate_info gi;

	cr_assert(eq(int, gate_set_parent(a, "build"), 0));
	cr_assert(eq(int, gate_info(a, &gi), 0));
	cr_assert(eq(str, gi.parent, "build"));
	gate_info_free(&gi);
	cr_assert(eq(int, gate_set_parent(a, "t"), -1), "not its own");
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, gate_set_parent(a, "a/b"), -1));
	cr_assert(eq(int, gate_set_parent(a, ""), 0));
	cr_assert(eq(int, gate_info(a, &gi), 0));
	cr_assert(eq(str, gi.parent, ""));
	gate_info_free(&gi);
	gate_close(a);
}

/* Write a state file by hand. */
static void
write_state(const char *text)
{
	char path[128];
	int fd;

	(void)snprintf(path, sizeof(path), "%s/t.gate", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(ne(int, fd, -1));
	cr_assert(eq(int, write_full(fd, text, strlen(text)), 0));
	close(fd);
}

static int
count_corrupt(void)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "t.corrupt-", 10) == 0;
	closedir(d);
	return n;
}

Test(file, damaged_state_is_moved_aside_and_live_holders_kept)
{
	struct gate *a = gopen(1), *b = gopen(1);
	struct gate_info gi;
	char text[512], boot[40];
	struct procid self;
	FILE *fp;

	/* A live holder (this process) in a file with a broken header. */
	fp = fopen("/proc/sys/kernel/random/boot_id", "r");
	cr_assert(not(eq(ptr, fgets(boot, sizeof(boot), fp), NULL)));
	fclose(fp);
	boot[36] = '\0';
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, proc_id(getpid(), &self), 0));
	(void)snprintf(text, sizeof(text), "gaterun-state 1\nboot %s\n"
	    "limit 1\nticket 1\nacquired !!\nwaitns 0\n"
	    "h 0 0 %d %llu 0 0 0 1 - :/ :kept\nend\n", boot, (int)self.pid,
	    self.start);
	write_state(text);
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 0),
	    "the surviving holder still fills the gate");
	cr_assert(eq(int, notified, 1));
	cr_assert(eq(int, count_corrupt(), 1));
	cr_assert(eq(int, gate_info(b, &gi), 0));
	cr_assert(eq(sz, gi.nh, 1));
	cr_assert(eq(str, gi.h[0].command, "kept"));
	gate_info_free(&gi);
	gate_close(b);
	gate_close(a);
}

/*
 * A store that lost our record and made it again at another slot (Redis:
 * its own was given away meanwhile) still has it given back on release.
 * Failed before: it stayed, keeping the head of the line out of the slot
 * freed until the lease ended (N3 of brk-redis4).
 */
Test(file, a_slot_moved_by_the_store_is_released)
{
	struct gate *a = gopen(2);
	struct gate_info gi;
	char path[128], text[1024], *h;
	int fd, n;

	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, gate_slot(a), 0));
	(void)snprintf(path, sizeof(path), "%s/t.gate", dir);
	cr_assert(ne(int, fd = open(path, O_RDONLY), -1));
	cr_assert(gt(int, n = (int)read(fd, text, sizeof(text) - 1), 0));
	close(fd);
	text[n] = '\0';
	cr_assert(not(eq(ptr, h = strstr(text, "\nh 0 "), NULL)));
	h[3] = '1';			/* our record, now at slot 1 */
	write_state(text);
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, gate_info(a, &gi), 0));
	cr_assert(eq(sz, gi.nh, 0));
	gate_info_free(&gi);
	gate_close(a);
}

Test(file, garbage_state_starts_afresh)
{
	struct gate *a = gopen(2);

	write_state("\x01\x02 not a gate \xff");
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, notified, 1));
	cr_assert(eq(int, count_corrupt(), 1));
	gate_close(a);
}

Test(file, records_from_another_boot_are_dropped)
{
	struct gate *a = gopen(1);

	write_state("gaterun-state 1\nboot 00000000-0000-4000-8000-000000000000\n"
	    "limit 1\nticket 5\nacquired 0\nwaitns 0\n"
	    "h 0 0 1 1 0 0 0 1 - :/ :old\nend\n");
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	cr_assert(eq(int, notified, 0));
	gate_close(a);
}

Test(file, symlinked_state_is_refused)
{
	struct gate *g;
	char path[128], target[128];

	(void)snprintf(path, sizeof(path), "%s/link", dir);
	(void)snprintf(target, sizeof(target), "%s/real", dir);
	cr_assert(eq(int, mkdir(target, 0700), 0));
	cr_assert(eq(int, symlink(target, path), 0));
	cr_assert(eq(int, gate_open(&g, path, "t", 1, 1, NULL, NULL), -1));
	cr_assert(eq(int, errno, ELOOP));
	(void)snprintf(path, sizeof(path), "%s/t.lock", dir);
	cr_assert(eq(int, symlink("/etc/passwd", path), 0));
	g = gopen(1);
	cr_assert(eq(int, gate_acquire(g, &req, NULL), -1));
	cr_assert(eq(int, errno, ELOOP));
	gate_close(g);
}

Test(file, world_writable_dir_is_refused)
{
	struct gate *g;
	char sub[128];

	(void)snprintf(sub, sizeof(sub), "%s/ww", dir);
	cr_assert(eq(int, mkdir(sub, 0700), 0));
	cr_assert(eq(int, chmod(sub, 0777), 0));
	cr_assert(eq(int, gate_open(&g, sub, "t", 1, 1, NULL, NULL), -1));
	cr_assert(eq(int, errno, EPERM));
}

Test(file, locators)
{
	struct gate *g;
	char loc[128], **names;
	size_t n;

	(void)snprintf(loc, sizeof(loc), "file:%s", dir);
	cr_assert(eq(int, gate_open(&g, loc, "t", 1, 1, NULL, NULL), 0));
	cr_assert(eq(int, gate_acquire(g, &req, NULL), 1));
	cr_assert(eq(int, gate_list(dir, &names, &n), 0));
	cr_assert(eq(sz, n, 1), "file:DIR and DIR are one store");
	cr_assert(eq(str, names[0], "t"));
	gate_list_free(names, n);
	gate_close(g);
	cr_assert(eq(int, gate_open(&g, "nosuch://x", "t", 1, 1, NULL,
	    NULL), -1));
	cr_assert(eq(int, errno, EPROTONOSUPPORT));
	cr_assert(eq(int, gate_open(&g, "file:relative", "t", 1, 1, NULL,
	    NULL), -1));
	cr_assert(eq(int, gate_open(&g, "relative", "t", 1, 1, NULL, NULL),
	    -1));
	cr_assert(not(eq(ptr, strstr(gate_strerror(EPERM), "refused"),
	    NULL)), "the engine's own words for its refusals");
	cr_assert(eq(str, (char *)gate_strerror(ENOENT), strerror(ENOENT)));
}

/* Names gate_watch_read reports, joined. */
static void
on_change(void *arg, const char *name)
{
	char *buf = arg;

	(void)strlcat(buf, name == NULL ? "*" : name, 256);
	(void)strlcat(buf, " ", 256);
}

Test(file, watch_sees_a_gate_change)
{
	struct gate_watch *w;
	struct pollfd pfd;
	struct gate *g;
	char sub[128], seen[256] = "";

	(void)snprintf(sub, sizeof(sub), "%s/later", dir);
	cr_assert(eq(int, gate_watch_open(&w, sub), 0), "not made yet");
	g = NULL;
	cr_assert(eq(int, gate_open(&g, sub, "t", 1, 1, NULL, NULL), 0));
	pfd.fd = gate_watch_fd(w);
	pfd.events = POLLIN;
	cr_assert(eq(int, poll(&pfd, 1, 10000), 1), "the store was made");
	cr_assert(eq(int, gate_watch_read(w, on_change, seen), 0));
	cr_assert(not(eq(ptr, strstr(seen, "*"), NULL)));
	seen[0] = '\0';
	cr_assert(eq(int, gate_acquire(g, &req, NULL), 1));
	cr_assert(eq(int, poll(&pfd, 1, 10000), 1), "the state changed");
	cr_assert(eq(int, gate_watch_read(w, on_change, seen), 0));
	cr_assert(not(eq(ptr, strstr(seen, "t "), NULL)), "seen: %s", seen);
	gate_close(g);
	gate_watch_close(w);
}

#ifdef HAVE_HIREDIS
#include <hiredis.h>

/* A connection to the test's server, straight through hiredis. */
static redisContext *
redis_ctx(void)
{
	redisContext *c;
	int port;

	cr_assert(eq(int, sscanf(redis_loc, "redis://127.0.0.1:%d", &port), 1));
	c = redisConnect("127.0.0.1", port);
	cr_assert(c != NULL && c->err == 0);
	return c;
}

/* One command to the test's server. */
static void
redis_do(const char *cmd)
{
	redisContext *c = redis_ctx();
	redisReply *rp;

	rp = redisCommand(c, cmd);
	cr_assert(rp != NULL);
	freeReplyObject(rp);
	redisFree(c);
}

/* A holder of another host that died: alive until its lease ends. */
Test(redis, foreign_record_lives_by_its_lease, .timeout = 20)
{
	struct gate_wait gw = { -1, NULL, NULL };
	struct gate *a, *b;
	int64_t t0;
	pid_t pid;
	int st;

	NEED_REDIS();
	if ((pid = fork()) == 0) {
		(void)setenv("GATERUN_HOST", "elsewhere", 1);
		(void)setenv("GATERUN_LEASE", "1", 1);
		a = gopen(1);
		_exit(gate_acquire(a, &req, NULL) == 1 ? 0 : 1);
	}
	cr_assert(eq(int, waitpid(pid, &st, 0), pid));
	cr_assert(eq(int, WEXITSTATUS(st), 0));
	b = gopen(1);
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 0));	/* full */
	t0 = mono_ns();
	cr_assert(eq(int, gate_acquire(b, &req, &gw), 1));
	/* Woken by the lease's timer, not before it could end. */
	cr_assert(ge(i64, mono_ns() - t0, 500000000LL));
	cr_assert(lt(i64, mono_ns() - t0, 3000000000LL));
	gate_close(b);
}

/* A local holder that died frees its slot at once, lease or not. */
Test(redis, local_dead_holder_is_freed_at_once, .timeout = 20)
{
	struct gate *b;
	pid_t pid;
	int st;

	NEED_REDIS();
	if ((pid = fork()) == 0) {
		struct gate *a = gopen(1);

		_exit(gate_acquire(a, &req, NULL) == 1 ? 0 : 1);
	}
	cr_assert(eq(int, waitpid(pid, &st, 0), pid));
	cr_assert(eq(int, WEXITSTATUS(st), 0));
	b = gopen(1);
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 1));
	gate_close(b);
}

Test(redis, errors_are_named, .timeout = 20)
{
	struct gate *g;
	char loc[80];

	NEED_REDIS();
	cr_assert(eq(int, gate_open(&g, "redis:nohost", "t", 1, 1, NULL,
	    NULL), -1));
	cr_assert(eq(int, errno, EDESTADDRREQ));
	(void)snprintf(loc, sizeof(loc), "redis://127.0.0.1:%d", free_port());
	cr_assert(eq(int, gate_open(&g, loc, "t", 1, 1, NULL, NULL), -1));
	cr_assert(eq(int, errno, ECONNREFUSED));
	redis_do("LPUSH gaterun:gate:t x");
	g = gopen(1);
	cr_assert(eq(int, gate_acquire(g, &req, NULL), -1));
	cr_assert(eq(int, errno, EPROTOTYPE));
	gate_close(g);
	redis_do("CONFIG SET requirepass sesame");
	(void)snprintf(loc, sizeof(loc), "redis://:wrong@%s",
	    redis_loc + strlen("redis://"));
	cr_assert(eq(int, gate_open(&g, loc, "u", 1, 1, NULL, NULL), -1));
	cr_assert(eq(int, errno, EKEYREJECTED));
	(void)snprintf(loc, sizeof(loc), "redis://:sesame@%s",
	    redis_loc + strlen("redis://"));
	cr_assert(eq(int, gate_open(&g, loc, "u", 1, 1, NULL, NULL), 0));
	cr_assert(eq(int, gate_acquire(g, &req, NULL), 1));
	gate_close(g);
}

/*
 * A server that lost its data (FLUSHALL: as a restart without
 * persistence): the holder's next renewal records its slot again, and
 * its limit, said; nobody new is let in for a lease's time (1 s here),
 * while the holders of other hosts do the same, but for the slots that
 * recorded holders give back: a newcomer gets one at once, as it would
 * have before the loss (it was kept out until the hold's end before H1
 * of brk-redis5), and no more.
 */
Test(redis, a_lost_state_is_made_again_by_its_holders, .timeout = 20)
{
	struct gate_wait gw = { -1, NULL, NULL };
	struct gate_info gi;
	struct gate *a, *b, *c;
	int64_t until, t0;

	NEED_REDIS();
	(void)setenv("GATERUN_LEASE", "1", 1);
	a = gopen(2);
	cr_assert(eq(int, gate_set_limit(a, 2, &(unsigned){ 0 }), 0));
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	redis_do("FLUSHALL");
	cr_assert(eq(int, gate_renew(a, &until), 0));
	t0 = mono_ns();
	cr_assert(gt(int, notified, 0));
	b = gopen(2);
	cr_assert(eq(int, gate_info(b, &gi), 0));
	cr_assert(eq(int, gi.nh, 1));
	cr_assert(eq(u32, gi.limit, 2));
	gate_info_free(&gi);
	/* Room below the limit that nobody gave back is held. */
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 0));
	cr_assert(eq(int, gate_release(a), 0));
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 1), "A's slot");
	c = gopen(2);
	cr_assert(eq(int, gate_acquire(c, &req, NULL), 0));	/* held */
	cr_assert(eq(int, gate_acquire(c, &req, &gw), 1));
	cr_assert(ge(i64, mono_ns() - t0, 300000000LL));
	gate_close(a);
	gate_close(b);
	gate_close(c);
}

/* A hold line put into gate t's key by a script (a hostile edit),
   in place of the one it has. */
static void
redis_hold(const char *rest)
{
	static const char lua[] = "local v = redis.call('GET', KEYS[1]) "
	    "v = string.gsub(v, '\\nhold [^\\n]*', '', 1) "
	    "local t = redis.call('TIME') "
	    "local h = 'hold ' .. (t[1] * 1000 + 60000) .. ' ' .. ARGV[1] "
	    "redis.call('SET', KEYS[1], (string.gsub(v, '\\n', '\\n' .. h .. "
	    "'\\n', 1)))";
	redisContext *c = redis_ctx();
	redisReply *rp;

	rp = redisCommand(c, "EVAL %s 1 gaterun:gate:t %s", lua, rest);
	cr_assert(rp != NULL && rp->type != REDIS_REPLY_ERROR);
	freeReplyObject(rp);
	redisFree(c);
}

/*
 * A hold line edited by hand: a credit past any limit lets nobody in over
 * the limit (the policy is shown holders + credit, never more than the
 * limit), and one that is not a number counts none. gaterun:ends of
 * another type is read as none, and commits go on.
 */
Test(redis, a_hostile_hold_line_or_ends_key_lets_nobody_in_over_the_limit,
    .timeout = 20)
{
	struct gate *a, *b;

	NEED_REDIS();
	redis_do("SET gaterun:ends x");
	a = gopen(1);
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 1));
	b = gopen(1);
	redis_hold("lost 999 0 0");
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 0), "full");
	redis_hold("lost x y z");
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 0), "full");
	cr_assert(eq(int, gate_release(a), 0));
	/* A's slot, given back in the hold, is the credit: B's. */
	cr_assert(eq(int, gate_acquire(b, &req, NULL), 1));
	redis_do("DEL gaterun:gate:t");
	cr_assert(eq(int, gate_acquire(a, &req, NULL), 0), "held");
	gate_close(a);
	gate_close(b);
}
#endif
/*
 * gate_poll: a step in line that never sleeps. In line behind a holder
 * (another process), it hands out fds that stay quiet while nothing
 * changes; once the holder gives its slot back one of them is readable,
 * and the next step takes the slot.
 */
Test(file, poll_steps_in_line_without_sleeping)
{
	const struct pollfd *fds;
	struct pollfd pf[16];
	struct gate *a = gopen(1), *h;
	size_t n, i;
	int go[2], ready[2], ms;
	pid_t pid;
	char c;

	cr_assert(eq(int, gate_poll(a, &req, &fds, &n, &ms), -1));
	cr_assert(eq(int, errno, EINVAL), "not in line");
	cr_assert(eq(int, pipe(go), 0));
	cr_assert(eq(int, pipe(ready), 0));
	if ((pid = fork()) == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		h = gopen(1);
		if (gate_acquire(h, &req, NULL) != 1 ||
		    write(ready[1], "h", 1) != 1 || read(go[0], &c, 1) != 1 ||
		    gate_release(h) == -1)
			_exit(1);
		pause();
		_exit(0);
	}
	cr_assert(eq(int, (int)read(ready[0], &c, 1), 1));
	cr_assert(eq(int, gate_enqueue(a, &req, 1), 0), "full: in line");
	cr_assert(eq(int, gate_poll(a, &req, &fds, &n, &ms), 0));
	cr_assert(ge(sz, n, 1));
	cr_assert(le(sz, n, 16));
	cr_assert(eq(int, ms, -1), "no timer");
	for (i = 0; i < n; i++)
		pf[i] = fds[i];
	cr_assert(eq(int, poll(pf, n, 0), 0), "nothing happened yet");
	cr_assert(eq(int, gate_poll(a, &req, &fds, &n, &ms), 0), "still");
	cr_assert(eq(int, write(go[1], "g", 1), 1));
	cr_assert(ge(int, poll(pf, n, 10000), 1), "woken by the release");
	cr_assert(eq(int, gate_poll(a, &req, &fds, &n, &ms), 1));
	cr_assert(eq(sz, gate_held(a), 1));
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	gate_close(a);
}

#ifdef HAVE_HIREDIS
/*
 * The Redis store's clock-jump test (no server needed): two reads sent 1 s
 * apart on our clock, the server's TIME in each reply.
 */
Test(redis_clock, lag_of_a_stall_or_a_step, .timeout = 5)
{
	int64_t s = 1000000000, a = 5 * s;

	/* Normal: the server's clock moved as ours did, or the reply took
	 * 300 ms (TIME is read when the server answers). */
	cr_assert(eq(i64, rs_clock_lag(a, 5000, a + s, 6000), 0));
	cr_assert(eq(i64, rs_clock_lag(a, 5000, a + s, 6300), 300));
	cr_assert(not(rs_clock_jumped(300, 10000)));
	/* We were stopped after sending: the server answered at once. */
	cr_assert(eq(i64, rs_clock_lag(a, 5000, a + s, 6000), 0));
	/* The server stalled 5 s (answered then), or stepped 15 s ahead. */
	cr_assert(eq(i64, rs_clock_lag(a, 5000, a + s, 11000), 5000));
	cr_assert(rs_clock_jumped(5000, 10000) == 0, "half a 10 s lease");
	cr_assert(rs_clock_jumped(5001, 10000));
	cr_assert(rs_clock_jumped(rs_clock_lag(a, 5000, a + s, 21000), 10000));
	cr_assert(rs_clock_jumped(1600, 3000));
	/* At least a second, however short the lease. */
	cr_assert(not(rs_clock_jumped(900, 1000)));
	/* A step back is no jump ahead. */
	cr_assert(lt(i64, rs_clock_lag(a, 5000, a + s, 1000), 0));
	cr_assert(not(rs_clock_jumped(rs_clock_lag(a, 5000, a + s, 1000),
	    10000)));
}
#endif
