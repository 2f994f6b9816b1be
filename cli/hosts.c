/*
 * hosts.c - the backend of this machine and of ssh hosts (backend.h): the
 * slots, the host each belongs to, and for a run on a slot the process to
 * start (the command here, or the ssh client that runs it there: ssh.c).
 *
 * Without -S or --slf there is one host, this machine, with -j's slots:
 * the run is what it always was. With them, each sshlogin "[N/]host" (or
 * "[N/]sshcommand host"; ":" is this machine) gets N slots, else -j's if
 * given, else its CPUs (asked once, as GNU parallel does; this machine's
 * are known). Hosts are set up side by side before the first job.
 *
 * --slf FILE: its hosts, one a line ('#' starts a comment), are read at
 * the start and again when the file changes (looked at once a second,
 * between job starts): a new host gets new slots; a host gone from the
 * file gets no new job, and its slots are dropped as its jobs end.
 *
 * --onall, --nonall (onall_rewrite, before the run): as GNU parallel, a
 * herd per host runs the jobs there one at a time (-j1 -S HOST, the
 * user's options, the same command and sources; stdin read once into a
 * file for all), and this herd runs those herds' command lines here, -j of
 * them at once. Every host's herd appends to the joblog, whose header is
 * written first.
 *
 * `lock` protects the tables (hosts, slots): job tasks read them on any
 * worker while the first task adds to them (--slf). Both are allocated
 * whole at the start, so that an entry never moves.
 */
#define _GNU_SOURCE
#include "transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* With --slf, the most slots and hosts there may ever be. */
#define SLF_MAX_SLOTS 4096
#define MAX_HOSTS 1024

struct host {
	char *login;          /* the sshlogin without N/: the joblog's Host */
	char *name;           /* the host (the last word) */
	char *sshcmd;         /* the words before it, or NULL: --ssh's */
	long want;            /* N/, or 0 */
	bool local;
	bool from_slf;        /* listed by the --slf file, not -S */
	bool retired;         /* gone from the --slf file */
	struct ssh_host *ssh;
};

struct slot {
	struct host *host;
	long rank;            /* the host's rank-th slot, from 1 */
};

struct hosts {
	struct backend b;
	const struct opts *o;
	pthread_mutex_t lock;
	struct host **hosts;
	size_t nhosts;
	struct slot *slots;   /* [1..nslots] */
	long nslots;
	bool only_local;      /* no -S, no --slf */
	int next_index;       /* of a host's control socket: never reused */
	struct ssh_ctx *ssh;
	herd_scope *scope;    /* the control masters */
	int64_t checked;      /* --slf: when it was last looked at */
	struct timespec mtime;
	off_t size;
};

static struct host local_host = {.login = ":", .name = ":", .local = true};

/* ------------------------------------------------------------------ */
/* The hosts                                                          */
/* ------------------------------------------------------------------ */

static void host_free(struct host *h)
{
	free(h->login);
	free(h->name);
	free(h->sshcmd);
	free(h);
}

/* One sshlogin: "[N/]host" or "[N/]sshcommand host"; NULL if malformed. */
static struct host *parse_login(const char *spec)
{
	const char *s = spec + strspn(spec, " \t");
	long want = 0;
	const char *slash = strchr(s, '/');
	if (slash && slash > s && strspn(s, "0123456789") == (size_t)(slash - s)) {
		want = atol(s);
		if (want < 1)
			return NULL;
		s = slash + 1;
	}
	size_t len = strlen(s);
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (!len)
		return NULL;
	struct host *h = calloc(1, sizeof *h);
	if (!h)
		cli_die("out of memory");
	h->want = want;
	h->login = strndup(s, len);
	if (!h->login)
		cli_die("out of memory");
	char *last = strrchr(h->login, ' ');
	char *tab = strrchr(h->login, '\t');
	if (tab > last)
		last = tab;
	h->name = xstrdup(last ? last + 1 : h->login);
	if (last)
		h->sshcmd = strndup(h->login, (size_t)(last - h->login));
	h->local = !strcmp(h->login, ":");
	return h;
}

/* Adds the sshlogins of a list "a,b,c" to *v (deduplicated by login). */
static void add_logins(struct host ***v, size_t *n, const char *list, const char *what)
{
	char *copy = xstrdup(list), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct host *h = parse_login(t);
		if (!h)
			cli_usage_error("%s %s: expected [N/]host", what, t);
		bool dup = false;
		for (size_t i = 0; i < *n && !dup; i++)
			dup = !strcmp((*v)[i]->login, h->login);
		if (dup) {
			host_free(h);
			continue;
		}
		*v = xrealloc(*v, (*n + 1) * sizeof **v);
		(*v)[(*n)++] = h;
	}
	free(copy);
}

