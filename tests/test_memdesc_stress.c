/*
 * test_memdesc_stress: threads allocate folios (of several sizes, some split) and slab
 * objects and hand them to each other through a mailbox, so that most frees are
 * cross-thread frees, while reader threads call pfn_to_memdesc() on random pages of the
 * frame space the whole time and check that every word they see is 0 or a well-formed
 * memdesc. Every allocation carries a pattern that its freeing thread checks. No sleeps,
 * no timing assertions: each worker runs a fixed number of operations. Run clean under
 * TSan and ASan.
 *
 * test_resize_readers: resizer threads grow and shrink their folios in place
 * (folio_resize) between a fixed floor and a ceiling, among threads that allocate and
 * free folios around them, while readers check that every page below each floor maps to
 * its folio at every moment (a resize never unmaps a page that stays), and the
 * resizers check that grown pages are mapped when the call returns and shrunk ones not.
 */
#include "mdt.h"
#include "memdesc.h"
#include "md_rcu.h"
#include "slab.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-bp.h>

#if defined(__SANITIZE_THREAD__)
/* liburcu is not instrumented (see test_slab.c). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:liburcu-bp.so\nrace:_urcu_bp_read_lock\n"
	       "race:_urcu_bp_read_unlock\n";
}
#endif

#define REQ(cond)                                                                      \
	do {                                                                           \
		if (!(cond))                                                           \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                \
	} while (0)

#define NWORKERS 4
#define NREADERS 2
#define MAILBOX 4096
#define NCACHES 3

struct item {
	int kind;		/* 0: folio, 1..NCACHES: object of caches[kind - 1] */
	void *p;
	uint64_t tag;
};

static struct {
	pthread_mutex_t lock;
	size_t n;
	struct item it[MAILBOX];
} mailbox = { .lock = PTHREAD_MUTEX_INITIALIZER };

static struct kmem_cache *caches[NCACHES];
static const size_t csize[NCACHES] = { 32, 192, 2048 };
static atomic_ulong max_pfn;
static atomic_int done;
static atomic_ulong reads_done;

static void stamp(void *p, uint64_t tag)
{
	memcpy(p, &tag, sizeof(tag));
}

static void check_stamp(const void *p, uint64_t tag)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	REQ(v == tag);
}

static void item_free(struct item *it)
{
	if (it->kind == 0) {
		struct folio *f = it->p;

		check_stamp(folio_address(f), it->tag);
		REQ(virt_to_folio(folio_address(f)) == f);
		folio_put(f);
	} else {
		check_stamp(it->p, it->tag);
		REQ(kmem_cache_free_checked(caches[it->kind - 1], it->p) == 0);
	}
}

