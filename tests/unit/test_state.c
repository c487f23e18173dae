/* Unit tests of lib/state.c: the format round trip and its validation. */
#include "config.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

/* A parser that loops on some input fails after 30 s, not never. */
TestSuite(state, .timeout = 30);

#define BOOT	"0123abcd-0000-4000-8000-0123456789ab"
#define HDR	"gaterun-state 1\nboot " BOOT "\nlimit 5\nticket 9\n" \
		"acquired 3\nwaitns 7\n"

static int
parse(const char *s, struct state *st)
{
	const char *why;

	return state_parse(s, strlen(s), st, 0, &why);
}

/* How many times c occurs in the n bytes at s. */
static size_t
count_of(const char *s, size_t n, char c)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += s[i] == c;
	return k;
}

Test(state, round_trip_keeps_everything)
{
	struct state st, back;
	struct entry e;
	const char *why;
	size_t len, hlen, i;
	char *buf, *cwd, *cmd, *h;

	memset(&st, 0, sizeof(st));
	st.limit = 7;
	st.next_ticket = 42;
	st.acquired = 11;
	st.wait_ns = 123456789;
	memcpy(st.boot, BOOT, 37);
	memset(&e, 0, sizeof(e));
	e.slot = 3;
	e.ticket = 40;
	e.wrapper.pid = 100;
	e.wrapper.start = 555;
	e.cmd.pid = 101;
	e.cmd.start = 556;
	e.uid = 1000;
	e.time_ns = 99;
	cr_assert(eq(int, state_entry_encode(&e, "/tmp/a dir\nwith newline",
	    "sh -c 'echo \"x\\y\"' \t\xff\xfe tail"), 0));
	cr_assert(eq(int, state_add(&st.h, &st.nh, &e), 0));
	memset(&e, 0, sizeof(e));
	e.slot = -1;
	e.ticket = 41;
	e.wrapper.pid = 200;
	e.wrapper.start = 7;
	strcpy(e.addr, "0a1b2");
	cr_assert(eq(int, state_entry_encode(&e, NULL, "make -j4"), 0));
	cr_assert(eq(int, state_add(&st.w, &st.nw, &e), 0));

	cr_assert(eq(int, state_format(&st, &buf, &len), 0));
	cr_assert(eq(int, state_parse(buf, len, &back, 0, &why), 0));
	cr_assert(eq(u32, back.limit, 7));
	cr_assert(eq(u64, back.next_ticket, 42));
	cr_assert(eq(u64, back.acquired, 11));
	cr_assert(eq(u64, back.wait_ns, 123456789));
	cr_assert(eq(str, back.boot, BOOT));
	cr_assert(eq(sz, back.nh, 1));
	cr_assert(eq(sz, back.nw, 1));
	cr_assert(eq(int, back.h[0].slot, 3));
	cr_assert(eq(int, back.h[0].cmd.pid, 101));
	cr_assert(eq(u64, back.h[0].cmd.start, 556));
	cr_assert(eq(int, state_entry_decode(&back.h[0], &cwd, &cmd), 0));
	cr_assert(eq(str, cwd, "/tmp/a dir\nwith newline"));
	cr_assert(eq(str, cmd, "sh -c 'echo \"x\\y\"' \t\xff\xfe tail"));
	free(cwd);
	free(cmd);
	cr_assert(eq(str, back.w[0].addr, "0a1b2"));
	cr_assert(eq(int, state_entry_decode(&back.w[0], &cwd, &cmd), 0));
	cr_assert(eq(str, cmd, "make -j4"));
	cr_assert(eq(str, cwd, ""));
	free(cwd);
	free(cmd);
	/*
	 * One record a line, its fields split by single spaces: the encoded
	 * strings hold no newline, space, tab or byte above 0x7e. Six header
	 * lines, the holder, the waiter, "end".
	 */
	cr_assert(eq(sz, count_of(buf, len, '\n'), 9));
	cr_assert(eq(chr, buf[len - 1], '\n'));
	cr_assert(ne(ptr, (h = strstr(buf, "\nh 3 40 ")), NULL));
	h++;
	hlen = (size_t)(strchr(h, '\n') - h);
	cr_assert(eq(sz, count_of(h, hlen, ' '), 11));
	cr_assert(eq(sz, count_of(h, hlen, '\t'), 0));
	for (i = 0; i < hlen; i++)
		cr_assert(le(u8, (uint8_t)h[i], 0x7e));
	cr_assert(eq(int, strncmp(h + hlen + 1, "w - 41 ", 7), 0));
	free(buf);
	state_free(&st);
	state_free(&back);
}

