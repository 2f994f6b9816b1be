/*
 * cgroup.c - a cgroup v2 per child process, where one can be made: killing
 * it (cgroup.kill) reaches every descendant, including those that left the
 * child's process group with setsid.
 *
 * Setup (once per runtime, herd__cgroup_init): the cgroup2 mount is found
 * in /proc/self/mountinfo and the process's own cgroup in /proc/self/cgroup;
 * if a directory can be made there (and removed), children get cgroups in
 * it, named herd-<pid>-<n>. HERD_CGROUP=0 turns this off. Nothing here is
 * fatal: a child whose cgroup cannot be made runs without one.
 *
 * Stale directories (remove_stale, at setup, before the probe). A herd
 * process that died without cleaning up (SIGKILL, a crash, _exit) leaves
 * its directories behind for ever, with whatever survived in them (only
 * its direct children get a parent-death signal). So setup reads the base
 * directory once and, for the names herd makes (herd-<pid>-<n>, and
 * herd-<pid>-probe), asks /proc whether that process is gone: no process
 * has the pid, or the one that has it started more than a second after the
 * directory was made (the pid was reused). In doubt, a directory is left:
 * other herd processes, alive, have theirs beside ours. A stale one is
 * killed (cgroup.kill), waited for until cgroup.events says it is empty
 * (1 s in all, on the calling thread; one that does not empty is left for
 * a later run), and removed, with any cgroups under it.
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
 * Locks: proc.cg_lock protects the pool (a leaf). A herd__cgroup belongs
 * to one proc, and the base directory is set before the first child and
 * never changes.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* The process's own cgroup v2 path ("0::/path"); 0 or -ENOENT. */
static int own_path(char *buf, size_t size)
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

/* The directory of the process's own cgroup, opened (O_PATH), or -1.
 * Not inlined: its buffers must be off the stack (a task's, when the first
 * process start sets cgroups up) before remove_stale runs. */
__attribute__((noinline)) static int open_base(void)
{
	char mnt[1024], path[2048], dir[3100];
	if (find_mount(mnt, sizeof mnt) || own_path(path, sizeof path))
		return -1;
	snprintf(dir, sizeof dir, "%s%s", mnt, path);
	return open(dir, O_DIRECTORY | O_CLOEXEC | O_PATH);
}

/* Stale directories --------------------------------------------------- */

/* A process that started less than this after a directory was made may
 * have made it: its directory is left. */
#define STALE_SLACK HERD_SEC
/* How long, in all, the processes of stale directories get to die. */
#define STALE_WAIT HERD_SEC
/* Stale directories waited for at once; more are waited for in turns. */
#define STALE_BATCH 16
/* How deep the cgroups under a stale directory are removed. */
#define STALE_DEPTH 8

/* A stale directory killed, to be removed once empty. */
struct stale {
	int fd;         /* the directory judged stale */
	ino_t ino;      /* its cgroup id, never reused: to check the name */
	char name[40];  /* a herd name: at most 5 + 10 + 1 + 20 characters */
};

/* Skips a number as printf's %d or %llu writes it (no sign, no leading
 * zero, not 0) of at most `max` digits; the end, or NULL. */
static const char *skip_number(const char *s, int max, long long *value)
{
	long long v = 0;
	int n = 0;
	if (*s < '1' || *s > '9')
		return NULL;
	for (; *s >= '0' && *s <= '9'; s++, n++)
		if (n < 18)
			v = v * 10 + (*s - '0');
	if (n > max)
		return NULL;
	*value = v;
	return s;
}

/* The pid in a name of a form herd makes, herd-<pid>-<n> (set_name) or
 * herd-<pid>-probe (herd__cgroup_init); 0 for any other name. */
static pid_t herd_name_pid(const char *name)
{
	long long pid, n;
	const char *p = strncmp(name, "herd-", 5) == 0 ? skip_number(name + 5, 10, &pid) : NULL;
	if (!p || *p != '-' || pid > INT_MAX)
		return 0;
	p++;
	if (strcmp(p, "probe") != 0 && (!(p = skip_number(p, 20, &n)) || *p))
		return 0;
	return (pid_t)pid;
}

/* When process pid started, in ns on the boot clock (truncated to clock
 * ticks, so never later than it did): 1, or 0 if there is no process
 * with that pid, or -1 if it cannot be told. */
