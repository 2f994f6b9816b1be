/*
 * herd.h - Go-style parallelism for C, where nothing strays.
 *
 * This is the only public header of libherd. It declares:
 *   - the runtime entry points (herd_main, herd_run) and their configuration;
 *   - tasks: cheap stackful coroutines that an M:N work-stealing scheduler
 *     runs on every core (herd_go, HERD_GO, herd_yield), with typed
 *     arguments checked by the compiler (HERD_TASK, HERD_MAIN);
 *   - scopes: every task belongs to one; a scope is never freed while one of
 *     its tasks runs, and canceling it makes the blocking calls of its tasks
 *     (and of the scopes nested in it) return HERD_ECANCELED; as Go's
 *     errgroup, a task can fail its scope (herd_scope_fail) and a scope can
 *     bound how many of its tasks run at once (herd_scope_limit);
 *   - wait groups for code ported from Go (herd_wg_*);
 *   - task-aware locks, which park the task rather than the thread:
 *     mutexes, read-write mutexes, once, condition variables and weighted
 *     semaphores (herd_mutex_*, herd_rwmutex_*, herd_once_do, herd_cond_*,
 *     herd_sem_*);
 *   - channels, HERD_RANGE and select, as Go's (herd_chan_*, herd_select),
 *     typed (HERD_CHAN(T), HERD_SEND, HERD_RECV) or checked by size;
 *   - time: herd_now, deadlines, herd_sleep, timers and tickers;
 *   - descriptors: waiting for readiness, task-aware read, write, accept and
 *     connect, and a budget of descriptors (herd_fd_*, herd_read, ...);
 *   - blocking calls run on helper threads (herd_blocking);
 *   - child processes bound to scopes: a process and everything it starts
 *     never outlive the scope that started it (herd_proc_*), and Go's
 *     Output() (herd_proc_output);
 *   - errors (herd_strerror, herd_errname) and statistics (herd_stats_get).
 *
 * Conventions, which hold for every function unless its comment says otherwise:
 *   - Functions return int: 0 (or more) on success, a negative code on
 *     failure: either -errno (-ENOMEM, -EINVAL, ...) or a HERD_E* code below.
 *     herd_strerror() names every code. A failed call changes nothing.
 *   - Blocking calls take an absolute deadline on the monotonic clock, in
 *     nanoseconds (see herd_now): HERD_FOREVER (-1) waits without limit,
 *     HERD_NOWAIT (0) never blocks, any other value is the instant at which
 *     the call gives up and returns HERD_ETIMEDOUT. A deadline within a
 *     second of INT64_MAX (292 years after boot) is never reached.
 *   - A call that waits with a deadline (not HERD_FOREVER), or waits for a
 *     descriptor, may also return -ENOMEM: the timer for its deadline, or
 *     the poller's registration of the descriptor, could not be allocated.
 *     It returns at once then, as any failed call, having done nothing.
 *   - A call that may block is a cancellation point: if the calling task's
 *     scope (or any scope it is nested in) is canceled, the call returns
 *     HERD_ECANCELED at once, or as soon as the cancellation happens while it
 *     waits. Calls with deadline HERD_NOWAIT are not cancellation points.
 *   - Blocking calls may only be made from a task; from any other thread they
 *     return -EPERM.
 *   - Memory: what a task wrote before it ended is visible to whoever sees
 *     it end: a herd_scope_wait that returns 0, a herd_scope_close that
 *     closes the scope (returning 0 or its failure), and the caller of
 *     herd_run once it returns. What a task wrote before
 *     herd_wg_add (or herd_wg_done) is visible to a herd_wg_wait that
 *     returns 0 because of it. Other data shared by tasks needs atomics or
 *     a lock, as between threads.
 *   - A task may call exit(), which ends the process as from any thread.
 *
 * Thread-local storage and errno: a task can resume on another worker thread
 * after any call that may block or yield, so it must not keep the address of
 * a thread-local variable (errno included) across such a call.
 */
#ifndef HERD_H
#define HERD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HERD_API __attribute__((visibility("default")))
#else
#define HERD_API
#endif

/* Marks a call whose result must be looked at: one that makes something
 * (valid only when it returns 0, and to be freed), says how much was read
 * or written, or which case was chosen. With gcc, a cast to void does not
 * silence the warning: test the result. */
#if defined(__GNUC__)
#define HERD_NODISCARD __attribute__((warn_unused_result))
#else
#define HERD_NODISCARD
#endif

#define HERD_VERSION_MAJOR 0
#define HERD_VERSION_MINOR 1
#define HERD_VERSION_PATCH 0

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * herd's own codes. They lie below every -errno value, so a code is either
 * one of these or the negation of an errno, never both.
 */
enum {
	/* The calling task's scope, or a scope it is nested in, was canceled. */
	HERD_ECANCELED = -10001,
	/* The deadline passed before the call could complete. */
	HERD_ETIMEDOUT = -10002,
	/* The object (a channel, for example) was closed. */
	HERD_ECLOSED = -10003,
	/* herd_run: every task was asleep and nothing could wake one. */
	HERD_EDEADLOCK = -10004,
};

/*
 * Returns a short English description of a code returned by any herd call:
 * a HERD_E* code, a negated errno, or 0 ("success"). Never returns NULL; the
 * string is static and must not be freed. Does not block.
 */
HERD_API const char *herd_strerror(int code);

/*
 * Returns the name of the constant behind a code, as libuv's uv_err_name:
 * "HERD_ECANCELED", "ENOENT" (for -ENOENT), "0" for 0, "UNKNOWN" for a code
 * that is neither a herd code nor a negated errno known to this system.
 * Never returns NULL; the string is static. Does not block.
 */
HERD_API const char *herd_errname(int code);

/* ------------------------------------------------------------------------ */
/* Time and deadlines                                                       */
/* ------------------------------------------------------------------------ */

/* Deadline values with a special meaning (see the conventions above). */
#define HERD_FOREVER ((int64_t)-1)
#define HERD_NOWAIT ((int64_t)0)

/* Nanoseconds per unit, to write durations: 250 * HERD_MSEC. */
#define HERD_USEC ((int64_t)1000)
#define HERD_MSEC ((int64_t)1000000)
#define HERD_SEC ((int64_t)1000000000)

/*
 * The monotonic clock (CLOCK_MONOTONIC) in nanoseconds. Always positive.
 * Callable from any thread, inside or outside the runtime. Does not block.
 */
HERD_API int64_t herd_now(void);

/*
 * The deadline that lies `timeout` nanoseconds from now: herd_now() + timeout,
 * saturated so that it never overflows. A negative timeout gives
 * HERD_FOREVER. Does not block.
 */
HERD_API int64_t herd_deadline(int64_t timeout);

/*
 * Parks the calling task until `deadline` has passed (never earlier); other
 * tasks run meanwhile and a sleeping task costs no CPU.
 * Returns 0 once the deadline has passed, HERD_ECANCELED if the task's scope is
 * canceled first, -EINVAL for HERD_FOREVER (a task that must wait for ever
 * should wait for something), -EPERM outside a task.
 * Blocks; cancellation point (except for deadline HERD_NOWAIT, which returns
 * 0 at once).
 */
HERD_API int herd_sleep(int64_t deadline);

/* ------------------------------------------------------------------------ */
/* The runtime                                                              */
/* ------------------------------------------------------------------------ */

/* The function a task runs. `arg` is described at herd_go. */
typedef void (*herd_fn)(void *arg);

/* Values of herd_config.debug: 1 is on, as HERD_DEBUG=1 is. */
enum {
	HERD_DEBUG_DEFAULT = 0, /* the HERD_DEBUG variable, else on in debug builds */
	HERD_DEBUG_ON = 1,
	HERD_DEBUG_OFF = -1,
};

/*
 * Runtime settings. A zero field takes its default, which an environment
 * variable may change; a non-zero field overrides both (but `flags`, which
 * no variable sets).
 */
typedef struct herd_config {
	/*
	 * Worker threads. Default: HERD_WORKERS if set, else one per CPU that
	 * the process may run on (sched_getaffinity). At most 1024.
	 */
	unsigned workers;
	/*
	 * Usable bytes of each task's stack, rounded up to the page size; at
	 * least 16 KiB, at most 1 GiB. Default: HERD_STACK_SIZE if set (bytes,
	 * or with a K, M or G suffix), else 64 KiB. Stacks are committed lazily:
	 * a task pays in memory only for the pages it touches.
	 */
	size_t stack_size;
	/*
	 * Debug checks, see HERD_DEBUG_*. When on, herd_go warns (once per call
	 * site) when the bytes it copies hold a pointer into the spawning task's
	 * own stack.
	 *
	 * And herd_run, when it returns, lists on stderr what the program
	 * made during the run and has not freed: channels, timers, wait groups
	 * (herd_wg_new), process handles, and descriptors from herd_pipe,
	 * herd_socket and herd_accept not closed with herd_close; each with
	 * where it was made (the function that called the make, and its
	 * module). What herd makes for itself, and what was made before
	 * herd_run started, is not listed. For example:
	 *
	 *   herd: 2 objects still alive at the end of herd_run:
	 *   herd:   channel 0x55d1c2a0 (elem 8 bytes, cap 0), made at main_task+0x4f (prog)
	 *   herd:   descriptor 7 (pipe, write end), made at serve+0x2a (prog)
	 *
	 * The listing changes nothing else: herd_run returns what it would.
	 */
	int debug;
	/*
	 * How long a worker may run one task without switching before the
	 * monitor hands the tasks queued behind it to other workers, in
	 * nanoseconds; at least 1 ms. Default: HERD_STALL_MS if set
	 * (milliseconds), else 10 ms.
	 */
	int64_t stall_ns;
	/*
	 * Helper threads for herd_blocking, at most; 1 to 1024. Default:
	 * HERD_BLOCKING_THREADS if set, else 64. They start when needed.
	 */
	unsigned blocking_threads;
	/*
	 * HERD_RUN_* flags, or 0. No environment variable sets them: they
	 * change what the program means, not how it runs.
	 */
	unsigned flags;
	/*
	 * A file to write a timeline of the run to, or NULL. Default:
	 * HERD_TRACE if set. The file is Chrome trace-event JSON, which
	 * Perfetto (ui.perfetto.dev), chrome://tracing and herd-trace-html
	 * open: a lane per worker with a slice per stretch of a task on it
	 * (named by its spawn site, with its id and why it stopped: the
	 * wait's reason, "yield" or "end"), arrows from the task that spawned or woke
	 * a task to where it next runs, a lane per child process from its
	 * start to its exit (its command and status), and the cancellations
	 * and the supervisor's interventions as instants. While the program
	 * runs, the file holds a compact binary form: the supervisor writes
	 * the workers' events out as they are every few milliseconds, and
	 * herd_run converts the file to JSON before it returns (into a new
	 * file beside it, PATH.XXXXXX, that replaces it), or as soon as the
	 * run starts to end by a signal or a deadlock. A program killed
	 * first (kill -9) leaves the binary form, whole up to a few
	 * milliseconds before: herd-trace-html reads it, and
	 * `herd-trace-html --json IN OUT` converts it to JSON (the file may
	 * then end in a block of zeros, which reads as nothing). Each event
	 * costs the worker that records it 8 to 32 bytes until the
	 * supervisor has written it, and most a read of the tick counter (a
	 * spawn takes the time of its worker's previous event); the JSON
	 * about 110 bytes. Traced, skynet took 14-19% more CPU in the last
	 * measurements (docs/debugging.md). If the file cannot be opened, herd_run returns open's
	 * -errno, -ENXIO for a FIFO that nobody reads (for HERD_TRACE: a
	 * warning, and the run goes on untraced). Write to a regular file: a
	 * pipe gets JSON as the run goes (which costs more), and its reader
	 * holds the supervisor up while it does not read.
	 */
	const char *trace;
} herd_config;

