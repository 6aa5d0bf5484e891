/*
 * test_vmem_stress: threads hammering two stacked arenas.
 *
 * "parent" owns a span (quantum 16 pages, quantum caches of 16 and 32 pages); "child"
 * imports from it (quantum 1 page, quantum caches up to 4 pages). Each thread allocates
 * from both (vmem_alloc under every policy, vmem_xalloc with alignment), frees its own
 * ranges and ranges other threads hand it through a shared queue, and now and then runs
 * vmem_check() concurrently. In fault-injection builds (MEMDESC_FAULT_INJECTION) one
 * thread arms the tag-refill point from time to time, so -ENOMEM paths run under
 * contention too. Every page of the parent's span
 * has an owner word: an allocation claims its pages with atomic exchanges and must find
 * them unowned, so two live ranges can never overlap. At the end everything is freed:
 * both arenas pass vmem_check(), the child gives every span back when destroyed and the
 * parent's allocated size is back to 0. No sleeps, no timing.
 */
#include "mdt.h"
#include "fault.h"
#include "vmem.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define Q		4096u
#define PQ		(16u * Q)		/* the parent's quantum */
#define BASE		((uintptr_t)0x10000000)
#define NPAGES		(1u << 16)		/* pages in the parent's span */
#define THREADS		4
#define MINE		256			/* live ranges per thread at most */
#define QUEUE		64			/* ranges in flight between threads */

struct range {
	vmem_t *vm;
	uintptr_t addr;
	size_t size;
	bool x;
};

static vmem_t *parent, *child;
static atomic_int owner[NPAGES];

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct range queue[QUEUE];
static unsigned queue_len;
static uint64_t seed;

static void claim(const struct range *r, int tid)
{
	size_t first = (r->addr - BASE) / Q, n = r->size / Q;

	if (r->addr < BASE || first + n > NPAGES)
		ck_abort_msg("range %#lx + %#zx outside the parent's span", (unsigned long)r->addr,
			     r->size);
	for (size_t i = first; i < first + n; i++) {
		int prev = atomic_exchange(&owner[i], tid);

		if (prev != 0)
			ck_abort_msg("page %zu of %#lx + %#zx already owned by %d", i,
				     (unsigned long)r->addr, r->size, prev);
	}
}

static void unclaim(const struct range *r, int tid)
{
	size_t first = (r->addr - BASE) / Q, n = r->size / Q;

	for (size_t i = first; i < first + n; i++) {
		int prev = atomic_exchange(&owner[i], 0);

		if (prev != tid)
			ck_abort_msg("page %zu owned by %d, freed by %d", i, prev, tid);
	}
}

static void release(struct range *r)
{
	int rc = 0;

	if (r->x)
		vmem_xfree(r->vm, r->addr, r->size);
	else
		rc = vmem_free_checked(r->vm, r->addr, r->size);
	if (rc != 0)
		ck_abort_msg("free of a live range failed: %d", rc);
}

/* One allocation attempt; true and *r filled on success. */
static bool try_alloc(struct mdt_rng *rng, struct range *r)
{
	static const int policies[] = { 0, VMEM_INSTANTFIT, VMEM_BESTFIT, VMEM_NEXTFIT };
	uint64_t p = mdt_rng_below(rng, 100);
	int rc;

	r->x = false;
	if (p < 70) {
		r->vm = child;
		r->size = (1 + mdt_rng_below(rng, p < 50 ? 4 : 40)) * Q;
	} else {
		r->vm = parent;
		r->size = (1 + mdt_rng_below(rng, 3)) * PQ;
	}
	if (p % 10 == 0) {
		r->x = true;
		rc = vmem_xalloc(r->vm, r->size, (size_t)PQ << mdt_rng_below(rng, 3), 0, 0, 0, 0,
				 policies[mdt_rng_below(rng, 4)], &r->addr);
	} else {
		rc = vmem_alloc(r->vm, r->size, policies[mdt_rng_below(rng, 4)], &r->addr);
	}
	if (rc == -ENOMEM)
		return false;			/* fault injection, or a full parent */
	if (rc != 0)
		ck_abort_msg("allocation returned %d", rc);
	return true;
}

