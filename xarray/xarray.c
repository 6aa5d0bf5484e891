/*
 * xarray.c: the core of the XArray: nodes and their reserve, the lock-free load, and
 * every store (store, erase, insert, cmpxchg, store_order, store_range, split).
 * Searching and marks are in xarray_find.c, the invariant walker in xarray_verify.c.
 *
 * Conventions (after Linux lib/xarray.c): @xa is the array; "locked" functions expect
 * xa->xa_lock held; "rcu" functions expect an RCU read-side section; a "slot" is one of
 * a node's 2^XA_CHUNK_SHIFT pointers; an "entry" is what a user stored.
 *
 * 1. Big theory statement
 * -----------------------
 * 1.1 Overview. An XArray is a radix tree over the 64 bits of an index. Each node has
 * 2^XA_CHUNK_SHIFT (64) slots and a shift: the number of index bits below its slots, a
 * multiple of XA_CHUNK_SHIFT. Slot i of a node with shift s covers the indices whose
 * bits s..s+5 are i. The root (xa_head) is the node with the largest shift; the tree is
 * exactly as tall as its highest index needs (xa__shift_for) and no taller.
 *
 * 1.2 Entries and their encoding. A slot, and xa_head, holds one word:
 *	...00  a user pointer (NULL is the empty slot)
 *	...x1  a user value entry (xa_mk_value)
 *	...10  internal: a child node (the node's address | 2, above 4096), a sibling
 *	       (slot number << 2 | 2, below 4096), or, only in return values, an error
 *	       (-errno << 2 | 2, the top 4095 words of the address space).
 * Users may not store internal entries: a store of one fails with -EINVAL.
 * When xa_head is not a node it is the entry of index 0 and nothing else exists.
 *
 * 1.3 Multi-index entries. An entry of order k covers the aligned block of 2^k
 * indices. It lives in the node of shift s = k - k % XA_CHUNK_SHIFT (at most
 * XA_MAX_SHIFT) and takes 2^(k - s) consecutive, aligned slots: the first (canonical)
 * slot holds the entry, the others hold sibling entries naming the canonical slot. So
 * an order-9 entry is 8 slots of a shift-6 node, an order-12 entry one slot of a
 * shift-12 node, and the whole index space (order 64) 16 slots of the root.
 * xa_store_range covers [first, last] with the fewest aligned blocks: at most two
 * per power of two, fewer than 128 in all.
 *
 * A store whose block lies inside a larger multi-index entry acts on that whole entry
 * (as in Linux): the larger entry keeps its extent and gets the new value (or goes
 * away, for NULL). A store whose block covers smaller entries or whole subtrees
 * replaces them all. A non-NULL store keeps the marks: the new entry has mark m if
 * any entry it replaces had it (Linux's squashing of marks); a NULL store clears them.
 *
 * 1.4 Marks. Each node has one bitmap per mark (3 marks). Bit i set means: slot i holds
 * an entry with that mark, or a child node under which some entry has it. Only
 * canonical slots carry bits. The array's xa_flags has one bit per mark: some entry
 * in the array has it. So a marked search skips unmarked subtrees in one word test.
 *
 * 1.5 Invariants (checked by xa_verify, xarray_verify.c).
 *	(a) A node's xa_count is the number of its non-NULL slots (siblings included), and
 *	    no node in the tree is empty (unless the array has XA_FLAGS_KEEP_NODES).
 *	(b) A child's shift is its parent's minus XA_CHUNK_SHIFT; parent/offset match.
 *	(c) Siblings follow their canonical slot, which holds a non-NULL user entry; a run
 *	    is a power of two long, aligned, and shorter than the node unless the node is
 *	    the root with shift XA_MAX_SHIFT (the only place an order-64 entry fits).
 *	(d) Mark bits exactly as in 1.4; xa_flags agrees with the root.
 *	(e) The root cannot shrink: it does not have one slot only, slot 0, holding a node
 *	    (or, for a shift-0 root, holding an order-0 entry).
 *	(f) xa_nr_nodes counts the nodes reachable from xa_head.
 * MEMDESC_DEBUG builds check (a)-(e) on the nodes along the path of every store and
 * split (xa__verify_path), which keeps the cost O(height * slots) per operation.
 *
 * 2. Locking
 * ----------
 * Writers take xa_lock, a pthread mutex (no allocation, no syscall uncontended). The
 * lock is never held while calling the node hook: a store first counts, under the
 * lock, how many new nodes it needs (xa__count_nodes: growing the root, then every
 * missing node on the paths of its blocks, shared nodes counted once); if the reserve
 * is short it unlocks, refills the reserve through the hook (xa_reserve), relocks and
 * counts again. Once it proceeds it cannot fail, so a store either happens whole or
 * not at all. Readers take no lock.
 *
 * 3. Memory and the reserve
 * -------------------------
 * Nodes come from xa_node_ops.alloc (default: aligned_alloc) into the array's private
 * reserve (xa_reserve_list), outside the lock. (Each such allocation is the fault-
 * injection point FAULT_XA_NODE, fault/fault.h: armed, it acts as a hook returning NULL.) Under the lock, stores take nodes only
 * from the reserve. The reserve is shared by the array's writers: a caller that must
 * not allocate in a store calls xa_reserve(xa, xa_store_max_nodes(order)) first and
 * makes sure no other writer of the same array consumes the nodes in between.
 * Nodes leave the tree when a store replaces a subtree, when a node empties (it is
 * removed from its parent, recursively; with XA_FLAGS_KEEP_NODES only when xa_prune()
 * finds it empty), and when the root shrinks. Each operation
 * chains the nodes it detached and hands the chain to call_rcu once (xa_node_ops.defer
 * if the hook has one), after dropping the lock; the callback gives them back through
 * xa_node_ops.free. A node never goes
 * back to the reserve: a reader may still be inside it. xa_destroy frees the reserve
 * at once (no reader can know those nodes) and the tree after a grace period.
 * Erasing never needs a node. Splitting needs one node per new subtree node; a split
 * needing more than XA_SPLIT_MAX_NODES fails with -ENOMEM without allocating.
 *
 * 4. RCU and the readers
 * ----------------------
 * xa_load, xa_find, xa_find_after, xa_get_mark and the iterators run in an RCU
 * read-side section of liburcu's "bulletproof" flavour (urcu-bp). xa_load_rcu()
 * (xarray_rcu.h) is xa_load's walk inline, for a caller that holds a section already. It is the flavour
 * for a library: a thread need not register (the first read lock registers it) and
 * need not unregister (a pthread key destructor does it at thread exit). Its read lock
 * is a few instructions inline (_LGPL_SOURCE): a TLS load, a load and a store of the
 * thread's counter, and a compiler barrier when the kernel has membarrier (liburcu
 * then makes the grace period pay the fence). The first read lock of a thread calls
 * urcu_bp_register(): it blocks signals, takes a mutex, and takes a slot of the
 * reader registry, whose chunks come from mmap/mremap, never malloc; it also calls
 * pthread_setspecific, which allocates only for keys beyond the first 32. So a read
 * lock is safe inside malloc. The library is compiled with the initial-exec TLS model,
 * so the reader pointer is one %fs-relative load even in a shared library. Writers
 * publish with release stores and readers read with acquire loads (__atomic), which
 * TSan understands and which cost nothing on x86. Sanitizer builds call liburcu's
 * out-of-line read lock instead (xarray_impl.h says why).
 *
 * What a reader sees: every slot store is one atomic word. A multi-slot store writes
 * the canonical slot first and the siblings after, in ascending order, so a reader that
 * sees a new sibling finds the new entry in its canonical slot. A split to a lower level
 * writes the new child nodes from the last slot down to the canonical one; a reader that
 * followed an old sibling and found a node in the canonical slot re-reads its own slot
 * (xa__read_slot). A reader that followed a sibling also reads its own slot again after
 * the canonical one, and starts over if it changed: the entry the sibling belonged to
 * may have been erased (canonical slot first) and a smaller one stored in the canonical
 * slot, which does not cover the reader's index. The acquire load of the canonical
 * slot orders the second read after the erase of the sibling, so a change is seen
 * (only a complete erase-and-restore of the same sibling in between would hide it, and
 * then the sibling's entry again covers the index). Detached nodes are never written again, so a reader inside one sees
 * the old state. Mark bits are read with relaxed loads: a search may see a mark a moment
 * early or late, never a freed node.
 *
 * liburcu's call_rcu (urcu_bp_call_rcu, the default) mallocs its per-process worker
 * data and creates the worker thread (pthread_create) on its first use, and the worker
 * does not survive fork() and never ends. A malloc built on this array gives it a
 * defer hook of its own instead (memdesc's page map: memdesc/md_rcu.c), so that no
 * node free ever reaches liburcu's worker.
 *
 * 5. TSan
 * -------
 * liburcu is not instrumented, so TSan cannot see that the callback freeing a node runs
 * after every reader that could reach it has left its read-side section; it would call
 * the reader's loads and the free a race. We state that ordering: xa__rcu_read_unlock
 * does __tsan_release(&xa__tsan_gp), a writer does the same before call_rcu, and the
 * callback does __tsan_acquire(&xa__tsan_gp) before freeing (whichever mechanism
 * deferred it: liburcu's call_rcu or a hook's defer). It is exact, not a
 * suppression: a release joins the thread's clock into the address's, so the callback
 * acquires every read-side section that ended before it ran, and the grace period
 * guarantees that these include all the sections that could see the node.
 *
 * 6. Complexity
 * -------------
 * Load: one pass down the tree, height = ceil(bits of the highest index / 6) <= 11;
 * 5 levels for 64M dense entries, and each level reads one slot (the shift of a level
 * is computed, not loaded, so one cache line per level). Store: O(height) plus the
 * slots it rewrites; a store_range O(height * number of blocks + slots). Find: O(height)
 * per entry returned plus the slots scanned, 64 per word for marked searches.
 * Memory: a node is 576 bytes (64 slots, 3 mark words, a header); a dense array costs
 * 9 bytes per index, a multi-index entry of order k at most 64 slots.
 */
