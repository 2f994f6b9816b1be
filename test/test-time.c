/*
 * test-time.c - time, deadlines and sleeping. Covers herd_now (positive,
 * monotonic, the CLOCK_MONOTONIC clock), herd_deadline (negative timeouts,
 * saturation), herd_sleep (never early, in deadline order across many tasks,
 * its special deadlines and its use outside a task), timers across workers
 * (removed from the middle of the heap while others expire, a timer
 * expiring on one worker while its task is woken on another, many removed
 * timers left in the heap, deadlines in the past and far in the future)
 * and herd_strerror.
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

/*
 * A timer expiring while another worker wakes its task: many tasks wait on
 * a wait group with one deadline, and the main task completes the group
 * at that deadline, so that the timers fire on some workers while the
 * group wakes the same tasks on others. Either may win; then each task
 * waits again, on a group nobody completes, with a short deadline: a timer
 * of the first wait that claimed the second would end it early. Every
 * wait is checked never to end before its deadline when it times out.
 */
#define DR_TASKS 64
#define DR_ROUNDS (100 / (TEST_SCALE > 10 ? 10 : TEST_SCALE))

static herd_wg *dr_gate, *dr_never;
static _Atomic int64_t dr_deadline;
static atomic_int dr_done, dr_woken, dr_timedout;

static void dr_task(void *arg)
{
	int64_t d = atomic_load(&dr_deadline);
	int rc = herd_wg_wait(dr_gate, d);

	if (rc == 0) {
		CHECK(atomic_load(&dr_done)); /* only once the group completed */
		atomic_fetch_add(&dr_woken, 1);
	} else {
		CHECK_EQ(rc, HERD_ETIMEDOUT);
		CHECK(herd_now() >= d);
		atomic_fetch_add(&dr_timedout, 1);
	}
	int64_t d2 = herd_deadline(300 * HERD_USEC);
	CHECK_EQ(herd_wg_wait(dr_never, d2), HERD_ETIMEDOUT);
	CHECK(herd_now() >= d2);
}

static void dr_main(void *arg)
{
	CHECK_OK(herd_wg_new(&dr_never));
	CHECK_EQ(herd_wg_add(dr_never, 1), 1);
	for (int round = 0; round < DR_ROUNDS; round++) {
		herd_scope *s;

		CHECK_OK(herd_wg_new(&dr_gate));
		CHECK_EQ(herd_wg_add(dr_gate, 1), 1);
		atomic_store(&dr_done, 0);
		/* Spread over 0 to 2 ms from round to round, so that the race
		 * falls at different points of the timers' expiry. */
		int64_t d = herd_deadline(HERD_MSEC + (round % 9) * 250 * HERD_USEC);
		atomic_store(&dr_deadline, d);
		CHECK_OK(herd_scope_open(&s));
		for (int i = 0; i < DR_TASKS; i++)
			CHECK_OK(herd_go(s, dr_task, NULL, 0));
		CHECK_EQ(herd_sleep(d), 0);
		atomic_store(&dr_done, 1);
		CHECK_EQ(herd_wg_done(dr_gate), 0);
		CHECK_OK(herd_scope_close(s));
		CHECK_OK(herd_wg_free(dr_gate));
	}
	CHECK_EQ(herd_wg_done(dr_never), 0);
	CHECK_OK(herd_wg_free(dr_never));
	CHECK_EQ(atomic_load(&dr_woken) + atomic_load(&dr_timedout),
		 DR_TASKS * DR_ROUNDS);
	printf("%d waits woken by the group, %d timed out\n",
	       atomic_load(&dr_woken), atomic_load(&dr_timedout));
}

TEST(deadline_race)
{
	test_run(4, dr_main, NULL);
}

/* ------------------------------------------------------------------ */

/*
 * Timers removed from the middle of the heap while others expire, across
 * four workers: half the tasks sleep to deadlines spread over 40 ms, the
 * other half wait on a group with deadlines over 80 ms, and the main task
 * completes the group at 20 ms; the group's waiters whose deadline has not
 * passed then take their timers out early. Every wait returns once, a
 * timeout never early, a wake only after the group completed.
 */
#define MIX_N (4000 / TEST_SCALE)

static herd_wg *mix_gate;
static _Atomic int64_t mix_base;
static atomic_int mix_done, mix_ended;

static void mix_task(void *arg)
{
	int i = *(int *)arg;
	uint64_t x = (uint64_t)(i + 1) * 0x9e3779b97f4a7c15u;
	int64_t base = atomic_load(&mix_base);

	if (i % 2 == 0) {
		int64_t d = base + (int64_t)((x >> 20) % (uint64_t)(40 * HERD_MSEC));
		CHECK_EQ(herd_sleep(d), 0);
		CHECK(herd_now() >= d);
	} else {
		int64_t d = base + (int64_t)((x >> 20) % (uint64_t)(80 * HERD_MSEC));
		int rc = herd_wg_wait(mix_gate, d);
		if (rc == 0) {
			CHECK(atomic_load(&mix_done));
		} else {
			CHECK_EQ(rc, HERD_ETIMEDOUT);
			CHECK(herd_now() >= d);
		}
	}
	atomic_fetch_add(&mix_ended, 1);
}

