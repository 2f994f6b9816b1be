/*
 * trace.c - the event recorder behind HERD_TRACE (see trace.h for what is
 * recorded, trace-fmt.h for its form, and run/trace-file.c for the file
 * it becomes).
 *
 * A buffer is a list of chunks. Its producer (one worker, or any thread
 * holding the recorder's lock for the shared buffer) writes an event past
 * `used` in its current chunk, then publishes it by storing the new `used`
 * with release. When the chunk is full it makes a new one and links it
 * from the old one's `next` (release): from then on it never touches the
 * old chunk again. The writer reads `used` (acquire) and the events below
 * it; it frees a chunk once it has read all of it and `next` is set,
 * since `next` is set only after the last event was published. So the
 * producer and the writer share no lock and no read-modify-write.
 *
 * A chunk is 64 KiB, in a region aligned for a direct write, which the
 * writer sends to the file from where the worker wrote it (trace.h).
 *
 * The writer hands the chunks it has emptied back to their producer
 * through a few spare slots (an exchange each side), so that a busy trace
 * reuses warm memory instead of mapping fresh pages for every chunk.
 *
 * A chunk that cannot be had drops the event (counted in `lost`, which the
 * file reports): tracing never fails the program.
 *
 * Sites: a producer hands each site it has not seen (a direct-mapped
 * cache, so a site may come twice) to the recorder's list before it
 * publishes an event that holds it; the writer names the sites of the list
 * after it has read `used`, so before it writes such an event.
 *
 * Locks: trace.lock (a leaf) protects the shared buffer's producer side
 * and the list of sites (`nsites` is also published, release, for the
 * writer to check without the lock).
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

#define TEXT_MAX 1024u /* a longer text (a command line) is cut */

/* A chunk: its region (trace.h), then its fields. */
static herd__trace_chunk *chunk_new(void)
{
	void *region;
	if (posix_memalign(&region, HERD__OS_DIRECT_ALIGN,
			   HERD__TRACE_REGION + sizeof(herd__trace_chunk)))
		return NULL;
	herd__trace_chunk *c = (herd__trace_chunk *)(void *)((char *)region +
							      HERD__TRACE_REGION);
	atomic_init(&c->next, NULL);
	atomic_init(&c->used, 0);
	c->size = HERD__TRACE_REGION - 16;
	c->data = (unsigned char *)region + 8;
	return c;
}

static void chunk_free(herd__trace_chunk *c)
{
	if (c)
		free(herd__trace_region(c));
}

static int buf_init(herd__trace *tr, herd__trace_buf *b)
{
	b->cur = b->head = chunk_new();
	b->used = b->read = 0;
	b->last = tr->start;
	b->tr = tr;
	atomic_init(&b->lost, 0);
	return b->cur ? 0 : -ENOMEM;
}

static void buf_fini(herd__trace_buf *b)
{
	for (size_t i = 0; i < sizeof b->spare / sizeof *b->spare; i++)
		chunk_free(atomic_exchange_explicit(&b->spare[i], NULL, mo_relaxed));
	for (herd__trace_chunk *c = b->head, *n; c; c = n) {
		n = atomic_load_explicit(&c->next, mo_relaxed);
		chunk_free(c);
	}
	b->cur = b->head = NULL;
}

int herd__trace_new(herd__rt *rt)
{
	herd__trace *tr = calloc(1, sizeof *tr);
	if (!tr)
		return -ENOMEM;
	herd__mutex_init(&tr->lock, HERD__RANK_LEAF);
	tr->start = herd__os_ticks();
	tr->bufs = calloc(rt->nworkers, sizeof *tr->bufs);
	int rc = tr->bufs ? buf_init(tr, &tr->other) : -ENOMEM;
	for (unsigned i = 0; !rc && i < rt->nworkers; i++)
		rc = buf_init(tr, &tr->bufs[i]);
	rt->trace = tr;
	if (rc) {
		herd__trace_free(rt);
		return rc;
	}
	for (unsigned i = 0; i < rt->nworkers; i++)
		rt->workers[i]->trace = &tr->bufs[i];
	return 0;
}

