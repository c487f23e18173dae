/*
 * The gate engine over one state file per gate.
 *
 * Locking protocol. DIR/NAME.lock is an empty file that is only ever
 * flock(2)ed, never renamed or written. Every change is one transaction
 * under that lock: lock -> read DIR/NAME.gate -> validate -> reap the
 * dead -> modify -> wake -> write DIR/.NAME.new and rename it over
 * DIR/NAME.gate -> unlock. The lock is held for microseconds, never across
 * fork, exec or a wait. Because the new state is renamed into place, a
 * writer SIGKILLed mid-write or a full disk leaves the old state whole;
 * the lock file, not the state file, carries the lock, so the rename never
 * swaps the inode under a lock holder.
 *
 * Liveness. A record names its processes by PID and start time (proc.c).
 * A holder's slot is taken while its wrapper or its command lives, so a
 * SIGKILLed wrapper whose command runs on still counts. Dead holders are
 * reaped by a transaction that finds the gate full (they would keep
 * someone out; with room, nobody needs to read their /proc entries) and
 * by every status call; dead waiters when they reach the head of the
 * queue, when the waiter behind them notices, or by a status call.
 *
 * Queue and wake-ups. Waiters are served by ticket. Any transaction that
 * frees capacity hands slots to the waiters at the head ("promotes" them:
 * their record becomes a holder record) and wakes exactly those, by one
 * datagram to the abstract unix socket each waiter bound (its name is in
 * its record). Wake-ups are sent before the new state is written and the
 * lock released, so a woken waiter always reads a state at least as new as
 * the one that woke it, and a waker killed between the two only causes a
 * spurious wake. Crashes free capacity without a release, so a waiter also
 * watches pidfds: the head waiter those of the holders, every other waiter
 * the one just ahead of it. No waiter ever polls on a timer.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <ctype.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gate.h"
#include "proc.h"
#include "state.h"
#include "sys.h"

#define MAX_WAKES	8

struct gate {
	int		dirfd;
	int		lockfd;		/* -1 until first needed */
	int		create;
	unsigned	deflimit;
	char		name[GATE_NAME_MAX + 1];
	char		lockname[GATE_NAME_MAX + 8];
	char		statename[GATE_NAME_MAX + 8];
	char		tmpname[GATE_NAME_MAX + 8];
	mode_t		mode;		/* for files created */
	int		shared;		/* a group-writable gate directory */
	gid_t		gid;		/* its group */
	char		boot[40];
	struct procid	self;
	uid_t		uid;
	int		sock;		/* waiter's wake socket, or -1 */
	char		key[9];		/* this gate's prefix of wake names */
	char		addr[STATE_ADDR_LEN + 1];
	int		sendsock;	/* for waking others, or -1 */
	uint64_t	ticket;		/* ours while queued or holding */
	int		slot;		/* held slot, or -1 */
	int		has_cmd;	/* the held slot records its command */
	int		queued;
	size_t		last_active;
	unsigned	last_limit;
	gate_notify_fn	*notify;
	void		*notify_arg;
};

/* One transaction's working copy. */
struct txn {
	struct state	st;
	int		dirty;
	int		exists;		/* a lock file was there */
	int		reaped_holder;
	int		reaped;		/* reap_holders() ran */
	int		lost;		/* the state was damaged or missing */
	uint64_t	head;		/* ticket of the head waiter at start */
	int		has_head;
	char		wake[MAX_WAKES][STATE_ADDR_LEN + 1];
	size_t		nwake;
	int		wake_all;	/* more than MAX_WAKES: see txn_commit */
};

static void	gate_key(struct gate *);

/* Tell the caller something a person should know. */
static void
notify(struct gate *g, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (g->notify == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	g->notify(g->notify_arg, buf);
}

int
gate_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= GATE_NAME_MAX && s[0] != '.' &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
gate_list_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Every NAME.gate in dir whose NAME is a valid gate name. */
int
gate_list(const char *dir, char ***outp, size_t *np)
{
	char **v = NULL, **nv, *name;
	struct dirent *de;
	size_t n = 0, len;
	DIR *d;

	*outp = NULL;
	*np = 0;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= 5 || strcmp(de->d_name + len - 5, ".gate") != 0 ||
		    (name = strndup(de->d_name, len - 5)) == NULL)
			continue;
		if (!gate_name_valid(name) ||
		    (nv = reallocarray(v, n + 1, sizeof(*v))) == NULL) {
			free(name);
			continue;
		}
		v = nv;
		v[n++] = name;
	}
	(void)closedir(d);
	qsort(v, n, sizeof(*v), name_cmp);
	*outp = v;
	*np = n;
	return 0;
}

/*
 * Files and directories we trust. The directory: not a symlink (O_NOFOLLOW
 * did that), owned by us or root, writable by others only with the sticky
 * bit; group-writable with the set-group-ID bit makes it a shared gate
 * directory, whose members are all trusted with its gates. A file: not a symlink, not writable by
 * others, owned by us, by root, or, in a shared directory, by a member
 * (its group is the directory's). Root never follows a link a member
 * planted (O_NOFOLLOW), never writes into an existing file (new state is a
 * new file, O_EXCL) and only flocks the lock file.
 */
