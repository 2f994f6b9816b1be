/*
 * test-proc.c - child processes (herd_proc_*): exit codes and signals, exec
 * errors and bad options, the stdio modes, environment and directory, the
 * descriptors, descriptor limit and signal mask a child gets; orphans of
 * the program's own children left alone, the root scope's processes ended
 * by herd_run; 10,000 processes leaking nothing, 1,000 under a limit of 64
 * descriptors; exits in a select, signals, kills, canceled waiters and
 * freeing a handle that is waited on. Whole trees (descendants, escapees,
 * orphans, leftovers of a group) are in test-proc-tree.c.
 *
 * Every child inherits MARK in its environment (set before herd_run), so
 * that the /proc scans of procs.h recognise this test's processes, and
 * only them, while other tests run beside it.
 */
#define _GNU_SOURCE
#include "procs.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define PENDING (-999999)

static long herd_open_fds(void)
{
	herd_fd_stats st;
	CHECK_OK(herd_fd_stats_get(&st));
	return st.open;
}

/* A task that waits for a process (then kills it) and stores the results. */
struct waiter {
	herd_proc *p;
	atomic_int rc, kill_rc;
};

static void wait_task(void *arg)
{
	struct waiter *w = arg;
	atomic_store(&w->rc, wait_status(w->p, herd_deadline(LONG_WAIT)));
	atomic_store(&w->kill_rc, kill_status(w->p, herd_deadline(LONG_WAIT)));
}

static void waiter_go(herd_scope *sc, struct waiter *w, herd_proc *p)
{
	w->p = p;
	atomic_store(&w->rc, PENDING);
	atomic_store(&w->kill_rc, PENDING);
	CHECK_OK(herd_go(sc, wait_task, w, 0));
}

/* Cases ------------------------------------------------------------- */

