/*
 * test_malloc_options: MEMDESC_OPTIONS, read once at the first call. Each case re-runs
 * this program (/proc/self/exe) with the option set and a case name, so that the
 * allocator starts with it, and checks the child's stderr and exit status: stats=1
 * prints the statistics at exit, verbose=1 the option values, junk=1 fills blocks,
 * abort=0 reports a bad free and goes on, limit= bounds memory, thp= advises huge pages
 * for the heap or refuses them (the kernel's flags of the heap's mapping, read from
 * /proc/self/smaps), and malformed values are reported, once, and ignored. Under an
 * address-space limit (RLIMIT_AS, set before the child's exec) the allocator starts
 * with a smaller limit, and fails cleanly when it cannot start at all. Sanitizer
 * runtimes reserve terabytes of shadow at start, so those cases run in the plain build
 * only.
 */
#include "mdt.h"
#include "md_malloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Under an address-space limit: a 64 MiB block works (written through), a request of
 * @too_big bytes fails with ENOMEM, and the allocator goes on working after it.
 */
static int child_rlimit(size_t too_big)
{
	unsigned char *p = md_malloc((size_t)64 << 20);

	if (!p)
		return 11;
	memset(p, 0x5a, (size_t)64 << 20);
	md_free(p);
	errno = 0;
	if (md_malloc(too_big) || errno != ENOMEM)
		return 12;
	p = md_malloc((size_t)1 << 20);
	if (!p)
		return 13;
	md_free(p);
	return 0;
}

/*
 * The huge-page flags of the mapping that holds a block of 64 KiB: 'h' for "hg"
 * (MADV_HUGEPAGE), 'n' for "nh" (MADV_NOHUGEPAGE), '-' for neither; 0 when the block
 * or its mapping's flags could not be had.
 */
static char child_thp_flags(void)
{
	unsigned char *p = md_malloc((size_t)64 << 10);
	uintptr_t a = (uintptr_t)p;
	char line[512], flags = 0;
	bool in = false;
	FILE *f;

	if (!p)
		return 0;
	p[0] = 1;
	f = fopen("/proc/self/smaps", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char sep;

		if (sscanf(line, "%lx-%lx%c", &lo, &hi, &sep) == 3 && sep == ' ') {
			in = a >= lo && a < hi;
		} else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			flags = strstr(line, " hg") ? 'h' : strstr(line, " nh") ? 'n' : '-';
			break;
		}
	}
	fclose(f);
	md_free(p);
	return flags;
}

/* The child side: returns the exit code. */
static int child(const char *what)
{
	/* 1 GiB of address space: the default limit is half of it. */
	if (strcmp(what, "rlimit-default") == 0)
		return child_rlimit((size_t)600 << 20);
	/* A limit asked for is lowered to what the 1 GiB allows. */
	if (strcmp(what, "rlimit-asked") == 0)
		return child_rlimit((size_t)1 << 30);
	if (strcmp(what, "alloc") == 0) {
		md_free(md_malloc(100));
		return 0;
	}
	if (strcmp(what, "thp-flags") == 0) {
		char flags = child_thp_flags();

		return flags == 'h' ? 1 : flags == 'n' ? 2 : flags == '-' ? 0 : 99;
	}
	if (strcmp(what, "junk") == 0) {
		unsigned char *p = md_malloc(64);

		for (int i = 16; i < 64; i++)
			if (p[i] != 0xa5)
				return 1;
		md_free(p);
		/* Freed: filled with 0x5a past the double-free key. */
		for (int i = 16; i < 64; i++)
			if (p[i] != 0x5a)
				return 2;
		return 0;
	}
	if (strcmp(what, "noabort") == 0) {
		void *p = md_malloc(32);

		md_free(p);
		md_free(p);	/* reported, ignored */
		p = md_malloc(32);
		md_free(p);
		return 7;
	}
	if (strcmp(what, "limit") == 0) {
		void *p;

		errno = 0;
		p = md_malloc((size_t)64 << 20);
		if (p || errno != ENOMEM)
			return 1;
		p = md_malloc((size_t)1 << 20);
		if (!p)
			return 2;
		md_free(p);
		return 0;
	}
	if (strcmp(what, "initfail") == 0) {
		/* The allocator could not start: every call fails cleanly, every time. */
		for (int i = 0; i < 3; i++) {
			void *q = NULL;

			errno = 0;
			if (md_malloc(16) || errno != ENOMEM)
				return 1;
			errno = 0;
			if (md_calloc(4, 4) || errno != ENOMEM)
				return 2;
			errno = 0;
			if (md_realloc(NULL, 100) || errno != ENOMEM)
				return 3;
			if (md_posix_memalign(&q, 64, 64) != ENOMEM || q)
				return 4;
			md_free(NULL);
		}
		return 0;
	}
	return 99;
}