Test(state, accepts_minimal)
{
	struct state st;

	cr_assert(eq(int, parse(HDR "end\n", &st), 0));
	cr_assert(eq(u32, st.limit, 5));
	state_free(&st);
}

Test(state, rejects_bad_version)
{
	struct state st;
	const char *why;

	cr_assert(eq(int, state_parse("gaterun-state 99\n", 17, &st, 0, &why),
	    -1));
	cr_assert(eq(str, (char *)why, "unknown format version"));
}

Test(state, rejects_empty_and_garbage)
{
	struct state st;

	cr_assert(eq(int, parse("", &st), -1));
	cr_assert(eq(int, parse("\x7f" "ELF\x01\x02", &st), -1));
	cr_assert(eq(int, parse("hello\n", &st), -1));
}

Test(state, rejects_every_truncation)
{
	const char *full = HDR "h 0 1 10 20 11 21 0 5 - :/ :a\\sb\n"
	    "w - 2 12 22 0 0 0 6 abc :/ :c\nend\n";
	size_t len = strlen(full), cut;
	struct state st;
	const char *why;

	for (cut = 0; cut < len; cut++)
		cr_assert(eq(int, state_parse(full, cut, &st, 0, &why), -1),
		    "accepted a file cut at byte %zu", cut);
	cr_assert(eq(int, state_parse(full, len, &st, 0, &why), 0));
	state_free(&st);
}

Test(state, rejects_absurd_values)
{
	struct state st;

	cr_assert(eq(int, parse(HDR "limit 4097\nend\n", &st), -1));
	cr_assert(eq(int, parse("gaterun-state 1\nboot " BOOT "\nlimit 2147483648\n"
	    "ticket 9\nacquired 3\nwaitns 7\nend\n", &st), -1));
	cr_assert(eq(int, parse(HDR "h 4096 1 10 20 0 0 0 5 - :/ :a\nend\n",
	    &st), -1));
	cr_assert(eq(int, parse(HDR "h 0 1 -10 20 0 0 0 5 - :/ :a\nend\n",
	    &st), -1));
	cr_assert(eq(int, parse(HDR "h 0 1 10 20 0 5 0 5 - :/ :a\nend\n",
	    &st), -1), "a command start time without a command");
	cr_assert(eq(int, parse(HDR "h 0 1 10 20 0 0 0 5 - / :a\nend\n",
	    &st), -1), "a string without its ':'");
	cr_assert(eq(int, parse(HDR "w - 1 10 20 0 0 0 5 XYZ :/ :a\nend\n",
	    &st), -1), "a wake address that is not hex");
}

Test(state, rejects_duplicate_slots_and_ticket_order)
{
	struct state st;

	cr_assert(eq(int, parse(HDR "h 0 1 10 20 0 0 0 5 - :/ :a\n"
	    "h 0 2 11 20 0 0 0 5 - :/ :b\nend\n", &st), -1));
	cr_assert(eq(int, parse(HDR "w - 3 10 20 0 0 0 5 a :/ :a\n"
	    "w - 2 11 20 0 0 0 5 b :/ :b\nend\n", &st), -1));
	cr_assert(eq(int, parse(HDR "w - 9 10 20 0 0 0 5 a :/ :a\nend\n", &st),
	    -1), "a ticket at the next ticket");
}

