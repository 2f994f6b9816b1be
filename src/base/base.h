/*
 * base.h - what every layer of libherd shares: the build environment,
 * atomics' short names, checked invariants, the one intrusive list, and the
 * futex mutex with its lock ranks. Nothing here knows of tasks.
 *
 * The layers, lowest first; a file includes its own layer's header, which
 * includes the ones below, never one above:
 *   base/  this header, lock ranks, error names
 *   os/    the platform seam: futexes, memory, files, alarms, the poller's
 *          backend (epoll), context switch and clone3 in assembly
 *   core/  tasks, stacks, object caches, the scheduler, parking, timers,
 *          the scopes that own tasks, spawn checks
 *   sync/  wait groups, channels, select, channel timers, mutexes and
 *          the other task-aware locks
 *   io/    the poller, the descriptor budget, I/O calls, helper threads
 *   proc/  child processes: start, reap, end; cgroups; orphans
 *   run/   herd_run and its supervisor: the monitor, signals, exit()
 * A lower layer reaches a higher one only through hooks the higher one
 * installs (core.h: herd__netpoll, herd__scope_hooks).
 *
 * Names: internal non-static symbols are herd__*; everything here is hidden
 * (the library is built with -fvisibility=hidden; HERD_API marks exports).
 */
#ifndef HERD_BASE_H
#define HERD_BASE_H

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

/* Checked builds (Debug, and every sanitizer build) assert the invariants
 * the file tops state and check lock ranks; others compile them out. */
#if defined(HERD_DEBUG_BUILD) || HERD_ASAN || HERD_TSAN
#define HERD_CHECKED 1
#else
#define HERD_CHECKED 0
#endif

#define herd__likely(x) __builtin_expect(!!(x), 1)
#define herd__unlikely(x) __builtin_expect(!!(x), 0)
#define HERD__CACHELINE 64
#define HERD__NORETURN __attribute__((noreturn))
#define herd__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Short names for the memory orders, used everywhere in src/. */
#define mo_relaxed memory_order_relaxed
#define mo_acquire memory_order_acquire
#define mo_release memory_order_release
#define mo_acq_rel memory_order_acq_rel
#define mo_seq_cst memory_order_seq_cst

/* splitmix64's finalizer: a well-spread, never zero, state from a seed. */
static inline uint64_t herd__seed_mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return (x ^ (x >> 31)) | 1;
}

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
/* Checked invariants                                                 */
/* ------------------------------------------------------------------ */

/* Reports a broken invariant on stderr and aborts (lockrank.c). */
HERD__NORETURN void herd__assert_fail(const char *expr, const char *file, int line);

