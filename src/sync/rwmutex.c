/*
 * rwmutex.c - task-aware read-write mutexes (herd_rwmutex, after Go's
 * sync.RWMutex), built as mutex.c's mutex is: a value that works from
 * all-zero bytes (a state word, an object lock, two queues of waiters on
 * the waiting tasks' stacks), woken by wait.c's protocol, never a
 * cancellation point. mutex.c's top comment gives the order in which a
 * release does its steps, and why; this file follows it.
 *
 * The read-write mutex. State: the count of readers that hold it (low 30
 * bits), WRITER (a writer holds it) and WAITERS (a queue is not empty).
 * With WAITERS clear, every operation is one CAS; with it set, only
 * runlock stays on the fast path (so that readers can drain), and
 * everything else is decided under the lock by dispatch(): readers wait
 * while a writer holds or waits (so writers are not starved); the last
 * reader out hands the mutex to the first writer; a writer's unlock hands
 * it to every reader queued meanwhile, else to the next writer (so readers
 * are not starved either). A writer that gives up dispatches too, since
 * the readers queued behind it may now go.
 * Invariants, under the lock: WAITERS is set exactly when a queue is not
 * empty; WRITER and a reader count are never both set; a reader is queued
 * only while a writer holds or is queued.
 *
 * Locks: the object's lock (HERD__RANK_OBJECT) protects the queues, the
 * setting and clearing of WAITERS, and the grants. Wakers ready tasks after
 * releasing it. No other object lock is taken under it.
 */
#include "sync/sync.h"

/* ------------------------------------------------------------------ */
/* Read-write mutexes                                                  */
/* ------------------------------------------------------------------ */

#define RMASK ((1u << 30) - 1) /* the readers that hold it */
#define WRITER (1u << 30)
#define WAITERS (1u << 31)

struct __attribute__((may_alias)) rwmutex {
	_Atomic uint32_t state;
	herd__mutex lock;
	herd__waitq readers, writers;
};
HERD__IN_PUBLIC(struct rwmutex, herd_rwmutex);

static inline struct rwmutex *rw_of(herd_rwmutex *rw)
{
	return (struct rwmutex *)(void *)rw;
}

/* Under the lock, when it is about to be released. */
static void rw_check(struct rwmutex *rw)
{
	uint32_t s = atomic_load_explicit(&rw->state, mo_relaxed);
	HERD__ASSERT(!(s & WAITERS) ==
		     (herd__list_empty(&rw->readers) && herd__list_empty(&rw->writers)));
	HERD__ASSERT(!((s & WRITER) && (s & RMASK)));
	(void)s;
}

/* Under the lock: clears WAITERS once both queues are empty. */
static void rw_settle(struct rwmutex *rw)
{
	if (herd__list_empty(&rw->readers) && herd__list_empty(&rw->writers))
		atomic_fetch_and_explicit(&rw->state, ~WAITERS, mo_relaxed);
	rw_check(rw);
}

/* Under the lock, with no writer holding: every queued reader it can
 * claim now holds the mutex, and is moved to `won` (to be readied after
 * the unlock). Readers beyond RMASK stay queued, as rw_slow would refuse
 * them: the last reader out grants them. Returns how many it granted. */
static unsigned grant_readers(struct rwmutex *rw, herd__list *won)
{
	uint32_t held = atomic_load_explicit(&rw->state, mo_relaxed) & RMASK;
	unsigned n = 0;
	for (herd__link *k = rw->readers.head, *next; k && held + n < RMASK;
	     k = next) {
		next = k->next;
		herd__waiter *wt = herd__waiter_of(k);
		if (herd__wait_claim(wt->task)) {
			herd__waitq_remove(&rw->readers, wt);
			herd__list_push_back(won, &wt->link);
			n++;
		}
	}
	/* Counted before any of them runs (and may release it). */
	if (n)
		atomic_fetch_add_explicit(&rw->state, n, mo_relaxed);
	return n;
}

/* Under the lock, with no reader or writer holding: the first writer it
 * can claim holds the mutex, moved to `won`. Returns whether there was one. */
static bool grant_writer(struct rwmutex *rw, herd__list *won)
{
	herd__waiter *wt = herd__waitq_claim_first(&rw->writers);
	if (!wt)
		return false;
	atomic_fetch_or_explicit(&rw->state, WRITER, mo_relaxed);
	herd__list_push_back(won, &wt->link);
	return true;
}

/*
 * Under the lock, after the mutex was released or a writer left the queue:
 * hands it on, to the waiters it moves to `won`, which the caller readies
 * with rw_unlock_wake. readers_first: a writer's unlock, after which the
 * readers that queued during its hold go before the next writer.
 */
static void dispatch(struct rwmutex *rw, bool readers_first, herd__list *won)
{
	uint32_t s = atomic_load_explicit(&rw->state, mo_acquire);
	if (!(s & WRITER)) {
		if (readers_first && grant_readers(rw, won))
			goto out;
		if (!herd__list_empty(&rw->writers)) {
			/* With readers in, the last one out dispatches. */
			if ((s & RMASK) || grant_writer(rw, won))
				goto out;
		}
		grant_readers(rw, won); /* no writer holds or can be woken */
	}
out:
	rw_settle(rw);
}

/* Releases the lock, then readies the new holders dispatch granted: once
 * one runs, it may unlock and free the mutex. */
static void rw_unlock_wake(struct rwmutex *rw, herd__list *won)
{
	herd__objunlock(&rw->lock);
	herd__wait_finish_all(won, 0);
}

/* Queues the calling task (the lock held, WAITERS set) and parks it.
 * Returns 0 once the mutex was granted, or the wait's failure. */
