/* Unit tests of lib/proc.c: identity, liveness, zombies, process trees. */
#include "config.h"

#include <sys/prctl.h>
#include <sys/wait.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "proc.h"
#include "sys.h"

/*
 * A test that waits on a process (a zombie to be seen dead, a grandchild
 * to start) fails after 10 s instead of hanging make check.
 */
TestSuite(proc, .timeout = 10);

Test(proc, self_is_alive)
{
	struct procid id;

	cr_assert(eq(int, proc_id(getpid(), &id), 0));
	cr_assert(eq(int, id.pid, getpid()));
	cr_assert(eq(int, proc_alive(&id), 1));
}

Test(proc, other_start_time_is_dead)
{
	struct procid id;

	cr_assert(eq(int, proc_id(getpid(), &id), 0));
	id.start += 1;		/* a reused PID has another start time */
	cr_assert(eq(int, proc_alive(&id), 0));
	cr_assert(eq(int, proc_pidfd_id(&id), -1));
	cr_assert(eq(int, errno, ESRCH));
}

/*
 * proc_self answers from memory once read: the same identity as /proc
 * gives, a record of this PID with another start time still dead, and a
 * forked child gets its own identity, not its parent's.
 */
Test(proc, self_is_read_once_and_per_process)
{
	struct procid a, b, c;
	int fd[2], st;
	pid_t pid;

	cr_assert(eq(int, proc_self(&a), 0));
	cr_assert(eq(int, proc_id(getpid(), &b), 0));
	cr_assert(eq(int, a.pid, b.pid));
	cr_assert(a.start == b.start);
	cr_assert(eq(int, proc_alive(&a), 1));
	b.start += 1;
	cr_assert(eq(int, proc_alive(&b), 0));
	cr_assert(eq(int, pipe(fd), 0));
	if ((pid = fork()) == 0) {
		(void)close(fd[0]);
		if (proc_self(&c) == -1 || proc_alive(&a) != 1 ||
		    write(fd[1], &c, sizeof(c)) != sizeof(c))
			_exit(1);
		_exit(0);
	}
	cr_assert(gt(int, pid, 0));
	(void)close(fd[1]);
	cr_assert(eq(long, (long)read(fd[0], &c, sizeof(c)), (long)sizeof(c)));
	(void)close(fd[0]);
	cr_assert(eq(int, waitpid(pid, &st, 0), pid));
	cr_assert(eq(int, st, 0));
	cr_assert(eq(int, c.pid, pid));
	cr_assert(eq(int, proc_id(pid, &b) == 0 ? 1 : 0, 0)); /* reaped */
}

Test(proc, zombie_is_dead)
{
	struct procid id;
	pid_t pid;
	int st;

	if ((pid = fork()) == 0)
		_exit(0);
	cr_assert(eq(int, proc_id(pid, &id), 0));
	/* Not reaped yet: a zombie, which kill(pid, 0) would call alive. */
	while (proc_alive(&id))
		usleep(1000);
	cr_assert(eq(int, kill(pid, 0), 0));
	cr_assert(eq(int, waitpid(pid, &st, 0), pid));
	cr_assert(eq(int, proc_alive(&id), 0));
}

/* The worker of main_thread_ended: runs until its pipe is closed. */
static void *
worker(void *arg)
{
	char c;

	(void)read(*(int *)arg, &c, 1);
	_exit(0);
}

/*
 * A main thread that called pthread_exit shows state Z while the other
 * threads run on: the process is alive (it holds its slot), and dead once
 * the last thread has ended.
 */
Test(proc, main_thread_ended_is_alive)
{
	static int fd[2];
	struct procstat ps;
	struct procid id;
	pthread_t t;
	pid_t pid;
	int st;

	cr_assert(eq(int, pipe(fd), 0));
	if ((pid = fork()) == 0) {
		(void)close(fd[1]);
		if (pthread_create(&t, NULL, worker, &fd[0]) != 0)
			_exit(1);
		pthread_exit(NULL);
	}
	cr_assert(gt(int, pid, 0));
	(void)close(fd[0]);
	cr_assert(eq(int, proc_id(pid, &id), 0));
	while (proc_stat(pid, &ps) == 0 && ps.state != 'Z')
		usleep(1000);
	cr_assert(eq(chr, ps.state, 'Z'));
	cr_assert(eq(long, ps.nthreads, 2));
	cr_assert(eq(int, proc_alive(&id), 1));
	(void)close(fd[1]);		/* the worker ends, and the process */
	while (proc_alive(&id))
		usleep(1000);
	cr_assert(eq(int, waitpid(pid, &st, 0), pid));
	cr_assert(eq(int, st, 0));
}

