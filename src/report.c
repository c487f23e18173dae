/*
 * Status output. The JSON keeps the field names monitoring already uses
 * (active_processes, max_allowed, utilization_percent, can_start_new,
 * active_pids, waiting, slots); "schema" versions the object.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jobserver.h"
#include "report.h"
#include "sys.h"

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	return n;
}

void
json_str(FILE *fp, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	(void)fputc('"', fp);
	while (*s != '\0') {
		if (*s == '"' || *s == '\\')
			(void)fprintf(fp, "\\%c", *s++);
		else if (*s == '\n')
			(void)fputs("\\n", fp), s++;
		else if (*s == '\t')
			(void)fputs("\\t", fp), s++;
		else if (*s < 0x20 || *s == 0x7f)
			(void)fprintf(fp, "\\u%04x", *s++);
		else if ((n = utf8_len(s)) == 0)
			(void)fputs("\\ufffd", fp), s++;
		else {
			(void)fwrite(s, 1, n, fp);
			s += n;
		}
	}
	(void)fputc('"', fp);
}

/* ISO 8601 UTC with seconds, from realtime nanoseconds. */
static const char *
iso8601(char *buf, size_t len, int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)strlcpy(buf, "1970-01-01T00:00:00Z", len);
	return buf;
}

/*
 * A user's name, or the number when it has none. Reentrant: the HTTP
 * server renders status in several threads at once.
 */
static const char *
user_name(uid_t uid, char *buf, size_t len)
{
	/* A status lists many records of few users: remember the last one. */
	static __thread char last[64];
	static __thread uid_t last_uid;
	struct passwd pw, *res;
	char pwbuf[1024];

	if (last[0] == '\0' || last_uid != uid) {
		if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) != 0 ||
		    res == NULL || strlcpy(last, pw.pw_name, sizeof(last)) >=
		    sizeof(last))
			(void)snprintf(last, sizeof(last), "%u", (unsigned)uid);
		last_uid = uid;
	}
	(void)strlcpy(buf, last, len);
	return buf;
}

/* Elapsed time as [D-]HH:MM:SS or MM:SS, as ps(1) shows it. */
static const char *
elapsed(char *buf, size_t len, int64_t since_ns, int64_t now_ns)
{
	long long s = since_ns < now_ns ? (now_ns - since_ns) / 1000000000 : 0;

	if (s >= 86400)
		(void)snprintf(buf, len, "%lld-%02lld:%02lld:%02lld", s / 86400,
		    s / 3600 % 24, s / 60 % 60, s % 60);
	else if (s >= 3600)
		(void)snprintf(buf, len, "%02lld:%02lld:%02lld", s / 3600,
		    s / 60 % 60, s % 60);
	else
		(void)snprintf(buf, len, "%02lld:%02lld", s / 60, s % 60);
	return buf;
}

static double
utilization(const struct gate_info *gi)
{
	if (gi->limit == 0)
		return 100.0;
	return 100.0 * (double)gi->nh / gi->limit;
}

static int
can_start(const struct gate_info *gi)
{
	return gi->nh < gi->limit && gi->nw == 0 && gi->hold_until == 0;
}

const char *
report_hold(char *buf, size_t len, int64_t until, int why, int limit_lost)
{
	time_t t = (time_t)(until / 1000000000), now = time(NULL);
	char hms[32];
	struct tm tm, today;

	/* With its date when not today (a lease of a day: H-G). */
	if (localtime_r(&t, &tm) == NULL || localtime_r(&now, &today) == NULL ||
	    strftime(hms, sizeof(hms), tm.tm_yday == today.tm_yday &&
	    tm.tm_year == today.tm_year ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S",
	    &tm) == 0)
		(void)strlcpy(hms, "?", sizeof(hms));
	if (why == GATE_HOLD_CHECK)
		(void)snprintf(buf, len, "held until %s: records of other "
		    "processes ended at once with no renewal since (a host died, "
		    "or the Redis server's clock was stepped): nobody new starts "
		    "while their owners may renew them", hms);
	else
		(void)snprintf(buf, len, "held until %s after %s: nobody new "
		    "starts while the holders record their slots again%s", hms,
		    why == GATE_HOLD_DROPPED ? "the Redis server dropped records "
		    "renewed in time (it stalled, or its clock was stepped)" :
		    "a loss of the Redis server's data (a restart without "
		    "persistence, a failover, or the gate's key deleted)",
		    limit_lost ? "; the limit was lost with the data until one "
		    "of them records it again" : "");
	return buf;
}

