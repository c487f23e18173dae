/*
 * Unit tests of lib/resource.c: the parse of --min-mem, --max-pressure
 * and --max-load values, and the checks against a procfs of our own
 * (GATERUN_PROCFS pointing at a temporary directory).
 */
#include "config.h"

#include <sys/stat.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resource.h"

static char dir[64];

static void
proc_setup(void)
{
	char p[128];

	strcpy(dir, "/tmp/gaterun-res-XXXXXX");
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	(void)snprintf(p, sizeof(p), "%s/pressure", dir);
	cr_assert(eq(int, mkdir(p, 0755), 0));
	cr_assert(eq(int, setenv("GATERUN_PROCFS", dir, 1), 0));
}

static void
proc_teardown(void)
{
	char cmd[128];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", dir);
	(void)unsetenv("GATERUN_PROCFS");
}

/* Write text to file name of our procfs. */
static void
put(const char *name, const char *text)
{
	char p[128];
	FILE *fp;

	(void)snprintf(p, sizeof(p), "%s/%s", dir, name);
	cr_assert(ne(ptr, (fp = fopen(p, "w")), NULL));
	cr_assert(ge(int, fputs(text, fp), 0));
	cr_assert(eq(int, fclose(fp), 0));
}

TestSuite(parse, .timeout = 10);
TestSuite(check, .init = proc_setup, .fini = proc_teardown, .timeout = 10);

Test(parse, sizes_take_powers_of_1024)
{
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "1", 1 }, { "100", 100 }, { "1K", 1024 }, { "2k", 2048 },
		{ "512M", UINT64_C(512) << 20 }, { "2G", UINT64_C(2) << 30 },
		{ "1.5G", UINT64_C(3) << 29 }, { "1T", UINT64_C(1) << 40 },
		{ "0.5K", 512 }, { "1048576T", UINT64_C(1) << 60 },
	};
	struct res_need n;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		memset(&n, 0, sizeof(n));
		cr_assert(eq(int, res_parse_mem(ok[i].s, &n), 0), "%s", ok[i].s);
		cr_assert(eq(u32, n.has, RES_MEM), "%s", ok[i].s);
		cr_assert(eq(u64, n.mem, ok[i].v), "%s", ok[i].s);
	}
	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_parse_mem("10%", &n), 0));
	cr_assert(eq(u32, n.has, RES_MEMPCT));
	cr_assert(eq(u32, n.mem_pct, 10));
	cr_assert(eq(int, res_parse_mem("1G", &n), 0), "the last one counts");
	cr_assert(eq(u32, n.has, RES_MEM));
	cr_assert(res_valid(&n));
}

Test(parse, bad_sizes_are_refused_and_change_nothing)
{
	static const char *const bad[] = {
		"", "12X", "G", "-1", "0", "0K", "1.", ".5G", "1GB", "1 G",
		"1G ", "0%", "101%", "1.5%", "2097152T", "1.0000001G", "1e9",
		"0x10", "%", "10%%",
	};
	struct res_need n;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&n, 0, sizeof(n));
		errno = 0;
		cr_assert(eq(int, res_parse_mem(bad[i], &n), -1), "%s", bad[i]);
		cr_assert(eq(int, errno, EINVAL));
		cr_assert(eq(u32, n.has, 0), "%s", bad[i]);
	}
}

Test(parse, pressure_and_load)
{
	static const char *const bad[] = {
		"101", "-1", "", "x", "20.123", "cpu:", "disk:5", "memory",
		"cpu:101", "memory:20:1", "1e1",
	};
	static const char *const badload[] = {
		"-1", "", "x", "10000.01", "1.234", "1,5",
	};
	struct res_need n;
	size_t i;

	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_parse_pressure("20", &n), 0));
	cr_assert(eq(int, res_parse_pressure("cpu:50.5", &n), 0));
	cr_assert(eq(int, res_parse_pressure("io:0", &n), 0));
	cr_assert(eq(u32, n.psi[RES_PSI_MEMORY], 2000));
	cr_assert(eq(u32, n.psi[RES_PSI_CPU], 5050));
	cr_assert(eq(u32, n.psi[RES_PSI_IO], 0));
	cr_assert(eq(int, res_parse_pressure("memory:100", &n), 0));
	cr_assert(eq(u32, n.psi[RES_PSI_MEMORY], 10000));
	cr_assert(eq(int, res_parse_load("2.5", &n), 0));
	cr_assert(eq(u32, n.load, 250));
	cr_assert(eq(u32, n.has, RES_PSI(0) | RES_PSI(1) | RES_PSI(2) |
	    RES_LOAD));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(eq(int, res_parse_pressure(bad[i], &n), -1), "%s",
		    bad[i]);
	for (i = 0; i < sizeof(badload) / sizeof(badload[0]); i++)
		cr_assert(eq(int, res_parse_load(badload[i], &n), -1), "%s",
		    badload[i]);
	cr_assert(eq(u32, n.load, 250), "unchanged by a refusal");
}

Test(parse, sizes_for_people)
{
	char b[32];

	res_size(UINT64_C(2) << 30, b, sizeof(b));
	cr_assert(eq(str, b, "2 GiB"));
	res_size(UINT64_C(1258291) * 1024, b, sizeof(b));
	cr_assert(eq(str, b, "1.2 GiB"));
	res_size(UINT64_C(512) << 20, b, sizeof(b));
	cr_assert(eq(str, b, "512 MiB"));
	res_size(100, b, sizeof(b));
	cr_assert(eq(str, b, "100 B"));
}

