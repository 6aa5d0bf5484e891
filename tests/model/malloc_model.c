/* malloc_model: see malloc_model.h. Moved here from test_malloc_diff.c, draws unchanged. */
#include "malloc_model.h"
#include "mdt_fault.h"
#include "md_malloc.h"
#include "memdesc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		if (!(cond))                                                             \
			mdt_fail(__VA_ARGS__);                                           \
	} while (0)

static size_t pick_size(struct mdt_src *r)
{
	switch (mdt_src_below(r, 16)) {
	case 0:
		return 32768 - 64 + mdt_src_below(r, 128);	/* the boundary */
	case 1:
		return 32768 + mdt_src_below(r, 1 << 18);
	case 2:
		return mdt_src_below(r, 32769);
	case 3:
		return 0;
	default:
		return mdt_src_below(r, 1024);
	}
}

/* Pattern: every byte for small blocks; for large ones, one byte per 61. */
static void fill(struct mmm_block *l)
{
	size_t step = l->step = l->size > 65536 ? 61 : 1;

	for (size_t i = 0; i < l->size; i += step)
		l->p[i] = (uint8_t)(l->seed + i);
	if (l->size)
		l->p[l->size - 1] = (uint8_t)(l->seed + l->size - 1);
	l->filled = l->size;
}

static void verify(struct mmm *m, const struct mmm_block *l, size_t upto)
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
		      (void *)l->p, l->size, i, (size_t)(l - m->tab));
	if (upto == l->size && upto && l->size == l->filled)
		CHECK(l->p[upto - 1] == (uint8_t)(l->seed + upto - 1), "%p: last byte",
		      (void *)l->p);
}

static int cmp_block(const void *a, const void *b)
{
	const struct mmm_block *x = a, *y = b;

	return x->p < y->p ? -1 : x->p > y->p;
}

void mmm_check_overlaps(struct mmm *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->slots; i++)
		if (m->tab[i].p)
			m->sorted[n++] = m->tab[i];
	qsort(m->sorted, n, sizeof(m->sorted[0]), cmp_block);
	for (size_t i = 1; i < n; i++)
		CHECK(m->sorted[i - 1].p + md_malloc_usable_size(m->sorted[i - 1].p) <=
		      m->sorted[i].p, "blocks %p and %p overlap", (void *)m->sorted[i - 1].p,
		      (void *)m->sorted[i].p);
}

static void op_free(struct mmm_block *l, unsigned kind)
{
	if (kind == 0)
		md_free_sized(l->p, l->size);
	else
		md_free(l->p);
	l->p = NULL;
}

/* realloc: contents kept up to the smaller size. */
static void op_realloc(struct mmm *m, struct mmm_block *l)
{
	size_t n = pick_size(m->src) + 1;
	unsigned char *q;

	if (!MDT_ALLOC_OK(q, md_realloc(l->p, n))) {
		verify(m, l, l->size);	/* an injected fault: the block is untouched */
		return;
	}
	l->p = q;
	l->align = 16;
	if (n < l->size)
		l->size = n;	/* what survives */
	verify(m, l, l->size);
	l->size = n;
	l->seed = (uint8_t)mdt_src_next(m->src);
	fill(l);
}

static void op_alloc(struct mmm *m, struct mmm_block *l, unsigned kind)
{
	struct mdt_src *r = m->src;
	size_t n = pick_size(r);
	bool ok;
	int rc;

	l->align = 16;
	l->seed = (uint8_t)mdt_src_next(r);
	switch (kind % 4) {
	case 0:
		ok = MDT_ALLOC_OK(l->p, md_malloc(n));
		break;
	case 1:
		ok = MDT_ALLOC_OK(l->p, md_calloc(1 + mdt_src_below(r, 4), n));
		if (ok) {
			for (size_t i = 0; i < n; i += 7)
				CHECK(l->p[i] == 0, "calloc: byte %zu", i);
		}
		break;
	case 2:
		l->align = (size_t)1 << mdt_src_below(r, 16);
		ok = MDT_ALLOC_OK(l->p, md_aligned_alloc(l->align, n));
		break;
	default:
		l->align = (size_t)1 << (3 + mdt_src_below(r, 11));
		ok = MDT_ERR_OK(rc, md_posix_memalign((void **)&l->p, l->align, n));
		if (!ok)
			CHECK(l->p == NULL, "posix_memalign failed and changed the pointer");
		break;
	}
	if (!ok)
		return;		/* an injected fault: nothing allocated */
	l->size = n;
	fill(l);
	verify(m, l, n);
}

void mmm_op(struct mmm *m)
{
	struct mmm_block *l = &m->tab[mdt_src_below(m->src, m->slots)];
	unsigned kind = (unsigned)mdt_src_below(m->src, 10);

	if (m->trace_slot >= 0 && l == &m->tab[m->trace_slot])
		fprintf(stderr, "op %zu kind %u p %p size %zu align %zu\n", m->opno, kind,
			(void *)l->p, l->size, l->align);
	if (l->p && kind < 5) {
		verify(m, l, l->size);
		op_free(l, kind);
	} else if (l->p) {
		op_realloc(m, l);
	} else {
		op_alloc(m, l, kind);
	}
	m->opno++;
}