/* How many times @needle occurs in @hay. */
static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* Run ourselves with MEMDESC_OPTIONS=@opts in case @what; return stderr, status. */
static int run(const char *opts, const char *what, char *err, size_t errlen)
{
	const char *args[] = { what, NULL };

	return mdt_run_self(opts, args, err, errlen);
}

static char out[16384];

START_TEST(test_stats)
{
	int st = run("stats=1", "alloc", out, sizeof(out));

	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_msg(strstr(out, "memdesc: malloc statistics") != NULL, "stderr: %s", out);
	ck_assert(strstr(out, "small_in_use") && strstr(out, "pages_slab") &&
		  strstr(out, "meta_xa_nodes") && strstr(out, "in depot"));
	/* The size class of md_malloc(100) (112 bytes) is listed. */
	ck_assert_msg(strstr(out, "\n  112 ") != NULL, "stderr: %s", out);
	/* Measured residency by owner, and by class: 112's slab has a page in memory. */
	ck_assert_msg(strstr(out, "resident_small") && strstr(out, "resident_large") &&
		      strstr(out, "resident_free") && strstr(out, "resident_meta") &&
		      strstr(out, "resident KiB"), "stderr: %s", out);
	{
		unsigned long cls, slabs, pages, inuse, depot, kib;

		ck_assert_int_eq(sscanf(strstr(out, "\n  112 "), "%lu %lu %lu %lu %lu %lu", &cls,
					&slabs, &pages, &inuse, &depot, &kib), 6);
		ck_assert_uint_ge(kib, 4);
		ck_assert_uint_le(kib, pages * slabs * 4);
	}
}
END_TEST

START_TEST(test_verbose_and_bad_values)
{
	int st = run("verbose=1,stats=x,junk=7,abort=1,unknown=3,limit=9Q,thp=7", "alloc", out,
		     sizeof(out));

	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_msg(strstr(out, "MEMDESC_OPTIONS: stats=x: not a number, ignored"),
		      "stderr: %s", out);
	ck_assert_msg(strstr(out, "MEMDESC_OPTIONS: junk=7: out of range, ignored"),
		      "stderr: %s", out);
	ck_assert_msg(strstr(out, "memdesc: options: stats=0 limit=default abort=1 junk=0 verbose=1 "
			      "guard=0 thp=0"), "stderr: %s", out);
	/* memdesc's own options: reported by memdesc, once each. */
	ck_assert_int_eq(count_of(out, "limit"), 2);	/* the report and the options line */
	ck_assert_msg(strstr(out, "MEMDESC_OPTIONS: bad limit '9Q', ignored"), "stderr: %s", out);
	ck_assert_int_eq(count_of(out, "thp"), 2);
	ck_assert_msg(strstr(out, "MEMDESC_OPTIONS: bad thp '7' (0, 1 or 2), ignored"),
		      "stderr: %s", out);
	/* No statistics: stats=x was ignored. */
	ck_assert_ptr_null(strstr(out, "malloc statistics"));
}
END_TEST

START_TEST(test_junk)
{
	int st = run("junk=1", "junk", out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st, out);
}
END_TEST

