/*
 * test-stack.c - task stacks. Covers the report of a stack overflow (with
 * guard pages from MADV_GUARD_INSTALL or mprotect, and with the canary
 * checked at each switch), the configured and default stack sizes (herd_config
 * and HERD_STACK_SIZE, its page rounding, bounds and parse errors), a task
 * that uses most of its stack legitimately, herd_stats_get, and a million
 * parked tasks that must not cost one memory mapping each.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define KIB ((size_t)1024)
#define DEFAULT_STACK (64 * KIB)

/*
 * Overflow tests under TSan: set to 1, with the reason, if herd's report
 * cannot work there (decided once the library runs under TSan).
 */
#define OVERFLOW_SKIP_UNDER_TSAN 0
#define OVERFLOW_SKIP_REASON "TSan cannot run the overflow handler"

static size_t page_round(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n + page - 1) / page * page;
}

/* ------------------------------------------------------------------ */
/* Recursion that the compiler cannot turn into a loop: each frame lends
 * its array to the next, so it must live until the call returns. */

static volatile int recurse_limit = INT32_MAX;

static int recurse(volatile char *parent, int depth)
{
	volatile char frame[256];

	frame[0] = (char)depth;
	frame[255] = parent[0];
	if (depth == recurse_limit)
		return frame[0];
	return recurse(frame, depth + 1) + frame[255];
}

/* Recurses until `target` bytes of stack lie below `top`, then yields. */
static int deep(volatile char *parent, char *top, size_t target)
{
	volatile char frame[256];
	char *here = __builtin_frame_address(0);

	frame[0] = (char)(top - here);
	frame[255] = parent[0];
	if ((size_t)(top - here) >= target) {
		/* A switch at the deepest point: a canary must still be intact. */
		CHECK_OK(herd_yield());
		return frame[0];
	}
	return deep(frame, top, target) + frame[255];
}

static void deep_use(size_t target)
{
	volatile char start[1] = { 1 };

	deep(start, __builtin_frame_address(0), target);
}

/* ------------------------------------------------------------------ */

static size_t ovf_stack_size;   /* herd_config.stack_size; 0: default */
static const char *ovf_guard;   /* HERD_GUARD in the child, or NULL */
static int ovf_expect_guard;    /* stats.stack_guard expected, or 0 */
static int ovf_vla;             /* overflow with one big array */

static void ovf_big_array(size_t stack_size)
{
	size_t n = stack_size + 8 * KIB;
	char big[n];

	memset(big, 0x5a, n);
	__asm__ __volatile__("" : : "r"(big) : "memory");
	herd_yield();
}

static void ovf_task(void *p)
{
	volatile char start[1] = { 0 };
	herd_stats st;

	CHECK_OK(herd_stats_get(&st));
	if (ovf_expect_guard)
		CHECK_EQ(st.stack_guard, ovf_expect_guard);
	fprintf(stderr, "overflowing task %" PRIu64 "\n", herd_task_id());
	if (ovf_vla)
		ovf_big_array(st.stack_size);
	else
		recurse(start, 0);
	fprintf(stderr, "the overflow went unnoticed\n");
}

static void ovf_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, ovf_task, NULL, 0));
	CHECK_OK(herd_scope_close(s));
}

static void ovf_child(void)
{
	struct rlimit no_core = { 0, 0 };
	herd_config cfg = { .workers = 2, .stack_size = ovf_stack_size };

	setrlimit(RLIMIT_CORE, &no_core);
	unsetenv("HERD_STACK_SIZE");
	if (ovf_guard)
		setenv("HERD_GUARD", ovf_guard, 1);
	else
		unsetenv("HERD_GUARD");
	CHECK_OK(herd_run(&cfg, ovf_main, NULL));
}

/* herd's report: "herd: task N overflowed its stack (size S)"; 1 if found. */
static int ovf_parse(const char *buf, unsigned long long *id,
		     unsigned long long *size)
{
	const char *m = strstr(buf, "herd: task ");
	int end = -1;

	if (!m)
		return 0;
	return sscanf(m, "herd: task %llu overflowed its stack (size %llu)%n",
		      id, size, &end) == 2 && end > 0;
}

