/*
 * gaterun-httpd's API: how a gate is read for an answer (snapshots, the
 * limit a gate not made yet would get, errors worded for a person), the
 * parameters of a request (query string, JSON object or form body), the
 * JSON endpoints, and the table that routes a request to its endpoint.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "conffile.h"
#include "gate.h"
#include "httpd.h"
#include "report.h"

/* Engine warnings (a damaged state moved aside...) go to the log. */
static void
on_notify(void *arg, const char *msg)
{
	(void)arg;
	warnx("%s", msg);
}

/*
 * The limit a gate made now gets, as gaterun(1) gives it (limit_default:
 * GATERUN_LIMIT, checked at start, then its section or the file, else
 * the default). A wrong file is logged.
 */
unsigned
deflimit_of(const struct server *sv, const char *gate)
{
	struct config c;
	char why[512];
	unsigned v;
	int ok;

	if (!(ok = config_read(sv->conf, gate, &c, why, sizeof(why)) == 0))
		warnx("%s", why);
	(void)limit_default(ok ? &c : NULL, &v);
	return v;
}

/*
 * Open gate name and snapshot it. An unknown gate other than the default
 * one is 404, unless read from a Redis replica with no gaterun data (it
 * cannot tell: shown as new, with replica_unsynced). Returns 0, or the
 * HTTP code with msg set.
 */
unsigned
gate_snapshot(const struct server *sv, const char *name,
    struct gate_info *gi, char *msg, size_t len)
{
	struct gate *g;

