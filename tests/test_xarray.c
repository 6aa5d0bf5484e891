/*
 * test_xarray: unit tests of every XArray function. Built twice: against the library
 * (64-slot nodes) and, as test_xarray_small, with the module compiled in with
 * XA_CHUNK_SHIFT=3 so that small indices already make deep trees.
 */
#include "mdt.h"
#include "test_xarray_hook.h"
#include "xarray_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define CHUNK ((unsigned long)XA_CHUNK_SIZE)

/*
 * For checks inside long loops: silent when it passes (in Check's fork mode every
 * passing ck_assert writes a checkpoint to a pipe).
 */
#define XCHECK(cond)                                                                   \
	do {                                                                           \
		if (!(cond))                                                           \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                  \
	} while (0)

/* Distinct, 4-byte aligned pointers that are never dereferenced. */
static void *ptr(unsigned long i)
{
	return (void *)(uintptr_t)(0x100000UL + i * 16);
}

static void check_valid(struct xarray *xa)
{
	ck_assert_int_eq(xa_verify(xa), 0);
}

/* The entries seen by xa_for_each, at most @max of them. */
static unsigned long collect(struct xarray *xa, unsigned long *idx, void **ent, unsigned long max)
{
	unsigned long index, n = 0;
	void *entry;

	xa_for_each(xa, index, entry) {
		XCHECK(n < max);
		idx[n] = index;
		ent[n] = entry;
		n++;
	}
	return n;
}

static unsigned long count_entries(struct xarray *xa)
{
	unsigned long index, n = 0;
	void *entry;

	xa_for_each(xa, index, entry)
		n++;
	return n;
}

START_TEST(test_empty)
{
	struct xarray st = XARRAY_INIT(st);
	struct xarray xa;
	unsigned long index = 0;

	xa_init(&xa);
	ck_assert(xa_empty(&st));
	ck_assert(xa_empty(&xa));
	ck_assert_ptr_null(xa_load(&xa, 0));
	ck_assert_ptr_null(xa_load(&xa, ULONG_MAX));
	ck_assert_ptr_null(xa_find(&xa, &index, ULONG_MAX, XA_PRESENT));
	ck_assert_ptr_null(xa_find_after(&xa, &index, ULONG_MAX, XA_PRESENT));
	ck_assert_ptr_null(xa_erase(&xa, 5));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	ck_assert(!xa_get_mark(&xa, 0, XA_MARK_0));
	check_valid(&xa);
	check_valid(&st);
	ck_assert_ptr_null(xa_store(&st, 7, ptr(7)));
	ck_assert_ptr_eq(xa_load(&st, 7), ptr(7));
	xa_destroy(&st);
	xa_destroy(&xa);
	ck_assert(xa_empty(&st));
}
END_TEST

START_TEST(test_store_load_erase)
{
	struct xarray xa;

	xa_init(&xa);
	ck_assert_ptr_null(xa_store(&xa, 0, ptr(0)));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);	/* index 0 lives in the head */
	ck_assert_ptr_eq(xa_load(&xa, 0), ptr(0));
	ck_assert_ptr_null(xa_load(&xa, 1));
	ck_assert_ptr_null(xa_store(&xa, 1, ptr(1)));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 1);
	ck_assert_ptr_eq(xa_store(&xa, 1, ptr(100)), ptr(1));
	ck_assert_ptr_eq(xa_load(&xa, 1), ptr(100));
	for (unsigned long i = 2; i < 5000; i += 3)
		ck_assert_ptr_null(xa_store(&xa, i, ptr(i)));
	check_valid(&xa);
	for (unsigned long i = 2; i < 5000; i++)
		XCHECK(xa_load(&xa, i) == (i % 3 == 2 ? ptr(i) : NULL));
	ck_assert_ptr_eq(xa_erase(&xa, 1), ptr(100));
	ck_assert_ptr_null(xa_erase(&xa, 1));
	for (unsigned long i = 2; i < 5000; i += 3)
		ck_assert_ptr_eq(xa_store(&xa, i, NULL), ptr(i));
	check_valid(&xa);
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);	/* shrunk back to the head entry */
	ck_assert_ptr_eq(xa_load(&xa, 0), ptr(0));
	ck_assert_ptr_eq(xa_erase(&xa, 0), ptr(0));
	ck_assert(xa_empty(&xa));
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_grow_shrink)
{
	struct xarray xa;

	xa_init(&xa);
	xa_store(&xa, 0, ptr(0));
	xa_store(&xa, ULONG_MAX, ptr(1));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 2 * XA_MAX_LEVELS - 1);
	check_valid(&xa);
	ck_assert_ptr_eq(xa_load(&xa, 0), ptr(0));
	ck_assert_ptr_eq(xa_load(&xa, ULONG_MAX), ptr(1));
	ck_assert_ptr_null(xa_load(&xa, ULONG_MAX - 1));
	ck_assert_ptr_null(xa_load(&xa, 1));
	ck_assert_ptr_eq(xa_erase(&xa, ULONG_MAX), ptr(1));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	check_valid(&xa);
	xa_store(&xa, CHUNK * CHUNK, ptr(2));
	/* The root, and two nodes on each of the paths to 0 and to CHUNK^2. */
	ck_assert_uint_eq(xa_nr_nodes(&xa), 5);
	ck_assert_ptr_eq(xa_erase(&xa, 0), ptr(0));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 3);	/* the root still spans CHUNK^2 */
	check_valid(&xa);
	xa_erase(&xa, CHUNK * CHUNK);
	ck_assert(xa_empty(&xa));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_value_entries)
{
	struct xarray xa;
	void *v = xa_mk_value(LONG_MAX);

	ck_assert(xa_is_value(v));
	ck_assert_uint_eq(xa_to_value(v), LONG_MAX);
	ck_assert_uint_eq(xa_to_value(xa_mk_value(0)), 0);
	ck_assert(xa_is_value(xa_mk_value(0)));
	ck_assert(!xa_is_value(ptr(1)));
	ck_assert(!xa_is_err(v));
	ck_assert_int_eq(xa_err(v), 0);
	xa_init(&xa);
	for (unsigned long i = 0; i < 300; i++)
		XCHECK(xa_store(&xa, i * 7, xa_mk_value(i)) == NULL);
	for (unsigned long i = 0; i < 300; i++) {
		void *e = xa_load(&xa, i * 7);

		XCHECK(xa_is_value(e) && xa_to_value(e) == i);
	}
	ck_assert_ptr_null(xa_store(&xa, ULONG_MAX, v));
	ck_assert_ptr_eq(xa_load(&xa, ULONG_MAX), v);
	check_valid(&xa);
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_errors_encoding)
{
	void *e = xa__mk_err(-ENOMEM);

	ck_assert(xa_is_err(e));
	ck_assert_int_eq(xa_err(e), -ENOMEM);
	ck_assert_int_eq(xa_err(xa__mk_err(-4095)), -4095);
	ck_assert(!xa_is_err(NULL));
	ck_assert(!xa_is_err(ptr(3)));
	ck_assert(!xa_is_err(xa__mk_sibling(3)));
	ck_assert(!xa_is_err((void *)(uintptr_t)0x7f0000001002UL));
	ck_assert_int_eq(xa_err(ptr(3)), 0);
}
END_TEST

