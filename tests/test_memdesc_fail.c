/*
 * test_memdesc_fail: the recursion and failure paths.
 *
 * A workload (folios of many orders and sizes, a split, folios resized in place, objects
 * of a magazine cache and of a no-magazine cache) runs while the OS refuses the N-th
 * chunk map, while vmem refuses the N-th boundary-tag refill, and while the page-map node
 * pool is empty and the N-th node allocation fails, for every N in a range; and with
 * memory exhausted at the limit, so that every cache (the internal ones too) meets a slab
 * boundary with no memory; and a move of pages that the OS fails half-way. Every call
 * must return a clean error (NULL and ENOMEM, -ENOMEM with the folio unchanged) or
 * succeed; nothing deadlocks (Check's timeout); after everything is freed the counters
 * are back to zero and memdesc_verify() passes.
 *
 * Each test runs in its own process (Check forks), so each reads its own limit.
 */
#include "mdt.h"
#include "fault.h"
#include "memdesc.h"
#include "memdesc_impl.h"
#include "slab.h"
#include "vmem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-bp.h>

#if defined(__SANITIZE_THREAD__)
/* liburcu is not instrumented (see test_slab.c). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:liburcu-bp.so\nrace:_urcu_bp_read_lock\n"
	       "race:_urcu_bp_read_unlock\n";
}
#endif

#define REQ(cond)                                                                      \
	do {                                                                           \
		if (!(cond))                                                           \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                \
	} while (0)

#define NF 48

/* Loop bounds: the full range in the plain build, at least @min in sanitizer builds. */
static unsigned long span(unsigned long full, unsigned long min)
{
	unsigned long n = (unsigned long)mdt_scaled(full);

	return n < min ? min : n;
}
#define NO 3000

static struct kmem_cache *cmag, *cnomag;

static void setup_caches(void)
{
	cmag = kmem_cache_create("fail-mag", 200, 0, 0);
	cnomag = kmem_cache_create("fail-nomag", 72, 0, KMC_NOMAGAZINE);
	REQ(cmag && cnomag);
}

/* Free everything, give it back, and check that nothing leaked. */
static void check_clean(void)
{
	struct memdesc_stats st;
	struct kmem_cache_stats cs;

	kmem_thread_flush();
	kmem_reap_all();
	kmem_reap_all();
	md_rcu_barrier();	/* slab pages of type-stable caches are freed after a GP */
	memdesc_purge();
	memdesc_stats(&st);
	REQ(st.pages_rcu_pending == 0);
	REQ(st.pages_folio == 0);
	REQ(st.nr_folios == 0);
	REQ(st.pages_split_held == 0);
	REQ(st.pages_dirty == 0);
	REQ(st.pages_pcache == 0);
	REQ(st.bytes_mapped <= st.bytes_limit);
	kmem_cache_stats(cmag, &cs);
	REQ(cs.objs_slab_inuse == 0 && cs.slabs == 0);
	kmem_cache_stats(cnomag, &cs);
	REQ(cs.objs_slab_inuse == 0 && cs.slabs == 0);
	REQ(kmem_cache_verify(cmag) == 0);
	REQ(kmem_cache_verify(cnomag) == 0);
	REQ(memdesc_verify() == 0);
}

