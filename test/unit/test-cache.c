/*
 * test-cache.c - white-box tests of the magazine cache (core/cache.c): a
 * worker's array of objects, the depot of full and empty magazines, the
 * spill of a full cache and the refill of an empty one, draining, and the
 * depot's end; then threads with a cache each sharing one depot.
 *
 * The objects are slots of an array: the cache only keeps their addresses.
 */
#include "core/core.h"

#include "unit.h"

#define NOBJ 4096
static _Atomic unsigned *objs;  /* per object: how many hold it */

static void *O(size_t i)
{
	CHECK(i < NOBJ);
	return (void *)&objs[i];
}

static size_t oid(const void *p)
{
	CHECK(p != NULL);
	const _Atomic unsigned *o = p;
	CHECK(o >= objs && o < objs + NOBJ);
	return (size_t)(o - objs);
}

static void objs_make(void)
{
	objs = calloc(NOBJ, sizeof *objs);
	CHECK(objs != NULL);
}

static herd__depot *depot_new(void)
{
	herd__depot *d = unit_zalloc(sizeof *d);
	herd__mutex_init(&d->lock, HERD__RANK_DEPOT);
	return d;
}

/* The magazines in a depot's list (cache.c's struct herd__mag, opaque
 * here, starts with its `next`). */
static size_t mags(const struct herd__mag *m)
{
	size_t n = 0;
	for (; m; m = *(struct herd__mag *const *)m)
		n++;
	return n;
}

static void depot_is(herd__depot *d, size_t nfull)
{
	CHECK_EQ(d->nfull, nfull);
	CHECK_EQ(atomic_load(&d->nfull_hint), nfull);
	CHECK_EQ(mags(d->full), nfull);
}

/* depot_fini's release: counts each object it is given. */
static void count_release(void *obj, void *arg)
{
	unsigned *seen = arg;
	seen[oid(obj)]++;
}

static void get_is(herd__cache *c, herd__depot *d, size_t i)
{
	CHECK_EQ(oid(herd__cache_get(c, d)), i);
}

/* The cache gives back the objects put in it, last in first out; an empty
 * cache with an empty depot gives NULL. */
TEST(roundtrip)
{
	objs_make();
	herd__depot *d = depot_new();
	herd__cache c = {0};
	CHECK(herd__cache_get(&c, d) == NULL);
	for (size_t i = 0; i < HERD__CACHE; i++)
		CHECK(herd__cache_put(&c, d, O(i)));
	CHECK_EQ(c.n, HERD__CACHE);
	depot_is(d, 0);
	for (size_t i = HERD__CACHE; i-- > 0;)
		get_is(&c, d, i);
	CHECK(herd__cache_get(&c, d) == NULL);
	CHECK(d->empty == NULL); /* never needed a magazine */
	herd__depot_fini(d, NULL, NULL);
	free(d);
}

/* A full cache moves its upper HERD__MAG objects to the depot as one
 * magazine; an empty one takes a whole magazine back, and the magazine
 * is kept empty for the next spill. */
TEST(spill_refill)
{
	objs_make();
	herd__depot *d = depot_new();
	herd__cache c = {0};
	for (size_t i = 0; i < HERD__CACHE; i++)
		CHECK(herd__cache_put(&c, d, O(i)));
	depot_is(d, 0);
	CHECK(herd__cache_put(&c, d, O(HERD__CACHE)));
	CHECK_EQ(c.n, HERD__CACHE - HERD__MAG + 1);
	depot_is(d, 1);
	CHECK(d->empty == NULL);

	/* The cache: 0..63 and 128; the depot: 64..127. */
	get_is(&c, d, HERD__CACHE);
	for (size_t i = HERD__MAG; i-- > 0;)
		get_is(&c, d, i);
	CHECK_EQ(c.n, 0);
	/* Refill: the whole magazine comes back. */
	get_is(&c, d, HERD__CACHE - 1);
	CHECK_EQ(c.n, HERD__MAG - 1);
	depot_is(d, 0);
	CHECK_EQ(mags(d->empty), 1);
	for (size_t i = HERD__CACHE - 1; i-- > HERD__MAG;)
		get_is(&c, d, i);
	CHECK(herd__cache_get(&c, d) == NULL);

	/* The next spill reuses the empty magazine. */
	for (size_t i = 0; i <= HERD__CACHE; i++)
		CHECK(herd__cache_put(&c, d, O(i)));
	depot_is(d, 1);
	CHECK(d->empty == NULL);

	/* Two spills: two full magazines; refills take the newest first. */
	for (size_t i = HERD__CACHE + 1; i < HERD__CACHE + HERD__MAG; i++)
		CHECK(herd__cache_put(&c, d, O(i)));
	CHECK_EQ(c.n, HERD__CACHE);
	CHECK(herd__cache_put(&c, d, O(1000)));
	depot_is(d, 2);
	unsigned seen[NOBJ] = {0};
	size_t n = 0;
	void *o;
	while ((o = herd__cache_get(&c, d))) {
		CHECK(c.n <= HERD__CACHE);
		seen[oid(o)]++;
		n++;
	}
	CHECK_EQ(n, HERD__CACHE + HERD__MAG + 1);
	for (size_t i = 0; i < HERD__CACHE + HERD__MAG; i++)
		CHECK_EQ(seen[i], 1);
	CHECK_EQ(seen[1000], 1);
	depot_is(d, 0);
	CHECK_EQ(mags(d->empty), 2);
	herd__depot_fini(d, count_release, seen);
	CHECK(d->full == NULL && d->empty == NULL);
	free(d);
}

