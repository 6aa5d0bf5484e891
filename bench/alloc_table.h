/*
 * alloc_table: every allocator the malloc benchmarks compare, behind one table of
 * function pointers, in one process.
 *
 *	memdesc   the md_ API (alloc/md_malloc.h), linked statically (memdesc_malloc)
 *	glibc     __libc_malloc and friends: glibc's allocator whatever malloc resolves to
 *	jemalloc  its non-standard API (mallocx, dallocx, sdallocx, rallocx, mallctl)
 *	mimalloc  the mi_ API
 *
 * A benchmark body takes the allocator's index as its first argument (arg name "alloc")
 * and labels its result with the allocator's name, so that the report script puts the
 * rows of one benchmark side by side whatever the index order.
 *
 * jemalloc and mimalloc are shared libraries linked into the benchmark programs only,
 * after libc (bench/CMakeLists.txt puts libc.so.6, and libstdc++.so.6 for the C++
 * program, first among the DT_NEEDED entries: both peers export operator new too),
 * so that their exported malloc/free never interpose on the program's own: the C++ shim,
 * Google Benchmark and libstdc++ keep glibc's malloc. Loading them with dlopen instead
 * does not work for jemalloc (Debian's libjemalloc.so.2 uses initial-exec TLS: "cannot
 * allocate memory in static TLS block"). mdb_alloc_check() verifies at start that the
 * program's malloc is glibc's and refuses to run otherwise.
 */
#ifndef MDB_ALLOC_TABLE_H
#define MDB_ALLOC_TABLE_H

#include <stdbool.h>
#include <stddef.h>

struct mdb_alloc {
	const char *name;
	void *(*malloc)(size_t size);
	void (*free)(void *p);
	/* Free with the size the block was asked with (each allocator's sized free). */
	void (*free_sized)(void *p, size_t size);
	void *(*calloc)(size_t n, size_t size);
	void *(*realloc)(void *p, size_t size);
	void *(*aligned_alloc)(size_t align, size_t size);
	/* Give cached free memory back to the OS now (malloc_trim and its equivalents). */
	void (*trim)(void);
};

enum { MDB_MEMDESC, MDB_GLIBC, MDB_JEMALLOC, MDB_MIMALLOC, MDB_NR_ALLOCS };

extern const struct mdb_alloc mdb_allocs[MDB_NR_ALLOCS];

/* The allocator for index @i, or NULL when @i is out of range. */
const struct mdb_alloc *mdb_alloc_get(long i);

/* The index of the allocator called @name, or -1. */
int mdb_alloc_find(const char *name);

/*
 * mdb_alloc_check() - whether the program's malloc and free are glibc's and its C++
 * operator new and delete libstdc++'s (no peer interposes).
 * Prints what it found on stderr when it is not. Cached after the first call.
 */
bool mdb_alloc_check(void);

/* Resident bytes of this process (/proc/self/statm), or 0 if it cannot be read. */
size_t mdb_resident_bytes(void);

#endif /* MDB_ALLOC_TABLE_H */