#include "xarray_impl.h"
#include "fault.h"
#include "xarray_rcu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char xa__tsan_gp;

/* ---------------------------------------------------------------------------- */
/* Nodes                                                                        */
/* ---------------------------------------------------------------------------- */

static void *xa__libc_alloc(void *priv)
{
	size_t size = (sizeof(struct xa_node) + XA_NODE_ALIGN - 1) & ~(size_t)(XA_NODE_ALIGN - 1);

	(void)priv;
	return aligned_alloc(XA_NODE_ALIGN, size);
}

static void xa__libc_free(void *priv, void *node)
{
	(void)priv;
	free(node);
}

static const struct xa_node_ops xa__libc_ops = {
	.alloc = xa__libc_alloc,
	.free = xa__libc_free,
	.defer = NULL,
	.priv = NULL,
};

static const struct xa_node_ops *xa__ops(const struct xarray *xa)
{
	return xa->xa_ops ? xa->xa_ops : &xa__libc_ops;
}

/**
 * xa_node_size() - the size of one node, for a node hook.
 * Context: any.
 * Return: bytes; a hook's alloc() must return that many, XA_NODE_ALIGN-aligned.
 */
size_t xa_node_size(void)
{
	return sizeof(struct xa_node);
}

static void xa__nr_nodes_add(struct xarray *xa, long delta)
{
	__atomic_store_n(&xa->xa_nr_nodes, xa->xa_nr_nodes + (unsigned long)delta,
			 __ATOMIC_RELAXED);
}

/* Take a node from the reserve and initialise it. The caller counted it. Lock held. */
static struct xa_node *xa__node_take(struct xarray *xa, unsigned int shift,
				     struct xa_node *parent, unsigned int offset)
{
	struct xa_node *node = xa->xa_reserve_list;

	if (!node) {
		fprintf(stderr, "xarray: node reserve of %p ran dry inside a store\n", (void *)xa);
		abort();
	}
	xa->xa_reserve_list = node->xa_parent;
	xa->xa_nr_reserve--;
	memset(node, 0, sizeof(*node));
	node->xa_shift = (unsigned char)shift;
	node->xa_offset = (unsigned char)offset;
	node->xa_parent = parent;
	node->xa_ops = xa__ops(xa);
	xa__nr_nodes_add(xa, 1);
	return node;
}

/* The nodes one operation detached, freed together after a grace period. */
struct xa__freelist {
	struct xa_node *head;
};

static void xa__free_later(struct xarray *xa, struct xa__freelist *fl, struct xa_node *node)
{
	node->xa_parent = fl->head;
	fl->head = node;
	xa__nr_nodes_add(xa, -1);
}

/* Detach a whole subtree: every node below and including @node. Lock held. */
static void xa__free_subtree(struct xarray *xa, struct xa__freelist *fl, struct xa_node *node)
{
	for (unsigned int i = 0; i < XA_CHUNK_SIZE; i++) {
		void *entry = node->xa_slots[i];

		if (xa__is_node(entry))
			xa__free_subtree(xa, fl, xa__to_node(entry));
	}
	xa__free_later(xa, fl, node);
}

static void xa__free_chain_rcu(struct rcu_head *head)
{
	struct xa_node *node = caa_container_of(head, struct xa_node, xa_rcu);

	XA__TSAN_ACQUIRE(&xa__tsan_gp);
	while (node) {
		struct xa_node *next = node->xa_parent;

		node->xa_ops->free(node->xa_ops->priv, node);
		node = next;
	}
}

/*
 * Hand an operation's detached nodes to the hook's defer (default: liburcu's call_rcu).
 * Called without the lock. All nodes of one array share its ops.
 */
static void xa__freelist_flush(struct xa__freelist *fl)
{
	const struct xa_node_ops *ops;

	if (!fl->head)
		return;
	ops = fl->head->xa_ops;
	XA__TSAN_RELEASE(&xa__tsan_gp);
	if (ops->defer)
		ops->defer(&fl->head->xa_rcu, xa__free_chain_rcu);
	else
		urcu_bp_call_rcu(&fl->head->xa_rcu, xa__free_chain_rcu);
	fl->head = NULL;
}

/* ---------------------------------------------------------------------------- */
/* Init, destroy, reserve                                                       */
/* ---------------------------------------------------------------------------- */

/**
 * xa_init_ops() - initialise an empty array whose nodes come from @ops.
 * @xa: the array.
 * @ops: the node hook, or NULL for the C library; it must outlive the array and the
 *	grace period after its last store (urcu_bp_barrier() waits for that, or the
 *	barrier of the hook's own defer).
 * Context: any; nothing may use @xa concurrently.
 */
void xa_init_ops(struct xarray *xa, const struct xa_node_ops *ops)
{
	xa_init_flags(xa, ops, 0);
}

