/*
 * xarray.h: a sparse array of pointers indexed by unsigned long (after Linux's XArray).
 *
 * An XArray maps every index 0..ULONG_MAX to an entry, NULL by default. Entries are
 * normal pointers (at least 4-byte aligned) or value entries (xa_mk_value()); the
 * encoding with the two low bits 10 is the array's own and is refused. A multi-index
 * entry covers an aligned block of 2^order indices with one entry. Three marks per
 * entry can be searched for. Readers (xa_load, xa_find, xa_get_mark, the iterators)
 * take no lock: they run under an RCU read-side section of liburcu-bp that they open
 * themselves. Writers serialize on a lock in the array and never allocate while
 * holding it: tree nodes come from a private reserve refilled through a hook.
 *
 * The design, the invariants and the locking rules are written at the top of
 * xarray.c.
 */
#ifndef MEMDESC_XARRAY_H
#define MEMDESC_XARRAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rcu_head;	/* liburcu's (urcu/call-rcu.h) */

/**
 * struct xa_node_ops - where the array gets its tree nodes from, and how it defers
 * their free.
 * @alloc: returns one node of xa_node_size() bytes aligned to XA_NODE_ALIGN, or
 *	NULL. Called with no lock of the array held.
 * @free: gives back a node that @alloc returned. Called after an RCU grace period,
 *	from the callback that @defer ran, or from xa_destroy().
 * @defer: runs @func(@head) after an urcu-bp grace period; NULL: liburcu's
 *	urcu_bp_call_rcu() (its call_rcu thread). An owner with its own mechanism (memdesc's
 *	page map: md_rcu_call) sets it. Called with no lock of the array held, possibly
 *	inside a read-side section.
 * @priv: passed to @alloc and @free.
 */
struct xa_node_ops {
	void *(*alloc)(void *priv);
	void (*free)(void *priv, void *node);
	void (*defer)(struct rcu_head *head, void (*func)(struct rcu_head *head));
	void *priv;
};

/* Alignment that xa_node_ops.alloc must give a node (one cache line). */
#define XA_NODE_ALIGN 64

/**
 * struct xarray - the array. Embed it anywhere; initialise with xa_init(),
 * xa_init_ops() or XARRAY_INIT(). Fields are private to xarray.c.
 */
struct xarray {
	pthread_mutex_t xa_lock;	/* serializes writers; readers never take it */
	unsigned int xa_flags;		/* XA__FLAG_MARK(m): some entry carries mark m */
	unsigned int xa_nr_reserve;	/* nodes in xa_reserve_list */
	void *xa_head;			/* NULL, the entry at index 0, or the root node */
	const struct xa_node_ops *xa_ops;	/* NULL: the C library */
	void *xa_reserve_list;		/* free nodes, linked through their parent field */
	unsigned long xa_nr_nodes;	/* nodes in the tree now */
};

#define XARRAY_INIT(name)                                                              \
	{                                                                              \
		.xa_lock = PTHREAD_MUTEX_INITIALIZER, .xa_flags = 0, .xa_nr_reserve = 0,   \
		.xa_head = NULL, .xa_ops = NULL, .xa_reserve_list = NULL,              \
		.xa_nr_nodes = 0                                                       \
	}

/* Marks. XA_PRESENT is not a mark: as a filter of xa_find it means "any entry". */
typedef unsigned xa_mark_t;
#define XA_MARK_0 ((xa_mark_t)0U)
#define XA_MARK_1 ((xa_mark_t)1U)
#define XA_MARK_2 ((xa_mark_t)2U)
#define XA_PRESENT ((xa_mark_t)8U)
#define XA_MAX_MARKS 3

/* ----------------------------------------------------------------------------- */
/* Entries                                                                        */
/* ----------------------------------------------------------------------------- */

/*
 * The two low bits of an entry: x1 a value entry, 00 a pointer, 10 internal to the
 * array (nodes, sibling slots, errors). Error entries are internal entries whose
 * value is a negative errno in -4095..-1.
 */

/**
 * xa_mk_value() - an entry that holds an integer instead of a pointer.
 * @v: 0..LONG_MAX.
 * Return: the entry; xa_to_value() gives @v back.
 */
static inline void *xa_mk_value(unsigned long v)
{
	return (void *)((v << 1) | 1UL);
}