/* The hosts of the --slf file (NULL, 0 if it cannot be read). */
static void read_slf(const char *path, struct host ***v, size_t *n)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "#\r\n")] = 0;
		if (line[strspn(line, " \t")])
			add_logins(v, n, line, "--slf");
	}
	free(line);
	fclose(f);
}

struct setup {
	struct hosts *H;
	struct host *h;
	int index;
};

static void setup_task(void *arg)
{
	struct setup *s = arg;
	struct host *h = s->h;
	h->ssh = ssh_host_open(s->H->ssh, h->sshcmd, h->name, h->login, s->index, s->H->scope);
	if (h->ssh && !transfer_basefiles(s->H->o, h->ssh, h->login)) {
		ssh_host_close(h->ssh);
		h->ssh = NULL;
	}
}

/* Sets the new hosts v[0..n) up side by side, then gives each its slots
 * (under the lock) and sends them to `free_slots` (NULL: none). The hosts
 * that cannot be reached are dropped. */
static void add_hosts(struct hosts *H, struct host **v, size_t n, herd_chan *free_slots)
{
	/* Only this task adds hosts: nhosts is read here without the lock. */
	for (; n > MAX_HOSTS - H->nhosts; n--) {
		cli_warn("%s: more than %d hosts: not used", v[n - 1]->login, MAX_HOSTS);
		host_free(v[n - 1]);
	}
	herd_scope *sc;
	if (herd_scope_open(&sc) < 0)
		cli_die("out of memory");
	for (size_t i = 0; i < n; i++)
		if (!v[i]->local &&
		    HERD_GO(sc, setup_task, ((struct setup){H, v[i], H->next_index++})) < 0)
			cli_die("cannot start a task");
	herd_scope_close(sc);
	pthread_mutex_lock(&H->lock);
	for (size_t i = 0; i < n; i++) {
		struct host *h = v[i];
		if (!h->local && !h->ssh) {
			host_free(h); /* it cannot be reached: it said so */
			continue;
		}
		long k = h->want ? h->want
			 : h->local || H->o->jobs_set ? H->o->jobs : ssh_host_cpus(h->ssh);
		H->hosts[H->nhosts++] = h;
		for (long r = 1; r <= k && H->nslots < H->b.max_slots; r++) {
			H->slots[++H->nslots] = (struct slot){h, r};
			/* The channel holds max_slots: there is room. */
			if (free_slots)
				herd_chan_try_send(free_slots, &H->nslots);
		}
	}
	pthread_mutex_unlock(&H->lock);
}

/* ------------------------------------------------------------------ */
/* --slf: looking again                                               */
/* ------------------------------------------------------------------ */

static bool slf_changed(struct hosts *H)
{
	struct stat st;
	if (stat(H->o->slf, &st) < 0)
		return false;
	bool changed = st.st_mtim.tv_sec != H->mtime.tv_sec ||
		       st.st_mtim.tv_nsec != H->mtime.tv_nsec || st.st_size != H->size;
	H->mtime = st.st_mtim;
	H->size = st.st_size;
	return changed;
}

static void hosts_more_slots(struct backend *b, herd_chan *free_slots)
{
	struct hosts *H = (struct hosts *)b;
	if (!H->o->slf || herd_now() - H->checked < HERD_SEC)
		return;
	H->checked = herd_now();
	if (!slf_changed(H))
		return;
	struct host **v = NULL;
	size_t n = 0;
	read_slf(H->o->slf, &v, &n);
	/* Hosts gone from the file retire; those still there stay (their
	 * lines are dropped), and the rest are new. */
	pthread_mutex_lock(&H->lock);
	for (size_t i = 0; i < H->nhosts; i++) {
		struct host *h = H->hosts[i];
		if (!h->from_slf || h->retired)
			continue;
		size_t k = 0;
		while (k < n && (!v[k] || strcmp(v[k]->login, h->login)))
			k++;
		if (k == n) {
			h->retired = true;
			continue;
		}
		host_free(v[k]);
		v[k] = NULL;
	}
	pthread_mutex_unlock(&H->lock);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i]) {
			v[i]->from_slf = true;
			v[k++] = v[i];
		}
	add_hosts(H, v, k, free_slots);
	free(v);
}

