/*
 * idle.c - idle workers and the sleeper: finding work when the queues run
 * dry (stealing, spinning), parking and waking workers, and the one idle
 * worker that sleeps in the poller until the earliest timer.
 *
 * Parking workers without losing wakeups (the Dekker pattern; every access
 * named here is seq_cst, so they are totally ordered):
 *   - Making work available (herd__ready, spawning, timers): publish the
 *     task (runnext exchange, global queue size, or timer_next), then read
 *     nidle and nspinning; if some worker is idle and none is spinning,
 *     wake one (wakep), which then spins.
 *   - Going idle: stop spinning (nspinning--), join the idle list
 *     (nidle++), then look at every queue, timer_next and shutdown once
 *     more; sleep only if all are empty.
 * Either the publisher sees the idle worker, or the idle worker sees the
 * work. A spinning worker that finds work stops spinning, and if it was the
 * last spinner it wakes another (there may be more work): so bursts of work
 * spread to all workers, one wakeup at a time.
 *
 * Timers (timer.c) are fired by whichever worker notices them due: a busy
 * worker every 16 scheduling rounds, an idle one before it sleeps. One idle
 * worker, the sleeper, sleeps in the poller (poll.c) only until the
 * earliest deadline; the others sleep on their futex. A timer that becomes
 * the earliest sets the poller's alarm if the sleeper is in epoll_wait (no
 * wakeup until it is due; the sleeper reads timer_next again when it
 * rings), else wakes the sleeper to sleep again on the new deadline. With
 * no sleeper, a worker that adds a timer fires it itself or sleeps on it
 * when it runs dry; another thread wakes an idle worker. The sleeper
 * claims the role (CAS on timer_sleeper) and then reads timer_next;
 * timer_add writes timer_next and then reads timer_sleeper: one of them
 * sees the other. The sleeper that leaves to run tasks hands the role to
 * nobody. Whoever leaves the timers unwatched (a leaving sleeper, a kick
 * that woke nobody) sets the monitor's alarm TIMER_LATE_NS after the
 * earliest, so that if a task runs so long that it is late, the monitor
 * wakes an idle worker for it.
 *
 * The sleeper waits in epoll_wait, not on its futex: it sets in_poll and
 * then reads its wake token; a waker stores the token and then
 * reads in_poll, ringing the poller's doorbell if it is set (both seq_cst,
 * so one sees the other). A new descriptor wait (herd__poll_watch) raises
 * poll.waiters and then reads timer_sleeper and in_poll, against the
 * sleeper's claim of the role: a sleeper in epoll_wait sees the new
 * registration by itself.
 *
 * Readying quietly. Tasks that a worker's own poll readies go to its own
 * queue without a wakep each (w->quiet, owner-only): the worker runs the
 * first itself, and wakes another only if there is a second.
 *
 * The poller is reached through rt->netpoll, a plain pointer: io/poll.c
 * sets it while the runtime is made, before any worker thread starts
 * (pthread_create orders it).
 *
 * Locks: idle_lock (a leaf) protects the idle list and each worker's
 * `idle` flag.
 */
#include "core/sched.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#define STEAL_ROUNDS 4
/* A spinning worker reads the clock once per this many spins. */
#define CLOCK_EVERY 32u
/* How long a spinning worker watches the queues before it sleeps. */
#define SPIN_NS (20 * HERD_USEC)
/* How late the earliest timer may be, with nobody sleeping on it, before
 * the monitor wakes an idle worker for it. */
#define TIMER_LATE_NS (1 * HERD_MSEC)

/* ------------------------------------------------------------------ */
/* Idle workers                                                       */
/* ------------------------------------------------------------------ */

static void idle_push(herd__rt *rt, herd__worker *w)
{
	herd__mutex_lock(&rt->idle_lock);
	w->idle_next = rt->idle_list;
	rt->idle_list = w;
	w->idle = true;
	atomic_fetch_add_explicit(&rt->nidle, 1, mo_seq_cst);
	herd__mutex_unlock(&rt->idle_lock);
}

/* Takes w off the idle list; false if a waker already did (and will
 * send it a token). */
static bool idle_remove(herd__rt *rt, herd__worker *w)
{
	bool was = false;
	herd__mutex_lock(&rt->idle_lock);
	if (w->idle) {
		herd__worker **p = &rt->idle_list;
		while (*p != w)
			p = &(*p)->idle_next;
		*p = w->idle_next;
		w->idle = false;
		atomic_fetch_sub_explicit(&rt->nidle, 1, mo_seq_cst);
		was = true;
	}
	herd__mutex_unlock(&rt->idle_lock);
	return was;
}

