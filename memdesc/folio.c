/*
 * folio.c: folios, the memdesc of pages handed out as one unit.
 *
 * A struct folio (32 bytes) comes from md_folio_cache, a type-stable cache
 * (KMC_TYPESAFE_BY_RCU): a lock-free pfn_to_memdesc() that races with folio_put()
 * reads a struct folio, never garbage. Only folios pay for folio set-up: the page
 * allocator maps the memdesc word and knows nothing of the type.
 *
 * folio_alloc(order) asks for 2^order pages aligned to 2^order, so its page-map entry
 * is one multi-index entry; folio_alloc_pages(n) asks for any n, mapped with at most
 * 2*log2(n) entries; folio_alloc_aligned(n, a) any n at a multiple of a (the malloc
 * layer's aligned allocations). All three build the folio the same way
 * (md_folio_new()): descriptor, frames, fields, and the page map published last.
 *
 * folio_split(f, k) allocates everything first: the 2^(order-k) - 1 new descriptors
 * (chained through their own f_pfn field while unused, so no array is needed), the
 * split record of the original range (pages.c), and the page-map nodes (xa_split()).
 * Only then does it change anything; each store of a new descriptor over an entry of
 * order k replaces an existing entry and needs no node. On -ENOMEM nothing changed.
 *
 * folio_resize(f, n) grows or shrinks a folio in place through pages_resize(), then
 * sets its size and order; only the holder of the one reference may do it.
 *
 * folio_move_pages(dst, src, n) gives the contents of src's first n pages to dst's
 * first n by moving page-table entries (phys.c, section 6), no copy: realloc's move of
 * a large block. Both folios stay what they were in the page map; only their contents
 * change (src's n pages then read as zero).
 *
 * Reference counts are atomics; folio_put() on a folio whose count is already 0 is
 * reported and does nothing.
 */
#include "memdesc_impl.h"
#include "slab_impl.h"
#include "xarray.h"

#include <errno.h>

struct kmem_cache *md_folio_cache;
atomic_long md_nr_folios;

static struct folio *md_folio_new(size_t npages, size_t align, unsigned int flags)
{
	struct folio *f;
	unsigned long pfn;
	bool zeroed;
	int rc;

	f = kmem_cache_alloc(md_folio_cache);
	if (!f)
		return NULL;
	rc = pages__get_range(npages, align, flags, &pfn, &zeroed);
	if (rc) {
		kmem_cache_free(md_folio_cache, f);
		errno = -rc;
		return NULL;
	}
	f->f_pfn = pfn;
	__atomic_store_n(&f->f_npages, npages, __ATOMIC_RELAXED);
	f->f_flags = zeroed ? FOLIO_ZEROED : 0;
	f->f_order = (npages & (npages - 1)) == 0 && (pfn & (npages - 1)) == 0
			     ? (unsigned int)(63 - __builtin_clzl(npages))
			     : FOLIO_ORDER_NONE;
	__atomic_store_n(&f->f_refcount, 1, __ATOMIC_RELAXED);
	/* Published last: a reader that finds the word finds a complete folio. */
	rc = pages__publish(pfn, npages, memdesc_mk(f, MEMDESC_FOLIO));
	if (rc) {
		pages__put_range(pfn, npages);
		kmem_cache_free(md_folio_cache, f);
		errno = -rc;
		return NULL;
	}
	atomic_fetch_add_explicit(&md_nr_folios, 1, memory_order_relaxed);
	return f;
}

struct folio *folio_alloc(unsigned int order)
{
	int rc = md__init_check();

	if (rc) {
		errno = -rc;
		return NULL;
	}
	if (order > FOLIO_MAX_ORDER) {
		errno = EINVAL;
		return NULL;
	}
	return md_folio_new((size_t)1 << order, (size_t)1 << order, 0);
}

/* @npages pages at any pfn, placed as PAGES__* @flags say. */
static struct folio *md_folio_pages(size_t npages, unsigned int flags)
{
	int rc = md__init_check();

	if (rc) {
		errno = -rc;
		return NULL;
	}
	if (npages == 0 || npages > md_phys.nr_pfns) {
		errno = npages ? ENOMEM : EINVAL;
		return NULL;
	}
	return md_folio_new(npages, 1, flags);
}

struct folio *folio_alloc_pages(size_t npages)
{
	return md_folio_pages(npages, 0);
}

struct folio *folio_alloc_growable(size_t npages)
{
	return md_folio_pages(npages, PAGES__GROW);
}