/**
 * xa_init_flags() - xa_init_ops() with XA_FLAGS_* behaviour flags.
 * @xa: the array.
 * @ops: the node hook, or NULL for the C library (as for xa_init_ops()).
 * @flags: 0 or XA_FLAGS_KEEP_NODES.
 * Context: any; nothing may use @xa concurrently.
 */
void xa_init_flags(struct xarray *xa, const struct xa_node_ops *ops, unsigned int flags)
{
	pthread_mutex_init(&xa->xa_lock, NULL);
	xa->xa_flags = flags & XA_FLAGS_KEEP_NODES;
	xa->xa_nr_reserve = 0;
	xa->xa_head = NULL;
	xa->xa_ops = ops;
	xa->xa_reserve_list = NULL;
	xa->xa_nr_nodes = 0;
}

/**
 * xa_init() - initialise an empty array whose nodes come from the C library.
 * @xa: the array.
 * Context: any; nothing may use @xa concurrently.
 */
void xa_init(struct xarray *xa)
{
	xa_init_ops(xa, NULL);
}

/**
 * xa_destroy() - remove every entry and free every node and the reserve.
 * @xa: the array. The entries themselves are the caller's.
 *
 * The array is empty afterwards and may be used again.
 * Context: takes and drops the lock; tree nodes are freed after a grace period (from a
 * call_rcu callback), reserve nodes at once.
 */
void xa_destroy(struct xarray *xa)
{
	struct xa__freelist fl = { NULL };
	struct xa_node *reserve;
	void *head;

	pthread_mutex_lock(&xa->xa_lock);
	head = xa->xa_head;
	__atomic_store_n(&xa->xa_head, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&xa->xa_flags, xa->xa_flags & ~XA__FLAG_MARKS, __ATOMIC_RELAXED);
	if (xa__is_node(head))
		xa__free_subtree(xa, &fl, xa__to_node(head));
	reserve = xa->xa_reserve_list;
	xa->xa_reserve_list = NULL;
	xa->xa_nr_reserve = 0;
	pthread_mutex_unlock(&xa->xa_lock);

	xa__freelist_flush(&fl);
	while (reserve) {
		struct xa_node *next = reserve->xa_parent;

		xa__ops(xa)->free(xa__ops(xa)->priv, reserve);
		reserve = next;
	}
}

/**
 * xa_reserve() - make the array's node reserve hold at least @nr nodes.
 * @xa: the array.
 * @nr: nodes wanted.
 *
 * Context: call with no lock held: it calls the node hook's alloc() without any lock.
 * Nodes allocated before a failure stay in the reserve.
 * Return: 0; -ENOMEM if the hook returned NULL; -EINVAL if it returned a node that
 * is not XA_NODE_ALIGN-aligned (that node is given back).
 */
int xa_reserve(struct xarray *xa, unsigned int nr)
{
	const struct xa_node_ops *ops = xa__ops(xa);
	struct xa_node *list = NULL, *tail = NULL;
	unsigned int have, got = 0;
	int err = 0;

	pthread_mutex_lock(&xa->xa_lock);
	have = xa->xa_nr_reserve;
	pthread_mutex_unlock(&xa->xa_lock);

	while (have + got < nr) {
		struct xa_node *node = FAULT_HIT(FAULT_XA_NODE) ? NULL : ops->alloc(ops->priv);

		if (!node) {
			err = -ENOMEM;
			break;
		}
		if ((uintptr_t)node & (XA_NODE_ALIGN - 1)) {
			fprintf(stderr, "xarray: node hook returned %p, not %d-byte aligned\n",
				(void *)node, XA_NODE_ALIGN);
			ops->free(ops->priv, node);
			err = -EINVAL;
			break;
		}
		node->xa_parent = list;
		if (!list)
			tail = node;
		list = node;
		got++;
	}
	if (list) {
		pthread_mutex_lock(&xa->xa_lock);
		tail->xa_parent = xa->xa_reserve_list;
		xa->xa_reserve_list = list;
		xa->xa_nr_reserve += got;
		pthread_mutex_unlock(&xa->xa_lock);
	}
	return err;
}

/**
 * xa_store_max_nodes() - the most new nodes one store of this order can need.
 * @order: 0..BITS_PER_LONG.
 *
 * The worst case is an array whose only entry is at index 0 (held in xa_head) and a
 * store at the top of the index space: a chain of nodes down to index 0's leaf, and
 * a path from the root down to the level of the new entry.
 * Context: any.
 * Return: the count; 0 for an order above BITS_PER_LONG (such a store fails).
 */
unsigned int xa_store_max_nodes(unsigned int order)
{
	if (order > XA_BITS_PER_LONG)
		return 0;
	return XA_MAX_LEVELS + (XA_MAX_SHIFT - xa__order_shift(order)) / XA_CHUNK_SHIFT;
}

/**
 * xa_nr_nodes() - nodes in the tree now (not counting the reserve).
 * @xa: the array.
 * Context: any; a racy snapshot while writers run.
 * Return: the number of nodes reachable from the root.
 */
unsigned long xa_nr_nodes(const struct xarray *xa)
{
	return __atomic_load_n(&xa->xa_nr_nodes, __ATOMIC_RELAXED);
}

/**
 * xa_empty() - whether the array holds no entry.
 * @xa: the array.
 * Context: any; a racy snapshot while writers run.
 * Return: true if no index has an entry.
 */
bool xa_empty(const struct xarray *xa)
{
	unsigned long index = 0;

	if (!(xa__flags_load(xa) & XA_FLAGS_KEEP_NODES))
		return xa__head_acquire(xa) == NULL;
	/* Empty nodes may be kept: look for an entry. */
	return xa_find((struct xarray *)xa, &index, ULONG_MAX, XA_PRESENT) == NULL;
}

/* ---------------------------------------------------------------------------- */
/* Lock                                                                         */
/* ---------------------------------------------------------------------------- */

void xa__lock(struct xarray *xa)
{
	pthread_mutex_lock(&xa->xa_lock);
}

void xa__unlock(struct xarray *xa)
{
	pthread_mutex_unlock(&xa->xa_lock);
}

/* ---------------------------------------------------------------------------- */
/* Reading                                                                      */
/* ---------------------------------------------------------------------------- */

/*
 * The content of slot @offset with siblings followed; *@canon gets the slot it was
 * found in. If a sibling led to a node, a split to a lower level is replacing these
 * slots from the last down to the canonical one: our own slot is already a node then,
 * so read it again (section 4).
 */
void *xa__read_slot(const struct xa_node *node, unsigned int offset, unsigned int *canon)
{
	for (;;) {
		unsigned int at = offset;
		void *first = xa__slot_acquire(node, at);
		void *entry = first;

		while (xa__is_sibling(entry)) {
			at = xa__to_sibling(entry);
			entry = xa__slot_acquire(node, at);
		}
		/* Our sibling may have been erased and the canonical slot reused by a
		 * smaller entry since we read it: then it is not ours (section 4). */
		if (at != offset && xa__slot_acquire(node, offset) != first)
			continue;
		if (at == offset || !xa__is_node(entry)) {
			*canon = at;
			return entry;
		}
	}
}

/**
 * xa_load() - the entry at @index.
 * @xa: the array.
 * @index: any index.
 *
 * A multi-index entry is returned for each of its indices.
 * Context: any; takes no lock (an RCU read-side section inside).
 * Return: the entry, or NULL.
 */
void *xa_load(struct xarray *xa, unsigned long index)
{
	void *entry;

	xa__rcu_read_lock();
	entry = xa_load_rcu(xa, index);
	xa__rcu_read_unlock();
	return entry;
}

