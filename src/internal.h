/*
 * internal.h - what the subsystems of libherd share, and nothing public.
 *
 * Names: internal non-static symbols are herd__*; everything here is hidden
 * (the library is built with -fvisibility=hidden; HERD_API marks exports).
 *
 * Lock order, across files (a lock may be taken while holding the ones
 * above it, never the other way round):
 *   1. scope locks, parent before child            (scope.c)
 *   2. object locks: wait groups, channels (several
 *      channels in order of address: select.c),
 *      the poller, the descriptor budget, the
 *      helper queue, the runtime's process lists;
 *      a process's own lock after its scope's or
 *      the process lists' (never the other way)    (wg.c, chan.c, poll.c,
 *                                                    fd.c, blocking.c, proc.c)
 *   3. the timer heap lock                          (timer.c)
 *   4. the workers' registry locks (one at a time)  (wait.c)
 *   5. the stacks' lock, depot locks                (stack.c, cache.c)
 *   6. the global run queue lock, the idle lock     (sched.c; leaves)
 * herd__ready() may be called with any of 1-4 held: it takes only leaves.
 * No herd lock is ever held across a context switch.
 */
#ifndef HERD_INTERNAL_H
#define HERD_INTERNAL_H

#include <herd.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ */
/* Build environment                                                  */
/* ------------------------------------------------------------------ */

#if defined(__SANITIZE_ADDRESS__)
#define HERD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HERD_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define HERD_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HERD_TSAN 1
#endif
#endif
#ifndef HERD_ASAN
#define HERD_ASAN 0
#endif
#ifndef HERD_TSAN
#define HERD_TSAN 0
#endif

#define herd__likely(x) __builtin_expect(!!(x), 1)
#define herd__unlikely(x) __builtin_expect(!!(x), 0)
#define HERD__CACHELINE 64
#define HERD__NORETURN __attribute__((noreturn))

/* Short names for the memory orders, used everywhere in src/. */
#define mo_relaxed memory_order_relaxed
#define mo_acquire memory_order_acquire
#define mo_release memory_order_release
#define mo_acq_rel memory_order_acq_rel
#define mo_seq_cst memory_order_seq_cst

static inline void herd__cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

typedef struct herd__worker herd__worker;
typedef struct herd__task herd__task;
typedef struct herd__rt herd__rt;

/* ------------------------------------------------------------------ */
/* OS seam (os-linux.c): everything platform-specific but the switch.  */
/* ------------------------------------------------------------------ */

/* Waits while *addr == val, until woken or the monotonic deadline (-1: none). */
void herd__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline);
void herd__futex_wake(_Atomic uint32_t *addr, int n);
int herd__os_ncpu(void);                /* CPUs this process may use */
long herd__os_max_map_count(void);      /* vm.max_map_count, or 65530 */
size_t herd__os_page_size(void);
/* Makes [addr, addr+len) fault on access without a new mapping; -errno. */
int herd__os_guard_light(void *addr, size_t len);
/* Same with mprotect(PROT_NONE): one more mapping or two. */
int herd__os_guard_mprotect(void *addr, size_t len);
void *herd__os_reserve(size_t len);     /* lazily committed, no THP; NULL */
void herd__os_release(void *addr, size_t len);
void herd__os_set_thread_name(const char *name);
/* The rest of a (small) file, from fd or from openat(dirfd, path) (dirfd
 * AT_FDCWD for a plain path), into a malloc'd, NUL-terminated buffer; NULL
 * if it cannot be read whole. For /proc and cgroup files. */
char *herd__os_read_fd(int fd);
char *herd__os_read_file(int dirfd, const char *path);
/* The start of a small file into buf (NUL-terminated, on the caller's
 * stack: no allocation, for task stacks): the bytes read, or -1. */
ssize_t herd__os_read_small(int dirfd, const char *path, char *buf, size_t size);
/* Appends the numbers of a blank-separated list (pids, as /proc and
 * cgroup.procs write them) to *pids, which holds *n of *cap (grown with
 * realloc); returns *n, or -1 if memory ran out. */
long herd__os_parse_pids(const char *text, pid_t **pids, size_t *n, size_t *cap);


/* ------------------------------------------------------------------ */
/* Mutex: a futex lock for short critical sections (Drepper's mutex2,  */
/* with a brief spin). 0 free, 1 locked, 2 locked with sleepers.       */
/* ------------------------------------------------------------------ */

