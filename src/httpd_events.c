/*
 * gaterun-httpd's live part: the stream of Server-Sent Events (one
 * thread per client, asleep on a condition until a gate changes) and the
 * watcher thread that sees gates change (gate_watch: no polling) and
 * bumps the generation the streams wait on.
 */
#include "config.h"

#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "report.h"
#include "sys.h"

#define SSE_GAP_NS	50000000LL	/* at most 20 pushes a second */

/* Hash of a gate name, into sv->gate_gen. */
static size_t
gen_slot(const char *name, size_t len)
{
	return fnv1a(SYS_FNV_INIT, name, len) % GEN_SLOTS;
}

/* One client of /events: what it was sent, what is left to send. */
struct sse {
	struct server	*sv;
	char		*gate;		/* NULL: every gate */
	size_t		slot;		/* gen_slot(gate) */
	uint64_t	gen;
	int		fresh;		/* nothing sent yet */
	int64_t		last_ns;
	unsigned	ping_s;
	struct out	o;
	size_t		off;
};

/* Render the event for e into e->o; -1 on failure. */
static int
sse_render(struct sse *e)
{
	struct gate_info gi, *gis;
	char **names, msg[512];
	size_t n;

	if (out_open(&e->o) == -1)
		return -1;
	if (e->fresh)
		(void)fputs("retry: 2000\n", e->o.fp);
	if (e->gate == NULL) {
		if (all_snapshots(e->sv, &names, &gis, &n, msg,
		    sizeof(msg)) != 0)
			goto err;
		(void)fputs("event: status\ndata: ", e->o.fp);
		report_status_all_json(e->o.fp, names, gis, n);
		all_free(names, gis, n);
	} else {
		if (gate_snapshot(e->sv, e->gate, &gi, msg, sizeof(msg)) != 0)
			goto err;
		(void)fputs("event: status\ndata: ", e->o.fp);
		report_status_json(e->o.fp, e->gate, &gi);
		gate_info_free(&gi);
	}
	(void)fputc('\n', e->o.fp);
	goto done;
err:
	(void)fputs("event: error\ndata: {\"error\":", e->o.fp);
	json_str(e->o.fp, msg);
	(void)fputs("}\n\n", e->o.fp);
done:
	e->fresh = 0;
	e->off = 0;
	return fclose(e->o.fp) == EOF ? -1 : 0;
}

/* Did what e streams change since it was last sent? sv->mu held. */
static int
changed_for(const struct sse *e)
{
	const struct server *sv = e->sv;

	if (e->gate == NULL)
		return sv->gen != e->gen;
	return sv->gate_gen[e->slot] > e->gen || sv->all_gen > e->gen;
}

/*
 * Sleep until what e streams changes (1), a ping is due (0), or the
 * server stops (-1). At most one push per SSE_GAP_NS: bursts coalesce.
 */
static int
sse_wait(struct sse *e)
{
	struct server *sv = e->sv;
	struct timespec ts, gap;
	int64_t now;
	int changed;

	now = mono_ns();
	if (now - e->last_ns < SSE_GAP_NS) {
		gap.tv_sec = 0;
		gap.tv_nsec = (long)(SSE_GAP_NS - (now - e->last_ns));
		(void)nanosleep(&gap, NULL);
	}
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += e->ping_s;
	(void)pthread_mutex_lock(&sv->mu);
	while (!sv->stopping && !changed_for(e) &&
	    pthread_cond_timedwait(&sv->changed, &sv->mu, &ts) == 0)
		;
	changed = sv->stopping ? -1 : changed_for(e);
	e->gen = sv->gen;
	(void)pthread_mutex_unlock(&sv->mu);
	return changed;
}

/*
 * The event stream, read by libmicrohttpd in this connection's own
 * thread: hand out what is rendered, else sleep on the condition until
 * the watcher bumps the generation (or a ping is due, to find dead
 * clients and keep proxies from timing out).
 */
