/*
 * sched.c - the M:N scheduler: run queues, work stealing, switching, and
 * parking idle workers.
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
 * Run queue ordering. The ring has head and tail counters. Only the owner
 * writes slots and tail: slot (relaxed), then tail (release). Takers, the
 * owner included, read head (acquire) and tail (acquire for thieves), read
 * the slots, then claim them with a CAS on head (acq_rel); a failed CAS
 * means another taker won, and the read slots are discarded. A slot is
 * rewritten only after head has moved past it, so a slot read by a thief
 * whose CAS then succeeds was not overwritten. runnext is exchanged with
 * seq_cst (the owner) or CASed (thieves, last round only).
 *
 * Parking workers without losing wakeups (the Dekker pattern; every access
 * named here is seq_cst, so they are totally ordered):
 *   - Making work available (herd__ready, spawning, timers): publish the
 *     task (runnext exchange, global queue size, or timer_next), then read
 *     nidle and nspinning; if some worker is idle and none is spinning,
 *     wake one (wakep), which then spins.
 *   - Going idle: stop spinning (nspinning--), join the idle list
 *     (nidle++), then look at every queue, timer_next and shutdown once
 *     more; sleep only if all are empty.
 * Either the publisher sees the idle worker, or the idle worker sees the
 * work. A spinning worker that finds work stops spinning, and if it was the
 * last spinner it wakes another (there may be more work): so bursts of work
 * spread to all workers, one wakeup at a time.
 *
 * Timers (timer.c) are fired by whichever worker notices them due: a busy
 * worker every 16 scheduling rounds, an idle one before it sleeps. One idle
 * worker, the sleeper, sleeps in the poller (poll.c) only until the
 * earliest deadline; the others sleep on their futex. A timer that becomes
 * the earliest sets the poller's alarm if the sleeper is in epoll_wait (no
 * wakeup until it is due; the sleeper reads timer_next again when it
 * rings), else wakes the sleeper to sleep again on the new deadline. With
 * no sleeper, a worker that adds a timer fires it itself or sleeps on it
 * when it runs dry; another thread wakes an idle worker. The sleeper
 * claims the role (CAS on timer_sleeper) and then reads timer_next;
 * timer_add writes timer_next and then reads timer_sleeper: one of them
 * sees the other. The sleeper that leaves to run tasks hands the role to
 * nobody. Whoever leaves the timers unwatched (a leaving sleeper, a kick
 * that woke nobody) sets the monitor's alarm TIMER_LATE_NS after the
 * earliest, so that if a task runs so long that it is late, the monitor
 * wakes an idle worker for it.
 *
 * The sleeper waits in epoll_wait, not on its futex: it sets in_poll and
 * then reads its wake token; a waker stores the token and then
 * reads in_poll, ringing the poller's doorbell if it is set (both seq_cst,
 * so one sees the other). A new descriptor wait (herd__poll_watch) raises
 * poll.waiters and then reads timer_sleeper and in_poll, against the
 * sleeper's claim of the role: a sleeper in epoll_wait sees the new
 * registration by itself.
 *
 * Readying quietly. Tasks that a worker's own poll readies go to its own
 * queue without a wakep each (w->quiet, owner-only): the worker runs the
 * first itself, and wakes another only if there is a second.
 *
 * Locks: gq_lock protects the global queue; idle_lock the idle list and
 * each worker's `idle` flag; stackless_lock the tasks waiting for a stack.
 * All three are leaves.
 */
#include "core/core.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#if HERD_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if HERD_TSAN
#include <sanitizer/tsan_interface.h>
#endif

__thread herd__worker *herd__tls_worker __attribute__((tls_model("initial-exec")));
herd__rt *_Atomic herd__runtime;

/* A run of at most this many tasks taken from runnext before the ring gets
 * a turn, so two tasks waking each other cannot starve the rest. */
#define NEXT_STREAK_MAX 64u
#define STEAL_ROUNDS 4
/* How long a spinning worker watches the queues before it sleeps. */
#define SPIN_NS (20 * HERD_USEC)
/* How late the earliest timer may be, with nobody sleeping on it, before
 * the monitor wakes an idle worker for it. */