/* Run the workload; every failure must be clean. Returns the number of failures. */
static int workload(uint64_t seed)
{
	struct folio *f[NF];
	void *o1[NO], *o2[NO];
	int nf = 0, n1 = 0, n2 = 0, failures = 0;
	struct mdt_rng r;

	mdt_rng_init(&r, seed);
	for (int i = 0; i < NF; i++) {
		struct folio *x;

		errno = 0;
		if (i % 3 == 2)
			x = folio_alloc_pages(3 + mdt_rng_below(&r, 700));
		else
			x = folio_alloc((unsigned int)mdt_rng_below(&r, 10));
		if (!x) {
			REQ(errno == ENOMEM);
			failures++;
			continue;
		}
		memset(folio_address(x), 0x77, folio_nr_pages(x) * MEMDESC_PAGE_SIZE);
		f[nf++] = x;
	}
	for (int i = 0; i < NO; i++) {
		void *p;

		errno = 0;
		p = kmem_cache_alloc(i & 1 ? cmag : cnomag);
		if (!p) {
			REQ(errno == ENOMEM);
			failures++;
			continue;
		}
		if (i & 1)
			o1[n1++] = p;
		else
			o2[n2++] = p;
	}
	/* Split the first folio of order >= 2 into order 0. */
	for (int i = 0; i < nf; i++) {
		unsigned int order = folio_order(f[i]);
		unsigned long pfn = folio_pfn(f[i]);
		struct memdesc_stats a, b;
		int rc;

		if (order == FOLIO_ORDER_NONE || order < 2)
			continue;
		memdesc_stats(&a);
		rc = folio_split(f[i], 0);
		if (rc) {
			REQ(rc == -ENOMEM);
			failures++;
			memdesc_stats(&b);
			REQ(folio_nr_pages(f[i]) == ((size_t)1 << order));
			REQ(folio_order(f[i]) == order);
			REQ(a.nr_folios == b.nr_folios);
			for (size_t k = 0; k < ((size_t)1 << order); k++)
				REQ(pfn_to_memdesc(pfn + k) == memdesc_mk(f[i], MEMDESC_FOLIO));
			break;
		}
		/* The pieces are freed here, f[i] is the first of them. */
		for (size_t k = 1; k < ((size_t)1 << order); k++) {
			struct folio *g = virt_to_folio(pfn_to_virt(pfn + k));

			REQ(g && folio_nr_pages(g) == 1);
			folio_put(g);
		}
		break;
	}
	/* Shrink the folios of any size to a third in place, then grow them back. */
	for (int i = 0; i < nf; i++) {
		size_t n = folio_nr_pages(f[i]), m = n / 3 + 1;
		unsigned long pfn = folio_pfn(f[i]);
		memdesc_t md = memdesc_mk(f[i], MEMDESC_FOLIO);
		int rc;

		if (folio_order(f[i]) != FOLIO_ORDER_NONE)
			continue;
		rc = folio_resize(f[i], m);
		if (rc) {
			REQ(rc == -ENOMEM);
			failures++;
			m = n;
		}
		for (int pass = 0; pass < 2; pass++) {
			REQ(folio_nr_pages(f[i]) == m && folio_pfn(f[i]) == pfn);
			for (size_t k = 0; k < m; k++)
				REQ(pfn_to_memdesc(pfn + k) == md);
			REQ(pfn_to_memdesc(pfn + m) != md);
			if (pass)
				break;
			REQ(((unsigned char *)folio_address(f[i]))[m * MEMDESC_PAGE_SIZE - 1] == 0x77);
			/* Growing may find the pages taken (-ENOMEM, unchanged): not a failure. */
			rc = folio_resize(f[i], n);
			REQ(rc == 0 || rc == -ENOMEM);
			if (rc == 0)
				m = n;
		}
	}
	for (int i = 0; i < nf; i++)
		folio_put(f[i]);
	for (int i = 0; i < n1; i++)
		kmem_cache_free(cmag, o1[i]);
	for (int i = 0; i < n2; i++)
		kmem_cache_free(cnomag, o2[i]);
	return failures;
}

START_TEST(test_chunk_map_failures)
{
	int failures = 0;
	size_t refused = 0;

	setup_caches();
	check_clean();
	for (unsigned long n = 1; n <= span(40, 8); n++) {
		struct memdesc_stats a, b;

		memdesc_stats(&a);
		fault_arm(FAULT_OS_MAP, n, 1);
		failures += workload(n);
		fault_disarm_all();
		memdesc_stats(&b);
		/*
		 * The refusal happened (an allocation may still succeed: after a refusal the
		 * page allocator gives back what it holds and tries once more).
		 */
		REQ(b.chunk_map_failures <= a.chunk_map_failures + 1);
		refused += b.chunk_map_failures - a.chunk_map_failures;
		check_clean();
	}
	REQ(refused > 0);
	/* With the OS refusing several times in a row, allocations fail cleanly. */
	for (unsigned long n = 1; n <= span(10, 4); n++) {
		fault_arm(FAULT_OS_MAP, n, 3);
		failures += workload(n + 1000);
		fault_disarm_all();
		check_clean();
	}
	/* Nothing is broken afterwards. */
	REQ(workload(99) == 0);
	check_clean();
}
END_TEST

START_TEST(test_tag_refill_failures)
{
	int failures = 0;

	setup_caches();
	check_clean();
	for (unsigned long n = 1; n <= span(40, 8); n++) {
		fault_arm(FAULT_VMEM_TAG, n, 1);
		failures += workload(n);
		fault_disarm_all();
		check_clean();
	}
	REQ(workload(99) == 0);
	check_clean();
	(void)failures;
}
END_TEST

