/*
 * boot.c: bringing memdesc up, and why it cannot recurse without bound or deadlock.
 *
 * 1. The problem
 *    The caches of struct slab, struct folio, XArray nodes and magazines need pages;
 *    getting pages needs a struct slab (the pages of a slab) and page-map nodes (to
 *    map them), which come from those caches. vmem's boundary tags are vmem's own
 *    business: vmem takes them from a static pool and mmap and never calls us back.
 *
 * 2. The bootstrap order (memdesc_init(), once, under md_init_lock)
 *    a. phys: read the limit from the environment (getenv, no allocation), reserve the
 *       frame space, create the OS-chunk arena and the page arena (vmem).
 *    b. pages: initialise the page map and the split map with our node hook, and seed
 *       the node pool with nodes carved from a static area (md_boot_nodes).
 *    c. slab: set up the static caches (their struct kmem_cache lives in the boot
 *       area): struct slab (self-describing), the magazine caches, the per-thread
 *       magazine tables, struct kmem_cache, struct folio, XArray nodes, split records,
 *       page blocks. Setting up allocates nothing; memory comes on first use.
 *    d. the thread-exit key (pthread_key_create allocates nothing for the first keys).
 *    Nothing here calls malloc or stdio: the malloc built on top of us calls
 *    memdesc_init() before any constructor has run.
 *
 * 3. Why every path terminates
 *    - A slab of the struct-slab cache is described by its own first object: growing
 *      that cache needs pages and a page-map store, never another struct slab.
 *    - Growing any other cache needs one struct slab (the cache above: terminates) and
 *      one page-map store. Slabs are at least 16 KiB, so growth never asks for a single
 *      page and never needs a page block (whose descriptor comes from a cache).
 *    - A page-map store takes nodes from md_pool (pages.c). Refilling the pool grows the
 *      node cache (two stores: the node slab, maybe a struct-slab slab); during a
 *      refill, the refilling thread's stores are served from the pool only (its low
 *      watermark covers them), never by a nested refill. So the depth is bounded:
 *      store -> refill -> node-cache grow -> struct-slab grow -> store (from the pool).
 *    - Magazines: the allocation path of a cache allocates a magazine only when it is
 *      not nested inside slab growth (kmem__nesting == 0), and magazine caches have no
 *      magazine layer; a free that cannot get an empty magazine frees to the slab.
 *    - Freeing never allocates (pages.c section 6), so no free path recurses into an
 *      allocation that could fail.
 *
 * 4. Why nothing deadlocks
 *    No store into an XArray and no call into another cache is ever made while holding
 *    a cache lock, a depot lock, the dirty-list lock or the node-pool lock; the XArray
 *    calls our node hook with its own lock dropped; vmem calls import/release with the
 *    arena lock dropped. The only lock held across calls is md_refill_lock (node-pool
 *    refill), which is taken by no path it calls (a refilling thread does not refill).
 *    Initialisation itself: a nested call to memdesc_init() on the initialising thread
 *    (through the entry points it uses) returns at once; other threads wait.
 *
 * 5. Threads
 *    One pthread key, whose destructor returns the thread's magazines (slab_mag.c) and
 *    then its page cache (pages.c). A thread registers on first use of either.
 */
#include "memdesc_impl.h"
#include "slab_impl.h"
#include "vmem.h"
#include "xarray.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

atomic_int md__ready;
int md__init_error;

static pthread_mutex_t md_init_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread bool md_initialising;
static pthread_key_t md_thread_key;
static __thread bool md_thread_registered;

size_t md__pblock_size(void);

/* ---- messages (no allocation: vsnprintf into a stack buffer, write(2)) --------- */

static void md_vreport(const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];
	size_t len = strlen(prefix);
	int n;

	memcpy(buf, prefix, len);
	n = vsnprintf(buf + len, sizeof(buf) - len - 1, fmt, ap);
	if (n < 0)
		n = 0;
	len += (size_t)n < sizeof(buf) - len - 1 ? (size_t)n : sizeof(buf) - len - 2;
	buf[len++] = '\n';
	while (len) {
		ssize_t w = write(STDERR_FILENO, buf, len);

		if (w <= 0)
			break;
		len -= (size_t)w;
	}
}

