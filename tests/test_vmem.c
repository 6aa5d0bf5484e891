/*
 * test_vmem: unit tests of the vmem range allocator, one per function and constraint:
 * arguments, address 0, the top of the address space, coalescing, the fit policies,
 * vmem_xalloc's constraints, bad frees, vmem_resize, importing through three stacked
 * arenas, the boundary-tag reserve failing (fault-injection builds only), quantum
 * caches, hash growth, vmem_destroy.
 */
#include "mdt.h"
#include "fault.h"
#include "vmem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define Q 4096u
#define TOP_BASE(n) ((uintptr_t)0 - (uintptr_t)(n) * Q)	/* n quanta ending at UINTPTR_MAX */

/* ---- helpers ----------------------------------------------------------------------- */

static vmem_t *arena(uintptr_t base, size_t quanta, size_t qcache_quanta)
{
	vmem_t *vm = vmem_create("test", base, quanta * Q, Q, NULL, NULL, NULL,
				 qcache_quanta * Q, 0);

	ck_assert_ptr_nonnull(vm);
	return vm;
}

static uintptr_t must_alloc(vmem_t *vm, size_t size, int flags)
{
	uintptr_t addr = 0;

	ck_assert_int_eq(vmem_alloc(vm, size, flags, &addr), 0);
	return addr;
}

/* Captures what a call prints on stderr. */
struct capture {
	int saved;
	FILE *file;
	char text[1024];
};

static void capture_begin(struct capture *c)
{
	fflush(stderr);
	c->file = tmpfile();
	ck_assert_ptr_nonnull(c->file);
	c->saved = dup(STDERR_FILENO);
	dup2(fileno(c->file), STDERR_FILENO);
}

static const char *capture_end(struct capture *c)
{
	size_t n;

	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	rewind(c->file);
	n = fread(c->text, 1, sizeof(c->text) - 1, c->file);
	c->text[n] = '\0';
	fclose(c->file);
	fputs(c->text, stderr);		/* still visible in the test log */
	return c->text;
}

/* ---- vmem_create, vmem_add ----------------------------------------------------------- */

