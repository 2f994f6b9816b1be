/*
 * sync.h - the synchronisation layer: wait groups, channels, select, the
 * timers that deliver on channels, and the task-aware locks (mutexes,
 * read-write mutexes, once, conditions, semaphores). Built on core's
 * parking (wait.c).
 *
 * The wait groups and the locks are values in the program's memory, which
 * herd.h declares as opaque words: each file here lays out its own struct
 * in them (marked may_alias, since the program's object has the public
 * type) and checks that it fits. They work from all-zero bytes, so their
 * lock is an object lock (herd__objlock, base.h), whose rank is implied.
 */
#ifndef HERD_SYNC_H
#define HERD_SYNC_H

#include "core/core.h"

/* A task blocked in a channel operation: in the channel's sendq or recvq,
 * on the task's stack. A select queues one per case. */
typedef struct herd__chan_waiter {
	herd__waiter base;      /* first: a queue's herd__waiter is one */
	void *elem;             /* the value to send, or where to receive */
	uint32_t index;         /* the select case; 0 for a plain call */
	bool closed;            /* set by the waker: woken by a close */
} herd__chan_waiter;

/* One end of a buffered channel's ring (chan-ring.h): its position word,
 * written by every fast-path operation on that end, on a cache line of its
 * own, with copies of the constants that operation reads, so that senders
 * and receivers never share a written line but for the ring's slots. */
typedef struct herd__chan_end {
	_Atomic uint64_t pos;   /* position << 1 | HERD__CHAN_SLOW */
	/* Constants. */
	uint64_t lap;           /* a lap of positions, as pos counts them */
	uint32_t lap_shift;     /* log2(lap) */
	uint32_t cap;           /* ch->cap */
	uint32_t stride;        /* bytes per slot; 0: no values, no slots */
	uint32_t voff;          /* the value's offset in its slot */
	uint32_t elem_size;     /* ch->elem_size */
} __attribute__((aligned(HERD__CACHELINE))) herd__chan_end;

/* Three cache lines: the lock's, then the receivers' end, then the
 * senders'; the ring's slots follow (see chan.c, chan-ring.h). */
struct herd_chan {
	herd__mutex lock;       /* everything on this line but the constants */
	bool closed;
	bool slow;              /* both ends carry HERD__CHAN_SLOW */
	/* Solo locks (core.h): 1 while the solo worker holds the lock by
	 * bias. `shared`: 0, then (sticky) HERD__CHAN_SHARING once another
	 * thread is about to take the lock, HERD__CHAN_SHARED once one has
	 * waited out the worker's solo lock (herd__chan_share). */
	_Atomic uint8_t solo_busy;
	_Atomic uint8_t shared;
	uint32_t elem_size;     /* constant */
	uint32_t cap;           /* constant */
	void *mem;              /* constant: what calloc gave, to free */
	herd__waitq recvq, sendq;
	herd__chan_end recv;    /* the head: where values are received */
	herd__chan_end send;    /* the tail: where values are sent */
} __attribute__((aligned(HERD__CACHELINE)));

/* What the *_locked operations return when they would have to wait. */
#define HERD__WOULD_BLOCK 1

/* With ch->lock held: sends or receives if that can be done at once.
 * Returns 0, HERD_ECLOSED, or HERD__WOULD_BLOCK; the latter leaves the
 * fast path closed, for the caller to queue a waiter and park, or to
 * release the lock with herd__chan_unlock. */
int herd__chan_send_locked(herd_chan *ch, const void *elem);
int herd__chan_recv_locked(herd_chan *ch, void *elem);
/* With ch->lock held: whether an unbuffered channel's send (receive)
 * would block, as the call above would find: open, and nobody queued on
 * the other side. False when a quick look cannot tell (a buffered
 * channel, a queued waiter, which may be stale): select's poll. */
static inline bool herd__chan_surely_blocks(const herd_chan *ch, bool send)
{
	return !ch->cap && !ch->closed && !(send ? ch->recvq.head : ch->sendq.head);
}
/* With ch->lock held: drops every buffered value (a timer's reset). */
void herd__chan_drain_locked(herd_chan *ch);
/* Whether a task is blocked on ch. */
bool herd__chan_busy(herd_chan *ch);
void herd__chan_reopen(herd_chan *ch);

enum { HERD__CHAN_SHARING = 1, HERD__CHAN_SHARED = 2 };

/* Sets ch->shared and waits until the solo worker holds no solo lock of
 * ch (chan.c): before a thread's lock while ch is not HERD__CHAN_SHARED.
 * Every thread that finds it merely SHARING waits as well: the one that
 * set it may not be done waiting. */
void herd__chan_share(herd_chan *ch);

/* Whether self, the caller's worker (NULL on a plain thread), takes
 * channel locks by bias: constant while a task runs on it. */
static inline bool herd__chan_solo(const herd__worker *self)
{
	return self && self->solo;
}

