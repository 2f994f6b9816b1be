/*
 * scope.c - scopes: the tree that every task belongs to, waiting for it to
 * empty, canceling it, and closing it.
 *
 * The state word. A scope's `state` packs, as Go's sync.WaitGroup does, a
 * count (high 32 bits: live tasks of the scope + its open child scopes) and
 * the number of waiters queued on it (low 32 bits). Spawning adds to the
 * count and ending subtracts from it, with one atomic operation and no
 * lock, so tasks of one scope on different workers do not contend on a
 * lock. Only the ending that brings the count to zero while waiters are
 * queued takes the lock, to wake them.
 *
 * Invariants.
 *   - A child holds one count on its parent from herd_scope_open to the end
 *     of its close, and closing waits for the child's count to reach 0: a
 *     scope's count is 0 exactly when no task of it or of any scope nested
 *     in it is alive.
 *   - A scope is owned by the task that opened it; only that task closes it,
 *     at the latest as it ends (herd__scope_detach). So a scope outlives its
 *     tasks, a parent outlives its children, and parent pointers may be
 *     followed without locks.
 *   - Close frees the scope once state == 0: no task, and no waiter that
 *     could still touch it. A decrement that empties the scope while
 *     waiters are queued is made under the lock (see scope_put_last): until
 *     it is made the count is not zero, so the scope cannot be freed. Any
 *     other decrement never touches the scope afterwards. A waiter claimed
 *     by its deadline or by cancellation stays queued (and counted) until
 *     it unqueues itself, under the lock.
 *   - Registering a waiter is a CAS from a state whose count is non-zero, so
 *     it is ordered against the decrement that would reach zero: either the
 *     decrement sees the waiter, or the waiter sees the zero.
 *   - `canceled` only goes from 0 to 1. A canceled scope's children are
 *     canceled too, and a child opened later starts canceled (it copies
 *     the flag under the parent's lock). Parked tasks of canceled scopes
 *     are woken through the registries (wait.c).
 *   - The root scope (herd_run's) has no owner; when its count reaches 0
 *     every task has ended and the runtime shuts down.
 *   - `err`, the first failure (herd_scope_fail), goes from 0 to a negative
 *     code once, by a CAS, before the scope is canceled: a task woken by
 *     that cancellation reads the code.
 *
 * Limits (herd_scope_limit, as errgroup.SetLimit). A scope's first limit
 * allocates `lim` (kept until the scope is freed), then marks the scope
 * `slotted` (in the head, read by every spawn; it never goes back to 0, so
 * a scope seen slotted has its lim): each task spawned into it then takes
 * a slot, marked in the task (HERD__TASK_SLOT), and gives it back as it
 * ends, before it drops its count. `running` counts the slots taken;
 * tasks spawned before the first limit hold none. A spawn that finds no free slot (running >= limit, or
 * spawners queued before it) queues in `spawners` and parks, cancelable
 * (by its own scope, and by this one through its wait_scope, see wait.c).
 * A slot given back goes to the first waiting spawner that can be claimed
 * (running stays the same: slots are handed over, in FIFO order), else
 * running drops; so does a change of the limit and the leaving of a waiter
 * whose wait ended otherwise (slots_grant_locked): while a slot is free,
 * no claimable spawner is queued. A spawner is counted in `state` (it
 * attached its task) before it queues, so the scope cannot be closed and
 * freed under it; a failed wait drops that count.
 *
 * Locks. `lock` protects the children list, the wait queue, and `lim` (the
 * limit, `running`, `spawners`) (and the waiter half of `state` changes
 * only under it). Lock order: parent before child (cancellation walks down
 * holding each lock); a closing child takes its parent's lock only after
 * releasing its own.
 *
 * Processes. A scope holds its child processes as a list of links it does
 * not look into (`procs`, under `lock`); the process layer cancels and
 * ends them through rt->scope_hooks, which it stores (release) before its
 * first process joins any scope, so a scope that finds its list non-empty
 * reads the hooks (acquire) non-NULL.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

#define COUNT_ONE ((uint64_t)1 << 32)

/* A scope's limit, allocated by its first herd_scope_limit: a scope without
 * one keeps to three cache lines. Under the scope's lock. */
struct scope_limit {
	int limit;                  /* tasks at most; 0: no limit */
	uint32_t running;           /* slots taken */
	herd__waitq spawners;       /* spawns waiting for a slot */
};