static int
trusted(struct gate *g, int fd, mode_t type)
{
	struct stat sb;
	int ours;

	if (fstat(fd, &sb) == -1)
		return -1;
	if ((sb.st_mode & S_IFMT) != type) {
		errno = type == S_IFDIR ? ENOTDIR : EINVAL;
		return -1;
	}
	ours = sb.st_uid == g->uid || sb.st_uid == 0;
	if (type == S_IFDIR) {
		/*
		 * Group-writable only as a shared gate directory, marked so by
		 * its set-group-ID bit (2770); by mistake (0775) it is refused.
		 */
		if (!ours || (sb.st_mode & S_IWOTH && !(sb.st_mode & S_ISVTX)) ||
		    (sb.st_mode & S_IWGRP && !(sb.st_mode & (S_ISGID | S_ISVTX))))
			goto refuse;
		g->shared = (sb.st_mode & S_IWGRP) != 0;
		g->gid = sb.st_gid;
		return 0;
	}
	if (sb.st_mode & S_IWOTH)
		goto refuse;
	if (g->shared ? !ours && sb.st_gid != g->gid :
	    !ours || (sb.st_uid != g->uid && sb.st_mode & S_IWGRP))
		goto refuse;
	return 0;
refuse:
	errno = EPERM;
	return -1;
}

/*
 * A file we just made: in a shared directory it belongs to the directory's
 * group and is read-write for it, whatever the umask or primary group.
 */
static void
share_file(const struct gate *g, int fd)
{
	struct stat sb;

	if (!g->shared || fstat(fd, &sb) == -1 || sb.st_uid != g->uid)
		return;		/* a member's file is the member's business */
	/* Fails only for a caller outside the group: then nobody shares. */
	if (fchown(fd, (uid_t)-1, g->gid) == 0)
		(void)fchmod(fd, 0660);
}

/* 1 if path itself is a symbolic link. */
static int
is_symlink(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

int
gate_open(struct gate **gp, const char *dir, const char *name,
    unsigned deflimit, int create, gate_notify_fn *fn, void *arg)
{
	struct gate *g;
	int fd;

	if (!gate_name_valid(name) || deflimit > GATE_MAX_LIMIT) {
		errno = EINVAL;
		return -1;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return -1;
	g->lockfd = g->sock = g->sendsock = -1;
	g->slot = -1;
	g->create = create;
	g->deflimit = deflimit;
	g->notify = fn;
	g->notify_arg = arg;
	g->uid = geteuid();
	g->mode = g->uid == 0 ? 0644 : 0600;
	(void)strlcpy(g->name, name, sizeof(g->name));
	(void)snprintf(g->lockname, sizeof(g->lockname), "%s.lock", name);
	(void)snprintf(g->statename, sizeof(g->statename), "%s.gate", name);
	(void)snprintf(g->tmpname, sizeof(g->tmpname), ".%s.new", name);
	if (proc_id(getpid(), &g->self) == -1 ||
	    proc_bootid(g->boot, sizeof(g->boot)) == -1)
		goto fail;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && create) {
		/* First use, or /run was emptied by a reboot. */
		if (mkdir(dir, g->uid == 0 ? 0755 : 0700) == -1 &&
		    errno != EEXIST)
			goto fail;
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd == -1) {
		if (errno == ENOENT && !create) {
			g->dirfd = -1;	/* never used: status shows defaults */
			*gp = g;
			return 0;
		}
		if (errno == ENOTDIR && is_symlink(dir))
			errno = ELOOP;	/* a symlink where the directory is */
		goto fail;
	}
	g->dirfd = fd;
	if (trusted(g, fd, S_IFDIR) == -1) {
		(void)xclose(fd);
		goto fail;
	}
	gate_key(g);
	*gp = g;
	return 0;
fail:
	free(g);
	return -1;
}

/* Open (maybe create) and check the lock file; 0, or -1 (ENOENT: none). */
static int
lockfile_open(struct gate *g)
{
	int fd, flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC;

	if (g->lockfd != -1)
		return 0;
	if (g->dirfd == -1) {
		errno = ENOENT;
		return -1;
	}
	if (g->create)
		flags |= O_CREAT;
	if ((fd = openat(g->dirfd, g->lockname, flags, g->mode)) == -1)
		return -1;
	if (trusted(g, fd, S_IFREG) == -1) {
		(void)xclose(fd);
		return -1;
	}
	share_file(g, fd);
	g->lockfd = fd;
	return 0;
}

/* Move a damaged state file aside, keeping it for a person to look at. */
static void
move_aside(struct gate *g, const char *why)
{
	char aside[GATE_NAME_MAX + 48], stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	(void)strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ",
	    gmtime_r(&now, &tm));
	(void)snprintf(aside, sizeof(aside), "%s.corrupt-%s.%d", g->name,
	    stamp, (int)g->self.pid);
	if (renameat(g->dirfd, g->statename, g->dirfd, aside) == -1)
		notify(g, "state file %s is damaged (%s) and could not be "
		    "moved aside: %s; starting it afresh", g->statename, why,
		    strerror(errno));
	else
		notify(g, "state file %s is damaged (%s): moved aside to %s; "
		    "commands still running were kept", g->statename, why,
		    aside);
}

