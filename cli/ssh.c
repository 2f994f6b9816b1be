/*
 * ssh.c - an ssh host: its shared connection, what it has, and the ssh
 * client command that runs one job there.
 *
 * Connection reuse. Each host gets a control master (ssh -M -N) started in
 * the hosts' scope, its socket in a private directory (mode 0700, made at
 * the start, removed at the end, or by the next herd if this one is
 * killed with SIGKILL); a job's ssh goes through it (-S PATH), so
 * that a job costs a channel, not a login. OpenSSH's MaxSessions (10 by
 * default) bounds the channels of one connection: a host's slots past
 * MUX_SLOTS connect on their own. Where the master cannot start, every
 * job connects on its own.
 *
 * The probe, once per host through the master: the remote's CPUs (nproc,
 * as GNU parallel asks), whether `herd` runs there (and where), and
 * whether perl does.
 *
 * Nothing strays. Where herd is installed, a job runs as `herd --guard --
 * CMD` (guard.c): its whole tree in a scope, ended when the connection
 * drops or the local ssh is ended (its stdout's reader goes away). Where it
 * is not, a small perl program (GNU parallel's way) runs it in a session
 * of its own (setsid) and kills that process group when its stdout's
 * reader goes away; the host says so once. Without perl either, the job
 * runs plainly, and the host says that its trees may outlive a cut.
 *
 * --sshdelay: every ssh client herd starts (a master, a probe, a job's,
 * rsync's) waits its turn, the turns --sshdelay apart; pace_lock protects
 * the next turn's time.
 *
 * Quoting. ssh hands the remote shell one string: the job's command (its
 * shell form, or its argv) goes into it quoted as GNU parallel quotes
 * (single quotes), so every byte 1-255 of an item arrives intact.
 */
#define _GNU_SOURCE
#include "ssh.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A host's slots that share its connection (MaxSessions is 10 by default:
 * the probe's and a spare's channels besides). */
#define MUX_SLOTS 8

struct ssh_ctx {
	const struct opts *o;
	char dir[80];          /* the control sockets' directory, or "" */
	char **words;          /* the default ssh command (--ssh) */
	pthread_mutex_t pace_lock; /* protects pace_next */
	int64_t pace_next;     /* --sshdelay: the next ssh may start then */
};

struct ssh_host {
	struct ssh_ctx *ctx;
	char *name;
	char **words;          /* its ssh command */
	char *ctl;             /* the master's socket, or NULL: no master */
	herd_proc *master;
	long cpus;
	char *herd;            /* herd's path there, or NULL */
	bool perl, rsync;
};

/* ------------------------------------------------------------------ */
/* The ssh command's words                                            */
/* ------------------------------------------------------------------ */

static bool plain_command(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(" \t-_./:=,@%+~", *s)))
			return false;
	return true;
}

/* The words of a command: split at blanks when it has no shell syntax,
 * else run by /bin/sh with the arguments after it ("$@"). */
static char **command_words(const char *cmd)
{
	char **w = xmalloc(5 * sizeof *w);
	size_t n = 0;
	if (!plain_command(cmd)) {
		w[0] = xstrdup("/bin/sh");
		w[1] = xstrdup("-c");
		if (asprintf(&w[2], "%s \"$@\"", cmd) < 0)
			cli_die("out of memory");
		w[3] = xstrdup("ssh");
		w[4] = NULL;
		return w;
	}
	char *copy = xstrdup(cmd), *save = NULL;
	for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		w = xrealloc(w, (n + 2) * sizeof *w);
		w[n++] = xstrdup(t);
	}
	free(copy);
	w[n] = NULL;
	if (!n)
		cli_usage_error("--ssh: expected a command");
	return w;
}

static void free_words(char **w)
{
	for (size_t i = 0; w && w[i]; i++)
		free(w[i]);
	free(w);
}

/* An argv being built. */
struct av {
	char **v;
	size_t n;
};

static void av_add(struct av *a, const char *s)
{
	a->v = xrealloc(a->v, (a->n + 2) * sizeof *a->v);
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
}

/* The ssh command for h, with its options: through the master (ctl), or
 * on its own. */
static void av_ssh(struct av *a, const struct ssh_host *h, const char *ctl)
{
	for (size_t i = 0; h->words[i]; i++)
		av_add(a, h->words[i]);
	av_add(a, "-T");
	if (ctl) {
		av_add(a, "-o");
		av_add(a, "ControlMaster=no");
		av_add(a, "-S");
		av_add(a, ctl);
	} else {
		av_add(a, "-S");
		av_add(a, "none");
	}
	av_add(a, "--");
	av_add(a, h->name);
}

