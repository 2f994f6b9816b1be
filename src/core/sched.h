/*
 * sched.h - the scheduler's own header, for sched.c, runq.c and idle.c
 * (and the run queue's unit tests): the owner's fast paths on its run
 * queue, inline, and what the three files call of each other.
 */
#ifndef HERD_CORE_SCHED_H
#define HERD_CORE_SCHED_H

#include "core/core.h"

#include <stdlib.h>
#include <string.h>

/* Clears the runner's line of a task that starts on stack lo (task.c's
 * herd__task_start, and herd__task_inherit). */
static inline void herd__task_begin(herd__worker *w, herd__task *t, char *lo,
				    bool guarded)
{
	memset(&t->id, 0, offsetof(herd__task, argbuf) - offsetof(herd__task, id));
	t->id = herd__next_id(w);
	t->stack = lo;
	if (!guarded)
		t->flags |= HERD__TASK_UNGUARDED;
}

/* Frees a task object (w: the caller's worker, or NULL): into w's cache,
 * unless it has an argument of its own size. Inline, as the next: as
 * calls, their frames cost a spawn loop a tenth. */
static inline void herd__task_free(herd__worker *w, herd__task *t)
{
	if (!w || (t->flags & HERD__TASK_BIG_ARG) ||
	    !herd__cache_put(&w->task_cache, &w->rt->task_depot, t))
		free(t);
}

/* Gives a task that has never run the stack of `dead`, which has ended,
 * and frees `dead` (herd__exit_next). */
static inline void herd__task_inherit(herd__worker *w, herd__task *dead, herd__task *t)
{
	herd__task_begin(w, t, dead->stack, !(dead->flags & HERD__TASK_UNGUARDED));
	/* Not NULL: the task counts as started. Its registers are never
	 * loaded from here: it is started by a call, not by a switch. */
	t->ctx.sp = dead->ctx.sp;
#if HERD_ASAN
	t->ctx.stack_lo = dead->ctx.stack_lo;
	t->ctx.stack_size = dead->ctx.stack_size;
#endif
#if HERD_TSAN
	t->ctx.tsan_fiber = dead->ctx.tsan_fiber; /* the same stack, the same fiber */
#endif
	herd__task_free(w, dead);
}

/* A run of at most this many tasks taken from runnext before the ring gets
 * a turn, so two tasks waking each other cannot starve the rest. */
#define NEXT_STREAK_MAX 64u

/* The ring is full: moves its older half and t to the global queue.
 * False if a thief moved head meanwhile (the caller retries). */
bool herd__runq_put_slow(herd__worker *w, herd__task *t, uint32_t h);
/* Takes half of v's ring into buf (or, if take_next, its runnext when the
 * ring is empty, after a grace period). Returns how many. */
uint32_t herd__runq_grab(herd__worker *v, herd__task **buf, bool take_next);
/* Steals from v into w's ring; returns one of the tasks to run. */
herd__task *herd__runq_steal(herd__worker *w, herd__worker *v, bool take_next);
/* Takes work from the global queue: one task to run, the rest into w's
 * ring. */
herd__task *herd__global_get(herd__worker *w);
/* Links first..last (n tasks) at the global queue's tail. */
void herd__global_put_list(herd__rt *rt, herd__task *first, herd__task *last, uint32_t n);
/* Wakes an idle worker to spin, if none spins (idle.c). */
void herd__wakep(herd__rt *rt);
/* Fires due timers; true if any fired (sched.c). */
bool herd__timers_poll(herd__worker *w);
/* Work for an idle worker: local, global, timers, the poller, stealing;
 * sleeps until there is some; NULL at shutdown (idle.c). */
herd__task *herd__find_runnable(herd__worker *w);
/* Runnable work that needs no stealing (sched.c). */
herd__task *herd__pick_local(herd__worker *w);

static inline void herd__runq_put(herd__worker *w, herd__task *t)
{
	for (;;) {
		uint32_t h = atomic_load_explicit(&w->rq_head, mo_acquire);
		uint32_t tl = atomic_load_explicit(&w->rq_tail, mo_relaxed);
		HERD__ASSERT(tl - h <= HERD__RUNQ);
		if (herd__likely(tl - h < HERD__RUNQ)) {
			atomic_store_explicit(&w->rq[tl % HERD__RUNQ], t, mo_relaxed);
			atomic_store_explicit(&w->rq_tail, tl + 1, mo_release);
			return;
		}
		if (herd__runq_put_slow(w, t, h))
			return;
	}
}

/* Puts t in runnext; the task it displaces goes to the back of the ring. */
static inline void herd__runq_put_next(herd__worker *w, herd__task *t)
{
	herd__task *old;
	if (w->alone) { /* no thief: a load and a store (see herd__worker) */
		old = atomic_load_explicit(&w->runnext, mo_relaxed);
		atomic_store_explicit(&w->runnext, t, mo_relaxed);
	} else {
		old = atomic_exchange_explicit(&w->runnext, t, mo_seq_cst);
	}
	if (old)
		herd__runq_put(w, old);
}

/* herd__runq_get for the only worker: the same order, no thief. */
static inline herd__task *runq_get_alone(herd__worker *w)
{
	herd__task *t = atomic_load_explicit(&w->runnext, mo_relaxed);
	if (t && w->next_streak < NEXT_STREAK_MAX) {
		atomic_store_explicit(&w->runnext, NULL, mo_relaxed);
		w->next_streak++;
		return t;
	}
	w->next_streak = 0;
	uint32_t h = atomic_load_explicit(&w->rq_head, mo_relaxed);
	if (h != atomic_load_explicit(&w->rq_tail, mo_relaxed)) {
		t = atomic_load_explicit(&w->rq[h % HERD__RUNQ], mo_relaxed);
		atomic_store_explicit(&w->rq_head, h + 1, mo_release);
		return t;
	}
	t = atomic_load_explicit(&w->runnext, mo_relaxed);
	if (t)
		atomic_store_explicit(&w->runnext, NULL, mo_relaxed);
	return t;
}

/* The owner takes a task: runnext first (within a streak), then the ring. */
static inline herd__task *herd__runq_get(herd__worker *w)
{
	if (w->alone)
		return runq_get_alone(w);
	herd__task *t = atomic_load_explicit(&w->runnext, mo_relaxed);
	if (t && w->next_streak < NEXT_STREAK_MAX &&
	    atomic_compare_exchange_strong_explicit(&w->runnext, &t, NULL,
						    mo_acquire, mo_relaxed)) {
		w->next_streak++;
		return t;
	}
	w->next_streak = 0;
	for (;;) {
		uint32_t h = atomic_load_explicit(&w->rq_head, mo_acquire);
		uint32_t tl = atomic_load_explicit(&w->rq_tail, mo_relaxed);
		if (h == tl)
			break;
		t = atomic_load_explicit(&w->rq[h % HERD__RUNQ], mo_relaxed);
		if (atomic_compare_exchange_weak_explicit(&w->rq_head, &h, h + 1,
							  mo_acq_rel, mo_relaxed))
			return t;
	}
	return atomic_exchange_explicit(&w->runnext, NULL, mo_acquire);
}

#endif /* HERD_CORE_SCHED_H */
