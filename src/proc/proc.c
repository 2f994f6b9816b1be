/*
 * proc.c - child processes bound to scopes: the protocol of the whole
 * layer, the handle's shared helpers and the public calls. Starting is in
 * start.c and spawn-linux.c, exits in reap.c, ending trees in end.c.
 *
 * Starting. The parent resolves the program in PATH, makes the pipes, then
 * clone()s with CLONE_VM | CLONE_VFORK | CLONE_PIDFD, as posix_spawn does
 * internally: the child borrows the parent's memory, and the calling
 * thread waits until the child has exec'd or died. The child (child_main)
 * makes its own process group, asks for SIGKILL at its parent's death,
 * joins its cgroup, gets the original descriptor limit back, puts its
 * stdio in place, closes every other descriptor, resets signal handlers
 * and mask, and execs. It uses raw system calls only: it shares the
 * parent's memory, so it must not take a lock (malloc's, or a sanitizer's)
 * that another thread of the parent may hold. An exec failure's errno is
 * written where the parent reads it, so herd_proc_start returns -ENOENT
 * instead of a child that exits 127.
 *
 * Exit. The pidfd is registered with the poller (a callback waiter). When
 * it fires, the leader is a zombie: its pid, and so its process group's,
 * cannot be reused yet, which makes it safe to SIGKILL the group (what the
 * process left running) before reaping the leader. Then the status is
 * recorded, a first drain (below) is tried, and `done` is closed, which
 * wakes herd_proc_wait and selects.
 *
 * Draining. Members of a killed group die a moment later; those orphaned by
 * the leader's death come back to us (we are a child subreaper) and are
 * reaped with waitid(P_PGID). A group's number cannot be reused while any
 * member exists, so P_PGID waits cannot catch a stranger. A proc is
 * finished when kill(-pgid, 0) reports the group gone (and its cgroup is
 * removed): only then does it leave its scope's list (and is `finished`,
 * which herd_proc_output waits for, output.c), so a scope never ends
 * while something its processes started still runs. Groups that are
 * not gone at once are retried on the `draining` list, by later exits, by
 * closing scopes, and by the monitor.
 *
 * Scopes. Canceling a scope sends SIGTERM to the groups of its running
 * processes (herd__proc_cancel_locked). Closing it, once its tasks are
 * done, sends SIGTERM to those still running, SIGKILL after their grace
 * period, and waits until its list is empty (herd__proc_scope_end).
 *
 * cgroups. Where the process's cgroup v2 directory is writable, each child
 * gets a sub-cgroup (cgroup.c) that the child joins before exec; it is
 * killed as a whole with cgroup.kill, which also reaches descendants that
 * left the process group. A process keeps its cgroup as a zombie, so the
 * sweep can tell a descendant orphaned to us from the program's own
 * children: it kills and reaps our children that sit in the cgroup of a
 * child that has exited (at the end of a scope, and from the monitor).
 * The runtime's live list (started or starting, not finished) is what the
 * sweep checks against; a start joins it before the clone.
 *
 * Locks: p->lock protects `reaping`, `termed`, `killed`, `term_at` and
 * `waiters` (the tasks in herd_proc_wait, woken after `exited` is set):
 * whoever signals the group (herd_proc_signal_all included) checks
 * `reaping` under it, so no signal is sent to a group whose leader may
 * have been reaped. The scope's lock protects
 * its list of procs (p->sc); rt->proc->lock protects the
 * draining list, the live list and p->pid once listed. Order: scope lock,
 * then p->lock; rt->proc->lock, then p->lock; the others are never nested.
 * No lock is held across a clone.
 *
 * Atomics: `exited` is stored (release) after `status`, and read (acquire)
 * before it; `finished` is stored (release) once the group is gone, and
 * read (acquire) by the handle's holder. `refs` counts the handle, the scope's hold until the proc is
 * finished, and each herd_proc_wait or herd_proc_kill in progress; the
 * last drop (acq_rel) frees. rt->proc->nterm and .strays are relaxed hints
 * that tell the monitor whether to look.
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

static int proc_close(herd_proc *p, int fd)
{
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	if (rt != p->rt || rt->serial != p->serial)
		return close(fd) < 0 && errno != EINTR ? -errno : 0;
	return herd__fd_close(rt, fd);
}

void herd__proc_unref(herd_proc *p)
{
	int refs = atomic_fetch_sub_explicit(&p->refs, 1, mo_acq_rel);
	HERD__ASSERT(refs >= 1);
	if (refs != 1)
		return;
	for (int i = 0; i < 3; i++)
		if (p->fds[i] >= 0)
			proc_close(p, p->fds[i]);
	herd_chan_free(p->done);
	free(p);
}


/* The runtime's list of processes started (or being started) and not
 * finished, which the sweep reads. */
