/*
 * chan.c - channels, with Go's semantics: rendezvous when unbuffered, a
 * ring buffer otherwise, close, and a deadline on every blocking call.
 *
 * Shape (after Go's runtime/chan.go). A channel has one lock, a ring of
 * `cap` values (chan-ring.h), and two queues of blocked tasks
 * (herd__chan_waiter, on the blocked task's stack): senders with the value
 * they offer, receivers with where the value goes. A sender that finds a
 * receiver queued copies its value straight into the receiver's variable;
 * a receiver that finds a sender queued takes the value at the ring's head
 * and moves the sender's value to its tail, so that values keep their
 * order; with cap 0 it copies straight from the sender. The blocked party
 * is readied with the value in place.
 *
 * The fast path. A send or a receive on a buffered channel first tries the
 * ring without the lock: one compare-and-swap of its end's word, which
 * lives on a cache line of its own, so that a producer and a consumer on
 * two cores share no written line but the ring's slots. Only the lock's
 * side knows about waiters and close, so while it may matter the lock
 * holder closes the fast path: it sets HERD__CHAN_SLOW in both ends'
 * words (ch->slow says so), and a fast-path operation that finds the flag
 * takes the lock instead. The rule, under the lock:
 *   - the fast path is closed while a waiter is queued on a buffered
 *     channel or it is closed; it is closed before an operation decides
 *     that it must wait (a HERD__WOULD_BLOCK from the *_locked calls), and
 *     reopened only by herd__chan_unlock, when neither queue holds a
 *     waiter and the channel is open.
 * So a task parks only after it has closed the fast path and then found
 * the ring empty (or full) under the lock, and every operation after that
 * comes to the lock and finds it queued. No wake-up can be lost in
 * between: closing is a read-modify-write of the very words that the fast
 * path's compare-and-swap must change, so a fast claim either comes first
 * in the word's modification order (and the lock holder, which reads the
 * word after its own RMW, sees the value, waiting for its copy to finish)
 * or fails on the flag (chan-ring.h says this in full). With the fast path
 * closed the ring changes only under the lock; so, under the lock:
 *   - a receiver that can be claimed is queued only beside an empty ring,
 *     a sender only beside a full one (or cap is 0);
 *   - if closed, no sender is queued (close woke them all), nor, once close
 *     has run, any receiver; and nothing enters the ring after the close.
 * Receivers drain the ring after a close through the lock: close leaves
 * the fast path closed for good.
 *
 * Waking a queued waiter. A queued task may be woken by someone else as
 * well: its deadline, its scope's cancellation, or (a select) another
 * channel. The waker must win the task's wake before it touches the
 * waiter (herd__wait_claim; see wait.c), and unqueues only a waiter it
 * won. A waiter it cannot claim is skipped and left queued: its task, when
 * it runs, unqueues it under the channel's lock, so the channel stays busy
 * (herd_chan_free refuses) until no task can touch it again. A waiter stays
 * valid while it is queued: its task cannot return before it has unqueued
 * it under the lock. So the invariants above hold for the waiters that can
 * still be claimed; stale ones may sit in either queue for a moment.
 *
 * Memory: every value passes through a ring slot (whose stamp is stored
 * with release after the value and loaded with acquire before it is read),
 * or from a waker that holds the lock to a task that it readies (a release
 * through the run queue). So a send happens before the receive it feeds
 * completes. A close, and the HERD_ECLOSED it causes, happen under the
 * lock.
 *
 * Locks: ch->lock, HERD__RANK_OBJECT (base.h). select.c holds
 * several, taken in order of channel address. Under it, a waker takes the
 * scheduler's leaf locks (herd__ready) and, preparing a wait, a registry
 * lock. The timer heap's lock is never held when a channel's is taken.
 * Every release of ch->lock goes through herd__chan_unlock, but a park's
 * (a waiter is queued then: the fast path stays closed). It is taken with
 * herd__chan_lock (sync.h): the only worker of a runtime takes it without
 * an atomic instruction (a solo lock, core.h) until another thread has
 * taken it once (herd__chan_share).
 */
