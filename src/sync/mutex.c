/*
 * mutex.c - task-aware mutexes (herd_mutex, after Go's sync.Mutex) and
 * read-write mutexes (herd_rwmutex, after sync.RWMutex): a task that has to
 * wait parks, and its worker runs other tasks, where a pthread mutex would
 * stall the worker thread.
 *
 * Both are values in the program's memory that work from all-zero bytes:
 * a state word, an object lock (herd__objlock: its rank is implied, so a
 * zeroed lock is valid) and queues of waiters that live on the waiting
 * tasks' stacks. A waiter is woken by the wake protocol of wait.c: whoever
 * claims the task's wait (an unlock, or its deadline) readies it, and a
 * waiter its timer claimed stays queued until its task unqueues it under
 * the lock. Neither lock is a cancellation point (firm waits), as in Go.
 *
 * The mutex. State bits:
 *   LOCKED   held.
 *   PARKED   the queue is not empty (stale waiters included).
 *   WOKEN    a waiter woken to compete for the mutex, or a spinning task,
 *            is about to try: unlocks meanwhile wake nobody else.
 *   HANDOFF  starvation mode: an unlock hands the mutex to the first
 *            waiter, LOCKED staying set, and newcomers queue behind.
 * Lock is one CAS 0 -> LOCKED and unlock one CAS LOCKED -> 0; any other
 * state takes the slow paths. In normal mode a running task takes a free
 * mutex even if others wait (barging: it is far cheaper than a switch); an
 * unlock with waiters wakes the first (WOKEN), which competes, and if it
 * loses queues again at the head. A waiter that loses after waiting more
 * than STARVE_NS sets HANDOFF, as Go's starvation mode; an unlock clears it
 * when it hands the mutex to a waiter that waited less, or to the last one.
 * Invariants:
 *   - under the lock, PARKED is set exactly when the queue is not empty;
 *     PARKED and HANDOFF change only under the lock;
 *   - HANDOFF implies LOCKED and PARKED: a free mutex can always be taken;
 *   - WOKEN and HANDOFF are never both set;
 *   - WOKEN belongs to the task that set it (a spinner) or was woken with
 *     it (a waiter); only that task clears it, in the CAS that takes the
 *     mutex, or, with LOCKED set, in the CAS that queues it again or gives
 *     up: then the holder's unlock is still to come and will wake a waiter.
 *     So while waiters are queued, a free mutex always has somebody about
 *     to take it, and no wake is lost.
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
 * Release order. POSIX (and Go) let the task that gets a lock free it as
 * soon as it has released it, so a releasing call must not touch the lock
 * once another party may own it: its internal lock is itself a write (the
 * exchange of herd__objunlock). So a release that wakes or grants does, in
 * this order: under the internal lock, claim and unqueue the waiters it
 * wakes and update the state bits; release the internal lock; make the
 * visible release (the mutex's LOCKED; it is the waiter's already in
 * handoff mode, as are the rwmutex's grants); ready the claimed waiters (herd__wait_finish: they are
 * the caller's alone, and their waiter structs live on their stacks until
 * they run). A release that finds no waiter it can claim does its visible
 * release on the lock-free path, after the internal lock; only when stale
 * waiters alone are queued does it release under the lock, which is safe:
 * those tasks are still inside their lock calls. runlock takes the
 * internal lock before the last reader's decrement when WAITERS is set,
 * and both unlocks go back to the lock-free path if the queues emptied
 * before they got the lock (a fast path could otherwise take the mutex
 * while they hold it).
 *
 * Locks: each object's lock (HERD__RANK_OBJECT) protects its queues, the
 * setting and clearing of PARKED, HANDOFF and WAITERS, and the grants.
 * A waiter preparing to park takes its registry's lock under it; wakers
 * ready tasks (the scheduler's leaf locks) after releasing it. No other
 * object lock is taken under it.
 */
#include "sync/sync.h"

enum {
	LOCKED = 1u << 0,
	PARKED = 1u << 1,
	WOKEN = 1u << 2,
	HANDOFF = 1u << 3,
};

