/*
 * test_valgrind: memcheck understands our heap (MEMDESC_VALGRIND builds only).
 *
 * Each case runs this program under valgrind (memcheck, the flags of scripts/valgrind)
 * with a scenario name and checks valgrind's verdict: its exit status and its log.
 * Without the client requests of md_valgrind.h none of the bugs below is seen (our
 * frames are one defined mmap to valgrind), so these cases fail on a build that
 * forgets them; and the clean case proves that the requests cause no false report
 * on correct use (realloc in place and moved, calloc's madvise zeroing, the
 * large-block cache, aligned blocks, trim).
 */
#include "mdt.h"
#include "md_malloc.h"
#include "slab.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VG_ERROR_EXIT 77

/* ---- the scenarios (run under valgrind) --------------------------------------- */

static volatile unsigned char sink;

/* Correct use of everything: no error expected. */
static int case_clean(void)
{
	unsigned char *big, *p, *q;
	void *a = NULL;
	size_t sum = 0;

	p = md_malloc(40);
	memset(p, 1, 40);
	p = md_realloc(p, 48);		/* in place: same class */
	memset(p + 40, 2, 8);
	p = md_realloc(p, 100000);	/* moves to a large block */
	memset(p + 48, 3, 100000 - 48);
	p = md_realloc(p, 300000);	/* moves, with 1/8 more pages */
	memset(p + 100000, 4, 200000);
	p = md_realloc(p, 200000);	/* shrinks in place */
	for (size_t i = 0; i < 200000; i += 4096)
		sink = p[i];
	md_free(p);
	big = md_calloc(1, (size_t)1 << 20);	/* fresh pages: zeroed by madvise */
	for (size_t i = 0; i < ((size_t)1 << 20); i += 64)
		sum += big[i];
	md_free(big);
	big = md_calloc(1, (size_t)1 << 20);	/* from the large-block cache: memset */
	for (size_t i = 0; i < ((size_t)1 << 20); i += 64)
		sum += big[i];
	md_free(big);
	q = md_aligned_alloc(4096, 5000);
	memset(q, 5, 5000);
	md_free(q);
	if (md_posix_memalign(&a, 64, 100) != 0)
		return 1;
	memset(a, 6, 100);
	md_free(a);
	for (int i = 0; i < 2000; i++) {
		void *v[4] = { md_malloc(16), md_malloc(1000), md_malloc(33000), md_calloc(3, 50) };

		for (int k = 0; k < 4; k++)
			md_free(v[k]);
	}
	md_malloc_trim(0);
	return sum == 0 ? 0 : 2;	/* a branch on calloc'ed bytes: defined zeroes */
}

static int case_uaf_small(void)
{
	unsigned char *p = md_malloc(48);

	memset(p, 1, 48);
	md_free(p);
	((volatile unsigned char *)p)[20] = 7;
	return 0;
}

static int case_uaf_large(void)
{
	unsigned char *p = md_malloc(200000);

	memset(p, 1, 200000);
	md_free(p);
	sink = ((volatile unsigned char *)p)[100000];
	return 0;
}

static int case_uninit(void)
{
	unsigned char *p = md_malloc(32);

	if (((volatile unsigned char *)p)[5] == 7)
		sink = 1;
	md_free(p);
	return 0;
}

/* Writes one byte past an object of a user cache (size 24, stride 32). */
static int case_cache_overflow(void)
{
	struct kmem_cache *c = kmem_cache_create("vg-24", 24, 0, 0);
	unsigned char *o = c ? kmem_cache_alloc(c) : NULL;

	if (!o)
		return 1;
	((volatile unsigned char *)o)[24] = 1;
	kmem_cache_free(c, o);
	return 0;
}

static int case_cache_uaf(void)
{
	struct kmem_cache *c = kmem_cache_create("vg-64", 64, 0, 0);
	unsigned char *o = c ? kmem_cache_alloc(c) : NULL;

	if (!o)
		return 1;
	kmem_cache_free(c, o);
	sink = ((volatile unsigned char *)o)[8];
	return 0;
}

static void *volatile leak_slot;

static int case_leak(void)
{
	void *other = md_malloc(1000);

	leak_slot = md_malloc(1000);
	memset(leak_slot, 1, 1000);
	leak_slot = NULL;	/* the last pointer to it */
	/*
	 * Memcheck scans our frames as roots, and a magazine keeps the values it handed
	 * out in its slots: this free overwrites the slot the leaked block came from.
	 */
	md_free(other);
	return 0;
}

/* Our own report, no memcheck error on the way (the key is read without one). */
static int case_double_free(void)
{
	void *p = md_malloc(64);

	md_free(p);
	md_free(p);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} cases[] = {
	{ "clean", case_clean },
	{ "uaf_small", case_uaf_small },
	{ "uaf_large", case_uaf_large },
	{ "uninit", case_uninit },
	{ "cache_overflow", case_cache_overflow },
	{ "cache_uaf", case_cache_uaf },
	{ "leak", case_leak },
	{ "double_free", case_double_free },
};

static int run_case(const char *name)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (strcmp(cases[i].name, name) == 0)
			return cases[i].fn();
	return 99;
}

/* ---- the checks (run natively) ------------------------------------------------- */

