/*
 * memdesc-soak: a long run of the malloc layer under load (scripts/soak).
 *
 * Worker threads share an array of slots. Each operation takes a random slot with an
 * atomic exchange: an empty slot gets a new block (malloc, calloc or aligned_alloc of a
 * random size across the small classes and large blocks) published with a CAS; a full
 * one is checked (its header and fill pattern) and freed, or realloc'ed and put back.
 * Blocks are mostly freed by another thread than the one that allocated them.
 *
 * The main thread meanwhile:
 *   - every --check-every seconds parks the workers and checks the heap: every live
 *     block's pattern and usable size, md_malloc_verify() (page map, slabs, large-block
 *     cache), and that the live bytes fit in md_malloc_stats()'s in-use counts;
 *   - every --fork-every seconds (by default once, in the middle of a short run) forks
 *     while the workers run: the child checks the parent's blocks, frees and reallocs
 *     them, allocates and frees its own from two threads, runs md_malloc_verify() and
 *     exits with a status the parent checks (a child that hangs is killed: failure);
 *   - samples resident memory (/proc/self/statm) and memdesc's counters for the peak.
 * At the end the workers stop, every block is freed, md_malloc_trim() gives memory
 * back, and resident memory must come back to the baseline taken before the workers
 * started, within the tolerances printed in the summary:
 *   memdesc's resident bytes (memdesc_stats)  <= baseline + 4 MiB
 *   bytes in use (md_malloc_stats)            <= baseline + 1 MiB
 *   process RSS (/proc/self/statm)            <= baseline + 16 MiB + 64 KiB per thread
 * (memdesc keeps slabs of its own metadata and a few empty ones; glibc keeps the
 * stacks of exited threads cached; liburcu keeps its thread records). In an ASan build
 * the process RSS leaves out ASan's shadow memory: on a kernel that gives a read fault
 * a page of its own rather than the shared zero page, every shadow page ASan's checks
 * ever read stays resident (50 MiB of it after this test's 3 s on one such machine,
 * at 29281ca as after), which is the sanitizer's, not the allocator's.
 *
 *   memdesc-soak [--duration S] [--threads N] [--seed S] [--slots N]
 *                [--check-every S] [--fork-every S]
 * Exit status 0 when every check passed, 1 otherwise (with the reason on stderr).
 */
#include "md_malloc.h"
#include "memdesc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)

struct soak_cfg {
	double duration;
	unsigned int threads;
	uint64_t seed;
	size_t slots;
	double check_every;
	double fork_every;
};

static struct soak_cfg cfg = {
	.duration = 10, .threads = 4, .seed = 1, .slots = 4096, .check_every = 5,
	.fork_every = 0,
};

static _Atomic(unsigned char *) *slot;	/* the shared blocks */
static atomic_bool stop;
static atomic_bool pause_req;
static atomic_uint parked;
static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static atomic_int failed;		/* first failure wins the message */

struct soak_counts {
	uint64_t allocs, frees, reallocs, cross_frees, checked;
};

