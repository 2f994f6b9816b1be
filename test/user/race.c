/*
 * race.c - a user's program with a data race between two tasks, for
 * test/sanitizer-user.sh: built against herd-tsan, ThreadSanitizer must
 * report it.
 *
 * Two tasks increment the plain global `counter` without synchronisation.
 * So that they really run at the same time (and not one after the other on
 * one worker, which would order them), each first announces itself and
 * waits, for up to five seconds, for the other: through a relaxed atomic,
 * which orders nothing for TSan, so the race stays a race.
 */
#include <herd.h>

#include <stdatomic.h>
#include <stdio.h>

static long counter;
static atomic_int arrived;
static atomic_int overlapped;

static void bump(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&arrived, 1, memory_order_relaxed);
	int64_t end = herd_deadline(5 * HERD_SEC);
	while (atomic_load_explicit(&arrived, memory_order_relaxed) < 2 && herd_now() < end)
		;
	if (atomic_load_explicit(&arrived, memory_order_relaxed) == 2)
		atomic_fetch_add_explicit(&overlapped, 1, memory_order_relaxed);
	for (int i = 0; i < 100000; i++)
		counter++; /* the race */
}

static void start(void *arg)
{
	(void)arg;
	if (herd_go(NULL, bump, NULL, 0) < 0 || herd_go(NULL, bump, NULL, 0) < 0)
		fprintf(stderr, "race: cannot spawn\n");
}

int main(void)
{
	herd_config config = {.workers = 2};
	int rc = herd_run(&config, start, NULL);
	if (rc < 0) {
		fprintf(stderr, "race: herd_run: %s\n", herd_strerror(rc));
		return 2;
	}
	printf("race: the tasks %s, counter %ld\n",
	       atomic_load(&overlapped) == 2 ? "overlapped" : "did not overlap", counter);
	return 0;
}