typedef struct herd__mutex {
	_Atomic uint32_t state;
} herd__mutex;

void herd__mutex_lock_slow(herd__mutex *m);

static inline void herd__mutex_lock(herd__mutex *m)
{
	uint32_t c = 0;
	if (herd__likely(atomic_compare_exchange_strong_explicit(
		    &m->state, &c, 1, mo_acquire, mo_relaxed)))
		return;
	herd__mutex_lock_slow(m);
}

/*
 * The futex wake after the release may reach a lock that the woken thread
 * has already freed with its object (a closed scope, a freed wait group):
 * a FUTEX_WAKE on a private address dereferences nothing in user space, and
 * every futex wait here tolerates spurious wakes.
 */
static inline void herd__mutex_unlock(herd__mutex *m)
{
	if (herd__unlikely(atomic_exchange_explicit(&m->state, 0, mo_release) == 2))
		herd__futex_wake(&m->state, 1);
}

/*
 * An alarm: a descriptor that becomes readable at a set time (a timerfd on
 * Linux), so that a thread asleep in epoll_wait or poll can be given an
 * earlier time to get up without being woken now. Setting it only ever
 * brings the time forward; a ring, once read, is forgotten.
 */
typedef struct herd__alarm {
	int fd;            /* -1: none (callers fall back to a wakeup) */
	herd__mutex lock;  /* orders setting against reading; a leaf */
	int64_t at;        /* when it rings, INT64_MAX if unset; under lock */
} herd__alarm;
/* Makes the descriptor (fd -1 if the system refuses one). */
void herd__alarm_init(herd__alarm *a);
void herd__alarm_fini(herd__alarm *a);
/* Makes the alarm ring by `when` (absolute monotonic ns; the past rings at
 * once). True if it will; false if there is no descriptor. */
bool herd__alarm_set(herd__alarm *a, int64_t when);
/* Reads a ring off the descriptor, and forgets the time if it has passed. */
void herd__alarm_clear(herd__alarm *a);
/*
 * A bell: wakes a thread asleep in herd__alarm_wait from any thread or
 * signal handler. `rung` counts the rings; a waiter reads it before it
 * looks at what it waits for, and passes what it read as `seen`.
 */
typedef struct herd__bell {
	int fd;                  /* an eventfd, or -1 (then the futex) */
	_Atomic uint32_t rung;
} herd__bell;
void herd__bell_init(herd__bell *b);
void herd__bell_fini(herd__bell *b);
/* Async-signal-safe. */
void herd__bell_ring(herd__bell *b);
/* Sleeps until the alarm rings (true), the bell rings (or has rung since
 * `seen` was read), or `deadline` (-1: none). */
bool herd__alarm_wait(herd__alarm *a, herd__bell *b, uint32_t seen, int64_t deadline);

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

/* An object from the worker's cache or the depot; NULL if both are empty. */
void *herd__cache_get(herd__cache *c, herd__depot *d);
/* Keeps obj for reuse; false (obj not kept) if a magazine could not be
 * allocated. */
bool herd__cache_put(herd__cache *c, herd__depot *d, void *obj);
/* Moves the whole cache to the depot; returns an object it could not move
 * (the caller disposes of it and calls again), NULL when done. */
void *herd__cache_drain(herd__cache *c, herd__depot *d);
/* Frees the depot's magazines, passing every object it holds to release. */
void herd__depot_fini(herd__depot *d, void (*release)(void *obj, void *arg),
		      void *arg);

/* ------------------------------------------------------------------ */
/* Context switch (switch-<arch>.S)                                    */
/* ------------------------------------------------------------------ */

/*
 * An execution context that can be suspended: a task, or a worker's
 * scheduler loop on its thread's own stack ("g0", as Go calls it).
 */
typedef struct herd__ctx {
	void *sp;          /* saved stack pointer while suspended */
#if HERD_ASAN
	const void *stack_lo; /* the stack's bounds, for ASan */
	size_t stack_size;
	void *asan_fake;
#endif
#if HERD_TSAN
	void *tsan_fiber;
#endif
} herd__ctx;

/*
 * Saves the callee-saved registers and FP control words on the current
 * stack, stores the stack pointer in *save_sp, loads load_sp and restores
 * the registers found there. Returns `w` in the context it resumes: the
 * context that switches back tells the resumed one which worker it is on.
 */
