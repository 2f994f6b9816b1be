/*
 * args.c - the command line, as GNU parallel reads it: options first (short
 * ones may be bundled, -kj4), then the command, then the input sources,
 * each after ::: (its items), :::: (its files), :::+ or ::::+ (read beside
 * the source before). Without a source, the items come from stdin.
 *
 * Every error is one line, with the hint to --help, and exit status 255,
 * before anything has started.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOBS_MAX 65536L

/* The CPUs this process may run on. */
static long ncpu(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

static long parse_jobs(const char *s)
{
	size_t len = strlen(s);
	long v, cpus = ncpu();
	if (len && s[len - 1] == '%') {
		char num[64];
		if (len >= sizeof num)
			goto bad;
		memcpy(num, s, len - 1);
		num[len - 1] = 0;
		char *end;
		double pct = strtod(num, &end);
		if (end == num || *end || pct < 0)
			goto bad;
		v = (long)(cpus * pct / 100.0);
	} else if (parse_long(s, &v) < 0) {
		goto bad;
	} else if (s[0] == '+' || s[0] == '-') {
		v += cpus;
	} else if (v == 0) {
		v = JOBS_MAX; /* as many as can run: the descriptors decide */
	}
	if (v < 1)
		v = 1;
	return v > JOBS_MAX ? JOBS_MAX : v;
bad:
	cli_usage_error("-j %s: expected a number of jobs, N%%, +N or -N", s);
}

/* A duration: seconds, or with a suffix s, m, h or d. */
static int64_t parse_duration(const char *opt, const char *s)
{
	char num[64];
	size_t len = strlen(s);
	double mul = 1;
	if (len && len < sizeof num && strchr("smhd", s[len - 1])) {
		mul = s[len - 1] == 'm' ? 60 : s[len - 1] == 'h' ? 3600 : s[len - 1] == 'd' ? 86400 : 1;
		len--;
	}
	if (len >= sizeof num)
		cli_usage_error("%s %s: expected seconds", opt, s);
	memcpy(num, s, len);
	num[len] = 0;
	int64_t ns;
	if (parse_seconds(num, &ns) < 0 || ns / 1e9 * mul > 1e9)
		cli_usage_error("%s %s: expected seconds", opt, s);
	return (int64_t)(ns * mul);
}

static void parse_timeout(struct opts *o, const char *s)
{
	size_t len = strlen(s);
	if (len && s[len - 1] == '%') {
		char *end;
		o->timeout_pct = strtod(s, &end);
		if (end != s + len - 1 || o->timeout_pct <= 0)
			cli_usage_error("--timeout %s: expected seconds or N%%", s);
		return;
	}
	o->timeout_ns = parse_duration("--timeout", s);
}

static int signal_number(const char *name)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
		{"CONT", SIGCONT}, {"STOP", SIGSTOP},
	};
	if (!strncmp(name, "SIG", 3))
		name += 3;
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		if (!strcmp(name, sigs[i].name))
			return sigs[i].sig;
	long v;
	return parse_long(name, &v) == 0 && v > 0 && v < 65 ? (int)v : -1;
}

static void parse_term_seq(struct opts *o, const char *s)
{
	char *copy = xstrdup(s), *save = NULL;
	o->nterm = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int sig = signal_number(tok);
		char *ms = strtok_r(NULL, ",", &save);
		long wait;
		if (sig < 0 || !ms || parse_long(ms, &wait) < 0 || wait < 0 ||
		    o->nterm == (int)(sizeof o->term / sizeof *o->term))
			cli_usage_error("--term-seq %s: expected SIGNAL,MS,SIGNAL,MS...", s);
		o->term[o->nterm++] = (struct term_step){sig, wait * HERD_MSEC};
	}
	free(copy);
	if (!o->nterm)
		cli_usage_error("--term-seq %s: expected SIGNAL,MS,SIGNAL,MS...", s);
}