#define TIMER_LATE_NS (1 * HERD_MSEC)
/* How long a worker's only queued task may sit there before another
 * worker steals it (see runnext_stays). 20 us rather than Go's 3: with
 * two producers and two consumers on one channel, 5 us let the tasks
 * spread over both cores half the time, and the channel's lock then
 * crossed cores at every message (chan-2x2: 34-38 ns/msg against 19-26);
 * a tree of short tasks (skynet) loses about 5%. */
#define RUNNEXT_GRACE_NS (20 * HERD_USEC)

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

uint64_t herd__next_id(herd__worker *w)
{
	if (herd__unlikely(w->id_next == w->id_end)) {
		w->id_next = atomic_fetch_add_explicit(&w->rt->id_block, 1024,
						       mo_relaxed);
		w->id_end = w->id_next + 1024;
	}
	return w->id_next++;
}

/* ------------------------------------------------------------------ */
/* The global queue                                                   */
/* ------------------------------------------------------------------ */

/* Half a ring moved to the global queue in one piece: taking it back is a
 * copy of pointers, not a walk through 128 task objects in other caches. */
struct herd__batch {
	struct herd__batch *next;
	uint32_t head, n;
	herd__task *t[HERD__RUNQ / 2 + 1];
};

static void gq_size_add(herd__rt *rt, int32_t n)
{
	uint32_t size = atomic_load_explicit(&rt->gq_size, mo_relaxed);
	atomic_store_explicit(&rt->gq_size, size + (uint32_t)n, mo_seq_cst);
}

static void global_put_list(herd__rt *rt, herd__task *first, herd__task *last,
			    uint32_t n)
{
	last->next = NULL;
	herd__mutex_lock(&rt->gq_lock);
	if (rt->gq_tail)
		rt->gq_tail->next = first;
	else
		rt->gq_head = first;
	rt->gq_tail = last;
	gq_size_add(rt, (int32_t)n);
	herd__mutex_unlock(&rt->gq_lock);
}

/* Batches are recycled under gq_lock: malloc'ing one on a worker and
 * freeing it on another would contend on malloc's arena locks. */
static struct herd__batch *batch_alloc(herd__rt *rt)
{
	herd__mutex_lock(&rt->gq_lock);
	struct herd__batch *b = rt->gq_free_batches;
	if (b)
		rt->gq_free_batches = b->next;
	herd__mutex_unlock(&rt->gq_lock);
	return b ? b : malloc(sizeof *b);
}

static void batch_recycle_locked(herd__rt *rt, struct herd__batch *b)
{
	b->next = rt->gq_free_batches;
	rt->gq_free_batches = b;
}

void herd__batches_free(herd__rt *rt)
{
	struct herd__batch *b;
	while ((b = rt->gq_free_batches)) {
		rt->gq_free_batches = b->next;
		free(b);
	}
}

static void global_put_batch(herd__rt *rt, struct herd__batch *b)
{
	b->next = NULL;
	herd__mutex_lock(&rt->gq_lock);
	if (rt->gq_batches_tail)
		rt->gq_batches_tail->next = b;
	else
		rt->gq_batches = b;
	rt->gq_batches_tail = b;
	gq_size_add(rt, (int32_t)b->n);
	herd__mutex_unlock(&rt->gq_lock);
}

/* Takes up to max tasks into out[], batches first; gq_lock held. */
static uint32_t global_take_locked(herd__rt *rt, herd__task **out, uint32_t max)
{
	uint32_t n = 0;
	struct herd__batch *b = rt->gq_batches;
	if (b) {
		for (; n < max && b->head < b->n; n++)
			out[n] = b->t[b->head++];
		if (b->head == b->n) {
			rt->gq_batches = b->next;
			if (!rt->gq_batches)
				rt->gq_batches_tail = NULL;
			batch_recycle_locked(rt, b);
		}
		return n;
	}
	uint32_t fair = atomic_load_explicit(&rt->gq_size, mo_relaxed) / rt->nworkers + 1;
	for (; n < max && n < fair && rt->gq_head; n++) {
		out[n] = rt->gq_head;
		rt->gq_head = rt->gq_head->next;
	}
	if (!rt->gq_head)
		rt->gq_tail = NULL;
	return n;
}

static void runq_put(herd__worker *w, herd__task *t);

/* Takes work from the global queue: one task to run, the rest into the
 * local ring (which has room for them: only its owner adds to it). */