START_TEST(test_invalid_entries)
{
	struct xarray xa;
	void *bad[] = { (void *)2, (void *)6, (void *)(uintptr_t)0x7f0000001002UL,
			xa__mk_err(-ENOMEM), xa__mk_sibling(1) };

	xa_init(&xa);
	xa_store(&xa, 5, ptr(5));
	xa_store_order(&xa, 64, 3, ptr(64));
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(xa_err(xa_store(&xa, 5, bad[i])), -EINVAL);
		ck_assert_int_eq(xa_err(xa_store(&xa, 9, bad[i])), -EINVAL);
		ck_assert_int_eq(xa_err(xa_store_order(&xa, 64, 3, bad[i])), -EINVAL);
		ck_assert_int_eq(xa_err(xa_store_range(&xa, 0, 100, bad[i])), -EINVAL);
		ck_assert_int_eq(xa_err(xa_cmpxchg(&xa, 5, ptr(5), bad[i])), -EINVAL);
		ck_assert_int_eq(xa_insert(&xa, 10, bad[i]), -EINVAL);
	}
	ck_assert_int_eq(xa_insert(&xa, 10, NULL), -EINVAL);
	ck_assert_int_eq(xa_err(xa_store_order(&xa, 0, 65, ptr(1))), -EINVAL);
	ck_assert_int_eq(xa_err(xa_store_range(&xa, 10, 9, ptr(1))), -EINVAL);
	ck_assert_ptr_eq(xa_load(&xa, 5), ptr(5));
	ck_assert_ptr_eq(xa_load(&xa, 71), ptr(64));
	ck_assert_ptr_null(xa_load(&xa, 9));
	ck_assert_ptr_null(xa_load(&xa, 10));
	ck_assert_uint_eq(count_entries(&xa), 2);
	/* Bad marks and filters do nothing. */
	xa_set_mark(&xa, 5, 3);
	xa_set_mark(&xa, 5, XA_PRESENT);
	ck_assert(!xa_get_mark(&xa, 5, 3));
	unsigned long index = 0;
	ck_assert_ptr_null(xa_find(&xa, &index, ULONG_MAX, 5));
	check_valid(&xa);
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_insert)
{
	struct xarray xa;

	xa_init(&xa);
	ck_assert_int_eq(xa_insert(&xa, 3, ptr(3)), 0);
	ck_assert_int_eq(xa_insert(&xa, 3, ptr(4)), -EBUSY);
	ck_assert_ptr_eq(xa_load(&xa, 3), ptr(3));
	ck_assert_int_eq(xa_insert(&xa, 0, ptr(0)), 0);
	ck_assert_int_eq(xa_insert(&xa, 0, ptr(1)), -EBUSY);
	ck_assert_ptr_null(xa_store_order(&xa, 1024, 9, ptr(9)));
	ck_assert_int_eq(xa_insert(&xa, 1024 + 300, ptr(1)), -EBUSY);
	ck_assert_int_eq(xa_insert(&xa, 1024 + 512, ptr(1)), 0);
	ck_assert_int_eq(xa_insert(&xa, ULONG_MAX, ptr(2)), 0);
	ck_assert_int_eq(xa_insert(&xa, ULONG_MAX, ptr(2)), -EBUSY);
	ck_assert_uint_eq(count_entries(&xa), 5);
	check_valid(&xa);
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_cmpxchg)
{
	struct xarray xa;

	xa_init(&xa);
	ck_assert_ptr_null(xa_cmpxchg(&xa, 12, NULL, ptr(1)));
	ck_assert_ptr_eq(xa_load(&xa, 12), ptr(1));
	ck_assert_ptr_eq(xa_cmpxchg(&xa, 12, ptr(2), ptr(3)), ptr(1));
	ck_assert_ptr_eq(xa_load(&xa, 12), ptr(1));
	ck_assert_ptr_eq(xa_cmpxchg(&xa, 12, ptr(1), ptr(3)), ptr(1));
	ck_assert_ptr_eq(xa_load(&xa, 12), ptr(3));
	ck_assert_ptr_eq(xa_cmpxchg(&xa, 12, ptr(3), NULL), ptr(3));
	ck_assert(xa_empty(&xa));
	/* On a multi-index entry: compared and replaced whole. */
	xa_store_order(&xa, 256, 8, ptr(8));
	ck_assert_ptr_eq(xa_cmpxchg(&xa, 300, ptr(8), ptr(9)), ptr(8));
	ck_assert_ptr_eq(xa_load(&xa, 256), ptr(9));
	ck_assert_ptr_eq(xa_load(&xa, 511), ptr(9));
	ck_assert_ptr_null(xa_load(&xa, 512));
	ck_assert_ptr_eq(xa_cmpxchg(&xa, 511, ptr(9), NULL), ptr(9));
	ck_assert_ptr_null(xa_load(&xa, 256));
	ck_assert(xa_empty(&xa));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	xa_destroy(&xa);
}
END_TEST