void herd__proc_live_add(herd_proc *p)
{
	herd__rt *rt = p->rt;
	herd__mutex_lock(&rt->proc->lock);
	herd__list_push_front(&rt->proc->live, &p->lv);
	herd__mutex_unlock(&rt->proc->lock);
}

void herd__proc_live_remove(herd_proc *p)
{
	herd__rt *rt = p->rt;
	herd__mutex_lock(&rt->proc->lock);
	herd__list_remove(&rt->proc->live, &p->lv);
	herd__mutex_unlock(&rt->proc->lock);
}

void herd__proc_scope_add(herd_scope *s, herd_proc *p)
{
	herd__mutex *lock = herd__scope_lock(s);
	herd__mutex_lock(lock);
	*herd__scope_had_procs(s) = true;
	herd__list_push_front(herd__scope_procs(s), &p->sc);
	if (herd__scope_canceled(s)) { /* canceled since the check */
		herd__mutex_lock(&p->lock);
		herd__proc_term_locked(p, herd_now());
		herd__mutex_unlock(&p->lock);
	}
	herd__mutex_unlock(lock);
}

void herd__proc_scope_remove(herd_scope *s, herd_proc *p)
{
	herd__mutex *lock = herd__scope_lock(s);
	herd__mutex_lock(lock);
	herd__list_remove(herd__scope_procs(s), &p->sc);
	herd__mutex_unlock(lock);
}

/* Runs the clone. Returns the child's pid, with its pidfd in *pidfd, or a
 * negative code (the child's exec error, after reaping it). */
/* clone3's arguments, as far as CLONE_INTO_CGROUP (Linux 5.7). */

/* ------------------------------------------------------------------ */
/* The public calls                                                   */
/* ------------------------------------------------------------------ */

int herd_proc_pid(const herd_proc *p)
{
	return p ? p->pid : -EINVAL;
}

int herd_proc_fd(const herd_proc *p, int index)
{
	if (!p || index < 0 || index > 2)
		return -EINVAL;
	return p->fds[index];
}

int herd_proc_close_fd(herd_proc *p, int index)
{
	if (!p || index < 0 || index > 2 || p->fds[index] < 0)
		return -EINVAL;
	int fd = p->fds[index];
	p->fds[index] = -1;
	return proc_close(p, fd);
}

herd_chan *herd_proc_done(herd_proc *p)
{
	return p ? p->done : NULL;
}

/*
 * If the child has exited but the poller has not yet handled it, handles
 * it here: a task that read the child's output to its end usually finds
 * it a zombie already, and saves the hop through the poller. The pidfd's
 * registration decides who handles the exit: whoever unlinks it
 * (herd__poll_detach; the poller unlinks it before it runs the callback).
 */
static void exit_now(herd_proc *p)
{
	herd__rt *rt = p->rt;
	siginfo_t si;
	si.si_pid = 0;
	if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || !si.si_pid)
		return;
	if (herd__poll_detach(rt, &p->exit_w))
		herd__proc_exited(p);
}

/* The status of an exited p into *status (if not NULL): 0, or -ECHILD if
 * the program reaped the child itself (reap.c records -errno then). */
static int give_status(const herd_proc *p, int *status)
{
	(void)atomic_load_explicit(&p->exited, mo_acquire); /* status after it */
	if (p->status < 0)
		return p->status;
	if (status)
		*status = p->status;
	return 0;
}

