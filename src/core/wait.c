/*
 * wait.c - how a task parks until an object, a deadline or a cancellation
 * wakes it, and wait queues.
 *
 * The protocol. A parked task can be woken by three parties: the object it
 * waits on (a wait group reaching zero, a scope emptying, a channel; in a
 * select, any of several channels), its timer, or the cancellation of its
 * scope. Exactly one must win, and the winner alone readies the task. The
 * task's `wait` word decides it:
 *
 *   NONE --(task, before parking)--> CANCELABLE or FIRM
 *   CANCELABLE or FIRM --(CAS by a waker)--> WOKEN  (the winner writes
 *        wake_result, then readies the task)
 *   CANCELABLE --(CAS by the canceler)--> WOKEN
 *   WOKEN --(task, after it resumes)--> NONE
 *
 * A waker finds the task only while it is certainly in this wait: the
 * object's waker holds the object's lock with the waiter still queued; the
 * timer code holds the timer lock with the timer still in the heap; the
 * canceler holds the registry lock of the task (so the task cannot end)
 * and may claim only a CANCELABLE wait (so it cannot cut short a firm one,
 * such as closing a scope). A task woken by its timer or by cancellation
 * unqueues its waiter itself, under the object's lock; so an object's waker
 * leaves such a waiter queued (or unqueues it without touching anything
 * else: chan.c), and the object must not be freed while a waiter is queued
 * (herd_wg_free and herd_chan_free refuse, a closing scope waits).
 *
 * The registry. Cancellation must find the parked tasks of a scope, but
 * keeping a list of every task in its scope would cost a contended lock at
 * every spawn and every exit. Instead, a task joins its worker's registry
 * the first time it parks, and leaves it when it ends: tasks that never
 * block (most short ones) never touch it, and a task usually parks and ends
 * on the worker it started on, so the registry locks are rarely contended.
 * herd_scope_cancel marks the scopes, then walks every registry and wakes
 * the tasks parked in a canceled scope: O(tasks that have parked), which
 * is fine for something as rare as a cancellation. A task may name one
 * more scope whose cancellation ends its cancelable waits (wait_scope:
 * herd_proc_start waiting for descriptors to start a process in a scope
 * not its own, herd_proc_output waiting for such a process, a spawn
 * waiting for a slot of a limited scope); it clears it under its
 * registry's lock, which the walk holds while it looks at that scope, so
 * the scope may be closed as soon as the task has cleared it.
 *
 * Ordering. The task stores its wait state (seq_cst) before it releases the
 * object's lock, then reads its scope's `canceled` flag (seq_cst); the
 * canceler stores the flag (seq_cst) and then reads the state: one of them
 * sees the other. A solo worker (core.h) stores the state with a release
 * and a compiler barrier after it, and a canceler on another thread runs
 * herd__solo_fence between its store and its loads instead. The task may
 * be readied before it has finished switching away; sched.c's on_cpu flag
 * makes its new worker wait for the switch.
 *
 * Locks: wait queues are protected by their object's lock; each worker's
 * reg_lock protects its registry (joined under an object's lock, walked
 * with no other lock held; herd__ready's leaf locks may be taken under it).
 */
#include "core/core.h"

/* Hands a claimed task its result and makes it runnable. After this, the
 * task may run at once on another worker: its waiter is gone. HERD_ETIMEDOUT
 * is the timer's result alone (timer.c): a task whose wake result is that
 * leaves its wait without taking the timer's lock, trusting that the timer
 * is out of the heap. */
void herd__wait_finish(herd__task *t, int result)
{
	HERD__ASSERT(result != HERD_ETIMEDOUT);
	t->wake_result = result;
	herd__worker *w = herd__self();
	herd__trace_wake(w, t);
	herd__ready(w, t);
}

unsigned herd__waitq_wake_all(herd__waitq *q)
{
	unsigned n = 0;
	for (herd__link *k = q->head, *next; k; k = next) {
		next = k->next;
		herd__waiter *wt = herd__waiter_of(k);
		herd__task *t = wt->task;
		if (herd__wait_claim(t)) {
			herd__waitq_remove(q, wt); /* before the task can run */
			herd__wait_finish(t, 0);
			n++;
		}
	}
	return n;
}

bool herd__waitq_wake_one(herd__waitq *q)
{
	herd__waiter *wt;
	herd__list_each(wt, q, herd__waiter, link) {
		herd__task *t = wt->task;
		if (herd__wait_claim(t)) {
			herd__waitq_remove(q, wt); /* then the walk ends */
			herd__wait_finish(t, 0);
			return true;
		}
	}
	return false;
}

