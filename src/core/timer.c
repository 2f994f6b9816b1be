/*
 * timer.c - the clock, deadlines, and the timer heap that wakes parked
 * tasks at their deadlines.
 *
 * A timer lives in the frame of the task that waits (herd__wait), so adding
 * one allocates nothing but, at times, heap array growth. The heap
 * (timerheap.c) is a 4-ary min-heap on `when`, global to the runtime, under
 * timer_lock, that touches no timer once added; a task woken early removes
 * its timer in O(1). timer_next mirrors the root's deadline (INT64_MAX when
 * empty), so that workers can poll it without the lock; it is written
 * under the lock with seq_cst, for the idle protocol described in idle.c.
 *
 * Firing claims a task's wake under timer_lock: a timer in the heap means
 * its task is still in that wait (it removes the timer, under the lock,
 * before it returns), so claiming there is safe (see wait.c). Once
 * claimed, the task is the firer's alone and stays parked until readied:
 * so the firer readies it after unlocking, and timer_lock is held only for
 * the heap's work and the claims, not for the run queues and the wakeups
 * of idle workers that readying may take. A fired task timer whose claim
 * succeeded is not touched again (the store of its index would be one more
 * cache miss per wake): its task, woken by it (HERD_ETIMEDOUT), leaves its
 * wait without the lock and without reading it. If another waker won, the
 * firer marks the timer out (index SIZE_MAX) under the lock, where the
 * task's removal looks for it.
 *
 * Lock order: timer_lock is taken after object and scope locks and before
 * the scheduler's leaf locks (herd__ready takes those).
 */
#include "core/core.h"

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

static void publish_next(herd__rt *rt)
{
	int64_t next = herd__timerheap_first(&rt->timers);
	atomic_store_explicit(&rt->timer_next, next, mo_seq_cst);
}

int herd__timer_add(herd__rt *rt, herd__timer *tm)
{
	herd__mutex_lock(&rt->timer_lock);
	int rc = herd__timerheap_add(&rt->timers, tm);
	/* A timer that never fires has nobody to wake. */
	bool earliest = rc == 0 && herd__timerheap_is_first(&rt->timers, tm) &&
			tm->when != INT64_MAX;
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
	bool was_root = herd__timerheap_is_first(&rt->timers, tm);
	herd__timerheap_remove(&rt->timers, tm);
	if (was_root)
		publish_next(rt);
	return true;
}

void herd__timer_del(herd__rt *rt, herd__timer *tm)
{
	/* A task woken by this timer: the firer took it out of the heap and
	 * is done with it (HERD_ETIMEDOUT is only its result: wait.c); its
	 * index is stale. With any other waker, a firer may be about to claim
	 * the task (having taken its timer out): the lock waits for it, so
	 * that its claim cannot fall on the task's next wait. */
	if (tm->task && tm->task->wake_result == HERD_ETIMEDOUT)
		return;
	herd__mutex_lock(&rt->timer_lock);
	heap_unlink(rt, tm);
	herd__mutex_unlock(&rt->timer_lock);
}

/*
 * Deliveries (timers with no task: sync/'s channel timers): delivering
 * takes the channel's lock, which must not be taken under timer_lock (lock
 * order). herd__timers_run takes due timers out of the heap (putting
 * periodic ones back at their next tick) and counts them in `firing`,
 * under timer_lock; delivers after unlocking; and then uncounts them.
 * Stopping waits until `firing` is 0, so a stopped timer delivers nothing
 * more and its owner can free it.
 */
/* How late the earliest timer may get while the ring is full. */
#define OVERDUE_NS (10 * HERD_MSEC)

/* Timers taken per round of herd__timers_run, at most. */
#define FIRE_BATCH 32


/* Takes a due delivery out of the heap, or puts a ticker back at its
 * next tick after `now` (a tick missed altogether is skipped, as Go does). */
static void delivery_due(herd__rt *rt, herd__timer *tm, int64_t now)
{
	tm->firing++;
	if (tm->period > 0) {
		int64_t late = now - tm->when;
		int64_t skip = late / tm->period + 1;
		tm->when = skip > (INT64_MAX - tm->when) / tm->period
				   ? INT64_MAX
				   : tm->when + skip * tm->period;
		herd__timerheap_add(&rt->timers, tm); /* cannot fail: one slot was freed */
	}
}

/*
 * A task woken by its timer has been parked for a while: the frames it
 * resumes in are cold, and switching to it stalled on them (a cache and a
 * TLB miss each: the largest part of a wake's cost with 100,000 sleepers).
 * Prefetching them for the whole batch at once overlaps those misses; the
 * switch finds them in cache, or in the shared last level if another
 * worker takes the task. Eight lines cover the switch's frame and those of
 * the wait it returns through, up to the timer in herd__wait_park's (with
 * four, reading the timer was a miss). The saved stack pointer is read
 * without synchronisation (the task may in principle still be switching
 * away): a stale one only wastes a prefetch, which never faults.
 */
static void stack_prefetch(herd__task *t)
{
	const char *sp = *(void *const volatile *)&t->ctx.sp;
	for (int k = 0; k < 8; k++)
		__builtin_prefetch(sp + 64 * k, 0, 3);
}

/* Readies a task whose wake timers_run claimed: behind the runnable tasks,
 * so that tasks woken by timers run in deadline order. */
