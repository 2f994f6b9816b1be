/*
 * proc.c - child processes bound to scopes: starting them, waiting for
 * them, and making sure that nothing they start outlives their scope.
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
 * recorded and `done` is closed, which wakes herd_proc_wait and selects.
 *
 * Draining. Members of a killed group die a moment later; those orphaned by
 * the leader's death come back to us (we are a child subreaper) and are
 * reaped with waitid(P_PGID). A group's number cannot be reused while any
 * member exists, so P_PGID waits cannot catch a stranger. A proc is
 * finished when kill(-pgid, 0) reports the group gone (and its cgroup is
 * removed): only then does it leave its scope's list, so a scope never
 * ends while something its processes started still runs. Groups that are
 * not gone at once are retried on the `draining` list, by later exits, by
 * closing scopes, and by the monitor.
 *
 * Scopes. Cancelling a scope sends SIGTERM to the groups of its running
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
 * its list of procs (p->sc_prev/sc_next); rt->proc.lock protects the
 * draining list, the live list and p->pid once listed. Order: scope lock,
 * then p->lock; rt->proc.lock, then p->lock; the others are never nested.
 * No lock is held across a clone.
 *
 * Atomics: `exited` is stored (release) after `status`, and read (acquire)
 * before it. `refs` counts the handle, the scope's hold until the proc is
 * finished, and each herd_proc_wait or herd_proc_kill in progress; the
 * last drop (acq_rel) frees. rt->proc.nterm and .strays are relaxed hints
 * that tell the monitor whether to look.
 */
#define _GNU_SOURCE 1
#include "internal.h"

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

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* TSan's interceptor of clone() runs its fork bookkeeping in the child,
 * which with CLONE_VM is the parent's own memory: call glibc's __clone,
 * which it does not intercept. */
#if HERD_TSAN
extern int __clone(int (*fn)(void *), void *stack, int flags, void *arg, ...);
#define clone __clone
#endif

#define GRACE_DEFAULT (2 * HERD_SEC)
/* spawn's code for a child that ran out of descriptors itself. */
#define CHILD_EMFILE (-EMFILE - 4096)
/* Sweeps at the end of a scope, at most, each after the strays the
 * previous one killed may have orphaned theirs. */
#define SWEEP_PASSES 8
/* How often a closing scope looks at its processes. */
#define END_POLL_NS (1 * HERD_MSEC)
/* The child's stack: it runs a few dozen lines of system calls. */
#define CHILD_STACK (16 * 1024)

extern char **environ;

struct herd_proc {
	herd__rt *rt;
	uint64_t serial;        /* rt->serial: the runtime still exists */
	herd_scope *scope;
	struct herd_proc *sc_prev, *sc_next;  /* the scope's list */
	struct herd_proc *dr_next;            /* rt->proc.draining */
	struct herd_proc *lv_prev, *lv_next;  /* rt->proc.live_list */
	_Atomic int refs;       /* the handle, and the scope's until finished */
	pid_t pid;              /* also the process group's id */
	int pidfd;
	int fds[3];             /* the parent's pipe ends, or -1 */
	int64_t grace;
	herd__cgroup cg;
	herd__pollw exit_w;
	herd_chan *done;
	herd__mutex lock;
	herd__waitq waiters;    /* tasks in herd_proc_wait */
	bool reaping, termed, killed;
	int64_t term_at;
	_Atomic bool exited;    /* status is set (release) */
	int status;
};

/* ------------------------------------------------------------------ */
/* The child                                                          */
/* ------------------------------------------------------------------ */

struct child_args {
	const char *path;
	char *const *argv;
	char *const *envp;
	const char *dir;
	int src[3];             /* what goes to 0, 1, 2; -1: inherited */
	int cg_procs;           /* cgroup.procs to join, or -1 */
	struct rlimit nofile;   /* given back to the child */
	bool set_nofile;
	uint64_t mask;          /* the signal mask to exec with */
	bool keep_signals;      /* keep ignored signals (and that mask) */
	pid_t ppid;
	volatile int err;       /* the child's errno if it failed */
	volatile int shared;    /* set by the child: it shares our memory */
	int err_fd;             /* or it writes err here (see spawn), or -1 */
};

/* The kernel's struct sigaction starts with the handler on every
 * architecture; the rest is zero for SIG_DFL. */
struct ksigaction {
	uintptr_t handler;
	unsigned long words[3];
};

#define NO_SANITIZE \
	__attribute__((no_sanitize("address", "thread", "undefined"), noinline))

NO_SANITIZE static int child_fail(struct child_args *a, long rc)
{
	int e = rc == -1 ? errno : EINVAL;
	a->err = e;
	if (a->err_fd >= 0)
		syscall(SYS_write, a->err_fd, &e, sizeof e);
	syscall(SYS_exit_group, 127);
	return 127;
}

