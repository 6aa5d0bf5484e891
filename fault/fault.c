/*
 * fault.c: the counters and armed windows of the fault-injection points (fault.h).
 *
 * Each point keeps the number of calls so far and a window [first, last] of call
 * numbers (1-based, since the start of the process) that must fail; first == 0 means
 * not armed. fault_arm() sets the window relative to the calls counted when it runs.
 * A call takes its number with one atomic increment and compares it with the window,
 * so concurrent callers each get a distinct number and exactly the calls of the window
 * fail. Everything is an atomic: no lock, no allocation, safe inside malloc.
 *
 * Compiled only with MEMDESC_FAULT_INJECTION (the CMake option); see fault.h.
 */
#include "fault.h"

#include <stdatomic.h>
#include <string.h>

struct fault_state {
	atomic_ulong calls;	/* calls of the point since the start */
	atomic_ulong first;	/* first failing call number; 0: not armed */
	atomic_ulong last;	/* last failing call number (>= first when armed) */
	atomic_ulong injected;	/* failures injected since the start */
};

static struct fault_state fault_points[FAULT_NR_POINTS];

static const char *const fault_names[FAULT_NR_POINTS] = {
	[FAULT_OS_MAP] = "os_map",
	[FAULT_XA_NODE] = "xa_node",
	[FAULT_VMEM_TAG] = "vmem_tag",
	[FAULT_SLAB_GROW] = "slab_grow",
	[FAULT_OS_MOVE] = "os_move",
};

void fault_arm(enum fault_point p, unsigned long n, unsigned long k)
{
	struct fault_state *f = &fault_points[p];
	unsigned long first;

	atomic_store(&f->first, 0);
	if (n == 0 || k == 0)
		return;
	first = atomic_load(&f->calls) + n;
	atomic_store(&f->last, first + k - 1);
	atomic_store(&f->first, first);
}

void fault_disarm_all(void)
{
	for (int p = 0; p < FAULT_NR_POINTS; p++)
		atomic_store(&fault_points[p].first, 0);
}

unsigned long fault_calls(enum fault_point p)
{
	return atomic_load(&fault_points[p].calls);
}

unsigned long fault_injected(enum fault_point p)
{
	return atomic_load(&fault_points[p].injected);
}

unsigned long fault_injected_total(void)
{
	unsigned long sum = 0;

	for (int p = 0; p < FAULT_NR_POINTS; p++)
		sum += atomic_load(&fault_points[p].injected);
	return sum;
}

const char *fault_point_name(enum fault_point p)
{
	return (unsigned)p < FAULT_NR_POINTS ? fault_names[p] : "?";
}

int fault_point_parse(const char *name)
{
	for (int p = 0; p < FAULT_NR_POINTS; p++)
		if (name && strcmp(name, fault_names[p]) == 0)
			return p;
	return -1;
}

bool fault__hit(enum fault_point p)
{
	struct fault_state *f = &fault_points[p];
	unsigned long call = atomic_fetch_add(&f->calls, 1) + 1;
	unsigned long first = atomic_load(&f->first);

	if (first == 0 || call < first || call > atomic_load(&f->last))
		return false;
	atomic_fetch_add(&f->injected, 1);
	return true;
}
