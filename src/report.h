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
/* Human summary line and slot table. */
void	report_status(FILE *, const char *, const struct gate_info *);
/* One JSON object, one line. */
void	report_status_json(FILE *, const char *, const struct gate_info *);

#endif