/*
 * Weights, priorities, passes and keys: optional fields after the strings,
 * written only when not the default, read back; a record without them is
 * the version 1 record it was.
 */
Test(state, admission_fields_round_trip)
{
	static const char in[] = HDR
	    "h 0 1 10 20 0 0 0 5 - :/ :a weight=2 key=backup\n"
	    "h 1 1 10 20 0 0 0 5 - :/ :a weight=2 key=backup\n"
	    "w - 3 11 20 0 0 0 5 a :/ :b prio=5\n"
	    "w - 2 12 20 0 0 0 5 b :/ :c weight=3 prio=-3 passed=1\n"
	    "w - 4 13 20 0 0 0 5 c :/ :d\nend\n";
	struct state st;
	char *buf;
	size_t len;

	cr_assert(eq(int, parse(in, &st), 0));
	cr_assert(eq(u32, st.h[0].weight, 2));
	cr_assert(eq(str, st.h[1].key, "backup"));
	cr_assert(eq(int, st.w[0].prio, 5));
	cr_assert(eq(int, st.w[1].prio, -3));
	cr_assert(eq(u32, st.w[1].passed, 1));
	cr_assert(eq(u32, st.w[1].weight, 3));
	cr_assert(eq(u32, st.w[2].weight, 1), "absent: weight 1");
	cr_assert(eq(int, st.w[2].prio, 0));
	cr_assert(eq(str, st.w[2].key, ""));
	cr_assert(eq(int, state_format(&st, &buf, &len), 0));
	cr_assert(eq(sz, len, strlen(in)));
	cr_assert(eq(int, memcmp(buf, in, len), 0), "%.*s", (int)len, buf);
	free(buf);
	state_free(&st);
}

/* Each of bad, as the fields of a waiter record, makes the state refused. */
static void
refuse_fields(const char *const *bad, size_t n)
{
	char line[256];
	struct state st;
	size_t i;

	for (i = 0; i < n; i++) {
		(void)snprintf(line, sizeof(line), HDR
		    "w - 3 11 20 0 0 0 5 a :/ :b %s\nend\n", bad[i]);
		cr_assert(eq(int, parse(line, &st), -1), "%s", bad[i]);
	}
}

Test(state, rejects_bad_admission_fields)
{
	static const char *const bad[] = {
		"weight=1", "weight=0", "weight=4097", "weight=x", "prio=abc",
		"prio=-0", "prio=1000001", "prio=5 prio=5", "passed=0",
		"key=", "key=a\\040b", "key=123456789012345678901234567890123",
		"color=red", "weight=2 prio=1 passed=1 key=k x=1", "weight=2 "
	};
	struct state st;

	refuse_fields(bad, sizeof(bad) / sizeof(bad[0]));
	cr_assert(eq(int, parse(HDR "h 0 1 10 20 0 0 0 5 - :/ :a prio=2\nend\n",
	    &st), -1), "a holder has no priority");
	cr_assert(eq(int, parse(HDR "w - 3 10 20 0 0 0 5 a :/ :a prio=1\n"
	    "w - 2 11 20 0 0 0 5 b :/ :b prio=1\nend\n", &st), -1),
	    "tickets out of order within a priority");
}

