/*
 * transfer.c - files to and from an ssh host around a job, with rsync, as
 * GNU parallel moves them: --transferfile before the job (rsync -R: the
 * path as given, relative to the job's directory there; a "/./" in it
 * marks where the kept part starts), --return after it (back to the same
 * path here), --cleanup removes both there, --basefile goes to each host
 * once, before its first job (and with --cleanup is removed at the end).
 *
 * --wd DIR: where jobs run there (made if need be); "..." gives each job a
 * directory of its own, .herd/tmp/HOST-PID-SEQ under the login's home,
 * removed whole with --cleanup.
 *
 * A transfer that fails fails the job (255, rsync's line); a return that
 * fails is said on stderr. rsync missing here is an error before any job;
 * missing on a host leaves the host out (ssh.c's probe).
 */
#define _GNU_SOURCE
#include "transfer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* rsync's options: recursive, links, devices, compress, relative paths. */
#define RSYNC_OPTS "-rlDzR"

bool transfer_wanted(const struct opts *o)
{
	return o->ntf || o->nret || o->nbf;
}

void transfer_check(const struct opts *o)
{
	if (!transfer_wanted(o))
		return;
	const char *path = getenv("PATH");
	char *copy = xstrdup(path ? path : "/usr/bin:/bin"), *save = NULL;
	bool found = false;
	for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		char *f;
		if (asprintf(&f, "%s/rsync", d) < 0)
			cli_die("out of memory");
		found = access(f, X_OK) == 0;
		free(f);
	}
	free(copy);
	if (!found)
		cli_die("--transferfile, --return and --basefile need rsync, which is not "
			"installed here (apt-get install rsync)");
}

char *transfer_wd(const struct opts *o, uint64_t seq)
{
	if (!o->wd)
		return NULL;
	if (strcmp(o->wd, "..."))
		return xstrdup(o->wd);
	char host[64] = "localhost", *wd;
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = 0;
	if (asprintf(&wd, ".herd/tmp/%s-%d-%llu", host, (int)getpid(),
		     (unsigned long long)seq) < 0)
		cli_die("out of memory");
	return wd;
}

/* An argv being built (freed by argv_free). */
struct xav {
	char **v;
	size_t n;
};