static void check_block(struct xarray *xa, unsigned long base, unsigned int order, void *entry)
{
	unsigned long last = base + xa__slot_mask(order);
	unsigned long step = order > 12 ? xa__slot_mask(order - 12) + 1 : 1;

	for (unsigned long i = base;; i += step) {
		XCHECK(xa_load(xa, i) == entry);
		if (last - i < step)
			break;
	}
	ck_assert_ptr_eq(xa_load(xa, last), entry);
	if (base)
		ck_assert_ptr_ne(xa_load(xa, base - 1), entry);
	if (last != ULONG_MAX)
		ck_assert_ptr_ne(xa_load(xa, last + 1), entry);
}

START_TEST(test_multi_index)
{
	struct xarray xa;

	xa_init(&xa);
	for (unsigned int order = 0; order <= XA_BITS_PER_LONG; order++) {
		unsigned long base = order >= 64 ? 0 : (1UL << order) * 3;
		unsigned long index, n = 0;
		void *entry;

		if (order >= 62)
			base = 0;
		ck_assert_ptr_null(xa_store_order(&xa, base, order, ptr(order)));
		check_block(&xa, base, order, ptr(order));
		check_valid(&xa);
		xa_for_each(&xa, index, entry) {
			ck_assert_ptr_eq(entry, ptr(order));
			ck_assert_uint_eq(index, base);
			n++;
		}
		ck_assert_uint_eq(n, 1);
		/* A store at an inner index replaces the whole entry. */
		ck_assert_ptr_eq(xa_store(&xa, xa__slot_mask(order) / 2 + base, ptr(200)),
				 ptr(order));
		check_block(&xa, base, order, ptr(200));
		/* An erase at the last index removes the whole entry. */
		ck_assert_ptr_eq(xa_erase(&xa, base + xa__slot_mask(order)), ptr(200));
		ck_assert(xa_empty(&xa));
		ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	}
	/* A block bigger than the entries under it replaces them all. */
	for (unsigned long i = 0; i < 100; i++)
		xa_store(&xa, 1000 + i, ptr(i));
	ck_assert_ptr_eq(xa_store_order(&xa, 1000, 12, ptr(12)), ptr(0));
	check_block(&xa, 0, 12, ptr(12));
	ck_assert_uint_eq(count_entries(&xa), 1);
	/* A smaller store inside it acts on the whole entry, which keeps its order. */
	ck_assert_ptr_eq(xa_store_order(&xa, 64, 2, ptr(2)), ptr(12));
	check_block(&xa, 0, 12, ptr(2));
	check_valid(&xa);
	xa_destroy(&xa);
}
END_TEST

/* Entries of [first, last] as blocks: index and entry pairs. */
static unsigned long range_pieces(unsigned long first, unsigned long last)
{
	unsigned long n = 0;

	for (;;) {
		unsigned int order = first ? (unsigned int)__builtin_ctzl(first) : 64;

		while (order && xa__slot_mask(order) > last - first)
			order--;
		n++;
		if (xa__slot_mask(order) >= last - first)
			return n;
		first += xa__slot_mask(order) + 1;
	}
}

START_TEST(test_store_range)
{
	static const unsigned long r[][2] = {
		{ 0, 0 }, { 0, 4095 }, { 4096, 8191 }, { 1, 1000 }, { 3, 77777 },
		{ 12345, 12345 }, { 1UL << 40, (1UL << 41) - 1 }, { 5, (1UL << 40) + 3 },
		{ ULONG_MAX - 100, ULONG_MAX }, { ULONG_MAX, ULONG_MAX },
		{ 1, ULONG_MAX - 1 }, { 0, ULONG_MAX },
	};
	struct xarray xa;

	xa_init(&xa);
	for (unsigned int t = 0; t < sizeof(r) / sizeof(r[0]); t++) {
		unsigned long first = r[t][0], last = r[t][1], index, n = 0, prev = 0;
		void *entry;

		ck_assert_ptr_null(xa_store_range(&xa, first, last, ptr(t)));
		check_valid(&xa);
		xa_for_each(&xa, index, entry) {
			XCHECK(entry == ptr(t));
			XCHECK(n == 0 || index > prev);
			XCHECK(index >= first && index <= last);
			prev = index;
			n++;
		}
		ck_assert_uint_eq(n, range_pieces(first, last));
		ck_assert_ptr_eq(xa_load(&xa, first), ptr(t));
		ck_assert_ptr_eq(xa_load(&xa, last), ptr(t));
		ck_assert_ptr_eq(xa_load(&xa, first + (last - first) / 2), ptr(t));
		if (first)
			ck_assert_ptr_null(xa_load(&xa, first - 1));
		if (last != ULONG_MAX)
			ck_assert_ptr_null(xa_load(&xa, last + 1));
		ck_assert_ptr_null(xa_store_range(&xa, first, last, NULL));
		ck_assert(xa_empty(&xa));
		ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	}
	/* An aligned range is one entry. */
	xa_store_range(&xa, 1UL << 20, (1UL << 21) - 1, ptr(1));
	ck_assert_uint_eq(count_entries(&xa), 1);
	ck_assert_uint_le(xa_nr_nodes(&xa), XA_MAX_LEVELS);
	/* A NULL range erases what is inside and, as a store, a larger entry it hits. */
	xa_store(&xa, 10, ptr(10));
	xa_store(&xa, 20, ptr(20));
	xa_store_range(&xa, 5, 15, NULL);
	ck_assert_ptr_null(xa_load(&xa, 10));
	ck_assert_ptr_eq(xa_load(&xa, 20), ptr(20));
	xa_store_range(&xa, (1UL << 20) + 7, (1UL << 20) + 8, NULL);
	ck_assert_ptr_null(xa_load(&xa, 1UL << 20));
	ck_assert_uint_eq(count_entries(&xa), 1);
	check_valid(&xa);
	xa_destroy(&xa);
}
END_TEST

