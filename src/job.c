/*
 * The command as a job: its process group, the terminal and job control,
 * as a shell does it. The command leads a process group of its own, so a
 * signal sent to gaterun's group (kill %1, kill -- -PGID, the terminal's
 * Ctrl-C) reaches gaterun alone, which passes it on once; the terminal goes
 * to the command's group while gaterun's has it; a stop is mirrored.
 */
#include "config.h"

#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "gaterun.h"
#include "sys.h"

/* The parent of pid, from /proc/PID/stat (after the last ')'); -1. */
static pid_t
parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd, ppid;

	(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read_full(fd, buf, sizeof(buf) - 1);
	(void)xclose(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/*
 * 1 if our process group looks orphaned: no process of ours up the chain
 * of parents within the group has its parent in another group of the same
 * session. Nobody then resumes a stopped job, and the kernel discards the
 * terminal's stop signals for it (a session leader started by ssh -t or
 * tmux, a background job whose shell has gone).
 */
static int
orphaned(pid_t pgrp)
{
	pid_t p = getpid(), pp;
	int depth;

	for (depth = 0; depth < 64; depth++) {
		if ((pp = p == getpid() ? getppid() : parent_of(p)) <= 0)
			return 1;
		if (getpgid(pp) != pgrp)
			return getsid(pp) != getsid(0);
		p = pp;
	}
	return 1;
}

/*
 * 1 if no process but us and our children is in our process group: the
 * shell made us a job of our own. A pipeline's other commands, or make or
 * xargs that started us, share it. One pass over /proc, done only by a
 * group leader that has the terminal.
 */
static int
alone(pid_t pgrp)
{
	struct dirent *d;
	pid_t pid;
	DIR *dir;
	int r = 1;

	if ((dir = opendir("/proc")) == NULL)
		return 0;
	while (r && (d = readdir(dir)) != NULL) {
		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		pid = (pid_t)strtol(d->d_name, NULL, 10);
		if (pid != getpid() && getpgid(pid) == pgrp &&
		    parent_of(pid) != getpid())
			r = 0;
	}
	(void)closedir(dir);
	return r;
}

/* Hand the terminal to pgrp; SIGTTOU blocked, as we may be in background. */
static int
give_tty(const struct job *j, pid_t pgrp)
{
	sigset_t set, old;
	int r;

	sigemptyset(&set);
	sigaddset(&set, SIGTTOU);
	(void)sigprocmask(SIG_BLOCK, &set, &old);
	r = tcsetpgrp(j->tty, pgrp);
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* 1 if our own process group has the terminal now. */
static int
tty_ours(const struct job *j)
{
	return j->tty != -1 && tcgetpgrp(j->tty) == j->ours;
}

void
job_init(struct job *j)
{
	memset(j, 0, sizeof(*j));
	j->ours = getpgrp();
	j->own = 1;
	j->tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (j->tty != -1 && orphaned(j->ours)) {
		/* No job control above us: stay in the caller's group. */
		(void)xclose(j->tty);
		j->tty = -1;
		j->own = 0;
	}
}

void
job_child(const struct job *j)
{
	if (j->own)
		(void)setpgid(0, 0);
}

void
job_forked(const struct job *j, pid_t pid)
{
	if (j->own)
		(void)setpgid(pid, pid);	/* as the child does: no race */
}

void
job_start(struct job *j, pid_t pid)
{
	j->cmd = pid;
	j->pgrp = j->own ? pid : j->ours;
	if (!j->own || j->tty == -1)
		return;
	j->give = getpid() == j->ours && alone(j->ours);
	if (j->give && tty_ours(j) && give_tty(j, j->pgrp) == 0)
		j->held = 1;
}

void
job_signal(const struct job *j, int sig)
{
	if (!j->own || (kill(-j->pgrp, sig) == -1 && errno == ESRCH))
		(void)kill(j->cmd, sig);
}

/*
 * Stop ourselves with sig (default action for the moment), and return once
 * continued. Returns 1 if a SIGCONT continued us (it is consumed here, to
 * be passed on once by the caller), 0 if the kernel discarded the stop.
 */
static int
stop_self(int sig)
{
	struct sigaction dfl, old;
	struct timespec zero = { 0, 0 };
	sigset_t set, prev, cont;
	int caught;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	caught = sig != SIGSTOP && sigaction(sig, &dfl, &old) == 0;
	sigemptyset(&set);
	sigaddset(&set, sig);
	(void)sigprocmask(SIG_UNBLOCK, &set, &prev);
	(void)raise(sig);		/* stopped here until SIGCONT */
	(void)sigprocmask(SIG_SETMASK, &prev, NULL);
	if (caught)
		(void)sigaction(sig, &old, NULL);
	sigemptyset(&cont);
	sigaddset(&cont, SIGCONT);
	return sigtimedwait(&cont, NULL, &zero) == SIGCONT;
}

/*
 * 1 if a job-control shell put us in a job (our parent is in another
 * process group of our session: alone, or in a pipeline): it sees us stop
 * and resumes us. A script, cron or make, whose group we share, would
 * never continue a stopped gaterun, and would not have seen the command
 * stop either: then its stop is not mirrored, and whoever stopped it
 * continues it while we wait on.
 */
static int
resumable(const struct job *j)
{
	pid_t pp = getppid();

	return pp > 1 && getpgid(pp) != j->ours && getsid(pp) == getsid(0);
}

void
job_stopped(struct job *j, int sig)
{
	int tty_sig = sig == SIGTTIN || sig == SIGTTOU;

	if (tty_sig && j->own && tty_ours(j) && give_tty(j, j->pgrp) == 0) {
		/* It wants the terminal, which is its caller's: give it. */
		j->held = 1;
		job_signal(j, SIGCONT);
		return;
	}
	if (!resumable(j)) {
		if (tty_sig)
			warnx("the command (PID %d) stopped to use the terminal, "
			    "and no shell can resume it: it stays stopped until "
			    "sent SIGCONT or killed", (int)j->cmd);
		return;
	}
	j->held = tty_sig || (j->tty != -1 && tcgetpgrp(j->tty) == j->pgrp);
	if (j->own && j->held && j->tty != -1 &&
	    tcgetpgrp(j->tty) == j->pgrp)
		(void)give_tty(j, j->ours);
	(void)stop_self(sig);
	job_continued(j);
}

void
job_continued(struct job *j)
{
	if (j->own && (j->give || j->held) && tty_ours(j))
		(void)give_tty(j, j->pgrp);
	job_signal(j, SIGCONT);
}

void
job_ended(struct job *j)
{
	if (j->own && j->tty != -1 && tcgetpgrp(j->tty) == j->pgrp)
		(void)give_tty(j, j->ours);
	if (j->tty != -1)
		(void)xclose(j->tty);
	j->tty = -1;
}