/* Read the state (fresh if there is none). Lock held. */
static int
state_load(struct gate *g, struct txn *t)
{
	const char *why;
	size_t len;
	char *buf;
	int fd, r;

	fd = openat(g->dirfd, g->statename, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno != ENOENT)
		return -1;	/* ELOOP: a symlink is refused, never followed */
	if (fd == -1) {
		/* New, or removed (/run emptied): waiters may be out there. */
		t->st.limit = g->deflimit;
		memcpy(t->st.boot, g->boot, sizeof(g->boot));
		t->lost = 1;
		return 0;
	}
	if (trusted(g, fd, S_IFREG) == -1) {
		(void)xclose(fd);
		return -1;
	}
	if (read_fd_all(fd, STATE_MAX_BYTES, &buf, &len) == -1) {
		(void)xclose(fd);
		if (errno != EFBIG)
			return -1;
		why = "larger than any real gate";
		move_aside(g, why);
		t->st.limit = UINT_MAX;		/* nothing read: defaults */
		goto salvaged;
	}
	(void)xclose(fd);
	if (state_parse(buf, len, &t->st, 0, &why) == 0) {
		free(buf);
		return 0;
	}
	if (errno != EINVAL) {
		free(buf);
		return -1;
	}
	move_aside(g, why);
	r = state_parse(buf, len, &t->st, 1, &why);
	free(buf);
	if (r == -1)
		return -1;	/* out of memory: salvage never fails else */
salvaged:
	t->lost = 1;
	if (t->st.limit == UINT_MAX)
		t->st.limit = g->deflimit;
	if (t->st.boot[0] == '\0')
		memcpy(t->st.boot, g->boot, sizeof(g->boot));
	t->dirty = 1;
	return 0;
}

/* A holder is alive while its wrapper or its command runs. */
static int
holder_alive(const struct entry *e)
{
	return proc_alive(&e->wrapper) || (e->cmd.pid && proc_alive(&e->cmd));
}

/* Queue a wake-up for a waiter's socket. */
static void
wake_add(struct txn *t, const char *addr)
{
	if (t->nwake == MAX_WAKES)
		t->wake_all = 1;
	else
		(void)strlcpy(t->wake[t->nwake++], addr, sizeof(t->wake[0]));
}

/* Lowest free slot index below the limit (the caller ensured one). */
static int
free_slot(const struct state *st)
{
	unsigned char used[STATE_MAX_SLOTS / 8];
	size_t i;
	int s;

	memset(used, 0, sizeof(used));
	for (i = 0; i < st->nh; i++)
		used[st->h[i].slot / 8] |= 1 << (st->h[i].slot % 8);
	for (s = 0; s < (int)st->limit; s++)
		if (!(used[s / 8] & (1 << (s % 8))))
			return s;
	return -1;
}

/* Turn waiter w[0] into a holder of slot. */
static int
promote_head(struct txn *t, int slot, int64_t now)
{
	struct entry e = t->st.w[0];

	e.slot = slot;
	t->st.wait_ns += (uint64_t)(now > e.time_ns ? now - e.time_ns : 0);
	e.time_ns = now;
	if (state_add(&t->st.h, &t->st.nh, &e) == -1)
		return -1;
	wake_add(t, e.addr);
	t->st.w[0].strs = NULL;		/* moved */
	state_remove(t->st.w, &t->st.nw, 0);
	t->st.acquired++;
	t->dirty = 1;
	return 0;
}

static void	reap_holders(struct txn *);

/*
 * The slot the next holder gets, or -1 when the gate is full. Dead
 * holders matter only when they would keep someone out: they are reaped
 * (once a transaction) when the gate looks full, so a take or a release
 * on a gate with room reads no /proc entry at all, however many hold.
 */
static int
next_slot(struct txn *t)
{
	int slot;

	if (t->st.nh < t->st.limit && (slot = free_slot(&t->st)) != -1)
		return slot;
	if (t->reaped)
		return -1;
	reap_holders(t);
	return t->st.nh < t->st.limit ? free_slot(&t->st) : -1;
}

/* Hand free capacity to the waiters at the head, in order. */
static int
promote(struct txn *t)
{
	int64_t now = real_ns();
	int slot;

	while (t->st.nw > 0 && (slot = next_slot(t)) != -1) {
		if (!proc_alive(&t->st.w[0].wrapper)) {
			state_remove(t->st.w, &t->st.nw, 0);
			t->dirty = 1;
			continue;
		}
		if (promote_head(t, slot, now) == -1)
			return -1;
	}
	return 0;
}

/* Drop dead holders. */
static void
reap_holders(struct txn *t)
{
	size_t i;

	t->reaped = 1;
	for (i = 0; i < t->st.nh;)
		if (!holder_alive(&t->st.h[i])) {
			state_remove(t->st.h, &t->st.nh, i);
			t->dirty = t->reaped_holder = 1;
		} else
			i++;
}

/* Drop every dead waiter (status, and a waiter whose neighbour died). */
static void
reap_waiters(struct txn *t)
{
	size_t i;

	for (i = 0; i < t->st.nw;)
		if (!proc_alive(&t->st.w[i].wrapper)) {
			state_remove(t->st.w, &t->st.nw, i);
			t->dirty = 1;
		} else
			i++;
}

/*
 * Drop dead waiters just ahead of position pos, nearest first, up to the
 * first live one: that is the one we watch. Dead waiters further ahead are
 * the business of the waiters behind them, so a wake costs O(1) checks.
 */
static void
reap_ahead(struct txn *t, size_t pos)
{
	while (pos > 0 && !proc_alive(&t->st.w[pos - 1].wrapper)) {
		state_remove(t->st.w, &t->st.nw, pos - 1);
		t->dirty = 1;
		pos--;
	}
}

/*
 * Begin a transaction: lock, load, forget a former boot. Returns 0, -1, or
 * 1 when the gate was never created and g->create is off (t holds the
 * defaults and no lock is held).
 */