unsigned int xa__entry_nslots(const struct xa_node *node, unsigned int offset)
{
	void *sibling = xa__mk_sibling(offset);
	unsigned int n = 1;

	while (offset + n < XA_CHUNK_SIZE && node->xa_slots[offset + n] == sibling)
		n++;
	return n;
}

void *xa__lookup_locked(struct xarray *xa, unsigned long index, struct xa__pos *pos)
{
	void *entry = xa->xa_head;
	struct xa_node *node;
	unsigned int shift;

	pos->node = NULL;
	pos->offset = 0;
	pos->nslots = 1;
	if (!xa__is_node(entry))
		return index ? NULL : entry;
	node = xa__to_node(entry);
	shift = node->xa_shift;
	if ((index >> shift) > XA_CHUNK_MASK)
		return NULL;
	for (;;) {
		unsigned int offset = (unsigned int)(index >> shift) & XA_CHUNK_MASK;

		entry = node->xa_slots[offset];
		while (xa__is_sibling(entry)) {
			offset = xa__to_sibling(entry);
			entry = node->xa_slots[offset];
		}
		if (!xa__is_node(entry)) {
			pos->node = node;
			pos->offset = offset;
			pos->nslots = entry ? xa__entry_nslots(node, offset) : 1;
			return entry;
		}
		node = xa__to_node(entry);
		shift -= XA_CHUNK_SHIFT;
	}
}

/* ---------------------------------------------------------------------------- */
/* Marks, writer side                                                           */
/* ---------------------------------------------------------------------------- */

static void xa__flags_mark(struct xarray *xa, xa_mark_t mark, bool set)
{
	unsigned int flags = xa->xa_flags;

	flags = set ? flags | XA__FLAG_MARK(mark) : flags & ~XA__FLAG_MARK(mark);
	__atomic_store_n(&xa->xa_flags, flags, __ATOMIC_RELAXED);
}

static void xa__marks_store(struct xa_node *node, xa_mark_t mark, unsigned long bits)
{
	__atomic_store_n(&node->xa_marks[mark], bits, __ATOMIC_RELAXED);
}

/* Make the bits above @node agree with whether @node has any bit of @mark. */
static void xa__mark_propagate(struct xarray *xa, struct xa_node *node, xa_mark_t mark)
{
	for (;;) {
		bool any = node->xa_marks[mark] != 0;
		struct xa_node *parent = node->xa_parent;
		unsigned long bit;

		if (!parent) {
			xa__flags_mark(xa, mark, any);
			return;
		}
		bit = 1UL << node->xa_offset;
		if (any == ((parent->xa_marks[mark] & bit) != 0))
			return;
		xa__marks_store(parent, mark,
				any ? parent->xa_marks[mark] | bit : parent->xa_marks[mark] & ~bit);
		node = parent;
	}
}

void xa__node_set_mark(struct xarray *xa, struct xa_node *node, unsigned int offset,
		       xa_mark_t mark)
{
	unsigned long bit = 1UL << offset;

	if (node->xa_marks[mark] & bit)
		return;
	xa__marks_store(node, mark, node->xa_marks[mark] | bit);
	xa__mark_propagate(xa, node, mark);
}

void xa__node_clear_mark(struct xarray *xa, struct xa_node *node, unsigned int offset,
			 xa_mark_t mark)
{
	unsigned long bit = 1UL << offset;

	if (!(node->xa_marks[mark] & bit))
		return;
	xa__marks_store(node, mark, node->xa_marks[mark] & ~bit);
	xa__mark_propagate(xa, node, mark);
}

/* Bits of slots [offset, offset + n). */
static unsigned long xa__slot_bits(unsigned int offset, unsigned int n)
{
	unsigned long bits = n >= XA_BITS_PER_LONG ? ~0UL : (1UL << n) - 1;

	return bits << offset;
}

/* ---------------------------------------------------------------------------- */
/* Storing                                                                      */
/* ---------------------------------------------------------------------------- */

/*
 * One store: [first, last] covered by aligned blocks ("pieces") stored in ascending
 * order. xa_store is [i, i]; xa_store_order one aligned block.
 */
struct xa__op {
	unsigned long first;
	unsigned long last;
	void *entry;
	unsigned int top;		/* root shift the pieces need (non-NULL entry) */
	struct xa__freelist fl;		/* nodes detached by this operation */
};

/* The order of the largest aligned block at @cur that ends at or before @last. */
static unsigned int xa__piece_order(unsigned long cur, unsigned long last)
{
	unsigned int order = cur ? (unsigned int)__builtin_ctzl(cur) : XA_BITS_PER_LONG;

	while (order && xa__slot_mask(order) > last - cur)
		order--;
	return order;
}

/* Index of the node of shift @shift whose subtree holds @index, among its level. */
static unsigned long xa__node_id(unsigned long index, unsigned int shift)
{
	return shift + XA_CHUNK_SHIFT >= XA_BITS_PER_LONG ? 0 : index >> (shift + XA_CHUNK_SHIFT);
}

/* The root shift a non-NULL store of @op needs. */
static unsigned int xa__op_top(const struct xarray *xa, const struct xa__op *op)
{
	unsigned int top = xa__shift_for(op->last);
	unsigned long cur = op->first;

	if (xa__is_node(xa->xa_head) && xa__to_node(xa->xa_head)->xa_shift > top)
		top = xa__to_node(xa->xa_head)->xa_shift;
	for (;;) {
		unsigned int order = xa__piece_order(cur, op->last);

		if (xa__order_shift(order) > top)
			top = xa__order_shift(order);
		if (xa__slot_mask(order) >= op->last - cur)
			return top;
		cur += xa__slot_mask(order) + 1;
	}
}

/* Whether @op is the one store that lives in xa_head without a node. */
static bool xa__op_at_head(const struct xarray *xa, const struct xa__op *op)
{
	return op->first == 0 && op->last == 0 && !xa__is_node(xa->xa_head);
}

/*
 * How many new nodes the store @op needs, exactly: the nodes that grow the root to
 * op->top, then for each piece every missing node on its path. New nodes are shared
 * by consecutive pieces; since the pieces ascend, the pieces that share a node are
 * consecutive, so remembering the last new node of each level counts each once.
 * Lock held.
 */
static unsigned int xa__count_nodes(struct xarray *xa, struct xa__op *op)
{
	unsigned long seen[XA_MAX_LEVELS];
	bool have[XA_MAX_LEVELS] = { false };
	struct xa_node *root = NULL;
	unsigned int count = 0, hs = 0, from = 0;
	unsigned long cur = op->first;
	void *head = xa->xa_head;

	if (!op->entry || xa__op_at_head(xa, op))
		return 0;
	op->top = xa__op_top(xa, op);
	if (xa__is_node(head)) {
		root = xa__to_node(head);
		hs = root->xa_shift;
		from = hs + XA_CHUNK_SHIFT;
	}
	if (head) {
		/* Growing: new nodes on the path of index 0, above the root or from a leaf. */
		for (unsigned int s = from; s <= op->top; s += XA_CHUNK_SHIFT) {
			have[s / XA_CHUNK_SHIFT] = true;
			seen[s / XA_CHUNK_SHIFT] = 0;
			count++;
		}
	}
	for (;;) {
		unsigned int order = xa__piece_order(cur, op->last);
		unsigned int ps = xa__order_shift(order);
		struct xa_node *node = NULL;

		for (unsigned int s = op->top;; s -= XA_CHUNK_SHIFT) {
			unsigned int level = s / XA_CHUNK_SHIFT;
			unsigned long id = xa__node_id(cur, s);
			void *entry;
			unsigned int canon;

			if (root && s == hs && id == 0)
				node = root;
			if (!node && (!have[level] || seen[level] != id)) {
				have[level] = true;
				seen[level] = id;
				count++;
			}
			if (s == ps)
				break;
			if (!node)
				continue;
			canon = (unsigned int)(cur >> s) & XA_CHUNK_MASK;
			entry = node->xa_slots[canon];
			while (xa__is_sibling(entry))
				entry = node->xa_slots[xa__to_sibling(entry)];
			if (xa__is_node(entry))
				node = xa__to_node(entry);
			else if (entry)
				break;	/* inside a larger entry: acts on it, no node */
			else
				node = NULL;
		}
		if (xa__slot_mask(order) >= op->last - cur)
			return count;
		cur += xa__slot_mask(order) + 1;
	}
}