/* A waiter that has waited this long makes the mutex hand off (Go's 1 ms). */
#define STARVE_NS HERD_MSEC
/*
 * A task that finds the mutex held spins up to SPIN_ROUNDS rounds of
 * SPIN_PAUSES pauses before it parks: the holder of a mutex usually
 * releases it sooner than a park and a wake would take. Go spins 4 rounds
 * of 30; herd spins longer (400 pauses: 10 us on a Zen 4, whose pause
 * takes 25 ns), because its wake costs more: a woken waiter is queued on
 * the waker's worker, and an idle worker steals it only after 20 us (see
 * docs/design.md). Two tasks locking one mutex in a loop (make bench)
 * took 5.6-5.8 ns per lock with Go's figures, 5.2-5.3 with these.
 */
#define SPIN_ROUNDS 8
#define SPIN_PAUSES 50

/* The result a woken mutex waiter gets: compete again, or it is yours. */
enum { WAKE_RETRY = 0, WAKE_OWNED = 1 };

struct __attribute__((may_alias)) mutex {
	_Atomic uint32_t state;
	herd__mutex lock;
	herd__waitq waiters;    /* struct mutex_waiter */
};
HERD__IN_PUBLIC(struct mutex, herd_mutex);

struct mutex_waiter {
	herd__waiter base;
	int64_t start;          /* when it first queued */
};

static inline struct mutex *mutex_of(herd_mutex *m)
{
	return (struct mutex *)(void *)m;
}

static inline bool cas(_Atomic uint32_t *p, uint32_t *old, uint32_t new,
		       memory_order mo)
{
	return atomic_compare_exchange_weak_explicit(p, old, new, mo, mo_relaxed);
}

/* Under the lock: the invariants above. */
static void mutex_check(struct mutex *m)
{
	uint32_t s = atomic_load_explicit(&m->state, mo_relaxed);
	HERD__ASSERT(!(s & PARKED) == herd__list_empty(&m->waiters));
	HERD__ASSERT(!(s & HANDOFF) || (s & (LOCKED | PARKED)) == (LOCKED | PARKED));
	HERD__ASSERT((s & (WOKEN | HANDOFF)) != (WOKEN | HANDOFF));
	(void)s;
}

bool herd__mutex_is_locked(herd_mutex *m)
{
	return atomic_load_explicit(&mutex_of(m)->state, mo_relaxed) & LOCKED;
}

/* The first queued waiter whose task this caller wins, unqueued; NULL if
 * none can be won (they are stale: their tasks unqueue themselves). */
static herd__waiter *claim_first(herd__waitq *q)
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

/* Whether the caller should spin rather than park, seeing state s. */
static bool may_spin(herd__worker *w, uint32_t s, unsigned rounds)
{
	return rounds < SPIN_ROUNDS && !(s & HANDOFF) && w->rt->nworkers > 1;
}

static void spin(void)
{
	for (int i = 0; i < SPIN_PAUSES; i++)
		herd__cpu_relax();
}

/* What park() tells the lock loop, besides the wait's failures. */
enum {
	PARK_OWNED = 0, /* the mutex was handed to the caller */
	PARK_RETRY = 1, /* woken with WOKEN: compete again */
	PARK_AGAIN = 2, /* the state changed before it queued: look again */
};

/*
 * Queues the calling task and parks it. again: it has waited before (it
 * was woken and lost), so it goes back to the head, as in Go, and sets
 * HANDOFF if it has waited too long. *woken: whether it holds WOKEN, which
 * it gives up here.
 */