static void *worker(void *arg)
{
	struct mdt_rng r;
	size_t nops = mdt_scaled(100000);
	struct item mine[64];
	int nmine = 0;

	mdt_rng_init(&r, (uint64_t)(uintptr_t)arg);
	for (size_t op = 0; op < nops; op++) {
		uint64_t x = mdt_rng_below(&r, 100);
		struct item it;

		if (x < 50) {
			/* Allocate and post. */
			it.tag = mdt_rng_next(&r);
			if (x < 15) {
				unsigned int order = (unsigned int)mdt_rng_below(&r, 5);
				struct folio *f = folio_alloc(order);

				REQ(f != NULL);
				if (order >= 2 && mdt_rng_below(&r, 4) == 0) {
					unsigned long pfn = folio_pfn(f);

					REQ(folio_split(f, 0) == 0);
					/* Keep the pieces beyond the first: post them too. */
					for (size_t k = 1; k < ((size_t)1 << order); k++) {
						struct folio *g = virt_to_folio(pfn_to_virt(pfn + k));

						REQ(g != NULL && folio_nr_pages(g) == 1);
						stamp(folio_address(g), it.tag + k);
						if (nmine < 64) {
							mine[nmine].kind = 0;
							mine[nmine].p = g;
							mine[nmine].tag = it.tag + k;
							nmine++;
						} else {
							folio_put(g);
						}
					}
				}
				{
					unsigned long end = folio_pfn(f) + folio_nr_pages(f);
					unsigned long cur = atomic_load(&max_pfn);

					while (end > cur && !atomic_compare_exchange_weak(&max_pfn, &cur, end))
						;
				}
				it.kind = 0;
				it.p = f;
				stamp(folio_address(f), it.tag);
			} else {
				it.kind = 1 + (int)mdt_rng_below(&r, NCACHES);
				it.p = kmem_cache_alloc(caches[it.kind - 1]);
				REQ(it.p != NULL);
				memset(it.p, 0x33, csize[it.kind - 1]);
				stamp(it.p, it.tag);
			}
			pthread_mutex_lock(&mailbox.lock);
			if (mailbox.n < MAILBOX) {
				mailbox.it[mailbox.n++] = it;
				it.p = NULL;
			}
			pthread_mutex_unlock(&mailbox.lock);
			if (it.p)
				item_free(&it);
		} else if (x < 95) {
			/* Take someone's allocation and free it. */
			bool got = false;

			pthread_mutex_lock(&mailbox.lock);
			if (mailbox.n) {
				size_t i = mdt_rng_below(&r, mailbox.n);

				it = mailbox.it[i];
				mailbox.it[i] = mailbox.it[--mailbox.n];
				got = true;
			}
			pthread_mutex_unlock(&mailbox.lock);
			if (got)
				item_free(&it);
		} else if (nmine) {
			item_free(&mine[--nmine]);
		}
	}
	while (nmine)
		item_free(&mine[--nmine]);
	return NULL;
}

static void *reader(void *arg)
{
	struct mdt_rng r;
	unsigned long n = 0;

	mdt_rng_init(&r, (uint64_t)(uintptr_t)arg);
	while (!atomic_load_explicit(&done, memory_order_relaxed) || n < 1000) {
		unsigned long top = atomic_load_explicit(&max_pfn, memory_order_relaxed) + 64;
		memdesc_t md = pfn_to_memdesc(mdt_rng_below(&r, top));

		if (md) {
			enum memdesc_type t = memdesc_type(md);

			REQ(t == MEMDESC_FOLIO || t == MEMDESC_SLAB);
			REQ(memdesc_ptr(md) != NULL);
			REQ(((uintptr_t)memdesc_ptr(md) & 15) == 0);
		}
		n++;
	}
	atomic_fetch_add(&reads_done, n);
	return NULL;
}

START_TEST(test_stress)
{
	pthread_t w[NWORKERS], rd[NREADERS];
	uint64_t seed = mdt_seed(777);
	struct memdesc_stats st;

	for (int c = 0; c < NCACHES; c++)
		caches[c] = kmem_cache_create("stress", csize[c], 0, c == 0 ? KMC_TYPESAFE_BY_RCU : 0);
	for (int i = 0; i < NREADERS; i++)
		REQ(pthread_create(&rd[i], NULL, reader, (void *)(uintptr_t)(seed + 100 + i)) == 0);
	for (int i = 0; i < NWORKERS; i++)
		REQ(pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)(seed + i)) == 0);
	for (int i = 0; i < NWORKERS; i++)
		REQ(pthread_join(w[i], NULL) == 0);
	atomic_store(&done, 1);
	for (int i = 0; i < NREADERS; i++)
		REQ(pthread_join(rd[i], NULL) == 0);
	REQ(atomic_load(&reads_done) >= 2000);
	while (mailbox.n)
		item_free(&mailbox.it[--mailbox.n]);
	/* Everything is free: the counters are back to zero. */
	kmem_thread_flush();
	for (int c = 0; c < NCACHES; c++) {
		struct kmem_cache_stats cs;

		REQ(kmem_cache_verify(caches[c]) == 0);
		kmem_cache_reap(caches[c]);
		kmem_cache_reap(caches[c]);
		kmem_cache_stats(caches[c], &cs);
		REQ(cs.objs_slab_inuse == 0);
		REQ(cs.slabs == 0);
		kmem_cache_destroy(caches[c]);
	}
	md_rcu_barrier();
	memdesc_purge();
	memdesc_stats(&st);
	REQ(st.pages_folio == 0);
	REQ(st.nr_folios == 0);
	REQ(st.pages_split_held == 0);
	REQ(st.pages_rcu_pending == 0);
	REQ(memdesc_verify() == 0);
}
END_TEST

