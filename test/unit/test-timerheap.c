/*
 * test-timerheap.c - white-box tests of the timer heap (core/timerheap.c):
 * random inserts and removes against a reference model, each timer's
 * index and the deadline kept in its slot, the clamp of far deadlines to
 * INT64_MAX, and growth. After every
 * operation the heap is checked whole: by this file's own check (every
 * build) and herd__timerheap_check (checked builds).
 *
 * Not tested: -ENOMEM from a failed realloc (failure injection has its own
 * target, test-fail).
 */
#include "core/core.h"

#include "unit.h"

/* timerheap.c's WHEN_MAX: later deadlines are kept as INT64_MAX. */
#define WHEN_MAX (INT64_MAX - HERD_SEC)
/* Its children per node. */
#define ARITY 4

/* The heap's invariants, and that exactly the timers marked `in` are in it. */
static void heap_ok(const herd__timerheap *h, herd__timer *all, const bool *in,
		    size_t nall)
{
	CHECK(h->n <= h->cap);
	for (size_t i = 0; i < h->n; i++) {
		herd__timer *tm = h->a[i].tm;
		CHECK(tm >= all && tm < all + nall);
		CHECK(in[tm - all]);
		CHECK_EQ(tm->index, i);
		CHECK_EQ(h->a[i].when, tm->when);
		if (i > 0)
			CHECK(h->a[(i - 1) / ARITY].when <= h->a[i].when);
	}
	size_t n = 0;
	for (size_t k = 0; k < nall; k++) {
		if (in[k]) {
			n++;
			CHECK(all[k].index < h->n && h->a[all[k].index].tm == &all[k]);
		} else {
			CHECK(all[k].index == SIZE_MAX);
		}
	}
	CHECK_EQ(n, h->n);
#if HERD_CHECKED
	herd__timerheap_check(h);
#endif
}

static void heap_free(herd__timerheap *h)
{
	free(h->a);
	h->a = NULL;
	h->n = h->cap = 0;
}

/* The reference model: the multiset of whens in the heap, sorted. */
static int64_t *model;
static size_t model_n;

static void model_add(int64_t when)
{
	size_t i = model_n++;
	while (i > 0 && model[i - 1] > when) {
		model[i] = model[i - 1];
		i--;
	}
	model[i] = when;
}

static void model_remove(int64_t when)
{
	size_t i = 0;
	while (i < model_n && model[i] != when)
		i++;
	CHECK(i < model_n);
	memmove(&model[i], &model[i + 1], (model_n - i - 1) * sizeof *model);
	model_n--;
}

/* A deadline from a small range (many equal ones), a wide one, or the
 * edges (negative, around WHEN_MAX and INT64_MAX). */
static int64_t random_when(uint64_t *seed)
{
	switch (unit_below(seed, 8)) {
	case 0:
		return (int64_t)unit_below(seed, 16);
	case 1:
		return -(int64_t)unit_below(seed, 1000);
	case 2:
		return WHEN_MAX - 2 + (int64_t)unit_below(seed, 5);
	case 3:
		return INT64_MAX - (int64_t)unit_below(seed, 3);
	default:
		return (int64_t)(unit_rand(seed) >> 2);
	}
}

static int64_t clamped(int64_t when)
{
	return when > WHEN_MAX ? INT64_MAX : when;
}

/* Random adds, removes of any timer and removes of the earliest, against
 * the model: the earliest is always the model's first, and the heap is
 * whole after each step. */
