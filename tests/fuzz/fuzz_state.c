/*
 * libFuzzer target for the state-file parser: any bytes, strict and
 * salvage modes. A parse that succeeds must format and parse back to the
 * same records, so the writer and the reader agree on every input.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/*
 * What the parser accepted must decode, within bounds, and be no longer
 * than a record keeps (so that a state at its ceilings fits the cap).
 */
static void
decodes(const struct entry *e)
{
	char *cwd, *cmd;

	if (e->strslen > 3 + STATE_CWD_ENC + STATE_CMD_ENC ||
	    state_entry_decode(e, &cwd, &cmd) == -1 ||
	    strlen(cwd) > STATE_MAX_STR || strlen(cmd) > STATE_MAX_STR)
		abort();
	free(cwd);
	free(cmd);
}

/* Same records, field by field. */
static int
same(const struct entry *a, const struct entry *b)
{
	return a->slot == b->slot && a->ticket == b->ticket &&
	    a->wrapper.pid == b->wrapper.pid &&
	    a->wrapper.start == b->wrapper.start &&
	    a->cmd.pid == b->cmd.pid && a->cmd.start == b->cmd.start &&
	    a->uid == b->uid && a->time_ns == b->time_ns &&
	    (a->slot >= 0 || strcmp(a->addr, b->addr) == 0) &&
	    a->strslen == b->strslen &&
	    memcmp(a->strs, b->strs, a->strslen) == 0;
}

static void
round_trip(const struct state *st)
{
	struct state back;
	const char *why;
	size_t len, i;
	char *buf;

	if (st->limit > STATE_MAX_SLOTS || st->boot[0] == '\0')
		return;		/* salvage left a field for the caller */
	if (state_format(st, &buf, &len) == -1)
		abort();
	if (state_parse(buf, len, &back, 0, &why) == -1)
		abort();
	if (back.nh != st->nh || back.nw != st->nw || back.limit != st->limit)
		abort();
	for (i = 0; i < st->nh; i++) {
		decodes(&st->h[i]);
		if (!same(&st->h[i], &back.h[i]))
			abort();
	}
	for (i = 0; i < st->nw; i++) {
		decodes(&st->w[i]);
		if (!same(&st->w[i], &back.w[i]))
			abort();
	}
	state_free(&back);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state st;
	const char *why;
	int salvage;

	for (salvage = 0; salvage <= 1; salvage++) {
		if (state_parse((const char *)data, size, &st, salvage,
		    &why) == 0) {
			round_trip(&st);
			state_free(&st);
		}
	}
	return 0;
}