static int rw_park(struct rwmutex *rw, herd__waitq *q, herd__worker *w,
		   int64_t deadline)
{
	herd__waiter wt = {.task = w->cur};
	herd__waitq_push(q, &wt);
	rw_check(rw);
	herd__waits_on(w->cur, HERD__WHY_RWMUTEX, rw);
	int rc = herd__objwait(&w, &rw->lock, deadline, false);
	if (rc == 0)
		return 0;
	herd__list won = {0};
	herd__objlock(&rw->lock);
	herd__waitq_remove(q, &wt);
	if (q == &rw->writers)
		dispatch(rw, false, &won); /* the readers behind it may go */
	else
		rw_settle(rw);
	rw_unlock_wake(rw, &won);
	return rc;
}

/*
 * The slow path of both locks, under the lock: takes the mutex if `can`
 * says it may be taken in state s, else queues and parks the caller.
 */
static int rw_slow(struct rwmutex *rw, int64_t deadline, bool writer)
{
	herd__worker *w = NULL;
	if (deadline != HERD_NOWAIT) {
		w = herd__self();
		if (w && !w->cur)
			w = NULL;
	}
	herd__objlock(&rw->lock);
	uint32_t s = atomic_load_explicit(&rw->state, mo_relaxed);
	for (;;) {
		bool writer_in = s & WRITER;
		bool free = writer ? !writer_in && !(s & RMASK) : !writer_in;
		if (free && herd__list_empty(&rw->writers)) {
			if (!writer && (s & RMASK) == RMASK) {
				herd__objunlock(&rw->lock);
				return -EAGAIN;
			}
			uint32_t ns = writer ? s | WRITER : s + 1;
			if (herd__state_cas(&rw->state, &s, ns, mo_acquire))
				break;
			continue;
		}
		if (!w) {
			herd__objunlock(&rw->lock);
			return deadline == HERD_NOWAIT ? HERD_ETIMEDOUT : -EPERM;
		}
		if (herd__state_cas(&rw->state, &s, s | WAITERS, mo_relaxed))
			return rw_park(rw, writer ? &rw->writers : &rw->readers, w,
				       deadline);
	}
	herd__objunlock(&rw->lock);
	return 0;
}

int herd_rwmutex_rlock(herd_rwmutex *prw, int64_t deadline)
{
	if (herd__unlikely(!prw))
		return -EINVAL;
	struct rwmutex *rw = rw_of(prw);
	uint32_t s = atomic_load_explicit(&rw->state, mo_relaxed);
	while (!(s & (WRITER | WAITERS)) && (s & RMASK) != RMASK)
		if (herd__state_cas(&rw->state, &s, s + 1, mo_acquire))
			return 0;
	return rw_slow(rw, deadline, false);
}

int herd_rwmutex_lock(herd_rwmutex *prw, int64_t deadline)
{
	if (herd__unlikely(!prw))
		return -EINVAL;
	struct rwmutex *rw = rw_of(prw);
	uint32_t s = 0;
	if (herd__likely(atomic_compare_exchange_strong_explicit(
		    &rw->state, &s, WRITER, mo_acquire, mo_relaxed)))
		return 0;
	return rw_slow(rw, deadline, true);
}

int herd_rwmutex_runlock(herd_rwmutex *prw)
{
	if (herd__unlikely(!prw))
		return -EINVAL;
	struct rwmutex *rw = rw_of(prw);
	uint32_t s = atomic_load_explicit(&rw->state, mo_relaxed);
	for (;;) {
		if (!(s & RMASK))
			return -EPERM;
		if ((s & RMASK) == 1 && (s & WAITERS)) {
			/* The last reader out hands the mutex on, under the lock:
			 * decremented before it, a writer that gives up could
			 * grant it, and its new holder free it, meanwhile. */
			herd__objlock(&rw->lock);
			s = atomic_load_explicit(&rw->state, mo_relaxed);
			if (s & WAITERS)
				break;
			/* The queues emptied: a fast path could take it once
			 * released, so release after the unlock. */
			herd__objunlock(&rw->lock);
			continue;
		}
		if (herd__state_cas(&rw->state, &s, s - 1, mo_release))
			return 0;
	}
	/* WAITERS stops the fast paths but ours: nobody takes it before the
	 * unlock, and the new holders run only after it. */
	herd__list won = {0};
	atomic_fetch_sub_explicit(&rw->state, 1, mo_release);
	dispatch(rw, false, &won);
	rw_unlock_wake(rw, &won);
	return 0;
}

int herd_rwmutex_unlock(herd_rwmutex *prw)
{
	if (herd__unlikely(!prw))
		return -EINVAL;
	struct rwmutex *rw = rw_of(prw);
	uint32_t s;
again:
	s = atomic_load_explicit(&rw->state, mo_relaxed);
	for (;;) {
		if (!(s & WRITER))
			return -EPERM;
		if (s & WAITERS)
			break;
		if (herd__state_cas(&rw->state, &s, s & ~WRITER, mo_release))
			return 0;
	}
	herd__objlock(&rw->lock);
	s = atomic_load_explicit(&rw->state, mo_relaxed);
	if (!(s & WAITERS)) {
		/* The queues emptied meanwhile: a fast path could take it
		 * once released, so release after the unlock. */
		herd__objunlock(&rw->lock);
		goto again;
	}
	/* WAITERS stops the fast paths but runlock (and no reader holds):
	 * nobody takes it before the unlock, and the new holders run only
	 * after it. */
	herd__list won = {0};
	atomic_fetch_and_explicit(&rw->state, ~WRITER, mo_release);
	dispatch(rw, true, &won);
	rw_unlock_wake(rw, &won);
	return 0;
}
