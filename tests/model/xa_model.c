/* xa_model: see xa_model.h. Moved here from test_xarray_diff.c, draws unchanged. */
#include "xa_model.h"
#include "mdt_fault.h"
#include "xarray_rcu.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE(...)                                                                     \
	do {                                                                           \
		if (m->opno >= m->trace_from) {                                        \
			fprintf(stderr, "op %lu: ", m->opno);                                  \
			fprintf(stderr, __VA_ARGS__);                                          \
			fputc('\n', stderr);                                           \
		}                                                                      \
	} while (0)

/* Silent when it passes (Check's ck_assert would write a checkpoint per call). */
#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			char msg_[256];                                                \
			snprintf(msg_, sizeof(msg_), __VA_ARGS__);                     \
			mdt_fail("op %lu: %s", m->opno, msg_);                         \
		}                                                                      \
	} while (0)

/* ---- the model ---------------------------------------------------------------- */

/* The first extent with last >= index (m->n if none). */
static unsigned long model_lower(struct xam *m, unsigned long index)
{
	unsigned long lo = 0, hi = m->n;

	while (lo < hi) {
		unsigned long mid = lo + (hi - lo) / 2;

		if (m->e[mid].last < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The extent covering @index, or NULL. */
static struct xam_extent *model_at(struct xam *m, unsigned long index)
{
	unsigned long i = model_lower(m, index);

	if (i < m->n && m->e[i].start <= index)
		return &m->e[i];
	return NULL;
}

static void *model_load(struct xam *m, unsigned long index)
{
	struct xam_extent *x = model_at(m, index);

	return x ? x->entry : NULL;
}

static void model_remove(struct xam *m, unsigned long i, unsigned long count)
{
	memmove(&m->e[i], &m->e[i + count], (m->n - i - count) * sizeof(m->e[0]));
	m->n -= count;
}

static void model_insert(struct xam *m, unsigned long i, struct xam_extent x)
{
	CHECK(m->n < m->cap, "model full");
	memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(m->e[0]));
	m->e[i] = x;
	m->n++;
}

static unsigned long mask_of(unsigned int order)
{
	return order >= 64 ? ULONG_MAX : (1UL << order) - 1;
}

/* A store of the aligned block [base, base + 2^order) as xa_store_order defines it. */
static void model_store_block(struct xam *m, unsigned long base, unsigned int order,
			      void *entry)
{
	unsigned long last = base + mask_of(order);
	unsigned long i = model_lower(m, base), j;
	unsigned int marks = 0;
	struct xam_extent *x = i < m->n ? &m->e[i] : NULL;

	if (x && x->start <= base && x->last >= last &&
	    (x->start < base || x->last > last)) {
		/* Inside a larger entry: acts on it. */
		if (entry)
			x->entry = entry;
		else
			model_remove(m, i, 1);
		return;
	}
	for (j = i; j < m->n && m->e[j].start <= last; j++) {
		CHECK(m->e[j].start >= base && m->e[j].last <= last,
		      "model: extent %#lx..%#lx across block %#lx..%#lx", m->e[j].start,
		      m->e[j].last, base, last);
		marks |= m->e[j].marks;
	}
	model_remove(m, i, j - i);
	if (entry)
		model_insert(m, i, (struct xam_extent){ base, last, entry, marks });
}

static unsigned int piece_order(unsigned long cur, unsigned long last)
{
	unsigned int order = cur ? (unsigned int)__builtin_ctzl(cur) : 64;

	while (order && mask_of(order) > last - cur)
		order--;
	return order;
}

static void model_store_range(struct xam *m, unsigned long first, unsigned long last,
			      void *entry)
{
	for (;;) {
		unsigned int order = piece_order(first, last);

		model_store_block(m, first, order, entry);
		if (mask_of(order) >= last - first)
			return;
		first += mask_of(order) + 1;
	}
}

static unsigned int extent_order(const struct xam_extent *x)
{
	unsigned long size_mask = x->last - x->start;

	return size_mask == ULONG_MAX ? 64 : (unsigned int)__builtin_ctzl(size_mask + 1);
}

static void model_split(struct xam *m, struct xam_extent *x, unsigned int new_order)
{
	struct xam_extent old = *x;
	unsigned long i = (unsigned long)(x - m->e);
	unsigned long step = mask_of(new_order) + 1;

	model_remove(m, i, 1);
	for (unsigned long s = old.start;; s += step, i++) {
		model_insert(m, i, (struct xam_extent){ s, s + step - 1, old.entry, old.marks });
		if (s + step - 1 == old.last)
			break;
	}
}

/* The first extent passing @filter that meets [index, max]. */
static struct xam_extent *model_find(struct xam *m, unsigned long index, unsigned long max,
				     xa_mark_t filter)
{
	for (unsigned long i = model_lower(m, index); i < m->n; i++) {
		struct xam_extent *x = &m->e[i];

		if (x->start > max)
			return NULL;
		if (filter == XA_PRESENT || (x->marks >> filter) & 1U)
			return x;
	}
	return NULL;
}

/* ---- the random operations ---------------------------------------------------- */

static unsigned long rnd(struct xam *m, unsigned long bound)
{
	return mdt_src_below(m->src, bound);
}

static unsigned long window_base(unsigned int w)
{
	return w == 0 ? 0 : w == 1 ? 1UL << 32 : ULONG_MAX - XAM_WINDOW + 1;
}

static unsigned long rnd_index(struct xam *m)
{
	unsigned long base = window_base((unsigned int)rnd(m, 3));

	return base + rnd(m, XAM_WINDOW);
}

static void *new_entry(struct xam *m)
{
	unsigned long v = m->next_value++;

	if (v & 1)
		return xa_mk_value(v);
	return (void *)(uintptr_t)((v + 0x1000) << 4);
}

static void *rnd_entry(struct xam *m, unsigned int null_percent)
{
	return rnd(m, 100) < null_percent ? NULL : new_entry(m);
}

static unsigned int rnd_order(struct xam *m)
{
	static const unsigned int big[] = { 12, 20, 32, 48, 63, 64 };
	unsigned long r = rnd(m, 1000);

	if (r < 700)
		return (unsigned int)rnd(m, 7);
	if (r < 990)
		return 7 + (unsigned int)rnd(m, 3);
	return big[rnd(m, sizeof(big) / sizeof(big[0]))];
}

/* Compare one index: entry and marks. */
static void check_index(struct xam *m, unsigned long index)
{
	struct xam_extent *x = model_at(m, index);
	void *entry = xa_load(m->xa, index);

	CHECK(entry == (x ? x->entry : NULL), "load(%#lx) = %p, model %p", index, entry,
	      x ? x->entry : NULL);
	for (xa_mark_t mk = 0; mk < XA_MAX_MARKS; mk++) {
		bool want = x && ((x->marks >> mk) & 1U);

		CHECK(xa_get_mark(m->xa, index, mk) == want, "get_mark(%#lx, %u) != %d", index,
		      mk, want);
	}
}

/* Compare around an index: it, its neighbours, and the ends of its extent. */
static void check_around(struct xam *m, unsigned long index)
{
	struct xam_extent *x = model_at(m, index);

	check_index(m, index);
	if (index)
		check_index(m, index - 1);
	if (index != ULONG_MAX)
		check_index(m, index + 1);
	if (x) {
		unsigned long start = x->start, last = x->last;

		check_index(m, start);
		check_index(m, last);
		if (start)
			check_index(m, start - 1);
		if (last != ULONG_MAX)
			check_index(m, last + 1);
	}
}

void xam_check_all(struct xam *m)
{
	unsigned long index, i = 0;
	void *entry;
	bool needs_nodes;

	xa_for_each(m->xa, index, entry) {
		CHECK(i < m->n, "iteration found %#lx beyond the model's %lu extents", index,
		      m->n);
		CHECK(index == m->e[i].start && entry == m->e[i].entry,
		      "iteration %lu: %#lx %p, model %#lx %p", i, index, entry, m->e[i].start,
		      m->e[i].entry);
		i++;
	}
	CHECK(i == m->n, "iteration found %lu entries, model %lu", i, m->n);
	for (xa_mark_t mk = 0; mk < XA_MAX_MARKS; mk++) {
		unsigned long k = 0;

		xa_for_each_marked(m->xa, index, entry, mk) {
			while (k < m->n && !((m->e[k].marks >> mk) & 1U))
				k++;
			CHECK(k < m->n && index == m->e[k].start, "mark %u iteration at %#lx",
			      mk, index);
			k++;
		}
		while (k < m->n && !((m->e[k].marks >> mk) & 1U))
			k++;
		CHECK(k == m->n, "mark %u iteration ended early", mk);
	}
	CHECK(xa_verify(m->xa) == 0, "xa_verify failed");
	/*
	 * Entries beyond a lone one at index 0 need nodes; without them there are none,
	 * except under XA_FLAGS_KEEP_NODES, where emptied nodes stay until a prune (an
	 * array emptied by erases keeps its nodes: seed 11 of test_diff_keep_nodes).
	 */
	needs_nodes = !(m->n == 0 || (m->n == 1 && m->e[0].start == 0 && m->e[0].last == 0));
	CHECK(needs_nodes ? xa_nr_nodes(m->xa) > 0 : m->keep_nodes || xa_nr_nodes(m->xa) == 0,
	      "xa_nr_nodes %lu with %lu extents", xa_nr_nodes(m->xa), m->n);
}

/* Maybe make the hook fail for the next operation. */
/*
 * Maybe make the hook fail for the next operation. Also the start of the operation for
 * the fault-injection sweeps (mdt_fault.h): a fault injected from here on may fail it.
 */
static bool arm_failure(struct xam *m)
{
	mdt_fault_begin();
	if (rnd(m, 100) >= 3)
		return false;
	m->hook->budget = (long)rnd(m, 3);
	return true;
}

/* End of the operation: true if it may have failed (armed, or a fault was injected). */
static bool disarm(struct xam *m, bool armed)
{
	m->hook->budget = -1;
	return armed || mdt_fault_fired();
}

static void op_store(struct xam *m)
{
	unsigned long index = rnd_index(m);
	void *entry = rnd_entry(m, 10);
	void *want = model_load(m, index);
	bool armed = arm_failure(m);
	void *old;

	TRACE("store(%#lx, %p)%s", index, entry, armed ? " armed" : "");
	old = xa_store(m->xa, index, entry);

	armed = disarm(m, armed);
	if (armed && xa_is_err(old)) {
		CHECK(xa_err(old) == -ENOMEM, "store: error %d", xa_err(old));
	} else {
		CHECK(old == want, "store(%#lx) returned %p, model %p", index, old, want);
		model_store_block(m, index, 0, entry);
	}
	check_around(m, index);
}

static void op_erase(struct xam *m)
{
	unsigned long index = rnd_index(m);
	void *want = model_load(m, index);
	void *old;

	TRACE("erase(%#lx)", index);
	MDT_FREE(old = xa_erase(m->xa, index));	/* erasing never needs a node */

	CHECK(old == want, "erase(%#lx) returned %p, model %p", index, old, want);
	model_store_block(m, index, 0, NULL);
	check_around(m, index);
}

static void op_insert(struct xam *m)
{
	unsigned long index = rnd_index(m);
	void *entry = new_entry(m);
	bool busy = model_load(m, index) != NULL;
	bool armed = arm_failure(m);
	int err;

	TRACE("insert(%#lx, %p)%s", index, entry, armed ? " armed" : "");
	err = xa_insert(m->xa, index, entry);

	armed = disarm(m, armed);
	if (busy) {
		CHECK(err == -EBUSY, "insert(%#lx) = %d on an entry", index, err);
	} else if (armed && err == -ENOMEM) {
		/* nothing changed */
	} else {
		CHECK(err == 0, "insert(%#lx) = %d", index, err);
		model_store_block(m, index, 0, entry);
	}
	check_around(m, index);
}

static void op_cmpxchg(struct xam *m)
{
	unsigned long index = rnd_index(m);
	void *cur = model_load(m, index);
	void *old = rnd(m, 2) ? cur : rnd_entry(m, 50);
	void *entry = rnd_entry(m, 20);
	bool armed = arm_failure(m);
	void *got;

	TRACE("cmpxchg(%#lx, %p, %p)%s", index, old, entry, armed ? " armed" : "");
	got = xa_cmpxchg(m->xa, index, old, entry);

	armed = disarm(m, armed);
	if (armed && xa_is_err(got)) {
		CHECK(xa_err(got) == -ENOMEM, "cmpxchg: error %d", xa_err(got));
	} else {
		CHECK(got == cur, "cmpxchg(%#lx) returned %p, model %p", index, got, cur);
		if (cur == old)
			model_store_block(m, index, 0, entry);
	}
	check_around(m, index);
}

static void op_store_order(struct xam *m)
{
	unsigned long index = rnd_index(m);
	unsigned int order = rnd_order(m);
	void *entry = rnd_entry(m, 20);
	void *want = model_load(m, index);
	bool armed = arm_failure(m);
	unsigned long base = index & ~mask_of(order);
	void *old;

	TRACE("store_order(%#lx, %u, %p)%s", index, order, entry, armed ? " armed" : "");
	old = xa_store_order(m->xa, index, order, entry);

	armed = disarm(m, armed);
	if (armed && xa_is_err(old)) {
		CHECK(xa_err(old) == -ENOMEM, "store_order: error %d", xa_err(old));
	} else {
		CHECK(old == want, "store_order(%#lx, %u) returned %p, model %p", index, order,
		      old, want);
		model_store_block(m, base, order, entry);
	}
	check_around(m, index);
	check_around(m, base);
	check_around(m, base + mask_of(order));
	check_index(m, base + rnd(m, mask_of(order) > XAM_WINDOW ? XAM_WINDOW
								 : mask_of(order) + 1));
}

static void op_store_range(struct xam *m)
{
	unsigned long a = rnd_index(m), b = rnd(m, 5) ? a + rnd(m, XAM_WINDOW) : rnd_index(m);
	unsigned long first = a < b ? a : b, last = a < b ? b : a;
	void *entry = rnd_entry(m, 30);
	bool armed = arm_failure(m);
	void *ret;

	TRACE("store_range(%#lx, %#lx, %p)%s", first, last, entry, armed ? " armed" : "");
	ret = xa_store_range(m->xa, first, last, entry);
	armed = disarm(m, armed);
	if (armed && xa_is_err(ret)) {
		CHECK(xa_err(ret) == -ENOMEM, "store_range: error %d", xa_err(ret));
	} else {
		CHECK(ret == NULL, "store_range(%#lx, %#lx) returned %p", first, last, ret);
		model_store_range(m, first, last, entry);
	}
	check_around(m, first);
	check_around(m, last);
	check_index(m, first + rnd(m, last - first + 1 < XAM_WINDOW ? last - first + 1
								     : XAM_WINDOW));
}

static void op_split(struct xam *m)
{
	unsigned long index = rnd_index(m);
	struct xam_extent *x = model_at(m, index);
	unsigned int order = x ? extent_order(x) : 0;
	unsigned int new_order = order ? (unsigned int)rnd(m, order) : 0;
	bool armed;
	int err;

	if (x && order > new_order + 6)
		new_order = order - 1 - (unsigned int)rnd(m, 6);	/* at most 64 new entries */
	armed = arm_failure(m);
	TRACE("split(%#lx, %u)%s", index, new_order, armed ? " armed" : "");
	err = xa_split(m->xa, index, new_order);
	armed = disarm(m, armed);
	if (!x || order <= new_order) {
		CHECK(err == -EINVAL, "split(%#lx, %u) = %d with no larger entry", index,
		      new_order, err);
	} else if (armed && err == -ENOMEM) {
		/* nothing changed */
	} else {
		CHECK(err == 0, "split(%#lx, %u) of order %u = %d", index, new_order, order, err);
		model_split(m, x, new_order);
	}
	check_around(m, index);
}

static void op_mark(struct xam *m, bool set)
{
	unsigned long index = rnd_index(m);
	xa_mark_t mark = (xa_mark_t)rnd(m, XA_MAX_MARKS);
	struct xam_extent *x = model_at(m, index);

	TRACE("%s_mark(%#lx, %u)", set ? "set" : "clear", index, mark);
	if (set)
		xa_set_mark(m->xa, index, mark);
	else
		xa_clear_mark(m->xa, index, mark);
	if (x)
		x->marks = set ? x->marks | (1U << mark) : x->marks & ~(1U << mark);
	check_around(m, index);
}

static xa_mark_t rnd_filter(struct xam *m)
{
	unsigned long r = rnd(m, 4);

	return r == 3 ? XA_PRESENT : (xa_mark_t)r;
}

static void op_find(struct xam *m, bool after)
{
	unsigned long index = rnd_index(m), start = index;
	unsigned long max = rnd(m, 4) ? ULONG_MAX : index + rnd(m, 2 * XAM_WINDOW);
	xa_mark_t filter = rnd_filter(m);
	struct xam_extent *x;
	void *entry;

	if (max < index)
		max = ULONG_MAX;
	if (after) {
		struct xam_extent *cur = model_at(m, index);
		unsigned long from = cur ? cur->last : index;

		x = from >= max ? NULL : model_find(m, from + 1, max, filter);
		if (x && x->start < from + 1)
			start = from + 1;
		else if (x)
			start = x->start;
		entry = xa_find_after(m->xa, &index, max, filter);
	} else {
		x = model_find(m, index, max, filter);
		if (x && x->start > index)
			start = x->start;
		entry = xa_find(m->xa, &index, max, filter);
	}
	CHECK(entry == (x ? x->entry : NULL), "find%s(%#lx, %#lx, %u) = %p, model %p",
	      after ? "_after" : "", start, max, filter, entry, x ? x->entry : NULL);
	if (x)
		CHECK(index == start, "find%s: index %#lx, model %#lx", after ? "_after" : "",
		      index, start);
}

static void op_prune(struct xam *m)
{
	unsigned long first = rnd_index(m), last = first + rnd(m, 4 * XAM_WINDOW);

	if (last < first)
		last = ULONG_MAX;
	TRACE("prune(%#lx, %#lx)", first, last);
	xa_prune(m->xa, first, last);
	check_around(m, first);
	check_around(m, last);
}

static void op_load_rcu(struct xam *m)
{
	unsigned long index = rnd_index(m);
	void *entry, *value;

	urcu_bp_read_lock();
	entry = xa_load_rcu(m->xa, index);
	value = xa_load_rcu_value(m->xa, index);
	urcu_bp_read_unlock();
	CHECK(entry == model_load(m, index), "xa_load_rcu(%#lx) = %p, model %p", index, entry,
	      model_load(m, index));
	/* No writer runs here: the value walk finds every value entry, and nothing else. */
	CHECK(value == (xa_is_value(entry) ? entry : NULL), "xa_load_rcu_value(%#lx) = %p, "
	      "xa_load_rcu %p", index, value, entry);
}

void xam_run_op(struct xam *m)
{
	unsigned long r = rnd(m, 100);

	if (m->keep_nodes && r >= 70 && r < 84) {
		if (r < 74)
			op_prune(m);
		else
			op_load_rcu(m);
		return;
	}

	if (r < 18)
		op_store(m);
	else if (r < 30)
		op_erase(m);
	else if (r < 37)
		op_insert(m);
	else if (r < 44)
		op_cmpxchg(m);
	else if (r < 58)
		op_store_order(m);
	else if (r < 64)
		op_store_range(m);
	else if (r < 70)
		op_split(m);
	else if (r < 78)
		op_mark(m, true);
	else if (r < 84)
		op_mark(m, false);
	else if (r < 92)
		op_find(m, false);
	else
		op_find(m, true);
}

void xam_init(struct xam *m, struct xarray *xa, struct xat_hook *hook, struct mdt_src *src,
	      unsigned long cap)
{
	m->xa = xa;
	m->hook = hook;
	m->src = src;
	m->e = calloc(cap, sizeof(m->e[0]));
	if (!m->e)
		mdt_fail("xam_init: no memory for %lu extents", cap);
	m->n = 0;
	m->cap = cap;
	m->opno = 0;
	m->trace_from = ULONG_MAX;
	m->keep_nodes = false;
	m->next_value = 1;
}

void xam_fini(struct xam *m)
{
	free(m->e);
	m->e = NULL;
	m->n = m->cap = 0;
}