void herd__trace_free(herd__rt *rt)
{
	herd__trace *tr = rt->trace;
	if (!tr)
		return;
	for (unsigned i = 0; i < rt->nworkers; i++)
		rt->workers[i]->trace = NULL;
	if (tr->bufs)
		for (unsigned i = 0; i < rt->nworkers; i++)
			buf_fini(&tr->bufs[i]);
	buf_fini(&tr->other);
	free(tr->bufs);
	free(tr->sites);
	free(tr);
	rt->trace = NULL;
}

/* The writer: gives emptied chunk c back, or frees it if no slot is free. */
static void spare_put(herd__trace_buf *b, herd__trace_chunk *c)
{
	atomic_store_explicit(&c->next, NULL, mo_relaxed);
	atomic_store_explicit(&c->used, 0, mo_relaxed);
	for (size_t i = 0; i < sizeof b->spare / sizeof *b->spare; i++) {
		herd__trace_chunk *none = NULL;
		if (atomic_compare_exchange_strong_explicit(&b->spare[i], &none, c,
							    mo_release, mo_relaxed))
			return;
	}
	chunk_free(c);
}

/* The producer: a chunk to fill. */
static herd__trace_chunk *spare_get(herd__trace_buf *b)
{
	for (size_t i = 0; i < sizeof b->spare / sizeof *b->spare; i++) {
		if (!atomic_load_explicit(&b->spare[i], mo_relaxed))
			continue;
		herd__trace_chunk *c = atomic_exchange_explicit(&b->spare[i], NULL, mo_acquire);
		if (c)
			return c;
	}
	return chunk_new();
}

herd__trace_chunk *herd__trace_next_chunk(herd__trace_buf *b)
{
	herd__trace_chunk *c = b->head;
	if (!c || b->read < atomic_load_explicit(&c->used, mo_acquire))
		return c;
	herd__trace_chunk *n = atomic_load_explicit(&c->next, mo_acquire);
	if (!n)
		return c;
	/* Re-read: the last events may have been published before `next`. */
	if (b->read < atomic_load_explicit(&c->used, mo_acquire))
		return c;
	spare_put(b, c);
	b->head = n;
	b->read = 0;
	return n;
}

/* The producer: a chunk with room for need bytes, or NULL. */
static herd__trace_chunk *room(herd__trace_buf *b, uint32_t need)
{
	herd__trace_chunk *ch = b->cur;
	if (b->used + need <= ch->size)
		return ch;
	herd__trace_chunk *n = spare_get(b);
	if (!n)
		return NULL;
	atomic_store_explicit(&ch->next, n, mo_release);
	b->cur = n;
	b->used = 0;
	return n;
}

void herd__trace_put(herd__trace_buf *b, uint64_t word, const uint64_t *w,
		     unsigned n, const char *text, size_t len)
{
	if (len > TEXT_MAX)
		len = TEXT_MAX;
	/* Room for a TIME event too, and the text. */
	uint32_t need = (uint32_t)(8 * (n + 1) + ((len + 7) & ~(size_t)7));
	herd__trace_chunk *ch = room(b, need + 16);
	if (!ch) {
		atomic_fetch_add_explicit(&b->lost, 1, mo_relaxed);
		/* The values this event set for the lane's reader are not
		 * known to it: the next events give them whole. */
		b->last_site = ~(uintptr_t)0;
		b->last_id = 0;
		b->addr_hi = ~(uint32_t)0;
		return;
	}
	uint64_t now = herd__os_ticks(), dt = now - b->last;
	uint64_t *p = (uint64_t *)(void *)(ch->data + b->used);
	if ((int64_t)dt < 0) {
		dt = 0; /* ticks of another CPU, behind: time stands still */
	} else {
		b->last = now;
		if (dt > HERD__TR_DT_MAX) {
			*p++ = HERD__TR_WORD(HERD__TR_TIME, 0);
			*p++ = now;
			dt = 0;
		}
	}
	*p++ = word | dt << HERD__TR_DT_SHIFT;
	for (unsigned i = 0; i < n; i++)
		*p++ = w[i];
	if (len) {
		p[(len - 1) / 8] = 0; /* the padding */
		memcpy(p, text, len);
		p += (len + 7) / 8;
	}
	b->used = (uint32_t)((unsigned char *)p - ch->data);
	atomic_store_explicit(&ch->used, b->used, mo_release);
}