static void ovf_expect(size_t expect_size)
{
	static char buf[1 << 16];
	unsigned long long printed = 0, id = 0, size = 0;
	const char *pr;
	int st, found, ok;

	st = test_child(ovf_child, buf, sizeof buf);
	found = ovf_parse(buf, &id, &size);
	pr = strstr(buf, "overflowing task ");
	ok = pr && sscanf(pr, "overflowing task %llu", &printed) == 1 &&
	     !strstr(buf, "went unnoticed");
#if defined(HERD_TEST_SANITIZE_address)
	/* ASan may catch the overflow first and exit with its own report. */
	ok = ok && (!WIFEXITED(st) || WEXITSTATUS(st) != 0) &&
	     (found || strstr(buf, "stack-overflow") || strstr(buf, "SEGV"));
#else
	ok = ok && found && WIFSIGNALED(st);
#endif
	if (!ok)
		fprintf(stderr, "wait status 0x%x, stderr:\n%s\n", (unsigned)st, buf);
	CHECK(ok);
	if (found) {
		CHECK_EQ(id, printed);
		CHECK_EQ(size, expect_size);
	}
}

static int ovf_skipped(void)
{
#if TEST_UNDER_TSAN && OVERFLOW_SKIP_UNDER_TSAN
	TEST_SKIP(OVERFLOW_SKIP_REASON);
#else
	return 0;
#endif
}

/* Whether madvise(MADV_GUARD_INSTALL), when it succeeds, makes a page
 * fault (a child writes to a guarded page). qemu-user (7.2) answers
 * success to advice it does not know without asking the kernel, and
 * installs nothing. A kernel without it fails the call, and herd falls
 * back to mprotect: that is fine here. */
static int madvise_guard_works(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(p != MAP_FAILED);
	if (madvise(p, page, 102 /* MADV_GUARD_INSTALL */) < 0) {
		munmap(p, page);
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core);
		*(volatile char *)p = 1;
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	munmap(p, page);
	return WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS);
}

/* An overflow kills the process with a report naming the task and stack size. */
TEST(overflow_reported)
{
	if (ovf_skipped())
		return;
	if (!madvise_guard_works())
		TEST_SKIP("madvise(MADV_GUARD_INSTALL) succeeds but guards nothing (qemu-user "
			  "ignores advice it does not know), so herd's default guard is none; "
			  "overflow_reported_mprotect and overflow_canary cover the report");
	ovf_expect(DEFAULT_STACK);
	ovf_stack_size = 128 * KIB;
	ovf_expect(128 * KIB);
}

/* The same with PROT_NONE guard pages (kernels without MADV_GUARD_INSTALL). */
TEST(overflow_reported_mprotect)
{
	if (ovf_skipped())
		return;
	ovf_guard = "mprotect";
	ovf_expect_guard = HERD_GUARD_MPROTECT;
	ovf_expect(DEFAULT_STACK);
}

/* Without guard pages, the canary catches an overflow at the next switch. */
TEST(overflow_canary)
{
	if (ovf_skipped())
		return;
	ovf_guard = "canary";
	ovf_expect_guard = HERD_GUARD_CANARY;
	ovf_vla = 1;
	ovf_expect(DEFAULT_STACK);
}

/* ------------------------------------------------------------------ */

#define DEEP_TASKS 4

static atomic_int deep_done;

static void deep_task(void *p)
{
	herd_stats st;

	CHECK_OK(herd_stats_get(&st));
	deep_use(st.stack_size / 4 * 3);
	atomic_fetch_add(&deep_done, 1);
}

static void deep_main(void *arg)
{
	herd_scope *s;

	atomic_store(&deep_done, 0);
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < DEEP_TASKS; i++)
		CHECK_OK(herd_go(s, deep_task, NULL, 0));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(deep_done, DEEP_TASKS);
}

static const char *deep_guard;

static void deep_child(void)
{
	/* Nothing may be printed, and under TSan a deep task can take
	 * longer than the stall warning's default 10 ms. */
	herd_config cfg = { .workers = 2, .stall_ns = 10 * HERD_SEC };

	unsetenv("HERD_STACK_SIZE");
	setenv("HERD_GUARD", deep_guard, 1);
	CHECK_OK(herd_run(&cfg, deep_main, NULL));
}

/* A task may use three quarters of its stack and return normally. */
TEST(deep_but_fits)
{
	static const char *guards[] = { "mprotect", "canary" };
	static char buf[8192];

	unsetenv("HERD_STACK_SIZE");
	unsetenv("HERD_GUARD");
	test_run(2, deep_main, NULL);
	for (size_t i = 0; i < sizeof guards / sizeof guards[0]; i++) {
		deep_guard = guards[i];
		test_child_ok(test_child(deep_child, buf, sizeof buf), buf);
		CHECK_EQ(buf[0], 0);
	}
}

