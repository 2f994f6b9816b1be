/*
 * scope.c - scopes: the tree that every task belongs to, waiting for it to
 * empty, cancelling it, and closing it.
 *
 * Invariants.
 *   - count = the scope's live tasks + its open child scopes. A child holds
 *     one count on its parent from herd_scope_open to the end of its close,
 *     and closing waits for count == 0, so a scope's count is 0 exactly when
 *     no task of it or of any scope nested in it is alive.
 *   - A scope is owned by the task that opened it; only that task closes it,
 *     and it does so at the latest as it ends (herd__scope_detach). So a
 *     scope outlives every task of its own, and a parent outlives its
 *     children: parent pointers may be followed without locks.
 *   - A scope is freed only when count == 0 and no waiter is queued on it:
 *     a waiter woken by its deadline or by cancellation unqueues itself
 *     under the scope's lock, so the scope must still be there.
 *   - `canceled` only goes from 0 to 1. A cancelled scope's children are
 *     cancelled too, and a child opened later starts cancelled (it copies
 *     the flag under the parent's lock).
 *   - The root scope (herd_run's) has no owner; when its count reaches 0
 *     every task has ended and the runtime shuts down.
 *
 * Locks. `lock` protects count, the task list, the children list and the
 * wait queue. Lock order: parent before child (cancellation walks down
 * holding each lock); a closing child takes its parent's lock only after
 * releasing its own. Under a scope lock, herd__wake may ready tasks (leaf
 * locks only).
 */
#include "internal.h"

#include <stdlib.h>

struct herd_scope {
	herd__mutex lock;
	_Atomic uint32_t canceled;
	uint32_t count;
	herd__task *tasks;          /* linked through sprev/snext */
	herd_scope *parent;
	herd_scope *children;       /* open children, through sib_prev/next */
	herd_scope *sib_prev, *sib_next;
	herd__task *owner;          /* NULL for the root */
	herd_scope *owned_next;     /* the owner's list of open scopes */
	herd__waitq waiters;
	herd__rt *rt;
};

bool herd__scope_canceled(const herd_scope *s)
{
	return atomic_load_explicit(&s->canceled, mo_seq_cst) != 0;
}

herd_scope *herd__scope_root_new(herd__rt *rt)
{
	herd_scope *s = calloc(1, sizeof *s);
	if (s)
		s->rt = rt;
	return s;
}

void herd__scope_root_free(herd_scope *s)
{
	free(s);
}

/* Drops one count; called with s->lock held. True if the root emptied. */
static bool scope_put_locked(herd_scope *s)
{
	if (--s->count == 0) {
		herd__waitq_wake_all(&s->waiters);
		return s->parent == NULL;
	}
	return false;
}

int herd__scope_attach(herd_scope *s, herd__task *t)
{
	herd__mutex_lock(&s->lock);
	if (herd__unlikely(atomic_load_explicit(&s->canceled, mo_relaxed))) {
		herd__mutex_unlock(&s->lock);
		return HERD_ECANCELED;
	}
	t->scope = s;
	t->sprev = NULL;
	t->snext = s->tasks;
	if (s->tasks)
		s->tasks->sprev = t;
	s->tasks = t;
	s->count++;
	herd__mutex_unlock(&s->lock);
	return 0;
}

static void scope_close(herd__worker **wp, herd__task *t, herd_scope *s);

void herd__scope_detach(herd__worker **wp, herd__task *t)
{
	while (t->owned)
		scope_close(wp, t, t->owned);
	herd_scope *s = t->scope;
	herd__mutex_lock(&s->lock);
	if (t->sprev)
		t->sprev->snext = t->snext;
	else
		s->tasks = t->snext;
	if (t->snext)
		t->snext->sprev = t->sprev;
	bool root_empty = scope_put_locked(s);
	herd__rt *rt = s->rt;
	herd__mutex_unlock(&s->lock);
	if (root_empty)
		herd__shutdown(rt);
}

