/*
 * md_env.c: the malloc layer's life in a process: the first call, options, fork,
 * thread exit and statistics.
 *
 * 1. The first call
 *    The dynamic loader and libc call malloc before any constructor runs, so every
 *    entry point initialises on first use (md__enter -> md__malloc_init): read
 *    MEMDESC_OPTIONS (getenv, no allocation), create the thread-exit key (the first
 *    keys of a process allocate nothing), memdesc_init() (no malloc, no stdio, see
 *    memdesc/boot.c), then the 72 class caches (memory from memdesc, never from
 *    malloc). Other threads wait on md_init_lock; a call re-entering the initialising
 *    thread (none is known: nothing above calls malloc) fails with ENOMEM rather than
 *    deadlock. What may allocate comes later, from the library's constructor, when
 *    libc is fully up: pthread_atfork (glibc may grow its handler list with malloc,
 *    which then re-enters us, initialised). Nothing starts a thread at start-up: the
 *    worker that runs deferred frees (memdesc/md_rcu.c) starts when frees wait for
 *    it, from md__leave() of an outermost call (md_rcu_kick(): no lock of ours held,
 *    so the mallocs of pthread_create enter us like any caller's).
 *
 * 2. Options
 *    One table, MD_OPTIONS (md_malloc_impl.h), read once from MEMDESC_OPTIONS without
 *    allocating: comma-separated key=value, sizes with K/M/G/T. Unknown keys are
 *    skipped (they may belong to another layer). memdesc reads limit and thp itself
 *    (memdesc/phys.c) and reports their bad values; the table has them for verbose=1.
 *
 * 3. fork()
 *    A child must not inherit a lock held by a thread that does not exist in it.
 *    Rather than take every lock of every layer (cache, depot, tls list, page cache,
 *    dirty list, node pool, vmem arenas and tag pool, XArray locks: most are static to
 *    their files), the prepare handler makes sure that no thread is inside the
 *    allocator, which is where all of them are taken:
 *    - every entry point runs in an urcu-bp read-side section (md__enter/md__leave)
 *      and, on entering, checks md__fork_pending; if it is set, it leaves the section
 *      and waits on md_fork_lock;
 *    - prepare takes md_fork_lock, sets md__fork_pending and calls synchronize_rcu():
 *      when it returns, every section that began before has ended, and every later one
 *      saw the flag (RCU's guarantee), so no thread is in the allocator;
 *    - deferred frees (slabs of type-stable caches, page-map nodes) run on md_rcu's
 *      worker outside any entry point, in a read-side section guarded by a flag of
 *      their own: md_rcu_fork_pause() sets it before the grace period, so the same
 *      synchronize_rcu() waits them out too; then md_rcu_fork_prepare() takes the
 *      queue's lock, and urcu_bp_before_fork() liburcu's own locks;
 *    - thread exit runs inside a section too (section 4).
 *    No handshake with a thread: a fork costs one grace period (a membarrier and a
 *    scan of the readers) and a few uncontended mutexes.
 *    A process that never started a second thread skips all of it: glibc's
 *    __libc_single_threaded says so (cleared by the first pthread_create, never set
 *    again; md_rcu starts its worker only in a process that has threads already, and a
 *    single-threaded one runs its deferred frees itself). With no other thread, and the
 *    forking thread outside the allocator (depth 0: not a fork from a signal handler
 *    that interrupted a malloc), no lock of ours or of liburcu's is held and no
 *    deferred free runs, so the child's copy is consistent as it is; the three
 *    handlers then do nothing.
 *    Doing the work anyway cost every fork's child ~26 page faults: the handlers' code
 *    and data pages, copies on write of the locks they release, and liburcu-bp's lazy
 *    binding of what only a child calls. memdesc-forkbench, 2,000 forks, a child
 *    that does not malloc: 1.36 -> 1.19x glibc's time, 27 page faults per fork
 *    (glibc 26). A thread made with a raw clone() that calls malloc is not seen; glibc
 *    itself does not support one.
 *    Before either path, a reclaim request that is pending (memdesc_reclaim_pending:
 *    fresh pages were taken since the last collection) runs in the parent
 *    (md__reclaim_before_fork), so that no child inherits it: a child that allocated
 *    collected it at once and reaped caches it shares with the parent copy-on-write.
 *    memdesc-forkbench 2,000 0, whose parent's request from its start stayed pending:
 *    84,122 -> 76,124-78,126 page faults (43 -> 39-40 a fork and its child; glibc 25),
 *    time 1.17 -> 1.15x glibc's (15 interleaved runs). The reclaim's section ends
 *    without the RCU worker's kick, so fork starts no thread in the parent.
 *    parent: liburcu's after-fork handler, release md_rcu's locks, clear the flag,
 *    release md_fork_lock. child: the same (the forking thread holds the locks, so it
 *    releases them); md_rcu has no worker there and starts one at the child's first
 *    md__leave() only if frees were queued (md_rcu.c, section 4). The child can
 *    allocate and free, the parent's blocks included: ordinary blocks of the copied heap.
 *    What the parent's other threads held in their magazines and page caches stays
 *    allocated in the child (a bounded leak: at most a few magazines per class per
 *    thread). Nested entry points (a malloc inside pthread_create from md__leave's
 *    kick) do not wait: the outer section already holds the fork off, or the kick
 *    runs outside any section.
 *    The cost on every call: a TLS load and store of the urcu-bp nesting counter
 *    (with a compiler barrier when the kernel has membarrier), one relaxed load of the
 *    fork flag, and on the outermost return one relaxed load of md_rcu's want flag.
 *
 * 4. Thread exit
 *    A pthread key created before memdesc's own (so that glibc runs its destructor
 *    first) returns the thread's magazines to the depots and its page cache to the
 *    dirty list, inside a section (section 3), and marks the thread so that later
 *    calls from other destructors bypass the per-thread layers. memdesc's destructor
 *    then finds nothing to do. So memory does not leak when threads come and go. If
 *    the drain queued deferred frees, the destructor kicks md_rcu's worker.
 *    The last thread: a process ends when its last thread exits (glibc calls exit(0)
 *    when its count of threads drops to zero, main's pthread_exit included). The only
 *    thread of ours, md_rcu's worker, ends by itself once it has been idle for 20 ms
 *    (md_rcu.c, section 3), so it never keeps a process alive: when it
 *    is the last thread, its own exit ends the process.
 *
 * 5. Statistics
 *    md_malloc_stats_print() writes memdesc_stats() (generated from the MEMDESC_STATS
 *    table) and kmem_cache_stats() of every class in use, formatted by hand into a
 *    stack buffer and written with write(2): no stdio, no malloc. stats=1 prints them
 *    on stderr from the library's destructor. Beside memdesc's estimate of the
 *    resident bytes (every frame handed out or kept dirty), the measured ones by owner
 *    (md_malloc_resident: memdesc_resident_scan's runs of resident frames, by the
 *    page-map word: size classes, large blocks, free frames, the allocator's own
 *    slabs) and each class's: what a program's resident memory is made of, where the
 *    estimate counts a slab's untouched pages and a block's unwritten ones.
 */