static int
txn_begin(struct gate *g, struct txn *t)
{
	memset(t, 0, sizeof(*t));
	if (lockfile_open(g) == -1) {
		if (errno != ENOENT || g->create)
			return -1;
		t->st.limit = g->deflimit;
		return 1;
	}
	t->exists = 1;
	if (lock_fd(g->lockfd, NULL) == -1)
		return -1;
	if (state_load(g, t) == -1) {
		(void)flock(g->lockfd, LOCK_UN);
		return -1;
	}
	if (strcmp(t->st.boot, g->boot) != 0) {
		/* Written before a reboot: nobody in it is alive. */
		while (t->st.nh > 0)
			state_remove(t->st.h, &t->st.nh, t->st.nh - 1);
		while (t->st.nw > 0)
			state_remove(t->st.w, &t->st.nw, t->st.nw - 1);
		memcpy(t->st.boot, g->boot, sizeof(g->boot));
		t->dirty = 1;
	}
	if ((t->has_head = t->st.nw > 0))
		t->head = t->st.w[0].ticket;
	return 0;
}

/*
 * The first half of every wake name of this gate: a hash (FNV-1a) of the
 * state directory's device and inode and the gate's name.
 */
static void
gate_key(struct gate *g)
{
	struct stat sb;
	uint32_t h = 2166136261u;
	uint64_t v[2] = { 0, 0 };
	const unsigned char *p;
	size_t i;

	if (fstat(g->dirfd, &sb) == 0) {
		v[0] = (uint64_t)sb.st_dev;
		v[1] = (uint64_t)sb.st_ino;
	}
	p = (const unsigned char *)v;
	for (i = 0; i < sizeof(v); i++)
		h = (h ^ p[i]) * 16777619u;
	for (p = (const unsigned char *)g->name; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	(void)snprintf(g->key, sizeof(g->key), "%08x", (unsigned)h);
}

/* Send one wake-up datagram; failures only mean the waiter is gone. */
static void
wake_send(struct gate *g, const char *addr)
{
	struct sockaddr_un sa;
	size_t n = strlen(addr);

	if (g->sendsock == -1)
		g->sendsock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0);
	if (g->sendsock == -1 || n == 0 || n > STATE_ADDR_LEN)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, addr, n);	/* abstract: leading NUL */
	(void)sendto(g->sendsock, "", 1, MSG_DONTWAIT, (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n));
}

/*
 * The state was damaged or is gone: the waiters it listed cannot be named
 * from it. Wake every socket bound under this gate's key instead (the
 * kernel lists them in /proc/net/unix); each looks, finds its place lost
 * and queues again. Only on damage, so the scan costs nothing otherwise.
 */
static void
wake_lost(struct gate *g)
{
	char *line = NULL, *name;
	size_t cap = 0, n;
	FILE *fp;

	if ((fp = fopen("/proc/net/unix", "re")) == NULL)
		return;
	while (getline(&line, &cap, fp) != -1) {
		line[strcspn(line, "\n")] = '\0';
		if ((name = strrchr(line, ' ')) == NULL || name[1] != '@')
			continue;
		name += 2;
		n = strlen(name);
		if (n == STATE_ADDR_LEN && strncmp(name, g->key, 8) == 0 &&
		    strspn(name, "0123456789abcdef") == n &&
		    strcmp(name, g->addr) != 0)
			wake_send(g, name);
	}
	free(line);
	(void)fclose(fp);
}

/* Write st to a new file and rename it into place. Lock held. */
static int
state_store(struct gate *g, const struct state *st)
{
	size_t len;
	char *buf;
	int fd, r;

	if (state_format(st, &buf, &len) == -1)
		return -1;
	(void)unlinkat(g->dirfd, g->tmpname, 0);
	fd = openat(g->dirfd, g->tmpname, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, g->mode);
	if (fd == -1) {
		free(buf);
		return -1;
	}
	share_file(g, fd);
	r = write_full(fd, buf, len);
	free(buf);
	if (close(fd) == -1)
		r = -1;
	if (r == 0 && renameat(g->dirfd, g->tmpname, g->dirfd,
	    g->statename) == -1)
		r = -1;
	if (r == -1)
		(void)unlinkat(g->dirfd, g->tmpname, 0);
	return r;
}

/*
 * End a transaction: wake who must re-check, store if changed, unlock.
 * The head waiter is woken when it changed or a holder went away, so it
 * re-reads whom to watch.
 */
static int
txn_commit(struct gate *g, struct txn *t)
{
	size_t i;
	int r = 0;

	g->last_active = t->st.nh;
	g->last_limit = t->st.limit;
	if (!t->exists) {
		state_free(&t->st);
		return 0;
	}
	if (t->lost)
		wake_lost(g);
	if (t->st.nw > 0 && (t->reaped_holder || !t->has_head ||
	    t->st.w[0].ticket != t->head))
		wake_add(t, t->st.w[0].addr);
	for (i = 0; i < t->nwake && !t->wake_all; i++)
		if (strcmp(t->wake[i], g->addr) != 0)
			wake_send(g, t->wake[i]);
	/*
	 * Too many to list: every waiter, and every holder that still has a
	 * wake address, which only those promoted in this transaction have.
	 */
	for (i = 0; t->wake_all && i < t->st.nw; i++)
		wake_send(g, t->st.w[i].addr);
	for (i = 0; t->wake_all && i < t->st.nh; i++)
		if (t->st.h[i].addr[0] != '\0' &&
		    strcmp(t->st.h[i].addr, g->addr) != 0)
			wake_send(g, t->st.h[i].addr);
	if (t->dirty && state_store(g, &t->st) == -1)
		r = -1;
	(void)flock(g->lockfd, LOCK_UN);
	state_free(&t->st);
	return r;
}

