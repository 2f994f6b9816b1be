/*
 * event.c - the command each object of the seed example runs.
 *
 *   event NAME MS
 *
 * It works for MS milliseconds and exits 0. Before that it starts a child
 * of its own that it never waits for, a leftover that outlives it by
 * minutes, as `go run` left its built binary running in the Go
 * post-mortem. Run without herd, every run leaves such leftovers behind;
 * run under herd, they end with event's process group when event exits,
 * and with its scope when the scope is canceled.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* How long the leftover outlives event: long enough to pile up, as the
 * post-mortem's did, yet not for ever if something lets one stray. */
#define LEFTOVER_SECONDS 300

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, ms % 1000 * 1000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The leftover: named so that ps shows what it is, and holding none of
 * event's descriptors, so that it keeps no pipe of whoever reads event's
 * output open (it would otherwise hang a `$(event ...)` for minutes). */
static void leftover(void)
{
	prctl(PR_SET_NAME, "event-leftover", 0, 0, 0);
	int null = open("/dev/null", O_RDWR);
	for (int fd = 0; fd <= 2 && null >= 0; fd++)
		dup2(null, fd);
	if (null > 2)
		close(null);
	sleep_ms(LEFTOVER_SECONDS * 1000L);
	_exit(0);
}

int main(int argc, char **argv)
{
	char *end = NULL;
	long ms = argc == 3 ? strtol(argv[2], &end, 10) : -1;
	if (argc != 3 || *end || ms < 0) {
		fprintf(stderr, "usage: event NAME MS\n");
		return 2;
	}
	pid_t pid = fork();
	if (pid == 0)
		leftover();
	if (pid < 0)
		perror("event: fork");
	sleep_ms(ms);
	return 0; /* without waiting for the leftover: it is orphaned */
}
