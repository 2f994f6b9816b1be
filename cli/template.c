/*
 * template.c - the command, with its replacement strings, turned into what
 * a job runs.
 *
 * The command's words are joined with spaces, as GNU parallel joins them
 * before handing them to a shell, and parsed into literal text and fields
 * ({} {.} {/} {//} {/.} {#} {%}, {n} and {n.} ..., or -I's string). A
 * value never reaches a shell unquoted: every byte of an item arrives
 * intact.
 *
 * Two ways to run. When the literal text holds no character a shell would
 * treat specially, the command is split at blanks and exec'd directly, a
 * value filling its field within a word (a field with several values, as
 * {} with -n 2, makes several words). Otherwise the command runs under
 * /bin/sh -c, with each value single-quoted. -q exec's the words as they
 * are, never splitting them. The display form (-t, --dry-run, the joblog)
 * is the shell form in every case, quoted as GNU parallel quotes.
 *
 * A command name that is not in PATH but is a shell builtin (cd, exit)
 * goes to the shell; one that is neither makes the job fail with 127
 * and "command not found", without a process.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a field stands for. */
enum { F_ALL = 0, F_SEQ, F_SLOT, F_HOST, F_SSHLOGIN };
/* How a value is changed. */
enum { M_NONE, M_NOEXT, M_BASE, M_DIR, M_BASE_NOEXT };

struct part {
	char *text;       /* literal, or NULL for a field */
	int kind;         /* F_*, or a position (1..) for {n} */
	int mod;          /* M_* */
	bool positional;
};

struct template {
	const struct opts *o;
	struct part *parts;
	size_t nparts;
	bool fields;      /* any field */
	bool direct;      /* exec'd without a shell */
	bool items_are_command; /* no command: each item is one */
	bool no_append;   /* --tagstring's: values are not appended */
	bool unquoted;    /* values are shell text: see field_in_first_word */
	char *path;       /* the resolved program, for direct commands */
	bool not_found;   /* the program is nowhere */
	const char *name; /* the command's name, for messages */
	struct template *tagstring;
};

/* {host} and {sshlogin}: the backend's answer for a slot. Set once, by
 * the first task before any job starts (backend_open), then only read. */
static slot_host_fn host_fn;
static void *host_ctx;

void template_hosts(slot_host_fn fn, void *ctx)
{
	host_fn = fn;
	host_ctx = ctx;
}

static void add_part(struct template *t, struct part p)
{
	t->parts = xrealloc(t->parts, (t->nparts + 1) * sizeof *t->parts);
	t->parts[t->nparts++] = p;
}

static void add_text(struct template *t, const char *p, size_t n)
{
	if (!n)
		return;
	if (t->nparts && t->parts[t->nparts - 1].text) {
		struct part *last = &t->parts[t->nparts - 1];
		size_t len = strlen(last->text);
		last->text = xrealloc(last->text, len + n + 1);
		memcpy(last->text + len, p, n);
		last->text[len + n] = 0;
		return;
	}
	char *s = xmalloc(n + 1);
	memcpy(s, p, n);
	s[n] = 0;
	add_part(t, (struct part){.text = s});
}

/* A field at p (which starts with '{'): its length, or 0 if it is none. */
static size_t parse_field(const char *p, bool plain_braces, struct part *f)
{
	static const struct { const char *s; int mod; } mods[] = {
		{"", M_NONE}, {".", M_NOEXT}, {"/", M_BASE}, {"//", M_DIR}, {"/.", M_BASE_NOEXT},
	};
	const char *q = p + 1;
	*f = (struct part){0};
	if (q[0] == '#' && q[1] == '}') {
		f->kind = F_SEQ;
		return 3;
	}
	if (q[0] == '%' && q[1] == '}') {
		f->kind = F_SLOT;
		return 3;
	}
	if (!strncmp(q, "host}", 5)) {
		f->kind = F_HOST;
		return 6;
	}
	if (!strncmp(q, "sshlogin}", 9)) {
		f->kind = F_SSHLOGIN;
		return 10;
	}
	if (*q >= '1' && *q <= '9') {
		long n = 0;
		while (*q >= '0' && *q <= '9' && n < 1000000)
			n = n * 10 + (*q++ - '0');
		f->kind = (int)n;
		f->positional = true;
	} else if (!plain_braces) {
		return 0;
	}
	const char *close = strchr(q, '}');
	if (!close)
		return 0;
	for (size_t i = 0; i < sizeof mods / sizeof *mods; i++)
		if ((size_t)(close - q) == strlen(mods[i].s) && !strncmp(q, mods[i].s, (size_t)(close - q))) {
			f->mod = mods[i].mod;
			return (size_t)(close + 1 - p);
		}
	return 0;
}

