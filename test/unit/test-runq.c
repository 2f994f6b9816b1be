/*
 * test-runq.c - white-box tests of the run queues (core/runq.c and the
 * owner's fast paths in core/sched.h): a worker's ring and its runnext
 * slot, overflow into the global queue, the global queue's share, and
 * stealing, alone and in races between an owner and thieves.
 *
 * The runtime and its workers are fakes: zeroed, with their locks
 * initialised as runtime.c does, and the tasks are bare task objects, of
 * which the queues use only `next` and the address. malloc is wrapped
 * (see test/unit/CMakeLists.txt) to count the batches the global queue
 * allocates and to make one allocation fail.
 */
#include "core/sched.h"

#include "unit.h"

/* wrap: malloc */
void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

/* Per thread: mallocs so far, and whether they fail. */
static __thread unsigned long mallocs;
static __thread bool malloc_fails;

void *__wrap_malloc(size_t size)
{
	mallocs++;
	return malloc_fails ? NULL : __real_malloc(size);
}

/* ------------------------------------------------------------------ */
/* Fakes                                                              */
/* ------------------------------------------------------------------ */

#define NTASKS 4096
static herd__task *tasks; /* NTASKS task objects */

static herd__task *T(size_t i)
{
	CHECK(i < NTASKS);
	return &tasks[i];
}

/* The index of a task, checked to be one of ours. */
static size_t idx(const herd__task *t)
{
	CHECK(t != NULL);
	CHECK(t >= tasks && t < tasks + NTASKS);
	return (size_t)(t - tasks);
}

static void tasks_make(size_t n)
{
	tasks = unit_zalloc(n * sizeof *tasks);
}

static herd__rt *rt_new(unsigned nworkers)
{
	herd__rt *rt = unit_zalloc(sizeof *rt);
	herd__mutex_init(&rt->gq_lock, HERD__RANK_LEAF);
	herd__mutex_init(&rt->idle_lock, HERD__RANK_LEAF);
	herd__mutex_init(&rt->stackless_lock, HERD__RANK_LEAF);
	herd__mutex_init(&rt->timer_lock, HERD__RANK_TIMERS);
	rt->nworkers = nworkers;
	rt->workers = calloc(nworkers, sizeof *rt->workers);
	CHECK(rt->workers != NULL);
	for (unsigned i = 0; i < nworkers; i++) {
		herd__worker *w = unit_zalloc(sizeof *w);
		w->rt = rt;
		w->index = i;
		herd__mutex_init(&w->reg_lock, HERD__RANK_REGISTRY);
		rt->workers[i] = w;
	}
	return rt;
}

/* Frees the fake; its queues must be empty. */
static void rt_free(herd__rt *rt)
{
	CHECK_EQ(atomic_load(&rt->gq_size), 0);
	CHECK(rt->gq_batches == NULL && rt->gq_head == NULL);
	herd__batches_free(rt);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		herd__worker *w = rt->workers[i];
		CHECK_EQ(atomic_load(&w->rq_tail) - atomic_load(&w->rq_head), 0);
		CHECK(atomic_load(&w->runnext) == NULL);
		free(w);
	}
	free(rt->workers);
	free(rt);
}

static uint32_t ring_len(herd__worker *w)
{
	return atomic_load(&w->rq_tail) - atomic_load(&w->rq_head);
}

/* The owner's next task must be task i. */
static void get_is(herd__worker *w, size_t i)
{
	herd__task *t = herd__runq_get(w);
	CHECK(t != NULL);
	CHECK_EQ(idx(t), i);
}

static void get_none(herd__worker *w)
{
	CHECK(herd__runq_get(w) == NULL);
}

/* Puts tasks first..last-1 into w's ring in order. */
static void put_range(herd__worker *w, size_t first, size_t last)
{
	for (size_t i = first; i < last; i++)
		herd__runq_put(w, T(i));
}

/* ------------------------------------------------------------------ */
/* The ring and runnext                                               */
/* ------------------------------------------------------------------ */