int herd_scope_open(herd_scope **out)
{
	herd__worker *w;
	herd__task *t;
	if (!out)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	herd_scope *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	herd_scope *p = t->scope;
	s->rt = w->rt;
	s->parent = p;
	s->owner = t;
	herd__mutex_lock(&p->lock);
	atomic_store_explicit(&s->canceled,
			      atomic_load_explicit(&p->canceled, mo_relaxed), mo_relaxed);
	s->sib_next = p->children;
	if (p->children)
		p->children->sib_prev = s;
	p->children = s;
	p->count++;
	herd__mutex_unlock(&p->lock);
	s->owned_next = t->owned;
	t->owned = s;
	*out = s;
	return 0;
}

herd_scope *herd_scope_current(void)
{
	herd__worker *w = herd__self();
	return w && w->cur ? w->cur->scope : NULL;
}

/* Is the scope `inner` the scope s or nested in it? */
static bool scope_within(const herd_scope *inner, const herd_scope *s)
{
	for (; inner; inner = inner->parent)
		if (inner == s)
			return true;
	return false;
}

int herd_scope_wait(herd_scope *s, int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	if (!s)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	if (scope_within(t->scope, s))
		return -EDEADLK;
	if (deadline != HERD_NOWAIT && herd__scope_canceled(t->scope))
		return HERD_ECANCELED;
	herd__mutex_lock(&s->lock);
	if (s->count == 0) {
		herd__mutex_unlock(&s->lock);
		return 0;
	}
	herd__waiter wt = {.task = t};
	herd__waitq_push(&s->waiters, &wt);
	int rc = herd__wait(&w, &s->lock, deadline, true);
	if (rc != 0) {
		herd__mutex_lock(&s->lock);
		herd__waitq_remove(&s->waiters, &wt);
		/* A closer may be waiting for the queue to drain. */
		if (s->count == 0)
			herd__waitq_wake_all(&s->waiters);
		herd__mutex_unlock(&s->lock);
	}
	return rc;
}

static void cancel_locked(herd_scope *s)
{
	if (atomic_load_explicit(&s->canceled, mo_relaxed))
		return;
	atomic_store_explicit(&s->canceled, 1, mo_seq_cst);
	for (herd__task *t = s->tasks; t; t = t->snext)
		herd__wake_canceled(t);
	for (herd_scope *c = s->children; c; c = c->sib_next) {
		herd__mutex_lock(&c->lock);
		cancel_locked(c);
		herd__mutex_unlock(&c->lock);
	}
}

int herd_scope_cancel(herd_scope *s)
{
	if (!s)
		return -EINVAL;
	herd__mutex_lock(&s->lock);
	cancel_locked(s);
	herd__mutex_unlock(&s->lock);
	return 0;
}

/* Waits (firmly) until s is empty and unwatched, then frees it. */
static void scope_close(herd__worker **wp, herd__task *t, herd_scope *s)
{
	herd__mutex_lock(&s->lock);
	while (s->count > 0 || s->waiters.head) {
		herd__waiter wt = {.task = t};
		herd__waitq_push(&s->waiters, &wt);
		herd__wait(wp, &s->lock, HERD_FOREVER, false);
		herd__mutex_lock(&s->lock);
		herd__waitq_remove(&s->waiters, &wt);
	}
	herd__mutex_unlock(&s->lock);

	herd_scope **o = &t->owned;
	while (*o != s)
		o = &(*o)->owned_next;
	*o = s->owned_next;

	herd_scope *p = s->parent;
	herd__mutex_lock(&p->lock);
	if (s->sib_prev)
		s->sib_prev->sib_next = s->sib_next;
	else
		p->children = s->sib_next;
	if (s->sib_next)
		s->sib_next->sib_prev = s->sib_prev;
	scope_put_locked(p); /* the owner lives in p: p cannot empty here */
	herd__mutex_unlock(&p->lock);
	free(s);
}

int herd_scope_close(herd_scope *s)
{
	herd__worker *w;
	herd__task *t;
	if (!s)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	if (s->owner != t)
		return -EPERM;
	scope_close(&w, t, s);
	return 0;
}

int herd_canceled(void)
{
	herd__worker *w = herd__self();
	return w && w->cur && herd__scope_canceled(w->cur->scope);
}
