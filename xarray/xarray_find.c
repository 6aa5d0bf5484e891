/*
 * xarray_find.c: searching the XArray (xa_find, xa_find_after, the iterators) and its
 * marks (xa_set_mark, xa_clear_mark, xa_get_mark). The theory is at the top of
 * xarray.c; searches are RCU readers (section 4), marks are set under the lock.
 *
 * A search walks down from the root towards its start index. In a node it looks for
 * the first candidate slot at or after the start's slot: a non-NULL slot, or for a
 * marked search a slot whose mark bit is set (one word test per node). A candidate
 * node is entered; a candidate entry is the answer. When a node has no candidate the
 * search starts again from the root at the first index after that node: readers do
 * not follow parent pointers, which writers change. Every restart moves past at least
 * one node, so a search costs O(height) per node it leaves.
 */
#include "xarray_impl.h"

#include <errno.h>

/* Whether the entry in canonical slot @canon of @node passes @filter. */
static bool xa__match(const struct xa_node *node, unsigned int canon, const void *entry,
		      xa_mark_t filter)
{
	if (!entry || xa__is_internal(entry))
		return false;
	if (filter == XA_PRESENT)
		return true;
	return (xa__marks_load(node, filter) >> canon) & 1UL;
}

/* The first slot >= @offset that may hold a candidate, or XA_CHUNK_SIZE. */
static unsigned int xa__next_candidate(const struct xa_node *node, unsigned int offset,
				       xa_mark_t filter)
{
	if (filter == XA_PRESENT) {
		while (offset < XA_CHUNK_SIZE && !xa__slot_acquire(node, offset))
			offset++;
		return offset;
	}
	if (offset >= XA_CHUNK_SIZE)
		return XA_CHUNK_SIZE;
	unsigned long bits = xa__marks_load(node, filter) >> offset;

	return bits ? offset + (unsigned int)__builtin_ctzl(bits) : XA_CHUNK_SIZE;
}

/*
 * The first entry passing @filter that covers an index in [@start, @max]; *@found gets
 * the first index of the entry inside the range. Inside a read-side section.
 */
static void *xa__find_rcu(struct xarray *xa, unsigned long start, unsigned long max,
			  xa_mark_t filter, unsigned long *found)
{
	unsigned long index = start;

	if (filter != XA_PRESENT && !(xa__flags_load(xa) & XA__FLAG_MARK(filter)))
		return NULL;
restart:;
	void *head = xa__head_acquire(xa);
	const struct xa_node *node;
	unsigned int shift;

	if (!xa__is_node(head)) {
		if (!head || index != 0)
			return NULL;
		if (filter != XA_PRESENT && !(xa__flags_load(xa) & XA__FLAG_MARK(filter)))
			return NULL;
		*found = 0;
		return head;
	}
	node = xa__to_node(head);
	shift = node->xa_shift;
	if ((index >> shift) > XA_CHUNK_MASK)
		return NULL;
	for (;;) {
		unsigned long base = index & ~xa__node_max(shift);
		unsigned int offset = (unsigned int)(index >> shift) & XA_CHUNK_MASK;
		unsigned int canon, cand;
		void *entry = xa__read_slot(node, offset, &canon);
		void *child = NULL;

		/* An entry that starts before @index and covers it. */
		if (canon != offset) {
			if (xa__match(node, canon, entry, filter)) {
				*found = index;
				return entry;
			}
			cand = xa__next_candidate(node, offset + 1, filter);
		} else {
			cand = xa__next_candidate(node, offset, filter);
		}
		for (; cand < XA_CHUNK_SIZE; cand = xa__next_candidate(node, cand + 1, filter)) {
			unsigned long slot_base = base + ((unsigned long)cand << shift);

			if (cand != offset && slot_base > max)
				return NULL;
			entry = xa__read_slot(node, cand, &canon);
			if (canon != cand)
				continue;	/* a sibling of an entry already passed */
			if (xa__is_node(entry)) {
				child = entry;
				break;
			}
			if (xa__match(node, canon, entry, filter)) {
				*found = cand == offset ? index : slot_base;
				return entry;
			}
		}
		if (child) {
			if (cand != offset)
				index = base + ((unsigned long)cand << shift);
			node = xa__to_node(child);
			shift -= XA_CHUNK_SHIFT;
			continue;
		}
		/* Nothing left in this node: from the root again, after it. */
		if (xa__node_max(shift) == ULONG_MAX || base + xa__node_max(shift) >= max)
			return NULL;
		index = base + xa__node_max(shift) + 1;
		goto restart;
	}
}

/**
 * xa_find() - the first entry at or after an index.
 * @xa: the array.
 * @index: in: the first index to look at; out: where the entry was found.
 * @max: the last index to look at.
 * @filter: XA_PRESENT for any entry, or a mark.
 *
 * A multi-index entry that covers *@index is found with *@index unchanged; one that
 * starts after it sets *@index to its first index.
 * Context: any; takes no lock (an RCU read-side section inside).
 * Return: the entry, or NULL (then *@index is unchanged); NULL for a bad @filter.
 */
void *xa_find(struct xarray *xa, unsigned long *index, unsigned long max, xa_mark_t filter)
{
	unsigned long found;
	void *entry;

	if ((filter != XA_PRESENT && !xa__mark_valid(filter)) || *index > max)
		return NULL;
	xa__rcu_read_lock();
	entry = xa__find_rcu(xa, *index, max, filter, &found);
	xa__rcu_read_unlock();
	if (entry)
		*index = found;
	return entry;
}

