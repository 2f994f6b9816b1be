/*
 * bench-wall.c - times a command: runs it RUNS times (stdout and stderr to
 * /dev/null, stdin from /dev/null) and prints the median wall time, for the
 * herd command's start-up figure, which `date` around a shell command
 * would swamp.
 *
 * Usage: bench-wall RUNS program [args...]   (prints "<ms> ms")
 */
#include <fcntl.h>
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

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench-wall RUNS program [args...]\n");
		return 2;
	}
	int runs = atoi(argv[1]);
	if (runs < 1 || runs > 100000)
		return 2;
	double *t = malloc((size_t)runs * sizeof *t);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	for (int fd = 0; fd < 3; fd++)
		posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
	for (int i = 0; i < runs; i++) {
		double t0 = now();
		pid_t pid;
		int st;
		if (posix_spawnp(&pid, argv[2], &fa, NULL, argv + 2, environ) != 0 ||
		    waitpid(pid, &st, 0) != pid) {
			perror(argv[2]);
			return 1;
		}
		t[i] = now() - t0;
	}
	qsort(t, (size_t)runs, sizeof *t, cmp);
	printf("%.3f ms\n", t[runs / 2] * 1000);
	return 0;
}
