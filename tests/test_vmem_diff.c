/*
 * test_vmem_diff: vmem against a bitmap model.
 *
 * For each fit policy, a seeded sequence of mdt_scaled(1,000,000) operations (vmem_alloc,
 * vmem_xalloc with random align/phase/nocross/minaddr/maxaddr, vmem_resize,
 * vmem_alloc_next + vmem_join, frees) runs
 * on an arena of one span and on a bitmap of its quanta; the model, the operations and the rules
 * every result is checked against are in tests/model/vmem_model.c (shared with the
 * fuzz target fuzz_vmem). Epochs move the span between address 0, an odd base and the
 * top of the address space. vmem_check() runs every 1,000 operations. Replay with
 * MDT_SEED. In fault-injection builds the "fault" case sweeps the tag-refill point over
 * a short sequence per policy (mdt_fault.h).
 */
#include "mdt.h"
#include "mdt_fault.h"
#include "model/vmem_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define EPOCHS VMM_NBASES

static void run_policy(int policy, const char *name, uint64_t seed_salt)
{
	uint64_t seed = mdt_seed(0x766d656d64696666ull) ^ seed_salt;
	size_t ops = mdt_scaled(1000000), per_epoch = ops / EPOCHS + 1;
	struct mdt_src_rng src;
	struct vmm *r = malloc(sizeof(*r));

	ck_assert_ptr_nonnull(r);
	mdt_src_rng_init(&src, seed);
	vmm_init(r, &src.src);
	for (int e = 0; e < EPOCHS; e++) {
		vmm_begin(r, policy, name, vmm_bases[e]);
		for (size_t op = 0; op < per_epoch; op++) {
			uint64_t dice = mdt_src_below(&src.src, 100);

			if (r->nlive == 0 || dice < 46)
				vmm_alloc(r);
			else if (dice < 55)
				vmm_resize(r);
			else if (dice < 58)
				vmm_alloc_next(r);
			else
				vmm_free(r);
			if (op % 1000 == 999)
				vmm_check(r);
		}
		vmm_end(r);
	}
	fprintf(stderr, "test_vmem_diff %s (seed %#" PRIx64 "): %" PRIu64 " allocs, %" PRIu64
		" xallocs, %" PRIu64 " -ENOMEM, %" PRIu64 " frees, %" PRIu64 " resizes, %" PRIu64
		" resize -ENOMEM, %" PRIu64 " alloc_next, %" PRIu64 " alloc_next -ENOMEM\n", name,
		seed, r->st.allocs, r->st.xallocs, r->st.enomem, r->st.frees, r->st.resizes,
		r->st.resize_enomem, r->st.nexts, r->st.next_enomem);
	free(r);
}

START_TEST(test_diff_instantfit)
{
	run_policy(VMEM_INSTANTFIT, "instantfit", 1);
}
END_TEST

START_TEST(test_diff_bestfit)
{
	run_policy(VMEM_BESTFIT, "bestfit", 2);
}
END_TEST

START_TEST(test_diff_nextfit)
{
	run_policy(VMEM_NEXTFIT, "nextfit", 3);
}
END_TEST

#ifdef MEMDESC_FAULT_INJECTION
/*
 * The fault-injection sweep: per policy, an arena (at the base of epoch = policy) and
 * FAULT_OPS operations of the same mix; clean() frees everything and checks that the
 * arena is one free segment again and passes vmem_check() (vmm_end).
 */
#define FAULT_OPS 3000
#define NPOL 3

static const int fault_policy[NPOL] = { VMEM_INSTANTFIT, VMEM_BESTFIT, VMEM_NEXTFIT };
static struct vmm fault_vmm[NPOL];
static struct mdt_src_rng fault_src;
static uint64_t fault_seed;

static void fault_run(void *arg)
{
	(void)arg;
	mdt_src_rng_init(&fault_src, fault_seed);
	for (int i = 0; i < NPOL; i++) {
		struct vmm *r = &fault_vmm[i];

		vmm_init(r, &fault_src.src);
		vmm_begin(r, fault_policy[i], "fault", vmm_bases[i]);
		if (!r->vm)
			continue;
		for (size_t op = 0; op < mdt_scaled(FAULT_OPS); op++) {
			if (r->nlive == 0 || mdt_src_below(&fault_src.src, 100) < 60)
				vmm_alloc(r);
			else
				vmm_free(r);
		}
		vmm_check(r);
	}
}

static void fault_clean(void *arg)
{
	(void)arg;
	for (int i = 0; i < NPOL; i++)
		vmm_end(&fault_vmm[i]);
}

START_TEST(test_fault)
{
	struct mdt_fault_workload w = {
		.name = "vmem_diff", .run = fault_run, .clean = fault_clean,
		.all_below = 300, .max_runs = 400,
	};

	fault_seed = mdt_seed(0x766d656d64696666ull);
	mdt_fault_sweep(&w);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("vmem_diff");
	TCase *tc = tcase_create("diff");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_diff_instantfit);
	tcase_add_test(tc, test_diff_bestfit);
	tcase_add_test(tc, test_diff_nextfit);
	suite_add_tcase(s, tc);
#ifdef MEMDESC_FAULT_INJECTION
	mdt_fault_add_tcase(s, test_fault);
#endif
	return mdt_run(s);
}
