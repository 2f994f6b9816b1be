/*
 * mutex.c - task-aware mutexes (herd_mutex, after Go's sync.Mutex): a task
 * that has to wait parks, and its worker runs other tasks, where a pthread
 * mutex would stall the worker thread. rwmutex.c has the read-write mutex,
 * built the same way.
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
 *   PENDING  the first waiter is about to queue (see the plain unlock).
 * Lock is one CAS 0 -> LOCKED; unlock is one CAS LOCKED -> 0, or the plain
 * unlock below; any other state takes the slow paths. In normal mode a
 * running task takes a free mutex even if others wait (barging: it is far
 * cheaper than a switch); an unlock with waiters wakes the first (WOKEN,
 * unless it is the last), which competes, and if it loses queues again at
 * the head. A waiter that loses after waiting more than STARVE_NS sets
 * HANDOFF, as Go's starvation mode; an unlock clears it when it hands the
 * mutex to a waiter that waited less, or to the last one.
 * Invariants:
 *   - under the lock, PARKED is set exactly when the queue is not empty;
 *     PARKED and HANDOFF change only under the lock;
 *   - HANDOFF implies LOCKED and PARKED: a free mutex can always be taken;
 *   - WOKEN and HANDOFF are never both set;
 *   - a bit other than LOCKED is set only while PARKED or PENDING is;
 *     PENDING only by the first waiter, under the lock, which clears it
 *     (turns it into PARKED) before it releases the lock;
 *   - WOKEN belongs to the task that set it (a spinner) or was woken with
 *     it (a waiter); only that task clears it, in the CAS that takes the
 *     mutex, or, with LOCKED set, in the CAS that queues it again or gives
 *     up: then the holder's unlock is still to come and will wake a waiter.
 *     So while waiters are queued, a free mutex always has somebody about
 *     to take it, and no wake is lost.
 *
 * The plain unlock. An atomic read-modify-write costs as much as the rest
 * of a lock and unlock together, so an unlock on a worker thread that
 * finds the state exactly LOCKED clears it with a plain store, in a
 * restartable sequence (Linux's rseq, which glibc registers for each
 * thread): load, compare, store. The store wipes any bit set between its
 * load and itself; by the invariant above, that can only be a first
 * waiter's PENDING. That waiter, having set PENDING, calls
 * membarrier(PRIVATE_EXPEDITED_RSEQ), which sends every sequence that has
 * not stored yet back to the CAS path (which sees PENDING), then looks
 * again: PENDING gone means that a plain unlock released the mutex, and it
 * competes again; else no plain unlock can happen until the queue empties,
 * and it turns PENDING into PARKED. The barrier costs about a microsecond
 * (more with many CPUs), only when a task parks on a mutex on which nobody
 * is parked, and only with several workers: the waiters of one worker park
 * without spinning, and no other worker can be inside a plain unlock.
 * An unlock of an unlocked mutex still changes nothing and fails, but two
 * unlocks racing for one lock (a bug) may both succeed, where the CAS
 * refused one; the second may then release a newcomer's lock.
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
 * setting and clearing of PARKED, PENDING, HANDOFF and WAITERS, and the
 * grants.
 * A waiter preparing to park takes its registry's lock under it; wakers
 * ready tasks (the scheduler's leaf locks) after releasing it. No other
 * object lock is taken under it; the first waiter's membarrier is called
 * under it.
 */
#include "sync/sync.h"

#include <errno.h>

/* The plain unlock needs x86-64's store order, glibc's rseq registration
 * (2.35 and later) and no ThreadSanitizer, which cannot see its store. */
#if defined(__x86_64__) && defined(__GLIBC__) && !HERD_TSAN && \
	__has_include(<sys/rseq.h>)
#define PLAIN_UNLOCK 1
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define PLAIN_UNLOCK 0
#endif

