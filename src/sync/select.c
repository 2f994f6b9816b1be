/*
 * select.c - Go's select: wait until one of several channel operations can
 * proceed, and perform exactly one.
 *
 * The algorithm is Go's (runtime/select.go):
 *   1. Order the cases twice: a random permutation to poll them in (so that
 *      when several are ready each is equally likely: no case starves), and
 *      by channel address to lock them in.
 *   2. Lock every channel, in address order, each once.
 *   3. Poll the cases in random order; perform the first that can proceed.
 *   4. If none can and the call may block, queue a waiter (on this stack)
 *      on every channel, make the wait claimable (herd__wait_prepare) while
 *      all the locks are still held, unlock, and park. Whichever waker wins
 *      the task's wake (wait.c) performs its case and records its index as
 *      the wake's result; a deadline or a cancellation may win instead.
 *   5. Lock every channel again and unqueue the waiters still queued.
 * A buffered channel's case that would block has closed that channel's
 * lock-free fast path (chan.c) before step 4 queues its waiter, so every
 * later send or receive on it comes to the lock and finds the waiter. The
 * locks are released with herd__chan_unlock, which opens the fast path
 * again on a channel nobody waits on.
 *
 * Lock order: channel locks in increasing order of address. A plain send or
 * receive holds one channel lock only, and nothing that holds a channel
 * lock takes another's but select, which takes them in that order: so no
 * cycle can form. Timers deliver to channels with no other herd lock held.
 *
 * A channel may appear in several cases; it is locked once. Its waiters may
 * then include both a send and a receive of this task: a waker claims the
 * task before it touches a waiter, so only one of them can be performed.
 *
 * The small path. Most selects have two to four cases, where the general
 * path's loops, its permutation and its sort cost more than the channel
 * work itself. Up to SMALL_CASES cases, select_small takes the same steps
 * with the count a constant (every loop unrolled): the lock order comes
 * from a sorting network (NULL channels first, so that "not the channel
 * locked last" skips both NULLs and repeats); the poll first marks the
 * candidates, the live cases that do not surely block, and tries a lone
 * candidate at once; two or more are polled in the order of a random
 * permutation of all the cases, drawn from one random number, with the
 * others skipped where they fall, which leaves each ready case equally
 * likely. So a select that finds one case ready, or none, draws no random
 * number. The solo flag of the channel locks (sync.h) is read once.
 */
#include "sync/sync.h"

#include <stdlib.h>
#include <time.h>

/* Cases handled without allocating. */
#define INLINE_CASES 16
/* Up to this many cases, the small path (see above). */
#define SMALL_CASES 4
/* Up to this many cases, insertion sort beats heapsort. */
#define INSERTION_SORT_MAX 16

/*
 * Random numbers for the poll order, from the worker's generator, or a
 * thread's own outside the runtime. xorshift64*: cheap, and plenty for
 * choosing among ready cases.
 */
static __thread uint64_t thread_rand __attribute__((tls_model("initial-exec")));

/* A plain thread's first draw: seeds its generator from the clock. */
static __attribute__((noinline, cold)) uint64_t rand_seed(uint64_t *state)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_nsec ^ ((uint64_t)(uintptr_t)state << 16) ^
		0x9e3779b97f4a7c15ull) | 1;
}

/* 32 random bits: xorshift64*'s high half. */
static inline uint32_t rand32(uint64_t *state)
{
	uint64_t x = *state;
	if (herd__unlikely(x == 0))
		x = rand_seed(state);
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1dull) >> 32);
}

/* A random number below n (multiply-shift; n <= 2^16). */
static inline uint32_t rand_below(uint64_t *state, uint32_t n)
{
	return (uint32_t)(((uint64_t)rand32(state) * n) >> 32);
}

static inline uintptr_t key(const herd_case *cs, uint16_t i)
{
	return (uintptr_t)cs[i].chan;
}

static void sift_down(const herd_case *cs, uint16_t *order, size_t r, size_t n)
{
	for (size_t c; (c = 2 * r + 1) < n; r = c) {
		if (c + 1 < n && key(cs, order[c + 1]) > key(cs, order[c]))
			c++;
		if (key(cs, order[r]) >= key(cs, order[c]))
			return;
		uint16_t t = order[r];
		order[r] = order[c];
		order[c] = t;
	}
}

