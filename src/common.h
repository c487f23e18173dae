/*
 * What the command line and the HTTP server share: where gates live and
 * how the values a person types are read. Nothing here exits, save
 * state_dir() at start: callers word the error their own way (a message
 * on stderr, a JSON 400).
 */
#ifndef GATERUN_COMMON_H
#define GATERUN_COMMON_H

/*
 * Where gates live: locate_store() (lib/locate.h) given the store = line
 * of $GATERUN_CONF or the configured file. A static buffer; dies (125)
 * when the file is wrong or no directory can be named.
 */
const char	*state_dir(void);
/*
 * Seconds: a non-negative decimal, at most a year; one too small to
 * represent (1e-400) is 0. No minus sign, hex, nan or inf. 0, or -1.
 */
int	secs_parse(const char *, double *);
/* A signal by name (TERM, SIGTERM, term) or number; -1 if none. */
int	signal_parse(const char *);
/* An integer min..GATE_MAX_LIMIT, digits only. 0, or -1. */
int	limit_parse(const char *, unsigned, unsigned *);

/*
 * A name a person gave, as an error quotes it: its first NAME_SHOWN
 * characters (UTF-8 ones kept whole), then "..." when it is longer, so
 * a 5000-character name makes no 5000-character message. Into buf;
 * returns buf.
 */
#define NAME_SHOWN	40
typedef char	name_buf[NAME_SHOWN * 4 + 4];
const char	*name_shown(const char *, name_buf);

struct config;
struct gate_info;

/*
 * The limit a gate made now gets: $GATERUN_LIMIT, else the limit of c (the
 * configuration read for that gate; NULL if there is none to go by), else
 * GATE_DEFAULT_LIMIT. 0, or -1 if $GATERUN_LIMIT is set but no integer
 * 0..GATE_MAX_LIMIT (*out is then what it is without it).
 */
int	limit_default(const struct config *, unsigned *);

/*
 * Gates of a store, each read on its own: the n read come first in names
 * (with gi), the nfailed that could not be read after them (with why).
 */
struct snapshots {
	char		**names;	/* n read, then nfailed not */
	struct gate_info *gi;		/* n, for names[0..n-1] */
	char		**why;		/* nfailed: "cannot read gate 'G' in
					   DIR: why", for names[n..] */
	size_t		n;
	size_t		nfailed;
};

/*
 * Snapshots of the gate only of the store at dir, or of every gate there
 * when only is NULL. A gate is opened with the limit its configuration
 * (conf) gives a new one; notify gets the engine's warnings. A gate that
 * cannot be read is named in why, and the others are read all the same.
 * 0, or -1 with errno if the store cannot be listed or memory runs out.
 */
int	snapshots_of(const char *, const char *, const char *,
	    void (*)(void *, const char *), struct snapshots *);
void	snapshots_free(struct snapshots *);

#endif
