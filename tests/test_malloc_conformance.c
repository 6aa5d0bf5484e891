/*
 * test_malloc_conformance: every function of the malloc family through the md_ API:
 * sizes 0 to 64 MiB, every power-of-two alignment from 1 to 1 MiB, overflow cases,
 * realloc growth and shrink across the small/large boundary with the contents kept,
 * usable size >= requested size (and the 12.5% waste bound of the size classes),
 * errno values.
 */
#include "mdt.h"
#include "md_malloc.h"
#include "memdesc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-bp.h>

#define MiB ((size_t)1 << 20)
#define PAGE ((size_t)4096)

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 31 + (i >> 8));
}

static int check(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 31 + (i >> 8)))
			return 0;
	return 1;
}

static int all_zero(const unsigned char *p, size_t n)
{
	unsigned char acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* Touch the first and last bytes and a page in between: proves the block is usable. */
static void touch(unsigned char *p, size_t n)
{
	if (!n)
		return;
	p[n - 1] = 2;
	p[0] = 1;
	for (size_t i = PAGE; i + 1 < n; i += 64 * PAGE)
		p[i] = 3;
	ck_assert_int_eq(p[0], 1);
	if (n > 1)
		ck_assert_int_eq(p[n - 1], 2);
}

START_TEST(test_malloc_sizes)
{
	/* Every size up to 2 pages, then each power of two and its neighbours to 64 MiB. */
	for (size_t n = 0; n <= 2 * PAGE; n++) {
		unsigned char *p = md_malloc(n);

		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq((uintptr_t)p % 16, 0);
		ck_assert_uint_ge(md_malloc_usable_size(p), n);
		touch(p, n);
		md_free(p);
	}
	for (size_t n = 2 * PAGE; n <= 64 * MiB; n *= 2) {
		for (size_t d = 0; d < 3; d++) {
			size_t sz = n - 1 + d;
			unsigned char *p = md_malloc(sz);

			ck_assert_ptr_nonnull(p);
			ck_assert_uint_eq((uintptr_t)p % 16, 0);
			ck_assert_uint_ge(md_malloc_usable_size(p), sz);
			touch(p, sz);
			md_free(p);
		}
	}
}
END_TEST

START_TEST(test_class_waste)
{
	/* Usable size of every small size, and of large sizes: within 12.5% above 128. */
	for (size_t n = 1; n <= 4 * MD_SMALL_MAX; n += (n < MD_SMALL_MAX + 64 ? 1 : 97)) {
		void *p = md_malloc(n);
		size_t u = md_malloc_usable_size(p);

		ck_assert_uint_ge(u, n);
		if (n > 128)
			ck_assert_msg((u - n) * 8 < n, "size %zu: usable %zu wastes >= 12.5%%", n, u);
		else
			ck_assert_uint_lt(u - n, 16);
		md_free(p);
	}
}
END_TEST

START_TEST(test_malloc_zero_unique)
{
	void *a = md_malloc(0), *b = md_malloc(0);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	md_free(a);
	md_free(b);
	md_free(NULL);
	md_free_sized(NULL, 0);
	ck_assert_uint_eq(md_malloc_usable_size(NULL), 0);
}
END_TEST

START_TEST(test_enomem)
{
	errno = 0;
	ck_assert_ptr_null(md_malloc(SIZE_MAX));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(md_malloc(SIZE_MAX - PAGE + 1));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(md_malloc((size_t)1 << 50));	/* beyond the limit */
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(md_calloc(SIZE_MAX / 2 + 1, 2));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(md_calloc((size_t)1 << 33, (size_t)1 << 31));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(md_aligned_alloc(64, SIZE_MAX - 10));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(md_memalign((size_t)1 << 40, 16));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(md_pvalloc(SIZE_MAX - 5));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(md_valloc((size_t)1 << 50));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

START_TEST(test_calloc)
{
	for (size_t n = 1; n <= 4 * MiB; n = n * 3 + 1) {
		unsigned char *p = md_malloc(n);

		memset(p, 0xff, n);
		md_free(p);
		p = md_calloc(n, 1);
		ck_assert_ptr_nonnull(p);
		ck_assert_msg(all_zero(p, n), "calloc(%zu, 1) not zeroed", n);
		md_free(p);
		p = md_calloc(1, n);
		ck_assert_ptr_nonnull(p);
		ck_assert_int_eq(p[n - 1], 0);
		md_free(p);
	}
	ck_assert_ptr_nonnull(md_calloc(0, 5) ? (void *)1 : NULL);
}
END_TEST

/* realloc through sizes crossing the small/large boundary both ways. */
START_TEST(test_realloc_contents)
{
	static const size_t seq[] = {
		1, 17, 100, 128, 129, 4000, 32767, 32768, 32769, 40000, 100000, MiB, 40000,
		32768, 20000, 100, 5, 33000, 3 * MiB, 64 * MiB, 64 * MiB - 1, 70000, 32768, 1,
	};
	unsigned char *p = NULL;
	size_t have = 0;

	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		size_t n = seq[i];
		unsigned char *q = md_realloc(p, n);
		size_t keep = have < n ? have : n;

		ck_assert_ptr_nonnull(q);
		ck_assert_uint_eq((uintptr_t)q % 16, 0);
		ck_assert_uint_ge(md_malloc_usable_size(q), n);
		ck_assert_msg(check(q, keep, (unsigned)i - 1), "step %zu: %zu -> %zu lost data",
			      i, have, n);
		fill(q, n, (unsigned)i);
		p = q;
		have = n;
	}
	/* realloc(p, 0) frees and returns NULL (glibc). */
	ck_assert_ptr_null(md_realloc(p, 0));
}
END_TEST

START_TEST(test_realloc_inplace_and_failure)
{
	unsigned char *p = md_malloc(100), *q;

	/* Same class: stays. */
	ck_assert_ptr_eq(md_realloc(p, 110), p);
	ck_assert_ptr_eq(md_realloc(p, 100), p);
	/* A large block shrinking a little stays. */
	q = md_malloc(1 * MiB);
	fill(q, MiB, 7);
	ck_assert_ptr_eq(md_realloc(q, MiB - 3 * PAGE), q);
	ck_assert(check(q, MiB - 3 * PAGE, 7));
	/* Failure: NULL, ENOMEM, the block untouched. */
	errno = 0;
	ck_assert_ptr_null(md_realloc(q, SIZE_MAX - 1));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(md_realloc(q, (size_t)1 << 50));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert(check(q, MiB - 3 * PAGE, 7));
	errno = 0;
	ck_assert_ptr_null(md_reallocarray(q, SIZE_MAX / 4, 8));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert(check(q, MiB - 3 * PAGE, 7));
	q = md_reallocarray(q, 3, MiB);
	ck_assert_ptr_nonnull(q);
	ck_assert(check(q, MiB - 3 * PAGE, 7));
	md_free(q);
	/* realloc(NULL, n) is malloc. */
	q = md_realloc(NULL, 50);
	ck_assert_ptr_nonnull(q);
	md_free(q);
	q = md_reallocarray(NULL, 10, 10);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_ge(md_malloc_usable_size(q), 100);
	md_free(q);
	md_free(p);
}
END_TEST

/* Repeated growth by small steps (a vector that grows one page at a time). */
START_TEST(test_realloc_growth_steps)
{
	unsigned char *p = NULL;
	size_t n, moves = 0;
	void *prev = NULL;

	for (n = 40000; n <= 8 * MiB; n += PAGE) {
		p = md_realloc(p, n);
		ck_assert_ptr_nonnull(p);
		p[n - 1] = (unsigned char)n;
		if (prev && p != prev)
			moves++;
		prev = p;
	}
	/* Amortised: 2000 steps, far fewer moves. */
	ck_assert_uint_lt(moves, 100);
	md_free(p);
}
END_TEST

/*
 * A large block resizes in place when the pages after it are free: a shrink that frees
 * more than an eighth gives the tail back (same pointer), and once the tail is free
 * again (malloc_trim empties the page allocator's dirty list into its arena) the block
 * grows back over it, in one step or page by page, keeping its pointer and contents.
 */
START_TEST(test_realloc_in_place)
{
	unsigned char *p, *q;
	size_t n;

	md_malloc_trim(0);
	p = md_malloc(4 * MiB);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < 4 * MiB; i += 1000)
		p[i] = (unsigned char)(i / 1000);
	q = md_realloc(p, MiB + 100);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(md_malloc_usable_size(p), 257 * PAGE);
	/* less than an eighth: the block stays as it is */
	q = md_realloc(p, MiB - 100);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(md_malloc_usable_size(p), 257 * PAGE);
	md_malloc_trim(0);
	q = md_realloc(p, 3 * MiB);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(md_malloc_usable_size(p), 3 * MiB);
	for (size_t i = 0; i < MiB - 100; i += 1000)
		ck_assert_uint_eq(p[i], (unsigned char)(i / 1000));
	memset(p + MiB, 0x6b, 2 * MiB);
	for (n = 3 * MiB + PAGE; n <= 4 * MiB; n += PAGE) {
		q = md_realloc(p, n);
		ck_assert_ptr_eq(q, p);
		ck_assert_uint_eq(md_malloc_usable_size(p), n);
		p[n - 1] = 0x6c;
	}
	ck_assert_uint_eq(p[0], 0);
	ck_assert_uint_eq(p[3 * MiB - 1], 0x6b);
	ck_assert_uint_eq(p[4 * MiB - 1], 0x6c);
	/* Grown far beyond its neighbours: moved or not, the contents are kept. */
	q = md_realloc(p, 64 * MiB);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_ge(md_malloc_usable_size(q), 64 * MiB);
	for (size_t i = 0; i < MiB - 100; i += 1000)
		ck_assert_uint_eq(q[i], (unsigned char)(i / 1000));
	ck_assert_uint_eq(q[3 * MiB - 1], 0x6b);
	ck_assert_uint_eq(q[4 * MiB - 1], 0x6c);
	q[64 * MiB - 1] = 1;
	/* A block that cannot grow in place (another block right after it) moves. */
	md_free(q);
	md_malloc_trim(0);
	p = md_malloc(200 * 1024);
	q = md_malloc(200 * 1024);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(q);
	memset(p, 0x3e, 200 * 1024);
	if (q == p + 200 * 1024) {
		unsigned char *r = md_realloc(p, 400 * 1024);

		ck_assert_ptr_ne(r, p);
		p = r;
	} else {
		p = md_realloc(p, 400 * 1024);
	}
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < 200 * 1024; i += 999)
		ck_assert_uint_eq(p[i], 0x3e);
	md_free(p);
	md_free(q);
}
END_TEST