static void mix_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_wg_new(&mix_gate));
	CHECK_EQ(herd_wg_add(mix_gate, 1), 1);
	atomic_store(&mix_base, herd_deadline(20 * HERD_MSEC));
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < MIX_N; i++)
		CHECK_OK(herd_go(s, mix_task, &i, sizeof i));
	CHECK_EQ(herd_sleep(atomic_load(&mix_base) + 20 * HERD_MSEC), 0);
	atomic_store(&mix_done, 1);
	CHECK_EQ(herd_wg_done(mix_gate), 0);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_wg_free(mix_gate));
	CHECK_EQ(atomic_load(&mix_ended), MIX_N);
}

TEST(sleep_and_wait_mixed)
{
	test_run(4, mix_main, NULL);
}

/* ------------------------------------------------------------------ */

/*
 * Deadlines in the past return at once (timed out; herd_sleep 0), and
 * deadlines so far that they never come (up to INT64_MAX) park the task
 * without holding back the timers before them: a short sleep wakes while
 * they wait, a group wakes its far waiter, and canceling the scope ends
 * the far sleepers.
 */
static herd_wg *far_gate;
static atomic_int far_ended;

static const int64_t far_deadlines[] = {
	INT64_MAX, INT64_MAX - 1, INT64_MAX - HERD_SEC, INT64_MAX - HERD_SEC + 1,
	INT64_MAX / 2,
};
#define FAR_N (int)(sizeof far_deadlines / sizeof far_deadlines[0])

static void far_sleeper(void *arg)
{
	CHECK_EQ(herd_sleep(far_deadlines[*(int *)arg]), HERD_ECANCELED);
	atomic_fetch_add(&far_ended, 1);
}

static void far_waiter(void *arg)
{
	CHECK_EQ(herd_wg_wait(far_gate, far_deadlines[*(int *)arg]), 0);
	atomic_fetch_add(&far_ended, 1);
}

static void far_main(void *arg)
{
	herd_scope *s;

	/* In the past: at once. */
	CHECK_EQ(herd_sleep(1), 0);
	CHECK_EQ(herd_sleep(herd_now() - HERD_SEC), 0);
	CHECK_OK(herd_wg_new(&far_gate));
	CHECK_EQ(herd_wg_add(far_gate, 1), 1);
	CHECK_EQ(herd_wg_wait(far_gate, 1), HERD_ETIMEDOUT);
	CHECK_EQ(herd_wg_wait(far_gate, herd_now() - 1), HERD_ETIMEDOUT);

	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < FAR_N; i++) {
		CHECK_OK(herd_go(s, far_sleeper, &i, sizeof i));
		CHECK_OK(herd_go(s, far_waiter, &i, sizeof i));
	}
	test_wait_parked(2 * FAR_N);
	/* The far timers stay in the heap; a near one before them fires. */
	for (int i = 0; i < 3; i++) {
		int64_t d = herd_deadline(HERD_MSEC);
		CHECK_EQ(herd_sleep(d), 0);
		CHECK(herd_now() >= d);
	}
	CHECK_EQ(atomic_load(&far_ended), 0);
	CHECK_EQ(herd_wg_done(far_gate), 0); /* the waiters' timers go early */
	while (atomic_load(&far_ended) < FAR_N)
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	CHECK_OK(herd_scope_cancel(s));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&far_ended), 2 * FAR_N);
	CHECK_OK(herd_wg_free(far_gate));
}

TEST(deadline_past_and_far)
{
	test_run(2, far_main, NULL);
}

/* ------------------------------------------------------------------ */

/*
 * Many waits with far deadlines that end early: two tasks play ping-pong
 * on a channel, every send and receive with a deadline a minute away, so
 * that each leaves a removed timer behind in the heap (removal is lazy),
 * while a third task sleeps short sleeps: each must end, never early, with
 * the removed timers piling up and being cleared around it.
 */
#define PP_ROUNDS (20000 / TEST_SCALE)

static herd_chan *pp_ping, *pp_pong;
static atomic_int pp_over;

static void pp_peer(void *arg)
{
	int v;

	for (int i = 0; i < PP_ROUNDS; i++) {
		CHECK_OK(herd_chan_recv(pp_ping, &v, herd_deadline(60 * HERD_SEC)));
		CHECK_EQ(v, i);
		CHECK_OK(herd_chan_send(pp_pong, &v, herd_deadline(60 * HERD_SEC)));
	}
}

static void pp_sleeper(void *arg)
{
	while (!atomic_load(&pp_over)) {
		int64_t d = herd_deadline(200 * HERD_USEC);
		CHECK_EQ(herd_sleep(d), 0);
		CHECK(herd_now() >= d);
	}
}

static void pp_main(void *arg)
{
	herd_scope *s;
	int v;

	pp_ping = make_chan(sizeof(int), 0);
	pp_pong = make_chan(sizeof(int), 0);
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, pp_peer, NULL, 0));
	CHECK_OK(herd_go(s, pp_sleeper, NULL, 0));
	for (int i = 0; i < PP_ROUNDS; i++) {
		CHECK_OK(herd_chan_send(pp_ping, &i, herd_deadline(60 * HERD_SEC)));
		CHECK_OK(herd_chan_recv(pp_pong, &v, herd_deadline(60 * HERD_SEC)));
		CHECK_EQ(v, i);
	}
	atomic_store(&pp_over, 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_chan_free(pp_ping));
	CHECK_OK(herd_chan_free(pp_pong));
}

TEST(early_wakes_many)
{
	test_run(2, pp_main, NULL);
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
