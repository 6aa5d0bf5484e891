/*
 * vmem_mem.c: the memory behind vmem's own metadata.
 *
 * vmem runs underneath our malloc, so it never calls malloc. Its three kinds of
 * metadata come from here:
 *
 * - Boundary tags (vmem_seg_t): one global pool, protected by vmem_tag_lock. The pool
 *   starts with a static boot array and grows by chunks mapped from the OS; tags never
 *   go back to the OS (like illumos' vmem_seg cache, they are few and recycled). Arenas
 *   take tags from the pool only to refill their own reserve, with their arena lock
 *   dropped (vmem.c, section 9), and give surplus back. vmem_tag_lock is a leaf lock:
 *   nothing is taken while it is held.
 * - Arena structs (struct vmem): a static boot array, then one mapping per struct;
 *   destroyed arenas are recycled through a free list under vmem_arena_lock (a leaf).
 * - Hash tables of allocated segments: mapped from the OS when an arena's embedded
 *   table is outgrown, unmapped when replaced.
 *
 * Fault injection: vmem__tags_get() is the point FAULT_VMEM_TAG (fault/fault.h): when
 * armed, a refill fails as if mmap had.
 */
#include "vmem_impl.h"
#include "fault.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Tags in the static boot pool, seeded into the free pool VMEM_BOOT_TAG_BATCH at a time
 * (a page of them: seeding writes every tag, and a process that needs 30 tags should
 * not have all 56 KiB resident), and tags per chunk mapped from the OS (64 KiB).
 */
#define VMEM_BOOT_TAGS		1024
#define VMEM_BOOT_TAG_BATCH	64
#define VMEM_TAG_CHUNK_BYTES	(64u << 10)
/* Arena structs in the static boot pool. */
#define VMEM_BOOT_ARENAS	16

static pthread_mutex_t vmem_tag_lock = PTHREAD_MUTEX_INITIALIZER;
static vmem_seg_t vmem_boot_tags[VMEM_BOOT_TAGS];	/* handed out first */
static unsigned vmem_boot_tags_used;		/* under vmem_tag_lock */
static vmem_seg_t *vmem_tag_pool;		/* free tags (via vs_knext), vmem_tag_lock */
static size_t vmem_tag_pool_count;		/* tags in vmem_tag_pool, vmem_tag_lock */
static atomic_size_t vmem_tags_held;		/* tags ever obtained (boot + mapped) */

static pthread_mutex_t vmem_arena_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vmem vmem_boot_arenas[VMEM_BOOT_ARENAS];	/* handed out first */
static unsigned vmem_boot_arenas_used;		/* under vmem_arena_lock */
static vmem_t *vmem_arena_pool;			/* recycled structs, vmem_arena_lock */

static void *vmem_os_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static size_t vmem_page_round(size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (bytes + page - 1) & ~(page - 1);
}

size_t vmem_tag_bytes(void)
{
	return atomic_load(&vmem_tags_held) * sizeof(vmem_seg_t);
}

/* Puts tags [first, first + n) of fresh memory into the pool. vmem_tag_lock held. */
static void vmem_tag_pool_seed(vmem_seg_t *first, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		first[i].vs_type = VMEM_SEG_POOL;
		first[i].vs_knext = vmem_tag_pool;
		vmem_tag_pool = &first[i];
	}
	vmem_tag_pool_count += n;
	atomic_fetch_add(&vmem_tags_held, n);
}

/* Grows the pool: boot tags first, then a chunk from the OS. vmem_tag_lock held. */
static int vmem_tag_pool_grow(void)
{
	size_t n;
	vmem_seg_t *chunk;

	if (vmem_boot_tags_used < VMEM_BOOT_TAGS) {
		n = VMEM_BOOT_TAGS - vmem_boot_tags_used;
		if (n > VMEM_BOOT_TAG_BATCH)
			n = VMEM_BOOT_TAG_BATCH;
		vmem_tag_pool_seed(&vmem_boot_tags[vmem_boot_tags_used], n);
		vmem_boot_tags_used += (unsigned)n;
		return 0;
	}
	chunk = vmem_os_map(VMEM_TAG_CHUNK_BYTES);
	if (chunk == NULL)
		return -ENOMEM;
	vmem_tag_pool_seed(chunk, VMEM_TAG_CHUNK_BYTES / sizeof(vmem_seg_t));
	return 0;
}