/* Parses s into parts. */
static void parse(struct template *t, const char *s)
{
	const char *rep = t->o->replace;
	size_t replen = rep ? strlen(rep) : 0;
	const char *lit = s;
	for (const char *p = s; *p;) {
		struct part f;
		size_t n = 0;
		if (rep && !strncmp(p, rep, replen)) {
			f = (struct part){.kind = F_ALL};
			n = replen;
		} else if (*p == '{') {
			n = parse_field(p, !rep, &f);
		}
		if (!n) {
			p++;
			continue;
		}
		add_text(t, lit, (size_t)(p - lit));
		add_part(t, f);
		t->fields = true;
		p += n;
		lit = p;
	}
	add_text(t, lit, strlen(lit));
}

/* Characters a shell treats as nothing special, in a word. */
static bool shell_plain(const char *s, bool first_word)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == ' ' || c == '\t' || strchr("-_./:,+@%^", c))
			continue;
		if (c == '=' && !first_word)
			continue;
		return false;
	}
	return true;
}

static bool builtin(const char *name)
{
	static const char *const names[] = {
		":", ".", "alias", "bg", "break", "cd", "command", "continue", "eval", "exec",
		"exit", "export", "fc", "fg", "getopts", "hash", "jobs", "local", "read",
		"readonly", "return", "set", "shift", "source", "times", "trap", "type",
		"ulimit", "umask", "unalias", "unset", "wait",
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

/* The program's path, as execvp would find it; NULL if it is nowhere. */
static char *find_program(const char *name)
{
	if (strchr(name, '/'))
		return xstrdup(name);
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/bin:/usr/bin";
	strbuf b = {0};
	for (const char *d = path;; d++) {
		const char *end = strchrnul(d, ':');
		b.len = 0;
		sb_add(&b, d, (size_t)(end - d));
		if (b.len)
			sb_addc(&b, '/');
		sb_adds(&b, name);
		struct stat st;
		if (stat(b.s, &st) == 0 && S_ISREG(st.st_mode) && access(b.s, X_OK) == 0)
			return sb_take(&b);
		if (!*end)
			break;
		d = end;
	}
	sb_free(&b);
	return NULL;
}

/* The first word of the literal text, if the command starts with one. */
static char *first_word(const struct template *t)
{
	if (!t->nparts || !t->parts[0].text)
		return NULL;
	const char *s = t->parts[0].text;
	s += strspn(s, " \t\x1f");
	size_t n = strcspn(s, " \t\x1f");
	if (!n || (!s[n] && t->nparts > 1))
		return NULL; /* a field is part of the name */
	char *w = xmalloc(n + 1);
	memcpy(w, s, n);
	w[n] = 0;
	return w;
}

/* Whether the command's first word (up to a blank or '=') holds a field:
 * then GNU parallel quotes no value, which is shell text ({} ::: 'echo a;
 * echo b' runs both); `A={} cmd` is an assignment, quoted as usual. */
static bool field_in_first_word(const struct template *t)
{
	for (size_t i = 0; i < t->nparts; i++) {
		const struct part *p = &t->parts[i];
		if (!p->text)
			return true;
		const char *s = p->text;
		if (i == 0)
			s += strspn(s, " \t\x1f");
		if (s[strcspn(s, " \t\x1f=")])
			return false; /* the word ends in this text */
	}
	return false;
}

static void decide(struct template *t)
{
	if (!t->o->quote && field_in_first_word(t)) {
		t->unquoted = true;
		t->direct = false;
		return;
	}
	t->direct = true;
	for (size_t i = 0; i < t->nparts && t->direct; i++)
		if (t->parts[i].text)
			t->direct = shell_plain(t->parts[i].text, i == 0);
	if (t->o->quote)
		t->direct = true;
	char *name = first_word(t);
	if (!name)
		return;
	t->name = name;
	t->path = find_program(name);
	if (!t->path && t->direct && !t->o->quote && builtin(name))
		t->direct = false;
	else if (!t->path && t->direct)
		t->not_found = true;
}

static struct template *compile_string(const struct opts *o, const char *s)
{
	struct template *t = calloc(1, sizeof *t);
	if (!t)
		cli_die("out of memory");
	t->o = o;
	parse(t, s);
	return t;
}

struct template *template_compile(const struct opts *o)
{
	struct template *t;
	if (!o->ncmd) {
		t = compile_string(o, "");
		t->items_are_command = true;
	} else if (o->quote) {
		/* Each word its own: a part list with word breaks marked by
		 * a text of one NUL-free separator handled in expand. */
		strbuf b = {0};
		for (int i = 0; i < o->ncmd; i++) {
			if (i)
				sb_addc(&b, '\x1f'); /* a word break that no word holds */
			sb_adds(&b, o->cmd[i]);
		}
		t = compile_string(o, b.s ? b.s : "");
		sb_free(&b);
	} else {
		strbuf b = {0};
		for (int i = 0; i < o->ncmd; i++) {
			if (i)
				sb_addc(&b, ' ');
			sb_adds(&b, o->cmd[i]);
		}
		t = compile_string(o, b.s ? b.s : "");
		sb_free(&b);
	}
	if (!t->items_are_command)
		decide(t);
	if (o->tagstring) {
		t->tagstring = compile_string(o, o->tagstring);
		t->tagstring->no_append = true;
	}
	return t;
}

void template_free(struct template *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nparts; i++)
		free(t->parts[i].text);
	free(t->parts);
	free(t->path);
	free((char *)t->name);
	template_free(t->tagstring);
	free(t);
}

/* ------------------------------------------------------------------ */
/* Expanding                                                          */
/* ------------------------------------------------------------------ */

/* A value changed by a modifier, into b. */
static void add_modified(strbuf *b, const char *v, int mod)
{
	const char *slash = strrchr(v, '/');
	switch (mod) {
	case M_NONE:
		sb_adds(b, v);
		return;
	case M_NOEXT:
	case M_BASE_NOEXT: {
		const char *s = mod == M_BASE_NOEXT && slash ? slash + 1 : v;
		const char *dot = strrchr(s, '.');
		if (dot && !strchr(dot, '/'))
			sb_add(b, s, (size_t)(dot - s));
		else
			sb_adds(b, s);
		return;
	}
	case M_BASE:
		sb_adds(b, slash ? slash + 1 : v);
		return;
	case M_DIR: {
		/* POSIX dirname: trailing slashes go, then the last name. */
		size_t n = strlen(v);
		while (n > 1 && v[n - 1] == '/')
			n--;
		while (n > 0 && v[n - 1] != '/')
			n--;
		if (n == 0) {
			sb_adds(b, v[0] == '/' ? "/" : ".");
			return;
		}
		while (n > 1 && v[n - 1] == '/')
			n--;
		sb_add(b, v, n);
		return;
	}
	}
}

/* The values of a field for record r: into vals (malloc'd strings). */
static size_t field_values(const struct template *t, const struct part *f,
			   const struct record *r, uint64_t seq, long slot, char ***vals)
{
	char num[32];
	*vals = NULL;
	if (!f->positional && (f->kind == F_SEQ || f->kind == F_SLOT)) {
		snprintf(num, sizeof num, "%llu",
			 f->kind == F_SEQ ? (unsigned long long)seq : (unsigned long long)slot);
		*vals = xmalloc(sizeof **vals);
		(*vals)[0] = xstrdup(num);
		return 1;
	}
	if (!f->positional && (f->kind == F_HOST || f->kind == F_SSHLOGIN)) {
		const char *h = host_fn ? host_fn(host_ctx, slot, f->kind == F_SSHLOGIN) : NULL;
		*vals = xmalloc(sizeof **vals);
		(*vals)[0] = xstrdup(h ? h : ":");
		return 1;
	}
	size_t from = 0, n = r->n;
	if (f->positional) {
		from = (size_t)f->kind - 1;
		n = 1;
	}
	if (t->o->exact_args && !t->o->max_args)
		n = 0; /* -N0: the job takes no value */
	*vals = xmalloc((n ? n : 1) * sizeof **vals);
	for (size_t i = 0; i < n; i++) {
		strbuf b = {0};
		add_modified(&b, from + i < r->n ? r->v[from + i] : "", f->mod);
		(*vals)[i] = sb_take(&b);
	}
	return n;
}

static void free_vals(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The shell form: literal text as it is, values quoted; a field of
 * several values gives them with spaces between. */
static char *shell_form(const struct template *t, const struct record *r, uint64_t seq,
			long slot, bool quote_values)
{
	strbuf b = {0};
	if (t->items_are_command) {
		for (size_t i = 0; i < r->n; i++) {
			if (i)
				sb_addc(&b, ' ');
			sb_adds(&b, r->v[i]);
		}
		return sb_take(&b);
	}
	for (size_t i = 0; i < t->nparts; i++) {
		const struct part *p = &t->parts[i];
		if (p->text) {
			for (const char *c = p->text; *c; c++)
				sb_addc(&b, *c == '\x1f' ? ' ' : *c);
			continue;
		}
		char **vals;
		size_t n = field_values(t, p, r, seq, slot, &vals);
		for (size_t k = 0; k < n; k++) {
			if (k)
				sb_addc(&b, ' ');
			if (quote_values)
				sb_add_quoted(&b, vals[k]);
			else
				sb_adds(&b, vals[k]);
		}
		free_vals(vals, n);
	}
	if (!t->fields && !t->no_append && !(t->o->exact_args && !t->o->max_args))
		for (size_t i = 0; i < r->n; i++) {
			sb_addc(&b, ' ');
			if (quote_values)
				sb_add_quoted(&b, r->v[i]);
			else
				sb_adds(&b, r->v[i]);
		}
	return sb_take(&b);
}

/* The -q display: every word of the command quoted. */
static char *quoted_display(char **argv)
{
	strbuf b = {0};
	for (size_t i = 0; argv[i]; i++) {
		if (i)
			sb_addc(&b, ' ');
		sb_add_quoted(&b, argv[i]);
	}
	return sb_take(&b);
}

struct argv_builder {
	char **v;
	size_t n;
	strbuf word;
	bool in_word;
};

static void ab_end_word(struct argv_builder *a)
{
	if (!a->in_word)
		return;
	a->v = xrealloc(a->v, (a->n + 2) * sizeof *a->v);
	a->v[a->n++] = sb_take(&a->word);
	a->in_word = false;
}

static void ab_text(struct argv_builder *a, const char *s, bool split_blanks)
{
	for (; *s; s++) {
		bool brk = *s == '\x1f' || (split_blanks && (*s == ' ' || *s == '\t'));
		if (brk) {
			ab_end_word(a);
			continue;
		}
		sb_addc(&a->word, *s);
		a->in_word = true;
	}
}

/* The direct form: an argv. */
static char **argv_form(const struct template *t, const struct record *r, uint64_t seq,
			long slot)
{
	struct argv_builder a = {0};
	bool split = !t->o->quote;
	for (size_t i = 0; i < t->nparts; i++) {
		const struct part *p = &t->parts[i];
		if (p->text) {
			ab_text(&a, p->text, split);
			continue;
		}
		char **vals;
		size_t n = field_values(t, p, r, seq, slot, &vals);
		for (size_t k = 0; k < n; k++) {
			if (k)
				ab_end_word(&a);
			sb_adds(&a.word, vals[k]);
			a.in_word = true;
		}
		free_vals(vals, n);
	}
	ab_end_word(&a);
	if (!t->fields && !(t->o->exact_args && !t->o->max_args))
		for (size_t i = 0; i < r->n; i++) {
			sb_adds(&a.word, r->v[i]);
			a.in_word = true;
			ab_end_word(&a);
		}
	if (!a.v)
		a.v = xmalloc(sizeof *a.v);
	a.v[a.n] = NULL;
	return a.v;
}

int template_expand(const struct template *t, const struct record *r, uint64_t seq,
		    long slot, struct command *out)
{
	memset(out, 0, sizeof *out);
	if (t->direct) {
		out->argv = argv_form(t, r, seq, slot);
		out->display = t->o->quote ? quoted_display(out->argv)
					   : shell_form(t, r, seq, slot, true);
		if (!out->argv[0]) {
			free(out->argv);
			out->argv = NULL;
			out->shell = xstrdup("");
		}
	} else {
		out->shell = shell_form(t, r, seq, slot, !t->items_are_command && !t->unquoted);
		out->display = xstrdup(out->shell);
	}
	return 0;
}

const char *template_path(const struct template *t)
{
	return t->path;
}

bool template_not_found(const struct template *t, const char **name)
{
	*name = t->name;
	return t->not_found;
}

void command_free(struct command *c)
{
	if (c->argv)
		for (size_t i = 0; c->argv[i]; i++)
			free(c->argv[i]);
	free(c->argv);
	free(c->shell);
	free(c->display);
	memset(c, 0, sizeof *c);
}

char *template_tag(const struct template *t, const struct record *r, uint64_t seq, long slot)
{
	if (t->tagstring)
		return shell_form(t->tagstring, r, seq, slot, false);
	if (!t->o->tag)
		return NULL;
	strbuf b = {0};
	for (size_t i = 0; i < r->n; i++) {
		if (i)
			sb_addc(&b, ' ');
		sb_adds(&b, r->v[i]);
	}
	return sb_take(&b);
}

char *template_text(const struct opts *o, const char *text, const struct record *r,
		    uint64_t seq, long slot)
{
	struct template *t = compile_string(o, text);
	t->no_append = true;
	char *s = shell_form(t, r, seq, slot, false);
	template_free(t);
	return s;
}