static void *worker(void *arg)
{
	int tid = (int)(intptr_t)arg;
	struct range mine[MINE];
	unsigned n = 0;
	size_t ops = mdt_scaled(400000) / THREADS;
	struct mdt_rng rng;

	mdt_rng_init(&rng, seed + (uint64_t)tid);
	for (size_t op = 0; op < ops; op++) {
		uint64_t p = mdt_rng_below(&rng, 100);

#ifdef MEMDESC_FAULT_INJECTION
		if (tid == 1 && op % 5000 == 0)
			fault_arm(FAULT_VMEM_TAG, 1 + mdt_rng_below(&rng, 8), 1);
#endif
		if (op % 20000 == 7 && (vmem_check(child) != 0 || vmem_check(parent) != 0))
			ck_abort_msg("vmem_check failed under load");
		if (n < MINE && (n == 0 || p < 50)) {
			struct range r;

			if (try_alloc(&rng, &r)) {
				claim(&r, tid + 1);
				mine[n++] = r;
			}
		} else if (p < 90) {
			unsigned i = (unsigned)mdt_rng_below(&rng, n);
			struct range r = mine[i];

			mine[i] = mine[--n];
			unclaim(&r, tid + 1);
			release(&r);
		} else {
			/* hand one over, or take one from another thread and free it */
			struct range r;
			bool have = false;

			pthread_mutex_lock(&queue_lock);
			if (queue_len < QUEUE && n > 0) {
				unsigned i = (unsigned)mdt_rng_below(&rng, n);

				unclaim(&mine[i], tid + 1);
				claim(&mine[i], -1);
				queue[queue_len++] = mine[i];
				mine[i] = mine[--n];
			} else if (queue_len > 0) {
				r = queue[--queue_len];
				have = true;
			}
			pthread_mutex_unlock(&queue_lock);
			if (have) {
				unclaim(&r, -1);
				release(&r);
			}
		}
	}
	while (n > 0) {
		n--;
		unclaim(&mine[n], tid + 1);
		release(&mine[n]);
	}
	return NULL;
}

START_TEST(test_stress_stacked)
{
	pthread_t th[THREADS];
	size_t parent_free;

	seed = mdt_seed(0x737472657373ull);
	parent = vmem_create("parent", BASE, (size_t)NPAGES * Q, PQ, NULL, NULL, NULL, 2 * PQ, 0);
	ck_assert_ptr_nonnull(parent);
	child = vmem_create("child", 0, 0, Q, vmem_alloc, vmem_free, parent, 4 * Q, 0);
	ck_assert_ptr_nonnull(child);
	parent_free = vmem_size(parent, VMEM_FREE);

	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i), 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
#ifdef MEMDESC_FAULT_INJECTION
	fault_disarm_all();
#endif
	while (queue_len > 0) {
		queue_len--;
		unclaim(&queue[queue_len], -1);
		release(&queue[queue_len]);
	}

	ck_assert_int_eq(vmem_check(child), 0);
	ck_assert_int_eq(vmem_check(parent), 0);
	ck_assert_uint_eq(vmem_size(child, VMEM_ALLOC), 0);
	vmem_destroy(child);			/* drains its caches, gives its spans back */
	ck_assert_uint_eq(vmem_size(parent, VMEM_ALLOC), 0);
	ck_assert_uint_eq(vmem_size(parent, VMEM_FREE), parent_free);
	ck_assert_int_eq(vmem_check(parent), 0);
	for (size_t i = 0; i < NPAGES; i++)
		ck_assert_int_eq(atomic_load(&owner[i]), 0);
	vmem_destroy(parent);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmem_stress");
	TCase *tc = tcase_create("stress");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_stress_stacked);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
