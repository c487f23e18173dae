/*
 * What the parts of gaterun-httpd share: the server's settings and the
 * state its threads share (struct server, one per process, passed down),
 * a request being read, a response being built, and the functions one
 * part calls in another.
 */
#ifndef GATERUN_HTTPD_H
#define GATERUN_HTTPD_H

#include <sys/types.h>

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "gate.h"

#define BODY_MAX	4096		/* a POST body larger is 413 */
#define TOKEN_MAX	256
#define GEN_SLOTS	256		/* a collision costs a spare push */
#define JSON		"application/json"

/* The server: settings from the command line, then what threads share. */
struct server {
	const char	*dir;		/* the state directory */
	char		where[1024];	/* dir as shown: no password */
	const char	*conf;		/* gaterun.conf */
	const char	*token_file;
	const char	*defgate;
	unsigned	warn;		/* health: warning above, percent */
	double		grace;		/* kill-all: SIGKILL after */
	unsigned	timeout;	/* idle timeout, seconds */
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

/* The parameters of a request (httpd_api.c). */
#define NPARAM	4
struct params {
	char	why[160];
	char	val[NPARAM][128];
	int	set[NPARAM];
	int	isstr[NPARAM];		/* a JSON string, not a number */
};

/* httpd.c: open o as an in-memory stream; 0, or -1. */
int	out_open(struct out *);
/* httpd.c: queue r with the headers every answer has, then let go of it. */
enum MHD_Result	queue(struct MHD_Connection *, unsigned,
	    struct MHD_Response *, const char *);
/* httpd.c: queue o's text as the response (of type, Allow: allow). */
enum MHD_Result	send_out(struct MHD_Connection *, unsigned, struct out *,
	    const char *, const char *);
/* httpd.c: {"error":"...","code":N}; a 405 names the allowed methods. */
enum MHD_Result	send_error(struct MHD_Connection *, unsigned, const char *,
	    const char *, ...) __attribute__((__format__(__printf__, 4, 5)));

/* httpd_auth.c: read the token file into tok; 0, or -1 with why set. */
int	token_read(const struct server *, char *, size_t *, const char **);
/* httpd_auth.c: the request carries the bearer token. */
int	authorized(struct server *, struct MHD_Connection *);
/* httpd_auth.c: the Host header is right; 0, or an HTTP code with msg. */
unsigned	host_check(const struct server *, struct MHD_Connection *,
	    const char *, char *, size_t);

/* httpd_api.c: the limit a gate made now gets. */
unsigned	deflimit_of(const struct server *, const char *);
/* httpd_api.c: snapshot a gate; 0, or an HTTP code with msg set. */
unsigned	gate_snapshot(const struct server *, const char *,
	    struct gate_info *, char *, size_t);
/* httpd_api.c: snapshots of every gate; 0, or an HTTP code with msg. */
unsigned	all_snapshots(const struct server *, char ***,
	    struct gate_info **, size_t *, char *, size_t);
/* httpd_api.c: free what all_snapshots gave. */
void	all_free(char **, struct gate_info *, size_t);
/* httpd_api.c: a parameter's value, or NULL when not given. */
const char	*param(const struct params *, const char *);
/* httpd_api.c: route a whole request to its endpoint and answer it. */
enum MHD_Result	dispatch(struct server *, struct MHD_Connection *,
	    const char *, const char *, struct req *);

/* httpd_events.c: GET /events, the stream of Server-Sent Events. */
enum MHD_Result	api_events(struct server *, struct MHD_Connection *,
	    const struct params *);
/* httpd_events.c: the thread that watches the state directory. */
void	*watcher(void *);
/* httpd_events.c: wake the streams (gate name of len bytes, or all). */
void	bump(struct server *, const char *, size_t, int);

/* httpd_conn.c: track connections (limits, request deadline); or NULL. */
void	*conns_start(unsigned, unsigned, unsigned);
/* httpd_conn.c: MHD_OPTION_NOTIFY_CONNECTION, conns_start's closure. */
void	conns_notify(void *, struct MHD_Connection *, void **,
	    enum MHD_ConnectionNotificationCode);
/* httpd_conn.c: the request is whole: no deadline while it is answered. */
void	conns_received(struct MHD_Connection *);
/* httpd_conn.c: the answer went out: the next request's deadline runs. */
void	conns_answered(struct MHD_Connection *);

/* httpd_page.c: GET /, the dashboard. */
enum MHD_Result	send_page(struct MHD_Connection *);

#endif
