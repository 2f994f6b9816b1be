/*
 * timerheap.c - the timer heap: a binary min-heap of deadlines on `when`,
 * in which each timer knows its index, so that a task woken early removes
 * its timer in O(log n). No lock: its owner's (timer.c: rt->timer_lock).
 * Invariant: a->when <= the whens of its children; tm->index is its slot,
 * SIZE_MAX out of the heap (checked builds check both).
 */
#include "core/core.h"

#include <stdlib.h>

static void heap_set(herd__timerheap *h, size_t i, herd__timer *tm)
{
	h->a[i] = tm;
	tm->index = i;
}

static void sift_up(herd__timerheap *h, size_t i)
{
	herd__timer *tm = h->a[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (h->a[parent]->when <= tm->when)
			break;
		heap_set(h, i, h->a[parent]);
		i = parent;
	}
	heap_set(h, i, tm);
}

static void sift_down(herd__timerheap *h, size_t i)
{
	herd__timer *tm = h->a[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n &&
		    h->a[c + 1]->when < h->a[c]->when)
			c++;
		if (tm->when <= h->a[c]->when)
			break;
		heap_set(h, i, h->a[c]);
		i = c;
	}
	heap_set(h, i, tm);
}

void herd__timerheap_remove(herd__timerheap *h, herd__timer *tm)
{
	size_t i = tm->index;
	HERD__ASSERT(i < h->n && h->a[i] == tm);
	herd__timer *last = h->a[--h->n];
	tm->index = SIZE_MAX;
	if (last == tm)
		return;
	heap_set(h, i, last);
	sift_down(h, i);
	sift_up(h, last->index);
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
		herd__timer **a = realloc(h->a, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		h->a = a;
		h->cap = cap;
	}
	heap_set(h, h->n++, tm);
	sift_up(h, tm->index);
	return 0;
}


#if HERD_CHECKED
void herd__timerheap_check(const herd__timerheap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		HERD__ASSERT(h->a[i]->index == i);
		HERD__ASSERT(i == 0 || h->a[(i - 1) / 2]->when <= h->a[i]->when);
	}
}
#endif