START_TEST(test_node_hook_failures)
{
	int failures = 0;

	setup_caches();
	check_clean();
	for (unsigned long n = 1; n <= span(60, 12); n++) {
		md__test_node_pool_empty(true);
		fault_arm(FAULT_XA_NODE, n, 1);
		failures += workload(n);
		fault_disarm_all();
		md__test_node_pool_empty(false);
		check_clean();
	}
	REQ(failures > 0);
	REQ(workload(99) == 0);
	check_clean();
}
END_TEST

/*
 * pages_resize with both reserves empty at once: the page arena's boundary tags given
 * back to the pool and the page-map node pool held aside, then the tag refill failing
 * from its m-th call on and the node allocation from its n-th, for every n and m.
 * Each way of resizing: a grow into free arena pages, a grow into a dirty range taken
 * whole or in part, a shrink. Every call succeeds or is -ENOMEM with the folio, its
 * page map, its contents and the counters exactly as before; nothing leaks. A grow
 * whose store found no node used to be undone by a vmem shrink, which needs a tag:
 * with the refill failing too, that aborted (n = m = 1, a grow into the arena).
 */
enum rs_kind { RS_GROW_ARENA, RS_GROW_DIRTY, RS_GROW_DIRTY_PART, RS_SHRINK, RS_NR };

/* The folio for one resize of @kind (faults off), its sizes in *@fromp and *@top. */
static struct folio *resize_setup(enum rs_kind kind, bool aligned, size_t *fromp,
				  size_t *top)
{
	size_t whole = aligned ? 128 : 150, half = whole / 2;
	struct folio *f = aligned ? folio_alloc(7) : folio_alloc_pages(whole);

	REQ(f != NULL);
	memset(folio_address(f), 0x5a, whole * MEMDESC_PAGE_SIZE);
	*fromp = half;
	switch (kind) {
	case RS_GROW_ARENA:
		*top = half + 5;
		break;
	case RS_GROW_DIRTY:
		*top = whole;
		break;
	case RS_GROW_DIRTY_PART:
		*top = half + 5;
		break;
	default:
		*fromp = whole;
		*top = whole - 37;
		return f;
	}
	/* The tail goes to the dirty list; for a grow into the arena, on to the arena. */
	REQ(folio_resize(f, half) == 0);
	if (kind == RS_GROW_ARENA)
		memdesc_purge();
	return f;
}

/* @f maps exactly its @n pages, holds its contents, and the map is sound. */
static void resize_check(struct folio *f, size_t n, size_t kept)
{
	unsigned long pfn = folio_pfn(f);
	memdesc_t md = memdesc_mk(f, MEMDESC_FOLIO);
	const unsigned char *p = folio_address(f);

	REQ(folio_nr_pages(f) == n);
	for (size_t k = 0; k < n; k++)
		REQ(pfn_to_memdesc(pfn + k) == md);
	REQ(pfn_to_memdesc(pfn + n) != md);
	REQ(pages__is_allocation(pfn, n, md));
	REQ(p[0] == 0x5a && p[kept * MEMDESC_PAGE_SIZE - 1] == 0x5a);
	REQ(memdesc_verify() == 0);
}

