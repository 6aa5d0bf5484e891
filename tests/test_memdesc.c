/*
 * test_memdesc: unit tests of memdesc.h: pfn <-> address, pfn_to_memdesc, pages_alloc
 * and pages_free (alignment, sizes, bad frees reported and nothing changed), folios
 * (orders, any size, refcounts, split), resizing in place (pages_resize, folio_resize),
 * the per-thread page cache, purging, stats.
 */
#include "mdt.h"
#include "memdesc.h"
#include "memdesc_impl.h"
#include "slab.h"
#include "xarray.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Descriptors for raw pages_alloc() calls: real folios we fill in ourselves. */
static struct folio raw_desc[128];

static memdesc_t raw_md(int i, unsigned long pfn, size_t n)
{
	raw_desc[i].f_pfn = pfn;
	raw_desc[i].f_npages = n;
	raw_desc[i].f_refcount = 1;
	raw_desc[i].f_order = FOLIO_ORDER_NONE;
	return memdesc_mk(&raw_desc[i], MEMDESC_FOLIO);
}

static void fix_desc(int i, unsigned long pfn, size_t n)
{
	raw_desc[i].f_pfn = pfn;
	raw_desc[i].f_npages = n;
	raw_desc[i].f_order = (n & (n - 1)) == 0 && (pfn & (n - 1)) == 0
				      ? (unsigned int)__builtin_ctzl(n)
				      : FOLIO_ORDER_NONE;
}

static void check_mapped(unsigned long pfn, size_t n, memdesc_t md)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(pfn_to_memdesc(pfn + i), md);
	if (pfn > 0)
		ck_assert_uint_ne(pfn_to_memdesc(pfn - 1), md);
	ck_assert_uint_ne(pfn_to_memdesc(pfn + n), md);
}

static void check_free(unsigned long pfn, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(pfn_to_memdesc(pfn + i), 0);
}

START_TEST(test_init_and_pfn)
{
	struct folio *f;
	char *p;

	ck_assert_int_eq(memdesc_init(), 0);
	ck_assert_int_eq(memdesc_init(), 0);
	f = folio_alloc(0);
	ck_assert_ptr_nonnull(f);
	p = folio_address(f);
	ck_assert_uint_eq(virt_to_pfn(p), folio_pfn(f));
	ck_assert_uint_eq(virt_to_pfn(p + 4095), folio_pfn(f));
	ck_assert_ptr_eq(pfn_to_virt(folio_pfn(f)), p);
	ck_assert_int_eq(((uintptr_t)p) & (MEMDESC_PAGE_SIZE - 1), 0);
	ck_assert(pfn_valid(folio_pfn(f)));
	ck_assert(!pfn_valid(~0UL));
	ck_assert_uint_eq(pfn_to_memdesc(~0UL), 0);
	ck_assert_uint_eq(pfn_to_memdesc(virt_to_pfn(&f)), 0);	/* the stack */
	ck_assert_ptr_null(virt_to_folio(&f));
	folio_put(f);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_memdesc_word)
{
	static struct folio fo;
	memdesc_t md = memdesc_mk(&fo, MEMDESC_FOLIO);

	ck_assert_int_eq(memdesc_type(md), MEMDESC_FOLIO);
	ck_assert_ptr_eq(memdesc_ptr(md), &fo);
	ck_assert_ptr_eq(memdesc_folio(md), &fo);
	ck_assert_ptr_null(memdesc_slab(md));
	md = memdesc_mk(&fo, MEMDESC_SLAB);
	ck_assert_ptr_null(memdesc_folio(md));
	ck_assert_ptr_eq(memdesc_slab(md), (struct slab *)&fo);
	ck_assert_int_eq(memdesc_type(0), MEMDESC_NONE);
	ck_assert_ptr_null(memdesc_ptr(0));
	ck_assert_uint_eq(memdesc_tag(md), 0);
	/* A tag changes neither the type nor the pointer, and survives the page map. */
	for (unsigned int tag = 1; tag <= MEMDESC_TAG_MAX; tag += 255) {
		md = memdesc_mk_tagged(&fo, MEMDESC_SLAB, tag);
		ck_assert_uint_eq(memdesc_tag(md), tag);
		ck_assert_int_eq(memdesc_type(md), MEMDESC_SLAB);
		ck_assert_ptr_eq(memdesc_slab(md), (struct slab *)&fo);
	}
	{
		unsigned long pfn;

		md = memdesc_mk_tagged(&fo, MEMDESC_FOLIO, MEMDESC_TAG_MAX);
		ck_assert_int_eq(pages_alloc(md, 3, 1, &pfn), 0);
		ck_assert_uint_eq(pfn_to_memdesc(pfn + 2), md);
		pages_free(pfn, 3);
	}
}
END_TEST

START_TEST(test_pages_alloc_sizes)
{
	static const size_t sizes[] = { 1, 2, 3, 5, 7, 8, 16, 31, 100, 512, 513, 1000, 1537 };
	static const size_t aligns[] = { 1, 2, 8, 64, 512 };
	unsigned long pfn[13 * 5];
	int k = 0;

	for (size_t a = 0; a < 5; a++) {
		for (size_t s = 0; s < 13; s++, k++) {
			memdesc_t md = raw_md(k, 0, 0);

			ck_assert_int_eq(pages_alloc(md, sizes[s], aligns[a], &pfn[k]), 0);
			fix_desc(k, pfn[k], sizes[s]);
			ck_assert_uint_eq(pfn[k] % aligns[a], 0);
			check_mapped(pfn[k], sizes[s], md);
			memset(pfn_to_virt(pfn[k]), k, sizes[s] * MEMDESC_PAGE_SIZE);
		}
	}
	ck_assert_int_eq(memdesc_verify(), 0);
	k = 0;
	for (size_t a = 0; a < 5; a++) {
		for (size_t s = 0; s < 13; s++, k++) {
			unsigned char *p = pfn_to_virt(pfn[k]);

			for (size_t i = 0; i < sizes[s] * MEMDESC_PAGE_SIZE; i += 4093)
				ck_assert_int_eq(p[i], (unsigned char)k);
			ck_assert_int_eq(pages_free_checked(pfn[k], sizes[s]), 0);
			check_free(pfn[k], sizes[s]);
		}
	}
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_pages_alloc_bad_args)
{
	static struct folio fo;
	unsigned long pfn;

	ck_assert_int_eq(pages_alloc(0, 1, 1, &pfn), -EINVAL);
	ck_assert_int_eq(pages_alloc(memdesc_mk(&fo, MEMDESC_NONE), 1, 1, &pfn), -EINVAL);
	ck_assert_int_eq(pages_alloc(memdesc_mk(NULL, MEMDESC_FOLIO), 1, 1, &pfn), -EINVAL);
	ck_assert_int_eq(pages_alloc(memdesc_mk(&fo, 9), 1, 1, &pfn), -EINVAL);
	ck_assert_int_eq(pages_alloc(memdesc_mk(&fo, MEMDESC_FOLIO), 0, 1, &pfn), -EINVAL);
	ck_assert_int_eq(pages_alloc(memdesc_mk(&fo, MEMDESC_FOLIO), 1, 3, &pfn), -EINVAL);
	ck_assert_int_eq(pages_alloc(memdesc_mk(&fo, MEMDESC_FOLIO), 1, 0, &pfn), -EINVAL);
	ck_assert_int_eq(pages_alloc(memdesc_mk(&fo, MEMDESC_FOLIO), 1, 1, NULL), -EINVAL);
	ck_assert_int_eq(pages_alloc(memdesc_mk(&fo, MEMDESC_FOLIO), ~(size_t)0 >> 1, 1, &pfn),
			 -EINVAL);
}
END_TEST

