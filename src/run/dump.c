/*
 * dump.c - the task dump (herd_dump, SIGQUIT with HERD_RUN_SIGQUIT_DUMP)
 * and the body of the deadlock report (deadlock.c): every task that has
 * parked, what it waits on and for how long, where it was spawned, its
 * scope and its stack; then every child process alive. The layout follows
 * Go's goroutine dump: one block per task, innermost frame first.
 *
 * What it can see. A task joins its worker's registry the first time it
 * parks (core/wait.c), so the dump lists every task that is parked now
 * with its stack, and the registered tasks that run or are runnable now by
 * their id; tasks that have never parked (they run or wait in a run queue)
 * are only counted. When the program is deadlocked every task is parked,
 * so the report is complete.
 *
 * How. The dump does not stop the workers. It takes a snapshot of each
 * registry under its lock (a registered task cannot end while the lock is
 * held, so its stack stays its own), copying the task's fields and the
 * return addresses of its stack (herd__ctx_backtrace, which never faults);
 * then it names the addresses and writes the text with no lock held.
 * A parked task's stack is read only once its worker has switched away
 * from it (on_cpu is 0: before that, the saved stack pointer is an old
 * one); a task woken while its stack is read may show a stack cut short,
 * so the snapshot checks the task's wait word before and after, and drops
 * the stack of a task that moved. (A task woken and parked again on the
 * same object in between goes unnoticed: rare, and only its frames could
 * be wrong, never the dump's safety.)
 *
 * Where it runs. herd_dump called by a task runs the dump on a helper
 * thread (herd_blocking): formatting and symbol names take some 10 KiB of
 * stack, more than a small task stack may have left, and the write stalls
 * no worker. Output goes through a heap buffer of its own to write(2): no
 * stdio lock. Without memory for the snapshot's array, tasks are counted,
 * not listed.
 *
 * Locks: each worker's reg_lock in turn (by herd__registry_each), then the
 * process list's lock (rt->proc->lock); none held while writing.
 */
#include "run/run.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DUMP_FRAMES 32          /* frames kept per task */
#define DUMP_SNAP_MAX 100000    /* tasks listed at most */

static const char *const why_name[HERD__WHY_COUNT] = {
	[HERD__WHY_NONE] = "runnable",
	[HERD__WHY_CHAN_SEND] = "channel send",
	[HERD__WHY_CHAN_RECV] = "channel receive",
	[HERD__WHY_SELECT] = "select",
	[HERD__WHY_SLEEP] = "sleep",
	[HERD__WHY_FD] = "descriptor",
	[HERD__WHY_FD_BUDGET] = "descriptor budget",
	[HERD__WHY_BLOCKING] = "blocking call",
	[HERD__WHY_PROC] = "process wait",
	[HERD__WHY_PROC_END] = "process end",
	[HERD__WHY_SCOPE_WAIT] = "scope wait",
	[HERD__WHY_SCOPE_CLOSE] = "scope close",
	[HERD__WHY_SCOPE_SLOT] = "scope slot",
	[HERD__WHY_WG] = "wait group",
	[HERD__WHY_MUTEX] = "mutex",
	[HERD__WHY_RWMUTEX] = "rwmutex",
	[HERD__WHY_COND] = "condition",
	[HERD__WHY_SEM] = "semaphore",
	[HERD__WHY_ONCE] = "once",
};

const char *herd__why_name(unsigned why)
{
	return why < HERD__WHY_COUNT ? why_name[why] : "?";
}

/* ------------------------------------------------------------------ */
/* Output                                                             */
/* ------------------------------------------------------------------ */

struct out {
	int fd;
	int err;        /* the first write's failure, -errno */
	size_t n;
	char buf[4096];
};

