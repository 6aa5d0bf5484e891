/*
 * vmem.c: the core of the vmem range allocator.
 *
 * Big theory statement
 * ====================
 *
 * 1. Overview
 *
 * This is Bonwick and Adams' vmem ("Magazines and Vmem: Extending the Slab Allocator to
 * Many CPUs and Arbitrary Resources", USENIX 2001), as in illumos and NetBSD, for user
 * space. In memdesc it replaces the buddy allocator: the page allocator is an arena of
 * page frame numbers importing from an arena of OS chunks, and any number of pages can
 * be allocated, not only powers of two.
 *
 * 2. Arenas
 *
 * An arena is nothing more than a set of integers. The integers are usually addresses
 * or frame numbers, but vmem does not care; it never touches the memory they might
 * name. vmem_create() makes an arena with a quantum (the unit of allocation, a power of
 * two): every span, segment and size is a multiple of it. Address 0 and the top of the
 * address space are ordinary integers: a span may end at UINTPTR_MAX, so no code here
 * computes "start + size" of a range that may end there; ranges are compared through
 * their last integer, start + (size - 1), which cannot overflow.
 *
 * 3. Spans
 *
 * The integers of an arena come in spans: ranges added with vmem_add() or imported from
 * the source arena (section 10). Spans never overlap. Each span has a span tag, on the
 * span list (address order) and on the address list, just before its segments.
 *
 * 4. Segments and boundary tags
 *
 * Each span is tiled by segments, each FREE or ALLOC, described by a boundary tag
 * (vmem_seg_t) on the arena's address list: a circular doubly linked list through the
 * sentinel vm_seg0, holding in address order each span tag followed by its segments.
 * Invariants (vmem_check() verifies them all):
 *  - the segments after a span tag tile its span exactly, in order, without overlap;
 *  - no two FREE segments are adjacent: a free coalesces with both neighbours, but
 *    never across a span tag, so imported spans stay separable;
 *  - every FREE segment is on exactly one free list, every ALLOC segment in the hash.
 * Allocating from the inside of a free segment splits it into up to three segments; the
 * old tag describes the allocated part, new tags the free remainders (section 9).
 *
 * 5. Free lists
 *
 * Free segments are kept on VMEM_FREELISTS lists by size: list i holds segments of size
 * in [2^i, 2^(i+1)). A bitmap (vm_freemap) has bit i set iff list i is non-empty, so the
 * first non-empty list at or above any index is one count-trailing-zeros away. New free
 * segments go to the head of their list (LIFO: the warmest first).
 *
 * 6. Fit policies
 *
 * - Instant-fit (the default): every segment on list ceil(log2(size)) and above is big
 *   enough, so the head of the first non-empty list among them is taken: O(1) whatever
 *   the number of free segments. Only when all those lists are empty (or none of their
 *   segments meets vmem_xalloc()'s constraints) is list floor(log2(size)) searched first
 *   fit, since it may hold segments of size in [size, 2^ceil). Illumos searches that
 *   list only when the higher lists are all empty; we also search it when their
 *   segments fail the constraints, which gives a simple exact rule:
 *       instant-fit fails only when no free segment of the arena can hold the request,
 *       and when it succeeds, the segment comes from the lowest list at or above
 *       ceil(log2(size)) holding a fitting segment, else from list floor(log2(size)).
 * - Best-fit: from list floor(log2(size)) up, the smallest fitting segment of the first
 *   list that has one; segments of higher lists are all larger, so it is the smallest
 *   fitting free segment of the arena.
 * - Next-fit: the first fitting segment in address order after the rotor, the segment
 *   of the previous next-fit allocation, wrapping around the arena once. The rotor is a
 *   pointer to a tag; when that tag goes away (coalescing) it moves to its predecessor.
 * In every case the range taken is the lowest fitting one inside the chosen segment.
 * All three fail only when no fitting range exists, before importing.
 *
 * 7. Constrained allocation
 *
 * vmem_xalloc() asks for an address = phase (mod align), inside [minaddr, maxaddr), not
 * crossing a multiple of nocross. vmem_fit() works out the lowest such address inside a
 * free segment in O(1) with overflow-checked arithmetic: clamp the segment to
 * [minaddr, maxaddr - 1], round up to the phase, check the room, and if the range would
 * cross a nocross boundary, move to the next boundary plus the phase and check again
 * (one move suffices because phase + size <= nocross is required). Contradictory
 * constraints are -EINVAL; constraints no free segment meets are -ENOMEM.
 *
 * 8. Allocated segments
 *
 * vmem_free() finds the segment by its start in a hash table of ALLOC segments
 * (multiplicative hash of start / quantum, chains through vs_knext). It starts as a
 * 16-bucket table inside the arena and is replaced by a table twice the number of
 * segments (at least one page) mapped from the OS when the load passes 2; the new table
 * is mapped with the arena lock dropped, and if the OS refuses, growth is skipped and
 * the allocation still succeeds (chains are longer, nothing is wrong). Tables never
 * shrink while the arena lives (an arena's peak number of segments is its steady state
 * in practice; vmem_destroy unmaps the table). A free whose start
 * is not an allocated segment's, or whose size differs from it, is reported on stderr
 * (function, arena, range, and the size allocated if there is one) and changes nothing.
 *
 * vmem_resize() changes an ALLOC segment's size in place and keeps its start, so its
 * hash entry stays where it is. Growing takes the front of the FREE segment that
 * follows (the next tag being FREE means the same span: span tags are never free) and
 * needs no tag; shrinking hands the tail to the FREE segment that follows, or to a new
 * FREE segment (one tag, reserved before anything changes). Neither can empty a span.
 * A range held in a quantum cache is free to its caller: resizing it is reported like
 * a double free. Bad ranges are reported as for vmem_free(). vmem_join() makes two
 * adjacent ALLOC segments one (the page allocator joins freed ranges it keeps
 * allocated, memdesc/pages.c): the second tag goes back to the pool, so it can run on
 * paths that must not allocate. vmem_split() is its inverse (one tag): the page
 * allocator carves a kept range without freeing it, so that the range's span, wholly
 * covered by it, is not released to the OS and imported again in between.
 * vmem_alloc_next() allocates what a grow would take as a range of its own, and
 * vmem_joinable() says whether a join would succeed (the join's own test): a grow can
 * then take its pages, do whatever else may fail, and join last, with a plain free as
 * its undo (pages_resize in memdesc/pages.c: undoing a grow by a shrink needs a tag,
 * the one thing an out-of-memory undo cannot count on).
 *
 * 9. The boundary-tag reserve
 *
 * Tags (56 bytes each) come from a global pool (vmem_mem.c: a static boot array, then
 * chunks mapped from the OS; vmem_tag_lock protects it). Each arena keeps a reserve of tags under its own lock, and an operation
 * refills it before it looks at the arena: with the arena lock dropped it takes a batch
 * (VMEM_SEGS_REFILL) from the pool, then relocks and starts over. So the pool's lock and
 * the OS are never entered with an arena lock held, and when no tag can be had the
 * operation fails with -ENOMEM before changing anything. The counts (vmem_impl.h):
 *
 *     vmem_xalloc(vm)                      tags taken from vm's reserve
 *       nothing fits
 *       -> import (vm's lock dropped; the source does its own accounting)
 *       -> add the imported span:          VMEM_SEGS_PER_SPAN   = 2 (span tag, free seg)
 *       -> carve the range from its middle: VMEM_SEGS_PER_ALLOC = 2 (lead and trail free)
 *                                           VMEM_SEGS_PER_IMPORT = 4 in all
 *
 * A search needs VMEM_SEGS_PER_ALLOC in the reserve; the import path takes its 4 tags
 * from the pool before it imports, and puts them in the reserve in the same lock hold
 * that adds the span and carves it, so nobody can take them in between. vmem_add()
 * needs VMEM_SEGS_PER_SPAN. Freeing needs none: coalescing only gives tags back, and a
 * reserve grown past VMEM_SEGS_RESERVE_MAX returns the surplus to the pool after the
 * arena lock is dropped. Hence "freeing never allocates" (DESIGN.md).
 *
 * 10. Import and release
 *
 * An arena with a source imports a span when nothing fits: the import callback
 * (normally vmem_alloc on the source) is called with the arena lock dropped, for the
 * size rounded up to the source's quantum, plus align - quantum when the alignment is
 * coarser than the quantum (any such window holds an address of the right phase).
 * Spans are imported only for requests without nocross/minaddr/maxaddr, whose fit in a
 * fresh span is not guaranteed. When a free makes an imported span wholly free, the
 * span leaves the arena in the same lock hold and is given to the release callback
 * after the lock is dropped. Arenas stack to any depth: each level does this with its
 * own lock only, so locks are always taken child before parent.
 *
 * 11. Quantum caches
 *
 * Sizes up to qcache_max (at most VMEM_QCACHE_MAX_QUANTA quanta) are served by
 * vmem_alloc() from one cache per multiple of the quantum (vmem_qcache.c): a small stack
 * of ranges that stay ALLOC segments in the arena, so allocating one does not touch the
 * segment lists. Until the slab exists these are plain locked stacks; the slab's
 * magazines can replace them behind the same functions. vmem_size() counts cached
 * ranges as free (they belong to no caller); vmem_check() verifies each is an ALLOC
 * segment of the cache's size, cached once. When an allocation finds no fit, the caches
 * are drained into the arena before importing or failing.
 *
 * 12. Locking
 *
 *  - vm_lock, one mutex per arena: segments, lists, hash, reserve, counters.
 *  - qc_lock, one per quantum cache, taken before vm_lock (vmem_check() takes all the
 *    caches' locks in order, then vm_lock).
 *  - vmem_tag_lock and vmem_arena_lock (vmem_mem.c): leaves, never held while taking
 *    another lock, never taken with vm_lock held.
 *  - Callbacks (import, release) are called without vm_lock (release may run with a
 *    quantum cache's lock of this arena held); they may use the source arena and the
 *    OS, and must not call back into this arena.
 *  - No lock is held between calls. A fork() while another thread is inside vmem
 *    leaves that arena's lock held in the child: the layer above must prevent it
 *    (pthread_atfork handlers that take the locks it needs), vmem registers none.
 *
 * 13. Failure modes
 *
 *  - Bad arguments: -EINVAL (NULL and errno EINVAL from vmem_create()), nothing changed.
 *  - Exhaustion, a refused import, no tags: -ENOMEM, the arena unchanged.
 *  - Bad free (not allocated, wrong size, already in a quantum cache): reported on
 *    stderr, -EINVAL from vmem_free_checked(), nothing changed.
 *  - Hash growth refused by the OS: skipped silently.
 *  - Broken invariants: vmem_check() prints them; MEMDESC_DEBUG builds run it after
 *    every mutating operation (amortised on arenas of more than VMEM_DEBUG_AMORTIZE
 *    tags, see vmem__debug_check()) and abort on the first failure.
 *
 * 14. Complexity
 *
 * Instant-fit vmem_alloc, vmem_resize and every free: O(1) (expected, through the hash). Best-fit:
 * the length of one free list. Next-fit and constrained searches: O(free segments) at
 * worst. vmem_add: O(spans). vmem_check: O(segments + buckets).
 */
