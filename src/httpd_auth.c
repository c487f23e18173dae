/*
 * gaterun-httpd's gatekeeping: the bearer token (its file, read at start
 * and on SIGHUP, and the constant-time check of each request) and the
 * Host check (one for HTTP/1.1; a loopback name on a loopback server, which
 * keeps DNS-rebinding pages out).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "httpd.h"
#include "sys.h"

/*
 * Read the token file: owned by us or root, no access for group or
 * others, one line. Returns 0, or -1 with why set.
 */
int
token_read(const struct server *sv, char *tok, size_t *lenp, const char **why)
{
	char buf[TOKEN_MAX + 2];
	struct stat sb;
	ssize_t n;
	int fd;

	memset(tok, 0, TOKEN_MAX);	/* compared whole: see authorized() */
	fd = open(sv->token_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
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
int
authorized(struct server *sv, struct MHD_Connection *c)
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
	(void)pthread_mutex_lock(&sv->mu);
	memcpy(want, sv->token, sizeof(want));
	wlen = sv->tokenlen;
	(void)pthread_mutex_unlock(&sv->mu);
	ok = wlen > 0 && len == wlen && same(want, got, sizeof(want));
	explicit_bzero(want, sizeof(want));
	return ok;
}

/* Count the Host headers of a request. */
static enum MHD_Result
count_host(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	(void)kind, (void)value;
	if (strcasecmp(key, "Host") == 0)
		(*(unsigned *)cls)++;
	return MHD_YES;
}

/*
 * The Host header. HTTP/1.1 wants exactly one (400 otherwise; HTTP/1.0
 * may send none). On a loopback address, a Host that is not loopback
 * means a page of another site reached us through DNS rebinding: 403.
 * Returns 0, or the HTTP code with msg set.
 */
unsigned
host_check(const struct server *sv, struct MHD_Connection *c,
    const char *version, char *msg, size_t len)
{
	static const char *const names[] = { "localhost", "127.0.0.1",
	    "[::1]" };
	const char *h;
	unsigned nhost = 0;
	size_t i, n;

	(void)MHD_get_connection_values(c, MHD_HEADER_KIND, count_host, &nhost);
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	if (nhost > 1 || (h == NULL && strncmp(version, "HTTP/1.", 7) == 0 &&
	    strcmp(version, "HTTP/1.0") != 0)) {
		(void)snprintf(msg, len, "an HTTP/1.1 request needs a Host "
		    "header%s", nhost > 1 ? ", one only" : "");
		return MHD_HTTP_BAD_REQUEST;
	}
	if (!sv->loopback || h == NULL)
		return 0;	/* HTTP/1.0 without Host: not a browser */
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		n = strlen(names[i]);
		if (strncasecmp(h, names[i], n) == 0 &&
		    (h[n] == '\0' || h[n] == ':'))
			return 0;
	}
	(void)snprintf(msg, len, "Host '%.200s' refused: this server listens "
	    "on loopback only", h);
	return MHD_HTTP_FORBIDDEN;
}