void herd__trace_site_new(herd__trace_buf *b, uintptr_t site, bool pc)
{
	herd__trace *tr = b->tr;
	herd__mutex_lock(&tr->lock);
	uint32_t n = atomic_load_explicit(&tr->nsites, mo_relaxed);
	if (n == tr->sites_cap) {
		uint32_t cap = n ? 2 * n : 64;
		herd__trace_site *s = realloc(tr->sites, cap * sizeof *s);
		if (!s) { /* unnamed: the file shows its address */
			herd__mutex_unlock(&tr->lock);
			return;
		}
		tr->sites = s;
		tr->sites_cap = cap;
	}
	tr->sites[n] = (herd__trace_site){site, pc};
	atomic_store_explicit(&tr->nsites, n + 1, mo_release);
	herd__mutex_unlock(&tr->lock);
	b->seen[(site >> 3) % HERD__TRACE_SEEN] = site;
}

void herd__trace_run_any(herd__trace_buf *b, herd__task *t, unsigned how)
{
	uintptr_t site = (uintptr_t)t->site;
	how |= t->flags & HERD__TASK_SITE_PC ? HERD__TR_RUN_SITE_PC : 0;
	if (b->seen[(site >> 3) % HERD__TRACE_SEEN] != site)
		herd__trace_site_new(b, site, how & HERD__TR_RUN_SITE_PC);
	uint64_t x, v[3] = {0, 0, 0};
	unsigned n = 0;
	if (how & HERD__TR_RUN_FIRST) {
		how |= herd__trace_addr(b, t, &x, &v[0]);
		n = (how & HERD__TR_WIDE) != 0;
		if (t->id == b->last_id + 1 && b->last_id)
			how |= HERD__TR_RUN_ID_NEXT;
		else
			v[n++] = t->id;
		b->last_id = t->id;
	} else {
		x = t->id << 32;
		if (t->id >> 32) {
			how |= HERD__TR_WIDE;
			v[n++] = t->id;
		}
	}
	if (site == b->last_site) {
		how |= HERD__TR_RUN_SAME_SITE;
	} else {
		v[n++] = site;
		b->last_site = site;
	}
	herd__trace_ev_at(b, herd__trace_run_ticks(b, how), HERD__TR_WORD(HERD__TR_RUN, how) | x,
			  n, v[0], v[1], v[2]);
}

static void any_put(herd__trace_buf *b, unsigned kind, uint64_t a, uint64_t bb,
		    uint64_t c, const char *text, size_t len)
{
	if (kind == HERD__TR_SPAWN) {
		herd__trace_spawn(b, herd__os_ticks(), (herd__task *)(uintptr_t)bb);
	} else if (kind == HERD__TR_WAKE) {
		herd__trace_wake_in(b, (herd__task *)(uintptr_t)bb);
	} else {
		uint64_t w[HERD__TR_LONG_WORDS] = {a, bb, c, len > TEXT_MAX ? TEXT_MAX : len};
		herd__trace_put(b, HERD__TR_WORD(kind, 0), w, HERD__TR_LONG_WORDS, text, len);
	}
}

void herd__trace_any(herd__rt *rt, unsigned kind, uint64_t a, uint64_t b,
		     uint64_t c, const char *text, size_t len)
{
	herd__trace *tr = rt->trace;
	if (!tr)
		return;
	herd__worker *w = herd__self();
	if (w && w->rt == rt && w->trace) {
		any_put(w->trace, kind, a, b, c, text, len);
		return;
	}
	herd__mutex_lock(&tr->lock);
	any_put(&tr->other, kind, a, b, c, text, len);
	herd__mutex_unlock(&tr->lock);
}

void herd__trace_wake_foreign(herd__task *t)
{
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	if (rt && rt->trace)
		herd__trace_any(rt, HERD__TR_WAKE, 0, (uintptr_t)t, 0, NULL, 0);
}
