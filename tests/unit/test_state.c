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