#include "sync/sync.h"
#include "sync/chan-ring.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(herd_chan) == 3 * HERD__CACHELINE,
	       "a channel is its lock's line and one line per end of its ring");

/* A slot: the 32-bit stamp, then the value, at 4 bytes if it fits there,
 * else at 8 and rounded up to 8 (values are copied with memcpy, but
 * word-sized values are best aligned); empty values need no slot. */
static size_t value_offset(size_t elem_size)
{
	return elem_size <= 4 ? 4 : 8;
}

static size_t slot_stride(size_t elem_size)
{
	if (!elem_size)
		return 0;
	return elem_size <= 4 ? 8 : 8 + ((elem_size + 7) & ~(size_t)7);
}

static void end_init(herd__chan_end *e, uint32_t elem_size, uint32_t cap)
{
	uint32_t shift = 1; /* a lap's positions, shifted as pos is */
	while (((uint64_t)1 << (shift - 1)) <= cap)
		shift++;
	atomic_init(&e->pos, 0);
	e->lap_shift = shift;
	e->lap = (uint64_t)1 << shift;
	e->cap = cap;
	e->stride = (uint32_t)slot_stride(elem_size);
	e->voff = (uint32_t)value_offset(elem_size);
	e->elem_size = elem_size;
}

int herd_chan_make(herd_chan **out, size_t elem_size, size_t capacity)
{
	if (!out || elem_size > HERD_CHAN_ELEM_MAX || capacity > HERD_CHAN_CAP_MAX)
		return -EINVAL;
	/*
	 * One allocation: the ring's slots follow the channel's lines. Within
	 * the limits the ring takes less than 2^47 bytes, which cannot wrap a
	 * 64-bit size_t; whether that much can be had is malloc's to say. A
	 * ring whose size would not fit a smaller size_t is memory that
	 * cannot be had either: -ENOMEM, as documented, not -EINVAL. calloc,
	 * aligned by hand: a ring's zeroed stamps are ready (chan-ring.h),
	 * and the pages of a large ring are not touched until used.
	 */
	size_t stride = slot_stride(elem_size);
	size_t bytes = stride * capacity;
	if ((capacity && bytes / capacity != stride) ||
	    bytes > SIZE_MAX - 2 * sizeof(herd_chan))
		return -ENOMEM;
	void *mem = calloc(1, sizeof(herd_chan) + bytes + HERD__CACHELINE - 1);
	if (!mem)
		return -ENOMEM;
	herd_chan *ch = (herd_chan *)(((uintptr_t)mem + HERD__CACHELINE - 1) &
				      ~(uintptr_t)(HERD__CACHELINE - 1));
	herd__mutex_init(&ch->lock, HERD__RANK_OBJECT);
	ch->mem = mem;
	ch->elem_size = (uint32_t)elem_size;
	ch->cap = (uint32_t)capacity;
	end_init(&ch->recv, ch->elem_size, ch->cap);
	end_init(&ch->send, ch->elem_size, ch->cap);
	*out = ch;
	HERD__LEAK_MADE(HERD__LEAK_CHANNEL, ch, (int64_t)elem_size, (int64_t)capacity);
	return 0;
}

int (herd_chan_free)(herd_chan *ch)
{
	if (!ch)
		return 0;
	if (herd__chan_busy(ch))
		return -EBUSY;
	HERD__LEAK_FREED(ch);
	free(ch->mem);
	return 0;
}

bool herd__chan_busy(herd_chan *ch)
{
	herd__worker *self = herd__self();
	herd__chan_lock(ch, self);
	bool busy = ch->recvq.head || ch->sendq.head;
	herd__chan_unlock(ch, self);
	return busy;
}