static herd__task *global_get(herd__worker *w)
{
	herd__rt *rt = w->rt;
	if (atomic_load_explicit(&rt->gq_size, mo_relaxed) == 0)
		return NULL;
	uint32_t used = atomic_load_explicit(&w->rq_tail, mo_relaxed) -
			atomic_load_explicit(&w->rq_head, mo_acquire);
	herd__task *buf[HERD__RUNQ / 2 + 1];
	uint32_t max = (HERD__RUNQ - used) / 2 + 1;
	herd__mutex_lock(&rt->gq_lock);
	uint32_t n = global_take_locked(rt, buf, max);
	if (n)
		gq_size_add(rt, -(int32_t)n);
	herd__mutex_unlock(&rt->gq_lock);
	for (uint32_t i = 1; i < n; i++)
		runq_put(w, buf[i]);
	return n ? buf[0] : NULL;
}

/* ------------------------------------------------------------------ */
/* Local run queues                                                   */
/* ------------------------------------------------------------------ */

/* The ring is full: moves its older half and t to the global queue.
 * False if a thief moved head meanwhile (the caller retries). */
static bool runq_put_slow(herd__worker *w, herd__task *t, uint32_t h)
{
	const uint32_t n = HERD__RUNQ / 2;
	struct herd__batch *b = batch_alloc(w->rt);
	herd__task *stack_batch[HERD__RUNQ / 2 + 1];
	herd__task **batch = b ? b->t : stack_batch;
	for (uint32_t i = 0; i < n; i++)
		batch[i] = atomic_load_explicit(&w->rq[(h + i) % HERD__RUNQ],
						mo_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&w->rq_head, &h, h + n,
						     mo_acq_rel, mo_relaxed)) {
		if (b) {
			herd__mutex_lock(&w->rt->gq_lock);
			batch_recycle_locked(w->rt, b);
			herd__mutex_unlock(&w->rt->gq_lock);
		}
		return false;
	}
	batch[n] = t;
	if (b) {
		b->head = 0;
		b->n = n + 1;
		global_put_batch(w->rt, b);
		return true;
	}
	/* Out of memory for a batch: link the tasks one by one. */
	for (uint32_t i = 0; i < n; i++)
		batch[i]->next = batch[i + 1];
	global_put_list(w->rt, batch[0], t, n + 1);
	return true;
}

static void runq_put(herd__worker *w, herd__task *t)
{
	for (;;) {
		uint32_t h = atomic_load_explicit(&w->rq_head, mo_acquire);
		uint32_t tl = atomic_load_explicit(&w->rq_tail, mo_relaxed);
		if (herd__likely(tl - h < HERD__RUNQ)) {
			atomic_store_explicit(&w->rq[tl % HERD__RUNQ], t, mo_relaxed);
			atomic_store_explicit(&w->rq_tail, tl + 1, mo_release);
			return;
		}
		if (runq_put_slow(w, t, h))
			return;
	}
}

/* Puts t in runnext; the task it displaces goes to the back of the ring. */
static void runq_put_next(herd__worker *w, herd__task *t)
{
	herd__task *old = atomic_exchange_explicit(&w->runnext, t, mo_seq_cst);
	if (old)
		runq_put(w, old);
}

/* The owner takes a task: runnext first (within a streak), then the ring. */
static herd__task *runq_get(herd__worker *w)
{
	herd__task *t = atomic_load_explicit(&w->runnext, mo_relaxed);
	if (t && w->next_streak < NEXT_STREAK_MAX &&
	    atomic_compare_exchange_strong_explicit(&w->runnext, &t, NULL,
						    mo_acquire, mo_relaxed)) {
		w->next_streak++;
		return t;
	}
	w->next_streak = 0;
	for (;;) {
		uint32_t h = atomic_load_explicit(&w->rq_head, mo_acquire);
		uint32_t tl = atomic_load_explicit(&w->rq_tail, mo_relaxed);
		if (h == tl)
			break;
		t = atomic_load_explicit(&w->rq[h % HERD__RUNQ], mo_relaxed);
		if (atomic_compare_exchange_weak_explicit(&w->rq_head, &h, h + 1,
							  mo_acq_rel, mo_relaxed))
			return t;
	}
	return atomic_exchange_explicit(&w->runnext, NULL, mo_acquire);
}

