/*
 * test-proc-tree.c - child processes as trees (herd_proc_* and scopes):
 * scope cancel and close ending whole trees (a tree that ignores SIGTERM
 * gets SIGKILL after the grace period), double forks, setsid and setpgid
 * escapees (with a cgroup per child, also while other tasks keep starting
 * processes, and after the leader has exited), orphans that come back to
 * herd reaped, and the leftovers of a group killed when its leader exits.
 * The other cases of processes are in test-proc.c.
 *
 * Every child inherits MARK in its environment (set before herd_run), so
 * that the /proc scans of procs.h recognise this test's processes, and
 * only them, while other tests run beside it.
 */
#define _GNU_SOURCE
#include "procs.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

static void tree_main(void *arg)
{
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	herd_proc *p = start_sh(sc, "sleep 600 & sleep 600", NULL);
	int pid = herd_proc_pid(p);
	wait_sleepers(pid, 2);
	CHECK_OK(herd_scope_cancel(sc));
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), TERMED);
	CHECK_OK(herd_scope_close(sc));
	check_tree_gone(pid);
	CHECK_OK(herd_proc_free(p));

	/* A tree that ignores SIGTERM gets SIGKILL when the grace period has
	 * passed, not before. */
	CHECK_OK(herd_scope_open(&sc));
	herd_proc_opts o = out_pipe();
	o.grace = 200 * HERD_MSEC;
	p = start_sh(sc, "trap '' TERM; sleep 600 & echo ready; sleep 600", &o);
	pid = herd_proc_pid(p);
	expect_line(herd_proc_fd(p, 1), "ready\n");
	wait_sleepers(pid, 2);
	CHECK_OK(herd_scope_cancel(sc));
	int64_t t0 = herd_now();
	CHECK_OK(herd_scope_close(sc));
	CHECK(herd_now() - t0 >= 200 * HERD_MSEC);
	CHECK_EQ(wait_status(p, HERD_NOWAIT), KILLED);
	check_tree_gone(pid);
	CHECK_OK(herd_proc_free(p));
}

/* Canceling a scope sends SIGTERM to its processes' groups and closing it
 * ends them: nothing of the group and no zombie is left; a tree that
 * ignores SIGTERM is killed by SIGKILL once the grace period has passed. */
TEST(scope_cancel_kills_tree)
{
	run_marked(tree_main, NULL);
}

/* The same without cgroups (HERD_CGROUP=0): process groups alone. */
TEST(scope_cancel_kills_tree_no_cgroup)
{
	CHECK(setenv("HERD_CGROUP", "0", 1) == 0);
	run_marked(tree_main, NULL);
}

static void double_fork_main(void *arg)
{
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	herd_proc *p = start_sh(sc, "(sleep 600 &); sleep 600", NULL);
	int pid = herd_proc_pid(p);
	wait_sleepers(pid, 2);
	CHECK(poll_procs(STRAYS, 0, 1, LONG_WAIT)); /* the orphan came to us */
	CHECK_OK(herd_scope_cancel(sc));
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(wait_status(p, HERD_NOWAIT), TERMED);
	check_tree_gone(pid);
	CHECK_OK(herd_proc_free(p));
}

/* A grandchild orphaned by a double fork comes back to herd (the
 * subreaper) and ends with the scope: nothing of the tree is left. */
TEST(double_fork)
{
	run_marked(double_fork_main, NULL);
}

/* The same without cgroups: the orphan stayed in the group. */
TEST(double_fork_no_cgroup)
{
	CHECK(setenv("HERD_CGROUP", "0", 1) == 0);
	run_marked(double_fork_main, NULL);
}

static char cg_dir[4096]; /* "": herd makes no cgroups */

static void orphan_main(void *arg)
{
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	herd_proc *p = start_sh(sc, "(setsid sleep 0.1 &); sleep 0.3", NULL);
	int pid = herd_proc_pid(p);
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), 0);
	CHECK(poll_procs(IN_PGRP, pid, 0, LONG_WAIT)); /* the group is gone */
	/* The escapee came back to us and has exited: our zombie, until herd
	 * reaps it (the monitor may have already). */
	CHECK_OK(herd_sleep(herd_deadline(200 * HERD_MSEC))); /* herd is done with p */
	CHECK_OK(herd_scope_close(sc));
	CHECK_OK(herd_proc_free(p));
	check_nothing_left(0);
}

