/*
 * md_override.c: the standard names of the malloc family, for libmemdesc-malloc.so
 * (LD_PRELOAD, or linked first). Each one is the md_ function under the C library's
 * name and nothing else; C++ operator new and delete reach us through malloc and free
 * (libstdc++'s operators call them). Built only into the override library.
 */
#include "md_malloc.h"

#include <stddef.h>

#define MD_ALIAS(name, target) \
	__typeof__(target) name __attribute__((alias(#target), copy(target), used))

/* The aliases must sit in the translation unit that defines their targets. */
#include "md_malloc.c"

MD_ALIAS(malloc, md_malloc) __attribute__((visibility("default")));
MD_ALIAS(free, md_free) __attribute__((visibility("default")));
MD_ALIAS(cfree, md_free) __attribute__((visibility("default")));
MD_ALIAS(calloc, md_calloc) __attribute__((visibility("default")));
MD_ALIAS(realloc, md_realloc) __attribute__((visibility("default")));
MD_ALIAS(reallocarray, md_reallocarray) __attribute__((visibility("default")));
MD_ALIAS(aligned_alloc, md_aligned_alloc) __attribute__((visibility("default")));
MD_ALIAS(posix_memalign, md_posix_memalign) __attribute__((visibility("default")));
MD_ALIAS(memalign, md_memalign) __attribute__((visibility("default")));
MD_ALIAS(valloc, md_valloc) __attribute__((visibility("default")));
MD_ALIAS(pvalloc, md_pvalloc) __attribute__((visibility("default")));
MD_ALIAS(malloc_usable_size, md_malloc_usable_size) __attribute__((visibility("default")));
MD_ALIAS(free_sized, md_free_sized) __attribute__((visibility("default")));
MD_ALIAS(free_aligned_sized, md_free_aligned_sized) __attribute__((visibility("default")));
MD_ALIAS(malloc_trim, md_malloc_trim) __attribute__((visibility("default")));
