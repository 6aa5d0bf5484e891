/*
 * md_malloc.c: the malloc family on memdescs (size classes, large folios, free
 * dispatch, bad-free reports).
 *
 * 1. Size classes
 *    Requests up to MD_SMALL_MAX (32 KiB) are objects of one of 72 slab caches
 *    (kmem_cache_create, align 16). The classes are 16, 32, ..., 128 in 16-byte steps,
 *    then 8 classes per doubling: (2^k, 2^(k+1)] is cut into 8 equal steps of 2^(k-3)
 *    for k = 7..14 (144, 160, ..., 256, 288, ..., 512, ..., 28672, 30720, 32768). A
 *    request of n > 128 bytes lands in a class of at most n - 1 + 2^(k-3) with
 *    2^k < n, so the waste is below 2^(k-3) / 2^k = 12.5%. Between 64 and 128 the
 *    16-byte alignment every block needs forbids steps below 16 bytes, so waste there
 *    reaches 15/65 = 23% (65 -> 80): no 16-aligned class set does better. Every class
 *    is a multiple of 16, and the 2^k ones are multiples of every power of two up to
 *    themselves, which aligned allocations use (section 3).
 *    The class of n is computed, not looked up: for n > 128, with x = n - 1,
 *    k = floor(log2 x) and q = x >> (k - 3) (8..15), the class is 8 + 8(k - 7) + q - 8.
 *    The magazine layer of each cache (per-thread loaded/previous magazines, no lock)
 *    is the fast path; cross-thread frees go to the freeing thread's magazines, so they
 *    serialize on no lock; whole magazines travel through the depot.
 *
 * 2. Large blocks
 *    Above 32 KiB a block is a folio of exactly ceil(n / 4096) pages (vmem allocates
 *    any page count: no rounding to a power of two). 32 KiB is where page rounding
 *    costs at most 4095 / 32769 < 12.5%, the same bound as the classes. realloc resizes
 *    a large block in place first (folio_resize -> pages_resize): it grows into
 *    the free pages right after it (1/8 more than asked when they are there, so that n
 *    growth steps resize O(log n) times; pages freed but kept resident count as free: a
 *    freed block after it in the large-block cache is given back for the grow,
 *    md_lc_evict_next, and the page allocator takes such pages off its dirty list), or
 *    gives back its tail pages when that frees more than an eighth of it (the 12.5%
 *    bound again). When the pages after it are taken (or in another span of the page
 *    arena), a shrink keeps the block while at least half of it stays used, and a grow
 *    moves it; to keep a block grown step by step among other blocks from being copied
 *    at every step, a moved block gets 1/8 more pages than asked (the same 12.5%
 *    bound), so n steps copy O(log n) times. A block of 256 KiB or more that moves into
 *    fresh pages is not copied: its pages go there by page-table moves (folio_move_pages,
 *    mremap), as glibc moves its mmap'ed chunks: malloc/realloc_buffers (two buffers
 *    grown a quarter at a time to 32 MiB, each in the other's way) 884 -> 177 ms, as
 *    each copy had faulted in the whole new block. Freed large blocks up to 32 MiB are
 *    kept in a cache of page-count buckets and reused for requests they fit within 25%
 *    (the page allocator reuses a freed range only for exactly the same page count; see
 *    "the cache of freed large blocks" below). Alignments above a page ask the page
 *    allocator for aligned pages (folio_alloc_aligned, memdesc/folio_large.c).
 *
 * 3. Alignment
 *    Every class is a multiple of 16 and a slab starts on a page, so every block is
 *    16-aligned. For an alignment A of 32..4096 and a small size, the block comes from
 *    the smallest class >= n that is a multiple of A (objects sit at slab base +
 *    i * class, and slabs are naturally aligned runs of pages); above that, from
 *    aligned folios. That class is the class of m = n rounded up to A (at least A):
 *    no multiple of A lies in [n, m), and m is itself a class (classes in
 *    (2^k, 2^(k+1)] step by 2^(k-3) <= A when m's class is not a multiple of A, so m,
 *    a multiple of A, is one of the steps), so one lookup, where a scan of the classes
 *    upward took ~290 instructions per aligned_alloc(4096, small). The block is then
 *    an ordinary block: free, realloc and malloc_usable_size need no record of the
 *    alignment.
 *
 * 4. free: finding the owner
 *    free(p) takes p to its pfn and asks pfn_to_memdesc() once: a slab (the cache must
 *    be one of our classes; the object index comes from the slab's first pfn and the
 *    cache's reciprocal of the stride, as kmem_obj_info computes it, and must be exact
 *    and allocated in the slab's bitmap) or a folio (the folio's first page must be p).
 *    Anything else is a bad free. The validated object goes straight to the magazine
 *    layer (kmem__mag_free): kmem_cache_free() would validate it again with a second
 *    walk of the page map. This reads struct slab and struct kmem_cache
 *    (alloc/slab_impl.h): the malloc layer is the slab allocator's one client on the
 *    hot path, and the walk is the cost that matters (DESIGN.md, "Hot paths").
 *
 * 5. Bad frees: what is detected, and what is not
 *    Reported (one line on stderr with the function, the address and the error,
 *    written with write(2); then abort() unless abort=0):
 *    - a pointer outside the frame space (stack, static, libc's heap, garbage);
 *    - a pointer into the frame space that no allocation owns (freed large block, a
 *      free page) or that belongs to memdesc's internal caches;
 *    - an interior pointer (not the start of its object or folio);
 *    - a double free of a small block, whether the first free reached the slab (its
 *      bitmap says free) or still sits in a magazine: free() writes key ^ address into
 *      the block's second word (key: a per-process random odd number), and finds it
 *      there on the second free; malloc() clears the word. The slab layer writes the
 *      same into blocks it puts in a magazine (c_mag_mark), so a free of a block that
 *      was never handed out (malloc(48) + 48) is caught too: before, that block was
 *      allocated in the bitmap and unmarked, passed every check, and was later handed
 *      out twice. A program that stores
 *      exactly key ^ address in that word of a live block would be mistaken for a
 *      double free: with a 64-bit random key, a chance of 2^-64 per free;
 *    - a double free of a large block while it sits in the large-block cache (the
 *      same key, written when it is cached) or after its pages went back and before
 *      they are reused (reported as "double free or invalid pointer: no block here");
 *    - md_free_sized() with a size above the usable size;
 *    - with guard=1, a write past the requested size: a canary after each block and
 *      the size in its last word, checked on free and realloc (see md_guard_arm()).
 *    SECURITY.md says the same for users, with what is not detected.
 *    Not detected: a double free of a large block after its pages were handed out
 *    again (the pointer then names a live block), of a small block after its object was
 *    allocated again (the same), frees racing with each other in two threads,
 *    overflows without guard=1, and writes after free (junk=1 makes them visible to
 *    the program instead; a build with MEMDESC_VALGRIND run under memcheck reports
 *    them, memdesc/md_valgrind.h).
 *
 * 6. Errors
 *    NULL with errno = ENOMEM on every failure, including size overflow in calloc and
 *    reallocarray and sizes no page count can hold; EINVAL for a bad alignment where
 *    glibc sets it (aligned_alloc); posix_memalign returns its error.
 *
 * 7. The fast paths
 *    malloc (and calloc) of a small size and free of a small block are served, when
 *    they can be, without md__enter(): malloc pops the loaded magazine of its class (no
 *    read-side section at all: it touches only this thread's magazine), free walks the
 *    page map inside a bare urcu-bp read-side section (which keeps the nodes and the
 *    slab's pages alive, and which fork preparation waits out like any other), runs
 *    every check of section 4 and pushes onto the loaded magazine. Neither takes a lock
 *    nor writes a shared word, so neither needs the fork flag nor the nesting count of
 *    md__enter(): a fork that copies the process in the middle of one copies a
 *    half-updated magazine of another thread, which the child never uses (section 3 of
 *    md_env.c: other threads' magazines stay allocated in the child). Whenever anything
 *    else is needed (first use, junk=1, an empty or full magazine, a large block, a
 *    check that fails) the general path runs from scratch, and reports a bad free.
 *    Measured: a malloc+free pair of 16..256 bytes, 413 -> 208 instructions
 *    (callgrind).
 *    free's fast path makes no call, so that gcc keeps its values in caller-saved
 *    registers instead of saving six callee-saved ones: what would need a call bails
 *    out to the general path instead. Its read-side section is liburcu-bp's read lock
 *    with the reader's address loaded from TLS once (md_fast_rcu_lock; a thread not
 *    yet registered takes the general path, whose section registers it); its walk is
 *    xa_load_rcu_value (md__pfn_to_memdesc_fast): nodes, then a value entry, directly
 *    or through one sibling, and nothing else (a sibling whose slot changed under the
 *    walk: the general path, whose walk re-reads). Its checks read one 32-byte
 *    record per class that nothing writes (md_fclass, by the tag of the page-map word),
 *    not struct kmem_cache, whose fields share a line with its lock; the offset in the
 *    slab is the low bits of the address (slabs are naturally aligned runs of pages
 *    and the frame space starts on a chunk); the bound on the pfn is also the word
 *    saying the fast paths may run (md_fast_pfns). malloc's fast path finds the loaded
 *    magazine's offset in the thread's magazines with one load by size (md_fmag_tab).
 *    Measured (scripts/callgrind-hot): a pair of 16..256 bytes 189 -> 140
 *    instructions, calloc(64) 225 -> 176; since slabs hand out objects from the top
 *    down (slab.c), the pair's block sits on a slab page whose page-map slot is a
 *    sibling, which the walk follows with one load (the sibling's offset folded into
 *    its address): with that layout, 202 -> 147 and 238 -> 183 (malloc's fast path
 *    is 22 instructions: md_fmag_tab's 0 stands for "fast paths off").
 *    Both also exchange the loaded and the previous magazine when the loaded one is
 *    empty (malloc) or full (free) and the previous one can serve
 *    (kmem__mag_for_alloc/free, the magazine layer's own first step): thread-local, no
 *    lock, and it was most of the visits to the general paths in memdesc-mtwork
 *    (33,000 of 46,600 slow mallocs, 24,000 of 43,000 slow frees of small blocks in
 *    4 x 200,000 operations), each costing the entry section and, for free, a second
 *    page-map walk. memdesc-mtwork 4 x 1,000,000 under callgrind, both steps:
 *    1537M -> 1289M instructions; a pair 140 -> 142.
 *    free's fast path does not read struct slab: the page-map word of a slab carries
 *    its cache's id (slab.c, kmem_slab_word; memdesc.h's tag), which names the class,
 *    and slabs are naturally aligned runs of c_slab_pages pages, so the slab's first
 *    pfn is the pfn rounded down. Blocks are freed at random addresses, so struct slab
 *    was a cache miss on most frees, the second in a chain of three (leaf, struct
 *    slab, bitmap): memdesc-mtwork 4 threads 0.43 -> 0.41 s, 1 thread 0.26 -> 0.25 s
 *    (medians of 5). The bitmap stays checked, though its line is often written by
 *    other threads' slab refills (a coherence miss): without it memdesc-mtwork with 4
 *    threads used ~10% less CPU (0.42 -> 0.38 s user, medians of 6; 1 thread: no
 *    difference). The key alone misses a free of a slot that was never allocated:
 *    such a slot would go to a magazine and could be handed out twice before the
 *    magazine's return to its slab reports it, and bad frees must never corrupt. For
 *    blocks of 256 bytes and more the bitmap is in the bitmap table (slab.c, section
 *    1), one line per 8 to 32 slabs instead of a line on a page of each slab:
 *    memdesc-mtwork 4 x 300,000 under cachegrind, last-level read misses 1.16M ->
 *    0.52M; 4 x 2,000,000, user time 0.66 -> 0.63 s (medians of 9).
 *    realloc that leaves a block as it is (md_realloc_fast: the class or the pages
 *    still fit, nothing to give back) runs the same checks in the same bare section
 *    and returns the pointer: a buffer grown a little at a time mostly does that
 *    (bench malloc/realloc_growth/step:64, 1 MiB in 64-byte steps: ~220 -> ~150 us,
 *    noisy medians). A small block that must change class moves there too when this
 *    thread's magazines can give the new block and take the old one
 *    (md_realloc_fast_move): memdesc-mtwork reallocs to random sizes, and its 4 x
 *    1,000,000 operations went 1271M -> 1228M instructions (realloc 130M -> 83M).
 *
 * Context: every entry point runs inside md__enter()/md__leave() (md_malloc_impl.h),
 * except the fast paths of section 7; nothing here takes a lock of its own.
 */
