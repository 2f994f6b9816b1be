/*
 * chan-timer.c - timers and tickers that deliver the time on a channel
 * (Go's time.Timer and time.Ticker): a delivery timer of the core's heap
 * (core/timer.c) whose delivery is a non-blocking send.
 *
 * The channel holds one value: a tick the receiver has not taken yet makes
 * the next one be dropped, as Go's tickers do. Stopping waits out a
 * delivery under way (herd__timer_stop), then drains the channel, so that
 * no stale tick is received after a stop or a reset.
 *
 * Locks: the core's timer_lock, then (never under it) the channel's.
 */
#include "sync/sync.h"

#include <stdlib.h>

struct herd_timer {
	herd__timer tm;         /* the core's delivery timer */
	herd__rt *rt;
	uint64_t serial;        /* rt->serial: the runtime still exists */
	herd_chan *ch;
};

static void deliver(herd__timer *tm, int64_t now)
{
	herd_chan *ch = herd__container_of(tm, herd_timer, tm)->ch;
	herd__worker *self = herd__self();
	herd__chan_lock(ch, self);
	(void)herd__chan_send_locked(ch, &now); /* full: dropped */
	herd__chan_unlock(ch, self);
}

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

static void drain(herd_chan *ch)
{
	herd__worker *self = herd__self();
	herd__chan_lock(ch, self);
	herd__chan_drain_locked(ch);
	herd__chan_unlock(ch, self);
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
	HERD__LEAK_FREED(ht->ch); /* the timer's, not the program's */
	ht->rt = rt;
	ht->serial = rt->serial;
	ht->tm.index = SIZE_MAX;
	ht->tm.deliver = deliver;
	rc = herd__timer_start(rt, &ht->tm, deadline, period);
	if (rc) {
		herd_chan_free(ht->ch);
		free(ht);
		return rc;
	}
	*out = ht;
	HERD__LEAK_MADE(HERD__LEAK_TIMER, ht, period, 0);
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
	bool pending = herd__timer_stop(rt, &ht->tm);
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
	bool pending = herd__timer_stop(rt, &ht->tm);
	/* Back in the heap first, for a time that never comes: the heap may
	 * have to grow (not when the timer was pending: its place is free),
	 * and a reset that fails leaves the channel as it was. */
	int rc = herd__timer_start(rt, &ht->tm, INT64_MAX, 0);
	if (rc)
		return rc;
	drain(ht->ch);
	herd__timer_start(rt, &ht->tm, deadline, period); /* in place: cannot fail */
	return pending;
}

int herd_timer_free(herd_timer *ht)
{
	if (!ht)
		return 0;
	herd__rt *rt = timer_rt(ht);
	if (rt)
		herd__timer_stop(rt, &ht->tm);
	int rc = herd_chan_free(ht->ch);
	if (rc)
		return rc;
	HERD__LEAK_FREED(ht);
	free(ht);
	return 0;
}