static herd__worker *idle_pop(herd__rt *rt)
{
	herd__mutex_lock(&rt->idle_lock);
	herd__worker *w = rt->idle_list;
	if (w) {
		rt->idle_list = w->idle_next;
		w->idle = false;
		atomic_fetch_sub_explicit(&rt->nidle, 1, mo_seq_cst);
	}
	herd__mutex_unlock(&rt->idle_lock);
	return w;
}

static void wake_worker(herd__worker *v, uint32_t token)
{
	/* Dekker with worker_sleep: it sets in_poll, then reads the token. */
	atomic_store_explicit(&v->wake_token, token, mo_seq_cst);
	if (atomic_load_explicit(&v->in_poll, mo_seq_cst))
		v->rt->netpoll->interrupt(v->rt);
	else
		herd__futex_wake(&v->wake_token, 1);
}

/* Work was published: wakes an idle worker unless one is already looking. */
void herd__wakep(herd__rt *rt)
{
	if (atomic_load_explicit(&rt->nidle, mo_seq_cst) == 0)
		return;
	uint32_t zero = 0;
	if (atomic_load_explicit(&rt->nspinning, mo_seq_cst) != 0 ||
	    !atomic_compare_exchange_strong_explicit(&rt->nspinning, &zero, 1,
						     mo_seq_cst, mo_relaxed))
		return;
	herd__worker *v = idle_pop(rt);
	if (!v) {
		atomic_fetch_sub_explicit(&rt->nspinning, 1, mo_seq_cst);
		return;
	}
	wake_worker(v, HERD__WAKE_SPIN);
}

bool herd__wake_for_timers(herd__rt *rt)
{
	int s = atomic_load_explicit(&rt->timer_sleeper, mo_seq_cst);
	herd__worker *v;
	if (s) {
		v = rt->workers[s - 1];
		if (!idle_remove(rt, v))
			return false; /* awake already, and leaving to run tasks */
	} else {
		if (atomic_load_explicit(&rt->nidle, mo_seq_cst) == 0)
			return false; /* a busy worker fires it, or sleeps on it */
		if (!(v = idle_pop(rt)))
			return false;
	}
	wake_worker(v, HERD__WAKE_CHECK);
	return true;
}

void herd__timer_kick(herd__rt *rt, int64_t when)
{
	/* The sleeper in epoll_wait gets its alarm set instead of a wakeup:
	 * a thread woken only to sleep again cost a process start a fifth
	 * of its time when every wait had a deadline. */
	int s = atomic_load_explicit(&rt->timer_sleeper, mo_seq_cst);
	if (s && atomic_load_explicit(&rt->workers[s - 1]->in_poll, mo_seq_cst) &&
	    rt->netpoll->wake_by(rt, when))
		return;
	/* With no sleeper, a worker that adds a timer is busy: it fires the
	 * timer itself every few rounds, or sleeps on it once it runs dry
	 * (one that has become the sleeper since has read timer_next). */
	if ((s || !herd__self()) && herd__wake_for_timers(rt))
		return;
	/* Nobody was woken: a busy worker fires it. If a task runs so long
	 * meanwhile that the timer is late, the monitor gets up for it. */
	herd__monitor_wake_by(rt, when + TIMER_LATE_NS);
}

void herd__timers_unwatched(herd__rt *rt, int64_t now)
{
	if (atomic_load_explicit(&rt->timer_sleeper, mo_seq_cst))
		return; /* it watches them, and hands them on when it leaves */
	int64_t next = atomic_load_explicit(&rt->timer_next, mo_seq_cst);
	if (next == INT64_MAX)
		return;
	if (now - next >= TIMER_LATE_NS)
		herd__wake_for_timers(rt);
	else
		herd__monitor_wake_by(rt, next + TIMER_LATE_NS);
}

static bool work_visible(herd__rt *rt)
{
	if (atomic_load_explicit(&rt->gq_size, mo_seq_cst) ||
	    atomic_load_explicit(&rt->shutdown, mo_seq_cst))
		return true;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		herd__worker *v = rt->workers[i];
		if (atomic_load_explicit(&v->rq_tail, mo_seq_cst) !=
			    atomic_load_explicit(&v->rq_head, mo_seq_cst) ||
		    atomic_load_explicit(&v->runnext, mo_seq_cst))
			return true;
	}
	int64_t next = atomic_load_explicit(&rt->timer_next, mo_seq_cst);
	return next != INT64_MAX && next <= herd_now();
}

