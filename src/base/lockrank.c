/*
 * lockrank.c - checked invariants: the report of a failed assert, and the
 * lock-rank checker (as Go's lockrank.go).
 *
 * Each thread keeps the ranks of the herd locks it holds, in the order it
 * took them. A lock may be taken only if its rank is above every rank held,
 * or equal to the highest where the rank allows several (HERD__RANK_MULTI:
 * the order among those is the caller's, by address or parent first).
 * Locks may be released in any order. A task never holds a lock across a
 * context switch (herd__rank_none_held before each), so the per-thread
 * record is the task's too. Only checked builds have it.
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

#define HELD_MAX 16 /* deepest nesting of herd locks: scopes of a tree */

static __thread struct {
	unsigned n;
	uint8_t rank[HELD_MAX];
	const herd__mutex *lock[HELD_MAX];
} held;

static HERD__NORETURN void rank_fail(const char *what, const herd__mutex *m)
{
	char buf[256];
	int n = snprintf(buf, sizeof buf, "herd: lock rank: %s: taking %p (rank %u), holding",
			 what, (const void *)m, m ? m->rank : 0);
	for (unsigned i = 0; i < held.n && n > 0 && (size_t)n < sizeof buf; i++)
		n += snprintf(buf + n, sizeof buf - (size_t)n, " %u", held.rank[i]);
	if (n > 0 && (size_t)n < sizeof buf - 1) {
		buf[n++] = '\n';
		ssize_t r = write(2, buf, (size_t)n);
		(void)r;
	}
	abort();
}

void herd__rank_acquire(const herd__mutex *m)
{
	unsigned r = m->rank;
	if (r == HERD__RANK_NONE || r >= HERD__RANK_COUNT)
		rank_fail("lock never initialised", m);
	if (held.n) {
		unsigned top = 0;
		for (unsigned i = 0; i < held.n; i++) {
			if (held.lock[i] == m)
				rank_fail("lock already held by this thread", m);
			if (held.rank[i] > top)
				top = held.rank[i];
		}
		if (r < top || (r == top && !(HERD__RANK_MULTI & (1u << r))))
			rank_fail("out of order", m);
	}
	if (held.n == HELD_MAX)
		rank_fail("too many locks held", m);
	held.rank[held.n] = (uint8_t)r;
	held.lock[held.n] = m;
	held.n++;
}

void herd__rank_release(const herd__mutex *m)
{
	for (unsigned i = held.n; i-- > 0;) {
		if (held.lock[i] == m) {
			memmove(&held.lock[i], &held.lock[i + 1],
				(held.n - i - 1) * sizeof held.lock[0]);
			memmove(&held.rank[i], &held.rank[i + 1],
				(held.n - i - 1) * sizeof held.rank[0]);
			held.n--;
			return;
		}
	}
	rank_fail("releasing a lock this thread does not hold", m);
}

void herd__rank_none_held(void)
{
	if (held.n)
		rank_fail("a lock held across a context switch", NULL);
}

#endif /* HERD_CHECKED */