static void out_flush(struct out *o)
{
	for (size_t off = 0; off < o->n && !o->err;) {
		ssize_t k = write(o->fd, o->buf + off, o->n - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			o->err = k < 0 ? -errno : -EIO;
		else
			off += (size_t)k;
	}
	o->n = 0;
}

__attribute__((format(printf, 2, 3)))
static void outf(struct out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	size_t len = (size_t)k < sizeof line ? (size_t)k : sizeof line - 1;
	if (o->n + len > sizeof o->buf)
		out_flush(o);
	memcpy(o->buf + o->n, line, len);
	o->n += len;
}

/* ------------------------------------------------------------------ */
/* The snapshot                                                       */
/* ------------------------------------------------------------------ */

struct task_snap {
	uint64_t id;
	bool self;              /* the task that called herd_dump */
	uint8_t state;          /* HERD__WAIT_* when seen */
	uint8_t why;
	bool site_pc;
	const void *obj;
	uint32_t since;
	const void *site;
	const herd_scope *scope;
	uint32_t npcs;
	uintptr_t pcs[DUMP_FRAMES];
};

struct snap {
	herd__rt *rt;
	const herd__task *self; /* the calling task, or NULL */
	struct task_snap *t;
	size_t n, cap;
	size_t seen;            /* registered tasks, listed or not */
};

/* Reads t's saved stack pointer: the switch stores it, unseen by TSan. */
static const void *saved_sp(const herd__task *t)
{
	return __atomic_load_n(&t->ctx.sp, __ATOMIC_RELAXED);
}

static void snap_one(herd__task *t, void *arg)
{
	struct snap *s = arg;
	s->seen++;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct task_snap *a = cap <= DUMP_SNAP_MAX ? realloc(s->t, cap * sizeof *a) : NULL;
		if (!a)
			return; /* counted, not listed */
		s->t = a;
		s->cap = cap;
	}
	struct task_snap *d = &s->t[s->n++];
	d->id = t->id;
	d->self = t == s->self;
	d->site = t->site;
	d->site_pc = t->flags & HERD__TASK_SITE_PC;
	d->scope = t->scope;
	d->state = atomic_load_explicit(&t->wait, mo_acquire);
	d->why = atomic_load_explicit(&t->why, mo_relaxed);
	d->obj = atomic_load_explicit(&t->wait_obj, mo_relaxed);
	d->since = atomic_load_explicit(&t->wait_since, mo_relaxed);
	d->npcs = 0;
	if (d->state != HERD__WAIT_CANCELABLE && d->state != HERD__WAIT_FIRM)
		return;
	/* Parked, but still switching away: the saved stack pointer is not
	 * yet this wait's. Listed without its stack. */
	if (atomic_load_explicit(&t->on_cpu, mo_acquire))
		return;
	const char *lo = t->stack;
	d->npcs = (uint32_t)herd__ctx_backtrace(saved_sp(t), lo, lo + herd__stack_size(s->rt),
						d->pcs, DUMP_FRAMES);
	/* Woken meanwhile: the stack read may be of its new life. */
	if (atomic_load_explicit(&t->wait, mo_acquire) != d->state ||
	    atomic_load_explicit(&t->why, mo_relaxed) != d->why)
		d->state = HERD__WAIT_WOKEN, d->npcs = 0;
}

/* ------------------------------------------------------------------ */
/* Writing                                                            */
/* ------------------------------------------------------------------ */

static void write_frames(struct out *o, const struct task_snap *d)
{
	char name[256];
	/* herd's own frames come first, as the runtime's do in Go's dump:
	 * the switch, the park, the blocking call; then the program's. */
	for (uint32_t i = 0; i < d->npcs; i++) {
		/* A return address is one past its call: name the call. */
		herd__symbolize(d->pcs[i] - 1, name, sizeof name);
		outf(o, "\t%s\n", name);
	}
}

static void write_task(struct out *o, herd__rt *rt, const struct task_snap *d,
		       uint32_t now_ms)
{
	if (d->state == HERD__WAIT_CANCELABLE || d->state == HERD__WAIT_FIRM) {
		unsigned why = d->why < HERD__WHY_COUNT ? d->why : HERD__WHY_NONE;
		uint32_t ms = now_ms - d->since;
		outf(o, "task %llu [%s", (unsigned long long)d->id, why_name[why]);
		if (why == HERD__WHY_FD)
			outf(o, " %d", (int)(intptr_t)d->obj);
		else if (d->obj)
			outf(o, " %p", d->obj);
		outf(o, ", %u.%u s%s]:%s\n", ms / 1000, ms % 1000 / 100,
		     d->state == HERD__WAIT_FIRM ? ", not cancelable" : "",
		     d->self ? " (the caller of herd_dump)" : "");
	} else {
		outf(o, "task %llu [running or runnable]:%s\n", (unsigned long long)d->id,
		     d->self ? " (the caller of herd_dump)" : "");
	}
	write_frames(o, d);
	char where[256];
	if (!d->site)
		snprintf(where, sizeof where, "an unknown place");
	else if (d->site_pc)
		herd__symbolize((uintptr_t)d->site - 1, where, sizeof where);
	else
		snprintf(where, sizeof where, "%s", (const char *)d->site);
	outf(o, "spawned at %s, in scope %p%s\n\n", where, (const void *)d->scope,
	     d->scope == rt->root ? " (the root)" : "");
}