/* A new root of shift @shift whose slot 0 is @head. Lock held. */
static void xa__push_root(struct xarray *xa, unsigned int shift, void *head)
{
	struct xa_node *node = xa__node_take(xa, shift, NULL, 0);

	node->xa_slots[0] = head;
	node->xa_count = 1;
	for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
		if (xa->xa_flags & XA__FLAG_MARK(m))
			node->xa_marks[m] = 1UL;
	if (xa__is_node(head)) {
		xa__to_node(head)->xa_parent = node;
		xa__to_node(head)->xa_offset = 0;
	}
	__atomic_store_n(&xa->xa_head, xa__mk_node(node), __ATOMIC_RELEASE);
}

/* Grow the tree until the root has shift @top. Lock held; nodes counted. */
static void xa__expand(struct xarray *xa, unsigned int top)
{
	void *head = xa->xa_head;
	unsigned int shift;

	if (!head)
		return;
	if (!xa__is_node(head)) {
		xa__push_root(xa, 0, head);
		shift = 0;
	} else {
		shift = xa__to_node(head)->xa_shift;
	}
	while (shift < top) {
		shift += XA_CHUNK_SHIFT;
		xa__push_root(xa, shift, xa->xa_head);
	}
}

/*
 * Store @entry in slots [offset, offset + n) of @node: the canonical slot, then the
 * siblings. Subtrees there are detached; marks are squashed onto the canonical slot
 * (or cleared for NULL). Lock held.
 */
static void xa__write_slots(struct xarray *xa, struct xa__op *op, struct xa_node *node,
			    unsigned int offset, unsigned int n)
{
	unsigned long range = xa__slot_bits(offset, n);
	unsigned int used = 0;

	for (unsigned int i = offset; i < offset + n; i++) {
		void *old = node->xa_slots[i];

		if (old)
			used++;
		if (xa__is_node(old))
			xa__free_subtree(xa, &op->fl, xa__to_node(old));
	}
	xa__slot_publish(node, offset, op->entry);
	for (unsigned int i = offset + 1; i < offset + n; i++)
		xa__slot_publish(node, i, op->entry ? xa__mk_sibling(offset) : NULL);
	node->xa_count = (unsigned char)(node->xa_count - used + (op->entry ? n : 0));

	for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++) {
		unsigned long bits = node->xa_marks[m];
		bool had = bits & range;

		bits &= ~range;
		if (had && op->entry)
			bits |= 1UL << offset;
		if (bits != node->xa_marks[m]) {
			xa__marks_store(node, m, bits);
			xa__mark_propagate(xa, node, m);
		}
	}
}

/* Remove emptied nodes from @node upwards. Lock held. */
static void xa__delete_empty(struct xarray *xa, struct xa__op *op, struct xa_node *node)
{
	while (node && node->xa_count == 0) {
		struct xa_node *parent = node->xa_parent;
		unsigned int offset = node->xa_offset;

		if (!parent) {
			__atomic_store_n(&xa->xa_head, NULL, __ATOMIC_RELEASE);
			for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
				xa__flags_mark(xa, m, false);
		} else {
			xa__slot_publish(parent, offset, NULL);
			parent->xa_count--;
		}
		xa__free_later(xa, &op->fl, node);
		if (parent)
			for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
				xa__node_clear_mark(xa, parent, offset, m);
		node = parent;
	}
}

/* Make the root as short as its entries allow (invariant e). Lock held. */
static void xa__shrink(struct xarray *xa, struct xa__op *op)
{
	for (;;) {
		void *head = xa->xa_head;
		struct xa_node *node;
		void *entry;

		if (!xa__is_node(head))
			return;
		node = xa__to_node(head);
		entry = node->xa_slots[0];
		if (node->xa_count != 1 || !entry)
			return;
		if (xa__is_node(entry))
			xa__to_node(entry)->xa_parent = NULL;
		else if (node->xa_shift != 0)
			return;
		/* The root's mark bits of slot 0 equal xa_flags: nothing to move. */
		__atomic_store_n(&xa->xa_head, entry, __ATOMIC_RELEASE);
		xa__free_later(xa, &op->fl, node);
	}
}

/* Store one piece: the aligned block [base, base + 2^order). Lock held, nodes counted. */
static void xa__store_piece(struct xarray *xa, struct xa__op *op, unsigned long base,
			    unsigned int order)
{
	unsigned int ps = xa__order_shift(order);
	unsigned int nslots = 1U << (order - ps);
	void *head = xa->xa_head;
	struct xa_node *node;
	unsigned int shift, offset, canon;
	void *entry;

	if (!xa__is_node(head)) {
		if (base == 0 && (order == 0 || !op->entry)) {
			/* Only the head entry (index 0) exists, or is created. */
			__atomic_store_n(&xa->xa_head, op->entry, __ATOMIC_RELEASE);
			if (!op->entry)
				for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
					xa__flags_mark(xa, m, false);
			return;
		}
		if (!op->entry)
			return;
		/* Empty array (a head entry was moved into a node by xa__expand). */
		node = xa__node_take(xa, op->top, NULL, 0);
		__atomic_store_n(&xa->xa_head, xa__mk_node(node), __ATOMIC_RELEASE);
	} else {
		node = xa__to_node(head);
	}
	shift = node->xa_shift;
	if ((base >> shift) > XA_CHUNK_MASK)
		return;	/* NULL store beyond the tree (a non-NULL one grew it) */
	if (ps > shift) {
		/* A NULL block at least as large as the tree, holding index 0: all of it. */
		__atomic_store_n(&xa->xa_head, NULL, __ATOMIC_RELEASE);
		for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
			xa__flags_mark(xa, m, false);
		xa__free_subtree(xa, &op->fl, node);
		return;
	}

	while (shift > ps) {
		struct xa_node *child;

		offset = (unsigned int)(base >> shift) & XA_CHUNK_MASK;
		canon = offset;
		entry = node->xa_slots[offset];
		while (xa__is_sibling(entry)) {
			canon = xa__to_sibling(entry);
			entry = node->xa_slots[canon];
		}
		if (xa__is_node(entry)) {
			node = xa__to_node(entry);
			shift -= XA_CHUNK_SHIFT;
			continue;
		}
		if (entry) {
			/* The block lies inside a larger entry: act on that entry. */
			xa__write_slots(xa, op, node, canon, xa__entry_nslots(node, canon));
			goto out;
		}
		if (!op->entry)
			return;
		child = xa__node_take(xa, shift - XA_CHUNK_SHIFT, node, offset);
		xa__slot_publish(node, offset, xa__mk_node(child));
		node->xa_count++;
		node = child;
		shift -= XA_CHUNK_SHIFT;
	}

	offset = (unsigned int)(base >> shift) & XA_CHUNK_MASK;
	canon = offset;
	entry = node->xa_slots[offset];
	while (xa__is_sibling(entry)) {
		canon = xa__to_sibling(entry);
		entry = node->xa_slots[canon];
	}
	if (canon != offset || (entry && !xa__is_node(entry) &&
				xa__entry_nslots(node, canon) > nslots))
		xa__write_slots(xa, op, node, canon, xa__entry_nslots(node, canon));
	else
		xa__write_slots(xa, op, node, offset, nslots);
out:
	if (!op->entry && !(xa->xa_flags & XA_FLAGS_KEEP_NODES))
		xa__delete_empty(xa, op, node);
}

