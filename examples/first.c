/*
 * first.c - a first herd program: tasks, a channel, scopes, child
 * processes, a deadline, cancellation.
 *
 * It does, in C, what the Go post-mortem's loop meant to do: receive jobs
 * from a channel (`for v := range ch`) and start a task for each, with its
 * own copy of the value; each task runs a child process and reads its
 * output; then wait for all of them. Then it starts workers whose children
 * would run for ever, and cancels them when a deadline passes: the children
 * end with their scope, and nothing is left behind. Build and run it with
 * `make run`.
 */
#include <herd.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct job {
	int id;
	const char *name;
};

static atomic_int started[8];

/* Runs `echo <name>` to its end and collects what it printed, as Go's
 * exec.Command("echo", name).Output(): 0, with the first line in out and
 * the exit status in *status; or a negative code (nothing ran). */
static int run_echo(const char *name, char *out, size_t size, int *status)
{
	char *argv[] = {"echo", (char *)name, NULL};
	herd_proc_opts o = {.argv = argv};
	herd_output r;
	int rc = herd_proc_output(&r, NULL, &o, size - 1, 0, HERD_FOREVER);
	if (rc == 0) {
		snprintf(out, size, "%.*s", (int)strcspn(r.out, "\n"), r.out);
		*status = r.status;
	}
	herd_output_free(&r);
	return rc;
}

/* A typed task: j is this task's own copy of the job it was spawned with. */
HERD_TASK(start_job, struct job, j)
{
	atomic_fetch_add(&started[j.id], 1);
	char out[64];
	int status = -1; /* set when run_echo returns 0 */
	int rc = run_echo(j.name, out, sizeof out, &status);
	if (rc < 0)
		printf("  job %d: %s\n", j.id, herd_strerror(rc));
	else
		printf("  job %d: child said \"%s\" (exit %d), on worker %d\n", j.id, out,
		       status, herd_worker_id());
}

static atomic_int child_pids[3];

HERD_TASK(forever, int, n)
{
	/* A child that would run for an hour. When the scope is canceled,
	 * herd_proc_wait returns HERD_ECANCELED, and the child gets SIGTERM;
	 * closing the scope waits until it is gone. */
	char *argv[] = {"sleep", "3600", NULL};
	herd_proc_opts o = {.argv = argv};
	herd_proc *proc;
	if (herd_proc_start(&proc, NULL, &o, HERD_FOREVER) < 0)
		return;
	atomic_store(&child_pids[n], herd_proc_pid(proc));
	int st;
	int rc = herd_proc_wait(proc, &st, herd_deadline(3600 * HERD_SEC));
	/* The child's SIGTERM may end it before the cancellation reaches
	 * this wait: then the wait returns 0 and its status. */
	if (rc < 0)
		printf("  worker task %d stopped: %s\n", n, herd_strerror(rc));
	else if (HERD_PROC_SIGNALED(st))
		printf("  worker task %d stopped: its child was killed by signal %d\n",
		       n, HERD_PROC_SIGNAL(st));
	else
		printf("  worker task %d stopped: its child exited with %d\n", n, st);
	herd_proc_free(proc);
}

/* Sends eight jobs on the channel, then closes it. */
HERD_TASK(produce, HERD_CHAN(struct job), ch)
{
	const char *names[] = {"ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"};
	for (int i = 0; i < 8; i++) {
		struct job j = {i, names[i]};
		HERD_SEND(ch, j, HERD_FOREVER);
	}
	herd_chan_close(ch);
}

HERD_TASK(first, int, limit)
{
	HERD_CHAN(struct job) ch; /* a channel of struct job: checked by the compiler */
	herd_scope *jobs;
	if (HERD_CHAN_MAKE(ch, 0) < 0 || herd_scope_open(&jobs) < 0)
		return;
	herd_scope_limit(jobs, limit); /* at most `limit` jobs at once */
	HERD_GO(NULL, produce(ch)); /* in this task's scope: not counted in jobs' limit */
	printf("starting 8 jobs from a channel, one task each, %d at a time, on %d workers\n",
	       limit, herd_workers());
	struct job j;
	HERD_RANGE(j, ch) {                /* for j := range ch */
		HERD_GO(jobs, start_job(j)); /* copies j: the loop may move on */
	}
	herd_scope_close(jobs); /* waits for all eight */
	herd_chan_free(ch);
	for (int i = 0; i < 8; i++)
		if (atomic_load(&started[i]) != 1)
			printf("job %d started %d times!\n", i, atomic_load(&started[i]));
	printf("every job ran exactly once\n");

	herd_scope *workers;
	if (herd_scope_open(&workers) < 0)
		return;
	for (int i = 0; i < 3; i++)
		HERD_GO(workers, forever(i));
	int rc = herd_scope_wait(workers, herd_deadline(50 * HERD_MSEC));
	printf("waited 50 ms for tasks that never end: %s; canceling\n",
	       herd_strerror(rc));
	herd_scope_cancel(workers);
	herd_scope_close(workers);
	int alive = 0;
	for (int i = 0; i < 3; i++)
		alive += atomic_load(&child_pids[i]) > 0 && kill(atomic_load(&child_pids[i]), 0) == 0;
	printf("all tasks ended; %d of their 3 child processes left; nothing strays\n", alive);
}

int main(void)
{
	int rc = HERD_MAIN(first(4));
	if (rc < 0) {
		fprintf(stderr, "herd_main: %s\n", herd_strerror(rc));
		return 1;
	}
	return 0;
}
