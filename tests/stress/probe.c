/*
 * probe: the wrapped command of the chaos test. Appends "s ID PID NS" to
 * LOG, sleeps MS milliseconds, appends "e ID PID NS", exits 0. Each line is
 * one O_APPEND write, so concurrent probes never interleave within a line.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void
stamp(int fd, char tag, const char *id)
{
	struct timespec ts;
	char buf[96];
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(buf, sizeof(buf), "%c %s %d %lld\n", tag, id, (int)getpid(),
	    (long long)ts.tv_sec * 1000000000 + ts.tv_nsec);
	if (write(fd, buf, (size_t)n) != n)
		_exit(3);
}

int
main(int argc, char **argv)
{
	struct timespec d;
	long ms;
	int fd;

	if (argc != 4)
		return 2;
	if ((fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644)) == -1)
		return 3;
	ms = strtol(argv[3], NULL, 10);
	stamp(fd, 's', argv[2]);
	d.tv_sec = ms / 1000;
	d.tv_nsec = ms % 1000 * 1000000;
	while (nanosleep(&d, &d) == -1)
		;
	stamp(fd, 'e', argv[2]);
	return 0;
}