/*
 * Whether task t stays in v's runnext for RUNNEXT_GRACE_NS. Thieves wait
 * that long before they take a worker's only queued task (its runnext, or a
 * ring holding one task): that task was usually just readied by the task
 * running there, which is about to block and hand it its worker (a
 * channel's ping-pong, a select's senders), and stealing it would only move
 * the tasks' data to another core. Go sleeps 3 us before it steals a
 * running P's runnext for the same reason.
 */
static bool runnext_stays(herd__worker *v, herd__task *t)
{
	int64_t until = herd_now() + RUNNEXT_GRACE_NS;
	for (unsigned i = 1; atomic_load_explicit(&v->runnext, mo_relaxed) == t; i++) {
		herd__cpu_relax();
		if (i % 32 == 0 && herd_now() >= until)
			return true;
	}
	return false;
}

/* The same for a ring holding one task, at head h. */
static bool ring_stays(herd__worker *v, uint32_t h)
{
	int64_t until = herd_now() + RUNNEXT_GRACE_NS;
	for (unsigned i = 1; atomic_load_explicit(&v->rq_head, mo_relaxed) == h; i++) {
		herd__cpu_relax();
		if (i % 32 == 0 && herd_now() >= until)
			return true;
	}
	return false;
}

/* Takes half of v's ring into buf (or, if take_next, its runnext when the
 * ring is empty). Returns how many. */
static uint32_t runq_grab(herd__worker *v, herd__task **buf, bool take_next)
{
	for (;;) {
		uint32_t h = atomic_load_explicit(&v->rq_head, mo_acquire);
		uint32_t tl = atomic_load_explicit(&v->rq_tail, mo_acquire);
		uint32_t n = tl - h;
		n -= n / 2;
		if (n == 0) {
			herd__task *nx = atomic_load_explicit(&v->runnext, mo_relaxed);
			if (!take_next || !nx || !runnext_stays(v, nx))
				return 0;
			if (atomic_compare_exchange_strong_explicit(
				    &v->runnext, &nx, NULL, mo_acq_rel, mo_relaxed)) {
				buf[0] = nx;
				return 1;
			}
			continue;
		}
		if (n > HERD__RUNQ / 2)
			continue; /* head and tail read at different times */
		if (tl - h == 1 && !ring_stays(v, h))
			return 0;
		for (uint32_t i = 0; i < n; i++)
			buf[i] = atomic_load_explicit(&v->rq[(h + i) % HERD__RUNQ],
						      mo_relaxed);
		if (atomic_compare_exchange_strong_explicit(&v->rq_head, &h, h + n,
							    mo_acq_rel, mo_relaxed))
			return n;
	}
}

static herd__task *runq_steal(herd__worker *w, herd__worker *v, bool take_next)
{
	herd__task *buf[HERD__RUNQ / 2];
	uint32_t n = runq_grab(v, buf, take_next);
	if (n == 0)
		return NULL;
	for (uint32_t i = 0; i + 1 < n; i++)
		runq_put(w, buf[i]);
	return buf[n - 1];
}

static bool timers_poll(herd__worker *w)
{
	int64_t next = atomic_load_explicit(&w->rt->timer_next, mo_relaxed);
	if (herd__likely(next == INT64_MAX))
		return false;
	int64_t now = herd_now();
	return next <= now && herd__timers_run(w, now) > 0;
}

static void wakep(herd__rt *rt);

bool herd__sched_busy(herd__worker *w)
{
	return atomic_load_explicit(&w->rq_tail, mo_relaxed) !=
		       atomic_load_explicit(&w->rq_head, mo_relaxed) ||
	       atomic_load_explicit(&w->runnext, mo_relaxed);
}

void herd__sched_rescue(herd__worker *v)
{
	herd__rt *rt = v->rt;
	herd__task *buf[HERD__RUNQ / 2];
	uint32_t n, moved = 0;
	while ((n = runq_grab(v, buf, true)) > 0) {
		for (uint32_t i = 0; i + 1 < n; i++)
			buf[i]->next = buf[i + 1];
		global_put_list(rt, buf[0], buf[n - 1], n);
		moved += n;
	}
	if (moved)
		wakep(rt);
}

/* Runnable work that needs no stealing. Every 61st round looks at the
 * global queue first (as Go does), so that it cannot starve. */
