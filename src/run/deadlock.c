/*
 * deadlock.c - Go's "all goroutines are asleep - deadlock!": when every
 * task is parked and nothing can wake any of them, the supervisor says so,
 * with the task dump, and ends the run with HERD_EDEADLOCK.
 *
 * Nothing can wake a task when, all at once: every worker is idle and no
 * task waits in a run queue or for a stack; every live task is parked,
 * none in a helper thread's call or waiting for a descriptor of the budget
 * (the supervisor's recheck may free one); no timer is set (a deadline, a
 * sleep, a channel timer); nobody waits on a descriptor (the poller would
 * wake them, child processes' exits included); no child process is alive
 * or ending; no signal is delivered to a channel (herd_signal_notify: a
 * task waiting for Ctrl-C is not stuck). What herd cannot see is a thread
 * of the program's own that may still send, close or spawn: such a
 * program turns the check off (HERD_RUN_NO_DEADLOCK_CHECK).
 *
 * The state is looked at by the supervisor on each round, without
 * stopping anybody; it is a deadlock only when it has held, unchanged (no
 * worker has run a task, no task was spawned), for DEADLOCK_QUIET and over
 * DEADLOCK_ROUNDS rounds. A state in which nothing runs cannot change by
 * itself, so the wait only rules out catching a worker between two steps.
 *
 * What then: the report goes to stderr, and the root scope is canceled, so
 * that every cancelable wait returns HERD_ECANCELED and the tasks can end;
 * herd_run returns HERD_EDEADLOCK once they have. Tasks in waits that
 * cancellation does not end (a mutex, a once, a scope closing on such
 * tasks) stay stuck: when the check finds them so a second time, it says
 * so and ends the process with status 2, as Go does, once no process of
 * herd's is left (there are none: that is one of the conditions).
 *
 * Locks: none of its own (the state is the supervisor's); it takes the
 * registry locks through herd__registry_each and the process lock.
 */
#include "run/run.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define DEADLOCK_QUIET (200 * HERD_MSEC)
#define DEADLOCK_ROUNDS 3

struct census {
	int64_t parked;         /* registered tasks parked now */
	bool external;          /* one waits on something outside the tasks */
};

static void count_one(herd__task *t, void *arg)
{
	struct census *c = arg;
	uint8_t s = atomic_load_explicit(&t->wait, mo_acquire);
	if (s != HERD__WAIT_CANCELABLE && s != HERD__WAIT_FIRM)
		return;
	c->parked++;
	switch (atomic_load_explicit(&t->why, mo_relaxed)) {
	case HERD__WHY_BLOCKING:
	case HERD__WHY_FD_BUDGET:
	case HERD__WHY_FD:
	case HERD__WHY_PROC:
	case HERD__WHY_PROC_END:
	case HERD__WHY_SLEEP:
		c->external = true;
	}
}

/* Whether nothing runs and nothing outside the tasks can wake one. */
static bool all_asleep(herd__rt *rt)
{
	if (atomic_load_explicit(&rt->nidle, mo_seq_cst) != rt->nworkers ||
	    atomic_load_explicit(&rt->gq_size, mo_seq_cst) ||
	    atomic_load_explicit(&rt->nstackless, mo_seq_cst) ||
	    atomic_load_explicit(&rt->timer_next, mo_seq_cst) != INT64_MAX ||
	    rt->netpoll->waiters(rt) ||
	    atomic_load_explicit(&rt->shutdown, mo_seq_cst) || herd__signal_ending(rt))
		return false;
	for (unsigned i = 0; i < rt->nworkers; i++)
		if (herd__sched_busy(rt->workers[i]) ||
		    atomic_load_explicit(&rt->workers[i]->runnext, mo_seq_cst))
			return false;
	herd__mutex_lock(&rt->run->sig.lock);
	bool notified = rt->run->sig.nregs > 0;
	herd__mutex_unlock(&rt->run->sig.lock);
	if (notified)
		return false;
	if (atomic_load_explicit(&rt->proc->ready, mo_acquire)) {
		herd__mutex_lock(&rt->proc->lock);
		bool procs = !herd__list_empty(&rt->proc->live) || rt->proc->draining;
		herd__mutex_unlock(&rt->proc->lock);
		if (procs)
			return false;
	}
	int64_t live = herd__tasks_alive(rt);
	if (live <= 0)
		return false;
	struct census c = {0};
	herd__registry_each(rt, count_one, &c);
	return !c.external && c.parked == live;
}

/* What has moved since the last look: every worker's round, spawns. */
static uint64_t activity(herd__rt *rt)
{
	uint64_t sum = (uint64_t)atomic_load_explicit(&rt->st_foreign_spawned, mo_relaxed);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		herd__worker *w = rt->workers[i];
		sum += atomic_load_explicit(&w->progress, mo_relaxed);
		sum += (uint64_t)atomic_load_explicit(&w->st_spawned, mo_relaxed) << 32;
	}
	return sum;
}

static void report(herd__rt *rt, const char *headline)
{
	fflush(stdout); /* the program's output first, as it came */
	if (rt->trace)
		herd__trace_any(rt, HERD__TR_MONITOR, HERD__TR_MON_DEADLOCK, 0, 0, NULL, 0);
	herd__dump_write(rt, STDERR_FILENO, headline, NULL);
}

void herd__deadlock_check(herd__rt *rt, int64_t now)
{
	struct herd__deadlock *d = &rt->run->deadlock;
	if (rt->run->no_deadlock_check)
		return;
	if (!all_asleep(rt)) {
		d->rounds = 0;
		return;
	}
	uint64_t act = activity(rt);
	if (d->rounds == 0 || act != d->activity) {
		d->rounds = 1;
		d->since = now;
		d->activity = act;
		return;
	}
	if (++d->rounds < DEADLOCK_ROUNDS || now - d->since < DEADLOCK_QUIET)
		return;
	d->rounds = 0;
	if (!d->found) {
		d->found = true;
		report(rt, "herd: all tasks are asleep - deadlock!\n\n"
			   "herd: the root scope is canceled; herd_run returns "
			   "HERD_EDEADLOCK once the tasks have ended.");
		herd_scope_cancel(rt->root);
		return;
	}
	report(rt, "herd: all tasks are still asleep after their cancellation - "
		   "deadlock! They wait where cancellation does not reach (a mutex, "
		   "a once, a scope closing on such tasks); the program ends with "
		   "status 2.");
	herd__proc_end_cleanup(rt);
	herd__trace_flush(rt); /* HERD_TRACE's last round, up to the report */
	_exit(2);
}
