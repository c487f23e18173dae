/*
 * gaterun: run a command when a slot of a shared job gate is free, or
 * inspect and change the gate. This file is the command line only: options,
 * modes, signals, fork/exec/wait and exit codes. The engine is lib/gate.c.
 */
#include "config.h"

#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "common.h"
#include "conffile.h"
#include "exitcodes.h"
#include "gate.h"
#include "report.h"
#include "sys.h"

#define __dead	__attribute__((__noreturn__))

enum mode {
	MODE_RUN, MODE_STATUS, MODE_LIMIT, MODE_KILL, MODE_ACTIVE, MODE_CHECK,
	MODE_METRICS
};

struct opts {
	enum mode	mode;
	int		nmodes;
	const char	*gate;
	const char	*dir;
	unsigned	deflimit;
	unsigned	limit;		/* --limit N */
	int		nowait;		/* -n */
	int		exec;		/* -x: become the command */
	double		wait;		/* -w SECS; < 0: forever */
	int		conflict;	/* exit code when no slot */
	int		json;
	int		log;		/* --log or GATERUN_LOG: syslog events */
	int		persist;	/* --limit N --persist */
	const char	*conf;		/* configuration file */
	int		all;		/* --all: every gate of the directory */
	double		watch;		/* --watch: redraw period; < 0 off */
	unsigned	warn, crit;	/* --check thresholds, percent */
	double		maxwait;	/* --check: a waiter stuck this long */
	int		sig;		/* --kill-all signal */
	double		grace;
	pid_t		pid;		/* --is-active */
	char		**cmd;
};

/* The only global state: what signal handlers saw. */
static volatile sig_atomic_t got_stop;		/* leave the queue */
static volatile sig_atomic_t got_chld;
static volatile sig_atomic_t pending[NSIG];	/* to forward to CMD */

/*
 * Signals we catch: those forwarded to CMD (they also end a wait in
 * line), then SIGCHLD.
 */
static const int our_sigs[] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT,
	SIGCHLD		/* last: caught, never forwarded */
};
#define NOURS	(sizeof(our_sigs) / sizeof(our_sigs[0]))
#define NFWD	(NOURS - 1)

static void __dead
usage(int status)
{
	FILE *fp = status ? stderr : stdout;

	(void)fprintf(fp,
"usage: gaterun [-g GATE] [-n | -w SECONDS] [-E CODE] [-x] [--] COMMAND [ARG...]\n"
"       gaterun [-g GATE | --all] --status [--json | --watch[=SECONDS]]\n"
"       gaterun [-g GATE | --all] --check [--warn PCT] [--crit PCT] [--max-wait SECONDS]\n"
"       gaterun [-g GATE | --all] --metrics\n"
"       gaterun [-g GATE] --limit N [--persist] [--json]\n"
"       gaterun [-g GATE] --kill-all [--signal SIG] [--grace SECONDS] [--json]\n"
"       gaterun [-g GATE] --is-active PID\n"
"       gaterun --help | --version\n");
	if (status)
		exit(status);
	(void)fprintf(fp, "\n"
"Run COMMAND when the gate has a free slot; at most the gate's limit of\n"
"commands run at once, across every shell and user sharing the gate.\n"
"\n"
"  -g, --gate NAME        gate to use (default: $GATERUN_GATE or 'default')\n"
"  -n, --no-wait          fail at once when the gate is full\n"
"  -w, --wait SECONDS     wait at most SECONDS (decimals allowed)\n"
"  -E, --conflict-exit-code CODE  exit code when no slot (default 75)\n"
"  -x, --exec             become COMMAND once the slot is taken: no wrapper\n"
"                         process; the slot is free when COMMAND ends\n"
"  -s, --status           show slots, PIDs, utilization and waiters\n"
"  -j, --json             print --status, --limit or --kill-all as JSON\n"
"  -A, --all              --status, --check or --metrics of every gate\n"
"      --watch[=SECONDS]  --status redrawn on every change and every SECONDS\n"
"  -c, --check            health check, as a Nagios/Icinga plugin: exit 0 OK,\n"
"                         1 WARNING, 2 CRITICAL, 3 UNKNOWN\n"
"  -W, --warn PCT         --check: WARNING above this utilization (default 80)\n"
"  -C, --crit PCT         --check: CRITICAL above this utilization (default 95)\n"
"  -M, --max-wait SECONDS --check: CRITICAL when a waiter waited longer (600)\n"
"  -m, --metrics          Prometheus text format (node_exporter textfile)\n"
"  -L, --log              log takes, releases, limit changes and kill-alls\n"
"                         to syslog (also GATERUN_LOG=1; =stderr copies)\n"
"  -l, --limit N          set the gate's limit (0..4096; 0 pauses the gate)\n"
"  -P, --persist          with --limit: also save it in the configuration file\n"
"  -K, --kill-all         stop every running command of the gate\n"
"  -S, --signal SIG       signal for --kill-all (default TERM)\n"
"  -G, --grace SECONDS    then SIGKILL what is left (default 5)\n"
"  -a, --is-active PID    exit 0 if PID runs in a slot of the gate, else 1\n"
"  -h, --help             show this help\n"
"  -V, --version          show the version\n"
"\n"
"Environment: GATERUN_DIR (state directory), GATERUN_GATE, GATERUN_LOG,\n"
"GATERUN_CONF (configuration file, " GATERUN_CONF "),\nGATERUN_LIMIT "
"(limit of a gate made on first use, default 5). COMMAND gets\n"
"GATERUN_SLOT (0..limit-1) and GATERUN_GATE.\n"
"\n"
"Exit status:\n"
"  child     COMMAND's own exit status, passed through\n"
"  75        no slot: gate full with -n, or -w ran out (EX_TEMPFAIL)\n"
"  125       gaterun itself failed (usage, bad value, state file, locking, fork)\n"
"  126       COMMAND found but could not be executed\n"
"  127       COMMAND not found\n"
"  signal N  COMMAND was killed by signal N: gaterun releases the slot, then\n"
"            dies of the same signal (the shell shows 128+N)\n"
"--status and --limit exit 0 or 125; --kill-all exits 1 when some process\n"
"could not be signalled; --is-active exits 0 or 1; --check exits 0-3.\n");
	exit(0);
}

