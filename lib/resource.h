/*
 * Resource-aware admission: what a request needs of the machine before its
 * command starts (memory available, pressure stall, load), and the check
 * of it against procfs. The policy (gate.c) decides when to look.
 */
#ifndef GATERUN_RESOURCE_H
#define GATERUN_RESOURCE_H

#include <stddef.h>
#include <stdint.h>

/* The pressure (PSI) files a request may bound, index of res_need.psi. */
#define RES_PSI_MEMORY	0
#define RES_PSI_CPU	1
#define RES_PSI_IO	2
#define RES_NPSI	3

/* res_need.has: which needs were asked for. */
#define RES_MEM		0x01		/* mem: bytes */
#define RES_MEMPCT	0x02		/* mem_pct: percent of MemTotal */
#define RES_PSI(i)	(0x04 << (i))	/* psi[i] */
#define RES_LOAD	0x20		/* load */
#define RES_ALL		0x3f

#define RES_MAX_MEM	(UINT64_C(1) << 60)	/* 1 EiB */
#define RES_MAX_LOAD	1000000		/* hundredths: 10000.00 */
/*
 * How often a head waiter held only by a need looks again, in ms: no
 * kernel interface says when memory is freed or a stall or load drops
 * (a PSI trigger fires when a stall rises above a threshold, never when
 * it falls below one), so the head of the line, and no one else, polls.
 */
#define RES_PERIOD_MS	1000

/* A request's needs; all zero: none. */
struct res_need {
	unsigned	has;		/* RES_* bits */
	uint64_t	mem;		/* MemAvailable at least, bytes */
	unsigned	mem_pct;	/* MemAvailable at least, % of MemTotal */
	unsigned	psi[RES_NPSI];	/* "some avg10" at most, hundredths of
					   a percent (0..10000) */
	unsigned	load;		/* 1-minute load average at most,
					   hundredths */
};

/*
 * Parse SIZE[K|M|G|T] (powers of 1024, decimals allowed, bytes without a
 * suffix) or PCT% (1..100 of MemTotal) into n's memory need. 0, or -1
 * (EINVAL) with n unchanged.
 */
int	res_parse_mem(const char *, struct res_need *);
/*
 * Parse [memory:|cpu:|io:]PCT (0..100, two decimals at most; memory
 * when no resource is named) into n's pressure need. 0 or -1 (EINVAL).
 */
int	res_parse_pressure(const char *, struct res_need *);
/* 1 if n is a need the parsers could have made (values in range). */
int	res_valid(const struct res_need *);
/* Parse a load average L (0..10000, two decimals at most). 0 or -1. */
int	res_parse_load(const char *, struct res_need *);
/*
 * The directory holding meminfo, loadavg and pressure/: $GATERUN_PROCFS
 * when set and not empty (tests, or a container's own view of the
 * machine such as LXCFS's), else /proc.
 */
const char *res_procfs(void);
/*
 * Check n against the machine now. 1 if every need is met; 0 if one is
 * not, with why (a sentence: "waiting for memory: 1.2 GiB available,
 * needs 2 GiB"); -1 if a file cannot be read or understood, errno set
 * and why saying which.
 */
int	res_check(const struct res_need *, char *, size_t);
/* n's needs in words ("min-mem 2 GiB, max-load 4"); "" for none. */
void	res_describe(const struct res_need *, char *, size_t);
/* A size in bytes for people: "2 GiB", "1.2 GiB", "512 MiB", "100 B". */
void	res_size(uint64_t, char *, size_t);

#endif