/* Perform the store @op. Lock held; xa__count_nodes() nodes are in the reserve. */
static void xa__store_locked(struct xarray *xa, struct xa__op *op)
{
	unsigned long cur = op->first;

	if (op->entry && !xa__op_at_head(xa, op))
		xa__expand(xa, op->top);
	for (;;) {
		unsigned int order = xa__piece_order(cur, op->last);

		xa__store_piece(xa, op, cur, order);
		if (xa__slot_mask(order) >= op->last - cur)
			break;
		cur += xa__slot_mask(order) + 1;
	}
	xa__shrink(xa, op);
}

/*
 * With the lock held, make sure the reserve has enough nodes for @op: count, and if
 * short, unlock, refill through the hook, lock and count again.
 * Return: 0 with the lock held, or -ENOMEM (-EINVAL for a misaligned hook node)
 * without it.
 */
static int xa__reserve_locked(struct xarray *xa, struct xa__op *op)
{
	for (;;) {
		unsigned int need;
		int err;

		need = xa__count_nodes(xa, op);
		if (need <= xa->xa_nr_reserve)
			return 0;
		xa__unlock(xa);
		err = xa_reserve(xa, need);
		if (err)
			return err;
		xa__lock(xa);
	}
}

/* Take the lock with enough nodes in the reserve for @op (xa__reserve_locked). */
static int xa__lock_for(struct xarray *xa, struct xa__op *op)
{
	xa__lock(xa);
	return xa__reserve_locked(xa, op);
}

/* xa__piece_order() inside one node: slots @off..@last (offsets), no loop. */
static inline unsigned int xa__leaf_piece_order(unsigned int off, unsigned int last)
{
	unsigned int a = off ? (unsigned int)__builtin_ctz(off) : XA_CHUNK_SHIFT;
	unsigned int b = 31U - (unsigned int)__builtin_clz(last - off + 1);

	return a < b ? a : b;
}

/*
 * The bottom node (shift 0) whose slots hold @index, or NULL if a node on the way is
 * missing or a larger entry covers the index. The head is a node. Lock held.
 */
static inline __attribute__((always_inline)) struct xa_node *
xa__bottom_node(const struct xarray *xa, unsigned long index)
{
	struct xa_node *node = xa__to_node(xa->xa_head);
	unsigned int shift = node->xa_shift;

	if ((index >> shift) > XA_CHUNK_MASK)
		return NULL;
	while (shift) {
		void *e = node->xa_slots[(index >> shift) & XA_CHUNK_MASK];

		if (!xa__is_node(e))
			return NULL;
		node = xa__to_node(e);
		shift -= XA_CHUNK_SHIFT;
	}
	return node;
}

/*
 * Whether xa__store_leaf may write slots @first..@last of bottom node @node: each
 * aligned piece (xa__leaf_piece_order) below a whole node and either all NULL or
 * exactly one entry of its extent, and the node neither emptied (in an array without
 * XA_FLAGS_KEEP_NODES: xa__delete_empty's business) nor, as a bottom root, left with
 * one slot (xa__shrink's). Then *@delta is the change of its count and *@oldp the old
 * entry of the first piece. Reads only. Lock held.
 */
static inline __attribute__((always_inline)) bool
xa__leaf_check(const struct xarray *xa, const struct xa_node *node, unsigned int first,
	       unsigned int last, bool storing, int *delta, void **oldp)
{
	int d = 0;

	for (unsigned int off = first; off <= last;) {
		unsigned int order = xa__leaf_piece_order(off, last), n = 1U << order;
		void *old = node->xa_slots[off];

		if (order >= XA_CHUNK_SHIFT || xa__is_internal(old))
			return false;	/* the whole node, or inside a larger entry */
		if (old) {
			if (xa__entry_nslots(node, off) != n)
				return false;
			d -= (int)n;
		} else {
			for (unsigned int i = 1; i < n; i++)
				if (node->xa_slots[off + i])
					return false;
		}
		if (off == first)
			*oldp = old;
		if (storing)
			d += (int)n;
		off += n;
	}
	if ((int)node->xa_count + d == 0 && !(xa->xa_flags & XA_FLAGS_KEEP_NODES))
		return false;
	if (!node->xa_parent && (int)node->xa_count + d <= 1)
		return false;
	*delta = d;
	return true;
}

/* Write @entry over slots @first..@last of @node, checked by xa__leaf_check. */
static inline __attribute__((always_inline)) void
xa__leaf_write(struct xa_node *node, unsigned int first, unsigned int last, void *entry,
	       int delta)
{
	for (unsigned int off = first; off <= last;) {
		unsigned int n = 1U << xa__leaf_piece_order(off, last);

		if (entry || node->xa_slots[off]) {
			xa__slot_publish(node, off, entry);
			for (unsigned int i = off + 1; i < off + n; i++)
				xa__slot_publish(node, i, entry ? xa__mk_sibling(off) : NULL);
		}
		off += n;
	}
	node->xa_count = (unsigned char)((int)node->xa_count + delta);
}

/*
 * The stores that page maps make most: [first, last] inside one bottom node, or
 * across the boundary of two (a block of 2 to 127 pages that does not start on a
 * multiple of 64, or does not end on one: then no piece is a whole node, and each
 * node's pieces are those of the whole range, cut at the boundary), where the nodes
 * exist, in an array with no marks set. Then the store needs no node, moves no
 * subtree, changes no mark and leaves the tree's shape alone: write the slots (each
 * canonical slot first, as xa__write_slots does), fix the counts, done. Everything is
 * checked, in both nodes, before anything is written, so false means nothing changed
 * and the general path runs. *@oldp gets the old entry of the first piece. With one
 * node only, the general path took 1,700 of 3,600 page-map stores of memdesc-mtwork
 * 1 x 400,000 (counting, reserving and placing nodes piece by piece: a large block's
 * publish cost 2,015 instructions, now 1,234; the run 132.5M, now 129.9M). It and its
 * helpers are inlined, and one node takes its own straight path: out of line, a single
 * page's publish and unpublish cost 125 more instructions than before the second node
 * (scripts/callgrind-hot pages:1: 940 -> 1,065; so 967). Lock held.
 */