static void parse_halt(struct opts *o, const char *s)
{
	struct halt *h = &o->halt;
	/* The old numbers: 0 never, 1 soon on a failure, 2 now. */
	if (!strcmp(s, "never") || !strcmp(s, "0")) {
		h->when = HALT_NEVER;
		return;
	}
	if (!strcmp(s, "1") || !strcmp(s, "2")) {
		*h = (struct halt){s[0] == '1' ? HALT_SOON : HALT_NOW, HALT_FAIL, false, 1};
		return;
	}
	const char *comma = strchr(s, ',');
	const char *eq = comma ? strchr(comma, '=') : NULL;
	if (!comma || !eq)
		goto bad;
	if (!strncmp(s, "now,", 4))
		h->when = HALT_NOW;
	else if (!strncmp(s, "soon,", 5))
		h->when = HALT_SOON;
	else
		goto bad;
	size_t wlen = (size_t)(eq - comma - 1);
	if (wlen == 4 && !strncmp(comma + 1, "fail", 4))
		h->what = HALT_FAIL;
	else if (wlen == 7 && !strncmp(comma + 1, "success", 7))
		h->what = HALT_SUCCESS;
	else if (wlen == 4 && !strncmp(comma + 1, "done", 4))
		h->what = HALT_DONE;
	else
		goto bad;
	char *end;
	h->val = strtod(eq + 1, &end);
	h->percent = *end == '%';
	if (end == eq + 1 || (h->percent ? end[1] : *end) || h->val <= 0 ||
	    (h->percent && h->val > 100))
		goto bad;
	return;
bad:
	cli_usage_error("--halt %s: expected never, or now|soon,fail|success|done=N or N%%", s);
}

/* --recend and --recstart: \n, \t, \r and \\ understood. */
static char *unescape(const char *s)
{
	strbuf b = {0};
	sb_adds(&b, "");
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] && strchr("ntr\\", s[1])) {
			s++;
			sb_addc(&b, *s == 'n' ? '\n' : *s == 't' ? '\t' : *s == 'r' ? '\r' : '\\');
		} else {
			sb_addc(&b, *s);
		}
	}
	return sb_take(&b);
}

/* -d's delimiter: one byte, \n \t \0 \\ understood. */
static char parse_delim(const char *s)
{
	if (s[0] == '\\' && s[1] && !s[2]) {
		switch (s[1]) {
		case 'n': return '\n';
		case 't': return '\t';
		case '0': return '\0';
		case 'r': return '\r';
		case '\\': return '\\';
		}
	}
	if (!s[0] || s[1])
		cli_usage_error("-d %s: expected one character (or \\n, \\t, \\0)", s);
	return s[0];
}

static void add_source(struct opts *o, struct source s)
{
	o->src = xrealloc(o->src, (size_t)(o->nsrc + 1) * sizeof *o->src);
	o->src[o->nsrc++] = s;
}

enum { ARG_NONE, ARG_ONE };

struct option_def {
	const char *lng;
	char shrt;
	int arg;
	int id;
};

enum {
	O_JOBS, O_KEEP, O_UNGROUP, O_GROUP, O_LINEBUF, O_NULL, O_DELIM, O_ARGFILE, O_COLSEP,
	O_MAXARGS, O_MAXREPL, O_NOEMPTY, O_REPLACE, O_QUOTE, O_TAG, O_TAGSTRING, O_DELAY,
	O_TIMEOUT, O_TERMSEQ, O_RETRIES, O_HALT, O_JOBLOG, O_RESUME, O_RESUMEFAILED,
	O_RETRYFAILED, O_DRYRUN, O_VERBOSE, O_WILLCITE, O_HELP, O_VERSION,
	O_PIPE, O_BLOCK, O_RECEND, O_RECSTART, O_PROGRESS, O_ETA, O_BAR, O_LOAD, O_MEMFREE,
	O_TRACE, O_TRACEHTML, O_SSHLOGIN, O_SLF, O_SSH, O_GUARD, O_TF, O_TRANSFER, O_RETURN,
	O_CLEANUP, O_TRC, O_BF, O_WD, O_SLURM, O_NOSLURM, O_SSHDELAY, O_ONALL, O_NONALL,
	O_SUBMIT,
};

