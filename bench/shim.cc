// The one C++ file of memdesc: it registers the C benchmark bodies (bench/mdb.h) with
// Google Benchmark and runs them. Everything else in bench/ is C.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "mdb.h"

// mdb_state stays incomplete: an mdb_state * is a benchmark::State * in C clothing.
namespace {

// Function-local so that registrations from C constructors, which may run before this
// file's own static initialisers, find it constructed.
std::vector<const mdb_bench *> &registry()
{
	static std::vector<const mdb_bench *> r;
	return r;
}

benchmark::State &S(mdb_state *s) { return *reinterpret_cast<benchmark::State *>(s); }
const benchmark::State &S(const mdb_state *s)
{
	return *reinterpret_cast<const benchmark::State *>(s);
}

void run_c_body(benchmark::State &st, const mdb_bench *b)
{
	b->run(reinterpret_cast<mdb_state *>(&st));
}

void register_all()
{
	for (const mdb_bench *b : registry()) {
		benchmark::internal::Benchmark *bm =
			benchmark::RegisterBenchmark(b->name, run_c_body, b);
		if (b->arg_names) {
			std::vector<std::string> names(b->arg_names, b->arg_names + b->nargs);
			bm->ArgNames(names);
		}
		for (unsigned i = 0; b->args && i < b->nsets; i++)
			bm->Args(std::vector<int64_t>(b->args + i * b->nargs,
						      b->args + (i + 1) * b->nargs));
		for (unsigned i = 0; b->threads && i < b->nthreads; i++)
			bm->Threads(b->threads[i]);
		if (b->real_time)
			bm->UseRealTime();
		if (b->min_time > 0)
			bm->MinTime(b->min_time);
		bm->Unit(benchmark::kNanosecond);
	}
}

} // namespace

extern "C" {

void mdb_register(const mdb_bench *b) { registry().push_back(b); }
bool mdb_keep_running(mdb_state *st) { return S(st).KeepRunning(); }
bool mdb_keep_running_batch(mdb_state *st, int64_t n) { return S(st).KeepRunningBatch(n); }
int64_t mdb_arg(const mdb_state *st, unsigned i) { return S(st).range(i); }
int mdb_thread_index(const mdb_state *st) { return S(st).thread_index(); }
int mdb_threads(const mdb_state *st) { return S(st).threads(); }
int64_t mdb_iterations(const mdb_state *st) { return S(st).iterations(); }
void mdb_pause_timing(mdb_state *st) { S(st).PauseTiming(); }
void mdb_resume_timing(mdb_state *st) { S(st).ResumeTiming(); }
void mdb_set_items_processed(mdb_state *st, int64_t n) { S(st).SetItemsProcessed(n); }
void mdb_set_bytes_processed(mdb_state *st, int64_t n) { S(st).SetBytesProcessed(n); }
void mdb_counter(mdb_state *st, const char *name, double v)
{
	S(st).counters[name] = benchmark::Counter(v);
}
void mdb_counter_per_iteration(mdb_state *st, const char *name, double v)
{
	S(st).counters[name] = benchmark::Counter(v, benchmark::Counter::kAvgIterations);
}
void mdb_set_label(mdb_state *st, const char *label) { S(st).SetLabel(label); }
void mdb_skip_with_error(mdb_state *st, const char *msg) { S(st).SkipWithError(msg); }

} // extern "C"

int main(int argc, char **argv)
{
	register_all();
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
