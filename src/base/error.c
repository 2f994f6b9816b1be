/*
 * error.c - names for every code herd returns. herd's own codes lie below
 * -10000, so they never collide with a negated errno.
 */
#include "base/base.h"

#include <string.h>

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
	if (code < 0 && code > -4096) {
		/* strerrordesc_np would be thread-safe, but musl lacks it;
		 * strerror returns static strings for known values. */
		const char *s = strerror(-code);
		if (s && *s)
			return s;
	}
	return "unknown error code";
}
