/*
 * slab.c: object caches, the slab layer (Bonwick, "The Slab Allocator", 1994; the
 * descriptor kept apart from the pages after the Linux memdesc plan).
 *
 * 1. Slabs
 *    A slab is a naturally aligned power-of-two run of pages (c_slab_pages) from the
 *    page allocator: its page-map entry is one multi-index entry, so pfn_to_memdesc()
 *    of any of its objects ends high in the tree. Objects sit at base + i * stride; a
 *    bitmap of allocated objects (1 = allocated, including objects held in magazines)
 *    sits in the bitmap table (phys.c, section 5: one word per 4 frames, indexed by
 *    pfn) when it fits the slab's words there, that is with at most 64 objects per 4
 *    pages (objects of 256 bytes or more), and otherwise at the end of the pages.
 *    free() reads the bit on every call: at the end of the slab it was a line on a page
 *    of its own for most frees of large objects (a TLB entry and a cache line per slab,
 *    62% of memdesc-mtwork's last-level read misses under cachegrind); in the table it
 *    is one line per 8 to 32 slabs, one page per 8 MiB. Objects are handed out from
 *    the top down (highest free index first), so a slab with few objects in use touches
 *    one page, the last, which also holds a bitmap kept in the slab, not two (python3
 *    -c pass: 92 KiB less resident). The slab is described by a struct slab (64 bytes)
 *    from kmem_slab_cache, mapped as MEMDESC_SLAB for every page of the slab.
 *    Layout: the smallest slab of at least 16 KiB and 8 objects whose waste is at most
 *    1/16; failing that up to 8 MiB, the least waste. Objects of 8 KiB or more
 *    (KMEM_BIG_OBJ) take 4 objects (2 from 16 KiB) and up to 1/4 waste: a slab's
 *    room for objects not in use stays resident once used (python3 pywork kept a
 *    128 KiB slab of 16 KiB objects, all touched, for one object), while the waste of
 *    a big object's slab is mostly whole pages at the end that are never touched. So
 *    26624-byte objects go 2 to a 64 KiB slab, not 19 to 512 KiB; python3 pywork's
 *    peak: 150-250 KiB less. A bitmap in the table takes no room in the slab (4 KiB
 *    objects: 8 in 32 KiB).
 *
 * 2. The struct-slab cache describes itself
 *    Object 0 of every slab of kmem_slab_cache is that slab's own struct slab: growing
 *    this cache needs pages and a page-map store, never another descriptor, which ends
 *    the recursion "a slab needs a struct slab needs a slab". Such a slab is empty
 *    when only its own descriptor is allocated (c_self_desc, "empty" = 1 in use).
 *
 * 3. Lists and the working set of empty slabs
 *    Each cache keeps partial, full and empty slabs on three lists under c_lock.
 *    Allocation takes from partial slabs, then empty ones, then grows. An empty slab is
 *    kept for reuse: at most KMEM_EMPTY_MAX of them; beyond that the oldest goes back
 *    to the page allocator at once. kmem_cache_reap() frees the empty slabs that were
 *    not needed during the last interval (the fewest empty slabs seen since the
 *    previous reap, Bonwick's working set), so two reaps with no activity between free
 *    all of them.
 *
 * 4. Type-stable caches (KMC_TYPESAFE_BY_RCU)
 *    Objects are reused at once, but a slab's pages (and its struct slab) are freed
 *    only after an RCU grace period (md_rcu_call, memdesc/md_rcu.c): a lock-free reader
 *    that found an object through the page map sees memory of that type until it leaves
 *    its read section. struct slab, struct folio and XArray nodes come from such
 *    caches.
 *
 * 5. Bad frees
 *    kmem_cache_free() goes from the pointer to its slab through pfn_to_memdesc() and
 *    checks: a slab memdesc, of this cache, at an object boundary, allocated in the
 *    bitmap. Otherwise it reports (function, address, cache, sizes) and changes
 *    nothing. A double free is caught when the first free reached the slab; one that
 *    sits in a magazine is not (that would cost a search on the fast path).
 *
 * 6. Locking
 *    c_lock guards the lists, the bitmaps and the counts of a cache; it is never held
 *    across a call to the page allocator, another cache, an XArray store or md_rcu_call.
 *    Growing drops it, allocates, retakes it. kmem_list_lock guards the list of caches.
 *
 * 7. Failure
 *    A growth that gets no pages, no descriptor or no page-map entry undoes what it did
 *    and the allocation returns NULL/ENOMEM. Each growth is the fault-injection point
 *    FAULT_SLAB_GROW (fault/fault.h).
 */