#include "md_malloc_impl.h"
#include "folio_large.h"
#include "md_valgrind.h"
#include "memdesc.h"
#include "slab.h"
#include "slab_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/single_threaded.h>
#include <time.h>
#include <unistd.h>

#define MD_PAGE MEMDESC_PAGE_SIZE
#define MD_PAGE_SHIFT_ MEMDESC_PAGE_SHIFT

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* 8 classes for the doubling (2^(s+3), 2^(s+4)]: 9 << s ... 16 << s. */
#define MD_DOUBLING(s) (9u << (s)), (10u << (s)), (11u << (s)), (12u << (s)), \
		       (13u << (s)), (14u << (s)), (15u << (s)), (16u << (s))

const uint32_t md__class_size[MD_NR_CLASSES] = {
	16, 32, 48, 64, 80, 96, 112, 128,
	MD_DOUBLING(4), MD_DOUBLING(5), MD_DOUBLING(6), MD_DOUBLING(7),
	MD_DOUBLING(8), MD_DOUBLING(9), MD_DOUBLING(10), MD_DOUBLING(11),
};

struct kmem_cache *md__class_cache[MD_NR_CLASSES];

/* Per-process double-free key, odd (so key ^ address is never 0 for an aligned block). */
static uint64_t md_dfkey;

static md_error_fn md_error_hook;

/* ---- classes ------------------------------------------------------------------ */

/* The class of a request of @n <= MD_SMALL_MAX bytes, computed. */
static inline unsigned int md_class_calc(size_t n)
{
	size_t x;
	unsigned int k;

	if (n <= 128)
		return n ? (unsigned int)((n + 15) >> 4) - 1 : 0;
	x = n - 1;
	k = 63u - (unsigned int)__builtin_clzl(x);
	return 8u * (k - 6u) + (unsigned int)(x >> (k - 3)) - 8u;
}

/*
 * The classes of requests up to MD_CLASS_TAB_MAX by 16-byte steps: one load instead
 * of the computation for the most frequent sizes. Every class boundary up to 1024 is
 * a multiple of 16, so (n + 15) / 16 determines the class. Filled once by
 * md__classes_init() (md_class_calc is the reference); read-only afterwards.
 */
#define MD_CLASS_TAB_MAX 1024
static uint8_t md_class_tab[MD_CLASS_TAB_MAX / 16 + 1];

/*
 * The fast paths' view of the classes (section 7), filled once by md__classes_init()
 * and read-only afterwards, so that neither reads struct kmem_cache, whose fields they
 * need share a cache line with c_lock, written by every thread's slab refills:
 * - md_fmag[cls]: the byte offset in struct kmem_tls of the class's magazines
 *   (t_cpu[c_id]); 0 for a class cache without magazines (c_id < 0: offset 0 is
 *   t_next, never magazines) and for every class when an option (junk, guard) keeps
 *   the fast paths off: malloc's tests no other word;
 * - md_fmag_tab[(n + 15) / 16]: the same by request size up to MD_CLASS_TAB_MAX (as
 *   md_class_tab), one load for malloc's most frequent sizes;
 * - md_fclass[tag]: by the tag of a slab's page-map word (kmem id + 1, slab.c
 *   kmem_slab_word), what free checks a block of a class with, in 32 bytes. Every tag
 *   that is no class of ours has nobj 0, which fails the checks. The bitmap of the slab
 *   that starts at address b is at bm_base + (b >> bm_shift), one formula for both
 *   places a slab's bitmap can be (kmem__bitmap), without a branch: in the slab,
 *   bm_base is c_bitmap_off and the shift 0; in the bitmap table, whose word of pfn n
 *   is at byte 2n (one word per 4 pages), the shift is MD_BITMAP_ADDR_SHIFT (11) and
 *   bm_base the table less md_phys.base >> 11 (base is a chunk, so that is exact).
 */
struct md_fclass {
	uint64_t recip;		/* c_recip: offset -> index without a division */
	uintptr_t bm_base;	/* see above */
	uint32_t slab_mask;	/* bytes of a slab - 1 (slabs are naturally aligned) */
	uint32_t stride;	/* c_stride, also the size (class caches: c_size == c_stride) */
	uint32_t nobj;		/* c_nobj; 0: not one of our classes */
	uint16_t mag;		/* as md_fmag */
	uint8_t bm_shift;	/* see above */
};
_Static_assert(sizeof(struct kmem_tls) <= UINT16_MAX, "md_fmag offsets fit md_fclass.mag");

static struct md_fclass md_fclass[MEMDESC_TAG_MAX + 1];
static uint32_t md_fmag[MD_NR_CLASSES];
static uint32_t md_fmag_tab[MD_CLASS_TAB_MAX / 16 + 1];

/* The class of a request of @n <= MD_SMALL_MAX bytes. */
static inline unsigned int md_class_of(size_t n)
{
	if (likely(n <= MD_CLASS_TAB_MAX))
		return md_class_tab[(n + 15) >> 4];
	return md_class_calc(n);
}

/*
 * Set once by md__classes_init(), the last step of a successful initialisation, when
 * no option wants the general path (junk, guard), to the number of frames (md_phys's);
 * 0 before and otherwise. free's and realloc's fast paths compare a block's pfn with
 * it instead of testing the init state and two options (section 7): one test for "a
 * frame of ours" and "the fast path may run". malloc's tests md_fmag_tab instead.
 */
static atomic_ulong md_fast_pfns;

/* md_fmag and md_fclass for the class @cls, whose cache is @c. */
static void md_fast_class_init(unsigned int cls, const struct kmem_cache *c)
{
	struct md_fclass *fc;

	if (c->c_id < 0 || md__opt.junk || md__opt.guard)
		return;		/* no magazines, or no fast paths: they leave the class alone */
	md_fmag[cls] = (uint32_t)(offsetof(struct kmem_tls, t_cpu) +
				  (size_t)c->c_id * sizeof(struct kmem_cpu));
	/*
	 * free finds the offset in the slab from the address alone: the frame space starts
	 * on a chunk (phys.c) and a slab is a naturally aligned run of pages, so a slab of
	 * at most a chunk starts where the address's low bits say. Larger slabs (none
	 * today) leave free's fast path to the general one.
	 */
	if (c->c_slab_pages > MD_CHUNK_PAGES)
		return;
	if (c->c_size != c->c_stride)
		return;		/* not the class caches of md__classes_init() */
	fc = &md_fclass[c->c_id + 1];
	fc->recip = c->c_recip;
	fc->stride = (uint32_t)c->c_stride;
	fc->nobj = c->c_nobj;
	fc->slab_mask = (c->c_slab_pages << MD_PAGE_SHIFT_) - 1;
	if (c->c_bitmap_table) {
		fc->bm_base = (uintptr_t)md__bitmap_words(0) -
			      (md_phys.base >> MD_BITMAP_ADDR_SHIFT);
		fc->bm_shift = MD_BITMAP_ADDR_SHIFT;
	} else {
		fc->bm_base = c->c_bitmap_off;
		fc->bm_shift = 0;
	}
	fc->mag = (uint16_t)md_fmag[cls];
}

int md__classes_init(void)
{
	uint64_t key = 0;

	for (unsigned int i = 0; i < MD_NR_CLASSES; i++) {
		char name[16] = "md-";
		size_t len = 3;
		char digits[12];
		size_t nd = 0;

		for (uint32_t v = md__class_size[i]; v; v /= 10)
			digits[nd++] = (char)('0' + v % 10);
		while (nd)
			name[len++] = digits[--nd];
		name[len] = '\0';
		md__class_cache[i] = kmem_cache_create(name, md__class_size[i], 16, 0);
		if (!md__class_cache[i])
			return -ENOMEM;
		md_fast_class_init(i, md__class_cache[i]);
	}
	for (unsigned int j = 0; j <= MD_CLASS_TAB_MAX / 16; j++) {
		md_class_tab[j] = (uint8_t)md_class_calc((size_t)j * 16);
		md_fmag_tab[j] = md_fmag[md_class_tab[j]];
	}
	if (getrandom(&key, sizeof(key), GRND_NONBLOCK) != (ssize_t)sizeof(key)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		key = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&ts ^
		      ((uint64_t)getpid() << 32);
	}
	md_dfkey = key | 1;
	/* Blocks the slab layer puts in a magazine carry the key like freed ones (5.). */
	for (unsigned int i = 0; i < MD_NR_CLASSES; i++)
		md__class_cache[i]->c_mag_mark = md_dfkey;
	/* Everything above is set: free's and realloc's fast paths may run. */
	atomic_store_explicit(&md_fast_pfns, md__opt.junk | md__opt.guard ? 0 : md_phys.nr_pfns,
			      memory_order_release);
	return 0;
}