/* A waiter's resource needs: read, written back in the same words. */
Test(state, resource_needs_round_trip)
{
	static const char in[] = HDR
	    "w - 3 11 20 0 0 0 5 a :/ :b mem=2147483648 psim=2050 load=400\n"
	    "w - 4 12 20 0 0 0 5 b :/ :c weight=2 memp=10 psic=0 psii=10000\n"
	    "w - 5 13 20 0 0 0 5 c :/ :d\nend\n";
	struct state st;
	char *buf;
	size_t len;

	cr_assert(eq(int, parse(in, &st), 0));
	cr_assert(eq(u32, st.w[0].need.has, RES_MEM | RES_PSI(RES_PSI_MEMORY) |
	    RES_LOAD));
	cr_assert(eq(u64, st.w[0].need.mem, UINT64_C(2147483648)));
	cr_assert(eq(u32, st.w[0].need.psi[RES_PSI_MEMORY], 2050));
	cr_assert(eq(u32, st.w[0].need.load, 400));
	cr_assert(eq(u32, st.w[1].need.has, RES_MEMPCT | RES_PSI(RES_PSI_CPU) |
	    RES_PSI(RES_PSI_IO)));
	cr_assert(eq(u32, st.w[1].need.mem_pct, 10));
	cr_assert(eq(u32, st.w[1].need.psi[RES_PSI_IO], 10000));
	cr_assert(eq(u32, st.w[2].need.has, 0), "absent: no needs");
	cr_assert(eq(int, state_format(&st, &buf, &len), 0));
	cr_assert(eq(sz, len, strlen(in)));
	cr_assert(eq(int, memcmp(buf, in, len), 0), "%.*s", (int)len, buf);
	free(buf);
	state_free(&st);
}

Test(state, rejects_bad_resource_needs)
{
	static const char *const bad[] = {
		"mem=0", "mem=x", "mem=1152921504606846977", "memp=0",
		"memp=101", "mem=1 memp=5", "psim=10001", "psic=-1", "psix=1",
		"load=1000001", "load=1.5", "mem=1 mem=1"
	};
	struct state st;

	refuse_fields(bad, sizeof(bad) / sizeof(bad[0]));
	cr_assert(eq(int, parse(HDR "h 0 1 10 20 0 0 0 5 - :/ :a mem=1\nend\n",
	    &st), -1), "a holder has no needs");
}

/* Results of keyed requests: read, written back, the last 32 kept. */
Test(state, results_round_trip_and_the_oldest_go)
{
	static const char in[] = HDR "r 3 42 1000\nr 4 0 1001\nend\n";
	struct state st;
	char *buf;
	size_t len, i;

	cr_assert(eq(int, parse(in, &st), 0));
	cr_assert(eq(sz, st.nres, 2));
	cr_assert(eq(int, state_result(&st, 3)->status, 42));
	cr_assert(eq(ptr, (void *)state_result(&st, 5), NULL));
	cr_assert(eq(int, state_format(&st, &buf, &len), 0));
	cr_assert(eq(sz, len, strlen(in)));
	cr_assert(eq(int, memcmp(buf, in, len), 0));
	free(buf);
	for (i = 0; i < STATE_MAX_RESULTS; i++)
		state_result_add(&st, 100 + i, 1, 5);
	cr_assert(eq(sz, st.nres, STATE_MAX_RESULTS));
	cr_assert(eq(ptr, (void *)state_result(&st, 3), NULL), "the oldest went");
	cr_assert(eq(int, state_result(&st, 100)->status, 1));
	state_free(&st);
	cr_assert(eq(int, parse(HDR "r 3 256 1000\nend\n", &st), -1));
	cr_assert(eq(int, parse(HDR "r 3 1\nend\n", &st), -1));
	cr_assert(eq(int, parse(HDR "r 9 1 1\nend\n", &st), -1),
	    "a ticket at the next ticket");
}

/* A gate's parent: an optional header line, read and written back. */
Test(state, parent_round_trip)
{
	static const char in[] = HDR "parent build\nend\n";
	struct state st;
	char *buf;
	size_t len;

	cr_assert(eq(int, parse(in, &st), 0));
	cr_assert(eq(str, st.parent, "build"));
	cr_assert(eq(int, state_format(&st, &buf, &len), 0));
	cr_assert(eq(sz, len, strlen(in)));
	cr_assert(eq(int, memcmp(buf, in, len), 0));
	free(buf);
	state_free(&st);
	cr_assert(eq(int, parse(HDR "end\n", &st), 0));
	cr_assert(eq(str, st.parent, ""), "none: a version 1 header");
	state_free(&st);
	cr_assert(eq(int, parse(HDR "parent .x\nend\n", &st), -1));
	cr_assert(eq(int, parse(HDR "parent a/b\nend\n", &st), -1));
	cr_assert(eq(int, parse(HDR "parent a\nparent b\nend\n", &st), -1));
}

