/*
 * xarray_impl.h: the XArray's internal types and helpers, shared by xarray.c,
 * xarray_find.c and xarray_verify.c. Nothing here is part of the public API.
 * The theory is at the top of xarray.c.
 */
#ifndef MEMDESC_XARRAY_IMPL_H
#define MEMDESC_XARRAY_IMPL_H

#include "xarray.h"

#include <stdint.h>

/*
 * The read-side fast paths of liburcu-bp, inline (_LGPL_SOURCE). Not in sanitizer
 * builds: liburcu lays its registry of readers out at 32 bytes past a chunk header,
 * while struct urcu_bp_reader asks for 128-byte alignment, and UBSan would report that
 * access (harmless on x86) in every inlined read lock. Out of line, the access happens
 * inside liburcu, which is not instrumented.
 */
#if !defined(MEMDESC_SANITIZER_BUILD) && !defined(_LGPL_SOURCE)
#define _LGPL_SOURCE
#endif
#include <urcu/urcu-bp.h>

/*
 * Slots per node: 2^XA_CHUNK_SHIFT. Tests build the module a second time with a
 * small shift so that small indices already make deep trees. One unsigned long
 * holds a node's bits of one mark, hence the upper limit.
 */
#ifndef XA_CHUNK_SHIFT
#define XA_CHUNK_SHIFT 6
#endif
#if XA_CHUNK_SHIFT < 1 || XA_CHUNK_SHIFT > 6
#error "XA_CHUNK_SHIFT must be 1..6"
#endif

#define XA_BITS_PER_LONG ((unsigned int)(sizeof(unsigned long) * CHAR_BIT))
#define XA_CHUNK_SIZE (1UL << XA_CHUNK_SHIFT)
#define XA_CHUNK_MASK (XA_CHUNK_SIZE - 1)
/* Shift of the highest possible root: the largest multiple of the chunk shift < 64. */
#define XA_MAX_SHIFT (((XA_BITS_PER_LONG - 1) / XA_CHUNK_SHIFT) * XA_CHUNK_SHIFT)
/* Levels of the tallest tree. */
#define XA_MAX_LEVELS (XA_MAX_SHIFT / XA_CHUNK_SHIFT + 1)

/* Internal entries: low bits 10. Node pointers are above this limit, siblings below. */
#define XA_INTERNAL_LIMIT 4096UL
#define XA__FLAG_MARK(m) (1U << (m))
#define XA__FLAG_MARKS (XA__FLAG_MARK(0) | XA__FLAG_MARK(1) | XA__FLAG_MARK(2))

/**
 * struct xa_node - one node of the tree: 2^XA_CHUNK_SHIFT slots.
 *
 * Readers read only xa_shift (of the root), xa_slots and xa_marks, with atomic
 * loads; every other field is written and read under the array lock.
 * The slots come first: nodes are XA_NODE_ALIGN (64) aligned, so the slots of an
 * aligned multi-index entry of up to 8 indices share one cache line, and a walk that
 * meets a sibling finds the canonical slot in the line it has just read (behind a
 * 40-byte header, every other group of 4 slots and every group of 8 straddled two
 * lines: memdesc-mtwork's free walked into a second line on a third of its frees).
 */
struct xa_node {
	void *xa_slots[XA_CHUNK_SIZE];	/* entries, child nodes (internal), siblings */
	unsigned char xa_shift;		/* index bits below this node's slots */
	unsigned char xa_offset;	/* slot of this node in its parent */
	unsigned char xa_count;		/* non-NULL slots, siblings included */
	struct xa_node *xa_parent;	/* NULL for the root; next node on free lists */
	const struct xa_node_ops *xa_ops;	/* where the node goes back to */
	struct rcu_head xa_rcu;		/* for call_rcu when the node is freed */
	/* Bit i of mark m: slot i holds an entry with mark m, or a node below which an
	 * entry has it. Sibling and NULL slots never carry a mark bit. */
	unsigned long xa_marks[XA_MAX_MARKS];
};

/* ---- entry encoding --------------------------------------------------------- */

static inline void *xa__mk_internal(unsigned long v)
{
	return (void *)((v << 2) | 2UL);
}

static inline unsigned long xa__to_internal(const void *entry)
{
	return (unsigned long)entry >> 2;
}

static inline bool xa__is_internal(const void *entry)
{
	return ((uintptr_t)entry & 3U) == 2U;
}

static inline void *xa__mk_err(int err)
{
	return (void *)(((unsigned long)(long)err << 2) | 2UL);
}

static inline bool xa__is_node(const void *entry)
{
	return xa__is_internal(entry) && (uintptr_t)entry > XA_INTERNAL_LIMIT &&
	       !xa_is_err(entry);
}

static inline struct xa_node *xa__to_node(const void *entry)
{
	return (struct xa_node *)((uintptr_t)entry - 2U);
}

static inline void *xa__mk_node(const struct xa_node *node)
{
	return (void *)((uintptr_t)node | 2U);
}

static inline bool xa__is_sibling(const void *entry)
{
	return xa__is_internal(entry) && (uintptr_t)entry < XA_INTERNAL_LIMIT;
}

static inline void *xa__mk_sibling(unsigned int offset)
{
	return xa__mk_internal(offset);
}

static inline unsigned int xa__to_sibling(const void *entry)
{
	return (unsigned int)xa__to_internal(entry);
}