/* ---- reports ------------------------------------------------------------------ */

void md_malloc_error_hook(md_error_fn fn)
{
	__atomic_store_n(&md_error_hook, fn, __ATOMIC_RELEASE);
}

/* Report a bad free: "memdesc: <fn>(<p>): <what>[ (<detail> <n> bytes)]". */
static void __attribute__((noinline, cold))
md_bad(const char *fn, const void *p, const char *what, const char *detail, size_t n)
{
	struct md_buf b = { .n = 0 };
	md_error_fn hook = __atomic_load_n(&md_error_hook, __ATOMIC_ACQUIRE);

	md__buf_str(&b, "memdesc: ");
	md__buf_str(&b, fn);
	md__buf_str(&b, "(0x");
	md__buf_x(&b, (uintptr_t)p);
	md__buf_str(&b, "): ");
	md__buf_str(&b, what);
	if (detail) {
		md__buf_str(&b, " (");
		md__buf_str(&b, detail);
		md__buf_u(&b, n);
		md__buf_str(&b, " bytes)");
	}
	if (hook) {
		hook(b.b, b.n);
	} else {
		md__buf_str(&b, "\n");
		md__buf_flush(&b, STDERR_FILENO);
	}
	if (md__opt.abort)
		abort();
}

/* ---- finding the owner of a block -------------------------------------------- */

/* Does the block at @p hold the double-free key (freed, or in the large-block cache)? */
static inline bool md_has_key(void *p)
{
	return md_vg_peek((uint64_t *)p + 1) == (md_dfkey ^ (uintptr_t)p);
}

struct md_block {
	void *p;
	size_t usable;			/* bytes in the block */
	size_t req;			/* bytes the program may use: usable, or with guard=1
					 * the size it asked for */
	struct kmem_cache *cache;	/* small: the class cache, else NULL */
	unsigned int cls;		/* small: the class */
	struct folio *folio;		/* large: the folio */
};

