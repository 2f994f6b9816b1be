/*
 * cgroup.c - a cgroup v2 per child process, where one can be made: killing
 * it (cgroup.kill) reaches every descendant, including those that left the
 * child's process group with setsid.
 *
 * Setup (once per runtime, herd__cgroup_init): the cgroup2 mount is found
 * where systems mount it (/sys/fs/cgroup, or /sys/fs/cgroup/unified beside
 * cgroup v1), else in /proc/self/mountinfo, and the process's own cgroup in
 * /proc/self/cgroup;
 * if a directory can be made there (and removed), children get cgroups in
 * it, named herd-<pid>-<n>; the probe, herd-<pid>-1, is kept for the first
 * child. HERD_CGROUP=0 turns this off. Nothing here is
 * fatal: a child whose cgroup cannot be made runs without one.
 *
 * Stale directories, left by herd processes that died without cleaning
 * up, are removed at setup (cgroup-stale.c).
 *
 * Per child: the parent makes the directory (or takes an empty one from
 * the pool) and opens it; clone3 starts the child in it (CLONE_INTO_CGROUP),
 * or, on kernels without, the child writes "0" to its cgroup.procs before
 * exec (proc.c). To end the tree, the pids it holds are recorded
 * (descendants reparented to us must be reaped later, and their zombies
 * are no longer listed) and cgroup.kill is written. A cgroup found empty
 * when its child exited goes back to the pool (up to HERD__CG_POOL);
 * otherwise it is removed once empty, and the recorded pids that were ours
 * are reaped. The pool is removed with the runtime.
 *
 * The hot cgroup. Opening a cgroup's directory at each start and its
 * cgroup.procs at each exit (to tell whether it is empty) costs four
 * system calls and two path lookups per child. One cgroup, the first made
 * (rt->proc->cg_hot), keeps both descriptors open from one child to the
 * next while it goes round through the pool: a program that runs its
 * children one at a time uses only it. The runtime owns the two
 * descriptors (in herd's count); when that cgroup is removed (something
 * was left in it) an empty one takes its place at once, so the count
 * stays the same, and they are closed with the pool. A full pool makes
 * room for it, so that it is not removed for want of a place.
 *
 * Locks: proc.cg_lock protects the pool and cg_hot (a leaf). A
 * herd__cgroup belongs to one proc, and so do the hot descriptors while
 * the hot cgroup is out of the pool; the base directory is set before the
 * first child and changes only at the end, to -1 under cg_lock, when no
 * task runs (a worker that has ended its loop may still clear the pool
 * then).
 */
#define _GNU_SOURCE 1
#include "proc/proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* statfs's f_type of a cgroup2 file system (linux/magic.h). */
#define CGROUP2_MAGIC 0x63677270

/* The cgroup2 mount point, from mountinfo; 0 or -ENOENT. */
static int find_mount(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -ENOENT;
	char line[4096];
	int rc = -ENOENT;
	while (fgets(line, sizeof line, f)) {
		/* id parent major:minor root mountpoint options ... - fstype */
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		char *p = line;
		for (int field = 0; field < 4 && p; field++)
			p = strchr(p + 1, ' ');
		if (!p)
			continue;
		char *end = strchr(++p, ' ');
		if (!end || (size_t)(end - p) >= size)
			continue;
		memcpy(buf, p, (size_t)(end - p));
		buf[end - p] = 0;
		rc = 0;
		break;
	}
	fclose(f);
	return rc;
}

/* The process's own cgroup v2 path ("0::/path"), read by lines; 0 or
 * -ENOENT. */
__attribute__((noinline)) static int own_path_slow(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -ENOENT;
	char line[4096];
	int rc = -ENOENT;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = 0;
		if (strlen(line + 3) < size) {
			strcpy(buf, line + 3);
			rc = 0;
		}
		break;
	}
	fclose(f);
	return rc;
}

/* The same in one read, the usual case (seq_file gives the file whole when
 * it fits): 0, -ENOENT, or -E2BIG for a file that fills the buffer (it may
 * not have been given whole: own_path_slow then reads it, in a frame of
 * its own, so that the two buffers are never on the stack at once). */
