/*
 * fuzz_vmem: vmem against its bitmap model (tests/model/vmem_model.c, the one
 * test_vmem_diff uses), on operations decoded from the input (fuzz.h).
 *
 * The input's first choices pick the fit policy and where the span lies (address 0,
 * an odd base, the top of the address space); then allocations (vmem_alloc and
 * constrained vmem_xalloc), frees and bad frees (-EINVAL, nothing changed). Every
 * result is checked against the policy's exact rule; vmem_check() and the sizes run
 * every CHECK_EVERY operations. Each input ends by freeing everything, checking that
 * the span coalesced back into one segment and destroying the arena.
 */
#include "fuzz.h"
#include "vmem_model.h"

#define MAX_OPS 4000
#define CHECK_EVERY 64

static const int policies[] = { VMEM_INSTANTFIT, VMEM_BESTFIT, VMEM_NEXTFIT };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmm r;	/* 100 KB: not on the stack */
	struct fuzz_src src;
	int policy;

	fuzz_src_init(&src, data, size);
	vmm_init(&r, &src.src);
	policy = policies[mdt_src_below(&src.src, 3)];
	vmm_begin(&r, policy, "fuzz", vmm_bases[mdt_src_below(&src.src, VMM_NBASES)]);
	for (unsigned op = 0; !fuzz_src_done(&src) && op < MAX_OPS; op++) {
		uint64_t c = mdt_src_below(&src.src, 100);

		if (r.nlive == 0 || c < 45)
			vmm_alloc(&r);
		else if (c < 55)
			vmm_resize(&r);
		else if (c < 95)
			vmm_free(&r);
		else
			vmm_bad_free(&r);
		if (op % CHECK_EVERY == CHECK_EVERY - 1)
			vmm_check(&r);
	}
	vmm_check(&r);
	vmm_end(&r);
	return 0;
}