Test(check, memory_available)
{
	struct res_need n;
	char why[200];

	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_parse_mem("2G", &n), 0));
	put("meminfo", "MemTotal:       24683620 kB\nMemFree:  1 kB\n"
	    "MemAvailable:    1258291 kB\nBuffers: 5 kB\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), 0));
	cr_assert(eq(str, why, "waiting for memory: 1.2 GiB available, needs "
	    "2 GiB"));
	put("meminfo", "MemTotal:       24683620 kB\n"
	    "MemAvailable:    2097152 kB\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), 1), "exactly 2 GiB");
	cr_assert(eq(int, res_parse_mem("10%", &n), 0));
	put("meminfo", "MemTotal: 1000 kB\nMemAvailable: 99 kB\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), 0));
	cr_assert(eq(str, why, "waiting for memory: 99 KiB available (9% of "
	    "1000 KiB), needs 10%"));
	put("meminfo", "MemTotal: 1000 kB\nMemAvailable: 100 kB\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), 1));
}

Test(check, pressure_and_load)
{
	struct res_need n;
	char why[200];

	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_parse_pressure("20", &n), 0));
	cr_assert(eq(int, res_parse_pressure("cpu:50", &n), 0));
	cr_assert(eq(int, res_parse_load("4", &n), 0));
	put("pressure/memory", "some avg10=34.50 avg60=1.00 avg300=0.00 "
	    "total=9\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=1\n");
	put("pressure/cpu", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
	put("loadavg", "4.01 3.24 5.23 12/148 19199\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), 0));
	cr_assert(eq(str, why, "waiting for memory pressure: 34.5% (some "
	    "avg10), at most 20%"));
	put("pressure/memory", "some avg10=20.00 avg60=1.00 avg300=0.00 "
	    "total=9\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), 0));
	cr_assert(eq(str, why, "waiting for load: 4.01 (1 min), at most 4"));
	put("loadavg", "4.00 3.24 5.23 12/148 19199\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), 1));
}

Test(check, unreadable_or_strange_files_are_errors)
{
	struct res_need n;
	char why[200];

	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_parse_pressure("io:5", &n), 0));
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), -1));
	cr_assert(eq(int, errno, ENOENT));
	cr_assert(not(eq(ptr, strstr(why, "pressure/io"), NULL)), "%s", why);
	put("pressure/io", "");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), -1), "empty");
	put("pressure/io", "full avg10=1.00\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), -1), "no some line");
	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_parse_mem("1K", &n), 0));
	put("meminfo", "MemTotal: 1000 kB\nMemFree: 5 kB\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), -1),
	    "no MemAvailable (before Linux 3.14)");
	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), 1), "no needs");
}

/* A number must end where its field ends, and meminfo's be in kB. */
Test(check, numbers_must_fill_their_field)
{
	static const char *const bad_mem[] = {
		"MemTotal: 1000 kB\nMemAvailable: 3e9 kB\n",
		"MemTotal: 1000 kB\nMemAvailable: 0x100000 kB\n",
		"MemTotal: 1000 kB\nMemAvailable: 300 MB\n",
		"MemTotal: 1000 kB\nMemAvailable: 300\n",
	};
	static const char *const bad_load[] = {
		"0x10 1.00 1.00 1/1 1\n", "7junk 1.00 1.00 1/1 1\n",
	};
	struct res_need n;
	char why[200];
	size_t i;

	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_parse_mem("1K", &n), 0));
	for (i = 0; i < sizeof(bad_mem) / sizeof(bad_mem[0]); i++) {
		put("meminfo", bad_mem[i]);
		cr_assert(eq(int, res_check(&n, why, sizeof(why)), -1), "%s",
		    bad_mem[i]);
	}
	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_parse_pressure("50", &n), 0));
	put("pressure/memory", "some avg10=1e308 avg60=0.00 avg300=0.00 "
	    "total=0\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), -1), "1e308");
	memset(&n, 0, sizeof(n));
	cr_assert(eq(int, res_parse_load("5", &n), 0));
	for (i = 0; i < sizeof(bad_load) / sizeof(bad_load[0]); i++) {
		put("loadavg", bad_load[i]);
		cr_assert(eq(int, res_check(&n, why, sizeof(why)), -1), "%s",
		    bad_load[i]);
	}
	put("loadavg", "4.00 3.24 5.23 12/148 19199\n");
	cr_assert(eq(int, res_check(&n, why, sizeof(why)), 1));
}

Test(check, needs_in_words)
{
	struct res_need n;
	char b[200];

	memset(&n, 0, sizeof(n));
	res_describe(&n, b, sizeof(b));
	cr_assert(eq(str, b, ""));
	cr_assert(eq(int, res_parse_mem("2G", &n), 0));
	cr_assert(eq(int, res_parse_pressure("cpu:12.5", &n), 0));
	cr_assert(eq(int, res_parse_load("3", &n), 0));
	res_describe(&n, b, sizeof(b));
	cr_assert(eq(str, b, "min-mem 2 GiB, max-pressure cpu:12.5%, "
	    "max-load 3"));
}