START_TEST(test_create_bad_arguments)
{
	vmem_t *src = arena(0, 16, 0);

	errno = 0;
	ck_assert_ptr_null(vmem_create("q0", 0, 0, 0, NULL, NULL, NULL, 0, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(vmem_create("q3", 0, 0, 3, NULL, NULL, NULL, 0, 0));
	ck_assert_ptr_null(vmem_create(NULL, 0, 0, Q, NULL, NULL, NULL, 0, 0));
	ck_assert_ptr_null(vmem_create("flags", 0, 0, Q, NULL, NULL, NULL, 0, 1));
	ck_assert_ptr_null(vmem_create("misaligned", 100, Q, Q, NULL, NULL, NULL, 0, 0));
	ck_assert_ptr_null(vmem_create("wraps", TOP_BASE(1), 2 * Q, Q, NULL, NULL, NULL, 0, 0));
	ck_assert_ptr_null(vmem_create("qc", 0, 0, Q, NULL, NULL, NULL, Q + 1, 0));
	ck_assert_ptr_null(vmem_create("qc", 0, 0, Q, NULL, NULL, NULL,
				       (VMEM_QCACHE_MAX_QUANTA + 1) * Q, 0));
	ck_assert_ptr_null(vmem_create("half", 0, 0, Q, vmem_alloc, NULL, src, 0, 0));
	ck_assert_ptr_null(vmem_create("nosrc", 0, 0, Q, vmem_alloc, vmem_free, NULL, 0, 0));
	/* the source's quantum (Q) must be a multiple of ours */
	ck_assert_ptr_null(vmem_create("coarse", 0, 0, 2 * Q, vmem_alloc, vmem_free, src, 0, 0));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(vmem_check(src), 0);
	vmem_destroy(src);
	vmem_destroy(NULL);
}
END_TEST

START_TEST(test_add_spans)
{
	vmem_t *vm = vmem_create("spans", 0, 0, Q, NULL, NULL, NULL, 0, 0);
	uintptr_t a;

	ck_assert_ptr_nonnull(vm);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC | VMEM_FREE), 0);
	ck_assert_int_eq(vmem_alloc(vm, Q, 0, &a), -ENOMEM);
	ck_assert_int_eq(vmem_add(vm, 16 * Q, 8 * Q, 0), 0);
	ck_assert_int_eq(vmem_add(vm, 0, 8 * Q, 0), 0);
	ck_assert_int_eq(vmem_add(vm, 8 * Q, 8 * Q, 0), 0);	/* adjacent on both sides */
	/* overlaps, bad sizes, wrap, flags: rejected, nothing changes */
	ck_assert_int_eq(vmem_add(vm, 4 * Q, 8 * Q, 0), -EINVAL);
	ck_assert_int_eq(vmem_add(vm, 23 * Q, 2 * Q, 0), -EINVAL);
	ck_assert_int_eq(vmem_add(vm, 30 * Q, 0, 0), -EINVAL);
	ck_assert_int_eq(vmem_add(vm, 30 * Q, Q / 2, 0), -EINVAL);
	ck_assert_int_eq(vmem_add(vm, 30 * Q + 1, Q, 0), -EINVAL);
	ck_assert_int_eq(vmem_add(vm, TOP_BASE(1), 2 * Q, 0), -EINVAL);
	ck_assert_int_eq(vmem_add(vm, 40 * Q, Q, 4), -EINVAL);
	ck_assert_int_eq(vmem_add(NULL, 40 * Q, Q, 0), -EINVAL);
	ck_assert_int_eq(vmem_size(vm, VMEM_FREE), 24 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* adjacent spans do not coalesce: 9 quanta fit in no single span */
	ck_assert_int_eq(vmem_alloc(vm, 9 * Q, VMEM_BESTFIT, &a), -ENOMEM);
	ck_assert_int_eq(vmem_alloc(vm, 8 * Q, VMEM_BESTFIT, &a), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, a, 8 * Q);
	vmem_destroy(vm);
}
END_TEST

/* ---- vmem_alloc, vmem_free ------------------------------------------------------------ */

START_TEST(test_address_zero)
{
	vmem_t *vm = arena(0, 4, 0);
	uintptr_t a = 12345;

	ck_assert_int_eq(vmem_alloc(vm, Q, 0, &a), 0);
	ck_assert_uint_eq(a, 0);
	ck_assert_int_eq(vmem_free_checked(vm, 0, Q), 0);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 0, 0, 0, 0, Q, 0, &a), 0);	/* [0, Q) exactly */
	ck_assert_uint_eq(a, 0);
	vmem_xfree(vm, 0, Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_alloc_bad_arguments)
{
	vmem_t *vm = arena(Q, 4, 0);
	uintptr_t a;

	ck_assert_int_eq(vmem_alloc(vm, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_alloc(vm, Q, VMEM_BESTFIT | VMEM_NEXTFIT, &a), -EINVAL);
	ck_assert_int_eq(vmem_alloc(vm, Q, 0x100, &a), -EINVAL);
	ck_assert_int_eq(vmem_alloc(vm, Q, 0, NULL), -EINVAL);
	ck_assert_int_eq(vmem_alloc(NULL, Q, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_alloc(vm, SIZE_MAX, 0, &a), -ENOMEM);
	ck_assert_int_eq(vmem_alloc(vm, 5 * Q, 0, &a), -ENOMEM);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_alloc_rounds_and_exhausts)
{
	vmem_t *vm = arena(Q, 8, 0);
	uintptr_t a[8], x;

	a[0] = must_alloc(vm, 1, 0);			/* rounded up to one quantum */
	ck_assert_uint_eq(a[0], Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), Q);
	for (int i = 1; i < 8; i++)
		a[i] = must_alloc(vm, Q, 0);
	ck_assert_int_eq(vmem_alloc(vm, Q, 0, &x), -ENOMEM);
	ck_assert_int_eq(vmem_size(vm, VMEM_FREE), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, a[0], 1);				/* the same rounding on free */
	for (int i = 1; i < 8; i++)
		vmem_free(vm, a[i], Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* everything coalesced back into one segment */
	ck_assert_int_eq(vmem_alloc(vm, 8 * Q, 0, &x), 0);
	vmem_free(vm, x, 8 * Q);
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_coalesce_both_sides)
{
	vmem_t *vm = arena(0, 3, 0);
	uintptr_t a = must_alloc(vm, Q, 0), b = must_alloc(vm, Q, 0), c = must_alloc(vm, Q, 0);
	uintptr_t x;

	vmem_free(vm, a, Q);
	vmem_free(vm, c, Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_alloc(vm, 2 * Q, VMEM_BESTFIT, &x), -ENOMEM);
	vmem_free(vm, b, Q);				/* joins both neighbours */
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_alloc(vm, 3 * Q, 0, &x), 0);
	ck_assert_uint_eq(x, 0);
	vmem_free(vm, x, 3 * Q);
	vmem_destroy(vm);
}
END_TEST

/* ---- bad frees --------------------------------------------------------------------- */

START_TEST(test_bad_free_reported_nothing_changed)
{
	vmem_t *vm = arena(0x100000, 16, 0);
	uintptr_t a = must_alloc(vm, 2 * Q, 0), b = must_alloc(vm, Q, 0);
	size_t before = vmem_size(vm, VMEM_ALLOC);
	struct capture cap;
	const char *msg;

	capture_begin(&cap);
	ck_assert_int_eq(vmem_free_checked(vm, a, Q), -EINVAL);		/* wrong size */
	msg = capture_end(&cap);
	ck_assert_ptr_nonnull(strstr(msg, "vmem_free_checked"));
	ck_assert_ptr_nonnull(strstr(msg, "'test'"));
	ck_assert_ptr_nonnull(strstr(msg, "0x100000"));
	ck_assert_ptr_nonnull(strstr(msg, "allocated with size 0x2000"));

	capture_begin(&cap);
	vmem_free(vm, a + Q, Q);					/* inside, not a start */
	msg = capture_end(&cap);
	ck_assert_ptr_nonnull(strstr(msg, "vmem_free(arena 'test'): bad free of [0x101000"));
	ck_assert_ptr_nonnull(strstr(msg, "not an allocated range"));

	capture_begin(&cap);
	vmem_xfree(vm, 0x100000 + 10 * Q, Q);				/* free space */
	msg = capture_end(&cap);
	ck_assert_ptr_nonnull(strstr(msg, "vmem_xfree"));

	ck_assert_int_eq(vmem_free_checked(vm, 0x100000 + 10 * Q, 0), -EINVAL);
	ck_assert_int_eq(vmem_free_checked(vm, 0, Q), -EINVAL);		/* outside the arena */
	ck_assert_int_eq(vmem_free_checked(NULL, a, Q), -EINVAL);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), before);
	ck_assert_int_eq(vmem_check(vm), 0);

	ck_assert_int_eq(vmem_free_checked(vm, b, Q), 0);
	ck_assert_int_eq(vmem_free_checked(vm, b, Q), -EINVAL);		/* double free */
	ck_assert_int_eq(vmem_free_checked(vm, a, 2 * Q), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

/* ---- vmem_resize -------------------------------------------------------------------- */

START_TEST(test_resize_grow_and_shrink)
{
	vmem_t *vm = arena(0, 16, 0);
	uintptr_t a = must_alloc(vm, 2 * Q, 0), b, x;

	/* grows into the free segment after it; the start stays */
	ck_assert_int_eq(vmem_resize(vm, a, 2 * Q, 5 * Q), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 5 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	b = must_alloc(vm, Q, 0);
	ck_assert_uint_eq(b, 5 * Q);
	/* the next segment is allocated: no room, nothing changed */
	ck_assert_int_eq(vmem_resize(vm, a, 5 * Q, 6 * Q), -ENOMEM);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 6 * Q);
	/* shrink with an allocated neighbour: the tail becomes a free segment of its own */
	ck_assert_int_eq(vmem_resize(vm, a, 5 * Q, 3 * Q), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_xalloc(vm, 2 * Q, 0, 0, 0, 3 * Q, 5 * Q, 0, &x), 0);
	ck_assert_uint_eq(x, 3 * Q);
	vmem_free(vm, x, 2 * Q);
	/* grow consuming the free segment exactly (its tag goes), then shrink into a free one */
	ck_assert_int_eq(vmem_resize(vm, a, 3 * Q, 5 * Q), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, b, Q);
	ck_assert_int_eq(vmem_resize(vm, a, 5 * Q, Q), 0);	/* joins the free segment after */
	ck_assert_int_eq(vmem_check(vm), 0);
	/* rounding: sizes are quanta, equal rounded sizes change nothing */
	ck_assert_int_eq(vmem_resize(vm, a, Q - 1, Q), 0);
	ck_assert_int_eq(vmem_resize(vm, a, Q, 16 * Q), 0);	/* the whole span */
	ck_assert_int_eq(vmem_resize(vm, a, 16 * Q, 17 * Q), -ENOMEM);	/* past the span */
	ck_assert_int_eq(vmem_resize(vm, a, 16 * Q, 0), -EINVAL);
	vmem_free(vm, a, 16 * Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_alloc(vm, 16 * Q, 0, &x), 0);		/* one segment again */
	vmem_free(vm, x, 16 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_resize_not_across_spans)
{
	vmem_t *vm = arena(0, 4, 0);
	uintptr_t a = must_alloc(vm, 4 * Q, 0);

	/* an adjacent span is free but is another span: no growing into it */
	ck_assert_int_eq(vmem_add(vm, 4 * Q, 4 * Q, 0), 0);
	ck_assert_int_eq(vmem_resize(vm, a, 4 * Q, 5 * Q), -ENOMEM);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 4 * Q);
	/* a shrink at the end of its span makes a free segment there */
	ck_assert_int_eq(vmem_resize(vm, a, 4 * Q, 3 * Q), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_resize(vm, a, 3 * Q, 4 * Q), 0);
	vmem_free(vm, a, 4 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

/* vmem_join(): two adjacent allocations of one span become one, freed as a whole. */
START_TEST(test_join)
{
	vmem_t *vm = arena(0, 8, 0);
	uintptr_t a = must_alloc(vm, 2 * Q, 0), b = must_alloc(vm, 3 * Q, 0);
	uintptr_t c = must_alloc(vm, 3 * Q, 0), x;
	size_t tags = vmem_tag_bytes();

	ck_assert_uint_eq(b, a + 2 * Q);
	ck_assert_uint_eq(c, b + 3 * Q);
	ck_assert_int_eq(vmem_join(vm, a, 2 * Q, 2 * Q), -ENOMEM);	/* b is 3 quanta */
	ck_assert_int_eq(vmem_join(vm, a, Q, 3 * Q), -EINVAL);		/* a is 2 quanta */
	ck_assert_int_eq(vmem_join(vm, a + Q, Q, 3 * Q), -EINVAL);	/* not a start */
	ck_assert_int_eq(vmem_join(vm, a, 2 * Q, 3 * Q), 0);
	ck_assert_uint_eq(vmem_tag_bytes(), tags);	/* no tag taken */
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 8 * Q);
	ck_assert_int_eq(vmem_free_checked(vm, b, 3 * Q), -EINVAL);	/* b is no more */
	ck_assert_int_eq(vmem_join(vm, a, 5 * Q, 3 * Q), 0);
	vmem_free(vm, a, 8 * Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* a free range between: not adjacent allocations */
	a = must_alloc(vm, 2 * Q, 0);
	x = must_alloc(vm, Q, 0);
	b = must_alloc(vm, 2 * Q, 0);
	vmem_free(vm, x, Q);
	ck_assert_int_eq(vmem_join(vm, a, 2 * Q, 2 * Q), -ENOMEM);
	vmem_free(vm, a, 2 * Q);
	vmem_free(vm, b, 2 * Q);
	/* allocations of two spans side by side stay apart */
	ck_assert_int_eq(vmem_add(vm, 8 * Q, 4 * Q, 0), 0);
	ck_assert_int_eq(vmem_xalloc(vm, 8 * Q, 0, 0, 0, 0, 8 * Q, 0, &a), 0);
	ck_assert_int_eq(vmem_xalloc(vm, 4 * Q, 0, 0, 0, 8 * Q, 12 * Q, 0, &b), 0);
	ck_assert_int_eq(vmem_join(vm, a, 8 * Q, 4 * Q), -ENOMEM);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, a, 8 * Q);
	vmem_free(vm, b, 4 * Q);
	vmem_destroy(vm);
	/* quantum-cached sizes are refused */
	vm = arena(0, 16, 2);
	a = must_alloc(vm, Q, 0);
	b = must_alloc(vm, 4 * Q, 0);
	ck_assert_int_eq(vmem_join(vm, a, Q, 4 * Q), -EINVAL);
	vmem_free(vm, a, Q);
	vmem_free(vm, b, 4 * Q);
	vmem_destroy(vm);
}
END_TEST

/* vmem_split(): one allocation becomes two, each freed on its own; a tag is used. */
START_TEST(test_split)
{
	vmem_t *vm = arena(0, 8, 0);
	uintptr_t a = must_alloc(vm, 8 * Q, 0);

	ck_assert_int_eq(vmem_split(vm, a, 8 * Q, 0), -EINVAL);
	ck_assert_int_eq(vmem_split(vm, a, 8 * Q, 8 * Q), -EINVAL);
	ck_assert_int_eq(vmem_split(vm, a, 4 * Q, 2 * Q), -EINVAL);	/* wrong size */
	ck_assert_int_eq(vmem_split(vm, a + Q, 7 * Q, 2 * Q), -EINVAL);	/* not a start */
	ck_assert_int_eq(vmem_split(vm, a, 8 * Q, 3 * Q), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 8 * Q);
	ck_assert_int_eq(vmem_free_checked(vm, a, 8 * Q), -EINVAL);	/* two now */
	ck_assert_int_eq(vmem_split(vm, a + 3 * Q, 5 * Q, Q), 0);
	vmem_free(vm, a + 3 * Q, Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 7 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* join undoes split */
	ck_assert_int_eq(vmem_join(vm, a + 3 * Q, Q, 4 * Q), -EINVAL);	/* freed */
	vmem_free(vm, a, 3 * Q);
	vmem_free(vm, a + 4 * Q, 4 * Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

/*
 * vmem_alloc_next(): what a grow would take becomes an allocation of its own, joinable
 * (vmem_joinable agrees with vmem_join) and freed on its own otherwise.
 */
START_TEST(test_alloc_next)
{
	vmem_t *vm = arena(0, 8, 0);
	uintptr_t a = must_alloc(vm, 2 * Q, 0), b;

	ck_assert_int_eq(vmem_joinable(vm, a, 2 * Q, 3 * Q), -ENOMEM);	/* free after a */
	ck_assert_int_eq(vmem_alloc_next(vm, a, Q, 3 * Q), -EINVAL);	/* a is 2 quanta */
	ck_assert_int_eq(vmem_alloc_next(vm, a + Q, Q, 3 * Q), -EINVAL);	/* not a start */
	ck_assert_int_eq(vmem_alloc_next(vm, a, 2 * Q, 7 * Q), -ENOMEM);	/* 6 free */
	ck_assert_int_eq(vmem_alloc_next(vm, a, 2 * Q, 3 * Q), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 5 * Q);
	ck_assert_int_eq(vmem_alloc_next(vm, a, 2 * Q, Q), -ENOMEM);	/* taken now */
	ck_assert_int_eq(vmem_joinable(vm, a, 2 * Q, 2 * Q), -ENOMEM);	/* 3 quanta */
	ck_assert_int_eq(vmem_joinable(vm, a, Q, 3 * Q), -EINVAL);
	ck_assert_int_eq(vmem_joinable(vm, a, 2 * Q, 3 * Q), 0);
	/* undone by a free: the arena is as before */
	vmem_free(vm, a + 2 * Q, 3 * Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 2 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* the whole free segment after a: its tag becomes the allocation */
	ck_assert_int_eq(vmem_alloc_next(vm, a, 2 * Q, 6 * Q), 0);
	ck_assert_int_eq(vmem_joinable(vm, a, 2 * Q, 6 * Q), 0);
	ck_assert_int_eq(vmem_join(vm, a, 2 * Q, 6 * Q), 0);
	ck_assert_int_eq(vmem_free_checked(vm, a + 2 * Q, 6 * Q), -EINVAL);	/* joined */
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, a, 8 * Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	/* the free range after the end of a span is another span's: not taken */
	ck_assert_int_eq(vmem_add(vm, 8 * Q, 4 * Q, 0), 0);
	ck_assert_int_eq(vmem_xalloc(vm, 8 * Q, 0, 0, 0, 0, 8 * Q, 0, &a), 0);
	ck_assert_int_eq(vmem_alloc_next(vm, a, 8 * Q, Q), -ENOMEM);
	/* two allocations of two spans side by side: not joinable */
	ck_assert_int_eq(vmem_xalloc(vm, 4 * Q, 0, 0, 0, 8 * Q, 12 * Q, 0, &b), 0);
	ck_assert_int_eq(vmem_joinable(vm, a, 8 * Q, 4 * Q), -ENOMEM);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, a, 8 * Q);
	vmem_free(vm, b, 4 * Q);
	vmem_destroy(vm);
	/* quantum-cached sizes are refused, as by vmem_join() */
	vm = arena(0, 16, 2);
	a = must_alloc(vm, 4 * Q, 0);
	ck_assert_int_eq(vmem_alloc_next(vm, a, 4 * Q, Q), -EINVAL);
	ck_assert_int_eq(vmem_joinable(vm, a, 4 * Q, 2 * Q), -EINVAL);
	vmem_free(vm, a, 4 * Q);
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_resize_bad_reported_nothing_changed)
{
	vmem_t *vm = arena(0x100000, 16, 2);
	uintptr_t a = must_alloc(vm, 4 * Q, 0), c = must_alloc(vm, Q, 0);
	struct capture cap;
	const char *msg;

	capture_begin(&cap);
	ck_assert_int_eq(vmem_resize(vm, a, 3 * Q, 5 * Q), -EINVAL);	/* wrong size */
	msg = capture_end(&cap);
	ck_assert_ptr_nonnull(strstr(msg, "vmem_resize(arena 'test'): bad resize of [0x100000"));
	ck_assert_ptr_nonnull(strstr(msg, "allocated with size 0x4000"));
	capture_begin(&cap);
	ck_assert_int_eq(vmem_resize(vm, a + Q, Q, 2 * Q), -EINVAL);	/* interior */
	ck_assert_ptr_nonnull(strstr(capture_end(&cap), "not an allocated range"));
	ck_assert_int_eq(vmem_resize(vm, 0x100000 + 10 * Q, Q, 2 * Q), -EINVAL);	/* free */
	ck_assert_int_eq(vmem_resize(NULL, a, Q, 2 * Q), -EINVAL);
	ck_assert_int_eq(vmem_resize(vm, a, 0, Q), -EINVAL);
	/* a range in a quantum cache is free: resizing it is reported */
	vmem_free(vm, c, Q);
	capture_begin(&cap);
	ck_assert_int_eq(vmem_resize(vm, c, Q, 2 * Q), -EINVAL);
	ck_assert_ptr_nonnull(strstr(capture_end(&cap), "quantum cache"));
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 4 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* a live small range resizes, and is then freed (into its new cache) by its new size */
	c = must_alloc(vm, Q, 0);
	ck_assert_int_eq(vmem_resize(vm, c, Q, 2 * Q), 0);
	ck_assert_int_eq(vmem_free_checked(vm, c, Q), -EINVAL);
	ck_assert_int_eq(vmem_free_checked(vm, c, 2 * Q), 0);
	ck_assert_int_eq(vmem_free_checked(vm, a, 4 * Q), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

#ifdef MEMDESC_FAULT_INJECTION
START_TEST(test_resize_shrink_without_tag)
{
	vmem_t *vm = arena(0, 4096, 0);
	size_t count = 0;
	uintptr_t a = must_alloc(vm, 4 * Q, 0), b = must_alloc(vm, 2 * Q, 0), x;
	int rc;

	/* drain the reserve: one-quantum allocations at the head each take a tag */
	fault_arm(FAULT_VMEM_TAG, 1, 1);
	while (vmem_alloc(vm, Q, 0, &x) == 0)
		ck_assert_uint_lt(++count, 1000);
	/* an allocation needs two tags: one may be left, which this shrink of b takes */
	fault_arm(FAULT_VMEM_TAG, 1, 1);
	rc = vmem_resize(vm, b, 2 * Q, Q);
	ck_assert(rc == 0 || rc == -ENOMEM);
	/* the block after a is allocated, so a shrink needs a tag, and none can be had */
	fault_arm(FAULT_VMEM_TAG, 1, 1);
	ck_assert_int_eq(vmem_resize(vm, a, 4 * Q, 2 * Q), -ENOMEM);
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_free_checked(vm, a, 4 * Q), 0);	/* unchanged */
	fault_disarm_all();
	vmem_destroy(vm);
}
END_TEST
#endif /* MEMDESC_FAULT_INJECTION */

/* ---- fit policies ------------------------------------------------------------------ */

/*
 * Free segments of 5, 2 and 9 quanta (in address order) separated by allocated ones;
 * the addresses of the three in *f.
 */
static vmem_t *holes(uintptr_t f[3])
{
	static const size_t sizes[] = { 5, 1, 2, 1, 9, 1 };
	vmem_t *vm = arena(0, 19, 0);
	uintptr_t a[6];

	for (int i = 0; i < 6; i++)
		a[i] = must_alloc(vm, sizes[i] * Q, 0);
	vmem_free(vm, a[0], 5 * Q);
	vmem_free(vm, a[2], 2 * Q);
	vmem_free(vm, a[4], 9 * Q);
	f[0] = a[0], f[1] = a[2], f[2] = a[4];
	ck_assert_int_eq(vmem_check(vm), 0);
	return vm;
}

START_TEST(test_bestfit_takes_smallest)
{
	uintptr_t f[3];
	vmem_t *vm = holes(f);

	ck_assert_uint_eq(must_alloc(vm, 2 * Q, VMEM_BESTFIT), f[1]);
	ck_assert_uint_eq(must_alloc(vm, 4 * Q, VMEM_BESTFIT), f[0]);
	ck_assert_uint_eq(must_alloc(vm, 9 * Q, VMEM_BESTFIT), f[2]);
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_instantfit_next_power_of_two)
{
	uintptr_t f[3], x;
	vmem_t *vm = holes(f);

	/* 2 is a power of two: list [2,4) holds the 2-quanta hole */
	ck_assert_uint_eq(must_alloc(vm, 2 * Q, 0), f[1]);
	/* 3 quanta: the lists from [4,8) up; [4,8) holds the 5-quanta hole */
	ck_assert_uint_eq(must_alloc(vm, 3 * Q, VMEM_INSTANTFIT), f[0]);
	/* 9 quanta: no list from [16,32) up is non-empty, so list [8,16) is searched */
	ck_assert_uint_eq(must_alloc(vm, 9 * Q, 0), f[2]);
	ck_assert_int_eq(vmem_alloc(vm, 3 * Q, 0, &x), -ENOMEM);
	ck_assert_uint_eq(must_alloc(vm, 2 * Q, 0), f[0] + 3 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_nextfit_moves_forward)
{
	vmem_t *vm = arena(0, 8, 0);
	uintptr_t a = must_alloc(vm, Q, VMEM_NEXTFIT), b = must_alloc(vm, Q, VMEM_NEXTFIT);

	ck_assert_uint_eq(a, 0);
	ck_assert_uint_eq(b, Q);
	vmem_free(vm, a, Q);
	/* the rotor is past b: the next one comes after it, not at the freed a */
	ck_assert_uint_eq(must_alloc(vm, Q, VMEM_NEXTFIT), 2 * Q);
	ck_assert_uint_eq(must_alloc(vm, 5 * Q, VMEM_NEXTFIT), 3 * Q);
	/* wraps around to the hole at 0 */
	ck_assert_uint_eq(must_alloc(vm, Q, VMEM_NEXTFIT), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

/* ---- vmem_xalloc ------------------------------------------------------------------ */

START_TEST(test_xalloc_bad_constraints)
{
	vmem_t *vm = arena(0, 64, 0);
	uintptr_t a;

	ck_assert_int_eq(vmem_xalloc(vm, 0, 0, 0, 0, 0, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 3 * Q, 0, 0, 0, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, Q, Q / 2, 0, 0, 0, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 4 * Q, 4 * Q, 0, 0, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 4 * Q, 1, 0, 0, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 0, 0, 3 * Q, 0, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, 4 * Q, 0, 0, 2 * Q, 0, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 8 * Q, 0, 4 * Q, 0, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, 2 * Q, 4 * Q, 3 * Q, 4 * Q, 0, 0, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 0, 0, 0, 8 * Q, 8 * Q, 0, &a), -EINVAL);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 0, 0, 0, 0, 0, 3, &a), -EINVAL);
	/* consistent but impossible: -ENOMEM */
	ck_assert_int_eq(vmem_xalloc(vm, 2 * Q, 0, 0, 0, 8 * Q, 9 * Q, 0, &a), -ENOMEM);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 0, 0, 0, 64 * Q, 0, 0, &a), -ENOMEM);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 128 * Q, 100 * Q, 0, 0, 0, 0, &a), -ENOMEM);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

/* Every combination on a small arena with one quantum taken at 0: each result meets its
 * constraints exactly and is the lowest that does (instant-fit on one free segment). */
START_TEST(test_xalloc_constraints_exact)
{
	vmem_t *vm = arena(0, 64, 0);
	uintptr_t hole = must_alloc(vm, Q, 0);

	ck_assert_uint_eq(hole, 0);
	for (size_t size = 1; size <= 5; size++)
	for (size_t align = 1; align <= 16; align *= 2)
	for (size_t phase = 0; phase < align; phase++)
	for (size_t nocross = 0; nocross <= 32; nocross = nocross ? nocross * 2 : 1)
	for (size_t minq = 0; minq < 8; minq += 3)
	for (size_t maxq = 0; maxq <= 64; maxq += 20) {
		uintptr_t a, want = 0;
		bool possible = false;
		int rc;

		if (nocross && (align > nocross || size > nocross || phase > nocross - size))
			continue;
		if (maxq && minq >= maxq)
			continue;
		for (size_t s = 1; s + size <= 64 && !possible; s++) {
			if (s % align != phase || s < minq || (maxq && s + size > maxq))
				continue;
			if (nocross && s / nocross != (s + size - 1) / nocross)
				continue;
			possible = true;
			want = s * Q;
		}
		rc = vmem_xalloc(vm, size * Q, align * Q, phase * Q, nocross * Q, minq * Q,
				 maxq * Q, 0, &a);
		ck_assert_int_eq(rc, possible ? 0 : -ENOMEM);
		if (rc == 0) {
			ck_assert_uint_eq(a, want);
			vmem_xfree(vm, a, size * Q);
		}
	}
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, hole, Q);
	vmem_destroy(vm);
}
END_TEST

/* ---- the top of the address space ---------------------------------------------------- */

START_TEST(test_top_of_address_space)
{
	vmem_t *vm = arena(TOP_BASE(16), 16, 0);
	uintptr_t a, b;

	/* the whole span, ending at UINTPTR_MAX */
	ck_assert_int_eq(vmem_alloc(vm, 16 * Q, 0, &a), 0);
	ck_assert_uint_eq(a, TOP_BASE(16));
	vmem_free(vm, a, 16 * Q);
	/* the last quantum, by maxaddr 0 and by alignment */
	ck_assert_int_eq(vmem_xalloc(vm, Q, 0, 0, 0, TOP_BASE(1), 0, VMEM_BESTFIT, &a), 0);
	ck_assert_uint_eq(a, TOP_BASE(1));
	ck_assert_int_eq(vmem_xalloc(vm, 2 * Q, 8 * Q, 6 * Q, 8 * Q, 0, 0, 0, &b), 0);
	ck_assert_uint_eq(b, TOP_BASE(10));
	vmem_xfree(vm, b, 2 * Q);
	/* no room left past the top for an aligned range: -ENOMEM, no wrap to 0 */
	ck_assert_int_eq(vmem_xalloc(vm, 2 * Q, 16 * Q, 15 * Q, 0, 0, 0, 0, &b), -ENOMEM);
	ck_assert_int_eq(vmem_xalloc(vm, 2 * Q, 0, 0, 0, TOP_BASE(1), 0, 0, &b), -ENOMEM);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 0, 0, 0, TOP_BASE(2), UINTPTR_MAX, 0, &b), 0);
	ck_assert_uint_eq(b, TOP_BASE(2));
	vmem_xfree(vm, b, Q);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 0, 0, 0, TOP_BASE(1), UINTPTR_MAX, 0, &b), -ENOMEM);
	ck_assert_int_eq(vmem_alloc(vm, SIZE_MAX - Q + 2, 0, &b), -ENOMEM);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, a, Q);
	/* next-fit wraps past the top */
	ck_assert_uint_eq(must_alloc(vm, 15 * Q, VMEM_NEXTFIT), TOP_BASE(16));
	ck_assert_uint_eq(must_alloc(vm, Q, VMEM_NEXTFIT), TOP_BASE(1));
	ck_assert_int_eq(vmem_alloc(vm, Q, VMEM_NEXTFIT, &b), -ENOMEM);
	vmem_free(vm, TOP_BASE(1), Q);
	vmem_free(vm, TOP_BASE(16), 15 * Q);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* a second span right below, and one covering address 0 */
	ck_assert_int_eq(vmem_add(vm, TOP_BASE(32), 16 * Q, 0), 0);
	ck_assert_int_eq(vmem_add(vm, 0, 16 * Q, 0), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_FREE), 48 * Q);
	vmem_destroy(vm);
}
END_TEST