/* With a cgroup per child: a descendant that left the group (setsid), was
 * orphaned, came back to herd (the subreaper) and exited on its own is
 * reaped by the time the scope has closed, though its leader had exited
 * before the close. */
TEST(orphan_zombie_reaped)
{
	if (!cgroup_usable(cg_dir, sizeof cg_dir)) {
		TEST_SKIP("no writable cgroup v2");
	}
	run_marked(orphan_main, NULL);
}


/* Trees with descendants that leave the leader's process group: a new
 * session (setsid), a new group in the same session (setpgid), and a new
 * session whose leader has children of its own. */
static const struct escape {
	const char *script;
	int sleepers;
} escapes[] = {
	{"setsid sleep 600 & sleep 600", 2},
	{"HERD_TEST_SETPGID=1 %s%s & sleep 600", 2}, /* this program */
	{"setsid sh -c 'sleep 600 & sleep 600; :' & sleep 600", 3},
};

/* This program, run with HERD_TEST_SETPGID set: a process that makes its
 * own group (setpgid) and becomes `sleep 600`. (Under an emulator, the
 * script runs it through the emulator, which sh could not otherwise do.) */
__attribute__((constructor)) static void setpgid_helper(void)
{
	if (!getenv("HERD_TEST_SETPGID"))
		return;
	setpgid(0, 0);
	execlp("sleep", "sleep", "600", (char *)NULL);
	_exit(127);
}

static atomic_int busy_stop;

/* Runs a tree in a scope and closes it; busy: other tasks start processes
 * meanwhile (do not count theirs). */
static void escape_run(const struct escape *e, bool busy)
{
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	char exe[PATH_MAX], script[PATH_MAX + 512];
	CHECK(realpath("/proc/self/exe", exe) != NULL);
	/* The first %s: the emulator this test runs under, if any. */
	char emu[256] = "";
	if (test_emulator())
		snprintf(emu, sizeof emu, "%s ", test_emulator());
	if (strstr(e->script, "%s"))
		snprintf(script, sizeof script, e->script, emu, exe);
	else
		snprintf(script, sizeof script, "%s", e->script);
	herd_proc *p = start_sh(sc, script, NULL);
	int pid = herd_proc_pid(p), esc = 0;
	wait_sleepers(0, e->sleepers);
	CHECK(poll_procs(OUTSIDE, pid, 1, LONG_WAIT));
	CHECK(scan(OUTSIDE, pid, &esc) >= 1);
	struct pinfo pi;
	CHECK(read_stat(esc, &pi));
	if (cg_dir[0] && !busy) /* busy: the other tasks' children have theirs */
		CHECK_EQ(herd_cgroups_populated(cg_dir), 1);
	CHECK_OK(herd_scope_cancel(sc));
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(wait_status(p, HERD_NOWAIT), TERMED);
	CHECK_OK(herd_proc_free(p));
	int outside = count_procs(OUTSIDE, pid), in_session = count_procs(IN_SESSION, pi.sid);
	if (outside || in_session) {
		fprintf(stderr, "sh -c \"%s\": after the close, %d sleeps outside the "
			"group, %d in the escapee's session\n", script, outside, in_session);
		atomic_store(&busy_stop, 1);
		count_procs(KILL_MARKED, 0);
	}
	CHECK_EQ(outside, 0);
	CHECK_EQ(in_session, 0);
	if (!busy)
		check_tree_gone(pid);
	if (cg_dir[0] && !busy)
		CHECK_EQ(herd_cgroups_populated(cg_dir), 0);
}

static void escapes_main(void *arg)
{
	const struct escape *e = arg;
	if (e) {
		escape_run(e, false);
		return;
	}
	for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++)
		escape_run(&escapes[i], false);
}

/* With a writable cgroup v2, descendants that left the process group
 * (setsid, setpgid, and a new session with children) still end with the
 * scope, and the child's cgroup is removed. */
