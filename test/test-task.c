/*
 * test-task.c - tasks and the runtime's entry points. Covers herd_go's copy of
 * its argument (the loop-variable bug of the Go post-mortem, large and small
 * structs, size 0), its errors, and the debug warning for a pointer into the
 * spawner's stack; task ids; herd_yield; a million tasks and deep task trees;
 * work stealing and idle workers that park instead of spinning; herd_main
 * called twice, from a task and from another thread; and the worker count
 * taken from herd_config and HERD_WORKERS.
 */
#define _GNU_SOURCE
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

/* Keeps the compiler from dropping stores to *p that nothing reads later. */
static void clobber(void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

/* ------------------------------------------------------------------ */

#define PM_N 1000

static atomic_int pm_seen[2 * PM_N];

struct pm_obj {
	int id;
	atomic_int started;
};

static void pm_record(void *p)
{
	int v = *(int *)p;

	CHECK(v >= 0 && v < 2 * PM_N);
	atomic_fetch_add(&pm_seen[v], 1);
}

static void pm_obj_start(void *p)
{
	struct pm_obj *o = *(struct pm_obj **)p;

	atomic_fetch_add(&o->started, 1);
}

static void pm_main(void *arg)
{
	static int values[PM_N];
	struct pm_obj *objs = calloc(PM_N, sizeof *objs);
	struct pm_obj *o;
	herd_scope *s;
	int v;

	CHECK(objs != NULL);
	for (int i = 0; i < PM_N; i++)
		values[i] = (i * 617) % PM_N; /* a permutation */
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < PM_N; i++) {
		v = values[i];
		CHECK_OK(HERD_GO(s, pm_record, v));
	}
	for (int i = 0; i < PM_N; i++) {
		v = PM_N + values[i];
		CHECK_OK(herd_go(s, pm_record, &v, sizeof v));
	}
	for (int i = 0; i < PM_N; i++) {
		objs[values[i]].id = values[i];
		o = &objs[values[i]];
		CHECK_OK(HERD_GO(s, pm_obj_start, o));
	}
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i < 2 * PM_N; i++)
		CHECK_EQ(pm_seen[i], 1);
	for (int i = 0; i < PM_N; i++)
		CHECK_EQ(objs[i].started, 1);
	free(objs);
}

/* A loop that spawns a task per value of its variable gives each its own value. */
TEST(post_mortem_loop)
{
	test_run(4, pm_main, NULL);
}

/* ------------------------------------------------------------------ */

#define COPY_N 200

struct copy_big {
	unsigned seed;
	unsigned char bytes[196];
};

struct copy_small {
	unsigned char b[3];
};

static atomic_int copy_big_seen[COPY_N], copy_small_seen[COPY_N];

static void copy_big_task(void *p)
{
	const struct copy_big *a = p;

	/* Read late, after the spawner has overwritten its own copy. */
	CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	CHECK((uintptr_t)p % _Alignof(max_align_t) == 0);
	CHECK(a->seed < COPY_N);
	for (size_t i = 0; i < sizeof a->bytes; i++)
		CHECK_EQ(a->bytes[i], (unsigned char)(a->seed * 31 + i));
	atomic_fetch_add(&copy_big_seen[a->seed], 1);
}

static void copy_small_task(void *p)
{
	const struct copy_small *a = p;

	CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	CHECK((uintptr_t)p % _Alignof(max_align_t) == 0);
	CHECK(a->b[0] < COPY_N);
	CHECK_EQ(a->b[1], (unsigned char)~a->b[0]);
	CHECK_EQ(a->b[2], a->b[0] ^ 0x5a);
	atomic_fetch_add(&copy_small_seen[a->b[0]], 1);
}

static void copy_main(void *arg)
{
	struct copy_big big;
	struct copy_small small;
	herd_scope *s;

	CHECK(sizeof big >= 200);
	CHECK_OK(herd_scope_open(&s));
	for (unsigned i = 0; i < COPY_N; i++) {
		big.seed = i;
		for (size_t j = 0; j < sizeof big.bytes; j++)
			big.bytes[j] = (unsigned char)(i * 31 + j);
		CHECK_OK(herd_go(s, copy_big_task, &big, sizeof big));
		memset(&big, 0xee, sizeof big);
		clobber(&big);

		small.b[0] = (unsigned char)i;
		small.b[1] = (unsigned char)~i;
		small.b[2] = (unsigned char)(i ^ 0x5a);
		CHECK_OK(herd_go(s, copy_small_task, &small, sizeof small));
		memset(&small, 0xee, sizeof small);
		clobber(&small);
	}
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i < COPY_N; i++) {
		CHECK_EQ(copy_big_seen[i], 1);
		CHECK_EQ(copy_small_seen[i], 1);
	}
}