static const struct option_def options[] = {
	{"jobs", 'j', ARG_ONE, O_JOBS}, {"max-procs", 'P', ARG_ONE, O_JOBS},
	{"keep-order", 'k', ARG_NONE, O_KEEP}, {"ungroup", 'u', ARG_NONE, O_UNGROUP},
	{"group", 0, ARG_NONE, O_GROUP}, {"line-buffer", 0, ARG_NONE, O_LINEBUF},
	{"lb", 0, ARG_NONE, O_LINEBUF}, {"null", '0', ARG_NONE, O_NULL},
	{"delimiter", 'd', ARG_ONE, O_DELIM}, {"arg-file", 'a', ARG_ONE, O_ARGFILE},
	{"colsep", 'C', ARG_ONE, O_COLSEP}, {"max-args", 'n', ARG_ONE, O_MAXARGS},
	{"max-replace-args", 'N', ARG_ONE, O_MAXREPL},
	{"no-run-if-empty", 'r', ARG_NONE, O_NOEMPTY}, {NULL, 'I', ARG_ONE, O_REPLACE},
	{"quote", 'q', ARG_NONE, O_QUOTE}, {"tag", 0, ARG_NONE, O_TAG},
	{"tagstring", 0, ARG_ONE, O_TAGSTRING}, {"delay", 0, ARG_ONE, O_DELAY},
	{"timeout", 0, ARG_ONE, O_TIMEOUT}, {"term-seq", 0, ARG_ONE, O_TERMSEQ},
	{"retries", 0, ARG_ONE, O_RETRIES}, {"halt", 0, ARG_ONE, O_HALT},
	{"halt-on-error", 0, ARG_ONE, O_HALT}, {"joblog", 0, ARG_ONE, O_JOBLOG},
	{"resume", 0, ARG_NONE, O_RESUME}, {"resume-failed", 0, ARG_NONE, O_RESUMEFAILED},
	{"retry-failed", 0, ARG_NONE, O_RETRYFAILED}, {"dry-run", 0, ARG_NONE, O_DRYRUN},
	{"verbose", 'v', ARG_NONE, O_VERBOSE}, {NULL, 't', ARG_NONE, O_VERBOSE},
	{"will-cite", 0, ARG_NONE, O_WILLCITE}, {"no-notice", 0, ARG_NONE, O_WILLCITE},
	{"help", 'h', ARG_NONE, O_HELP}, {"version", 'V', ARG_NONE, O_VERSION},
	{"pipe", 0, ARG_NONE, O_PIPE}, {"spreadstdin", 0, ARG_NONE, O_PIPE},
	{"block", 0, ARG_ONE, O_BLOCK}, {"block-size", 0, ARG_ONE, O_BLOCK},
	{"recend", 0, ARG_ONE, O_RECEND}, {"recstart", 0, ARG_ONE, O_RECSTART},
	{"progress", 0, ARG_NONE, O_PROGRESS}, {"eta", 0, ARG_NONE, O_ETA},
	{"bar", 0, ARG_NONE, O_BAR}, {"load", 0, ARG_ONE, O_LOAD},
	{"memfree", 0, ARG_ONE, O_MEMFREE}, {"trace", 0, ARG_ONE, O_TRACE},
	{"trace-html", 0, ARG_ONE, O_TRACEHTML}, {"sshlogin", 'S', ARG_ONE, O_SSHLOGIN},
	{"slf", 0, ARG_ONE, O_SLF}, {"sshloginfile", 0, ARG_ONE, O_SLF},
	{"ssh", 0, ARG_ONE, O_SSH}, {"guard", 0, ARG_NONE, O_GUARD},
	{"transferfile", 0, ARG_ONE, O_TF}, {"tf", 0, ARG_ONE, O_TF},
	{"transfer", 0, ARG_NONE, O_TRANSFER}, {"return", 0, ARG_ONE, O_RETURN},
	{"cleanup", 0, ARG_NONE, O_CLEANUP}, {"trc", 0, ARG_ONE, O_TRC},
	{"basefile", 0, ARG_ONE, O_BF}, {"bf", 0, ARG_ONE, O_BF},
	{"workdir", 0, ARG_ONE, O_WD}, {"wd", 0, ARG_ONE, O_WD},
	{"slurm", 0, ARG_NONE, O_SLURM}, {"no-slurm", 0, ARG_NONE, O_NOSLURM},
	{"sshdelay", 0, ARG_ONE, O_SSHDELAY}, {"ssh-delay", 0, ARG_ONE, O_SSHDELAY},
	{"onall", 0, ARG_NONE, O_ONALL}, {"nonall", 0, ARG_NONE, O_NONALL},
	{"slurm-submit", 0, ARG_NONE, O_SUBMIT},
};