START_TEST(test_pages_bad_free)
{
	memdesc_t a = raw_md(0, 0, 0), b;
	unsigned long pa, pb;
	struct memdesc_stats before, after;

	ck_assert_int_eq(pages_alloc(a, 10, 1, &pa), 0);
	fix_desc(0, pa, 10);
	b = raw_md(1, 0, 0);
	ck_assert_int_eq(pages_alloc(b, 4, 4, &pb), 0);
	fix_desc(1, pb, 4);
	memdesc_stats(&before);
	/* Wrong sizes, interior starts, straddling, not allocated, outside. */
	ck_assert_int_eq(pages_free_checked(pa, 9), -EINVAL);
	ck_assert_int_eq(pages_free_checked(pa, 11), -EINVAL);
	ck_assert_int_eq(pages_free_checked(pa + 1, 9), -EINVAL);
	ck_assert_int_eq(pages_free_checked(pa, 0), -EINVAL);
	ck_assert_int_eq(pages_free_checked(pb, 2), -EINVAL);
	ck_assert_int_eq(pages_free_checked(pb + 2, 2), -EINVAL);
	ck_assert_int_eq(pages_free_checked(~0UL - 4, 2), -EINVAL);
	ck_assert_int_eq(pages_free_checked(1000000, 1), -EINVAL);	/* never allocated */
	pages_free(pa, 3);	/* the void variant reports too */
	memdesc_stats(&after);
	ck_assert_uint_eq(before.pages_folio, after.pages_folio);
	ck_assert_uint_eq(before.pages_arena_alloc, after.pages_arena_alloc);
	check_mapped(pa, 10, a);
	check_mapped(pb, 4, b);
	ck_assert_int_eq(memdesc_verify(), 0);
	ck_assert_int_eq(pages_free_checked(pa, 10), 0);
	/* Double free. */
	ck_assert_int_eq(pages_free_checked(pa, 10), -EINVAL);
	ck_assert_int_eq(pages_free_checked(pb, 4), 0);
	ck_assert_int_eq(pages_free_checked(pb, 4), -EINVAL);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_folio_orders)
{
	struct folio *f[13];

	for (unsigned int o = 0; o <= 12; o++) {
		char *p;

		f[o] = folio_alloc(o);
		ck_assert_ptr_nonnull(f[o]);
		ck_assert_uint_eq(folio_nr_pages(f[o]), (size_t)1 << o);
		ck_assert_uint_eq(folio_order(f[o]), o);
		ck_assert_uint_eq(folio_pfn(f[o]) & (((size_t)1 << o) - 1), 0);
		ck_assert_int_eq(folio_ref_count(f[o]), 1);
		p = folio_address(f[o]);
		ck_assert_ptr_eq(virt_to_folio(p), f[o]);
		ck_assert_ptr_eq(virt_to_folio(p + (MEMDESC_PAGE_SIZE << o) - 1), f[o]);
		ck_assert_ptr_eq(memdesc_folio(pfn_to_memdesc(folio_pfn(f[o]))), f[o]);
		p[0] = 1;
		p[(MEMDESC_PAGE_SIZE << o) - 1] = 2;
	}
	errno = 0;
	ck_assert_ptr_null(folio_alloc(FOLIO_MAX_ORDER + 1));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(memdesc_verify(), 0);
	for (unsigned int o = 0; o <= 12; o++) {
		unsigned long pfn = folio_pfn(f[o]);

		folio_get(f[o]);
		ck_assert_int_eq(folio_ref_count(f[o]), 2);
		folio_put(f[o]);
		ck_assert_ptr_eq(virt_to_folio(pfn_to_virt(pfn)), f[o]);
		folio_put(f[o]);
		check_free(pfn, (size_t)1 << o);
	}
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_folio_any_size)
{
	static const size_t sizes[] = { 1, 3, 5, 6, 7, 12, 100, 777 };
	struct folio *f[8];

	for (int i = 0; i < 8; i++) {
		f[i] = folio_alloc_pages(sizes[i]);
		ck_assert_ptr_nonnull(f[i]);
		ck_assert_uint_eq(folio_nr_pages(f[i]), sizes[i]);
		check_mapped(folio_pfn(f[i]), sizes[i], memdesc_mk(f[i], MEMDESC_FOLIO));
		memset(folio_address(f[i]), i, sizes[i] * MEMDESC_PAGE_SIZE);
	}
	errno = 0;
	ck_assert_ptr_null(folio_alloc_pages(0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(memdesc_verify(), 0);
	for (int i = 0; i < 8; i++) {
		unsigned long pfn = folio_pfn(f[i]);

		folio_put(f[i]);
		check_free(pfn, sizes[i]);
	}
}
END_TEST

START_TEST(test_folio_aligned)
{
	static const size_t sizes[] = { 1, 3, 10, 64, 100 };
	static const size_t aligns[] = { 1, 4, 256, 512 };

	for (int s = 0; s < 5; s++) {
		for (int a = 0; a < 4; a++) {
			struct folio *f = folio_alloc_aligned(sizes[s], aligns[a]);

			ck_assert_ptr_nonnull(f);
			ck_assert_uint_eq(folio_pfn(f) % aligns[a], 0);
			ck_assert_uint_eq(folio_nr_pages(f), sizes[s]);
			check_mapped(folio_pfn(f), sizes[s], memdesc_mk(f, MEMDESC_FOLIO));
			memset(folio_address(f), 3, sizes[s] * MEMDESC_PAGE_SIZE);
			ck_assert_int_eq(memdesc_verify(), 0);
			folio_put(f);
		}
	}
	errno = 0;
	ck_assert_ptr_null(folio_alloc_aligned(0, 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(folio_alloc_aligned(1, 3));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(folio_alloc_aligned(1, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_folio_put_zero)
{
	struct folio *f = folio_alloc(1);
	unsigned long pfn = folio_pfn(f);
	struct memdesc_stats a, b;

	folio_put(f);
	memdesc_stats(&a);
	folio_put(f);		/* reported: refcount 0 */
	folio_put(NULL);	/* reported */
	folio_get(NULL);	/* reported */
	ck_assert_int_eq(folio_split(NULL, 0), -EINVAL);
	memdesc_stats(&b);
	ck_assert_uint_eq(a.pages_folio, b.pages_folio);
	ck_assert_uint_eq(a.nr_folios, b.nr_folios);
	check_free(pfn, 2);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/* ---- resizing in place --------------------------------------------------------- */

/*
 * The page map of [pfn, pfn + n) is exactly what pages_alloc() of n pages makes: the
 * aligned blocks taken largest first, one entry each (at most 2*log2(n), one for an
 * aligned power of two), all holding @md.
 */
static void check_canonical(unsigned long pfn, size_t n, memdesc_t md)
{
	unsigned long index, cur = pfn, last = pfn + n - 1;
	size_t entries = 0;
	void *entry;

	xa_for_each_range(&md_pagemap, index, entry, pfn, last) {
		unsigned int order = cur ? (unsigned int)__builtin_ctzl(cur) : 63;

		while (order && ((1UL << order) - 1) > last - cur)
			order--;
		ck_assert_uint_eq(index, cur);
		ck_assert(xa_is_value(entry));
		ck_assert_uint_eq(xa_to_value(entry), md);
		cur += 1UL << order;
		entries++;
	}
	ck_assert_uint_eq(cur, pfn + n);
	ck_assert_uint_le(entries, 2 * (size_t)(64 - __builtin_clzl(n)));
	if ((n & (n - 1)) == 0 && (pfn & (n - 1)) == 0)
		ck_assert_uint_eq(entries, 1);
	check_mapped(pfn, n, md);
}

static void fill(unsigned long pfn, size_t n, unsigned char c)
{
	memset(pfn_to_virt(pfn), c, n * MEMDESC_PAGE_SIZE);
}

static void check_fill(unsigned long pfn, size_t n, unsigned char c)
{
	const unsigned char *p = pfn_to_virt(pfn);

	for (size_t i = 0; i < n * MEMDESC_PAGE_SIZE; i += 509)
		ck_assert_uint_eq(p[i], c);
}

START_TEST(test_pages_resize)
{
	memdesc_t md = raw_md(0, 0, 0);
	struct memdesc_stats a, b;
	unsigned long pfn;

	ck_assert_int_eq(pages_alloc(md, 512, 512, &pfn), 0);
	fix_desc(0, pfn, 512);
	check_canonical(pfn, 512, md);
	fill(pfn, 512, 0x3c);
	/* Shrink: the head keeps its data and its canonical entries, the tail is unmapped. */
	ck_assert_int_eq(pages_resize(pfn, 512, 3), 0);
	fix_desc(0, pfn, 3);
	check_canonical(pfn, 3, md);
	check_free(pfn + 3, 509);
	check_fill(pfn, 3, 0x3c);
	ck_assert_int_eq(memdesc_verify(), 0);
	/*
	 * The tail sits on the dirty list, resident: a grow takes it off the list (only
	 * what it needs: the rest stays there). The head keeps its data; the grown pages
	 * hold whatever new pages hold (memcheck sees them undefined).
	 */
	memdesc_stats(&a);
	ck_assert_uint_ge(a.pages_dirty, 509);
	ck_assert_int_eq(pages_resize(pfn, 3, 100), 0);
	memdesc_stats(&b);
	ck_assert_uint_eq(b.pages_dirty, a.pages_dirty - 97);
	ck_assert_uint_eq(b.pages_arena_alloc, a.pages_arena_alloc);	/* still all taken */
	fix_desc(0, pfn, 100);
	check_canonical(pfn, 100, md);
	check_fill(pfn, 3, 0x3c);
	ck_assert_int_eq(memdesc_verify(), 0);
	ck_assert_int_eq(pages_resize(pfn, 100, 3), 0);
	fix_desc(0, pfn, 3);
	/*
	 * The shrunk tail joined the rest on the list (509 pages after the allocation
	 * again): a grow larger than the dirty range after it does not take it.
	 */
	memdesc_stats(&a);
	ck_assert_int_eq(pages_resize(pfn, 3, 3 + 509 + 1), -ENOMEM);
	memdesc_stats(&b);
	ck_assert_uint_eq(b.pages_dirty, a.pages_dirty);
	check_canonical(pfn, 3, md);
	/* Purged, it is free in the arena: the allocation grows in place, page by page too. */
	memdesc_purge();
	ck_assert_int_eq(pages_resize(pfn, 3, 100), 0);
	fix_desc(0, pfn, 100);
	check_canonical(pfn, 100, md);
	check_fill(pfn, 3, 0x3c);
	for (size_t n = 100; n < 300; n++) {
		ck_assert_int_eq(pages_resize(pfn, n, n + 1), 0);
		fix_desc(0, pfn, n + 1);
	}
	check_canonical(pfn, 300, md);
	ck_assert_int_eq(memdesc_verify(), 0);
	/* Back to an aligned power of two: one multi-index entry again. */
	ck_assert_int_eq(pages_resize(pfn, 300, 512), 0);
	fix_desc(0, pfn, 512);
	check_canonical(pfn, 512, md);
	/* Shrinks at every kind of cut, then the same grows. */
	for (size_t n = 512, m; n > 1; n = m) {
		m = n - (n / 3 + 1);	/* >= 1 for n >= 2 */
		ck_assert_int_eq(pages_resize(pfn, n, m), 0);
		fix_desc(0, pfn, m);
		check_canonical(pfn, m, md);
		check_free(pfn + m, n - m);
	}
	ck_assert_int_eq(memdesc_verify(), 0);
	memdesc_purge();
	ck_assert_int_eq(pages_resize(pfn, 1, 257), 0);
	fix_desc(0, pfn, 257);
	check_canonical(pfn, 257, md);
	check_fill(pfn, 1, 0x3c);
	ck_assert_int_eq(memdesc_verify(), 0);
	ck_assert_int_eq(pages_free_checked(pfn, 257), 0);
	check_free(pfn, 512);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_pages_resize_bad)
{
	memdesc_t md = raw_md(0, 0, 0), one = raw_md(1, 0, 0);
	struct memdesc_stats a, b;
	unsigned long pfn, p1;

	ck_assert_int_eq(pages_alloc(md, 10, 1, &pfn), 0);
	fix_desc(0, pfn, 10);
	memdesc_stats(&a);
	ck_assert_int_eq(pages_resize(pfn, 9, 12), -EINVAL);		/* wrong size */
	ck_assert_int_eq(pages_resize(pfn + 1, 9, 12), -EINVAL);	/* interior */
	ck_assert_int_eq(pages_resize(pfn, 10, 0), -EINVAL);
	ck_assert_int_eq(pages_resize(pfn, 0, 3), -EINVAL);
	ck_assert_int_eq(pages_resize(~0UL - 4, 2, 3), -EINVAL);
	ck_assert_int_eq(pages_resize(pfn, 10, 10), 0);			/* nothing to do */
	memdesc_stats(&b);
	ck_assert_uint_eq(a.pages_folio, b.pages_folio);
	ck_assert_uint_eq(a.pages_arena_alloc, b.pages_arena_alloc);
	check_canonical(pfn, 10, md);
	/* A single page of a page block has no segment of its own: not in place. */
	ck_assert_int_eq(pages_alloc(one, 1, 1, &p1), 0);
	fix_desc(1, p1, 1);
	ck_assert_int_eq(pages_resize(p1, 1, 2), -ENOMEM);
	check_canonical(p1, 1, one);
	ck_assert_int_eq(memdesc_verify(), 0);
	pages_free(p1, 1);
	ck_assert_int_eq(pages_resize(p1, 1, 2), -EINVAL);		/* freed */
	ck_assert_int_eq(pages_free_checked(pfn, 10), 0);
	ck_assert_int_eq(pages_resize(pfn, 10, 20), -EINVAL);		/* freed */
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_folio_resize)
{
	struct folio *f = folio_alloc_pages(64), *g;
	unsigned long pfn;

	ck_assert_ptr_nonnull(f);
	pfn = folio_pfn(f);
	fill(pfn, 64, 0x11);
	ck_assert_int_eq(folio_resize(f, 5), 0);
	ck_assert_uint_eq(folio_nr_pages(f), 5);
	ck_assert_uint_eq(folio_pfn(f), pfn);
	ck_assert_uint_eq(folio_order(f), FOLIO_ORDER_NONE);
	check_canonical(pfn, 5, memdesc_mk(f, MEMDESC_FOLIO));
	memdesc_purge();
	ck_assert_int_eq(folio_resize(f, 40), 0);
	ck_assert_uint_eq(folio_nr_pages(f), 40);
	check_canonical(pfn, 40, memdesc_mk(f, MEMDESC_FOLIO));
	check_fill(pfn, 5, 0x11);
	if ((pfn & 31) == 0) {
		ck_assert_int_eq(folio_resize(f, 32), 0);
		ck_assert_uint_eq(folio_order(f), 5);
		check_canonical(pfn, 32, memdesc_mk(f, MEMDESC_FOLIO));
		/* the tail, on the dirty list, is taken back */
		ck_assert_int_eq(folio_resize(f, 40), 0);
		check_fill(pfn, 5, 0x11);
	}
	ck_assert_int_eq(folio_resize(f, 0), -EINVAL);
	ck_assert_int_eq(folio_resize(NULL, 3), -EINVAL);
	folio_get(f);
	ck_assert_int_eq(folio_resize(f, 3), -EBUSY);
	folio_put(f);
	ck_assert_uint_eq(folio_nr_pages(f), 40);
	ck_assert_int_eq(memdesc_verify(), 0);
	folio_put(f);
	check_free(pfn, 40);
	/* A piece of a split folio is not resized in place. */
	f = folio_alloc(3);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(folio_split(f, 1), 0);
	g = virt_to_folio(pfn_to_virt(folio_pfn(f) + 2));
	ck_assert_int_eq(folio_resize(g, 1), -ENOMEM);
	ck_assert_int_eq(folio_resize(f, 4), -ENOMEM);
	ck_assert_uint_eq(folio_nr_pages(f), 2);
	ck_assert_int_eq(memdesc_verify(), 0);
	for (unsigned long p = folio_pfn(f) + 2; p < folio_pfn(f) + 8; p += 2)
		folio_put(virt_to_folio(pfn_to_virt(p)));
	folio_put(f);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/* Page @i of [pfn, + n) filled with byte @c + i: a move that shifts pages shows. */
static void fill_pages(unsigned long pfn, size_t n, unsigned char c)
{
	for (size_t i = 0; i < n; i++)
		fill(pfn + i, 1, (unsigned char)(c + i));
}

static void check_pages(unsigned long pfn, size_t n, unsigned char c)
{
	for (size_t i = 0; i < n; i++)
		check_fill(pfn + i, 1, (unsigned char)(c + i));
}

START_TEST(test_folio_move_pages)
{
	struct folio *src = folio_alloc_pages(80), *dst = folio_alloc_pages(100);
	struct memdesc_stats a, b;
	unsigned long sp, dp;

	if (!mdt_os_moves_pages()) {
		/* No move: -ENOMEM, nothing changed (the malloc layer copies). */
		fill_pages(folio_pfn(src), 80, 0x10);
		ck_assert_int_eq(folio_move_pages(dst, src, 70), -ENOMEM);
		check_pages(folio_pfn(src), 80, 0x10);
		folio_put(src);
		folio_put(dst);
		return;
	}

	ck_assert_ptr_nonnull(src);
	ck_assert_ptr_nonnull(dst);
	sp = folio_pfn(src);
	dp = folio_pfn(dst);
	fill_pages(sp, 80, 0x10);
	fill(dp, 100, 0xee);
	memdesc_stats(&a);
	ck_assert_int_eq(folio_move_pages(dst, src, 70), 0);
	memdesc_stats(&b);
	ck_assert_uint_eq(b.moves, a.moves + 1);
	ck_assert_uint_eq(b.pages_moved, a.pages_moved + 70);
	check_pages(dp, 70, 0x10);		/* the moved pages, in order */
	check_fill(dp + 70, 30, 0xee);		/* the rest of the destination is as it was */
	check_fill(sp, 70, 0);			/* the source's moved pages read as zero */
	check_pages(sp + 70, 10, 0x10 + 70);	/* its other pages are untouched */
	/* Both stay mapped and writable, and in the page map as before. */
	fill(sp, 80, 0x22);
	check_fill(sp, 80, 0x22);
	check_canonical(sp, 80, memdesc_mk(src, MEMDESC_FOLIO));
	check_canonical(dp, 100, memdesc_mk(dst, MEMDESC_FOLIO));
	ck_assert_int_eq(memdesc_verify(), 0);

	ck_assert_int_eq(folio_move_pages(NULL, src, 1), -EINVAL);
	ck_assert_int_eq(folio_move_pages(dst, NULL, 1), -EINVAL);
	ck_assert_int_eq(folio_move_pages(dst, dst, 1), -EINVAL);
	ck_assert_int_eq(folio_move_pages(dst, src, 0), -EINVAL);
	ck_assert_int_eq(folio_move_pages(dst, src, 81), -EINVAL);
	ck_assert_int_eq(folio_move_pages(src, dst, 81), -EINVAL);
	folio_get(src);
	ck_assert_int_eq(folio_move_pages(dst, src, 1), -EBUSY);
	folio_put(src);
	memdesc_stats(&a);
	ck_assert_uint_eq(a.moves, b.moves);	/* refused calls moved nothing */
	check_pages(dp, 70, 0x10);
	folio_put(src);
	folio_put(dst);
	check_free(sp, 80);
	check_free(dp, 100);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/*
 * A process moves at most 1024 times (phys.c, section 6; each move may leave two more
 * mappings): then -ENOMEM with nothing changed. Check runs each test in a process of
 * its own, so the moves counted are this test's.
 */
START_TEST(test_folio_move_pages_bounded)
{
	struct folio *f[2] = { folio_alloc_pages(4), folio_alloc_pages(4) };
	struct memdesc_stats st;
	unsigned int moved = 0, refused = 0;

	ck_assert_ptr_nonnull(f[0]);
	ck_assert_ptr_nonnull(f[1]);
	if (!mdt_os_moves_pages()) {
		ck_assert_int_eq(folio_move_pages(f[1], f[0], 4), -ENOMEM);
		folio_put(f[0]);
		folio_put(f[1]);
		return;
	}
	fill(folio_pfn(f[0]), 4, 0x5c);
	for (unsigned int i = 0; i < 1100; i++) {
		int rc = folio_move_pages(f[(i + 1) & 1], f[i & 1], 4);

		if (rc == 0) {
			moved++;
			continue;
		}
		ck_assert_int_eq(rc, -ENOMEM);
		refused++;
		break;
	}
	memdesc_stats(&st);
	ck_assert_uint_eq(moved, 1024);
	ck_assert_uint_eq(refused, 1);
	ck_assert_uint_eq(st.moves, 1024);
	check_fill(folio_pfn(f[moved & 1]), 4, 0x5c);	/* the contents went back and forth */
	ck_assert_int_eq(folio_move_pages(f[1], f[0], 1), -ENOMEM);
	folio_put(f[0]);
	folio_put(f[1]);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_folio_split)
{
	struct folio *f = folio_alloc(6), *g, *pieces[64];
	unsigned long pfn = folio_pfn(f);
	struct memdesc_stats st;
	struct mdt_rng rng;

	ck_assert_ptr_nonnull(f);
	memset(folio_address(f), 0x5a, 64 * MEMDESC_PAGE_SIZE);
	ck_assert_int_eq(folio_split(f, 6), -EINVAL);
	ck_assert_int_eq(folio_split(f, 7), -EINVAL);
	folio_get(f);
	ck_assert_int_eq(folio_split(f, 0), -EBUSY);
	folio_put(f);
	ck_assert_int_eq(folio_split(f, 3), 0);
	ck_assert_uint_eq(folio_nr_pages(f), 8);
	ck_assert_uint_eq(folio_order(f), 3);
	for (int i = 0; i < 8; i++) {
		g = virt_to_folio(pfn_to_virt(pfn + 8 * i));
		ck_assert_ptr_nonnull(g);
		ck_assert_uint_eq(folio_pfn(g), pfn + 8 * i);
		ck_assert_uint_eq(folio_nr_pages(g), 8);
		ck_assert_int_eq(folio_ref_count(g), 1);
		check_mapped(pfn + 8 * i, 8, memdesc_mk(g, MEMDESC_FOLIO));
		if (i)
			ck_assert_ptr_ne(g, f);
	}
	ck_assert_int_eq(memdesc_verify(), 0);
	/* Split a piece again, then free all 1+... pieces in random order. */
	g = virt_to_folio(pfn_to_virt(pfn + 16));
	ck_assert_int_eq(folio_split(g, 0), 0);
	ck_assert_int_eq(memdesc_verify(), 0);
	{
		int n = 0;

		for (unsigned long p = pfn; p < pfn + 64; p += folio_nr_pages(pieces[n - 1]))
			pieces[n++] = virt_to_folio(pfn_to_virt(p));
		ck_assert_int_eq(n, 7 + 8);
		mdt_rng_init(&rng, 42);
		for (int i = n - 1; i > 0; i--) {
			int j = (int)mdt_rng_below(&rng, (uint64_t)i + 1);
			struct folio *t = pieces[i];

			pieces[i] = pieces[j];
			pieces[j] = t;
		}
		for (int i = 0; i < n; i++) {
			unsigned char *p = folio_address(pieces[i]);

			ck_assert_int_eq(p[0], 0x5a);
			folio_put(pieces[i]);
			ck_assert_int_eq(memdesc_verify(), 0);
		}
	}
	check_free(pfn, 64);
	memdesc_stats(&st);
	ck_assert_uint_eq(st.pages_split_held, 0);
	/* Not a power of two: -EINVAL. */
	f = folio_alloc_pages(3);
	ck_assert_int_eq(folio_split(f, 0), -EINVAL);
	folio_put(f);
}
END_TEST

static void *thread_pages(void *arg)
{
	unsigned long pfn[40];
	struct folio *f[40];

	(void)arg;
	for (int i = 0; i < 40; i++)
		f[i] = folio_alloc(0);
	for (int i = 0; i < 40; i++) {
		pfn[i] = folio_pfn(f[i]);
		folio_put(f[i]);
	}
	for (int i = 0; i < 40; i++)
		ck_assert_uint_eq(pfn_to_memdesc(pfn[i]), 0);
	return NULL;
}

START_TEST(test_pcache_and_purge)
{
	struct memdesc_stats st, st2;
	struct folio *f[100];
	pthread_t t;

	memdesc_purge();
	memdesc_stats(&st);
	ck_assert_uint_eq(st.pages_pcache, 0);
	ck_assert_uint_eq(st.pages_dirty, 0);
	/* Thread exit drains its page cache. */
	ck_assert_int_eq(pthread_create(&t, NULL, thread_pages, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	memdesc_stats(&st2);
	ck_assert_uint_eq(st2.pages_pcache, 0);
	ck_assert_uint_ge(st2.pages_dirty + st2.pages_block_free, 1);
	for (int i = 0; i < 100; i++)
		f[i] = folio_alloc(0);
	for (int i = 0; i < 100; i++)
		folio_put(f[i]);
	memdesc_stats(&st);
	ck_assert_uint_ge(st.pages_pcache, 1);
	memdesc_thread_drain();
	memdesc_stats(&st);
	ck_assert_uint_eq(st.pages_pcache, 0);
	ck_assert_int_eq(memdesc_verify(), 0);
	memdesc_purge();
	memdesc_stats(&st);
	ck_assert_uint_eq(st.pages_dirty, 0);
	ck_assert_uint_ge(st.purges, 1);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/*
 * Ranges freed side by side join on the dirty list (pages.c section 3): a request for
 * their sum reuses them instead of taking fresh pages, whichever was freed first.
 */
START_TEST(test_dirty_coalesce)
{
	struct memdesc_stats a, b;
	struct folio *f, *g, *h;
	unsigned long pfn;

	for (int left_first = 0; left_first < 2; left_first++) {
		memdesc_purge();
		f = folio_alloc_pages(48);
		ck_assert_ptr_nonnull(f);
		pfn = folio_pfn(f);
		ck_assert_int_eq(folio_resize(f, 16), 0);	/* the tail: dirty */
		g = folio_alloc_pages(32);			/* the tail again */
		ck_assert_ptr_nonnull(g);
		ck_assert_uint_eq(folio_pfn(g), pfn + 16);
		folio_put(left_first ? f : g);
		folio_put(left_first ? g : f);
		memdesc_stats(&a);
		ck_assert_uint_eq(a.pages_dirty, 48);
		ck_assert_int_eq(memdesc_verify(), 0);
		h = folio_alloc_pages(48);
		ck_assert_ptr_nonnull(h);
		memdesc_stats(&b);
		ck_assert_uint_eq(folio_pfn(h), pfn);
		ck_assert_uint_eq(b.pages_dirty, 0);
		ck_assert_uint_eq(b.pages_arena_alloc, a.pages_arena_alloc);
		folio_put(h);
		ck_assert_int_eq(memdesc_verify(), 0);
	}
}
END_TEST

/*
 * A range freed between two dirty ones joins both, with other ranges on the list
 * before and after them, whichever neighbour was freed last (the edge filters,
 * pages.c section 3: the scan stops early only when the filter says the other
 * neighbour is not there), and the 40 others, freed between live blocks, stay apart.
 */
START_TEST(test_dirty_coalesce_among_others)
{
	enum { NOTHER = 40 };
	struct folio *f, *g, *h, *k, *x, *a[NOTHER], *b[NOTHER];
	struct memdesc_stats st, st0;
	unsigned long pfn;

	for (int h_first = 0; h_first < 2; h_first++) {
		memdesc_purge();
		f = folio_alloc_pages(51);
		ck_assert_ptr_nonnull(f);
		pfn = folio_pfn(f);
		ck_assert_int_eq(folio_resize(f, 16), 0);
		g = folio_alloc_pages(16);
		h = folio_alloc_pages(16);
		k = folio_alloc_pages(3);		/* live, right after h */
		ck_assert_ptr_nonnull(g);
		ck_assert_ptr_nonnull(h);
		ck_assert_ptr_nonnull(k);
		ck_assert_uint_eq(folio_pfn(g), pfn + 16);
		ck_assert_uint_eq(folio_pfn(h), pfn + 32);
		ck_assert_uint_eq(folio_pfn(k), pfn + 48);
		for (int i = 0; i < NOTHER; i++) {
			b[i] = folio_alloc_pages(3);
			a[i] = folio_alloc_pages(2);
			ck_assert_ptr_nonnull(a[i]);
			ck_assert_ptr_nonnull(b[i]);
		}
		for (int i = 0; i < NOTHER / 2; i++)
			folio_put(a[i]);
		folio_put(h_first ? h : f);
		folio_put(h_first ? f : h);
		for (int i = NOTHER / 2; i < NOTHER; i++)
			folio_put(a[i]);
		memdesc_stats(&st);
		ck_assert_uint_eq(st.pages_dirty, 32 + 2 * NOTHER);
		ck_assert_int_eq(memdesc_verify(), 0);
		folio_put(g);				/* joins f's and h's ranges */
		ck_assert_int_eq(memdesc_verify(), 0);
		memdesc_stats(&st0);
		x = folio_alloc_pages(48);
		ck_assert_ptr_nonnull(x);
		ck_assert_uint_eq(folio_pfn(x), pfn);	/* the joined range, exactly */
		memdesc_stats(&st);
		ck_assert_uint_eq(st.pages_dirty, 2 * NOTHER);
		ck_assert_uint_eq(st.pages_arena_alloc, st0.pages_arena_alloc);
		for (int i = 0; i < NOTHER; i++) {	/* the others: still 2 pages each */
			a[i] = folio_alloc_pages(2);
			ck_assert_ptr_nonnull(a[i]);
		}
		memdesc_stats(&st);
		ck_assert_uint_eq(st.pages_dirty, 0);
		for (int i = 0; i < NOTHER; i++) {
			folio_put(a[i]);
			folio_put(b[i]);
		}
		folio_put(x);
		folio_put(k);
		ck_assert_int_eq(memdesc_verify(), 0);
	}
}
END_TEST

/*
 * Dirty ranges of 10, 6 and 8 pages (their first pfns in @pfn) between live blocks
 * (@live, 2 pages each), laid out in order by carving the dirty tail of one block:
 * 2 + 10 + 2 + 6 + 2 + 8 (the last range ends the run: a 1-page piece of it is all that
 * may join the arena after). @st: the statistics then.
 */
static void dirty_10_6_8(struct folio *live[3], unsigned long pfn[3], struct memdesc_stats *st)
{
	static const size_t sz[3] = { 10, 6, 8 };
	struct folio *d[3];

	memdesc_purge();
	live[0] = folio_alloc_pages(30);
	ck_assert_ptr_nonnull(live[0]);
	ck_assert_int_eq(folio_resize(live[0], 2), 0);
	for (int i = 0; i < 3; i++) {
		d[i] = folio_alloc_pages(sz[i]);
		ck_assert_ptr_nonnull(d[i]);
		if (i < 2) {
			live[i + 1] = folio_alloc_pages(2);
			ck_assert_ptr_nonnull(live[i + 1]);
		}
	}
	ck_assert_uint_eq(folio_pfn(d[2]), folio_pfn(live[0]) + 22);
	for (int i = 0; i < 3; i++) {
		pfn[i] = folio_pfn(d[i]);
		folio_put(d[i]);
	}
	memdesc_stats(st);
	ck_assert_uint_eq(st->pages_dirty, 24);
}

static void put_all(struct folio *f[], int n)
{
	for (int i = 0; i < n; i++)
		folio_put(f[i]);
	ck_assert_int_eq(memdesc_verify(), 0);
}

/*
 * Reuse from the dirty list (pages.c md_dirty_take): a range of exactly the size asked
 * for, else the smallest that holds it (carved at its front), else none (fresh pages
 * from the arena, the only ones FOLIO_ZEROED: they read as zero).
 */
START_TEST(test_dirty_best_fit)
{
	struct folio *live[3], *x, *y, *z;
	struct memdesc_stats a, b;
	unsigned long pfn[3];

	dirty_10_6_8(live, pfn, &a);
	x = folio_alloc_pages(7);		/* the 8, carved: 1 page stays */
	y = folio_alloc_pages(6);		/* the 6, exactly */
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(y);
	ck_assert_uint_eq(folio_pfn(x), pfn[2]);
	ck_assert_uint_eq(folio_pfn(y), pfn[1]);
	memdesc_stats(&b);
	ck_assert_uint_eq(b.pages_dirty, 11);
	ck_assert_uint_eq(b.pages_arena_alloc, a.pages_arena_alloc);
	z = folio_alloc_pages(12);		/* held by none: fresh */
	ck_assert_ptr_nonnull(z);
	memdesc_stats(&b);
	ck_assert_uint_eq(b.pages_dirty, 11);
	ck_assert_uint_eq(b.pages_arena_alloc, a.pages_arena_alloc + 12);
	ck_assert_uint_eq(x->f_flags & FOLIO_ZEROED, 0);
	ck_assert_uint_eq(y->f_flags & FOLIO_ZEROED, 0);
	ck_assert_uint_eq(z->f_flags & FOLIO_ZEROED, FOLIO_ZEROED);
	for (size_t i = 0; i < 12 * 4096; i += 8)
		ck_assert_uint_eq(*(uint64_t *)((char *)folio_address(z) + i), 0);
	put_all((struct folio *[]){ x, y, z }, 3);
	put_all(live, 3);
}
END_TEST

/*
 * An allocation that will grow (folio_alloc_growable) takes the front of the largest
 * dirty range, where folio_alloc_pages() would take the smallest that holds it, and
 * then grows in place over the rest of that range, with no fresh page.
 */
START_TEST(test_dirty_growable_largest)
{
	struct folio *live[3], *x, *z;
	struct memdesc_stats a, b;
	unsigned long pfn[3];

	dirty_10_6_8(live, pfn, &a);
	errno = 0;
	ck_assert_ptr_null(folio_alloc_growable(0));
	ck_assert_int_eq(errno, EINVAL);
	x = folio_alloc_growable(5);
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq(folio_pfn(x), pfn[0]);
	ck_assert_uint_eq(folio_nr_pages(x), 5);
	ck_assert_int_eq(folio_resize(x, 10), 0);	/* over the rest of the 10 */
	memdesc_stats(&b);
	ck_assert_uint_eq(b.pages_dirty, 14);
	ck_assert_uint_eq(b.pages_arena_alloc, a.pages_arena_alloc);
	ck_assert_int_ne(folio_resize(x, 11), 0);	/* a live block after it */
	z = folio_alloc_growable(9);			/* held by none: fresh */
	ck_assert_ptr_nonnull(z);
	memdesc_stats(&b);
	ck_assert_uint_eq(b.pages_dirty, 14);
	ck_assert_uint_eq(b.pages_arena_alloc, a.pages_arena_alloc + 9);
	put_all((struct folio *[]){ x, z }, 2);
	put_all(live, 3);
}
END_TEST

/*
 * An aligned request is carved from a dirty range that does not start aligned, at its
 * last aligned window (the front stays for the block before it to grow into).
 */
START_TEST(test_dirty_aligned_inside)
{
	struct memdesc_stats a, b;
	struct folio *f, *g;
	unsigned long pfn;

	memdesc_purge();
	f = folio_alloc_aligned(32, 32);
	ck_assert_ptr_nonnull(f);
	pfn = folio_pfn(f);
	ck_assert_int_eq(folio_resize(f, 3), 0);	/* [pfn + 3, pfn + 32) is dirty */
	memdesc_stats(&a);
	ck_assert_uint_eq(a.pages_dirty, 29);
	g = folio_alloc_aligned(8, 8);
	ck_assert_ptr_nonnull(g);
	memdesc_stats(&b);
	ck_assert_uint_eq(folio_pfn(g), pfn + 24);
	ck_assert_uint_eq(b.pages_arena_alloc, a.pages_arena_alloc);
	ck_assert_uint_eq(b.pages_dirty, 21);		/* the head, [pfn + 3, pfn + 24) */
	ck_assert_int_eq(folio_resize(f, 24), 0);	/* f grows into it */
	ck_assert_int_eq(memdesc_verify(), 0);
	folio_put(g);
	folio_put(f);
	memdesc_stats(&b);
	ck_assert_uint_eq(b.pages_dirty, 32);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/*
 * A dirty range that covers a whole OS chunk (ranges join) is carved and claimed
 * without passing through the arena's free state: the chunk is not released to the OS
 * and mapped again on the way (pages.c md_dirty_carve, md_dirty_claim).
 */
START_TEST(test_dirty_whole_chunk_kept)
{
	struct memdesc_stats a, b;
	struct folio *f, *g, *h;

	memdesc_purge();
	f = folio_alloc_aligned(512, 512);		/* one whole chunk */
	ck_assert_ptr_nonnull(f);
	folio_put(f);
	memdesc_stats(&a);
	ck_assert_uint_ge(a.pages_dirty, 512);
	g = folio_alloc_pages(16);			/* carved from it */
	ck_assert_ptr_nonnull(g);
	h = folio_alloc_pages(20);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(folio_resize(h, 300), 0);	/* claimed from it, or grown */
	memdesc_stats(&b);
	ck_assert_uint_eq(b.chunk_unmaps, a.chunk_unmaps);
	ck_assert_uint_eq(b.chunk_maps, a.chunk_maps);
	ck_assert_int_eq(memdesc_verify(), 0);
	folio_put(g);
	folio_put(h);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_chunks_released)
{
	struct memdesc_stats a, b, c;
	struct folio *f[8];

	memdesc_purge();
	memdesc_stats(&a);
	/* 8 x 4 MiB: new chunks. */
	for (int i = 0; i < 8; i++) {
		f[i] = folio_alloc(10);
		ck_assert_ptr_nonnull(f[i]);
		memset(folio_address(f[i]), 1, 4 << 20);
	}
	memdesc_stats(&b);
	ck_assert_uint_ge(b.bytes_mapped, a.bytes_mapped + (24u << 20));
	ck_assert_uint_ge(b.pages_folio, a.pages_folio + 8 * 1024);
	for (int i = 0; i < 8; i++)
		folio_put(f[i]);
	memdesc_purge();
	memdesc_stats(&c);
	ck_assert_uint_gt(c.chunk_unmaps, a.chunk_unmaps);
	ck_assert_uint_le(c.bytes_mapped, a.bytes_mapped + (4u << 20));
	ck_assert_uint_eq(c.pages_folio, a.pages_folio);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_stats)
{
	struct memdesc_stats a, b;
	struct folio *f;

	memdesc_stats(&a);
	f = folio_alloc(4);
	memdesc_stats(&b);
	ck_assert_uint_eq(b.pages_folio, a.pages_folio + 16);
	ck_assert_uint_eq(b.nr_folios, a.nr_folios + 1);
	ck_assert_uint_eq(b.meta_folios, b.nr_folios * sizeof(struct folio));
	ck_assert_uint_gt(b.meta_xa_nodes, 0);
	ck_assert_uint_gt(b.meta_vmem_tags, 0);
	ck_assert_uint_gt(b.bytes_limit, 0);
	ck_assert_uint_ge(b.bytes_mapped, 16 * MEMDESC_PAGE_SIZE);
	ck_assert_uint_ge(b.pages_slab, 1);
	/* The slab bitmap table: one page for every 8 MiB of committed frames, at least. */
	ck_assert_uint_ge(b.meta_bitmaps, MEMDESC_PAGE_SIZE);
	ck_assert_uint_ge(b.meta_bitmaps * 2048, b.bytes_mapped);
	folio_put(f);
	memdesc_stats(&b);
	ck_assert_uint_eq(b.pages_folio, a.pages_folio);
}
END_TEST

/*
 * memdesc_resident_scan: runs come in pfn order without overlap, and over a folio's
 * frames they report exactly what mincore says is resident there, with the folio's
 * word; once the folio is freed, whatever of them is still resident comes as free
 * frames (word 0).
 */
struct scan_view {
	unsigned long lo, hi;		/* the frames looked at */
	memdesc_t word;			/* the word expected there (0: free) */
	size_t as_word, as_other;	/* their resident frames, by word */
	unsigned long next;		/* first pfn after the last run */
	bool disordered;
};

static void scan_view_add(unsigned long pfn, size_t npages, memdesc_t md, void *arg)
{
	struct scan_view *v = arg;

	if (npages == 0 || pfn < v->next)
		v->disordered = true;
	v->next = pfn + npages;
	for (unsigned long i = pfn; i < pfn + npages; i++) {
		if (i < v->lo || i >= v->hi)
			continue;
		if (md == v->word)
			v->as_word++;
		else
			v->as_other++;
	}
}

static size_t resident_by_mincore(void *p, size_t npages)
{
	unsigned char vec[64];
	size_t n = 0;

	ck_assert_uint_le(npages, sizeof(vec));
	ck_assert_int_eq(mincore(p, npages * MEMDESC_PAGE_SIZE, vec), 0);
	for (size_t i = 0; i < npages; i++)
		n += vec[i] & 1;
	return n;
}

static struct scan_view scan_frames(unsigned long pfn, size_t npages, memdesc_t word)
{
	struct scan_view v = { .lo = pfn, .hi = pfn + npages, .word = word };

	ck_assert_int_eq(memdesc_resident_scan(scan_view_add, &v), 0);
	ck_assert(!v.disordered);
	return v;
}

START_TEST(test_resident_scan)
{
	struct folio *f = folio_alloc_pages(64);
	char *p;
	unsigned long pfn;
	memdesc_t word;
	struct scan_view v;
	size_t want;

	ck_assert_ptr_nonnull(f);
	p = folio_address(f);
	pfn = virt_to_pfn(p);
	word = pfn_to_memdesc(pfn);
	ck_assert_uint_ne(word, 0);
	p[0] = 1;
	p[5 * MEMDESC_PAGE_SIZE] = 1;
	for (int i = 10; i < 20; i++)
		p[(size_t)i * MEMDESC_PAGE_SIZE] = 1;
	want = resident_by_mincore(p, 64);
	ck_assert_uint_ge(want, 12);
	v = scan_frames(pfn, 64, word);
	ck_assert_uint_eq(v.as_word, want);
	ck_assert_uint_eq(v.as_other, 0);

	folio_put(f);
	want = resident_by_mincore(p, 64);
	v = scan_frames(pfn, 64, 0);
	ck_assert_uint_eq(v.as_word, want);
	ck_assert_uint_eq(v.as_other, 0);
}
END_TEST

/*
 * The bitmap table's pages for a large import are committed in runs (phys.c, section
 * 5): a first folio commits some, is freed and its chunks go back to the OS (the table
 * pages stay), then a larger one whose range starts on those committed pages and goes
 * on over new ones. Every word of the table for both folios' frames must be readable
 * and writable (a page left PROT_NONE kills the test), and the count of table pages
 * grows by no more than the pages the second folio's range spans.
 */
static size_t bitmap_table_pages(unsigned long pfn, size_t npages)
{
	uintptr_t first = (uintptr_t)md__bitmap_words(pfn) / MEMDESC_PAGE_SIZE;
	uintptr_t last = (uintptr_t)md__bitmap_words(pfn + npages - 1) / MEMDESC_PAGE_SIZE;

	return (size_t)(last - first + 1);
}

static void touch_bitmap_words(unsigned long pfn, size_t npages)
{
	for (size_t i = 0; i < npages; i += MD_BITMAP_PAGES) {
		volatile uint64_t *w = md__bitmap_words(pfn + i);

		*w = *w;	/* a folio's frames own no bitmap: the value stays */
	}
}

START_TEST(test_bitmap_commit_runs)
{
	const size_t small = 12u << 20 >> MEMDESC_PAGE_SHIFT, big = 72u << 20 >> MEMDESC_PAGE_SHIFT;
	struct memdesc_stats a, b;
	struct folio *f;
	unsigned long pfn;

	f = folio_alloc_pages(small);
	ck_assert_ptr_nonnull(f);
	touch_bitmap_words(folio_pfn(f), small);
	folio_put(f);
	memdesc_purge();
	memdesc_stats(&a);
	f = folio_alloc_pages(big);
	ck_assert_ptr_nonnull(f);
	pfn = folio_pfn(f);
	memdesc_stats(&b);
	ck_assert_uint_ge(bitmap_table_pages(pfn, big), 9);
	ck_assert_uint_gt(b.meta_bitmaps, a.meta_bitmaps);
	ck_assert_uint_le(b.meta_bitmaps - a.meta_bitmaps,
			  bitmap_table_pages(pfn, big) * MEMDESC_PAGE_SIZE);
	touch_bitmap_words(pfn, big);
	folio_put(f);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/*
 * A slab of the allocator's own descriptors (PAGES__META) takes free frames of the
 * committed arena's lowest window that has room (pages.c, section 3), not a range of the
 * dirty list, which may be anywhere: three ranges of 16 pages in one chunk, the first
 * freed and purged back to the arena, the third freed onto the dirty list; a META
 * request gets frames in the first 16 MiB and leaves the dirty range, which an ordinary
 * request then takes.
 */
START_TEST(test_meta_at_bottom)
{
	unsigned long r[3], meta, plain;

	memdesc_purge();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pages__get_range(16, 16, 0, &r[i], NULL), 0);
	ck_assert_uint_lt(r[2], 4096);		/* a fresh process: the first chunks */
	pages__put_range(r[0], 16);
	memdesc_purge();			/* r[0] free in the arena; r[1] keeps the chunk */
	pages__put_range(r[2], 16);		/* on the dirty list */
	ck_assert_int_eq(pages__get_range(16, 16, PAGES__META, &meta, NULL), 0);
	ck_assert_uint_ne(meta, r[2]);
	ck_assert_uint_lt(meta, 4096);
	ck_assert_int_eq(pages__get_range(16, 16, 0, &plain, NULL), 0);
	ck_assert_uint_eq(plain, r[2]);
	pages__put_range(meta, 16);
	pages__put_range(plain, 16);
	pages__put_range(r[1], 16);
	memdesc_purge();
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

static Suite *memdesc_suite(void)
{
	Suite *s = suite_create("memdesc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_init_and_pfn);
	tcase_add_test(tc, test_memdesc_word);
	tcase_add_test(tc, test_pages_alloc_sizes);
	tcase_add_test(tc, test_pages_alloc_bad_args);
	tcase_add_test(tc, test_pages_bad_free);
	tcase_add_test(tc, test_folio_orders);
	tcase_add_test(tc, test_folio_any_size);
	tcase_add_test(tc, test_folio_aligned);
	tcase_add_test(tc, test_folio_put_zero);
	tcase_add_test(tc, test_folio_split);
	tcase_add_test(tc, test_pages_resize);
	tcase_add_test(tc, test_pages_resize_bad);
	tcase_add_test(tc, test_folio_resize);
	tcase_add_test(tc, test_folio_move_pages);
	tcase_add_test(tc, test_folio_move_pages_bounded);
	tcase_add_test(tc, test_pcache_and_purge);
	tcase_add_test(tc, test_dirty_coalesce);
	tcase_add_test(tc, test_dirty_coalesce_among_others);
	tcase_add_test(tc, test_dirty_best_fit);
	tcase_add_test(tc, test_dirty_growable_largest);
	tcase_add_test(tc, test_dirty_aligned_inside);
	tcase_add_test(tc, test_dirty_whole_chunk_kept);
	tcase_add_test(tc, test_chunks_released);
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_resident_scan);
	tcase_add_test(tc, test_bitmap_commit_runs);
	tcase_add_test(tc, test_meta_at_bottom);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return mdt_run(memdesc_suite());
}
