/*
 * test_xarray_stress: writers change the array while readers load, search and iterate
 * it without a lock. Built to run clean under TSan and ASan.
 *
 * Each writer owns a region of REGION indices (one at the bottom of the index space,
 * one at the top, so that the tree is as tall as it gets and both writers share the
 * root and the lock). Every entry is a value entry that encodes a range [lo, hi] of its
 * region and a generation: the writer keeps each entry's actual extent inside the range
 * it encodes (splits keep the range of the entry they split; every other store encodes
 * exactly what it covers), and takes each generation from a counter that only grows.
 * So a reader may check, without knowing anything else:
 *   - an entry found at index i encodes a range that contains i (a reader never sees
 *     a torn, misplaced or freed entry);
 *   - at one index, generations never go back (a reader sees the old entry or a newer
 *     one, never an older one after a newer);
 *   - iteration returns ascending indices, each inside its entry's range.
 * Nothing sleeps and nothing is timed: readers run until the writers are done.
 */
#include "mdt.h"
#include "test_xarray_hook.h"
#include "xarray.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <urcu/urcu-bp.h>

#define REGION 4096UL	/* indices per writer: 12 bits */
#define NWRITERS 2
#define NREADERS 2

static struct xarray xa;
static struct xat_hook hook;
static int writers_done;

#define FAIL(...)                                                                      \
	do {                                                                           \
		fprintf(stderr, __VA_ARGS__);                                          \
		fputc('\n', stderr);                                                   \
		abort();                                                               \
	} while (0)

static unsigned long region_base(unsigned int region)
{
	return region == 0 ? 0 : ULONG_MAX - REGION + 1;
}

/* Entry: generation (38 bits) | region (1) | lo offset (12) | hi offset (12). */
static void *encode(unsigned int region, unsigned long lo, unsigned long hi, unsigned long gen)
{
	unsigned long base = region_base(region);

	return xa_mk_value(gen << 25 | (unsigned long)region << 24 | (lo - base) << 12 |
			   (hi - base));
}

struct decoded {
	unsigned long lo, hi, gen;
};

static struct decoded decode(const void *entry)
{
	unsigned long v = xa_to_value(entry);
	unsigned long base = region_base((v >> 24) & 1);

	return (struct decoded){ base + ((v >> 12) & 0xfff), base + (v & 0xfff), v >> 25 };
}

static void check_entry(unsigned long index, const void *entry)
{
	struct decoded d;

	if (!xa_is_value(entry))
		FAIL("index %#lx: %p is not one of ours", index, entry);
	d = decode(entry);
	if (index < d.lo || index > d.hi)
		FAIL("index %#lx: entry for %#lx..%#lx (gen %lu)", index, d.lo, d.hi, d.gen);
}

/* ---- writers ------------------------------------------------------------------ */

struct writer {
	pthread_t thread;
	unsigned int region;
	uint64_t seed;
	unsigned long gen;
	unsigned long ops;
	struct mdt_rng rng;
};

static unsigned long wrnd(struct writer *w, unsigned long bound)
{
	return mdt_rng_below(&w->rng, bound);
}

static void *next_entry(struct writer *w, unsigned long lo, unsigned long hi)
{
	return encode(w->region, lo, hi, ++w->gen);
}

/* Store an exact entry over the aligned block [base, base + 2^order). */
static void writer_store_block(struct writer *w, unsigned long base, unsigned int order)
{
	unsigned long last = base + (1UL << order) - 1;
	void *cur = xa_load(&xa, base);
	void *old;

	if (cur) {
		struct decoded d = decode(cur);

		/* The entry there may be larger than the block: empty the block first
		 * (which erases that whole entry). */
		if (d.lo < base || d.hi > last)
			xa_store_order(&xa, base, order, NULL);
	}
	old = xa_store_order(&xa, base, order, next_entry(w, base, last));
	if (xa_is_err(old))
		FAIL("store_order: error %d", xa_err(old));
}

static void writer_step(struct writer *w)
{
	unsigned long base = region_base(w->region);
	unsigned long index = base + wrnd(w, REGION);
	unsigned long r = wrnd(w, 100);
	void *cur = xa_load(&xa, index);

	if (r < 30) {
		unsigned int order = (unsigned int)wrnd(w, 11);

		writer_store_block(w, index & ~((1UL << order) - 1), order);
	} else if (r < 50) {
		xa_erase(&xa, index);
	} else if (r < 60) {
		/* A store at an index acts on the whole entry: keep its range. */
		struct decoded d = cur ? decode(cur) : (struct decoded){ index, index, 0 };
		void *old = xa_store(&xa, index, next_entry(w, d.lo, d.hi));

		if (old != cur)
			FAIL("store(%#lx) returned %p, expected %p", index, old, cur);
	} else if (r < 68) {
		struct decoded d = cur ? decode(cur) : (struct decoded){ index, index, 0 };
		void *got = xa_cmpxchg(&xa, index, cur, next_entry(w, d.lo, d.hi));

		if (got != cur)
			FAIL("cmpxchg(%#lx) returned %p, expected %p", index, got, cur);
	} else if (r < 74) {
		int err = xa_insert(&xa, index, next_entry(w, index, index));

		if (err != (cur ? -EBUSY : 0))
			FAIL("insert(%#lx) = %d with %p there", index, err, cur);
	} else if (r < 82) {
		int err = xa_split(&xa, index, (unsigned int)wrnd(w, 6));

		if (err && err != -EINVAL)
			FAIL("split(%#lx) = %d", index, err);
	} else if (r < 88) {
		unsigned long last = index + wrnd(w, 300);

		if (last >= base + REGION)
			last = base + REGION - 1;
		xa_store_range(&xa, index, last, NULL);
		if (wrnd(w, 2) && xa_is_err(xa_store_range(&xa, index, last,
							  next_entry(w, index, last))))
			FAIL("store_range failed");
	} else if (r < 95) {
		xa_set_mark(&xa, index, (xa_mark_t)wrnd(w, 3));
	} else {
		xa_clear_mark(&xa, index, (xa_mark_t)wrnd(w, 3));
	}
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	mdt_rng_init(&w->rng, w->seed);
	for (unsigned long i = 0; i < w->ops; i++)
		writer_step(w);
	return NULL;
}