	memset(gi, 0, sizeof(*gi));
	if (gate_open(&g, sv->dir, name, deflimit_of(sv, name), 0, on_notify,
	    NULL) == -1) {
		(void)snprintf(msg, len, "cannot open gate '%.64s' in %.300s: "
		    "%.100s", name, sv->where, gate_strerror(errno));
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	if (gate_info(g, gi) == -1) {
		(void)snprintf(msg, len, "cannot read gate '%.64s' in %.300s: "
		    "%.100s", name, sv->where, gate_strerror(errno));
		gate_close(g);
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	gate_close(g);
	if (!gi->exists && !gi->replica_unsynced &&
	    strcmp(name, sv->defgate) != 0) {
		gate_info_free(gi);
		(void)snprintf(msg, len, "no gate '%s'", name);
		return MHD_HTTP_NOT_FOUND;
	}
	return 0;
}

/*
 * Snapshots of every gate, for /api/gates, /metrics and /events: those
 * that can be read (snapshots_of); each that cannot is logged by name.
 */
unsigned
all_snapshots(const struct server *sv, char ***names, struct gate_info **gip,
    size_t *np, char *msg, size_t len)
{
	struct snapshots s;
	size_t i;

	if (snapshots_of(sv->dir, NULL, sv->conf, on_notify, &s) == -1) {
		(void)snprintf(msg, len, "cannot list %s: %s", sv->where,
		    gate_strerror(errno));
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	/* all_free() frees the n names read: the others go now. */
	for (i = 0; i < s.nfailed; i++) {
		warnx("%s", s.why[i]);
		free(s.why[i]);
		free(s.names[s.n + i]);
	}
	free(s.why);
	*names = s.names;
	*gip = s.gi;
	*np = s.n;
	return 0;
}

/* Free what all_snapshots() gave. */
void
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
static const char *const param_names[NPARAM] = { "gate", "max_concurrent",
    "signal", "grace" };

/* Record key=val in p; an unknown key or one given twice is refused. */
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

/*
 * param_put() of a key and a value %-decoded to klen and vlen bytes: a
 * NUL among them (%00) would cut them short, and is refused.
 */
static int
param_put_n(struct params *p, const char *key, size_t klen, const char *val,
    size_t vlen, const char **why)
{
	if (strlen(key) != klen) {
		*why = "NUL byte in a parameter name";
		return -1;
	}
	if (strlen(val) != vlen) {
		(void)snprintf(p->why, sizeof(p->why), "NUL byte in parameter "
		    "'%.64s'", key);
		*why = p->why;
		return -1;
	}
	return param_put(p, key, val, 0, why);
}

/* The value of parameter name, or NULL when the request gave none. */
const char *
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

/* Four hex digits at s: their value, or -1. */
static long
hex4(const char *s)
{
	long v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return -1;
		v = v * 16 + (isdigit((unsigned char)s[i]) ? s[i] - '0' :
		    tolower((unsigned char)s[i]) - 'a' + 10);
	}
	return v;
}

/*
 * The code point of a \uXXXX escape at *sp (after the u), a surrogate
 * pair read as one; *sp is moved past it. -1 for U+0000 (it would cut the
 * value short) and for half a pair.
 */
static long
json_unicode(const char **sp)
{
	const char *s = *sp;
	long cp, lo;

	if ((cp = hex4(s)) <= 0 || (cp >= 0xdc00 && cp <= 0xdfff))
		return -1;
	s += 4;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (s[0] != '\\' || s[1] != 'u' ||
		    (lo = hex4(s + 2)) < 0xdc00 || lo > 0xdfff)
			return -1;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		s += 6;
	}
	*sp = s;
	return cp;
}

/* Code point cp as UTF-8 at dst (room for 4 bytes); its length. */
static size_t
utf8_put(char *dst, long cp)
{
	if (cp < 0x80) {
		dst[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (char)(0xc0 | cp >> 6);
		dst[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		dst[0] = (char)(0xe0 | cp >> 12);
		dst[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		dst[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	dst[0] = (char)(0xf0 | cp >> 18);
	dst[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	dst[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	dst[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * One escape at *sp (after the backslash) into dst (room for 4 bytes):
 * its length, or 0 when it is not one of JSON's (why set).
 */
static size_t
json_escape(const char **sp, char *dst, const char **why)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *hit;
	long cp;

	if (**sp == 'u') {
		(*sp)++;
		if ((cp = json_unicode(sp)) == -1) {
			*why = "bad \\u escape in a JSON string: U+0000, not "
			    "four hex digits, or half a surrogate pair";
			return 0;
		}
		return utf8_put(dst, cp);
	}
	if (**sp == '\0' || (hit = strchr(from, **sp)) == NULL)
		return 0;
	(*sp)++;
	*dst = to[hit - from];
	return 1;
}

/* A JSON string at *s (after the quote) into dst, escapes decoded. */
static int
json_string(const char **sp, char *dst, size_t len, const char **why)
{
	const char *s = *sp;
	char ch, esc[4];
	size_t n = 0, k;

	for (;;) {
		ch = *s++;
		if (ch == '"')
			break;
		if (ch == '\0' || (unsigned char)ch < 0x20)
			return -1;
		if (ch == '\\') {
			if ((k = json_escape(&s, esc, why)) == 0)
				return -1;
		} else {
			esc[0] = ch;
			k = 1;
		}
		if (n + k >= len)
			return -1;
		memcpy(dst + n, esc, k);
		n += k;
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
		if (*s != '"' ||
		    (s++, json_string(&s, key, sizeof(key), why)) == -1)
			return -1;
		if (*(s = ws(s)) != ':')
			return -1;
		s = ws(s + 1);
		if ((isstr = *s == '"')) {
			s++;
			if (json_string(&s, val, sizeof(val), why) == -1)
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
	size_t klen, vlen;

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
		klen = MHD_http_unescape(pair);
		vlen = MHD_http_unescape(eq);
		if (param_put_n(p, pair, klen, eq, vlen, why) == -1)
			return -1;
	}
	return 0;
}

/* What on_query() fills while libmicrohttpd walks the query string. */
struct qctx {
	struct params	*p;
	const char	*why;
	int		bad;
};

/* One key=value of the query string, decoded to key_size, value_size. */
static enum MHD_Result
on_query(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct qctx *q = cls;

	(void)kind;
	if (param_put_n(q->p, key, key_size, value ? value : "", value_size,
	    &q->why) == -1) {
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
	(void)MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, on_query,
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
gate_param(const struct server *sv, const struct params *p)
{
	const char *g = param(p, "gate");

	return g != NULL ? g : sv->defgate;
}

/* GET /api/process-status: one gate, as gaterun --status --json. */
static enum MHD_Result
api_status(const struct server *sv, struct MHD_Connection *c,
    const struct params *p)
{
	struct gate_info gi;
	const char *name;
	char msg[512];
	struct out o;
	unsigned code;

	name = gate_param(sv, p);
	if ((code = gate_snapshot(sv, name, &gi, msg, sizeof(msg))) != 0)
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
api_all(const struct server *sv, struct MHD_Connection *c, int metrics)
{
	struct gate_info *gi;
	char **names, msg[512];
	struct out o;
	unsigned code;
	size_t n;

	if ((code = all_snapshots(sv, &names, &gi, &n, msg, sizeof(msg))) != 0)
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

/* GET /api/health: healthy, warning, or 503 when the gate is unreadable. */
static enum MHD_Result
api_health(const struct server *sv, struct MHD_Connection *c,
    const struct params *p)
{
	struct gate_info gi;
	const char *name, *st;
	char msg[512], hb[400];
	struct out o;
	unsigned code;
	double u;

	name = gate_param(sv, p);
	code = gate_snapshot(sv, name, &gi, msg, sizeof(msg));
	if (code == MHD_HTTP_NOT_FOUND)
		return send_error(c, code, NULL, "%s", msg);
	if (code == 0 && gi.replica_unsynced) {	/* a new gate's, not its own */
		gate_info_free(&gi);
		code = MHD_HTTP_SERVICE_UNAVAILABLE;
		(void)snprintf(msg, sizeof(msg), "gate '%.64s' cannot be read: "
		    "the Redis server is a read-only replica with no gaterun "
		    "data (not synced with its master yet, or none there)", name);
	}
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
	st = gi.limit == 0 || gi.hold_until != 0 || u > sv->warn ? "warning" :
	    "healthy";
	if (gi.hold_until != 0)
		(void)snprintf(msg, sizeof(msg), "gate '%.64s' is %s", name,
		    report_hold(hb, sizeof(hb), gi.hold_until, gi.hold_why,
		    gi.limit_lost));
	else if (gi.limit == 0)
		(void)snprintf(msg, sizeof(msg), "gate '%.64s' is paused "
		    "(limit 0), %zu waiting", name, gi.nw);
	else
		(void)snprintf(msg, sizeof(msg), "gate '%.64s': %zu/%u active "
		    "(%.0f%%, warning above %u%%), %zu waiting", name, gi.nh,
		    gi.limit, u, sv->warn, gi.nw);
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
gate_for_change(const struct server *sv, const char *name, unsigned *code,
    char *msg, size_t len)
{
	struct gate_info gi;
	struct gate *g;

	if (strcmp(name, sv->defgate) != 0) {
		if ((*code = gate_snapshot(sv, name, &gi, msg, len)) != 0)
			return NULL;
		gate_info_free(&gi);
	}
	if (gate_open(&g, sv->dir, name, deflimit_of(sv, name), 1, on_notify,
	    NULL) == -1) {
		*code = MHD_HTTP_INTERNAL_SERVER_ERROR;
		(void)snprintf(msg, len, "cannot open gate '%.64s' in %.300s: "
		    "%.100s", name, sv->where, gate_strerror(errno));
		return NULL;
	}
	return g;
}

/* POST /api/process-limit: set the limit, log who did. */
static enum MHD_Result
api_limit(const struct server *sv, struct MHD_Connection *c,
    const struct params *p)
{
	const char *name, *v;
	char msg[512], pb[64], ob[16];
	struct gate *g;
	struct out o;
	unsigned code, limit, old;
	int64_t until;
	int why, lost;

	name = gate_param(sv, p);
	if ((v = param(p, "max_concurrent")) == NULL)
		return send_error(c, 400, NULL, "max_concurrent is missing");
	if (p->isstr[1] /* max_concurrent: a JSON number, not a string */ ||
	    limit_parse(v, 1, &limit) == -1)
		return send_error(c, 400, NULL, "max_concurrent must be an "
		    "integer from 1 to %d: '%s'%s", GATE_MAX_LIMIT, v,
		    strcmp(v, "0") == 0 ? " (to pause a gate: gaterun --limit "
		    "0)" : "");
	if ((g = gate_for_change(sv, name, &code, msg, sizeof(msg))) == NULL)
		return send_error(c, code, NULL, "%s", msg);
	if (gate_set_limit(g, limit, &old) == -1) {
		(void)snprintf(msg, sizeof(msg), "cannot set the limit of gate "
		    "'%.64s': %.100s", name, gate_strerror(errno));
		gate_close(g);
		return send_error(c, 500, NULL, "%s", msg);
	}
	/* After a loss of a Redis server's data the old one may be unknown. */
	lost = gate_hold(g, &until, &why, &lost) && lost;
	gate_close(g);
	(void)snprintf(ob, sizeof(ob), "%u", old);
	warnx("%s: gate '%s': limit %s -> %u", peer(c, pb, sizeof(pb)), name,
	    lost ? "unknown (lost with the Redis server's data)" : ob, limit);
	if (out_open(&o) == -1)
		return MHD_NO;
	report_limit_json(o.fp, name, lost ? -1 : (long long)old, limit, NULL);
	return send_out(c, MHD_HTTP_OK, &o, JSON, NULL);
}

/* POST /api/process-kill-all: signal every command, log who did. */
static enum MHD_Result
api_kill(const struct server *sv, struct MHD_Connection *c,
    const struct params *p)
{
	struct gate_kill *k;
	const char *name, *v;
	char msg[512], pb[64];
	struct gate *g;
	struct out o;
	unsigned code;
	double grace = sv->grace;
	size_t n, i, nok = 0;
	int sig = SIGTERM;

	name = gate_param(sv, p);
	if ((v = param(p, "signal")) != NULL && (sig = signal_parse(v)) == -1)
		return send_error(c, 400, NULL, "unknown signal: '%s'", v);
	if ((v = param(p, "grace")) != NULL && (secs_parse(v, &grace) == -1 ||
	    grace > 3600))
		return send_error(c, 400, NULL, "grace must be 0 to 3600 "
		    "seconds: '%s'", v);
	if ((g = gate_for_change(sv, name, &code, msg, sizeof(msg))) == NULL)
		return send_error(c, code, NULL, "%s", msg);
	if (gate_kill_all(g, sig, grace, &k, &n) == -1) {
		/* As the command line says it (admin.c, do_kill). */
		(void)snprintf(msg, sizeof(msg), "cannot kill the commands of "
		    "gate '%.64s': %.300s%s", name, gate_strerror(errno),
		    gate_lease_period(g) > 0 ? ": nothing was sent, no command "
		    "was signalled" : "");
		gate_close(g);
		return send_error(c, 500, NULL, "%s", msg);
	}
	gate_close(g);
	for (i = 0; i < n; i++)
		if (k[i].error == 0)
			nok++;
	warnx("%s: gate '%s': kill-all: signal %s sent to %zu process%s",
	    peer(c, pb, sizeof(pb)), name, sigabbrev_np(sig) != NULL ?
	    sigabbrev_np(sig) : "?", nok, nok == 1 ? "" : "es");
	if (out_open(&o) == -1) {
		free(k);
		return MHD_NO;
	}
	report_kill_json(o.fp, name, k, n);
	free(k);
	return send_out(c, MHD_HTTP_OK, &o, JSON, NULL);
}

/* Every endpoint: its path, and whether it takes POST or GET/HEAD. */
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

/*
 * A whole request: find its route, check method, size and token, gather
 * its parameters and answer it.
 */
enum MHD_Result
dispatch(struct server *sv, struct MHD_Connection *c, const char *url,
    const char *method, struct req *r)
{
	struct params p;
	const char *why;
	name_buf nb;
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
	if (post && sv->tokenlen == 0)
		return send_error(c, 403, NULL, "changes are disabled: the "
		    "server was started without --token-file");
	if ((post || !sv->public_read) && !authorized(sv, c))
		return send_error(c, 401, NULL, "missing or wrong bearer "
		    "token");
	if (get_params(c, post ? r : NULL, &p, &why) == -1)
		return send_error(c, 400, NULL, "bad request: %s", why);
	if (param(&p, "gate") != NULL && !gate_name_valid(param(&p, "gate")))
		return send_error(c, 400, NULL, "bad gate name: '%s'",
		    name_shown(param(&p, "gate"), nb));
	switch (routes[i].route) {
	case R_STATUS:	return api_status(sv, c, &p);
	case R_GATES:	return api_all(sv, c, 0);
	case R_METRICS:	return api_all(sv, c, 1);
	case R_HEALTH:	return api_health(sv, c, &p);
	case R_EVENTS:	return api_events(sv, c, &p);
	case R_LIMIT:	return api_limit(sv, c, &p);
	case R_KILL:	return api_kill(sv, c, &p);
	default:	return MHD_NO;
	}
}
