/*
 * end.c - ending process trees: a canceled or closing scope's, and every
 * one at the end of herd_run or of the program (see proc.c).
 */
#define _GNU_SOURCE 1
#include "proc/proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Scopes                                                             */
/* ------------------------------------------------------------------ */

/* SIGTERM to p's group, once; p->lock held. */
void herd__proc_term_locked(herd_proc *p, int64_t now)
{
	if (p->termed)
		return;
	p->termed = true;
	p->term_at = now;
	if (p->grace < 0 || p->reaping) {
		p->killed = true;
		herd__proc_group_signal_locked(p, SIGKILL);
	} else {
		herd__proc_group_signal_locked(p, SIGTERM);
		/* The monitor sends SIGKILL when the grace has passed, whether
		 * or not anybody waits. */
		atomic_fetch_add_explicit(&p->rt->proc->nterm, 1, mo_relaxed);
	}
}

/* SIGKILL once the grace period since SIGTERM has passed; p->lock held. */
void herd__proc_escalate_locked(herd_proc *p, int64_t now)
{
	if (p->termed && !p->killed && now - p->term_at >= p->grace) {
		p->killed = true;
		atomic_fetch_sub_explicit(&p->rt->proc->nterm, 1, mo_relaxed);
		herd__proc_group_signal_locked(p, SIGKILL);
	}
}

void herd__proc_escalate_all(herd__rt *rt)
{
	if (!atomic_load_explicit(&rt->proc->nterm, mo_relaxed))
		return;
	int64_t now = herd_now();
	herd__mutex_lock(&rt->proc->lock);
	herd_proc *p;
	herd__list_each(p, &rt->proc->live, herd_proc, lv) {
		herd__mutex_lock(&p->lock);
		herd__proc_escalate_locked(p, now);
		herd__mutex_unlock(&p->lock);
	}
	herd__mutex_unlock(&rt->proc->lock);
}

void herd__proc_cancel_locked(herd__list *procs)
{
	int64_t now = herd_now();
	herd_proc *p;
	herd__list_each(p, procs, herd_proc, sc) {
		herd__mutex_lock(&p->lock);
		herd__proc_term_locked(p, now);
		herd__mutex_unlock(&p->lock);
	}
}

/* Sleeps firmly (not a cancellation point) until `until`. */
void herd__proc_nap(herd__worker **wp, int64_t until)
{
	herd__waits_on((*wp)->cur, HERD__WHY_PROC_END, NULL);
	herd__wait(wp, NULL, until, false);
}

/* One round of ending s's processes: SIGTERM on the first, SIGKILL once
 * a grace has passed. False when none is left. */
static bool end_round(herd_scope *s, bool first)
{
	herd__mutex *lock = herd__scope_lock(s);
	herd__mutex_lock(lock);
	herd__list *procs = herd__scope_procs(s);
	bool left = !herd__list_empty(procs);
	int64_t now = herd_now();
	herd_proc *p;
	herd__list_each(p, procs, herd_proc, sc) {
		herd__mutex_lock(&p->lock);
		if (first)
			herd__proc_term_locked(p, now);
		herd__proc_escalate_locked(p, now);
		herd__mutex_unlock(&p->lock);
	}
	herd__mutex_unlock(lock);
	return left;
}

void herd__proc_scope_end(herd__worker **wp, herd_scope *s)
{
	herd__rt *rt = (*wp)->rt;
	herd__mutex *lock = herd__scope_lock(s);
	bool first = true;
	herd__mutex_lock(lock);
	bool had = *herd__scope_had_procs(s);
	herd__mutex_unlock(lock);
	if (!had)
		return;
	while (end_round(s, first)) {
		first = false;
		herd__proc_drain_all(rt);
		herd__proc_nap(wp, herd_now() + HERD__END_POLL_NS);
	}
	/* Strays of the scope's trees that left their groups and were
	 * orphaned to us; killing one may orphan its own children, so again
	 * until a pass finds none. */
	for (int pass = 0; pass < HERD__SWEEP_PASSES && herd__proc_sweep(rt) > 0; pass++)
		herd__proc_nap(wp, herd_now() + HERD__END_POLL_NS);
}


/* ------------------------------------------------------------------ */
/* The runtime's side                                                 */
/* ------------------------------------------------------------------ */