static int park(struct mutex *m, herd__worker **wp, struct mutex_waiter *wt,
		bool again, bool *woken, int64_t deadline)
{
	herd__objlock(&m->lock);
	uint32_t s = atomic_load_explicit(&m->state, mo_relaxed);
	HERD__ASSERT(!*woken || (s & WOKEN));
	uint32_t ns = s | PARKED;
	if (*woken)
		ns &= ~WOKEN;
	if (again && herd_now() - wt->start > STARVE_NS)
		ns |= HANDOFF;
	/* Queue only while the mutex is held: its unlock will wake us. */
	if (!(s & LOCKED) || !cas(&m->state, &s, ns, mo_relaxed)) {
		herd__objunlock(&m->lock);
		return PARK_AGAIN;
	}
	if (again)
		herd__waitq_push_front(&m->waiters, &wt->base);
	else
		herd__waitq_push(&m->waiters, &wt->base);
	*woken = false;
	mutex_check(m);
	int rc = herd__objwait(wp, &m->lock, deadline, false);
	if (rc == WAKE_OWNED)
		return PARK_OWNED;
	if (rc == WAKE_RETRY)
		return PARK_RETRY;
	/* Its deadline (or -ENOMEM for the timer) claimed it: still queued. */
	herd__objlock(&m->lock);
	herd__waitq_remove(&m->waiters, &wt->base);
	if (herd__list_empty(&m->waiters))
		atomic_fetch_and_explicit(&m->state, ~(PARKED | HANDOFF), mo_relaxed);
	mutex_check(m);
	herd__objunlock(&m->lock);
	return rc;
}

/* Gives up WOKEN, if held, while the mutex is held (see the top). */
static bool give_up(struct mutex *m, uint32_t *s, bool woken)
{
	return !woken || cas(&m->state, s, *s & ~WOKEN, mo_relaxed);
}

/* Out of line, so that the fast path saves no registers. */
static __attribute__((noinline)) int lock_slow(struct mutex *m, int64_t deadline)
{
	herd__worker *w = NULL;
	if (deadline != HERD_NOWAIT) {
		w = herd__self();
		if (w && !w->cur)
			w = NULL;
	}
	struct mutex_waiter wt = {.base.task = w ? w->cur : NULL};
	bool woken = false; /* it holds WOKEN */
	bool again = false; /* it was queued and woken: it has waited */
	unsigned rounds = 0;
	uint32_t s = atomic_load_explicit(&m->state, mo_relaxed);
	for (;;) {
		if (!(s & LOCKED)) {
			uint32_t ns = (s | LOCKED) & ~(woken ? WOKEN : 0u);
			if (cas(&m->state, &s, ns, mo_acquire))
				return 0;
			continue;
		}
		if (!w)
			return deadline == HERD_NOWAIT ? HERD_ETIMEDOUT : -EPERM;
		if (may_spin(w, s, rounds)) {
			/* Tell unlocks that somebody is about to take it. */
			if (!woken && (s & (PARKED | WOKEN)) == PARKED) {
				if (!cas(&m->state, &s, s | WOKEN, mo_relaxed))
					continue;
				woken = true;
			}
			spin();
			rounds++;
			s = atomic_load_explicit(&m->state, mo_relaxed);
			continue;
		}
		if (deadline > 0 && herd_now() >= deadline) {
			if (give_up(m, &s, woken))
				return HERD_ETIMEDOUT;
			continue;
		}
		if (!wt.start)
			wt.start = herd_now();
		int rc = park(m, &w, &wt, again, &woken, deadline);
		if (rc < 0 || rc == PARK_OWNED)
			return rc;
		if (rc == PARK_RETRY) {
			woken = again = true;
			rounds = 0;
		}
		s = atomic_load_explicit(&m->state, mo_relaxed);
	}
}

int herd_mutex_lock(herd_mutex *pm, int64_t deadline)
{
	if (herd__unlikely(!pm))
		return -EINVAL;
	struct mutex *m = mutex_of(pm);
	uint32_t s = 0;
	if (herd__likely(atomic_compare_exchange_strong_explicit(
		    &m->state, &s, LOCKED, mo_acquire, mo_relaxed)))
		return 0;
	return lock_slow(m, deadline);
}

int herd_mutex_trylock(herd_mutex *pm)
{
	if (herd__unlikely(!pm))
		return -EINVAL;
	struct mutex *m = mutex_of(pm);
	uint32_t s = 0;
	while (!(s & LOCKED))
		if (cas(&m->state, &s, s | LOCKED, mo_acquire))
			return 0;
	return -EBUSY;
}