void herd__chan_share(herd_chan *ch)
{
	uint8_t none = 0;
	atomic_compare_exchange_strong_explicit(&ch->shared, &none, HERD__CHAN_SHARING,
						mo_seq_cst, mo_seq_cst);
	if (herd__solo_live()) { /* else no solo worker can miss the flag */
		herd__solo_fence();
		/* The worker's solo lock, if it holds one, is short: it never
		 * parks or takes a lock it could wait for with it. */
		for (unsigned spins = 0; atomic_load_explicit(&ch->solo_busy, mo_acquire);
		     spins++) {
			if (spins < 1000)
				herd__cpu_relax();
			else
				sched_yield(); /* the worker's thread was preempted */
		}
	}
	atomic_store_explicit(&ch->shared, HERD__CHAN_SHARED, mo_release);
}

/* Opens the fast path: with the lock held (see herd__chan_unlock). */
void herd__chan_reopen(herd_chan *ch)
{
	herd__ring_set_slow(ch, false);
}

/* The first queued waiter whose task this caller wins, unqueued; NULL if
 * none. Waiters it cannot win stay queued for their tasks (see above):
 * unqueueing them here would let the channel be freed under a task that
 * was woken but has not yet run. */
static herd__chan_waiter *dequeue(herd__waitq *q)
{
	herd__waiter *wt;
	herd__list_each(wt, q, herd__waiter, link) {
		if (herd__wait_claim(wt->task)) {
			herd__waitq_remove(q, wt); /* then the walk ends */
			return (herd__chan_waiter *)wt;
		}
	}
	return NULL;
}

/* A queued waiter keeps the fast path closed (checked builds). */
static inline void check_locked(const herd_chan *ch)
{
	HERD__ASSERT(ch->cap == 0 || ch->slow || (!ch->recvq.head && !ch->sendq.head));
	HERD__ASSERT(ch->cap == 0 || !ch->closed || ch->slow);
	(void)ch;
}

/* Pushes under the lock; if the ring is full, closes the fast path (the
 * caller may wait) and tries again, now with no claim under way. */
static int push_locked(herd_chan *ch, const void *elem)
{
	if (herd__ring_push(ch, elem, true) == HERD__RING_OK)
		return 0;
	herd__ring_set_slow(ch, true);
	return herd__ring_push(ch, elem, true) == HERD__RING_OK ? 0 : HERD__WOULD_BLOCK;
}

/* The *_locked operations, inline in herd_chan_send and herd_chan_recv
 * (a call and its register saves measured as much as a solo lock). */
static inline __attribute__((always_inline)) int send_locked(herd_chan *ch,
							      const void *elem)
{
	check_locked(ch);
	if (herd__unlikely(ch->closed))
		return HERD_ECLOSED;
	herd__chan_waiter *r = ch->recvq.head ? dequeue(&ch->recvq) : NULL;
	if (r) {
		if (r->elem)
			herd__copy_elem(r->elem, elem, ch->elem_size);
		herd__wait_finish(r->base.task, (int)r->index);
		return 0;
	}
	return ch->cap ? push_locked(ch, elem) : HERD__WOULD_BLOCK;
}

int herd__chan_send_locked(herd_chan *ch, const void *elem)
{
	return send_locked(ch, elem);
}

/* Hands a claimed sender's value to a receiver: through the ring, which
 * is full (the head's value out, the sender's in at the tail: the same
 * slot), or straight when there is none. */
static void take_from_sender(herd_chan *ch, herd__chan_waiter *s, void *elem)
{
	if (ch->cap && herd__ring_pop(ch, elem, true) == HERD__RING_OK) {
		HERD__ASSERT(ch->slow);
		int rc = herd__ring_push(ch, s->elem, true);
		HERD__ASSERT(rc == HERD__RING_OK);
		(void)rc;
	} else if (elem) {
		herd__copy_elem(elem, s->elem, ch->elem_size);
	}
	herd__wait_finish(s->base.task, (int)s->index);
}

