/*
 * unit.h - what the white-box tests share: zeroed cache-line-aligned
 * memory for the fake runtime objects they build by hand, a small PRNG,
 * threads that start together. Include it after the src/ header a test
 * needs (it brings test.h's harness and main).
 */
#ifndef HERD_UNIT_H
#define HERD_UNIT_H

#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

/* size zeroed bytes aligned to a cache line, as the runtime allocates its
 * structures (they hold alignas(64) members). */
static inline void *unit_zalloc(size_t size)
{
	void *p = NULL;
	CHECK(posix_memalign(&p, 64, size) == 0);
	memset(p, 0, size);
	return p;
}

/* xorshift64*: reproducible sequences from a seed. */
static inline uint64_t unit_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* A number in [0, n). */
static inline uint64_t unit_below(uint64_t *s, uint64_t n)
{
	return unit_rand(s) % n;
}

/* A gate the threads of a race wait at, so that they start together. */
typedef struct {
	_Atomic unsigned arrived;
	unsigned n;
} unit_gate;

static inline void unit_gate_pass(unit_gate *g)
{
	atomic_fetch_add(&g->arrived, 1);
	while (atomic_load(&g->arrived) < g->n)
		sched_yield();
}

#endif