/*
 * Slots free under the limit: none when over it (a lowered limit), nor
 * while a hold after a loss lasts, as "can start" says (a dashboard or an
 * autoscaler saw room that was not there: L-1 of brk-redis8).
 */
static unsigned
free_slots(const struct gate_info *gi)
{
	if (gi->hold_until != 0)
		return 0;
	return gi->nh < gi->limit ? gi->limit - (unsigned)gi->nh : 0;
}

/*
 * 1 if the head of the line has the slots it needs free but waits for a
 * resource need (--min-mem...), with why in buf. Checked here, against
 * this machine as it is now: the head checks the same within a second
 * (RES_PERIOD_MS), and starts once its need is met.
 */
static int
head_held(const struct gate_info *gi, char *buf, size_t len)
{
	if (gi->nw == 0 || gi->limit == 0 || gi->w[0].need.has == 0 ||
	    gi->w[0].weight > free_slots(gi))
		return 0;
	return res_check(&gi->w[0].need, buf, len) != 1;
}

/*
 * Why the head of the line waits though slots are free, or whatever the
 * holders give back, in words; else NULL: a weight above the free slots,
 * or above a limit lowered since it queued, or a resource need not met.
 * During a hold after a loss (Redis) the hold's line says why (L-B of
 * brk-redis6: "the head can start" stood under "can start: no").
 */
static const char *
head_note(const struct gate_info *gi, char *buf, size_t len)
{
	unsigned k;

	if (gi->nw == 0 || gi->limit == 0 || gi->hold_until != 0)
		return NULL;
	if (head_held(gi, buf, len))
		return buf;
	if ((k = gi->w[0].weight) > gi->limit)
		(void)snprintf(buf, len, "the head needs %u slots, above the "
		    "limit %u: it waits until the limit is raised", k,
		    gi->limit);
	else if (free_slots(gi) >= k)	/* its need met, as seen from here */
		(void)snprintf(buf, len, "the head can start (needs %u, %u "
		    "free): it does at its next look, within a second, unless "
		    "it is stopped", k, free_slots(gi));
	else if (free_slots(gi) > 0)
		(void)snprintf(buf, len, "the head needs %u slots, %u free", k,
		    free_slots(gi));
	else
		return NULL;
	return buf;
}

/* Printable, shortened command: control bytes become '?'. */
static void
short_cmd(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ?
		    '?' : src[i];
	dst[i] = '\0';
	if (src[i] != '\0' && len > 4)
		memcpy(dst + len - 4, "...", 4);
}

/* Weight, priority, key and needs of a record, for --status; "" if none. */
static const char *
admission_note(const struct gate_proc *p, char *buf, size_t len)
{
	char rb[120];
	size_t n = 0;

	buf[0] = '\0';
	if (p->weight > 1)
		n += (size_t)snprintf(buf + n, len - n, ", weight %u",
		    p->weight);
	if (p->priority != 0 && n < len)
		n += (size_t)snprintf(buf + n, len - n, ", priority %d",
		    p->priority);
	if (p->key[0] != '\0' && n < len)
		n += (size_t)snprintf(buf + n, len - n, ", key %s", p->key);
	res_describe(&p->need, rb, sizeof(rb));
	if (rb[0] != '\0' && n < len)
		(void)snprintf(buf + n, len - n, ", %s", rb);
	return buf;
}

/* What a holder's processes are doing, after its command in --status. */
static const char *
holder_note(const struct gate_proc *p)
{
	switch (p->state & (GATE_PROC_STOPPED | GATE_PROC_NOT_STARTED)) {
	case GATE_PROC_STOPPED:
		return " (stopped)";
	case GATE_PROC_NOT_STARTED:
		return " (not started yet)";
	case GATE_PROC_STOPPED | GATE_PROC_NOT_STARTED:
		return " (stopped, not started yet)";
	default:
		return "";
	}
}

/*
 * How many tokens the jobserver (gaterun -J) whose own record p is holds
 * beside it: its wrapper's records marked as tokens (jobserver.h); 0 for
 * every other record.
 */
