/*
 * leak.c - with debug checks on, the registry of what the program made and
 * has not freed (channels, timers, process handles, wait groups,
 * descriptors), listed on stderr with where each was made when herd_run
 * returns.
 *
 * The make and free calls test herd__leak_on first (herd__leak_tracking,
 * core.h): with debug checks off that is one predictable branch, and
 * nothing here runs. herd_run turns it on before its first task and off
 * when it lists what is left, so an object made before herd_run (or after
 * it) is not registered, and its free finds nothing to remove. Only the
 * program's own calls register: the public make function takes the return
 * address (the program's code), and an object herd makes for itself (a
 * timer's channel, a process's done channel) is removed at once by its
 * maker.
 *
 * The table: open addressing with linear probing, keyed by the object's
 * address, or for a descriptor by (fd << 1) | 1 (objects are aligned, so
 * the two never meet; a descriptor number the kernel hands out again
 * replaces the old entry). Deletion shifts the following entries back, so
 * there are no tombstones. herd_run makes it (FIRST_CAP entries) before
 * its first task, so that a make call allocates for the registry only when
 * the program keeps many objects alive: failure injection (test-fail.c)
 * then sees the call's own allocations only. It grows at 3/4 full; when it
 * cannot grow, the object is not registered (counted in `dropped`):
 * tracking never fails the program's call.
 *
 * `lock` (HERD__RANK_LEAKS, taken under no other lock of herd's but what
 * the program's make and free calls hold, which is nothing) protects the
 * table, `count`, `seq` and `dropped`.
 */
#include "core/core.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Atomic bool herd__leak_on;

struct entry {
	uintptr_t key;          /* 0: empty */
	const void *pc;         /* where the program made it */
	uint64_t seq;           /* the order of making, for the listing */
	int64_t a, b;           /* what the listing shows (see describe) */
	const char *what;       /* a descriptor's maker */
	enum herd__leak_kind kind;
};

/* The table herd_run starts with: a program that keeps fewer objects alive
 * at once makes no allocation of the registry's during the run. */
#define FIRST_CAP 256u

static herd__mutex lock = HERD__MUTEX_INITIALIZER(HERD__RANK_LEAKS);
static struct entry *table;
static size_t cap, count;       /* cap: 0 or a power of two */
static uint64_t seq, dropped;

static size_t slot_of(uintptr_t key)
{
	return (size_t)((key >> 1) * 0x9E3779B97F4A7C15ull >> 17) & (cap - 1);
}

/* The entry of key, or the empty slot where it would go. */
static struct entry *find(uintptr_t key)
{
	size_t i = slot_of(key);
	while (table[i].key && table[i].key != key)
		i = (i + 1) & (cap - 1);
	return &table[i];
}

static bool grow(size_t ncap)
{
	struct entry *old = table, *nt = calloc(ncap, sizeof *nt);
	if (!nt)
		return false;
	size_t ocap = cap;
	table = nt;
	cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].key)
			*find(old[i].key) = old[i];
	free(old);
	return true;
}

static void insert(struct entry e)
{
	herd__mutex_lock(&lock);
	if ((count + 1) * 4 > cap * 3 && !grow(cap ? 2 * cap : FIRST_CAP) &&
	    count + 1 >= cap) {
		dropped++;
	} else {
		struct entry *slot = find(e.key);
		count += !slot->key;
		e.seq = seq++;
		*slot = e;
	}
	herd__mutex_unlock(&lock);
}

static void remove_key(uintptr_t key)
{
	herd__mutex_lock(&lock);
	struct entry *hole = count ? find(key) : NULL;
	if (hole && hole->key) {
		/* Backward shift: an entry after the hole moves into it unless
		 * its home slot lies cyclically after the hole. */
		size_t i = (size_t)(hole - table), j = i;
		for (;;) {
			table[i].key = 0;
			size_t home;
			do {
				j = (j + 1) & (cap - 1);
				if (!table[j].key)
					goto done;
				home = slot_of(table[j].key);
			} while (i <= j ? i < home && home <= j : i < home || home <= j);
			table[i] = table[j];
			i = j;
		}
done:
		count--;
	}
	herd__mutex_unlock(&lock);
}