#include "vmem_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Internal consistency: always on, cheap. A failure is a vmem bug, not a caller's. */
#define VMEM_ASSERT(cond) ((cond) ? (void)0 : vmem_assert_fail(#cond, __func__, __LINE__))

/* What vmem_xalloc() is asked for, normalised (align defaulted, size rounded). */
struct vmem_constraint {
	size_t vc_size;			/* rounded up to the quantum */
	size_t vc_align;		/* power of two, >= quantum */
	size_t vc_phase;		/* < vc_align */
	size_t vc_nocross;		/* 0 or a power of two >= vc_phase + vc_size */
	uintptr_t vc_minaddr;		/* lowest start */
	uintptr_t vc_maxaddr;		/* exclusive bound of the end, 0 = none */
};

static void vmem_assert_fail(const char *cond, const char *func, int line)
{
	vmem__report("vmem: internal error: %s failed in %s, line %d", cond, func, line);
	abort();
}

/**
 * vmem__report() - print one line on stderr without allocating.
 *
 * Context: any; async-signal-safe apart from vsnprintf's formatting.
 */
void vmem__report(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, buf, (size_t)n);

		if (w <= 0)
			return;
		n -= (int)w;
		memmove(buf, buf + w, (size_t)n);
	}
}

static bool vmem_ispow2(size_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* Rounds @size up to the quantum; false on 0 or overflow. */
static bool vmem_round(const vmem_t *vm, size_t size, size_t *roundedp)
{
	size_t q = vm->vm_quantum;

	if (size == 0 || size > SIZE_MAX - (q - 1))
		return false;
	*roundedp = (size + q - 1) & ~(q - 1);
	return true;
}

/* The free list of a segment of @size (> 0): floor(log2(size)). */
unsigned vmem__freelist_index(size_t size)
{
	return 63u - (unsigned)__builtin_clzll((unsigned long long)size);
}

/* The bucket of @addr in the current table. */
size_t vmem__hash_index(const vmem_t *vm, uintptr_t addr)
{
	uint64_t key = (uint64_t)(addr >> vm->vm_qshift);

	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> vm->vm_hash_shift);
}

/* ---- tags: the reserve ---------------------------------------------------------- */

static vmem_seg_t *vmem_seg_get(vmem_t *vm)
{
	vmem_seg_t *vs = vm->vm_segfree;

	VMEM_ASSERT(vs != NULL && vm->vm_nsegfree > 0);
	vm->vm_segfree = vs->vs_knext;
	vm->vm_nsegfree--;
	memset(vs, 0, sizeof(*vs));
	return vs;
}

static void vmem_seg_put(vmem_t *vm, vmem_seg_t *vs)
{
	vs->vs_type = VMEM_SEG_POOL;
	vs->vs_knext = vm->vm_segfree;
	vm->vm_segfree = vs;
	vm->vm_nsegfree++;
}

/* Adds @n pool tags chained by vs_knext to the reserve. vm_lock held. */
static void vmem_reserve_splice(vmem_t *vm, vmem_seg_t *list, unsigned n)
{
	while (n-- > 0) {
		vmem_seg_t *next = list->vs_knext;

		vmem_seg_put(vm, list);
		list = next;
	}
}

/*
 * Makes the reserve hold at least @need tags. Called with vm_lock held; drops it while
 * taking tags from the pool, so the caller must not rely on anything it saw before.
 * Returns 0 with the lock held, or -ENOMEM with the lock held and the arena unchanged.
 */
static int vmem_reserve_locked(vmem_t *vm, unsigned need)
{
	while (vm->vm_nsegfree < need) {
		vmem_seg_t *list;
		int rc;

		pthread_mutex_unlock(&vm->vm_lock);
		rc = vmem__tags_get(VMEM_SEGS_REFILL, &list);
		pthread_mutex_lock(&vm->vm_lock);
		if (rc != 0)
			return rc;
		vmem_reserve_splice(vm, list, VMEM_SEGS_REFILL);
	}
	return 0;
}

/* Detaches the reserve's surplus over VMEM_SEGS_RESERVE_MAX; returns how many. */
static unsigned vmem_reserve_trim_locked(vmem_t *vm, vmem_seg_t **listp)
{
	unsigned n;
	vmem_seg_t *list = NULL;

	if (vm->vm_nsegfree <= VMEM_SEGS_RESERVE_MAX)
		return 0;
	n = vm->vm_nsegfree - VMEM_SEGS_REFILL;
	for (unsigned i = 0; i < n; i++) {
		vmem_seg_t *vs = vm->vm_segfree;

		vm->vm_segfree = vs->vs_knext;
		vs->vs_knext = list;
		list = vs;
	}
	vm->vm_nsegfree -= n;
	*listp = list;
	return n;
}

/* ---- the address list and the free lists ----------------------------------------- */

static void vmem_seg_link_after(vmem_seg_t *prev, vmem_seg_t *vs)
{
	vs->vs_aprev = prev;
	vs->vs_anext = prev->vs_anext;
	prev->vs_anext->vs_aprev = vs;
	prev->vs_anext = vs;
}

