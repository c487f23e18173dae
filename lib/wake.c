/*
 * Wake-ups between processes of one host. A waiter binds a datagram
 * socket to an abstract name: the gate's key (a hash of where the gate
 * lives and its name) then a random part. The name goes in the waiter's
 * record; whoever frees capacity sends it one byte. Abstract names need
 * no file and vanish with the process. If the state that named the
 * waiters is lost, they are still found by their key in /proc/net/unix.
 *
 * Directory mode (the file store): abstract names are found only from
 * the network namespace they were bound in, so a waiter in a container
 * would never hear a waker outside it. There a waiter makes a FIFO
 * ".w.ADDR" in the gate's directory and keeps it open for reading and
 * writing (so it never sees end-of-file); a waker opens it by name,
 * without blocking, writes a byte and closes it. A FIFO nobody reads
 * (ENXIO: its waiter died) is removed by whoever finds it; a lost state's
 * waiters are found by listing the directory.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sys.h"
#include "wake.h"

void
wake_init(struct wake *w, const void *where, size_t len, const char *name)
{
	uint32_t h;

	memset(w, 0, sizeof(*w));
	w->sock = w->sendsock = w->dirfd = -1;
	h = fnv1a(SYS_FNV_INIT, where, len);
	h = fnv1a(h, name, strlen(name));
	(void)snprintf(w->key, sizeof(w->key), "%08x", (unsigned)h);
}

/* The sockaddr of an abstract name (leading NUL); returns its length. */
static socklen_t
abstract(struct sockaddr_un *sa, const char *name, size_t n)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

void
wake_dir(struct wake *w, int dirfd, mode_t mode)
{
	w->dirfd = dirfd;
	w->mode = mode;
}

/* A FIFO's name in the directory: ".w." and the address. */
static void
fifo_name(char *buf, size_t len, const char *addr)
{
	(void)snprintf(buf, len, ".w.%s", addr);
}

/* Make and open our FIFO under a new random address; its fd, or -1. */
static int
fifo_listen(struct wake *w)
{
	char name[STATE_ADDR_LEN + 4];
	int tries;

	for (tries = 0; tries < 16; tries++) {
		(void)snprintf(w->addr, sizeof(w->addr), "%s%08x", w->key,
		    (unsigned)arc4random());
		fifo_name(name, sizeof(name), w->addr);
		if (mkfifoat(w->dirfd, name, w->mode) == 0)
			break;
		if (errno != EEXIST)
			goto fail;
	}
	/* Read and write: a reader alone would see end-of-file forever. */
	w->sock = openat(w->dirfd, name, O_RDWR | O_NONBLOCK | O_CLOEXEC |
	    O_NOFOLLOW);
	if (w->sock != -1)
		return w->sock;
	(void)unlinkat(w->dirfd, name, 0);
fail:
	w->addr[0] = '\0';
	return -1;
}

/* Write a byte to the FIFO of addr; remove it if nobody reads it. */
static void
fifo_send(struct wake *w, const char *addr)
{
	char name[STATE_ADDR_LEN + 4];
	struct stat sb;
	int fd;

	fifo_name(name, sizeof(name), addr);
	fd = openat(w->dirfd, name, O_WRONLY | O_NONBLOCK | O_CLOEXEC |
	    O_NOFOLLOW);
	if (fd == -1) {
		if (errno == ENXIO)	/* no reader: its waiter is gone */
			(void)unlinkat(w->dirfd, name, 0);
		return;
	}
	/* Only a FIFO: never a file planted under that name. */
	if (fstat(fd, &sb) == 0 && S_ISFIFO(sb.st_mode))
		(void)write(fd, "", 1);	/* EAGAIN: woken already */
	(void)xclose(fd);
}

/* Wake every FIFO of the key in the directory but ours. */
static void
fifo_lost(struct wake *w)
{
	const char *a;
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		(void)xclose(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		a = de->d_name + 3;
		if (strncmp(de->d_name, ".w.", 3) == 0 &&
		    strlen(a) == STATE_ADDR_LEN &&
		    strncmp(a, w->key, WAKE_KEY_LEN) == 0 &&
		    strspn(a, "0123456789abcdef") == STATE_ADDR_LEN &&
		    strcmp(a, w->addr) != 0)
			fifo_send(w, a);
	}
	(void)closedir(d);
}

int
wake_listen(struct wake *w)
{
	struct sockaddr_un sa;
	socklen_t len;
	int tries;

	if (w->sock != -1)
		return w->sock;
	if (w->dirfd != -1)
		return fifo_listen(w);
	w->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (w->sock == -1)
		return -1;
	for (tries = 0; tries < 16; tries++) {
		(void)snprintf(w->addr, sizeof(w->addr), "%s%08x", w->key,
		    (unsigned)arc4random());
		len = abstract(&sa, w->addr, STATE_ADDR_LEN);
		if (bind(w->sock, (struct sockaddr *)&sa, len) == 0)
			return w->sock;
		if (errno != EADDRINUSE)
			break;
	}
	(void)xclose(w->sock);
	w->sock = -1;
	w->addr[0] = '\0';
	errno = EPROTO;
	return -1;
}

void
wake_send(struct wake *w, const char *addr)
{
	struct sockaddr_un sa;
	size_t n = strlen(addr);
	socklen_t len;

	if (n == 0 || n > STATE_ADDR_LEN || strcmp(addr, w->addr) == 0)
		return;
	if (w->dirfd != -1) {
		if (n == STATE_ADDR_LEN && strspn(addr, "0123456789abcdef") == n)
			fifo_send(w, addr);
		return;
	}
	if (w->sendsock == -1)
		w->sendsock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0);
	if (w->sendsock == -1)
		return;
	len = abstract(&sa, addr, n);
	(void)sendto(w->sendsock, "", 1, MSG_DONTWAIT,
	    (struct sockaddr *)&sa, len);
}

void
wake_drain(struct wake *w)
{
	char b[64];

	while (w->sock != -1 && read(w->sock, b, sizeof(b)) > 0)
		;
}

void
wake_lost(struct wake *w)
{
	char *line = NULL, *name;
	size_t cap = 0, n;
	FILE *fp;

	if (w->dirfd != -1) {
		fifo_lost(w);
		return;
	}
	if ((fp = fopen("/proc/net/unix", "re")) == NULL)
		return;
	while (getline(&line, &cap, fp) != -1) {
		line[strcspn(line, "\n")] = '\0';
		if ((name = strrchr(line, ' ')) == NULL || name[1] != '@')
			continue;
		name += 2;
		n = strlen(name);
		if (n == STATE_ADDR_LEN &&
		    strncmp(name, w->key, WAKE_KEY_LEN) == 0 &&
		    strspn(name, "0123456789abcdef") == n)
			wake_send(w, name);
	}
	free(line);
	(void)fclose(fp);
}

void
wake_unlisten(struct wake *w)
{
	char name[STATE_ADDR_LEN + 4];

	if (w->dirfd != -1 && w->sock != -1) {
		fifo_name(name, sizeof(name), w->addr);
		(void)unlinkat(w->dirfd, name, 0);
	}
	(void)xclose(w->sock);
	w->sock = -1;
	w->addr[0] = '\0';
}

void
wake_close(struct wake *w)
{
	wake_unlisten(w);
	(void)xclose(w->sendsock);
	w->sock = w->sendsock = -1;
	w->addr[0] = '\0';
}
