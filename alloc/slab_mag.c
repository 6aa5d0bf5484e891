/*
 * slab_mag.c: the magazine layer (Bonwick and Adams, "Magazines and Vmem", USENIX 2001,
 * section 3), per thread instead of per CPU.
 *
 * 1. Magazines
 *    A magazine is an array of M object pointers (rounds). Each thread has, per cache,
 *    a loaded and a previous magazine (struct kmem_cpu, in the thread's struct
 *    kmem_tls, one slot per cache id). Allocation pops from the loaded magazine, free
 *    pushes onto it: no lock, no atomic operation (kmem_cache_free first validates the
 *    pointer through pfn_to_memdesc(), an RCU read of the page map). The pop and the
 *    push are inline (slab_impl.h) for kmem_cache_alloc/free and the malloc layer. When the loaded
 *    magazine is empty (alloc) or full (free) and the previous one can serve, they are
 *    exchanged; this bounds depot traffic to once per M operations even when a thread
 *    alternates around a magazine boundary. The exchange is inline too
 *    (kmem__mag_for_alloc/free), so that the malloc layer's fast paths do it without
 *    their general path.
 *
 * 2. The depot
 *    Per cache, under c_depot_lock: a list of full magazines and a list of empty ones.
 *    alloc: previous (empty) -> depot empty list, loaded -> previous, a full magazine
 *    from the depot -> loaded. free: previous (full) -> depot full list, loaded ->
 *    previous, an empty magazine (from the depot, or newly allocated) -> loaded. When
 *    the depot has no full magazine, an empty magazine is filled with half its capacity
 *    from the slab layer in one locked step.
 *
 * 3. Magazine size grows under contention and when threads share the depot
 *    The depot lock is taken with pthread_mutex_trylock first; a failure counts as
 *    contention (c_contention). Every KMEM_CONTENTION_STEP failures the cache's
 *    magazine type grows one step (4, 8, ... 256 rounds), so a contended cache visits
 *    its depot less often. Magazines of the old size stay in use: each magazine knows
 *    its capacity.
 *    Contention is rare when threads outnumber the cores they run on (one waits for
 *    the scheduler, not for the lock), yet each visit of a depot that another thread
 *    used last moves its lock, its lists and the magazine's array between caches, and
 *    the objects in it were written by the other thread. So a change of the depot's
 *    user (c_depot_user, the struct kmem_tls that last took the lock) counts too:
 *    every KMEM_CONTENTION_STEP changes grow the type one step, up to
 *    KMEM_SHARED_MAX_ROUNDS rounds and KMEM_SHARED_MAX_BYTES of objects a magazine
 *    (a thread keeps two loaded magazines a class: bigger ones are resident memory
 *    that only this thread reuses). A cache one thread uses never grows this way.
 *    memdesc-mtwork 4 x 1,000,000 (4 threads on 2 cores, blocks of 8 B-4 KiB, two sets
 *    of 15 runs, medians): 5-6% less time, 8% less user time, 3-4% more peak resident
 *    memory (0.69x glibc's); mt_alloc: the same time, 1% more. The bound is in bytes too
 *    because with 64 rounds of any size mt_alloc's blocks of up to 32 KiB kept 17%
 *    more resident.
 *
 * 4. Magazines come from slab caches of magazines, which have no magazine layer (a
 *    magazine cache's objects never need a magazine). The allocation path allocates a
 *    magazine only when it is not nested in slab growth (kmem__nesting == 0); a free
 *    that cannot get an empty magazine frees to the slab layer. Both keep the recursion
 *    bounded (boot.c section 3).
 *
 * 5. Threads
 *    A thread's struct kmem_tls comes from kmem_tls_cache on its first magazine
 *    operation and is on kmem_tls_list. At thread exit (pthread key destructor, boot.c)
 *    its magazines go to the depots and the struct is freed; later calls from that
 *    thread bypass magazines. kmem_cache_destroy() reaches into every thread's slot of
 *    the cache, under kmem_tls_lock: its contract is that nobody uses the cache then.
 *
 * 6. Working set
 *    The depot remembers the fewest full and empty magazines it held since the last
 *    reap; kmem_cache_reap() frees that many (they were not needed), Bonwick's
 *    working-set algorithm. Reaps run when the page allocator asks its client for a
 *    reclaim (memdesc.h, memdesc_reclaim_due). Asking whenever the depots held more
 *    than the page allocator's idle bound (at the frees, or at the next growth) was
 *    tried and removed: a program that frees a batch and allocates it again then had
 *    its depots drained every round, the drained slabs purged and faulted in again
 *    (malloc/batch of 10,000 blocks of 512 bytes: 18.6 -> 155 ns per malloc+free).
 *    What tells the two apart is time: the idle reap (kmem_reap_idle_all, run by the
 *    malloc layer before a large allocation and after fresh pages, at most every
 *    2 ms) empties the full magazines of a depot that has held them for 5 ms with
 *    none taken, into the slabs; the magazines stay, empty, so the next burst of frees
 *    allocates none. "Held with none taken" is a second chance, as in the clock
 *    algorithm: taking a full magazine sets c_full_taken (no clock read per magazine),
 *    and a reap that finds it set clears it and stamps the depot anew; a depot that
 *    went from no full magazines to some is stamped then. So a depot idle from its
 *    first full magazine goes at the first reap 5 ms on, one that was in use at the
 *    second. A batch allocated again takes from its depot and is never idle;
 *    3,000 blobs pywork freed at the end of a round were, while the next round built
 *    its dictionary (CPython's small objects come from its own arenas, not from us):
 *    4.3 MiB kept resident through its peak. The clock is read when a depot's full
 *    list becomes non-empty and at the reap, not per magazine.
 */