static void timeout_finish(herd__worker *w, herd__task *t)
{
	t->wake_result = HERD_ETIMEDOUT;
	herd__trace_wake(w, t);
	herd__ready_tail(w, t);
}

/*
 * Takes up to `room` due timers out of the heap and claims their tasks
 * (timer_lock held): the tasks won go to woken, the deliveries to fire
 * (both arrays of FIRE_BATCH). The heap's work comes first and touches no
 * task; the claims then find the tasks' lines on their way, fetched
 * together rather than one miss at a time.
 */
static void timers_take(herd__rt *rt, int64_t now, unsigned room,
			herd__timer **fire, unsigned *nfire,
			herd__task **woken, unsigned *nwoken)
{
	herd__timerheap *h = &rt->timers;
	unsigned n = 0;
	while (n < room && herd__timerheap_first(h) <= now) {
		fire[n] = herd__timerheap_pop(h, &woken[n]);
		if (woken[n])
			__builtin_prefetch(&woken[n]->wait, 1, 3);
		n++;
	}
	/* Compacted in place: each index written is at most the one read. */
	for (unsigned i = 0; i < n; i++) {
		herd__timer *tm = fire[i];
		herd__task *t = woken[i];
		if (!t) {
			tm->index = SIZE_MAX;
			fire[(*nfire)++] = tm;
			delivery_due(rt, tm, now);
		} else if (herd__wait_claim(t)) {
			woken[(*nwoken)++] = t;
		} else {
			/* Another waker won: the task leaves on its own, and
			 * must find its timer out. */
			tm->index = SIZE_MAX;
		}
	}
}

int herd__timers_run(herd__worker *w, int64_t now)
{
	herd__rt *rt = w->rt;
	herd__timer *fire[FIRE_BATCH];
	herd__task *woken[FIRE_BATCH];
	unsigned nfire = 0, nwoken = 0;
	/* Tasks go to the back of w's ring, in deadline order; no more than
	 * fit, or the overflow would reorder them (sched.c). But a ring that
	 * is full at every poll must not hold timers back for ever: once the
	 * earliest is OVERDUE_NS late, one fires all the same (its overflow
	 * moves half the ring to the global queue, so the next poll has room
	 * again). Only timers that late may then run out of order. */
	unsigned room = herd__runq_room(w);
	if (room < 1 && now - atomic_load_explicit(&rt->timer_next, mo_relaxed) >= OVERDUE_NS)
		room = 1;
	if (room > FIRE_BATCH)
		room = FIRE_BATCH;
	herd__mutex_lock(&rt->timer_lock);
	/* Again while every claim failed (other wakers won them all), so
	 * that a caller told none fired may take it that none is due. */
	while (room && !nwoken && !nfire && herd__timerheap_first(&rt->timers) <= now)
		timers_take(rt, now, room, fire, &nfire, woken, &nwoken);
	publish_next(rt);
	herd__mutex_unlock(&rt->timer_lock);
	for (unsigned i = 0; i < nwoken; i++)
		stack_prefetch(woken[i]);
	for (unsigned i = 0; i < nwoken; i++)
		timeout_finish(w, woken[i]);
	if (!nfire)
		return (int)nwoken;
	for (unsigned i = 0; i < nfire; i++)
		fire[i]->deliver(fire[i], now);
	herd__mutex_lock(&rt->timer_lock);
	for (unsigned i = 0; i < nfire; i++)
		fire[i]->firing--;
	herd__mutex_unlock(&rt->timer_lock);
	return (int)(nwoken + nfire);
}

void herd__timers_fini(herd__rt *rt)
{
	herd__timerheap_free(&rt->timers);
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
	herd__waits_on(t, HERD__WHY_SLEEP, NULL);
	int rc = herd__wait(&w, NULL, deadline, true);
	return rc == HERD_ETIMEDOUT ? 0 : rc;
}

/* Takes the timer out of the heap and waits out a delivery in progress;
 * returns with timer_lock held, and whether the timer was pending. */
static bool stop_locked(herd__rt *rt, herd__timer *tm)
{
	herd__mutex_lock(&rt->timer_lock);
	bool pending = heap_unlink(rt, tm);
	while (tm->firing) {
		/* A worker is delivering: a few instructions, unless its
		 * thread was preempted. */
		herd__mutex_unlock(&rt->timer_lock);
		sched_yield();
		herd__mutex_lock(&rt->timer_lock);
	}
	return pending;
}

bool herd__timer_stop(herd__rt *rt, herd__timer *tm)
{
	bool pending = stop_locked(rt, tm);
	herd__mutex_unlock(&rt->timer_lock);
	return pending;
}

int herd__timer_start(herd__rt *rt, herd__timer *tm, int64_t deadline, int64_t period)
{
	herd__mutex_lock(&rt->timer_lock);
	/* A concurrent start of the same timer may have put it in. */
	heap_unlink(rt, tm);
	tm->when = deadline;
	tm->period = period;
	int rc = herd__timerheap_add(&rt->timers, tm);
	int64_t when = tm->when; /* as the heap keeps it */
	bool earliest = rc == 0 && herd__timerheap_is_first(&rt->timers, tm) &&
			when != INT64_MAX;
	if (earliest)
		publish_next(rt);
	herd__mutex_unlock(&rt->timer_lock);
	if (earliest)
		herd__timer_kick(rt, when);
	return rc;
}
