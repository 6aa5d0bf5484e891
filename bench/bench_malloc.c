/*
 * bench_malloc: the malloc family of memdesc, glibc, jemalloc and mimalloc, side by
 * side in one process (alloc_table.h). Every benchmark's first argument is the
 * allocator ("alloc": 0 memdesc, 1 glibc, 2 jemalloc, 3 mimalloc) and its label is the
 * allocator's name; the allocators of one row run one after the other, so that a change
 * in the machine's load hits them alike.
 *
 * malloc/pair/size:S          one malloc(S), one byte written, one free: the fast path
 *                             of each size class, and the large-block path from 64 KiB
 * malloc/batch/size:S/order:O 10,000 mallocs of S bytes, then their frees in the same
 *                             order (0, FIFO), in reverse (1, LIFO) or shuffled (2);
 *                             the time is per malloc+free
 * malloc/producer_consumer/size:S
 *                             thread 0 allocates batches of 64 blocks, thread 1 frees
 *                             them: every free is a remote free; time per block
 * malloc/realloc_growth/step:K
 *                             one block grown from 1 B to 1 MiB by realloc, K bytes at a
 *                             time (K = 0: doubling), its last byte written at each
 *                             step, then freed; the time is per whole growth
 * malloc/realloc_buffers/mib:M
 *                             two buffers grown in turn by a quarter at a time from
 *                             64 KiB to M MiB, every new byte written, then freed: each
 *                             stands where the other would grow, so they move (read
 *                             buffers, vectors, string builders); time per whole growth
 * malloc/large_churn/blocks:N  N live blocks of random sizes from 32 KiB + 1 to 256 KiB (the
 *                             large-block path): free a random one, allocate one of a new
 *                             random size, write its first byte; time per free+malloc
 *                             (the large allocations of memdesc-mtwork, and of servers
 *                             with buffers of varying sizes)
 * malloc/larson/threads:T     Larson and Krishnan's server workload: T threads each
 *                             work on one of T+1 pools of 1,000 blocks of random sizes
 *                             (16 B to 1 KiB), freeing a random block and allocating a
 *                             new one; every 256 operations a thread moves to the next
 *                             free pool, so blocks are freed by other threads than the
 *                             ones that allocated them; time per free+malloc
 */
#include "alloc_table.h"
#include "mdb.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* The allocator of this benchmark (argument 0), its label set; NULL after a skip. */
static const struct mdb_alloc *bm_alloc(mdb_state *st)
{
	const struct mdb_alloc *a = mdb_alloc_get((long)mdb_arg(st, 0));

	if (a == NULL || a->malloc == NULL) {
		mdb_skip_with_error(st, "allocator not built in (library missing at configure)");
		return NULL;
	}
	if (!mdb_alloc_check()) {
		mdb_skip_with_error(st, "malloc() is not glibc's: a peer interposes");
		return NULL;
	}
	mdb_set_label(st, a->name);
	return a;
}

/* xorshift64: cheap and reproducible; never 0 from a non-zero seed. */
static inline uint64_t bm_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

#define A4(...) 0, __VA_ARGS__, 1, __VA_ARGS__, 2, __VA_ARGS__, 3, __VA_ARGS__

/* ---- pair ---------------------------------------------------------------------- */