static void exit_codes_main(void *arg)
{
	static const struct { const char *script; int status; } cases[] = {
		{"exit 0", 0}, {"exit 7", 7}, {"exit 255", 255},
		{"kill -TERM $$", TERMED}, {"kill -KILL $$", KILLED},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int st = run_sh(cases[i].script, NULL, NULL, 0), want = cases[i].status;
		if (st != want)
			fprintf(stderr, "sh -c '%s': status %d\n", cases[i].script, st);
		CHECK_EQ(st, want);
		CHECK(HERD_PROC_EXITED(st) == (want < 256));
		CHECK(HERD_PROC_SIGNALED(st) == (want >= 256));
		CHECK(want < 256 || HERD_PROC_SIGNAL(st) == want - 256);
	}

	/* Two tasks wait at once; then the status can be had again. */
	herd_proc_opts o = {0};
	o.stdio[0].mode = HERD_STDIO_PIPE;
	herd_proc *p = start_sh(NULL, "read x; exit 5", &o);
	static struct waiter w[2];
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	waiter_go(sc, &w[0], p);
	waiter_go(sc, &w[1], p);
	test_wait_parked(2);
	CHECK_EQ(atomic_load(&w[0].rc), PENDING);
	CHECK_EQ(atomic_load(&w[1].rc), PENDING);
	CHECK_OK(herd_proc_close_fd(p, 0)); /* end of file: `read` fails */
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(atomic_load(&w[0].rc), 5);
	CHECK_EQ(atomic_load(&w[1].rc), 5);
	CHECK_EQ(atomic_load(&w[1].kill_rc), 5); /* kill after exit: the status */
	CHECK_EQ(wait_status(p, HERD_NOWAIT), 5);
	CHECK_EQ(wait_status(p, HERD_FOREVER), 5);
	/* The status apart from the result: 0, and the status where asked. */
	int st = NO_STATUS;
	CHECK_EQ(herd_proc_wait(p, NULL, HERD_NOWAIT), 0);
	CHECK_EQ(herd_proc_wait(p, &st, HERD_FOREVER), 0);
	CHECK_EQ(st, 5);
	st = NO_STATUS;
	CHECK_EQ(herd_proc_kill(p, &st, HERD_NOWAIT), 0);
	CHECK_EQ(st, 5);
	CHECK_OK(herd_proc_free(p));

	/* A running process has no status yet (nothing is stored); herd_proc_kill
	 * ends it. */
	char *sleep5[] = {"sleep", "5", NULL};
	p = start_argv(NULL, sleep5, NULL);
	st = NO_STATUS;
	CHECK_EQ(herd_proc_wait(p, &st, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(herd_proc_wait(p, &st, herd_deadline(20 * HERD_MSEC)), HERD_ETIMEDOUT);
	CHECK_EQ(st, NO_STATUS);
	CHECK_EQ(herd_proc_kill(p, NULL, herd_deadline(LONG_WAIT)), 0);
	CHECK_EQ(wait_status(p, HERD_NOWAIT), TERMED);
	CHECK_OK(herd_proc_free(p));
	check_nothing_left(0);
}

/* Exit codes 0, 7 and 255 and deaths by SIGTERM and SIGKILL come back as
 * statuses, stored apart from the result (0); two tasks can wait at once
 * and a status can be had again, also from herd_proc_kill, and with a NULL
 * status; a running process has none (HERD_ETIMEDOUT, nothing stored);
 * herd_proc_kill gives SIGTERM. */
TEST(exit_codes_and_signals)
{
	run_marked(exit_codes_main, NULL);
}

static void *plain_thread(void *arg)
{
	char *argv[] = {"true", NULL};
	herd_proc_opts o = {.argv = argv};
	herd_proc *p = NULL;
	int rc = herd_proc_start(&p, arg, &o, herd_deadline(LONG_WAIT));
	return (void *)(intptr_t)(p ? 1 : rc);
}

static void missing_main(void *arg)
{
	char plain[64], garbage[64];
	temp_file(plain, "#!/bin/sh\nexit 0\n", 0644);
	temp_file(garbage, "this is not a program\n", 0755);
	/* A first start opens what herd keeps for the run (/dev/null, ...). */
	herd_proc_opts o = {0};
	for (int i = 0; i < 3; i++)
		o.stdio[i].mode = HERD_STDIO_NULL;
	CHECK_EQ(run_sh("exit 0", &o, NULL, 0), 0);
	long open0 = herd_open_fds();
	int fds0 = count_entries("/proc/self/fd", "");

	const struct { const char *file; int rc; } cases[] = {
		{"herd-test-no-such-program", -ENOENT},
		{"/nonexistent-herd-dir/prog", -ENOENT},
		{plain, -EACCES},     /* no execute permission */
		{"/tmp", -EACCES},    /* a directory */
		{garbage, -ENOEXEC},  /* neither ELF nor #! */
	};
	for (int i = 0; i < 3; i++)
		o.stdio[i].mode = HERD_STDIO_PIPE; /* made, then released */
	herd_proc *p = NULL;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *argv[] = {(char *)cases[i].file, NULL};
		o.argv = argv;
		int rc = herd_proc_start(&p, NULL, &o, herd_deadline(LONG_WAIT));
		if (rc != cases[i].rc)
			fprintf(stderr, "%s: %d (%s)\n", cases[i].file, rc, herd_strerror(rc));
		CHECK_EQ(rc, cases[i].rc);
	}
	/* Through opts.file, with an argv[0] that does exist. */
	char *sh_argv[] = {"sh", "-c", "exit 0", NULL};
	o.argv = sh_argv;
	o.file = "herd-test-no-such-program";
	CHECK_EQ(herd_proc_start(&p, NULL, &o, HERD_FOREVER), -ENOENT);
	o.file = NULL;
	o.dir = "/nonexistent-herd-dir"; /* chdir fails in the child */
	CHECK_EQ(herd_proc_start(&p, NULL, &o, HERD_FOREVER), -ENOENT);
	o.dir = NULL;
	CHECK(fcntl(1000, F_GETFD) < 0); /* a stdout that is not open */
	o.stdio[1] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = 1000};
	CHECK_EQ(herd_proc_start(&p, NULL, &o, HERD_FOREVER), -EBADF);
	/* Nothing was left: no child, no zombie, no descriptor. */
	CHECK_EQ(count_procs(CHILDREN, 0), 0);
	CHECK_EQ(herd_open_fds(), open0);
	CHECK_EQ(count_entries("/proc/self/fd", ""), fds0);

	/* Bad options: no argv, no argv[0], stdio modes 9 and -1, FD -1. */
	char *no_argv0[] = {NULL};
	for (int i = 0; i < 5; i++) {
		herd_proc_opts bad = {.argv = i == 0 ? NULL : i == 1 ? no_argv0 : sh_argv};
		bad.stdio[1] = (herd_stdio){.mode = i == 2 ? 9 : i == 3 ? -1 : i == 4 ? 3 : 0,
					    .fd = -1};
		CHECK_EQ(herd_proc_start(&p, NULL, &bad, HERD_FOREVER), -EINVAL);
	}
	CHECK_EQ(herd_proc_start(&p, NULL, NULL, HERD_FOREVER), -EINVAL);
	CHECK_EQ(herd_proc_start(NULL, NULL, &o, HERD_FOREVER), -EINVAL);
	CHECK(p == NULL);
	CHECK_EQ(herd_proc_wait(NULL, NULL, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_proc_signal(NULL, SIGTERM), -EINVAL);
	CHECK_EQ(herd_proc_kill(NULL, NULL, HERD_NOWAIT), -EINVAL);
	CHECK_EQ(herd_proc_fd(NULL, 0), -EINVAL);
	CHECK(herd_proc_done(NULL) == NULL);
	CHECK_OK(herd_proc_free(NULL));

	/* From a plain thread: -EPERM, and nothing started. */
	pthread_t th;
	void *res;
	CHECK(pthread_create(&th, NULL, plain_thread, herd_scope_current()) == 0);
	CHECK(pthread_join(th, &res) == 0);
	CHECK_EQ((intptr_t)res, -EPERM);
	CHECK_EQ(count_procs(CHILDREN, 0), 0);
	unlink(plain);
	unlink(garbage);
}

/* A program not in PATH or missing gives -ENOENT, a file without execute
 * permission and a directory -EACCES, a file that is not a program
 * -ENOEXEC, a missing dir -ENOENT, a stdio descriptor that is not open
 * -EBADF, and none leaves a process, a zombie or a descriptor behind; bad
 * options give -EINVAL; a plain thread gets -EPERM. */
TEST(missing_executable)
{
	run_marked(missing_main, NULL);
}

#define CAT_BYTES (300 * 1024)

struct feed {
	herd_proc *p;
	const char *data;
};

static void feed_task(void *arg)
{
	struct feed *f = arg;
	int fd = herd_proc_fd(f->p, 0);
	CHECK_EQ(herd_write_all(fd, f->data, CAT_BYTES, herd_deadline(LONG_WAIT)), CAT_BYTES);
	CHECK_OK(herd_proc_close_fd(f->p, 0));
	CHECK_EQ(herd_proc_close_fd(f->p, 0), -EINVAL); /* closed already */
}

static void stdio_main(void *arg)
{
	size_t cap = 1 << 20, wn = 0;
	char *buf = malloc(cap), *want = malloc(cap);
	CHECK(buf && want);

	/* stdout: a pipe, read to end of file. */
	for (int i = 1; i <= 20000; i++)
		wn += (size_t)snprintf(want + wn, cap - wn, "%d\n", i);
	herd_proc_opts o = out_pipe();
	char *seq[] = {"seq", "1", "20000", NULL};
	herd_proc *p = start_argv(NULL, seq, &o);
	CHECK_EQ(herd_proc_fd(p, 0), -1);
	CHECK_EQ(herd_proc_fd(p, 2), -1);
	CHECK_EQ(herd_proc_fd(p, 3), -EINVAL);
	int fd = herd_proc_fd(p, 1);
	CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK) && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	CHECK_EQ(read_to_eof(fd, buf, cap), wn);
	CHECK(memcmp(buf, want, wn) == 0);
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), 0);
	CHECK_EQ(herd_proc_close_fd(p, 0), -EINVAL); /* no pipe there */
	CHECK_OK(herd_proc_free(p));

	/* stdin and stdout pipes: cat echoes what a task writes. */
	for (size_t i = 0; i < CAT_BYTES; i++)
		want[i] = (char)(i * 31 % 251);
	o.stdio[0].mode = HERD_STDIO_PIPE;
	char *cat[] = {"cat", NULL};
	p = start_argv(NULL, cat, &o);
	static struct feed f;
	f = (struct feed){p, want};
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	CHECK_OK(herd_go(sc, feed_task, &f, 0));
	CHECK_EQ(read_to_eof(herd_proc_fd(p, 1), buf, cap), CAT_BYTES);
	CHECK(memcmp(buf, want, CAT_BYTES) == 0);
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), 0);
	CHECK_OK(herd_proc_free(p));

	/* stdin /dev/null: end of file at once. */
	o.stdio[0].mode = HERD_STDIO_NULL;
	CHECK_EQ(run_argv(cat, &o, buf, cap), 0);
	CHECK(buf[0] == 0);

	/* stderr: a descriptor of ours (a herd_pipe's write end). */
	int fds[2];
	CHECK_OK(herd_pipe(fds, HERD_FOREVER));
	o = (herd_proc_opts){0};
	o.stdio[1].mode = HERD_STDIO_NULL;
	o.stdio[2] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = fds[1]};
	p = start_sh(NULL, "echo to-out; echo to-err >&2", &o);
	CHECK_EQ(herd_proc_fd(p, 2), -1);
	CHECK_OK(herd_close(fds[1])); /* the child has its own copy */
	CHECK_EQ(read_to_eof(fds[0], buf, cap), 7);
	CHECK(strcmp(buf, "to-err\n") == 0);
	CHECK_OK(herd_close(fds[0]));
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), 0);
	CHECK_OK(herd_proc_free(p));

	/* envp replaces the environment (else it is environ); opts.file is
	 * the program, argv[0] only a name; dir is the working directory. */
	char *envp[] = {"FOO=bar", NULL};
	o = (herd_proc_opts){.envp = envp};
	CHECK_EQ(run_sh("echo \"$FOO:$HERD_TEST_MARK\"", &o, buf, cap), 0);
	CHECK(strcmp(buf, "bar:\n") == 0);
	CHECK_EQ(run_sh("echo \"$HERD_TEST_MARK\"", NULL, buf, cap), 0);
	CHECK(strncmp(buf, "proc-", 5) == 0);
	o = (herd_proc_opts){.file = "/bin/sh"};
	char *named[] = {"custom-name", "-c", "echo $0", NULL};
	CHECK_EQ(run_argv(named, &o, buf, cap), 0);
	CHECK(strcmp(buf, "custom-name\n") == 0);
	char tmp[PATH_MAX + 1];
	CHECK(realpath("/tmp", tmp) != NULL);
	strcat(tmp, "\n");
	o = (herd_proc_opts){.dir = "/tmp"};
	char *pwd[] = {"pwd", "-P", NULL};
	CHECK_EQ(run_argv(pwd, &o, buf, cap), 0);
	CHECK(strcmp(buf, tmp) == 0);
	free(buf);
	free(want);
}

