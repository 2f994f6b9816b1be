/*
 * test-sizes.c - hostile sizes, counts and times at the public calls that
 * allocate with them or compute with them: herd_go, herd_go_until and
 * herd_go_at, herd_chan_make, herd_select, timers, deadlines and herd_sleep,
 * herd_wg_add, herd_config and the HERD_* environment variables. Each must
 * be answered with its documented code (-ENOMEM for a size that can never
 * be allocated, -EINVAL for a value outside a documented range), change
 * nothing when it fails, and never overflow: under UBSan (the ASan build)
 * a signed overflow aborts the test.
 */
#include "test.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>

/*
 * ASan and TSan abort on an allocation larger than they support (1 TiB),
 * where the C library's malloc returns NULL. These tests pass such sizes on
 * purpose, and herd must answer them with -ENOMEM: so malloc fails here as
 * it does without a sanitizer. (ASAN_OPTIONS or TSAN_OPTIONS add to this.
 * The runtime finds the function only if the executable exports it:
 * default visibility here, and ENABLE_EXPORTS in test/CMakeLists.txt.)
 */
#if defined(HERD_TEST_SANITIZE_address)
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#elif defined(HERD_TEST_SANITIZE_thread)
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "allocator_may_return_null=1";
}
#endif

/* What a call that fails must leave in its out parameter. */
static char sentinel;
#define UNTOUCHED ((void *)&sentinel)

/*
 * Sizes no object can have. The first three lie within a task header's
 * length (128 bytes, more in sanitizer builds) of SIZE_MAX: added to it,
 * they wrapped around to a small allocation that the copy then overran.
 * The others are for herd or malloc to refuse.
 */
static const size_t huge_sizes[] = {
	SIZE_MAX,
	SIZE_MAX - 16,
	SIZE_MAX - 127,
	SIZE_MAX - 255,
	SIZE_MAX / 2 + 1,
	PTRDIFF_MAX,
	PTRDIFF_MAX - 64,
	(size_t)1 << 62,
	(size_t)1 << 48,
};
#define NHUGE (sizeof huge_sizes / sizeof *huge_sizes)

/* ------------------------------------------------------------------ */

#define BIG_ARG (1u << 20)

static atomic_int go_ran;
static atomic_int go_big_ok;

static void go_task(void *p)
{
	atomic_fetch_add(&go_ran, 1);
}

static void go_big_task(void *p)
{
	const unsigned char *b = p;
	int ok = 1;

	for (size_t i = 0; i < BIG_ARG; i++)
		ok &= b[i] == (unsigned char)(i * 7);
	atomic_store(&go_big_ok, ok);
}

static void go_main(void *arg)
{
	static unsigned char small[256];
	herd_stats before, after;
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_stats_get(&before));
	for (size_t i = 0; i < NHUGE; i++) {
		size_t size = huge_sizes[i];

		CHECK_EQ(herd_go(s, go_task, small, size), -ENOMEM);
		CHECK_EQ((herd_go)(s, go_task, small, size), -ENOMEM);
		CHECK_EQ(herd_go_at("sizes:1", s, go_task, small, size, HERD_FOREVER), -ENOMEM);
		CHECK_EQ(herd_go_until(s, go_task, small, size, HERD_NOWAIT), -ENOMEM);
		CHECK_EQ(herd_go(NULL, go_task, small, size), -ENOMEM);
		/* A NULL argument with a size is -EINVAL, whatever the size. */
		CHECK_EQ(herd_go(s, go_task, NULL, size), -EINVAL);
	}
	CHECK_OK(herd_stats_get(&after));
	CHECK_EQ(after.tasks, before.tasks);
	CHECK_EQ(after.tasks_spawned, before.tasks_spawned);
	CHECK_EQ(after.stacks, before.stacks);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(go_ran, 0);

	/* A large argument that can be had is still copied whole. */
	unsigned char *big = malloc(BIG_ARG);
	CHECK(big != NULL);
	for (size_t i = 0; i < BIG_ARG; i++)
		big[i] = (unsigned char)(i * 7);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, go_big_task, big, BIG_ARG));
	memset(big, 0, BIG_ARG);
	free(big);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(go_big_ok, 1);
}

