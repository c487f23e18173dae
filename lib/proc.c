/*
 * Process identity and liveness from /proc. A PID alone lies once reused,
 * so a process is named by PID and start time (clock ticks after boot,
 * field 22 of /proc/PID/stat); a zombie counts as dead, since a container
 * whose PID 1 never reaps would otherwise keep its slot forever, but not
 * a main thread that ended while its other threads run on (state Z with
 * more than one thread). An identity is only read from a /proc of our own
 * PID namespace.
 */
#include "config.h"

#include <sys/syscall.h>
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "sys.h"


/*
 * Parse /proc/PID/stat into *ps: the command name may hold spaces and ')',
 * so the fields are counted from the last ')'. Returns 0 or -1 (ESRCH:
 * no such process).
 */
int
proc_stat(pid_t pid, struct procstat *ps)
{
	char path[64], buf[1024], *p, *end;
	unsigned long long v;
	ssize_t n;
	int fd, field;

	(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			errno = ESRCH;
		return -1;
	}
	n = read_full(fd, buf, sizeof(buf) - 1);
	(void)xclose(fd);
	if (n <= 0) {
		errno = ESRCH;	/* exited between open and read */
		return -1;
	}
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ') {
		errno = EINVAL;
		return -1;
	}
	memset(ps, 0, sizeof(*ps));
	ps->id.pid = pid;
	ps->state = p[2];
	for (p += 2, field = 3; field < 22; field++) {
		if ((p = strchr(p, ' ')) == NULL)
			break;
		p++;
		if (field + 1 != 4 && field + 1 != 9 && field + 1 != 20 &&
		    field + 1 != 22)
			continue;
		if (!isdigit((unsigned char)*p))
			break;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0'))
			break;
		if (field + 1 == 4)
			ps->ppid = v > INT32_MAX ? 0 : (pid_t)v;
		else if (field + 1 == 9)
			ps->flags = (unsigned long)v;
		else if (field + 1 == 20)
			ps->nthreads = v > LONG_MAX ? LONG_MAX : (long)v;
		else
			ps->id.start = v;
	}
	if (field != 22) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
proc_ended(const struct procstat *ps)
{
	if (ps->state == 'X' || ps->state == 'x')
		return 1;
	return ps->state == 'Z' && ps->nthreads <= 1;
}

/*
 * 1 if /proc is our PID namespace's: /proc/self names the PID getpid()
 * gives. In `unshare -p -f` without --mount-proc, /proc is the parent
 * namespace's, so every PID read there names some other process (PID 1
 * would be the host's init); 0 then, -1 if /proc cannot be read.
 */
int
proc_trusted(void)
{
	const char *errstr;
	char buf[32];
	ssize_t n;
	long long v;

	if ((n = readlink("/proc/self", buf, sizeof(buf) - 1)) <= 0)
		return -1;
	buf[n] = '\0';
	v = strtonum(buf, 1, INT32_MAX, &errstr);
	return errstr == NULL && v == getpid();
}

/*
 * Current identity of pid, to be recorded. Refused (PROC_EFOREIGN) when
 * /proc is not our PID namespace's: the identity read would be another
 * process's, and a kill-all would later signal that one.
 */
