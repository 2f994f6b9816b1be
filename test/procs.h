/*
 * procs.h - what the tests that start processes share: a mark in the
 * environment of every child (so that /proc scans find this test's
 * processes, and only them, while other tests run beside it), counting
 * processes by kind in /proc, checking that nothing was left behind, and
 * herd's cgroup directories.
 */
#ifndef HERD_TEST_PROCS_H
#define HERD_TEST_PROCS_H

#include "test.h"

#include <dirent.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/stat.h>

/* Far enough never to pass in a correct run; the CTest timeout is 60 s. */
#define LONG_WAIT (20 * HERD_SEC)

/* The exit statuses of a child killed by SIGTERM and SIGKILL. */
#define TERMED (256 + SIGTERM)
#define KILLED (256 + SIGKILL)

static char mark[64]; /* "HERD_TEST_MARK=proc-<pid>" */

static inline void run_marked(herd_fn fn, void *arg)
{
	snprintf(mark, sizeof mark, "HERD_TEST_MARK=proc-%d", (int)getpid());
	CHECK(setenv("HERD_TEST_MARK", strchr(mark, '=') + 1, 1) == 0);
	test_run(4, fn, arg);
}

/* Whether this process can be a child subreaper, as herd makes itself
 * (orphans of its children come back to it, to be killed and reaped).
 * qemu-user (7.2) does not emulate PR_SET_CHILD_SUBREAPER: it fails with
 * EINVAL without asking the kernel, and herd goes on without; orphans then
 * go to init, which in a container may never reap them. */
static inline bool can_subreap(void)
{
	int v = 0;
	return prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0) == 0;
}

#define NO_SUBREAPER_REASON                                                \
	"cannot be a child subreaper (PR_SET_CHILD_SUBREAPER fails: qemu-user " \
	"does not emulate it), so orphans of its children go to init"

/* /proc ------------------------------------------------------------- */

struct pinfo {
	int ppid, pgrp, sid;
	char state, comm[32];
};

/* Reads the start of a small file (a /proc or cgroup file) into buf, NUL
 * terminated; false if it cannot be opened. */
static inline bool read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return true;
}

/* A process's /proc/<pid>/status line `key` (e.g. "SigBlk:") as a number,
 * or all ones if it has none. */
static inline unsigned long long status_hex(int pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "re");
	CHECK(f != NULL);
	unsigned long long v = ~0ull;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtoull(line + strlen(key), NULL, 16);
	fclose(f);
	return v;
}

static inline bool read_stat(int pid, struct pinfo *pi)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	if (!read_small(path, buf, sizeof buf))
		return false;
	char *l = strchr(buf, '('), *r = strrchr(buf, ')');
	if (!l || !r || r < l)
		return false;
	snprintf(pi->comm, sizeof pi->comm, "%.*s", (int)(r - l - 1), l + 1);
	return sscanf(r + 2, "%c %d %d %d", &pi->state, &pi->ppid, &pi->pgrp, &pi->sid) == 4;
}

/* True if the process's environment holds MARK (a zombie's is empty). */
static inline bool has_mark(int pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/environ", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	CHECK(buf != NULL);
	ssize_t n;
	while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)n;
	close(fd);
	bool found = memmem(buf, len, mark, strlen(mark) + 1) != NULL;
	free(buf);
	return found;
}

/* What scan counts. "Ours": a child of this process, or marked. */
enum {
	IN_PGRP,     /* ours, in process group id */
	IN_SESSION,  /* ours, in session id */
	CHILDREN,    /* children of this process, zombies included */
	ZOMBIES,     /* zombie children of this process */
	MARKED,      /* live marked processes */
	SLEEPERS,    /* live marked `sleep`s in process group id (0: any) */
	STRAYS,      /* marked `sleep`s whose parent is init or this process */
	OUTSIDE,     /* live marked `sleep`s not in process group id */
	KILL_MARKED, /* marked processes, which get SIGKILL */
};

