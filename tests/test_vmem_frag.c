/*
 * test_vmem_frag: what vmem saves over a buddy allocator's rounding.
 *
 * A seeded trace of allocations and frees of mixed page counts (mostly not powers of
 * two) runs on an arena under each fit policy. At every step:
 *  - requested: the quanta the live requests asked for;
 *  - vmem in use: the arena's allocated quanta (vmem_size(VMEM_ALLOC)), which must never
 *    exceed the requested quanta (vmem allocates exactly, to the quantum);
 *  - buddy in use: the requests rounded up to powers of two, which is what a buddy
 *    allocator would hold at least (its own external fragmentation comes on top);
 *  - vmem extent: the end of the highest range in use, i.e. how much address space the
 *    arena needed, external fragmentation included.
 * The peaks are printed. The extent is information, not an assertion: next-fit walks the
 * whole arena by design, and instant-fit trades some extent for O(1) (on the default
 * seed best-fit needs +15% address space over requested, instant-fit +58%, the buddy's
 * rounding alone +33%). Replay with MDT_SEED.
 */
#include "mdt.h"
#include "vmem.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define Q	4096u
#define NQ	(1u << 20)		/* quanta in the arena: never the limit */
#define LIVE	2000u			/* the trace hovers around this many live requests */

struct item {
	uintptr_t addr;
	size_t quanta;
};

static size_t pow2_roundup(size_t x)
{
	size_t p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

static size_t trace_quanta(struct mdt_rng *rng)
{
	uint64_t p = mdt_rng_below(rng, 100);

	if (p < 60)
		return 1 + mdt_rng_below(rng, 16);
	if (p < 90)
		return 17 + mdt_rng_below(rng, 112);
	return 129 + mdt_rng_below(rng, 896);
}

static void run_trace(int policy, const char *name)
{
	uint64_t seed = mdt_seed(0x66726167ull);
	size_t ops = mdt_scaled(200000), n = 0;
	size_t requested = 0, buddy = 0, peak_req = 0, peak_vmem = 0, peak_buddy = 0;
	uintptr_t extent = 0, peak_extent = 0;
	struct item *live = calloc(4 * LIVE, sizeof(*live));
	vmem_t *vm = vmem_create(name, 0, (size_t)NQ * Q, Q, NULL, NULL, NULL, 0, 0);
	struct mdt_rng rng;

	ck_assert_ptr_nonnull(live);
	ck_assert_ptr_nonnull(vm);
	mdt_rng_init(&rng, seed);
	for (size_t op = 0; op < ops; op++) {
		bool alloc = n == 0 || (n < 4 * LIVE &&
					mdt_rng_below(&rng, 100) < (n < LIVE ? 60u : 40u));
		size_t in_use;

		if (alloc) {
			struct item it = { 0, trace_quanta(&rng) };

			if (vmem_alloc(vm, it.quanta * Q, policy, &it.addr) != 0)
				ck_abort_msg("%s: allocation of %zu quanta failed", name, it.quanta);
			live[n++] = it;
			requested += it.quanta;
			buddy += pow2_roundup(it.quanta);
			if (it.addr + it.quanta * Q > extent)
				extent = it.addr + it.quanta * Q;
		} else {
			size_t i = mdt_rng_below(&rng, n);

			vmem_free(vm, live[i].addr, live[i].quanta * Q);
			requested -= live[i].quanta;
			buddy -= pow2_roundup(live[i].quanta);
			live[i] = live[--n];
		}
		in_use = vmem_size(vm, VMEM_ALLOC) / Q;
		if (in_use > requested)
			ck_abort_msg("%s: vmem holds %zu quanta for %zu requested", name, in_use,
				     requested);
		if (requested > peak_req)
			peak_req = requested;
		if (in_use > peak_vmem)
			peak_vmem = in_use;
		if (buddy > peak_buddy)
			peak_buddy = buddy;
		if (extent > peak_extent)
			peak_extent = extent;
		if (op % 10000 == 0 && vmem_check(vm) != 0)
			ck_abort_msg("%s: vmem_check failed", name);
	}
	fprintf(stderr, "test_vmem_frag %-10s peak quanta: requested %zu, vmem in use %zu, "
		"buddy rounding %zu (+%.1f%%), vmem extent %zu (%+.1f%% vs requested)\n",
		name, peak_req, peak_vmem, peak_buddy,
		100.0 * (double)(peak_buddy - peak_req) / (double)peak_req,
		(size_t)(peak_extent / Q),
		100.0 * ((double)(peak_extent / Q) - (double)peak_req) / (double)peak_req);
	ck_assert_uint_le(peak_vmem, peak_req);
	ck_assert_uint_lt(peak_vmem, peak_buddy);
	while (n > 0) {
		n--;
		vmem_free(vm, live[n].addr, live[n].quanta * Q);
	}
	ck_assert_uint_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
	free(live);
}

START_TEST(test_frag_instantfit)
{
	run_trace(VMEM_INSTANTFIT, "instantfit");
}
END_TEST

START_TEST(test_frag_bestfit)
{
	run_trace(VMEM_BESTFIT, "bestfit");
}
END_TEST

START_TEST(test_frag_nextfit)
{
	run_trace(VMEM_NEXTFIT, "nextfit");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmem_frag");
	TCase *tc = tcase_create("frag");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_frag_instantfit);
	tcase_add_test(tc, test_frag_bestfit);
	tcase_add_test(tc, test_frag_nextfit);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
