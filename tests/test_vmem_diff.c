/*
 * test_vmem_diff: vmem against a bitmap model.
 *
 * For each fit policy, a seeded sequence of mdt_scaled(1,000,000) operations (vmem_alloc,
 * vmem_xalloc with random align/phase/nocross/minaddr/maxaddr, frees) runs on an arena
 * of one span and on a bitmap of its quanta. Every result must be free in the model,
 * meet its constraints, and be what the policy's exact rule (vmem.c, section 6) allows:
 *  - the range is the lowest fitting one inside its free segment;
 *  - best-fit: the segment is a smallest fitting free segment;
 *  - instant-fit: the segment's list is the lowest list at or above ceil(log2(size))
 *    holding a fitting segment, else list floor(log2(size));
 *  - next-fit: the first fitting segment in address order from the rotor, wrapping;
 *    the rotor is the start of the previous next-fit result, and the search begins
 *    with the free segment containing it (the one its tag coalesced into) or else the
 *    first free segment after it;
 *  - -ENOMEM only when no free segment can hold the request.
 * With one span and coalescing, vmem's free segments are exactly the model's maximal
 * free runs, which is what makes these checks exact. The model's arithmetic is done in
 * 128 bits and by stepping candidates, independently of vmem_fit(). Epochs move the
 * span between address 0, an odd base and the top of the address space.
 * vmem_check() runs every 1,000 operations. Replay with MDT_SEED.
 */
#include "mdt.h"
#include "vmem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Q	((uint64_t)4096)
#define NQ	4096u			/* quanta in the arena */
#define WORDS	(NQ / 64)
#define EPOCHS	3

typedef unsigned __int128 u128;

/* Check's ck_assert writes a checkpoint per call; in the hot loop, only failures call it. */
#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond))                                                           \
			ck_abort_msg(__VA_ARGS__);                                     \
	} while (0)

struct model {
	uint64_t base;			/* the span's start */
	int64_t rotor;			/* quantum of the last next-fit result, -1 none */
	uint64_t used[WORDS];		/* bit set = quantum allocated */
};

struct live {
	uint64_t addr;
	uint64_t quanta;
	bool x;				/* allocated with vmem_xalloc */
};

struct req {
	uint64_t quanta;
	uint64_t align, phase, nocross;	/* bytes; align already defaulted */
	uint64_t minaddr, maxaddr;	/* maxaddr 0: no limit */
	bool x;
};

static bool model_used(const struct model *m, uint64_t q)
{
	return (m->used[q / 64] >> (q % 64)) & 1;
}

static void model_set(struct model *m, uint64_t q, uint64_t n, bool used)
{
	for (uint64_t i = q; i < q + n; i++) {
		CHECK(model_used(m, i) != used, "model: quantum %" PRIu64 " already in that state", i);
		if (used)
			m->used[i / 64] |= 1ull << (i % 64);
		else
			m->used[i / 64] &= ~(1ull << (i % 64));
	}
}

static uint64_t model_used_quanta(const struct model *m)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < WORDS; i++)
		n += (uint64_t)__builtin_popcountll(m->used[i]);
	return n;
}

/* Next free run at or after quantum *pos: its start and length; false when none. */
static bool model_next_run(const struct model *m, uint64_t *pos, uint64_t *start, uint64_t *len)
{
	uint64_t q = *pos;

	while (q < NQ && model_used(m, q)) {
		uint64_t w = ~m->used[q / 64] >> (q % 64);

		q += w ? (uint64_t)__builtin_ctzll(w) : 64 - q % 64;
	}
	if (q >= NQ)
		return false;
	*start = q;
	while (q < NQ && !model_used(m, q)) {
		uint64_t w = m->used[q / 64] >> (q % 64);

		q += w ? (uint64_t)__builtin_ctzll(w) : 64 - q % 64;
	}
	if (q > NQ)
		q = NQ;
	*len = q - *start;
	*pos = q;
	return true;
}