/* The shared parsers (common.c), dying with the value named. */
static double
parse_secs(const char *s, const char *what)
{
	double v;

	if (secs_parse(s, &v) == -1)
		errx(EXIT_GATERUN, "%s is not a number of seconds: '%s'",
		    what, s);
	return v;
}

static int
parse_signal(const char *s)
{
	int n;

	if ((n = signal_parse(s)) == -1)
		errx(EXIT_GATERUN, "unknown signal: '%s'", s);
	return n;
}

static unsigned
parse_limit(const char *s, const char *what)
{
	unsigned v;

	if (limit_parse(s, 0, &v) == -1)
		errx(EXIT_GATERUN, "%s must be an integer from 0 to %d: '%s'",
		    what, GATE_MAX_LIMIT, s);
	return v;
}

/*
 * "group = NAME": a state directory made now is shared with that group
 * (mode 2770, the mark of a shared gate directory). One that exists is
 * left as it is: an admin's choice is not second-guessed.
 */
static void
shared_dir(const char *dir, const char *group, const char *conf)
{
	struct group *gr;

	if ((gr = getgrnam(group)) == NULL)
		errx(EXIT_GATERUN, "%s: group '%s' does not exist", conf, group);
	if (mkdir(dir, 0700) == -1) {
		if (errno == EEXIST)
			return;
		err(EXIT_GATERUN, "cannot make %s", dir);
	}
	if (chown(dir, (uid_t)-1, gr->gr_gid) == -1 || chmod(dir, 02770) == -1)
		err(EXIT_GATERUN, "cannot share %s with group '%s'", dir, group);
}

/*
 * Defaults from the configuration file ($GATERUN_CONF or the configured
 * path): the limit a new gate gets (GATERUN_LIMIT overrides it), logging.
 */
static void
configure(struct opts *o)
{
	struct config c;
	const char *e;
	char err[512];

	o->conf = (e = getenv("GATERUN_CONF")) != NULL && *e ? e : GATERUN_CONF;
	if (config_read(o->conf, o->gate, &c, err, sizeof(err)) == -1)
		errx(EXIT_GATERUN, "%s", err);
	o->deflimit = c.limit >= 0 ? (unsigned)c.limit : GATE_DEFAULT_LIMIT;
	if ((e = getenv("GATERUN_LIMIT")) != NULL)
		o->deflimit = parse_limit(e, "GATERUN_LIMIT");
	if (c.log == 1)
		o->log = 1;
	if (c.group[0] != '\0')
		shared_dir(o->dir, c.group, o->conf);
}

