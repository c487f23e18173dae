/*
 * The on-disk state format. One record a line, so a person can read it
 * with cat and a fuzzer can reach every branch:
 *
 *	gaterun-state 1
 *	boot BOOT-ID
 *	limit N
 *	ticket NEXT
 *	acquired N
 *	waitns N
 *	h SLOT TICKET WPID WSTART CPID CSTART UID TIME - :CWD :COMMAND
 *	w - TICKET WPID WSTART 0 0 UID TIME ADDR :CWD :COMMAND
 *	end
 *
 * Strings are vis(3)-encoded (no spaces, no newlines) behind a ':'. The
 * parser trusts nothing: every number has bounds, every count a ceiling,
 * and a file must end with "end" so a cut-short one is never half-read.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define LIBBSD_NETBSD_VIS	/* strnvis() argument order: NetBSD */
#include <vis.h>

#include "state.h"

#define LINE_MAX_BYTES	(16 + 10 * 24 + 2 * (4 * STATE_MAX_STR + 2))
#define NFIELDS		12

/* Free one record's strings. */
static void
entry_free(struct entry *e)
{
	free(e->cwd);
	free(e->command);
	e->cwd = e->command = NULL;
}

void
state_free(struct state *st)
{
	size_t i;

	for (i = 0; i < st->nh; i++)
		entry_free(&st->h[i]);
	for (i = 0; i < st->nw; i++)
		entry_free(&st->w[i]);
	free(st->h);
	free(st->w);
	memset(st, 0, sizeof(*st));
}

/* Append e (taking its strings) to the array; grows by doubling. */
int
state_add(struct entry **v, size_t *n, const struct entry *e)
{
	struct entry *nv;
	size_t cap;

	/* Capacity is implicit: the next power of two at or above n. */
	if ((*n & (*n - 1)) == 0) {
		cap = *n ? *n * 2 : 4;
		if ((nv = reallocarray(*v, cap, sizeof(**v))) == NULL)
			return -1;
		*v = nv;
	}
	(*v)[(*n)++] = *e;
	return 0;
}

void
state_remove(struct entry *v, size_t *n, size_t i)
{
	entry_free(&v[i]);
	memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
	(*n)--;
}

/* A bounded number; sets *bad on any error. */
static long long
num(const char *s, long long lo, long long hi, int *bad)
{
	const char *errstr;
	long long v;

	if (*s == '\0' || *s == '+' || *s == ' ') {
		*bad = 1;
		return 0;
	}
	v = strtonum(s, lo, hi, &errstr);
	if (errstr != NULL)
		*bad = 1;
	return v;
}

/* Decode a ':'-prefixed vis string into a malloc'd one. */
static char *
str_decode(const char *s, int *bad)
{
	char *d;
	int n;

	if (*s++ != ':' || (d = malloc(strlen(s) + 1)) == NULL) {
		*bad = 1;
		return NULL;
	}
	if ((n = strunvis(d, s)) < 0 || n > STATE_MAX_STR) {
		free(d);
		*bad = 1;
		return NULL;
	}
	return d;
}

/* Parse one record line (already split into fields). */
static int
entry_parse(char **f, struct entry *e)
{
	int bad = 0, holder = f[0][0] == 'h';
	size_t alen;

	memset(e, 0, sizeof(*e));
	e->slot = holder ? (int)num(f[1], 0, STATE_MAX_SLOTS - 1, &bad) : -1;
	if (!holder && strcmp(f[1], "-") != 0)
		bad = 1;
	e->ticket = (uint64_t)num(f[2], 0, LLONG_MAX, &bad);
	e->wrapper.pid = (pid_t)num(f[3], 1, INT32_MAX, &bad);
	e->wrapper.start = (unsigned long long)num(f[4], 0, LLONG_MAX, &bad);
	e->cmd.pid = (pid_t)num(f[5], 0, INT32_MAX, &bad);
	e->cmd.start = (unsigned long long)num(f[6], 0,
	    e->cmd.pid ? LLONG_MAX : 0, &bad);
	e->uid = (uid_t)num(f[7], 0, UINT32_MAX - 1, &bad);
	e->time_ns = num(f[8], 0, LLONG_MAX, &bad);
	alen = strlen(f[9]);
	if (holder) {
		if (strcmp(f[9], "-") != 0)
			bad = 1;
	} else if (alen == 0 || alen > STATE_ADDR_LEN ||
	    strspn(f[9], "0123456789abcdef") != alen)
		bad = 1;
	else
		memcpy(e->addr, f[9], alen + 1);
	if (bad)
		return -1;
	e->cwd = str_decode(f[10], &bad);
	e->command = bad ? NULL : str_decode(f[11], &bad);
	if (bad) {
		entry_free(e);
		return -1;
	}
	return 0;
}

