/*
 * gaterun: run a command when a slot of a shared job gate is free, or
 * inspect and change the gate. This file is main(), the options and the
 * helpers every mode shares; the run mode is run.c, the admin modes
 * admin.c, the engine lib/gate.c.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "common.h"
#include "conffile.h"
#include "exitcodes.h"
#include "gate.h"
#include "gaterun.h"
#include "jobserver.h"
#include "locate.h"

static void __dead
usage(int status)
{
	FILE *fp = status ? stderr : stdout;

	(void)fprintf(fp,
"usage: gaterun [-g GATE] [-n | -w SECONDS] [-E CODE] [-x | -J[STYLE]] [-N K]\n"
"               [-p PRIO] [-u KEY | -U KEY] [-F SIZE] [-I [RES:]PCT] [-O LOAD]\n"
"               [-e SECONDS] [--] COMMAND [ARG...]\n"
"       gaterun [-g GATE | --all] --status [--json | --watch[=SECONDS]]\n"
"       gaterun [-g GATE | --all] --check [--warn PCT] [--crit PCT] [--max-wait SECONDS]\n"
"       gaterun [-g GATE | --all] --metrics\n"
"       gaterun [-g GATE] --limit N [--parent GATE] [--persist] [--json]\n"
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
"  -e, --lease SECONDS    on a Redis store: the lease a record holds unrenewed\n"
"                         (3..86400, default 10; renewed every third)\n"
"  -N, --weight K         take K slots at once (1..4096, at most the limit);\n"
"                         served in turn when K are free, nobody passes it\n"
"  -p, --priority N       served before lower priorities, FIFO within one\n"
"                         (-1000000..1000000, default 0); a waiter is passed\n"
"                         by at most 16 later requests, the head by none\n"
"  -u, --unique KEY       exit 75 at once if a request with KEY is queued or\n"
"                         running on the gate (1-32 of A-Za-z0-9._:@+/-)\n"
"  -U, --unique-join KEY  if one is, wait for its end and exit with its exit\n"
"                         status instead of running COMMAND; else as -u\n"
"  -F, --min-mem SIZE     start only while MemAvailable is at least SIZE\n"
"                         (K, M, G, T: powers of 1024) or PCT%% of MemTotal\n"
"  -I, --max-pressure [RES:]PCT  start only while PSI \"some avg10\" of RES\n"
"                         (memory, cpu or io; default memory) is at most PCT\n"
"  -O, --max-load LOAD    start only while the 1-minute load is at most LOAD\n"
"                         (a head held by these looks again every second;\n"
"                         nobody behind it passes it)\n"
"  -J, --jobserver[=STYLE] serve COMMAND's build (make, ninja, cargo) a\n"
"                         jobserver whose tokens are slots of the gate:\n"
"                         each job of the build takes one; STYLE auto\n"
"                         (fifo for ninja, else pipe), pipe or fifo\n"
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
"  -R, --parent GATE      with --limit: the gate's commands also take a slot of\n"
"                         GATE (\"\" for none; cycles are refused)\n"
"  -K, --kill-all         stop every running command of the gate\n"
"  -S, --signal SIG       signal for --kill-all (default TERM)\n"
"  -G, --grace SECONDS    then SIGKILL what is left (default 5)\n"
"  -a, --is-active PID    exit 0 if PID runs in a slot of the gate, else 1\n"
"  -h, --help             show this help\n"
"  -V, --version          show the version\n"
"\n"
"Environment: GATERUN_DIR (state directory), GATERUN_STORE, GATERUN_GATE,\nGATERUN_LOG, "
"GATERUN_CONF (configuration file, " GATERUN_CONF "),\nGATERUN_LIMIT "
"(limit of a gate made on first use, default 5), GATERUN_PROCFS (where\n"
"-F, -I and -O read meminfo, pressure/ and loadavg; default /proc).\nCOMMAND gets "
"GATERUN_SLOT (0..limit-1) and GATERUN_SLOT_GATE. Below a holder of the\n"
"same gate (GATERUN_SLOT set), COMMAND runs inside the holder's slot.\n"
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

/* An integer priority: an optional '-' and digits, nothing else. */
static int
parse_prio(const char *s)
{
	const char *errstr = NULL, *d = s + (*s == '-');
	long long v = 0;

	if (*d == '\0' || d[strspn(d, "0123456789")] != '\0')
		errstr = "not an integer";
	else
		v = strtonum(s, -GATE_MAX_PRIO, GATE_MAX_PRIO, &errstr);
	if (errstr != NULL)
		errx(EXIT_GATERUN, "--priority must be an integer from %d to "
		    "%d: '%s'", -GATE_MAX_PRIO, GATE_MAX_PRIO, s);
	return (int)v;
}