static void
set_mode(struct opts *o, enum mode m)
{
	o->mode = m;
	o->nmodes++;
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "gate",		required_argument, NULL, 'g' },
		{ "no-wait",		no_argument,	   NULL, 'n' },
		{ "nonblock",		no_argument,	   NULL, 'n' },
		{ "wait",		required_argument, NULL, 'w' },
		{ "timeout",		required_argument, NULL, 'w' },
		{ "conflict-exit-code",	required_argument, NULL, 'E' },
		{ "exec",		no_argument,	   NULL, 'x' },
		{ "status",		no_argument,	   NULL, 's' },
		{ "json",		no_argument,	   NULL, 'j' },
		{ "limit",		required_argument, NULL, 'l' },
		{ "kill-all",		no_argument,	   NULL, 'K' },
		{ "signal",		required_argument, NULL, 'S' },
		{ "grace",		required_argument, NULL, 'G' },
		{ "is-active",		required_argument, NULL, 'a' },
		{ "all",		no_argument,	   NULL, 'A' },
		{ "log",		no_argument,	   NULL, 'L' },
		{ "persist",		no_argument,	   NULL, 'P' },
		{ "check",		no_argument,	   NULL, 'c' },
		{ "warn",		required_argument, NULL, 'W' },
		{ "crit",		required_argument, NULL, 'C' },
		{ "max-wait",		required_argument, NULL, 'M' },
		{ "metrics",		no_argument,	   NULL, 'm' },
		{ "watch",		optional_argument, NULL, 'T' },
		{ "help",		no_argument,	   NULL, 'h' },
		{ "version",		no_argument,	   NULL, 'V' },
		{ NULL,			0,		   NULL, 0 }
	};
	const char *errstr, *e;
	int ch, sigset = 0, graceset = 0, checkset = 0;

	o->gate = (e = getenv("GATERUN_GATE")) != NULL && *e ? e : "default";
	o->wait = -1;
	o->conflict = EXIT_NOSLOT;
	o->sig = SIGTERM;
	o->grace = 5;
	o->warn = 80;
	o->crit = 95;
	o->watch = -1;
	o->maxwait = 600;
	while ((ch = getopt_long(argc, argv, "+g:nw:E:xsjl:KS:G:a:AcW:C:M:mLPhV",
	    longopts, NULL)) != -1) {
		switch (ch) {
		case 'g':
			o->gate = optarg;
			break;
		case 'n':
			o->nowait = 1;
			break;
		case 'w':
			o->wait = parse_secs(optarg, "--wait");
			break;
		case 'E':
			o->conflict = (int)strtonum(optarg, 0, 255, &errstr);
			if (errstr != NULL)
				errx(EXIT_GATERUN, "exit code is %s (0 to 255): "
				    "'%s'", errstr, optarg);
			break;
		case 'x':
			o->exec = 1;
			break;
		case 's':
			set_mode(o, MODE_STATUS);
			break;
		case 'j':
			o->json = 1;
			break;
		case 'l':
			o->limit = parse_limit(optarg, "limit");
			set_mode(o, MODE_LIMIT);
			break;
		case 'K':
			set_mode(o, MODE_KILL);
			break;
		case 'S':
			o->sig = parse_signal(optarg);
			sigset = 1;
			break;
		case 'G':
			o->grace = parse_secs(optarg, "--grace");
			graceset = 1;
			break;
		case 'a':
			o->pid = (pid_t)strtonum(optarg, 1, INT32_MAX, &errstr);
			if (errstr != NULL)
				errx(EXIT_GATERUN, "PID is %s: '%s'", errstr,
				    optarg);
			set_mode(o, MODE_ACTIVE);
			break;
		case 'A':
			o->all = 1;
			break;
		case 'L':
			o->log = 2;	/* asked for: GATERUN_LOG=0 cannot undo */
			break;
		case 'P':
			o->persist = 1;
			break;
		case 'c':
			set_mode(o, MODE_CHECK);
			break;
		case 'W':
		case 'C':
			*(ch == 'W' ? &o->warn : &o->crit) =
			    (unsigned)strtonum(optarg, 0, 100, &errstr);
			if (errstr != NULL)
				errx(EXIT_GATERUN, "--%s is %s (0 to 100): '%s'",
				    ch == 'W' ? "warn" : "crit", errstr, optarg);
			checkset = 1;
			break;
		case 'M':
			o->maxwait = parse_secs(optarg, "--max-wait");
			checkset = 1;
			break;
		case 'm':
			set_mode(o, MODE_METRICS);
			break;
		case 'T':
			o->watch = optarg ? parse_secs(optarg, "--watch") : 2;
			if (o->watch < 0.1)
				errx(EXIT_GATERUN, "--watch period is too small "
				    "(0.1 s at least): '%s'", optarg);
			break;
		case 'h':
			usage(0);
			/* NOTREACHED */
		case 'V':
			(void)printf("gaterun %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage(EXIT_GATERUN);
		}
	}
	o->cmd = argv + optind;
	if (!gate_name_valid(o->gate))
		errx(EXIT_GATERUN, "invalid gate name '%s': use 1 to %d of "
		    "A-Z a-z 0-9 . _ -, not starting with '.'", o->gate,
		    GATE_NAME_MAX);
	if (o->nmodes > 1)
		errx(EXIT_GATERUN, "--status, --check, --metrics, --limit, "
		    "--kill-all and --is-active exclude each other");
	if (o->all && o->mode != MODE_STATUS && o->mode != MODE_CHECK &&
	    o->mode != MODE_METRICS)
		errx(EXIT_GATERUN, "--all goes with --status, --check or "
		    "--metrics");
	if (o->watch >= 0 && (o->mode != MODE_STATUS || o->json))
		errx(EXIT_GATERUN, "--watch goes with --status, without --json");
	if (checkset && o->mode != MODE_CHECK)
		errx(EXIT_GATERUN, "--warn, --crit and --max-wait only go with "
		    "--check");
	if (o->warn > o->crit)
		errx(EXIT_GATERUN, "--warn %u is above --crit %u", o->warn,
		    o->crit);
	if (o->mode != MODE_RUN && *o->cmd != NULL)
		errx(EXIT_GATERUN, "a command makes no sense with an admin "
		    "option (--status, --limit...): '%s'", *o->cmd);
	if (o->mode == MODE_RUN && *o->cmd == NULL)
		errx(EXIT_GATERUN, "no command given (try 'gaterun --help')");
	if (o->mode != MODE_RUN && (o->nowait || o->wait >= 0 || o->exec))
		errx(EXIT_GATERUN, "-n, -w and -x only go with a command");
	if (o->nowait && o->wait >= 0)
		errx(EXIT_GATERUN, "-n and -w exclude each other");
	if (o->mode != MODE_KILL && (sigset || graceset))
		errx(EXIT_GATERUN, "--signal and --grace only go with --kill-all");
	if (o->json && o->mode != MODE_STATUS && o->mode != MODE_LIMIT &&
	    o->mode != MODE_KILL)
		errx(EXIT_GATERUN, "--json goes with --status, --limit or "
		    "--kill-all");
	if (o->persist && o->mode != MODE_LIMIT)
		errx(EXIT_GATERUN, "--persist only goes with --limit");
	o->dir = state_dir();
	configure(o);
	if ((e = getenv("GATERUN_LOG")) != NULL && *e != '\0')
		o->log = o->log == 2 || strcmp(e, "0") != 0;
	if (o->log)	/* GATERUN_LOG=stderr copies each event to stderr */
		openlog("gaterun", LOG_PID | (e != NULL &&
		    strcmp(e, "stderr") == 0 ? LOG_PERROR : 0), LOG_USER);
}