/*
 * The last index of the entry covering @index, or @index if there is none. Inside a
 * read-side section.
 */
static unsigned long xa__entry_last_rcu(struct xarray *xa, unsigned long index)
{
	void *entry = xa__head_acquire(xa);
	const struct xa_node *node;
	unsigned int shift;

	if (!xa__is_node(entry))
		return index;
	node = xa__to_node(entry);
	shift = node->xa_shift;
	if ((index >> shift) > XA_CHUNK_MASK)
		return index;
	for (;;) {
		unsigned int offset = (unsigned int)(index >> shift) & XA_CHUNK_MASK;
		unsigned int canon, n = 1;

		entry = xa__read_slot(node, offset, &canon);
		if (xa__is_node(entry)) {
			node = xa__to_node(entry);
			shift -= XA_CHUNK_SHIFT;
			continue;
		}
		if (!entry)
			return index;
		while (canon + n < XA_CHUNK_SIZE &&
		       xa__slot_acquire(node, canon + n) == xa__mk_sibling(canon))
			n++;
		if (canon + n - 1 < offset)
			return index;	/* changed under us: the entry no longer covers @index */
		return (index & ~xa__node_max(shift)) +
		       ((unsigned long)canon << shift) +
		       (((unsigned long)n << shift) - 1);
	}
}

/**
 * xa_find_after() - the first entry after an index.
 * @xa: the array.
 * @index: in: the index of the previous entry; out: where the entry was found.
 * @max: the last index to look at.
 * @filter: XA_PRESENT for any entry, or a mark.
 *
 * The entry covering *@index (all of it, if multi-index) is skipped.
 * Context: any; takes no lock (an RCU read-side section inside).
 * Return: the entry, or NULL (then *@index is unchanged); NULL for a bad @filter.
 */
void *xa_find_after(struct xarray *xa, unsigned long *index, unsigned long max,
		    xa_mark_t filter)
{
	unsigned long found, last;
	void *entry = NULL;

	if (filter != XA_PRESENT && !xa__mark_valid(filter))
		return NULL;
	xa__rcu_read_lock();
	last = xa__entry_last_rcu(xa, *index);
	if (last < max)
		entry = xa__find_rcu(xa, last + 1, max, filter, &found);
	xa__rcu_read_unlock();
	if (entry)
		*index = found;
	return entry;
}

/**
 * xa_set_mark() - set a mark on the entry at an index.
 * @xa: the array.
 * @index: any index of the entry; nothing happens at an empty index.
 * @mark: XA_MARK_0..XA_MARK_2; other values do nothing.
 * Context: takes the lock; never allocates.
 */
void xa_set_mark(struct xarray *xa, unsigned long index, xa_mark_t mark)
{
	struct xa__pos pos;

	if (!xa__mark_valid(mark))
		return;
	xa__lock(xa);
	if (xa__lookup_locked(xa, index, &pos)) {
		if (pos.node)
			xa__node_set_mark(xa, pos.node, pos.offset, mark);
		else
			__atomic_store_n(&xa->xa_flags, xa->xa_flags | XA__FLAG_MARK(mark),
					 __ATOMIC_RELAXED);
	}
	xa__unlock(xa);
}

/**
 * xa_clear_mark() - clear a mark of the entry at an index.
 * @xa: the array.
 * @index: any index of the entry.
 * @mark: XA_MARK_0..XA_MARK_2; other values do nothing.
 * Context: takes the lock; never allocates.
 */
void xa_clear_mark(struct xarray *xa, unsigned long index, xa_mark_t mark)
{
	struct xa__pos pos;

	if (!xa__mark_valid(mark))
		return;
	xa__lock(xa);
	if (xa__lookup_locked(xa, index, &pos)) {
		if (pos.node)
			xa__node_clear_mark(xa, pos.node, pos.offset, mark);
		else
			__atomic_store_n(&xa->xa_flags, xa->xa_flags & ~XA__FLAG_MARK(mark),
					 __ATOMIC_RELAXED);
	}
	xa__unlock(xa);
}

/**
 * xa_get_mark() - whether the entry at an index has a mark.
 * @xa: the array.
 * @index: any index of the entry.
 * @mark: XA_MARK_0..XA_MARK_2.
 * Context: any; takes no lock (an RCU read-side section inside).
 * Return: true if there is an entry and it has @mark; false otherwise or for a bad
 * @mark.
 */
bool xa_get_mark(struct xarray *xa, unsigned long index, xa_mark_t mark)
{
	bool marked = false;
	void *entry;

	if (!xa__mark_valid(mark))
		return false;
	xa__rcu_read_lock();
	entry = xa__head_acquire(xa);
	if (!xa__is_node(entry)) {
		marked = entry && index == 0 && (xa__flags_load(xa) & XA__FLAG_MARK(mark));
	} else {
		const struct xa_node *node = xa__to_node(entry);
		unsigned int shift = node->xa_shift;

		while ((index >> shift) <= XA_CHUNK_MASK) {
			unsigned int offset = (unsigned int)(index >> shift) & XA_CHUNK_MASK;
			unsigned int canon;

			entry = xa__read_slot(node, offset, &canon);
			if (!xa__is_node(entry)) {
				marked = entry && ((xa__marks_load(node, mark) >> canon) & 1UL);
				break;
			}
			node = xa__to_node(entry);
			shift -= XA_CHUNK_SHIFT;
			index &= xa__node_max(shift);
		}
	}
	xa__rcu_read_unlock();
	return marked;
}