NO_SANITIZE static int child_main(void *arg)
{
	struct child_args *a = arg;
	a->shared = 1;
	if (syscall(SYS_setpgid, 0, 0) < 0)
		return child_fail(a, -1);
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (syscall(SYS_getppid) != a->ppid)
		syscall(SYS_exit_group, 127); /* the parent is gone already */
	/* Best effort: a child that cannot join its cgroup runs without. */
	if (a->cg_procs >= 0)
		syscall(SYS_write, a->cg_procs, "0", 1);
	/* A source among 0..2 that another slot will overwrite moves first. */
	for (int i = 0; i < 3; i++)
		if (a->src[i] >= 0 && a->src[i] < 3 && a->src[i] != i &&
		    (a->src[i] = (int)syscall(SYS_fcntl, a->src[i], F_DUPFD_CLOEXEC, 3)) < 0)
			return child_fail(a, -1);
	for (int i = 0; i < 3; i++) {
		long rc = 0;
		if (a->src[i] == i)
			rc = syscall(SYS_fcntl, i, F_SETFD, 0);
		else if (a->src[i] >= 0)
			rc = syscall(SYS_dup3, a->src[i], i, 0);
		if (rc < 0)
			return child_fail(a, -1);
	}
	/* Exactly the descriptors it was given (Linux 5.9+; before, herd's
	 * own are close-on-exec anyway). */
	if (syscall(SYS_close_range, 3, ~0u, 4 /* CLOSE_RANGE_CLOEXEC, 5.11 */) < 0)
		syscall(SYS_close_range, 3, ~0u, 0);
	/* The original limit, only now: the moves above may need a
	 * descriptor above it. */
	if (a->set_nofile)
		syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &a->nofile, NULL);
	if (a->dir && syscall(SYS_chdir, a->dir) < 0)
		return child_fail(a, -1);
	/* Handlers would run in the parent's memory: default them before the
	 * mask lets anything in. Ignored signals too, unless asked: a child
	 * that ignores SIGTERM would hold every cancellation for its grace. */
	for (int sig = 1; sig <= HERD__NSIG; sig++) {
		struct ksigaction old, dfl = {0};
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (syscall(SYS_rt_sigaction, sig, NULL, &old, 8) == 0 &&
		    old.handler != (uintptr_t)SIG_DFL &&
		    (old.handler != (uintptr_t)SIG_IGN || !a->keep_signals))
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
	}
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &a->mask, NULL, 8);
	syscall(SYS_execve, a->path, a->argv, a->envp);
	return child_fail(a, -1);
}

/* ------------------------------------------------------------------ */
/* Starting                                                           */
/* ------------------------------------------------------------------ */

/* The program's path, as execvp finds it: 0, -ENOENT, -EACCES or
 * -ENAMETOOLONG. */
static int resolve(const char *file, char *buf, size_t size, const char **path)
{
	if (strchr(file, '/')) {
		*path = file;
		return 0;
	}
	if (!*file)
		return -ENOENT;
	const char *dirs = getenv("PATH");
	if (!dirs)
		dirs = "/usr/local/bin:/bin:/usr/bin";
	size_t flen = strlen(file);
	int err = -ENOENT;
	for (const char *d = dirs;; d++) {
		const char *end = strchrnul(d, ':');
		size_t dlen = (size_t)(end - d);
		if (dlen + 1 + flen + 1 <= size) {
			if (dlen) {
				memcpy(buf, d, dlen);
				buf[dlen] = '/';
				memcpy(buf + dlen + 1, file, flen + 1);
			} else {
				memcpy(buf, file, flen + 1); /* empty: "." */
			}
			struct stat st;
			if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(buf, X_OK) == 0) {
					*path = buf;
					return 0;
				}
				err = -EACCES;
			}
		} else if (err == -ENOENT) {
			err = -ENAMETOOLONG;
		}
		if (!*end)
			return err;
		d = end;
	}
}

/* Makes a descriptor with `make` (which returns it or -1 with errno):
 * the descriptor, or -errno. */
static int make_fd(int (*make)(void *), void *arg)
{
	int fd;
	while ((fd = make(arg)) < 0 && errno == EINTR)
		;
	return fd < 0 ? -errno : fd;
}

static int make_pipe(void *arg)
{
	return pipe2(arg, O_CLOEXEC);
}

static int open_null(void *arg)
{
	(void)arg;
	return open("/dev/null", O_RDWR | O_CLOEXEC);
}

/* /dev/null, opened once per runtime. */
static int null_fd(herd__rt *rt)
{
	int fd = atomic_load_explicit(&rt->proc.null_fd, mo_acquire);
	if (fd >= 0)
		return fd;
	if ((fd = make_fd(open_null, NULL)) < 0)
		return fd;
	int none = -1;
	if (!atomic_compare_exchange_strong(&rt->proc.null_fd, &none, fd)) {
		close(fd);
		return none;
	}
	herd__fd_track(rt, fd);
	return fd;
}

/* The descriptors of a start: what the child gets, what the parent keeps. */
struct stdio_set {
	int child[3];   /* for the child's 0..2; -1: inherited */
	int close[3];   /* child ends the parent closes after the start */
	int parent[3];  /* the parent's pipe ends */
};