/* herd_go with a size no object can have (SIZE_MAX, SIZE_MAX - 16, ...,
 * PTRDIFF_MAX, 2^62) returns -ENOMEM through every entry point, spawns
 * nothing and copies nothing; a 1 MiB argument still works. */
TEST(go_huge_size)
{
	test_run(2, go_main, NULL);
}

/* ------------------------------------------------------------------ */

/* The address space the process has mapped now (VmSize), in bytes. */
static rlim_t vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long kib = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %llu kB", &kib) == 1)
			break;
	fclose(f);
	CHECK(kib > 0);
	return (rlim_t)kib * 1024;
}

/* herd_chan_make refuses an element size or a capacity above its limit,
 * however large, with -EINVAL; the largest ring the limits allow (64 KiB
 * times 2^30: 64 TiB) is -ENOMEM, at once; 2^30 one-byte slots work. */
TEST(chan_make_sizes)
{
	static const size_t bad[] = {
		SIZE_MAX, SIZE_MAX - 16, PTRDIFF_MAX, (size_t)1 << 62,
		HERD_CHAN_ELEM_MAX + 1, HERD_CHAN_CAP_MAX + 1,
	};
	static const size_t good[] = {0, 1, HERD_CHAN_ELEM_MAX};
	herd_chan *ch = UNTOUCHED;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		for (size_t j = 0; j < sizeof good / sizeof *good; j++) {
			/* The capacity limit is the larger: a bad element
			 * size (2^16 + 1) may be a good capacity. */
			if (bad[i] > HERD_CHAN_ELEM_MAX)
				CHECK_EQ(herd_chan_make(&ch, bad[i], good[j]), -EINVAL);
			if (bad[i] > HERD_CHAN_CAP_MAX)
				CHECK_EQ(herd_chan_make(&ch, good[j], bad[i]), -EINVAL);
		}
		CHECK_EQ(herd_chan_make(&ch, bad[i], bad[i]), -EINVAL);
	}
	CHECK(ch == UNTOUCHED);

	/*
	 * 64 TiB. Where the kernel overcommits without limit
	 * (vm.overcommit_memory=1) it might hand out that much address
	 * space; an address space limit of what the process has plus
	 * 1 TiB makes the answer the same everywhere.
	 */
	struct rlimit old, lim;
	CHECK(getrlimit(RLIMIT_AS, &old) == 0);
	lim = old;
	rlim_t cap = vm_size() + ((rlim_t)1 << 40);
	if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > cap)
		lim.rlim_cur = cap;
	CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
	int64_t t0 = herd_now();
	int rc = herd_chan_make(&ch, HERD_CHAN_ELEM_MAX, HERD_CHAN_CAP_MAX);
	int64_t took = herd_now() - t0;
	CHECK(setrlimit(RLIMIT_AS, &old) == 0);
	CHECK_EQ(rc, -ENOMEM);
	CHECK(took < HERD_SEC);
	CHECK(ch == UNTOUCHED);

	/* The largest capacity with one-byte values: a ring of 8 GiB of
	 * address space (each slot holds a 4-byte stamp too), of which only
	 * the pages used are ever touched. A machine whose overcommit policy
	 * refuses that much to calloc gets -ENOMEM, and nothing else. */
	rc = herd_chan_make(&ch, 1, HERD_CHAN_CAP_MAX);
	if (rc == -ENOMEM) {
		void *m = calloc(1, (size_t)8 * HERD_CHAN_CAP_MAX);
		CHECK(!m); /* herd could have had it */
		printf("a ring of %zu bytes is more than this machine grants\n",
		       (size_t)8 * HERD_CHAN_CAP_MAX);
		return;
	}
	CHECK_OK(rc);
	CHECK_EQ(herd_chan_cap(ch), (long long)HERD_CHAN_CAP_MAX);
	char c = 'x';
	CHECK_OK(herd_chan_try_send(ch, &c));
	c = 0;
	CHECK_OK(herd_chan_try_recv(ch, &c));
	CHECK_EQ(c, 'x');
	CHECK_OK(herd_chan_free(ch));
}