static size_t
tokens_of(const struct gate_info *gi, const struct gate_proc *p)
{
	size_t i, n = 0, ml = strlen(JS_TOKEN_MARK), cl;

	cl = strlen(p->command);
	if (cl >= ml && strcmp(p->command + cl - ml, JS_TOKEN_MARK) == 0)
		return 0;
	for (i = 0; i < gi->nh; i++) {
		cl = strlen(gi->h[i].command);
		if (gi->h[i].wrapper_pid == p->wrapper_pid && cl >= ml &&
		    strcmp(gi->h[i].command + cl - ml, JS_TOKEN_MARK) == 0)
			n++;
	}
	return n;
}

/* The same as one word for JSON. */
static const char *
state_word(const struct gate_proc *p)
{
	if (p->state & GATE_PROC_STOPPED)
		return "stopped";
	if (p->slot < 0)
		return "waiting";
	return p->state & GATE_PROC_NOT_STARTED ? "starting" : "running";
}

void
report_status(FILE *fp, const char *name, const struct gate_info *gi)
{
	char ub[32], eb[32], cb[61], nb[400], ab[200], tb[64];
	int64_t now = real_ns();
	size_t i, nt;

	(void)fprintf(fp, "gate '%s': %zu/%u active (%.0f%%%s%s), %zu waiting, "
	    "can start: %s\n", name, gi->nh, gi->limit, utilization(gi),
	    gi->limit == 0 ? ", paused" : "", gi->limit_lost ? ", limit lost" :
	    "", gi->nw, can_start(gi) ? "yes" : "no");
	if (gi->hold_until != 0)
		(void)fprintf(fp, "%s\n", report_hold(nb, sizeof(nb),
		    gi->hold_until, gi->hold_why, gi->limit_lost));
	if (gi->parent[0] != '\0')
		(void)fprintf(fp, "parent gate '%s': each command also takes a "
		    "slot there\n", gi->parent);
	if (head_note(gi, nb, sizeof(nb)) != NULL)
		(void)fprintf(fp, "%s\n", nb);
	if (gi->nh > 0)
		(void)fprintf(fp, "%4s %8s %8s %-12s %11s  %s\n", "SLOT", "PID",
		    "WRAPPER", "USER", "ELAPSED", "COMMAND");
	for (i = 0; i < gi->nh; i++) {
		const struct gate_proc *p = &gi->h[i];

		short_cmd(cb, sizeof(cb), p->command);
		admission_note(p, ab, sizeof(ab));
		tb[0] = '\0';
		if ((nt = tokens_of(gi, p)) > 0)
			(void)snprintf(tb, sizeof(tb), " (jobserver: %zu "
			    "token%s)", nt, nt == 1 ? "" : "s");
		(void)fprintf(fp, "%4d %8d %8d %-12s %11s  %s%s%s%s%s%s%s%s\n",
		    p->slot, (int)p->pid, (int)p->wrapper_pid,
		    user_name(p->uid, ub, sizeof(ub)),
		    elapsed(eb, sizeof(eb), p->time_ns, now), cb,
		    holder_note(p), tb, ab[0] ? " (" : "",
		    ab[0] ? ab + 2 : "", ab[0] ? ")" : "",
		    p->host[0] ? " on " : "", p->host);
	}
	for (i = 0; i < gi->nw; i++) {
		const struct gate_proc *p = &gi->w[i];

		short_cmd(cb, sizeof(cb), p->command);
		(void)fprintf(fp, "%4s %8s %8d %-12s %11s  %s (waiting #%zu%s%s)"
		    "%s%s\n", "-", "-", (int)p->wrapper_pid,
		    user_name(p->uid, ub, sizeof(ub)),
		    elapsed(eb, sizeof(eb), p->time_ns, now), cb, i + 1,
		    p->state & GATE_PROC_STOPPED ? ", stopped" : "",
		    admission_note(p, ab, sizeof(ab)),
		    p->host[0] ? " on " : "", p->host);
	}
}

/*
 * A waiter's resource needs in JSON: "needs":null, or an object with
 * min_mem_bytes or min_mem_percent, max_pressure (by resource, percent)
 * and max_load, each only when asked for.
 */