/* Closes the child's ends (and the parent's, if parent_too); `quiet` when
 * a start gives back what it took because it is short of descriptors, so
 * that no waiter is woken for them (fd.c). */
static void stdio_release(herd__rt *rt, struct stdio_set *io, bool parent_too, bool quiet)
{
	int (*close_fn)(herd__rt *, int) = quiet ? herd__fd_close_quiet : herd__fd_close;
	for (int i = 0; i < 3; i++) {
		if (io->close[i] >= 0)
			close_fn(rt, io->close[i]);
		if (parent_too && io->parent[i] >= 0)
			close_fn(rt, io->parent[i]);
		io->close[i] = -1;
	}
}

static bool short_of_fds(int rc)
{
	return rc == -EMFILE || rc == -ENFILE;
}

static int stdio_make(herd__rt *rt, const herd_proc_opts *o, struct stdio_set *io)
{
	for (int i = 0; i < 3; i++)
		io->child[i] = io->close[i] = io->parent[i] = -1;
	for (int i = 0; i < 3; i++) {
		const herd_stdio *s = &o->stdio[i];
		int p[2], rc;
		switch (s->mode) {
		case HERD_STDIO_INHERIT:
			break;
		case HERD_STDIO_NULL:
			if ((rc = null_fd(rt)) < 0)
				goto fail;
			io->child[i] = rc;
			break;
		case HERD_STDIO_FD:
			io->child[i] = s->fd;
			break;
		case HERD_STDIO_PIPE:
			if ((rc = make_fd(make_pipe, p)) < 0)
				goto fail;
			herd__fd_track(rt, p[0]);
			herd__fd_track(rt, p[1]);
			/* The child's end stays blocking, as programs expect. */
			io->child[i] = io->close[i] = p[i == 0 ? 0 : 1];
			io->parent[i] = p[i == 0 ? 1 : 0];
			fcntl(io->parent[i], F_SETFL, O_NONBLOCK);
			break;
		}
		continue;
fail:
		stdio_release(rt, io, true, short_of_fds(rc));
		return rc;
	}
	return 0;
}

static int check_opts(const herd_proc_opts *o)
{
	if (!o || !o->argv || !o->argv[0] || (o->flags & ~HERD_PROC_KEEP_SIGNALS))
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		int m = o->stdio[i].mode;
		if (m < HERD_STDIO_INHERIT || m > HERD_STDIO_FD ||
		    (m == HERD_STDIO_FD && o->stdio[i].fd < 0))
			return -EINVAL;
	}
	return 0;
}

/* Closes one of p's descriptors, uncounting it if its runtime still runs
 * (a handle may be freed after herd_run has returned). */
static int proc_close(herd_proc *p, int fd)
{
	herd__rt *rt = atomic_load_explicit(&herd__runtime, mo_acquire);
	if (rt != p->rt || rt->serial != p->serial)
		return close(fd) < 0 && errno != EINTR ? -errno : 0;
	return herd__fd_close(rt, fd);
}

static void proc_unref(herd_proc *p)
{
	if (atomic_fetch_sub_explicit(&p->refs, 1, mo_acq_rel) != 1)
		return;
	for (int i = 0; i < 3; i++)
		if (p->fds[i] >= 0)
			proc_close(p, p->fds[i]);
	herd_chan_free(p->done);
	free(p);
}

static void on_exit_event(herd__pollw *w, uint32_t ready);
static void term_locked(herd_proc *p, int64_t now);

/* The runtime's list of processes started (or being started) and not
 * finished, which the sweep reads. */
static void live_add(herd_proc *p)
{
	herd__rt *rt = p->rt;
	herd__mutex_lock(&rt->proc.lock);
	p->lv_prev = NULL;
	p->lv_next = rt->proc.live_list;
	if (p->lv_next)
		p->lv_next->lv_prev = p;
	rt->proc.live_list = p;
	herd__mutex_unlock(&rt->proc.lock);
}

static void live_remove(herd_proc *p)
{
	herd__rt *rt = p->rt;
	herd__mutex_lock(&rt->proc.lock);
	if (p->lv_prev)
		p->lv_prev->lv_next = p->lv_next;
	else
		rt->proc.live_list = p->lv_next;
	if (p->lv_next)
		p->lv_next->lv_prev = p->lv_prev;
	herd__mutex_unlock(&rt->proc.lock);
}

static void scope_add(herd_scope *s, herd_proc *p)
{
	herd__mutex *lock = herd__scope_lock(s);
	herd_proc **list = herd__scope_procs(s);
	herd__mutex_lock(lock);
	*herd__scope_had_procs(s) = true;
	p->sc_prev = NULL;
	p->sc_next = *list;
	if (*list)
		(*list)->sc_prev = p;
	*list = p;
	if (herd__scope_canceled(s)) { /* cancelled since the check */
		herd__mutex_lock(&p->lock);
		term_locked(p, herd_now());
		herd__mutex_unlock(&p->lock);
	}
	herd__mutex_unlock(lock);
}