#if HERD_CHECKED
#define HERD__ASSERT(cond) \
	(herd__likely(cond) ? (void)0 : herd__assert_fail(#cond, __FILE__, __LINE__))
#else
#define HERD__ASSERT(cond) ((void)0)
#endif

/* ------------------------------------------------------------------ */
/* The intrusive list: links inside the listed objects, a head and a   */
/* tail, NULL-terminated, so that a zeroed list is empty.              */
/* ------------------------------------------------------------------ */

typedef struct herd__link {
	struct herd__link *prev, *next;
} herd__link;

typedef struct herd__list {
	herd__link *head, *tail;
} herd__list;

static inline bool herd__list_empty(const herd__list *l)
{
	return l->head == NULL;
}

static inline void herd__list_push_back(herd__list *l, herd__link *k)
{
	k->next = NULL;
	k->prev = l->tail;
	if (l->tail)
		l->tail->next = k;
	else
		l->head = k;
	l->tail = k;
}

static inline void herd__list_push_front(herd__list *l, herd__link *k)
{
	k->prev = NULL;
	k->next = l->head;
	if (l->head)
		l->head->prev = k;
	else
		l->tail = k;
	l->head = k;
}

/* k must be in l. */
static inline void herd__list_remove(herd__list *l, herd__link *k)
{
	HERD__ASSERT(k->prev ? k->prev->next == k : l->head == k);
	HERD__ASSERT(k->next ? k->next->prev == k : l->tail == k);
	if (k->prev)
		k->prev->next = k->next;
	else
		l->head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		l->tail = k->prev;
	k->prev = k->next = NULL;
}

/* Iterates `it` (a type *) over the objects linked in l by their member
 * `member`; the body must not unlink the current one. */
#define herd__list_each(it, l, type, member)                                  \
	for (herd__link *it##_link_ = (l)->head;                               \
	     it##_link_ && ((it) = herd__container_of(it##_link_, type, member), 1); \
	     it##_link_ = it##_link_->next)

static inline herd__link *herd__list_pop_front(herd__list *l)
{
	herd__link *k = l->head;
	if (k)
		herd__list_remove(l, k);
	return k;
}

/* ------------------------------------------------------------------ */
/* Futexes (os/) and the mutex built on them                          */
/* ------------------------------------------------------------------ */

/* Waits while *addr == val, until woken or the monotonic deadline (-1: none). */
void herd__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline);
void herd__futex_wake(_Atomic uint32_t *addr, int n);

/*
 * Lock ranks, from the lock order (as Go's lockrank.go): a thread may take
 * a lock only while every lock it holds ranks lower. Two locks of one rank
 * may be held together only where the rank says so (HERD__RANK_MULTI):
 * scopes, parent before child; channels, in order of address (select).
 * Checked builds check every lock and that no lock is held across a
 * context switch; other builds store no rank.
 */
enum herd__rank {
	HERD__RANK_NONE = 0,     /* never initialised: a checked lock fails */
	HERD__RANK_SCOPE,        /* scopes, parent before child (multi) */
	HERD__RANK_SIGNALS,      /* signal.c's registrations */
	HERD__RANK_PROC_LISTS,   /* the runtime's process lists, draining */
	HERD__RANK_PROC,         /* a process's own lock */
	HERD__RANK_CGROUP_POOL,  /* the pool of empty cgroups */
	HERD__RANK_OBJECT,       /* wait groups, channels (multi, by address),
				  * the helper queue */
	HERD__RANK_POLL,         /* the poller */
	HERD__RANK_FD,           /* the descriptor budget */
	HERD__RANK_TIMERS,       /* the timer heap */
	HERD__RANK_REGISTRY,     /* a worker's registry of parked tasks */
	HERD__RANK_STACKS,       /* the stacks' slabs */
	HERD__RANK_DEPOT,        /* a depot of magazines */
	HERD__RANK_DEBUG,        /* debug.c's table of spawn sites */
	HERD__RANK_LEAKS,        /* leak.c's table of live objects */
	HERD__RANK_LEAF,         /* run queues, idle workers, stackless
				  * tasks, an alarm: nothing after them */
	HERD__RANK_COUNT
};
#define HERD__RANK_MULTI ((1u << HERD__RANK_SCOPE) | (1u << HERD__RANK_OBJECT))

/* A futex lock for short critical sections (Drepper's mutex2, with a
 * brief spin). state: 0 free, 1 locked, 2 locked with sleepers. */
typedef struct herd__mutex {
	_Atomic uint32_t state;
#if HERD_CHECKED
	uint8_t rank;
#endif
} herd__mutex;

#if HERD_CHECKED
#define HERD__MUTEX_INITIALIZER(r) {.state = 0, .rank = (r)}
#else
#define HERD__MUTEX_INITIALIZER(r) {.state = 0}
#endif

static inline void herd__mutex_init(herd__mutex *m, enum herd__rank rank)
{
	atomic_init(&m->state, 0);
#if HERD_CHECKED
	m->rank = (uint8_t)rank;
#else
	(void)rank;
#endif
}

void herd__mutex_lock_slow(herd__mutex *m);
#if HERD_CHECKED
/* The checks of taking and releasing m, whose rank is `rank`. */
void herd__rank_acquire_as(const herd__mutex *m, unsigned rank);
void herd__rank_release_as(const herd__mutex *m, unsigned rank);
static inline void herd__rank_acquire(const herd__mutex *m)
{
	herd__rank_acquire_as(m, m->rank);
}
static inline void herd__rank_release(const herd__mutex *m)
{
	herd__rank_release_as(m, m->rank);
}
/* Asserts that the calling thread holds no herd lock (before a switch). */
void herd__rank_none_held(void);
#else
static inline void herd__rank_acquire_as(const herd__mutex *m, unsigned rank)
{
	(void)m;
	(void)rank;
}
static inline void herd__rank_release_as(const herd__mutex *m, unsigned rank)
{
	(void)m;
	(void)rank;
}
static inline void herd__rank_acquire(const herd__mutex *m) { (void)m; }
static inline void herd__rank_release(const herd__mutex *m) { (void)m; }
static inline void herd__rank_none_held(void) {}
#endif

static inline void herd__mutex_lock(herd__mutex *m)
{
	uint32_t c = 0;
	herd__rank_acquire(m);
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
	herd__rank_release(m);
	if (herd__unlikely(atomic_exchange_explicit(&m->state, 0, mo_release) == 2))
		herd__futex_wake(&m->state, 1);
}

/*
 * The lock of an object that lives in the program's memory (herd_wg,
 * herd_mutex and the other value types of herd.h), which must work from
 * all-zero bytes, static storage and calloc included. Its rank,
 * HERD__RANK_OBJECT, is implied by these two calls rather than stored in
 * the lock, so a zeroed lock is a valid, free one; herd__mutex_lock would
 * refuse it in checked builds as never initialised.
 */
static inline void herd__objlock(herd__mutex *m)
{
	uint32_t c = 0;
	herd__rank_acquire_as(m, HERD__RANK_OBJECT);
	if (herd__likely(atomic_compare_exchange_strong_explicit(
		    &m->state, &c, 1, mo_acquire, mo_relaxed)))
		return;
	herd__mutex_lock_slow(m);
}

static inline void herd__objunlock(herd__mutex *m)
{
	herd__rank_release_as(m, HERD__RANK_OBJECT);
	if (herd__unlikely(atomic_exchange_explicit(&m->state, 0, mo_release) == 2))
		herd__futex_wake(&m->state, 1);
}

/* Worker statistics are written by their owner only: a plain
 * read-modify-write is enough, and readers sum them racily. */
static inline void herd__stat_add(_Atomic int64_t *c, int64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, mo_relaxed) + d, mo_relaxed);
}

#endif /* HERD_BASE_H */
