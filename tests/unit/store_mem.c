/*
 * A store kept in memory, for the unit tests only: the state's text in
 * one shared anonymous mapping, made before the test forks, under a
 * robust process-shared mutex. It proves the seam: the policy runs on it
 * unchanged, with the same tests as on the file store.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_mem.h"
#include "wake.h"

#define MEM_BYTES	(1u << 20)

/* The shared part. */
struct arena {
	pthread_mutex_t	mu;
	pid_t		creator;	/* the test's: the waker's key */
	int		exists;
	size_t		len;
	char		text[MEM_BYTES];
};

struct mstore {
	struct store	base;
	unsigned	deflimit;
	int		create;
	struct wake	wake;
};

static struct arena *arena;

int
store_mem_init(void)
{
	pthread_mutexattr_t a;

	arena = mmap(NULL, sizeof(*arena), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED)
		return -1;
	arena->creator = getpid();
	(void)pthread_mutexattr_init(&a);
	(void)pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	(void)pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	return pthread_mutex_init(&arena->mu, &a) == 0 ? 0 : -1;
}

static int
mem_open(struct store **sp, const char *loc, const char *name,
    unsigned deflimit, int create, gate_notify_fn *fn, void *arg)
{
	struct mstore *m;

	(void)loc;
	(void)fn;
	(void)arg;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -1;
	m->base.ops = &store_mem_ops;
	m->deflimit = deflimit;
	m->create = create;
	wake_init(&m->wake, &arena->creator, sizeof(arena->creator), name);
	*sp = &m->base;
	return 0;
}

static void
mem_close(struct store *s)
{
	struct mstore *m = (struct mstore *)s;

	wake_close(&m->wake);
	free(m);
}

static int
mem_begin(struct store *s, struct store_txn *t)
{
	struct mstore *m = (struct mstore *)s;
	const char *why;
	int e;

	memset(t, 0, sizeof(*t));
	t->st.limit = m->deflimit;
	if (!arena->exists && !m->create)
		return 0;
	t->exists = 1;
	if ((e = pthread_mutex_lock(&arena->mu)) == EOWNERDEAD)
		(void)pthread_mutex_consistent(&arena->mu);	/* text whole */
	else if (e != 0) {
		errno = e;
		return -1;
	}
	if (arena->exists &&
	    state_parse(arena->text, arena->len, &t->st, 0, &why) == -1) {
		(void)pthread_mutex_unlock(&arena->mu);
		return -1;
	}
	if (!arena->exists) {
		t->lost = t->dirty = 1;
		(void)proc_bootid(t->st.boot, sizeof(t->st.boot));
	}
	return 0;
}

static int
mem_commit(struct store *s, struct store_txn *t, const store_addr *wakes,
    size_t n)
{
	struct mstore *m = (struct mstore *)s;
	size_t i, len;
	char *buf;
	int r = 0;

	if (!t->exists) {
		state_free(&t->st);
		return 0;
	}
	for (i = 0; i < n; i++)
		wake_send(&m->wake, wakes[i]);
	if (t->dirty) {
		if (state_format(&t->st, &buf, &len) == -1)
			r = -1;
		else if (len > sizeof(arena->text)) {
			errno = EFBIG;
			r = -1;
		} else {
			memcpy(arena->text, buf, len);
			arena->len = len;
			arena->exists = 1;
		}
		if (r == 0)
			free(buf);
	}
	(void)pthread_mutex_unlock(&arena->mu);
	state_free(&t->st);
	return r;
}

static void
mem_abort(struct store *s, struct store_txn *t)
{
	(void)s;
	if (t->exists)
		(void)pthread_mutex_unlock(&arena->mu);
	state_free(&t->st);
}

static int
mem_alive(struct store *s, const struct procid *id)
{
	(void)s;
	return proc_alive(id);
}

static int
mem_watch(struct store *s, const struct procid *id)
{
	(void)s;
	return proc_pidfd_id(id);
}

static int
mem_listen(struct store *s, store_addr addr)
{
	struct mstore *m = (struct mstore *)s;
	int fd;

	if ((fd = wake_listen(&m->wake)) != -1)
		(void)strlcpy(addr, m->wake.addr, sizeof(store_addr));
	return fd;
}

static void
mem_drain(struct store *s)
{
	wake_drain(&((struct mstore *)s)->wake);
}

/* One gate, "t", once made. */
static int
mem_list(const char *loc, char ***names, size_t *n)
{
	(void)loc;
	*names = NULL;
	*n = 0;
	if (!arena->exists)
		return 0;
	if ((*names = calloc(1, sizeof(**names))) == NULL ||
	    ((*names)[0] = strdup("t")) == NULL) {
		free(*names);
		return -1;
	}
	*n = 1;
	return 0;
}

static int
mem_watch_open(const char *loc, void **wp)
{
	(void)loc;
	(void)wp;
	errno = ENOTSUP;
	return -1;
}

const struct store_ops store_mem_ops = {
	.scheme = "mem",
	.open = mem_open,
	.close = mem_close,
	.begin = mem_begin,
	.commit = mem_commit,
	.abort = mem_abort,
	.alive = mem_alive,
	.watch = mem_watch,
	.listen = mem_listen,
	.drain = mem_drain,
	.list = mem_list,
	.watch_open = mem_watch_open,
};