#include "md_valgrind.h"
#include "slab_impl.h"
#include "fault.h"
#include "xarray.h"

#include <errno.h>
#include <string.h>

#define KMEM_MIN_SLAB_BYTES ((size_t)16 << 10)
#define KMEM_MAX_SLAB_PAGES 2048u	/* 8 MiB */
_Static_assert(((uint64_t)KMEM_MAX_SLAB_PAGES << MD_PAGE_SHIFT) <= UINT32_MAX,
	       "kmem__obj_index: a slab's offsets fit 32 bits");
#define KMEM_BIG_OBJ ((size_t)8 << 10)	/* objects of 2 pages or more: see section 1 */
#define KMEM_EMPTY_MAX 4		/* empty slabs kept between reaps */
#define KMEM_NR_STATIC 16

struct kmem_cache *kmem_slab_cache;
struct kmem_cache *kmem_cache_cache;	/* struct kmem_cache of kmem_cache_create() */
atomic_long kmem_nr_slabs;

static struct kmem_cache kmem_static[KMEM_NR_STATIC];	/* the boot area */
static unsigned int kmem_nr_static;
static pthread_mutex_t kmem_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kmem_cache *kmem_caches;

/* ---- layout ------------------------------------------------------------------- */

_Static_assert(KMEM_MIN_SLAB_BYTES >= ((size_t)MD_BITMAP_PAGES << MD_PAGE_SHIFT),
	       "every slab owns whole words of the bitmap table");

/*
 * Objects of @stride in a slab of @bytes; *@table: whether their bitmap goes in the
 * bitmap table (at most 64 objects per MD_BITMAP_PAGES pages), else it takes room at
 * the end of the slab.
 */
static uint32_t kmem_objs_fit(size_t bytes, size_t stride, bool *table)
{
	size_t n = bytes / stride;

	*table = (n + 63) / 64 <= (bytes >> MD_PAGE_SHIFT) / MD_BITMAP_PAGES;
	while (!*table && n && n * stride + ((n + 63) / 64) * 8 > bytes)
		n--;
	return (uint32_t)n;
}

int kmem__cache_setup(struct kmem_cache *c, const char *name, size_t size, size_t align,
		      unsigned int flags)
{
	size_t stride, best_pages = 0, best_waste = SIZE_MAX;
	size_t min_objs, max_waste_div;
	bool table;

	if (!name || size == 0 || size > KMEM_MAX_SIZE || (align & (align - 1)) ||
	    align > KMEM_MAX_ALIGN || (flags & ~(unsigned int)(KMC_TYPESAFE_BY_RCU | KMC_NOMAGAZINE)))
		return -EINVAL;
	if (align < 16)
		align = 16;
	stride = (size + align - 1) & ~(align - 1);
	min_objs = stride >= KMEM_BIG_OBJ * 2 ? 2 : stride >= KMEM_BIG_OBJ ? 4 : 8;
	max_waste_div = stride >= KMEM_BIG_OBJ ? 4 : 16;
	for (size_t pages = 1; pages <= KMEM_MAX_SLAB_PAGES; pages <<= 1) {
		size_t bytes = pages << MD_PAGE_SHIFT, n, waste;

		if (bytes < KMEM_MIN_SLAB_BYTES)
			continue;
		n = kmem_objs_fit(bytes, stride, &table);
		if (n < min_objs)
			continue;
		waste = bytes - n * stride;
		if (waste * max_waste_div <= bytes) {
			best_pages = pages;
			break;
		}
		if (waste * KMEM_MAX_SLAB_PAGES / pages < best_waste) {
			best_waste = waste * KMEM_MAX_SLAB_PAGES / pages;
			best_pages = pages;
		}
	}
	if (!best_pages)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	strncpy(c->c_name, name, sizeof(c->c_name) - 1);
	c->c_size = size;
	c->c_stride = stride;
	c->c_align = align;
	c->c_flags = flags;
	c->c_id = -1;
	c->c_slab_pages = (uint32_t)best_pages;
	c->c_nobj = kmem_objs_fit(best_pages << MD_PAGE_SHIFT, stride, &table);
	c->c_bitmap_words = (c->c_nobj + 63) / 64;
	c->c_bitmap_table = table;
	c->c_bitmap_off = table ? 0 : (uint32_t)((best_pages << MD_PAGE_SHIFT) -
						 c->c_bitmap_words * 8);
	c->c_recip = UINT64_MAX / stride + 1;
	pthread_mutex_init(&c->c_lock, NULL);
	pthread_mutex_init(&c->c_depot_lock, NULL);
	/* Bigger objects start with smaller magazines (Bonwick's magazine types). */
	atomic_init(&c->c_magtype, stride <= 256 ? 2u : stride <= 4096 ? 1u : 0u);
	return 0;
}

