/*
 * test_malloc_threads: thread churn. 10,000 short-lived threads (scaled), at most 16
 * at a time, each allocating blocks of every kind, freeing half and leaving the other
 * half for a later thread to free (cross-thread frees of blocks whose owner is gone).
 * Thread exit must hand each thread's magazines and page cache back: after the
 * threads and a trim, the pages in use are back to their starting count. Runs with no
 * thread ever registered anywhere. And the large-block cache across a program's first
 * pthread_create: used without locks while the process has one thread, with them after
 * (md_malloc.c, md_lc_lock), its counts stay exact.
 */
#include "mdt.h"
#include "md_malloc.h"
#include "md_rcu.h"
#include "memdesc.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <unistd.h>
#include <urcu-bp.h>

#define PER_THREAD 64
#define WAVE 16

static _Atomic(unsigned char *) mailbox[WAVE][PER_THREAD / 2];

static void *worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	unsigned slot = (unsigned)(id % WAVE);
	unsigned char *p[PER_THREAD];

	for (unsigned i = 0; i < PER_THREAD; i++) {
		size_t n = (i % 16 == 0) ? 40000 + i * 1000 : (i * 131 + id) % 3000;

		p[i] = md_malloc(n);
		if (!p[i])
			return (void *)1;
		memset(p[i], (int)(id & 0xff), n < 64 ? n : 64);
		p[i][0] = (unsigned char)id;
	}
	for (unsigned i = 0; i < PER_THREAD / 2; i++)
		md_free(p[i]);
	/* The other half goes to the mailbox; whatever a previous thread left is freed. */
	for (unsigned i = 0; i < PER_THREAD / 2; i++) {
		unsigned char *old = atomic_exchange(&mailbox[slot][i], p[PER_THREAD / 2 + i]);

		md_free(old);
	}
	return NULL;
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

START_TEST(test_thread_churn)
{
	size_t n = mdt_scaled(10000), start, end, meta0, meta1, mmid, mid;
	pthread_t th[WAVE];

	start = pages_in_use(&meta0);
	mid = start;
	mmid = meta0;
	for (size_t done = 0; done < n; done += WAVE) {
		for (size_t i = 0; i < WAVE; i++)
			ck_assert_int_eq(pthread_create(&th[i], NULL, worker,
							(void *)(uintptr_t)(done + i)), 0);
		for (size_t i = 0; i < WAVE; i++) {
			void *ret;

			ck_assert_int_eq(pthread_join(th[i], &ret), 0);
			ck_assert_ptr_null(ret);
		}
		if (done / WAVE == n / WAVE / 2)
			mid = pages_in_use(&mmid);
	}
	for (unsigned s = 0; s < WAVE; s++)
		for (unsigned i = 0; i < PER_THREAD / 2; i++)
			md_free(atomic_exchange(&mailbox[s][i], NULL));
	end = pages_in_use(&meta1);
	ck_assert_msg(end == start, "malloc pages in use: %zu at start, %zu after %zu threads",
		      start, end, n);
	/* Metadata does not grow with the number of threads that came and went. */
	ck_assert_msg(meta1 <= mmid + 64 && meta1 <= meta0 + 256,
		      "slab pages: %zu at start, %zu halfway, %zu at the end", meta0, mmid, meta1);
	(void)mid;
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/* Threads that exit while holding nothing but magazines, again and again. */
static void *tiny(void *arg)
{
	void *p = md_malloc((size_t)(uintptr_t)arg);

	md_free(p);
	return NULL;
}

START_TEST(test_exit_returns_magazines)
{
	size_t meta0, meta1, start = pages_in_use(&meta0), end;

	for (size_t i = 0; i < mdt_scaled(2000); i++) {
		pthread_t t;

		ck_assert_int_eq(pthread_create(&t, NULL, tiny, (void *)(uintptr_t)(i % 3000)), 0);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
	}
	end = pages_in_use(&meta1);
	ck_assert_msg(end == start, "malloc pages: %zu -> %zu", start, end);
	ck_assert_msg(meta1 <= meta0 + 64, "slab pages: %zu -> %zu", meta0, meta1);
}
END_TEST

/*
 * A process whose last thread calls pthread_exit (or returns from its start routine)
 * ends with status 0: the allocator's only thread, md_rcu's worker, ends by itself when
 * idle (md_env.c, section 4). Each case runs in a fresh process; alarm() turns a hang
 * into a failure.
 */
static void *join_main_then_exit(void *arg)
{
	if (pthread_join(*(pthread_t *)arg, NULL) != 0)
		_exit(3);
	md_free(md_malloc(200));	/* the last thread: main is gone */
	return NULL;
}

static void main_exits_first(void)
{
	static pthread_t main_thread;
	pthread_t t;

	main_thread = pthread_self();
	md_free(md_malloc(100));
	if (pthread_create(&t, NULL, join_main_then_exit, &main_thread) != 0)
		_exit(2);
	pthread_exit(NULL);
}

static void *fork_from_thread(void *arg)
{
	int status;
	pid_t pid = fork();

	(void)arg;
	if (pid == 0) {
		md_free(md_malloc(50));	/* the child's only thread, then pthread_exit */
		pthread_exit(NULL);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return (void *)1;
	return (void *)(uintptr_t)(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 2);
}

static void forked_child_thread_exits(void)
{
	pthread_t t;
	void *ret;

	md_free(md_malloc(100));
	if (pthread_create(&t, NULL, fork_from_thread, NULL) != 0 || pthread_join(t, &ret) != 0)
		_exit(2);
	_exit(ret ? 4 : 0);
}

/*
 * Large blocks of 40 KiB to 1 MiB, eight live in @live, each round replacing one and
 * freeing the one it replaced (the large-block cache takes it, the next malloc of a
 * near size reuses it). Returns nonzero when a block had lost its contents.
 */
static int large_rounds(unsigned char **live, unsigned int seed, unsigned int rounds)
{
	for (unsigned int r = 0; r < rounds; r++) {
		unsigned int k = (seed + r * 7) % 8;
		size_t n = 40000 + (size_t)((seed * 2654435761u + r * 40503u) % 1000000u);
		unsigned char *p = live[k];

		if (p && p[0] != (unsigned char)(k + seed))
			return 1;
		md_free(p);
		live[k] = md_malloc(n);
		if (!live[k])
			return 2;
		live[k][0] = (unsigned char)(k + seed);
	}
	return 0;
}

static void *large_worker(void *arg)
{
	unsigned char *live[8] = { NULL };
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	int rc = large_rounds(live, seed, 20000);

	for (int k = 0; k < 8; k++)
		md_free(live[k]);
	return (void *)(uintptr_t)rc;
}

/*
 * The child of test_large_cache_goes_threaded: the cache filled and used with one
 * thread (no bucket lock taken), then by three threads at once, then trimmed; its
 * counts are checked by md_malloc_verify() after each phase. Exit codes name the step.
 */
static void large_cache_goes_threaded(void)
{
	unsigned char *live[8] = { NULL };
	struct md_malloc_stats ms;
	pthread_t t[2];
	void *ret;

#if !defined(__SANITIZE_THREAD__)	/* TSan's runtime starts a thread of its own */
	if (!__libc_single_threaded)
		_exit(3);
#endif
	if (large_rounds(live, 1, 20000) || md_malloc_verify())
		_exit(4);
	md_malloc_stats(&ms);
	if (ms.large_cached == 0)
		_exit(5);	/* the rounds above did not go through the cache */
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, large_worker, (void *)(uintptr_t)(i + 2)))
			_exit(6);
	if (__libc_single_threaded || large_rounds(live, 1, 20000))
		_exit(7);
	for (int i = 0; i < 2; i++)
		if (pthread_join(t[i], &ret) || ret)
			_exit(8);
	if (md_malloc_verify())
		_exit(9);
	for (int k = 0; k < 8; k++)
		md_free(live[k]);
	md_malloc_trim(0);
	md_malloc_stats(&ms);
	if (ms.large_cached != 0 || md_malloc_verify())
		_exit(10);
	_exit(0);
}

