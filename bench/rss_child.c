/*
 * memdesc-rss: the resident-memory workload of malloc/resident, for one allocator, in a
 * process of its own.
 *
 *	memdesc-rss ALLOCATOR [MiB]
 *
 * All four allocators live in the benchmark process, and resident memory is a property
 * of the process: pages one allocator keeps would be counted against another, and an
 * allocator that finds warm free pages left by an earlier benchmark would look small.
 * So the benchmark runs this program once per allocator (fork + exec: a fresh heap) and
 * reads what it prints. Resident bytes come from /proc/self/statm and are counted from a
 * baseline taken after the allocator's first call, so the program's own code, stacks
 * and the other allocators' idle start-up state are not counted.
 *
 * Phases (MiB is the live target, default 128):
 *	1 peak        blocks of mixed sizes allocated and written until MiB are live
 *	2 freed_3_4   three blocks in four freed, at random: what the allocator keeps
 *	3 refill      new blocks, sizes drawn 1.5x larger, until MiB are live again:
 *	              how much of the freed memory it reuses
 *	4 freed_all   every block freed
 *	5 trimmed     after the allocator's own trim (malloc_trim, arena purge, mi_collect,
 *	              md_malloc_trim)
 * Output, one line per phase: "phase <n> <name> <resident bytes> <live bytes>".
 * The arrays of pointers come from mmap and are written before the baseline.
 */
#include "alloc_table.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_BLOCKS (1u << 21)

struct blk {
	char *p;
	size_t size;
};

static uint64_t rng = 0x853c49e6748fea9bULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Mixed sizes: mostly small objects, some medium, a few large blocks. */
static size_t draw_size(double scale)
{
	uint64_t r = next();
	unsigned k = (unsigned)(r % 1000);
	size_t s;

	r >>= 10;
	if (k < 700)
		s = 16 + r % 241;		/* 16-256 B */
	else if (k < 950)
		s = 257 + r % 3840;		/* 257 B - 4 KiB */
	else if (k < 995)
		s = 4097 + r % 61440;		/* 4 - 64 KiB */
	else
		s = 65537 + r % 983040;		/* 64 KiB - 1 MiB */
	return (size_t)((double)s * scale);
}

static size_t resident(size_t base)
{
	size_t now = mdb_resident_bytes();

	return now > base ? now - base : 0;
}

int main(int argc, char **argv)
{
	const struct mdb_alloc *a;
	size_t target, live = 0, n = 0, base;
	struct blk *b;
	int i;

	if (argc < 2 || (i = mdb_alloc_find(argv[1])) < 0) {
		fprintf(stderr, "usage: memdesc-rss memdesc|glibc|jemalloc|mimalloc [MiB]\n");
		return 2;
	}
	a = mdb_alloc_get(i);
	if (a->malloc == NULL) {
		fprintf(stderr, "memdesc-rss: %s is not built in\n", argv[1]);
		return 3;
	}
	target = (argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 128) << 20;
	b = mmap(NULL, MAX_BLOCKS * sizeof(*b), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		return 1;
	memset(b, 0, MAX_BLOCKS * sizeof(*b));
	a->free(a->malloc(64));
	base = mdb_resident_bytes();

	/* 1: peak */
	while (live < target && n < MAX_BLOCKS) {
		size_t s = draw_size(1.0);

		b[n].p = a->malloc(s);
		if (b[n].p == NULL)
			return 1;
		memset(b[n].p, (int)n, s);
		b[n++].size = s;
		live += s;
	}
	printf("phase 1 peak %zu %zu\n", resident(base), live);

	/* 2: three in four freed */
	for (size_t k = 0; k < n; k++)
		if (next() % 4 != 0) {
			a->free(b[k].p);
			live -= b[k].size;
			b[k].p = NULL;
		}
	printf("phase 2 freed_3_4 %zu %zu\n", resident(base), live);

	/* 3: refill the holes with other sizes (then new slots if the holes run out) */
	for (size_t k = 0; live < target && k < MAX_BLOCKS; k++) {
		size_t s;

		if (k < n && b[k].p != NULL)
			continue;
		if (k >= n)
			n = k + 1;
		s = draw_size(1.5);
		b[k].p = a->malloc(s);
		if (b[k].p == NULL)
			return 1;
		memset(b[k].p, (int)k, s);
		b[k].size = s;
		live += s;
	}
	printf("phase 3 refill %zu %zu\n", resident(base), live);

	/* 4: all freed */
	for (size_t k = 0; k < n; k++)
		if (b[k].p != NULL) {
			a->free(b[k].p);
			live -= b[k].size;
		}
	printf("phase 4 freed_all %zu %zu\n", resident(base), live);

	/* 5: trimmed */
	a->trim();
	printf("phase 5 trimmed %zu %zu\n", resident(base), live);
	return 0;
}
