/*
 * test_malloc_errors: bad frees are reported, never silently corrupt the heap.
 * Each case runs in a forked child whose stderr is captured: the child must die of
 * SIGABRT after writing exactly one report line "memdesc: <fn>(0x<addr>): <error>...".
 * Cases: double free (first free still in a magazine; first free back in its slab;
 * large block; the old block of a realloc that moved), free of a foreign pointer (stack,
 * libc-malloc'ed, a static), of an interior pointer (small and large), realloc /
 * malloc_usable_size / free_sized of a bad pointer, and the error hook.
 */
#include "mdt.h"
#include "md_malloc.h"
#include "slab.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*bad_fn)(void);

/* The address the child reports; written by the child before the bad call. */
static volatile uintptr_t bad_addr;
static int addr_pipe[2];

/*
 * The address goes as a number: a pointer to const would tell gcc (-O0) that the
 * uninitialised bytes behind it are read.
 */
static void tell_addr(uintptr_t a)
{
	if (write(addr_pipe[1], &a, sizeof(a)) != (ssize_t)sizeof(a))
		_exit(90);
}

/* Run @fn in a child; expect SIGABRT and a report naming @func, the address, @what. */
static void expect_report(bad_fn fn, const char *func, const char *what)
{
	int err[2], status;
	char out[4096];
	size_t len = 0;
	ssize_t r;
	uintptr_t addr = 0;
	char head[128];
	pid_t pid;

	ck_assert_int_eq(pipe(err), 0);
	ck_assert_int_eq(pipe(addr_pipe), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(err[0]);
		close(addr_pipe[0]);
		dup2(err[1], STDERR_FILENO);
		fn();
		_exit(0);	/* not reached if the report aborts */
	}
	close(err[1]);
	close(addr_pipe[1]);
	while ((r = read(err[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(err[0]);
	ck_assert_int_eq(read(addr_pipe[0], &addr, sizeof(addr)), (ssize_t)sizeof(addr));
	close(addr_pipe[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "%s: child status %#x, stderr: %s", what, status, out);
	snprintf(head, sizeof(head), "memdesc: %s(0x%lx): ", func, (unsigned long)addr);
	ck_assert_msg(strncmp(out, head, strlen(head)) == 0, "expected '%s...', got '%s'", head,
		      out);
	ck_assert_msg(strstr(out, what) != NULL, "expected '%s' in '%s'", what, out);
	/* One line. */
	ck_assert_ptr_eq(strchr(out, '\n'), out + len - 1);
}

static void double_free_magazine(void)
{
	void *p = md_malloc(32);

	md_free(p);	/* sits in this thread's magazine */
	tell_addr((uintptr_t)p);
	md_free(p);
}

/*
 * A block next to a fresh one: the slab layer filled this thread's magazine with a
 * run of neighbours (allocated in the bitmap, never handed out), so one of the two
 * sits in the magazine whichever end of the run malloc gave out first; the other is
 * free in the slab. Both frees must be reported, or the block is handed out twice.
 */
static void free_never_handed_out_above(void)
{
	char *p = md_malloc(48);

	tell_addr((uintptr_t)(p + 48));
	md_free(p + 48);
}

static void free_never_handed_out_below(void)
{
	char *p = md_malloc(48);

	tell_addr((uintptr_t)(p - 48));
	md_free(p - 48);
}

/* The same for a class whose bitmap is in the bitmap table (objects of 256 bytes up). */
static void free_never_handed_out_above_table(void)
{
	char *p = md_malloc(1024);

	tell_addr((uintptr_t)(p + 1024));
	md_free(p + 1024);
}

static void free_never_handed_out_below_table(void)
{
	char *p = md_malloc(1024);

	tell_addr((uintptr_t)(p - 1024));
	md_free(p - 1024);
}

static void double_free_slab_table(void)
{
	void *keep = md_malloc(1024), *p = md_malloc(1024);

	md_free(p);
	md_malloc_trim(0);
	tell_addr((uintptr_t)p);
	md_free(p);
	md_free(keep);
}

static void double_free_slab(void)
{
	void *keep = md_malloc(48), *p = md_malloc(48);

	md_free(p);
	md_malloc_trim(0);	/* magazines to the depot, the depot to the slabs */
	tell_addr((uintptr_t)p);
	md_free(p);
	md_free(keep);
}

static void double_free_after_magazines_cycle(void)
{
	/* The first free travelled through full magazines into the depot. */
	void *p = md_malloc(64), *q[2000];

	md_free(p);
	for (int i = 0; i < 2000; i++)
		q[i] = md_malloc(80);
	for (int i = 0; i < 2000; i++)
		md_free(q[i]);
	tell_addr((uintptr_t)p);
	md_free(p);
}

static void double_free_large(void)
{
	void *p = md_malloc(1 << 20);

	md_free(p);
	tell_addr((uintptr_t)p);
	md_free(p);
}

static void foreign_stack(void)
{
	char buf[64];

	tell_addr((uintptr_t)buf);
	md_free(buf);
}

static void foreign_libc(void)
{
	void *p = malloc(64);	/* the C library's malloc: this program is not preloaded */

	tell_addr((uintptr_t)p);
	md_free(p);
}

static char static_buf[256];

static void foreign_static(void)
{
	tell_addr((uintptr_t)(static_buf + 16));
	md_free(static_buf + 16);
}

static void interior_small(void)
{
	char *p = md_malloc(100);

	tell_addr((uintptr_t)(p + 16));
	md_free(p + 16);
}

static void interior_small_odd(void)
{
	char *p = md_malloc(100);

	tell_addr((uintptr_t)(p + 3));
	md_free(p + 3);
}

static void interior_large_page(void)
{
	char *p = md_malloc(100000);

	tell_addr((uintptr_t)(p + 8192));
	md_free(p + 8192);
}

static void interior_large_offset(void)
{
	char *p = md_malloc(100000);

	tell_addr((uintptr_t)(p + 16));
	md_free(p + 16);
}

static void realloc_freed(void)
{
	void *p = md_malloc(200);

	md_free(p);
	tell_addr((uintptr_t)p);
	(void)!md_realloc(p, 400);
}

/* The same with sizes that realloc's fast path would keep in place. */
static void realloc_freed_same_size(void)
{
	void *p = md_malloc(200);

	md_free(p);
	tell_addr((uintptr_t)p);
	(void)!md_realloc(p, 200);
}

/*
 * A realloc that moved a small block to another class freed the old one. A block of the
 * new class waits in this thread's magazine, so that realloc's fast path moves it.
 */
static void free_after_realloc_moved(void)
{
	char *p, *q;

	md_free(md_malloc(600));
	p = md_malloc(200);
	memset(p, 7, 200);
	q = md_realloc(p, 600);
	if (q == p || q[199] != 7)
		abort();	/* not a move, or the contents were lost: no report, the test fails */
	tell_addr((uintptr_t)p);
	md_free(p);
}

static void realloc_freed_large_same_size(void)
{
	void *p = md_malloc(100000);

	md_free(p);
	tell_addr((uintptr_t)p);
	(void)!md_realloc(p, 100000);
}

static void realloc_interior_small(void)
{
	char *p = md_malloc(1000);

	tell_addr((uintptr_t)(p + 16));
	(void)!md_realloc(p + 16, 900);
}

static void usable_size_interior(void)
{
	char *p = md_malloc(1000);

	tell_addr((uintptr_t)(p + 32));
	(void)md_malloc_usable_size(p + 32);
}

static void free_sized_too_big(void)
{
	void *p = md_malloc(100);

	tell_addr((uintptr_t)p);
	md_free_sized(p, 1000);
}

static void internal_object(void)
{
	/* An object of a cache that is not one of malloc's classes. */
	struct kmem_cache *c = kmem_cache_create("other", 64, 0, 0);
	void *p = kmem_cache_alloc(c);

	tell_addr((uintptr_t)p);
	md_free(p);
}

static void hook(const char *msg, size_t len)
{
	/* Prefix the line so that the test sees the hook ran. */
	if (write(STDERR_FILENO, "hooked ", 7) != 7 || write(STDERR_FILENO, msg, len) < 0 ||
	    write(STDERR_FILENO, "\n", 1) != 1)
		_exit(91);
}

static void with_hook(void)
{
	void *p = md_malloc(16);

	md_malloc_error_hook(hook);
	md_free(p);
	tell_addr((uintptr_t)p);
	md_free(p);
}

START_TEST(test_double_free)
{
	expect_report(double_free_magazine, "free", "double free (block of 32 bytes)");
	expect_report(double_free_slab, "free", "double free (block of 48 bytes)");
	expect_report(double_free_after_magazines_cycle, "free", "double free");
	expect_report(double_free_large, "free", "double free");
	expect_report(realloc_freed, "realloc", "double free");
	expect_report(realloc_freed_same_size, "realloc", "double free");
	expect_report(realloc_freed_large_same_size, "realloc", "double free");
	expect_report(free_after_realloc_moved, "free", "double free (block of 208 bytes)");
	expect_report(free_never_handed_out_above, "free", "double free (block of 48 bytes)");
	expect_report(free_never_handed_out_below, "free", "double free (block of 48 bytes)");
	expect_report(double_free_slab_table, "free", "double free (block of 1024 bytes)");
	expect_report(free_never_handed_out_above_table, "free",
		      "double free (block of 1024 bytes)");
	expect_report(free_never_handed_out_below_table, "free",
		      "double free (block of 1024 bytes)");
}
END_TEST

START_TEST(test_foreign)
{
	expect_report(foreign_stack, "free", "invalid pointer");
	expect_report(foreign_libc, "free", "invalid pointer");
	expect_report(foreign_static, "free", "invalid pointer");
	expect_report(internal_object, "free", "invalid pointer");
}
END_TEST

START_TEST(test_interior)
{
	expect_report(interior_small, "free", "interior pointer");
	expect_report(interior_small_odd, "free", "interior pointer");
	expect_report(interior_large_page, "free", "interior pointer");
	expect_report(interior_large_offset, "free", "interior pointer");
	expect_report(usable_size_interior, "malloc_usable_size", "interior pointer");
	expect_report(realloc_interior_small, "realloc", "interior pointer");
	expect_report(free_sized_too_big, "free_sized", "size larger than the block");
}
END_TEST

START_TEST(test_hook)
{
	char out[512];
	int err[2], status;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(err), 0);
	ck_assert_int_eq(pipe(addr_pipe), 0);
	pid = fork();
	if (pid == 0) {
		dup2(err[1], STDERR_FILENO);
		close(err[0]);
		with_hook();
		_exit(0);
	}
	close(err[1]);
	close(addr_pipe[1]);
	for (size_t len = 0;;) {
		n = read(err[0], out + len, sizeof(out) - 1 - len);
		if (n <= 0) {
			out[len] = '\0';
			break;
		}
		len += (size_t)n;
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	ck_assert_msg(strncmp(out, "hooked memdesc: free(0x", 23) == 0, "got '%s'", out);
	close(err[0]);
	close(addr_pipe[0]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("malloc_errors");
	TCase *tc = tcase_create("bad frees");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_double_free);
	tcase_add_test(tc, test_foreign);
	tcase_add_test(tc, test_interior);
	tcase_add_test(tc, test_hook);
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
