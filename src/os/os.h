/*
 * os.h - the platform seam: everything that differs between kernels and
 * CPUs (os-linux.c, poller-epoll.c, switch-<arch>.S, clone3-<arch>.S).
 * The layers above call these and no system interface of their own but
 * POSIX's (read, write, pipe2, fcntl, waitid, kill).
 */
#ifndef HERD_OS_H
#define HERD_OS_H

#include "base/base.h"
#include <time.h>

#define HERD__NSIG 64    /* signals 1 .. 64 */

/* ------------------------------------------------------------------ */
/* Processors, memory and files (os-linux.c)                          */
/* ------------------------------------------------------------------ */

int herd__os_ncpu(void);                /* CPUs this process may use */
uint64_t herd__os_random(void);         /* 64 unpredictable bits */

/* A cheap counter that grows steadily with time, for timestamps taken
 * often (the trace's): the CPU's constant-rate counter where there is
 * one, else the monotonic clock in nanoseconds. Its rate is not known:
 * the reader converts by comparing with herd_now(). */
static inline uint64_t herd__os_ticks(void)
{
#if defined(__x86_64__)
	return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
	uint64_t v;
	__asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
	return v;
#else
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}
long herd__os_max_map_count(void);      /* vm.max_map_count, or 65530 */
size_t herd__os_page_size(void);
/* Makes [addr, addr+len) fault on access without a new mapping; -errno. */
int herd__os_guard_light(void *addr, size_t len);
/* Same with mprotect(PROT_NONE): one more mapping or two. */
int herd__os_guard_mprotect(void *addr, size_t len);
void *herd__os_reserve(size_t len);     /* lazily committed, no THP; NULL */
void herd__os_release(void *addr, size_t len);
void herd__os_set_thread_name(const char *name);
/* membarrier(2): a memory barrier on every CPU running a thread of this
 * process (PRIVATE_EXPEDITED), or that restarts their restartable
 * sequences (..._RSEQ); each needs its REGISTER first. 0 or -errno
 * (-ENOSYS where the system has none). */
enum {
	HERD__OS_MB_PRIVATE = 1 << 3,
	HERD__OS_MB_REGISTER_PRIVATE = 1 << 4,
	HERD__OS_MB_PRIVATE_RSEQ = 1 << 7,
	HERD__OS_MB_REGISTER_PRIVATE_RSEQ = 1 << 8,
};
int herd__os_membarrier(int cmd);
/* The calling thread's id, which the two calls below take (a thread of
 * this process). */
int herd__os_tid(void);
/* CPU time the thread has used, in nanoseconds; -1 if it cannot tell. */
int64_t herd__os_thread_cpu_ns(int tid);
/* 1 if the thread sleeps in the kernel (blocked in a system call), 0 if
 * it is running or waiting for a CPU, -1 if it cannot tell. */
int herd__os_thread_sleeping(int tid);
/* The rest of a (small) file, from fd or from openat(dirfd, path) (dirfd
 * AT_FDCWD for a plain path), into a malloc'd, NUL-terminated buffer; NULL
 * if it cannot be read whole. For /proc and cgroup files. */
char *herd__os_read_fd(int fd);
char *herd__os_read_file(int dirfd, const char *path);
/* The start of a small file into buf (NUL-terminated, on the caller's
 * stack: no allocation, for task stacks): the bytes read, or -1. */
ssize_t herd__os_read_small(int dirfd, const char *path, char *buf, size_t size);
/* Appends the numbers of a blank-separated list (pids, as /proc and
 * cgroup.procs write them) to *pids, which holds *n of *cap (grown with
 * realloc); returns *n, or -1 if memory ran out. */
