/*
 * stack.c - task stacks: where they come from, how an overflow is caught,
 * and how a new context's first frame is laid out.
 *
 * Layout. Stacks are carved from slabs: large anonymous mappings, reserved
 * with MAP_NORESERVE and committed by the kernel page by page as tasks touch
 * them, so a task pays only for the stack it uses (usually one page). Each
 * stack is [guard | usable], the usable part ending with a 16-byte header
 * (free-list link and flags). Slabs double in size up to 4096 stacks, so a
 * million stacks take about 250 mappings.
 *
 * Guards, and the million-task requirement. A PROT_NONE guard page is a
 * mapping of its own: with vm.max_map_count at its default of 65530, at
 * most ~32 000 guarded stacks could exist. So:
 *   - HERD_GUARD_MADVISE (Linux 6.13+): the guard is installed with
 *     MADV_GUARD_INSTALL, a page-table marker that costs no mapping and no
 *     memory. Every stack has one. This is the normal case.
 *   - HERD_GUARD_MPROTECT (older kernels): the first stacks get a PROT_NONE
 *     guard, up to an eighth of vm.max_map_count; later ones get a canary.
 *   - HERD_GUARD_CANARY (HERD_GUARD=canary): canaries only.
 * A canary is a word at the bottom of the stack, checked whenever the task
 * switches away; an overflow is then reported at the next switch, after it
 * may have damaged a neighbouring stack. A guard reports it at the faulting
 * access. Guards are 16 KiB, so a frame must be larger than that to jump
 * over one (code built with -fstack-clash-protection never does).
 *
 * Reporting: a SIGSEGV handler, running on a per-worker alternate signal
 * stack, recognises a fault in or below the running task's stack, prints
 * "herd: task N overflowed its stack (size S)" and lets the signal kill the
 * process. Other faults go to the handler that was there before.
 *
 * Caching: free stacks go to the worker's cache and move between workers in
 * magazines (cache.c). Locks: stacks.lock protects the slabs, the carving
 * position, the guard mode and the orphans (free stacks that no magazine
 * could take, for want of memory); it is a leaf.
 */
#include "core/core.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if HERD_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HERD_VALGRIND 1
#endif
#endif
#ifndef HERD_VALGRIND
#define HERD_VALGRIND 0
#endif

/* guard_budget before vm.max_map_count has been read. */
#define BUDGET_UNREAD UINT64_MAX

#define HDR_SIZE 16u
#define GUARD_SIZE (16u * 1024)
#define SLAB_FIRST 16u
#define SLAB_MAX 4096u
#define CANARY 0x6865726473746b21ull /* "herdstk!" */

enum { HDR_GUARDED = 1u };

struct herd__stack_hdr {
	void *next;        /* free lists: the next free stack's lowest byte */
	uint32_t flags;
	uint32_t vg_id;    /* Valgrind's id for the stack */
};

struct herd__slab {
	char *base;
	size_t len;
	size_t nstacks;    /* carved so far */
	struct herd__slab *next;
};

static inline struct herd__stack_hdr *hdr_of(const herd__stacks *s, char *lo)
{
	return (struct herd__stack_hdr *)(lo + s->size - HDR_SIZE);
}

static inline uint64_t canary_of(const char *lo)
{
	return CANARY ^ (uint64_t)(uintptr_t)lo;
}

int herd__stacks_init(herd__rt *rt, size_t size, int mode)
{
	herd__stacks *s = &rt->stacks;
	memset(s, 0, sizeof *s);
	herd__mutex_init(&s->lock, HERD__RANK_STACKS);
	herd__mutex_init(&s->depot.lock, HERD__RANK_DEPOT);
	s->size = size;
	s->guard = GUARD_SIZE;
	s->stride = s->guard + size;
	s->mode = mode;
	s->next_slab = SLAB_FIRST;
	s->guard_budget = BUDGET_UNREAD;
	return 0;
}

void herd__stacks_fini(herd__rt *rt)
{
	herd__stacks *s = &rt->stacks;
	herd__depot_fini(&s->depot, NULL, NULL); /* the slabs hold the stacks */
	struct herd__slab *sl = s->slabs;
	while (sl) {
		struct herd__slab *next = sl->next;
#if HERD_VALGRIND
		if (RUNNING_ON_VALGRIND) {
			for (size_t i = 0; i < sl->nstacks; i++) {
				char *lo = sl->base + i * s->stride + s->guard;
				VALGRIND_STACK_DEREGISTER(hdr_of(s, lo)->vg_id);
			}
		}
#endif
		herd__os_release(sl->base, sl->len);
		free(sl);
		sl = next;
	}
	s->slabs = NULL;
}