/* The ring is FIFO, holds HERD__RUNQ tasks without spilling, and works
 * across the wrap of its slot index and of its 32-bit counters. */
TEST(ring_fifo)
{
	tasks_make(NTASKS);
	herd__rt *rt = rt_new(1);
	herd__worker *w = rt->workers[0];
	get_none(w);

	/* Full, exactly: nothing goes to the global queue. */
	put_range(w, 0, HERD__RUNQ);
	CHECK_EQ(ring_len(w), HERD__RUNQ);
	CHECK_EQ(atomic_load(&rt->gq_size), 0);
	for (size_t i = 0; i < HERD__RUNQ; i++)
		get_is(w, i);
	get_none(w);

	/* The counters are free-running: start them just below 2^32. */
	uint32_t start = UINT32_MAX - 100;
	atomic_store(&w->rq_head, start);
	atomic_store(&w->rq_tail, start);
	uint64_t seed = 1;
	size_t next_in = 0, next_out = 0;
	for (int round = 0; round < 2000; round++) {
		size_t in = unit_below(&seed, 40);
		for (size_t k = 0; k < in && ring_len(w) < HERD__RUNQ; k++)
			herd__runq_put(w, T(next_in++ % NTASKS));
		size_t out = unit_below(&seed, 40);
		for (size_t k = 0; k < out && next_out < next_in; k++)
			get_is(w, next_out++ % NTASKS);
		CHECK_EQ(ring_len(w), next_in - next_out);
	}
	CHECK(atomic_load(&w->rq_head) < start); /* it did wrap */
	while (next_out < next_in)
		get_is(w, next_out++ % NTASKS);
	get_none(w);
	CHECK_EQ(atomic_load(&rt->gq_size), 0);
	rt_free(rt);
}

/* runnext runs before the ring; a task put there displaces the one it
 * held to the back of the ring. */
TEST(runnext_first)
{
	tasks_make(NTASKS);
	herd__rt *rt = rt_new(1);
	herd__worker *w = rt->workers[0];

	herd__runq_put(w, T(0));
	herd__runq_put(w, T(1));
	herd__runq_put_next(w, T(2));
	get_is(w, 2);
	get_is(w, 0);
	get_is(w, 1);
	get_none(w);

	herd__runq_put(w, T(3));
	herd__runq_put_next(w, T(4));
	herd__runq_put_next(w, T(5)); /* 4 goes behind 3 */
	CHECK_EQ(idx(atomic_load(&w->runnext)), 5);
	CHECK_EQ(ring_len(w), 2);
	get_is(w, 5);
	get_is(w, 3);
	get_is(w, 4);
	get_none(w);

	/* Only runnext: the ring is empty. */
	herd__runq_put_next(w, T(6));
	CHECK_EQ(ring_len(w), 0);
	get_is(w, 6);
	get_none(w);

	/* runnext displaced into a full ring: the ring spills. */
	put_range(w, 10, 10 + HERD__RUNQ);
	herd__runq_put_next(w, T(7));
	herd__runq_put_next(w, T(8)); /* 7 overflows the ring */
	CHECK_EQ(atomic_load(&rt->gq_size), HERD__RUNQ / 2 + 1);
	get_is(w, 8);
	for (size_t i = 10 + HERD__RUNQ / 2; i < 10 + HERD__RUNQ; i++)
		get_is(w, i);
	herd__task *t = herd__global_get(w);
	CHECK_EQ(idx(t), 10);
	for (size_t i = 11; i < 10 + HERD__RUNQ / 2; i++)
		get_is(w, i);
	get_is(w, 7);
	get_none(w);
	rt_free(rt);
}

/* Two tasks readying each other through runnext get at most
 * NEXT_STREAK_MAX runs in a row before the ring's head gets one. */
