/* vmem_model: see vmem_model.h. Moved here from test_vmem_diff.c, draws unchanged. */
#include "vmem_model.h"
#include "mdt_fault.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond))                                                           \
			mdt_fail(__VA_ARGS__);                                         \
	} while (0)

struct req {
	uint64_t quanta;
	uint64_t align, phase, nocross;	/* bytes; align already defaulted */
	uint64_t minaddr, maxaddr;	/* maxaddr 0: no limit */
	bool x;
};

static bool model_used(const struct vmm *m, uint64_t q)
{
	return (m->used[q / 64] >> (q % 64)) & 1;
}

static void model_set(struct vmm *m, uint64_t q, uint64_t n, bool used)
{
	for (uint64_t i = q; i < q + n; i++) {
		CHECK(model_used(m, i) != used, "model: quantum %" PRIu64 " already in that state", i);
		if (used)
			m->used[i / 64] |= 1ull << (i % 64);
		else
			m->used[i / 64] &= ~(1ull << (i % 64));
	}
}

static uint64_t model_used_quanta(const struct vmm *m)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < VMM_WORDS; i++)
		n += (uint64_t)__builtin_popcountll(m->used[i]);
	return n;
}

/* Next free run at or after quantum *pos: its start and length; false when none. */
static bool model_next_run(const struct vmm *m, uint64_t *pos, uint64_t *start, uint64_t *len)
{
	uint64_t q = *pos;

	while (q < VMM_NQ && model_used(m, q)) {
		uint64_t w = ~m->used[q / 64] >> (q % 64);

		q += w ? (uint64_t)__builtin_ctzll(w) : 64 - q % 64;
	}
	if (q >= VMM_NQ)
		return false;
	*start = q;
	while (q < VMM_NQ && !model_used(m, q)) {
		uint64_t w = m->used[q / 64] >> (q % 64);

		q += w ? (uint64_t)__builtin_ctzll(w) : 64 - q % 64;
	}
	if (q > VMM_NQ)
		q = VMM_NQ;
	*len = q - *start;
	*pos = q;
	return true;
}

/* Does [a, a + size) meet @r? 128-bit arithmetic: nothing wraps. */
static bool req_ok(const struct req *r, u128 a)
{
	u128 size = (u128)r->quanta * VMM_Q, last = a + size - 1;

	if ((uint64_t)(a % r->align) != r->phase || a < r->minaddr)
		return false;
	if (r->maxaddr != 0 && a + size > r->maxaddr)
		return false;
	if (r->nocross != 0 && a / r->nocross != last / r->nocross)
		return false;
	return true;
}