/* Abandon a transaction: nothing is written. */
static void
txn_abort(struct gate *g, struct txn *t)
{
	if (t->exists)
		(void)flock(g->lockfd, LOCK_UN);
	state_free(&t->st);
}

/*
 * We hold holder record i: note the slot, and in exec mode record this
 * process as the command too, in the same transaction.
 */
static void
claim(struct gate *g, struct txn *t, size_t i, const struct gate_req *req)
{
	g->slot = t->st.h[i].slot;
	g->queued = 0;
	if (req != NULL && req->self_cmd && t->st.h[i].cmd.pid == 0) {
		t->st.h[i].cmd = g->self;
		t->dirty = 1;
	}
	g->has_cmd = t->st.h[i].cmd.pid != 0;
}

/* Our record: holder (1) or waiter (0) with its index in *idx, or -1. */
static int
find_self(const struct gate *g, const struct state *st, ssize_t *idx)
{
	size_t i;

	for (i = 0; i < st->nh; i++)
		if (st->h[i].ticket == g->ticket &&
		    st->h[i].wrapper.pid == g->self.pid &&
		    st->h[i].wrapper.start == g->self.start) {
			*idx = (ssize_t)i;
			return 1;
		}
	for (i = 0; i < st->nw; i++)
		if (st->w[i].ticket == g->ticket &&
		    st->w[i].wrapper.pid == g->self.pid &&
		    st->w[i].wrapper.start == g->self.start) {
			*idx = (ssize_t)i;
			return 0;
		}
	return -1;
}

/* A new record for this process. */
static int
self_entry(struct gate *g, struct txn *t, const struct gate_req *req,
    struct entry *e)
{
	memset(e, 0, sizeof(*e));
	e->slot = -1;			/* a waiter until promoted */
	e->ticket = g->ticket = t->st.next_ticket++;
	e->wrapper = g->self;
	if (req != NULL && req->self_cmd)
		e->cmd = g->self;	/* promotion then needs no second step */
	e->uid = g->uid;
	e->time_ns = real_ns();
	(void)strlcpy(e->addr, g->addr, sizeof(e->addr));
	t->dirty = 1;
	return state_entry_encode(e, req ? req->cwd : NULL,
	    req ? req->command : NULL);
}

/* Bind our wake socket to an abstract name: the gate's key, then random. */
static int
sock_open(struct gate *g)
{
	struct sockaddr_un sa;
	int tries;

	if (g->sock != -1)
		return 0;
	g->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (g->sock == -1)
		return -1;
	/*
	 * An abstract name of the gate's key and a random part: if the state
	 * is ever lost, waiters are still found by their names (wake_lost).
	 */
	for (tries = 0; tries < 16; tries++) {
		(void)snprintf(g->addr, sizeof(g->addr), "%s%08x", g->key,
		    (unsigned)arc4random());
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path + 1, g->addr, STATE_ADDR_LEN);
		if (bind(g->sock, (struct sockaddr *)&sa, (socklen_t)
		    (offsetof(struct sockaddr_un, sun_path) + 1 +
		    STATE_ADDR_LEN)) == 0)
			return 0;
		if (errno != EADDRINUSE)
			break;
	}
	(void)xclose(g->sock);
	g->sock = -1;
	g->addr[0] = '\0';
	errno = EPROTO;
	return -1;
}

/* Take a free slot now if nobody is queued; 1 taken, 0 not. */
static int
take_now(struct gate *g, struct txn *t, const struct gate_req *req)
{
	struct entry e;
	int slot;

	if (t->st.nw > 0 || (slot = next_slot(t)) == -1)
		return 0;
	if (self_entry(g, t, req, &e) == -1)
		return -1;
	e.slot = slot;
	e.addr[0] = '\0';
	if ((req != NULL && req->cmd > 0 && proc_id(req->cmd, &e.cmd) == -1) ||
	    state_add(&t->st.h, &t->st.nh, &e) == -1) {
		free(e.strs);
		return -1;
	}
	t->st.acquired++;
	g->slot = slot;
	g->has_cmd = e.cmd.pid != 0;
	return 1;
}

/* Fds a waiter sleeps on: its socket, then pidfds it watches. */
struct watch {
	struct pollfd	*fds;
	size_t		n;
	int		now;		/* something died already: re-check */
	int		degraded;	/* could not watch all: time out */
};

static void
watch_close(struct watch *w)
{
	size_t i;

	for (i = 1; i < w->n; i++)
		(void)xclose(w->fds[i].fd);
	free(w->fds);
	memset(w, 0, sizeof(*w));
}

/* Add a pidfd for id; a dead one means "re-check now". */
static void
watch_add(struct watch *w, const struct procid *id)
{
	int fd;

	if (w->now || w->degraded)
		return;
	if ((fd = proc_pidfd_id(id)) == -1) {
		if (errno == ESRCH)
			w->now = 1;
		else
			w->degraded = 1;	/* EMFILE and the like */
		return;
	}
	w->fds[w->n].fd = fd;
	w->fds[w->n].events = POLLIN;
	w->n++;
}

/*
 * Whom to watch from position pos: the head watches every holder (the
 * wrapper while it lives, else the command); others the waiter ahead.
 */
