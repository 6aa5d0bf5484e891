/*
 * test_memdesc_diff: differential test of the page allocator, folios and slab caches
 * against a model.
 *
 * A seeded sequence (MDT_SEED replays it) of mdt_scaled(1000000) operations: folio
 * alloc (power-of-two orders and any size), raw pages_alloc with our own descriptors,
 * frees, folio splits, kmem_cache alloc and free. The model keeps the owner of every
 * pfn (no two live allocations may overlap) and every live allocation and object.
 * After each operation, pfn_to_memdesc() of every page of the touched allocation is
 * its descriptor (or 0 once freed) and the pages around it are not; every live
 * allocation is checked that way periodically, and memdesc_verify() runs too. Every
 * byte of every allocation and object is written with a pattern of its own (a function
 * of its seed and address, so split pieces keep theirs) and checked when it is freed.
 */
#include "mdt.h"
#include "memdesc.h"
#include "slab.h"

/* Check records every passed ck_assert (a write to a pipe): hot loops check with this. */
#define REQ(cond)                                                                      \
	do {                                                                           \
		if (!(cond))                                                           \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                \
	} while (0)

#include <stdlib.h>
#include <string.h>

enum kind { K_FOLIO, K_RAW };

struct alloc {
	enum kind kind;
	struct folio *f;	/* the folio, or our own descriptor for K_RAW */
	unsigned long pfn;
	size_t n;
	uint64_t seed;
	uint32_t id;
};

struct obj {
	void *p;
	int cache;
	uint64_t seed;
};

#define MAX_LIVE 3000
#define MAX_OBJS 20000
#define NCACHES 4

static struct alloc live[MAX_LIVE * 64];	/* splits add pieces beyond the cap */
static size_t nlive;
static struct obj objs[MAX_OBJS];
static size_t nobjs;
static uint32_t *owner;		/* pfn -> id of the live allocation, 0 when free */
static size_t owner_len;
static uint32_t next_id = 1;
static struct kmem_cache *caches[NCACHES];
static const size_t cache_size[NCACHES] = { 16, 100, 1000, 5000 };
static struct kmem_cache *raw_desc_cache;

static uint64_t pattern(uint64_t seed, uintptr_t addr)
{
	uint64_t x = seed ^ (addr * 0x9e3779b97f4a7c15ULL);

	return x ^ (x >> 29);
}

static void fill(void *p, size_t bytes, uint64_t seed)
{
	uint64_t *w = p;

	for (size_t i = 0; i < bytes / 8; i++)
		w[i] = pattern(seed, (uintptr_t)&w[i]);
}

static void check_fill(const void *p, size_t bytes, uint64_t seed)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < bytes / 8; i++)
		if (w[i] != pattern(seed, (uintptr_t)&w[i]))
			ck_abort_msg("bytes of %p + %zu (seed %llu) were disturbed", p, i * 8,
				     (unsigned long long)seed);
}

static void owner_grow(unsigned long end)
{
	if (end <= owner_len)
		return;
	size_t len = owner_len ? owner_len : 1 << 16;

	while (len < end)
		len *= 2;
	owner = realloc(owner, len * sizeof(*owner));
	REQ((owner) != NULL);
	memset(owner + owner_len, 0, (len - owner_len) * sizeof(*owner));
	owner_len = len;
}

static memdesc_t md_of(const struct alloc *a)
{
	return memdesc_mk(a->f, MEMDESC_FOLIO);
}

/* The touched allocation: every page maps to it, its neighbours do not. */
static void check_alloc_mapped(const struct alloc *a)
{
	memdesc_t md = md_of(a);

	for (size_t i = 0; i < a->n; i++)
		if (pfn_to_memdesc(a->pfn + i) != md)
			ck_abort_msg("pfn %lu of allocation %u maps to %#lx, not %#lx",
				     a->pfn + i, a->id, (unsigned long)pfn_to_memdesc(a->pfn + i),
				     (unsigned long)md);
	if (a->pfn > 0)
		REQ((pfn_to_memdesc(a->pfn - 1)) != (md));
	REQ((pfn_to_memdesc(a->pfn + a->n)) != (md));
}

static void model_take(struct alloc *a)
{
	owner_grow(a->pfn + a->n + 1);
	for (size_t i = 0; i < a->n; i++) {
		if (owner[a->pfn + i])
			ck_abort_msg("allocation %u at pfn %lu + %zu overlaps live allocation %u",
				     a->id, a->pfn, a->n, owner[a->pfn + i]);
		owner[a->pfn + i] = a->id;
	}
}

