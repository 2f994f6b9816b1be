/*
 * sched.c - the M:N scheduler's heart: what a worker runs next, switching
 * between tasks, parking and readying them, and the worker's loop. The run
 * queues are in runq.c, idle workers and the sleeper in idle.c.
 *
 * Shape (after Go's runtime/proc.go). One worker thread per CPU; each has a
 * local run queue (a 256-slot ring) and a `runnext` slot that holds the task
 * readied last, which runs next: a task that wakes another and then blocks
 * hands over its time slice (the ping-pong case). A mutex-protected global
 * queue takes the overflow of full rings (as batches: arrays of pointers)
 * and tasks readied by threads that are not workers. A worker that runs
 * dry looks at the global queue, then steals half of another worker's
 * ring, then watches the queues for up to 20 us (work often comes right
 * back, and waking a sleeping worker costs its waker a system call), then
 * parks on a futex.
 *
 * A task that ends runs the next task of its worker in place when that task
 * has never run (task.c, herd__exit_next): it inherits the stack, and no
 * context is saved or restored.
 *
 * Switching. A task switches directly to the next runnable task when its
 * worker has one; otherwise to its worker's scheduler loop, which runs on
 * the thread's own stack ("g0"). Every context, on resuming, first calls
 * herd__finish_switch, which releases the context it replaced: it clears the
 * old task's on_cpu flag (release), or frees the task if it had ended.
 *
 * Readying a task that is still switching away. A task that parks makes
 * itself findable (on a wait queue, with a timer) before it switches away,
 * so a waker may ready it while its registers are still being saved. The
 * worker that picks it up waits until on_cpu is 0 (acquire), which the old
 * worker stores only after the switch (release): the saved context is then
 * visible. The window can be long (the parking task may still take locks,
 * fire timers, allocate a stack), and in it the parking task may ready the
 * very task whose worker is waiting for it: two workers each switching
 * away from the task the other wants. So only a worker's scheduler loop,
 * which holds no task, ever waits on on_cpu; a task that finds its next
 * task still on a CPU hands it to the loop (worker.handoff) instead.
 *
 * The only worker of a runtime may be solo (core.h): it registers for
 * membarrier(2) before it runs a task, and counts itself in solo_count,
 * which tells other threads whether they must fence (herd__solo_fence).
 *
 * Locks: stackless_lock (a leaf) protects the tasks waiting for a stack.
 */
#include "core/sched.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#if HERD_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if HERD_TSAN
#include <sanitizer/tsan_interface.h>
#endif

__thread herd__worker *herd__tls_worker __attribute__((tls_model("initial-exec")));
herd__rt *_Atomic herd__runtime;

/* Every so many scheduling rounds, a busy worker fires due timers, polls
 * (on its own stack, if nobody has lately), and looks at the global queue
 * first (61, as Go: prime, so that it does not beat with the others). */
#define TIMERS_EVERY 16u
#define POLL_EVERY 64u
#define GLOBAL_FIRST_EVERY 61u

/*
 * noinline and an opaque asm: the compiler may otherwise keep the address
 * of the thread-local variable in a register across a context switch, after
 * which the task may be running on another thread.
 */
__attribute__((noinline)) herd__worker *herd__self(void)
{
	herd__worker *w = herd__tls_worker;
	__asm__ volatile("" : "+r"(w));
	return w;
}

void herd__self_set(herd__worker *w)
{
	herd__tls_worker = w;
}

uint64_t herd__next_id_block(herd__worker *w)
{
	w->id_next = atomic_fetch_add_explicit(&w->rt->id_block, 1024, mo_relaxed);
	w->id_end = w->id_next + 1024;
	return w->id_next++;
}

bool herd__timers_poll(herd__worker *w)
{
	int64_t next = atomic_load_explicit(&w->rt->timer_next, mo_relaxed);
	if (herd__likely(next == INT64_MAX))
		return false;
	int64_t now = herd_now();
	return next <= now && herd__timers_run(w, now) > 0;
}