static void
need_json(FILE *fp, const struct res_need *n)
{
	static const char *const psi[RES_NPSI] = { "memory", "cpu", "io" };
	const char *sep = "";
	size_t i;

	if (n->has == 0) {
		(void)fputs(",\"needs\":null", fp);
		return;
	}
	(void)fputs(",\"needs\":{", fp);
	if (n->has & RES_MEM)
		(void)fprintf(fp, "\"min_mem_bytes\":%llu",
		    (unsigned long long)n->mem), sep = ",";
	else if (n->has & RES_MEMPCT)
		(void)fprintf(fp, "\"min_mem_percent\":%u", n->mem_pct),
		    sep = ",";
	if (n->has & (RES_PSI(0) | RES_PSI(1) | RES_PSI(2))) {
		(void)fprintf(fp, "%s\"max_pressure\":{", sep);
		for (i = 0, sep = ""; i < RES_NPSI; i++)
			if (n->has & RES_PSI(i))
				(void)fprintf(fp, "%s\"%s\":%.2f", sep, psi[i],
				    n->psi[i] / 100.0), sep = ",";
		(void)fputc('}', fp);
		sep = ",";
	}
	if (n->has & RES_LOAD)
		(void)fprintf(fp, "%s\"max_load\":%.2f", sep, n->load / 100.0);
	(void)fputc('}', fp);
}

/* The fields one holder or waiter has in JSON. */
static void
proc_json(FILE *fp, const struct gate_proc *p, int64_t now)
{
	char ub[32], tb[32];

	(void)fprintf(fp, "\"wrapper_pid\":%d,\"uid\":%u,\"user\":",
	    (int)p->wrapper_pid, (unsigned)p->uid);
	json_str(fp, user_name(p->uid, ub, sizeof(ub)));
	(void)fprintf(fp, ",\"%s\":\"%s\",\"elapsed_seconds\":%.3f,\"cwd\":",
	    p->slot >= 0 ? "started" : "queued",
	    iso8601(tb, sizeof(tb), p->time_ns),
	    p->time_ns < now ? (double)(now - p->time_ns) / 1e9 : 0.0);
	json_str(fp, p->cwd);
	(void)fputs(",\"command\":", fp);
	json_str(fp, p->command);
	(void)fprintf(fp, ",\"state\":\"%s\",\"weight\":%u", state_word(p),
	    p->weight);
	if (p->slot < 0)
		(void)fprintf(fp, ",\"priority\":%d,\"passed\":%u",
		    p->priority, p->passed);
	(void)fputs(",\"key\":", fp);
	if (p->key[0] != '\0')
		json_str(fp, p->key);
	else
		(void)fputs("null", fp);
	if (p->host[0] != '\0') {	/* a store shared by hosts (Redis) */
		(void)fputs(",\"host\":", fp);
		json_str(fp, p->host);
	}
	if (p->slot < 0)
		need_json(fp, &p->need);
	if (p->slot >= 0)
		(void)fprintf(fp, ",\"command_started\":%s",
		    p->state & GATE_PROC_NOT_STARTED ? "false" : "true");
}

/*
 * ,"hold": null, or while nobody new starts after a loss on a store shared
 * by hosts, {"until": ISO 8601, "reason": "lost", "dropped" or "check",
 * "limit_lost": whether max_allowed is a default shown for a lost limit}.
 */
static void
hold_json(FILE *fp, const struct gate_info *gi)
{
	static const char *const why[] = { "lost", "lost", "dropped", "check" };
	char tb[32];

	if (gi->hold_until == 0) {
		(void)fputs(",\"hold\":null", fp);
		return;
	}
	(void)fprintf(fp, ",\"hold\":{\"until\":\"%s\",\"reason\":\"%s\","
	    "\"limit_lost\":%s}", iso8601(tb, sizeof(tb), gi->hold_until),
	    why[gi->hold_why >= 0 && gi->hold_why <= 3 ? gi->hold_why : 0],
	    gi->limit_lost ? "true" : "false");
}

void
report_status_json(FILE *fp, const char *name, const struct gate_info *gi)
{
	report_status_obj(fp, name, gi);
	(void)fputc('\n', fp);
}

void
report_status_all_json(FILE *fp, char **names, const struct gate_info *gi,
    size_t n)
{
	size_t i;

	(void)fprintf(fp, "{\"schema\":%d,\"gates\":[", REPORT_SCHEMA);
	for (i = 0; i < n; i++) {
		if (i > 0)
			(void)fputc(',', fp);
		report_status_obj(fp, names[i], &gi[i]);
	}
	(void)fputs("]}\n", fp);
}