static void kmem_cache_link(struct kmem_cache *c)
{
	pthread_mutex_lock(&kmem_list_lock);
	c->c_next = kmem_caches;
	kmem_caches = c;
	pthread_mutex_unlock(&kmem_list_lock);
}

static void kmem_cache_unlink(struct kmem_cache *c)
{
	pthread_mutex_lock(&kmem_list_lock);
	for (struct kmem_cache **pp = &kmem_caches; *pp; pp = &(*pp)->c_next) {
		if (*pp == c) {
			*pp = c->c_next;
			break;
		}
	}
	pthread_mutex_unlock(&kmem_list_lock);
}

struct kmem_cache *kmem__cache_create_static(const char *name, size_t size, size_t align,
					     unsigned int flags)
{
	struct kmem_cache *c;

	if (kmem_nr_static == KMEM_NR_STATIC)
		return NULL;
	c = &kmem_static[kmem_nr_static];
	if (kmem__cache_setup(c, name, size, align, flags))
		return NULL;
	c->c_static = true;
	if (!(flags & KMC_NOMAGAZINE) && kmem__cache_id_get(c))
		return NULL;
	kmem_nr_static++;
	kmem_cache_link(c);
	return c;
}

int kmem__boot(void)
{
	kmem_slab_cache = kmem__cache_create_static("kmem-slab", sizeof(struct slab), 64,
						    KMC_TYPESAFE_BY_RCU);
	if (!kmem_slab_cache)
		return -ENOMEM;
	kmem_slab_cache->c_self_desc = true;
	for (int i = 0; i < KMEM_NR_MAGTYPES; i++) {
		static const char *const names[KMEM_NR_MAGTYPES] = {
			"kmem-magazine-4",  "kmem-magazine-8",	 "kmem-magazine-16",
			"kmem-magazine-32", "kmem-magazine-64", "kmem-magazine-128",
			"kmem-magazine-256",
		};

		kmem_mag_cache[i] = kmem__cache_create_static(
			names[i], sizeof(struct kmem_magazine) + kmem_mag_caps[i] * sizeof(void *),
			16, KMC_NOMAGAZINE);
		if (!kmem_mag_cache[i])
			return -ENOMEM;
	}
	kmem_tls_cache = kmem__cache_create_static("kmem-tls", kmem__tls_size(), 64,
						   KMC_NOMAGAZINE);
	kmem_cache_cache = kmem__cache_create_static("kmem-cache", sizeof(struct kmem_cache),
						     64, KMC_NOMAGAZINE);
	if (!kmem_tls_cache || !kmem_cache_cache)
		return -ENOMEM;
	return 0;
}

/* ---- slabs -------------------------------------------------------------------- */

/*
 * The page-map word of a slab of @c: tagged with the cache id + 1 (0: no id), so that
 * free() finds the cache from the word alone (memdesc.h, md_malloc.c section 7).
 */
_Static_assert(KMEM_MAX_CACHES <= MEMDESC_TAG_MAX, "a cache id + 1 fits a memdesc tag");

static inline memdesc_t kmem_slab_word(const struct kmem_cache *c, const struct slab *s)
{
	return memdesc_mk_tagged(s, MEMDESC_SLAB, c->c_id >= 0 ? (unsigned int)c->c_id + 1 : 0);
}

static inline char *slab_base(const struct slab *s)
{
	return pfn_to_virt(s->s_pfn);
}

static inline uint64_t *slab_bitmap(const struct kmem_cache *c, const struct slab *s)
{
	return kmem__bitmap(c, s->s_pfn);
}

static inline uint32_t kmem_empty_inuse(const struct kmem_cache *c)
{
	return c->c_self_desc ? 1 : 0;
}

/* Index of the object at byte offset @off, and whether @off is its start. */
static inline uint32_t kmem_obj_index(const struct kmem_cache *c, size_t off, bool *exact)
{
	return kmem__obj_index(c->c_recip, off, exact);
}

