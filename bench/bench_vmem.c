/*
 * bench_vmem: vmem_alloc + vmem_free pairs.
 *
 * vmem/alloc_free/fit:F/quanta:K/nfree:N times one allocation of K quanta and its free
 * under fit policy F (0 instant-fit, 1 best-fit, 2 next-fit), on an arena whose free
 * lists hold N free segments (sizes 2 to 1025 quanta spread over the lists, none of a
 * benchmarked size, each kept apart by an allocated quantum) plus one large free tail. Quantum caches are off, so
 * the segment lists are what is measured; instant-fit should cost the same for N = 10
 * and N = 100,000, best-fit pays for the length of one list, next-fit for the walk
 * from its rotor. A pair restores the free segments it found, so the arena is built
 * once per N and kept for the whole run.
 *
 * vmem/qcache_alloc_free/quanta:K is the same pair through a quantum cache.
 */
#include "mdb.h"
#include "vmem.h"

#include <stddef.h>
#include <stdint.h>

#define Q		4096u
#define TAIL_QUANTA	(1u << 20)

static const int policies[] = { VMEM_INSTANTFIT, VMEM_BESTFIT, VMEM_NEXTFIT };
static const char *const policy_names[] = { "instant-fit", "best-fit", "next-fit" };

/*
 * Size of the i-th prepared free segment: 1..1025 quanta, well mixed, never exactly one
 * of the benchmarked sizes, so that best-fit cannot stop at an exact fit and pays for
 * scanning a whole list.
 */
static size_t hole_quanta(size_t i)
{
	size_t s = 1 + (size_t)((i * 2654435761u) % 1024u);

	return s == 1 || s == 3 || s == 8 || s == 64 || s == 512 ? s + 1 : s;
}

/* An arena with @nfree free segments; NULL on failure. */
static vmem_t *fragmented_arena(size_t nfree)
{
	size_t total = TAIL_QUANTA;
	uintptr_t addr;
	vmem_t *vm;

	for (size_t i = 0; i < nfree; i++)
		total += hole_quanta(i) + 1;
	vm = vmem_create("bench", (uintptr_t)1 << 40, total * Q, Q, NULL, NULL, NULL, 0, 0);
	if (vm == NULL)
		return NULL;
	/* address order: hole, fence, hole, fence, ..., tail */
	for (size_t i = 0; i < nfree; i++) {
		if (vmem_alloc(vm, hole_quanta(i) * Q, VMEM_NEXTFIT, &addr) != 0 ||
		    vmem_alloc(vm, Q, VMEM_NEXTFIT, &addr) != 0)
			return NULL;
	}
	addr = (uintptr_t)1 << 40;
	for (size_t i = 0; i < nfree; i++) {
		vmem_free(vm, addr, hole_quanta(i) * Q);
		addr += (hole_quanta(i) + 1) * Q;
	}
	return vm;
}

/* The arenas are built once per free-list length and kept (a pair restores them). */
static vmem_t *arena_for(size_t nfree)
{
	static vmem_t *small, *large;
	vmem_t **slot = nfree <= 10 ? &small : &large;

	if (*slot == NULL)
		*slot = fragmented_arena(nfree);
	return *slot;
}

static void bm_vmem_alloc_free(mdb_state *st)
{
	int fit = (int)mdb_arg(st, 0);
	size_t size = (size_t)mdb_arg(st, 1) * Q;
	vmem_t *vm = arena_for((size_t)mdb_arg(st, 2));
	uintptr_t addr;

	if (vm == NULL) {
		mdb_skip_with_error(st, "cannot build the arena");
		return;
	}
	mdb_set_label(st, policy_names[fit]);
	while (mdb_keep_running(st)) {
		if (vmem_alloc(vm, size, policies[fit], &addr) != 0) {
			mdb_skip_with_error(st, "vmem_alloc failed");
			return;
		}
		vmem_free(vm, addr, size);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
}

#define VMEM_BENCH_ROW(fit, n)                                                         \
	fit, 1, n, fit, 3, n, fit, 8, n, fit, 64, n, fit, 512, n

MDB_REGISTER(bm_vmem_alloc_free, .name = "vmem/alloc_free", .nargs = 3, .nsets = 30,
	     .arg_names = (const char *const[]){ "fit", "quanta", "nfree" },
	     .args = (const int64_t[]){
		     VMEM_BENCH_ROW(0, 10), VMEM_BENCH_ROW(0, 100000),
		     VMEM_BENCH_ROW(1, 10), VMEM_BENCH_ROW(1, 100000),
		     VMEM_BENCH_ROW(2, 10), VMEM_BENCH_ROW(2, 100000),
	     });

static void bm_vmem_qcache_alloc_free(mdb_state *st)
{
	static vmem_t *vm;
	size_t size = (size_t)mdb_arg(st, 0) * Q;
	uintptr_t addr;

	if (vm == NULL)
		vm = vmem_create("bench-qcache", (uintptr_t)1 << 40, (size_t)TAIL_QUANTA * Q, Q,
				 NULL, NULL, NULL, 8 * Q, 0);
	if (vm == NULL) {
		mdb_skip_with_error(st, "cannot build the arena");
		return;
	}
	while (mdb_keep_running(st)) {
		if (vmem_alloc(vm, size, 0, &addr) != 0) {
			mdb_skip_with_error(st, "vmem_alloc failed");
			return;
		}
		vmem_free(vm, addr, size);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
}
MDB_REGISTER(bm_vmem_qcache_alloc_free, .name = "vmem/qcache_alloc_free", .nargs = 1,
	     .nsets = 3, .arg_names = (const char *const[]){ "quanta" },
	     .args = (const int64_t[]){ 1, 3, 8 });