/*
 * herd_config.flags.
 *
 * HERD_RUN_CANCEL_ON_RETURN: the program ends when its first task returns,
 * as a Go program ends when main returns. Once herd_run's fn has returned,
 * the root scope is canceled (see herd_scope_cancel): every blocking call
 * of every other task returns HERD_ECANCELED, nothing new can be spawned or
 * started, and every child process gets SIGTERM. The cancellation comes
 * before the scopes the first task left open are closed for it, so their
 * tasks are canceled too. herd_run then waits, as always, for every task
 * to end, and ends the child processes still running: nothing is left when
 * it returns. Unlike Go, herd stops no task by force: a task that never
 * blocks, or that blocks where cancellation does not reach (herd_blocking,
 * herd_scope_close, herd_proc_kill), runs to its end, and herd_run waits
 * for it. Without the flag, herd_run waits for every task, and a program
 * whose helpers wait for ever must cancel them itself.
 */
#define HERD_RUN_CANCEL_ON_RETURN 1u

/*
 * HERD_RUN_NO_DEADLOCK_CHECK: no deadlock report. By default, when every
 * task is parked and nothing can wake any of them (no task runs or is
 * runnable; no timer, deadline or sleep is set; no task waits on a
 * descriptor, a child process or a herd_blocking call; no child process
 * is alive; no signal is delivered to a channel), herd prints "herd: all
 * tasks are asleep - deadlock!" on stderr with the task dump (see
 * herd_dump), cancels the root scope so that the tasks can end, and
 * herd_run returns HERD_EDEADLOCK once they have. The state must have
 * held for 200 ms, so the report comes a fraction of a second after the
 * program got stuck. Tasks stuck where cancellation does not reach (a
 * mutex, a read-write mutex, a once, a scope closing on such tasks)
 * cannot end: when the check finds them so again, it ends the process
 * with status 2, as Go does. The report is written by the supervisor
 * thread, as the SIGQUIT dump is: a stderr nobody reads holds it up.
 *
 * herd cannot see the program's own threads: set this flag when a thread
 * that is not a task may wake a task (a channel send or close, a mutex
 * unlock, a spawn, from a thread of its own or a library's callback),
 * or the program may be reported while it waits for that thread.
 */
#define HERD_RUN_NO_DEADLOCK_CHECK 2u

/*
 * HERD_RUN_SIGQUIT_DUMP: SIGQUIT (Ctrl-\) writes the task dump (see
 * herd_dump) on stderr, and the program goes on. Only where SIGQUIT has its
 * default action and is not blocked when herd_run starts, and while no
 * channel is registered for it (herd_signal_notify).
 */
#define HERD_RUN_SIGQUIT_DUMP 4u

/*
 * Starts the runtime, runs fn(arg) as the first task, and returns when every
 * task has ended. The workers are threads of their own; the calling thread
 * supervises them and runs no task: the process's signals are handled there
 * (or on the program's own threads), never in a task (see Signals below).
 * The first task runs in the root scope; see herd_scope_*. When the tasks
 * have ended, the root scope's child processes still running are ended
 * (see herd_proc_start) before herd_run returns. `config` may be NULL (all
 * defaults).
 * Returns 0 when all tasks have ended; -EINVAL if fn is NULL or a field of
 * `config` is out of range (an unknown flag included); -EBUSY if a runtime
 * is already running in this process; -ENOMEM or -EAGAIN if memory or
 * threads could not be obtained, -EMFILE or -ENFILE if the descriptors the
 * runtime needs could not be made (in each case nothing was started). An environment variable that cannot be
 * parsed is reported on stderr in one line and ignored.
 * Blocks the calling thread until the end. Not callable from a task.
 */
HERD_API int herd_run(const herd_config *config, herd_fn fn, void *arg);

/*
 * Writes a dump of the running program on fd (STDERR_FILENO, usually), read
 * as Go's goroutine dump is: a header with the number of live tasks and
 * the seed in use (see HERD_SEED below); then a block per task that has
 * parked at least once:
 *
 *     task 7 [channel receive 0x55d0c9f3a2c0, 2.3 s]:
 *             herd_chan_recv+0x8c (libherd.so)
 *             consumer+0x2a (myprog)
 *             ...
 *     spawned at myprog.c:41, in scope 0x55d0c9f3a000 (the root)
 *
 * with what it waits on (channel send or receive, select, sleep,
 * descriptor, process wait, scope close, wait group, mutex, ...: the
 * object's address, or the descriptor's number), for how long (to within
 * a round of the supervisor: 50 ms at most with the default stall_ns), ", not cancelable" for a wait cancellation does not end, its
 * stack innermost frame first (function+offset and the file it is in:
 * `addr2line -f -e FILE OFFSET`, or gdb, gives the line), where it was
 * spawned (file:line, or the caller's address for a herd_go called as a
 * function) and its scope, in the order of the tasks' ids. A task that is
 * running or runnable now is listed by its id; tasks that have never
 * parked are counted. Then every
 * child process alive: its pid, state, age and command line.
 *
 * The stacks are walked through frame pointers: herd's own frames always
 * have them, so the function that made the blocking call is always named;
 * frames above it are found only where the program was compiled with
 * -fno-omit-frame-pointer. herd's own frames come first (the switch, the
 * park, the wait), as the runtime's do in Go's dump. A function whose last
 * act is the blocking call may be missing: the compiler made it jump there
 * (a tail call), and its frame is gone; the spawn site still names it.
 * Names come from the symbol tables of the program and its libraries
 * (static functions included; a stripped program shows addresses).
 *
 * The workers are not stopped: the dump is a moment's picture, and a task
 * woken while its stack is read is shown without it.
 * Returns 0; -EBADF for a negative fd; -ESRCH if no runtime is running;
 * or the write's -errno. Callable from a task or any thread; it blocks
 * the calling thread for the write (a task's worker with it).
 */
HERD_API int herd_dump(int fd);

/*
 * Converts a timeline in the binary form that a program writes while it
 * runs (herd_config.trace, HERD_TRACE), left by a program that did not
 * reach the end of herd_run (killed with SIGKILL, say), into Chrome
 * trace-event JSON: reads in_fd to its end and writes the JSON to out_fd.
 * A file cut short is converted up to its last complete event.
 * Returns 0; 1 if the file was cut short; -EINVAL if in_fd does not hold
 * herd's binary form (a JSON trace, say: it needs no conversion); -EBADF
 * for a negative descriptor; -ENOMEM; or a read's or a write's -errno
 * (out_fd may then hold part of the JSON). Blocks the calling thread for
 * the reads and writes; callable with or without a running runtime.
 */
HERD_API int herd_trace_convert(int in_fd, int out_fd);

/* herd_run with the default configuration. */
HERD_API int herd_main(herd_fn fn, void *arg);

/*
 * The number of worker threads of the running runtime, or -ESRCH if none is
 * running. Does not block.
 */
HERD_API int herd_workers(void);

/*
 * The index (0 .. herd_workers() - 1) of the worker thread running the
 * caller, or -EPERM when called from a thread that is not a worker. A task
 * may move to another worker at any call that may block or yield. Does not
 * block.
 */
HERD_API int herd_worker_id(void);

/*
 * The calling task's id: unique among the tasks of one herd_run, never 0.
 * Returns 0 when the caller is not a task. Does not block.
 */
HERD_API uint64_t herd_task_id(void);

/* ------------------------------------------------------------------------ */
/* Scopes                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * A scope groups tasks. Every task belongs to exactly one. Scopes nest: a
 * scope opened by a task is a child of that task's scope, and the first task
 * runs in the root scope that herd_run creates.
 *
 * Lifetime: the task that opens a scope owns it and must close it with
 * herd_scope_close before it returns; if it returns without doing so, herd
 * closes the scope for it (waiting for the scope's tasks) as the task ends.
 * Any task may spawn into, wait for or cancel a scope it has a pointer to,
 * as long as the owner has not closed it.
 */
typedef struct herd_scope herd_scope;

/*
 * Opens a new scope, a child of the calling task's scope, and stores it in
 * *out. If the parent is already canceled, the new scope starts canceled.
 * Returns 0, -ENOMEM, -EINVAL (out is NULL) or -EPERM (not called from a
 * task). Does not block.
 */
HERD_API HERD_NODISCARD int herd_scope_open(herd_scope **out);

/*
 * The scope of the calling task, or NULL when the caller is not a task.
 * Does not block.
 */
HERD_API herd_scope *herd_scope_current(void);

/*
 * Waits until the scope is empty: every task spawned into it has ended, and
 * so has every scope nested in it. A scope can be waited for several times
 * and by several tasks; tasks can be spawned into it again afterwards.
 * Returns 0 when the scope is empty, whether or not it has failed (see
 * herd_scope_fail: read herd_scope_err, as a failure's code, HERD_ETIMEDOUT
 * say, could not be told from the wait's own); HERD_ETIMEDOUT if the
 * deadline passes first; HERD_ECANCELED if the calling task's scope is
 * canceled first (a scope's own cancellation does not end the wait: its
 * tasks are expected to return); -EDEADLK if the calling task belongs to
 * the scope or to a scope nested in it (it would wait for itself); -EINVAL
 * if scope is NULL; -EPERM outside a task.
 * Blocks; cancellation point.
 */
HERD_API int herd_scope_wait(herd_scope *scope, int64_t deadline);

/*
 * Cancels the scope and every scope nested in it, now and later opened:
 * every blocking call of their tasks, those waiting now and those made
 * later, returns HERD_ECANCELED, and spawning into them fails with
 * HERD_ECANCELED. Tasks are not stopped otherwise: a task that computes
 * without blocking should check herd_canceled() now and then.
 * Canceling twice is harmless. Canceling records no failure (see
 * herd_scope_fail). Callable from any task. Does not block.
 * Returns 0, or -EINVAL if scope is NULL.
 */
HERD_API int herd_scope_cancel(herd_scope *scope);

/*
 * Closes a scope: waits, without a deadline and without being interrupted by
 * cancellation, until the scope is empty, then frees it. To bound the time,
 * wait with a deadline first and cancel the scope if it passes.
 * Returns the code of the scope's first failure (see herd_scope_fail), or 0
 * if it did not fail, as Go's errgroup.Group.Wait returns the first error;
 * -EPERM if the calling task is not the scope's owner (which a task inside
 * the scope never is), or outside a task; -EINVAL if scope is NULL. On
 * those two errors the scope is left as it was, still open (a failure
 * recorded as -EPERM or -EINVAL reads the same: herd_scope_err tells them
 * apart before the close).
 * Blocks (uninterruptibly), but only for as long as the scope's tasks run.
 */
HERD_API int herd_scope_close(herd_scope *scope);

/*
 * Fails the scope, as a function started by a Go errgroup.Group made with
 * errgroup.WithContext fails its group by returning an error: if the scope
 * has not failed yet, records `code` as its failure and cancels it exactly
 * as herd_scope_cancel does (every blocking call of its tasks, and of the
 * scopes nested in it, returns HERD_ECANCELED; spawns into them fail);
 * later failures record nothing, but the scope is canceled when any call
 * returns. A failure is recorded even in a scope already canceled. herd_scope_close returns the code, herd_scope_err
 * reads it. A failure of a nested scope does not fail its parent; to pass
 * it on: `if ((rc = herd_scope_close(inner)) < 0) herd_scope_fail(NULL, rc);`.
 * scope NULL: the calling task's scope. `code` must be negative: a HERD_E*
 * code, a -errno, or a negative code of the program's own.
 * Returns 1 if `code` was recorded (the first failure), 0 if the scope had
 * failed already; -EINVAL if code is 0 or positive, or if scope is NULL
 * outside a task. Callable from any task, and from any thread with a scope
 * that is certainly open (as herd_go). Does not block.
 */
HERD_API int herd_scope_fail(herd_scope *scope, int code);

/*
 * The code of the scope's first failure (herd_scope_fail), or 0 if it has
 * not failed. scope NULL: the calling task's scope; -EINVAL if scope is
 * NULL outside a task. Does not block.
 */
