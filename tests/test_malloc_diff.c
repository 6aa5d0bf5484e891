/*
 * test_malloc_diff: a seeded random run of the whole md_ family against a simple
 * model: a table of live blocks with their requested sizes, alignments and fill
 * patterns. Every block is checked when it is freed or reallocated (its contents,
 * alignment and usable size), and no two live blocks may overlap (checked against a
 * sorted copy of the table every few thousand operations). Sizes cover the classes,
 * the small/large boundary and large blocks.
 */
#include "mdt.h"
#include "md_malloc.h"
#include "memdesc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#define SLOTS 2048

/* A silent check: Check's ck_assert records its location on every call (a write). */
#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		if (!(cond))                                                             \
			ck_abort_msg(__VA_ARGS__);                                       \
	} while (0)

struct live {
	unsigned char *p;
	size_t size;
	size_t align;
	size_t step;	/* the pattern's stride, chosen when it was written */
	size_t filled;	/* the size when it was written (its last byte is set) */
	uint8_t seed;
};

static struct live tab[SLOTS];

static size_t pick_size(struct mdt_rng *r)
{
	switch (mdt_rng_below(r, 16)) {
	case 0:
		return 32768 - 64 + mdt_rng_below(r, 128);	/* the boundary */
	case 1:
		return 32768 + mdt_rng_below(r, 1 << 18);
	case 2:
		return mdt_rng_below(r, 32769);
	case 3:
		return 0;
	default:
		return mdt_rng_below(r, 1024);
	}
}

/* Pattern: every byte for small blocks; for large ones, one byte per 61. */
static void fill(struct live *l)
{
	size_t step = l->step = l->size > 65536 ? 61 : 1;

	for (size_t i = 0; i < l->size; i += step)
		l->p[i] = (uint8_t)(l->seed + i);
	if (l->size)
		l->p[l->size - 1] = (uint8_t)(l->seed + l->size - 1);
	l->filled = l->size;
}

static void verify(const struct live *l, size_t upto)
{
	size_t step = l->step;

	if (upto > l->size)
		upto = l->size;
	CHECK((uintptr_t)l->p % (l->align > 16 ? l->align : 16) == 0, "%p: align %zu",
	      (void *)l->p, l->align);
	CHECK(md_malloc_usable_size(l->p) >= l->size, "%p: usable %zu < size %zu",
	      (void *)l->p, md_malloc_usable_size(l->p), l->size);
	for (size_t i = 0; i < upto; i += step)
		CHECK(l->p[i] == (uint8_t)(l->seed + i), "block %p size %zu byte %zu (slot %zu)",
		      (void *)l->p, l->size, i, (size_t)(l - tab));
	if (upto == l->size && upto && l->size == l->filled)
		CHECK(l->p[upto - 1] == (uint8_t)(l->seed + upto - 1), "%p: last byte",
		      (void *)l->p);
}

static int cmp_live(const void *a, const void *b)
{
	const struct live *x = a, *y = b;

	return x->p < y->p ? -1 : x->p > y->p;
}

static void check_overlaps(void)
{
	static struct live sorted[SLOTS];
	size_t n = 0;

	for (size_t i = 0; i < SLOTS; i++)
		if (tab[i].p)
			sorted[n++] = tab[i];
	qsort(sorted, n, sizeof(sorted[0]), cmp_live);
	for (size_t i = 1; i < n; i++)
		CHECK(sorted[i - 1].p + md_malloc_usable_size(sorted[i - 1].p) <= sorted[i].p,
		      "blocks %p and %p overlap", (void *)sorted[i - 1].p,
			      (void *)sorted[i].p);
}

START_TEST(test_diff)
{
	struct mdt_rng r;
	size_t ops = mdt_scaled(200000);

	mdt_rng_init(&r, mdt_seed(20261122));
	for (size_t op = 0; op < ops; op++) {
		struct live *l = &tab[mdt_rng_below(&r, SLOTS)];
		unsigned kind = (unsigned)mdt_rng_below(&r, 10);

		if (getenv("MDT_TRACE") && l == &tab[atoi(getenv("MDT_TRACE"))])
			fprintf(stderr, "op %zu kind %u p %p size %zu align %zu\n", op, kind,
				(void *)l->p, l->size, l->align);

		if (l->p && kind < 5) {
			verify(l, l->size);
			if (kind == 0)
				md_free_sized(l->p, l->size);
			else
				md_free(l->p);
			l->p = NULL;
		} else if (l->p) {
			/* realloc: contents kept up to the smaller size. */
			size_t n = pick_size(&r) + 1;
			unsigned char *q = md_realloc(l->p, n);

			CHECK(q != NULL, "realloc failed");
			l->p = q;
			l->align = 16;
			if (n < l->size)
				l->size = n;	/* what survives */
			verify(l, l->size);
			l->size = n;
			l->seed = (uint8_t)mdt_rng_next(&r);
			fill(l);
		} else {
			size_t n = pick_size(&r);

			l->align = 16;
			l->seed = (uint8_t)mdt_rng_next(&r);
			switch (kind % 4) {
			case 0:
				l->p = md_malloc(n);
				break;
			case 1:
				l->p = md_calloc(1 + mdt_rng_below(&r, 4), n);
				if (l->p) {
					for (size_t i = 0; i < n; i += 7)
						CHECK(l->p[i] == 0, "calloc: byte %zu", i);
				}
				break;
			case 2:
				l->align = (size_t)1 << mdt_rng_below(&r, 16);
				l->p = md_aligned_alloc(l->align, n);
				break;
			default:
				l->align = (size_t)1 << (3 + mdt_rng_below(&r, 11));
				CHECK(md_posix_memalign((void **)&l->p, l->align, n) == 0,
				      "posix_memalign");
				break;
			}
			CHECK(l->p != NULL, "allocation of %zu failed", n);
			l->size = n;
			fill(l);
			verify(l, n);
		}
		if (op % 20000 == 0)
			check_overlaps();
	}
	check_overlaps();
	for (size_t i = 0; i < SLOTS; i++) {
		if (tab[i].p) {
			verify(&tab[i], tab[i].size);
			md_free(tab[i].p);
			tab[i].p = NULL;
		}
	}
	md_malloc_trim(0);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("malloc_diff");
	TCase *tc = tcase_create("model");

	tcase_set_timeout(tc, 110);
	tcase_add_test(tc, test_diff);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
