/*
 * test-fail.c - failure injection: "a failed call changes nothing".
 *
 * This executable is linked with GNU ld's --wrap for every allocation and
 * for the system calls that make something herd has to give back (see
 * test/CMakeLists.txt): herd's references to malloc, mmap, pipe2, ... go
 * to the __wrap_* functions below, which count the calls and fail the Nth
 * one while injection is armed, and otherwise call the real function.
 * (--wrap redirects the references of the objects linked, herd's and this
 * file's, not those inside the C library, which is what is wanted.)
 *
 * A case walks N = 1, 2, 3, ...: each N runs a fresh runtime in which the
 * call under test is made with the Nth wrapped call failing (armed only
 * around that call, and only for calls the calling task makes, or the
 * calling thread, or any thread, as the case says), until a run sees no
 * injection. At each N it checks that the call returned success or the
 * documented error for what failed, that the object can still be used
 * normally, and, once the runtime has ended, that nothing was left: no
 * descriptor, no allocation (the wrappers count allocations and frees),
 * no mapping, no thread, no child process, no cgroup.
 *
 * Each walk prints how many injection points it went through (N = 1 to
 * that number) and which calls were failed. TEST_FAIL_VERBOSE=1 prints a
 * line per run; TEST_FAIL_BT=1 a backtrace of each failed call (for
 * addr2line). A run that hangs fails the case after 20 s (60 s under a
 * sanitizer), naming its N.
 *
 * Not wrapped: clone() (herd's fallback where clone3 is missing),
 * syscall(SYS_pidfd_open) (its fallback where clone3 gives no pidfd),
 * accept4, mkdirat (a cgroup that cannot be made: the child runs without),
 * sigaction, madvise and mprotect (a guard page that cannot be had: a
 * canary instead).
 *
 * Under ASan and TSan the wrappers still see herd's calls: --wrap works on
 * the references in the objects linked, and __real_malloc is the
 * sanitizer's malloc. The per-run allocation count is checked there too,
 * and ASan's leak checker checks the process at its exit.
 */
#define _GNU_SOURCE
#include "procs.h"

#if defined(__GLIBC__)
#include <execinfo.h> /* glibc's; musl has no backtrace() */
#define HAVE_BACKTRACE 1
#endif
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

/* ------------------------------------------------------------------ */
/* The wrappers                                                       */
/* ------------------------------------------------------------------ */

enum {
	K_MALLOC, K_CALLOC, K_REALLOC, K_POSIX_MEMALIGN, K_ALIGNED_ALLOC,
	K_MMAP, K_CLONE3, K_PIPE2, K_EPOLL_CTL, K_EPOLL_CREATE1, K_EVENTFD,
	K_TIMERFD_CREATE, K_PTHREAD_CREATE, K_OPEN, K_OPENAT, K_SOCKET,
	K_FOPEN, K_OPENDIR, K_FDOPENDIR,
	K_NKINDS
};

static const char *const kind_name[K_NKINDS] = {
	"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc",
	"mmap", "herd__clone3", "pipe2", "epoll_ctl", "epoll_create1", "eventfd",
	"timerfd_create", "pthread_create", "open", "openat", "socket",
	"fopen", "opendir", "fdopendir",
};

#define M(k) (1u << (k))
#define M_ALLOC (M(K_MALLOC) | M(K_CALLOC) | M(K_REALLOC) | M(K_POSIX_MEMALIGN) | \
		 M(K_ALIGNED_ALLOC))
#define M_ALL ((1u << K_NKINDS) - 1)

/* Whose calls count while armed. */
enum { WHO_ANY, WHO_THREAD, WHO_TASK };

/* Atomics throughout: the wrappers run on every thread, and one that saw
 * an earlier arming may read the fields as they are set again. */
static struct {
	_Atomic unsigned mask;  /* the kinds armed; 0: disarmed */
	_Atomic long calls;     /* armed calls seen */
	_Atomic int injected;   /* the kind that was failed, or -1 */
	_Atomic long fail_at;   /* the N */
	_Atomic int who;
	_Atomic(pthread_t) thread;
	_Atomic uint64_t task;
} inj = {.injected = -1};

/* What the wrappers count, armed or not. */
static _Atomic long live_allocs, live_maps;

static bool should_fail(int k)
{
	unsigned m = atomic_load(&inj.mask);
	if (!(m & M(k)))
		return false;
	if (inj.who == WHO_THREAD && !pthread_equal(pthread_self(), inj.thread))
		return false;
	if (inj.who == WHO_TASK && herd_task_id() != inj.task)
		return false;
	if (atomic_fetch_add(&inj.calls, 1) + 1 != inj.fail_at)
		return false;
	atomic_store(&inj.injected, k);
	if (getenv("TEST_FAIL_BT")) {
		/* Where it failed: addr2line -e test-fail the +offsets. */
		fprintf(stderr, "N=%ld: failing %s at\n", inj.fail_at, kind_name[k]);
#ifdef HAVE_BACKTRACE
		void *bt[16];
		backtrace_symbols_fd(bt, backtrace(bt, 16), 2);
#else
		fprintf(stderr, "  (no backtrace() in this C library)\n");
#endif
	}
	return true;
}

/* The errno each system call fails with: what the real call reports when
 * the process is out of what it makes. */
static int fail_errno(int k)
{
	switch (k) {
	case K_EPOLL_CTL:
	case K_FDOPENDIR:
		return ENOMEM;
	case K_CLONE3:
	case K_PTHREAD_CREATE:
		return EAGAIN;
	default:
		return EMFILE;
	}
}

#define WRAP_PROTO(ret, name, ...)          \
	ret __real_##name(__VA_ARGS__);    \
	ret __wrap_##name(__VA_ARGS__)

WRAP_PROTO(void *, malloc, size_t);
WRAP_PROTO(void *, calloc, size_t, size_t);
WRAP_PROTO(void *, realloc, void *, size_t);
WRAP_PROTO(int, posix_memalign, void **, size_t, size_t);
WRAP_PROTO(void *, aligned_alloc, size_t, size_t);
WRAP_PROTO(void, free, void *);
WRAP_PROTO(void *, mmap, void *, size_t, int, int, int, off_t);
WRAP_PROTO(int, munmap, void *, size_t);
WRAP_PROTO(int, herd__clone3, void *, size_t, int (*)(void *), void *);
WRAP_PROTO(int, pipe2, int *, int);
WRAP_PROTO(int, epoll_ctl, int, int, int, struct epoll_event *);
WRAP_PROTO(int, epoll_create1, int);
WRAP_PROTO(int, eventfd, unsigned, int);
WRAP_PROTO(int, timerfd_create, int, int);
WRAP_PROTO(int, pthread_create, pthread_t *, const pthread_attr_t *,
	   void *(*)(void *), void *);