static void xadd(struct xav *a, char *s) /* takes s */
{
	a->v = xrealloc(a->v, (a->n + 2) * sizeof *a->v);
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void argv_free(struct xav *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
}

/* Runs rsync: 0, or its status with its first line of stderr in *err. */
static int run_rsync(struct xav *a, char **err)
{
	return run_status(a->v, err);
}

static char *cat3(const char *a, const char *b, const char *c)
{
	char *s;
	if (asprintf(&s, "%s%s%s", a, b, c) < 0)
		cli_die("out of memory");
	return s;
}

/* rsync FILES... host:WD/, WD made first. */
static int send_files(const struct ssh_host *h, long rank, char **files, size_t n,
		      const char *wd, char **err)
{
	struct xav a = {0};
	xadd(&a, xstrdup("rsync"));
	xadd(&a, xstrdup(RSYNC_OPTS));
	xadd(&a, xstrdup("-e"));
	xadd(&a, ssh_rsync_e(h, rank));
	if (wd) {
		strbuf b = {0};
		sb_adds(&b, "--rsync-path=mkdir -p -- ");
		sb_add_quoted(&b, wd);
		sb_adds(&b, " && rsync");
		xadd(&a, sb_take(&b));
	}
	xadd(&a, xstrdup("--"));
	for (size_t i = 0; i < n; i++)
		xadd(&a, xstrdup(files[i]));
	xadd(&a, cat3(ssh_host_name(h), ":", wd ? wd : ""));
	if (wd)
		a.v[a.n - 1] = strcat(xrealloc(a.v[a.n - 1], strlen(a.v[a.n - 1]) + 2), "/");
	int st = run_rsync(&a, err);
	argv_free(&a);
	return st;
}

/* Where a transferred file is there, relative to the job's directory: the
 * part after "/./", or the path without its leading slashes. */
static const char *remote_rel(const char *f)
{
	const char *dot = strstr(f, "/./");
	if (dot)
		return dot + 3;
	while (*f == '/')
		f++;
	return f;
}

static char **expand_all(const struct opts *o, char **t, int n, const struct run_spec *s)
{
	char **v = xmalloc(((size_t)n + 1) * sizeof *v);
	for (int i = 0; i < n; i++)
		v[i] = template_text(o, t[i], s->rec, s->seq, s->slot);
	v[n] = NULL;
	return v;
}

static void free_all(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

int transfer_before(const struct opts *o, const struct ssh_host *h, long rank,
		    const struct run_spec *s, const char *wd, char **msg)
{
	if (!o->ntf || !s->rec)
		return 0;
	char **files = expand_all(o, o->tf, o->ntf, s);
	char *err;
	int st = send_files(h, rank, files, (size_t)o->ntf, wd, &err);
	if (st)
		*msg = message(CLI_NAME ": %s: the transfer to it failed (rsync: %s)",
			       ssh_host_name(h), err ? err : "it failed");
	free(err);
	free_all(files);
	return st ? 255 : 0;
}

/* --cleanup: removes the job's files there (or its own directory). */
static void clean_job(const struct opts *o, const struct ssh_host *h, long rank,
		      const char *wd, char **sent, char **back)
{
	strbuf b = {0};
	if (o->wd && !strcmp(o->wd, "...")) {
		sb_adds(&b, "rm -rf -- ");
		sb_add_quoted(&b, wd);
	} else {
		if (wd) {
			sb_adds(&b, "cd -- ");
			sb_add_quoted(&b, wd);
			sb_adds(&b, " && ");
		}
		sb_adds(&b, "rm -f --");
		for (size_t i = 0; sent && sent[i]; i++) {
			sb_addc(&b, ' ');
			sb_add_quoted(&b, remote_rel(sent[i]));
		}
		for (size_t i = 0; back && back[i]; i++) {
			sb_addc(&b, ' ');
			sb_add_quoted(&b, back[i]);
		}
	}
	char *err;
	if (ssh_run(h, rank, b.s, &err))
		cli_warn("%s: --cleanup failed: %s", ssh_host_name(h), err ? err : "ssh failed");
	free(err);
	sb_free(&b);
}

void transfer_after(const struct opts *o, const struct ssh_host *h, long rank,
		    const struct run_spec *s, const char *wd)
{
	if (!s->rec || (!o->nret && !(o->cleanup && (o->ntf || (o->wd && !strcmp(o->wd, "..."))))))
		return;
	char **back = o->nret ? expand_all(o, o->ret, o->nret, s) : NULL;
	for (int i = 0; i < o->nret; i++) {
		/* rsync -R host:WD/./FILE ./ : FILE as it is, here. An
		 * absolute FILE comes back where it was. */
		bool abs = back[i][0] == '/';
		struct xav a = {0};
		xadd(&a, xstrdup("rsync"));
		xadd(&a, xstrdup(RSYNC_OPTS));
		xadd(&a, xstrdup("-e"));
		xadd(&a, ssh_rsync_e(h, rank));
		xadd(&a, xstrdup("--"));
		char *src = abs ? cat3("/.", back[i], "") : cat3(wd ? wd : ".", "/./", back[i]);
		xadd(&a, cat3(ssh_host_name(h), ":", src));
		free(src);
		xadd(&a, xstrdup(abs ? "/" : "./"));
		char *err;
		if (run_rsync(&a, &err))
			cli_warn("%s: --return %s failed (rsync: %s)", ssh_host_name(h), back[i],
				 err ? err : "it failed");
		free(err);
		argv_free(&a);
	}
	if (o->cleanup) {
		char **sent = o->ntf ? expand_all(o, o->tf, o->ntf, s) : NULL;
		clean_job(o, h, rank, wd, sent, back);
		free_all(sent);
	}
	free_all(back);
}

/* The basefiles' directory there: --wd's, unless it is "...". */
static const char *base_dir(const struct opts *o)
{
	return o->wd && strcmp(o->wd, "...") ? o->wd : NULL;
}

bool transfer_basefiles(const struct opts *o, const struct ssh_host *h, const char *login)
{
	if (!o->nbf)
		return true;
	char *err;
	int st = send_files(h, 1, o->bf, (size_t)o->nbf, base_dir(o), &err);
	if (st)
		cli_warn("%s: --basefile could not be sent (rsync: %s): no job runs there", login,
			 err ? err : "it failed");
	free(err);
	return st == 0;
}

void transfer_basefiles_clean(const struct opts *o, const struct ssh_host *h)
{
	if (!o->nbf || !o->cleanup)
		return;
	strbuf b = {0};
	if (base_dir(o)) {
		sb_adds(&b, "cd -- ");
		sb_add_quoted(&b, base_dir(o));
		sb_adds(&b, " && ");
	}
	sb_adds(&b, "rm -f --");
	for (int i = 0; i < o->nbf; i++) {
		sb_addc(&b, ' ');
		sb_add_quoted(&b, remote_rel(o->bf[i]));
	}
	char *err;
	if (ssh_run(h, 1, b.s, &err))
		cli_warn("%s: --cleanup of the basefiles failed: %s", ssh_host_name(h),
			 err ? err : "ssh failed");
	free(err);
	sb_free(&b);
}