TEST(next_streak_limit)
{
	tasks_make(NTASKS);
	herd__rt *rt = rt_new(1);
	herd__worker *w = rt->workers[0];
	size_t next = 100;

	herd__runq_put(w, T(0)); /* waits in the ring */
	herd__runq_put(w, T(1));
	for (int cycle = 0; cycle < 2; cycle++) {
		for (unsigned i = 0; i < NEXT_STREAK_MAX; i++) {
			herd__runq_put_next(w, T(next));
			get_is(w, next++);
		}
		CHECK_EQ(w->next_streak, NEXT_STREAK_MAX);
		/* The streak is spent: the ring's head runs, runnext waits. */
		herd__runq_put_next(w, T(next));
		get_is(w, (size_t)cycle);
		CHECK_EQ(w->next_streak, 0);
		get_is(w, next++);
		CHECK_EQ(w->next_streak, 1);
		/* Back to a full streak for the next cycle. */
		w->next_streak = 0;
	}
	get_none(w);

	/* A spent streak with an empty ring still runs runnext. */
	for (unsigned i = 0; i < NEXT_STREAK_MAX; i++) {
		herd__runq_put_next(w, T(next));
		get_is(w, next++);
	}
	herd__runq_put_next(w, T(next));
	get_is(w, next++);
	CHECK_EQ(w->next_streak, 0);
	get_none(w);
	rt_free(rt);
}

/* ------------------------------------------------------------------ */
/* Overflow and the global queue                                      */
/* ------------------------------------------------------------------ */

/* A full ring moves its older half and the new task to the global queue
 * as one batch; another worker takes the batch back in order; the batch
 * is recycled, not freed, and reused without a malloc. */
TEST(overflow_batch)
{
	tasks_make(NTASKS);
	herd__rt *rt = rt_new(2);
	herd__worker *w = rt->workers[0], *w2 = rt->workers[1];
	const uint32_t half = HERD__RUNQ / 2;

	for (int round = 0; round < 3; round++) {
		mallocs = 0;
		put_range(w, 0, HERD__RUNQ);
		CHECK_EQ(mallocs, 0);
		herd__runq_put(w, T(HERD__RUNQ));
		/* One batch: malloc'd the first time, recycled after. */
		CHECK_EQ(mallocs, round == 0 ? 1 : 0);
		CHECK_EQ(ring_len(w), half);
		CHECK_EQ(atomic_load(&rt->gq_size), half + 1);
		CHECK(rt->gq_batches != NULL && rt->gq_batches == rt->gq_batches_tail);
		CHECK(rt->gq_head == NULL);
		CHECK(rt->gq_free_batches == NULL);

		if (round < 2) {
			/* An empty worker takes the whole batch: the first to
			 * run, the rest into its ring, in order. */
			herd__task *t = herd__global_get(w2);
			CHECK_EQ(idx(t), 0);
			CHECK_EQ(ring_len(w2), half);
			for (size_t i = 1; i < half; i++)
				get_is(w2, i);
			get_is(w2, HERD__RUNQ);
			get_none(w2);
		} else {
			/* The overflowing worker, its ring half full, has room
			 * for 64 + 1: the batch is taken in two goes. */
			herd__task *t = herd__global_get(w);
			CHECK_EQ(idx(t), 0);
			CHECK_EQ(ring_len(w), half + half / 2);
			CHECK_EQ(atomic_load(&rt->gq_size), half + 1 - (half / 2 + 1));
			CHECK(rt->gq_batches != NULL);
			for (size_t i = half; i < HERD__RUNQ; i++)
				get_is(w, i);
			for (size_t i = 1; i <= half / 2; i++)
				get_is(w, i);
			get_none(w);
			t = herd__global_get(w);
			CHECK_EQ(idx(t), half / 2 + 1);
			for (size_t i = half / 2 + 2; i < half; i++)
				get_is(w, i);
			get_is(w, HERD__RUNQ);
			get_none(w);
		}
		CHECK_EQ(atomic_load(&rt->gq_size), 0);
		CHECK(rt->gq_batches == NULL && rt->gq_batches_tail == NULL);
		CHECK(rt->gq_free_batches != NULL);
		CHECK(herd__global_get(w2) == NULL);
		/* What remains in w's ring. */
		if (round < 2)
			for (size_t i = half; i < HERD__RUNQ; i++)
				get_is(w, i);
		get_none(w);
	}
	rt_free(rt);
}

