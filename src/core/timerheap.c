/*
 * timerheap.c - the timer heap: a 4-ary min-heap of deadlines, with O(1)
 * removal of any timer (a task woken early removes its own). No lock: its
 * owner's (timer.c: rt->timer_lock).
 *
 * Where memory is touched matters more than the comparisons: a task's
 * timer lives in its frame, one stack page per timer, so every access to a
 * sleeping task's timer is a cache miss and often a TLB miss (with 100,000
 * sleepers, sifting through pointers, or writing each moved timer's slot
 * number into it, was most of the cost of waking them). So the heap never
 * touches a timer after adding it. Each slot holds a deadline and the id
 * of a record, as Go's heap keeps deadlines inline; the record (recs[id],
 * a dense array) holds the timer and its task, so that firing reads the
 * task from there. A timer knows its record's id (tm->index, written by
 * the adding task on its own stack).
 *
 * Removal is lazy, as in Go: it only marks the record dead (tm NULL), and
 * the slot leaves when it reaches the root, or when dead slots outnumber
 * live ones and the heap is rebuilt without them (O(n), paid for by the
 * removals). The root is never dead, so that its deadline is the earliest
 * live one's.
 *
 * Invariants: a slot's when <= its children's; ids in use (one per slot)
 * have tm->index == id and tm->when == the slot's when while live, and
 * their spare[] entries are elsewhere: the ids not in use are spare[0 ..
 * cap - n). ndead counts the dead slots. Out of the heap, tm->index is
 * SIZE_MAX, but for a task's timer that fired (its task, woken by it,
 * never looks: timer.c). Checked builds check all of it.
 */
#include "core/core.h"

#include <stdlib.h>

#define ARITY 4
/* Dead slots tolerated before a rebuild, at the least. */
#define DEAD_MIN 64

static void sift_up(herd__timerheap *h, size_t i)
{
	herd__timerslot s = h->a[i];
	while (i > 0) {
		size_t parent = (i - 1) / ARITY;
		if (h->a[parent].when <= s.when)
			break;
		h->a[i] = h->a[parent];
		i = parent;
	}
	h->a[i] = s;
}

static void sift_down(herd__timerheap *h, size_t i)
{
	herd__timerslot s = h->a[i];
	size_t n = h->n;
	for (;;) {
		size_t c = ARITY * i + 1;
		if (c >= n)
			break;
		/* The earliest of up to four children. */
		size_t end = c + ARITY < n ? c + ARITY : n, m = c;
		for (size_t k = c + 1; k < end; k++)
			if (h->a[k].when < h->a[m].when)
				m = k;
		if (s.when <= h->a[m].when)
			break;
		h->a[i] = h->a[m];
		i = m;
	}
	h->a[i] = s;
}

static inline void id_release(herd__timerheap *h, uint32_t id)
{
	h->recs[id].tm = NULL;
	h->recs[id].task = NULL;
	h->spare[h->cap - h->n] = id; /* before n is lowered */
}

/* Takes the root's slot out (its id released). */
static void root_drop(herd__timerheap *h)
{
	id_release(h, h->a[0].id);
	h->a[0] = h->a[--h->n];
	if (h->n)
		sift_down(h, 0);
}

/* Drops dead slots from the root, so that the root is live. */
static void clean_head(herd__timerheap *h)
{
	while (h->n && !h->recs[h->a[0].id].tm) {
		root_drop(h);
		h->ndead--;
	}
}

/* Rebuilds the heap without its dead slots. */
static void compact(herd__timerheap *h)
{
	size_t k = 0, n = h->n;
	for (size_t i = 0; i < n; i++) {
		herd__timerslot s = h->a[i];
		if (h->recs[s.id].tm) {
			h->a[k++] = s;
		} else {
			h->n = n - (i - k); /* id_release's count of spares */
			id_release(h, s.id);
		}
	}
	h->n = k;
	h->ndead = 0;
	for (size_t i = k > 1 ? (k - 2) / ARITY + 1 : 0; i-- > 0;)
		sift_down(h, i);
}

void herd__timerheap_remove(herd__timerheap *h, herd__timer *tm)
{
	uint32_t id = (uint32_t)tm->index;
	HERD__ASSERT(tm->index < h->cap && h->recs[id].tm == tm);
	h->recs[id].tm = NULL;
	h->ndead++;
	tm->index = SIZE_MAX;
	if (h->a[0].id == id)
		clean_head(h);
	else if (h->ndead > DEAD_MIN && 2 * h->ndead > h->n)
		compact(h);
}

