/*
 * runtime.c - starting and stopping the runtime: configuration, worker
 * threads, the first task, statistics.
 *
 * One runtime runs at a time per process; herd__runtime points to it while
 * it runs (set by a CAS, so a second herd_run gets -EBUSY). herd_run starts
 * the workers (one thread each), queues the first task, and then its own
 * thread becomes the supervisor (monitor.c) until the root scope empties
 * (scope.c calls herd__shutdown). It then ends the root scope's processes,
 * joins the workers and, with debug checks on, lists what the program left
 * alive (core/leak.c), then frees everything. With HERD_RUN_CANCEL_ON_RETURN,
 * the first task runs the program's function in a wrapper that cancels the
 * root scope when it returns, before the task ends (and so before it
 * closes the scopes it left open, which would wait for their tasks).
 *
 * Worker threads keep the caller's signal mask: a child a task forks by
 * itself (system(), popen()) gets the mask it would have got from the
 * caller. The kernel gives a process's signals to its main thread when
 * that thread can take them, so when the main thread called herd_run,
 * handlers run there, in the supervisor, not in a task (signal.c).
 *
 * Worker threads outlive their scheduler loops until herd_run has ended
 * the root scope's processes (a child's parent-death signal follows the
 * thread that started it): they wait on the `teardown` futex, stored with
 * release after that work; a worker that finds no process left when its
 * loop ends (the usual case) ends at once.
 *
 * No locks of its own: setup and teardown happen while no other worker
 * runs; the exit lock (signal.c) keeps the atexit handler off a runtime
 * being freed. Statistics are read racily from the workers' own counters.
 */
#include "run/run.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#if HERD_TSAN
#include <sanitizer/tsan_interface.h>
#endif

#define MAX_WORKERS 1024u
#define STACK_MIN (16u * 1024)
#define STACK_MAX ((size_t)1 << 30)
#define STACK_DEFAULT (64u * 1024)

#define STALL_MIN HERD_MSEC
#define STALL_DEFAULT (10 * HERD_MSEC)
#define BLOCKING_MAX 1024u
#define BLOCKING_DEFAULT 64u

struct settings {
	unsigned workers;
	size_t stack_size;
	bool debug;
	int guard;
	int64_t stall_ns;
	unsigned blocking_threads;
	unsigned flags;
	uint64_t seed;
	const char *trace;      /* the trace file, or NULL */
	bool trace_env;         /* it came from HERD_TRACE */
};

#define RUN_FLAGS (HERD_RUN_CANCEL_ON_RETURN | HERD_RUN_NO_DEADLOCK_CHECK | \
		   HERD_RUN_SIGQUIT_DUMP) /* every flag known */

static void env_warn(const char *name, const char *value, const char *want)
{
	fprintf(stderr, "herd: ignoring %s=%s: %s\n", name, value, want);
}

/* Parses "65536", "64K", "1m"...; 0 if it is not such a size. */
static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *s == '-')
		return 0;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end || v > (STACK_MAX >> shift))
		return 0;
	return (size_t)v << shift;
}

