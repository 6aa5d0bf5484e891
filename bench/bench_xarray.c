/*
 * bench_xarray.c: the XArray's hot path against the flat array it replaces.
 *
 * xarray/load: xa_load of random indices over n dense entries (index i holds value
 * entry i), beside a flat array of n words read at the same precomputed random
 * indices. "chain" makes each index depend on the previous result (latency: one lookup
 * at a time) instead of letting the CPU overlap independent lookups (throughput). The
 * fixture (the array, the flat copy, the index sequence) is built once per n and kept
 * only while benchmarks of that n run: at 64M entries it is 512 MiB flat plus ~600 MiB
 * of nodes.
 *
 * xarray/store_erase: batches of 65536 stores then 65536 erases, at consecutive
 * indices (nodes filled densely) or at random ones in a 2^24 space (a node per few
 * entries); nodes are created and freed (after a grace period) all along.
 */
#include "mdb.h"
#include "xarray.h"

#include <stdint.h>
#include <stdlib.h>

#define SEQ_LEN (1UL << 22)	/* random indices, reused cyclically */
#define BATCH 4096

static uint64_t bx_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t bx_next(void)
{
	uint64_t z = (bx_rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct bx_fixture {
	unsigned long n;
	struct xarray xa;
	void **flat;
	uint32_t *seq;
} fx;

static void bx_fixture_free(void)
{
	if (!fx.n)
		return;
	xa_destroy(&fx.xa);
	free(fx.flat);
	free(fx.seq);
	fx.n = 0;
}

static bool bx_fixture_get(unsigned long n)
{
	if (fx.n == n)
		return true;
	bx_fixture_free();
	xa_init(&fx.xa);
	fx.flat = malloc(n * sizeof(void *));
	fx.seq = malloc(SEQ_LEN * sizeof(uint32_t));
	if (!fx.flat || !fx.seq)
		return false;
	for (unsigned long i = 0; i < n; i++) {
		fx.flat[i] = xa_mk_value(i);
		if (xa_is_err(xa_store(&fx.xa, i, xa_mk_value(i))))
			return false;
	}
	for (unsigned long i = 0; i < SEQ_LEN; i++)
		fx.seq[i] = (uint32_t)(bx_next() % n);
	fx.n = n;
	return true;
}

static void bm_xarray_load(mdb_state *st)
{
	unsigned long n = (unsigned long)mdb_arg(st, 0);
	bool flat = mdb_arg(st, 1), chain = mdb_arg(st, 2);
	unsigned long pos = 0, dep = 0, sum = 0;

	if (!bx_fixture_get(n)) {
		mdb_skip_with_error(st, "out of memory");
		return;
	}
	/*
	 * Entries are xa_mk_value(i) with i < 2^32, so dep >> 40 is always 0, but the
	 * compiler cannot know: with chain, each index waits for the previous load.
	 */
	while (mdb_keep_running_batch(st, BATCH)) {
		for (unsigned int i = 0; i < BATCH; i++) {
			unsigned long index = fx.seq[pos++ & (SEQ_LEN - 1)];
			void *entry;

			if (chain)
				index ^= dep >> 40;
			entry = flat ? fx.flat[index] : xa_load(&fx.xa, index);
			dep = (unsigned long)entry;
			sum += dep;
		}
	}
	mdb_do_not_optimize(&sum);
	mdb_set_items_processed(st, mdb_iterations(st));
	mdb_set_label(st, flat ? "flat array" : "xarray");
}
MDB_REGISTER(bm_xarray_load, .name = "xarray/load", .nargs = 3, .nsets = 8,
	     .arg_names = (const char *const[]){ "n", "flat", "chain" },
	     .args = (const int64_t[]){
		     1 << 20, 0, 0,  1 << 20, 1, 0,  1 << 20, 0, 1,  1 << 20, 1, 1,
		     64 << 20, 0, 0, 64 << 20, 1, 0, 64 << 20, 0, 1, 64 << 20, 1, 1 });

static void bm_xarray_store_erase(mdb_state *st)
{
	bool random = mdb_arg(st, 0);
	unsigned long *idx = malloc(65536 * sizeof(*idx));
	struct xarray xa;

	bx_fixture_free();
	if (!idx) {
		mdb_skip_with_error(st, "out of memory");
		return;
	}
	xa_init(&xa);
	while (mdb_keep_running_batch(st, 2 * 65536)) {
		unsigned long base = (bx_next() & 0xffff) << 16;

		mdb_pause_timing(st);
		for (unsigned long i = 0; i < 65536; i++)
			idx[i] = random ? bx_next() & ((1UL << 24) - 1) : base + i;
		mdb_resume_timing(st);
		for (unsigned long i = 0; i < 65536; i++)
			xa_store(&xa, idx[i], xa_mk_value(i));
		for (unsigned long i = 0; i < 65536; i++)
			xa_erase(&xa, idx[i]);
	}
	mdb_set_items_processed(st, mdb_iterations(st));
	xa_destroy(&xa);
	free(idx);
}
MDB_REGISTER(bm_xarray_store_erase, .name = "xarray/store_erase", .nargs = 1, .nsets = 2,
	     .arg_names = (const char *const[]){ "random" },
	     .args = (const int64_t[]){ 0, 1 });