/* Gives a stack its guard, or its canary when no guard can be had. */
static bool stack_guard(herd__stacks *s, char *lo)
{
	char *g = lo - s->guard;
	if (s->mode == HERD_GUARD_MADVISE) {
		if (herd__os_guard_light(g, s->guard) == 0)
			return true;
		/* The kernel predates MADV_GUARD_INSTALL: fall back for good. */
		s->mode = HERD_GUARD_MPROTECT;
	}
	/* Read when first needed: most kernels never need it, and a read of
	 * /proc is a good part of a runtime's start. */
	if (s->mode == HERD_GUARD_MPROTECT && s->guard_budget == BUDGET_UNREAD)
		s->guard_budget = (uint64_t)herd__os_max_map_count() / 8;
	if (s->mode == HERD_GUARD_MPROTECT && s->guard_budget > 0 &&
	    herd__os_guard_mprotect(g, s->guard) == 0) {
		s->guard_budget--;
		return true;
	}
	uint64_t *c = (uint64_t *)(void *)lo;
	c[0] = c[1] = canary_of(lo);
	return false;
}

/* Carves a new stack; called with s->lock held. NULL if out of memory. */
static char *stack_carve(herd__stacks *s)
{
	if (s->carve_left == 0) {
		struct herd__slab *sl = malloc(sizeof *sl);
		if (!sl)
			return NULL;
		sl->len = s->next_slab * s->stride;
		sl->base = herd__os_reserve(sl->len);
		if (!sl->base) {
			free(sl);
			return NULL;
		}
		sl->nstacks = 0;
		sl->next = s->slabs;
		s->slabs = sl;
		s->carve = sl->base;
		s->carve_left = s->next_slab;
		if (s->next_slab < SLAB_MAX)
			s->next_slab *= 2;
	}
	char *lo = s->carve + s->guard;
	s->carve += s->stride;
	s->carve_left--;
	s->slabs->nstacks++;
	struct herd__stack_hdr *h = hdr_of(s, lo);
	h->flags = stack_guard(s, lo) ? HDR_GUARDED : 0;
	h->vg_id = 0;
#if HERD_VALGRIND
	h->vg_id = VALGRIND_STACK_REGISTER(lo, lo + s->size);
#endif
	atomic_fetch_add_explicit(&s->made, 1, mo_relaxed);
	if (h->flags & HDR_GUARDED)
		atomic_fetch_add_explicit(&s->guarded, 1, mo_relaxed);
	return lo;
}

/* A stack no magazine could take, or a new one; NULL without memory. */
static char *stack_slow_get(herd__stacks *s)
{
	herd__mutex_lock(&s->lock);
	char *lo = s->orphans;
	if (lo)
		s->orphans = hdr_of(s, lo)->next;
	else
		lo = stack_carve(s);
	herd__mutex_unlock(&s->lock);
	return lo;
}

char *herd__stack_get(herd__worker *w, bool *guarded)
{
	herd__stacks *s = &w->rt->stacks;
	char *lo = herd__cache_get(&w->stack_cache, &s->depot);
	if (herd__unlikely(!lo) && !(lo = stack_slow_get(s)))
		return NULL;
	*guarded = hdr_of(s, lo)->flags & HDR_GUARDED;
#if HERD_ASAN
	/* A task that ended never returned from its frames: their redzones
	 * are still poisoned. */
	ASAN_UNPOISON_MEMORY_REGION(lo, s->size - HDR_SIZE);
#endif
	return lo;
}

static void stack_orphan(herd__stacks *s, char *lo)
{
	herd__mutex_lock(&s->lock);
	hdr_of(s, lo)->next = s->orphans;
	s->orphans = lo;
	herd__mutex_unlock(&s->lock);
}

void herd__stack_put(herd__worker *w, char *lo)
{
	herd__stacks *s = &w->rt->stacks;
	if (herd__unlikely(!herd__cache_put(&w->stack_cache, &s->depot, lo)))
		stack_orphan(s, lo);
}

void herd__stack_cache_drain(herd__worker *w)
{
	herd__stacks *s = &w->rt->stacks;
	char *lo;
	while ((lo = herd__cache_drain(&w->stack_cache, &s->depot)))
		stack_orphan(s, lo);
}

/* ------------------------------------------------------------------ */
/* Overflow reports                                                   */
/* ------------------------------------------------------------------ */

/*
 * Formats "herd: task N overflowed its stack (size S)" without malloc or
 * stdio, so that a signal handler can call it. The longest report, the
 * canary's, is 138 bytes of text and two numbers of up to 20 digits each,
 * 178 bytes in all; a longer one would be cut short rather than overrun
 * the buffer.
 */
static void overflow_report(const herd__task *t, const char *how)
{
	char buf[256], *p = buf, *end = buf + sizeof buf;
	const char *parts[] = {"herd: task ", NULL, " overflowed its stack (size ",
			       NULL, ")", how, "\n"};
	uint64_t nums[] = {t->id, herd__stack_size(atomic_load(&herd__runtime))};
	int ni = 0;
	for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
		if (parts[i]) {
			size_t n = strlen(parts[i]);
			if (n > (size_t)(end - p))
				n = (size_t)(end - p);
			memcpy(p, parts[i], n);
			p += n;
			continue;
		}
		char d[24];
		int nd = 0;
		uint64_t v = nums[ni++];
		do
			d[nd++] = (char)('0' + v % 10);
		while ((v /= 10) != 0);
		while (nd && p < end)
			*p++ = d[--nd];
	}
	ssize_t r = write(2, buf, (size_t)(p - buf));
	(void)r;
}

