/*
 * test.h - the tests' small harness.
 *
 * A test file declares cases with TEST(name), LONG_TEST(name) or
 * SERIAL_TEST(name) (for cases that measure time); CMake finds
 * them in the source and runs each as `test-<area> <name>` in its own process
 * (see test/CMakeLists.txt). Run a test binary without arguments to list its
 * cases. CHECK* macros print where and why, then exit with status 1.
 */
#ifndef HERD_TEST_H
#define HERD_TEST_H

#include <herd.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef void (*test_fn)(void);

struct test_case {
	const char *name;
	test_fn fn;
};

#define TEST_MAX_CASES 128
static struct test_case test_cases[TEST_MAX_CASES];
static int test_ncases;

static inline void test_register(const char *name, test_fn fn)
{
	if (test_ncases < TEST_MAX_CASES)
		test_cases[test_ncases++] = (struct test_case){name, fn};
}

#define TEST(name)                                                        \
	static void test_##name(void);                                    \
	__attribute__((constructor)) static void test_reg_##name(void)     \
	{                                                                 \
		test_register(#name, test_##name);                        \
	}                                                                 \
	static void test_##name(void)
#define LONG_TEST(name) TEST(name)
#define SERIAL_TEST(name) TEST(name)

/* A case that cannot run on this machine (no writable cgroup, no root)
 * says why and exits with TEST_SKIP_CODE, which CTest reports as skipped,
 * never as passed (SKIP_RETURN_CODE in test/CMakeLists.txt). */
#define TEST_SKIP_CODE 77
#define TEST_SKIP(why)                                                    \
	do {                                                              \
		printf("skipped: %s\n", (why));                            \
		fflush(stdout);                                           \
		exit(TEST_SKIP_CODE);                                     \
	} while (0)

#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",      \
				__FILE__, __LINE__, #cond);               \
			exit(1);                                          \
		}                                                         \
	} while (0)

#define CHECK_EQ(a, b)                                                    \
	do {                                                              \
		long long check_a_ = (long long)(a);                      \
		long long check_b_ = (long long)(b);                      \
		if (check_a_ != check_b_) {                               \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s "  \
				"(%lld != %lld)\n", __FILE__, __LINE__,    \
				#a, #b, check_a_, check_b_);              \
			exit(1);                                          \
		}                                                         \
	} while (0)

/* CHECK, showing `text` (a program's output, say) when it fails. */
#define CHECK_TEXT(text, cond)                                             \
	do {                                                              \
		if (!(cond))                                              \
			fprintf(stderr, "the text:\n%s\n", (text));        \
		CHECK(cond);                                              \
	} while (0)

/* A herd call that must succeed; prints the code's name if it does not. */
#define CHECK_OK(call)                                                    \
	do {                                                              \
		int check_rc_ = (call);                                   \
		if (check_rc_ < 0) {                                      \
			fprintf(stderr, "%s:%d: %s failed: %d (%s)\n",    \
				__FILE__, __LINE__, #call, check_rc_,     \
				herd_strerror(check_rc_));                \
			exit(1);                                          \
		}                                                         \
	} while (0)

/*
 * Sanitizers make tasks much heavier (TSan registers each task as a fiber,
 * and it has a limit on live fibers), so stress counts are divided by this.
 */
#if defined(HERD_TEST_SANITIZE_thread)
#define TEST_SCALE 50
#elif defined(HERD_TEST_SANITIZE_address)
#define TEST_SCALE 4
#else
#define TEST_SCALE 1
#endif
#define TEST_UNDER_TSAN (TEST_SCALE == 50)

/* A channel the test needs: fails the test if it cannot be made. */
static inline herd_chan *make_chan(size_t elem, size_t cap)
{
	herd_chan *ch;
	CHECK_OK(herd_chan_make(&ch, elem, cap));
	return ch;
}

/* xorshift64: cheap, reproducible pseudo-random numbers (shuffles, delays,
 * deadlines); *s is the state, never 0. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/*
 * The emulator the tests run under, if any: $HERD_TEST_EMULATOR, words
 * separated by spaces (e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu"; CMake
 * sets it from CMAKE_CROSSCOMPILING_EMULATOR, see test/CMakeLists.txt), or
 * NULL. A test that executes one of the build's own programs (itself, the
 * herd command) runs it through this, as CTest runs the test itself.
 */
static inline const char *test_emulator(void)
{
	const char *e = getenv("HERD_TEST_EMULATOR");
	return e && *e ? e : NULL;
}

/* Runs fn(arg) as the first task of a runtime with `workers` workers (0: default). */
static inline void test_run(unsigned workers, herd_fn fn, void *arg)
{
	herd_config cfg = {0};
	cfg.workers = workers;
	int rc = herd_run(&cfg, fn, arg);
	if (rc != 0) {
		fprintf(stderr, "herd_run failed: %d (%s)\n", rc, herd_strerror(rc));
		exit(1);
	}
}

/* test_run with the deadlock check off, for a case in which every task
 * may wait for a plain thread of the test's (its send, or the room its
 * receive makes), which herd cannot see (herd.h,
 * HERD_RUN_NO_DEADLOCK_CHECK): a thread kept off the CPU for 200 ms on a
 * loaded machine would be reported as a deadlock. A lost wake-up then
 * hangs the case until its timeout instead. */
static inline void test_run_threads(unsigned workers, herd_fn fn, void *arg)
{
	herd_config cfg = {0};
	cfg.workers = workers;
	cfg.flags = HERD_RUN_NO_DEADLOCK_CHECK;
	int rc = herd_run(&cfg, fn, arg);
	if (rc != 0) {
		fprintf(stderr, "herd_run failed: %d (%s)\n", rc, herd_strerror(rc));
		exit(1);
	}
}

/* CPU time used by the whole process so far, in nanoseconds. */
static inline int64_t test_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Runs fn in a forked child with stderr captured into buf (NUL-terminated,
 * truncated to size - 1). Returns the child's wait status. Call it before
 * the test starts a runtime, so that the fork copies a single thread.
 */
static inline int test_child(void (*fn)(void), char *buf, size_t size)
{
	int p[2];
	CHECK(pipe(p) == 0);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 2);
		close(p[1]);
		fn();
		fflush(NULL);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(p[0], buf + n, size - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == size - 1) {
			char sink[4096];
			while (read(p[0], sink, sizeof sink) > 0)
				;
			break;
		}
	}
	buf[n] = 0;
	close(p[0]);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	return status;
}

