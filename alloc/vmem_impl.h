/*
 * vmem internals: the structures behind vmem_t and the helpers shared by vmem.c (the
 * arena), vmem_qcache.c (quantum caches), vmem_mem.c (metadata memory: boundary tags,
 * arena structs, hash tables) and vmem_check.c (the invariant walker).
 *
 * Not a public header: only the vmem sources include it.
 */
#ifndef MEMDESC_VMEM_IMPL_H
#define MEMDESC_VMEM_IMPL_H

#include "vmem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* One free list per power of two: list i holds free segments of size [2^i, 2^(i+1)). */
#define VMEM_FREELISTS 64

/*
 * Boundary-tag reserve (vmem.c's design comment, section 9, derives these numbers).
 * VMEM_SEGS_PER_ALLOC: carving [addr, addr + size) out of the inside of a free segment
 *	leaves a free segment before and one after it; the old tag is reused for one of
 *	the three, so two new tags.
 * VMEM_SEGS_PER_SPAN: a new span needs its span tag and the tag of its free segment.
 * VMEM_SEGS_PER_IMPORT: the worst case of one allocation: nothing fits, a span is
 *	imported and added (2), then carved (2).
 */
#define VMEM_SEGS_PER_ALLOC	2
#define VMEM_SEGS_PER_SPAN	2
#define VMEM_SEGS_PER_IMPORT	(VMEM_SEGS_PER_SPAN + VMEM_SEGS_PER_ALLOC)
/* Tags fetched from the global pool per refill, and the most an arena keeps. */
#define VMEM_SEGS_REFILL	32
#define VMEM_SEGS_RESERVE_MAX	128

/* Entries per quantum cache (one cache per multiple of the quantum). */
#define VMEM_QCACHE_DEPTH	32
/* Buckets of the hash table embedded in every arena, before the first growth. */
#define VMEM_HASH0_BUCKETS	16
/*
 * MEMDESC_DEBUG: arenas with more tags are checked every (tags / this + 1) operations;
 * build with -DVMEM_DEBUG_AMORTIZE=0 to check after every operation whatever the size.
 */
#ifndef VMEM_DEBUG_AMORTIZE
#define VMEM_DEBUG_AMORTIZE	1024
#endif
/* Smallest table mapped from the OS (one page of bucket pointers). */
#define VMEM_HASH_MIN_MAPPED	512

/* What a boundary tag describes. */
enum vmem_seg_type {
	VMEM_SEG_POOL = 0,	/* unused: in the global pool or an arena's reserve */
	VMEM_SEG_FREE,		/* a free segment, on a free list */
	VMEM_SEG_ALLOC,		/* an allocated segment, in the hash table */
	VMEM_SEG_SPAN,		/* a span: precedes its segments in the address list */
	VMEM_SEG_HEAD,		/* the sentinel of an arena's address or span list */
};

/*
 * A boundary tag: one span or one segment of an arena. The address list holds, in
 * address order, each span tag followed by the segments that tile its span.
 */
typedef struct vmem_seg {
	uintptr_t vs_start;		/* first integer of the range */
	size_t vs_size;			/* number of integers, > 0 (0 in sentinels) */
	struct vmem_seg *vs_anext;	/* address list: next (circular, via vm_seg0) */
	struct vmem_seg *vs_aprev;	/* address list: previous */
	struct vmem_seg *vs_knext;	/* FREE: free list; ALLOC: hash chain; SPAN: span
					 * list (circular, via vm_span0); POOL: pool list */
	struct vmem_seg *vs_kprev;	/* FREE: free list (NULL at the head); SPAN: span list */
	uint8_t vs_type;		/* enum vmem_seg_type */
	uint8_t vs_import;		/* SPAN: imported from the source, to be released */
} vmem_seg_t;

/* A quantum cache: free ranges of one size, kept allocated in the arena. */
struct vmem_qcache {
	pthread_mutex_t qc_lock;	/* protects qc_count and qc_addr; taken before vm_lock */
	unsigned qc_count;		/* entries in qc_addr */
	uintptr_t qc_addr[VMEM_QCACHE_DEPTH];	/* starts of cached ranges (a stack) */
};