/* Does [a, a + size) meet @r? 128-bit arithmetic: nothing wraps. */
static bool req_ok(const struct req *r, u128 a)
{
	u128 size = (u128)r->quanta * Q, last = a + size - 1;

	if ((uint64_t)(a % r->align) != r->phase || a < r->minaddr)
		return false;
	if (r->maxaddr != 0 && a + size > r->maxaddr)
		return false;
	if (r->nocross != 0 && a / r->nocross != last / r->nocross)
		return false;
	return true;
}

/* The lowest start meeting @r inside the run of @len quanta at quantum @start. */
static bool model_fit(const struct model *m, uint64_t start, uint64_t len, const struct req *r,
		      uint64_t *addrp)
{
	u128 lo = (u128)m->base + (u128)start * Q;
	u128 end = lo + (u128)len * Q;		/* exclusive, may be 2^64 */
	u128 size = (u128)r->quanta * Q, a;

	if (len < r->quanta)
		return false;
	if (lo < r->minaddr)
		lo = ((u128)r->minaddr + Q - 1) / Q * Q;
	a = (lo + r->align - 1 - r->phase) / r->align * r->align + r->phase;
	if (a < lo)
		a += r->align;
	for (; a + size <= end; a += r->align) {
		if (r->maxaddr != 0 && a + size > r->maxaddr)
			return false;
		if (req_ok(r, a)) {
			*addrp = (uint64_t)a;
			return true;
		}
	}
	return false;
}

static unsigned log2_floor(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x);
}

/* What the model says about @r: the candidate free runs, the policy's rule. */
struct verdict {
	bool any;			/* some run fits */
	uint64_t best_len;		/* smallest fitting run */
	unsigned instant_list;		/* the list instant-fit must take from */
	uint64_t next_start;		/* the run next-fit must take from */
};

static struct verdict model_judge(const struct model *m, const struct req *r)
{
	struct verdict v = { .best_len = UINT64_MAX, .instant_list = 99,
			     .next_start = UINT64_MAX };
	uint64_t first_fit = UINT64_MAX;
	unsigned floor = log2_floor(r->quanta);
	unsigned ceil = floor + ((r->quanta & (r->quanta - 1)) != 0);
	bool floor_fits = false;
	uint64_t pos = 0, start, len, addr;

	while (model_next_run(m, &pos, &start, &len)) {
		unsigned list;

		if (!model_fit(m, start, len, r, &addr))
			continue;
		v.any = true;
		if (first_fit == UINT64_MAX)
			first_fit = start;
		if (v.next_start == UINT64_MAX && (int64_t)(start + len) > m->rotor)
			v.next_start = start;
		if (len < v.best_len)
			v.best_len = len;
		list = log2_floor(len);
		if (list >= ceil && list < v.instant_list)
			v.instant_list = list;
		floor_fits |= list == floor;
	}
	if (v.instant_list == 99 && floor_fits)
		v.instant_list = floor;
	if (v.next_start == UINT64_MAX)
		v.next_start = first_fit;		/* wrapped around */
	return v;
}

/* The free run of the model containing quantum @q. */
static void model_run_at(const struct model *m, uint64_t q, uint64_t *start, uint64_t *len)
{
	uint64_t s = q, e = q;

	while (s > 0 && !model_used(m, s - 1))
		s--;
	while (e < NQ && !model_used(m, e))
		e++;
	*start = s;
	*len = e - s;
}

static uint64_t rnd(struct mdt_rng *rng, uint64_t n)
{
	return mdt_rng_below(rng, n);
}

static uint64_t random_quanta(struct mdt_rng *rng)
{
	uint64_t p = rnd(rng, 100);

	if (p < 70)
		return 1 + rnd(rng, 8);
	if (p < 95)
		return 9 + rnd(rng, 56);
	return 65 + rnd(rng, 448);
}

