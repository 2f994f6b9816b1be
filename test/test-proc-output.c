/*
 * test-proc-output.c - herd_proc_output, Go's Output() and CombinedOutput():
 * stdout exactly (binary, NULs included), stderr apart or combined in
 * order, both pipes filled at once without a deadlock, the limit, exit
 * statuses apart from errors, a missing program, the deadline and
 * cancellation (and nothing of the tree left when the call returns), bad
 * input, stdin, and the descriptor count, also under a limit of 64.
 *
 * Every child inherits MARK in its environment (set before herd_run), so
 * that the /proc scans of procs.h recognise this test's processes.
 */
#define _GNU_SOURCE
#include "procs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>

#define MIB (1024 * 1024)

/* herd_proc_output of `sh -c script` with the options in base (or none). */
static int output_sh(herd_output *r, herd_scope *sc, const char *script,
		     const herd_proc_opts *base, size_t limit, unsigned flags, int64_t deadline)
{
	char *argv[] = {"sh", "-c", (char *)script, NULL};
	herd_proc_opts o = base ? *base : (herd_proc_opts){0};
	o.argv = argv;
	return herd_proc_output(r, sc, &o, limit, flags, deadline);
}

/* The result of a call that failed: zeroed, nothing to free, status -1. */
static void check_empty(const herd_output *r)
{
	CHECK(r->out == NULL && r->err == NULL);
	CHECK(r->out_len == 0 && r->err_len == 0 && r->truncated == 0);
	CHECK_EQ(r->status, -1);
}

/* Checks that a stream holds exactly `want` (len bytes), NUL after. */
static void check_stream(const char *got, size_t got_len, const char *want, size_t len)
{
	CHECK(got != NULL);
	if (got_len != len || memcmp(got, want, len) != 0)
		fprintf(stderr, "got %zu bytes '%.*s', want %zu '%.*s'\n", got_len,
			(int)(got_len < 200 ? got_len : 200), got, len, (int)(len < 200 ? len : 200),
			want);
	CHECK_EQ(got_len, len);
	CHECK(memcmp(got, want, len) == 0);
	CHECK_EQ(got[len], 0);
}

#define CHECK_STR(got, got_len, want) check_stream(got, got_len, want, strlen(want))

/* Descriptors: herd's count, and the process's. */
struct fds {
	long herd;
	int all;
};

static struct fds fds_now(void)
{
	herd_fd_stats st;
	CHECK_OK(herd_fd_stats_get(&st));
	return (struct fds){st.open, count_entries("/proc/self/fd", "")};
}

static void check_fds(struct fds before)
{
	struct fds now = fds_now();
	if (now.herd != before.herd || now.all != before.all)
		fprintf(stderr, "descriptors: herd's %ld, then %ld; all %d, then %d\n",
			before.herd, now.herd, before.all, now.all);
	CHECK_EQ(now.herd, before.herd);
	/* Not more: a leak. One fewer was seen under TSan (a descriptor of
	 * the runtime's or the sanitizer's own, open at the first count,
	 * closed since), which is no leak. */
	CHECK(now.all <= before.all);
}

/* A first call opens what herd keeps for the run (/dev/null, cgroups). */
static struct fds warm_up(void)
{
	herd_output r;
	CHECK_OK(output_sh(&r, NULL, "exit 0", NULL, 16, 0, herd_deadline(LONG_WAIT)));
	herd_output_free(&r);
	return fds_now();
}

/* Cases ------------------------------------------------------------- */

static void exact_main(void *arg)
{
	struct fds fds0 = warm_up();
	herd_output r;
	CHECK_OK(output_sh(&r, NULL, "printf 'a\\000b\\000c\\377'", NULL, MIB, 0,
			   herd_deadline(LONG_WAIT)));
	check_stream(r.out, r.out_len, "a\0b\0c\377", 6);
	CHECK_STR(r.err, r.err_len, ""); /* collected, and empty */
	CHECK_EQ(r.status, 0);
	CHECK_EQ(r.truncated, 0);
	herd_output_free(&r);
	check_empty(&r);
	herd_output_free(&r); /* freed twice: harmless */
	herd_output_free(NULL);

	/* 300 KiB of every byte value through cat: more than a pipe holds,
	 * many reads, a buffer that grows. */
	size_t n = 300 * 1024;
	char *data = malloc(n), path[64];
	CHECK(data != NULL);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 131 % 256);
	snprintf(path, sizeof path, "/tmp/herd-test-%d-XXXXXX", (int)getpid());
	int fd = mkstemp(path);
	CHECK(fd >= 0 && write(fd, data, n) == (ssize_t)n);
	close(fd);
	char *cat[] = {"cat", path, NULL};
	herd_proc_opts o = {.argv = cat};
	CHECK_OK(herd_proc_output(&r, NULL, &o, SIZE_MAX, 0, herd_deadline(LONG_WAIT)));
	check_stream(r.out, r.out_len, data, n);
	CHECK_EQ(r.status, 0);
	herd_output_free(&r);
	unlink(path);
	free(data);
	check_fds(fds0);
	check_nothing_left(0);
}

