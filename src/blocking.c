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
#include "internal.h"

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
	herd__mutex_lock(&rt->blk.lock);
	for (;;) {
		struct herd__job *j = rt->blk.head;
		if (!j) {
			if (rt->blk.stop)
				break;
			uint32_t seq = atomic_load_explicit(&rt->blk.seq, mo_acquire);
			rt->blk.nidle++;
			herd__mutex_unlock(&rt->blk.lock);
			herd__futex_wait(&rt->blk.seq, seq, -1);
			herd__mutex_lock(&rt->blk.lock);
			rt->blk.nidle--;
			continue;
		}
		rt->blk.head = j->next;
		if (!rt->blk.head)
			rt->blk.tail = NULL;
		herd__mutex_unlock(&rt->blk.lock);
		j->result = j->fn(j->arg);
		herd__task *t = j->task;
		if (herd__wait_claim(t)) /* firm and without deadline: always */
			herd__wait_finish(t, 0);
		herd__mutex_lock(&rt->blk.lock);
	}
	herd__mutex_unlock(&rt->blk.lock);
	return NULL;
}

/* Starts a helper; blk.lock held. 0 or -errno. */
static int helper_start_locked(herd__rt *rt)
{
	if (!rt->blk.threads) {
		rt->blk.threads = calloc(rt->blk.max, sizeof *rt->blk.threads);
		if (!rt->blk.threads)
			return -ENOMEM;
	}
	int rc = pthread_create(&rt->blk.threads[rt->blk.nthreads], NULL, helper_main, rt);
	if (rc)
		return -rc;
	rt->blk.nthreads++;
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
	herd__mutex_lock(&rt->blk.lock);
	if (rt->blk.nidle == 0 && rt->blk.nthreads < rt->blk.max &&
	    helper_start_locked(rt) < 0 && rt->blk.nthreads == 0) {
		herd__mutex_unlock(&rt->blk.lock);
		return -EAGAIN;
	}
	if (rt->blk.tail)
		rt->blk.tail->next = &job;
	else
		rt->blk.head = &job;
	rt->blk.tail = &job;
	atomic_fetch_add_explicit(&rt->blk.seq, 1, mo_release);
	herd__futex_wake(&rt->blk.seq, 1);
	herd__wait(&w, &rt->blk.lock, HERD_FOREVER, false);
	return job.result;
}

void herd__blocking_fini(herd__rt *rt)
{
	herd__mutex_lock(&rt->blk.lock);
	rt->blk.stop = true;
	unsigned n = rt->blk.nthreads;
	atomic_fetch_add_explicit(&rt->blk.seq, 1, mo_release);
	herd__mutex_unlock(&rt->blk.lock);
	herd__futex_wake(&rt->blk.seq, INT32_MAX);
	for (unsigned i = 0; i < n; i++)
		pthread_join(rt->blk.threads[i], NULL);
	free(rt->blk.threads);
	rt->blk.threads = NULL;
	rt->blk.nthreads = 0;
}