static void random_ops(uint64_t seed, size_t nall, int steps)
{
	herd__timerheap h = {0};
	herd__timer *all = calloc(nall, sizeof *all);
	bool *in = calloc(nall, sizeof *in);
	model = calloc(nall, sizeof *model);
	model_n = 0;
	CHECK(all && in && model);
	for (size_t k = 0; k < nall; k++)
		all[k].index = SIZE_MAX;

	for (int step = 0; step < steps; step++) {
		size_t k = unit_below(&seed, nall);
		unsigned op = (unsigned)unit_below(&seed, 10);
		/* Fill up for the first half, then drain. */
		bool adding = step < steps / 2 ? op < 6 : op < 3;
		if (!in[k] && adding) {
			int64_t when = random_when(&seed);
			all[k].when = when;
			CHECK_OK(herd__timerheap_add(&h, &all[k]));
			CHECK_EQ(all[k].when, clamped(when));
			in[k] = true;
			model_add(all[k].when);
		} else if (in[k] && op % 2) {
			herd__timerheap_remove(&h, &all[k]);
			in[k] = false;
			model_remove(all[k].when);
		} else if (h.n) {
			herd__timer *tm = h.a[0].tm;
			CHECK_EQ(tm->when, model[0]);
			herd__timerheap_remove(&h, tm);
			in[tm - all] = false;
			model_remove(tm->when);
		}
		CHECK_EQ(h.n, model_n);
		if (h.n)
			CHECK_EQ(h.a[0].when, model[0]);
		if (nall <= 64 || step % 16 == 0)
			heap_ok(&h, all, in, nall);
	}
	/* Drain in order. */
	for (size_t i = 0; h.n; i++) {
		herd__timer *tm = h.a[0].tm;
		CHECK_EQ(tm->when, model[i]);
		herd__timerheap_remove(&h, tm);
		in[tm - all] = false;
	}
	heap_ok(&h, all, in, nall);
	heap_free(&h);
	free(all);
	free(in);
	free(model);
}

TEST(random_small)
{
	for (uint64_t seed = 1; seed <= 200; seed++)
		random_ops(seed, 1 + seed % 40, 400);
}

TEST(random_large)
{
	random_ops(12345, 5000, 60000);
}

/* Every position: removing the root, a leaf, the last slot, an inner
 * node, each with the right index bookkeeping; a removed timer can be
 * added again. */
TEST(remove_each_position)
{
	enum { N = 37 };
	for (size_t victim = 0; victim < N; victim++) {
		herd__timerheap h = {0};
		herd__timer all[N];
		bool in[N];
		uint64_t seed = victim + 1;
		for (size_t k = 0; k < N; k++) {
			all[k] = (herd__timer){.when = (int64_t)unit_below(&seed, 20),
					       .index = SIZE_MAX};
			CHECK_OK(herd__timerheap_add(&h, &all[k]));
			in[k] = true;
		}
		heap_ok(&h, all, in, N);
		/* The timer in heap slot `victim`. */
		herd__timer *tm = h.a[victim].tm;
		herd__timerheap_remove(&h, tm);
		in[tm - all] = false;
		CHECK(tm->index == SIZE_MAX);
		heap_ok(&h, all, in, N);
		tm->when = -1;
		CHECK_OK(herd__timerheap_add(&h, tm));
		in[tm - all] = true;
		CHECK(h.a[0].tm == tm && tm->index == 0);
		heap_ok(&h, all, in, N);
		heap_free(&h);
	}
}

/* A removal whose replacement is smaller than the removed timer's parent
 * must sift it up (the last slot may lie in another subtree). */
TEST(remove_sifts_up)
{
	herd__timerheap h = {0};
	/* Inserted in heap order, so each stays in its slot: 0 at the root;
	 * 100, 1, 2, 3 in slots 1 to 4; 101 to 104 (slots 5 to 8) under 100;
	 * 5, 6, 7 and 4 (slots 9 to 12, the last) under 1. Removing 101 moves
	 * 4 into 100's subtree, where it must rise above 100. */
	int64_t whens[] = {0, 100, 1, 2, 3, 101, 102, 103, 104, 5, 6, 7, 4};
	enum { N = sizeof whens / sizeof whens[0] };
	herd__timer all[N];
	bool in[N];
	for (size_t k = 0; k < N; k++) {
		all[k] = (herd__timer){.when = whens[k], .index = SIZE_MAX};
		CHECK_OK(herd__timerheap_add(&h, &all[k]));
		in[k] = true;
	}
	heap_ok(&h, all, in, N);
	for (size_t k = 0; k < N; k++)
		CHECK_EQ(all[k].index, k); /* inserted already in heap order */
	herd__timerheap_remove(&h, &all[5]); /* 101: 4 takes its slot */
	in[5] = false;
	heap_ok(&h, all, in, N);
	CHECK_EQ(all[12].index, 1); /* 4 rose above 100 */
	CHECK_EQ(all[1].index, 5);  /* and 100 went down */
	heap_free(&h);
}