/* The upper sentinel of test_store_range_two_nodes: the last index of the second node. */
#define TWO_TOP (2 * XA_CHUNK_SIZE - 1)

/* What test_store_range_two_nodes keeps outside its ranges: sentinels at 0 and TWO_TOP. */
static void *sentinel(unsigned long i)
{
	return i == 0 ? ptr(1000) : i == TWO_TOP ? ptr(1001) : NULL;
}

/* Every index of [@lo, @hi] loads @entry, and its neighbours their sentinel or NULL. */
static void check_span(struct xarray *xa, unsigned long lo, unsigned long hi, void *entry)
{
	for (unsigned long i = lo; i <= hi; i++)
		XCHECK(xa_load(xa, i) == entry);
	XCHECK(xa_load(xa, lo - 1) == sentinel(lo - 1));
	XCHECK(xa_load(xa, hi + 1) == sentinel(hi + 1));
}

/*
 * The ranges a page map stores most: a block that crosses the boundary of two bottom
 * nodes that exist (the store's fast path writes both nodes), stored over nothing,
 * replaced by an entry of the same extent, and erased; and, falling back to the general
 * path, a range whose pieces do not match the entries there. Every first index in the
 * lower node and every last index in the upper one that leave the sentinels at 0 and
 * TWO_TOP alone; the tree keeps its three nodes throughout.
 */