START_TEST(test_aligned_alloc)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 100, 4095, 4096, 5000, 32768, 40000,
					MiB + 1 };

	for (size_t a = 1; a <= MiB; a *= 2) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];
			unsigned char *p;
			void *q = NULL;

			p = md_aligned_alloc(a, n);
			ck_assert_ptr_nonnull(p);
			ck_assert_msg((uintptr_t)p % a == 0 && (uintptr_t)p % 16 == 0,
				      "aligned_alloc(%zu, %zu) = %p", a, n, (void *)p);
			ck_assert_uint_ge(md_malloc_usable_size(p), n);
			touch(p, n);
			md_free_aligned_sized(p, a, n);

			p = md_memalign(a, n);
			ck_assert_ptr_nonnull(p);
			ck_assert_uint_eq((uintptr_t)p % a, 0);
			ck_assert_uint_ge(md_malloc_usable_size(p), n);
			/* realloc of an aligned block keeps the contents. */
			fill(p, n, 3);
			p = md_realloc(p, n + 100);
			ck_assert(check(p, n, 3));
			md_free(p);

			if (a >= sizeof(void *)) {
				ck_assert_int_eq(md_posix_memalign(&q, a, n), 0);
				ck_assert_ptr_nonnull(q);
				ck_assert_uint_eq((uintptr_t)q % a, 0);
				ck_assert_uint_ge(md_malloc_usable_size(q), n);
				md_free(q);
			}
		}
	}
}
END_TEST