/* Split line in place on single spaces; returns the field count. */
static int
split(char *line, char **f, int max)
{
	int n = 0;
	char *p;

	while ((p = strsep(&line, " ")) != NULL) {
		if (n == max)
			return max + 1;
		f[n++] = p;
	}
	return n;
}

/* Header line "KEY VALUE": stores into st only if valid; 0 or -1. */
static int
header_parse(char **f, int nf, struct state *st, int *seen)
{
	static const char *const keys[] = {
		"boot", "limit", "ticket", "acquired", "waitns"
	};
	long long v = 0;
	int bad = 0, k;

	if (nf != 2)
		return -1;
	for (k = 0; k < 5 && strcmp(f[0], keys[k]) != 0; k++)
		;
	if (k == 5)
		return -1;
	if (k == 0) {
		if (strlen(f[1]) != 36 ||
		    strspn(f[1], "0123456789abcdef-") != 36)
			return -1;
		memcpy(st->boot, f[1], 37);
	} else
		v = num(f[1], 0, k == 1 ? STATE_MAX_SLOTS : LLONG_MAX, &bad);
	if (bad)
		return -1;
	if (k == 1)
		st->limit = (unsigned)v;
	else if (k == 2)
		st->next_ticket = (uint64_t)v;
	else if (k == 3)
		st->acquired = (uint64_t)v;
	else if (k == 4)
		st->wait_ns = (uint64_t)v;
	*seen |= 1 << k;
	return 0;
}

/* Add a parsed record, enforcing ceilings, unique slots, ticket order. */
static int
record_add(struct state *st, struct entry *e, unsigned char *slots)
{
	if (e->slot >= 0) {
		if (st->nh >= STATE_MAX_SLOTS ||
		    (slots[e->slot / 8] & (1 << (e->slot % 8))))
			return -1;
		if (state_add(&st->h, &st->nh, e) == -1)
			return -1;
		slots[e->slot / 8] |= 1 << (e->slot % 8);
	} else {
		if (st->nw >= STATE_MAX_WAITERS ||
		    (st->nw > 0 && e->ticket <= st->w[st->nw - 1].ticket))
			return -1;
		if (state_add(&st->w, &st->nw, e) == -1)
			return -1;
	}
	return 0;
}

/* Tickets are handed out from next_ticket: none may be at or above it. */
static int
tickets_valid(struct state *st, int salvage)
{
	uint64_t max = 0;
	size_t i;

	for (i = 0; i < st->nh; i++)
		if (st->h[i].ticket >= max)
			max = st->h[i].ticket + 1;
	for (i = 0; i < st->nw; i++)
		if (st->w[i].ticket >= max)
			max = st->w[i].ticket + 1;
	if (max > st->next_ticket) {
		if (!salvage)
			return -1;
		st->next_ticket = max;
	}
	return 0;
}

#define FAIL(reason)	do { *why = (reason); goto bad; } while (0)