/* Fails, showing the child's stderr, unless the child exited with status 0. */
static inline void test_child_ok(int status, const char *buf)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	fprintf(stderr, "child failed (wait status 0x%x); its stderr:\n%s\n",
		(unsigned)status, buf);
	exit(1);
}

/*
 * From a task: waits until herd_stats_get counts at least n parked tasks, to
 * know that the tasks a test started have reached their blocking calls.
 * Fails after 20 s.
 */
static inline void test_wait_parked(uint64_t n)
{
	int64_t give_up = herd_deadline(20 * HERD_SEC);
	herd_stats st;

	for (;;) {
		CHECK_OK(herd_stats_get(&st));
		if (st.tasks_parked >= n)
			break;
		if (herd_now() > give_up) {
			fprintf(stderr, "test_wait_parked: %" PRIu64 " of %" PRIu64
				" tasks parked after 20 s\n", st.tasks_parked, n);
			exit(1);
		}
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	}
	/* The counter may lead the actual switch away by a moment. */
	CHECK_OK(herd_sleep(herd_deadline(2 * HERD_MSEC)));
}

/* Counts the occurrences of needle in haystack. */
static inline int test_count(const char *haystack, const char *needle)
{
	int n = 0;
	size_t len = strlen(needle);
	for (const char *p = haystack; (p = strstr(p, needle)); p += len)
		n++;
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		for (int i = 0; i < test_ncases; i++)
			printf("%s\n", test_cases[i].name);
		return 0;
	}
	for (int i = 0; i < test_ncases; i++) {
		if (strcmp(test_cases[i].name, argv[1]) == 0) {
			test_cases[i].fn();
			return 0;
		}
	}
	fprintf(stderr, "no test case named '%s'\n", argv[1]);
	return 2;
}

/*
 * The end of a round of the "release, then free at once" tests: the caller
 * has just got a lock (or a wake) that another party released, and frees
 * the lock's memory obj at once, as a program may (POSIX allows freeing a
 * mutex right after it is unlocked); *released turns 1 when that party's
 * call has returned. Under ASan the memory is freed at once, so that a
 * write by the releaser after its release is a use after free; elsewhere
 * it is filled with 0xAB and checked once the releaser has returned (its
 * internal lock word would read 0), then freed.
 */
static inline void test_free_released(void *obj, size_t size, atomic_int *released)
{
#if defined(HERD_TEST_SANITIZE_address)
	free(obj);
	while (!atomic_load(released))
		CHECK_OK(herd_yield());
#else
	memset(obj, 0xAB, size);
	while (!atomic_load(released))
		CHECK_OK(herd_yield());
	for (size_t i = 0; i < size; i++) {
		unsigned char b = ((unsigned char *)obj)[i];
		if (b != 0xAB) {
			fprintf(stderr, "byte %zu of the freed lock was written "
				"after its release: 0x%02x\n", i, b);
			exit(1);
		}
	}
	free(obj);
#endif
}

#endif