/* ------------------------------------------------------------------ */

/* TSan registers every started task as a fiber and dies past 8128 live
 * ones, so its build parks fewer (the mapping count is what is tested). */
#if TEST_UNDER_TSAN
#define PARKED_N 2000 /* each fiber costs TSan ~0.9 MB and 4 mappings */
#else
#define PARKED_N (1000000 / TEST_SCALE)
#endif

static atomic_long parked_ended;

static void parked_task(void *p)
{
	CHECK_EQ(herd_wg_wait(*(herd_wg **)p, HERD_FOREVER), 0);
	atomic_fetch_add_explicit(&parked_ended, 1, memory_order_relaxed);
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = 0;
	int c;

	CHECK(f != NULL);
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* A "Name:   123 kB" field of /proc/self/status, in KiB; -1 if absent. */
static long status_kib(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t len = strlen(name);

	CHECK(f != NULL);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, name, len) == 0 && line[len] == ':')
			v = strtol(line + len + 1, NULL, 10);
	fclose(f);
	return v;
}

static void parked_main(void *arg)
{
	int64_t give_up = herd_deadline(240 * HERD_SEC);
	herd_wg *wg;
	herd_scope *s;
	herd_stats st;
	long maps, rss;

	CHECK_OK(herd_wg_new(&wg));
	CHECK_EQ(herd_wg_add(wg, 1), 1);
	CHECK_OK(herd_scope_open(&s));
	for (long i = 0; i < PARKED_N; i++)
		CHECK_OK(HERD_GO(s, parked_task, wg));
	for (;;) {
		CHECK_OK(herd_stats_get(&st));
		if (st.tasks_parked >= (uint64_t)PARKED_N)
			break;
		if (herd_now() > give_up)
			fprintf(stderr, "%" PRIu64 " parked\n", st.tasks_parked);
		CHECK(herd_now() <= give_up);
		CHECK_OK(herd_sleep(herd_deadline(10 * HERD_MSEC)));
	}
	CHECK(st.tasks >= (uint64_t)PARKED_N);
	maps = count_lines("/proc/self/maps");
	rss = status_kib("VmRSS");
	printf("%d tasks parked: %ld mappings, VmRSS %ld KiB (%.0f bytes per task), "
	       "%" PRIu64 " stacks, %" PRIu64 " guarded, guard mode %d\n",
	       PARKED_N, maps, rss, rss * 1024.0 / PARKED_N, st.stacks,
	       st.stacks_guarded, st.stack_guard);
	CHECK(maps < 30000);
	CHECK_EQ(herd_wg_done(wg), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(parked_ended, PARKED_N);
	CHECK_OK(herd_wg_free(wg));
}

/* A million tasks can be parked at once, without a mapping per stack. */
LONG_TEST(million_parked)
{
	test_run(0, parked_main, NULL);
}

/* ------------------------------------------------------------------ */

#define STATS_BLOCKED 10

static int stats_thread_rc = 1;
static herd_stats stats_thread_st;

static void *stats_thread(void *arg)
{
	stats_thread_rc = herd_stats_get(&stats_thread_st);
	return NULL;
}

static void stats_waiter(void *p)
{
	CHECK_OK(herd_wg_wait(*(herd_wg **)p, HERD_FOREVER));
}

static void stats_check(const herd_stats *st, uint64_t tasks)
{
	CHECK_EQ(st->workers, 3);
	CHECK_EQ(st->stack_size, DEFAULT_STACK);
	CHECK(st->stack_guard == HERD_GUARD_MADVISE ||
	      st->stack_guard == HERD_GUARD_MPROTECT ||
	      st->stack_guard == HERD_GUARD_CANARY);
	CHECK(st->tasks >= tasks);
	CHECK(st->tasks_spawned >= tasks);
	CHECK(st->stacks >= tasks);
	CHECK(st->stacks_guarded <= st->stacks);
	if (st->stack_guard == HERD_GUARD_MADVISE)
		CHECK_EQ(st->stacks_guarded, st->stacks);
	if (st->stack_guard == HERD_GUARD_CANARY)
		CHECK_EQ(st->stacks_guarded, 0);
}

static void stats_main(void *arg)
{
	herd_wg *wg;
	herd_scope *s;
	herd_stats st;
	pthread_t t;

	CHECK_OK(herd_stats_get(&st));
	stats_check(&st, 1);
	CHECK_EQ(herd_stats_get(NULL), -EINVAL);
	CHECK_OK(herd_wg_new(&wg));
	CHECK_EQ(herd_wg_add(wg, 1), 1);
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < STATS_BLOCKED; i++)
		CHECK_OK(HERD_GO(s, stats_waiter, wg));
	test_wait_parked(STATS_BLOCKED);
	CHECK_OK(herd_stats_get(&st));
	stats_check(&st, 1 + STATS_BLOCKED);
	/* Callable from a thread that is not a worker. */
	CHECK(pthread_create(&t, NULL, stats_thread, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK_EQ(stats_thread_rc, 0);
	stats_check(&stats_thread_st, 1 + STATS_BLOCKED);
	CHECK_EQ(herd_wg_done(wg), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_wg_free(wg));
}

/* herd_stats_get describes the running runtime; -ESRCH when none runs. */
TEST(stats_basic)
{
	herd_stats st, copy;

	unsetenv("HERD_STACK_SIZE");
	memset(&st, 0xab, sizeof st);
	memcpy(&copy, &st, sizeof st);
	CHECK_EQ(herd_stats_get(&st), -ESRCH);
	CHECK(memcmp(&st, &copy, sizeof st) == 0); /* a failed call changes nothing */
	test_run(3, stats_main, NULL);
	CHECK_EQ(herd_stats_get(&st), -ESRCH);
}

/* ------------------------------------------------------------------ */

struct sse_case {
	const char *env;  /* HERD_STACK_SIZE */
	size_t expect;    /* stats.stack_size */
	int warn;         /* one line on stderr naming the variable */
};

static const struct sse_case *sse_cur;

static void sse_main(void *arg)
{
	herd_stats st;

	CHECK_OK(herd_stats_get(&st));
	CHECK_EQ(st.stack_size, sse_cur->expect);
	deep_use(st.stack_size / 4 * 3); /* the stack is as big as it says */
}

static void sse_child(void)
{
	unsetenv("HERD_GUARD");
	setenv("HERD_STACK_SIZE", sse_cur->env, 1);
	CHECK_EQ(herd_main(sse_main, NULL), 0);
}

/* HERD_STACK_SIZE sets the default stack size; junk is reported and ignored. */
TEST(stack_size_env)
{
	struct sse_case cases[] = {
		{ "256K", 256 * KIB, 0 },
		{ "1M", 1024 * KIB, 0 },
		{ "100000", page_round(100000), 0 },
		{ "banana", DEFAULT_STACK, 1 },
	};
	static char buf[8192];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sse_cur = &cases[i];
		test_child_ok(test_child(sse_child, buf, sizeof buf), buf);
		if (cases[i].warn) {
			CHECK_EQ(test_count(buf, "\n"), 1);
			CHECK(strstr(buf, "HERD_STACK_SIZE") != NULL);
		} else {
			CHECK_EQ(buf[0], 0);
		}
	}
}

/* ------------------------------------------------------------------ */

static size_t ssc_expect;
static atomic_int ssc_ran;

static void ssc_main(void *arg)
{
	herd_stats st;

	atomic_fetch_add(&ssc_ran, 1);
	CHECK_OK(herd_stats_get(&st));
	CHECK_EQ(st.stack_size, ssc_expect);
	deep_use(st.stack_size / 2);
}

static int ssc_run(size_t size, size_t expect)
{
	herd_config cfg = { .workers = 2, .stack_size = size };

	ssc_expect = expect;
	return herd_run(&cfg, ssc_main, NULL);
}

/* herd_config.stack_size overrides HERD_STACK_SIZE, rounds up, has bounds. */
TEST(stack_size_config)
{
	setenv("HERD_STACK_SIZE", "256K", 1);
	CHECK_EQ(ssc_run(128 * KIB, 128 * KIB), 0);
	CHECK_EQ(ssc_run(100000, page_round(100000)), 0);
	CHECK_EQ(ssc_run(page_round(16 * KIB), page_round(16 * KIB)), 0);
	CHECK_EQ(ssc_run(0, 256 * KIB), 0);
	CHECK_EQ(ssc_ran, 4);
	CHECK_EQ(ssc_run(8 * KIB, 0), -EINVAL);
	CHECK_EQ(ssc_run(((size_t)1 << 30) + 1, 0), -EINVAL);
	CHECK_EQ(ssc_run((size_t)1 << 31, 0), -EINVAL);
	CHECK_EQ(ssc_ran, 4);
}