/*
 * Three cache lines: the first two are read by every spawn and exit (the
 * head, the parent and rt in the first) and written rarely (opening,
 * closing, canceling, failing, waiting; and by the spawns and exits of a
 * limited scope, which take its lock anyway); `state`, written by every
 * spawn and every exit, has the third to itself.
 */
struct herd_scope {
	alignas(HERD__CACHELINE) herd__scope_head head; /* first: see core.h */
	herd__mutex lock;
	herd_scope *parent;
	herd__rt *rt;
	herd__task *owner;          /* NULL for the root */
	herd_scope *owned_next;     /* the owner's list of open scopes */
	herd__list children;        /* open children, through their sib */
	herd__link sib;
	herd__waitq waiters;
	herd__list procs;           /* its child processes (proc/: herd_proc.sc) */
	bool had_procs;             /* one was ever started in it */
	_Atomic int err;            /* the first failure, or 0 */
	struct scope_limit *lim;    /* from its first limit on (see Limits) */
	alignas(HERD__CACHELINE) _Atomic uint64_t state; /* count << 32 | waiters */
} __attribute__((aligned(HERD__CACHELINE)));

#if !HERD_ASAN && !HERD_TSAN && defined(__x86_64__)
_Static_assert(sizeof(struct herd_scope) == 3 * HERD__CACHELINE,
	       "a scope is three cache lines: what it seldom needs goes apart");
#endif

/* Scopes come from the worker's cache (a task that opens many, as a tree
 * of tasks does, would otherwise spend its time in aligned_alloc). */
static herd_scope *scope_new(herd__worker *w, herd__rt *rt)
{
	herd_scope *s = w ? herd__cache_get(&w->scope_cache, &rt->scope_depot) : NULL;
	if (!s)
		s = aligned_alloc(HERD__CACHELINE, sizeof *s);
	if (s) {
		memset(s, 0, sizeof *s);
		herd__mutex_init(&s->lock, HERD__RANK_SCOPE);
		s->rt = rt;
	}
	return s;
}

static void scope_free(herd__worker *w, herd_scope *s)
{
	if (!herd__cache_put(&w->scope_cache, &s->rt->scope_depot, s))
		free(s);
}

static void scope_release(void *s, void *arg)
{
	(void)arg;
	free(s);
}

void herd__scope_cache_drain(herd__worker *w)
{
	void *s;
	while ((s = herd__cache_drain(&w->scope_cache, &w->rt->scope_depot)))
		free(s);
}

void herd__scope_depot_free(herd__rt *rt)
{
	herd__depot_fini(&rt->scope_depot, scope_release, NULL);
}

static inline uint32_t count_of(uint64_t state)
{
	return (uint32_t)(state >> 32);
}

herd_scope *herd__scope_root_new(herd__rt *rt)
{
	return scope_new(NULL, rt);
}

void herd__scope_root_free(herd_scope *s)
{
	if (s)
		free(s->lim);
	free(s);
}

/* Wakes the queued waiters; s->lock held. */
static void wake_waiters_locked(herd_scope *s)
{
	unsigned n = herd__waitq_wake_all(&s->waiters);
	atomic_fetch_sub_explicit(&s->state, n, mo_relaxed);
}

/*
 * Drops n counts (scope_put_n's way when they may be the last). If that
 * empties the scope, wakes its waiters, and if it
 * is the root, shuts the runtime down.
 *
 * A decrement that would empty the scope while waiters are queued is made
 * under the lock: the scope cannot be freed before it (the count is not yet
 * zero, so a closer keeps waiting), waiters cannot come or go during it,
 * and the wake sees the count the decrement left. Any other decrement is a
 * lock-free CAS, after which s is not touched: its owner may free it.
 */
__attribute__((noinline)) static void scope_put_last(herd_scope *s, uint32_t n)
{
	bool root = s->parent == NULL;
	herd__rt *rt = s->rt;
	uint64_t old = atomic_load_explicit(&s->state, mo_relaxed);
	for (;;) {
		if (count_of(old) == n && (uint32_t)old)
			break; /* empties it with waiters queued: the slow way */
		if (atomic_compare_exchange_weak_explicit(&s->state, &old,
							  old - n * COUNT_ONE,
							  mo_acq_rel, mo_relaxed)) {
			if (count_of(old) == n && root)
				herd__shutdown(rt);
			return;
		}
	}
	herd__mutex_lock(&s->lock);
	old = atomic_fetch_sub_explicit(&s->state, n * COUNT_ONE, mo_acq_rel);
	if (count_of(old) == n)
		wake_waiters_locked(s);
	herd__mutex_unlock(&s->lock);
	if (count_of(old) == n && root)
		herd__shutdown(rt);
}