void
report_status_obj(FILE *fp, const char *name, const struct gate_info *gi)
{
	int64_t now = real_ns();
	char tb[32], nb[200];
	size_t i;

	(void)fprintf(fp, "{\"schema\":%d,\"gate\":", REPORT_SCHEMA);
	json_str(fp, name);
	(void)fprintf(fp, ",\"timestamp\":\"%s\",\"active_processes\":%zu,"
	    "\"max_allowed\":%u,\"utilization_percent\":%.1f,"
	    "\"can_start_new\":%s,\"paused\":%s,\"waiting\":%zu,"
	    "\"acquired_total\":%llu,\"wait_seconds_total\":%.3f,",
	    iso8601(tb, sizeof(tb), now), gi->nh,
	    gi->limit, utilization(gi), can_start(gi) ? "true" : "false",
	    gi->limit == 0 ? "true" : "false", gi->nw,
	    (unsigned long long)gi->acquired, (double)gi->wait_ns / 1e9);
	(void)fputs("\"parent\":", fp);
	if (gi->parent[0] != '\0')
		json_str(fp, gi->parent);
	else
		(void)fputs("null", fp);
	hold_json(fp, gi);
	(void)fprintf(fp, ",\"replica_unsynced\":%s",
	    gi->replica_unsynced ? "true" : "false");
	(void)fprintf(fp, ",\"free_slots\":%u,\"head_weight\":%u,"
	    "\"head_waits_for\":", free_slots(gi), gi->nw ? gi->w[0].weight : 0);
	if (head_note(gi, nb, sizeof(nb)) != NULL)
		json_str(fp, nb);
	else
		(void)fputs("null", fp);
	(void)fputs(",\"active_pids\":[", fp);
	for (i = 0; i < gi->nh; i++)
		(void)fprintf(fp, "%s%d", i ? "," : "",
		    (int)(gi->h[i].pid ? gi->h[i].pid : gi->h[i].wrapper_pid));
	(void)fputs("],\"slots\":[", fp);
	for (i = 0; i < gi->nh; i++) {
		(void)fprintf(fp, "%s{\"slot\":%d,\"pid\":%d,", i ? "," : "",
		    gi->h[i].slot, (int)gi->h[i].pid);
		proc_json(fp, &gi->h[i], now);
		(void)fputc('}', fp);
	}
	(void)fputs("],\"waiters\":[", fp);
	for (i = 0; i < gi->nw; i++) {
		(void)fprintf(fp, "%s{\"position\":%zu,", i ? "," : "", i + 1);
		proc_json(fp, &gi->w[i], now);
		(void)fputc('}', fp);
	}
	(void)fputs("]}", fp);
}

void
report_limit_json(FILE *fp, const char *name, long long old, unsigned limit,
    const char *parent)
{
	(void)fputs("{\"gate\":", fp);
	json_str(fp, name);
	if (old < 0)		/* lost with the server's data */
		(void)fprintf(fp, ",\"old_limit\":null,\"new_limit\":%u", limit);
	else
		(void)fprintf(fp, ",\"old_limit\":%lld,\"new_limit\":%u", old,
		    limit);
	if (parent != NULL) {		/* set with it: "" for none */
		(void)fputs(",\"parent\":", fp);
		json_str(fp, parent);
	}
	(void)fputs("}\n", fp);
}

/*
 * The PIDs of k[0..n) whose signalling succeeded (ok) or failed; neither
 * those gone meanwhile nor the caller's own slot (EDEADLK).
 */
static size_t
kill_pids(FILE *fp, const struct gate_kill *k, size_t n, int ok)
{
	size_t i, m = 0;

	for (i = 0; i < n; i++)
		if (ok ? k[i].error == 0 : k[i].error != 0 &&
		    k[i].error != ESRCH && k[i].error != EDEADLK &&
		    k[i].error != EHOSTUNREACH)
			(void)fprintf(fp, "%s%d", m++ ? "," : "", (int)k[i].pid);
	return m;
}

/*
 * A store shared by hosts: each process signalled with its host, and the
 * holders whose host did not answer (ETIMEDOUT).
 */
