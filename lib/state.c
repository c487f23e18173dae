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
 *	parent NAME		(optional: the gate's parent gate)
 *	h SLOT TICKET WPID WSTART CPID CSTART UID TIME - :CWD :COMMAND
 *	w - TICKET WPID WSTART 0 0 UID TIME ADDR :CWD :COMMAND
 *	r TICKET STATUS TIME
 *	end
 *
 * An "r" line is how a request with a unique key ended (its exit status),
 * for those who joined it; the last STATE_MAX_RESULTS are kept. A record
 * may end in optional fields, each at most once, written only
 * when not the default (so a record without them reads as it always did):
 * weight=K (the slots its request takes, 2..), prio=N (a waiter's
 * priority, -N for negative), passed=N (later requests let ahead of a
 * waiter), key=KEY (the request's unique key); a waiter's resource needs
 * (resource.h): mem=BYTES or memp=PCT (MemAvailable at least), psim=,
 * psic=, psii=H (memory, cpu, io pressure at most, hundredths of a
 * percent), load=H (1-minute load at most, hundredths).
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

#define NFIELDS		12
#define NEXTRA		10	/* optional fields after them */
#define NADMIT		4	/* of which weight, prio, passed, key */

/* The most holders and waiters, at their largest, fit what we read. */
_Static_assert(STATE_HEAD_MAX + (STATE_MAX_SLOTS + (size_t)STATE_MAX_WAITERS) *
    STATE_LINE_MAX + STATE_MAX_RESULTS * STATE_RESULT_MAX + sizeof("end\n") <=
    STATE_MAX_BYTES,
    "a state at its ceilings would be larger than reading accepts");

/* Free one record's strings. */
static void
entry_free(struct entry *e)
{
	if (!e->strs_shared)
		free(e->strs);
	e->strs = NULL;
	e->strslen = 0;
	e->strs_shared = 0;
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
	free(st->arena);
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
state_result_add(struct state *st, uint64_t ticket, int status, int64_t now)
{
	if (st->nres == STATE_MAX_RESULTS) {
		memmove(&st->res[0], &st->res[1], (STATE_MAX_RESULTS - 1) *
		    sizeof(st->res[0]));
		st->nres--;
	}
	st->res[st->nres].ticket = ticket;
	st->res[st->nres].status = status;
	st->res[st->nres].time_ns = now;
	st->nres++;
}

const struct result *
state_result(const struct state *st, uint64_t ticket)
{
	size_t i;

	for (i = st->nres; i-- > 0;)
		if (st->res[i].ticket == ticket)
			return &st->res[i];
	return NULL;
}

void
state_remove(struct entry *v, size_t *n, size_t i)
{
	entry_free(&v[i]);
	memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
	(*n)--;
}

/*
 * A bounded decimal number: digits only (no sign, no space), lo..hi;
 * sets *bad on anything else. Hand-rolled: eight of them a record.
 */
static long long
num(const char *s, long long lo, long long hi, int *bad)
{
	unsigned long long v = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		if (v > (unsigned long long)LLONG_MAX / 10)
			goto bad;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > (unsigned long long)LLONG_MAX)
			goto bad;
	}
	if (p == s || *p != '\0' || (long long)v < lo || (long long)v > hi)
		goto bad;
	return (long long)v;
bad:
	*bad = 1;
	return 0;
}

/* "r TICKET STATUS TIME" into st; 0 or -1. */
static int
result_parse(char **f, struct state *st)
{
	int bad = 0;
	uint64_t ticket;
	int status;
	int64_t t;

	ticket = (uint64_t)num(f[1], 0, LLONG_MAX, &bad);
	status = (int)num(f[2], 0, 255, &bad);
	t = num(f[3], 0, LLONG_MAX, &bad);
	if (bad || st->nres == STATE_MAX_RESULTS)
		return -1;
	state_result_add(st, ticket, status, t);
	return 0;
}

/*
 * The decoded length of the forms our encoder writes (\ooo and the C
 * escapes), or -1 when s holds another form, which strunvis() judges.
 */
static long
vis_fast_len(const char *s, size_t len)
{
	const char *p, *end = s + len;
	long n = 0;

	for (p = s; p < end; n++) {
		if (*p++ != '\\')
			continue;
		if (p < end && strchr("\\ntrbavfs", *p) != NULL && *p != '\0')
			p++;
		else if (end - p >= 3 && p[0] >= '0' && p[0] <= '3' &&
		    p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7')
			p += 3;
		else
			return -1;
	}
	return n;
}

/*
 * A ':'-prefixed vis string that decodes to at most STATE_MAX_STR bytes?
 * Checked without decoding where the form is ours: this runs for every
 * record of every transaction.
 */
static int
str_valid(const char *s, size_t len)
{
	char buf[4 * STATE_MAX_STR + 2];
	long n;

	if (len == 0 || s[0] != ':')
		return 0;
	if ((n = vis_fast_len(s + 1, len - 1)) >= 0)
		return n <= STATE_MAX_STR;
	if (len > sizeof(buf))
		return 0;
	n = strunvis(buf, s + 1);
	return n >= 0 && n <= STATE_MAX_STR;
}

/* Decode one ':'-prefixed vis string of len bytes into a malloc'd one. */
static char *
str_decode(const char *s, size_t len)
{
	char *enc, *d;

	if (len == 0 || s[0] != ':' || (enc = strndup(s + 1, len - 1)) == NULL)
		return NULL;
	if ((d = malloc(len)) != NULL && strunvis(d, enc) < 0) {
		free(d);
		d = NULL;
	}
	free(enc);
	return d;
}

int
state_entry_decode(const struct entry *e, char **cwd, char **command)
{
	const char *sp;

	*cwd = *command = NULL;
	if (e->strs == NULL)
		return (*cwd = strdup("")) == NULL ||
		    (*command = strdup("")) == NULL ? -1 : 0;
	if ((sp = memchr(e->strs, ' ', e->strslen)) == NULL ||
	    (*cwd = str_decode(e->strs, (size_t)(sp - e->strs))) == NULL ||
	    (*command = str_decode(sp + 1, e->strslen -
	    (size_t)(sp + 1 - e->strs))) == NULL) {
		free(*cwd);
		*cwd = NULL;
		return -1;
	}
	return 0;
}

/* One unit of our encoding at s (a byte, \c, \ooo): length; *c, value. */
static size_t
enc_unit(const char *s, unsigned char *c)
{
	*c = (unsigned char)s[0];
	if (s[0] != '\\' || s[1] == '\0')
		return 1;
	if (s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
	    s[3] >= '0' && s[3] <= '7') {
		*c = (unsigned char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
		    (s[3] - '0'));
		return 4;
	}
	*c = (unsigned char)s[1];
	return 2;
}

/*
 * Cut the encoded string s to at most max bytes, STATE_CUT included: never
 * inside an escape, and where the text is UTF-8 never inside a character
 * (a run of more than three continuation bytes is not UTF-8: cut there).
 * Returns its length.
 */
static size_t
enc_cut(char *s, size_t max)
{
	size_t len = strlen(s), room = max - (sizeof(STATE_CUT) - 1), p, n;
	size_t best = 0, run = 0;
	unsigned char c;

	if (len <= max)
		return len;
	for (p = 0; p <= room && p < len; p += n) {
		n = enc_unit(s + p, &c);
		run = (c & 0xc0) == 0x80 ? run + 1 : 0;
		if (run == 0 || run > 3)
			best = p;	/* the text before p can end here */
	}
	memcpy(s + best, STATE_CUT, sizeof(STATE_CUT));
	return best + sizeof(STATE_CUT) - 1;
}

int
state_entry_encode(struct entry *e, const char *cwd, const char *command)
{
	char *c = NULL, *m = NULL, *ec = NULL, *em = NULL;
	int r = -1;

	/* Cut to what the state keeps, then encode: no space survives. */
	if ((c = strndup(cwd ? cwd : "", STATE_MAX_STR)) == NULL ||
	    (m = strndup(command ? command : "", STATE_MAX_STR)) == NULL ||
	    stravis(&ec, c, VIS_WHITE | VIS_OCTAL | VIS_CSTYLE) < 0 ||
	    stravis(&em, m, VIS_WHITE | VIS_OCTAL | VIS_CSTYLE) < 0)
		goto out;
	(void)enc_cut(ec, STATE_CWD_ENC);
	(void)enc_cut(em, STATE_CMD_ENC);
	entry_free(e);
	if (asprintf(&e->strs, ":%s :%s", ec, em) < 0) {
		e->strs = NULL;
		goto out;
	}
	e->strslen = strlen(e->strs);
	r = 0;
out:
	free(c);
	free(m);
	free(ec);
	free(em);
	return r;
}

/*
 * Strings longer than a record keeps (an older gaterun wrote them): cut,
 * so that the state written back stays within its ceiling. 0 or -1.
 */
static int
entry_refit(struct entry *e, const char *cwd, size_t lc, const char *cmd,
    size_t lm)
{
	char *dc, *dm = NULL;
	int r = -1;

	if ((dc = str_decode(cwd, lc)) != NULL &&
	    (dm = str_decode(cmd, lm)) != NULL)
		r = state_entry_encode(e, dc, dm);
	free(dc);
	free(dm);
	return r;
}

int
state_key_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= STATE_KEY_MAX && strspn(s,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._:@+/-") == n;
}

/* Resource need k (after the NADMIT others: mem= memp= psim= psic= psii= load=). */
static void
need_parse(struct entry *e, int k, const char *v, int *bad)
{
	struct res_need *n = &e->need;

	if (k == 0) {
		n->has |= RES_MEM;
		n->mem = (uint64_t)num(v, 1, (long long)RES_MAX_MEM, bad);
	} else if (k == 1) {
		n->has |= RES_MEMPCT;
		n->mem_pct = (unsigned)num(v, 1, 100, bad);
	} else if (k < 2 + RES_NPSI) {
		n->has |= RES_PSI(k - 2);
		n->psi[k - 2] = (unsigned)num(v, 0, 10000, bad);
	} else {
		n->has |= RES_LOAD;
		n->load = (unsigned)num(v, 0, RES_MAX_LOAD, bad);
	}
}

/*
 * The optional fields f[0..n) of a record ("name=value", each at most
 * once) into e; weight 1, priority 0, no key, no needs when absent. 0 or
 * -1.
 */
static int
extra_parse(char **f, int n, struct entry *e)
{
	static const char *const names[NEXTRA] = {
		"weight=", "prio=", "passed=", "key=",
		"mem=", "memp=", "psim=", "psic=", "psii=", "load="
	};
	int bad = 0, seen = 0, i, k;
	const char *v;
	size_t len;

	e->weight = 1;
	for (i = 0; i < n; i++) {
		for (k = 0; k < NEXTRA; k++)
			if (strncmp(f[i], names[k], strlen(names[k])) == 0)
				break;
		if (k == NEXTRA || (seen & (1 << k)))
			return -1;
		seen |= 1 << k;
		v = f[i] + strlen(names[k]);
		if (k >= NADMIT)
			need_parse(e, k - NADMIT, v, &bad);
		else if (k == 0)
			e->weight = (unsigned)num(v, 2, STATE_MAX_SLOTS, &bad);
		else if (k == 1)
			e->prio = v[0] == '-' ? -(int)num(v + 1, 1,
			    STATE_MAX_PRIO, &bad) : (int)num(v, 1,
			    STATE_MAX_PRIO, &bad);
		else if (k == 2)
			e->passed = (unsigned)num(v, 1, STATE_MAX_WAITERS,
			    &bad);
		else if (!state_key_valid(v))
			return -1;
		else if ((len = strlen(v)) > 0)
			memcpy(e->key, v, len + 1);
	}
	/* One memory need: an amount or a share. */
	return bad || (seen & (3 << NADMIT)) == (3 << NADMIT) ? -1 : 0;
}

/* Parse one record line (already split into nf fields). */
static int
entry_parse(char **f, int nf, struct entry *e)
{
	int bad = 0, holder = f[0][0] == 'h';
	size_t alen, l10, l11;

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
	if (bad || extra_parse(f + NFIELDS, nf - NFIELDS, e) == -1 ||
	    (e->slot >= 0 && (e->prio != 0 || e->passed != 0 ||
	    e->need.has != 0)))
		return -1;
	/* Fields split in place: the two strings sit side by side. */
	l10 = strlen(f[10]);
	l11 = strlen(f[11]);
	if (f[11] != f[10] + l10 + 1 || !str_valid(f[10], l10) ||
	    !str_valid(f[11], l11))
		return -1;
	if (l10 - 1 > STATE_CWD_ENC || l11 - 1 > STATE_CMD_ENC)
		return entry_refit(e, f[10], l10, f[11], l11);
	f[10][l10] = ' ';
	e->strs = f[10];
	e->strslen = l10 + 1 + l11;
	e->strs_shared = 1;
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

/* 1 if s is a gate name: 1-64 of [A-Za-z0-9._-], no leading dot. */
static int
name_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= STATE_NAME_MAX && s[0] != '.' &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

/*
 * Header line "KEY VALUE": stores into st only if valid; 0 or -1. The
 * first five are required (seen bits 0-4), parent optional.
 */
static int
header_parse(char **f, int nf, struct state *st, int *seen)
{
	static const char *const keys[] = {
		"boot", "limit", "ticket", "acquired", "waitns", "parent"
	};
	long long v = 0;
	int bad = 0, k;

	if (nf != 2)
		return -1;
	for (k = 0; k < 6 && strcmp(f[0], keys[k]) != 0; k++)
		;
	if (k == 6 || (k == 5 && (*seen & (1 << 5))))
		return -1;
	if (k == 5) {
		if (!name_valid(f[1]))
			return -1;
		(void)strlcpy(st->parent, f[1], sizeof(st->parent));
	} else if (k == 0) {
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

/*
 * Add a parsed record, enforcing ceilings, unique slots, and the order of
 * the line: by ticket within a priority (a later request passes only lower
 * priorities), so two neighbours of the same priority are in ticket order,
 * and no two neighbours share a ticket.
 */
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
		if (st->nw >= STATE_MAX_WAITERS || (st->nw > 0 &&
		    (e->ticket == st->w[st->nw - 1].ticket ||
		    (e->prio == st->w[st->nw - 1].prio &&
		    e->ticket < st->w[st->nw - 1].ticket))))
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
	for (i = 0; i < st->nres; i++)
		if (st->res[i].ticket >= max)
			max = st->res[i].ticket + 1;
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

/* The first line of a state of this version: "gaterun-state N". */
#define VERSION_STR2(v)	#v
#define VERSION_STR(v)	VERSION_STR2(v)
#define MAGIC_LINE	STATE_MAGIC " " VERSION_STR(STATE_VERSION)

int
state_parse(const char *buf, size_t len, struct state *st, int salvage,
    const char **why)
{
	unsigned char slots[STATE_MAX_SLOTS / 8];
	char *line, *f[NFIELDS + NEXTRA + 1], *p, *end, *nl;
	int nf, lineno = 0, seen = 0, ended = 0;
	struct entry e;

	memset(st, 0, sizeof(*st));
	memset(slots, 0, sizeof(slots));
	st->limit = UINT_MAX;		/* "not seen", for salvage */
	*why = NULL;
	/*
	 * One copy of the text, split in place: the records' strings stay
	 * where they are (no allocation a record), freed with the state.
	 */
	if ((st->arena = malloc(len + 1)) == NULL)
		return -1;
	memcpy(st->arena, buf, len);
	st->arena[len] = '\0';
	p = st->arena;
	end = p + len;
	for (; p < end; p = nl + 1, lineno++) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			if (salvage)
				break;
			FAIL("last line is not complete");
		}
		if (ended && !salvage)
			FAIL("data after the end line");
		if ((size_t)(nl - p) > STATE_READ_LINE_MAX ||
		    memchr(p, '\0', (size_t)(nl - p)) != NULL) {
			if (salvage)
				continue;
			FAIL("line too long or holds a NUL byte");
		}
		line = p;
		*nl = '\0';
		if (salvage && nl > p && nl[-1] == '\r')
			nl[-1] = '\0';	/* edited on a system that ends lines so */
		if (lineno == 0) {
			if (strcmp(line, MAGIC_LINE) == 0)
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
		nf = split(line, f, NFIELDS + NEXTRA);
		if (nf >= NFIELDS && nf <= NFIELDS + NEXTRA &&
		    (strcmp(f[0], "h") == 0 || strcmp(f[0], "w") == 0)) {
			if (entry_parse(f, nf, &e) == 0) {
				if (record_add(st, &e, slots) == 0)
					continue;
				entry_free(&e);
			}
			if (!salvage)
				FAIL("bad holder or waiter record");
		} else if (nf == 4 && strcmp(f[0], "r") == 0) {
			if (result_parse(f, st) == -1 && !salvage)
				FAIL("bad result line");
		} else if (header_parse(f, nf, st, &seen) == -1 && !salvage)
			FAIL("bad header line");
	}
	if (!salvage && (lineno == 0 || !ended))
		FAIL(lineno == 0 ? "empty file" : "no end line: cut short");
	if (!salvage && (seen & 31) != 31)
		FAIL("header incomplete");
	if (tickets_valid(st, salvage) == -1)
		FAIL("ticket at or above the next ticket");
	return 0;
bad:
	state_free(st);
	errno = EINVAL;
	return -1;
}

int
state_line_weight(const char *s, size_t n)
{
	static const char *const heavy[] = {
		"h ", STATE_MAGIC " ", "boot ", "limit ", "ticket ",
		"acquired ", "waitns ", "parent "
	};
	size_t i, k;

	for (i = 0; i < sizeof(heavy) / sizeof(heavy[0]); i++) {
		k = strlen(heavy[i]);
		if (n >= k && memcmp(s, heavy[i], k) == 0)
			return 2;
	}
	return n >= 2 && (memcmp(s, "w ", 2) == 0 || memcmp(s, "r ", 2) == 0);
}

/*
 * The formatter writes into one buffer it grows, with its own integer
 * conversion: a transaction rewrites every record, so this is the hot
 * path of a long queue (printf and vis per record cost ten times more).
 */
struct wbuf {
	char	*p;
	size_t	len, cap;
	int	err;
};

static void
wb_put(struct wbuf *b, const char *s, size_t n)
{
	char *np;
	size_t cap;

	if (b->err)
		return;
	if (n > b->cap - b->len) {
		for (cap = b->cap ? b->cap : 4096; n > cap - b->len; cap *= 2)
			;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->err = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* sep then v in decimal (minus sign when neg). */
static void
wb_sepnum(struct wbuf *b, char sep, uint64_t v, int neg)
{
	char d[24], *p = d + sizeof(d);

	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	if (neg)
		*--p = '-';
	*--p = sep;
	wb_put(b, p, (size_t)(d + sizeof(d) - p));
}

/* ' ' then v in decimal. */
static void
wb_num(struct wbuf *b, uint64_t v, int neg)
{
	wb_sepnum(b, ' ', v, neg);
}

/* A waiter's resource needs (need_parse). */
static void
need_format(struct wbuf *b, const struct res_need *n)
{
	static const char *const psi[RES_NPSI] = { " psim", " psic", " psii" };
	size_t i;

	if (n->has & RES_MEM) {
		wb_put(b, " mem", 4);
		wb_sepnum(b, '=', n->mem, 0);
	} else if (n->has & RES_MEMPCT) {
		wb_put(b, " memp", 5);
		wb_sepnum(b, '=', n->mem_pct, 0);
	}
	for (i = 0; i < RES_NPSI; i++)
		if (n->has & RES_PSI(i)) {
			wb_put(b, psi[i], 5);
			wb_sepnum(b, '=', n->psi[i], 0);
		}
	if (n->has & RES_LOAD) {
		wb_put(b, " load", 5);
		wb_sepnum(b, '=', n->load, 0);
	}
}

/* The optional fields that are not the default (extra_parse). */
static void
extra_format(struct wbuf *b, const struct entry *e)
{
	if (e->weight > 1) {
		wb_put(b, " weight", 7);
		wb_sepnum(b, '=', e->weight, 0);
	}
	if (e->slot < 0 && e->prio != 0) {
		wb_put(b, " prio", 5);
		wb_sepnum(b, '=', e->prio < 0 ? (uint64_t)-(int64_t)e->prio :
		    (uint64_t)e->prio, e->prio < 0);
	}
	if (e->slot < 0 && e->passed > 0) {
		wb_put(b, " passed", 7);
		wb_sepnum(b, '=', e->passed, 0);
	}
	if (e->key[0] != '\0') {
		wb_put(b, " key=", 5);
		wb_put(b, e->key, strnlen(e->key, STATE_KEY_MAX));
	}
	if (e->slot < 0)
		need_format(b, &e->need);
}

/* One record line. */
static void
entry_format(struct wbuf *b, const struct entry *e)
{
	if (e->slot >= 0) {
		wb_put(b, "h", 1);
		wb_num(b, (uint64_t)e->slot, 0);
	} else
		wb_put(b, "w -", 3);
	wb_num(b, e->ticket, 0);
	wb_num(b, (uint64_t)e->wrapper.pid, 0);
	wb_num(b, e->wrapper.start, 0);
	wb_num(b, (uint64_t)e->cmd.pid, 0);
	wb_num(b, e->cmd.start, 0);
	wb_num(b, e->uid, 0);
	wb_num(b, e->time_ns < 0 ? -(uint64_t)e->time_ns : (uint64_t)e->time_ns,
	    e->time_ns < 0);
	if (e->slot >= 0)
		wb_put(b, " - ", 3);
	else {
		wb_put(b, " ", 1);
		wb_put(b, e->addr, strlen(e->addr));
		wb_put(b, " ", 1);
	}
	if (e->strs != NULL)
		wb_put(b, e->strs, e->strslen);
	else
		wb_put(b, ": :", 3);
	extra_format(b, e);
	wb_put(b, "\n", 1);
}

int
state_format(const struct state *st, char **bufp, size_t *lenp)
{
	struct wbuf b = { NULL, 0, 0, 0 };
	char head[256];
	size_t i;
	int n;

	n = snprintf(head, sizeof(head), STATE_MAGIC " %d\nboot %s\nlimit %u\n"
	    "ticket %llu\nacquired %llu\nwaitns %llu\n", STATE_VERSION,
	    st->boot, st->limit, (unsigned long long)st->next_ticket,
	    (unsigned long long)st->acquired,
	    (unsigned long long)st->wait_ns);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	wb_put(&b, head, (size_t)n);
	if (st->parent[0] != '\0') {
		wb_put(&b, "parent ", 7);
		wb_put(&b, st->parent, strnlen(st->parent, STATE_NAME_MAX));
		wb_put(&b, "\n", 1);
	}
	for (i = 0; i < st->nh; i++)
		entry_format(&b, &st->h[i]);
	for (i = 0; i < st->nw; i++)
		entry_format(&b, &st->w[i]);
	for (i = 0; i < st->nres; i++) {
		wb_put(&b, "r", 1);
		wb_num(&b, st->res[i].ticket, 0);
		wb_num(&b, (uint64_t)st->res[i].status, 0);
		wb_num(&b, (uint64_t)(st->res[i].time_ns < 0 ? 0 :
		    st->res[i].time_ns), 0);
		wb_put(&b, "\n", 1);
	}
	wb_put(&b, "end\n", 4);
	if (b.err) {
		free(b.p);
		return -1;
	}
	*bufp = b.p;
	*lenp = b.len;
	return 0;
}