static inline __attribute__((always_inline)) bool
xa__store_leaf(struct xarray *xa, struct xa__op *op, void **oldp)
{
	unsigned long na = op->first >> XA_CHUNK_SHIFT, nb = op->last >> XA_CHUNK_SHIFT;
	unsigned int first = (unsigned int)(op->first & XA_CHUNK_MASK);
	unsigned int last = (unsigned int)(op->last & XA_CHUNK_MASK);
	struct xa_node *a, *b;
	int da, db;
	void *oldb;

	*oldp = NULL;
	if (nb - na > 1 || (xa->xa_flags & XA__FLAG_MARKS) || !xa__is_node(xa->xa_head))
		return false;
	a = xa__bottom_node(xa, op->first);
	/* One node, the common case, straight through (each shared step costs it). */
	if (__builtin_expect(nb == na, 1)) {
		if (!a || !xa__leaf_check(xa, a, first, last, op->entry != NULL, &da, oldp))
			return false;
		xa__leaf_write(a, first, last, op->entry, da);
		return true;
	}
	b = xa__bottom_node(xa, op->last);
	if (!a || !b ||
	    !xa__leaf_check(xa, a, first, XA_CHUNK_MASK, op->entry != NULL, &da, oldp) ||
	    !xa__leaf_check(xa, b, 0, last, op->entry != NULL, &db, &oldb))
		return false;
	xa__leaf_write(a, first, XA_CHUNK_MASK, op->entry, da);
	xa__leaf_write(b, 0, last, op->entry, db);
	return true;
}

static void xa__op_done(struct xarray *xa, struct xa__op *op)
{
#ifdef MEMDESC_DEBUG
	xa__verify_path(xa, op->first);
	if (op->last != op->first)
		xa__verify_path(xa, op->last);
#endif
	xa__unlock(xa);
	xa__freelist_flush(&op->fl);
}

/* Users may store pointers and value entries, not the array's internal encoding. */
static bool xa__entry_valid(const void *entry)
{
	return !xa__is_internal(entry);
}

/*
 * Store @op under the lock: the leaf fast path when it applies, else the general
 * path with the nodes it needs reserved (the lock is kept across the two unless the
 * reserve has to be refilled). If @oldp, it gets the entry that was at @index.
 * Return: 0, or -ENOMEM / -EINVAL from the node hook (array unchanged).
 */
static inline int xa__store_op(struct xarray *xa, struct xa__op *op, unsigned long index,
			       void **oldp)
{
	struct xa__pos pos;
	void *old;
	int err;

	xa__lock(xa);
	/* The fast path's old entry covers the whole block, @index included. */
	if (xa__store_leaf(xa, op, &old)) {
		if (oldp)
			*oldp = old;
	} else {
		err = xa__reserve_locked(xa, op);
		if (err)
			return err;
		if (oldp)
			*oldp = xa__lookup_locked(xa, index, &pos);
		xa__store_locked(xa, op);
	}
	xa__op_done(xa, op);
	return 0;
}

/**
 * xa_store_order() - store one entry over an aligned block of indices.
 * @xa: the array.
 * @index: any index of the block.
 * @order: the block is the 2^@order aligned indices holding @index; 0..BITS_PER_LONG.
 * @entry: the new entry; NULL erases.
 *
 * Entries and subtrees inside the block are replaced by the one entry. If the block
 * lies inside a larger multi-index entry, that whole entry is replaced instead (its
 * extent does not change). Marks are kept for a non-NULL entry, cleared for NULL.
 * Context: takes the lock; may call the node hook with no lock held.
 * Return: the entry that was at @index; an error entry on failure (array unchanged):
 * -EINVAL for a bad @entry or @order, -ENOMEM if the hook failed.
 */
void *xa_store_order(struct xarray *xa, unsigned long index, unsigned int order, void *entry)
{
	struct xa__op op = { .entry = entry };
	void *old;
	int err;

	if (!xa__entry_valid(entry) || order > XA_BITS_PER_LONG)
		return xa__mk_err(-EINVAL);
	op.first = xa__order_base(index, order);
	op.last = op.first + xa__slot_mask(order);
	err = xa__store_op(xa, &op, index, &old);
	return err ? xa__mk_err(err) : old;
}

/**
 * xa_store() - store an entry at an index.
 * @xa: the array.
 * @index: the index.
 * @entry: the new entry; NULL erases.
 *
 * At an index of a multi-index entry, the whole entry gets the new value.
 * Context: takes the lock; may call the node hook with no lock held.
 * Return: the old entry, or an error entry (array unchanged): -EINVAL for an internal
 * @entry, -ENOMEM if the hook failed.
 */
void *xa_store(struct xarray *xa, unsigned long index, void *entry)
{
	return xa_store_order(xa, index, 0, entry);
}

/**
 * xa_erase() - erase the entry at an index (the whole entry if multi-index).
 * @xa: the array.
 * @index: the index.
 * Context: takes the lock; never allocates.
 * Return: the old entry, or NULL.
 */
void *xa_erase(struct xarray *xa, unsigned long index)
{
	return xa_store_order(xa, index, 0, NULL);
}

/**
 * xa_insert() - store an entry at an empty index.
 * @xa: the array.
 * @index: the index.
 * @entry: the new entry, not NULL (this array has no reserved-but-empty entries).
 * Context: takes the lock; may call the node hook with no lock held.
 * Return: 0; -EBUSY if an entry (or part of a multi-index entry) is there;
 * -EINVAL for a NULL or internal @entry; -ENOMEM if the hook failed.
 */
int xa_insert(struct xarray *xa, unsigned long index, void *entry)
{
	struct xa__op op = { .first = index, .last = index, .entry = entry };
	struct xa__pos pos;
	int err;

	if (!entry || !xa__entry_valid(entry))
		return -EINVAL;
	err = xa__lock_for(xa, &op);
	if (err)
		return err;
	if (xa__lookup_locked(xa, index, &pos)) {
		xa__op_done(xa, &op);
		return -EBUSY;
	}
	xa__store_locked(xa, &op);
	xa__op_done(xa, &op);
	return 0;
}

/**
 * xa_cmpxchg() - store @entry at @index if the entry there is @old.
 * @xa: the array.
 * @index: the index; on a multi-index entry, the whole entry is compared and replaced.
 * @old: the expected entry (NULL: the index is empty).
 * @entry: the new entry; NULL erases.
 * Context: takes the lock; may call the node hook with no lock held.
 * Return: the entry that was there (equal to @old on success), or an error entry
 * (array unchanged): -EINVAL for an internal @entry, -ENOMEM if the hook failed.
 */
void *xa_cmpxchg(struct xarray *xa, unsigned long index, void *old, void *entry)
{
	struct xa__op op = { .first = index, .last = index, .entry = entry };
	struct xa__pos pos;
	void *cur;
	int err;

	if (!xa__entry_valid(entry))
		return xa__mk_err(-EINVAL);
	err = xa__lock_for(xa, &op);
	if (err)
		return xa__mk_err(err);
	cur = xa__lookup_locked(xa, index, &pos);
	if (cur == old)
		xa__store_locked(xa, &op);
	xa__op_done(xa, &op);
	return cur;
}

/**
 * xa_store_range() - store one entry over every index of [@first, @last].
 * @xa: the array.
 * @first: the first index.
 * @last: the last index, >= @first.
 * @entry: the entry; NULL erases the range.
 *
 * The range is covered by the fewest aligned blocks, each one multi-index entry (one
 * entry if the range is an aligned block), stored in ascending order as by
 * xa_store_order(), all under one lock hold: a block inside a larger multi-index
 * entry acts on that whole entry. The whole range is stored, or nothing.
 * Context: takes the lock; may call the node hook with no lock held.
 * Return: NULL, or an error entry (array unchanged): -EINVAL for an internal @entry
 * or @first > @last, -ENOMEM if the hook failed.
 */