void herd__leak_track(enum herd__leak_kind kind, const void *obj, const void *pc,
		      int64_t a, int64_t b)
{
	if (obj)
		insert((struct entry){.key = (uintptr_t)obj, .pc = pc, .a = a, .b = b,
				      .kind = kind});
}

void herd__leak_untrack(const void *obj)
{
	if (obj)
		remove_key((uintptr_t)obj);
}

void herd__leak_track_fd(int fd, const void *pc, const char *what)
{
	if (fd >= 0)
		insert((struct entry){.key = (uintptr_t)fd << 1 | 1, .pc = pc, .a = fd,
				      .what = what, .kind = HERD__LEAK_FD});
}

void herd__leak_untrack_fd(int fd)
{
	if (fd >= 0)
		remove_key((uintptr_t)fd << 1 | 1);
}

void herd__leak_start(void)
{
	herd__mutex_lock(&lock);
	if (!table)
		grow(FIRST_CAP); /* or later, as it fills */
	herd__mutex_unlock(&lock);
	atomic_store_explicit(&herd__leak_on, true, mo_relaxed);
}

/* ------------------------------------------------------------------ */
/* The listing                                                         */
/* ------------------------------------------------------------------ */

static const char *const kind_name[] = {
	[HERD__LEAK_CHANNEL] = "channel",
	[HERD__LEAK_TIMER] = "timer",
	[HERD__LEAK_PROCESS] = "process",
	[HERD__LEAK_WG] = "wait group",
	[HERD__LEAK_FD] = "descriptor",
};

/* "channel 0x... (elem 8 bytes, cap 0)" and the like, into buf. */
static void describe(const struct entry *e, char *buf, size_t size)
{
	const char *kind = kind_name[e->kind];
	const void *obj = (const void *)e->key;
	switch (e->kind) {
	case HERD__LEAK_CHANNEL:
		snprintf(buf, size, "%s %p (elem %lld bytes, cap %lld)", kind, obj,
			 (long long)e->a, (long long)e->b);
		break;
	case HERD__LEAK_TIMER:
		if (e->a)
			snprintf(buf, size, "%s %p (ticker, period %lld ns)", kind, obj,
				 (long long)e->a);
		else
			snprintf(buf, size, "%s %p (one-shot)", kind, obj);
		break;
	case HERD__LEAK_PROCESS:
		snprintf(buf, size, "%s %p (pid %lld)", kind, obj, (long long)e->a);
		break;
	case HERD__LEAK_FD:
		/* A descriptor the program closed with close(2), not
		 * herd_close, is still counted in herd's budget. */
		snprintf(buf, size, "%s %lld (%s%s)", kind, (long long)e->a, e->what,
			 fcntl((int)e->a, F_GETFD) < 0 ? ", closed without herd_close" : "");
		break;
	default:
		snprintf(buf, size, "%s %p", kind, obj);
		break;
	}
}

static int by_seq(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Packs the live entries at the table's start, in the order they were made. */
static size_t pack(void)
{
	size_t n = 0;
	for (size_t i = 0; i < cap; i++)
		if (table[i].key)
			table[n++] = table[i];
	qsort(table, n, sizeof *table, by_seq);
	return n;
}

void herd__leak_report(void)
{
	atomic_store_explicit(&herd__leak_on, false, mo_relaxed);
	herd__mutex_lock(&lock);
	size_t n = table ? pack() : 0;
	if (n)
		fprintf(stderr, "herd: %zu object%s still alive at the end of herd_run:\n",
			n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		char what[128], where[256];
		describe(&table[i], what, sizeof what);
		/* A return address: the call is the byte before. */
		herd__symbolize((uintptr_t)table[i].pc - 1, where, sizeof where);
		fprintf(stderr, "herd:   %s, made at %s\n", what, where);
	}
	if (dropped)
		fprintf(stderr, "herd: %llu more objects were not tracked (out of memory)\n",
			(unsigned long long)dropped);
	free(table);
	table = NULL;
	cap = count = 0;
	seq = dropped = 0;
	herd__mutex_unlock(&lock);
}
