/*
 * fuzz.h: what the libFuzzer targets share (tests/fuzz/fuzz_*.c).
 *
 * A fuzz input is a stream of choices: each operation of a model (tests/model/) asks
 * its mdt_src for the numbers it needs, and fuzz_src decodes them from the input's
 * bytes, in order: a number below a bound takes the fewest bytes that can hold
 * bound - 1 (little-endian, reduced modulo the bound), a bound of 0 or 1 takes none.
 * Every byte string is a valid input; once it is used up, the run stops. Fill-pattern
 * seeds (mdt_src_next) come from a counter, not from the input.
 *
 * Each target builds twice: with clang and -fsanitize=fuzzer (libFuzzer's main) in
 * the fuzz build (scripts/fuzz), and with replay.c's main in every ordinary build, which
 * runs the committed corpus and regression inputs through the same
 * LLVMFuzzerTestOneInput (ctest fuzz_replay_<target>).
 */
#ifndef FUZZ_H
#define FUZZ_H

#include "mdt_src.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuzz_src {
	struct mdt_src src;
	const uint8_t *data;
	size_t len, pos;
	uint64_t counter;	/* for mdt_src_next */
};

void fuzz_src_init(struct fuzz_src *s, const uint8_t *data, size_t len);

/* Whether the input is used up (the run stops at the next operation boundary). */
static inline bool fuzz_src_done(const struct fuzz_src *s)
{
	return s->pos >= s->len;
}

/* The entry point libFuzzer calls, and replay.c. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* FUZZ_H */
