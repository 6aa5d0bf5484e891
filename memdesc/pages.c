/*
 * pages.c: the page map (pfn -> memdesc) and the page allocator.
 *
 * 1. The page map
 *    md_pagemap is an XArray indexed by pfn whose entries are the one-word page
 *    entries. The slot holds xa_mk_value(md): the XArray keeps entries whose low two
 *    bits are 10 for itself, and a memdesc word has its type in the low 4 bits, so the
 *    word is stored as a value entry (shifted left by one, bit 0 set). The slot is still
 *    the one word; decoding is one shift. (Descriptor pointers are user-space addresses,
 *    below 2^63, so nothing is lost.) An allocation of 2^k pages at a multiple of 2^k
 *    is ONE multi-index entry (xa_store_order); any other run of N pages is the minimal
 *    set of aligned power-of-two entries (xa_store_range): at most 2*log2(N). There is
 *    no other per-page array.
 *
 * 2. Allocations and their validation
 *    An allocation is the run of pages mapped to its memdesc (every live allocation has
 *    its own descriptor). pages_free(pfn, n) checks, in O(entries * height), that the
 *    pages [pfn, pfn + n) all map to one memdesc with no hole and that pfn - 1 and
 *    pfn + n do not: anything else is reported and changes nothing.
 *
 * 3. Where free frames go (hysteresis against page faults)
 *    - Single pages come from page blocks: 64 aligned pages taken from the arena as
 *      one segment, with a bitmap of free pages (struct md_pblock, found by pfn / 64 in
 *      md_blockmap). A vmem boundary tag per page would cost 56 bytes a page, nearly
 *      Linux's struct page on its own; a block costs under a byte a page. A block
 *      whose pages are all free goes to the dirty list as one range (one spare is kept).
 *    - A per-thread page cache of single frames (MD_PCACHE_MAX) serves one-page
 *      allocations with no lock; it refills MD_PCACHE_REFILL pages from the blocks at
 *      once, and when full, half of it goes back to the blocks in one locked step.
 *      Drained at thread exit and by memdesc_thread_drain().
 *    - The dirty list: freed ranges stay mapped and resident for reuse by an allocation
 *      of the same size and alignment (LIFO, hot first), or failing that carved from
 *      the smallest larger one that holds it at that alignment: at its front, or at
 *      the last aligned window when it does not start aligned (md_carve_off); head
 *      and tail go back on the list. An allocation that will likely grow in place
 *      (PAGES__GROW: a block realloc moved because it grew) takes the front of the
 *      largest range instead, so that the rest of that range lies after it for the
 *      next grow (section 7): a block doubled from 1 B to 1 MiB round after round
 *      otherwise came to sit in holes whose next pages other allocations had taken,
 *      and after 30-100 rounds moved at 64, 128, 256 and 512 KiB (960 KiB copied a
 *      round); now once a round at most (test_realloc_doubling_in_place).
 *      A freed range is
 *      joined with the dirty ranges right before and after it (among the newest
 *      MD_DIRTY_SCAN; vmem_join: no allocation, on the free path too), so that
 *      memory freed in pieces serves a later larger request: without it, CPython's
 *      outgrown dict tables and freed strings sat on the list in pieces too small for
 *      the next round's tables, which took fresh pages (pywork: +2 MiB of peak per
 *      round). Ranges of two OS chunks (two spans of the arena) stay apart. When it
 *      holds more than max(2 MiB, 1/4 of the memory allocated from the page arena)
 *      or MD_DIRTY_SLOTS ranges, the oldest are purged until it is below half of
 *      that: sorted by pfn, adjacent ranges merged, returned with MADV_DONTNEED, and
 *      freed to the page arena.
 *      Memory is given back in batches (few madvise calls) and only once it has stayed
 *      free through a turnover of the list, not on every free: returning memory eagerly
 *      costs a page fault per page on reuse. The floor was 8 MiB: in a small process
 *      that is half its heap kept idle (with md_malloc.c's large-block cache, 2.5 MiB
 *      of pywork's peak); a quarter of the arena keeps a big one from faulting
 *      (mt_alloc's time did not move). At 512 KiB, a block grown by realloc to 1 MiB
 *      and freed faulted its pages in again every round (21 -> 300 us).
 *    - Reclaim before growing: memory kept idle above us (slab caches' depot
 *      magazines and empty slabs) is resident and serves only its own size class.
 *      When a range has to come from the arena (fresh pages: page faults and a higher
 *      peak) after at least max(1 MiB, 1/8 of the arena's allocated pages) of traffic
 *      (pages handed out plus pages freed to the dirty list) since the last request,
 *      memdesc_reclaim_due() says so once; the malloc layer then reaps every cache
 *      (md_malloc.c md_reclaim_maybe), and what comes back lands here, joined, for
 *      the growth to reuse. Driven by allocator activity, not by time; a program in a
 *      steady state takes no fresh pages and never reclaims. pywork: the 4.3 MiB of
 *      freed blobs the depots held were no longer a second copy of the next round's
 *      growth. Two more triggers, because the traffic bound let idle memory stay
 *      resident while the program grew elsewhere (pywork's objects under 512 bytes
 *      come from CPython's own mmap'ed arenas, which we never see):
 *      . every fresh range sets MEMDESC_RECLAIM_GREW, and the malloc layer then gives
 *        its cached large blocks back at its next allocation, so the growth that
 *        follows carves them instead of fresh pages (pywork: 91 blob slabs per round
 *        took fresh pages while 300 freed pages sat in that cache);
 *      . asking also when the depots held more freed objects than the reclaim step
 *        (at the frees, or at the next fresh range) was tried and removed (slab_mag.c,
 *        section 6): it drained a program that frees a batch and allocates it again
 *        every round (malloc/batch, 10,000 blocks of 512 bytes: 18.6 -> 155 ns per
 *        malloc+free, of 8 KiB 34 -> 1,466 ns), for 3,000 freed blobs of pywork that
 *        stayed in the depots through the next round's dictionary building. The
 *        malloc layer's idle reap (by time, slab_mag.c) frees those now.
 *      Fresh pages the allocator takes for its own bookkeeping (pages__get_range's
 *      @own: slabs of the caches without magazines, magazines among them) set neither
 *      request: a burst of frees allocates magazines while it fills the depots, and a
 *      reclaim there would empty what the next allocations are about to take. Pages a
 *      block grows into in place (pages_resize) count as any other.
 *    - In the page arena, free ranges coalesce; a wholly free imported span (whole
 *      chunks) goes back to the OS (phys.c). Every free frame there reads as zero:
 *      frames enter it fresh from the OS (a chunk's commit), purged (md_purge_batch:
 *      MADV_DONTNEED first), or untouched (a grow's frames given back); the dirty list
 *      and the page blocks hold the written ones. So a range from the arena is zeroed
 *      (pages__get_range, FOLIO_ZEROED): calloc clears nothing there.
 *    An allocation that finds the arena exhausted flushes the dirty list and the
 *    thread's cache and tries once more.
 *    - Metadata at the bottom: a slab of the allocator's own descriptors (the boot
 *      area's caches: struct slab, magazines, threads' magazine slots, page-map nodes,
 *      folios; PAGES__META) takes free frames of the committed arena in the lowest
 *      window that has room ([0, 16 MiB), then 4 times larger each time:
 *      md__arena_alloc_low), and only then the dirty list or fresh frames. A chunk
 *      stays committed while anything is allocated in it, and these slabs outlive the
 *      heap's peak: placed wherever the dirty list or instant-fit put them, they held
 *      chunks all over the arena, and the page-map nodes of those chunks held slabs of
 *      the node cache in turn. memdesc-soak, 8 threads (peak 270 MiB), all freed and
 *      trimmed: before, 3.5 MiB resident and 790 MiB committed after 60 s, 4.3 MiB
 *      after 300 s; now 0.9 MiB and 16 MiB after 300 s (test_meta_at_bottom).
 *
 * 4. Split folios
 *    vmem frees only whole segments. When a folio is split (folio.c), the original
 *    range is recorded in md_splitmap (one multi-index entry -> struct md_split, the
 *    count of its live pages). A freed piece is unmapped at once and returned to the
 *    OS with madvise (so it costs no memory); the range goes back to the arena when
 *    its last piece is freed.
 *
 * 5. Page-map nodes and the recursion
 *    The XArray gets its nodes through md_node_ops from md_pool, a small locked stack
 *    of free nodes, seeded at boot with nodes carved from a static area. When the pool
 *    drops below its low watermark the hook refills it from md_node_cache (a slab
 *    cache), under md_refill_lock, with this thread marked as refilling. Refilling can
 *    grow md_node_cache, whose new slab must be mapped in the page map, which needs
 *    nodes: a refilling thread's nested requests are served from the pool only, never
 *    by a nested refill. One refill needs at most 2 * height nodes for nested stores
 *    (the node slab and the struct-slab slab that may come with it); the low watermark
 *    is 4 * height, so the pool does not run dry. If it ever does, the store gets NULL
 *    and returns -ENOMEM: an error, not a recursion. No store is ever made with one of
 *    our locks held (the XArray calls the hook with its own lock dropped), so the hook
 *    can take any lock.
 *
 * 6. Freeing never allocates
 *    Unmapping stores NULL over exactly the entries the allocation made (or that a
 *    split made): the XArray needs no node for it. vmem_free needs no boundary tag. The
 *    dirty list is a fixed array; a split piece's record exists from the split; a page
 *    block's map entry is erased, never stored, on the free path.
 *
 * 7. Resizing in place (pages_resize)
 *    An allocation of two pages or more is exactly one segment of the page arena, so
 *    it can grow into the free pages after it or give its tail back. (A page of a
 *    block and a piece of a split folio have no segment of their own: they are never
 *    resized in place, -ENOMEM, and the caller moves them.) The page map ends up
 *    exactly as a fresh pages__publish() of the new run would leave it, so freeing
 *    still needs no node and the run has at most 2*log2(N) entries. Each step that
 *    can fail (a boundary tag, page-map nodes) comes before anything that could only
 *    be undone by allocating, and every undo allocates nothing, so a resize facing
 *    empty reserves ends in -ENOMEM with nothing changed:
 *    - grow: first the frames after the run, as a segment of their own: the front of
 *      the free arena segment there (vmem_alloc_next: tags, may fail), or, when the
 *      frames after the run are a freed range on the dirty list (often: the block
 *      freed just before, or one the malloc layer's cache gave back for this grow),
 *      the part the grow needs split off it (md_dirty_claim: vmem_split, never freed
 *      to the arena, whose span could otherwise go back to the OS; its frames are
 *      resident, so growing into them costs no page fault). Either is joinable to the
 *      run's segment (same span, adjacent: vmem_alloc_next by construction, the dirty
 *      range by vmem_joinable, the join's own test). Then one store of md over the
 *      whole new run (nodes, may fail: the frames go back to the dirty list or the
 *      arena, a free). Aligned blocks nest, so each block of the new run holds whole
 *      blocks of the old one; readers of the old pages see md throughout and the new
 *      ones appear whole. Last the join (vmem_join: gives a tag back, cannot fail).
 *    - shrink: first the tail becomes a segment of its own (vmem_split: one tag, may
 *      fail), then the entry that straddles the cut is split in halves down to the cut
 *      (xa_split, at most one node each, may fail: undone by a merge and a vmem_join,
 *      neither allocates; readers see md), the tail is erased (no node), the head is
 *      merged back into its canonical blocks (no node: they hold whole blocks that are
 *      there), and the tail's segment goes onto the dirty list like any freed range.
 *    Before (vmem_resize first, undone by vmem_resize), undoing a grow needed a tag
 *    and undoing a shrink page-map nodes, and running out of both at once aborted.
 *    The grow costs a lock round trip more than vmem_resize did (take, then join);
 *    the shrink one less (no vmem_xalloc of the tail to put it on the dirty list).
 *
 * 8. Costs (measured by bench/bench_memdesc.c)
 *    Metadata per MiB in use: single-page folios about 11 KiB (32-byte folio + 9 bytes
 *    of leaf slot + block share, per page) against Linux's 16 KiB; 2 MiB folios about
 *    50 bytes; a mixed trace under 1 KiB. pfn_to_memdesc() is one XArray walk.
 *
 * 9. Page-map nodes live as long as their chunk
 *    md_pagemap keeps the nodes that empty (XA_FLAGS_KEEP_NODES): a single page alone
 *    in its leaf, allocated and freed over and over, would otherwise create the leaf
 *    (node reserve, pool lock) and free it (md_rcu_call) every time. Empty nodes are
 *    pruned when their OS chunk goes back (phys.c md_release -> pages__prune) and when
 *    the malloc layer trims (memdesc_prune): while a chunk is committed its page-map
 *    nodes stay, at most 8 leaves (about 4.6 KiB, 0.2%) per 2 MiB chunk, counted in
 *    meta_xa_nodes. After memdesc-soak's 260 MiB peak with 8 threads, everything freed
 *    and trimmed, 2,749 nodes (1.5 MiB) sat in 255 slabs of the node cache (4 MiB) and
 *    memdesc held 4.5 MiB resident and 932 MiB committed; with the trim's prune, 362
 *    nodes, 3.5 MiB and 790 MiB; the rest was the allocator's own slabs spread over
 *    the arena (section 3, "metadata at the bottom"). With the XArray's leaf fast path
 *    (a store inside an existing bottom node, no node counting), a one-page folio
 *    alloc+put went from 3,123 to 986 instructions (callgrind).
 *
 * 10. Residency
 *    bytes_resident (memdesc_stats) counts every frame handed out or kept dirty, touched
 *    or not. memdesc_resident_scan() measures instead: mincore(2) over each 8 MiB of
 *    frames ever committed (a page of the bitmap table, never decommitted, marks them;
 *    the rest of the reservation is skipped), then the page-map word of each resident
 *    frame, runs of one word reported together. The malloc layer sums them by owner
 *    (stats=1: size classes, large blocks, free frames, its own slabs).
 */