static void
kill_hosts(FILE *fp, const struct gate_kill *k, size_t n)
{
	size_t i, m;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		(void)fputs(pass ? "],\"no_answer\":[" : ",\"killed\":[", fp);
		for (i = m = 0; i < n; i++) {
			if (k[i].error != (pass ? ETIMEDOUT : 0))
				continue;
			(void)fprintf(fp, "%s{\"pid\":%d,\"slot\":%d,\"host\":",
			    m++ ? "," : "", (int)k[i].pid, k[i].slot);
			json_str(fp, k[i].host);
			(void)fputc('}', fp);
		}
	}
	(void)fputc(']', fp);
}

void
report_kill_json(FILE *fp, const char *name, const struct gate_kill *k,
    size_t n)
{
	size_t i, nok = 0;

	for (i = 0; i < n; i++)
		if (k[i].error == 0)
			nok++;
	(void)fputs("{\"gate\":", fp);
	json_str(fp, name);
	(void)fprintf(fp, ",\"killed_count\":%zu,\"killed_pids\":[", nok);
	(void)kill_pids(fp, k, n, 1);
	(void)fputs("],\"failed_pids\":[", fp);
	(void)kill_pids(fp, k, n, 0);
	(void)fputc(']', fp);
	for (i = 0; i < n && k[i].host[0] == '\0' &&
	    k[i].error != EHOSTUNREACH; i++)
		;
	if (i < n)
		kill_hosts(fp, k, n);
	/* Only during the hold after a loss (see struct gate_kill). */
	for (i = 0; i < n; i++)
		if (k[i].error == EHOSTUNREACH && k[i].slot >= 0)
			(void)fprintf(fp, ",\"hold\":{\"not_recorded\":%d,"
			    "\"answered\":%d}", k[i].slot, (int)k[i].pid);
		else if (k[i].error == EHOSTUNREACH)
			(void)fprintf(fp, ",\"hold\":{\"not_recorded\":null,"
			    "\"answered\":%d}", (int)k[i].pid);
	/* Only when run from inside a slot of the gate. */
	for (i = nok = 0; i < n; i++)
		if (k[i].error == EDEADLK)
			(void)fprintf(fp, "%s{\"slot\":%d,\"pid\":%d}",
			    nok++ ? "," : ",\"spared\":[", k[i].slot,
			    (int)k[i].pid);
	(void)fputs(nok ? "]}\n" : "}\n", fp);
}

/* One metric family: HELP, TYPE, then a sample per gate. */
static void
metric(FILE *fp, const char *name, const char *type, const char *help,
    char **names, const struct gate_info *gi, size_t n,
    double (*value)(const struct gate_info *))
{
	size_t i;

	(void)fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
	for (i = 0; i < n; i++)	/* gate names need no label escaping */
		(void)fprintf(fp, "%s{gate=\"%s\"} %.9g\n", name, names[i],
		    value(&gi[i]));
}

static double m_active(const struct gate_info *g) { return (double)g->nh; }
static double m_limit(const struct gate_info *g) { return g->limit; }
static double m_util(const struct gate_info *g) { return utilization(g) / 100; }
static double m_waiting(const struct gate_info *g) { return (double)g->nw; }
static double m_acquired(const struct gate_info *g) { return (double)g->acquired; }
static double m_wait(const struct gate_info *g) { return (double)g->wait_ns / 1e9; }
static double m_free(const struct gate_info *g) { return free_slots(g); }
static double m_head(const struct gate_info *g) { return g->nw ? g->w[0].weight : 0; }
static double m_hold(const struct gate_info *g) { return g->hold_until != 0; }
static double m_unsynced(const struct gate_info *g) { return g->replica_unsynced; }

/* 1 if the head has its slots free but waits for a resource need. */
static double
m_held(const struct gate_info *g)
{
	char buf[200];

	return head_held(g, buf, sizeof(buf));
}