void herd__stack_check(const herd__task *t)
{
	const uint64_t *c = (const uint64_t *)(const void *)t->stack;
	if (herd__likely(c[0] == canary_of(t->stack) &&
			 c[1] == canary_of(t->stack)))
		return;
	overflow_report(t, "; found at a switch, memory below the stack "
			   "may be damaged; set HERD_STACK_SIZE for larger stacks");
	abort();
}

static struct sigaction old_segv;
static _Atomic int handler_users;

static uintptr_t fault_sp(void *uctx)
{
	ucontext_t *uc = uctx;
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.sp;
#else
	(void)uc;
	return 0;
#endif
}

/* Is the fault an overflow of the task running on this thread? */
static const herd__task *overflowed_task(siginfo_t *si, void *uctx)
{
	herd__worker *w = herd__tls_worker;
	const herd__task *t = w ? w->cur : NULL;
	if (!t || !t->stack)
		return NULL;
	uintptr_t lo = (uintptr_t)t->stack;
	uintptr_t guard = w->rt->stacks.guard;
	uintptr_t addr = (uintptr_t)si->si_addr;
	uintptr_t sp = fault_sp(uctx);
	if (addr >= lo - guard && addr < lo)
		return t;
	/* Unguarded, or a frame that jumped the guard: the stack pointer
	 * itself has left the stack. */
	if (sp < lo && sp + (1u << 20) > lo)
		return t;
	return NULL;
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
	const herd__task *t = overflowed_task(si, uctx);
	if (t)
		overflow_report(t, "; set HERD_STACK_SIZE for larger stacks");
	if (!t && (old_segv.sa_flags & SA_SIGINFO) && old_segv.sa_sigaction) {
		old_segv.sa_sigaction(sig, si, uctx);
		return;
	}
	if (!t && old_segv.sa_handler != SIG_DFL && old_segv.sa_handler != SIG_IGN) {
		old_segv.sa_handler(sig);
		return;
	}
	/* Let the faulting access run again, now with the default action: the
	 * process dies of SIGSEGV, with a core dump where enabled. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGSEGV, &dfl, NULL);
}

int herd__overflow_handler_install(void)
{
	if (atomic_fetch_add(&handler_users, 1) > 0)
		return 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old_segv) != 0) {
		atomic_fetch_sub(&handler_users, 1);
		return -errno;
	}
	return 0;
}

void herd__overflow_handler_remove(void)
{
	if (atomic_fetch_sub(&handler_users, 1) == 1)
		sigaction(SIGSEGV, &old_segv, NULL);
}

#define ALTSTACK_SIZE (64u * 1024)

struct altstack {
	stack_t old;
	char mem[];
};

int herd__altstack_install(herd__worker *w)
{
	size_t len = sizeof(struct altstack) + ALTSTACK_SIZE;
	struct altstack *a = mmap(NULL, len, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return -errno;
	stack_t ss = {.ss_sp = a->mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
	if (sigaltstack(&ss, &a->old) != 0) {
		int e = -errno;
		munmap(a, len);
		return e;
	}
	w->altstack = a;
	return 0;
}

void herd__altstack_remove(herd__worker *w)
{
	struct altstack *a = w->altstack;
	if (!a)
		return;
	if (a->old.ss_flags & SS_DISABLE) {
		stack_t off = {.ss_flags = SS_DISABLE};
		sigaltstack(&off, NULL);
	} else {
		sigaltstack(&a->old, NULL);
	}
	munmap(a, sizeof(struct altstack) + ALTSTACK_SIZE);
	w->altstack = NULL;
}

/* ------------------------------------------------------------------ */
/* First frames (the layouts are described in switch-<arch>.S)         */
/* ------------------------------------------------------------------ */

void herd__ctx_capture_fp(herd__rt *rt)
{
#if defined(__x86_64__)
	uint32_t mxcsr;
	uint16_t fcw;
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fcw));
	/* Keep the control bits, not the sticky exception flags. */
	rt->fp_control = (mxcsr & ~0x3Fu) | (uint64_t)fcw << 32;
#elif defined(__aarch64__)
	uint64_t fpcr;
	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	rt->fp_control = fpcr;
#endif
}

void herd__ctx_init(herd__ctx *c, char *lo, size_t size, const herd__rt *rt)
{
	uintptr_t top = (uintptr_t)(lo + size - HDR_SIZE) & ~(uintptr_t)15;
#if defined(__x86_64__)
	uint64_t *f = (uint64_t *)(top - 80);
	memset(f, 0, 80);
	f[0] = rt->fp_control;
	f[7] = (uint64_t)(uintptr_t)herd__ctx_trampoline;
#elif defined(__aarch64__)
	uint64_t *f = (uint64_t *)(top - 192);
	memset(f, 0, 192);
	f[11] = (uint64_t)(uintptr_t)herd__ctx_trampoline;
	f[20] = rt->fp_control;
#else
#error "herd: no first frame for this architecture"
#endif
	c->sp = f;
#if HERD_ASAN
	c->stack_lo = lo;
	c->stack_size = size;
#endif
}
