/* memdesc_model: see memdesc_model.h. Moved here from test_memdesc_diff.c, draws unchanged. */
#include "memdesc_model.h"
#include "mdt_fault.h"
#include "memdesc_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REQ(cond)                                                                      \
	do {                                                                           \
		if (!(cond))                                                           \
			mdt_fail("%s:%d: %s", __FILE__, __LINE__, #cond);              \
	} while (0)

static const size_t cache_size[MDM_NCACHES] = { 16, 100, 1000, 5000 };

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
			mdt_fail("bytes of %p + %zu (seed %llu) were disturbed", p, i * 8,
				 (unsigned long long)seed);
}

static void owner_grow(struct mdm *m, unsigned long end)
{
	if (end <= m->owner_len)
		return;
	size_t len = m->owner_len ? m->owner_len : 1 << 16;

	while (len < end)
		len *= 2;
	m->owner = realloc(m->owner, len * sizeof(*m->owner));
	REQ((m->owner) != NULL);
	memset(m->owner + m->owner_len, 0, (len - m->owner_len) * sizeof(*m->owner));
	m->owner_len = len;
}

static memdesc_t md_of(const struct mdm_alloc *a)
{
	return memdesc_mk(a->f, MEMDESC_FOLIO);
}

/* The touched allocation: every page maps to it, its neighbours do not. */
static void check_alloc_mapped(const struct mdm_alloc *a)
{
	memdesc_t md = md_of(a);

	for (size_t i = 0; i < a->n; i++)
		if (pfn_to_memdesc(a->pfn + i) != md)
			mdt_fail("pfn %lu of allocation %u maps to %#lx, not %#lx", a->pfn + i,
				 a->id, (unsigned long)pfn_to_memdesc(a->pfn + i),
				 (unsigned long)md);
	if (a->pfn > 0)
		REQ((pfn_to_memdesc(a->pfn - 1)) != (md));
	REQ((pfn_to_memdesc(a->pfn + a->n)) != (md));
	REQ(virt_to_folio(pfn_to_virt(a->pfn + a->n / 2)) == a->f);
	REQ(virt_to_folio((char *)pfn_to_virt(a->pfn + a->n) - 1) == a->f);
}

static void model_take(struct mdm *m, struct mdm_alloc *a)
{
	owner_grow(m, a->pfn + a->n + 1);
	for (size_t i = 0; i < a->n; i++) {
		if (m->owner[a->pfn + i])
			mdt_fail("allocation %u at pfn %lu + %zu overlaps live allocation %u",
				 a->id, a->pfn, a->n, m->owner[a->pfn + i]);
		m->owner[a->pfn + i] = a->id;
	}
}

static void model_release(struct mdm *m, const struct mdm_alloc *a)
{
	for (size_t i = 0; i < a->n; i++) {
		REQ((m->owner[a->pfn + i]) == (a->id));
		m->owner[a->pfn + i] = 0;
	}
}

static size_t rand_pages(struct mdt_src *r)
{
	uint64_t x = mdt_src_below(r, 100);

	uint64_t y = mdt_src_below(r, 2);

	if (x < 70)
		return 1;
	if (x < 92)
		return 2 + mdt_src_below(r, 7);
	if (x < 99 || (x == 99 && y))
		return 9 + mdt_src_below(r, 56);
	return 65 + mdt_src_below(r, 448);
}