/* A stdout pipe carries exactly what `seq` prints; a stdin pipe fed by a
 * task and closed for end of file comes back through `cat`; a /dev/null
 * stdin gives end of file at once; a given descriptor becomes stderr; envp,
 * opts.file and dir are used. */
TEST(stdio_modes)
{
	run_marked(stdio_main, NULL);
}

static void swapped_main(void *arg)
{
	herd_proc_opts o = {0};
	o.stdio[1] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = 2};
	o.stdio[2] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = 1};
	CHECK_EQ(run_sh("echo to-out; echo to-err >&2", &o, NULL, 0), 0);
}

static void swapped_child(void)
{
	int fds[2];
	CHECK(pipe(fds) == 0);
	CHECK(dup2(fds[1], 1) == 1);
	close(fds[1]);
	run_marked(swapped_main, NULL);
	close(1);
	char buf[64] = "";
	ssize_t n = read(fds[0], buf, sizeof buf - 1);
	if (n != 7 || memcmp(buf, "to-err\n", 7) != 0) {
		fprintf(stderr, "our fd 1 got %zd bytes: '%s'\n", n, buf);
		exit(1);
	}
}

/* stdout and stderr given as the parent's descriptors 2 and 1 (each the
 * other's source, in the child) land where they should. */
TEST(stdio_swapped_fds)
{
	char buf[4096];
	test_child_ok(test_child(swapped_child, buf, sizeof buf), buf);
	CHECK_EQ(test_count(buf, "to-out\n"), 1);
	CHECK_EQ(test_count(buf, "to-err"), 0);
}