/* An arena. Fields after vm_lock are protected by it unless said otherwise. */
struct vmem {
	char vm_name[VMEM_NAMELEN];	/* for messages; constant */
	size_t vm_quantum;		/* unit of allocation, a power of two; constant */
	unsigned vm_qshift;		/* log2(vm_quantum); constant */
	vmem_import_t *vm_import;	/* import callback or NULL; constant */
	vmem_release_t *vm_release;	/* release callback (set with vm_import); constant */
	vmem_t *vm_source;		/* arena imported from, or NULL; constant */
	size_t vm_qcache_max;		/* largest quantum-cached size, 0 for none; constant */
	unsigned vm_nqcache;		/* vm_qcache_max / vm_quantum; constant */
	atomic_uint vm_nimporters;	/* arenas whose source this is (atomic) */
	atomic_size_t vm_qcache_bytes;	/* bytes held in quantum caches (atomic; grows
					 * only under vm_lock) */
	atomic_ulong vm_debug_ops;	/* MEMDESC_DEBUG: operations, for vmem__debug_check */
	pthread_mutex_t vm_lock;	/* the arena lock */
	vmem_seg_t vm_seg0;		/* sentinel of the address list */
	vmem_seg_t vm_span0;		/* sentinel of the span list (vs_knext/vs_kprev) */
	vmem_seg_t *vm_freelist[VMEM_FREELISTS];	/* free lists by power of two */
	uint64_t vm_freemap;		/* bit i set iff vm_freelist[i] is non-empty */
	vmem_seg_t **vm_hash;		/* hash of allocated segments by start */
	size_t vm_hash_mask;		/* buckets - 1 (buckets a power of two) */
	unsigned vm_hash_shift;		/* 64 - log2(buckets), for the multiplicative hash */
	vmem_seg_t *vm_hash0[VMEM_HASH0_BUCKETS];	/* the first, embedded table */
	vmem_seg_t *vm_rotor;		/* next-fit: the search starts here */
	vmem_seg_t *vm_segfree;		/* tag reserve (via vs_knext) */
	unsigned vm_nsegfree;		/* tags in the reserve */
	size_t vm_total;		/* sum of the spans' sizes */
	size_t vm_alloc;		/* sum of the ALLOC segments' sizes (cached included) */
	size_t vm_nalloc;		/* ALLOC segments (= entries in the hash) */
	size_t vm_nfree;		/* FREE segments (= entries on the free lists) */
	size_t vm_nspans;		/* spans */
	size_t vm_nimported;		/* imported spans */
	struct vmem_qcache vm_qcache[VMEM_QCACHE_MAX_QUANTA];	/* cache i: (i+1) quanta */
	struct vmem *vm_poolnext;	/* free arena structs in vmem_mem.c (its lock) */
};

/* Ranges to give back to a source once the arena lock is dropped. */
struct vmem_release_list {
	unsigned vr_count;			/* entries used */
	uintptr_t vr_addr[VMEM_QCACHE_DEPTH + 1];	/* span starts */
	size_t vr_size[VMEM_QCACHE_DEPTH + 1];		/* span sizes */
};

/* vmem_mem.c: metadata memory. */
int vmem__tags_get(unsigned n, vmem_seg_t **listp);
void vmem__tags_put(vmem_seg_t *list, unsigned n);
vmem_t *vmem__arena_get(void);
void vmem__arena_put(vmem_t *vm);
vmem_seg_t **vmem__hash_table_alloc(size_t nbuckets);
void vmem__hash_table_free(vmem_seg_t **table, size_t nbuckets);

/* vmem.c: segment operations, called with vm_lock held unless said otherwise. */
void vmem__report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned vmem__freelist_index(size_t size);
size_t vmem__hash_index(const vmem_t *vm, uintptr_t addr);
vmem_seg_t *vmem__hash_find_locked(vmem_t *vm, uintptr_t addr);
vmem_seg_t *vmem__alloc_lookup_locked(vmem_t *vm, uintptr_t addr, size_t size,
				      const char *who);
void vmem__seg_free_locked(vmem_t *vm, vmem_seg_t *vs, struct vmem_release_list *rel);
void vmem__free_unlock(vmem_t *vm, const struct vmem_release_list *rel);
void vmem__debug_check(vmem_t *vm);

/* vmem_check.c: the walker, with every lock of the arena held. */
int vmem__check_locked(vmem_t *vm);

/* vmem_qcache.c: quantum caches. */
void vmem__qcache_init(vmem_t *vm);
void vmem__qcache_fini(vmem_t *vm);
bool vmem__qcache_alloc(vmem_t *vm, size_t size, uintptr_t *addrp);
int vmem__qcache_free(vmem_t *vm, uintptr_t addr, size_t size, bool cache, const char *who);
bool vmem__qcache_drain(vmem_t *vm);
int vmem__qcache_check_locked(vmem_t *vm, size_t *cachedp);

#endif /* MEMDESC_VMEM_IMPL_H */
