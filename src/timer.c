/*
 * timer.c - the clock, deadlines, and the timer heap that wakes parked
 * tasks at their deadlines.
 *
 * A timer lives in the frame of the task that waits (herd__wait), so adding
 * one allocates nothing but, at times, heap array growth. The heap is a
 * binary min-heap on `when`, global to the runtime, under timer_lock; each
 * timer knows its index, so a task woken early removes its timer in
 * O(log n). timer_next mirrors the root's deadline (INT64_MAX when empty),
 * so that workers can poll it without the lock; it is written under the
 * lock with seq_cst, for the idle protocol described in sched.c.
 *
 * Firing happens under timer_lock: a timer in the heap means its task is
 * still in that wait (it removes the timer, under the lock, before it
 * returns), so claiming the task's wake there is safe (see wait.c).
 *
 * Lock order: timer_lock is taken after object and scope locks and before
 * the scheduler's leaf locks (herd__ready takes those).
 */
#include "internal.h"

#include <stdlib.h>
#include <time.h>

int64_t herd_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t herd_deadline(int64_t timeout)
{
	if (timeout < 0)
		return HERD_FOREVER;
	int64_t now = herd_now();
	return timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
}

static void heap_set(herd__rt *rt, size_t i, herd__timer *tm)
{
	rt->timer_heap[i] = tm;
	tm->index = i;
}

static void sift_up(herd__rt *rt, size_t i)
{
	herd__timer *tm = rt->timer_heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (rt->timer_heap[parent]->when <= tm->when)
			break;
		heap_set(rt, i, rt->timer_heap[parent]);
		i = parent;
	}
	heap_set(rt, i, tm);
}

static void sift_down(herd__rt *rt, size_t i)
{
	herd__timer *tm = rt->timer_heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= rt->timer_n)
			break;
		if (c + 1 < rt->timer_n &&
		    rt->timer_heap[c + 1]->when < rt->timer_heap[c]->when)
			c++;
		if (tm->when <= rt->timer_heap[c]->when)
			break;
		heap_set(rt, i, rt->timer_heap[c]);
		i = c;
	}
	heap_set(rt, i, tm);
}

static void heap_remove(herd__rt *rt, herd__timer *tm)
{
	size_t i = tm->index;
	herd__timer *last = rt->timer_heap[--rt->timer_n];
	tm->index = SIZE_MAX;
	if (last == tm)
		return;
	heap_set(rt, i, last);
	sift_down(rt, i);
	sift_up(rt, last->index);
}

static void publish_next(herd__rt *rt)
{
	int64_t next = rt->timer_n ? rt->timer_heap[0]->when : INT64_MAX;
	atomic_store_explicit(&rt->timer_next, next, mo_seq_cst);
}

int herd__timer_add(herd__rt *rt, herd__timer *tm)
{
	herd__mutex_lock(&rt->timer_lock);
	if (rt->timer_n == rt->timer_cap) {
		size_t cap = rt->timer_cap ? 2 * rt->timer_cap : 64;
		herd__timer **h = realloc(rt->timer_heap, cap * sizeof *h);
		if (!h) {
			herd__mutex_unlock(&rt->timer_lock);
			return -ENOMEM;
		}
		rt->timer_heap = h;
		rt->timer_cap = cap;
	}
	heap_set(rt, rt->timer_n++, tm);
	sift_up(rt, tm->index);
	bool earliest = tm->index == 0;
	if (earliest)
		publish_next(rt);
	herd__mutex_unlock(&rt->timer_lock);
	if (earliest)
		herd__wake_for_timers(rt);
	return 0;
}

void herd__timer_del(herd__rt *rt, herd__timer *tm)
{
	herd__mutex_lock(&rt->timer_lock);
	if (tm->index != SIZE_MAX) {
		bool was_root = tm->index == 0;
		heap_remove(rt, tm);
		if (was_root)
			publish_next(rt);
	}
	herd__mutex_unlock(&rt->timer_lock);
}

int herd__timers_run(herd__worker *w, int64_t now)
{
	herd__rt *rt = w->rt;
	int n = 0;
	herd__mutex_lock(&rt->timer_lock);
	while (rt->timer_n && rt->timer_heap[0]->when <= now) {
		herd__timer *tm = rt->timer_heap[0];
		heap_remove(rt, tm);
		n += herd__wake(tm->task, HERD_ETIMEDOUT);
	}
	publish_next(rt);
	herd__mutex_unlock(&rt->timer_lock);
	return n;
}

void herd__timers_fini(herd__rt *rt)
{
	free(rt->timer_heap);
	rt->timer_heap = NULL;
	rt->timer_n = rt->timer_cap = 0;
}

int herd_sleep(int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	if (herd__current(&w, &t))
		return -EPERM;
	if (deadline < 0)
		return -EINVAL;
	if (deadline == 0)
		return 0;
	int rc = herd__wait(&w, NULL, deadline, true);
	return rc == HERD_ETIMEDOUT ? 0 : rc;
}
