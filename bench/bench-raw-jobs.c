/*
 * bench-raw-jobs.c - the anchor of the herd command's benchmark: what the
 * kernel costs. Runs N jobs of a program with at most P at a time, with
 * posix_spawn and waitpid and nothing else (no output captured, no
 * scope), and prints the wall time per job.
 *
 * Usage: bench-raw-jobs N P program [args...]   (prints "<ms> ms/job")
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench-raw-jobs N P program [args...]\n");
		return 2;
	}
	long n = atol(argv[1]), p = atol(argv[2]);
	if (n < 1 || p < 1)
		return 2;
	double t0 = now();
	long started = 0, running = 0;
	while (started < n || running > 0) {
		while (started < n && running < p) {
			pid_t pid;
			if (posix_spawnp(&pid, argv[3], NULL, NULL, argv + 3, environ) != 0) {
				perror("posix_spawn");
				return 1;
			}
			started++;
			running++;
		}
		int st;
		if (waitpid(-1, &st, 0) > 0)
			running--;
	}
	printf("%.3f ms/job\n", (now() - t0) * 1000 / (double)n);
	return 0;
}