static int started_at(pid_t pid, int64_t *at)
{
	char path[32], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1; /* ESRCH: it has just exited; a later run sees it */
	buf[n] = 0;
	/* Field 22, the start in clock ticks since boot. The fields from the
	 * third on follow the last ')', as the name may hold any. */
	char *p = strrchr(buf, ')'), *end;
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -1;
	unsigned long long ticks = strtoull(p + 1, &end, 10);
	long hz = sysconf(_SC_CLK_TCK);
	if (end == p + 1 || hz <= 0)
		return -1;
	*at = (int64_t)(ticks / (unsigned long long)hz) * HERD_SEC +
	      (int64_t)(ticks % (unsigned long long)hz) * HERD_SEC / hz;
	return 1;
}

static int64_t ts_ns(struct timespec ts)
{
	return (int64_t)ts.tv_sec * HERD_SEC + ts.tv_nsec;
}

/* Whether a directory with change time ctime, named after a process that
 * started at `started` (as started_at), was made before that process
 * started, by more than the slack: then its pid was reused since, and the
 * process that made it is gone. ctime is on the wall clock, converted to
 * the boot clock with today's offset between the two. kernfs sets ctime,
 * from the coarse clock (up to a tick, a few ms, behind), when it makes
 * the directory's node, or its inode later (after the inode was evicted),
 * or adds a node in it: never earlier than the directory was made but for
 * that tick, so an error makes it look younger, which spares it. (The
 * wall clock set forward by more than the slack since the directory was
 * made would make it look older.) */
static bool made_before(struct timespec ctime, int64_t started)
{
	struct timespec real, boot;
	if (clock_gettime(CLOCK_REALTIME, &real) < 0 || clock_gettime(CLOCK_BOOTTIME, &boot) < 0)
		return false;
	int64_t made = ts_ns(ctime) - (ts_ns(real) - ts_ns(boot));
	return started > made + STALE_SLACK;
}

/* Removes the cgroup `name` in directory parent with those under it, the
 * deepest first (a child of the process that died may have made some):
 * true if it is gone. */
static bool remove_tree(int parent, const char *name, int depth)
{
	if (unlinkat(parent, name, AT_REMOVEDIR) == 0)
		return true;
	if (errno != EBUSY || depth == 0)
		return false;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if ((e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) && strcmp(e->d_name, ".") &&
		    strcmp(e->d_name, ".."))
			remove_tree(dirfd(d), e->d_name, depth - 1);
	closedir(d);
	return unlinkat(parent, name, AT_REMOVEDIR) == 0;
}

/* Removes s's directory with what is under it, if the name still is
 * that directory. */
