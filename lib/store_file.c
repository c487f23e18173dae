/*
 * The file store: one state file per gate in a directory of this host.
 *
 * Locking protocol. DIR/NAME.lock is an empty file that is only ever
 * flock(2)ed, never renamed or written. Every change is one transaction
 * under that lock: lock -> read DIR/NAME.gate -> validate -> (the policy
 * changes it) -> wake -> write DIR/.NAME.new and exchange it with
 * DIR/NAME.gate (swap_in) -> unlock. The lock is held for microseconds,
 * never across fork, exec or a wait. Because the new state is swapped
 * into place whole, a writer SIGKILLed mid-write or a full disk leaves the
 * old state whole; the lock file, not the state file, carries the lock, so
 * the exchange never swaps the inode under a lock holder.
 *
 * Reads take no lock (file_snapshot): a state file is only ever replaced
 * whole, so the one a reader opens is whole, and a reader never opens the
 * lock file, so whoever may read the files may look at the gate. A writer
 * waits for the lock as set_wait said (until a deadline, or a signal: a
 * process stopped while it holds the lock would keep everyone out), and a
 * wait that lasts names the holder, found in /proc/locks.
 *
 * Wake-ups are sent before the new state is written and the lock
 * released, so a woken waiter always reads a state at least as new as the
 * one that woke it, and a waker killed between the two only causes a
 * spurious wake. A holder's wake-ups (wake_late: a release hands its slot
 * on) are sent after the new state is in place, so the waiter it promoted
 * reads its slot without the lock and starts; a holder killed before it
 * sends is seen to die by that waiter, which watches it. Records from
 * another boot are dropped; a damaged file is moved aside and the records
 * that still parse are written back at once.
 *
 * PID namespaces. A record names processes by PID, which means something
 * only in the PID namespace of the process that wrote it. The file is
 * framed by a first line "pidns N" (before the state text state.c reads)
 * naming the namespace whose PIDs its records are: a process of another
 * namespace is refused (PROC_EPIDNS) while the gate has records, lest it
 * take a live holder for dead. The records of a namespace that has ended
 * are dropped, when a process that sees every process (the initial
 * namespace's, able to inspect them all) finds none left in it.
 *
 * Network namespaces. Wake-ups are FIFOs in the gate's directory (see
 * wake.c), which a waker opens by name from any network namespace that
 * shares the directory.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "locate.h"
#include "store.h"
#include "sys.h"
#include "wake.h"

#define SUFFIX		".gate"
#define SUFFIX_LEN	5
#define SALVAGE_MAX_BYTES (1ull << 30)	/* of an oversized file, read no more */
#define SIEVE_CHUNK	(1u << 16)
#define SEC		1000000000LL
#define NS_TAG		"pidns "
#define NS_TAG_LEN	6
#define FRAME_MAX	(NS_TAG_LEN + 21)	/* "pidns N\n" at its longest */
/* The initial PID namespace's inode: PROC_PID_INIT_INO, linux/proc_ns.h. */
#define PIDNS_INIT	0xEFFFFFFCULL

struct fstore {
	struct store	base;
	int		dirfd;		/* -1: the directory does not exist */
	int		lockfd;		/* -1 until first needed */
	int		create;
	unsigned	deflimit;
	char		name[GATE_NAME_MAX + 1];
	char		lockname[GATE_NAME_MAX + 8];
	char		statename[GATE_NAME_MAX + 8];
	char		tmpname[GATE_NAME_MAX + 8];
	mode_t		mode;		/* for files created */
	int		shared;		/* a group-writable gate directory */
	int		root;		/* root outside any user namespace */
	gid_t		gid;		/* its group */
	uid_t		uid;
	uint64_t	dirkey[2];	/* the directory's device and inode */
	char		boot[40];
	unsigned long long pidns;	/* ours: /proc/self/ns/pid's inode */
	unsigned long long seen_ns;	/* the one the file read names, or 0 */
	int		moved;		/* the last load moved one aside */
	struct wake	wake;
	gate_notify_fn	*notify;
	void		*notify_arg;
	struct gate_wait wait;		/* how to wait for the lock */
	int		waitset;	/* 0: block until it comes */
	int64_t		say_at;		/* ns waited at which to name its holder */
};

static int	save(struct fstore *, const struct state *);

