/*
 * test-timerheap.c - white-box tests of the timer heap (core/timerheap.c):
 * random inserts, removals and pops against a reference model; each
 * timer's record (its id, deadline and task), the lazy removal (dead
 * slots dropped from the root, and the heap rebuilt without them once
 * they outnumber the live ones), the ids not in use, the clamp of far
 * deadlines to INT64_MAX, and growth. After every operation the heap is
 * checked whole: by this file's own check (every build) and
 * herd__timerheap_check (checked builds).
 *
 * Not tested: -ENOMEM from a failed realloc (failure injection has its own
 * target, test-fail).
 */
#include "core/core.h"

#include "unit.h"

/* timerheap.c's WHEN_MAX: later deadlines are kept as INT64_MAX. */
#define WHEN_MAX (INT64_MAX - HERD_SEC)
/* Its children per node, and the dead slots it keeps before a rebuild. */
#define ARITY 4
#define DEAD_MIN 64

/* A task pointer for timer k, never dereferenced: the heap only hands it
 * back. */
static herd__task *fake_task(size_t k)
{
	return (herd__task *)(uintptr_t)(0x1000 + 16 * k);
}

/* The heap's invariants, and that exactly the timers marked `in` are in it
 * (live). */
static void heap_ok(const herd__timerheap *h, herd__timer *all, const bool *in,
		    size_t nall)
{
	size_t live = 0, dead = 0;
	CHECK(h->n <= h->cap);
	if (h->n)
		CHECK(h->recs[h->a[0].id].tm != NULL); /* the root is live */
	unsigned char *seen = h->cap ? calloc(h->cap, 1) : NULL;
	CHECK(!h->cap || seen);
	for (size_t i = 0; i < h->n; i++) {
		uint32_t id = h->a[i].id;
		CHECK(id < h->cap);
		seen[id]++;
		if (i > 0)
			CHECK(h->a[(i - 1) / ARITY].when <= h->a[i].when);
		herd__timer *tm = h->recs[id].tm;
		if (!tm) {
			dead++;
			continue;
		}
		live++;
		CHECK(tm >= all && tm < all + nall);
		CHECK(in[tm - all]);
		CHECK_EQ(tm->index, id);
		CHECK_EQ(h->a[i].when, tm->when);
		CHECK(h->recs[id].task == tm->task);
	}
	CHECK_EQ(dead, h->ndead);
	/* Every id is either a slot's or spare, once. */
	for (size_t k = 0; k < h->cap - h->n; k++) {
		CHECK(h->spare[k] < h->cap);
		CHECK(h->recs[h->spare[k]].tm == NULL);
		seen[h->spare[k]]++;
	}
	for (size_t id = 0; id < h->cap; id++)
		CHECK_EQ(seen[id], 1);
	free(seen);
	size_t n = 0;
	for (size_t k = 0; k < nall; k++) {
		if (in[k]) {
			n++;
			CHECK(all[k].index < h->cap && h->recs[all[k].index].tm == &all[k]);
		} else {
			CHECK(all[k].index == SIZE_MAX);
		}
	}
	CHECK_EQ(n, live);
#if HERD_CHECKED
	herd__timerheap_check(h);
#endif
}

static void heap_free(herd__timerheap *h)
{
	herd__timerheap_free(h);
	CHECK(h->a == NULL && h->n == 0 && h->cap == 0 && h->ndead == 0);
}

/* Pops the earliest timer, checking its task, and marks it out of the
 * heap as timer.c does. */
static herd__timer *pop(herd__timerheap *h)
{
	herd__task *t;
	int64_t first = herd__timerheap_first(h);
	herd__timer *tm = herd__timerheap_pop(h, &t);
	CHECK(tm != NULL && t == tm->task && tm->when == first);
	tm->index = SIZE_MAX;
	return tm;
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

/* Random adds, removals of any timer and pops of the earliest, against the
 * model: the earliest is always the model's first, and the heap is whole
 * after each step. */
static void random_ops(uint64_t seed, size_t nall, int steps)
{
	herd__timerheap h = {0};
	herd__timer *all = calloc(nall, sizeof *all);
	bool *in = calloc(nall, sizeof *in);
	model = calloc(nall, sizeof *model);
	model_n = 0;
	CHECK(all && in && model);
	for (size_t k = 0; k < nall; k++) {
		all[k].index = SIZE_MAX;
		all[k].task = k % 3 ? fake_task(k) : NULL;
	}

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
		} else if (model_n) {
			herd__timer *tm = pop(&h);
			CHECK_EQ(tm->when, model[0]);
			in[tm - all] = false;
			model_remove(tm->when);
		}
		CHECK_EQ(h.n - h.ndead, model_n);
		CHECK_EQ(herd__timerheap_first(&h), model_n ? model[0] : INT64_MAX);
		if (nall <= 64 || step % 16 == 0)
			heap_ok(&h, all, in, nall);
	}
	/* Drain in order. */
	for (size_t i = 0; h.n; i++) {
		herd__timer *tm = pop(&h);
		CHECK_EQ(tm->when, model[i]);
		in[tm - all] = false;
	}
	CHECK_EQ(h.ndead, 0);
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
 * node; a removed timer can be added again, and becomes the earliest. */
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
					       .index = SIZE_MAX, .task = fake_task(k)};
			CHECK_OK(herd__timerheap_add(&h, &all[k]));
			in[k] = true;
		}
		heap_ok(&h, all, in, N);
		/* The timer in heap slot `victim`. */
		herd__timer *tm = h.recs[h.a[victim].id].tm;
		bool was_first = herd__timerheap_is_first(&h, tm);
		CHECK_EQ(was_first, victim == 0);
		herd__timerheap_remove(&h, tm);
		in[tm - all] = false;
		CHECK(tm->index == SIZE_MAX);
		/* Lazily: the root's slot leaves at once, another stays dead. */
		CHECK_EQ(h.ndead, victim == 0 ? 0 : 1);
		heap_ok(&h, all, in, N);
		tm->when = -1;
		CHECK_OK(herd__timerheap_add(&h, tm));
		in[tm - all] = true;
		CHECK(herd__timerheap_is_first(&h, tm));
		heap_ok(&h, all, in, N);
		heap_free(&h);
	}
}