/* scope_put_last's common case, a decrement that does not empty the
 * scope, inline: the call's frame would cost as much as the CAS. */
static inline void scope_put_n(herd_scope *s, uint32_t n)
{
	uint64_t old = atomic_load_explicit(&s->state, mo_relaxed);
	while (count_of(old) > n)
		if (atomic_compare_exchange_weak_explicit(&s->state, &old,
							  old - n * COUNT_ONE,
							  mo_acq_rel, mo_relaxed))
			return;
	scope_put_last(s, n);
}

static void scope_put(herd_scope *s)
{
	scope_put_n(s, 1);
}

/* Counts a new task in s; HERD_ECANCELED if s is canceled. */
int herd__scope_attach(herd_scope *s, herd__task *t)
{
	if (herd__unlikely(atomic_load_explicit(&s->head.canceled, mo_acquire)))
		return HERD_ECANCELED;
	t->scope = s;
	atomic_fetch_add_explicit(&s->state, COUNT_ONE, mo_relaxed);
	return 0;
}

static int scope_close(herd__worker **wp, herd__task *t, herd_scope *s);

__attribute__((noinline, cold)) static void slot_put(herd_scope *s);

void herd__scope_detach(herd__worker **wp, herd__task *t)
{
	while (t->owned)
		scope_close(wp, t, t->owned);
	herd__registry_leave(t);
	if (herd__unlikely(t->flags & HERD__TASK_SLOT))
		slot_put(t->scope);
	scope_put(t->scope);
}

int herd_scope_open(herd_scope **out)
{
	herd__worker *w;
	herd__task *t;
	if (!out)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	herd_scope *s = scope_new(w, w->rt);
	if (!s)
		return -ENOMEM;
	herd_scope *p = t->scope;
	s->parent = p;
	s->owner = t;
	herd__mutex_lock(&p->lock);
	atomic_store_explicit(&s->head.canceled,
			      atomic_load_explicit(&p->head.canceled, mo_relaxed), mo_relaxed);
	herd__list_push_front(&p->children, &s->sib);
	atomic_fetch_add_explicit(&p->state, COUNT_ONE, mo_relaxed);
	herd__mutex_unlock(&p->lock);
	s->owned_next = t->owned;
	t->owned = s;
	*out = s;
	return 0;
}

herd_scope *herd_scope_current(void)
{
	herd__worker *w = herd__self();
	return w && w->cur ? w->cur->scope : NULL;
}

/* Is the scope `inner` the scope s or nested in it? */
static bool scope_within(const herd_scope *inner, const herd_scope *s)
{
	for (; inner; inner = inner->parent)
		if (inner == s)
			return true;
	return false;
}

herd__mutex *herd__scope_lock(herd_scope *s)
{
	return &s->lock;
}

herd__list *herd__scope_procs(herd_scope *s)
{
	return &s->procs;
}

bool *herd__scope_had_procs(herd_scope *s)
{
	return &s->had_procs;
}

/*
 * Queues wt as a waiter unless the scope is empty (then false); s->lock
 * held. For a closer, empty means no task and no other waiter (state 0);
 * for others, a zero count.
 */
static bool waiter_register(herd_scope *s, herd__waiter *wt, bool closing)
{
	uint64_t v = atomic_load_explicit(&s->state, mo_acquire);
	do {
		if (closing ? v == 0 : count_of(v) == 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&s->state, &v, v + 1,
							mo_acq_rel, mo_acquire));
	herd__waitq_push(&s->waiters, wt);
	return true;
}

/* After a wait: unqueues wt if its waker did not; s->lock held. */
static void waiter_unregister(herd_scope *s, herd__waiter *wt)
{
	if (!wt->linked)
		return;
	herd__waitq_remove(&s->waiters, wt);
	uint64_t v = atomic_fetch_sub_explicit(&s->state, 1, mo_acq_rel) - 1;
	/* A closer may be waiting for the last waiter to leave. */
	if (count_of(v) == 0 && (uint32_t)v)
		wake_waiters_locked(s);
}