/* Drain moves everything into magazines of at most HERD__MAG; fini then
 * releases each object exactly once, and frees every magazine (ASan's
 * leak check sees the rest). */
TEST(drain_fini)
{
	objs_make();
	/* Totals that leave the cache empty, full, and in between. */
	static const size_t totals[] = {0, 1, HERD__MAG - 1, HERD__MAG, HERD__MAG + 1,
					HERD__CACHE - 1, HERD__CACHE, HERD__CACHE + 1,
					HERD__CACHE + HERD__MAG - 1,
					HERD__CACHE + HERD__MAG,
					HERD__CACHE + HERD__MAG + 1, 3 * HERD__MAG + 5};
	for (size_t k = 0; k < sizeof totals / sizeof totals[0]; k++) {
		size_t total = totals[k];
		herd__depot *d = depot_new();
		herd__cache c = {0};
		for (size_t i = 0; i < total; i++)
			CHECK(herd__cache_put(&c, d, O(i)));
		size_t before = d->nfull;
		size_t in_cache = c.n;
		CHECK(herd__cache_drain(&c, d) == NULL);
		CHECK_EQ(c.n, 0);
		depot_is(d, before + (in_cache + HERD__MAG - 1) / HERD__MAG);
		/* Drain again: nothing to do. */
		CHECK(herd__cache_drain(&c, d) == NULL);
		depot_is(d, before + (in_cache + HERD__MAG - 1) / HERD__MAG);

		/* A refill, and a drain that reuses its magazine. */
		unsigned seen[NOBJ] = {0};
		if (total) {
			void *o = herd__cache_get(&c, d);
			CHECK(o != NULL);
			CHECK(d->empty != NULL);
			seen[oid(o)]++;
			CHECK(herd__cache_drain(&c, d) == NULL);
		}
		herd__depot_fini(d, count_release, seen);
		for (size_t i = 0; i < NOBJ; i++)
			CHECK_EQ(seen[i], i < total ? 1 : 0);
		CHECK(d->full == NULL && d->empty == NULL);
		CHECK_EQ(d->nfull, 0);
		free(d);
	}
	/* fini without a release function frees only the magazines. */
	herd__depot *d = depot_new();
	herd__cache c = {0};
	for (size_t i = 0; i < 3 * HERD__MAG; i++)
		CHECK(herd__cache_put(&c, d, O(i)));
	CHECK(herd__cache_drain(&c, d) == NULL);
	herd__depot_fini(d, NULL, NULL);
	CHECK(d->full == NULL && d->empty == NULL);
	free(d);
}

/* ------------------------------------------------------------------ */
/* Threads, each with its cache, one depot                            */
/* ------------------------------------------------------------------ */

#define NTHREADS 4
#if TEST_UNDER_TSAN
#define ROUNDS 1500
#else
#define ROUNDS 20000
#endif

static herd__depot *shared;
static unit_gate gate = {.n = NTHREADS};

static void *churn(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg;
	herd__cache c = {0};
	uint64_t seed = 7 + me;
	void *held[400];
	/* Its share of the objects, put in its cache (and spilled). */
	for (size_t i = me; i < NOBJ; i += NTHREADS)
		CHECK(herd__cache_put(&c, shared, O(i)));
	unit_gate_pass(&gate);
	for (int round = 0; round < ROUNDS; round++) {
		size_t want = 1 + unit_below(&seed, 400), n = 0;
		for (; n < want; n++) {
			void *o = herd__cache_get(&c, shared);
			if (!o)
				break;
			if (atomic_fetch_add(&objs[oid(o)], 1) != 0) {
				fprintf(stderr, "object %zu handed out twice\n", oid(o));
				exit(1);
			}
			held[n] = o;
		}
		CHECK(c.n <= HERD__CACHE);
		while (n > 0) {
			void *o = held[--n];
			atomic_fetch_sub(&objs[oid(o)], 1);
			CHECK(herd__cache_put(&c, shared, o));
		}
	}
	CHECK(herd__cache_drain(&c, shared) == NULL);
	return NULL;
}

TEST(threads_share_depot)
{
	objs_make();
	shared = depot_new();
	pthread_t th[NTHREADS];
	for (unsigned i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&th[i], NULL, churn, (void *)(uintptr_t)i) == 0);
	for (unsigned i = 0; i < NTHREADS; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	CHECK_EQ(atomic_load(&shared->nfull_hint), shared->nfull);
	static unsigned seen[NOBJ];
	herd__depot_fini(shared, count_release, seen);
	for (size_t i = 0; i < NOBJ; i++) {
		CHECK_EQ(seen[i], 1);
		CHECK_EQ(atomic_load(&objs[i]), 0);
	}
	free(shared);
}
