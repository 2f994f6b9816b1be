/*
 * blocking.c - calls that block a thread, kept away from the workers: the
 * helper threads of herd_blocking, and the monitor that notices a worker
 * stuck in one task.
 *
 * Helpers. herd_blocking queues a job (on the calling task's stack) and
 * parks the task firmly; an idle helper takes the job, runs it, stores the
 * result and readies the task (from a thread that is not a worker, so
 * through the global queue). Helpers start on demand, up to the configured
 * maximum, and sleep on a futex (`seq`) when there is no job; they end with
 * the runtime. The job is the task's until it is readied: the helper does
 * not touch it after herd__wait_finish.
 *
 * The monitor (after Go's sysmon). A thread that looks at the workers every
 * stall/4 while any of them runs (backing off to MONITOR_IDLE_MAX when all
 * are idle). A worker whose `progress` (its scheduling round) has not moved
 * for stall_ns while tasks wait in its queue is stuck: a task computes
 * without yielding, or blocks the thread. The monitor moves those tasks to
 * the global queue and wakes an idle worker to run them
 * (herd__sched_rescue). If every worker is stuck, it says so once on
 * stderr. It also polls descriptors that nobody has polled for a while,
 * retries the draining of process groups (proc.c), and wakes an idle
 * worker for a timer that nobody has fired a millisecond after its time
 * (a task ran long on the worker that would have): workers set its alarm
 * for that when no worker sleeps on the timers (sched.c).
 *
 * Locks: blk.lock protects the job queue and the helper counts; it is an
 * object lock (level 2). The monitor takes no lock of its own.
 */
#include "internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* The monitor's longest sleep while every worker is idle. */
#define MONITOR_IDLE_MAX (50 * HERD_MSEC)

struct herd__job {
	int (*fn)(void *);
	void *arg;
	int result;
	herd__task *task;
	struct herd__job *next;
};

/* Blocks asynchronous signals in the calling thread, as workers do. */
static void block_signals(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

static void *helper_main(void *arg)
{
	herd__rt *rt = arg;
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
	sigset_t old;
	block_signals(&old);
	int rc = pthread_create(&rt->blk.threads[rt->blk.nthreads], NULL, helper_main, rt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
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

/* ------------------------------------------------------------------ */
/* The monitor                                                        */
/* ------------------------------------------------------------------ */

struct seen {
	uint32_t progress;
	int64_t since;      /* when progress last moved */
};

/* Looks at every worker; returns how many are stuck. */
static unsigned check_workers(herd__rt *rt, struct seen *seen, int64_t now)
{
	unsigned stuck = 0;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		herd__worker *w = rt->workers[i];
		uint32_t p = atomic_load_explicit(&w->progress, mo_relaxed);
		if (p != seen[i].progress || !herd__sched_busy(w)) {
			seen[i].progress = p;
			seen[i].since = now;
			continue;
		}
		if (now - seen[i].since < rt->stall_ns)
			continue;
		/* herd's own long calls (a child's exec) are not the
		 * program's fault, but their queue moves all the same. */
		if (!atomic_load_explicit(&w->in_syscall, mo_relaxed))
			stuck++;
		herd__sched_rescue(w);
	}
	return stuck;
}

static void *monitor_main(void *arg)
{
	herd__rt *rt = arg;
	struct seen *seen = calloc(rt->nworkers, sizeof *seen);
	int64_t delay = rt->stall_ns / 4, last_sweep = 0;
	bool warned = false;
	while (!atomic_load_explicit(&rt->mon.stop, mo_acquire)) {
		int64_t now = herd_now();
		if (rt->mon.alarm.fd >= 0) {
			if (herd__alarm_wait(&rt->mon.alarm, now + delay))
				herd__alarm_clear(&rt->mon.alarm);
		} else {
			herd__futex_wait(&rt->mon.stop, 0, now + delay);
		}
		now = herd_now();
		unsigned stuck = seen ? check_workers(rt, seen, now) : 0;
		if (stuck == rt->nworkers && !warned) {
			warned = true;
			fprintf(stderr, "herd: every worker has run the same task for "
					"over %lld ms while others wait; a task is blocking "
					"its thread (use herd_blocking) or computing without "
					"herd_yield\n", (long long)(rt->stall_ns / HERD_MSEC));
		}
		if (herd__poll_due(rt))
			herd__poll_run(rt, 0);
		herd__timers_unwatched(rt, now);
		herd__proc_escalate_all(rt);
		herd__proc_drain_all(rt);
		/* Strays that left their groups come back to us now and then
		 * (their parent died): a sweep a second, while a child that
		 * has exited left something alive in its cgroup. */
		if (now - last_sweep >= HERD_SEC &&
		    atomic_exchange_explicit(&rt->proc.strays, false, mo_relaxed)) {
			last_sweep = now;
			herd__proc_sweep(rt);
		}
		bool idle = atomic_load_explicit(&rt->nidle, mo_relaxed) == rt->nworkers;
		delay = idle ? (delay * 2 < MONITOR_IDLE_MAX ? delay * 2 : MONITOR_IDLE_MAX)
			     : rt->stall_ns / 4;
	}
	free(seen);
	return NULL;
}

void herd__monitor_wake_by(herd__rt *rt, int64_t when)
{
	/* Without an alarm, the monitor's tick (stall_ns / 4 while a worker
	 * is busy) has to do. */
	herd__alarm_set(&rt->mon.alarm, when);
}

int herd__monitor_start(herd__rt *rt)
{
	/* Closed with the runtime (runtime.c), not when the monitor stops:
	 * workers may still set it then. */
	herd__alarm_init(&rt->mon.alarm);
	sigset_t old;
	block_signals(&old);
	int rc = pthread_create(&rt->mon.thread, NULL, monitor_main, rt);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	rt->mon.started = rc == 0;
	return -rc;
}

void herd__monitor_stop(herd__rt *rt)
{
	if (!rt->mon.started)
		return;
	atomic_store_explicit(&rt->mon.stop, 1, mo_release);
	herd__futex_wake(&rt->mon.stop, 1);
	herd__alarm_set(&rt->mon.alarm, 0); /* rings at once */
	pthread_join(rt->mon.thread, NULL);
	rt->mon.started = false;
}
