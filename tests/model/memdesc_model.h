/*
 * memdesc_model: the page allocator's, the folios' and the slab caches' reference
 * model and its random operations, shared by test_memdesc_diff (choices from a seeded
 * PRNG) and the fuzz target fuzz_pages (choices decoded from the input).
 *
 * Operations: folio alloc (power-of-two orders and any size), raw pages_alloc with our
 * own descriptors, frees, folio splits, resizes in place (folio_resize, pages_resize),
 * kmem_cache alloc and free; for the fuzz target
 * also folio_get/folio_put and calls that must be refused (bad sizes, bad frees, bad
 * splits). The model keeps the owner of every pfn (no two live allocations may
 * overlap) and every live allocation and object. After each operation,
 * pfn_to_memdesc() of every page of the touched allocation is its descriptor (or 0
 * once freed) and the pages around it are not, and virt_to_folio() finds it. Every
 * byte of every allocation and object is written with a pattern of its own (a
 * function of its seed and address, so split pieces keep theirs) and checked when it
 * is freed. A resize keeps the pattern of the pages that stay; a grow may fail only
 * when the pages after the allocation are not all free in the page arena (checked by
 * taking them) or lie in another chunk, and a shrink never fails. Each allocation,
 * split and grow succeeds, or (fault-injection builds) fails cleanly under an injected
 * fault with nothing changed (mdt_fault.h). A mismatch calls
 * mdt_fail().
 *
 * The page allocator is process-wide: a run must free everything it allocated
 * (mdm_end), after which no folio may be left in the process.
 */
#ifndef MEMDESC_MODEL_H
#define MEMDESC_MODEL_H

#include "mdt_src.h"
#include "memdesc.h"
#include "slab.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MDM_NCACHES 4

enum mdm_kind { MDM_FOLIO, MDM_RAW };

struct mdm_alloc {
	enum mdm_kind kind;
	struct folio *f;	/* the folio, or our own descriptor for MDM_RAW */
	unsigned long pfn;
	size_t n;
	uint64_t seed;
	uint32_t id;
	long refs;		/* references we hold (folio_get adds one) */
	bool fixed;		/* a page of a page block or a piece of a split folio: no
				 * segment of its own, never resized in place */
};

struct mdm_obj {
	void *p;
	int cache;
	uint64_t seed;
};

struct mdm {
	struct mdt_src *src;
	size_t max_live, max_objs;	/* caps of the operation mix */
	struct mdm_alloc *live;		/* max_live * 64: splits add pieces beyond the cap */
	size_t nlive;
	struct mdm_obj *objs;
	size_t nobjs;
	uint32_t *owner;		/* pfn -> id of the live allocation, 0 when free */
	size_t owner_len;
	uint32_t next_id;
	struct kmem_cache *caches[MDM_NCACHES];
	struct kmem_cache *raw_desc_cache;
};

/* Model arrays for at most @max_live allocations and @max_objs objects. */
void mdm_init(struct mdm *m, struct mdt_src *src, size_t max_live, size_t max_objs);
void mdm_fini(struct mdm *m);
/* Create the run's slab caches. */
void mdm_begin(struct mdm *m);
/* One random operation as the differential test draws it. */
void mdm_step(struct mdm *m);
/* folio_get or folio_put on a live folio (refcount compared with the model). */
void mdm_ref(struct mdm *m);
/* A call that must be refused (-EINVAL / NULL with EINVAL), nothing changed. */
void mdm_bad(struct mdm *m);
/* Every live allocation mapped, every object known to its cache. */
void mdm_sweep(struct mdm *m);
/* memdesc_verify() and kmem_cache_verify() of the run's caches. */
void mdm_verify(struct mdm *m);
/* Check, free everything; the run's caches are then empty (reaped), not destroyed. */
void mdm_free_all(struct mdm *m);
/* Check, free everything, destroy the caches; no folio may be left. */
void mdm_end(struct mdm *m);

#endif /* MEMDESC_MODEL_H */
