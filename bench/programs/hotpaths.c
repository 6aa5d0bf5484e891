/*
 * memdesc-hotpaths: the hot paths in a loop, for instruction counts under callgrind
 * (scripts/callgrind-hot), which are reproducible where times on a shared machine are
 * not.
 *
 *	memdesc-hotpaths MODE SIZE N
 *
 * MODE pair: N md_malloc(SIZE) + md_free; calloc: N md_calloc(1, SIZE) + md_free;
 * pages: N folio_alloc_pages(SIZE) + folio_put (SIZE pages); resize: N folio_resize of
 * one folio of SIZE pages to 2 * SIZE and back (a grow and a shrink in place, the
 * large-block realloc path; SIZE >= 2, a single page is never resized in place);
 * realloc: N rounds of one block grown from 1 byte by SIZE bytes a step to 1 MiB with
 * md_realloc, then freed (bench's malloc/realloc_growth loop); glibc: N malloc + free
 * of the C library, for reference. Each block's first byte is written. 1,000 warm-up rounds of the same operation come first, so that the
 * difference between two values of N divided by their difference is the cost of one
 * round in the steady state.
 */
#include "md_malloc.h"
#include "memdesc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum hp_mode { HP_PAIR, HP_CALLOC, HP_PAGES, HP_RESIZE, HP_REALLOC, HP_GLIBC };

static inline void hp_touch(char *p)
{
	if (!p)
		abort();
	p[0] = 1;
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* @n rounds of one mode: one loop per mode, so that the loop adds nothing else. */
static void hp_run(enum hp_mode mode, size_t size, long n)
{
	switch (mode) {
	case HP_PAIR:
		for (long i = 0; i < n; i++) {
			char *p = md_malloc(size);

			hp_touch(p);
			md_free(p);
		}
		break;
	case HP_CALLOC:
		for (long i = 0; i < n; i++) {
			char *p = md_calloc(1, size);

			hp_touch(p);
			md_free(p);
		}
		break;
	case HP_PAGES:
		for (long i = 0; i < n; i++) {
			struct folio *f = folio_alloc_pages(size);

			hp_touch(f ? folio_address(f) : NULL);
			folio_put(f);
		}
		break;
	case HP_RESIZE: {
		/* Static: each call keeps growing the same folio (the warm-up's, then the run's). */
		static struct folio *f;

		if (!f)
			f = folio_alloc_pages(size);
		for (long i = 0; i < n; i++) {
			if (!f || folio_resize(f, 2 * size) || folio_resize(f, size))
				abort();
			hp_touch(folio_address(f));
		}
		break;
	}
	case HP_REALLOC:
		for (long i = 0; i < n; i++) {
			char *p = md_malloc(1);

			for (size_t sz = 1; p && sz < (1u << 20);) {
				sz = sz + size < (1u << 20) ? sz + size : 1u << 20;
				p = md_realloc(p, sz);
				hp_touch(p);
				p[sz - 1] = 1;
			}
			md_free(p);
		}
		break;
	case HP_GLIBC:
		for (long i = 0; i < n; i++) {
			char *p = malloc(size);

			hp_touch(p);
			free(p);
		}
		break;
	}
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "pair", "calloc", "pages", "resize", "realloc", "glibc" };
	int mode = -1;

	for (int i = 0; argc == 4 && i < 6; i++)
		if (strcmp(argv[1], names[i]) == 0)
			mode = i;
	if (mode < 0) {
		fprintf(stderr, "usage: memdesc-hotpaths pair|calloc|pages|resize|realloc|glibc SIZE N\n");
		return 2;
	}
	hp_run((enum hp_mode)mode, strtoul(argv[2], NULL, 0), 1000);
	hp_run((enum hp_mode)mode, strtoul(argv[2], NULL, 0), atol(argv[3]));
	return 0;
}
