/*
 * test_malloc_diff: a seeded random run of the whole md_ family against a simple
 * model: a table of live blocks with their requested sizes, alignments and fill
 * patterns (tests/model/malloc_model.c, shared with the fuzz target fuzz_malloc).
 * Every block is checked when it is freed or reallocated (its contents, alignment and
 * usable size), and no two live blocks may overlap (checked against a sorted copy of
 * the table every few thousand operations). Sizes cover the classes, the small/large
 * boundary and large blocks. MDT_TRACE=<slot> prints every operation on one slot.
 * In fault-injection builds the "fault" case sweeps every fault point over a short
 * sequence (mdt_fault.h).
 */
#include "mdt.h"
#include "mdt_fault.h"
#include "md_malloc.h"
#include "model/malloc_model.h"

#include <stdlib.h>

#ifdef MEMDESC_FAULT_INJECTION
#include "mdt_fault_memdesc.h"
#endif

#define SLOTS 2048

START_TEST(test_diff)
{
	struct mdt_src_rng src;
	size_t ops = mdt_scaled(200000);
	const char *trace = getenv("MDT_TRACE");
	struct mmm m;

	mdt_src_rng_init(&src, mdt_seed(20261122));
	mmm_init(&m, &src.src, SLOTS);
	if (trace)
		m.trace_slot = atoi(trace);
	for (size_t op = 0; op < ops; op++) {
		mmm_op(&m);
		if (op % 20000 == 0)
			mmm_check_overlaps(&m);
	}
	mmm_end(&m);
	mmm_fini(&m);
}
END_TEST

#ifdef MEMDESC_FAULT_INJECTION
/*
 * The fault-injection sweep over the first FAULT_OPS operations of the same sequence.
 * After each run every block is checked and freed (mmm_end), and then the malloc layer
 * holds nothing (md_malloc_stats) and mdt_memdesc_check_clean() finds nothing leaked.
 */
#define FAULT_OPS 2000

static struct {
	struct mdt_src_rng src;
	struct mmm m;
	uint64_t seed;
} fault;

static void fault_run(void *arg)
{
	(void)arg;
	mdt_src_rng_init(&fault.src, fault.seed);
	mmm_init(&fault.m, &fault.src.src, SLOTS);
	for (size_t op = 0; op < mdt_scaled(FAULT_OPS); op++)
		mmm_op(&fault.m);
	mmm_check_overlaps(&fault.m);
}

static void fault_clean(void *arg)
{
	(void)arg;
	mmm_end(&fault.m);
	mmm_fini(&fault.m);
	mdt_malloc_check_clean();	/* mmm_end trimmed already; a second trim is harmless */
}

START_TEST(test_fault)
{
	struct mdt_fault_workload w = {
		.name = "malloc_diff", .run = fault_run, .clean = fault_clean,
		.all_below = 200, .max_runs = 300,
	};

	fault.seed = mdt_seed(20261122);
	mdt_fault_sweep(&w);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("malloc_diff");
	TCase *tc = tcase_create("model");

	tcase_set_timeout(tc, 110);
	tcase_add_test(tc, test_diff);
	suite_add_tcase(s, tc);
#ifdef MEMDESC_FAULT_INJECTION
	mdt_fault_add_tcase(s, test_fault);
#endif
	return mdt_run(s);
}