/* ---- readers ------------------------------------------------------------------ */

struct reader {
	pthread_t thread;
	uint64_t seed;
	struct mdt_rng rng;
	unsigned long loads, walks;
	unsigned long last_gen[NWRITERS][REGION];	/* newest generation seen per index */
};

static void reader_load(struct reader *rd)
{
	unsigned int region = (unsigned int)mdt_rng_below(&rd->rng, NWRITERS);
	unsigned long off = mdt_rng_below(&rd->rng, REGION);
	unsigned long index = region_base(region) + off;
	void *entry = xa_load(&xa, index);

	rd->loads++;
	if (!entry)
		return;
	check_entry(index, entry);
	if (decode(entry).gen < rd->last_gen[region][off])
		FAIL("index %#lx: generation %lu after %lu", index, decode(entry).gen,
		     rd->last_gen[region][off]);
	rd->last_gen[region][off] = decode(entry).gen;
}

static void reader_walk(struct reader *rd)
{
	unsigned int region = (unsigned int)mdt_rng_below(&rd->rng, NWRITERS);
	unsigned long first = region_base(region), last = first + REGION - 1;
	unsigned long index, prev = 0;
	unsigned long r = mdt_rng_below(&rd->rng, 4);
	bool any = false;
	void *entry;

	rd->walks++;
	if (r == 3) {
		xa_for_each_range(&xa, index, entry, first, last) {
			check_entry(index, entry);
			if (any && index <= prev)
				FAIL("iteration went from %#lx to %#lx", prev, index);
			prev = index;
			any = true;
		}
		return;
	}
	xa_for_each_marked(&xa, index, entry, (xa_mark_t)r) {
		check_entry(index, entry);
		if (any && index <= prev)
			FAIL("marked iteration went from %#lx to %#lx", prev, index);
		prev = index;
		any = true;
		(void)xa_get_mark(&xa, index, (xa_mark_t)r);
	}
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;

	mdt_rng_init(&rd->rng, rd->seed);
	while (!__atomic_load_n(&writers_done, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < 64; i++)
			reader_load(rd);
		reader_walk(rd);
	}
	return NULL;
}

START_TEST(test_stress)
{
	uint64_t seed = mdt_seed(7070);
	static struct writer writers[NWRITERS];
	static struct reader readers[NREADERS];
	unsigned long loads = 0, walks = 0;

	xat_hook_init(&hook);
	xa_init_ops(&xa, &hook.ops);
	for (unsigned int i = 0; i < NREADERS; i++) {
		readers[i] = (struct reader){ .seed = seed * 31 + 100 + i };
		ck_assert_int_eq(pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]), 0);
	}
	for (unsigned int i = 0; i < NWRITERS; i++) {
		writers[i] = (struct writer){ .region = i, .seed = seed * 31 + i,
					      .ops = mdt_scaled(200000) };
		ck_assert_int_eq(pthread_create(&writers[i].thread, NULL, writer_main, &writers[i]), 0);
	}
	for (unsigned int i = 0; i < NWRITERS; i++)
		pthread_join(writers[i].thread, NULL);
	__atomic_store_n(&writers_done, 1, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < NREADERS; i++) {
		pthread_join(readers[i].thread, NULL);
		loads += readers[i].loads;
		walks += readers[i].walks;
	}
	fprintf(stderr, "test_xarray_stress: %lu writes, %lu loads, %lu walks\n",
		NWRITERS * writers[0].ops, loads, walks);
	ck_assert_int_eq(xa_verify(&xa), 0);
	/* Every entry still encodes a range around its index. */
	unsigned long index;
	void *entry;
	xa_for_each(&xa, index, entry)
		check_entry(index, entry);
	xa_store_range(&xa, 0, ULONG_MAX, NULL);
	ck_assert(xa_empty(&xa));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	xa_destroy(&xa);
	xat_rcu_barrier();
	ck_assert_int_eq(xat_hook_allocs(&hook), xat_hook_frees(&hook));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xarray_stress");
	TCase *tc = tcase_create("stress");

	tcase_set_timeout(tc, 0);
	tcase_add_test(tc, test_stress);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
