/*
 * gaterun-httpd: the gate over HTTP. The same three operations as the
 * command line (status, limit, kill-all) as JSON endpoints, health and
 * Prometheus metrics, Server-Sent Events pushed when a state file changes
 * (lib's gate_watch: no polling), and a self-contained live dashboard.
 *
 * A program of its own rather than gaterun --serve, so that the wrapper
 * every command goes through links neither libmicrohttpd nor threads.
 * libmicrohttpd runs a thread per connection: a kill-all waiting out its
 * grace period, or an event stream waiting for a change, blocks only its
 * own client; httpd_conn.c's limits (in all, per address) and deadline on
 * receiving a whole request keep slow or flooding clients from starving
 * the others.
 *
 * This file owns the options, the daemon's setup, the reading of each
 * request, how every answer is sent, and the signals (SIGHUP re-reads the
 * token). httpd_auth.c checks who asks, httpd_api.c answers, httpd_events.c
 * streams changes, httpd_page.c serves the dashboard.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "exitcodes.h"
#include "gate.h"
#include "locate.h"
#include "httpd.h"
#include "report.h"

#define CONN_SPARE	16	/* connections being closed, beyond -c */

/* What the command line asks for besides struct server. */
struct opts {
	const char	*addr;		/* [ADDR:]PORT */
	unsigned	maxconn;	/* -c */
	unsigned	perip;		/* -p */
	unsigned	reqtime;	/* -R */
};

/* The usage lines; with --help (status 0), what each option does. */
static void __attribute__((__noreturn__))
usage(int status)
{
	FILE *fp = status ? stderr : stdout;

	(void)fprintf(fp,
"usage: gaterun-httpd [-r] [-t TOKEN_FILE] [-g GATE] [-W PCT] [-G SECONDS]\n"
"                     [-c MAX] [-p MAX] [-T SECONDS] [-R SECONDS]\n"
"                     [[ADDR:]PORT]\n"
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
"  -p, --per-ip N         connections at once from one address (default 16)\n"
"                         (when full, the one waiting longest for a whole\n"
"                         request is closed to make room)\n"
"  -T, --timeout SECONDS  close a connection idle this long (default 15)\n"
"  -R, --request-timeout SECONDS  close a connection that has not sent a\n"
"                         whole request this long after it opened or was\n"
"                         last answered (default 10)\n"
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

/* Open o as an in-memory stream; 0, or -1. */
int
out_open(struct out *o)
{
	o->buf = NULL;
	o->len = 0;
	return (o->fp = open_memstream(&o->buf, &o->len)) == NULL ? -1 : 0;
}

/* Queue r with the headers every answer has, then let go of it. */
enum MHD_Result
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
enum MHD_Result
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

/* {"error":"...","code":N}; a 405 names the allowed method. */
enum MHD_Result
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

/* The request is whole, or decided on its headers: answer it. */
static enum MHD_Result
answer(struct server *sv, struct MHD_Connection *c, const char *url,
    const char *method, struct req *r)
{
	conns_received(c);
	return dispatch(sv, c, url, method, r);
}

/*
 * libmicrohttpd calls this first with no body, then with each piece of
 * it, then once more with none: answer then. A wrong Host is answered at
 * once; a body over BODY_MAX, at once when its length is announced, else
 * at the end.
 */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *uplen, void **ctx)
{
	struct server *sv = cls;
	struct req *r = *ctx;
	const char *cl;
	char msg[256];
	unsigned code;

	if (r == NULL) {
		code = host_check(sv, c, version, msg, sizeof(msg));
		if (code != 0) {
			conns_received(c);
			return send_error(c, code, NULL, "%s", msg);
		}
		if ((r = malloc(sizeof(*r))) == NULL)
			return MHD_NO;
		r->len = 0;
		r->toolarge = 0;
		*ctx = r;
		cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    "Content-Length");
		if (cl != NULL && strtoull(cl, NULL, 10) > BODY_MAX) {
			r->toolarge = 1;
			return answer(sv, c, url, method, r);
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
	return answer(sv, c, url, method, r);
}

/*
 * The request is answered (or abandoned): free what on_request kept; an
 * answer sent whole starts the deadline of the next request.
 */
static void
on_completed(void *cls, struct MHD_Connection *c, void **ctx,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		conns_answered(c);
	free(*ctx);
	*ctx = NULL;
}

/* libmicrohttpd's own messages go to the log as ours do. */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	warnx("%s", buf);
}

/* [ADDR:]PORT, [V6ADDR]:PORT, or ADDR alone (port 8080); or die. */
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

/* The address is a loopback one (127/8, ::1). */
static int
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr)
		    >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->
	    sin6_addr);
}