#include "md_valgrind.h"
#include "memdesc_impl.h"
#include "slab_impl.h"
#include "vmem.h"
#include "xarray.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

struct xarray md_pagemap;
struct xarray md_splitmap;

static atomic_long md_type_pages[MEMDESC_NR_TYPES];

/* ---- node pool ---------------------------------------------------------------- */

#define MD_NODE_POOL_MAX 256	/* capacity of the pool */
#define MD_NODE_POOL_HIGH 64	/* refill up to this many */
#define MD_BOOT_NODE_BYTES (64 * 1024)	/* static nodes: the first page-map stores */

static _Alignas(XA_NODE_ALIGN) unsigned char md_boot_nodes[MD_BOOT_NODE_BYTES];

static struct {
	pthread_mutex_t lock;
	unsigned int n;				/* nodes in the stack */
	unsigned int low;			/* refill below this: 4 * tree height */
	void *node[MD_NODE_POOL_MAX];
} md_pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_mutex_t md_refill_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread bool md_refilling;
struct kmem_cache *md_node_cache;

static bool md_is_boot_node(const void *node)
{
	return (const unsigned char *)node >= md_boot_nodes &&
	       (const unsigned char *)node < md_boot_nodes + MD_BOOT_NODE_BYTES;
}

static void md_pool_refill(void)
{
	pthread_mutex_lock(&md_refill_lock);
	md_refilling = true;
	for (;;) {
		void *node;

		pthread_mutex_lock(&md_pool.lock);
		if (md_pool.n >= MD_NODE_POOL_HIGH) {
			pthread_mutex_unlock(&md_pool.lock);
			break;
		}
		pthread_mutex_unlock(&md_pool.lock);
		node = kmem_cache_alloc(md_node_cache);
		if (!node)
			break;
		pthread_mutex_lock(&md_pool.lock);
		md_pool.node[md_pool.n++] = node;
		pthread_mutex_unlock(&md_pool.lock);
	}
	md_refilling = false;
	pthread_mutex_unlock(&md_refill_lock);
}

static void *md_node_alloc(void *priv)
{
	void *node = NULL;
	bool low;

	(void)priv;
	pthread_mutex_lock(&md_pool.lock);
	low = md_pool.n < md_pool.low;
	pthread_mutex_unlock(&md_pool.lock);
	if (low && !md_refilling && md_node_cache)
		md_pool_refill();
	pthread_mutex_lock(&md_pool.lock);
	if (md_pool.n)
		node = md_pool.node[--md_pool.n];
	pthread_mutex_unlock(&md_pool.lock);
	return node;
}

static void md_node_free(void *priv, void *node)
{
	(void)priv;
	pthread_mutex_lock(&md_pool.lock);
	if (md_is_boot_node(node) ||
	    (md_pool.n < MD_NODE_POOL_HIGH && md_pool.n < MD_NODE_POOL_MAX)) {
		md_pool.node[md_pool.n++] = node;
		node = NULL;
	}
	pthread_mutex_unlock(&md_pool.lock);
	if (node)
		kmem_cache_free(md_node_cache, node);
}

#ifdef MEMDESC_FAULT_INJECTION
/* Test hook: hold the pool's nodes aside (fault-injection builds only). */
static void *md_pool_stash[MD_NODE_POOL_MAX];
static unsigned int md_pool_nstash;

void md__test_node_pool_empty(bool empty)
{
	void *node;

	pthread_mutex_lock(&md_pool.lock);
	while (empty && md_pool.n && md_pool_nstash < MD_NODE_POOL_MAX)
		md_pool_stash[md_pool_nstash++] = md_pool.node[--md_pool.n];
	pthread_mutex_unlock(&md_pool.lock);
	/*
	 * Back through the free path, which keeps the pool within its bounds: pushed on
	 * top of a pool refilled meanwhile they overflowed it (ASan) once the boot
	 * nodes, which always go back to the pool, came back too.
	 */
	while (!empty) {
		pthread_mutex_lock(&md_pool.lock);
		node = md_pool_nstash ? md_pool_stash[--md_pool_nstash] : NULL;
		pthread_mutex_unlock(&md_pool.lock);
		if (!node)
			break;
		md_node_free(NULL, node);
	}
}
#endif

/* Detached nodes wait for a grace period in md_rcu's queue, not liburcu's (md_rcu.c). */
const struct xa_node_ops md_node_ops = {
	.alloc = md_node_alloc,
	.free = md_node_free,
	.defer = md_rcu_call,
};

/* ---- per-thread page cache ---------------------------------------------------- */

#define MD_PCACHE_MAX 64

struct md_pcache {
	unsigned int n;
	bool exiting;		/* thread exit drained it: bypass from now on */
	unsigned long pfn[MD_PCACHE_MAX];
};

static __thread struct md_pcache md_pcache;
static atomic_long md_pcache_pages;

void md__thread_register(void);

/* ---- dirty list --------------------------------------------------------------- */

#define MD_DIRTY_SLOTS 1024
#define MD_DIRTY_MIN_PAGES 512		/* 2 MiB */
#define MD_DIRTY_SCAN 256		/* entries scanned for reuse */
#define MD_DIRTY_FILTER_BITS 11		/* counters per edge filter: 2048 */

struct md_range {
	unsigned long pfn;
	size_t n;
};

/*
 * The edge filters: counters, by a hash of the pfn, of the ranges on the list that
 * start (fstart) and that end (fend, the pfn after the last) there. A zero counter
 * says no range on the list has that edge, so a freed range with no dirty neighbour
 * (most of them: 2,295 of 3,001 in memdesc-mtwork 4 x 300,000, 5,109 of 8,100 in
 * mt_alloc) skips the scan of up to MD_DIRTY_SCAN ranges for one, and a scan stops
 * once it has the neighbours that may exist; a nonzero counter may be another pfn's
 * (the scan then finds nothing, as before). Updated with the list, under its lock.
 */