/* Counts the processes of a kind; *first (if not NULL) gets one's pid. */
static inline int scan(int what, int id, int *first)
{
	DIR *d = opendir("/proc");
	CHECK(d != NULL);
	int me = getpid(), n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		struct pinfo pi;
		int pid = atoi(e->d_name);
		if (pid <= 0 || pid == me || !read_stat(pid, &pi))
			continue;
		bool child = pi.ppid == me, live = pi.state != 'Z';
		bool sleeper = live && strcmp(pi.comm, "sleep") == 0, hit = false;
		switch (what) {
		case IN_PGRP: hit = pi.pgrp == id && (child || has_mark(pid)); break;
		case IN_SESSION: hit = pi.sid == id && (child || has_mark(pid)); break;
		case CHILDREN: hit = child; break;
		case ZOMBIES: hit = child && !live; break;
		case MARKED: hit = live && has_mark(pid); break;
		case SLEEPERS: hit = sleeper && (!id || pi.pgrp == id) && has_mark(pid); break;
		case STRAYS: hit = sleeper && (pi.ppid == 1 || child) && has_mark(pid); break;
		case OUTSIDE: hit = sleeper && pi.pgrp != id && has_mark(pid); break;
		case KILL_MARKED: hit = has_mark(pid) && kill(pid, SIGKILL) == 0; break;
		}
		if (hit && first && !n)
			*first = pid;
		n += hit;
	}
	closedir(d);
	return n;
}

static inline int count_procs(int what, int id)
{
	return scan(what, id, NULL);
}

/* Waits until count_procs(what, id) is at least `least`, or is 0 if least
 * is 0; false after `timeout`. Sleeps as a task if called from one. */
static inline bool poll_procs(int what, int id, int least, int64_t timeout)
{
	int64_t give_up = herd_now() + timeout;
	for (;;) {
		int n = count_procs(what, id);
		if (least ? n >= least : n == 0)
			return true;
		if (herd_now() > give_up)
			return false;
		if (herd_task_id()) {
			CHECK_OK(herd_sleep(herd_deadline(5 * HERD_MSEC)));
		} else {
			struct timespec ts = {0, 5000000};
			nanosleep(&ts, NULL);
		}
	}
}

/* Nothing of this test is left (at once, or within `wait`): no live marked
 * process, no zombie child. What a failing case left is killed, not to
 * stay on the machine. */
static inline void check_nothing_left(int64_t wait)
{
	/* Both counts at once: a grandchild's zombie becomes ours only when
	 * its parent dies, after a look at our zombies may have found none. */
	int64_t give_up = herd_now() + wait;
	int marked, zombies;
	for (;;) {
		marked = count_procs(MARKED, 0);
		zombies = count_procs(ZOMBIES, 0);
		if ((!marked && !zombies) || herd_now() >= give_up)
			break;
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
	if (marked || zombies) {
		int z = 0;
		struct pinfo pi;
		if (zombies && scan(ZOMBIES, 0, &z) && read_stat(z, &pi))
			fprintf(stderr, "a zombie child: pid %d (%s), group %d\n", z,
				pi.comm, pi.pgrp);
		fprintf(stderr, "left behind: %d marked processes, %d zombie children\n",
			marked, zombies);
		count_procs(KILL_MARKED, 0);
	}
	CHECK_EQ(marked, 0);
	CHECK_EQ(zombies, 0);
}

/* Waits until `n` marked sleeps run in process group pgrp (0: any). */
static inline void wait_sleepers(int pgrp, int n)
{
	if (!poll_procs(SLEEPERS, pgrp, n, LONG_WAIT)) {
		count_procs(KILL_MARKED, 0);
		CHECK(!"the process tree did not start");
	}
}

/* The scope was closed: nothing of group pgid is left. */
static inline void check_tree_gone(int pgid)
{
	int in_group = count_procs(IN_PGRP, pgid), strays = count_procs(STRAYS, 0);
	if (in_group || strays)
		fprintf(stderr, "after the close: %d in the group, %d stray sleeps\n",
			in_group, strays);
	check_nothing_left(0);
	CHECK_EQ(in_group, 0);
	CHECK_EQ(strays, 0);
}

/* Entries of dir whose name starts with prefix ("": all but . and ..). */
static inline int count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.' && strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

/* herd's cgroups for this process's children (herd-<pid>-*) in dir. */
static inline int herd_cgroups(const char *dir)
{
	char prefix[64];
	snprintf(prefix, sizeof prefix, "herd-%d-", (int)getpid());
	return count_entries(dir, prefix);
}

/* Of those, the ones with a live process in them (herd keeps empty ones
 * for reuse until the run ends). */
static inline int herd_cgroups_populated(const char *dir)
{
	char prefix[64], path[8192], buf[256];
	snprintf(prefix, sizeof prefix, "herd-%d-", (int)getpid());
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s/cgroup.events", dir, e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof buf - 1);
		close(fd);
		buf[len > 0 ? len : 0] = 0;
		n += strstr(buf, "populated 1") != NULL;
	}
	closedir(d);
	return n;
}