/* An option's integer min..max, or die naming the option. */
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

/* The options; the listening address in o->addr. */
static void
parse_args(int argc, char **argv, struct server *sv, struct opts *o)
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
		{ "request-timeout",	required_argument, NULL, 'R' },
		{ "help",		no_argument,	   NULL, 'h' },
		{ "version",		no_argument,	   NULL, 'V' },
		{ NULL,			0,		   NULL, 0 }
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "t:rg:W:G:c:p:T:R:hV", longopts,
	    NULL)) != -1)
		switch (ch) {
		case 't':
			sv->token_file = optarg;
			break;
		case 'r':
			sv->public_read = 1;
			break;
		case 'g':
			sv->defgate = optarg;
			break;
		case 'W':
			sv->warn = parse_num(optarg, 0, 100, "--warn");
			break;
		case 'G':
			if (secs_parse(optarg, &sv->grace) == -1 ||
			    sv->grace > 3600)
				errx(EXIT_GATERUN, "--grace must be 0 to 3600 "
				    "seconds: '%s'", optarg);
			break;
		case 'c':
			o->maxconn = parse_num(optarg, 1, 4096,
			    "--max-connections");
			break;
		case 'p':
			o->perip = parse_num(optarg, 1, 4096, "--per-ip");
			break;
		case 'T':
			sv->timeout = parse_num(optarg, 1, 3600, "--timeout");
			break;
		case 'R':
			o->reqtime = parse_num(optarg, 1, 3600,
			    "--request-timeout");
			break;
		case 'h':
			usage(0);
		case 'V':
			(void)printf("gaterun-httpd %s (libmicrohttpd %s)\n",
			    PACKAGE_VERSION, MHD_get_version());
			exit(0);
		default:
			usage(EXIT_GATERUN);
		}
	if (argc - optind > 1)
		usage(EXIT_GATERUN);
	if (optind < argc)
		o->addr = argv[optind];
}

/* What the options and the environment ask for is usable, or die. */
static void
check_args(struct server *sv)
{
	const char *e, *why;
	name_buf nb;
	unsigned v;

	if (!gate_name_valid(sv->defgate))
		errx(EXIT_GATERUN, "bad gate name: '%s'",
		    name_shown(sv->defgate, nb));
	e = getenv("GATERUN_LIMIT");
	if (e != NULL && limit_parse(e, 0, &v) == -1)
		errx(EXIT_GATERUN, "GATERUN_LIMIT must be an integer from 0 "
		    "to %d: '%s'", GATE_MAX_LIMIT, e);
	if (sv->token_file == NULL && !sv->public_read)
		errx(EXIT_GATERUN, "no --token-file: give one, or "
		    "--public-read for a read-only server");
	if (sv->token_file != NULL &&
	    token_read(sv, sv->token, &sv->tokenlen, &why) == -1)
		errx(EXIT_GATERUN, "cannot use token file %s: %s",
		    sv->token_file, why);
}

/*
 * Start libmicrohttpd on ss, a thread per connection, and say where it
 * listens; or die. httpd_conn.c bounds the connections (libmicrohttpd's
 * own limit leaves room for those it is closing) and their requests.
 */