static void stop_spinning(herd__worker *w)
{
	w->spinning = false;
	if (atomic_fetch_sub_explicit(&w->rt->nspinning, 1, mo_seq_cst) == 1)
		herd__wakep(w->rt);
}

/* Parks the worker until it is woken or (as the sleeper) the
 * earliest timer is due. */
static int poll_local(herd__worker *w, int64_t deadline);

static void worker_sleep(herd__worker *w)
{
	herd__rt *rt = w->rt;
	if (w->spinning) {
		w->spinning = false;
		atomic_fetch_sub_explicit(&rt->nspinning, 1, mo_seq_cst);
	}
	idle_push(rt, w);
	if (work_visible(rt) && idle_remove(rt, w))
		return;
	int64_t deadline = -1;
	int zero = 0;
	/* The first worker to go idle becomes the sleeper: it sleeps in the
	 * poller, until the earliest timer, even while no descriptor is
	 * waited on, so that a task that starts waiting for one need not wake
	 * anybody (poll.c sees new registrations in epoll_wait). */
	bool sleeper = atomic_compare_exchange_strong_explicit(
		&rt->timer_sleeper, &zero, (int)w->index + 1, mo_seq_cst, mo_relaxed);
	bool poll = sleeper, listed = true;
	while (!atomic_load_explicit(&w->wake_token, mo_acquire)) {
		if (sleeper && listed) {
			/* First, and again after an alarm (a timer added
			 * since may be earlier than the deadline). */
			int64_t next = atomic_load_explicit(&rt->timer_next, mo_seq_cst);
			if (next != INT64_MAX && (deadline < 0 || next < deadline))
				deadline = next;
		}
		if (deadline >= 0 && herd_now() >= deadline) {
			if (idle_remove(rt, w))
				break;
			listed = false; /* a waker took us off the list */
			deadline = -1;
			continue;
		}
		if (!poll) {
			herd__futex_wait(&w->wake_token, 0, deadline);
			continue;
		}
		/* The sleeper waits for descriptors too (poll.c). */
		atomic_store_explicit(&w->in_poll, 1, mo_seq_cst);
		int n = 0;
		if (!atomic_load_explicit(&w->wake_token, mo_seq_cst))
			n = poll_local(w, deadline);
		atomic_store_explicit(&w->in_poll, 0, mo_seq_cst);
		if (n > 0) {
			if (idle_remove(rt, w))
				break;
			listed = false; /* a waker took us off the list */
			deadline = -1;
		}
	}
	if (sleeper) {
		atomic_store_explicit(&rt->timer_sleeper, 0, mo_seq_cst);
		/* The timers are this worker's to fire now, in its loop; if a
		 * task runs so long that one is late, the monitor gets up. */
		int64_t next = atomic_load_explicit(&rt->timer_next, mo_seq_cst);
		if (next != INT64_MAX)
			herd__monitor_wake_by(rt, next + TIMER_LATE_NS);
	}
	uint32_t token = atomic_exchange_explicit(&w->wake_token, 0, mo_acquire);
	if (token == HERD__WAKE_SPIN)
		w->spinning = true; /* the waker counted us in nspinning */
	/* Leaving to run tasks, the sleeper hands its role to nobody (as in
	 * Go): waking another worker to watch after every event cost a
	 * process start a tenth of its time. */
}

/*
 * Polls for a worker that is about to look for work: the tasks the events
 * ready go to its own queue without waking another worker for each, as it
 * runs the first itself; only a second one is worth a wakeup (Go's
 * findrunnable takes the first goroutine netpoll returns likewise).
 */
static int poll_local(herd__worker *w, int64_t deadline)
{
	w->quiet = true;
	w->quiet_readied = 0;
	int n = w->rt->netpoll->run(w->rt, deadline);
	w->quiet = false;
	if (w->quiet_readied > 1)
		herd__wakep(w->rt);
	return n;
}

