/*
 * test-time.c - time, deadlines and sleeping. Covers herd_now (positive,
 * monotonic, the CLOCK_MONOTONIC clock), herd_deadline (negative timeouts,
 * saturation), herd_sleep (never early, in deadline order across many tasks,
 * its special deadlines and its use outside a task) and herd_strerror.
 */
#include "test.h"

#include <stdatomic.h>
#include <stdbool.h>

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void now_checks(void)
{
	int64_t prev = herd_now(), t0, t1, h, d;

	CHECK(prev > 0);
	for (int i = 0; i < 1000; i++) {
		int64_t t = herd_now();
		CHECK(t >= prev);
		prev = t;
	}
	t0 = mono_ns();
	h = herd_now();
	t1 = mono_ns();
	CHECK(t0 <= h && h <= t1);
	CHECK_EQ(herd_deadline(-5), HERD_FOREVER);
	CHECK_EQ(herd_deadline(-1), HERD_FOREVER);
	CHECK_EQ(herd_deadline(INT64_MIN), HERD_FOREVER);
	d = herd_deadline(INT64_MAX);
	CHECK(d > 0 && d >= herd_now());
	d = herd_deadline(INT64_MAX - 1);
	CHECK(d > 0 && d >= herd_now());
	t0 = herd_now();
	d = herd_deadline(0);
	CHECK(d >= t0 && d <= herd_now());
	t0 = herd_now();
	d = herd_deadline(HERD_SEC);
	CHECK(d >= t0 + HERD_SEC && d <= herd_now() + HERD_SEC);
}

static void now_main(void *arg)
{
	now_checks();
}

/* herd_now is the positive monotonic clock; herd_deadline saturates. */
TEST(now_monotonic)
{
	now_checks();
	test_run(2, now_main, NULL);
}

/* ------------------------------------------------------------------ */

static void sleep_main(void *arg)
{
	static const int64_t waits[] = { 1, HERD_USEC, HERD_MSEC, 20 * HERD_MSEC };

	for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
		int64_t d = herd_deadline(waits[i]);
		CHECK_EQ(herd_sleep(d), 0);
		CHECK(herd_now() >= d);
	}
	/* A deadline already past returns at once, successfully. */
	CHECK_EQ(herd_sleep(1), 0);
	CHECK_EQ(herd_sleep(herd_now() - HERD_MSEC), 0);
}

/* herd_sleep returns 0, never before its deadline. */
TEST(sleep_not_early)
{
	test_run(2, sleep_main, NULL);
}

/* ------------------------------------------------------------------ */

#define SMO_N (10000 / TEST_SCALE)
#define SMO_BUCKETS 20
#define SMO_BUCKET_NS (10 * HERD_MSEC)

struct smo_arg {
	int idx;
	int64_t offset; /* from the common base */
};

static herd_wg *smo_gate;
static _Atomic int64_t smo_base;
static atomic_int smo_seq, smo_late;
static atomic_int smo_woke[SMO_N], smo_was_late[SMO_N];
static bool smo_in_order; /* the run's verdict, but for "never early" */

static void smo_task(void *p)
{
	struct smo_arg a = *(struct smo_arg *)p;
	int64_t deadline;

	CHECK_OK(herd_wg_wait(smo_gate, HERD_FOREVER));
	deadline = atomic_load(&smo_base) + a.offset;
	if (herd_now() >= deadline) {
		atomic_fetch_add(&smo_late, 1);
		atomic_store(&smo_was_late[a.idx], 1);
	}
	CHECK_EQ(herd_sleep(deadline), 0);
	CHECK(herd_now() >= deadline);
	atomic_store(&smo_woke[a.idx], atomic_fetch_add(&smo_seq, 1));
}

static int64_t smo_offset(int idx)
{
	uint64_t x = (uint64_t)idx * 0x9e3779b97f4a7c15u;
	int64_t within = (int64_t)((x >> 33) % (uint64_t)SMO_BUCKET_NS);

	return (idx % SMO_BUCKETS) * SMO_BUCKET_NS + within;
}