static ssize_t
sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *e = cls;
	size_t n;
	int changed = 1;

	(void)pos;
	if (e->o.buf != NULL && e->off == e->o.len) {
		free(e->o.buf);
		e->o.buf = NULL;
	}
	if (e->o.buf == NULL) {
		if (!e->fresh && (changed = sse_wait(e)) == -1)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (changed) {
			e->last_ns = mono_ns();
			if (sse_render(e) == -1)
				return MHD_CONTENT_READER_END_WITH_ERROR;
		} else {
			if ((e->o.buf = strdup(": ping\n\n")) == NULL)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			e->o.len = strlen(e->o.buf);
			e->off = 0;
		}
	}
	n = e->o.len - e->off < max ? e->o.len - e->off : max;
	memcpy(buf, e->o.buf + e->off, n);
	e->off += n;
	return (ssize_t)n;
}

/* The stream is over: its client went, or the server stops. */
static void
sse_free(void *cls)
{
	struct sse *e = cls;

	free(e->o.buf);
	free(e->gate);
	free(e);
}

/* GET /events[?gate=]: a stream that pushes the status on every change. */
enum MHD_Result
api_events(struct server *sv, struct MHD_Connection *c,
    const struct params *p)
{
	struct MHD_Response *r;
	struct gate_info gi;
	const char *name = param(p, "gate");
	struct sse *e;
	char msg[512];
	unsigned code;

	if (name != NULL) {
		code = gate_snapshot(sv, name, &gi, msg, sizeof(msg));
		if (code != 0)
			return send_error(c, code, NULL, "%s", msg);
		gate_info_free(&gi);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (name != NULL && (e->gate = strdup(name)) == NULL)) {
		free(e);
		return MHD_NO;
	}
	e->sv = sv;
	e->fresh = 1;
	if (name != NULL)
		e->slot = gen_slot(name, strlen(name));
	/* Pings well inside the idle timeout keep a live client's stream. */
	e->ping_s = sv->timeout > 2 ? sv->timeout / 2 : 1;
	(void)pthread_mutex_lock(&sv->mu);
	e->gen = sv->gen;
	(void)pthread_mutex_unlock(&sv->mu);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
	    sse_read, e, sse_free);
	if (r == NULL) {
		sse_free(e);
		return MHD_NO;
	}
	(void)MHD_add_response_header(r, "X-Accel-Buffering", "no");
	return queue(c, MHD_HTTP_OK, r, "text/event-stream");
}

/*
 * Wake the event streams: gate name (len bytes) changed, or with name
 * NULL every gate may have; stop ends them.
 */
void
bump(struct server *sv, const char *name, size_t len, int stop)
{
	(void)pthread_mutex_lock(&sv->mu);
	sv->gen++;
	if (name != NULL)
		sv->gate_gen[gen_slot(name, len)] = sv->gen;
	else
		sv->all_gen = sv->gen;
	if (stop)
		sv->stopping = 1;
	(void)pthread_cond_broadcast(&sv->changed);
	(void)pthread_mutex_unlock(&sv->mu);
}

/* A gate changed (name), or any may have (NULL): wake the streams. */
static void
on_change(void *arg, const char *name)
{
	bump(arg, name, name != NULL ? strlen(name) : 0, 0);
}

/*
 * The watcher thread: every gate of the store that changes (lib's
 * gate_watch) bumps the generation the streams sleep on. Runs until the
 * process ends; when nothing can be watched, streams only ping.
 */
void *
watcher(void *arg)
{
	struct server *sv = arg;
	struct gate_watch *w;
	struct pollfd pfd;

	if (gate_watch_open(&w, sv->dir) == -1) {
		warn("cannot watch %s: events will only be pings", sv->where);
		return NULL;
	}
	pfd.fd = gate_watch_fd(w);
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			break;
		if (gate_watch_read(w, on_change, sv) == -1)
			break;
	}
	warn("cannot watch %s: events will only be pings", sv->where);
	gate_watch_close(w);
	return NULL;
}