static void random_req(struct mdt_rng *rng, const struct model *m, struct req *r, uint64_t *rawalign)
{
	memset(r, 0, sizeof(*r));
	r->quanta = random_quanta(rng);
	r->x = rnd(rng, 100) < 40;
	r->align = Q;
	*rawalign = 0;
	if (!r->x)
		return;
	if (rnd(rng, 2)) {
		r->align = Q << rnd(rng, 7);
		*rawalign = r->align;
	}
	if (rnd(rng, 100) < 30)
		r->phase = rnd(rng, r->align / Q) * Q;
	if (rnd(rng, 100) < 20) {
		uint64_t need = r->phase + r->quanta * Q, nc = r->align;

		while (nc < need)
			nc <<= 1;
		r->nocross = nc << rnd(rng, 3);
	}
	if (rnd(rng, 100) < 20)
		r->minaddr = m->base + rnd(rng, NQ * Q);
	if (rnd(rng, 100) < 20) {
		u128 max = (u128)m->base + rnd(rng, NQ * Q) + 1;

		if (max > UINT64_MAX)
			max = UINT64_MAX;
		if (max > r->minaddr)
			r->maxaddr = (uint64_t)max;
	}
}

struct run_stats {
	uint64_t allocs, xallocs, enomem, frees;
};

static void check_result(const struct model *m, const struct req *r, int policy, uint64_t addr,
			 const struct verdict *v)
{
	uint64_t q, start, len, want;

	CHECK(v->any, "vmem found %#" PRIx64 " where the model has no fit", addr);
	CHECK(addr >= m->base && (addr - m->base) % Q == 0, "bad start %#" PRIx64, addr);
	q = (addr - m->base) / Q;
	CHECK(q + r->quanta <= NQ, "range past the arena");
	CHECK(req_ok(r, addr), "%#" PRIx64 " breaks the constraints", addr);
	model_run_at(m, q, &start, &len);
	CHECK(len >= r->quanta && q + r->quanta <= start + len,
		      "%#" PRIx64 " + %" PRIu64 " quanta is not free in the model", addr, r->quanta);
	CHECK(model_fit(m, start, len, r, &want), "model: no fit in the run of the result");
	CHECK(addr == want, "%#" PRIx64 " is not the lowest fit %#" PRIx64 " of its segment",
		      addr, want);
	if (policy == VMEM_BESTFIT)
		CHECK(len == v->best_len, "best-fit took a segment of %" PRIu64
			      " quanta, the smallest fitting has %" PRIu64, len, v->best_len);
	if (policy == VMEM_INSTANTFIT)
		CHECK(log2_floor(len) == v->instant_list, "instant-fit took list %u, "
			      "the rule says %u", log2_floor(len), v->instant_list);
	if (policy == VMEM_NEXTFIT)
		CHECK(start == v->next_start, "next-fit took the segment at quantum %" PRIu64
		      ", the first fit from the rotor is at %" PRIu64, start, v->next_start);
}

static void do_alloc(vmem_t *vm, struct model *m, struct mdt_rng *rng, int policy,
		     struct live *live, size_t *nlive, struct run_stats *st)
{
	struct req r;
	struct verdict v;
	uint64_t rawalign;
	uintptr_t addr = 0;
	int rc, flags = rnd(rng, 4) == 0 && policy == VMEM_INSTANTFIT ? 0 : policy;

	random_req(rng, m, &r, &rawalign);
	v = model_judge(m, &r);
	if (r.x)
		rc = vmem_xalloc(vm, r.quanta * Q, rawalign, r.phase, r.nocross, r.minaddr,
				 r.maxaddr, flags, &addr);
	else
		rc = vmem_alloc(vm, r.quanta * Q, flags, &addr);
	if (rc == -ENOMEM) {
		CHECK(!v.any, "-ENOMEM but the model fits %" PRIu64 " quanta (align %#"
			      PRIx64 " phase %#" PRIx64 " nocross %#" PRIx64 " min %#" PRIx64
			      " max %#" PRIx64 ")", r.quanta, r.align, r.phase, r.nocross,
			      r.minaddr, r.maxaddr);
		st->enomem++;
		return;
	}
	CHECK(rc == 0, "vmem returned %d", rc);
	check_result(m, &r, policy, addr, &v);
	model_set(m, (addr - m->base) / Q, r.quanta, true);
	if (policy == VMEM_NEXTFIT)
		m->rotor = (int64_t)((addr - m->base) / Q);
	live[(*nlive)++] = (struct live){ addr, r.quanta, r.x };
	if (r.x)
		st->xallocs++;
	else
		st->allocs++;
}