#include "md_valgrind.h"
#include "slab_impl.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#define KMEM_CONTENTION_STEP 16
#define KMEM_SHARED_MAX_ROUNDS 64u	/* section 3 */
#define KMEM_SHARED_MAX_BYTES 65536u

const uint32_t kmem_mag_caps[KMEM_NR_MAGTYPES] = { 4, 8, 16, 32, 64, 128, 256 };
struct kmem_cache *kmem_mag_cache[KMEM_NR_MAGTYPES];
struct kmem_cache *kmem_tls_cache;

__thread unsigned int kmem__nesting;
__thread bool kmem__service_thread;
/* Threads with a struct kmem_tls, service threads aside (kmem_threads). */
static atomic_uint kmem_nr_threads;
__thread struct kmem_tls *kmem__tls __attribute__((tls_model("initial-exec")));
static __thread bool kmem_tls_busy;	/* creating it, or the thread has exited */

static pthread_mutex_t kmem_tls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kmem_tls *kmem_tls_list;
static struct kmem_cache *kmem_cache_by_id[KMEM_MAX_CACHES];

void md__thread_register(void);

size_t kmem__tls_size(void)
{
	return sizeof(struct kmem_tls);
}

/* ---- cache ids ---------------------------------------------------------------- */

int kmem__cache_id_get(struct kmem_cache *c)
{
	int rc = -EMFILE;

	pthread_mutex_lock(&kmem_tls_lock);
	for (int i = 0; i < KMEM_MAX_CACHES; i++) {
		if (!kmem_cache_by_id[i]) {
			kmem_cache_by_id[i] = c;
			c->c_id = i;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&kmem_tls_lock);
	return rc;
}

void kmem__cache_id_put(struct kmem_cache *c)
{
	pthread_mutex_lock(&kmem_tls_lock);
	kmem_cache_by_id[c->c_id] = NULL;
	pthread_mutex_unlock(&kmem_tls_lock);
	c->c_id = -1;
}

/* ---- magazines ---------------------------------------------------------------- */

static struct kmem_cache *kmem_mag_cache_of(const struct kmem_magazine *m)
{
	for (int i = 0; i < KMEM_NR_MAGTYPES; i++)
		if (kmem_mag_caps[i] == m->m_cap)
			return kmem_mag_cache[i];
	md__panic("kmem: magazine %p has capacity %u", (const void *)m, m->m_cap);
}

static struct kmem_magazine *kmem_mag_new(struct kmem_cache *c)
{
	unsigned int t = atomic_load_explicit(&c->c_magtype, memory_order_relaxed);
	struct kmem_magazine *m = kmem_cache_alloc(kmem_mag_cache[t]);

	if (m) {
		m->m_next = NULL;
		m->m_rounds = 0;
		m->m_cap = kmem_mag_caps[t];
	}
	return m;
}

static void kmem_mag_delete(struct kmem_magazine *m)
{
	kmem_cache_free(kmem_mag_cache_of(m), m);
}

/* Give @m's objects back to their slabs; @m stays, empty. */
static void kmem_mag_empty(struct kmem_cache *c, struct kmem_magazine *m)
{
	if (m->m_rounds)
		kmem__slab_free_batch(c, m->m_obj, m->m_rounds);
	m->m_rounds = 0;
}

/* Empty a magazine into the slab layer and free it. */
static void kmem_mag_destroy(struct kmem_cache *c, struct kmem_magazine *m)
{
	kmem_mag_empty(c, m);
	kmem_mag_delete(m);
}

/* ---- the depot ---------------------------------------------------------------- */

/*
 * One step bigger for new magazines of @c, if there is one within @max_rounds rounds and
 * @max_bytes of objects. Depot lock.
 */
static void kmem_magtype_grow(struct kmem_cache *c, uint32_t max_rounds, size_t max_bytes)
{
	unsigned int next = atomic_load_explicit(&c->c_magtype, memory_order_relaxed) + 1;

	if (next < KMEM_NR_MAGTYPES && kmem_mag_caps[next] <= max_rounds &&
	    kmem_mag_caps[next] * c->c_stride <= max_bytes)
		atomic_store_explicit(&c->c_magtype, next, memory_order_relaxed);
}

/*
 * Count a change of the thread that uses @c's depot, and grow its magazines every
 * KMEM_CONTENTION_STEP changes within the bounds for sharing (section 3). Depot lock.
 */
static void kmem_depot_note_user(struct kmem_cache *c)
{
	const struct kmem_tls *me = kmem__tls;

	if (!me || me == c->c_depot_user)
		return;
	c->c_depot_user = me;
	if (++c->c_depot_switches % KMEM_CONTENTION_STEP == 0)
		kmem_magtype_grow(c, KMEM_SHARED_MAX_ROUNDS, KMEM_SHARED_MAX_BYTES);
}

static void kmem_depot_lock(struct kmem_cache *c)
{
	size_t seen;

	if (pthread_mutex_trylock(&c->c_depot_lock) != 0) {
		atomic_fetch_add_explicit(&c->c_contention, 1, memory_order_relaxed);
		pthread_mutex_lock(&c->c_depot_lock);
		seen = atomic_load_explicit(&c->c_contention, memory_order_relaxed);
		if (seen - c->c_contention_seen >= KMEM_CONTENTION_STEP) {
			c->c_contention_seen = seen;
			kmem_magtype_grow(c, UINT32_MAX, SIZE_MAX);
		}
	}
	kmem_depot_note_user(c);
}

/* The idle clock of @c's full magazines starts at @now (ms; 0 means none). Depot lock. */
static void kmem_depot_stamp(struct kmem_cache *c, uint64_t now)
{
	atomic_store_explicit(&c->c_full_since, now ? now : 1, memory_order_relaxed);
	c->c_full_taken = false;
}

/* Stamped at @since, idle for @idle_ms at @now? (A stamp after @now: not idle.) */
static inline bool kmem_depot_idle(uint64_t since, uint64_t now, uint64_t idle_ms)
{
	return since && since <= now && now - since >= idle_ms;
}

static void kmem_depot_put_locked(struct kmem_cache *c, struct kmem_magazine *m)
{
	if (m->m_rounds) {
		if (!c->c_full)
			kmem_depot_stamp(c, kmem__now_ms());
		m->m_next = c->c_full;
		c->c_full = m;
		c->c_nr_full++;
		c->c_depot_objs += m->m_rounds;
	} else {
		m->m_next = c->c_empty;
		c->c_empty = m;
		c->c_nr_empty++;
	}
}

static struct kmem_magazine *kmem_depot_get_full_locked(struct kmem_cache *c)
{
	struct kmem_magazine *m = c->c_full;

	if (m) {
		c->c_full = m->m_next;
		c->c_nr_full--;
		c->c_depot_objs -= m->m_rounds;
		c->c_full_taken = true;
		if (!c->c_full)
			atomic_store_explicit(&c->c_full_since, 0, memory_order_relaxed);
		if (c->c_nr_full < c->c_full_min)
			c->c_full_min = c->c_nr_full;
		m->m_next = NULL;
	}
	return m;
}

static struct kmem_magazine *kmem_depot_get_empty_locked(struct kmem_cache *c)
{
	struct kmem_magazine *m = c->c_empty;

	if (m) {
		c->c_empty = m->m_next;
		c->c_nr_empty--;
		if (c->c_nr_empty < c->c_mempty_min)
			c->c_mempty_min = c->c_nr_empty;
		m->m_next = NULL;
	}
	return m;
}

static void kmem_depot_put(struct kmem_cache *c, struct kmem_magazine *m)
{
	kmem_depot_lock(c);
	kmem_depot_put_locked(c, m);
	pthread_mutex_unlock(&c->c_depot_lock);
}

void kmem__depot_reap(struct kmem_cache *c)
{
	struct kmem_magazine *list = NULL;
	size_t nf, ne;

	kmem_depot_lock(c);
	nf = c->c_full_min;
	ne = c->c_mempty_min;
	while (nf-- && c->c_full) {
		struct kmem_magazine *m = kmem_depot_get_full_locked(c);

		m->m_next = list;
		list = m;
	}
	while (ne-- && c->c_empty) {
		struct kmem_magazine *m = kmem_depot_get_empty_locked(c);

		m->m_next = list;
		list = m;
	}
	c->c_full_min = c->c_nr_full;
	c->c_mempty_min = c->c_nr_empty;
	pthread_mutex_unlock(&c->c_depot_lock);
	while (list) {
		struct kmem_magazine *next = list->m_next;

		kmem_mag_destroy(c, list);
		list = next;
	}
}

uint64_t kmem__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void kmem__depot_reap_idle(struct kmem_cache *c, uint64_t now, uint64_t idle_ms)
{
	struct kmem_magazine *list = NULL, *m;
	uint64_t since = atomic_load_explicit(&c->c_full_since, memory_order_relaxed);

	if (!kmem_depot_idle(since, now, idle_ms))
		return;		/* without the lock: most depots, most of the time */
	kmem_depot_lock(c);
	since = atomic_load_explicit(&c->c_full_since, memory_order_relaxed);
	if (since && c->c_full_taken) {
		kmem_depot_stamp(c, now);	/* in use since: idle from now on */
		since = 0;
	}
	if (!kmem_depot_idle(since, now, idle_ms)) {
		pthread_mutex_unlock(&c->c_depot_lock);
		return;
	}
	while (c->c_full) {
		m = kmem_depot_get_full_locked(c);
		m->m_next = list;
		list = m;
	}
	pthread_mutex_unlock(&c->c_depot_lock);
	for (m = list; m; m = m->m_next)
		kmem_mag_empty(c, m);
	kmem_depot_lock(c);
	while (list) {
		m = list;
		list = m->m_next;
		kmem_depot_put_locked(c, m);
	}
	pthread_mutex_unlock(&c->c_depot_lock);
}

void kmem__depot_drain(struct kmem_cache *c)
{
	struct kmem_magazine *list = NULL;

	if (c->c_flags & KMC_NOMAGAZINE)
		return;
	kmem_depot_lock(c);
	while (c->c_full || c->c_empty) {
		struct kmem_magazine *m = c->c_full ? kmem_depot_get_full_locked(c)
						    : kmem_depot_get_empty_locked(c);

		m->m_next = list;
		list = m;
	}
	c->c_full_min = c->c_mempty_min = 0;
	pthread_mutex_unlock(&c->c_depot_lock);
	while (list) {
		struct kmem_magazine *next = list->m_next;

		kmem_mag_destroy(c, list);
		list = next;
	}
}

int kmem__depot_verify(struct kmem_cache *c)
{
	size_t nf = 0, ne = 0, objs = 0;
	int bad = 0;

	pthread_mutex_lock(&c->c_depot_lock);
	for (struct kmem_magazine *m = c->c_full; m; m = m->m_next) {
		nf++;
		objs += m->m_rounds;
		if (m->m_rounds == 0 || m->m_rounds > m->m_cap)
			bad = 1;
		for (uint32_t i = 0; i < m->m_rounds && !bad; i++)
			if (kmem__validate(c, m->m_obj[i], "kmem_cache_verify (depot)", NULL))
				bad = 1;
	}
	for (struct kmem_magazine *m = c->c_empty; m; m = m->m_next) {
		ne++;
		if (m->m_rounds)
			bad = 1;
	}
	if (nf != c->c_nr_full || ne != c->c_nr_empty || objs != c->c_depot_objs)
		bad = 1;
	if (bad)
		md__report("kmem_cache_verify: %s: depot inconsistent (%zu/%zu full, %zu/%zu "
			   "empty, %zu/%zu objects)", c->c_name, nf, c->c_nr_full, ne,
			   c->c_nr_empty, objs, c->c_depot_objs);
	pthread_mutex_unlock(&c->c_depot_lock);
	return bad ? -EINVAL : 0;
}

/* ---- per-thread state --------------------------------------------------------- */

static struct kmem_tls *kmem_tls_get(void)
{
	struct kmem_tls *t = kmem__tls;

	if (likely(t))
		return t;
	if (kmem_tls_busy || kmem__nesting)
		return NULL;
	kmem_tls_busy = true;
	t = kmem_cache_alloc(kmem_tls_cache);
	if (t) {
		memset(t, 0, sizeof(*t));
		pthread_mutex_lock(&kmem_tls_lock);
		t->t_next = kmem_tls_list;
		if (kmem_tls_list)
			kmem_tls_list->t_prev = t;
		kmem_tls_list = t;
		pthread_mutex_unlock(&kmem_tls_lock);
		if (!kmem__service_thread)
			atomic_fetch_add_explicit(&kmem_nr_threads, 1, memory_order_relaxed);
		md__thread_register();
		kmem__tls = t;
		kmem_tls_busy = false;
	} else {
		kmem_tls_busy = false;
	}
	return t;
}

/* Return one slot's magazines to the depot; kmem_tls_lock held. */
static void kmem_cpu_flush(struct kmem_cache *c, struct kmem_cpu *cpu)
{
	struct kmem_magazine *m[2] = { cpu->loaded, cpu->prev };

	cpu->loaded = cpu->prev = NULL;
	for (int i = 0; i < 2; i++)
		if (m[i])
			kmem_depot_put(c, m[i]);
}

static void kmem_tls_flush_locked(struct kmem_tls *t)
{
	for (int id = 0; id < KMEM_MAX_CACHES; id++) {
		struct kmem_cpu *cpu = &t->t_cpu[id];

		if (!cpu->loaded && !cpu->prev)
			continue;
		if (!kmem_cache_by_id[id])
			md__panic("kmem: thread holds magazines of a destroyed cache (slot %d)", id);
		kmem_cpu_flush(kmem_cache_by_id[id], cpu);
	}
}

void kmem_thread_flush(void)
{
	struct kmem_tls *t = kmem__tls;

	if (!t)
		return;
	pthread_mutex_lock(&kmem_tls_lock);
	kmem_tls_flush_locked(t);
	pthread_mutex_unlock(&kmem_tls_lock);
}

void kmem__thread_exit(void)
{
	struct kmem_tls *t = kmem__tls;

	if (!t)
		return;
	pthread_mutex_lock(&kmem_tls_lock);
	kmem_tls_flush_locked(t);
	if (t->t_prev)
		t->t_prev->t_next = t->t_next;
	else
		kmem_tls_list = t->t_next;
	if (t->t_next)
		t->t_next->t_prev = t->t_prev;
	pthread_mutex_unlock(&kmem_tls_lock);
	if (!kmem__service_thread)
		atomic_fetch_sub_explicit(&kmem_nr_threads, 1, memory_order_relaxed);
	kmem__tls = NULL;
	kmem_tls_busy = true;	/* from now on this thread bypasses magazines */
	kmem_cache_free(kmem_tls_cache, t);
}

unsigned int kmem_threads(void)
{
	return atomic_load_explicit(&kmem_nr_threads, memory_order_relaxed);
}

void kmem__mag_purge_all_threads(struct kmem_cache *c)
{
	pthread_mutex_lock(&kmem_tls_lock);
	for (struct kmem_tls *t = kmem_tls_list; t; t = t->t_next)
		kmem_cpu_flush(c, &t->t_cpu[c->c_id]);
	pthread_mutex_unlock(&kmem_tls_lock);
}

/* ---- the slow paths ----------------------------------------------------------- */

/*
 * Mark @n objects the slab layer just put in a magazine (c_mag_mark): without it, a
 * free of such an object (never handed out, allocated in the bitmap) would pass every
 * check and the object would later be handed out twice. Free objects are unaddressable
 * to memcheck (valgrind builds): the word is opened for the store only.
 */
static void kmem_mag_mark(const struct kmem_cache *c, void **objs, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t *w = (uint64_t *)objs[i] + 1;

		MD_VG_UNDEFINED(w, sizeof(*w));
		*w = c->c_mag_mark ^ (uintptr_t)objs[i];
		MD_VG_NOACCESS(w, sizeof(*w));
	}
}

