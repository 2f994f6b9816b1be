/*
 * os-linux.c - the platform seam: futexes, CPU count, memory mappings and
 * guard pages, the mutex's slow path, alarms (timerfd) and bells
 * (eventfd). Everything else in src/ is portable C plus the context
 * switch; a BSD or macOS port replaces this file (with _umtx_op /
 * __ulock_wait, kqueue's EVFILT_TIMER and EVFILT_USER) and keeps the
 * interface declared in os.h.
 *
 * A bell is a doorbell for a thread that sleeps in herd__alarm_wait: an
 * eventfd polled beside the alarm, rung from anywhere, signal handlers
 * included (the supervisor's, see monitor.c and signal.c).
 *
 * herd__mutex_lock_slow is here because it is the futex's only user
 * besides worker parking. An alarm's lock (a leaf) orders the setting of
 * its timerfd against the reading of a ring, so that `at` is never later
 * than the time the timerfd rings (or it has rung and is unread).
 */
#include "os/os.h"

#if defined(__has_include)
#if __has_include(<linux/futex.h>)
#include <linux/futex.h>
#endif
#endif
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The kernel ABI's values, for C libraries built without kernel headers
 * (musl-gcc). */
#ifndef FUTEX_WAKE
#define FUTEX_WAKE 1
#endif
#ifndef FUTEX_WAIT_BITSET
#define FUTEX_WAIT_BITSET 9
#endif
#ifndef FUTEX_PRIVATE_FLAG
#define FUTEX_PRIVATE_FLAG 128
#endif
#ifndef FUTEX_BITSET_MATCH_ANY
#define FUTEX_BITSET_MATCH_ANY 0xffffffff
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

void herd__futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t deadline)
{
	struct timespec ts, *tsp = NULL;
	if (deadline >= 0) {
		ts.tv_sec = deadline / 1000000000;
		ts.tv_nsec = deadline % 1000000000;
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
	syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val,
		tsp, NULL, FUTEX_BITSET_MATCH_ANY);
}

void herd__futex_wake(_Atomic uint32_t *addr, int n)
{
	syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

void herd__mutex_lock_slow(herd__mutex *m)
{
	/* Critical sections are a few dozen instructions: spin a little
	 * before paying for a system call. */
	for (int i = 0; i < 100; i++) {
		uint32_t c = 0;
		if (atomic_load_explicit(&m->state, mo_relaxed) == 0 &&
		    atomic_compare_exchange_weak_explicit(&m->state, &c, 1,
							  mo_acquire, mo_relaxed))
			return;
		herd__cpu_relax();
	}
	while (atomic_exchange_explicit(&m->state, 2, mo_acquire) != 0)
		herd__futex_wait(&m->state, 2, -1);
}

uint64_t herd__os_random(void)
{
	uint64_t v = 0;
	/* getrandom(2) by its system call: older C libraries lack the
	 * wrapper. It cannot block for 8 bytes once the pool is ready; if it
	 * fails, the clock and the pid are unpredictable enough for select. */
	if (syscall(SYS_getrandom, &v, sizeof v, 0x0001 /* GRND_NONBLOCK */) == (long)sizeof v)
		return v;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 16);
}

int herd__os_ncpu(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0) {
		int n = CPU_COUNT(&set);
		if (n > 0)
			return n;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

long herd__os_max_map_count(void)
{
	long v = 65530; /* the kernel's default */
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

size_t herd__os_page_size(void)
{
	static size_t page;
	if (!page)
		page = (size_t)sysconf(_SC_PAGESIZE);
	return page;
}

int herd__os_guard_light(void *addr, size_t len)
{
	return madvise(addr, len, MADV_GUARD_INSTALL) == 0 ? 0 : -errno;
}

int herd__os_guard_mprotect(void *addr, size_t len)
{
	return mprotect(addr, len, PROT_NONE) == 0 ? 0 : -errno;
}

void *herd__os_reserve(size_t len)
{
	/* MAP_NORESERVE: stacks are committed page by page as tasks touch
	 * them, so do not charge the whole reservation against overcommit. */
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* A transparent huge page would make a task that touched 4 KiB of
	 * its stack cost 2 MiB. */
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

void herd__os_release(void *addr, size_t len)
{
	munmap(addr, len);
}

char *herd__os_read_fd(int fd)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	for (ssize_t r; buf; len += (size_t)r) {
		if (len + 1 == cap) {
			char *b = realloc(buf, cap *= 2);
			if (!b) {
				free(buf);
				return NULL;
			}
			buf = b;
		}
		while ((r = read(fd, buf + len, cap - 1 - len)) < 0 && errno == EINTR)
			;
		if (r <= 0) {
			if (r < 0) {
				free(buf);
				return NULL;
			}
			break;
		}
	}
	if (buf)
		buf[len] = 0;
	return buf;
}

char *herd__os_read_file(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = herd__os_read_fd(fd);
	close(fd);
	return buf;
}

ssize_t herd__os_read_small(int dirfd, const char *path, char *buf, size_t size)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	while ((n = read(fd, buf, size - 1)) < 0 && errno == EINTR)
		;
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return n;
}

long herd__os_parse_pids(const char *text, pid_t **pids, size_t *n, size_t *cap)
{
	for (const char *q = text;;) {
		char *end;
		long v = strtol(q, &end, 10);
		if (end == q)
			return (long)*n;
		q = end;
		if (*n == *cap) {
			size_t ncap = *cap ? 2 * *cap : 16;
			pid_t *a = realloc(*pids, ncap * sizeof *a);
			if (!a)
				return -1;
			*pids = a;
			*cap = ncap;
		}
		(*pids)[(*n)++] = (pid_t)v;
	}
}

/* O_DIRECT on or off; -errno. */
static int direct_set(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0)
		return -errno;
	return 0;
}