herd__worker *herd__ctx_switch(void **save_sp, void *load_sp, herd__worker *w);
/* First code of a new task: calls herd__task_main(w). */
void herd__ctx_trampoline(void);
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
	HERD__WAIT_CANCELLABLE = 1, /* parked; cancellation may claim it */
	HERD__WAIT_WOKEN = 2,   /* a waker claimed it and will ready it */
	HERD__WAIT_FIRM = 3,    /* parked; cancellation may not claim it */
};

/* herd__task.flags */
enum {
	HERD__TASK_BIG_ARG = 1u << 0,  /* allocated with malloc, not cached */
	HERD__TASK_UNGUARDED = 1u << 1,/* its stack has a canary, no guard */
};

/*
 * A task object, laid out by who writes it: the first cache line is written
 * by the spawner (arguments of up to 8 bytes included), the second by the
 * worker that first runs the task, the rest holds larger arguments. A spawn
 * and the task's first run on another worker then move as few cache lines
 * between cores as can be.
 */
struct herd__task {
	/* Line 1: written at spawn. */
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
	_Atomic uint32_t on_cpu;
	_Atomic uint32_t wait;  /* HERD__WAIT_*; see wait.c */
	/* Arguments of up to 8 bytes; aligned as malloc's memory is. */
	alignas(16) unsigned char smallarg[8];
	uint8_t flags;
	/* Line 2: written when the task first runs (herd__task_start). */
	alignas(HERD__CACHELINE) uint64_t id;
	char *stack;            /* lowest usable byte of its stack */
	/* The registry of tasks that have parked (see wait.c): the worker
	 * whose list holds the task, or NULL. */
	herd__worker *reg;
	herd__task *reg_prev, *reg_next;
	herd_scope *owned;      /* scopes it opened and has not closed */
	/* A scope other than its own whose cancellation also ends its
	 * cancellable waits: the one herd_proc_start starts a process in.
	 * Cleared under reg->reg_lock (herd__wait_scope_set, wait.c). */
	_Atomic(herd_scope *) wait_scope;
	int wake_result;        /* written by whoever wins the wake */
	/* Then: arguments of more than 8 bytes. */
	alignas(HERD__CACHELINE) unsigned char argbuf[];
};

/* Task objects come in one size, which holds arguments up to 64 bytes
 * (192 bytes in all, more in sanitizer builds). */
#define HERD__TASK_INLINE 64u
#define HERD__TASK_SIZE (offsetof(struct herd__task, argbuf) + HERD__TASK_INLINE)
#define HERD__TASK_SPAWN_BYTES offsetof(struct herd__task, id)

herd__task *herd__task_alloc(herd__worker *w, size_t argsize);
void herd__task_free(herd__worker *w, herd__task *t);
/* Gives a runnable task that has never run its stack; -ENOMEM. */
int herd__task_start(herd__worker *w, herd__task *t);
/* Gives a task that has never run the stack of `dead`, which has ended,
 * and frees `dead`. */
void herd__task_inherit(herd__worker *w, herd__task *dead, herd__task *t);
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
	struct herd__waiter *prev, *next;
	bool linked;
} herd__waiter;

typedef struct herd__waitq {
	herd__waiter *head, *tail;
} herd__waitq;

#define HERD__NSIG 64    /* signals 1 .. 64 */
#define HERD__CG_POOL 64 /* empty child cgroups kept for reuse */
#define HERD__RUNQ 256u /* slots of a worker's local run queue */

