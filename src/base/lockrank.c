/*
 * lockrank.c - checked invariants: the report of a failed assert, and the
 * lock-rank checker (as Go's lockrank.go).
 *
 * Each thread counts the herd locks it holds, by rank. A lock may be taken only if its rank is above every rank held,
 * or equal to the highest where the rank allows several (HERD__RANK_MULTI:
 * the order among those is the caller's, by address or parent first).
 * Locks may be released in any order. A task never holds a lock across a
 * context switch (herd__rank_none_held before each), so the per-thread
 * record is the task's too. Only checked builds have it. A lock stores its
 * rank, except the lock of an object in the program's memory, which may be
 * all zeros: herd__objlock names its rank at each call (base.h).
 *
 * No lock: the record is thread-local. The report writes with write(2), so
 * that it works in a signal handler and with the heap broken.
 */
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void herd__assert_fail(const char *expr, const char *file, int line)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "herd: internal check failed: %s (%s:%d)\n",
			 expr, file, line);
	if (n > 0) {
		ssize_t r = write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
		(void)r;
	}
	abort();
}

#if HERD_CHECKED

/* What the thread holds: how many locks of each rank, and, for a rank
 * that allows one at a time, which (so that taking it again is caught). A
 * select holds up to HERD_SELECT_MAX channels at once: a count, not a
 * list. */
static __thread struct {
	uint32_t count[HERD__RANK_COUNT];
	const herd__mutex *single[HERD__RANK_COUNT];
	unsigned top;      /* the highest rank held, 0 for none */
} held;

static HERD__NORETURN void rank_fail(const char *what, const herd__mutex *m,
				     unsigned rank)
{
	char buf[256];
	int n = snprintf(buf, sizeof buf, "herd: lock rank: %s: lock %p (rank %u), holding ranks",
			 what, (const void *)m, rank);
	for (unsigned r = 1; r < HERD__RANK_COUNT && n > 0 && (size_t)n < sizeof buf; r++)
		if (held.count[r])
			n += snprintf(buf + n, sizeof buf - (size_t)n, " %u(x%u)", r,
				      held.count[r]);
	if (n > 0 && (size_t)n < sizeof buf - 1) {
		buf[n++] = '\n';
		ssize_t wr = write(2, buf, (size_t)n);
		(void)wr;
	}
	abort();
}

void herd__rank_acquire_as(const herd__mutex *m, unsigned r)
{
	if (r == HERD__RANK_NONE || r >= HERD__RANK_COUNT)
		rank_fail("lock never initialised", m, r);
	bool multi = HERD__RANK_MULTI & (1u << r);
	if (r < held.top || (r == held.top && !multi)) {
		if (held.single[r] == m)
			rank_fail("lock already held by this thread", m, r);
		rank_fail("taken out of order", m, r);
	}
	held.count[r]++;
	if (!multi)
		held.single[r] = m;
	held.top = r;
}

void herd__rank_release_as(const herd__mutex *m, unsigned r)
{
	if (r >= HERD__RANK_COUNT || held.count[r] == 0 ||
	    (!(HERD__RANK_MULTI & (1u << r)) && held.single[r] != m))
		rank_fail("releasing a lock this thread does not hold", m, r);
	if (--held.count[r] == 0) {
		held.single[r] = NULL;
		if (r == held.top)
			while (held.top && !held.count[held.top])
				held.top--;
	}
}

void herd__rank_none_held(void)
{
	if (held.top)
		rank_fail("a lock held across a context switch", NULL, 0);
}

#endif /* HERD_CHECKED */