/* md_lookup() without the guard check: the block's owner, kind and size. */
static int md_lookup_block(void *p, const char *fn, bool freeing, struct md_block *blk)
{
	unsigned long pfn = md__virt_to_pfn(p);
	memdesc_t md;

	if (unlikely(pfn >= md_phys.nr_pfns)) {
		md_bad(fn, p, "invalid pointer: not allocated by memdesc", NULL, 0);
		return -1;
	}
	/* Inside md__enter()'s read-side section: the walk needs no lock of its own. */
	md = md__pfn_to_memdesc_rcu(pfn);
	blk->p = p;
	if (likely(memdesc_type(md) == MEMDESC_SLAB)) {
		/*
		 * One page-map walk: the object's index comes from the slab descriptor and
		 * the cache's reciprocal (as kmem_obj_info does), and the validated object
		 * goes to the magazine layer directly (kmem_cache_free would walk again).
		 */
		const struct slab *s = memdesc_slab(md);
		struct kmem_cache *c = s->s_cache;
		size_t size = c->c_size, off;
		unsigned int cls;
		uint32_t i;
		bool exact;
		const uint64_t *bm;

		if (unlikely(size > MD_SMALL_MAX ||
			     md__class_cache[cls = md_class_of(size)] != c)) {
			md_bad(fn, p, "invalid pointer: an object of an internal cache of "
			       "memdesc", NULL, 0);
			return -1;
		}
		off = (size_t)((char *)p - (char *)md__pfn_to_virt(s->s_pfn));
		i = kmem__obj_index(c->c_recip, off, &exact);
		if (unlikely(!exact || i >= c->c_nobj)) {
			if (i >= c->c_nobj)
				md_bad(fn, p, "invalid pointer: inside a slab but in no block",
				       NULL, 0);
			else
				md_bad(fn, p, "interior pointer: inside a block", "block of ",
				       size);
			return -1;
		}
		bm = kmem__bitmap(c, s->s_pfn);
		if (unlikely(!((__atomic_load_n(&bm[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1) ||
			     (freeing && md_has_key(p)))) {
			md_bad(fn, p, "double free", "block of ", size);
			return -1;
		}
		blk->usable = size;
		blk->cache = c;
		blk->cls = cls;
		blk->folio = NULL;
		return 0;
	}
	if (memdesc_type(md) == MEMDESC_FOLIO) {
		struct folio *f = memdesc_folio(md);

		if (unlikely(folio_address(f) != p)) {
			md_bad(fn, p, "interior pointer: inside a large block", "block of ",
			       folio_nr_pages(f) << MD_PAGE_SHIFT_);
			return -1;
		}
		if (unlikely(folio_ref_count(f) <= 0 ||
			     (freeing && md_has_key(p)))) {
			md_bad(fn, p, "double free", "large block of ",
			       folio_nr_pages(f) << MD_PAGE_SHIFT_);
			return -1;
		}
		blk->usable = folio_nr_pages(f) << MD_PAGE_SHIFT_;
		blk->cache = NULL;
		blk->folio = f;
		return 0;
	}
	md_bad(fn, p, "double free or invalid pointer: no block here", NULL, 0);
	return -1;
}

/*
 * guard=1: every block is asked for with MD_GUARD_EXTRA more bytes than the program
 * wants (n). The bytes [n, usable - 8) hold a canary, and the last word of the block
 * the size n, both keyed with the process's random key and the block's address (and
 * the canary with n too):
 *
 *	| n bytes of the program | canary: >= 8 bytes | n ^ key(p) |
 *
 * free and realloc check both before anything else; any difference is a heap
 * overflow. The canary's bytes are never 0, so that a stray terminating NUL is always
 * caught. malloc_usable_size() is n: a program that writes all of its usable size
 * stays inside. Off (the default), none of this code runs: the fast paths test the
 * option once (md_fast_pfns, md_fmag_tab) and every other path is unchanged.
 */
#define MD_GUARD_EXTRA 16

static inline uint64_t md_guard_key(const void *p)
{
	uint64_t k = (md_dfkey << 29) | (md_dfkey >> 35);

	return k ^ (uintptr_t)p ^ 0x6a09e667f3bcc909ULL;
}

/*
 * The canary byte at offset @i of a block of @n requested bytes whose key is @key: a
 * function of the size too, so that a size word changed by an overflow no longer
 * matches the canary it would describe.
 */
static inline unsigned char md_canary_byte(uint64_t key, size_t n, size_t i)
{
	uint64_t k = key ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
	unsigned char c = (unsigned char)(k >> ((i & 7) * 8));

	return c ? c : 0xa5;
}

/* Arm the block at @p (@usable bytes) for a program that asked for @n bytes. */
static void md_guard_arm(void *p, size_t n, size_t usable)
{
	unsigned char *b = p;
	uint64_t key = md_guard_key(p), t = n ^ key;

	for (size_t i = n; i < usable - 8; i++)
		b[i] = md_canary_byte(key, n, i);
	memcpy(b + usable - 8, &t, sizeof(t));
}

/*
 * The size the program asked for, from the block's trailer, into blk->req; -1 (after
 * reporting as @fn when @report) if the trailer or the canary was overwritten.
 */
static int md_guard_check(struct md_block *blk, const char *fn, bool report)
{
	const unsigned char *b = blk->p;
	size_t usable = blk->usable, n;
	uint64_t key = md_guard_key(blk->p), t;
	bool ok;

	memcpy(&t, b + usable - 8, sizeof(t));
	n = (size_t)(t ^ key);
	ok = n <= usable - MD_GUARD_EXTRA;
	for (size_t i = n; ok && i < usable - 8; i++)
		ok = b[i] == md_canary_byte(key, n, i);
	if (!ok) {
		if (!report) {
			blk->req = 0;
			return 0;
		}
		md_bad(fn, blk->p, "heap overflow: the bytes after the block were overwritten",
		       "block of ", usable - MD_GUARD_EXTRA);
		return -1;
	}
	blk->req = n;
	return 0;
}

/*
 * Identify the live block starting at @p, or report why it is not one (as @fn) and
 * return -1. @freeing: also check for a double free through the key, and with
 * guard=1 for an overflow.
 */
static int md_lookup(void *p, const char *fn, bool freeing, struct md_block *blk)
{
	if (md_lookup_block(p, fn, freeing, blk) != 0)
		return -1;
	blk->req = blk->usable;
	if (unlikely(md__opt.guard))
		return md_guard_check(blk, fn, freeing);
	return 0;
}

/* ---- the cache of freed large blocks ------------------------------------------- */

/*
 * Freed large blocks of up to MD_LC_MAX_PAGES are kept, resident, in buckets of page
 * counts (8 per doubling, the classes' spacing in pages) and handed out again: the
 * page allocator reuses a freed range only for exactly the same page count, so random
 * large sizes would otherwise take fresh (purged, page-faulting) pages every time. A
 * request for n pages looks at up to MD_LC_SCAN blocks of n's bucket for one of >= n
 * pages, then takes any block of the next bucket (>= n pages by construction), so a
 * reused block is at most 25% too big. The cache holds at most max(MD_LC_MIN_BYTES,
 * half the pages allocated from the page arena), or one block of any size up to
 * MD_LC_MAX_PAGES when it is empty (a program that frees and allocates one 4 MiB
 * buffer over and over reuses it); beyond that a free goes to the page allocator.
 * Random sizes spread over many buckets, and a request finds its bucket empty unless
 * the cache holds a block or two for most of them: with an eighth, malloc/large_churn
 * (64 live blocks of 32 to 256 KiB, one replaced at a time) missed in 46% of its
 * allocations and turned every miss into page-map stores, purges and page faults,
 * 612 ns per free+malloc (glibc 214); with a quarter, 18% and 275 ns. The quarter sat
 * on a cliff: where a fault costs ~10 us (this VM on 2026-12-02) it took 920 ns, with
 * 20,900 madvise calls and 18,300 page faults in a 0.3 s run (a third: 364 ns, 13,200
 * calls), a half 44-66 ns and 820 calls (mimalloc 159 ns). A half was measured on
 * 2026-11-30 as keeping 6-10% more of mt_alloc's and alloc_heavy.py's peak; on
 * 2026-12-02, 3 runs each: alloc_heavy.py 43.5 against 42.4 MB (glibc's 59.7),
 * mt_alloc, memdesc-mtwork, pywork and cc1 the same within 0.6%.
 * What it holds is resident and serves only large requests of nearly its own size, so
 * it is emptied, into the page allocator's dirty list (still resident, but joined with
 * its free neighbours and carved for any size), whenever the page allocator took fresh
 * pages (md_reclaim_maybe). The bound follows the arena (everything the process holds
 * from us: in use, cached, dirty), not the large bytes in use: an
 * eighth of the large bytes with a 256 KiB floor cost mt_alloc 10% of its time (its
 * threads free and allocate large blocks of many sizes, which then went through the
 * page map every time), and a fixed 8 MiB floor kept a small process's outgrown blocks
 * resident (pywork, PYTHONHASHSEED=0: peak 46.5 MiB; with this bound and the dirty
 * list's 2 MiB floor, pages.c section 3: 44.0 MiB; glibc 41.5 MiB; mt_alloc's time
 * unchanged). Without the one-block rule a 1 MiB malloc+free pair took 533 ns (the
 * page map every time) instead of 44.
 * A cached block keeps its folio; its first word links the bucket's list, its
 * second holds the double-free key, so free() of a cached block is a double free, and
 * its third its page count (MD_LC_NP): taking a block, shedding one and scanning a
 * bucket for one large enough read that word, not the page map (a walk of ~95
 * instructions per block looked at; memdesc-mtwork 4 x 300,000 under callgrind made
 * 30,900 such walks).
 * One lock per bucket (cross-thread frees of different sizes do not meet); emptied by
 * md_malloc_trim().
 */
#define MD_LC_MIN_PAGES 9			/* smallest large block: 32 KiB + 1 */
#define MD_LC_MAX_PAGES 8192			/* largest cached: 32 MiB */
#define MD_LC_BUCKETS 80			/* buckets of 9..8192 pages */
#define MD_LC_SCAN 8
#define MD_LC_MIN_BYTES ((size_t)1 << 20)	/* floor of the cap: see above */

struct md_lc_bucket {
	pthread_mutex_t lock;
	void *head;				/* LIFO: hot blocks first */
	size_t n;				/* blocks; read without the lock: stored atomically */
} __attribute__((aligned(64)));

static struct md_lc_bucket md_lc[MD_LC_BUCKETS] = {
	[0 ... MD_LC_BUCKETS - 1] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};
static atomic_size_t md_lc_pages;		/* pages in the cache */

/*
 * A process with one thread takes no bucket lock and changes md_lc_pages with a plain
 * load and store: glibc's __libc_single_threaded, cleared by the first pthread_create
 * and never set again, says no other thread can be inside (glibc's malloc skips its
 * arena lock the same way). The flag is read once per critical section, so a section
 * unlocks only what it locked. The two mutex round trips and two locked adds were a
 * third of a malloc+free pair of a cached block (perf, memdesc-hotpaths pair 65536):
 * malloc/pair size:65536 and size:262144 went from 33 to 23 ns (glibc's 16). The cold
 * paths (drain, shed, evict, verify) always lock: taking a lock no one else can hold is
 * correct in either mode.
 */
static inline bool md_lc_lock(struct md_lc_bucket *bk)
{
	if (__libc_single_threaded)
		return false;
	pthread_mutex_lock(&bk->lock);
	return true;
}

static inline void md_lc_unlock(struct md_lc_bucket *bk, bool locked)
{
	if (locked)
		pthread_mutex_unlock(&bk->lock);
}

static inline void md_lc_pages_add(long delta)
{
	if (__libc_single_threaded)
		atomic_store_explicit(&md_lc_pages, atomic_load_explicit(&md_lc_pages,
			memory_order_relaxed) + (size_t)delta, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&md_lc_pages, (size_t)delta, memory_order_relaxed);
}

/* Bucket of @np pages, 9 <= np <= MD_LC_MAX_PAGES: the class formula on pages. */
static inline unsigned int md_lc_bucket(size_t np)
{
	size_t x = np - 1;
	unsigned int k = 63u - (unsigned int)__builtin_clzl(x);

	return 8u * (k - 3u) + (unsigned int)(x >> (k - 3)) - 8u;
}

static inline struct folio *md_lc_folio(void *p)
{
	return memdesc_folio(pfn_to_memdesc(virt_to_pfn(p)));
}

#define MD_LC_NP 2				/* word of a cached block: its pages */

/* Pages of the cached block @p (written by md_lc_put, under the bucket's lock). */
static inline size_t md_lc_np(const void *p)
{
	return (size_t)md_vg_peek((const uint64_t *)p + MD_LC_NP);
}

/* Take the block *@link off bucket @bk (lock held). */
static inline void *md_lc_unlink(struct md_lc_bucket *bk, void **link)
{
	void *p = *link;

	*link = *(void **)p;
	__atomic_store_n(&bk->n, bk->n - 1, __ATOMIC_RELAXED);
	return p;
}

/* A block taken off the cache goes back to the page allocator. */
static void md_lc_release(void *p)
{
	md_lc_pages_add(-(long)md_lc_np(p));
	folio_put(md_lc_folio(p));
}

static void *md_lc_take_from(unsigned int b, size_t np, bool any)
{
	struct md_lc_bucket *bk = &md_lc[b];
	void **link, *p = NULL;
	unsigned int scanned = 0;
	bool locked;

	if (!__atomic_load_n(&bk->n, __ATOMIC_RELAXED))
		return NULL;
	locked = md_lc_lock(bk);
	for (link = &bk->head; *link && scanned < MD_LC_SCAN; scanned++) {
		void *cand = *link;

		if (any || md_lc_np(cand) >= np) {
			p = md_lc_unlink(bk, link);
			break;
		}
		link = (void **)cand;
	}
	md_lc_unlock(bk, locked);
	return p;
}

/* A cached block of at least @np pages, or NULL; *@got: its pages. */
static void *md_lc_take(size_t np, size_t *got)
{
	unsigned int b;
	void *p;

	if (np < MD_LC_MIN_PAGES || np > MD_LC_MAX_PAGES ||
	    !atomic_load_explicit(&md_lc_pages, memory_order_relaxed))
		return NULL;
	b = md_lc_bucket(np);
	p = md_lc_take_from(b, np, false);
	if (!p && b + 1 < MD_LC_BUCKETS)
		p = md_lc_take_from(b + 1, np, true);
	if (p) {
		*got = md_lc_np(p);
		md_lc_pages_add(-(long)*got);
	}
	return p;
}

/* Keep a freed large block; false if it does not fit (the caller frees it). */
static bool md_lc_put(void *p, size_t np)
{
	struct md_lc_bucket *bk;
	size_t cap = atomic_load_explicit(&md_phys.arena_pages, memory_order_relaxed) / 2;
	size_t held = atomic_load_explicit(&md_lc_pages, memory_order_relaxed);
	bool locked;

	if (cap < (MD_LC_MIN_BYTES >> MD_PAGE_SHIFT_))
		cap = MD_LC_MIN_BYTES >> MD_PAGE_SHIFT_;
	if (np < MD_LC_MIN_PAGES || np > MD_LC_MAX_PAGES || (held && held + np > cap))
		return false;
	md_lc_pages_add((long)np);
	((uint64_t *)p)[1] = md_dfkey ^ (uintptr_t)p;
	((uint64_t *)p)[MD_LC_NP] = np;
	bk = &md_lc[md_lc_bucket(np)];
	locked = md_lc_lock(bk);
	*(void **)p = bk->head;
	bk->head = p;
	__atomic_store_n(&bk->n, bk->n + 1, __ATOMIC_RELAXED);
	md_lc_unlock(bk, locked);
	return true;
}

/* Give every cached block back to the page allocator. */
static void md_lc_drain(void)
{
	for (unsigned int b = 0; b < MD_LC_BUCKETS; b++) {
		void *p;

		pthread_mutex_lock(&md_lc[b].lock);
		p = md_lc[b].head;
		md_lc[b].head = NULL;
		__atomic_store_n(&md_lc[b].n, 0, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&md_lc[b].lock);
		while (p) {
			void *next = *(void **)p;

			md_lc_release(p);
			p = next;
		}
	}
}

/*
 * realloc growing @blk in place: when the block right after it is a freed one in this
 * cache, give that one back to the page allocator, whose dirty list then lends its
 * resident pages to the grow (pages.c, section 7). true if a block was given back.
 * The candidate is read inside the caller's entry section (descriptors are
 * type-stable) and trusted only once it was found on, and unlinked from, its bucket.
 */
static bool md_lc_evict_next(const struct md_block *blk)
{
	unsigned long next = md__virt_to_pfn(blk->p) + folio_nr_pages(blk->folio);
	struct md_lc_bucket *bk;
	struct folio *f;
	void **link, *q;
	size_t np;
	bool found = false;

	if (!atomic_load_explicit(&md_lc_pages, memory_order_relaxed) || next >= md_phys.nr_pfns)
		return false;
	f = memdesc_folio(md__pfn_to_memdesc_rcu(next));
	if (!f)
		return false;
	np = folio_nr_pages(f);
	if (np < MD_LC_MIN_PAGES || np > MD_LC_MAX_PAGES)
		return false;
	q = md__pfn_to_virt(next);
	bk = &md_lc[md_lc_bucket(np)];
	pthread_mutex_lock(&bk->lock);
	for (link = &bk->head; *link; link = (void **)*link) {
		if (*link == q) {
			md_lc_unlink(bk, link);
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&bk->lock);
	if (found)
		md_lc_release(q);	/* ours now: its folio cannot change */
	return found;
}

/*
 * Give cached blocks back to the page allocator, the smallest first, at most @max_pages
 * in all. The growth that asked for it is mostly small (a slab, the next step of a
 * table), which a small block serves; the largest blocks stay for requests of their
 * own size, which nothing else serves without fresh pages: on the dirty list a large
 * range is soon carved by smaller requests (smallest fit or not, pieces are what is
 * left) or purged. Largest first, pywork's 470-page dict table was shed at the first
 * fresh slab of every round, carved and purged, and its successor faulted in 470 fresh
 * pages. Smallest first (11 runs each, PYTHONHASHSEED=0): pywork 13,390 -> 12,070
 * page faults, 0.70 -> 0.67 s, peak the same (42.8 -> 42.7 MB); mt_alloc's peak
 * 72.1 -> 69.6 MB, its time the same; cc1, memdesc-mtwork and the large-block
 * benchmarks unchanged (test_large_cache_sheds_small_first).
 */
static void md_lc_shed(size_t max_pages)
{
	/*
	 * Empty buckets, and the rest once the cache is empty, are passed over without
	 * their locks (the counts are read as md_lc_take_from reads them): a reclaim took
	 * all 80 locks, ~90 lock round trips per reclaim in memdesc-mtwork. The walk stops
	 * at the first block that does not fit: every later one is at least as large
	 * (buckets ascend; within one, a block may be smaller than the head, which the
	 * walk leaves for the next shed).
	 */
	for (unsigned int b = 0; b < MD_LC_BUCKETS && max_pages >= MD_LC_MIN_PAGES &&
	     atomic_load_explicit(&md_lc_pages, memory_order_relaxed); b++) {
		while (__atomic_load_n(&md_lc[b].n, __ATOMIC_RELAXED)) {
			size_t np = 0;
			void *p;

			pthread_mutex_lock(&md_lc[b].lock);
			p = md_lc[b].head;
			if (p && (np = md_lc_np(p)) <= max_pages)
				md_lc_unlink(&md_lc[b], &md_lc[b].head);
			else
				p = NULL;
			pthread_mutex_unlock(&md_lc[b].lock);
			if (!p)
				return;
			max_pages -= np;
			md_lc_release(p);
		}
	}
}

size_t md__large_cached_bytes(void)
{
	return atomic_load_explicit(&md_lc_pages, memory_order_relaxed) << MD_PAGE_SHIFT_;
}

static void md_release(struct md_block *blk)
{
	if (blk->cache) {
		uint64_t *w = blk->p;

		if (unlikely(md__opt.junk))
			memset(w, 0x5a, blk->usable);
		w[1] = md_dfkey ^ (uintptr_t)w;
		if (likely(blk->cache->c_id >= 0)) {
			MD_VG_FREELIKE(w);	/* kmem_cache_free() would say it itself */
			kmem__mag_free_inline(blk->cache, w);	/* validated by md_lookup() */
		} else {
			kmem_cache_free(blk->cache, w);
		}
	} else {
		size_t np = folio_nr_pages(blk->folio);

		if (unlikely(md__opt.junk))
			memset(blk->p, 0x5a, np << MD_PAGE_SHIFT_);
		/* Valgrind builds: freed; the large-block cache writes its first words. */
		MD_VG_FREELIKE(blk->p);
		MD_VG_UNDEFINED(blk->p, (MD_LC_NP + 1) * sizeof(uint64_t));
		if (!md_lc_put(blk->p, np)) {
			folio_put(blk->folio);
		}
	}
}

/* ---- allocation --------------------------------------------------------------- */

static void md_reclaim_maybe(bool taking_pages);

static inline void *md_alloc_class(unsigned int cls)
{
	struct kmem_cache *c = md__class_cache[cls];
	uint64_t *p;

	md_reclaim_maybe(false);
	p = likely(c->c_id >= 0) ? kmem__mag_alloc_inline(c) : kmem_cache_alloc(c);

	if (likely(p)) {
		if (likely(c->c_id >= 0))	/* kmem_cache_alloc() tells valgrind itself */
			MD_VG_MALLOCLIKE(p, c->c_size, 0);
		p[1] = 0;
		if (unlikely(md__opt.junk))
			memset(p, 0xa5, md__class_size[cls]);
	} else {
		errno = ENOMEM;
	}
	return p;
}

/*
 * The idle reap (slab_mag.c, section 6): depots whose full magazines have sat MD_IDLE_MS
 * with none taken give their objects back to the slabs. Run before a large allocation
 * takes pages and after any fresh pages (md_reclaim_maybe), at most every MD_IDLE_MS / 2
 * (one clock read when not due; the winner of a relaxed compare-and-swap walks the
 * caches). 5 ms: pywork's blobs sat in the depots 8 ms before the next round's dictionary
 * took fresh pages (10 ms missed it); a batch freed and allocated again takes from its
 * depot and is never idle (test_depot_batch_kept, malloc/batch). md_idle_reaped is the
 * only state: kmem__now_ms() of the last reap, atomic.
 */
#define MD_IDLE_MS 5
static _Atomic uint64_t md_idle_reaped;

static void md_idle_reap_maybe(void)
{
	uint64_t now = kmem__now_ms();
	uint64_t last = atomic_load_explicit(&md_idle_reaped, memory_order_relaxed);

	if (now - last < MD_IDLE_MS / 2 ||
	    !atomic_compare_exchange_strong_explicit(&md_idle_reaped, &last, now,
						     memory_order_relaxed, memory_order_relaxed))
		return;
	kmem_reap_idle_all(MD_IDLE_MS);
}

/*
 * Reclaim before growing: when the page allocator asks for it (memdesc_reclaim_due()),
 * what we keep idle goes back to its dirty list, where it is still resident and joins its
 * neighbours: the growth that follows reuses it instead of touching fresh pages. After
 * enough traffic (MEMDESC_RECLAIM_CACHES), every depot magazine and every empty slab of
 * every cache (kmem_drain_all: what two working-set reaps with nothing between them free,
 * in one pass; memdesc-mtwork 1 x 300,000 under callgrind: 4.8M -> 2.5M instructions in 53
 * reclaims); after other fresh pages (MEMDESC_RECLAIM_GREW), the idle reap. Not the
 * thread's own loaded magazines, though they pin a partly used slab each per class
 * (pywork: 1.7 MiB of blobs in 2.5 MiB of resident slabs through the next round; flushing
 * them saved 0.2 MiB of its peak): in gcc's cc1 every reclaim then emptied slabs that were
 * purged and faulted in again (64,600 -> 86,500 minor faults). Then the large-block cache,
 * as much as the dirty list takes without purging, smallest blocks first (md_lc_shed;
 * pushing the list over its bound would purge, and the purged pages fault again at once
 * when the growth reuses them). Run at the start of every allocation of the general
 * paths (md_alloc_class, md_alloc_pages): malloc, calloc (pywork's bytes objects),
 * realloc and the aligned family alike; one relaxed load when nothing is due.
 * @taking_pages (md_alloc_pages, about to ask the page allocator): the idle reap is due
 * anyway.
 * md__enter() held, no lock.
 */
static void md_reclaim_maybe(bool taking_pages)
{
	unsigned int due = memdesc_reclaim_due();

	if (unlikely(due & MEMDESC_RECLAIM_CACHES))
		kmem_drain_all();
	else if (unlikely(due) || taking_pages)
		md_idle_reap_maybe();
	if (unlikely(due) && atomic_load_explicit(&md_lc_pages, memory_order_relaxed))
		md_lc_shed(memdesc_dirty_room());
}

/*
 * Before fork(): a reclaim that is due runs in the parent, so that the child does not
 * inherit the request. A child that allocated would otherwise collect it at once and
 * reap caches it shares copy-on-write with the parent: in memdesc-forkbench, whose
 * parent's request from its start stayed pending, every child's first malloc wrote the
 * request word and the idle reap's state: 3 to 4 of the 43 page faults a fork and its
 * child cost (md_env.c, section 3). The parent would run the same reclaim at its next
 * allocation. The section ends without md__leave()'s kick: deferred frees the reclaim
 * queued wait for the parent's next call, so that fork starts no thread (the RCU
 * worker) in the parent.
 * From the prepare handler (md_env.c), outside any entry point of this thread.
 */
void md__reclaim_before_fork(void)
{
	if (!md__malloc_ready() || md__thread.depth != 0 || !memdesc_reclaim_pending())
		return;
	if (md__enter())
		return;
	md_reclaim_maybe(false);
	(void)md__leave_section();
}

/*
 * Where the pages of the last large block this thread got came from, for calloc
 * (md_zero): the large-block cache (resident and hot: memset), the page allocator's
 * dirty list (resident: memset, or madvise when big), its arena (zero already:
 * FOLIO_ZEROED, nothing to do).
 */
enum md_pages_from { MD_FROM_CACHE, MD_FROM_DIRTY, MD_FROM_ZERO };
static __thread enum md_pages_from md_last_from __attribute__((tls_model("initial-exec")));

/*
 * The large block @p of @np pages, just taken from @from, handed out: its key word
 * cleared, and with junk=1 filled (then written, as a cached block is).
 */
static void *md_large_block(uint64_t *p, size_t np, enum md_pages_from from)
{
	MD_VG_MALLOCLIKE(p, np << MD_PAGE_SHIFT_, 0);
	p[1] = 0;
	md_last_from = from;
	if (unlikely(md__opt.junk)) {
		memset(p, 0xa5, np << MD_PAGE_SHIFT_);
		md_last_from = MD_FROM_CACHE;
	}
	return p;
}

/* The new folio @f as a block. */
static void *md_folio_block(struct folio *f)
{
	return md_large_block(folio_address(f), folio_nr_pages(f),
			      (f->f_flags & FOLIO_ZEROED) ? MD_FROM_ZERO : MD_FROM_DIRTY);
}

static void *md_alloc_pages(size_t size, size_t align_pages)
{
	struct folio *f;
	size_t np;

	if (size > SIZE_MAX - MD_PAGE) {
		errno = ENOMEM;
		return NULL;
	}
	np = (size + MD_PAGE - 1) >> MD_PAGE_SHIFT_;
	if (np == 0)
		np = 1;
	if (align_pages <= 1) {
		size_t got;
		uint64_t *p = md_lc_take(np, &got);

		if (p)
			return md_large_block(p, got, MD_FROM_CACHE);
	}
	md_reclaim_maybe(true);
	f = align_pages > 1 ? folio_alloc_aligned(np, align_pages) : folio_alloc_pages(np);
	if (!f) {
		/* Cached blocks may be what the page allocator lacks. */
		md_lc_drain();
		f = align_pages > 1 ? folio_alloc_aligned(np, align_pages)
				    : folio_alloc_pages(np);
		if (!f) {
			errno = ENOMEM;
			return NULL;
		}
	}
	return md_folio_block(f);
}

/*
 * A large block of @np pages for realloc to move a block that grew into: placed where
 * it can grow again in place (folio_alloc_growable), not taken from the large-block
 * cache, whose blocks sit where blocks of their size were, between others. Failing
 * that, as md_alloc_pages() would. md__enter() held.
 */
static void *md_alloc_growing(size_t np)
{
	struct folio *f;

	md_reclaim_maybe(true);
	f = folio_alloc_growable(np);
	if (!f)
		return md_alloc_pages(np << MD_PAGE_SHIFT_, 1);
	return md_folio_block(f);
}

static inline void *md_alloc(size_t size)
{
	if (likely(size <= MD_SMALL_MAX))
		return md_alloc_class(md_class_of(size));
	return md_alloc_pages(size, 1);
}

/* @align: a power of two. */
static void *md_alloc_aligned(size_t align, size_t size)
{
	if (align <= 16)
		return md_alloc(size);
	if (size <= MD_SMALL_MAX && align <= MD_PAGE) {
		size_t m = size ? (size + align - 1) & ~(align - 1) : align;

		/* One step at most (section 3); the scan is what keeps it right. */
		for (unsigned int c = md_class_of(m); c < MD_NR_CLASSES; c++)
			if ((md__class_size[c] & (align - 1)) == 0)
				return md_alloc_class(c);
	}
	if (align > ((size_t)1 << 62)) {
		errno = ENOMEM;
		return NULL;
	}
	return md_alloc_pages(size, align > MD_PAGE ? align >> MD_PAGE_SHIFT_ : 1);
}

/*
 * guard=1: a block of @size bytes (at @align, 16 for none) with room for the canary
 * and the trailer, armed.
 */
static __attribute__((noinline, cold)) void *md_alloc_guarded(size_t align, size_t size)
{
	struct md_block blk;
	void *p;

	if (size > SIZE_MAX - MD_GUARD_EXTRA) {
		errno = ENOMEM;
		return NULL;
	}
	p = md_alloc_aligned(align, size + MD_GUARD_EXTRA);
	if (p && md_lookup_block(p, "malloc", false, &blk) == 0)
		md_guard_arm(p, size, blk.usable);
	return p;
}

/* A new block of @size bytes at @align (a power of two; 16 for none). */
static inline void *md_alloc_any(size_t align, size_t size)
{
	if (unlikely(md__opt.guard))
		return md_alloc_guarded(align, size);
	return align <= 16 ? md_alloc(size) : md_alloc_aligned(align, size);
}

/* ---- the fast paths ------------------------------------------------------------ */

/*
 * The pfn of @p if it is a frame and the fast paths may run (md_fast_pfns), else a
 * value >= *@limit. NULL is no frame: the base is far above page 0.
 */
static inline unsigned long md_fast_pfn(const void *p, unsigned long *limit)
{
	*limit = atomic_load_explicit(&md_fast_pfns, memory_order_acquire);
	return md__virt_to_pfn(p);
}

/*
 * The read-side section of free's and realloc's fast paths: liburcu-bp's read lock and
 * unlock (urcu/static/urcu-bp.h, its inline API) with the reader's address loaded once
 * instead of from TLS at every step, and no call: a thread not yet registered returns
 * false, and the caller takes the general path, whose section registers it. The same
 * stores in the same order as urcu_bp_read_lock()/unlock(), nesting included (a
 * program of its own may free inside a urcu-bp section), with the counter the lock
 * stored kept for the unlock: only this thread writes its counter (a signal handler's
 * section between the two restores it), and a reader's slot never moves while the
 * thread lives (liburcu grows its registry in place or adds a chunk). Sanitizer builds
 * (no _LGPL_SOURCE: xarray_impl.h says why) call liburcu's functions.
 */
#ifdef URCU_BP_GP_CTR_NEST_MASK
struct md_fast_rcu {
	struct urcu_bp_reader *r;
	unsigned long ctr;	/* what the lock stored */
};

static inline __attribute__((always_inline)) bool md_fast_rcu_lock(struct md_fast_rcu *s)
{
	struct urcu_bp_reader *r = URCU_TLS(urcu_bp_reader);
	unsigned long v;

	if (unlikely(!r))
		return false;
	cmm_barrier();
	v = r->ctr;
	if (likely(!(v & URCU_BP_GP_CTR_NEST_MASK))) {
		v = _CMM_LOAD_SHARED(urcu_bp_gp.ctr);
		_CMM_STORE_SHARED(r->ctr, v);
		urcu_bp_smp_mb_slave();
	} else {
		v += URCU_BP_GP_COUNT;
		_CMM_STORE_SHARED(r->ctr, v);
	}
	s->r = r;
	s->ctr = v;
	return true;
}

static inline __attribute__((always_inline)) void md_fast_rcu_unlock(const struct md_fast_rcu *s)
{
	urcu_bp_smp_mb_slave();
	_CMM_STORE_SHARED(s->r->ctr, s->ctr - URCU_BP_GP_COUNT);
	cmm_barrier();
}
#else
struct md_fast_rcu {
	char unused;
};

static inline bool md_fast_rcu_lock(struct md_fast_rcu *s)
{
	(void)s;
	urcu_bp_read_lock();
	return true;
}

static inline void md_fast_rcu_unlock(const struct md_fast_rcu *s)
{
	(void)s;
	urcu_bp_read_unlock();
}
#endif

/* The magazines of a class at byte offset @mag of @t (md_fmag). */
static inline struct kmem_cpu *md_fast_cpu(struct kmem_tls *t, uint32_t mag)
{
	return (struct kmem_cpu *)((char *)t + mag);
}

/* md_fmag of the class of @size; 0 above MD_SMALL_MAX (no class). */
static inline uint32_t md_fmag_of(size_t size)
{
	if (likely(size <= MD_CLASS_TAB_MAX))
		return md_fmag_tab[(size + 15) >> 4];
	return size <= MD_SMALL_MAX ? md_fmag[md_class_calc(size)] : 0;
}

/* Hand out the top block of @m (not empty) for @size: the double-free key cleared. */
static inline __attribute__((always_inline)) void *md_fast_pop(struct kmem_magazine *m,
							      size_t size)
{
	uint64_t *p = m->m_obj[--m->m_rounds];

	(void)size;		/* for valgrind builds only */
	MD_VG_MALLOCLIKE(p, md__class_size[md_class_of(size)], 0);
	p[1] = 0;
	return p;
}

/* Put the freed block @p on @m (not full), with the double-free key. */
static inline __attribute__((always_inline)) void md_fast_push(struct kmem_magazine *m,
							      void *p)
{
	uint32_t n = m->m_rounds;

	/* The magazine first: the key's store could alias it for the compiler. */
	m->m_obj[n] = p;
	m->m_rounds = n + 1;
	((uint64_t *)p)[1] = md_dfkey ^ (uintptr_t)p;
	MD_VG_FREELIKE(p);	/* after the key: memcheck then forbids the block */
}

/*
 * malloc of a small size served by the loaded magazine of this thread: no entry
 * section (section 7), no lock, no atomic. NULL when anything else is needed.
 */
static inline __attribute__((always_inline)) void *md_malloc_fast(size_t size)
{
	struct kmem_tls *t = kmem__tls;
	struct kmem_magazine *m;
	uint32_t mag;

	/*
	 * md_fmag_tab is 0 while the fast paths may not run (md_fast_class_init), so it
	 * stands for md_fast_pfns; a thread with magazines (t) has been through the
	 * general path, whose entry synchronised with the initialisation that filled it.
	 */
	if (unlikely(!t))
		return NULL;
	mag = md_fmag_of(size);
	if (unlikely(!mag))
		return NULL;
	m = kmem__mag_for_alloc(md_fast_cpu(t, mag));
	if (unlikely(!m))
		return NULL;
	return md_fast_pop(m, size);
}

/*
 * The class of @p, a block of the slab whose page-map word is @md, if every check of
 * section 4 passes (a class's slab, an object boundary, allocated in the bitmap, no
 * double-free key); NULL otherwise. In a read-side section. The word names the class
 * (slab.c tags it), so struct slab stays unread, and the offset in the slab is the
 * low bits of @p (md_fast_class_init).
 */
static inline __attribute__((always_inline)) const struct md_fclass *
md_fast_small_block(void *p, memdesc_t md)
{
	const struct md_fclass *fc;
	const uint64_t *bm;
	size_t off;
	uint32_t i;
	bool exact;

	if (unlikely(memdesc_type(md) != MEMDESC_SLAB))
		return NULL;
	fc = &md_fclass[memdesc_tag(md)];
	off = (uintptr_t)p & fc->slab_mask;
	i = kmem__obj_index(fc->recip, off, &exact);
	if (unlikely(!exact || i >= fc->nobj))
		return NULL;
	bm = (const uint64_t *)(fc->bm_base + (((uintptr_t)p - off) >> fc->bm_shift));
	if (unlikely(!((__atomic_load_n(&bm[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1) ||
		     md_has_key(p)))
		return NULL;
	return fc;
}

/*
 * free of a small block whose checks all pass, onto the loaded magazine of this
 * thread if it has room: the page-map walk inside a bare read-side section (section
 * 7). false when anything else is needed (a large block, a bad free to report, a full
 * magazine, an unregistered reader, a walk xa_load_rcu_value leaves to the general
 * one): the caller then takes the general path, which checks again from scratch and
 * reports. Makes no call.
 */
static inline __attribute__((always_inline)) bool md_free_fast(void *p, size_t sized)
{
	const struct md_fclass *fc;
	struct kmem_magazine *m;
	struct kmem_tls *t;
	struct md_fast_rcu rs;
	unsigned long limit, pfn = md_fast_pfn(p, &limit);
	bool done = false;

	if (unlikely(pfn >= limit))
		return false;
	if (unlikely(!md_fast_rcu_lock(&rs)))
		return false;
	fc = md_fast_small_block(p, md__pfn_to_memdesc_fast(pfn));
	if (unlikely(!fc || sized > fc->stride))
		goto out;
	/* Loaded last: fewer values live across the walk, none in a callee-saved register. */
	t = kmem__tls;
	m = t ? kmem__mag_for_free(md_fast_cpu(t, fc->mag)) : NULL;
	if (likely(m != NULL)) {
		md_fast_push(m, p);
		done = true;
	}
out:
	md_fast_rcu_unlock(&rs);
	return done;
}

/*
 * realloc of @p, a small block of the class @fc that every check passed, to a small
 * block of another class, with this thread's magazines only: a block popped from the
 * new class's, the contents copied, @p pushed onto its own, as malloc's and free's fast
 * paths do (the general path does the same with a second page-map walk and the entry
 * section). NULL, no block moved, when a magazine cannot serve (the new class's has
 * no block or the old class's no room: the two classes differ). In the read-side
 * section of md_realloc_fast.
 */
static inline __attribute__((always_inline)) void *
md_realloc_fast_move(void *p, const struct md_fclass *fc, size_t size)
{
	struct kmem_tls *t = kmem__tls;
	struct kmem_magazine *mq, *mp;
	uint32_t mag;
	uint64_t *q;

	if (unlikely(!t || !(mag = md_fmag_of(size))))
		return NULL;
	mq = kmem__mag_for_alloc(md_fast_cpu(t, mag));
	if (unlikely(!mq))
		return NULL;
	mp = kmem__mag_for_free(md_fast_cpu(t, fc->mag));
	if (unlikely(!mp))
		return NULL;
	q = md_fast_pop(mq, size);	/* its key cleared, unless the copy overwrites it */
	memcpy(q, p, size < fc->stride ? size : fc->stride);
	md_fast_push(mp, p);
	return q;
}

/*
 * realloc that leaves the block as it is: a small block whose class still holds
 * @size and is not more than twice too big, or a large one whose pages hold @size and
 * would not shrink (md_realloc's rules). The same checks as free's fast path (a large
 * block: its first page, live, no key); NULL when anything else is needed, and the
 * general path then checks again from scratch. A program that grows a buffer a little
 * at a time calls realloc mostly for this. A small block that must move to another
 * small class moves here too when the magazines allow (md_realloc_fast_move).
 */
static inline __attribute__((always_inline)) void *md_realloc_fast(void *p, size_t size)
{
	const struct md_fclass *fc;
	struct md_fast_rcu rs;
	struct folio *f;
	memdesc_t md;
	unsigned long limit, pfn = md_fast_pfn(p, &limit);
	void *ret = NULL;

	if (unlikely(pfn >= limit))
		return NULL;
	if (unlikely(!md_fast_rcu_lock(&rs)))
		return NULL;
	md = md__pfn_to_memdesc_fast(pfn);
	if (memdesc_type(md) == MEMDESC_SLAB) {
		fc = md_fast_small_block(p, md);
		/* Class 0 (16 bytes) is never too big. */
		if (fc && size <= fc->stride &&
		    (size > fc->stride / 2u || fc->stride == md__class_size[0]))
			ret = p;
		else if (fc)
			ret = md_realloc_fast_move(p, fc, size);
	} else if ((f = memdesc_folio(md)) != NULL && size > MD_SMALL_MAX &&
		   size <= SIZE_MAX - MD_PAGE) {
		size_t have = folio_nr_pages(f), np = (size + MD_PAGE - 1) >> MD_PAGE_SHIFT_;

		if (folio_address(f) == p && folio_ref_count(f) > 0 && !md_has_key(p) &&
		    np <= have && have - np <= have / 8)
			ret = p;
	}
	md_fast_rcu_unlock(&rs);
	return ret;
}

/* ---- the API ------------------------------------------------------------------ */

/* Out of line, so that the fast path saves no registers for it. */
static __attribute__((noinline)) void *md_malloc_slow(size_t size)
{
	void *p;

	if (unlikely(md__enter())) {
		errno = ENOMEM;
		return NULL;
	}
	p = md_alloc_any(16, size);
	md__leave();
	return p;
}

void *md_malloc(size_t size)
{
	void *p = md_malloc_fast(size);

	if (likely(p != NULL))
		return p;
	return md_malloc_slow(size);
}

static __attribute__((noinline)) void md_free_fn(void *p, const char *fn, size_t sized)
{
	struct md_block blk;

	if (!p)
		return;
	if (unlikely(md__enter())) {
		md_bad(fn, p, "invalid pointer: the allocator could not start", NULL, 0);
		return;
	}
	if (md_lookup(p, fn, true, &blk) == 0) {
		if (unlikely(sized != 0 && sized > blk.req))
			md_bad(fn, p, "size larger than the block", "block of ", blk.req);
		else
			md_release(&blk);
	}
	md__leave();
}

void md_free(void *p)
{
	if (likely(md_free_fast(p, 0)))	/* NULL too goes to md_free_fn */
		return;
	md_free_fn(p, "free", 0);
}

void md_free_sized(void *p, size_t size)
{
	if (likely(md_free_fast(p, size)))
		return;
	md_free_fn(p, "free_sized", size);
}

void md_free_aligned_sized(void *p, size_t align, size_t size)
{
	(void)align;
	md_free_fn(p, "free_aligned_sized", size);
}

/*
 * Zero the new block @p of @n bytes, just allocated by this thread (md_last_from tells
 * where a large one's pages came from). A large block from the page arena is zero
 * already (FOLIO_ZEROED): nothing to do, as with the fresh mmap of other allocators
 * (alloc_heavy.py: 216 -> 77 madvise calls, 8% less peak RSS). A large block starts on
 * a page: from MD_CALLOC_MADVISE bytes on, when it comes from the dirty list and the
 * program runs one thread, its pages are handed back with MADV_DONTNEED instead, which
 * zeroes them with no write (the kernel maps the zero page until they are touched): a
 * big calloc that the program never fully touches (Python's bytes(n)) then costs
 * neither a memset nor page faults. With more threads (kmem_threads: the program's,
 * not our md_rcu worker) each madvise is a TLB shootdown on their CPUs and the pages
 * fault again when filled: mt_alloc spent 5% more time and took 41,000 minor faults
 * instead of 17,700. A cached block is resident and hot: memset.
 */
#define MD_CALLOC_MADVISE ((size_t)128 << 10)

static void md_zero(void *p, size_t n)
{
	if (n > MD_SMALL_MAX && md_last_from == MD_FROM_ZERO) {
		MD_VG_DEFINED(p, n);	/* zero pages, unknown to memcheck */
		return;
	}
	if (n >= MD_CALLOC_MADVISE && md_last_from == MD_FROM_DIRTY && kmem_threads() <= 1) {
		size_t whole = n & ~(MD_PAGE - 1);

		if (madvise(p, whole, MADV_DONTNEED) == 0) {
			MD_VG_DEFINED(p, whole);	/* zero pages, unknown to memcheck */
			memset((char *)p + whole, 0, n - whole);
			return;
		}
	}
	memset(p, 0, n);
}

void *md_calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (unlikely(__builtin_mul_overflow(n, size, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	p = md_malloc_fast(total);
	if (likely(p != NULL)) {
		memset(p, 0, total);	/* small: always memset (md_zero) */
		return p;
	}
	if (unlikely(md__enter())) {
		errno = ENOMEM;
		return NULL;
	}
	p = md_alloc_any(16, total);
	md__leave();
	if (p)
		md_zero(p, total);
	return p;
}

/*
 * Resize the large block @blk to @np pages in place (folio_resize): true when done.
 * A grown block keeps its contents and gets the pages that follow it; a shrunk one
 * gives its tail pages back to the page allocator at once. Junk fills as a fresh
 * block's pages and a freed block's would be.
 */
static bool md_resize_pages(struct md_block *blk, size_t np)
{
	size_t have = folio_nr_pages(blk->folio);

	if (np < have && unlikely(md__opt.junk))
		memset((char *)blk->p + (np << MD_PAGE_SHIFT_), 0x5a, (have - np) << MD_PAGE_SHIFT_);
	if (folio_resize(blk->folio, np) != 0) {
		if (np < have && unlikely(md__opt.junk))
			memset((char *)blk->p + (np << MD_PAGE_SHIFT_), 0xa5,
			       (have - np) << MD_PAGE_SHIFT_);
		return false;
	}
	MD_VG_RESIZE(blk->p, have << MD_PAGE_SHIFT_, np << MD_PAGE_SHIFT_);
	if (np > have && unlikely(md__opt.junk))
		memset((char *)blk->p + (have << MD_PAGE_SHIFT_), 0xa5, (np - have) << MD_PAGE_SHIFT_);
	blk->usable = np << MD_PAGE_SHIFT_;
	return true;
}

/* Grow the large block @blk in place to 1/8 more than @np pages, or to @np. */
static bool md_grow_pages(struct md_block *blk, size_t np)
{
	return md_resize_pages(blk, np + np / 8) || md_resize_pages(blk, np);
}

/* guard=1: the block stays at @p for @size bytes: its canary moves. */
static void *md_realloc_stay(struct md_block *blk, size_t size)
{
	if (unlikely(md__opt.guard))
		md_guard_arm(blk->p, size, blk->usable);
	return blk->p;
}

/*
 * Large blocks of at least MD_MOVE_MIN_PAGES pages move by moving their pages
 * (folio_move_pages: mremap, no copy, no page fault; section 2), when the new block's
 * pages are fresh from the page arena (FOLIO_ZEROED): a copy would fault in every one
 * of them. Pages reused from the dirty list are resident: a copy into them faults in
 * nothing, and a move would throw them away (the kernel frees the pages it replaces)
 * for the old block's range to be faulted in again when it is reused (mt_alloc: 3.6%
 * more page faults, 1.9% more time when every move of 256 KiB or more was a move).
 * Below 256 KiB, a copy costs less than the two VMAs a move leaves (phys.c, 6).
 * The old block's pages all go (its whole folio moves: the slack pages after the data
 * are empty or garbage either way), so it goes back to the page arena as zero frames
 * (md__folio_put_empty), not to the large-block cache or the dirty list, which would
 * count it resident and hand it out again as written memory.
 */
#define MD_MOVE_MIN_PAGES 64			/* 256 KiB */

/*
 * Give the large block @blk to the large block @q by moving all of its pages: true when
 * done (@blk is then freed). *@qp is set to NULL when the OS lost @q's pages on the
 * way (folio_move_pages' -EFAULT: @q is no longer ours).
 */
static bool md_move_block(struct md_block *blk, void **qp)
{
	size_t have;
	struct folio *qf;
	int rc;

	if (blk->cache || md__opt.junk || md__opt.guard || ((uintptr_t)*qp & (MD_PAGE - 1)))
		return false;
	have = folio_nr_pages(blk->folio);
	if (have < MD_MOVE_MIN_PAGES)
		return false;
	qf = virt_to_folio(*qp);
	if (!qf || folio_address(qf) != *qp || !(qf->f_flags & FOLIO_ZEROED) ||
	    folio_nr_pages(qf) < have)
		return false;
	rc = folio_move_pages(qf, blk->folio, have);
	if (rc == -EFAULT)
		*qp = NULL;
	if (rc)
		return false;
	MD_VG_FREELIKE(blk->p);
	md__folio_put_empty(blk->folio);
	return true;
}

/* The block moves to @q (NULL: out of memory, @blk untouched); @need as md_realloc's. */
static void *md_realloc_move(struct md_block *blk, void *q, size_t size, size_t need)
{
	struct md_block nb;
	size_t keep = size < blk->req ? size : blk->req;

	if (!q)
		return NULL;
	if (md_move_block(blk, &q))
		return q;
	if (!q && !(q = md_alloc(need)))
		return NULL;
	memcpy(q, blk->p, keep);
	if (unlikely(md__opt.guard) && md_lookup_block(q, "realloc", false, &nb) == 0)
		md_guard_arm(q, size, nb.usable);
	md_release(blk);
	return q;
}

void *md_realloc(void *p, size_t size)
{
	struct md_block blk;
	size_t need = size;	/* bytes the block must hold (with guard=1, its canary) */
	void *q;

	if (!p)
		return md_malloc(size);
	if (size == 0) {
		md_free_fn(p, "realloc", 0);
		return NULL;
	}
	if (likely((q = md_realloc_fast(p, size)) != NULL))
		return q;
	if (unlikely(md__enter())) {
		errno = ENOMEM;
		return NULL;
	}
	if (md_lookup(p, "realloc", true, &blk) != 0) {
		md__leave();
		errno = ENOMEM;
		return NULL;
	}
	if (unlikely(md__opt.guard)) {
		if (size > SIZE_MAX - MD_GUARD_EXTRA) {
			md__leave();
			errno = ENOMEM;
			return NULL;
		}
		need = size + MD_GUARD_EXTRA;
	}
	if (blk.cache) {
		/* Small: stay while the class fits and is not more than twice too big. */
		if (need <= blk.usable && (need > blk.usable / 2 || blk.cls == 0)) {
			md__leave();
			return md_realloc_stay(&blk, size);
		}
	} else if (need > MD_SMALL_MAX) {
		size_t np = (need + MD_PAGE - 1) >> MD_PAGE_SHIFT_;
		size_t have = folio_nr_pages(blk.folio);

		/*
		 * In place: a grow takes 1/8 more pages than asked when they are free (else
		 * just enough), so that a block grown step by step resizes O(log) times, as
		 * it would move; a shrink happens only when it frees more than an eighth of
		 * the block, so that such slack (and a cached block's extra pages) is not
		 * given back one step before it is needed.
		 */
		if (need <= SIZE_MAX - MD_PAGE && np > have && np <= SIZE_MAX / MD_PAGE / 2 &&
		    (md_grow_pages(&blk, np) ||
		     (md_lc_evict_next(&blk) && md_grow_pages(&blk, np)))) {
			md__leave();
			return md_realloc_stay(&blk, size);
		}
		if (need <= SIZE_MAX - MD_PAGE && np < have && have - np > have / 8 &&
		    md_resize_pages(&blk, np)) {
			md__leave();
			return md_realloc_stay(&blk, size);
		}
		if (need <= SIZE_MAX - MD_PAGE && np <= have && np >= have / 2) {
			md__leave();
			return md_realloc_stay(&blk, size);
		}
		/*
		 * The pages after the block are taken: it moves, with 1/8 more pages than
		 * asked, so that a block grown step by step among other blocks is copied
		 * O(log) times, not once per step, to where it can grow on in place
		 * (md_alloc_growing). A block that becomes large by growing is placed as
		 * any other: when those too skipped the large-block cache and took the front
		 * of the largest free range, mt_alloc's random reallocs took 5-23% more time
		 * and 7-21% more resident memory; a large block that grows again is the one
		 * likely to go on.
		 */
		if (need <= SIZE_MAX - MD_PAGE && np > have && np <= SIZE_MAX / MD_PAGE / 2) {
			q = md_alloc_growing(np + np / 8);
			if (!q)
				q = md_alloc_pages(need, 1);
			q = md_realloc_move(&blk, q, size, need);
			md__leave();
			if (!q)
				errno = ENOMEM;
			return q;
		}
	}
	q = md_realloc_move(&blk, md_alloc(need), size, need);
	md__leave();
	return q;
}

void *md_reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (unlikely(__builtin_mul_overflow(n, size, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	return md_realloc(p, total);
}

static void *md_aligned(size_t align, size_t size)
{
	void *p;

	if (unlikely(md__enter())) {
		errno = ENOMEM;
		return NULL;
	}
	p = md_alloc_any(align, size);
	md__leave();
	return p;
}

static inline bool md_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

void *md_aligned_alloc(size_t align, size_t size)
{
	if (!md_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return md_aligned(align, size);
}

int md_posix_memalign(void **memptr, size_t align, size_t size)
{
	int saved = errno;
	void *p;

	if (!md_pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	p = md_aligned(align, size);
	if (!p) {
		errno = saved;
		return ENOMEM;
	}
	*memptr = p;
	return 0;
}

void *md_memalign(size_t align, size_t size)
{
	if (align <= 16) {
		align = 16;	/* 0 too, as glibc */
	} else if (!md_pow2(align)) {
		/* glibc: the next power of two; beyond the largest one, no memory. */
		if (align > ((size_t)1 << 63)) {
			errno = ENOMEM;
			return NULL;
		}
		align = (size_t)1 << (64 - __builtin_clzl(align));
	}
	return md_aligned(align, size);
}

void *md_valloc(size_t size)
{
	return md_aligned(MD_PAGE, size);
}

void *md_pvalloc(size_t size)
{
	if (size > SIZE_MAX - MD_PAGE) {
		errno = ENOMEM;
		return NULL;
	}
	size = (size + MD_PAGE - 1) & ~(MD_PAGE - 1);
	return md_aligned(MD_PAGE, size ? size : MD_PAGE);
}

size_t md_malloc_usable_size(void *p)
{
	struct md_block blk;
	size_t n = 0;

	if (!p || md__enter())
		return 0;
	if (md_lookup(p, "malloc_usable_size", false, &blk) == 0)
		n = blk.req;
	md__leave();
	return n;
}

int md_malloc_trim(size_t pad)
{
	(void)pad;
	/*
	 * Two passes. Each lets the deferred frees queued so far run (outside our section:
	 * a barrier inside a read-side section would wait for itself, so it returns at once
	 * instead), reaps every cache twice, lets the type-stable slabs the reaps handed to
	 * a grace period go, and returns the free pages. The first starts with what this
	 * thread and the large-block cache hold, and ends by pruning the page map's empty
	 * nodes (memdesc_prune), which are freed after a grace period into slabs that only
	 * the second pass's reaps can empty.
	 */
	for (int pass = 0; pass < 2; pass++) {
		md_rcu_barrier();
		if (md__enter())
			return 0;
		if (pass == 0) {
			md_lc_drain();
			kmem_thread_flush();
			memdesc_thread_drain();
		}
		kmem_reap_all();
		kmem_reap_all();
		md__leave();
		md_rcu_barrier();
		if (md__enter())
			return 0;
		memdesc_purge();
		if (pass == 0)
			memdesc_prune();
		md__leave();
	}
	return 1;
}

int md_malloc_verify(void)
{
	size_t cached = 0;
	int rc = 0;

	if (!md__malloc_ready())
		return 0;	/* never started: no heap to check */
	/* Slabs and nodes freed after a grace period: let those callbacks finish first. */
	md_rcu_barrier();
	if (memdesc_verify())
		rc = -EINVAL;
	for (unsigned int i = 0; i < MD_NR_CLASSES; i++)
		if (kmem_cache_verify(md__class_cache[i]))
			rc = -EINVAL;
	/* The large-block cache: live folios of their bucket, with the key, counted. */
	for (unsigned int b = 0; b < MD_LC_BUCKETS; b++) {
		size_t n = 0;

		pthread_mutex_lock(&md_lc[b].lock);
		for (void *p = md_lc[b].head; p; p = *(void **)p, n++) {
			memdesc_t md = pfn_to_memdesc(virt_to_pfn(p));
			struct folio *f = memdesc_folio(md);

			if (memdesc_type(md) != MEMDESC_FOLIO || folio_address(f) != p ||
			    md_lc_bucket(folio_nr_pages(f)) != b || !md_has_key(p) ||
			    md_lc_np(p) != folio_nr_pages(f)) {
				md__report("md_malloc_verify: cached large block %p in bucket %u "
					   "is not a cached folio of that bucket", p, b);
				rc = -EINVAL;
				break;
			}
			cached += folio_nr_pages(f);
		}
		if (n != md_lc[b].n && rc == 0) {
			md__report("md_malloc_verify: large-block bucket %u holds %zu blocks, "
				   "counts %zu", b, n, md_lc[b].n);
			rc = -EINVAL;
		}
		pthread_mutex_unlock(&md_lc[b].lock);
	}
	if (rc == 0 && cached != atomic_load_explicit(&md_lc_pages, memory_order_relaxed)) {
		md__report("md_malloc_verify: large-block cache holds %zu pages, counts %zu",
			   cached, atomic_load_explicit(&md_lc_pages, memory_order_relaxed));
		rc = -EINVAL;
	}
	return rc;
}