static void *kmem_slab_alloc_one(struct kmem_cache *c)
{
	void *obj;

	if (kmem__slab_alloc_batch(c, &obj, 1) == 1)
		return obj;
	errno = ENOMEM;
	return NULL;
}

/*
 * How many objects to take from the slab layer into an empty magazine: half its
 * capacity, but at most a page's worth (at least one). Each object taken gets the
 * double-free key in its second word (c_mag_mark), which touches its page: with half
 * of a 4-round magazine, every class of 4 KiB and up that a program used once kept a
 * second object resident (gcc's cc1: one 13-28 KiB object each in ~20 classes).
 */
static unsigned int kmem_mag_fill(const struct kmem_cache *c, const struct kmem_magazine *m)
{
	unsigned int n = m->m_cap / 2;
	size_t per_page = MEMDESC_PAGE_SIZE / c->c_stride;

	if (n > per_page)
		n = (unsigned int)per_page;
	return n ? n : 1;
}

void *kmem__mag_alloc(struct kmem_cache *c)
{
	struct kmem_tls *t = kmem_tls_get();
	struct kmem_cpu *cpu;
	struct kmem_magazine *m, *full;
	unsigned int n;

	if (!t)
		return kmem_slab_alloc_one(c);
	cpu = &t->t_cpu[c->c_id];
	m = kmem__mag_for_alloc(cpu);
	if (m)
		return m->m_obj[--m->m_rounds];
	/* Both empty (or absent): a full magazine from the depot. */
	kmem_depot_lock(c);
	full = kmem_depot_get_full_locked(c);
	if (full) {
		struct kmem_magazine *old = cpu->prev;

		cpu->prev = cpu->loaded;
		cpu->loaded = full;
		if (old)
			kmem_depot_put_locked(c, old);
		pthread_mutex_unlock(&c->c_depot_lock);
		return full->m_obj[--full->m_rounds];
	}
	pthread_mutex_unlock(&c->c_depot_lock);
	/* None: fill an empty magazine from the slab layer. */
	m = cpu->loaded;
	if (!m && !kmem__nesting) {
		m = kmem_mag_new(c);
		cpu->loaded = m;
	}
	if (!m)
		return kmem_slab_alloc_one(c);
	n = kmem__slab_alloc_batch(c, m->m_obj, kmem_mag_fill(c, m));
	if (!n) {
		errno = ENOMEM;
		return NULL;
	}
	if (c->c_mag_mark)
		kmem_mag_mark(c, m->m_obj, n);
	m->m_rounds = n;
	return m->m_obj[--m->m_rounds];
}