/*
 * "group = NAME": a state directory made now is shared with that group
 * (mode 2770, the mark of a shared gate directory). One that exists is
 * left as it is: an admin's choice is not second-guessed.
 */
static void
shared_dir(const char *dir, const char *where, const char *group,
    const char *conf)
{
	struct group *gr;

	if ((gr = getgrnam(group)) == NULL)
		errx(EXIT_GATERUN, "%s: group '%s' does not exist", conf, group);
	if (gate_share(dir, gr->gr_gid) == -1)
		errx(EXIT_GATERUN, "cannot share %s with group '%s': %s", where,
		    group, gate_strerror(errno));
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
	if (limit_default(&c, &o->deflimit) == -1)
		errx(EXIT_GATERUN, "GATERUN_LIMIT must be an integer from 0 to "
		    "%d: '%s'", GATE_MAX_LIMIT, getenv("GATERUN_LIMIT"));
	if (c.log == 1)
		o->log = 1;
	(void)strlcpy(o->conf_parent, c.parent, sizeof(o->conf_parent));
	if (c.group[0] != '\0')
		shared_dir(o->dir, o->where, c.group, o->conf);
}

/* A mode option; more than one is refused in check_args(). */
static void
set_mode(struct opts *o, enum mode m)
{
	o->mode = m;
	o->nmodes++;
}

/* What the machine must have free: -F -I -O. 0 if ch is none of them. */
static int
parse_need_opt(int ch, struct opts *o)
{
	switch (ch) {
	case 'F':
		if (res_parse_mem(optarg, &o->need) == -1)
			errx(EXIT_GATERUN, "--min-mem must be a size (bytes, or "
			    "with K, M, G or T: powers of 1024) or a percentage "
			    "of MemTotal (1%% to 100%%): '%s'", optarg);
		break;
	case 'I':
		if (res_parse_pressure(optarg, &o->need) == -1)
			errx(EXIT_GATERUN, "--max-pressure must be [memory:|cpu:"
			    "|io:]PCT, PCT from 0 to 100 with at most two "
			    "decimals: '%s'", optarg);
		break;
	case 'O':
		if (res_parse_load(optarg, &o->need) == -1)
			errx(EXIT_GATERUN, "--max-load must be a load average "
			    "from 0 to %d with at most two decimals: '%s'",
			    RES_MAX_LOAD / 100, optarg);
		break;
	default:
		return 0;
	}
	return 1;
}

/* How a request is admitted: -N -p -R -u -U (and -F -I -O). 0 if none. */
static int
parse_admit_opt(int ch, struct opts *o)
{
	name_buf nb;

	switch (ch) {
	case 'N':
		if (limit_parse(optarg, 1, &o->weight) == -1)
			errx(EXIT_GATERUN, "--weight must be an integer from 1 "
			    "to %d: '%s'", GATE_MAX_LIMIT, optarg);
		break;
	case 'p':
		o->priority = parse_prio(optarg);
		break;
	case 'R':
		if (*optarg != '\0' && !gate_name_valid(optarg))
			errx(EXIT_GATERUN, "invalid parent gate name '%s'",
			    name_shown(optarg, nb));
		o->parent = optarg;
		break;
	case 'u':
	case 'U':
		if (o->key != NULL)
			errx(EXIT_GATERUN, "--unique and --unique-join are "
			    "given once");
		if (!gate_key_valid(optarg))
			errx(EXIT_GATERUN, "--unique%s must be 1 to %d of "
			    "A-Z a-z 0-9 . _ : @ + / -: '%s'", ch == 'U' ?
			    "-join" : "", GATE_KEY_MAX, optarg);
		o->key = optarg;
		o->join = ch == 'U';
		break;
	default:
		return parse_need_opt(ch, o);
	}
	return 1;
}