static int
watch_build(struct gate *g, const struct state *st, size_t pos,
    struct watch *w)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	if ((w->fds = reallocarray(NULL, st->nh + 2, sizeof(*w->fds))) == NULL)
		return -1;
	w->fds[0].fd = g->sock;
	w->fds[0].events = POLLIN;
	w->n = 1;
	if (pos > 0) {
		watch_add(w, &st->w[pos - 1].wrapper);
		return 0;
	}
	for (i = 0; i < st->nh; i++)
		if (proc_alive(&st->h[i].wrapper))
			watch_add(w, &st->h[i].wrapper);
		else if (st->h[i].cmd.pid > 0)
			watch_add(w, &st->h[i].cmd);
		else
			w->now = 1;	/* a dead holder: reap it */
	return 0;
}

/* Drain pending wake-ups from our socket. */
static void
sock_drain(struct gate *g)
{
	char b[64];

	while (recv(g->sock, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

/* Leave the queue: give up our place, or keep the slot already granted. */
static int
leave(struct gate *g, const struct gate_req *keep)
{
	struct txn t;
	ssize_t i;
	int r, where;

	if (txn_begin(g, &t) == -1)
		return -1;
	where = find_self(g, &t.st, &i);
	if (where == 1 && keep != NULL) {
		claim(g, &t, (size_t)i, keep);
		r = 1;
	} else {
		if (where == 1)
			state_remove(t.st.h, &t.st.nh, (size_t)i);
		else if (where == 0)
			state_remove(t.st.w, &t.st.nw, (size_t)i);
		t.dirty |= where != -1;
		r = 0;
		if (promote(&t) == -1) {
			txn_abort(g, &t);
			return -1;
		}
	}
	g->queued = 0;
	return txn_commit(g, &t) == -1 ? -1 : r;
}

/*
 * One look at the state while queued: reap the dead ahead of us, take a
 * slot if granted, rejoin if our record was lost. Returns 1 (holding),
 * 0 (still waiting; *w built), -1.
 */
static int
wait_check(struct gate *g, const struct gate_req *req, struct watch *w,
    size_t *pos, size_t *nq)
{
	struct entry e;
	struct txn t;
	ssize_t i;
	int where;

	if (txn_begin(g, &t) == -1)
		return -1;
	if (find_self(g, &t.st, &i) == 0)
		reap_ahead(&t, (size_t)i);
	if (promote(&t) == -1)
		goto fail;
	if ((where = find_self(g, &t.st, &i)) == -1) {
		notify(g, "gate '%s': this waiter's place was lost with the "
		    "damaged state; queueing again", g->name);
		if (self_entry(g, &t, req, &e) == -1 ||
		    state_add(&t.st.w, &t.st.nw, &e) == -1)
			goto fail;
		if (promote(&t) == -1 ||
		    (where = find_self(g, &t.st, &i)) == -1)
			goto fail;	/* just added: always found */
	}
	if (where == 1) {
		claim(g, &t, (size_t)i, req);
		return txn_commit(g, &t) == -1 ? -1 : 1;
	}
	*pos = (size_t)i;
	*nq = t.st.nw;
	if (watch_build(g, &t.st, (size_t)i, w) == -1)
		goto fail;
	if (txn_commit(g, &t) == -1) {
		watch_close(w);
		return -1;
	}
	return 0;
fail:
	txn_abort(g, &t);
	return -1;
}

/* Raise the fd limit for watching many holders; restored afterwards. */
static void
nofile_raise(struct rlimit *saved)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, saved) == -1) {
		saved->rlim_cur = RLIM_INFINITY;
		return;
	}
	rl = *saved;
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur > 65536)
		rl.rlim_cur = 65536;
	if (rl.rlim_cur > saved->rlim_cur)
		(void)setrlimit(RLIMIT_NOFILE, &rl);
}

/* Sleep until woken, a watched process dies, a signal, or the deadline. */
static int
wait_sleep(const struct gate_wait *gw, struct watch *w)
{
	struct timespec ts, *tsp = NULL;
	int64_t left;
	int r;

	if (w->now)
		return 0;
	if (gw->deadline >= 0) {
		left = gw->deadline - mono_ns();
		if (left < 0)
			left = 0;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		tsp = &ts;
	}
#ifdef __GLIBC__
	/*
	 * A long queue's state passed through our heap (about 200 kB with
	 * 1000 queued): give it back before a sleep that may last hours,
	 * so a waiter's footprint stays that of a small process.
	 */
	(void)malloc_trim(0);
#endif
	/* Only when the kernel would not let us watch everyone. */
	if (w->degraded && (tsp == NULL || ts.tv_sec >= 1)) {
		ts.tv_sec = 1;
		ts.tv_nsec = 0;
		tsp = &ts;
	}
	r = ppoll(w->fds, w->n, tsp, gw->sigmask);
	return r == -1 && errno != EINTR ? -1 : 0;
}

/* Wait in line; see gate_acquire. */
static int
acquire_wait(struct gate *g, const struct gate_req *req,
    const struct gate_wait *gw)
{
	struct rlimit saved;
	struct watch w;
	size_t pos, nq;
	int r;

	nofile_raise(&saved);
	for (;;) {
		if ((r = wait_check(g, req, &w, &pos, &nq)) != 0)
			break;
		if (gw->progress != NULL)
			gw->progress(gw->arg, pos + 1, nq);
		r = wait_sleep(gw, &w);
		watch_close(&w);
		if (r == -1)
			break;
		sock_drain(g);
		if (gw->stop != NULL && *gw->stop) {
			r = leave(g, NULL);
			if (r == 0) {
				errno = EINTR;
				r = -1;
			}
			break;
		}
		if (gw->deadline >= 0 && mono_ns() >= gw->deadline) {
			r = leave(g, req);
			break;
		}
	}
	if (saved.rlim_cur != RLIM_INFINITY)
		(void)setrlimit(RLIMIT_NOFILE, &saved);
	return r;
}

