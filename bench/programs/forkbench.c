/*
 * forkbench: the cost of fork() in a program, under whatever malloc is preloaded
 * (bench/report/programs.py runs it under each allocator).
 *
 *	memdesc-forkbench FORKS HEAP_MIB
 *
 * First HEAP_MIB MiB of heap in use (blocks of 16 B to 256 KiB, every page written,
 * all live during the forks), then FORKS times: fork(); the child mallocs and frees one
 * block and calls _exit(0); the parent waits for it. Each fork runs the allocator's
 * fork handlers in the parent and the child, and the kernel copies the page tables of
 * the heap. Measured as a program, one allocator per process, rather than as rows of
 * memdesc-bench: in one process the fork handlers of every allocator linked in would
 * run in every row's forks.
 *
 * Output: a first line that is the same under every allocator (the harness compares
 * it), then the time per fork+exit+wait in microseconds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* HEAP_MIB of live blocks; returns the list (a block's first word links the next). */
static void **make_heap(size_t mib)
{
	size_t want = mib << 20, have = 0;
	uint64_t x = 88172645463325252ULL;
	void **list = NULL;

	while (have < want) {
		size_t size;
		void **b;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		size = (x & 7) == 0 ? 16384 + (size_t)(x >> 40) % (256 << 10) : 16 + (size_t)(x >> 40) % 2048;
		b = malloc(size);
		if (!b) {
			perror("malloc");
			exit(1);
		}
		memset(b, 0x5a, size);
		*b = list;
		list = b;
		have += size;
	}
	return list;
}

static void free_heap(void **list)
{
	while (list) {
		void **next = *list;

		free(list);
		list = next;
	}
}

int main(int argc, char **argv)
{
	long forks = argc > 1 ? atol(argv[1]) : 1000;
	size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 0;
	void **heap = make_heap(mib);
	double t0, t;

	printf("forkbench: %ld forks, %zu MiB of heap\n", forks, mib);
	fflush(stdout);
	t0 = now();
	for (long i = 0; i < forks; i++) {
		pid_t pid = fork();
		int status;

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			void *p = malloc(100);

			free(p);
			_exit(p ? 0 : 1);
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "forkbench: child %ld failed (status %#x)\n", i, status);
			return 1;
		}
	}
	t = now() - t0;
	printf("%.1f us per fork+exit+wait\n", t / (double)(forks ? forks : 1) * 1e6);
	free_heap(heap);
	return 0;
}
