/*
 * timerheap.c - the timer heap: a 4-ary min-heap of deadlines, in which
 * each timer knows its index, so that a task woken early removes its timer
 * in O(log n). No lock: its owner's (timer.c: rt->timer_lock).
 *
 * Each slot holds the deadline beside the timer's pointer ({when, tm}), as
 * Go's timer heap does: a timer lives in the frame of a parked task, one
 * stack page per timer, so comparing through the pointers cost a cache (and
 * often a TLB) miss per child looked at; with the deadlines inline a sift
 * reads only the array and writes only the index of each timer it moves.
 * Four children per node halve the depth of a binary heap, and the four
 * deadlines a sift-down compares share one or two cache lines.
 *
 * Invariant: a[i].when <= the whens of its children, a[i].when ==
 * a[i].tm->when, and a[i].tm->index == i; tm->index is SIZE_MAX out of the
 * heap (checked builds check all three).
 */
#include "core/core.h"

#include <stdlib.h>

#define ARITY 4

static inline void heap_set(herd__timerheap *h, size_t i, herd__timerslot s)
{
	h->a[i] = s;
	s.tm->index = i;
}

static void sift_up(herd__timerheap *h, size_t i)
{
	herd__timerslot s = h->a[i];
	while (i > 0) {
		size_t parent = (i - 1) / ARITY;
		if (h->a[parent].when <= s.when)
			break;
		heap_set(h, i, h->a[parent]);
		i = parent;
	}
	heap_set(h, i, s);
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
		heap_set(h, i, h->a[m]);
		i = m;
	}
	heap_set(h, i, s);
}

void herd__timerheap_remove(herd__timerheap *h, herd__timer *tm)
{
	size_t i = tm->index;
	HERD__ASSERT(i < h->n && h->a[i].tm == tm);
	herd__timerslot last = h->a[--h->n];
	tm->index = SIZE_MAX;
	if (i == h->n)
		return;
	heap_set(h, i, last);
	/* The last slot may come from another subtree: it may have to rise
	 * as well as sink. */
	if (i > 0 && h->a[(i - 1) / ARITY].when > last.when)
		sift_up(h, i);
	else
		sift_down(h, i);
}

herd__timer *herd__timerheap_pop(herd__timerheap *h)
{
	HERD__ASSERT(h->n > 0);
	herd__timer *tm = h->a[0].tm;
	herd__timerslot last = h->a[--h->n];
	tm->index = SIZE_MAX;
	if (h->n) {
		heap_set(h, 0, last);
		sift_down(h, 0);
	}
	return tm;
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

int herd__timerheap_add(herd__timerheap *h, herd__timer *tm)
{
	if (tm->when > WHEN_MAX)
		tm->when = INT64_MAX;
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 64;
		herd__timerslot *a = realloc(h->a, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		h->a = a;
		h->cap = cap;
	}
	heap_set(h, h->n++, (herd__timerslot){tm->when, tm});
	sift_up(h, h->n - 1);
	return 0;
}

#if HERD_CHECKED
void herd__timerheap_check(const herd__timerheap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		HERD__ASSERT(h->a[i].tm->index == i);
		HERD__ASSERT(h->a[i].tm->when == h->a[i].when);
		HERD__ASSERT(i == 0 || h->a[(i - 1) / ARITY].when <= h->a[i].when);
	}
}
#endif