/* ------------------------------------------------------------------ */
/* The context: the control directory                                 */
/* ------------------------------------------------------------------ */

/* Empties and removes directory name in tmp (its sockets, at most). */
static void remove_dir(int tmp, const char *name)
{
	int fd = openat(tmp, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	unlinkat(tmp, name, AT_REMOVEDIR);
}

/*
 * A herd killed with SIGKILL cannot remove its control directory: the
 * next herd that uses ssh removes those, in the same TMPDIR, of herd
 * processes that are gone (their pid is in the name; only directories of
 * this user's). A pid that now names another process keeps its directory,
 * which is harmless and goes when that process has gone too.
 */
static void sweep_stale(const char *tmp)
{
	DIR *d = opendir(tmp);
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d));) {
		int pid;
		char rest[16];
		struct stat st;
		if (sscanf(e->d_name, "herd-ssh-%d-%15s", &pid, rest) != 2 || pid <= 0 ||
		    strlen(rest) != 6 || pid == (int)getpid())
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
			continue;
		if (kill(pid, 0) < 0 && errno == ESRCH)
			remove_dir(dirfd(d), e->d_name);
	}
	closedir(d);
}

struct ssh_ctx *ssh_begin(const struct opts *o)
{
	struct ssh_ctx *c = calloc(1, sizeof *c);
	if (!c)
		cli_die("out of memory");
	c->o = o;
	pthread_mutex_init(&c->pace_lock, NULL);
	c->words = command_words(o->ssh);
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || strlen(tmp) > 40)
		tmp = "/tmp"; /* a socket's path has room for about 100 bytes */
	sweep_stale(tmp);
	snprintf(c->dir, sizeof c->dir, "%s/herd-ssh-%d-XXXXXX", tmp, (int)getpid());
	if (!mkdtemp(c->dir)) {
		cli_warn("cannot make a directory for ssh's shared connections (%s): "
			 "each job connects on its own", strerror(errno));
		c->dir[0] = 0;
	}
	return c;
}

void ssh_end(struct ssh_ctx *c)
{
	if (!c)
		return;
	if (c->dir[0]) {
		/* The masters remove their sockets; whatever is left goes. */
		DIR *d = opendir(c->dir);
		for (struct dirent *e; d && (e = readdir(d));)
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		if (d)
			closedir(d);
		rmdir(c->dir);
	}
	free_words(c->words);
	pthread_mutex_destroy(&c->pace_lock);
	free(c);
}

/* --sshdelay: waits (from a task) until the next ssh client may start,
 * --sshdelay after the one before; at once without it. Called right before
 * one starts: in the setup, ssh_run, and as a job's or rsync's ssh command
 * is built (ssh_job_argv, ssh_rsync_e), which their callers start next. */
static void ssh_pace(const struct ssh_host *h)
{
	struct ssh_ctx *c = h->ctx;
	if (!c->o->sshdelay_ns)
		return;
	/* Each caller takes the next free time and sleeps until it, without
	 * the lock: the starts are --sshdelay apart, whoever asks. */
	pthread_mutex_lock(&c->pace_lock);
	int64_t at = herd_now();
	if (at < c->pace_next)
		at = c->pace_next;
	c->pace_next = at + c->o->sshdelay_ns;
	pthread_mutex_unlock(&c->pace_lock);
	if (at > herd_now())
		herd_sleep(at);
}

/* ------------------------------------------------------------------ */
/* A host                                                             */
/* ------------------------------------------------------------------ */

/* Starts the master and waits (up to 10 s) for its socket: true if it is
 * there. */
