/*
 * test_slab: unit tests of slab.h: cache creation and its argument checks, alignment,
 * object lookup from any pointer, bad frees (wrong cache, interior pointer, not a slab,
 * double free) reported with nothing changed, magazines across threads and at thread
 * exit, reaping, type-stable caches, destroy, verification.
 */
#include "mdt.h"
#include "memdesc.h"
#include "md_rcu.h"
#include "slab.h"
#include "slab_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-bp.h>

#if defined(__SANITIZE_THREAD__)
/*
 * liburcu is not instrumented: an exiting thread's reader slot is reused by a new
 * thread, ordered by liburcu's own mutexes, which TSan cannot see.
 */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:liburcu-bp.so\nrace:_urcu_bp_read_lock\n"
	       "race:_urcu_bp_read_unlock\n";
}
#endif

/* Give everything back: magazines to the depot, depot and empty slabs to pages. */
static void drain(struct kmem_cache *c)
{
	kmem_thread_flush();
	kmem_cache_reap(c);
	kmem_cache_reap(c);
}

START_TEST(test_create_args)
{
	errno = 0;
	ck_assert_ptr_null(kmem_cache_create("x", 0, 0, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(kmem_cache_create("x", KMEM_MAX_SIZE + 1, 0, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(kmem_cache_create("x", 16, 3, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(kmem_cache_create("x", 16, KMEM_MAX_ALIGN * 2, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(kmem_cache_create(NULL, 16, 0, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(kmem_cache_create("x", 16, 0, 0x100));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(kmem_cache_alloc(NULL));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_alloc_free_sizes)
{
	static const size_t sizes[] = { 1, 8, 16, 24, 100, 256, 1000, 4096, 5000, 65536, 300000 };
	static const size_t aligns[] = { 0, 16, 64, 256, 4096 };

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (size_t a = 0; a < 5; a++) {
			struct kmem_cache *c = kmem_cache_create("sized", sizes[s], aligns[a], 0);
			size_t n = sizes[s] > 10000 ? 20 : 300, al = aligns[a] ? aligns[a] : 16;
			void **objs = calloc(n, sizeof(void *));
			struct kmem_cache_stats st;

			ck_assert_ptr_nonnull(c);
			ck_assert_uint_eq(kmem_cache_size(c), sizes[s]);
			ck_assert_str_eq(kmem_cache_name(c), "sized");
			for (size_t i = 0; i < n; i++) {
				struct kmem_obj_info info;

				objs[i] = kmem_cache_alloc(c);
				ck_assert_ptr_nonnull(objs[i]);
				ck_assert_uint_eq((uintptr_t)objs[i] % al, 0);
				memset(objs[i], (int)i, sizes[s]);
				ck_assert_int_eq(kmem_obj_info((char *)objs[i] + sizes[s] - 1, &info),
						 0);
				ck_assert_ptr_eq(info.obj, objs[i]);
				ck_assert_ptr_eq(info.cache, c);
				ck_assert_uint_eq(info.size, sizes[s]);
				ck_assert(info.allocated);
				ck_assert_ptr_eq(slab_cache(info.slab), c);
				ck_assert_ptr_eq(memdesc_slab(pfn_to_memdesc(virt_to_pfn(objs[i]))),
						 info.slab);
			}
			ck_assert_int_eq(kmem_cache_verify(c), 0);
			for (size_t i = 0; i < n; i++) {
				unsigned char *p = objs[i];

				ck_assert_int_eq(p[0], (unsigned char)i);
				ck_assert_int_eq(p[sizes[s] - 1], (unsigned char)i);
				ck_assert_int_eq(kmem_cache_free_checked(c, objs[i]), 0);
			}
			drain(c);
			kmem_cache_stats(c, &st);
			ck_assert_uint_eq(st.objs_slab_inuse, 0);
			ck_assert_uint_eq(st.slabs, 0);
			ck_assert_int_eq(kmem_cache_verify(c), 0);
			kmem_cache_destroy(c);
			free(objs);
		}
	}
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_bad_frees)
{
	struct kmem_cache *a = kmem_cache_create("a", 64, 0, 0);
	struct kmem_cache *b = kmem_cache_create("b", 64, 0, 0);
	struct kmem_cache_stats sa, sb, sa2, sb2;
	void *x = kmem_cache_alloc(a), *y = kmem_cache_alloc(b);
	struct folio *f = folio_alloc(0);
	int stack;

	kmem_cache_stats(a, &sa);
	kmem_cache_stats(b, &sb);
	ck_assert_int_eq(kmem_cache_free_checked(b, x), -EINVAL);	/* wrong cache */
	ck_assert_int_eq(kmem_cache_free_checked(a, (char *)x + 8), -EINVAL);	/* interior */
	ck_assert_int_eq(kmem_cache_free_checked(a, &stack), -EINVAL);	/* not ours */
	ck_assert_int_eq(kmem_cache_free_checked(a, folio_address(f)), -EINVAL);	/* a folio */
	ck_assert_int_eq(kmem_cache_free_checked(a, NULL), -EINVAL);
	kmem_cache_free(b, x);						/* reported too */
	{
		struct kmem_obj_info info;

		ck_assert_int_eq(kmem_obj_info(&stack, &info), -EINVAL);
		ck_assert_int_eq(kmem_obj_info(folio_address(f), &info), -EINVAL);
	}
	kmem_cache_stats(a, &sa2);
	kmem_cache_stats(b, &sb2);
	ck_assert_uint_eq(sa.objs_slab_inuse, sa2.objs_slab_inuse);
	ck_assert_uint_eq(sb.objs_slab_inuse, sb2.objs_slab_inuse);
	ck_assert_int_eq(kmem_cache_verify(a), 0);
	ck_assert_int_eq(kmem_cache_verify(b), 0);
	/* Double free once the first free has reached the slab. */
	ck_assert_int_eq(kmem_cache_free_checked(a, x), 0);
	kmem_thread_flush();
	kmem_cache_reap(a);	/* depot magazines not used since the last reap go */
	kmem_cache_reap(a);
	{
		struct kmem_obj_info info;
		void *keep = kmem_cache_alloc(a);	/* keep the slab alive */

		ck_assert_int_eq(kmem_obj_info(x, &info), 0);
		if (keep != x) {
			ck_assert(!info.allocated);
			ck_assert_int_eq(kmem_cache_free_checked(a, x), -EINVAL);
		}
		kmem_cache_free(a, keep);
	}
	ck_assert_int_eq(kmem_cache_verify(a), 0);
	kmem_cache_free(b, y);
	folio_put(f);
	drain(a);
	drain(b);
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/*
 * The allocation bitmap lives at the end of the slab (64-byte objects) or in the bitmap
 * table (512 and 4096 bytes: at most 64 objects per 4 pages): either way a free of an
 * object never handed out is refused, whatever the neighbouring slabs hold, and a
 * bitmap in the table takes no room (4096-byte objects: 8 in 8 pages).
 */
START_TEST(test_bitmap_places)
{
	static const size_t sizes[] = { 64, 512, 4096 };

	for (size_t s = 0; s < 3; s++) {
		struct kmem_cache *c = kmem_cache_create("bm", sizes[s], 0, KMC_NOMAGAZINE);
		struct kmem_cache_stats st;
		struct kmem_obj_info info;
		void *objs[64];
		size_t n;

		ck_assert_ptr_nonnull(c);
		kmem_cache_stats(c, &st);
		if (sizes[s] == 4096) {
			ck_assert_uint_eq(st.slab_pages, 8);
			ck_assert_uint_eq(st.objs_per_slab, 8);
		}
		/* Up to 64 objects: 3 slabs of 4096-byte ones, their bitmaps side by side. */
		n = st.objs_per_slab * 2 + 1 < 64 ? st.objs_per_slab * 2 + 1 : 64;
		for (size_t i = 0; i < n; i++)
			ck_assert_ptr_nonnull(objs[i] = kmem_cache_alloc(c));
		ck_assert_int_eq(kmem_cache_verify(c), 0);
		for (size_t i = 0; i < n; i += 2)
			ck_assert_int_eq(kmem_cache_free_checked(c, objs[i]), 0);
		for (size_t i = 0; i < n; i++) {
			ck_assert_int_eq(kmem_obj_info(objs[i], &info), 0);
			ck_assert_int_eq(info.allocated, i % 2);
			if (i % 2 == 0)	/* freed: refused, nothing changes */
				ck_assert_int_eq(kmem_cache_free_checked(c, objs[i]), -EINVAL);
		}
		ck_assert_int_eq(kmem_cache_verify(c), 0);
		for (size_t i = 1; i < n; i += 2)
			ck_assert_int_eq(kmem_cache_free_checked(c, objs[i]), 0);
		drain(c);
		kmem_cache_stats(c, &st);
		ck_assert_uint_eq(st.slabs, 0);
		kmem_cache_destroy(c);
	}
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/*
 * Slab layout (slab.c section 1): objects under 8 KiB get 8 or more to a slab and at
 * most 1/16 waste where a slab of up to 8 MiB allows it; objects of 8 KiB or more get
 * the smallest slab with 4 of them (2 from 16 KiB) and at most 1/4 waste, so a slab
 * of big objects stays small (26624 bytes: 2 in 64 KiB, not 19 in 512 KiB).
 */
START_TEST(test_layout_big_objects)
{
	static const struct { size_t size, pages, objs; } want[] = {
		{ 8192, 8, 4 }, { 16384, 8, 2 }, { 24576, 16, 2 }, { 26624, 16, 2 },
		{ 22528, 32, 5 }, { 32768, 16, 2 }, { 4096, 8, 8 }, { 3072, 8, 10 },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct kmem_cache *c = kmem_cache_create("lay", want[i].size, 16, 0);
		struct kmem_cache_stats st;

		ck_assert_ptr_nonnull(c);
		kmem_cache_stats(c, &st);
		ck_assert_msg(st.slab_pages == want[i].pages && st.objs_per_slab == want[i].objs,
			      "%zu-byte objects: %zu in %zu pages, want %zu in %zu", want[i].size,
			      st.objs_per_slab, st.slab_pages, want[i].objs, want[i].pages);
		kmem_cache_destroy(c);
	}
	/* Every size of 16 bytes' steps to 32 KiB: the bounds above. */
	for (size_t size = 16; size <= 32768; size += 16) {
		struct kmem_cache *c = kmem_cache_create("lay", size, 16, 0);
		struct kmem_cache_stats st;
		size_t bytes, waste;

		ck_assert_ptr_nonnull(c);
		kmem_cache_stats(c, &st);
		bytes = st.slab_pages * 4096;
		waste = bytes - st.objs_per_slab * size;
		ck_assert_uint_ge(st.objs_per_slab, size >= 16384 ? 2 : size >= 8192 ? 4 : 8);
		if (size >= 8192)
			ck_assert_msg(waste * 4 <= bytes, "%zu: waste %zu of %zu", size, waste,
				      bytes);
		else if (st.slab_pages < 2048)
			ck_assert_msg(waste * 16 <= bytes, "%zu: waste %zu of %zu", size, waste,
				      bytes);
		kmem_cache_destroy(c);
	}
}
END_TEST

START_TEST(test_many_objects)
{
	struct kmem_cache *c = kmem_cache_create("many", 48, 0, 0);
	size_t n = mdt_scaled(200000);
	void **o = malloc(n * sizeof(void *));
	struct kmem_cache_stats st;

	for (size_t i = 0; i < n; i++) {
		o[i] = kmem_cache_alloc(c);
		ck_assert_ptr_nonnull(o[i]);
		*(size_t *)o[i] = i;
	}
	kmem_cache_stats(c, &st);
	ck_assert_uint_ge(st.slabs, n / st.objs_per_slab);
	ck_assert_int_eq(kmem_cache_verify(c), 0);
	for (size_t i = 0; i < n; i += 2)
		kmem_cache_free(c, o[i]);
	for (size_t i = 1; i < n; i += 2) {
		ck_assert_uint_eq(*(size_t *)o[i], i);
		kmem_cache_free(c, o[i]);
	}
	drain(c);
	kmem_cache_stats(c, &st);
	ck_assert_uint_eq(st.slabs, 0);
	ck_assert_uint_eq(st.objs_slab_inuse, 0);
	ck_assert_uint_eq(st.objs_depot, 0);
	ck_assert_int_eq(kmem_cache_verify(c), 0);
	kmem_cache_destroy(c);
	free(o);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

struct xfer {
	struct kmem_cache *c;
	void **objs;
	size_t n;
};

static void *thread_alloc(void *arg)
{
	struct xfer *x = arg;

	for (size_t i = 0; i < x->n; i++)
		x->objs[i] = kmem_cache_alloc(x->c);
	return NULL;	/* magazines go back to the depot at thread exit */
}

static void *thread_free(void *arg)
{
	struct xfer *x = arg;

	for (size_t i = 0; i < x->n; i++)
		kmem_cache_free(x->c, x->objs[i]);
	return NULL;
}

START_TEST(test_cross_thread_and_exit)
{
	struct kmem_cache *c = kmem_cache_create("xfer", 200, 0, 0);
	struct xfer x = { c, NULL, 5000 };
	struct kmem_cache_stats st;
	pthread_t t;

	x.objs = calloc(x.n, sizeof(void *));
	ck_assert_int_eq(pthread_create(&t, NULL, thread_alloc, &x), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	for (size_t i = 0; i < x.n; i++)
		ck_assert_ptr_nonnull(x.objs[i]);
	ck_assert_int_eq(pthread_create(&t, NULL, thread_free, &x), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	/* The freeing thread has exited: its magazines are in the depot. */
	kmem_cache_stats(c, &st);
	ck_assert_uint_eq(st.objs_slab_inuse, st.objs_depot);
	ck_assert_int_eq(kmem_cache_verify(c), 0);
	kmem_cache_reap(c);
	kmem_cache_reap(c);
	kmem_cache_stats(c, &st);
	ck_assert_uint_eq(st.objs_slab_inuse, 0);
	ck_assert_uint_eq(st.slabs, 0);
	kmem_cache_destroy(c);
	free(x.objs);
}
END_TEST

struct hammer {
	struct kmem_cache *c;
	int seed;
};

static void *thread_hammer(void *arg)
{
	struct hammer *h = arg;
	void *objs[512];
	struct mdt_rng r;

	mdt_rng_init(&r, (uint64_t)h->seed);
	for (int round = 0; round < (int)mdt_scaled(400); round++) {
		int n = 1 + (int)mdt_rng_below(&r, 512);

		for (int i = 0; i < n; i++)
			objs[i] = kmem_cache_alloc(h->c);
		for (int i = 0; i < n; i++)
			kmem_cache_free(h->c, objs[i]);
	}
	return NULL;
}

START_TEST(test_contention_grows_magazines)
{
	struct kmem_cache *c = kmem_cache_create("hammer", 32, 0, 0);
	struct kmem_cache_stats st0, st;
	struct hammer h[4];
	pthread_t t[4];

	kmem_cache_stats(c, &st0);
	for (int i = 0; i < 4; i++) {
		h[i].c = c;
		h[i].seed = i + 1;
		ck_assert_int_eq(pthread_create(&t[i], NULL, thread_hammer, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	kmem_cache_stats(c, &st);
	/* Contention is up to the scheduler; the size only ever grows, with it. */
	ck_assert_uint_ge(st.mag_rounds, st0.mag_rounds);
	if (st.depot_contention >= 16)
		ck_assert_uint_gt(st.mag_rounds, st0.mag_rounds);
	ck_assert_int_eq(kmem_cache_verify(c), 0);
	drain(c);
	kmem_cache_stats(c, &st);
	ck_assert_uint_eq(st.objs_slab_inuse, 0);
	kmem_cache_destroy(c);
}
END_TEST

/*
 * Threads that take turns on a cache, one at a time (a turn is handed over under a
 * mutex, so no two use the depot at once: no contention), each turn allocating and
 * freeing enough objects to visit the depot.
 */
struct turns {
	struct kmem_cache *c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int nthreads;
	int turn;		/* whose turn: the turn count modulo nthreads */
	int last;		/* turns in all */
};

struct turn_arg {
	struct turns *tt;
	int id;
};

static void one_turn(struct kmem_cache *c)
{
	void *objs[200];

	for (int i = 0; i < 200; i++) {
		objs[i] = kmem_cache_alloc(c);
		ck_assert_ptr_nonnull(objs[i]);
	}
	for (int i = 0; i < 200; i++)
		kmem_cache_free(c, objs[i]);
}

static void *thread_turns(void *arg)
{
	struct turn_arg *a = arg;
	struct turns *tt = a->tt;

	pthread_mutex_lock(&tt->lock);
	for (;;) {
		while (tt->turn < tt->last && tt->turn % tt->nthreads != a->id)
			pthread_cond_wait(&tt->cond, &tt->lock);
		if (tt->turn >= tt->last)
			break;
		one_turn(tt->c);
		tt->turn++;
		pthread_cond_broadcast(&tt->cond);
	}
	pthread_mutex_unlock(&tt->lock);
	return NULL;
}

/* @nthreads threads take @turns turns on a new cache of @size-byte objects. */
static void take_turns(size_t size, int nthreads, int turns, struct kmem_cache_stats *st0,
		       struct kmem_cache_stats *st)
{
	struct turns tt = { .c = kmem_cache_create("turns", size, 0, 0), .nthreads = nthreads,
			    .last = turns };
	struct kmem_cache_stats end;
	struct turn_arg a[2];
	pthread_t t[2];

	ck_assert_int_le(nthreads, 2);
	ck_assert_ptr_nonnull(tt.c);
	pthread_mutex_init(&tt.lock, NULL);
	pthread_cond_init(&tt.cond, NULL);
	kmem_cache_stats(tt.c, st0);
	for (int i = 0; i < nthreads; i++) {
		a[i] = (struct turn_arg){ &tt, i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, thread_turns, &a[i]), 0);
	}
	for (int i = 0; i < nthreads; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_int_eq(tt.turn, turns);
	kmem_cache_stats(tt.c, st);
	ck_assert_int_eq(kmem_cache_verify(tt.c), 0);
	drain(tt.c);
	kmem_cache_stats(tt.c, &end);
	ck_assert_uint_eq(end.objs_slab_inuse, 0);
	kmem_cache_destroy(tt.c);
	pthread_cond_destroy(&tt.cond);
	pthread_mutex_destroy(&tt.lock);
}

START_TEST(test_shared_depot_grows_magazines)
{
	struct kmem_cache_stats st0, st;

	/* Two threads in turn: 16 -> 32 -> 64 rounds, and no further (the bound for sharing). */
	take_turns(32, 2, 120, &st0, &st);
	ck_assert_uint_eq(st0.mag_rounds, 16);
	ck_assert_uint_ge(st.depot_switches, 120);
	ck_assert_uint_eq(st.depot_contention, 0);
	ck_assert_uint_eq(st.mag_rounds, 64);
	/* 8 KiB objects: 4 -> 8 rounds, 64 KiB a magazine. */
	take_turns(8192, 2, 120, &st0, &st);
	ck_assert_uint_eq(st0.mag_rounds, 4);
	ck_assert_uint_eq(st.mag_rounds, 8);
	/* One thread as many turns: its depot never changes hands. */
	take_turns(32, 1, 120, &st0, &st);
	ck_assert_uint_le(st.depot_switches, 1);
	ck_assert_uint_eq(st.mag_rounds, 16);
}
END_TEST

/* A thread that uses a cache's magazines, then waits at @arg's barrier twice. */
struct counted {
	struct kmem_cache *c;
	pthread_barrier_t barrier;
	bool service;
};

static void *thread_counted(void *arg)
{
	struct counted *k = arg;

	kmem__service_thread = k->service;
	kmem_cache_free(k->c, kmem_cache_alloc(k->c));
	pthread_barrier_wait(&k->barrier);	/* counted now */
	pthread_barrier_wait(&k->barrier);
	return NULL;
}

/*
 * kmem_threads() counts the threads that hold magazines while they live, not the
 * allocator's own (kmem__service_thread, the md_rcu worker).
 */
START_TEST(test_threads_counted)
{
	struct counted k = { .c = kmem_cache_create("counted", 48, 0, 0) };
	unsigned int base;
	pthread_t t;

	ck_assert_ptr_nonnull(k.c);
	kmem_cache_free(k.c, kmem_cache_alloc(k.c));	/* this thread holds magazines */
	base = kmem_threads();
	ck_assert_uint_ge(base, 1);
	for (int service = 0; service < 2; service++) {
		k.service = service;
		pthread_barrier_init(&k.barrier, NULL, 2);
		ck_assert_int_eq(pthread_create(&t, NULL, thread_counted, &k), 0);
		pthread_barrier_wait(&k.barrier);
		ck_assert_uint_eq(kmem_threads(), base + (service ? 0 : 1));
		pthread_barrier_wait(&k.barrier);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
		ck_assert_uint_eq(kmem_threads(), base);	/* its exit gave it back */
		pthread_barrier_destroy(&k.barrier);
	}
	drain(k.c);
	kmem_cache_destroy(k.c);
}
END_TEST

START_TEST(test_typesafe_and_reap)
{
	struct kmem_cache *c = kmem_cache_create("rcu", 128, 0, KMC_TYPESAFE_BY_RCU);
	struct memdesc_stats a, b;
	void *o[1000];

	for (int i = 0; i < 1000; i++)
		o[i] = kmem_cache_alloc(c);
	memdesc_stats(&a);
	for (int i = 0; i < 1000; i++)
		kmem_cache_free(c, o[i]);
	drain(c);
	/* Unmapped at once, pages freed after a grace period. */
	for (int i = 0; i < 1000; i++)
		ck_assert_uint_eq(pfn_to_memdesc(virt_to_pfn(o[i])), 0);
	md_rcu_barrier();
	memdesc_stats(&b);
	ck_assert_uint_le(b.pages_slab + 1000 * 128 / 4096, a.pages_slab);
	ck_assert_int_eq(memdesc_verify(), 0);
	kmem_cache_destroy(c);
}
END_TEST

START_TEST(test_destroy_with_objects)
{
	struct kmem_cache *c = kmem_cache_create("leaky", 64, 0, 0);
	void *o = kmem_cache_alloc(c);

	*(int *)o = 7;
	kmem_cache_destroy(c);	/* reported; the slab stays */
	ck_assert_int_eq(*(int *)o, 7);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

START_TEST(test_cache_ids)
{
	struct kmem_cache *c[KMEM_MAX_CACHES];
	int n = 0;

	for (; n < KMEM_MAX_CACHES; n++) {
		c[n] = kmem_cache_create("many", 16, 0, 0);
		if (!c[n]) {
			ck_assert_int_eq(errno, EMFILE);
			break;
		}
	}
	ck_assert_int_gt(n, KMEM_MAX_CACHES - 16);
	{
		/* Each cache's slabs are tagged in the page map with a tag of its own. */
		static unsigned char seen[MEMDESC_TAG_MAX + 1];

		memset(seen, 0, sizeof(seen));
		for (int i = 0; i < n; i++) {
			void *p = kmem_cache_alloc(c[i]), *q = kmem_cache_alloc(c[i]);
			memdesc_t mp, mq;

			ck_assert_ptr_nonnull(p);
			ck_assert_ptr_nonnull(q);
			mp = pfn_to_memdesc(virt_to_pfn(p));
			mq = pfn_to_memdesc(virt_to_pfn(q));
			ck_assert_ptr_nonnull(memdesc_slab(mp));
			ck_assert_uint_ne(memdesc_tag(mp), 0);
			ck_assert_uint_eq(memdesc_tag(mp), memdesc_tag(mq));
			ck_assert_int_eq(seen[memdesc_tag(mp)], 0);
			seen[memdesc_tag(mp)] = 1;
			kmem_cache_free(c[i], q);
			kmem_cache_free(c[i], p);
			kmem_cache_destroy(c[i]);
		}
	}
	/* Ids were given back. */
	c[0] = kmem_cache_create("again", 16, 0, 0);
	ck_assert_ptr_nonnull(c[0]);
	kmem_cache_destroy(c[0]);
	/* No-magazine caches need no id. */
	c[0] = kmem_cache_create("nomag", 16, 0, KMC_NOMAGAZINE);
	{
		void *p = kmem_cache_alloc(c[0]);

		ck_assert_uint_eq(memdesc_tag(pfn_to_memdesc(virt_to_pfn(p))), 0);
		ck_assert_int_eq(kmem_cache_free_checked(c[0], p), 0);
		ck_assert_int_eq(kmem_cache_free_checked(c[0], p), -EINVAL);	/* in its slab */
	}
	kmem_cache_destroy(c[0]);
}
END_TEST

/*
 * kmem_drain_all() in one pass: every depot magazine and every empty slab of a cache
 * go, after a reap just before (whose working-set minimums would keep them from one
 * more reap), and the cache keeps working.
 */
START_TEST(test_drain_all)
{
	enum { N = 2000 };
	struct kmem_cache *c = kmem_cache_create("drain", 96, 0, 0);
	static void *obj[N];
	struct kmem_cache_stats st;

	ck_assert_ptr_nonnull(c);
	for (int i = 0; i < N; i++) {
		obj[i] = kmem_cache_alloc(c);
		ck_assert_ptr_nonnull(obj[i]);
	}
	for (int i = 0; i < N; i++)
		kmem_cache_free(c, obj[i]);
	kmem_thread_flush();
	kmem_cache_stats(c, &st);
	ck_assert_uint_gt(st.objs_depot, 0);
	kmem_cache_reap(c);	/* sets the minimums: a second reap would be needed */
	kmem_drain_all();
	kmem_cache_stats(c, &st);
	ck_assert_uint_eq(st.objs_depot, 0);
	ck_assert_uint_eq(st.slabs_empty, 0);
	ck_assert_uint_eq(st.slabs, 0);
	ck_assert_uint_eq(st.objs_slab_inuse, 0);
	ck_assert_int_eq(kmem_cache_verify(c), 0);
	obj[0] = kmem_cache_alloc(c);
	ck_assert_ptr_nonnull(obj[0]);
	kmem_cache_free(c, obj[0]);
	drain(c);
	kmem_cache_destroy(c);
	ck_assert_int_eq(memdesc_verify(), 0);
}
END_TEST

/*
 * kmem__obj_index (one multiplication for the index and the exactness test, which
 * free()'s fast path and every lookup use) against division, for the stride and
 * reciprocal of every cache size up to 4 KiB by 16-byte steps and a range of larger
 * ones, up to the largest: every offset of the first and the last objects a slab of
 * 8 MiB (the largest) could hold, where the product's low half comes nearest its bound.
 */
START_TEST(test_obj_index_exact)
{
	static const size_t big[] = { 4112, 8192, 9216, 12288, 13312, 24576, 26624, 32768,
				      65536, 98304, 131072 - 16, 262144, 524288 + 16,
				      (size_t)1 << 20 };
	size_t nsizes = 256 + sizeof(big) / sizeof(big[0]);

	for (size_t k = 0; k < nsizes; k++) {
		size_t size = k < 256 ? 16 * (k + 1) : big[k - 256];
		struct kmem_cache c;
		size_t end = (size_t)8 << 20, stride;

		ck_assert_int_eq(kmem__cache_setup(&c, "index", size, 16, 0), 0);
		stride = c.c_stride;
		for (size_t half = 0; half < 2; half++) {
			size_t nobj = end / stride, each = k < 256 ? 8 : 2;
			size_t first = half ? nobj - each : 0;

			for (size_t j = first; j < first + each; j++) {
				for (size_t r = 0; r < stride; r++) {
					bool exact;
					uint32_t i = kmem__obj_index(c.c_recip, j * stride + r,
								     &exact);

					if (i != j || exact != (r == 0))
						ck_abort_msg("stride %zu offset %zu: index %u "
							     "exact %d", stride, j * stride + r,
							     i, (int)exact);
				}
			}
		}
		pthread_mutex_destroy(&c.c_lock);
		pthread_mutex_destroy(&c.c_depot_lock);
	}
}
END_TEST

static Suite *slab_suite(void)
{
	Suite *s = suite_create("slab");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_create_args);
	tcase_add_test(tc, test_obj_index_exact);
	tcase_add_test(tc, test_alloc_free_sizes);
	tcase_add_test(tc, test_bad_frees);
	tcase_add_test(tc, test_bitmap_places);
	tcase_add_test(tc, test_layout_big_objects);
	tcase_add_test(tc, test_many_objects);
	tcase_add_test(tc, test_cross_thread_and_exit);
	tcase_add_test(tc, test_contention_grows_magazines);
	tcase_add_test(tc, test_shared_depot_grows_magazines);
	tcase_add_test(tc, test_threads_counted);
	tcase_add_test(tc, test_typesafe_and_reap);
	tcase_add_test(tc, test_drain_all);
	tcase_add_test(tc, test_destroy_with_objects);
	tcase_add_test(tc, test_cache_ids);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return mdt_run(slab_suite());
}
