/*
 * symbol-elf.c - names code addresses from the ELF symbol tables of the
 * loaded objects, for the task dump and the deadlock report: static
 * functions included, without debug information or an external tool.
 *
 * dl_iterate_phdr finds the object whose loaded segment holds the address,
 * and its load bias (dlpi_addr: 0 for a fixed-address executable, where
 * symbol values are addresses already). The object's file is mapped
 * read-only the first time one of its addresses is asked for, and its
 * function symbols (.symtab, or .dynsym when the file is stripped) are
 * sorted once into a table searched by bisection. The main program is
 * reopened through /proc/self/exe; the vDSO has no file and is named
 * "[vdso]" with the address form (no task parks inside it).
 *
 * Every offset read from a file is bounds-checked against the mapping: a
 * truncated or corrupt file gives the address form, never a fault. Memory
 * is allocated once per object, in proportion to its file (one entry per
 * function symbol); when memory runs out the address form is given and
 * nothing is cached, so a later call tries again.
 *
 * The cache lives as long as the process (Valgrind calls it "still
 * reachable"): the dump may run at any time, even while the runtime ends,
 * and the mappings cost address space, not memory. An object unloaded
 * with dlclose keeps its entry; one loaded later at the same address with
 * the same name would be named from the old file (herd loads nothing).
 *
 * Lock: cache_lock protects the list of objects and each object's fields;
 * it is a leaf (nothing is locked under it), held while a file is mapped.
 *
 * Other platforms: the BSDs have dl_iterate_phdr and ELF, and can use this
 * file (/proc/self/exe becomes the KERN_PROC_PATHNAME sysctl). macOS needs
 * a Mach-O twin: _dyld_image_count / _dyld_get_image_header and
 * _dyld_get_image_vmaddr_slide in place of dl_iterate_phdr, and the
 * LC_SYMTAB load command's nlist_64 table in place of .symtab (sizes are
 * not stored there: a symbol ends where the next one starts).
 */
#include "os/os.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Only the native class: a process loads no other. */
#if UINTPTR_MAX == UINT64_MAX
#define NATIVE_CLASS ELFCLASS64
#else
#define NATIVE_CLASS ELFCLASS32
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif

/* A function symbol of an object: [addr, addr + size) relative to its
 * load bias, and its name's offset in the string table. */
struct func {
	uintptr_t addr;
	uintptr_t size;
	uint32_t name;
	uint32_t rank;  /* for aliases at one address: lower is preferred */
};

/* A loaded object, found by its load bias and name. */
struct object {
	struct object *next;
	uintptr_t bias;
	char *path;            /* dlpi_name (malloc'd); "" for the program */
	char *module;          /* the name shown: a basename (malloc'd) */
	bool failed;           /* no usable symbols: the address form */
	void *map;
	size_t len;
	const char *strs;      /* the symbols' string table, in map */
	size_t strsz;
	struct func *funcs;    /* sorted by addr, then rank */
	size_t nfuncs;
};

static herd__mutex cache_lock = HERD__MUTEX_INITIALIZER(HERD__RANK_LEAF);
static struct object *cache;

/* ------------------------------------------------------------------ */
/* Reading the file                                                    */
/* ------------------------------------------------------------------ */

/* Whether [off, off + size) lies inside a file of len bytes. */
static bool inside(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

/* The section headers of the mapped file, or NULL; *n their number. */
static const ElfW(Shdr) *sections(const char *map, size_t len, size_t *n)
{
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)(const void *)map;
	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != NATIVE_CLASS ||
	    eh->e_ident[EI_DATA] != NATIVE_DATA ||
	    eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_shoff == 0 ||
	    eh->e_shoff % sizeof(uintptr_t) != 0 ||
	    !inside(len, eh->e_shoff, sizeof(ElfW(Shdr))))
		return NULL;
	const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(const void *)(map + eh->e_shoff);
	/* Past SHN_LORESERVE sections, the count is in the first header. */
	uint64_t count = eh->e_shnum ? eh->e_shnum : sh[0].sh_size;
	if (count > (len - eh->e_shoff) / sizeof(ElfW(Shdr)))
		return NULL;
	*n = (size_t)count;
	return sh;
}

/* A section's contents, if they lie in the file and are aligned to `align`. */
static const char *contents(const char *map, size_t len, const ElfW(Shdr) *s,
			    size_t align)
{
	if (s->sh_type == SHT_NOBITS || !inside(len, s->sh_offset, s->sh_size) ||
	    s->sh_offset % align != 0)
		return NULL;
	return map + s->sh_offset;
}