static bool start_master(struct ssh_host *h, const char *ctl, herd_scope *scope)
{
	struct av a = {0};
	for (size_t i = 0; h->words[i]; i++)
		av_add(&a, h->words[i]);
	const char *opts[] = {"-M", "-N", "-T", "-o", "ControlPersist=no", "-S", ctl, "--",
			      h->name};
	for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
		av_add(&a, opts[i]);
	herd_proc_opts po = {.argv = a.v};
	po.stdio[0].mode = po.stdio[1].mode = po.stdio[2].mode = HERD_STDIO_NULL;
	ssh_pace(h);
	int rc = herd_proc_start(&h->master, scope, &po, HERD_FOREVER);
	free_words(a.v);
	if (rc < 0) {
		h->master = NULL;
		return false;
	}
	int64_t give_up = herd_deadline(10 * HERD_SEC);
	struct stat st;
	while (stat(ctl, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		if (herd_now() > give_up ||
		    herd_chan_recv(herd_proc_done(h->master), NULL,
				   herd_deadline(10 * HERD_MSEC)) != HERD_ETIMEDOUT)
			return false; /* it ended (or is too slow): no sharing */
	}
	return true;
}

/* What the probe prints: herd=PATH (herd --guard runs there), perl=1,
 * cpus=N. The remote login shell must be a POSIX one. */
static const char probe_cmd[] =
	"h=$(command -v herd 2>/dev/null) && \"$h\" --guard -- true >/dev/null 2>&1 && "
	"echo \"herd=$h\"; command -v perl >/dev/null 2>&1 && echo perl=1; "
	"command -v rsync >/dev/null 2>&1 && echo rsync=1; "
	"echo cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)";

static bool probe(struct ssh_host *h, const char *login, bool need_rsync)
{
	struct av a = {0};
	av_ssh(&a, h, h->ctl);
	av_add(&a, probe_cmd);
	herd_proc_opts po = {.argv = a.v};
	herd_output r;
	ssh_pace(h);
	int rc = herd_proc_output(&r, NULL, &po, 1 << 16, 0, herd_deadline(120 * HERD_SEC));
	free_words(a.v);
	if (rc < 0 || r.status != 0) {
		const char *err = rc == 0 && r.err_len ? r.err : "";
		int n = (int)strcspn(err, "\n");
		cli_warn("%s: cannot run commands there (%s%s%.*s): no job runs there", login,
			 rc < 0 ? herd_strerror(rc) : "ssh failed", n ? ": " : "", n, err);
		herd_output_free(&r);
		return false;
	}
	char *save = NULL;
	for (char *l = strtok_r(r.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "herd=", 5) && l[5])
			h->herd = xstrdup(l + 5);
		else if (!strcmp(l, "perl=1"))
			h->perl = true;
		else if (!strcmp(l, "rsync=1"))
			h->rsync = true;
		else if (!strncmp(l, "cpus=", 5))
			h->cpus = atol(l + 5);
	}
	herd_output_free(&r);
	if (h->cpus < 1)
		h->cpus = 1;
	if (need_rsync && !h->rsync) {
		cli_warn("%s: rsync is not installed there, and files are to be sent: no job "
			 "runs there", login);
		return false;
	}
	if (!h->herd && h->perl)
		cli_warn("%s: herd is not installed there: its jobs run in a session of their own "
			 "(setsid), whose process group is killed when the connection drops",
			 login);
	else if (!h->herd)
		cli_warn("%s: neither herd nor perl is installed there: the processes of a job "
			 "may outlive a dropped connection", login);
	return true;
}

struct ssh_host *ssh_host_open(struct ssh_ctx *c, const char *sshcmd, const char *name,
			       const char *login, int index, herd_scope *scope)
{
	struct ssh_host *h = calloc(1, sizeof *h);
	if (!h)
		cli_die("out of memory");
	h->ctx = c;
	h->name = xstrdup(name);
	if (sshcmd) {
		h->words = command_words(sshcmd);
	} else {
		struct av a = {0};
		for (size_t i = 0; c->words[i]; i++)
			av_add(&a, c->words[i]);
		h->words = a.v;
	}
	if (c->dir[0]) {
		char ctl[96];
		snprintf(ctl, sizeof ctl, "%s/%d", c->dir, index);
		if (start_master(h, ctl, scope))
			h->ctl = xstrdup(ctl);
	}
	const struct opts *o = c->o;
	if (!probe(h, login, o->ntf || o->nret || o->nbf)) {
		ssh_host_close(h);
		return NULL;
	}
	return h;
}

long ssh_host_cpus(const struct ssh_host *h)
{
	return h->cpus;
}

void ssh_host_close(struct ssh_host *h)
{
	if (!h)
		return;
	if (h->master) {
		/* SIGTERM: the master closes its connection and removes its
		 * socket. */
		int st;
		herd_proc_signal(h->master, SIGTERM);
		if (herd_proc_wait(h->master, &st, herd_deadline(2 * HERD_SEC)) < 0)
			(void)herd_proc_kill(h->master, &st, HERD_FOREVER);
		herd_proc_free(h->master);
	}
	free(h->name);
	free_words(h->words);
	free(h->ctl);
	free(h->herd);
	free(h);
}

/* ------------------------------------------------------------------ */
/* A job's ssh command                                                */
/* ------------------------------------------------------------------ */

/* GNU parallel's remote wrapper, in short: the job in a session of its
 * own; its process group killed (TERM, then KILL) when stdout's or
 * stderr's reader goes away (select reports them readable then) or a
 * signal comes; else its exit status, 128 + a signal that ended it. */
