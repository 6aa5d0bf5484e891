/*
 * memdesc.h: physical memory, the one-word page entry, the page allocator and folios.
 *
 * Every page frame (4 KiB of address space mapped from the OS, numbered densely from one
 * reserved base: the pfn) is described by ONE word, a memdesc_t: a pointer to a memory
 * descriptor allocated separately (a struct folio, a struct slab, ...) with the
 * descriptor's type in the low 4 bits. The words live in an XArray (the "page map"), so
 * pfn_to_memdesc() is a lock-free radix-tree walk and an aligned 2^k-page allocation is
 * a single multi-index entry. pages_alloc() takes a memdesc and a number of pages (any
 * number, from a vmem arena) and maps every one of them to that memdesc.
 *
 * The design (bootstrap order, the recursion and why it ends, memory given back to the
 * OS, the locking) is written at the top of memdesc/boot.c and memdesc/pages.c.
 *
 * Conventions: operations return 0 or a negative errno; allocators return NULL and set
 * errno; caller bugs (a bad or double free) are reported on stderr with the function,
 * the address and the sizes, and change nothing. Every entry point initialises the
 * module on first use (memdesc_init()).
 */
#ifndef MEMDESC_MEMDESC_H
#define MEMDESC_MEMDESC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Size of one page frame. */
#define MEMDESC_PAGE_SHIFT 12
#define MEMDESC_PAGE_SIZE ((size_t)1 << MEMDESC_PAGE_SHIFT)

/*
 * Pointer to a 16-byte aligned descriptor | enum memdesc_type in the low 4 bits, and an
 * optional tag in bits 48..56 that the descriptor's owner chooses. Descriptors live in
 * user space below 2^47 (memdesc_init() checks that its frame space ends below 2^48),
 * so the pointer never reaches the tag. The tag lets a hot path learn what it needs
 * from the word alone instead of loading the descriptor, a cache miss when pages are
 * touched at random: slab.c puts its cache's id + 1 there, and free() of a small block
 * finds its size class without reading struct slab (alloc/md_malloc.c, section 7).
 * The page map stores words as XArray value entries, which keep 63 bits: bit 63 is
 * never used.
 */
typedef uintptr_t memdesc_t;

enum memdesc_type {
	MEMDESC_NONE = 0,	/* free, or not a page of ours */
	MEMDESC_FOLIO,		/* struct folio: pages handed out as a unit, refcounted */
	MEMDESC_SLAB,		/* struct slab: the pages of one slab of a kmem_cache */
	MEMDESC_NR_TYPES
};

#define MEMDESC_TYPE_MASK ((memdesc_t)0xf)
#define MEMDESC_TAG_SHIFT 48
#define MEMDESC_TAG_MAX 511u
#define MEMDESC_PTR_MASK ((((memdesc_t)1 << MEMDESC_TAG_SHIFT) - 1) & ~MEMDESC_TYPE_MASK)

struct folio;
struct slab;

/** memdesc_mk() - the word for descriptor @ptr (16-byte aligned) of @type, no tag. */
static inline memdesc_t memdesc_mk(const void *ptr, enum memdesc_type type)
{
	return (memdesc_t)ptr | (memdesc_t)type;
}

/** memdesc_mk_tagged() - memdesc_mk() with @tag (0..MEMDESC_TAG_MAX) in the word. */
static inline memdesc_t memdesc_mk_tagged(const void *ptr, enum memdesc_type type,
					  unsigned int tag)
{
	return memdesc_mk(ptr, type) | ((memdesc_t)tag << MEMDESC_TAG_SHIFT);
}

/** memdesc_type() - the type of a memdesc word; MEMDESC_NONE for 0. */
static inline enum memdesc_type memdesc_type(memdesc_t md)
{
	return (enum memdesc_type)(md & MEMDESC_TYPE_MASK);
}

/** memdesc_tag() - the tag of a memdesc word (0: none). */
static inline unsigned int memdesc_tag(memdesc_t md)
{
	return (unsigned int)(md >> MEMDESC_TAG_SHIFT) & MEMDESC_TAG_MAX;
}