START_TEST(test_store_range_two_nodes)
{
	const unsigned long c = XA_CHUNK_SIZE;
	struct xarray xa;

	xa_init(&xa);
	xa_store(&xa, 0, ptr(1000));
	xa_store(&xa, TWO_TOP, ptr(1001));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 3);
	for (unsigned long first = 1; first < c; first++) {
		for (unsigned long last = c; last < TWO_TOP; last++) {
			XCHECK(xa_store_range(&xa, first, last, ptr(1)) == NULL);
			check_span(&xa, first, last, ptr(1));
			XCHECK(count_entries(&xa) == range_pieces(first, last) + 2);
			XCHECK(xa_store_range(&xa, first, last, ptr(2)) == NULL);
			check_span(&xa, first, last, ptr(2));
			XCHECK(xa_verify(&xa) == 0);
			XCHECK(xa_store_range(&xa, first, last, NULL) == NULL);
			check_span(&xa, first, last, NULL);
			XCHECK(count_entries(&xa) == 2);
			XCHECK(xa_nr_nodes(&xa) == 3);
		}
	}
	check_valid(&xa);
	/* Pieces that do not match: a range over part of another acts on what it hits. */
	xa_store_range(&xa, c / 4 + 1, c + c / 4, ptr(3));
	xa_store_range(&xa, c / 2, c + c / 2, ptr(4));
	check_valid(&xa);
	ck_assert_ptr_eq(xa_load(&xa, c + c / 2), ptr(4));
	ck_assert_ptr_null(xa_load(&xa, c + c / 2 + 1));
	ck_assert_ptr_eq(xa_load(&xa, TWO_TOP), ptr(1001));
	xa_store_range(&xa, 1, TWO_TOP - 1, NULL);
	ck_assert_uint_eq(count_entries(&xa), 2);
	check_valid(&xa);
	/* No node left (index 0 alone is the head entry): the general path makes them. */
	xa_store(&xa, TWO_TOP, NULL);
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	ck_assert_ptr_null(xa_store_range(&xa, c - 4, c + 5, ptr(5)));
	check_span(&xa, c - 4, c + 5, ptr(5));
	check_valid(&xa);
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_marks)
{
	struct xarray xa;
	unsigned long index;
	void *entry;
	unsigned long n;

	xa_init(&xa);
	/* The head entry. */
	xa_store(&xa, 0, ptr(0));
	xa_set_mark(&xa, 0, XA_MARK_1);
	ck_assert(xa_get_mark(&xa, 0, XA_MARK_1));
	ck_assert(!xa_get_mark(&xa, 0, XA_MARK_0));
	ck_assert(!xa_get_mark(&xa, 1, XA_MARK_1));
	/* Growing keeps it. */
	xa_store(&xa, 1000, ptr(1000));
	ck_assert(xa_get_mark(&xa, 0, XA_MARK_1));
	ck_assert(!xa_get_mark(&xa, 1000, XA_MARK_1));
	check_valid(&xa);
	/* Marks on an empty index do nothing. */
	xa_set_mark(&xa, 5, XA_MARK_0);
	ck_assert(!xa_get_mark(&xa, 5, XA_MARK_0));
	/* A multi-index entry is marked through any of its indices, found once. */
	xa_store_order(&xa, 4096, 9, ptr(9));
	xa_set_mark(&xa, 4096 + 300, XA_MARK_2);
	ck_assert(xa_get_mark(&xa, 4096, XA_MARK_2));
	ck_assert(xa_get_mark(&xa, 4096 + 511, XA_MARK_2));
	ck_assert(!xa_get_mark(&xa, 4096 + 512, XA_MARK_2));
	n = 0;
	xa_for_each_marked(&xa, index, entry, XA_MARK_2) {
		ck_assert_ptr_eq(entry, ptr(9));
		ck_assert_uint_eq(index, 4096);
		n++;
	}
	ck_assert_uint_eq(n, 1);
	index = 4096 + 100;
	ck_assert_ptr_eq(xa_find(&xa, &index, ULONG_MAX, XA_MARK_2), ptr(9));
	ck_assert_uint_eq(index, 4096 + 100);
	ck_assert_ptr_null(xa_find_after(&xa, &index, ULONG_MAX, XA_MARK_2));
	check_valid(&xa);
	/* A store keeps the marks, an erase clears them. */
	xa_store(&xa, 4096 + 5, ptr(10));
	ck_assert(xa_get_mark(&xa, 4096 + 500, XA_MARK_2));
	xa_clear_mark(&xa, 4096 + 511, XA_MARK_2);
	ck_assert(!xa_get_mark(&xa, 4096, XA_MARK_2));
	index = 0;
	ck_assert_ptr_null(xa_find(&xa, &index, ULONG_MAX, XA_MARK_2));
	xa_set_mark(&xa, 4096, XA_MARK_0);
	xa_erase(&xa, 4096 + 77);
	ck_assert_ptr_null(xa_load(&xa, 4096));
	xa_store_order(&xa, 4096, 9, ptr(9));
	ck_assert(!xa_get_mark(&xa, 4096, XA_MARK_0));
	/* A big store squashes the marks of what it replaces. */
	for (unsigned long i = 0; i < 64; i++)
		xa_store(&xa, (1UL << 20) + i * 3, ptr(i));
	xa_set_mark(&xa, (1UL << 20) + 30, XA_MARK_0);
	xa_store_order(&xa, 1UL << 20, 10, ptr(77));
	ck_assert(xa_get_mark(&xa, (1UL << 20) + 1023, XA_MARK_0));
	xa_clear_mark(&xa, (1UL << 20), XA_MARK_0);
	/* Many marks, iterated in order. */
	for (unsigned long i = 0; i < 2000; i++)
		xa_store(&xa, (1UL << 30) + i, ptr(i));
	for (unsigned long i = 0; i < 2000; i += 7)
		xa_set_mark(&xa, (1UL << 30) + i, XA_MARK_0);
	n = 0;
	xa_for_each_marked(&xa, index, entry, XA_MARK_0) {
		XCHECK(index == (1UL << 30) + n * 7);
		XCHECK(entry == ptr(n * 7));
		n++;
	}
	ck_assert_uint_eq(n, (2000 + 6) / 7);
	for (unsigned long i = 0; i < 2000; i += 7)
		xa_clear_mark(&xa, (1UL << 30) + i, XA_MARK_0);
	index = 0;
	ck_assert_ptr_null(xa_find(&xa, &index, ULONG_MAX, XA_MARK_0));
	check_valid(&xa);
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_find)
{
	struct xarray xa;
	unsigned long index;
	void *entry;

	xa_init(&xa);
	xa_store(&xa, 10, ptr(10));
	xa_store_order(&xa, 64, 6, ptr(64));	/* 64..127 */
	xa_store(&xa, 1UL << 40, ptr(40));
	xa_store(&xa, ULONG_MAX, ptr(99));

	index = 0;
	ck_assert_ptr_eq(xa_find(&xa, &index, ULONG_MAX, XA_PRESENT), ptr(10));
	ck_assert_uint_eq(index, 10);
	ck_assert_ptr_eq(xa_find_after(&xa, &index, ULONG_MAX, XA_PRESENT), ptr(64));
	ck_assert_uint_eq(index, 64);
	ck_assert_ptr_eq(xa_find_after(&xa, &index, ULONG_MAX, XA_PRESENT), ptr(40));
	ck_assert_uint_eq(index, 1UL << 40);
	ck_assert_ptr_eq(xa_find_after(&xa, &index, ULONG_MAX, XA_PRESENT), ptr(99));
	ck_assert_uint_eq(index, ULONG_MAX);
	ck_assert_ptr_null(xa_find_after(&xa, &index, ULONG_MAX, XA_PRESENT));
	ck_assert_uint_eq(index, ULONG_MAX);
	/* Inside a multi-index entry: found with the start index. */
	index = 100;
	ck_assert_ptr_eq(xa_find(&xa, &index, ULONG_MAX, XA_PRESENT), ptr(64));
	ck_assert_uint_eq(index, 100);
	ck_assert_ptr_eq(xa_find_after(&xa, &index, ULONG_MAX, XA_PRESENT), ptr(40));
	/* Bounds. */
	index = 11;
	ck_assert_ptr_null(xa_find(&xa, &index, 63, XA_PRESENT));
	ck_assert_uint_eq(index, 11);
	ck_assert_ptr_eq(xa_find(&xa, &index, 64, XA_PRESENT), ptr(64));
	index = 10;
	ck_assert_ptr_null(xa_find_after(&xa, &index, 63, XA_PRESENT));
	index = 20;
	ck_assert_ptr_null(xa_find(&xa, &index, 10, XA_PRESENT));
	/* Ranges. */
	unsigned long n = 0;
	xa_for_each_range(&xa, index, entry, 11, 1UL << 40) {
		ck_assert(n == 0 ? index == 64 : index == 1UL << 40);
		n++;
	}
	ck_assert_uint_eq(n, 2);
	n = 0;
	xa_for_each_range(&xa, index, entry, 70, 80) {
		ck_assert_uint_eq(index, 70);
		n++;
	}
	ck_assert_uint_eq(n, 1);
	n = 0;
	xa_for_each_range(&xa, index, entry, ULONG_MAX, ULONG_MAX)
		n++;
	ck_assert_uint_eq(n, 1);
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_iteration_order)
{
	static unsigned long idx[4096];
	static void *ent[4096];
	struct xarray xa;
	struct mdt_rng rng;
	unsigned long n, stored = 0;

	mdt_rng_init(&rng, 42);
	xa_init(&xa);
	for (unsigned long i = 0, ops = mdt_scaled(3000) < 300 ? 300 : mdt_scaled(3000); i < ops; i++) {
		unsigned long index = mdt_rng_next(&rng) >> (mdt_rng_below(&rng, 64));

		if (!xa_load(&xa, index))
			stored++;
		xa_store(&xa, index, xa_mk_value(index >> 1));
	}
	n = collect(&xa, idx, ent, 4096);
	ck_assert_uint_eq(n, stored);
	for (unsigned long i = 0; i < n; i++) {
		XCHECK(i == 0 || idx[i] > idx[i - 1]);
		XCHECK(ent[i] == xa_mk_value(idx[i] >> 1));
	}
	check_valid(&xa);
	for (unsigned long i = 0; i < n; i++)
		xa_erase(&xa, idx[i]);
	ck_assert(xa_empty(&xa));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_ulong_max)
{
	struct xarray xa;
	unsigned long index;

	xa_init(&xa);
	ck_assert_ptr_null(xa_store(&xa, ULONG_MAX, ptr(1)));
	ck_assert_ptr_null(xa_store(&xa, ULONG_MAX - 1, ptr(2)));
	ck_assert_ptr_eq(xa_load(&xa, ULONG_MAX), ptr(1));
	ck_assert_ptr_eq(xa_load(&xa, ULONG_MAX - 1), ptr(2));
	ck_assert_ptr_null(xa_load(&xa, ULONG_MAX - 2));
	index = ULONG_MAX - 1;
	ck_assert_ptr_eq(xa_find_after(&xa, &index, ULONG_MAX, XA_PRESENT), ptr(1));
	ck_assert_uint_eq(index, ULONG_MAX);
	ck_assert_ptr_null(xa_find_after(&xa, &index, ULONG_MAX, XA_PRESENT));
	xa_store_order(&xa, ULONG_MAX, 10, ptr(10));
	check_block(&xa, ULONG_MAX - 1023, 10, ptr(10));
	ck_assert_uint_eq(count_entries(&xa), 1);
	xa_set_mark(&xa, ULONG_MAX, XA_MARK_1);
	ck_assert(xa_get_mark(&xa, ULONG_MAX - 1023, XA_MARK_1));
	ck_assert_int_eq(xa_split(&xa, ULONG_MAX, 0), 0);
	ck_assert_uint_eq(count_entries(&xa), 1024);
	ck_assert(xa_get_mark(&xa, ULONG_MAX - 5, XA_MARK_1));
	check_valid(&xa);
	ck_assert_ptr_null(xa_store_range(&xa, ULONG_MAX - 1023, ULONG_MAX, NULL));
	ck_assert(xa_empty(&xa));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	xa_destroy(&xa);
}
END_TEST