static void pipe_name(int fd, char *buf)
{
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	snprintf(buf, 64, "pipe:[%lu]", (unsigned long)st.st_ino);
}

static void fds_main(void *arg)
{
	const char *tmpname = arg;
	int extra[2];
	CHECK_OK(herd_pipe(extra, HERD_FOREVER));
	int plain = open(tmpname, O_RDONLY); /* not close-on-exec */
	CHECK(plain >= 0 && !(fcntl(plain, F_GETFD) & FD_CLOEXEC));

	herd_proc_opts o = {0};
	for (int i = 0; i < 3; i++)
		o.stdio[i].mode = HERD_STDIO_PIPE;
	char *ls[] = {"ls", "-ln", "/proc/self/fd", NULL};
	herd_proc *p = start_argv(NULL, ls, &o);
	char bad[3][64], std[3][64];
	pipe_name(extra[0], bad[0]);
	pipe_name(extra[1], bad[1]);
	snprintf(bad[2], 64, "%s", tmpname);
	for (int i = 0; i < 3; i++)
		pipe_name(herd_proc_fd(p, i), std[i]);
	CHECK_OK(herd_proc_close_fd(p, 0));
	static char buf[65536], err[4096];
	read_to_eof(herd_proc_fd(p, 1), buf, sizeof buf);
	read_to_eof(herd_proc_fd(p, 2), err, sizeof err);
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), 0);
	CHECK_OK(herd_proc_free(p));
	printf("the child's descriptors:\n%s", buf);
	CHECK(err[0] == 0);

	/* "lrwx------ 1 0 0 64 <date> <fd> -> <target>" */
	bool seen[3] = {false};
	int others = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *arrow = strstr(line, " -> "), *num = arrow;
		if (!arrow)
			continue; /* "total 0" */
		while (num > line && num[-1] != ' ')
			num--;
		int fd = atoi(num);
		const char *target = arrow + 4;
		for (int i = 0; i < 3; i++)
			if (strcmp(target, bad[i]) == 0)
				fprintf(stderr, "the child has the parent's %s as fd %d\n", target, fd);
		CHECK(strcmp(target, bad[0]) && strcmp(target, bad[1]) && strcmp(target, bad[2]));
		if (fd < 3) { /* the pipes it was given */
			seen[fd] = true;
			CHECK(strcmp(target, std[fd]) == 0);
		} else { /* ls's own, for the directory it lists */
			others++;
			CHECK(strncmp(target, "/proc/", 6) == 0);
			CHECK(strcmp(target + strlen(target) - 3, "/fd") == 0);
		}
	}
	CHECK(seen[0] && seen[1] && seen[2] && others <= 1);
	close(plain);
	CHECK_OK(herd_close(extra[0]));
	CHECK_OK(herd_close(extra[1]));

	/* The child gets the soft limit herd started with; herd runs with
	 * the hard one. */
	struct rlimit rl;
	herd_fd_stats st;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK_EQ(st.limit_at_start, 1000);
	CHECK_EQ(st.limit, (long)rl.rlim_max);
	CHECK_EQ(rl.rlim_cur, rl.rlim_max);
	char want[64];
	snprintf(want, sizeof want, "1000\n%lu\n", (unsigned long)rl.rlim_max);
	CHECK_EQ(run_sh("ulimit -n; ulimit -Hn", NULL, buf, sizeof buf), 0);
	if (strcmp(buf, want) != 0)
		fprintf(stderr, "ulimit in the child: %s", buf);
	CHECK(strcmp(buf, want) == 0);
}

/* The child has exactly the stdin, stdout and stderr pipes it was given:
 * not a herd_pipe of the parent, not a plain (inheritable) descriptor, not
 * the parent's ends; and it has the soft RLIMIT_NOFILE the parent had
 * before herd_run, while herd runs with the hard limit. */
TEST(child_gets_only_its_fds)
{
	struct rlimit rl;
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536)
		rl.rlim_max = 65536;
	CHECK(rl.rlim_max > 1000);
	rl.rlim_cur = 1000;
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	char tmpname[64];
	temp_file(tmpname, "x", 0600);
	run_marked(fds_main, tmpname);
	unlink(tmpname);
	CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
	CHECK_EQ(rl.rlim_cur, 1000); /* given back at the end */
}

