/*
 * test_malloc_fork: fork() from a multi-threaded parent whose threads allocate and
 * free without pause. The child (whose stderr is the parent's) must not hang on a lock
 * a vanished thread held: it allocates and frees, frees and reallocs blocks the parent
 * allocated (their contents checked), starts a thread that allocates (not under ASan:
 * see child_main), and forks again.
 * A child that hangs is killed after a timeout and fails the test. Afterwards the
 * parent's memory goes back to its starting size.
 * Deferred frees (memdesc/md_rcu.c) across fork: callbacks queued in the parent run in
 * the child (on a worker started there, lazily) and, separately, in the parent; a
 * stress of threads queueing callbacks and churning the heap while the main thread
 * forks, each child queueing and waiting for its own.
 * A process that never started a thread: its fork handlers do nothing (md_env.c,
 * section 3), and its children must still find every lock free and the heap whole.
 * A reclaim request pending at fork runs in the parent, not in the child.
 */
#include "mdt.h"
#include "md_malloc.h"
#include "md_rcu.h"
#include "memdesc.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <urcu-bp.h>

#define NTHREADS 4
#define NBLOCKS 256

static atomic_int stop;

/* Blocks the parent owns across forks: size, pattern. */
static unsigned char *blk[NBLOCKS];
static size_t blk_size[NBLOCKS];

static size_t pick_size(struct mdt_rng *r)
{
	switch (mdt_rng_below(r, 8)) {
	case 0:
		return 32768 + mdt_rng_below(r, 300000);
	case 1:
		return mdt_rng_below(r, 32768);
	default:
		return mdt_rng_below(r, 512);
	}
}

/*
 * test_fork_threads bumps fork_round before each fork; a churning thread does at most
 * CHURN_OPS operations per round, then yields until the next. In a plain run a round's
 * operations overlap the fork that follows; under valgrind, whose scheduler can leave
 * the main thread waiting for minutes while these threads run, the work per fork stays
 * the same, and so does the heap's peak, which the end of the test measures.
 */
#define CHURN_OPS 4096
static atomic_ulong fork_round;

static void *churn(void *arg)
{
	struct mdt_rng r;
	void *slot[64] = { 0 };
	unsigned long round = 0, ops = 0;

	mdt_rng_init(&r, (uint64_t)(uintptr_t)arg);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned long now = atomic_load_explicit(&fork_round, memory_order_acquire);
		unsigned i;

		if (now != round) {
			round = now;
			ops = 0;
		} else if (ops >= CHURN_OPS) {
			sched_yield();
			continue;
		}
		ops++;
		i = (unsigned)mdt_rng_below(&r, 64);

		if (slot[i]) {
			md_free(slot[i]);
			slot[i] = NULL;
		} else {
			slot[i] = md_malloc(pick_size(&r));
			if (slot[i])
				memset(slot[i], (int)i, 16);
		}
	}
	for (int i = 0; i < 64; i++)
		md_free(slot[i]);
	return NULL;
}

static void *child_thread(void *arg)
{
	void *p[100];

	(void)arg;
	for (int i = 0; i < 100; i++)
		p[i] = md_malloc((size_t)i * 100 + 1);
	for (int i = 0; i < 100; i++)
		md_free(p[i]);
	return NULL;
}

static int check_block(int i)
{
	for (size_t k = 0; k < blk_size[i]; k += 97)
		if (blk[i][k] != (unsigned char)(i + k))
			return 0;
	return 1;
}