/* The directory of this process's cgroup v2, if herd can make children's
 * cgroups in it (as cgroup.c probes: a sub-directory with cgroup.kill). */
static inline bool cgroup_usable(char *dir, size_t size)
{
	const char *env = getenv("HERD_CGROUP");
	char line[4096], mnt[2048] = "", own[2048] = "", probe[4200], killf[4300];
	FILE *f;
	if ((env && strcmp(env, "0") == 0) || !(f = fopen("/proc/self/mountinfo", "re")))
		return false;
	while (!mnt[0] && fgets(line, sizeof line, f)) {
		char *sep = strstr(line, " - "), *p = line;
		for (int i = 0; i < 4 && p; i++)
			p = strchr(p + 1, ' ');
		if (sep && p && strncmp(sep + 3, "cgroup2 ", 8) == 0)
			sscanf(p + 1, "%2047s", mnt);
	}
	fclose(f);
	if (!(f = fopen("/proc/self/cgroup", "re")))
		return false;
	while (!own[0] && fgets(line, sizeof line, f))
		if (strncmp(line, "0::", 3) == 0)
			sscanf(line + 3, "%2047s", own);
	fclose(f);
	snprintf(dir, size, "%s%s", mnt, own);
	snprintf(probe, sizeof probe, "%s/herd-test-probe-%d", dir, (int)getpid());
	if (!mnt[0] || !own[0] || mkdir(probe, 0755) < 0)
		return false;
	snprintf(killf, sizeof killf, "%s/cgroup.kill", probe);
	bool ok = access(killf, W_OK) == 0;
	rmdir(probe);
	return ok;
}

/* A temporary file with `text` and mode `mode`; its path in buf. */
static inline void temp_file(char *buf, const char *text, mode_t mode)
{
	/* Named after this process, so that the suite's last check can tell
	 * one left behind (test/suite-left.c). */
	snprintf(buf, 64, "/tmp/herd-test-%d-XXXXXX", (int)getpid());
	int fd = mkstemp(buf);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	CHECK(fchmod(fd, mode) == 0);
	close(fd);
}

/* Starting, waiting and reading ------------------------------------- */

/* What wait_status and kill_status find in a status nothing was stored in. */
#define NO_STATUS (-777777)

/* The status herd_proc_wait stores, or the code it returns: one number for
 * CHECK_EQ, since a status is never negative. A wait that fails must
 * leave the status alone. */
static inline int wait_status(herd_proc *p, int64_t deadline)
{
	int st = NO_STATUS, rc = herd_proc_wait(p, &st, deadline);
	if (rc < 0 && st != NO_STATUS)
		fprintf(stderr, "herd_proc_wait: %s, yet status %d stored\n", herd_strerror(rc), st);
	CHECK(rc < 0 ? st == NO_STATUS : rc == 0 && st >= 0);
	return rc < 0 ? rc : st;
}

