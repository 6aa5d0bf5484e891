/*
 * memdesc-mtwork: the multi-threaded program of the whole-program benchmarks.
 *
 *	memdesc-mtwork [THREADS [OPS_PER_THREAD [LARGE_EVERY]]]   (defaults 4, 2,000,000, 64)
 *
 * It uses the C library's malloc family, so that LD_PRELOAD decides which allocator
 * serves it. Each thread keeps a working set of 4,096 blocks of random sizes (8 B to
 * 4 KiB, and one draw in LARGE_EVERY from 4 to 260 KiB; 0: none, which isolates what
 * those large blocks cost), replaces one at random per operation (malloc, write, free;
 * one in 16 is a realloc), and every 64 operations hands a block to the next thread
 * through a locked mailbox, which frees it: cross-thread frees, as in servers that pass
 * requests between worker threads. Every block carries a tag in its first two bytes
 * that its reader checks (after realloc too, and in the thread that frees a handed
 * block); the program prints the number of bad tags, so that a broken allocator shows
 * as a different line, not only as a time.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKING_SET 4096
#define MAILBOX 1024

struct mailbox {
	pthread_mutex_t lock;
	size_t n;
	void *slot[MAILBOX];
};

struct worker {
	pthread_t thread;
	int id;
	long ops;
	unsigned long errors;
	struct mailbox *in, *out;
};

static uint64_t next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* One draw in large_every is a large block (0: none); set by main, then read-only. */
static unsigned long large_every = 64;

static size_t draw(uint64_t r)
{
	if (large_every && r % large_every == 0)
		return 4096 + (size_t)(r >> 8) % (256 * 1024);
	return 8 + (size_t)(r >> 8) % 4089;
}

/* The tag of a block: byte 1 is byte 0 xor 0x5a. */
static void tag(unsigned char *p, uint64_t r)
{
	p[0] = (unsigned char)r;
	p[1] = (unsigned char)(r ^ 0x5a);
}

static int tag_ok(const unsigned char *p)
{
	return p[1] == (unsigned char)(p[0] ^ 0x5a);
}

/* Take what other threads handed over, check it and free it. */
static void drain(struct worker *w)
{
	void *got[MAILBOX];
	size_t n;

	pthread_mutex_lock(&w->in->lock);
	n = w->in->n;
	memcpy(got, w->in->slot, n * sizeof(void *));
	w->in->n = 0;
	pthread_mutex_unlock(&w->in->lock);
	for (size_t i = 0; i < n; i++) {
		w->errors += !tag_ok(got[i]);
		free(got[i]);
	}
}

static void *work(void *arg)
{
	struct worker *w = arg;
	uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->id + 1);
	unsigned char **set = calloc(WORKING_SET, sizeof(*set));

	if (set == NULL)
		abort();
	for (long op = 0; op < w->ops; op++) {
		uint64_t r = next(&x);
		unsigned char **b = &set[r % WORKING_SET];
		size_t size = draw(r >> 12);

		if (*b != NULL && r % 16 == 1) {
			unsigned char *p = realloc(*b, size);

			if (p == NULL)
				abort();
			w->errors += !tag_ok(p);
			p[size - 1] = (unsigned char)r;
			*b = p;
			continue;
		}
		if (*b != NULL) {
			w->errors += !tag_ok(*b);
			if (op % 64 == 0) {
				pthread_mutex_lock(&w->out->lock);
				if (w->out->n < MAILBOX) {
					w->out->slot[w->out->n++] = *b;
					*b = NULL;
				}
				pthread_mutex_unlock(&w->out->lock);
			}
			free(*b);
		}
		*b = malloc(size);
		if (*b == NULL)
			abort();
		memset(*b, (int)(r & 0xff), size < 64 ? size : 64);
		tag(*b, r >> 3);
		if (op % 256 == 0)
			drain(w);
	}
	for (size_t i = 0; i < WORKING_SET; i++)
		free(set[i]);
	free(set);
	return NULL;
}

int main(int argc, char **argv)
{
	int nthreads = argc > 1 ? atoi(argv[1]) : 4;
	long ops = argc > 2 ? atol(argv[2]) : 2000000;
	long every = argc > 3 ? atol(argv[3]) : 64;
	struct worker *w;
	struct mailbox *mb;
	unsigned long errors = 0;

	if (nthreads < 1 || ops < 1 || every < 0) {
		fprintf(stderr, "usage: memdesc-mtwork [THREADS [OPS_PER_THREAD [LARGE_EVERY]]]\n");
		return 2;
	}
	large_every = (unsigned long)every;
	w = calloc((size_t)nthreads, sizeof(*w));
	mb = calloc((size_t)nthreads, sizeof(*mb));
	if (w == NULL || mb == NULL)
		return 1;
	for (int i = 0; i < nthreads; i++)
		pthread_mutex_init(&mb[i].lock, NULL);
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .id = i, .ops = ops, .in = &mb[i],
					.out = &mb[(i + 1) % nthreads] };
		if (pthread_create(&w[i].thread, NULL, work, &w[i]) != 0)
			return 1;
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].thread, NULL);
		errors += w[i].errors;
	}
	for (int i = 0; i < nthreads; i++) {
		for (size_t k = 0; k < mb[i].n; k++) {
			errors += !tag_ok(mb[i].slot[k]);
			free(mb[i].slot[k]);
		}
		pthread_mutex_destroy(&mb[i].lock);
	}
	printf("mtwork: %d threads, %ld ops each, %lu bad tags\n", nthreads, ops, errors);
	free(mb);
	free(w);
	return 0;
}