static void model_release(const struct alloc *a)
{
	for (size_t i = 0; i < a->n; i++) {
		REQ((owner[a->pfn + i]) == (a->id));
		owner[a->pfn + i] = 0;
	}
}

static size_t rand_pages(struct mdt_rng *r)
{
	uint64_t x = mdt_rng_below(r, 100);

	uint64_t y = mdt_rng_below(r, 2);

	if (x < 70)
		return 1;
	if (x < 92)
		return 2 + mdt_rng_below(r, 7);
	if (x < 99 || (x == 99 && y))
		return 9 + mdt_rng_below(r, 56);
	return 65 + mdt_rng_below(r, 448);
}

static void op_alloc(struct mdt_rng *r)
{
	struct alloc *a = &live[nlive];
	uint64_t how = mdt_rng_below(r, 10);

	memset(a, 0, sizeof(*a));
	if (how < 5) {
		unsigned int order = 0;
		size_t n = rand_pages(r);

		while (((size_t)1 << (order + 1)) <= n)
			order++;
		a->f = folio_alloc(order);
		REQ((a->f) != NULL);
		a->kind = K_FOLIO;
		REQ((folio_nr_pages(a->f)) == ((size_t)1 << order));
		REQ((folio_pfn(a->f) & (((size_t)1 << order) - 1)) == (0));
	} else if (how < 8) {
		a->f = folio_alloc_pages(rand_pages(r));
		REQ((a->f) != NULL);
		a->kind = K_FOLIO;
	} else {
		size_t n = rand_pages(r), align = (size_t)1 << mdt_rng_below(r, 4);
		unsigned long pfn;

		a->f = kmem_cache_alloc(raw_desc_cache);
		REQ((a->f) != NULL);
		REQ((pages_alloc(memdesc_mk(a->f, MEMDESC_FOLIO), n, align, &pfn)) == (0));
		REQ((pfn % align) == (0));
		a->f->f_pfn = pfn;
		a->f->f_npages = n;
		a->f->f_refcount = 1;
		a->f->f_order = FOLIO_ORDER_NONE;
		a->kind = K_RAW;
	}
	a->pfn = folio_pfn(a->f);
	a->n = folio_nr_pages(a->f);
	a->seed = mdt_rng_next(r);
	a->id = next_id++;
	model_take(a);
	check_alloc_mapped(a);
	fill(pfn_to_virt(a->pfn), a->n * MEMDESC_PAGE_SIZE, a->seed);
	nlive++;
}

static void op_free(struct mdt_rng *r)
{
	size_t i = mdt_rng_below(r, nlive);
	struct alloc a = live[i];

	check_alloc_mapped(&a);
	check_fill(pfn_to_virt(a.pfn), a.n * MEMDESC_PAGE_SIZE, a.seed);
	model_release(&a);
	live[i] = live[--nlive];
	if (a.kind == K_FOLIO) {
		folio_put(a.f);
		for (size_t k = 0; k < a.n; k++)
			REQ((pfn_to_memdesc(a.pfn + k)) == (0));
	} else {
		REQ((pages_free_checked(a.pfn, a.n)) == (0));
		for (size_t k = 0; k < a.n; k++)
			REQ((pfn_to_memdesc(a.pfn + k)) == (0));
		kmem_cache_free(raw_desc_cache, a.f);
	}
}

static void op_split(struct mdt_rng *r)
{
	size_t i = mdt_rng_below(r, nlive);
	struct alloc a = live[i];
	unsigned int order, new_order;
	size_t piece;

	if (a.kind != K_FOLIO || folio_order(a.f) == FOLIO_ORDER_NONE || folio_order(a.f) == 0) {
		if (a.kind == K_FOLIO && folio_order(a.f) == FOLIO_ORDER_NONE && a.n > 1)
			REQ((folio_split(a.f, 0)) == (-22));
		return;
	}
	order = folio_order(a.f);
	new_order = (unsigned int)mdt_rng_below(r, order);
	REQ((folio_split(a.f, new_order)) == (0));
	piece = (size_t)1 << new_order;
	model_release(&a);
	live[i].n = piece;
	live[i].id = next_id++;
	model_take(&live[i]);
	check_alloc_mapped(&live[i]);
	for (size_t k = 1; k < ((size_t)1 << (order - new_order)); k++) {
		struct alloc *b = &live[nlive++];

		b->kind = K_FOLIO;
		b->pfn = a.pfn + k * piece;
		b->f = virt_to_folio(pfn_to_virt(b->pfn));
		REQ((b->f) != NULL);
		REQ((folio_pfn(b->f)) == (b->pfn));
		REQ((folio_nr_pages(b->f)) == (piece));
		b->n = piece;
		b->seed = a.seed;
		b->id = next_id++;
		model_take(b);
		check_alloc_mapped(b);
	}
}