struct soak_worker {
	pthread_t tid;
	unsigned int id;
	struct soak_counts n;
	char pad[64];
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&failed, 1))
		return;
	va_start(ap, fmt);
	fputs("soak: FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- a small PRNG (splitmix64 seeding xorshift64*) ------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t rng_seed(uint64_t seed, uint64_t stream)
{
	uint64_t z = seed + stream * 0x9e3779b97f4a7c15ULL + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 1;
}

static size_t rng_below(uint64_t *s, size_t n)
{
	return (size_t)(rng_next(s) % n);
}

/* Sizes across the classes and large blocks: 60% <= 256, 25% <= 4 KiB, 10% <= 32 KiB
 * (the last classes), 4.5% large up to 1 MiB, 0.5% up to 4 MiB. */
static size_t pick_size(uint64_t *s)
{
	size_t r = rng_below(s, 1000);

	if (r < 600)
		return 16 + rng_below(s, 241);
	if (r < 850)
		return 257 + rng_below(s, 4096 - 256);
	if (r < 950)
		return 4097 + rng_below(s, 32768 - 4096);
	if (r < 995)
		return 32769 + rng_below(s, MIB - 32768);
	return MIB + rng_below(s, 3 * MIB);
}

/* ---- blocks: a header (size, owner, tag) and a pattern ---------------------------- */

/*
 * Word 0: size | owner << 40 (owner: worker id + 1, or 0xffff in a fork child);
 * word 1: tag. Bytes 16..63 and the last 32 bytes, and one byte per page, are a
 * function of the tag and the offset.
 */
static inline unsigned char pat(uint64_t tag, size_t off)
{
	return (unsigned char)((tag >> ((off & 7) * 8)) + off * 31);
}

static void fill(unsigned char *p, size_t size, unsigned int owner, uint64_t tag)
{
	uint64_t *w = (uint64_t *)p;

	w[0] = (uint64_t)size | ((uint64_t)owner << 40);
	w[1] = tag;
	for (size_t i = 16; i < size && i < 64; i++)
		p[i] = pat(tag, i);
	for (size_t i = size > 96 ? size - 32 : 64; i < size; i++)
		p[i] = pat(tag, i);
	for (size_t i = 4096; i < size; i += 4096)
		p[i] = pat(tag, i);
}

/* The block's size, or 0 (reported) when the header or the pattern is broken. */
static size_t check(const unsigned char *p, const char *who)
{
	const uint64_t *w = (const uint64_t *)p;
	size_t size = (size_t)(w[0] & ((1ULL << 40) - 1));
	uint64_t tag = w[1];

	if (size < 16 || size > 4 * MIB || md_malloc_usable_size((void *)p) < size) {
		fail("%s: block %p: bad header (size %zu, usable %zu)", who, (const void *)p,
		     size, md_malloc_usable_size((void *)p));
		return 0;
	}
	for (size_t i = 16; i < size && i < 64; i++)
		if (p[i] != pat(tag, i))
			goto bad;
	for (size_t i = size > 96 ? size - 32 : 64; i < size; i++)
		if (p[i] != pat(tag, i))
			goto bad;
	for (size_t i = 4096; i < size; i += 4096)
		if (p[i] != pat(tag, i))
			goto bad;
	return size;
bad:
	fail("%s: block %p of %zu bytes: pattern broken", who, (const void *)p, size);
	return 0;
}

static unsigned int owner_of(const unsigned char *p)
{
	return (unsigned int)(((const uint64_t *)p)[0] >> 40);
}

/* A new block for @owner: malloc, calloc (checked zero) or aligned_alloc (checked). */
static unsigned char *new_block(uint64_t *s, unsigned int owner, const char *who)
{
	size_t size = pick_size(s), r = rng_below(s, 10);
	unsigned char *p;

	if (r == 0) {
		p = md_calloc(1, size);
		if (p)
			for (size_t i = 0; i < size; i += 509)
				if (p[i]) {
					fail("%s: calloc(%zu) byte %zu is %u", who, size, i, p[i]);
					break;
				}
	} else if (r == 1) {
		size_t align = (size_t)64 << rng_below(s, 7);	/* 64 .. 4096 */

		p = md_aligned_alloc(align, size);
		if (p && ((uintptr_t)p & (align - 1)))
			fail("%s: aligned_alloc(%zu, %zu) = %p", who, align, size, (void *)p);
	} else {
		p = md_malloc(size);
	}
	if (!p) {
		fail("%s: allocation of %zu bytes failed (errno %d)", who, size, errno);
		return NULL;
	}
	fill(p, size, owner, rng_next(s));
	return p;
}

/* realloc @p to a new size: the common prefix must survive; refilled. */
static unsigned char *resize(uint64_t *s, unsigned char *p, unsigned int owner,
			     const char *who)
{
	size_t old = check(p, who), size = pick_size(s);
	uint64_t tag = ((uint64_t *)p)[1];
	unsigned char *q;

	if (!old)
		return p;
	q = md_realloc(p, size);
	if (!q) {
		fail("%s: realloc(%zu -> %zu) failed", who, old, size);
		return p;
	}
	if (((uint64_t *)q)[1] != tag)
		fail("%s: realloc(%zu -> %zu) lost the header", who, old, size);
	for (size_t i = 16; i < old && i < size && i < 64; i++)
		if (q[i] != pat(tag, i)) {
			fail("%s: realloc(%zu -> %zu) lost byte %zu", who, old, size, i);
			break;
		}
	fill(q, size, owner, rng_next(s));
	return q;
}

/* ---- workers ---------------------------------------------------------------------- */

static void park(void)
{
	pthread_mutex_lock(&park_lock);
	atomic_fetch_add(&parked, 1);
	while (atomic_load(&pause_req))
		pthread_cond_wait(&park_cond, &park_lock);
	atomic_fetch_sub(&parked, 1);
	pthread_mutex_unlock(&park_lock);
}

static void *worker(void *arg)
{
	struct soak_worker *wk = arg;
	uint64_t s = rng_seed(cfg.seed, wk->id + 1);
	unsigned int me = wk->id + 1;
	char who[32];

	snprintf(who, sizeof(who), "worker %u", wk->id);
	while (!atomic_load_explicit(&stop, memory_order_relaxed) && !atomic_load(&failed)) {
		size_t i = rng_below(&s, cfg.slots);
		unsigned char *p, *expect = NULL;

		if (atomic_load_explicit(&pause_req, memory_order_acquire))
			park();
		p = atomic_exchange_explicit(&slot[i], NULL, memory_order_acq_rel);
		if (p && rng_below(&s, 8) == 0) {
			p = resize(&s, p, me, who);
			wk->n.reallocs++;
		} else if (p) {
			if (check(p, who) && owner_of(p) != me)
				wk->n.cross_frees++;
			wk->n.checked++;
			md_free(p);
			wk->n.frees++;
			continue;
		} else {
			p = new_block(&s, me, who);
			if (!p)
				break;
			wk->n.allocs++;
		}
		if (!atomic_compare_exchange_strong_explicit(&slot[i], &expect, p,
							     memory_order_acq_rel,
							     memory_order_relaxed)) {
			md_free(p);	/* another thread filled the slot meanwhile */
			wk->n.frees++;
		}
	}
	return NULL;
}

/* ---- memory figures --------------------------------------------------------------- */

struct soak_mem {
	size_t rss;		/* /proc/self/statm resident */
	size_t md_resident;	/* memdesc_stats: bytes_resident */
	size_t in_use;		/* md_malloc_stats: small_in_use + large_in_use */
};

static size_t statm_rss(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

#if defined(__SANITIZE_ADDRESS__)
/* Resident bytes of ASan's shadow (x86-64: mappings in [0x7fff8000, 0x10007fff8000)). */
static size_t asan_shadow_rss(void)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	bool shadow = false;
	size_t kib = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, v;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			shadow = lo >= 0x7fff8000ul && lo < 0x10007fff8000ul;
		else if (shadow && sscanf(line, "Rss: %lu kB", &v) == 1)
			kib += v;
	}
	fclose(f);
	return kib << 10;
}
#else
static size_t asan_shadow_rss(void)
{
	return 0;
}
#endif