/* stdout comes back byte for byte: NULs, a byte above 127, no newline at
 * the end, 300 KiB of every byte value; stderr collected and empty;
 * herd_output_free zeroes and may be called again. */
TEST(stdout_exact)
{
	run_marked(exact_main, NULL);
}

static void stderr_main(void *arg)
{
	const char *script = "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 4";
	herd_output r;
	CHECK_OK(output_sh(&r, NULL, script, NULL, MIB, 0, herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "out1\nout2\n");
	CHECK_STR(r.err, r.err_len, "err1\nerr2\n");
	CHECK_EQ(r.status, 4);
	herd_output_free(&r);

	/* stderr sent elsewhere: /dev/null, or a descriptor of ours. */
	herd_proc_opts o = {0};
	o.stdio[2].mode = HERD_STDIO_NULL;
	CHECK_OK(output_sh(&r, NULL, script, &o, MIB, 0, herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "out1\nout2\n");
	CHECK(r.err == NULL && r.err_len == 0);
	herd_output_free(&r);
	int p[2];
	CHECK_OK(herd_pipe(p, HERD_FOREVER));
	o.stdio[2] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = p[1]};
	CHECK_OK(output_sh(&r, NULL, script, &o, MIB, 0, herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "out1\nout2\n");
	CHECK(r.err == NULL);
	herd_output_free(&r);
	CHECK_OK(herd_close(p[1]));
	char buf[64];
	CHECK_EQ(read_to_eof(p[0], buf, sizeof buf), 10);
	CHECK(strcmp(buf, "err1\nerr2\n") == 0);
	CHECK_OK(herd_close(p[0]));
}

/* stderr is collected apart from stdout, with the exit status beside
 * them; sent to /dev/null or to a given descriptor, it is not collected. */
TEST(stderr_apart)
{
	run_marked(stderr_main, NULL);
}

static void combined_main(void *arg)
{
	herd_output r;
	CHECK_OK(output_sh(&r, NULL, "for i in 1 2 3 4 5; do echo o$i; echo e$i >&2; done",
			   NULL, MIB, HERD_OUTPUT_COMBINED, herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "o1\ne1\no2\ne2\no3\ne3\no4\ne4\no5\ne5\n");
	CHECK(r.err == NULL && r.err_len == 0);
	CHECK_EQ(r.status, 0);
	herd_output_free(&r);
	/* The limit counts both streams together. */
	CHECK_OK(output_sh(&r, NULL, "printf 01234; printf 56789 >&2; printf x", NULL, 10,
			   HERD_OUTPUT_COMBINED, herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "0123456789");
	CHECK_EQ(r.truncated, HERD_OUTPUT_TRUNC_OUT);
	herd_output_free(&r);
}

/* HERD_OUTPUT_COMBINED: stdout and stderr written alternately come back
 * in one buffer in the order written; the limit counts both. */
TEST(combined_order)
{
	run_marked(combined_main, NULL);
}

/* Checks a MiB of `yes c | head -c 1M`: "c\n" over and over. */
static void check_yes(const char *buf, size_t len, char c)
{
	CHECK_EQ(len, MIB);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != (i % 2 ? '\n' : c)) {
			fprintf(stderr, "byte %zu is %d\n", i, buf[i]);
			CHECK(!"the stream differs");
		}
}

static void full_main(void *arg)
{
	/* Each order: a reader that took stdout (or stderr) first would
	 * wait for ever on a child blocked on the other, full pipe. */
	const char *scripts[] = {
		"yes e | head -c 1048576 >&2; yes o | head -c 1048576",
		"yes o | head -c 1048576; yes e | head -c 1048576 >&2",
	};
	for (int i = 0; i < 2; i++) {
		herd_output r;
		int rc = output_sh(&r, NULL, scripts[i], NULL, 2 * MIB, 0, herd_deadline(LONG_WAIT));
		if (rc < 0)
			fprintf(stderr, "%s: %s\n", scripts[i], herd_strerror(rc));
		CHECK_OK(rc);
		check_yes(r.out, r.out_len, 'o');
		check_yes(r.err, r.err_len, 'e');
		CHECK_EQ(r.status, 0);
		CHECK_EQ(r.truncated, 0);
		herd_output_free(&r);
	}
}

/* A child that writes 1 MiB to stderr, then 1 MiB to stdout (and the other
 * way round) completes: both pipes are read at once. */
TEST(both_pipes_full)
{
	run_marked(full_main, NULL);
}

static void limit_main(void *arg)
{
	struct fds fds0 = warm_up();
	/* 1 MiB on stdout, limit 1000: the rest is read and dropped, so the
	 * child gets past it to its last line on stderr and exits 0. */
	herd_output r;
	CHECK_OK(output_sh(&r, NULL, "yes o | head -c 1048576; echo done >&2", NULL, 1000, 0,
			   herd_deadline(LONG_WAIT)));
	CHECK_EQ(r.out_len, 1000);
	CHECK_EQ(r.out[1000], 0);
	CHECK(r.out[998] == 'o' && r.out[999] == '\n');
	CHECK_STR(r.err, r.err_len, "done\n");
	CHECK_EQ(r.truncated, HERD_OUTPUT_TRUNC_OUT);
	CHECK_EQ(r.status, 0);
	herd_output_free(&r);
	/* The same on stderr. */
	CHECK_OK(output_sh(&r, NULL, "yes e | head -c 1048576 >&2; echo done", NULL, 1000, 0,
			   herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "done\n");
	CHECK_EQ(r.err_len, 1000);
	CHECK_EQ(r.truncated, HERD_OUTPUT_TRUNC_ERR);
	herd_output_free(&r);
	/* Exactly the limit is not past it; one byte more is. */
	CHECK_OK(output_sh(&r, NULL, "printf 0123456789", NULL, 10, 0, herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "0123456789");
	CHECK_EQ(r.truncated, 0);
	herd_output_free(&r);
	CHECK_OK(output_sh(&r, NULL, "printf 0123456789x; printf abc >&2", NULL, 10, 0,
			   herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "0123456789");
	CHECK_STR(r.err, r.err_len, "abc");
	CHECK_EQ(r.truncated, HERD_OUTPUT_TRUNC_OUT);
	herd_output_free(&r);
	check_fds(fds0);
}

/* Past the limit, a stream is cut there (truncated says which) and the
 * rest is read and dropped: the child is not blocked and runs to its end;
 * a stream of exactly the limit is whole. */
TEST(limit_truncates)
{
	run_marked(limit_main, NULL);
}

static void status_main(void *arg)
{
	static const struct { const char *script; int status; const char *out; } cases[] = {
		{"echo a; exit 0", 0, "a\n"},
		{"echo b; exit 3", 3, "b\n"},
		{"echo c; exit 255", 255, "c\n"},
		{"echo d; kill -TERM $$", TERMED, "d\n"},
		{"echo e; kill -KILL $$", KILLED, "e\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		herd_output r;
		CHECK_EQ(output_sh(&r, NULL, cases[i].script, NULL, 64, 0, herd_deadline(LONG_WAIT)),
			 0);
		CHECK_EQ(r.status, cases[i].status);
		CHECK_STR(r.out, r.out_len, cases[i].out);
		CHECK(HERD_PROC_SIGNALED(r.status) == (cases[i].status >= 256));
		herd_output_free(&r);
	}
}

/* A non-zero exit and a death by a signal are statuses, not errors: the
 * call returns 0, with the status and what was written before. */
TEST(status_not_error)
{
	run_marked(status_main, NULL);
}

static void missing_main(void *arg)
{
	struct fds fds0 = warm_up();
	char *argv[] = {"herd-test-no-such-program", NULL};
	herd_proc_opts o = {.argv = argv};
	herd_output r = {.out = (char *)"stale", .status = 7};
	CHECK_EQ(herd_proc_output(&r, NULL, &o, 64, 0, herd_deadline(LONG_WAIT)), -ENOENT);
	check_empty(&r);
	CHECK_EQ(herd_proc_output(&r, NULL, &o, 64, HERD_OUTPUT_COMBINED, HERD_FOREVER), -ENOENT);
	check_empty(&r);
	char *sh[] = {"sh", "-c", "exit 0", NULL};
	o = (herd_proc_opts){.argv = sh, .dir = "/nonexistent-herd-dir"};
	CHECK_EQ(herd_proc_output(&r, NULL, &o, 64, 0, HERD_FOREVER), -ENOENT);
	check_empty(&r);
	CHECK_EQ(count_procs(CHILDREN, 0), 0);
	check_fds(fds0);
}

/* A missing program (or directory) gives -ENOENT, with nothing allocated,
 * no descriptor and no process left. */
TEST(missing_program)
{
	run_marked(missing_main, NULL);
}

static void deadline_main(void *arg)
{
	struct fds fds0 = warm_up();
	char cg[4096];
	bool cgroups = cgroup_usable(cg, sizeof cg);
	struct {
		const char *script;
		int64_t grace, after;
	} cases[] = {
		/* A tree that writes nothing and runs on: 20 processes in the
		 * group that outlive the shell's SIGTERM, killed (SIGKILL) only
		 * when it has exited, and reaped a moment later. */
		{"for i in $(seq 20); do (trap '' TERM; exec sleep 600) & done; wait", 0,
		 300 * HERD_MSEC},
		/* Ignoring SIGTERM: SIGKILL once the grace has passed. */
		{"trap '' TERM; sleep 600 & sleep 600", 200 * HERD_MSEC, 300 * HERD_MSEC},
		/* Always something to read: the call never waits. */
		{"trap '' TERM; exec yes", 100 * HERD_MSEC, 200 * HERD_MSEC},
		/* With cgroups, a tree with an escapee from its group. */
		{"(setsid sleep 600 &); sleep 600", 0, 300 * HERD_MSEC},
	};
	for (int i = 0; i < (cgroups ? 4 : 3); i++) {
		herd_proc_opts o = {.grace = cases[i].grace};
		herd_output r;
		int64_t t0 = herd_now();
		int rc = output_sh(&r, NULL, cases[i].script, &o, 1000, 0, t0 + cases[i].after);
		int64_t took = herd_now() - t0;
		CHECK_EQ(rc, HERD_ETIMEDOUT);
		check_empty(&r);
		/* At once: the call returned only once the tree was gone. */
		check_nothing_left(0);
		CHECK_EQ(count_procs(STRAYS, 0), 0);
		CHECK(took >= cases[i].after + cases[i].grace);
		CHECK(took < cases[i].after + cases[i].grace + 10 * HERD_SEC);
	}
	check_fds(fds0);
}

/* At the deadline: HERD_ETIMEDOUT, nothing to free, and when the call
 * returns the process tree is gone (a tree, one that ignores SIGTERM and
 * gets SIGKILL after its grace, a child always writing, and, with cgroups,
 * an escapee from the group); no descriptor left. */
TEST(deadline_ends_tree)
{
	run_marked(deadline_main, NULL);
}

struct out_task {
	herd_scope *scope; /* the process's */
	const char *script;
	int64_t grace;
	atomic_int rc;
	herd_output r;
};

static void output_task(void *arg)
{
	struct out_task *t = arg;
	herd_proc_opts o = {.grace = t->grace};
	int rc = output_sh(&t->r, t->scope, t->script, &o, 1000, 0, herd_deadline(LONG_WAIT));
	atomic_store(&t->rc, rc);
}

/* Runs script in a task of a new scope (the process in `scope`, NULL: the
 * task's), waits until `sleepers` marked sleeps run (or a moment), cancels
 * `cancel` (NULL: the task's scope), and returns the call's result. */
static int canceled_run(const char *script, int sleepers, herd_scope *scope, herd_scope *cancel,
			int64_t grace)
{
	static struct out_task t;
	t = (struct out_task){.scope = scope, .script = script, .grace = grace};
	atomic_store(&t.rc, 1);
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	CHECK_OK(herd_go(sc, output_task, &t, 0));
	if (sleepers)
		wait_sleepers(0, sleepers);
	else
		CHECK_OK(herd_sleep(herd_deadline(100 * HERD_MSEC)));
	CHECK_EQ(atomic_load(&t.rc), 1); /* still running */
	CHECK_OK(herd_scope_cancel(cancel ? cancel : sc));
	CHECK_OK(herd_scope_close(sc));
	check_empty(&t.r);
	return atomic_load(&t.rc);
}

static void cancel_main(void *arg)
{
	struct fds fds0 = warm_up();
	/* The task's scope, while the call waits for output. */
	CHECK_EQ(canceled_run("sleep 600 & sleep 600", 2, NULL, NULL, 0), HERD_ECANCELED);
	check_nothing_left(0);
	/* The task's scope, while the call always has output to read from a
	 * child that ignores SIGTERM. */
	CHECK_EQ(canceled_run("trap '' TERM; exec yes", 0, NULL, NULL, 100 * HERD_MSEC),
		 HERD_ECANCELED);
	check_nothing_left(0);
	/* The process's scope, not the task's. */
	herd_scope *other;
	CHECK_OK(herd_scope_open(&other));
	CHECK_EQ(canceled_run("sleep 600 & sleep 600", 2, other, other, 0), HERD_ECANCELED);
	check_nothing_left(0);
	CHECK_OK(herd_scope_close(other));
	/* A scope canceled before the call: nothing starts. */
	CHECK_OK(herd_scope_open(&other));
	CHECK_OK(herd_scope_cancel(other));
	herd_output r;
	CHECK_EQ(output_sh(&r, other, "echo x", NULL, 64, 0, HERD_FOREVER), HERD_ECANCELED);
	check_empty(&r);
	CHECK_EQ(count_procs(CHILDREN, 0), 0);
	CHECK_OK(herd_scope_close(other));
	check_fds(fds0);
}

/* A cancellation of the calling task's scope, or of the process's scope,
 * gives HERD_ECANCELED, nothing to free, and no process left when the call
 * returns; a scope canceled before the call starts nothing. */
TEST(cancel_ends_tree)
{
	run_marked(cancel_main, NULL);
}

static void *plain_thread(void *arg)
{
	herd_output *r = arg;
	char *argv[] = {"true", NULL};
	herd_proc_opts o = {.argv = argv};
	return (void *)(intptr_t)herd_proc_output(r, NULL, &o, 64, 0, HERD_FOREVER);
}

static void bad_main(void *arg)
{
	struct fds fds0 = warm_up();
	char *argv[] = {"echo", "x", NULL};
	herd_proc_opts ok = {.argv = argv};
	herd_output r;
	CHECK_EQ(herd_proc_output(NULL, NULL, &ok, 64, 0, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_proc_output(&r, NULL, NULL, 64, 0, HERD_FOREVER), -EINVAL);
	check_empty(&r);
	CHECK_EQ(herd_proc_output(&r, NULL, &ok, 0, 0, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_proc_output(&r, NULL, &ok, 64, 2, HERD_FOREVER), -EINVAL);
	/* stdio herd_proc_output sets, or that nothing could feed. */
	const struct { int fd; herd_stdio s; unsigned flags; } cases[] = {
		{0, {HERD_STDIO_PIPE, 0}, 0},
		{1, {HERD_STDIO_PIPE, 0}, 0},
		{1, {HERD_STDIO_NULL, 0}, 0},
		{1, {HERD_STDIO_FD, 1}, 0},
		{2, {HERD_STDIO_PIPE, 0}, 0},
		{2, {HERD_STDIO_NULL, 0}, HERD_OUTPUT_COMBINED},
		{2, {HERD_STDIO_FD, 2}, HERD_OUTPUT_COMBINED},
		{2, {9, 0}, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		herd_proc_opts o = ok;
		o.stdio[cases[i].fd] = cases[i].s;
		CHECK_EQ(herd_proc_output(&r, NULL, &o, 64, cases[i].flags, HERD_FOREVER), -EINVAL);
		check_empty(&r);
	}
	herd_proc_opts no_argv = {0};
	CHECK_EQ(herd_proc_output(&r, NULL, &no_argv, 64, 0, HERD_FOREVER), -EINVAL);
	pthread_t th;
	void *res;
	CHECK(pthread_create(&th, NULL, plain_thread, &r) == 0);
	CHECK(pthread_join(th, &res) == 0);
	CHECK_EQ((intptr_t)res, -EPERM);
	check_empty(&r);
	CHECK_EQ(count_procs(CHILDREN, 0), 0);
	check_fds(fds0);
}

/* NULL res or opts, a limit of 0, an unknown flag, stdio the call sets or
 * that nothing could feed, no argv: -EINVAL; a plain thread: -EPERM;
 * nothing started, nothing to free. */
TEST(bad_input)
{
	run_marked(bad_main, NULL);
}

static void stdin_main(void *arg)
{
	/* Zeroed: /dev/null, as in Go, not the program's own stdin. */
	herd_output r;
	CHECK_OK(output_sh(&r, NULL, "readlink /proc/self/fd/0; cat", NULL, 256, 0,
			   herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "/dev/null\n");
	herd_output_free(&r);
	/* Given: a pipe of ours, fed and closed. */
	int p[2];
	CHECK_OK(herd_pipe(p, HERD_FOREVER));
	CHECK_EQ(herd_write_all(p[1], "fed\n", 4, HERD_FOREVER), 4);
	CHECK_OK(herd_close(p[1]));
	herd_proc_opts o = {0};
	o.stdio[0] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = p[0]};
	CHECK_OK(output_sh(&r, NULL, "cat", &o, 256, 0, herd_deadline(LONG_WAIT)));
	CHECK_STR(r.out, r.out_len, "fed\n");
	herd_output_free(&r);
	CHECK_OK(herd_close(p[0]));
}

/* stdin is /dev/null unless given; a given descriptor is the child's. */
TEST(stdin_default_null)
{
	run_marked(stdin_main, NULL);
}

#define MIX_TASKS 8
#define MIX_CALLS (TEST_UNDER_TSAN ? 8 : 40)

static void mix_task(void *arg)
{
	int id = *(int *)arg;
	for (int i = 0; i < MIX_CALLS; i++) {
		herd_output r;
		char script[64];
		int rc;
		switch ((id + i) % 4) {
		case 0: /* whole */
			snprintf(script, sizeof script, "echo %d; echo %d >&2", i, id);
			CHECK_OK(output_sh(&r, NULL, script, NULL, 64, 0, herd_deadline(LONG_WAIT)));
			break;
		case 1: /* truncated */
			CHECK_OK(output_sh(&r, NULL, "yes | head -c 100000", NULL, 10, 0,
					   herd_deadline(LONG_WAIT)));
			CHECK_EQ(r.truncated, HERD_OUTPUT_TRUNC_OUT);
			break;
		case 2: /* missing */
			CHECK_EQ(output_sh(&r, NULL, "exec /nonexistent-herd-prog", NULL, 64, 0,
					   herd_deadline(LONG_WAIT)), 0);
			CHECK_EQ(r.status, 127); /* the shell's: it ran */
			break;
		default: /* timed out */
			rc = output_sh(&r, NULL, "sleep 600", NULL, 64, HERD_OUTPUT_COMBINED,
				       herd_deadline(20 * HERD_MSEC));
			CHECK_EQ(rc, HERD_ETIMEDOUT);
			break;
		}
		herd_output_free(&r);
	}
}

static void mix_main(void *arg)
{
	struct fds fds0 = warm_up();
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	for (int i = 0; i < MIX_TASKS; i++)
		CHECK_OK(HERD_GO(sc, mix_task, i));
	CHECK_OK(herd_scope_close(sc));
	check_fds(fds0);
	check_nothing_left(0);
}

/* 320 calls from 8 tasks at once, whole, truncated, failing in the child
 * and timed out, leave the descriptor count (herd's and the process's)
 * where it was, and no process. */
TEST(descriptors_unchanged)
{
	run_marked(mix_main, NULL);
}

#define LOW_CALLS (TEST_UNDER_TSAN ? 100 : 400)
#define LOW_TASKS 100

static atomic_int low_next, low_ok;

static void low_task(void *arg)
{
	int n;
	while ((n = atomic_fetch_add(&low_next, 1)) < LOW_CALLS) {
		char script[48], want[16];
		snprintf(script, sizeof script, "echo %d; echo e%d >&2", n, n);
		snprintf(want, sizeof want, "%d\n", n);
		herd_output r;
		CHECK_OK(output_sh(&r, NULL, script, NULL, 64, 0, herd_deadline(LONG_WAIT)));
		CHECK_STR(r.out, r.out_len, want);
		CHECK_EQ(r.err_len, strlen(want) + 1);
		herd_output_free(&r);
		atomic_fetch_add(&low_ok, 1);
	}
}

static void low_main(void *arg)
{
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	for (int i = 0; i < LOW_TASKS; i++)
		CHECK_OK(herd_go(sc, low_task, NULL, 0));
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(atomic_load(&low_ok), LOW_CALLS);
	herd_fd_stats st;
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK(st.limit == 64 && st.peak <= 64);
}

static void low_child(void)
{
	struct rlimit rl = {64, 64};
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	run_marked(low_main, NULL);
}

/* Under a limit of 64 descriptors, 100 tasks running 400 commands (two
 * pipes each) all complete with the right output: the calls wait for
 * descriptors rather than fail or deadlock. */
TEST(low_fd_limit)
{
	static char buf[1 << 16];
	test_child_ok(test_child(low_child, buf, sizeof buf), buf);
}
