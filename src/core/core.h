/*
 * core.h - the core layer: tasks, their stacks and object caches, the
 * scheduler (run queues, idle workers, the sleeper), parking and waking,
 * timers, the scopes that own tasks, and spawn checks. It knows nothing of
 * channels, descriptors or processes: the poller and the process layer
 * reach it through the hooks they install (herd__netpoll, herd__scope_hooks).
 *
 * Lock order, across the library: base.h's ranks (herd__rank), checked at
 * every lock in checked builds. No herd lock is ever held across a context
 * switch. herd__ready() may be called with any lock held but a leaf's: it
 * takes only leaves.
 */
#ifndef HERD_CORE_H
#define HERD_CORE_H

#include "os/os.h"

/* ------------------------------------------------------------------ */
/* Object caches (cache.c): per-worker arrays, a depot of magazines     */
/* ------------------------------------------------------------------ */

#define HERD__MAG 64u            /* objects per magazine */
#define HERD__CACHE (2 * HERD__MAG) /* objects a worker keeps */

typedef struct herd__cache {
	unsigned n;
	void *obj[HERD__CACHE];
} herd__cache;

typedef struct herd__depot {
	herd__mutex lock;
	struct herd__mag *full, *empty;
	size_t nfull;
	_Atomic size_t nfull_hint; /* nfull, readable without the lock */
} herd__depot;

/* The slow halves of the two below, out of line: the fast halves are a
 * few instructions, which a call's frame would double. */
void *herd__cache_refill(herd__cache *c, herd__depot *d);
bool herd__cache_put_spill(herd__cache *c, herd__depot *d, void *obj);

/* An object from the worker's cache or the depot; NULL if both are empty. */
static inline void *herd__cache_get(herd__cache *c, herd__depot *d)
{
	HERD__ASSERT(c->n <= HERD__CACHE);
	if (herd__likely(c->n))
		return c->obj[--c->n];
	return herd__cache_refill(c, d);
}

/* Keeps obj for reuse; false (obj not kept) if a magazine could not be
 * allocated. */
static inline bool herd__cache_put(herd__cache *c, herd__depot *d, void *obj)
{
	if (herd__unlikely(c->n == HERD__CACHE))
		return herd__cache_put_spill(c, d, obj);
	c->obj[c->n++] = obj;
	return true;
}
/* Moves the whole cache to the depot; returns an object it could not move
 * (the caller disposes of it and calls again), NULL when done. */
void *herd__cache_drain(herd__cache *c, herd__depot *d);
/* Frees the depot's magazines, passing every object it holds to release. */
void herd__depot_fini(herd__depot *d, void (*release)(void *obj, void *arg),
		      void *arg);

/* Builds the first frame of a context on a fresh stack (stack.c). */
void herd__ctx_init(herd__ctx *c, char *lo, size_t size, const herd__rt *rt);
/* Captures the calling thread's FP control words for new tasks. */
void herd__ctx_capture_fp(herd__rt *rt);

/* ------------------------------------------------------------------ */
/* Tasks                                                              */
/* ------------------------------------------------------------------ */

/* herd__task.wait: the wake protocol of a parked task (see wait.c). */
enum {
	HERD__WAIT_NONE = 0,    /* running, or runnable */
	HERD__WAIT_CANCELABLE = 1, /* parked; cancellation may claim it */
	HERD__WAIT_WOKEN = 2,   /* a waker claimed it and will ready it */
	HERD__WAIT_FIRM = 3,    /* parked; cancellation may not claim it */
};

/* herd__task.flags */
enum {
	HERD__TASK_BIG_ARG = 1u << 0,  /* allocated with malloc, not cached */
	HERD__TASK_UNGUARDED = 1u << 1,/* its stack has a canary, no guard */
	HERD__TASK_SLOT = 1u << 2,     /* holds a slot of its limited scope */
	HERD__TASK_SITE_PC = 1u << 3,  /* site is a return address, not text */
};

/*
 * A task object, laid out by who writes it: the first cache line is written
 * by the spawner (arguments of up to 8 bytes included), the second by the
 * worker that first runs the task, the rest holds larger arguments. A spawn
 * and the task's first run on another worker then move as few cache lines
 * between cores as can be.
 */