static void scope_remove(herd_scope *s, herd_proc *p)
{
	herd__mutex *lock = herd__scope_lock(s);
	herd__mutex_lock(lock);
	if (p->sc_prev)
		p->sc_prev->sc_next = p->sc_next;
	else
		*herd__scope_procs(s) = p->sc_next;
	if (p->sc_next)
		p->sc_next->sc_prev = p->sc_prev;
	herd__mutex_unlock(lock);
}

/* Runs the clone. Returns the child's pid, with its pidfd in *pidfd, or a
 * negative code (the child's exec error, after reaping it). */
/* clone3's arguments, as far as CLONE_INTO_CGROUP (Linux 5.7). */
struct clone_args3 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal;
	uint64_t stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

#define CLONE_INTO_CGROUP_ 0x200000000ULL

/* The clone itself: clone3, straight into the child's cgroup, where the
 * kernel has it (the child is born there, and moving it in later costs a
 * synchronisation of the whole cgroup tree); else clone(), and the child
 * joins its cgroup itself. Returns the pid or -errno; *fd the pidfd. */
static int do_clone(herd__rt *rt, struct child_args *a, herd__cgroup *cg, char *stack,
		    int *fd)
{
	a->cg_procs = -1;
	if (!atomic_load_explicit(&rt->proc.no_clone3, mo_relaxed)) {
		bool into = cg->used && !atomic_load_explicit(&rt->proc.no_into_cgroup,
							      mo_relaxed);
		struct clone_args3 ca = {
			.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD |
				 (into ? CLONE_INTO_CGROUP_ : 0),
			.pidfd = (uint64_t)(uintptr_t)fd,
			.exit_signal = SIGCHLD,
			.stack = (uint64_t)(uintptr_t)stack,
			.stack_size = CHILD_STACK,
			.cgroup = into ? (uint64_t)cg->dir_fd : 0,
		};
		if (!into && cg->used)
			a->cg_procs = herd__cgroup_procs_fd(cg);
		int rc = herd__clone3(&ca, sizeof ca, child_main, a);
		if (rc >= 0 || rc == -ENOMEM || rc == -EAGAIN || rc == -EMFILE ||
		    rc == -ENFILE || (rc != -ENOSYS && !into))
			return rc;
		if (rc == -ENOSYS)
			atomic_store_explicit(&rt->proc.no_clone3, true, mo_relaxed);
		else if (rc == -EINVAL || rc == -E2BIG)
			atomic_store_explicit(&rt->proc.no_into_cgroup, true, mo_relaxed);
		else
			herd__cgroup_abandon(cg); /* cannot start in it: without */
		return do_clone(rt, a, cg, stack, fd); /* once more, without */
	}
	if (cg->used)
		a->cg_procs = herd__cgroup_procs_fd(cg);
	int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
	pid_t pid;
	bool with_pidfd = !atomic_load_explicit(&rt->proc.no_clone_pidfd, mo_relaxed);
	if (!with_pidfd)
		pid = clone(child_main, stack + CHILD_STACK, flags, a);
	else
		pid = clone(child_main, stack + CHILD_STACK, flags | CLONE_PIDFD, a, fd);
	/* Linux < 5.2 (or qemu-user): every clone that tried CLONE_PIDFD
	 * tries again without, not only the first to notice. */
	if (pid < 0 && errno == EINVAL && *fd < 0 && with_pidfd) {
		atomic_store_explicit(&rt->proc.no_clone_pidfd, true, mo_relaxed);
		pid = clone(child_main, stack + CHILD_STACK, flags, a);
	}
	return pid < 0 ? -errno : pid;
}

/* Runs the clone. Returns the child's pid, with its pidfd in *pidfd, or a
 * negative code (the child's exec error, after reaping it). */
