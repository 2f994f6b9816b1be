/*
 * sema.c - once (herd_once, after Go's sync.Once), condition variables
 * (herd_cond, after sync.Cond) and weighted semaphores (herd_sem, after
 * golang.org/x/sync/semaphore's Weighted), for tasks: a task that has to
 * wait parks, and its worker runs other tasks.
 *
 * Each is a value in the program's memory that works from all-zero bytes
 * (a semaphore's capacity aside, which HERD_SEM_INIT or herd_sem_init
 * gives): an object lock (herd__objlock, whose rank is implied) and a
 * queue of waiters on the waiting tasks' stacks, woken by wait.c's
 * protocol: whoever claims a task's wait (the object, its deadline, its
 * scope's cancellation) readies it, and a waiter claimed by its deadline
 * or a cancellation stays queued until its task unqueues it under the lock.
 *
 * Release order. A waiter may free the object, or leave the frame that
 * holds it, as soon as its call returns, so a waker does not touch the
 * object once a waiter can run: under the lock it claims and unqueues the
 * waiters it wakes (and, for a semaphore, counts their units), releases
 * the lock, and only then readies them (herd__wait_finish: claimed, they
 * are the waker's alone, and their waiter structs live on their stacks
 * until they run).
 *
 * Once. state: NEW (0), RUNNING, FINISHING, DONE, and SLEEPERS when
 * threads that are not tasks wait on the word's futex. The first caller to
 * move NEW to RUNNING runs fn; then, under the lock, it sets FINISHING and
 * claims every queued task; releases the lock; stores DONE (release: fn's
 * writes go with it), its last access to the once, since the lock-free
 * fast path returns on DONE and its caller may free the once; wakes the
 * futex (an address only) and readies the claimed tasks. A task queues
 * only after seeing, under the lock, that neither DONE nor FINISHING is
 * set, so no wake is missed; one that sees FINISHING yields until DONE
 * appears (a moment: the runner's next steps). Its waits are firm and
 * without deadline: they end only when fn has returned.
 *
 * Cond. A waiter queues under the cond's lock and makes its wait claimable
 * before it unlocks the mutex, so a signal made after that unlock finds it.
 * `waiting` counts the queued waiters, so that a signal with nobody waiting
 * takes no lock; it is changed under the lock and read by signals that
 * come after the waiter's unlock of the mutex (or that may miss it anyway).
 *
 * Sem. `cur` units are held of `size`. Waiters are served in order: a
 * release (or a waiter that leaves) serves the queue from its head while
 * the first live waiter's request fits, skipping stale waiters (claimed by
 * a deadline or a cancellation: they leave by themselves) before it looks
 * at their requests, so a large stale one holds nobody back; an acquire
 * takes units at once if they are free and no live waiter is queued.
 * Invariants, under the lock: 0 <= cur <= size; the first live waiter
 * does not fit in size - cur (else it would have been served).
 *
 * Locks: each object's lock (HERD__RANK_OBJECT) protects its queue and,
 * for a semaphore, `cur`. Under it a waiter preparing to park takes its
 * registry's lock; wakers ready tasks (the scheduler's leaf locks) after
 * releasing it.
 * herd_cond_wait takes the mutex's lock only after releasing the cond's.
 */
#include "sync/sync.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* Once                                                                */
/* ------------------------------------------------------------------ */

enum { RUNNING = 1u, DONE = 2u, SLEEPERS = 4u, FINISHING = 8u };

struct __attribute__((may_alias)) once {
	_Atomic uint32_t state;
	herd__mutex lock;
	herd__waitq waiters;
};
HERD__IN_PUBLIC(struct once, herd_once);

/* A thread that is not a task waits for DONE on the futex. */
static void once_sleep(struct once *o)
{
	for (;;) {
		uint32_t s = atomic_load_explicit(&o->state, mo_acquire);
		if (s & DONE)
			return;
		if (!(s & SLEEPERS) &&
		    !atomic_compare_exchange_weak_explicit(&o->state, &s, s | SLEEPERS,
							   mo_relaxed, mo_relaxed))
			continue;
		herd__futex_wait(&o->state, s | SLEEPERS, -1);
	}
}

/* A task parks until the runner wakes it. */
static void once_park(struct once *o, herd__worker *w)
{
	herd__objlock(&o->lock);
	uint32_t s;
	while (!((s = atomic_load_explicit(&o->state, mo_acquire)) & DONE) &&
	       (s & FINISHING)) {
		/* The runner has woken the queue and is about to store DONE,
		 * its last step: nobody would wake us, wait for DONE. */
		herd__objunlock(&o->lock);
		herd_yield();
		herd__objlock(&o->lock);
	}
	if (s & DONE) {
		herd__objunlock(&o->lock);
		return;
	}
	herd__waiter wt = {.task = w->cur};
	herd__waitq_push(&o->waiters, &wt);
	herd__waits_on(w->cur, HERD__WHY_ONCE, o);
	int rc = herd__objwait(&w, &o->lock, HERD_FOREVER, false);
	/* Firm and without deadline: only the runner wakes it, unqueued. */
	HERD__ASSERT(rc == 0 && !wt.linked);
	(void)rc;
}

