/*
 * poll-ent.h - the poller's entries, for poll.c (the set, its events, the
 * callbacks) and poll-wait.c (the tasks' waits): their layout, and what
 * both do to an entry. poll.c's opening comment has the model and the
 * locks.
 */
#ifndef HERD_IO_POLL_ENT_H
#define HERD_IO_POLL_ENT_H

#include "io/io.h"

#define HERD__POLL_PAGE_SHIFT 8
#define HERD__POLL_PAGE_ENTS (1u << HERD__POLL_PAGE_SHIFT)

/* An entry's registration. */
enum { UNREG, KEPT, TRANSIENT };

struct herd__pollent {
	alignas(HERD__CACHELINE) herd__mutex lock;
	_Atomic uint8_t state;  /* UNREG, KEPT, TRANSIENT (written under lock) */
	uint8_t ready;          /* directions reported that no waiter took */
	bool hup;               /* the registration reported a hang-up, an
				 * error or urgent data (sticky) */
	/* The registration's, in its events' cookies (written under lock,
	 * read without it by herd__poll_kept). */
	_Atomic uint32_t gen;
	/* The registration (gen) a read of a TCP socket that emptied its
	 * queue was made in, or 0: herd__poll_read_wait may wait for the
	 * edge without a read. */
	_Atomic uint32_t rd_short;
	int fd;                 /* constant */
	herd__list waiters;     /* herd__pollw.link */
};

struct herd__polldir {
	size_t n;                       /* pages it can hold */
	struct herd__polldir *retired;  /* the one it replaced */
	_Atomic(struct herd__pollent *) pages[];
};

/* fd's entry, or NULL if its page was never made. No lock. */
static inline struct herd__pollent *herd__pollent_of(herd__rt *rt, int fd)
{
	struct herd__polldir *d = atomic_load_explicit(&rt->io->poll.dir, mo_acquire);
	size_t pg = (size_t)fd >> HERD__POLL_PAGE_SHIFT;
	if (!d || pg >= d->n)
		return NULL;
	struct herd__pollent *page = atomic_load_explicit(&d->pages[pg], mo_acquire);
	return page ? &page[(unsigned)fd & (HERD__POLL_PAGE_ENTS - 1)] : NULL;
}

static inline uint32_t herd__pollent_gen(struct herd__pollent *e)
{
	return atomic_load_explicit(&e->gen, mo_relaxed);
}

/* fd's entry, locked and registered in the set (if it was not): 0, or
 * the entry's allocation or the registration's error, with nothing
 * locked (poll.c). */
int herd__pollent_lock(herd__rt *rt, int fd, struct herd__pollent **out);

static inline void herd__pollent_link(herd__rt *rt, struct herd__pollent *e, herd__pollw *wt)
{
	herd__list_push_back(&e->waiters, &wt->link);
	wt->fd = e->fd;
	wt->linked = true;
	atomic_fetch_add_explicit(&rt->io->poll.waiters, 1, mo_seq_cst);
}

static inline void herd__pollent_unlink(herd__rt *rt, struct herd__pollent *e, herd__pollw *wt)
{
	herd__list_remove(&e->waiters, &wt->link);
	wt->linked = false;
	atomic_fetch_sub_explicit(&rt->io->poll.waiters, 1, mo_relaxed);
}

/* After waiters left (e->lock held): a TRANSIENT registration ends with
 * its last waiter, before any woken task can close the descriptor. */
static inline void herd__pollent_settle(herd__rt *rt, struct herd__pollent *e)
{
	if (herd__list_empty(&e->waiters) &&
	    atomic_load_explicit(&e->state, mo_relaxed) == TRANSIENT) {
		herd__os_poller_forget(&rt->io->poll.os, e->fd);
		atomic_store_explicit(&e->state, UNREG, mo_relaxed);
	}
}

/* The directions of `events` reported ready, taken (e->lock held). */
static inline uint32_t herd__pollent_take(struct herd__pollent *e, uint32_t events)
{
	uint32_t r = e->ready & events;
	e->ready = (uint8_t)(e->ready & ~r);
	return r;
}

#endif /* HERD_IO_POLL_ENT_H */
