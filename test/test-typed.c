/*
 * test-typed.c - typed tasks (HERD_TASK, HERD_GO), typed channels
 * (HERD_CHAN), the size checks of HERD_SEND, HERD_RECV, HERD_RANGE and
 * select cases on plain channels, herd_errname, and herd_config.debug.
 * What the compiler must refuse is checked by typecheck.sh on
 * typecheck.c, as the tests typed.compile_*.
 */
#include "test.h"

#include <stdatomic.h>

struct object {
	int id;
	char name[24];
};

#define N_OBJECTS 200
static atomic_int started[N_OBJECTS];
static atomic_int wrong_name;

/* The post-mortem's loop: every task gets its own object, exactly once. */
HERD_TASK(start_object, struct object, obj)
{
	char want[24];
	snprintf(want, sizeof want, "object-%d", obj.id);
	if (strcmp(want, obj.name) != 0)
		atomic_fetch_add(&wrong_name, 1);
	atomic_fetch_add(&started[obj.id], 1);
	herd_yield();
}

static void copies_main(void *unused)
{
	(void)unused;
	struct object o;
	for (int i = 0; i < N_OBJECTS; i++) {
		o.id = i;
		snprintf(o.name, sizeof o.name, "object-%d", i);
		CHECK_OK(HERD_GO(NULL, start_object(o)));
	}
	o.id = -1; /* the tasks must not see this */
}

TEST(task_gets_its_own_copy)
{
	test_run(0, copies_main, NULL);
	for (int i = 0; i < N_OBJECTS; i++)
		CHECK_EQ(atomic_load(&started[i]), 1);
	CHECK_EQ(atomic_load(&wrong_name), 0);
}

static atomic_long sum;

HERD_TASK(add_long, long, v)
{
	atomic_fetch_add(&sum, v);
}

HERD_TASK(drain, HERD_CHAN(long), ch)
{
	long v;
	HERD_RANGE(v, ch)
		atomic_fetch_add(&sum, v);
}

static void convert_main(void *unused)
{
	(void)unused;
	int small = 40;
	short tiny = 2;
	CHECK_OK(HERD_GO(NULL, add_long(small))); /* converted as in a call */
	CHECK_OK(HERD_GO(NULL, add_long(tiny)));
	HERD_CHAN(long) ch;
	CHECK_OK(HERD_CHAN_MAKE(ch, 4));
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, drain(ch)));
	for (long i = 1; i <= 100; i++)
		CHECK_OK(HERD_SEND(ch, i, HERD_FOREVER));
	CHECK_OK(herd_chan_close(ch));
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_chan_free(ch));
	/* The plain form still takes any herd_fn. */
	long plain = 1000;
	CHECK_OK(HERD_GO(NULL, add_long, plain));
}

TEST(task_converts_and_takes_channels)
{
	test_run(2, convert_main, NULL);
	CHECK_EQ(atomic_load(&sum), 40 + 2 + 5050 + 1000);
}

static void typed_chan_main(void *unused)
{
	(void)unused;
	HERD_CHAN(struct object) objs;
	CHECK_OK(HERD_CHAN_MAKE(objs, 3));
	CHECK_EQ(herd_chan_cap(objs), 3);
	CHECK_EQ(herd_chan_elem_size(objs), (int)sizeof(struct object));
	struct object o = {.id = 7, .name = "seven"};
	CHECK_OK(HERD_SEND(objs, o, HERD_NOWAIT));
	CHECK_OK(HERD_SEND(objs, ((struct object){.id = 8, .name = "eight"}), HERD_NOWAIT));
	CHECK_OK(herd_chan_send(objs, &o, HERD_NOWAIT));
	CHECK_EQ(herd_chan_len(objs), 3);
	CHECK_EQ(HERD_SEND(objs, o, HERD_NOWAIT), HERD_ETIMEDOUT);
	struct object got;
	CHECK_OK(HERD_RECV(objs, got, HERD_NOWAIT));
	CHECK_EQ(got.id, 7);
	herd_case cs[] = {HERD_CASE_RECV(objs, &got)};
	CHECK_EQ(herd_select(cs, 1, HERD_NOWAIT), 0);
	CHECK_EQ(got.id, 8);
	CHECK_OK(herd_chan_close(objs));
	int n = 0, rc;
	HERD_RANGE_RC(got, objs, rc)
		n++;
	CHECK_EQ(n, 1);
	CHECK_EQ(rc, HERD_ECLOSED);
	/* The raw channel is the same channel. */
	CHECK_EQ(herd_chan_len(HERD_CHAN_RAW(objs)), 0);
	CHECK_OK(herd_chan_free(objs));
}

TEST(chan_typed_roundtrip)
{
	test_run(1, typed_chan_main, NULL);
}