static void op_alloc(struct mdm *m)
{
	struct mdt_src *r = m->src;
	struct mdm_alloc *a = &m->live[m->nlive];
	uint64_t how = mdt_src_below(r, 10);
	size_t align = 1;	/* of the first pfn; 1 page at alignment 1 is a block page */

	memset(a, 0, sizeof(*a));
	if (how < 5) {
		unsigned int order = 0;
		size_t n = rand_pages(r);

		while (((size_t)1 << (order + 1)) <= n)
			order++;
		if (!MDT_ALLOC_OK(a->f, folio_alloc(order)))
			return;		/* an injected fault: nothing allocated */
		a->kind = MDM_FOLIO;
		REQ((folio_nr_pages(a->f)) == ((size_t)1 << order));
		REQ((folio_pfn(a->f) & (((size_t)1 << order) - 1)) == (0));
	} else if (how < 8) {
		if (!MDT_ALLOC_OK(a->f, folio_alloc_pages(rand_pages(r))))
			return;
		a->kind = MDM_FOLIO;
	} else {
		size_t n = rand_pages(r);
		unsigned long pfn;
		int rc;

		align = (size_t)1 << mdt_src_below(r, 4);
		if (!MDT_ALLOC_OK(a->f, kmem_cache_alloc(m->raw_desc_cache)))
			return;
		if (!MDT_RC_OK(rc, pages_alloc(memdesc_mk(a->f, MEMDESC_FOLIO), n, align, &pfn))) {
			kmem_cache_free(m->raw_desc_cache, a->f);
			return;
		}
		REQ((pfn % align) == (0));
		a->f->f_pfn = pfn;
		a->f->f_npages = n;
		a->f->f_refcount = 1;
		a->f->f_order = FOLIO_ORDER_NONE;
		a->kind = MDM_RAW;
	}
	a->pfn = folio_pfn(a->f);
	a->n = folio_nr_pages(a->f);
	a->seed = mdt_src_next(r);
	a->id = m->next_id++;
	a->refs = 1;
	a->fixed = a->n == 1 && align == 1;
	REQ(folio_ref_count(a->f) == 1);
	model_take(m, a);
	check_alloc_mapped(a);
	fill(pfn_to_virt(a->pfn), a->n * MEMDESC_PAGE_SIZE, a->seed);
	m->nlive++;
}

static void op_free(struct mdm *m)
{
	size_t i = mdt_src_below(m->src, m->nlive);
	struct mdm_alloc a = m->live[i];

	check_alloc_mapped(&a);
	check_fill(pfn_to_virt(a.pfn), a.n * MEMDESC_PAGE_SIZE, a.seed);
	model_release(m, &a);
	m->live[i] = m->live[--m->nlive];
	if (a.kind == MDM_FOLIO) {
		for (; a.refs > 1; a.refs--) {
			folio_put(a.f);		/* not the last reference: still mapped */
			check_alloc_mapped(&a);
		}
		folio_put(a.f);
		for (size_t k = 0; k < a.n; k++)
			REQ((pfn_to_memdesc(a.pfn + k)) == (0));
	} else {
		/* The page allocator's free needs nothing (pages.c, 6): no point crossed. */
		MDT_FREE(REQ((pages_free_checked(a.pfn, a.n)) == (0)));
		for (size_t k = 0; k < a.n; k++)
			REQ((pfn_to_memdesc(a.pfn + k)) == (0));
		kmem_cache_free(m->raw_desc_cache, a.f);
	}
}

static void op_split(struct mdm *m)
{
	size_t i = mdt_src_below(m->src, m->nlive);
	struct mdm_alloc a = m->live[i];
	unsigned int order, new_order;
	size_t piece;
	int rc;

	if (a.kind != MDM_FOLIO || folio_order(a.f) == FOLIO_ORDER_NONE ||
	    folio_order(a.f) == 0) {
		if (a.kind == MDM_FOLIO && folio_order(a.f) == FOLIO_ORDER_NONE && a.n > 1)
			REQ((folio_split(a.f, 0)) == (-EINVAL));
		return;
	}
	order = folio_order(a.f);
	new_order = (unsigned int)mdt_src_below(m->src, order);
	if (a.refs > 1) {
		REQ(folio_split(a.f, new_order) == -EBUSY);
		check_alloc_mapped(&a);
		return;
	}
	if (!MDT_RC_OK(rc, folio_split(a.f, new_order))) {
		/* An injected fault: the folio is as it was. */
		REQ(folio_order(a.f) == order && folio_nr_pages(a.f) == a.n);
		check_alloc_mapped(&a);
		return;
	}
	piece = (size_t)1 << new_order;
	model_release(m, &a);
	m->live[i].n = piece;
	m->live[i].fixed = true;
	m->live[i].id = m->next_id++;
	model_take(m, &m->live[i]);
	check_alloc_mapped(&m->live[i]);
	for (size_t k = 1; k < ((size_t)1 << (order - new_order)); k++) {
		struct mdm_alloc *b = &m->live[m->nlive++];

		b->kind = MDM_FOLIO;
		b->pfn = a.pfn + k * piece;
		b->f = virt_to_folio(pfn_to_virt(b->pfn));
		REQ((b->f) != NULL);
		REQ((folio_pfn(b->f)) == (b->pfn));
		REQ((folio_nr_pages(b->f)) == (piece));
		REQ(folio_ref_count(b->f) == 1);
		b->n = piece;
		b->seed = a.seed;
		b->id = m->next_id++;
		b->refs = 1;
		b->fixed = true;
		model_take(m, b);
		check_alloc_mapped(b);
	}
}