/* herd_go copies size bytes before returning, into aligned memory of the task. */
TEST(go_copies_struct)
{
	test_run(4, copy_main, NULL);
}

/* ------------------------------------------------------------------ */

static _Atomic(void *) zero_got;
static atomic_int zero_null_seen;

static void zero_heap_task(void *p)
{
	atomic_store(&zero_got, p);
	CHECK_EQ(*(int *)p, 42);
	*(int *)p = 43;
}

static void zero_null_task(void *p)
{
	atomic_store(&zero_null_seen, p == NULL ? 1 : 2);
}

static void zero_main(void *arg)
{
	int *h = malloc(sizeof *h);
	herd_scope *s;

	CHECK(h != NULL);
	*h = 42;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, zero_heap_task, h, 0));
	CHECK_OK(herd_go(s, zero_null_task, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	CHECK(atomic_load(&zero_got) == (void *)h);
	CHECK_EQ(*h, 43); /* the task wrote through the caller's pointer */
	CHECK_EQ(zero_null_seen, 1);
	free(h);
}

/* With size 0 the task receives arg itself, NULL included. */
TEST(go_size_zero_passes_pointer)
{
	test_run(2, zero_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int invalid_ran;

static void invalid_task(void *p)
{
	atomic_fetch_add(&invalid_ran, 1);
}

static void invalid_main(void *arg)
{
	herd_scope *s;
	int x = 7;

	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_go(s, NULL, &x, sizeof x), -EINVAL);
	CHECK_EQ(herd_go(s, NULL, NULL, 0), -EINVAL);
	CHECK_EQ(herd_go(s, invalid_task, NULL, sizeof x), -EINVAL);
	CHECK_EQ(herd_go(NULL, invalid_task, NULL, 1), -EINVAL);
	CHECK_EQ(herd_go_at("here:1", s, NULL, &x, sizeof x, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_go_until(s, invalid_task, NULL, sizeof x, HERD_NOWAIT), -EINVAL);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(invalid_ran, 0);
	/* The counter can move: valid spawns through each entry point. */
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK((herd_go)(s, invalid_task, &x, sizeof x));
	CHECK_OK(herd_go_at("here:2", s, invalid_task, &x, sizeof x, HERD_FOREVER));
	CHECK_OK((herd_go_until)(s, invalid_task, &x, sizeof x, HERD_NOWAIT));
	CHECK_OK(herd_go_until(s, invalid_task, &x, sizeof x, HERD_FOREVER));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(invalid_ran, 4);
}

/* herd_go rejects a NULL fn, a NULL arg with a size, and NULL scope outside a task. */
TEST(go_invalid)
{
	int x = 7;

	CHECK_EQ(herd_go(NULL, invalid_task, &x, sizeof x), -EINVAL);
	CHECK_EQ(HERD_GO(NULL, invalid_task, x), -EINVAL);
	CHECK_EQ(herd_go(NULL, invalid_task, NULL, 0), -EINVAL);
	test_run(2, invalid_main, NULL);
	CHECK_EQ(herd_go(NULL, invalid_task, &x, sizeof x), -EINVAL);
	CHECK_EQ(herd_go_until(NULL, invalid_task, &x, sizeof x, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(invalid_ran, 4);
}

/* ------------------------------------------------------------------ */

#define DBG_N (1000 / TEST_SCALE)
#define DBG_SPAWNERS 4

struct dbg_pair {
	long n;
	int *p;
};

enum { DBG_ENV_ON, DBG_ENV_OFF, DBG_CFG_OFF, DBG_CFG_ON, DBG_DEFAULT };

static int dbg_mode;
static int *dbg_heap;

static void dbg_noop(void *p)
{
}

/* Each site returns its own line when called with a NULL scope. */
static int dbg_site_ptr(herd_scope *s, int i)
{
	int *p = &i;
	return s ? HERD_GO(s, dbg_noop, p) : __LINE__;
}

static int dbg_site_struct(herd_scope *s, int i)
{
	struct dbg_pair v = { i, &i };
	return s ? herd_go(s, dbg_noop, &v, sizeof v) : __LINE__;
}

static int dbg_site_zero(herd_scope *s, int i)
{
	return s ? herd_go(s, dbg_noop, &i, 0) : __LINE__;
}

/* Spawns that hold no pointer into the spawner's stack. */
static void dbg_sites_clean(herd_scope *s, int i)
{
	static int cell;
	int *heap = dbg_heap, *stat = &cell;
	struct dbg_pair v = { i, heap };

	CHECK_OK(HERD_GO(s, dbg_noop, i));
	CHECK_OK(HERD_GO(s, dbg_noop, heap));
	CHECK_OK(HERD_GO(s, dbg_noop, stat));
	CHECK_OK(herd_go(s, dbg_noop, &v, sizeof v));
	CHECK_OK(herd_go(s, dbg_noop, heap, 0));
	CHECK_OK(herd_go(s, dbg_noop, NULL, 0));
}

static void dbg_spawner(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < DBG_N; i++) {
		CHECK_OK(dbg_site_ptr(s, i));
		CHECK_OK(dbg_site_struct(s, i));
		CHECK_OK(dbg_site_zero(s, i));
		dbg_sites_clean(s, i);
	}
	CHECK_OK(herd_scope_close(s));
}

static void dbg_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < DBG_SPAWNERS; i++)
		CHECK_OK(herd_go(s, dbg_spawner, NULL, 0));
	CHECK_OK(herd_scope_close(s));
}

static void dbg_child(void)
{
	herd_config cfg = { .workers = 4 };

	dbg_heap = malloc(sizeof *dbg_heap);
	CHECK(dbg_heap != NULL);
	unsetenv("HERD_DEBUG");
	if (dbg_mode == DBG_ENV_ON || dbg_mode == DBG_CFG_OFF)
		setenv("HERD_DEBUG", "1", 1);
	if (dbg_mode == DBG_ENV_OFF)
		setenv("HERD_DEBUG", "0", 1);
	if (dbg_mode == DBG_CFG_OFF)
		cfg.debug = HERD_DEBUG_OFF;
	if (dbg_mode == DBG_CFG_ON)
		cfg.debug = HERD_DEBUG_ON;
	CHECK_OK(herd_run(&cfg, dbg_main, NULL));
}

/* The line of buf that holds "test-task.c:<line>" (not followed by a digit). */
static const char *dbg_find_site(const char *buf, int line, int *count)
{
	char needle[64];
	const char *p, *first = NULL;

	snprintf(needle, sizeof needle, "test-task.c:%d", line);
	*count = 0;
	for (p = buf; (p = strstr(p, needle)); p++) {
		char next = p[strlen(needle)];
		if (next >= '0' && next <= '9')
			continue;
		if (!first)
			first = p;
		(*count)++;
	}
	return first;
}

static void dbg_expect(int mode, int warnings)
{
	static char buf[1 << 16];
	int lines[3] = { dbg_site_ptr(NULL, 0), dbg_site_struct(NULL, 0),
			 dbg_site_zero(NULL, 0) };

	dbg_mode = mode;
	test_child_ok(test_child(dbg_child, buf, sizeof buf), buf);
	if (test_count(buf, "test-task.c:") != 3 * warnings)
		fprintf(stderr, "mode %d, stderr:\n%s\n", mode, buf);
	CHECK_EQ(test_count(buf, "test-task.c:"), 3 * warnings);
	for (int i = 0; i < 3; i++) {
		int n;
		const char *at = dbg_find_site(buf, lines[i], &n);
		CHECK_EQ(n, warnings);
		if (!warnings)
			continue;
		/* The warning's line says what is wrong. */
		const char *bol = at, *eol = strchr(at, '\n');
		while (bol > buf && bol[-1] != '\n')
			bol--;
		CHECK(eol != NULL);
		CHECK(memmem(bol, (size_t)(eol - bol), "stack", 5) != NULL);
	}
}

/* Debug mode warns once per call site about pointers into the spawner's stack. */
TEST(debug_warns_stack_pointer)
{
	dbg_expect(DBG_ENV_ON, 1);
	dbg_expect(DBG_ENV_OFF, 0);
	dbg_expect(DBG_CFG_OFF, 0);
	dbg_expect(DBG_CFG_ON, 1);
#ifdef HERD_DEBUG_BUILD
	dbg_expect(DBG_DEFAULT, 1);
#else
	dbg_expect(DBG_DEFAULT, 0);
#endif
}

/* ------------------------------------------------------------------ */

#define IDS_N 1000

static _Atomic uint64_t ids[IDS_N + 1];

static void ids_task(void *p)
{
	int i = *(int *)p;
	uint64_t id = herd_task_id();

	CHECK_OK(herd_yield());
	CHECK_EQ(herd_task_id(), id); /* stable across a switch */
	atomic_store(&ids[i], id);
}

static int ids_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void ids_main(void *arg)
{
	static uint64_t sorted[IDS_N + 1];
	herd_scope *s;

	atomic_store(&ids[IDS_N], herd_task_id());
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < IDS_N; i++)
		CHECK_OK(HERD_GO(s, ids_task, i));
	CHECK_OK(herd_scope_close(s));
	for (int i = 0; i <= IDS_N; i++)
		sorted[i] = atomic_load(&ids[i]);
	qsort(sorted, IDS_N + 1, sizeof sorted[0], ids_cmp);
	CHECK(sorted[0] != 0);
	for (int i = 1; i <= IDS_N; i++)
		CHECK(sorted[i] != sorted[i - 1]);
}

/* Task ids are non-zero and distinct; 0 outside a task. */
TEST(task_ids)
{
	CHECK_EQ(herd_task_id(), 0);
	test_run(4, ids_main, NULL);
	CHECK_EQ(herd_task_id(), 0);
}

/* ------------------------------------------------------------------ */

static atomic_int yield_flag;

static void yield_b(void *p)
{
	atomic_store(&yield_flag, 1);
}

static void yield_a(void *p)
{
	long n = 0;

	/* B can only run on the single worker if A lets it. */
	CHECK_OK(herd_go(NULL, yield_b, NULL, 0));
	while (!atomic_load(&yield_flag)) {
		CHECK_EQ(herd_yield(), 0);
		CHECK(++n < 1000000);
	}
}

static void yield_main(void *arg)
{
	herd_scope *s;

	CHECK_EQ(herd_workers(), 1);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, yield_a, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(yield_flag, 1);
}

/* herd_yield lets another ready task run on the same worker. */
TEST(yield_lets_others_run)
{
	test_run(1, yield_main, NULL);
}

/* ------------------------------------------------------------------ */

static int outside_rc[6];

static void *outside_thread(void *arg)
{
	outside_rc[0] = herd_yield();
	outside_rc[1] = herd_worker_id();
	outside_rc[2] = herd_task_id() == 0;
	outside_rc[3] = herd_scope_current() == NULL;
	outside_rc[4] = herd_canceled();
	outside_rc[5] = herd_workers();
	return NULL;
}

static void outside_main(void *arg)
{
	pthread_t t;

	CHECK(pthread_create(&t, NULL, outside_thread, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);
}

/* Outside a task herd_yield is -EPERM, even while a runtime runs. */
TEST(yield_outside_task)
{
	CHECK_EQ(herd_yield(), -EPERM);
	CHECK_EQ(herd_worker_id(), -EPERM);
	test_run(2, outside_main, NULL);
	CHECK_EQ(outside_rc[0], -EPERM);
	CHECK_EQ(outside_rc[1], -EPERM);
	CHECK_EQ(outside_rc[2], 1);
	CHECK_EQ(outside_rc[3], 1);
	CHECK_EQ(outside_rc[4], 0);
	CHECK_EQ(outside_rc[5], 2);
	CHECK_EQ(herd_yield(), -EPERM);
}

/* ------------------------------------------------------------------ */

#define MILLION (1000000 / TEST_SCALE)

static atomic_long million_count;

static void million_task(void *p)
{
	atomic_fetch_add_explicit(&million_count, 1, memory_order_relaxed);
}

static void million_main(void *arg)
{
	herd_scope *s;
	herd_stats st;

	CHECK_OK(herd_scope_open(&s));
	for (long i = 0; i < MILLION; i++)
		CHECK_OK(herd_go(s, million_task, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(million_count, MILLION);
	CHECK_OK(herd_stats_get(&st));
	CHECK(st.tasks_spawned >= (uint64_t)MILLION + 1);
}

/* A million tasks spawned into one scope all run, exactly once. */
LONG_TEST(million_tasks)
{
	test_run(0, million_main, NULL);
}

/* ------------------------------------------------------------------ */

#define TREE_DEPTH (TEST_UNDER_TSAN ? 5 : 7)

static atomic_long tree_leaves, tree_nodes;

static void tree_node(void *p)
{
	int depth = *(int *)p;
	herd_scope *s;

	atomic_fetch_add(&tree_nodes, 1);
	if (depth == 0) {
		atomic_fetch_add(&tree_leaves, 1);
		return;
	}
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < 4; i++)
		CHECK_OK(HERD_GO(s, tree_node, depth - 1));
	CHECK_OK(herd_scope_close(s));
}

/* Tasks that spawn tasks, each with its own scope, all run once. */
TEST(task_tree)
{
	int depth = TREE_DEPTH;
	long leaves = 1L << (2 * TREE_DEPTH);

	test_run(4, tree_node, &depth);
	CHECK_EQ(tree_leaves, leaves);
	CHECK_EQ(tree_nodes, (4 * leaves - 1) / 3);
}

/* ------------------------------------------------------------------ */

#define STEAL_N (2000 / TEST_SCALE)

static atomic_uint steal_mask;

static void steal_task(void *p)
{
	int64_t end = herd_now() + 20 * HERD_USEC;
	int id = herd_worker_id();

	CHECK(id >= 0 && id < 4);
	while (herd_now() < end)
		;
	atomic_fetch_or(&steal_mask, 1u << id);
}

static void steal_main(void *arg)
{
	herd_scope *s;

	CHECK_EQ(herd_workers(), 4);
	for (int round = 0; round < 20; round++) {
		CHECK_OK(herd_scope_open(&s));
		for (int i = 0; i < STEAL_N; i++)
			CHECK_OK(herd_go(s, steal_task, NULL, 0));
		CHECK_OK(herd_scope_close(s));
		if (__builtin_popcount(atomic_load(&steal_mask)) >= 2)
			break;
	}
	CHECK(__builtin_popcount(atomic_load(&steal_mask)) >= 2);
}

/* Tasks spawned by one task run on more than one worker. */
TEST(work_is_stolen)
{
	test_run(4, steal_main, NULL);
}

/* ------------------------------------------------------------------ */

#define IDLE_WAITERS 8

static void idle_waiter(void *p)
{
	CHECK_OK(herd_wg_wait(*(herd_wg **)p, HERD_FOREVER));
}

static void idle_main(void *arg)
{
	herd_wg *wg;
	herd_scope *s;
	int64_t cpu0, t0, cpu, wall;

	CHECK_OK(herd_wg_new(&wg));
	CHECK_EQ(herd_wg_add(wg, 1), 1);
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < IDLE_WAITERS; i++)
		CHECK_OK(HERD_GO(s, idle_waiter, wg));
	test_wait_parked(IDLE_WAITERS);
	/* Give spinning workers time to give up and sleep. */
	CHECK_OK(herd_sleep(herd_deadline(50 * HERD_MSEC)));
	cpu0 = test_cpu_ns();
	t0 = herd_now();
	CHECK_EQ(herd_wg_wait(wg, herd_deadline(300 * HERD_MSEC)), HERD_ETIMEDOUT);
	cpu = test_cpu_ns() - cpu0;
	wall = herd_now() - t0;
	printf("idle: %.1f ms of CPU in %.1f ms\n", cpu / 1e6, wall / 1e6);
	CHECK(cpu < wall / 5);
	CHECK_EQ(herd_wg_done(wg), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_wg_free(wg));
}

/* With every task blocked, the workers sleep instead of spinning. */
SERIAL_TEST(idle_workers_sleep)
{
	test_run(4, idle_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int twice_runs, twice_inner_ran;

static void twice_inner(void *arg)
{
	atomic_fetch_add(&twice_inner_ran, 1);
}

static void *twice_thread(void *arg)
{
	*(int *)arg = herd_main(twice_inner, NULL);
	return NULL;
}

static void twice_main(void *arg)
{
	herd_config cfg = { .workers = 1 };
	pthread_t t;
	int rc = 1;

	atomic_fetch_add(&twice_runs, 1);
	CHECK(herd_workers() >= 1);
	CHECK_EQ(herd_main(twice_inner, NULL), -EBUSY);
	CHECK_EQ(herd_run(&cfg, twice_inner, NULL), -EBUSY);
	CHECK(pthread_create(&t, NULL, twice_thread, &rc) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK_EQ(rc, -EBUSY);
}

/* The runtime can run twice in a row, but not inside itself. */
TEST(runtime_twice)
{
	herd_config cfg = { .workers = 2 };

	CHECK_EQ(herd_workers(), -ESRCH);
	CHECK_EQ(herd_main(twice_main, NULL), 0);
	CHECK_EQ(herd_workers(), -ESRCH);
	CHECK_EQ(herd_main(twice_main, NULL), 0);
	CHECK_EQ(herd_run(&cfg, twice_main, NULL), 0);
	CHECK_EQ(herd_workers(), -ESRCH);
	CHECK_EQ(twice_runs, 3);
	CHECK_EQ(herd_run(&cfg, NULL, NULL), -EINVAL);
	CHECK_EQ(herd_main(NULL, NULL), -EINVAL);
	CHECK_EQ(twice_inner_ran, 0);
	CHECK_EQ(herd_workers(), -ESRCH);
}

/* ------------------------------------------------------------------ */

static atomic_int cfg_seen;

struct cfg_case {
	const char *env;    /* HERD_WORKERS, or NULL to unset it */
	unsigned workers;   /* herd_config.workers */
	int restrict_cpus;  /* restrict the affinity to this many CPUs */
	int expect;         /* workers expected; 0: one per allowed CPU */
	int warn;           /* stderr holds one line naming HERD_WORKERS */
};

static const struct cfg_case *cfg_cur;

static void cfg_main(void *arg)
{
	herd_stats st;
	int id = herd_worker_id();

	atomic_store(&cfg_seen, herd_workers());
	CHECK(id >= 0 && id < herd_workers());
	CHECK_OK(herd_stats_get(&st));
	CHECK_EQ(st.workers, herd_workers());
}

static int cfg_allowed_cpus(int at_most)
{
	cpu_set_t set, mine;
	int k = 0;

	CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
	if (!at_most)
		return CPU_COUNT(&set);
	CPU_ZERO(&mine);
	for (int c = 0; c < CPU_SETSIZE && k < at_most; c++) {
		if (CPU_ISSET(c, &set)) {
			CPU_SET(c, &mine);
			k++;
		}
	}
	CHECK(sched_setaffinity(0, sizeof mine, &mine) == 0);
	return k;
}

static void cfg_child(void)
{
	const struct cfg_case *c = cfg_cur;
	herd_config cfg = { .workers = c->workers };
	int expect = c->expect;

	if (c->env)
		setenv("HERD_WORKERS", c->env, 1);
	else
		unsetenv("HERD_WORKERS");
	if (c->restrict_cpus)
		expect = cfg_allowed_cpus(c->restrict_cpus);
	else if (!expect)
		expect = cfg_allowed_cpus(0);
	CHECK_OK(herd_run(&cfg, cfg_main, NULL));
	CHECK_EQ(cfg_seen, expect);
}

/* Worker count: herd_config, else HERD_WORKERS, else the allowed CPUs. */
TEST(config_workers)
{
	static const struct cfg_case cases[] = {
		{ "2", 0, 0, 2, 0 },
		{ "2", 3, 0, 3, 0 },
		{ NULL, 0, 0, 0, 0 },
		{ NULL, 0, 2, 0, 0 },
		{ "banana", 0, 0, 0, 1 },
	};
	static char buf[8192];
	herd_config cfg = { .workers = 3 };

	test_run(3, cfg_main, NULL);
	CHECK_EQ(cfg_seen, 3);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cfg_cur = &cases[i];
		test_child_ok(test_child(cfg_child, buf, sizeof buf), buf);
		if (cases[i].warn) {
			CHECK_EQ(test_count(buf, "\n"), 1);
			CHECK(strstr(buf, "HERD_WORKERS") != NULL);
		} else {
			CHECK_EQ(buf[0], 0);
		}
	}
	atomic_store(&cfg_seen, 0);
	cfg.workers = 5000;
	CHECK_EQ(herd_run(&cfg, cfg_main, NULL), -EINVAL);
	cfg.workers = 1025;
	CHECK_EQ(herd_run(&cfg, cfg_main, NULL), -EINVAL);
	cfg.workers = 2;
	cfg.debug = 3;
	CHECK_EQ(herd_run(&cfg, cfg_main, NULL), -EINVAL);
	cfg.debug = -2;
	CHECK_EQ(herd_run(&cfg, cfg_main, NULL), -EINVAL);
	CHECK_EQ(cfg_seen, 0); /* nothing ran */
	CHECK_EQ(herd_workers(), -ESRCH);
}