/* ---- index arithmetic (no shift by 64 anywhere) ------------------------------ */

/* Indices covered below one slot of a node of this shift, minus one. */
static inline unsigned long xa__slot_mask(unsigned int shift)
{
	return shift >= XA_BITS_PER_LONG ? ULONG_MAX : (1UL << shift) - 1;
}

/* The highest index a node of this shift can hold as the root. */
static inline unsigned long xa__node_max(unsigned int shift)
{
	if (shift + XA_CHUNK_SHIFT >= XA_BITS_PER_LONG)
		return ULONG_MAX;
	return (1UL << (shift + XA_CHUNK_SHIFT)) - 1;
}

/* The first index of the block of 2^order indices that holds @index. */
static inline unsigned long xa__order_base(unsigned long index, unsigned int order)
{
	return index & ~xa__slot_mask(order);
}

/* The shift of the nodes that hold an entry of this order. */
static inline unsigned int xa__order_shift(unsigned int order)
{
	unsigned int shift = order - order % XA_CHUNK_SHIFT;

	return shift > XA_MAX_SHIFT ? XA_MAX_SHIFT : shift;
}

/* The smallest root shift whose node can hold @max. */
static inline unsigned int xa__shift_for(unsigned long max)
{
	unsigned int shift = 0;

	while (shift < XA_MAX_SHIFT && (max >> shift) > XA_CHUNK_MASK)
		shift += XA_CHUNK_SHIFT;
	return shift;
}

/* ---- atomic slot access ------------------------------------------------------ */

static inline void *xa__slot_acquire(const struct xa_node *node, unsigned int offset)
{
	return __atomic_load_n(&node->xa_slots[offset], __ATOMIC_ACQUIRE);
}

static inline void xa__slot_publish(struct xa_node *node, unsigned int offset, void *entry)
{
	__atomic_store_n(&node->xa_slots[offset], entry, __ATOMIC_RELEASE);
}

static inline void *xa__head_acquire(const struct xarray *xa)
{
	return __atomic_load_n(&xa->xa_head, __ATOMIC_ACQUIRE);
}

static inline unsigned long xa__marks_load(const struct xa_node *node, xa_mark_t mark)
{
	return __atomic_load_n(&node->xa_marks[mark], __ATOMIC_RELAXED);
}

static inline unsigned int xa__flags_load(const struct xarray *xa)
{
	return __atomic_load_n(&xa->xa_flags, __ATOMIC_RELAXED);
}

static inline bool xa__mark_valid(xa_mark_t mark)
{
	return mark < XA_MAX_MARKS;
}

/* Where an entry sits: the node (NULL: the head), its canonical slot and slot count. */
struct xa__pos {
	struct xa_node *node;
	unsigned int offset;
	unsigned int nslots;
};

/*
 * Resolve a slot to its canonical slot: a sibling names the slot of its entry.
 * Readers use it too: siblings always point to a lower offset, so it ends.
 */
static inline unsigned int xa__canonical(const struct xa_node *node, unsigned int offset,
					 void **entryp)
{
	void *entry = xa__slot_acquire(node, offset);

	while (xa__is_sibling(entry)) {
		offset = xa__to_sibling(entry);
		entry = xa__slot_acquire(node, offset);
	}
	*entryp = entry;
	return offset;
}

/*
 * RCU read side, with the TSan annotation explained in xarray.c (section 5): every
 * read-side section ends with a release on xa__tsan_gp, and the callback that frees
 * nodes after a grace period acquires it.
 */
extern char xa__tsan_gp;
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define XA__TSAN_RELEASE(addr) __tsan_release(addr)
#define XA__TSAN_ACQUIRE(addr) __tsan_acquire(addr)
#else
#define XA__TSAN_RELEASE(addr) ((void)(addr))
#define XA__TSAN_ACQUIRE(addr) ((void)(addr))
#endif

static inline void xa__rcu_read_lock(void)
{
	urcu_bp_read_lock();
}

static inline void xa__rcu_read_unlock(void)
{
	XA__TSAN_RELEASE(&xa__tsan_gp);
	urcu_bp_read_unlock();
}

/* Reader side: the entry in a slot, siblings followed (see xarray.c, section 4). */
void *xa__read_slot(const struct xa_node *node, unsigned int offset, unsigned int *canon);

/* Writer-side lookup under the lock: the entry covering @index and its position. */
void *xa__lookup_locked(struct xarray *xa, unsigned long index, struct xa__pos *pos);
/* The number of slots of the entry whose canonical slot is @offset. */
unsigned int xa__entry_nslots(const struct xa_node *node, unsigned int offset);
/* Set or clear a mark bit of a slot and fix the bits above it. Lock held. */
void xa__node_set_mark(struct xarray *xa, struct xa_node *node, unsigned int offset,
		       xa_mark_t mark);
void xa__node_clear_mark(struct xarray *xa, struct xa_node *node, unsigned int offset,
			 xa_mark_t mark);
/* MEMDESC_DEBUG: check the nodes on the path to @index; aborts if broken. Lock held. */
void xa__verify_path(struct xarray *xa, unsigned long index);
/* The array's lock. */
void xa__lock(struct xarray *xa);
void xa__unlock(struct xarray *xa);

#endif /* MEMDESC_XARRAY_IMPL_H */