struct herd__task {
	/* Line 1: written at spawn, and at each park and wake. */
	herd__ctx ctx;
	herd_fn fn;
	void *arg;
	herd_scope *scope;
	herd__task *next;       /* global run queue */
	/*
	 * 1 while a worker runs the task or is still switching away from it.
	 * A worker about to run the task waits for 0 (acquire), which the
	 * worker that switched away stores (release) once the task's registers
	 * are saved: so a task may be made runnable before it has finished
	 * parking. (The kernel's task_struct.on_cpu plays the same part.)
	 */
	_Atomic uint8_t on_cpu;
	_Atomic uint8_t wait;   /* HERD__WAIT_*; see wait.c */
	uint8_t flags;
	/* What it waits on while parked (HERD__WHY_*), for the task dump and
	 * the deadlock report (run/): set by the blocking call before it
	 * parks, with wait_obj and wait_since. Relaxed atomics: the readers
	 * hold only the registry's lock (so the task cannot end), read the
	 * wait word first and take them as a moment's picture. */
	_Atomic uint8_t why;
	int wake_result;        /* written by whoever wins the wake */
	/* Arguments of up to 8 bytes; aligned as malloc's memory is. */
	alignas(16) unsigned char smallarg[8];
	const char *site;       /* where it was spawned: "file:line", or NULL */
	/* Line 2: written when the task first runs (herd__task_start). */
	alignas(HERD__CACHELINE) uint64_t id;
	char *stack;            /* lowest usable byte of its stack */
	herd__link reg_link;    /* in its registry worker's list */
	herd_scope *owned;      /* scopes it opened and has not closed */
	/* A scope other than its own whose cancellation also ends its
	 * cancelable waits: the one herd_proc_start starts a process in, or
	 * the limited scope a spawn waits for a slot of. Cleared under the
	 * registry's lock (herd__wait_scope_set, wait.c). */
	_Atomic(herd_scope *) wait_scope;
	_Atomic(const void *) wait_obj; /* the object of `why`, or NULL */
	_Atomic uint32_t wait_since;    /* herd__coarse_ms when it parked */
	/* The registry of tasks that have parked (see wait.c): 1 + the index
	 * of the worker whose list holds the task, or 0. */
	uint16_t reg;
	/* Then: arguments of more than 8 bytes. */
	alignas(HERD__CACHELINE) unsigned char argbuf[];
};

/* Task objects come in one size, which holds arguments up to 64 bytes
 * (192 bytes in all, more in sanitizer builds). */
#define HERD__TASK_INLINE 64u
#define HERD__TASK_SIZE (offsetof(struct herd__task, argbuf) + HERD__TASK_INLINE)
#define HERD__TASK_SPAWN_BYTES offsetof(struct herd__task, id)

herd__task *herd__task_alloc(herd__worker *w, size_t argsize);
/* Gives a runnable task that has never run its stack; -ENOMEM. */
int herd__task_start(herd__worker *w, herd__task *t);
HERD__NORETURN void herd__task_main(herd__worker *w);
void herd__task_cache_drain(herd__worker *w);
void herd__task_depot_free(herd__rt *rt);

/* ------------------------------------------------------------------ */
/* Stacks (stack.c)                                                    */
/* ------------------------------------------------------------------ */

typedef struct herd__stacks {
	size_t size;   /* usable bytes */
	size_t guard;  /* guard bytes below each stack */
	size_t stride; /* guard + size */
	int mode;      /* HERD_GUARD_* */
	herd__mutex lock;      /* slabs, carving, orphans, mode */
	struct herd__slab *slabs;
	char *carve;           /* next unused stack of the newest slab */
	size_t carve_left;     /* stacks left in it */
	size_t next_slab;      /* stacks in the next slab */
	void *orphans;         /* free stacks no magazine could take, linked
				* through their headers */
	herd__depot depot;
	_Atomic uint64_t made, guarded;
	uint64_t guard_budget; /* mprotect guards still allowed */
} herd__stacks;

int herd__stacks_init(herd__rt *rt, size_t size, int mode);
void herd__stacks_fini(herd__rt *rt);
/* A free stack (its lowest usable byte), or NULL. *guarded tells its kind. */
char *herd__stack_get(herd__worker *w, bool *guarded);
void herd__stack_put(herd__worker *w, char *lo);
void herd__stack_cache_drain(herd__worker *w);
/* Checks an unguarded stack's canary; reports and aborts if it is gone. */
void herd__stack_check(const herd__task *t);
int herd__overflow_handler_install(void);
void herd__overflow_handler_remove(void);
int herd__altstack_install(herd__worker *w);
void herd__altstack_remove(herd__worker *w);

