/*
 * test_malloc_guard: MEMDESC_OPTIONS=guard=1, the canary after every block.
 *
 * Each case re-runs this program (/proc/self/exe) with the options set, so that the
 * allocator starts with them (they are read once, at the first call), and checks the
 * child's stderr and exit status. Overflow cases: the child writes the address of the
 * block on stderr ("block 0x..."), overflows it, and frees or reallocs it; the report
 * must then name the function, that address and "heap overflow", and the child must die
 * of SIGABRT. Covered: one byte past small and large blocks (a NUL, the classic
 * off-by-one), sizes 0 and exact pages, calloc, aligned blocks, realloc, a write past
 * the canary into the size trailer, and abort=0 (reported, the program goes on). No
 * false positives: a workload that writes every byte it owns, through malloc, calloc,
 * realloc (in place and moved), the aligned family and free_sized, runs clean. Without
 * the option the same one-byte overflow goes unreported (SECURITY.md says so).
 * The conformance and differential suites also run with guard=1 (tests/malloc.cmake).
 */
#include "mdt.h"
#include "md_malloc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void say_block(const void *p)
{
	fprintf(stderr, "block %p\n", p);
	fflush(stderr);
}

/* Overflow by one NUL byte a block of @n bytes from @how, then free or realloc it. */
static int overflow_case(const char *how, size_t n)
{
	unsigned char *p;

	if (strcmp(how, "calloc") == 0) {
		p = md_calloc(1, n);
	} else if (strcmp(how, "aligned") == 0) {
		void *q = NULL;

		if (md_posix_memalign(&q, 256, n) != 0)
			return 1;
		p = q;
	} else {
		p = md_malloc(n);
	}
	if (!p)
		return 1;
	memset(p, 0x41, n);
	say_block(p);
	p[n] = 0;
	if (strcmp(how, "realloc") == 0)
		p = md_realloc(p, n * 2 + 1);
	else
		md_free(p);
	return 0;	/* not reached: the report aborts */
}

/* Writes every byte it owns, through every function of the family: no report. */
static int clean_workload(void)
{
	static const size_t sizes[] = { 0, 1, 7, 15, 16, 17, 100, 1000, 4080, 4096, 20000,
					32752, 32768, 32769, 40000, 65536, 1 << 20 };
	void *keep[64];
	int nkeep = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		unsigned char *p = md_malloc(n), *c = md_calloc(n + 1, 1);
		void *a = NULL;

		if (!p || !c || md_malloc_usable_size(p) != n)
			return 1;
		memset(p, 0xee, n);
		memset(c, 0xdd, n + 1);
		if (md_posix_memalign(&a, 4096, n + 3) != 0 ||
		    md_malloc_usable_size(a) != n + 3)
			return 2;
		memset(a, 0xcc, n + 3);
		/* Grow and shrink through the small/large boundary and in place. */
		for (size_t m = n + 1; m < 3 * n + 100; m += m / 2 + 1) {
			p = md_realloc(p, m);
			if (!p || md_malloc_usable_size(p) != m)
				return 3;
			memset(p, 0xee, m);
		}
		p = md_realloc(p, n / 2 + 1);
		if (!p || md_malloc_usable_size(p) != n / 2 + 1)
			return 4;
		memset(p, 0xbb, n / 2 + 1);
		md_free_sized(c, n + 1);
		md_free(a);
		if (nkeep < 64)
			keep[nkeep++] = p;
		else
			md_free(p);
	}
	while (nkeep)
		md_free(keep[--nkeep]);
	return 0;
}

static int child(const char *what, const char *arg)
{
	size_t n = arg ? strtoul(arg, NULL, 0) : 0;

	if (strcmp(what, "clean") == 0)
		return clean_workload();
	if (strcmp(what, "trailer") == 0) {
		/* Past the canary: 24 bytes live in a 48-byte block, the trailer at 40. */
		unsigned char *p = md_malloc(24);

		say_block(p);
		p[40] ^= 1;
		md_free(p);
		return 0;
	}
	if (strcmp(what, "noabort") == 0) {
		unsigned char *p = md_malloc(50);

		say_block(p);
		p[50] = 0;
		md_free(p);		/* reported, the block is kept out of use */
		p = md_malloc(50);
		md_free(p);
		return 7;
	}
	if (strcmp(what, "unguarded") == 0) {
		/* 24 bytes in a 32-byte class: the byte after them is slack nobody checks. */
		unsigned char *p = md_malloc(24);

		p[24] = 0;
		md_free(p);
		return 0;
	}
	return overflow_case(what, n);
}

