/*
 * bench_memdesc: the page map, the page allocator and the slab allocator.
 *
 * 1. Metadata overhead (memdesc/meta/...): bytes of page entries (page-map XArray
 *    nodes), memdescs (struct folio and struct slab) and vmem boundary tags per MiB of
 *    memory in use, for all single-page folios, all 2 MiB folios and a mixed trace.
 *    Reported as counters beside Linux's struct page: 64 B per 4 KiB page, 16 KiB per
 *    MiB. "delta" counts only what the benchmark's allocations added; "total" is
 *    everything the process holds (internal caches included) over the same memory.
 * 2. Time: ns per pfn_to_memdesc() on random pages of a mixed set of folios; per
 *    single-page pages_alloc() + pages_free(); per kmem_cache_alloc() + free(), on one
 *    thread and on two threads that free each other's objects.
 */
#include "mdb.h"
#include "memdesc.h"
#include "slab.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define LINUX_STRUCT_PAGE_PER_MIB 16384.0

static double meta_bytes(const struct memdesc_stats *st)
{
	return (double)(st->meta_xa_nodes + st->meta_folios + st->meta_slabs +
			st->meta_vmem_tags);
}

static void meta_report(mdb_state *st, const struct memdesc_stats *a,
			const struct memdesc_stats *b)
{
	double mib = (double)(b->pages_folio - a->pages_folio) * MEMDESC_PAGE_SIZE / (1 << 20);

	mdb_counter(st, "in_use_MiB", mib);
	mdb_counter(st, "meta_delta_B_per_MiB", (meta_bytes(b) - meta_bytes(a)) / mib);
	mdb_counter(st, "meta_total_B_per_MiB", meta_bytes(b) / mib);
	mdb_counter(st, "xa_nodes_B_per_MiB",
		    (double)(b->meta_xa_nodes - a->meta_xa_nodes) / mib);
	mdb_counter(st, "memdescs_B_per_MiB",
		    (double)(b->meta_folios + b->meta_slabs - a->meta_folios - a->meta_slabs) /
			    mib);
	mdb_counter(st, "vmem_tags_B_per_MiB",
		    (double)(b->meta_vmem_tags - a->meta_vmem_tags) / mib);
	mdb_counter(st, "linux_struct_page_B_per_MiB", LINUX_STRUCT_PAGE_PER_MIB);
}

/* Allocate folios by a recipe until @bytes are in use; measure; free. */
static void meta_run(mdb_state *st, int kind, size_t bytes)
{
	size_t cap = bytes / MEMDESC_PAGE_SIZE + 1, n = 0, used = 0;
	struct folio **f = malloc(cap * sizeof(*f));
	struct memdesc_stats a, b;
	uint64_t x = 88172645463325252ULL;

	memdesc_init();
	memdesc_purge();
	memdesc_stats(&a);
	while (used < bytes / MEMDESC_PAGE_SIZE) {
		struct folio *g;

		if (kind == 0) {
			g = folio_alloc(0);
		} else if (kind == 1) {
			g = folio_alloc(9);
		} else {
			/* Mixed: many small, some medium of any size, a few large. */
			unsigned r;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			r = (unsigned)(x % 100);
			if (r < 50)
				g = folio_alloc(0);
			else if (r < 75)
				g = folio_alloc((unsigned)(1 + x / 100 % 4));
			else if (r < 95)
				g = folio_alloc_pages(2 + x / 100 % 60);
			else
				g = folio_alloc(9);
			/* Churn: free one in eight, so the arena is fragmented as in use. */
			if (n && r % 8 == 0) {
				size_t i = (size_t)(x / 7 % n);

				used -= folio_nr_pages(f[i]);
				folio_put(f[i]);
				f[i] = f[--n];
			}
		}
		if (!g) {
			mdb_skip_with_error(st, "allocation failed");
			break;
		}
		used += folio_nr_pages(g);
		f[n++] = g;
	}
	memdesc_stats(&b);
	meta_report(st, &a, &b);
	for (size_t i = 0; i < n; i++)
		folio_put(f[i]);
	free(f);
	memdesc_purge();
}