struct herd__worker {
	/* Touched by the owner only (but for stats, read racily). */
	herd__rt *rt;
	unsigned index;
	herd__task *cur;        /* the running task, NULL on g0 */
	herd__ctx g0;           /* the scheduler loop's context */
	herd__task *prev;       /* switched away from; see finish_switch */
	herd__task *handoff;    /* for g0 to run next (see switch_away) */
	bool prev_dead;         /* prev has ended: free it after the switch */
	bool spinning;          /* counted in rt->nspinning */
	bool quiet;             /* readying into its own queue: no wakep */
	uint32_t quiet_readied;
	uint32_t tick;          /* scheduling rounds, for fairness checks */
	_Atomic uint32_t progress; /* tick, read by the monitor */
	_Atomic bool in_syscall; /* in a long system call of herd's own */
	uint32_t next_streak;   /* consecutive runs from runnext */
	uint64_t rand;
	uint64_t id_next, id_end; /* block of task ids */
	herd__cache task_cache;
	herd__cache stack_cache;
	herd__cache scope_cache;
	pthread_t thread;
	void *altstack;
	herd__worker *idle_next; /* rt->idle_list, under rt->idle_lock */
	bool idle;               /* in rt->idle_list */
	/* Tasks that parked on this worker at least once and are alive; walked
	 * by cancellation. reg_lock is a leaf but for herd__ready's locks. */
	herd__mutex reg_lock;
	herd__task *reg_head;
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

struct herd__rt {
	uint64_t serial;         /* tells this runtime from later ones */
	unsigned nworkers;
	herd__worker **workers;
	bool debug;
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
	struct herd__timer **timer_heap;
	size_t timer_n, timer_cap;
	_Atomic int64_t timer_next; /* earliest deadline, INT64_MAX if none */
	/* The poller (poll.c). */
	struct {
		alignas(HERD__CACHELINE) herd__mutex lock;
		int epfd, wakefd;
		/* In the epoll set, so that a timer earlier than the
		 * sleeper's deadline need not wake it. */
		herd__alarm alarm;
		struct herd__pollent **tab; /* by descriptor */
		size_t cap;
		uint32_t gen;
		_Atomic uint32_t waiters;   /* registered waits */
		_Atomic int64_t last;       /* when somebody last polled */
	} poll;
	_Atomic uint32_t teardown; /* worker threads may end (runtime.c) */
	int64_t stall_ns;        /* the monitor's threshold */
	sigset_t sigmask;        /* herd_run's caller's: children get it */
	/* herd_blocking's helper threads (blocking.c). */
	struct {
		alignas(HERD__CACHELINE) herd__mutex lock;
		struct herd__job *head, *tail;
		unsigned nthreads, nidle, max;
		bool stop;
		pthread_t *threads;
		_Atomic uint32_t seq;     /* futex: helpers sleep on it */
	} blk;
	/* The supervisor: herd_run's thread (monitor.c). */
	struct {
		/* Gets it up for a timer nobody else watches. */
		herd__alarm alarm;
		/* Rung at shutdown and by the signal handler (signal.c). */
		herd__bell bell;
		int64_t last_sweep, last_orphans;
	} mon;
	/* Signals (signal.c). */
	struct {
		herd__mutex lock;         /* all but fatal (and signal.c's
					   * saved actions) */
		struct herd__sigreg *regs; /* herd_signal_notify's */
		size_t nregs, cap;
		uint64_t taken;           /* bit sig-1: default action taken */
		uint64_t installed;       /* herd's handler is installed */
		_Atomic int fatal;        /* the signal ending the run, or 0 */
		bool killing;             /* a second one: SIGKILL at once */
		int64_t kill_at;
	} sig;
	/* Orphans (orphan.c), the supervisor's. */
	struct {
		bool leader;              /* herd_run runs on the group leader */
		pid_t *keep;              /* its children from before the run */
		size_t nkeep;
	} orphan;
	pid_t pid;                /* the process the runtime runs in */
	/* Child processes (proc.c). */
	struct {
		alignas(HERD__CACHELINE) herd__mutex lock; /* draining; once */
		struct herd_proc *draining;
		struct herd_proc *live_list; /* started, not finished */
		_Atomic bool ready;       /* herd__proc_once has run */
		_Atomic long nterm;       /* sent SIGTERM, SIGKILL pending */
		_Atomic int null_fd;      /* /dev/null, or -1 */
		_Atomic bool no_clone_pidfd;
		int cg_base;              /* cgroup directory, or -1 */
		_Atomic uint64_t cg_seq;
		_Atomic bool no_clone3, no_into_cgroup;
		_Atomic bool strays;      /* a sweep may find some */
		_Atomic bool vm_shared;   /* a vfork child shared our memory */
		herd__mutex cg_lock;      /* the pool */
		uint64_t cg_pool[HERD__CG_POOL]; /* empty cgroups, by number */
		size_t cg_npool;
	} proc;
	/* The descriptor budget (fd.c). */
	struct {
		alignas(HERD__CACHELINE) herd__mutex lock;
		herd__waitq waitq;          /* tasks waiting for a descriptor */
		_Atomic uint32_t nwaiting;
		_Atomic long open, peak, waits;
		_Atomic uint32_t released;  /* releases so far */
		_Atomic int64_t last_release;
		long limit, limit_at_start;
		bool raised;
		_Atomic int warned;
		/* Which descriptors are herd's: a bitmap in pages of
		 * FD_PAGE_BITS, made on first use, freed with the runtime. */
		_Atomic(_Atomic uint64_t *) *pages;
		size_t npages;
	} fd;
};

extern herd__rt *_Atomic herd__runtime;

/* ------------------------------------------------------------------ */
/* The poller (poll.c)                                                 */
/* ------------------------------------------------------------------ */

/* A wait for a descriptor: a parked task's (on its stack), or a callback's
 * (task NULL; proc.c's pidfds), run by whoever polls, with no lock held. */
typedef struct herd__pollw {
	herd__task *task;
	uint32_t events;        /* HERD_READABLE | HERD_WRITABLE */
	uint32_t result;        /* for a callback: the events ready */
	int fd;
	bool linked;            /* in its entry's list, under poll.lock */
	struct herd__pollw *prev, *next, *cb_next;
	void (*cb)(struct herd__pollw *p, uint32_t ready);
} herd__pollw;

int herd__poll_init(herd__rt *rt);
void herd__poll_fini(herd__rt *rt);
/* Registers wt for fd (poll.lock held). 0, or -errno from epoll_ctl
 * (-EBADF, -EPERM for a regular file), -ENOMEM. */
int herd__poll_attach_locked(herd__rt *rt, int fd, herd__pollw *wt);
/* Unregisters wt if it is still registered (poll.lock held). */
void herd__poll_detach_locked(herd__rt *rt, herd__pollw *wt);
/* Waits for events until deadline (-1: none; 0: do not block), wakes
 * their waiters; returns how many it woke. Any thread. */
int herd__poll_run(herd__rt *rt, int64_t deadline);
/* Wakes a thread blocked in herd__poll_run. */
void herd__poll_interrupt(herd__rt *rt);
/* Makes a thread blocked in herd__poll_run return by `when` at the
 * latest, without waking it before; false if it cannot (no alarm). */
bool herd__poll_wake_by(herd__rt *rt, int64_t when);
/* Whether a busy worker should poll now (someone waits, and nobody has
 * polled for a while). */
bool herd__poll_due(herd__rt *rt);
/* Makes sure an idle worker watches the poller (sched.c). */
void herd__poll_watch(herd__rt *rt);

/* ------------------------------------------------------------------ */
/* Child processes (proc.c, cgroup.c)                                  */
/* ------------------------------------------------------------------ */

/* A child's cgroup (cgroup.c); unused where there is none. */
typedef struct herd__cgroup {
	herd__rt *rt;
	bool used;
	bool empty;             /* nothing lived in it when its child exited */
	int dir_fd;             /* the directory, until the child started */
	int procs_fd;           /* its cgroup.procs, if the child joins itself */
	char name[48];
	uint64_t seq;           /* the n of its name, herd-<pid>-<n> */
	pid_t *pids;            /* recorded before a kill, reaped after */
	size_t npids, cap;
} herd__cgroup;

void herd__cgroup_init(herd__rt *rt);
/* clone3 with a child function (switch-*.S): pid, or -errno. */
int herd__clone3(void *args, size_t size, int (*fn)(void *), void *arg);
void herd__cgroup_fini(herd__rt *rt);
/* Kills what runs in the directories of herd processes that no longer
 * exist, under the cgroup directory base, and removes them (cgroup-stale.c). */
void herd__cgroup_remove_stale(int base);
/* Removes the pooled empty cgroups. */
void herd__cgroup_pool_clear(herd__rt *rt);
/* Makes a cgroup for a new child: 1, or 0 with none (cg->used false). */
int herd__cgroup_make(herd__rt *rt, herd__cgroup *cg);
/* Its cgroup.procs, opened on first use (for clone without
 * CLONE_INTO_CGROUP); -1 if it cannot be. */
int herd__cgroup_procs_fd(herd__cgroup *cg);
/* The child could not be started in it: it is removed, unused. */
void herd__cgroup_abandon(herd__cgroup *cg);
/* The child has joined it (or failed): closes the descriptors. */
void herd__cgroup_started(herd__cgroup *cg);
/* Kills everything in it. */
void herd__cgroup_kill(herd__cgroup *cg);
/* Sends sig to everything in it but the members of process group pgid,
 * which the caller signalled (SIGKILL: herd__cgroup_kill, to all). */
void herd__cgroup_signal(herd__cgroup *cg, int sig, pid_t pgid);
/* Removes it if empty (reaping what came back to us): true when gone. */
bool herd__cgroup_remove(herd__cgroup *cg);

/* Sets the runtime up for children, once: subreaper, cgroups. */
void herd__proc_once(herd__rt *rt);
/* Ends the root scope's processes at the end of herd_run. */
void herd__proc_fini(herd__rt *rt);
/* Ending every process tree, from any thread, without parking: end_all
 * sends SIGTERM (SIGKILL if now) to every tree not ended yet; end_step
 * sends SIGKILL to those whose grace has passed (all, if kill), handles
 * the exits and drains, and returns true while a process is left;
 * end_cleanup then kills strays and removes herd's empty cgroups. */
void herd__proc_end_all(herd__rt *rt, bool now);
bool herd__proc_end_step(herd__rt *rt, bool kill);
void herd__proc_end_cleanup(herd__rt *rt);
void herd__proc_exited(herd_proc *p);
void herd__proc_watch_thread(herd_proc *p);
/* Kills and reaps our children that are in a herd child's cgroup but are
 * not that child: descendants that left their group and were orphaned to
 * us. Returns how many; 0 without cgroups. */
int herd__proc_sweep(herd__rt *rt);
/* SIGKILL to the groups whose grace since SIGTERM has passed. */
void herd__proc_escalate_all(herd__rt *rt);
/* Retries the groups not yet gone. */
void herd__proc_drain_all(herd__rt *rt);
/* SIGTERM to a cancelled scope's processes (its lock held). */
void herd__proc_cancel_locked(herd_proc *list);
/* Ends a closing scope's processes; returns once none is left. */
void herd__proc_scope_end(herd__worker **wp, herd_scope *s);

/* The scope's side (scope.c). */
herd__mutex *herd__scope_lock(herd_scope *s);
herd_proc **herd__scope_procs(herd_scope *s);
bool *herd__scope_had_procs(herd_scope *s); /* under the scope's lock */
/* Whether a task is blocked on ch (chan.c). */
bool herd__chan_busy(herd_chan *ch);

/* ------------------------------------------------------------------ */
/* Descriptors (fd.c)                                                  */
/* ------------------------------------------------------------------ */

int herd__fd_init(herd__rt *rt);
void herd__fd_fini(herd__rt *rt);
/* Counts fd as herd's (created close-on-exec by herd). */
void herd__fd_track(herd__rt *rt, int fd);
/* A creation of descriptors that may wait for some to be released: the
 * count of releases seen before an attempt, and whether it was woken. */
typedef struct herd__fdwait {
	uint32_t gen;
	bool woken;
} herd__fdwait;
/* Before the first attempt. */
void herd__fd_attempt(herd__fdwait *fw);
/* After an attempt failed with errno err: 0 to try again (at once if a
 * descriptor was released since the attempt, else once one is, when err
 * is EMFILE or ENFILE and the deadline allows), else the code to return:
 * -err, HERD_ETIMEDOUT, HERD_ECANCELED (the task's scope or its
 * wait_scope is cancelled). */
int herd__fd_retry(herd__fdwait *fw, int err, int64_t deadline);
/* Closes fd, uncounting it if it is herd's, which releases it to a
 * waiter; _quiet gives back what a failed attempt took, waking nobody. */
int herd__fd_close(herd__rt *rt, int fd);
int herd__fd_close_quiet(herd__rt *rt, int fd);
/* The supervisor's: wakes the first waiter if nothing was released for a
 * while (the program may have closed its own). */
void herd__fd_recheck(herd__rt *rt, int64_t now);

/* The usable size of task stacks. */
static inline size_t herd__stack_size(const herd__rt *rt)
{
	return rt->stacks.size;
}

/* Worker statistics are written by their owner only: a plain
 * read-modify-write is enough, and readers sum them racily. */
static inline void herd__stat_add(_Atomic int64_t *c, int64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, mo_relaxed) + d, mo_relaxed);
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
 * others instead. */