int herd_proc_wait(herd_proc *p, int *status, int64_t deadline)
{
	if (!p)
		return -EINVAL;
	if (atomic_load_explicit(&p->exited, mo_acquire))
		return give_status(p, status);
	herd__worker *w;
	herd__task *t;
	if (herd__current(&w, &t))
		return deadline == HERD_NOWAIT ? HERD_ETIMEDOUT : -EPERM;
	if (deadline != HERD_NOWAIT) {
		exit_now(p);
		if (atomic_load_explicit(&p->exited, mo_acquire))
			return give_status(p, status);
	}
	/* A reference while it waits: another task may free the handle
	 * meanwhile, or as soon as the exit has woken them both. The wait is
	 * on the proc's own queue, not on `done`, so that herd_proc_free
	 * refuses only a select on `done` (whose case it cannot see). */
	atomic_fetch_add_explicit(&p->refs, 1, mo_relaxed);
	int rc;
	herd__mutex_lock(&p->lock);
	if (atomic_load_explicit(&p->exited, mo_acquire)) {
		herd__mutex_unlock(&p->lock);
		rc = 0;
	} else {
		herd__waiter wt = {.task = t};
		herd__waitq_push(&p->waiters, &wt);
		herd__waits_on(t, HERD__WHY_PROC, p);
		rc = herd__wait(&w, &p->lock, deadline, true);
		herd__mutex_lock(&p->lock);
		herd__waitq_remove(&p->waiters, &wt);
		herd__mutex_unlock(&p->lock);
	}
	if (rc == 0)
		rc = give_status(p, status);
	herd__proc_unref(p);
	return rc;
}

int herd_proc_signal(herd_proc *p, int sig)
{
	if (!p || sig < 0 || sig > 64)
		return -EINVAL;
	int rc = 0;
	herd__mutex_lock(&p->lock);
	if (p->reaping)
		rc = -ESRCH;
	else if (kill(p->pid, sig) < 0)
		rc = -errno;
	herd__mutex_unlock(&p->lock);
	return rc;
}

int herd_proc_signal_all(herd_proc *p, int sig)
{
	if (!p || sig < 0 || sig > HERD__NSIG)
		return -EINVAL;
	int rc = 0;
	herd__mutex_lock(&p->lock);
	if (p->reaping) {
		rc = -ESRCH;
	} else if (kill(-p->pid, sig) < 0) {
		rc = -errno;
	} else if (sig) {
		/* Each process once: the group at once, then the cgroup's
		 * members that left it. */
		herd__cgroup_signal(&p->cg, sig, p->pid);
	}
	herd__mutex_unlock(&p->lock);
	return rc;
}

int herd_proc_kill(herd_proc *p, int *status, int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	if (!p)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	atomic_fetch_add_explicit(&p->refs, 1, mo_relaxed); /* as herd_proc_wait */
	herd__mutex_lock(&p->lock);
	herd__proc_term_locked(p, herd_now());
	herd__mutex_unlock(&p->lock);
	int rc;
	for (;;) {
		if (atomic_load_explicit(&p->exited, mo_acquire)) {
			rc = give_status(p, status);
			break;
		}
		int64_t now = herd_now();
		if (deadline == HERD_NOWAIT || (deadline > 0 && now >= deadline)) {
			rc = HERD_ETIMEDOUT;
			break;
		}
		herd__mutex_lock(&p->lock);
		herd__proc_escalate_locked(p, now);
		herd__mutex_unlock(&p->lock);
		int64_t until = now + HERD__END_POLL_NS;
		herd__proc_nap(&w, deadline > 0 && deadline < until ? deadline : until);
	}
	herd__proc_unref(p);
	return rc;
}

int herd_proc_free(herd_proc *p)
{
	if (!p)
		return 0;
	if (herd__chan_busy(p->done))
		return -EBUSY;
	HERD__LEAK_FREED(p);
	for (int i = 0; i < 3; i++)
		herd_proc_close_fd(p, i);
	herd__proc_unref(p);
	return 0;
}