#include "md_malloc_impl.h"
#include "memdesc.h"
#include "memdesc_impl.h"
#include "slab.h"
#include "slab_impl.h"

#include <errno.h>
#include <pthread.h>
#include <sys/single_threaded.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <urcu/urcu-bp.h>

struct md_options md__opt = {
#define MD_OPTION_DEFAULT(name, def, max, zero, memdesc, doc) .name = (def),
	MD_OPTIONS(MD_OPTION_DEFAULT)
#undef MD_OPTION_DEFAULT
};

atomic_int md__malloc_state;
int md__malloc_error;
atomic_int md__fork_pending;
__thread struct md_thread md__thread __attribute__((tls_model("initial-exec")));

static pthread_mutex_t md_init_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread bool md_initialising;
static pthread_key_t md_exit_key;
static pthread_mutex_t md_fork_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int md_late_done;
/*
 * The prepare handler found the process single-threaded and outside the allocator:
 * the three handlers do nothing (section 3). Written by prepare and read by the other
 * two, all run by the forking thread, the only one.
 */
static bool md_fork_alone;

/* ---- formatting (no stdio, no malloc) ----------------------------------------- */

void md__buf_flush(struct md_buf *b, int fd)
{
	size_t off = 0;

	while (off < b->n) {
		ssize_t w = write(fd, b->b + off, b->n - off);

		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			break;
		}
		off += (size_t)w;
	}
	b->n = 0;
}

