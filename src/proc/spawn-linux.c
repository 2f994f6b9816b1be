/*
 * spawn-linux.c - the Linux side of starting a child (see proc.c for the
 * whole protocol): the vfork-style clone (clone3 into its cgroup where the
 * kernel has it, with a pidfd), and the child's code up to exec. The child
 * shares the parent's memory: it makes raw system calls only, and takes no
 * lock. No lock is held across a clone.
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

/* The child's stack: it runs a few dozen lines of system calls. */
#define CHILD_STACK (16 * 1024)

extern char **environ;

/* ------------------------------------------------------------------ */
/* The child                                                          */
/* ------------------------------------------------------------------ */

/* The kernel's struct sigaction starts with the handler on every
 * architecture; the rest is zero for SIG_DFL. */
struct ksigaction {
	uintptr_t handler;
	unsigned long words[3];
};

#define NO_SANITIZE \
	__attribute__((no_sanitize("address", "thread", "undefined"), noinline))

NO_SANITIZE static int child_fail(struct herd__child_args *a, long rc)
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
	struct herd__child_args *a = arg;
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
	 * that ignores SIGTERM would hold every cancellation for its grace.
	 * One call a signal, which defaults it and tells what it was: an
	 * ignored one kept is ignored again (which, as its delivery would,
	 * drops an instance pending since the clone). */
	for (int sig = 1; sig <= HERD__NSIG; sig++) {
		struct ksigaction old, dfl = {0};
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (!a->keep_signals) {
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, 8);
		} else if (syscall(SYS_rt_sigaction, sig, &dfl, &old, 8) == 0 &&
			   old.handler == (uintptr_t)SIG_IGN) {
			syscall(SYS_rt_sigaction, sig, &old, NULL, 8);
		}
	}
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &a->mask, NULL, 8);
	syscall(SYS_execve, a->path, a->argv, a->envp);
	return child_fail(a, -1);
}


struct clone_args3 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal;
	uint64_t stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

#define CLONE_INTO_CGROUP_ 0x200000000ULL

/* The clone itself: clone3, straight into the child's cgroup, where the
 * kernel has it (the child is born there, and moving it in later costs a
 * synchronisation of the whole cgroup tree); else clone(), and the child
 * joins its cgroup itself. Returns the pid or -errno; *fd the pidfd. */
static int do_clone(herd__rt *rt, struct herd__child_args *a, herd__cgroup *cg, char *stack,
		    int *fd)
{
	a->cg_procs = -1;
	if (!atomic_load_explicit(&rt->proc->no_clone3, mo_relaxed)) {
		bool into = cg->used && !atomic_load_explicit(&rt->proc->no_into_cgroup,
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
			atomic_store_explicit(&rt->proc->no_clone3, true, mo_relaxed);
		else if (rc == -EINVAL || rc == -E2BIG)
			atomic_store_explicit(&rt->proc->no_into_cgroup, true, mo_relaxed);
		else
			herd__cgroup_abandon(cg); /* cannot start in it: without */
		return do_clone(rt, a, cg, stack, fd); /* once more, without */
	}
	if (cg->used)
		a->cg_procs = herd__cgroup_procs_fd(cg);
	int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
	pid_t pid;
	bool with_pidfd = !atomic_load_explicit(&rt->proc->no_clone_pidfd, mo_relaxed);
	if (!with_pidfd)
		pid = clone(child_main, stack + CHILD_STACK, flags, a);
	else
		pid = clone(child_main, stack + CHILD_STACK, flags | CLONE_PIDFD, a, fd);
	/* Linux < 5.2 (or qemu-user): every clone that tried CLONE_PIDFD
	 * tries again without, not only the first to notice. */
	if (pid < 0 && errno == EINVAL && *fd < 0 && with_pidfd) {
		atomic_store_explicit(&rt->proc->no_clone_pidfd, true, mo_relaxed);
		pid = clone(child_main, stack + CHILD_STACK, flags, a);
	}
	return pid < 0 ? -errno : pid;
}

/* Runs the clone. Returns the child's pid, with its pidfd in *pidfd, or a
 * negative code (the child's exec error, after reaping it). */
int herd__proc_spawn(herd__worker *w, struct herd__child_args *a, herd__cgroup *cg, int *pidfd)
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
	a->ppid = rt->proc->pid;
	/* Until a child has shown that it shares our memory (Valgrind, for
	 * one, turns the vfork into a fork), exec errors also come through a
	 * close-on-exec pipe, as after a fork: end of file means the exec. */
	int ep[2] = {-1, -1};
	a->err_fd = -1;
	if (!atomic_load_explicit(&rt->proc->vm_shared, mo_relaxed)) {
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
			atomic_store_explicit(&rt->proc->vm_shared, true, mo_relaxed);
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
		return a->err == EMFILE || a->err == ENFILE ? HERD__CHILD_EMFILE : -a->err;
	}
	*pidfd = fd;
	return pid;
}