/* Takes @vs off the address list; the next-fit rotor moves back if it was there. */
static void vmem_seg_unlink(vmem_t *vm, vmem_seg_t *vs)
{
	if (vm->vm_rotor == vs)
		vm->vm_rotor = vs->vs_aprev;
	vs->vs_aprev->vs_anext = vs->vs_anext;
	vs->vs_anext->vs_aprev = vs->vs_aprev;
}

static void vmem_freelist_insert(vmem_t *vm, vmem_seg_t *vs)
{
	unsigned i = vmem__freelist_index(vs->vs_size);
	vmem_seg_t *head = vm->vm_freelist[i];

	vs->vs_type = VMEM_SEG_FREE;
	vs->vs_kprev = NULL;
	vs->vs_knext = head;
	if (head != NULL)
		head->vs_kprev = vs;
	vm->vm_freelist[i] = vs;
	vm->vm_freemap |= 1ull << i;
	vm->vm_nfree++;
}

/* Takes @vs off its free list; call before changing its size. */
static void vmem_freelist_remove(vmem_t *vm, vmem_seg_t *vs)
{
	unsigned i = vmem__freelist_index(vs->vs_size);

	VMEM_ASSERT(vs->vs_type == VMEM_SEG_FREE);
	if (vs->vs_kprev != NULL)
		vs->vs_kprev->vs_knext = vs->vs_knext;
	else
		vm->vm_freelist[i] = vs->vs_knext;
	if (vs->vs_knext != NULL)
		vs->vs_knext->vs_kprev = vs->vs_kprev;
	if (vm->vm_freelist[i] == NULL)
		vm->vm_freemap &= ~(1ull << i);
	vm->vm_nfree--;
}

/* ---- the hash of allocated segments ---------------------------------------------- */

static void vmem_hash_insert(vmem_t *vm, vmem_seg_t *vs)
{
	vmem_seg_t **bucket = &vm->vm_hash[vmem__hash_index(vm, vs->vs_start)];

	vs->vs_type = VMEM_SEG_ALLOC;
	vs->vs_knext = *bucket;
	*bucket = vs;
	vm->vm_nalloc++;
	vm->vm_alloc += vs->vs_size;
}

/* The ALLOC segment starting at @addr, or NULL. vm_lock held. */
vmem_seg_t *vmem__hash_find_locked(vmem_t *vm, uintptr_t addr)
{
	vmem_seg_t *vs = vm->vm_hash[vmem__hash_index(vm, addr)];

	while (vs != NULL && vs->vs_start != addr)
		vs = vs->vs_knext;
	return vs;
}

static void vmem_hash_remove(vmem_t *vm, vmem_seg_t *vs)
{
	vmem_seg_t **pp = &vm->vm_hash[vmem__hash_index(vm, vs->vs_start)];

	while (*pp != vs) {
		VMEM_ASSERT(*pp != NULL);
		pp = &(*pp)->vs_knext;
	}
	*pp = vs->vs_knext;
	vm->vm_nalloc--;
	vm->vm_alloc -= vs->vs_size;
}

static void vmem_hash_set_table(vmem_t *vm, vmem_seg_t **table, size_t nbuckets)
{
	vm->vm_hash = table;
	vm->vm_hash_mask = nbuckets - 1;
	vm->vm_hash_shift = 64u - vmem__freelist_index(nbuckets);
}

/* Moves every ALLOC segment into @table. vm_lock held. */
static void vmem_hash_rehash_locked(vmem_t *vm, vmem_seg_t **table, size_t nbuckets)
{
	vmem_seg_t **old = vm->vm_hash;
	size_t old_n = vm->vm_hash_mask + 1;

	vmem_hash_set_table(vm, table, nbuckets);
	for (size_t b = 0; b < old_n; b++) {
		vmem_seg_t *vs = old[b];

		while (vs != NULL) {
			vmem_seg_t *next = vs->vs_knext;
			vmem_seg_t **bucket = &table[vmem__hash_index(vm, vs->vs_start)];

			vs->vs_knext = *bucket;
			*bucket = vs;
			vs = next;
		}
	}
}

/*
 * Grows the hash table to about one bucket per allocated segment. Called without
 * vm_lock; maps the table unlocked. If the OS refuses, nothing happens.
 */
static void vmem_hash_grow(vmem_t *vm)
{
	size_t want, n = VMEM_HASH_MIN_MAPPED, old_n;
	vmem_seg_t **table, **old;

	pthread_mutex_lock(&vm->vm_lock);
	want = vm->vm_nalloc;
	pthread_mutex_unlock(&vm->vm_lock);
	while (n < want && n <= SIZE_MAX / 4)
		n <<= 1;
	table = vmem__hash_table_alloc(n);
	if (table == NULL)
		return;
	pthread_mutex_lock(&vm->vm_lock);
	old = vm->vm_hash;
	old_n = vm->vm_hash_mask + 1;
	if (old_n >= n) {
		pthread_mutex_unlock(&vm->vm_lock);
		vmem__hash_table_free(table, n);
		return;
	}
	vmem_hash_rehash_locked(vm, table, n);
	pthread_mutex_unlock(&vm->vm_lock);
	if (old != vm->vm_hash0)
		vmem__hash_table_free(old, old_n);
}

/*
 * Drop vm_lock after an allocation inserted a segment into the hash, and grow the
 * table, unlocked, if that made it due (about one bucket per allocated segment).
 */
static void vmem_alloc_unlock(vmem_t *vm)
{
	bool grow = vm->vm_nalloc > 2 * (vm->vm_hash_mask + 1);

	pthread_mutex_unlock(&vm->vm_lock);
	if (grow)
		vmem_hash_grow(vm);
}

/* The ALLOC segment [@addr, +@size) (size rounded), or NULL, unreported. vm_lock held. */
static vmem_seg_t *vmem_alloc_seg_locked(vmem_t *vm, uintptr_t addr, size_t size)
{
	vmem_seg_t *vs = vmem__hash_find_locked(vm, addr);

	return vs != NULL && vs->vs_size == size ? vs : NULL;
}

/* ---- spans ------------------------------------------------------------------------ */

/*
 * The span after which [base, base + size) goes on the span list (the sentinel if
 * first), or NULL if it overlaps a span or the arena's total would overflow.
 */
static vmem_seg_t *vmem_span_pred_locked(vmem_t *vm, uintptr_t base, size_t size)
{
	uintptr_t last = base + (size - 1);
	vmem_seg_t *pred = &vm->vm_span0;

	if (vm->vm_total > SIZE_MAX - size)
		return NULL;
	for (vmem_seg_t *sp = vm->vm_span0.vs_knext; sp != &vm->vm_span0; sp = sp->vs_knext) {
		if (sp->vs_start + (sp->vs_size - 1) < base) {
			pred = sp;
			continue;
		}
		if (sp->vs_start > last)
			break;
		return NULL;
	}
	return pred;
}

/*
 * Adds the span [base, base + size) after @pred on the span list, with one free
 * segment covering it. Takes VMEM_SEGS_PER_SPAN tags from the reserve. vm_lock held.
 */
static vmem_seg_t *vmem_span_create_locked(vmem_t *vm, uintptr_t base, size_t size,
					   bool import, vmem_seg_t *pred)
{
	vmem_seg_t *span = vmem_seg_get(vm);
	vmem_seg_t *vs = vmem_seg_get(vm);
	vmem_seg_t *next;

	span->vs_start = base;
	span->vs_size = size;
	span->vs_type = VMEM_SEG_SPAN;
	span->vs_import = import;
	span->vs_kprev = pred;
	span->vs_knext = pred->vs_knext;
	pred->vs_knext->vs_kprev = span;
	pred->vs_knext = span;

	/* On the address list, just before the next span's tag (or at the end). */
	next = span->vs_knext == &vm->vm_span0 ? &vm->vm_seg0 : span->vs_knext;
	vmem_seg_link_after(next->vs_aprev, span);
	vs->vs_start = base;
	vs->vs_size = size;
	vmem_seg_link_after(span, vs);
	vmem_freelist_insert(vm, vs);

	vm->vm_total += size;
	vm->vm_nspans++;
	vm->vm_nimported += import;
	return vs;
}