/* Run ourselves with MEMDESC_OPTIONS=@opts as "@what @arg"; stderr in @err. */
static int run(const char *opts, const char *what, const char *arg, char *err, size_t errlen)
{
	const char *args[] = { what, arg, NULL };

	return mdt_run_self(opts, args, err, errlen);
}

static char out[16384];

/* The child said "block <p>", then the report names @fn, that block, a heap overflow. */
static void expect_overflow(int status, const char *fn)
{
	char want[128];
	unsigned long addr;

	ck_assert_msg(sscanf(out, "block %lx", &addr) == 1, "stderr: %s", out);
	snprintf(want, sizeof(want), "memdesc: %s(0x%lx): heap overflow", fn, addr);
	ck_assert_msg(strstr(out, want) != NULL, "expected '%s' in: %s", want, out);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %#x: %s",
		      status, out);
}

START_TEST(test_overflow_by_one_byte)
{
	static const char *const sizes[] = { "0", "1", "24", "100", "4000", "32752", "32768",
					     "40000", "12288", "1048576" };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int st = run("guard=1", "malloc", sizes[i], out, sizeof(out));

		expect_overflow(st, "free");
	}
}
END_TEST

START_TEST(test_overflow_calloc_aligned_realloc)
{
	expect_overflow(run("guard=1", "calloc", "300", out, sizeof(out)), "free");
	expect_overflow(run("guard=1", "calloc", "200000", out, sizeof(out)), "free");
	expect_overflow(run("guard=1", "aligned", "50", out, sizeof(out)), "free");
	expect_overflow(run("guard=1", "aligned", "70000", out, sizeof(out)), "free");
	expect_overflow(run("guard=1", "realloc", "100", out, sizeof(out)), "realloc");
	expect_overflow(run("guard=1", "realloc", "50000", out, sizeof(out)), "realloc");
	/* junk=1 and guard=1 together. */
	expect_overflow(run("guard=1,junk=1", "malloc", "64", out, sizeof(out)), "free");
}
END_TEST

START_TEST(test_overflow_past_the_canary)
{
	expect_overflow(run("guard=1", "trailer", NULL, out, sizeof(out)), "free");
}
END_TEST

START_TEST(test_no_abort)
{
	int st = run("guard=1,abort=0", "noabort", NULL, out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %#x: %s", st, out);
	ck_assert_msg(strstr(out, "heap overflow"), "stderr: %s", out);
}
END_TEST

START_TEST(test_no_false_positive)
{
	int st = run("guard=1", "clean", NULL, out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st, out);
	ck_assert_msg(out[0] == '\0', "stderr: %s", out);
	st = run("guard=1,junk=1", "clean", NULL, out, sizeof(out));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && out[0] == '\0',
		      "status %#x: %s", st, out);
}
END_TEST

START_TEST(test_off_by_default)
{
	int st = run("", "unguarded", NULL, out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0 && out[0] == '\0',
		      "status %#x: %s", st, out);
}
END_TEST

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if ((argc == 3 || argc == 4) && strcmp(argv[1], "--child") == 0)
		return child(argv[2], argc == 4 ? argv[3] : NULL);
	s = suite_create("malloc_guard");
	tc = tcase_create("guard");
	tcase_add_test(tc, test_overflow_by_one_byte);
	tcase_add_test(tc, test_overflow_calloc_aligned_realloc);
	tcase_add_test(tc, test_overflow_past_the_canary);
	tcase_add_test(tc, test_no_abort);
	tcase_add_test(tc, test_no_false_positive);
	tcase_add_test(tc, test_off_by_default);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
