/*
 * debug.h - the core layer's diagnostics, for the layers above: what a
 * parked task waits on (read by run/'s task dump and deadlock check), the
 * spawn check (debug.c) and the registry of live objects for the leak
 * listing at exit (leak.c). Included by core.h, after herd__task.
 */
#ifndef HERD_CORE_DEBUG_H
#define HERD_CORE_DEBUG_H

/* herd__task.why: what a parked task waits on. */
enum {
	HERD__WHY_NONE = 0,
	HERD__WHY_CHAN_SEND,    /* obj: the channel */
	HERD__WHY_CHAN_RECV,    /* obj: the channel */
	HERD__WHY_SELECT,       /* obj: NULL (also a select with no case) */
	HERD__WHY_SLEEP,        /* herd_sleep */
	HERD__WHY_FD,           /* obj: the descriptor, as (void *)(intptr_t)fd */
	HERD__WHY_FD_BUDGET,    /* a free descriptor of the budget */
	HERD__WHY_BLOCKING,     /* a helper thread's herd_blocking call */
	HERD__WHY_PROC,         /* obj: the process (herd_proc_wait) */
	HERD__WHY_PROC_END,     /* obj: NULL (a closing scope ends its processes) */
	HERD__WHY_SCOPE_WAIT,   /* obj: the scope (herd_scope_wait) */
	HERD__WHY_SCOPE_CLOSE,  /* obj: the scope */
	HERD__WHY_SCOPE_SLOT,   /* obj: the limited scope */
	HERD__WHY_WG,           /* obj: the wait group */
	HERD__WHY_MUTEX,        /* obj: the mutex */
	HERD__WHY_RWMUTEX,      /* obj: the read-write mutex */
	HERD__WHY_COND,         /* obj: the condition */
	HERD__WHY_SEM,          /* obj: the semaphore */
	HERD__WHY_ONCE,         /* obj: the once */
	HERD__WHY_COUNT
};

/*
 * Says what the running task t is about to wait on; the blocking call
 * calls it before the task becomes findable by its wakers (checked builds
 * assert that every park says why). Costs three stores to the task's own
 * lines.
 */
static inline void herd__waits_on(herd__task *t, unsigned why, const void *obj)
{
	atomic_store_explicit(&t->why, (uint8_t)why, mo_relaxed);
	atomic_store_explicit(&t->wait_obj, obj, mo_relaxed);
}

/* The spawn check (debug.c): warns when a spawn's argument holds a
 * pointer into the spawner's stack (the loop-variable bug). */
void herd__debug_check_spawn(herd__worker *w, const char *site, void *ret,
			     const void *arg, size_t size);
void herd__debug_fini(void);

/*
 * Leaks at exit (leak.c): with debug checks on, what the program makes is
 * registered from herd_run's start to its end, and what is left is listed
 * when it returns. A public make function registers with HERD__LEAK_MADE
 * (the return address is the program's call: the macro must expand in the
 * public function itself), its free function unregisters with
 * HERD__LEAK_FREED before the memory goes; an object herd makes for itself
 * through a public make function is unregistered at once by its maker.
 */
enum herd__leak_kind {
	HERD__LEAK_CHANNEL,     /* a, b: element size, capacity */
	HERD__LEAK_TIMER,       /* a: period (0: one-shot) */
	HERD__LEAK_PROCESS,     /* a: pid */
	HERD__LEAK_WG,
	HERD__LEAK_FD,          /* a: the descriptor */
};
extern _Atomic bool herd__leak_on;
static inline bool herd__leak_tracking(void)
{
	return herd__unlikely(atomic_load_explicit(&herd__leak_on, mo_relaxed));
}
void herd__leak_track(enum herd__leak_kind kind, const void *obj, const void *pc,
		      int64_t a, int64_t b);
void herd__leak_untrack(const void *obj);
/* Descriptors, keyed apart from objects; `what`: a static string. */
void herd__leak_track_fd(int fd, const void *pc, const char *what);
void herd__leak_untrack_fd(int fd);
void herd__leak_start(void);
/* Turns tracking off, lists what is left on stderr, and empties the table. */
void herd__leak_report(void);
#define HERD__LEAK_MADE(kind, obj, a, b)                                      \
	(herd__leak_tracking() ? herd__leak_track((kind), (obj),               \
			__builtin_return_address(0), (a), (b)) : (void)0)
#define HERD__LEAK_FREED(obj) \
	(herd__leak_tracking() ? herd__leak_untrack(obj) : (void)0)

#endif /* HERD_CORE_DEBUG_H */