struct vg_result {
	int status;		/* waitpid status of valgrind */
	char log[65536];	/* valgrind's log */
	char out[4096];		/* the scenario's stderr */
};

static void slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	size_t n = 0;
	ssize_t r;

	ck_assert_int_ge(fd, 0);
	while (n + 1 < len && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	close(fd);
	unlink(path);
}

static struct vg_result res;

static void run_under_valgrind(const char *name)
{
	char self[4096], logpath[] = "/tmp/mdvg-log-XXXXXX", outpath[] = "/tmp/mdvg-out-XXXXXX";
	char logarg[64];
	int logfd = mkstemp(logpath), outfd = mkstemp(outpath);
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pid_t pid;

	ck_assert_int_ge(logfd, 0);
	ck_assert_int_ge(outfd, 0);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	close(logfd);
	snprintf(logarg, sizeof(logarg), "--log-file=%s", logpath);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char *argv[] = { MDT_VALGRIND, "--error-exitcode=77", "--leak-check=full",
				 "--errors-for-leak-kinds=definite,indirect",
				 "--show-leak-kinds=definite,indirect",
				 "--suppressions=" MDT_VALGRIND_SUPP, logarg, self, "--case",
				 (char *)name, NULL };

		dup2(outfd, STDOUT_FILENO);
		dup2(outfd, STDERR_FILENO);
		/* Valgrind's address space cannot hold the default reservation (phys.c). */
		setenv("MEMDESC_LIMIT", "8G", 1);
		execv(MDT_VALGRIND, argv);
		_exit(98);
	}
	close(outfd);
	ck_assert_int_eq(waitpid(pid, &res.status, 0), pid);
	slurp(logpath, res.log, sizeof(res.log));
	slurp(outpath, res.out, sizeof(res.out));
}

/* Valgrind exited with @code; its log has each of @want (NULL-terminated). */
static void expect(const char *name, int code, const char *const *want)
{
	run_under_valgrind(name);
	ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == code,
		      "case %s: status %#x, expected exit %d; log:\n%s\nstderr:\n%s", name,
		      res.status, code, res.log, res.out);
	for (; want && *want; want++)
		ck_assert_msg(strstr(res.log, *want), "case %s: no '%s' in the log:\n%s", name,
			      *want, res.log);
}

START_TEST(test_clean)
{
	expect("clean", 0, NULL);
	ck_assert_msg(!strstr(res.log, "Invalid") && !strstr(res.log, "uninitialised") &&
		      !strstr(res.log, "are definitely lost") &&
		      !strstr(res.log, "are indirectly lost"), "clean case has reports:\n%s",
		      res.log);
}
END_TEST

START_TEST(test_uaf_small)
{
	expect("uaf_small", VG_ERROR_EXIT, (const char *const[]){
		"Invalid write of size 1", "20 bytes inside a block of size 48 free'd",
		"md_free", "case_uaf_small", NULL });
}
END_TEST

START_TEST(test_uaf_large)
{
	/* 200000 bytes: 49 pages. */
	expect("uaf_large", VG_ERROR_EXIT, (const char *const[]){
		"Invalid read of size 1", "100,000 bytes inside a block of size 200,704 free'd",
		"md_free", "case_uaf_large", NULL });
}
END_TEST

START_TEST(test_uninit)
{
	expect("uninit", VG_ERROR_EXIT, (const char *const[]){
		"Conditional jump or move depends on uninitialised value", "case_uninit",
		NULL });
}
END_TEST

START_TEST(test_cache_overflow)
{
	expect("cache_overflow", VG_ERROR_EXIT, (const char *const[]){
		"Invalid write of size 1", "0 bytes after a block of size 24 alloc'd",
		"kmem_cache_alloc", NULL });
}
END_TEST

START_TEST(test_cache_uaf)
{
	expect("cache_uaf", VG_ERROR_EXIT, (const char *const[]){
		"Invalid read of size 1", "8 bytes inside a block of size 64 free'd",
		"kmem_cache_free", NULL });
}
END_TEST

START_TEST(test_leak)
{
	expect("leak", VG_ERROR_EXIT, (const char *const[]){
		"1,024 bytes in 1 blocks are definitely lost", "md_malloc", "case_leak",
		NULL });
}
END_TEST

START_TEST(test_double_free)
{
	run_under_valgrind("double_free");
	ck_assert_msg(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGABRT,
		      "status %#x; log:\n%s\nstderr:\n%s", res.status, res.log, res.out);
	ck_assert_msg(strstr(res.out, "): double free"), "no report:\n%s", res.out);
	ck_assert_msg(!strstr(res.log, "Invalid") && !strstr(res.log, "uninitialised"),
		      "memcheck complained about the double-free check:\n%s", res.log);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc == 3 && strcmp(argv[1], "--case") == 0)
		return run_case(argv[2]);
	s = suite_create("valgrind");
	tc = tcase_create("memcheck");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_clean);
	tcase_add_test(tc, test_uaf_small);
	tcase_add_test(tc, test_uaf_large);
	tcase_add_test(tc, test_uninit);
	tcase_add_test(tc, test_cache_overflow);
	tcase_add_test(tc, test_cache_uaf);
	tcase_add_test(tc, test_leak);
	tcase_add_test(tc, test_double_free);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