/* Removes @span, whose one segment @vs (not on a free list) covers it. vm_lock held. */
static void vmem_span_destroy_locked(vmem_t *vm, vmem_seg_t *span, vmem_seg_t *vs)
{
	VMEM_ASSERT(span->vs_type == VMEM_SEG_SPAN && vs->vs_aprev == span &&
		    vs->vs_size == span->vs_size);
	vmem_seg_unlink(vm, vs);
	vmem_seg_unlink(vm, span);
	span->vs_kprev->vs_knext = span->vs_knext;
	span->vs_knext->vs_kprev = span->vs_kprev;
	vm->vm_total -= span->vs_size;
	vm->vm_nspans--;
	vm->vm_nimported -= span->vs_import;
	vmem_seg_put(vm, vs);
	vmem_seg_put(vm, span);
}

/* ---- carving and coalescing ------------------------------------------------------- */

/*
 * Allocates [addr, addr + size) from the free segment @vs that contains it: the tag of
 * @vs becomes the ALLOC segment, new tags (at most VMEM_SEGS_PER_ALLOC) the free
 * remainders. vm_lock held.
 */
static vmem_seg_t *vmem_seg_alloc_locked(vmem_t *vm, vmem_seg_t *vs, uintptr_t addr,
					 size_t size)
{
	uintptr_t vs_last = vs->vs_start + (vs->vs_size - 1);
	uintptr_t last = addr + (size - 1);

	VMEM_ASSERT(vm->vm_nsegfree >= VMEM_SEGS_PER_ALLOC);
	VMEM_ASSERT(addr >= vs->vs_start && last <= vs_last && last >= addr);
	vmem_freelist_remove(vm, vs);
	if (addr > vs->vs_start) {
		vmem_seg_t *lead = vmem_seg_get(vm);

		lead->vs_start = vs->vs_start;
		lead->vs_size = addr - vs->vs_start;
		vmem_seg_link_after(vs->vs_aprev, lead);
		vmem_freelist_insert(vm, lead);
	}
	if (last < vs_last) {
		vmem_seg_t *trail = vmem_seg_get(vm);

		trail->vs_start = last + 1;
		trail->vs_size = vs_last - last;
		vmem_seg_link_after(vs, trail);
		vmem_freelist_insert(vm, trail);
	}
	vs->vs_start = addr;
	vs->vs_size = size;
	vmem_hash_insert(vm, vs);
	return vs;
}

/**
 * vmem__seg_free_locked() - free the ALLOC segment @vs: out of the hash, coalesced with
 * its free neighbours inside its span; an imported span left wholly free leaves the
 * arena and is added to @rel for release once the lock is dropped.
 *
 * Context: vm_lock held. Takes no tag; gives tags back to the reserve.
 */
void vmem__seg_free_locked(vmem_t *vm, vmem_seg_t *vs, struct vmem_release_list *rel)
{
	vmem_seg_t *next, *prev, *span;

	VMEM_ASSERT(vs->vs_type == VMEM_SEG_ALLOC);
	vmem_hash_remove(vm, vs);
	next = vs->vs_anext;
	if (next->vs_type == VMEM_SEG_FREE) {
		vmem_freelist_remove(vm, next);
		vs->vs_size += next->vs_size;
		vmem_seg_unlink(vm, next);
		vmem_seg_put(vm, next);
	}
	prev = vs->vs_aprev;
	if (prev->vs_type == VMEM_SEG_FREE) {
		vmem_freelist_remove(vm, prev);
		prev->vs_size += vs->vs_size;
		vmem_seg_unlink(vm, vs);
		vmem_seg_put(vm, vs);
		vs = prev;
	}
	span = vs->vs_aprev;
	if (span->vs_type == VMEM_SEG_SPAN && span->vs_import &&
	    span->vs_size == vs->vs_size) {
		VMEM_ASSERT(rel->vr_count < VMEM_QCACHE_DEPTH + 1);
		rel->vr_addr[rel->vr_count] = span->vs_start;
		rel->vr_size[rel->vr_count] = span->vs_size;
		rel->vr_count++;
		vmem_span_destroy_locked(vm, span, vs);
		return;
	}
	vmem_freelist_insert(vm, vs);
}

/**
 * vmem__alloc_lookup_locked() - the ALLOC segment [@addr, @addr + @size) of a free, or
 * NULL after reporting a bad free (not allocated, or allocated with another size).
 *
 * Context: vm_lock held.
 */
vmem_seg_t *vmem__alloc_lookup_locked(vmem_t *vm, uintptr_t addr, size_t size,
				      const char *who)
{
	vmem_seg_t *vs = vmem__hash_find_locked(vm, addr);

	if (vs == NULL) {
		vmem__report("%s(arena '%s'): bad free of [%#lx, +%#zx): not an allocated range",
			     who, vm->vm_name, (unsigned long)addr, size);
		return NULL;
	}
	if (vs->vs_size != size) {
		vmem__report("%s(arena '%s'): bad free of [%#lx, +%#zx): allocated with size %#zx",
			     who, vm->vm_name, (unsigned long)addr, size, vs->vs_size);
		return NULL;
	}
	return vs;
}

/**
 * vmem__free_unlock() - end of a free: trim the reserve, drop vm_lock, give the
 * surplus tags back to the pool and the spans in @rel to the source.
 *
 * Context: vm_lock held on entry, not on return.
 */
void vmem__free_unlock(vmem_t *vm, const struct vmem_release_list *rel)
{
	vmem_seg_t *surplus = NULL;
	unsigned n = vmem_reserve_trim_locked(vm, &surplus);

	pthread_mutex_unlock(&vm->vm_lock);
	vmem__tags_put(surplus, n);
	for (unsigned i = 0; i < rel->vr_count; i++)
		vm->vm_release(vm->vm_source, rel->vr_addr[i], rel->vr_size[i]);
}

/* ---- searching -------------------------------------------------------------------- */

/*
 * The lowest start inside the free segment @vs meeting @c, in *addrp. O(1); no
 * arithmetic here can wrap past UINTPTR_MAX.
 */
static bool vmem_fit(const vmem_seg_t *vs, const struct vmem_constraint *c, uintptr_t *addrp)
{
	uintptr_t lo = vs->vs_start, hi = vs->vs_start + (vs->vs_size - 1), addr;
	size_t room = c->vc_size - 1;

	if (vs->vs_size < c->vc_size)
		return false;
	if (lo < c->vc_minaddr)
		lo = c->vc_minaddr;
	if (c->vc_maxaddr != 0 && hi > c->vc_maxaddr - 1)
		hi = c->vc_maxaddr - 1;
	if (lo > hi)
		return false;
	addr = lo + ((c->vc_phase - lo) & (c->vc_align - 1));
	if (addr < lo || addr > hi || hi - addr < room)
		return false;
	if (c->vc_nocross != 0 && ((addr ^ (addr + room)) & ~(uintptr_t)(c->vc_nocross - 1))) {
		uintptr_t boundary = (addr | (c->vc_nocross - 1)) + 1;

		if (boundary == 0)
			return false;
		addr = boundary + c->vc_phase;
		if (addr < boundary || addr > hi || hi - addr < room)
			return false;
	}
	*addrp = addr;
	return true;
}

/* First fit along one free list. */
static vmem_seg_t *vmem_list_first_fit(vmem_seg_t *vs, const struct vmem_constraint *c,
				       uintptr_t *addrp)
{
	for (; vs != NULL; vs = vs->vs_knext) {
		if (vmem_fit(vs, c, addrp))
			return vs;
	}
	return NULL;
}

static vmem_seg_t *vmem_instantfit_locked(vmem_t *vm, const struct vmem_constraint *c,
					  uintptr_t *addrp)
{
	unsigned floor = vmem__freelist_index(c->vc_size);
	unsigned ceil = floor + !vmem_ispow2(c->vc_size);
	uint64_t map = ceil < VMEM_FREELISTS ? vm->vm_freemap & (~0ull << ceil) : 0;
	vmem_seg_t *vs;

	while (map != 0) {
		unsigned i = (unsigned)__builtin_ctzll(map);

		vs = vmem_list_first_fit(vm->vm_freelist[i], c, addrp);
		if (vs != NULL)
			return vs;
		map &= map - 1;
	}
	if (ceil != floor)
		return vmem_list_first_fit(vm->vm_freelist[floor], c, addrp);
	return NULL;
}

