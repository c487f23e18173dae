/*
 * /etc/gaterun.conf: defaults a gate gets when it is made, kept across
 * reboots (/run is emptied at boot, and with it every --limit).
 */
#ifndef GATERUN_CONFFILE_H
#define GATERUN_CONFFILE_H

#include <limits.h>
#include <stddef.h>

struct config {
	int	limit;		/* default limit of a new gate; -1: unset */
	int	log;		/* log events: 1, 0, or -1: unset */
	char	group[64];	/* group a new state directory is shared with */
	char	store[PATH_MAX];	/* where gates live; "": unset */
};

/*
 * Read path for gate: global keys, then those of its [gate NAME] section
 * (gate NULL: the global keys alone).
 * A missing or unreadable file is no error (defaults). Returns 0, or -1 with "PATH:LINE: why" in err.
 */
int	config_read(const char *, const char *, struct config *, char *,
	    size_t);
/* Set "limit = N" in gate's section (made if need be); 0 or -1 + err. */
int	config_target(const char *, char *, size_t, char *, size_t);
int	config_set_limit(const char *, const char *, unsigned, char *, size_t);

#endif