void kmem__mag_free(struct kmem_cache *c, void *obj)
{
	struct kmem_tls *t = kmem_tls_get();
	struct kmem_cpu *cpu;
	struct kmem_magazine *m, *empty;

	if (!t) {
		kmem__slab_free_batch(c, &obj, 1);
		return;
	}
	cpu = &t->t_cpu[c->c_id];
	m = kmem__mag_for_free(cpu);
	if (m) {
		m->m_obj[m->m_rounds++] = obj;
		return;
	}
	/* Loaded full (or absent), previous full (or absent): an empty from the depot. */
	kmem_depot_lock(c);
	empty = kmem_depot_get_empty_locked(c);
	pthread_mutex_unlock(&c->c_depot_lock);
	if (!empty && !kmem__nesting)
		empty = kmem_mag_new(c);
	if (!empty) {
		kmem__slab_free_batch(c, &obj, 1);
		return;
	}
	if (cpu->loaded) {
		if (cpu->prev)
			kmem_depot_put(c, cpu->prev);
		cpu->prev = cpu->loaded;
	}
	cpu->loaded = empty;
	empty->m_obj[empty->m_rounds++] = obj;
}

/* ---- the API ------------------------------------------------------------------ */

#ifdef MEMDESC_DEBUG
/* Debug builds: a double free whose first free sits in this thread's magazines. */
static bool kmem_in_magazines(struct kmem_cache *c, const void *obj)
{
	struct kmem_tls *t = kmem__tls;

	if (c->c_id < 0 || !t)
		return false;
	for (int k = 0; k < 2; k++) {
		struct kmem_magazine *m = k ? t->t_cpu[c->c_id].prev : t->t_cpu[c->c_id].loaded;

		for (uint32_t i = 0; m && i < m->m_rounds; i++) {
			if (m->m_obj[i] == obj) {
				md__report("kmem_cache_free: double free of %p (cache %s, object "
					   "size %zu): the object is in a magazine", obj, c->c_name,
					   c->c_size);
				return true;
			}
		}
	}
	return false;
}
#endif