static int once_slow(struct once *o, void (*fn)(void *), void *arg)
{
	uint32_t s = 0;
	if (atomic_compare_exchange_strong_explicit(&o->state, &s, RUNNING,
						    mo_acquire, mo_acquire)) {
		fn(arg);
		herd__list won = {0};
		herd__objlock(&o->lock);
		atomic_fetch_or_explicit(&o->state, FINISHING, mo_relaxed);
		herd__waitq_claim_all(&o->waiters, &won);
		HERD__ASSERT(herd__list_empty(&o->waiters));
		herd__objunlock(&o->lock);
		/* DONE last: the fast path then returns, and its caller may
		 * free o. The futex wake only names the address (a wake on a
		 * reused one is spurious, which futex waiters allow for). */
		s = atomic_exchange_explicit(&o->state, DONE, mo_release);
		if (s & SLEEPERS)
			herd__futex_wake(&o->state, INT_MAX);
		herd__wait_finish_all(&won, 0);
		return 1;
	}
	if (s & DONE) /* the failed exchange acquired the runner's DONE */
		return 0;
	herd__worker *w = herd__self();
	if (w && w->cur)
		once_park(o, w);
	else
		once_sleep(o);
	return 0;
}

int herd_once_do(herd_once *po, void (*fn)(void *), void *arg)
{
	if (herd__unlikely(!po || !fn))
		return -EINVAL;
	struct once *o = (struct once *)(void *)po;
	if (herd__likely(atomic_load_explicit(&o->state, mo_acquire) & DONE))
		return 0;
	return once_slow(o, fn, arg);
}

/* ------------------------------------------------------------------ */
/* Condition variables                                                 */
/* ------------------------------------------------------------------ */

struct __attribute__((may_alias)) cond {
	herd__mutex lock;
	_Atomic uint32_t waiting;
	herd__waitq waiters;
};
HERD__IN_PUBLIC(struct cond, herd_cond);

static inline struct cond *cond_of(herd_cond *c)
{
	return (struct cond *)(void *)c;
}

/* Queues the caller on c (claimable), then unlocks m. */
static void cond_enter(struct cond *c, herd_mutex *m, herd__worker *w,
		       herd__waiter *wt)
{
	herd__objlock(&c->lock);
	herd__waitq_push(&c->waiters, wt);
	atomic_fetch_add_explicit(&c->waiting, 1, mo_relaxed);
	herd__waits_on(w->cur, HERD__WHY_COND, c);
	herd__wait_prepare(w, w->cur, true);
	herd__objunlock(&c->lock);
	/* Not under c's lock: an unlock may take m's. */
	int rc = herd_mutex_unlock(m);
	HERD__ASSERT(rc == 0);
	(void)rc;
}

int herd_cond_wait(herd_cond *pc, herd_mutex *m, int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	if (!pc || !m)
		return -EINVAL;
	if (herd__current(&w, &t) || !herd__mutex_is_locked(m))
		return -EPERM;
	if (deadline == HERD_NOWAIT)
		return HERD_ETIMEDOUT;
	if (herd__scope_canceled(t->scope))
		return HERD_ECANCELED;
	struct cond *c = cond_of(pc);
	herd__waiter wt = {.task = t};
	cond_enter(c, m, w, &wt);
	int rc = herd__wait_park(&w, deadline, true);
	if (rc != 0) { /* its deadline or a cancellation claimed it */
		herd__objlock(&c->lock);
		HERD__ASSERT(wt.linked);
		herd__waitq_remove(&c->waiters, &wt);
		atomic_fetch_sub_explicit(&c->waiting, 1, mo_relaxed);
		herd__objunlock(&c->lock);
	}
	/* In a task and without deadline, the lock cannot fail. */
	int lrc = herd_mutex_lock(m, HERD_FOREVER);
	HERD__ASSERT(lrc == 0);
	(void)lrc;
	return rc;
}

/* Wakes one waiter of c (all: every one); returns how many it woke. */
static int cond_wake(herd_cond *pc, bool all)
{
	if (!pc)
		return -EINVAL;
	struct cond *c = cond_of(pc);
	if (!atomic_load_explicit(&c->waiting, mo_acquire))
		return 0;
	herd__list won = {0};
	herd__objlock(&c->lock);
	unsigned n = all ? herd__waitq_claim_all(&c->waiters, &won)
			 : herd__waitq_claim_one(&c->waiters, &won);
	atomic_fetch_sub_explicit(&c->waiting, n, mo_relaxed);
	herd__objunlock(&c->lock);
	/* After the unlock: a woken waiter may end the cond's life. */
	herd__wait_finish_all(&won, 0);
	return (int)n;
}

int herd_cond_signal(herd_cond *c)
{
	return cond_wake(c, false);
}

int herd_cond_broadcast(herd_cond *c)
{
	return cond_wake(c, true);
}