/* Aliases at one address: a sized symbol first, then a public name
 * (getpid before __getpid), then global before weak before local, then
 * the shortest (frexp before frexpf32x). name has `room` bytes. */
static uint32_t func_rank(const ElfW(Sym) *sym, const char *name, size_t room)
{
	unsigned bind = ELF64_ST_BIND(sym->st_info);
	uint32_t r = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
	if (name[0] == '_')
		r += 3;
	if (sym->st_size == 0)
		r += 6;
	size_t len = strnlen(name, room);
	return r << 16 | (uint32_t)(len < 0xffff ? len : 0xffff);
}

/* Whether sym is a named function defined in its object. */
static bool is_func(const ElfW(Sym) *sym, size_t strsz)
{
	unsigned type = ELF64_ST_TYPE(sym->st_info);
	return (type == STT_FUNC || type == STT_GNU_IFUNC) &&
	       sym->st_shndx != SHN_UNDEF && sym->st_value != 0 &&
	       sym->st_name != 0 && sym->st_name < strsz;
}

static int func_cmp(const void *a, const void *b)
{
	const struct func *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->name < y->name ? -1 : x->name > y->name;
}

/* Fills o->funcs from the symbol table `symtab` of the mapped file: 0, or
 * -ENOMEM, or -EINVAL when the table is unusable. */
static int load_funcs(struct object *o, const ElfW(Shdr) *sh, size_t nsh,
		      const ElfW(Shdr) *symtab)
{
	const char *map = o->map;
	if (symtab->sh_link == 0 || symtab->sh_link >= nsh ||
	    sh[symtab->sh_link].sh_type != SHT_STRTAB ||
	    (symtab->sh_entsize && symtab->sh_entsize != sizeof(ElfW(Sym))))
		return -EINVAL;
	const ElfW(Sym) *syms = (const ElfW(Sym) *)(const void *)
		contents(map, o->len, symtab, sizeof(uintptr_t));
	const char *strs = contents(map, o->len, &sh[symtab->sh_link], 1);
	if (!syms || !strs)
		return -EINVAL;
	size_t nsyms = symtab->sh_size / sizeof(ElfW(Sym));
	size_t strsz = sh[symtab->sh_link].sh_size;

	size_t n = 0;
	for (size_t i = 0; i < nsyms; i++)
		n += is_func(&syms[i], strsz);
	if (n == 0)
		return -EINVAL;
	/* At most one per symbol of the file: bounded by its size. */
	struct func *f = malloc(n * sizeof(*f));
	if (!f)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < nsyms && k < n; i++) {
		const ElfW(Sym) *s = &syms[i];
		if (is_func(s, strsz))
			f[k++] = (struct func){ .addr = s->st_value, .size = s->st_size,
						.name = s->st_name,
						.rank = func_rank(s, strs + s->st_name,
								  strsz - s->st_name) };
	}
	qsort(f, k, sizeof(*f), func_cmp);
	o->funcs = f;
	o->nfuncs = k;
	o->strs = strs;
	o->strsz = strsz;
	return 0;
}

/* Maps the object's file and reads its function symbols: 0, -ENOMEM, or
 * another -errno (the object is then marked failed). */
