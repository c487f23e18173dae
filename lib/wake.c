/*
 * Wake-ups between processes of one host. A waiter binds a datagram
 * socket to an abstract name: the gate's key (a hash of where the gate
 * lives and its name) then a random part. The name goes in the waiter's
 * record; whoever frees capacity sends it one byte. Abstract names need
 * no file and vanish with the process. If the state that named the
 * waiters is lost, they are still found by their key in /proc/net/unix.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
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
	w->sock = w->sendsock = -1;
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

int
wake_listen(struct wake *w)
{
	struct sockaddr_un sa;
	socklen_t len;
	int tries;

	if (w->sock != -1)
		return w->sock;
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

int
wake_send(struct wake *w, const char *addr)
{
	struct sockaddr_un sa;
	size_t n = strlen(addr);
	socklen_t len;

	if (n == 0 || n > STATE_ADDR_LEN || strcmp(addr, w->addr) == 0)
		return 0;
	if (w->sendsock == -1)
		w->sendsock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0);
	if (w->sendsock == -1)
		return -1;
	len = abstract(&sa, addr, n);
	if (sendto(w->sendsock, "", 1, MSG_DONTWAIT,
	    (struct sockaddr *)&sa, len) == -1 && errno != EAGAIN)
		return -1;	/* EAGAIN: woken already, not read yet */
	return 0;
}

void
wake_drain(struct wake *w)
{
	char b[64];

	while (w->sock != -1 && recv(w->sock, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

void
wake_lost(struct wake *w)
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
		if (n == STATE_ADDR_LEN &&
		    strncmp(name, w->key, WAKE_KEY_LEN) == 0 &&
		    strspn(name, "0123456789abcdef") == n)
			wake_send(w, name);
	}
	free(line);
	(void)fclose(fp);
}

void
wake_close(struct wake *w)
{
	(void)xclose(w->sock);
	(void)xclose(w->sendsock);
	w->sock = w->sendsock = -1;
	w->addr[0] = '\0';
}
