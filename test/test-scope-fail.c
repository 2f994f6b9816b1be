/*
 * test-scope-fail.c - a task fails its scope, as in Go's errgroup made with
 * WithContext (herd_scope_fail, herd_scope_err). Covers: the first failure
 * wins and cancels the siblings blocked on a channel, which read its code;
 * herd_scope_close returns the code, herd_scope_wait does not; a later
 * failure does not overwrite it; a code that is not negative is refused;
 * herd_scope_cancel records no failure (and a failure after it is still
 * recorded); a nested scope's failure does not fail its parent unless the
 * program passes it on; failing from a thread that is not a task.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

/* Result slots hold this until the task stores its herd call's result. */
#define PENDING 1
/* Far enough never to pass in a correct run. */
#define LONG_WAIT (20 * HERD_SEC)

#define CODE_FIRST (-1234)
#define CODE_LATER (-5678)

/* A task that waits for a value that never comes, then stores the result
 * and the scope's failure as it saw them once woken. */
struct sibling {
	herd_chan *ch;
	atomic_int *rc, *err;
};

static void sibling_task(void *p)
{
	struct sibling s = *(struct sibling *)p;
	int v;

	atomic_store(s.rc, herd_chan_recv(s.ch, &v, herd_deadline(LONG_WAIT)));
	atomic_store(s.err, herd_scope_err(NULL));
}

static void fail_task(void *p)
{
	int code = *(int *)p;

	CHECK_EQ(herd_scope_fail(NULL, code), 1);
	CHECK_EQ(herd_scope_err(NULL), code);
	CHECK(herd_canceled());
}

/* ------------------------------------------------------------------ */

#define FW_N 5

static atomic_int fw_rc[FW_N], fw_err[FW_N];

static void fw_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_scope_err(s), 0);
	for (int i = 0; i < FW_N; i++) {
		fw_rc[i] = fw_err[i] = PENDING;
		struct sibling sb = { ch, &fw_rc[i], &fw_err[i] };
		CHECK_OK(HERD_GO(s, sibling_task, sb));
	}
	test_wait_parked(FW_N);
	CHECK_OK(HERD_GO(s, fail_task, CODE_FIRST));
	/* Empty once the siblings are woken: the wait says nothing of the
	 * failure, herd_scope_err does. */
	CHECK_EQ(herd_scope_wait(s, herd_deadline(LONG_WAIT)), 0);
	CHECK_EQ(herd_scope_err(s), CODE_FIRST);
	for (int i = 0; i < FW_N; i++) {
		CHECK_EQ(fw_rc[i], HERD_ECANCELED);
		CHECK_EQ(fw_err[i], CODE_FIRST);
	}
	/* A later failure is ignored, and says so. */
	CHECK_EQ(herd_scope_fail(s, CODE_LATER), 0);
	CHECK_EQ(herd_scope_err(s), CODE_FIRST);
	/* The scope stays canceled: spawning into it fails. */
	CHECK_EQ(HERD_GO(s, fail_task, CODE_LATER), HERD_ECANCELED);
	CHECK_EQ(herd_scope_close(s), CODE_FIRST);
	/* The failer's own scope (this task's) is untouched. */
	CHECK(!herd_canceled());
	CHECK_EQ(herd_scope_err(NULL), 0);
	CHECK_OK(herd_chan_free(ch));
}

/* The first failure is recorded, cancels its blocked siblings (which read
 * the code), and close returns it; a later one changes nothing. */
TEST(first_failure_wins)
{
	test_run(2, fw_main, NULL);
}

/* ------------------------------------------------------------------ */

#define RACE_N 64

static atomic_int race_first;
static herd_wg *race_gate;

static void race_task(void *p)
{
	int code = *(int *)p;

	/* All start together, once every one is spawned (a straggler that
	 * comes to the gate after a failure is canceled there: it still
	 * tries to fail the scope). */
	int w = herd_wg_wait(race_gate, herd_deadline(LONG_WAIT));
	CHECK(w == 0 || w == HERD_ECANCELED);
	int rc = herd_scope_fail(NULL, code);
	CHECK(rc == 0 || rc == 1);
	if (rc == 1)
		CHECK_EQ(atomic_exchange(&race_first, code), 0);
}

static void race_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_wg_new(&race_gate));
	CHECK_EQ(herd_wg_add(race_gate, 1), 1);
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < RACE_N; i++)
		CHECK_OK(HERD_GO(s, race_task, -1 - i));
	test_wait_parked(RACE_N);
	CHECK_EQ(herd_wg_done(race_gate), 0);
	int rc = herd_scope_close(s);
	/* Exactly one call reported itself first, and it is the code kept. */
	CHECK(rc < 0);
	CHECK_EQ(rc, race_first);
	CHECK_OK(herd_wg_free(race_gate));
}

/* Failures racing on several workers: one wins, and close returns it. */
TEST(failures_race)
{
	test_run(4, race_main, NULL);
}

/* ------------------------------------------------------------------ */

static void noop_task(void *p)
{
}

static void codes_main(void *arg)
{
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_scope_fail(s, 0), -EINVAL);
	CHECK_EQ(herd_scope_fail(s, 1), -EINVAL);
	CHECK_EQ(herd_scope_fail(s, EPERM), -EINVAL);
	CHECK_EQ(herd_scope_err(s), 0);
	/* Nothing recorded, nothing canceled. */
	CHECK_OK(herd_go(s, noop_task, NULL, 0));
	CHECK_EQ(herd_scope_close(s), 0);
	/* Any negative code is the program's to choose. */
	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_scope_fail(s, INT32_MIN), 1);
	CHECK_EQ(herd_scope_close(s), INT32_MIN);
	CHECK_OK(herd_scope_open(&s));
	CHECK_EQ(herd_scope_fail(s, -ENOENT), 1);
	CHECK_EQ(herd_scope_close(s), -ENOENT);
}

