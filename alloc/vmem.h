/*
 * vmem: a general-purpose allocator of integer ranges (Bonwick and Adams, "Magazines and
 * Vmem", USENIX 2001).
 *
 * An arena (vmem_t) is a set of integers, made of spans added with vmem_add() or
 * imported from a source arena. vmem_alloc()/vmem_free() allocate and free ranges of
 * them; vmem_xalloc()/vmem_xfree() do the same under alignment, phase, boundary and
 * address constraints. The design, the invariants and the locking are described at the
 * top of vmem.c.
 *
 * Conventions:
 * - Operations return 0 or a negative errno; vmem_create() returns NULL and sets errno.
 * - Address 0 is a valid address: success is told by the return code, never by the
 *   address.
 * - Sizes passed to vmem_alloc()/vmem_free() are rounded up to the arena's quantum;
 *   vmem_xalloc()/vmem_xfree() take the same rounding.
 * - vmem never calls malloc: its metadata comes from a static boot pool, then from
 *   pages mapped directly from the operating system.
 */
#ifndef MEMDESC_VMEM_H
#define MEMDESC_VMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vmem vmem_t;

/*
 * Import and release callbacks of an arena that has a source. vmem_alloc() and
 * vmem_free() have exactly these types, so an arena usually imports with
 * (vmem_alloc, vmem_free, parent). An import returns 0 and the address of a range of
 * @size in *@addrp, or a negative errno.
 */
typedef int vmem_import_t(vmem_t *source, size_t size, int flags, uintptr_t *addrp);
typedef void vmem_release_t(vmem_t *source, uintptr_t addr, size_t size);

/* Allocation flags: at most one fit policy. 0 means VMEM_INSTANTFIT. */
#define VMEM_INSTANTFIT 0x1	/* O(1): first segment of the first list that must fit */
#define VMEM_BESTFIT	0x2	/* smallest free segment that fits */
#define VMEM_NEXTFIT	0x4	/* first fit in address order, from where the last one ended */
#define VMEM_FITMASK	(VMEM_INSTANTFIT | VMEM_BESTFIT | VMEM_NEXTFIT)

/* vmem_size() type mask. */
#define VMEM_ALLOC	0x1	/* allocated to callers (quantum-cached ranges are free) */
#define VMEM_FREE	0x2	/* free, including ranges held in quantum caches */

/* Largest qcache_max, in quanta (one locked cache per multiple of the quantum). */
#define VMEM_QCACHE_MAX_QUANTA 16
/* Longest arena name kept (longer names are truncated). */
#define VMEM_NAMELEN 32

/**
 * vmem_create() - create an arena.
 * @name: name used in messages (copied, truncated to VMEM_NAMELEN - 1 characters).
 * @base: start of the initial span, ignored when @size is 0.
 * @size: size of the initial span, 0 for none; @base and @size multiples of @quantum,
 *	  and the span must not wrap past UINTPTR_MAX.
 * @quantum: unit of allocation, a power of two.
 * @import: how to import a span from @source when the arena runs out, or NULL.
 * @release: how to give a wholly free imported span back to @source; set exactly when
 *	  @import is.
 * @source: the arena imported from; set exactly when @import is. Its quantum must be a
 *	  multiple of @quantum.
 * @qcache_max: sizes up to this (a multiple of @quantum, at most
 *	  VMEM_QCACHE_MAX_QUANTA quanta) are served by vmem_alloc() from per-size caches;
 *	  0 for none.
 * @flags: reserved, must be 0.
 *
 * Context: any thread; takes the metadata pool's lock, may map memory from the OS.
 * Return: the arena, or NULL with errno EINVAL (bad argument) or ENOMEM.
 */
vmem_t *vmem_create(const char *name, uintptr_t base, size_t size, size_t quantum,
		    vmem_import_t *import, vmem_release_t *release, vmem_t *source,
		    size_t qcache_max, int flags);

/**
 * vmem_destroy() - destroy an arena.
 * @vm: the arena, or NULL (nothing done).
 *
 * Ranges still allocated are reported on stderr as leaked. Every imported span is given
 * back to the source. An arena that other arenas still import from is not destroyed:
 * that is reported on stderr and nothing changes.
 *
 * Context: no lock of @vm held by the caller; nobody else uses @vm.
 */
void vmem_destroy(vmem_t *vm);

/**
 * vmem_add() - add the span [@base, @base + @size) to an arena.
 * @vm: the arena.
 * @base: a multiple of the quantum.
 * @size: a non-zero multiple of the quantum; the span may end at UINTPTR_MAX.
 * @flags: reserved, must be 0.
 *
 * Context: takes @vm's lock; may map memory from the OS for boundary tags.
 * Return: 0; -EINVAL for a bad argument or a span overlapping one of the arena's;
 * -ENOMEM when boundary tags cannot be had (the arena is unchanged).
 */