static void bm_meta_single(mdb_state *st)
{
	while (mdb_keep_running(st))
		meta_run(st, 0, (size_t)mdb_arg(st, 0) << 20);
}
MDB_REGISTER(bm_meta_single, .name = "memdesc/meta/single_page_folios", .nargs = 1, .nsets = 1,
	     .args = (const int64_t[]){ 256 }, .arg_names = (const char *const[]){ "MiB" },
	     .min_time = 0.01);

static void bm_meta_2m(mdb_state *st)
{
	while (mdb_keep_running(st))
		meta_run(st, 1, (size_t)mdb_arg(st, 0) << 20);
}
MDB_REGISTER(bm_meta_2m, .name = "memdesc/meta/2MiB_folios", .nargs = 1, .nsets = 1,
	     .args = (const int64_t[]){ 4096 }, .arg_names = (const char *const[]){ "MiB" },
	     .min_time = 0.01);

static void bm_meta_mixed(mdb_state *st)
{
	while (mdb_keep_running(st))
		meta_run(st, 2, (size_t)mdb_arg(st, 0) << 20);
}
MDB_REGISTER(bm_meta_mixed, .name = "memdesc/meta/mixed_trace", .nargs = 1, .nsets = 1,
	     .args = (const int64_t[]){ 1024 }, .arg_names = (const char *const[]){ "MiB" },
	     .min_time = 0.01);

/* ---- time ---------------------------------------------------------------------- */

