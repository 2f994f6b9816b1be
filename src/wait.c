/*
 * wait.c - how a task parks until an object, a deadline or a cancellation
 * wakes it, and wait queues.
 *
 * The protocol. A parked task can be woken by three parties: the object it
 * waits on (a wait group reaching zero, a scope emptying), its timer, or the
 * cancellation of its scope. Exactly one must win, and the winner alone
 * readies the task. The task's `wait` word decides it:
 *
 *   NONE --(task, before parking)--> CANCELLABLE or FIRM
 *   CANCELLABLE or FIRM --(CAS by a waker)--> WOKEN  (the winner writes
 *        wake_result, then readies the task)
 *   CANCELLABLE --(CAS by the canceller)--> WOKEN
 *   WOKEN --(task, after it resumes)--> NONE
 *
 * A waker finds the task only while it is certainly in this wait: the
 * object's waker holds the object's lock with the waiter still queued; the
 * timer code holds the timer lock with the timer still in the heap; the
 * canceller holds the scope's lock (so the task cannot end) and may claim
 * only a CANCELLABLE wait (so it cannot cut short a firm one, such as
 * closing a scope). A task woken by its timer or by cancellation unqueues
 * its waiter itself, under the object's lock; the object must not be freed
 * while a waiter is queued (herd_wg_free refuses, scopes wait for it).
 *
 * Ordering. The task stores its wait state (seq_cst) before it releases the
 * object's lock, then reads its scope's `canceled` flag (seq_cst); the
 * canceller stores the flag (seq_cst) and then reads the state: one of them
 * sees the other. The task may be readied before it has finished switching
 * away; sched.c's on_cpu flag makes its new worker wait for the switch.
 *
 * No lock of its own: wait queues are protected by their object's lock.
 */
#include "internal.h"

void herd__waitq_push(herd__waitq *q, herd__waiter *wt)
{
	wt->next = NULL;
	wt->prev = q->tail;
	if (q->tail)
		q->tail->next = wt;
	else
		q->head = wt;
	q->tail = wt;
	wt->linked = true;
}

void herd__waitq_remove(herd__waitq *q, herd__waiter *wt)
{
	if (!wt->linked)
		return;
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		q->head = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	else
		q->tail = wt->prev;
	wt->linked = false;
}

void herd__waitq_wake_all(herd__waitq *q)
{
	herd__waiter *wt;
	while ((wt = q->head)) {
		herd__waitq_remove(q, wt);
		/* Losing the race is fine: the winner readies the task. */
		herd__wake(wt->task, 0);
	}
}

static bool claim_wake(herd__task *t, uint32_t from, int result)
{
	if (!atomic_compare_exchange_strong_explicit(&t->wait, &from, HERD__WAIT_WOKEN,
						     mo_acq_rel, mo_relaxed))
		return false;
	t->wake_result = result;
	herd__ready(herd__self(), t);
	return true;
}

bool herd__wake(herd__task *t, int result)
{
	uint32_t s = atomic_load_explicit(&t->wait, mo_seq_cst);
	if (s != HERD__WAIT_CANCELLABLE && s != HERD__WAIT_FIRM)
		return false;
	return claim_wake(t, s, result);
}

bool herd__wake_canceled(herd__task *t)
{
	if (atomic_load_explicit(&t->wait, mo_seq_cst) != HERD__WAIT_CANCELLABLE)
		return false;
	return claim_wake(t, HERD__WAIT_CANCELLABLE, HERD_ECANCELED);
}

/* Takes back a wait nobody has claimed: the task never parks. */
static bool unclaim(herd__task *t, uint32_t state)
{
	return atomic_compare_exchange_strong_explicit(&t->wait, &state, HERD__WAIT_NONE,
						       mo_acq_rel, mo_relaxed);
}

int herd__wait(herd__worker **wp, herd__mutex *lock, int64_t deadline,
	       bool cancellable)
{
	herd__worker *w = *wp;
	herd__task *t = w->cur;
	uint32_t state = cancellable ? HERD__WAIT_CANCELLABLE : HERD__WAIT_FIRM;
	t->wake_result = 0;
	atomic_store_explicit(&t->wait, state, mo_seq_cst);
	if (lock)
		herd__mutex_unlock(lock);

	/* Already cancelled, or already past the deadline: take the wait
	 * back unless a waker has claimed it (then it readies us; park). */
	int early = 0;
	if (cancellable && herd__scope_canceled(t->scope))
		early = HERD_ECANCELED;
	else if (deadline == 0 || (deadline > 0 && herd_now() >= deadline))
		early = HERD_ETIMEDOUT;
	herd__timer tm = {.when = deadline, .index = SIZE_MAX, .task = t};
	if (!early && deadline > 0 && herd__timer_add(w->rt, &tm) < 0)
		early = -ENOMEM;
	if (early && unclaim(t, state))
		return early;

	w = herd__park(w);
	*wp = w;
	int result = t->wake_result;
	atomic_store_explicit(&t->wait, HERD__WAIT_NONE, mo_relaxed);
	/* Always under the lock: the timer code may be firing it right now. */
	if (deadline > 0)
		herd__timer_del(w->rt, &tm);
	return result;
}