/* The thresholds of --check: -W -C -M. 0 if ch is none of them. */
static int
parse_check_opt(int ch, struct opts *o)
{
	const char *errstr;

	switch (ch) {
	case 'W':
	case 'C':
		*(ch == 'W' ? &o->warn : &o->crit) =
		    (unsigned)strtonum(optarg, 0, 100, &errstr);
		if (errstr != NULL)
			errx(EXIT_GATERUN, "--%s is %s (0 to 100): '%s'",
			    ch == 'W' ? "warn" : "crit", errstr, optarg);
		o->checkset = 1;
		break;
	case 'M':
		o->maxwait = parse_secs(optarg, "--max-wait");
		o->checkset = 1;
		break;
	default:
		return 0;
	}
	return 1;
}

/* Why --lease's bounds are what they are, for strtonum's errstr. */
static const char *
lease_why(const char *errstr)
{
	if (strcmp(errstr, "too small") == 0)
		return "a shorter one leaves no time to renew it before the "
		    "watchdog stops the command";
	if (strcmp(errstr, "too large") == 0)
		return "a longer one would keep a dead host's slots taken for "
		    "over a day";
	return "a number of seconds";
}

/*
 * One option of the command line into o: values are checked here,
 * combinations in check_args(). Longer than the rest: one short case per
 * option, read best as the one table it is.
 */
static void
parse_opt(int ch, struct opts *o)
{
	const char *errstr;

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
	case 'e':
		/* Read by the Redis store (store_redis.c), never CMD's. */
		/*
		 * At least 3 s: the first renewal comes at a third of the
		 * lease, the watchdog's SIGTERM at 0.8 of it less 0.5 s
		 * (src/lease.c): 1.0 s and 1.9 s at 3, too close below.
		 */
		(void)strtonum(optarg, 3, 86400, &errstr);
		if (errstr != NULL)
			errx(EXIT_GATERUN, "lease is %s (3 to 86400 seconds, "
			    "whole: %s): '%s'", errstr, lease_why(errstr),
			    optarg);
		if (setenv("GATERUN_LEASE", optarg, 1) == -1)
			err(EXIT_GATERUN, "setenv");
		o->leaseset = 1;
		break;
	case 'J':
		o->jobserver = jobserver_style(optarg);
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
		o->killset = 1;
		break;
	case 'G':
		o->grace = parse_secs(optarg, "--grace");
		o->killset = 1;
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
		if (!parse_admit_opt(ch, o) && !parse_check_opt(ch, o))
			usage(EXIT_GATERUN);
	}
}

/* The defaults, then the options up to COMMAND (a leading '+': none after). */
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
		{ "lease",		required_argument, NULL, 'e' },
		{ "weight",		required_argument, NULL, 'N' },
		{ "priority",		required_argument, NULL, 'p' },
		{ "unique",		required_argument, NULL, 'u' },
		{ "parent",		required_argument, NULL, 'R' },
		{ "unique-join",	required_argument, NULL, 'U' },
		{ "min-mem",		required_argument, NULL, 'F' },
		{ "max-pressure",	required_argument, NULL, 'I' },
		{ "max-load",		required_argument, NULL, 'O' },
		{ "jobserver",		optional_argument, NULL, 'J' },
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
	const char *e;
	int ch;

	o->gate = (e = getenv("GATERUN_GATE")) != NULL && *e ? e : "default";
	o->wait = -1;
	o->conflict = EXIT_NOSLOT;
	o->sig = SIGTERM;
	o->grace = 5;
	o->warn = 80;
	o->crit = 95;
	o->watch = -1;
	o->maxwait = 600;
	while ((ch = getopt_long(argc, argv, "+g:nw:E:xJ::e:N:p:u:U:R:F:I:O:sjl:KS:G:a:AcW:C:M:mLPhV",
	    longopts, NULL)) != -1)
		parse_opt(ch, o);
	o->cmd = argv + optind;
}