int herd__os_direct_on(int fd)
{
	/* The magic numbers of <linux/magic.h>, which musl does not have. */
	static const unsigned long local[] = {
		0xEF53,     /* ext2, ext3, ext4 */
		0x58465342, /* XFS */
		0x9123683E, /* Btrfs */
		0xF2F52010, /* F2FS */
	};
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return -errno;
	for (size_t i = 0; i < sizeof local / sizeof *local; i++)
		if ((unsigned long)sf.f_type == local[i])
			return direct_set(fd, true);
	return -EOPNOTSUPP;
}

int herd__os_direct_off(int fd)
{
	return direct_set(fd, false);
}

void herd__os_set_thread_name(const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
}

int herd__os_membarrier(int cmd)
{
#ifdef SYS_membarrier
	return syscall(SYS_membarrier, cmd, 0, 0) == 0 ? 0 : -errno;
#else
	(void)cmd;
	return -ENOSYS;
#endif
}

int herd__os_tid(void)
{
	return (int)syscall(SYS_gettid);
}

int64_t herd__os_thread_cpu_ns(int tid)
{
	/* The kernel's clock id of a thread's CPU time (what glibc's
	 * pthread_getcpuclockid makes): no pthread_t needed. */
	clockid_t clock = (clockid_t)((~(unsigned)tid << 3) | 6);
	struct timespec ts;
	if (clock_gettime(clock, &ts) < 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int herd__os_thread_sleeping(int tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
	if (herd__os_read_small(AT_FDCWD, path, buf, sizeof buf) <= 0)
		return -1;
	/* "tid (comm) S ...": the comm may hold anything, so the state is
	 * after the last ')'. */
	const char *q = strrchr(buf, ')');
	if (!q || q[1] != ' ')
		return -1;
	return q[2] == 'S' || q[2] == 'D';
}

void herd__alarm_init(herd__alarm *a)
{
	a->at = INT64_MAX;
	herd__mutex_init(&a->lock, HERD__RANK_LEAF);
	/* A seccomp filter may refuse timerfds: callers then wake threads. */
	a->fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
}

void herd__alarm_fini(herd__alarm *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
}

bool herd__alarm_set(herd__alarm *a, int64_t when)
{
	if (a->fd < 0)
		return false;
	bool ok = true;
	herd__mutex_lock(&a->lock);
	if (when < a->at) {
		if (when <= 0)
			when = 1; /* zero would disarm it */
		struct itimerspec its = {
			.it_value = {.tv_sec = when / 1000000000, .tv_nsec = when % 1000000000},
		};
		ok = timerfd_settime(a->fd, TFD_TIMER_ABSTIME, &its, NULL) == 0;
		if (ok)
			a->at = when;
	}
	herd__mutex_unlock(&a->lock);
	return ok;
}

void herd__alarm_clear(herd__alarm *a)
{
	herd__mutex_lock(&a->lock);
	uint64_t v;
	ssize_t r = read(a->fd, &v, sizeof v);
	(void)r; /* EAGAIN: it had not rung */
	/* A later setting brings `at` forward only, so a time that has
	 * passed is the one that rang. */
	if (a->at <= herd_now())
		a->at = INT64_MAX;
	herd__mutex_unlock(&a->lock);
}

void herd__bell_init(herd__bell *b)
{
	atomic_init(&b->rung, 0);
	/* Without it (a seccomp filter), waiters fall back to the futex. */
	b->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void herd__bell_fini(herd__bell *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

void herd__bell_ring(herd__bell *b)
{
	/* Raw system calls and a lock-free atomic: a signal handler rings. */
	atomic_fetch_add_explicit(&b->rung, 1, mo_seq_cst);
	if (b->fd >= 0) {
		uint64_t one = 1;
		ssize_t r = write(b->fd, &one, sizeof one);
		(void)r; /* EAGAIN: the counter is full, so it rings already */
	} else {
		herd__futex_wake(&b->rung, 1);
	}
}

bool herd__alarm_wait(herd__alarm *a, herd__bell *b, uint32_t seen, int64_t deadline)
{
	struct timespec ts, *tsp = NULL;
	if (deadline >= 0) {
		int64_t left = deadline - herd_now();
		if (left < 0)
			left = 0;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		tsp = &ts;
	}
	if (b->fd < 0 && a->fd < 0) {
		herd__futex_wait(&b->rung, seen, deadline);
		return false;
	}
	struct pollfd p[2] = {{.fd = a->fd, .events = POLLIN}, {.fd = b->fd, .events = POLLIN}};
	if (atomic_load_explicit(&b->rung, mo_seq_cst) != seen) {
		/* Rung before we got here. (ts, not a compound literal: that
		 * would end with this block, before ppoll reads it.) */
		ts = (struct timespec){0, 0};
		tsp = &ts;
	}
	/* A descriptor of -1 is skipped by poll: either may be missing. */
	int n = ppoll(p, 2, tsp, NULL);
	if (n > 0 && (p[1].revents & POLLIN)) {
		uint64_t v;
		ssize_t r = read(b->fd, &v, sizeof v);
		(void)r;
	}
	return n > 0 && (p[0].revents & POLLIN);
}
