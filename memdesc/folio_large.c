/*
 * folio_large.c: aligned folios of any page count, for the malloc layer.
 *
 * folio_alloc_pages() gives page-aligned runs and folio_alloc() naturally aligned
 * powers of two; aligned_alloc(1 MiB, 40 KiB) needs 10 pages at a multiple of 256
 * pages. The folio is built the way folio.c builds its own (descriptor from the
 * type-stable folio cache, frames from pages__get_range() with the alignment, the page
 * map published last, so that a reader finding the word finds a complete folio), and
 * is an ordinary folio from then on: folio_put() frees it, pfn_to_memdesc() finds it,
 * memdesc_verify() checks it. The range is mapped with at most 2*log2(n) multi-index
 * entries, one when n is a power of two at a multiple of itself.
 *
 * Failure: nothing is left behind (the descriptor and the frames go back); errno
 * EINVAL for a bad argument, ENOMEM otherwise.
 */
#include "folio_large.h"
#include "memdesc_impl.h"
#include "slab_impl.h"

#include <errno.h>

struct folio *folio_alloc_aligned(size_t npages, size_t align_pages)
{
	struct folio *f;
	unsigned long pfn;
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
	f = kmem_cache_alloc(md_folio_cache);
	if (!f)
		return NULL;
	rc = pages__get_range(npages, align_pages, &pfn);
	if (rc) {
		kmem_cache_free(md_folio_cache, f);
		errno = -rc;
		return NULL;
	}
	f->f_pfn = pfn;
	f->f_npages = npages;
	f->f_flags = 0;
	f->f_order = (npages & (npages - 1)) == 0 && (pfn & (npages - 1)) == 0
			     ? (unsigned int)(63 - __builtin_clzl(npages))
			     : FOLIO_ORDER_NONE;
	__atomic_store_n(&f->f_refcount, 1, __ATOMIC_RELAXED);
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
