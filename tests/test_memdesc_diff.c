/*
 * test_memdesc_diff: differential test of the page allocator, folios and slab caches
 * against a model.
 *
 * A seeded sequence (MDT_SEED replays it) of mdt_scaled(1000000) operations: folio
 * alloc (power-of-two orders and any size), raw pages_alloc with our own descriptors,
 * frees, folio splits, kmem_cache alloc and free. The model and the operations are in
 * tests/model/memdesc_model.c (shared with the fuzz target fuzz_pages): it keeps the
 * owner of every pfn and every live allocation and object, checks the page map around
 * every touched allocation and the contents of every allocation when it is freed.
 * Every live allocation is checked periodically, and memdesc_verify() runs too.
 */
#include "mdt.h"
#include "model/memdesc_model.h"

#define MAX_LIVE 3000
#define MAX_OBJS 20000

START_TEST(test_diff)
{
	struct mdt_src_rng src;
	size_t nops = mdt_scaled(1000000);
	struct mdm m;

	mdt_src_rng_init(&src, mdt_seed(20261122));
	mdm_init(&m, &src.src, MAX_LIVE, MAX_OBJS);
	mdm_begin(&m);
	for (size_t op = 0; op < nops; op++) {
		mdm_step(&m);
		if (op % 20000 == 19999)
			mdm_sweep(&m);
		if (op % 200000 == 199999)
			mdm_verify(&m);
	}
	mdm_end(&m);
	mdm_fini(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memdesc_diff");
	TCase *tc = tcase_create("diff");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_diff);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