static struct {
	pthread_mutex_t lock;
	size_t n;				/* ranges, oldest first */
	size_t pages;				/* pages in them */
	struct md_range r[MD_DIRTY_SLOTS];
	uint16_t fstart[1u << MD_DIRTY_FILTER_BITS];
	uint16_t fend[1u << MD_DIRTY_FILTER_BITS];
} md_dirty = { .lock = PTHREAD_MUTEX_INITIALIZER };

static inline unsigned int md_edge_hash(unsigned long pfn)
{
	return (unsigned int)((pfn * 0x9e3779b97f4a7c15ul) >> (64 - MD_DIRTY_FILTER_BITS));
}

/* Count range @r in (@d = 1) or out of (@d = -1) the edge filters; md_dirty.lock held. */
static inline void md_edges(const struct md_range *r, int d)
{
	md_dirty.fstart[md_edge_hash(r->pfn)] += (uint16_t)d;
	md_dirty.fend[md_edge_hash(r->pfn + r->n)] += (uint16_t)d;
}

/*
 * The edge filters count exactly the ranges on the list: every range's two edges are
 * counted and each filter's counters add up to the number of ranges. md_dirty.lock
 * held. Return: 0 or -EINVAL (reported).
 */
static int md_dirty_edges_verify(void)
{
	size_t ns = 0, ne = 0;

	for (size_t i = 0; i < md_dirty.n; i++) {
		if (!md_dirty.fstart[md_edge_hash(md_dirty.r[i].pfn)] ||
		    !md_dirty.fend[md_edge_hash(md_dirty.r[i].pfn + md_dirty.r[i].n)]) {
			md__report("memdesc_verify: dirty range at pfn %lu is not in the edge "
				   "filters", md_dirty.r[i].pfn);
			return -EINVAL;
		}
	}
	for (size_t h = 0; h < (1u << MD_DIRTY_FILTER_BITS); h++) {
		ns += md_dirty.fstart[h];
		ne += md_dirty.fend[h];
	}
	if (ns != md_dirty.n || ne != md_dirty.n) {
		md__report("memdesc_verify: edge filters count %zu and %zu ranges, the dirty "
			   "list holds %zu", ns, ne, md_dirty.n);
		return -EINVAL;
	}
	return 0;
}

/* May a range on the list start (@end false) or end (@end true) at @pfn? */
static inline bool md_edge_maybe(unsigned long pfn, bool end)
{
	return (end ? md_dirty.fend : md_dirty.fstart)[md_edge_hash(pfn)] != 0;
}

static atomic_long md_dirty_pages;
static atomic_long md_split_held;
static atomic_long md_rcu_pages;	/* unmapped slab pages waiting for a grace period */

void pages__rcu_pending(long npages)
{
	atomic_fetch_add_explicit(&md_rcu_pages, npages, memory_order_relaxed);
}

static size_t md_dirty_max(void)
{
	size_t in_arena = atomic_load_explicit(&md_phys.arena_pages, memory_order_relaxed);

	return in_arena / 4 > MD_DIRTY_MIN_PAGES ? in_arena / 4 : MD_DIRTY_MIN_PAGES;
}

static int md_range_cmp(const void *a, const void *b)
{
	const struct md_range *x = a, *y = b;

	return x->pfn < y->pfn ? -1 : x->pfn > y->pfn;
}

/* Insertion sort: the batches are small and qsort may allocate. */
static void md_range_sort(struct md_range *r, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct md_range t = r[i];
		size_t j = i;

		while (j > 0 && md_range_cmp(&r[j - 1], &t) > 0) {
			r[j] = r[j - 1];
			j--;
		}
		r[j] = t;
	}
}

/* Purge and free a batch of ranges taken off the dirty list (no lock held). */
static void md_purge_batch(struct md_range *r, size_t n)
{
	size_t i = 0;

	md_range_sort(r, n);
	while (i < n) {
		size_t j = i + 1;
		unsigned long end = r[i].pfn + r[i].n;

		while (j < n && r[j].pfn == end) {
			end += r[j].n;
			j++;
		}
		md__purge_range(r[i].pfn, end - r[i].pfn);
		for (; i < j; i++)
			md__arena_free(r[i].pfn, r[i].n);
	}
}

/* Take the oldest ranges off until below the targets; caller holds md_dirty.lock. */
static size_t md_dirty_evict_locked(struct md_range *out, size_t max_pages, size_t max_n)
{
	size_t k = 0, pages = md_dirty.pages;

	while (k < md_dirty.n && (pages > max_pages || md_dirty.n - k > max_n)) {
		md_edges(&md_dirty.r[k], -1);
		pages -= md_dirty.r[k++].n;
	}
	memcpy(out, md_dirty.r, k * sizeof(md_dirty.r[0]));
	memmove(md_dirty.r, md_dirty.r + k, (md_dirty.n - k) * sizeof(md_dirty.r[0]));
	md_dirty.n -= k;
	md_dirty.pages = pages;
	return k;
}

/* Take range @i off the dirty list and return it. Caller holds md_dirty.lock. */
static struct md_range md_dirty_remove_locked(size_t i)
{
	struct md_range r = md_dirty.r[i];

	md_edges(&r, -1);
	md_dirty.pages -= r.n;
	md_dirty.n--;
	memmove(&md_dirty.r[i], &md_dirty.r[i + 1], (md_dirty.n - i) * sizeof(r));
	return r;
}

/*
 * Take the dirty ranges that touch [@pfn, @pfn + @n) off the list (among the newest
 * MD_DIRTY_SCAN: neighbours are usually freed close together in time): @left ends at
 * @pfn, @right starts at @pfn + @n; a zero count for none. Caller holds md_dirty.lock.
 */
static void md_dirty_neighbours_locked(unsigned long pfn, size_t n, struct md_range *left,
				       struct md_range *right)
{
	bool want_left = md_edge_maybe(pfn, true), want_right = md_edge_maybe(pfn + n, false);

	left->n = right->n = 0;
	if (!want_left && !want_right)
		return;
	for (size_t i = md_dirty.n, scanned = 0; i-- > 0 && scanned < MD_DIRTY_SCAN; scanned++) {
		struct md_range *r = &md_dirty.r[i];
		bool is_left = r->pfn + r->n == pfn, is_right = r->pfn == pfn + n;

		if ((!is_left || left->n) && (!is_right || right->n))
			continue;
		*(is_left ? left : right) = md_dirty_remove_locked(i);
		if ((left->n || !want_left) && (right->n || !want_right))
			break;
	}
}

/*
 * Coalesce the freed range @r with its dirty neighbours, so that memory freed in
 * pieces serves a later larger request instead of fresh pages (the dirty list reuses
 * a range only for a request it can hold). Every dirty range is one segment of the
 * page arena; vmem_join() makes two adjacent ones one, without allocating (this runs
 * on free paths). A neighbour in another span (another OS chunk) stays apart.
 * Return: the number of ranges written to @out (at most 3), the joined one last.
 */
static size_t md_dirty_coalesce(struct md_range r, struct md_range *out)
{
	struct md_range left, right;
	size_t k = 0;

	pthread_mutex_lock(&md_dirty.lock);
	md_dirty_neighbours_locked(r.pfn, r.n, &left, &right);
	pthread_mutex_unlock(&md_dirty.lock);
	if (left.n || right.n)
		atomic_fetch_sub(&md_dirty_pages, (long)(left.n + right.n));
	if (left.n) {
		if (md__arena_join(left.pfn, left.n, r.n) == 0) {
			r.pfn = left.pfn;
			r.n += left.n;
		} else {
			out[k++] = left;
		}
	}
	if (right.n) {
		if (md__arena_join(r.pfn, r.n, right.n) == 0)
			r.n += right.n;
		else
			out[k++] = right;
	}
	out[k++] = r;
	return k;
}

/*
 * Put the freed range [@pfn, @pfn + @npages) on the dirty list, coalesced with its
 * neighbours there, and purge what the hysteresis says must go: when the list is
 * full, its older half; when it holds more than md_dirty_max() pages, the oldest
 * ranges until it holds half of that. Eviction uses a static buffer under
 * md_purge_lock (taken only when something must go).
 */
static pthread_mutex_t md_purge_lock = PTHREAD_MUTEX_INITIALIZER;
static struct md_range md_evict[MD_DIRTY_SLOTS + 3];

static bool md_dirty_over_locked(size_t incoming_n)
{
	return md_dirty.n + incoming_n > MD_DIRTY_SLOTS || md_dirty.pages > md_dirty_max();
}

static void md_reclaim_count(size_t npages, bool fresh);

static void md_dirty_put(unsigned long pfn, size_t npages)
{
	struct md_range in[3];
	size_t k = 0, added = 0, gone = 0, max, cnt;
	bool purging = false;

	md_reclaim_count(npages, false);

	cnt = md_dirty_coalesce((struct md_range){ .pfn = pfn, .n = npages }, in);
	pthread_mutex_lock(&md_dirty.lock);
	if (md_dirty_over_locked(cnt)) {
		pthread_mutex_unlock(&md_dirty.lock);
		pthread_mutex_lock(&md_purge_lock);
		purging = true;
		pthread_mutex_lock(&md_dirty.lock);
		if (md_dirty.n + cnt > MD_DIRTY_SLOTS)
			k += md_dirty_evict_locked(md_evict + k, SIZE_MAX, MD_DIRTY_SLOTS / 2);
	}
	for (size_t i = 0; i < cnt; i++) {
		md_edges(&in[i], 1);
		md_dirty.r[md_dirty.n++] = in[i];
		md_dirty.pages += in[i].n;
		added += in[i].n;
	}
	max = md_dirty_max();
	if (purging && md_dirty.pages > max)
		k += md_dirty_evict_locked(md_evict + k, max / 2, SIZE_MAX);
	/* Counted before the lock is dropped, so that the sum of the counters stays exact. */
	for (size_t i = 0; i < k; i++)
		gone += md_evict[i].n;
	atomic_fetch_add(&md_dirty_pages, (long)added - (long)gone);
	pthread_mutex_unlock(&md_dirty.lock);
	if (purging) {
		md_purge_batch(md_evict, k);
		pthread_mutex_unlock(&md_purge_lock);
	}
}

