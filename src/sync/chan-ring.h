/*
 * chan-ring.h - a buffered channel's ring: a bounded queue that many
 * senders and receivers use without a lock (Dmitry Vyukov's bounded MPMC
 * queue, with the lap encoding of crossbeam's ArrayQueue so that any
 * capacity works without a division), for chan.c only.
 *
 * Positions. Each end (herd__chan_end, sync.h) holds a position: a lap
 * number and a slot index, encoded as lap * one_lap + index with one_lap
 * the power of two above cap, and stored shifted left by one so that bit 0
 * is free for HERD__CHAN_SLOW (the `lap` field counts in these units). A
 * slot is a 32-bit sequence word (its stamp) and the value. The stamp says
 * whose turn it is in the slot's lap L: 2L, a sender's (the slot is free);
 * 2L + 1, the receiver's (it holds the value sent in lap L). A receiver
 * then stamps it 2L + 2: free for lap L + 1. Zero is "free in lap 0", so
 * a new ring's memory needs no writing: calloc's pages of a large ring
 * stay untouched until used. The stamp is a gate, not the claim: 32 bits
 * wrap, but a position is claimed by a compare-and-swap of a 64-bit word,
 * which fails if the position a stale stamp seemed to match has passed.
 *
 * An operation claims a position with a compare-and-swap of its end's
 * word, from a value it saw with the slot's stamp matching, then copies
 * the value and stores the next stamp. The ring is full when the tail is a
 * lap ahead of the head, empty when they are equal; an operation that
 * finds the slot not yet stamped by the other side while the other end has
 * moved (a claim whose copy is under way) spins until it is.
 *
 * Memory order. A sender copies the value in, then stores the stamp with
 * release; a receiver loads the stamp with acquire before it copies the
 * value out: so the send happens before the receive. The converse holds
 * for reusing a slot (the receiver's copy out happens before the next
 * lap's copy in). The end words themselves need no order of their own:
 * every claim and every change of HERD__CHAN_SLOW is a read-modify-write
 * of one word, and the modification order of a single word is the same
 * for every thread on any hardware (coherence). That is what makes the
 * fast path safe against waiters (see chan.c): a claim either comes before
 * the lock holder's fetch_or of the flag, and the lock holder, reading the
 * word after its own RMW, sees the claim; or it comes after, and its
 * compare-and-swap fails on the flag. No store-then-load (Dekker) pattern
 * across two words is involved anywhere.
 *
 * Verdicts. "Full" and "empty" read the other end's word with no fence
 * (crossbeam adds one; TSan cannot check fences). Such a verdict can be
 * stale only about an operation that does not happen before the caller's
 * (one that does has stored the stamp, or moved the counter, that the
 * caller's acquire load must see), so a polling call cannot miss a value
 * whose send it knows has returned. A call that will wait takes the lock,
 * closes the fast path, and looks again: there the verdict is exact.
 *
 * Channels of empty values (stride 0) need no slots: their ring is two
 * counters, and a send or a receive moves one if the other allows it.
 * (A capacity of 2^30 such values takes no memory, as documented.)
 */
#ifndef HERD_SYNC_CHAN_RING_H
#define HERD_SYNC_CHAN_RING_H

#include "sync/sync.h"

#include <sched.h>
#include <string.h>

/* In an end's word: the fast path is closed, take the channel's lock. */
#define HERD__CHAN_SLOW ((uint64_t)1)
/* One position, as an end's word counts them. */
#define HERD__RING_STEP ((uint64_t)2)

/* What a ring operation did. */
enum { HERD__RING_OK, HERD__RING_NO /* full, or empty */, HERD__RING_SLOW };

/* memcpy, with the common word-sized value copied inline. A channel of
 * empty values may be given NULL pointers, which memcpy may not. */
static inline void herd__copy_elem(void *dst, const void *src, uint32_t size)
{
	if (herd__likely(size == 8))
		memcpy(dst, src, 8);
	else if (size)
		memcpy(dst, src, size);
}

static inline unsigned char *herd__ring_slot(herd_chan *ch, const herd__chan_end *e,
					     uint64_t pos)
{
	size_t i = (size_t)((pos & (e->lap - 1)) >> 1);
	return (unsigned char *)(ch + 1) + i * e->stride;
}

static inline _Atomic uint32_t *herd__ring_stamp(unsigned char *slot)
{
	return (_Atomic uint32_t *)(void *)slot;
}