/* ------------------------------------------------------------------ */

static herd_chan *sel_ch;

static void sel_sender(void *p)
{
	long v = 99;

	test_wait_parked(1);
	CHECK_OK(herd_chan_send(sel_ch, &v, HERD_FOREVER));
}

/* A select of HERD_SELECT_MAX cases that blocks; `all`: every case is a
 * receive on sel_ch, else only the last one. Returns the index chosen. */
static int sel_block(herd_case *cs, bool all)
{
	long v = 0;
	herd_scope *s;

	for (size_t i = 0; i < HERD_SELECT_MAX; i++)
		cs[i] = (herd_case)HERD_CASE_RECV(all || i == HERD_SELECT_MAX - 1
						  ? sel_ch : NULL, &v);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, sel_sender, NULL, 0));
	int rc = herd_select(cs, HERD_SELECT_MAX, herd_deadline(20 * HERD_SEC));
	CHECK_OK(herd_scope_close(s));
	CHECK(rc >= 0 && rc < HERD_SELECT_MAX);
	CHECK_EQ(v, 99);
	CHECK_EQ(cs[rc].result, 0);
	return rc;
}

static void sel_main(void *arg)
{
	herd_case *cs = arg;

	CHECK_EQ(sel_block(cs, false), HERD_SELECT_MAX - 1);
	sel_block(cs, true);
	CHECK_EQ(herd_chan_len(sel_ch), 0);
}

/* herd_select refuses n above HERD_SELECT_MAX (SIZE_MAX and 2^62 included)
 * with -EINVAL and performs no case; HERD_SELECT_MAX cases work, without
 * blocking and blocked, and the last case's index comes back whole. */
TEST(select_counts)
{
	static const size_t bad[] = {
		HERD_SELECT_MAX + 1, SIZE_MAX, SIZE_MAX - 16, PTRDIFF_MAX,
		(size_t)1 << 62, (size_t)1 << 32,
	};
	herd_case *cs = calloc(HERD_SELECT_MAX + 1, sizeof *cs);
	long v = 7, got = 0;

	CHECK(cs != NULL);
	CHECK_OK(herd_chan_make(&sel_ch, sizeof(long), 1));
	CHECK_OK(herd_chan_try_send(sel_ch, &v));
	for (size_t i = 0; i <= HERD_SELECT_MAX; i++)
		cs[i] = (herd_case)HERD_CASE_RECV(sel_ch, &got);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK_EQ(herd_select(cs, bad[i], HERD_NOWAIT), -EINVAL);
		CHECK_EQ(herd_select(NULL, bad[i], HERD_NOWAIT), -EINVAL);
	}
	CHECK_EQ(herd_chan_len(sel_ch), 1); /* nothing was received */
	CHECK_EQ(got, 0);

	/* Only the last case can proceed. */
	for (size_t i = 0; i < HERD_SELECT_MAX - 1; i++)
		cs[i].chan = NULL;
	CHECK_EQ(herd_select(cs, HERD_SELECT_MAX, HERD_NOWAIT), HERD_SELECT_MAX - 1);
	CHECK_EQ(got, 7);
	CHECK_EQ(cs[HERD_SELECT_MAX - 1].result, 0);
	CHECK_EQ(herd_select(cs, HERD_SELECT_MAX, HERD_NOWAIT), HERD_ETIMEDOUT);
	cs[HERD_SELECT_MAX - 1].chan = NULL;
	CHECK_EQ(herd_select(cs, HERD_SELECT_MAX, HERD_NOWAIT), HERD_ETIMEDOUT);

	test_run(2, sel_main, cs);
	CHECK_OK(herd_chan_free(sel_ch));
	free(cs);
}

/* ------------------------------------------------------------------ */

/*
 * Yields for `ns` nanoseconds. Unlike a sleep, it adds no timer of its
 * own, so the far timers under test stay the earliest while the monitor
 * (every few milliseconds while a worker is busy) and idle workers look at
 * them and add their margins to them.
 */
