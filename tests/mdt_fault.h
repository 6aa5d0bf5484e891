/*
 * mdt_fault: the workload form of the fault-injection tests, and the sweep that runs a
 * workload with a failure injected at every point in a range (fault/fault.h).
 *
 * The form: a workload checks each call's result as either correct or a clean ENOMEM,
 * and ENOMEM only when a fault was injected while the call ran:
 *
 *	if (!MDT_ALLOC_OK(p, md_malloc(n)))
 *		continue;		// failed cleanly: nothing to free, model unchanged
 *
 * MDT_ALLOC_OK() is true when the call returned non-NULL; false when it returned NULL
 * with errno ENOMEM while a fault fired on its path; anything else fails the test.
 * MDT_RC_OK() does the same for calls returning 0 / -errno, MDT_ERR_OK() for calls
 * returning 0 / an errno value (posix_memalign). In builds without fault injection no
 * fault ever fires, so the same code asserts plain success.
 *
 * The sweep (fault-injection builds only): mdt_fault_sweep() runs a workload once to
 * warm up, once more counting how many times it crosses each point, then, for each
 * point, once per N with the N-th crossing failing (every N up to all_below, then a
 * stride so that about max_runs runs are made), and 8 runs with every crossing from N
 * on failing (N spread over the range: the resource gone for good). After every run
 * the workload's clean() frees everything and checks that nothing leaked and that the
 * invariant walkers pass. Workloads are single-threaded, so "a fault fired while the
 * call ran" is exact.
 *
 * Replay: MDT_FAULT_POINT=<os_map|xa_node|vmem_tag|slab_grow> restricts the sweep to one
 * point; MDT_FAULT_N=<n> and MDT_FAULT_K=<k> (default 1) stop it after the run with
 * crossings n .. n+k-1 failing. A replay makes the same runs as the sweep up to that
 * one, because the state earlier runs leave (pools, reserves, cached slabs) decides
 * which call is the N-th crossing. The message of a failure in a sweep ends with its
 * run's point, N and K: the line to replay it.
 */
#ifndef MDT_FAULT_H
#define MDT_FAULT_H

#include <check.h>

#include "model/mdt_src.h"
#include "fault.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/*
 * Inline, and failing through mdt_fail(), so that the models of tests/model/ use them in
 * the Check programs and in the fuzz targets alike (the latter build without faults).
 */
#ifdef MEMDESC_FAULT_INJECTION
/* Faults injected at the last mdt_fault_begin(): one per file, which is enough, since a
 * call is begun and judged in the same file (the macros below). */
static unsigned long mdt_fault_mark __attribute__((unused));
#endif

/* Before one call of a workload: remember the faults injected so far, clear errno. */
static inline void mdt_fault_begin(void)
{
#ifdef MEMDESC_FAULT_INJECTION
	mdt_fault_mark = fault_injected_total();
#endif
	errno = 0;
}

/* Whether a fault was injected since the last mdt_fault_begin() (false without the option). */
static inline bool mdt_fault_fired(void)
{
#ifdef MEMDESC_FAULT_INJECTION
	return fault_injected_total() != mdt_fault_mark;
#else
	return false;
#endif
}

/* A call failed with @err (errno value): returns if clean (ENOMEM after a fault), else fails. */
static inline void mdt_fault_failed(int err, const char *call, const char *file, int line)
{
	bool fired = mdt_fault_fired();

	if (err == ENOMEM && fired)
		return;
	mdt_fail("%s:%d: %s failed with error %d (%s), %s", file, line, call, err, strerror(err),
		 fired ? "not ENOMEM after an injected fault" : "and no fault was injected");
}

/* Calls of fault point @p so far (0 without the option). */
static inline unsigned long mdt_fault_calls(int p)
{
#ifdef MEMDESC_FAULT_INJECTION
	return fault_calls((enum fault_point)p);
#else
	(void)p;
	return 0;
#endif
}

/*
 * A free that must cross no fault point (DESIGN.md: freeing never allocates; what a
 * free needs is taken when the memory is allocated): vmem_free, xa_erase, pages_free.
 * Checked in fault-injection builds. Not for kmem_cache_free and what calls it
 * (folio_put, md_free): a free there may take an empty magazine from the magazine cache
 * (Bonwick's design, alloc/slab_mag.c), and falls back to the slab if it cannot.
 */
#define MDT_FREE(stmt)                                                                 \
	do {                                                                           \
		unsigned long calls_[FAULT_NR_POINTS];                                 \
                                                                                       \
		for (int p_ = 0; p_ < FAULT_NR_POINTS; p_++)                           \
			calls_[p_] = mdt_fault_calls(p_);                              \
		stmt;                                                                  \
		for (int p_ = 0; p_ < FAULT_NR_POINTS; p_++)                           \
			if (mdt_fault_calls(p_) != calls_[p_])                         \
				mdt_fail("%s:%d: %s crossed fault point %d %lu times: "      \
					 "a free allocated", __FILE__, __LINE__, #stmt, p_,   \
					 mdt_fault_calls(p_) - calls_[p_]);                   \
	} while (0)

#define MDT_ALLOC_OK(p, expr)                                                          \
	(mdt_fault_begin(), ((p) = (expr)) != NULL ||                                  \
	 (mdt_fault_failed(errno, #expr, __FILE__, __LINE__), false))
#define MDT_RC_OK(rc, expr)                                                            \
	(mdt_fault_begin(), ((rc) = (expr)) == 0 ||                                    \
	 (mdt_fault_failed(-(rc), #expr, __FILE__, __LINE__), false))
#define MDT_ERR_OK(rc, expr)                                                           \
	(mdt_fault_begin(), ((rc) = (expr)) == 0 ||                                    \
	 (mdt_fault_failed((rc), #expr, __FILE__, __LINE__), false))

struct mdt_fault_workload {
	const char *name;
	void (*run)(void *arg);		/* one pass, in the form above */
	void (*clean)(void *arg);	/* free what run() left, check leaks and invariants */
	void *arg;
	/* Every N up to all_below, then a stride: about max_runs runs per point. Both are
	 * scaled by MDT_SCALE (sanitizer builds: 10%, but at least 20 and 30). */
	unsigned long all_below;
	unsigned long max_runs;
};

#ifdef MEMDESC_FAULT_INJECTION
/*
 * Sweep every point the workload crosses (see above). Prints one line per point:
 * crossings counted, runs made, runs in which the fault fired. Fails the test if a
 * point is crossed but no run managed to inject a fault there.
 */
void mdt_fault_sweep(const struct mdt_fault_workload *w);

/* Add @test (a START_TEST that calls mdt_fault_sweep) to @s as the tcase "fault", tagged
 * "fault" (tests/fault.cmake runs it alone), without a time limit. */
void mdt_fault_add_tcase(Suite *s, const TTest *test);
#endif

#endif /* MDT_FAULT_H */