/*
 * One event to syslog (journald picks it up), when logging is on. A macro,
 * so that its arguments (a user lookup among them) cost nothing when off.
 */
#define logev(o, ...)	do {						\
	if ((o)->log)							\
		syslog(LOG_INFO, __VA_ARGS__);				\
} while (0)

/* The caller's user name, for the log. */
static const char *
me(void)
{
	static char buf[32];
	struct passwd *pw;

	if ((pw = getpwuid(getuid())) != NULL)
		return pw->pw_name;
	(void)snprintf(buf, sizeof(buf), "%u", (unsigned)getuid());
	return buf;
}

/* Die with the reason a person can act on. */
static void __dead
die_gate(const struct opts *o, const char *what)
{
	if (errno == ELOOP)
		errx(EXIT_GATERUN, "%s gate '%s' in %s: a symlink stands where "
		    "the state directory or a state file should be: refused",
		    what, o->gate, o->dir);
	if (errno == EPERM)
		errx(EXIT_GATERUN, "%s gate '%s' in %s: the state directory or "
		    "file is not owned by you or root, or others may write it: "
		    "refused", what, o->gate, o->dir);
	err(EXIT_GATERUN, "%s gate '%s' in %s", what, o->gate, o->dir);
}

/* Print an engine warning the way every diagnostic is printed. */
static void
on_notify(void *arg, const char *msg)
{
	(void)arg;
	warnx("%s", msg);
}

static struct gate *
open_gate(const struct opts *o, int create)
{
	struct gate *g;

	if (gate_open(&g, o->dir, o->gate, o->deflimit, create, on_notify,
	    NULL) == -1)
		die_gate(o, "cannot open");
	return g;
}

/* The gates an admin command looks at: -g's, or every one with --all. */
static int
gates_of(const struct opts *o, char ***names, size_t *n)
{
	if (o->all)
		return gate_list(o->dir, names, n);
	if ((*names = calloc(1, sizeof(**names))) == NULL ||
	    ((*names)[0] = strdup(o->gate)) == NULL)
		return -1;
	*n = 1;
	return 0;
}