static vmem_seg_t *vmem_bestfit_locked(vmem_t *vm, const struct vmem_constraint *c,
				       uintptr_t *addrp)
{
	uint64_t map = vm->vm_freemap & (~0ull << vmem__freelist_index(c->vc_size));

	while (map != 0) {
		unsigned i = (unsigned)__builtin_ctzll(map);
		vmem_seg_t *best = NULL;
		uintptr_t addr;

		for (vmem_seg_t *vs = vm->vm_freelist[i]; vs != NULL; vs = vs->vs_knext) {
			if (best != NULL && vs->vs_size >= best->vs_size)
				continue;
			if (!vmem_fit(vs, c, &addr))
				continue;
			best = vs;
			*addrp = addr;
			if (vs->vs_size == c->vc_size)
				break;
		}
		if (best != NULL)
			return best;
		map &= map - 1;
	}
	return NULL;
}

static vmem_seg_t *vmem_nextfit_locked(vmem_t *vm, const struct vmem_constraint *c,
				       uintptr_t *addrp)
{
	vmem_seg_t *start = vm->vm_rotor, *vs = start;

	do {
		if (vs->vs_type == VMEM_SEG_FREE && vmem_fit(vs, c, addrp))
			return vs;
		vs = vs->vs_anext;
	} while (vs != start);
	return NULL;
}

static vmem_seg_t *vmem_search_locked(vmem_t *vm, const struct vmem_constraint *c,
				      int policy, uintptr_t *addrp)
{
	if (vm->vm_freemap == 0)
		return NULL;
	if (policy == VMEM_BESTFIT)
		return vmem_bestfit_locked(vm, c, addrp);
	if (policy == VMEM_NEXTFIT)
		return vmem_nextfit_locked(vm, c, addrp);
	return vmem_instantfit_locked(vm, c, addrp);
}

/* ---- allocation ------------------------------------------------------------------- */

/* How much to import so that a fresh span surely holds a range meeting @c. */
static bool vmem_import_size(const vmem_t *vm, const struct vmem_constraint *c, size_t *sizep)
{
	size_t srcq = vm->vm_source->vm_quantum, need = c->vc_size;

	if (c->vc_align > vm->vm_quantum) {
		if (need > SIZE_MAX - (c->vc_align - vm->vm_quantum))
			return false;
		need += c->vc_align - vm->vm_quantum;
	}
	if (need > SIZE_MAX - (srcq - 1))
		return false;
	*sizep = (need + srcq - 1) & ~(srcq - 1);
	return true;
}

/*
 * Imports a span for @c and adds it. Called with vm_lock held. Returns 0 with the lock
 * held and the span added, or a negative errno with the lock dropped and nothing
 * changed. The tags for the span and the carve are taken before importing (section 9).
 */
static int vmem_import_locked(vmem_t *vm, const struct vmem_constraint *c, int policy)
{
	vmem_seg_t *tags, *pred;
	uintptr_t addr;
	size_t size;
	int rc;

	pthread_mutex_unlock(&vm->vm_lock);
	if (!vmem_import_size(vm, c, &size))
		return -ENOMEM;
	if (vmem__tags_get(VMEM_SEGS_PER_IMPORT, &tags) != 0)
		return -ENOMEM;
	rc = vm->vm_import(vm->vm_source, size, policy, &addr);
	if (rc != 0) {
		/* whatever the source said, for our caller no range fits */
		vmem__tags_put(tags, VMEM_SEGS_PER_IMPORT);
		return -ENOMEM;
	}
	pthread_mutex_lock(&vm->vm_lock);
	pred = NULL;
	if ((addr & (vm->vm_quantum - 1)) == 0 && addr + (size - 1) >= addr)
		pred = vmem_span_pred_locked(vm, addr, size);
	if (pred == NULL) {
		pthread_mutex_unlock(&vm->vm_lock);
		vmem__report("vmem_xalloc(arena '%s'): import returned [%#lx, +%#zx), which is "
			     "misaligned or overlaps a span; given back", vm->vm_name,
			     (unsigned long)addr, size);
		vm->vm_release(vm->vm_source, addr, size);
		vmem__tags_put(tags, VMEM_SEGS_PER_IMPORT);
		return -ENOMEM;
	}
	vmem_reserve_splice(vm, tags, VMEM_SEGS_PER_IMPORT);
	vmem_span_create_locked(vm, addr, size, true, pred);
	return 0;
}

/* The allocation engine behind vmem_alloc() and vmem_xalloc(). */
static int vmem_xalloc_impl(vmem_t *vm, const struct vmem_constraint *c, int policy,
			    uintptr_t *addrp)
{
	bool drained = false, imported = false;
	vmem_seg_t *vs;
	uintptr_t addr = 0;
	int rc;

	pthread_mutex_lock(&vm->vm_lock);
	for (;;) {
		/* After an import the reserve already holds the carve's tags. */
		if (!imported && vmem_reserve_locked(vm, VMEM_SEGS_PER_ALLOC) != 0) {
			pthread_mutex_unlock(&vm->vm_lock);
			return -ENOMEM;
		}
		imported = false;
		vs = vmem_search_locked(vm, c, policy, &addr);
		if (vs != NULL)
			break;
		if (!drained && atomic_load(&vm->vm_qcache_bytes) != 0) {
			pthread_mutex_unlock(&vm->vm_lock);
			vmem__qcache_drain(vm);
			drained = true;
			pthread_mutex_lock(&vm->vm_lock);
			continue;
		}
		if (vm->vm_source == NULL || c->vc_nocross != 0 || c->vc_minaddr != 0 ||
		    c->vc_maxaddr != 0) {
			pthread_mutex_unlock(&vm->vm_lock);
			return -ENOMEM;
		}
		rc = vmem_import_locked(vm, c, policy);
		if (rc != 0)
			return rc;
		imported = true;
	}
	vs = vmem_seg_alloc_locked(vm, vs, addr, c->vc_size);
	if (policy == VMEM_NEXTFIT)
		vm->vm_rotor = vs;
	vmem_alloc_unlock(vm);
	*addrp = addr;
	return 0;
}

/* The fit policy of @flags, or -EINVAL. */
static int vmem_policy(int flags)
{
	if ((flags & ~VMEM_FITMASK) != 0 || (flags & (flags - 1)) != 0)
		return -EINVAL;
	return flags == 0 ? VMEM_INSTANTFIT : flags;
}

int vmem_alloc(vmem_t *vm, size_t size, int flags, uintptr_t *addrp)
{
	struct vmem_constraint c = { 0 };
	int policy = vmem_policy(flags), rc;

	if (vm == NULL || addrp == NULL || policy < 0 || size == 0)
		return -EINVAL;
	if (!vmem_round(vm, size, &c.vc_size))
		return -ENOMEM;
	if (c.vc_size <= vm->vm_qcache_max && vmem__qcache_alloc(vm, c.vc_size, addrp)) {
		vmem__debug_check(vm);
		return 0;
	}
	c.vc_align = vm->vm_quantum;
	rc = vmem_xalloc_impl(vm, &c, policy, addrp);
	vmem__debug_check(vm);
	return rc;
}

/* Normalises and validates vmem_xalloc()'s constraints into @c. */
static int vmem_constraint_init(const vmem_t *vm, struct vmem_constraint *c, size_t size,
				size_t align, size_t phase, size_t nocross,
				uintptr_t minaddr, uintptr_t maxaddr)
{
	size_t q = vm->vm_quantum;

	if (size == 0)
		return -EINVAL;
	if (!vmem_round(vm, size, &c->vc_size))
		return -ENOMEM;
	if (align == 0)
		align = q;
	if (!vmem_ispow2(align) || align < q || (phase & (q - 1)) != 0 || phase >= align)
		return -EINVAL;
	if (nocross != 0 && (!vmem_ispow2(nocross) || align > nocross ||
			     c->vc_size > nocross || phase > nocross - c->vc_size))
		return -EINVAL;
	if (maxaddr != 0 && minaddr >= maxaddr)
		return -EINVAL;
	c->vc_align = align;
	c->vc_phase = phase;
	c->vc_nocross = nocross;
	c->vc_minaddr = minaddr;
	c->vc_maxaddr = maxaddr;
	return 0;
}