/* Sorts order[0..n) by channel address: insertion sort for the usual few
 * cases, heapsort beyond (no allocation, no quadratic worst case). */
static void sort_by_chan(const herd_case *cs, uint16_t *order, size_t n)
{
	if (n <= INSERTION_SORT_MAX) {
		for (size_t i = 1; i < n; i++) {
			uint16_t v = order[i];
			size_t j = i;
			for (; j > 0 && key(cs, order[j - 1]) > key(cs, v); j--)
				order[j] = order[j - 1];
			order[j] = v;
		}
		return;
	}
	for (size_t r = n / 2; r-- > 0;)
		sift_down(cs, order, r, n);
	for (size_t end = n; --end > 0;) {
		uint16_t t = order[0];
		order[0] = order[end];
		order[end] = t;
		sift_down(cs, order, 0, end);
	}
}

/*
 * Locks the channels of cases order[0..n) but the one at position `skip`
 * (n: none), each once: equal channels are adjacent in lock order. self:
 * the caller's worker, or NULL (herd__chan_lock).
 */
static inline void lock_all(const herd_case *cs, const uint16_t *order, size_t n,
			    size_t skip, const herd__worker *self)
{
	herd_chan *last = NULL;
	for (size_t k = 0; k < n; k++) {
		herd_chan *ch = cs[order[k]].chan;
		if (ch != last && k != skip)
			herd__chan_lock(ch, self);
		last = ch;
	}
}

static inline void unlock_all(const herd_case *cs, const uint16_t *order, size_t n,
			      size_t skip, const herd__worker *self)
{
	for (size_t k = n; k-- > 0;) {
		herd_chan *ch = cs[order[k]].chan;
		if (k != skip && (k == 0 || cs[order[k - 1]].chan != ch))
			herd__chan_unlock(ch, self);
	}
}

/* -EINVAL if the case is not valid, else 0. */
static __attribute__((noinline)) int check_case(const herd_case *c)
{
	if (c->op != HERD_SEND && c->op != HERD_RECV)
		return -EINVAL;
	if (c->op == HERD_SEND && c->chan && !c->elem && c->chan->elem_size)
		return -EINVAL;
	/* The size of the caller's variable, when the case says it. */
	if (c->chan && c->elem && c->size && c->size != c->chan->elem_size)
		return -EINVAL;
	return 0;
}

static int check_cases(const herd_case *cs, size_t n)
{
	if (n > HERD_SELECT_MAX || (n && !cs))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (check_case(&cs[i]))
			return -EINVAL;
	return 0;
}

/* Queues a waiter per case, parks, and unqueues them again. Called with
 * every channel locked; returns with none locked. */
static int block(herd_case *cs, const uint16_t *lockorder, size_t n,
		 herd__chan_waiter *wt, herd__worker *w, int64_t deadline)
{
	herd__task *t = w->cur;
	for (size_t k = 0; k < n; k++) {
		uint16_t i = lockorder[k];
		herd_chan *ch = cs[i].chan;
		wt[k] = (herd__chan_waiter){.base.task = t, .elem = cs[i].elem, .index = i};
		herd__waitq_push(cs[i].op == HERD_SEND ? &ch->sendq : &ch->recvq,
				 &wt[k].base);
	}
	herd__waits_on(t, HERD__WHY_SELECT, NULL);
	herd__wait_prepare(w, t, true);
	unlock_all(cs, lockorder, n, n, w);
	int rc = herd__wait_park(&w, deadline, true);

	/*
	 * Unqueue the waiters still queued. The winning case's waker unqueued
	 * its waiter before it touched it, and was done with it before it
	 * readied us: if no other case uses that channel, it needs no lock.
	 */
	size_t win = n, skip = n; /* the winner's lock-order position */
	for (size_t k = 0; rc >= 0 && k < n; k++)
		if (wt[k].index == (uint32_t)rc)
			win = skip = k;
	if (win < n) {
		herd_chan *ch = cs[rc].chan;
		if ((win > 0 && cs[lockorder[win - 1]].chan == ch) ||
		    (win + 1 < n && cs[lockorder[win + 1]].chan == ch))
			skip = n; /* shared: lock it as the others */
	}
	lock_all(cs, lockorder, n, skip, w);
	for (size_t k = 0; k < n; k++) {
		herd_chan *ch = cs[lockorder[k]].chan;
		if (k != win)
			herd__waitq_remove(cs[lockorder[k]].op == HERD_SEND ? &ch->sendq
									    : &ch->recvq,
					   &wt[k].base);
	}
	unlock_all(cs, lockorder, n, skip, w);
	if (win < n)
		cs[rc].result = wt[win].closed ? HERD_ECLOSED : 0;
	return rc;
}