Test(state, rejects_data_after_end)
{
	struct state st;

	cr_assert(eq(int, parse(HDR "end\nlimit 3\n", &st), -1));
	cr_assert(eq(int, parse(HDR "end\n", &st), 0));
	state_free(&st);
}

Test(state, salvage_keeps_valid_records)
{
	const char *s = "garbage\nlimit 3\nh 0 1 10 20 0 0 0 5 - :/ :ok\n"
	    "h 1 2 bad\nh 0 3 11 20 0 0 0 5 - :/ :dup\n"
	    "w - 4 12 20 0 0 0 5 ab :/ :waiter\n";
	struct state st;
	const char *why;
	char *cwd, *cmd;

	cr_assert(eq(int, state_parse(s, strlen(s), &st, 1, &why), 0));
	cr_assert(eq(u32, st.limit, 3));
	cr_assert(eq(sz, st.nh, 1));
	cr_assert(eq(int, state_entry_decode(&st.h[0], &cwd, &cmd), 0));
	cr_assert(eq(str, cmd, "ok"));
	free(cwd);
	free(cmd);
	cr_assert(eq(sz, st.nw, 1));
	cr_assert(eq(u64, st.next_ticket, 5));
	state_free(&st);
}

Test(state, salvage_ignores_bad_header_values)
{
	const char *s = "gaterun-state 1\nlimit banana\nlimit 99999\n";
	struct state st;
	const char *why;

	cr_assert(eq(int, state_parse(s, strlen(s), &st, 1, &why), 0));
	cr_assert(eq(u32, st.limit, UINT_MAX), "no limit was valid");
	state_free(&st);
}

Test(state, salvage_of_nothing_gives_defaults)
{
	struct state st;
	const char *why;

	cr_assert(eq(int, state_parse("\0\0\0", 3, &st, 1, &why), 0));
	cr_assert(eq(u32, st.limit, UINT_MAX));
	cr_assert(eq(sz, st.nh, 0));
	state_free(&st);
}

/*
 * A record as large as a record can be: numbers at their bounds, a cwd of
 * 5 x 250 and a command of 1,100 bytes from 0x80-0xfe (each byte encodes
 * to four), as in the issue that wrote 67,112,051 bytes.
 */
static void
huge_entry(struct entry *e, int slot, uint64_t ticket)
{
	char cwd[5 * 251 + 1], cmd[1101];
	size_t i;

	for (i = 0; i < sizeof(cwd) - 1; i++)
		cwd[i] = i % 251 == 0 ? '/' : (char)(0x80 + i % 0x7f);
	cwd[sizeof(cwd) - 1] = '\0';
	for (i = 0; i < sizeof(cmd) - 1; i++)
		cmd[i] = (char)(0x80 + i % 0x7f);
	cmd[sizeof(cmd) - 1] = '\0';
	memset(e, 0, sizeof(*e));
	e->slot = slot;
	e->ticket = ticket;
	e->wrapper.pid = e->cmd.pid = INT32_MAX;
	e->wrapper.start = e->cmd.start = LLONG_MAX;
	e->uid = UINT32_MAX - 1;
	e->time_ns = LLONG_MAX;
	e->weight = STATE_MAX_SLOTS;
	memset(e->key, 'k', STATE_KEY_MAX);
	if (slot < 0) {
		strcpy(e->addr, "0123456789abcdef");
		e->prio = -STATE_MAX_PRIO;
		e->passed = STATE_MAX_WAITERS;
		/* Every need at its widest (mem= is, memp= is not). */
		e->need.has = RES_ALL & ~(unsigned)RES_MEMPCT;
		e->need.mem = RES_MAX_MEM;
		e->need.psi[0] = e->need.psi[1] = e->need.psi[2] = 10000;
		e->need.load = RES_MAX_LOAD;
	}
	cr_assert(eq(int, state_entry_encode(e, cwd, cmd), 0));
}

