/* fuzz.c: the input decoder and the failure report of the fuzz targets (fuzz.h). */
#include "fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t fuzz_below(struct mdt_src *s, uint64_t bound)
{
	struct fuzz_src *f = (struct fuzz_src *)s;
	uint64_t v = 0;
	unsigned shift = 0;

	if (bound <= 1)
		return 0;
	for (uint64_t rest = bound - 1; rest; rest >>= 8, shift += 8) {
		if (f->pos >= f->len)
			break;
		v |= (uint64_t)f->data[f->pos++] << shift;
	}
	return v % bound;
}

static uint64_t fuzz_next(struct mdt_src *s)
{
	/* splitmix64 of a counter: varied patterns without spending input bytes. */
	uint64_t z = (((struct fuzz_src *)s)->counter += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void fuzz_src_init(struct fuzz_src *s, const uint8_t *data, size_t len)
{
	s->src.below = fuzz_below;
	s->src.next = fuzz_next;
	s->data = data;
	s->len = len;
	s->pos = 0;
	s->counter = 0;
}

void mdt_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: model check failed: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();	/* libFuzzer saves the input as a crash */
}