static void md_buf_put(struct md_buf *b, const char *s, size_t len)
{
	while (len) {
		size_t room = sizeof(b->b) - b->n, k = len < room ? len : room;

		memcpy(b->b + b->n, s, k);
		b->n += k;
		s += k;
		len -= k;
		if (b->n == sizeof(b->b))
			md__buf_flush(b, STDERR_FILENO);
	}
}

void md__buf_str(struct md_buf *b, const char *s)
{
	md_buf_put(b, s, strlen(s));
}

void md__buf_u(struct md_buf *b, uint64_t v)
{
	char d[24];
	size_t n = sizeof(d);

	do {
		d[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	md_buf_put(b, d + n, sizeof(d) - n);
}

void md__buf_x(struct md_buf *b, uint64_t v)
{
	char d[16];
	size_t n = sizeof(d);

	do {
		d[--n] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	md_buf_put(b, d + n, sizeof(d) - n);
}

void md__buf_size(struct md_buf *b, uint64_t v)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	uint64_t whole = v, tenths = 0;
	unsigned int u = 0;

	while (whole >= 1024 && u < 4) {
		tenths = (whole % 1024) * 10 / 1024;
		whole /= 1024;
		u++;
	}
	md__buf_u(b, whole);
	if (u) {
		md__buf_str(b, ".");
		md__buf_u(b, tenths);
	}
	md__buf_str(b, " ");
	md__buf_str(b, unit[u]);
}

void md__buf_pad(struct md_buf *b, size_t col)
{
	/* Columns count from the last newline in the buffer. */
	size_t start = b->n;

	while (start > 0 && b->b[start - 1] != '\n')
		start--;
	while (b->n - start < col && b->n < sizeof(b->b))
		b->b[b->n++] = ' ';
}

/* ---- options ------------------------------------------------------------------ */

/* "8G"-style unsigned number; -1 if malformed. */
static int md_parse_num(const char *s, size_t len, size_t *out)
{
	size_t v = 0, i = 0;

	if (len == 0)
		return -1;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (SIZE_MAX - 9) / 10)
			return -1;
		v = v * 10 + (size_t)(s[i] - '0');
	}
	if (i == 0)
		return -1;
	if (i < len) {
		unsigned int shift;

		switch (s[i] | 0x20) {
		case 'k': shift = 10; break;
		case 'm': shift = 20; break;
		case 'g': shift = 30; break;
		case 't': shift = 40; break;
		default: return -1;
		}
		if (i + 1 != len || v > (SIZE_MAX >> shift))
			return -1;
		v <<= shift;
	}
	*out = v;
	return 0;
}

static void md_option_bad(const char *p, size_t len, const char *why)
{
	struct md_buf b = { .n = 0 };

	md__buf_str(&b, "memdesc: MEMDESC_OPTIONS: ");
	md_buf_put(&b, p, len);
	md__buf_str(&b, ": ");
	md__buf_str(&b, why);
	md__buf_str(&b, ", ignored\n");
	md__buf_flush(&b, STDERR_FILENO);
}

/*
 * " name=value" for verbose=1; a 0 that means something else prints as @zero (the
 * option table's: limit=0 is memdesc's own limit, not none).
 */
static void md_option_print(struct md_buf *b, const char *name, size_t v, const char *zero)
{
	md__buf_str(b, " ");
	md__buf_str(b, name);
	md__buf_str(b, "=");
	if (v == 0 && zero)
		md__buf_str(b, zero);
	else
		md__buf_u(b, v);
}