__attribute__((noinline)) static int own_path(char *buf, size_t size)
{
	char text[2048];
	ssize_t n = herd__os_read_small(AT_FDCWD, "/proc/self/cgroup", text, sizeof text);
	if (n <= 0)
		return -ENOENT;
	if ((size_t)n >= sizeof text - 1)
		return -E2BIG;
	for (char *line = text; *line;) {
		char *end = strchrnul(line, '\n');
		if (strncmp(line, "0::", 3) == 0) {
			size_t len = (size_t)(end - line) - 3;
			if (len >= size)
				return -ENOENT;
			memcpy(buf, line + 3, len);
			buf[len] = 0;
			return 0;
		}
		line = *end ? end + 1 : end;
	}
	return -ENOENT;
}

/* The directory of the process's own cgroup, opened (O_PATH), or -1.
 * The cgroup2 mount is looked for where systems put it (a statfs each)
 * before mountinfo, whose reading costs more than the rest of the setup.
 * Not inlined: its buffers must be off the stack (a task's, when the first
 * process start sets cgroups up) before remove_stale runs. */
__attribute__((noinline)) static int open_base(void)
{
	static const char *const usual[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
	char mnt[1024], path[2048], dir[3100];
	int rc = own_path(path, sizeof path);
	if (rc == -E2BIG)
		rc = own_path_slow(path, sizeof path);
	if (rc)
		return -1;
	for (size_t i = 0; i < sizeof usual / sizeof *usual; i++) {
		struct statfs sf;
		if (statfs(usual[i], &sf) == 0 && sf.f_type == CGROUP2_MAGIC) {
			snprintf(dir, sizeof dir, "%s%s", usual[i], path);
			int fd = open(dir, O_DIRECTORY | O_CLOEXEC | O_PATH);
			if (fd >= 0)
				return fd;
		}
	}
	if (find_mount(mnt, sizeof mnt))
		return -1;
	snprintf(dir, sizeof dir, "%s%s", mnt, path);
	return open(dir, O_DIRECTORY | O_CLOEXEC | O_PATH);
}

static void set_name(herd__cgroup *cg, uint64_t seq)
{
	cg->seq = seq;
	snprintf(cg->name, sizeof cg->name, "herd-%d-%llu", (int)cg->rt->proc->pid,
		 (unsigned long long)seq);
}

void herd__cgroup_init(herd__rt *rt)
{
	rt->proc->cg_base = -1;
	const char *env = getenv("HERD_CGROUP");
	if (env && strcmp(env, "0") == 0)
		return;
	int base = open_base();
	if (base < 0)
		return;
	/* First: a probe left with our name would fail ours, and stale
	 * directories may hold the cgroup's limit on descendants. */
	herd__cgroup_remove_stale(base);
	/* The probe is the first child's cgroup: made, checked, and kept in
	 * the pool (a mkdir and an rmdir fewer for a run of one process). */
	herd__cgroup probe = {.rt = rt};
	set_name(&probe, 1);
	int rc = mkdirat(base, probe.name, 0755);
	if (rc < 0 && errno == EEXIST && unlinkat(base, probe.name, AT_REMOVEDIR) == 0)
		rc = mkdirat(base, probe.name, 0755); /* an earlier process with our pid */
	if (rc < 0) {
		close(base);
		return;
	}
	/* cgroup.kill came with Linux 5.14: without it, no use. */
	char kill_file[96];
	snprintf(kill_file, sizeof kill_file, "%s/cgroup.kill", probe.name);
	if (faccessat(base, kill_file, W_OK, 0) != 0) {
		unlinkat(base, probe.name, AT_REMOVEDIR);
		close(base);
		return;
	}
	atomic_store_explicit(&rt->proc->cg_seq, 1, mo_relaxed);
	rt->proc->cg_pool[rt->proc->cg_npool++] = 1;
	rt->proc->cg_base = base;
	herd__fd_track(rt, base);
}


/* Gives up the hot descriptors if cgroup seq (0: any) holds them; cg_lock
 * held. Their numbers go to fds, for the caller to close once it has let
 * go of the leaf lock (a close may wake a task waiting for a descriptor). */
static void hot_drop_locked(herd__rt *rt, uint64_t seq, int fds[2])
{
	fds[0] = fds[1] = -1;
	if (!rt->proc->cg_hot || (seq && rt->proc->cg_hot != seq))
		return;
	fds[0] = rt->proc->cg_hot_dir;
	fds[1] = rt->proc->cg_hot_procs;
	rt->proc->cg_hot = 0;
}

static void hot_close(herd__rt *rt, const int fds[2])
{
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			herd__fd_close(rt, fds[i]);
}

/* The cgroup is gone (or given up): if it is the hot one, its descriptors
 * are closed, and, if `move`, an empty cgroup from the pool (or a new one)
 * becomes hot in its place and goes back to the pool, so that the number
 * of descriptors the runtime keeps stays the same. */
static void hot_release(herd__cgroup *cg, bool move)
{
	if (!cg->hot)
		return;
	herd__rt *rt = cg->rt;
	int fds[2];
	herd__mutex_lock(&rt->proc->cg_lock);
	hot_drop_locked(rt, cg->seq, fds);
	herd__mutex_unlock(&rt->proc->cg_lock);
	cg->hot = false;
	cg->dir_fd = cg->read_fd = -1;
	herd__cgroup next;
	if (move && fds[0] >= 0 && herd__cgroup_make(rt, &next)) {
		herd__cgroup_started(&next);
		next.empty = true;
		herd__cgroup_remove(&next);
	}
	hot_close(rt, fds);
}

/* Makes cg, just opened, the hot cgroup if there is none: its cgroup.procs
 * is opened for reading, and both descriptors are kept. */
static void hot_claim(herd__cgroup *cg)
{
	herd__rt *rt = cg->rt;
	herd__mutex_lock(&rt->proc->cg_lock);
	bool none = !rt->proc->cg_hot;
	herd__mutex_unlock(&rt->proc->cg_lock);
	if (!none)
		return;
	int fd = openat(cg->dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	herd__mutex_lock(&rt->proc->cg_lock);
	bool claimed = !rt->proc->cg_hot; /* another start may have been first */
	if (claimed) {
		rt->proc->cg_hot = cg->seq;
		rt->proc->cg_hot_dir = cg->dir_fd;
		rt->proc->cg_hot_procs = fd;
	}
	herd__mutex_unlock(&rt->proc->cg_lock);
	if (!claimed) {
		close(fd);
		return;
	}
	herd__fd_track(rt, cg->dir_fd);
	herd__fd_track(rt, fd);
	cg->hot = true;
	cg->read_fd = fd;
}

/* Removes the pool's directories and gives up the hot descriptors (nothing
 * runs in a cgroup of ours now, so the hot one is in the pool, or gone);
 * cg_lock held, fds as hot_drop_locked's. cg_base is read under the lock:
 * a worker whose loop has ended clears the pool (herd__proc_worker_end)
 * while the supervisor may be in herd__cgroup_fini, which sets it to -1
 * under the lock before it closes it. */
static void pool_clear_locked(herd__rt *rt, int fds[2])
{
	herd__cgroup cg = {.rt = rt};
	for (size_t i = 0; i < rt->proc->cg_npool && rt->proc->cg_base >= 0; i++) {
		set_name(&cg, rt->proc->cg_pool[i]);
		unlinkat(rt->proc->cg_base, cg.name, AT_REMOVEDIR);
	}
	rt->proc->cg_npool = 0;
	hot_drop_locked(rt, 0, fds);
}

void herd__cgroup_pool_clear(herd__rt *rt)
{
	int fds[2];
	herd__mutex_lock(&rt->proc->cg_lock);
	pool_clear_locked(rt, fds);
	herd__mutex_unlock(&rt->proc->cg_lock);
	hot_close(rt, fds);
}

void herd__cgroup_fini(herd__rt *rt)
{
	int fds[2];
	herd__mutex_lock(&rt->proc->cg_lock);
	pool_clear_locked(rt, fds);
	int base = rt->proc->cg_base;
	rt->proc->cg_base = -1;
	herd__mutex_unlock(&rt->proc->cg_lock);
	hot_close(rt, fds); /* not under the leaf lock */
	if (base >= 0)
		herd__fd_close(rt, base);
}

int herd__cgroup_make(herd__rt *rt, herd__cgroup *cg)
{
	memset(cg, 0, sizeof *cg);
	cg->procs_fd = cg->dir_fd = cg->read_fd = -1;
	cg->rt = rt;
	if (rt->proc->cg_base < 0)
		return 0;
	/* An empty one from the pool saves a mkdir and an rmdir, each a
	 * good part of a process start. */
	uint64_t seq = 0;
	herd__mutex_lock(&rt->proc->cg_lock);
	if (rt->proc->cg_npool)
		seq = rt->proc->cg_pool[--rt->proc->cg_npool];
	if (seq && seq == rt->proc->cg_hot) { /* open already */
		cg->hot = true;
		cg->dir_fd = rt->proc->cg_hot_dir;
		cg->read_fd = rt->proc->cg_hot_procs;
	}
	herd__mutex_unlock(&rt->proc->cg_lock);
	if (cg->hot) {
		set_name(cg, seq);
		cg->used = true;
		return 1;
	}
	if (seq) {
		set_name(cg, seq);
	} else {
		set_name(cg, atomic_fetch_add_explicit(&rt->proc->cg_seq, 1, mo_relaxed) + 1);
		int rc = mkdirat(rt->proc->cg_base, cg->name, 0755);
		/* Left by an earlier process with our pid that died: if it
		 * is empty, it goes, and the name is ours. */
		if (rc < 0 && errno == EEXIST &&
		    unlinkat(rt->proc->cg_base, cg->name, AT_REMOVEDIR) == 0)
			rc = mkdirat(rt->proc->cg_base, cg->name, 0755);
		if (rc < 0) {
			cg->seq = 0;
			return 0; /* the child runs without one */
		}
	}
	cg->dir_fd = openat(rt->proc->cg_base, cg->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg->dir_fd < 0) {
		unlinkat(rt->proc->cg_base, cg->name, AT_REMOVEDIR);
		cg->seq = 0;
		return 0;
	}
	cg->used = true;
	hot_claim(cg);
	return 1;
}

int herd__cgroup_procs_fd(herd__cgroup *cg)
{
	if (cg->procs_fd < 0 && cg->dir_fd >= 0)
		cg->procs_fd = openat(cg->dir_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	return cg->procs_fd;
}

void herd__cgroup_abandon(herd__cgroup *cg)
{
	herd__cgroup_started(cg);
	hot_release(cg, false);
	if (cg->used)
		unlinkat(cg->rt->proc->cg_base, cg->name, AT_REMOVEDIR);
	cg->used = false;
}

void herd__cgroup_started(herd__cgroup *cg)
{
	if (cg->procs_fd >= 0)
		close(cg->procs_fd);
	if (cg->dir_fd >= 0 && !cg->hot) /* the hot one's stays, the runtime's */
		close(cg->dir_fd);
	cg->procs_fd = cg->dir_fd = -1;
}

/* Adds the pids listed in the cgroup to cg->pids. */
static void record_pids(herd__cgroup *cg)
{
	/* Small on the stack: this runs on task stacks too (herd_proc_wait).
	 * A first read tells an empty cgroup, the common case, at once. */
	char f[sizeof cg->name + 16], first[64];
	int fd = cg->read_fd; /* the hot cgroup's, open */
	if (fd < 0) {
		snprintf(f, sizeof f, "%s/cgroup.procs", cg->name);
		fd = openat(cg->rt->proc->cg_base, f, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return;
	char *buf = NULL;
	if (pread(fd, first, sizeof first, 0) > 0 && lseek(fd, 0, SEEK_SET) == 0)
		buf = herd__os_read_fd(fd); /* again, whole */
	if (fd != cg->read_fd)
		close(fd);
	if (!buf)
		return;
	/* Appended, then those recorded already are dropped (on a short
	 * allocation, what could be is kept). */
	size_t k = cg->npids;
	herd__os_parse_pids(buf, &cg->pids, &cg->npids, &cg->cap);
	free(buf);
	for (size_t i = k; i < cg->npids; i++) {
		bool seen = false;
		for (size_t j = 0; j < k && !seen; j++)
			seen = cg->pids[j] == cg->pids[i];
		if (!seen)
			cg->pids[k++] = cg->pids[i];
	}
	cg->npids = k;
}

void herd__cgroup_kill(herd__cgroup *cg)
{
	if (!cg->used)
		return;
	record_pids(cg);
	if (!cg->npids) {
		/* Nothing alive in it, so nothing can come into it: it can go
		 * back to the pool as it is. */
		cg->empty = true;
		return;
	}
	cg->empty = false;
	atomic_store_explicit(&cg->rt->proc->strays, true, mo_relaxed); /* monitor */
	char f[sizeof cg->name + 16];
	snprintf(f, sizeof f, "%s/cgroup.kill", cg->name);
	int fd = openat(cg->rt->proc->cg_base, f, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = write(fd, "1", 1);
		(void)r;
		close(fd);
	}
}

void herd__cgroup_signal(herd__cgroup *cg, int sig, pid_t pgid)
{
	if (!cg->used)
		return;
	if (sig == SIGKILL) {
		herd__cgroup_kill(cg);
		return;
	}
	char f[sizeof cg->name + 16];
	snprintf(f, sizeof f, "%s/cgroup.procs", cg->name);
	char *buf = herd__os_read_file(cg->rt->proc->cg_base, f);
	pid_t *pids = NULL;
	size_t n = 0, cap = 0;
	if (buf)
		herd__os_parse_pids(buf, &pids, &n, &cap);
	free(buf);
	/* Members listed a moment ago: one may have exited since, and its
	 * number gone to another process; as with any kill by number, the
	 * window is the time between the read and the kill. */
	for (size_t i = 0; i < n; i++)
		if (getpgid(pids[i]) != pgid) /* the group had it already */
			kill(pids[i], sig);
	free(pids);
}

bool herd__cgroup_remove(herd__cgroup *cg)
{
	if (!cg->used)
		return true;
	herd__rt *rt = cg->rt;
	if (cg->empty && !cg->npids) {
		uint64_t out = 0; /* the one the hot cgroup takes the place of */
		herd__mutex_lock(&rt->proc->cg_lock);
		bool kept = rt->proc->cg_npool < HERD__CG_POOL || cg->hot;
		if (rt->proc->cg_npool == HERD__CG_POOL && cg->hot)
			out = rt->proc->cg_pool[--rt->proc->cg_npool];
		if (kept)
			rt->proc->cg_pool[rt->proc->cg_npool++] = cg->seq;
		herd__mutex_unlock(&rt->proc->cg_lock);
		if (out) {
			herd__cgroup gone = {.rt = rt};
			set_name(&gone, out);
			unlinkat(rt->proc->cg_base, gone.name, AT_REMOVEDIR);
		}
		if (kept) {
			cg->used = cg->hot = false;
			cg->read_fd = -1;
			return true;
		}
	}
	if (unlinkat(cg->rt->proc->cg_base, cg->name, AT_REMOVEDIR) < 0 && errno == EBUSY) {
		herd__cgroup_kill(cg); /* something moved in or forked late */
		return false;
	}
	hot_release(cg, true); /* gone: its descriptors are of no more use */
	/* Empty: what was in it has exited; reap those that came back to
	 * us (ECHILD for the others, reaped by their own parents). */
	for (size_t i = 0; i < cg->npids; i++) {
		siginfo_t si;
		waitid(P_PID, (id_t)cg->pids[i], &si, WEXITED | WNOHANG);
	}
	free(cg->pids);
	cg->pids = NULL;
	cg->npids = cg->cap = 0;
	cg->used = false;
	return true;
}