static void mask_main(void *arg)
{
	char *sleep5[] = {"sleep", "5", NULL};
	bool on_first = false, on_other = false;
	for (int i = 0; i < 200 && !(on_other && on_first); i++) {
		int worker = herd_worker_id();
		herd_proc *p = start_argv(NULL, sleep5, NULL);
		int pid = herd_proc_pid(p);
		struct pinfo pi;
		int64_t give_up = herd_deadline(LONG_WAIT);
		while (read_stat(pid, &pi) && strcmp(pi.comm, "sleep") != 0) {
			CHECK(herd_now() < give_up); /* until it has exec'd */
			CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
		}
		unsigned long long blocked = status_hex(pid, "SigBlk:");
		unsigned long long caught = status_hex(pid, "SigCgt:");
		if (blocked || caught)
			fprintf(stderr, "started on worker %d: SigBlk %llx SigCgt %llx\n",
				worker, blocked, caught);
		CHECK(blocked == 0 && caught == 0);
		CHECK_EQ(kill_status(p, herd_deadline(LONG_WAIT)), TERMED);
		CHECK_OK(herd_proc_free(p));
		on_first |= worker == 0;
		on_other |= worker != 0;
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC))); /* to move */
	}
	printf("started from worker 0: %d, from others: %d\n", on_first, on_other);
}

static void on_usr2(int sig)
{
	(void)sig;
}

/* A child execs with no signal blocked and no handler (ours for SIGUSR2
 * is not kept), whichever worker started it (herd's workers other than
 * herd_run's thread block every asynchronous signal); SIGTERM ends it. */
TEST(child_signal_mask_clear)
{
	struct sigaction sa = {.sa_handler = on_usr2};
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	run_marked(mask_main, NULL);
}

/*
 * The process's open descriptors, from a task, once no transient one is
 * open: herd's supervisor opens /proc files for a moment now and then (its
 * orphan scan), so a count equal to `want` (or the lowest of a few, when
 * want is -1) is waited for, up to a second.
 */
static int settled_fds(int want)
{
	int low = INT_MAX;
	for (int i = 0; i < 100; i++) {
		int n = count_entries("/proc/self/fd", "");
		low = n < low ? n : low;
		if (want >= 0 ? n == want : i >= 4)
			break;
		herd_sleep(herd_deadline(10 * HERD_MSEC));
	}
	return low;
}

static char cg_dir[4096]; /* "": herd makes no cgroups */

#define MANY (10000 / TEST_SCALE)
#define MANY_TASKS 64

static atomic_int many_next, many_done;

static void many_task(void *arg)
{
	char *argv[] = {"/bin/true", NULL};
	while (atomic_fetch_add(&many_next, 1) < MANY) {
		CHECK_EQ(run_argv(argv, arg, NULL, 0), 0);
		atomic_fetch_add(&many_done, 1);
	}
}

static void many_main(void *arg)
{
	static herd_proc_opts o;
	for (int i = 0; i < 3; i++)
		o.stdio[i].mode = HERD_STDIO_NULL;
	char *argv[] = {"/bin/true", NULL};
	CHECK_EQ(run_argv(argv, &o, NULL, 0), 0); /* opens herd's own */
	int fds0 = settled_fds(-1);
	long open0 = herd_open_fds();
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	for (int i = 0; i < MANY_TASKS; i++)
		CHECK_OK(herd_go(sc, many_task, &o, 0));
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(atomic_load(&many_done), MANY);
	CHECK_EQ(herd_open_fds(), open0);
	CHECK_EQ(settled_fds(fds0), fds0);
	CHECK_EQ(count_procs(CHILDREN, 0), 0);
	/* Empty cgroups are kept for reuse, at most 64; gone after the run. */
	if (cg_dir[0])
		CHECK(herd_cgroups(cg_dir) <= 64);
}

/* 10,000 processes started 64 at a time, waited for and freed, leave no
 * descriptor (in /proc/self/fd and in herd's count), no zombie and no
 * cgroup behind. */
LONG_TEST(ten_thousand_procs)
{
	if (!cgroup_usable(cg_dir, sizeof cg_dir))
		cg_dir[0] = 0;
	run_marked(many_main, NULL);
	if (cg_dir[0])
		CHECK_EQ(herd_cgroups(cg_dir), 0);
}

#define LOW_PROCS (TEST_UNDER_TSAN ? 250 : 1000 / TEST_SCALE) /* enough to run out */
#define LOW_TASKS 200

static atomic_int low_next, low_ok;

static void low_task(void *arg)
{
	herd_proc_opts o = out_pipe();
	o.stdio[0].mode = HERD_STDIO_NULL;
	int n;
	while ((n = atomic_fetch_add(&low_next, 1)) < LOW_PROCS) {
		char script[32], want[16], got[32];
		snprintf(script, sizeof script, "echo %d", n);
		snprintf(want, sizeof want, "%d\n", n);
		CHECK_EQ(run_sh(script, &o, got, sizeof got), 0);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "process %d printed '%s'\n", n, got);
		CHECK(strcmp(got, want) == 0);
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
	CHECK_EQ(atomic_load(&low_ok), LOW_PROCS);
	herd_fd_stats st;
	CHECK_OK(herd_fd_stats_get(&st));
	CHECK(st.limit == 64 && st.waits > 0 && st.peak <= 64);
}