/* ------------------------------------------------------------------ */
/* Workers and the scheduler (sched.c)                                 */
/* ------------------------------------------------------------------ */

/* A parked task in an object's queue; lives on the parked task's stack. */
typedef struct herd__waiter {
	herd__task *task;
	herd__link link;        /* in its queue, while linked */
	bool linked;            /* under the object's lock */
} herd__waiter;

/* A queue of waiters: the one intrusive list, of herd__waiter.link. */
typedef herd__list herd__waitq;

static inline herd__waiter *herd__waiter_of(herd__link *k)
{
	return k ? herd__container_of(k, herd__waiter, link) : NULL;
}

#define HERD__RUNQ 256u /* slots of a worker's local run queue */

struct herd__worker {
	/* Touched by the owner only (but for stats, read racily). */
	herd__rt *rt;
	unsigned index;
	herd__task *cur;        /* the running task, NULL on g0 */
	struct herd__trace_buf *trace; /* its events, or NULL (see trace.h) */
	herd__ctx g0;           /* the scheduler loop's context */
	herd__task *prev;       /* switched away from; see finish_switch */
	herd__task *handoff;    /* for g0 to run next (see switch_away) */
	bool prev_dead;         /* prev has ended: free it after the switch */
	bool spinning;          /* counted in rt->nspinning */
	bool quiet;             /* readying into its own queue: no wakep */
	/* The only worker: nobody else takes from its run queue (there is no
	 * thief, and the supervisor rescues only when others can run what
	 * it moves), so its own takes need no atomic read-modify-write. */
	bool alone;
	/* The only worker, and its locks of objects that no other thread has
	 * touched need no atomics (solo locks: see herd__solo_fence). */
	bool solo;
	uint32_t quiet_readied;
	uint32_t tick;          /* scheduling rounds, for fairness checks */
	_Atomic uint32_t progress; /* tick, read by the monitor */
	_Atomic bool in_syscall; /* in a long system call of herd's own */
	uint32_t next_streak;   /* consecutive runs from runnext */
	uint64_t rand;          /* select's choices: from rt->seed alone */
	uint64_t steal_rand;    /* where to steal first: depends on timing */
	uint64_t id_next, id_end; /* block of task ids */
	herd__cache task_cache;
	herd__cache stack_cache;
	herd__cache scope_cache;
	pthread_t thread;
	_Atomic int tid;        /* its thread's id, for the monitor (0: none yet) */
	void *altstack;
	herd__worker *idle_next; /* rt->idle_list, under rt->idle_lock */
	bool idle;               /* in rt->idle_list */
	/* Tasks that parked on this worker at least once and are alive; walked
	 * by cancellation. reg_lock is a leaf but for herd__ready's locks. */
	herd__mutex reg_lock;
	herd__list reg;         /* herd__task.reg_link */
	/* Statistics, written by the owner with relaxed stores. */
	_Atomic int64_t st_live, st_parked, st_spawned;
	/* 0 while asleep; a waker stores HERD__WAKE_* and wakes the futex. */
	alignas(HERD__CACHELINE) _Atomic uint32_t wake_token;
	_Atomic int in_poll;     /* sleeping in the poller: wake through it */
	/* The local run queue: the owner pushes at tail; the owner and thieves
	 * take from head with a CAS. runnext is the slot of the task readied
	 * last, which runs next (the ping-pong case). */
	alignas(HERD__CACHELINE) _Atomic uint32_t rq_head;
	alignas(HERD__CACHELINE) _Atomic uint32_t rq_tail;
	alignas(HERD__CACHELINE) _Atomic(herd__task *) runnext;
	alignas(HERD__CACHELINE) _Atomic(herd__task *) rq[HERD__RUNQ];
};

enum { HERD__WAKE_SPIN = 1, HERD__WAKE_CHECK = 2 };

/*
 * A deadline in the timer heap: a parked task's (task set), or a delivery
 * (task NULL): `deliver` runs at `when`, and every `period` after if that
 * is not 0, on a worker, with no lock held (sync/'s channel timers).
 */