/* Dead slots under the root leave when the root reaches them, and once
 * they outnumber the live ones the heap is rebuilt without them; the rest
 * still comes out in order. */
TEST(remove_lazy_rebuild)
{
	enum { N = 1000 };
	herd__timerheap h = {0};
	herd__timer *all = calloc(N, sizeof *all);
	bool *in = calloc(N, sizeof *in);
	CHECK(all && in);
	for (size_t k = 0; k < N; k++) {
		all[k] = (herd__timer){.when = (int64_t)k, .index = SIZE_MAX};
		CHECK_OK(herd__timerheap_add(&h, &all[k]));
		in[k] = true;
	}
	/* 1 .. 9 die under a live root (0): their slots stay. */
	for (size_t k = 1; k < 10; k++) {
		herd__timerheap_remove(&h, &all[k]);
		in[k] = false;
	}
	CHECK_EQ(h.ndead, 9);
	CHECK_EQ(h.n, N);
	heap_ok(&h, all, in, N);
	/* The root goes: the dead behind it go with it. */
	herd__timerheap_remove(&h, &all[0]);
	in[0] = false;
	CHECK_EQ(h.ndead, 0);
	CHECK_EQ(h.n, N - 10);
	CHECK_EQ(herd__timerheap_first(&h), 10);
	heap_ok(&h, all, in, N);
	/* Removing three in four from the top: once more dead than live, a
	 * rebuild. (At the end, removing the root drops the dead right
	 * behind it.) */
	bool rebuilt = false;
	for (size_t k = N - 1; k >= 10; k--) {
		if (k % 4 == 0)
			continue;
		size_t before = h.ndead, n = h.n;
		herd__timerheap_remove(&h, &all[k]);
		in[k] = false;
		if (h.ndead == 0 && before > 0) { /* all dead slots gone */
			rebuilt = true;
			CHECK_EQ(h.n, n - before - 1);
		}
		CHECK(h.ndead <= DEAD_MIN || 2 * h.ndead <= h.n);
		if (k % 64 == 1)
			heap_ok(&h, all, in, N);
	}
	CHECK(rebuilt);
	heap_ok(&h, all, in, N);
	int64_t last = -1;
	while (h.n) {
		herd__timer *tm = pop(&h);
		CHECK(tm->when > last && tm->when % 4 == 0);
		last = tm->when;
		in[tm - all] = false;
	}
	heap_ok(&h, all, in, N);
	heap_free(&h);
	free(all);
	free(in);
}

/* Pop takes the earliest each time, in order (equal deadlines in any
 * order), with its task, and the heap stays whole. */
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
				       .index = SIZE_MAX, .task = fake_task(k)};
		CHECK_OK(herd__timerheap_add(&h, &all[k]));
		in[k] = true;
	}
	heap_ok(&h, all, in, N);
	int64_t last = INT64_MIN;
	for (size_t k = 0; k < N; k++) {
		herd__timer *tm = pop(&h);
		CHECK(tm->when >= last);
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
		herd__timer *tm = pop(&h);
		CHECK(tm->when >= last);
		last = tm->when;
		in[tm - all] = false;
	}
	CHECK(last == INT64_MAX);
	heap_free(&h);
}

/* The arrays start at 64 slots and double; pops keep them. */
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
		CHECK(herd__timerheap_is_first(&h, &all[k]));
		size_t want = 64;
		while (want < k + 1)
			want *= 2;
		CHECK_EQ(h.cap, want);
	}
	heap_ok(&h, all, in, N);
	for (size_t k = 0; k < N; k++) {
		CHECK(pop(&h) == &all[N - 1 - k]);
		in[N - 1 - k] = false;
	}
	CHECK_EQ(h.cap, 1024);
	heap_ok(&h, all, in, N);
	heap_free(&h);
	free(all);
	free(in);
}