long herd__os_parse_pids(const char *text, pid_t **pids, size_t *n, size_t *cap);
/* Makes writes to fd (a regular file open for writing) bypass the page
 * cache (O_DIRECT), for a stream the process does not read back soon, on
 * the file systems of local disks only (ext4, XFS, Btrfs, F2FS): there the
 * disk takes the bytes from the process's memory, where a write would copy
 * them into fresh pages of the cache, which costs more CPU; elsewhere (a
 * network's, where each write waits for the server; tmpfs, which is the
 * cache) -EOPNOTSUPP. The offsets, lengths and memory of its writes must
 * then be multiples of HERD__OS_DIRECT_ALIGN (else EINVAL). 0 or -errno;
 * herd__os_direct_off undoes it. */
#define HERD__OS_DIRECT_ALIGN 4096u
int herd__os_direct_on(int fd);
int herd__os_direct_off(int fd);

/* ------------------------------------------------------------------ */
/* Alarms and bells (os-linux.c)                                      */
/* ------------------------------------------------------------------ */

/*
 * An alarm: a descriptor that becomes readable at a set time (a timerfd on
 * Linux), so that a thread asleep in epoll_wait or poll can be given an
 * earlier time to get up without being woken now. Setting it only ever
 * brings the time forward; a ring, once read, is forgotten.
 */
typedef struct herd__alarm {
	int fd;            /* -1: none (callers fall back to a wakeup) */
	herd__mutex lock;  /* orders setting against reading; a leaf */
	int64_t at;        /* when it rings, INT64_MAX if unset; under lock */
} herd__alarm;
/* Makes the descriptor (fd -1 if the system refuses one). */
void herd__alarm_init(herd__alarm *a);
void herd__alarm_fini(herd__alarm *a);
/* Makes the alarm ring by `when` (absolute monotonic ns; the past rings at
 * once). True if it will; false if there is no descriptor. */
bool herd__alarm_set(herd__alarm *a, int64_t when);
/* Reads a ring off the descriptor, and forgets the time if it has passed. */
void herd__alarm_clear(herd__alarm *a);
/*
 * A bell: wakes a thread asleep in herd__alarm_wait from any thread or
 * signal handler. `rung` counts the rings; a waiter reads it before it
 * looks at what it waits for, and passes what it read as `seen`.
 */
typedef struct herd__bell {
	int fd;                  /* an eventfd, or -1 (then the futex) */
	_Atomic uint32_t rung;
} herd__bell;
void herd__bell_init(herd__bell *b);
void herd__bell_fini(herd__bell *b);
/* Async-signal-safe. */
void herd__bell_ring(herd__bell *b);
/* Sleeps until the alarm rings (true), the bell rings (or has rung since
 * `seen` was read), or `deadline` (-1: none). */
bool herd__alarm_wait(herd__alarm *a, herd__bell *b, uint32_t seen, int64_t deadline);

/* ------------------------------------------------------------------ */
/* The poller's backend (poller-epoll.c): a set of descriptors a thread */
/* can sleep on, with a wakeup and an alarm in it.                     */
/* ------------------------------------------------------------------ */

/* An event: the events ready (HERD_READABLE, HERD_WRITABLE; an error or
 * a hang-up reports both, so that the next call sees it), with
 * HERD__OS_HUP if it reports a hang-up (of either side), an error or
 * urgent data, and the cookie the descriptor was armed with. */
#define HERD__OS_HUP 4u
typedef struct herd__os_event {
	uint32_t events;
	uint64_t cookie;
} herd__os_event;

typedef struct herd__os_poller {
	int fd;             /* the epoll set */
	int wakefd;         /* an eventfd in it: herd__os_poller_interrupt */
	herd__alarm alarm;  /* in it: herd__os_poller_wake_by */
} herd__os_poller;

/* Makes the set: 0 or -errno. */
int herd__os_poller_open(herd__os_poller *p);
void herd__os_poller_close(herd__os_poller *p);
/* Adds fd to the set, edge-triggered, for both directions: from now on
 * each change to readable or to writable (and an error or a hang-up)
 * yields one event carrying `cookie`, whether or not anybody waits; the
 * first reports the readiness fd has now. It stays in the set until
 * herd__os_poller_forget, or until the kernel drops it with the last
 * reference to its open file. 0, or -errno (-EBADF, -EPERM for a regular
 * file, -ENOMEM); if fd's open file is in the set already, its cookie is
 * replaced (and readiness reported again). */