void *xa_store_range(struct xarray *xa, unsigned long first, unsigned long last, void *entry)
{
	struct xa__op op = { .first = first, .last = last, .entry = entry };
	int err;

	if (!xa__entry_valid(entry) || first > last)
		return xa__mk_err(-EINVAL);
	err = xa__store_op(xa, &op, first, NULL);
	return err ? xa__mk_err(err) : NULL;
}

/* ---------------------------------------------------------------------------- */
/* Splitting                                                                    */
/* ---------------------------------------------------------------------------- */

/* The most nodes one split may ask for (36 MiB of nodes); larger splits fail. */
#define XA_SPLIT_MAX_NODES (1UL << 16)

/* New nodes to split an entry of @nslots slots at @shift down to @new_order. */
static unsigned long xa__split_nodes(unsigned int shift, unsigned int nslots,
				     unsigned int new_order)
{
	unsigned int ns = xa__order_shift(new_order);
	unsigned long per_slot = 0, level = 1;

	for (unsigned int s = shift; s > ns; s -= XA_CHUNK_SHIFT) {
		per_slot += level;
		if (per_slot > XA_SPLIT_MAX_NODES)
			return XA_SPLIT_MAX_NODES + 1;
		level *= XA_CHUNK_SIZE;
	}
	return per_slot * nslots;
}

/* Fill the slots of @node (shift @ns) with pieces of @new_order holding @entry. */
static void xa__split_fill(struct xa_node *node, unsigned int begin, unsigned int end,
			   unsigned int new_order, void *entry, unsigned int marks)
{
	unsigned int ns = node->xa_shift;
	unsigned int pn = 1U << (new_order - ns);

	/* Canonical slots first, so that a reader on a new sibling finds its entry. */
	for (unsigned int p = begin; p < end; p += pn) {
		xa__slot_publish(node, p, entry);
		for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
			if (marks & XA__FLAG_MARK(m))
				xa__marks_store(node, m, node->xa_marks[m] | (1UL << p));
	}
	for (unsigned int p = begin; p < end; p += pn)
		for (unsigned int i = p + 1; i < p + pn; i++)
			xa__slot_publish(node, i, xa__mk_sibling(p));
}

/* A new subtree of shift @shift full of @new_order pieces of @entry. Lock held. */
static struct xa_node *xa__split_build(struct xarray *xa, unsigned int shift,
				       unsigned int new_order, void *entry, unsigned int marks,
				       struct xa_node *parent, unsigned int offset)
{
	struct xa_node *node = xa__node_take(xa, shift, parent, offset);

	node->xa_count = (unsigned char)XA_CHUNK_SIZE;
	if (shift == xa__order_shift(new_order)) {
		xa__split_fill(node, 0, XA_CHUNK_SIZE, new_order, entry, marks);
		return node;
	}
	for (unsigned int i = 0; i < XA_CHUNK_SIZE; i++)
		node->xa_slots[i] = xa__mk_node(xa__split_build(xa, shift - XA_CHUNK_SHIFT,
							       new_order, entry, marks, node, i));
	for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
		if (marks & XA__FLAG_MARK(m))
			node->xa_marks[m] = xa__slot_bits(0, XA_CHUNK_SIZE);
	return node;
}

static void xa__split_locked(struct xarray *xa, const struct xa__pos *pos,
			     unsigned int new_order)
{
	struct xa_node *node = pos->node;
	void *entry = node->xa_slots[pos->offset];
	unsigned int marks = 0;

	for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
		if (node->xa_marks[m] & (1UL << pos->offset))
			marks |= XA__FLAG_MARK(m);
	if (xa__order_shift(new_order) == node->xa_shift) {
		xa__split_fill(node, pos->offset, pos->offset + pos->nslots, new_order, entry,
			       marks);
		return;
	}
	/* From the last slot down to the canonical one (section 4). */
	for (unsigned int i = pos->offset + pos->nslots; i-- > pos->offset;) {
		struct xa_node *child = xa__split_build(xa, node->xa_shift - XA_CHUNK_SHIFT,
							new_order, entry, marks, node, i);

		xa__slot_publish(node, i, xa__mk_node(child));
		for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++)
			if (marks & XA__FLAG_MARK(m))
				xa__marks_store(node, m, node->xa_marks[m] | (1UL << i));
	}
}

/* The order of the entry at @pos (a non-NULL entry). */
static unsigned int xa__pos_order(const struct xa__pos *pos)
{
	if (!pos->node)
		return 0;
	return pos->node->xa_shift + (unsigned int)__builtin_ctz(pos->nslots);
}

/**
 * xa_split() - split a multi-index entry into smaller ones holding the same entry.
 * @xa: the array.
 * @index: any index of the multi-index entry.
 * @new_order: the order of the new entries, below the entry's order.
 *
 * Every new entry holds the old entry and has its marks. Readers see the old entry
 * or the new ones at every index, never NULL.
 * Context: takes the lock; may call the node hook with no lock held.
 * Return: 0; -EINVAL if no entry of an order above @new_order covers @index;
 * -ENOMEM if the hook failed or the split would need more than 65536 nodes
 * (nothing changed then).
 */
int xa_split(struct xarray *xa, unsigned long index, unsigned int new_order)
{
	struct xa__op op = { .first = index, .last = index };

	for (;;) {
		struct xa__pos pos;
		unsigned long need;
		void *entry;
		int err;

		xa__lock(xa);
		entry = xa__lookup_locked(xa, index, &pos);
		if (!entry || xa__pos_order(&pos) <= new_order) {
			xa__unlock(xa);
			return -EINVAL;
		}
		need = xa__split_nodes(pos.node->xa_shift, pos.nslots, new_order);
		if (need > XA_SPLIT_MAX_NODES) {
			xa__unlock(xa);
			return -ENOMEM;
		}
		if (need <= xa->xa_nr_reserve) {
			xa__split_locked(xa, &pos, new_order);
			/* A root whose only slot held the entry now holds a node. */
			xa__shrink(xa, &op);
			xa__op_done(xa, &op);
			return 0;
		}
		xa__unlock(xa);
		err = xa_reserve(xa, (unsigned int)need);
		if (err)
			return err;
	}
}

/**
 * xa_prune() - free the empty nodes that hold indices of [@first, @last].
 * @xa: the array (XA_FLAGS_KEEP_NODES: other arrays have no empty node).
 * @first: first index.
 * @last: last index (>= @first).
 *
 * An empty node is removed from its parent, and a parent left empty with it, as a
 * store of NULL does in an array without the flag; the nodes are freed after a grace
 * period. O(nodes and slots of the range).
 * Context: takes the lock; never allocates.
 * Return: the number of nodes removed.
 */
unsigned long xa_prune(struct xarray *xa, unsigned long first, unsigned long last)
{
	struct xa__op op = { .first = first, .last = last };
	unsigned long index = first, before;

	xa__lock(xa);
	before = xa->xa_nr_nodes;
	while (index <= last) {
		struct xa__pos pos;
		void *entry = xa__lookup_locked(xa, index, &pos);
		unsigned long next;

		if (!pos.node)
			break;	/* no tree, or @index beyond it */
		if (!entry && pos.node->xa_count == 0)
			xa__delete_empty(xa, &op, pos.node);
		/* On to the next slot of the node the walk ended in. */
		next = (index | xa__slot_mask(pos.node->xa_shift)) + 1;
		if (next <= index)
			break;
		index = next;
	}
	xa__shrink(xa, &op);
	before -= xa->xa_nr_nodes;
	xa__op_done(xa, &op);
	return before;
}
