/*
 * blocking.c - calls that block a thread, kept away from the workers: the
 * helper threads of herd_blocking.
 *
 * Helpers. herd_blocking queues a job (on the calling task's stack) and
 * parks the task firmly; an idle helper takes the job, runs it, stores the
 * result and readies the task (from a thread that is not a worker, so
 * through the global queue). Helpers start on demand, up to the configured
 * maximum, and sleep on a futex (`seq`) when there is no job; they end with
 * the runtime. The job is the task's until it is readied: the helper does
 * not touch it after herd__wait_finish.
 *
 * Locks: blk.lock protects the job queue and the helper counts; it is an
 * object lock (level 2).
 */
#include "io/io.h"

#include <stdlib.h>

struct herd__job {
	int (*fn)(void *);
	void *arg;
	int result;
	herd__task *task;
	struct herd__job *next;
};

__thread bool herd__tls_helper __attribute__((tls_model("initial-exec")));

static void *helper_main(void *arg)
{
	herd__rt *rt = arg;
	herd__tls_helper = true; /* its writes get EPIPE (signal.c) */
	herd__mutex_lock(&rt->io->blk.lock);
	for (;;) {
		struct herd__job *j = rt->io->blk.head;
		if (!j) {
			if (rt->io->blk.stop)
				break;
			uint32_t seq = atomic_load_explicit(&rt->io->blk.seq, mo_acquire);
			rt->io->blk.nidle++;
			herd__mutex_unlock(&rt->io->blk.lock);
			herd__futex_wait(&rt->io->blk.seq, seq, -1);
			herd__mutex_lock(&rt->io->blk.lock);
			rt->io->blk.nidle--;
			continue;
		}
		rt->io->blk.head = j->next;
		if (!rt->io->blk.head)
			rt->io->blk.tail = NULL;
		herd__mutex_unlock(&rt->io->blk.lock);
		j->result = j->fn(j->arg);
		herd__task *t = j->task;
		if (herd__wait_claim(t)) /* firm and without deadline: always */
			herd__wait_finish(t, 0);
		herd__mutex_lock(&rt->io->blk.lock);
	}
	herd__mutex_unlock(&rt->io->blk.lock);
	return NULL;
}

/* Starts a helper; blk.lock held. 0 or -errno. */
static int helper_start_locked(herd__rt *rt)
{
	if (!rt->io->blk.threads) {
		rt->io->blk.threads = calloc(rt->io->blk.max, sizeof *rt->io->blk.threads);
		if (!rt->io->blk.threads)
			return -ENOMEM;
	}
	int rc = pthread_create(&rt->io->blk.threads[rt->io->blk.nthreads], NULL, helper_main, rt);
	if (rc)
		return -rc;
	rt->io->blk.nthreads++;
	return 0;
}

int herd_blocking(int (*fn)(void *), void *arg)
{
	herd__worker *w;
	herd__task *t;
	if (!fn)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	herd__rt *rt = w->rt;
	struct herd__job job = {.fn = fn, .arg = arg, .task = t};
	herd__mutex_lock(&rt->io->blk.lock);
	if (rt->io->blk.nidle == 0 && rt->io->blk.nthreads < rt->io->blk.max &&
	    helper_start_locked(rt) < 0 && rt->io->blk.nthreads == 0) {
		herd__mutex_unlock(&rt->io->blk.lock);
		return -EAGAIN;
	}
	if (rt->io->blk.tail)
		rt->io->blk.tail->next = &job;
	else
		rt->io->blk.head = &job;
	rt->io->blk.tail = &job;
	atomic_fetch_add_explicit(&rt->io->blk.seq, 1, mo_release);
	herd__futex_wake(&rt->io->blk.seq, 1);
	herd__waits_on(w->cur, HERD__WHY_BLOCKING, NULL);
	herd__wait(&w, &rt->io->blk.lock, HERD_FOREVER, false);
	return job.result;
}

void herd__blocking_fini(herd__rt *rt)
{
	herd__mutex_lock(&rt->io->blk.lock);
	rt->io->blk.stop = true;
	unsigned n = rt->io->blk.nthreads;
	atomic_fetch_add_explicit(&rt->io->blk.seq, 1, mo_release);
	herd__mutex_unlock(&rt->io->blk.lock);
	herd__futex_wake(&rt->io->blk.seq, INT32_MAX);
	for (unsigned i = 0; i < n; i++)
		pthread_join(rt->io->blk.threads[i], NULL);
	free(rt->io->blk.threads);
	rt->io->blk.threads = NULL;
	rt->io->blk.nthreads = 0;
}
