/*
 * monitor.c - the supervisor: the thread that called herd_run, which runs
 * no task. It watches the workers (after Go's sysmon), hands the process's
 * signals on (signal.c), reaps the orphans that come to herd (orphan.c),
 * and at the end of the run ends the root scope's processes (proc.c).
 *
 * Why herd_run's own thread, and not a worker: being the main thread in
 * the usual case, it is the thread the kernel prefers for the process's
 * signals, so a handler runs there, idle, rather than on a task's small
 * stack in the middle of a task; and it is the thread that orphans are
 * reparented to, which lets herd tell them from the program's own
 * children (orphan.c).
 *
 * The watch. Every stall/4 while any worker runs (backing off to
 * MONITOR_IDLE_MAX when all are idle), a worker whose `progress` (its
 * scheduling round) has not moved for stall_ns while tasks wait in its
 * queue is stuck: a task computes without yielding, or blocks the thread.
 * The supervisor moves those tasks to the global queue and wakes an idle
 * worker to run them (herd__sched_rescue). If every worker is stuck, it
 * says so once on stderr, but only for threads that were seen computing
 * or blocked in the kernel (really_stuck): on a loaded machine a thread
 * kept off the CPU for stall_ns is neither, and the line would be false. It also polls descriptors that nobody has
 * polled for a while, retries the draining of process groups (proc.c),
 * and wakes an idle worker for a timer that nobody has fired a
 * millisecond after its time (a task ran long on the worker that would
 * have): workers set its alarm for that when no worker sleeps on the
 * timers (core/idle.c). And it gives a task that could get no stack another
 * try (a task that ends does too, but none may end).
 *
 * Sleeping. It sleeps in herd__alarm_wait on its alarm and its bell: the
 * bell is rung by herd__shutdown and by the signal handler; it reads the
 * bell's count before it looks at what it waits for, so no ring is lost.
 *
 * Locks: none of its own (mon.last_sweep and mon.last_orphans are the
 * supervisor's alone); it takes the others' as any thread does.
 */
#include "run/run.h"

#include <stdio.h>
#include <stdlib.h>

/* The longest sleep while every worker is idle. */
#define MONITOR_IDLE_MAX (50 * HERD_MSEC)
/* How often strays that left their groups are looked for, at most, while
 * a child that has exited left something alive in its cgroup. */
#define SWEEP_EVERY (1 * HERD_SEC)
/* How often orphans are looked for (orphan.c). */
#define ORPHANS_EVERY (200 * HERD_MSEC)
/* The step of a run's end after a signal (signal.c). */
#define ENDING_STEP (1 * HERD_MSEC)

struct seen {
	uint32_t progress;
	int64_t since;      /* when progress last moved */
	int64_t cpu0, at0;  /* its thread's CPU time when first seen stuck, and
			     * when (at0 0: not yet) */
};

/*
 * Whether a worker whose task has not switched for stall_ns is really
 * stuck, as the warning says: its thread computed (its CPU time grew by
 * half the time since it was first seen stuck, or more), or sleeps in the
 * kernel (blocked in a system call). A thread kept off the CPU by a
 * loaded machine does neither and is not: its task would have switched
 * had it run. The first look only takes the CPU time.
 */
static bool really_stuck(herd__worker *w, struct seen *sn, int64_t now)
{
	int tid = atomic_load_explicit(&w->tid, mo_relaxed);
	int64_t cpu = tid ? herd__os_thread_cpu_ns(tid) : -1;
	if (cpu < 0)
		return true; /* cannot tell: as before */
	if (!sn->at0) {
		sn->cpu0 = cpu;
		sn->at0 = now;
		return false;
	}
	if (2 * (cpu - sn->cpu0) >= now - sn->at0)
		return true;
	return herd__os_thread_sleeping(tid) == 1;
}

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
			seen[i].at0 = 0;
			continue;
		}
		if (now - seen[i].since < rt->stall_ns)
			continue;
		/* herd's own long calls (a child's exec) are not the
		 * program's fault, but their queue moves all the same. */
		if (!atomic_load_explicit(&w->in_syscall, mo_relaxed) &&
		    really_stuck(w, &seen[i], now))
			stuck++;
		/* Alone, nobody else could run the queue: moving it to the
		 * global queue would only reorder it (timers fire in deadline
		 * order through the local queue). */
		if (rt->nworkers > 1) {
			herd__sched_rescue(w);
			if (rt->trace)
				herd__trace_any(rt, HERD__TR_MONITOR, HERD__TR_MON_RESCUE,
						w->index, 0, NULL, 0);
		}
	}
	return stuck;
}

/* The watch's round of chores. */
static void chores(herd__rt *rt, int64_t now)
{
	if (herd__poll_due(rt))
		herd__poll_run(rt, 0);
	herd__timers_unwatched(rt, now);
	herd__sched_retry_stackless(rt); /* no task may end to retry it */
	herd__proc_escalate_all(rt);
	herd__proc_drain_all(rt);
	herd__fd_recheck(rt, now);
	/* Strays that left their groups come back to us now and then (their
	 * parent died): a sweep a second, while a child that has exited
	 * left something alive in its cgroup. */
	if (now - rt->run->last_sweep >= SWEEP_EVERY &&
	    atomic_exchange_explicit(&rt->proc->strays, false, mo_relaxed)) {
		rt->run->last_sweep = now;
		herd__proc_sweep(rt);
	}
	if (now - rt->run->last_orphans >= ORPHANS_EVERY) {
		rt->run->last_orphans = now;
		herd__orphans_reap(rt);
	}
}

void herd__supervise(herd__rt *rt)
{
	struct seen *seen = calloc(rt->nworkers, sizeof *seen);
	int64_t delay = rt->stall_ns / 4;
	bool warned = false;
	for (;;) {
		uint32_t rung = atomic_load_explicit(&rt->mon.bell.rung, mo_seq_cst);
		bool ending = herd__signal_ending(rt);
		if (atomic_load_explicit(&rt->shutdown, mo_seq_cst) && !ending)
			break;
		int64_t now = herd_now();
		if (herd__alarm_wait(&rt->mon.alarm, &rt->mon.bell, rung,
				     now + (ending ? ENDING_STEP : delay)))
			herd__alarm_clear(&rt->mon.alarm);
		now = herd_now();
		atomic_store_explicit(&rt->coarse_ms,
				      (uint32_t)((now - rt->start_ns) / HERD_MSEC), mo_relaxed);
		herd__signal_dispatch(rt, now); /* may end the process */
		unsigned stuck = seen ? check_workers(rt, seen, now) : 0;
		if (stuck == rt->nworkers && !warned) {
			warned = true;
			if (rt->trace)
				herd__trace_any(rt, HERD__TR_MONITOR, HERD__TR_MON_STUCK,
						0, 0, NULL, 0);
			fprintf(stderr, "herd: every worker has run the same task for "
					"over %lld ms while others wait; a task is blocking "
					"its thread (use herd_blocking) or computing without "
					"herd_yield\n", (long long)(rt->stall_ns / HERD_MSEC));
		}
		chores(rt, now);
		herd__deadlock_check(rt, now);
		herd__trace_flush(rt);
		bool idle = atomic_load_explicit(&rt->nidle, mo_relaxed) == rt->nworkers;
		delay = idle ? (delay * 2 < MONITOR_IDLE_MAX ? delay * 2 : MONITOR_IDLE_MAX)
			     : rt->stall_ns / 4;
	}
	free(seen);
}