static int load(struct object *o)
{
	const char *path = o->path[0] ? o->path : "/proc/self/exe";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	if (rc == 0 && (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(ElfW(Ehdr)) ||
			(uint64_t)st.st_size != (size_t)st.st_size))
		rc = -EINVAL;
	if (rc == 0) {
		o->len = (size_t)st.st_size;
		o->map = mmap(NULL, o->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (o->map == MAP_FAILED) {
			rc = -errno;
			o->map = NULL;
		}
	}
	close(fd);
	if (rc < 0)
		return rc;

	size_t nsh = 0;
	const ElfW(Shdr) *sh = sections(o->map, o->len, &nsh);
	const ElfW(Shdr) *symtab = NULL, *dynsym = NULL;
	for (size_t i = 0; sh && i < nsh; i++) {
		if (sh[i].sh_type == SHT_SYMTAB && !symtab)
			symtab = &sh[i];
		else if (sh[i].sh_type == SHT_DYNSYM && !dynsym)
			dynsym = &sh[i];
	}
	rc = -EINVAL;
	if (symtab)
		rc = load_funcs(o, sh, nsh, symtab);
	if (rc == -EINVAL && dynsym)
		rc = load_funcs(o, sh, nsh, dynsym);
	if (rc < 0) {
		munmap(o->map, o->len);
		o->map = NULL;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Finding the object                                                  */
/* ------------------------------------------------------------------ */

struct find {
	uintptr_t pc;
	uintptr_t bias;
	const char *name;      /* dlpi_name; NULL if no object holds pc */
	bool program, vdso;
};

static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct find *f = arg;
	for (size_t i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type != PT_LOAD || f->pc < start || f->pc - start >= ph->p_memsz)
			continue;
		uintptr_t phdr = (uintptr_t)info->dlpi_phdr;
		uintptr_t vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
		f->bias = info->dlpi_addr;
		f->name = info->dlpi_name ? info->dlpi_name : "";
		/* Told by their headers' addresses, not by names, which differ
		 * between C libraries. */
		f->program = phdr == (uintptr_t)getauxval(AT_PHDR);
		f->vdso = vdso && phdr >= vdso && phdr - vdso < 4096;
		return 1;
	}
	return 0;
}

/* The name shown for an object: its file's basename (the program's from
 * /proc/self/exe's link, else from argv[0]); not allocated. */
static const char *basename_of(const char *path, bool program)
{
	if (program || !path[0])
		return program_invocation_short_name;
	const char *slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}

/* The same, malloc'd; NULL when memory ran out. */
static char *module_name(const char *path, bool program)
{
	if (program) {
		char *link = malloc(PATH_MAX);
		ssize_t n = link ? readlink("/proc/self/exe", link, PATH_MAX) : -1;
		if (n > 0 && n < PATH_MAX) {
			link[n] = '\0';
			char *name = strdup(basename_of(link, false));
			free(link);
			return name;
		}
		free(link);
	}
	return strdup(basename_of(path, program));
}

/* The cached object, or a new one loaded now; NULL when memory ran out.
 * cache_lock held. */
static struct object *object_get(const struct find *f)
{
	const char *path = f->program ? "" : f->name;
	for (struct object *o = cache; o; o = o->next)
		if (o->bias == f->bias && strcmp(o->path, path) == 0)
			return o;
	struct object *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->bias = f->bias;
	o->path = strdup(path);
	o->module = module_name(path, f->program);
	int rc = -ENOMEM;
	if (o->path && o->module)
		rc = load(o);
	if (rc == -ENOMEM) {
		free(o->path);
		free(o->module);
		free(o);
		return NULL;
	}
	o->failed = rc < 0;
	o->next = cache;
	cache = o;
	return o;
}

/* The function of o holding off, or NULL. cache_lock held. */
static const struct func *func_at(const struct object *o, uintptr_t off)
{
	size_t lo = 0, hi = o->nfuncs;
	while (lo < hi) {      /* the first entry past off */
		size_t mid = lo + (hi - lo) / 2;
		if (o->funcs[mid].addr <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	/* The preferred alias: the first of its address's run. */
	uintptr_t addr = o->funcs[lo - 1].addr;
	while (lo > 1 && o->funcs[lo - 2].addr == addr)
		lo--;
	const struct func *f = &o->funcs[lo - 1];
	if (f->size == 0 || off - f->addr >= f->size)
		return NULL;
	return f;
}

const char *herd__symbolize(uintptr_t pc, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	struct find f = { .pc = pc };
	dl_iterate_phdr(find_object, &f);
	if (!f.name) {
		snprintf(buf, size, "0x%" PRIxPTR " (?)", pc);
		return buf;
	}
	uintptr_t off = pc - f.bias;
	if (f.vdso) {
		snprintf(buf, size, "0x%" PRIxPTR " ([vdso]+0x%" PRIxPTR ")", pc, off);
		return buf;
	}

	herd__mutex_lock(&cache_lock);
	const struct object *o = object_get(&f);
	const struct func *fn = o && !o->failed ? func_at(o, off) : NULL;
	const char *name = fn ? o->strs + fn->name : NULL;
	/* A name must end inside its table. */
	if (name && !memchr(name, '\0', o->strsz - fn->name))
		name = NULL;
	if (name)
		snprintf(buf, size, "%s+0x%" PRIxPTR " (%s)", name, off - fn->addr,
			 o->module);
	else
		snprintf(buf, size, "0x%" PRIxPTR " (%s+0x%" PRIxPTR ")", pc,
			 o ? o->module : basename_of(f.name, f.program), off);
	herd__mutex_unlock(&cache_lock);
	return buf;
}
