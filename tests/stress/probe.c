/*
 * probe: the wrapped command of the chaos test. Appends "s ID PID NS GRANT"
 * to LOG, sleeps MS milliseconds, appends "e ID PID NS", exits 0. Each line
 * is one O_APPEND write, so concurrent probes never interleave within a
 * line.
 *
 * GRANT is when its slot was granted: the time (ns, the real clock of the
 * process that admitted it) that the holder record naming this process
 * carries. The engine stamps a record when it makes it a holder, inside the
 * transaction that admits it (lib/gate.c: promote_head, self_entry), so the
 * checker can tell a grant made before a change of limit from one made
 * after it, however long the command then took to start. Read from the
 * gate's state ($GATERUN_DIR/GATE.gate, or the key gaterun:gate:GATE of a
 * $GATERUN_STORE redis://HOST:PORT), GATE being $GATERUN_SLOT_GATE; "-"
 * when no record names this process.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_HIREDIS
#include <hiredis.h>
#endif

/*
 * The time of the holder record of this process in a gate's state text
 * ("h SLOT TICKET WRAPPER WSTART CMD CSTART UID TIME ..."): ours if we are
 * its wrapper (-x) or its command. -1 if none.
 */
static long long
grant_in(const char *text)
{
	long long wpid, cpid, ns;
	const char *p;

	for (p = text; p != NULL; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (sscanf(p, "h %*d %*u %lld %*u %lld %*u %*u %lld", &wpid,
		    &cpid, &ns) == 3 && (wpid == getpid() || cpid == getpid()))
			return ns;
	}
	return -1;
}

/* The gate's state text from a file store; NULL if unreadable. */
static char *
read_file_state(const char *dir, const char *gate)
{
	char path[4096], *buf;
	size_t n;
	FILE *fp;

	(void)snprintf(path, sizeof(path), "%s/%s.gate", dir, gate);
	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	if ((buf = calloc(1, 1 << 20)) != NULL) {
		n = fread(buf, 1, (1 << 20) - 1, fp);
		buf[n] = '\0';
	}
	(void)fclose(fp);
	return buf;
}

/* The gate's state text from a redis://HOST:PORT store; NULL if none. */
static char *
read_redis_state(const char *loc, const char *gate)
{
	char host[256], *buf = NULL;
#ifdef HAVE_HIREDIS
	redisContext *c;
	redisReply *rp;
	int port;

	if (sscanf(loc, "redis://%255[^:/]:%d", host, &port) != 2 ||
	    (c = redisConnect(host, port)) == NULL)
		return NULL;
	if (c->err == 0 &&
	    (rp = redisCommand(c, "GET gaterun:gate:%s", gate)) != NULL) {
		if (rp->type == REDIS_REPLY_STRING)
			buf = strdup(rp->str);
		freeReplyObject(rp);
	}
	redisFree(c);
#else
	(void)loc;
	(void)gate;
	(void)host;
#endif
	return buf;
}

/* When our slot was granted (see the top comment), or -1. */
static long long
grant_ns(void)
{
	const char *gate = getenv("GATERUN_SLOT_GATE");
	const char *store = getenv("GATERUN_STORE");
	const char *dir = getenv("GATERUN_DIR");
	char *text = NULL;
	long long ns;

	if (gate == NULL)
		return -1;
	if (store != NULL && strncmp(store, "redis://", 8) == 0)
		text = read_redis_state(store, gate);
	else if (dir != NULL)
		text = read_file_state(dir, gate);
	ns = text != NULL ? grant_in(text) : -1;
	free(text);
	return ns;
}

/* Append "TAG ID PID NOW[ GRANT]" (GRANT only for a start). */
static void
stamp(int fd, char tag, const char *id, long long grant)
{
	struct timespec ts;
	char buf[128], g[24] = "-";
	int n;

	if (grant >= 0)
		(void)snprintf(g, sizeof(g), "%lld", grant);
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(buf, sizeof(buf), "%c %s %d %lld%s%s\n", tag, id,
	    (int)getpid(), (long long)ts.tv_sec * 1000000000 + ts.tv_nsec,
	    tag == 's' ? " " : "", tag == 's' ? g : "");
	if (write(fd, buf, (size_t)n) != n)
		_exit(3);
}

int
main(int argc, char **argv)
{
	struct timespec d;
	long ms;
	int fd;

	if (argc != 4)
		return 2;
	if ((fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644)) == -1)
		return 3;
	ms = strtol(argv[3], NULL, 10);
	/* The record is read first: the start stamped after it only makes
	 * the measured run shorter than the real one, never longer. */
	stamp(fd, 's', argv[2], grant_ns());
	d.tv_sec = ms / 1000;
	d.tv_nsec = ms % 1000 * 1000000;
	while (nanosleep(&d, &d) == -1)
		;
	stamp(fd, 'e', argv[2], -1);
	return 0;
}
