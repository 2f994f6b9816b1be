/*
 * orphan.c - reaping the orphans that come to herd because it is a child
 * subreaper.
 *
 * Why herd is a subreaper: a descendant of a child herd started, orphaned
 * when its parent dies, comes back to herd rather than to init, so herd
 * can reap it when it has killed it, even where init does not reap (a
 * container whose first process is not an init), and a scope's end never
 * waits on zombies nobody will reap (proc.c). The price: orphans of
 * processes the program started by other means (system("cmd &"), a fork
 * of its own) come to herd too, and nobody else will reap them.
 *
 * Telling them from the program's own children. The kernel gives an
 * orphan to the first live thread of its subreaper, the thread-group
 * leader; a child belongs to the thread that forked it. herd's children
 * are forked by its workers. When herd_run is called by the leader (the
 * main thread, the usual case), that thread runs the supervisor and forks
 * nothing: the children it gains during the run are orphans. So the
 * supervisor reaps, now and then, the exited children of its own thread
 * (waitid with __WNOTHREAD) but for those it had when herd_run started,
 * which are the program's. When herd_run is called by another thread,
 * the leader may be the program's and fork: herd then reaps only the
 * orphans it can tell as its own (proc.c's drains and sweeps).
 *
 * One mistake remains possible, and is documented in herd.h: a child
 * forked by a thread of the program that then exits passes to the leader
 * too, and if it exits during the run herd reaps it.
 *
 * Reading /proc costs; a waitid that waits for nothing (WNOWAIT) tells at
 * once, in the usual case, that there is nothing to read: no child at all
 * when herd_run starts, no exited child when nothing is kept.
 *
 * No lock: the state is the supervisor's.
 */
#define _GNU_SOURCE 1
#include "proc/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The children of the calling thread, from /proc, into *out (malloc'd);
 * returns how many, or -1 if they could not be read. */
static long thread_children(pid_t **out)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)syscall(SYS_gettid));
	char *buf = herd__os_read_file(AT_FDCWD, path);
	*out = NULL;
	if (!buf)
		return -1;
	size_t n = 0, cap = 0;
	long rc = herd__os_parse_pids(buf, out, &n, &cap);
	free(buf);
	if (rc < 0) { /* out of memory: a part is no list */
		free(*out);
		*out = NULL;
	}
	return rc;
}

/* What a waitid that takes nothing (WNOWAIT) finds among the calling
 * thread's children of the kinds `flags` names: -1 no child at all, 0
 * children but none in the states it names, 1 one in them (or an error:
 * the caller then looks in /proc). */
static int peek_children(int flags)
{
	siginfo_t si;
	si.si_pid = 0;
	if (waitid(P_ALL, 0, &si, flags | WNOHANG | WNOWAIT | __WNOTHREAD) < 0)
		return errno == ECHILD ? -1 : 1;
	return si.si_pid != 0;
}

static bool contains(const pid_t *a, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] == pid)
			return true;
	return false;
}

void herd__orphans_init(herd__rt *rt)
{
	rt->proc->orphan.keep = NULL;
	rt->proc->orphan.nkeep = 0;
	rt->proc->orphan.leader = syscall(SYS_gettid) == getpid();
	if (!rt->proc->orphan.leader)
		return;
	if (peek_children(WEXITED | __WALL) < 0)
		return; /* no child of any kind: nothing to keep */
	long n = thread_children(&rt->proc->orphan.keep);
	if (n < 0) {
		rt->proc->orphan.leader = false; /* cannot tell: reap nothing */
		rt->proc->orphan.keep = NULL;
		return;
	}
	rt->proc->orphan.nkeep = (size_t)n;
}

void herd__orphans_fini(herd__rt *rt)
{
	free(rt->proc->orphan.keep);
	rt->proc->orphan.keep = NULL;
	rt->proc->orphan.nkeep = 0;
}

int herd__orphans_reap(herd__rt *rt)
{
	if (!rt->proc->orphan.leader || !atomic_load_explicit(&rt->proc->ready, mo_acquire))
		return 0;
	/* Nothing kept, so nothing to forget: only a child that has exited,
	 * of the kind the waitid below reaps, is of interest. */
	if (!rt->proc->orphan.nkeep && peek_children(WEXITED) <= 0)
		return 0;
	pid_t *kids;
	long n = thread_children(&kids);
	if (n < 0)
		return 0;
	/* The program's own children that have gone are no longer kept: a
	 * later process with the same number is not one of them. */
	size_t k = 0;
	for (size_t i = 0; i < rt->proc->orphan.nkeep; i++)
		if (contains(kids, (size_t)n, rt->proc->orphan.keep[i]))
			rt->proc->orphan.keep[k++] = rt->proc->orphan.keep[i];
	rt->proc->orphan.nkeep = k;
	int reaped = 0;
	for (long i = 0; i < n; i++) {
		if (contains(rt->proc->orphan.keep, rt->proc->orphan.nkeep, kids[i]))
			continue;
		/* Only a child of this thread: a number reused since by a
		 * child of another thread is not touched. */
		siginfo_t si;
		si.si_pid = 0;
		if (waitid(P_PID, (id_t)kids[i], &si, WEXITED | WNOHANG | __WNOTHREAD) == 0 &&
		    si.si_pid)
			reaped++;
	}
	free(kids);
	return reaped;
}