void herd__ready(herd__worker *w, herd__task *t);
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
void herd__batches_free(herd__rt *rt);
void herd__shutdown(herd__rt *rt);
/* Wakes the sleeper, or an idle worker if there is none, to look at the
 * timers; false if it woke nobody. */
bool herd__wake_for_timers(herd__rt *rt);
/* A timer at `when` became the earliest: makes sure somebody fires it. */
void herd__timer_kick(herd__rt *rt, int64_t when);
/* For the monitor, while no worker sleeps on the timers: wakes an idle
 * worker for a late timer, or sets the monitor's alarm for it. */
void herd__timers_unwatched(herd__rt *rt, int64_t now);
/* Gets the monitor up by `when` (blocking.c). */
void herd__monitor_wake_by(herd__rt *rt, int64_t when);
/* Whether tasks wait in w's queue; moves them all to the global queue and
 * wakes a worker for them (the monitor, for a stuck worker). */
bool herd__sched_busy(herd__worker *w);
void herd__sched_rescue(herd__worker *w);
/* The helper threads (blocking.c). */
void herd__blocking_fini(herd__rt *rt);
/* Set on helper threads, for the signal handler (async-signal-safe). */
extern __thread bool herd__tls_helper __attribute__((tls_model("initial-exec")));
/* The supervisor (monitor.c): runs on herd_run's thread until the run
 * ends; herd__monitor_ring gets it up at once. */