START_TEST(test_split)
{
	struct xarray xa;
	unsigned long index, n;
	void *entry;

	xa_init(&xa);
	ck_assert_int_eq(xa_split(&xa, 0, 0), -EINVAL);
	xa_store(&xa, 5, ptr(5));
	ck_assert_int_eq(xa_split(&xa, 5, 0), -EINVAL);
	ck_assert_ptr_null(xa_store_order(&xa, 8192, 12, ptr(12)));
	ck_assert_int_eq(xa_split(&xa, 8192, 12), -EINVAL);
	ck_assert_int_eq(xa_split(&xa, 8192, 13), -EINVAL);
	xa_set_mark(&xa, 8192, XA_MARK_0);
	/* Down to order 0 (several levels). */
	ck_assert_int_eq(xa_split(&xa, 9000, 0), 0);
	check_valid(&xa);
	n = 0;
	xa_for_each_range(&xa, index, entry, 8192, 8192 + 4095) {
		XCHECK(index == 8192 + n);
		XCHECK(entry == ptr(12));
		n++;
	}
	ck_assert_uint_eq(n, 4096);
	n = 0;
	xa_for_each_marked(&xa, index, entry, XA_MARK_0)
		n++;
	ck_assert_uint_eq(n, 4096);
	ck_assert_ptr_eq(xa_erase(&xa, 8192 + 7), ptr(12));
	ck_assert_ptr_eq(xa_load(&xa, 8192 + 8), ptr(12));
	ck_assert_ptr_null(xa_store_range(&xa, 8192, 8192 + 4095, NULL));
	/* Order 5 into order 2 (within one node when XA_CHUNK_SHIFT is 6). */
	xa_store_order(&xa, 64 * 3, 5, ptr(55));
	ck_assert_int_eq(xa_split(&xa, 64 * 3 + 31, 2), 0);
	check_valid(&xa);
	n = 0;
	xa_for_each_range(&xa, index, entry, 64 * 3, 64 * 3 + 31) {
		ck_assert_uint_eq(index, 64 * 3 + 4 * n);
		n++;
	}
	ck_assert_uint_eq(n, 8);
	ck_assert_ptr_eq(xa_erase(&xa, 64 * 3 + 5), ptr(55));
	ck_assert_ptr_null(xa_load(&xa, 64 * 3 + 4));
	ck_assert_ptr_eq(xa_load(&xa, 64 * 3 + 8), ptr(55));
	/* Order 64 into order 60: one level, 16 or so entries. */
	xa_destroy(&xa);
	xa_store_order(&xa, 0, 64, ptr(64));
	ck_assert_int_eq(xa_split(&xa, 12345, 60), 0);
	ck_assert_uint_eq(count_entries(&xa), 16);
	check_valid(&xa);
	/* Too big a split fails cleanly. */
	ck_assert_int_eq(xa_split(&xa, 0, 0), -ENOMEM);
	ck_assert_uint_eq(count_entries(&xa), 16);
	check_valid(&xa);
	xa_destroy(&xa);
}
END_TEST

/* The whole content, to compare before and after a failed operation. */
struct snapshot {
	unsigned long n, nodes;
	unsigned long idx[256];
	void *ent[256];
	bool mark[256];
};

static void snap(struct xarray *xa, struct snapshot *s)
{
	s->n = collect(xa, s->idx, s->ent, 256);
	s->nodes = xa_nr_nodes(xa);
	for (unsigned long i = 0; i < s->n; i++)
		s->mark[i] = xa_get_mark(xa, s->idx[i], XA_MARK_0);
}

