/*
 * error.c - names for every code herd returns: a sentence (herd_strerror) and
 * the constant's own name (herd_errname). herd's own codes lie below
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
		return "the task's scope was canceled";
	case HERD_ETIMEDOUT:
		return "the deadline passed";
	case HERD_ECLOSED:
		return "closed";
	case HERD_EDEADLOCK:
		return "all tasks were asleep: deadlock";
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

/* errno names, in the order of their values on Linux; where two names share
 * a value (EWOULDBLOCK and EAGAIN), the first listed wins. Each is guarded,
 * so the table builds on any system. */
#define NAME(e) {e, #e}
static const struct {
	int value;
	const char *name;
} errno_names[] = {
#ifdef EPERM
	NAME(EPERM),
#endif
#ifdef ENOENT
	NAME(ENOENT),
#endif
#ifdef ESRCH
	NAME(ESRCH),
#endif
#ifdef EINTR
	NAME(EINTR),
#endif
#ifdef EIO
	NAME(EIO),
#endif
#ifdef ENXIO
	NAME(ENXIO),
#endif
#ifdef E2BIG
	NAME(E2BIG),
#endif
#ifdef ENOEXEC
	NAME(ENOEXEC),
#endif
#ifdef EBADF
	NAME(EBADF),
#endif
#ifdef ECHILD
	NAME(ECHILD),
#endif
#ifdef EAGAIN
	NAME(EAGAIN),
#endif
#ifdef ENOMEM
	NAME(ENOMEM),
#endif
#ifdef EACCES
	NAME(EACCES),
#endif
#ifdef EFAULT
	NAME(EFAULT),
#endif
#ifdef ENOTBLK
	NAME(ENOTBLK),
#endif
#ifdef EBUSY
	NAME(EBUSY),
#endif
#ifdef EEXIST
	NAME(EEXIST),
#endif
#ifdef EXDEV
	NAME(EXDEV),
#endif
#ifdef ENODEV
	NAME(ENODEV),
#endif
#ifdef ENOTDIR
	NAME(ENOTDIR),
#endif
#ifdef EISDIR
	NAME(EISDIR),
#endif
#ifdef EINVAL
	NAME(EINVAL),
#endif
#ifdef ENFILE
	NAME(ENFILE),
#endif
#ifdef EMFILE
	NAME(EMFILE),
#endif
#ifdef ENOTTY
	NAME(ENOTTY),
#endif
#ifdef ETXTBSY
	NAME(ETXTBSY),
#endif
#ifdef EFBIG
	NAME(EFBIG),
#endif
#ifdef ENOSPC
	NAME(ENOSPC),
#endif
#ifdef ESPIPE
	NAME(ESPIPE),
#endif
#ifdef EROFS
	NAME(EROFS),
#endif
#ifdef EMLINK
	NAME(EMLINK),
#endif
#ifdef EPIPE
	NAME(EPIPE),
#endif
#ifdef EDOM
	NAME(EDOM),
#endif
#ifdef ERANGE
	NAME(ERANGE),
#endif
#ifdef EDEADLK
	NAME(EDEADLK),
#endif
#ifdef ENAMETOOLONG
	NAME(ENAMETOOLONG),
#endif
#ifdef ENOLCK
	NAME(ENOLCK),
#endif
#ifdef ENOSYS
	NAME(ENOSYS),
#endif
#ifdef ENOTEMPTY
	NAME(ENOTEMPTY),
#endif
#ifdef ELOOP
	NAME(ELOOP),
#endif
#ifdef ENOMSG
	NAME(ENOMSG),
#endif
#ifdef EIDRM
	NAME(EIDRM),
#endif
#ifdef ECHRNG
	NAME(ECHRNG),
#endif
#ifdef EL2NSYNC
	NAME(EL2NSYNC),
#endif
#ifdef EL3HLT
	NAME(EL3HLT),
#endif
#ifdef EL3RST
	NAME(EL3RST),
#endif
#ifdef ELNRNG
	NAME(ELNRNG),
#endif
#ifdef EUNATCH
	NAME(EUNATCH),
#endif
#ifdef ENOCSI
	NAME(ENOCSI),
#endif
#ifdef EL2HLT
	NAME(EL2HLT),
#endif
#ifdef EBADE
	NAME(EBADE),
#endif
#ifdef EBADR
	NAME(EBADR),
#endif
#ifdef EXFULL
	NAME(EXFULL),
#endif
#ifdef ENOANO
	NAME(ENOANO),
#endif
#ifdef EBADRQC
	NAME(EBADRQC),
#endif
#ifdef EBADSLT
	NAME(EBADSLT),
#endif
#ifdef EBFONT
	NAME(EBFONT),
#endif
#ifdef ENOSTR
	NAME(ENOSTR),
#endif
#ifdef ENODATA
	NAME(ENODATA),
#endif
#ifdef ETIME
	NAME(ETIME),
#endif
#ifdef ENOSR
	NAME(ENOSR),
#endif
#ifdef ENONET
	NAME(ENONET),
#endif
#ifdef ENOPKG
	NAME(ENOPKG),
#endif
#ifdef EREMOTE
	NAME(EREMOTE),
#endif
#ifdef ENOLINK
	NAME(ENOLINK),
#endif
#ifdef EADV
	NAME(EADV),
#endif
#ifdef ESRMNT
	NAME(ESRMNT),
#endif
#ifdef ECOMM
	NAME(ECOMM),
#endif
#ifdef EPROTO
	NAME(EPROTO),
#endif
#ifdef EMULTIHOP
	NAME(EMULTIHOP),
#endif
#ifdef EDOTDOT
	NAME(EDOTDOT),
#endif
#ifdef EBADMSG
	NAME(EBADMSG),
#endif
#ifdef EOVERFLOW
	NAME(EOVERFLOW),
#endif
#ifdef ENOTUNIQ
	NAME(ENOTUNIQ),
#endif
#ifdef EBADFD
	NAME(EBADFD),
#endif
#ifdef EREMCHG
	NAME(EREMCHG),
#endif
#ifdef ELIBACC
	NAME(ELIBACC),
#endif
#ifdef ELIBBAD
	NAME(ELIBBAD),
#endif
#ifdef ELIBSCN
	NAME(ELIBSCN),
#endif
#ifdef ELIBMAX
	NAME(ELIBMAX),
#endif
#ifdef ELIBEXEC
	NAME(ELIBEXEC),
#endif
#ifdef EILSEQ
	NAME(EILSEQ),
#endif
#ifdef ERESTART
	NAME(ERESTART),
#endif
#ifdef ESTRPIPE
	NAME(ESTRPIPE),
#endif
#ifdef EUSERS
	NAME(EUSERS),
#endif
#ifdef ENOTSOCK
	NAME(ENOTSOCK),
#endif
#ifdef EDESTADDRREQ
	NAME(EDESTADDRREQ),
#endif
#ifdef EMSGSIZE
	NAME(EMSGSIZE),
#endif
#ifdef EPROTOTYPE
	NAME(EPROTOTYPE),
#endif
#ifdef ENOPROTOOPT
	NAME(ENOPROTOOPT),
#endif
#ifdef EPROTONOSUPPORT
	NAME(EPROTONOSUPPORT),
#endif
#ifdef ESOCKTNOSUPPORT
	NAME(ESOCKTNOSUPPORT),
#endif
#ifdef EOPNOTSUPP
	NAME(EOPNOTSUPP),
#endif
#ifdef EPFNOSUPPORT
	NAME(EPFNOSUPPORT),
#endif
#ifdef EAFNOSUPPORT
	NAME(EAFNOSUPPORT),
#endif
#ifdef EADDRINUSE
	NAME(EADDRINUSE),
#endif
#ifdef EADDRNOTAVAIL
	NAME(EADDRNOTAVAIL),
#endif
#ifdef ENETDOWN
	NAME(ENETDOWN),
#endif
#ifdef ENETUNREACH
	NAME(ENETUNREACH),
#endif
#ifdef ENETRESET
	NAME(ENETRESET),
#endif
#ifdef ECONNABORTED
	NAME(ECONNABORTED),
#endif
#ifdef ECONNRESET
	NAME(ECONNRESET),
#endif
#ifdef ENOBUFS
	NAME(ENOBUFS),
#endif
#ifdef EISCONN
	NAME(EISCONN),
#endif
#ifdef ENOTCONN
	NAME(ENOTCONN),
#endif
#ifdef ESHUTDOWN
	NAME(ESHUTDOWN),
#endif
#ifdef ETOOMANYREFS
	NAME(ETOOMANYREFS),
#endif
#ifdef ETIMEDOUT
	NAME(ETIMEDOUT),
#endif
#ifdef ECONNREFUSED
	NAME(ECONNREFUSED),
#endif
#ifdef EHOSTDOWN
	NAME(EHOSTDOWN),
#endif
#ifdef EHOSTUNREACH
	NAME(EHOSTUNREACH),
#endif
#ifdef EALREADY
	NAME(EALREADY),
#endif
#ifdef EINPROGRESS
	NAME(EINPROGRESS),
#endif
#ifdef ESTALE
	NAME(ESTALE),
#endif
#ifdef EUCLEAN
	NAME(EUCLEAN),
#endif
#ifdef ENOTNAM
	NAME(ENOTNAM),
#endif
#ifdef ENAVAIL
	NAME(ENAVAIL),
#endif
#ifdef EISNAM
	NAME(EISNAM),
#endif
#ifdef EREMOTEIO
	NAME(EREMOTEIO),
#endif
#ifdef EDQUOT
	NAME(EDQUOT),
#endif
#ifdef ENOMEDIUM
	NAME(ENOMEDIUM),
#endif
#ifdef EMEDIUMTYPE
	NAME(EMEDIUMTYPE),
#endif
#ifdef ECANCELED
	NAME(ECANCELED),
#endif
#ifdef ENOKEY
	NAME(ENOKEY),
#endif
#ifdef EKEYEXPIRED
	NAME(EKEYEXPIRED),
#endif
#ifdef EKEYREVOKED
	NAME(EKEYREVOKED),
#endif
#ifdef EKEYREJECTED
	NAME(EKEYREJECTED),
#endif
#ifdef EOWNERDEAD
	NAME(EOWNERDEAD),
#endif
#ifdef ENOTRECOVERABLE
	NAME(ENOTRECOVERABLE),
#endif
#ifdef ERFKILL
	NAME(ERFKILL),
#endif
#ifdef EHWPOISON
	NAME(EHWPOISON),
#endif
#ifdef ENOTSUP
	NAME(ENOTSUP),
#endif
#ifdef EWOULDBLOCK
	NAME(EWOULDBLOCK),
#endif
#ifdef EDEADLOCK
	NAME(EDEADLOCK),
#endif
};
#undef NAME

const char *herd_errname(int code)
{
	switch (code) {
	case 0:
		return "0";
	case HERD_ECANCELED:
		return "HERD_ECANCELED";
	case HERD_ETIMEDOUT:
		return "HERD_ETIMEDOUT";
	case HERD_ECLOSED:
		return "HERD_ECLOSED";
	case HERD_EDEADLOCK:
		return "HERD_EDEADLOCK";
	}
	/* Only a negated errno is looked up: -INT_MIN would overflow. */
	bool errno_like = code < 0 && code > -ERRNO_MAX;
	for (size_t i = 0; errno_like && i < sizeof errno_names / sizeof errno_names[0]; i++)
		if (errno_names[i].value == -code)
			return errno_names[i].name;
	return "UNKNOWN";
}