/* ---- importing: three arenas stacked --------------------------------------------------- */

#define CHUNK (16 * Q)

START_TEST(test_import_three_deep)
{
	vmem_t *os = vmem_create("os", 0x40000000, 64 * CHUNK, CHUNK, NULL, NULL, NULL, 0, 0);
	vmem_t *mid, *top;
	uintptr_t a, b, c;

	ck_assert_ptr_nonnull(os);
	mid = vmem_create("mid", 0, 0, Q, vmem_alloc, vmem_free, os, 0, 0);
	ck_assert_ptr_nonnull(mid);
	top = vmem_create("top", 0, 0, Q, vmem_alloc, vmem_free, mid, 4 * Q, 0);
	ck_assert_ptr_nonnull(top);

	/* one quantum at the top imports one quantum from mid, which imports one chunk */
	ck_assert_int_eq(vmem_alloc(top, 3 * Q, 0, &a), 0);
	ck_assert_int_eq(vmem_size(top, VMEM_ALLOC | VMEM_FREE), 3 * Q);
	ck_assert_int_eq(vmem_size(mid, VMEM_ALLOC), 3 * Q);
	ck_assert_int_eq(vmem_size(mid, VMEM_ALLOC | VMEM_FREE), CHUNK);
	ck_assert_int_eq(vmem_size(os, VMEM_ALLOC), CHUNK);
	/* a big one: mid imports a span rounded up to its source's quantum */
	ck_assert_int_eq(vmem_alloc(top, 2 * CHUNK + Q, VMEM_BESTFIT, &b), 0);
	ck_assert_int_eq(vmem_size(os, VMEM_ALLOC), 4 * CHUNK);
	/* an aligned one imports enough for the alignment */
	ck_assert_int_eq(vmem_xalloc(top, Q, 8 * CHUNK, 0, 0, 0, 0, 0, &c), 0);
	ck_assert_uint_eq(c % (8 * CHUNK), 0);
	ck_assert_int_eq(vmem_check(os), 0);
	ck_assert_int_eq(vmem_check(mid), 0);
	ck_assert_int_eq(vmem_check(top), 0);

	/* a source with importers cannot be destroyed */
	vmem_destroy(mid);
	ck_assert_int_eq(vmem_check(mid), 0);

	/* freeing gives wholly free spans back, level by level */
	vmem_xfree(top, c, Q);
	vmem_free(top, b, 2 * CHUNK + Q);
	ck_assert_int_eq(vmem_size(os, VMEM_ALLOC), CHUNK);
	vmem_free(top, a, 3 * Q);			/* 3 quanta: into top's quantum cache */
	ck_assert_int_eq(vmem_size(top, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_size(top, VMEM_FREE), 3 * Q);
	ck_assert_int_eq(vmem_size(os, VMEM_ALLOC), CHUNK);
	ck_assert_int_eq(vmem_check(top), 0);
	vmem_destroy(top);				/* drains the cache, releases */
	ck_assert_int_eq(vmem_size(mid, VMEM_ALLOC | VMEM_FREE), 0);
	ck_assert_int_eq(vmem_size(os, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(mid), 0);
	ck_assert_int_eq(vmem_check(os), 0);
	vmem_destroy(mid);
	vmem_destroy(os);
}
END_TEST

START_TEST(test_import_source_exhausted)
{
	vmem_t *os = vmem_create("os", 0, 2 * CHUNK, CHUNK, NULL, NULL, NULL, 0, 0);
	vmem_t *vm = vmem_create("pfn", 0, 0, Q, vmem_alloc, vmem_free, os, 0, 0);
	uintptr_t a, b;

	ck_assert_int_eq(vmem_alloc(vm, 2 * CHUNK, 0, &a), 0);
	ck_assert_int_eq(vmem_alloc(vm, Q, 0, &b), -ENOMEM);
	/* constrained requests never import */
	vmem_free(vm, a, 2 * CHUNK);
	ck_assert_int_eq(vmem_size(os, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_xalloc(vm, Q, 0, 0, 0, 0, UINTPTR_MAX, 0, &b), -ENOMEM);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC | VMEM_FREE), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
	vmem_destroy(os);
}
END_TEST

static int fixed_imports, fixed_releases;

/* An import that always hands out the same range: the second one overlaps the first. */
static int fixed_import(vmem_t *src, size_t size, int flags, uintptr_t *addrp)
{
	(void)src, (void)size, (void)flags;
	fixed_imports++;
	*addrp = 64 * Q;
	return 0;
}

/* An import that returns a misaligned start. */
static int crooked_import(vmem_t *src, size_t size, int flags, uintptr_t *addrp)
{
	(void)src, (void)size, (void)flags;
	fixed_imports++;
	*addrp = 64 * Q + 8;
	return 0;
}

static int refusing_import(vmem_t *src, size_t size, int flags, uintptr_t *addrp)
{
	(void)src, (void)size, (void)flags, (void)addrp;
	fixed_imports++;
	return -ENOMEM;
}

static void counting_release(vmem_t *src, uintptr_t addr, size_t size)
{
	(void)src, (void)addr, (void)size;
	fixed_releases++;
}

START_TEST(test_import_misbehaving)
{
	vmem_t *src = arena(0, 4, 0);
	vmem_t *vm;
	struct capture cap;
	uintptr_t a, b;

	fixed_imports = fixed_releases = 0;
	vm = vmem_create("fixed", 0, 0, Q, fixed_import, counting_release, src, 0, 0);
	ck_assert_ptr_nonnull(vm);
	ck_assert_int_eq(vmem_alloc(vm, 2 * Q, 0, &a), 0);
	ck_assert_uint_eq(a, 64 * Q);
	capture_begin(&cap);
	ck_assert_int_eq(vmem_alloc(vm, 2 * Q, 0, &b), -ENOMEM);	/* overlapping import */
	ck_assert_ptr_nonnull(strstr(capture_end(&cap), "overlaps"));
	ck_assert_int_eq(fixed_imports, 2);
	ck_assert_int_eq(fixed_releases, 1);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC | VMEM_FREE), 2 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, a, 2 * Q);
	ck_assert_int_eq(fixed_releases, 2);
	vmem_destroy(vm);

	vm = vmem_create("crooked", 0, 0, Q, crooked_import, counting_release, src, 0, 0);
	ck_assert_int_eq(vmem_alloc(vm, Q, 0, &a), -ENOMEM);
	ck_assert_int_eq(fixed_releases, 3);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);

	vm = vmem_create("refusing", 0, 0, Q, refusing_import, counting_release, src, 0, 0);
	ck_assert_int_eq(vmem_alloc(vm, Q, VMEM_BESTFIT, &a), -ENOMEM);
	ck_assert_int_eq(fixed_imports, 4);
	ck_assert_int_eq(fixed_releases, 3);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC | VMEM_FREE), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
	vmem_destroy(src);
}
END_TEST