#define NRESIZERS 2
#define RS_FLOOR 24		/* pages a resized folio never goes below */
#define RS_CEIL 300

static struct {
	_Atomic(unsigned long) pfn;
	_Atomic(memdesc_t) md;
} rs_slot[NRESIZERS];
static atomic_int rs_done;
static atomic_ulong rs_reads, rs_grows, rs_shrinks;

static void check_run(unsigned long pfn, size_t n, memdesc_t md)
{
	for (size_t k = 0; k < n; k++)
		REQ(pfn_to_memdesc(pfn + k) == md);
	REQ(pfn_to_memdesc(pfn + n) != md);
}

static struct folio *rs_folio[NRESIZERS];

static void *resizer(void *arg)
{
	int id = (int)(uintptr_t)arg;
	struct folio *f = rs_folio[id];
	struct mdt_rng r;
	size_t nops = mdt_scaled(20000), n = folio_nr_pages(f);
	unsigned long pfn = folio_pfn(f);
	memdesc_t md = memdesc_mk(f, MEMDESC_FOLIO);

	mdt_rng_init(&r, mdt_seed(4242) + (uint64_t)id);
	for (size_t op = 0; op < nops; op++) {
		size_t m = RS_FLOOR + mdt_rng_below(&r, RS_CEIL - RS_FLOOR);
		int rc;

		if (op % 64 == 63)
			memdesc_purge();	/* dirty tails back to the arena: room to grow */
		rc = folio_resize(f, m);
		REQ(rc == 0 || (rc == -ENOMEM && m > n));
		if (rc == 0 && m != n) {
			atomic_fetch_add(m > n ? &rs_grows : &rs_shrinks, 1);
			if (m > n)
				memset((char *)folio_address(f) + n * MEMDESC_PAGE_SIZE, id + 1,
				       (m - n) * MEMDESC_PAGE_SIZE);
			n = m;
		}
		REQ(folio_pfn(f) == pfn && folio_nr_pages(f) == n);
		check_run(pfn, n, md);
		REQ(((unsigned char *)folio_address(f))[n * MEMDESC_PAGE_SIZE - 1] == id + 1);
	}
	atomic_fetch_add(&rs_done, 1);
	/* The folio is freed by the test once the readers have stopped. */
	return NULL;
}

static void *rs_reader(void *arg)
{
	struct mdt_rng r;
	unsigned long n = 0;

	mdt_rng_init(&r, (uint64_t)(uintptr_t)arg);
	while (atomic_load_explicit(&rs_done, memory_order_relaxed) < NRESIZERS || n < 1000) {
		int id = (int)mdt_rng_below(&r, NRESIZERS);
		memdesc_t md = atomic_load(&rs_slot[id].md);
		unsigned long pfn = atomic_load(&rs_slot[id].pfn);
		memdesc_t seen;

		if (!md)
			continue;
		REQ(pfn_to_memdesc(pfn + mdt_rng_below(&r, RS_FLOOR)) == md);
		/* Above the floor: the folio, nothing, or another well-formed memdesc. */
		seen = pfn_to_memdesc(pfn + RS_FLOOR + mdt_rng_below(&r, RS_CEIL));
		REQ(!seen || ((memdesc_type(seen) == MEMDESC_FOLIO ||
			       memdesc_type(seen) == MEMDESC_SLAB) &&
			      ((uintptr_t)memdesc_ptr(seen) & 15) == 0 && memdesc_ptr(seen)));
		n++;
	}
	atomic_fetch_add(&rs_reads, n);
	return NULL;
}