static void op_obj_alloc(struct mdt_rng *r)
{
	struct obj *o = &objs[nobjs];
	struct kmem_obj_info info;

	o->cache = (int)mdt_rng_below(r, NCACHES);
	o->p = kmem_cache_alloc(caches[o->cache]);
	REQ((o->p) != NULL);
	o->seed = mdt_rng_next(r);
	REQ((kmem_obj_info((char *)o->p + cache_size[o->cache] - 1, &info)) == (0));
	REQ((info.obj) == (o->p));
	REQ((info.cache) == (caches[o->cache]));
	REQ(info.allocated);
	/* Its slab's pages are no folio and no other allocation of the model. */
	if (virt_to_pfn(o->p) < owner_len)
		REQ((owner[virt_to_pfn(o->p)]) == (0));
	fill(o->p, cache_size[o->cache] & ~(size_t)7, o->seed);
	nobjs++;
}

static void op_obj_free(struct mdt_rng *r)
{
	size_t i = mdt_rng_below(r, nobjs);
	struct obj o = objs[i];

	check_fill(o.p, cache_size[o.cache] & ~(size_t)7, o.seed);
	REQ((kmem_cache_free_checked(caches[o.cache], o.p)) == (0));
	objs[i] = objs[--nobjs];
}

static void sweep(void)
{
	for (size_t i = 0; i < nlive; i++)
		check_alloc_mapped(&live[i]);
	for (size_t i = 0; i < nobjs; i++) {
		struct kmem_obj_info info;

		REQ((kmem_obj_info(objs[i].p, &info)) == (0));
		REQ((info.cache) == (caches[objs[i].cache]));
	}
}

START_TEST(test_diff)
{
	struct mdt_rng r;
	size_t nops = mdt_scaled(1000000);
	struct memdesc_stats st;

	mdt_rng_init(&r, mdt_seed(20261122));
	for (int c = 0; c < NCACHES; c++)
		caches[c] = kmem_cache_create("diff", cache_size[c], 0, 0);
	raw_desc_cache = kmem_cache_create("diff-desc", sizeof(struct folio), 16, 0);
	for (size_t op = 0; op < nops; op++) {
		uint64_t x = mdt_rng_below(&r, 100);

		if (x < 35) {
			if (nlive < MAX_LIVE)
				op_alloc(&r);
			else
				op_free(&r);
		} else if (x < 65) {
			if (nlive)
				op_free(&r);
		} else if (x < 70) {
			if (nlive && nlive < MAX_LIVE * 32)
				op_split(&r);
		} else if (x < 85) {
			if (nobjs < MAX_OBJS)
				op_obj_alloc(&r);
		} else if (nobjs) {
			op_obj_free(&r);
		}
		if (op % 20000 == 19999)
			sweep();
		if (op % 200000 == 199999) {
			REQ((memdesc_verify()) == (0));
			for (int c = 0; c < NCACHES; c++)
				REQ((kmem_cache_verify(caches[c])) == (0));
		}
	}
	sweep();
	REQ((memdesc_verify()) == (0));
	while (nlive)
		op_free(&r);
	while (nobjs)
		op_obj_free(&r);
	for (int c = 0; c < NCACHES; c++) {
		struct kmem_cache_stats cs;

		kmem_thread_flush();
		kmem_cache_reap(caches[c]);
		kmem_cache_reap(caches[c]);
		kmem_cache_stats(caches[c], &cs);
		REQ((cs.objs_slab_inuse) == (0));
		REQ((cs.slabs) == (0));
		kmem_cache_destroy(caches[c]);
	}
	kmem_thread_flush();
	kmem_cache_reap(raw_desc_cache);
	kmem_cache_reap(raw_desc_cache);
	kmem_cache_destroy(raw_desc_cache);
	memdesc_stats(&st);
	REQ((st.pages_folio) == (0));
	REQ((st.nr_folios) == (0));
	REQ((st.pages_split_held) == (0));
	REQ((memdesc_verify()) == (0));
	free(owner);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memdesc_diff");
	TCase *tc = tcase_create("diff");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_diff);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