/* ------------------------------------------------------------------ */
/* The backend's operations                                           */
/* ------------------------------------------------------------------ */

static struct slot slot_of(struct hosts *H, long slot)
{
	if (H->only_local)
		return (struct slot){&local_host, slot};
	pthread_mutex_lock(&H->lock);
	struct slot s = H->slots[slot];
	pthread_mutex_unlock(&H->lock);
	return s;
}

static int start_local(struct hosts *H, const struct run_spec *s, struct job_run **out,
		       char **msg)
{
	const struct command *c = s->cmd;
	if (s->missing) {
		*msg = message(CLI_NAME ": %s: command not found", s->missing);
		return 127;
	}
	char *sh_argv[] = {"/bin/sh", "-c", c->shell, NULL};
	char **envp = job_environment(s->seq, s->slot);
	struct launch l = {c->argv ? c->argv : sh_argv, c->argv ? s->path : "/bin/sh", envp, 0};
	int rc = proc_run_start(H->o, s, &l, out, msg);
	free_environment(envp);
	return rc;
}

static int hosts_start(struct backend *b, const struct run_spec *s, struct job_run **out,
		       char **msg)
{
	struct hosts *H = (struct hosts *)b;
	struct slot sl = slot_of(H, s->slot);
	if (sl.host->local)
		return start_local(H, s, out, msg);
	/* The program is looked for there, not here. */
	char *wd = transfer_wd(H->o, s->seq);
	int rc = transfer_before(H->o, sl.host->ssh, sl.rank, s, wd, msg);
	if (rc == 0) {
		char **argv = ssh_job_argv(sl.host->ssh, s, sl.host->login, sl.rank, wd);
		struct launch l = {argv, NULL, NULL, 0};
		rc = proc_run_start(H->o, s, &l, out, msg);
		ssh_argv_free(argv);
	}
	free(wd);
	return rc;
}

static int hosts_collect(struct backend *b, const struct run_spec *s, struct job_run *r)
{
	struct hosts *H = (struct hosts *)b;
	int sig = proc_run_signalled(r);
	int st = proc_run_collect(r);
	struct slot sl = slot_of(H, s->slot);
	if (!sl.host->local) {
		/* ssh exits with 255 when a signal ends it: the run ended as a
		 * local one would, of the signal that herd sent. */
		if (st == 255 && sig)
			st = 256 + sig;
		char *wd = transfer_wd(H->o, s->seq);
		transfer_after(H->o, sl.host->ssh, sl.rank, s, wd);
		free(wd);
	}
	return st;
}

static const char *hosts_host(struct backend *b, long slot)
{
	return slot_of((struct hosts *)b, slot).host->login;
}

/* {host} and {sshlogin} (template_hosts). A host is freed only at the
 * end, so its strings outlive every job. */
static const char *slot_host(void *ctx, long slot, bool login)
{
	struct host *h = slot_of(ctx, slot).host;
	return login ? h->login : h->name;
}

static bool hosts_slot_ok(struct backend *b, long slot)
{
	struct hosts *H = (struct hosts *)b;
	if (H->only_local)
		return true;
	pthread_mutex_lock(&H->lock);
	bool ok = !H->slots[slot].host->retired;
	pthread_mutex_unlock(&H->lock);
	return ok;
}

static void hosts_close(struct backend *b)
{
	struct hosts *H = (struct hosts *)b;
	template_hosts(NULL, NULL);
	for (size_t i = 0; i < H->nhosts; i++) {
		if (H->hosts[i]->ssh)
			transfer_basefiles_clean(H->o, H->hosts[i]->ssh);
		ssh_host_close(H->hosts[i]->ssh);
		host_free(H->hosts[i]);
	}
	if (H->scope)
		herd_scope_close(H->scope);
	ssh_end(H->ssh);
	free(H->hosts);
	free(H->slots);
	pthread_mutex_destroy(&H->lock);
	free(H);
}

static const struct backend_ops hosts_ops = {
	.name = "hosts",
	.start = hosts_start,
	.done = proc_run_done,
	.signal = proc_run_signal,
	.collect = hosts_collect,
	.host = hosts_host,
	.slot_ok = hosts_slot_ok,
	.more_slots = hosts_more_slots,
	.close = hosts_close,
};