/* Appends s to a list of strings. */
static void add_str(char ***v, int *n, const char *s)
{
	*v = xrealloc(*v, (size_t)(*n + 1) * sizeof **v);
	(*v)[(*n)++] = (char *)s;
}

static void apply(struct opts *o, int id, const char *v, const char *name)
{
	long n;
	switch (id) {
	case O_JOBS:
		o->jobs = parse_jobs(v);
		o->jobs_set = true;
		break;
	case O_KEEP: o->keep_order = true; break;
	case O_UNGROUP: o->output = OUT_UNGROUP; break;
	case O_GROUP: o->output = OUT_GROUP; break;
	case O_LINEBUF: o->output = OUT_LINE; break;
	case O_NULL: o->delim = '\0'; break;
	case O_DELIM: o->delim = parse_delim(v); break;
	case O_ARGFILE: add_source(o, (struct source){.path = v}); break;
	case O_COLSEP: o->colsep = v; break;
	case O_MAXARGS:
	case O_MAXREPL:
		if (parse_long(v, &n) < 0 || n < 0 || n > 1000000 || (n == 0 && id == O_MAXARGS))
			cli_usage_error("%s %s: expected a number of arguments", name, v);
		o->max_args = n;
		o->exact_args = id == O_MAXREPL;
		break;
	case O_NOEMPTY: o->no_empty = true; break;
	case O_REPLACE:
		if (!*v)
			cli_usage_error("-I: expected a replacement string");
		o->replace = v;
		break;
	case O_QUOTE: o->quote = true; break;
	case O_TAG: o->tag = true; break;
	case O_TAGSTRING: o->tagstring = v; break;
	case O_DELAY: o->delay_ns = parse_duration("--delay", v); break;
	case O_SSHDELAY: o->sshdelay_ns = parse_duration("--sshdelay", v); break;
	case O_ONALL: o->onall = true; break;
	case O_NONALL: o->nonall = true; break;
	case O_TIMEOUT: parse_timeout(o, v); break;
	case O_TERMSEQ: parse_term_seq(o, v); break;
	case O_RETRIES:
		if (parse_long(v, &n) < 0 || n < 0 || n > 1000000)
			cli_usage_error("--retries %s: expected a number", v);
		o->retries = n ? n : LONG_MAX; /* as GNU parallel: 0, for ever */
		break;
	case O_HALT: parse_halt(o, v); break;
	case O_JOBLOG:
		o->joblog_append = v[0] == '+';
		o->joblog = v + o->joblog_append;
		if (!*o->joblog)
			cli_usage_error("--joblog: expected a file");
		break;
	case O_RESUME: o->resume = RESUME; break;
	case O_RESUMEFAILED: o->resume = RESUME_FAILED; break;
	case O_RETRYFAILED: o->resume = RETRY_FAILED; break;
	case O_DRYRUN: o->dry_run = true; break;
	case O_VERBOSE: o->verbose++; break;
	case O_WILLCITE: break;
	case O_PIPE: o->pipe = true; break;
	case O_BLOCK:
		if (parse_size(v, &o->block) < 0 || o->block < 1 || o->block > ((uint64_t)1 << 40))
			cli_usage_error("--block %s: expected a size (1M, 64k ...)", v);
		break;
	case O_PROGRESS: o->progress = true; break;
	case O_ETA: o->eta = true; break;
	case O_BAR: o->bar = true; break;
	case O_LOAD: {
		char *end;
		o->load = strtod(v, &end);
		if (*end == '%' && end[1] == 0)
			o->load = o->load * (double)ncpu() / 100.0;
		else if (end == v || *end)
			o->load = -1;
		if (o->load <= 0)
			cli_usage_error("--load %s: expected a number of processes, or N%%", v);
		break;
	}
	case O_MEMFREE:
		if (parse_size(v, &o->memfree) < 0)
			cli_usage_error("--memfree %s: expected a size (1G, 512M ...)", v);
		break;
	case O_TRACE:
	case O_TRACEHTML:
		if (!*v)
			cli_usage_error("%s: expected a file", name);
		*(id == O_TRACE ? &o->trace : &o->trace_html) = v;
		break;
	case O_SSHLOGIN:
		o->sshlogin = xrealloc(o->sshlogin, (size_t)(o->nsshlogin + 1) * sizeof *o->sshlogin);
		o->sshlogin[o->nsshlogin++] = (char *)v;
		break;
	case O_SLF:
		if (!*v)
			cli_usage_error("--slf: expected a file");
		o->slf = v;
		break;
	case O_SSH:
		if (!*v)
			cli_usage_error("--ssh: expected a command");
		o->ssh = v;
		break;
	case O_GUARD: o->guard = true; break;
	case O_TRC:
		o->cleanup = true;
		add_str(&o->ret, &o->nret, v);
		__attribute__((fallthrough)); /* --trc is --transfer --return F --cleanup */
	case O_TRANSFER: add_str(&o->tf, &o->ntf, "{}"); break;
	case O_TF:
	case O_RETURN:
	case O_BF:
		if (!*v)
			cli_usage_error("%s: expected a file", name);
		if (id == O_TF)
			add_str(&o->tf, &o->ntf, v);
		else
			add_str(id == O_RETURN ? &o->ret : &o->bf, id == O_RETURN ? &o->nret : &o->nbf, v);
		break;
	case O_CLEANUP: o->cleanup = true; break;
	case O_SLURM: o->slurm = true; o->no_slurm = false; break;
	case O_NOSLURM: o->no_slurm = true; o->slurm = false; break;
	case O_SUBMIT: o->slurm_submit = true; break;
	case O_WD:
		if (!*v)
			cli_usage_error("--wd: expected a directory");
		o->wd = v;
		break;
	case O_RECEND: o->recend = unescape(v); break;
	case O_RECSTART: o->recstart = unescape(v); break;
	case O_HELP:
		fputs(usage_text, stdout);
		exit(0);
	case O_VERSION:
		printf(CLI_NAME " " CLI_VERSION " (libherd %d.%d.%d)\n", HERD_VERSION_MAJOR,
		       HERD_VERSION_MINOR, HERD_VERSION_PATCH);
		exit(0);
	}
}

