/*
 * cgroup-stale.c - removing the cgroup directories that herd processes
 * which no longer exist left behind.
 *
 * A herd process that died without cleaning up (SIGKILL, a crash, _exit)
 * leaves its directories behind for ever, with whatever survived in them
 * (only its direct children get a parent-death signal). So setup reads the base
 * directory once and, for the names herd makes (herd-<pid>-<n>, and
 * herd-<pid>-probe), asks /proc whether that process is gone: no process
 * has the pid, or the one that has it started more than a second after the
 * directory was made (the pid was reused). In doubt, a directory is left:
 * other herd processes, alive, have theirs beside ours. A stale one is
 * killed (cgroup.kill), waited for until cgroup.events says it is empty
 * (1 s in all, on the calling thread; one that does not empty is left for
 * a later run), and removed, with any cgroups under it.
 *
 * No lock: it runs once per runtime, at cgroup setup (cgroup.c), before
 * any child of this process has a directory.
 */
#define _GNU_SOURCE 1
#include "proc/proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
	if (herd__os_read_small(fd, "cgroup.events", buf, sizeof buf) <= 0)
		return -1;
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
void herd__cgroup_remove_stale(int base)
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

