/*
 * run.h - the top layer: herd_run, its supervisor (the monitor, signals,
 * the end of the run) and exit().
 */
#ifndef HERD_RUN_H
#define HERD_RUN_H

#include "proc/proc.h"

/* The layer's state, one per runtime (rt->run). */
struct herd__run_rt {
	int64_t last_sweep, last_orphans; /* the supervisor's chores */
	/* Signals (signal.c). */
	struct {
		herd__mutex lock;         /* all but fatal (and signal.c's
					   * saved actions) */
		struct herd__sigreg *regs; /* herd_signal_notify's */
		size_t nregs, cap;
		uint64_t taken;           /* bit sig-1: default action taken */
		uint64_t installed;       /* herd's handler is installed */
		_Atomic int fatal;        /* the signal ending the run, or 0 */
		bool killing;             /* a second one: SIGKILL at once */
		int64_t kill_at;
		bool dump_on_quit;        /* HERD_RUN_SIGQUIT_DUMP */
		bool dumping;             /* herd's handler dumps on SIGQUIT */
	} sig;
	/* The deadlock check (deadlock.c), the supervisor's. */
	bool no_deadlock_check;           /* HERD_RUN_NO_DEADLOCK_CHECK */
	struct herd__deadlock {
		unsigned rounds;          /* looks that found all asleep */
		int64_t since;            /* the first of them */
		uint64_t activity;        /* what had moved then */
		bool found;               /* reported, the root canceled */
	} deadlock;
	/* HERD_TRACE's file (trace-json.c), or NULL. */
	struct herd__trace_out *trace_out;
};

/* The supervisor (monitor.c): runs on herd_run's thread until the run
 * ends. */
void herd__supervise(herd__rt *rt);
/* Writes the task dump to fd, after headline if not NULL, marking self (a
 * task, or NULL) as its caller; 0, -ENOMEM or the write's -errno
 * (dump.c). */
int herd__dump_write(herd__rt *rt, int fd, const char *headline,
		     const herd__task *self);
/* Tasks alive (spawned, not ended), summed from the workers' counters
 * without stopping them: each a moment old (runtime.c). */
int64_t herd__tasks_alive(herd__rt *rt);
/* One look for a deadlock, on each round of the supervisor (deadlock.c). */
void herd__deadlock_check(herd__rt *rt, int64_t now);
/* The name of a wait's reason, HERD__WHY_* (dump.c). */
const char *herd__why_name(unsigned why);
/* HERD_TRACE (trace-json.c): starts the recorder and the file at path (0,
 * -ENOMEM or open's -errno); the supervisor writes out what was recorded
 * at each round; herd_run writes the rest and closes the file once the
 * workers have stopped. */
int herd__trace_start(herd__rt *rt, const char *path);
void herd__trace_flush(herd__rt *rt);
void herd__trace_end(herd__rt *rt);
/* Signals and exit() (signal.c). */
void herd__signal_start(herd__rt *rt);
/* Restores the actions; returns a taken signal that arrived too late to
 * be dispatched (the caller dies of it), else 0. */
int herd__signal_fini(herd__rt *rt);
/* Hands the signals that arrived on, and runs a fatal one's end: ends the
 * process with the signal once the trees are gone. Supervisor only. */
void herd__signal_dispatch(herd__rt *rt, int64_t now);
/* Whether a fatal signal is ending the run. */
bool herd__signal_ending(herd__rt *rt);
HERD__NORETURN void herd__signal_die(int sig);
/* Registers the atexit handler, enough times for a run of that many
 * workers; the lock herd_run holds while it takes a runtime down. */
void herd__exit_watch(unsigned workers);
void herd__exit_lock(void);
void herd__exit_unlock(void);

#endif /* HERD_RUN_H */