static struct soak_mem mem_now(void)
{
	struct memdesc_stats ms;
	struct md_malloc_stats st;
	struct soak_mem m;
	size_t shadow;

	memdesc_stats(&ms);
	md_malloc_stats(&st);
	m.rss = statm_rss();
	shadow = asan_shadow_rss();
	m.rss = m.rss > shadow ? m.rss - shadow : 0;
	m.md_resident = ms.bytes_resident;
	m.in_use = st.small_in_use + st.large_in_use;
	return m;
}

static void mem_max(struct soak_mem *peak, const struct soak_mem *m)
{
	if (m->rss > peak->rss)
		peak->rss = m->rss;
	if (m->md_resident > peak->md_resident)
		peak->md_resident = m->md_resident;
	if (m->in_use > peak->in_use)
		peak->in_use = m->in_use;
}

/* ---- the periodic check ----------------------------------------------------------- */

static void pause_workers(void)
{
	atomic_store(&pause_req, true);
	while (atomic_load(&parked) < cfg.threads && !atomic_load(&failed))
		usleep(200);
}

static void resume_workers(void)
{
	pthread_mutex_lock(&park_lock);
	atomic_store(&pause_req, false);
	pthread_cond_broadcast(&park_cond);
	pthread_mutex_unlock(&park_lock);
}

/* With the workers parked: every block, the heap's invariants, the counts. */
static void heap_check(size_t *live_blocks)
{
	struct md_malloc_stats st;
	size_t small = 0, large = 0, n = 0;

	for (size_t i = 0; i < cfg.slots; i++) {
		unsigned char *p = atomic_load(&slot[i]);
		size_t usable;

		if (!p)
			continue;
		if (!check(p, "check"))
			return;
		usable = md_malloc_usable_size(p);
		if (usable <= MD_SMALL_MAX)
			small += usable;
		else
			large += usable;
		n++;
	}
	if (md_malloc_verify() != 0) {
		fail("md_malloc_verify() found a broken invariant (above)");
		return;
	}
	md_malloc_stats(&st);
	if (small > st.small_in_use || large > st.large_in_use)
		fail("live blocks (%zu small bytes, %zu large) exceed the in-use counts "
		     "(%zu, %zu)", small, large, st.small_in_use, st.large_in_use);
	*live_blocks = n;
}