static void settings_from_env(struct settings *st)
{
	const char *v;
	if ((v = getenv("HERD_WORKERS")) && *v) {
		char *end;
		long n = strtol(v, &end, 10);
		if (*end || n < 1 || n > (long)MAX_WORKERS)
			env_warn("HERD_WORKERS", v, "expected a number of workers from 1 to 1024");
		else
			st->workers = (unsigned)n;
	}
	if ((v = getenv("HERD_STACK_SIZE")) && *v) {
		size_t n = parse_size(v);
		if (n < STACK_MIN || n > STACK_MAX)
			env_warn("HERD_STACK_SIZE", v, "expected a size from 16K to 1G");
		else
			st->stack_size = n;
	}
	if ((v = getenv("HERD_DEBUG")) && *v) {
		if (strcmp(v, "0") && strcmp(v, "1"))
			env_warn("HERD_DEBUG", v, "expected 0 or 1");
		else
			st->debug = *v == '1';
	}
	if ((v = getenv("HERD_STALL_MS")) && *v) {
		char *end;
		long n = strtol(v, &end, 10);
		if (*end || n < 1 || n > 3600 * 1000)
			env_warn("HERD_STALL_MS", v, "expected milliseconds from 1 to 3600000");
		else
			st->stall_ns = n * HERD_MSEC;
	}
	if ((v = getenv("HERD_BLOCKING_THREADS")) && *v) {
		char *end;
		long n = strtol(v, &end, 10);
		if (*end || n < 1 || n > (long)BLOCKING_MAX)
			env_warn("HERD_BLOCKING_THREADS", v, "expected a number from 1 to 1024");
		else
			st->blocking_threads = (unsigned)n;
	}
	if ((v = getenv("HERD_SEED")) && *v) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(v, &end, 10);
		if (*end || errno || *v == '-')
			env_warn("HERD_SEED", v, "expected a number from 0 to 18446744073709551615");
		else
			st->seed = n;
	}
	if ((v = getenv("HERD_TRACE")) && *v) {
		st->trace = v;
		st->trace_env = true;
	}
	if ((v = getenv("HERD_GUARD")) && *v) {
		if (!strcasecmp(v, "madvise"))
			st->guard = HERD_GUARD_MADVISE;
		else if (!strcasecmp(v, "mprotect"))
			st->guard = HERD_GUARD_MPROTECT;
		else if (!strcasecmp(v, "canary"))
			st->guard = HERD_GUARD_CANARY;
		else
			env_warn("HERD_GUARD", v, "expected madvise, mprotect or canary");
	}
}

static int settings_get(const herd_config *cfg, struct settings *st)
{
	size_t page = herd__os_page_size();
	st->workers = (unsigned)herd__os_ncpu();
	if (st->workers > MAX_WORKERS)
		st->workers = MAX_WORKERS;
	st->stack_size = STACK_DEFAULT;
#ifdef HERD_DEBUG_BUILD
	st->debug = true;
#else
	st->debug = false;
#endif
	st->guard = HERD_GUARD_MADVISE;
	st->stall_ns = STALL_DEFAULT;
	st->blocking_threads = BLOCKING_DEFAULT;
	st->flags = 0;
	st->seed = herd__os_random();
	st->trace = NULL;
	st->trace_env = false;
	settings_from_env(st);
	if (cfg) {
		if (cfg->workers > MAX_WORKERS ||
		    (cfg->stack_size && (cfg->stack_size < STACK_MIN ||
					 cfg->stack_size > STACK_MAX)) ||
		    cfg->debug < HERD_DEBUG_OFF || cfg->debug > HERD_DEBUG_ON ||
		    (cfg->stall_ns && cfg->stall_ns < STALL_MIN) ||
		    cfg->blocking_threads > BLOCKING_MAX || (cfg->flags & ~RUN_FLAGS))
			return -EINVAL;
		st->flags = cfg->flags; /* never from the environment: they
					 * change what the program means */
		if (cfg->stall_ns)
			st->stall_ns = cfg->stall_ns;
		if (cfg->blocking_threads)
			st->blocking_threads = cfg->blocking_threads;
		if (cfg->workers)
			st->workers = cfg->workers;
		if (cfg->stack_size)
			st->stack_size = cfg->stack_size;
		if (cfg->debug != HERD_DEBUG_DEFAULT)
			st->debug = cfg->debug == HERD_DEBUG_ON;
		if (cfg->trace) {
			st->trace = cfg->trace;
			st->trace_env = false;
		}
	}
	st->stack_size = (st->stack_size + page - 1) & ~(page - 1);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Workers                                                            */
/* ------------------------------------------------------------------ */

/* The scheduler loop's own context: the thread's stack, for sanitizers. */
static void g0_init(herd__worker *w)
{
	pthread_attr_t attr;
	void *addr = NULL;
	size_t size = 0;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstack(&attr, &addr, &size);
		pthread_attr_destroy(&attr);
	}
#if HERD_ASAN
	w->g0.stack_lo = addr;
	w->g0.stack_size = size;
#endif
	(void)addr;
	(void)size;
#if HERD_TSAN
	w->g0.tsan_fiber = __tsan_get_current_fiber();
#endif
}

