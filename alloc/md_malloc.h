/*
 * md_malloc.h: the malloc family on memdescs.
 *
 * Small requests (up to MD_SMALL_MAX bytes) are objects of size-class slab caches
 * (alloc/slab.h) with the magazine layer as the per-thread fast path; larger ones are
 * folios of exactly the pages they need (memdesc/memdesc.h). free() finds the owner of
 * a pointer with pfn_to_memdesc() and dispatches on the memdesc type. The design is
 * written at the top of alloc/md_malloc.c (classes, free dispatch, error reports) and
 * alloc/md_env.c (first call, options, fork, threads, statistics).
 *
 * The functions are prefixed md_ so that a program can link them beside the C
 * library's malloc. libmemdesc-malloc.so exports the standard names as well (malloc,
 * free, ...) for LD_PRELOAD; tools/memdesc-run runs a program with it.
 *
 * Semantics are glibc's: every block is aligned to 16 bytes, md_malloc(0) returns a
 * unique pointer, md_free(NULL) does nothing, md_realloc(p, 0) frees p and returns
 * NULL, every failure sets errno to ENOMEM (EINVAL for a bad alignment where glibc
 * sets it), md_posix_memalign returns the error instead of setting errno.
 *
 * Bad frees: a pointer that no memdesc owns, a pointer into the middle of a block, and
 * a double free are reported on stderr in one line ("memdesc: free(0x...): double
 * free ...") written with write(2), then the process aborts (option abort=0: the call
 * does nothing instead). What is and is not detected is listed in md_malloc.c.
 *
 * Options: one environment variable, MEMDESC_OPTIONS, comma-separated key=value, read
 * once at the first call without allocating. Unknown keys are ignored (they may belong
 * to another layer). The table (MD_OPTIONS in md_malloc_impl.h) is:
 *
 *   stats=0|1     print statistics on stderr at exit (default 0)
 *   limit=SIZE    most bytes committed from the OS, suffix K/M/G/T (default 64G; read
 *                 by memdesc/phys.c, listed here so that it is documented in one place)
 *   abort=0|1     abort after reporting a bad free (default 1)
 *   junk=0|1      fill new blocks with 0xa5 and freed blocks with 0x5a (default 0)
 *   verbose=0|1   report option values and init failures on stderr (default 0)
 *   guard=0|1     a canary after every block, checked on free and realloc (default 0)
 *   thp=0|1|2     huge pages for the heap: 0 as the kernel's setting says, 1 advised
 *                 (MADV_HUGEPAGE), 2 refused (MADV_NOHUGEPAGE) (default 0; read by
 *                 memdesc/phys.c, section 2)
 */
#ifndef MEMDESC_MD_MALLOC_H
#define MEMDESC_MD_MALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MD_API __attribute__((visibility("default")))
#define MD_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define MD_API
#define MD_MALLOC_ATTR
#endif

/* Largest request served by a size class; larger ones are folios. */
#define MD_SMALL_MAX ((size_t)32768)

/** md_malloc() - @size bytes, 16-byte aligned. Return: the block, or NULL (ENOMEM). */
MD_API void *md_malloc(size_t size) MD_MALLOC_ATTR;
/** md_free() - free a block; NULL does nothing; a bad pointer is reported (above). */
MD_API void md_free(void *ptr);
/** md_calloc() - @n * @size zeroed bytes. Return: NULL and ENOMEM on overflow too. */
MD_API void *md_calloc(size_t n, size_t size) MD_MALLOC_ATTR;
/**
 * md_realloc() - resize a block, keeping min(old, new) bytes. A small block stays in
 * place while its size class fits and is not more than twice too big; a large one
 * shrinks in place while at least half is used, and grows by moving to 1/8 more
 * pages than asked (amortised copying).
 * Return: the block (maybe moved); NULL with errno ENOMEM and @ptr untouched; NULL
 * after freeing @ptr when @size is 0 (glibc).
 */
MD_API void *md_realloc(void *ptr, size_t size) MD_MALLOC_ATTR;
/** md_reallocarray() - md_realloc(@ptr, @n * @size) with an overflow check (ENOMEM). */
MD_API void *md_reallocarray(void *ptr, size_t n, size_t size) MD_MALLOC_ATTR;
/**
 * md_aligned_alloc() - @size bytes aligned to @align, which must be a power of two
 * (glibc 2.38 rules: otherwise NULL and EINVAL); @size need not be a multiple.
 */
MD_API void *md_aligned_alloc(size_t align, size_t size) MD_MALLOC_ATTR;
/**
 * md_posix_memalign() - @align a power of two multiple of sizeof(void *).
 * Return: 0 and *@memptr set; EINVAL (bad @align) or ENOMEM, *@memptr untouched.
 */