/* ---- fork --------------------------------------------------------------------------- */

static void *child_thread(void *arg)
{
	uint64_t s = rng_seed(cfg.seed, 1000 + (uintptr_t)arg);
	unsigned char *p[64] = { 0 };

	for (int r = 0; r < 2000; r++) {
		size_t i = rng_below(&s, 64);

		if (p[i]) {
			if (!check(p[i], "child thread"))
				return (void *)1;
			md_free(p[i]);
			p[i] = NULL;
		} else if (!(p[i] = new_block(&s, 0xffff, "child thread"))) {
			return (void *)1;
		}
	}
	for (int i = 0; i < 64; i++)
		md_free(p[i]);
	return NULL;
}

/* The child's side: exit status 0 (all good) or the number of the failed step. */
static int child_run(void)
{
	uint64_t s = rng_seed(cfg.seed, 999);
	pthread_t t[2];
	size_t seen = 0;

	for (size_t i = 0; i < cfg.slots; i++) {
		unsigned char *p = atomic_load(&slot[i]);

		if (!p)
			continue;
		if (!check(p, "fork child"))
			return 10;
		seen++;
		if (i & 1) {
			md_free(p);
		} else {
			p = resize(&s, p, 0xffff, "fork child");
			if (atomic_load(&failed))
				return 11;
			md_free(p);
		}
		atomic_store(&slot[i], NULL);
	}
	for (uintptr_t k = 0; k < 2; k++)
		if (pthread_create(&t[k], NULL, child_thread, (void *)k))
			return 12;
	for (int k = 0; k < 2; k++) {
		void *rv;

		pthread_join(t[k], &rv);
		if (rv)
			return 13;
	}
	if (md_malloc_verify() != 0)
		return 14;
	return atomic_load(&failed) ? 15 : 0;
}

/* Fork now, the workers running; wait for the child (killed after 120 s). */
static void do_fork(unsigned int nr)
{
	double t0 = now();
	int status = 0;
	pid_t pid = fork();

	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return;
	}
	if (pid == 0)
		_exit(child_run());
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now() - t0 > 120) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail("fork %u: the child hung (killed after 120 s)", nr);
			return;
		}
		usleep(10000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("fork %u: child failed (status %#x: exit %d, signal %d)", nr, status,
		     WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		     WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* ---- main ------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: memdesc-soak [--duration S] [--threads N] [--seed S] "
		"[--slots N] [--check-every S] [--fork-every S]\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (strcmp(a, "--duration") == 0)
			cfg.duration = atof(v);
		else if (strcmp(a, "--threads") == 0)
			cfg.threads = (unsigned int)strtoul(v, NULL, 0);
		else if (strcmp(a, "--seed") == 0)
			cfg.seed = strtoull(v, NULL, 0);
		else if (strcmp(a, "--slots") == 0)
			cfg.slots = strtoull(v, NULL, 0);
		else if (strcmp(a, "--check-every") == 0)
			cfg.check_every = atof(v);
		else if (strcmp(a, "--fork-every") == 0)
			cfg.fork_every = atof(v);
		else
			usage();
		i++;
	}
	if (cfg.duration <= 0 || cfg.threads == 0 || cfg.threads > 256 || cfg.slots < 16 ||
	    cfg.check_every <= 0)
		usage();
	if (cfg.fork_every <= 0)	/* default: in the middle; every 30 s in long runs */
		cfg.fork_every = cfg.duration <= 60 ? cfg.duration / 2 : 30;
}