int
gate_acquire(struct gate *g, const struct gate_req *req,
    const struct gate_wait *gw)
{
	struct entry e;
	struct txn t;
	int r;

	if (g->slot != -1 || g->queued) {
		errno = EBUSY;
		return -1;
	}
	if (txn_begin(g, &t) == -1)
		return -1;
	if (promote(&t) == -1 || (r = take_now(g, &t, req)) == -1)
		goto fail;
	if (r == 0 && gw != NULL) {
		/* Only a waiter needs a wake socket: made here, not before. */
		if (sock_open(g) == -1 || self_entry(g, &t, req, &e) == -1)
			goto fail;
		if (state_add(&t.st.w, &t.st.nw, &e) == -1) {
			free(e.strs);
			goto fail;
		}
		g->queued = 1;
	}
	if (txn_commit(g, &t) == -1) {
		g->slot = -1;
		g->queued = 0;
		return -1;
	}
	if (r == 1 || gw == NULL)
		return r;
	return acquire_wait(g, req, gw);
fail:
	txn_abort(g, &t);
	return -1;
}

int
gate_slot(const struct gate *g)
{
	return g->slot;
}

int
gate_has_cmd(const struct gate *g)
{
	return g->slot != -1 && g->has_cmd;
}

void
gate_counts(const struct gate *g, size_t *active, unsigned *limit)
{
	*active = g->last_active;
	*limit = g->last_limit;
}

int
gate_set_cmd(struct gate *g, pid_t pid)
{
	struct entry *e;
	struct txn t;
	ssize_t i;
	int where;

	if (g->slot == -1 && !g->queued) {
		errno = EINVAL;
		return -1;
	}
	if (txn_begin(g, &t) == -1)
		return -1;
	where = find_self(g, &t.st, &i);
	e = where == 1 ? &t.st.h[i] : where == 0 ? &t.st.w[i] : NULL;
	if (e == NULL || proc_id(pid, &e->cmd) == -1) {
		txn_abort(g, &t);
		errno = ESRCH;
		return -1;
	}
	t.dirty = 1;
	/* A waiter's command rides along when it is promoted. */
	if (where == 1)
		g->has_cmd = 1;
	return txn_commit(g, &t);
}

int
gate_release(struct gate *g)
{
	struct txn t;
	ssize_t i;

	if (g->slot == -1)
		return 0;
	if (txn_begin(g, &t) == -1)
		return -1;
	if (find_self(g, &t.st, &i) == 1) {
		state_remove(t.st.h, &t.st.nh, (size_t)i);
		t.dirty = t.reaped_holder = 1;
	}
	if (promote(&t) == -1) {
		txn_abort(g, &t);
		return -1;
	}
	g->slot = -1;
	return txn_commit(g, &t);
}

void
gate_close(struct gate *g)
{
	if (g == NULL)
		return;
	if (g->slot != -1)
		(void)gate_release(g);
	else if (g->queued)
		(void)leave(g, NULL);
	(void)xclose(g->lockfd);
	(void)xclose(g->sock);
	(void)xclose(g->sendsock);
	if (g->dirfd != -1)
		(void)xclose(g->dirfd);
	free(g);
}

/* Copy one record out for status. */
static int
proc_copy(struct gate_proc *p, const struct entry *e)
{
	p->slot = e->slot;
	p->pid = e->cmd.pid;
	p->wrapper_pid = e->wrapper.pid;
	p->uid = e->uid;
	p->time_ns = e->time_ns;
	return state_entry_decode(e, &p->cwd, &p->command);
}

static int
slot_cmp(const void *a, const void *b)
{
	return ((const struct gate_proc *)a)->slot -
	    ((const struct gate_proc *)b)->slot;
}

void
gate_info_free(struct gate_info *gi)
{
	size_t i;

	for (i = 0; i < gi->nh; i++) {
		free(gi->h[i].cwd);
		free(gi->h[i].command);
	}
	for (i = 0; i < gi->nw; i++) {
		free(gi->w[i].cwd);
		free(gi->w[i].command);
	}
	free(gi->h);
	free(gi->w);
	memset(gi, 0, sizeof(*gi));
}

int
gate_info(struct gate *g, struct gate_info *gi)
{
	struct txn t;
	size_t i;
	int r;

	memset(gi, 0, sizeof(*gi));
	if ((r = txn_begin(g, &t)) == -1)
		return -1;
	if (r == 0) {
		reap_holders(&t);
		reap_waiters(&t);
		if (promote(&t) == -1)
			goto fail;
	}
	gi->exists = t.exists;
	gi->limit = t.st.limit;
	gi->acquired = t.st.acquired;
	gi->wait_ns = t.st.wait_ns;
	gi->h = calloc(t.st.nh + 1, sizeof(*gi->h));
	gi->w = calloc(t.st.nw + 1, sizeof(*gi->w));
	if (gi->h == NULL || gi->w == NULL)
		goto fail;
	for (; gi->nh < t.st.nh; gi->nh++)
		if (proc_copy(&gi->h[gi->nh], &t.st.h[gi->nh]) == -1)
			goto fail;
	for (i = 0; i < t.st.nw; i++, gi->nw++)
		if (proc_copy(&gi->w[i], &t.st.w[i]) == -1)
			goto fail;
	qsort(gi->h, gi->nh, sizeof(*gi->h), slot_cmp);
	if (txn_commit(g, &t) == -1) {
		gate_info_free(gi);
		return -1;
	}
	return 0;
fail:
	txn_abort(g, &t);
	gate_info_free(gi);
	return -1;
}

