/*
 * test_xarray_diff: the XArray against a reference model, over a seeded random
 * sequence of mdt_scaled(1000000) operations: store, erase, insert, cmpxchg,
 * store_order, store_range, split, set/clear mark, find and find_after, some of them
 * with the node hook failing (the array must then be unchanged).
 *
 * The model and the operations are in tests/model/xa_model.c (shared with the fuzz
 * target fuzz_xarray). After every operation the affected indices are compared; every
 * CHECK_EVERY operations the whole array is compared (iteration, marked iteration) and
 * xa_verify() runs. The seed is printed; MDT_SEED=<seed> replays a run, MDT_SCALE
 * scales it. In fault-injection builds the "fault" case sweeps the node-allocation
 * point over a short sequence (mdt_fault.h).
 */
#include "mdt.h"
#include "mdt_fault.h"
#include "model/xa_model.h"
#include "xarray_impl.h"

#include <stdio.h>
#include <stdlib.h>

#define CHECK_EVERY 2000UL
#define MAX_EXTENTS 65536

static void diff_run(bool keep)
{
	uint64_t seed = mdt_seed(keep ? 20261130 : 20261122);
	size_t ops = mdt_scaled(keep ? 500000 : 1000000);
	/* XA_DIFF_CHECK_EVERY=1 narrows a failure down to the operation that caused it. */
	const char *every_env = getenv("XA_DIFF_CHECK_EVERY");
	/* XA_DIFF_TRACE_FROM=<op>: print every operation from that one on. */
	const char *trace_env = getenv("XA_DIFF_TRACE_FROM");
	unsigned long every = every_env && *every_env ? strtoul(every_env, NULL, 0) : CHECK_EVERY;
	struct mdt_src_rng src;
	struct xat_hook hook;
	struct xarray xa;
	struct xam m;

	mdt_src_rng_init(&src, seed);
	xat_hook_init(&hook);
	xa_init_flags(&xa, &hook.ops, keep ? XA_FLAGS_KEEP_NODES : 0);
	xam_init(&m, &xa, &hook, &src.src, MAX_EXTENTS);
	m.keep_nodes = keep;
	if (trace_env && *trace_env)
		m.trace_from = strtoul(trace_env, NULL, 0);
	for (m.opno = 0; m.opno < ops; m.opno++) {
		xam_run_op(&m);
		if (every && m.opno % every == every - 1)
			xam_check_all(&m);
	}
	xam_check_all(&m);
	xam_fini(&m);
	/* Everything erased: no node left, every node given back after a grace period. */
	xa_store_range(&xa, 0, ULONG_MAX, NULL);
	ck_assert(xa_empty(&xa));
	if (keep) {
		/* Only empty nodes may be left, and a prune of everything frees them. */
		unsigned long left = xa_nr_nodes(&xa);

		ck_assert_uint_eq(xa_prune(&xa, 0, ULONG_MAX), left);
		ck_assert_int_eq(xa_verify(&xa), 0);
	}
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	xa_destroy(&xa);
	xat_rcu_barrier();
	ck_assert_int_eq(xat_hook_allocs(&hook), xat_hook_frees(&hook));
	fprintf(stderr, "test_xarray_diff%s: %zu operations, %ld nodes allocated\n",
		keep ? " (keep nodes)" : "", ops, xat_hook_allocs(&hook));
}

START_TEST(test_diff)
{
	diff_run(false);
}
END_TEST

/* XA_FLAGS_KEEP_NODES, no marks: the leaf fast path of stores, prunes, xa_load_rcu. */
START_TEST(test_diff_keep_nodes)
{
	diff_run(true);
}
END_TEST

#ifdef MEMDESC_FAULT_INJECTION
/*
 * The fault-injection sweep over the first FAULT_OPS operations of the same sequence:
 * FAULT_XA_NODE makes the N-th node allocation of xa_reserve() fail. clean() erases
 * everything and checks that no node is left, xa_verify() passes and every node the
 * hook handed out came back after a grace period.
 */
#define FAULT_OPS 1500

static struct {
	struct mdt_src_rng src;
	struct xat_hook hook;
	struct xarray xa;
	struct xam m;
	uint64_t seed;
} fault;

static void fault_run(void *arg)
{
	(void)arg;
	mdt_src_rng_init(&fault.src, fault.seed);
	xat_hook_init(&fault.hook);
	xa_init_ops(&fault.xa, &fault.hook.ops);
	xam_init(&fault.m, &fault.xa, &fault.hook, &fault.src.src, MAX_EXTENTS);
	for (fault.m.opno = 0; fault.m.opno < mdt_scaled(FAULT_OPS); fault.m.opno++)
		xam_run_op(&fault.m);
	xam_check_all(&fault.m);
}

static void fault_clean(void *arg)
{
	(void)arg;
	xam_fini(&fault.m);
	xa_store_range(&fault.xa, 0, ULONG_MAX, NULL);
	ck_assert_msg(xa_empty(&fault.xa) && xa_nr_nodes(&fault.xa) == 0, "%lu nodes left",
		      xa_nr_nodes(&fault.xa));
	ck_assert_int_eq(xa_verify(&fault.xa), 0);
	xa_destroy(&fault.xa);
	xat_rcu_barrier();
	ck_assert_msg(xat_hook_allocs(&fault.hook) == xat_hook_frees(&fault.hook),
		      "%ld nodes allocated, %ld freed", xat_hook_allocs(&fault.hook),
		      xat_hook_frees(&fault.hook));
}

START_TEST(test_fault)
{
	struct mdt_fault_workload w = {
		.name = XA_CHUNK_SHIFT == 6 ? "xarray_diff" : "xarray_diff_small",
		.run = fault_run, .clean = fault_clean, .all_below = 300, .max_runs = 400,
	};

	fault.seed = mdt_seed(20261122);
	mdt_fault_sweep(&w);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create(XA_CHUNK_SHIFT == 6 ? "xarray_diff" : "xarray_diff_small");
	TCase *tc = tcase_create("diff");

	tcase_set_timeout(tc, 0);
	tcase_add_test(tc, test_diff);
	tcase_add_test(tc, test_diff_keep_nodes);
	suite_add_tcase(s, tc);
#ifdef MEMDESC_FAULT_INJECTION
	mdt_fault_add_tcase(s, test_fault);
#endif
	return mdt_run(s);
}