START_TEST(test_large_cache_goes_threaded)
{
	const char *args[] = { "largecache", "", NULL };
	char err[4096];
	int status = mdt_run_self("", args, err, sizeof(err));

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child status %#x: %s", status, err);
}
END_TEST

#if !defined(__SANITIZE_THREAD__)	/* see main() */
/* Run a scenario in a fresh process (this program again): nothing of Check's is
 * there, so its exit(0) runs no sanitizer leak check over the test runner's state. */
static void expect_clean_exit(const char *scenario)
{
	const char *args[] = { "lastthread", scenario, NULL };
	char err[4096];
	int status = mdt_run_self("", args, err, sizeof(err));

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child status %#x%s: %s",
		      scenario, status,
		      WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (hung)" : "", err);
}

START_TEST(test_last_thread_pthread_exit)
{
	expect_clean_exit("main_exits_first");
	expect_clean_exit("forked_child_thread_exits");
}
END_TEST
#endif

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc == 4 && strcmp(argv[1], "--child") == 0 && strcmp(argv[2], "largecache") == 0)
		large_cache_goes_threaded();
	if (argc == 4 && strcmp(argv[1], "--child") == 0 && strcmp(argv[2], "lastthread") == 0) {
		alarm(60);	/* a hang becomes SIGALRM */
		if (strcmp(argv[3], "main_exits_first") == 0)
			main_exits_first();
		if (strcmp(argv[3], "forked_child_thread_exits") == 0)
			forked_child_thread_exits();
		return 9;
	}
	s = suite_create("malloc_threads");
	tc = tcase_create("churn");

	tcase_set_timeout(tc, 110);
	tcase_add_test(tc, test_thread_churn);
	tcase_add_test(tc, test_exit_returns_magazines);
	tcase_add_test(tc, test_large_cache_goes_threaded);
#if !defined(__SANITIZE_THREAD__)
	/* TSan's runtime keeps a thread of its own (started with the real pthread_create):
	 * a process whose last user thread exits does not end under TSan. */
	tcase_add_test(tc, test_last_thread_pthread_exit);
#endif
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
