/*
 * reap.c - a child's exit: reaping the leader, killing and draining what
 * its group left, finishing the handle; and the sweep of strays that left
 * their group (see proc.c for the whole protocol).
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
/* Exit, draining, finishing                                          */
/* ------------------------------------------------------------------ */

static int encode_status(const siginfo_t *si)
{
	if (si->si_code == CLD_EXITED)
		return si->si_status & 0xff;
	return 256 + si->si_status;
}

/* Sends sig to p's group unless its leader may have been reaped; p->lock
 * held. */
void herd__proc_group_signal_locked(herd_proc *p, int sig)
{
	if (p->reaping || p->pid <= 0) /* pid 0 would be our own group */
		return;
	kill(-p->pid, sig);
	if (sig == SIGKILL)
		herd__cgroup_kill(&p->cg);
}

/* Whether p's group is gone: no member left, not even a zombie (kill
 * reaches zombies, and a group's number stays taken while one exists). */
static bool group_gone(const herd_proc *p)
{
	return kill(-p->pid, 0) < 0 && errno == ESRCH;
}

/* Reaps what is left of p's group that came back to us. True when the
 * group is gone (and its cgroup removed). Usually the group went with its
 * leader: a first look saves the waitid, which could reap nothing. */
static bool drain(herd_proc *p)
{
	if (group_gone(p))
		return herd__cgroup_remove(&p->cg);
	siginfo_t si;
	for (;;) {
		si.si_pid = 0;
		if (waitid(P_PGID, (id_t)p->pid, &si, WEXITED | WNOHANG) < 0 || !si.si_pid)
			break;
	}
	if (!group_gone(p))
		return false;
	return herd__cgroup_remove(&p->cg);
}

/* p is gone entirely: it leaves its scope, which may now end. */
static void finish(herd_proc *p)
{
	herd__proc_live_remove(p);
	herd__proc_scope_remove(p->scope, p);
	/* Before the scope's reference goes: the handle's holder reads it. */
	atomic_store_explicit(&p->finished, true, mo_release);
	herd__proc_unref(p);
}

/* The leader has exited: kill its group's leftovers, reap it, drain, and
 * tell the waiters. Runs wherever the poller runs, with no lock held. The
 * first drain comes before the wake, so that a waiter usually finds its
 * tree gone (`finished`) when it returns: herd_proc_output waits for that,
 * and would otherwise nap. */
void herd__proc_exited(herd_proc *p)
{
	herd__rt *rt = p->rt;
	herd__mutex_lock(&p->lock);
	herd__proc_group_signal_locked(p, SIGKILL); /* the zombie holds the group's id */
	if (p->termed && !p->killed) {
		p->killed = true; /* nothing left to escalate */
		atomic_fetch_sub_explicit(&rt->proc->nterm, 1, mo_relaxed);
	}
	p->reaping = true;
	herd__mutex_unlock(&p->lock);
	siginfo_t si = {0};
	int rc;
	while ((rc = waitid(P_PID, (id_t)p->pid, &si, WEXITED)) < 0 && errno == EINTR)
		;
	/* ECHILD: somebody else reaped it (waitpid(-1), or SIGCHLD ignored). */
	p->status = rc < 0 ? -errno : encode_status(&si);
	if (herd__unlikely(rt->trace))
		herd__trace_any(rt, HERD__TR_PROC, (uint64_t)p->pid, (uint64_t)(int64_t)p->status,
				(uint64_t)p->started, p->cmd, strnlen(p->cmd, sizeof p->cmd));
	if (p->pidfd >= 0) {
		herd__fd_close(rt, p->pidfd);
		p->pidfd = -1;
	}
	atomic_store_explicit(&p->exited, true, mo_release);
	bool gone = drain(p);
	if (gone) /* before the wake, for the woken to see */
		atomic_store_explicit(&p->finished, true, mo_release);
	herd__mutex_lock(&p->lock);
	herd__waitq_wake_all(&p->waiters);
	herd__mutex_unlock(&p->lock);
	herd_chan_close(p->done);
	if (gone) {
		finish(p);
		return;
	}
	herd__mutex_lock(&rt->proc->lock);
	p->dr_next = rt->proc->draining;
	rt->proc->draining = p;
	herd__mutex_unlock(&rt->proc->lock);
}

void herd__proc_on_exit_event(herd__pollw *w, uint32_t ready)
{
	(void)ready;
	herd__proc_exited((herd_proc *)((char *)w - offsetof(herd_proc, exit_w)));
}

void herd__proc_drain_all(herd__rt *rt)
{
	herd__mutex_lock(&rt->proc->lock);
	herd_proc *list = rt->proc->draining, *done = NULL;
	rt->proc->draining = NULL;
	herd__mutex_unlock(&rt->proc->lock);
	herd_proc *keep = NULL;
	while (list) {
		herd_proc *p = list;
		list = p->dr_next;
		if (drain(p)) {
			p->dr_next = done;
			done = p;
		} else {
			p->dr_next = keep;
			keep = p;
		}
	}
	if (keep) {
		herd__mutex_lock(&rt->proc->lock);
		herd_proc *last = keep;
		while (last->dr_next)
			last = last->dr_next;
		last->dr_next = rt->proc->draining;
		rt->proc->draining = keep;
		herd__mutex_unlock(&rt->proc->lock);
	}
	while (done) {
		herd_proc *p = done;
		done = p->dr_next;
		finish(p);
	}
}

