/*
 * fuzz_xarray: the XArray against its reference model (tests/model/xa_model.c, the
 * one test_xarray_diff uses), on operations decoded from the input (fuzz.h).
 *
 * Built with 8-slot nodes (XA_CHUNK_SHIFT=3, as the *_small tests): small indices
 * make deep trees, so short inputs reach multi-level stores, splits and shrinking.
 * Each input starts from an empty array with a counting node hook (some operations
 * run with the hook failing), compares the whole array and runs xa_verify() every
 * CHECK_EVERY operations and at the end, then erases everything (no node may be
 * left) and destroys the array. The nodes it freed reach the hook after an RCU grace
 * period, from liburcu's call_rcu worker, which takes some 10 ms to run them: waiting
 * for it after every input would cap the target at ~100 inputs a second. So the hook
 * lives across inputs, and every BARRIER_EVERY inputs the target waits for the
 * callbacks and checks that every node allocated so far has been freed, and once more
 * at exit (so that a replay of a few inputs checks it too).
 */
#include "fuzz.h"
#include "xa_model.h"

#include <stdio.h>
#include <stdlib.h>

#define CAP 16384		/* model extents */
#define MAX_OPS 2000
#define CHECK_EVERY 64
#define BARRIER_EVERY 256

static struct xat_hook hook;

/* Wait for the call_rcu callbacks: every node allocated so far must be freed. */
static void check_nodes_freed(void)
{
	xat_rcu_barrier();
	if (xat_hook_allocs(&hook) != xat_hook_frees(&hook))
		mdt_fail("fuzz_xarray: %ld nodes allocated, %ld freed", xat_hook_allocs(&hook),
			 xat_hook_frees(&hook));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned long inputs;
	struct fuzz_src src;
	struct xarray xa;
	struct xam m;

	fuzz_src_init(&src, data, size);
	if (inputs++ == 0) {
		xat_hook_init(&hook);
		atexit(check_nodes_freed);
	}
	xa_init_ops(&xa, &hook.ops);
	xam_init(&m, &xa, &hook, &src.src, CAP);
	for (m.opno = 0; !fuzz_src_done(&src) && m.opno < MAX_OPS &&
			 m.n + XAM_MAX_GROWTH <= m.cap; m.opno++) {
		xam_run_op(&m);
		if (m.opno % CHECK_EVERY == CHECK_EVERY - 1)
			xam_check_all(&m);
	}
	xam_check_all(&m);
	xam_fini(&m);
	xa_store_range(&xa, 0, ULONG_MAX, NULL);
	if (!xa_empty(&xa) || xa_nr_nodes(&xa) != 0)
		mdt_fail("fuzz_xarray: %lu nodes left after erasing everything",
			 xa_nr_nodes(&xa));
	xa_destroy(&xa);
	if (inputs % BARRIER_EVERY == 0)
		check_nodes_freed();
	return 0;
}