static const struct option_def *find_long(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof options / sizeof *options; i++)
		if (options[i].lng && strlen(options[i].lng) == len &&
		    !strncmp(options[i].lng, name, len))
			return &options[i];
	return NULL;
}

static const struct option_def *find_short(char c)
{
	for (size_t i = 0; i < sizeof options / sizeof *options; i++)
		if (options[i].shrt == c)
			return &options[i];
	return NULL;
}

/* --onall, --nonall: the options that each host's herd gets as they were
 * given (onall_rewrite, hosts.c), in their long form; not those of the
 * hosts, the slots, the joblog (given there in its own way), the
 * progress line or the timeline, which stay with the herd that runs them. */
static void keep_for_hosts(struct opts *o, const struct option_def *d, const char *v)
{
	static const int stay[] = {O_JOBS, O_SSHLOGIN, O_SLF, O_JOBLOG, O_RESUME, O_RESUMEFAILED,
				   O_RETRYFAILED, O_PROGRESS, O_ETA, O_BAR, O_TRACE, O_TRACEHTML,
				   O_SLURM, O_NOSLURM, O_ONALL, O_NONALL, O_TAG, O_GUARD};
	for (size_t i = 0; i < sizeof stay / sizeof *stay; i++)
		if (d->id == stay[i])
			return;
	char *w;
	if ((d->lng ? asprintf(&w, "--%s", d->lng) : asprintf(&w, "-%c", d->shrt)) < 0)
		cli_die("out of memory");
	add_str(&o->host_opts, &o->nhost_opts, w);
	if (d->arg == ARG_ONE)
		add_str(&o->host_opts, &o->nhost_opts, v);
}

/* Parses the options from argv[1]; returns the index of the first word
 * that is not one. */