/** memdesc_ptr() - the descriptor a memdesc word points at; NULL for 0. */
static inline void *memdesc_ptr(memdesc_t md)
{
	return (void *)(md & MEMDESC_PTR_MASK);
}

/** memdesc_folio() - the folio of @md, or NULL if @md is not a folio. */
static inline struct folio *memdesc_folio(memdesc_t md)
{
	return memdesc_type(md) == MEMDESC_FOLIO ? (struct folio *)memdesc_ptr(md) : NULL;
}

/** memdesc_slab() - the slab of @md, or NULL if @md is not a slab. */
static inline struct slab *memdesc_slab(memdesc_t md)
{
	return memdesc_type(md) == MEMDESC_SLAB ? (struct slab *)memdesc_ptr(md) : NULL;
}

/**
 * memdesc_init() - bring up physical memory, the page map and the internal caches.
 *
 * Called by every entry point; callable any number of times from any thread. Uses no
 * malloc and no stdio. After a failure (the OS refusing the address-space reservation)
 * every allocator returns ENOMEM.
 *
 * Return: 0, or -ENOMEM.
 */
int memdesc_init(void);

/* pfn <-> address. O(1): pfn = (addr - base) >> MEMDESC_PAGE_SHIFT. */
unsigned long virt_to_pfn(const void *addr);
void *pfn_to_virt(unsigned long pfn);
/** pfn_valid() - whether @pfn lies inside the reserved frame space. */
int pfn_valid(unsigned long pfn);

/**
 * pfn_to_memdesc() - the memdesc of page @pfn.
 *
 * Context: lock-free (an RCU read-side walk of the page map). A caller racing with the
 * free of the page must hold rcu_read_lock() (urcu-bp) while it uses the descriptor:
 * descriptors come from type-stable caches, so it then sees the old descriptor or 0.
 * Return: the word, 0 for a free or unknown pfn.
 */
memdesc_t pfn_to_memdesc(unsigned long pfn);

/**
 * pages_alloc() - allocate @npages page frames and map each of them to @md.
 * @md: a memdesc word (non-NULL descriptor, type other than MEMDESC_NONE). Each live
 *	allocation must have its own descriptor: an allocation is the run of pages that
 *	map to its memdesc.
 * @npages: any number > 0.
 * @align_pages: a power of two; the first pfn is a multiple of it.
 * @pfnp: receives the first pfn.
 *
 * The mapping is published before the function returns. Everything a later
 * pages_free() of this range needs is taken now.
 *
 * Context: takes the page arena's lock unless the per-thread page cache serves a
 * single page; may map memory from the OS and allocate page-map nodes.
 * Return: 0; -EINVAL for a bad argument; -ENOMEM (limit reached, the OS refused,
 * metadata could not be had; nothing changed).
 */
int pages_alloc(memdesc_t md, size_t npages, size_t align_pages, unsigned long *pfnp);

/**
 * pages_free() - free a range returned by pages_alloc() (or a piece of a split folio).
 *
 * A range that is not exactly one live allocation is reported on stderr and nothing
 * changes. Never allocates.
 *
 * Context: takes the page arena's lock unless the per-thread page cache takes the page.
 */
void pages_free(unsigned long pfn, size_t npages);

/** pages_free_checked() - pages_free() that returns 0 or -EINVAL (reported). */
int pages_free_checked(unsigned long pfn, size_t npages);

/**
 * pages_resize() - grow or shrink an allocation in place; its first pfn stays.
 * @pfn: the first pfn of a live allocation (pages_alloc()).
 * @npages: its number of pages.
 * @new_npages: the number wanted, > 0.
 *
 * Growing takes the pages right after the allocation if they are free in the page
 * arena and maps them to the allocation's memdesc before returning; shrinking unmaps
 * the last pages and frees them. Readers (pfn_to_memdesc) of the pages that stay see
 * the memdesc throughout. The page map ends up as pages_alloc() of @new_npages would
 * have made it. Free the result with pages_free(@pfn, @new_npages).
 *
 * Context: the caller owns the allocation (nobody frees or resizes it concurrently);
 * takes the page arena's lock; may allocate page-map nodes and a boundary tag.
 * Return: 0; -EINVAL if [@pfn, @pfn + @npages) is not exactly one live allocation
 * (reported, nothing changed) or @new_npages is 0; -ENOMEM when it cannot be done in
 * place (the next pages are not free, a single page of a page block or a piece of a
 * split folio, metadata could not be had; nothing changed).
 */