/* Snapshots of the named gates; the gate name is set on failure. */
static int
infos_of(const struct opts *o, char **names, size_t n, struct gate_info **gip,
    const char **failed)
{
	struct gate_info *gi;
	struct gate *g;
	size_t i;

	if ((gi = calloc(n + 1, sizeof(*gi))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (gate_open(&g, o->dir, names[i], o->deflimit, 0, on_notify,
		    NULL) == -1 || (gate_info(g, &gi[i]) == -1 &&
		    (gate_close(g), 1))) {
			*failed = names[i];
			while (i-- > 0)
				gate_info_free(&gi[i]);
			free(gi);
			return -1;
		}
		gate_close(g);
	}
	*gip = gi;
	return 0;
}

static void
infos_free(struct gate_info *gi, char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		gate_info_free(&gi[i]);
	free(gi);
	gate_list_free(names, n);
}

/* --status, --metrics and --check, of one gate or all, once. */
static int
show_once(const struct opts *o)
{
	struct gate_info *gi;
	const char *failed = o->gate;
	char **names;
	size_t n, i;
	int r = 0;

	if (gates_of(o, &names, &n) == -1 ||
	    infos_of(o, names, n, &gi, &failed) == -1) {
		if (o->mode == MODE_CHECK) {
			(void)printf("GATERUN UNKNOWN - cannot read gate '%s' in "
			    "%s: %s\n", failed, o->dir, strerror(errno));
			exit(3);
		}
		die_gate(o, "cannot read");
	}
	if (o->mode == MODE_CHECK)
		r = report_check(stdout, names, gi, n, o->warn, o->crit,
		    o->maxwait);
	else if (o->mode == MODE_METRICS)
		report_metrics(stdout, names, gi, n);
	else if (o->json && o->all)
		report_status_all_json(stdout, names, gi, n);
	else if (o->json)
		report_status_json(stdout, names[0], &gi[0]);
	else if (o->all && n == 0)
		(void)printf("no gates in %s\n", o->dir);
	else
		for (i = 0; i < n; i++) {
			if (i > 0)
				(void)putchar('\n');
			report_status(stdout, names[i], &gi[i]);
		}
	infos_free(gi, names, n);
	return r;
}

/*
 * --status --watch: redraw at once when a gate's state file is replaced
 * (inotify on the directory), and every period for the elapsed times,
 * until interrupted.
 */
static int
do_show(const struct opts *o)
{
	struct pollfd pfd;
	char buf[4096];

	if (o->watch < 0)
		return show_once(o);
	pfd.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	pfd.events = POLLIN;
	if (pfd.fd != -1 && inotify_add_watch(pfd.fd, o->dir, IN_MOVED_TO |
	    IN_CREATE | IN_DELETE | IN_MOVED_FROM) == -1) {
		(void)close(pfd.fd);	/* no directory yet: redraw by time */
		pfd.fd = -1;
	}
	for (;;) {
		(void)printf("\033[H\033[2J");	/* home, clear */
		(void)show_once(o);
		(void)printf("\n(every %.1f s and on every change; Ctrl-C to "
		    "stop)\n", o->watch);
		(void)fflush(stdout);
		if (poll(&pfd, 1, (int)(o->watch * 1000)) > 0)
			while (read(pfd.fd, buf, sizeof(buf)) > 0)
				;
	}
}

static int
do_limit(const struct opts *o)
{
	struct gate *g = open_gate(o, 1);
	char err[512];
	unsigned old;

	if (gate_set_limit(g, o->limit, &old) == -1)
		die_gate(o, "cannot set the limit of");
	logev(o, "gate '%s': limit %u -> %u by %s", o->gate, old, o->limit,
	    me());
	if (o->persist && config_set_limit(o->conf, o->gate, o->limit, err,
	    sizeof(err)) == -1)
		errx(EXIT_GATERUN, "limit set to %u, but not saved: %s",
		    o->limit, err);
	if (o->json)
		report_limit_json(stdout, o->gate, old, o->limit);
	else
		(void)printf("gate '%s': limit %u -> %u%s\n", o->gate, old,
		    o->limit, o->limit == 0 ? " (paused)" : "");
	gate_close(g);
	return 0;
}

static int
do_kill(const struct opts *o)
{
	struct gate_kill *k;
	struct gate *g = open_gate(o, 0);
	size_t n, i, nok = 0;
	int failed = 0;

	if (gate_kill_all(g, o->sig, o->grace, &k, &n) == -1)
		die_gate(o, "cannot kill the commands of");
	for (i = 0; i < n; i++)
		if (k[i].error == 0)
			nok++;
		else if (k[i].error != ESRCH) {
			errno = k[i].error;
			warn("cannot signal %d", (int)k[i].pid);
			failed = 1;
		}
	if (o->json)
		report_kill_json(stdout, o->gate, k, n);
	else {
		(void)printf("killed %zu process%s%s", nok, nok == 1 ? "" : "es",
		    nok ? ":" : "");
		for (i = 0; i < n; i++)
			if (k[i].error == 0)
				(void)printf(" %d", (int)k[i].pid);
		(void)printf("\n");
	}
	logev(o, "gate '%s': kill-all by %s: signal %d sent to %zu "
	    "processes%s", o->gate, me(), o->sig, nok,
	    failed ? ", some not permitted" : "");
	free(k);
	gate_close(g);
	return failed;
}

static int
do_active(const struct opts *o)
{
	struct gate *g = open_gate(o, 0);
	int r;

	if ((r = gate_is_active(g, o->pid)) == -1)
		die_gate(o, "cannot read");
	gate_close(g);
	return r ? 0 : 1;
}

/* Handlers only set flags; the main flow acts on them. */
static void
on_signal(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	if (sig == SIGCHLD) {
		got_chld = 1;
		return;
	}
	if (sig != SIGWINCH && sig != SIGCONT)
		got_stop = sig;
	/*
	 * A terminal's signal (SI_KERNEL) went to the whole foreground
	 * process group, CMD included: forwarding it would deliver it twice.
	 */
	if (si == NULL || si->si_code != SI_KERNEL)
		pending[sig] = 1;
}

/* Signal state inherited from the caller, restored in the child. */
struct sigsaved {
	sigset_t	mask;		/* caller's mask */
	sigset_t	ours;		/* signals we handle */
	int		ignored[NSIG];
};

/*
 * Catch the forwarded signals and SIGCHLD, and block them until we sleep.
 * Signals the caller ignored stay ignored (nohup, background jobs), except
 * SIGCHLD, which we need to wait for CMD.
 */
static void
signals_setup(struct sigsaved *ss)
{
	struct sigaction sa, old;
	sigset_t block;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigfillset(&sa.sa_mask);
	sigemptyset(&ss->ours);
	for (i = 0; i < NOURS; i++) {
		int sig = our_sigs[i];

		if (sigaction(sig, NULL, &old) == -1)
			err(EXIT_GATERUN, "sigaction");
		ss->ignored[sig] = old.sa_handler == SIG_IGN;
		if (ss->ignored[sig] && sig != SIGCHLD)
			continue;
		sigaddset(&ss->ours, sig);
	}
	/*
	 * SIGPIPE stays blocked in the wrapper alone: writing the go-ahead to
	 * a child that has just died must not kill us before we release.
	 */
	block = ss->ours;
	sigaddset(&block, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &block, &ss->mask) == -1)
		err(EXIT_GATERUN, "sigprocmask");
	for (i = 0; i < NOURS; i++) {
		int sig = our_sigs[i];

		if (sigismember(&ss->ours, sig) &&
		    sigaction(sig, &sa, NULL) == -1)
			err(EXIT_GATERUN, "sigaction");
	}
}