Test(proc, missing_pid_is_dead)
{
	struct procid id = { 0, 0 };

	cr_assert(eq(int, proc_alive(&id), 0));
	id.pid = 0x3ffffff0;	/* above any pid_max */
	cr_assert(eq(int, proc_alive(&id), 0));
	cr_assert(eq(int, proc_id(id.pid, &id), -1));
}

Test(proc, descendants_include_grandchildren)
{
	struct procid *d;
	size_t n, i;
	int p[2], found = 0;
	pid_t child, grand;
	char c;

	cr_assert(eq(int, pipe(p), 0));
	/* Both die with their parent: a failed assertion leaves none behind. */
	if ((child = fork()) == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fork() == 0) {
			(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (write(p[1], "x", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		pause();
		_exit(0);
	}
	cr_assert(eq(int, (int)read(p[0], &c, 1), 1));
	cr_assert(eq(int, proc_descendants(getpid(), &d, &n), 0));
	grand = 0;
	for (i = 0; i < n; i++) {
		if (d[i].pid == child)
			found++;
		else
			grand = d[i].pid;
	}
	cr_assert(eq(int, found, 1));
	cr_assert(ne(int, grand, 0));
	(void)kill(grand, SIGKILL);
	(void)kill(child, SIGKILL);
	(void)waitpid(child, NULL, 0);
	free(d);
}

Test(proc, bootid_reads)
{
	char b[40];

	cr_assert(eq(int, proc_bootid(b, sizeof(b)), 0));
	cr_assert(eq(sz, strlen(b), 36));
}

Test(proc, stat_reads_parent_and_state)
{
	struct procstat ps;
	struct procid id;
	pid_t pid;

	if ((pid = fork()) == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		pause();
		_exit(0);
	}
	cr_assert(eq(int, proc_stat(pid, &ps), 0));
	cr_assert(eq(int, ps.id.pid, pid));
	cr_assert(eq(int, ps.ppid, getpid()));
	cr_assert(eq(int, proc_id(pid, &id), 0));
	cr_assert(eq(u64, ps.id.start, id.start));
	cr_assert(eq(int, ps.flags & PROC_PF_KTHREAD, 0));
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
}

/* Our /proc is our namespace's here: identities may be recorded. */
Test(proc, trusted_here)
{
	cr_assert(eq(int, proc_trusted(), 1));
	cr_assert(eq(int, proc_same_pidns(getpid()), 1));
}

/* PID 1's tree is every process: never walked. */
Test(proc, no_descendants_of_pid_1)
{
	struct procid *d;
	size_t n;

	cr_assert(eq(int, proc_descendants(1, &d, &n), -1));
	cr_assert(eq(int, errno, EINVAL));
	cr_assert(eq(int, proc_descendants(0, &d, &n), -1));
}

/* Ourselves first, then our parent: what a kill-all must never signal. */
Test(proc, ancestors_start_with_self)
{
	struct procid *a, me;
	size_t n;

	cr_assert(eq(int, proc_ancestors(&a, &n), 0));
	cr_assert(ge(sz, n, 2));
	cr_assert(eq(int, proc_id(getpid(), &me), 0));
	cr_assert(eq(int, a[0].pid, me.pid));
	cr_assert(eq(u64, a[0].start, me.start));
	cr_assert(eq(int, a[1].pid, getppid()));
	free(a);
}

/* A fork is "not exec'd" until it execs; a stopped one is "stopped". */
Test(proc, runstate_sees_stop_and_exec)
{
	struct procid id;
	int p[2], st;
	pid_t pid;
	char c;

	cr_assert(eq(int, pipe(p), 0));
	if ((pid = fork()) == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (read(p[0], &c, 1) != 1)
			_exit(1);
		execl("/bin/sleep", "sleep", "10", (char *)NULL);
		_exit(127);
	}
	cr_assert(eq(int, proc_id(pid, &id), 0));
	cr_assert(eq(int, proc_runstate(&id), PROC_UNEXECED));
	cr_assert(eq(int, kill(pid, SIGSTOP), 0));
	cr_assert(eq(int, waitpid(pid, &st, WUNTRACED), pid));
	cr_assert(eq(int, proc_runstate(&id), PROC_STOPPED | PROC_UNEXECED));
	cr_assert(eq(int, kill(pid, SIGCONT), 0));
	cr_assert(eq(int, (int)write(p[1], "x", 1), 1));
	while (proc_runstate(&id) & PROC_UNEXECED)
		usleep(1000);
	cr_assert(eq(int, proc_alive(&id), 1));	/* exec'd, running sleep */
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	cr_assert(eq(int, proc_runstate(&id), 0));
}