void herd__supervise(herd__rt *rt);
void herd__monitor_ring(herd__rt *rt);
/* Signals and exit() (signal.c). */
void herd__signal_start(herd__rt *rt);
/* Restores the actions; returns a taken signal that arrived too late to
 * be dispatched (the caller dies of it), else 0. */
int herd__signal_fini(herd__rt *rt);
/* Hands the signals that arrived on, and runs a fatal one's end: ends the
 * process with the signal once the trees are gone. Supervisor only. */
void herd__signal_dispatch(herd__rt *rt, int64_t now);
/* Whether a fatal signal is ending the run. */
bool herd__signal_ending(herd__rt *rt);
HERD__NORETURN void herd__signal_die(int sig);
/* The atexit handler, registered once; the lock herd_run holds while it
 * takes a runtime down. */
void herd__exit_watch(void);
void herd__exit_lock(void);
void herd__exit_unlock(void);
/* Orphans (orphan.c), from the supervisor's thread: init remembers its
 * children, reap reaps the exited ones it gained since; how many. */
void herd__orphans_init(herd__rt *rt);
void herd__orphans_fini(herd__rt *rt);
int herd__orphans_reap(herd__rt *rt);
uint64_t herd__next_id(herd__worker *w);

/* ------------------------------------------------------------------ */
/* Waiting (wait.c) and timers (timer.c)                               */
/* ------------------------------------------------------------------ */


