/*
 * wg.c - wait groups, as Go's sync.WaitGroup: a counter that tasks wait on
 * until it is zero.
 *
 * A wait group is a value in the program's memory (herd.h's herd_wg, whose
 * words hold struct wg) that works from all-zero bytes: HERD_WG_INIT, a
 * static or a calloc'ed one; herd_wg_new merely allocates a zeroed one.
 * Its lock is therefore an object lock (herd__objlock), whose rank is
 * implied, not stored.
 *
 * `lock` protects the counter and the wait queue. Reaching zero claims
 * and unqueues every queued waiter under the lock, and readies them only
 * after the unlock (see wait.c): a waiter may free the group, or leave the
 * frame that holds it, as soon as its wait returns. A
 * waiter woken by its deadline or by cancellation unqueues itself under the
 * lock, which is why herd_wg_free refuses while the queue is not empty.
 * Unlike Go, a counter that would go negative is an error code, not a
 * panic, and the counter is left as it was. Invariant, under the lock: the
 * counter is 0 or more, and is not 0 while a waiter that can still be
 * claimed is queued.
 */
#include "sync/sync.h"

#include <stdlib.h>

struct __attribute__((may_alias)) wg {
	herd__mutex lock;
	int32_t count;
	herd__waitq waiters;
};
HERD__IN_PUBLIC(struct wg, herd_wg);

static inline struct wg *wg_of(herd_wg *p)
{
	return (struct wg *)(void *)p;
}

int herd_wg_new(herd_wg **out)
{
	if (!out)
		return -EINVAL;
	herd_wg *wg = calloc(1, sizeof *wg);
	if (!wg)
		return -ENOMEM;
	*out = wg;
	HERD__LEAK_MADE(HERD__LEAK_WG, wg, 0, 0);
	return 0;
}

int herd_wg_free(herd_wg *p)
{
	if (!p)
		return 0;
	struct wg *wg = wg_of(p);
	herd__objlock(&wg->lock);
	bool busy = wg->waiters.head != NULL;
	herd__objunlock(&wg->lock);
	if (busy)
		return -EBUSY;
	HERD__LEAK_FREED(p);
	free(p);
	return 0;
}

int herd_wg_add(herd_wg *p, int delta)
{
	if (!p)
		return -EINVAL;
	struct wg *wg = wg_of(p);
	herd__objlock(&wg->lock);
	int64_t n = (int64_t)wg->count + delta;
	if (n < 0 || n > INT32_MAX) {
		herd__objunlock(&wg->lock);
		return -ERANGE;
	}
	wg->count = (int32_t)n;
	herd__list won = {0};
	if (n == 0)
		herd__waitq_claim_all(&wg->waiters, &won);
	HERD__ASSERT(wg->count >= 0);
	herd__objunlock(&wg->lock);
	/* After the unlock: a woken waiter may end the group's life. */
	herd__wait_finish_all(&won, 0);
	return (int)n;
}

int herd_wg_done(herd_wg *wg)
{
	return herd_wg_add(wg, -1);
}

int herd_wg_wait(herd_wg *p, int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	if (!p)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	if (deadline != HERD_NOWAIT && herd__scope_canceled(t->scope))
		return HERD_ECANCELED;
	struct wg *wg = wg_of(p);
	herd__objlock(&wg->lock);
	if (wg->count == 0) {
		herd__objunlock(&wg->lock);
		return 0;
	}
	herd__waiter wt = {.task = t};
	herd__waitq_push(&wg->waiters, &wt);
	herd__waits_on(t, HERD__WHY_WG, wg);
	int rc = herd__objwait(&w, &wg->lock, deadline, true);
	if (rc != 0) {
		herd__objlock(&wg->lock);
		herd__waitq_remove(&wg->waiters, &wt);
		herd__objunlock(&wg->lock);
	}
	return rc;
}