int
proc_id(pid_t pid, struct procid *id)
{
	struct procstat ps;
	int r;

	if (pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	if ((r = proc_trusted()) != 1) {
		if (r == 0)
			errno = PROC_EFOREIGN;
		return -1;
	}
	if (proc_stat(pid, &ps) == -1)
		return -1;
	*id = ps.id;
	return 0;
}

/*
 * This process's identity, read once (a forked child reads its own): a
 * transaction asks about its own record, and need not read /proc for it.
 */
static struct procid self_id;

int
proc_self(struct procid *id)
{
	pid_t pid = getpid();

	if (self_id.pid != pid && proc_id(pid, &self_id) == -1) {
		self_id.pid = 0;
		return -1;
	}
	*id = self_id;
	return 0;
}

/*
 * Alive: /proc shows the same start time and the process is not a zombie.
 * Where /proc hides the process (hidepid=), kill(pid, 0) decides, and a
 * process we may not inspect counts as alive: wrongly freeing a slot would
 * break the limit, wrongly keeping one only delays a start.
 */
int
proc_alive(const struct procid *id)
{
	struct procstat ps;

	if (id->pid <= 0)
		return 0;
	if (id->pid == self_id.pid && id->pid == getpid())
		return id->start == self_id.start;	/* we run */
	if (proc_stat(id->pid, &ps) == -1) {
		if (errno != ESRCH)
			return 1;
		return kill(id->pid, 0) == 0 || errno == EPERM;
	}
	if (ps.id.start != id->start)
		return 0;
	return !proc_ended(&ps);
}

/*
 * What id is doing, for status: PROC_STOPPED when stopped by a signal or
 * a debugger (state T or t), PROC_UNEXECED while it is a fork that has
 * not called execve yet (the kernel's PF_FORKNOEXEC: a wrapper's parked
 * child before its go-ahead). 0 when neither, or when id is gone.
 */
int
proc_runstate(const struct procid *id)
{
	struct procstat ps;
	int r = 0;

	if (id->pid <= 0 || proc_stat(id->pid, &ps) == -1 ||
	    ps.id.start != id->start)
		return 0;
	if (ps.state == 'T' || ps.state == 't')
		r |= PROC_STOPPED;
	if (ps.flags & PROC_PF_FORKNOEXEC)
		r |= PROC_UNEXECED;
	return r;
}

/*
 * 1 if the process at pid lives in our PID namespace (its
 * /proc/PID/ns/pid is the same namespace as ours), 0 if in another
 * (a nested one: the PID we read names it only in our view). -1 with
 * errno: ESRCH gone, EACCES not ours to inspect.
 */
int
proc_same_pidns(pid_t pid)
{
	char path[64], a[64], b[64];
	ssize_t n, m;

	(void)snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	if ((n = readlink(path, a, sizeof(a) - 1)) == -1) {
		if (errno == ENOENT)
			errno = ESRCH;
		return -1;
	}
	if ((m = readlink("/proc/self/ns/pid", b, sizeof(b) - 1)) == -1)
		return -1;
	return n == m && memcmp(a, b, (size_t)n) == 0;
}

/*
 * Ourselves and every ancestor up to the top of our PID namespace, as
 * one walk up the ppid links shows them; *out is malloc'd. 0 or -1.
 */
int
proc_ancestors(struct procid **outp, size_t *np)
{
	struct procid *out = NULL, *nv;
	struct procstat ps;
	size_t n = 0;
	pid_t pid = getpid();

	/* A loop is impossible, but never trust /proc to end the walk. */
	while (pid > 0 && n < 4096 && proc_stat(pid, &ps) == 0) {
		if ((nv = reallocarray(out, n + 1, sizeof(*out))) == NULL) {
			free(out);
			return -1;
		}
		out = nv;
		out[n++] = ps.id;
		pid = ps.ppid;
	}
	if (n == 0) {
		free(out);
		return -1;
	}
	*outp = out;
	*np = n;
	return 0;
}

/* pidfd_open(2) through syscall(2), so old libc headers do not matter. */
static int
proc_pidfd(pid_t pid)
{
	int fd;

	if ((fd = (int)syscall(SYS_pidfd_open, pid, 0)) == -1)
		return -1;
	/* pidfds are close-on-exec by the kernel's choice; say so anyway. */
	(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

/* pidfd for id, verified after opening so a reused PID is not watched. */
int
proc_pidfd_id(const struct procid *id)
{
	int fd;

	if ((fd = proc_pidfd(id->pid)) == -1)
		return -1;
	if (!proc_alive(id)) {
		(void)xclose(fd);
		errno = ESRCH;
		return -1;
	}
	return fd;
}

/* Boot id, so records from before a reboot are never taken as alive. */
int
proc_bootid(char *buf, size_t len)
{
	ssize_t n;
	int fd;

	if (len < 37) {
		errno = ERANGE;
		return -1;
	}
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	n = read_full(fd, buf, 36);
	(void)xclose(fd);
	if (n != 36) {
		errno = EINVAL;
		return -1;
	}
	buf[36] = '\0';
	return 0;
}

/*
 * All processes now in /proc that could take a signal, with parents:
 * neither zombies nor kernel threads.
 */
static int
proc_scan(struct procstat **outp, size_t *np)
{
	struct procstat *v = NULL, *nv;
	struct dirent *de;
	size_t n = 0, cap = 0;
	const char *errstr;
	DIR *d;

	if ((d = opendir("/proc")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)strtonum(de->d_name, 1, INT32_MAX, &errstr);

		if (errstr != NULL)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL) {
				free(v);
				(void)closedir(d);
				return -1;
			}
			v = nv;
		}
		if (proc_stat(pid, &v[n]) == -1)
			continue;
		if (proc_ended(&v[n]) || (v[n].flags & PROC_PF_KTHREAD))
			continue;	/* nothing to signal there */
		n++;
	}
	(void)closedir(d);
	*outp = v;
	*np = n;
	return 0;
}

/* Breadth-first walk of the tree below root (never PID 1's). */
int
proc_descendants(pid_t root, struct procid **outp, size_t *np)
{
	struct procstat *all;
	struct procid *out;
	size_t n, i, j, nout = 0;

	if (root <= 1) {
		errno = EINVAL;		/* PID 1's tree is everything */
		return -1;
	}
	if (proc_scan(&all, &n) == -1)
		return -1;
	if ((out = reallocarray(NULL, n + 1, sizeof(*out))) == NULL) {
		free(all);
		return -1;
	}
	/* out[] doubles as the queue: parents are visited in order. */
	for (i = 0; i <= nout; i++) {
		pid_t parent = i == 0 ? root : out[i - 1].pid;

		for (j = 0; j < n; j++)
			if (all[j].ppid == parent && all[j].id.pid != root)
				out[nout++] = all[j].id;
	}
	free(all);
	*outp = out;
	*np = nout;
	return 0;
}
