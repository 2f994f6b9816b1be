/*
 * test-cgroup.c - the cgroup directories herd gives child processes
 * (cgroup.c): those that herd processes which died without cleaning up
 * left behind are removed, with what still ran in them, when a later run
 * sets its cgroups up; those of live processes are left alone, and so are
 * names that herd does not make.
 *
 * Most cases make such directories by hand in herd's cgroup base, named
 * after pids of their own children (dead, alive, or reused with clone3's
 * set_tid), with marked `sleep`s in them, then start one process in a
 * run; the last has a real herd process killed. Herd processes of other
 * tests running beside them see these directories too and treat them the
 * same way, so no outcome checked here depends on which process acts
 * first (but for the moment in reuse() when a pid is free).
 */
#define _GNU_SOURCE
#include "procs.h"

#include <sys/prctl.h>
#include <sys/syscall.h>

static char base[4096]; /* herd's cgroup base: this process's own cgroup */
#define PATH_LEN (sizeof base + 1024)

/* What a case made, undone at exit even when a CHECK fails, so that a
 * failing case leaves nothing behind either: its children are killed and
 * reaped, its directories removed (the deepest first). */
#define MAX_MADE 24
static pid_t made_pids[MAX_MADE];
static char made_dirs[MAX_MADE][64];
static int npids, ndirs;

static void path_of(char *buf, size_t size, const char *name, const char *file)
{
	snprintf(buf, size, "%s/%s%s%s", base, name, file ? "/" : "", file ? file : "");
}

static bool exists(const char *name)
{
	char path[PATH_LEN];
	struct stat st;
	path_of(path, sizeof path, name, NULL);
	return stat(path, &st) == 0;
}

static void undo(void)
{
	for (int i = 0; i < npids; i++) {
		if (made_pids[i] > 0) {
			kill(made_pids[i], SIGKILL); /* an unreaped child: its pid is ours */
			waitpid(made_pids[i], NULL, 0);
			made_pids[i] = 0;
		}
	}
	for (int i = ndirs - 1; i >= 0; i--) {
		char path[PATH_LEN];
		path_of(path, sizeof path, made_dirs[i], "cgroup.kill");
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t r = write(fd, "1", 1);
			(void)r;
			close(fd);
		}
		path_of(path, sizeof path, made_dirs[i], NULL);
		for (int tries = 0; tries < 2000 && rmdir(path) < 0 && errno == EBUSY; tries++) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	ndirs = 0;
}

/* Skips the case without a cgroup v2 where herd would make children's
 * cgroups; marks every process the case starts. */
static void setup(void)
{
	if (!cgroup_usable(base, sizeof base))
		TEST_SKIP("no writable cgroup v2 with cgroup.kill");
	snprintf(mark, sizeof mark, "HERD_TEST_MARK=proc-%d", (int)getpid());
	CHECK(setenv("HERD_TEST_MARK", strchr(mark, '=') + 1, 1) == 0);
	atexit(undo);
}

/* Undoes what the case made and checks that nothing is left. */
static void finish(void)
{
	undo();
	for (int i = 0; i < MAX_MADE; i++)
		CHECK(!made_dirs[i][0] || !exists(made_dirs[i]));
	check_nothing_left(0);
}

static void remember(pid_t pid)
{
	CHECK(npids < MAX_MADE);
	made_pids[npids++] = pid;
}

/* A marked `sleep 600`, a child of ours. */
static pid_t sleeper(void)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(127);
	}
	remember(pid);
	return pid;
}

/* clone3's arguments as far as set_tid (Linux 5.5), the kernel's ABI
 * spelt out, as src/proc.c does: <linux/sched.h> is not there for every C
 * library (musl-gcc has no kernel headers). */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal;
	uint64_t stack, stack_size, tls, set_tid, set_tid_size;
};

/* A marked `sleep 600` with pid `want` (clone3's set_tid); -errno if the
 * kernel will not (EPERM without CAP_SYS_ADMIN, EEXIST if it is taken). */
static pid_t sleeper_as(pid_t want)
{
	pid_t tid = want;
	struct clone3_args args;
	memset(&args, 0, sizeof args);
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)&tid;
	args.set_tid_size = 1;
	fflush(NULL);
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(127);
	}
	remember((pid_t)pid);
	return (pid_t)pid;
}