static int spawn(herd__worker *w, struct child_args *a, herd__cgroup *cg, int *pidfd)
{
	herd__rt *rt = w->rt;
	char *stack = malloc(CHILD_STACK);
	if (!stack)
		return -ENOMEM;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* Nothing is delivered to this thread while the child shares its
	 * memory (above). The child then gets an empty mask, or, if asked,
	 * that of the thread that called herd_run, as a child of that thread
	 * would. */
	a->mask = 0;
	if (a->keep_signals)
		memcpy(&a->mask, &rt->sigmask, sizeof a->mask);
	a->err = a->shared = 0;
	a->ppid = getpid();
	/* Until a child has shown that it shares our memory (Valgrind, for
	 * one, turns the vfork into a fork), exec errors also come through a
	 * close-on-exec pipe, as after a fork: end of file means the exec. */
	int ep[2] = {-1, -1};
	a->err_fd = -1;
	if (!atomic_load_explicit(&rt->proc.vm_shared, mo_relaxed)) {
		if (pipe2(ep, O_CLOEXEC) < 0) {
			int e = errno;
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			free(stack);
			return -e;
		}
		a->err_fd = ep[1];
	}
	int fd = -1;
	/* The thread waits until the child has exec'd (in the clone, or, if
	 * the vfork was a fork, on the pipe): the monitor should move the
	 * worker's queue away if that takes long, but not call the worker
	 * stuck. */
	atomic_store_explicit(&w->in_syscall, true, mo_relaxed);
	int pid = do_clone(rt, a, cg, stack, &fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(stack);
	if (ep[1] >= 0) {
		close(ep[1]);
		if (pid >= 0 && !a->shared) {
			int e = 0;
			ssize_t n;
			while ((n = read(ep[0], &e, sizeof e)) < 0 && errno == EINTR)
				;
			a->err = n == sizeof e ? e : 0;
		} else if (pid >= 0) {
			atomic_store_explicit(&rt->proc.vm_shared, true, mo_relaxed);
		}
		close(ep[0]);
	}
	atomic_store_explicit(&w->in_syscall, false, mo_relaxed);
	if (pid < 0)
		return pid;
	if (fd < 0 && (fd = (int)syscall(SYS_pidfd_open, pid, 0)) >= 0)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (a->err) {
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (fd >= 0)
			close(fd);
		/* The child's own EMFILE is not ours to wait out. */
		return a->err == EMFILE || a->err == ENFILE ? CHILD_EMFILE : -a->err;
	}
	*pidfd = fd;
	return pid;
}

int herd_proc_start(herd_proc **out, herd_scope *scope, const herd_proc_opts *o,
		    int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	int rc;
	if (!out || (rc = check_opts(o)))
		return out ? rc : -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	herd__rt *rt = w->rt;
	if (!scope)
		scope = t->scope;
	if (herd__scope_canceled(scope))
		return HERD_ECANCELED;

	char buf[PATH_MAX];
	struct child_args a = {.dir = o->dir, .argv = o->argv, .cg_procs = -1,
			       .keep_signals = o->flags & HERD_PROC_KEEP_SIGNALS};
	a.envp = o->envp ? o->envp : environ;
	if ((rc = resolve(o->file ? o->file : o->argv[0], buf, sizeof buf, &a.path)))
		return rc;
	herd_proc *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	if ((rc = herd_chan_make(&p->done, 0, 0))) {
		free(p);
		return rc;
	}
	p->rt = rt;
	p->serial = rt->serial;
	p->grace = o->grace ? o->grace : GRACE_DEFAULT;
	p->pidfd = -1;
	herd__proc_once(rt);

	if (rt->fd.raised) {
		a.set_nofile = true;
		getrlimit(RLIMIT_NOFILE, &a.nofile);
		a.nofile.rlim_cur = (rlim_t)rt->fd.limit_at_start;
	}
	/* Out of descriptors at any step, everything this start holds is
	 * released before it waits: starts that each held some while waiting
	 * for more could wait for each other for ever. Nothing is started in
	 * a cancelled scope: the check comes again after each wait, and the
	 * wait ends when the scope is cancelled (wait_scope), not only the
	 * task's own. A cancel that comes during the clone itself finds the
	 * new process in the scope's list (scope_add), which ends it. */
	herd__fdwait fw;
	herd__fd_attempt(&fw);
	struct stdio_set io;
	for (;;) {
		if (herd__scope_canceled(scope) || herd__scope_canceled(t->scope)) {
			rc = HERD_ECANCELED;
			goto fail;
		}
		if ((rc = stdio_make(rt, o, &io)) == 0) {
			herd__cgroup_make(rt, &p->cg);
			memcpy(a.src, io.child, sizeof a.src);
			if (herd__scope_canceled(scope)) {
				rc = HERD_ECANCELED; /* while it made the descriptors */
			} else {
				live_add(p); /* pid 0: the sweep spares its cgroup */
				rc = spawn(w, &a, &p->cg, &p->pidfd);
				herd__cgroup_started(&p->cg);
				if (rc >= 0)
					break;
				live_remove(p);
			}
			herd__cgroup_remove(&p->cg);
			stdio_release(rt, &io, true, short_of_fds(rc));
		}
		if (rc == CHILD_EMFILE) {
			rc = -EMFILE; /* from the child: no waiting helps */
			goto fail;
		}
		if (!short_of_fds(rc))
			goto fail;
		if (scope != t->scope)
			herd__wait_scope_set(t, scope);
		rc = herd__fd_retry(&fw, -rc, deadline);
		if (scope != t->scope)
			herd__wait_scope_set(t, NULL);
		if (rc)
			goto fail;
	}
	herd__mutex_lock(&rt->proc.lock);
	p->pid = rc;
	herd__mutex_unlock(&rt->proc.lock);
	stdio_release(rt, &io, false, false);
	memcpy(p->fds, io.parent, sizeof p->fds);
	if (p->pidfd >= 0)
		herd__fd_track(rt, p->pidfd);
	atomic_init(&p->refs, 2);
	p->scope = scope;
	scope_add(scope, p);

	p->exit_w.cb = on_exit_event;
	p->exit_w.events = HERD_READABLE;
	herd__mutex_lock(&rt->poll.lock);
	rc = p->pidfd >= 0 ? herd__poll_attach_locked(rt, p->pidfd, &p->exit_w) : -ENOSYS;
	if (rc == 0)
		herd__poll_watch(rt);
	herd__mutex_unlock(&rt->poll.lock);
	if (rc)
		herd__proc_watch_thread(p); /* no pidfd: a thread waits */
	*out = p;
	return 0;

fail:
	herd_chan_free(p->done);
	free(p);
	return rc;
}

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
static void group_signal_locked(herd_proc *p, int sig)
{
	if (p->reaping || p->pid <= 0) /* pid 0 would be our own group */
		return;
	kill(-p->pid, sig);
	if (sig == SIGKILL)
		herd__cgroup_kill(&p->cg);
}

/* Reaps what is left of p's group that came back to us. True when the
 * group is gone (and its cgroup removed). */
static bool drain(herd_proc *p)
{
	siginfo_t si;
	for (;;) {
		si.si_pid = 0;
		if (waitid(P_PGID, (id_t)p->pid, &si, WEXITED | WNOHANG) < 0 || !si.si_pid)
			break;
	}
	if (kill(-p->pid, 0) == 0 || errno != ESRCH)
		return false;
	return herd__cgroup_remove(&p->cg);
}

/* p is gone entirely: it leaves its scope, which may now end. */
static void finish(herd_proc *p)
{
	live_remove(p);
	scope_remove(p->scope, p);
	proc_unref(p);
}

/* The leader has exited: kill its group's leftovers, reap it, tell the
 * waiters, and drain. Runs wherever the poller runs, with no lock held. */
void herd__proc_exited(herd_proc *p)
{
	herd__rt *rt = p->rt;
	herd__mutex_lock(&p->lock);
	group_signal_locked(p, SIGKILL); /* the zombie holds the group's id */
	if (p->termed && !p->killed) {
		p->killed = true; /* nothing left to escalate */
		atomic_fetch_sub_explicit(&rt->proc.nterm, 1, mo_relaxed);
	}
	p->reaping = true;
	herd__mutex_unlock(&p->lock);
	siginfo_t si = {0};
	int rc;
	while ((rc = waitid(P_PID, (id_t)p->pid, &si, WEXITED)) < 0 && errno == EINTR)
		;
	/* ECHILD: somebody else reaped it (waitpid(-1), or SIGCHLD ignored). */
	p->status = rc < 0 ? -errno : encode_status(&si);
	if (p->pidfd >= 0) {
		herd__fd_close(rt, p->pidfd);
		p->pidfd = -1;
	}
	atomic_store_explicit(&p->exited, true, mo_release);
	herd__mutex_lock(&p->lock);
	herd__waitq_wake_all(&p->waiters);
	herd__mutex_unlock(&p->lock);
	herd_chan_close(p->done);
	if (drain(p)) {
		finish(p);
		return;
	}
	herd__mutex_lock(&rt->proc.lock);
	p->dr_next = rt->proc.draining;
	rt->proc.draining = p;
	herd__mutex_unlock(&rt->proc.lock);
}

static void on_exit_event(herd__pollw *w, uint32_t ready)
{
	(void)ready;
	herd__proc_exited((herd_proc *)((char *)w - offsetof(herd_proc, exit_w)));
}

void herd__proc_drain_all(herd__rt *rt)
{
	herd__mutex_lock(&rt->proc.lock);
	herd_proc *list = rt->proc.draining, *done = NULL;
	rt->proc.draining = NULL;
	herd__mutex_unlock(&rt->proc.lock);
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
		herd__mutex_lock(&rt->proc.lock);
		herd_proc *last = keep;
		while (last->dr_next)
			last = last->dr_next;
		last->dr_next = rt->proc.draining;
		rt->proc.draining = keep;
		herd__mutex_unlock(&rt->proc.lock);
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
	herd__mutex_lock(&rt->proc.lock);
	for (herd_proc *p = rt->proc.live_list; p; p = p->lv_next)
		cap++;
	known = malloc((cap ? cap : 1) * sizeof *known);
	for (herd_proc *p = rt->proc.live_list; known && p; p = p->lv_next)
		if (p->cg.seq) /* set before it was listed; 0: no cgroup */
			known[nknown++] = (struct known){
				p->cg.seq, p->pid,
				!atomic_load_explicit(&p->exited, mo_acquire)};
	herd__mutex_unlock(&rt->proc.lock);
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

int herd__proc_sweep(herd__rt *rt)
{
	if (!atomic_load_explicit(&rt->proc.ready, mo_acquire) || rt->proc.cg_base < 0)
		return 0;
	return sweep_once(rt);
}

/* ------------------------------------------------------------------ */
/* Scopes                                                             */
/* ------------------------------------------------------------------ */

/* SIGTERM to p's group, once; p->lock held. */
static void term_locked(herd_proc *p, int64_t now)
{
	if (p->termed)
		return;
	p->termed = true;
	p->term_at = now;
	if (p->grace < 0 || p->reaping) {
		p->killed = true;
		group_signal_locked(p, SIGKILL);
	} else {
		group_signal_locked(p, SIGTERM);
		/* The monitor sends SIGKILL when the grace has passed, whether
		 * or not anybody waits. */
		atomic_fetch_add_explicit(&p->rt->proc.nterm, 1, mo_relaxed);
	}
}

/* SIGKILL once the grace period since SIGTERM has passed; p->lock held. */
static void escalate_locked(herd_proc *p, int64_t now)
{
	if (p->termed && !p->killed && now - p->term_at >= p->grace) {
		p->killed = true;
		atomic_fetch_sub_explicit(&p->rt->proc.nterm, 1, mo_relaxed);
		group_signal_locked(p, SIGKILL);
	}
}

void herd__proc_escalate_all(herd__rt *rt)
{
	if (!atomic_load_explicit(&rt->proc.nterm, mo_relaxed))
		return;
	int64_t now = herd_now();
	herd__mutex_lock(&rt->proc.lock);
	for (herd_proc *p = rt->proc.live_list; p; p = p->lv_next) {
		herd__mutex_lock(&p->lock);
		escalate_locked(p, now);
		herd__mutex_unlock(&p->lock);
	}
	herd__mutex_unlock(&rt->proc.lock);
}

void herd__proc_cancel_locked(herd_proc *list)
{
	int64_t now = herd_now();
	for (herd_proc *p = list; p; p = p->sc_next) {
		herd__mutex_lock(&p->lock);
		term_locked(p, now);
		herd__mutex_unlock(&p->lock);
	}
}

/* Sleeps firmly (not a cancellation point) until `until`. */
static void nap(herd__worker **wp, int64_t until)
{
	herd__wait(wp, NULL, until, false);
}

/* One round of ending s's processes: SIGTERM on the first, SIGKILL once
 * a grace has passed. False when none is left. */
static bool end_round(herd_scope *s, bool first)
{
	herd__mutex *lock = herd__scope_lock(s);
	herd__mutex_lock(lock);
	herd_proc *head = *herd__scope_procs(s);
	int64_t now = herd_now();
	for (herd_proc *p = head; p; p = p->sc_next) {
		herd__mutex_lock(&p->lock);
		if (first)
			term_locked(p, now);
		escalate_locked(p, now);
		herd__mutex_unlock(&p->lock);
	}
	herd__mutex_unlock(lock);
	return head != NULL;
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
		nap(wp, herd_now() + END_POLL_NS);
	}
	/* Strays of the scope's trees that left their groups and were
	 * orphaned to us; killing one may orphan its own children, so again
	 * until a pass finds none. */
	for (int pass = 0; pass < SWEEP_PASSES && herd__proc_sweep(rt) > 0; pass++)
		nap(wp, herd_now() + END_POLL_NS);
}

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
 * registration decides who handles the exit: whoever unlinks it, under
 * the poll lock (the poller unlinks it before it runs the callback).
 */
static void exit_now(herd_proc *p)
{
	herd__rt *rt = p->rt;
	siginfo_t si;
	si.si_pid = 0;
	if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || !si.si_pid)
		return;
	herd__mutex_lock(&rt->poll.lock);
	bool mine = p->exit_w.linked;
	if (mine)
		herd__poll_detach_locked(rt, &p->exit_w);
	herd__mutex_unlock(&rt->poll.lock);
	if (mine)
		herd__proc_exited(p);
}

