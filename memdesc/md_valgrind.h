/*
 * md_valgrind.h: what memcheck must be told about our memory (build option
 * MEMDESC_VALGRIND; without it every macro is empty and costs nothing).
 *
 * Our frames come from one mmap (memdesc/phys.c), so without help valgrind sees a
 * single defined mapping: no use after free, no overflow, no leak inside it. With
 * MEMDESC_VALGRIND the client requests of <valgrind/memcheck.h> say:
 *   - pages: free frames are unaddressable (pages__release), frames handed out by the
 *     page allocator are addressable and undefined, or defined when they come from the
 *     page arena, whose frames read as zero (pages__get_range, FOLIO_ZEROED);
 *   - slab objects of caches made with kmem_cache_create() (the malloc size classes
 *     and user caches) are heap blocks of their object size: MALLOCLIKE when
 *     kmem_cache_alloc() returns them, FREELIKE when they are freed, unaddressable in a
 *     new slab until allocated (so the gap to the stride is a redzone);
 *   - large malloc blocks are heap blocks of their whole pages (md_malloc.c).
 * Not tracked: the allocator's own metadata (the static caches: slabs, folios,
 * XArray nodes, magazines...). Type-stable caches (KMC_TYPESAFE_BY_RCU) are not
 * tracked either: their lock-free readers may read an object after it was freed, by
 * design. A malloc block is as big as malloc_usable_size() says (its class, or its
 * pages): memcheck then agrees with realloc's in-place rule, which needs no record of
 * the requested size; an overflow is caught where it reaches the next free object or
 * page.
 *
 * The allocator reads its double-free key in a block that may be freed or hold
 * undefined bytes: md_vg_peek() reads such a word without an error report.
 */
#ifndef MEMDESC_MD_VALGRIND_H
#define MEMDESC_MD_VALGRIND_H

#include <stddef.h>
#include <stdint.h>

#ifdef MEMDESC_VALGRIND
#include <valgrind/memcheck.h>

#define MD_VG_MALLOCLIKE(p, n, zeroed) VALGRIND_MALLOCLIKE_BLOCK((p), (n), 0, (zeroed))
#define MD_VG_FREELIKE(p) VALGRIND_FREELIKE_BLOCK((p), 0)
#define MD_VG_NOACCESS(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define MD_VG_UNDEFINED(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
#define MD_VG_DEFINED(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
/* A block resized in place (realloc): new bytes undefined, a cut tail no access. */
#define MD_VG_RESIZE(p, old, new) VALGRIND_RESIZEINPLACE_BLOCK((p), (old), (new), 0)

/* *@w, read by the allocator whatever memcheck thinks of the word. */
static inline uint64_t md_vg_peek(const uint64_t *w)
{
	uint64_t v;

	VALGRIND_DISABLE_ERROR_REPORTING;
	v = *(const volatile uint64_t *)w;
	VALGRIND_ENABLE_ERROR_REPORTING;
	VALGRIND_MAKE_MEM_DEFINED(&v, sizeof(v));
	return v;
}
#else
#define MD_VG_MALLOCLIKE(p, n, zeroed) ((void)0)
#define MD_VG_FREELIKE(p) ((void)0)
#define MD_VG_NOACCESS(p, n) ((void)0)
#define MD_VG_UNDEFINED(p, n) ((void)0)
#define MD_VG_DEFINED(p, n) ((void)0)
#define MD_VG_RESIZE(p, old, new) ((void)0)

static inline uint64_t md_vg_peek(const uint64_t *w)
{
	return *w;
}
#endif

#endif /* MEMDESC_MD_VALGRIND_H */