/* ------------------------------------------------------------------ */
/* Weighted semaphores                                                 */
/* ------------------------------------------------------------------ */

struct __attribute__((may_alias)) sem {
	int64_t size;           /* herd_sem.herd__capacity */
	int64_t cur;            /* units held */
	herd__mutex lock;
	herd__waitq waiters;    /* struct sem_waiter */
};
HERD__IN_PUBLIC(struct sem, herd_sem);
_Static_assert(offsetof(struct sem, size) == offsetof(herd_sem, herd__capacity),
	       "HERD_SEM_INIT sets the capacity");

struct sem_waiter {
	herd__waiter base;
	int64_t n;
};

static inline struct sem *sem_of(herd_sem *s)
{
	return (struct sem *)(void *)s;
}

/* Under the lock: serves waiters from the head while the first live one
 * fits, claiming and unqueuing them into `won`, which the caller finishes
 * after the unlock. Stale waiters are skipped whatever they asked for. */
static void sem_serve(struct sem *s, herd__list *won)
{
	for (herd__link *k = s->waiters.head, *next; k; k = next) {
		next = k->next;
		struct sem_waiter *wt = (struct sem_waiter *)herd__waiter_of(k);
		if (!herd__wait_live(wt->base.task))
			continue; /* it leaves by itself */
		if (s->size - s->cur < wt->n)
			break; /* FIFO: it holds back the smaller ones behind */
		if (herd__wait_claim(wt->base.task)) {
			s->cur += wt->n;
			herd__waitq_remove(&s->waiters, &wt->base);
			herd__list_push_back(won, &wt->base.link);
		}
	}
	HERD__ASSERT(s->cur >= 0 && s->cur <= s->size);
}

/* Releases the lock, then readies the waiters sem_serve claimed: once one
 * runs, it may free the semaphore (a completion in its frame). */
static void sem_unlock(struct sem *s, herd__list *won)
{
	herd__objunlock(&s->lock);
	herd__wait_finish_all(won, 0);
}

int herd_sem_init(herd_sem *ps, int64_t n)
{
	if (!ps || n <= 0)
		return -EINVAL;
	memset(ps, 0, sizeof *ps);
	sem_of(ps)->size = n;
	return 0;
}

/* Under the lock: takes n units if they are free and no live waiter
 * queues (stale ones are leaving and hold nobody back). */
static bool sem_take(struct sem *s, int64_t n)
{
	if (s->size - s->cur < n)
		return false;
	herd__waiter *wt;
	herd__list_each(wt, &s->waiters, herd__waiter, link)
		if (herd__wait_live(wt->task))
			return false;
	s->cur += n;
	return true;
}

/* Queues the caller for n units (the lock held) and parks it. */
static int sem_wait(struct sem *s, int64_t n, herd__worker *w, int64_t deadline)
{
	struct sem_waiter wt = {.base.task = w->cur, .n = n};
	herd__waitq_push(&s->waiters, &wt.base);
	herd__waits_on(w->cur, HERD__WHY_SEM, s);
	int rc = herd__objwait(&w, &s->lock, deadline, true);
	if (rc == 0)
		return 0; /* served: its units are counted */
	herd__list won = {0};
	herd__objlock(&s->lock);
	herd__waitq_remove(&s->waiters, &wt.base);
	sem_serve(s, &won); /* those it held back may fit now */
	sem_unlock(s, &won);
	return rc;
}

int herd_sem_acquire(herd_sem *ps, int64_t n, int64_t deadline)
{
	if (!ps)
		return -EINVAL;
	struct sem *s = sem_of(ps);
	if (n <= 0 || n > s->size)
		return -EINVAL;
	int why;
	herd__worker *w = herd__may_wait(deadline, true, &why);
	if (why == HERD_ECANCELED)
		return why;
	herd__objlock(&s->lock);
	if (sem_take(s, n)) {
		herd__objunlock(&s->lock);
		return 0;
	}
	if (!w) {
		herd__objunlock(&s->lock);
		return why ? why : HERD_ETIMEDOUT;
	}
	return sem_wait(s, n, w, deadline);
}

int herd_sem_tryacquire(herd_sem *ps, int64_t n)
{
	if (!ps)
		return -EINVAL;
	struct sem *s = sem_of(ps);
	if (n <= 0 || n > s->size)
		return -EINVAL;
	herd__objlock(&s->lock);
	bool ok = sem_take(s, n);
	herd__objunlock(&s->lock);
	return ok ? 0 : -EBUSY;
}

int herd_sem_release(herd_sem *ps, int64_t n)
{
	if (!ps || n <= 0)
		return -EINVAL;
	struct sem *s = sem_of(ps);
	herd__objlock(&s->lock);
	if (n > s->cur) {
		herd__objunlock(&s->lock);
		return -ERANGE;
	}
	s->cur -= n;
	herd__list won = {0};
	sem_serve(s, &won);
	sem_unlock(s, &won);
	return 0;
}