struct backend *backend_open(const struct opts *o)
{
	if (slurm_wanted(o))
		return slurm_open(o);
	struct hosts *H = calloc(1, sizeof *H);
	if (!H)
		cli_die("out of memory");
	H->b.ops = &hosts_ops;
	H->o = o;
	pthread_mutex_init(&H->lock, NULL);
	template_hosts(slot_host, H);
	if ((!o->nsshlogin && !o->slf) || o->dry_run) {
		/* This machine alone: -j's slots, as ever. */
		H->only_local = true;
		H->b.nslots = H->b.max_slots = o->jobs;
		return &H->b;
	}
	struct host **v = NULL;
	size_t n = 0;
	for (int i = 0; i < o->nsshlogin; i++)
		add_logins(&v, &n, o->sshlogin[i], "-S");
	size_t from_cmdline = n;
	if (o->slf) {
		if (access(o->slf, R_OK) < 0)
			cli_die("--slf %s: cannot be read", o->slf);
		slf_changed(H); /* its time and size now */
		H->checked = herd_now();
		read_slf(o->slf, &v, &n);
		for (size_t i = from_cmdline; i < n; i++)
			v[i]->from_slf = true;
	}
	H->b.max_slots = o->slf ? SLF_MAX_SLOTS : 0;
	for (size_t i = 0; i < n && !o->slf; i++) {
		long k = v[i]->want ? v[i]->want : o->jobs_set || v[i]->local ? o->jobs : 0;
		/* A host whose CPUs are not known yet: room for a big one. */
		H->b.max_slots += k ? k : 1024;
	}
	if (H->b.max_slots > SLF_MAX_SLOTS * 16)
		H->b.max_slots = SLF_MAX_SLOTS * 16;
	H->hosts = xmalloc(MAX_HOSTS * sizeof *H->hosts);
	H->slots = xmalloc(((size_t)H->b.max_slots + 1) * sizeof *H->slots);
	bool remote = false;
	for (size_t i = 0; i < n; i++)
		remote = remote || !v[i]->local;
	if (remote || o->slf)
		transfer_check(o);
	H->ssh = ssh_begin(o);
	if (herd_scope_open(&H->scope) < 0)
		cli_die("out of memory");
	add_hosts(H, v, n, NULL);
	free(v);
	H->b.nslots = H->nslots;
	if (!H->nslots && !o->slf) {
		hosts_close(&H->b); /* its directory goes */
		cli_die("no host can run the jobs");
	}
	return &H->b;
}

/* ------------------------------------------------------------------ */
/* --onall, --nonall                                                  */
/* ------------------------------------------------------------------ */

/* Stdin, read once for every host's herd into an unnamed file, which they
 * open as /proc/PID/fd/N: nothing has a name on disk, even after kill -9. */
static char *stdin_copy;
/* The options as given, kept for the life of the command once the run's
 * are the hosts' herds': what they point to stays reachable, as the run's
 * options' does (LeakSanitizer would count it as leaked). */
static struct opts given;