/** xa_to_value() - the integer stored in a value entry. */
static inline unsigned long xa_to_value(const void *entry)
{
	return (unsigned long)entry >> 1;
}

/** xa_is_value() - whether @entry is a value entry. */
static inline bool xa_is_value(const void *entry)
{
	return (unsigned long)entry & 1UL;
}

/** xa_is_err() - whether @entry is an error entry returned by a store. */
static inline bool xa_is_err(const void *entry)
{
	/* Errors are the internal entries at the very top of the address space. */
	return ((unsigned long)entry & 3UL) == 2UL &&
	       (unsigned long)entry >= (unsigned long)((-4095L * 4) | 2L);
}

/**
 * xa_err() - the errno in an entry.
 * Return: the negative errno of an error entry, 0 for any other entry.
 */
static inline int xa_err(const void *entry)
{
	if (xa_is_err(entry))
		return (int)((long)entry >> 2);
	return 0;
}

/* ----------------------------------------------------------------------------- */
/* The normal API                                                                 */
/* ----------------------------------------------------------------------------- */

void xa_init(struct xarray *xa);
void xa_init_ops(struct xarray *xa, const struct xa_node_ops *ops);

/*
 * XA_FLAGS_KEEP_NODES: a node that empties stays in the tree (Linux deletes it at
 * once) until xa_prune() frees the empty nodes of a range. For an array whose indices
 * are reused over and over (memdesc's page map: a single page allocated and freed
 * again would otherwise create a leaf and free it after a grace period each time).
 */
#define XA_FLAGS_KEEP_NODES 0x100u
void xa_init_flags(struct xarray *xa, const struct xa_node_ops *ops, unsigned int flags);
unsigned long xa_prune(struct xarray *xa, unsigned long first, unsigned long last);
void xa_destroy(struct xarray *xa);
bool xa_empty(const struct xarray *xa);
size_t xa_node_size(void);

void *xa_load(struct xarray *xa, unsigned long index);
void *xa_store(struct xarray *xa, unsigned long index, void *entry);
void *xa_erase(struct xarray *xa, unsigned long index);
int xa_insert(struct xarray *xa, unsigned long index, void *entry);
void *xa_cmpxchg(struct xarray *xa, unsigned long index, void *old, void *entry);
void *xa_store_range(struct xarray *xa, unsigned long first, unsigned long last,
		     void *entry);
void *xa_store_order(struct xarray *xa, unsigned long index, unsigned int order,
		     void *entry);
int xa_split(struct xarray *xa, unsigned long index, unsigned int new_order);

void *xa_find(struct xarray *xa, unsigned long *index, unsigned long max,
	      xa_mark_t filter);
void *xa_find_after(struct xarray *xa, unsigned long *index, unsigned long max,
		    xa_mark_t filter);

void xa_set_mark(struct xarray *xa, unsigned long index, xa_mark_t mark);
void xa_clear_mark(struct xarray *xa, unsigned long index, xa_mark_t mark);
bool xa_get_mark(struct xarray *xa, unsigned long index, xa_mark_t mark);

int xa_reserve(struct xarray *xa, unsigned int nr);
unsigned int xa_store_max_nodes(unsigned int order);
unsigned long xa_nr_nodes(const struct xarray *xa);
int xa_verify(struct xarray *xa);

/*
 * Iteration. Each entry is seen once, a multi-index entry too, with @index set to
 * its first index inside the range. The body runs outside any lock or RCU section:
 * it may modify the array; entries stored or erased concurrently may or may not be
 * seen. @index is an unsigned long, @entry a void *.
 */
#define xa_for_each_range(xa, index, entry, start, last)                              \
	for ((index) = (start), (entry) = xa_find((xa), &(index), (last), XA_PRESENT);   \
	     (entry); (entry) = xa_find_after((xa), &(index), (last), XA_PRESENT))

#define xa_for_each_marked(xa, index, entry, mark)                                     \
	for ((index) = 0, (entry) = xa_find((xa), &(index), ULONG_MAX, (mark));         \
	     (entry); (entry) = xa_find_after((xa), &(index), ULONG_MAX, (mark)))

#define xa_for_each(xa, index, entry) xa_for_each_range(xa, index, entry, 0, ULONG_MAX)

#ifdef __cplusplus
}
#endif

#endif /* MEMDESC_XARRAY_H */
