/*
 * chan.c - channels, with Go's semantics: rendezvous when unbuffered, a
 * ring buffer otherwise, close, and a deadline on every blocking call.
 *
 * Shape (after Go's runtime/chan.go). A channel has one lock, a ring of
 * `cap` values, and two queues of blocked tasks (herd__chan_waiter, on the
 * blocked task's stack): senders with the value they offer, receivers with
 * where the value goes. The invariants, under the lock:
 *   - if sendq is not empty, the buffer is full (or cap is 0);
 *   - if recvq is not empty, the buffer is empty;
 *   - if closed, no sender is queued (close woke them all), nor, once
 *     close has run, any receiver.
 * A sender that finds a receiver queued copies its value straight into the
 * receiver's variable; a receiver that finds a sender queued takes the
 * value at the buffer's head and moves the sender's value to its tail, so
 * that values keep their order; with cap 0 it copies straight from the
 * sender. The blocked party is readied with the value in place.
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
 * Memory: every value passes under the channel's lock, or from a waker
 * that holds it to a task that it readies (a release through the run
 * queue). So a send happens before the receive it feeds completes.
 *
 * Locks: ch->lock, HERD__RANK_OBJECT (base.h). select.c holds
 * several, taken in order of channel address. Under it, a waker takes the
 * scheduler's leaf locks (herd__ready) and, preparing a wait, a registry
 * lock. The timer heap's lock is never held when a channel's is taken.
 */
#include "sync/sync.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(herd_chan) == HERD__CACHELINE, "a channel's state is one line");

int herd_chan_make(herd_chan **out, size_t elem_size, size_t capacity)
{
	if (!out || elem_size > HERD_CHAN_ELEM_MAX || capacity > HERD_CHAN_CAP_MAX)
		return -EINVAL;
	/*
	 * One allocation: the ring follows the channel's cache line. Within
	 * the limits the ring takes at most 2^46 bytes, which cannot wrap a
	 * 64-bit size_t; whether that much can be had is malloc's to say. A
	 * ring whose size would not fit a smaller size_t is memory that
	 * cannot be had either: -ENOMEM, as documented, not -EINVAL.
	 */
	size_t bytes = elem_size * capacity;
	if ((capacity && bytes / capacity != elem_size) ||
	    bytes > SIZE_MAX - 2 * sizeof(herd_chan))
		return -ENOMEM;
	size_t size = (sizeof(herd_chan) + bytes + HERD__CACHELINE - 1) &
		      ~(size_t)(HERD__CACHELINE - 1);
	herd_chan *ch = aligned_alloc(HERD__CACHELINE, size);
	if (!ch)
		return -ENOMEM;
	memset(ch, 0, sizeof *ch);
	herd__mutex_init(&ch->lock, HERD__RANK_OBJECT);
	ch->elem_size = (uint32_t)elem_size;
	ch->cap = (uint32_t)capacity;
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
	free(ch);
	return 0;
}

bool herd__chan_busy(herd_chan *ch)
{
	herd__mutex_lock(&ch->lock);
	bool busy = ch->recvq.head || ch->sendq.head;
	herd__mutex_unlock(&ch->lock);
	return busy;
}

/* memcpy, with the common word-sized value copied inline. A channel of
 * empty values may be given NULL pointers, which memcpy may not. */
static inline void copy_elem(void *dst, const void *src, uint32_t size)
{
	if (herd__likely(size == 8))
		memcpy(dst, src, 8);
	else if (size)
		memcpy(dst, src, size);
}