/*
 * Split range @r (off the list) at @at: the part kept (the first @at pages if
 * @keep_front, else the rest) stays in @r, the other goes back on the list. If no
 * boundary tag can be had, @r goes back on the list whole: false.
 */
static bool md_dirty_split_off(struct md_range *r, size_t at, bool keep_front)
{
	if (md__arena_split(r->pfn, r->n, at)) {
		md_dirty_put(r->pfn, r->n);
		return false;
	}
	if (keep_front) {
		md_dirty_put(r->pfn + at, r->n - at);
		r->n = at;
	} else {
		md_dirty_put(r->pfn, at);
		r->pfn += at;
		r->n -= at;
	}
	return true;
}

/*
 * Carve @npages at offset @off of dirty range @r (taken off the list): split its
 * segment (vmem_split) into head, the pages asked for and tail; head and tail go back
 * on the list. Nothing is freed to the arena on the way: a range that covers a whole
 * imported span (joined ranges often do) would otherwise send the span back to the OS
 * and have it imported again (a block grown 4 KiB at a time to 1 MiB: 1,534 chunk
 * maps in 2,000 rounds that way, 7 without). If a split finds no boundary tag, what is
 * left goes back on the list whole and the carve fails (the caller allocates as usual).
 */
static bool md_dirty_carve(struct md_range r, size_t off, size_t npages,
			   unsigned long *pfnp)
{
	if (off && !md_dirty_split_off(&r, off, false))
		return false;
	if (r.n > npages && !md_dirty_split_off(&r, npages, true))
		return false;
	*pfnp = r.pfn;
	return true;
}

/*
 * Where @npages at a multiple of @align go in range @c: its front when it starts
 * aligned, else the last aligned window in it (the front of a freed run is where the
 * block before it grows in place: a slab carved from the first aligned window there
 * made a block grown 4 KiB at a time to 1 MiB move 1.8 times per round instead of
 * 0.2). SIZE_MAX if none fits.
 */
static size_t md_carve_off(const struct md_range *c, size_t npages, size_t align)
{
	unsigned long last;

	if (c->n < npages)
		return SIZE_MAX;
	if ((c->pfn & (align - 1)) == 0)
		return 0;
	last = (c->pfn + c->n - npages) & ~(unsigned long)(align - 1);
	return last >= c->pfn ? last - c->pfn : SIZE_MAX;
}

/*
 * The index of the smallest of the newest MD_DIRTY_SCAN ranges that holds @npages (the
 * newest of those; SIZE_MAX if none), for an allocation without alignment. Reads only
 * the page counts: it runs under the list's lock over up to 256 ranges, and was the
 * last scan of the list on the page allocator's paths (memdesc-mtwork 4 x 300,000:
 * 3,300 scans of 143 ranges on average). Caller holds md_dirty.lock.
 */
static size_t md_dirty_smallest_locked(size_t npages)
{
	size_t lo = md_dirty.n > MD_DIRTY_SCAN ? md_dirty.n - MD_DIRTY_SCAN : 0;
	size_t best = SIZE_MAX, bestn = SIZE_MAX;

	for (size_t i = md_dirty.n; i-- > lo;) {
		size_t cn = md_dirty.r[i].n;

		if (cn < npages || cn >= bestn)
			continue;
		best = i;
		bestn = cn;
		if (cn == npages)
			break;
	}
	return best;
}

/* The index of the largest of the newest MD_DIRTY_SCAN ranges if it holds @npages. */
static size_t md_dirty_largest_locked(size_t npages)
{
	size_t lo = md_dirty.n > MD_DIRTY_SCAN ? md_dirty.n - MD_DIRTY_SCAN : 0;
	size_t best = SIZE_MAX, bestn = npages - 1;

	for (size_t i = md_dirty.n; i-- > lo;) {
		if (md_dirty.r[i].n > bestn) {
			best = i;
			bestn = md_dirty.r[i].n;
		}
	}
	return best;
}

/*
 * The index of the range md_dirty_take() wants among the newest MD_DIRTY_SCAN (SIZE_MAX
 * if none): the newest of exactly @npages that holds them at @align, else the
 * smallest (the newest of those) that holds them. @grow (PAGES__GROW, without
 * alignment): the largest, whose front is carved, so that the rest of it follows the
 * block. (Tried: the smallest that holds twice @npages; the doubling block of section
 * 3 then copied 319 KiB a round instead of 63.) Caller holds md_dirty.lock.
 */
static size_t md_dirty_best_locked(size_t npages, size_t align, bool grow)
{
	size_t lo = md_dirty.n > MD_DIRTY_SCAN ? md_dirty.n - MD_DIRTY_SCAN : 0;
	size_t best = SIZE_MAX, bestn = SIZE_MAX;

	if (align == 1) {
		if (grow)
			return md_dirty_largest_locked(npages);
		return md_dirty_smallest_locked(npages);
	}
	for (size_t i = md_dirty.n; i-- > lo;) {
		const struct md_range *c = &md_dirty.r[i];

		if (md_carve_off(c, npages, align) == SIZE_MAX)
			continue;
		if (c->n == npages)
			return i;
		if (c->n < bestn) {
			best = i;
			bestn = c->n;
		}
	}
	return best;
}

/*
 * Reuse a dirty range: one of exactly @npages at a multiple of @align (newest first),
 * else the smallest larger one that holds such a window (md_carve_off), carved; @grow:
 * see md_dirty_best_locked().
 */