/* Is [pfn, pfn + n) free in the page arena? Takes it and gives it back. */
static bool arena_free(unsigned long pfn, size_t n)
{
	if (md__arena_take(pfn, n))
		return false;
	md__arena_free(pfn, n);
	return true;
}

static void op_resize(struct mdm *m)
{
	struct mdm_alloc *a = &m->live[mdt_src_below(m->src, m->nlive)];
	size_t n = a->n, want = 1 + mdt_src_below(m->src, 2 * n + 8), keep;
	int rc;

	want = want > 1024 ? 1024 : want;
	if (want == n)
		return;
	keep = want < n ? want : n;
	mdt_fault_begin();
	if (a->kind == MDM_FOLIO)
		rc = folio_resize(a->f, want);
	else
		rc = pages_resize(a->pfn, n, want);
	if (a->refs > 1) {
		REQ(rc == -EBUSY);
		check_alloc_mapped(a);
		return;
	}
	if (a->fixed || rc == -ENOMEM) {
		REQ(rc == -ENOMEM);
		/*
		 * Only a grow fails: when the pages after it are not free, or when they are
		 * in another span of the page arena (spans are whole chunks imported one by
		 * one, so the run then crosses a chunk boundary), or when an injected fault
		 * fired under it (fault-injection builds), a shrink included.
		 */
		if (!a->fixed && !mdt_fault_fired() && (want < n || (arena_free(a->pfn + n, want - n) &&
					       a->pfn / MD_CHUNK_PAGES ==
						       (a->pfn + want - 1) / MD_CHUNK_PAGES)))
			mdt_fail("resize of pfn %lu (%s) from %zu to %zu pages failed in place",
				 a->pfn, a->kind == MDM_FOLIO ? "folio" : "raw", n, want);
		check_alloc_mapped(a);
		return;
	}
	REQ(rc == 0);
	if (want < n) {
		for (size_t k = want; k < n; k++) {
			REQ(m->owner[a->pfn + k] == a->id);
			m->owner[a->pfn + k] = 0;
		}
		a->n = want;
	} else {
		struct mdm_alloc grown = *a;

		grown.pfn = a->pfn + n;
		grown.n = want - n;
		model_take(m, &grown);
		a->n = want;
		fill(pfn_to_virt(grown.pfn), grown.n * MEMDESC_PAGE_SIZE, a->seed);
	}
	if (a->kind == MDM_RAW)
		a->f->f_npages = want;
	check_alloc_mapped(a);
	for (size_t k = want; k < n; k++)
		REQ(pfn_to_memdesc(a->pfn + k) != md_of(a));
	check_fill(pfn_to_virt(a->pfn), keep * MEMDESC_PAGE_SIZE, a->seed);
}

