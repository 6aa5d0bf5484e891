/*
 * mt_alloc: a multi-threaded C program for the preload tests. Threads allocate,
 * realloc and free blocks of every size through the standard names (malloc, calloc,
 * realloc, posix_memalign, aligned_alloc, free), pass blocks to each other (freed by
 * another thread), and print a checksum of everything they read back: the output must
 * be the same under any correct malloc.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 8
#define OPS 200000
#define SLOTS 512
#define SHARED 64

static unsigned char *shared[SHARED];
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

struct blk {
	unsigned char *p;
	size_t n;
};

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static size_t pick(uint64_t *s)
{
	uint64_t r = next(s);

	if (r % 50 == 0)
		return 32768 + (size_t)(r >> 20) % 500000;
	if (r % 7 == 0)
		return (size_t)(r >> 16) % 32768;
	return (size_t)(r >> 8) % 400;
}

static uint64_t sum_block(const unsigned char *p, size_t n)
{
	uint64_t acc = n;

	for (size_t i = 0; i < n; i += 61)
		acc = acc * 31 + p[i];
	return acc;
}

static void fill(unsigned char *p, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i += 61)
		p[i] = (unsigned char)(v + i);
}

static void *worker(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL * ((uintptr_t)arg + 1), acc = 0;
	struct blk b[SLOTS];

	memset(b, 0, sizeof(b));
	for (int op = 0; op < OPS; op++) {
		struct blk *x = &b[next(&s) % SLOTS];
		uint64_t k = next(&s) % 10;

		if (!x->p) {
			x->n = pick(&s);
			if (k == 0) {
				x->p = calloc(1, x->n);
			} else if (k == 1) {
				void *q = NULL;

				if (posix_memalign(&q, 64, x->n) == 0)
					x->p = q;
			} else if (k == 2) {
				x->p = aligned_alloc(4096, x->n);
			} else {
				x->p = malloc(x->n);
			}
			if (!x->p) {
				fprintf(stderr, "allocation failed\n");
				exit(1);
			}
			fill(x->p, x->n, k);
		} else if (k < 4) {
			acc += sum_block(x->p, x->n);
			free(x->p);
			x->p = NULL;
		} else if (k < 6) {
			size_t n = pick(&s);
			unsigned char *q = realloc(x->p, n);

			if (!q && n) {
				fprintf(stderr, "realloc failed\n");
				exit(1);
			}
			acc += sum_block(q, n < x->n ? n : x->n);
			x->p = q;
			x->n = n;
			fill(x->p, x->n, k);
		} else if (k == 6) {
			/* Hand the block to another thread; free what was in the slot. */
			unsigned char *old;
			size_t i = next(&s) % SHARED;

			pthread_mutex_lock(&shared_lock);
			old = shared[i];
			shared[i] = x->p;
			pthread_mutex_unlock(&shared_lock);
			free(old);
			x->p = NULL;
		}
	}
	for (int i = 0; i < SLOTS; i++) {
		if (b[i].p)
			acc += sum_block(b[i].p, b[i].n);
		free(b[i].p);
	}
	return (void *)(uintptr_t)acc;
}

int main(void)
{
	pthread_t t[NTHREADS];
	uint64_t total = 0;

	for (uintptr_t i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i))
			return 1;
	for (int i = 0; i < NTHREADS; i++) {
		void *r;

		pthread_join(t[i], &r);
		total ^= (uint64_t)(uintptr_t)r * (uint64_t)(i + 1);
	}
	for (int i = 0; i < SHARED; i++)
		free(shared[i]);
	printf("%016llx\n", (unsigned long long)total);
	return 0;
}