typedef struct herd__timer {
	int64_t when;
	size_t index;       /* its record's id in the heap; SIZE_MAX out of it */
	herd__task *task;
	int64_t period;     /* deliveries: under timer_lock */
	unsigned firing;    /* deliveries under way; under timer_lock */
	void (*deliver)(struct herd__timer *tm, int64_t now);
} herd__timer;

/* The heap (timerheap.c), under its owner's lock: each slot holds a
 * deadline and the id of its record, which holds the timer and its task
 * (tm NULL: removed, the slot left behind), so that sifting and firing
 * touch no timer. */
typedef struct herd__timerslot {
	int64_t when;
	uint32_t id;
} herd__timerslot;
typedef struct herd__timerrec {
	herd__timer *tm;
	herd__task *task;
} herd__timerrec;
typedef struct herd__timerheap {
	herd__timerslot *a;
	herd__timerrec *recs; /* by id */
	uint32_t *spare;      /* the ids not in use */
	size_t n, cap;
	size_t ndead;         /* slots whose timer was removed */
} herd__timerheap;

/* The earliest deadline in the heap, INT64_MAX if it is empty. */
static inline int64_t herd__timerheap_first(const herd__timerheap *h)
{
	return h->n ? h->a[0].when : INT64_MAX;
}
/*
 * What the scheduler needs of the poller (io/poll.c), a higher layer: an
 * idle worker sleeps in it, a busy one polls now and then. Installed by
 * herd__poll_init; NULL until then.
 */
typedef struct herd__netpoll {
	/* Waits for events until deadline (-1: none; 0: do not block), wakes
	 * their waiters; returns how many it woke. Any thread. */
	int (*run)(herd__rt *rt, int64_t deadline);
	/* Wakes a thread blocked in run. */
	void (*interrupt)(herd__rt *rt);
	/* Makes a thread blocked in run return by `when` at the latest,
	 * without waking it before; false if it cannot. */
	bool (*wake_by)(herd__rt *rt, int64_t when);
	/* Whether a busy worker should poll now. */
	bool (*due)(herd__rt *rt);
	/* Waits registered (seq_cst: a worker decides by it to sleep there). */
	uint32_t (*waiters)(herd__rt *rt);
} herd__netpoll;

/*
 * What a scope needs of the child processes it owns (proc/), a higher
 * layer: installed when the first process starts (herd__proc_once).
 */
typedef struct herd__scope_hooks {
	/* SIGTERM to a canceled scope's processes (its lock held). */
	void (*cancel_locked)(herd__list *procs);
	/* Ends a closing scope's processes; returns once none is left. */
	void (*end)(herd__worker **wp, herd_scope *s);
} herd__scope_hooks;

struct herd__io_rt;   /* io/io.h */
struct herd__proc_rt; /* proc/proc.h */
struct herd__run_rt;  /* run/run.h */