/* The lowest start meeting @r inside the run of @len quanta at quantum @start. */
static bool model_fit(const struct vmm *m, uint64_t start, uint64_t len, const struct req *r,
		      uint64_t *addrp)
{
	u128 lo = (u128)m->base + (u128)start * VMM_Q;
	u128 end = lo + (u128)len * VMM_Q;		/* exclusive, may be 2^64 */
	u128 size = (u128)r->quanta * VMM_Q, a;

	if (len < r->quanta)
		return false;
	if (lo < r->minaddr)
		lo = ((u128)r->minaddr + VMM_Q - 1) / VMM_Q * VMM_Q;
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

static struct verdict model_judge(const struct vmm *m, const struct req *r)
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
static void model_run_at(const struct vmm *m, uint64_t q, uint64_t *start, uint64_t *len)
{
	uint64_t s = q, e = q;

	while (s > 0 && !model_used(m, s - 1))
		s--;
	while (e < VMM_NQ && !model_used(m, e))
		e++;
	*start = s;
	*len = e - s;
}

static uint64_t rnd(struct mdt_src *rng, uint64_t n)
{
	return mdt_src_below(rng, n);
}

static uint64_t random_quanta(struct mdt_src *rng)
{
	uint64_t p = rnd(rng, 100);

	if (p < 70)
		return 1 + rnd(rng, 8);
	if (p < 95)
		return 9 + rnd(rng, 56);
	return 65 + rnd(rng, 448);
}

static void random_req(struct mdt_src *rng, const struct vmm *m, struct req *r, uint64_t *rawalign)
{
	memset(r, 0, sizeof(*r));
	r->quanta = random_quanta(rng);
	r->x = rnd(rng, 100) < 40;
	r->align = VMM_Q;
	*rawalign = 0;
	if (!r->x)
		return;
	if (rnd(rng, 2)) {
		r->align = VMM_Q << rnd(rng, 7);
		*rawalign = r->align;
	}
	if (rnd(rng, 100) < 30)
		r->phase = rnd(rng, r->align / VMM_Q) * VMM_Q;
	if (rnd(rng, 100) < 20) {
		uint64_t need = r->phase + r->quanta * VMM_Q, nc = r->align;

		while (nc < need)
			nc <<= 1;
		r->nocross = nc << rnd(rng, 3);
	}
	if (rnd(rng, 100) < 20)
		r->minaddr = m->base + rnd(rng, VMM_NQ * VMM_Q);
	if (rnd(rng, 100) < 20) {
		u128 max = (u128)m->base + rnd(rng, VMM_NQ * VMM_Q) + 1;

		if (max > UINT64_MAX)
			max = UINT64_MAX;
		if (max > r->minaddr)
			r->maxaddr = (uint64_t)max;
	}
}

static void check_result(const struct vmm *m, const struct req *r, int policy, uint64_t addr,
			 const struct verdict *v)
{
	uint64_t q, start, len, want;

	CHECK(v->any, "vmem found %#" PRIx64 " where the model has no fit", addr);
	CHECK(addr >= m->base && (addr - m->base) % VMM_Q == 0, "bad start %#" PRIx64, addr);
	q = (addr - m->base) / VMM_Q;
	CHECK(q + r->quanta <= VMM_NQ, "range past the arena");
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

static void do_alloc(vmem_t *vm, struct vmm *m, struct mdt_src *rng, int policy,
		     struct vmm_live *live, size_t *nlive, struct vmm_stats *st)
{
	struct req r;
	struct verdict v;
	uint64_t rawalign;
	uintptr_t addr = 0;
	int rc, flags = rnd(rng, 4) == 0 && policy == VMEM_INSTANTFIT ? 0 : policy;

	random_req(rng, m, &r, &rawalign);
	v = model_judge(m, &r);
	mdt_fault_begin();
	if (r.x)
		rc = vmem_xalloc(vm, r.quanta * VMM_Q, rawalign, r.phase, r.nocross, r.minaddr,
				 r.maxaddr, flags, &addr);
	else
		rc = vmem_alloc(vm, r.quanta * VMM_Q, flags, &addr);
	if (rc == -ENOMEM && mdt_fault_fired()) {
		st->enomem++;		/* an injected fault: nothing changed */
		return;
	}
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
	model_set(m, (addr - m->base) / VMM_Q, r.quanta, true);
	if (policy == VMEM_NEXTFIT)
		m->rotor = (int64_t)((addr - m->base) / VMM_Q);
	live[(*nlive)++] = (struct vmm_live){ addr, r.quanta, r.x };
	if (r.x)
		st->xallocs++;
	else
		st->allocs++;
}

static void do_free(vmem_t *vm, struct vmm *m, struct mdt_src *rng, struct vmm_live *live,
		    size_t *nlive, struct vmm_stats *st)
{
	size_t i = rnd(rng, *nlive);
	struct vmm_live l = live[i];

	live[i] = live[--*nlive];
	if (rnd(rng, 2))
		MDT_FREE(CHECK(vmem_free_checked(vm, l.addr, l.quanta * VMM_Q) == 0,
			       "free of a live range failed"));
	else if (l.x)
		MDT_FREE(vmem_xfree(vm, l.addr, l.quanta * VMM_Q));
	else
		MDT_FREE(vmem_free(vm, l.addr, l.quanta * VMM_Q));
	model_set(m, (l.addr - m->base) / VMM_Q, l.quanta, false);
	st->frees++;
}

/*
 * vmem_resize of a live range to a random size: a grow must succeed exactly when the
 * quanta after the range are free in the model (one span: no span boundary inside),
 * and a shrink always (no tag refill fails here). The start never moves.
 */
static void do_resize(vmem_t *vm, struct vmm *m, struct mdt_src *rng, struct vmm_live *live,
		      size_t nlive, struct vmm_stats *st)
{
	struct vmm_live *l = &live[rnd(rng, nlive)];
	uint64_t newq = 1 + rnd(rng, 2 * l->quanta + 8), q0 = (l->addr - m->base) / VMM_Q;
	bool fits = true;
	int rc;

	if (newq > l->quanta) {
		uint64_t end = q0 + newq;

		for (uint64_t q = q0 + l->quanta; q < end && fits; q++)
			fits = q < VMM_NQ && !model_used(m, q);
	}
	rc = vmem_resize(vm, l->addr, l->quanta * VMM_Q, newq * VMM_Q);
	if (!fits) {
		CHECK(rc == -ENOMEM, "grow of %#" PRIx64 " from %" PRIu64 " to %" PRIu64
		      " quanta: %d, the model has no room", l->addr, l->quanta, newq, rc);
		st->resize_enomem++;
		return;
	}
	CHECK(rc == 0, "resize of %#" PRIx64 " from %" PRIu64 " to %" PRIu64 " quanta: %d "
	      "(the model fits it)", l->addr, l->quanta, newq, rc);
	if (newq > l->quanta)
		model_set(m, q0 + l->quanta, newq - l->quanta, true);
	else if (newq < l->quanta)
		model_set(m, q0 + newq, l->quanta - newq, false);
	l->quanta = newq;
	st->resizes++;
}

/*
 * vmem_alloc_next of the quanta after a live range (a grow's first step, pages.c
 * section 7): it must succeed exactly when they are free in the model (one span), and
 * vmem_joinable must then say yes. The new range is then joined (the grow's last step)
 * or kept as a live range of its own (a grow undone: freed later on its own).
 */
static void do_alloc_next(vmem_t *vm, struct vmm *m, struct mdt_src *rng,
			  struct vmm_live *live, size_t *nlive, struct vmm_stats *st)
{
	struct vmm_live *l = &live[rnd(rng, *nlive)];
	uint64_t more = 1 + rnd(rng, l->quanta + 8);
	uint64_t q1 = (l->addr - m->base) / VMM_Q + l->quanta;
	bool fits = q1 + more <= VMM_NQ;
	int rc;

	for (uint64_t q = q1; q < q1 + more && fits; q++)
		fits = !model_used(m, q);
	rc = vmem_alloc_next(vm, l->addr, l->quanta * VMM_Q, more * VMM_Q);
	if (!fits) {
		CHECK(rc == -ENOMEM, "alloc_next after %#" PRIx64 " + %" PRIu64 " of %" PRIu64
		      " quanta: %d, the model has no room", l->addr, l->quanta, more, rc);
		st->next_enomem++;
		return;
	}
	CHECK(rc == 0, "alloc_next after %#" PRIx64 " + %" PRIu64 " of %" PRIu64 " quanta: %d "
	      "(the model fits it)", l->addr, l->quanta, more, rc);
	model_set(m, q1, more, true);
	CHECK(vmem_joinable(vm, l->addr, l->quanta * VMM_Q, more * VMM_Q) == 0,
	      "the range alloc_next made after %#" PRIx64 " is not joinable", l->addr);
	if (rnd(rng, 2)) {
		CHECK(vmem_join(vm, l->addr, l->quanta * VMM_Q, more * VMM_Q) == 0,
		      "join after alloc_next at %#" PRIx64 " failed", l->addr);
		l->quanta += more;
	} else {
		live[(*nlive)++] = (struct vmm_live){ m->base + q1 * VMM_Q, more, false };
	}
	st->nexts++;
}

const uint64_t vmm_bases[VMM_NBASES] = {
	0,				/* address 0 */
	0x12345 * VMM_Q,		/* an odd base: alignment is absolute */
	(uint64_t)0 - VMM_NQ * VMM_Q,	/* ending at UINTPTR_MAX */
};

void vmm_init(struct vmm *r, struct mdt_src *src)
{
	memset(r, 0, sizeof(*r));
	r->src = src;
}

void vmm_begin(struct vmm *r, int policy, const char *name, uint64_t base)
{
	memset(r->used, 0, sizeof(r->used));
	r->base = base;
	r->rotor = -1;
	r->policy = policy;
	r->nlive = 0;
	/* NULL only if an injected fault made it fail (then the run has no arena). */
	(void)MDT_ALLOC_OK(r->vm, vmem_create(name, base, VMM_NQ * VMM_Q, VMM_Q, NULL, NULL,
					      NULL, 0, 0));
}

void vmm_alloc(struct vmm *r)
{
	do_alloc(r->vm, r, r->src, r->policy, r->live, &r->nlive, &r->st);
}

void vmm_free(struct vmm *r)
{
	do_free(r->vm, r, r->src, r->live, &r->nlive, &r->st);
}

void vmm_resize(struct vmm *r)
{
	do_resize(r->vm, r, r->src, r->live, r->nlive, &r->st);
}

void vmm_alloc_next(struct vmm *r)
{
	do_alloc_next(r->vm, r, r->src, r->live, &r->nlive, &r->st);
}

void vmm_bad_free(struct vmm *r)
{
	uint64_t addr, quanta;
	int rc;

	if (r->nlive && rnd(r->src, 2)) {
		/* A live range with its start or its size off by one quantum. */
		struct vmm_live l = r->live[rnd(r->src, r->nlive)];

		addr = l.addr + (rnd(r->src, 2) ? VMM_Q : 0);
		quanta = l.quanta + (rnd(r->src, 2) || l.quanta == 1 ? 1 : (uint64_t)-1);
	} else {
		addr = r->base + rnd(r->src, VMM_NQ) * VMM_Q;
		quanta = 1 + rnd(r->src, 8);
	}
	for (size_t i = 0; i < r->nlive; i++)
		if (r->live[i].addr == addr && r->live[i].quanta == quanta)
			return;		/* exactly a live range: not a bad free */
	rc = vmem_free_checked(r->vm, addr, quanta * VMM_Q);
	CHECK(rc == -EINVAL, "bad free of %#" PRIx64 " + %" PRIu64 " quanta returned %d", addr,
	      quanta, rc);
	r->st.bad_frees++;
}

void vmm_check(struct vmm *r)
{
	CHECK(vmem_check(r->vm) == 0, "vmem_check failed");
	CHECK(vmem_size(r->vm, VMEM_ALLOC) == model_used_quanta(r) * VMM_Q &&
	      vmem_size(r->vm, VMEM_FREE) == (VMM_NQ - model_used_quanta(r)) * VMM_Q,
	      "vmem_size disagrees with the model");
}

void vmm_end(struct vmm *r)
{
	uintptr_t all;

	if (!r->vm)
		return;
	while (r->nlive > 0)
		vmm_free(r);
	CHECK(vmem_check(r->vm) == 0, "vmem_check failed after freeing everything");
	CHECK(vmem_size(r->vm, VMEM_ALLOC) == 0, "%zu bytes allocated after freeing everything",
	      vmem_size(r->vm, VMEM_ALLOC));
	CHECK(vmem_alloc(r->vm, VMM_NQ * VMM_Q, r->policy, &all) == 0 && all == r->base,
	      "the whole span is not one free segment");	/* coalesced back */
	vmem_free(r->vm, all, VMM_NQ * VMM_Q);
	vmem_destroy(r->vm);
	r->vm = NULL;
}