unsigned herd__waitq_claim_all(herd__waitq *q, herd__list *won)
{
	unsigned n = 0;
	for (herd__link *k = q->head, *next; k; k = next) {
		next = k->next;
		herd__waiter *wt = herd__waiter_of(k);
		if (herd__wait_claim(wt->task)) {
			herd__waitq_remove(q, wt);
			herd__list_push_back(won, &wt->link);
			n++;
		}
	}
	return n;
}

herd__waiter *herd__waitq_claim_first(herd__waitq *q)
{
	herd__waiter *wt;
	herd__list_each(wt, q, herd__waiter, link) {
		if (herd__wait_claim(wt->task)) {
			herd__waitq_remove(q, wt); /* then the walk ends */
			return wt;
		}
	}
	return NULL;
}

bool herd__waitq_claim_one(herd__waitq *q, herd__list *won)
{
	herd__waiter *wt = herd__waitq_claim_first(q);
	if (wt)
		herd__list_push_back(won, &wt->link);
	return wt != NULL;
}

void herd__wait_finish_all(herd__list *won, int result)
{
	/* Unlinked before it is finished: once readied, its waiter (on its
	 * stack) may be gone; popping the next one writes only that one. */
	for (herd__link *k; (k = herd__list_pop_front(won));)
		herd__wait_finish(herd__waiter_of(k)->task, result);
}

bool herd__wait_live(const herd__task *t)
{
	uint8_t s = atomic_load_explicit(&t->wait, mo_seq_cst);
	return s == HERD__WAIT_CANCELABLE || s == HERD__WAIT_FIRM;
}

bool herd__wake_canceled(herd__task *t)
{
	if (atomic_load_explicit(&t->wait, mo_seq_cst) != HERD__WAIT_CANCELABLE ||
	    !herd__wait_claim_from(t, HERD__WAIT_CANCELABLE))
		return false;
	herd__wait_finish(t, HERD_ECANCELED);
	return true;
}

/*
 * The wait's reason is read only while the task is parked (the dump and
 * the deadlock check look at the wait word first), so a stale one is
 * harmless and the fast path leaves it. Checked builds clear it, so that
 * herd__wait_prepare's assert catches a park that did not say why.
 */
static inline void why_clear(herd__task *t)
{
#if HERD_CHECKED
	atomic_store_explicit(&t->why, HERD__WHY_NONE, mo_relaxed);
#else
	(void)t;
#endif
}

/* Takes back a wait nobody has claimed: the task never parks. */
static bool unclaim(herd__task *t, uint8_t state)
{
	return atomic_compare_exchange_strong_explicit(&t->wait, &state, HERD__WAIT_NONE,
						       mo_acq_rel, mo_relaxed);
}

void herd__registry_join(herd__worker *w, herd__task *t)
{
	herd__mutex_lock(&w->reg_lock);
	t->reg = (uint16_t)(w->index + 1);
	herd__list_push_front(&w->reg, &t->reg_link);
	herd__mutex_unlock(&w->reg_lock);
}

/* The worker whose registry holds t (t->reg is not 0). */
static herd__worker *registry_of(const herd__task *t)
{
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_relaxed);
	HERD__ASSERT(t->reg && t->reg <= rt->nworkers);
	return rt->workers[t->reg - 1];
}

void herd__registry_leave(herd__task *t)
{
	if (!t->reg)
		return;
	herd__worker *w = registry_of(t);
	herd__mutex_lock(&w->reg_lock);
	herd__list_remove(&w->reg, &t->reg_link);
	herd__mutex_unlock(&w->reg_lock);
	t->reg = 0;
}

/* Whether a cancelable wait of t is canceled: its scope is, or the
 * other scope it waits for (see herd__task.wait_scope). */
static bool wait_canceled(herd__task *t)
{
	if (herd__scope_canceled(t->scope))
		return true;
	herd_scope *also = atomic_load_explicit(&t->wait_scope, mo_seq_cst);
	return also && herd__scope_canceled(also);
}

