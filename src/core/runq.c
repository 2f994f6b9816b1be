/*
 * runq.c - the run queues: each worker's ring of 256 tasks and its runnext
 * slot, the global queue that takes their overflow (in batches) and the
 * tasks readied by other threads, and stealing between workers. The
 * owner's fast paths (put, get) are inline in sched.h.
 *
 * Run queue ordering. The ring has head and tail counters. Only the owner
 * writes slots and tail: slot (relaxed), then tail (release). Takers, the
 * owner included, read head (acquire) and tail (acquire for thieves), read
 * the slots, then claim them with a CAS on head (acq_rel); a failed CAS
 * means another taker won, and the read slots are discarded. A slot is
 * rewritten only after head has moved past it, so a slot read by a thief
 * whose CAS then succeeds was not overwritten. runnext is exchanged with
 * seq_cst (the owner) or CASed (thieves, last round only).
 *
 * Locks: gq_lock (a leaf) protects the global queue and its free batches.
 */
#include "core/sched.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

/* How long a worker's only queued task may sit there before another
 * worker steals it (see runnext_stays). 20 us rather than Go's 3: with
 * two producers and two consumers on one channel, 5 us let the tasks
 * spread over both cores half the time, and the channel's lock then
 * crossed cores at every message (chan-2x2: 34-38 ns/msg against 19-26);
 * a tree of short tasks (skynet) loses about 5%. */
#define RUNNEXT_GRACE_NS (20 * HERD_USEC)
/* A spinning thief reads the clock once per this many spins. */
#define CLOCK_EVERY 32u

/* ------------------------------------------------------------------ */
/* The global queue                                                   */
/* ------------------------------------------------------------------ */

/* Half a ring moved to the global queue in one piece: taking it back is a
 * copy of pointers, not a walk through 128 task objects in other caches. */
struct herd__batch {
	struct herd__batch *next;
	uint32_t head, n;
	herd__task *t[HERD__RUNQ / 2 + 1];
};

static void gq_size_add(herd__rt *rt, int32_t n)
{
	uint32_t size = atomic_load_explicit(&rt->gq_size, mo_relaxed);
	atomic_store_explicit(&rt->gq_size, size + (uint32_t)n, mo_seq_cst);
}

void herd__global_put_list(herd__rt *rt, herd__task *first, herd__task *last,
			    uint32_t n)
{
	last->next = NULL;
	herd__mutex_lock(&rt->gq_lock);
	if (rt->gq_tail)
		rt->gq_tail->next = first;
	else
		rt->gq_head = first;
	rt->gq_tail = last;
	gq_size_add(rt, (int32_t)n);
	herd__mutex_unlock(&rt->gq_lock);
}

/* Batches are recycled under gq_lock: malloc'ing one on a worker and
 * freeing it on another would contend on malloc's arena locks. */
static struct herd__batch *batch_alloc(herd__rt *rt)
{
	herd__mutex_lock(&rt->gq_lock);
	struct herd__batch *b = rt->gq_free_batches;
	if (b)
		rt->gq_free_batches = b->next;
	herd__mutex_unlock(&rt->gq_lock);
	return b ? b : malloc(sizeof *b);
}

static void batch_recycle_locked(herd__rt *rt, struct herd__batch *b)
{
	b->next = rt->gq_free_batches;
	rt->gq_free_batches = b;
}

void herd__batches_free(herd__rt *rt)
{
	struct herd__batch *b;
	while ((b = rt->gq_free_batches)) {
		rt->gq_free_batches = b->next;
		free(b);
	}
}

static void global_put_batch(herd__rt *rt, struct herd__batch *b)
{
	b->next = NULL;
	herd__mutex_lock(&rt->gq_lock);
	if (rt->gq_batches_tail)
		rt->gq_batches_tail->next = b;
	else
		rt->gq_batches = b;
	rt->gq_batches_tail = b;
	gq_size_add(rt, (int32_t)b->n);
	herd__mutex_unlock(&rt->gq_lock);
}

/* Takes up to max tasks into out[], batches first; gq_lock held. */
static uint32_t global_take_locked(herd__rt *rt, herd__task **out, uint32_t max)
{
	uint32_t n = 0;
	struct herd__batch *b = rt->gq_batches;
	if (b) {
		for (; n < max && b->head < b->n; n++)
			out[n] = b->t[b->head++];
		if (b->head == b->n) {
			rt->gq_batches = b->next;
			if (!rt->gq_batches)
				rt->gq_batches_tail = NULL;
			batch_recycle_locked(rt, b);
		}
		return n;
	}
	uint32_t fair = atomic_load_explicit(&rt->gq_size, mo_relaxed) / rt->nworkers + 1;
	for (; n < max && n < fair && rt->gq_head; n++) {
		out[n] = rt->gq_head;
		rt->gq_head = rt->gq_head->next;
	}
	if (!rt->gq_head)
		rt->gq_tail = NULL;
	return n;
}


/* Takes work from the global queue: one task to run, the rest into the
 * local ring (which has room for them: only its owner adds to it). */
herd__task *herd__global_get(herd__worker *w)
{
	herd__rt *rt = w->rt;
	if (atomic_load_explicit(&rt->gq_size, mo_relaxed) == 0)
		return NULL;
	uint32_t used = atomic_load_explicit(&w->rq_tail, mo_relaxed) -
			atomic_load_explicit(&w->rq_head, mo_acquire);
	herd__task *buf[HERD__RUNQ / 2 + 1];
	uint32_t max = (HERD__RUNQ - used) / 2 + 1;
	herd__mutex_lock(&rt->gq_lock);
	uint32_t n = global_take_locked(rt, buf, max);
	if (n)
		gq_size_add(rt, -(int32_t)n);
	herd__mutex_unlock(&rt->gq_lock);
	for (uint32_t i = 1; i < n; i++)
		herd__runq_put(w, buf[i]);
	return n ? buf[0] : NULL;
}