static void worker_run(herd__worker *w)
{
	herd__self_set(w);
	atomic_store_explicit(&w->tid, herd__os_tid(), mo_relaxed);
	g0_init(w);
	herd__altstack_install(w); /* without it, overflows are plain SIGSEGVs */
	herd__worker_loop(w);
	herd__stack_cache_drain(w);
	herd__task_cache_drain(w);
	herd__scope_cache_drain(w);
	herd__altstack_remove(w);
	herd__self_set(NULL);
}

static void *worker_thread(void *arg)
{
	herd__worker *w = arg;
	char name[16];
	snprintf(name, sizeof name, "herd-%u", w->index);
	herd__os_set_thread_name(name);
	worker_run(w);
	/* The thread outlives its loop until herd_run has ended the root
	 * scope's processes: a child's parent-death signal follows the
	 * thread that started it. With none left, it ends now (no task runs
	 * any more to start one), and herd_run's join waits for nobody. */
	if (herd__proc_worker_end(w->rt))
		return NULL;
	while (!atomic_load_explicit(&w->rt->teardown, mo_acquire))
		herd__futex_wait(&w->rt->teardown, 0, -1);
	return NULL;
}

/* Lets the worker threads end, and joins them. */
static void join_workers(herd__rt *rt, unsigned started)
{
	atomic_store_explicit(&rt->teardown, 1, mo_release);
	herd__futex_wake(&rt->teardown, INT32_MAX);
	for (unsigned i = 0; i < started; i++)
		pthread_join(rt->workers[i]->thread, NULL);
}

static void rt_free(herd__rt *rt)
{
	if (rt->workers)
		for (unsigned i = 0; i < rt->nworkers; i++)
			free(rt->workers[i]);
	free(rt->workers);
	herd__stacks_fini(rt);
	herd__task_depot_free(rt);
	herd__scope_depot_free(rt);
	herd__batches_free(rt);
	herd__timers_fini(rt);
	herd__poll_fini(rt);
	herd__alarm_fini(&rt->mon.alarm);
	herd__bell_fini(&rt->mon.bell);
	herd__fd_fini(rt);
	herd__scope_root_free(rt->root);
	free(rt);
}

/* A new runtime, or NULL with *err: -ENOMEM, or the poller's -errno (a
 * full descriptor table gives -EMFILE, not a misleading -ENOMEM). */
static herd__rt *rt_new(const struct settings *st, int *err)
{
	*err = -ENOMEM;
	/* The layers' states in one block, the core's first (rt_free frees
	 * it through rt). */
	struct rt_block {
		herd__rt rt;
		struct herd__io_rt io;
		struct herd__proc_rt proc;
		struct herd__run_rt run;
	} *b;
	if (posix_memalign((void **)&b, HERD__CACHELINE, sizeof *b))
		return NULL;
	memset(b, 0, sizeof *b);
	herd__rt *rt = &b->rt;
	rt->io = &b->io;
	rt->proc = &b->proc;
	rt->run = &b->run;
	herd__mutex_init(&rt->gq_lock, HERD__RANK_LEAF);
	herd__mutex_init(&rt->idle_lock, HERD__RANK_LEAF);
	herd__mutex_init(&rt->stackless_lock, HERD__RANK_LEAF);
	herd__mutex_init(&rt->task_depot.lock, HERD__RANK_DEPOT);
	herd__mutex_init(&rt->scope_depot.lock, HERD__RANK_DEPOT);
	herd__mutex_init(&rt->timer_lock, HERD__RANK_TIMERS);
	herd__mutex_init(&rt->io->poll.lock, HERD__RANK_POLL);
	herd__mutex_init(&rt->io->blk.lock, HERD__RANK_OBJECT);
	herd__mutex_init(&rt->io->fd.lock, HERD__RANK_FD);
	herd__mutex_init(&rt->proc->lock, HERD__RANK_PROC_LISTS);
	herd__mutex_init(&rt->proc->cg_lock, HERD__RANK_CGROUP_POOL);
	herd__mutex_init(&rt->run->sig.lock, HERD__RANK_SIGNALS);
	static _Atomic uint64_t serials;
	rt->serial = atomic_fetch_add(&serials, 1) + 1;
	rt->nworkers = st->workers;
	rt->debug = st->debug;
	rt->stall_ns = st->stall_ns;
	rt->io->blk.max = st->blocking_threads;
	atomic_init(&rt->id_block, 1);
	atomic_init(&rt->timer_next, INT64_MAX);
	herd__ctx_capture_fp(rt);
	herd__stacks_init(rt, st->stack_size, st->guard);
	rt->workers = calloc(st->workers, sizeof *rt->workers);
	rt->root = herd__scope_root_new(rt);
	rt->io->poll.os.fd = rt->io->poll.os.wakefd = -1;
	rt->io->poll.os.alarm.fd = rt->mon.alarm.fd = rt->mon.bell.fd = -1;
	rt->pid = getpid();
	rt->start_ns = herd_now();
	rt->seed = st->seed;
	rt->proc->cg_base = -1;
	atomic_init(&rt->proc->null_fd, -1);
	int rc = !rt->workers || !rt->root ? -ENOMEM : herd__poll_init(rt);
	if (rc) {
		*err = rc;
		rt_free(rt);
		return NULL;
	}
	for (unsigned i = 0; i < st->workers; i++) {
		herd__worker *w;
		if (posix_memalign((void **)&w, HERD__CACHELINE, sizeof *w)) {
			rt_free(rt);
			return NULL;
		}
		memset(w, 0, sizeof *w);
		herd__mutex_init(&w->reg_lock, HERD__RANK_REGISTRY);
		w->rt = rt;
		w->index = i;
		w->rand = herd__seed_mix(rt->seed + i + 1);
		w->steal_rand = i + 1;
		w->alone = st->workers == 1;
		rt->workers[i] = w;
	}
	return rt;
}