int vmem_add(vmem_t *vm, uintptr_t base, size_t size, int flags);

/**
 * vmem_alloc() - allocate @size (rounded up to the quantum) from an arena.
 * @vm: the arena.
 * @size: non-zero.
 * @flags: 0 or one fit policy (VMEM_INSTANTFIT, VMEM_BESTFIT, VMEM_NEXTFIT); sizes up
 *	  to the arena's qcache_max are served from the quantum caches whatever the policy.
 * @addrp: receives the start of the range on success.
 *
 * Context: takes @vm's lock (and a quantum cache's lock); may import from the source
 * (with @vm's lock dropped) and map memory from the OS for boundary tags.
 * Return: 0; -EINVAL for a bad argument; -ENOMEM when no range fits (the arena is
 * unchanged).
 */
int vmem_alloc(vmem_t *vm, size_t size, int flags, uintptr_t *addrp);

/**
 * vmem_xalloc() - allocate a constrained range.
 * @vm: the arena.
 * @size: non-zero, rounded up to the quantum.
 * @align: the start is @phase modulo @align; a power of two multiple of the quantum, or
 *	  0 for the quantum.
 * @phase: a multiple of the quantum below @align.
 * @nocross: 0, or a power of two: the range must not cross a multiple of it; then
 *	  @align <= @nocross and @phase + @size (rounded up to @align) <= @nocross.
 * @minaddr: the range starts at or above it.
 * @maxaddr: the range ends at or below it (exclusive bound); 0 means no limit.
 * @flags: 0 or one fit policy.
 * @addrp: receives the start of the range on success.
 *
 * Imports from the source only when @nocross, @minaddr and @maxaddr are all 0.
 * Free the range with vmem_xfree() (vmem_free() also works; it does not matter here).
 *
 * Context: as vmem_alloc(), without quantum caches.
 * Return: 0; -EINVAL for bad or contradictory constraints; -ENOMEM when no range in
 * the arena meets them (the arena is unchanged).
 */
int vmem_xalloc(vmem_t *vm, size_t size, size_t align, size_t phase, size_t nocross,
		uintptr_t minaddr, uintptr_t maxaddr, int flags, uintptr_t *addrp);

/**
 * vmem_free() - free a range allocated with vmem_alloc() or vmem_xalloc().
 * @vm: the arena.
 * @addr: the start returned by the allocation.
 * @size: the size passed to the allocation.
 *
 * A range that is not allocated, or a wrong size, is reported on stderr and nothing
 * changes (vmem_free_checked() also returns the error). Never allocates memory, never
 * fails otherwise. A wholly free imported span is given back to the source.
 *
 * Context: takes @vm's lock (and a quantum cache's lock); may call the release
 * callback with @vm's lock dropped.
 */
void vmem_free(vmem_t *vm, uintptr_t addr, size_t size);

/**
 * vmem_xfree() - free a range allocated with vmem_xalloc(); bypasses quantum caches.
 *
 * Context: as vmem_free().
 */
void vmem_xfree(vmem_t *vm, uintptr_t addr, size_t size);

/**
 * vmem_free_checked() - vmem_free() that returns its verdict.
 *
 * Context: as vmem_free().
 * Return: 0; -EINVAL when [@addr, @addr + @size) is not an allocated range of @vm
 * (reported on stderr, nothing changed).
 */
int vmem_free_checked(vmem_t *vm, uintptr_t addr, size_t size);

/**
 * vmem_resize() - grow or shrink an allocated range in place.
 * @vm: the arena.
 * @addr: the start returned by the allocation.
 * @oldsize: its current size (as passed to the allocation or the last resize).
 * @newsize: the size wanted, non-zero; both are rounded up to the quantum.
 *
 * Growing takes the start of the free segment right after the range, which must be in
 * the same span and hold at least @newsize - @oldsize; the range keeps its start, so
 * it is freed later with vmem_free(@addr, @newsize). Shrinking gives the tail back as
 * free (it coalesces with a free segment after it). O(1) apart from the free-list
 * updates; never imports, never moves the range. A range that is not allocated, has
 * another size or sits in a quantum cache is reported on stderr as vmem_free() does.
 *
 * Context: takes @vm's lock (and the quantum cache lock of @oldsize); a shrink may
 * map memory from the OS for one boundary tag.
 * Return: 0 (also when the rounded sizes are equal); -EINVAL for a bad range (reported,
 * nothing changed) or @newsize 0; -ENOMEM when the segment after the range is not free
 * or too small, or a shrink cannot get its boundary tag (the arena is unchanged).
 */