/* ------------------------------------------------------------------ */
/* Local run queues                                                   */
/* ------------------------------------------------------------------ */

/* The ring is full: moves its older half and t to the global queue.
 * False if a thief moved head meanwhile (the caller retries). */
bool herd__runq_put_slow(herd__worker *w, herd__task *t, uint32_t h)
{
	const uint32_t n = HERD__RUNQ / 2;
	struct herd__batch *b = batch_alloc(w->rt);
	herd__task *stack_batch[HERD__RUNQ / 2 + 1];
	herd__task **batch = b ? b->t : stack_batch;
	for (uint32_t i = 0; i < n; i++)
		batch[i] = atomic_load_explicit(&w->rq[(h + i) % HERD__RUNQ],
						mo_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&w->rq_head, &h, h + n,
						     mo_acq_rel, mo_relaxed)) {
		if (b) {
			herd__mutex_lock(&w->rt->gq_lock);
			batch_recycle_locked(w->rt, b);
			herd__mutex_unlock(&w->rt->gq_lock);
		}
		return false;
	}
	batch[n] = t;
	if (b) {
		b->head = 0;
		b->n = n + 1;
		global_put_batch(w->rt, b);
		return true;
	}
	/* Out of memory for a batch: link the tasks one by one. */
	for (uint32_t i = 0; i < n; i++)
		batch[i]->next = batch[i + 1];
	herd__global_put_list(w->rt, batch[0], t, n + 1);
	return true;
}

/*
 * Whether task t stays in v's runnext for RUNNEXT_GRACE_NS. Thieves wait
 * that long before they take a worker's only queued task (its runnext, or a
 * ring holding one task): that task was usually just readied by the task
 * running there, which is about to block and hand it its worker (a
 * channel's ping-pong, a select's senders), and stealing it would only move
 * the tasks' data to another core. Go sleeps 3 us before it steals a
 * running P's runnext for the same reason.
 */
static bool runnext_stays(herd__worker *v, herd__task *t)
{
	int64_t until = herd_now() + RUNNEXT_GRACE_NS;
	for (unsigned i = 1; atomic_load_explicit(&v->runnext, mo_relaxed) == t; i++) {
		herd__cpu_relax();
		if (i % CLOCK_EVERY == 0 && herd_now() >= until)
			return true;
	}
	return false;
}

/* The same for a ring holding one task, at head h. */
static bool ring_stays(herd__worker *v, uint32_t h)
{
	int64_t until = herd_now() + RUNNEXT_GRACE_NS;
	for (unsigned i = 1; atomic_load_explicit(&v->rq_head, mo_relaxed) == h; i++) {
		herd__cpu_relax();
		if (i % CLOCK_EVERY == 0 && herd_now() >= until)
			return true;
	}
	return false;
}

/* Takes half of v's ring into buf (or, if take_next, its runnext when the
 * ring is empty). Returns how many. */
uint32_t herd__runq_grab(herd__worker *v, herd__task **buf, bool take_next)
{
	for (;;) {
		uint32_t h = atomic_load_explicit(&v->rq_head, mo_acquire);
		uint32_t tl = atomic_load_explicit(&v->rq_tail, mo_acquire);
		uint32_t n = tl - h;
		n -= n / 2;
		if (n == 0) {
			herd__task *nx = atomic_load_explicit(&v->runnext, mo_relaxed);
			if (!take_next || !nx || !runnext_stays(v, nx))
				return 0;
			if (atomic_compare_exchange_strong_explicit(
				    &v->runnext, &nx, NULL, mo_acq_rel, mo_relaxed)) {
				buf[0] = nx;
				return 1;
			}
			continue;
		}
		if (n > HERD__RUNQ / 2)
			continue; /* head and tail read at different times */
		if (tl - h == 1 && !ring_stays(v, h))
			return 0;
		for (uint32_t i = 0; i < n; i++)
			buf[i] = atomic_load_explicit(&v->rq[(h + i) % HERD__RUNQ],
						      mo_relaxed);
		if (atomic_compare_exchange_strong_explicit(&v->rq_head, &h, h + n,
							    mo_acq_rel, mo_relaxed))
			return n;
	}
}

herd__task *herd__runq_steal(herd__worker *w, herd__worker *v, bool take_next)
{
	herd__task *buf[HERD__RUNQ / 2];
	uint32_t n = herd__runq_grab(v, buf, take_next);
	if (n == 0)
		return NULL;
	for (uint32_t i = 0; i + 1 < n; i++)
		herd__runq_put(w, buf[i]);
	return buf[n - 1];
}


bool herd__sched_busy(herd__worker *w)
{
	return atomic_load_explicit(&w->rq_tail, mo_relaxed) !=
		       atomic_load_explicit(&w->rq_head, mo_relaxed) ||
	       atomic_load_explicit(&w->runnext, mo_relaxed);
}

void herd__sched_rescue(herd__worker *v)
{
	herd__rt *rt = v->rt;
	herd__task *buf[HERD__RUNQ / 2];
	uint32_t n, moved = 0;
	while ((n = herd__runq_grab(v, buf, true)) > 0) {
		for (uint32_t i = 0; i + 1 < n; i++)
			buf[i]->next = buf[i + 1];
		herd__global_put_list(rt, buf[0], buf[n - 1], n);
		moved += n;
	}
	if (moved)
		herd__wakep(rt);
}