static inline void herd__waitq_push(herd__waitq *q, herd__waiter *wt)
{
	wt->next = NULL;
	wt->prev = q->tail;
	if (q->tail)
		q->tail->next = wt;
	else
		q->head = wt;
	q->tail = wt;
	wt->linked = true;
}

/* Unqueues wt if it is queued. */
static inline void herd__waitq_remove(herd__waitq *q, herd__waiter *wt)
{
	if (!wt->linked)
		return;
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		q->head = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	else
		q->tail = wt->prev;
	wt->linked = false;
}
static inline void herd__waitq_push_front(herd__waitq *q, herd__waiter *wt)
{
	wt->prev = NULL;
	wt->next = q->head;
	if (q->head)
		q->head->prev = wt;
	else
		q->tail = wt;
	q->head = wt;
	wt->linked = true;
}

/* Wakes every waiter with result 0 (caller holds the object's lock) and
 * unqueues it; returns how many. A waiter already claimed by its timer or
 * by cancellation stays queued: it unqueues itself. */
unsigned herd__waitq_wake_all(herd__waitq *q);
/* The same for the first waiter that can be claimed; true if one was. */
bool herd__waitq_wake_one(herd__waitq *q);
/* The same for cancellation: only a cancellable wait is claimed. */
bool herd__wake_canceled(herd__task *t);
/* The two halves of a wake, for wakers that must know they won before they
 * touch the waiter (channels copy a value into or out of it): claim, then,
 * if it returned true, finish with the result. */
bool herd__wait_claim(herd__task *t);
void herd__wait_finish(herd__task *t, int result);
/* A timer's wake: HERD_ETIMEDOUT, readied behind the runnable tasks, so
 * that tasks woken by timers run in deadline order. */
bool herd__wake_timeout(herd__task *t);
/*
 * herd__wait in two halves, for a task queued under several locks (select):
 * prepare makes the wait claimable (call it with the locks held, before it
 * is findable by a waker that does not hold one of them); park releases
 * nothing, and does the rest.
 */