int herd__os_poller_add(herd__os_poller *p, int fd, uint64_t cookie);
/* Takes fd out of the set (nothing if it is not in it). */
void herd__os_poller_forget(herd__os_poller *p, int fd);
/* Waits for events until the deadline (-1: none; 0: do not block) and
 * stores at most n in ev; returns how many (0 on a timeout, a wakeup or
 * the alarm). Only a waiter that may block (deadline not 0) consumes a
 * wakeup or a ring: one that only looks leaves them for the sleeper. */
int herd__os_poller_wait(herd__os_poller *p, herd__os_event *ev, int n, int64_t deadline);
/* Gets a thread asleep in herd__os_poller_wait up; async-signal-safe. */
void herd__os_poller_interrupt(herd__os_poller *p);
/* Makes its sleep end by `when` at the latest, without waking it before;
 * false if it cannot (no alarm). */
bool herd__os_poller_wake_by(herd__os_poller *p, int64_t when);

/* ------------------------------------------------------------------ */
/* Context switch (switch-<arch>.S) and clone3 (clone3-<arch>.S)       */
/* ------------------------------------------------------------------ */

/*
 * An execution context that can be suspended: a task, or a worker's
 * scheduler loop on its thread's own stack ("g0", as Go calls it).
 */
typedef struct herd__ctx {
	void *sp;          /* saved stack pointer while suspended */
#if HERD_ASAN
	const void *stack_lo; /* the stack's bounds, for ASan */
	size_t stack_size;
	void *asan_fake;
#endif
#if HERD_TSAN
	void *tsan_fiber;
#endif
} herd__ctx;

/*
 * Saves the callee-saved registers and FP control words on the current
 * stack, stores the stack pointer in *save_sp, loads load_sp and restores
 * the registers found there. Returns `w` in the context it resumes: the
 * context that switches back tells the resumed one which worker it is on.
 */
herd__worker *herd__ctx_switch(void **save_sp, void *load_sp, herd__worker *w);
/* First code of a new task: calls herd__task_main(w). */
void herd__ctx_trampoline(void);
/* clone3 with a child function: pid, or -errno. */
int herd__clone3(void *args, size_t size, int (*fn)(void *), void *arg);

/* ------------------------------------------------------------------ */
/* Diagnostics: stacks and symbols (backtrace-<arch>.c, symbol-elf.c)  */
/* ------------------------------------------------------------------ */

/*
 * The return addresses of a suspended context, innermost first: the
 * address herd__ctx_switch returns to, then a walk of the frame-pointer
 * chain found in the frame it saved (sp: herd__ctx.sp), which stops at the
 * first frame outside [lo, hi), not above the last one, or misaligned, or
 * at a return address of 0. Reads a stack that its task may be running on
 * meanwhile (the caller validates nothing else): it never faults, but may
 * stop early or give a wrong address. Returns how many it stored, at most
 * max (0 if sp's frame is not inside [lo, hi)). The addresses are return
 * addresses: pc - 1 lies in the calling instruction.
 */
size_t herd__ctx_backtrace(const void *sp, const char *lo, const char *hi,
			   uintptr_t *pcs, size_t max);
/*
 * Names the code at pc in buf as "function+0xoff (module)", from the ELF
 * symbol tables of the loaded objects (static functions included), or
 * "0xADDR (module+0xoff)" when no symbol covers it ("0xADDR (?)" outside
 * every loaded object; the vDSO is "[vdso]"). Returns buf, NUL-terminated
 * and truncated to size (untouched if size is 0). Thread-safe; not
 * async-signal-safe (it may open and map files, once each).
 */
const char *herd__symbolize(uintptr_t pc, char *buf, size_t size);

#endif /* HERD_OS_H */