START_TEST(test_resize_out_of_tags_and_nodes)
{
	int failures = 0, by_tags = 0, by_nodes = 0, kinds_failed[RS_NR] = { 0 };

	setup_caches();
	check_clean();
	for (unsigned long n = 1; n <= span(8, 3); n++) {
		for (unsigned long m = 1; m <= 3; m++) {
			for (int kind = 0; kind < RS_NR; kind++) {
				size_t from, to;
				struct folio *f = resize_setup(kind, (n + m) % 2, &from, &to);
				unsigned long tags = fault_injected(FAULT_VMEM_TAG);
				unsigned long nodes = fault_injected(FAULT_XA_NODE);
				struct memdesc_stats a, b;
				int rc;

				memdesc_stats(&a);
				md__test_node_pool_empty(true);
				md__test_arena_tags_empty();
				fault_arm(FAULT_XA_NODE, n, 1000000);
				fault_arm(FAULT_VMEM_TAG, m, 1000000);
				rc = folio_resize(f, to);
				fault_disarm_all();
				md__test_node_pool_empty(false);
				memdesc_stats(&b);
				REQ(rc == 0 || rc == -ENOMEM);
				if (rc) {
					failures++;
					kinds_failed[kind]++;
					by_tags += fault_injected(FAULT_VMEM_TAG) > tags;
					by_nodes += fault_injected(FAULT_XA_NODE) > nodes;
				}
				resize_check(f, rc ? from : to, from < to ? from : to);
				REQ(b.pages_folio == a.pages_folio + folio_nr_pages(f) - from);
				folio_put(f);
				check_clean();
			}
		}
	}
	/*
	 * Each refusal, and each way of resizing, met -ENOMEM; except a grow into a whole
	 * dirty range, which needs neither: no tag (the join gives one back) and no node
	 * (the page map keeps the leaves it just emptied, section 9 of pages.c).
	 */
	REQ(failures > 0 && by_tags > 0 && by_nodes > 0);
	for (int kind = 0; kind < RS_NR; kind++)
		if (kind != RS_GROW_DIRTY)
			ck_assert_msg(kinds_failed[kind] > 0, "kind %d never failed", kind);
}
END_TEST

START_TEST(test_split_failure_leaves_folio)
{
	struct folio *f = folio_alloc(9);
	unsigned long pfn = folio_pfn(f);
	int rc = -ENOMEM;

	setup_caches();
	for (unsigned long n = 1; n <= 64 && rc; n++) {
		struct memdesc_stats a, b;

		memdesc_stats(&a);
		md__test_node_pool_empty(true);
		fault_arm(FAULT_XA_NODE, n, 1);
		rc = folio_split(f, 0);
		fault_disarm_all();
		md__test_node_pool_empty(false);
		memdesc_stats(&b);
		if (rc) {
			REQ(rc == -ENOMEM);
			REQ(folio_nr_pages(f) == 512 && folio_order(f) == 9);
			REQ(a.nr_folios == b.nr_folios && a.pages_folio == b.pages_folio);
			for (size_t k = 0; k < 512; k++)
				REQ(pfn_to_memdesc(pfn + k) == memdesc_mk(f, MEMDESC_FOLIO));
			REQ(memdesc_verify() == 0);
		}
	}
	REQ(rc == 0);
	for (size_t k = 511; k > 0; k--)
		folio_put(virt_to_folio(pfn_to_virt(pfn + k)));
	folio_put(f);
	check_clean();
}
END_TEST

/*
 * A move the OS fails after it unmapped the destination (what FAULT_OS_MOVE injects):
 * -ENOMEM, the source unchanged, the destination mapped again (writable, empty) and
 * still the folio's; then the move goes through.
 */
START_TEST(test_move_failure_remaps)
{
	struct folio *src = folio_alloc_pages(16), *dst = folio_alloc_pages(16);
	unsigned char *s, *d;
	struct memdesc_stats a, b;

	setup_caches();
	REQ(src && dst);
	s = folio_address(src);
	d = folio_address(dst);
	memset(s, 0x3c, 16 * MEMDESC_PAGE_SIZE);
	memset(d, 0x4d, 16 * MEMDESC_PAGE_SIZE);
	memdesc_stats(&a);
	fault_arm(FAULT_OS_MOVE, 1, 1);
	REQ(folio_move_pages(dst, src, 16) == -ENOMEM);
	fault_disarm_all();
	memdesc_stats(&b);
	REQ(b.moves == a.moves && fault_injected(FAULT_OS_MOVE) == 1);
	for (size_t i = 0; i < 16 * MEMDESC_PAGE_SIZE; i += 601)
		REQ(s[i] == 0x3c && d[i] == 0);
	memset(d, 0x5e, 16 * MEMDESC_PAGE_SIZE);
	REQ(virt_to_folio(d + 15 * MEMDESC_PAGE_SIZE) == dst);
	REQ(memdesc_verify() == 0);
	if (mdt_os_moves_pages()) {
		REQ(folio_move_pages(dst, src, 16) == 0);
		for (size_t i = 0; i < 16 * MEMDESC_PAGE_SIZE; i += 601)
			REQ(d[i] == 0x3c && s[i] == 0);
	}
	folio_put(src);
	folio_put(dst);
	check_clean();
}
END_TEST