static inline bool kmem_bit(const uint64_t *bm, uint32_t i)
{
	return (__atomic_load_n(&bm[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1;
}

/*
 * Word @w of a bitmap with the bits past the last object set: those objects do not
 * exist, so the search for a free one must see them as taken.
 */
static inline uint64_t kmem_bitmap_word(const struct kmem_cache *c, const uint64_t *bm,
					uint32_t w)
{
	uint64_t word = __atomic_load_n(&bm[w], __ATOMIC_RELAXED);

	if (w == c->c_bitmap_words - 1 && (c->c_nobj & 63))
		word |= UINT64_MAX << (c->c_nobj & 63);
	return word;
}

/* Bitmap writes happen under c_lock; lock-free readers (validation) load atomically. */
static inline void kmem_bit_set(uint64_t *bm, uint32_t i, bool v)
{
	uint64_t w = __atomic_load_n(&bm[i / 64], __ATOMIC_RELAXED);

	w = v ? w | (1ULL << (i % 64)) : w & ~(1ULL << (i % 64));
	__atomic_store_n(&bm[i / 64], w, __ATOMIC_RELAXED);
}

static void kmem_list_add(struct kmem_cache *c, struct slab *s, uint32_t list)
{
	s->s_list = list;
	s->s_prev = NULL;
	s->s_next = c->c_lists[list];
	if (s->s_next)
		s->s_next->s_prev = s;
	c->c_lists[list] = s;
	c->c_nr[list]++;
}

static void kmem_list_del(struct kmem_cache *c, struct slab *s)
{
	if (s->s_prev)
		s->s_prev->s_next = s->s_next;
	else
		c->c_lists[s->s_list] = s->s_next;
	if (s->s_next)
		s->s_next->s_prev = s->s_prev;
	c->c_nr[s->s_list]--;
	if (s->s_list == KMEM_LIST_EMPTY && c->c_nr[KMEM_LIST_EMPTY] < c->c_empty_min)
		c->c_empty_min = c->c_nr[KMEM_LIST_EMPTY];
	s->s_list = KMEM_LIST_NONE;
	s->s_next = s->s_prev = NULL;
}

/* The list a slab belongs on by its count. */
static uint32_t kmem_list_for(const struct kmem_cache *c, const struct slab *s)
{
	if (s->s_inuse == kmem_empty_inuse(c))
		return KMEM_LIST_EMPTY;
	return s->s_inuse == c->c_nobj ? KMEM_LIST_FULL : KMEM_LIST_PARTIAL;
}

static void kmem_slab_relist(struct kmem_cache *c, struct slab *s)
{
	uint32_t want = kmem_list_for(c, s);

	if (want != s->s_list) {
		kmem_list_del(c, s);
		kmem_list_add(c, s, want);
	}
}

/* A new slab, mapped, on no list. No lock held. */
static struct slab *kmem_slab_grow(struct kmem_cache *c)
{
	size_t np = c->c_slab_pages;
	unsigned long pfn;
	struct slab *s = NULL;

	kmem__nesting++;
	if (FAULT_HIT(FAULT_SLAB_GROW))
		goto out;
	if (!c->c_self_desc) {
		s = kmem_cache_alloc(kmem_slab_cache);
		if (!s)
			goto out;
	}
	if (pages__get_range(np, np, ((c->c_flags & KMC_NOMAGAZINE) ? PAGES__OWN : 0) |
			     (c->c_static ? PAGES__META : 0), &pfn, NULL)) {
		if (s)
			kmem_cache_free(kmem_slab_cache, s);
		s = NULL;
		goto out;
	}
	if (c->c_self_desc)
		s = pfn_to_virt(pfn);
	s->s_cache = c;
	s->s_pfn = pfn;
	s->s_npages = (uint32_t)np;
	s->s_inuse = 0;
	s->s_hint = c->c_bitmap_words - 1;
	s->s_list = KMEM_LIST_NONE;
	s->s_next = s->s_prev = NULL;
	memset(slab_bitmap(c, s), 0, c->c_bitmap_words * 8);
	if (kmem__vg_tracked(c))	/* valgrind: free objects are unaddressable */
		MD_VG_NOACCESS(slab_base(s), (size_t)c->c_nobj * c->c_stride);
	if (c->c_self_desc) {
		kmem_bit_set(slab_bitmap(c, s), 0, true);
		s->s_inuse = 1;
	}
	/* Published last: a reader that finds the word finds a complete slab. */
	if (pages__publish(pfn, np, kmem_slab_word(c, s))) {
		pages__put_range(pfn, np);
		if (!c->c_self_desc)
			kmem_cache_free(kmem_slab_cache, s);
		s = NULL;
		goto out;
	}
	atomic_fetch_add_explicit(&kmem_nr_slabs, 1, memory_order_relaxed);
out:
	kmem__nesting--;
	return s;
}

static void kmem_slab_free_pages(struct slab *s)
{
	unsigned long pfn = s->s_pfn;
	size_t np = s->s_npages;
	bool self = (void *)s == pfn_to_virt(pfn);

	if (!self)
		kmem_cache_free(kmem_slab_cache, s);
	pages__release(pfn, np);
}

static void kmem_slab_rcu_free(struct rcu_head *head)
{
	struct slab *s = (struct slab *)((char *)head - offsetof(struct slab, s_rcu));
	long np;

	/* TSan: the grace period orders this after the md_rcu_call below (xarray.c, 5). */
	XA__TSAN_ACQUIRE(&xa__tsan_gp);
	np = (long)s->s_npages;

	kmem_slab_free_pages(s);
	pages__rcu_pending(-np);
}

/* Unmap a slab taken off the lists and free it (after a grace period if type-stable). */
static void kmem_slab_destroy(struct kmem_cache *c, struct slab *s)
{
	pages__unpublish(s->s_pfn, s->s_npages);
	atomic_fetch_sub_explicit(&kmem_nr_slabs, 1, memory_order_relaxed);
	if (c->c_flags & KMC_TYPESAFE_BY_RCU) {
		pages__rcu_pending((long)s->s_npages);
		XA__TSAN_RELEASE(&xa__tsan_gp);
		md_rcu_call(&s->s_rcu, kmem_slab_rcu_free);
	}
	else
		kmem_slab_free_pages(s);
}

static void kmem_slab_destroy_list(struct kmem_cache *c, struct slab *dead)
{
	while (dead) {
		struct slab *next = dead->s_next;

		dead->s_next = NULL;
		kmem_slab_destroy(c, dead);
		dead = next;
	}
}

unsigned int kmem__slab_alloc_batch(struct kmem_cache *c, void **objs, unsigned int n)
{
	unsigned int got = 0;

	pthread_mutex_lock(&c->c_lock);
	while (got < n) {
		struct slab *s = c->c_lists[KMEM_LIST_PARTIAL];
		uint64_t *bm;

		if (!s)
			s = c->c_lists[KMEM_LIST_EMPTY];
		if (!s) {
			if (got)
				break;
			pthread_mutex_unlock(&c->c_lock);
			s = kmem_slab_grow(c);
			if (!s)
				return 0;
			pthread_mutex_lock(&c->c_lock);
			kmem_list_add(c, s, KMEM_LIST_EMPTY);
			continue;
		}
		bm = slab_bitmap(c, s);
		while (got < n && s->s_inuse < c->c_nobj) {
			uint32_t w = s->s_hint;
			uint64_t word;
			uint32_t i;

			while ((word = kmem_bitmap_word(c, bm, w)) == UINT64_MAX)
				w--;
			i = w * 64 + 63 - (uint32_t)__builtin_clzll(~word);
			s->s_hint = w;
			kmem_bit_set(bm, i, true);
			s->s_inuse++;
			objs[got++] = slab_base(s) + (size_t)i * c->c_stride;
		}
		kmem_slab_relist(c, s);
	}
	c->c_inuse += got;
	pthread_mutex_unlock(&c->c_lock);
	return got;
}

void kmem__slab_free_batch(struct kmem_cache *c, void **objs, unsigned int n)
{
	struct slab *dead = NULL;
	unsigned int freed = 0;

	pthread_mutex_lock(&c->c_lock);
	for (unsigned int k = 0; k < n; k++) {
		struct slab *s = memdesc_slab(pfn_to_memdesc(virt_to_pfn(objs[k])));
		size_t off;
		uint32_t i;
		bool exact;

		/*
		 * Objects were validated when freed; one that fails now was freed twice while
		 * its first free sat in a magazine: report it and leave it alone.
		 */
		if (!s || s->s_cache != c) {
			md__report("kmem_cache_free: double free of %p (cache %s, object size %zu) "
				   "found when its magazine was emptied", objs[k], c->c_name,
				   c->c_size);
			continue;
		}
		off = (size_t)((char *)objs[k] - slab_base(s));
		i = kmem_obj_index(c, off, &exact);
		if (!kmem_bit(slab_bitmap(c, s), i)) {
			md__report("kmem_cache_free: double free of %p (cache %s, object size %zu) "
				   "found when its magazine was emptied", objs[k], c->c_name,
				   c->c_size);
			continue;
		}
		freed++;
		kmem_bit_set(slab_bitmap(c, s), i, false);
		if (i / 64 > s->s_hint)
			s->s_hint = i / 64;
		s->s_inuse--;
		kmem_slab_relist(c, s);
		if (s->s_list == KMEM_LIST_EMPTY && c->c_nr[KMEM_LIST_EMPTY] > KMEM_EMPTY_MAX) {
			/* Over the working set: the oldest empty slab goes. */
			struct slab *old = c->c_lists[KMEM_LIST_EMPTY];

			while (old->s_next)
				old = old->s_next;
			kmem_list_del(c, old);
			old->s_next = dead;
			dead = old;
		}
	}
	c->c_inuse -= freed;
	pthread_mutex_unlock(&c->c_lock);
	kmem_slab_destroy_list(c, dead);
}

/*
 * Free the empty slabs not needed since the last reap (all: every empty slab), oldest
 * first; and the slabs the depot reap has just emptied: those beyond the @before
 * empty slabs there were before it (SIZE_MAX: none). Counted under the same lock
 * round trip that frees them.
 */
static void kmem_slab_reap(struct kmem_cache *c, bool all, size_t before)
{
	struct slab *dead = NULL;
	size_t count, now;

	pthread_mutex_lock(&c->c_lock);
	now = c->c_nr[KMEM_LIST_EMPTY];
	count = all ? now : c->c_empty_min + (now > before ? now - before : 0);
	while (count-- && c->c_lists[KMEM_LIST_EMPTY]) {
		struct slab *old = c->c_lists[KMEM_LIST_EMPTY];

		while (old->s_next)
			old = old->s_next;
		kmem_list_del(c, old);
		old->s_next = dead;
		dead = old;
	}
	c->c_empty_min = c->c_nr[KMEM_LIST_EMPTY];
	pthread_mutex_unlock(&c->c_lock);
	kmem_slab_destroy_list(c, dead);
}

/* ---- validation --------------------------------------------------------------- */

int kmem__validate(struct kmem_cache *c, const void *obj, const char *fn, struct slab **slabp)
{
	memdesc_t md = pfn_to_memdesc(virt_to_pfn(obj));
	struct slab *s = memdesc_slab(md);
	size_t off;
	uint32_t i;
	bool exact;

	if (!s) {
		md__report("%s: %p (cache %s, object size %zu) is not in a slab (memdesc %#lx)",
			   fn, obj, c->c_name, c->c_size, (unsigned long)md);
		return -EINVAL;
	}
	if (s->s_cache != c) {
		md__report("%s: %p is in cache %s (object size %zu), not in cache %s "
			   "(object size %zu)", fn, obj, s->s_cache->c_name, s->s_cache->c_size,
			   c->c_name, c->c_size);
		return -EINVAL;
	}
	off = (size_t)((const char *)obj - slab_base(s));
	i = kmem_obj_index(c, off, &exact);
	if (!exact || i >= c->c_nobj || (c->c_self_desc && i == 0)) {
		md__report("%s: %p is not the start of an object of cache %s (object size %zu, "
			   "offset %zu in a slab of %u objects)", fn, obj, c->c_name, c->c_size, off,
			   c->c_nobj);
		return -EINVAL;
	}
	if (!kmem_bit(slab_bitmap(c, s), i)) {
		md__report("%s: double free of %p (cache %s, object size %zu): the object is "
			   "free in its slab", fn, obj, c->c_name, c->c_size);
		return -EINVAL;
	}
	if (slabp)
		*slabp = s;
	return 0;
}

int kmem_obj_info(const void *ptr, struct kmem_obj_info *info)
{
	struct slab *s = memdesc_slab(pfn_to_memdesc(virt_to_pfn(ptr)));
	struct kmem_cache *c;
	size_t off;
	uint32_t i;
	bool exact;

	if (!s)
		return -EINVAL;
	c = s->s_cache;
	off = (size_t)((const char *)ptr - slab_base(s));
	i = kmem_obj_index(c, off, &exact);
	if (i >= c->c_nobj || (c->c_self_desc && i == 0))
		return -EINVAL;
	info->cache = c;
	info->slab = s;
	info->obj = slab_base(s) + (size_t)i * c->c_stride;
	info->size = c->c_size;
	info->allocated = kmem_bit(slab_bitmap(c, s), i);
	return 0;
}

struct kmem_cache *slab_cache(const struct slab *slab)
{
	return slab->s_cache;
}

/* ---- caches ------------------------------------------------------------------- */

struct kmem_cache *kmem_cache_create(const char *name, size_t size, size_t align,
				     unsigned int flags)
{
	struct kmem_cache tmp, *c;
	int rc = memdesc_init();

	if (rc) {
		errno = -rc;
		return NULL;
	}
	rc = kmem__cache_setup(&tmp, name, size, align, flags);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	c = kmem_cache_alloc(kmem_cache_cache);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	kmem__cache_setup(c, name, size, align, flags);
	if (!(flags & KMC_NOMAGAZINE) && kmem__cache_id_get(c)) {
		kmem_cache_free(kmem_cache_cache, c);
		errno = EMFILE;
		return NULL;
	}
	kmem_cache_link(c);
	return c;
}

void kmem_cache_destroy(struct kmem_cache *c)
{
	size_t inuse;

	if (!c)
		return;
	if (c->c_static) {
		md__report("kmem_cache_destroy: %s is an internal cache", c->c_name);
		return;
	}
	if (c->c_id >= 0) {
		kmem__mag_purge_all_threads(c);
		kmem__cache_id_put(c);
	}
	kmem__depot_drain(c);
	kmem_slab_reap(c, true, SIZE_MAX);
	pthread_mutex_lock(&c->c_lock);
	inuse = c->c_inuse;
	pthread_mutex_unlock(&c->c_lock);
	kmem_cache_unlink(c);
	if (inuse) {
		md__report("kmem_cache_destroy: cache %s (object size %zu) still has %zu objects "
			   "allocated; its slabs are left in place", c->c_name, c->c_size, inuse);
		return;
	}
	/*
	 * A lock-free reader that found one of its slabs before they were unmapped may
	 * still look at the cache: wait for it. (The deferred slab frees do not touch the
	 * cache, so they need not have run.)
	 */
	if (c->c_flags & KMC_TYPESAFE_BY_RCU)
		synchronize_rcu();
	pthread_mutex_destroy(&c->c_lock);
	pthread_mutex_destroy(&c->c_depot_lock);
	kmem_cache_free(kmem_cache_cache, c);
}

size_t kmem_cache_size(const struct kmem_cache *c)
{
	return c->c_size;
}

const char *kmem_cache_name(const struct kmem_cache *c)
{
	return c->c_name;
}

void kmem_cache_reap(struct kmem_cache *c)
{
	size_t before = SIZE_MAX;

	if (c->c_id >= 0) {
		pthread_mutex_lock(&c->c_lock);
		before = c->c_nr[KMEM_LIST_EMPTY];
		pthread_mutex_unlock(&c->c_lock);
		kmem__depot_reap(c);
	}
	kmem_slab_reap(c, false, before);
#ifdef MEMDESC_DEBUG
	/* Safe under concurrency: the walk holds the cache's locks. */
	if (kmem_cache_verify(c))
		md__panic("kmem_cache_reap: cache %s fails verification", c->c_name);
#endif
}

void kmem_reap_all(void)
{
	pthread_mutex_lock(&kmem_list_lock);
	for (struct kmem_cache *c = kmem_caches; c; c = c->c_next)
		kmem_cache_reap(c);
	pthread_mutex_unlock(&kmem_list_lock);
}

void kmem_reap_idle_all(uint64_t idle_ms)
{
	uint64_t now = kmem__now_ms();

	pthread_mutex_lock(&kmem_list_lock);
	for (struct kmem_cache *c = kmem_caches; c; c = c->c_next)
		if (c->c_id >= 0)
			kmem__depot_reap_idle(c, now, idle_ms);
	pthread_mutex_unlock(&kmem_list_lock);
}

/*
 * Every depot magazine and every empty slab of each cache, in one pass, with two lock
 * round trips per cache where two kmem_reap_all() in a row (no activity between) take
 * eight. Slabs that become empty only after their cache's turn (another cache freeing
 * magazines or slab descriptors into it) wait for the next reap or drain; two reaps
 * free some of those, so the two are not interchangeable where the exact layout left
 * matters (md_malloc_trim keeps the two reaps). The working-set minimums end at the
 * counts left.
 */
void kmem_drain_all(void)
{
	pthread_mutex_lock(&kmem_list_lock);
	for (struct kmem_cache *c = kmem_caches; c; c = c->c_next) {
		if (c->c_id >= 0)
			kmem__depot_drain(c);
		kmem_slab_reap(c, true, SIZE_MAX);
#ifdef MEMDESC_DEBUG
		if (kmem_cache_verify(c))
			md__panic("kmem_drain_all: cache %s fails verification", c->c_name);
#endif
	}
	pthread_mutex_unlock(&kmem_list_lock);
}

/* ---- verification and statistics ---------------------------------------------- */

int md__slab_verify_entry(const struct slab *s, unsigned long index, memdesc_t md,
			  size_t *pages)
{
	if (!s->s_cache || index < s->s_pfn || index - s->s_pfn >= s->s_npages ||
	    s->s_npages != s->s_cache->c_slab_pages) {
		md__report("memdesc_verify: pfn %lu maps to slab %p covering pfn %lu + %u", index,
			   (const void *)s, s->s_pfn, s->s_npages);
		return -EINVAL;
	}
	if (index == s->s_pfn) {
		if (!pages__is_allocation(s->s_pfn, s->s_npages, md)) {
			md__report("memdesc_verify: slab %p: pfn %lu + %u is not exactly its run",
				   (const void *)s, s->s_pfn, s->s_npages);
			return -EINVAL;
		}
		*pages += s->s_npages;
	}
	return 0;
}

int kmem_cache_verify(struct kmem_cache *c)
{
	size_t inuse = 0;
	int bad = 0;

	pthread_mutex_lock(&c->c_lock);
	for (uint32_t l = 0; l < KMEM_NR_LISTS; l++) {
		size_t nr = 0;

		for (struct slab *s = c->c_lists[l], *prev = NULL; s; prev = s, s = s->s_next) {
			const uint64_t *bm = slab_bitmap(c, s);
			size_t bits = 0;

			nr++;
			if (s->s_cache != c || s->s_list != l || s->s_prev != prev ||
			    kmem_list_for(c, s) != l) {
				md__report("kmem_cache_verify: %s: slab %p on list %u is misplaced "
					   "(inuse %u of %u)", c->c_name, (void *)s, l, s->s_inuse,
					   c->c_nobj);
				bad = 1;
			}
			for (uint32_t w = 0; w < c->c_bitmap_words; w++)
				bits += (size_t)__builtin_popcountll(bm[w]);
			for (uint32_t i = c->c_nobj; i < c->c_bitmap_words * 64; i++)
				if (kmem_bit(bm, i))
					bits = SIZE_MAX;
			if (bits != s->s_inuse) {
				md__report("kmem_cache_verify: %s: slab %p counts %u objects, bitmap "
					   "%zu", c->c_name, (void *)s, s->s_inuse, bits);
				bad = 1;
			}
			for (uint32_t w = s->s_hint + 1; w < c->c_bitmap_words; w++)
				if (kmem_bitmap_word(c, bm, w) != UINT64_MAX) {
					md__report("kmem_cache_verify: %s: slab %p hint %u past a "
						   "free bit", c->c_name, (void *)s, s->s_hint);
					bad = 1;
					break;
				}
			if (pfn_to_memdesc(s->s_pfn) != kmem_slab_word(c, s) ||
			    !pages__is_allocation(s->s_pfn, s->s_npages,
						  kmem_slab_word(c, s))) {
				md__report("kmem_cache_verify: %s: slab %p is not mapped as its pages",
					   c->c_name, (void *)s);
				bad = 1;
			}
			inuse += s->s_inuse - kmem_empty_inuse(c);
		}
		if (nr != c->c_nr[l]) {
			md__report("kmem_cache_verify: %s: list %u holds %zu slabs, counted %zu",
				   c->c_name, l, nr, c->c_nr[l]);
			bad = 1;
		}
	}
	if (inuse != c->c_inuse) {
		md__report("kmem_cache_verify: %s: slabs hold %zu objects, counted %zu", c->c_name,
			   inuse, c->c_inuse);
		bad = 1;
	}
	pthread_mutex_unlock(&c->c_lock);
	if (c->c_id >= 0 && kmem__depot_verify(c))
		bad = 1;
	return bad ? -EINVAL : 0;
}

void kmem_cache_stats(struct kmem_cache *c, struct kmem_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->obj_size = c->c_size;
	st->slab_pages = c->c_slab_pages;
	st->objs_per_slab = c->c_nobj;
	pthread_mutex_lock(&c->c_lock);
	st->slabs = c->c_nr[0] + c->c_nr[1] + c->c_nr[2];
	st->slabs_empty = c->c_nr[KMEM_LIST_EMPTY];
	st->objs_slab_inuse = c->c_inuse;
	pthread_mutex_unlock(&c->c_lock);
	pthread_mutex_lock(&c->c_depot_lock);
	st->objs_depot = c->c_depot_objs;
	st->depot_switches = c->c_depot_switches;
	pthread_mutex_unlock(&c->c_depot_lock);
	st->mag_rounds = kmem_mag_caps[atomic_load(&c->c_magtype)];
	st->depot_contention = atomic_load(&c->c_contention);
}