static void busy_for(int64_t ns)
{
	int64_t end = herd_now() + ns;

	while (herd_now() < end)
		CHECK_OK(herd_yield());
}

static void timer_main(void *arg)
{
	herd_timer *t, *bad = UNTOUCHED;
	int64_t v;

	/* Never due. */
	CHECK_OK(herd_timer_new(&t, INT64_MAX - 5, INT64_MAX));
	herd_chan *ch = herd_timer_chan(t);
	busy_for(60 * HERD_MSEC);
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);
	CHECK_EQ(herd_timer_reset(t, INT64_MAX, INT64_MAX), 1);
	CHECK_EQ(herd_timer_reset(t, INT64_MAX, 1), 1);
	busy_for(20 * HERD_MSEC);
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);

	/* Due at once, then every INT64_MAX ns: the next tick lies beyond
	 * INT64_MAX, and saturates. */
	CHECK_EQ(herd_timer_reset(t, 1, INT64_MAX), 1);
	CHECK_EQ(herd_chan_recv(ch, &v, herd_deadline(HERD_SEC)), 0);
	CHECK(v > 0);
	busy_for(60 * HERD_MSEC);
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);
	CHECK_EQ(herd_timer_stop(t), 1); /* a ticker stays pending */

	/* The next tick at INT64_MAX exactly. */
	int64_t now = herd_now();
	CHECK_EQ(herd_timer_reset(t, now, INT64_MAX - now), 0);
	CHECK_EQ(herd_chan_recv(ch, &v, herd_deadline(HERD_SEC)), 0);
	busy_for(60 * HERD_MSEC);
	CHECK_EQ(herd_chan_try_recv(ch, &v), HERD_ETIMEDOUT);

	/* Out of range: -EINVAL, nothing made, the timer left as it was
	 * (still a pending ticker). */
	CHECK_EQ(herd_timer_new(&bad, -1, 0), -EINVAL);
	CHECK_EQ(herd_timer_new(&bad, INT64_MIN, 0), -EINVAL);
	CHECK_EQ(herd_timer_new(&bad, 0, -1), -EINVAL);
	CHECK_EQ(herd_timer_new(&bad, INT64_MAX, INT64_MIN), -EINVAL);
	CHECK(bad == UNTOUCHED);
	CHECK_EQ(herd_timer_reset(t, INT64_MIN, 0), -EINVAL);
	CHECK_EQ(herd_timer_reset(t, 0, INT64_MIN), -EINVAL);
	CHECK_EQ(herd_timer_stop(t), 1);
	CHECK_OK(herd_timer_free(t));
}

/* Timers with deadlines and periods up to INT64_MAX (herd_timer_new(&t,
 * INT64_MAX - 5, INT64_MAX) among them) never fire early and never
 * overflow, nor does a ticker's next tick; negative values are -EINVAL and
 * change nothing. One worker: the worker that adds the timer is busy, so
 * the runtime has its monitor watch the timer. */
TEST(timer_extremes)
{
	test_run(1, timer_main, NULL);
}

/* ------------------------------------------------------------------ */

static herd_chan *dl_ch;
static herd_wg *dl_wg;

static void dl_sleeper(void *p)
{
	CHECK_EQ(herd_sleep(*(int64_t *)p), HERD_ECANCELED);
}

static void dl_receiver(void *p)
{
	long v;

	CHECK_EQ(herd_chan_recv(dl_ch, &v, *(int64_t *)p), HERD_ECANCELED);
}

static void dl_waiter(void *p)
{
	CHECK_EQ(herd_wg_wait(dl_wg, *(int64_t *)p), HERD_ECANCELED);
}