/* In the child: the caller's dispositions and mask, as if never wrapped. */
static void
signals_restore(const struct sigsaved *ss)
{
	size_t i;

	for (i = 0; i < NOURS; i++) {
		int sig = our_sigs[i];

		(void)signal(sig, ss->ignored[sig] ? SIG_IGN : SIG_DFL);
	}
	(void)sigprocmask(SIG_SETMASK, &ss->mask, NULL);
}

/* Die of sig as CMD did, without a core file of our own. */
static void __dead
die_of(int sig, const struct sigsaved *ss)
{
	struct rlimit rl = { 0, 0 };
	sigset_t set;

	(void)setrlimit(RLIMIT_CORE, &rl);
	(void)fflush(stdout);
	(void)signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	(void)sigprocmask(SIG_UNBLOCK, &set, NULL);
	(void)raise(sig);
	(void)ss;
	_exit(128 + sig);
}

/* argv joined by spaces, for status and ps. */
static char *
join_cmd(char **argv)
{
	size_t len = 0, i;
	char *s;

	for (i = 0; argv[i] != NULL; i++)
		len += strlen(argv[i]) + 1;
	if ((s = malloc(len + 1)) == NULL)
		err(EXIT_GATERUN, "malloc");
	s[0] = '\0';
	for (i = 0; argv[i] != NULL; i++) {
		if (i > 0)
			(void)strlcat(s, " ", len + 1);
		(void)strlcat(s, argv[i], len + 1);
	}
	return s;
}

/* ps shows where a waiter stands. */
static void
on_progress(void *arg, size_t pos, size_t nq)
{
	const char *sfx = pos % 100 >= 11 && pos % 100 <= 13 ? "th" :
	    pos % 10 == 1 ? "st" : pos % 10 == 2 ? "nd" :
	    pos % 10 == 3 ? "rd" : "th";

	(void)nq;
	setproctitle("waiting on '%s' (%zu%s in line)", (const char *)arg,
	    pos, sfx);
}

/* The child: wait for the go-ahead (the slot number), then exec CMD. */
static void __dead
child(int go, const struct opts *o, const struct sigsaved *ss)
{
	char slot[16];
	ssize_t n;

	signals_restore(ss);
	n = read_full(go, slot, sizeof(slot) - 1);
	if (n <= 0)
		_exit(EXIT_GATERUN);	/* the wrapper died: no slot, no run */
	slot[n] = '\0';
	(void)xclose(go);
	if (setenv("GATERUN_SLOT", slot, 1) == -1 ||
	    setenv("GATERUN_GATE", o->gate, 1) == -1)
		_exit(EXIT_GATERUN);
	execvp(o->cmd[0], o->cmd);
	warn("%s", o->cmd[0]);
	_exit(errno == ENOENT || errno == ENOTDIR ? EXIT_NOTFOUND :
	    EXIT_NOEXEC);
}

