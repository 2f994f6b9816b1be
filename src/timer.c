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

#include <sched.h>
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

/* Inserts tm, under timer_lock; -ENOMEM. */
static int heap_add_locked(herd__rt *rt, herd__timer *tm)
{
	if (tm->when > WHEN_MAX)
		tm->when = INT64_MAX;
	if (rt->timer_n == rt->timer_cap) {
		size_t cap = rt->timer_cap ? 2 * rt->timer_cap : 64;
		herd__timer **h = realloc(rt->timer_heap, cap * sizeof *h);
		if (!h)
			return -ENOMEM;
		rt->timer_heap = h;
		rt->timer_cap = cap;
	}
	heap_set(rt, rt->timer_n++, tm);
	sift_up(rt, tm->index);
	return 0;
}

int herd__timer_add(herd__rt *rt, herd__timer *tm)
{
	herd__mutex_lock(&rt->timer_lock);
	int rc = heap_add_locked(rt, tm);
	/* A timer that never fires has nobody to wake. */
	bool earliest = rc == 0 && tm->index == 0 && tm->when != INT64_MAX;
	if (earliest)
		publish_next(rt);
	herd__mutex_unlock(&rt->timer_lock);
	if (earliest)
		herd__timer_kick(rt, tm->when);
	return rc;
}

/* Takes tm out of the heap if it is in it (timer_lock held); true if it
 * was. */
static bool heap_unlink(herd__rt *rt, herd__timer *tm)
{
	if (tm->index == SIZE_MAX)
		return false;
	bool was_root = tm->index == 0;
	heap_remove(rt, tm);
	if (was_root)
		publish_next(rt);
	return true;
}

void herd__timer_del(herd__rt *rt, herd__timer *tm)
{
	herd__mutex_lock(&rt->timer_lock);
	heap_unlink(rt, tm);
	herd__mutex_unlock(&rt->timer_lock);
}

/*
 * Public timers (herd_timer): a herd__timer whose task is NULL, and the
 * channel it delivers to. Delivering takes the channel's lock, which must
 * not be taken under timer_lock (lock order): herd__timers_run takes due
 * timers out of the heap (putting tickers back at their next tick) and
 * counts them in `firing`, under timer_lock; sends after unlocking; and
 * then uncounts them. Stopping waits until `firing` is 0, so a stopped
 * timer delivers nothing more and can be freed.
 */
struct herd_timer {
	herd__timer tm;         /* first: the heap holds &tm */
	herd__rt *rt;
	uint64_t serial;        /* rt->serial: the runtime still exists */
	int64_t period;         /* under rt->timer_lock */
	unsigned firing;        /* under rt->timer_lock */
	herd_chan *ch;
};

/* How late the earliest timer may get while the ring is full. */
#define OVERDUE_NS (10 * HERD_MSEC)

/* Timers delivered per round of herd__timers_run, at most. */
#define FIRE_BATCH 32

static int heap_add_locked(herd__rt *rt, herd__timer *tm);

/* Takes a due public timer out of the heap, or puts a ticker back at its
 * next tick after `now` (a tick missed altogether is skipped, as Go does). */
static void public_due(herd__rt *rt, herd_timer *ht, int64_t now)
{
	ht->firing++;
	if (ht->period > 0) {
		int64_t late = now - ht->tm.when;
		int64_t skip = late / ht->period + 1;
		ht->tm.when = skip > (INT64_MAX - ht->tm.when) / ht->period
				      ? INT64_MAX
				      : ht->tm.when + skip * ht->period;
		heap_add_locked(rt, &ht->tm); /* cannot fail: one slot was freed */
	}
}