int
state_parse(const char *buf, size_t len, struct state *st, int salvage,
    const char **why)
{
	unsigned char slots[STATE_MAX_SLOTS / 8];
	char *line = NULL, *f[NFIELDS + 1];
	const char *p = buf, *end = buf + len, *nl;
	int nf, lineno = 0, seen = 0, ended = 0;
	struct entry e;

	memset(st, 0, sizeof(*st));
	memset(slots, 0, sizeof(slots));
	st->limit = UINT_MAX;		/* "not seen", for salvage */
	*why = NULL;
	if ((line = malloc(LINE_MAX_BYTES + 1)) == NULL)
		return -1;
	for (; p < end; p = nl + 1, lineno++) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			if (salvage)
				break;
			FAIL("last line is not complete");
		}
		if (ended)
			FAIL("data after the end line");
		if ((size_t)(nl - p) > LINE_MAX_BYTES ||
		    memchr(p, '\0', (size_t)(nl - p)) != NULL) {
			if (salvage)
				continue;
			FAIL("line too long or holds a NUL byte");
		}
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		if (lineno == 0) {
			if (strcmp(line, STATE_MAGIC " 1") == 0)
				continue;
			if (strncmp(line, STATE_MAGIC " ",
			    sizeof(STATE_MAGIC)) == 0) {
				if (salvage)
					break;	/* nothing of it can be read */
				FAIL("unknown format version");
			}
			if (!salvage)
				FAIL("bad magic");
		}
		if (strcmp(line, "end") == 0) {
			ended = 1;
			continue;
		}
		nf = split(line, f, NFIELDS);
		if (nf == NFIELDS && (strcmp(f[0], "h") == 0 ||
		    strcmp(f[0], "w") == 0)) {
			if (entry_parse(f, &e) == 0) {
				if (record_add(st, &e, slots) == 0)
					continue;
				entry_free(&e);
			}
			if (!salvage)
				FAIL("bad holder or waiter record");
		} else if (header_parse(f, nf, st, &seen) == -1 && !salvage)
			FAIL("bad header line");
	}
	if (!salvage && (lineno == 0 || !ended))
		FAIL(lineno == 0 ? "empty file" : "no end line: cut short");
	if (!salvage && seen != 31)
		FAIL("header incomplete");
	if (tickets_valid(st, salvage) == -1)
		FAIL("ticket at or above the next ticket");
	free(line);
	return 0;
bad:
	free(line);
	state_free(st);
	errno = EINVAL;
	return -1;
}

/* Append a ' :'-prefixed vis encoding of s (NULL counts as empty). */
static int
str_encode(FILE *fp, const char *s)
{
	char *enc;
	int r;

	if (stravis(&enc, s ? s : "", VIS_WHITE | VIS_OCTAL | VIS_CSTYLE) < 0)
		return -1;
	r = fprintf(fp, " :%s", enc);
	free(enc);
	return r < 0 ? -1 : 0;
}

/* One record line. */
static int
entry_format(FILE *fp, const struct entry *e)
{
	char slot[16];

	if (e->slot >= 0)
		(void)snprintf(slot, sizeof(slot), "h %d", e->slot);
	else
		(void)snprintf(slot, sizeof(slot), "w -");
	if (fprintf(fp, "%s %llu %d %llu %d %llu %u %lld %s", slot,
	    (unsigned long long)e->ticket, (int)e->wrapper.pid,
	    e->wrapper.start, (int)e->cmd.pid, e->cmd.start,
	    (unsigned)e->uid, (long long)e->time_ns,
	    e->slot >= 0 ? "-" : e->addr) < 0)
		return -1;
	if (str_encode(fp, e->cwd) == -1 || str_encode(fp, e->command) == -1)
		return -1;
	return fputc('\n', fp) == EOF ? -1 : 0;
}

int
state_format(const struct state *st, char **bufp, size_t *lenp)
{
	size_t i;
	FILE *fp;
	int r = 0;

	if ((fp = open_memstream(bufp, lenp)) == NULL)
		return -1;
	if (fprintf(fp, STATE_MAGIC " %d\nboot %s\nlimit %u\nticket %llu\n"
	    "acquired %llu\nwaitns %llu\n", STATE_VERSION, st->boot,
	    st->limit, (unsigned long long)st->next_ticket,
	    (unsigned long long)st->acquired,
	    (unsigned long long)st->wait_ns) < 0)
		r = -1;
	for (i = 0; r == 0 && i < st->nh; i++)
		r = entry_format(fp, &st->h[i]);
	for (i = 0; r == 0 && i < st->nw; i++)
		r = entry_format(fp, &st->w[i]);
	if (r == 0 && fputs("end\n", fp) == EOF)
		r = -1;
	if (fclose(fp) == EOF)
		r = -1;
	if (r == -1) {
		free(*bufp);
		*bufp = NULL;
	}
	return r;
}
