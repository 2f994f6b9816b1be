/*
 * trace-convert.c - herd_trace_convert: a HERD_TRACE file that its program
 * left in the binary form (killed before herd_run's end converted it) as
 * Chrome trace-event JSON, for herd-trace-html --json and any other tool.
 *
 * The whole input is read first (mapped when it is a regular file): the
 * converter maps each tick to the clock between the two points around it,
 * and the points are read ahead of the frames (trace-json.c). No state is
 * shared with a running runtime: callable from any thread, with or
 * without herd_run.
 */
#include "run/trace-json.h"
#include "herd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(void *ctx, const char *buf, size_t len)
{
	int fd = *(int *)ctx;
	while (len) {
		ssize_t k = write(fd, buf, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		buf += k;
		len -= (size_t)k;
	}
	return 0;
}

/* All of fd into *data (malloc'd), for what cannot be mapped. */
static int read_all(int fd, void **data, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			char *more = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
			if (!more) {
				free(buf);
				return -ENOMEM;
			}
			buf = more;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int rc = -errno;
			free(buf);
			return rc;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	*data = buf;
	*len = n;
	return 0;
}

static int convert(const void *data, size_t len, int out_fd)
{
	if (!herd__tconv_is_binary(data, len))
		return -EINVAL;
	herd__tconv *c = herd__tconv_new(write_all, &out_fd);
	if (!c)
		return -ENOMEM;
	bool cut = false;
	int rc = herd__tconv_file(c, data, len, &cut);
	if (!rc)
		rc = herd__tconv_end(c, -1, 0);
	herd__tconv_free(c);
	return rc ? rc : cut;
}

int herd_trace_convert(int in_fd, int out_fd)
{
	if (in_fd < 0 || out_fd < 0)
		return -EBADF;
	struct stat st;
	if (fstat(in_fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && st.st_size > 0 && lseek(in_fd, 0, SEEK_CUR) == 0) {
		size_t len = (size_t)st.st_size;
		void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, in_fd, 0);
		if (map != MAP_FAILED) {
			int rc = convert(map, len, out_fd);
			munmap(map, len);
			return rc;
		}
	}
	void *data = NULL;
	size_t len = 0;
	int rc = read_all(in_fd, &data, &len);
	if (rc)
		return rc;
	rc = convert(data, len, out_fd);
	free(data);
	return rc;
}