struct folio *folio_alloc_aligned(size_t npages, size_t align_pages)
{
	int rc = md__init_check();

	if (rc) {
		errno = -rc;
		return NULL;
	}
	if (npages == 0 || align_pages == 0 || (align_pages & (align_pages - 1)) ||
	    align_pages > md_phys.nr_pfns) {
		errno = EINVAL;
		return NULL;
	}
	if (npages > md_phys.nr_pfns) {
		errno = ENOMEM;
		return NULL;
	}
	return md_folio_new(npages, align_pages, 0);
}

void folio_get(struct folio *f)
{
	if (unlikely(!f)) {
		md__report("folio_get: NULL folio");
		return;
	}
	__atomic_fetch_add(&f->f_refcount, 1, __ATOMIC_RELAXED);
}

/* The last reference is gone: unmap @f, free it, then its frames (@empty: see below). */
static void md_folio_free(struct folio *f, bool empty)
{
	unsigned long pfn = f->f_pfn;
	size_t npages = f->f_npages;

	pages__unpublish(pfn, npages);
	atomic_fetch_sub_explicit(&md_nr_folios, 1, memory_order_relaxed);
	/*
	 * The descriptor first (the cache is type-stable: a racing reader still sees a
	 * folio), then the pages: freeing the descriptor may need a new magazine, which
	 * must not be carved from the pages just freed.
	 */
	kmem__free_trusted(md_folio_cache, f);
	if (empty)
		pages__release_empty(pfn, npages);
	else
		pages__release(pfn, npages);
}

void md__folio_put_empty(struct folio *f)
{
	if (__atomic_sub_fetch(&f->f_refcount, 1, __ATOMIC_ACQ_REL) == 0)
		md_folio_free(f, true);
}

