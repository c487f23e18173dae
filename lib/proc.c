/*
 * Process identity and liveness from /proc. A PID alone lies once reused,
 * so a process is named by PID and start time (clock ticks after boot,
 * field 22 of /proc/PID/stat); a zombie counts as dead, since a container
 * whose PID 1 never reaps would otherwise keep its slot forever.
 */
#include "config.h"

#include <sys/syscall.h>
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"
#include "sys.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK	O_NONBLOCK
#endif

/*
 * Parse /proc/PID/stat: the command name may hold spaces and ')', so the
 * fields are counted from the last ')'. Returns 0 or -1.
 */
static int
stat_read(pid_t pid, char *state, pid_t *ppid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
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
	p += 2;			/* field 3: state */
	*state = *p;
	for (field = 3; field < 22 && *p != '\0'; p++)
		if (*p == ' ')
			field++;
		else if (field == 4 && ppid != NULL && isdigit((unsigned char)*p))
			*ppid = *ppid * 10 + (*p - '0');
	if (field != 22 || !isdigit((unsigned char)*p)) {
		errno = EINVAL;
		return -1;
	}
	for (v = 0; isdigit((unsigned char)*p); p++)
		v = v * 10 + (unsigned long long)(*p - '0');
	*start = v;
	return 0;
}

/* Current identity of pid. */
int
proc_id(pid_t pid, struct procid *id)
{
	char state;

	if (pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	if (stat_read(pid, &state, NULL, &id->start) == -1)
		return -1;
	id->pid = pid;
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
	unsigned long long start;
	char state;

	if (id->pid <= 0)
		return 0;
	if (stat_read(id->pid, &state, NULL, &start) == -1) {
		if (errno != ESRCH)
			return 1;
		return kill(id->pid, 0) == 0 || errno == EPERM;
	}
	if (start != id->start)
		return 0;
	return state != 'Z' && state != 'X' && state != 'x';
}

/* pidfd_open(2) through syscall(2), so old libc headers do not matter. */
int
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

struct pnode {
	struct procid	id;
	pid_t		ppid;
};

/* All processes now in /proc, with parents. */
static int
proc_scan(struct pnode **outp, size_t *np)
{
	struct pnode *v = NULL, *nv;
	struct dirent *de;
	size_t n = 0, cap = 0;
	const char *errstr;
	DIR *d;
	char state;

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
		v[n].ppid = 0;
		if (stat_read(pid, &state, &v[n].ppid, &v[n].id.start) == -1)
			continue;
		if (state == 'Z' || state == 'X')
			continue;	/* nothing left to signal */
		v[n].id.pid = pid;
		n++;
	}
	(void)closedir(d);
	*outp = v;
	*np = n;
	return 0;
}

/* Breadth-first walk of the tree below root. */
int
proc_descendants(pid_t root, struct procid **outp, size_t *np)
{
	struct pnode *all;
	struct procid *out;
	size_t n, i, j, nout = 0;

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