static void md_options_read(void)
{
	const char *p = getenv("MEMDESC_OPTIONS");

	while (p && *p) {
		const char *end = p, *eq, *why = NULL;
		size_t klen, v;

		while (*end && *end != ',')
			end++;
		for (eq = p; eq < end && *eq != '='; eq++)
			;
		klen = (size_t)(eq - p);
#define MD_OPTION_PARSE(name, def, max, zero, memdesc, doc)                              \
		if (klen == sizeof(#name) - 1 && memcmp(p, #name, klen) == 0) {          \
			if (eq == end || md_parse_num(eq + 1, (size_t)(end - eq - 1), &v))     \
				why = "not a number";                                          \
			else if (v > (size_t)(max))                                            \
				why = "out of range";                                          \
			else                                                                   \
				md__opt.name = v;                                              \
			if (why && !(memdesc))                                                 \
				md_option_bad(p, (size_t)(end - p), why);                      \
		}
		MD_OPTIONS(MD_OPTION_PARSE)
#undef MD_OPTION_PARSE
		p = *end ? end + 1 : end;
	}
	if (md__opt.verbose) {
		struct md_buf b = { .n = 0 };

		md__buf_str(&b, "memdesc: options:");
#define MD_OPTION_PRINT(name, def, max, zero, memdesc, doc)                              \
		md_option_print(&b, #name, md__opt.name, zero);
		MD_OPTIONS(MD_OPTION_PRINT)
#undef MD_OPTION_PRINT
		md__buf_str(&b, "\n");
		md__buf_flush(&b, STDERR_FILENO);
	}
}

/* ---- threads ------------------------------------------------------------------ */

static void md_thread_exit(void *arg)
{
	struct md_thread *t = &md__thread;

	(void)arg;
	if (!md__malloc_ready())
		return;
	/* Stay registered while we work: a nested call must not set the key again. */
	urcu_bp_read_lock();
	if (t->depth == 0 && atomic_load_explicit(&md__fork_pending, memory_order_relaxed))
		md__enter_slow();
	t->depth++;
	kmem__thread_exit();
	pages__pcache_drain(true);
	t->depth--;
	urcu_bp_read_unlock();
	/* A later destructor that calls malloc registers again (glibc runs us again). */
	t->registered = false;
	/* What the drain deferred needs a worker; we hold nothing now (md_rcu.c, 3). */
	md_rcu_kick();
}

void md__malloc_thread_register(void)
{
	md__thread.registered = true;
	pthread_setspecific(md_exit_key, (void *)1);
}

/* ---- fork --------------------------------------------------------------------- */

void md__enter_slow(void)
{
	do {
		urcu_bp_read_unlock();
		pthread_mutex_lock(&md_fork_lock);
		pthread_mutex_unlock(&md_fork_lock);
		urcu_bp_read_lock();
	} while (atomic_load_explicit(&md__fork_pending, memory_order_relaxed));
}

static void md_prefork(void)
{
	bool alone;

	md__reclaim_before_fork();
	alone = __libc_single_threaded && md__thread.depth == 0;

	/*
	 * Stored only when it changes: the page is shared with the last child until that
	 * child exits or execs, and a store made the parent take a write fault at every
	 * fork (memdesc-forkbench: 49 of 50 forks).
	 */
	if (md_fork_alone != alone)
		md_fork_alone = alone;
	if (alone)
		return;
	pthread_mutex_lock(&md_fork_lock);
	atomic_store(&md__fork_pending, 1);
	md_rcu_fork_pause();
	/*
	 * One grace period for both flags: no entry point and no deferred free runs now.
	 * A process that never had a second thread (glibc clears __libc_single_threaded at
	 * the first pthread_create, and never sets it again) has no reader to wait for.
	 */
	if (!__libc_single_threaded)
		urcu_bp_synchronize_rcu();
	md_rcu_fork_prepare();
	urcu_bp_before_fork();
}

static void md_postfork_parent(void)
{
	if (md_fork_alone)
		return;
	urcu_bp_after_fork_parent();
	md_rcu_fork_parent();
	atomic_store(&md__fork_pending, 0);
	pthread_mutex_unlock(&md_fork_lock);
}

static void md_postfork_child(void)
{
	if (md_fork_alone)
		return;
	urcu_bp_after_fork_child();
	md_rcu_fork_child();
	atomic_store(&md__fork_pending, 0);
	/* Held by this thread since the prepare handler: release, not re-initialise. */
	pthread_mutex_unlock(&md_fork_lock);
}

/* ---- init --------------------------------------------------------------------- */

static void md_init_failed(int rc)
{
	struct md_buf b = { .n = 0 };

	md__buf_str(&b, "memdesc: malloc could not start (error ");
	md__buf_u(&b, (uint64_t)-rc);
	md__buf_str(&b, "): every allocation fails with ENOMEM\n");
	md__buf_flush(&b, STDERR_FILENO);
}

int md__malloc_init(void)
{
	int rc;

	if (atomic_load_explicit(&md__malloc_state, memory_order_acquire) >= 2)
		return md__malloc_error;
	if (md_initialising)
		return -EAGAIN;
	pthread_mutex_lock(&md_init_lock);
	if (atomic_load_explicit(&md__malloc_state, memory_order_relaxed) < 2) {
		md_initialising = true;
		atomic_store_explicit(&md__malloc_state, 1, memory_order_relaxed);
		md_options_read();
		rc = pthread_key_create(&md_exit_key, md_thread_exit) ? -ENOMEM : 0;
		if (!rc)
			rc = memdesc_init();
		if (!rc)
			rc = md__classes_init();
		md__malloc_error = rc;
		md_initialising = false;
		atomic_store_explicit(&md__malloc_state, rc ? 3 : 2, memory_order_release);
		if (rc && md__opt.verbose)
			md_init_failed(rc);
	}
	pthread_mutex_unlock(&md_init_lock);
	return md__malloc_error;
}

/* What may allocate, once libc is up (section 1). */
static void __attribute__((constructor)) md_malloc_ctor(void)
{
	int expected = 0;

	if (md__malloc_init())
		return;
	if (!atomic_compare_exchange_strong(&md_late_done, &expected, 1))
		return;
	pthread_atfork(md_prefork, md_postfork_parent, md_postfork_child);
}

/* ---- statistics --------------------------------------------------------------- */

static void md_stat_line(struct md_buf *b, int fd, const char *name, size_t v, bool bytes,
			 const char *doc)
{
	md__buf_str(b, "  ");
	md__buf_str(b, name);
	md__buf_pad(b, 22);
	if (bytes)
		md__buf_size(b, v);
	else
		md__buf_u(b, v);
	md__buf_pad(b, 36);
	md__buf_str(b, doc);
	md__buf_str(b, "\n");
	md__buf_flush(b, fd);
}

static void md_collect(struct md_malloc_stats *ms, const struct memdesc_stats *st)
{
	memset(ms, 0, sizeof(*ms));
	for (unsigned int i = 0; i < MD_NR_CLASSES; i++) {
		struct kmem_cache_stats cs;

		kmem_cache_stats(md__class_cache[i], &cs);
		ms->small_in_use += cs.objs_slab_inuse * cs.obj_size;
		ms->small_slab_bytes += (cs.slabs * cs.slab_pages) << MEMDESC_PAGE_SHIFT;
		ms->small_in_depot += cs.objs_depot * cs.obj_size;
	}
	ms->large_in_use = st->pages_folio << MEMDESC_PAGE_SHIFT;
	ms->large_cached = md__large_cached_bytes();
}

/* Resident bytes by owner, and of each class's slabs (md_resident_sum). */
struct md_resident_sum {
	struct md_malloc_resident r;
	size_t cls[MD_NR_CLASSES];
};

/*
 * The size class of a slab whose page-map word carries @tag (its cache's id + 1, slab.c
 * kmem_slab_word), or -1: a cache of the allocator's own, or one without an id.
 */
static int md_class_of_tag(unsigned int tag)
{
	if (!tag)
		return -1;
	for (unsigned int i = 0; i < MD_NR_CLASSES; i++)
		if (md__class_cache[i]->c_id == (int)tag - 1)
			return (int)i;
	return -1;
}

/*
 * memdesc_resident_fn: add a run of resident frames to its owner, from the word alone
 * (struct slab stays unread: another thread may be reusing it).
 */
static void md_resident_add(unsigned long pfn, size_t npages, memdesc_t md, void *arg)
{
	struct md_resident_sum *sum = arg;
	size_t bytes = npages << MEMDESC_PAGE_SHIFT;
	int cls;

	(void)pfn;
	if (!md) {
		sum->r.resident_free += bytes;
	} else if (!memdesc_slab(md)) {
		sum->r.resident_large += bytes;
	} else if ((cls = md_class_of_tag(memdesc_tag(md))) < 0) {
		sum->r.resident_meta += bytes;
	} else {
		sum->r.resident_small += bytes;
		sum->cls[cls] += bytes;
	}
}

/* Inside md__enter(): @sum zeroed, then filled. 0 / negative errno. */
static int md_resident_sum(struct md_resident_sum *sum)
{
	memset(sum, 0, sizeof(*sum));
	return memdesc_resident_scan(md_resident_add, sum);
}

int md_malloc_resident(struct md_malloc_resident *r)
{
	struct md_resident_sum sum;
	int rc;

	memset(r, 0, sizeof(*r));
	if (md__enter())
		return -ENOMEM;
	rc = md_resident_sum(&sum);
	*r = sum.r;
	md__leave();
	return rc;
}

void md_malloc_stats(struct md_malloc_stats *ms)
{
	struct memdesc_stats st;

	memset(ms, 0, sizeof(*ms));
	if (md__enter())
		return;
	memdesc_stats(&st);
	md_collect(ms, &st);
	md__leave();
}

void md_malloc_stats_print(int fd)
{
	struct memdesc_stats st;
	struct md_malloc_stats ms;
	struct md_resident_sum res;
	struct md_buf b = { .n = 0 };
	int rc;

	if (md__enter())
		return;
	memdesc_stats(&st);
	md_collect(&ms, &st);
	rc = md_resident_sum(&res);
	md__buf_str(&b, "memdesc: malloc statistics\n");
#define MD_MSTAT_PRINT(name, doc) md_stat_line(&b, fd, #name, ms.name, true, doc);
	MD_MALLOC_STATS(MD_MSTAT_PRINT)
#undef MD_MSTAT_PRINT
	if (rc) {
		md__buf_str(&b, "  resident_*            not measured: mincore failed (error ");
		md__buf_u(&b, (uint64_t)-rc);
		md__buf_str(&b, ")\n");
		md__buf_flush(&b, fd);
	} else {
#define MD_RSTAT_PRINT(name, doc) md_stat_line(&b, fd, #name, res.r.name, true, doc);
		MD_MALLOC_RESIDENT(MD_RSTAT_PRINT)
#undef MD_RSTAT_PRINT
	}
#define MD_STAT_PRINT(name, doc)                                                        \
	md_stat_line(&b, fd, #name, st.name,                                             \
		     strncmp(#name, "bytes_", 6) == 0 || strncmp(#name, "meta_", 5) == 0, doc);
	MEMDESC_STATS(MD_STAT_PRINT)
#undef MD_STAT_PRINT
	md__buf_str(&b, "  class");
	md__buf_pad(&b, 11);
	md__buf_str(&b, "slabs");
	md__buf_pad(&b, 18);
	md__buf_str(&b, "pages/slab");
	md__buf_pad(&b, 30);
	md__buf_str(&b, "in use");
	md__buf_pad(&b, 42);
	md__buf_str(&b, "in depot");
	md__buf_pad(&b, 54);
	md__buf_str(&b, "resident KiB\n");
	md__buf_flush(&b, fd);
	for (unsigned int i = 0; i < MD_NR_CLASSES; i++) {
		struct kmem_cache_stats cs;

		kmem_cache_stats(md__class_cache[i], &cs);
		if (!cs.slabs)
			continue;
		md__buf_str(&b, "  ");
		md__buf_u(&b, cs.obj_size);
		md__buf_pad(&b, 11);
		md__buf_u(&b, cs.slabs);
		md__buf_pad(&b, 18);
		md__buf_u(&b, cs.slab_pages);
		md__buf_pad(&b, 30);
		md__buf_u(&b, cs.objs_slab_inuse);
		md__buf_pad(&b, 42);
		md__buf_u(&b, cs.objs_depot);
		md__buf_pad(&b, 54);
		if (rc)
			md__buf_str(&b, "-");
		else
			md__buf_u(&b, res.cls[i] >> 10);
		md__buf_str(&b, "\n");
		md__buf_flush(&b, fd);
	}
	md__leave();
}

static void __attribute__((destructor)) md_malloc_dtor(void)
{
	if (md__opt.stats && md__malloc_ready())
		md_malloc_stats_print(STDERR_FILENO);
}