/* Bytes a state of st's header and the record e takes, less the header. */
static size_t
record_bytes(const struct state *st, const struct entry *e)
{
	struct state one = *st;
	size_t len0, len1;
	char *buf;

	one.nh = one.nw = 0;
	cr_assert(eq(int, state_format(&one, &buf, &len0), 0));
	free(buf);
	if (e->slot >= 0) {
		one.h = (struct entry *)e;
		one.nh = 1;
	} else {
		one.w = (struct entry *)e;
		one.nw = 1;
	}
	cr_assert(eq(int, state_format(&one, &buf, &len1), 0));
	free(buf);
	return len1 - len0;
}

/*
 * A transaction never writes what it could not read back: however long
 * the strings, the most holders and waiters a state may hold, every
 * record as large as it can be, format within STATE_MAX_BYTES and parse
 * back.
 */
Test(state, the_largest_state_fits_the_cap)
{
	size_t nh = STATE_MAX_SLOTS, nw = STATE_MAX_WAITERS, len, i;
	struct state st, back;
	struct entry h, w;
	const char *why;
	char *buf;

	memset(&st, 0, sizeof(st));
	st.limit = STATE_MAX_SLOTS;
	st.next_ticket = (uint64_t)LLONG_MAX;
	st.acquired = st.wait_ns = (uint64_t)LLONG_MAX;
	memcpy(st.boot, BOOT, 37);
	huge_entry(&h, STATE_MAX_SLOTS - 1, (uint64_t)LLONG_MAX - 1);
	huge_entry(&w, -1, (uint64_t)LLONG_MAX - 1);
	/* Cheap first: the records times their ceilings, plus the header. */
	cr_assert(le(sz, nh * record_bytes(&st, &h) + nw * record_bytes(&st,
	    &w) + 256, (size_t)STATE_MAX_BYTES), "records of %zu and %zu bytes",
	    record_bytes(&st, &h), record_bytes(&st, &w));
	/* Then the real thing, every record sharing the same strings. */
	cr_assert(ne(ptr, (st.h = calloc(nh, sizeof(*st.h))), NULL));
	cr_assert(ne(ptr, (st.w = calloc(nw, sizeof(*st.w))), NULL));
	for (i = 0; i < nh; i++) {
		st.h[i] = h;
		st.h[i].slot = (int)i;
		st.h[i].ticket = (uint64_t)LLONG_MAX - 1 - nw - i;
		st.h[i].strs_shared = 1;
	}
	for (i = 0; i < nw; i++) {
		st.w[i] = w;
		st.w[i].ticket = (uint64_t)LLONG_MAX - 1 - nw + i;
		st.w[i].strs_shared = 1;
	}
	st.nh = nh;
	st.nw = nw;
	cr_assert(eq(int, state_format(&st, &buf, &len), 0));
	cr_assert(le(sz, len, (size_t)STATE_MAX_BYTES));
	cr_assert(eq(int, state_parse(buf, len, &back, 0, &why), 0), "%s", why);
	cr_assert(eq(sz, back.nh, nh));
	cr_assert(eq(sz, back.nw, nw));
	free(buf);
	state_free(&back);
	state_free(&st);
	free(h.strs);
	free(w.strs);
}