enum {
	LOCKED = 1u << 0,
	PARKED = 1u << 1,
	WOKEN = 1u << 2,
	HANDOFF = 1u << 3,
	PENDING = 1u << 4,
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

/* The result a woken mutex waiter gets: compete again (holding WOKEN, or
 * without it when it was the last waiter), or it is yours. */
enum { WAKE_RETRY = 0, WAKE_OWNED = 1, WAKE_RETRY_ALONE = 2 };

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

/* Under the lock: the invariants above. */
static void mutex_check(struct mutex *m)
{
	uint32_t s = atomic_load_explicit(&m->state, mo_relaxed);
	HERD__ASSERT(!(s & PARKED) == herd__list_empty(&m->waiters));
	HERD__ASSERT(!(s & HANDOFF) || (s & (LOCKED | PARKED)) == (LOCKED | PARKED));
	HERD__ASSERT((s & (WOKEN | HANDOFF)) != (WOKEN | HANDOFF));
	HERD__ASSERT(!(s & PENDING));
	(void)s;
}

/* ------------------------------------------------------------------ */
/* The plain unlock (see the top)                                      */
/* ------------------------------------------------------------------ */

#if PLAIN_UNLOCK
/* The thread pointer's offset of glibc's struct rseq; 0 (where the
 * thread's own pointer lives) when the plain unlock is off. Set once, by
 * the constructor, before any task runs. */
static ptrdiff_t plain_off;

/* Turns the plain unlock on if this thread has an rseq area and the
 * process may restart other threads' sequences. */
__attribute__((constructor)) static void plain_unlock_init(void)
{
	char *tp; /* the thread pointer: %fs:0 holds it on x86-64 */
	__asm__("movq %%fs:0, %0" : "=r"(tp));
	const struct rseq *rs = (const struct rseq *)(tp + __rseq_offset);
	if (__rseq_size < offsetof(struct rseq, flags) || __rseq_offset == 0 ||
	    (int32_t)rs->cpu_id < 0)
		return;
	if (herd__os_membarrier(HERD__OS_MB_REGISTER_PRIVATE_RSEQ) == 0)
		plain_off = __rseq_offset;
}

/* The first waiter's barrier: every plain unlock has stored, or restarts.
 * Only workers unlock plainly: with one, the caller's, there is none to
 * wait for (which spares the barrier where waiters park without spinning). */
static void plain_unlock_barrier(herd__worker *w)
{
	if (!plain_off || w->rt->nworkers == 1)
		return;
	int rc = herd__os_membarrier(HERD__OS_MB_PRIVATE_RSEQ);
	if (rc == 0)
		return;
	/* A forked child may have lost the registration: renew it. */
	if (rc != -EPERM ||
	    herd__os_membarrier(HERD__OS_MB_REGISTER_PRIVATE_RSEQ) != 0 ||
	    herd__os_membarrier(HERD__OS_MB_PRIVATE_RSEQ) != 0)
		herd__assert_fail("membarrier(PRIVATE_EXPEDITED_RSEQ)", __FILE__,
				  __LINE__);
}

/*
 * Releases m if its state is exactly LOCKED, in a restartable sequence:
 * the kernel sends a preempted or barriered sequence to `slow`, as it does
 * when the state is not LOCKED or the thread has no rseq area (cpu_id
 * negative). The store is a release on x86-64; "memory" keeps the
 * critical section's accesses before it.
 */
#define PLAIN_UNLOCK_OR(state, off, slow)                                      \
	__asm__ goto(".pushsection __rseq_cs, \"aw\"\n\t"                       \
		     ".balign 32\n"                                             \
		     "3:\t.long 0, 0\n\t"                                        \
		     ".quad 1f, 2f - 1f, 4f\n\t"                                  \
		     ".popsection\n\t"                                           \
		     "cmpl $0, %%fs:%c[cpu](%[o])\n\t"                           \
		     "jl %l[slow]\n\t"                                            \
		     "leaq 3b(%%rip), %%rax\n\t"                                   \
		     "movq %%rax, %%fs:%c[cs](%[o])\n"                           \
		     "1:\tcmpl %[l], (%[st])\n\t"                                  \
		     "jne %l[slow]\n\t"                                           \
		     "movl $0, (%[st])\n"                                         \
		     "2:\n\t"                                                     \
		     ".pushsection __rseq_failure, \"ax\"\n\t"                  \
		     ".long %c[sig]\n"                                            \
		     "4:\tjmp %l[slow]\n\t"                                        \
		     ".popsection\n"                                              \
		     :                                                         \
		     : [st] "r"(state), [o] "r"(off), [l] "i"(LOCKED),         \
		       [sig] "i"(RSEQ_SIG),                                     \
		       [cpu] "i"(offsetof(struct rseq, cpu_id)),                \
		       [cs] "i"(offsetof(struct rseq, rseq_cs))                 \
		     : "rax", "memory", "cc"                                    \
		     : slow)
#else
static void plain_unlock_barrier(herd__worker *w)
{
	(void)w;
}
#endif

bool herd__mutex_is_locked(herd_mutex *m)
{
	return atomic_load_explicit(&mutex_of(m)->state, mo_relaxed) & LOCKED;
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
	PARK_RETRY_ALONE = 3, /* woken as the last waiter: compete again */
};

/*
 * Under the lock, with no waiter queued and the mutex held, as seen in *sp:
 * announces the caller as the first waiter with PENDING (giving up WOKEN,
 * if *woken) and waits until no plain unlock can miss it (see the top).
 * Returns true with the state in *sp, PENDING and LOCKED set; false with
 * PENDING clear if the mutex was released meanwhile.
 */
static bool announce(struct mutex *m, herd__worker *w, uint32_t *sp, bool *woken)
{
	uint32_t s = *sp;
	uint32_t ns = (s | PENDING) & ~(*woken ? WOKEN : 0u);
	if (!(s & LOCKED) || !herd__state_cas(&m->state, &s, ns, mo_relaxed))
		return false;
	*woken = false;
	plain_unlock_barrier(w);
	s = atomic_load_explicit(&m->state, mo_relaxed);
	if (!(s & PENDING))
		return false; /* a plain unlock stored 0 over it */
	*sp = s;
	return true;
}

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
	bool first = !(s & PARKED);
	if (first && !announce(m, *wp, &s, woken)) {
		herd__objunlock(&m->lock);
		return PARK_AGAIN;
	}
	bool starving = again && herd_now() - wt->start > STARVE_NS;
	/* Queue only while the mutex is held: its unlock will wake us. */
	for (;;) {
		uint32_t ns = ((s | PARKED) & ~PENDING) | (starving ? HANDOFF : 0u);
		if (*woken)
			ns &= ~WOKEN;
		if (!(s & LOCKED)) {
			if (first)
				atomic_fetch_and_explicit(&m->state, ~PENDING, mo_relaxed);
			herd__objunlock(&m->lock);
			return PARK_AGAIN;
		}
		if (herd__state_cas(&m->state, &s, ns, mo_relaxed))
			break;
		/* The first waiter, holding PENDING, looks again itself: only
		 * an unlock or a newcomer's lock can have changed the state
		 * (nobody sets WOKEN without PARKED). The others go back to
		 * the lock loop. */
		if (!first) {
			herd__objunlock(&m->lock);
			return PARK_AGAIN;
		}
	}
	if (again)
		herd__waitq_push_front(&m->waiters, &wt->base);
	else
		herd__waitq_push(&m->waiters, &wt->base);
	*woken = false;
	mutex_check(m);
	herd__waits_on((*wp)->cur, HERD__WHY_MUTEX, m);
	int rc = herd__objwait(wp, &m->lock, deadline, false);
	if (rc == WAKE_OWNED)
		return PARK_OWNED;
	if (rc == WAKE_RETRY)
		return PARK_RETRY;
	if (rc == WAKE_RETRY_ALONE)
		return PARK_RETRY_ALONE;
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
	return !woken || herd__state_cas(&m->state, s, *s & ~WOKEN, mo_relaxed);
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
			if (herd__state_cas(&m->state, &s, ns, mo_acquire))
				return 0;
			continue;
		}
		if (!w)
			return deadline == HERD_NOWAIT ? HERD_ETIMEDOUT : -EPERM;
		if (may_spin(w, s, rounds)) {
			/* Tell unlocks that somebody is about to take it. */
			if (!woken && (s & (PARKED | WOKEN)) == PARKED) {
				if (!herd__state_cas(&m->state, &s, s | WOKEN, mo_relaxed))
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
		if (rc == PARK_RETRY || rc == PARK_RETRY_ALONE) {
			woken = rc == PARK_RETRY;
			again = true;
			rounds = 0;
		}
		s = atomic_load_explicit(&m->state, mo_relaxed);
	}
}