/* Options that make no sense together, or with or without a command. */
static void
check_args(const struct opts *o)
{
	name_buf nb;

	if (!gate_name_valid(o->gate))
		errx(EXIT_GATERUN, "invalid gate name '%s': use 1 to %d of "
		    "A-Z a-z 0-9 . _ -, not starting with '.'",
		    name_shown(o->gate, nb), GATE_NAME_MAX);
	if (o->nmodes > 1)
		errx(EXIT_GATERUN, "--status, --check, --metrics, --limit, "
		    "--kill-all and --is-active exclude each other");
	if (o->all && o->mode != MODE_STATUS && o->mode != MODE_CHECK &&
	    o->mode != MODE_METRICS)
		errx(EXIT_GATERUN, "--all goes with --status, --check or "
		    "--metrics");
	if (o->watch >= 0 && (o->mode != MODE_STATUS || o->json))
		errx(EXIT_GATERUN, "--watch goes with --status, without --json");
	if (o->checkset && o->mode != MODE_CHECK)
		errx(EXIT_GATERUN, "--warn, --crit and --max-wait only go with "
		    "--check");
	if (o->warn > o->crit)
		errx(EXIT_GATERUN, "--warn %u is above --crit %u", o->warn,
		    o->crit);
	if (o->mode != MODE_RUN && *o->cmd != NULL)
		errx(EXIT_GATERUN, "a command makes no sense with an admin "
		    "option (--status, --limit...): '%s'", *o->cmd);
	if (o->parent != NULL && o->mode != MODE_LIMIT)
		errx(EXIT_GATERUN, "--parent only goes with --limit (gaterun "
		    "-g GATE --limit N --parent PARENT)");
	if (o->mode == MODE_RUN && *o->cmd == NULL)
		errx(EXIT_GATERUN, "no command given (try 'gaterun --help')");
	if (o->mode != MODE_RUN && (o->nowait || o->wait >= 0 || o->exec ||
	    o->weight || o->priority || o->key))
		errx(EXIT_GATERUN, "-n, -w, -x, --weight, --priority and "
		    "--unique only go with a command");
	if (o->mode != MODE_RUN && o->need.has != 0)
		errx(EXIT_GATERUN, "--min-mem, --max-pressure and --max-load "
		    "only go with a command");
	if (o->nowait && o->wait >= 0)
		errx(EXIT_GATERUN, "-n and -w exclude each other");
	if (o->leaseset && o->mode != MODE_RUN)
		errx(EXIT_GATERUN, "--lease only goes with a command");
	if (o->jobserver && (o->mode != MODE_RUN || o->exec))
		errx(EXIT_GATERUN, "-J goes with a command, without -x (the "
		    "jobserver needs gaterun's process)");
	if (o->mode != MODE_KILL && o->killset)
		errx(EXIT_GATERUN, "--signal and --grace only go with --kill-all");
	if (o->json && o->mode != MODE_STATUS && o->mode != MODE_LIMIT &&
	    o->mode != MODE_KILL)
		errx(EXIT_GATERUN, "--json goes with --status, --limit or "
		    "--kill-all");
	if (o->persist && o->mode != MODE_LIMIT)
		errx(EXIT_GATERUN, "--persist only goes with --limit");
}

/*
 * Where the state lives, the configuration file, and syslog when --log,
 * GATERUN_LOG or the configuration asks for it.
 */
static void
open_log(struct opts *o)
{
	const char *e;

	o->dir = state_dir();
	locate_redact(o->dir, o->where, sizeof(o->where));
	configure(o);
	if ((e = getenv("GATERUN_LOG")) != NULL && *e != '\0')
		o->log = o->log == 2 || strcmp(e, "0") != 0;
	if (o->log)	/* GATERUN_LOG=stderr copies each event to stderr */
		openlog("gaterun", LOG_PID | (e != NULL &&
		    strcmp(e, "stderr") == 0 ? LOG_PERROR : 0), LOG_USER);
}

/* The caller's user name, for the log. */
const char *
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
void __dead
die_gate(const struct opts *o, const char *what)
{
	const char *why = gate_strerror(errno);
	const char *advice = locate_advice(errno, o->where);

	errx(EXIT_GATERUN, "%s gate '%s' in %s: %s%s%s", what, o->gate,
	    o->where, why, advice != NULL ? ": " : "",
	    advice != NULL ? advice : "");
}

/* Print an engine warning the way every diagnostic is printed. */
void
on_notify(void *arg, const char *msg)
{
	(void)arg;
	warnx("%s", msg);
}

/* Open the gate named by -g (made on first use if create), or die. */
struct gate *
open_gate(const struct opts *o, int create)
{
	struct gate *g;

	if (gate_open(&g, o->dir, o->gate, o->deflimit, create, on_notify,
	    NULL) == -1)
		die_gate(o, "cannot open");
	return g;
}


