/*
 * fuzz_malloc: the md_ API against its model (tests/model/malloc_model.c, the one
 * test_malloc_diff uses), on operations decoded from the input (fuzz.h): md_malloc,
 * md_calloc, md_realloc, md_aligned_alloc, md_posix_memalign, md_free,
 * md_free_sized, md_malloc_usable_size, and calls that must be refused or reported
 * (bad alignments, overflowing sizes, interior and double frees).
 *
 * The malloc layer is process-wide: each input uses at most SLOTS live blocks and
 * ends by freeing them all, md_malloc_trim() and md_malloc_verify(). Bad frees must not
 * abort the process: the option abort=0 is set directly (the library's constructor
 * read MEMDESC_OPTIONS before the first input), and the model counts the reports
 * through md_malloc_error_hook().
 */
#include "fuzz.h"
#include "malloc_model.h"
#include "md_malloc_impl.h"

#define SLOTS 64
#define MAX_OPS 2000
#define CHECK_EVERY 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mmm m;
	static int ready;
	struct fuzz_src src;

	if (!ready) {
		md__opt.abort = 0;
		mmm_init(&m, NULL, SLOTS);
		ready = 1;
	}
	fuzz_src_init(&src, data, size);
	m.src = &src.src;
	for (unsigned op = 0; !fuzz_src_done(&src) && op < MAX_OPS; op++) {
		if (mdt_src_below(&src.src, 100) < 90)
			mmm_op(&m);
		else
			mmm_bad(&m);
		if (op % CHECK_EVERY == CHECK_EVERY - 1)
			mmm_check_overlaps(&m);
	}
	mmm_end(&m);
	return 0;
}