/* Pop takes the earliest each time, in order (equal deadlines in any
 * order), with the heap whole after each; what is left stays whole. */
TEST(pop_in_order)
{
	enum { N = 3000 };
	herd__timerheap h = {0};
	herd__timer *all = calloc(N, sizeof *all);
	bool *in = calloc(N, sizeof *in);
	CHECK(all && in);
	uint64_t seed = 77;
	for (size_t k = 0; k < N; k++) {
		all[k] = (herd__timer){.when = (int64_t)unit_below(&seed, N / 4),
				       .index = SIZE_MAX};
		CHECK_OK(herd__timerheap_add(&h, &all[k]));
		in[k] = true;
	}
	heap_ok(&h, all, in, N);
	int64_t last = INT64_MIN;
	for (size_t k = 0; k < N; k++) {
		int64_t first = h.a[0].when;
		herd__timer *tm = herd__timerheap_pop(&h);
		CHECK(tm->when == first && tm->when >= last);
		CHECK(tm->index == SIZE_MAX);
		last = tm->when;
		in[tm - all] = false;
		if (k % 97 == 0)
			heap_ok(&h, all, in, N);
	}
	CHECK_EQ(h.n, 0);
	heap_ok(&h, all, in, N);
	heap_free(&h);
	free(all);
	free(in);
}

/* Deadlines past WHEN_MAX become INT64_MAX (never); WHEN_MAX and below
 * are kept as they are. */
TEST(when_clamp)
{
	herd__timerheap h = {0};
	int64_t whens[] = {WHEN_MAX + 1, INT64_MAX, WHEN_MAX, WHEN_MAX - 1,
			   INT64_MAX - 1, 0, -5, INT64_MIN};
	int64_t want[] = {INT64_MAX, INT64_MAX, WHEN_MAX, WHEN_MAX - 1,
			  INT64_MAX, 0, -5, INT64_MIN};
	enum { N = sizeof whens / sizeof whens[0] };
	herd__timer all[N];
	bool in[N];
	for (size_t k = 0; k < N; k++) {
		all[k] = (herd__timer){.when = whens[k], .index = SIZE_MAX};
		CHECK_OK(herd__timerheap_add(&h, &all[k]));
		CHECK(all[k].when == want[k]);
		in[k] = true;
	}
	heap_ok(&h, all, in, N);
	int64_t last = INT64_MIN;
	while (h.n) {
		herd__timer *tm = h.a[0].tm;
		CHECK(tm->when >= last);
		last = tm->when;
		herd__timerheap_remove(&h, tm);
		in[tm - all] = false;
	}
	CHECK(last == INT64_MAX);
	heap_free(&h);
}

/* The array starts at 64 slots and doubles; removals keep it. */
TEST(growth)
{
	enum { N = 1000 };
	herd__timerheap h = {0};
	herd__timer *all = calloc(N, sizeof *all);
	bool *in = calloc(N, sizeof *in);
	CHECK(all && in);
	CHECK(h.cap == 0 && h.a == NULL);
	for (size_t k = 0; k < N; k++) {
		all[k].when = (int64_t)(N - k); /* each new one the earliest */
		all[k].index = SIZE_MAX;
		CHECK_OK(herd__timerheap_add(&h, &all[k]));
		in[k] = true;
		CHECK_EQ(all[k].index, 0);
		size_t want = 64;
		while (want < k + 1)
			want *= 2;
		CHECK_EQ(h.cap, want);
	}
	heap_ok(&h, all, in, N);
	for (size_t k = 0; k < N; k++) {
		CHECK(h.a[0].tm == &all[N - 1 - k]);
		herd__timerheap_remove(&h, h.a[0].tm);
		in[N - 1 - k] = false;
	}
	CHECK_EQ(h.cap, 1024);
	heap_ok(&h, all, in, N);
	heap_free(&h);
	free(all);
	free(in);
}
