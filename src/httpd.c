/*
 * gaterun-httpd: the gate over HTTP. The same three operations as the
 * command line (status, limit, kill-all) as JSON endpoints, health and
 * Prometheus metrics, Server-Sent Events pushed when a state file changes
 * (inotify: no polling), and a self-contained live dashboard.
 *
 * A program of its own rather than gaterun --serve, so that the wrapper
 * every command goes through links neither libmicrohttpd nor threads.
 * libmicrohttpd runs a thread per connection: a kill-all waiting out its
 * grace period, or an event stream waiting for a change, blocks only its
 * own client; connection limits, a per-address limit and an idle timeout
 * keep a slow or flooding client from starving the others.
 */
#include "config.h"

#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "conffile.h"
#include "exitcodes.h"
#include "gate.h"
#include "report.h"
#include "sys.h"

#define BODY_MAX	4096		/* a POST body larger is 413 */
#define TOKEN_MAX	256
#define SSE_GAP_NS	50000000LL	/* at most 20 pushes a second */
#define GEN_SLOTS	256		/* a collision costs a spare push */

static const char dashboard[] =
#include "dashboard.inc"
;

static struct {
	const char	*dir;
	const char	*conf;
	const char	*token_file;
	const char	*defgate;
	unsigned	warn;		/* health: warning above, percent */
	double		grace;		/* kill-all: SIGKILL after */
	int		public_read;
	int		loopback;	/* listening on a loopback address */
	pthread_mutex_t	mu;		/* guards what follows */
	pthread_cond_t	changed;
	uint64_t	gen;		/* bumped on every state change */
	uint64_t	all_gen;	/* gen when any gate may have */
	uint64_t	gate_gen[GEN_SLOTS]; /* gen a gate last changed */
	int		stopping;
	char		token[TOKEN_MAX];
	size_t		tokenlen;
} S = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.changed = PTHREAD_COND_INITIALIZER,
};

/* A request being read: its body, bounded. */
struct req {
	size_t		len;
	int		toolarge;
	char		body[BODY_MAX + 1];
};

/* A response body being built. */
struct out {
	FILE		*fp;
	char		*buf;
	size_t		len;
};

static void __attribute__((__noreturn__))
usage(int status)
{
	FILE *fp = status ? stderr : stdout;

	(void)fprintf(fp,
"usage: gaterun-httpd [-r] [-t TOKEN_FILE] [-g GATE] [-W PCT] [-G SECONDS]\n"
"                     [-c MAX] [-p MAX] [-T SECONDS] [[ADDR:]PORT]\n"
"       gaterun-httpd --help | --version\n");
	if (status)
		exit(status);
	(void)fprintf(fp, "\n"
"Serve the gates of the state directory over HTTP: JSON status, limit and\n"
"kill-all, health, Prometheus metrics, live events and a dashboard at /.\n"
"Listens on 127.0.0.1:8080 unless told otherwise ([::1]:PORT for IPv6).\n"
"\n"
"  -t, --token-file FILE  bearer token that POSTs (and, without -r, GETs)\n"
"                         require; FILE must be readable by its owner only\n"
"                         (re-read on SIGHUP)\n"
"  -r, --public-read      GETs need no token\n"
"  -g, --gate NAME        gate of requests without ?gate= (default:\n"
"                         $GATERUN_GATE or 'default')\n"
"  -W, --warn PCT         /api/health: \"warning\" above this utilization\n"
"                         (default 80)\n"
"  -G, --grace SECONDS    kill-all: SIGKILL what is left after (default 5)\n"
"  -c, --max-connections N  connections at once (default 64)\n"
"  -p, --per-ip N         connections at once from one address (default 32)\n"
"  -T, --timeout SECONDS  close a connection idle this long (default 15)\n"
"  -h, --help             show this help\n"
"  -V, --version          show the version\n"
"\n"
"Endpoints: GET /api/process-status[?gate=], /api/gates, /api/health,\n"
"/metrics, /events (Server-Sent Events), / (dashboard); POST\n"
"/api/process-limit (max_concurrent=N), /api/process-kill-all.\n"
"Environment: GATERUN_DIR, GATERUN_GATE, GATERUN_CONF, GATERUN_LIMIT, as\n"
"gaterun(1).\n"
"Exit status: 0 after SIGTERM or SIGINT, 125 when it cannot start.\n");
	exit(0);
}

/* Engine warnings (a damaged state moved aside...) go to the log. */
static void
on_notify(void *arg, const char *msg)
{
	(void)arg;
	warnx("%s", msg);
}

/*
 * The limit a gate made now gets, as gaterun(1) gives it: its section or
 * the file, overridden by GATERUN_LIMIT, else the default.
 */
static unsigned
deflimit_of(const char *gate)
{
	struct config c;
	const char *e;
	char why[512];
	unsigned v;

	if ((e = getenv("GATERUN_LIMIT")) != NULL && limit_parse(e, 0, &v) == 0)
		return v;
	if (config_read(S.conf, gate, &c, why, sizeof(why)) == -1) {
		warnx("%s", why);
		return GATE_DEFAULT_LIMIT;
	}
	return c.limit >= 0 ? (unsigned)c.limit : GATE_DEFAULT_LIMIT;
}

/*
 * Read the token file: owned by us or root, no access for group or
 * others, one line. Returns 0, or -1 with why set.
 */
