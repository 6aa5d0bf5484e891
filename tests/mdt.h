/*
 * mdt: the small shared kit of the memdesc test programs.
 *
 * - A seeded PRNG (splitmix64 to seed, xoshiro256** to draw) so that a random run is
 *   replayed exactly: every program prints its seed, and MDT_SEED=<n> replays it.
 * - Operation counts scaled by MDT_SCALE (percent, default 100). Sanitizer builds
 *   default to a smaller scale, because they run 3-15x slower and CI has a time budget;
 *   the plain build always runs the full counts the issues ask for.
 * - mdt_run(): runs a Check suite and turns its result into an exit code.
 * - Probes of the environment the tests adapt to (mdt_os_moves_pages).
 */
#ifndef MDT_H
#define MDT_H

#include "model/mdt_src.h"

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/*
 * A program that defines MDT_QUIET_ASSERTS before including mdt.h makes passing
 * ck_assert*() calls silent: Check records each passing one with a write(2) (its last
 * checkpoint), which dominates loops of many small checks. Failures report as before,
 * with their values.
 */
#ifdef MDT_QUIET_ASSERTS
#undef ck_assert_msg
#define ck_assert_msg(expr, ...)                                                       \
	((expr) ? (void)0                                                              \
		: _ck_assert_failed(__FILE__, __LINE__, "Assertion '" #expr "' failed",  \
				    ##__VA_ARGS__))
#endif

struct mdt_rng {
	uint64_t s[4];
};

/* The seed of this run: MDT_SEED if set, else the caller's fixed default. Printed once. */
uint64_t mdt_seed(uint64_t fallback);
void mdt_rng_init(struct mdt_rng *r, uint64_t seed);
uint64_t mdt_rng_next(struct mdt_rng *r);
/* Uniform in [0, bound); bound > 0. */
uint64_t mdt_rng_below(struct mdt_rng *r, uint64_t bound);

/* A choice source (model/mdt_src.h) drawing from a seeded PRNG: the same numbers as
 * mdt_rng_below()/mdt_rng_next() on @rng. */
struct mdt_src_rng {
	struct mdt_src src;
	struct mdt_rng rng;
};
void mdt_src_rng_init(struct mdt_src_rng *s, uint64_t seed);

/*
 * n scaled by MDT_SCALE percent (default 100, 10 in sanitizer and valgrind builds); at
 * least 1.
 */
size_t mdt_scaled(size_t n);
/* The scale in percent that mdt_scaled() applies. */
unsigned mdt_scale_percent(void);

/* Run a suite (taking ownership), print Check's summary, return 0 if all passed. */
int mdt_run(Suite *s);

/*
 * Run this program again in a child, as "<self> --child @args..." (@args ends with NULL,
 * at most 6), with MEMDESC_OPTIONS=@opts (and no MEMDESC_LIMIT) and its stderr captured
 * into @err (always NUL-terminated). Returns the child's wait status. For tests whose
 * cases must abort or read options at start. The path comes from
 * readlink(/proc/self/exe): under valgrind, exec of /proc/self/exe itself would run
 * valgrind's tool binary.
 */
int mdt_run_self(const char *opts, const char *const *args, char *err, size_t errlen);
/* Sleep @ms milliseconds of CLOCK_MONOTONIC (the clock the allocator reads), signals or not. */
void mdt_sleep_ms(long ms);
/*
 * mdt_run_self() with the child's address space limited to @as_bytes (RLIMIT_AS, set
 * before the exec, so that it holds from the child's first instruction); 0: no limit.
 */
int mdt_run_self_as(const char *opts, const char *const *args, size_t as_bytes, char *err,
		    size_t errlen);

/*
 * Whether this process can move pages with mremap(MREMAP_DONTUNMAP), as memdesc's
 * folio_move_pages() does: Linux 5.7 and later can; valgrind refuses the flag (EINVAL),
 * and memdesc then copies. Probed on a mapping of the test's own.
 */
bool mdt_os_moves_pages(void);

#endif /* MDT_H */