/* Folios of random sizes come and go around the resized ones. */
static void *rs_churn(void *arg)
{
	struct mdt_rng r;
	struct folio *held[32] = { NULL };

	mdt_rng_init(&r, (uint64_t)(uintptr_t)arg);
	while (atomic_load_explicit(&rs_done, memory_order_relaxed) < NRESIZERS) {
		size_t i = mdt_rng_below(&r, 32);

		if (held[i]) {
			folio_put(held[i]);
			held[i] = NULL;
		} else {
			held[i] = folio_alloc_pages(1 + mdt_rng_below(&r, 40));
			REQ(held[i] != NULL);
		}
	}
	for (int i = 0; i < 32; i++)
		if (held[i])
			folio_put(held[i]);
	return NULL;
}

START_TEST(test_resize_readers)
{
	pthread_t rs[NRESIZERS], rd[NREADERS], ch[2];
	uint64_t seed = mdt_seed(4243);
	struct memdesc_stats st;

	/*
	 * Before any thread runs: each folio at a chunk boundary, shrunk to its floor, the
	 * tails purged into the arena, so the first grow by a page must be in place.
	 */
	for (int i = 0; i < NRESIZERS; i++) {
		rs_folio[i] = folio_alloc_aligned(RS_CEIL, 512);
		REQ(rs_folio[i] != NULL);
		REQ(folio_resize(rs_folio[i], RS_FLOOR) == 0);
	}
	memdesc_purge();
	for (int i = 0; i < NRESIZERS; i++) {
		struct folio *f = rs_folio[i];

		REQ(folio_resize(f, RS_FLOOR + 1) == 0);
		check_run(folio_pfn(f), RS_FLOOR + 1, memdesc_mk(f, MEMDESC_FOLIO));
		memset(folio_address(f), i + 1, (RS_FLOOR + 1) * MEMDESC_PAGE_SIZE);
		/* pfn first: a reader that sees md finds the pfn (both seq_cst). */
		atomic_store(&rs_slot[i].pfn, folio_pfn(f));
		atomic_store(&rs_slot[i].md, memdesc_mk(f, MEMDESC_FOLIO));
	}
	for (int i = 0; i < NREADERS; i++)
		REQ(pthread_create(&rd[i], NULL, rs_reader, (void *)(uintptr_t)(seed + i)) == 0);
	for (int i = 0; i < 2; i++)
		REQ(pthread_create(&ch[i], NULL, rs_churn, (void *)(uintptr_t)(seed + 10 + i)) == 0);
	for (int i = 0; i < NRESIZERS; i++)
		REQ(pthread_create(&rs[i], NULL, resizer, (void *)(uintptr_t)i) == 0);
	/* A finished resizer's folio stays, still read, until the readers stop. */
	for (int i = 0; i < NRESIZERS; i++)
		REQ(pthread_join(rs[i], NULL) == 0);
	for (int i = 0; i < NREADERS; i++)
		REQ(pthread_join(rd[i], NULL) == 0);
	for (int i = 0; i < 2; i++)
		REQ(pthread_join(ch[i], NULL) == 0);
	for (int i = 0; i < NRESIZERS; i++)
		folio_put(rs_folio[i]);
	REQ(atomic_load(&rs_reads) >= 2000);
	fprintf(stderr, "test_resize_readers: %lu grows and %lu shrinks in place, %lu reads\n",
		atomic_load(&rs_grows), atomic_load(&rs_shrinks), atomic_load(&rs_reads));
	memdesc_purge();
	memdesc_stats(&st);
	REQ(st.pages_folio == 0);
	REQ(st.nr_folios == 0);
	REQ(memdesc_verify() == 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memdesc_stress");
	TCase *tc = tcase_create("stress");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_stress);
	tcase_add_test(tc, test_resize_readers);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