static void write_procs(struct out *o, herd__rt *rt, int64_t now)
{
	unsigned n = 0;
	if (!atomic_load_explicit(&rt->proc->ready, mo_acquire)) {
		outf(o, "no child process alive\n");
		return;
	}
	herd__mutex_lock(&rt->proc->lock);
	herd_proc *p;
	herd__list_each(p, &rt->proc->live, herd_proc, lv) {
		if (!p->pid)
			continue; /* still being started */
		if (!n++)
			outf(o, "child processes:\n");
		int64_t ms = (now - p->started) / HERD_MSEC;
		outf(o, "process %d [%s, %lld.%lld s]: %s\n", (int)p->pid,
		     atomic_load_explicit(&p->exited, mo_acquire) ? "exited, its tree ending"
								  : "running",
		     (long long)(ms / 1000), (long long)(ms % 1000 / 100), p->cmd);
	}
	herd__mutex_unlock(&rt->proc->lock);
	if (!n)
		outf(o, "no child process alive\n");
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = ((const struct task_snap *)a)->id, y = ((const struct task_snap *)b)->id;
	return (x > y) - (x < y);
}

int herd__dump_write(herd__rt *rt, int fd, const char *headline,
		     const herd__task *self)
{
	/* Not on the stack: the dump may run on a task's (see herd_dump). */
	struct out *op = malloc(sizeof *op);
	if (!op)
		return -ENOMEM;
	struct snap s = {.rt = rt, .self = self};
	herd__registry_each(rt, snap_one, &s);
	if (s.n)
		qsort(s.t, s.n, sizeof *s.t, by_id); /* as Go lists goroutines */
	int64_t now = herd_now();
	uint32_t now_ms = (uint32_t)((now - rt->start_ns) / HERD_MSEC);
	int64_t live = herd__tasks_alive(rt);
	size_t parked = 0;
	for (size_t i = 0; i < s.n; i++)
		parked += s.t[i].state == HERD__WAIT_CANCELABLE || s.t[i].state == HERD__WAIT_FIRM;

	*op = (struct out){.fd = fd};
	struct out *o = op;
	if (headline)
		outf(o, "%s\n", headline);
	outf(o, "herd: %lld tasks alive, %zu parked; seed %llu (HERD_SEED), %u workers\n\n",
	     (long long)(live > 0 ? live : 0), parked, (unsigned long long)rt->seed,
	     rt->nworkers);
	for (size_t i = 0; i < s.n; i++)
		write_task(o, rt, &s.t[i], now_ms);
	if (s.seen > s.n)
		outf(o, "(%zu more tasks that have parked: no memory to list them)\n\n",
		     s.seen - s.n);
	if (live > (int64_t)s.seen)
		outf(o, "(%lld tasks that have never parked: running or runnable)\n\n",
		     (long long)(live - (int64_t)s.seen));
	write_procs(o, rt, now);
	out_flush(o);
	int rc = o->err;
	free(s.t);
	free(op);
	return rc;
}

struct dump_call {
	herd__rt *rt;
	int fd;
	const herd__task *self;
};

static int dump_on_helper(void *p)
{
	struct dump_call *c = p;
	return herd__dump_write(c->rt, c->fd, NULL, c->self);
}

int herd_dump(int fd)
{
	if (fd < 0)
		return -EBADF;
	herd__worker *w = herd__self();
	if (w && w->cur) {
		/* From a task: on a helper thread, whose stack is a thread's
		 * (symbol names and formatting take some 10 KiB, which a small
		 * task stack may not have left) and whose write stalls no
		 * worker. The runtime outlives the calling task; the caller
		 * shows in the dump, parked in this call. */
		struct dump_call c = {w->rt, fd, w->cur};
		int rc = herd_blocking(dump_on_helper, &c);
		if (rc != -EAGAIN)
			return rc;
		return herd__dump_write(w->rt, fd, NULL, w->cur); /* no helper */
	}
	/* herd_run takes the runtime down under this lock: a thread of the
	 * program's own may call while the run ends. */
	herd__exit_lock();
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	int rc = rt ? herd__dump_write(rt, fd, NULL, NULL) : -ESRCH;
	herd__exit_unlock();
	return rc;
}
