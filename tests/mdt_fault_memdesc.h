/*
 * mdt_fault_memdesc.h: the end-of-run check of the fault-injection sweeps whose
 * workloads sit on memdesc (memdesc_diff, malloc_diff, malloc_conformance). Call it
 * once the workload has freed everything and its own caches are reaped.
 *
 * It gives everything back (the thread's magazines and page cache, every cache reaped
 * twice, an RCU barrier for the type-stable slabs, the dirty list purged) and checks:
 * no folio, no split piece, no page in a page cache, on the dirty list or waiting for
 * RCU; no folio descriptor or split record left; page-map nodes, page blocks and slab
 * descriptors beyond the slabs within a slack of where they stood at the first call
 * (their levels vary with pools and other threads' magazines; a leak on a failure path
 * grows without bound over the hundreds of runs of a sweep, a leak at one N alone
 * can hide in the slack); kmem_cache_verify() of the internal caches, memdesc_verify()
 * (page accounting: every page taken from the page arena is mapped, cached or held)
 * and vmem_check() of both page arenas.
 * Internal header of the tests; needs memdesc_impl.h (fault-injection builds only).
 */
#ifndef MDT_FAULT_MEMDESC_H
#define MDT_FAULT_MEMDESC_H

#include "memdesc.h"
#include "memdesc_impl.h"
#include "slab.h"
#include "vmem.h"
#include "slab_impl.h"

#include <check.h>
#include <urcu-bp.h>

/*
 * Slack over the first check's level for the caches whose level varies between runs:
 * page-map nodes (the node pool holds up to 256), struct slab (magazines of threads
 * that free descriptors of type-stable slabs: the md_rcu worker gives its own to the
 * depots after each batch, but a md_rcu_barrier() caller that runs a batch keeps
 * them), page blocks (one spare, reuse order).
 */
#define MDT_NODE_SLACK 320
#define MDT_SLABDESC_SLACK 32
#define MDT_PBLOCK_SLACK 8

static size_t mdt_cache_inuse(struct kmem_cache *c)
{
	struct kmem_cache_stats cs;

	kmem_cache_stats(c, &cs);
	return cs.objs_slab_inuse;
}

static inline void mdt_memdesc_check_clean(void)
{
	static bool based;
	static size_t node_base, pblock_base, slabdesc_base;
	struct memdesc_stats st;
	size_t node, pblock, slabdesc;

	kmem_thread_flush();
	memdesc_thread_drain();
	kmem_reap_all();
	kmem_reap_all();
	md_rcu_barrier();	/* slab pages of type-stable caches are freed after a GP */
	memdesc_purge();
	memdesc_stats(&st);
	if (st.pages_folio || st.nr_folios || st.pages_split_held)
		ck_abort_msg("leak: %zu folio pages, %zu folios, %zu split pieces held",
			     st.pages_folio, st.nr_folios, st.pages_split_held);
	if (st.pages_dirty || st.pages_pcache || st.pages_rcu_pending)
		ck_abort_msg("not given back: %zu dirty, %zu cached, %zu waiting for RCU",
			     st.pages_dirty, st.pages_pcache, st.pages_rcu_pending);
	if (mdt_cache_inuse(md_folio_cache) || mdt_cache_inuse(md_split_cache))
		ck_abort_msg("leak: %zu folio descriptors, %zu split records",
			     mdt_cache_inuse(md_folio_cache), mdt_cache_inuse(md_split_cache));
	if (kmem_cache_verify(md_folio_cache) || kmem_cache_verify(md_node_cache) ||
	    kmem_cache_verify(kmem_slab_cache))
		ck_abort_msg("kmem_cache_verify failed");
	node = mdt_cache_inuse(md_node_cache);
	pblock = mdt_cache_inuse(md_pblock_cache);
	slabdesc = mdt_cache_inuse(kmem_slab_cache) + MDT_SLABDESC_SLACK - st.nr_slabs;
	if (!based) {
		node_base = node;
		pblock_base = pblock;
		slabdesc_base = slabdesc;
		based = true;
	}
	if (node > node_base + MDT_NODE_SLACK || pblock > pblock_base + MDT_PBLOCK_SLACK ||
	    slabdesc > slabdesc_base + MDT_SLABDESC_SLACK)
		ck_abort_msg("leak: %zu page-map nodes, %zu page blocks, %zu slab descriptors "
			     "beyond the slabs (+%d); %zu, %zu, %zu at the first check", node, pblock,
			     slabdesc, MDT_SLABDESC_SLACK, node_base, pblock_base, slabdesc_base);
	if (memdesc_verify())
		ck_abort_msg("memdesc_verify failed");
	if (vmem_check(md_phys.page_arena) || vmem_check(md_phys.os_arena))
		ck_abort_msg("vmem_check of the page arenas failed");
}

#ifdef MEMDESC_MD_MALLOC_H
/* The malloc layer after a run: trimmed, it holds no block, and memdesc is clean. */
static inline void mdt_malloc_check_clean(void)
{
	struct md_malloc_stats ms;

	md_malloc_trim(0);
	mdt_memdesc_check_clean();
	md_malloc_stats(&ms);
	ck_assert_msg(ms.small_in_use == 0 && ms.large_in_use == 0,
		      "leak: %zu bytes of small blocks, %zu of large ones", ms.small_in_use,
		      ms.large_in_use);
}
#endif

#endif /* MDT_FAULT_MEMDESC_H */