int
gate_set_limit(struct gate *g, unsigned limit, unsigned *old)
{
	struct txn t;

	if (limit > GATE_MAX_LIMIT) {
		errno = EINVAL;
		return -1;
	}
	if (txn_begin(g, &t) == -1)
		return -1;
	*old = t.st.limit;
	if (t.st.limit != limit) {
		t.st.limit = limit;
		t.dirty = 1;
	}
	if (promote(&t) == -1) {
		txn_abort(g, &t);
		return -1;
	}
	return txn_commit(g, &t);
}

int
gate_is_active(struct gate *g, pid_t pid)
{
	struct txn t;
	size_t i;
	int r, found = 0;

	if ((r = txn_begin(g, &t)) == -1)
		return -1;
	for (i = 0; i < t.st.nh && pid > 0; i++)
		if ((t.st.h[i].wrapper.pid == pid &&
		    proc_alive(&t.st.h[i].wrapper)) ||
		    (t.st.h[i].cmd.pid == pid && proc_alive(&t.st.h[i].cmd)))
			found = 1;
	if (r == 1) {
		state_free(&t.st);
		return 0;
	}
	if (promote(&t) == -1) {
		txn_abort(g, &t);
		return -1;
	}
	return txn_commit(g, &t) == -1 ? -1 : found;
}

/* A transaction that only reaps the dead and hands their slots on. */
static int
reap_now(struct gate *g)
{
	struct txn t;
	int r;

	if ((r = txn_begin(g, &t)) != 0)
		return r == 1 ? 0 : -1;
	reap_holders(&t);
	if (promote(&t) == -1) {
		txn_abort(g, &t);
		return -1;
	}
	return txn_commit(g, &t);
}

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

/*
 * The commands of the gate's holders and everything below them. A wrapper
 * is a child subreaper, so orphans of its command are still below it.
 */
static int
kill_targets(const struct plist *holders, size_t nh, struct plist *t)
{
	size_t i;

	for (i = 0; i < nh; i++) {
		const struct procid *w = &holders->id[2 * i];
		const struct procid *c = &holders->id[2 * i + 1];

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

/* The holders now: pairs (wrapper, command) in one list. */
static int
kill_holders(struct gate *g, struct plist *h, size_t *nh)
{
	struct txn t;
	size_t i;
	int r;

	memset(h, 0, sizeof(*h));
	*nh = 0;
	if ((r = txn_begin(g, &t)) == 1) {
		state_free(&t.st);
		return 0;
	}
	if (r == -1)
		return -1;
	h->cap = 2 * t.st.nh + 2;
	h->id = calloc(h->cap, sizeof(*h->id));
	h->fd = calloc(h->cap, sizeof(*h->fd));
	if (h->id == NULL || h->fd == NULL) {
		txn_abort(g, &t);
		plist_free(h);
		return -1;
	}
	for (i = 0; i < t.st.nh; i++) {
		h->id[2 * i] = t.st.h[i].wrapper;
		h->id[2 * i + 1] = t.st.h[i].cmd;
		h->fd[2 * i] = proc_pidfd_id(&t.st.h[i].wrapper);
		h->fd[2 * i + 1] = -1;
	}
	h->n = 2 * t.st.nh;
	*nh = t.st.nh;
	return txn_commit(g, &t);
}

int
gate_kill_all(struct gate *g, int sig, double grace, struct gate_kill **outp,
    size_t *np)
{
	struct plist h, tg;
	struct gate_kill *out;
	size_t nh, i, round;
	int64_t deadline;

	*outp = NULL;
	*np = 0;
	memset(&tg, 0, sizeof(tg));
	if (kill_holders(g, &h, &nh) == -1)
		return -1;
	if (kill_targets(&h, nh, &tg) == -1 ||
	    (out = calloc(tg.n + 1, sizeof(*out))) == NULL)
		goto fail;
	for (i = 0; i < tg.n; i++) {
		out[i].pid = tg.id[i].pid;
		if (tg.fd[i] == -1 || pidfd_signal(tg.fd[i], sig) == -1)
			out[i].error = tg.fd[i] == -1 ? ESRCH : errno;
	}
	*outp = out;
	*np = tg.n;
	deadline = mono_ns() + (int64_t)(grace * 1e9);
	/* The wrappers too: they release their slots as their commands die. */
	for (i = 0; i < h.n; i += 2)
		if (h.fd[i] != -1)
			(void)plist_add(&tg, &h.id[i]);
	wait_exit(&tg, deadline);
	/* What outlived the grace, and what it forked meanwhile: SIGKILL. */
	for (round = 0; round < 8; round++) {
		size_t before = tg.n, killed = 0;

		if (kill_targets(&h, nh, &tg) == -1)
			break;
		for (i = 0; i < tg.n; i++)
			if (tg.fd[i] != -1 && proc_alive(&tg.id[i]) &&
			    pidfd_signal(tg.fd[i], SIGKILL) == 0)
				killed++;
		if (killed == 0 && tg.n == before)
			break;
		wait_exit(&tg, mono_ns() + 1000000000);
	}
	plist_free(&h);
	plist_free(&tg);
	/* Reap what died, so the slots are free when we return. */
	return reap_now(g);
fail:
	plist_free(&h);
	plist_free(&tg);
	return -1;
}
