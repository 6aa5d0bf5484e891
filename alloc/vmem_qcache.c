/*
 * vmem_qcache.c: the quantum caches of an arena (vmem.c, section 11).
 *
 * Cache i of an arena holds free ranges of (i + 1) quanta as a stack of at most
 * VMEM_QCACHE_DEPTH starts. A cached range stays an ALLOC segment of the arena, so
 * taking one from the cache touches neither the segment lists nor the arena lock.
 *
 * - Allocation pops under the cache's lock; an empty cache sends the request to the
 *   arena (vmem_xalloc_impl), which does not refill the cache.
 * - Free validates the range with the cache's lock held: not already cached (a double
 *   free), then, under the arena lock, an ALLOC segment of exactly this size. Holding
 *   the cache lock across both steps makes two racing frees of one range impossible to
 *   both succeed. A full cache first returns its older half to the arena.
 * - vmem_xfree() of a small range goes through the same validation but frees to the
 *   arena, so a cached range can never be freed twice by mixing the two calls.
 * - Draining (on exhaustion and in vmem_destroy) returns every cached range.
 *
 * vm_qcache_bytes counts the cached bytes; it only grows with vm_lock held, so under
 * vm_lock it never exceeds vm_alloc and vmem_size() can count cached ranges as free.
 *
 * Lock order: qc_lock, then vm_lock, then (after both are dropped or with qc_lock
 * still held) the source arena's locks through the release callback.
 */
#include "vmem_impl.h"

#include <errno.h>
#include <string.h>

static struct vmem_qcache *vmem_qcache_of(vmem_t *vm, size_t size)
{
	return &vm->vm_qcache[size / vm->vm_quantum - 1];
}

void vmem__qcache_init(vmem_t *vm)
{
	for (unsigned i = 0; i < vm->vm_nqcache; i++) {
		pthread_mutex_init(&vm->vm_qcache[i].qc_lock, NULL);
		vm->vm_qcache[i].qc_count = 0;
	}
}

void vmem__qcache_fini(vmem_t *vm)
{
	for (unsigned i = 0; i < vm->vm_nqcache; i++)
		pthread_mutex_destroy(&vm->vm_qcache[i].qc_lock);
}

/**
 * vmem__qcache_alloc() - take a cached range of @size (a multiple of the quantum, at
 * most vm_qcache_max).
 *
 * Context: takes the cache's lock only.
 * Return: true with the start in *@addrp, false when the cache is empty.
 */
bool vmem__qcache_alloc(vmem_t *vm, size_t size, uintptr_t *addrp)
{
	struct vmem_qcache *qc = vmem_qcache_of(vm, size);
	bool hit = false;

	pthread_mutex_lock(&qc->qc_lock);
	if (qc->qc_count != 0) {
		*addrp = qc->qc_addr[--qc->qc_count];
		atomic_fetch_sub(&vm->vm_qcache_bytes, size);
		hit = true;
	}
	pthread_mutex_unlock(&qc->qc_lock);
	return hit;
}

/* Returns the @n oldest entries of @qc to the arena. Both locks held. */
static void vmem_qcache_flush_locked(vmem_t *vm, struct vmem_qcache *qc, size_t size,
				     unsigned n, struct vmem_release_list *rel)
{
	for (unsigned i = 0; i < n; i++) {
		vmem_seg_t *vs = vmem__hash_find_locked(vm, qc->qc_addr[i]);

		if (vs == NULL || vs->vs_size != size) {
			vmem__report("vmem: internal error: cached range %#lx of arena '%s' is "
				     "not an allocated segment of size %#zx",
				     (unsigned long)qc->qc_addr[i], vm->vm_name, size);
			continue;
		}
		vmem__seg_free_locked(vm, vs, rel);
	}
	memmove(qc->qc_addr, qc->qc_addr + n, (qc->qc_count - n) * sizeof(qc->qc_addr[0]));
	qc->qc_count -= n;
	atomic_fetch_sub(&vm->vm_qcache_bytes, (size_t)n * size);
}

static bool vmem_qcache_holds(const struct vmem_qcache *qc, uintptr_t addr)
{
	for (unsigned i = 0; i < qc->qc_count; i++) {
		if (qc->qc_addr[i] == addr)
			return true;
	}
	return false;
}