MD_API int md_posix_memalign(void **memptr, size_t align, size_t size);
/** md_memalign() - like glibc: an @align that is not a power of two is rounded up. */
MD_API void *md_memalign(size_t align, size_t size) MD_MALLOC_ATTR;
/** md_valloc() - @size bytes aligned to a page. */
MD_API void *md_valloc(size_t size) MD_MALLOC_ATTR;
/** md_pvalloc() - @size rounded up to whole pages (at least one), page-aligned. */
MD_API void *md_pvalloc(size_t size) MD_MALLOC_ATTR;
/** md_malloc_usable_size() - bytes usable in the block (>= requested); 0 for NULL. */
MD_API size_t md_malloc_usable_size(void *ptr);
/**
 * md_free_sized() - free a block of @size bytes (C23). A @size larger than the
 * block's usable size is reported as a bad free.
 */
MD_API void md_free_sized(void *ptr, size_t size);
/** md_free_aligned_sized() - free a block from md_aligned_alloc(@align, @size) (C23). */
MD_API void md_free_aligned_sized(void *ptr, size_t align, size_t size);

/**
 * md_malloc_trim() - run the deferred frees queued so far (slabs and page-map nodes
 * waiting for an RCU grace period), give back what the calling thread caches
 * (magazines, page cache), reap every cache twice (all empty slabs and unused
 * magazines go back), return every free page to the OS, and free the page-map nodes
 * kept for free pages (then reap and return pages once more). @pad is ignored
 * (glibc's malloc_trim argument).
 * Context: takes the allocator's locks; waits for a grace period, unless called inside
 * an urcu-bp read-side section (then deferred frees stay queued); O(caches + free
 * ranges).
 * Return: 1 (memory may have been released), as glibc.
 */
MD_API int md_malloc_trim(size_t pad);

/**
 * md_malloc_verify() - check the heap's invariants: memdesc_verify() (the page map,
 * folios, slabs, arenas and counters), the slabs of every size class
 * (kmem_cache_verify) and the cache of freed large blocks. What is broken is printed
 * on stderr.
 * Context: no allocation or free may run meanwhile in any thread (a quiescent
 * moment); waits for pending RCU frees (md_rcu_barrier), so not inside an md_ call.
 * O(slabs + descriptors + cached blocks).
 * Return: 0, or -EINVAL if anything is broken.
 */
MD_API int md_malloc_verify(void);

/*
 * The malloc layer's own counters, declared once (X-macro): the struct, the collection
 * and the printer are generated from this list. Bytes.
 */
#define MD_MALLOC_STATS(X)                                                             \
	X(small_in_use,     "size-class blocks allocated from slabs (incl. magazines)") \
	X(small_in_depot,   "of which in depot magazines")                             \
	X(small_slab_bytes, "pages of size-class slabs")                               \
	X(large_in_use,     "pages of large blocks (folios), cached ones included")   \
	X(large_cached,     "of which freed blocks kept for reuse")

struct md_malloc_stats {
#define MD_MALLOC_STATS_FIELD(name, doc) size_t name;
	MD_MALLOC_STATS(MD_MALLOC_STATS_FIELD)
#undef MD_MALLOC_STATS_FIELD
};

/**
 * md_malloc_stats() - fill @st. Context: takes each class cache's locks briefly (a
 * snapshot, not atomic across classes).
 */
MD_API void md_malloc_stats(struct md_malloc_stats *st);

/*
 * Resident bytes by owner, measured (md_malloc_resident): what the stats' bytes_resident
 * estimates, split by who holds the pages.
 */
#define MD_MALLOC_RESIDENT(X)                                                          \
	X(resident_small, "resident pages of size-class slabs (mincore)")              \
	X(resident_large, "resident pages of large blocks, cached ones included")      \
	X(resident_free,  "resident free pages (kept for reuse, not yet purged)")      \
	X(resident_meta,  "resident pages of the allocator's own slabs (descriptors, " \
			  "page-map nodes, magazines)")

struct md_malloc_resident {
#define MD_MALLOC_RESIDENT_FIELD(name, doc) size_t name;
	MD_MALLOC_RESIDENT(MD_MALLOC_RESIDENT_FIELD)
#undef MD_MALLOC_RESIDENT_FIELD
};

/**
 * md_malloc_resident() - fill @r with the bytes of the heap's pages that are in memory
 * now, by owner. Measured with mincore(2) (memdesc_resident_scan(): one call per 8 MiB
 * of the heap's address space ever used, then a page-map lookup per resident page),
 * so it costs far more than md_malloc_stats(): for reports, not for a loop.
 * Return: 0, or a negative errno (@r then holds what was counted before the error).
 */
MD_API int md_malloc_resident(struct md_malloc_resident *r);

/**
 * md_malloc_stats_print() - write the statistics (memory in use and resident, pages
 * by memdesc type, metadata bytes by kind, per-size-class counts) to file descriptor
 * @fd with write(2); no allocation. The exit report of stats=1 is this on fd 2.
 */
MD_API void md_malloc_stats_print(int fd);

/**
 * md_malloc_error_hook() - install a function called with each bad-free report (the
 * line, without its newline) before the process aborts; NULL restores the default
 * (write to stderr). The hook must not call md_malloc/md_free.
 */
typedef void (*md_error_fn)(const char *msg, size_t len);
MD_API void md_malloc_error_hook(md_error_fn fn);

#ifdef __cplusplus
}
#endif

#endif /* MEMDESC_MD_MALLOC_H */