/* The general path: any number of cases. */
static __attribute__((noinline)) int select_any(herd_case *cs, size_t n, int64_t deadline)
{
	int rc = check_cases(cs, n);
	if (rc)
		return rc;
	herd__worker *self = herd__self(), *w = self;
	uint64_t *rand_state = w ? &w->rand : &thread_rand;
	if (w && !w->cur)
		w = NULL; /* a worker's scheduler loop: not a task */
	if (deadline != HERD_NOWAIT && w && herd__scope_canceled(w->cur->scope))
		return HERD_ECANCELED;

	struct {
		uint16_t poll[INLINE_CASES], lock[INLINE_CASES];
		herd__chan_waiter wt[INLINE_CASES];
	} local;
	uint16_t *pollorder = local.poll, *lockorder = local.lock;
	herd__chan_waiter *wt = local.wt;
	void *mem = NULL;
	if (n > INLINE_CASES) {
		mem = malloc(n * (2 * sizeof(uint16_t) + sizeof(herd__chan_waiter)));
		if (!mem)
			return -ENOMEM;
		wt = mem;
		pollorder = (uint16_t *)(wt + n);
		lockorder = pollorder + n;
	}

	/* The live cases (a NULL channel is never ready), shuffled. */
	size_t live = 0;
	for (size_t i = 0; i < n; i++) {
		if (!cs[i].chan)
			continue;
		uint32_t j = rand_below(rand_state, (uint32_t)live + 1);
		pollorder[live] = pollorder[j];
		pollorder[j] = (uint16_t)i;
		live++;
	}
	for (size_t k = 0; k < live; k++)
		lockorder[k] = pollorder[k];
	sort_by_chan(cs, lockorder, live);

	lock_all(cs, lockorder, live, live, self);
	for (size_t k = 0; k < live; k++) {
		uint16_t i = pollorder[k];
		herd_chan *ch = cs[i].chan;
		if (herd__chan_surely_blocks(ch, cs[i].op == HERD_SEND))
			continue; /* spares the call */
		rc = cs[i].op == HERD_SEND ? herd__chan_send_locked(ch, cs[i].elem)
					   : herd__chan_recv_locked(ch, cs[i].elem);
		if (rc != HERD__WOULD_BLOCK) {
			unlock_all(cs, lockorder, live, live, self);
			cs[i].result = rc;
			if (mem)
				free(mem);
			return i;
		}
	}
	if (deadline == HERD_NOWAIT || !w) { /* Go's default case */
		unlock_all(cs, lockorder, live, live, self);
		if (mem)
			free(mem);
		return deadline == HERD_NOWAIT ? HERD_ETIMEDOUT : -EPERM;
	}
	if (live == 0) { /* nothing to wait for but the deadline */
		herd__waits_on(w->cur, HERD__WHY_SELECT, NULL);
		rc = herd__wait(&w, NULL, deadline, true);
	}
	else
		rc = block(cs, lockorder, live, wt, w, deadline);
	if (mem) /* the usual case: no call */
		free(mem);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The small path: n (1 to SMALL_CASES) is a constant where it is inlined. */

#define SMALL static inline __attribute__((always_inline))
/* Its loops, unrolled in full. */
#define UNROLLED _Pragma("GCC unroll 4")

/* Locks the channels c[0..n), sorted by address, each once, NULLs and
 * `skip` left out. */
SMALL void lock_sorted(herd_chan *const *c, unsigned n, herd_chan *skip, bool solo)
{
	herd_chan *last = NULL;
	UNROLLED
	for (unsigned k = 0; k < n; k++) {
		if (herd__likely(c[k] != last) && c[k] != skip)
			herd__chan_lock_as(c[k], solo);
		last = c[k];
	}
}

/* Unlocks them in the other order; `park`: a park's release (a waiter of
 * this task is queued on each: the fast path stays closed). */
SMALL void unlock_sorted(herd_chan *const *c, unsigned n, herd_chan *skip, bool solo,
			 bool park)
{
	UNROLLED
	for (unsigned k = n; k-- > 0;) {
		if (herd__unlikely(c[k] == (k ? c[k - 1] : NULL)) || c[k] == skip)
			continue;
		if (park)
			herd__chan_release_as(c[k], solo);
		else
			herd__chan_unlock_as(c[k], solo);
	}
}

static inline herd__waitq *case_queue(const herd_case *c)
{
	return c->op == HERD_SEND ? &c->chan->sendq : &c->chan->recvq;
}

/* block() for the small path: a waiter per live case (wt[i] for case i),
 * queued with the channels c[0..n) locked; returns with none locked. */
SMALL int block_small(herd_case *cs, unsigned n, herd_chan *const *c, bool dup,
		      bool solo, herd__worker *w, int64_t deadline)
{
	herd__chan_waiter wt[SMALL_CASES];
	herd__waitq *q[SMALL_CASES]; /* case i's, or NULL */
	herd__task *t = w->cur;
	UNROLLED
	for (unsigned i = 0; i < n; i++) {
		q[i] = cs[i].chan ? case_queue(&cs[i]) : NULL;
		if (!q[i])
			continue;
		wt[i] = (herd__chan_waiter){.base.task = t, .elem = cs[i].elem, .index = i};
		herd__waitq_push(q[i], &wt[i].base);
	}
	herd__waits_on(t, HERD__WHY_SELECT, NULL);
	herd__wait_prepare(w, t, true);
	unlock_sorted(c, n, NULL, solo, true);
	int rc = herd__wait_park(&w, deadline, true);
	solo = w->solo; /* w: where it resumed */

	/* Unqueue the waiters still queued. The winner's waker unqueued its
	 * waiter before it touched it and was done with it before it readied
	 * us: its channel needs no lock unless another case uses it too. */
	herd_chan *skip = rc >= 0 && !dup ? cs[rc].chan : NULL;
	lock_sorted(c, n, skip, solo);
	UNROLLED
	for (unsigned i = 0; i < n; i++)
		if (q[i] && i != (unsigned)rc)
			herd__waitq_remove(q[i], &wt[i].base);
	unlock_sorted(c, n, skip, solo, false);
	if (rc >= 0)
		cs[rc].result = wt[rc].closed ? HERD_ECLOSED : 0;
	return rc;
}

/* Orders c[i] and c[j] by address. */
SMALL void sort2(herd_chan **c, unsigned i, unsigned j)
{
	herd_chan *a = c[i], *b = c[j];
	bool swap = (uintptr_t)a > (uintptr_t)b;
	c[i] = swap ? b : a;
	c[j] = swap ? a : b;
}

/* Performs case i if it can proceed now (its channel locked): i, with its
 * result set; -1 if it would block. */
SMALL int poll_case(herd_case *cs, unsigned i)
{
	herd_chan *ch = cs[i].chan;
	int rc = cs[i].op == HERD_SEND ? herd__chan_send_locked(ch, cs[i].elem)
				       : herd__chan_recv_locked(ch, cs[i].elem);
	if (rc == HERD__WOULD_BLOCK)
		return -1;
	cs[i].result = rc;
	return (int)i;
}

/*
 * Polls the candidates (bits of `cand`, two or more) in a random order: a
 * permutation of all n cases (inside-out Fisher-Yates), each step's choice
 * the high part of r * (k + 1), r what is left, with the others skipped
 * where they fall. The first that proceeds is equally likely to be any of
 * the ready ones. Returns its index, or -1.
 */
SMALL int poll_small(herd_case *cs, unsigned n, unsigned cand, herd__worker *self)
{
	uint8_t poll[SMALL_CASES];
	uint32_t r = rand32(self ? &self->rand : &thread_rand);
	poll[0] = 0;
	UNROLLED
	for (unsigned k = 1; k < n; k++) {
		uint64_t m = (uint64_t)r * (k + 1);
		unsigned j = (unsigned)(m >> 32);
		r = (uint32_t)m;
		poll[k] = poll[j];
		poll[j] = (uint8_t)k;
	}
	UNROLLED
	for (unsigned k = 0; k < n; k++) {
		int i;
		if (cand >> poll[k] & 1 && (i = poll_case(cs, poll[k])) >= 0)
			return i;
	}
	return -1;
}

SMALL int select_small(herd_case *cs, const unsigned n, int64_t deadline)
{
	/* check_cases: the usual case (a channel, a variable of its size, a
	 * known op) in one test, any other in full. */
	if (herd__unlikely(!cs))
		return -EINVAL;
	UNROLLED
	for (unsigned i = 0; i < n; i++) {
		const herd_case *k = &cs[i];
		if (herd__unlikely(!k->chan || !k->elem || k->size != k->chan->elem_size ||
				   (unsigned)k->op - HERD_SEND > HERD_RECV - HERD_SEND) &&
		    check_case(k))
			return -EINVAL;
	}
	herd__worker *self = herd__self(), *w = self && self->cur ? self : NULL;
	if (deadline != HERD_NOWAIT && w && herd__scope_canceled(w->cur->scope))
		return HERD_ECANCELED;

	/* The lock order: the channels by address, sorted by a network of
	 * compare-exchanges (no branch, no memory). */
	herd_chan *c[SMALL_CASES];
	UNROLLED
	for (unsigned i = 0; i < n; i++)
		c[i] = cs[i].chan;
	if (n == 2) {
		sort2(c, 0, 1);
	} else if (n == 3) {
		sort2(c, 0, 1);
		sort2(c, 1, 2);
		sort2(c, 0, 1);
	} else if (n == 4) {
		sort2(c, 0, 1);
		sort2(c, 2, 3);
		sort2(c, 0, 2);
		sort2(c, 1, 3);
		sort2(c, 1, 2);
	}
	bool dup = false;
	UNROLLED
	for (unsigned k = 1; k < n; k++)
		dup |= c[k] && c[k] == c[k - 1];
	if (herd__unlikely(!c[n - 1])) /* no live case: the deadline alone */
		return select_any(cs, n, deadline);

	bool solo = herd__chan_solo(self);
	lock_sorted(c, n, NULL, solo);
	/* The candidates: the live cases that do not surely block. */
	unsigned cand = 0;
	UNROLLED
	for (unsigned i = 0; i < n; i++)
		if (cs[i].chan && !herd__chan_surely_blocks(cs[i].chan, cs[i].op == HERD_SEND))
			cand |= 1u << i;
	if (cand) {
		int i = cand & (cand - 1) ? poll_small(cs, n, cand, self)
					  : poll_case(cs, (unsigned)__builtin_ctz(cand));
		if (i >= 0) {
			unlock_sorted(c, n, NULL, solo, false);
			return i;
		}
	}
	if (deadline == HERD_NOWAIT || !w) { /* Go's default case */
		unlock_sorted(c, n, NULL, solo, false);
		return deadline == HERD_NOWAIT ? HERD_ETIMEDOUT : -EPERM;
	}
	return block_small(cs, n, c, dup, solo, w, deadline);
}

int herd_select(herd_case *cs, size_t n, int64_t deadline)
{
	if (n == 2) /* the usual case first */
		return select_small(cs, 2, deadline);
	switch (n) {
	case 1:
		return select_small(cs, 1, deadline);
	case 3:
		return select_small(cs, 3, deadline);
	case 4:
		return select_small(cs, 4, deadline);
	default:
		return select_any(cs, n, deadline);
	}
}
