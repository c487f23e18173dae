/*
 * gaterun-httpd's live part: the stream of Server-Sent Events (one
 * thread per client, asleep on a condition until a gate changes) and the
 * watcher thread that sees state files change through inotify and bumps
 * the generation the streams wait on.
 */
#include "config.h"

#include <sys/inotify.h>
#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
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

/* Hash of a gate name, into sv->gate_gen (FNV-1a). */
static size_t
gen_slot(const char *name, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	return h % GEN_SLOTS;
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

/*
 * The only inotify code of the server, in the watch_*() functions below
 * (lib's coming gate_watch_open() takes their place): a watch of the state
 * directory, or, while it does not exist, of its parent for it to be made.
 */
struct watch {
	int		fd;
	int		wd;		/* the state directory's, or -1 */
	int		pwd;		/* its parent's while it is missing */
	const char	*dir;
	char		parent[PATH_MAX];
};

/* An inotify fd for dir, nothing watched yet; -1 on failure. */
static int
watch_open(struct watch *w, const char *dir)
{
	char *slash;

	w->wd = w->pwd = -1;
	w->dir = dir;
	(void)strlcpy(w->parent, dir, sizeof(w->parent));
	if ((slash = strrchr(w->parent, '/')) != NULL && slash != w->parent)
		*slash = '\0';
	else if (slash != NULL)
		slash[1] = '\0';
	return w->fd = inotify_init1(IN_CLOEXEC);
}

/*
 * Watch the directory, or else its parent; 1 when the directory is
 * watched (it may just have been made: every gate may have changed), 0
 * when the parent is, -1 when neither can be.
 */
static int
watch_arm(struct watch *w)
{
	w->wd = inotify_add_watch(w->fd, w->dir, IN_ONLYDIR | IN_MOVED_TO |
	    IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF |
	    IN_MOVE_SELF);
	if (w->wd != -1) {
		if (w->pwd != -1)
			(void)inotify_rm_watch(w->fd, w->pwd);
		w->pwd = -1;
		return 1;
	}
	if (w->pwd != -1)
		return 0;
	w->pwd = inotify_add_watch(w->fd, w->parent, IN_ONLYDIR | IN_CREATE |
	    IN_MOVED_TO);
	return w->pwd == -1 ? -1 : watch_arm(w);	/* made meanwhile? */
}

/*
 * Read w's events and bump what they touch: a state file replaced, made
 * or removed bumps its gate; the directory gone bumps every gate and
 * leaves wd -1 (watch_arm again). Events on the parent only wake us.
 */
static int
watch_read(struct watch *w, struct server *sv)
{
	char buf[8192] __attribute__((__aligned__(8)));
	const struct inotify_event *ev;
	ssize_t n, off;
	size_t len;

	if ((n = read(w->fd, buf, sizeof(buf))) <= 0)
		return n == -1 && errno == EINTR ? 0 : -1;
	for (off = 0; off < n; off += (ssize_t)(sizeof(*ev) + ev->len)) {
		ev = (const struct inotify_event *)(buf + off);
		if (ev->wd == w->wd && (ev->mask & (IN_IGNORED |
		    IN_DELETE_SELF | IN_MOVE_SELF))) {
			if (!(ev->mask & IN_IGNORED))
				(void)inotify_rm_watch(w->fd, w->wd);
			w->wd = -1;	/* gone: wait for it again */
			bump(sv, NULL, 0, 0);
		} else if (ev->wd == w->wd && ev->len > 0 &&
		    (len = strlen(ev->name)) > 5 &&
		    strcmp(ev->name + len - 5, ".gate") == 0)
			bump(sv, ev->name, len - 5, 0);
	}
	return 0;
}

/*
 * The watcher thread: every state file replaced, made or removed bumps
 * the generation the streams sleep on. Runs until the process ends; when
 * nothing can be watched, streams only ping.
 */
void *
watcher(void *arg)
{
	struct server *sv = arg;
	struct watch w;
	int armed;

	if (watch_open(&w, sv->dir) == -1) {
		warn("inotify: events will only be pings");
		return NULL;
	}
	for (;;) {
		if (w.wd == -1) {
			if ((armed = watch_arm(&w)) == -1) {
				warn("cannot watch %s or %s: events will only "
				    "be pings", sv->dir, w.parent);
				(void)close(w.fd);
				return NULL;
			}
			if (armed == 1)
				bump(sv, NULL, 0, 0);	/* it may be new */
		}
		if (watch_read(&w, sv) == -1) {
			warn("inotify read");
			return NULL;
		}
	}
}
