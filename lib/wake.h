/*
 * How a waiter is told on one host: a datagram to an abstract unix socket
 * the waiter bound under its gate's key. Used by the stores that live on
 * this host; the policy only passes the names along.
 */
#ifndef GATERUN_WAKE_H
#define GATERUN_WAKE_H

#include <stddef.h>

#include "state.h"

#define WAKE_KEY_LEN	8		/* hex digits of the gate's key */

struct wake {
	int	sock;			/* our bound socket, or -1 */
	int	sendsock;		/* for waking others, or -1 */
	char	key[WAKE_KEY_LEN + 1];	/* the gate's prefix of names */
	char	addr[STATE_ADDR_LEN + 1]; /* our name, "" until bound */
};

/* An unbound waker for the gate whose key hashes the given bytes. */
void	wake_init(struct wake *, const void *, size_t, const char *);
/* Bind our socket under the key (once); returns its fd, or -1. */
int	wake_listen(struct wake *);
/*
 * Send one wake-up. -1 when it could not be (ECONNREFUSED: no socket of
 * that name in our network namespace: the waiter is gone, or in another).
 */
int	wake_send(struct wake *, const char *);
/* Throw away wake-ups already received. */
void	wake_drain(struct wake *);
/*
 * Wake every socket bound under the key except ours: the waiters a lost
 * or damaged state can no longer name (the kernel lists them).
 */
void	wake_lost(struct wake *);
/* Close both sockets. */
void	wake_close(struct wake *);

#endif