int pages_resize(unsigned long pfn, size_t npages, size_t new_npages);

/* ----------------------------------------------------------------------------- */
/* Folios                                                                         */
/* ----------------------------------------------------------------------------- */

/* A folio that is not a naturally aligned power of two has this order. */
#define FOLIO_ORDER_NONE 0xffu
/* Largest order folio_alloc() accepts (1 GiB). */
#define FOLIO_MAX_ORDER 18u

/**
 * struct folio - pages handed out as one unit. Fields are private to folio.c; use the
 * accessors. 32 bytes, from a type-stable slab cache of folios.
 */
struct folio {
	unsigned long f_pfn;	/* first page */
	size_t f_npages;	/* number of pages; atomic (lock-free readers peek) */
	long f_refcount;	/* atomic; the folio is freed when it drops to 0 */
	unsigned int f_order;	/* log2(f_npages) if naturally aligned, else FOLIO_ORDER_NONE */
	unsigned int f_flags;	/* FOLIO_* */
} __attribute__((aligned(16)));

/*
 * FOLIO_ZEROED (f_flags): the pages read as zero when the folio was allocated: they
 * came from the page arena, where every free frame is zero (never written since the OS
 * gave it, or purged; pages.c, section 3). A caller that wants zeroed memory need not
 * clear them. Not kept up to date afterwards (the owner writes them; a grow may add
 * dirty pages).
 */
#define FOLIO_ZEROED 1u

/**
 * folio_alloc() - 2^@order naturally aligned pages, refcount 1.
 * Return: the folio, or NULL with errno EINVAL (@order > FOLIO_MAX_ORDER) or ENOMEM.
 */
struct folio *folio_alloc(unsigned int order);
/**
 * folio_alloc_pages() - @npages pages (any number > 0), refcount 1, page-aligned only.
 * Return: the folio, or NULL with errno EINVAL or ENOMEM.
 */
struct folio *folio_alloc_pages(size_t npages);
/**
 * folio_alloc_growable() - as folio_alloc_pages(), placed where it can later grow in
 * place (folio_resize): at the front of the largest free resident range rather than in
 * the smallest that holds it. For a block that moved because it grew (realloc), which
 * will likely grow again.
 * Return: the folio, or NULL with errno EINVAL or ENOMEM.
 */
struct folio *folio_alloc_growable(size_t npages);
/**
 * folio_alloc_aligned() - @npages pages (any number > 0) whose first pfn is a multiple
 * of @align_pages (a power of two), refcount 1 (aligned_alloc and friends above a page).
 * Return: the folio, or NULL with errno EINVAL (bad argument) or ENOMEM.
 */
struct folio *folio_alloc_aligned(size_t npages, size_t align_pages);
void folio_get(struct folio *f);
/** folio_put() - drop a reference; at zero the pages and the descriptor are freed. */
void folio_put(struct folio *f);
/** virt_to_folio() - the folio containing @addr, NULL if @addr is not in a folio. */
struct folio *virt_to_folio(const void *addr);
unsigned long folio_pfn(const struct folio *f);
void *folio_address(const struct folio *f);
size_t folio_nr_pages(const struct folio *f);
/** folio_order() - log2 of the size, FOLIO_ORDER_NONE if not a power of two. */
unsigned int folio_order(const struct folio *f);
long folio_ref_count(const struct folio *f);

/**
 * folio_split() - split a folio of order k into 2^(k - @new_order) folios of
 * @new_order. @f keeps the first piece; the others are new folios with refcount 1, at
 * folio_pfn(@f) + i * 2^@new_order (find them with virt_to_folio()).
 *
 * Every descriptor and every page-map node the split needs is allocated first: on
 * failure nothing has changed. The pieces are freed independently; the address range
 * goes back to the page arena when the last piece is freed (freed pieces are returned
 * to the OS at once, see pages.c).
 *
 * Context: the caller holds the only reference (refcount 1).
 * Return: 0; -EINVAL if @f is not a naturally aligned power of two or @new_order is
 * not below its order; -EBUSY if the refcount is not 1; -ENOMEM (nothing changed).
 */
