/*
 * What gaterun prints about a gate: the human status table and the JSON
 * objects that scripts and monitoring read.
 */
#ifndef GATERUN_REPORT_H
#define GATERUN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "gate.h"

#define REPORT_SCHEMA	1	/* bump when a JSON field changes meaning */

/* Write s as a JSON string: escaped, invalid UTF-8 as U+FFFD. */
void	json_str(FILE *, const char *);
/*
 * A hold (gate_info.hold_until, why, limit_lost) in words, "held until
 * HH:MM:SS ...", into buf; returns buf.
 */
const char *report_hold(char *, size_t, int64_t, int, int);
/* Human summary line and slot table. */
void	report_status(FILE *, const char *, const struct gate_info *);
/* The JSON object of one gate, without a newline. */
void	report_status_obj(FILE *, const char *, const struct gate_info *);
/* One JSON object, one line. */
void	report_status_json(FILE *, const char *, const struct gate_info *);
/* {"schema":N,"gates":[...]}: the objects of n gates, one line. */
void	report_status_all_json(FILE *, char **, const struct gate_info *,
	    size_t);
/*
 * {"gate":..,"old_limit":N,"new_limit":N[,"parent":..]}, one line; an old
 * limit below 0 was lost with a Redis server's data: null.
 */
void	report_limit_json(FILE *, const char *, long long, unsigned,
	    const char *);
/* {"gate":..,"killed_count":N,"killed_pids":[..],"failed_pids":[..]}. */
void	report_kill_json(FILE *, const char *, const struct gate_kill *,
	    size_t);
/* Prometheus text exposition of n gates (node_exporter textfile format). */
void	report_metrics(FILE *, char **, const struct gate_info *, size_t);
/*
 * A Nagios/Icinga plugin line for n gates; returns the plugin's exit code:
 * 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (a gate read from a Redis
 * replica with no gaterun data).
 */
int	report_check(FILE *, char **, const struct gate_info *, size_t,
	    unsigned, unsigned, double);

#endif