static void op_obj_alloc(struct mdm *m)
{
	struct mdm_obj *o = &m->objs[m->nobjs];
	struct kmem_obj_info info;

	o->cache = (int)mdt_src_below(m->src, MDM_NCACHES);
	if (!MDT_ALLOC_OK(o->p, kmem_cache_alloc(m->caches[o->cache])))
		return;
	o->seed = mdt_src_next(m->src);
	REQ((kmem_obj_info((char *)o->p + cache_size[o->cache] - 1, &info)) == (0));
	REQ((info.obj) == (o->p));
	REQ((info.cache) == (m->caches[o->cache]));
	REQ(info.allocated);
	/* Its slab's pages are no folio and no other allocation of the model. */
	if (virt_to_pfn(o->p) < m->owner_len)
		REQ((m->owner[virt_to_pfn(o->p)]) == (0));
	fill(o->p, cache_size[o->cache] & ~(size_t)7, o->seed);
	m->nobjs++;
}

static void op_obj_free(struct mdm *m)
{
	size_t i = mdt_src_below(m->src, m->nobjs);
	struct mdm_obj o = m->objs[i];

	check_fill(o.p, cache_size[o.cache] & ~(size_t)7, o.seed);
	REQ((kmem_cache_free_checked(m->caches[o.cache], o.p)) == (0));
	m->objs[i] = m->objs[--m->nobjs];
}

void mdm_step(struct mdm *m)
{
	uint64_t x = mdt_src_below(m->src, 100);

	if (x < 35) {
		if (m->nlive < m->max_live)
			op_alloc(m);
		else
			op_free(m);
	} else if (x < 65) {
		if (m->nlive)
			op_free(m);
	} else if (x < 70) {
		if (m->nlive && m->nlive < m->max_live * 32)
			op_split(m);
	} else if (x < 74) {
		if (m->nlive)
			op_resize(m);
	} else if (x < 87) {
		if (m->nobjs < m->max_objs)
			op_obj_alloc(m);
	} else if (m->nobjs) {
		op_obj_free(m);
	}
}

void mdm_ref(struct mdm *m)
{
	struct mdm_alloc *a;

	if (!m->nlive)
		return;
	a = &m->live[mdt_src_below(m->src, m->nlive)];
	if (a->kind != MDM_FOLIO)
		return;
	if (a->refs > 1 && mdt_src_below(m->src, 2)) {
		folio_put(a->f);
		a->refs--;
	} else if (a->refs < 8) {
		folio_get(a->f);
		a->refs++;
	}
	REQ(folio_ref_count(a->f) == a->refs);
	check_alloc_mapped(a);
}

/* A descriptor of our own for pages_alloc calls that must fail. */
static void bad_pages_alloc(struct mdm *m)
{
	struct folio *d;
	unsigned long pfn = ~0UL;
	size_t n = (size_t)mdt_src_below(m->src, 3), align = 1;

	if (!MDT_ALLOC_OK(d, kmem_cache_alloc(m->raw_desc_cache)))
		return;
	if (n)		/* npages 0, or an alignment that is not a power of two */
		align = 3 + 2 * (size_t)mdt_src_below(m->src, 8);
	REQ(pages_alloc(memdesc_mk(d, MEMDESC_FOLIO), n, align, &pfn) == -EINVAL);
	REQ(pfn == ~0UL);
	kmem_cache_free(m->raw_desc_cache, d);
}

/* A free of a live allocation's range with its start or size off by one page. */
static void bad_pages_free(struct mdm *m)
{
	struct mdm_alloc *a;
	unsigned long pfn;
	size_t n;

	if (!m->nlive)
		return;
	a = &m->live[mdt_src_below(m->src, m->nlive)];
	pfn = a->pfn;
	n = a->n;
	switch (mdt_src_below(m->src, 3)) {
	case 0:
		n++;
		break;
	case 1:
		if (n == 1)
			return;
		n--;
		break;
	default:
		if (n == 1)
			return;
		pfn++;
		n--;
		break;
	}
	REQ(pages_free_checked(pfn, n) == -EINVAL);
	check_alloc_mapped(a);
}