/* Tell the caller something a person should know. */
static void
say(struct fstore *f, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (f->notify == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	f->notify(f->notify_arg, buf);
}

/*
 * Files and directories we trust. The directory: not a symlink (O_NOFOLLOW
 * did that), owned by us or root, writable by others only with the sticky
 * bit; group-writable with the set-group-ID bit makes it a shared gate
 * directory, whose members are all trusted with its gates. A file: not a
 * symlink, not writable by others, owned by us, by root, or, in a shared
 * directory, by a member (its group is the directory's). Root never
 * follows a link a member planted (O_NOFOLLOW), never writes into an
 * existing file (new state is a new file, O_EXCL) and only flocks the
 * lock file.
 */
static int
trusted(struct fstore *f, int fd, mode_t type, struct stat *sbp)
{
	struct stat own, *sb = sbp != NULL ? sbp : &own;
	int ours;

	if (fstat(fd, sb) == -1)
		return -1;
	if ((sb->st_mode & S_IFMT) != type) {
		/* EMEDIUMTYPE: gate_strerror says what stands there. */
		errno = type == S_IFDIR ? ENOTDIR : EMEDIUMTYPE;
		return -1;
	}
	ours = sb->st_uid == f->uid || sb->st_uid == 0;
	if (type == S_IFDIR) {
		/*
		 * Group-writable only as a shared gate directory, marked so by
		 * its set-group-ID bit (2770); by mistake (0775) it is refused.
		 */
		if (!ours || (sb->st_mode & S_IWOTH && !(sb->st_mode & S_ISVTX)) ||
		    (sb->st_mode & S_IWGRP && !(sb->st_mode & (S_ISGID | S_ISVTX))))
			goto refuse;
		f->shared = (sb->st_mode & S_IWGRP) != 0;
		f->gid = sb->st_gid;
		return 0;
	}
	if (sb->st_mode & S_IWOTH)
		goto refuse;
	if (f->shared ? !ours && sb->st_gid != f->gid :
	    !ours || (sb->st_uid != f->uid && sb->st_mode & S_IWGRP))
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
share_file(const struct fstore *f, int fd)
{
	struct stat sb;

	if (!f->shared || fstat(fd, &sb) == -1 || sb.st_uid != f->uid)
		return;		/* a member's file is the member's business */
	/* Fails only for a caller outside the group: then nobody shares. */
	if (fchown(fd, (uid_t)-1, f->gid) == 0)
		(void)fchmod(fd, 0660);
}

/* 1 if path itself is a symbolic link. */
static int
is_symlink(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

/* Open (with create, make) the directory; dirfd -1 if absent. 0 or -1. */
static int
dir_open(struct fstore *f, const char *dir)
{
	struct stat sb;
	int fd;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && errno == ENOENT && f->create) {
		/* First use, or /run was emptied by a reboot. */
		if (mkdir(dir, f->root ? 0755 : 0700) == -1 &&
		    errno != EEXIST)
			return -1;
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd == -1) {
		if (errno == ENOENT && !f->create) {
			f->dirfd = -1;	/* never used: status shows defaults */
			return 0;
		}
		if (errno == ENOTDIR && is_symlink(dir))
			errno = ELOOP;	/* a symlink where the directory is */
		return -1;
	}
	f->dirfd = fd;
	if (trusted(f, fd, S_IFDIR, &sb) == -1) {
		(void)xclose(fd);
		f->dirfd = -1;
		return -1;
	}
	f->dirkey[0] = (uint64_t)sb.st_dev;
	f->dirkey[1] = (uint64_t)sb.st_ino;
	return 0;
}

/* The waker's key: the directory's device and inode, and the gate. */
static void
key_init(struct fstore *f)
{
	wake_init(&f->wake, f->dirkey, sizeof(f->dirkey), f->name);
	wake_dir(&f->wake, f->dirfd, f->mode);
}

/* Our PID namespace's inode, or 0 if /proc cannot say. */
static unsigned long long
pidns_self(void)
{
	struct stat sb;

	return stat("/proc/self/ns/pid", &sb) == 0 ?
	    (unsigned long long)sb.st_ino : 0;
}

/*
 * 1 if process pid (a name in /proc) is in the initial PID namespace, as
 * its status says to anyone (one PID in "NSpid:", linux/fs/proc/array.c);
 * 0 if in another or gone meanwhile.
 */
static int
in_init_pidns(const char *pid)
{
	char path[300], line[256], *p, *end;
	int k = 0;
	FILE *fp;

	(void)snprintf(path, sizeof(path), "/proc/%s/status", pid);
	if ((fp = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, "NSpid:", 6) == 0) {
			for (p = line + 6; (void)strtol(p, &end, 10), end != p;
			    p = end)
				k++;
			break;
		}
	(void)fclose(fp);
	return k == 1;
}

/*
 * 1 if PID namespace ns has ended: we are in the initial one, whose /proc
 * shows every process, and none of them is in ns. 0 when it lives or we
 * cannot tell (a process we may not inspect, or we see only our own
 * namespace's).
 */
static int
pidns_gone(const struct fstore *f, unsigned long long ns)
{
	struct dirent *de;
	char path[sizeof(de->d_name) + 16];
	struct stat sb;
	int gone = 1;
	DIR *d;

	if (f->pidns != PIDNS_INIT || proc_trusted() != 1 ||
	    (d = opendir("/proc")) == NULL)
		return 0;
	while (gone && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		(void)snprintf(path, sizeof(path), "/proc/%s/ns/pid",
		    de->d_name);
		if (stat(path, &sb) == 0)
			gone = (unsigned long long)sb.st_ino != ns;
		else if (errno != ENOENT && errno != ESRCH)
			gone = in_init_pidns(de->d_name); /* may not look */
	}
	(void)closedir(d);
	return gone;
}

/*
 * The framing line "pidns N\n" at the head of a state file: its length
 * (0 if there is none: an older file, whose records are taken as ours),
 * N in f->seen_ns.
 */
static size_t
frame_read(struct fstore *f, const char *buf, size_t len)
{
	unsigned long long v = 0;
	size_t i;

	f->seen_ns = 0;
	if (len < NS_TAG_LEN || memcmp(buf, NS_TAG, NS_TAG_LEN) != 0)
		return 0;
	for (i = NS_TAG_LEN; i < len && i < NS_TAG_LEN + 20 &&
	    buf[i] >= '0' && buf[i] <= '9'; i++)
		v = v * 10 + (unsigned long long)(buf[i] - '0');
	if (i == NS_TAG_LEN || i == len || buf[i] != '\n')
		return 0;	/* damaged: the state text says how much */
	f->seen_ns = v;
	return i + 1;
}

/*
 * Records of another PID namespace: refused (PROC_EPIDNS) while that
 * namespace lives, dropped once it has ended. 0 or -1.
 */
static int
pidns_check(struct fstore *f, struct store_txn *t, int writer)
{
	if (f->seen_ns == 0 || f->seen_ns == f->pidns ||
	    (t->st.nh == 0 && t->st.nw == 0))
		return 0;
	if (!pidns_gone(f, f->seen_ns)) {
		errno = PROC_EPIDNS;
		return -1;
	}
	if (writer)
		say(f, "gate '%s': its records were written in PID namespace "
		    "%llu, which has ended: dropped", f->name, f->seen_ns);
	while (t->st.nh > 0)
		state_remove(t->st.h, &t->st.nh, t->st.nh - 1);
	while (t->st.nw > 0)
		state_remove(t->st.w, &t->st.nw, t->st.nw - 1);
	t->dirty = t->lost = 1;
	return 0;
}

static int
file_open(struct store **sp, const char *dir, const char *name,
    unsigned deflimit, int create, gate_notify_fn *fn, void *arg)
{
	struct fstore *f;
	uid_t outer;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	f->base.ops = &store_file_ops;
	f->lockfd = -1;
	f->pidns = pidns_self();
	f->create = create;
	f->deflimit = deflimit;
	f->notify = fn;
	f->notify_arg = arg;
	f->uid = geteuid();
	/*
	 * Root's files are for everyone to read; but "root" in a user
	 * namespace (unshare -r) is a user like any other outside it.
	 */
	f->root = locate_real_uid(&outer) == 0 ? outer == 0 : f->uid == 0;
	f->mode = f->root ? 0644 : 0600;
	(void)strlcpy(f->name, name, sizeof(f->name));
	(void)snprintf(f->lockname, sizeof(f->lockname), "%s.lock", name);
	(void)snprintf(f->statename, sizeof(f->statename), "%s" SUFFIX, name);
	(void)snprintf(f->tmpname, sizeof(f->tmpname), ".%s.new", name);
	if (proc_bootid(f->boot, sizeof(f->boot)) == -1 ||
	    dir_open(f, dir) == -1) {
		free(f);
		return -1;
	}
	key_init(f);
	*sp = &f->base;
	return 0;
}

static void
file_close(struct store *s)
{
	struct fstore *f = (struct fstore *)s;

	(void)xclose(f->lockfd);
	(void)xclose(f->dirfd);
	wake_close(&f->wake);
	free(f);
}

/* Open (maybe create) and check the lock file; 0, or -1 (ENOENT: none). */
static int
lockfile_open(struct fstore *f)
{
	int fd, flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC;

	if (f->lockfd != -1)
		return 0;
	if (f->dirfd == -1) {
		errno = ENOENT;
		return -1;
	}
	if (f->create)
		flags |= O_CREAT;
	if ((fd = openat(f->dirfd, f->lockname, flags, f->mode)) == -1)
		return -1;
	if (trusted(f, fd, S_IFREG, NULL) == -1) {
		(void)xclose(fd);
		return -1;
	}
	share_file(f, fd);
	f->lockfd = fd;
	return 0;
}

/* Move a damaged state file aside, keeping it for a person to look at. */
static void
move_aside(struct fstore *f, const char *why)
{
	char aside[GATE_NAME_MAX + 48], stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	(void)strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ",
	    gmtime_r(&now, &tm));
	(void)snprintf(aside, sizeof(aside), "%s.corrupt-%s.%d", f->name,
	    stamp, (int)getpid());
	if (renameat(f->dirfd, f->statename, f->dirfd, aside) == -1)
		say(f, "state file %s is damaged (%s) and could not be "
		    "moved aside: %s; starting it afresh", f->statename, why,
		    strerror(errno));
	else
		say(f, "state file %s is damaged (%s): moved aside to %s; "
		    "commands still running were kept", f->statename, why,
		    aside);
}

/*
 * A damaged state (why): a writer moves it aside, a reader only says so;
 * both go on with what salvage keeps of buf.
 */
static int
salvage(struct fstore *f, struct store_txn *t, const char *buf, size_t len,
    const char *why, int writer)
{
	if (writer) {
		move_aside(f, why);
		f->moved = 1;
	} else
		say(f, "state file %s is damaged (%s): shown as far as it can "
		    "be read, until the next change moves it aside",
		    f->statename, why);
	if (state_parse(buf, len, &t->st, 1, &why) == -1)
		return -1;	/* out of memory: salvage never fails else */
	t->lost = t->dirty = 1;
	return 0;
}

/* Parse buf; a damaged one is salvaged. */
static int
parse_or_salvage(struct fstore *f, struct store_txn *t, const char *buf,
    size_t len, int writer)
{
	const char *why;

	if (state_parse(buf, len, &t->st, 0, &why) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	return salvage(f, t, buf, len, why, writer);
}

/*
 * Keep line (len bytes at buf + start) of an oversized file if it fits
 * its share: the header and holders all of STATE_MAX_BYTES, the waiters
 * the first half, so that holders written after them still find room.
 */
static int
sieve_keeps(const char *buf, size_t start, size_t len)
{
	switch (state_line_weight(buf + start, len - start)) {
	case 2:
		return 1;
	case 1:
		return len < STATE_MAX_BYTES / 2;
	default:
		return 0;
	}
}

/*
 * A state file larger than reading accepts (an older gaterun's, or forged):
 * read it anyway, up to SALVAGE_MAX_BYTES, line by line, into a buffer of
 * at most STATE_MAX_BYTES keeping what matters most (sieve_keeps); lines
 * too long for any record are dropped. *bufp as read_fd_all gives it.
 */
static int
read_sieved(int fd, char **bufp, size_t *lenp)
{
	size_t len = 0, start = 0, piece, total = 0;
	char *buf, *chunk, *p, *end, *nl;
	int skip = 0;
	ssize_t n;

	if (lseek(fd, 0, SEEK_SET) == -1 ||
	    (buf = malloc(STATE_MAX_BYTES + 1 + SIEVE_CHUNK)) == NULL)
		return -1;
	chunk = buf + STATE_MAX_BYTES + 1;
	while (total < SALVAGE_MAX_BYTES &&
	    (n = read_full(fd, chunk, SIEVE_CHUNK)) > 0) {
		total += (size_t)n;
		for (p = chunk, end = chunk + n; p < end; p += piece + 1) {
			nl = memchr(p, '\n', (size_t)(end - p));
			piece = (size_t)((nl != NULL ? nl : end) - p);
			if (!skip && (len - start + piece > STATE_READ_LINE_MAX ||
			    len + piece + 1 > STATE_MAX_BYTES)) {
				skip = 1;	/* too long: up to its end */
				len = start;
			}
			if (!skip) {
				memcpy(buf + len, p, piece);
				len += piece;
			}
			if (nl == NULL)
				break;
			if (!skip && sieve_keeps(buf, start, len))
				buf[len++] = '\n';
			else
				len = start;
			start = len;
			skip = 0;
		}
	}
	if (n == -1) {
		free(buf);
		return -1;
	}
	buf[start] = '\0';		/* a last line never ended is dropped */
	*bufp = buf;
	*lenp = start;
	return 0;
}

/*
 * Read the state (fresh if there is none): a writer with the lock held, a
 * reader without (the file is only ever replaced whole, by rename).
 */
static int
load(struct fstore *f, struct store_txn *t, int writer)
{
	struct stat sb;
	size_t len, skip;
	char *buf;
	int fd, r;

	f->seen_ns = 0;
	f->moved = 0;
	/*
	 * O_NONBLOCK: a FIFO put in its place would block the open itself,
	 * lock held, before trusted() could refuse it.
	 */
	fd = openat(f->dirfd, f->statename, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_CLOEXEC);
	if (fd == -1 && errno != ENOENT)
		return -1;	/* ELOOP: a symlink is refused, never followed */
	if (fd == -1) {
		/* New, or removed (/run emptied): waiters may be out there. */
		t->lost = 1;
		return 0;
	}
	if (trusted(f, fd, S_IFREG, &sb) == -1) {
		(void)xclose(fd);
		return -1;
	}
	r = read_fd_all(fd, sb.st_size, STATE_MAX_BYTES + FRAME_MAX, &buf,
	    &len);
	if (r == -1 && errno == EFBIG) {
		/* Keep its live holders and its limit all the same. */
		if ((r = read_sieved(fd, &buf, &len)) == 0) {
			r = salvage(f, t, buf, len, "larger than any real gate",
			    writer);
			free(buf);
		}
		(void)xclose(fd);
		return r;
	}
	(void)xclose(fd);
	if (r == -1)
		return -1;
	skip = frame_read(f, buf, len);
	r = parse_or_salvage(f, t, buf + skip, len - skip, writer);
	free(buf);
	return r;
}

/* Defaults for what the file did not say; forget a former boot. */
static void
settle(struct fstore *f, struct store_txn *t)
{
	if (t->st.limit == UINT_MAX)
		t->st.limit = f->deflimit;	/* nothing said it */
	if (t->st.boot[0] == '\0')
		memcpy(t->st.boot, f->boot, sizeof(f->boot));
	if (strcmp(t->st.boot, f->boot) != 0) {
		/* Written before a reboot: nobody in it is alive. */
		while (t->st.nh > 0)
			state_remove(t->st.h, &t->st.nh, t->st.nh - 1);
		while (t->st.nw > 0)
			state_remove(t->st.w, &t->st.nw, t->st.nw - 1);
		memcpy(t->st.boot, f->boot, sizeof(f->boot));
		t->dirty = 1;
	}
}

/*
 * Who holds the lock file's flock: /proc/locks lists flock(2) locks with
 * the PID that took them and the file's device and inode. 0 if not found
 * (released meanwhile, or taken in another PID namespace).
 */
static pid_t
lock_holder(int fd)
{
	unsigned maj, min;
	unsigned long long ino;
	char line[256], kind[16];
	struct stat sb;
	pid_t pid = 0;
	FILE *fp;
	int p;

	if (fstat(fd, &sb) == -1 || (fp = fopen("/proc/locks", "re")) == NULL)
		return 0;
	/* "1: FLOCK  ADVISORY  WRITE 4242 00:2d:1234 0 EOF"; "->" waits. */
	while (pid == 0 && fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", kind, &p,
		    &maj, &min, &ino) == 5 && strcmp(kind, "FLOCK") == 0 &&
		    maj == major(sb.st_dev) && min == minor(sb.st_dev) &&
		    ino == (unsigned long long)sb.st_ino && p > 0)
			pid = p;
	(void)fclose(fp);
	return pid;
}

/* "PID 42 (gaterun, stopped)": what /proc/PID/stat says of pid. */
static void
holder_name(pid_t pid, char *buf, size_t len)
{
	char path[32], text[512], *lp, *rp;
	const char *what;
	ssize_t n = -1;
	int fd;

	(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1)
		n = read_full(fd, text, sizeof(text) - 1);
	(void)xclose(fd);
	text[n > 0 ? n : 0] = '\0';
	lp = strchr(text, '(');
	rp = strrchr(text, ')');
	if (lp == NULL || rp == NULL || rp < lp || rp[1] != ' ') {
		(void)snprintf(buf, len, "PID %d", (int)pid);
		return;
	}
	switch (rp[2]) {
	case 'T':
		what = "stopped";
		break;
	case 't':
		what = "stopped by a tracer";
		break;
	case 'R':
		what = "running";
		break;
	case 'D':
		what = "in uninterruptible sleep";
		break;
	default:
		what = "sleeping";
		break;
	}
	*rp = '\0';
	(void)snprintf(buf, len, "PID %d (%s, %s)", (int)pid, lp + 1, what);
}

/* Name the process that keeps the lock, and for how long. */
static void
say_held(struct fstore *f, int64_t waited)
{
	char who[96];
	pid_t pid;

	if ((pid = lock_holder(f->lockfd)) > 0)
		holder_name(pid, who, sizeof(who));
	else
		(void)strlcpy(who, "another process", sizeof(who));
	/*
	 * Whole seconds from half a second: a bounded wait's second began
	 * before the fork of the command, so it may end here a little short.
	 */
	say(f, "gate '%s' locked by %s for %.*f s", f->name, who,
	    waited < SEC / 2 ? 1 : 0, (double)waited / SEC);
}

/* A tick of a long lock wait: speak at 1, 2, 4... s, then each minute. */
static void
on_lock_tick(void *arg, int64_t waited)
{
	struct fstore *f = arg;

	if (waited < f->say_at)
		return;
	say_held(f, waited);
	f->say_at = f->say_at < 32 * SEC ? f->say_at * 2 : f->say_at + 60 * SEC;
}

/*
 * Take the lock, waiting as set_wait said: until the deadline (ENOLCK),
 * or until told to stop (EINTR). A wait that begins told to stop or past
 * its deadline (a wrapper giving its slot back after a SIGTERM, leaving
 * the line when -w ran out) still gives the lock a second: it is held for
 * microseconds. A wait that lasts names the holder (it may be stopped).
 */
static int
lock_gate(struct fstore *f)
{
	struct lock_wait lw;
	int64_t t0;

	if (!f->waitset)
		return lock_fd(f->lockfd);
	t0 = mono_ns();
	memset(&lw, 0, sizeof(lw));
	lw.deadline = f->wait.deadline;
	lw.sigmask = f->wait.sigmask;
	lw.stop = f->wait.stop;
	if ((lw.stop != NULL && *lw.stop) ||
	    (lw.deadline >= 0 && lw.deadline <= t0)) {
		lw.stop = NULL;
		lw.deadline = t0 + SEC;
	}
	lw.tick = SEC;
	lw.fn = on_lock_tick;
	lw.arg = f;
	f->say_at = SEC;
	if (lock_wait(f->lockfd, &lw) == 0)
		return 0;
	if (errno == ETIMEDOUT) {
		say_held(f, mono_ns() - t0);
		errno = ENOLCK;
	}
	return -1;
}

static int
file_begin(struct store *s, struct store_txn *t)
{
	struct fstore *f = (struct fstore *)s;

	memset(t, 0, sizeof(*t));
	t->st.limit = UINT_MAX;		/* "not read" until load says */
	if (lockfile_open(f) == -1) {
		if (errno != ENOENT || f->create)
			return -1;
		t->st.limit = f->deflimit;
		return 0;
	}
	t->exists = 1;
	if (lock_gate(f) == -1)
		return -1;
	if (load(f, t, 1) == -1) {
		(void)flock(f->lockfd, LOCK_UN);
		state_free(&t->st);
		return -1;
	}
	settle(f, t);
	/*
	 * A damaged file was moved aside: what salvage kept goes in its place
	 * now, or a transaction that is then aborted (a request refused)
	 * would leave no state at all, and the running holders forgotten.
	 */
	if (f->moved && save(f, &t->st) == -1) {
		(void)flock(f->lockfd, LOCK_UN);
		state_free(&t->st);
		return -1;
	}
	if (pidns_check(f, t, 1) == -1) {
		(void)flock(f->lockfd, LOCK_UN);
		state_free(&t->st);
		return -1;
	}
	return 0;
}

/*
 * Put the new file in place of the state file, atomically: exchanged
 * with it (renameat2 RENAME_EXCHANGE), then the old one removed. A plain
 * rename over an existing file on ext4 writes the new file's data out
 * first (auto_da_alloc, ext4(5)): about 2 ms a change on this machine's
 * disk, against 0.04 ms on tmpfs; an exchange is not a replace and is
 * not flushed. Where there is no state file yet, or the filesystem
 * cannot exchange, a rename. 0 or -1.
 */
static int
swap_in(struct fstore *f)
{
	if (renameat2(f->dirfd, f->tmpname, f->dirfd, f->statename,
	    RENAME_EXCHANGE) == 0) {
		(void)unlinkat(f->dirfd, f->tmpname, 0);
		return 0;
	}
	if (errno != ENOENT && errno != EINVAL && errno != ENOSYS &&
	    errno != EOPNOTSUPP)
		return -1;
	return renameat(f->dirfd, f->tmpname, f->dirfd, f->statename);
}

/*
 * Create the new state file; a leftover of a writer that died (the lock
 * is ours, so nobody else's) is removed and the create tried once more.
 * The fd or -1.
 */
static int
open_new(struct fstore *f)
{
	int fd, tries = 0;

	do {
		fd = openat(f->dirfd, f->tmpname, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, f->mode);
	} while (fd == -1 && errno == EEXIST && tries++ == 0 &&
	    unlinkat(f->dirfd, f->tmpname, 0) == 0);
	return fd;
}

/*
 * Write st, framed by our PID namespace, to a new file and rename it into
 * place. Lock held.
 */
static int
save(struct fstore *f, const struct state *st)
{
	char head[NS_TAG_LEN + 24];
	size_t len;
	char *buf;
	int fd, r;

	if (state_format(st, &buf, &len) == -1)
		return -1;
	if (len > STATE_MAX_BYTES) {
		/* Never write what reading would refuse (state.h: never). */
		free(buf);
		errno = EFBIG;
		return -1;
	}
	if ((fd = open_new(f)) == -1) {
		free(buf);
		return -1;
	}
	share_file(f, fd);
	(void)snprintf(head, sizeof(head), NS_TAG "%llu\n", f->pidns);
	r = write_two(fd, head, strlen(head), buf, len);
	free(buf);
	if (close(fd) == -1)
		r = -1;
	if (r == 0 && swap_in(f) == -1)
		r = -1;
	if (r == -1)
		(void)unlinkat(f->dirfd, f->tmpname, 0);
	return r;
}

static int
file_commit(struct store *s, struct store_txn *t, const store_addr *wakes,
    size_t n)
{
	struct fstore *f = (struct fstore *)s;
	size_t i;
	int r = 0;

	if (!t->exists) {
		state_free(&t->st);
		return 0;
	}
	if (t->wake_late && t->dirty && save(f, &t->st) == -1)
		r = -1;
	if (t->lost)
		wake_lost(&f->wake);
	for (i = 0; i < n; i++)
		wake_send(&f->wake, wakes[i]);
	if (!t->wake_late && t->dirty && save(f, &t->st) == -1)
		r = -1;
	(void)flock(f->lockfd, LOCK_UN);
	state_free(&t->st);
	return r;
}

static void
file_abort(struct store *s, struct store_txn *t)
{
	struct fstore *f = (struct fstore *)s;

	if (t->exists)
		(void)flock(f->lockfd, LOCK_UN);
	state_free(&t->st);
}

/*
 * No lock: a state file is only ever replaced whole by rename, so the one
 * opened is whole, and who may read the files may look (the lock file is
 * not even opened). Damage is salvaged in memory, and said.
 */
static int
file_snapshot(struct store *s, struct store_txn *t)
{
	struct fstore *f = (struct fstore *)s;
	struct stat sb;

	memset(t, 0, sizeof(*t));
	t->st.limit = UINT_MAX;
	if (f->dirfd == -1 || fstatat(f->dirfd, f->lockname, &sb,
	    AT_SYMLINK_NOFOLLOW) == -1) {
		if (f->dirfd != -1 && errno != ENOENT)
			return -1;
		t->st.limit = f->deflimit;	/* never made */
		return 0;
	}
	t->exists = 1;
	if (load(f, t, 0) == -1) {
		state_free(&t->st);
		return -1;
	}
	settle(f, t);
	if (pidns_check(f, t, 0) == -1) {
		state_free(&t->st);
		return -1;
	}
	return 0;
}

static void
file_set_wait(struct store *s, const struct gate_wait *w)
{
	struct fstore *f = (struct fstore *)s;

	if ((f->waitset = w != NULL))
		f->wait = *w;
}

static int
file_alive(struct store *s, const struct procid *id)
{
	(void)s;
	return proc_alive(id);
}

static int
file_watch(struct store *s, const struct procid *id)
{
	(void)s;
	return proc_pidfd_id(id);
}

static int
file_listen(struct store *s, store_addr addr)
{
	struct fstore *f = (struct fstore *)s;
	int fd;

	if ((fd = wake_listen(&f->wake)) != -1) {
		share_file(f, fd);
		(void)strlcpy(addr, f->wake.addr, sizeof(store_addr));
	}
	return fd;
}

static void
file_drain(struct store *s)
{
	wake_drain(&((struct fstore *)s)->wake);
}

static void
file_unlisten(struct store *s)
{
	wake_unlisten(&((struct fstore *)s)->wake);
}

/*
 * A dead waiter's FIFO: a wake-up removes it if nobody reads it (so a
 * waiter wrongly taken for dead loses nothing but gets a spurious wake).
 */
static void
file_forget(struct store *s, const char *addr)
{
	wake_send(&((struct fstore *)s)->wake, addr);
}

/* A directory made now for a group: 2770, the mark of a shared one. */
static int
file_share(const char *dir, gid_t gid)
{
	if (mkdir(dir, 0700) == -1)
		return errno == EEXIST ? 0 : -1;
	if (chown(dir, (uid_t)-1, gid) == -1 || chmod(dir, 02770) == -1)
		return -1;
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every NAME.gate in dir whose NAME is a valid gate name. */
static int
file_list(const char *dir, char ***outp, size_t *np)
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
		if (len <= SUFFIX_LEN ||
		    strcmp(de->d_name + len - SUFFIX_LEN, SUFFIX) != 0 ||
		    (name = strndup(de->d_name, len - SUFFIX_LEN)) == NULL)
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
	if (n > 0)		/* v is NULL then: qsort wants an array */
		qsort(v, n, sizeof(*v), name_cmp);
	*outp = v;
	*np = n;
	return 0;
}

/*
 * Watching a directory of gates: inotify on the directory and, while it
 * does not exist, on its parent, for it to be made.
 */
struct fwatch {
	int	fd;
	int	wd, pwd;		/* directory's and parent's, or -1 */
	char	dir[PATH_MAX];
	char	parent[PATH_MAX];
};

/*
 * Watch the directory, or else its parent for it to be made; 1 if the
 * directory is watched from now on (it may be new: anything changed).
 */
static int
watch_arm(struct fwatch *w)
{
	int tries;

	if (w->wd != -1)
		return 0;
	for (tries = 0; tries < 2; tries++) {
		w->wd = inotify_add_watch(w->fd, w->dir, IN_ONLYDIR |
		    IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
		    IN_DELETE_SELF | IN_MOVE_SELF);
		if (w->wd != -1) {
			if (w->pwd != -1)
				(void)inotify_rm_watch(w->fd, w->pwd);
			w->pwd = -1;
			return 1;
		}
		if (w->pwd != -1)
			break;
		/* Then look again: it may have been made meanwhile. */
		w->pwd = inotify_add_watch(w->fd, w->parent, IN_ONLYDIR |
		    IN_CREATE | IN_MOVED_TO);
	}
	return 0;
}

static int
file_watch_open(const char *dir, void **wp)
{
	struct fwatch *w;
	char *slash;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->wd = w->pwd = -1;
	(void)strlcpy(w->dir, dir, sizeof(w->dir));
	(void)strlcpy(w->parent, dir, sizeof(w->parent));
	if ((slash = strrchr(w->parent, '/')) != NULL && slash != w->parent)
		*slash = '\0';
	else if (slash != NULL)
		slash[1] = '\0';
	if ((w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) == -1) {
		free(w);
		return -1;
	}
	(void)watch_arm(w);
	if (w->wd == -1 && w->pwd == -1) {
		(void)xclose(w->fd);
		free(w);
		return -1;
	}
	*wp = w;
	return 0;
}

static int
file_watch_fd(void *p)
{
	return ((struct fwatch *)p)->fd;
}

/* One inotify event: which gate changed, or all (NULL). */
static void
watch_event(struct fwatch *w, const struct inotify_event *ev,
    void (*fn)(void *, const char *), void *arg)
{
	char name[GATE_NAME_MAX + 1];
	size_t len;

	if (ev->wd != w->wd || w->wd == -1)
		return;		/* the parent: looked at after the batch */
	if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (!(ev->mask & IN_IGNORED))
			(void)inotify_rm_watch(w->fd, w->wd);
		w->wd = -1;	/* gone: wait for it again */
		fn(arg, NULL);
		return;
	}
	len = ev->len > 0 ? strlen(ev->name) : 0;
	if (len > SUFFIX_LEN && len - SUFFIX_LEN <= GATE_NAME_MAX &&
	    strcmp(ev->name + len - SUFFIX_LEN, SUFFIX) == 0) {
		memcpy(name, ev->name, len - SUFFIX_LEN);
		name[len - SUFFIX_LEN] = '\0';
		if (gate_name_valid(name))
			fn(arg, name);
	}
}