static int parse_options(int argc, char **argv, struct opts *o)
{
	int i = 1;
	for (; i < argc; i++) {
		char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1] || !strncmp(a, ":::", 3))
			break;
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			const struct option_def *d = find_long(name, len);
			if (!d)
				cli_usage_error("unknown option --%.*s", (int)len, name);
			const char *v = NULL;
			if (d->arg == ARG_ONE) {
				if (eq)
					v = eq + 1;
				else if (i + 1 < argc)
					v = argv[++i];
				else
					cli_usage_error("--%s needs a value", d->lng);
			} else if (eq) {
				cli_usage_error("--%s takes no value", d->lng);
			}
			apply(o, d->id, v, a);
			keep_for_hosts(o, d, v);
			continue;
		}
		/* Short options, bundled: -kj4, -k -j 4. */
		for (char *c = a + 1; *c; c++) {
			const struct option_def *d = find_short(*c);
			if (!d)
				cli_usage_error("unknown option -%c", *c);
			if (d->arg == ARG_NONE) {
				apply(o, d->id, NULL, a);
				keep_for_hosts(o, d, NULL);
				continue;
			}
			const char *v = c[1] ? c + 1 : i + 1 < argc ? argv[++i] : NULL;
			if (!v)
				cli_usage_error("-%c needs a value", *c);
			char name[3] = {'-', *c, 0};
			apply(o, d->id, v, name);
			keep_for_hosts(o, d, v);
			break;
		}
	}
	return i;
}

static bool separator(const char *a)
{
	return !strcmp(a, ":::") || !strcmp(a, "::::") || !strcmp(a, ":::+") ||
	       !strcmp(a, "::::+");
}

/* The command, then the sources after the separators. */
static void parse_rest(int argc, char **argv, int i, struct opts *o)
{
	int start = i;
	while (i < argc && !separator(argv[i]))
		i++;
	o->ncmd = i - start;
	o->cmd = xmalloc((size_t)(o->ncmd + 1) * sizeof *o->cmd);
	for (int k = 0; k < o->ncmd; k++)
		o->cmd[k] = argv[start + k];
	o->cmd[o->ncmd] = NULL;
	while (i < argc) {
		const char *sep = argv[i++];
		bool files = sep[3] == ':', linked = sep[strlen(sep) - 1] == '+';
		int first = i;
		while (i < argc && !separator(argv[i]))
			i++;
		if (files) {
			if (first == i)
				cli_usage_error("%s: expected files", sep);
			for (int k = first; k < i; k++)
				add_source(o, (struct source){.path = argv[k],
							     .linked = linked && k == first});
		} else {
			char **items = xmalloc((size_t)(i - first + 1) * sizeof *items);
			for (int k = first; k < i; k++)
				items[k - first] = argv[k];
			items[i - first] = NULL;
			add_source(o, (struct source){.items = items, .linked = linked});
		}
	}
	if (o->nsrc && o->src[0].linked)
		cli_usage_error("%s: no source before it to link to", ":::+");
	if (!o->nsrc)
		add_source(o, (struct source){.path = "-"});
}

void args_parse(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->jobs = ncpu();
	o->delim = '\n';
	o->retries = 1;
	o->halt.when = HALT_NEVER;
	o->block = 1024 * 1024;
	parse_term_seq(o, "TERM,200,TERM,100,TERM,50,KILL,25");
	int i = parse_options(argc, argv, o);
	if (o->guard) {
		/* herd --guard [--] CMD ARGS: the words as they are. */
		if (i >= argc)
			cli_usage_error("--guard: expected a command");
		o->cmd = argv + i;
		o->ncmd = argc - i;
		return;
	}
	parse_rest(argc, argv, i, o);
	if (o->onall || o->nonall)
		onall_rewrite(o, argv + i, argc - i); /* o becomes the run of the hosts' herds */
	if (!o->ssh)
		o->ssh = getenv("PARALLEL_SSH") && *getenv("PARALLEL_SSH") ? getenv("PARALLEL_SSH")
									   : "ssh";
	if (o->colsep) {
		regex_t re;
		int rc = regcomp(&re, o->colsep, REG_EXTENDED);
		if (rc) {
			char msg[256];
			regerror(rc, &re, msg, sizeof msg);
			cli_usage_error("--colsep %s: %s", o->colsep, msg);
		}
		regfree(&re);
	}
	if (o->tagstring)
		o->tag = true;
	if (o->pipe) {
		if (!o->recend)
			o->recend = xstrdup("\n");
		if (!o->recstart)
			o->recstart = xstrdup("");
		if (!*o->recend && !*o->recstart)
			cli_usage_error("--pipe: --recend and --recstart cannot both be empty");
	}
}