/* ------------------------------------------------------------------ */
/* Strays that left their group                                       */
/* ------------------------------------------------------------------ */

/* Our children (of every thread), into *pids (malloc'd); returns how
 * many, or -1 if the list could not be read whole. */
static long list_children(pid_t **pids)
{
	size_t n = 0, cap = 0;
	*pids = NULL;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	bool whole = true;
	struct dirent *e;
	while (whole && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300];
		snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
		char *buf = herd__os_read_file(AT_FDCWD, path);
		if (!buf)
			continue; /* the thread has ended */
		whole = herd__os_parse_pids(buf, pids, &n, &cap) >= 0;
		free(buf);
	}
	closedir(d);
	return whole ? (long)n : -1;
}

/* The herd cgroup (its number) that process pid is in, or -1: a child's
 * cgroup stays on it as a zombie. */
static long long herd_cgroup_of(pid_t pid, int self)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	if (herd__os_read_small(AT_FDCWD, path, buf, sizeof buf) <= 0)
		return -1;
	char *line = strstr(buf, "0::");
	if (!line || (line != buf && line[-1] != '\n'))
		return -1;
	line[strcspn(line, "\n")] = 0;
	char *name = strrchr(line, '/');
	int owner;
	unsigned long long seq;
	if (!name || sscanf(name + 1, "herd-%d-%llu", &owner, &seq) != 2 || owner != self)
		return -1;
	return (long long)seq;
}

struct known {
	unsigned long long seq;
	pid_t pid;  /* 0: still starting */
	bool alive; /* its leader has not exited */
};

static int cmp_known(const void *a, const void *b)
{
	const struct known *x = a, *y = b;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* One pass: returns how many strays it killed. It kills only with whole
 * lists: a live child missing from them would look like a stray. */
static int sweep_once(herd__rt *rt)
{
	pid_t *kids = NULL;
	struct known *known = NULL;
	int killed = 0;
	long nk = list_children(&kids);
	if (nk <= 0)
		goto out;
	size_t nknown = 0, cap = 0;
	herd__mutex_lock(&rt->proc->lock);
	herd_proc *p;
	herd__list_each(p, &rt->proc->live, herd_proc, lv)
		cap++;
	known = malloc((cap ? cap : 1) * sizeof *known);
	if (known) {
		herd__list_each(p, &rt->proc->live, herd_proc, lv) {
			if (p->cg.seq) /* set before it was listed; 0: no cgroup */
				known[nknown++] = (struct known){
					p->cg.seq, p->pid,
					!atomic_load_explicit(&p->exited, mo_acquire)};
		}
	}
	herd__mutex_unlock(&rt->proc->lock);
	if (!known)
		goto out;
	qsort(known, nknown, sizeof *known, cmp_known);
	int self = (int)getpid();
	for (long i = 0; i < nk; i++) {
		long long seq = herd_cgroup_of(kids[i], self);
		if (seq < 0)
			continue; /* not from a herd child's tree: the program's own */
		struct known key = {(unsigned long long)seq, 0, false};
		struct known *k = bsearch(&key, known, nknown, sizeof *known, cmp_known);
		if (k && k->alive)
			continue; /* a child herd started, or its tree while it runs */
		/* From the tree of a child that has exited: a stray. */
		kill(kids[i], SIGKILL);
		siginfo_t si; /* our child, killed: it ends at once */
		while (waitid(P_PID, (id_t)kids[i], &si, WEXITED) < 0 && errno == EINTR)
			;
		killed++;
	}
out:
	free(kids);
	free(known);
	return killed;
}

/* Whether the process may have a child (of any thread, of any kind):
 * false only when a waitid that takes nothing says it has none, which
 * spares a sweep its reading of /proc, in the usual case at the end. */
static bool may_have_children(void)
{
	siginfo_t si;
	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) == 0 ||
	       errno != ECHILD;
}

int herd__proc_sweep(herd__rt *rt)
{
	if (!atomic_load_explicit(&rt->proc->ready, mo_acquire) || rt->proc->cg_base < 0 ||
	    !may_have_children())
		return 0;
	return sweep_once(rt);
}


/* Without a pidfd (Linux < 5.3), a thread waits for the exit. */
static void *watch_thread(void *arg)
{
	herd_proc *p = arg;
	siginfo_t si;
	while (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	herd__proc_exited(p);
	return NULL;
}

void herd__proc_watch_thread(herd_proc *p)
{
	pthread_t th;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64 * 1024);
	while (pthread_create(&th, &at, watch_thread, p) != 0) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL); /* out of threads: the child must be waited */
	}
	pthread_attr_destroy(&at);
}