int folio_split(struct folio *f, unsigned int new_order);

/**
 * folio_resize() - grow or shrink a folio in place to @npages pages (pages_resize()):
 * its address stays, its order becomes log2(@npages) if the result is a naturally
 * aligned power of two, else FOLIO_ORDER_NONE.
 *
 * Context: the caller holds the only reference (refcount 1).
 * Return: 0; -EINVAL for a NULL folio or 0 pages; -EBUSY if the refcount is not 1;
 * -ENOMEM when it cannot be done in place (the folio is unchanged).
 */
int folio_resize(struct folio *f, size_t npages);

/**
 * folio_move_pages() - give the contents of the first @npages pages of @src to the
 * first @npages pages of @dst without copying: the OS moves their page-table entries
 * (mremap(2), phys.c section 6). The old contents of those pages of @dst are gone and
 * those pages of @src then read as zero; both folios keep their pages and their place
 * in the page map. For moving a large block (realloc); a process makes at most 1024
 * moves, then copies.
 *
 * Context: the caller holds the only reference to each (refcount 1).
 * Return: 0; -EINVAL (NULL, the same folio, 0 pages or more than either has); -EBUSY;
 * -ENOMEM when the OS refused or the moves are used up: @src is unchanged, copy
 * instead (those pages of @dst may read as zero now: a failed move can drop them);
 * -EFAULT, rare, when the OS failed and then could not map @dst's pages again: @dst has
 * then been freed (its pages are kept out of use for good) and must not be used; @src
 * is unchanged.
 */
int folio_move_pages(struct folio *dst, struct folio *src, size_t npages);

/* ----------------------------------------------------------------------------- */
/* Verification, statistics, giving memory back                                   */
/* ----------------------------------------------------------------------------- */

/**
 * memdesc_verify() - check every invariant of the page map, the folios and slabs it
 * points at, the arenas and the counters. O(entries + descriptors).
 *
 * Context: no concurrent allocation or free (a quiescent moment).
 * Return: 0, or -EINVAL after printing what is broken on stderr.
 */
int memdesc_verify(void);

/*
 * Statistics, declared once (X-macro): the struct, the collection and any printer are
 * generated from this list.
 */
#define MEMDESC_STATS(X)                                                                \
	X(pages_folio,        "pages mapped to folios")                                 \
	X(pages_slab,         "pages mapped to slabs")                                  \
	X(pages_pcache,       "free pages held in per-thread page caches")             \
	X(pages_dirty,        "free pages kept mapped for reuse (not yet purged)")     \
	X(pages_block_free,   "free single pages inside 64-page blocks")               \
	X(pages_split_held,   "freed pieces of split folios waiting for their siblings") \
	X(pages_rcu_pending,  "unmapped slab pages freed after an RCU grace period")   \
	X(pages_arena_alloc,  "pages allocated from the page arena")                   \
	X(bytes_mapped,       "bytes committed from the OS")                           \
	X(bytes_resident,     "estimated resident bytes (in use + not yet purged)")    \
	X(bytes_limit,        "limit on the bytes committed from the OS")              \
	X(meta_xa_nodes,      "bytes of page-map XArray nodes (xa_nr_nodes * size)")    \
	X(meta_xa_pool,       "bytes of XArray nodes held in the node pool")            \
	X(meta_folios,        "bytes of live struct folio")                             \
	X(meta_slabs,         "bytes of live struct slab")                              \
	X(meta_pblocks,       "bytes of page-block descriptors (single pages)")         \
	X(meta_vmem_tags,     "bytes of vmem boundary tags (vmem_tag_bytes())")         \
	X(meta_bitmaps,       "bytes of the slab bitmap table committed (phys.c, 5)")   \
	X(nr_folios,          "live folios")                                           \
	X(nr_slabs,           "live slabs")                                            \
	X(chunk_maps,         "OS chunks committed since start")                       \
	X(chunk_unmaps,       "OS chunks released since start")                        \
	X(chunk_map_failures, "chunk maps refused (limit, OS, fault injection)")        \
	X(purges,             "madvise calls returning free pages")                    \
	X(pages_purged,       "pages returned with madvise since start")              \
	X(moves,              "folio_move_pages() calls that moved pages (mremap)")    \
	X(pages_moved,        "pages they moved instead of copying")                   \
	X(reclaims,           "reclaims before growing asked of the malloc layer")