static void bm_pair(mdb_state *st)
{
	const struct mdb_alloc *a = bm_alloc(st);
	size_t size = (size_t)mdb_arg(st, 1);

	if (a == NULL)
		return;
	while (mdb_keep_running(st)) {
		char *p = a->malloc(size);

		if (p == NULL) {
			mdb_skip_with_error(st, "malloc failed");
			return;
		}
		p[0] = 1;
		mdb_do_not_optimize(p);
		a->free(p);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
}
MDB_REGISTER(bm_pair, .name = "malloc/pair", .nargs = 2, .nsets = 36,
	     .arg_names = (const char *const[]){ "alloc", "size" },
	     .args = (const int64_t[]){
		     A4(16), A4(64), A4(256), A4(1024), A4(4096), A4(16384), A4(65536),
		     A4(262144), A4(1048576) });

/* ---- batch --------------------------------------------------------------------- */

#define BATCH 10000

static uint32_t batch_order[3][BATCH];

static void batch_orders(void)
{
	uint64_t x = 0x2545f4914f6cdd1dULL;

	for (uint32_t i = 0; i < BATCH; i++) {
		batch_order[0][i] = i;
		batch_order[1][i] = BATCH - 1 - i;
		batch_order[2][i] = i;
	}
	for (uint32_t i = BATCH - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(bm_rand(&x) % (i + 1));
		uint32_t t = batch_order[2][i];

		batch_order[2][i] = batch_order[2][j];
		batch_order[2][j] = t;
	}
}

static void bm_batch(mdb_state *st)
{
	static void *ptrs[BATCH];
	const struct mdb_alloc *a = bm_alloc(st);
	size_t size = (size_t)mdb_arg(st, 1);
	const uint32_t *order;

	if (a == NULL)
		return;
	if (batch_order[1][0] == 0)
		batch_orders();
	order = batch_order[mdb_arg(st, 2)];
	while (mdb_keep_running_batch(st, BATCH)) {
		for (uint32_t i = 0; i < BATCH; i++) {
			char *p = a->malloc(size);

			if (p == NULL) {
				mdb_skip_with_error(st, "malloc failed");
				return;
			}
			p[0] = (char)i;
			ptrs[i] = p;
		}
		mdb_clobber_memory();
		for (uint32_t i = 0; i < BATCH; i++)
			a->free(ptrs[order[i]]);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
}
MDB_REGISTER(bm_batch, .name = "malloc/batch", .nargs = 3, .nsets = 36,
	     .arg_names = (const char *const[]){ "alloc", "size", "order" },
	     .args = (const int64_t[]){
		     A4(32, 0), A4(32, 1), A4(32, 2), A4(512, 0), A4(512, 1), A4(512, 2),
		     A4(8192, 0), A4(8192, 1), A4(8192, 2) });

/* ---- producer / consumer ------------------------------------------------------- */

#define PC_BATCH 64
#define PC_SLOTS 16

/* A single-producer single-consumer ring of batches of PC_BATCH blocks. */
static struct {
	_Alignas(64) atomic_size_t head;	/* next batch the consumer takes */
	_Alignas(64) atomic_size_t tail;	/* next batch the producer fills */
	void *slot[PC_SLOTS][PC_BATCH];
} pc;

static void bm_producer_consumer(mdb_state *st)
{
	const struct mdb_alloc *a = bm_alloc(st);
	size_t size = (size_t)mdb_arg(st, 1);
	int producer = mdb_thread_index(st) == 0;

	if (a == NULL)
		return;
	if (producer) {
		/* Before the start barrier: the consumer cannot be running yet. */
		atomic_store(&pc.head, 0);
		atomic_store(&pc.tail, 0);
	}
	/*
	 * Both threads run the same number of iterations, in the same steps: the consumer
	 * takes exactly the batches the producer made, so neither waits forever.
	 */
	while (mdb_keep_running_batch(st, PC_BATCH)) {
		if (producer) {
			size_t t = atomic_load_explicit(&pc.tail, memory_order_relaxed);

			while (t - atomic_load_explicit(&pc.head, memory_order_acquire) == PC_SLOTS)
				sched_yield();
			for (int i = 0; i < PC_BATCH; i++) {
				char *p = a->malloc(size);

				if (p)
					p[0] = 1;
				pc.slot[t % PC_SLOTS][i] = p;
			}
			atomic_store_explicit(&pc.tail, t + 1, memory_order_release);
		} else {
			size_t h = atomic_load_explicit(&pc.head, memory_order_relaxed);

			while (atomic_load_explicit(&pc.tail, memory_order_acquire) == h)
				sched_yield();
			for (int i = 0; i < PC_BATCH; i++)
				a->free(pc.slot[h % PC_SLOTS][i]);
			atomic_store_explicit(&pc.head, h + 1, memory_order_release);
		}
	}
	mdb_set_items_processed(st, mdb_iterations(st));
}
MDB_REGISTER(bm_producer_consumer, .name = "malloc/producer_consumer", .nargs = 2,
	     .nsets = 12, .arg_names = (const char *const[]){ "alloc", "size" },
	     .args = (const int64_t[]){ A4(64), A4(1024), A4(16384) },
	     .threads = (const int[]){ 2 }, .nthreads = 1, .real_time = true);

/* ---- realloc growth ------------------------------------------------------------ */

static void bm_realloc_growth(mdb_state *st)
{
	const struct mdb_alloc *a = bm_alloc(st);
	size_t step = (size_t)mdb_arg(st, 1);
	int64_t reallocs = 0;

	if (a == NULL)
		return;
	while (mdb_keep_running(st)) {
		size_t size = 1;
		char *p = a->malloc(size);

		while (p != NULL && size < (1u << 20)) {
			size = step ? size + step : size * 2;
			if (size > (1u << 20))
				size = 1u << 20;
			p = a->realloc(p, size);
			if (p != NULL)
				p[size - 1] = 1;
			reallocs++;
		}
		if (p == NULL) {
			mdb_skip_with_error(st, "realloc failed");
			return;
		}
		mdb_do_not_optimize(p);
		a->free(p);
	}
	mdb_counter_per_iteration(st, "reallocs", (double)reallocs);
}
MDB_REGISTER(bm_realloc_growth, .name = "malloc/realloc_growth", .nargs = 2, .nsets = 12,
	     .arg_names = (const char *const[]){ "alloc", "step" },
	     .args = (const int64_t[]){ A4(0), A4(64), A4(4096) });

/* ---- large churn --------------------------------------------------------------- */

#define CHURN_MAX_BLOCKS 256
#define CHURN_MIN ((size_t)32 << 10)
#define CHURN_SPAN ((size_t)224 << 10)

static void bm_large_churn(mdb_state *st)
{
	const struct mdb_alloc *a = bm_alloc(st);
	size_t n = (size_t)mdb_arg(st, 1);
	char *set[CHURN_MAX_BLOCKS] = { NULL };
	uint64_t x = 0x2545f4914f6cdd1dULL;

	if (a == NULL)
		return;
	if (n == 0 || n > CHURN_MAX_BLOCKS) {
		mdb_skip_with_error(st, "blocks: 1 to 256");
		return;
	}
	/*
	 * From a trimmed heap, so that what earlier rows of this process left (memdesc
	 * bounds its large-block cache by its arena) does not decide the row: run alone,
	 * memdesc took 275 ns, after the other malloc rows 75.
	 */
	if (a->trim)
		a->trim();
	while (mdb_keep_running(st)) {
		uint64_t r = bm_rand(&x);
		char **b = &set[r % n];

		a->free(*b);
		*b = a->malloc(CHURN_MIN + 1 + (size_t)(r >> 20) % CHURN_SPAN);
		if (*b == NULL) {
			mdb_skip_with_error(st, "malloc failed");
			break;
		}
		(*b)[0] = 1;
	}
	for (size_t i = 0; i < n; i++)
		a->free(set[i]);
	mdb_set_items_processed(st, mdb_iterations(st));
}
MDB_REGISTER(bm_large_churn, .name = "malloc/large_churn", .nargs = 2, .nsets = 4,
	     .arg_names = (const char *const[]){ "alloc", "blocks" },
	     .args = (const int64_t[]){ A4(64) });

static void bm_realloc_buffers(mdb_state *st)
{
	const struct mdb_alloc *a = bm_alloc(st);
	size_t max = (size_t)mdb_arg(st, 1) << 20;
	int64_t moves = 0;

	if (a == NULL)
		return;
	if (a->trim)
		a->trim();
	while (mdb_keep_running(st)) {
		char *b[2] = { NULL, NULL };
		size_t have = 0;

		for (size_t size = 64 << 10; size <= max; size += size / 4) {
			for (int k = 0; k < 2; k++) {
				char *q = a->realloc(b[k], size);

				if (q == NULL) {
					mdb_skip_with_error(st, "realloc failed");
					a->free(b[0]);
					a->free(b[1]);
					return;
				}
				moves += b[k] != NULL && q != b[k];
				memset(q + have, k + 1, size - have);
				b[k] = q;
			}
			have = size;
		}
		mdb_do_not_optimize(b[0]);
		a->free(b[0]);
		a->free(b[1]);
	}
	mdb_counter_per_iteration(st, "moves", (double)moves);
}
MDB_REGISTER(bm_realloc_buffers, .name = "malloc/realloc_buffers", .nargs = 2, .nsets = 4,
	     .arg_names = (const char *const[]){ "alloc", "mib" },
	     .args = (const int64_t[]){ A4(32) });

/* ---- larson -------------------------------------------------------------------- */

#define LARSON_BLOCKS 1000
#define LARSON_ROUND 256
#define LARSON_MAX_THREADS 8

static struct larson_pool {
	_Alignas(64) atomic_flag busy;
	void *block[LARSON_BLOCKS];
} larson[LARSON_MAX_THREADS + 1];

static size_t larson_size(uint64_t r)
{
	return 16 + (size_t)(r % (1024 - 16 + 1));
}

static const struct mdb_alloc *bm_larson(mdb_state *st)
{
	const struct mdb_alloc *a = bm_alloc(st);
	int nthreads = mdb_threads(st), tid = mdb_thread_index(st);
	int npools = nthreads + 1, at = tid;
	uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(tid + 1);

	if (a == NULL)
		return NULL;
	if (nthreads > LARSON_MAX_THREADS) {
		mdb_skip_with_error(st, "too many threads");
		return NULL;
	}
	if (tid == 0) {
		/* Before the start barrier: fill every pool while no other thread runs. */
		for (int p = 0; p < npools; p++) {
			atomic_flag_clear(&larson[p].busy);
			for (int i = 0; i < LARSON_BLOCKS; i++)
				larson[p].block[i] = a->malloc(larson_size(bm_rand(&x)));
		}
	}
	while (mdb_keep_running_batch(st, LARSON_ROUND)) {
		struct larson_pool *pool;

		/* Take a free pool: with one more pool than threads there always is one. */
		while (atomic_flag_test_and_set_explicit(&larson[at].busy, memory_order_acquire)) {
			at = (at + 1) % npools;
			sched_yield();
		}
		pool = &larson[at];
		for (int i = 0; i < LARSON_ROUND; i++) {
			uint64_t r = bm_rand(&x);
			void **slot = &pool->block[r % LARSON_BLOCKS];
			char *p;

			a->free(*slot);
			p = a->malloc(larson_size(r >> 20));
			if (p)
				p[0] = 1;
			*slot = p;
		}
		atomic_flag_clear_explicit(&pool->busy, memory_order_release);
		at = (at + 1) % npools;
	}
	mdb_set_items_processed(st, mdb_iterations(st));
	return a;
}

/* Runs after every thread left its loop (the stop barrier): thread 0 frees the pools. */
static void bm_larson_cleanup(mdb_state *st, const struct mdb_alloc *a)
{
	if (a == NULL || mdb_thread_index(st) != 0)
		return;
	for (int p = 0; p <= mdb_threads(st); p++)
		for (int i = 0; i < LARSON_BLOCKS; i++) {
			a->free(larson[p].block[i]);
			larson[p].block[i] = NULL;
		}
}

static void bm_larson_run(mdb_state *st)
{
	bm_larson_cleanup(st, bm_larson(st));
}
MDB_REGISTER(bm_larson_run, .name = "malloc/larson", .nargs = 1, .nsets = 4,
	     .arg_names = (const char *const[]){ "alloc" },
	     .args = (const int64_t[]){ 0, 1, 2, 3 },
	     .threads = (const int[]){ 1, 2, 4 }, .nthreads = 3, .real_time = true);
