/*
 * malloc_model: the md_ API's reference model and its random operations, shared by
 * test_malloc_diff (choices from a seeded PRNG) and the fuzz target fuzz_malloc
 * (choices decoded from the input).
 *
 * The model is a table of live blocks with their requested sizes, alignments and fill
 * patterns. Every block is checked when it is freed or reallocated (its contents,
 * alignment and usable size), and no two live blocks may overlap (mmm_check_overlaps,
 * against a sorted copy of the table). Sizes cover the classes, the small/large
 * boundary and large blocks. For the fuzz target, mmm_bad() makes calls that must be
 * refused (bad alignments, overflowing sizes: NULL and errno, the block untouched) and
 * bad frees (interior pointer, double free, free_sized above the usable size, a
 * pointer not from the heap: reported once each, nothing changed; it needs the
 * option abort=0). Each allocation succeeds, or (fault-injection builds) fails cleanly
 * under an injected fault with nothing changed (mdt_fault.h). A mismatch calls
 * mdt_fail().
 *
 * The malloc layer is process-wide: mmm_end() frees every block of the run.
 */
#ifndef MALLOC_MODEL_H
#define MALLOC_MODEL_H

#include "mdt_src.h"

#include <stddef.h>
#include <stdint.h>

struct mmm_block {
	unsigned char *p;
	size_t size;
	size_t align;
	size_t step;	/* the pattern's stride, chosen when it was written */
	size_t filled;	/* the size when it was written (its last byte is set) */
	uint8_t seed;
};

struct mmm {
	struct mdt_src *src;
	struct mmm_block *tab;
	struct mmm_block *sorted;	/* scratch of mmm_check_overlaps */
	size_t slots;
	long trace_slot;		/* print every operation on this slot; -1 none */
	size_t opno;
};

void mmm_init(struct mmm *m, struct mdt_src *src, size_t slots);
void mmm_fini(struct mmm *m);
/* One random operation on a random slot, as the differential test draws it. */
void mmm_op(struct mmm *m);
/* A call that must be refused or reported (needs abort=0), nothing changed. */
void mmm_bad(struct mmm *m);
void mmm_check_overlaps(struct mmm *m);
/* Check and free every live block, trim, md_malloc_verify() (memdesc_verify() too). */
void mmm_end(struct mmm *m);

#endif /* MALLOC_MODEL_H */