START_TEST(test_alignment_errors)
{
	void *q = (void *)0x1234;
	int saved;

	errno = 0;
	ck_assert_ptr_null(md_aligned_alloc(3, 16));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(md_aligned_alloc(0, 16));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(md_aligned_alloc(48, 16));
	ck_assert_int_eq(errno, EINVAL);
	/* posix_memalign: the error is returned, errno and *memptr untouched. */
	errno = saved = 77;
	ck_assert_int_eq(md_posix_memalign(&q, 0, 16), EINVAL);
	ck_assert_int_eq(md_posix_memalign(&q, 4, 16), EINVAL);
	ck_assert_int_eq(md_posix_memalign(&q, 24, 16), EINVAL);
	ck_assert_int_eq(md_posix_memalign(&q, 1, 16), EINVAL);
	ck_assert_int_eq(md_posix_memalign(&q, 64, SIZE_MAX - 100), ENOMEM);
	ck_assert_int_eq(errno, saved);
	ck_assert_ptr_eq(q, (void *)0x1234);
	/* memalign rounds a non power of two up (glibc). */
	q = md_memalign(24, 10);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq((uintptr_t)q % 32, 0);
	md_free(q);
	q = md_memalign(0, 10);
	ck_assert_ptr_nonnull(q);
	md_free(q);
	/* valloc and pvalloc. */
	q = md_valloc(1);
	ck_assert_uint_eq((uintptr_t)q % PAGE, 0);
	md_free(q);
	q = md_pvalloc(1);
	ck_assert_uint_eq((uintptr_t)q % PAGE, 0);
	ck_assert_uint_ge(md_malloc_usable_size(q), PAGE);
	md_free(q);
	q = md_pvalloc(0);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_ge(md_malloc_usable_size(q), PAGE);
	md_free(q);
	q = md_pvalloc(PAGE + 1);
	ck_assert_uint_ge(md_malloc_usable_size(q), 2 * PAGE);
	md_free(q);
}
END_TEST