/* A code that is not negative is refused and records nothing; NULL
 * outside a task is refused too. */
TEST(fail_codes)
{
	CHECK_EQ(herd_scope_fail(NULL, -1), -EINVAL);
	CHECK_EQ(herd_scope_err(NULL), -EINVAL);
	test_run(2, codes_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int cr_rc = PENDING, cr_err = PENDING;

static void cr_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s;

	CHECK_OK(herd_scope_open(&s));
	struct sibling sb = { ch, &cr_rc, &cr_err };
	CHECK_OK(HERD_GO(s, sibling_task, sb));
	test_wait_parked(1);
	CHECK_OK(herd_scope_cancel(s));
	CHECK_EQ(herd_scope_wait(s, herd_deadline(LONG_WAIT)), 0);
	CHECK_EQ(cr_rc, HERD_ECANCELED);
	CHECK_EQ(cr_err, 0);
	CHECK_EQ(herd_scope_err(s), 0);
	CHECK_EQ(herd_scope_close(s), 0);

	/* A failure after a cancellation is recorded all the same (as a Go
	 * function that returns ctx.Err() fails its group). */
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_scope_cancel(s));
	CHECK_EQ(herd_scope_fail(s, HERD_ECANCELED), 1);
	CHECK_EQ(herd_scope_close(s), HERD_ECANCELED);
	CHECK_OK(herd_chan_free(ch));
}

/* herd_scope_cancel cancels without failing: close returns 0. */
TEST(cancel_records_no_failure)
{
	test_run(2, cr_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int nn_rc = PENDING, nn_err = PENDING;
static atomic_int nn_inner_close = PENDING;

/* A task of the outer scope: its own scope fails, and it closes it. */
static void nn_inner_owner(void *arg)
{
	herd_scope *inner;
	int propagate = *(int *)arg;

	CHECK_OK(herd_scope_open(&inner));
	CHECK_OK(HERD_GO(inner, fail_task, CODE_FIRST));
	int rc = herd_scope_close(inner);
	atomic_store(&nn_inner_close, rc);
	/* The outer scope is not canceled... */
	CHECK(!herd_canceled());
	CHECK_EQ(herd_scope_err(NULL), 0);
	/* ...unless the program passes the failure on. */
	if (propagate && rc < 0)
		CHECK_EQ(herd_scope_fail(NULL, rc), 1);
}

static void nn_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s;
	int v = 1;

	/* Not passed on: the sibling in the outer scope waits on. */
	CHECK_OK(herd_scope_open(&s));
	struct sibling sb = { ch, &nn_rc, &nn_err };
	CHECK_OK(HERD_GO(s, sibling_task, sb));
	CHECK_OK(HERD_GO(s, nn_inner_owner, 0));
	while (atomic_load(&nn_inner_close) == PENDING)
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	CHECK_EQ(nn_inner_close, CODE_FIRST);
	CHECK_EQ(herd_scope_wait(s, herd_deadline(50 * HERD_MSEC)), HERD_ETIMEDOUT);
	CHECK_EQ(nn_rc, PENDING);
	CHECK_OK(herd_chan_send(ch, &v, herd_deadline(LONG_WAIT)));
	CHECK_EQ(herd_scope_close(s), 0);
	CHECK_EQ(nn_rc, 0);
	CHECK_EQ(nn_err, 0);

	/* Passed on: the outer scope fails with the inner code. */
	nn_rc = nn_err = nn_inner_close = PENDING;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, sibling_task, sb));
	CHECK_OK(HERD_GO(s, nn_inner_owner, 1));
	CHECK_EQ(herd_scope_close(s), CODE_FIRST);
	CHECK_EQ(nn_rc, HERD_ECANCELED);
	CHECK_EQ(nn_err, CODE_FIRST);
	CHECK_OK(herd_chan_free(ch));
}

/* A nested scope's failure stays there unless the program passes it on. */
TEST(nested_failure_stays)
{
	test_run(2, nn_main, NULL);
}

/* ------------------------------------------------------------------ */

static atomic_int th_rc = PENDING, th_err = PENDING;

static void *th_thread(void *arg)
{
	herd_scope *s = arg;

	/* A thread that is not a task, with an explicit scope. */
	CHECK_EQ(herd_scope_fail(NULL, CODE_FIRST), -EINVAL);
	CHECK_EQ(herd_scope_fail(s, CODE_FIRST), 1);
	CHECK_EQ(herd_scope_err(s), CODE_FIRST);
	return NULL;
}

static int th_join(void *arg)
{
	return -pthread_join(*(pthread_t *)arg, NULL);
}

static void th_main(void *arg)
{
	herd_chan *ch = make_chan(sizeof(int), 0);
	herd_scope *s;
	pthread_t th;

	CHECK_OK(herd_scope_open(&s));
	struct sibling sb = { ch, &th_rc, &th_err };
	CHECK_OK(HERD_GO(s, sibling_task, sb));
	test_wait_parked(1);
	CHECK(pthread_create(&th, NULL, th_thread, s) == 0);
	CHECK_OK(herd_blocking(th_join, &th));
	CHECK_EQ(herd_scope_close(s), CODE_FIRST);
	CHECK_EQ(th_rc, HERD_ECANCELED);
	CHECK_EQ(th_err, CODE_FIRST);
	CHECK_OK(herd_chan_free(ch));
}

/* A thread that is not a task fails a scope it names. */
TEST(fail_from_thread)
{
	test_run(2, th_main, NULL);
}
