/*
 * vmem_check.c: the invariant walker of an arena (vmem.c, section 4 lists the
 * invariants). One pass over the address list, one over the span list, the free lists,
 * the hash table, the reserve and the quantum caches, cross-checked against the
 * arena's counters. Every walk is bounded by the counters, so a corrupted list is
 * reported instead of looping. O(segments + hash buckets).
 */
#include "vmem_impl.h"

#include <errno.h>

/* Problems printed before the walker stops printing (it still counts them). */
#define VMEM_CHECK_MAX_REPORTS 16

/* The walker's state. */
struct vmem_walk {
	vmem_t *vw_vm;			/* the arena */
	int vw_bad;			/* problems found */
	size_t vw_total;		/* sum of spans seen */
	size_t vw_alloc;		/* sum of ALLOC segments seen */
	size_t vw_nalloc;		/* ALLOC segments seen */
	size_t vw_nfree;		/* FREE segments seen */
	size_t vw_nspans;		/* spans seen */
	size_t vw_nimported;		/* imported spans seen */
	bool vw_rotor_seen;		/* the rotor is on the address list */
};

#define VMEM_CHECK(w, cond, fmt, ...)                                                  \
	do {                                                                           \
		if (!(cond)) {                                                         \
			if ((w)->vw_bad++ < VMEM_CHECK_MAX_REPORTS)                    \
				vmem__report("vmem_check(arena '%s'): " fmt,           \
					     (w)->vw_vm->vm_name, __VA_ARGS__);        \
		}                                                                      \
	} while (0)

/* One segment of the span that @span heads; *remaining counts down the span. */
static void vmem_check_seg(struct vmem_walk *w, vmem_seg_t *vs, const vmem_seg_t *span,
			   uintptr_t *cursor, size_t *remaining)
{
	vmem_t *vm = w->vw_vm;
	unsigned long start = (unsigned long)vs->vs_start;

	VMEM_CHECK(w, span != NULL, "segment %#lx precedes every span", start);
	VMEM_CHECK(w, vs->vs_size != 0 && (vs->vs_size & (vm->vm_quantum - 1)) == 0 &&
		   (vs->vs_start & (vm->vm_quantum - 1)) == 0,
		   "segment [%#lx, +%#zx) is not quantum-aligned", start, vs->vs_size);
	VMEM_CHECK(w, vs->vs_start == *cursor, "segment %#lx should start at %#lx (gap or "
		   "overlap)", start, (unsigned long)*cursor);
	VMEM_CHECK(w, vs->vs_size <= *remaining, "segment [%#lx, +%#zx) overruns its span",
		   start, vs->vs_size);
	if (vs->vs_size <= *remaining) {
		*remaining -= vs->vs_size;
		*cursor = vs->vs_start + vs->vs_size;
	}
	if (vs->vs_type == VMEM_SEG_FREE) {
		VMEM_CHECK(w, vs->vs_aprev->vs_type != VMEM_SEG_FREE,
			   "free segments %#lx and %#lx are adjacent (not coalesced)",
			   (unsigned long)vs->vs_aprev->vs_start, start);
		w->vw_nfree++;
	} else {
		VMEM_CHECK(w, vmem__hash_find_locked(vm, vs->vs_start) == vs,
			   "allocated segment %#lx is not in the hash", start);
		w->vw_nalloc++;
		w->vw_alloc += vs->vs_size;
	}
}

/* A span tag; @prev_span is the span before it (NULL if first). */
static void vmem_check_span(struct vmem_walk *w, vmem_seg_t *span, const vmem_seg_t *prev_span,
			    const vmem_seg_t *listed)
{
	unsigned long start = (unsigned long)span->vs_start;

	VMEM_CHECK(w, span->vs_size != 0 && span->vs_start + (span->vs_size - 1) >=
		   span->vs_start, "span %#lx has a bad size %#zx", start, span->vs_size);
	VMEM_CHECK(w, prev_span == NULL ||
		   prev_span->vs_start + (prev_span->vs_size - 1) < span->vs_start,
		   "span %#lx overlaps or precedes the span before it", start);
	VMEM_CHECK(w, listed == span, "span %#lx is not next on the span list", start);
	w->vw_nspans++;
	w->vw_nimported += span->vs_import;
	w->vw_total += span->vs_size;
}