void herd__wait_prepare(herd__worker *w, herd__task *t, bool cancellable);
int herd__wait_park(herd__worker **wp, int64_t deadline, bool cancellable);
/*
 * Parks the calling task, which is already findable by its wakers (queued
 * under `lock`, which this releases). Returns the wake's result: 0, or
 * HERD_ETIMEDOUT at `deadline`, or HERD_ECANCELED if the task's scope is
 * cancelled and `cancellable`. *wp is updated to the worker it resumes on.
 */
int herd__wait(herd__worker **wp, herd__mutex *lock, int64_t deadline,
	       bool cancellable);
/* Wakes every parked task whose scope is cancelled (herd_scope_cancel). */
void herd__cancel_parked(herd__rt *rt);
/* Sets or clears t's wait_scope (the running task's own). */
void herd__wait_scope_set(herd__task *t, herd_scope *s);
/* Removes an ending task from the registry of parked tasks. */
void herd__registry_leave(herd__task *t);
/* The worker and task of the caller, or -EPERM outside a task. */
int herd__current(herd__worker **wp, herd__task **tp);

/* A deadline in the timer heap: a parked task's (task set), or, with task
 * NULL, the first member of a public herd_timer. */
typedef struct herd__timer {
	int64_t when;
	size_t index;       /* in the heap; SIZE_MAX when not in it */
	herd__task *task;
} herd__timer;

int herd__timer_add(herd__rt *rt, herd__timer *tm);
void herd__timer_del(herd__rt *rt, herd__timer *tm);
/* Fires the timers due at `now`, as many as w's run queue has room for;
 * returns how many it fired. */
int herd__timers_run(herd__worker *w, int64_t now);
void herd__timers_fini(herd__rt *rt);

/* ------------------------------------------------------------------ */
/* Channels (chan.c), shared with select.c and timer.c                 */
/* ------------------------------------------------------------------ */

/* A task blocked in a channel operation: in the channel's sendq or recvq,
 * on the task's stack. A select queues one per case. */
typedef struct herd__chan_waiter {
	herd__waiter base;      /* first: a queue's herd__waiter is one */
	void *elem;             /* the value to send, or where to receive */
	uint32_t index;         /* the select case; 0 for a plain call */
	bool closed;            /* set by the waker: woken by a close */
} herd__chan_waiter;

/* One cache line; the ring of cap * elem_size bytes follows it, from the
 * next line on, so that writing a value does not evict the channel's state
 * from the other side's cache. */
struct herd_chan {
	herd__mutex lock;       /* everything below but the constants */
	bool closed;
	uint32_t elem_size;     /* constant */
	uint32_t cap;           /* constant */
	uint32_t count;         /* values buffered */
	uint32_t recvx, sendx;  /* buffer slots to receive from, send to */
	herd__waitq recvq, sendq;
} __attribute__((aligned(HERD__CACHELINE)));

/* What the *_locked operations return when they would have to wait. */
#define HERD__WOULD_BLOCK 1

/* With ch->lock held: sends or receives if that can be done at once.
 * Returns 0, HERD_ECLOSED, or HERD__WOULD_BLOCK. */
int herd__chan_send_locked(herd_chan *ch, const void *elem);
int herd__chan_recv_locked(herd_chan *ch, void *elem);
/* With ch->lock held: drops every buffered value (a timer's reset). */
void herd__chan_drain_locked(herd_chan *ch);

/* ------------------------------------------------------------------ */
/* Scopes (scope.c) and debug checks (debug.c)                         */
/* ------------------------------------------------------------------ */

herd_scope *herd__scope_root_new(herd__rt *rt);
void herd__scope_root_free(herd_scope *s);
/* Adds a new task to a scope; HERD_ECANCELED if it is cancelled. */
int herd__scope_attach(herd_scope *s, herd__task *t);
/* Removes an ending task; closes the scopes it still owns first. */
void herd__scope_detach(herd__worker **wp, herd__task *t);
/* The first member of every scope: what the hot paths read without a call.
 * `canceled` goes from 0 to 1 once (see scope.c). */
typedef struct herd__scope_head {
	_Atomic uint32_t canceled;
} herd__scope_head;

static inline bool herd__scope_canceled(const herd_scope *s)
{
	return atomic_load_explicit(&((const herd__scope_head *)(const void *)s)->canceled,
				    mo_seq_cst) != 0;
}
void herd__scope_cache_drain(herd__worker *w);
void herd__scope_depot_free(herd__rt *rt);

void herd__debug_check_spawn(herd__worker *w, const char *site, void *ret,
			     const void *arg, size_t size);
void herd__debug_fini(void);

#endif /* HERD_INTERNAL_H */