/* Starts the workers (with the caller's signal mask, so that what a task
 * forks by itself gets the mask it would have got from the caller); on
 * failure, stops those already started. */
static int start_threads(herd__rt *rt)
{
	unsigned started = 0;
	int rc = 0;
	for (; started < rt->nworkers; started++) {
		herd__worker *w = rt->workers[started];
		if ((rc = -pthread_create(&w->thread, NULL, worker_thread, w)))
			break;
	}
	if (rc) {
		herd__shutdown(rt);
		join_workers(rt, started);
	}
	return rc;
}

/* The program's function, for the first task's wrapper. */
struct first_call {
	herd_fn fn;
	void *arg;
};

/* The first task under HERD_RUN_CANCEL_ON_RETURN: once the program's
 * function returns, every other task is canceled, as the program ends
 * when Go's main returns. */
static void first_then_cancel(void *p)
{
	struct first_call c = *(struct first_call *)p;
	c.fn(c.arg);
	herd_scope_cancel(herd__self()->rt->root);
}

/* Queues the first task, from the supervisor's thread: through the global
 * queue, as any thread that is not a worker spawns. */
static int first_task(herd__rt *rt, herd_fn fn, void *arg, unsigned flags)
{
	struct first_call c = {fn, arg};
	bool wrap = flags & HERD_RUN_CANCEL_ON_RETURN;
	herd__task *t = herd__task_alloc(NULL, wrap ? sizeof c : 0);
	if (!t)
		return -ENOMEM;
	t->fn = wrap ? first_then_cancel : fn;
	t->site = "herd_run";
	t->arg = wrap ? memcpy(t->argbuf, &c, sizeof c) : arg;
	herd__scope_attach(rt->root, t);
	atomic_fetch_add_explicit(&rt->st_foreign_spawned, 1, mo_relaxed);
	herd__trace_any(rt, HERD__TR_SPAWN, 0, (uintptr_t)t, 0, NULL, 0);
	herd__ready(NULL, t);
	return 0;
}