static void dl_main(void *arg)
{
	static const int64_t far[] = {
		INT64_MAX, INT64_MAX - 5, INT64_MAX - HERD_MSEC / 2,
		INT64_MAX - HERD_SEC,
	};

	CHECK_EQ(herd_sleep(INT64_MIN), -EINVAL);
	CHECK_EQ(herd_sleep(HERD_FOREVER), -EINVAL);
	CHECK_OK(herd_chan_make(&dl_ch, sizeof(long), 0));
	CHECK_OK(herd_wg_new(&dl_wg));
	CHECK_EQ(herd_wg_add(dl_wg, 1), 1);
	for (size_t i = 0; i < sizeof far / sizeof *far; i++) {
		herd_scope *s;

		CHECK_OK(herd_scope_open(&s));
		CHECK_OK(HERD_GO(s, dl_sleeper, far[i]));
		CHECK_OK(HERD_GO(s, dl_receiver, far[i]));
		CHECK_OK(HERD_GO(s, dl_waiter, far[i]));
		/* Yield, not sleep, until they park and for a while after:
		 * their timers are the earliest when they are added, and
		 * stay so (see busy_for). */
		herd_stats st;
		do {
			CHECK_OK(herd_yield());
			CHECK_OK(herd_stats_get(&st));
		} while (st.tasks_parked < 3);
		busy_for(60 * HERD_MSEC);
		CHECK_OK(herd_scope_cancel(s));
		CHECK_OK(herd_scope_close(s));
	}
	CHECK_OK(herd_chan_free(dl_ch));
	CHECK_OK(herd_wg_free(dl_wg));
}

/* herd_deadline saturates at INT64_MAX and gives HERD_FOREVER for any
 * negative timeout; waits with deadlines up to INT64_MAX (herd_sleep, a
 * receive, herd_wg_wait) wait until canceled, without overflowing. */
TEST(deadline_extremes)
{
	CHECK_EQ(herd_deadline(INT64_MAX), INT64_MAX);
	CHECK_EQ(herd_deadline(INT64_MAX - 1), INT64_MAX);
	CHECK_EQ(herd_deadline(INT64_MIN), HERD_FOREVER);
	CHECK_EQ(herd_deadline(-1), HERD_FOREVER);
	CHECK(herd_deadline(0) > 0);
	test_run(1, dl_main, NULL);
	test_run(2, dl_main, NULL);
}

/* ------------------------------------------------------------------ */

/* herd_wg_add takes INT_MAX and INT_MIN deltas: the counter reaches
 * INT32_MAX and no further, never goes below 0, and a delta it refuses
 * (-ERANGE) leaves it as it was. */
TEST(wg_add_extremes)
{
	herd_wg *wg;

	CHECK_OK(herd_wg_new(&wg));
	CHECK_EQ(herd_wg_add(wg, INT_MIN), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, -1), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, 0), 0);
	CHECK_EQ(herd_wg_add(wg, INT_MAX), INT_MAX);
	CHECK_EQ(herd_wg_add(wg, INT_MAX), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, 1), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, INT_MIN), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, 0), INT_MAX);
	CHECK_EQ(herd_wg_add(wg, -INT_MAX), 0);
	CHECK_EQ(herd_wg_add(wg, 1), 1);
	CHECK_EQ(herd_wg_add(wg, INT_MIN), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, INT_MAX), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, INT_MAX - 1), INT_MAX);
	CHECK_EQ(herd_wg_add(wg, -INT_MAX), 0);
	CHECK_EQ(herd_wg_done(wg), -ERANGE);
	CHECK_EQ(herd_wg_add(wg, 0), 0);
	CHECK_OK(herd_wg_free(wg));
}

/* ------------------------------------------------------------------ */

static atomic_int cfg_ran;
static herd_stats cfg_stats;

static void cfg_main(void *arg)
{
	atomic_fetch_add(&cfg_ran, 1);
	CHECK_OK(herd_stats_get(&cfg_stats));
	/* Sleeping lets the monitor tick with the stall time given. */
	CHECK_OK(herd_sleep(herd_deadline(20 * HERD_MSEC)));
}

/* Every herd_config field out of its documented range, at either end, is
 * -EINVAL and nothing runs; the largest legal values run. */