/**
 * vmem__tags_get() - take @n tags from the global pool, for an arena's reserve.
 * @n: how many, > 0.
 * @listp: receives them, chained by vs_knext.
 *
 * Context: takes vmem_tag_lock (no arena lock may be held); may map memory.
 * Return: 0, or -ENOMEM (the OS refused, or fault injection fired); nothing taken then.
 */
int vmem__tags_get(unsigned n, vmem_seg_t **listp)
{
	vmem_seg_t *list = NULL;

	if (FAULT_HIT(FAULT_VMEM_TAG))
		return -ENOMEM;
	pthread_mutex_lock(&vmem_tag_lock);
	while (vmem_tag_pool_count < n) {
		if (vmem_tag_pool_grow() != 0) {
			pthread_mutex_unlock(&vmem_tag_lock);
			return -ENOMEM;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		vmem_seg_t *vs = vmem_tag_pool;

		vmem_tag_pool = vs->vs_knext;
		vs->vs_knext = list;
		list = vs;
	}
	vmem_tag_pool_count -= n;
	pthread_mutex_unlock(&vmem_tag_lock);
	*listp = list;
	return 0;
}

/**
 * vmem__tags_put() - give @n tags chained by vs_knext back to the global pool.
 *
 * Context: takes vmem_tag_lock; never fails.
 */
void vmem__tags_put(vmem_seg_t *list, unsigned n)
{
	vmem_seg_t *last = list;

	if (n == 0)
		return;
	for (unsigned i = 1; i < n; i++) {
		last->vs_type = VMEM_SEG_POOL;
		last = last->vs_knext;
	}
	last->vs_type = VMEM_SEG_POOL;
	pthread_mutex_lock(&vmem_tag_lock);
	last->vs_knext = vmem_tag_pool;
	vmem_tag_pool = list;
	vmem_tag_pool_count += n;
	pthread_mutex_unlock(&vmem_tag_lock);
}

/**
 * vmem__arena_get() - a zeroed arena struct: recycled, from the boot pool, or mapped.
 *
 * All three are zero already, so nothing is cleared here: a boot struct since the
 * program was loaded (clearing its 5.7 KiB again would fault in pages vmem_init() does
 * not write, one page fault at every process start), a mapped one by the OS, a recycled
 * one by vmem__arena_put() but for its pool link.
 *
 * Context: takes vmem_arena_lock; may map memory.
 * Return: the struct, or NULL when the OS refuses memory.
 */
vmem_t *vmem__arena_get(void)
{
	vmem_t *vm = NULL;

	pthread_mutex_lock(&vmem_arena_lock);
	if (vmem_arena_pool != NULL) {
		vm = vmem_arena_pool;
		vmem_arena_pool = vm->vm_poolnext;
		vm->vm_poolnext = NULL;
	} else if (vmem_boot_arenas_used < VMEM_BOOT_ARENAS) {
		vm = &vmem_boot_arenas[vmem_boot_arenas_used++];
	}
	pthread_mutex_unlock(&vmem_arena_lock);
	if (vm == NULL)
		vm = vmem_os_map(vmem_page_round(sizeof(*vm)));	/* zero-filled */
	return vm;
}

/**
 * vmem__arena_put() - recycle an arena struct (kept for the next vmem_create()),
 * cleared here, outside the lock, so that every struct in the pool is zero but its link.
 *
 * Context: takes vmem_arena_lock; never fails.
 */
void vmem__arena_put(vmem_t *vm)
{
	memset(vm, 0, sizeof(*vm));
	pthread_mutex_lock(&vmem_arena_lock);
	vm->vm_poolnext = vmem_arena_pool;
	vmem_arena_pool = vm;
	pthread_mutex_unlock(&vmem_arena_lock);
}

/**
 * vmem__hash_table_alloc() - a zeroed table of @nbuckets bucket heads from the OS.
 *
 * Context: no lock needed; maps memory.
 * Return: the table, or NULL when the OS refuses.
 */
vmem_seg_t **vmem__hash_table_alloc(size_t nbuckets)
{
	return vmem_os_map(vmem_page_round(nbuckets * sizeof(vmem_seg_t *)));
}

/**
 * vmem__hash_table_free() - unmap a table from vmem__hash_table_alloc().
 *
 * Context: no lock needed.
 */
void vmem__hash_table_free(vmem_seg_t **table, size_t nbuckets)
{
	munmap(table, vmem_page_round(nbuckets * sizeof(vmem_seg_t *)));
}
