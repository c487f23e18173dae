/*
 * The on-disk state of one gate: a versioned, line-oriented text format.
 * state_parse() validates everything it reads; state_format() writes it.
 */
#ifndef GATERUN_STATE_H
#define GATERUN_STATE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "proc.h"
#include "resource.h"

#define STATE_MAGIC		"gaterun-state"
#define STATE_VERSION		1
#define STATE_MAX_SLOTS		4096		/* largest limit */
#define STATE_MAX_WAITERS	100000
#define STATE_MAX_BYTES		(80u << 20)	/* refuse larger files */
#define STATE_MAX_STR		1024		/* cwd and command, decoded */
#define STATE_ADDR_LEN		16		/* wake socket name, hex */
#define STATE_HOST_LEN		64		/* a store's host id (Redis) */
#define STATE_KEY_MAX		32		/* a unique key's length */
#define STATE_MAX_PRIO		1000000		/* priorities: -MAX..MAX */
#define STATE_MAX_RESULTS	32		/* exit statuses kept */
#define STATE_NAME_MAX		64		/* a gate name's length */
#define STATE_RESULT_MAX	64		/* bytes of a result line */
/*
 * What a record keeps of cwd and command, encoded: longer ones are cut
 * (at a character) and end in STATE_CUT. So that the most records a state
 * holds always fit in STATE_MAX_BYTES: a record line takes at most
 * STATE_LINE_MAX bytes (176 of numbers, spaces and kind at their widest),
 * a header STATE_HEAD_MAX, and a transaction never writes what reading
 * would refuse. The optional fields after the strings (weight, priority,
 * passes, key, resource needs) take at most STATE_EXTRA_MAX. Strings up to STATE_MAX_STR decoded (an older gaterun's)
 * are still read, and cut as they are.
 */
#define STATE_CWD_ENC		150
#define STATE_CMD_ENC		310
#define STATE_CUT		"..."
#define STATE_EXTRA_MAX		(48 + 5 + STATE_KEY_MAX + 80)
#define STATE_LINE_MAX		(176 + STATE_EXTRA_MAX + STATE_CWD_ENC + \
				    STATE_CMD_ENC)
#define STATE_HEAD_MAX		256
/* The longest line read at all (older files); longer ones are damage. */
#define STATE_READ_LINE_MAX	(16 + 10 * 24 + 2 * (4 * STATE_MAX_STR + 2) + \
				    STATE_EXTRA_MAX)

/* One holder or waiter. */
struct entry {
	int		slot;		/* holder: 0..; waiter: -1 */
	uint64_t	ticket;		/* arrival order */
	struct procid	wrapper;	/* the gaterun process */
	struct procid	cmd;		/* holder's command; pid 0 until forked */
	uid_t		uid;
	int64_t		time_ns;	/* realtime: started (holder), queued */
	char		addr[STATE_ADDR_LEN + 1]; /* waiter's wake socket */
	/*
	 * Kept by a store shared between hosts (store_redis.c), not by the
	 * text of this file: the record's host id ("" in the file store),
	 * 1 if that is not this host, its lease's end in the server's
	 * clock (ms; 0: none yet), and the lease's length (ms; 0: unknown).
	 */
	char		host[STATE_HOST_LEN + 1];
	int		foreign;
	int64_t		lease_ms;
	int64_t		lease_ttl;
	/*
	 * Admission (written only when not the default, so a record without
	 * them is the version 1 record it always was): the slots its request
	 * takes at once (each holder record of it says so too), a waiter's
	 * priority and how many later requests were let ahead of it, and the
	 * request's unique key ("" for none).
	 */
	unsigned	weight;		/* 1..STATE_MAX_SLOTS; 0 read as 1 */
	int		prio;
	unsigned	passed;
	char		key[STATE_KEY_MAX + 1];
	struct res_need	need;		/* a waiter's (resource.h) */
	/*
	 * cwd and command (argv joined by spaces) as the file holds them:
	 * ":CWD :COMMAND", vis(3)-encoded, malloc'd. Kept encoded so that a
	 * transaction copies them through untouched; state_entry_decode()
	 * gives them back to the few callers that show them.
	 */
	char		*strs;
	size_t		strslen;
	int		strs_shared;	/* in state.arena: not freed alone */
};

/* How a request with a unique key ended, for those who joined it. */
struct result {
	uint64_t	ticket;		/* the request's */
	int		status;		/* exit status, 0..255 */
	int64_t		time_ns;	/* realtime: when it was recorded */
};

struct state {
	unsigned	limit;
	uint64_t	next_ticket;
	uint64_t	acquired;	/* requests granted, ever */
	uint64_t	wait_ns;	/* time spent queued by those, ever */
	char		boot[40];	/* boot id the records belong to */
	char		parent[STATE_NAME_MAX + 1]; /* parent gate, or "" */
	struct entry	*h;		/* holders, any order */
	size_t		nh;
	struct entry	*w;		/* waiters, in the order served */
	size_t		nw;
	struct result	res[STATE_MAX_RESULTS]; /* oldest first */
	size_t		nres;
	char		*arena;		/* the parsed text: records' strings */
};

/*
 * Parse buf into st (zeroed first). Returns 0, or -1 with errno EINVAL and
 * *why set to a static reason. With salvage set, lines that fail are
 * skipped instead, the header takes defaults, and only the records that
 * parse are kept: that is how holders survive a damaged file.
 */
int	state_parse(const char *, size_t, struct state *, int, const char **);
/*
 * How much a line of a state file matters to a salvage that cannot keep
 * all: 2 for the header and holders (a holder forgotten lets one command
 * too many in), 1 for a waiter (one forgotten queues again) or a result,
 * 0 else.
 */
int	state_line_weight(const char *, size_t);
/* Format st into a malloc'd buffer; returns 0 or -1. */
int	state_format(const struct state *, char **, size_t *);
/*
 * Set e's strings from cwd and command (NULL: empty), each cut to what a
 * record keeps (STATE_CWD_ENC, STATE_CMD_ENC); 0 or -1.
 */
int	state_entry_encode(struct entry *, const char *, const char *);
/* 1 if s is a valid unique key: 1-STATE_KEY_MAX of [A-Za-z0-9._:@+/-]. */
int	state_key_valid(const char *);
/* Decode e's strings into malloc'd *cwd and *command; 0 or -1. */
int	state_entry_decode(const struct entry *, char **, char **);
/* Append e (taking its strings) to holders or waiters; 0 or -1. */
int	state_add(struct entry **, size_t *, const struct entry *);
/* Remove element i, keeping order; frees its strings. */
void	state_remove(struct entry *, size_t *, size_t);
/*
 * Record how the request of ticket ended (keyed requests): the oldest
 * result goes when STATE_MAX_RESULTS are kept.
 */
void	state_result_add(struct state *, uint64_t, int, int64_t);
/* The result of ticket, or NULL. */
const struct result *state_result(const struct state *, uint64_t);
/* Free the records and zero st. */
void	state_free(struct state *);

#endif