int vmem_xalloc(vmem_t *vm, size_t size, size_t align, size_t phase, size_t nocross,
		uintptr_t minaddr, uintptr_t maxaddr, int flags, uintptr_t *addrp)
{
	struct vmem_constraint c;
	int policy = vmem_policy(flags), rc;

	if (vm == NULL || addrp == NULL || policy < 0)
		return -EINVAL;
	rc = vmem_constraint_init(vm, &c, size, align, phase, nocross, minaddr, maxaddr);
	if (rc != 0)
		return rc;
	rc = vmem_xalloc_impl(vm, &c, policy, addrp);
	vmem__debug_check(vm);
	return rc;
}

/* ---- freeing ---------------------------------------------------------------------- */

/* Frees straight to the segment lists, bypassing the quantum caches. */
static int vmem_free_arena(vmem_t *vm, uintptr_t addr, size_t size, const char *who)
{
	struct vmem_release_list rel = { 0 };
	vmem_seg_t *vs;

	pthread_mutex_lock(&vm->vm_lock);
	vs = vmem__alloc_lookup_locked(vm, addr, size, who);
	if (vs == NULL) {
		pthread_mutex_unlock(&vm->vm_lock);
		return -EINVAL;
	}
	vmem__seg_free_locked(vm, vs, &rel);
	vmem__free_unlock(vm, &rel);
	return 0;
}

static int vmem_free_impl(vmem_t *vm, uintptr_t addr, size_t size, bool cache,
			  const char *who)
{
	size_t rsize;
	int rc;

	if (vm == NULL) {
		vmem__report("%s: bad free of [%#lx, +%#zx): NULL arena", who,
			     (unsigned long)addr, size);
		return -EINVAL;
	}
	if (!vmem_round(vm, size, &rsize)) {
		vmem__report("%s(arena '%s'): bad free of [%#lx, +%#zx): bad size", who,
			     vm->vm_name, (unsigned long)addr, size);
		return -EINVAL;
	}
	if (rsize <= vm->vm_qcache_max)
		rc = vmem__qcache_free(vm, addr, rsize, cache, who);
	else
		rc = vmem_free_arena(vm, addr, rsize, who);
	if (rc == 0)
		vmem__debug_check(vm);
	return rc;
}

void vmem_free(vmem_t *vm, uintptr_t addr, size_t size)
{
	(void)vmem_free_impl(vm, addr, size, true, "vmem_free");
}

void vmem_xfree(vmem_t *vm, uintptr_t addr, size_t size)
{
	(void)vmem_free_impl(vm, addr, size, false, "vmem_xfree");
}

int vmem_free_checked(vmem_t *vm, uintptr_t addr, size_t size)
{
	return vmem_free_impl(vm, addr, size, true, "vmem_free_checked");
}

/* ---- resizing in place ------------------------------------------------------------ */

/* The ALLOC segment [addr, addr + size) of a resize, or NULL after reporting. vm_lock held. */
static vmem_seg_t *vmem_resize_lookup_locked(vmem_t *vm, uintptr_t addr, size_t size)
{
	vmem_seg_t *vs = vmem__hash_find_locked(vm, addr);

	if (vs == NULL)
		vmem__report("vmem_resize(arena '%s'): bad resize of [%#lx, +%#zx): not an "
			     "allocated range", vm->vm_name, (unsigned long)addr, size);
	else if (vs->vs_size != size)
		vmem__report("vmem_resize(arena '%s'): bad resize of [%#lx, +%#zx): allocated "
			     "with size %#zx", vm->vm_name, (unsigned long)addr, size, vs->vs_size);
	else
		return vs;
	return NULL;
}

/*
 * Grows @vs by @delta into the free segment after it, which must be in the same span
 * (a span tag is never FREE, so the next tag being FREE says both). Takes no tag; gives
 * one back when the free segment is consumed whole. -ENOMEM, nothing changed, when the
 * next segment is not free or too small. vm_lock held.
 */
static int vmem_grow_locked(vmem_t *vm, vmem_seg_t *vs, size_t delta)
{
	vmem_seg_t *next = vs->vs_anext;

	if (next->vs_type != VMEM_SEG_FREE || next->vs_size < delta)
		return -ENOMEM;
	VMEM_ASSERT(next->vs_start == vs->vs_start + vs->vs_size);
	vmem_freelist_remove(vm, next);
	if (next->vs_size == delta) {
		vmem_seg_unlink(vm, next);
		vmem_seg_put(vm, next);
	} else {
		next->vs_start += delta;
		next->vs_size -= delta;
		vmem_freelist_insert(vm, next);
	}
	vs->vs_size += delta;
	vm->vm_alloc += delta;
	return 0;
}

/*
 * Gives the last @delta of @vs back: it joins the free segment after @vs, or becomes a
 * new one (one tag, which the caller put in the reserve). The segment stays allocated,
 * so its span cannot become wholly free. vm_lock held.
 */
static void vmem_shrink_locked(vmem_t *vm, vmem_seg_t *vs, size_t delta)
{
	vmem_seg_t *next = vs->vs_anext;

	vs->vs_size -= delta;
	vm->vm_alloc -= delta;
	if (next->vs_type == VMEM_SEG_FREE) {
		vmem_freelist_remove(vm, next);
		next->vs_start -= delta;
		next->vs_size += delta;
	} else {
		next = vmem_seg_get(vm);
		next->vs_start = vs->vs_start + vs->vs_size;
		next->vs_size = delta;
		vmem_seg_link_after(vs, next);
	}
	vmem_freelist_insert(vm, next);
}

/* vmem_resize() on rounded sizes, with the quantum cache of @oldsize (if any) locked. */
static int vmem_resize_arena(vmem_t *vm, uintptr_t addr, size_t oldsize, size_t newsize)
{
	struct vmem_release_list rel = { 0 };
	vmem_seg_t *vs;
	int rc = 0;

	pthread_mutex_lock(&vm->vm_lock);
	/* A shrink may need a tag for the tail: had before anything changes (section 9). */
	if (newsize < oldsize && vmem_reserve_locked(vm, 1) != 0) {
		pthread_mutex_unlock(&vm->vm_lock);
		return -ENOMEM;
	}
	vs = vmem_resize_lookup_locked(vm, addr, oldsize);
	if (vs == NULL)
		rc = -EINVAL;
	else if (newsize > oldsize)
		rc = vmem_grow_locked(vm, vs, newsize - oldsize);
	else if (newsize < oldsize)
		vmem_shrink_locked(vm, vs, oldsize - newsize);
	vmem__free_unlock(vm, &rel);
	return rc;
}

int vmem_resize(vmem_t *vm, uintptr_t addr, size_t oldsize, size_t newsize)
{
	struct vmem_qcache *qc = NULL;
	size_t rold, rnew;
	int rc;

	if (vm == NULL || !vmem_round(vm, oldsize, &rold)) {
		vmem__report("vmem_resize(arena '%s'): bad resize of [%#lx, +%#zx): %s",
			     vm ? vm->vm_name : "(null)", (unsigned long)addr, oldsize,
			     vm ? "bad size" : "NULL arena");
		return -EINVAL;
	}
	if (!vmem_round(vm, newsize, &rnew))
		return newsize == 0 ? -EINVAL : -ENOMEM;
	/*
	 * A range held in a quantum cache is an ALLOC segment but free: resizing it is a
	 * use after free. The cache's lock is held across the check and the resize, as
	 * vmem__qcache_free() does, so a racing free cannot cache it in between.
	 */
	if (rold <= vm->vm_qcache_max) {
		qc = &vm->vm_qcache[rold / vm->vm_quantum - 1];
		pthread_mutex_lock(&qc->qc_lock);
		for (unsigned i = 0; i < qc->qc_count; i++) {
			if (qc->qc_addr[i] != addr)
				continue;
			pthread_mutex_unlock(&qc->qc_lock);
			vmem__report("vmem_resize(arena '%s'): bad resize of [%#lx, +%#zx): "
				     "already free (held in the quantum cache)", vm->vm_name,
				     (unsigned long)addr, rold);
			return -EINVAL;
		}
	}
	rc = vmem_resize_arena(vm, addr, rold, rnew);
	if (qc != NULL)
		pthread_mutex_unlock(&qc->qc_lock);
	if (rc == 0 && rold != rnew)
		vmem__debug_check(vm);
	return rc;
}