/*
 * Takes ch->lock. `self`: the caller's worker (herd__self()), or NULL on a
 * plain thread. The solo worker takes it by bias while no other thread has
 * taken it (see core.h's solo locks); every other caller makes sure first
 * that the channel is shared, then locks. Lock and unlock take the same
 * `self`: the solo worker holds a solo lock exactly while solo_busy is set,
 * which only it writes.
 */
static inline void herd__chan_lock_as(herd_chan *ch, bool solo);
static inline void herd__chan_lock(herd_chan *ch, const herd__worker *self)
{
	herd__chan_lock_as(ch, herd__chan_solo(self));
}

/* The same with `solo` (herd__chan_solo of the caller's worker) worked out
 * once, for a caller that takes several (select). */
static inline void herd__chan_lock_as(herd_chan *ch, bool solo)
{
	if (solo) {
		atomic_store_explicit(&ch->solo_busy, 1, mo_relaxed);
		atomic_signal_fence(mo_seq_cst); /* herd__solo_fence's partner */
		if (herd__likely(!atomic_load_explicit(&ch->shared, mo_relaxed))) {
			herd__rank_acquire(&ch->lock);
			return;
		}
		atomic_store_explicit(&ch->solo_busy, 0, mo_release);
	} else if (herd__unlikely(atomic_load_explicit(&ch->shared, mo_acquire) !=
				  HERD__CHAN_SHARED)) {
		herd__chan_share(ch);
	}
	herd__mutex_lock(&ch->lock);
}

/* Releases ch->lock as it is: a park's release, which leaves the fast path
 * closed for the waiter it queued. */
static inline void herd__chan_release_as(herd_chan *ch, bool solo)
{
	if (solo && atomic_load_explicit(&ch->solo_busy, mo_relaxed)) {
		herd__rank_release(&ch->lock);
		atomic_store_explicit(&ch->solo_busy, 0, mo_release);
		return;
	}
	herd__mutex_unlock(&ch->lock);
}

static inline void herd__chan_release(herd_chan *ch, const herd__worker *self)
{
	herd__chan_release_as(ch, herd__chan_solo(self));
}

/* Releases ch->lock (every release but a park's goes through this): opens
 * the ring's fast path again if nobody waits and the channel is open. */
static inline void herd__chan_unlock_as(herd_chan *ch, bool solo)
{
	if (herd__unlikely(ch->slow) && !ch->closed && !ch->recvq.head && !ch->sendq.head)
		herd__chan_reopen(ch);
	herd__chan_release_as(ch, solo);
}

static inline void herd__chan_unlock(herd_chan *ch, const herd__worker *self)
{
	herd__chan_unlock_as(ch, herd__chan_solo(self));
}

/* An internal struct laid out in the words of a public value type. */
#define HERD__IN_PUBLIC(internal, public)                                     \
	_Static_assert(sizeof(internal) <= sizeof(public) &&                  \
			       _Alignof(internal) <= _Alignof(public),        \
		       #internal " fits in " #public)

/*
 * Parks the calling task as herd__wait does, queued under the object lock
 * `lock` (herd__objlock), which this releases.
 */
static inline int herd__objwait(herd__worker **wp, herd__mutex *lock,
				int64_t deadline, bool cancelable)
{
	herd__wait_prepare(*wp, (*wp)->cur, cancelable);
	herd__objunlock(lock);
	return herd__wait_park(wp, deadline, cancelable);
}

/*
 * w, the calling thread's worker (herd__self(), NULL on a plain thread), if
 * the caller may wait now, else NULL with *why set: 0 for deadline
 * HERD_NOWAIT (the call polls), -EPERM outside a task, HERD_ECANCELED if
 * `cancelable` and the task's scope is canceled.
 */
static inline herd__worker *herd__may_wait_as(herd__worker *w, int64_t deadline,
					      bool cancelable, int *why)
{
	*why = 0;
	if (deadline == HERD_NOWAIT)
		return NULL;
	if (!w || !w->cur) {
		*why = -EPERM;
		return NULL;
	}
	if (cancelable && herd__scope_canceled(w->cur->scope)) {
		*why = HERD_ECANCELED;
		return NULL;
	}
	return w;
}

/* The same, finding the caller's worker only if it may wait. */
static inline herd__worker *herd__may_wait(int64_t deadline, bool cancelable,
					   int *why)
{
	*why = 0;
	if (deadline == HERD_NOWAIT)
		return NULL;
	return herd__may_wait_as(herd__self(), deadline, cancelable, why);
}

/* A weak compare-and-swap of a lock's state word, failing relaxed. */
static inline bool herd__state_cas(_Atomic uint32_t *p, uint32_t *old, uint32_t new,
				   memory_order mo)
{
	return atomic_compare_exchange_weak_explicit(p, old, new, mo, memory_order_relaxed);
}

/* Whether m is locked now (by anybody), for herd_cond_wait's check. */
bool herd__mutex_is_locked(herd_mutex *m);

#endif /* HERD_SYNC_H */