/* Reaps a child of ours that was killed by SIGKILL and has exited already
 * (a zombie): true if it was so. */
static bool reap_killed(pid_t pid)
{
	int st;
	pid_t r = waitpid(pid, &st, WNOHANG);
	if (r != pid)
		return false;
	for (int i = 0; i < npids; i++)
		if (made_pids[i] == pid)
			made_pids[i] = 0;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/* Kills a child of ours, and reaps it: its pid is free from then on. */
static void end(pid_t pid)
{
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	for (int i = 0; i < npids; i++)
		if (made_pids[i] == pid)
			made_pids[i] = 0;
}

/* Waits for a child of ours to exit, and reaps it. */
static void reap(pid_t pid)
{
	CHECK(waitpid(pid, NULL, 0) == pid);
	for (int i = 0; i < npids; i++)
		if (made_pids[i] == pid)
			made_pids[i] = 0;
}

/* A pid of ours dies, is reaped, and is given at once to a new process, as
 * if the system had reused it. Skips the case where set_tid is refused. */
static pid_t reuse(pid_t pid)
{
	siginfo_t si;
	CHECK(kill(pid, SIGKILL) == 0);
	/* Dead, but while a zombie /proc still has the pid: the window in
	 * which a herd process beside us sees it free is only the next two
	 * calls. */
	CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0);
	CHECK(reap_killed(pid));
	pid_t again = sleeper_as(pid);
	if (again == -EPERM || again == -ENOSYS || again == -EINVAL) {
		/* ENOSYS under qemu-user 7.2, which has no clone3. */
		static char why[96];
		snprintf(why, sizeof why, "clone3 with set_tid is not allowed here (%s)",
			 strerror(-again));
		TEST_SKIP(why);
	}
	if (again < 0)
		fprintf(stderr, "clone3 with set_tid %d: %s\n", (int)pid, strerror(-again));
	CHECK_EQ(again, pid);
	return again;
}

/* A directory for undo to remove, if it is still there. */
static void remember_dir(const char *name)
{
	CHECK(ndirs < MAX_MADE);
	snprintf(made_dirs[ndirs++], sizeof made_dirs[0], "%s", name);
}

static void make_dir(const char *name)
{
	char path[PATH_LEN];
	path_of(path, sizeof path, name, NULL);
	if (mkdir(path, 0755) < 0)
		fprintf(stderr, "mkdir %s: %s\n", path, strerror(errno));
	CHECK(exists(name));
	remember_dir(name);
}

/* Moves process pid into the cgroup `name`. */
static void put(const char *name, pid_t pid)
{
	char path[PATH_LEN], num[32];
	path_of(path, sizeof path, name, "cgroup.procs");
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	int len = snprintf(num, sizeof num, "%d", (int)pid);
	CHECK(write(fd, num, (size_t)len) == len);
	close(fd);
}

/* Process pid is alive (not a zombie) and in the cgroup `name`. */
static bool alive_in(pid_t pid, const char *name)
{
	struct pinfo pi;
	char path[64], buf[PATH_LEN];
	if (!read_stat((int)pid, &pi) || pi.state == 'Z')
		return false;
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	if (!read_small(path, buf, sizeof buf))
		return false;
	/* The base is this process's cgroup, "/" here or deeper. */
	char *line = strstr(buf, "0::");
	if (!line || (line != buf && line[-1] != '\n'))
		return false;
	line[strcspn(line, "\n")] = 0;
	size_t len = strlen(line), nlen = strlen(name);
	return len > nlen && line[len - nlen - 1] == '/' && strcmp(line + len - nlen, name) == 0;
}

static bool alive(pid_t pid)
{
	struct pinfo pi;
	return read_stat((int)pid, &pi) && pi.state != 'Z';
}

/* The run: one process, waited for. herd sets its cgroups up (and looks
 * for stale directories) at the first start. */
static void run_true(void *arg)
{
	char *argv[] = {"/bin/true", NULL};
	CHECK_EQ(run_argv(argv, NULL, NULL, 0), 0);
}

/* The herd process of killed_herd_process_cleaned (a child of the test)
 * starts a shell that leaves a `sleep` in the background and becomes
 * another, writes both pids to report_fd, and waits to be killed. */
static int report_fd = -1;