static void remove_stale_dir(int base, const struct stale *s)
{
	struct stat st;
	if (fstatat(base, s->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == s->ino)
		remove_tree(base, s->name, STALE_DEPTH);
}

/* 1 if cgroup.events of directory fd says that no process is left in it
 * or under it, 0 if some are, -1 if it cannot be read (it was removed). */
static int emptied(int fd)
{
	char buf[256];
	int ev = openat(fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
	if (ev < 0)
		return -1;
	ssize_t n = read(ev, buf, sizeof buf - 1);
	close(ev);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strstr(buf, "populated 0") ? 1 : strstr(buf, "populated 1") ? 0 : -1;
}

/* Waits, until `deadline`, for the killed stale directories in s[0..n) to
 * empty, and removes them; those that do not empty in time are left for a
 * later run. */
static void finish_stale(int base, struct stale *s, size_t n, int64_t deadline)
{
	long nap = 250000; /* ns: most are empty after the first */
	for (;;) {
		size_t left = 0;
		for (size_t i = 0; i < n; i++) {
			int e = emptied(s[i].fd);
			if (e == 0) {
				s[left++] = s[i];
				continue;
			}
			if (e > 0)
				remove_stale_dir(base, &s[i]);
			close(s[i].fd);
		}
		n = left;
		if (!n || herd_now() >= deadline)
			break;
		struct timespec ts = {0, nap};
		nanosleep(&ts, NULL);
		if (nap < 16 * HERD_MSEC)
			nap *= 2;
	}
	for (size_t i = 0; i < n; i++)
		close(s[i].fd);
}

/* Whether /proc shows our pid namespace: else its pids are not those in
 * the names (a process that entered a new one without mounting /proc). */
static bool proc_is_ours(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return atoi(buf) == (int)getpid();
}

/* started_at's answers for the last pids asked: each live herd process
 * has many directories (its pool), in no order. */
#define OWNERS 8
struct owners {
	struct {
		pid_t pid;
		int rc;
		int64_t at;
	} o[OWNERS];
	unsigned n;
};

static int owner_started(struct owners *c, pid_t pid, int64_t *at)
{
	for (unsigned i = 0; i < c->n && i < OWNERS; i++) {
		if (c->o[i].pid == pid) {
			*at = c->o[i].at;
			return c->o[i].rc;
		}
	}
	unsigned i = c->n++ % OWNERS;
	c->o[i].pid = pid;
	c->o[i].rc = started_at(pid, &c->o[i].at);
	*at = c->o[i].at;
	return c->o[i].rc;
}

/* Finds the directories in base left by herd processes that no longer
 * exist, kills what still runs in them, and removes them (see the top of
 * the file). A directory of a live process costs an fstatat. */
static void remove_stale(int base)
{
	int fd = openat(base, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct owners owners = {.n = 0};
	struct stale *batch = NULL;
	size_t n = 0;
	int64_t deadline = 0;
	int proc_ok = -1; /* not asked yet */
	struct dirent *e;
	while ((e = readdir(d))) {
		bool dir = e->d_type == DT_DIR || e->d_type == DT_UNKNOWN;
		pid_t pid = dir ? herd_name_pid(e->d_name) : 0;
		if (!pid)
			continue;
		if (proc_ok < 0)
			proc_ok = proc_is_ours();
		if (!proc_ok)
			break;
		int64_t at;
		int rc = owner_started(&owners, pid, &at);
		struct stat st;
		if (rc < 0 || fstatat(base, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || (rc > 0 && !made_before(st.st_ctim, at)))
			continue;
		/* Stale. Empty, as most are: it just goes. */
		if (unlinkat(base, e->d_name, AT_REMOVEDIR) == 0 || errno != EBUSY)
			continue;
		/* Opened, then checked to be the directory judged: that one
		 * is killed, even if the name went to another meanwhile. */
		struct stale s = {.ino = st.st_ino};
		memcpy(s.name, e->d_name, strlen(e->d_name) + 1); /* fits: a herd name */
		s.fd = openat(base, s.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s.fd < 0)
			continue;
		int kill_fd = -1;
		bool killed = fstat(s.fd, &st) == 0 && st.st_ino == s.ino &&
			      (kill_fd = openat(s.fd, "cgroup.kill", O_WRONLY | O_CLOEXEC)) >= 0 &&
			      write(kill_fd, "1", 1) == 1;
		if (kill_fd >= 0)
			close(kill_fd);
		if (!killed || (!batch && !(batch = malloc(STALE_BATCH * sizeof *batch)))) {
			close(s.fd);
			continue;
		}
		if (!deadline)
			deadline = herd_now() + STALE_WAIT;
		batch[n++] = s;
		if (n == STALE_BATCH) {
			finish_stale(base, batch, n, deadline);
			n = 0;
		}
	}
	if (n)
		finish_stale(base, batch, n, deadline);
	free(batch);
	closedir(d);
}

void herd__cgroup_init(herd__rt *rt)
{
	rt->proc.cg_base = -1;
	const char *env = getenv("HERD_CGROUP");
	if (env && strcmp(env, "0") == 0)
		return;
	int base = open_base();
	if (base < 0)
		return;
	/* First: a probe left with our name would fail ours, and stale
	 * directories may hold the cgroup's limit on descendants. */
	remove_stale(base);
	char probe[64];
	snprintf(probe, sizeof probe, "herd-%d-probe", (int)getpid());
	if (mkdirat(base, probe, 0755) < 0) {
		close(base);
		return;
	}
	/* cgroup.kill came with Linux 5.14: without it, no use. */
	char kill_file[96];
	snprintf(kill_file, sizeof kill_file, "%s/cgroup.kill", probe);
	bool ok = faccessat(base, kill_file, W_OK, 0) == 0;
	unlinkat(base, probe, AT_REMOVEDIR);
	if (!ok) {
		close(base);
		return;
	}
	rt->proc.cg_base = base;
	herd__fd_track(rt, base);
}

static void set_name(herd__cgroup *cg, uint64_t seq)
{
	cg->seq = seq;
	snprintf(cg->name, sizeof cg->name, "herd-%d-%llu", (int)getpid(),
		 (unsigned long long)seq);
}

void herd__cgroup_pool_clear(herd__rt *rt)
{
	if (rt->proc.cg_base < 0)
		return;
	herd__cgroup cg = {.rt = rt};
	herd__mutex_lock(&rt->proc.cg_lock);
	for (size_t i = 0; i < rt->proc.cg_npool; i++) {
		set_name(&cg, rt->proc.cg_pool[i]);
		unlinkat(rt->proc.cg_base, cg.name, AT_REMOVEDIR);
	}
	rt->proc.cg_npool = 0;
	herd__mutex_unlock(&rt->proc.cg_lock);
}

void herd__cgroup_fini(herd__rt *rt)
{
	if (rt->proc.cg_base >= 0) {
		herd__cgroup_pool_clear(rt);
		herd__fd_close(rt, rt->proc.cg_base);
	}
	rt->proc.cg_base = -1;
}

int herd__cgroup_make(herd__rt *rt, herd__cgroup *cg)
{
	memset(cg, 0, sizeof *cg);
	cg->procs_fd = cg->dir_fd = -1;
	cg->rt = rt;
	if (rt->proc.cg_base < 0)
		return 0;
	/* An empty one from the pool saves a mkdir and an rmdir, each a
	 * good part of a process start. */
	uint64_t seq = 0;
	herd__mutex_lock(&rt->proc.cg_lock);
	if (rt->proc.cg_npool)
		seq = rt->proc.cg_pool[--rt->proc.cg_npool];
	herd__mutex_unlock(&rt->proc.cg_lock);
	if (seq) {
		set_name(cg, seq);
	} else {
		set_name(cg, atomic_fetch_add_explicit(&rt->proc.cg_seq, 1, mo_relaxed) + 1);
		int rc = mkdirat(rt->proc.cg_base, cg->name, 0755);
		/* Left by an earlier process with our pid that died: if it
		 * is empty, it goes, and the name is ours. */
		if (rc < 0 && errno == EEXIST &&
		    unlinkat(rt->proc.cg_base, cg->name, AT_REMOVEDIR) == 0)
			rc = mkdirat(rt->proc.cg_base, cg->name, 0755);
		if (rc < 0) {
			cg->seq = 0;
			return 0; /* the child runs without one */
		}
	}
	cg->dir_fd = openat(rt->proc.cg_base, cg->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg->dir_fd < 0) {
		unlinkat(rt->proc.cg_base, cg->name, AT_REMOVEDIR);
		cg->seq = 0;
		return 0;
	}
	cg->used = true;
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
	if (cg->used)
		unlinkat(cg->rt->proc.cg_base, cg->name, AT_REMOVEDIR);
	cg->used = false;
}

void herd__cgroup_started(herd__cgroup *cg)
{
	if (cg->procs_fd >= 0)
		close(cg->procs_fd);
	if (cg->dir_fd >= 0)
		close(cg->dir_fd);
	cg->procs_fd = cg->dir_fd = -1;
}

/* Adds the pids listed in the cgroup to cg->pids. */
static void record_pids(herd__cgroup *cg)
{
	/* Small on the stack: this runs on task stacks too (herd_proc_wait).
	 * A first read tells an empty cgroup, the common case, at once. */
	char f[sizeof cg->name + 16], first[64];
	snprintf(f, sizeof f, "%s/cgroup.procs", cg->name);
	int fd = openat(cg->rt->proc.cg_base, f, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, first, sizeof first);
	if (n <= 0) {
		close(fd);
		return;
	}
	size_t len = (size_t)n, cap = 4096;
	char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return;
	}
	memcpy(buf, first, len);
	while ((n = read(fd, buf + len, cap - 1 - len)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *b = realloc(buf, cap *= 2);
			if (!b)
				break;
			buf = b;
		}
	}
	close(fd);
	buf[len] = 0;
	for (char *p = buf; *p;) {
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		p = end + (*end == '\n');
		bool seen = false;
		for (size_t i = 0; i < cg->npids && !seen; i++)
			seen = cg->pids[i] == (pid_t)pid;
		if (seen)
			continue;
		if (cg->npids == cg->cap) {
			size_t ncap = cg->cap ? 2 * cg->cap : 8;
			pid_t *a = realloc(cg->pids, ncap * sizeof *a);
			if (!a)
				break;
			cg->pids = a;
			cg->cap = ncap;
		}
		cg->pids[cg->npids++] = (pid_t)pid;
	}
	free(buf);
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
	atomic_store_explicit(&cg->rt->proc.strays, true, mo_relaxed); /* monitor */
	char f[sizeof cg->name + 16];
	snprintf(f, sizeof f, "%s/cgroup.kill", cg->name);
	int fd = openat(cg->rt->proc.cg_base, f, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = write(fd, "1", 1);
		(void)r;
		close(fd);
	}
}

bool herd__cgroup_remove(herd__cgroup *cg)
{
	if (!cg->used)
		return true;
	herd__rt *rt = cg->rt;
	if (cg->empty && !cg->npids) {
		herd__mutex_lock(&rt->proc.cg_lock);
		bool kept = rt->proc.cg_npool < HERD__CG_POOL;
		if (kept)
			rt->proc.cg_pool[rt->proc.cg_npool++] = cg->seq;
		herd__mutex_unlock(&rt->proc.cg_lock);
		if (kept) {
			cg->used = false;
			return true;
		}
	}
	if (unlinkat(cg->rt->proc.cg_base, cg->name, AT_REMOVEDIR) < 0 && errno == EBUSY) {
		herd__cgroup_kill(cg); /* something moved in or forked late */
		return false;
	}
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
