/*
 * proc.h - the process layer: child processes bound to scopes (start,
 * reap, end), their cgroups, and the orphans the runtime reaps. A scope
 * reaches it through the hooks herd__proc_once installs (herd__scope_hooks).
 */
#ifndef HERD_PROC_H
#define HERD_PROC_H

#include "io/io.h"
#include "sync/sync.h"

#include <sys/resource.h>

#define HERD__CG_POOL 64 /* empty child cgroups kept for reuse */
#define HERD__PROC_GRACE (2 * HERD_SEC) /* SIGTERM to SIGKILL, by default */
/* Sweeps at the end of a scope, at most, each after the strays the
 * previous one killed may have orphaned theirs. */
#define HERD__SWEEP_PASSES 8
/* How often a closing scope looks at its processes. */
#define HERD__END_POLL_NS (1 * HERD_MSEC)



/* What a start hands the child (start.c to spawn-linux.c). */
struct herd__child_args {
	const char *path;
	char *const *argv;
	char *const *envp;
	const char *dir;
	int src[3];             /* what goes to 0, 1, 2; -1: inherited */
	int cg_procs;           /* cgroup.procs to join, or -1 */
	struct rlimit nofile;   /* given back to the child */
	bool set_nofile;
	uint64_t mask;          /* the signal mask to exec with */
	bool keep_signals;      /* keep ignored signals (and that mask) */
	pid_t ppid;
	volatile int err;       /* the child's errno if it failed */
	volatile int shared;    /* set by the child: it shares our memory */
	int err_fd;             /* or it writes err here (see spawn), or -1 */
};

/* herd__proc_spawn's code for a child that ran out of descriptors
 * itself. */
#define HERD__CHILD_EMFILE (-EMFILE - 4096)

/* The layer's state, one per runtime (rt->proc). */
struct herd__proc_rt {
	alignas(HERD__CACHELINE) herd__mutex lock; /* draining; once */
	struct herd_proc *draining;
	herd__list live;          /* started, not finished (herd_proc.lv) */
	_Atomic bool ready;       /* herd__proc_once has run */
	pid_t pid;                /* ours, set before `ready` */
	_Atomic long nterm;       /* sent SIGTERM, SIGKILL pending */
	_Atomic int null_fd;      /* /dev/null, or -1 */
	_Atomic bool no_clone_pidfd;
	int cg_base;              /* cgroup directory, or -1 */
	_Atomic uint64_t cg_seq;
	_Atomic bool no_clone3, no_into_cgroup;
	_Atomic bool strays;      /* a sweep may find some */
	_Atomic bool vm_shared;   /* a vfork child shared our memory */
	herd__mutex cg_lock;      /* the pool and the hot cgroup */
	uint64_t cg_pool[HERD__CG_POOL]; /* empty cgroups, by number */
	size_t cg_npool;
	uint64_t cg_hot;          /* the cgroup whose descriptors stay open, or 0 */
	int cg_hot_dir, cg_hot_procs; /* its directory and cgroup.procs (cgroup.c) */
	/* Orphans (orphan.c), the supervisor's. */
	struct {
		bool leader;              /* herd_run runs on the group leader */
		pid_t *keep;              /* its children from before the run */
		size_t nkeep;
	} orphan;
};

/* A child's cgroup (cgroup.c); unused where there is none. */
typedef struct herd__cgroup {
	herd__rt *rt;
	bool used;
	bool empty;             /* nothing lived in it when its child exited */
	bool hot;               /* it is rt->proc->cg_hot: its descriptors stay open */
	int dir_fd;             /* the directory, until the child started */
	int procs_fd;           /* its cgroup.procs, if the child joins itself */
	int read_fd;            /* the hot cgroup's cgroup.procs, for reading, or -1 */
	char name[48];
	uint64_t seq;           /* the n of its name, herd-<pid>-<n> */
	pid_t *pids;            /* recorded before a kill, reaped after */
	size_t npids, cap;
} herd__cgroup;

/* A child process handle (proc.c has its protocol). */
/* Bytes of a process's command line kept for the task dump. */
#define HERD__PROC_CMD 96

struct herd_proc {
	herd__rt *rt;
	uint64_t serial;        /* rt->serial: the runtime still exists */
	herd_scope *scope;
	herd__link sc;                        /* the scope's list */
	struct herd_proc *dr_next;            /* rt->proc->draining */
	herd__link lv;                        /* rt->proc->live */
	_Atomic int refs;       /* the handle, and the scope's until finished */
	pid_t pid;              /* also the process group's id */
	int pidfd;
	int fds[3];             /* the parent's pipe ends, or -1 */
	int64_t grace;
	herd__cgroup cg;
	herd__pollw exit_w;
	herd_chan *done;
	herd__mutex lock;
	herd__waitq waiters;    /* tasks in herd_proc_wait */
	bool reaping, termed, killed;
	int64_t term_at;
	_Atomic bool exited;    /* status is set (release) */
	int status;
	_Atomic bool finished;  /* gone, group and cgroup too (release) */
	int64_t started;        /* herd_now() at the start, for the dump */
	char cmd[HERD__PROC_CMD]; /* its command line, cut short, for the dump */
};

void herd__cgroup_init(herd__rt *rt);
void herd__cgroup_fini(herd__rt *rt);
/* Kills what runs in the directories of herd processes that no longer
 * exist, under the cgroup directory base, and removes them (cgroup-stale.c). */