static inline __attribute__((always_inline)) int recv_locked(herd_chan *ch, void *elem)
{
	check_locked(ch);
	herd__chan_waiter *s = ch->sendq.head ? dequeue(&ch->sendq) : NULL;
	if (s) {
		take_from_sender(ch, s, elem);
		return 0;
	}
	if (ch->cap) {
		if (herd__ring_pop(ch, elem, true) == HERD__RING_OK)
			return 0;
		/* Empty: close the fast path (the caller may wait), then
		 * look again, now with no claim under way. */
		herd__ring_set_slow(ch, true);
		if (herd__ring_pop(ch, elem, true) == HERD__RING_OK)
			return 0;
	}
	if (ch->closed) {
		if (elem)
			memset(elem, 0, ch->elem_size);
		return HERD_ECLOSED;
	}
	return HERD__WOULD_BLOCK;
}

int herd__chan_recv_locked(herd_chan *ch, void *elem)
{
	return recv_locked(ch, elem);
}

void herd__chan_drain_locked(herd_chan *ch)
{
	/* Receive until nothing is left rather than reset the ring: a task
	 * that (against the header's advice) blocked sending on a timer's
	 * channel is then completed, and no sender stays queued beside an
	 * empty buffer. */
	while (herd__chan_recv_locked(ch, NULL) == 0)
		;
}

/*
 * Blocks the calling task in q until a waker hands it a result, with
 * ch->lock held on entry and released on return. Returns 0, HERD_ECLOSED,
 * or the wait's own failure (HERD_ETIMEDOUT, HERD_ECANCELED, -ENOMEM).
 * Inline in herd_chan_send and herd_chan_recv: the call, with its register
 * saves, measured 14 of the 629 instructions of a select and its send
 * (bench-peer-herd select) and 54 of a ping-pong round trip's 983, for
 * 1.5 more of a buffered message's 222 (its fast path never blocks).
 */
static inline __attribute__((always_inline)) int block(herd_chan *ch, herd__waitq *q,
						       void *elem, herd__worker *w,
						       bool solo, int64_t deadline)
{
	herd__chan_waiter wt = {.base.task = w->cur, .elem = elem};
	herd__waitq_push(q, &wt.base);
	herd__waits_on(w->cur, q == &ch->sendq ? HERD__WHY_CHAN_SEND : HERD__WHY_CHAN_RECV, ch);
	herd__wait_prepare(w, w->cur, true);
	herd__chan_release_as(ch, solo);
	int rc = herd__wait_park(&w, deadline, true);
	if (rc >= 0)
		return wt.closed ? HERD_ECLOSED : 0; /* the waker unqueued us */
	herd__chan_lock(ch, w);
	herd__waitq_remove(q, &wt.base);
	herd__chan_unlock(ch, w);
	return rc;
}

/*
 * The fast path: the ring, without the lock, for a buffered channel. 0 if
 * it sent (received); HERD__WOULD_BLOCK to take the lock; or, for a call
 * that may not wait (w NULL), what it returns for a full (empty) ring with
 * the fast path open, which is exact: no waiter, not closed.
 */
static inline int fast_result(int ring, const herd__worker *w, int why)
{
	if (herd__likely(ring == HERD__RING_OK))
		return 0;
	if (ring == HERD__RING_NO && !w)
		return why ? why : HERD_ETIMEDOUT;
	return HERD__WOULD_BLOCK;
}

int (herd_chan_send)(herd_chan *ch, const void *elem, int64_t deadline)
{
	if (herd__unlikely(!ch || (!elem && ch->elem_size)))
		return -EINVAL;
	int why;
	herd__worker *self = herd__self();
	herd__worker *w = herd__may_wait_as(self, deadline, true, &why);
	if (why == HERD_ECANCELED)
		return why;
	int rc;
	if (ch->send.cap &&
	    (rc = fast_result(herd__ring_push(ch, elem, false), w, why)) != HERD__WOULD_BLOCK)
		return rc;
	bool solo = herd__chan_solo(self); /* read once (sync.h) */
	herd__chan_lock_as(ch, solo);
	rc = send_locked(ch, elem);
	if (herd__likely(rc != HERD__WOULD_BLOCK) || !w) {
		herd__chan_unlock_as(ch, solo);
		return rc != HERD__WOULD_BLOCK ? rc : why ? why : HERD_ETIMEDOUT;
	}
	return block(ch, &ch->sendq, (void *)elem, w, solo, deadline);
}