/* Memory exhausted at the limit: every cache meets its slab boundary with nothing left. */
START_TEST(test_limit_exhaustion)
{
	static struct folio *f[64 * 256];
	struct memdesc_stats st;
	size_t n = 0, again = 0;
	void *objs[4096];
	int nobj = 0;

	setenv("MEMDESC_OPTIONS", "limit=48M", 1);
	setup_caches();
	memdesc_stats(&st);
	REQ(st.bytes_limit == (size_t)48 << 20);
	/* Big folios until the limit says no. */
	for (;;) {
		errno = 0;
		f[n] = folio_alloc(9);
		if (!f[n]) {
			REQ(errno == ENOMEM);
			break;
		}
		n++;
		REQ(n < 64);
	}
	REQ(n >= 16);
	/* Then single pages (the folio cache and the page map grow too) until no. */
	for (;;) {
		errno = 0;
		f[n] = folio_alloc(0);
		if (!f[n]) {
			REQ(errno == ENOMEM);
			break;
		}
		n++;
	}
	/* Objects until no: the caches are at a slab boundary with no memory. */
	for (; nobj < 4096; nobj++) {
		errno = 0;
		objs[nobj] = kmem_cache_alloc(nobj & 1 ? cmag : cnomag);
		if (!objs[nobj]) {
			REQ(errno == ENOMEM);
			break;
		}
	}
	REQ(nobj < 4096);
	{
		struct folio *g;
		int rc = folio_split(f[0], 0);

		/* It may fail for want of descriptors; either way consistently. */
		REQ(rc == 0 || rc == -ENOMEM);
		if (rc == 0) {
			for (size_t k = 1; k < 512; k++) {
				g = virt_to_folio(pfn_to_virt(folio_pfn(f[0]) + k));
				folio_put(g);
			}
		}
	}
	memdesc_stats(&st);
	REQ(st.bytes_mapped <= st.bytes_limit);
	REQ(memdesc_verify() == 0);
	for (int i = 0; i < nobj; i++)
		kmem_cache_free(i & 1 ? cmag : cnomag, objs[i]);
	for (size_t i = 0; i < n; i++)
		folio_put(f[i]);
	check_clean();
	/* The memory came back: the big folios fit again. */
	for (again = 0; again < n && again < 16; again++) {
		f[again] = folio_alloc(9);
		REQ(f[again] != NULL);
	}
	for (size_t i = 0; i < again; i++)
		folio_put(f[i]);
	check_clean();
}
END_TEST

START_TEST(test_options_limit)
{
	struct memdesc_stats st;

	setenv("MEMDESC_OPTIONS", "stats=1,limit=16M,other", 1);
	setenv("MEMDESC_LIMIT", "1G", 1);	/* MEMDESC_OPTIONS wins */
	memdesc_stats(&st);
	REQ(st.bytes_limit == (size_t)16 << 20);
}
END_TEST

START_TEST(test_env_limit)
{
	struct memdesc_stats st;

	unsetenv("MEMDESC_OPTIONS");
	setenv("MEMDESC_LIMIT", "32m", 1);
	memdesc_stats(&st);
	REQ(st.bytes_limit == (size_t)32 << 20);
}
END_TEST

START_TEST(test_bad_limit)
{
	struct memdesc_stats st;

	setenv("MEMDESC_OPTIONS", "limit=lots", 1);	/* reported, default */
	unsetenv("MEMDESC_LIMIT");
	memdesc_stats(&st);
	REQ(st.bytes_limit == (size_t)64 << 30);
}
END_TEST

START_TEST(test_tiny_limit)
{
	struct memdesc_stats st;

	setenv("MEMDESC_OPTIONS", "limit=1K", 1);	/* raised to the minimum */
	memdesc_stats(&st);
	REQ(st.bytes_limit == (size_t)8 << 20);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memdesc_fail");
	TCase *tc = tcase_create("fail");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_chunk_map_failures);
	tcase_add_test(tc, test_tag_refill_failures);
	tcase_add_test(tc, test_node_hook_failures);
	tcase_add_test(tc, test_resize_out_of_tags_and_nodes);
	tcase_add_test(tc, test_split_failure_leaves_folio);
	tcase_add_test(tc, test_move_failure_remaps);
	tcase_add_test(tc, test_limit_exhaustion);
	tcase_add_test(tc, test_options_limit);
	tcase_add_test(tc, test_env_limit);
	tcase_add_test(tc, test_bad_limit);
	tcase_add_test(tc, test_tiny_limit);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
