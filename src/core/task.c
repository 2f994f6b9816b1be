/*
 * task.c - spawning and ending tasks, and their memory.
 *
 * A task object is 192 bytes and holds the copied argument inline when it
 * fits (HERD__TASK_INLINE bytes); a larger argument gets an object of its
 * own size from malloc. A spawned task has no stack until it first runs
 * (herd__task_start), so a task that has not run yet costs only its object.
 *
 * Objects are cached per worker and moved between workers in magazines
 * (cache.c): a task allocated on one worker is usually freed on another.
 *
 * Invariant: herd_go copies the argument before it returns, so nothing the
 * caller does afterwards can change what the task sees.
 *
 * A spawn into a scope that has a limit (scope.c's Limits) takes a slot
 * after attaching the task, and may park for one (herd_go_until's
 * deadline); the task object, made and filled before, waits with it and
 * is freed if the wait fails. A scope without a limit costs the spawn one
 * load of a word on a line that attaching reads anyway, and the task's
 * end one test of its flags: about 2 instructions of some 500 per spawn
 * and end (callgrind, bench-core spawn on one worker). The sched.h
 * include is for the only worker's run queue, inline in the spawn path.
 */
#include "core/core.h"
#include "core/sched.h"

#include <stdlib.h>
#include <string.h>

#if HERD_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if HERD_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#if !HERD_ASAN && !HERD_TSAN && defined(__x86_64__)
_Static_assert(HERD__TASK_SPAWN_BYTES == HERD__CACHELINE,
	       "the spawner's part of a task is one cache line");
_Static_assert(HERD__TASK_SIZE == 192, "a task object is 192 bytes");
#endif

/*
 * The largest argument herd_go copies. A task object with a larger one
 * would exceed PTRDIFF_MAX, which no object can (malloc refuses it); and
 * for the largest sizes, adding the header to the size would wrap around
 * to a small allocation that the copy then overruns.
 */
#define TASK_ARG_MAX ((size_t)PTRDIFF_MAX - offsetof(herd__task, argbuf))

/* argsize is at most TASK_ARG_MAX (go checks it). */
herd__task *herd__task_alloc(herd__worker *w, size_t argsize)
{
	herd__task *t = NULL;
	uint8_t flags = 0;
	if (argsize > HERD__TASK_INLINE) {
		t = malloc(offsetof(herd__task, argbuf) + argsize);
		flags = HERD__TASK_BIG_ARG;
	} else {
		if (w)
			t = herd__cache_get(&w->task_cache, &w->rt->task_depot);
		if (!t)
			t = malloc(HERD__TASK_SIZE);
	}
	if (!t)
		return NULL;
	/* Only the spawner's line: herd__task_start clears the next one on the
	 * worker that runs the task. */
	memset(t, 0, HERD__TASK_SPAWN_BYTES);
	t->flags = flags;
	return t;
}

void herd__task_cache_drain(herd__worker *w)
{
	void *t;
	while ((t = herd__cache_drain(&w->task_cache, &w->rt->task_depot)))
		free(t);
}

static void task_release(void *t, void *arg)
{
	(void)arg;
	free(t);
}

void herd__task_depot_free(herd__rt *rt)
{
	herd__depot_fini(&rt->task_depot, task_release, NULL);
}

int herd__task_start(herd__worker *w, herd__task *t)
{
	bool guarded;
	char *lo = herd__stack_get(w, &guarded);
	if (!lo)
		return -ENOMEM;
	herd__task_begin(w, t, lo, guarded);
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
	herd__trace_run(w, w->cur, HERD__TR_RUN_FIRST);
	/* A task that ends hands its stack to the next one if that one has
	 * never run (spawned tasks usually have not): then the next task runs
	 * here, without a context switch. */
	for (herd__task *t = w->cur;; t = herd__exit_next(w)) {
		t->fn(t->arg);
		w = herd__self();
		herd__scope_detach(&w, t);
	}
}

/* Inlined into each entry point: as a call, its seven arguments would
 * not all fit in registers. */
__attribute__((always_inline)) static inline int
go(const char *site, void *ret, herd_scope *scope, herd_fn fn,
   const void *arg, size_t size, int64_t deadline)
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
	/* A size that no object, the caller's argument included, can have:
	 * refused before the header is added to it. */
	if (size > TASK_ARG_MAX)
		return -ENOMEM;
	herd__task *t = herd__task_alloc(w, size);
	if (!t)
		return -ENOMEM;
	t->fn = fn;
	if (site) {
		t->site = site;
	} else { /* called as a function: the dump names the caller's code */
		t->site = ret;
		t->flags |= HERD__TASK_SITE_PC;
	}
	if (size == 0)
		t->arg = (void *)(uintptr_t)arg;
	else
		t->arg = memcpy(size <= sizeof t->smallarg ? t->smallarg : t->argbuf,
				arg, size);
	int rc = herd__scope_attach(scope, t);
	if (!rc && herd__unlikely(herd__scope_slotted(scope))) {
		herd__worker *at = w; /* not &w: w stays in a register */
		rc = herd__scope_slot_take(&at, scope, t, deadline); /* may park */
		w = at;
	}
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
	if (herd__unlikely(rt->trace))
		herd__trace_go(rt, w, t);
	/* The only worker's runnext and ring take no call: a spawn loop would
	 * otherwise spend a third of its time in herd__ready's frame. */
	if (w && w->alone)
		herd__runq_put_next(w, t);
	else
		herd__ready_any(w, t);
	return 0;
}

int (herd_go)(herd_scope *scope, herd_fn fn, const void *arg, size_t size)
{
	return go(NULL, __builtin_return_address(0), scope, fn, arg, size,
		  HERD_FOREVER);
}

int (herd_go_until)(herd_scope *scope, herd_fn fn, const void *arg,
		    size_t size, int64_t deadline)
{
	return go(NULL, __builtin_return_address(0), scope, fn, arg, size,
		  deadline);
}

int herd_go_at(const char *site, herd_scope *scope, herd_fn fn,
	       const void *arg, size_t size, int64_t deadline)
{
	return go(site, __builtin_return_address(0), scope, fn, arg, size,
		  deadline);
}

uint64_t herd_task_id(void)
{
	herd__worker *w = herd__self();
	return w && w->cur ? w->cur->id : 0;
}
