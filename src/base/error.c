/*
 * error.c - names for every code herd returns. herd's own codes lie below
 * -10000, so they never collide with a negated errno.
 */
#include "base/base.h"

#include <string.h>

/* errno values run below this (Linux's MAX_ERRNO is 4095); herd's own
 * codes lie far below. */
#define ERRNO_MAX 4096

const char *herd_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
	case HERD_ECANCELED:
		return "the task's scope was cancelled";
	case HERD_ETIMEDOUT:
		return "the deadline passed";
	case HERD_ECLOSED:
		return "closed";
	}
	if (code < 0 && code > -ERRNO_MAX) {
		/* strerrordesc_np would be thread-safe, but musl lacks it;
		 * strerror returns static strings for known values. */
		const char *s = strerror(-code);
		if (s && *s)
			return s;
	}
	return "unknown error code";
}