static inline unsigned char *slot(herd_chan *ch, uint32_t i)
{
	return (unsigned char *)(ch + 1) + (size_t)i * ch->elem_size;
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

static inline uint32_t next_slot(const herd_chan *ch, uint32_t i)
{
	return ++i == ch->cap ? 0 : i;
}

/* The count fits the ring. (Go's chan.go also has "a queued receiver
 * means an empty buffer": not here, where a waiter its timer or a
 * cancellation claimed stays queued until its task unqueues it.) */
static inline void check_locked(const herd_chan *ch)
{
	HERD__ASSERT(ch->count <= ch->cap);
	HERD__ASSERT(ch->cap == 0 || (ch->recvx < ch->cap && ch->sendx < ch->cap));
	(void)ch;
}

int herd__chan_send_locked(herd_chan *ch, const void *elem)
{
	check_locked(ch);
	if (herd__unlikely(ch->closed))
		return HERD_ECLOSED;
	herd__chan_waiter *r = dequeue(&ch->recvq);
	if (r) {
		if (r->elem)
			copy_elem(r->elem, elem, ch->elem_size);
		herd__wait_finish(r->base.task, (int)r->index);
		return 0;
	}
	if (ch->count < ch->cap) {
		copy_elem(slot(ch, ch->sendx), elem, ch->elem_size);
		ch->sendx = next_slot(ch, ch->sendx);
		ch->count++;
		return 0;
	}
	return HERD__WOULD_BLOCK;
}

int herd__chan_recv_locked(herd_chan *ch, void *elem)
{
	check_locked(ch);
	if (ch->count == 0 || ch->sendq.head) {
		herd__chan_waiter *s = dequeue(&ch->sendq);
		if (s) {
			if (ch->cap == 0) {
				if (elem)
					copy_elem(elem, s->elem, ch->elem_size);
			} else {
				/* Full: take the head, the sender's value
				 * goes to the tail, which is the same slot. */
				unsigned char *p = slot(ch, ch->recvx);
				if (elem)
					copy_elem(elem, p, ch->elem_size);
				copy_elem(p, s->elem, ch->elem_size);
				ch->recvx = next_slot(ch, ch->recvx);
				ch->sendx = ch->recvx;
			}
			herd__wait_finish(s->base.task, (int)s->index);
			return 0;
		}
	}
	if (ch->count > 0) {
		if (elem)
			copy_elem(elem, slot(ch, ch->recvx), ch->elem_size);
		ch->recvx = next_slot(ch, ch->recvx);
		ch->count--;
		return 0;
	}
	if (ch->closed) {
		if (elem)
			memset(elem, 0, ch->elem_size);
		return HERD_ECLOSED;
	}
	return HERD__WOULD_BLOCK;
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
 */
static int block(herd_chan *ch, herd__waitq *q, void *elem, herd__worker *w,
		 int64_t deadline)
{
	herd__chan_waiter wt = {.base.task = w->cur, .elem = elem};
	herd__waitq_push(q, &wt.base);
	herd__waits_on(w->cur, q == &ch->sendq ? HERD__WHY_CHAN_SEND : HERD__WHY_CHAN_RECV, ch);
	int rc = herd__wait(&w, &ch->lock, deadline, true);
	if (rc >= 0)
		return wt.closed ? HERD_ECLOSED : 0; /* the waker unqueued us */
	herd__mutex_lock(&ch->lock);
	herd__waitq_remove(q, &wt.base);
	herd__mutex_unlock(&ch->lock);
	return rc;
}

int (herd_chan_send)(herd_chan *ch, const void *elem, int64_t deadline)
{
	if (herd__unlikely(!ch || (!elem && ch->elem_size)))
		return -EINVAL;
	int why;
	herd__worker *w = herd__may_wait(deadline, true, &why);
	if (why == HERD_ECANCELED)
		return why;
	herd__mutex_lock(&ch->lock);
	int rc = herd__chan_send_locked(ch, elem);
	if (herd__likely(rc != HERD__WOULD_BLOCK) || !w) {
		herd__mutex_unlock(&ch->lock);
		return rc != HERD__WOULD_BLOCK ? rc : why ? why : HERD_ETIMEDOUT;
	}
	return block(ch, &ch->sendq, (void *)elem, w, deadline);
}

int (herd_chan_recv)(herd_chan *ch, void *elem, int64_t deadline)
{
	if (herd__unlikely(!ch))
		return -EINVAL;
	int why;
	herd__worker *w = herd__may_wait(deadline, true, &why);
	if (why == HERD_ECANCELED)
		return why;
	herd__mutex_lock(&ch->lock);
	int rc = herd__chan_recv_locked(ch, elem);
	if (herd__likely(rc != HERD__WOULD_BLOCK) || !w) {
		herd__mutex_unlock(&ch->lock);
		return rc != HERD__WOULD_BLOCK ? rc : why ? why : HERD_ETIMEDOUT;
	}
	return block(ch, &ch->recvq, elem, w, deadline);
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
	herd__mutex_lock(&ch->lock);
	if (ch->closed) {
		herd__mutex_unlock(&ch->lock);
		return HERD_ECLOSED;
	}
	ch->closed = true;
	wake_closed(ch, &ch->recvq, true);
	wake_closed(ch, &ch->sendq, false);
	herd__mutex_unlock(&ch->lock);
	return 0;
}

int (herd_chan_len)(herd_chan *ch)
{
	if (!ch)
		return -EINVAL;
	herd__mutex_lock(&ch->lock);
	int n = (int)ch->count;
	herd__mutex_unlock(&ch->lock);
	return n;
}

int (herd_chan_cap)(const herd_chan *ch)
{
	return ch ? (int)ch->cap : -EINVAL;
}

int (herd_chan_elem_size)(const herd_chan *ch)
{
	return ch ? (int)ch->elem_size : -EINVAL;
}