static inline void *kmem_cache_alloc_obj(struct kmem_cache *c);

void *kmem_cache_alloc(struct kmem_cache *c)
{
	void *obj = kmem_cache_alloc_obj(c);

	if (obj && kmem__vg_tracked(c))	/* valgrind builds (md_valgrind.h) */
		MD_VG_MALLOCLIKE(obj, c->c_size, 0);
	return obj;
}

static inline void *kmem_cache_alloc_obj(struct kmem_cache *c)
{
	if (unlikely(!c)) {
		errno = EINVAL;
		return NULL;
	}
	if (likely(c->c_id >= 0))
		return kmem__mag_alloc_inline(c);
	return kmem_slab_alloc_one(c);
}

int kmem_cache_free_checked(struct kmem_cache *c, void *obj)
{
	if (unlikely(!c || !obj)) {
		md__report("kmem_cache_free: cache %p, object %p", (void *)c, obj);
		return -EINVAL;
	}
	if (kmem__validate(c, obj, "kmem_cache_free", NULL))
		return -EINVAL;
#ifdef MEMDESC_DEBUG
	if (kmem_in_magazines(c, obj))
		return -EINVAL;
#endif
	if (kmem__vg_tracked(c))
		MD_VG_FREELIKE(obj);
	if (likely(c->c_id >= 0)) {
		kmem__mag_free_inline(c, obj);
		return 0;
	}
	kmem__slab_free_batch(c, &obj, 1);
	return 0;
}

void kmem_cache_free(struct kmem_cache *c, void *obj)
{
	kmem_cache_free_checked(c, obj);
}