struct herd__rt {
	uint64_t serial;         /* tells this runtime from later ones */
	unsigned nworkers;
	herd__worker **workers;
	bool debug;
	struct herd__trace *trace; /* HERD_TRACE's recorder, or NULL */
	herd_scope *root;
	herd__stacks stacks;
	uint64_t fp_control;     /* FP control words new tasks start with */
	_Atomic uint64_t id_block;
	_Atomic int shutdown;
	_Atomic int timer_sleeper; /* 1 + index of the worker waiting on timers */
	_Atomic int64_t st_foreign_spawned; /* by threads that are not workers */
	/* The global run queue: batches (arrays of task pointers, from full
	 * rings) and single tasks (linked through ->next). */
	alignas(HERD__CACHELINE) herd__mutex gq_lock;
	struct herd__batch *gq_batches, *gq_batches_tail, *gq_free_batches;
	herd__task *gq_head, *gq_tail;
	_Atomic uint32_t gq_size; /* tasks in both */
	/* Idle and spinning workers. */
	alignas(HERD__CACHELINE) herd__mutex idle_lock;
	herd__worker *idle_list;
	_Atomic uint32_t nidle;
	_Atomic uint32_t nspinning;
	/* Tasks waiting for a stack after an allocation failed. */
	herd__mutex stackless_lock;
	herd__task *stackless;
	_Atomic uint32_t nstackless;
	/* Task objects and scopes beyond the workers' caches. */
	herd__depot task_depot;
	herd__depot scope_depot;
	/* Timers (timer.c). */
	alignas(HERD__CACHELINE) herd__mutex timer_lock;
	herd__timerheap timers;
	_Atomic int64_t timer_next; /* earliest deadline, INT64_MAX if none */
	_Atomic uint32_t teardown; /* worker threads may end (runtime.c) */
	int64_t stall_ns;        /* the monitor's threshold */
	int64_t start_ns;        /* herd_now() when the runtime was made */
	/* Milliseconds since start_ns, kept by the supervisor (to within its
	 * tick: at most 50 ms behind), for how long a task has been parked. */
	_Atomic uint32_t coarse_ms;
	uint64_t seed;           /* of select's random choices (HERD_SEED) */
	sigset_t sigmask;        /* herd_run's caller's: children get it */
	pid_t pid;               /* the process the runtime runs in */
	/* How the scheduler gets the supervisor (run/monitor.c) up: its alarm
	 * for a timer nobody else watches, and its bell (rung at shutdown and
	 * by the signal handler). */
	struct {
		herd__alarm alarm;
		herd__bell bell;
	} mon;
	const herd__netpoll *netpoll;       /* io/poll.c's */
	_Atomic(const herd__scope_hooks *) scope_hooks; /* proc/'s */
	/* The higher layers' state, allocated with this by run/runtime.c. */
	struct herd__io_rt *io;
	struct herd__proc_rt *proc;
	struct herd__run_rt *run;
};

extern herd__rt *_Atomic herd__runtime;

static inline uint32_t herd__coarse_ms(const herd__rt *rt)
{
	return atomic_load_explicit(&rt->coarse_ms, mo_relaxed);
}

/* The usable size of task stacks. */
static inline size_t herd__stack_size(const herd__rt *rt)
{
	return rt->stacks.size;
}

/*
 * The worker running the calling thread, or NULL (see sched.c). Read it only
 * through herd__self(), which the compiler cannot cache across a switch: a
 * task that parks may resume on another thread. The signal handler reads the
 * variable directly (initial-exec TLS is async-signal-safe).
 */
extern __thread herd__worker *herd__tls_worker
	__attribute__((tls_model("initial-exec")));
herd__worker *herd__self(void);
void herd__self_set(herd__worker *w);

/* Makes a parked or new task runnable. w: the calling worker, or NULL.
 * The task runs next on w (runnext); ready_tail queues it behind the
 * others instead. herd__ready_any is the whole of it; the inline part is
 * the only worker's common case, a store to its free runnext (no thief,
 * nobody to wake), which a call's frame would make three times longer. */
void herd__ready_any(herd__worker *w, herd__task *t);
static inline void herd__ready(herd__worker *w, herd__task *t)
{
	if (w && w->alone && !atomic_load_explicit(&w->runnext, mo_relaxed)) {
		atomic_store_explicit(&w->runnext, t, mo_relaxed);
		return;
	}
	herd__ready_any(w, t);
}
void herd__ready_tail(herd__worker *w, herd__task *t);
/* Free slots in w's local run queue. */
uint32_t herd__runq_room(herd__worker *w);
/* Parks the running task; returns the worker it resumes on. */
herd__worker *herd__park(herd__worker *w);
/*
 * Ends the running task. If the next task of the worker has never run, it
 * takes over the stack and is returned: the caller runs it in place, with
 * no switch. Otherwise this switches away for good and does not return.
 */
herd__task *herd__exit_next(herd__worker *w);
/* Runs after every switch, on the new context: releases the previous one. */
void herd__finish_switch(herd__worker *w);
void herd__worker_loop(herd__worker *w);

/*
 * Solo locks (sched.c). The only worker of a runtime (w->alone) runs every
 * task, so a lock that only its tasks take serializes nothing but costs two
 * locked instructions. Such a worker may be solo (w->solo): it takes an
 * object's lock by bias, with a plain store of the object's busy flag and
 * a plain load of its `shared` flag, only a compiler barrier between them
 * (sync.h's channel locks). Any other thread, the first time it takes the
 * object's lock, sets `shared`, calls herd__solo_fence() (a full barrier
 * on every running thread of the process: membarrier(2)) and waits for the
 * busy flag to clear; so either the worker's load sees `shared` and it
 * takes the real lock from then on, or the other thread's load sees the
 * busy flag and waits until the worker is done (liburcu's asymmetric
 * Dekker). herd__solo_fence is needed only while a solo worker runs
 * (herd__solo_live); without membarrier's expedited command (an old
 * kernel, seccomp, Valgrind) no worker is solo.
 */
