/*
 * How a waiter is told on one host: a datagram to an abstract unix socket
 * the waiter bound under its gate's key, or (directory mode) a byte
 * written to a FIFO the waiter made in the gate's directory, which any
 * network namespace sharing the directory reaches. Used by the stores
 * that live on this host; the policy only passes the names along.
 */
#ifndef GATERUN_WAKE_H
#define GATERUN_WAKE_H

#include <sys/types.h>

#include <stddef.h>

#include "state.h"

#define WAKE_KEY_LEN	8		/* hex digits of the gate's key */

struct wake {
	int	sock;			/* our bound socket, or -1 */
	int	sendsock;		/* for waking others, or -1 */
	char	key[WAKE_KEY_LEN + 1];	/* the gate's prefix of names */
	char	addr[STATE_ADDR_LEN + 1]; /* our name, "" until bound */
	int	dirfd;			/* directory mode: its fd, else -1 */
	mode_t	mode;			/* of the FIFOs made there */
};

/* An unbound waker for the gate whose key hashes the given bytes. */
void	wake_init(struct wake *, const void *, size_t, const char *);
/*
 * Directory mode: FIFOs named ".w.ADDR" in dirfd (kept open by the
 * caller while w is used), made with mode.
 */
void	wake_dir(struct wake *, int, mode_t);
/* Bind our socket (make our FIFO) under the key, once; its fd, or -1. */
int	wake_listen(struct wake *);
/* Send one wake-up; failure only means the waiter is gone. */
void	wake_send(struct wake *, const char *);
/* Throw away wake-ups already received. */
void	wake_drain(struct wake *);
/*
 * Wake every socket bound under the key except ours: the waiters a lost
 * or damaged state can no longer name (the kernel lists them).
 */
void	wake_lost(struct wake *);
/* Close our socket (remove our FIFO): out of line, until wake_listen. */
void	wake_unlisten(struct wake *);
/* Close both sockets (remove our FIFO). */
void	wake_close(struct wake *);

#endif