static void sized_main(void *unused)
{
	(void)unused;
	herd_chan *ch = make_chan(sizeof(int64_t), 2);
	int small = 5;
	int64_t big = 6;
	/* Sending an int into an int64_t channel would read past the int. */
	CHECK_EQ(HERD_SEND(ch, small, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_chan_len(ch), 0);
	CHECK_OK(HERD_SEND(ch, big, HERD_NOWAIT));
	CHECK_OK(HERD_SEND(ch, big, HERD_NOWAIT));
	small = 99;
	CHECK_EQ(HERD_RECV(ch, small, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(small, 99);
	CHECK_EQ(herd_chan_len(ch), 2);
	int rc, loops = 0;
	HERD_RANGE_RC(small, ch, rc)
		loops++;
	CHECK_EQ(loops, 0);
	CHECK_EQ(rc, -EINVAL);
	CHECK_EQ(herd_chan_len(ch), 2);
	CHECK_EQ(herd_chan_send_sized(NULL, &big, sizeof big, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_chan_send_sized(ch, NULL, sizeof big, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_chan_recv_sized(NULL, &big, sizeof big, HERD_NOWAIT), -EINVAL);
	CHECK_OK(herd_chan_recv_sized(ch, NULL, 0, HERD_NOWAIT)); /* discards */
	CHECK_OK(HERD_RECV(ch, big, HERD_NOWAIT));
	CHECK_EQ(big, 6);
	CHECK_OK(herd_chan_free(ch));
}

TEST(chan_sized_mismatch_is_einval)
{
	test_run(1, sized_main, NULL);
}

static void select_sized_main(void *unused)
{
	(void)unused;
	herd_chan *ch = make_chan(sizeof(int64_t), 1);
	int64_t v = 3;
	CHECK_OK(HERD_SEND(ch, v, HERD_NOWAIT));
	int wrong = 0;
	herd_case bad[] = {HERD_CASE_RECV(ch, &wrong)};
	CHECK_EQ(bad[0].size, sizeof(int));
	CHECK_EQ(herd_select(bad, 1, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_chan_len(ch), 1); /* nothing taken */
	herd_case badsend[] = {HERD_CASE_SEND(ch, &wrong)};
	CHECK_EQ(herd_select(badsend, 1, HERD_NOWAIT), -EINVAL);
	void *untyped = &v;
	herd_case unchecked[] = {HERD_CASE_RECV(ch, untyped)};
	CHECK_EQ(unchecked[0].size, 0);
	CHECK_EQ(herd_select(unchecked, 1, HERD_NOWAIT), 0);
	CHECK_OK(HERD_SEND(ch, v, HERD_NOWAIT));
	herd_case discard[] = {HERD_CASE_RECV(NULL, &wrong), HERD_CASE_RECV(ch, NULL)};
	CHECK_EQ(herd_select(discard, 2, HERD_NOWAIT), 1);
	CHECK_OK(herd_chan_free(ch));
}

TEST(select_sized_mismatch_is_einval)
{
	test_run(1, select_sized_main, NULL);
}

TEST(errname_names_codes)
{
	CHECK(strcmp(herd_errname(0), "0") == 0);
	CHECK(strcmp(herd_errname(HERD_ECANCELED), "HERD_ECANCELED") == 0);
	CHECK(strcmp(herd_errname(HERD_ETIMEDOUT), "HERD_ETIMEDOUT") == 0);
	CHECK(strcmp(herd_errname(HERD_ECLOSED), "HERD_ECLOSED") == 0);
	CHECK(strcmp(herd_errname(-ENOENT), "ENOENT") == 0);
	CHECK(strcmp(herd_errname(-EAGAIN), "EAGAIN") == 0);
	CHECK(strcmp(herd_errname(-EMFILE), "EMFILE") == 0);
	CHECK(strcmp(herd_errname(-EINVAL), "EINVAL") == 0);
	CHECK(strcmp(herd_errname(-ECANCELED), "ECANCELED") == 0);
	CHECK(strcmp(herd_errname(1), "UNKNOWN") == 0);
	CHECK(strcmp(herd_errname(-9999), "UNKNOWN") == 0);
	CHECK(strcmp(herd_errname(-20000), "UNKNOWN") == 0);
	CHECK(strcmp(herd_errname(INT32_MIN), "UNKNOWN") == 0);
}

static void debug_main(void *p)
{
	herd_stats st;
	CHECK_OK(herd_stats_get(&st));
	*(int *)p = st.debug;
}

TEST(debug_one_means_on)
{
	CHECK_EQ(HERD_DEBUG_ON, 1);
	unsetenv("HERD_DEBUG");
	int seen = -5;
	herd_config cfg = {.workers = 1, .debug = 1};
	CHECK_OK(herd_run(&cfg, debug_main, &seen));
	CHECK_EQ(seen, 1);
	cfg.debug = HERD_DEBUG_OFF;
	CHECK_OK(herd_run(&cfg, debug_main, &seen));
	CHECK_EQ(seen, 0);
	cfg.debug = 2;
	CHECK_EQ(herd_run(&cfg, debug_main, &seen), -EINVAL);
}
