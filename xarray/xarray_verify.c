/*
 * xarray_verify.c: the XArray's invariant walker (xa_verify) and the cheaper check of
 * one path that MEMDESC_DEBUG builds run after every store. The invariants are listed
 * in section 1.5 at the top of xarray.c; each failure is printed with the node, the
 * slot and what is wrong.
 */
#include "xarray_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct xa__vstate {
	struct xarray *xa;
	unsigned long nodes;	/* nodes seen */
	unsigned int errors;
};

#define XA__BAD(vs, ...)                                                               \
	do {                                                                           \
		fprintf(stderr, "xa_verify(%p): ", (void *)(vs)->xa);                      \
		fprintf(stderr, __VA_ARGS__);                                              \
		fputc('\n', stderr);                                                   \
		(vs)->errors++;                                                        \
	} while (0)

/* Whether a multi-slot entry of @n slots at @canon of a node of @shift is canonical. */
static bool xa__run_valid(unsigned int shift, unsigned int canon, unsigned int n)
{
	unsigned int order;

	if (n & (n - 1) || canon % n)
		return false;
	order = shift + (unsigned int)__builtin_ctz(n);
	return order <= XA_BITS_PER_LONG && xa__order_shift(order) == shift;
}

/* The slots of @node: entries, siblings, counts, mark bits of non-node slots. */
static void xa__verify_slots(struct xa__vstate *vs, const struct xa_node *node)
{
	unsigned int count = 0;

	for (unsigned int i = 0; i < XA_CHUNK_SIZE; i++) {
		void *entry = node->xa_slots[i];
		bool marked = false;

		for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
			marked |= (node->xa_marks[m] >> i) & 1UL;
		if (entry)
			count++;
		if (!entry || xa__is_sibling(entry)) {
			if (marked)
				XA__BAD(vs, "node %p slot %u: mark bit on an empty or sibling slot",
					(void *)node, i);
		}
		if (xa__is_sibling(entry)) {
			unsigned int canon = xa__to_sibling(entry);

			if (canon >= i || !node->xa_slots[canon] ||
			    xa__is_internal(node->xa_slots[canon]))
				XA__BAD(vs, "node %p slot %u: sibling of slot %u, which holds %p",
					(void *)node, i, canon,
					canon < XA_CHUNK_SIZE ? node->xa_slots[canon] : NULL);
			else if (i > canon + 1 && node->xa_slots[i - 1] != entry)
				XA__BAD(vs, "node %p slot %u: sibling run of slot %u broken",
					(void *)node, i, canon);
			continue;
		}
		if (xa__is_internal(entry) && !xa__is_node(entry)) {
			XA__BAD(vs, "node %p slot %u: bad internal entry %p", (void *)node, i,
				entry);
			continue;
		}
		if (entry && !xa__is_node(entry)) {
			unsigned int n = xa__entry_nslots(node, i);

			if (!xa__run_valid(node->xa_shift, i, n))
				XA__BAD(vs, "node %p slot %u: entry of %u slots at shift %u is not "
					"a canonical multi-index entry", (void *)node, i, n,
					node->xa_shift);
		}
	}
	if (count != node->xa_count)
		XA__BAD(vs, "node %p: count %u, %u slots in use", (void *)node, node->xa_count,
			count);
	if (count == 0 && !(vs->xa->xa_flags & XA_FLAGS_KEEP_NODES))
		XA__BAD(vs, "node %p: empty node in the tree", (void *)node);
	for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
		if (XA_CHUNK_SIZE < XA_BITS_PER_LONG && node->xa_marks[m] >> XA_CHUNK_SIZE)
			XA__BAD(vs, "node %p: mark %u bits beyond the slots", (void *)node, m);
}

/* The link between @node and its parent, and its shift. */
static void xa__verify_link(struct xa__vstate *vs, const struct xa_node *node,
			    const struct xa_node *parent, unsigned int offset, unsigned int shift)
{
	if ((uintptr_t)node & (XA_NODE_ALIGN - 1))
		XA__BAD(vs, "node %p: misaligned", (void *)node);
	if (node->xa_parent != parent || (parent && node->xa_offset != offset))
		XA__BAD(vs, "node %p: parent %p offset %u, expected %p offset %u", (void *)node,
			(void *)node->xa_parent, node->xa_offset, (void *)parent, offset);
	if (node->xa_shift != shift || shift % XA_CHUNK_SHIFT || shift > XA_MAX_SHIFT)
		XA__BAD(vs, "node %p: shift %u, expected %u", (void *)node, node->xa_shift, shift);
}

/* The mark bit of child slot @i of @node against the child's own bits. */
static void xa__verify_child_marks(struct xa__vstate *vs, const struct xa_node *node,
				   unsigned int i, const struct xa_node *child)
{
	for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++) {
		bool bit = (node->xa_marks[m] >> i) & 1UL;

		if (bit != (child->xa_marks[m] != 0))
			XA__BAD(vs, "node %p slot %u: mark %u bit %d, child %p has bits %#lx",
				(void *)node, i, m, bit, (void *)child, child->xa_marks[m]);
	}
}