static herd__task *pick_local(herd__worker *w)
{
	herd__task *t;
	uint32_t tick = ++w->tick;
	atomic_store_explicit(&w->progress, tick, mo_relaxed); /* for the monitor */
	if ((tick & 15) == 0)
		timers_poll(w);
	/* Only on the scheduler's own stack: pick_local also runs on the
	 * stack of a task that parks or yields, and the poller's callbacks
	 * (a child's exit) need more room than a task may have left. */
	if ((tick & 63) == 0 && !w->cur && w->rt->netpoll->due(w->rt))
		w->rt->netpoll->run(w->rt, 0);
	if (tick % 61 == 0 && (t = global_get(w)))
		return t;
	if ((t = runq_get(w)))
		return t;
	return global_get(w);
}

/* ------------------------------------------------------------------ */
/* Idle workers                                                       */
/* ------------------------------------------------------------------ */

static void idle_push(herd__rt *rt, herd__worker *w)
{
	herd__mutex_lock(&rt->idle_lock);
	w->idle_next = rt->idle_list;
	rt->idle_list = w;
	w->idle = true;
	atomic_fetch_add_explicit(&rt->nidle, 1, mo_seq_cst);
	herd__mutex_unlock(&rt->idle_lock);
}

/* Takes w off the idle list; false if a waker already did (and will
 * send it a token). */
static bool idle_remove(herd__rt *rt, herd__worker *w)
{
	bool was = false;
	herd__mutex_lock(&rt->idle_lock);
	if (w->idle) {
		herd__worker **p = &rt->idle_list;
		while (*p != w)
			p = &(*p)->idle_next;
		*p = w->idle_next;
		w->idle = false;
		atomic_fetch_sub_explicit(&rt->nidle, 1, mo_seq_cst);
		was = true;
	}
	herd__mutex_unlock(&rt->idle_lock);
	return was;
}

static herd__worker *idle_pop(herd__rt *rt)
{
	herd__mutex_lock(&rt->idle_lock);
	herd__worker *w = rt->idle_list;
	if (w) {
		rt->idle_list = w->idle_next;
		w->idle = false;
		atomic_fetch_sub_explicit(&rt->nidle, 1, mo_seq_cst);
	}
	herd__mutex_unlock(&rt->idle_lock);
	return w;
}

static void wake_worker(herd__worker *v, uint32_t token)
{
	/* Dekker with worker_sleep: it sets in_poll, then reads the token. */
	atomic_store_explicit(&v->wake_token, token, mo_seq_cst);
	if (atomic_load_explicit(&v->in_poll, mo_seq_cst))
		v->rt->netpoll->interrupt(v->rt);
	else
		herd__futex_wake(&v->wake_token, 1);
}

/* Work was published: wakes an idle worker unless one is already looking. */
static void wakep(herd__rt *rt)
{
	if (atomic_load_explicit(&rt->nidle, mo_seq_cst) == 0)
		return;
	uint32_t zero = 0;
	if (atomic_load_explicit(&rt->nspinning, mo_seq_cst) != 0 ||
	    !atomic_compare_exchange_strong_explicit(&rt->nspinning, &zero, 1,
						     mo_seq_cst, mo_relaxed))
		return;
	herd__worker *v = idle_pop(rt);
	if (!v) {
		atomic_fetch_sub_explicit(&rt->nspinning, 1, mo_seq_cst);
		return;
	}
	wake_worker(v, HERD__WAKE_SPIN);
}

bool herd__wake_for_timers(herd__rt *rt)
{
	int s = atomic_load_explicit(&rt->timer_sleeper, mo_seq_cst);
	herd__worker *v;
	if (s) {
		v = rt->workers[s - 1];
		if (!idle_remove(rt, v))
			return false; /* awake already, and leaving to run tasks */
	} else {
		if (atomic_load_explicit(&rt->nidle, mo_seq_cst) == 0)
			return false; /* a busy worker fires it, or sleeps on it */
		if (!(v = idle_pop(rt)))
			return false;
	}
	wake_worker(v, HERD__WAKE_CHECK);
	return true;
}

