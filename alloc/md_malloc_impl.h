/*
 * md_malloc_impl.h: what md_malloc.c (the allocation family) and md_env.c (first
 * call, options, fork, thread exit, statistics) share. Not a public header.
 */
#ifndef MEMDESC_MD_MALLOC_IMPL_H
#define MEMDESC_MD_MALLOC_IMPL_H

/*
 * The read-side fast paths of liburcu-bp inline (_LGPL_SOURCE), except in sanitizer
 * builds: liburcu's reader registry is not laid out at the 128-byte alignment its
 * struct asks for, which UBSan would report in every inlined read lock (the same
 * choice as xarray/xarray_impl.h).
 */
#if !defined(MEMDESC_SANITIZER_BUILD) && !defined(_LGPL_SOURCE)
#define _LGPL_SOURCE
#endif

#include "md_malloc.h"
#include "md_rcu.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <urcu/urcu-bp.h>

/*
 * Options, declared once: the struct, the defaults, the parser and the verbose
 * printer are generated from this table. X(name, default, max, zero, memdesc, doc);
 * every value is an unsigned number (sizes take K/M/G/T suffixes); @zero is what
 * verbose=1 prints for 0 when 0 means something other than the number (NULL: the
 * number). @memdesc: memdesc reads the option itself (memdesc/phys.c) and reports its
 * bad values; here it is parsed only for verbose=1, so a bad value is said once.
 */
#define MD_OPTIONS(X)                                                                   \
	X(stats,   0, 1,        NULL,      0, "print statistics on stderr at exit")      \
	X(limit,   0, SIZE_MAX, "default", 1, "most bytes committed from the OS (0: "    \
					      "memdesc's default)")                      \
	X(abort,   1, 1,        NULL,      0, "abort after reporting a bad free")        \
	X(junk,    0, 1,        NULL,      0, "fill new blocks with 0xa5, freed ones with 0x5a") \
	X(verbose, 0, 1,        NULL,      0, "report option values and init failures on stderr") \
	X(guard,   0, 1,        NULL,      0, "canary after each block, checked on free and realloc") \
	X(thp,     0, 2,        NULL,      1, "huge pages for the heap: 0 as the kernel says, " \
					      "1 advised, 2 refused")

struct md_options {
#define MD_OPTION_FIELD(name, def, max, zero, memdesc, doc) size_t name;
	MD_OPTIONS(MD_OPTION_FIELD)
#undef MD_OPTION_FIELD
};

extern struct md_options md__opt;

/* ---- md_env.c ---------------------------------------------------------------- */

/* 1 while md__malloc_init() runs, then 2 (ready) or 3 (failed: every call fails with
 * ENOMEM, nothing past md__enter() may run). */
extern atomic_int md__malloc_state;
/* 0 after a successful init, else -ENOMEM (valid once md__malloc_state >= 2). */
extern int md__malloc_error;

/* Initialised, and successfully (state 2 is set only when md__malloc_error is 0). */
static inline bool md__malloc_ready(void)
{
	return atomic_load_explicit(&md__malloc_state, memory_order_acquire) == 2;
}
/* A fork is being prepared: new calls wait for it (md__enter_slow). */
extern atomic_int md__fork_pending;

struct md_thread {
	unsigned int depth;	/* nesting of md_ calls on this thread */
	bool registered;	/* the thread-exit key is set */
};
extern __thread struct md_thread md__thread __attribute__((tls_model("initial-exec")));

int md__malloc_init(void);
void md__enter_slow(void);
void md__malloc_thread_register(void);

/*
 * Every entry point runs between md__enter() and md__leave(): an RCU read-side
 * section (a few instructions, liburcu-bp) that fork preparation waits out, so that no
 * thread is inside the allocator, and so holds none of its locks, when fork() copies
 * the process (md_env.c section 3). Returns 0, or -ENOMEM if the allocator could not
 * be initialised (the section is then not entered).
 */
static inline int md__enter(void)
{
	/*
	 * md__thread is named, not reached through a pointer: gcc 12's UBSan null check
	 * of a pointer to a TLS variable can test stale flags once md_realloc_fast() is
	 * inlined before it, and then reports a null pointer that is not there.
	 */
	if (__builtin_expect(atomic_load_explicit(&md__malloc_state, memory_order_acquire) != 2,
			     0)) {
		int rc = md__malloc_init();

		if (rc)
			return rc;
	}
	urcu_bp_read_lock();
	if (__builtin_expect(md__thread.depth == 0 &&
			     atomic_load_explicit(&md__fork_pending, memory_order_relaxed), 0))
		md__enter_slow();
	md__thread.depth++;
	if (__builtin_expect(!md__thread.registered, 0))
		md__malloc_thread_register();
	return 0;
}

/* The section's end alone: the depth left. */
static inline unsigned int md__leave_section(void)
{
	unsigned int depth = --md__thread.depth;

	urcu_bp_read_unlock();
	return depth;
}

static inline void md__leave(void)
{
	/* Outermost: no lock of ours is held, deferred frees may get their worker. */
	if (md__leave_section() == 0)
		md_rcu_kick();
}

/* ---- md_malloc.c ------------------------------------------------------------- */

/* Size classes: 16..128 in steps of 16, then 8 per doubling up to MD_SMALL_MAX. */
#define MD_NR_CLASSES 72
extern struct kmem_cache *md__class_cache[MD_NR_CLASSES];
extern const uint32_t md__class_size[MD_NR_CLASSES];
/* Bytes of freed large blocks kept for reuse. */
size_t md__large_cached_bytes(void);
/* A pending reclaim runs now, in the parent, not in the next fork's child. */
void md__reclaim_before_fork(void);
/* Create the class caches and the double-free key. 0 / -ENOMEM. */
int md__classes_init(void);

/* ---- write(2)-based formatting (no stdio, no malloc) ---------------------------- */

struct md_buf {
	char b[512];
	size_t n;
};
void md__buf_str(struct md_buf *b, const char *s);
void md__buf_u(struct md_buf *b, uint64_t v);
void md__buf_x(struct md_buf *b, uint64_t v);
/* v as "12.3 MiB"-style human size, then " (v)" in bytes. */
void md__buf_size(struct md_buf *b, uint64_t v);
void md__buf_pad(struct md_buf *b, size_t col);
void md__buf_flush(struct md_buf *b, int fd);

#endif /* MEMDESC_MD_MALLOC_IMPL_H */