int main(int argc, char **argv)
{
	struct soak_worker *wk;
	struct soak_mem base, peak, end;
	struct soak_counts tot = { 0 };
	double t0, next_check, next_fork, next_report;
	unsigned int forks = 0, checks = 0;
	size_t live = 0, rss_tol;

	parse(argc, argv);
	slot = calloc(cfg.slots, sizeof(*slot));
	wk = calloc(cfg.threads, sizeof(*wk));
	if (!slot || !wk)
		return 1;
	/* Start the allocator, then take the baseline with nothing allocated. */
	md_free(md_malloc(1));
	md_malloc_trim(0);
	base = mem_now();
	peak = base;
	printf("soak: seed %" PRIu64 ", %u threads, %zu slots, %.0f s, check every %.1f s, "
	       "fork every %.1f s\n", cfg.seed, cfg.threads, cfg.slots, cfg.duration,
	       cfg.check_every, cfg.fork_every);
	printf("soak: baseline rss %.1f MiB, memdesc resident %.1f MiB, in use %.2f MiB\n",
	       (double)base.rss / MIB, (double)base.md_resident / MIB,
	       (double)base.in_use / MIB);
	fflush(stdout);

	for (unsigned int i = 0; i < cfg.threads; i++) {
		wk[i].id = i;
		if (pthread_create(&wk[i].tid, NULL, worker, &wk[i])) {
			fprintf(stderr, "soak: pthread_create failed\n");
			return 1;
		}
	}
	t0 = now();
	next_check = t0 + cfg.check_every;
	next_fork = t0 + cfg.fork_every;
	next_report = t0 + 60;
	while (!atomic_load(&failed)) {
		double t = now();
		struct soak_mem m = mem_now();

		mem_max(&peak, &m);
		if (t - t0 >= cfg.duration)
			break;
		if (t >= next_fork && t - t0 < cfg.duration) {
			do_fork(++forks);
			next_fork += cfg.fork_every;
		}
		if (t >= next_check) {
			pause_workers();
			heap_check(&live);
			resume_workers();
			checks++;
			next_check = now() + cfg.check_every;
		}
		if (t >= next_report) {
			printf("soak: %.0f s: %u checks, %u forks, %zu live blocks, rss %.1f MiB "
			       "(peak %.1f)\n", t - t0, checks, forks, live, (double)m.rss / MIB,
			       (double)peak.rss / MIB);
			fflush(stdout);
			next_report += 60;
		}
		usleep(100000);
	}
	atomic_store(&stop, true);
	resume_workers();
	for (unsigned int i = 0; i < cfg.threads; i++) {
		pthread_join(wk[i].tid, NULL);
		tot.allocs += wk[i].n.allocs;
		tot.frees += wk[i].n.frees;
		tot.reallocs += wk[i].n.reallocs;
		tot.cross_frees += wk[i].n.cross_frees;
		tot.checked += wk[i].n.checked;
	}
	/* The last check, then everything goes back. */
	heap_check(&live);
	checks++;
	for (size_t i = 0; i < cfg.slots; i++) {
		unsigned char *p = atomic_exchange(&slot[i], NULL);

		if (p) {
			check(p, "end");
			md_free(p);
			tot.frees++;
		}
	}
	md_malloc_trim(0);
	if (md_malloc_verify() != 0)
		fail("md_malloc_verify() after freeing everything");
	end = mem_now();
	rss_tol = 16 * MIB + (size_t)cfg.threads * 64 * 1024;
	printf("soak: %.1f s, %" PRIu64 " operations (%" PRIu64 " allocs, %" PRIu64
	       " frees, %" PRIu64 " reallocs; %" PRIu64 " frees of another thread's block), "
	       "%u forks, %u heap checks\n", now() - t0,
	       tot.allocs + tot.frees + tot.reallocs, tot.allocs, tot.frees, tot.reallocs,
	       tot.cross_frees, forks, checks);
	printf("soak: rss MiB: start %.1f, peak %.1f, end %.1f (tolerance +%.1f)\n",
	       (double)base.rss / MIB, (double)peak.rss / MIB, (double)end.rss / MIB,
	       (double)rss_tol / MIB);
	printf("soak: memdesc resident MiB: start %.1f, peak %.1f, end %.1f (tolerance +4)\n",
	       (double)base.md_resident / MIB, (double)peak.md_resident / MIB,
	       (double)end.md_resident / MIB);
	printf("soak: in use MiB: start %.2f, peak %.1f, end %.2f (tolerance +1)\n",
	       (double)base.in_use / MIB, (double)peak.in_use / MIB,
	       (double)end.in_use / MIB);
	if (end.md_resident > base.md_resident + 4 * MIB)
		fail("memdesc's resident bytes did not come back: %zu -> %zu",
		     base.md_resident, end.md_resident);
	if (end.in_use > base.in_use + MIB)
		fail("bytes in use did not come back: %zu -> %zu", base.in_use, end.in_use);
	if (end.rss > base.rss + rss_tol)
		fail("resident memory did not come back: %zu -> %zu bytes", base.rss, end.rss);
	if (forks == 0)
		fail("no fork happened (duration %.1f s, fork every %.1f s)", cfg.duration,
		     cfg.fork_every);
	free(wk);
	free(slot);
	if (atomic_load(&failed))
		return 1;
	printf("soak: PASSED\n");
	return 0;
}