void herd__timer_kick(herd__rt *rt, int64_t when)
{
	/* The sleeper in epoll_wait gets its alarm set instead of a wakeup:
	 * a thread woken only to sleep again cost a process start a fifth
	 * of its time when every wait had a deadline. */
	int s = atomic_load_explicit(&rt->timer_sleeper, mo_seq_cst);
	if (s && atomic_load_explicit(&rt->workers[s - 1]->in_poll, mo_seq_cst) &&
	    rt->netpoll->wake_by(rt, when))
		return;
	/* With no sleeper, a worker that adds a timer is busy: it fires the
	 * timer itself every few rounds, or sleeps on it once it runs dry
	 * (one that has become the sleeper since has read timer_next). */
	if ((s || !herd__self()) && herd__wake_for_timers(rt))
		return;
	/* Nobody was woken: a busy worker fires it. If a task runs so long
	 * meanwhile that the timer is late, the monitor gets up for it. */
	herd__monitor_wake_by(rt, when + TIMER_LATE_NS);
}

void herd__timers_unwatched(herd__rt *rt, int64_t now)
{
	if (atomic_load_explicit(&rt->timer_sleeper, mo_seq_cst))
		return; /* it watches them, and hands them on when it leaves */
	int64_t next = atomic_load_explicit(&rt->timer_next, mo_seq_cst);
	if (next == INT64_MAX)
		return;
	if (now - next >= TIMER_LATE_NS)
		herd__wake_for_timers(rt);
	else
		herd__monitor_wake_by(rt, next + TIMER_LATE_NS);
}

static bool work_visible(herd__rt *rt)
{
	if (atomic_load_explicit(&rt->gq_size, mo_seq_cst) ||
	    atomic_load_explicit(&rt->shutdown, mo_seq_cst))
		return true;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		herd__worker *v = rt->workers[i];
		if (atomic_load_explicit(&v->rq_tail, mo_seq_cst) !=
			    atomic_load_explicit(&v->rq_head, mo_seq_cst) ||
		    atomic_load_explicit(&v->runnext, mo_seq_cst))
			return true;
	}
	int64_t next = atomic_load_explicit(&rt->timer_next, mo_seq_cst);
	return next != INT64_MAX && next <= herd_now();
}

static void stop_spinning(herd__worker *w)
{
	w->spinning = false;
	if (atomic_fetch_sub_explicit(&w->rt->nspinning, 1, mo_seq_cst) == 1)
		wakep(w->rt);
}

/* Parks the worker until it is woken or (as the sleeper) the
 * earliest timer is due. */
static int poll_local(herd__worker *w, int64_t deadline);

static void worker_sleep(herd__worker *w)
{
	herd__rt *rt = w->rt;
	if (w->spinning) {
		w->spinning = false;
		atomic_fetch_sub_explicit(&rt->nspinning, 1, mo_seq_cst);
	}
	idle_push(rt, w);
	if (work_visible(rt) && idle_remove(rt, w))
		return;
	int64_t deadline = -1;
	int zero = 0;
	/* The first worker to go idle becomes the sleeper: it sleeps in the
	 * poller, until the earliest timer, even while no descriptor is
	 * waited on, so that a task that starts waiting for one need not wake
	 * anybody (poll.c sees new registrations in epoll_wait). */
	bool sleeper = atomic_compare_exchange_strong_explicit(
		&rt->timer_sleeper, &zero, (int)w->index + 1, mo_seq_cst, mo_relaxed);
	bool poll = sleeper, listed = true;
	while (!atomic_load_explicit(&w->wake_token, mo_acquire)) {
		if (sleeper && listed) {
			/* First, and again after an alarm (a timer added
			 * since may be earlier than the deadline). */
			int64_t next = atomic_load_explicit(&rt->timer_next, mo_seq_cst);
			if (next != INT64_MAX && (deadline < 0 || next < deadline))
				deadline = next;
		}
		if (deadline >= 0 && herd_now() >= deadline) {
			if (idle_remove(rt, w))
				break;
			listed = false; /* a waker took us off the list */
			deadline = -1;
			continue;
		}
		if (!poll) {
			herd__futex_wait(&w->wake_token, 0, deadline);
			continue;
		}
		/* The sleeper waits for descriptors too (poll.c). */
		atomic_store_explicit(&w->in_poll, 1, mo_seq_cst);
		int n = 0;
		if (!atomic_load_explicit(&w->wake_token, mo_seq_cst))
			n = poll_local(w, deadline);
		atomic_store_explicit(&w->in_poll, 0, mo_seq_cst);
		if (n > 0) {
			if (idle_remove(rt, w))
				break;
			listed = false; /* a waker took us off the list */
			deadline = -1;
		}
	}
	if (sleeper) {
		atomic_store_explicit(&rt->timer_sleeper, 0, mo_seq_cst);
		/* The timers are this worker's to fire now, in its loop; if a
		 * task runs so long that one is late, the monitor gets up. */
		int64_t next = atomic_load_explicit(&rt->timer_next, mo_seq_cst);
		if (next != INT64_MAX)
			herd__monitor_wake_by(rt, next + TIMER_LATE_NS);
	}
	uint32_t token = atomic_exchange_explicit(&w->wake_token, 0, mo_acquire);
	if (token == HERD__WAKE_SPIN)
		w->spinning = true; /* the waker counted us in nspinning */
	/* Leaving to run tasks, the sleeper hands its role to nobody (as in
	 * Go): waking another worker to watch after every event cost a
	 * process start a tenth of its time. */
}