/* The stamp of a slot free in pos's lap: twice the lap's number. */
static inline uint32_t herd__ring_turn(const herd__chan_end *e, uint64_t pos)
{
	return (uint32_t)(pos >> e->lap_shift) << 1;
}

/* The position after pos: the next index, or the next lap's first. */
static inline uint64_t herd__ring_next(const herd__chan_end *e, uint64_t pos)
{
	uint64_t i = (pos & (e->lap - 1)) >> 1;
	return i + 1 < e->cap ? pos + HERD__RING_STEP : (pos & ~(e->lap - 1)) + e->lap;
}

/* Waits a moment for another thread to finish copying a value: a few
 * dozen instructions, unless its thread was preempted in between (a plain
 * thread's try_send, or a worker on a busy machine): then give it the CPU. */
static inline void herd__ring_backoff(unsigned *spins)
{
	if (++*spins < 128)
		herd__cpu_relax();
	else
		sched_yield();
}

static inline uint64_t herd__ring_load(const herd__chan_end *e)
{
	return atomic_load_explicit(&e->pos, mo_relaxed);
}

/* Counters for empty values: a send moves the tail while it is less than
 * cap ahead of the head, a receive moves the head while it is behind the
 * tail. Release on the claim, acquire on the other end's word, so that a
 * send still happens before the receive it feeds. A difference out of
 * range is a stale word of one's own end: read it again. */
static inline int herd__count_push(herd_chan *ch, bool locked)
{
	herd__chan_end *e = &ch->send;
	uint64_t full = (uint64_t)e->cap * HERD__RING_STEP;
	uint64_t t = herd__ring_load(e);
	for (;;) {
		if (!locked && (t & HERD__CHAN_SLOW))
			return HERD__RING_SLOW;
		uint64_t h = atomic_load_explicit(&ch->recv.pos, mo_acquire) & ~HERD__CHAN_SLOW;
		uint64_t n = (t & ~HERD__CHAN_SLOW) - h;
		if (n < full) {
			if (atomic_compare_exchange_weak_explicit(
				    &e->pos, &t, t + HERD__RING_STEP, mo_release, mo_relaxed))
				return HERD__RING_OK;
			continue;
		}
		if (n == full)
			return HERD__RING_NO;
		t = herd__ring_load(e);
	}
}

static inline int herd__count_pop(herd_chan *ch, bool locked)
{
	herd__chan_end *e = &ch->recv;
	uint64_t full = (uint64_t)e->cap * HERD__RING_STEP;
	uint64_t h = herd__ring_load(e);
	for (;;) {
		if (!locked && (h & HERD__CHAN_SLOW))
			return HERD__RING_SLOW;
		uint64_t t = atomic_load_explicit(&ch->send.pos, mo_acquire) & ~HERD__CHAN_SLOW;
		uint64_t n = t - (h & ~HERD__CHAN_SLOW);
		if (n - 1 < full) { /* 0 < n <= full */
			if (atomic_compare_exchange_weak_explicit(
				    &e->pos, &h, h + HERD__RING_STEP, mo_release, mo_relaxed))
				return HERD__RING_OK;
			continue;
		}
		if (n == 0)
			return HERD__RING_NO;
		h = herd__ring_load(e);
	}
}

/*
 * Sends the value at elem into the ring. Returns HERD__RING_OK, or
 * HERD__RING_NO if the ring is full; unless `locked` (the caller holds the
 * channel's lock), HERD__RING_SLOW if the fast path is closed.
 */
static inline int herd__ring_push(herd_chan *ch, const void *elem, bool locked)
{
	herd__chan_end *e = &ch->send;
	if (herd__unlikely(!e->stride))
		return herd__count_push(ch, locked);
	uint64_t t = herd__ring_load(e);
	for (unsigned spins = 0;;) {
		if (!locked && (t & HERD__CHAN_SLOW))
			return HERD__RING_SLOW;
		uint64_t pos = t & ~HERD__CHAN_SLOW;
		unsigned char *s = herd__ring_slot(ch, e, pos);
		uint32_t turn = herd__ring_turn(e, pos);
		uint32_t stamp = atomic_load_explicit(herd__ring_stamp(s), mo_acquire);
		if (herd__likely(stamp == turn)) {
			uint64_t next = herd__ring_next(e, pos) | (t & HERD__CHAN_SLOW);
			if (herd__likely(atomic_compare_exchange_weak_explicit(
				    &e->pos, &t, next, mo_relaxed, mo_relaxed))) {
				herd__copy_elem(s + e->voff, elem, e->elem_size);
				atomic_store_explicit(herd__ring_stamp(s), turn + 1, mo_release);
				return HERD__RING_OK;
			}
			continue; /* t is the word now */
		}
		if (stamp == turn - 1) {
			/* Last lap's value, not yet received: full, unless a
			 * receiver has claimed it and is copying it out. */
			uint64_t h = atomic_load_explicit(&ch->recv.pos, mo_relaxed);
			if ((h & ~HERD__CHAN_SLOW) + e->lap == pos)
				return HERD__RING_NO;
		}
		herd__ring_backoff(&spins);
		t = herd__ring_load(e);
	}
}