static void leave_grandchild(void *arg)
{
	herd_proc_opts o = out_pipe();
	herd_proc *p = start_sh(NULL, "sleep 600 & echo $!; exec sleep 600", &o);
	char line[32];
	size_t got = 0;
	while (got + 1 < sizeof line) {
		CHECK(herd_read(herd_proc_fd(p, 1), line + got, 1, herd_deadline(LONG_WAIT)) == 1);
		if (line[got++] == '\n')
			break;
	}
	line[got] = 0;
	CHECK(dprintf(report_fd, "%d %s", herd_proc_pid(p), line) > 0);
	CHECK_OK(herd_sleep(herd_deadline(LONG_WAIT)));
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Cases ------------------------------------------------------------- */

/* A directory left by a herd process that died (no process has its pid
 * any more) is removed at the next run's first process start, and the
 * process that still ran in it is killed: by the time herd_run returns it
 * has exited, and only waits to be reaped by us, its parent. The owner
 * lives until the directory is ready: a herd process beside us could
 * otherwise find it stale, and clean it, before the check below. */
TEST(stale_dead_owner_removed)
{
	setup();
	char name[64];
	pid_t owner = sleeper();
	snprintf(name, sizeof name, "herd-%d-7", (int)owner);
	make_dir(name);
	pid_t s = sleeper();
	put(name, s);
	CHECK(alive_in(s, name));
	end(owner);
	run_marked(run_true, NULL);
	CHECK(!exists(name));
	CHECK(reap_killed(s));
	finish();
}

/* A directory of a live process (made after the process started, as herd
 * makes its own) is left as it is, with the process in it: it may be the
 * directory of another herd process that runs beside this one. */
TEST(live_owner_untouched)
{
	setup();
	char name[64];
	pid_t owner = sleeper();
	snprintf(name, sizeof name, "herd-%d-3", (int)owner);
	make_dir(name);
	pid_t s = sleeper();
	put(name, s);
	run_marked(run_true, NULL);
	CHECK(exists(name));
	CHECK(alive_in(s, name));
	CHECK(alive(owner));
	finish();
}

/* A directory whose pid was reused: its owner died, and a process that
 * started well after the directory was made (1.5 s, beyond the second of
 * slack) now has the pid. The directory is stale and goes, with what ran
 * in it; the new process is not touched. The owner is alive until just
 * before the reuse, so that herd processes beside us leave the directory
 * alone while we wait. */
TEST(reused_pid_removed)
{
	setup();
	char name[64];
	pid_t owner = sleeper();
	snprintf(name, sizeof name, "herd-%d-5", (int)owner);
	make_dir(name);
	pid_t s = sleeper();
	put(name, s);
	sleep_ms(1500);
	pid_t reused = reuse(owner);
	run_marked(run_true, NULL);
	CHECK(!exists(name));
	CHECK(reap_killed(s));
	CHECK(alive(reused));
	finish();
}

/* A directory whose pid went to a process that started a moment (0.2 s,
 * less than the slack) after the directory was made is left alone: the
 * times are too close to tell whether that process made it. Without the
 * slack, 0.2 s would be enough for the start time (in 10 ms ticks) to
 * show the process as the younger. Serial: a herd process that another
 * test starts between the owner's death and the pid's reuse rightly finds
 * the directory stale (it failed so once, under ctest -j4). */
SERIAL_TEST(reused_pid_within_slack_untouched)
{
	setup();
	char name[64];
	pid_t owner = sleeper();
	snprintf(name, sizeof name, "herd-%d-4", (int)owner);
	make_dir(name);
	pid_t s = sleeper();
	put(name, s);
	sleep_ms(200);
	pid_t reused = reuse(owner);
	run_marked(run_true, NULL);
	CHECK(exists(name));
	CHECK(alive_in(s, name));
	CHECK(alive(reused));
	finish();
}

/* Only names herd makes, herd-<pid>-<n> and herd-<pid>-probe with numbers
 * as printf writes them, are candidates: a dead pid's probe goes, names
 * that only look like herd's stay, with what runs in them. (The owner
 * lives until all is made: herd processes beside us would remove the
 * empty probe at once.) */
TEST(only_herd_names)
{
	setup();
	static const char *const others[] = {
		"herd-%d", "herd-%d-", "herd-%d-7x", "herd-%d-probex", "herd-%d-0",
		"herd-%d-07", "herd-0%d-7", "herd-%d-7-1", "Herd-%d-7", "xherd-%d-7",
		"herd-%d--7", "herd-+%d-7",
	};
	enum { N = sizeof others / sizeof others[0] };
	char probe[64], name[N][64];
	pid_t owner = sleeper();
	snprintf(probe, sizeof probe, "herd-%d-probe", (int)owner);
	make_dir(probe);
	for (int i = 0; i < N; i++) {
		snprintf(name[i], sizeof name[i], others[i], (int)owner);
		make_dir(name[i]);
	}
	pid_t s = sleeper();
	put(name[2], s);
	end(owner);
	run_marked(run_true, NULL);
	CHECK(!exists(probe));
	for (int i = 0; i < N; i++) {
		if (!exists(name[i]))
			fprintf(stderr, "%s was removed\n", name[i]);
		CHECK(exists(name[i]));
	}
	CHECK(alive_in(s, name[2]));
	finish();
}

/* A stale directory with cgroups under it (a child of the dead process may
 * have made some) goes with them, and what ran at the bottom is killed.
 * The owner lives until all is ready, as in stale_dead_owner_removed. */
TEST(stale_tree_removed)
{
	setup();
	char name[64], sub[80], leaf[96];
	pid_t owner = sleeper();
	snprintf(name, sizeof name, "herd-%d-9", (int)owner);
	snprintf(sub, sizeof sub, "%s/sub", name);
	snprintf(leaf, sizeof leaf, "%s/leaf", sub);
	make_dir(name);
	make_dir(sub);
	make_dir(leaf);
	pid_t s = sleeper();
	put(leaf, s);
	CHECK(alive_in(s, leaf));
	end(owner);
	run_marked(run_true, NULL);
	CHECK(!exists(name));
	CHECK(reap_killed(s));
	finish();
}

/* The whole story: a herd process is killed with SIGKILL while its child
 * runs. The child dies of its parent-death signal, but the child's own
 * child, a `sleep` in the background, lives on in the cgroup that herd
 * made, which stays (without the removal of stale directories, it is
 * still there after the run below). The next run kills it and removes the
 * cgroup. This test process is a subreaper, so the orphans come to it to
 * be reaped. */
TEST(killed_herd_process_cleaned)
{
	if (!can_subreap())
		TEST_SKIP(NO_SUBREAPER_REASON);
	setup();
	CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	fflush(NULL);
	pid_t herd_pid = fork();
	CHECK(herd_pid >= 0);
	if (herd_pid == 0) {
		close(pfd[0]);
		report_fd = pfd[1];
		test_run(2, leave_grandchild, NULL);
		_exit(0);
	}
	remember(herd_pid);
	close(pfd[1]);
	char buf[64];
	ssize_t len = read(pfd[0], buf, sizeof buf - 1);
	close(pfd[0]);
	buf[len > 0 ? len : 0] = 0;
	int child = 0, grandchild = 0;
	CHECK(sscanf(buf, "%d %d", &child, &grandchild) == 2);
	remember(child);
	remember(grandchild);
	char name[64], prefix[32];
	snprintf(name, sizeof name, "herd-%d-1", (int)herd_pid);
	snprintf(prefix, sizeof prefix, "herd-%d-", (int)herd_pid);
	remember_dir(name);
	CHECK(alive_in(grandchild, name));

	/* From here on, any herd process (ours, or one beside us) may find
	 * the directory stale: what is left is not checked before the run. */
	end(herd_pid);
	reap(child); /* its parent-death signal; it came to us */
	run_marked(run_true, NULL);
	CHECK_EQ(count_entries(base, prefix), 0);
	CHECK(reap_killed(grandchild));
	finish();
}

/* Children started at once, each in a cgroup of herd's: named
 * herd-<pid>-<n>, right under this process's own cgroup (herd looks for
 * the cgroup2 mount where systems put it before mountinfo, which this test
 * reads), and none of them is left once herd_run has returned, whichever
 * thread removed the empty ones (a worker whose loop ended, or the
 * supervisor). */
#define AT_ONCE 6
static char cg_lines[AT_ONCE][512];

static void own_cgroup_task(void *arg)
{
	int i = *(int *)arg;
	char *argv[] = {"sh", "-c", "cat /proc/self/cgroup; sleep 0.05", NULL};
	CHECK_EQ(run_argv(argv, NULL, cg_lines[i], sizeof cg_lines[i]), 0);
}

static void at_once(void *arg)
{
	(void)arg;
	for (int i = 0; i < AT_ONCE; i++)
		CHECK_OK(HERD_GO(NULL, own_cgroup_task, i));
}

TEST(children_cgroups_under_own_none_left)
{
	setup();
	run_marked(at_once, NULL);
	char prefix[64];
	snprintf(prefix, sizeof prefix, "/herd-%d-", (int)getpid());
	for (int i = 0; i < AT_ONCE; i++) {
		/* "0::<own>/herd-<pid>-<n>": base is the mount and <own>. */
		char *line = strstr(cg_lines[i], "0::");
		CHECK(line && (line == cg_lines[i] || line[-1] == '\n'));
		line += 3;
		line[strcspn(line, "\n")] = 0;
		char *name = strrchr(line, '/');
		CHECK(name && strncmp(name, prefix, strlen(prefix)) == 0);
		CHECK(strspn(name + strlen(prefix), "0123456789") == strlen(name + strlen(prefix)));
		*name = 0; /* line is now <own>, "" for the root */
		size_t own = strlen(line), blen = strlen(base);
		if (own > blen || strcmp(base + blen - own, line) != 0)
			fprintf(stderr, "child %d was in %s/%s, not under %s\n", i, line, name + 1,
				base);
		CHECK(own <= blen && strcmp(base + blen - own, line) == 0);
	}
	CHECK_EQ(herd_cgroups(base), 0);
	finish();
}

/* The cgroup a child runs in: the last line of its /proc/self/cgroup,
 * "0::.../herd-<pid>-<n>", cut to its name. */
static void cgroup_name_of_child(char *name, size_t size)
{
	char out[512];
	CHECK_EQ(run_sh("cat /proc/self/cgroup", NULL, out, sizeof out), 0);
	char *line = strstr(out, "0::"), *slash;
	CHECK(line != NULL);
	line[strcspn(line, "\n")] = 0;
	CHECK((slash = strrchr(line, '/')) != NULL);
	snprintf(name, size, "%s", slash + 1);
}

static void one_at_a_time(void *arg)
{
	(void)arg;
	char first[64], name[64];
	cgroup_name_of_child(first, sizeof first);
	herd_fd_stats st0, st;
	CHECK_OK(herd_fd_stats_get(&st0));
	for (int i = 0; i < 3; i++) {
		/* A start that fails in the child (its chdir): the cgroup it
		 * had goes back to the pool, empty. */
		herd_proc_opts o = {.dir = "/nonexistent-herd-dir"};
		herd_proc *p = NULL;
		char *argv[] = {"true", NULL};
		o.argv = argv;
		CHECK_EQ(herd_proc_start(&p, NULL, &o, HERD_FOREVER), -ENOENT);
		cgroup_name_of_child(name, sizeof name);
		if (strcmp(name, first) != 0)
			fprintf(stderr, "child %d ran in %s, the first in %s\n", i, name, first);
		CHECK(strcmp(name, first) == 0);
		CHECK_EQ(herd_cgroups(base), 1);
	}
	/* A tree that leaves a process in its cgroup (out of its group):
	 * that cgroup is killed and removed, another is used from then on,
	 * and herd keeps as many descriptors as before. The leader exits
	 * only once the stray has left its group (setsid(1) calls setsid
	 * before it runs the inner sh, whose echo ends $(...)): a stray still
	 * in the group would die with it, leaving the cgroup empty (seen
	 * under ASan). */
	CHECK_EQ(run_sh("x=$(setsid sh -c 'echo x; exec sleep 600 >/dev/null 2>&1' &); exit 0",
			NULL, NULL, 0), 0);
	cgroup_name_of_child(name, sizeof name);
	CHECK(strcmp(name, first) != 0);
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK_EQ(st.open, st0.open);
	CHECK_EQ(herd_cgroups_populated(base), 0);
}

/* Children run one after another use one cgroup, taken from the pool each
 * time, also after a start that failed in the child; one whose tree left
 * a process behind gets its cgroup removed, without changing how many
 * descriptors herd keeps. None is left after the run. */
TEST(one_at_a_time_one_cgroup)
{
	setup();
	run_marked(one_at_a_time, NULL);
	CHECK_EQ(herd_cgroups(base), 0);
	finish();
}