void herd__poll_watch(herd__rt *rt)
{
	/* Called after a wait was registered (poll.waiters raised). If the
	 * sleeper is in epoll_wait already, it sees the new registration.
	 * If the caller's worker has nothing else to run, it becomes the
	 * sleeper itself once the caller parks (as Go's netpoller does: a
	 * registration wakes nobody). Only a worker with more work queued
	 * gets another idle worker to watch. */
	int s = atomic_load_explicit(&rt->timer_sleeper, mo_seq_cst);
	if (s && atomic_load_explicit(&rt->workers[s - 1]->in_poll, mo_seq_cst))
		return;
	herd__worker *w = herd__self();
	if (w && !herd__sched_busy(w) &&
	    !atomic_load_explicit(&rt->gq_size, mo_relaxed))
		return;
	herd__wake_for_timers(rt);
}

static herd__task *steal_work(herd__worker *w)
{
	herd__rt *rt = w->rt;
	unsigned n = rt->nworkers;
	if (n == 1)
		return NULL;
	if (!w->spinning) {
		/* Enough workers are looking already: half the busy ones. */
		uint32_t spinning = atomic_load_explicit(&rt->nspinning, mo_relaxed);
		uint32_t idle = atomic_load_explicit(&rt->nidle, mo_relaxed);
		if (2 * spinning >= n - idle)
			return NULL;
		w->spinning = true;
		atomic_fetch_add_explicit(&rt->nspinning, 1, mo_seq_cst);
	}
	for (int round = 0; round < STEAL_ROUNDS; round++) {
		w->steal_rand = w->steal_rand * 6364136223846793005ull + 1442695040888963407ull;
		unsigned start = (unsigned)(w->steal_rand >> 33) % n;
		for (unsigned i = 0; i < n; i++) {
			herd__worker *v = rt->workers[(start + i) % n];
			herd__task *t;
			if (v != w && (t = herd__runq_steal(w, v, round == STEAL_ROUNDS - 1)))
				return t;
		}
		herd__task *t = herd__global_get(w);
		if (t)
			return t;
	}
	return NULL;
}

/*
 * A spinning worker that found nothing watches the queues a little longer
 * before it sleeps: work often comes back within microseconds (a task
 * spawning in a loop), and a sleeping worker costs its waker a system call.
 * True if work appeared.
 */
static bool spin_for_work(herd__worker *w)
{
	herd__rt *rt = w->rt;
	int64_t until = herd_now() + SPIN_NS;
	for (unsigned i = 1; w->spinning; i++) {
		if (atomic_load_explicit(&rt->gq_size, mo_relaxed) ||
		    atomic_load_explicit(&rt->shutdown, mo_relaxed))
			return true;
		for (unsigned k = 0; k < rt->nworkers; k++) {
			herd__worker *v = rt->workers[k];
			if (atomic_load_explicit(&v->rq_tail, mo_relaxed) !=
			    atomic_load_explicit(&v->rq_head, mo_relaxed))
				return true;
		}
		herd__cpu_relax();
		if (i % CLOCK_EVERY == 0 && herd_now() >= until)
			return false;
	}
	return false;
}

/* The scheduler loop's search: NULL only when the runtime shuts down. */
herd__task *herd__find_runnable(herd__worker *w)
{
	for (;;) {
		herd__task *t = herd__pick_local(w);
		/* Descriptors before stealing, as Go's findrunnable: a worker
		 * that finds its task there has not started spinning, so it
		 * does not wake another to spin in its place. */
		if (!t && w->rt->netpoll->waiters(w->rt) &&
		    poll_local(w, 0) > 0)
			continue;
		if (!t)
			t = steal_work(w);
		if (t) {
			if (w->spinning)
				stop_spinning(w);
			return t;
		}
		if (herd__timers_poll(w))
			continue;
		if (atomic_load_explicit(&w->rt->shutdown, mo_seq_cst))
			return NULL;
		/* Work that comes back within microseconds is worth a spin;
		 * but while descriptors are waited on and nobody sleeps in the
		 * poller, the next work is likelier an event: sleep there. */
		if (!(w->rt->netpoll->waiters(w->rt) &&
		      !atomic_load_explicit(&w->rt->timer_sleeper, mo_relaxed)) &&
		    spin_for_work(w))
			continue;
		worker_sleep(w);
	}
}

void herd__shutdown(herd__rt *rt)
{
	atomic_store_explicit(&rt->shutdown, 1, mo_seq_cst);
	herd__worker *v;
	while ((v = idle_pop(rt)))
		wake_worker(v, HERD__WAKE_CHECK);
	herd__monitor_ring(rt); /* the supervisor ends the run */
}

