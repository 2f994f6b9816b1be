/*
 * start.c - herd_proc_start: resolving the program, making its stdio, and
 * registering the new process with its scope, the runtime and the poller
 * (see proc.c for the whole protocol; the clone is in spawn-linux.c).
 */
#define _GNU_SOURCE 1
#include "proc/proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Starting                                                           */
/* ------------------------------------------------------------------ */

/* The program's path, as execvp finds it: 0, -ENOENT, -EACCES or
 * -ENAMETOOLONG. */
static int resolve(const char *file, char *buf, size_t size, const char **path)
{
	if (strchr(file, '/')) {
		*path = file;
		return 0;
	}
	if (!*file)
		return -ENOENT;
	const char *dirs = getenv("PATH");
	if (!dirs)
		dirs = "/usr/local/bin:/bin:/usr/bin";
	size_t flen = strlen(file);
	int err = -ENOENT;
	for (const char *d = dirs;; d++) {
		const char *end = strchrnul(d, ':');
		size_t dlen = (size_t)(end - d);
		if (dlen + 1 + flen + 1 <= size) {
			if (dlen) {
				memcpy(buf, d, dlen);
				buf[dlen] = '/';
				memcpy(buf + dlen + 1, file, flen + 1);
			} else {
				memcpy(buf, file, flen + 1); /* empty: "." */
			}
			struct stat st;
			if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(buf, X_OK) == 0) {
					*path = buf;
					return 0;
				}
				err = -EACCES;
			}
		} else if (err == -ENOENT) {
			err = -ENAMETOOLONG;
		}
		if (!*end)
			return err;
		d = end;
	}
}

/* Makes a descriptor with `make` (which returns it or -1 with errno):
 * the descriptor, or -errno. */
static int make_fd(int (*make)(void *), void *arg)
{
	int fd;
	while ((fd = make(arg)) < 0 && errno == EINTR)
		;
	return fd < 0 ? -errno : fd;
}

static int make_pipe(void *arg)
{
	return pipe2(arg, O_CLOEXEC);
}

static int open_null(void *arg)
{
	(void)arg;
	return open("/dev/null", O_RDWR | O_CLOEXEC);
}

/* /dev/null, opened once per runtime. */
static int null_fd(herd__rt *rt)
{
	int fd = atomic_load_explicit(&rt->proc->null_fd, mo_acquire);
	if (fd >= 0)
		return fd;
	if ((fd = make_fd(open_null, NULL)) < 0)
		return fd;
	int none = -1;
	if (!atomic_compare_exchange_strong(&rt->proc->null_fd, &none, fd)) {
		close(fd);
		return none;
	}
	herd__fd_track(rt, fd);
	return fd;
}

/* The descriptors of a start: what the child gets, what the parent keeps. */
struct stdio_set {
	int child[3];   /* for the child's 0..2; -1: inherited */
	int close[3];   /* child ends the parent closes after the start */
	int parent[3];  /* the parent's pipe ends */
};

/* Closes the child's ends (and the parent's, if parent_too); `quiet` when
 * a start gives back what it took because it is short of descriptors, so
 * that no waiter is woken for them (io/fd-budget.c). */
static void stdio_release(herd__rt *rt, struct stdio_set *io, bool parent_too, bool quiet)
{
	int (*close_fn)(herd__rt *, int) = quiet ? herd__fd_close_quiet : herd__fd_close;
	for (int i = 0; i < 3; i++) {
		if (io->close[i] >= 0)
			close_fn(rt, io->close[i]);
		if (parent_too && io->parent[i] >= 0)
			close_fn(rt, io->parent[i]);
		io->close[i] = -1;
	}
}

static bool short_of_fds(int rc)
{
	return rc == -EMFILE || rc == -ENFILE;
}

static int stdio_make(herd__rt *rt, const herd_proc_opts *o, unsigned how,
		      struct stdio_set *io)
{
	for (int i = 0; i < 3; i++)
		io->child[i] = io->close[i] = io->parent[i] = -1;
	for (int i = 0; i < 3; i++) {
		const herd_stdio *s = &o->stdio[i];
		int p[2], rc;
		if (i == 2 && (how & HERD__START_ERR_TO_OUT)) {
			io->child[2] = io->child[1]; /* closed once, as stdout's */
			continue;
		}
		switch (s->mode) {
		case HERD_STDIO_INHERIT:
			break;
		case HERD_STDIO_NULL:
			if ((rc = null_fd(rt)) < 0)
				goto fail;
			io->child[i] = rc;
			break;
		case HERD_STDIO_FD:
			io->child[i] = s->fd;
			break;
		case HERD_STDIO_PIPE:
			if ((rc = make_fd(make_pipe, p)) < 0)
				goto fail;
			herd__fd_track(rt, p[0]);
			herd__fd_track(rt, p[1]);
			/* The child's end stays blocking, as programs expect. */
			io->child[i] = io->close[i] = p[i == 0 ? 0 : 1];
			io->parent[i] = p[i == 0 ? 1 : 0];
			fcntl(io->parent[i], F_SETFL, O_NONBLOCK);
			break;
		}
		continue;
fail:
		stdio_release(rt, io, true, short_of_fds(rc));
		return rc;
	}
	return 0;
}

static int check_opts(const herd_proc_opts *o)
{
	if (!o || !o->argv || !o->argv[0] || (o->flags & ~HERD_PROC_KEEP_SIGNALS))
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		int m = o->stdio[i].mode;
		if (m < HERD_STDIO_INHERIT || m > HERD_STDIO_FD ||
		    (m == HERD_STDIO_FD && o->stdio[i].fd < 0))
			return -EINVAL;
	}
	return 0;
}

