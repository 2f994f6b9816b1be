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
 * the program runs: the tool converts it with herd_trace_convert (herd.h),
 * and --json writes that JSON alone, for Perfetto or chrome://tracing.
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
#include <sys/mman.h>
#include <sys/stat.h>
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

/* All of fd from its start, malloc'd; NULL with errno set on failure. */
static char *read_fd(int fd, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return NULL;
	char *p = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	while (p && n < (size_t)st.st_size) {
		ssize_t k = read(fd, p + n, (size_t)st.st_size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			free(p);
			if (k == 0)
				errno = EIO;
			return NULL;
		}
		n += (size_t)k;
	}
	*len = n;
	return p;
}

/*
 * The trace in text (len bytes, malloc'd) converted by herd_trace_convert
 * if it is in the library's binary form: text is then freed and the JSON
 * returned, *cut set if it was cut short. A trace that is not (JSON
 * already) comes back as it is. The conversion goes through two memory
 * files, since the library's call takes descriptors.
 */
static char *from_binary(const char *in, char *text, size_t *len, bool *cut)
{
	size_t i = 0;
	while (i < *len && strchr(" \t\r\n", text[i]))
		i++;
	if (i < *len && (text[i] == '{' || text[i] == '['))
		return text; /* JSON: no copy through the memory files */
	int bin = memfd_create("herd-trace-bin", MFD_CLOEXEC);
	int json = memfd_create("herd-trace-json", MFD_CLOEXEC);
	if (bin < 0 || json < 0)
		fail("%s: cannot make a memory file: %s", in, strerror(errno));
	const char *p = text;
	for (size_t left = *len; left;) {
		ssize_t k = write(bin, p, left);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			fail("%s: %s", in, strerror(errno));
		p += k;
		left -= (size_t)k;
	}
	if (lseek(bin, 0, SEEK_SET) < 0)
		fail("%s: %s", in, strerror(errno));
	int rc = herd_trace_convert(bin, json);
	close(bin);
	if (rc == -EINVAL) { /* not the binary form */
		close(json);
		return text;
	}
	if (rc < 0)
		fail("%s: %s", in, strerror(-rc));
	*cut = rc == 1;
	char *out = read_fd(json, len);
	if (!out)
		fail("%s: %s", in, strerror(errno));
	close(json);
	free(text);
	return out;
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

static void say_cut(const char *in)
{
	fprintf(stderr, TOOL ": %s: the trace was cut short; read up to its last "
		"complete event\n", in);
}

/* Writes len bytes of json to out ("-": stdout), as they are or (`page`)
 * as the timeline's page, and frees json; a file not written whole is
 * removed, and the tool fails. */
static void write_out(const char *out, char *json, size_t len, bool page)
{
	bool to_stdout = !strcmp(out, "-");
	int fd = to_stdout ? 1 : open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("cannot write %s: %s", out, strerror(errno));
	int rc = page ? page_write(fd, json, len) : write_all(fd, json, len);
	if (!to_stdout && close(fd) < 0 && rc == 0)
		rc = -errno;
	free(json);
	if (rc < 0) {
		if (!to_stdout)
			unlink(out);
		fail("cannot write %s: %s", out, strerror(-rc));
	}
}

/* --json IN OUT: the binary form converted, and nothing else. */
static int json_only(const char *in, const char *out)
{
	size_t len;
	bool cut = false;
	char *bin = read_whole(in, &len);
	char *json = from_binary(in, bin, &len, &cut);
	if (json == bin)
		fail("%s: not a trace in herd's binary form (already JSON?)", in);
	if (cut)
		say_cut(in);
	write_out(out, json, len, false);
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
	text = from_binary(in, text, &len, &cut);
	char *json = trace_json_clean(text, len, &clean_len, &repaired, err, sizeof err);
	free(text);
	if (!json)
		fail("%s: %s", in, err);
	if (repaired || cut)
		say_cut(in);
	write_out(out, json, clean_len, true);
	return 0;
}
