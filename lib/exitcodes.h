/*
 * gaterun's exit codes: the single source of truth, repeated word for word
 * in --help, gaterun(1) and README.md.
 */
#ifndef GATERUN_EXITCODES_H
#define GATERUN_EXITCODES_H

enum exitcode {
	EXIT_NOSLOT = 75,	/* no slot: full with -n, or -w ran out (EX_TEMPFAIL) */
	EXIT_GATERUN = 125,	/* gaterun itself failed: usage, value, state, lock */
	EXIT_NOEXEC = 126,	/* CMD found but could not be executed */
	EXIT_NOTFOUND = 127	/* CMD not found */
};

#endif
