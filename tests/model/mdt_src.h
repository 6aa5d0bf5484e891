/*
 * mdt_src: where a model-driven run takes its choices from.
 *
 * The reference models of the differential tests (tests/model/) and their random
 * operations are shared by two kinds of programs: the Check differential tests, whose
 * choices come from a seeded PRNG (mdt_src_rng in mdt.h), and the libFuzzer targets,
 * whose choices are decoded from the fuzz input (tests/fuzz/fuzz.h). Each operation
 * asks its source for every number it needs, in a fixed order, so a seed or an input
 * replays exactly.
 *
 * A failed check of a model calls mdt_fail(): ck_abort_msg() in the test programs
 * (tests/mdt.c), a message and abort() in the fuzz targets (tests/fuzz/fuzz.c), so
 * that libFuzzer records the input.
 */
#ifndef MDT_SRC_H
#define MDT_SRC_H

#include <stdint.h>

struct mdt_src {
	/* A number in [0, bound); 0 when bound <= 1. */
	uint64_t (*below)(struct mdt_src *s, uint64_t bound);
	/* 64 arbitrary bits (fill-pattern seeds: they need not come from the input). */
	uint64_t (*next)(struct mdt_src *s);
};

static inline uint64_t mdt_src_below(struct mdt_src *s, uint64_t bound)
{
	return s->below(s, bound);
}

static inline uint64_t mdt_src_next(struct mdt_src *s)
{
	return s->next(s);
}

/* Report a failed model check and stop; never returns. */
void mdt_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif /* MDT_SRC_H */
