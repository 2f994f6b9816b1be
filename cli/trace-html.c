/*
 * trace-html.c - herd-trace-html IN.json OUT.html: wraps a Chrome
 * trace-event JSON file (libherd's HERD_TRACE=FILE, herd --trace, or any
 * other) in the timeline page that herd --trace-html writes, for a machine
 * with no Perfetto at hand. A trace cut short (its program was killed
 * while writing it) is read up to its last complete event, with a warning.
 * "-" reads stdin or writes stdout.
 *
 * Errors: one line on stderr, exit status 1 (2 for a usage error); a page
 * that could not be written whole is removed.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOOL "herd-trace-html"

static const char usage[] =
	"Usage: " TOOL " IN.json OUT.html\n"
	"\n"
	"Writes OUT.html, one self-contained page (no network) that draws the\n"
	"timeline of the Chrome trace-event JSON file IN.json: libherd's\n"
	"HERD_TRACE=FILE, herd --trace FILE, or any other. A trace cut short\n"
	"(its program was killed) is read up to its last complete event.\n"
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

int main(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc != 3) {
		fputs(usage, stderr);
		return 2;
	}
	const char *in = argv[1], *out = argv[2];
	size_t len, clean_len;
	char *text = read_whole(in, &len);
	char err[256];
	bool repaired;
	char *json = trace_json_clean(text, len, &clean_len, &repaired, err, sizeof err);
	free(text);
	if (!json)
		fail("%s: %s", in, err);
	if (repaired)
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