bool herd__solo_live(void);
void herd__solo_fence(void);
void herd__batches_free(herd__rt *rt);
void herd__shutdown(herd__rt *rt);
/* Wakes the sleeper, or an idle worker if there is none, to look at the
 * timers; false if it woke nobody. */
bool herd__wake_for_timers(herd__rt *rt);
/* Makes sure an idle worker watches the poller (a wait was registered). */
void herd__poll_watch(herd__rt *rt);
/* A timer at `when` became the earliest: makes sure somebody fires it. */
void herd__timer_kick(herd__rt *rt, int64_t when);
/* For the monitor, while no worker sleeps on the timers: wakes an idle
 * worker for a late timer, or sets the monitor's alarm for it. */
void herd__timers_unwatched(herd__rt *rt, int64_t now);
/* Whether tasks wait in w's queue; moves them all to the global queue and
 * wakes a worker for them (the monitor, for a stuck worker). */
bool herd__sched_busy(herd__worker *w);
void herd__sched_rescue(herd__worker *w);
/* For the monitor: a task waiting for a stack (none could be had when it
 * first ran) tries again. */
void herd__sched_retry_stackless(herd__rt *rt);
/* Gets the supervisor up by `when` (without an alarm, its tick has to
 * do), or at once. */
static inline void herd__monitor_wake_by(herd__rt *rt, int64_t when)
{
	herd__alarm_set(&rt->mon.alarm, when);
}
static inline void herd__monitor_ring(herd__rt *rt)
{
	herd__bell_ring(&rt->mon.bell);
}
/* A task id: from the worker's block of ids, the next block when it is
 * used up (out of line). */
uint64_t herd__next_id_block(herd__worker *w);
static inline uint64_t herd__next_id(herd__worker *w)
{
	if (herd__unlikely(w->id_next == w->id_end))
		return herd__next_id_block(w);
	return w->id_next++;
}

/* ------------------------------------------------------------------ */
/* Waiting (wait.c) and timers (timer.c)                               */
/* ------------------------------------------------------------------ */


static inline void herd__waitq_push(herd__waitq *q, herd__waiter *wt)
{
	HERD__ASSERT(!wt->linked);
	herd__list_push_back(q, &wt->link);
	wt->linked = true;
}

/* Unqueues wt if it is queued. */
static inline void herd__waitq_remove(herd__waitq *q, herd__waiter *wt)
{
	if (!wt->linked)
		return;
	herd__list_remove(q, &wt->link);
	wt->linked = false;
}

static inline void herd__waitq_push_front(herd__waitq *q, herd__waiter *wt)
{
	HERD__ASSERT(!wt->linked);
	herd__list_push_front(q, &wt->link);
	wt->linked = true;
}

/* Wakes every waiter with result 0 (caller holds the object's lock) and
 * unqueues it; returns how many. A waiter already claimed by its timer or
 * by cancellation stays queued: it unqueues itself. */
unsigned herd__waitq_wake_all(herd__waitq *q);
/* The same for the first waiter that can be claimed; true if one was. */
bool herd__waitq_wake_one(herd__waitq *q);
/*
 * Waking in two steps, for objects whose waiter may free the object as
 * soon as its call returns (a lock in a task's frame or in freed memory):
 * under the object's lock, claim and unqueue the waiters to wake into a
 * local list (they are then the caller's: nobody else readies them, and
 * their waiters, on their own stacks, stay valid until they run); release
 * the object's lock and make whatever release is visible the last access
 * to the object; then finish them. claim_all returns how many it claimed,
 * claim_one whether it claimed one; finish_all empties `won`.
 */
unsigned herd__waitq_claim_all(herd__waitq *q, herd__list *won);
bool herd__waitq_claim_one(herd__waitq *q, herd__list *won);
void herd__wait_finish_all(herd__list *won, int result);
/* The first queued waiter whose task the caller wins, unqueued; NULL if
 * none can be won (they are stale: their tasks unqueue themselves). */