/*
 * Exec mode: the slot is recorded under this very process (PID and start
 * time survive execve), so CMD holds it with no wrapper around it and the
 * engine frees it once CMD is gone, as for any holder that never released.
 */
static void __dead
exec_cmd(struct gate *g, const struct opts *o, const struct sigsaved *ss)
{
	char slot[16];
	int e;

	if (got_stop) {
		(void)gate_release(g);
		die_of(got_stop, ss);
	}
	(void)snprintf(slot, sizeof(slot), "%d", gate_slot(g));
	logev(o, "gate '%s': slot %d taken by %s, pid %d (exec): %s", o->gate,
	    gate_slot(g), me(), (int)getpid(), o->cmd[0]);
	closelog();
	if (setenv("GATERUN_SLOT", slot, 1) == -1 ||
	    setenv("GATERUN_GATE", o->gate, 1) == -1)
		err(EXIT_GATERUN, "setenv");
	signals_restore(ss);
	execvp(o->cmd[0], o->cmd);
	e = errno;
	(void)gate_release(g);
	errno = e;
	warn("%s", o->cmd[0]);
	exit(e == ENOENT || e == ENOTDIR ? EXIT_NOTFOUND : EXIT_NOEXEC);
}

/* Forward what arrived for CMD. */
static void
forward(pid_t pid)
{
	size_t i;

	for (i = 0; i < NFWD; i++)
		if (pending[our_sigs[i]]) {
			pending[our_sigs[i]] = 0;
			(void)kill(pid, our_sigs[i]);
		}
}

/*
 * Wait for CMD, reaping orphans we adopted as subreaper on the way.
 * Returns CMD's wait status, or -1.
 */
static int
wait_cmd(pid_t pid, const sigset_t *sleepmask)
{
	int st, cst = 0, done = 0;
	pid_t p;

	for (;;) {
		got_chld = 0;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == pid) {
				cst = st;
				done = 1;
			}
		if (p == -1 && errno != ECHILD && errno != EINTR)
			return -1;
		if (done)
			return cst;
		if (p == -1 && errno == ECHILD)
			return -1;
		forward(pid);
		if (!got_chld)
			(void)sigsuspend(sleepmask);
	}
}

/* The command's child while it waits for the go-ahead. */
struct runner {
	const struct opts	*o;
	const struct sigsaved	*ss;
	struct gate		*g;
	pid_t			pid;	/* parked child, or -1 */
	int			go;	/* write end of its go pipe */
	int			recorded; /* in our waiter record */
};

/* Fork the child that will exec CMD once told its slot. */
static int
park(struct runner *rn)
{
	int go[2];

	if (pipe2(go, O_CLOEXEC) == -1)
		return -1;
	if ((rn->pid = fork()) == -1) {
		(void)xclose(go[0]);
		(void)xclose(go[1]);
		return -1;
	}
	if (rn->pid == 0) {
		(void)xclose(go[1]);
		child(go[0], rn->o, rn->ss);
	}
	(void)xclose(go[0]);
	rn->go = go[1];
	return 0;
}

/* Let the parked child go without running CMD: it sees EOF and exits. */
static void
unpark(struct runner *rn)
{
	if (rn->pid <= 0)
		return;
	(void)xclose(rn->go);
	while (waitpid(rn->pid, NULL, 0) == -1 && errno == EINTR)
		;
	rn->pid = -1;
	rn->recorded = 0;
}

/*
 * Queued after all: a parked child is not kept behind others (it would
 * double every waiter's memory), but the head of the queue forks its child
 * now and records it in its place, so when the slot comes the command
 * starts at once, with no fork and no second transaction on the way. FIFO
 * means the head stays the head until it is served.
 */
static void
on_queued(void *arg, size_t pos, size_t nq)
{
	struct runner *rn = arg;

	if (pos > 1)
		unpark(rn);
	else if ((rn->pid > 0 || park(rn) == 0) && !rn->recorded) {
		if (gate_set_cmd(rn->g, rn->pid) == 0)
			rn->recorded = 1;
		else
			unpark(rn);	/* forked again when served */
	}
	on_progress((void *)rn->o->gate, pos, nq);
}

