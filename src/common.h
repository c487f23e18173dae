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

#endif