int herd_scope_wait(herd_scope *s, int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	if (!s)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	if (scope_within(t->scope, s))
		return -EDEADLK;
	if (deadline != HERD_NOWAIT && herd__scope_canceled(t->scope))
		return HERD_ECANCELED;
	herd__waiter wt = {.task = t};
	herd__mutex_lock(&s->lock);
	if (!waiter_register(s, &wt, false)) {
		herd__mutex_unlock(&s->lock);
		return 0;
	}
	herd__waits_on(w->cur, HERD__WHY_SCOPE_WAIT, s);
	int rc = herd__wait(&w, &s->lock, deadline, true);
	if (rc != 0) {
		herd__mutex_lock(&s->lock);
		waiter_unregister(s, &wt);
		herd__mutex_unlock(&s->lock);
	}
	return rc;
}

static bool cancel_locked(herd_scope *s)
{
	if (atomic_load_explicit(&s->head.canceled, mo_relaxed))
		return false;
	atomic_store_explicit(&s->head.canceled, 1, mo_seq_cst);
	if (!herd__list_empty(&s->procs)) /* the process layer's hooks are in */
		atomic_load_explicit(&s->rt->scope_hooks, mo_acquire)->cancel_locked(&s->procs);
	herd_scope *c;
	herd__list_each(c, &s->children, herd_scope, sib) {
		herd__mutex_lock(&c->lock);
		cancel_locked(c);
		herd__mutex_unlock(&c->lock);
	}
	return true;
}

int herd_scope_cancel(herd_scope *s)
{
	if (!s)
		return -EINVAL;
	herd__rt *rt = s->rt; /* s may be closed and freed once unlocked */
	herd__mutex_lock(&s->lock);
	bool newly = cancel_locked(s);
	herd__mutex_unlock(&s->lock);
	if (newly && herd__unlikely(rt->trace))
		herd__trace_any(rt, HERD__TR_CANCEL, 0, (uintptr_t)s, 0, NULL, 0);
	if (newly)
		herd__cancel_parked(rt);
	return 0;
}

/* Waits (firmly) until s has no task and no waiter, then frees it;
 * returns its first failure's code, or 0. */
static int scope_close(herd__worker **wp, herd__task *t, herd_scope *s)
{
	herd__mutex_lock(&s->lock);
	for (;;) {
		herd__waiter wt = {.task = t};
		if (!waiter_register(s, &wt, true))
			break;
		herd__waits_on(t, HERD__WHY_SCOPE_CLOSE, s);
		herd__wait(wp, &s->lock, HERD_FOREVER, false);
		herd__mutex_lock(&s->lock);
		waiter_unregister(s, &wt);
	}
	/* No task, so no spawner waiting for a slot (each holds a count). */
	HERD__ASSERT(!s->lim || (s->lim->running == 0 &&
				 herd__list_empty(&s->lim->spawners)));
	herd__mutex_unlock(&s->lock);
	/* No task of s is left to start a process: end those still running. */
	const herd__scope_hooks *hooks =
		atomic_load_explicit(&s->rt->scope_hooks, mo_acquire);
	if (hooks)
		hooks->end(wp, s);

	herd_scope **o = &t->owned;
	while (*o != s)
		o = &(*o)->owned_next;
	*o = s->owned_next;

	int err = atomic_load_explicit(&s->err, mo_acquire);
	if (herd__unlikely(s->lim)) /* no call to free for most scopes */
		free(s->lim);
	herd_scope *p = s->parent;
	herd__mutex_lock(&p->lock);
	herd__list_remove(&p->children, &s->sib);
	herd__mutex_unlock(&p->lock);
	scope_free(*wp, s);
	scope_put(p); /* the owner lives in p: p cannot empty here */
	return err;
}

int herd_scope_close(herd_scope *s)
{
	herd__worker *w;
	herd__task *t;
	if (!s)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	if (s->owner != t)
		return -EPERM;
	return scope_close(&w, t, s);
}

/* ------------------------------------------------------------------ */
/* Failures (errgroup.WithContext)                                    */
/* ------------------------------------------------------------------ */

int herd_scope_fail(herd_scope *s, int code)
{
	if (code >= 0 || (!s && !(s = herd_scope_current())))
		return -EINVAL;
	int none = 0;
	bool first = atomic_compare_exchange_strong_explicit(&s->err, &none, code,
							     mo_acq_rel, mo_relaxed);
	/* A later failure cancels too (cancelling is idempotent): the first
	 * may not have reached its cancel yet, and whoever fails must find
	 * the scope canceled when this returns, as Go's errgroup makes its
	 * later callers wait for the first. */
	herd_scope_cancel(s);
	return first;
}

int herd_scope_err(herd_scope *s)
{
	if (!s && !(s = herd_scope_current()))
		return -EINVAL;
	return atomic_load_explicit(&s->err, mo_acquire);
}