HERD_API int herd_scope_err(herd_scope *scope);

/*
 * Bounds the scope's parallelism, as Go's errgroup.Group.SetLimit: while n
 * tasks spawned directly into the scope (those of scopes nested in it do
 * not count) are alive, a spawn into it waits until one of them has ended
 * (herd_go_until gives the wait a deadline; HERD_NOWAIT makes it Go's
 * TryGo). Spawns that wait get the freed places in the order in which they
 * came. n 0 removes the limit, and the spawns waiting go ahead (Go's
 * SetLimit(0) would let none through; its "no limit" is negative). The
 * limit may change while tasks run, unlike Go's: lowered below the number
 * running, it lets no spawn through until fewer than n run; raised, it lets
 * waiting spawns through at once. Tasks spawned into the scope before its
 * first limit was set do not count against it: set it before spawning.
 * A task of a full scope that spawns into it waits for a sibling to end
 * (if all of them do so, they wait for ever, as in Go).
 * Returns 0; -EINVAL if scope is NULL or n is negative; -ENOMEM (the
 * scope's first limit needs a few bytes). Callable from any task, and from
 * any thread with a scope that is certainly open. Does not block.
 */
HERD_API int herd_scope_limit(herd_scope *scope, int n);

/*
 * 1 if the calling task's scope, or a scope it is nested in, has been
 * canceled; 0 if not or when the caller is not a task. Does not block.
 */
HERD_API int herd_canceled(void);

/* ------------------------------------------------------------------------ */
/* Tasks                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Spawns a task that runs fn(p) in `scope` (NULL: the calling task's scope).
 *
 * The argument is copied before herd_go returns, the way `go f(v)` evaluates
 * v at once: herd_go copies `size` bytes from `arg` into the new task's own
 * object (on the heap, not on any stack), and p points to that copy, valid
 * until fn returns, aligned for any type as malloc's memory is. The caller
 * may then change or free its own copy: a loop that spawns a task per value
 * gives every task its own value. With size 0, p is `arg` itself, unchanged;
 * the caller then keeps what it points to alive and unchanged for as long as
 * the task uses it.
 *
 * The new task may run at once on another worker, or later; run queues have
 * no limit but memory. Returns 0; HERD_ECANCELED if the scope is canceled
 * (no task is started); -EINVAL if fn is NULL, if size is not 0 and arg is
 * NULL, or if scope is NULL outside a task; -EPERM if no runtime is running;
 * -ENOMEM, also for a size that no object can have (above PTRDIFF_MAX less
 * the task's header of a few hundred bytes), before anything is copied.
 * Does not block, but for a scope with a limit (herd_scope_limit): while
 * it is full, herd_go waits for a place as herd_go_until with HERD_FOREVER
 * does, and returns its errors. A thread that is not a worker may call it
 * too, with an explicit scope, while that scope is certainly alive (a task
 * of it is running and will not end first): not into the root scope once
 * every task may have ended, as the runtime may then be shutting down.
 *
 * With debug checks on (see herd_config.debug), spawning warns on stderr,
 * once per call site, when the copied bytes (or, with size 0, arg itself)
 * hold a pointer into the spawning task's own stack: the task would read a
 * variable that the spawner goes on changing, or leaves, which is the
 * loop-variable bug of the Go post-mortem.
 */
HERD_API int herd_go(herd_scope *scope, herd_fn fn, const void *arg, size_t size);

/*
 * herd_go into a scope that may be full (herd_scope_limit), with a deadline
 * for the wait for a place; where there is a place (always, in a scope
 * without a limit), it is herd_go and does not block. The spawns that wait
 * get places in the order in which they came. Returns as herd_go, and:
 * HERD_ETIMEDOUT if the deadline passes first (at once with HERD_NOWAIT
 * when the scope is full, as Go's errgroup.TryGo returns false);
 * HERD_ECANCELED if the calling task's scope, or `scope`, is canceled
 * before it gets a place; -EAGAIN if the caller is not a task and would
 * have to wait (a thread cannot; with HERD_NOWAIT it gets HERD_ETIMEDOUT,
 * as a task does). On error nothing is spawned.
 * Blocks only while the scope is full; the wait is a cancellation point.
 */
HERD_API int herd_go_until(herd_scope *scope, herd_fn fn, const void *arg,
			   size_t size, int64_t deadline);

/*
 * herd_go_until, with the call site named for the debug warning: `site` is
 * a string literal, normally "file:line". The herd_go, herd_go_until and
 * HERD_GO macros below call this (herd_go and HERD_GO with HERD_FOREVER);
 * call it directly only from wrappers that pass their own site.
 */
HERD_API int herd_go_at(const char *site, herd_scope *scope, herd_fn fn,
			const void *arg, size_t size, int64_t deadline);

#define HERD__STR2(x) #x
#define HERD__STR(x) HERD__STR2(x)
#define HERD__SITE __FILE__ ":" HERD__STR(__LINE__)

/* Calls of herd_go and herd_go_until name their site; (herd_go)(...) and
 * (herd_go_until)(...) reach the functions. */
#define herd_go(scope, fn, arg, size) \
	herd_go_at(HERD__SITE, (scope), (fn), (arg), (size), HERD_FOREVER)
#define herd_go_until(scope, fn, arg, size, deadline) \
	herd_go_at(HERD__SITE, (scope), (fn), (arg), (size), (deadline))

/*
 * HERD_GO spawns a task with a copy of a value, as Go's `go f(v)` does, in
 * two forms:
 *
 *   HERD_GO(scope, task(value)): `task` is declared with HERD_TASK (below),
 *     so the value's type is checked against the task's argument type;
 *   HERD_GO(scope, fn, value): fn is any herd_fn, which receives a pointer
 *     to the copy (`T v = *(T *)p;`), unchecked.
 *
 * value is an expression of any non-array type, evaluated once. Returns as
 * herd_go. (Uses GNU statement expressions and typeof: gcc and clang.)
 */
#define HERD_GO(...) HERD__GO_PICK(__VA_ARGS__, HERD__GO_FN, HERD__GO_TASK, ~)(__VA_ARGS__)
#define HERD__GO_PICK(a, b, c, name, ...) name
#define HERD__GO_FN(scope, fn, value)                                      \
	__extension__({                                                    \
		__typeof__(value) herd__value_ = (value);                  \
		herd_go_at(HERD__SITE, (scope), (fn), &herd__value_,       \
			   sizeof herd__value_, HERD_FOREVER);             \
	})
#define HERD__GO_TASK(scope, call) HERD_GO_UNTIL(scope, call, HERD_FOREVER)

/*
 * HERD_GO_UNTIL(scope, task(value), deadline): HERD_GO for a typed task,
 * with a deadline for the wait for a place in a scope that has a limit (see
 * herd_scope_limit and herd_go_until).
 */