/* Many overflows with nobody taking: every task is queued exactly once,
 * and each batch keeps its tasks in order. */
TEST(overflow_many)
{
	tasks_make(NTASKS);
	herd__rt *rt = rt_new(1);
	herd__worker *w = rt->workers[0];
	put_range(w, 0, NTASKS);
	CHECK_EQ(ring_len(w) + atomic_load(&rt->gq_size), NTASKS);

	static unsigned seen[NTASKS];
	size_t last = 0, n = 0;
	bool first = true;
	herd__task *t;
	/* The ring holds the newest tasks, in order. */
	while ((t = herd__runq_get(w))) {
		size_t i = idx(t);
		CHECK(first || i > last);
		first = false;
		last = i;
		seen[i]++;
		n++;
	}
	CHECK_EQ(last, NTASKS - 1);
	while ((t = herd__global_get(w))) {
		seen[idx(t)]++;
		n++;
		while ((t = herd__runq_get(w))) {
			seen[idx(t)]++;
			n++;
		}
	}
	CHECK_EQ(n, NTASKS);
	for (size_t i = 0; i < NTASKS; i++)
		CHECK_EQ(seen[i], 1);
	rt_free(rt);
}

/* Without memory for a batch, the tasks are linked one by one into the
 * global queue's list, in the same order. */
TEST(overflow_no_memory)
{
	tasks_make(NTASKS);
	herd__rt *rt = rt_new(1);
	herd__worker *w = rt->workers[0];
	const uint32_t half = HERD__RUNQ / 2;

	put_range(w, 0, HERD__RUNQ);
	malloc_fails = true;
	mallocs = 0;
	herd__runq_put(w, T(HERD__RUNQ));
	malloc_fails = false;
	CHECK_EQ(mallocs, 1);
	CHECK(rt->gq_batches == NULL);
	CHECK_EQ(atomic_load(&rt->gq_size), half + 1);
	CHECK(rt->gq_head == T(0));
	CHECK(rt->gq_tail == T(HERD__RUNQ));
	herd__task *t = rt->gq_head;
	for (size_t i = 0; i < half; i++, t = t->next)
		CHECK_EQ(idx(t), i);
	CHECK(t == T(HERD__RUNQ));
	CHECK(t->next == NULL);
	CHECK_EQ(ring_len(w), half);

	/* Take it all back (one worker: its share is all of it). */
	for (size_t i = half; i < HERD__RUNQ; i++)
		get_is(w, i);
	t = herd__global_get(w);
	CHECK_EQ(idx(t), 0);
	for (size_t i = 1; i < half; i++)
		get_is(w, i);
	get_is(w, HERD__RUNQ);
	get_none(w);
	CHECK(rt->gq_head == NULL && rt->gq_tail == NULL);
	rt_free(rt);
}

/* A thief moved head between the owner's look at a full ring and its
 * spill: put_slow fails, changes nothing, and recycles its batch. */
TEST(overflow_lost_race)
{
	tasks_make(NTASKS);
	herd__rt *rt = rt_new(1);
	herd__worker *w = rt->workers[0];
	put_range(w, 0, HERD__RUNQ);
	uint32_t h = atomic_load(&w->rq_head);
	mallocs = 0;
	CHECK(!herd__runq_put_slow(w, T(HERD__RUNQ), h - 1));
	CHECK_EQ(mallocs, 1);
	CHECK_EQ(atomic_load(&w->rq_head), h);
	CHECK_EQ(ring_len(w), HERD__RUNQ);
	CHECK_EQ(atomic_load(&rt->gq_size), 0);
	CHECK(rt->gq_batches == NULL && rt->gq_head == NULL);
	CHECK(rt->gq_free_batches != NULL);
	/* The retry with the right head succeeds and reuses the batch. */
	CHECK(herd__runq_put_slow(w, T(HERD__RUNQ), h));
	CHECK_EQ(mallocs, 1);
	CHECK_EQ(atomic_load(&rt->gq_size), HERD__RUNQ / 2 + 1);
	herd__task *t = herd__global_get(w);
	CHECK_EQ(idx(t), 0);
	do {
		while (herd__runq_get(w))
			;
	} while (herd__global_get(w));
	rt_free(rt);
}

