/*
 * memdesc_impl.h: what the memdesc files (boot.c, phys.c, pages.c, folio.c) and the slab
 * allocator share. Not a public header: names with a double underscore are internal.
 */
#ifndef MEMDESC_MEMDESC_IMPL_H
#define MEMDESC_MEMDESC_IMPL_H

/*
 * liburcu-bp with its short names (synchronize_rcu: slab.c uses it; deferred frees go
 * through md_rcu.h, never liburcu's call_rcu) and, outside sanitizer builds, its read
 * side inline (xarray/xarray_impl.h says why not there), before xarray_rcu.h brings in
 * the unmapped header.
 */
#if !defined(MEMDESC_SANITIZER_BUILD) && !defined(_LGPL_SOURCE)
#define _LGPL_SOURCE
#endif
#include <urcu-bp.h>

#include "md_rcu.h"
#include "memdesc.h"
#include "xarray_rcu.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xarray;
struct kmem_cache;
typedef struct vmem vmem_t;

#define MD_PAGE_SHIFT MEMDESC_PAGE_SHIFT
#define MD_PAGE_SIZE MEMDESC_PAGE_SIZE

/*
 * OS chunk: the unit in which frames are committed from, and released to, the OS.
 * 2 MiB: one transparent huge page, and the natural home of a 2 MiB folio.
 */
#define MD_CHUNK_SHIFT 21
#define MD_CHUNK_PAGES ((size_t)1 << (MD_CHUNK_SHIFT - MD_PAGE_SHIFT))

/* Default limit on committed memory when the environment says nothing: 64 GiB. */
#define MD_DEFAULT_LIMIT ((size_t)64 << 30)
/* Smallest limit accepted (a few chunks: the internal caches need some). */
#define MD_MIN_LIMIT ((size_t)8 << 20)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ---- boot.c ------------------------------------------------------------------ */

/* 1 once memdesc_init() has finished (successfully or not). */
extern atomic_int md__ready;
/* 0 after a successful init, -ENOMEM otherwise (valid once md__ready). */
extern int md__init_error;

/* The cheap check of every public entry point. */
static inline int md__init_check(void)
{
	if (likely(atomic_load_explicit(&md__ready, memory_order_acquire)))
		return md__init_error;
	return memdesc_init();
}

/* Report a caller bug: "memdesc: <fmt>\n" on stderr without allocating. */
void md__report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fatal internal inconsistency (never a caller bug): report and abort. */
void md__panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---- phys.c: frames, the arenas, the OS -------------------------------------- */

struct md_phys {
	uintptr_t base;			/* first byte of frame 0 (chunk-aligned) */
	unsigned long nr_pfns;		/* frames in the reserved address space */
	size_t limit;			/* limit on committed bytes */
	unsigned int thp;		/* MD_THP_*: huge-page advice for committed chunks */
	vmem_t *os_arena;		/* pfns of the reservation, quantum one chunk */
	vmem_t *page_arena;		/* pfns, quantum one page, imports from os_arena */
	atomic_size_t committed;	/* bytes committed (chunks mapped read-write) */
	atomic_size_t chunk_maps;	/* chunks committed since start */
	atomic_size_t chunk_unmaps;	/* chunks released since start */
	atomic_size_t map_failures;	/* imports refused */
	atomic_size_t arena_pages;	/* pages allocated from page_arena right now */
	atomic_size_t purges;		/* madvise calls */
	atomic_size_t pages_purged;	/* pages given back with madvise */
	atomic_size_t moves;		/* md__frames_move() calls that moved */
	atomic_size_t pages_moved;	/* pages they moved */
	uint64_t *bitmaps;		/* the bitmap table (phys.c, section 5) */
	atomic_ulong *bitmap_flags;	/* bit n: page n of the table is committed */
	atomic_size_t bitmap_pages;	/* pages of the table committed */
};

extern struct md_phys md_phys;

/* md_phys.thp, MEMDESC_OPTIONS thp= (phys.c, section 2). */
#define MD_THP_KERNEL 0u	/* no advice: the kernel's setting decides */
#define MD_THP_ALWAYS 1u	/* MADV_HUGEPAGE */
#define MD_THP_NEVER 2u		/* MADV_NOHUGEPAGE */

/*
 * The bitmap table (phys.c, section 5): one word per MD_BITMAP_PAGES frames, for the
 * allocation bitmaps of slabs of at most 64 objects per MD_BITMAP_PAGES pages (slab.c).
 * A slab of n pages (n >= MD_BITMAP_PAGES, naturally aligned) owns the n / 4 words
 * from its first pfn's; readable and writable for every committed frame.
 */
#define MD_BITMAP_PAGES 4u

static inline uint64_t *md__bitmap_words(unsigned long pfn)
{
	return md_phys.bitmaps + pfn / MD_BITMAP_PAGES;
}