void folio_put(struct folio *f)
{
	long ref;

	if (unlikely(!f)) {
		md__report("folio_put: NULL folio");
		return;
	}
	ref = __atomic_load_n(&f->f_refcount, __ATOMIC_RELAXED);

	do {
		if (ref <= 0) {
			md__report("folio_put: folio %p (pfn %lu, %zu pages) has refcount %ld",
				   (void *)f, f->f_pfn, f->f_npages, ref);
			return;
		}
	} while (!__atomic_compare_exchange_n(&f->f_refcount, &ref, ref - 1, true,
					      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	if (ref == 1)
		md_folio_free(f, false);
}

struct folio *virt_to_folio(const void *addr)
{
	return memdesc_folio(pfn_to_memdesc(virt_to_pfn(addr)));
}

unsigned long folio_pfn(const struct folio *f)
{
	return f->f_pfn;
}

void *folio_address(const struct folio *f)
{
	return pfn_to_virt(f->f_pfn);
}

size_t folio_nr_pages(const struct folio *f)
{
	return __atomic_load_n(&f->f_npages, __ATOMIC_RELAXED);
}

unsigned int folio_order(const struct folio *f)
{
	return f->f_order;
}

long folio_ref_count(const struct folio *f)
{
	return __atomic_load_n(&f->f_refcount, __ATOMIC_RELAXED);
}

int folio_split(struct folio *f, unsigned int new_order)
{
	unsigned int order;
	size_t nr, piece;
	struct folio *chain = NULL, *g;
	int tracked, rc;

	if (!f)
		return -EINVAL;
	order = f->f_order;
	if (order == FOLIO_ORDER_NONE || new_order >= order)
		return -EINVAL;
	if (folio_ref_count(f) != 1)
		return -EBUSY;
	nr = (size_t)1 << (order - new_order);
	piece = (size_t)1 << new_order;

	/* 1. Descriptors. */
	for (size_t i = 1; i < nr; i++) {
		g = kmem_cache_alloc(md_folio_cache);
		if (!g)
			goto nomem;
		g->f_pfn = (unsigned long)chain;
		chain = g;
	}
	/* 2. The record that lets the pieces be freed one by one. */
	tracked = pages__split_track(f->f_pfn, f->f_npages);
	if (tracked < 0)
		goto nomem;
	/* 3. Page-map nodes. */
	rc = xa_split(&md_pagemap, f->f_pfn, new_order);
	if (rc) {
		if (tracked)
			pages__split_untrack(f->f_pfn, f->f_npages);
		goto nomem;
	}
	/* 4. Nothing can fail from here on. */
	for (size_t i = nr - 1; i >= 1; i--) {
		void *old;

		g = chain;
		chain = (struct folio *)g->f_pfn;
		g->f_pfn = f->f_pfn + i * piece;
		__atomic_store_n(&g->f_npages, piece, __ATOMIC_RELAXED);
		g->f_order = new_order;
		g->f_flags = 0;
		__atomic_store_n(&g->f_refcount, 1, __ATOMIC_RELAXED);
		old = xa_store_order(&md_pagemap, g->f_pfn, new_order,
				     xa_mk_value(memdesc_mk(g, MEMDESC_FOLIO)));
		if (xa_is_err(old))
			md__panic("folio_split: storing a split entry failed (%d)", xa_err(old));
	}
	__atomic_store_n(&f->f_npages, piece, __ATOMIC_RELAXED);
	f->f_order = new_order;
	atomic_fetch_add_explicit(&md_nr_folios, (long)(nr - 1), memory_order_relaxed);
	return 0;

nomem:
	while (chain) {
		g = chain;
		chain = (struct folio *)g->f_pfn;
		kmem_cache_free(md_folio_cache, g);
	}
	return -ENOMEM;
}

int folio_resize(struct folio *f, size_t npages)
{
	int rc;

	if (!f || npages == 0)
		return -EINVAL;
	if (folio_ref_count(f) != 1)
		return -EBUSY;
	rc = pages_resize(f->f_pfn, f->f_npages, npages);
	if (rc)
		return rc;
	/*
	 * After the pages: a grown folio never names pages that are not its own yet.
	 * Atomic: a lock-free reader may look at a folio it does not own (md_malloc.c's
	 * md_lc_evict_next() reads the size of the block after its own, and trusts it only
	 * once it has found that block in its cache).
	 */
	__atomic_store_n(&f->f_npages, npages, __ATOMIC_RELAXED);
	f->f_order = (npages & (npages - 1)) == 0 && (f->f_pfn & (npages - 1)) == 0
			     ? (unsigned int)(63 - __builtin_clzl(npages))
			     : FOLIO_ORDER_NONE;
	return 0;
}

/*
 * The destination of a failed move whose frames the OS could not map again: out of the
 * page map and out of use for good (never freed to the arena), its descriptor freed.
 */
static void md_folio_retire(struct folio *f)
{
	pages__retire(f->f_pfn, f->f_npages);
	atomic_fetch_sub_explicit(&md_nr_folios, 1, memory_order_relaxed);
	md__report("folio_move_pages: pfn %lu + %zu lost its mapping; kept out of use",
		   f->f_pfn, f->f_npages);
	kmem__free_trusted(md_folio_cache, f);
}

int folio_move_pages(struct folio *dst, struct folio *src, size_t npages)
{
	int rc;

	if (!dst || !src || dst == src || npages == 0 || npages > src->f_npages ||
	    npages > dst->f_npages)
		return -EINVAL;
	if (folio_ref_count(dst) != 1 || folio_ref_count(src) != 1)
		return -EBUSY;
	rc = md__frames_move(src->f_pfn, dst->f_pfn, npages);
	if (rc == -EFAULT)
		md_folio_retire(dst);
	return rc;
}

int md__folio_verify(const struct folio *f, unsigned long index, memdesc_t md)
{
	if (index < f->f_pfn || index - f->f_pfn >= f->f_npages || f->f_npages == 0) {
		md__report("memdesc_verify: pfn %lu maps to folio %p covering pfn %lu + %zu",
			   index, (const void *)f, f->f_pfn, f->f_npages);
		return -EINVAL;
	}
	if (folio_ref_count(f) <= 0) {
		md__report("memdesc_verify: mapped folio %p has refcount %ld", (const void *)f,
			   folio_ref_count(f));
		return -EINVAL;
	}
	if (f->f_order != FOLIO_ORDER_NONE &&
	    (f->f_npages != ((size_t)1 << f->f_order) || (f->f_pfn & (f->f_npages - 1)))) {
		md__report("memdesc_verify: folio %p order %u but pfn %lu + %zu", (const void *)f,
			   f->f_order, f->f_pfn, f->f_npages);
		return -EINVAL;
	}
	if (index == f->f_pfn && !pages__is_allocation(f->f_pfn, f->f_npages, md)) {
		md__report("memdesc_verify: folio %p: pfn %lu + %zu is not exactly its run",
			   (const void *)f, f->f_pfn, f->f_npages);
		return -EINVAL;
	}
	return 0;
}
