/*
 * vmem_model: vmem's reference model (a bitmap of the quanta of one span) and its
 * random operations, shared by test_vmem_diff (choices from a seeded PRNG) and the
 * fuzz target fuzz_vmem (choices decoded from the input).
 *
 * A run of operations (vmem_alloc, vmem_xalloc with random align/phase/nocross/
 * minaddr/maxaddr, vmem_resize, vmem_alloc_next + vmem_join, frees) works on an arena
 * of one span and on the bitmap. Every result must be free in the model, meet its
 * constraints, and be what the policy's exact rule (vmem.c, section 6) allows:
 *  - the range is the lowest fitting one inside its free segment;
 *  - best-fit: the segment is a smallest fitting free segment;
 *  - instant-fit: the segment's list is the lowest list at or above ceil(log2(size))
 *    holding a fitting segment, else list floor(log2(size));
 *  - next-fit: the first fitting segment in address order from the rotor, wrapping;
 *    the rotor is the start of the previous next-fit result, and the search begins
 *    with the free segment containing it (the one its tag coalesced into) or else the
 *    first free segment after it;
 *  - -ENOMEM only when no free segment can hold the request, or when an injected
 *    fault (fault-injection builds) made the call fail: the arena is then unchanged.
 * With one span and coalescing, vmem's free segments are exactly the model's maximal
 * free runs, which is what makes these checks exact. The model's arithmetic is done in
 * 128 bits and by stepping candidates, independently of vmem_fit(). A mismatch calls
 * mdt_fail().
 */
#ifndef VMEM_MODEL_H
#define VMEM_MODEL_H

#include "mdt_src.h"
#include "vmem.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMM_Q		((uint64_t)4096)
#define VMM_NQ		4096u			/* quanta in the arena */
#define VMM_WORDS	(VMM_NQ / 64)
#define VMM_NBASES	3

/* Where an arena's span may start: 0, an odd base, the top of the address space. */
extern const uint64_t vmm_bases[VMM_NBASES];

struct vmm_live {
	uint64_t addr;
	uint64_t quanta;
	bool x;				/* allocated with vmem_xalloc */
};

struct vmm_stats {
	uint64_t allocs, xallocs, enomem, frees, bad_frees, resizes, resize_enomem, nexts,
		 next_enomem;
};

struct vmm {
	struct mdt_src *src;
	vmem_t *vm;
	int policy;
	uint64_t base;			/* the span's start */
	int64_t rotor;			/* quantum of the last next-fit result, -1 none */
	uint64_t used[VMM_WORDS];	/* bit set = quantum allocated */
	struct vmm_live live[VMM_NQ];
	size_t nlive;
	struct vmm_stats st;
};

/* Start a run with choices from @src; no arena yet. */
void vmm_init(struct vmm *r, struct mdt_src *src);
/* Create the arena of one span of VMM_NQ quanta at @base for fit @policy (vm stays NULL
 * if an injected fault made vmem_create fail: the run must then skip this arena). */
void vmm_begin(struct vmm *r, int policy, const char *name, uint64_t base);
/* A random allocation (vmem_alloc or vmem_xalloc), checked against the model. */
void vmm_alloc(struct vmm *r);
/* Free a random live range (nlive > 0). */
void vmm_free(struct vmm *r);
/*
 * vmem_resize of a random live range (nlive > 0) to a random size: it must grow
 * exactly when the quanta after it are free in the model, and always shrink.
 */
void vmm_resize(struct vmm *r);
/*
 * vmem_alloc_next after a random live range (nlive > 0): it must succeed exactly when
 * the quanta after it are free in the model; then joined, or kept as a range of its own.
 */
void vmm_alloc_next(struct vmm *r);
/* A free of a range that is not exactly a live one: -EINVAL, nothing changed. */
void vmm_bad_free(struct vmm *r);
/* vmem_check() and vmem_size() against the model. */
void vmm_check(struct vmm *r);
/* Free everything, check that one segment is left, destroy the arena (if any). */
void vmm_end(struct vmm *r);

#endif /* VMEM_MODEL_H */