/**
 * vmem__qcache_free() - free a range of @size (rounded, at most vm_qcache_max): into
 * its cache when @cache, else to the arena; validated either way.
 *
 * Context: takes the cache's lock, then vm_lock; may call the release callback.
 * Return: 0, or -EINVAL after reporting a bad free (nothing changed).
 */
int vmem__qcache_free(vmem_t *vm, uintptr_t addr, size_t size, bool cache, const char *who)
{
	struct vmem_qcache *qc = vmem_qcache_of(vm, size);
	struct vmem_release_list rel = { 0 };
	vmem_seg_t *vs;

	pthread_mutex_lock(&qc->qc_lock);
	if (vmem_qcache_holds(qc, addr)) {
		pthread_mutex_unlock(&qc->qc_lock);
		vmem__report("%s(arena '%s'): bad free of [%#lx, +%#zx): already free (held in "
			     "the quantum cache)", who, vm->vm_name, (unsigned long)addr, size);
		return -EINVAL;
	}
	pthread_mutex_lock(&vm->vm_lock);
	vs = vmem__alloc_lookup_locked(vm, addr, size, who);
	if (vs == NULL) {
		pthread_mutex_unlock(&vm->vm_lock);
		pthread_mutex_unlock(&qc->qc_lock);
		return -EINVAL;
	}
	if (!cache) {
		vmem__seg_free_locked(vm, vs, &rel);
	} else {
		if (qc->qc_count == VMEM_QCACHE_DEPTH)
			vmem_qcache_flush_locked(vm, qc, size, VMEM_QCACHE_DEPTH / 2, &rel);
		qc->qc_addr[qc->qc_count++] = addr;
		atomic_fetch_add(&vm->vm_qcache_bytes, size);
	}
	vmem__free_unlock(vm, &rel);
	pthread_mutex_unlock(&qc->qc_lock);
	return 0;
}

/**
 * vmem__qcache_drain() - return every cached range to the arena.
 *
 * Context: no lock of @vm held; takes each cache's lock, then vm_lock.
 * Return: true if anything was returned.
 */
bool vmem__qcache_drain(vmem_t *vm)
{
	bool any = false;

	for (unsigned i = 0; i < vm->vm_nqcache; i++) {
		struct vmem_qcache *qc = &vm->vm_qcache[i];
		struct vmem_release_list rel = { 0 };

		pthread_mutex_lock(&qc->qc_lock);
		if (qc->qc_count != 0) {
			any = true;
			pthread_mutex_lock(&vm->vm_lock);
			vmem_qcache_flush_locked(vm, qc, (i + 1) * vm->vm_quantum, qc->qc_count,
						 &rel);
			vmem__free_unlock(vm, &rel);
		}
		pthread_mutex_unlock(&qc->qc_lock);
	}
	return any;
}

/**
 * vmem__qcache_check_locked() - verify the caches: every entry an ALLOC segment of its
 * cache's size, no range cached twice; the cached bytes in *@cachedp.
 *
 * Context: every cache lock and vm_lock held.
 * Return: the number of problems found (each printed).
 */
int vmem__qcache_check_locked(vmem_t *vm, size_t *cachedp)
{
	size_t cached = 0;
	int bad = 0;

	for (unsigned i = 0; i < vm->vm_nqcache; i++) {
		const struct vmem_qcache *qc = &vm->vm_qcache[i];
		size_t size = (i + 1) * vm->vm_quantum;

		if (qc->qc_count > VMEM_QCACHE_DEPTH) {
			vmem__report("vmem_check(arena '%s'): quantum cache %u holds %u entries",
				     vm->vm_name, i, qc->qc_count);
			bad++;
			continue;
		}
		for (unsigned j = 0; j < qc->qc_count; j++) {
			vmem_seg_t *vs = vmem__hash_find_locked(vm, qc->qc_addr[j]);

			if (vs == NULL || vs->vs_size != size) {
				vmem__report("vmem_check(arena '%s'): cached %#lx is not an "
					     "allocated segment of size %#zx", vm->vm_name,
					     (unsigned long)qc->qc_addr[j], size);
				bad++;
			}
			for (unsigned k = 0; k < j; k++) {
				if (qc->qc_addr[k] == qc->qc_addr[j]) {
					vmem__report("vmem_check(arena '%s'): %#lx cached twice",
						     vm->vm_name, (unsigned long)qc->qc_addr[j]);
					bad++;
				}
			}
			cached += size;
		}
	}
	*cachedp = cached;
	return bad;
}