void herd__cgroup_remove_stale(int base);
/* Removes the pooled empty cgroups. */
void herd__cgroup_pool_clear(herd__rt *rt);
/* Makes a cgroup for a new child: 1, or 0 with none (cg->used false). */
int herd__cgroup_make(herd__rt *rt, herd__cgroup *cg);
/* Its cgroup.procs, opened on first use (for clone without
 * CLONE_INTO_CGROUP); -1 if it cannot be. */
int herd__cgroup_procs_fd(herd__cgroup *cg);
/* The child could not be started in it: it is removed, unused. */
void herd__cgroup_abandon(herd__cgroup *cg);
/* The child has joined it (or failed): closes the descriptors. */
void herd__cgroup_started(herd__cgroup *cg);
/* Kills everything in it. */
void herd__cgroup_kill(herd__cgroup *cg);
/* Sends sig to everything in it but the members of process group pgid,
 * which the caller signalled (SIGKILL: herd__cgroup_kill, to all). */
void herd__cgroup_signal(herd__cgroup *cg, int sig, pid_t pgid);
/* Removes it if empty (reaping what came back to us): true when gone. */
bool herd__cgroup_remove(herd__cgroup *cg);

/* Sets the runtime up for children, once: subreaper, cgroups. */
void herd__proc_once(herd__rt *rt);
/* Ends the root scope's processes at the end of herd_run, calling
 * `between(rt, now)` while it waits for them (the run layer hands on the
 * signals that arrive meanwhile). */
void herd__proc_fini(herd__rt *rt, void (*between)(herd__rt *rt, int64_t now));
/* Ending every process tree, from any thread, without parking: end_all
 * sends SIGTERM (SIGKILL if now) to every tree not ended yet; end_step
 * sends SIGKILL to those whose grace has passed (all, if kill), handles
 * the exits and drains, and returns true while a process is left;
 * end_cleanup then kills strays and removes herd's empty cgroups. */
void herd__proc_end_all(herd__rt *rt, bool now);
bool herd__proc_end_step(herd__rt *rt, bool kill);
void herd__proc_end_cleanup(herd__rt *rt);
/* For a worker whose loop has ended (no task runs any more): true when no
 * process herd started is left to end, and then its empty cgroups are
 * removed. */
bool herd__proc_worker_end(herd__rt *rt);
void herd__proc_exited(herd_proc *p);
void herd__proc_watch_thread(herd_proc *p);
/* Kills and reaps our children that are in a herd child's cgroup but are
 * not that child: descendants that left their group and were orphaned to
 * us. Returns how many; 0 without cgroups. */
int herd__proc_sweep(herd__rt *rt);
/* SIGKILL to the groups whose grace since SIGTERM has passed. */
void herd__proc_escalate_all(herd__rt *rt);
/* Retries the groups not yet gone. */
void herd__proc_drain_all(herd__rt *rt);
/* SIGTERM to a canceled scope's processes (its lock held). */
void herd__proc_cancel_locked(herd__list *procs);
/* Ends a closing scope's processes; returns once none is left. */
void herd__proc_scope_end(herd__worker **wp, herd_scope *s);

/* herd__proc_start's `how`: the child's stderr is its stdout's pipe, as
 * 2>&1 (herd_proc_output's HERD_OUTPUT_COMBINED; stdio[1] a pipe, stdio[2]
 * inherited). */
#define HERD__START_ERR_TO_OUT 1u
/* herd_proc_start, with `how`. */
int herd__proc_start(herd_proc **out, herd_scope *scope, const herd_proc_opts *o,
		     unsigned how, int64_t deadline);

/* Shared by the layer's files (the handle's helpers: proc.c; exits:
 * reap.c; ending: end.c; the clone: spawn-linux.c). */
/* Runs the clone. Returns the child's pid, with its pidfd in *pidfd, or a
 * negative code (the child's exec error, after reaping it). */
int herd__proc_spawn(herd__worker *w, struct herd__child_args *a, herd__cgroup *cg, int *pidfd);
/* Sends sig to p's group unless its leader may have been reaped; p->lock
 * held. */
void herd__proc_group_signal_locked(herd_proc *p, int sig);
/* The poller's callback for a child's pidfd: it has exited. */
void herd__proc_on_exit_event(herd__pollw *w, uint32_t ready);
/* SIGTERM to p's group, once; p->lock held. */
void herd__proc_term_locked(herd_proc *p, int64_t now);
/* SIGKILL once the grace period since SIGTERM has passed; p->lock held. */
void herd__proc_escalate_locked(herd_proc *p, int64_t now);
/* Sleeps firmly (not a cancellation point) until `until`. */
void herd__proc_nap(herd__worker **wp, int64_t until);
/* Drops a reference; the last frees the handle. */
void herd__proc_unref(herd_proc *p);
/* The runtime's list of processes started (or being started) and not
 * finished, which the sweep reads. */
void herd__proc_live_add(herd_proc *p);
void herd__proc_live_remove(herd_proc *p);
/* The scope's list of its processes (under the scope's lock). */
void herd__proc_scope_add(herd_scope *s, herd_proc *p);
void herd__proc_scope_remove(herd_scope *s, herd_proc *p);

/* Orphans (orphan.c), from the supervisor's thread: init remembers its
 * children, reap reaps the exited ones it gained since; how many. */
void herd__orphans_init(herd__rt *rt);
void herd__orphans_fini(herd__rt *rt);
int herd__orphans_reap(herd__rt *rt);

#endif /* HERD_PROC_H */