/* Strings longer than a record keeps are cut, marked, at a character. */
Test(state, long_strings_are_cut_and_marked)
{
	char cwd[400], cmd[400], *dc, *dm;
	struct entry e;
	size_t i;

	memset(&e, 0, sizeof(e));
	cr_assert(eq(int, state_entry_encode(&e, "/tmp", "make -j4"), 0));
	cr_assert(eq(int, state_entry_decode(&e, &dc, &dm), 0));
	cr_assert(eq(str, dc, "/tmp"));
	cr_assert(eq(str, dm, "make -j4"));
	free(dc);
	free(dm);
	/* ASCII: the first STATE_CWD_ENC - 3 bytes, then "...". */
	memset(cwd, 'c', sizeof(cwd) - 1);
	cwd[sizeof(cwd) - 1] = '\0';
	/* UTF-8, two bytes a character (\303\251, 8 encoded): no half one. */
	for (i = 0; i + 2 < sizeof(cmd); i += 2) {
		cmd[i] = '\xc3';
		cmd[i + 1] = '\xa9';
	}
	cmd[i] = '\0';
	cr_assert(eq(int, state_entry_encode(&e, cwd, cmd), 0));
	cr_assert(le(sz, e.strslen, 3 + STATE_CWD_ENC + STATE_CMD_ENC));
	cr_assert(eq(int, state_entry_decode(&e, &dc, &dm), 0));
	cr_assert(eq(sz, strlen(dc), STATE_CWD_ENC));
	cr_assert(eq(int, strncmp(dc, cwd, STATE_CWD_ENC - 3), 0));
	cr_assert(eq(str, dc + STATE_CWD_ENC - 3, STATE_CUT));
	cr_assert(eq(sz, (strlen(dm) - 3) % 2, 0), "cut inside a character");
	cr_assert(eq(sz, strlen(dm) - 3, (STATE_CMD_ENC - 3) / 8 * 2));
	cr_assert(eq(str, dm + strlen(dm) - 3, STATE_CUT));
	free(dc);
	free(dm);
	free(e.strs);
}

/*
 * A record an older gaterun wrote, with strings longer than a record now
 * keeps: read (it may be a live holder), cut, and so written back within
 * the ceiling.
 */
Test(state, older_long_records_are_read_and_cut)
{
	char *s, *p, *dc, *dm;
	struct state st;
	size_t i;

	cr_assert(ne(ptr, (s = malloc(strlen(HDR) + 64 + 2 * 4096 + 8)), NULL));
	p = s + sprintf(s, HDR "h 0 1 10 20 0 0 0 5 - :");
	for (i = 0; i < 1024; i++)
		p += sprintf(p, "\\200");
	p += sprintf(p, " :");
	for (i = 0; i < 1024; i++)
		p += sprintf(p, "x");
	(void)sprintf(p, "\nend\n");
	cr_assert(eq(int, parse(s, &st), 0));
	cr_assert(eq(sz, st.nh, 1));
	cr_assert(le(sz, st.h[0].strslen, 3 + STATE_CWD_ENC + STATE_CMD_ENC));
	cr_assert(eq(int, state_entry_decode(&st.h[0], &dc, &dm), 0));
	cr_assert(eq(sz, strlen(dm), STATE_CMD_ENC));
	cr_assert(eq(str, dm + STATE_CMD_ENC - 3, STATE_CUT));
	cr_assert(eq(str, dc + strlen(dc) - 3, STATE_CUT));
	free(dc);
	free(dm);
	state_free(&st);
	free(s);
}

/* A salvage reads on past an "end" in the middle (strict refuses it). */
Test(state, salvage_reads_past_an_end_line)
{
	const char *s = HDR "end\nlimit 3\nh 0 1 10 20 0 0 0 5 - :/ :ok\n";
	struct state st;
	const char *why;

	cr_assert(eq(int, state_parse(s, strlen(s), &st, 1, &why), 0));
	cr_assert(eq(u32, st.limit, 3));
	cr_assert(eq(sz, st.nh, 1));
	state_free(&st);
}

/* What a salvage of an oversized file keeps first. */
Test(state, line_weights)
{
	cr_assert(eq(int, state_line_weight("h 0 1", 5), 2));
	cr_assert(eq(int, state_line_weight("limit 3", 7), 2));
	cr_assert(eq(int, state_line_weight("gaterun-state 1", 15), 2));
	cr_assert(eq(int, state_line_weight("w - 1", 5), 1));
	cr_assert(eq(int, state_line_weight("end", 3), 0));
	cr_assert(eq(int, state_line_weight("xyz", 3), 0));
	cr_assert(eq(int, state_line_weight("h", 1), 0));
}