/* The child's work; exit code 0 on success. */
static int child_main(int depth)
{
	void *mine[200];
	pthread_t t;

	for (int i = 0; i < 200; i++) {
		mine[i] = md_malloc((size_t)i * 37 + (i % 7 == 0 ? 100000 : 0));
		if (!mine[i])
			return 10;
		memset(mine[i], 0x33, 16);
	}
	for (int i = 0; i < NBLOCKS; i++) {
		if (!check_block(i))
			return 11;
		if (i % 3 == 0) {
			blk[i] = md_realloc(blk[i], blk_size[i] * 2 + 10);
			if (!blk[i] || !check_block(i))
				return 12;
		}
		md_free(blk[i]);
	}
#if !defined(__SANITIZE_ADDRESS__)
	/*
	 * Not under ASan: its allocator has no fork handlers, and the calloc of a thread
	 * started here can wait for ever on a lock a parent thread held at the fork
	 * (seen: 2 loaded runs in 20). The other children of these tests do the same.
	 */
	if (pthread_create(&t, NULL, child_thread, NULL) || pthread_join(t, NULL))
		return 13;
#else
	(void)t;
	(void)child_thread;
#endif
	for (int i = 0; i < 200; i++)
		md_free(mine[i]);
	if (depth == 0) {
		/* Fork again, from the child (the thread it started has exited). */
		pid_t pid = fork();
		int status;

		if (pid == 0)
			_exit(md_malloc(100) ? 0 : 14);
		if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			return 15;
	}
	return 0;
}

