/*
 * trace-html.c - herd-trace-html IN.json OUT.html: wraps a Chrome
 * trace-event JSON file (libherd's HERD_TRACE=FILE, herd --trace, or any
 * other) in the timeline page that herd --trace-html writes, for a machine
 * with no Perfetto at hand. A trace cut short (its program was killed
 * while writing it) is read up to its last complete event, with a warning.
 * "-" reads stdin or writes stdout.
 *
 * A library trace whose program did not reach the end of herd_run (killed
 * with SIGKILL, say) is still in the binary form it is written in while
 * the program runs: the tool converts it with the library's own converter
 * (src/run/trace-json.c, built in), and --json writes that JSON alone, for
 * Perfetto or chrome://tracing.
 *
 * Errors: one line on stderr, exit status 1 (2 for a usage error); a page
 * that could not be written whole is removed.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "run/trace-json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOOL "herd-trace-html"

static const char usage[] =
	"Usage: " TOOL " IN.json OUT.html\n"
	"       " TOOL " --json IN OUT.json\n"
	"\n"
	"Writes OUT.html, one self-contained page (no network) that draws the\n"
	"timeline of the Chrome trace-event JSON file IN.json: libherd's\n"
	"HERD_TRACE=FILE, herd --trace FILE, or any other. A trace cut short\n"
	"(its program was killed) is read up to its last complete event.\n"
	"A HERD_TRACE file that its program left in the binary form it writes\n"
	"while it runs (it did not reach the end of herd_run) is converted\n"
	"first; --json only converts it, to Chrome trace-event JSON.\n"
	"- reads stdin, or writes stdout.\n";

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, TOOL ": %s\n", line);
	exit(1);
}

static char *read_whole(const char *path, size_t *len)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0)
		fail("cannot read %s: %s", path, strerror(errno));
	strbuf b = {0};
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("cannot read %s: %s", path, strerror(errno));
		if (n == 0)
			break;
		if (!sb_add(&b, buf, (size_t)n))
			fail("%s: out of memory", path);
	}
	if (fd)
		close(fd);
	*len = b.len;
	return sb_take(&b);
}

static int to_sb(void *ctx, const char *buf, size_t len)
{
	return sb_add(ctx, buf, len) ? 0 : -ENOMEM;
}

/* A library trace in the binary form (bin, len bytes, malloc'd: aligned)
 * as JSON, which is freed; *cut if it was cut short. */
static char *from_binary(const char *in, char *bin, size_t len, size_t *out_len, bool *cut)
{
	strbuf b = {0};
	herd__tconv *c = herd__tconv_new(to_sb, &b);
	if (!c)
		fail("%s: out of memory", in);
	int rc = herd__tconv_file(c, bin, len, cut);
	if (!rc)
		rc = herd__tconv_end(c, -1, 0);
	herd__tconv_free(c);
	free(bin);
	if (rc)
		fail("%s: %s", in, rc == -EINVAL ? "not a trace herd can read" : strerror(-rc));
	*out_len = b.len;
	return sb_take(&b);
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* --json IN OUT: the binary form converted, and nothing else. */
static int json_only(const char *in, const char *out)
{
	size_t len;
	bool cut;
	char *bin = read_whole(in, &len);
	if (!herd__tconv_is_binary(bin, len))
		fail("%s: not a trace in herd's binary form (already JSON?)", in);
	char *json = from_binary(in, bin, len, &len, &cut);
	if (cut)
		fprintf(stderr, TOOL ": %s: the trace was cut short; read up to its last "
			"complete event\n", in);
	bool to_stdout = !strcmp(out, "-");
	int fd = to_stdout ? 1 : open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("cannot write %s: %s", out, strerror(errno));
	int rc = write_all(fd, json, len);
	if (!to_stdout && close(fd) < 0 && rc == 0)
		rc = -errno;
	free(json);
	if (rc < 0) {
		if (!to_stdout)
			unlink(out);
		fail("cannot write %s: %s", out, strerror(-rc));
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "--json"))
		return json_only(argv[2], argv[3]);
	if (argc != 3) {
		fputs(usage, stderr);
		return 2;
	}
	const char *in = argv[1], *out = argv[2];
	size_t len, clean_len;
	char *text = read_whole(in, &len);
	char err[256];
	bool repaired, cut = false;
	if (herd__tconv_is_binary(text, len))
		text = from_binary(in, text, len, &len, &cut);
	char *json = trace_json_clean(text, len, &clean_len, &repaired, err, sizeof err);
	free(text);
	if (!json)
		fail("%s: %s", in, err);
	if (repaired || cut)
		fprintf(stderr, TOOL ": %s: the trace was cut short; read up to its last "
			"complete event\n", in);
	bool to_stdout = !strcmp(out, "-");
	int fd = to_stdout ? 1 : open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("cannot write %s: %s", out, strerror(errno));
	int rc = page_write(fd, json, clean_len);
	if (!to_stdout && close(fd) < 0 && rc == 0)
		rc = -errno;
	free(json);
	if (rc < 0) {
		if (!to_stdout)
			unlink(out);
		fail("cannot write %s: %s", out, strerror(-rc));
	}
	return 0;
}