START_TEST(test_free_sized_and_trim)
{
	struct memdesc_stats st;
	void *p[64];

	for (int i = 0; i < 64; i++)
		p[i] = md_malloc((size_t)i * 1000 + 1);
	for (int i = 0; i < 64; i++)
		md_free_sized(p[i], (size_t)i * 1000 + 1);
	ck_assert_int_eq(md_malloc_trim(0), 1);
	urcu_bp_barrier();	/* slab frees deferred by RCU have run */
	md_malloc_trim(0);	/* and their pages go back */
	memdesc_stats(&st);
	ck_assert_uint_eq(st.pages_folio, 0);
	ck_assert_uint_eq(st.pages_dirty, 0);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("malloc_conformance");
	TCase *tc = tcase_create("api");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_malloc_sizes);
	tcase_add_test(tc, test_class_waste);
	tcase_add_test(tc, test_malloc_zero_unique);
	tcase_add_test(tc, test_enomem);
	tcase_add_test(tc, test_calloc);
	tcase_add_test(tc, test_realloc_contents);
	tcase_add_test(tc, test_realloc_inplace_and_failure);
	tcase_add_test(tc, test_realloc_growth_steps);
	tcase_add_test(tc, test_realloc_in_place);
	tcase_add_test(tc, test_aligned_alloc);
	tcase_add_test(tc, test_alignment_errors);
	tcase_add_test(tc, test_free_sized_and_trim);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
