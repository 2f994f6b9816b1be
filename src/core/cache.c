/*
 * cache.c - per-worker object caches with a shared depot of magazines
 * (after Bonwick's magazine allocator), for task objects and stacks.
 *
 * A worker keeps free objects in an array (no lock, no pointer chasing).
 * When it overflows, the upper half moves to the depot as one magazine, a
 * fixed array of pointers; when it runs dry, it takes a whole magazine back.
 * The depot's lock is held only to link or unlink a magazine: O(1), and no
 * object is touched under it. Tasks are usually allocated on one worker
 * and freed on another, so magazines are how objects flow back.
 *
 * Empty magazines are kept for reuse in the depot; memory is freed only by
 * herd__depot_fini. Locks: depot.lock, a leaf. nfull_hint mirrors nfull
 * (relaxed) so that a worker can see an empty depot without the lock: a
 * stale zero only sends it to malloc (or to carve a stack) once more, a
 * stale non-zero only costs it the lock.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

struct herd__mag {
	struct herd__mag *next;
	unsigned n;
	void *obj[HERD__MAG];
};

static struct herd__mag *mag_empty(herd__depot *d)
{
	herd__mutex_lock(&d->lock);
	struct herd__mag *m = d->empty;
	if (m)
		d->empty = m->next;
	herd__mutex_unlock(&d->lock);
	return m ? m : malloc(sizeof *m);
}

static void mag_recycle(herd__depot *d, struct herd__mag *m)
{
	herd__mutex_lock(&d->lock);
	m->next = d->empty;
	d->empty = m;
	herd__mutex_unlock(&d->lock);
}

/* herd__cache_get with an empty cache: a magazine from the depot. */
void *herd__cache_refill(herd__cache *c, herd__depot *d)
{
	HERD__ASSERT(c->n == 0);
	if (!atomic_load_explicit(&d->nfull_hint, mo_relaxed))
		return NULL;
	herd__mutex_lock(&d->lock);
	struct herd__mag *m = d->full;
	if (m) {
		d->full = m->next;
		d->nfull--;
	}
	atomic_store_explicit(&d->nfull_hint, d->nfull, mo_relaxed);
	herd__mutex_unlock(&d->lock);
	if (!m)
		return NULL;
	memcpy(c->obj, m->obj, m->n * sizeof *m->obj);
	c->n = m->n;
	mag_recycle(d, m);
	return c->obj[--c->n];
}

/* Moves the upper `n` cached objects to the depot; false without memory. */
static bool cache_spill(herd__cache *c, herd__depot *d, unsigned n)
{
	struct herd__mag *m = mag_empty(d);
	if (!m)
		return false;
	c->n -= n;
	memcpy(m->obj, c->obj + c->n, n * sizeof *m->obj);
	m->n = n;
	herd__mutex_lock(&d->lock);
	m->next = d->full;
	d->full = m;
	d->nfull++;
	atomic_store_explicit(&d->nfull_hint, d->nfull, mo_relaxed);
	herd__mutex_unlock(&d->lock);
	return true;
}

/* herd__cache_put with a full cache: half of it goes to the depot. */
bool herd__cache_put_spill(herd__cache *c, herd__depot *d, void *obj)
{
	if (!cache_spill(c, d, HERD__MAG))
		return false;
	c->obj[c->n++] = obj;
	return true;
}

void *herd__cache_drain(herd__cache *c, herd__depot *d)
{
	while (c->n) {
		unsigned n = c->n < HERD__MAG ? c->n : HERD__MAG;
		if (!cache_spill(c, d, n))
			return c->obj[--c->n];
	}
	return NULL;
}

void herd__depot_fini(herd__depot *d, void (*release)(void *obj, void *arg),
		      void *arg)
{
	struct herd__mag *m;
	while ((m = d->full)) {
		d->full = m->next;
		for (unsigned i = 0; release && i < m->n; i++)
			release(m->obj[i], arg);
		free(m);
	}
	while ((m = d->empty)) {
		d->empty = m->next;
		free(m);
	}
	d->nfull = 0;
}