static void check_snap(struct xarray *xa, const struct snapshot *before)
{
	struct snapshot now;

	snap(xa, &now);
	ck_assert_uint_eq(now.n, before->n);
	ck_assert_uint_eq(now.nodes, before->nodes);
	for (unsigned long i = 0; i < now.n; i++) {
		ck_assert_uint_eq(now.idx[i], before->idx[i]);
		ck_assert_ptr_eq(now.ent[i], before->ent[i]);
		ck_assert_int_eq(now.mark[i], before->mark[i]);
	}
	check_valid(xa);
}

START_TEST(test_hook_failure)
{
	struct xat_hook hook;
	struct xarray xa;
	struct snapshot before;

	xat_hook_init(&hook);
	xa_init_ops(&xa, &hook.ops);
	xa_store(&xa, 0, ptr(0));
	xa_store(&xa, 70, ptr(70));
	xa_store_order(&xa, 4096, 12, ptr(12));
	xa_set_mark(&xa, 70, XA_MARK_0);
	snap(&xa, &before);
	hook.budget = 0;
	ck_assert_int_eq(xa_err(xa_store(&xa, ULONG_MAX, ptr(1))), -ENOMEM);
	check_snap(&xa, &before);
	ck_assert_int_eq(xa_err(xa_store(&xa, 1UL << 33, ptr(1))), -ENOMEM);
	ck_assert_int_eq(xa_err(xa_store_order(&xa, 1UL << 20, 3, ptr(1))), -ENOMEM);
	ck_assert_int_eq(xa_err(xa_store_range(&xa, 3, 1UL << 22, ptr(1))), -ENOMEM);
	ck_assert_int_eq(xa_insert(&xa, 1UL << 40, ptr(1)), -ENOMEM);
	ck_assert_int_eq(xa_err(xa_cmpxchg(&xa, 1UL << 40, NULL, ptr(1))), -ENOMEM);
	ck_assert_int_eq(xa_split(&xa, 4096, 0), -ENOMEM);
	check_snap(&xa, &before);
	/* Half the nodes available: still nothing changes. */
	hook.budget = 2;
	ck_assert_int_eq(xa_err(xa_store(&xa, ULONG_MAX, ptr(1))), -ENOMEM);
	check_snap(&xa, &before);
	/* What needs no node still works. */
	ck_assert_ptr_eq(xa_store(&xa, 70, ptr(71)), ptr(70));
	ck_assert_ptr_eq(xa_erase(&xa, 70), ptr(71));
	hook.budget = -1;
	ck_assert_int_eq(xa_split(&xa, 4096, 10), 0);
	ck_assert_ptr_eq(xa_store(&xa, 70, ptr(70)), NULL);
	ck_assert_ptr_null(xa_store(&xa, ULONG_MAX, ptr(1)));
	check_valid(&xa);
	xa_destroy(&xa);
	xat_rcu_barrier();
	ck_assert_int_eq(xat_hook_allocs(&hook), xat_hook_frees(&hook));
}
END_TEST

/*
 * A hook with its own deferral (xa_node_ops.defer, as memdesc's page map has): the
 * array hands it every detached chain instead of liburcu's call_rcu, and the nodes go
 * back only when the owner runs the callbacks.
 */
static struct {
	struct rcu_head *head[1024];
	void (*func[1024])(struct rcu_head *);
	int n;
} deferred;

static void defer_record(struct rcu_head *head, void (*func)(struct rcu_head *))
{
	ck_assert_int_lt(deferred.n, 1024);
	deferred.head[deferred.n] = head;
	deferred.func[deferred.n++] = func;
}

START_TEST(test_hook_defer)
{
	struct xat_hook hook;
	struct xarray xa;
	unsigned int reserve;
	long allocs;

	xat_hook_init(&hook);
	hook.ops.defer = defer_record;
	deferred.n = 0;
	xa_init_ops(&xa, &hook.ops);
	for (unsigned long i = 0; i < 4096; i += 7)
		ck_assert_ptr_null(xa_store(&xa, i << 10, ptr(i)));
	allocs = xat_hook_allocs(&hook);
	ck_assert_int_gt(allocs, 10);
	for (unsigned long i = 0; i < 2048; i += 7)
		ck_assert_ptr_eq(xa_erase(&xa, i << 10), ptr(i));
	ck_assert_int_eq(xat_hook_frees(&hook), 0);	/* detached nodes wait */
	reserve = xa.xa_nr_reserve;
	xa_destroy(&xa);
	/* The reserve goes back at once, the tree waits for the owner's callbacks. */
	ck_assert_int_eq(xat_hook_frees(&hook), (long)reserve);
	ck_assert_int_gt(deferred.n, 1);
	for (int k = 0; k < deferred.n; k++)
		deferred.func[k](deferred.head[k]);
	ck_assert_int_eq(xat_hook_allocs(&hook), xat_hook_frees(&hook));
}
END_TEST