static int
token_read(char *tok, size_t *lenp, const char **why)
{
	char buf[TOKEN_MAX + 2];
	struct stat sb;
	ssize_t n;
	int fd;

	memset(tok, 0, TOKEN_MAX);	/* compared whole: see authorized() */
	fd = open(S.token_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		*why = "not a regular file";
		goto bad;
	}
	if ((sb.st_mode & 077) != 0 ||
	    (sb.st_uid != geteuid() && sb.st_uid != 0)) {
		*why = "others than its owner may read it, or it is not owned "
		    "by us or root (chmod 600)";
		goto bad;
	}
	if ((n = read_full(fd, buf, sizeof(buf) - 1)) < 0) {
		*why = strerror(errno);
		goto bad;
	}
	(void)close(fd);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	n = (ssize_t)strlen(buf);
	if (n < 16 || n > TOKEN_MAX - 1) {
		*why = "the token must be 16 to 255 characters on one line";
		return -1;
	}
	memcpy(tok, buf, (size_t)n + 1);
	*lenp = (size_t)n;
	explicit_bzero(buf, sizeof(buf));
	return 0;
bad:
	(void)close(fd);
	return -1;
}

/* a and b hold the same len bytes; the time taken tells nothing. */
static int
same(const char *a, const char *b, size_t len)
{
	volatile unsigned char d = 0;
	size_t i;

	for (i = 0; i < len; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/* "Authorization: Bearer TOKEN" matches, compared in constant time. */
static int
authorized(struct MHD_Connection *c)
{
	char want[TOKEN_MAX] = "", got[TOKEN_MAX] = "";
	const char *h;
	size_t len, wlen;
	int ok;

	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	if ((len = strlen(h)) >= TOKEN_MAX)
		return 0;
	memcpy(got, h, len);
	(void)pthread_mutex_lock(&S.mu);
	memcpy(want, S.token, sizeof(want));
	wlen = S.tokenlen;
	(void)pthread_mutex_unlock(&S.mu);
	ok = wlen > 0 && len == wlen && same(want, got, sizeof(want));
	explicit_bzero(want, sizeof(want));
	return ok;
}

/*
 * On a loopback address, a Host that is not loopback means a page of
 * another site reached us through DNS rebinding: refused.
 */
static int
host_ok(struct MHD_Connection *c)
{
	static const char *const names[] = { "localhost", "127.0.0.1",
	    "[::1]" };
	const char *h;
	size_t i, n;

	if (!S.loopback)
		return 1;
	if ((h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host")) ==
	    NULL)
		return 1;	/* HTTP/1.0 without Host: not a browser */
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		n = strlen(names[i]);
		if (strncasecmp(h, names[i], n) == 0 &&
		    (h[n] == '\0' || h[n] == ':'))
			return 1;
	}
	return 0;
}

static int
out_open(struct out *o)
{
	o->buf = NULL;
	o->len = 0;
	return (o->fp = open_memstream(&o->buf, &o->len)) == NULL ? -1 : 0;
}

/* Queue r with the headers every answer has, then let go of it. */
static enum MHD_Result
queue(struct MHD_Connection *c, unsigned code, struct MHD_Response *r,
    const char *type)
{
	enum MHD_Result ret;

	(void)MHD_add_response_header(r, "Content-Type", type);
	(void)MHD_add_response_header(r, "Cache-Control", "no-store");
	(void)MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Queue o's text as the response. */
static enum MHD_Result
send_out(struct MHD_Connection *c, unsigned code, struct out *o,
    const char *type, const char *allow)
{
	struct MHD_Response *r;

	if (fclose(o->fp) == EOF) {
		free(o->buf);
		return MHD_NO;
	}
	r = MHD_create_response_from_buffer_with_free_callback(o->len, o->buf,
	    free);
	if (r == NULL) {
		free(o->buf);
		return MHD_NO;
	}
	if (code == MHD_HTTP_UNAUTHORIZED)
		(void)MHD_add_response_header(r, "WWW-Authenticate",
		    "Bearer realm=\"gaterun\"");
	if (allow != NULL)
		(void)MHD_add_response_header(r, "Allow", allow);
	return queue(c, code, r, type);
}

#define JSON	"application/json"

/* {"error":"...","code":N}; a 405 names the allowed method. */
static enum MHD_Result
send_error(struct MHD_Connection *c, unsigned code, const char *allow,
    const char *fmt, ...) __attribute__((__format__(__printf__, 4, 5)));

static enum MHD_Result
send_error(struct MHD_Connection *c, unsigned code, const char *allow,
    const char *fmt, ...)
{
	char msg[512];
	struct out o;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (out_open(&o) == -1)
		return MHD_NO;
	(void)fputs("{\"error\":", o.fp);
	json_str(o.fp, msg);
	(void)fprintf(o.fp, ",\"code\":%u}\n", code);
	return send_out(c, code, &o, JSON, allow);
}

/* Why a gate could not be opened or read, as a person reads it. */
static const char *
gate_why(int e)
{
	if (e == ELOOP)
		return "a symlink stands where the state directory or a state "
		    "file should be";
	if (e == EPERM)
		return "the state directory or file is not owned by us or "
		    "root, or others may write it";
	return strerror(e);
}

/*
 * Open gate name and snapshot it. An unknown gate other than the default
 * one is 404. Returns 0, or the HTTP code with msg set.
 */
static unsigned
gate_snapshot(const char *name, struct gate_info *gi, char *msg, size_t len)
{
	struct gate *g;

	memset(gi, 0, sizeof(*gi));
	if (gate_open(&g, S.dir, name, deflimit_of(name), 0, on_notify,
	    NULL) == -1) {
		(void)snprintf(msg, len, "cannot open gate '%.64s' in %.300s: "
		    "%.100s", name, S.dir, gate_why(errno));
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	if (gate_info(g, gi) == -1) {
		(void)snprintf(msg, len, "cannot read gate '%.64s' in %.300s: "
		    "%.100s", name, S.dir, gate_why(errno));
		gate_close(g);
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	gate_close(g);
	if (!gi->exists && strcmp(name, S.defgate) != 0) {
		gate_info_free(gi);
		(void)snprintf(msg, len, "no gate '%s'", name);
		return MHD_HTTP_NOT_FOUND;
	}
	return 0;
}

/* Snapshots of every gate, for /api/gates, /metrics and /events. */
static unsigned
all_snapshots(char ***names, struct gate_info **gip, size_t *np, char *msg,
    size_t len)
{
	struct gate_info *gi;
	unsigned code;
	size_t i, n;

	if (gate_list(S.dir, names, &n) == -1) {
		(void)snprintf(msg, len, "cannot list %s: %s", S.dir,
		    strerror(errno));
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	if ((gi = calloc(n + 1, sizeof(*gi))) == NULL) {
		gate_list_free(*names, n);
		(void)snprintf(msg, len, "%s", strerror(errno));
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	for (i = 0; i < n; i++) {
		code = gate_snapshot((*names)[i], &gi[i], msg, len);
		if (code != 0) {
			if (code == MHD_HTTP_NOT_FOUND) {
				/* removed since listed: show it empty */
				gi[i].limit = deflimit_of((*names)[i]);
				continue;
			}
			while (i-- > 0)
				gate_info_free(&gi[i]);
			free(gi);
			gate_list_free(*names, n);
			return code;
		}
	}
	*gip = gi;
	*np = n;
	return 0;
}

static void
all_free(char **names, struct gate_info *gi, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		gate_info_free(&gi[i]);
	free(gi);
	gate_list_free(names, n);
}

/*
 * The parameters of a request: the query string, then a JSON object or
 * form body. A value given twice is refused.
 */
#define NPARAM	4
static const char *const param_names[NPARAM] = { "gate", "max_concurrent",
    "signal", "grace" };

struct params {
	char	why[160];
	char	val[NPARAM][128];
	int	set[NPARAM];
	int	isstr[NPARAM];		/* a JSON string, not a number */
};

static int
param_put(struct params *p, const char *key, const char *val, int isstr,
    const char **why)
{
	size_t i;

	for (i = 0; i < NPARAM; i++)
		if (strcmp(key, param_names[i]) == 0)
			break;
	if (i == NPARAM || p->set[i]) {
		(void)snprintf(p->why, sizeof(p->why), "%s parameter '%.64s'",
		    i == NPARAM ? "unknown" : "twice the", key);
		*why = p->why;
		return -1;
	}
	if (strlcpy(p->val[i], val, sizeof(p->val[i])) >= sizeof(p->val[i])) {
		*why = "value too long";
		return -1;
	}
	p->set[i] = 1;
	p->isstr[i] = isstr;
	return 0;
}

static const char *
param(const struct params *p, const char *name)
{
	size_t i;

	for (i = 0; i < NPARAM; i++)
		if (strcmp(name, param_names[i]) == 0)
			return p->set[i] ? p->val[i] : NULL;
	return NULL;
}

/* Skip JSON white space. */
static const char *
ws(const char *s)
{
	return s + strspn(s, " \t\r\n");
}

/* A JSON string at *s (after the quote) into dst; ASCII escapes only. */
static int
json_string(const char **sp, char *dst, size_t len)
{
	const char *s = *sp;
	size_t n = 0;
	char ch;

	for (;;) {
		ch = *s++;
		if (ch == '"')
			break;
		if (ch == '\0' || (unsigned char)ch < 0x20)
			return -1;
		if (ch == '\\') {
			switch (ch = *s++) {
			case '"': case '\\': case '/':
				break;
			case 'n': ch = '\n'; break;
			case 't': ch = '\t'; break;
			default:
				return -1;
			}
		}
		if (n + 1 >= len)
			return -1;
		dst[n++] = ch;
	}
	dst[n] = '\0';
	*sp = s;
	return 0;
}

/*
 * A flat JSON object of string and number members. Anything else (nested
 * values, true, null, trailing text) is refused: nothing here wants it.
 */
static int
json_params(const char *s, struct params *p, const char **why)
{
	char key[64], val[128];
	size_t n;
	int isstr;

	*why = "body is not a flat JSON object";
	if (*(s = ws(s)) != '{')
		return -1;
	if (*(s = ws(s + 1)) == '}')
		return *ws(s + 1) == '\0' ? 0 : -1;
	for (;;) {
		if (*s != '"' || (s++, json_string(&s, key, sizeof(key))) == -1)
			return -1;
		if (*(s = ws(s)) != ':')
			return -1;
		s = ws(s + 1);
		if ((isstr = *s == '"')) {
			s++;
			if (json_string(&s, val, sizeof(val)) == -1)
				return -1;
		} else {
			n = strspn(s, "-+.0123456789eE");
			if (n == 0 || n >= sizeof(val))
				return -1;
			memcpy(val, s, n);
			val[n] = '\0';
			s += n;
		}
		if (param_put(p, key, val, isstr, why) == -1)
			return -1;
		s = ws(s);
		if (*s == '}')
			break;
		if (*s != ',')
			return -1;
		s = ws(s + 1);
	}
	return *ws(s + 1) == '\0' ? 0 : -1;
}

/* key=value&... with %XX and + decoded. */
static int
form_params(char *s, struct params *p, const char **why)
{
	char *pair, *eq;

	while ((pair = strsep(&s, "&")) != NULL) {
		if (*pair == '\0')
			continue;
		if ((eq = strchr(pair, '=')) == NULL) {
			*why = "form field without '='";
			return -1;
		}
		*eq++ = '\0';
		for (char *q = eq; *q; q++)
			if (*q == '+')
				*q = ' ';
		(void)MHD_http_unescape(pair);
		(void)MHD_http_unescape(eq);
		if (param_put(p, pair, eq, 0, why) == -1)
			return -1;
	}
	return 0;
}

struct qctx {
	struct params	*p;
	const char	*why;
	int		bad;
};

static enum MHD_Result
on_query(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct qctx *q = cls;

	(void)kind;
	if (param_put(q->p, key, value ? value : "", 0, &q->why) == -1) {
		q->bad = 1;
		return MHD_NO;
	}
	return MHD_YES;
}

/* Gather the query and the body; 0, or -1 with why. */
static int
get_params(struct MHD_Connection *c, struct req *r, struct params *p,
    const char **why)
{
	struct qctx q = { p, NULL, 0 };
	memset(p, 0, sizeof(*p));
	(void)MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_query,
	    &q);
	if (q.bad) {
		*why = q.why;
		return -1;
	}
	if (r == NULL || r->len == 0)
		return 0;
	r->body[r->len] = '\0';
	if (strlen(r->body) != r->len) {
		*why = "NUL byte in body";
		return -1;
	}
	/*
	 * A body that opens with '{' is JSON whatever its type says: curl -d
	 * labels everything a form. Anything else is read as a form.
	 */
	if (*ws(r->body) == '{')
		return json_params(r->body, p, why);
	return form_params(r->body, p, why);
}

/* The gate a request names (checked in dispatch), or the default. */
static const char *
gate_param(const struct params *p)
{
	const char *g = param(p, "gate");

	return g != NULL ? g : S.defgate;
}

static enum MHD_Result
api_status(struct MHD_Connection *c, const struct params *p)
{
	struct gate_info gi;
	const char *name;
	char msg[512];
	struct out o;
	unsigned code;

	name = gate_param(p);
	if ((code = gate_snapshot(name, &gi, msg, sizeof(msg))) != 0)
		return send_error(c, code, NULL, "%s", msg);
	if (out_open(&o) == -1) {
		gate_info_free(&gi);
		return MHD_NO;
	}
	report_status_json(o.fp, name, &gi);
	gate_info_free(&gi);
	return send_out(c, MHD_HTTP_OK, &o, JSON, NULL);
}

/* /api/gates, /metrics: every gate, as JSON or Prometheus text. */
static enum MHD_Result
api_all(struct MHD_Connection *c, int metrics)
{
	struct gate_info *gi;
	char **names, msg[512];
	struct out o;
	unsigned code;
	size_t n;

	if ((code = all_snapshots(&names, &gi, &n, msg, sizeof(msg))) != 0)
		return send_error(c, code, NULL, "%s", msg);
	if (out_open(&o) == -1) {
		all_free(names, gi, n);
		return MHD_NO;
	}
	if (metrics)
		report_metrics(o.fp, names, gi, n);
	else
		report_status_all_json(o.fp, names, gi, n);
	all_free(names, gi, n);
	return send_out(c, MHD_HTTP_OK, &o, metrics ?
	    "text/plain; version=0.0.4; charset=utf-8" : JSON, NULL);
}

static enum MHD_Result
api_health(struct MHD_Connection *c, const struct params *p)
{
	struct gate_info gi;
	const char *name, *st;
	char msg[512];
	struct out o;
	unsigned code;
	double u;

	name = gate_param(p);
	code = gate_snapshot(name, &gi, msg, sizeof(msg));
	if (code == MHD_HTTP_NOT_FOUND)
		return send_error(c, code, NULL, "%s", msg);
	if (out_open(&o) == -1) {
		if (code == 0)
			gate_info_free(&gi);
		return MHD_NO;
	}
	if (code != 0) {
		(void)fputs("{\"status\":\"unavailable\",\"message\":", o.fp);
		json_str(o.fp, msg);
		(void)fputs("}\n", o.fp);
		return send_out(c, MHD_HTTP_SERVICE_UNAVAILABLE, &o, JSON,
		    NULL);
	}
	u = gi.limit ? 100.0 * (double)gi.nh / gi.limit : 100;
	st = gi.limit == 0 || u > S.warn ? "warning" : "healthy";
	if (gi.limit == 0)
		(void)snprintf(msg, sizeof(msg), "gate '%.64s' is paused "
		    "(limit 0), %zu waiting", name, gi.nw);
	else
		(void)snprintf(msg, sizeof(msg), "gate '%.64s': %zu/%u active "
		    "(%.0f%%, warning above %u%%), %zu waiting", name, gi.nh,
		    gi.limit, u, S.warn, gi.nw);
	(void)fprintf(o.fp, "{\"status\":\"%s\",\"message\":", st);
	json_str(o.fp, msg);
	(void)fputs(",\"details\":", o.fp);
	report_status_obj(o.fp, name, &gi);
	(void)fputs("}\n", o.fp);
	gate_info_free(&gi);
	return send_out(c, MHD_HTTP_OK, &o, JSON, NULL);
}

/* The client's address, for the log of changes. */
static const char *
peer(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	char port[16];

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || getnameinfo(ci->client_addr,
	    ci->client_addr->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
	    buf, (socklen_t)len, port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		(void)strlcpy(buf, "?", len);
	return buf;
}

/* Open a gate a POST changes: the default one is made if need be. */
static struct gate *
gate_for_change(const char *name, unsigned *code, char *msg, size_t len)
{
	struct gate_info gi;
	struct gate *g;

	if (strcmp(name, S.defgate) != 0) {
		if ((*code = gate_snapshot(name, &gi, msg, len)) != 0)
			return NULL;
		gate_info_free(&gi);
	}
	if (gate_open(&g, S.dir, name, deflimit_of(name), 1, on_notify,
	    NULL) == -1) {
		*code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		(void)snprintf(msg, len, "cannot open gate '%.64s' in %.300s: "
		    "%.100s", name, S.dir, gate_why(errno));
		return NULL;
	}
	return g;
}

static enum MHD_Result
api_limit(struct MHD_Connection *c, const struct params *p)
{
	const char *name, *v;
	char msg[512], pb[64];
	struct gate *g;
	struct out o;
	unsigned code, limit, old;

	name = gate_param(p);
	if ((v = param(p, "max_concurrent")) == NULL)
		return send_error(c, 400, NULL, "max_concurrent is missing");
	if (p->isstr[1] /* max_concurrent: a JSON number, not a string */ ||
	    limit_parse(v, 1, &limit) == -1)
		return send_error(c, 400, NULL, "max_concurrent must be an "
		    "integer from 1 to %d: '%s'%s", GATE_MAX_LIMIT, v,
		    strcmp(v, "0") == 0 ? " (to pause a gate: gaterun --limit "
		    "0)" : "");
	if ((g = gate_for_change(name, &code, msg, sizeof(msg))) == NULL)
		return send_error(c, code, NULL, "%s", msg);
	if (gate_set_limit(g, limit, &old) == -1) {
		(void)snprintf(msg, sizeof(msg), "cannot set the limit of gate "
		    "'%.64s': %.100s", name, gate_why(errno));
		gate_close(g);
		return send_error(c, 500, NULL, "%s", msg);
	}
	gate_close(g);
	warnx("%s: gate '%s': limit %u -> %u", peer(c, pb, sizeof(pb)), name,
	    old, limit);
	if (out_open(&o) == -1)
		return MHD_NO;
	report_limit_json(o.fp, name, old, limit);
	return send_out(c, MHD_HTTP_OK, &o, JSON, NULL);
}

static enum MHD_Result
api_kill(struct MHD_Connection *c, const struct params *p)
{
	struct gate_kill *k;
	const char *name, *v;
	char msg[512], pb[64];
	struct gate *g;
	struct out o;
	unsigned code;
	double grace = S.grace;
	size_t n, i, nok = 0;
	int sig = SIGTERM;

	name = gate_param(p);
	if ((v = param(p, "signal")) != NULL && (sig = signal_parse(v)) == -1)
		return send_error(c, 400, NULL, "unknown signal: '%s'", v);
	if ((v = param(p, "grace")) != NULL && (secs_parse(v, &grace) == -1 ||
	    grace > 3600))
		return send_error(c, 400, NULL, "grace must be 0 to 3600 "
		    "seconds: '%s'", v);
	if ((g = gate_for_change(name, &code, msg, sizeof(msg))) == NULL)
		return send_error(c, code, NULL, "%s", msg);
	if (gate_kill_all(g, sig, grace, &k, &n) == -1) {
		(void)snprintf(msg, sizeof(msg), "cannot kill the commands of "
		    "gate '%.64s': %.100s", name, gate_why(errno));
		gate_close(g);
		return send_error(c, 500, NULL, "%s", msg);
	}
	gate_close(g);
	for (i = 0; i < n; i++)
		if (k[i].error == 0)
			nok++;
	warnx("%s: gate '%s': kill-all: signal %d sent to %zu processes",
	    peer(c, pb, sizeof(pb)), name, sig, nok);
	if (out_open(&o) == -1) {
		free(k);
		return MHD_NO;
	}
	report_kill_json(o.fp, name, k, n);
	free(k);
	return send_out(c, MHD_HTTP_OK, &o, JSON, NULL);
}

/* Hash of a gate name, into S.gate_gen (FNV-1a). */
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
		if (all_snapshots(&names, &gis, &n, msg, sizeof(msg)) != 0)
			goto err;
		(void)fputs("event: status\ndata: ", e->o.fp);
		report_status_all_json(e->o.fp, names, gis, n);
		all_free(names, gis, n);
	} else {
		if (gate_snapshot(e->gate, &gi, msg, sizeof(msg)) != 0)
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

/* Did what e streams change since it was last sent? S.mu held. */
static int
changed_for(const struct sse *e)
{
	if (e->gate == NULL)
		return S.gen != e->gen;
	return S.gate_gen[e->slot] > e->gen || S.all_gen > e->gen;
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
	struct timespec ts, gap;
	int64_t now;
	size_t n;
	int changed = 1;

	(void)pos;
	if (e->o.buf != NULL && e->off == e->o.len) {
		free(e->o.buf);
		e->o.buf = NULL;
	}
	if (e->o.buf == NULL) {
		if (!e->fresh) {
			/* At most one push per SSE_GAP_NS: bursts coalesce. */
			now = mono_ns();
			if (now - e->last_ns < SSE_GAP_NS) {
				gap.tv_sec = 0;
				gap.tv_nsec = (long)(SSE_GAP_NS -
				    (now - e->last_ns));
				(void)nanosleep(&gap, NULL);
			}
			(void)clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += e->ping_s;
			(void)pthread_mutex_lock(&S.mu);
			while (!S.stopping && !changed_for(e) &&
			    pthread_cond_timedwait(&S.changed, &S.mu, &ts) == 0)
				;
			changed = changed_for(e);
			e->gen = S.gen;
			if (S.stopping) {
				(void)pthread_mutex_unlock(&S.mu);
				return MHD_CONTENT_READER_END_OF_STREAM;
			}
			(void)pthread_mutex_unlock(&S.mu);
		}
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

static void
sse_free(void *cls)
{
	struct sse *e = cls;

	free(e->o.buf);
	free(e->gate);
	free(e);
}

static enum MHD_Result
api_events(struct MHD_Connection *c, const struct params *p, unsigned tmo)
{
	struct MHD_Response *r;
	struct gate_info gi;
	const char *name = param(p, "gate");
	struct sse *e;
	char msg[512];
	unsigned code;

	if (name != NULL) {
		if ((code = gate_snapshot(name, &gi, msg, sizeof(msg))) != 0)
			return send_error(c, code, NULL, "%s", msg);
		gate_info_free(&gi);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (name != NULL && (e->gate = strdup(name)) == NULL)) {
		free(e);
		return MHD_NO;
	}
	e->fresh = 1;
	if (name != NULL)
		e->slot = gen_slot(name, strlen(name));
	/* Pings well inside the idle timeout keep a live client's stream. */
	e->ping_s = tmo > 2 ? tmo / 2 : 1;
	(void)pthread_mutex_lock(&S.mu);
	e->gen = S.gen;
	(void)pthread_mutex_unlock(&S.mu);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
	    sse_read, e, sse_free);
	if (r == NULL) {
		sse_free(e);
		return MHD_NO;
	}
	(void)MHD_add_response_header(r, "X-Accel-Buffering", "no");
	return queue(c, MHD_HTTP_OK, r, "text/event-stream");
}

static enum MHD_Result
send_page(struct MHD_Connection *c)
{
	struct MHD_Response *r;

	r = MHD_create_response_from_buffer(sizeof(dashboard) - 1,
	    (void *)(uintptr_t)dashboard, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, "X-Frame-Options", "DENY");
	(void)MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	(void)MHD_add_response_header(r, "Content-Security-Policy",
	    "default-src 'none'; script-src 'unsafe-inline'; "
	    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
	    "frame-ancestors 'none'");
	return queue(c, MHD_HTTP_OK, r, "text/html; charset=utf-8");
}

enum route { R_PAGE, R_STATUS, R_GATES, R_HEALTH, R_METRICS, R_EVENTS,
    R_LIMIT, R_KILL };

static const struct {
	const char	*path;
	enum route	route;
	int		post;
} routes[] = {
	{ "/",				R_PAGE,		0 },
	{ "/api/process-status",	R_STATUS,	0 },
	{ "/api/gates",			R_GATES,	0 },
	{ "/api/health",		R_HEALTH,	0 },
	{ "/metrics",			R_METRICS,	0 },
	{ "/events",			R_EVENTS,	0 },
	{ "/api/process-limit",		R_LIMIT,	1 },
	{ "/api/process-kill-all",	R_KILL,		1 },
};

static enum MHD_Result
dispatch(struct MHD_Connection *c, const char *url, const char *method,
    struct req *r, unsigned tmo)
{
	struct params p;
	const char *why;
	size_t i;
	int post;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(url, routes[i].path) == 0)
			break;
	if (i == sizeof(routes) / sizeof(routes[0]))
		return send_error(c, 404, NULL, "no such endpoint: %s", url);
	post = strcmp(method, "POST") == 0;
	if (routes[i].post ? !post : strcmp(method, "GET") != 0 &&
	    strcmp(method, "HEAD") != 0)
		return send_error(c, 405, routes[i].post ? "POST" : "GET, HEAD",
		    "%s is not allowed on %s", method, url);
	if (r->toolarge)
		return send_error(c, 413, NULL, "body over %d bytes", BODY_MAX);
	if (routes[i].route == R_PAGE)
		return send_page(c);
	if (post && S.tokenlen == 0)
		return send_error(c, 403, NULL, "changes are disabled: the "
		    "server was started without --token-file");
	if ((post || !S.public_read) && !authorized(c))
		return send_error(c, 401, NULL, "missing or wrong bearer "
		    "token");
	if (get_params(c, post ? r : NULL, &p, &why) == -1)
		return send_error(c, 400, NULL, "bad request: %s", why);
	if (param(&p, "gate") != NULL && !gate_name_valid(param(&p, "gate")))
		return send_error(c, 400, NULL, "bad gate name: '%s'",
		    param(&p, "gate"));
	switch (routes[i].route) {
	case R_STATUS:	return api_status(c, &p);
	case R_GATES:	return api_all(c, 0);
	case R_METRICS:	return api_all(c, 1);
	case R_HEALTH:	return api_health(c, &p);
	case R_EVENTS:	return api_events(c, &p, tmo);
	case R_LIMIT:	return api_limit(c, &p);
	case R_KILL:	return api_kill(c, &p);
	default:	return MHD_NO;
	}
}

/*
 * libmicrohttpd calls this first with no body, then with each piece of
 * it, then once more with none: answer then. A body over BODY_MAX is
 * answered 413 at once when its length is announced, else at the end.
 */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *uplen, void **ctx)
{
	unsigned tmo = (unsigned)(uintptr_t)cls;
	struct req *r = *ctx;
	const char *cl;

	(void)version;
	if (r == NULL) {
		if (!host_ok(c))
			return send_error(c, 403, NULL, "Host '%s' refused: "
			    "this server listens on loopback only",
			    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
			    "Host"));
		if ((r = malloc(sizeof(*r))) == NULL)
			return MHD_NO;
		r->len = 0;
		r->toolarge = 0;
		*ctx = r;
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    "Content-Length");
		if (cl != NULL && strtoull(cl, NULL, 10) > BODY_MAX) {
			r->toolarge = 1;
			return dispatch(c, url, method, r, tmo);
		}
		return MHD_YES;
	}
	if (*uplen > 0) {
		if (r->toolarge || *uplen > BODY_MAX - r->len)
			r->toolarge = 1;
		else {
			memcpy(r->body + r->len, upload, *uplen);
			r->len += *uplen;
		}
		*uplen = 0;
		return MHD_YES;
	}
	return dispatch(c, url, method, r, tmo);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)c, (void)toe;
	free(*ctx);
	*ctx = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	warnx("%s", buf);
}

/*
 * Wake the event streams: gate name (len bytes) changed, or with name
 * NULL every gate may have; stop ends them.
 */
static void
bump(const char *name, size_t len, int stop)
{
	(void)pthread_mutex_lock(&S.mu);
	S.gen++;
	if (name != NULL)
		S.gate_gen[gen_slot(name, len)] = S.gen;
	else
		S.all_gen = S.gen;
	if (stop)
		S.stopping = 1;
	(void)pthread_cond_broadcast(&S.changed);
	(void)pthread_mutex_unlock(&S.mu);
}

/*
 * Watch the state directory; while it does not exist, its parent, for
 * it to be made. Every state file replaced, made or removed bumps the
 * generation. Runs until the process ends.
 */
static void *
watcher(void *arg)
{
	char buf[8192] __attribute__((__aligned__(8))), parent[PATH_MAX];
	const struct inotify_event *ev;
	ssize_t n, off;
	int fd, wd = -1, pwd = -1;
	size_t len;
	char *slash;

	(void)arg;
	if ((fd = inotify_init1(IN_CLOEXEC)) == -1) {
		warn("inotify: events will only be pings");
		return NULL;
	}
	(void)strlcpy(parent, S.dir, sizeof(parent));
	if ((slash = strrchr(parent, '/')) != NULL && slash != parent)
		*slash = '\0';
	else if (slash != NULL)
		slash[1] = '\0';
	for (;;) {
		if (wd == -1) {
			wd = inotify_add_watch(fd, S.dir, IN_ONLYDIR |
			    IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
			    IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF);
			if (wd != -1) {
				bump(NULL, 0, 0); /* it may have been made */
				if (pwd != -1)
					(void)inotify_rm_watch(fd, pwd);
				pwd = -1;
			} else if (pwd == -1) {
				pwd = inotify_add_watch(fd, parent, IN_ONLYDIR |
				    IN_CREATE | IN_MOVED_TO);
				if (pwd == -1) {
					warn("cannot watch %s or %s: events "
					    "will only be pings", S.dir,
					    parent);
					(void)close(fd);
					return NULL;
				}
				continue;	/* made meanwhile? */
			}
		}
		if ((n = read(fd, buf, sizeof(buf))) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			warn("inotify read");
			return NULL;
		}
		for (off = 0; off < n; off += (ssize_t)(sizeof(*ev) +
		    ev->len)) {
			ev = (const struct inotify_event *)(buf + off);
			if (ev->wd == wd && (ev->mask & (IN_IGNORED |
			    IN_DELETE_SELF | IN_MOVE_SELF))) {
				if (!(ev->mask & IN_IGNORED))
					(void)inotify_rm_watch(fd, wd);
				wd = -1;	/* gone: wait for it again */
				bump(NULL, 0, 0);
			} else if (ev->wd == wd && ev->len > 0 &&
			    (len = strlen(ev->name)) > 5 &&
			    strcmp(ev->name + len - 5, ".gate") == 0)
				bump(ev->name, len - 5, 0);
			/* Events on the parent: the loop's top looks again. */
		}
	}
}

/* [ADDR:]PORT, [V6ADDR]:PORT, or ADDR alone (port 8080). */
static void
parse_listen(const char *spec, struct sockaddr_storage *ss, int *v6)
{
	char host[256] = "127.0.0.1", *colon;
	const char *port = "8080", *errstr;
	struct addrinfo hints, *ai;
	int e;

	if (strlcpy(host, spec, sizeof(host)) >= sizeof(host))
		errx(EXIT_GATERUN, "address too long: '%s'", spec);
	if (host[0] == '[') {
		if ((colon = strchr(host, ']')) == NULL ||
		    (colon[1] != ':' && colon[1] != '\0'))
			errx(EXIT_GATERUN, "bad address: '%s'", spec);
		*colon = '\0';
		port = colon[1] == ':' ? spec + (colon - host) + 2 : port;
		memmove(host, host + 1, strlen(host));
	} else if ((colon = strrchr(host, ':')) != NULL) {
		*colon = '\0';
		port = spec + (colon - host) + 1;
	} else if (host[strspn(host, "0123456789")] == '\0') {
		port = spec;
		(void)strlcpy(host, "127.0.0.1", sizeof(host));
	}
	(void)strtonum(port, 0, 65535, &errstr);
	if (errstr != NULL || *port == '\0')
		errx(EXIT_GATERUN, "bad port: '%s'", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if ((e = getaddrinfo(host, port, &hints, &ai)) != 0)
		errx(EXIT_GATERUN, "bad address '%s': %s", host,
		    gai_strerror(e));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*v6 = ai->ai_family == AF_INET6;
	freeaddrinfo(ai);
}

static int
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr)
		    >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->
	    sin6_addr);
}

static unsigned
parse_num(const char *s, long long min, long long max, const char *what)
{
	const char *errstr;
	long long v;

	v = strtonum(s, min, max, &errstr);
	if (errstr != NULL)
		errx(EXIT_GATERUN, "%s must be an integer from %lld to %lld: "
		    "'%s'", what, min, max, s);
	return (unsigned)v;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "token-file",		required_argument, NULL, 't' },
		{ "public-read",	no_argument,	   NULL, 'r' },
		{ "gate",		required_argument, NULL, 'g' },
		{ "warn",		required_argument, NULL, 'W' },
		{ "grace",		required_argument, NULL, 'G' },
		{ "max-connections",	required_argument, NULL, 'c' },
		{ "per-ip",		required_argument, NULL, 'p' },
		{ "timeout",		required_argument, NULL, 'T' },
		{ "help",		no_argument,	   NULL, 'h' },
		{ "version",		no_argument,	   NULL, 'V' },
		{ NULL,			0,		   NULL, 0 }
	};
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	struct MHD_Daemon *d;
	const char *e, *why;
	unsigned maxconn = 64, perip = 32, tmo = 15, v;
	char host[128];
	pthread_t wt;
	sigset_t set;
	int ch, v6, sig;

	S.defgate = (e = getenv("GATERUN_GATE")) != NULL && *e ? e : "default";
	S.warn = 80;
	S.grace = 5;
	while ((ch = getopt_long(argc, argv, "t:rg:W:G:c:p:T:hV", longopts,
	    NULL)) != -1)
		switch (ch) {
		case 't':
			S.token_file = optarg;
			break;
		case 'r':
			S.public_read = 1;
			break;
		case 'g':
			S.defgate = optarg;
			break;
		case 'W':
			S.warn = parse_num(optarg, 0, 100, "--warn");
			break;
		case 'G':
			if (secs_parse(optarg, &S.grace) == -1 ||
			    S.grace > 3600)
				errx(EXIT_GATERUN, "--grace must be 0 to 3600 "
				    "seconds: '%s'", optarg);
			break;
		case 'c':
			maxconn = parse_num(optarg, 1, 4096,
			    "--max-connections");
			break;
		case 'p':
			perip = parse_num(optarg, 1, 4096, "--per-ip");
			break;
		case 'T':
			tmo = parse_num(optarg, 1, 3600, "--timeout");
			break;
		case 'h':
			usage(0);
		case 'V':
			(void)printf("gaterun-httpd %s (libmicrohttpd %s)\n",
			    PACKAGE_VERSION, MHD_get_version());
			return 0;
		default:
			usage(EXIT_GATERUN);
		}
	if (argc - optind > 1)
		usage(EXIT_GATERUN);
	if (!gate_name_valid(S.defgate))
		errx(EXIT_GATERUN, "bad gate name: '%s'", S.defgate);
	e = getenv("GATERUN_LIMIT");
	if (e != NULL && limit_parse(e, 0, &v) == -1)
		errx(EXIT_GATERUN, "GATERUN_LIMIT must be an integer from 0 "
		    "to %d: '%s'", GATE_MAX_LIMIT, e);
	if (S.token_file == NULL && !S.public_read)
		errx(EXIT_GATERUN, "no --token-file: give one, or "
		    "--public-read for a read-only server");
	if (S.token_file != NULL &&
	    token_read(S.token, &S.tokenlen, &why) == -1)
		errx(EXIT_GATERUN, "cannot use token file %s: %s", S.token_file,
		    why);
	parse_listen(optind < argc ? argv[optind] : "127.0.0.1:8080", &ss,
	    &v6);
	S.loopback = is_loopback(&ss);
	S.dir = state_dir();
	S.conf = (e = getenv("GATERUN_CONF")) != NULL && *e ? e : GATERUN_CONF;

	/* Signals are taken by sigwait below, in this thread only. */
	(void)signal(SIGPIPE, SIG_IGN);
	(void)sigemptyset(&set);
	(void)sigaddset(&set, SIGTERM);
	(void)sigaddset(&set, SIGINT);
	(void)sigaddset(&set, SIGHUP);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((errno = pthread_create(&wt, NULL, watcher, NULL)) != 0)
		err(EXIT_GATERUN, "cannot start the watcher thread");
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
	    (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
	    on_request, (void *)(uintptr_t)tmo,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, maxconn,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, perip,
	    MHD_OPTION_CONNECTION_TIMEOUT, tmo,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)512 * 1024,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_END);
	if (d == NULL)
		errx(EXIT_GATERUN, "cannot listen on %s",
		    optind < argc ? argv[optind] : "127.0.0.1:8080");
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (getnameinfo((struct sockaddr *)&ss, v6 ? sizeof(struct
	    sockaddr_in6) : sizeof(struct sockaddr_in), host, sizeof(host),
	    NULL, 0, NI_NUMERICHOST) != 0)
		(void)strlcpy(host, "?", sizeof(host));
	(void)printf("gaterun-httpd: listening on http://%s%s%s:%u/ "
	    "(gates in %s)\n", v6 ? "[" : "", host, v6 ? "]" : "",
	    di ? (unsigned)di->port : 0, S.dir);
	(void)fflush(stdout);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		if (S.token_file == NULL)
			continue;
		{
			char tok[TOKEN_MAX] = "";
			size_t len;

			if (token_read(tok, &len, &why) == -1) {
				warnx("SIGHUP: token file %s not re-read: %s",
				    S.token_file, why);
				continue;
			}
			(void)pthread_mutex_lock(&S.mu);
			memcpy(S.token, tok, sizeof(S.token));
			S.tokenlen = len;
			(void)pthread_mutex_unlock(&S.mu);
			explicit_bzero(tok, sizeof(tok));
			warnx("SIGHUP: token re-read");
		}
	}
	bump(NULL, 0, 1);	/* event streams end */
	MHD_stop_daemon(d);
	return 0;
}