static void xa__verify_node(struct xa__vstate *vs, const struct xa_node *node,
			    const struct xa_node *parent, unsigned int offset, unsigned int shift,
			    unsigned int depth)
{
	vs->nodes++;
	if (depth > XA_MAX_LEVELS) {
		XA__BAD(vs, "node %p: deeper than %u levels", (void *)node, XA_MAX_LEVELS);
		return;
	}
	xa__verify_link(vs, node, parent, offset, shift);
	xa__verify_slots(vs, node);
	for (unsigned int i = 0; i < XA_CHUNK_SIZE; i++) {
		void *entry = node->xa_slots[i];

		if (!xa__is_node(entry))
			continue;
		if (shift == 0) {
			XA__BAD(vs, "node %p slot %u: node below shift 0", (void *)node, i);
			continue;
		}
		xa__verify_child_marks(vs, node, i, xa__to_node(entry));
		xa__verify_node(vs, xa__to_node(entry), node, i, shift - XA_CHUNK_SHIFT,
				depth + 1);
	}
}

/* The root: marks against xa_flags, and the root cannot shrink (invariant e). */
static void xa__verify_root(struct xa__vstate *vs, const struct xa_node *root)
{
	void *first = root->xa_slots[0];

	for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++) {
		bool flag = vs->xa->xa_flags & XA__FLAG_MARK(m);

		if (flag != (root->xa_marks[m] != 0))
			XA__BAD(vs, "root %p: mark %u flag %d, root bits %#lx", (void *)root, m,
				flag, root->xa_marks[m]);
	}
	if (root->xa_count == 1 && first &&
	    (xa__is_node(first) || root->xa_shift == 0))
		XA__BAD(vs, "root %p: shift %u with only slot 0 (%p) in use: should shrink",
			(void *)root, root->xa_shift, first);
}

/**
 * xa_verify() - check every invariant of the array.
 * @xa: the array.
 * Context: takes the lock; O(nodes).
 * Return: 0, or -EINVAL after printing each broken invariant to stderr.
 */
int xa_verify(struct xarray *xa)
{
	struct xa__vstate vs = { .xa = xa };
	void *head;

	xa__lock(xa);
	head = xa->xa_head;
	if (xa__is_node(head)) {
		const struct xa_node *root = xa__to_node(head);

		xa__verify_node(&vs, root, NULL, 0, root->xa_shift, 0);
		xa__verify_root(&vs, root);
	} else if (xa__is_internal(head)) {
		XA__BAD(&vs, "head holds internal entry %p", head);
	} else if (!head && (xa->xa_flags & XA__FLAG_MARKS)) {
		XA__BAD(&vs, "empty array with mark flags %#x", xa->xa_flags);
	}
	if (vs.nodes != xa->xa_nr_nodes)
		XA__BAD(&vs, "%lu nodes in the tree, xa_nr_nodes says %lu", vs.nodes,
			xa->xa_nr_nodes);
	xa__unlock(xa);
	return vs.errors ? -EINVAL : 0;
}

/*
 * The local invariants of the nodes on the path to @index (MEMDESC_DEBUG builds, after
 * every store): O(height * slots) instead of O(nodes). Lock held; aborts on failure.
 */
void xa__verify_path(struct xarray *xa, unsigned long index)
{
	struct xa__vstate vs = { .xa = xa };
	void *entry = xa->xa_head;
	const struct xa_node *parent = NULL;
	unsigned int offset = 0;

	if (xa__is_node(entry))
		xa__verify_root(&vs, xa__to_node(entry));
	while (xa__is_node(entry) && !vs.errors) {
		const struct xa_node *node = xa__to_node(entry);

		xa__verify_link(&vs, node, parent, offset,
				parent ? parent->xa_shift - XA_CHUNK_SHIFT : node->xa_shift);
		xa__verify_slots(&vs, node);
		if ((index >> node->xa_shift) > XA_CHUNK_MASK && parent)
			XA__BAD(&vs, "node %p: index %#lx outside", (void *)node, index);
		if ((index >> node->xa_shift) > XA_CHUNK_MASK)
			break;
		offset = (unsigned int)(index >> node->xa_shift) & XA_CHUNK_MASK;
		entry = node->xa_slots[offset];
		while (xa__is_sibling(entry))
			entry = node->xa_slots[xa__to_sibling(entry)];
		if (xa__is_node(entry))
			xa__verify_child_marks(&vs, node, offset, xa__to_node(entry));
		parent = node;
		index &= xa__slot_mask(node->xa_shift);
	}
	if (vs.errors) {
		fprintf(stderr, "xarray: %u broken invariants after a store\n", vs.errors);
		abort();
	}
}
