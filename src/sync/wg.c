/*
 * wg.c - wait groups, as Go's sync.WaitGroup: a counter that tasks wait on
 * until it is zero.
 *
 * `lock` protects the counter and the wait queue. Reaching zero wakes every
 * queued waiter (herd__waitq_wake_all, under the lock; see wait.c). A
 * waiter woken by its deadline or by cancellation unqueues itself under the
 * lock, which is
 * why herd_wg_free refuses while the queue is not empty. Unlike Go, a
 * counter that would go negative is an error code, not a panic, and the
 * counter is left as it was.
 */
#include "sync/sync.h"

#include <stdlib.h>

struct herd_wg {
	herd__mutex lock;
	int32_t count;
	herd__waitq waiters;
};

int herd_wg_new(herd_wg **out)
{
	if (!out)
		return -EINVAL;
	herd_wg *wg = calloc(1, sizeof *wg);
	if (!wg)
		return -ENOMEM;
	herd__mutex_init(&wg->lock, HERD__RANK_OBJECT);
	*out = wg;
	return 0;
}

int herd_wg_free(herd_wg *wg)
{
	if (!wg)
		return 0;
	herd__mutex_lock(&wg->lock);
	bool busy = wg->waiters.head != NULL;
	herd__mutex_unlock(&wg->lock);
	if (busy)
		return -EBUSY;
	free(wg);
	return 0;
}

int herd_wg_add(herd_wg *wg, int delta)
{
	if (!wg)
		return -EINVAL;
	herd__mutex_lock(&wg->lock);
	int64_t n = (int64_t)wg->count + delta;
	if (n < 0 || n > INT32_MAX) {
		herd__mutex_unlock(&wg->lock);
		return -ERANGE;
	}
	wg->count = (int32_t)n;
	if (n == 0)
		herd__waitq_wake_all(&wg->waiters);
	herd__mutex_unlock(&wg->lock);
	return (int)n;
}

int herd_wg_done(herd_wg *wg)
{
	return herd_wg_add(wg, -1);
}

int herd_wg_wait(herd_wg *wg, int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	if (!wg)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	if (deadline != HERD_NOWAIT && herd__scope_canceled(t->scope))
		return HERD_ECANCELED;
	herd__mutex_lock(&wg->lock);
	if (wg->count == 0) {
		herd__mutex_unlock(&wg->lock);
		return 0;
	}
	herd__waiter wt = {.task = t};
	herd__waitq_push(&wg->waiters, &wt);
	int rc = herd__wait(&w, &wg->lock, deadline, true);
	if (rc != 0) {
		herd__mutex_lock(&wg->lock);
		herd__waitq_remove(&wg->waiters, &wt);
		herd__mutex_unlock(&wg->lock);
	}
	return rc;
}