static void do_free(vmem_t *vm, struct model *m, struct mdt_rng *rng, struct live *live,
		    size_t *nlive, struct run_stats *st)
{
	size_t i = rnd(rng, *nlive);
	struct live l = live[i];

	live[i] = live[--*nlive];
	if (rnd(rng, 2))
		CHECK(vmem_free_checked(vm, l.addr, l.quanta * Q) == 0, "free of a live range failed");
	else if (l.x)
		vmem_xfree(vm, l.addr, l.quanta * Q);
	else
		vmem_free(vm, l.addr, l.quanta * Q);
	model_set(m, (l.addr - m->base) / Q, l.quanta, false);
	st->frees++;
}

static const uint64_t bases[EPOCHS] = {
	0,				/* address 0 */
	0x12345 * Q,			/* an odd base: alignment is absolute */
	(uint64_t)0 - NQ * Q,		/* ending at UINTPTR_MAX */
};

static void run_policy(int policy, const char *name, uint64_t seed_salt)
{
	uint64_t seed = mdt_seed(0x766d656d64696666ull) ^ seed_salt;
	size_t ops = mdt_scaled(1000000), per_epoch = ops / EPOCHS + 1, nlive = 0;
	struct live *live = calloc(NQ, sizeof(*live));
	struct run_stats st = { 0 };
	struct mdt_rng rng;

	ck_assert_ptr_nonnull(live);
	mdt_rng_init(&rng, seed);
	for (int e = 0; e < EPOCHS; e++) {
		struct model m = { .base = bases[e], .rotor = -1 };
		vmem_t *vm = vmem_create(name, bases[e], NQ * Q, Q, NULL, NULL, NULL, 0, 0);
		uintptr_t all;

		ck_assert_ptr_nonnull(vm);
		for (size_t op = 0; op < per_epoch; op++) {
			if (nlive == 0 || rnd(&rng, 100) < 52)
				do_alloc(vm, &m, &rng, policy, live, &nlive, &st);
			else
				do_free(vm, &m, &rng, live, &nlive, &st);
			if (op % 1000 == 999) {
				CHECK(vmem_check(vm) == 0, "vmem_check failed after op %zu", op);
				CHECK(vmem_size(vm, VMEM_ALLOC) == model_used_quanta(&m) * Q &&
				      vmem_size(vm, VMEM_FREE) == (NQ - model_used_quanta(&m)) * Q,
				      "vmem_size disagrees with the model");
			}
		}
		while (nlive > 0)
			do_free(vm, &m, &rng, live, &nlive, &st);
		ck_assert_int_eq(vmem_check(vm), 0);
		ck_assert_uint_eq(vmem_size(vm, VMEM_ALLOC), 0);
		ck_assert_int_eq(vmem_alloc(vm, NQ * Q, policy, &all), 0);	/* one segment */
		ck_assert_uint_eq(all, bases[e]);
		vmem_free(vm, all, NQ * Q);
		vmem_destroy(vm);
	}
	fprintf(stderr, "test_vmem_diff %s (seed %#" PRIx64 "): %" PRIu64 " allocs, %" PRIu64
		" xallocs, %" PRIu64 " -ENOMEM, %" PRIu64 " frees\n", name, seed, st.allocs,
		st.xallocs, st.enomem, st.frees);
	free(live);
}

START_TEST(test_diff_instantfit)
{
	run_policy(VMEM_INSTANTFIT, "instantfit", 1);
}
END_TEST

START_TEST(test_diff_bestfit)
{
	run_policy(VMEM_BESTFIT, "bestfit", 2);
}
END_TEST

START_TEST(test_diff_nextfit)
{
	run_policy(VMEM_NEXTFIT, "nextfit", 3);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vmem_diff");
	TCase *tc = tcase_create("diff");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_diff_instantfit);
	tcase_add_test(tc, test_diff_bestfit);
	tcase_add_test(tc, test_diff_nextfit);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