int (herd_chan_recv)(herd_chan *ch, void *elem, int64_t deadline)
{
	if (herd__unlikely(!ch))
		return -EINVAL;
	int why;
	herd__worker *self = herd__self();
	herd__worker *w = herd__may_wait_as(self, deadline, true, &why);
	if (why == HERD_ECANCELED)
		return why;
	int rc;
	if (ch->recv.cap &&
	    (rc = fast_result(herd__ring_pop(ch, elem, false), w, why)) != HERD__WOULD_BLOCK)
		return rc;
	bool solo = herd__chan_solo(self); /* read once (sync.h) */
	herd__chan_lock_as(ch, solo);
	rc = recv_locked(ch, elem);
	if (herd__likely(rc != HERD__WOULD_BLOCK) || !w) {
		herd__chan_unlock_as(ch, solo);
		return rc != HERD__WOULD_BLOCK ? rc : why ? why : HERD_ETIMEDOUT;
	}
	return block(ch, &ch->recvq, elem, w, solo, deadline);
}

/* The sized calls check the size, then jump to the plain ones (a tail
 * call): inlining the body into them measured slower than the jump. */
int herd_chan_send_sized(herd_chan *ch, const void *elem, size_t size, int64_t deadline)
{
	if (herd__unlikely(!ch || size != ch->elem_size))
		return -EINVAL;
	return (herd_chan_send)(ch, elem, deadline);
}

int herd_chan_recv_sized(herd_chan *ch, void *elem, size_t size, int64_t deadline)
{
	if (herd__unlikely(!ch || (elem && size != ch->elem_size)))
		return -EINVAL;
	return (herd_chan_recv)(ch, elem, deadline);
}

int (herd_chan_try_send)(herd_chan *ch, const void *elem)
{
	return herd_chan_send(ch, elem, HERD_NOWAIT);
}

int (herd_chan_try_recv)(herd_chan *ch, void *elem)
{
	return herd_chan_recv(ch, elem, HERD_NOWAIT);
}

/* Wakes every waiter of q with `closed` set; receivers get a zero value. */
static void wake_closed(herd_chan *ch, herd__waitq *q, bool zero)
{
	herd__chan_waiter *wt;
	while ((wt = dequeue(q))) {
		if (zero && wt->elem)
			memset(wt->elem, 0, ch->elem_size);
		wt->closed = true;
		herd__wait_finish(wt->base.task, (int)wt->index);
	}
}

int (herd_chan_close)(herd_chan *ch)
{
	if (!ch)
		return -EINVAL;
	herd__worker *self = herd__self();
	herd__chan_lock(ch, self);
	if (ch->closed) {
		herd__chan_unlock(ch, self);
		return HERD_ECLOSED;
	}
	ch->closed = true;
	if (ch->cap)
		herd__ring_set_slow(ch, true); /* for good: see above */
	wake_closed(ch, &ch->recvq, true);
	wake_closed(ch, &ch->sendq, false);
	herd__chan_unlock(ch, self);
	return 0;
}

int (herd_chan_len)(herd_chan *ch)
{
	if (!ch)
		return -EINVAL;
	return ch->cap ? (int)herd__ring_len(ch) : 0;
}

int (herd_chan_cap)(const herd_chan *ch)
{
	return ch ? (int)ch->cap : -EINVAL;
}

int (herd_chan_elem_size)(const herd_chan *ch)
{
	return ch ? (int)ch->elem_size : -EINVAL;
}
