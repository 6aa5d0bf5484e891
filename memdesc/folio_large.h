/*
 * folio_large.h: the folio allocations the malloc layer uses for large and aligned
 * requests. folio_alloc_pages() and folio_alloc_aligned() are declared, documented and
 * implemented with the other folio functions (memdesc.h, folio.c); this header is the
 * name the malloc layer includes for them.
 */
#ifndef MEMDESC_FOLIO_LARGE_H
#define MEMDESC_FOLIO_LARGE_H

#include "memdesc.h"

#endif /* MEMDESC_FOLIO_LARGE_H */