/*
 * Receives the value at the ring's head into elem (NULL: drops it). Returns
 * HERD__RING_OK, or HERD__RING_NO if the ring is empty; unless `locked`,
 * HERD__RING_SLOW if the fast path is closed.
 */
static inline int herd__ring_pop(herd_chan *ch, void *elem, bool locked)
{
	herd__chan_end *e = &ch->recv;
	if (herd__unlikely(!e->stride))
		return herd__count_pop(ch, locked);
	uint64_t h = herd__ring_load(e);
	for (unsigned spins = 0;;) {
		if (!locked && (h & HERD__CHAN_SLOW))
			return HERD__RING_SLOW;
		uint64_t pos = h & ~HERD__CHAN_SLOW;
		unsigned char *s = herd__ring_slot(ch, e, pos);
		uint32_t turn = herd__ring_turn(e, pos);
		uint32_t stamp = atomic_load_explicit(herd__ring_stamp(s), mo_acquire);
		if (herd__likely(stamp == turn + 1)) {
			uint64_t next = herd__ring_next(e, pos) | (h & HERD__CHAN_SLOW);
			if (herd__likely(atomic_compare_exchange_weak_explicit(
				    &e->pos, &h, next, mo_relaxed, mo_relaxed))) {
				if (elem)
					herd__copy_elem(elem, s + e->voff, e->elem_size);
				atomic_store_explicit(herd__ring_stamp(s), turn + 2, mo_release);
				return HERD__RING_OK;
			}
			continue;
		}
		if (stamp == turn) {
			/* Not sent yet: empty, unless a sender has claimed
			 * the slot and is copying its value in. */
			uint64_t t = atomic_load_explicit(&ch->send.pos, mo_relaxed);
			if ((t & ~HERD__CHAN_SLOW) == pos)
				return HERD__RING_NO;
		}
		herd__ring_backoff(&spins);
		h = herd__ring_load(e);
	}
}

/* A position as a count of values: lap * cap + index (a counter's, for
 * channels of empty values). */
static inline uint64_t herd__ring_count(const herd__chan_end *e, uint64_t pos)
{
	if (!e->stride)
		return pos >> 1;
	return (pos >> e->lap_shift) * e->cap + ((pos & (e->lap - 1)) >> 1);
}

/* The values in the ring (those being copied in included). The two words
 * are read with no order between them, so on a weakly ordered machine the
 * head may seem ahead of the tail it followed: the difference is clamped
 * to what a ring can hold, never a wrapped one (a negative length). */
static inline uint32_t herd__ring_len(const herd_chan *ch)
{
	const herd__chan_end *e = &ch->send;
	uint64_t t, h;
	do {
		t = herd__ring_load(e) & ~HERD__CHAN_SLOW;
		h = herd__ring_load(&ch->recv) & ~HERD__CHAN_SLOW;
	} while ((herd__ring_load(e) & ~HERD__CHAN_SLOW) != t);
	uint64_t tn = herd__ring_count(e, t), hn = herd__ring_count(e, h);
	if (hn >= tn)
		return 0;
	return tn - hn < e->cap ? (uint32_t)(tn - hn) : e->cap;
}

/* Closes (or opens) the fast path: with the channel's lock held. */
static inline void herd__ring_set_slow(herd_chan *ch, bool slow)
{
	if (ch->slow == slow)
		return;
	ch->slow = slow;
	if (slow) {
		atomic_fetch_or_explicit(&ch->send.pos, HERD__CHAN_SLOW, mo_relaxed);
		atomic_fetch_or_explicit(&ch->recv.pos, HERD__CHAN_SLOW, mo_relaxed);
	} else {
		atomic_fetch_and_explicit(&ch->send.pos, ~HERD__CHAN_SLOW, mo_relaxed);
		atomic_fetch_and_explicit(&ch->recv.pos, ~HERD__CHAN_SLOW, mo_relaxed);
	}
}

#endif /* HERD_SYNC_CHAN_RING_H */
