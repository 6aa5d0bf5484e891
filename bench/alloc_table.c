/*
 * alloc_table.c: the allocators the malloc benchmarks compare (see alloc_table.h).
 *
 * Each entry adapts one allocator's own API to the same seven calls. The adapters do
 * only what the API makes necessary (jemalloc's mallocx/rallocx/dallocx take no NULL
 * and no zero size) so that every allocator pays the same one indirect call.
 */
#include "alloc_table.h"

#include "md_malloc.h"

#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if MDB_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif
#if MDB_HAVE_MIMALLOC
#include <mimalloc.h>
#endif

/* glibc's allocator under its own names: not subject to interposition. */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);

/* ---- memdesc ------------------------------------------------------------------ */

static void md_trim(void)
{
	md_malloc_trim(0);
}

/* ---- glibc -------------------------------------------------------------------- */

static void glibc_free_sized(void *p, size_t size)
{
	(void)size;
	__libc_free(p);
}

static void glibc_trim(void)
{
	malloc_trim(0);
}

/* ---- jemalloc ----------------------------------------------------------------- */

#if MDB_HAVE_JEMALLOC
static void *je_malloc_(size_t size)
{
	return mallocx(size ? size : 1, 0);
}

static void je_free_(void *p)
{
	if (p)
		dallocx(p, 0);
}

static void je_free_sized_(void *p, size_t size)
{
	if (p)
		sdallocx(p, size ? size : 1, 0);
}

static void *je_calloc_(size_t n, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes))
		return NULL;
	return mallocx(bytes ? bytes : 1, MALLOCX_ZERO);
}

static void *je_realloc_(void *p, size_t size)
{
	if (p == NULL)
		return mallocx(size ? size : 1, 0);
	if (size == 0) {
		dallocx(p, 0);
		return NULL;
	}
	return rallocx(p, size, 0);
}

static void *je_aligned_alloc_(size_t align, size_t size)
{
	return mallocx(size ? size : 1, MALLOCX_ALIGN(align));
}

static void je_trim_(void)
{
	/* Flush this thread's cache, then purge every arena (MALLCTL_ARENAS_ALL). */
	mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
}
#endif

/* ---- mimalloc ----------------------------------------------------------------- */

#if MDB_HAVE_MIMALLOC
static void *mi_aligned_alloc_(size_t align, size_t size)
{
	return mi_malloc_aligned(size, align);
}

static void mi_trim_(void)
{
	mi_collect(true);
}
#endif

const struct mdb_alloc mdb_allocs[MDB_NR_ALLOCS] = {
	[MDB_MEMDESC] = { "memdesc", md_malloc, md_free, md_free_sized, md_calloc,
			  md_realloc, md_aligned_alloc, md_trim },
	[MDB_GLIBC] = { "glibc", __libc_malloc, __libc_free, glibc_free_sized,
			__libc_calloc, __libc_realloc, __libc_memalign, glibc_trim },
#if MDB_HAVE_JEMALLOC
	[MDB_JEMALLOC] = { "jemalloc", je_malloc_, je_free_, je_free_sized_, je_calloc_,
			   je_realloc_, je_aligned_alloc_, je_trim_ },
#else
	[MDB_JEMALLOC] = { "jemalloc", NULL, NULL, NULL, NULL, NULL, NULL, NULL },
#endif
#if MDB_HAVE_MIMALLOC
	[MDB_MIMALLOC] = { "mimalloc", mi_malloc, mi_free, mi_free_size, mi_calloc,
			   mi_realloc, mi_aligned_alloc_, mi_trim_ },
#else
	[MDB_MIMALLOC] = { "mimalloc", NULL, NULL, NULL, NULL, NULL, NULL, NULL },
#endif
};

const struct mdb_alloc *mdb_alloc_get(long i)
{
	if (i < 0 || i >= MDB_NR_ALLOCS)
		return NULL;
	return &mdb_allocs[i];
}

int mdb_alloc_find(const char *name)
{
	for (int i = 0; i < MDB_NR_ALLOCS; i++)
		if (strcmp(mdb_allocs[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * Whether @sym, as the program binds it, is the one of @lib (when @lib is loaded at all).
 * Prints what it found when not.
 */
static bool bound_to(const char *sym, const char *lib)
{
	void *h = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
	void *ours = dlsym(RTLD_DEFAULT, sym), *theirs;
	Dl_info info;
	bool ok;

	if (h == NULL)
		return true;
	theirs = dlsym(h, sym);
	ok = ours == theirs;
	if (!ok)
		fprintf(stderr,
			"memdesc-bench: %s resolves to %s, not to %s: a peer allocator "
			"interposes, the comparison would be wrong\n", sym,
			ours && dladdr(ours, &info) && info.dli_fname ? info.dli_fname : "?", lib);
	dlclose(h);
	return ok;
}

bool mdb_alloc_check(void)
{
	static int verdict;	/* 0 unknown, 1 glibc's, -1 another */

	if (verdict == 0)
		verdict = bound_to("malloc", "libc.so.6") && bound_to("free", "libc.so.6") &&
				  bound_to("_Znwm", "libstdc++.so.6") &&
				  bound_to("_ZdlPv", "libstdc++.so.6")
			  ? 1
			  : -1;
	return verdict > 0;
}

size_t mdb_resident_bytes(void)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	int n;

	if (f == NULL)
		return 0;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return n == 2 ? resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}
