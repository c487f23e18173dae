/*
 * gaterun -J: the command's build gets a GNU make jobserver whose tokens
 * are slots of the gate (jobserver.c). run.c opens it before forking the
 * command, serves it while the command runs, and closes it at the end.
 */
#ifndef GATERUN_JOBSERVER_H
#define GATERUN_JOBSERVER_H

#include <signal.h>

/* opts.jobserver: -J's style. */
#define JS_OFF		0
#define JS_AUTO		1	/* fifo for ninja, else pipe */
#define JS_PIPE		2	/* --jobserver-auth=R,W: inherited fds */
#define JS_FIFO		3	/* --jobserver-auth=fifo:PATH */

/* How --status marks the records of a jobserver's tokens. */
#define JS_TOKEN_MARK	" [jobserver token]"

struct gate;
struct gate_req;
struct jobserver;
struct opts;

/* -J's argument (NULL: auto) as a style; dies on a bad one. */
int	jobserver_style(const char *);
/*
 * Before the command is forked: make the jobserver's pipe, and the
 * command's environment (MAKEFLAGS, CARGO_MAKEFLAGS) in *copy, a copy of
 * o. Warns when the command line carries -jN. Dies on failure.
 */
struct jobserver *jobserver_open(const struct opts *, struct opts *copy);
/* The command pid runs in the gate's slot: start handing out tokens. */
void	jobserver_serve(struct jobserver *, struct gate *,
	    const struct gate_req *, pid_t);
/*
 * Hand out and take back tokens, then sleep until something happens (a
 * token taken or returned, a slot of the gate, a signal let through by
 * sleepmask) or the spare has idled.
 */
void	jobserver_step(struct jobserver *, const sigset_t *);
/* Remove the pipe (the caller gives the slots back); NULL: nothing. */
void	jobserver_close(struct jobserver *);

#endif
