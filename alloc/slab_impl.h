/*
 * slab_impl.h: the structures of the slab allocator, shared by slab.c (the slab layer,
 * caches) and slab_mag.c (the magazine layer, the depot, per-thread state), and the
 * internal entry points the memdesc module uses during bootstrap.
 */
#ifndef MEMDESC_SLAB_IMPL_H
#define MEMDESC_SLAB_IMPL_H

#include "slab.h"
#include "memdesc_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <urcu-bp.h>

/*
 * struct slab - one slab: a naturally aligned power-of-two run of pages carved into
 * objects, with a bitmap of allocated objects in the bitmap table or at the end of the
 * pages (kmem__bitmap). 64 bytes, from kmem_slab_cache (whose own slabs are described
 * by their first object).
 */
struct slab {
	struct kmem_cache *s_cache;	/* owner */
	unsigned long s_pfn;		/* first page */
	uint32_t s_npages;		/* pages (== s_cache->c_slab_pages) */
	uint32_t s_inuse;		/* objects allocated (bits set), incl. the self-descriptor */
	uint32_t s_hint;		/* no free bit in bitmap words above this one */
	uint32_t s_list;		/* KMEM_LIST_* the slab is on (under c_lock) */
	struct slab *s_next;		/* list links (under c_lock) */
	struct slab *s_prev;
	struct rcu_head s_rcu;		/* deferred free of type-stable slabs */
} __attribute__((aligned(64)));

enum { KMEM_LIST_PARTIAL, KMEM_LIST_FULL, KMEM_LIST_EMPTY, KMEM_LIST_NONE, KMEM_NR_LISTS = 3 };

/* struct kmem_magazine - M rounds (object pointers); m_rounds of them are loaded. */
struct kmem_magazine {
	struct kmem_magazine *m_next;	/* depot list link */
	uint32_t m_rounds;		/* objects held */
	uint32_t m_cap;			/* capacity (fixed at allocation) */
	void *m_obj[];
};

/* Magazine capacities: magazine caches of 48, 80, 144, 272, 528, 1040, 2064 bytes. */
#define KMEM_NR_MAGTYPES 7
extern const uint32_t kmem_mag_caps[KMEM_NR_MAGTYPES];

struct kmem_cache {
	char c_name[32];		/* for messages */
	size_t c_size;			/* object size asked for */
	size_t c_stride;		/* distance between objects (size rounded to align) */
	size_t c_align;			/* object alignment */
	unsigned int c_flags;		/* KMC_* */
	int c_id;			/* slot in the per-thread magazine tables; -1: none */
	bool c_self_desc;		/* kmem_slab_cache: object 0 of a slab describes it */
	bool c_static;			/* lives in the boot area (not in kmem_cache_cache) */
	uint32_t c_slab_pages;		/* pages per slab (a power of two) */
	uint32_t c_nobj;		/* objects per slab */
	uint32_t c_bitmap_off;		/* byte offset of the bitmap in the slab */
	uint32_t c_bitmap_words;	/* 64-bit words of bitmap */
	bool c_bitmap_table;		/* the bitmap is in the bitmap table (slab.c, 1.) */
	uint64_t c_recip;		/* 2^64 / c_stride + 1: offset -> index without a division */

	/* Slab layer, under c_lock. */
	pthread_mutex_t c_lock;
	struct slab *c_lists[KMEM_NR_LISTS];	/* partial, full, empty (doubly linked) */
	size_t c_nr[KMEM_NR_LISTS];	/* slabs on each list */
	size_t c_empty_min;		/* fewest empty slabs since the last reap */
	size_t c_inuse;			/* objects allocated from slabs (incl. magazines) */

	/* Depot, under c_depot_lock. */
	pthread_mutex_t c_depot_lock;
	struct kmem_magazine *c_full;	/* full magazines */
	struct kmem_magazine *c_empty;	/* empty magazines */
	size_t c_nr_full, c_nr_empty;
	size_t c_full_min, c_mempty_min; /* depot working-set minima since the last reap */
	size_t c_depot_objs;		/* rounds in c_full */
	/*
	 * kmem__now_ms() when c_full last became non-empty, 0 while it is empty: written
	 * under c_depot_lock, read without it by the idle reap's first look (a reap that
	 * locked every depot wrote a page of every cache: copy-on-write faults in a fork
	 * child's first malloc).
	 */
	_Atomic uint64_t c_full_since;
	bool c_full_taken;		/* a full magazine was taken since c_full_since */
	atomic_uint c_magtype;		/* index in kmem_mag_caps of new magazines */
	atomic_size_t c_contention;	/* depot trylock failures */
	size_t c_contention_seen;	/* c_contention at the last resize (depot lock) */
	const struct kmem_tls *c_depot_user;	/* the thread that last took the depot lock */
	size_t c_depot_switches;	/* changes of c_depot_user (depot lock) */
	/*
	 * Nonzero: an object the slab layer puts in a magazine gets c_mag_mark ^ its
	 * address in its second word (objects of 16 bytes or more). The malloc layer marks
	 * the blocks it frees so, which tells a block in a magazine from a live one however
	 * it got there. Set once, before the cache is used.
	 */
	uint64_t c_mag_mark;