/* Single tasks in the global queue are shared out: a worker takes
 * size / nworkers + 1 at most, and no more than half its ring's room
 * (plus the one it runs); batches go first, whole. */
TEST(global_share)
{
	tasks_make(NTASKS);
	herd__rt *rt = rt_new(4);
	herd__worker *w = rt->workers[0], *w3 = rt->workers[3];
	CHECK(herd__global_get(w) == NULL);

	for (size_t i = 0; i < 99; i++)
		T(i)->next = T(i + 1);
	herd__global_put_list(rt, T(0), T(99), 100);
	CHECK(T(99)->next == NULL);
	CHECK_EQ(atomic_load(&rt->gq_size), 100);

	size_t next = 0, left = 100;
	while (left) {
		uint32_t share = (uint32_t)(left / 4 + 1);
		if (share > left)
			share = (uint32_t)left;
		herd__task *t = herd__global_get(w);
		CHECK_EQ(idx(t), next++);
		CHECK_EQ(ring_len(w), share - 1);
		for (uint32_t k = 1; k < share; k++)
			get_is(w, next++);
		get_none(w);
		left -= share;
		CHECK_EQ(atomic_load(&rt->gq_size), left);
	}
	CHECK(rt->gq_head == NULL && rt->gq_tail == NULL);

	/* Room: a ring holding 250 takes (256 - 250) / 2 + 1 = 4. */
	for (size_t i = 0; i < 99; i++)
		T(i)->next = T(i + 1);
	herd__global_put_list(rt, T(0), T(99), 100);
	put_range(w3, 1000, 1250);
	herd__task *t = herd__global_get(w3);
	CHECK_EQ(idx(t), 0);
	CHECK_EQ(ring_len(w3), 253);
	CHECK_EQ(atomic_load(&rt->gq_size), 96);
	for (size_t i = 1000; i < 1250; i++)
		get_is(w3, i);
	for (size_t i = 1; i < 4; i++)
		get_is(w3, i);
	get_none(w3);

	/* A batch queued after the list is taken before it. */
	put_range(w3, 2000, 2000 + HERD__RUNQ + 1);
	t = herd__global_get(w);
	CHECK_EQ(idx(t), 2000);
	for (size_t i = 2001; i < 2000 + HERD__RUNQ / 2; i++)
		get_is(w, i);
	get_is(w, 2000 + HERD__RUNQ);
	get_none(w);
	while (herd__runq_get(w3))
		;
	CHECK_EQ(atomic_load(&rt->gq_size), 96);
	size_t got = 0;
	while ((t = herd__global_get(w))) {
		got++;
		while (herd__runq_get(w))
			got++;
	}
	CHECK_EQ(got, 96);
	rt_free(rt);
}

/* ------------------------------------------------------------------ */
/* Stealing                                                           */
/* ------------------------------------------------------------------ */

/* A thief takes the older half (rounded up) of a ring, runs the newest of
 * what it took and queues the rest in order; the victim keeps the newer
 * half. */
TEST(steal_half)
{
	tasks_make(NTASKS);
	static const uint32_t sizes[] = {2, 3, 4, 7, 100, 127, 128, 129, 255, 256};
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		uint32_t n = sizes[s], k = n - n / 2;
		herd__rt *rt = rt_new(2);
		herd__worker *v = rt->workers[0], *w = rt->workers[1];
		/* Somewhere in the ring, not at slot 0. */
		atomic_store(&v->rq_head, 77u * (uint32_t)s);
		atomic_store(&v->rq_tail, 77u * (uint32_t)s);
		put_range(v, 0, n);
		herd__task *t = herd__runq_steal(w, v, false);
		CHECK_EQ(idx(t), k - 1);
		CHECK_EQ(ring_len(w), k - 1);
		CHECK_EQ(ring_len(v), n / 2);
		for (size_t i = 0; i + 1 < k; i++)
			get_is(w, i);
		for (size_t i = k; i < n; i++)
			get_is(v, i);
		get_none(w);
		get_none(v);
		rt_free(rt);
	}
}