void mdm_bad(struct mdm *m)
{
	struct folio *f;

	switch (mdt_src_below(m->src, 5)) {
	case 0:
		errno = 0;
		f = folio_alloc(FOLIO_MAX_ORDER + 1 + (unsigned int)mdt_src_below(m->src, 64));
		REQ(f == NULL && errno == EINVAL);
		break;
	case 1:
		errno = 0;
		f = folio_alloc_pages(0);
		REQ(f == NULL && errno == EINVAL);
		break;
	case 2:
		bad_pages_alloc(m);
		break;
	case 3:
		bad_pages_free(m);
		break;
	default:
		/* A split to an order not below the folio's own. */
		if (m->nlive) {
			struct mdm_alloc *a = &m->live[mdt_src_below(m->src, m->nlive)];
			unsigned int order = folio_order(a->f);

			if (a->kind != MDM_FOLIO || order == FOLIO_ORDER_NONE)
				return;
			REQ(folio_split(a->f, order + (unsigned int)mdt_src_below(m->src, 4)) ==
			    -EINVAL);
			check_alloc_mapped(a);
		}
		break;
	}
}

void mdm_sweep(struct mdm *m)
{
	for (size_t i = 0; i < m->nlive; i++)
		check_alloc_mapped(&m->live[i]);
	for (size_t i = 0; i < m->nobjs; i++) {
		struct kmem_obj_info info;

		REQ((kmem_obj_info(m->objs[i].p, &info)) == (0));
		REQ((info.cache) == (m->caches[m->objs[i].cache]));
	}
}

void mdm_verify(struct mdm *m)
{
	REQ((memdesc_verify()) == (0));
	for (int c = 0; c < MDM_NCACHES; c++)
		REQ((kmem_cache_verify(m->caches[c])) == (0));
}

void mdm_init(struct mdm *m, struct mdt_src *src, size_t max_live, size_t max_objs)
{
	memset(m, 0, sizeof(*m));
	m->src = src;
	m->max_live = max_live;
	m->max_objs = max_objs;
	m->live = calloc(max_live * 64, sizeof(*m->live));
	m->objs = calloc(max_objs, sizeof(*m->objs));
	REQ(m->live != NULL && m->objs != NULL);
	m->next_id = 1;
}

void mdm_fini(struct mdm *m)
{
	free(m->live);
	free(m->objs);
	free(m->owner);
	memset(m, 0, sizeof(*m));
}

void mdm_begin(struct mdm *m)
{
	for (int c = 0; c < MDM_NCACHES; c++) {
		m->caches[c] = kmem_cache_create("diff", cache_size[c], 0, 0);
		REQ(m->caches[c] != NULL);
	}
	m->raw_desc_cache = kmem_cache_create("diff-desc", sizeof(struct folio), 16, 0);
	REQ(m->raw_desc_cache != NULL);
}

void mdm_free_all(struct mdm *m)
{
	mdm_sweep(m);
	REQ((memdesc_verify()) == (0));
	while (m->nlive)
		op_free(m);
	while (m->nobjs)
		op_obj_free(m);
	kmem_thread_flush();
	for (int c = 0; c < MDM_NCACHES; c++) {
		struct kmem_cache_stats cs;

		kmem_cache_reap(m->caches[c]);
		kmem_cache_reap(m->caches[c]);
		kmem_cache_stats(m->caches[c], &cs);
		REQ((cs.objs_slab_inuse) == (0));
		REQ((cs.slabs) == (0));
		REQ(kmem_cache_verify(m->caches[c]) == 0);
	}
	kmem_cache_reap(m->raw_desc_cache);
	kmem_cache_reap(m->raw_desc_cache);
}

void mdm_end(struct mdm *m)
{
	struct memdesc_stats st;

	mdm_free_all(m);
	for (int c = 0; c < MDM_NCACHES; c++) {
		kmem_cache_destroy(m->caches[c]);
		m->caches[c] = NULL;
	}
	kmem_cache_destroy(m->raw_desc_cache);
	m->raw_desc_cache = NULL;
	memdesc_stats(&st);
	REQ((st.pages_folio) == (0));
	REQ((st.nr_folios) == (0));
	REQ((st.pages_split_held) == (0));
	REQ((memdesc_verify()) == (0));
}