START_TEST(test_reserve)
{
	struct xat_hook hook;
	struct xarray xa;

	xat_hook_init(&hook);
	xa_init_ops(&xa, &hook.ops);
	ck_assert_int_eq(xa_reserve(&xa, 5), 0);
	ck_assert_int_eq(xat_hook_allocs(&hook), 5);
	ck_assert_int_eq(xa_reserve(&xa, 3), 0);
	ck_assert_int_eq(xat_hook_allocs(&hook), 5);
	hook.budget = 0;
	ck_assert_int_eq(xa_reserve(&xa, 6), -ENOMEM);
	ck_assert_int_eq(xa_reserve(&xa, 5), 0);
	/* The worst case for one store, from the reserve alone. */
	ck_assert_ptr_null(xa_store(&xa, 0, ptr(0)));
	hook.budget = -1;
	ck_assert_int_eq(xa_reserve(&xa, xa_store_max_nodes(0)), 0);
	hook.budget = 0;
	ck_assert_ptr_null(xa_store(&xa, ULONG_MAX, ptr(1)));
	ck_assert_uint_eq(xa_nr_nodes(&xa), xa_store_max_nodes(0));
	check_valid(&xa);
	xa_destroy(&xa);
	hook.budget = -1;
	for (unsigned int order = 0; order <= 64; order++) {
		ck_assert_ptr_null(xa_store(&xa, 0, ptr(0)));
		ck_assert_int_eq(xa_reserve(&xa, xa_store_max_nodes(order)), 0);
		hook.budget = 0;
		ck_assert_ptr_null(xa_store_order(&xa, ULONG_MAX, order, ptr(1)));
		check_valid(&xa);
		hook.budget = -1;
		xa_destroy(&xa);
	}
	ck_assert_uint_eq(xa_store_max_nodes(65), 0);
	xat_rcu_barrier();
	ck_assert_int_eq(xat_hook_allocs(&hook), xat_hook_frees(&hook));
}
END_TEST

START_TEST(test_memory)
{
	struct xat_hook hook;
	struct xarray xa;
	struct mdt_rng rng;

	unsigned long n = mdt_scaled(20000) < 1000 ? 1000 : mdt_scaled(20000);

	xat_hook_init(&hook);
	xa_init_ops(&xa, &hook.ops);
	mdt_rng_init(&rng, 7);
	for (unsigned long i = 0; i < n; i++)
		xa_store(&xa, i * 13, ptr(i));
	xa_store_range(&xa, 1UL << 50, (1UL << 50) + 100000, ptr(1));
	xa_store_order(&xa, ULONG_MAX, 20, ptr(2));
	ck_assert_int_eq(xa_split(&xa, ULONG_MAX, 6), 0);
	check_valid(&xa);
	ck_assert_uint_gt(xa_nr_nodes(&xa), n * 13 / CHUNK / 2);
	for (unsigned long i = 0; i < n; i++)
		XCHECK(xa_erase(&xa, i * 13) == ptr(i));
	xa_store_range(&xa, 1UL << 50, (1UL << 50) + 100000, NULL);
	xa_store_range(&xa, ULONG_MAX - (1UL << 20) + 1, ULONG_MAX, NULL);
	ck_assert(xa_empty(&xa));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	check_valid(&xa);
	xat_rcu_barrier();
	/* Only the reserve is left. */
	ck_assert_int_eq(xat_hook_allocs(&hook) - xat_hook_frees(&hook), xa.xa_nr_reserve);
	/* And destroy frees the tree and the reserve. */
	for (unsigned long i = 0; i < n / 4; i++)
		xa_store(&xa, mdt_rng_next(&rng), ptr(i));
	xa_destroy(&xa);
	ck_assert(xa_empty(&xa));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	xat_rcu_barrier();
	ck_assert_int_eq(xat_hook_allocs(&hook), xat_hook_frees(&hook));
}
END_TEST

/* A hook that checks it is never called with the array's lock held. */
static struct xarray *probe_xa;
static long probe_calls, probe_violations;

static void *probe_alloc(void *priv)
{
	(void)priv;
	probe_calls++;
	if (pthread_mutex_trylock(&probe_xa->xa_lock) != 0)
		probe_violations++;
	else
		pthread_mutex_unlock(&probe_xa->xa_lock);
	return aligned_alloc(XA_NODE_ALIGN, (xa_node_size() + XA_NODE_ALIGN - 1) &
				   ~(size_t)(XA_NODE_ALIGN - 1));
}

static void probe_free(void *priv, void *node)
{
	(void)priv;
	free(node);
}

START_TEST(test_hook_unlocked)
{
	static const struct xa_node_ops ops = { .alloc = probe_alloc, .free = probe_free };
	struct xarray xa;

	xa_init_ops(&xa, &ops);
	probe_xa = &xa;
	probe_calls = probe_violations = 0;
	xa_store(&xa, 1, ptr(1));
	xa_store(&xa, ULONG_MAX, ptr(2));
	ck_assert_int_eq(xa_insert(&xa, 1UL << 33, ptr(3)), 0);
	ck_assert_ptr_null(xa_cmpxchg(&xa, 1UL << 45, NULL, ptr(4)));
	xa_store_range(&xa, 5, 1UL << 40, ptr(5));
	xa_store_order(&xa, 1UL << 50, 20, ptr(6));
	ck_assert_int_eq(xa_split(&xa, 1UL << 50, 3), 0);
	ck_assert_int_eq(xa_reserve(&xa, 100), 0);
	ck_assert_int_gt(probe_calls, 100);
	ck_assert_int_eq(probe_violations, 0);
	check_valid(&xa);
	xa_destroy(&xa);
	xat_rcu_barrier();
}
END_TEST

static Suite *xarray_suite(void)
{
	Suite *s = suite_create(XA_CHUNK_SHIFT == 6 ? "xarray" : "xarray_small");
	TCase *tc = tcase_create("unit");

	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_store_load_erase);
	tcase_add_test(tc, test_grow_shrink);
	tcase_add_test(tc, test_value_entries);
	tcase_add_test(tc, test_errors_encoding);
	tcase_add_test(tc, test_invalid_entries);
	tcase_add_test(tc, test_insert);
	tcase_add_test(tc, test_cmpxchg);
	tcase_add_test(tc, test_multi_index);
	tcase_add_test(tc, test_store_range);
	tcase_add_test(tc, test_store_range_two_nodes);
	tcase_add_test(tc, test_marks);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_iteration_order);
	tcase_add_test(tc, test_ulong_max);
	tcase_add_test(tc, test_split);
	tcase_add_test(tc, test_hook_failure);
	tcase_add_test(tc, test_reserve);
	tcase_add_test(tc, test_hook_unlocked);
	tcase_add_test(tc, test_hook_defer);
	tcase_add_test(tc, test_memory);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return mdt_run(xarray_suite());
}