/*
 * For a slab's first frame (pfn a multiple of MD_BITMAP_PAGES), the byte offset of its
 * word in the table is its address offset from md_phys.base >> MD_BITMAP_ADDR_SHIFT.
 */
#define MD_BITMAP_ADDR_SHIFT 11
_Static_assert(((size_t)MD_BITMAP_PAGES << MD_PAGE_SHIFT) / sizeof(uint64_t) ==
	       (size_t)1 << MD_BITMAP_ADDR_SHIFT, "MD_BITMAP_ADDR_SHIFT follows the table");

/* Frames one page of the bitmap table describes: 2048 (8 MiB). */
#define MD_BITMAP_PAGE_FRAMES ((MD_PAGE_SIZE / sizeof(uint64_t)) * MD_BITMAP_PAGES)

/*
 * Whether the page of the bitmap table for frame @pfn was ever committed, that is
 * whether any of its MD_BITMAP_PAGE_FRAMES frames ever was (phys.c, section 5).
 */
bool md__frames_ever_committed(unsigned long pfn);

int md__phys_init(void);
/* Frames from the page arena (no page map). 0 / -ENOMEM. */
int md__arena_alloc(size_t npages, size_t align, unsigned long *pfnp);
/*
 * Frames from the committed spans of the page arena, as low as it finds them (phys.c,
 * section 2); never imports. 0 / -ENOMEM.
 */
int md__arena_alloc_low(size_t npages, size_t align, unsigned long *pfnp);
/* Frames [pfn, pfn + npages) if all free in the page arena. 0 / -ENOMEM. */
int md__arena_take(unsigned long pfn, size_t npages);
/* Give frames back to the page arena. Never allocates. */
void md__arena_free(unsigned long pfn, size_t npages);
/*
 * Frames [pfn + npages, + more) as a page-arena segment of their own, taken from the
 * free segment right after the allocation's segment [pfn, pfn + npages)
 * (vmem_alloc_next): md__arena_join() of the two then succeeds. 0, or -ENOMEM when
 * those pages are not free or no boundary tag can be had; nothing changed then.
 */
int md__arena_take_next(unsigned long pfn, size_t npages, size_t more);
/*
 * Join the page-arena segment [pfn + npages, + next_npages) into the segment
 * [pfn, pfn + npages) (vmem_join): 0, or -ENOMEM when they are not two adjacent
 * segments of one span; nothing changed then. Never allocates.
 */
int md__arena_join(unsigned long pfn, size_t npages, size_t next_npages);
/* Would md__arena_join() succeed now (vmem_joinable: the join's own test)? */
bool md__arena_joinable(unsigned long pfn, size_t npages, size_t next_npages);
/*
 * Split the page-arena segment [pfn, pfn + npages) in two at pfn + at (vmem_split):
 * 0, or -ENOMEM when no boundary tag can be had; nothing changed then.
 */
int md__arena_split(unsigned long pfn, size_t npages, size_t at);
/*
 * Give the contents of frames [from, from + npages) to [to, to + npages) by moving
 * page-table entries (phys.c, section 6); the source frames then read as zero. Both
 * ranges committed and the caller's. 0; -ENOMEM when the OS refused or moves are used
 * up (the source unchanged, the destination's frames maybe zero now: copy instead);
 * -EFAULT when the destination could not be mapped again after a failed move: its
 * frames must never be handed out.
 */
int md__frames_move(unsigned long from, unsigned long to, size_t npages);
/*
 * folio_put() of a folio whose every page folio_move_pages() moved out and nobody wrote
 * since (realloc's old block): its frames go back as zero frames (pages__release_empty).
 */
void md__folio_put_empty(struct folio *f);
/* Tell the OS it may drop the contents of these frames (they stay mapped). */
void md__purge_range(unsigned long pfn, size_t npages);

/* pfn <-> address inline, for the hot paths of this library (phys.c has the API). */
static inline unsigned long md__virt_to_pfn(const void *addr)
{
	return (unsigned long)(((uintptr_t)addr - md_phys.base) >> MD_PAGE_SHIFT);
}

static inline void *md__pfn_to_virt(unsigned long pfn)
{
	return (void *)(md_phys.base + ((uintptr_t)pfn << MD_PAGE_SHIFT));
}

/* ---- pages.c: the page map, the page allocator ------------------------------- */

extern struct xarray md_pagemap;

/*
 * pfn_to_memdesc() for a caller already inside an RCU read-side section (malloc's
 * entry section): the same walk of the page map, inline, without a nested read lock.
 */
static inline memdesc_t md__pfn_to_memdesc_rcu(unsigned long pfn)
{
	void *e;

	if (unlikely(pfn >= md_phys.nr_pfns))
		return 0;
	e = xa_load_rcu(&md_pagemap, pfn);
	return xa_is_value(e) ? (memdesc_t)xa_to_value(e) : 0;
}
/*
 * md__pfn_to_memdesc_rcu() for a fast path that has a general one: the word, or 0 when
 * the walk met anything but nodes and a value entry (xa_load_rcu_value). Makes no
 * call. The caller has checked pfn < md_phys.nr_pfns.
 */