TEST(config_out_of_range)
{
	herd_config bad[] = {
		{.workers = 1025},
		{.workers = UINT_MAX},
		{.stack_size = 1},
		{.stack_size = 16 * 1024 - 1},
		{.stack_size = ((size_t)1 << 30) + 1},
		{.stack_size = SIZE_MAX},
		{.stack_size = SIZE_MAX - 16},
		{.stack_size = PTRDIFF_MAX},
		{.debug = HERD_DEBUG_OFF - 1},
		{.debug = HERD_DEBUG_ON + 1},
		{.debug = INT_MIN},
		{.debug = INT_MAX},
		{.stall_ns = -1},
		{.stall_ns = INT64_MIN},
		{.stall_ns = HERD_MSEC - 1},
		{.blocking_threads = 1025},
		{.blocking_threads = UINT_MAX},
		{.flags = HERD_RUN_SIGQUIT_DUMP << 1},
		{.flags = UINT_MAX},
	};

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CHECK_EQ(herd_run(&bad[i], cfg_main, NULL), -EINVAL);
		CHECK_EQ(herd_workers(), -ESRCH);
	}
	CHECK_EQ(cfg_ran, 0);

	herd_config max = {
		.workers = 2,
		.stack_size = (size_t)1 << 30,
		.debug = HERD_DEBUG_ON,
		.stall_ns = INT64_MAX,
		.blocking_threads = 1024,
		.flags = HERD_RUN_CANCEL_ON_RETURN,
	};
	CHECK_OK(herd_run(&max, cfg_main, NULL));
	CHECK_EQ(cfg_ran, 1);
	CHECK_EQ(cfg_stats.stack_size, (size_t)1 << 30);
	CHECK_EQ(cfg_stats.workers, 2);
	CHECK_EQ(cfg_stats.debug, 1);
}

/* ------------------------------------------------------------------ */

static const char *const env_names[] = {
	"HERD_WORKERS", "HERD_STACK_SIZE", "HERD_DEBUG", "HERD_STALL_MS",
	"HERD_BLOCKING_THREADS", "HERD_GUARD",
};

struct env_case {
	const char *name, *value;
};

/* Values that must be ignored, with a warning. */
static const struct env_case env_bad[] = {
	{"HERD_WORKERS", "0"},
	{"HERD_WORKERS", "-1"},
	{"HERD_WORKERS", "1025"},
	{"HERD_WORKERS", "4294967297"},           /* 2^32 + 1 */
	{"HERD_WORKERS", "99999999999999999999"}, /* beyond long */
	{"HERD_WORKERS", "2x"},
	{"HERD_STACK_SIZE", "18446744073709551615"},
	{"HERD_STACK_SIZE", "18446744073709551616"},
	{"HERD_STACK_SIZE", "17179869184K"},      /* 2^44 */
	{"HERD_STACK_SIZE", "16777216G"},         /* 2^54 */
	{"HERD_STACK_SIZE", "2G"},
	{"HERD_STACK_SIZE", "1073741825"},
	{"HERD_STACK_SIZE", "-64K"},
	{"HERD_STACK_SIZE", " -1"},
	{"HERD_STACK_SIZE", "8K"},
	{"HERD_STACK_SIZE", "64KB"},
	{"HERD_DEBUG", "2"},
	{"HERD_STALL_MS", "0"},
	{"HERD_STALL_MS", "-1"},
	{"HERD_STALL_MS", "3600001"},
	{"HERD_STALL_MS", "9223372036854775807"},
	{"HERD_STALL_MS", "9223372036854775808"},
	{"HERD_BLOCKING_THREADS", "0"},
	{"HERD_BLOCKING_THREADS", "1025"},
	{"HERD_BLOCKING_THREADS", "4294967297"},
	{"HERD_BLOCKING_THREADS", "-4294967295"},
};

static const struct env_case *env_case;
static herd_stats env_got;

static void env_main(void *arg)
{
	CHECK_OK(herd_stats_get(&env_got));
}

/* In a child: a run with the variable set reports the same figures as one
 * without it. */