static int
file_watch_read(void *p, void (*fn)(void *, const char *), void *arg)
{
	char buf[8192] __attribute__((__aligned__(8)));
	const struct inotify_event *ev;
	struct fwatch *w = p;
	ssize_t n, off;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0)
		for (off = 0; off < n; off += (ssize_t)(sizeof(*ev) +
		    ev->len)) {
			ev = (const struct inotify_event *)(buf + off);
			watch_event(w, ev, fn, arg);
		}
	if (n == -1 && errno != EAGAIN && errno != EINTR)
		return -1;
	if (watch_arm(w) == 1)
		fn(arg, NULL);		/* made meanwhile: anything changed */
	return 0;
}

static void
file_watch_close(void *p)
{
	struct fwatch *w = p;

	if (w == NULL)
		return;
	(void)xclose(w->fd);
	free(w);
}

const struct store_ops store_file_ops = {
	.scheme = "file",
	.open = file_open,
	.close = file_close,
	.begin = file_begin,
	.commit = file_commit,
	.abort = file_abort,
	.snapshot = file_snapshot,
	.set_wait = file_set_wait,
	.alive = file_alive,
	.watch = file_watch,
	.listen = file_listen,
	.drain = file_drain,
	.unlisten = file_unlisten,
	.forget = file_forget,
	.share = file_share,
	.list = file_list,
	.watch_open = file_watch_open,
	.watch_fd = file_watch_fd,
	.watch_read = file_watch_read,
	.watch_close = file_watch_close,
};