static inline memdesc_t md__pfn_to_memdesc_fast(unsigned long pfn)
{
	void *e = xa_load_rcu_value(&md_pagemap, pfn);

	return (memdesc_t)xa_to_value(e);	/* NULL -> 0 */
}
extern struct xarray md_splitmap;
extern struct kmem_cache *md_node_cache;	/* page-map nodes (the pool refills from it) */
extern struct kmem_cache *md_split_cache;	/* struct md_split: split folio records */
extern struct kmem_cache *md_pblock_cache;	/* struct md_pblock: 64-page blocks */
extern const struct xa_node_ops md_node_ops;

int md__pages_init(void);
/*
 * Frames for a new allocation: per-thread cache, dirty list, page arena. 0 / -ENOMEM.
 * @flags:
 * PAGES__OWN: for the allocator's own bookkeeping (the slabs of the caches without
 * magazines: magazines, threads' magazine slots, cache descriptors), whose fresh pages do
 * not ask for a reclaim (pages.c, section 3): a burst of frees allocates magazines while
 * it fills the depots.
 * PAGES__GROW: an allocation that will likely grow in place (folio_alloc_growable): from
 * the front of the largest dirty range rather than the smallest that fits (section 3).
 * PAGES__META: a slab of the allocator's own descriptors (the boot area's caches: struct
 * slab, magazines, page-map nodes, folios...): as low in the arena as there is room
 * (section 3, "metadata at the bottom").
 * @zeroed (may be NULL): set to whether the frames read as zero (from the page arena).
 */
#define PAGES__OWN 1u
#define PAGES__GROW 2u
#define PAGES__META 4u
int pages__get_range(size_t npages, size_t align, unsigned int flags, unsigned long *pfnp,
		     bool *zeroed);
/* Frames of a whole allocation back (to the per-thread cache or the dirty list). */
void pages__put_range(unsigned long pfn, size_t npages);
/*
 * Give back the frames of a whole allocation whose pages the OS holds none of (all moved
 * out by md__frames_move, not written since): straight to the page arena, whose free
 * frames are zero, not to the dirty list, which would count them resident and hand
 * them out as written (pieces of a split folio take the usual way).
 */
void pages__release_empty(unsigned long pfn, size_t npages);
/*
 * Take [pfn, pfn + npages) out of the page map and out of use for good: the OS lost
 * their mapping (folio_move_pages); the frames stay allocated from the arena, counted
 * by memdesc_verify() as lost.
 */
void pages__retire(unsigned long pfn, size_t npages);
/* Map every page of [pfn, pfn + npages) to md. 0 / -ENOMEM (nothing mapped). */
int pages__publish(unsigned long pfn, size_t npages, memdesc_t md);
/* Remove the mapping (exactly the entries pages__publish() made). Never allocates. */
void pages__unpublish(unsigned long pfn, size_t npages);
/* Pages of one allocation freed after unpublish: split pieces are handled here. */
void pages__release(unsigned long pfn, size_t npages);
/* Unmapped slab pages whose free waits for a grace period (+/-). */
void pages__rcu_pending(long npages);
/* Account pages of a type (+/-). */
void pages__account(enum memdesc_type type, long npages);
/* Whether [pfn, pfn + npages) is exactly the run of pages mapped to md. */
bool pages__is_allocation(unsigned long pfn, size_t npages, memdesc_t md);
/* Free the page-map nodes left empty over [pfn, pfn + npages) (a chunk goes back). */
void pages__prune(unsigned long pfn, size_t npages);
/* Give the calling thread's page cache back (thread exit, on demand). */
void pages__pcache_drain(bool exiting);
/* Purge the dirty list entirely. */
void pages__dirty_flush(void);
/* The split record covering pfn, for folio_split(). */
int pages__split_track(unsigned long pfn, size_t npages);
void pages__split_untrack(unsigned long pfn, size_t npages);
int pages__verify(void);
#ifdef MEMDESC_FAULT_INJECTION
/* Fault-injection builds: empty the page-map node pool (its nodes are held aside), so
 * that the next stores refill it (and meet the armed points), or give them back. */
void md__test_node_pool_empty(bool empty);
/* Fault-injection builds: give the page arena's boundary-tag reserve back to the pool,
 * so that the next operation needing a tag refills it (and meets FAULT_VMEM_TAG). */
void md__test_arena_tags_empty(void);
#endif
void pages__stats(struct memdesc_stats *st);

/* ---- folio.c ----------------------------------------------------------------- */

extern struct kmem_cache *md_folio_cache;
extern atomic_long md_nr_folios;
int md__folio_verify(const struct folio *f, unsigned long index, memdesc_t md);

#endif /* MEMDESC_MEMDESC_IMPL_H */