int herd__timers_run(herd__worker *w, int64_t now)
{
	herd__rt *rt = w->rt;
	herd_timer *fire[FIRE_BATCH];
	unsigned nfire = 0;
	int n = 0;
	/* Tasks go to the back of w's ring, in deadline order; no more than
	 * fit, or the overflow would reorder them (sched.c). But a ring that
	 * is full at every poll must not hold timers back for ever: once the
	 * earliest is OVERDUE_NS late, one fires all the same (its overflow
	 * moves half the ring to the global queue, so the next poll has room
	 * again). Only timers that late may then run out of order. */
	int room = (int)herd__runq_room(w);
	if (room < 1 && now - atomic_load_explicit(&rt->timer_next, mo_relaxed) >= OVERDUE_NS)
		room = 1;
	herd__mutex_lock(&rt->timer_lock);
	while (n < room && nfire < FIRE_BATCH && rt->timer_n &&
	       rt->timer_heap[0]->when <= now) {
		herd__timer *tm = rt->timer_heap[0];
		heap_remove(rt, tm);
		if (tm->task) {
			n += herd__wake_timeout(tm->task);
		} else {
			fire[nfire++] = (herd_timer *)tm;
			public_due(rt, (herd_timer *)tm, now);
			n++;
		}
	}
	publish_next(rt);
	herd__mutex_unlock(&rt->timer_lock);
	if (!nfire)
		return n;
	for (unsigned i = 0; i < nfire; i++) {
		herd_chan *ch = fire[i]->ch;
		herd__mutex_lock(&ch->lock);
		(void)herd__chan_send_locked(ch, &now); /* full: dropped */
		herd__mutex_unlock(&ch->lock);
	}
	herd__mutex_lock(&rt->timer_lock);
	for (unsigned i = 0; i < nfire; i++)
		fire[i]->firing--;
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

/* ------------------------------------------------------------------ */
/* Public timers and tickers                                           */
/* ------------------------------------------------------------------ */

/* The timer's runtime if it is the one running now, else NULL. */
static herd__rt *timer_rt(const herd_timer *ht)
{
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	return rt && rt == ht->rt && rt->serial == ht->serial ? rt : NULL;
}

static bool args_ok(int64_t deadline, int64_t period)
{
	return deadline >= 0 && period >= 0;
}

/* Takes the timer out of the heap and waits out a delivery in progress;
 * returns with timer_lock held, and whether the timer was pending. */
static bool stop_locked(herd__rt *rt, herd_timer *ht)
{
	herd__mutex_lock(&rt->timer_lock);
	bool pending = heap_unlink(rt, &ht->tm);
	while (ht->firing) {
		/* A worker is sending to the channel: a few instructions, unless
		 * its thread was preempted. */
		herd__mutex_unlock(&rt->timer_lock);
		sched_yield();
		herd__mutex_lock(&rt->timer_lock);
	}
	return pending;
}

static void drain(herd_chan *ch)
{
	herd__mutex_lock(&ch->lock);
	herd__chan_drain_locked(ch);
	herd__mutex_unlock(&ch->lock);
}

/* Puts a stopped timer back in the heap at deadline; timer_lock held on
 * entry, released on return. */
static int start_unlock(herd__rt *rt, herd_timer *ht, int64_t deadline,
			int64_t period)
{
	/* A concurrent reset of the same timer may have put it back. */
	heap_unlink(rt, &ht->tm);
	ht->tm.when = deadline;
	ht->period = period;
	int rc = heap_add_locked(rt, &ht->tm);
	int64_t when = ht->tm.when; /* as the heap keeps it */
	bool earliest = rc == 0 && ht->tm.index == 0 && when != INT64_MAX;
	if (earliest)
		publish_next(rt);
	herd__mutex_unlock(&rt->timer_lock);
	if (earliest)
		herd__timer_kick(rt, when);
	return rc;
}

int herd_timer_new(herd_timer **out, int64_t deadline, int64_t period)
{
	if (!out || !args_ok(deadline, period))
		return -EINVAL;
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	if (!rt)
		return -ESRCH;
	herd_timer *ht = calloc(1, sizeof *ht);
	if (!ht)
		return -ENOMEM;
	int rc = herd_chan_make(&ht->ch, sizeof(int64_t), 1);
	if (rc) {
		free(ht);
		return rc;
	}
	ht->rt = rt;
	ht->serial = rt->serial;
	ht->tm.index = SIZE_MAX;
	herd__mutex_lock(&rt->timer_lock);
	rc = start_unlock(rt, ht, deadline, period);
	if (rc) {
		herd_chan_free(ht->ch);
		free(ht);
		return rc;
	}
	*out = ht;
	return 0;
}

herd_chan *herd_timer_chan(herd_timer *ht)
{
	return ht ? ht->ch : NULL;
}

int herd_timer_stop(herd_timer *ht)
{
	if (!ht)
		return -EINVAL;
	herd__rt *rt = timer_rt(ht);
	if (!rt)
		return -ESRCH;
	bool pending = stop_locked(rt, ht);
	herd__mutex_unlock(&rt->timer_lock);
	drain(ht->ch);
	return pending;
}

int herd_timer_reset(herd_timer *ht, int64_t deadline, int64_t period)
{
	if (!ht || !args_ok(deadline, period))
		return -EINVAL;
	herd__rt *rt = timer_rt(ht);
	if (!rt)
		return -ESRCH;
	bool pending = stop_locked(rt, ht);
	herd__mutex_unlock(&rt->timer_lock);
	drain(ht->ch);
	herd__mutex_lock(&rt->timer_lock);
	int rc = start_unlock(rt, ht, deadline, period);
	return rc ? rc : pending;
}

int herd_timer_free(herd_timer *ht)
{
	if (!ht)
		return 0;
	herd__rt *rt = timer_rt(ht);
	if (rt) {
		stop_locked(rt, ht);
		herd__mutex_unlock(&rt->timer_lock);
	}
	int rc = herd_chan_free(ht->ch);
	if (rc)
		return rc;
	free(ht);
	return 0;
}
