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
 * In fault-injection builds the "fault" case sweeps every fault point over a short
 * sequence (mdt_fault.h).
 */
#include "mdt.h"
#include "mdt_fault.h"
#include "model/memdesc_model.h"

#ifdef MEMDESC_FAULT_INJECTION
#include "mdt_fault_memdesc.h"
#endif

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

#ifdef MEMDESC_FAULT_INJECTION
/*
 * The fault-injection sweep over the first FAULT_OPS operations of the same sequence,
 * with the run's caches made once: after each run everything is freed, the caches are
 * empty (mdm_free_all), and mdt_memdesc_check_clean() finds nothing leaked below.
 */
#define FAULT_OPS 4000

struct fault_arg {
	struct mdm m;
	struct mdt_src_rng src;
	uint64_t seed;
};

static void fault_run(void *arg)
{
	struct fault_arg *a = arg;

	mdt_src_rng_init(&a->src, a->seed);
	for (size_t op = 0; op < mdt_scaled(FAULT_OPS); op++)
		mdm_step(&a->m);
	mdm_sweep(&a->m);
}

static void fault_clean(void *arg)
{
	struct fault_arg *a = arg;

	mdm_free_all(&a->m);
	mdt_memdesc_check_clean();
}

START_TEST(test_fault)
{
	static struct fault_arg a;
	struct mdt_fault_workload w = {
		.name = "memdesc_diff", .run = fault_run, .clean = fault_clean, .arg = &a,
		.all_below = 200, .max_runs = 300,
	};

	a.seed = mdt_seed(20261122);
	mdt_src_rng_init(&a.src, a.seed);
	mdm_init(&a.m, &a.src.src, MAX_LIVE, MAX_OBJS);
	mdm_begin(&a.m);
	mdt_fault_sweep(&w);
	mdm_end(&a.m);
	mdm_fini(&a.m);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("memdesc_diff");
	TCase *tc = tcase_create("diff");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_diff);
	suite_add_tcase(s, tc);
#ifdef MEMDESC_FAULT_INJECTION
	mdt_fault_add_tcase(s, test_fault);
#endif
	return mdt_run(s);
}
