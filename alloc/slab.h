/*
 * slab.h: object caches after Bonwick ("The Slab Allocator", USENIX 1994) with the
 * magazine layer of "Magazines and Vmem" (Bonwick and Adams, USENIX 2001).
 *
 * A kmem_cache hands out objects of one size. Its slabs are runs of pages from
 * pages_alloc(), each described by a struct slab memdesc (MEMDESC_SLAB) allocated apart
 * from its pages, so that any address can be taken back to its slab, cache and object
 * through pfn_to_memdesc(). In front of the slabs sits the magazine layer: every thread
 * has a loaded and a previous magazine per cache, and allocates and frees from them
 * with no lock and no atomic operation; a depot per cache holds full and empty
 * magazines.
 *
 * The design (slab layout, lists, magazines, the depot, reaping, type-stable caches,
 * the bootstrap) is written at the top of alloc/slab.c and alloc/slab_mag.c.
 */
#ifndef MEMDESC_SLAB_H
#define MEMDESC_SLAB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kmem_cache;
struct slab;

/* kmem_cache_create() flags. */
#define KMC_TYPESAFE_BY_RCU 0x1 /* slab pages freed only after an RCU grace period */
#define KMC_NOMAGAZINE	    0x2 /* no magazine layer: every call takes the cache lock */

/* Largest object size and alignment kmem_cache_create() accepts. */
#define KMEM_MAX_SIZE ((size_t)1 << 20)
#define KMEM_MAX_ALIGN ((size_t)4096)
/* Most caches alive at once (every cache has a slot in each thread's magazine table). */
#define KMEM_MAX_CACHES 256

/**
 * kmem_cache_create() - create a cache of objects of @size bytes.
 * @name: for messages (copied, truncated to 31 characters).
 * @size: 1..KMEM_MAX_SIZE.
 * @align: 0 (16), or a power of two up to KMEM_MAX_ALIGN.
 * @flags: KMC_* flags.
 *
 * Context: takes the cache-list lock.
 * Return: the cache; NULL and errno EINVAL (bad argument), ENOMEM, or EMFILE (too many
 * caches).
 */
struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
				     unsigned int flags);

/**
 * kmem_cache_destroy() - free a cache. Objects still allocated are reported and their
 * slabs stay (leaked) rather than be freed under a user.
 *
 * Context: nobody uses @cache any more (in any thread).
 */
void kmem_cache_destroy(struct kmem_cache *cache);

/**
 * kmem_cache_alloc() - one object.
 *
 * Context: no lock and no atomic when the thread's loaded magazine has an object;
 * otherwise the depot lock or the cache lock; may allocate pages.
 * Return: the object (aligned as asked), or NULL and errno ENOMEM.
 */
void *kmem_cache_alloc(struct kmem_cache *cache);

/**
 * kmem_cache_free() - free an object of @cache.
 *
 * A pointer that is not an object of @cache (another cache's, an interior pointer, not
 * a slab at all) or an object that is already free in its slab is reported on stderr
 * with the function, the address and the sizes, and nothing changes. Never fails.
 *
 * Context: no lock and no atomic when the thread's loaded magazine has room.
 */
void kmem_cache_free(struct kmem_cache *cache, void *obj);

/** kmem_cache_free_checked() - kmem_cache_free() returning 0 or -EINVAL (reported). */
int kmem_cache_free_checked(struct kmem_cache *cache, void *obj);

/** kmem_cache_size() - the object size the cache was created with. */
size_t kmem_cache_size(const struct kmem_cache *cache);
/** kmem_cache_name() - the cache's name. */
const char *kmem_cache_name(const struct kmem_cache *cache);

/**
 * struct kmem_obj_info - what kmem_obj_info() finds out about a pointer.
 * @cache: the cache the pointer's slab belongs to.
 * @slab: the slab.
 * @obj: start of the object containing the pointer.
 * @size: the cache's object size (kmem_cache_size()).
 * @allocated: whether the object is allocated in its slab (objects held in
 *	magazines count as allocated).
 */
struct kmem_obj_info {
	struct kmem_cache *cache;
	struct slab *slab;
	void *obj;
	size_t size;
	int allocated;
};

/**
 * kmem_obj_info() - from any pointer to its slab, cache, object start and size.
 *
 * Context: lock-free (pfn_to_memdesc()); the caller owns the object or holds
 * rcu_read_lock().
 * Return: 0, or -EINVAL if @ptr is not inside an object of a slab (*@info unchanged).
 */
int kmem_obj_info(const void *ptr, struct kmem_obj_info *info);

/** slab_cache() - the cache a slab belongs to. */
struct kmem_cache *slab_cache(const struct slab *slab);

/**
 * kmem_cache_reap() - give back what the cache has not used during the last
 * interval: empty slabs and depot magazines below the working set seen since the
 * previous reap. Two calls in a row with no activity between free everything unused.
 */
void kmem_cache_reap(struct kmem_cache *cache);
/** kmem_reap_all() - kmem_cache_reap() on every cache. */
void kmem_reap_all(void);
/**
 * kmem_reap_idle_all() - in every cache whose depot has held full magazines for
 * @idle_ms milliseconds or more with none taken, their objects go back to the slabs
 * (and a slab left empty to the page allocator); the magazines stay, empty.
 */
void kmem_reap_idle_all(uint64_t idle_ms);
/**
 * kmem_drain_all() - give back every depot magazine and every empty slab of every
 * cache, in one pass (cheaper than two kmem_reap_all(); slabs emptied by a later
 * cache's turn stay until the next reap). The magazines loaded in threads stay.
 */
void kmem_drain_all(void);
/**
 * kmem_thread_flush() - return the calling thread's magazines to the depots (as at
 * thread exit).
 */
void kmem_thread_flush(void);
/**
 * kmem_threads() - how many threads hold magazines now, the allocator's own (the
 * md_rcu worker) aside: the program's threads that use the caches. In a fork child,
 * the parent's other threads stay counted. Context: any; one relaxed load.
 */
unsigned int kmem_threads(void);

/**
 * kmem_cache_verify() - check the cache's slabs (lists, counts, bitmaps, page map) and
 * depot. Context: takes the cache's locks; O(slabs + depot magazines).
 * Return: 0 or -EINVAL (printed).
 */
int kmem_cache_verify(struct kmem_cache *cache);

struct kmem_cache_stats {
	size_t obj_size;	/* object size */
	size_t slab_pages;	/* pages per slab */
	size_t objs_per_slab;
	size_t slabs;		/* slabs */
	size_t slabs_empty;	/* of which empty */
	size_t objs_slab_inuse;	/* objects allocated from slabs (in use or in magazines) */
	size_t objs_depot;	/* objects in depot magazines */
	size_t mag_rounds;	/* capacity of new magazines */
	size_t depot_contention;	/* depot trylock failures */
	size_t depot_switches;	/* depot visits by another thread than the last one */
};
void kmem_cache_stats(struct kmem_cache *cache, struct kmem_cache_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* MEMDESC_SLAB_H */