TEST(setsid_escapee)
{
	if (!cgroup_usable(cg_dir, sizeof cg_dir)) {
		TEST_SKIP("no writable cgroup v2");
	}
	run_marked(escapes_main, NULL);
}

static void busy_task(void *arg)
{
	char *argv[] = {"/bin/true", NULL};
	while (!atomic_load(&busy_stop)) {
		int st = run_argv(argv, NULL, NULL, 0);
		CHECK(st == 0 || atomic_load(&busy_stop));
	}
}

static void escape_busy_main(void *arg)
{
	herd_scope *bg;
	CHECK_OK(herd_scope_open(&bg));
	for (int i = 0; i < 4; i++)
		CHECK_OK(herd_go(bg, busy_task, NULL, 0));
	escape_run(&escapes[0], true);
	atomic_store(&busy_stop, 1);
	CHECK_OK(herd_scope_close(bg));
	check_nothing_left(0);
}

/* With a cgroup per child, the same while other tasks keep starting
 * processes in another scope. */
TEST(setsid_escapee_busy)
{
	if (!cgroup_usable(cg_dir, sizeof cg_dir)) {
		TEST_SKIP("no writable cgroup v2");
	}
	run_marked(escape_busy_main, NULL);
}

static void exited_leader_main(void *arg)
{
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	herd_proc_opts o = out_pipe();
	o.stdio[0].mode = HERD_STDIO_PIPE;
	herd_proc *p = start_sh(sc, "setsid sh -c 'echo ready; exec sleep 600' & read x", &o);
	int pid = herd_proc_pid(p);
	expect_line(herd_proc_fd(p, 1), "ready\n"); /* the escapee has left */
	CHECK_OK(herd_proc_close_fd(p, 0));          /* and now the shell exits */
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), 1);
	CHECK(poll_procs(IN_PGRP, pid, 0, LONG_WAIT)); /* its group is gone */
	CHECK_OK(herd_sleep(herd_deadline(200 * HERD_MSEC))); /* herd is done with p */
	CHECK_OK(herd_scope_close(sc));
	CHECK_OK(herd_proc_free(p));
	int outside = count_procs(OUTSIDE, pid);
	if (outside)
		fprintf(stderr, "after the close: %d escapee left\n", outside);
	check_nothing_left(0);
}

/* With a cgroup per child, when the shell exited on its own before the
 * scope closed, its setsid escapee is still killed (at the exit). */
TEST(escapee_of_exited_leader)
{
	if (!cgroup_usable(cg_dir, sizeof cg_dir)) {
		TEST_SKIP("no writable cgroup v2");
	}
	run_marked(exited_leader_main, NULL);
}

static void leader_exit_main(void *arg)
{
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	herd_proc_opts o = out_pipe();
	herd_proc *p = start_sh(sc, "sleep 600 & echo $!; exit 3", &o);
	int pid = herd_proc_pid(p), fd = herd_proc_fd(p, 1);
	char line[32] = "";
	for (size_t i = 0; i < sizeof line - 1 && !strchr(line, '\n'); i++)
		CHECK_EQ(herd_read(fd, line + i, 1, herd_deadline(LONG_WAIT)), 1);
	int bg = atoi(line);
	CHECK(bg > 0 && bg != pid);
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), 3);
	/* The scope is still open: the group's leftovers go anyway. */
	bool gone = poll_procs(IN_PGRP, pid, 0, 5 * HERD_SEC);
	struct pinfo pi;
	bool bg_alive = read_stat(bg, &pi) && pi.pgrp == pid;
	check_nothing_left(0);
	CHECK(gone && !bg_alive);
	CHECK_OK(herd_scope_close(sc));
	CHECK_OK(herd_proc_free(p));
}

/* When a process exits, what it left running in its group is killed and
 * reaped (within 5 s) while its scope is still open. */
TEST(leader_exit_kills_group)
{
	/* Killed, the group's leftover is an orphan: a zombie in the group
	 * until its new parent reaps it, which only herd, as a subreaper,
	 * surely does. */
	if (!can_subreap())
		TEST_SKIP(NO_SUBREAPER_REASON);
	run_marked(leader_exit_main, NULL);
}