void herd__proc_once(herd__rt *rt)
{
	if (atomic_load_explicit(&rt->proc->ready, mo_acquire))
		return;
	herd__mutex_lock(&rt->proc->lock);
	if (!atomic_load_explicit(&rt->proc->ready, mo_relaxed)) {
		/* Orphaned descendants come back to us, to be killed and
		 * reaped, instead of going to init. */
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
		rt->proc->pid = getpid(); /* a system call at each start saved */
		herd__cgroup_init(rt);
		static const herd__scope_hooks hooks = {
			.cancel_locked = herd__proc_cancel_locked,
			.end = herd__proc_scope_end,
		};
		atomic_store_explicit(&rt->scope_hooks, &hooks, mo_release);
		atomic_store_explicit(&rt->proc->ready, true, mo_release);
	}
	herd__mutex_unlock(&rt->proc->lock);
}


bool herd__proc_worker_end(herd__rt *rt)
{
	if (!atomic_load_explicit(&rt->proc->ready, mo_acquire))
		return true;
	herd__mutex_lock(&rt->proc->lock);
	bool none = herd__list_empty(&rt->proc->live);
	herd__mutex_unlock(&rt->proc->lock);
	/* The empty cgroups go now, while the supervisor wakes to end the
	 * run: none can be taken or given back any more. */
	if (none)
		herd__cgroup_pool_clear(rt);
	return none;
}

/* SIGKILL to p's group now, whatever its grace; p->lock held. */
static void kill_now_locked(herd_proc *p, int64_t now)
{
	if (p->killed)
		return;
	if (p->termed) /* SIGTERM sent: it was counted for the monitor */
		atomic_fetch_sub_explicit(&p->rt->proc->nterm, 1, mo_relaxed);
	else
		p->term_at = now;
	p->termed = p->killed = true;
	herd__proc_group_signal_locked(p, SIGKILL);
}

void herd__proc_end_all(herd__rt *rt, bool now)
{
	if (!atomic_load_explicit(&rt->proc->ready, mo_acquire))
		return;
	int64_t t = herd_now();
	herd__mutex_lock(&rt->proc->lock);
	herd_proc *p;
	herd__list_each(p, &rt->proc->live, herd_proc, lv) {
		/* A start in progress: its scope, canceled, ends it when it
		 * joins (marking it ended now would skip that SIGTERM). */
		if (!p->pid)
			continue;
		herd__mutex_lock(&p->lock);
		if (now)
			kill_now_locked(p, t);
		else
			herd__proc_term_locked(p, t);
		herd__mutex_unlock(&p->lock);
	}
	herd__mutex_unlock(&rt->proc->lock);
}

bool herd__proc_end_step(herd__rt *rt, bool kill)
{
	if (!atomic_load_explicit(&rt->proc->ready, mo_acquire))
		return false;
	if (kill)
		herd__proc_end_all(rt, true);
	else
		herd__proc_escalate_all(rt);
	/* Without blocking: workers may be asleep in the poller, and its
	 * doorbell is theirs. */
	herd__poll_run(rt, 0);
	herd__proc_drain_all(rt);
	herd__mutex_lock(&rt->proc->lock);
	bool left = !herd__list_empty(&rt->proc->live);
	herd__mutex_unlock(&rt->proc->lock);
	return left;
}

void herd__proc_end_cleanup(herd__rt *rt)
{
	if (!atomic_load_explicit(&rt->proc->ready, mo_acquire))
		return;
	/* Strays of the trees that left their groups and were orphaned to
	 * us; killing one may orphan its own children, so again until a pass
	 * finds none. */
	for (int pass = 0; pass < HERD__SWEEP_PASSES && herd__proc_sweep(rt) > 0; pass++) {
		struct timespec ts = {0, HERD__END_POLL_NS};
		nanosleep(&ts, NULL);
	}
	herd__cgroup_pool_clear(rt);
}

/*
 * The end of herd_run: every task has ended and the workers have stopped;
 * the root scope's processes are ended here, on the supervisor's thread,
 * which handles their exits itself. A signal that arrives meanwhile is
 * handed on by `between`: once the trees are gone the process dies of a
 * fatal one (run/signal.c), and a second one kills what is left at once.
 */
void herd__proc_fini(herd__rt *rt, void (*between)(herd__rt *rt, int64_t now))
{
	if (atomic_load_explicit(&rt->proc->ready, mo_acquire)) {
		herd__proc_end_all(rt, false);
		while (herd__proc_end_step(rt, false)) {
			between(rt, herd_now());
			struct timespec ts = {0, HERD__END_POLL_NS};
			nanosleep(&ts, NULL);
		}
		herd__proc_end_cleanup(rt);
		herd__orphans_reap(rt);
		prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
	}
	int fd = atomic_load_explicit(&rt->proc->null_fd, mo_relaxed);
	if (fd >= 0)
		herd__fd_close(rt, fd);
	herd__cgroup_fini(rt);
}