herd__timer *herd__timerheap_pop(herd__timerheap *h, herd__task **task)
{
	HERD__ASSERT(h->n > 0);
	herd__timerrec r = h->recs[h->a[0].id];
	HERD__ASSERT(r.tm);
	root_drop(h);
	clean_head(h);
	*task = r.task;
	return r.tm;
}

bool herd__timerheap_is_first(const herd__timerheap *h, const herd__timer *tm)
{
	return h->n && tm->index == h->a[0].id;
}

/*
 * The latest time a timer fires at: 292 years of uptime, which the
 * monotonic clock (counting from boot) never reaches. A later deadline is
 * kept as INT64_MAX, the mark of a timer that never fires (timer_next
 * holds INT64_MAX while no timer will ever be due), and nobody is woken
 * for it. Every other `when` then lies a second or more below INT64_MAX,
 * so that the margins the scheduler adds to the earliest one (sched.c's
 * TIMER_LATE_NS, a millisecond) cannot overflow: deadlines and periods up
 * to INT64_MAX are valid, and herd_deadline saturates there.
 */
#define WHEN_MAX (INT64_MAX - HERD_SEC)

/* Doubles the arrays (64 slots at first); the new ids become spare. A
 * failed realloc leaves the larger arrays allocated, unused. */
static int heap_grow(herd__timerheap *h)
{
	size_t cap = h->cap ? 2 * h->cap : 64;
	if (cap > UINT32_MAX)
		return -ENOMEM;
	herd__timerslot *a = realloc(h->a, cap * sizeof *a);
	if (!a)
		return -ENOMEM;
	h->a = a;
	herd__timerrec *recs = realloc(h->recs, cap * sizeof *recs);
	if (!recs)
		return -ENOMEM;
	h->recs = recs;
	uint32_t *spare = realloc(h->spare, cap * sizeof *spare);
	if (!spare)
		return -ENOMEM;
	h->spare = spare;
	/* The heap is full: no id was spare. The lowest new one goes first. */
	for (size_t k = 0; k < cap - h->cap; k++) {
		spare[k] = (uint32_t)(cap - 1 - k);
		recs[cap - 1 - k] = (herd__timerrec){0};
	}
	h->cap = cap;
	return 0;
}

int herd__timerheap_add(herd__timerheap *h, herd__timer *tm)
{
	if (tm->when > WHEN_MAX)
		tm->when = INT64_MAX;
	if (h->n == h->cap) {
		if (h->ndead > DEAD_MIN && 4 * h->ndead > h->n)
			compact(h); /* rather than grow for the dead */
		else if (heap_grow(h) < 0)
			return -ENOMEM;
	}
	uint32_t id = h->spare[h->cap - h->n - 1];
	h->recs[id] = (herd__timerrec){.tm = tm, .task = tm->task};
	tm->index = id;
	h->a[h->n++] = (herd__timerslot){.when = tm->when, .id = id};
	sift_up(h, h->n - 1);
	return 0;
}

void herd__timerheap_free(herd__timerheap *h)
{
	free(h->a);
	free(h->recs);
	free(h->spare);
	*h = (herd__timerheap){0};
}

#if HERD_CHECKED
void herd__timerheap_check(const herd__timerheap *h)
{
	size_t dead = 0;
	HERD__ASSERT(h->n <= h->cap);
	HERD__ASSERT(!h->n || h->recs[h->a[0].id].tm);
	for (size_t i = 0; i < h->n; i++) {
		uint32_t id = h->a[i].id;
		const herd__timer *tm = h->recs[id].tm;
		HERD__ASSERT(id < h->cap);
		HERD__ASSERT(i == 0 || h->a[(i - 1) / ARITY].when <= h->a[i].when);
		if (!tm) {
			dead++;
			continue;
		}
		HERD__ASSERT(tm->index == id && tm->when == h->a[i].when);
		HERD__ASSERT(h->recs[id].task == tm->task);
	}
	HERD__ASSERT(dead == h->ndead);
	for (size_t k = 0; k < h->cap - h->n; k++)
		HERD__ASSERT(h->spare[k] < h->cap && !h->recs[h->spare[k]].tm);
}
#endif