START_TEST(test_no_abort)
{
	int st = run("abort=0", "noabort", out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %#x: %s", st, out);
	ck_assert_msg(strstr(out, "memdesc: free(0x") && strstr(out, "double free"),
		      "stderr: %s", out);
}
END_TEST

START_TEST(test_limit)
{
	int st = run("limit=16M", "limit", out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st, out);
}
END_TEST

/*
 * thp=1 marks the heap's mapping MADV_HUGEPAGE, thp=2 MADV_NOHUGEPAGE, and thp=0 (the
 * default) neither: the kernel's own setting decides. A kernel built without
 * transparent huge pages has neither flag to show: skipped there.
 */
START_TEST(test_thp)
{
	static const char *const opts[] = { "thp=0", "thp=1", "thp=2", "" };
	static const int want[] = { 0, 1, 2, 0 };

	if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0)
		return;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		int st = run(opts[i], "thp-flags", out, sizeof(out));

		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == want[i], "'%s': status %#x: %s",
			      opts[i], st, out);
		ck_assert_msg(strstr(out, "memdesc") == NULL, "'%s': stderr: %s", opts[i], out);
	}
}
END_TEST

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/*
 * No room for even the smallest limit's address space: initialisation fails, and so
 * does every call, without a crash; verbose=1 says why. The room is found by raising
 * the child's address-space limit 1 MiB at a time from 8 MiB until the program itself
 * can start (exec and the loader need a size this test does not know): at the first
 * size that runs it, less than the smallest limit (8 MiB) is left over.
 */
START_TEST(test_init_failure)
{
	const char *args[] = { "initfail", NULL };
	size_t as = (size_t)8 << 20;
	int st;

	do {
		as += (size_t)1 << 20;
		st = mdt_run_self_as("verbose=1", args, as, out, sizeof(out));
	} while (!(WIFEXITED(st) && WEXITSTATUS(st) <= 4) && as < ((size_t)1 << 30));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%zu MiB: status %#x: %s",
		      as >> 20, st, out);
	ck_assert_msg(strstr(out, "memdesc: malloc could not start (error 12)"), "stderr: %s",
		      out);
}
END_TEST

/* The default limit under `ulimit -v 1G`: half of it, silently. */
START_TEST(test_rlimit_default)
{
	const char *args[] = { "rlimit-default", NULL };
	int st = mdt_run_self_as("", args, (size_t)1 << 30, out, sizeof(out));

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st, out);
	ck_assert_msg(strstr(out, "memdesc") == NULL, "stderr: %s", out);
}
END_TEST

/*
 * A limit asked for that the address space cannot hold (64 GiB, 100 TiB under
 * `ulimit -v 1G`) is lowered to what can be reserved, and said; the allocator works.
 */
START_TEST(test_rlimit_asked)
{
	static const char *const opts[] = { "limit=64G", "limit=100T" };
	const char *args[] = { "rlimit-asked", NULL };

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		int st = mdt_run_self_as(opts[i], args, (size_t)1 << 30, out, sizeof(out));

		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %#x: %s",
			      opts[i], st, out);
		ck_assert_msg(strstr(out, "memdesc: limit ") &&
			      strstr(out, "MiB of address space could be reserved; the limit is"),
			      "%s: stderr: %s", opts[i], out);
	}
}
END_TEST
#endif

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	if (argc == 3 && strcmp(argv[1], "--child") == 0)
		return child(argv[2]);
	s = suite_create("malloc_options");
	tc = tcase_create("options");
	tcase_add_test(tc, test_stats);
	tcase_add_test(tc, test_verbose_and_bad_values);
	tcase_add_test(tc, test_junk);
	tcase_add_test(tc, test_no_abort);
	tcase_add_test(tc, test_limit);
	tcase_add_test(tc, test_thp);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	tcase_add_test(tc, test_init_failure);
	tcase_add_test(tc, test_rlimit_default);
	tcase_add_test(tc, test_rlimit_asked);
#endif
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
