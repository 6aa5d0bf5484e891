/*
 * mdb: the C face of the benchmark harness.
 *
 * Benchmark bodies are C. Each one is a function over an opaque mdb_state (a Google
 * Benchmark State behind the shim in shim.cc) and is registered from its own file with
 * MDB_REGISTER, which runs before main(); the shim hands them all to Google Benchmark.
 * Argument tuples and thread counts are part of the registration, so that one table says
 * what runs.
 *
 *	static void bm_load(mdb_state *st)
 *	{
 *		size_t n = (size_t)mdb_arg(st, 0);
 *		... set-up ...
 *		while (mdb_keep_running(st))
 *			mdb_do_not_optimize(lookup(...));
 *	}
 *	MDB_REGISTER(bm_load, .name = "xarray/load", .nargs = 1, .nsets = 2,
 *		     .args = (const int64_t[]){ 1 << 20, 64 << 20 });
 *
 * With threads, every thread runs the body; thread 0 does shared set-up before its first
 * mdb_keep_running() (Google Benchmark starts all threads' loops together).
 */
#ifndef MDB_H
#define MDB_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mdb_state mdb_state;

struct mdb_bench {
	const char *name;		/* "group/what"; the arguments are appended */
	void (*run)(mdb_state *st);
	const int64_t *args;		/* nsets tuples of nargs values, or NULL */
	unsigned nargs;
	unsigned nsets;
	const char *const *arg_names;	/* nargs names, or NULL */
	const int *threads;		/* nthreads thread counts, or NULL for one thread */
	unsigned nthreads;
	bool real_time;			/* wall time instead of CPU time (threads, I/O) */
	double min_time;		/* seconds per run, 0 for Google Benchmark's default */
};

void mdb_register(const struct mdb_bench *b);

#define MDB_REGISTER(fn, ...)                                                          \
	static const struct mdb_bench fn##_def = { .run = fn, __VA_ARGS__ };              \
	__attribute__((constructor)) static void fn##_register(void)                      \
	{                                                                              \
		mdb_register(&fn##_def);                                                   \
	}

bool mdb_keep_running(mdb_state *st);
/* Run n iterations per check: for bodies whose one step is a batch of n operations. */
bool mdb_keep_running_batch(mdb_state *st, int64_t n);
int64_t mdb_arg(const mdb_state *st, unsigned i);
int mdb_thread_index(const mdb_state *st);
int mdb_threads(const mdb_state *st);
int64_t mdb_iterations(const mdb_state *st);
void mdb_pause_timing(mdb_state *st);
void mdb_resume_timing(mdb_state *st);
void mdb_set_items_processed(mdb_state *st, int64_t items);
void mdb_set_bytes_processed(mdb_state *st, int64_t bytes);
/* A counter reported beside the time: a plain value, or divided by the iterations. */
void mdb_counter(mdb_state *st, const char *name, double value);
void mdb_counter_per_iteration(mdb_state *st, const char *name, double value);
void mdb_set_label(mdb_state *st, const char *label);
/* Ends this benchmark with an error message instead of a time. */
void mdb_skip_with_error(mdb_state *st, const char *msg);

/* Keep a value alive and the memory it points at written, as benchmark::DoNotOptimize. */
static inline void mdb_do_not_optimize(const void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static inline void mdb_clobber_memory(void)
{
	__asm__ volatile("" : : : "memory");
}

#ifdef __cplusplus
}
#endif

#endif /* MDB_H */
