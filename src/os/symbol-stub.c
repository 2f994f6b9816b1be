/* TEMPORARY: replaced by symbol-elf.c at merge */
/*
 * symbol-stub.c - herd__symbolize through dladdr(3), until the ELF
 * symbolizer lands: it names only exported symbols (a program's own
 * functions need -rdynamic), and in a static program nothing at all.
 *
 * No locks: dladdr is thread-safe.
 */
#include "os/os.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

const char *herd__symbolize(uintptr_t pc, char *buf, size_t size)
{
	Dl_info di;
	if (!dladdr((void *)pc, &di)) {
		snprintf(buf, size, "0x%lx", (unsigned long)pc);
		return buf;
	}
	const char *mod = di.dli_fname ? di.dli_fname : "?";
	const char *slash = strrchr(mod, '/');
	if (slash)
		mod = slash + 1;
	if (di.dli_sname && di.dli_saddr)
		snprintf(buf, size, "%s+0x%lx (%s)", di.dli_sname,
			 (unsigned long)(pc - (uintptr_t)di.dli_saddr), mod);
	else
		snprintf(buf, size, "0x%lx (%s+0x%lx)", (unsigned long)pc, mod,
			 (unsigned long)(pc - (uintptr_t)di.dli_fbase));
	return buf;
}
