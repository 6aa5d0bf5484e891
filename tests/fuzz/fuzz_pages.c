/*
 * fuzz_pages: the page allocator, folios and slab caches against their model
 * (tests/model/memdesc_model.c, the one test_memdesc_diff uses), on operations
 * decoded from the input (fuzz.h): folio_alloc, folio_alloc_pages, pages_alloc with
 * our own descriptors, frees, folio_split, folio_get/folio_put, kmem_cache objects,
 * and calls that must be refused. pfn_to_memdesc() and virt_to_folio() are checked
 * around every touched allocation.
 *
 * The page allocator is process-wide (initialised once per process), so the model's
 * arrays live across inputs and each input caps its live set (MAX_LIVE allocations,
 * MAX_OBJS objects), creates its slab caches, and ends by freeing everything and
 * destroying them; memdesc_verify() and kmem_cache_verify() run at the end, and no
 * folio may be left in the process.
 */
#include "fuzz.h"
#include "memdesc_model.h"

#define MAX_LIVE 64
#define MAX_OBJS 256
#define MAX_OPS 2000
#define SWEEP_EVERY 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mdm m;
	static int ready;
	struct fuzz_src src;

	if (!ready) {
		mdm_init(&m, NULL, MAX_LIVE, MAX_OBJS);
		ready = 1;
	}
	fuzz_src_init(&src, data, size);
	m.src = &src.src;
	mdm_begin(&m);
	for (unsigned op = 0; !fuzz_src_done(&src) && op < MAX_OPS; op++) {
		uint64_t c = mdt_src_below(&src.src, 100);

		if (c < 80)
			mdm_step(&m);
		else if (c < 92)
			mdm_ref(&m);
		else
			mdm_bad(&m);
		if (op % SWEEP_EVERY == SWEEP_EVERY - 1)
			mdm_sweep(&m);
	}
	mdm_verify(&m);
	mdm_end(&m);
	return 0;
}