/* vmem_join()'s sizes, rounded into *@r1p and *@r2p; false for a bad or quantum-cached one. */
static bool vmem_join_sizes(const vmem_t *vm, size_t size, size_t nextsize, size_t *r1p,
			    size_t *r2p)
{
	return vm != NULL && vmem_round(vm, size, r1p) && vmem_round(vm, nextsize, r2p) &&
	       *r1p > vm->vm_qcache_max && *r2p > vm->vm_qcache_max;
}

/*
 * The ALLOC segment [addr, +r1) (sizes rounded) if vmem_join() can join the one after
 * it into it, else NULL with the reason in *@rcp: -EINVAL when [addr, +r1) is not
 * an allocated segment, -ENOMEM when the segment after it is not an allocated
 * [addr + r1, +r2). Adjacent ALLOC tags are in one span (a span tag would sit between
 * them), so nothing else is checked. The one test behind vmem_join() and
 * vmem_joinable(), so that a caller's "joinable" cannot drift from the join. vm_lock held.
 */
static vmem_seg_t *vmem_join_target_locked(vmem_t *vm, uintptr_t addr, size_t r1, size_t r2,
					   int *rcp)
{
	vmem_seg_t *vs = vmem_alloc_seg_locked(vm, addr, r1), *next;

	if (vs == NULL) {
		*rcp = -EINVAL;
		return NULL;
	}
	next = vs->vs_anext;
	if (next->vs_type != VMEM_SEG_ALLOC || next->vs_size != r2 ||
	    next->vs_start - vs->vs_start != r1) {
		*rcp = -ENOMEM;
		return NULL;
	}
	*rcp = 0;
	return vs;
}

/*
 * Joins the ALLOC segment [addr + size, + nextsize) into the ALLOC segment [addr, +size)
 * (sizes rounded). Frees the second tag: no allocation, no fault point. Ranges the size
 * of a quantum cache are refused: one of them may be held free there.
 */
int vmem_join(vmem_t *vm, uintptr_t addr, size_t size, size_t nextsize)
{
	struct vmem_release_list rel = { 0 };
	vmem_seg_t *vs, *next;
	size_t r1, r2;
	int rc;

	if (!vmem_join_sizes(vm, size, nextsize, &r1, &r2))
		return -EINVAL;
	pthread_mutex_lock(&vm->vm_lock);
	vs = vmem_join_target_locked(vm, addr, r1, r2, &rc);
	if (vs != NULL) {
		next = vs->vs_anext;
		vmem_hash_remove(vm, next);
		vmem_seg_unlink(vm, next);
		vmem_seg_put(vm, next);
		vs->vs_size += r2;
		vm->vm_alloc += r2;	/* vmem_hash_remove() took it off */
	}
	vmem__free_unlock(vm, &rel);
	if (rc == 0)
		vmem__debug_check(vm);
	return rc;
}

int vmem_joinable(vmem_t *vm, uintptr_t addr, size_t size, size_t nextsize)
{
	size_t r1, r2;
	int rc;

	if (!vmem_join_sizes(vm, size, nextsize, &r1, &r2))
		return -EINVAL;
	pthread_mutex_lock(&vm->vm_lock);
	vmem_join_target_locked(vm, addr, r1, r2, &rc);
	pthread_mutex_unlock(&vm->vm_lock);
	return rc;
}

/*
 * Take vm_lock with @ntags tags in the reserve and find the ALLOC segment [@addr, +@r)
 * (@r rounded): 0 with the lock held and *@vsp set, or -ENOMEM (no tags) / -EINVAL (no
 * such segment) with the lock dropped and nothing changed. The start of the operations
 * that rework one allocated segment in place (vmem_alloc_next, vmem_split).
 */
static int vmem_lock_alloc_seg(vmem_t *vm, uintptr_t addr, size_t r, unsigned ntags,
			       vmem_seg_t **vsp)
{
	pthread_mutex_lock(&vm->vm_lock);
	if (vmem_reserve_locked(vm, ntags) != 0) {
		pthread_mutex_unlock(&vm->vm_lock);
		return -ENOMEM;
	}
	*vsp = vmem_alloc_seg_locked(vm, addr, r);
	if (*vsp == NULL) {
		pthread_mutex_unlock(&vm->vm_lock);
		return -EINVAL;
	}
	return 0;
}

/*
 * Allocates [addr + size, +nextsize) (sizes rounded) from the front of the FREE segment
 * right after the ALLOC segment [addr, +size): what vmem_resize() would grow into, as
 * an allocation of its own. The next tag being FREE means the same span (span tags are
 * never free), so vmem_join() of the two succeeds afterwards: a caller can make the
 * grow's other steps before the join, and undo them with a plain free. O(1) apart from
 * the hash, where vmem_xalloc() of that exact window would search the free lists.
 */
int vmem_alloc_next(vmem_t *vm, uintptr_t addr, size_t size, size_t nextsize)
{
	vmem_seg_t *vs, *next;
	size_t r1, r2;
	int rc;

	if (!vmem_join_sizes(vm, size, nextsize, &r1, &r2))
		return -EINVAL;
	rc = vmem_lock_alloc_seg(vm, addr, r1, VMEM_SEGS_PER_ALLOC, &vs);
	if (rc != 0)
		return rc;
	next = vs->vs_anext;
	if (next->vs_type != VMEM_SEG_FREE || next->vs_size < r2) {
		pthread_mutex_unlock(&vm->vm_lock);
		return -ENOMEM;
	}
	VMEM_ASSERT(next->vs_start - vs->vs_start == r1);
	vmem_seg_alloc_locked(vm, next, addr + r1, r2);
	vmem_alloc_unlock(vm);
	vmem__debug_check(vm);
	return 0;
}

/*
 * Splits the ALLOC segment [addr, +size) at @at into two ALLOC segments (sizes
 * rounded): the inverse of vmem_join(). Takes one tag from the reserve (refilled
 * first, so it may map memory and fail); nothing is freed, so no span can become
 * wholly free and leave the arena on the way.
 */
int vmem_split(vmem_t *vm, uintptr_t addr, size_t size, size_t at)
{
	struct vmem_release_list rel = { 0 };
	vmem_seg_t *vs, *tail;
	size_t r, ra;
	bool grow;
	int rc;

	if (vm == NULL || !vmem_round(vm, size, &r) || !vmem_round(vm, at, &ra) || ra >= r ||
	    ra <= vm->vm_qcache_max || r - ra <= vm->vm_qcache_max)
		return -EINVAL;
	rc = vmem_lock_alloc_seg(vm, addr, r, 1, &vs);
	if (rc != 0)
		return rc;
	tail = vmem_seg_get(vm);
	tail->vs_start = addr + ra;
	tail->vs_size = r - ra;
	vs->vs_size = ra;
	vm->vm_alloc -= r - ra;		/* vmem_hash_insert() counts it again */
	vmem_seg_link_after(vs, tail);
	vmem_hash_insert(vm, tail);
	grow = vm->vm_nalloc > 2 * (vm->vm_hash_mask + 1);
	vmem__free_unlock(vm, &rel);
	if (grow)
		vmem_hash_grow(vm);
	vmem__debug_check(vm);
	return 0;
}

/* ---- arenas ----------------------------------------------------------------------- */

/* Adds a span after validating it; vm_lock not held. */
static int vmem_add_span(vmem_t *vm, uintptr_t base, size_t size)
{
	vmem_seg_t *pred;
	size_t q = vm->vm_quantum;

	if (size == 0 || ((base | size) & (q - 1)) != 0 || base + (size - 1) < base)
		return -EINVAL;
	pthread_mutex_lock(&vm->vm_lock);
	if (vmem_reserve_locked(vm, VMEM_SEGS_PER_SPAN) != 0) {
		pthread_mutex_unlock(&vm->vm_lock);
		return -ENOMEM;
	}
	pred = vmem_span_pred_locked(vm, base, size);
	if (pred == NULL) {
		pthread_mutex_unlock(&vm->vm_lock);
		vmem__report("vmem_add(arena '%s'): span [%#lx, +%#zx) overlaps a span of the "
			     "arena (or its total would exceed SIZE_MAX)", vm->vm_name,
			     (unsigned long)base, size);
		return -EINVAL;
	}
	vmem_span_create_locked(vm, base, size, false, pred);
	pthread_mutex_unlock(&vm->vm_lock);
	return 0;
}