/* Runnable work that needs no stealing. Every 61st round looks at the
 * global queue first (as Go does), so that it cannot starve. Inline in the
 * switches of this file (a park's or a yield's: calls and their register
 * saves are a good part of a switch's cost). */
static inline __attribute__((always_inline)) herd__task *pick_local(herd__worker *w)
{
	herd__task *t;
	uint32_t tick = ++w->tick;
	atomic_store_explicit(&w->progress, tick, mo_relaxed); /* for the monitor */
	if (tick % TIMERS_EVERY == 0)
		herd__timers_poll(w);
	/* Only on the scheduler's own stack: pick_local also runs on the
	 * stack of a task that parks or yields, and the poller's callbacks
	 * (a child's exit) need more room than a task may have left. */
	if (tick % POLL_EVERY == 0 && !w->cur && w->rt->netpoll->due(w->rt))
		w->rt->netpoll->run(w->rt, 0);
	if (tick % GLOBAL_FIRST_EVERY == 0 && (t = herd__global_get(w)))
		return t;
	if ((t = herd__runq_get(w)))
		return t;
	return herd__global_get(w);
}

herd__task *herd__pick_local(herd__worker *w)
{
	return pick_local(w);
}

/* ------------------------------------------------------------------ */
/* Switching                                                          */
/* ------------------------------------------------------------------ */

static inline herd__worker *ctx_switch(herd__worker *w, herd__ctx *from,
				       herd__ctx *to, bool dying)
{
	herd__rank_none_held(); /* no herd lock across a switch */
#if HERD_ASAN
	__sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake,
				       to->stack_lo, to->stack_size);
#endif
#if HERD_TSAN
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
	(void)dying;
	w = herd__ctx_switch(&from->sp, to->sp, w);
#if HERD_ASAN
	__sanitizer_finish_switch_fiber(from->asan_fake, NULL, NULL);
#endif
	return w;
}

/* Waits until t's last worker has saved its context, then owns it. */
static inline void claim(herd__task *t)
{
	for (unsigned spins = 0; atomic_load_explicit(&t->on_cpu, mo_acquire); spins++) {
		if (spins < 1000)
			herd__cpu_relax();
		else
			sched_yield(); /* that worker's thread was preempted */
	}
	atomic_store_explicit(&t->on_cpu, 1, mo_relaxed);
}

/* Keeps a task that could not get a stack until one is freed. */
static void defer_stackless(herd__rt *rt, herd__task *t)
{
	static _Atomic int warned;
	herd__mutex_lock(&rt->stackless_lock);
	t->next = rt->stackless;
	rt->stackless = t;
	atomic_fetch_add_explicit(&rt->nstackless, 1, mo_relaxed);
	herd__mutex_unlock(&rt->stackless_lock);
	if (!atomic_exchange(&warned, 1))
		fprintf(stderr, "herd: out of memory for task stacks; new tasks "
				"wait until running ones end\n");
}

static void retry_stackless(herd__rt *rt)
{
	herd__mutex_lock(&rt->stackless_lock);
	herd__task *t = rt->stackless;
	if (t) {
		rt->stackless = t->next;
		atomic_fetch_sub_explicit(&rt->nstackless, 1, mo_relaxed);
	}
	herd__mutex_unlock(&rt->stackless_lock);
	if (t) {
		herd__global_put_list(rt, t, t, 1);
		herd__wakep(rt);
	}
}

/* From the supervisor, at each of its rounds: a task waiting for a stack
 * also tries again when no task ends (the first task, say, or one whose
 * spawner waits for it), or it would wait for ever. */
void herd__sched_retry_stackless(herd__rt *rt)
{
	if (atomic_load_explicit(&rt->nstackless, mo_relaxed))
		retry_stackless(rt);
}

/* A task that never ran gets its stack now; false if none could be had. */
static inline bool start_if_new(herd__worker *w, herd__task *t)
{
	if (herd__likely(t->ctx.sp != NULL))
		return true;
	if (herd__task_start(w, t) == 0)
		return true;
	defer_stackless(w->rt, t);
	return false;
}