/* The address list: spans in order, each tiled by its segments. */
static void vmem_check_address_list(struct vmem_walk *w)
{
	vmem_t *vm = w->vw_vm;
	size_t limit = vm->vm_nfree + vm->vm_nalloc + vm->vm_nspans, steps = 0;
	vmem_seg_t *span = NULL, *listed = vm->vm_span0.vs_knext;
	uintptr_t cursor = 0;
	size_t remaining = 0;

	w->vw_rotor_seen = vm->vm_rotor == &vm->vm_seg0;
	for (vmem_seg_t *vs = vm->vm_seg0.vs_anext; vs != &vm->vm_seg0; vs = vs->vs_anext) {
		if (steps++ > limit) {
			VMEM_CHECK(w, false, "address list longer than the %zu tags counted", limit);
			return;
		}
		VMEM_CHECK(w, vs->vs_anext->vs_aprev == vs && vs->vs_aprev->vs_anext == vs,
			   "address list links broken at %#lx", (unsigned long)vs->vs_start);
		w->vw_rotor_seen |= vm->vm_rotor == vs;
		if (vs->vs_type == VMEM_SEG_SPAN) {
			VMEM_CHECK(w, span == NULL || remaining == 0,
				   "span %#lx is not tiled: %#zx left untiled",
				   (unsigned long)span->vs_start, remaining);
			vmem_check_span(w, vs, span, listed);
			listed = listed->vs_knext;
			span = vs;
			cursor = vs->vs_start;
			remaining = vs->vs_size;
		} else if (vs->vs_type == VMEM_SEG_FREE || vs->vs_type == VMEM_SEG_ALLOC) {
			vmem_check_seg(w, vs, span, &cursor, &remaining);
		} else {
			VMEM_CHECK(w, false, "tag %#lx of type %d on the address list",
				   (unsigned long)vs->vs_start, vs->vs_type);
		}
	}
	VMEM_CHECK(w, span == NULL || remaining == 0, "span %#lx is not tiled: %#zx left",
		   (unsigned long)(span ? span->vs_start : 0), remaining);
	VMEM_CHECK(w, listed == &vm->vm_span0, "span list has spans not on the address list%s",
		   "");
	VMEM_CHECK(w, w->vw_rotor_seen, "rotor %p is not on the address list", (void *)vm->vm_rotor);
}

/* The free lists and their bitmap. */
static void vmem_check_free_lists(struct vmem_walk *w)
{
	vmem_t *vm = w->vw_vm;
	size_t seen = 0;

	for (unsigned i = 0; i < VMEM_FREELISTS; i++) {
		vmem_seg_t *prev = NULL;

		VMEM_CHECK(w, ((vm->vm_freemap >> i) & 1) == (vm->vm_freelist[i] != NULL),
			   "free bitmap bit %u disagrees with list %u", i, i);
		for (vmem_seg_t *vs = vm->vm_freelist[i]; vs != NULL; vs = vs->vs_knext) {
			if (seen++ > vm->vm_nfree) {
				VMEM_CHECK(w, false, "free lists longer than the %zu counted",
					   vm->vm_nfree);
				return;
			}
			VMEM_CHECK(w, vs->vs_type == VMEM_SEG_FREE && vs->vs_size != 0 &&
				   vmem__freelist_index(vs->vs_size) == i,
				   "segment %#lx (type %d, size %#zx) on free list %u",
				   (unsigned long)vs->vs_start, vs->vs_type, vs->vs_size, i);
			VMEM_CHECK(w, vs->vs_kprev == prev && vs->vs_aprev->vs_anext == vs,
				   "free segment %#lx has broken links", (unsigned long)vs->vs_start);
			prev = vs;
		}
	}
	VMEM_CHECK(w, seen == w->vw_nfree, "free lists hold %zu segments, the address list %zu",
		   seen, w->vw_nfree);
}