/* ------------------------------------------------------------------ */
/* Limits (errgroup.SetLimit)                                         */
/* ------------------------------------------------------------------ */

static bool slot_free(const herd_scope *s)
{
	return s->lim->limit == 0 || s->lim->running < (uint32_t)s->lim->limit;
}

/* Hands free slots to the first claimable spawners; s->lock held. */
static void slots_grant_locked(herd_scope *s)
{
	while (slot_free(s) && herd__waitq_wake_one(&s->lim->spawners))
		s->lim->running++;
}

/* A slotted task ends: its slot goes to the first waiting spawner. Out of
 * line: inlined, it would cost every task's end registers it never uses. */
__attribute__((noinline, cold)) static void slot_put(herd_scope *s)
{
	herd__mutex_lock(&s->lock);
	HERD__ASSERT(s->lim->running > 0);
	s->lim->running--;
	slots_grant_locked(s);
	herd__mutex_unlock(&s->lock);
}

/* Queues the calling task for a slot and parks; s->lock held, released.
 * Returns 0 with a slot taken for it, or the wait's error. */
static int slot_wait(herd__worker **wp, herd_scope *s, int64_t deadline)
{
	herd__task *t = (*wp)->cur;
	herd__waiter wt = {.task = t};
	/* s is open (the spawn holds a count): its cancellation ends the
	 * wait too. */
	herd__wait_scope_set(t, s);
	herd__waitq_push(&s->lim->spawners, &wt);
	herd__waits_on(t, HERD__WHY_SCOPE_SLOT, s);
	int rc = herd__wait(wp, &s->lock, deadline, true);
	if (rc) {
		herd__mutex_lock(&s->lock);
		HERD__ASSERT(wt.linked); /* a granter unqueues only those it wins */
		herd__waitq_remove(&s->lim->spawners, &wt);
		slots_grant_locked(s); /* others may have queued behind it */
		herd__mutex_unlock(&s->lock);
	} else if (herd__scope_canceled(s) || herd__scope_canceled(t->scope)) {
		/* Granted a slot by a task that ended in the same cancellation
		 * (before the canceler reached this wait): it still ends in
		 * HERD_ECANCELED, with nothing spawned. */
		slot_put(s);
		rc = HERD_ECANCELED;
	}
	herd__wait_scope_set(t, NULL);
	return rc;
}

int herd__scope_slot_take(herd__worker **wp, herd_scope *s, herd__task *t,
			  int64_t deadline)
{
	HERD__ASSERT(t->scope == s);
	int rc = 0;
	herd__mutex_lock(&s->lock);
	HERD__ASSERT(s->lim); /* set before `slotted` */
	if (herd__list_empty(&s->lim->spawners) && slot_free(s)) {
		s->lim->running++;
		herd__mutex_unlock(&s->lock);
	} else if (deadline == HERD_NOWAIT || !*wp || !(*wp)->cur) {
		herd__mutex_unlock(&s->lock);
		/* A thread that is not a task cannot wait. */
		rc = deadline == HERD_NOWAIT ? HERD_ETIMEDOUT : -EAGAIN;
	} else {
		rc = slot_wait(wp, s, deadline); /* unlocks */
	}
	if (rc) {
		scope_put(s); /* undoes the attach: nothing was spawned */
		return rc;
	}
	t->flags |= HERD__TASK_SLOT;
	return 0;
}

int herd_scope_limit(herd_scope *s, int n)
{
	if (!s || n < 0)
		return -EINVAL;
	/* `slotted` is stored once lim is set, and never cleared: seen 0,
	 * lim may be needed; allocated here, not under the lock. */
	struct scope_limit *fresh = NULL;
	if (n && !atomic_load_explicit(&s->head.slotted, mo_acquire) &&
	    !(fresh = calloc(1, sizeof *fresh)))
		return -ENOMEM;
	herd__mutex_lock(&s->lock);
	if (!s->lim && fresh) {
		s->lim = fresh;
		fresh = NULL;
		atomic_store_explicit(&s->head.slotted, 1, mo_release);
	}
	if (s->lim) { /* else n is 0: no limit to remove */
		s->lim->limit = n;
		slots_grant_locked(s);
	}
	herd__mutex_unlock(&s->lock);
	free(fresh); /* another call set lim first */
	return 0;
}

int herd_canceled(void)
{
	herd__worker *w = herd__self();
	return w && w->cur && herd__scope_canceled(w->cur->scope);
}