int vmem_add(vmem_t *vm, uintptr_t base, size_t size, int flags)
{
	int rc;

	if (vm == NULL || flags != 0)
		return -EINVAL;
	rc = vmem_add_span(vm, base, size);
	vmem__debug_check(vm);
	return rc;
}

/* Validates vmem_create()'s arguments. */
static bool vmem_create_args_ok(size_t quantum, vmem_import_t *import,
				vmem_release_t *release, vmem_t *source, size_t qcache_max,
				int flags)
{
	if (!vmem_ispow2(quantum) || flags != 0)
		return false;
	if ((import == NULL) != (source == NULL) || (import == NULL) != (release == NULL))
		return false;
	if (source != NULL && (source->vm_quantum & (quantum - 1)) != 0)
		return false;
	if ((qcache_max & (quantum - 1)) != 0 ||
	    qcache_max / quantum > VMEM_QCACHE_MAX_QUANTA)
		return false;
	return true;
}

static void vmem_init(vmem_t *vm, const char *name, size_t quantum, vmem_import_t *import,
		      vmem_release_t *release, vmem_t *source, size_t qcache_max)
{
	strncpy(vm->vm_name, name, VMEM_NAMELEN - 1);
	vm->vm_name[VMEM_NAMELEN - 1] = '\0';
	vm->vm_quantum = quantum;
	vm->vm_qshift = vmem__freelist_index(quantum);
	vm->vm_import = import;
	vm->vm_release = release;
	vm->vm_source = source;
	vm->vm_qcache_max = qcache_max;
	vm->vm_nqcache = (unsigned)(qcache_max / quantum);
	atomic_init(&vm->vm_nimporters, 0);
	atomic_init(&vm->vm_qcache_bytes, 0);
	pthread_mutex_init(&vm->vm_lock, NULL);
	vm->vm_seg0.vs_type = VMEM_SEG_HEAD;
	vm->vm_seg0.vs_anext = vm->vm_seg0.vs_aprev = &vm->vm_seg0;
	vm->vm_span0.vs_type = VMEM_SEG_HEAD;
	vm->vm_span0.vs_knext = vm->vm_span0.vs_kprev = &vm->vm_span0;
	vmem_hash_set_table(vm, vm->vm_hash0, VMEM_HASH0_BUCKETS);
	vm->vm_rotor = &vm->vm_seg0;
	vmem__qcache_init(vm);
	if (source != NULL)
		atomic_fetch_add(&source->vm_nimporters, 1);
}

vmem_t *vmem_create(const char *name, uintptr_t base, size_t size, size_t quantum,
		    vmem_import_t *import, vmem_release_t *release, vmem_t *source,
		    size_t qcache_max, int flags)
{
	vmem_t *vm;
	int rc;

	if (name == NULL ||
	    !vmem_create_args_ok(quantum, import, release, source, qcache_max, flags)) {
		errno = EINVAL;
		return NULL;
	}
	vm = vmem__arena_get();
	if (vm == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	vmem_init(vm, name, quantum, import, release, source, qcache_max);
	if (size != 0) {
		rc = vmem_add_span(vm, base, size);
		if (rc != 0) {
			vmem_destroy(vm);
			errno = -rc;
			return NULL;
		}
	}
	vmem__debug_check(vm);
	return vm;
}

/* Gives every tag of the address list and the reserve back to the pool. */
static void vmem_tags_put_all(vmem_t *vm)
{
	vmem_seg_t *vs = vm->vm_seg0.vs_anext;

	while (vs != &vm->vm_seg0) {
		vmem_seg_t *next = vs->vs_anext;

		vmem_seg_put(vm, vs);
		vs = next;
	}
	vm->vm_seg0.vs_anext = vm->vm_seg0.vs_aprev = &vm->vm_seg0;
	vmem__tags_put(vm->vm_segfree, vm->vm_nsegfree);
	vm->vm_segfree = NULL;
	vm->vm_nsegfree = 0;
}

void vmem_destroy(vmem_t *vm)
{
	unsigned importers;

	if (vm == NULL)
		return;
	importers = atomic_load(&vm->vm_nimporters);
	if (importers != 0) {
		vmem__report("vmem_destroy(arena '%s'): %u arena(s) still import from it; "
			     "not destroyed", vm->vm_name, importers);
		return;
	}
	vmem__qcache_drain(vm);
	if (vm->vm_nalloc != 0)
		vmem__report("vmem_destroy(arena '%s'): %zu bytes leaked in %zu segment(s)",
			     vm->vm_name, vm->vm_alloc, vm->vm_nalloc);
	for (vmem_seg_t *sp = vm->vm_span0.vs_knext; sp != &vm->vm_span0; sp = sp->vs_knext) {
		if (sp->vs_import)
			vm->vm_release(vm->vm_source, sp->vs_start, sp->vs_size);
	}
	vmem_tags_put_all(vm);
	if (vm->vm_hash != vm->vm_hash0)
		vmem__hash_table_free(vm->vm_hash, vm->vm_hash_mask + 1);
	if (vm->vm_source != NULL)
		atomic_fetch_sub(&vm->vm_source->vm_nimporters, 1);
	vmem__qcache_fini(vm);
	pthread_mutex_destroy(&vm->vm_lock);
	vmem__arena_put(vm);
}

size_t vmem_size(vmem_t *vm, int typemask)
{
	size_t total, alloc, size = 0;

	if (vm == NULL)
		return 0;
	pthread_mutex_lock(&vm->vm_lock);
	total = vm->vm_total;
	alloc = vm->vm_alloc - atomic_load(&vm->vm_qcache_bytes);
	pthread_mutex_unlock(&vm->vm_lock);
	if (typemask & VMEM_ALLOC)
		size += alloc;
	if (typemask & VMEM_FREE)
		size += total - alloc;
	return size;
}

/**
 * vmem__debug_check() - in MEMDESC_DEBUG builds, vmem_check() and abort on failure.
 *
 * Runs after every mutating operation while the arena has fewer than
 * VMEM_DEBUG_AMORTIZE tags; on bigger arenas after every (tags / VMEM_DEBUG_AMORTIZE +
 * 1)-th operation, so that a debug build costs O(VMEM_DEBUG_AMORTIZE) per operation
 * instead of O(tags) and large tests stay linear. -DVMEM_DEBUG_AMORTIZE=0 checks after
 * every operation whatever the size.
 *
 * Context: no lock of @vm held.
 */
void vmem__debug_check(vmem_t *vm)
{
#ifdef MEMDESC_DEBUG
	unsigned long ops = atomic_fetch_add(&vm->vm_debug_ops, 1);
	size_t tags, every;

	pthread_mutex_lock(&vm->vm_lock);
	tags = vm->vm_nalloc + vm->vm_nfree + vm->vm_nspans;
	pthread_mutex_unlock(&vm->vm_lock);
	every = VMEM_DEBUG_AMORTIZE == 0 ? 1 : tags / VMEM_DEBUG_AMORTIZE + 1;

	if (ops % every != 0)
		return;
	if (vmem_check(vm) != 0) {
		vmem__report("vmem: arena '%s' failed its check after an operation", vm->vm_name);
		abort();
	}
#else
	(void)vm;
#endif
}

#ifdef MEMDESC_FAULT_INJECTION
/* Test hook: the arena's reserve back to the pool, so that its next refill is a fault point. */
void vmem__test_reserve_empty(vmem_t *vm)
{
	vmem_seg_t *list;
	unsigned n;

	pthread_mutex_lock(&vm->vm_lock);
	list = vm->vm_segfree;
	n = vm->vm_nsegfree;
	vm->vm_segfree = NULL;
	vm->vm_nsegfree = 0;
	pthread_mutex_unlock(&vm->vm_lock);
	if (n != 0)
		vmem__tags_put(list, n);
}
#endif