/*
 * Polls for a worker that is about to look for work: the tasks the events
 * ready go to its own queue without waking another worker for each, as it
 * runs the first itself; only a second one is worth a wakeup (Go's
 * findrunnable takes the first goroutine netpoll returns likewise).
 */
static int poll_local(herd__worker *w, int64_t deadline)
{
	w->quiet = true;
	w->quiet_readied = 0;
	int n = w->rt->netpoll->run(w->rt, deadline);
	w->quiet = false;
	if (w->quiet_readied > 1)
		wakep(w->rt);
	return n;
}

void herd__poll_watch(herd__rt *rt)
{
	/* Called after a wait was registered (poll.waiters raised). If the
	 * sleeper is in epoll_wait already, it sees the new registration.
	 * If the caller's worker has nothing else to run, it becomes the
	 * sleeper itself once the caller parks (as Go's netpoller does: a
	 * registration wakes nobody). Only a worker with more work queued
	 * gets another idle worker to watch. */
	int s = atomic_load_explicit(&rt->timer_sleeper, mo_seq_cst);
	if (s && atomic_load_explicit(&rt->workers[s - 1]->in_poll, mo_seq_cst))
		return;
	herd__worker *w = herd__self();
	if (w && !herd__sched_busy(w) &&
	    !atomic_load_explicit(&rt->gq_size, mo_relaxed))
		return;
	herd__wake_for_timers(rt);
}

static herd__task *steal_work(herd__worker *w)
{
	herd__rt *rt = w->rt;
	unsigned n = rt->nworkers;
	if (n == 1)
		return NULL;
	if (!w->spinning) {
		/* Enough workers are looking already: half the busy ones. */
		uint32_t spinning = atomic_load_explicit(&rt->nspinning, mo_relaxed);
		uint32_t idle = atomic_load_explicit(&rt->nidle, mo_relaxed);
		if (2 * spinning >= n - idle)
			return NULL;
		w->spinning = true;
		atomic_fetch_add_explicit(&rt->nspinning, 1, mo_seq_cst);
	}
	for (int round = 0; round < STEAL_ROUNDS; round++) {
		w->rand = w->rand * 6364136223846793005ull + 1442695040888963407ull;
		unsigned start = (unsigned)(w->rand >> 33) % n;
		for (unsigned i = 0; i < n; i++) {
			herd__worker *v = rt->workers[(start + i) % n];
			herd__task *t;
			if (v != w && (t = runq_steal(w, v, round == STEAL_ROUNDS - 1)))
				return t;
		}
		herd__task *t = global_get(w);
		if (t)
			return t;
	}
	return NULL;
}

/*
 * A spinning worker that found nothing watches the queues a little longer
 * before it sleeps: work often comes back within microseconds (a task
 * spawning in a loop), and a sleeping worker costs its waker a system call.
 * True if work appeared.
 */
static bool spin_for_work(herd__worker *w)
{
	herd__rt *rt = w->rt;
	int64_t until = herd_now() + SPIN_NS;
	for (unsigned i = 1; w->spinning; i++) {
		if (atomic_load_explicit(&rt->gq_size, mo_relaxed) ||
		    atomic_load_explicit(&rt->shutdown, mo_relaxed))
			return true;
		for (unsigned k = 0; k < rt->nworkers; k++) {
			herd__worker *v = rt->workers[k];
			if (atomic_load_explicit(&v->rq_tail, mo_relaxed) !=
			    atomic_load_explicit(&v->rq_head, mo_relaxed))
				return true;
		}
		herd__cpu_relax();
		if (i % 32 == 0 && herd_now() >= until)
			return false;
	}
	return false;
}