/* A worker's only task (a ring of one, or runnext with take_next) is
 * taken only after it has stayed there for the grace period (20 us);
 * runnext is left alone without take_next, and while the ring has tasks. */
TEST(steal_grace)
{
	tasks_make(NTASKS);
	herd__rt *rt = rt_new(2);
	herd__worker *v = rt->workers[0], *w = rt->workers[1];
	herd__task *buf[HERD__RUNQ / 2];

	CHECK(herd__runq_steal(w, v, true) == NULL);

	herd__runq_put(v, T(0));
	int64_t t0 = herd_now();
	CHECK_EQ(idx(herd__runq_steal(w, v, false)), 0);
	CHECK(herd_now() - t0 >= 20 * HERD_USEC);
	CHECK_EQ(ring_len(v), 0);

	herd__runq_put_next(v, T(1));
	CHECK(herd__runq_steal(w, v, false) == NULL);
	CHECK(atomic_load(&v->runnext) == T(1));
	t0 = herd_now();
	CHECK_EQ(idx(herd__runq_steal(w, v, true)), 1);
	CHECK(herd_now() - t0 >= 20 * HERD_USEC);
	CHECK(atomic_load(&v->runnext) == NULL);

	/* The ring has tasks: runnext stays, even with take_next. */
	put_range(v, 10, 14);
	herd__runq_put_next(v, T(2));
	CHECK_EQ(herd__runq_grab(v, buf, true), 2);
	CHECK_EQ(idx(buf[0]), 10);
	CHECK_EQ(idx(buf[1]), 11);
	CHECK(atomic_load(&v->runnext) == T(2));
	CHECK_EQ(herd__runq_grab(v, buf, true), 1);
	CHECK_EQ(idx(buf[0]), 12);
	CHECK_EQ(herd__runq_grab(v, buf, true), 1); /* ring of one, after grace */
	CHECK_EQ(idx(buf[0]), 13);
	CHECK_EQ(herd__runq_grab(v, buf, true), 1); /* runnext, after grace */
	CHECK_EQ(idx(buf[0]), 2);
	CHECK_EQ(herd__runq_grab(v, buf, true), 0);
	CHECK(herd__runq_get(w) == NULL);
	rt_free(rt);
}

/* ------------------------------------------------------------------ */
/* Races: an owner pushing and popping, thieves stealing              */
/* ------------------------------------------------------------------ */

#if TEST_UNDER_TSAN
#define RACE_TASKS 100000
#else
#define RACE_TASKS 200000
#endif

static struct race {
	herd__rt *rt;
	unsigned nthieves;
	herd__task *objs;
	_Atomic unsigned *taken;
	_Atomic bool done;
	_Atomic unsigned long stolen;
	_Atomic bool stole; /* a thief has stolen (so far) */
	unit_gate gate;
} race;

static void race_take(herd__task *t)
{
	CHECK(t >= race.objs && t < race.objs + RACE_TASKS);
	size_t i = (size_t)(t - race.objs);
	if (atomic_fetch_add_explicit(&race.taken[i], 1, mo_relaxed) != 0) {
		fprintf(stderr, "task %zu taken twice\n", i);
		exit(1);
	}
}

