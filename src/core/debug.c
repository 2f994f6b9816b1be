/*
 * debug.c - the check that catches the Go post-mortem's bug when a task is
 * spawned: an argument that points into the spawning task's own stack.
 *
 * In Go the bug was a closure capturing the loop variable by reference. In
 * C it is `herd_go(s, fn, &i, 0)`, or a struct that holds `&i`: the task
 * reads a variable that the spawner goes on changing, or that vanishes with
 * the spawner's frame. With debug checks on (debug builds, or HERD_DEBUG=1),
 * every spawn scans the bytes it copies for a word whose value lies inside
 * the spawner's stack, and warns once per call site.
 *
 * `lock` protects the set of call sites already warned about (a leaf,
 * taken only when a suspicious spawn is found).
 */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITES 1024u

static herd__mutex lock = HERD__MUTEX_INITIALIZER(HERD__RANK_DEBUG);
static const void *warned[SITES];

/* True the first time a site is seen; a full table warns every time. */
static bool first_warning(const void *site)
{
	bool first = true;
	size_t h = ((uintptr_t)site >> 3) * 0x9E3779B97F4A7C15ull % SITES;
	herd__mutex_lock(&lock);
	for (unsigned i = 0; i < SITES; i++) {
		size_t k = (h + i) % SITES;
		if (warned[k] == site) {
			first = false;
			break;
		}
		if (!warned[k]) {
			warned[k] = site;
			break;
		}
	}
	herd__mutex_unlock(&lock);
	return first;
}

static bool points_into(uintptr_t v, uintptr_t lo, uintptr_t hi)
{
	return v >= lo && v < hi;
}

void herd__debug_check_spawn(herd__worker *w, const char *site, void *ret,
			     const void *arg, size_t size)
{
	const herd__task *cur = w->cur;
	uintptr_t lo = (uintptr_t)cur->stack;
	uintptr_t hi = lo + herd__stack_size(w->rt);
	bool hit = size == 0 && points_into((uintptr_t)arg, lo, hi);
	for (size_t i = 0; !hit && i + sizeof(uintptr_t) <= size; i += sizeof(uintptr_t)) {
		uintptr_t v;
		memcpy(&v, (const char *)arg + i, sizeof v);
		hit = points_into(v, lo, hi);
	}
	if (!hit || !first_warning(site ? (const void *)site : ret))
		return;
	char where[64];
	if (!site) {
		snprintf(where, sizeof where, "call site %p", ret);
		site = where;
	}
	fprintf(stderr,
		"herd: warning: %s: the argument of the task spawned here holds a "
		"pointer into the spawning task's own stack; the task may read it "
		"after the spawner has changed it or returned (the loop-variable "
		"bug). Pass the value itself, as HERD_GO(scope, fn, value) does, "
		"or memory that outlives the task.\n", site);
}

void herd__debug_fini(void)
{
	herd__mutex_lock(&lock);
	memset(warned, 0, sizeof warned);
	herd__mutex_unlock(&lock);
}