/* The same for herd_proc_kill. */
static inline int kill_status(herd_proc *p, int64_t deadline)
{
	int st = NO_STATUS, rc = herd_proc_kill(p, &st, deadline);
	if (rc < 0 && st != NO_STATUS)
		fprintf(stderr, "herd_proc_kill: %s, yet status %d stored\n", herd_strerror(rc), st);
	CHECK(rc < 0 ? st == NO_STATUS : rc == 0 && st >= 0);
	return rc < 0 ? rc : st;
}

/* Starts argv in scope sc (NULL: the task's) with the options in base. */
static inline herd_proc *start_argv(herd_scope *sc, char **argv, const herd_proc_opts *base)
{
	herd_proc_opts o = base ? *base : (herd_proc_opts){0};
	o.argv = argv;
	herd_proc *p = NULL;
	CHECK_OK(herd_proc_start(&p, sc, &o, herd_deadline(LONG_WAIT)));
	CHECK(p != NULL && herd_proc_pid(p) > 0);
	return p;
}

static inline herd_proc *start_sh(herd_scope *sc, const char *script, const herd_proc_opts *base)
{
	char *argv[] = {"sh", "-c", (char *)script, NULL};
	return start_argv(sc, argv, base);
}

/* Options with stdout a pipe, stdin and stderr inherited. */
static inline herd_proc_opts out_pipe(void)
{
	herd_proc_opts o = {0};
	o.stdio[1].mode = HERD_STDIO_PIPE;
	return o;
}

/* Reads fd to end of file into buf (NUL-terminated); fails beyond cap-1. */
static inline size_t read_to_eof(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	for (;;) {
		ssize_t n = herd_read(fd, buf + got, cap - got, herd_deadline(LONG_WAIT));
		if (n < 0)
			fprintf(stderr, "herd_read: %s\n", herd_strerror((int)n));
		CHECK(n >= 0);
		if (n == 0)
			break;
		got += (size_t)n;
		CHECK(got < cap);
	}
	buf[got] = 0;
	return got;
}

/* Reads one line from fd, byte by byte, and checks that it is `want`. */
static inline void expect_line(int fd, const char *want)
{
	char buf[64];
	size_t got = 0;
	while (got + 1 < sizeof buf) {
		ssize_t n = herd_read(fd, buf + got, 1, herd_deadline(LONG_WAIT));
		CHECK(n == 1);
		if (buf[got++] == '\n')
			break;
	}
	buf[got] = 0;
	if (want && strcmp(buf, want) != 0)
		fprintf(stderr, "read '%s', not '%s'\n", buf, want);
	CHECK(!want || strcmp(buf, want) == 0);
}

/* Runs argv with the options in base. Its stdout goes to out if not NULL
 * (NUL-terminated; fails beyond cap - 1 bytes), collected as Go's Output()
 * collects it (herd_proc_output); stdin and stderr stay the test's own
 * unless base sets them. Returns its status. */
static inline int run_argv(char **argv, const herd_proc_opts *base, char *out, size_t cap)
{
	herd_proc_opts o = base ? *base : (herd_proc_opts){0};
	if (!out) {
		herd_proc *p = start_argv(NULL, argv, &o);
		int st = wait_status(p, herd_deadline(LONG_WAIT));
		CHECK_OK(herd_proc_free(p));
		return st;
	}
	o.argv = argv;
	o.stdio[1] = (herd_stdio){0};
	for (int i = 0; i <= 2; i += 2)
		if (o.stdio[i].mode == HERD_STDIO_INHERIT)
			o.stdio[i] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = i};
	herd_output r;
	CHECK_OK(herd_proc_output(&r, NULL, &o, cap - 1, 0, herd_deadline(LONG_WAIT)));
	CHECK(!r.truncated);
	memcpy(out, r.out, r.out_len + 1);
	int st = r.status;
	herd_output_free(&r);
	return st;
}

static inline int run_sh(const char *script, const herd_proc_opts *base, char *out, size_t cap)
{
	char *argv[] = {"sh", "-c", (char *)script, NULL};
	return run_argv(argv, base, out, cap);
}

#endif
