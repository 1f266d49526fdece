/*
 * wakeup_rtt [same|cross] [N]: the machine's price of waking another
 * process, which a proxy adds to every hop. Two processes pass a byte back
 * and forth over pipes N times (default 20000), pinned to one CPU (same) or
 * to two (cross); prints the median round trip in microseconds.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static void wakeup_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static double wakeup_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int wakeup_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int n = argc > 2 ? atoi(argv[2]) : 20000, to[2], from[2];
	int other = argc > 1 && strcmp(argv[1], "cross") == 0 ? 1 : 0;
	double *rt, t0;
	pid_t pid;
	char c = 'x';

	if (n <= 0 || (rt = calloc((size_t)n, sizeof(*rt))) == NULL || pipe(to) == -1 ||
	    pipe(from) == -1) {
		fprintf(stderr, "usage: wakeup_rtt [same|cross] [N]\n");
		return 2;
	}
	if ((pid = fork()) == 0) {
		close(to[1]); /* so that the parent's close is an EOF here */
		wakeup_pin(other);
		while (read(to[0], &c, 1) == 1 && write(from[1], &c, 1) == 1)
			;
		_exit(0);
	}
	wakeup_pin(0);
	for (int i = 0; i < n; i++) {
		t0 = wakeup_now_us();
		if (write(to[1], &c, 1) != 1 || read(from[0], &c, 1) != 1)
			return 1;
		rt[i] = wakeup_now_us() - t0;
	}
	close(to[1]);
	waitpid(pid, NULL, 0);
	qsort(rt, (size_t)n, sizeof(*rt), wakeup_cmp);
	printf("%.1f\n", rt[n / 2]);
	free(rt);
	return 0;
}
