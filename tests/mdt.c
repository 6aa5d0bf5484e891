#include "mdt.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t mdt_seed(uint64_t fallback)
{
	const char *env = getenv("MDT_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : fallback;

	fprintf(stderr, "mdt: seed %" PRIu64 " (replay with MDT_SEED=%" PRIu64 "), scale %u%%\n",
		seed, seed, mdt_scale_percent());
	return seed;
}

void mdt_rng_init(struct mdt_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t mdt_rng_next(struct mdt_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t mdt_rng_below(struct mdt_rng *r, uint64_t bound)
{
	/* Lemire's multiply-shift; the tiny bias is irrelevant for tests. */
	return (uint64_t)(((unsigned __int128)mdt_rng_next(r) * bound) >> 64);
}

unsigned mdt_scale_percent(void)
{
	const char *env = getenv("MDT_SCALE");

	if (env && *env)
		return (unsigned)strtoul(env, NULL, 10);
#if defined(MEMDESC_SANITIZER_BUILD) || defined(MEMDESC_VALGRIND)
	return 10;
#else
	return 100;
#endif
}

size_t mdt_scaled(size_t n)
{
	size_t scaled = (size_t)((unsigned __int128)n * mdt_scale_percent() / 100);

	return scaled ? scaled : 1;
}

int mdt_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static uint64_t src_rng_below(struct mdt_src *s, uint64_t bound)
{
	struct mdt_src_rng *r = (struct mdt_src_rng *)s;

	/* Draws even for bound <= 1: the differential tests' streams stay as they were. */
	return mdt_rng_below(&r->rng, bound);
}

static uint64_t src_rng_next(struct mdt_src *s)
{
	return mdt_rng_next(&((struct mdt_src_rng *)s)->rng);
}

void mdt_src_rng_init(struct mdt_src_rng *s, uint64_t seed)
{
	s->src.below = src_rng_below;
	s->src.next = src_rng_next;
	mdt_rng_init(&s->rng, seed);
}

void mdt_fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ck_abort_msg("%s", msg);
	abort();	/* not reached: ck_abort_msg ends the test */
}

/* The child of mdt_run_self(): stderr to @fd, then exec; only returns to _exit. */
static void mdt_exec_self(const char *opts, const char *const *args, size_t as_bytes, int fd)
{
	char *argv[8] = { "mdt-child", "--child" };
	char self[4096];
	ssize_t n;
	int i;

	if (as_bytes) {
		struct rlimit rl = { .rlim_cur = as_bytes, .rlim_max = as_bytes };

		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(96);
	}

	for (i = 0; args[i] && i < 6; i++)
		argv[2 + i] = (char *)args[i];
	argv[2 + i] = NULL;
	dup2(fd, STDERR_FILENO);
	/* The child's options are @opts alone (the valgrind runs set MEMDESC_LIMIT). */
	unsetenv("MEMDESC_LIMIT");
	setenv("MEMDESC_OPTIONS", opts, 1);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		_exit(97);
	self[n] = '\0';
	execv(self, argv);
	_exit(98);
}

int mdt_run_self(const char *opts, const char *const *args, char *err, size_t errlen)
{
	return mdt_run_self_as(opts, args, 0, err, errlen);
}

int mdt_run_self_as(const char *opts, const char *const *args, size_t as_bytes, char *err,
		    size_t errlen)
{
	int pipefd[2], status;
	size_t len = 0;
	ssize_t r;
	pid_t pid;

	ck_assert_int_eq(pipe(pipefd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(pipefd[0]);
		mdt_exec_self(opts, args, as_bytes, pipefd[1]);
	}
	close(pipefd[1]);
	while (len + 1 < errlen && (r = read(pipefd[0], err + len, errlen - 1 - len)) > 0)
		len += (size_t)r;
	err[len] = '\0';
	close(pipefd[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

void mdt_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

bool mdt_os_moves_pages(void)
{
	size_t n = (size_t)sysconf(_SC_PAGESIZE);
	char *r = mmap(NULL, 2 * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool ok;

	ck_assert_ptr_ne(r, MAP_FAILED);
	r[0] = 1;
	ok = mremap(r, n, n, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, r + n) == r + n;
	ok = ok && r[n] == 1 && r[0] == 0;
	munmap(r, 2 * n);
	return ok;
}
