/*
 * task.c - spawning and ending tasks, and their memory.
 *
 * A task object is 192 bytes and holds the copied argument inline when it
 * fits (HERD__TASK_INLINE bytes); a larger argument gets an object of its
 * own size from malloc. A spawned task has no stack until it first runs
 * (herd__task_start), so a task that has not run yet costs only its object.
 *
 * Objects are cached per worker (up to 256, no lock); beyond that, batches
 * of 128 go to a depot under task_depot_lock (a leaf). A task allocated on
 * one worker is usually freed on another: the depot balances them.
 *
 * Invariant: herd_go copies the argument before it returns, so nothing the
 * caller does afterwards can change what the task sees.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#if HERD_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if HERD_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define TASK_CACHE_MAX 256u
#define TASK_CACHE_BATCH 128u

static herd__task *task_refill(herd__worker *w)
{
	herd__rt *rt = w->rt;
	herd__mutex_lock(&rt->task_depot_lock);
	while (rt->task_depot && w->task_cache_n < TASK_CACHE_BATCH) {
		herd__task *t = rt->task_depot;
		rt->task_depot = t->next;
		rt->task_depot_n--;
		t->next = w->task_cache;
		w->task_cache = t;
		w->task_cache_n++;
	}
	herd__mutex_unlock(&rt->task_depot_lock);
	return w->task_cache;
}

herd__task *herd__task_alloc(herd__worker *w, size_t argsize)
{
	herd__task *t;
	uint8_t flags = 0;
	if (argsize > HERD__TASK_INLINE) {
		t = malloc(offsetof(herd__task, argbuf) + argsize);
		flags = HERD__TASK_BIG_ARG;
	} else if (w && (w->task_cache || task_refill(w))) {
		t = w->task_cache;
		w->task_cache = t->next;
		w->task_cache_n--;
	} else {
		t = malloc(HERD__TASK_SIZE);
	}
	if (!t)
		return NULL;
	memset(t, 0, offsetof(herd__task, argbuf));
	t->flags = flags;
	return t;
}

static void task_spill(herd__worker *w, unsigned n)
{
	herd__rt *rt = w->rt;
	herd__mutex_lock(&rt->task_depot_lock);
	while (n-- && w->task_cache) {
		herd__task *t = w->task_cache;
		w->task_cache = t->next;
		w->task_cache_n--;
		t->next = rt->task_depot;
		rt->task_depot = t;
		rt->task_depot_n++;
	}
	herd__mutex_unlock(&rt->task_depot_lock);
}

void herd__task_free(herd__worker *w, herd__task *t)
{
	if (!w || (t->flags & HERD__TASK_BIG_ARG)) {
		free(t);
		return;
	}
	t->next = w->task_cache;
	w->task_cache = t;
	if (++w->task_cache_n > TASK_CACHE_MAX)
		task_spill(w, TASK_CACHE_BATCH);
}

void herd__task_cache_drain(herd__worker *w)
{
	task_spill(w, UINT_MAX);
}

void herd__task_depot_free(herd__rt *rt)
{
	herd__task *t = rt->task_depot;
	while (t) {
		herd__task *next = t->next;
		free(t);
		t = next;
	}
	rt->task_depot = NULL;
	rt->task_depot_n = 0;
}

int herd__task_start(herd__worker *w, herd__task *t)
{
	bool guarded;
	char *lo = herd__stack_get(w, &guarded);
	if (!lo)
		return -ENOMEM;
	if (!guarded)
		t->flags |= HERD__TASK_UNGUARDED;
	herd__ctx_init(&t->ctx, lo, w->rt->stacks.size, w->rt);
#if HERD_TSAN
	t->ctx.tsan_fiber = __tsan_create_fiber(0);
#endif
	return 0;
}

void herd__task_main(herd__worker *w)
{
#if HERD_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	herd__finish_switch(w);
	herd__task *t = w->cur;
	t->fn(t->arg);
	w = herd__self();
	herd__scope_detach(&w, t);
	herd__exit_switch(w);
}

static int go(const char *site, void *ret, herd_scope *scope, herd_fn fn,
	      const void *arg, size_t size)
{
	herd__worker *w = herd__self();
	herd__task *cur = w ? w->cur : NULL;
	herd__rt *rt = w ? w->rt : atomic_load_explicit(&herd__runtime, mo_acquire);
	if (!fn || (size && !arg) || (!scope && !cur))
		return -EINVAL;
	if (!rt)
		return -EPERM;
	if (!scope)
		scope = cur->scope;
	herd__task *t = herd__task_alloc(w, size);
	if (!t)
		return -ENOMEM;
	t->fn = fn;
	t->arg = size ? memcpy(t->argbuf, arg, size) : (void *)(uintptr_t)arg;
	t->id = w ? herd__next_id(w)
		  : atomic_fetch_add_explicit(&rt->id_block, 1, mo_relaxed);
	int rc = herd__scope_attach(scope, t);
	if (rc) {
		herd__task_free(w, t);
		return rc;
	}
	if (herd__unlikely(rt->debug) && cur)
		herd__debug_check_spawn(w, site, ret, arg, size);
	if (w) {
		herd__stat_add(&w->st_live, 1);
		herd__stat_add(&w->st_spawned, 1);
	} else {
		atomic_fetch_add_explicit(&rt->st_foreign_spawned, 1, mo_relaxed);
	}
	herd__ready(w, t);
	return 0;
}

int (herd_go)(herd_scope *scope, herd_fn fn, const void *arg, size_t size)
{
	return go(NULL, __builtin_return_address(0), scope, fn, arg, size);
}

int herd_go_at(const char *site, herd_scope *scope, herd_fn fn,
	       const void *arg, size_t size)
{
	return go(site, __builtin_return_address(0), scope, fn, arg, size);
}

uint64_t herd_task_id(void)
{
	herd__worker *w = herd__self();
	return w && w->cur ? w->cur->id : 0;
}