int herd_run(const herd_config *config, herd_fn fn, void *arg)
{
	struct settings st;
	if (!fn)
		return -EINVAL;
	if (herd__self())
		return -EBUSY;
	int rc = settings_get(config, &st);
	if (rc)
		return rc;
	herd__rt *rt = rt_new(&st, &rc);
	if (!rt)
		return rc;
	herd__rt *none = NULL;
	if (!atomic_compare_exchange_strong(&herd__runtime, &none, rt)) {
		rt_free(rt);
		return -EBUSY;
	}
	/* Raises the descriptor limit: only once this runtime is the one. */
	if ((rc = herd__fd_init(rt)) == 0 && st.trace &&
	    (rc = herd__trace_start(rt, st.trace)) != 0 && st.trace_env) {
		fprintf(stderr, "herd: HERD_TRACE=%s: %s; running untraced\n",
			st.trace, strerror(-rc));
		rc = 0;
	}
	if (rc) {
		herd__exit_lock(); /* as at the end: see herd_dump */
		atomic_store(&herd__runtime, NULL);
		herd__exit_unlock();
		rt_free(rt);
		return rc;
	}
	pthread_sigmask(SIG_SETMASK, NULL, &rt->sigmask);
	herd__overflow_handler_install();
	herd__exit_watch(rt->nworkers);
	herd__orphans_init(rt);
	herd__alarm_init(&rt->mon.alarm);
	rt->run->no_deadlock_check = st.flags & HERD_RUN_NO_DEADLOCK_CHECK;
	rt->run->sig.dump_on_quit = st.flags & HERD_RUN_SIGQUIT_DUMP;
	herd__signal_start(rt);
	if (rt->debug)
		herd__leak_start(); /* what the program makes from here on */
	if ((rc = start_threads(rt)) == 0) {
		if ((rc = first_task(rt, fn, arg, st.flags)) != 0)
			herd__shutdown(rt); /* the workers then end at once */
		herd__supervise(rt);
		if (rt->run->deadlock.found)
			rc = HERD_EDEADLOCK;
		herd__proc_fini(rt, herd__signal_dispatch); /* the root scope's processes */
		join_workers(rt, rt->nworkers);
		herd__blocking_fini(rt);
	}
	herd__trace_end(rt); /* every event is recorded */
	if (rt->debug)
		herd__leak_report(); /* every task has ended: what is left leaked */
	int late = herd__signal_fini(rt);
	herd__orphans_fini(rt);
	herd__overflow_handler_remove();
	herd__debug_fini();
	herd__exit_lock();
	atomic_store(&herd__runtime, NULL);
	herd__exit_unlock();
	rt_free(rt);
	if (late)
		herd__signal_die(late); /* as it would have, had it come earlier */
	return rc;
}

int herd_main(herd_fn fn, void *arg)
{
	return herd_run(NULL, fn, arg);
}

int herd_workers(void)
{
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	return rt ? (int)rt->nworkers : -ESRCH;
}

int herd_worker_id(void)
{
	herd__worker *w = herd__self();
	return w ? (int)w->index : -EPERM;
}

int64_t herd__tasks_alive(herd__rt *rt)
{
	/* First tasks and spawns from threads that are not workers count
	 * in st_foreign_spawned; a worker's st_live may go negative (a task
	 * may end on another worker than the one it was spawned on). */
	int64_t live = atomic_load_explicit(&rt->st_foreign_spawned, mo_relaxed);
	for (unsigned i = 0; i < rt->nworkers; i++)
		live += atomic_load_explicit(&rt->workers[i]->st_live, mo_relaxed);
	return live;
}

int herd_stats_get(herd_stats *out)
{
	if (!out)
		return -EINVAL;
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	if (!rt)
		return -ESRCH;
	int64_t live = herd__tasks_alive(rt), parked = 0;
	int64_t spawned = atomic_load_explicit(&rt->st_foreign_spawned, mo_relaxed);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		herd__worker *w = rt->workers[i];
		parked += atomic_load_explicit(&w->st_parked, mo_relaxed);
		spawned += atomic_load_explicit(&w->st_spawned, mo_relaxed);
	}
	memset(out, 0, sizeof *out);
	out->tasks = live > 0 ? (uint64_t)live : 0;
	out->tasks_parked = parked > 0 ? (uint64_t)parked : 0;
	out->tasks_spawned = (uint64_t)spawned;
	out->stacks = atomic_load_explicit(&rt->stacks.made, mo_relaxed);
	out->stacks_guarded = atomic_load_explicit(&rt->stacks.guarded, mo_relaxed);
	out->stack_size = rt->stacks.size;
	out->workers = rt->nworkers;
	out->debug = rt->debug;
	out->seed = rt->seed;
	herd__mutex_lock(&rt->stacks.lock);
	out->stack_guard = rt->stacks.mode;
	herd__mutex_unlock(&rt->stacks.lock);
	return 0;
}
