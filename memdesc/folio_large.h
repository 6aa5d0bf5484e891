/*
 * folio_large.h: folio allocations the malloc layer needs beyond memdesc.h: a run of
 * any number of pages at a chosen power-of-two alignment (aligned_alloc,
 * posix_memalign and memalign above a page).
 */
#ifndef MEMDESC_FOLIO_LARGE_H
#define MEMDESC_FOLIO_LARGE_H

#include "memdesc.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * folio_alloc_aligned() - a folio of @npages pages (any number > 0) whose first pfn
 * is a multiple of @align_pages (a power of two), refcount 1. Freed with folio_put().
 *
 * Context: the page allocator's (takes the page arena's lock; may map memory from
 * the OS and allocate page-map nodes).
 * Return: the folio, or NULL with errno EINVAL (bad argument) or ENOMEM.
 */
struct folio *folio_alloc_aligned(size_t npages, size_t align_pages);

#ifdef __cplusplus
}
#endif

#endif /* MEMDESC_FOLIO_LARGE_H */