/* herd__finish_switch's usual case, inline in switch_away: the previous
 * task parked or yielded. False if there is none, or it has ended. */
static inline bool finish_switch_live(herd__worker *w)
{
	herd__task *p = w->prev;
	if (!p || w->prev_dead)
		return false;
	HERD__ASSERT(p != w->cur);
	HERD__ASSERT(atomic_load_explicit(&p->on_cpu, mo_relaxed) == 1);
	w->prev = NULL;
	atomic_store_explicit(&p->on_cpu, 0, mo_release);
	return true;
}

void herd__finish_switch(herd__worker *w)
{
	herd__task *p = w->prev;
	if (!p || finish_switch_live(w))
		return;
	w->prev = NULL;
	HERD__ASSERT(p != w->cur);
	HERD__ASSERT(atomic_load_explicit(&p->on_cpu, mo_relaxed) == 1);
#if HERD_TSAN
	__tsan_destroy_fiber(p->ctx.tsan_fiber);
#endif
	herd__stack_put(w, p->stack);
	herd__task_free(w, p);
	if (herd__unlikely(atomic_load_explicit(&w->rt->nstackless, mo_relaxed)))
		retry_stackless(w->rt);
}

/* Switches from the running task to next (or, if NULL, to g0). Inline
 * for the same reason as pick_local. */
static inline __attribute__((always_inline)) herd__worker *
switch_away(herd__worker *w, herd__task *from, herd__task *next, bool dying)
{
	/* A parking task can find itself readied already (its own timer
	 * fired while it looked for work, or a thread queued it globally):
	 * then it simply goes on running. */
	if (herd__unlikely(next == from))
		return w;
	if (next && !start_if_new(w, next))
		next = NULL;
	/* Never wait for next's old worker while `from` is still ours: that
	 * worker may be waiting for `from` in turn (each task readied the
	 * other as it parked). The scheduler loop holds no task: it waits. */
	if (next && atomic_load_explicit(&next->on_cpu, mo_acquire)) {
		w->handoff = next;
		next = NULL;
	}
	w->prev = from;
	w->prev_dead = dying;
	herd__ctx *to = &w->g0;
	w->cur = next;
	if (next) {
		claim(next);
		to = &next->ctx;
	}
	w = ctx_switch(w, &from->ctx, to, dying);
	if (!herd__likely(finish_switch_live(w)))
		herd__finish_switch(w);
	return w;
}

/* An unguarded stack's canary is checked wherever a task switches away
 * or yields: parking, yielding, ending. */
static inline void check_canary(const herd__task *t)
{
	if (herd__unlikely(t->flags & HERD__TASK_UNGUARDED))
		herd__stack_check(t);
}

herd__worker *herd__park(herd__worker *w)
{
	herd__task *t = w->cur;
	check_canary(t);
	herd__stat_add(&w->st_parked, 1);
	herd__trace_stop(w, t, atomic_load_explicit(&t->why, mo_relaxed));
	w = switch_away(w, t, pick_local(w), false);
	herd__trace_run(w, t, HERD__TR_RUN_WOKEN);
	herd__stat_add(&w->st_parked, -1);
	return w;
}

herd__task *herd__exit_next(herd__worker *w)
{
	herd__task *t = w->cur;
	herd__stat_add(&w->st_live, -1);
	check_canary(t);
	herd__task *next = pick_local(w);
	if (!next || next->ctx.sp) {
		herd__trace_stop(w, t, HERD__TR_STOP_END);
		switch_away(w, t, next, true); /* does not return */
	}
	/* The next task has never run: it inherits this task's stack. */
	herd__task_inherit(w, t, next);
	claim(next);
	w->cur = next;
	herd__trace_run(w, next, HERD__TR_RUN_FIRST | HERD__TR_RUN_ENDS);
	return next;
}

void herd__ready_any(herd__worker *w, herd__task *t)
{
	herd__rt *rt;
	if (w) {
		rt = w->rt;
		herd__runq_put_next(w, t);
		if (w->alone)
			return; /* no other worker to wake */
		if (w->quiet) { /* see poll_local */
			w->quiet_readied++;
			return;
		}
	} else {
		rt = atomic_load_explicit(&herd__runtime, mo_acquire);
		herd__global_put_list(rt, t, t, 1);
	}
	herd__wakep(rt);
}