/* The scheduler loop's search: NULL only when the runtime shuts down. */
static herd__task *find_runnable(herd__worker *w)
{
	for (;;) {
		herd__task *t = pick_local(w);
		/* Descriptors before stealing, as Go's findrunnable: a worker
		 * that finds its task there has not started spinning, so it
		 * does not wake another to spin in its place. */
		if (!t && w->rt->netpoll->waiters(w->rt) &&
		    poll_local(w, 0) > 0)
			continue;
		if (!t)
			t = steal_work(w);
		if (t) {
			if (w->spinning)
				stop_spinning(w);
			return t;
		}
		if (timers_poll(w))
			continue;
		if (atomic_load_explicit(&w->rt->shutdown, mo_seq_cst))
			return NULL;
		/* Work that comes back within microseconds is worth a spin;
		 * but while descriptors are waited on and nobody sleeps in the
		 * poller, the next work is likelier an event: sleep there. */
		if (!(w->rt->netpoll->waiters(w->rt) &&
		      !atomic_load_explicit(&w->rt->timer_sleeper, mo_relaxed)) &&
		    spin_for_work(w))
			continue;
		worker_sleep(w);
	}
}

void herd__shutdown(herd__rt *rt)
{
	atomic_store_explicit(&rt->shutdown, 1, mo_seq_cst);
	herd__worker *v;
	while ((v = idle_pop(rt)))
		wake_worker(v, HERD__WAKE_CHECK);
	herd__monitor_ring(rt); /* the supervisor ends the run */
}

/* ------------------------------------------------------------------ */
/* Switching                                                          */
/* ------------------------------------------------------------------ */

static inline herd__worker *ctx_switch(herd__worker *w, herd__ctx *from,
				       herd__ctx *to, bool dying)
{
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
		global_put_list(rt, t, t, 1);
		wakep(rt);
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

void herd__finish_switch(herd__worker *w)
{
	herd__task *p = w->prev;
	if (!p)
		return;
	w->prev = NULL;
	if (!w->prev_dead) {
		atomic_store_explicit(&p->on_cpu, 0, mo_release);
		return;
	}
#if HERD_TSAN
	__tsan_destroy_fiber(p->ctx.tsan_fiber);
#endif
	herd__stack_put(w, p->stack);
	herd__task_free(w, p);
	if (herd__unlikely(atomic_load_explicit(&w->rt->nstackless, mo_relaxed)))
		retry_stackless(w->rt);
}

/* Switches from the running task to next (or, if NULL, to g0). */
static herd__worker *switch_away(herd__worker *w, herd__task *from,
				 herd__task *next, bool dying)
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
	w = switch_away(w, t, pick_local(w), false);
	herd__stat_add(&w->st_parked, -1);
	return w;
}

herd__task *herd__exit_next(herd__worker *w)
{
	herd__task *t = w->cur;
	herd__stat_add(&w->st_live, -1);
	check_canary(t);
	herd__task *next = pick_local(w);
	if (!next || next->ctx.sp)
		switch_away(w, t, next, true); /* does not return */
	/* The next task has never run: it inherits this task's stack. */
	herd__task_inherit(w, t, next);
	claim(next);
	w->cur = next;
	return next;
}

void herd__ready(herd__worker *w, herd__task *t)
{
	herd__rt *rt;
	if (w) {
		rt = w->rt;
		runq_put_next(w, t);
		if (w->quiet) { /* see poll_local */
			w->quiet_readied++;
			return;
		}
	} else {
		rt = atomic_load_explicit(&herd__runtime, mo_acquire);
		global_put_list(rt, t, t, 1);
	}
	wakep(rt);
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
	runq_put(w, t);
	wakep(w->rt);
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
		runq_put(w, t);
		w = switch_away(w, t, next, false);
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

void herd__worker_loop(herd__worker *w)
{
	for (;;) {
		herd__task *t = w->handoff;
		w->handoff = NULL;
		if (!t && !(t = find_runnable(w)))
			return;
		run(w, t);
	}
}