/* ---- calls that must be refused or reported (fuzz target only) ----------------- */

static size_t nreports;

static void count_report(const char *msg, size_t len)
{
	(void)msg;
	(void)len;
	nreports++;
}

/* Run a bad free through @free_fn and expect exactly one report. */
#define EXPECT_REPORT(call, what)                                                        \
	do {                                                                             \
		size_t before_ = nreports;                                               \
		md_malloc_error_hook(count_report);                                      \
		call;                                                                    \
		md_malloc_error_hook(NULL);                                              \
		CHECK(nreports == before_ + 1, "%s: %zu reports", what,                  \
		      nreports - before_);                                               \
	} while (0)

/* Sizes no allocation can have: above every limit, or overflowing when rounded. */
static size_t huge_size(struct mdt_src *r)
{
	return (SIZE_MAX >> mdt_src_below(r, 24)) - (size_t)mdt_src_below(r, 1 << 16);
}

static void bad_alloc(struct mmm *m)
{
	struct mdt_src *r = m->src;
	size_t align = (size_t)mdt_src_below(r, 1 << 13);
	void *p = (void *)&m, *q;
	int rc;

	switch (mdt_src_below(r, 4)) {
	case 0:
		if (align && !(align & (align - 1)))
			align = 3 * align;	/* not a power of two */
		errno = 0;
		q = md_aligned_alloc(align, pick_size(r));
		CHECK(q == NULL && errno == EINVAL, "aligned_alloc(%zu): %p errno %d", align, q,
		      errno);
		break;
	case 1:
		if (align && !(align & (align - 1)) && align >= sizeof(void *))
			align = align + 1;	/* not a power of two, or below a pointer */
		rc = md_posix_memalign(&p, align, pick_size(r));
		CHECK(rc == EINVAL && p == (void *)&m, "posix_memalign(%zu) = %d", align, rc);
		break;
	case 2:
		errno = 0;
		q = md_calloc(SIZE_MAX / 2 + 1 + mdt_src_below(r, 1 << 20), 2 + mdt_src_below(r, 8));
		CHECK(q == NULL && errno == ENOMEM, "calloc overflow: %p errno %d", q, errno);
		break;
	default:
		errno = 0;
		q = md_malloc(huge_size(r));
		CHECK(q == NULL && errno == ENOMEM, "huge malloc: %p errno %d", q, errno);
		break;
	}
}

static void bad_realloc(struct mmm *m, struct mmm_block *l)
{
	void *q;

	errno = 0;
	if (mdt_src_below(m->src, 2))
		q = md_realloc(l->p, huge_size(m->src));
	else
		q = md_reallocarray(l->p, SIZE_MAX / 4 + mdt_src_below(m->src, 1 << 20), 8);
	CHECK(q == NULL && errno == ENOMEM, "huge realloc: %p errno %d", q, errno);
	verify(m, l, l->size);
}

static void bad_free(struct mmm *m, struct mmm_block *l)
{
	size_t usable = md_malloc_usable_size(l->p);
	int local;

	switch (mdt_src_below(m->src, 4)) {
	case 0: {
		/* Interior pointer: 16 bytes in, or a later page of a large block. */
		size_t off = usable > MD_SMALL_MAX && mdt_src_below(m->src, 2) ? 4096 : 16;

		if (usable <= off)
			return;
		EXPECT_REPORT(md_free(l->p + off), "interior free");
		verify(m, l, l->size);
		break;
	}
	case 1:
		EXPECT_REPORT(md_free_sized(l->p, usable + 1 + mdt_src_below(m->src, 4096)),
			      "free_sized above the usable size");
		verify(m, l, l->size);
		break;
	case 2:
		verify(m, l, l->size);
		md_free(l->p);
		EXPECT_REPORT(md_free(l->p), "double free");
		l->p = NULL;
		break;
	default:
		EXPECT_REPORT(md_free(&local), "free of a stack address");
		break;
	}
}

void mmm_bad(struct mmm *m)
{
	struct mmm_block *l = &m->tab[mdt_src_below(m->src, m->slots)];

	if (!l->p) {
		bad_alloc(m);
	} else if (mdt_src_below(m->src, 3) == 0) {
		bad_realloc(m, l);
	} else {
		bad_free(m, l);
	}
}

void mmm_init(struct mmm *m, struct mdt_src *src, size_t slots)
{
	memset(m, 0, sizeof(*m));
	m->src = src;
	m->slots = slots;
	m->trace_slot = -1;
	m->tab = calloc(slots, sizeof(m->tab[0]));
	m->sorted = calloc(slots, sizeof(m->sorted[0]));
	CHECK(m->tab && m->sorted, "mmm_init: no memory");
}

void mmm_fini(struct mmm *m)
{
	free(m->tab);
	free(m->sorted);
	memset(m, 0, sizeof(*m));
}

void mmm_end(struct mmm *m)
{
	mmm_check_overlaps(m);
	for (size_t i = 0; i < m->slots; i++) {
		if (m->tab[i].p) {
			verify(m, &m->tab[i], m->tab[i].size);
			md_free(m->tab[i].p);
			m->tab[i].p = NULL;
		}
	}
	md_malloc_trim(0);
	CHECK(md_malloc_verify() == 0, "md_malloc_verify failed");
}
