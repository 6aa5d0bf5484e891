/*
 * bench_pages: page-level allocation and the page-to-descriptor lookup, against what a
 * program without memdesc would use.
 *
 * pages/alloc_free/alloc:A/pages:N   N pages (4 KiB each, N from 1 to 512) allocated,
 *	the first byte of each written, freed. memdesc: folio_alloc_pages(N) + folio_put
 *	(pages_alloc under a new folio descriptor); the others: their aligned allocation of
 *	N * 4 KiB at 4 KiB alignment (glibc __libc_memalign, jemalloc mallocx with
 *	MALLOCX_ALIGN, mimalloc mi_malloc_aligned) and free.
 *
 * pages/lookup/alloc:A/MiB:M   the descriptor of a random page among M MiB of folios of
 *	mixed orders: memdesc's pfn_to_memdesc() (an RCU walk of the page-map XArray)
 *	against a flat array of one word per page (vmemmap-like: one load), read at the
 *	same precomputed pfns. bench_memdesc.c measures pfn_to_memdesc alone and the
 *	metadata overhead per MiB; this row only adds the flat array beside it.
 */
#include "alloc_table.h"
#include "mdb.h"
#include "memdesc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static inline uint64_t pg_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void bm_pages_alloc_free(mdb_state *st)
{
	long which = (long)mdb_arg(st, 0);
	const struct mdb_alloc *a = mdb_alloc_get(which);
	size_t npages = (size_t)mdb_arg(st, 1), bytes = npages * MEMDESC_PAGE_SIZE;

	if (a == NULL || a->malloc == NULL) {
		mdb_skip_with_error(st, "allocator not built in (library missing at configure)");
		return;
	}
	if (!mdb_alloc_check()) {
		mdb_skip_with_error(st, "malloc() is not glibc's: a peer interposes");
		return;
	}
	mdb_set_label(st, a->name);
	while (mdb_keep_running(st)) {
		struct folio *f = NULL;
		char *p;

		if (which == MDB_MEMDESC) {
			f = folio_alloc_pages(npages);
			p = f ? folio_address(f) : NULL;
		} else {
			p = a->aligned_alloc(MEMDESC_PAGE_SIZE, bytes);
		}
		if (p == NULL) {
			mdb_skip_with_error(st, "allocation failed");
			return;
		}
		for (size_t i = 0; i < bytes; i += MEMDESC_PAGE_SIZE)
			p[i] = 1;
		mdb_do_not_optimize(p);
		if (which == MDB_MEMDESC)
			folio_put(f);
		else
			a->free(p);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
	mdb_set_bytes_processed(st, mdb_iterations(st) * (int64_t)bytes);
}

#define PA(n) 0, n, 1, n, 2, n, 3, n
MDB_REGISTER(bm_pages_alloc_free, .name = "pages/alloc_free", .nargs = 2, .nsets = 36,
	     .arg_names = (const char *const[]){ "alloc", "pages" },
	     .args = (const int64_t[]){ PA(1), PA(2), PA(3), PA(8), PA(17), PA(64), PA(100),
					PA(256), PA(512) });

/* ---- lookup -------------------------------------------------------------------- */

#define LOOKUPS (1u << 16)

/* Folios of M MiB, a flat copy of their page entries and the random pfns to read. */
static struct {
	size_t mib;
	struct folio **folios;
	size_t nfolios;
	memdesc_t *flat;	/* flat[pfn - lo] */
	unsigned long lo, hi;
	unsigned long pfns[LOOKUPS];
} lk;

static void lookup_free(void)
{
	for (size_t i = 0; i < lk.nfolios; i++)
		folio_put(lk.folios[i]);
	free(lk.folios);
	if (lk.flat)
		munmap(lk.flat, (lk.hi - lk.lo + 1) * sizeof(memdesc_t));
	memset(&lk, 0, sizeof(lk) - sizeof(lk.pfns));
}

static int lookup_build(size_t mib)
{
	size_t want = mib << 20 >> MEMDESC_PAGE_SHIFT, used = 0;
	uint64_t x = 2463534242ULL;

	if (lk.mib == mib)
		return 0;
	lookup_free();
	lk.folios = malloc(want * sizeof(*lk.folios));
	if (lk.folios == NULL)
		return -1;
	lk.lo = ~0UL;
	while (used < want) {
		unsigned order = pg_rand(&x) % 4 == 0 ? (unsigned)(x / 4 % 10) : 0;
		struct folio *f = folio_alloc(order);

		if (f == NULL)
			return -1;
		lk.folios[lk.nfolios++] = f;
		used += folio_nr_pages(f);
		if (folio_pfn(f) < lk.lo)
			lk.lo = folio_pfn(f);
		if (folio_pfn(f) + folio_nr_pages(f) - 1 > lk.hi)
			lk.hi = folio_pfn(f) + folio_nr_pages(f) - 1;
	}
	lk.flat = mmap(NULL, (lk.hi - lk.lo + 1) * sizeof(memdesc_t), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (lk.flat == MAP_FAILED) {
		lk.flat = NULL;
		return -1;
	}
	for (unsigned long pfn = lk.lo; pfn <= lk.hi; pfn++)
		lk.flat[pfn - lk.lo] = pfn_to_memdesc(pfn);
	for (unsigned i = 0; i < LOOKUPS; i++) {
		struct folio *f = lk.folios[pg_rand(&x) % lk.nfolios];

		lk.pfns[i] = folio_pfn(f) + (x >> 20) % folio_nr_pages(f);
	}
	lk.mib = mib;
	return 0;
}

static void bm_lookup(mdb_state *st)
{
	int flat = mdb_arg(st, 0) != 0;
	unsigned i = 0;

	if (lookup_build((size_t)mdb_arg(st, 1)) != 0) {
		lookup_free();
		mdb_skip_with_error(st, "cannot allocate the folios");
		return;
	}
	mdb_set_label(st, flat ? "flat_array" : "memdesc");
	if (flat) {
		while (mdb_keep_running(st))
			mdb_do_not_optimize((void *)lk.flat[lk.pfns[i++ % LOOKUPS] - lk.lo]);
	} else {
		while (mdb_keep_running(st))
			mdb_do_not_optimize((void *)pfn_to_memdesc(lk.pfns[i++ % LOOKUPS]));
	}
	mdb_set_items_processed(st, mdb_iterations(st));
	/* The folios stay for the other rows of this size; the next size frees them. */
}
MDB_REGISTER(bm_lookup, .name = "pages/lookup", .nargs = 2, .nsets = 4,
	     .arg_names = (const char *const[]){ "alloc", "MiB" },
	     .args = (const int64_t[]){ 0, 64, 1, 64, 0, 1024, 1, 1024 });