uint32_t herd__runq_room(herd__worker *w)
{
	uint32_t h = atomic_load_explicit(&w->rq_head, mo_acquire);
	uint32_t tl = atomic_load_explicit(&w->rq_tail, mo_relaxed);
	return HERD__RUNQ - (tl - h);
}

void herd__ready_tail(herd__worker *w, herd__task *t)
{
	if (!w) {
		herd__ready(w, t);
		return;
	}
	herd__runq_put(w, t);
	herd__wakep(w->rt);
}

int herd__current(herd__worker **wp, herd__task **tp)
{
	herd__worker *w = herd__self();
	if (!w || !w->cur)
		return -EPERM;
	*wp = w;
	*tp = w->cur;
	return 0;
}

int herd_yield(void)
{
	herd__worker *w;
	herd__task *t;
	if (herd__current(&w, &t))
		return -EPERM;
	check_canary(t); /* even when there is nothing to switch to */
	herd__task *next = pick_local(w);
	if (next) {
		herd__runq_put(w, t);
		herd__trace_stop(w, t, HERD__TR_STOP_YIELD);
		w = switch_away(w, t, next, false);
		herd__trace_run(w, t, 0);
	}
	return herd__scope_canceled(t->scope) ? HERD_ECANCELED : 0;
}

/* Runs t from the scheduler loop until it switches back to g0. */
static void run(herd__worker *w, herd__task *t)
{
	if (!start_if_new(w, t))
		return;
	claim(t);
	w->cur = t;
	w = ctx_switch(w, &w->g0, &t->ctx, false);
	herd__finish_switch(w);
}

/* ------------------------------------------------------------------ */
/* Solo workers (see core.h)                                          */
/* ------------------------------------------------------------------ */

/*
 * The solo workers running. A worker raises it, then fences, and only then
 * takes a solo lock; a thread that has set an object's `shared` flag then
 * reads it (seq_cst), and if it reads 0 it needs no fence: the worker's
 * fence came after that store, so the worker sees the flag.
 */
static _Atomic unsigned solo_count;

static void solo_begin(herd__worker *w)
{
	if (!w->alone || herd__os_membarrier(HERD__OS_MB_REGISTER_PRIVATE) != 0)
		return;
	atomic_fetch_add_explicit(&solo_count, 1, mo_seq_cst);
	if (herd__os_membarrier(HERD__OS_MB_PRIVATE) == 0)
		w->solo = true;
	else
		atomic_fetch_sub_explicit(&solo_count, 1, mo_seq_cst);
}

static void solo_end(herd__worker *w)
{
	if (!w->solo)
		return;
	w->solo = false;
	atomic_fetch_sub_explicit(&solo_count, 1, mo_seq_cst);
}

bool herd__solo_live(void)
{
	return atomic_load_explicit(&solo_count, mo_seq_cst) != 0;
}

void herd__solo_fence(void)
{
	/* Registered (a solo worker did it before it counted itself), the
	 * command fails for want of kernel memory (try again), or in a child
	 * forked while a solo worker ran, which inherited the count but not
	 * the registration (register, then try again). */
	int rc;
	while ((rc = herd__os_membarrier(HERD__OS_MB_PRIVATE)) != 0) {
		if (rc == -EPERM)
			rc = herd__os_membarrier(HERD__OS_MB_REGISTER_PRIVATE);
		if (rc == -ENOSYS || rc == -EINVAL)
			herd__assert_fail("membarrier(PRIVATE_EXPEDITED)", __FILE__, __LINE__);
		sched_yield();
	}
}

void herd__worker_loop(herd__worker *w)
{
	solo_begin(w);
	for (;;) {
		herd__task *t = w->handoff;
		w->handoff = NULL;
		if (!t && !(t = herd__find_runnable(w)))
			break;
		herd__trace_unfresh(w);
		run(w, t);
	}
	solo_end(w);
}