static void low_child(void)
{
	struct rlimit rl = {64, 64};
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
	run_marked(low_main, NULL);
}

/* Under a limit of 64 descriptors, 1,000 processes, 200 started at a time,
 * each read to end of file through its pipe, all complete with the right
 * output; herd says once on stderr that it ran out, naming the limit.
 * (Under qemu-user, a child forked while another thread held GSlice's
 * lock hung before its exec; CMake gives the emulated tests
 * G_SLICE=always-malloc: see test/CMakeLists.txt.) */
TEST(low_fd_limit)
{
	static char buf[1 << 16];
	test_child_ok(test_child(low_child, buf, sizeof buf), buf);
	CHECK_EQ(test_count(buf, "out of file descriptors"), 1);
	char *line = strstr(buf, "out of file descriptors"), *end = strchr(line, '\n');
	CHECK(end != NULL);
	*end = 0;
	CHECK(strstr(line, " 64 ") != NULL);
}

static void select_main(void *arg)
{
	/* The process ends first. */
	char *fast[] = {"sleep", "0.05", NULL}, *slow[] = {"sleep", "5", NULL};
	herd_proc *p = start_argv(NULL, fast, NULL);
	herd_chan *done = herd_proc_done(p);
	CHECK(done != NULL);
	CHECK_EQ(herd_chan_elem_size(done), 0);
	herd_timer *t;
	CHECK_OK(herd_timer_new(&t, herd_deadline(LONG_WAIT), 0));
	herd_case cs[2] = {HERD_CASE_RECV(done, NULL), HERD_CASE_RECV(herd_timer_chan(t), NULL)};
	CHECK_EQ(herd_select(cs, 2, HERD_FOREVER), 0);
	CHECK_EQ(cs[0].result, HERD_ECLOSED);
	CHECK_EQ(wait_status(p, HERD_NOWAIT), 0);
	cs[0].result = 1;
	CHECK_EQ(herd_select(cs, 1, HERD_NOWAIT), 0); /* and stays closed */
	CHECK_EQ(cs[0].result, HERD_ECLOSED);
	CHECK_OK(herd_proc_free(p));
	CHECK_OK(herd_timer_free(t));

	/* The timer fires first. */
	p = start_argv(NULL, slow, NULL);
	CHECK_OK(herd_timer_new(&t, herd_deadline(100 * HERD_MSEC), 0));
	cs[0] = (herd_case)HERD_CASE_RECV(herd_proc_done(p), NULL);
	cs[1] = (herd_case)HERD_CASE_RECV(herd_timer_chan(t), NULL);
	CHECK_EQ(herd_select(cs, 2, HERD_FOREVER), 1);
	CHECK_EQ(cs[1].result, 0);
	CHECK_EQ(herd_select(cs, 1, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(kill_status(p, herd_deadline(LONG_WAIT)), TERMED);
	CHECK_EQ(herd_select(cs, 1, HERD_NOWAIT), 0);
	CHECK_OK(herd_proc_free(p));
	CHECK_OK(herd_timer_free(t));
}

/* herd_proc_done is a channel of elements of size 0 that is closed when
 * the process exits: in a select, an exit before a timer wins (result
 * HERD_ECLOSED), a timer before the exit wins. */
TEST(exit_in_select)
{
	run_marked(select_main, NULL);
}

/* A task that only waits (the handle may be freed meanwhile). */
struct only_waiter {
	herd_proc *p;
	atomic_int rc;
};

static void wait_only_task(void *arg)
{
	struct only_waiter *w = arg;
	atomic_store(&w->rc, wait_status(w->p, herd_deadline(LONG_WAIT)));
}

/* A task that waits for the exit in a select on herd_proc_done. */
static void select_done_task(void *arg)
{
	struct waiter *w = arg;
	herd_case c = HERD_CASE_RECV(herd_proc_done(w->p), NULL);
	int rc = herd_select(&c, 1, herd_deadline(LONG_WAIT));
	atomic_store(&w->rc, rc == 0 && c.result == HERD_ECLOSED ? 0 : rc);
}

static void signal_main(void *arg)
{
	herd_proc_opts o = out_pipe();
	herd_proc *p = start_sh(NULL, "trap 'exit 42' USR1; echo ready; "
				      "while :; do sleep 0.01; done", &o);
	expect_line(herd_proc_fd(p, 1), "ready\n");
	CHECK_EQ(herd_proc_signal(p, 0), 0);
	CHECK_EQ(herd_proc_signal(p, -1), -EINVAL);
	CHECK_EQ(herd_proc_signal(p, 65), -EINVAL);
	CHECK_EQ(wait_status(p, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_OK(herd_proc_signal(p, SIGUSR1));
	int st = wait_status(p, herd_deadline(LONG_WAIT));
	if (st == HERD_ETIMEDOUT)
		herd_proc_kill(p, NULL, herd_deadline(LONG_WAIT));
	CHECK_EQ(st, 42);
	CHECK_EQ(herd_proc_signal(p, SIGUSR1), -ESRCH);
	CHECK_EQ(herd_proc_signal(p, 0), -ESRCH);
	CHECK_OK(herd_proc_free(p));

	char *sleep5[] = {"sleep", "5", NULL};
	/* A kill that does not wait; grace < 0: SIGKILL at once; a process
	 * that ignores SIGTERM: SIGKILL after its grace. */
	p = start_argv(NULL, sleep5, NULL);
	CHECK_EQ(kill_status(p, HERD_NOWAIT), HERD_ETIMEDOUT);
	CHECK_EQ(wait_status(p, herd_deadline(LONG_WAIT)), TERMED);
	CHECK_OK(herd_proc_free(p));
	o = (herd_proc_opts){.grace = -1};
	p = start_argv(NULL, sleep5, &o);
	CHECK_EQ(kill_status(p, herd_deadline(LONG_WAIT)), KILLED);
	CHECK_OK(herd_proc_free(p));
	o = out_pipe();
	o.grace = 100 * HERD_MSEC;
	p = start_sh(NULL, "trap '' TERM; echo ready; sleep 5", &o);
	expect_line(herd_proc_fd(p, 1), "ready\n");
	int64_t t0 = herd_now();
	CHECK_EQ(kill_status(p, herd_deadline(LONG_WAIT)), KILLED);
	CHECK(herd_now() - t0 >= 100 * HERD_MSEC);
	CHECK_OK(herd_proc_free(p));
	/* A kill whose deadline passes first: "the ending goes on", and
	 * SIGKILL comes when the grace has passed. */
	p = start_sh(NULL, "trap '' TERM; echo ready; sleep 5", &o);
	expect_line(herd_proc_fd(p, 1), "ready\n");
	CHECK_EQ(kill_status(p, herd_deadline(10 * HERD_MSEC)), HERD_ETIMEDOUT);
	int st2 = wait_status(p, herd_deadline(3 * HERD_SEC));
	if (st2 == HERD_ETIMEDOUT)
		herd_proc_kill(p, NULL, herd_deadline(LONG_WAIT));
	CHECK_EQ(st2, KILLED);
	CHECK_OK(herd_proc_free(p));
	check_nothing_left(5 * HERD_SEC); /* the group's `sleep` dies a moment later */
}

static void free_main(void *arg)
{
	/* herd_proc_free while tasks wait in herd_proc_wait frees the handle
	 * (the header's promise): the waiters keep what they need and get the
	 * status. While a task selects on herd_proc_done, it refuses. */
	char *sleep5[] = {"sleep", "5", NULL};
	herd_proc *p = start_argv(NULL, sleep5, NULL);
	int pid = herd_proc_pid(p);
	static struct only_waiter ow[2];
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	for (int i = 0; i < 2; i++) {
		ow[i].p = p;
		atomic_store(&ow[i].rc, PENDING);
		CHECK_OK(herd_go(sc, wait_only_task, &ow[i], 0));
	}
	test_wait_parked(2);
	CHECK_OK(herd_proc_free(p));
	CHECK_EQ(kill(pid, SIGTERM), 0);
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(atomic_load(&ow[0].rc), TERMED);
	CHECK_EQ(atomic_load(&ow[1].rc), TERMED);

	p = start_argv(NULL, sleep5, NULL);
	static struct waiter w;
	CHECK_OK(herd_scope_open(&sc));
	w.p = p;
	atomic_store(&w.rc, PENDING);
	CHECK_OK(herd_go(sc, select_done_task, &w, 0));
	test_wait_parked(1);
	CHECK_EQ(herd_proc_free(p), -EBUSY);
	CHECK(herd_proc_pid(p) > 0); /* still there */
	CHECK_EQ(kill_status(p, herd_deadline(LONG_WAIT)), TERMED);
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(atomic_load(&w.rc), 0);
	CHECK_OK(herd_proc_free(p));

	check_nothing_left(0);
}

/* herd_proc_free while two tasks wait in herd_proc_wait returns 0 and
 * frees the handle, as the header says; the waiters still get the status
 * (under ASan: nothing used after it was freed, nothing leaked). While a
 * task selects on herd_proc_done, it refuses with -EBUSY. */
TEST(free_while_waited)
{
	run_marked(free_main, NULL);
}

/* herd_proc_signal delivers a signal the child traps (exit 42) and gives
 * -ESRCH once it has exited; herd_proc_kill with HERD_NOWAIT, with a negative grace, on
 * a child that ignores SIGTERM, and with a deadline shorter than the grace
 * (SIGKILL still comes). */
TEST(signal_and_kill)
{
	run_marked(signal_main, NULL);
}

static void canceled_main(void *arg)
{
	char *sleep600[] = {"sleep", "600", NULL};
	herd_scope *sc, *other;
	herd_proc *p = NULL;
	CHECK_OK(herd_scope_open(&sc));
	CHECK_OK(herd_scope_cancel(sc));
	herd_proc_opts o = {.argv = sleep600};
	CHECK_EQ(herd_proc_start(&p, sc, &o, HERD_FOREVER), HERD_ECANCELED);
	CHECK(p == NULL);
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(count_procs(CHILDREN, 0), 0);

	/* A waiter's cancellation does not end the process (it belongs to
	 * another scope); the canceled task can still kill it. */
	CHECK_OK(herd_scope_open(&sc));
	CHECK_OK(herd_scope_open(&other));
	p = start_argv(other, sleep600, NULL);
	static struct waiter w;
	waiter_go(sc, &w, p);
	test_wait_parked(1);
	CHECK_OK(herd_scope_cancel(sc));
	CHECK_OK(herd_scope_close(sc));
	CHECK_EQ(atomic_load(&w.rc), HERD_ECANCELED);
	CHECK_EQ(atomic_load(&w.kill_rc), TERMED);
	CHECK_OK(herd_proc_free(p));

	/* A handle freed while the process runs: the scope still ends it. */
	p = start_argv(other, sleep600, NULL);
	CHECK_EQ(wait_status(p, herd_deadline(10 * HERD_MSEC)), HERD_ETIMEDOUT);
	CHECK_OK(herd_proc_free(p));
	CHECK_EQ(count_procs(MARKED, 0), 1);
	CHECK_OK(herd_scope_close(other));
	check_nothing_left(0);
}

/* Starting into a canceled scope gives HERD_ECANCELED and starts nothing;
 * a waiter's cancellation leaves the process running and a canceled task
 * can still kill it; a freed handle's process still ends with its scope. */
TEST(cancel_and_handles)
{
	run_marked(canceled_main, NULL);
}

#define END_PROCS 8

static int end_pipes[END_PROCS][2];
static atomic_int end_others;

static void end_task(void *arg)
{
	int i = *(int *)arg;
	for (int k = 0; k < 100; k++)
		herd_yield(); /* to spread over the workers */
	atomic_fetch_add(&end_others, herd_worker_id() != 0);
	herd_proc_opts o = {0};
	o.stdio[1] = (herd_stdio){.mode = HERD_STDIO_FD, .fd = end_pipes[i][1]};
	o.stdio[2].mode = HERD_STDIO_NULL; /* not the shell's "Terminated" */
	herd_proc *p = start_sh(NULL, "trap 'echo got-term; exit 9' TERM; echo ready; "
				      "while :; do sleep 0.01; done", &o);
	expect_line(end_pipes[i][0], "ready\n"); /* the trap is set */
	CHECK_OK(herd_proc_free(p));              /* it runs on, in the root scope */
}

static void end_main(void *arg)
{
	for (int i = 0; i < END_PROCS; i++)
		CHECK_OK(HERD_GO(NULL, end_task, i));
}

/* The root scope's processes, left running when the tasks end, are ended
 * by herd_run gracefully (SIGTERM, which the shells trap), also those that
 * a worker other than herd_run's thread started. */
TEST(root_scope_end)
{
	for (int i = 0; i < END_PROCS; i++)
		CHECK(pipe(end_pipes[i]) == 0);
	run_marked(end_main, NULL);
	printf("%d of %d started from workers other than 0\n", atomic_load(&end_others),
	       END_PROCS);
	check_nothing_left(0);
	for (int i = 0; i < END_PROCS; i++) {
		char buf[256];
		close(end_pipes[i][1]);
		ssize_t n = read(end_pipes[i][0], buf, sizeof buf - 1);
		buf[n > 0 ? n : 0] = 0;
		if (strcmp(buf, "got-term\n") != 0)
			fprintf(stderr, "child %d wrote '%s' at the end\n", i, buf);
		CHECK(strcmp(buf, "got-term\n") == 0);
	}
}

static pid_t own[2];

/* True if our own child pid runs: not exited, not reaped by anybody. */
static bool own_alive(pid_t pid)
{
	int status;
	return kill(pid, 0) == 0 && waitpid(pid, &status, WNOHANG) == 0;
}

static void own_main(void *arg)
{
	char *sleep600[] = {"sleep", "600", NULL};
	herd_scope *sc;
	CHECK_OK(herd_scope_open(&sc));
	herd_proc *p = start_argv(sc, sleep600, NULL); /* for the close to end */
	CHECK_OK(herd_scope_close(sc));
	CHECK_OK(herd_proc_free(p));
	for (int i = 0; i < 2; i++)
		if (!own_alive(own[i]))
			fprintf(stderr, "our own child %d (%s) is gone after a scope close\n",
				(int)own[i], i ? "setsid" : "same session");
	bool ok = own_alive(own[0]) && own_alive(own[1]);
	if (!ok) /* not to leave the other running */
		count_procs(KILL_MARKED, 0);
	CHECK(ok);
}

/* Children the program started itself, not through herd (one in our
 * session, one in a session of its own), are neither killed nor reaped by
 * herd: not when a scope closes, not when herd_run ends. */
TEST(own_children_untouched)
{
	snprintf(mark, sizeof mark, "HERD_TEST_MARK=proc-%d", (int)getpid());
	CHECK(setenv("HERD_TEST_MARK", strchr(mark, '=') + 1, 1) == 0);
	for (int i = 0; i < 2; i++) {
		CHECK((own[i] = fork()) >= 0);
		if (own[i] == 0) { /* /dev/null for stdio: not to hold CTest's pipes */
			int fd = open("/dev/null", O_RDWR);
			if ((i && setsid() < 0) || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 ||
			    dup2(fd, 2) < 0)
				_exit(127);
			execlp("sleep", "sleep", "600", (char *)NULL);
			_exit(127);
		}
	}
	run_marked(own_main, NULL);
	bool alive[2] = {own_alive(own[0]), own_alive(own[1])};
	for (int i = 0; i < 2; i++) {
		int status;
		kill(own[i], SIGKILL);
		waitpid(own[i], &status, 0);
	}
	CHECK(alive[0] && alive[1]);
}