void
report_metrics(FILE *fp, char **names, const struct gate_info *gi, size_t n)
{
	metric(fp, "gaterun_active_processes", "gauge",
	    "Commands running in a slot of the gate.", names, gi, n, m_active);
	metric(fp, "gaterun_max_allowed", "gauge",
	    "The gate's limit (0: paused).", names, gi, n, m_limit);
	metric(fp, "gaterun_utilization_ratio", "gauge",
	    "Active commands over the limit (1 when paused).", names, gi, n,
	    m_util);
	metric(fp, "gaterun_waiting", "gauge",
	    "Wrappers waiting in line for a slot.", names, gi, n, m_waiting);
	metric(fp, "gaterun_acquired_total", "counter",
	    "Requests granted since the gate was made (a weighted one counts once).", names, gi, n, m_acquired);
	metric(fp, "gaterun_wait_seconds_total", "counter",
	    "Time the served waiters spent in line.", names, gi, n, m_wait);
	metric(fp, "gaterun_free_slots", "gauge",
	    "Slots free under the limit.", names, gi, n, m_free);
	metric(fp, "gaterun_head_weight", "gauge",
	    "Slots the head of the line needs (0: nobody waits).", names, gi,
	    n, m_head);
	metric(fp, "gaterun_head_resource_held", "gauge",
	    "1 when the head of the line has its slots free but waits for "
	    "memory, pressure or load (--min-mem...; --status says which).",
	    names, gi, n, m_held);
	metric(fp, "gaterun_held", "gauge",
	    "1 while nobody new starts after a loss of the Redis server's data "
	    "or records (--status says until when and why).", names, gi, n,
	    m_hold);
	metric(fp, "gaterun_replica_unsynced", "gauge",
	    "1 when read from a read-only Redis replica with no gaterun data "
	    "(not synced with its master yet): the other samples are a new "
	    "gate's.", names, gi, n, m_unsynced);
}

/* Seconds the longest waiter of gi has been in line. */
static double
oldest_wait(const struct gate_info *gi, int64_t now)
{
	return gi->nw > 0 && gi->w[0].time_ns < now ?
	    (double)(now - gi->w[0].time_ns) / 1e9 : 0;
}

/*
 * The plugin state of one gate: UNKNOWN (3) when read from a replica
 * with no gaterun data (what it shows is a new gate's, not the gate),
 * WARNING when paused (an admin's choice, whatever waits) or held after a
 * loss, CRITICAL or WARNING by the thresholds, else OK.
 */
static int
check_state(const struct gate_info *gi, unsigned warn, unsigned crit,
    double maxwait, int64_t now)
{
	double u = utilization(gi);

	if (gi->replica_unsynced)
		return 3;
	if (gi->limit == 0 || gi->hold_until != 0)
		return 1;
	if (u > crit || oldest_wait(gi, now) > maxwait)
		return 2;
	return u > warn ? 1 : 0;
}

int
report_check(FILE *fp, char **names, const struct gate_info *gi, size_t n,
    unsigned warn, unsigned crit, double maxwait)
{
	static const char *const word[] = { "OK", "WARNING", "CRITICAL",
	    "UNKNOWN" };
	int64_t now = real_ns();
	int worst = 0, st;
	size_t i;

	for (i = 0; i < n; i++)
		if ((st = check_state(&gi[i], warn, crit, maxwait, now)) > worst)
			worst = st;
	(void)fprintf(fp, "GATERUN %s -", word[worst]);
	if (n == 0)
		(void)fprintf(fp, " no gates");
	for (i = 0; i < n; i++)
		if (gi[i].replica_unsynced)
			(void)fprintf(fp, "%s %s unknown (a read-only replica "
			    "with no gaterun data)", i ? "," : "", names[i]);
		else
			(void)fprintf(fp, "%s %s %zu/%u (%.0f%%%s%s%s)",
			    i ? "," : "", names[i], gi[i].nh, gi[i].limit,
			    utilization(&gi[i]), gi[i].limit == 0 ?
			    ", paused" : "", gi[i].hold_until != 0 ?
			    ", held after a loss" : "",
			    oldest_wait(&gi[i], now) > maxwait ?
			    ", waiter stuck" : "");
	(void)fputs(" |", fp);
	for (i = 0; i < n; i++) {
		const char *pfx = n > 1 ? names[i] : "";

		if (gi[i].replica_unsynced)
			continue;	/* no figures: a new gate's defaults */
		(void)fprintf(fp, " %s%sactive=%zu;%.0f;%.0f;0;%u %s%swaiting=%zu",
		    pfx, n > 1 ? "_" : "", gi[i].nh,
		    ceil(gi[i].limit * warn / 100.0),
		    ceil(gi[i].limit * crit / 100.0), gi[i].limit,
		    pfx, n > 1 ? "_" : "", gi[i].nw);
	}
	(void)fputc('\n', fp);
	return worst;
}