static bool md_dirty_take(size_t npages, size_t align, bool grow, unsigned long *pfnp)
{
	size_t best;
	struct md_range r;

	if (!atomic_load_explicit(&md_dirty_pages, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&md_dirty.lock);
	best = md_dirty_best_locked(npages, align, grow);
	if (best == SIZE_MAX) {
		pthread_mutex_unlock(&md_dirty.lock);
		return false;
	}
	r = md_dirty_remove_locked(best);
	atomic_fetch_sub(&md_dirty_pages, (long)r.n);
	pthread_mutex_unlock(&md_dirty.lock);
	return md_dirty_carve(r, md_carve_off(&r, npages, align), npages, pfnp);
}

/*
 * Growing in place into a dirty range (section 7): the allocation [@pfn, @pfn +
 * @npages) wants the @more pages after it, and a dirty range that starts right after
 * it may hold them. The range leaves the list and is split at @more (vmem_split; the
 * rest goes back on the list): its first @more pages become a segment of their own,
 * the caller's, resident (no page faults), to be joined to the allocation's segment
 * once the page map holds them (vmem_join), or put back on the list if it cannot.
 * Nothing passes through the arena's free state: a joined range often covers a whole
 * imported span, which freeing would send back to the OS. A range of another span
 * (vmem_joinable says no: the join's own test) goes back on the list unsplit. The
 * whole list is scanned: this runs only when a grow found its next pages taken.
 * Return: true if [@pfn + @npages, + @more) is now the caller's, joinable to the
 * allocation.
 */
static bool md_dirty_claim(unsigned long pfn, size_t npages, size_t more)
{
	struct md_range r = { 0, 0 };

	if (!atomic_load_explicit(&md_dirty_pages, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&md_dirty.lock);
	for (size_t i = md_edge_maybe(pfn + npages, false) ? md_dirty.n : 0; i-- > 0;) {
		if (md_dirty.r[i].pfn != pfn + npages)
			continue;
		if (md_dirty.r[i].n >= more) {
			r = md_dirty_remove_locked(i);
			atomic_fetch_sub(&md_dirty_pages, (long)r.n);
		}
		break;
	}
	pthread_mutex_unlock(&md_dirty.lock);
	if (!r.n)
		return false;
	if (!md__arena_joinable(pfn, npages, r.n)) {
		md_dirty_put(r.pfn, r.n);
		return false;
	}
	return r.n == more || md_dirty_split_off(&r, more, true);
}

void pages__dirty_flush(void)
{
	size_t k, gone = 0;

	pthread_mutex_lock(&md_purge_lock);
	pthread_mutex_lock(&md_dirty.lock);
	k = md_dirty_evict_locked(md_evict, 0, 0);
	for (size_t i = 0; i < k; i++)
		gone += md_evict[i].n;
	atomic_fetch_sub(&md_dirty_pages, (long)gone);
	pthread_mutex_unlock(&md_dirty.lock);
	md_purge_batch(md_evict, k);
	pthread_mutex_unlock(&md_purge_lock);
}

/* ---- page blocks: single pages without a boundary tag each ------------------------ */

/*
 * A page block is 64 naturally aligned pages taken from the arena as ONE segment, from
 * which single pages are handed out: a vmem boundary tag per page would cost more than
 * Linux's struct page. struct md_pblock (from md_pblock_cache) holds a bitmap of its
 * free pages; md_blockmap (an XArray indexed by pfn / 64) finds it from a pfn. Blocks
 * with free pages are on md_blocks.partial; a block whose pages are all free goes back
 * to the dirty list as one 64-page range, except one spare kept against ping-pong.
 */
#define MD_BLOCK_SHIFT 6
#define MD_BLOCK_PAGES ((size_t)1 << MD_BLOCK_SHIFT)
#define MD_PCACHE_REFILL 8

struct md_pblock {
	unsigned long pb_pfn;		/* first page, a multiple of MD_BLOCK_PAGES */
	uint64_t pb_free;		/* bit i: page pb_pfn + i is free (md_blocks.lock) */
	struct md_pblock *pb_next;	/* partial list (md_blocks.lock) */
	struct md_pblock *pb_prev;
	unsigned int pb_nfree;		/* bits set in pb_free */
	bool pb_listed;			/* on the partial list */
} __attribute__((aligned(16)));

struct xarray md_blockmap;
struct kmem_cache *md_pblock_cache;
static atomic_long md_block_free_pages;	/* free pages inside blocks (incl. the spare) */
static atomic_long md_nr_blocks;

static struct {
	pthread_mutex_t lock;
	struct md_pblock *partial;
	struct md_pblock *spare;	/* one wholly free block kept */
} md_blocks = { .lock = PTHREAD_MUTEX_INITIALIZER };

size_t md__pblock_size(void)
{
	return sizeof(struct md_pblock);
}

static void md_block_link(struct md_pblock *b)
{
	b->pb_prev = NULL;
	b->pb_next = md_blocks.partial;
	if (b->pb_next)
		b->pb_next->pb_prev = b;
	md_blocks.partial = b;
	b->pb_listed = true;
}

static void md_block_unlink(struct md_pblock *b)
{
	if (b->pb_prev)
		b->pb_prev->pb_next = b->pb_next;
	else
		md_blocks.partial = b->pb_next;
	if (b->pb_next)
		b->pb_next->pb_prev = b->pb_prev;
	b->pb_next = b->pb_prev = NULL;
	b->pb_listed = false;
}

/*
 * Reclaim before growing (section 3): pages handed out (from the dirty list or the
 * arena) and freed to the dirty list since the last reclaim request, and the request.
 */
#define MD_RECLAIM_MIN_PAGES 256		/* 1 MiB */
static atomic_size_t md_reclaim_traffic;
static atomic_uint md_reclaim_flags;	/* MEMDESC_RECLAIM_* not yet collected */
static atomic_size_t md_reclaims;		/* requests made (statistics) */

/* The reclaim step: an eighth of the arena, at least MD_RECLAIM_MIN_PAGES. */
static size_t md_reclaim_step(void)
{
	size_t step = atomic_load_explicit(&md_phys.arena_pages, memory_order_relaxed) / 8;

	return step > MD_RECLAIM_MIN_PAGES ? step : MD_RECLAIM_MIN_PAGES;
}

/* Ask the client to drain its caches, once until it collects the request. */
static void md_reclaim_ask_caches(void)
{
	if (!(atomic_fetch_or_explicit(&md_reclaim_flags, MEMDESC_RECLAIM_CACHES,
				       memory_order_relaxed) & MEMDESC_RECLAIM_CACHES))
		atomic_fetch_add_explicit(&md_reclaims, 1, memory_order_relaxed);
}

/* @npages fresh (from the arena) or not: ask for a reclaim when one is due. */
static void md_reclaim_count(size_t npages, bool fresh)
{
	size_t t = atomic_fetch_add_explicit(&md_reclaim_traffic, npages,
					     memory_order_relaxed) + npages;

	if (!fresh)
		return;
	if (!(atomic_load_explicit(&md_reclaim_flags, memory_order_relaxed) & MEMDESC_RECLAIM_GREW))
		atomic_fetch_or_explicit(&md_reclaim_flags, MEMDESC_RECLAIM_GREW,
					 memory_order_relaxed);
	if (t < md_reclaim_step())
		return;
	atomic_store_explicit(&md_reclaim_traffic, 0, memory_order_relaxed);
	md_reclaim_ask_caches();
}

size_t memdesc_dirty_room(void)
{
	long held = atomic_load_explicit(&md_dirty_pages, memory_order_relaxed);
	size_t max = md_dirty_max();

	return held < 0 || (size_t)held >= max ? 0 : max - (size_t)held;
}

int memdesc_reclaim_pending(void)
{
	return atomic_load_explicit(&md_reclaim_flags, memory_order_relaxed) != 0;
}

unsigned int memdesc_reclaim_due(void)
{
	if (!memdesc_reclaim_pending())
		return 0;
	return atomic_exchange_explicit(&md_reclaim_flags, 0, memory_order_relaxed);
}

/*
 * Frames of @npages (not single pages) from the dirty list or the arena; PAGES__* @flags.
 * *@zeroed: from the arena, whose free frames are zero (section 3).
 */
static int md_range_get(size_t npages, size_t align, unsigned int flags, unsigned long *pfnp,
			bool *zeroed)
{
	int rc;

	*zeroed = false;
	/* Metadata at the bottom (section 3): not the dirty list, whose ranges are anywhere. */
	if ((flags & PAGES__META) && md__arena_alloc_low(npages, align, pfnp) == 0) {
		md_reclaim_count(npages, !(flags & PAGES__OWN));
		*zeroed = true;
		return 0;
	}
	if (md_dirty_take(npages, align, flags & PAGES__GROW, pfnp)) {
		md_reclaim_count(npages, false);
		return 0;
	}
	rc = md__arena_alloc(npages, align, pfnp);
	if (rc == 0)
		md_reclaim_count(npages, !(flags & PAGES__OWN));
	if (rc == -ENOMEM) {
		/* Free frames we hold back may be what the arena lacks. */
		pages__pcache_drain(false);
		pages__dirty_flush();
		rc = md__arena_alloc(npages, align, pfnp);
	}
	*zeroed = rc == 0;
	return rc;
}

/* A new block, all free, on the partial list. */
static int md_block_new(void)
{
	struct md_pblock *b = kmem_cache_alloc(md_pblock_cache);
	unsigned long pfn;
	bool zeroed;
	void *old;

	if (!b)
		return -ENOMEM;
	if (md_range_get(MD_BLOCK_PAGES, MD_BLOCK_PAGES, 0, &pfn, &zeroed)) {
		kmem_cache_free(md_pblock_cache, b);
		return -ENOMEM;
	}
	b->pb_pfn = pfn;
	b->pb_free = ~0ULL;
	b->pb_nfree = MD_BLOCK_PAGES;
	old = xa_store(&md_blockmap, pfn >> MD_BLOCK_SHIFT, b);
	if (xa_is_err(old) || old) {
		if (old && !xa_is_err(old))
			md__panic("md_block_new: block %lu already mapped", pfn);
		md_dirty_put(pfn, MD_BLOCK_PAGES);
		kmem_cache_free(md_pblock_cache, b);
		return -ENOMEM;
	}
	atomic_fetch_add(&md_nr_blocks, 1);
	atomic_fetch_add(&md_block_free_pages, (long)MD_BLOCK_PAGES);
	pthread_mutex_lock(&md_blocks.lock);
	md_block_link(b);
	pthread_mutex_unlock(&md_blocks.lock);
	return 0;
}

/* Up to @n single pages from blocks; at least one unless memory is out. */
static unsigned int md_block_take(unsigned long *pfn, unsigned int n)
{
	unsigned int got = 0;

	for (;;) {
		pthread_mutex_lock(&md_blocks.lock);
		if (!md_blocks.partial && md_blocks.spare) {
			md_block_link(md_blocks.spare);
			md_blocks.spare = NULL;
		}
		while (got < n && md_blocks.partial) {
			struct md_pblock *b = md_blocks.partial;
			unsigned int i = (unsigned int)__builtin_ctzll(b->pb_free);

			b->pb_free &= ~(1ULL << i);
			b->pb_nfree--;
			pfn[got++] = b->pb_pfn + i;
			if (!b->pb_nfree)
				md_block_unlink(b);
		}
		pthread_mutex_unlock(&md_blocks.lock);
		if (got)
			break;
		if (md_block_new())
			return 0;
	}
	atomic_fetch_sub(&md_block_free_pages, (long)got);
	return got;
}

/* Single pages back to their blocks; a wholly free block goes (or becomes the spare). */
static void md_block_give(const unsigned long *pfn, unsigned int n)
{
	struct md_pblock *dead[MD_PCACHE_MAX];
	unsigned int ndead = 0;

	pthread_mutex_lock(&md_blocks.lock);
	for (unsigned int k = 0; k < n; k++) {
		struct md_pblock *b = xa_load(&md_blockmap, pfn[k] >> MD_BLOCK_SHIFT);
		uint64_t bit = 1ULL << (pfn[k] & (MD_BLOCK_PAGES - 1));

		if (!b || (b->pb_free & bit))
			md__panic("md_block_give: pfn %lu is not an allocated block page", pfn[k]);
		b->pb_free |= bit;
		b->pb_nfree++;
		if (!b->pb_listed && b->pb_nfree < MD_BLOCK_PAGES)
			md_block_link(b);
		if (b->pb_nfree == MD_BLOCK_PAGES) {
			if (b->pb_listed)
				md_block_unlink(b);
			if (!md_blocks.spare)
				md_blocks.spare = b;
			else
				dead[ndead++] = b;
		}
	}
	pthread_mutex_unlock(&md_blocks.lock);
	atomic_fetch_add(&md_block_free_pages, (long)n);
	for (unsigned int k = 0; k < ndead; k++) {
		unsigned long bp = dead[k]->pb_pfn;

		xa_erase(&md_blockmap, bp >> MD_BLOCK_SHIFT);
		atomic_fetch_sub(&md_block_free_pages, (long)MD_BLOCK_PAGES);
		atomic_fetch_sub(&md_nr_blocks, 1);
		/* The descriptor first, the frames last (see pages__release()). */
		kmem_cache_free(md_pblock_cache, dead[k]);
		md_dirty_put(bp, MD_BLOCK_PAGES);
	}
}

/* The spare block goes too (memdesc_purge). */
static void md_block_drop_spare(void)
{
	struct md_pblock *b;

	pthread_mutex_lock(&md_blocks.lock);
	b = md_blocks.spare;
	md_blocks.spare = NULL;
	pthread_mutex_unlock(&md_blocks.lock);
	if (b) {
		unsigned long bp = b->pb_pfn;

		xa_erase(&md_blockmap, bp >> MD_BLOCK_SHIFT);
		atomic_fetch_sub(&md_block_free_pages, (long)MD_BLOCK_PAGES);
		atomic_fetch_sub(&md_nr_blocks, 1);
		kmem_cache_free(md_pblock_cache, b);
		md_dirty_put(bp, MD_BLOCK_PAGES);
	}
}

/* ---- ranges ------------------------------------------------------------------- */

static int md_frames_get(size_t npages, size_t align, unsigned int flags,
			 unsigned long *pfnp, bool *zeroed);

int pages__get_range(size_t npages, size_t align, unsigned int flags, unsigned long *pfnp,
		     bool *zeroed)
{
	bool zero = false;
	int rc = md_frames_get(npages, align, flags, pfnp, &zero);

	if (zeroed)
		*zeroed = zero;
	/* valgrind builds: the new owner's memory (md_valgrind.h), zeros it may read */
	if (rc == 0 && zero)
		MD_VG_DEFINED(pfn_to_virt(*pfnp), npages << MD_PAGE_SHIFT);
	else if (rc == 0)
		MD_VG_UNDEFINED(pfn_to_virt(*pfnp), npages << MD_PAGE_SHIFT);
	return rc;
}

static int md_frames_get(size_t npages, size_t align, unsigned int flags,
			 unsigned long *pfnp, bool *zeroed)
{
	struct md_pcache *pc = &md_pcache;

	if (align == 0)
		align = 1;
	if (npages == 1 && align == 1) {
		if (!pc->n) {
			unsigned int got = md_block_take(pc->pfn, pc->exiting ? 1 : MD_PCACHE_REFILL);

			if (!got)
				return -ENOMEM;
			if (!pc->exiting)
				md__thread_register();
			pc->n = got;
			atomic_fetch_add_explicit(&md_pcache_pages, got, memory_order_relaxed);
		}
		*pfnp = pc->pfn[--pc->n];
		atomic_fetch_sub_explicit(&md_pcache_pages, 1, memory_order_relaxed);
		return 0;
	}
	return md_range_get(npages, align, flags, pfnp, zeroed);
}

void pages__put_range(unsigned long pfn, size_t npages)
{
	struct md_pcache *pc = &md_pcache;
	bool in_block = false;

	if (npages == 1) {
		/* A block's map entry lives as long as any page of the block is allocated. */
		urcu_bp_read_lock();
		in_block = xa_load_rcu(&md_blockmap, pfn >> MD_BLOCK_SHIFT) != NULL;
		urcu_bp_read_unlock();
	}
	if (in_block) {
		if (pc->exiting) {
			md_block_give(&pfn, 1);
			return;
		}
		if (pc->n == MD_PCACHE_MAX) {
			unsigned int half = MD_PCACHE_MAX / 2;

			/* The oldest half goes back to its blocks. */
			atomic_fetch_sub_explicit(&md_pcache_pages, half, memory_order_relaxed);
			md_block_give(pc->pfn, half);
			memmove(pc->pfn, pc->pfn + half, (pc->n - half) * sizeof(pc->pfn[0]));
			pc->n -= half;
		}
		if (pc->n == 0)
			md__thread_register();
		pc->pfn[pc->n++] = pfn;
		atomic_fetch_add_explicit(&md_pcache_pages, 1, memory_order_relaxed);
		return;
	}
	md_dirty_put(pfn, npages);
}

void pages__pcache_drain(bool exiting)
{
	struct md_pcache *pc = &md_pcache;
	unsigned int n = pc->n;

	if (exiting)
		pc->exiting = true;
	if (!n)
		return;
	pc->n = 0;
	atomic_fetch_sub_explicit(&md_pcache_pages, n, memory_order_relaxed);
	md_block_give(pc->pfn, n);
}

void memdesc_thread_drain(void)
{
	pages__pcache_drain(false);
}

void memdesc_purge(void)
{
	if (md__init_check())
		return;
	pages__pcache_drain(false);
	md_block_drop_spare();
	pages__dirty_flush();
}

void memdesc_prune(void)
{
	if (md__init_check())
		return;
	pages__prune(0, md_phys.nr_pfns);
}

/* ---- the page map ------------------------------------------------------------- */

static inline bool md_is_pow2(size_t n)
{
	return n && !(n & (n - 1));
}

static inline unsigned int md_ilog2(size_t n)
{
	return (unsigned int)(63 - __builtin_clzl(n));
}

static memdesc_t md_entry(unsigned long pfn)
{
	void *e = xa_load(&md_pagemap, pfn);

	return xa_is_value(e) ? (memdesc_t)xa_to_value(e) : 0;
}

static void *md_store(unsigned long pfn, size_t npages, void *entry)
{
	if (md_is_pow2(npages) && (pfn & (npages - 1)) == 0)
		return xa_store_order(&md_pagemap, pfn, md_ilog2(npages), entry);
	return xa_store_range(&md_pagemap, pfn, pfn + npages - 1, entry);
}

int pages__publish(unsigned long pfn, size_t npages, memdesc_t md)
{
	void *old;

#ifdef MEMDESC_DEBUG
	/* The frames came from the arena: nothing may map them yet. */
	if (md_entry(pfn) || md_entry(pfn + npages - 1))
		md__panic("pages__publish: pfn %lu npages %zu is already mapped", pfn, npages);
#endif
	old = md_store(pfn, npages, xa_mk_value(md));

	if (xa_is_err(old)) {
		/* A range store may have stored part of its entries: take them out. */
		if (!(md_is_pow2(npages) && (pfn & (npages - 1)) == 0))
			md_store(pfn, npages, NULL);
		return -ENOMEM;
	}
	if (old)
		md__panic("pages__publish: pfn %lu npages %zu was mapped (%#lx)", pfn, npages,
			  (unsigned long)old);
	atomic_fetch_add_explicit(&md_type_pages[memdesc_type(md)], (long)npages,
				  memory_order_relaxed);
	return 0;
}

void pages__unpublish(unsigned long pfn, size_t npages)
{
	/* A one-entry store returns the old entry; a range store does not. */
	bool one = md_is_pow2(npages) && (pfn & (npages - 1)) == 0;
	void *e = one ? NULL : xa_load(&md_pagemap, pfn);
	void *old = md_store(pfn, npages, NULL);

	if (xa_is_err(old))
		md__panic("pages__unpublish: erasing pfn %lu npages %zu failed (%d)", pfn, npages,
			  xa_err(old));
	if (one)
		e = old;
	if (xa_is_value(e))
		atomic_fetch_sub_explicit(&md_type_pages[memdesc_type(xa_to_value(e))],
					  (long)npages, memory_order_relaxed);
}

/* Frames kept out of use for good: the OS lost their mapping (pages__retire). */
static atomic_size_t md_lost_pages;

void pages__retire(unsigned long pfn, size_t npages)
{
	pages__unpublish(pfn, npages);
	atomic_fetch_add(&md_lost_pages, npages);
}

memdesc_t pfn_to_memdesc(unsigned long pfn)
{
	memdesc_t md;

	urcu_bp_read_lock();
	md = md__pfn_to_memdesc_rcu(pfn);
	urcu_bp_read_unlock();
	return md;
}


bool pages__is_allocation(unsigned long pfn, size_t npages, memdesc_t md)
{
	unsigned long index, last = pfn + npages - 1, prev = pfn;
	bool first = true;
	void *entry;

	if (!md || npages == 0 || pfn >= md_phys.nr_pfns || npages > md_phys.nr_pfns - pfn)
		return false;
	if (pfn > 0 && md_entry(pfn - 1) == md)
		return false;
	if (last + 1 < md_phys.nr_pfns && md_entry(last + 1) == md)
		return false;
	/*
	 * Every entry in the range is md, the first starts at pfn, and the page before
	 * each next entry is md (a hole could only sit at the end of an entry).
	 */
	xa_for_each_range(&md_pagemap, index, entry, pfn, last) {
		if (!xa_is_value(entry) || (memdesc_t)xa_to_value(entry) != md)
			return false;
		if (first) {
			if (index != pfn)
				return false;
			first = false;
		} else if (md_entry(index - 1) != md) {
			return false;
		}
		prev = index;
	}
	(void)prev;
	return !first && md_entry(last) == md;
}

/* ---- split folios ------------------------------------------------------------- */

struct md_split {
	unsigned long sp_pfn;		/* the original allocation */
	size_t sp_npages;
	atomic_size_t sp_live;		/* pages of it not yet freed */
} __attribute__((aligned(16)));

struct kmem_cache *md_split_cache;

int pages__split_track(unsigned long pfn, size_t npages)
{
	struct md_split *sp = xa_load(&md_splitmap, pfn);
	void *old;

	if (sp)
		return 0;
	sp = kmem_cache_alloc(md_split_cache);
	if (!sp)
		return -ENOMEM;
	sp->sp_pfn = pfn;
	sp->sp_npages = npages;
	atomic_init(&sp->sp_live, npages);
	old = xa_store_order(&md_splitmap, pfn, md_ilog2(npages), sp);
	if (xa_is_err(old) || old) {
		if (old && !xa_is_err(old))
			md__panic("pages__split_track: pfn %lu already tracked", pfn);
		kmem_cache_free(md_split_cache, sp);
		return -ENOMEM;
	}
	return 1;
}

void pages__split_untrack(unsigned long pfn, size_t npages)
{
	struct md_split *sp = xa_load(&md_splitmap, pfn);

	if (!sp)
		return;
	xa_store_order(&md_splitmap, pfn, md_ilog2(npages), NULL);
	kmem_cache_free(md_split_cache, sp);
}

void pages__release(unsigned long pfn, size_t npages)
{
	struct md_split *sp;
	size_t left;

	MD_VG_NOACCESS(pfn_to_virt(pfn), npages << MD_PAGE_SHIFT);	/* free frames */

	/* Lock-free, inline: a split record is there only while its pieces live. */
	urcu_bp_read_lock();
	sp = xa_load_rcu(&md_splitmap, pfn);
	urcu_bp_read_unlock();
	if (likely(!sp)) {
		pages__put_range(pfn, npages);
		return;
	}
	/*
	 * Purge before the count drops: once it does, the last sibling's free may hand
	 * the whole range to a new owner, whose data a late madvise would wipe. (The last
	 * piece is purged for nothing; the range goes to the dirty list anyway.)
	 */
	if (npages < sp->sp_npages)
		md__purge_range(pfn, npages);
	atomic_fetch_add(&md_split_held, (long)npages);
	left = atomic_fetch_sub(&sp->sp_live, npages) - npages;
	if (left)
		return;
	atomic_fetch_sub(&md_split_held, (long)sp->sp_npages);
	pfn = sp->sp_pfn;
	npages = sp->sp_npages;
	xa_store_order(&md_splitmap, pfn, md_ilog2(npages), NULL);
	/*
	 * Metadata first, frames last (as in folio_put()): freeing the record may need a
	 * magazine, whose slab must not be carved from the frames just freed.
	 */
	kmem_cache_free(md_split_cache, sp);
	pages__put_range(pfn, npages);
}

void pages__release_empty(unsigned long pfn, size_t npages)
{
	struct md_split *sp;

	urcu_bp_read_lock();
	sp = xa_load_rcu(&md_splitmap, pfn);
	urcu_bp_read_unlock();
	if (sp) {
		pages__release(pfn, npages);
		return;
	}
	MD_VG_NOACCESS(pfn_to_virt(pfn), npages << MD_PAGE_SHIFT);	/* free frames */
	md__arena_free(pfn, npages);
}

/* ---- the API ------------------------------------------------------------------ */

static bool md_valid_memdesc(memdesc_t md)
{
	enum memdesc_type t = memdesc_type(md);

	return (t == MEMDESC_FOLIO || t == MEMDESC_SLAB) && memdesc_ptr(md) &&
	       md <= (memdesc_t)LONG_MAX;
}

int pages_alloc(memdesc_t md, size_t npages, size_t align_pages, unsigned long *pfnp)
{
	unsigned long pfn;
	int rc = md__init_check();

	if (rc)
		return rc;
	if (!pfnp || !md_valid_memdesc(md) || npages == 0 || npages > md_phys.nr_pfns ||
	    !md_is_pow2(align_pages) || align_pages > md_phys.nr_pfns)
		return -EINVAL;
	rc = pages__get_range(npages, align_pages, 0, &pfn, NULL);
	if (rc)
		return rc;
	rc = pages__publish(pfn, npages, md);
	if (rc) {
		pages__put_range(pfn, npages);
		return rc;
	}
	*pfnp = pfn;
	return 0;
}

static int md_pages_free(unsigned long pfn, size_t npages, const char *fn)
{
	memdesc_t md;

	if (md__init_check() || npages == 0 || pfn >= md_phys.nr_pfns ||
	    npages > md_phys.nr_pfns - pfn) {
		md__report("%s: pfn %lu npages %zu: outside the frame space", fn, pfn, npages);
		return -EINVAL;
	}
	md = pfn_to_memdesc(pfn);
	if (!md || !pages__is_allocation(pfn, npages, md)) {
		md__report("%s: pfn %lu (address %p) npages %zu is not one allocation "
			   "(memdesc %#lx)", fn, pfn, pfn_to_virt(pfn), npages,
			   (unsigned long)md);
		return -EINVAL;
	}
	pages__unpublish(pfn, npages);
	pages__release(pfn, npages);
	return 0;
}

void pages_free(unsigned long pfn, size_t npages)
{
	md_pages_free(pfn, npages, "pages_free");
}

int pages_free_checked(unsigned long pfn, size_t npages)
{
	return md_pages_free(pfn, npages, "pages_free_checked");
}

/* ---- resizing in place (section 7) -------------------------------------------- */

/*
 * The entry of the canonical mapping of [pfn, pfn + npages) (the aligned blocks that
 * md_store() makes, largest first at each step) holding @index: its order, its start
 * in *@startp. At most 2*log2(npages) steps.
 */
static unsigned int md_piece_at(unsigned long pfn, size_t npages, unsigned long index,
				unsigned long *startp)
{
	unsigned long cur = pfn, last = pfn + npages - 1;

	for (;;) {
		unsigned int order = cur ? (unsigned int)__builtin_ctzl(cur) : 63;

		while (order && ((1UL << order) - 1) > last - cur)
			order--;
		if (index - cur <= (1UL << order) - 1) {
			*startp = cur;
			return order;
		}
		cur += 1UL << order;
	}
}

/*
 * Split the entry of the allocation [pfn, pfn + npages) that straddles @cut (pfn < cut
 * < pfn + npages) in halves, down to the half that starts at @cut: afterwards no entry
 * crosses @cut. Each xa_split() needs at most one node. Readers see md throughout.
 */
static int md_map_cut(unsigned long pfn, size_t npages, unsigned long cut)
{
	unsigned long start;
	unsigned int order = md_piece_at(pfn, npages, cut, &start);

	while (start != cut) {
		int rc = xa_split(&md_pagemap, cut, order - 1);

		if (rc)
			return rc;
		order--;
		if (cut - start >= (1UL << order))
			start += 1UL << order;
	}
	return 0;
}

/*
 * Store @md over [pfn, pfn + npages), which maps to @md in smaller blocks (after a
 * cut): each canonical block holds whole blocks that are there, so the store only
 * merges, needs no node and cannot fail; readers see md at every step.
 */
static void md_map_merge(unsigned long pfn, size_t npages, memdesc_t md)
{
	void *old = md_store(pfn, npages, xa_mk_value(md));

	if (xa_is_err(old))
		md__panic("pages_resize: merging pfn %lu npages %zu failed (%d)", pfn, npages,
			  xa_err(old));
}

/*
 * Join two segments that the steps before made joinable (section 7): it allocates
 * nothing, so a failure is a broken invariant, not a shortage.
 */
static void md_arena_join_made(unsigned long pfn, size_t npages, size_t more)
{
	if (md__arena_join(pfn, npages, more))
		md__panic("pages_resize: joining pfn %lu npages %zu + %zu failed", pfn, npages,
			  more);
}

/*
 * Every step that can fail comes before the first that cannot be undone without
 * allocating (section 7): the frames (a tag), the store (nodes), then the join.
 */
static int md_pages_grow(unsigned long pfn, size_t npages, size_t new_npages, memdesc_t md)
{
	size_t more = new_npages - npages;
	bool dirty = false;
	void *old;

	/* The next frames as a segment of our own: free in the arena, or a dirty range. */
	if (md__arena_take_next(pfn, npages, more)) {
		if (!md_dirty_claim(pfn, npages, more))
			return -ENOMEM;
		dirty = true;
	}
	/*
	 * One store of the whole run: its blocks hold the old ones (aligned blocks nest),
	 * so readers of the old pages see md at every step, and the new pages appear.
	 */
	old = md_store(pfn, new_npages, xa_mk_value(md));
	if (xa_is_err(old)) {
		/* No node: the store did nothing. The frames go back; neither way allocates. */
		if (dirty)
			md_dirty_put(pfn + npages, more);
		else
			md__arena_free(pfn + npages, more);
		return -ENOMEM;
	}
	/* md__arena_take_next() and md_dirty_claim() made sure that the join can be made. */
	md_arena_join_made(pfn, npages, more);
	md_reclaim_count(more, !dirty);
	pages__account(memdesc_type(md), (long)more);
	/* valgrind builds: the new pages are the owner's (md_valgrind.h) */
	MD_VG_UNDEFINED(pfn_to_virt(pfn + npages), more << MD_PAGE_SHIFT);
	return 0;
}

/* As for a grow: the tag (the split) and the nodes (the cut) first, both undone freely. */
static int md_pages_shrink(unsigned long pfn, size_t npages, size_t new_npages, memdesc_t md)
{
	unsigned long cut = pfn + new_npages;
	size_t tail = npages - new_npages;
	void *old;

	/* The tail becomes a segment of its own while the page map still has it. */
	if (md__arena_split(pfn, npages, new_npages))
		return -ENOMEM;
	if (md_map_cut(pfn, npages, cut)) {
		md_map_merge(pfn, npages, md);
		md_arena_join_made(pfn, new_npages, tail);	/* the split undone */
		return -ENOMEM;
	}
	/* The tail's entries go before its frames do: nobody can be given them mapped. */
	old = xa_store_range(&md_pagemap, cut, pfn + npages - 1, NULL);
	if (xa_is_err(old))
		md__panic("pages_resize: erasing pfn %lu npages %zu failed (%d)", cut, tail,
			  xa_err(old));
	md_map_merge(pfn, new_npages, md);
	pages__account(memdesc_type(md), -(long)tail);
	/* The tail is resident: like any freed range it goes to the dirty list. */
	MD_VG_NOACCESS(pfn_to_virt(cut), tail << MD_PAGE_SHIFT);	/* free frames */
	md_dirty_put(cut, tail);
	return 0;
}

int pages_resize(unsigned long pfn, size_t npages, size_t new_npages)
{
	memdesc_t md;
	int rc = md__init_check();

	if (rc)
		return rc;
	if (npages == 0 || new_npages == 0 || pfn >= md_phys.nr_pfns ||
	    npages > md_phys.nr_pfns - pfn) {
		md__report("pages_resize: pfn %lu npages %zu -> %zu: outside the frame space or "
			   "no pages", pfn, npages, new_npages);
		return -EINVAL;
	}
	md = pfn_to_memdesc(pfn);
	if (!md || !pages__is_allocation(pfn, npages, md)) {
		md__report("pages_resize: pfn %lu (address %p) npages %zu is not one allocation "
			   "(memdesc %#lx)", pfn, pfn_to_virt(pfn), npages, (unsigned long)md);
		return -EINVAL;
	}
	if (new_npages == npages)
		return 0;
	if (new_npages > md_phys.nr_pfns - pfn)
		return -ENOMEM;
	/* A page of a block and a piece of a split folio have no arena segment of their own. */
	if ((npages == 1 && xa_load(&md_blockmap, pfn >> MD_BLOCK_SHIFT)) ||
	    xa_load(&md_splitmap, pfn))
		return -ENOMEM;
	if (new_npages > npages)
		return md_pages_grow(pfn, npages, new_npages, md);
	return md_pages_shrink(pfn, npages, new_npages, md);
}

void pages__prune(unsigned long pfn, size_t npages)
{
	xa_prune(&md_pagemap, pfn, pfn + npages - 1);
}

/* ---- init, verify, stats ------------------------------------------------------ */

int md__pages_init(void)
{
	size_t stride = (xa_node_size() + XA_NODE_ALIGN - 1) & ~(size_t)(XA_NODE_ALIGN - 1);
	unsigned int height = xa_store_max_nodes(0);

	xa_init_flags(&md_pagemap, &md_node_ops, XA_FLAGS_KEEP_NODES);
	xa_init_ops(&md_splitmap, &md_node_ops);
	xa_init_ops(&md_blockmap, &md_node_ops);
	md_pool.low = 4 * (height ? height : 1);
	if (md_pool.low > MD_NODE_POOL_HIGH / 2)
		md_pool.low = MD_NODE_POOL_HIGH / 2;
	for (size_t off = 0; off + stride <= MD_BOOT_NODE_BYTES && md_pool.n < MD_NODE_POOL_MAX;
	     off += stride)
		md_pool.node[md_pool.n++] = md_boot_nodes + off;
	if (md_pool.n < md_pool.low)
		return -ENOMEM;
	return 0;
}

void pages__account(enum memdesc_type type, long npages)
{
	atomic_fetch_add_explicit(&md_type_pages[type], npages, memory_order_relaxed);
}

int md__slab_verify_entry(const struct slab *slab, unsigned long index, memdesc_t md,
			  size_t *pages);

int pages__verify(void)
{
	unsigned long index;
	void *entry;
	size_t pages[MEMDESC_NR_TYPES] = { 0 };
	int bad = 0;

	if (xa_verify(&md_pagemap) || xa_verify(&md_splitmap) || xa_verify(&md_blockmap))
		bad = 1;
	xa_for_each(&md_pagemap, index, entry) {
		memdesc_t md;

		if (!xa_is_value(entry)) {
			md__report("memdesc_verify: pfn %lu holds a non-value entry %p", index,
				   entry);
			bad = 1;
			continue;
		}
		md = xa_to_value(entry);
		if (index >= md_phys.nr_pfns || !md_valid_memdesc(md) ||
		    ((uintptr_t)memdesc_ptr(md) & 15)) {
			md__report("memdesc_verify: pfn %lu holds a bad memdesc %#lx", index,
				   (unsigned long)md);
			bad = 1;
			continue;
		}
		if (memdesc_folio(md)) {
			struct folio *f = memdesc_folio(md);

			if (md__folio_verify(f, index, md))
				bad = 1;
			else if (index == f->f_pfn)
				pages[MEMDESC_FOLIO] += f->f_npages;
		} else if (md__slab_verify_entry(memdesc_slab(md), index, md,
						 &pages[MEMDESC_SLAB])) {
			bad = 1;
		}
	}
	for (int t = MEMDESC_FOLIO; t < MEMDESC_NR_TYPES; t++) {
		long cnt = atomic_load(&md_type_pages[t]);

		if (cnt < 0 || (size_t)cnt != pages[t]) {
			md__report("memdesc_verify: type %d: %zu pages mapped, counter says %ld", t,
				   pages[t], cnt);
			bad = 1;
		}
	}
	{
		size_t arena = atomic_load(&md_phys.arena_pages);
		size_t acct = pages[MEMDESC_FOLIO] + pages[MEMDESC_SLAB] +
			      (size_t)atomic_load(&md_pcache_pages) +
			      (size_t)atomic_load(&md_dirty_pages) +
			      (size_t)atomic_load(&md_split_held) +
			      (size_t)atomic_load(&md_rcu_pages) +
			      (size_t)atomic_load(&md_block_free_pages) +
			      atomic_load(&md_lost_pages);

		if (arena != vmem_size(md_phys.page_arena, VMEM_ALLOC)) {
			md__report("memdesc_verify: %zu arena pages counted, vmem says %zu", arena,
				   vmem_size(md_phys.page_arena, VMEM_ALLOC));
			bad = 1;
		}
		if (arena != acct) {
			md__report("memdesc_verify: %zu arena pages, but %zu mapped + cached + "
				   "dirty + held + waiting for RCU + lost", arena, acct);
			bad = 1;
		}
	}
	pthread_mutex_lock(&md_dirty.lock);
	{
		size_t sum = 0;

		for (size_t i = 0; i < md_dirty.n; i++) {
			sum += md_dirty.r[i].n;
			if (md_entry(md_dirty.r[i].pfn)) {
				md__report("memdesc_verify: dirty pfn %lu is mapped",
					   md_dirty.r[i].pfn);
				bad = 1;
			}
		}
		if (sum != md_dirty.pages) {
			md__report("memdesc_verify: dirty list holds %zu pages, counts %zu", sum,
				   md_dirty.pages);
			bad = 1;
		}
		if (md_dirty_edges_verify())
			bad = 1;
	}
	pthread_mutex_unlock(&md_dirty.lock);
	if (vmem_check(md_phys.page_arena) || vmem_check(md_phys.os_arena))
		bad = 1;
	if (atomic_load(&md_phys.committed) > md_phys.limit) {
		md__report("memdesc_verify: %zu bytes committed above the limit %zu",
			   atomic_load(&md_phys.committed), md_phys.limit);
		bad = 1;
	}
	return bad ? -EINVAL : 0;
}

/*
 * Residency (memdesc_resident_scan): mincore over each 8 MiB of frames ever committed,
 * then the words of the resident frames, consecutive frames with one word reported as
 * one run. The read-side section spans a region's walk, so that @fn may read the
 * descriptors (type-stable: freed after a grace period).
 */
static void md_resident_region(unsigned long base, size_t n, const unsigned char *vec,
			       memdesc_resident_fn *fn, void *arg)
{
	unsigned long start = 0;
	memdesc_t cur = 0;
	size_t len = 0;

	urcu_bp_read_lock();
	for (size_t i = 0; i < n; i++) {
		memdesc_t md;

		if (!(vec[i] & 1))
			continue;
		md = md__pfn_to_memdesc_rcu(base + i);
		if (len && md == cur && start + len == base + i) {
			len++;
			continue;
		}
		if (len)
			fn(start, len, cur, arg);
		start = base + i;
		cur = md;
		len = 1;
	}
	if (len)
		fn(start, len, cur, arg);
	urcu_bp_read_unlock();
}

int memdesc_resident_scan(memdesc_resident_fn *fn, void *arg)
{
	unsigned char vec[MD_BITMAP_PAGE_FRAMES];
	int rc = md__init_check();

	if (rc)
		return rc;
	for (unsigned long base = 0; base < md_phys.nr_pfns; base += MD_BITMAP_PAGE_FRAMES) {
		size_t n = md_phys.nr_pfns - base;

		if (n > MD_BITMAP_PAGE_FRAMES)
			n = MD_BITMAP_PAGE_FRAMES;
		if (!md__frames_ever_committed(base))
			continue;
		if (mincore(md__pfn_to_virt(base), n << MD_PAGE_SHIFT, vec) != 0)
			return -errno;
		md_resident_region(base, n, vec, fn, arg);
	}
	return 0;
}

void pages__stats(struct memdesc_stats *st)
{
	size_t node = xa_node_size();

	st->pages_folio = (size_t)atomic_load_explicit(&md_type_pages[MEMDESC_FOLIO],
						       memory_order_relaxed);
	st->pages_slab = (size_t)atomic_load_explicit(&md_type_pages[MEMDESC_SLAB],
						      memory_order_relaxed);
	st->pages_pcache = (size_t)atomic_load_explicit(&md_pcache_pages, memory_order_relaxed);
	st->pages_dirty = (size_t)atomic_load_explicit(&md_dirty_pages, memory_order_relaxed);
	st->reclaims = atomic_load_explicit(&md_reclaims, memory_order_relaxed);
	st->pages_split_held = (size_t)atomic_load_explicit(&md_split_held,
							    memory_order_relaxed);
	st->pages_rcu_pending = (size_t)atomic_load_explicit(&md_rcu_pages,
							     memory_order_relaxed);
	st->meta_xa_nodes = (xa_nr_nodes(&md_pagemap) + xa_nr_nodes(&md_splitmap) +
			     xa_nr_nodes(&md_blockmap)) * node;
	st->pages_block_free = (size_t)atomic_load_explicit(&md_block_free_pages,
							    memory_order_relaxed);
	st->meta_pblocks = (size_t)atomic_load_explicit(&md_nr_blocks, memory_order_relaxed) *
			   sizeof(struct md_pblock);
	pthread_mutex_lock(&md_pool.lock);
	st->meta_xa_pool = md_pool.n * node;
	pthread_mutex_unlock(&md_pool.lock);
}