herd__waiter *herd__waitq_claim_first(herd__waitq *q);
/* Whether a queued waiter's task can still be claimed: false for a stale
 * waiter (claimed by its deadline or a cancellation, it unqueues itself). */
bool herd__wait_live(const herd__task *t);
/* The same for cancellation: only a cancelable wait is claimed. */
bool herd__wake_canceled(herd__task *t);
/* The two halves of a wake, for wakers that must know they won before they
 * touch the waiter (channels copy a value into or out of it): claim, then,
 * if it returned true, finish with the result. */
static inline bool herd__wait_claim(herd__task *t);         /* below */
void herd__wait_finish(herd__task *t, int result);
/*
 * herd__wait in two halves, for a task queued under several locks (select):
 * prepare makes the wait claimable (call it with the locks held, before it
 * is findable by a waker that does not hold one of them); park releases
 * nothing, and does the rest.
 */
static inline void herd__wait_prepare(herd__worker *w, herd__task *t, bool cancelable);
int herd__wait_park(herd__worker **wp, int64_t deadline, bool cancelable);
/*
 * Parks the calling task, which is already findable by its wakers (queued
 * under `lock`, which this releases). Returns the wake's result: 0, or
 * HERD_ETIMEDOUT at `deadline`, or HERD_ECANCELED if the task's scope is
 * canceled and `cancelable`. *wp is updated to the worker it resumes on.
 */
int herd__wait(herd__worker **wp, herd__mutex *lock, int64_t deadline,
	       bool cancelable);
/* Wakes every parked task whose scope is canceled (herd_scope_cancel). */
void herd__cancel_parked(herd__rt *rt);
/* Sets or clears t's wait_scope (the running task's own). */
void herd__wait_scope_set(herd__task *t, herd_scope *s);
/*
 * Calls fn for every task that has parked at least once and has not ended
 * (the task dump, the deadlock check), one worker's registry lock held at
 * a time: the task cannot end meanwhile, but it may run. fn takes no lock
 * but leaves and must not block.
 */
void herd__registry_each(herd__rt *rt, void (*fn)(herd__task *t, void *arg),
			 void *arg);
/* Removes an ending task from the registry of parked tasks. */
void herd__registry_leave(herd__task *t);
/* The worker and task of the caller, or -EPERM outside a task. */
int herd__current(herd__worker **wp, herd__task **tp);

/* Inserts tm (a `when` past the latest one kept becomes INT64_MAX,
 * never); -ENOMEM. */
int herd__timerheap_add(herd__timerheap *h, herd__timer *tm);
/* Takes tm, which is in the heap, out; O(1). */
void herd__timerheap_remove(herd__timerheap *h, herd__timer *tm);
/* Takes the earliest timer out (the heap is not empty) and returns it and
 * its task. It does not touch the timer: its index is left for the caller
 * to clear (SIZE_MAX), or to leave stale when nobody will look. */
herd__timer *herd__timerheap_pop(herd__timerheap *h, herd__task **task);
/* Whether tm, which is in the heap, is the earliest. */
bool herd__timerheap_is_first(const herd__timerheap *h, const herd__timer *tm);
void herd__timerheap_free(herd__timerheap *h);
#if HERD_CHECKED
void herd__timerheap_check(const herd__timerheap *h);
#endif

int herd__timer_add(herd__rt *rt, herd__timer *tm);
void herd__timer_del(herd__rt *rt, herd__timer *tm);
/* A delivery timer: (re)starts it at deadline, every period after (0:
 * once); 0 or -ENOMEM. Stop takes it out of the heap and waits out a
 * delivery under way, so that none follows; true if it was pending. */
int herd__timer_start(herd__rt *rt, herd__timer *tm, int64_t deadline, int64_t period);
bool herd__timer_stop(herd__rt *rt, herd__timer *tm);
/* Fires the timers due at `now`, as many as w's run queue has room for;
 * returns how many it fired. */
int herd__timers_run(herd__worker *w, int64_t now);
void herd__timers_fini(herd__rt *rt);

/* ------------------------------------------------------------------ */
/* Scopes (scope.c) and debug checks (debug.c)                         */
/* ------------------------------------------------------------------ */