void herd__wait_scope_set(herd__task *t, herd_scope *s)
{
	if (s || !t->reg) {
		/* Set while the scope is certainly open (the caller's contract),
		 * or never seen: the canceler walks registered tasks only. */
		atomic_store_explicit(&t->wait_scope, s, mo_seq_cst);
		return;
	}
	/* Cleared under the registry's lock, which the canceler holds while
	 * it reads the pointer and the scope behind it: once this returns,
	 * the caller may close the scope. */
	herd__worker *w = registry_of(t);
	herd__mutex_lock(&w->reg_lock);
	atomic_store_explicit(&t->wait_scope, NULL, mo_relaxed);
	herd__mutex_unlock(&w->reg_lock);
}

void herd__cancel_parked(herd__rt *rt)
{
	/* The solo worker's tasks store their wait state without a barrier;
	 * unless it is the caller, fence for them (see Ordering). */
	herd__worker *self = herd__self();
	if (!(self && self->solo) && herd__solo_live())
		herd__solo_fence();
	for (unsigned i = 0; i < rt->nworkers; i++) {
		herd__worker *w = rt->workers[i];
		herd__mutex_lock(&w->reg_lock);
		herd__task *t;
		herd__list_each(t, &w->reg, herd__task, reg_link)
			if (wait_canceled(t))
				herd__wake_canceled(t);
		herd__mutex_unlock(&w->reg_lock);
	}
}

void herd__registry_each(herd__rt *rt, void (*fn)(herd__task *t, void *arg),
			 void *arg)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		herd__worker *w = rt->workers[i];
		herd__mutex_lock(&w->reg_lock);
		herd__task *t;
		herd__list_each(t, &w->reg, herd__task, reg_link)
			fn(t, arg);
		herd__mutex_unlock(&w->reg_lock);
	}
}

/* Parks the prepared task (herd__wait_park's last half) and takes its
 * wake's result. */
static inline int park_now(herd__worker **wp, herd__task *t)
{
	herd__worker *w = herd__park(*wp);
	*wp = w;
	/* Only the winner of the wake readies a parked task. */
	HERD__ASSERT(atomic_load_explicit(&t->wait, mo_relaxed) == HERD__WAIT_WOKEN);
	int result = t->wake_result;
	why_clear(t);
	atomic_store_explicit(&t->wait, HERD__WAIT_NONE, mo_relaxed);
	return result;
}

/* herd__wait_park with a deadline (or HERD_NOWAIT), out of line: without
 * one, a park needs no timer, no clock and no frame for them. */
__attribute__((noinline)) static int wait_park_timed(herd__worker **wp, int64_t deadline,
						      bool cancelable)
{
	herd__worker *w = *wp;
	herd__task *t = w->cur;
	uint8_t state = cancelable ? HERD__WAIT_CANCELABLE : HERD__WAIT_FIRM;

	/* Already canceled, or already past the deadline: take the wait
	 * back unless a waker has claimed it (then it readies us; park). */
	int early = 0;
	if (deadline == HERD_NOWAIT)
		early = HERD_ETIMEDOUT; /* a poll: not a cancellation point */
	else if (cancelable && wait_canceled(t))
		early = HERD_ECANCELED;
	else if (herd_now() >= deadline)
		early = HERD_ETIMEDOUT;
	herd__timer tm = {.when = deadline, .index = SIZE_MAX, .task = t};
	if (!early && deadline > 0 && herd__timer_add(w->rt, &tm) < 0)
		early = -ENOMEM;
	if (early && unclaim(t, state)) {
		why_clear(t);
		return early;
	}
	int result = park_now(wp, t);
	/* Always under the lock: the timer code may be firing it right now. */
	if (deadline > 0)
		herd__timer_del((*wp)->rt, &tm);
	return result;
}

int herd__wait_park(herd__worker **wp, int64_t deadline, bool cancelable)
{
	if (deadline >= 0) /* HERD_NOWAIT or a deadline */
		return wait_park_timed(wp, deadline, cancelable);
	herd__task *t = (*wp)->cur;
	/* Already canceled: take the wait back unless a waker has claimed it
	 * (then it readies us; park). */
	if (cancelable && wait_canceled(t) && unclaim(t, HERD__WAIT_CANCELABLE)) {
		why_clear(t);
		return HERD_ECANCELED;
	}
	return park_now(wp, t);
}

int herd__wait(herd__worker **wp, herd__mutex *lock, int64_t deadline,
	       bool cancelable)
{
	herd__wait_prepare(*wp, (*wp)->cur, cancelable);
	if (lock)
		herd__mutex_unlock(lock);
	return herd__wait_park(wp, deadline, cancelable);
}