static const char *stdin_file(void)
{
	if (stdin_copy)
		return stdin_copy;
	int fd = cli_temp_file();
	if (fd < 0)
		cli_die("--onall: cannot keep stdin in a temporary file: %s", strerror(errno));
	if (asprintf(&stdin_copy, "/proc/%d/fd/%d", (int)getpid(), fd) < 0)
		cli_die("out of memory");
	char buf[1 << 16];
	ssize_t r;
	while ((r = read(0, buf, sizeof buf)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			cli_die("--onall: cannot read stdin: %s", strerror(errno));
		for (ssize_t w, done = 0; done < r; done += w)
			if ((w = write(fd, buf + done, (size_t)(r - done))) < 0)
				cli_die("--onall: cannot keep stdin in a temporary file: %s",
					strerror(errno));
	}
	return stdin_copy; /* fd stays open for the hosts' herds */
}

static void add_word(strbuf *b, const char *w)
{
	sb_addc(b, ' ');
	sb_add_quoted(b, w);
}

/* The command line of the herd that runs the jobs on `login`. */
static char *host_herd(const struct opts *o, const char *exe, const char *login, char **tail,
		       int n)
{
	strbuf b = {0};
	sb_adds(&b, "exec");
	add_word(&b, exe);
	bool argfile = false;
	for (int i = 0; i < o->nhost_opts; i++) {
		bool from_stdin = i > 0 && !strcmp(o->host_opts[i - 1], "--arg-file") &&
				  !strcmp(o->host_opts[i], "-");
		argfile = argfile || !strcmp(o->host_opts[i], "--arg-file");
		add_word(&b, from_stdin ? stdin_file() : o->host_opts[i]);
	}
	const char *fixed[] = {"-j1", "-S", login};
	for (size_t i = 0; i < 3; i++)
		add_word(&b, fixed[i]);
	if (o->joblog) {
		/* Every host's herd appends its lines; the header is written
		 * here, once (onall_rewrite). */
		add_word(&b, "--joblog");
		sb_addc(&b, ' ');
		sb_add_quoted(&b, "+");
		sb_add_quoted(&b, o->joblog);
	}
	if (o->tag && !o->tagstring) {
		add_word(&b, "--tagstring"); /* GNU parallel's: the lines' host */
		add_word(&b, "{sshlogin}");
	}
	if (o->nonall)
		add_word(&b, "-N0");
	add_word(&b, "--");
	bool files = false, sources = false;
	for (int i = 0; i < n; i++) {
		const char *w = tail[i];
		if (i >= o->ncmd && (!strcmp(w, ":::") || !strcmp(w, ":::+"))) {
			files = false;
			sources = true;
		} else if (i >= o->ncmd && (!strcmp(w, "::::") || !strcmp(w, "::::+"))) {
			files = sources = true;
		} else if (files && !strcmp(w, "-")) {
			w = stdin_file();
		}
		add_word(&b, w);
	}
	if (o->nonall) {
		add_word(&b, ":::");
		add_word(&b, "");
	} else if (!sources && !argfile) {
		add_word(&b, "::::");
		add_word(&b, stdin_file());
	}
	char *s = sb_take(&b);
	if (!s)
		cli_die("out of memory");
	return s;
}

void onall_rewrite(struct opts *o, char **tail, int n)
{
	const char *opt = o->onall ? "--onall" : "--nonall";
	if (!o->nsshlogin && !o->slf)
		cli_usage_error("%s: expected hosts (-S or --slf)", opt);
	if (o->pipe || o->slurm || o->slurm_submit || o->resume != RESUME_NONE || o->trace ||
	    o->trace_html)
		cli_usage_error("%s: not with --pipe, --slurm, --slurm-submit, --resume, "
				"--retry-failed or --trace", opt);
	if (o->nonall && (o->nsrc > 1 || o->src[0].items || strcmp(o->src[0].path, "-")))
		cli_usage_error("--nonall: the command takes no input");
	/* The hosts, as -S and --slf name them, without N/: each one's herd
	 * runs one job at a time. */
	struct host **v = NULL;
	size_t nh = 0;
	for (int i = 0; i < o->nsshlogin; i++)
		add_logins(&v, &nh, o->sshlogin[i], "-S");
	if (o->slf) {
		if (access(o->slf, R_OK) < 0)
			cli_die("--slf %s: cannot be read", o->slf);
		read_slf(o->slf, &v, &nh);
	}
	if (!nh)
		cli_die("%s: no host", opt);
	char *exe = realpath("/proc/self/exe", NULL);
	if (!exe)
		cli_die("%s: cannot find herd's own program: %s", opt, strerror(errno));
	char **items = xmalloc((nh + 1) * sizeof *items);
	for (size_t i = 0; i < nh; i++) {
		items[i] = host_herd(o, exe, v[i]->login, tail, n);
		host_free(v[i]);
	}
	items[nh] = NULL;
	free(v);
	free(exe);
	if (o->joblog && !o->joblog_append)
		joblog_close(joblog_open(&(struct opts){.joblog = o->joblog})); /* its header */
	/* This herd runs those command lines here, -j at a time, and prints
	 * each one's output whole (or as -u, --line-buffer, -k say). */
	/* A host's herd, ended (Ctrl-C), ends its jobs as its --term-seq
	 * says and its connection: it gets 10 s for that before SIGKILL. */
	struct opts outer = {
		.jobs = o->jobs, .jobs_set = o->jobs_set, .output = o->output,
		.keep_order = o->keep_order, .delim = '\0', .retries = 1,
		.halt.when = HALT_NEVER, .block = o->block, .ssh = o->ssh,
		.term = {{SIGTERM, 10 * HERD_SEC}, {SIGKILL, 25 * HERD_MSEC}}, .nterm = 2,
		.cmd = xmalloc(sizeof(char *)),
	};
	outer.cmd[0] = NULL;
	outer.src = xmalloc(sizeof *outer.src);
	outer.src[0] = (struct source){.items = items};
	outer.nsrc = 1;
	given = *o;
	*o = outer;
}