void md__report(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	md_vreport("memdesc: ", fmt, ap);
	va_end(ap);
}

void md__panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	md_vreport("memdesc: internal error: ", fmt, ap);
	va_end(ap);
	abort();
}

/* ---- threads ------------------------------------------------------------------ */

static void md_thread_exit(void *arg)
{
	(void)arg;
	/* A destructor run after this one may use us again: it registers anew. */
	md_thread_registered = false;
	kmem__thread_exit();
	pages__pcache_drain(true);
}

void md__thread_register(void)
{
	if (likely(md_thread_registered))
		return;
	md_thread_registered = true;
	pthread_setspecific(md_thread_key, (void *)1);
}

/* ---- init --------------------------------------------------------------------- */

static int md_boot(void)
{
	int rc;

	rc = md__phys_init();				/* a */
	if (rc)
		return rc;
	rc = md__pages_init();				/* b */
	if (rc)
		return rc;
	rc = kmem__boot();				/* c: struct slab, magazines, tls */
	if (rc)
		return rc;
	md_folio_cache = kmem__cache_create_static("memdesc-folio", sizeof(struct folio), 16,
						   KMC_TYPESAFE_BY_RCU);
	md_node_cache = kmem__cache_create_static("memdesc-xa-node", xa_node_size(),
						  XA_NODE_ALIGN, KMC_TYPESAFE_BY_RCU);
	md_split_cache = kmem__cache_create_static("memdesc-split", 32, 16, 0);
	md_pblock_cache = kmem__cache_create_static("memdesc-pblock", md__pblock_size(), 16, 0);
	if (!md_folio_cache || !md_node_cache || !md_split_cache || !md_pblock_cache)
		return -ENOMEM;
	if (pthread_key_create(&md_thread_key, md_thread_exit))	/* d */
		return -ENOMEM;
	return 0;
}

int memdesc_init(void)
{
	if (likely(atomic_load_explicit(&md__ready, memory_order_acquire)))
		return md__init_error;
	if (md_initialising)
		return 0;	/* nested call from the bootstrap itself */
	pthread_mutex_lock(&md_init_lock);
	if (!atomic_load_explicit(&md__ready, memory_order_relaxed)) {
		md_initialising = true;
		md__init_error = md_boot();
		md_initialising = false;
		atomic_store_explicit(&md__ready, 1, memory_order_release);
	}
	pthread_mutex_unlock(&md_init_lock);
	return md__init_error;
}

/* ---- verify, stats ------------------------------------------------------------ */

int memdesc_verify(void)
{
	if (md__init_check())
		return 0;
	return pages__verify();
}

void memdesc_stats(struct memdesc_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (md__init_check())
		return;
	pages__stats(st);
	st->pages_arena_alloc = atomic_load(&md_phys.arena_pages);
	st->bytes_mapped = atomic_load(&md_phys.committed);
	st->bytes_resident = (st->pages_folio + st->pages_slab + st->pages_pcache +
			      st->pages_dirty + st->pages_block_free) << MD_PAGE_SHIFT;
	st->bytes_limit = md_phys.limit;
	st->nr_folios = (size_t)atomic_load(&md_nr_folios);
	st->nr_slabs = (size_t)atomic_load(&kmem_nr_slabs);
	st->meta_folios = st->nr_folios * sizeof(struct folio);
	st->meta_slabs = st->nr_slabs * sizeof(struct slab);
	st->meta_vmem_tags = vmem_tag_bytes();
	st->meta_bitmaps = atomic_load(&md_phys.bitmap_pages) << MD_PAGE_SHIFT;
	st->chunk_maps = atomic_load(&md_phys.chunk_maps);
	st->chunk_unmaps = atomic_load(&md_phys.chunk_unmaps);
	st->chunk_map_failures = atomic_load(&md_phys.map_failures);
	st->purges = atomic_load(&md_phys.purges);
	st->pages_purged = atomic_load(&md_phys.pages_purged);
	st->moves = atomic_load(&md_phys.moves);
	st->pages_moved = atomic_load(&md_phys.pages_moved);
}
