/*
 * test_xarray_diff: the XArray against a reference model, over a seeded random
 * sequence of mdt_scaled(1000000) operations: store, erase, insert, cmpxchg,
 * store_order, store_range, split, set/clear mark, find and find_after, some of them
 * with the node hook failing (the array must then be unchanged).
 *
 * The model is a sorted array of disjoint extents [start, last] with an entry and its
 * marks: one per (multi-index) entry, so it is independent of how the tree stores
 * them. Indices come from three windows (low, around 2^32, just below ULONG_MAX), and
 * some stores are large enough to cover windows and the space between them. After
 * every operation the affected indices are compared; every CHECK_EVERY operations the
 * whole array is compared (iteration, marked iteration) and xa_verify() runs.
 * The seed is printed; MDT_SEED=<seed> replays a run, MDT_SCALE scales it.
 */
#include "mdt.h"
#include "test_xarray_hook.h"
#include "xarray_impl.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 512UL
#define CHECK_EVERY 2000UL
#define MAX_EXTENTS 65536

struct extent {
	unsigned long start, last;
	void *entry;
	unsigned int marks;	/* bit m: mark m */
};

static struct model {
	struct extent e[MAX_EXTENTS];
	unsigned long n;
} model;

static unsigned long opno;
static unsigned long trace_from = ULONG_MAX;

/* XA_DIFF_TRACE_FROM=<op>: print every operation from that one on. */
#define TRACE(...)                                                                     \
	do {                                                                           \
		if (opno >= trace_from) {                                              \
			fprintf(stderr, "op %lu: ", opno);                                     \
			fprintf(stderr, __VA_ARGS__);                                          \
			fputc('\n', stderr);                                           \
		}                                                                      \
	} while (0)

/*
 * Like ck_assert_msg, but silent when it passes: in Check's fork mode every passing
 * ck_assert writes a checkpoint to a pipe, a system call per check.
 */
#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			snprintf(msgbuf, sizeof(msgbuf), __VA_ARGS__);                         \
			ck_abort_msg("op %lu: %s", opno, msgbuf);                              \
		}                                                                      \
	} while (0)
static char msgbuf[256];

/* ---- the model ---------------------------------------------------------------- */