/* ---- the boundary-tag reserve failing (fault-injection builds) ------------------------- */

#ifdef MEMDESC_FAULT_INJECTION

START_TEST(test_tag_refill_failure)
{
	vmem_t *vm = arena(0, 4096, 0);
	size_t alloc, count = 0;
	uintptr_t a;
	int rc;

	/* every 1-quantum allocation at the head of the free segment takes one tag */
	fault_arm(FAULT_VMEM_TAG, 1, 1);
	for (;;) {
		alloc = vmem_size(vm, VMEM_ALLOC);
		rc = vmem_alloc(vm, Q, 0, &a);
		if (rc != 0)
			break;
		count++;
		ck_assert_uint_lt(count, 1000);
	}
	ck_assert_int_eq(rc, -ENOMEM);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), alloc);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* one shot: the next refill works */
	ck_assert_int_eq(vmem_alloc(vm, Q, 0, &a), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), alloc + Q);

	/* vmem_create with an initial span, vmem_add */
	fault_arm(FAULT_VMEM_TAG, 1, 1);
	errno = 0;
	ck_assert_ptr_null(vmem_create("nomem", 0, Q, Q, NULL, NULL, NULL, 0, 0));
	ck_assert_int_eq(errno, ENOMEM);
	{
		vmem_t *empty = vmem_create("empty", 0, 0, Q, NULL, NULL, NULL, 0, 0);

		ck_assert_ptr_nonnull(empty);
		fault_arm(FAULT_VMEM_TAG, 1, 1);
		ck_assert_int_eq(vmem_add(empty, 0, Q, 0), -ENOMEM);
		ck_assert_int_eq(vmem_size(empty, VMEM_FREE), 0);
		ck_assert_int_eq(vmem_check(empty), 0);
		vmem_destroy(empty);
	}
	fault_disarm_all();
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_tag_refill_failure_on_import)
{
	vmem_t *os = vmem_create("os", 0, 8 * CHUNK, CHUNK, NULL, NULL, NULL, 0, 0);
	vmem_t *vm = vmem_create("pfn", 0, 0, Q, vmem_alloc, vmem_free, os, 0, 0);
	uintptr_t a;

	/* refill 1: the reserve for the search; refill 2: the tags for the import */
	fault_arm(FAULT_VMEM_TAG, 2, 1);
	ck_assert_int_eq(vmem_alloc(vm, Q, 0, &a), -ENOMEM);
	ck_assert_int_eq(vmem_size(os, VMEM_ALLOC), 0);		/* nothing imported */
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC | VMEM_FREE), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_check(os), 0);
	ck_assert_int_eq(vmem_alloc(vm, Q, 0, &a), 0);
	vmem_free(vm, a, Q);
	ck_assert_int_eq(vmem_size(os, VMEM_ALLOC), 0);
	fault_disarm_all();
	vmem_destroy(vm);
	vmem_destroy(os);
}
END_TEST