herd_scope *herd__scope_root_new(herd__rt *rt);
void herd__scope_root_free(herd_scope *s);
/* Adds a new task to a scope; HERD_ECANCELED if it is canceled. */
int herd__scope_attach(herd_scope *s, herd__task *t);
/*
 * For a task just attached to a slotted scope (herd__scope_slotted): takes
 * a slot for it, waiting up to `deadline` for one if the calling task can
 * (*wp: the caller's worker, NULL for a thread that is not one; updated).
 * Returns 0; else HERD_ETIMEDOUT, HERD_ECANCELED, -EAGAIN (a full scope and
 * a caller that cannot wait), -ENOMEM, with the attach undone.
 */
int herd__scope_slot_take(herd__worker **wp, herd_scope *s, herd__task *t,
			  int64_t deadline);
/* Removes an ending task; closes the scopes it still owns first. */
void herd__scope_detach(herd__worker **wp, herd__task *t);
/* The first member of every scope: what the hot paths read without a call.
 * `canceled` goes from 0 to 1 once, and so does `slotted`, when the scope
 * first gets a limit (see scope.c). */
typedef struct herd__scope_head {
	_Atomic uint32_t canceled;
	_Atomic uint32_t slotted;
} herd__scope_head;

/* Whether spawns into s must take a slot (it has, or had, a limit). */
static inline bool herd__scope_slotted(const herd_scope *s)
{
	return atomic_load_explicit(&((const herd__scope_head *)(const void *)s)->slotted,
				    mo_relaxed) != 0;
}

static inline bool herd__scope_canceled(const herd_scope *s)
{
	return atomic_load_explicit(&((const herd__scope_head *)(const void *)s)->canceled,
				    mo_seq_cst) != 0;
}
void herd__scope_cache_drain(herd__worker *w);
void herd__scope_depot_free(herd__rt *rt);

/* The process layer's side of a scope (its lock, its list of processes). */
herd__mutex *herd__scope_lock(herd_scope *s);
herd__list *herd__scope_procs(herd_scope *s);
bool *herd__scope_had_procs(herd_scope *s); /* under the scope's lock */


#include "core/debug.h"
#include "core/trace.h"

/* Puts t, which is parking for the first time, in w's registry (wait.c). */
void herd__registry_join(herd__worker *w, herd__task *t);

/* Inline (a call measured as much as the work): see herd__wait above, and
 * wait.c's Ordering for the solo worker's store. */
static inline void herd__wait_prepare(herd__worker *w, herd__task *t, bool cancelable)
{
	HERD__ASSERT(t == w->cur);
	HERD__ASSERT(atomic_load_explicit(&t->wait, mo_relaxed) == HERD__WAIT_NONE);
	HERD__ASSERT(atomic_load_explicit(&t->why, mo_relaxed) != HERD__WHY_NONE);
	if (herd__unlikely(!t->reg))
		herd__registry_join(w, t);
	t->wake_result = 0;
	atomic_store_explicit(&t->wait_since, herd__coarse_ms(w->rt), mo_relaxed);
	uint8_t state = cancelable ? HERD__WAIT_CANCELABLE : HERD__WAIT_FIRM;
	if (w->solo) { /* the canceler fences (wait.c); release for its claim */
		atomic_store_explicit(&t->wait, state, mo_release);
		atomic_signal_fence(mo_seq_cst);
	} else {
		atomic_store_explicit(&t->wait, state, mo_seq_cst);
	}
}

/* Claims t's wait if it is still in state `from` (wait.c's claim; the
 * orders are in wait.c's Ordering). */
static inline bool herd__wait_claim_from(herd__task *t, uint8_t from)
{
	return atomic_compare_exchange_strong_explicit(&t->wait, &from, HERD__WAIT_WOKEN,
						       mo_acq_rel, mo_relaxed);
}

/* The first half of a wake (declared above), inline: a few instructions,
 * and a call's frame measured about as many again. (The second half,
 * inline, made the channels' own frames larger: no better in all.) */
static inline bool herd__wait_claim(herd__task *t)
{
	uint8_t s = atomic_load_explicit(&t->wait, mo_seq_cst);
	return (s == HERD__WAIT_CANCELABLE || s == HERD__WAIT_FIRM) &&
	       herd__wait_claim_from(t, s);
}

#endif /* HERD_CORE_H */
