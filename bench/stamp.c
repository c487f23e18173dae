/*
 * stamp: append "TAG NS\n" (CLOCK_REALTIME nanoseconds) to FILE in one
 * write, then exit, or die of SIGKILL with "kill": the probe command of the
 * latency benchmarks. TAG "ppid" writes the parent's PID instead. Linked
 * statically so its own start-up is small.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct timespec ts;
	char buf[64];
	int fd, n;

	if (argc < 3)
		return 2;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (strcmp(argv[2], "ppid") == 0)
		n = snprintf(buf, sizeof(buf), "%d %lld\n", (int)getppid(),
		    (long long)ts.tv_sec * 1000000000 + ts.tv_nsec);
	else
		n = snprintf(buf, sizeof(buf), "%s %lld\n", argv[2],
		    (long long)ts.tv_sec * 1000000000 + ts.tv_nsec);
	if ((fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644)) == -1 ||
	    write(fd, buf, (size_t)n) != n)
		return 1;
	if (argc > 3 && strcmp(argv[3], "kill") == 0)
		raise(SIGKILL);
	return 0;
}