#endif /* MEMDESC_FAULT_INJECTION */

START_TEST(test_tag_bytes)
{
	size_t before = vmem_tag_bytes();
	vmem_t *vm = arena(0, 100000, 0);
	static uintptr_t a[5000];

	ck_assert_uint_gt(before + 1, 0);
	for (int i = 0; i < 5000; i++)
		a[i] = must_alloc(vm, 2 * Q, 0);
	for (int i = 0; i < 5000; i += 2)
		vmem_free(vm, a[i], 2 * Q);
	ck_assert_uint_ge(vmem_tag_bytes(), 5000 * 40);		/* > 5000 tags exist */
	ck_assert_int_eq(vmem_check(vm), 0);
	for (int i = 1; i < 5000; i += 2)
		vmem_free(vm, a[i], 2 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

/* ---- quantum caches ------------------------------------------------------------------ */

START_TEST(test_qcache)
{
	vmem_t *vm = arena(0, 64, 4);
	uintptr_t a, b, c, big;
	struct capture cap;

	a = must_alloc(vm, Q, 0);
	b = must_alloc(vm, 4 * Q, VMEM_BESTFIT);
	vmem_free(vm, a, Q);
	vmem_free(vm, b, 4 * Q);
	/* cached ranges count as free */
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_FREE), 64 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* and come back first */
	ck_assert_uint_eq(must_alloc(vm, Q, 0), a);
	ck_assert_uint_eq(must_alloc(vm, 4 * Q, 0), b);
	vmem_free(vm, a, Q);
	/* double free of a cached range, xfree of it, wrong size: reported, no change */
	capture_begin(&cap);
	ck_assert_int_eq(vmem_free_checked(vm, a, Q), -EINVAL);
	ck_assert_ptr_nonnull(strstr(capture_end(&cap), "quantum cache"));
	vmem_xfree(vm, a, Q);
	ck_assert_int_eq(vmem_free_checked(vm, b, 3 * Q), -EINVAL);
	ck_assert_int_eq(vmem_free_checked(vm, b + Q, Q), -EINVAL);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 4 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	/* xfree of a small range bypasses the cache */
	ck_assert_int_eq(vmem_xalloc(vm, 2 * Q, 0, 0, 0, 0, 0, 0, &c), 0);
	vmem_xfree(vm, c, 2 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, b, 4 * Q);
	/* exhaustion drains the caches: the whole arena in one piece */
	ck_assert_int_eq(vmem_alloc(vm, 64 * Q, 0, &big), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_free(vm, big, 64 * Q);
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_qcache_overflow_and_drain)
{
	vmem_t *vm = arena(0, 1024, 2);
	static uintptr_t a[600];
	uintptr_t big;

	for (int i = 0; i < 600; i++)
		a[i] = must_alloc(vm, (size_t)(i % 2 + 1) * Q, 0);
	for (int i = 0; i < 600; i++)
		vmem_free(vm, a[i], (size_t)(i % 2 + 1) * Q);	/* caches fill and flush */
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	ck_assert_int_eq(vmem_alloc(vm, 1024 * Q, 0, &big), 0);
	ck_assert_int_eq(vmem_alloc(vm, Q, 0, &a[0]), -ENOMEM);
	vmem_free(vm, big, 1024 * Q);
	ck_assert_int_eq(vmem_check(vm), 0);
	vmem_destroy(vm);
}
END_TEST

/* ---- hash growth, destroy -------------------------------------------------------------- */

START_TEST(test_hash_growth)
{
	size_t n = mdt_scaled(50000);
	vmem_t *vm = arena(Q, n, 0);
	uintptr_t *a = calloc(n, sizeof(*a));

	ck_assert_ptr_nonnull(a);
	for (size_t i = 0; i < n; i++)
		a[i] = must_alloc(vm, Q, 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	for (size_t i = 0; i < n; i += 2)
		vmem_free(vm, a[i], Q);
	for (size_t i = 1; i < n; i += 2)
		ck_assert_int_eq(vmem_free_checked(vm, a[i], Q), 0);
	ck_assert_int_eq(vmem_size(vm, VMEM_ALLOC), 0);
	ck_assert_int_eq(vmem_check(vm), 0);
	free(a);
	vmem_destroy(vm);
}
END_TEST

START_TEST(test_destroy_reports_leaks)
{
	vmem_t *vm = arena(0, 8, 0);
	struct capture cap;

	must_alloc(vm, 2 * Q, 0);
	capture_begin(&cap);
	vmem_destroy(vm);
	ck_assert_ptr_nonnull(strstr(capture_end(&cap), "leaked"));
}
END_TEST

static Suite *vmem_suite(void)
{
	Suite *s = suite_create("vmem");
	TCase *tc = tcase_create("unit");

	tcase_add_test(tc, test_create_bad_arguments);
	tcase_add_test(tc, test_add_spans);
	tcase_add_test(tc, test_address_zero);
	tcase_add_test(tc, test_alloc_bad_arguments);
	tcase_add_test(tc, test_alloc_rounds_and_exhausts);
	tcase_add_test(tc, test_coalesce_both_sides);
	tcase_add_test(tc, test_bad_free_reported_nothing_changed);
	tcase_add_test(tc, test_resize_grow_and_shrink);
	tcase_add_test(tc, test_resize_not_across_spans);
	tcase_add_test(tc, test_join);
	tcase_add_test(tc, test_split);
	tcase_add_test(tc, test_alloc_next);
	tcase_add_test(tc, test_resize_bad_reported_nothing_changed);
#ifdef MEMDESC_FAULT_INJECTION
	tcase_add_test(tc, test_resize_shrink_without_tag);
#endif
	tcase_add_test(tc, test_bestfit_takes_smallest);
	tcase_add_test(tc, test_instantfit_next_power_of_two);
	tcase_add_test(tc, test_nextfit_moves_forward);
	tcase_add_test(tc, test_xalloc_bad_constraints);
	tcase_add_test(tc, test_xalloc_constraints_exact);
	tcase_add_test(tc, test_top_of_address_space);
	tcase_add_test(tc, test_import_three_deep);
	tcase_add_test(tc, test_import_source_exhausted);
	tcase_add_test(tc, test_import_misbehaving);
#ifdef MEMDESC_FAULT_INJECTION
	tcase_add_test(tc, test_tag_refill_failure);
	tcase_add_test(tc, test_tag_refill_failure_on_import);
#endif
	tcase_add_test(tc, test_tag_bytes);
	tcase_add_test(tc, test_qcache);
	tcase_add_test(tc, test_qcache_overflow_and_drain);
	tcase_add_test(tc, test_hash_growth);
	tcase_add_test(tc, test_destroy_reports_leaks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return mdt_run(vmem_suite());
}