/* The public start, with none of the layer's own ways (`how`). */
/* The command line, words separated by spaces, cut short with "...". */
static void cmd_copy(char *dst, char *const *argv)
{
	size_t n = 0;
	dst[0] = 0;
	for (size_t i = 0; argv[i]; i++) {
		int k = snprintf(dst + n, HERD__PROC_CMD - n, "%s%s", i ? " " : "", argv[i]);
		if (k < 0 || (size_t)k >= HERD__PROC_CMD - n) {
			memcpy(dst + HERD__PROC_CMD - 4, "...", 4);
			return;
		}
		n += (size_t)k;
	}
}

int herd_proc_start(herd_proc **out, herd_scope *scope, const herd_proc_opts *o,
		    int64_t deadline)
{
	int rc = herd__proc_start(out, scope, o, 0, deadline);
	if (rc == 0)
		HERD__LEAK_MADE(HERD__LEAK_PROCESS, *out, (*out)->pid, 0);
	return rc;
}

int herd__proc_start(herd_proc **out, herd_scope *scope, const herd_proc_opts *o,
		     unsigned how, int64_t deadline)
{
	herd__worker *w;
	herd__task *t;
	int rc;
	if (!out || (rc = check_opts(o)))
		return out ? rc : -EINVAL;
	if (herd__current(&w, &t))
		return -EPERM;
	herd__rt *rt = w->rt;
	if (!scope)
		scope = t->scope;
	if (herd__scope_canceled(scope))
		return HERD_ECANCELED;

	char buf[PATH_MAX];
	struct herd__child_args a = {.dir = o->dir, .argv = o->argv, .cg_procs = -1,
			       .keep_signals = o->flags & HERD_PROC_KEEP_SIGNALS};
	a.envp = o->envp ? o->envp : environ;
	if ((rc = resolve(o->file ? o->file : o->argv[0], buf, sizeof buf, &a.path)))
		return rc;
	herd_proc *p = calloc(1, sizeof *p);
	if (p)
		herd__mutex_init(&p->lock, HERD__RANK_PROC);
	if (!p)
		return -ENOMEM;
	if ((rc = herd_chan_make(&p->done, 0, 0))) {
		free(p);
		return rc;
	}
	HERD__LEAK_FREED(p->done); /* the handle's, not the program's */
	p->rt = rt;
	p->serial = rt->serial;
	cmd_copy(p->cmd, o->argv);
	p->grace = o->grace ? o->grace : HERD__PROC_GRACE;
	p->pidfd = -1;
	herd__proc_once(rt);

	if (rt->io->fd.raised) {
		a.set_nofile = true;
		getrlimit(RLIMIT_NOFILE, &a.nofile);
		a.nofile.rlim_cur = (rlim_t)rt->io->fd.limit_at_start;
	}
	/* Out of descriptors at any step, everything this start holds is
	 * released before it waits: starts that each held some while waiting
	 * for more could wait for each other for ever. Nothing is started in
	 * a canceled scope: the check comes again after each wait, and the
	 * wait ends when the scope is canceled (wait_scope), not only the
	 * task's own. A cancel that comes during the clone itself finds the
	 * new process in the scope's list (scope_add), which ends it. */
	herd__fdwait fw;
	herd__fd_attempt(&fw);
	struct stdio_set io;
	for (;;) {
		if (herd__scope_canceled(scope) || herd__scope_canceled(t->scope)) {
			rc = HERD_ECANCELED;
			goto fail;
		}
		if ((rc = stdio_make(rt, o, how, &io)) == 0) {
			herd__cgroup_make(rt, &p->cg);
			memcpy(a.src, io.child, sizeof a.src);
			if (herd__scope_canceled(scope)) {
				rc = HERD_ECANCELED; /* while it made the descriptors */
			} else {
				herd__proc_live_add(p); /* pid 0: the sweep spares its cgroup */
				rc = herd__proc_spawn(w, &a, &p->cg, &p->pidfd);
				herd__cgroup_started(&p->cg);
				if (rc >= 0)
					break;
				herd__proc_live_remove(p);
			}
			/* Nothing runs in it: the clone failed, or its child was
			 * reaped before it could exec. Back to the pool. */
			p->cg.empty = true;
			herd__cgroup_remove(&p->cg);
			stdio_release(rt, &io, true, short_of_fds(rc));
		}
		if (rc == HERD__CHILD_EMFILE) {
			rc = -EMFILE; /* from the child: no waiting helps */
			goto fail;
		}
		if (!short_of_fds(rc))
			goto fail;
		if (scope != t->scope)
			herd__wait_scope_set(t, scope);
		rc = herd__fd_retry(&fw, -rc, deadline);
		if (scope != t->scope)
			herd__wait_scope_set(t, NULL);
		if (rc)
			goto fail;
	}
	herd__mutex_lock(&rt->proc->lock);
	p->pid = rc;
	p->started = herd_now();
	herd__mutex_unlock(&rt->proc->lock);
	stdio_release(rt, &io, false, false);
	memcpy(p->fds, io.parent, sizeof p->fds);
	if (p->pidfd >= 0)
		herd__fd_track(rt, p->pidfd);
	atomic_init(&p->refs, 2);
	p->scope = scope;
	herd__proc_scope_add(scope, p);

	p->exit_w.cb = herd__proc_on_exit_event;
	p->exit_w.events = HERD_READABLE;
	rc = p->pidfd >= 0 ? herd__poll_attach(rt, p->pidfd, &p->exit_w) : -ENOSYS;
	if (rc)
		herd__proc_watch_thread(p); /* no pidfd: a thread waits */
	*out = p;
	return 0;

fail:
	herd_chan_free(p->done);
	free(p);
	return rc;
}