int herd_proc_wait(herd_proc *p, int64_t deadline)
{
	if (!p)
		return -EINVAL;
	if (atomic_load_explicit(&p->exited, mo_acquire))
		return p->status;
	herd__worker *w;
	herd__task *t;
	if (herd__current(&w, &t))
		return deadline == HERD_NOWAIT ? HERD_ETIMEDOUT : -EPERM;
	if (deadline != HERD_NOWAIT) {
		exit_now(p);
		if (atomic_load_explicit(&p->exited, mo_acquire))
			return p->status;
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
		rc = herd__wait(&w, &p->lock, deadline, true);
		herd__mutex_lock(&p->lock);
		herd__waitq_remove(&p->waiters, &wt);
		herd__mutex_unlock(&p->lock);
	}
	if (rc == 0) {
		(void)atomic_load_explicit(&p->exited, mo_acquire);
		rc = p->status;
	}
	proc_unref(p);
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

int herd_proc_kill(herd_proc *p, int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	if (!p)
		return -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	atomic_fetch_add_explicit(&p->refs, 1, mo_relaxed); /* as herd_proc_wait */
	herd__mutex_lock(&p->lock);
	term_locked(p, herd_now());
	herd__mutex_unlock(&p->lock);
	int rc;
	for (;;) {
		if (atomic_load_explicit(&p->exited, mo_acquire)) {
			rc = p->status;
			break;
		}
		int64_t now = herd_now();
		if (deadline == HERD_NOWAIT || (deadline > 0 && now >= deadline)) {
			rc = HERD_ETIMEDOUT;
			break;
		}
		herd__mutex_lock(&p->lock);
		escalate_locked(p, now);
		herd__mutex_unlock(&p->lock);
		int64_t until = now + END_POLL_NS;
		nap(&w, deadline > 0 && deadline < until ? deadline : until);
	}
	proc_unref(p);
	return rc;
}

int herd_proc_free(herd_proc *p)
{
	if (!p)
		return 0;
	if (herd__chan_busy(p->done))
		return -EBUSY;
	for (int i = 0; i < 3; i++)
		herd_proc_close_fd(p, i);
	proc_unref(p);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The runtime's side                                                 */
/* ------------------------------------------------------------------ */

void herd__proc_once(herd__rt *rt)
{
	if (atomic_load_explicit(&rt->proc.ready, mo_acquire))
		return;
	herd__mutex_lock(&rt->proc.lock);
	if (!atomic_load_explicit(&rt->proc.ready, mo_relaxed)) {
		/* Orphaned descendants come back to us, to be killed and
		 * reaped, instead of going to init. */
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
		herd__cgroup_init(rt);
		atomic_store_explicit(&rt->proc.ready, true, mo_release);
	}
	herd__mutex_unlock(&rt->proc.lock);
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

/* SIGKILL to p's group now, whatever its grace; p->lock held. */
static void kill_now_locked(herd_proc *p, int64_t now)
{
	if (p->killed)
		return;
	if (p->termed) /* SIGTERM sent: it was counted for the monitor */
		atomic_fetch_sub_explicit(&p->rt->proc.nterm, 1, mo_relaxed);
	else
		p->term_at = now;
	p->termed = p->killed = true;
	group_signal_locked(p, SIGKILL);
}

void herd__proc_end_all(herd__rt *rt, bool now)
{
	if (!atomic_load_explicit(&rt->proc.ready, mo_acquire))
		return;
	int64_t t = herd_now();
	herd__mutex_lock(&rt->proc.lock);
	for (herd_proc *p = rt->proc.live_list; p; p = p->lv_next) {
		/* A start in progress: its scope, cancelled, ends it when it
		 * joins (marking it ended now would skip that SIGTERM). */
		if (!p->pid)
			continue;
		herd__mutex_lock(&p->lock);
		if (now)
			kill_now_locked(p, t);
		else
			term_locked(p, t);
		herd__mutex_unlock(&p->lock);
	}
	herd__mutex_unlock(&rt->proc.lock);
}

bool herd__proc_end_step(herd__rt *rt, bool kill)
{
	if (!atomic_load_explicit(&rt->proc.ready, mo_acquire))
		return false;
	if (kill)
		herd__proc_end_all(rt, true);
	else
		herd__proc_escalate_all(rt);
	/* Without blocking: workers may be asleep in the poller, and its
	 * doorbell is theirs. */
	herd__poll_run(rt, 0);
	herd__proc_drain_all(rt);
	herd__mutex_lock(&rt->proc.lock);
	bool left = rt->proc.live_list != NULL;
	herd__mutex_unlock(&rt->proc.lock);
	return left;
}

void herd__proc_end_cleanup(herd__rt *rt)
{
	if (!atomic_load_explicit(&rt->proc.ready, mo_acquire))
		return;
	/* Strays of the trees that left their groups and were orphaned to
	 * us; killing one may orphan its own children, so again until a pass
	 * finds none. */
	for (int pass = 0; pass < SWEEP_PASSES && herd__proc_sweep(rt) > 0; pass++) {
		struct timespec ts = {0, END_POLL_NS};
		nanosleep(&ts, NULL);
	}
	herd__cgroup_pool_clear(rt);
}

/*
 * The end of herd_run: every task has ended and the workers have stopped;
 * the root scope's processes are ended here, on the supervisor's thread,
 * which handles their exits itself. A signal that arrives meanwhile is
 * dispatched: once the trees are gone the process dies of a fatal one
 * (signal.c), and a second one kills what is left at once.
 */
void herd__proc_fini(herd__rt *rt)
{
	if (atomic_load_explicit(&rt->proc.ready, mo_acquire)) {
		herd__proc_end_all(rt, false);
		while (herd__proc_end_step(rt, false)) {
			herd__signal_dispatch(rt, herd_now());
			struct timespec ts = {0, END_POLL_NS};
			nanosleep(&ts, NULL);
		}
		herd__proc_end_cleanup(rt);
		herd__orphans_reap(rt);
		prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
	}
	int fd = atomic_load_explicit(&rt->proc.null_fd, mo_relaxed);
	if (fd >= 0)
		herd__fd_close(rt, fd);
	herd__cgroup_fini(rt);
}