static struct MHD_Daemon *
serve(struct server *sv, const struct opts *o,
    const struct sockaddr_storage *ss, int v6)
{
	const union MHD_DaemonInfo *di;
	struct MHD_Daemon *d;
	char host[128];
	void *cs;

	if ((cs = conns_start(o->maxconn, o->perip, o->reqtime)) == NULL)
		err(EXIT_GATERUN, "cannot start the connection reaper");
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
	    (v6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL, on_request, sv,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss,
	    MHD_OPTION_CONNECTION_LIMIT, o->maxconn + CONN_SPARE,
	    MHD_OPTION_NOTIFY_CONNECTION, conns_notify, cs,
	    MHD_OPTION_CONNECTION_TIMEOUT, sv->timeout,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)512 * 1024,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_END);
	if (d == NULL)
		errx(EXIT_GATERUN, "cannot listen on %s", o->addr);
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (getnameinfo((const struct sockaddr *)ss, v6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in), host,
	    sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		(void)strlcpy(host, "?", sizeof(host));
	(void)printf("gaterun-httpd: listening on http://%s%s%s:%u/ "
	    "(gates in %s)\n", v6 ? "[" : "", host, v6 ? "]" : "",
	    di ? (unsigned)di->port : 0, sv->where);
	(void)fflush(stdout);
	return d;
}

/* SIGHUP: read the token file again; a bad one keeps the old token. */
static void
token_reload(struct server *sv)
{
	char tok[TOKEN_MAX] = "";
	const char *why;
	size_t len;

	if (sv->token_file == NULL)
		return;
	if (token_read(sv, tok, &len, &why) == -1) {
		warnx("SIGHUP: token file %s not re-read: %s", sv->token_file,
		    why);
		return;
	}
	(void)pthread_mutex_lock(&sv->mu);
	memcpy(sv->token, tok, sizeof(sv->token));
	sv->tokenlen = len;
	(void)pthread_mutex_unlock(&sv->mu);
	explicit_bzero(tok, sizeof(tok));
	warnx("SIGHUP: token re-read");
}

/*
 * Block the signals this thread takes with sigwait (every thread started
 * after inherits the mask); ignore SIGPIPE.
 */
static void
signals_block(sigset_t *set)
{
	(void)signal(SIGPIPE, SIG_IGN);
	(void)sigemptyset(set);
	(void)sigaddset(set, SIGTERM);
	(void)sigaddset(set, SIGINT);
	(void)sigaddset(set, SIGHUP);
	(void)pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Take signals until SIGTERM or SIGINT; SIGHUP re-reads the token. */
static void
signals_wait(struct server *sv, const sigset_t *set)
{
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig != SIGHUP)
			break;
		token_reload(sv);
	}
}

/* Parse, check, serve until SIGTERM or SIGINT. */
int
main(int argc, char **argv)
{
	static struct server sv = {
		.mu = PTHREAD_MUTEX_INITIALIZER,
		.changed = PTHREAD_COND_INITIALIZER,
		.warn = 80,
		.grace = 5,
		.timeout = 15,
	};
	struct opts o = { "127.0.0.1:8080", 64, 16, 10 };
	struct sockaddr_storage ss;
	struct MHD_Daemon *d;
	const char *e;
	pthread_t wt;
	sigset_t set;
	int v6;

	sv.defgate = (e = getenv("GATERUN_GATE")) != NULL && *e ? e : "default";
	parse_args(argc, argv, &sv, &o);
	check_args(&sv);
	parse_listen(o.addr, &ss, &v6);
	sv.loopback = is_loopback(&ss);
	sv.dir = state_dir();
	locate_redact(sv.dir, sv.where, sizeof(sv.where));
	sv.conf = (e = getenv("GATERUN_CONF")) != NULL && *e ? e :
	    GATERUN_CONF;

	signals_block(&set);
	if ((errno = pthread_create(&wt, NULL, watcher, &sv)) != 0)
		err(EXIT_GATERUN, "cannot start the watcher thread");
	d = serve(&sv, &o, &ss, v6);
	signals_wait(&sv, &set);
	bump(&sv, NULL, 0, 1);	/* event streams end */
	MHD_stop_daemon(d);
	return 0;
}