/* The first extent with last >= index (model.n if none). */
static unsigned long model_lower(unsigned long index)
{
	unsigned long lo = 0, hi = model.n;

	while (lo < hi) {
		unsigned long mid = lo + (hi - lo) / 2;

		if (model.e[mid].last < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The extent covering @index, or NULL. */
static struct extent *model_at(unsigned long index)
{
	unsigned long i = model_lower(index);

	if (i < model.n && model.e[i].start <= index)
		return &model.e[i];
	return NULL;
}

static void *model_load(unsigned long index)
{
	struct extent *x = model_at(index);

	return x ? x->entry : NULL;
}

static void model_remove(unsigned long i, unsigned long count)
{
	memmove(&model.e[i], &model.e[i + count], (model.n - i - count) * sizeof(model.e[0]));
	model.n -= count;
}

static void model_insert(unsigned long i, struct extent x)
{
	CHECK(model.n < MAX_EXTENTS, "model full");
	memmove(&model.e[i + 1], &model.e[i], (model.n - i) * sizeof(model.e[0]));
	model.e[i] = x;
	model.n++;
}

static unsigned long mask_of(unsigned int order)
{
	return order >= 64 ? ULONG_MAX : (1UL << order) - 1;
}

/* A store of the aligned block [base, base + 2^order) as xa_store_order defines it. */
static void model_store_block(unsigned long base, unsigned int order, void *entry)
{
	unsigned long last = base + mask_of(order);
	unsigned long i = model_lower(base), j;
	unsigned int marks = 0;
	struct extent *x = i < model.n ? &model.e[i] : NULL;

	if (x && x->start <= base && x->last >= last &&
	    (x->start < base || x->last > last)) {
		/* Inside a larger entry: acts on it. */
		if (entry)
			x->entry = entry;
		else
			model_remove(i, 1);
		return;
	}
	for (j = i; j < model.n && model.e[j].start <= last; j++) {
		CHECK(model.e[j].start >= base && model.e[j].last <= last,
		      "model: extent %#lx..%#lx across block %#lx..%#lx", model.e[j].start,
		      model.e[j].last, base, last);
		marks |= model.e[j].marks;
	}
	model_remove(i, j - i);
	if (entry)
		model_insert(i, (struct extent){ base, last, entry, marks });
}

static unsigned int piece_order(unsigned long cur, unsigned long last)
{
	unsigned int order = cur ? (unsigned int)__builtin_ctzl(cur) : 64;

	while (order && mask_of(order) > last - cur)
		order--;
	return order;
}

static void model_store_range(unsigned long first, unsigned long last, void *entry)
{
	for (;;) {
		unsigned int order = piece_order(first, last);

		model_store_block(first, order, entry);
		if (mask_of(order) >= last - first)
			return;
		first += mask_of(order) + 1;
	}
}

static unsigned int extent_order(const struct extent *x)
{
	unsigned long size_mask = x->last - x->start;

	return size_mask == ULONG_MAX ? 64 : (unsigned int)__builtin_ctzl(size_mask + 1);
}

static void model_split(struct extent *x, unsigned int new_order)
{
	struct extent old = *x;
	unsigned long i = (unsigned long)(x - model.e);
	unsigned long step = mask_of(new_order) + 1;

	model_remove(i, 1);
	for (unsigned long s = old.start;; s += step, i++) {
		model_insert(i, (struct extent){ s, s + step - 1, old.entry, old.marks });
		if (s + step - 1 == old.last)
			break;
	}
}

/* The first extent passing @filter that meets [index, max]. */
static struct extent *model_find(unsigned long index, unsigned long max, xa_mark_t filter)
{
	for (unsigned long i = model_lower(index); i < model.n; i++) {
		struct extent *x = &model.e[i];

		if (x->start > max)
			return NULL;
		if (filter == XA_PRESENT || (x->marks >> filter) & 1U)
			return x;
	}
	return NULL;
}

/* ---- the random operations ---------------------------------------------------- */

static struct mdt_rng rng;
static struct xarray xa;
static struct xat_hook hook;
static unsigned long next_value = 1;

static unsigned long rnd(unsigned long bound)
{
	return mdt_rng_below(&rng, bound);
}

static unsigned long window_base(unsigned int w)
{
	return w == 0 ? 0 : w == 1 ? 1UL << 32 : ULONG_MAX - WINDOW + 1;
}

static unsigned long rnd_index(void)
{
	return window_base((unsigned int)rnd(3)) + rnd(WINDOW);
}

static void *new_entry(void)
{
	unsigned long v = next_value++;

	if (v & 1)
		return xa_mk_value(v);
	return (void *)(uintptr_t)((v + 0x1000) << 4);
}

static void *rnd_entry(unsigned int null_percent)
{
	return rnd(100) < null_percent ? NULL : new_entry();
}

static unsigned int rnd_order(void)
{
	static const unsigned int big[] = { 12, 20, 32, 48, 63, 64 };
	unsigned long r = rnd(1000);

	if (r < 700)
		return (unsigned int)rnd(7);
	if (r < 990)
		return 7 + (unsigned int)rnd(3);
	return big[rnd(sizeof(big) / sizeof(big[0]))];
}

/* Compare one index: entry and marks. */
static void check_index(unsigned long index)
{
	struct extent *x = model_at(index);
	void *entry = xa_load(&xa, index);

	CHECK(entry == (x ? x->entry : NULL), "load(%#lx) = %p, model %p", index, entry,
	      x ? x->entry : NULL);
	for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++) {
		bool want = x && ((x->marks >> m) & 1U);

		CHECK(xa_get_mark(&xa, index, m) == want, "get_mark(%#lx, %u) != %d", index, m,
		      want);
	}
}

/* Compare around an index: it, its neighbours, and the ends of its extent. */
static void check_around(unsigned long index)
{
	struct extent *x = model_at(index);

	check_index(index);
	if (index)
		check_index(index - 1);
	if (index != ULONG_MAX)
		check_index(index + 1);
	if (x) {
		unsigned long start = x->start, last = x->last;

		check_index(start);
		check_index(last);
		if (start)
			check_index(start - 1);
		if (last != ULONG_MAX)
			check_index(last + 1);
	}
}

/* The whole array: iteration, each mark, and the invariants. */
static void check_all(void)
{
	unsigned long index, i = 0;
	void *entry;

	xa_for_each(&xa, index, entry) {
		CHECK(i < model.n, "iteration found %#lx beyond the model's %lu extents", index,
		      model.n);
		CHECK(index == model.e[i].start && entry == model.e[i].entry,
		      "iteration %lu: %#lx %p, model %#lx %p", i, index, entry, model.e[i].start,
		      model.e[i].entry);
		i++;
	}
	CHECK(i == model.n, "iteration found %lu entries, model %lu", i, model.n);
	for (xa_mark_t m = 0; m < XA_MAX_MARKS; m++) {
		unsigned long k = 0;

		xa_for_each_marked(&xa, index, entry, m) {
			while (k < model.n && !((model.e[k].marks >> m) & 1U))
				k++;
			CHECK(k < model.n && index == model.e[k].start, "mark %u iteration at %#lx",
			      m, index);
			k++;
		}
		while (k < model.n && !((model.e[k].marks >> m) & 1U))
			k++;
		CHECK(k == model.n, "mark %u iteration ended early", m);
	}
	CHECK(xa_verify(&xa) == 0, "xa_verify failed");
	CHECK((xa_nr_nodes(&xa) == 0) == (model.n == 0 || (model.n == 1 &&
		model.e[0].start == 0 && model.e[0].last == 0)), "xa_nr_nodes %lu with %lu extents",
	      xa_nr_nodes(&xa), model.n);
}

/* Maybe make the hook fail for the next operation. */
static bool arm_failure(void)
{
	if (rnd(100) >= 3)
		return false;
	hook.budget = (long)rnd(3);
	return true;
}

static void disarm(void)
{
	hook.budget = -1;
}

static void op_store(void)
{
	unsigned long index = rnd_index();
	void *entry = rnd_entry(10);
	void *want = model_load(index);
	bool armed = arm_failure();
	void *old;

	TRACE("store(%#lx, %p)%s", index, entry, armed ? " armed" : "");
	old = xa_store(&xa, index, entry);

	disarm();
	if (armed && xa_is_err(old)) {
		CHECK(xa_err(old) == -ENOMEM, "store: error %d", xa_err(old));
	} else {
		CHECK(old == want, "store(%#lx) returned %p, model %p", index, old, want);
		model_store_block(index, 0, entry);
	}
	check_around(index);
}

static void op_erase(void)
{
	unsigned long index = rnd_index();
	void *want = model_load(index);
	void *old;

	TRACE("erase(%#lx)", index);
	old = xa_erase(&xa, index);

	CHECK(old == want, "erase(%#lx) returned %p, model %p", index, old, want);
	model_store_block(index, 0, NULL);
	check_around(index);
}

static void op_insert(void)
{
	unsigned long index = rnd_index();
	void *entry = new_entry();
	bool busy = model_load(index) != NULL;
	bool armed = arm_failure();
	int err;

	TRACE("insert(%#lx, %p)%s", index, entry, armed ? " armed" : "");
	err = xa_insert(&xa, index, entry);

	disarm();
	if (busy) {
		CHECK(err == -EBUSY, "insert(%#lx) = %d on an entry", index, err);
	} else if (armed && err == -ENOMEM) {
		/* nothing changed */
	} else {
		CHECK(err == 0, "insert(%#lx) = %d", index, err);
		model_store_block(index, 0, entry);
	}
	check_around(index);
}

static void op_cmpxchg(void)
{
	unsigned long index = rnd_index();
	void *cur = model_load(index);
	void *old = rnd(2) ? cur : rnd_entry(50);
	void *entry = rnd_entry(20);
	bool armed = arm_failure();
	void *got;

	TRACE("cmpxchg(%#lx, %p, %p)%s", index, old, entry, armed ? " armed" : "");
	got = xa_cmpxchg(&xa, index, old, entry);

	disarm();
	if (armed && xa_is_err(got)) {
		CHECK(xa_err(got) == -ENOMEM, "cmpxchg: error %d", xa_err(got));
	} else {
		CHECK(got == cur, "cmpxchg(%#lx) returned %p, model %p", index, got, cur);
		if (cur == old)
			model_store_block(index, 0, entry);
	}
	check_around(index);
}

static void op_store_order(void)
{
	unsigned long index = rnd_index();
	unsigned int order = rnd_order();
	void *entry = rnd_entry(20);
	void *want = model_load(index);
	bool armed = arm_failure();
	unsigned long base = index & ~mask_of(order);
	void *old;

	TRACE("store_order(%#lx, %u, %p)%s", index, order, entry, armed ? " armed" : "");
	old = xa_store_order(&xa, index, order, entry);

	disarm();
	if (armed && xa_is_err(old)) {
		CHECK(xa_err(old) == -ENOMEM, "store_order: error %d", xa_err(old));
	} else {
		CHECK(old == want, "store_order(%#lx, %u) returned %p, model %p", index, order, old,
		      want);
		model_store_block(base, order, entry);
	}
	check_around(index);
	check_around(base);
	check_around(base + mask_of(order));
	check_index(base + rnd(mask_of(order) > WINDOW ? WINDOW : mask_of(order) + 1));
}

static void op_store_range(void)
{
	unsigned long a = rnd_index(), b = rnd(5) ? a + rnd(WINDOW) : rnd_index();
	unsigned long first = a < b ? a : b, last = a < b ? b : a;
	void *entry = rnd_entry(30);
	bool armed = arm_failure();
	void *ret;

	TRACE("store_range(%#lx, %#lx, %p)%s", first, last, entry, armed ? " armed" : "");
	ret = xa_store_range(&xa, first, last, entry);
	disarm();
	if (armed && xa_is_err(ret)) {
		CHECK(xa_err(ret) == -ENOMEM, "store_range: error %d", xa_err(ret));
	} else {
		CHECK(ret == NULL, "store_range(%#lx, %#lx) returned %p", first, last, ret);
		model_store_range(first, last, entry);
	}
	check_around(first);
	check_around(last);
	check_index(first + rnd(last - first + 1 < WINDOW ? last - first + 1 : WINDOW));
}

static void op_split(void)
{
	unsigned long index = rnd_index();
	struct extent *x = model_at(index);
	unsigned int order = x ? extent_order(x) : 0;
	unsigned int new_order = order ? (unsigned int)rnd(order) : 0;
	bool armed;
	int err;

	if (x && order > new_order + 6)
		new_order = order - 1 - (unsigned int)rnd(6);	/* at most 64 new entries */
	armed = arm_failure();
	TRACE("split(%#lx, %u)%s", index, new_order, armed ? " armed" : "");
	err = xa_split(&xa, index, new_order);
	disarm();
	if (!x || order <= new_order) {
		CHECK(err == -EINVAL, "split(%#lx, %u) = %d with no larger entry", index, new_order,
		      err);
	} else if (armed && err == -ENOMEM) {
		/* nothing changed */
	} else {
		CHECK(err == 0, "split(%#lx, %u) of order %u = %d", index, new_order, order, err);
		model_split(x, new_order);
	}
	check_around(index);
}

static void op_mark(bool set)
{
	unsigned long index = rnd_index();
	xa_mark_t mark = (xa_mark_t)rnd(XA_MAX_MARKS);
	struct extent *x = model_at(index);

	TRACE("%s_mark(%#lx, %u)", set ? "set" : "clear", index, mark);
	if (set)
		xa_set_mark(&xa, index, mark);
	else
		xa_clear_mark(&xa, index, mark);
	if (x)
		x->marks = set ? x->marks | (1U << mark) : x->marks & ~(1U << mark);
	check_around(index);
}

static xa_mark_t rnd_filter(void)
{
	unsigned long r = rnd(4);

	return r == 3 ? XA_PRESENT : (xa_mark_t)r;
}

static void op_find(bool after)
{
	unsigned long index = rnd_index(), start = index;
	unsigned long max = rnd(4) ? ULONG_MAX : index + rnd(2 * WINDOW);
	xa_mark_t filter = rnd_filter();
	struct extent *x;
	void *entry;

	if (max < index)
		max = ULONG_MAX;
	if (after) {
		struct extent *cur = model_at(index);
		unsigned long from = cur ? cur->last : index;

		x = from >= max ? NULL : model_find(from + 1, max, filter);
		if (x && x->start < from + 1)
			start = from + 1;
		else if (x)
			start = x->start;
		entry = xa_find_after(&xa, &index, max, filter);
	} else {
		x = model_find(index, max, filter);
		if (x && x->start > index)
			start = x->start;
		entry = xa_find(&xa, &index, max, filter);
	}
	CHECK(entry == (x ? x->entry : NULL), "find%s(%#lx, %#lx, %u) = %p, model %p",
	      after ? "_after" : "", start, max, filter, entry, x ? x->entry : NULL);
	if (x)
		CHECK(index == start, "find%s: index %#lx, model %#lx", after ? "_after" : "",
		      index, start);
}

static void run_op(void)
{
	unsigned long r = rnd(100);

	if (r < 18)
		op_store();
	else if (r < 30)
		op_erase();
	else if (r < 37)
		op_insert();
	else if (r < 44)
		op_cmpxchg();
	else if (r < 58)
		op_store_order();
	else if (r < 64)
		op_store_range();
	else if (r < 70)
		op_split();
	else if (r < 78)
		op_mark(true);
	else if (r < 84)
		op_mark(false);
	else if (r < 92)
		op_find(false);
	else
		op_find(true);
}

START_TEST(test_diff)
{
	uint64_t seed = mdt_seed(20261122);
	size_t ops = mdt_scaled(1000000);
	/* XA_DIFF_CHECK_EVERY=1 narrows a failure down to the operation that caused it. */
	const char *every_env = getenv("XA_DIFF_CHECK_EVERY");
	const char *trace_env = getenv("XA_DIFF_TRACE_FROM");

	unsigned long every = every_env && *every_env ? strtoul(every_env, NULL, 0) : CHECK_EVERY;

	if (trace_env && *trace_env)
		trace_from = strtoul(trace_env, NULL, 0);
	mdt_rng_init(&rng, seed);
	xat_hook_init(&hook);
	xa_init_ops(&xa, &hook.ops);
	model.n = 0;
	for (opno = 0; opno < ops; opno++) {
		run_op();
		if (every && opno % every == every - 1)
			check_all();
	}
	check_all();
	/* Everything erased: no node left, every node given back after a grace period. */
	xa_store_range(&xa, 0, ULONG_MAX, NULL);
	ck_assert(xa_empty(&xa));
	ck_assert_uint_eq(xa_nr_nodes(&xa), 0);
	xa_destroy(&xa);
	xat_rcu_barrier();
	ck_assert_int_eq(xat_hook_allocs(&hook), xat_hook_frees(&hook));
	fprintf(stderr, "test_xarray_diff: %zu operations, %ld nodes allocated\n", ops,
		xat_hook_allocs(&hook));
}
END_TEST

int main(void)
{
	Suite *s = suite_create(XA_CHUNK_SHIFT == 6 ? "xarray_diff" : "xarray_diff_small");
	TCase *tc = tcase_create("diff");

	tcase_set_timeout(tc, 0);
	tcase_add_test(tc, test_diff);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