	struct kmem_cache *c_next;	/* kmem_caches list (kmem_list_lock) */
};

/*
 * The allocation bitmap of the slab of @c at @pfn: its words in the bitmap table, or
 * at c_bitmap_off in the slab (slab.c, section 1).
 */
static inline uint64_t *kmem__bitmap(const struct kmem_cache *c, unsigned long pfn)
{
	if (c->c_bitmap_table)
		return md__bitmap_words(pfn);
	return (uint64_t *)((char *)md__pfn_to_virt(pfn) + c->c_bitmap_off);
}

/*
 * The index of the object at byte offset @off of a slab whose stride has the
 * reciprocal @recip (c_recip), and in *@exact whether @off is that object's start:
 * one multiplication gives both (Lemire, Kaser and Kurz, "Faster remainder by direct
 * computation", 2019): for @off < 2^32 and recip = ceil(2^64 / stride), the high half
 * of recip * off is off / stride and the low half is below recip exactly when the
 * division leaves no remainder. Slabs are at most 8 MiB (slab.c, KMEM_MAX_SLAB_PAGES).
 * free()'s fast path tested i * stride == off instead: a second multiplication after
 * the first, on its critical path.
 */
static inline uint32_t kmem__obj_index(uint64_t recip, size_t off, bool *exact)
{
	unsigned __int128 prod = (unsigned __int128)recip * off;

	*exact = (uint64_t)prod < recip;
	return (uint32_t)(prod >> 64);
}

/* Internal caches, in the boot area (slab.c). */
extern struct kmem_cache *kmem_slab_cache;
extern struct kmem_cache *kmem_mag_cache[KMEM_NR_MAGTYPES];
extern struct kmem_cache *kmem_tls_cache;
extern atomic_long kmem_nr_slabs;

/* Set up a cache structure (no allocation). 0 / -EINVAL. */
int kmem__cache_setup(struct kmem_cache *c, const char *name, size_t size, size_t align,
		      unsigned int flags);
/* The static caches; called once by memdesc_init(). 0 / -ENOMEM. */
int kmem__boot(void);
/* Create a cache whose struct lives in the boot area (internal caches). */
struct kmem_cache *kmem__cache_create_static(const char *name, size_t size, size_t align,
					     unsigned int flags);

/* Slab layer (slab.c). */
unsigned int kmem__slab_alloc_batch(struct kmem_cache *c, void **objs, unsigned int n);
/* Free objects into their slabs. Objects must have been validated. */
void kmem__slab_free_batch(struct kmem_cache *c, void **objs, unsigned int n);
/* Validate a pointer for kmem_cache_free(): 0, or -EINVAL reported by @fn. */
int kmem__validate(struct kmem_cache *c, const void *obj, const char *fn, struct slab **slabp);

/* Magazine layer (slab_mag.c). */
void *kmem__mag_alloc(struct kmem_cache *c);
void kmem__mag_free(struct kmem_cache *c, void *obj);
void kmem__depot_reap(struct kmem_cache *c);
/* Return every magazine of the cache: all threads' (destroy; nobody uses it) and depot. */
void kmem__mag_purge_all_threads(struct kmem_cache *c);
void kmem__depot_drain(struct kmem_cache *c);
/*
 * The idle reap of one depot (slab_mag.c, section 6): at @now (kmem__now_ms()), when its
 * full magazines have been there for @idle_ms or more with none taken, their objects go
 * back to the slabs; the magazines stay, empty. If one was taken since its stamp, the
 * depot is stamped @now instead. Takes the depot lock, then c_lock.
 */
void kmem__depot_reap_idle(struct kmem_cache *c, uint64_t now, uint64_t idle_ms);
/* Milliseconds of CLOCK_MONOTONIC (a vDSO read, no system call). */
uint64_t kmem__now_ms(void);
void kmem__thread_exit(void);
size_t kmem__tls_size(void);
int kmem__depot_verify(struct kmem_cache *c);
int kmem__cache_id_get(struct kmem_cache *c);
void kmem__cache_id_put(struct kmem_cache *c);