/* The hash: every entry an ALLOC segment in its own bucket. */
static void vmem_check_hash(struct vmem_walk *w)
{
	vmem_t *vm = w->vw_vm;
	size_t seen = 0;

	for (size_t b = 0; b <= vm->vm_hash_mask; b++) {
		for (vmem_seg_t *vs = vm->vm_hash[b]; vs != NULL; vs = vs->vs_knext) {
			if (seen++ > vm->vm_nalloc) {
				VMEM_CHECK(w, false, "hash longer than the %zu counted",
					   vm->vm_nalloc);
				return;
			}
			VMEM_CHECK(w, vs->vs_type == VMEM_SEG_ALLOC &&
				   vmem__hash_index(vm, vs->vs_start) == b,
				   "hash bucket %zu holds %#lx (type %d)", b,
				   (unsigned long)vs->vs_start, vs->vs_type);
		}
	}
	VMEM_CHECK(w, seen == w->vw_nalloc, "hash holds %zu segments, the address list %zu",
		   seen, w->vw_nalloc);
}

/* The tag reserve. */
static void vmem_check_reserve(struct vmem_walk *w)
{
	vmem_t *vm = w->vw_vm;
	unsigned n = 0;

	for (vmem_seg_t *vs = vm->vm_segfree; vs != NULL; vs = vs->vs_knext) {
		if (n++ > vm->vm_nsegfree)
			break;
		VMEM_CHECK(w, vs->vs_type == VMEM_SEG_POOL, "reserve tag of type %d", vs->vs_type);
	}
	VMEM_CHECK(w, n == vm->vm_nsegfree, "reserve holds %u tags, counted %u", n,
		   vm->vm_nsegfree);
}

/* The counters against what the walks saw. */
static void vmem_check_counters(struct vmem_walk *w, size_t cached)
{
	vmem_t *vm = w->vw_vm;

	VMEM_CHECK(w, w->vw_total == vm->vm_total, "spans sum to %#zx, counted %#zx",
		   w->vw_total, vm->vm_total);
	VMEM_CHECK(w, w->vw_alloc == vm->vm_alloc, "allocated segments sum to %#zx, counted %#zx",
		   w->vw_alloc, vm->vm_alloc);
	VMEM_CHECK(w, w->vw_nalloc == vm->vm_nalloc && w->vw_nfree == vm->vm_nfree &&
		   w->vw_nspans == vm->vm_nspans && w->vw_nimported == vm->vm_nimported,
		   "counts (alloc %zu, free %zu, spans %zu, imported %zu) disagree with the "
		   "walk (%zu, %zu, %zu, %zu)", vm->vm_nalloc, vm->vm_nfree, vm->vm_nspans,
		   vm->vm_nimported, w->vw_nalloc, w->vw_nfree, w->vw_nspans, w->vw_nimported);
	VMEM_CHECK(w, cached == atomic_load(&vm->vm_qcache_bytes) && cached <= vm->vm_alloc,
		   "quantum caches hold %#zx bytes, counted %#zx", cached,
		   atomic_load(&vm->vm_qcache_bytes));
	VMEM_CHECK(w, vm->vm_alloc <= vm->vm_total,
		   "allocated %#zx exceeds the total %#zx", vm->vm_alloc, vm->vm_total);
}

/**
 * vmem__check_locked() - the walker.
 *
 * Context: every quantum-cache lock and vm_lock held.
 * Return: 0, or -EINVAL after printing what is broken.
 */
int vmem__check_locked(vmem_t *vm)
{
	struct vmem_walk w = { .vw_vm = vm };
	size_t cached = 0;

	vmem_check_address_list(&w);
	vmem_check_free_lists(&w);
	vmem_check_hash(&w);
	vmem_check_reserve(&w);
	w.vw_bad += vmem__qcache_check_locked(vm, &cached);
	vmem_check_counters(&w, cached);
	return w.vw_bad == 0 ? 0 : -EINVAL;
}

int vmem_check(vmem_t *vm)
{
	int rc;

	if (vm == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < vm->vm_nqcache; i++)
		pthread_mutex_lock(&vm->vm_qcache[i].qc_lock);
	pthread_mutex_lock(&vm->vm_lock);
	rc = vmem__check_locked(vm);
	pthread_mutex_unlock(&vm->vm_lock);
	for (unsigned i = vm->vm_nqcache; i-- > 0;)
		pthread_mutex_unlock(&vm->vm_qcache[i].qc_lock);
	return rc;
}
