/*
 * test_xarray_hook.h: a counting node hook for the XArray tests, with an allocation
 * budget to make the hook fail on demand.
 */
#ifndef TEST_XARRAY_HOOK_H
#define TEST_XARRAY_HOOK_H

#include "xarray.h"

#include <sched.h>
#include <stdlib.h>

#include <urcu/urcu-bp.h>

struct xat_hook {
	struct xa_node_ops ops;
	long allocs;	/* nodes handed out */
	long frees;	/* nodes given back (from call_rcu callbacks: atomic) */
	long budget;	/* allocations still allowed; negative: unlimited */
};

static void *xat_hook_alloc(void *priv)
{
	struct xat_hook *h = priv;
	size_t size = (xa_node_size() + XA_NODE_ALIGN - 1) & ~(size_t)(XA_NODE_ALIGN - 1);

	if (__atomic_load_n(&h->budget, __ATOMIC_RELAXED) == 0)
		return NULL;
	if (__atomic_load_n(&h->budget, __ATOMIC_RELAXED) > 0)
		__atomic_fetch_sub(&h->budget, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->allocs, 1, __ATOMIC_RELAXED);
	return aligned_alloc(XA_NODE_ALIGN, size);
}

static void xat_hook_free(void *priv, void *node)
{
	struct xat_hook *h = priv;

	__atomic_fetch_add(&h->frees, 1, __ATOMIC_RELAXED);
	free(node);
}

static inline void xat_hook_init(struct xat_hook *h)
{
	h->ops.alloc = xat_hook_alloc;
	h->ops.free = xat_hook_free;
	h->ops.defer = NULL;	/* liburcu's call_rcu */
	h->ops.priv = h;
	h->allocs = 0;
	h->frees = 0;
	h->budget = -1;
}

static inline long xat_hook_allocs(struct xat_hook *h)
{
	return __atomic_load_n(&h->allocs, __ATOMIC_RELAXED);
}

static inline long xat_hook_frees(struct xat_hook *h)
{
	return __atomic_load_n(&h->frees, __ATOMIC_RELAXED);
}

/*
 * Wait until every call_rcu callback queued so far has run: queue a marker behind
 * them (all callbacks go to liburcu's one default worker, in order) and wait for it.
 * Used instead of urcu_bp_barrier(), whose completion object is calloc'ed by the
 * caller and freed by the worker behind liburcu's uninstrumented queue, which TSan
 * reports as a race inside liburcu. Spins with sched_yield; no timed sleep.
 */
struct xat_marker {
	struct rcu_head head;
	int done;
};

/*
 * The hand-off of the marker through liburcu's queue is invisible to TSan (liburcu is
 * not instrumented): without these annotations, the worker's write to a stack slot that
 * the waiting thread used before is reported as a race.
 */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define XAT_TSAN_ACQUIRE(addr) __tsan_acquire(addr)
#define XAT_TSAN_RELEASE(addr) __tsan_release(addr)
#else
#define XAT_TSAN_ACQUIRE(addr) ((void)(addr))
#define XAT_TSAN_RELEASE(addr) ((void)(addr))
#endif

static void xat_marker_run(struct rcu_head *head)
{
	struct xat_marker *m = caa_container_of(head, struct xat_marker, head);

	XAT_TSAN_ACQUIRE(m);
	__atomic_store_n(&m->done, 1, __ATOMIC_RELEASE);
}

static inline void xat_rcu_barrier(void)
{
	struct xat_marker m;

	__atomic_store_n(&m.done, 0, __ATOMIC_RELAXED);
	XAT_TSAN_RELEASE(&m);
	urcu_bp_call_rcu(&m.head, xat_marker_run);
	while (!__atomic_load_n(&m.done, __ATOMIC_ACQUIRE))
		sched_yield();
}

#endif /* TEST_XARRAY_HOOK_H */