/* Wait for @pid at most @secs seconds; kill it and return -1 if it hangs. */
static int wait_child(pid_t pid, int secs)
{
	int status;
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	for (int i = 0; i < secs * 200; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* Fork number @f: the child exits with @child()'s code; the test fails if it fails or hangs. */
static void run_child(size_t f, int (*child)(void))
{
	pid_t pid = fork();
	int rc;

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child());
	rc = wait_child(pid, 30);
	ck_assert_msg(rc == 0, "fork %zu: child %s (%d)", f,
		      rc < 0 ? "hung (killed)" : "failed", rc);
}

/* The child of test_fork_threads. */
static int threads_child(void)
{
	return child_main(0);
}

/*
 * Memory in use after a trim: the bytes of size-class slabs and large blocks (must come
 * back exactly), and *@meta, all pages mapped to slabs (memdesc's own caches included:
 * must not grow with the number of threads).
 */
static size_t pages_in_use(size_t *meta)
{
	struct md_malloc_stats ms;
	struct memdesc_stats st;

	md_malloc_trim(0);
	md_rcu_barrier();
	md_malloc_trim(0);
	md_malloc_stats(&ms);
	memdesc_stats(&st);
	if (getenv("MDT_VERBOSE"))
		md_malloc_stats_print(2);
	*meta = st.pages_slab;
	return (ms.small_slab_bytes + ms.large_in_use) >> 12;
}

/* Fill blk[] with NBLOCKS blocks of random sizes and their patterns. */
static void fill_blocks(struct mdt_rng *r)
{
	for (int i = 0; i < NBLOCKS; i++) {
		blk_size[i] = pick_size(r) + 1;
		blk[i] = md_malloc(blk_size[i]);
		ck_assert_ptr_nonnull(blk[i]);
		for (size_t k = 0; k < blk_size[i]; k += 97)
			blk[i][k] = (unsigned char)(i + k);
	}
}

/* Check blk[]'s patterns and free the blocks. */
static void check_free_blocks(void)
{
	for (int i = 0; i < NBLOCKS; i++) {
		ck_assert(check_block(i));
		md_free(blk[i]);
	}
}

START_TEST(test_fork_threads)
{
	pthread_t th[NTHREADS];
	struct mdt_rng r;
	size_t forks = mdt_scaled(30), start, end, meta0, meta1;

	mdt_rng_init(&r, mdt_seed(42));
	start = pages_in_use(&meta0);
	for (long i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, churn, (void *)(i + 1)), 0);
	for (size_t f = 0; f < forks; f++) {
		atomic_fetch_add_explicit(&fork_round, 1, memory_order_release);
		fill_blocks(&r);
		run_child(f, threads_child);
		check_free_blocks();
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	end = pages_in_use(&meta1);
	ck_assert_msg(end == start, "malloc pages in use: %zu at start, %zu at the end", start,
		      end);
	ck_assert_msg(meta1 <= meta0 + 256, "slab pages: %zu at start, %zu at the end", meta0,
		      meta1);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/*
 * The child of test_fork_single: child_main's work (which starts a thread, and forks
 * again from the then multi-threaded child), then the whole of memdesc checked, which
 * takes every lock: one the skipped handlers left held would hang it (killed: failure).
 */
static int single_child(void)
{
	int rc = child_main(0);

	if (rc == 0 && memdesc_verify() != 0)
		rc = 16;
	return rc;
}

/*
 * Forks of a process that never started a thread, which allocates between them (every
 * class and large blocks: the locks and lists the skipped handlers would have
 * released). It frees nothing until the end, so that what a free may queue (a deferred
 * free of a page-map node, a folio slab) plays no part; such frees now run in the
 * freeing thread of a single-threaded process and start no thread (md_rcu.c, section
 * 3), which would have sent every later fork down the handlers' full path, the one
 * test_fork_threads covers.
 */
#define SINGLE_KEEP 64

/* The blocks test_fork_single keeps: global (volatile: written only, it would go), so
 * that a child, checked for leaks at its exit under valgrind, still reaches them. */
static void **volatile single_keep;

START_TEST(test_fork_single)
{
	struct mdt_rng r;
	size_t forks = mdt_scaled(24);
	void **keep = single_keep = calloc(forks * SINGLE_KEEP, sizeof(*keep));

	ck_assert_ptr_nonnull(keep);
	ck_assert_msg(__libc_single_threaded, "the test process has a second thread already");
	mdt_rng_init(&r, mdt_seed(44));
	fill_blocks(&r);
	for (size_t f = 0; f < forks; f++) {
		for (size_t i = f * SINGLE_KEEP; i < (f + 1) * SINGLE_KEEP; i++) {
			keep[i] = md_malloc(i % 16 ? mdt_rng_below(&r, 4096) : 40000 + i);
			ck_assert_ptr_nonnull(keep[i]);
		}
		ck_assert_msg(__libc_single_threaded, "fork %zu: the parent has a thread", f);
		run_child(f, single_child);
		for (int i = 0; i < NBLOCKS; i++)
			ck_assert(check_block(i));
	}
	check_free_blocks();
	for (size_t i = 0; i < forks * SINGLE_KEEP; i++)
		md_free(keep[i]);
	free(keep);
	single_keep = NULL;
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/* ---- deferred frees across fork ------------------------------------------------- */

struct item {
	struct rcu_head head;
	atomic_int ran;
};

static void item_run(struct rcu_head *h)
{
	atomic_fetch_add(&caa_container_of(h, struct item, head)->ran, 1);
}

#define NDEFER 32
static struct item deferred[NDEFER];

/* The child of test_fork_deferred: 0 on success. */
static int deferred_child(unsigned long spawns_before)
{
	struct md_rcu_stats st;
	struct memdesc_stats ms;
	void *p[64];

	md_rcu_stats(&st);
	if (st.worker || st.spawns != spawns_before)
		return 30;	/* fork itself starts no thread */
	for (int i = 0; i < NDEFER; i++)
		if (atomic_load(&deferred[i].ran))
			return 31;
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 64; i++)
			if (!(p[i] = md_malloc((size_t)(i % 8 ? 48 : 200000))))
				return 32;
		for (int i = 0; i < 64; i++)
			md_free(p[i]);
	}
	md_malloc_trim(0);	/* runs the deferred frees (a barrier) */
	for (int i = 0; i < NDEFER; i++)
		if (atomic_load(&deferred[i].ran) != 1)
			return 33;
	/* Deferred frees may queue more (a slab of struct slab emptied): run those too. */
	for (int i = 0; i < 10 && md_rcu_pending(); i++)
		md_rcu_barrier();
	md_rcu_stats(&st);
	if (st.done != st.queued)
		return 34;
	/* Run by this child itself when it has one thread (md_rcu.c, section 3). */
	if (__libc_single_threaded ? st.spawns != spawns_before : st.spawns <= spawns_before)
		return 36;
	memdesc_stats(&ms);
	return ms.pages_rcu_pending == 0 ? 0 : 35;
}

START_TEST(test_fork_deferred)
{
	struct md_rcu_stats st;
	pid_t pid;
	int rc;

	md_free(md_malloc(100));
	ck_assert_int_eq(md_rcu_barrier(), 0);
	/*
	 * No worker alive at the fork: in a parent whose worker is being born or ending,
	 * the sanitizers' allocators may hold a lock that a thread the child starts then
	 * waits for (they have no fork handlers). A parent of one thread has none (it runs
	 * its deferred frees itself, md_rcu.c section 3); one that had threads may.
	 */
	for (int i = 0; i < 30000; i++) {
		struct timespec ts = { 0, 1000 * 1000 };

		md_rcu_stats(&st);
		if (!st.worker)
			break;
		nanosleep(&ts, NULL);
	}
	ck_assert_msg(!st.worker, "the idle worker did not end");
	/* Queued from outside any md_ call: nothing kicks a worker before the fork. */
	for (int i = 0; i < NDEFER; i++)
		md_rcu_call(&deferred[i].head, item_run);
	md_rcu_stats(&st);
	pid = fork();
	if (pid == 0)	/* no Check call in the child (test_md_rcu.c, test_fork_stress) */
		_exit(deferred_child(st.spawns));
	ck_assert_int_ge(pid, 0);
	rc = wait_child(pid, 30);
	ck_assert_msg(rc == 0, "child %s (%d)", rc < 0 ? "hung (killed)" : "failed", rc);
	/* The parent's copies are its own: not run by the child, run once here. */
	for (int i = 0; i < NDEFER; i++)
		ck_assert_int_eq(atomic_load(&deferred[i].ran), 0);
	ck_assert_int_eq(md_rcu_barrier(), 0);
	for (int i = 0; i < NDEFER; i++)
		ck_assert_int_eq(atomic_load(&deferred[i].ran), 1);
}
END_TEST

#define NPRODUCERS 3

struct producer {
	struct item *it;
	size_t n;
	uint64_t seed;
	/* Its live blocks: here, on the forking thread's stack, not on the producer's,
	 * so that a child's leak check (valgrind) still finds them. */
	void *slot[32];
};

static void *producer(void *arg)
{
	struct producer *p = arg;
	struct mdt_rng r;
	void **slot = p->slot;

	mdt_rng_init(&r, p->seed);
	for (size_t i = 0; i < p->n; i++) {
		unsigned k = (unsigned)mdt_rng_below(&r, 32);

		md_rcu_call(&p->it[i].head, item_run);
		md_free(slot[k]);	/* a free's return kicks the worker */
		slot[k] = md_malloc(pick_size(&r));
	}
	for (int k = 0; k < 32; k++)
		md_free(slot[k]);
	return NULL;
}

/*
 * A child of the stress: the queue it inherited is consistent and has no runner; then
 * allocate, queue, wait for its own callbacks. Under ASan it stops after the first
 * checks: a thread started in the child (md_rcu's worker, through any md_ call once the
 * queue is not empty) could wait for ever on a lock of ASan's allocator that a parent
 * thread held at the fork (ASan has no fork handlers).
 */
static int stress_child(void)
{
	struct md_rcu_stats st;
	struct item own[8];
	void *p[16];

	md_rcu_stats(&st);
	if (st.worker || st.taken != st.done || st.queued < st.done ||
	    md_rcu_pending() != st.queued - st.done)
		return 43;
#if defined(__SANITIZE_ADDRESS__)
	return 0;
#endif
	for (int i = 0; i < 8; i++) {
		atomic_store(&own[i].ran, 0);
		md_rcu_call(&own[i].head, item_run);
	}
	for (int i = 0; i < 16; i++)
		if (!(p[i] = md_malloc((size_t)i * 1000 + 1)))
			return 40;
	for (int i = 0; i < 16; i++)
		md_free(p[i]);
	if (md_rcu_barrier() != 0)
		return 41;
	for (int i = 0; i < 8; i++)
		if (atomic_load(&own[i].ran) != 1)
			return 42;
	return 0;
}

START_TEST(test_fork_deferred_stress)
{
	struct producer p[NPRODUCERS];
	pthread_t t[NPRODUCERS];
	size_t forks = mdt_scaled(40), n = mdt_scaled(20000);

	for (int k = 0; k < NPRODUCERS; k++) {
		p[k].n = n;
		p[k].seed = mdt_seed(7) + (uint64_t)k;
		memset(p[k].slot, 0, sizeof(p[k].slot));
		p[k].it = md_calloc(n, sizeof(struct item));
		ck_assert_ptr_nonnull(p[k].it);
		ck_assert_int_eq(pthread_create(&t[k], NULL, producer, &p[k]), 0);
	}
	for (size_t f = 0; f < forks; f++)
		run_child(f, stress_child);
	for (int k = 0; k < NPRODUCERS; k++)
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
	ck_assert_int_eq(md_rcu_barrier(), 0);
	for (int k = 0; k < NPRODUCERS; k++) {
		for (size_t i = 0; i < n; i++)
			ck_assert_int_eq(atomic_load(&p[k].it[i].ran), 1);
		md_free(p[k].it);
	}
	/*
	 * The frees above, and the worker's own when it ends (its page cache), may queue
	 * more (page-map nodes of a chunk given back, a slab of struct slab emptied): they
	 * run too.
	 */
	for (int i = 0; i < 10 && md_rcu_pending(); i++)
		ck_assert_int_eq(md_rcu_barrier(), 0);
	ck_assert_uint_eq(md_rcu_pending(), 0);
}
END_TEST

/*
 * A reclaim request pending at fork() runs in the parent (md_env.c's prepare handler),
 * not in the child: the child would collect it at its first allocation and reap caches
 * it shares copy-on-write with the parent. The request here is the one fresh pages
 * make (MEMDESC_RECLAIM_GREW): a large block taken from the OS while the large-block
 * cache holds a freed one, which that reclaim gives back to the page allocator.
 */
static void *volatile reclaim_big;	/* global: reachable at the child's exit (valgrind) */

START_TEST(test_fork_reclaim_in_parent)
{
	struct md_malloc_stats st;
	void *cached;
	pid_t pid;
	int status;

	md_malloc_trim(0);	/* nothing cached, no free pages: the next range is fresh */
	cached = md_malloc((size_t)1 << 20);
	ck_assert_ptr_nonnull(cached);
	md_free(cached);
	md_malloc_stats(&st);
	ck_assert_uint_gt(st.large_cached, 0);
	reclaim_big = md_malloc((size_t)8 << 20);	/* fresh pages: the request is pending */
	ck_assert_ptr_nonnull(reclaim_big);
	ck_assert_int_eq(memdesc_reclaim_pending(), 1);
	pid = fork();
	if (pid == 0)	/* no Check call in the child (test_md_rcu.c, test_fork_stress) */
		_exit(memdesc_reclaim_pending() ? 40 : 0);
	ck_assert_int_ge(pid, 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 40,
		      "the child inherited the pending reclaim");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	ck_assert_int_eq(memdesc_reclaim_pending(), 0);
	md_malloc_stats(&st);
	ck_assert_uint_eq(st.large_cached, 0);	/* the reclaim ran, in the parent */
	md_free(reclaim_big);
	reclaim_big = NULL;
	md_malloc_trim(0);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("malloc_fork");
	TCase *tc = tcase_create("fork");

	tcase_set_timeout(tc, 110);
	tcase_add_test(tc, test_fork_threads);
	tcase_add_test(tc, test_fork_single);
	tcase_add_test(tc, test_fork_deferred);
	tcase_add_test(tc, test_fork_deferred_stress);
	tcase_add_test(tc, test_fork_reclaim_in_parent);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