static void bm_pfn_to_memdesc(mdb_state *st)
{
	size_t want = (size_t)mdb_arg(st, 0) << 20 >> 12, used = 0, n = 0;
	struct folio **f = malloc(want * sizeof(*f));
	unsigned long *pfns = malloc((1u << 16) * sizeof(*pfns));
	uint64_t x = 2463534242ULL;
	size_t i = 0;

	while (used < want) {
		unsigned order;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		order = x % 4 == 0 ? (unsigned)(x / 4 % 10) : 0;
		f[n] = folio_alloc(order);
		if (!f[n])
			break;
		used += folio_nr_pages(f[n++]);
	}
	for (int k = 0; k < (1 << 16); k++) {
		struct folio *g;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		g = f[x % n];
		pfns[k] = folio_pfn(g) + (x >> 20) % folio_nr_pages(g);
	}
	while (mdb_keep_running(st)) {
		memdesc_t md = pfn_to_memdesc(pfns[i++ & 0xffff]);

		mdb_do_not_optimize((void *)md);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
	for (size_t k = 0; k < n; k++)
		folio_put(f[k]);
	free(f);
	free(pfns);
}
MDB_REGISTER(bm_pfn_to_memdesc, .name = "memdesc/pfn_to_memdesc_random", .nargs = 1,
	     .nsets = 2, .args = (const int64_t[]){ 64, 1024 },
	     .arg_names = (const char *const[]){ "MiB" });

static struct folio bench_desc;

/*
 * arg 0: single-page folios kept live around the loop. With none, the page cycled is
 * alone in its page-map leaf, so every pair creates and frees (after a grace period)
 * an XArray node: the worst case. With some, as in a process that has memory in use,
 * the leaf stays.
 */
static struct folio **bench_live(size_t n)
{
	struct folio **live = calloc(n + 1, sizeof(*live));

	for (size_t i = 0; i < n; i++)
		live[i] = folio_alloc(0);
	return live;
}

static void bench_unlive(struct folio **live, size_t n)
{
	for (size_t i = 0; i < n; i++)
		folio_put(live[i]);
	free(live);
}

static void bm_pages_pair(mdb_state *st)
{
	memdesc_t md = memdesc_mk(&bench_desc, MEMDESC_FOLIO);
	size_t nlive = (size_t)mdb_arg(st, 0);
	struct folio **live;
	unsigned long pfn;

	memdesc_init();
	live = bench_live(nlive);
	while (mdb_keep_running(st)) {
		if (pages_alloc(md, 1, 1, &pfn)) {
			mdb_skip_with_error(st, "pages_alloc failed");
			break;
		}
		pages_free(pfn, 1);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
	bench_unlive(live, nlive);
}
MDB_REGISTER(bm_pages_pair, .name = "memdesc/pages_alloc_free_1page", .nargs = 1, .nsets = 2,
	     .args = (const int64_t[]){ 0, 1000 }, .arg_names = (const char *const[]){ "live" });

static void bm_folio_pair(mdb_state *st)
{
	size_t nlive = (size_t)mdb_arg(st, 0);
	struct folio **live = bench_live(nlive);

	while (mdb_keep_running(st)) {
		struct folio *f = folio_alloc(0);

		folio_put(f);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
	bench_unlive(live, nlive);
}
MDB_REGISTER(bm_folio_pair, .name = "memdesc/folio_alloc_put_order0", .nargs = 1, .nsets = 2,
	     .args = (const int64_t[]){ 0, 1000 }, .arg_names = (const char *const[]){ "live" });

static struct kmem_cache *bench_cache;

static void bm_kmem_pair(mdb_state *st)
{
	if (!bench_cache)
		bench_cache = kmem_cache_create("bench", (size_t)mdb_arg(st, 0), 0, 0);
	while (mdb_keep_running(st)) {
		void *p = kmem_cache_alloc(bench_cache);

		mdb_do_not_optimize(p);
		kmem_cache_free(bench_cache, p);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
}
MDB_REGISTER(bm_kmem_pair, .name = "memdesc/kmem_alloc_free", .nargs = 1, .nsets = 1,
	     .args = (const int64_t[]){ 64 }, .arg_names = (const char *const[]){ "size" });

/*
 * Two threads, each allocating and freeing the other's objects: thread t pushes its
 * objects into queue[t] (single producer, single consumer) and frees from queue[1 - t].
 */
#define XQ 1024
struct xq {
	_Alignas(64) atomic_size_t head;	/* consumer */
	_Alignas(64) atomic_size_t tail;	/* producer */
	void *slot[XQ];
};
static struct xq xqueue[2];
static struct kmem_cache *xcache;
static atomic_int xready;

static void bm_kmem_cross(mdb_state *st)
{
	int t = mdb_thread_index(st) & 1;
	struct xq *out = &xqueue[t], *in = &xqueue[1 - t];

	if (mdb_thread_index(st) == 0) {
		if (!xcache)
			xcache = kmem_cache_create("bench-cross", 64, 0, 0);
		atomic_store(&xready, 1);
	}
	while (!atomic_load(&xready))
		;
	while (mdb_keep_running(st)) {
		void *p = kmem_cache_alloc(xcache);
		size_t tail = atomic_load_explicit(&out->tail, memory_order_relaxed);
		size_t head = atomic_load_explicit(&in->head, memory_order_relaxed);

		if (tail - atomic_load_explicit(&out->head, memory_order_acquire) < XQ) {
			out->slot[tail % XQ] = p;
			atomic_store_explicit(&out->tail, tail + 1, memory_order_release);
		} else {
			kmem_cache_free(xcache, p);
		}
		if (head != atomic_load_explicit(&in->tail, memory_order_acquire)) {
			kmem_cache_free(xcache, in->slot[head % XQ]);
			atomic_store_explicit(&in->head, head + 1, memory_order_release);
		}
	}
	mdb_set_items_processed(st, mdb_iterations(st));
}
MDB_REGISTER(bm_kmem_cross, .name = "memdesc/kmem_alloc_free_cross_thread",
	     .threads = (const int[]){ 2 }, .nthreads = 1, .real_time = true);