static void smo_main(void *arg)
{
	static int order[SMO_N];
	int lo[SMO_BUCKETS], hi[SMO_BUCKETS];
	uint64_t rng = 12345;
	herd_scope *s;

	for (int i = 0; i < SMO_N; i++)
		order[i] = i;
	for (int i = SMO_N - 1; i > 0; i--) { /* Fisher-Yates */
		int j = (int)(rng_next(&rng) % (uint64_t)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	CHECK_OK(herd_wg_new(&smo_gate));
	CHECK_EQ(herd_wg_add(smo_gate, 1), 1);
	CHECK_OK(herd_scope_open(&s));
	int64_t t0 = herd_now();
	for (int i = 0; i < SMO_N; i++) {
		struct smo_arg a = { order[i], smo_offset(order[i]) };
		CHECK_OK(herd_go(s, smo_task, &a, sizeof a));
	}
	/* Every task sleeps from a common base, once all are ready: 250 ms
	 * later, or three times what starting them took (a busy machine). */
	test_wait_parked(SMO_N);
	int64_t lead = 250 * HERD_MSEC;
	if (lead < 3 * (herd_now() - t0))
		lead = 3 * (herd_now() - t0);
	atomic_store(&smo_base, herd_now() + lead);
	CHECK_EQ(herd_wg_done(smo_gate), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_wg_free(smo_gate));
	CHECK_EQ(smo_seq, SMO_N);
	/* A task woken from the gate after its deadline proves nothing. */
	smo_in_order = false;
	if (smo_late)
		printf("%d tasks started sleeping after their deadline\n",
		       (int)smo_late);
	if (smo_late >= SMO_N / 10)
		return;
	for (int k = 0; k < SMO_BUCKETS; k++) {
		lo[k] = SMO_N;
		hi[k] = -1;
	}
	for (int i = 0; i < SMO_N; i++) {
		int k = i % SMO_BUCKETS, seq = smo_woke[i];
		if (smo_was_late[i])
			continue;
		lo[k] = seq < lo[k] ? seq : lo[k];
		hi[k] = seq > hi[k] ? seq : hi[k];
	}
	/* Deadlines at least 10 ms apart wake in order. */
	smo_in_order = true;
	for (int k = 0; k + 2 < SMO_BUCKETS; k++) {
		if (hi[k] >= lo[k + 2]) {
			printf("bucket %d's last task woke as %d, bucket %d's first as %d\n",
			       k, hi[k], k + 2, lo[k + 2]);
			smo_in_order = false;
		}
	}
}

/* Many sleepers wake in deadline order, none before its deadline. The
 * order is the order in which the four workers ran the woken tasks: a
 * worker thread that the system preempts for more than 10 ms (a busy
 * machine) between waking a task and running it puts it out of order, as
 * a late timer would, and nothing tells the two apart. So the run is made
 * again, three times at most, while it is out of order; "never early" is
 * checked on every run. */
SERIAL_TEST(sleep_many_order)
{
	for (int run = 1;; run++) {
		atomic_store(&smo_seq, 0);
		atomic_store(&smo_late, 0);
		for (int i = 0; i < SMO_N; i++) {
			atomic_store(&smo_woke[i], 0);
			atomic_store(&smo_was_late[i], 0);
		}
		test_run(4, smo_main, NULL);
		if (smo_in_order)
			return;
		CHECK(run < 3);
		printf("run %d: out of order, or too many tasks late; again\n", run);
	}
}

/* ------------------------------------------------------------------ */

static void sfi_main(void *arg)
{
	CHECK_EQ(herd_sleep(HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_sleep(HERD_NOWAIT), 0);
}

/* herd_sleep: HERD_FOREVER is -EINVAL, HERD_NOWAIT is 0, outside a task -EPERM. */
TEST(sleep_forever_invalid)
{
	CHECK_EQ(herd_sleep(herd_deadline(HERD_MSEC)), -EPERM);
	CHECK_EQ(herd_sleep(herd_deadline(HERD_SEC)), -EPERM);
	test_run(2, sfi_main, NULL);
	CHECK_EQ(herd_sleep(herd_deadline(HERD_MSEC)), -EPERM);
}

/* ------------------------------------------------------------------ */

/* herd_strerror names every code with a non-empty static string. */
TEST(strerror)
{
	static const int codes[] = { 0, HERD_ECANCELED, HERD_ETIMEDOUT, HERD_ECLOSED,
				     -ENOMEM, -EINVAL, -12345, -1, 12345 };
	const char *s[sizeof codes / sizeof codes[0]];

	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		s[i] = herd_strerror(codes[i]);
		CHECK(s[i] != NULL);
		CHECK(s[i][0] != 0);
	}
	/* herd's three codes, success and an unknown code: five strings. */
	for (int i = 0; i < 4; i++) {
		for (int j = i + 1; j < 4; j++)
			CHECK(strcmp(s[i], s[j]) != 0);
		CHECK(strcmp(s[i], s[6]) != 0);
	}
	CHECK(strcmp(s[4], s[5]) != 0); /* -ENOMEM and -EINVAL differ */
	/* The same pointer, or at least the same text, on each call. */
	CHECK(strcmp(herd_strerror(HERD_ECANCELED), s[1]) == 0);
}
