/*
 * test_malloc_diff: a seeded random run of the whole md_ family against a simple
 * model: a table of live blocks with their requested sizes, alignments and fill
 * patterns (tests/model/malloc_model.c, shared with the fuzz target fuzz_malloc).
 * Every block is checked when it is freed or reallocated (its contents, alignment and
 * usable size), and no two live blocks may overlap (checked against a sorted copy of
 * the table every few thousand operations). Sizes cover the classes, the small/large
 * boundary and large blocks. MDT_TRACE=<slot> prints every operation on one slot.
 */
#include "mdt.h"
#include "model/malloc_model.h"

#include <stdlib.h>

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

int main(void)
{
	Suite *s = suite_create("malloc_diff");
	TCase *tc = tcase_create("model");

	tcase_set_timeout(tc, 110);
	tcase_add_test(tc, test_diff);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