static void *race_owner(void *arg)
{
	herd__worker *w = race.rt->workers[0];
	uint64_t seed = 42;
	unit_gate_pass(&race.gate);
	for (size_t i = 0; i < RACE_TASKS; i++) {
		if (i % 7 == 3)
			herd__runq_put_next(w, &race.objs[i]);
		else
			herd__runq_put(w, &race.objs[i]);
		if (unit_below(&seed, 2) == 0) {
			herd__task *t = herd__runq_get(w);
			if (t)
				race_take(t);
		}
		/* Now and then from the global queue, which holds the
		 * overflows, as the thieves do when they find nothing. */
		if (i % 64 == 0) {
			herd__task *t = herd__global_get(w);
			if (t)
				race_take(t);
		}
		if (i % 4096 == 0)
			sched_yield();
	}
	/* On a loaded machine the thieves may not have run yet: let them
	 * steal from what is left before the owner takes it all (5 s at
	 * most), or the case would test nothing. */
	for (int i = 0; i < 5000 && !atomic_load(&race.stole); i++)
		usleep(1000);
	herd__task *t;
	while ((t = herd__runq_get(w)))
		race_take(t);
	atomic_store(&race.done, true);
	return NULL;
}

static void *race_thief(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;
	herd__worker *w = race.rt->workers[me];
	uint64_t seed = 1000 + me;
	unsigned long stolen = 0;
	unit_gate_pass(&race.gate);
	for (unsigned long iter = 0; !atomic_load(&race.done); iter++) {
		/* Mostly from the owner; now and then from another thief,
		 * which is popping its own ring meanwhile. */
		unsigned from = 0;
		if (race.nthieves > 1 && unit_below(&seed, 4) == 0) {
			from = 1 + (unsigned)unit_below(&seed, race.nthieves);
			if (from == me)
				from = 0;
		}
		herd__task *t = herd__runq_steal(w, race.rt->workers[from], iter & 1);
		if (t) {
			stolen++;
			atomic_store(&race.stole, true);
		} else {
			t = herd__global_get(w);
		}
		if (!t) {
			herd__cpu_relax();
			continue;
		}
		race_take(t);
		while ((t = herd__runq_get(w)))
			race_take(t);
	}
	atomic_fetch_add(&race.stolen, stolen);
	return NULL;
}

static void steal_race(unsigned nthieves)
{
	race.rt = rt_new(1 + nthieves);
	race.nthieves = nthieves;
	race.objs = unit_zalloc(RACE_TASKS * sizeof *race.objs);
	race.taken = calloc(RACE_TASKS, sizeof *race.taken);
	CHECK(race.taken != NULL);
	race.gate.n = 1 + nthieves;
	pthread_t th[4];
	CHECK(pthread_create(&th[0], NULL, race_owner, NULL) == 0);
	for (unsigned i = 1; i <= nthieves; i++)
		CHECK(pthread_create(&th[i], NULL, race_thief, (void *)(uintptr_t)i) == 0);
	for (unsigned i = 0; i <= nthieves; i++)
		CHECK(pthread_join(th[i], NULL) == 0);

	/* What is left: the thieves' rings (a steal may have ended after the
	 * owner finished), and the global queue (the owner's overflows). */
	herd__task *t;
	for (unsigned i = 0; i <= nthieves; i++)
		while ((t = herd__runq_get(race.rt->workers[i])))
			race_take(t);
	unsigned long global = atomic_load(&race.rt->gq_size);
	while ((t = herd__global_get(race.rt->workers[0]))) {
		race_take(t);
		while ((t = herd__runq_get(race.rt->workers[0])))
			race_take(t);
	}
	size_t missing = 0;
	for (size_t i = 0; i < RACE_TASKS; i++)
		if (atomic_load(&race.taken[i]) != 1)
			missing++;
	printf("%u thieves: %lu steals, %lu tasks left in the global queue, "
	       "%zu missing\n", nthieves, atomic_load(&race.stolen), global, missing);
	CHECK_EQ(missing, 0);
	CHECK(atomic_load(&race.stolen) > 0);
	rt_free(race.rt);
	free(race.objs);
	free((void *)race.taken);
}

TEST(steal_race_1)
{
	steal_race(1);
}

TEST(steal_race_2)
{
	steal_race(2);
}

TEST(steal_race_3)
{
	steal_race(3);
}