static void env_child(void)
{
	for (size_t i = 0; i < sizeof env_names / sizeof *env_names; i++)
		unsetenv(env_names[i]);
	CHECK_EQ(herd_run(NULL, env_main, NULL), 0);
	herd_stats plain = env_got;
	CHECK_EQ(setenv(env_case->name, env_case->value, 1), 0);
	CHECK_EQ(herd_run(NULL, env_main, NULL), 0);
	CHECK_EQ(env_got.workers, plain.workers);
	CHECK_EQ(env_got.stack_size, plain.stack_size);
	CHECK_EQ(env_got.debug, plain.debug);
}

/* The largest values each variable accepts. */
static void env_max_child(void)
{
	setenv("HERD_WORKERS", "1", 1);
	setenv("HERD_STACK_SIZE", "1G", 1);
	setenv("HERD_STALL_MS", "3600000", 1);
	setenv("HERD_BLOCKING_THREADS", "1024", 1);
	CHECK_EQ(herd_run(NULL, env_main, NULL), 0);
	CHECK_EQ(env_got.workers, 1);
	CHECK_EQ(env_got.stack_size, (size_t)1 << 30);
}

/* A HERD_* variable whose number is out of range, overflows its type, has
 * a sign or a bad suffix is ignored with one line on stderr, and changes
 * nothing; the largest legal values are taken. */
TEST(env_out_of_range)
{
	char buf[4096], want[128];

	for (size_t i = 0; i < sizeof env_bad / sizeof *env_bad; i++) {
		env_case = &env_bad[i];
		test_child_ok(test_child(env_child, buf, sizeof buf), buf);
		snprintf(want, sizeof want, "herd: ignoring %s=%s: ", env_case->name,
			 env_case->value);
		if (test_count(buf, want) != 1) {
			fprintf(stderr, "%s=%s: expected one warning, got:\n%s\n",
				env_case->name, env_case->value, buf);
			exit(1);
		}
	}
	test_child_ok(test_child(env_max_child, buf, sizeof buf), buf);
	CHECK_EQ(test_count(buf, "herd: ignoring"), 0);
}

/* ------------------------------------------------------------------ */

static void fd_main(void *arg)
{
	(void)arg;
	struct rusage before, after;
	CHECK(getrusage(RUSAGE_SELF, &before) == 0);
	/* Descriptors that are not open, however large: -EBADF, and the
	 * poller's table does not grow to their number. */
	static const int fds[] = {1 << 20, 1 << 26, INT_MAX - 1, INT_MAX};
	for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) {
		CHECK_EQ(herd_fd_wait(fds[i], HERD_READABLE, herd_deadline(HERD_SEC)), -EBADF);
		char c;
		CHECK_EQ(herd_read(fds[i], &c, 1, herd_deadline(HERD_SEC)), -EBADF);
	}
	CHECK(getrusage(RUSAGE_SELF, &after) == 0);
	/* ru_maxrss is in KiB: a table for 1 << 26 descriptors alone is
	 * 512 MiB. */
	CHECK(after.ru_maxrss - before.ru_maxrss < 64 * 1024);

	/* A count herd_write_all could not return. */
	int p[2];
	CHECK_OK(herd_pipe(p, HERD_NOWAIT));
	char buf[16] = "x";
	CHECK_EQ(herd_write_all(p[1], buf, (size_t)SSIZE_MAX + 1, herd_deadline(HERD_SEC)),
		 -EINVAL);
	CHECK_EQ(herd_write_all(p[1], buf, SIZE_MAX, herd_deadline(HERD_SEC)), -EINVAL);
	CHECK_EQ(herd_read(p[0], buf, sizeof buf, HERD_NOWAIT), HERD_ETIMEDOUT); /* nothing sent */
	herd_close(p[0]);
	herd_close(p[1]);
}

/* herd_fd_wait and herd_read on descriptors that are not open, up to
 * INT_MAX, return -EBADF and do not grow the poller's table to their
 * number (it grew by 512 MiB for 1 << 26, and asked for 16 GiB for
 * INT_MAX); herd_write_all refuses a count above SSIZE_MAX (-EINVAL), which
 * its result could not hold, and writes nothing. */
TEST(fd_extremes)
{
	test_run(2, fd_main, NULL);
}