WRAP_PROTO(int, open, const char *, int, ...);
WRAP_PROTO(int, openat, int, const char *, int, ...);
WRAP_PROTO(int, socket, int, int, int);
WRAP_PROTO(FILE *, fopen, const char *, const char *);
WRAP_PROTO(DIR *, opendir, const char *);
WRAP_PROTO(DIR *, fdopendir, int);

void *__wrap_malloc(size_t n)
{
	if (should_fail(K_MALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_malloc(n);
	if (p)
		atomic_fetch_add(&live_allocs, 1);
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	if (should_fail(K_CALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_calloc(n, size);
	if (p)
		atomic_fetch_add(&live_allocs, 1);
	return p;
}

void *__wrap_realloc(void *old, size_t n)
{
	if (should_fail(K_REALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_realloc(old, n);
	if (p && !old)
		atomic_fetch_add(&live_allocs, 1);
	return p;
}

int __wrap_posix_memalign(void **out, size_t align, size_t n)
{
	if (should_fail(K_POSIX_MEMALIGN))
		return ENOMEM;
	int rc = __real_posix_memalign(out, align, n);
	if (rc == 0)
		atomic_fetch_add(&live_allocs, 1);
	return rc;
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
	if (should_fail(K_ALIGNED_ALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = __real_aligned_alloc(align, n);
	if (p)
		atomic_fetch_add(&live_allocs, 1);
	return p;
}

void __wrap_free(void *p)
{
	if (p)
		atomic_fetch_sub(&live_allocs, 1);
	__real_free(p);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (should_fail(K_MMAP)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *p = __real_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED)
		atomic_fetch_add(&live_maps, 1);
	return p;
}

int __wrap_munmap(void *addr, size_t len)
{
	int rc = __real_munmap(addr, len);
	if (rc == 0)
		atomic_fetch_sub(&live_maps, 1);
	return rc;
}

/* herd's own clone3 stub (src/os/switch-*.S): returns the pid or -errno.
 * The child never comes back here: the stub calls its function on the
 * child's stack and exits. */
int __wrap_herd__clone3(void *args, size_t size, int (*fn)(void *), void *arg)
{
	if (should_fail(K_CLONE3))
		return -fail_errno(K_CLONE3);
	return __real_herd__clone3(args, size, fn, arg);
}

#define FAIL_FD_CALL(k)                          \
	do {                                     \
		if (should_fail(k)) {            \
			errno = fail_errno(k);   \
			return -1;               \
		}                                \
	} while (0)

int __wrap_pipe2(int *fds, int flags)
{
	FAIL_FD_CALL(K_PIPE2);
	return __real_pipe2(fds, flags);
}

/* Only EPOLL_CTL_ADD can run out of memory; a failed MOD or DEL is not
 * something the kernel does for want of resources. */
int __wrap_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
	if (op == EPOLL_CTL_ADD)
		FAIL_FD_CALL(K_EPOLL_CTL);
	return __real_epoll_ctl(ep, op, fd, ev);
}

int __wrap_epoll_create1(int flags)
{
	FAIL_FD_CALL(K_EPOLL_CREATE1);
	return __real_epoll_create1(flags);
}

int __wrap_eventfd(unsigned init, int flags)
{
	FAIL_FD_CALL(K_EVENTFD);
	return __real_eventfd(init, flags);
}

int __wrap_timerfd_create(int clock, int flags)
{
	FAIL_FD_CALL(K_TIMERFD_CREATE);
	return __real_timerfd_create(clock, flags);
}

int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *at,
			  void *(*fn)(void *), void *arg)
{
	if (should_fail(K_PTHREAD_CREATE))
		return fail_errno(K_PTHREAD_CREATE);
	return __real_pthread_create(th, at, fn, arg);
}

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	FAIL_FD_CALL(K_OPEN);
	return __real_open(path, flags, mode);
}

int __wrap_openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	FAIL_FD_CALL(K_OPENAT);
	return __real_openat(dirfd, path, flags, mode);
}

int __wrap_socket(int domain, int type, int protocol)
{
	FAIL_FD_CALL(K_SOCKET);
	return __real_socket(domain, type, protocol);
}

/* The C library's streams and directories: what they allocate inside
 * the library is freed there too (fclose, closedir), out of the counts. */
FILE *__wrap_fopen(const char *path, const char *mode)
{
	if (should_fail(K_FOPEN)) {
		errno = fail_errno(K_FOPEN);
		return NULL;
	}
	return __real_fopen(path, mode);
}

DIR *__wrap_opendir(const char *path)
{
	if (should_fail(K_OPENDIR)) {
		errno = fail_errno(K_OPENDIR);
		return NULL;
	}
	return __real_opendir(path);
}

/* On failure the descriptor stays the caller's to close. */
DIR *__wrap_fdopendir(int fd)
{
	if (should_fail(K_FDOPENDIR)) {
		errno = fail_errno(K_FDOPENDIR);
		return NULL;
	}
	return __real_fdopendir(fd);
}

/* ------------------------------------------------------------------ */
/* Arming, and the walk                                               */
/* ------------------------------------------------------------------ */

static long cur_n;           /* the N of this run */
static int last_injected;    /* what the run's armed section failed, or -1 */
static long hist[K_NKINDS];  /* injection points walked, by kind */

/* A run's armed sections make one sequence of calls, in which the Nth
 * fails: the count starts at each run, not at each arming. */
static void run_begin(void)
{
	last_injected = -1;
	atomic_store(&inj.calls, 0);
}

static void arm(unsigned mask, int who)
{
	atomic_store(&inj.mask, 0);
	inj.fail_at = cur_n;
	inj.who = who;
	inj.thread = pthread_self();
	inj.task = herd_task_id();
	atomic_store(&inj.injected, -1);
	atomic_store(&inj.mask, mask); /* seq_cst: the fields above first */
}

/* Disarms; returns the kind that was failed, or -1. */
static int disarm(void)
{
	atomic_store(&inj.mask, 0);
	int k = atomic_exchange(&inj.injected, -1); /* a second disarm finds none */
	if (k >= 0) {
		last_injected = k;
		hist[k]++;
	}
	return k;
}

/* The code a herd call returns for a failed call of kind k, as documented:
 * -ENOMEM for memory, -errno for a system call. */
static int code_of(int k)
{
	if (k < 0)
		return 0;
	if (M(k) & (M_ALLOC | M(K_MMAP)))
		return -ENOMEM;
	return -fail_errno(k);
}

/* Fails, naming N and what failed, unless `ok`. */
#define CHECK_AT(ok, rc, k)                                                   \
	do {                                                                  \
		if (!(ok)) {                                                  \
			fprintf(stderr, "%s:%d: at N=%ld (%s failed): %s, got %lld (%s)\n", \
				__FILE__, __LINE__, cur_n,                    \
				(k) >= 0 ? kind_name[k] : "nothing", #ok,     \
				(long long)(rc), herd_strerror((int)(rc)));   \
			exit(1);                                              \
		}                                                             \
	} while (0)

/* Entries of a /proc directory (opendir and readdir allocate inside the C
 * library, which the wrappers do not see). */
static int count_dir(const char *dir)
{
	return count_entries(dir, "");
}

/* The children of every thread of this process. */
static int count_children(void)
{
	DIR *d = opendir("/proc/self/task");
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], buf[4096];
		snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
		if (read_small(path, buf, sizeof buf))
			for (char *p = buf; *p; p++)
				n += *p >= '0' && *p <= '9' && (p == buf || p[-1] == ' ');
	}
	closedir(d);
	return n;
}

static char cg_dir[4096];
static bool cg_ok;

struct state {
	int fds, threads;
	long allocs, maps;
	int cgroups;
};

static struct state state_now(void)
{
	struct state s = {
		.fds = count_dir("/proc/self/fd"),
		.threads = count_dir("/proc/self/task"),
		.allocs = atomic_load(&live_allocs),
		.maps = atomic_load(&live_maps),
		.cgroups = cg_ok ? herd_cgroups(cg_dir) : 0,
	};
	return s;
}

/* After a run: everything as it was before it. Threads that herd let go
 * (detached ones) may take a moment to end. */
static void check_state(const struct state *before, int k)
{
	struct state s;
	/* Under qemu-user, /proc/self/task also lists threads of qemu's own
	 * (its RCU thread), which come and go: there, no more than before. */
	bool emulated = test_emulator() != NULL;
	for (int i = 0;; i++) {
		s = state_now();
		if (s.threads == before->threads || (emulated && s.threads < before->threads) ||
		    i == 200)
			break;
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	CHECK_AT(s.fds == before->fds, s.fds - before->fds, k);
	CHECK_AT(emulated ? s.threads <= before->threads : s.threads == before->threads,
		 s.threads - before->threads, k);
	CHECK_AT(s.allocs == before->allocs, s.allocs - before->allocs, k);
	CHECK_AT(s.maps == before->maps, s.maps - before->maps, k);
	CHECK_AT(s.cgroups == before->cgroups, s.cgroups - before->cgroups, k);
	errno = 0;
	CHECK_AT(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD, 0, k);
}

static void noop(void *arg)
{
	(void)arg;
}

/* TEST_FAIL_VERBOSE=1: a line per run, to find the one that hangs. */
static void verbose(int k, long rc)
{
	static int on = -1;
	if (on < 0)
		on = getenv("TEST_FAIL_VERBOSE") != NULL;
	if (on)
		fprintf(stderr, "N=%ld: %s failed, %ld\n", cur_n, k >= 0 ? kind_name[k] : "nothing", rc);
}

/* A run that hangs (a failure herd never gets over) fails the case in
 * seconds, naming its N, rather than at CTest's timeout. */
static void on_alarm(int sig)
{
	(void)sig;
	char msg[96];
	int len = snprintf(msg, sizeof msg, "the run with N=%ld hangs\n", cur_n);
	ssize_t r = write(2, msg, (size_t)len);
	(void)r;
	_exit(1);
}

static void watchdog(bool on)
{
	if (on)
		signal(SIGALRM, on_alarm);
	alarm(on ? (TEST_SCALE > 1 ? 60 : 20) : 0);
}

static void walk_begin(void)
{
	memset(hist, 0, sizeof hist);
	snprintf(mark, sizeof mark, "HERD_TEST_MARK=fail-%d", (int)getpid());
	setenv("HERD_TEST_MARK", strchr(mark, '=') + 1, 1);
	static bool said;
	cg_ok = cgroup_usable(cg_dir, sizeof cg_dir);
	if (!said) {
		said = true;
		printf("cgroups: %s%s\n", cg_ok ? "usable in " : "not usable",
		       cg_ok ? cg_dir : "");
	}
	/* A first run makes what stays for the process (the exit handler's
	 * registration, say): the walk compares runs after it. */
	test_run(1, noop, NULL);
}

static void walk_end(const char *name, long points)
{
	printf("%s: %ld injection points; calls failed:", name, points);
	for (int k = 0; k < K_NKINDS; k++)
		if (hist[k])
			printf(" %s %ld", kind_name[k], hist[k]);
	printf("\n");
	fflush(stdout);
}

/* The walk's limit: a call path with more wrapped calls than this is a
 * loop that does not give up (the test would never end). */
#define WALK_MAX 400

/*
 * Walks N = 1, 2, ...: runs body as the first task of a fresh runtime with
 * `workers` workers; body arms injection around the call under test and
 * checks what it returned. Ends after the first run that injected nothing.
 */
static void walk(const char *name, unsigned workers, herd_fn body, void *arg)
{
	walk_begin();
	struct state before = state_now();
	for (cur_n = 1;; cur_n++) {
		CHECK(cur_n < WALK_MAX);
		run_begin();
		watchdog(true);
		test_run(workers, body, arg);
		watchdog(false);
		verbose(last_injected, 0);
		check_state(&before, last_injected);
		if (last_injected < 0)
			break;
	}
	walk_end(name, cur_n - 1);
}

/* ------------------------------------------------------------------ */
/* Small helpers for the bodies                                       */
/* ------------------------------------------------------------------ */

static void count_up(void *arg)
{
	atomic_fetch_add((_Atomic int *)arg, 1);
}

struct big_arg {
	_Atomic int *ran;
	char pad[4096];
};

static void count_up_big(void *arg)
{
	struct big_arg *b = arg;
	CHECK_EQ(b->pad[4095], 7);
	atomic_fetch_add(b->ran, 1);
}

/* Spawns a task and sees it run: the runtime works. */
static void check_go_works(void)
{
	static _Atomic int ran;
	atomic_store(&ran, 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(herd_go(s, count_up, &ran, 0));
	CHECK_OK(herd_scope_close(s));
	CHECK_EQ(atomic_load(&ran), 1);
}

/* ------------------------------------------------------------------ */
/* herd_run                                                           */
/* ------------------------------------------------------------------ */

static void first_disarms(void *arg)
{
	(void)arg;
	disarm();
	check_go_works();
}

/* Startup failing at each allocation or system call, on any thread (the
 * workers allocate their own things as they start): herd_run returns
 * -ENOMEM or -EAGAIN having started nothing, or recovers and runs fn. */
TEST(run_start)
{
	walk_begin();
	struct state before = state_now();
	for (cur_n = 1;; cur_n++) {
		CHECK(cur_n < WALK_MAX);
		run_begin();
		herd_config cfg = {.workers = 2};
		watchdog(true);
		arm(M_ALL, WHO_ANY);
		int rc = herd_run(&cfg, first_disarms, NULL);
		int k = disarm();
		watchdog(false);
		if (k < 0)
			k = last_injected; /* the first task disarmed */
		verbose(k, rc);
		/* herd_run reports memory and threads as -ENOMEM or -EAGAIN,
		 * and a descriptor of the poller's it could not make
		 * (epoll_create1, eventfd: the injection says EMFILE) as
		 * -EMFILE. */
		bool fd_kind = k == K_EPOLL_CREATE1 || k == K_EVENTFD;
		CHECK_AT(rc == 0 || (k >= 0 && (fd_kind ? rc == -EMFILE
							 : (rc == -ENOMEM || rc == -EAGAIN))),
			 rc, k);
		check_state(&before, k);
		CHECK_EQ(herd_workers(), -ESRCH);
		if (k < 0)
			break;
	}
	walk_end("herd_run start", cur_n - 1);
	test_run(2, noop, NULL);
}

static void last_arms(void *arg)
{
	(void)arg;
	check_go_works();
	arm(M_ALL, WHO_ANY);
}

/* The end of a run failing at each call it makes: herd_run still returns
 * 0 and leaves nothing. */
TEST(run_end)
{
	walk_begin();
	struct state before = state_now();
	for (cur_n = 1;; cur_n++) {
		CHECK(cur_n < WALK_MAX);
		run_begin();
		herd_config cfg = {.workers = 2};
		watchdog(true);
		int rc = herd_run(&cfg, last_arms, NULL);
		int k = disarm();
		watchdog(false);
		CHECK_AT(rc == 0, rc, k);
		check_state(&before, k);
		if (k < 0)
			break;
	}
	walk_end("herd_run end", cur_n - 1);
}

/* ------------------------------------------------------------------ */
/* Tasks                                                              */
/* ------------------------------------------------------------------ */

static void go_body(void *arg)
{
	size_t size = *(size_t *)arg;
	static _Atomic int ran;
	atomic_store(&ran, 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	static struct big_arg big;
	big.ran = &ran;
	big.pad[4095] = 7;
	arm(M_ALL, WHO_TASK);
	int rc = size ? herd_go(s, count_up_big, &big, sizeof big)
		      : herd_go(s, count_up, &ran, 0);
	int k = disarm();
	CHECK_AT(rc == code_of(k), rc, k);
	CHECK_OK(herd_scope_close(s));
	CHECK_AT(atomic_load(&ran) == (rc == 0), rc, k);
	check_go_works();
}

TEST(go)
{
	size_t small = 0, big = 1;
	walk("herd_go", 1, go_body, &small);
	walk("herd_go (big argument)", 1, go_body, &big);
}

struct foreign {
	herd_scope *scope;
	int rc, k;
};

static void *foreign_thread(void *arg)
{
	struct foreign *f = arg;
	static _Atomic int ran;
	arm(M_ALL, WHO_THREAD);
	f->rc = herd_go(f->scope, count_up, &ran, 0);
	f->k = disarm();
	return NULL;
}

static int join_thread(void *arg)
{
	return pthread_join(*(pthread_t *)arg, NULL);
}

/* herd_go from a thread that is not a worker: the task goes through the
 * global queue. */
static void go_foreign_body(void *arg)
{
	(void)arg;
	struct foreign f = {0};
	CHECK_OK(herd_scope_open(&f.scope));
	pthread_t th;
	CHECK(pthread_create(&th, NULL, foreign_thread, &f) == 0);
	CHECK_EQ(herd_blocking(join_thread, &th), 0);
	CHECK_AT(f.rc == code_of(f.k), f.rc, f.k);
	CHECK_OK(herd_scope_close(f.scope));
	check_go_works();
}

TEST(go_foreign)
{
	walk("herd_go from a plain thread", 1, go_foreign_body, NULL);
}

/* The first slab holds this many stacks (SLAB_FIRST in src/core/stack.c). */
#define SLAB_FIRST 16

static void park_on(void *arg)
{
	herd_chan *ch = arg;
	CHECK_EQ(herd_chan_recv(ch, NULL, HERD_FOREVER), HERD_ECLOSED);
}

static long stackless_runs; /* runs where herd_go succeeded but the stack failed */

/*
 * A task that gets no stack when it first runs waits until another task
 * ends (src/core/sched.c, defer_stackless): herd_go has returned 0, so the
 * task must run later. The first slab's stacks are all taken by parked
 * tasks, so the new task needs a new slab: malloc and mmap. Those calls
 * happen on the worker's thread, in the scheduler, as the test task
 * yields: the calls counted are the thread's.
 */
static void stackless_body(void *arg)
{
	bool wait_first = *(bool *)arg;
	herd_chan *ch;
	CHECK_OK(herd_chan_make(&ch, 0, 0));
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	for (int i = 0; i < SLAB_FIRST - 1; i++)
		CHECK_OK(herd_go(s, park_on, ch, 0));
	test_wait_parked(SLAB_FIRST - 1);
	herd_stats st;
	CHECK_OK(herd_stats_get(&st));
	if (st.stacks != SLAB_FIRST) {
		fprintf(stderr, "%" PRIu64 " stacks with %d tasks: the first slab is "
			"not %d stacks any more?\n", st.stacks, SLAB_FIRST, SLAB_FIRST);
		exit(1);
	}
	static _Atomic int ran;
	atomic_store(&ran, 0);
	arm(M_ALLOC | M(K_MMAP), WHO_THREAD);
	int rc = herd_go(s, count_up, &ran, 0);
	for (int i = 0; i < 3; i++)
		herd_yield();
	int k = disarm();
	CHECK_AT(rc == 0 || (rc == -ENOMEM && k >= 0), rc, k);
	if (rc == 0 && k >= 0 && atomic_load(&ran) == 0)
		stackless_runs++; /* it is waiting for a stack */
	if (wait_first && rc == 0) {
		/* No task ends while the spawner waits for it: it runs all
		 * the same (the supervisor has it try again). */
		int64_t give_up = herd_deadline(10 * HERD_SEC);
		while (atomic_load(&ran) == 0) {
			CHECK_AT(herd_now() < give_up, rc, k);
			CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
		}
	}
	/* The parked tasks end: a stack comes free, and it runs. */
	CHECK_OK(herd_chan_close(ch));
	CHECK_OK(herd_scope_close(s));
	CHECK_AT(atomic_load(&ran) == (rc == 0), rc, k);
	CHECK_OK(herd_chan_free(ch));
	check_go_works();
}

TEST(go_stackless)
{
	bool release = false, wait = true;
	walk("herd_go without a stack (a task ends)", 1, stackless_body, &release);
	walk("herd_go without a stack (no task ends)", 1, stackless_body, &wait);
	printf("runs where a spawned task had to wait for a stack: %ld\n", stackless_runs);
	CHECK(stackless_runs >= 1);
}

/* ------------------------------------------------------------------ */
/* Scopes, wait groups, channels, select, timers                      */
/* ------------------------------------------------------------------ */

/* Parks until its scope is canceled. */
static void park_for(void *arg)
{
	(void)arg;
	CHECK_EQ(herd_sleep(herd_deadline(20 * HERD_SEC)), HERD_ECANCELED);
}

static void scope_body(void *arg)
{
	(void)arg;
	static _Atomic int ran;
	atomic_store(&ran, 0);
	herd_scope *s = NULL;
	arm(M_ALL, WHO_TASK);
	int rc = herd_scope_open(&s);
	int k = disarm();
	CHECK_AT(rc == code_of(k), rc, k);
	if (rc == 0) {
		CHECK_OK(herd_go(s, count_up, &ran, 0));
		CHECK_OK(herd_go(s, park_for, NULL, 0));
		/* A wait with a deadline queues a timer. */
		int64_t deadline = herd_deadline(HERD_MSEC);
		arm(M_ALL, WHO_TASK);
		rc = herd_scope_wait(s, deadline);
		k = disarm();
		CHECK_AT(rc == HERD_ETIMEDOUT || (k >= 0 && rc == -ENOMEM), rc, k);
		CHECK_AT(rc != HERD_ETIMEDOUT || herd_now() >= deadline, rc, k);
		CHECK_OK(herd_scope_cancel(s));
		CHECK_OK(herd_scope_wait(s, herd_deadline(5 * HERD_SEC)));
		/* Closing allocates nothing, but let it be seen. */
		arm(M_ALL, WHO_TASK);
		rc = herd_scope_close(s);
		k = disarm();
		CHECK_AT(rc == 0, rc, k);
		CHECK_EQ(atomic_load(&ran), 1);
	}
	check_go_works();
}

TEST(scope)
{
	walk("herd_scope_open/close", 1, scope_body, NULL);
}

/* A limit's first setting allocates; a spawn that waits for a slot with a
 * deadline queues a timer; a failure allocates nothing. */
static void scope_limit_body(void *arg)
{
	(void)arg;
	static _Atomic int ran;
	atomic_store(&ran, 0);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	arm(M_ALL, WHO_TASK);
	int rc = herd_scope_limit(s, 1);
	int k = disarm();
	CHECK_AT(rc == code_of(k), rc, k);
	bool limited = rc == 0;
	if (limited) {
		/* Limited: one place, taken by a task that parks. */
		CHECK_OK(herd_go(s, park_for, NULL, 0));
		int64_t deadline = herd_deadline(HERD_MSEC);
		arm(M_ALL, WHO_TASK);
		rc = herd_go_until(s, count_up, &ran, 0, deadline);
		k = disarm();
		CHECK_AT(rc == HERD_ETIMEDOUT || (k >= 0 && rc == -ENOMEM), rc, k);
		CHECK_AT(rc != HERD_ETIMEDOUT || herd_now() >= deadline, rc, k);
	} else {
		/* No limit was set: spawns do not wait. */
		CHECK_OK(herd_go_until(s, park_for, NULL, 0, HERD_NOWAIT));
		CHECK_OK(herd_go_until(s, count_up, &ran, 0, HERD_NOWAIT));
	}
	arm(M_ALL, WHO_TASK);
	rc = herd_scope_fail(s, -EIO);
	k = disarm();
	CHECK_AT(rc == 1, rc, k);
	CHECK_EQ(herd_scope_close(s), -EIO);
	CHECK_EQ(atomic_load(&ran), limited ? 0 : 1);
	check_go_works();
}

TEST(scope_limit)
{
	walk("herd_scope_limit/herd_go_until/herd_scope_fail", 1, scope_limit_body, NULL);
}

static void wg_body(void *arg)
{
	(void)arg;
	herd_wg *wg = NULL;
	arm(M_ALL, WHO_TASK);
	int rc = herd_wg_new(&wg);
	int k = disarm();
	CHECK_AT(rc == code_of(k), rc, k);
	if (rc)
		return;
	CHECK_EQ(herd_wg_add(wg, 1), 1);
	/* A wait with a deadline queues a timer (the heap grows). */
	int64_t deadline = herd_deadline(HERD_MSEC);
	arm(M_ALL, WHO_TASK);
	rc = herd_wg_wait(wg, deadline);
	k = disarm();
	CHECK_AT(rc == HERD_ETIMEDOUT || (k >= 0 && rc == -ENOMEM), rc, k);
	CHECK_AT(rc != HERD_ETIMEDOUT || herd_now() >= deadline, rc, k);
	CHECK_EQ(herd_wg_done(wg), 0);
	CHECK_OK(herd_wg_wait(wg, herd_deadline(HERD_SEC)));
	CHECK_OK(herd_wg_free(wg));
}

TEST(wg)
{
	walk("herd_wg_new/wait", 1, wg_body, NULL);
}

struct chan_shape {
	size_t elem, cap;
};

static void chan_body(void *arg)
{
	struct chan_shape *sh = arg;
	herd_chan *ch = NULL;
	arm(M_ALL, WHO_TASK);
	int rc = herd_chan_make(&ch, sh->elem, sh->cap);
	int k = disarm();
	CHECK_AT(rc == code_of(k), rc, k);
	if (rc)
		return;
	char v[256] = {1};
	if (sh->cap) {
		CHECK_OK(herd_chan_try_send(ch, v));
		CHECK_OK(herd_chan_try_recv(ch, v));
	}
	CHECK_EQ(herd_chan_try_recv(ch, v), HERD_ETIMEDOUT);
	/* A receive with a deadline queues a timer. */
	int64_t deadline = herd_deadline(HERD_MSEC);
	arm(M_ALL, WHO_TASK);
	rc = herd_chan_recv(ch, v, deadline);
	k = disarm();
	CHECK_AT(rc == HERD_ETIMEDOUT || (k >= 0 && rc == -ENOMEM), rc, k);
	CHECK_AT(rc != HERD_ETIMEDOUT || herd_now() >= deadline, rc, k);
	CHECK_OK(herd_chan_free(ch));
}

TEST(chan)
{
	struct chan_shape shapes[] = {{0, 0}, {8, 4}, {256, 1000}};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		char name[64];
		snprintf(name, sizeof name, "herd_chan_make(%zu, %zu)", shapes[i].elem,
			 shapes[i].cap);
		walk(name, 1, chan_body, &shapes[i]);
	}
}

#define SELECT_N 20 /* more than the 16 cases select keeps on its stack */

static void select_body(void *arg)
{
	bool block = *(bool *)arg;
	herd_chan *ch[SELECT_N];
	herd_case cs[SELECT_N];
	int v[SELECT_N];
	for (int i = 0; i < SELECT_N; i++) {
		CHECK_OK(herd_chan_make(&ch[i], sizeof(int), 1));
		cs[i] = (herd_case)HERD_CASE_RECV(ch[i], &v[i]);
	}
	int one = 1;
	if (!block)
		CHECK_OK(herd_chan_try_send(ch[7], &one));
	int64_t deadline = block ? herd_deadline(HERD_MSEC) : HERD_FOREVER;
	arm(M_ALL, WHO_TASK);
	int rc = herd_select(cs, SELECT_N, deadline);
	int k = disarm();
	if (block) {
		CHECK_AT(rc == HERD_ETIMEDOUT || (k >= 0 && rc == -ENOMEM), rc, k);
		CHECK_AT(rc != HERD_ETIMEDOUT || herd_now() >= deadline, rc, k);
	} else {
		CHECK_AT(rc == 7 || (k >= 0 && rc == -ENOMEM), rc, k);
		/* Failed: the value is still there. */
		CHECK_EQ(herd_chan_len(ch[7]), rc == 7 ? 0 : 1);
		CHECK_EQ(herd_select(cs, SELECT_N, HERD_NOWAIT), rc == 7 ? HERD_ETIMEDOUT : 7);
	}
	for (int i = 0; i < SELECT_N; i++)
		CHECK_OK(herd_chan_free(ch[i]));
}

TEST(select)
{
	bool ready = false, block = true;
	walk("herd_select (a case ready)", 1, select_body, &ready);
	walk("herd_select (waits)", 1, select_body, &block);
}

static void timer_body(void *arg)
{
	(void)arg;
	herd_timer *t = NULL;
	arm(M_ALL, WHO_TASK);
	int rc = herd_timer_new(&t, herd_deadline(HERD_MSEC), 0);
	int k = disarm();
	CHECK_AT(rc == code_of(k), rc, k);
	if (rc)
		return;
	int64_t when;
	CHECK_OK(herd_chan_recv(herd_timer_chan(t), &when, herd_deadline(5 * HERD_SEC)));
	/* Fired: a reset puts it back in the heap. */
	arm(M_ALL, WHO_TASK);
	rc = herd_timer_reset(t, herd_deadline(HERD_MSEC), 0);
	k = disarm();
	CHECK_AT(rc == 0 || (k >= 0 && rc == code_of(k)), rc, k);
	if (rc < 0)
		CHECK_EQ(herd_timer_reset(t, herd_deadline(HERD_MSEC), 0), 0);
	CHECK_OK(herd_chan_recv(herd_timer_chan(t), &when, herd_deadline(5 * HERD_SEC)));
	CHECK_OK(herd_timer_free(t));
}

TEST(timer)
{
	walk("herd_timer_new/reset", 1, timer_body, NULL);
}

/* The timer heap's first size (src/core/timerheap.c). */
#define HEAP_FIRST 64

/*
 * A reset that has to grow the timer heap, of a timer that has fired and
 * whose tick waits in its channel: when the heap cannot grow, the reset
 * fails, and the tick is still there.
 */
static void timer_reset_full_body(void *arg)
{
	(void)arg;
	herd_timer *t, *fill[HEAP_FIRST];
	CHECK_OK(herd_timer_new(&t, herd_now(), 0));
	int64_t give_up = herd_deadline(10 * HERD_SEC);
	while (herd_chan_len(herd_timer_chan(t)) == 0) {
		CHECK(herd_now() < give_up);
		CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
	}
	/* The heap is full: HEAP_FIRST pending timers, and nothing else
	 * waits with a deadline. */
	for (int i = 0; i < HEAP_FIRST; i++)
		CHECK_OK(herd_timer_new(&fill[i], herd_deadline(3600 * HERD_SEC), 0));
	arm(M_ALL, WHO_TASK);
	int rc = herd_timer_reset(t, herd_deadline(HERD_MSEC), 0);
	int k = disarm();
	CHECK_AT(rc == 0 || (k >= 0 && rc == -ENOMEM), rc, k);
	int64_t when;
	if (rc < 0) {
		/* Nothing changed: the tick is still there. */
		CHECK_AT(herd_chan_len(herd_timer_chan(t)) == 1, rc, k);
		CHECK_OK(herd_chan_recv(herd_timer_chan(t), &when, HERD_NOWAIT));
		CHECK_EQ(herd_timer_reset(t, herd_deadline(HERD_MSEC), 0), 0);
	}
	/* The reset emptied the channel; the new deadline fires. */
	CHECK_OK(herd_chan_recv(herd_timer_chan(t), &when, herd_deadline(5 * HERD_SEC)));
	for (int i = 0; i < HEAP_FIRST; i++)
		CHECK_OK(herd_timer_free(fill[i]));
	CHECK_OK(herd_timer_free(t));
}

TEST(timer_reset_full)
{
	walk("herd_timer_reset (the heap grows)", 1, timer_reset_full_body, NULL);
	CHECK(hist[K_REALLOC] >= 1); /* the heap did have to grow */
}

static void sleep_body(void *arg)
{
	(void)arg;
	int64_t deadline = herd_deadline(HERD_MSEC);
	arm(M_ALL, WHO_TASK);
	int rc = herd_sleep(deadline);
	int k = disarm();
	/* The deadline's timer cannot be queued: -ENOMEM, at once; never an
	 * early return that looks like the end of the sleep. */
	CHECK_AT(rc == 0 || (k >= 0 && rc == -ENOMEM), rc, k);
	CHECK_AT(rc != 0 || herd_now() >= deadline, rc, k);
	CHECK_OK(herd_sleep(herd_deadline(HERD_MSEC)));
}

TEST(sleep)
{
	walk("herd_sleep", 1, sleep_body, NULL);
}

/* ------------------------------------------------------------------ */
/* Descriptors                                                        */
/* ------------------------------------------------------------------ */

static void fd_wait_body(void *arg)
{
	(void)arg;
	int p[2];
	CHECK_OK(herd_pipe(p, HERD_NOWAIT));
	CHECK_EQ(write(p[1], "x", 1), 1);
	arm(M_ALL, WHO_TASK);
	int rc = herd_fd_wait(p[0], HERD_READABLE, herd_deadline(5 * HERD_SEC));
	int k = disarm();
	CHECK_AT(rc == HERD_READABLE || (k >= 0 && rc == code_of(k)), rc, k);
	/* No registration was left behind: the next wait works. */
	CHECK_EQ(herd_fd_wait(p[0], HERD_READABLE, herd_deadline(5 * HERD_SEC)), HERD_READABLE);
	CHECK_OK(herd_close(p[0]));
	CHECK_OK(herd_close(p[1]));
}

TEST(fd_wait)
{
	walk("herd_fd_wait", 1, fd_wait_body, NULL);
}

static void late_writer(void *arg)
{
	int fd = *(int *)arg;
	CHECK_OK(herd_sleep(herd_deadline(2 * HERD_MSEC)));
	CHECK_EQ(write(fd, "y", 1), 1);
}

static void read_body(void *arg)
{
	(void)arg;
	int p[2];
	CHECK_OK(herd_pipe(p, HERD_NOWAIT));
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, late_writer, p[1]));
	char c = 0;
	arm(M_ALL, WHO_TASK);
	ssize_t rc = herd_read(p[0], &c, 1, herd_deadline(5 * HERD_SEC));
	int k = disarm();
	CHECK_AT(rc == 1 || (k >= 0 && rc == code_of(k)), rc, k);
	if (rc != 1)
		CHECK_EQ(herd_read(p[0], &c, 1, herd_deadline(5 * HERD_SEC)), 1);
	CHECK_EQ(c, 'y');
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_close(p[0]));
	CHECK_OK(herd_close(p[1]));
}

static void late_reader(void *arg)
{
	int fd = *(int *)arg;
	char buf[4096];
	CHECK_OK(herd_sleep(herd_deadline(2 * HERD_MSEC)));
	CHECK(read(fd, buf, sizeof buf) > 0);
}

static void write_body(void *arg)
{
	(void)arg;
	int p[2];
	CHECK_OK(herd_pipe(p, HERD_NOWAIT));
	static char fill[4096];
	while (write(p[1], fill, sizeof fill) > 0)
		;
	CHECK_EQ(errno, EAGAIN);
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	CHECK_OK(HERD_GO(s, late_reader, p[0]));
	arm(M_ALL, WHO_TASK);
	ssize_t rc = herd_write(p[1], "z", 1, herd_deadline(5 * HERD_SEC));
	int k = disarm();
	CHECK_AT(rc == 1 || (k >= 0 && rc == code_of(k)), rc, k);
	if (rc != 1)
		CHECK_EQ(herd_write(p[1], "z", 1, herd_deadline(5 * HERD_SEC)), 1);
	CHECK_OK(herd_scope_close(s));
	CHECK_OK(herd_close(p[0]));
	CHECK_OK(herd_close(p[1]));
}

TEST(read_write)
{
	walk("herd_read", 1, read_body, NULL);
	walk("herd_write", 1, write_body, NULL);
}

static void pipe_body(void *arg)
{
	int64_t deadline = *(int64_t *)arg;
	herd_fd_stats fs0, fs;
	CHECK_OK(herd_fd_stats_get(&fs0));
	int before = count_dir("/proc/self/fd");
	int p[2] = {-1, -1}, sk = -1;
	arm(M_ALL, WHO_TASK);
	int rc = herd_pipe(p, deadline == 0 ? HERD_NOWAIT : herd_deadline(deadline));
	int k = disarm();
	/* Out of descriptors with HERD_NOWAIT: -EMFILE; with a deadline it
	 * waits (100 ms without a release) and tries again. */
	if (deadline == 0)
		CHECK_AT(rc == 0 || (k >= 0 && rc == code_of(k)), rc, k);
	else
		CHECK_AT(rc == 0, rc, k);
	CHECK_OK(herd_fd_stats_get(&fs));
	CHECK_EQ(count_dir("/proc/self/fd"), before + (rc == 0 ? 2 : 0));
	if (rc == 0) {
		CHECK_OK(herd_close(p[0]));
		CHECK_OK(herd_close(p[1]));
	}
	arm(M_ALL, WHO_TASK);
	rc = sk = herd_socket(AF_UNIX, SOCK_STREAM, 0, HERD_NOWAIT);
	k = disarm();
	CHECK_AT(rc >= 0 || rc == code_of(k), rc, k);
	if (sk >= 0)
		CHECK_OK(herd_close(sk));
	CHECK_OK(herd_fd_stats_get(&fs));
	CHECK_EQ(fs.open, fs0.open);
	CHECK_EQ(count_dir("/proc/self/fd"), before);
}

TEST(pipe)
{
	int64_t nowait = 0, deadline = 5 * HERD_SEC;
	walk("herd_pipe/herd_socket (HERD_NOWAIT)", 1, pipe_body, &nowait);
	walk("herd_pipe/herd_socket (a deadline: waits and retries)", 1, pipe_body,
	     &deadline);
}

/* ------------------------------------------------------------------ */
/* Helper threads, signals                                            */
/* ------------------------------------------------------------------ */

static int twice(void *arg)
{
	return *(int *)arg * 2;
}

static void blocking_body(void *arg)
{
	(void)arg;
	int v = 21;
	arm(M_ALL, WHO_TASK);
	int rc = herd_blocking(twice, &v);
	int k = disarm();
	/* No helper could be started and none runs: -EAGAIN, for the
	 * thread and for the table of threads alike. */
	CHECK_AT(rc == 42 || (k >= 0 && rc == -EAGAIN), rc, k);
	CHECK_EQ(herd_blocking(twice, &v), 42);
}

TEST(blocking)
{
	walk("herd_blocking", 1, blocking_body, NULL);
}

static void notify_body(void *arg)
{
	(void)arg;
	herd_chan *ch;
	CHECK_OK(herd_chan_make(&ch, sizeof(int), 1));
	struct sigaction sa0, sa1;
	CHECK(sigaction(SIGUSR1, NULL, &sa0) == 0);
	arm(M_ALL, WHO_TASK);
	int rc = herd_signal_notify(ch, SIGUSR1);
	int k = disarm();
	CHECK_AT(rc == code_of(k), rc, k);
	if (rc) {
		/* Nothing changed: SIGUSR1 still has the action it had. */
		CHECK(sigaction(SIGUSR1, NULL, &sa1) == 0);
		CHECK(sa1.sa_handler == sa0.sa_handler);
		CHECK_OK(herd_signal_notify(ch, SIGUSR1));
	}
	CHECK(kill(getpid(), SIGUSR1) == 0);
	int sig = 0;
	CHECK_OK(herd_chan_recv(ch, &sig, herd_deadline(5 * HERD_SEC)));
	CHECK_EQ(sig, SIGUSR1);
	CHECK_OK(herd_signal_stop(ch));
	CHECK_OK(herd_chan_free(ch));
}

TEST(signal_notify)
{
	walk("herd_signal_notify", 1, notify_body, NULL);
}

/* ------------------------------------------------------------------ */
/* Child processes                                                    */
/* ------------------------------------------------------------------ */

struct proc_case {
	int stdio[3];
	bool warm; /* a first start (unarmed) makes what a runtime keeps */
};

static void proc_body(void *arg)
{
	struct proc_case *pc = arg;
	char *cat[] = {"/bin/sh", "-c", "read x; echo $x", NULL};
	char *echo[] = {"/bin/sh", "-c", "echo hi", NULL};
	herd_proc_opts o = {.argv = pc->stdio[0] == HERD_STDIO_PIPE ? cat : echo};
	for (int i = 0; i < 3; i++)
		o.stdio[i].mode = pc->stdio[i];
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	if (pc->warm) {
		/* The cgroup setup, /dev/null: made once per runtime, kept. */
		herd_proc_opts w = {.argv = echo};
		w.stdio[0].mode = w.stdio[1].mode = HERD_STDIO_NULL;
		herd_proc *p;
		CHECK_OK(herd_proc_start(&p, s, &w, HERD_NOWAIT));
		CHECK_EQ(wait_status(p, herd_deadline(5 * HERD_SEC)), 0);
		CHECK_OK(herd_proc_free(p));
	}
	int fds = count_dir("/proc/self/fd");
	herd_proc *p = NULL;
	arm(M_ALL, WHO_TASK);
	int rc = herd_proc_start(&p, s, &o, HERD_NOWAIT);
	int k = disarm();
	/* Success also when herd gets round what failed (no pidfd
	 * registration: a thread waits for the child instead). */
	CHECK_AT(rc == 0 || (k >= 0 && rc == code_of(k)), rc, k);
	if (rc == 0) {
		if (pc->stdio[0] == HERD_STDIO_PIPE) {
			CHECK_EQ(herd_write_all(herd_proc_fd(p, 0), "hi\n", 3,
						herd_deadline(5 * HERD_SEC)), 3);
			CHECK_OK(herd_proc_close_fd(p, 0));
		}
		if (pc->stdio[1] == HERD_STDIO_PIPE) {
			char buf[16];
			CHECK_EQ(herd_read(herd_proc_fd(p, 1), buf, sizeof buf,
					   herd_deadline(5 * HERD_SEC)), 3);
			CHECK(memcmp(buf, "hi\n", 3) == 0);
		}
		/* A wait with a deadline queues a timer. */
		arm(M_ALL, WHO_TASK);
		rc = wait_status(p, herd_deadline(5 * HERD_SEC));
		k = disarm();
		CHECK_AT(rc == 0 || (k >= 0 && rc == -ENOMEM), rc, k);
		CHECK_EQ(wait_status(p, herd_deadline(5 * HERD_SEC)), 0);
		CHECK_OK(herd_proc_free(p));
	} else {
		/* Nothing was started, nothing kept (before the first start
		 * of a runtime, what the start sets up for the runtime is
		 * checked once it has ended). */
		CHECK_AT(p == NULL, rc, k);
		CHECK_AT(count_children() == 0, rc, k);
		if (pc->warm)
			CHECK_AT(count_dir("/proc/self/fd") == fds,
				 count_dir("/proc/self/fd") - fds, k);
		if (cg_ok)
			CHECK_AT(herd_cgroups_populated(cg_dir) == 0, rc, k);
	}
	CHECK_OK(herd_scope_close(s));
}

TEST(proc_start)
{
	/* The first start of a runtime: the cgroup setup (openat, fopen,
	 * mkdirat), /dev/null, pipe2, the clone, the pidfd's registration. */
	struct proc_case c1 = {{HERD_STDIO_NULL, HERD_STDIO_PIPE, HERD_STDIO_INHERIT}, false};
	walk("herd_proc_start (first; null, pipe)", 1, proc_body, &c1);
	/* A later one, three pipes. */
	struct proc_case c2 = {{HERD_STDIO_PIPE, HERD_STDIO_PIPE, HERD_STDIO_PIPE}, true};
	walk("herd_proc_start (later; 3 pipes)", 1, proc_body, &c2);
}

static void output_body(void *arg)
{
	unsigned flags = *(unsigned *)arg;
	char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2", NULL};
	herd_proc_opts o = {.argv = argv};
	herd_scope *s;
	CHECK_OK(herd_scope_open(&s));
	herd_output r;
	arm(M_ALL, WHO_TASK);
	int rc = herd_proc_output(&r, s, &o, 64, flags, herd_deadline(5 * HERD_SEC));
	int k = disarm();
	/* Success also when herd gets round what failed (a thread waits for
	 * the child when its pidfd cannot be registered). */
	CHECK_AT(rc == 0 || (k >= 0 && rc == code_of(k)), rc, k);
	if (rc == 0) {
		const char *out = flags ? "out\nerr\n" : "out\n";
		CHECK_AT(r.status == 0 && r.out_len == strlen(out) && strcmp(r.out, out) == 0,
			 rc, k);
		CHECK_AT(flags ? r.err == NULL : strcmp(r.err, "err\n") == 0, rc, k);
	} else {
		/* Nothing to free, and nothing left running when it returns. */
		CHECK_AT(r.out == NULL && r.err == NULL && r.status == -1, rc, k);
		CHECK_AT(count_children() == 0, rc, k);
	}
	herd_output_free(&r);
	CHECK_OK(herd_scope_close(s));
}

/* herd_proc_output: the start's failures, then the buffers', the wait for
 * both pipes' and the exit wait's timer; on each, no process is left when
 * the call returns, and (once the runtime has ended) nothing at all. */
TEST(proc_output)
{
	unsigned apart = 0, combined = HERD_OUTPUT_COMBINED;
	walk("herd_proc_output (stdout and stderr apart)", 1, output_body, &apart);
	walk("herd_proc_output (combined)", 1, output_body, &combined);
}