int vmem_resize(vmem_t *vm, uintptr_t addr, size_t oldsize, size_t newsize);
/**
 * vmem_join() - make two adjacent allocated ranges one: [@addr, +@size) and
 * [@addr + @size, +@nextsize), both allocated as they are (not in a quantum cache),
 * become the one allocation [@addr, +@size + @nextsize), freed later as a whole.
 * Context: takes @vm's lock; O(1) apart from the hash lookup; never allocates (it
 * gives a boundary tag back).
 * Return: 0; -EINVAL when [@addr, +@size) is not an allocated range (nothing reported:
 * the caller asks, it does not free) or a size is a quantum-cached one; -ENOMEM when
 * the range after it is not exactly an allocated [@addr + @size, +@nextsize) of the
 * same span. Nothing changes on failure.
 */
int vmem_join(vmem_t *vm, uintptr_t addr, size_t size, size_t nextsize);
/**
 * vmem_joinable() - would vmem_join(@vm, @addr, @size, @nextsize) succeed now?
 * The same test as vmem_join()'s (one function behind both), without the join: a
 * caller that must not fail once it has started checks first and joins last.
 * Context: takes @vm's lock; never allocates.
 * Return: 0 if it would; otherwise what vmem_join() would return.
 */
int vmem_joinable(vmem_t *vm, uintptr_t addr, size_t size, size_t nextsize);
/**
 * vmem_alloc_next() - allocate [@addr + @size, +@nextsize) from the free segment
 * right after the allocated range [@addr, +@size), as an allocation of its own.
 * What vmem_resize() would grow into, but not yet part of the range: vmem_join() of
 * the two then succeeds (same span), and until then the new range can be freed on its
 * own. A grow whose other steps may fail takes the pages first, does those steps, and
 * joins last, so that an undo is a vmem_free(), which needs no boundary tag.
 * Context: takes @vm's lock; may take boundary tags from the pool (and map memory for
 * them). O(1) apart from the hash and the free lists; never imports.
 * Return: 0; -EINVAL when [@addr, +@size) is not an allocated range (nothing reported)
 * or a size is a quantum-cached one; -ENOMEM when the segment after the range is not
 * free or is too small, or no tag can be had. Nothing changes on failure.
 */
int vmem_alloc_next(vmem_t *vm, uintptr_t addr, size_t size, size_t nextsize);
/**
 * vmem_split() - make the allocated range [@addr, +@size) two allocations,
 * [@addr, +@at) and [@addr + @at, +@size - @at), freed later each on its own.
 * Context: takes @vm's lock; may take boundary tags from the pool (and map memory for
 * it): one tag is used. O(1) apart from the hash.
 * Return: 0; -EINVAL when [@addr, +@size) is not an allocated range (nothing reported),
 * @at is not inside it or a part would be a quantum-cached size; -ENOMEM when no tag
 * can be had. Nothing changes on failure.
 */
int vmem_split(vmem_t *vm, uintptr_t addr, size_t size, size_t at);
#ifdef MEMDESC_FAULT_INJECTION
/* Test hook (fault-injection builds): give @vm's boundary-tag reserve back to the pool,
 * so that the next operation needing a tag refills it and meets FAULT_VMEM_TAG. */
void vmem__test_reserve_empty(vmem_t *vm);
#endif
/**
 * vmem_size() - bytes (units of the arena's integers) allocated and/or free.
 * @vm: the arena.
 * @typemask: VMEM_ALLOC, VMEM_FREE or both (the total of the arena's spans).
 *
 * Ranges held in quantum caches count as free: they are not allocated to any caller
 * and vmem_alloc() hands them out first.
 *
 * Context: takes @vm's lock.
 * Return: the sum; 0 for an empty @typemask.
 */
size_t vmem_size(vmem_t *vm, int typemask);

/**
 * vmem_check() - verify every invariant of an arena.
 * @vm: the arena.
 *
 * Segments in address order inside their spans, no overlap, no two adjacent free
 * segments, free lists and their bitmap, the hash of allocated segments, the quantum
 * caches, the tag reserve and the size counters. O(segments + hash buckets).
 *
 * Context: takes @vm's quantum-cache locks, then its lock.
 * Return: 0, or -EINVAL after printing what is broken on stderr.
 */
int vmem_check(vmem_t *vm);

/**
 * vmem_tag_bytes() - boundary-tag memory held process-wide (tags in use, in arena
 * reserves and in the global pool), in bytes. For metadata-overhead figures.
 *
 * Context: any thread; lock-free.
 */
size_t vmem_tag_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* MEMDESC_VMEM_H */