static int
do_run(const struct opts *o)
{
	struct runner rn = { o, NULL, NULL, -1, -1, 0 };
	struct gate_req req;
	struct gate_wait gw;
	struct sigsaved ss;
	sigset_t sleepmask;
	char cwd[PATH_MAX], slot[16];
	struct gate *g;
	size_t active;
	unsigned limit;
	int64_t t0;
	int r, st = -1;

	t0 = mono_ns();
	signals_setup(&ss);
	rn.ss = &ss;
	sleepmask = ss.mask;
	for (r = 1; r < NSIG; r++)
		if (sigismember(&ss.ours, r))
			(void)sigdelset(&sleepmask, r);
	g = open_gate(o, 1);
	rn.g = g;
	memset(&req, 0, sizeof(req));
	req.cwd = getcwd(cwd, sizeof(cwd)) ? cwd : "";
	req.command = join_cmd(o->cmd);
	req.self_cmd = o->exec;
	/*
	 * Fork first, so a slot free now is taken and its command recorded
	 * in one transaction. Orphans of CMD are to stay below us.
	 */
	if (!o->exec) {
		(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
		if (park(&rn) == -1)
			err(EXIT_GATERUN, "fork");
		req.cmd = rn.pid;
	}
	memset(&gw, 0, sizeof(gw));
	gw.deadline = o->wait < 0 ? -1 : mono_ns() + (int64_t)(o->wait * 1e9);
	gw.sigmask = &sleepmask;
	gw.stop = &got_stop;
	gw.progress = on_queued;
	gw.arg = &rn;
	r = gate_acquire(g, &req, o->nowait ? NULL : &gw);
	if (r != 1)
		unpark(&rn);
	if (r == -1 && errno == EINTR)
		die_of(got_stop, &ss);
	if (r == -1)
		die_gate(o, "cannot take a slot of");
	if (r == 0) {
		gate_counts(g, &active, &limit);
		gate_close(g);
		errx(o->conflict, "cannot start: maximum concurrent processes "
		    "reached (%zu/%u on gate '%s')", active, limit, o->gate);
	}

	if (o->exec)
		exec_cmd(g, o, &ss);

	/* Slot held: from here every path reaches gate_release(). */
	if (got_stop) {		/* told to stop just as the slot came */
		unpark(&rn);
		(void)gate_release(g);
		die_of(got_stop, &ss);
	}
	if (!gate_has_cmd(g)) {
		unpark(&rn);
		if (park(&rn) == -1) {
			warn("fork");
			goto out;
		}
		if (gate_set_cmd(g, rn.pid) == -1) {
			/* Unrecorded, CMD must not run: EOF stops it. */
			warn("cannot record the command in gate '%s'", o->gate);
			unpark(&rn);
			goto out;
		}
	}
	r = snprintf(slot, sizeof(slot), "%d", gate_slot(g));
	(void)write_full(rn.go, slot, (size_t)r);	/* EPIPE: it died */
	(void)xclose(rn.go);
	setproctitle("running on '%s': %s", o->gate, req.command);
	logev(o, "gate '%s': slot %d taken by %s, pid %d, after %.3f s: %s",
	    o->gate, gate_slot(g), me(), (int)rn.pid,
	    (double)(mono_ns() - t0) / 1e9, req.command);
	t0 = mono_ns();
	if ((st = wait_cmd(rn.pid, &sleepmask)) == -1)
		warn("wait for %s", o->cmd[0]);
	else if (WIFSIGNALED(st))
		logev(o, "gate '%s': slot %d released: pid %d killed by signal "
		    "%d after %.3f s", o->gate, gate_slot(g), (int)rn.pid,
		    WTERMSIG(st), (double)(mono_ns() - t0) / 1e9);
	else
		logev(o, "gate '%s': slot %d released: pid %d exited %d after "
		    "%.3f s", o->gate, gate_slot(g), (int)rn.pid,
		    WEXITSTATUS(st), (double)(mono_ns() - t0) / 1e9);
out:
	if (gate_release(g) == -1)
		warn("cannot release the slot of gate '%s' (it is freed when "
		    "this process is gone)", o->gate);
	gate_close(g);
	free((void *)req.command);
	if (st == -1)
		return EXIT_GATERUN;
	if (WIFSIGNALED(st))
		die_of(WTERMSIG(st), &ss);
	return WEXITSTATUS(st);
}

/* Our copy of argv, freed so memory checkers see a clean exit. */
static void
free_args(char **args)
{
	size_t i;

	for (i = 0; args[i] != NULL; i++)
		free(args[i]);
	free(args);
}

int
main(int argc, char **argv)
{
	struct opts o;
	char **args;
	int i;

	/*
	 * setproctitle reuses the argv area: keep our own copy of argv
	 * first, since CMD's arguments live there.
	 */
	if ((args = reallocarray(NULL, (size_t)argc + 1, sizeof(*args))) == NULL)
		err(EXIT_GATERUN, "malloc");
	for (i = 0; i < argc; i++)
		if ((args[i] = strdup(argv[i])) == NULL)
			err(EXIT_GATERUN, "malloc");
	args[argc] = NULL;
	setproctitle_init(argc, argv, environ);
	memset(&o, 0, sizeof(o));
	parse_args(argc, args, &o);
	switch (o.mode) {
	case MODE_STATUS:
	case MODE_CHECK:
	case MODE_METRICS:
		i = do_show(&o);
		break;
	case MODE_LIMIT:
		i = do_limit(&o);
		break;
	case MODE_KILL:
		i = do_kill(&o);
		break;
	case MODE_ACTIVE:
		i = do_active(&o);
		break;
	default:
		i = do_run(&o);
		break;
	}
	free_args(args);
	return i;
}