/* Per-thread nesting depth of slab-layer growth (bounds the recursion). */
extern __thread unsigned int kmem__nesting;
/* Set by the allocator's own threads (the md_rcu worker) before they allocate: not
 * counted by kmem_threads(). */
extern __thread bool kmem__service_thread;

/* A thread's magazines for one cache (slab_mag.c, section 1). */
struct kmem_cpu {
	struct kmem_magazine *loaded;	/* pops and pushes go here */
	struct kmem_magazine *prev;	/* full or empty (or partly: after a fill) */
};

/* A thread's magazines, one slot per cache id (slab_mag.c, section 5). */
struct kmem_tls {
	struct kmem_tls *t_next, *t_prev;	/* kmem_tls_list (kmem_tls_lock) */
	struct kmem_cpu t_cpu[KMEM_MAX_CACHES];
};

/* The calling thread's magazines; NULL before its first magazine operation and after
 * its exit (slab_mag.c). Only the owning thread reads or writes its magazines. */
extern __thread struct kmem_tls *kmem__tls __attribute__((tls_model("initial-exec")));

/*
 * The magazine an allocation pops from: the loaded one if it has a round, else the
 * previous one if it has, which then becomes the loaded one (the exchange of section 1
 * of slab_mag.c, thread-local: no lock). NULL when both are empty or absent: the
 * depot's turn (kmem__mag_alloc). Inline for the malloc layer's fast path too.
 */
static inline struct kmem_magazine *kmem__mag_for_alloc(struct kmem_cpu *cpu)
{
	struct kmem_magazine *m = cpu->loaded, *prev;

	if (likely(m != NULL) && likely(m->m_rounds))
		return m;
	prev = cpu->prev;
	if (!prev || !prev->m_rounds)
		return NULL;
	cpu->prev = m;
	cpu->loaded = prev;
	return prev;
}

/* The same for a free: the loaded magazine if it has room, else an empty previous one. */
static inline struct kmem_magazine *kmem__mag_for_free(struct kmem_cpu *cpu)
{
	struct kmem_magazine *m = cpu->loaded, *prev;

	if (likely(m != NULL) && likely(m->m_rounds < m->m_cap))
		return m;
	prev = cpu->prev;
	if (!prev || prev->m_rounds)
		return NULL;
	cpu->prev = m;
	cpu->loaded = prev;
	return prev;
}

/*
 * The magazine fast paths, inline for the malloc layer and kmem_cache_alloc/free: a
 * pop from or a push onto the loaded magazine, no lock and no atomic (only the owning
 * thread touches it). Anything else (no magazines yet, loaded empty or full) goes to
 * the out-of-line kmem__mag_alloc/kmem__mag_free. @c has a cache id (c_id >= 0).
 */
static inline void *kmem__mag_alloc_inline(struct kmem_cache *c)
{
	struct kmem_tls *t = kmem__tls;
	struct kmem_magazine *m;

	if (likely(t) && likely((m = t->t_cpu[c->c_id].loaded) != NULL) && likely(m->m_rounds))
		return m->m_obj[--m->m_rounds];
	return kmem__mag_alloc(c);
}

static inline void kmem__mag_free_inline(struct kmem_cache *c, void *obj)
{
	struct kmem_tls *t = kmem__tls;
	struct kmem_magazine *m;

	if (likely(t) && likely((m = t->t_cpu[c->c_id].loaded) != NULL) &&
	    likely(m->m_rounds < m->m_cap)) {
		m->m_obj[m->m_rounds++] = obj;
		return;
	}
	kmem__mag_free(c, obj);
}

/*
 * Valgrind builds: objects of this cache are heap blocks to memcheck (md_valgrind.h):
 * caches of kmem_cache_create() that are not type-stable.
 */
static inline bool kmem__vg_tracked(const struct kmem_cache *c)
{
	return !c->c_static && !(c->c_flags & KMC_TYPESAFE_BY_RCU);
}

/*
 * Free an object that the caller knows to be a live object of @c (memdesc's own
 * descriptors, freed once by construction): no validation walk of the page map.
 * MEMDESC_DEBUG builds validate anyway, and caches memcheck tracks go the usual way.
 */
static inline void kmem__free_trusted(struct kmem_cache *c, void *obj)
{
#ifdef MEMDESC_DEBUG
	kmem_cache_free(c, obj);
#else
	if (unlikely(kmem__vg_tracked(c)))
		kmem_cache_free(c, obj);	/* memcheck is told of the free there */
	else if (likely(c->c_id >= 0))
		kmem__mag_free_inline(c, obj);
	else
		kmem__slab_free_batch(c, &obj, 1);
#endif
}

#endif /* MEMDESC_SLAB_IMPL_H */
