/*
 * first.c - a first herd program: tasks, a channel, scopes, a deadline,
 * cancellation.
 *
 * It does, in C, what the Go post-mortem's loop meant to do: receive jobs
 * from a channel (`for v := range ch`) and start a task for each, with its
 * own copy of the value, then wait for all of them. Then it starts workers
 * that would run for ever, and cancels them when a deadline passes. Build
 * and run it with `make run`.
 */
#include <herd.h>

#include <stdatomic.h>
#include <stdio.h>

struct job {
	int id;
	const char *name;
};

static atomic_int started[8];

static void start_job(void *p)
{
	struct job j = *(struct job *)p; /* herd copied it for this task */
	atomic_fetch_add(&started[j.id], 1);
	herd_sleep(herd_deadline(10 * HERD_MSEC)); /* pretend to work */
	printf("  job %d (%s) finished on worker %d\n", j.id, j.name,
	       herd_worker_id());
}

static void forever(void *p)
{
	int n = *(int *)p;
	/* Blocks until its scope is cancelled: herd_sleep then returns
	 * HERD_ECANCELED instead of waiting out its deadline. */
	int rc = herd_sleep(herd_deadline(3600 * HERD_SEC));
	printf("  worker task %d stopped: %s\n", n, herd_strerror(rc));
}

/* Sends eight jobs on the channel, then closes it. */
static void produce(void *p)
{
	herd_chan *ch = *(herd_chan **)p;
	const char *names[] = {"ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"};
	for (int i = 0; i < 8; i++) {
		struct job j = {i, names[i]};
		herd_chan_send(ch, &j, HERD_FOREVER);
	}
	herd_chan_close(ch);
}

static void first(void *arg)
{
	herd_chan *ch;
	if (herd_chan_make(&ch, sizeof(struct job), 0) < 0)
		return;
	herd_scope *jobs;
	herd_scope_open(&jobs);
	HERD_GO(jobs, produce, ch);
	printf("starting 8 jobs from a channel, one task each, on %d workers\n",
	       herd_workers());
	struct job j;
	HERD_RANGE(j, ch) {                /* for j := range ch */
		HERD_GO(jobs, start_job, j); /* copies j: the loop may move on */
	}
	herd_scope_close(jobs); /* waits for the producer and all eight */
	herd_chan_free(ch);
	for (int i = 0; i < 8; i++)
		if (atomic_load(&started[i]) != 1)
			printf("job %d started %d times!\n", i, atomic_load(&started[i]));
	printf("every job ran exactly once\n");

	herd_scope *workers;
	herd_scope_open(&workers);
	for (int i = 0; i < 3; i++)
		HERD_GO(workers, forever, i);
	int rc = herd_scope_wait(workers, herd_deadline(50 * HERD_MSEC));
	printf("waited 50 ms for tasks that never end: %s; cancelling\n",
	       herd_strerror(rc));
	herd_scope_cancel(workers);
	herd_scope_close(workers);
	printf("all tasks ended; nothing strays\n");
}

int main(void)
{
	int rc = herd_main(first, NULL);
	if (rc < 0) {
		fprintf(stderr, "herd_main: %s\n", herd_strerror(rc));
		return 1;
	}
	return 0;
}
