/*
 * xarray_rcu.h: xa_load_rcu(), the read walk of xa_load() inline, for a hot path that
 * already runs inside an RCU read-side section of its own (memdesc's pfn_to_memdesc()
 * under malloc's entry section). It saves the nested read lock, the unlock and two
 * calls per lookup; the walk is the one xa_load() runs (it calls this function).
 *
 * Including this header brings in the node layout (xarray_impl.h): only code that
 * needs the walk inline should include it. Built with the default node shift only
 * (the small-shift test builds of the XArray compile their own copy).
 */
#ifndef MEMDESC_XARRAY_RCU_H
#define MEMDESC_XARRAY_RCU_H

#include "xarray_impl.h"

/**
 * xa_load_rcu() - the entry at @index, inside the caller's RCU read-side section.
 * @xa: the array.
 * @index: any index.
 *
 * Context: the caller holds urcu_bp_read_lock() (it keeps the nodes it walks alive)
 * and, in TSan builds, states the end of its section for xa__tsan_gp the way
 * xa__rcu_read_unlock() does (xarray.c, section 5): this function does it after the
 * walk, so a caller needs nothing more. Takes no lock.
 * Return: the entry (a multi-index entry for each of its indices), or NULL.
 */
static inline void *xa_load_rcu(const struct xarray *xa, unsigned long index)
{
	void *entry = xa__head_acquire(xa);
	const struct xa_node *node;
	unsigned int shift;

	if (!xa__is_internal(entry)) {
		entry = index ? NULL : entry;
		goto out;
	}
	node = xa__to_node(entry);
	shift = node->xa_shift;
	if (__builtin_expect((index >> shift) > XA_CHUNK_MASK, 0)) {
		entry = NULL;
		goto out;
	}
	for (;;) {
		unsigned int offset = (unsigned int)(index >> shift) & XA_CHUNK_MASK;

		entry = xa__slot_acquire(node, offset);
		if ((uintptr_t)entry < XA_INTERNAL_LIMIT && xa__is_internal(entry)) {
			/*
			 * A sibling: the entry is in the canonical slot it names, if our slot
			 * still holds the sibling after that read (xarray.c, section 4); a node
			 * there or a changed slot: xa__read_slot() re-reads.
			 */
			void *canon = xa__slot_acquire(node, xa__to_sibling(entry));
			unsigned int at;

			if (!xa__is_internal(canon) && xa__slot_acquire(node, offset) == entry)
				entry = canon;
			else
				entry = xa__read_slot(node, offset, &at);
		}
		if (!xa__is_internal(entry))
			break;
		node = xa__to_node(entry);
		shift -= XA_CHUNK_SHIFT;
	}
out:
	XA__TSAN_RELEASE(&xa__tsan_gp);
	return entry;
}

/**
 * xa_load_rcu_value() - the value entry at @index, for a fast path that has a general
 * one (xa_load_rcu) to fall back on.
 * @xa: the array.
 * @index: any index.
 *
 * The walk of xa_load_rcu() cut to what an array of value entries needs (memdesc's page
 * map: free()'s fast path): nodes, then a value entry, directly or through a sibling
 * that still names it after its canonical slot was read (xa_load_rcu's check). Anything
 * else ends the walk with NULL where xa_load_rcu() would go on: a pointer entry, a
 * sibling whose slot changed or whose canonical slot holds a node (xa_load_rcu then
 * calls xa__read_slot). So it makes no call, and a caller that makes none either
 * needs no callee-saved register; each level costs a load and three tests.
 * Context: as xa_load_rcu().
 * Return: the value entry, or NULL (none there, or not found this way).
 */
static inline void *xa_load_rcu_value(const struct xarray *xa, unsigned long index)
{
	void *entry = xa__head_acquire(xa);
	const struct xa_node *node;
	unsigned long offset;
	unsigned int shift;

	if (!xa__is_internal(entry)) {
		if (index == 0 && xa_is_value(entry))
			goto out;	/* an array of one entry at 0 */
		goto none;
	}
	node = xa__to_node(entry);
	shift = node->xa_shift;
	offset = index >> shift;
	if (__builtin_expect(offset > XA_CHUNK_MASK, 0))
		goto none;
	for (;;) {
		entry = xa__slot_acquire(node, (unsigned int)offset);
		if (__builtin_expect(xa_is_value(entry), 1))
			goto out;
		/* Not a value: internal (low bits 10) or NULL or a pointer (00). */
		if (!((uintptr_t)entry & 2))
			goto none;
		if ((uintptr_t)entry < XA_INTERNAL_LIMIT) {
			/*
			 * The canonical slot xa__to_sibling(entry) names: entry is 4 * offset + 2
			 * (low bits 10, tested above), so its slot is 2 * (entry - 2) bytes into
			 * xa_slots, which gcc folds into the load's address.
			 */
			void *const *cslot = (void *const *)((const char *)node->xa_slots +
							     ((uintptr_t)entry - 2) * 2);
			void *canon = __atomic_load_n(cslot, __ATOMIC_ACQUIRE);

			if (!xa_is_value(canon) ||
			    xa__slot_acquire(node, (unsigned int)offset) != entry)
				goto none;
			entry = canon;
			goto out;
		}
		node = xa__to_node(entry);
		shift -= XA_CHUNK_SHIFT;
		offset = (index >> shift) & XA_CHUNK_MASK;
	}
none:
	entry = NULL;
out:
	XA__TSAN_RELEASE(&xa__tsan_gp);
	return entry;
}

#endif /* MEMDESC_XARRAY_RCU_H */
