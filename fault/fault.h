/*
 * fault.h: fault injection, the one mechanism every module uses (a test-only leaf).
 *
 * Built only with the CMake option MEMDESC_FAULT_INJECTION (default OFF). Without it
 * this header is all there is: FAULT_HIT() is the constant false, so a release build
 * carries no code, no data and no branch for it. With it, each injection point counts
 * its calls, and a test arms a point to fail at its n-th call from now, for k calls in
 * a row, as if the resource behind it (the OS, the node hook, the tag pool, the page
 * allocator) had refused memory. The module then takes its ordinary ENOMEM path, which
 * is what the tests want to drive.
 *
 * Layering (DESIGN.md): this module depends on nothing, and every module may use it;
 * it sits below the XArray, which uses it, so nothing is inverted.
 *
 * The points, and where they sit:
 *   FAULT_OS_MAP     memdesc/phys.c, md_import(): one commit of chunks from the OS
 *   FAULT_OS_MOVE    memdesc/phys.c, md__frames_move(): one move of frames (mremap)
 *   FAULT_XA_NODE    xarray/xarray.c, xa_reserve(): one node from the node hook
 *   FAULT_VMEM_TAG   alloc/vmem_mem.c, vmem__tags_get(): one refill of an arena's
 *                    boundary-tag reserve from the global tag pool
 *   FAULT_SLAB_GROW  alloc/slab.c, kmem_slab_grow(): one new slab for a cache
 *
 * State: one record of atomics per point (calls, armed window, failures injected),
 * the only global state, documented here; any thread may hit a point while another
 * arms it (the window is then honoured from the arm on, approximately: tests arm
 * from a quiescent state).
 */
#ifndef MEMDESC_FAULT_H
#define MEMDESC_FAULT_H

#include <stdbool.h>

enum fault_point {
	FAULT_OS_MAP,
	FAULT_XA_NODE,
	FAULT_VMEM_TAG,
	FAULT_SLAB_GROW,
	FAULT_OS_MOVE,
	FAULT_NR_POINTS
};

#ifdef MEMDESC_FAULT_INJECTION

/**
 * fault_arm() - make point @p fail at its @n-th call from now, and @k - 1 calls after.
 * @p: the point.
 * @n: 1 = the next call; 0 disarms.
 * @k: calls in a row that fail (0 disarms).
 *
 * Context: any thread; lock-free. Replaces any earlier arming of @p.
 */
void fault_arm(enum fault_point p, unsigned long n, unsigned long k);

/** fault_disarm_all() - no point fails any more (the counters are kept). */
void fault_disarm_all(void);

/**
 * fault_calls() - calls of point @p since the process started (armed or not).
 * Return: the count; a test takes the difference around a workload to learn how many
 * times the workload crosses the point.
 */
unsigned long fault_calls(enum fault_point p);

/** fault_injected() - failures point @p has injected since the process started. */
unsigned long fault_injected(enum fault_point p);

/** fault_injected_total() - failures injected by all points since the start. */
unsigned long fault_injected_total(void);

/** fault_point_name() - "os_map", "xa_node", "vmem_tag", "slab_grow". */
const char *fault_point_name(enum fault_point p);

/** fault_point_parse() - the point named @name (as above), or -1. */
int fault_point_parse(const char *name);

/*
 * fault__hit() - for the modules: count a call of @p, and say whether it must fail.
 * Called on slow paths only (a map, a refill, a growth), never under a hot lock.
 */
bool fault__hit(enum fault_point p);

#define FAULT_HIT(p) fault__hit(p)

#else /* !MEMDESC_FAULT_INJECTION */

#define FAULT_HIT(p) ((void)(p), false)

#endif /* MEMDESC_FAULT_INJECTION */

#endif /* MEMDESC_FAULT_H */