#define HERD_GO_UNTIL(scope, call, deadline)                               \
	__extension__({                                                    \
		HERD__STRICT_BEGIN                                         \
		__typeof__(herd__call_##call) herd__call_ = herd__call_##call; \
		HERD__STRICT_END                                           \
		herd_go_at(HERD__SITE, (scope), herd__call_.fn, &herd__call_.herd__v, \
			   sizeof herd__call_.herd__v, (deadline));        \
	})

/*
 * HERD_MAIN(task(value)): herd_main for a typed task (see HERD_TASK), which
 * receives a copy of value. Returns as herd_main:
 *
 *     int main(void) { return HERD_MAIN(run(8)) < 0; }
 */
#define HERD_MAIN(call)                                                    \
	__extension__({                                                    \
		HERD__STRICT_BEGIN                                         \
		__typeof__(herd__call_##call) herd__main_ = herd__call_##call; \
		HERD__STRICT_END                                           \
		herd_main(herd__main_.fn, &herd__main_.herd__v);           \
	})

/*
 * Typed tasks. HERD_TASK declares a task function whose argument has a
 * type, so that spawning it with a value of another type does not compile,
 * as calling a C function with one does not:
 *
 *     HERD_TASK(start, struct object, obj)
 *     {
 *             printf("Finished: %s\n", obj.name); // the task's own copy
 *     }
 *     ...
 *     HERD_GO(NULL, start(o));                     // Go's `go start(o)`
 *
 * HERD_TASK(name, T, arg) defines `static void name(void *)`, a herd_fn
 * usable wherever one is, whose body receives `T arg`: the copy of the value
 * given to HERD_GO, made before HERD_GO returned. T is any complete
 * non-array type (for several values, a struct). HERD_GO converts the value
 * to T as a call to a function taking a T would, and refuses, as errors,
 * what C only warns about: a pointer to another type, a pointer that drops
 * a qualifier, an integer for a pointer or the reverse.
 */
#define HERD_TASK(name, T, arg)                                            \
	static void name##__herd_body(T arg);                              \
	static void name(void *herd__p) { name##__herd_body(*(T *)herd__p); } \
	struct name##__herd_call {                                         \
		herd_fn fn;                                                \
		T herd__v;                                                 \
	};                                                                 \
	static inline __attribute__((unused)) struct name##__herd_call     \
	herd__call_##name(T herd__a)                                       \
	{                                                                  \
		struct name##__herd_call herd__c = {name, herd__a};       \
		return herd__c;                                            \
	}                                                                  \
	static void name##__herd_body(T arg)

/* Turns what C only warns about in a conversion into errors, for HERD_GO. */
#if defined(__clang__)
#define HERD__STRICT_BEGIN                                                  \
	_Pragma("clang diagnostic push")                                    \
	_Pragma("clang diagnostic error \"-Wincompatible-pointer-types\"")  \
	_Pragma("clang diagnostic error \"-Wint-conversion\"")              \
	_Pragma("clang diagnostic error \"-Wincompatible-pointer-types-discards-qualifiers\"")
#define HERD__STRICT_END _Pragma("clang diagnostic pop")
#elif defined(__GNUC__)
#define HERD__STRICT_BEGIN                                                  \
	_Pragma("GCC diagnostic push")                                      \
	_Pragma("GCC diagnostic error \"-Wincompatible-pointer-types\"")    \
	_Pragma("GCC diagnostic error \"-Wint-conversion\"")                \
	_Pragma("GCC diagnostic error \"-Wdiscarded-qualifiers\"")
#define HERD__STRICT_END _Pragma("GCC diagnostic pop")
#else
#define HERD__STRICT_BEGIN
#define HERD__STRICT_END
#endif

/*
 * Lets other tasks run: the calling task goes to the back of its worker's
 * queue if any other task is ready there. A task that computes for a long
 * time without blocking should call it now and then.
 * Returns 0, HERD_ECANCELED if the task's scope is canceled (it still
 * yields; the code is a convenient place to stop), or -EPERM outside a task.
 */
HERD_API int herd_yield(void);

/* ------------------------------------------------------------------------ */
/* Wait groups                                                              */
/* ------------------------------------------------------------------------ */

/*
 * A counter that tasks can wait on until it is zero, as Go's
 * sync.WaitGroup. Prefer scopes in new code: they cannot be miscounted.
 *
 * A wait group is a value, as in Go: all zero bytes is a wait group with
 * counter 0, ready to use, with nothing to free, whether it is static,
 * on a task's stack, inside a struct, or allocated with calloc:
 *
 *     static herd_wg wg = HERD_WG_INIT;     (or: herd_wg wg = {0};)
 *
 * Its words are herd's own. It must not be copied, moved or freed while a
 * task waits on it or a call on it is under way. herd_wg_new and
 * herd_wg_free make one on the heap and free it.
 */
typedef struct herd_wg {
	uint64_t herd__opaque[4];
} herd_wg;

/* A wait group with counter 0 (all zero bytes). */
#define HERD_WG_INIT { { 0 } }

/*
 * Allocates a wait group with counter 0 and stores it in *out.
 * Returns 0, -EINVAL (out is NULL) or -ENOMEM. Callable from any thread.
 */
HERD_API HERD_NODISCARD int herd_wg_new(herd_wg **out);

/*
 * Frees a wait group made by herd_wg_new (not one the program allocated or
 * declared itself). Returns 0, or -EBUSY if a task is waiting on it (then
 * nothing is freed). NULL is accepted and ignored. Does not block.
 */
HERD_API int herd_wg_free(herd_wg *wg);

/*
 * Adds delta (which may be negative) to the counter. When the counter
 * reaches zero, every waiting task is woken.
 * Returns the new counter value (0 or more); -ERANGE if the counter would
 * become negative or exceed INT32_MAX (Go panics; here the counter is left
 * unchanged); -EINVAL if wg is NULL. Callable from any thread. Does not
 * block.
 */
HERD_API int herd_wg_add(herd_wg *wg, int delta);

/* herd_wg_add(wg, -1). */
HERD_API int herd_wg_done(herd_wg *wg);

/*
 * Waits until the counter is zero. Returns 0 then; HERD_ETIMEDOUT if the
 * deadline passes first; HERD_ECANCELED; -EINVAL if wg is NULL; -EPERM
 * outside a task. Blocks; cancellation point.
 */
HERD_API int herd_wg_wait(herd_wg *wg, int64_t deadline);

/* ------------------------------------------------------------------------ */
/* Mutexes, once, conditions and semaphores                                 */
/* ------------------------------------------------------------------------ */

/*
 * Go's sync.Mutex, sync.RWMutex, sync.Once and sync.Cond, and the weighted
 * semaphore of golang.org/x/sync/semaphore, for tasks: a task that has to
 * wait parks, and its worker runs other tasks meanwhile. A pthread mutex
 * held across a call that may park (a channel operation, herd_sleep, I/O)
 * makes every task that then waits for it stall its whole worker thread,
 * and with it the tasks queued there; these do not.
 *
 * Values: every type here is a value, as in Go. All zero bytes is a ready,
 * unlocked object (HERD_*_INIT, `= {0}`, static storage, calloc), except
 * that a semaphore's capacity must be given (HERD_SEM_INIT, herd_sem_init).
 * Nothing is allocated and there is nothing to free. The words are herd's
 * own. An object must not be copied, moved or freed while it is in use:
 * locked, waited on, or with a call on it under way. A releasing call is
 * over for this once what it lets through may go: the task that gets the
 * mutex from an unlock, or returns from herd_sem_acquire, herd_wg_wait,
 * herd_once_do or herd_cond_wait thanks to another party's call, may
 * release and free the object at once (a semaphore used as a completion in
 * its frame, as POSIX allows for a mutex), even if that call has not yet
 * returned: it touches the object no more.
 *
 * Threads: the calls that never block (herd_mutex_trylock, the unlocks,
 * herd_cond_signal and herd_cond_broadcast, herd_sem_tryacquire and
 * herd_sem_release) may be made from any thread, while a runtime runs or
 * not. A call that may block needs a task only when it has to wait: from
 * any other thread it succeeds if it can at once, and otherwise returns
 * -EPERM (HERD_ETIMEDOUT for deadline HERD_NOWAIT) having done nothing.
 * herd_once_do waits from any thread (a thread that is not a task sleeps).
 *
 * Cancellation: locking a mutex or a read-write mutex is not a
 * cancellation point, as in Go: locks are held briefly, and a canceled
 * task must still be able to take one to clean up (bound the wait with a
 * deadline instead). Nor is herd_once_do. herd_cond_wait and
 * herd_sem_acquire are cancellation points.
 *
 * Memory: an unlock happens before the lock or read lock that next takes
 * the mutex; a runlock happens before the next write lock; the return of
 * herd_once_do's fn happens before every herd_once_do on that once
 * returns; a herd_sem_release happens before the acquires it lets through.
 */

/*
 * A mutual-exclusion lock, as Go's sync.Mutex. It is not tied to a task:
 * any task or thread may unlock a mutex that another locked, as in Go. It
 * is not recursive: a task that locks a mutex it holds waits for itself
 * (until its deadline).
 *
 * Fairness, as Go's: a task that finds the mutex free takes it, even while
 * others wait (a running task takes it far sooner than a parked one could
 * be woken), and an unlock wakes the first waiter to compete for it. But a
 * waiter that loses after waiting more than 1 ms puts the mutex in handoff
 * mode: each unlock hands it to the first waiter, in order, and newcomers
 * queue behind, until the queue is empty or a waiter got it quickly. So a
 * waiter never waits for ever behind a stream of lockers.
 */
typedef struct herd_mutex {
	uint64_t herd__opaque[4];
} herd_mutex;

/* An unlocked mutex (all zero bytes). */
#define HERD_MUTEX_INIT { { 0 } }

/*
 * Locks m, waiting until it is free: a task spins briefly (a mutex is
 * usually released soon), then parks. Uncontended, it costs one atomic
 * compare-and-swap.
 * Returns 0 with m locked; HERD_ETIMEDOUT if the deadline passes first
 * (m is left as it was, not locked by the caller); -EINVAL if m is NULL;
 * -EPERM if it would have to wait outside a task; -ENOMEM (see the
 * conventions).
 * Blocks; not a cancellation point (see above): a task whose scope is
 * canceled still waits for the mutex, up to its deadline.
 */
HERD_API int herd_mutex_lock(herd_mutex *m, int64_t deadline);

/*
 * Locks m if it is free now. Returns 0 with m locked; -EBUSY if it is held
 * (or, in handoff mode, promised to a waiter); -EINVAL if m is NULL.
 * Callable from any thread. Does not block.
 */
HERD_API HERD_NODISCARD int herd_mutex_trylock(herd_mutex *m);

/*
 * Unlocks m and, if tasks wait for it, wakes the first (or, in handoff
 * mode, hands m to it). Uncontended, it costs a plain store on a worker
 * thread where Linux's rseq and membarrier allow it (x86-64, glibc 2.35
 * and later), else one atomic compare-and-swap.
 * Returns 0; -EPERM if m is not locked (nothing changes, and m stays
 * usable); -EINVAL if m is NULL. Two unlocks of one lock racing each other
 * (a bug) may both return 0. Callable from any thread. Does not block.
 */
HERD_API int herd_mutex_unlock(herd_mutex *m);

/*
 * A reader-writer lock, as Go's sync.RWMutex: held by any number of
 * readers, or by one writer. A writer that waits blocks new readers, so
 * that a stream of overlapping readers cannot starve it; when a writer
 * unlocks, the readers that queued meanwhile go first, then the next
 * writer, so readers are not starved either. Read locks are not
 * recursive: a task that read-locks twice while a writer waits waits for
 * itself, as in Go. Any task or thread may unlock.
 */
typedef struct herd_rwmutex {
	uint64_t herd__opaque[6];
} herd_rwmutex;

/* An unlocked read-write mutex (all zero bytes). */
#define HERD_RWMUTEX_INIT { { 0 } }

/*
 * Locks rw for reading, waiting while a writer holds it or waits for it.
 * Returns 0 with a read lock; HERD_ETIMEDOUT if the deadline passes first
 * (nothing is held); -EINVAL if rw is NULL; -EPERM if it would have to
 * wait outside a task; -EAGAIN if 2^30 - 1 read locks are held already;
 * -ENOMEM. Blocks; not a cancellation point.
 */
HERD_API int herd_rwmutex_rlock(herd_rwmutex *rw, int64_t deadline);

/*
 * Releases one read lock; the last one out lets a waiting writer in.
 * Returns 0; -EPERM if rw is not read-locked (nothing changes); -EINVAL if
 * rw is NULL. Callable from any thread. Does not block.
 */
HERD_API int herd_rwmutex_runlock(herd_rwmutex *rw);

/*
 * Locks rw for writing, waiting until no reader or writer holds it.
 * Returns 0 with the write lock; HERD_ETIMEDOUT if the deadline passes
 * first (nothing is held; readers it held back go on); -EINVAL if rw is
 * NULL; -EPERM if it would have to wait outside a task; -ENOMEM.
 * Blocks; not a cancellation point.
 */
HERD_API int herd_rwmutex_lock(herd_rwmutex *rw, int64_t deadline);

/*
 * Releases the write lock. Returns 0; -EPERM if rw is not write-locked
 * (nothing changes); -EINVAL if rw is NULL. Callable from any thread. Does
 * not block.
 */
HERD_API int herd_rwmutex_unlock(herd_rwmutex *rw);

/*
 * Runs a function once, as Go's sync.Once: of all the calls of
 * herd_once_do on one once, exactly one runs its fn.
 */
typedef struct herd_once {
	uint64_t herd__opaque[4];
} herd_once;

/* A once whose function has not run (all zero bytes). */
#define HERD_ONCE_INIT { { 0 } }

/*
 * Runs fn(arg) if no call on o has run its function yet; otherwise waits
 * until the call that runs it has returned. Either way, when it returns,
 * the function has run and returned, and what it wrote is visible.
 * Returns 1 if this call ran fn, 0 if another did; -EINVAL if o or fn is
 * NULL. Blocks only while another call runs the function: a task parks,
 * another thread sleeps. Not a cancellation point (it returns only once
 * the function has run). Callable from any thread, while a runtime runs
 * or not. fn must not call herd_once_do on o: it would wait for itself.
 */
HERD_API int herd_once_do(herd_once *o, void (*fn)(void *arg), void *arg);

/*
 * A condition variable, as Go's sync.Cond (whose mutex, a field there, is
 * given to each wait here): tasks wait on it, holding a mutex, until
 * another signals it. A wait may return 0 and find the condition false
 * (another task may have changed it first): wait in a loop that tests it,
 * with the mutex held:
 *
 *     herd_mutex_lock(&mu, HERD_FOREVER);
 *     while (!ready && (rc = herd_cond_wait(&cv, &mu, deadline)) == 0)
 *             ;
 *     ... (mu is held, whatever rc is)
 *     herd_mutex_unlock(&mu);
 */
typedef struct herd_cond {
	uint64_t herd__opaque[4];
} herd_cond;

/* A condition variable nobody waits on (all zero bytes). */
#define HERD_COND_INIT { { 0 } }

/*
 * Unlocks m, which the caller holds, and parks until herd_cond_signal or
 * herd_cond_broadcast wakes the task, atomically: a signal made after the
 * unlock is not missed. Re-locks m before it returns, whatever it returns
 * (but -EINVAL and -EPERM, which leave m untouched); that re-lock waits,
 * past the deadline and through cancellation, for as long as another task
 * holds m.
 * Returns 0 when woken by a signal or a broadcast; HERD_ETIMEDOUT at the
 * deadline (at once, m never unlocked, for HERD_NOWAIT); HERD_ECANCELED if
 * the calling task's scope is canceled before the call or while it waits;
 * -EINVAL if c or m is NULL; -EPERM if m is not locked, or outside a task;
 * -ENOMEM.
 * Blocks; cancellation point.
 */
HERD_API HERD_NODISCARD int herd_cond_wait(herd_cond *c, herd_mutex *m, int64_t deadline);

/*
 * Wakes the task that has waited longest on c, if any (herd_cond_signal),
 * or every task waiting on c (herd_cond_broadcast). Holding the waiters'
 * mutex is allowed and not required. Returns how many tasks it woke (0 or
 * more); -EINVAL if c is NULL. Callable from any thread. Does not block.
 */
HERD_API int herd_cond_signal(herd_cond *c);
HERD_API int herd_cond_broadcast(herd_cond *c);

/*
 * A weighted semaphore, as golang.org/x/sync/semaphore's Weighted: a
 * capacity of units, of which herd_sem_acquire takes n, waiting until
 * they are free, and herd_sem_release gives n back. Waiters are served in
 * the order they came: a large request that waits holds back later,
 * smaller ones, which would otherwise starve it. With weights of 1 it is a
 * counting semaphore, to bound how many tasks do something at once.
 * All zero bytes is a semaphore of capacity 0, which no acquire can take
 * from: give it its capacity with HERD_SEM_INIT or herd_sem_init.
 */
typedef struct herd_sem {
	int64_t herd__capacity;
	uint64_t herd__opaque[4];
} herd_sem;

/* A semaphore of capacity n (a constant expression, more than 0), none
 * of it acquired. */
#define HERD_SEM_INIT(n) { (n), { 0 } }

/*
 * Makes *s a semaphore of capacity n, none of it acquired, as
 * HERD_SEM_INIT does; for one made at run time. Only for a semaphore not
 * in use. Returns 0; -EINVAL if s is NULL or n <= 0. Does not block.
 */
HERD_API int herd_sem_init(herd_sem *s, int64_t n);

/*
 * Acquires n units, waiting until n are free and every task that waited
 * before has been served.
 * Returns 0 with the n units; HERD_ETIMEDOUT if the deadline passes first,
 * HERD_ECANCELED (in both cases nothing is acquired, and the waiters that
 * it held back may go); -EINVAL if s is NULL, n <= 0 or n exceeds the
 * capacity (it could never be served); -EPERM if it would have to wait
 * outside a task; -ENOMEM.
 * Blocks; cancellation point.
 */
HERD_API HERD_NODISCARD int herd_sem_acquire(herd_sem *s, int64_t n, int64_t deadline);

/*
 * Acquires n units if they are free now and nobody waits. Returns 0 with
 * them; -EBUSY if not (nothing is acquired); -EINVAL as herd_sem_acquire.
 * Callable from any thread. Does not block.
 */
HERD_API HERD_NODISCARD int herd_sem_tryacquire(herd_sem *s, int64_t n);

/*
 * Releases n units and wakes the waiters that can now be served, in order.
 * Any task or thread may release units that another acquired. Returns 0;
 * -ERANGE if it would release more units than are acquired (nothing
 * changes); -EINVAL if s is NULL or n <= 0. Callable from any thread.
 * Does not block.
 */
HERD_API int herd_sem_release(herd_sem *s, int64_t n);

/* ------------------------------------------------------------------------ */
/* Channels                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * A channel carries values of one fixed size (elem_size bytes, copied in and
 * out with memcpy semantics) from senders to receivers, as Go's channels do.
 * With capacity 0 it is a rendezvous: a send completes only when a receiver
 * takes the value. With capacity N it buffers up to N values. Values from
 * one sender arrive in the order it sent them.
 *
 * Closing a channel (herd_chan_close) says no more values will come: the
 * values still buffered are delivered, after which every receive returns
 * HERD_ECLOSED at once. Unlike Go, sending on a closed channel and closing
 * it twice return HERD_ECLOSED instead of panicking.
 *
 * Memory: a send happens before the receive that takes its value completes;
 * a close happens before a receive that returns HERD_ECLOSED because of it.
 *
 * Threads: the calls that do not block (HERD_NOWAIT, the try variants,
 * close, len) may be made from any thread while the runtime runs, so a
 * plain thread can feed tasks through a buffered channel. Blocking calls
 * need a task (-EPERM elsewhere).
 *
 * Lifetime: a channel is freed explicitly, by herd_chan_free, and only once
 * no task can still use it; typically the owner frees it after closing the
 * scope of the tasks that use it (herd_scope_close). herd_chan_free refuses
 * (-EBUSY) while a task is blocked on the channel, but it cannot know about
 * a task that is about to call it: that is the caller's to rule out.
 */
typedef struct herd_chan herd_chan;

/* The largest element size and capacity herd_chan_make accepts. */
#define HERD_CHAN_ELEM_MAX ((size_t)1 << 16)
#define HERD_CHAN_CAP_MAX ((size_t)1 << 30)

/*
 * Makes a channel of values of elem_size bytes (0 is allowed: a channel
 * of signals, Go's chan struct{}) buffering up to `capacity` of them, and
 * stores it in *out. Returns 0; -EINVAL if out is NULL, elem_size exceeds
 * HERD_CHAN_ELEM_MAX or capacity HERD_CHAN_CAP_MAX; -ENOMEM if the buffer
 * cannot be allocated: capacity slots of 8 bytes for values of up to 4
 * bytes, else of 8 bytes plus the value rounded up to 8 (a stamp that lets
 * sends and receives go without a lock), none for elem_size 0; its pages
 * are touched only as they are used. Callable from any thread. Does not
 * block.
 */
HERD_API HERD_NODISCARD int herd_chan_make(herd_chan **out, size_t elem_size, size_t capacity);

/*
 * Frees a channel and the values still buffered in it. Returns 0; -EBUSY if
 * a task is blocked sending or receiving on it (nothing is freed then).
 * NULL is accepted and ignored. Does not block.
 */
HERD_API int herd_chan_free(herd_chan *ch);

/*
 * Sends the elem_size bytes at `elem`, waiting until a receiver takes them
 * (capacity 0) or there is room in the buffer.
 * Returns 0 once the value is in the channel (or, unbuffered, in the
 * receiver's hands); HERD_ECLOSED if the channel is or becomes closed
 * (nothing was sent); HERD_ETIMEDOUT at the deadline (nothing was sent);
 * HERD_ECANCELED; -EINVAL if ch is NULL, or elem is NULL while elem_size
 * is not 0; -EPERM if it would block outside a task.
 * Blocks; cancellation point.
 */
HERD_API int herd_chan_send(herd_chan *ch, const void *elem, int64_t deadline);

/*
 * Receives a value into the elem_size bytes at `elem` (NULL discards it),
 * waiting until one is available.
 * Returns 0 with a value; HERD_ECLOSED when the channel is closed and every
 * value sent before the close has been received (elem is then zeroed);
 * HERD_ETIMEDOUT at the deadline; HERD_ECANCELED; -EINVAL if ch is NULL;
 * -EPERM if it would block outside a task.
 * Blocks; cancellation point.
 */
HERD_API int herd_chan_recv(herd_chan *ch, void *elem, int64_t deadline);

/* herd_chan_send and herd_chan_recv with deadline HERD_NOWAIT: they return
 * HERD_ETIMEDOUT instead of blocking. Callable from any thread. */
HERD_API int herd_chan_try_send(herd_chan *ch, const void *elem);
HERD_API int herd_chan_try_recv(herd_chan *ch, void *elem);

/*
 * Closes the channel: wakes every blocked receiver (which returns
 * HERD_ECLOSED once the buffer is drained) and every blocked sender (which
 * returns HERD_ECLOSED, its value unsent). Returns 0; HERD_ECLOSED if it was
 * closed already; -EINVAL if ch is NULL. Callable from any thread. Does not
 * block.
 */
HERD_API int herd_chan_close(herd_chan *ch);

/* Values buffered now (len), the capacity (cap), the element size; -EINVAL
 * if ch is NULL. The length may change as soon as it is read. Callable from
 * any thread. Do not block. */
HERD_API int herd_chan_len(herd_chan *ch);
HERD_API int herd_chan_cap(const herd_chan *ch);
HERD_API int herd_chan_elem_size(const herd_chan *ch);

/*
 * herd_chan_send and herd_chan_recv that also check the size of the
 * caller's value: `size` must be the channel's element size (recv: unless
 * elem is NULL), else they return -EINVAL at once and copy nothing. The
 * HERD_SEND, HERD_RECV and HERD_RANGE macros below pass sizeof the variable
 * here, so that an int sent into an int64_t channel is an error, not a read
 * past the int.
 */
HERD_API int herd_chan_send_sized(herd_chan *ch, const void *elem, size_t size,
				  int64_t deadline);
HERD_API int herd_chan_recv_sized(herd_chan *ch, void *elem, size_t size,
				  int64_t deadline);

/*
 * Typed channels. HERD_CHAN(T) is the type of a channel of T values: a
 * herd_chan in disguise that carries T, so that the compiler checks every
 * value sent or received through the macros below (a mismatch is a compile
 * error, not a silent copy):
 *
 *     HERD_CHAN(struct job) jobs;
 *     if (HERD_CHAN_MAKE(jobs, 16) < 0) ...
 *     struct job j = {...};
 *     HERD_SEND(jobs, j, HERD_FOREVER);
 *     HERD_RANGE(j, jobs) { ... }
 *     herd_chan_close(jobs); herd_chan_free(jobs);
 *
 * T must be a complete type (a function pointer through a typedef). Two
 * HERD_CHAN(T) of the same T have the same type, so a typed channel can be
 * a parameter, a struct field or a task's argument. Never dereference one;
 * HERD_CHAN_RAW gives the plain herd_chan for any other call (in C, the
 * herd_chan_* calls that take only a channel, and herd_chan_send/recv, also
 * accept a typed one directly). These macros are C only (C11 _Generic and
 * GNU typeof; gcc and clang).
 *
 * HERD_SEND, HERD_RECV, HERD_RANGE and the HERD_CASE_* initialisers also
 * take a plain herd_chan: then the size of the variable is checked when the
 * call runs, and a mismatch returns -EINVAL (HERD_RANGE stops, and
 * HERD_RANGE_RC says why).
 */
#define HERD_CHAN(T) __typeof__(__extension__(T(*)[0])0)

/* Makes a typed channel of `capacity` values and stores it in the lvalue c;
 * returns as herd_chan_make (c is then NULL on failure). */
#define HERD_CHAN_MAKE(c, capacity)                                          \
	__extension__({                                                      \
		HERD__CHECK_CHAN(c);                                         \
		herd_chan *herd__made_ = 0;                                  \
		int herd__rc_ = herd_chan_make(&herd__made_, sizeof **(c),   \
					       (capacity));                  \
		(c) = (__typeof__(c))(void *)herd__made_;                    \
		herd__rc_;                                                   \
	})

/* The plain herd_chan of a typed channel (or of a plain one). */
#define HERD_CHAN_RAW(c) (HERD__CHECK_CHAN(c), (herd_chan *)(void *)(c))

/*
 * Sends the variable `var` (an lvalue: a variable, an array element, a
 * compound literal such as (int){42}) on channel c; receives into it.
 * Return as herd_chan_send and herd_chan_recv. On a typed channel the
 * compiler has checked the type, and the call costs what herd_chan_send
 * does; on a plain one the size is checked as the call runs.
 */
#define HERD_SEND(c, var, deadline)                                          \
	(HERD__CHECK_VAR(c, var),                                            \
	 __builtin_choose_expr(HERD__UNTYPED(c),                              \
			       herd_chan_send_sized((herd_chan *)(void *)(c), &(var), \
						    sizeof(var), (deadline)), \
			       (herd_chan_send)((herd_chan *)(void *)(c), &(var), \
						(deadline))))
#define HERD_RECV(c, var, deadline)                                          \
	(HERD__CHECK_VAR(c, var),                                            \
	 __builtin_choose_expr(HERD__UNTYPED(c),                              \
			       herd_chan_recv_sized((herd_chan *)(void *)(c), &(var), \
						    sizeof(var), (deadline)), \
			       (herd_chan_recv)((herd_chan *)(void *)(c), &(var), \
						(deadline))))

/*
 * Go's `for v := range ch`: runs the statement that follows once for every
 * value received into the variable `var` (of the channel's element type or
 * size), until the channel is closed and drained:
 *
 *     int job;
 *     HERD_RANGE(job, jobs) {
 *             process(job);
 *     }
 *
 * The loop also ends if the receive fails otherwise (the task's scope is
 * canceled, or var has the wrong size); HERD_RANGE_RC stores the code that
 * ended it in the int lvalue `rc` (HERD_ECLOSED after a normal end), so that
 * the two can be told apart. `break` and `continue` work as in any loop.
 */
#define HERD_RANGE(var, ch) for (; HERD_RECV(ch, var, HERD_FOREVER) == 0;)
#define HERD_RANGE_RC(var, ch, rc) \
	for (; ((rc) = HERD_RECV(ch, var, HERD_FOREVER)) == 0;)

/*
 * The checks behind the typed macros. A typed channel is a pointer to a
 * zero-length array of T: HERD__TYPED maps a plain channel (or NULL) to one
 * of zero-size elements instead, so that one expression serves both, and
 * sizeof *HERD__TYPED(c) is 0 for both and for nothing else.
 */
#define HERD__UNTYPED(c) _Generic((c), herd_chan *: 1, void *: 1, default: 0)
#define HERD__TYPED(c)                                                        \
	(__extension__ _Generic((c), herd_chan *: (char(*)[0][0])0,           \
				void *: (char(*)[0][0])0, default: (c)))
#define HERD__VOIDP(p) _Generic((p), void *: 1, const void *: 1, default: 0)
/* sizeof *p, or 0 for a void pointer (the size is then unknown). */
#define HERD__PSIZE(p)                                                        \
	(__extension__ sizeof *_Generic((p), void *: (char(*)[0])0,            \
					const void *: (char(*)[0])0, default: (p)))
#define HERD__STATIC_CHECK(cond, msg) \
	((void)sizeof(struct { int herd__x; _Static_assert(cond, msg); }))
#define HERD__CHECK_CHAN(c)                                                   \
	HERD__STATIC_CHECK(sizeof *HERD__TYPED(c) == 0,                        \
			   "herd: not a channel (a herd_chan * or a HERD_CHAN(T))")
#define HERD__CHECK_VAR(c, var)                                               \
	(HERD__CHECK_CHAN(c),                                                 \
	 HERD__STATIC_CHECK(HERD__UNTYPED(c) ||                               \
				    __builtin_types_compatible_p(              \
					    __typeof__(var),                   \
					    __typeof__(**HERD__TYPED(c))),     \
			    "herd: the variable's type is not the channel's element type"))
#define HERD__CHECK_PTR(c, p)                                                 \
	(HERD__CHECK_CHAN(c),                                                 \
	 HERD__STATIC_CHECK(HERD__UNTYPED(c) || HERD__VOIDP(p) ||             \
				    __builtin_types_compatible_p(              \
					    __typeof__(*(p)),                  \
					    __typeof__(**HERD__TYPED(c))),     \
			    "herd: the pointer's type does not match the channel's element type"))

/* The calls that take a channel accept a typed one too (C only). The
 * functions themselves are reached as (herd_chan_close)(ch). */
#if !defined(__cplusplus)
#define herd_chan_send(c, elem, deadline) \
	(HERD__CHECK_PTR(c, elem), (herd_chan_send)((herd_chan *)(void *)(c), (elem), (deadline)))
#define herd_chan_recv(c, elem, deadline) \
	(HERD__CHECK_PTR(c, elem), (herd_chan_recv)((herd_chan *)(void *)(c), (elem), (deadline)))
#define herd_chan_try_send(c, elem) \
	(HERD__CHECK_PTR(c, elem), (herd_chan_try_send)((herd_chan *)(void *)(c), (elem)))
#define herd_chan_try_recv(c, elem) \
	(HERD__CHECK_PTR(c, elem), (herd_chan_try_recv)((herd_chan *)(void *)(c), (elem)))
#define herd_chan_close(c) (herd_chan_close)(HERD_CHAN_RAW(c))
#define herd_chan_free(c) (herd_chan_free)(HERD_CHAN_RAW(c))
#define herd_chan_len(c) (herd_chan_len)(HERD_CHAN_RAW(c))
#define herd_chan_cap(c) (herd_chan_cap)(HERD_CHAN_RAW(c))
#define herd_chan_elem_size(c) (herd_chan_elem_size)(HERD_CHAN_RAW(c))
#endif

/* ------------------------------------------------------------------------ */
/* Select                                                                   */
/* ------------------------------------------------------------------------ */

/* herd_case.op */
enum { HERD_SEND = 1, HERD_RECV = 2 };

/* One case of a select: a send or a receive on a channel. */
typedef struct herd_case {
	herd_chan *chan; /* NULL: a case that is never ready (as a nil
			  * channel in Go), to turn a case off */
	void *elem;      /* SEND: the value to send; RECV: where to store
			  * the value received, or NULL to discard it */
	size_t size;     /* the size of *elem, which must then be the
			  * channel's element size; 0: not checked */
	int op;          /* HERD_SEND or HERD_RECV */
	int result;      /* set in the chosen case: 0, or HERD_ECLOSED if
			  * its channel is closed (a receive then got no
			  * value and elem is zeroed; a send sent nothing) */
} herd_case;

/*
 * Case initialisers: herd_case cs[] = { HERD_CASE_RECV(a, &x), ... }. The
 * channel is a herd_chan * (or NULL) or a typed channel; ptr points to the
 * value (or is NULL, for a receive that discards it). With a typed channel,
 * a pointer of another type is a compile error; otherwise herd_select
 * checks the size of *ptr (unless ptr is a void pointer) and returns
 * -EINVAL on a mismatch.
 */
#if !defined(__cplusplus)
#define HERD_CASE_SEND(ch, ptr)                                               \
	{ .chan = (HERD__CHECK_PTR(ch, ptr), (herd_chan *)(void *)(ch)),      \
	  .elem = (void *)(ptr), .size = HERD__PSIZE(ptr), .op = HERD_SEND,   \
	  .result = 0 }
#define HERD_CASE_RECV(ch, ptr)                                               \
	{ .chan = (HERD__CHECK_PTR(ch, ptr), (herd_chan *)(void *)(ch)),      \
	  .elem = (ptr), .size = HERD__PSIZE(ptr), .op = HERD_RECV, .result = 0 }
#else
#define HERD_CASE_SEND(ch, ptr) \
	{ (ch), (void *)(ptr), 0, HERD_SEND, 0 }
#define HERD_CASE_RECV(ch, ptr) \
	{ (ch), (ptr), 0, HERD_RECV, 0 }
#endif

/* The largest number of cases herd_select accepts. */
#define HERD_SELECT_MAX 65536

/*
 * Go's select: waits until one of the n cases can proceed, performs it, and
 * returns its index. When several can proceed, one is chosen uniformly at
 * random, so that none starves. Each run draws its own seed for these
 * choices, so runs differ as Go's do; HERD_SEED=N (a decimal number) sets
 * it, and herd_dump, the deadlock report and herd_stats_get show the seed
 * in use: with one worker (HERD_WORKERS=1) and the same inputs, a run with
 * the same seed makes the same choices. With several workers, where tasks
 * run also depends on timing. A case whose channel is closed can always
 * proceed, with its `result` set to HERD_ECLOSED. Go's `default:` is
 * deadline HERD_NOWAIT: HERD_ETIMEDOUT is then returned at once if no case
 * is ready. A channel may appear in several cases.
 * Returns the index of the case performed (0 to n-1); HERD_ETIMEDOUT at the
 * deadline (no case was performed); HERD_ECANCELED; -EINVAL if cases is
 * NULL while n > 0, n exceeds HERD_SELECT_MAX, an op is not HERD_SEND or
 * HERD_RECV, or a send case's elem is NULL while its element size is not 0;
 * -ENOMEM (more than 16 cases need memory); -EPERM if it would block
 * outside a task.
 * Blocks; cancellation point. With HERD_NOWAIT, callable from any thread.
 */
HERD_API HERD_NODISCARD int herd_select(herd_case *cases, size_t n, int64_t deadline);

/* ------------------------------------------------------------------------ */
/* Timers and tickers                                                       */
/* ------------------------------------------------------------------------ */

/*
 * A timer delivers the time (herd_now(), an int64_t) on its channel, once
 * at its deadline, or, as a ticker, at the deadline and then every `period`
 * nanoseconds. The channel has capacity 1: a tick that finds it full (its
 * reader is slow) is dropped, as Go's tickers drop ticks, and a ticker
 * keeps its phase. Use the channel in herd_select to wait for the first of
 * several things. To bound a single wait, pass a deadline to the call
 * instead: it costs less.
 *
 * Unlike Go before 1.23, stopping or resetting a timer also empties its
 * channel: no stale tick is received afterwards.
 *
 * A timer belongs to the runtime that made it and needs it running. Free it
 * (herd_timer_free) before herd_run returns: the channel must not be used
 * by any task after that.
 */
typedef struct herd_timer herd_timer;

/*
 * Makes a timer that fires at `deadline` (an absolute monotonic time; one
 * in the past fires at once) and, if period > 0, every `period` nanoseconds
 * after it; stores it in *out. Any deadline and period up to INT64_MAX is
 * valid; a tick that would come within a second of INT64_MAX, or later,
 * never comes. Returns 0; -EINVAL if out is NULL, deadline is negative
 * (HERD_FOREVER) or period negative; -ESRCH if no runtime is running;
 * -ENOMEM. Callable from any thread. Does not block.
 */
HERD_API HERD_NODISCARD int herd_timer_new(herd_timer **out, int64_t deadline, int64_t period);

/* The timer's channel, to receive from or select on. Do not send on it,
 * close it or free it: it belongs to the timer (Go's is receive-only).
 * Returns NULL if t is NULL. */
HERD_API herd_chan *herd_timer_chan(herd_timer *t);

/*
 * Stops the timer and empties its channel. Returns 1 if the timer was
 * pending (it had not fired yet, or is a ticker), 0 if it had already fired
 * or was stopped; -EINVAL if t is NULL. A tick being delivered as this is
 * called is either received before it returns or removed. Callable from any
 * thread. Does not block (it may wait for a delivery in progress, which
 * takes no more than a channel operation).
 */
HERD_API int herd_timer_stop(herd_timer *t);

/*
 * Stops the timer, empties its channel and starts it again with a new
 * deadline and period. Returns what herd_timer_stop would have; -EINVAL as
 * herd_timer_new; -ENOMEM (the timer and its channel are left as they
 * were). Callable from any thread. Does not block.
 */
HERD_API int herd_timer_reset(herd_timer *t, int64_t deadline, int64_t period);

/*
 * Stops and frees a timer and its channel. Returns 0; -EBUSY if a task is
 * blocked on its channel (the timer is then stopped, not freed). NULL is
 * accepted and ignored. Does not block.
 */
HERD_API int herd_timer_free(herd_timer *t);

/* ------------------------------------------------------------------------ */
/* Descriptors and I/O                                                      */
/* ------------------------------------------------------------------------ */

/*
 * A task that waits for a descriptor parks; its worker runs other tasks, and
 * an idle worker sleeps in the poller (epoll on Linux) until a descriptor is
 * ready or a timer is due.
 *
 * The descriptor budget. When the runtime starts it raises the soft limit
 * on open descriptors (RLIMIT_NOFILE) to the hard limit, as Go does;
 * children get the original soft limit back. herd counts the descriptors it
 * creates (pipes, accepted sockets, the parent's ends of a child's pipes,
 * pidfds); herd_fd_stats_get reports them. Every descriptor herd creates is
 * close-on-exec, and a child receives only those it is given.
 *
 * When a descriptor cannot be created because the process has reached its
 * limit (EMFILE), the call that wanted it waits, up to its deadline, until
 * herd closes one of its own, and tries again; waiters are served in
 * order, one per descriptor released. Descriptors the program closes
 * itself are not seen: after 100 ms without a release the first waiter
 * tries again anyway. The first such wait prints one line on stderr naming
 * the limit. With deadline HERD_NOWAIT the call returns -EMFILE at once
 * instead.
 */

/* Readiness, for herd_fd_wait (and its result). */
enum { HERD_READABLE = 1, HERD_WRITABLE = 2 };

/*
 * Waits until fd is ready for one of `events` (HERD_READABLE, HERD_WRITABLE
 * or both). Returns the events that are ready (> 0); an error or hang-up on
 * the descriptor reports every event asked for, so that the next read or
 * write reports it. HERD_ETIMEDOUT, HERD_ECANCELED; -EINVAL (no event, or
 * fd < 0), -EBADF (fd is not open), -EPERM (not a task; or fd is a regular
 * file or directory, which is always ready: use herd_blocking); -ENOMEM.
 * Blocks (a cancellation point). With HERD_NOWAIT, reports readiness
 * without blocking (as poll(2) does: a regular file is ready),
 * HERD_ETIMEDOUT when none.
 */
HERD_API int herd_fd_wait(int fd, int events, int64_t deadline);

/*
 * read(2) and write(2) for tasks: they wait (up to the deadline) until fd is
 * ready instead of blocking the worker. Returns what read or write returns
 * (bytes, possibly fewer than n; 0 is end of file for read), or a negative
 * code: -errno from the call, HERD_ETIMEDOUT, HERD_ECANCELED, -EPERM (not a
 * task). fd must be non-blocking (herd's own descriptors are; see
 * herd_fd_nonblock), as in Go: the call tries the system call first and
 * waits only when it reports EAGAIN. On a blocking descriptor the system
 * call blocks the worker thread, past the deadline (the monitor then moves
 * the worker's other tasks away). EINTR is retried.
 */
HERD_API HERD_NODISCARD ssize_t herd_read(int fd, void *buf, size_t n, int64_t deadline);
HERD_API HERD_NODISCARD ssize_t herd_write(int fd, const void *buf, size_t n, int64_t deadline);

/*
 * Writes all n bytes, waiting as needed. Returns n, or a negative code as
 * herd_write (-EINVAL if n exceeds SSIZE_MAX, which could not be
 * returned); bytes written before a failure are not reported (use
 * herd_write to know them).
 */
HERD_API ssize_t herd_write_all(int fd, const void *buf, size_t n, int64_t deadline);

/*
 * accept4(2) for tasks: waits for a connection on the listening socket fd.
 * The new socket is non-blocking and close-on-exec, and counts against the
 * budget (close it with herd_close). Returns it (>= 0), or -errno,
 * HERD_ETIMEDOUT, HERD_ECANCELED, -EMFILE (limit reached and deadline
 * HERD_NOWAIT; otherwise it waits, see above), -EPERM (not a task).
 */
HERD_API HERD_NODISCARD int herd_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
			 int64_t deadline);

/*
 * connect(2) for tasks, on a non-blocking socket: starts the connection and
 * waits until it is made. Returns 0, or -errno (the connection's error, such
 * as -ECONNREFUSED), HERD_ETIMEDOUT (the attempt goes on in the kernel:
 * close the socket), HERD_ECANCELED, -EPERM (not a task).
 */
HERD_API HERD_NODISCARD int herd_connect(int fd, const struct sockaddr *addr, socklen_t addrlen,
			  int64_t deadline);

/*
 * socket(2) for herd: the socket is non-blocking, close-on-exec and counted.
 * Returns it, or -errno; -EMFILE as herd_accept. Blocks only while waiting
 * for a descriptor (see the budget above).
 */
HERD_API HERD_NODISCARD int herd_socket(int domain, int type, int protocol, int64_t deadline);

/*
 * pipe2(2) for herd: fds[0] reads, fds[1] writes; both non-blocking,
 * close-on-exec and counted. Returns 0, -EINVAL (fds is NULL), -errno;
 * -EMFILE as herd_accept. Blocks only while waiting for descriptors.
 */
HERD_API HERD_NODISCARD int herd_pipe(int fds[2], int64_t deadline);

/*
 * Closes fd. If herd created it (and counts it), the count goes down and a
 * task waiting for a descriptor may go on. Tasks waiting on fd itself
 * (herd_fd_wait, herd_read, ...) are woken with -EBADF. Returns 0 or
 * -errno (-EBADF). Callable from any thread. Does not block.
 *
 * Close the descriptors herd made (herd_socket, herd_accept, herd_pipe)
 * with herd_close, not close(2): herd keeps them registered with the
 * poller from one wait to the next, and forgets them here. Closed with
 * close(2), a number is registered afresh when herd makes a descriptor
 * with it again or the program passes one to herd_fd_nonblock; but a
 * wait on a descriptor with that number that the program made
 * non-blocking by itself (O_NONBLOCK, SOCK_NONBLOCK) ends only at its
 * deadline.
 */
HERD_API int herd_close(int fd);

/*
 * Puts fd in non-blocking mode, and tells herd that fd is a new descriptor
 * (see herd_close). Returns 0 or -errno. Does not block.
 */
HERD_API int herd_fd_nonblock(int fd);

typedef struct herd_fd_stats {
	long open;     /* descriptors herd created and has not closed */
	long peak;     /* the most open at once */
	long limit;    /* the process's soft RLIMIT_NOFILE now */
	long limit_at_start; /* and before herd raised it */
	long waits;    /* times a call waited for a descriptor */
} herd_fd_stats;

/*
 * Fills *out. Returns 0, -EINVAL (out is NULL) or -ESRCH (no runtime).
 * Callable from any thread. Does not block.
 */
HERD_API int herd_fd_stats_get(herd_fd_stats *out);

/* ------------------------------------------------------------------------ */
/* Blocking calls                                                           */
/* ------------------------------------------------------------------------ */

/*
 * Runs fn(arg) on a helper thread while the calling task parks, and returns
 * what fn returned: for calls that cannot be made non-blocking (regular
 * files, getaddrinfo, a library that blocks). The other tasks of the worker
 * run meanwhile. fn must not call herd's blocking functions (it is not a
 * task). The wait is not cancelable and has no deadline: fn runs to its
 * end, and arg must stay valid until then. Returns -EPERM when not called
 * from a task (fn is not run), -EAGAIN if no helper thread could be started
 * and none is running.
 */
HERD_API int herd_blocking(int (*fn)(void *arg), void *arg);

/* ------------------------------------------------------------------------ */
/* Child processes                                                          */
/* ------------------------------------------------------------------------ */

/*
 * A child process belongs to the scope it was started in. Nothing it starts
 * strays:
 *   - It runs in its own process group, with a parent-death signal
 *     (SIGKILL), so it does not outlive a herd process that is killed.
 *   - When the process exits, whatever it left running in its group is
 *     killed (SIGKILL), as systemd ends a service's leftovers.
 *   - When its scope is canceled, its group gets SIGTERM, and SIGKILL
 *     once its grace period has passed. When the scope closes
 *     (herd_scope_close, or the end of herd_run for the root scope), every
 *     process still running in it is ended the same way, and the close
 *     returns only once they and their groups are gone.
 *   - The runtime makes itself a child subreaper: descendants orphaned by
 *     their parent's death come back to herd, which reaps them; those in
 *     the child's group are ended with it. No process and no zombie is
 *     left behind. Orphans of processes the program started by other
 *     means (system("cmd &"), a fork of its own) come to herd too, and it
 *     reaps them when they exit, provided herd_run was called by the main
 *     thread (otherwise herd cannot tell them from the program's own
 *     children, and leaves them). The program's own children are never
 *     reaped by herd, with one exception: a child whose forking thread
 *     (one of the program's, not a task) exits before it passes to the
 *     main thread, and herd reaps it if it exits during the run.
 *   - Where a writable cgroup v2 hierarchy is available, each child gets
 *     its own cgroup, killed as a whole (cgroup.kill): this also catches
 *     descendants that left the process group (setsid, setpgid), and herd
 *     kills and reaps any that come back to it once the child has exited.
 *     Without cgroups, a descendant that leaves the group is not caught.
 *     Children the program starts itself, outside herd, are never touched.
 * docs/design.md says what is guaranteed, and how.
 */
typedef struct herd_proc herd_proc;

/* What a child's stdin, stdout or stderr is (herd_stdio.mode). */
enum {
	HERD_STDIO_INHERIT = 0, /* the parent's own */
	HERD_STDIO_NULL = 1,    /* /dev/null */
	HERD_STDIO_PIPE = 2,    /* a pipe; the parent's end: herd_proc_fd */
	HERD_STDIO_FD = 3,      /* the descriptor herd_stdio.fd */
};

typedef struct herd_stdio {
	int mode; /* HERD_STDIO_* */
	int fd;   /* for HERD_STDIO_FD */
} herd_stdio;

typedef struct herd_proc_opts {
	/* The program: a path, or a name looked up in PATH (as execvp does)
	 * when it has no '/'. NULL: argv[0]. */
	const char *file;
	/* The arguments, NULL-terminated; argv[0] is required. */
	char *const *argv;
	/* The environment, NULL-terminated; NULL: the caller's (environ). */
	char *const *envp;
	/* The working directory; NULL: the caller's. */
	const char *dir;
	/* stdin, stdout, stderr. Zeroed: inherited. */
	herd_stdio stdio[3];
	/* Time between SIGTERM and SIGKILL when the process is ended, in
	 * nanoseconds: 0 is the default, 2 s; negative: SIGKILL at once. */
	int64_t grace;
	/* HERD_PROC_* flags, or 0. */
	unsigned flags;
} herd_proc_opts;

/*
 * herd_proc_opts.flags. A child starts with every signal at its default
 * action and none blocked, whatever the program ignores or blocks (a child
 * that ignored SIGTERM would hold every cancellation for its grace period).
 * HERD_PROC_KEEP_SIGNALS gives it, as fork and exec would, the signals
 * ignored by the program and the signal mask of the thread that called
 * herd_run (for a child run under nohup's rules, say).
 */
#define HERD_PROC_KEEP_SIGNALS 1u

/*
 * Starts a child process in `scope` (NULL: the calling task's scope).
 * Returns 0 and the handle in *out; -EINVAL (bad options, a bad stdio
 * mode, argv missing, an unknown flag), -ENOENT (the program was not
 * found), -EACCES, -ENOEXEC and the other errors of execve (reported from
 * the child: no child is left running), -ENOMEM, -EAGAIN; -EMFILE (out of
 * descriptors, deadline HERD_NOWAIT; otherwise it waits up to the
 * deadline, see the budget); HERD_ECANCELED if `scope` or the calling
 * task's scope is canceled, before the call or while it waits for
 * descriptors: nothing is started then (a cancellation that comes while
 * the child is being cloned ends the new child at once); -EPERM (not
 * called from a task). As with herd_go, `scope` must stay open during the
 * call. Blocks only while waiting for descriptors; the calling worker is
 * held while the child execs (as with posix_spawn).
 */
HERD_API HERD_NODISCARD int herd_proc_start(herd_proc **out, herd_scope *scope,
			     const herd_proc_opts *opts, int64_t deadline);

/* The child's process id. Does not block. */
HERD_API int herd_proc_pid(const herd_proc *p);

/*
 * The parent's end of the child's stdin (0), stdout (1) or stderr (2) when
 * it is a pipe, else -1 (-EINVAL for a bad index). The end is non-blocking:
 * use herd_read and herd_write. It stays open until herd_proc_close_fd or
 * herd_proc_free. Does not block.
 */
HERD_API int herd_proc_fd(const herd_proc *p, int index);

/* Closes the parent's end of a pipe early (to send end of file to the
 * child's stdin). Returns 0, or -EINVAL if there is none. */
HERD_API int herd_proc_close_fd(herd_proc *p, int index);

/*
 * Exit statuses, as herd_proc_wait, herd_proc_kill and herd_proc_output
 * store them (never returned: the calls return 0 or a negative code): the
 * exit code, 0..255, or 256 + the number of the signal that killed the
 * process.
 */
#define HERD_PROC_EXITED(st) ((st) >= 0 && (st) < 256)  /* exited: status st */
#define HERD_PROC_SIGNALED(st) ((st) >= 256)            /* killed by a signal */
#define HERD_PROC_SIGNAL(st) ((st) - 256)               /* which */

/*
 * Waits until the process has exited. Returns 0 and stores its exit
 * status in *status (see HERD_PROC_*; status may be NULL), or a negative
 * code and stores nothing: HERD_ETIMEDOUT, HERD_ECANCELED (the process
 * runs on; it is ended with its scope), -EPERM (not a task), -EINVAL;
 * -ECHILD if the program reaped the child itself (waitpid(-1, ...), or
 * SIGCHLD set to SIG_IGN), so its status was lost. Can be called again,
 * and from several tasks. Blocks.
 *
 *	int st;
 *	if (herd_proc_wait(p, &st, deadline) == 0 && HERD_PROC_EXITED(st))
 *		printf("exit code %d\n", st);
 */
HERD_API HERD_NODISCARD int herd_proc_wait(herd_proc *p, int *status, int64_t deadline);

/*
 * A channel that is closed when the process has exited, for select: a
 * receive on it returns HERD_ECLOSED then. Do not send on it, close it or
 * free it. Does not block.
 */
HERD_API herd_chan *herd_proc_done(herd_proc *p);

/*
 * Sends signal sig to the process (not to its group). Returns 0, -EINVAL,
 * -ESRCH (it has exited). Does not block.
 */
HERD_API int herd_proc_signal(herd_proc *p, int sig);

/*
 * Sends signal sig to the process and to everything it started that herd
 * can reach: its process group and, where it has a cgroup, every process
 * in it (descendants that left the group with setsid included); SIGKILL to
 * a cgroup is cgroup.kill. For a command's own sequence of signals (say
 * TERM, a wait, TERM again, KILL), with herd_proc_wait between them.
 * Returns 0, -EINVAL, -ESRCH (it has exited: what it left in its group is
 * killed by herd then). Does not block.
 */
HERD_API int herd_proc_signal_all(herd_proc *p, int sig);

/*
 * Ends the process and its group now: SIGTERM, then SIGKILL once its grace
 * period has passed, and waits until it has exited. Returns 0 and stores
 * its exit status in *status as herd_proc_wait (status may be NULL; a
 * process that had exited already gives the status it exited with), or a
 * negative code and stores nothing: HERD_ETIMEDOUT (the deadline passed
 * first: the ending goes on, SIGKILL included), -ECHILD as herd_proc_wait,
 * -EPERM (not a task), -EINVAL. Not a cancellation point: a canceled task
 * can still end its processes.
 */
HERD_API int herd_proc_kill(herd_proc *p, int *status, int64_t deadline);

/*
 * Releases the handle and closes the parent's pipe ends. A process still
 * running is not affected: its scope still ends it. Tasks inside
 * herd_proc_wait or herd_proc_kill keep what they need until they return;
 * but while a task is blocked on herd_proc_done's channel (in a select),
 * returns -EBUSY and frees nothing. May be called after herd_run has
 * returned. Returns 0 or -EBUSY; NULL is accepted. Does not block.
 */
HERD_API int herd_proc_free(herd_proc *p);

/*
 * Go's cmd.Output() and cmd.CombinedOutput(): a command run to its end,
 * with what it wrote. herd_output_free frees it.
 */
typedef struct herd_output {
	char *out;          /* stdout (with HERD_OUTPUT_COMBINED: stdout and
			     * stderr as they came), malloc'd, out_len bytes
			     * (binary: NULs included) and a NUL after them */
	size_t out_len;
	char *err;          /* stderr, as out; NULL when it is not collected
			     * on its own (HERD_OUTPUT_COMBINED, or stdio[2]
			     * sent elsewhere) */
	size_t err_len;
	int status;         /* the exit status (HERD_PROC_*); -1 on error */
	unsigned truncated; /* HERD_OUTPUT_TRUNC_* */
} herd_output;

/* herd_proc_output's flags. */
#define HERD_OUTPUT_COMBINED 1u   /* stderr into out, as CombinedOutput */
/* herd_output.truncated: a stream went past the limit; the rest of it was
 * read and dropped. */
#define HERD_OUTPUT_TRUNC_OUT 1u
#define HERD_OUTPUT_TRUNC_ERR 2u

/*
 * Runs the command `opts` describes in `scope` (NULL: the calling task's),
 * as herd_proc_start, reads its stdout and stderr, each on its own pipe,
 * both at once (a child that fills one while the other is read never
 * blocks), and waits until it has exited. It returns only once the process
 * and its group (and, where it has one, its cgroup) are gone, whatever it
 * returns. Without a cgroup, a descendant that left the group and keeps a
 * pipe open holds the call until the deadline.
 *
 * What is kept: up to `limit` bytes of each stream (with
 * HERD_OUTPUT_COMBINED, of both together; SIZE_MAX: no limit but memory).
 * What comes past it is read and dropped, so that the child never blocks
 * on a full pipe, and res->truncated says which stream went past it.
 *
 * The child's stdio: stdout is collected (leave opts->stdio[1] zeroed).
 * stderr is collected into res->err when opts->stdio[2] is zeroed, into
 * res->out with HERD_OUTPUT_COMBINED; otherwise it goes where
 * opts->stdio[2] says (HERD_STDIO_NULL, or HERD_STDIO_FD: fd 2 for the
 * program's own stderr) and res->err is NULL. stdin is /dev/null when
 * opts->stdio[0] is zeroed, as in Go (HERD_STDIO_FD with fd 0 gives the
 * program's own).
 *
 * Returns 0 once the command has run to its end, whatever its exit status:
 * *res holds what it wrote and its status. Or a negative code, with *res
 * zeroed (status -1: neither HERD_PROC_EXITED nor HERD_PROC_SIGNALED) and
 * nothing to free:
 *   - the errors of herd_proc_start: -ENOENT (the program was not found),
 *     -EACCES, -ENOEXEC, -EMFILE, ...: nothing ran;
 *   - HERD_ETIMEDOUT: the deadline passed first; the process was ended as
 *     herd_proc_kill ends it (SIGTERM, SIGKILL once opts->grace has
 *     passed, so the call may return up to the grace after the deadline),
 *     and what it wrote is dropped;
 *   - HERD_ECANCELED: the calling task's scope, or `scope`, was canceled;
 *     the process was ended in the same way;
 *   - -ENOMEM; -ECHILD as herd_proc_wait; -EPERM (not a task);
 *   - -EINVAL: res or opts is NULL, limit is 0, an unknown flag,
 *     opts->stdio[1] set, opts->stdio[2] a pipe (or set, with
 *     HERD_OUTPUT_COMBINED), stdin a pipe (nothing could write it), or
 *     options that herd_proc_start refuses.
 * The deadline covers the whole run. Blocks (a cancellation point). As
 * with herd_go, `scope` must stay open during the call.
 *
 *	char *argv[] = {"ls", "-l", NULL};
 *	herd_proc_opts o = {.argv = argv};
 *	herd_output r;
 *	int rc = herd_proc_output(&r, NULL, &o, 1 << 20, 0, herd_deadline(10 * HERD_SEC));
 *	if (rc == 0 && r.status == 0)
 *		fwrite(r.out, 1, r.out_len, stdout);
 *	herd_output_free(&r);
 */
HERD_API HERD_NODISCARD int herd_proc_output(herd_output *res, herd_scope *scope,
					     const herd_proc_opts *opts, size_t limit,
					     unsigned flags, int64_t deadline);

/* Frees what herd_proc_output collected and zeroes *res (status -1).
 * NULL, and a result already freed, are accepted. Does not block. */
HERD_API void herd_output_free(herd_output *res);

/* ------------------------------------------------------------------------ */
/* Signals and the end of the program                                       */
/* ------------------------------------------------------------------------ */

/*
 * Nothing herd started outlives the program, however it is stopped:
 *   - Ctrl-C, SIGTERM, SIGHUP. When herd_run starts, each of SIGINT,
 *     SIGTERM and SIGHUP whose action is the default (and that the thread
 *     calling herd_run does not block) is taken by herd. The first to
 *     arrive cancels the root scope (blocking calls return HERD_ECANCELED
 *     and nothing new starts), ends every child process and all it started
 *     (SIGTERM, the grace period, SIGKILL), removes herd's cgroups, and
 *     then the process dies of that signal, as it would have without herd
 *     (a shell sees the status 128 + the signal). A second one meanwhile
 *     kills the processes at once. A program that installed its own
 *     handler, or that ignores or blocks the signal, keeps its choice; one
 *     that wants Ctrl-C to cancel its work instead uses herd_signal_notify.
 *   - exit(), from a task or from any thread while herd_run runs: an atexit
 *     handler ends the process trees in the same way and removes herd's
 *     cgroups before the process exits. A task that this end cancels (or
 *     any other thread) may call exit() too: that call waits, and the
 *     first caller's status is the process's, with every C library (as
 *     glibc 2.41 and musl 1.2.5 do it). _exit() and crashes skip it: the
 *     children then get SIGKILL (their parent-death signal), and the next
 *     herd process that starts children in the same cgroup removes what a
 *     dead one left there.
 *   - SIGPIPE never ends the process because of a write made by a task or
 *     a herd_blocking function: herd_write (and write) return -EPIPE, as in
 *     Go. When its action is the default, herd takes SIGPIPE too: one
 *     raised by another thread of the program ends it as SIGINT would.
 * The workers keep the signal mask of the thread that called herd_run, and
 * the kernel gives the process's signals to its main thread when that
 * thread can take them: when herd_run was called by the main thread,
 * handlers, the program's own included, run there, not in a task.
 */

/*
 * Go's signal.Notify: from now on, each arrival of signal `sig` is sent on
 * `ch` as an int (the signal's number), without blocking: an arrival that
 * finds ch full is dropped, so give ch a buffer (capacity 1 is enough for
 * one kind of signal). A signal may go to several channels, and a channel
 * may take several signals (one call each). A signal herd takes (SIGINT,
 * SIGTERM, SIGHUP, see above) no longer ends the program while it has a
 * channel. Registrations end with herd_signal_stop or with the runtime.
 * Returns 0 (also if ch already takes sig); -EINVAL if ch is NULL, its
 * element size is not sizeof(int), or sig cannot be caught or reports a
 * fault (SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
 * SIGSYS, the C library's own, or out of range); -ESRCH if no runtime
 * runs; -ENOMEM; -errno from sigaction. Callable from any thread. Does not
 * block. Do not free ch before herd_signal_stop(ch) has returned.
 */
HERD_API int herd_signal_notify(herd_chan *ch, int sig);

/*
 * Go's signal.Stop: once it returns, nothing more is sent on ch. A signal
 * left without a channel gets back the action it had before (for one herd
 * takes: ending the program, as above). Returns 0, also if ch had no
 * signal; -EINVAL if ch is NULL; -ESRCH if no runtime runs. Callable from
 * any thread. Does not block.
 */
HERD_API int herd_signal_stop(herd_chan *ch);

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

/* How task stacks are guarded against overflow (herd_stats.stack_guard). */
enum {
	/* Guard pages installed with MADV_GUARD_INSTALL (Linux 6.13+): every
	 * stack has one, and they cost no memory mapping. */
	HERD_GUARD_MADVISE = 1,
	/* PROT_NONE guard pages, one mapping each: only the first stacks get
	 * one (see docs/design.md), the others a canary checked at each switch. */
	HERD_GUARD_MPROTECT = 2,
	/* No guard pages; a canary checked at each switch (HERD_GUARD=canary). */
	HERD_GUARD_CANARY = 3,
};

typedef struct herd_stats {
	uint64_t tasks;         /* tasks alive: spawned and not yet ended,
				 * the first task included */
	uint64_t tasks_parked;  /* tasks blocked in any herd call that parks
				 * (waits, herd_sleep, herd_scope_close) */
	uint64_t tasks_spawned; /* tasks spawned since herd_run started */
	uint64_t stacks;        /* task stacks made: in use or kept for reuse */
	uint64_t stacks_guarded;/* of those, how many have a guard page */
	size_t stack_size;      /* usable bytes of each stack */
	unsigned workers;       /* worker threads */
	int stack_guard;        /* HERD_GUARD_* */
	int debug;              /* 1 if debug checks are on */
	uint64_t seed;          /* of select's choices (see herd_select) */
} herd_stats;

/*
 * Fills *out with figures of the running runtime. The counters are read
 * without stopping the workers, so each may be a moment old.
 * Returns 0, -EINVAL (out is NULL) or -ESRCH (no runtime is running).
 * Callable from any thread. Does not block.
 */
HERD_API int herd_stats_get(herd_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* HERD_H */