static const char perl_guard[] =
	"use POSIX;$SIG{CHLD}=sub{$d=1};$p=fork;"
	"if(!$p){POSIX::setsid();exec{$ARGV[0]}@ARGV;exit 127}"
	"sub k{kill(-15,$p);select(undef,undef,undef,0.3);kill(-9,$p);exit 255}"
	"$SIG{TERM}=$SIG{HUP}=$SIG{INT}=\\&k;vec($r,1,1)=1;vec($r,2,1)=1;"
	"until($d){select($o=$r,undef,undef,1)>0&&k()}"
	"waitpid($p,0);exit($?&127?128+($?&127):$?>>8)";

/* The string the remote shell runs for the job (in wd, made if need be,
 * when not NULL). */
static char *remote_command(const struct ssh_host *h, const struct run_spec *s,
			    const char *login, const char *wd)
{
	strbuf b = {0};
	char num[64];
	if (wd) {
		sb_adds(&b, "mkdir -p -- ");
		sb_add_quoted(&b, wd);
		sb_adds(&b, " && cd -- ");
		sb_add_quoted(&b, wd);
		sb_adds(&b, " && ");
	}
	snprintf(num, sizeof num, "export PARALLEL_SEQ=%llu PARALLEL_JOBSLOT=%ld",
		 (unsigned long long)s->seq, s->slot);
	sb_adds(&b, num);
	sb_adds(&b, " PARALLEL_SSHHOST=");
	sb_add_quoted(&b, h->name);
	sb_adds(&b, " PARALLEL_SSHLOGIN=");
	sb_add_quoted(&b, login);
	sb_adds(&b, ";exec");
	if (h->herd) {
		sb_addc(&b, ' ');
		sb_add_quoted(&b, h->herd);
		sb_adds(&b, " --guard --");
	} else if (h->perl) {
		sb_adds(&b, " perl -e ");
		sb_add_quoted(&b, perl_guard);
		sb_adds(&b, " --");
	}
	const struct command *c = s->cmd;
	if (c->argv) {
		for (size_t i = 0; c->argv[i]; i++) {
			sb_addc(&b, ' ');
			sb_add_quoted(&b, c->argv[i]);
		}
	} else {
		sb_adds(&b, " /bin/sh -c ");
		sb_add_quoted(&b, c->shell);
	}
	char *r = sb_take(&b);
	if (!r)
		cli_die("out of memory");
	return r;
}

char **ssh_job_argv(const struct ssh_host *h, const struct run_spec *s, const char *login,
		    long rank, const char *wd)
{
	ssh_pace(h);
	struct av a = {0};
	av_ssh(&a, h, rank <= MUX_SLOTS ? h->ctl : NULL);
	char *cmd = remote_command(h, s, login, wd);
	av_add(&a, cmd);
	free(cmd);
	return a.v;
}

void ssh_argv_free(char **argv)
{
	free_words(argv);
}

/* ------------------------------------------------------------------ */
/* For rsync and other commands there (transfer.c)                    */
/* ------------------------------------------------------------------ */

const char *ssh_host_name(const struct ssh_host *h)
{
	return h->name;
}

char *ssh_rsync_e(const struct ssh_host *h, long rank)
{
	ssh_pace(h);
	struct av a = {0};
	av_ssh(&a, h, rank <= MUX_SLOTS ? h->ctl : NULL);
	char *dashes = a.v[a.n - 2];
	a.v[a.n - 2] = NULL; /* rsync adds the host: no "--" host */
	strbuf b = {0};
	for (size_t i = 0; a.v[i]; i++) {
		if (i)
			sb_addc(&b, ' ');
		sb_add_quoted(&b, a.v[i]);
	}
	a.v[a.n - 2] = dashes;
	free_words(a.v);
	char *r = sb_take(&b);
	if (!r)
		cli_die("out of memory");
	return r;
}

int run_status(char *const argv[], char **err)
{
	herd_proc_opts po = {.argv = argv};
	herd_output r;
	int rc = herd_proc_output(&r, NULL, &po, 1 << 16, 0, HERD_FOREVER);
	*err = NULL;
	if (rc < 0) {
		*err = xstrdup(herd_strerror(rc));
		return 255;
	}
	if (r.status && r.err_len)
		*err = strndup(r.err, strcspn(r.err, "\n"));
	int st = r.status;
	herd_output_free(&r);
	return st;
}

int ssh_run(const struct ssh_host *h, long rank, const char *cmd, char **err)
{
	struct av a = {0};
	av_ssh(&a, h, rank <= MUX_SLOTS ? h->ctl : NULL);
	av_add(&a, cmd);
	ssh_pace(h);
	int st = run_status(a.v, err);
	free_words(a.v);
	return st;
}