struct memdesc_stats {
#define MEMDESC_STATS_FIELD(name, doc) size_t name;
	MEMDESC_STATS(MEMDESC_STATS_FIELD)
#undef MEMDESC_STATS_FIELD
};

/** memdesc_stats() - fill @st. Context: lock-free reads of counters (a snapshot). */
void memdesc_stats(struct memdesc_stats *st);

/*
 * A run of @npages resident frames from @pfn whose page-map word is @md (0: free
 * frames), for memdesc_resident_scan().
 */
typedef void memdesc_resident_fn(unsigned long pfn, size_t npages, memdesc_t md, void *arg);

/**
 * memdesc_resident_scan() - the frames that are in memory now, by page-map word.
 * @fn: called for each run of consecutive resident frames that share a word, in pfn
 *	order (a run may come in pieces, at most 8 MiB each). It runs in an RCU read-side
 *	section (urcu-bp), so it may read the descriptor the word points at; it must not
 *	wait for a grace period nor call memdesc's allocators.
 * @arg: passed to @fn.
 *
 * Residency is mincore(2)'s, over every 8 MiB of frames that was ever committed (the
 * bitmap table's pages, never decommitted, say which): one call per 8 MiB. A snapshot:
 * frames are faulted in and purged meanwhile. Measured where bytes_resident of
 * memdesc_stats() is an estimate (frames handed out count whole, touched or not).
 * Context: takes no lock; O(frames ever committed).
 * Return: 0, or a negative errno (memdesc could not start; mincore failed).
 */
int memdesc_resident_scan(memdesc_resident_fn *fn, void *arg);

/**
 * memdesc_purge() - give back to the OS, now, every free page kept for reuse (the
 * dirty list and the calling thread's page cache), releasing wholly free chunks.
 */
void memdesc_purge(void);

/**
 * memdesc_prune() - free the page map's empty nodes, which it keeps while their OS
 * chunk is committed (pages.c, section 9), so that a trim returns them too: a chunk
 * stays committed while anything is allocated in it, and after a peak the nodes kept
 * for its free pages hold slabs of the node cache all over the arena. The nodes are
 * freed after a grace period, into their cache, whose emptied slabs a reap then
 * returns. Context: takes the page map's lock; never allocates; O(nodes).
 */
void memdesc_prune(void);

/**
 * memdesc_reclaim_due() - what the client should now give back of the memory it keeps
 * idle, and forget the requests: 0, or MEMDESC_RECLAIM_* bits (pages.c section 3,
 * "reclaim before growing"). GREW: the page allocator took fresh pages from the arena
 * since the last call (freed blocks the client caches would have served). CACHES:
 * magazines and empty slabs, at most once per reclaim step: fresh pages after enough
 * traffic.
 * Context: one relaxed load when 0; lock-free.
 */
#define MEMDESC_RECLAIM_CACHES 1u	/* give back magazines and empty slabs */
#define MEMDESC_RECLAIM_GREW 2u		/* fresh pages were taken: give back cached blocks */
unsigned int memdesc_reclaim_due(void);
/**
 * memdesc_reclaim_pending() - whether memdesc_reclaim_due() would return nonzero now,
 * without collecting the request: one load and no write (so no copy-on-write fault in
 * a fork child that shares the page).
 * Return: 1 if a request is pending, else 0.
 */
int memdesc_reclaim_pending(void);

/**
 * memdesc_dirty_room() - how many more freed pages the page allocator keeps resident
 * for reuse before it starts purging (pages.c section 3). Context: lock-free reads.
 */
size_t memdesc_dirty_room(void);

/** memdesc_thread_drain() - empty the calling thread's page cache. */
void memdesc_thread_drain(void);

#ifdef __cplusplus
}
#endif

#endif /* MEMDESC_MEMDESC_H */