/* Open gate name, made on first use with its configured limit, or die. */
struct gate *
open_named_gate(const struct opts *o, const char *name)
{
	struct config c;
	struct gate *g;
	unsigned deflimit;
	char err[512];

	if (config_read(o->conf, name, &c, err, sizeof(err)) == -1)
		errx(EXIT_GATERUN, "%s", err);
	if (limit_default(&c, &deflimit) == -1)
		deflimit = o->deflimit;
	if (gate_open(&g, o->dir, name, deflimit, 1, on_notify, NULL) == -1)
		errx(EXIT_GATERUN, "cannot open gate '%s' in %s: %s", name,
		    o->where, gate_strerror(errno));
	return g;
}

/* Gate name's parent: its own, else the configuration's; "" if none. */
static void
parent_of(const struct opts *o, const char *name, char *out, size_t len)
{
	struct gate_info gi;
	struct config c;
	struct gate *g;
	char err[512];

	out[0] = '\0';
	if (gate_open(&g, o->dir, name, o->deflimit, 0, on_notify, NULL) == -1 ||
	    gate_info(g, &gi) == -1)
		errx(EXIT_GATERUN, "cannot read gate '%s' in %s: %s", name,
		    o->where, gate_strerror(errno));
	(void)strlcpy(out, gi.parent, len);
	gate_info_free(&gi);
	gate_close(g);
	if (out[0] == '\0' && config_read(o->conf, name, &c, err,
	    sizeof(err)) == 0)
		(void)strlcpy(out, c.parent, len);
}

void
gate_chain(const struct opts *o, const char *name, const char *first,
    char (*chain)[GATE_NAME_MAX + 1], size_t *n)
{
	char p[GATE_NAME_MAX + 1];
	size_t i;

	(void)strlcpy(chain[0], name, sizeof(chain[0]));
	for (*n = 1;; (*n)++) {
		if (*n == 1 && first != NULL)
			(void)strlcpy(p, first, sizeof(p));
		else
			parent_of(o, chain[*n - 1], p, sizeof(p));
		if (p[0] == '\0')
			return;
		for (i = 0; i < *n; i++)
			if (strcmp(chain[i], p) == 0)
				errx(EXIT_GATERUN, "gate '%s': its parents "
				    "make a cycle through '%s'", name, p);
		if (*n == MAX_CHAIN)
			errx(EXIT_GATERUN, "gate '%s': more than %d parents "
			    "above it", name, MAX_CHAIN - 1);
		(void)strlcpy(chain[*n], p, sizeof(chain[*n]));
	}
}

/* A copy of a NULL-terminated vector of strings, entry by entry. */
static char **
copy_strv(char **v)
{
	size_t n, i;
	char **c;

	for (n = 0; v[n] != NULL; n++)
		;
	if ((c = reallocarray(NULL, n + 1, sizeof(*c))) == NULL)
		err(EXIT_GATERUN, "malloc");
	for (i = 0; i < n; i++)
		if ((c[i] = strdup(v[i])) == NULL)
			err(EXIT_GATERUN, "malloc");
	c[n] = NULL;
	return c;
}

/* Free a copy, so memory checkers see a clean exit. */
static void
free_strv(char **v)
{
	size_t i;

	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* stderr's line buffer (main). */
static char errbuf[BUFSIZ];

int
main(int argc, char **argv)
{
	struct opts o;
	char **args, **envp;
	int i;

	/*
	 * setproctitle reuses the argv area: keep our own copy of argv
	 * first, since CMD's arguments live there. It also rebuilds environ
	 * with setenv, which keeps one entry of each name and drops entries
	 * with no '=': keep the environment as it came, for CMD.
	 */
	args = copy_strv(argv);
	envp = copy_strv(environ);
	setproctitle_init(argc, argv, environ);
	/*
	 * One write per message line (stderr is unbuffered: warn(3) writes
	 * "gaterun: ", the text and the newline apart), so that the lines of
	 * jobs sharing a log do not interleave. Every message ends its line.
	 */
	(void)setvbuf(stderr, errbuf, _IOLBF, sizeof(errbuf));
	memset(&o, 0, sizeof(o));
	o.envp = envp;
	parse_args(argc, args, &o);
	check_args(&o);
	open_log(&o);
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
	free_strv(args);
	free_strv(envp);
	return i;
}
