/*
 * xa_model: the XArray's reference model and its random operations, shared by
 * test_xarray_diff (choices from a seeded PRNG) and the fuzz target fuzz_xarray
 * (choices decoded from the input).
 *
 * The model is a sorted array of disjoint extents [start, last] with an entry and its
 * marks: one per (multi-index) entry, so it is independent of how the tree stores
 * them. Indices come from three windows (low, around 2^32, just below ULONG_MAX), and
 * some stores are large enough to cover windows and the space between them. Each
 * operation is applied to the array and to the model, its result compared, and the
 * affected indices compared afterwards; xam_check_all() compares the whole array
 * (iteration, marked iteration) and runs xa_verify(). Some operations run with the
 * node hook failing, or meet an injected fault (fault-injection builds): the array must
 * then be unchanged. A mismatch calls mdt_fail().
 */
#ifndef XA_MODEL_H
#define XA_MODEL_H

#include "mdt_src.h"

#include <stdbool.h>
#include "test_xarray_hook.h"

#define XAM_WINDOW 512UL
/* Most extents one operation adds to the model (a split, a store_range's pieces). */
#define XAM_MAX_GROWTH 256UL

struct xam_extent {
	unsigned long start, last;
	void *entry;
	unsigned int marks;	/* bit m: mark m */
};

struct xam {
	struct xarray *xa;
	struct xat_hook *hook;
	struct mdt_src *src;
	struct xam_extent *e;	/* the model, sorted by start */
	unsigned long n, cap;
	unsigned long opno;	/* number of the current operation, for messages */
	unsigned long trace_from;	/* print every operation from this one on */
	unsigned long next_value;	/* the next entry handed out */
	/* The array has XA_FLAGS_KEEP_NODES: no marks (stores take the leaf fast path);
	 * prunes and inline loads (xa_load_rcu) instead. Set after xam_init(). */
	bool keep_nodes;
};

/* Set up the model (room for @cap extents) for @xa, whose node ops are @hook's. */
void xam_init(struct xam *m, struct xarray *xa, struct xat_hook *hook, struct mdt_src *src,
	      unsigned long cap);
void xam_fini(struct xam *m);
/* One random operation, drawn as the differential test draws it. */
void xam_run_op(struct xam *m);
/* The whole array against the model, and xa_verify(). */
void xam_check_all(struct xam *m);

#endif /* XA_MODEL_H */