/* The fast paths start on a cache line of their own: the unlock's is 64
 * bytes, and split over two lines (as the link happened to place it) the
 * uncontended loop of make bench took a fifth more CPU time. */
#define FAST_PATH __attribute__((aligned(64)))

FAST_PATH int herd_mutex_lock(herd_mutex *pm, int64_t deadline)
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
		if (herd__state_cas(&m->state, &s, s | LOCKED, mo_acquire))
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
	herd__waiter *h = herd__waitq_claim_first(&m->waiters);
	herd__task *t = h ? h->task : NULL;
	uint32_t clear = 0;
	if (!h) {
		/* Only stale waiters: let anybody take it. Released under the
		 * lock, but those waiters are still inside their lock calls,
		 * so m cannot be freed yet. */
		clear = LOCKED | HANDOFF | WOKEN;
	} else if (herd__list_empty(&m->waiters)) {
		/* The last: nobody is left for WOKEN to keep from being woken,
		 * and left set until the waiter runs (which may take a while
		 * if this worker stays busy) it would keep every lock and
		 * unlock meanwhile off the fast paths. */
		clear = PARKED | HANDOFF | (s & HANDOFF ? 0u : WOKEN);
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
		/* It holds WOKEN, which we set for it (unless it was the
		 * last): until it runs, nothing else changes WOKEN, and it
		 * competes when it does. */
		atomic_fetch_and_explicit(&m->state, ~LOCKED, mo_release);
		herd__wait_finish(t, clear & WOKEN ? WAKE_RETRY_ALONE : WAKE_RETRY);
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
		if (herd__state_cas(&m->state, &s, s & ~LOCKED, mo_release))
			return 0;
	}
}

FAST_PATH int herd_mutex_unlock(herd_mutex *pm)
{
	if (herd__unlikely(!pm))
		return -EINVAL;
	struct mutex *m = mutex_of(pm);
#if PLAIN_UNLOCK
	/* Workers only (see plain_unlock_barrier); no switch can happen
	 * here, so the worker variable may be read directly. */
	ptrdiff_t off = plain_off;
	if (herd__likely(off) && herd__likely(herd__tls_worker)) {
		PLAIN_UNLOCK_OR(&m->state, off, slow);
		return 0;
	}
#endif
	uint32_t s = LOCKED;
	if (herd__likely(atomic_compare_exchange_strong_explicit(
		    &m->state, &s, 0, mo_release, mo_relaxed)))
		return 0;
	return unlock_slow(m, s);
#if PLAIN_UNLOCK
slow:
	return unlock_slow(m, atomic_load_explicit(&m->state, mo_relaxed));
#endif
}