/*
 * The wake of an unlock that found waiters queued and nobody holding
 * WOKEN. Under the lock it picks the waiter, claims and unqueues it, and
 * updates PARKED, HANDOFF and WOKEN; then it unlocks, then (in normal
 * mode) clears LOCKED, its last access to m: from then on the mutex may be
 * taken, unlocked and freed. Then it readies the waiter, which it claimed,
 * so nobody else touches it, and whose struct (on the waiter's stack) lives
 * until the waiter runs. Returns false, having changed nothing, if the
 * state changed so that the lock-free path must release instead.
 */
static bool unlock_wake(struct mutex *m)
{
	herd__objlock(&m->lock);
	mutex_check(m);
	uint32_t s = atomic_load_explicit(&m->state, mo_relaxed);
	/* The stale waiters have gone, or a spinner took WOKEN (which it may
	 * do under our feet: spinners take no lock). */
	if (!(s & PARKED) || (s & WOKEN) ||
	    (!(s & HANDOFF) &&
	     !atomic_compare_exchange_strong_explicit(&m->state, &s, s | WOKEN,
						      mo_relaxed, mo_relaxed))) {
		herd__objunlock(&m->lock);
		return false;
	}
	herd__waiter *h = claim_first(&m->waiters);
	herd__task *t = h ? h->task : NULL;
	uint32_t clear = 0;
	if (!h) {
		/* Only stale waiters: let anybody take it. Released under the
		 * lock, but those waiters are still inside their lock calls,
		 * so m cannot be freed yet. */
		clear = LOCKED | HANDOFF | WOKEN;
	} else if (herd__list_empty(&m->waiters)) {
		clear = PARKED | HANDOFF;
	} else if ((s & HANDOFF) &&
		   herd_now() - ((struct mutex_waiter *)h)->start < STARVE_NS) {
		clear = HANDOFF; /* it waited less: back to normal mode */
	}
	if (clear)
		atomic_fetch_and_explicit(&m->state, ~clear,
					  h ? mo_relaxed : mo_release);
	mutex_check(m);
	herd__objunlock(&m->lock);
	if (!t)
		return true;
	if (s & HANDOFF) {
		/* LOCKED stays set: the mutex is the waiter's already. */
		herd__wait_finish(t, WAKE_OWNED);
	} else {
		/* It holds WOKEN, which we set for it: until it runs, nothing
		 * else changes LOCKED or WOKEN, and it competes when it does. */
		atomic_fetch_and_explicit(&m->state, ~LOCKED, mo_release);
		herd__wait_finish(t, WAKE_RETRY);
	}
	return true;
}

static __attribute__((noinline)) int unlock_slow(struct mutex *m, uint32_t s)
{
	for (;;) {
		if (!(s & LOCKED))
			return -EPERM;
		if ((s & (PARKED | WOKEN)) == PARKED) {
			if (unlock_wake(m))
				return 0;
			s = atomic_load_explicit(&m->state, mo_relaxed);
			continue;
		}
		/* Nobody to wake, or somebody holding WOKEN is about to take
		 * it: this CAS is the release, and the last access to m. */
		if (cas(&m->state, &s, s & ~LOCKED, mo_release))
			return 0;
	}
}

int herd_mutex_unlock(herd_mutex *pm)
{
	if (herd__unlikely(!pm))
		return -EINVAL;
	struct mutex *m = mutex_of(pm);
	uint32_t s = LOCKED;
	if (herd__likely(atomic_compare_exchange_strong_explicit(
		    &m->state, &s, 0, mo_release, mo_relaxed)))
		return 0;
	return unlock_slow(m, s);
}

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
	herd__waiter *wt = claim_first(&rw->writers);
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
			if (cas(&rw->state, &s, ns, mo_acquire))
				break;
			continue;
		}
		if (!w) {
			herd__objunlock(&rw->lock);
			return deadline == HERD_NOWAIT ? HERD_ETIMEDOUT : -EPERM;
		}
		if (cas(&rw->state, &s, s | WAITERS, mo_relaxed))
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
		if (cas(&rw->state, &s, s + 1, mo_acquire))
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
		if (cas(&rw->state, &s, s - 1, mo_release))
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
		if (cas(&rw->state, &s, s & ~WRITER, mo_release))
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
