/*
 * phys.c: page frames from the operating system.
 *
 * 1. Frames
 *    At initialisation we reserve one large range of address space, PROT_NONE and
 *    MAP_NORESERVE (it costs neither memory nor commit charge), aligned to a chunk
 *    (2 MiB). Page frame n is the 4 KiB at base + n * 4096: virt_to_pfn() and
 *    pfn_to_virt() are one subtraction and one shift, and pfns are dense from 0 so the
 *    page map (an XArray indexed by pfn) stays as shallow as the memory in use allows.
 *    The reservation is twice the limit (address space is cheap; the slack absorbs
 *    fragmentation of the chunk space so that the limit, not the layout, says ENOMEM).
 *
 * 2. Arenas
 *    Two vmem arenas count in pfns:
 *    - os_arena: the reservation, quantum one chunk (512 pages). No source. An
 *      allocation from it is address space only.
 *    - page_arena: quantum one page, imports from os_arena through md_import(), which
 *      takes whole chunks from os_arena and commits them (mprotect read-write), and
 *      releases through md_release(), which decommits (a fresh PROT_NONE MAP_NORESERVE
 *      mapping over the range drops its pages and its commit charge) and gives the
 *      chunks back. vmem releases an imported span when it is wholly free, so a fully
 *      free chunk goes back to the OS and the resident size follows memory in use.
 *      md__arena_alloc_low() serves the allocator's own slabs from the committed spans'
 *      lowest window with room (pages.c, section 3): constrained allocations, which
 *      vmem never imports for.
 *    Huge pages (MEMDESC_OPTIONS thp=, read here like the limit): by default a
 *    committed chunk gets no advice, and the kernel's setting decides. Chunks are
 *    2 MiB-aligned, so under transparent huge pages "always" every chunk touched at all
 *    is resident whole: pywork, cc1 and memdesc-mtwork peaked 9%, 10% and 25% above
 *    glibc's (whose heap gets huge pages there too), against 3% and 3% above and 23%
 *    below under "madvise". thp=2 advises MADV_NOHUGEPAGE on every chunk it commits:
 *    4 KiB pages whatever the setting. thp=1 advises MADV_HUGEPAGE: one fault per
 *    2 MiB and fewer TLB misses, for resident memory that follows the chunks touched,
 *    not the pages written (sort, one 2 GB buffer of which it writes 90 MB: 23,300 ->
 *    170 page faults, 0.99 -> 0.63x glibc's time; memdesc-mtwork: 15,700 -> 300 faults,
 *    0.43 -> 0.41x glibc's time, peak 0.77 -> 1.27x glibc's; README, "Huge pages").
 *    Not the default: a large block written in part, a slab's untouched end and a
 *    purged range touched again all count whole. Collapsing chunks found dense later
 *    (MADV_COLLAPSE when mincore() saw 400 or 480 of their 512 pages resident) made
 *    memdesc-mtwork slower (0.40-0.51 s against 0.36-0.40 s, 4 runs): each collapse
 *    copies 2 MiB, and the next purge in the chunk splits the page again.
 *    The advice belongs to the mapping, so md_import() gives it at every commit (a
 *    decommit maps the range afresh); a kernel without transparent huge pages refuses
 *    it, said once on stderr, and the chunk works as any other.
 *
 * 3. The limit
 *    Read once at initialisation, without allocating: MEMDESC_OPTIONS="limit=8G"
 *    (comma-separated key=value pairs, the last of a key counting; other keys belong to
 *    other modules) or MEMDESC_LIMIT=8G; suffixes K, M, G, T; at least 8 MiB. The
 *    default is 64 GiB, or half the address-space limit (RLIMIT_AS, `ulimit -v`) when
 *    that is lower: the reservation counts against it, and the program's own mappings
 *    need the rest. The committed bytes never exceed the limit: md_import() refuses
 *    (ENOMEM) beyond it. When not even the limit can be reserved (an address-space
 *    limit, valgrind, a crowded address space), the reservation shrinks until it fits
 *    and the limit shrinks with it, said on stderr when the limit was asked for: a
 *    program under `ulimit -v` gets a smaller heap, not a malloc that fails from its
 *    first call.
 *
 * 4. Failure
 *    Every OS call can fail: md_import() then returns -ENOMEM and nothing changed. Its
 *    commit is the fault-injection point FAULT_OS_MAP (fault/fault.h).
 *
 * 5. The bitmap table
 *    Beside the frames, a second reservation holds one 64-bit word per MD_BITMAP_PAGES
 *    (4) frames, indexed by pfn / 4 (md__bitmap_words): the slab layer keeps there the
 *    allocation bitmap of a slab with at most 64 objects per 4 of its pages (slab.c,
 *    section 1), so that free()'s check of the bit reads a line shared by the bitmaps
 *    of 8 to 32 slabs (one page of the table serves 8 MiB of frames) instead of a line
 *    on a page of the slab that the program may not touch. 2 bytes per frame of
 *    address space, PROT_NONE until md_import() commits the frames it describes: it
 *    makes the table's pages for them read-write (once: a flag per table page, in a
 *    small area committed at initialisation). They are never decommitted, at most
 *    1/2048 of the peak of committed frames; bytes_mapped does not count them, the
 *    statistics do (meta_bitmaps).
 *
 * 6. Moving frames
 *    md__frames_move() gives the contents of frames to other frames without copying:
 *    mremap(2) with MREMAP_FIXED moves the page-table entries to the destination, and
 *    MREMAP_DONTUNMAP leaves the source mapped, its pages gone (they read as zero), so
 *    the reservation never has a hole. A copy faults in every destination page and
 *    reads every source page; a move costs one call and no fault. realloc moves a
 *    large block that cannot grow in place this way (md_malloc.c): a buffer grown by
 *    25% at a time from 4 KiB to 256 MiB took 3.9 s and 315,000 page faults by copies,
 *    0.65 s and 58,900 by moves, as glibc (which moves its mmap'ed chunks with mremap).
 *    The moved pages keep their mapping's page offset, which is not the destination's,
 *    so the kernel cannot merge them with the mapping around them: every move splits a
 *    mapping in three, two more VMAs, which stay until the range is decommitted. A
 *    process makes at most MD_MOVES_MAX moves (then copies), so that a program
 *    reallocating large blocks for ever cannot take it to vm.max_map_count, or fork
 *    ever more slowly. A kernel without MREMAP_DONTUNMAP (before 5.7; or one that
 *    refuses it for the mapping) answers EINVAL once, and moves are off from then on.
 *
 * Locking: vmem's arena locks only; the counters are atomics. md_import() and
 * md_release() are called by vmem with the page arena's lock dropped.
 */
#include "memdesc_impl.h"
#include "fault.h"
#include "vmem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

struct md_phys md_phys;

/* ---- options ------------------------------------------------------------------ */

/* Parse "8G"-style sizes; 0 on a malformed value. */
static size_t md_parse_size(const char *s, size_t len)
{
	size_t v = 0, i = 0;
	unsigned shift = 0;

	if (len == 0)
		return 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (SIZE_MAX - 9) / 10)
			return 0;
		v = v * 10 + (size_t)(s[i] - '0');
	}
	if (i == 0)
		return 0;
	if (i < len) {
		switch (s[i]) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		case 't': case 'T': shift = 40; break;
		default: return 0;
		}
		i++;
		if (i < len && (s[i] == 'b' || s[i] == 'B' || s[i] == 'i'))
			i++;
		if (i < len && (s[i] == 'b' || s[i] == 'B'))
			i++;
	}
	if (i != len || (shift && v > (SIZE_MAX >> shift)))
		return 0;
	return v << shift;
}

/* MD_DEFAULT_LIMIT, or half the address-space rlimit when that is lower (section 3). */
static size_t md_default_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 2 < MD_DEFAULT_LIMIT)
		return (size_t)(rl.rlim_cur / 2);
	return MD_DEFAULT_LIMIT;
}

/*
 * The value of @key (with its '=') in MEMDESC_OPTIONS, the last one given, and its
 * length in *@lenp; NULL when the key is not there. getenv() and plain scanning only.
 */
static const char *md_option_value(const char *key, size_t *lenp)
{
	const char *p = getenv("MEMDESC_OPTIONS"), *found = NULL;
	size_t klen = strlen(key);

	while (p && *p) {
		const char *end = p;

		while (*end && *end != ',')
			end++;
		if ((size_t)(end - p) >= klen && memcmp(p, key, klen) == 0) {
			found = p + klen;
			*lenp = (size_t)(end - found);
		}
		p = *end ? end + 1 : end;
	}
	return found;
}

/*
 * The limit from the environment, or the default (no allocation). *@asked: the
 * environment set it.
 */
static size_t md_read_limit(bool *asked)
{
	const char *lim = getenv("MEMDESC_LIMIT");
	size_t limit = 0, len;
	const char *v = md_option_value("limit=", &len);

	if (v) {
		limit = md_parse_size(v, len);
		if (!limit)
			md__report("MEMDESC_OPTIONS: bad limit '%.*s', ignored", (int)len, v);
	}
	if (!limit && lim && *lim) {
		limit = md_parse_size(lim, strlen(lim));
		if (!limit)
			md__report("MEMDESC_LIMIT: bad value '%s', ignored", lim);
	}
	*asked = limit != 0;
	if (!limit)
		limit = md_default_limit();
	if (limit < MD_MIN_LIMIT)
		limit = MD_MIN_LIMIT;
	return (limit + (MD_CHUNK_PAGES << MD_PAGE_SHIFT) - 1) &
	       ~((MD_CHUNK_PAGES << MD_PAGE_SHIFT) - 1);
}

/* thp= of MEMDESC_OPTIONS (section 2): MD_THP_*, MD_THP_KERNEL when absent or bad. */
static unsigned int md_read_thp(void)
{
	size_t len;
	const char *v = md_option_value("thp=", &len);

	if (!v)
		return MD_THP_KERNEL;
	if (len == 1 && v[0] >= '0' && (unsigned int)(v[0] - '0') <= MD_THP_NEVER)
		return (unsigned int)(v[0] - '0');
	md__report("MEMDESC_OPTIONS: bad thp '%.*s' (0, 1 or 2), ignored", (int)len, v);
	return MD_THP_KERNEL;
}

/* ---- pfn <-> address ---------------------------------------------------------- */

unsigned long virt_to_pfn(const void *addr)
{
	return (unsigned long)(((uintptr_t)addr - md_phys.base) >> MD_PAGE_SHIFT);
}

void *pfn_to_virt(unsigned long pfn)
{
	return (void *)(md_phys.base + ((uintptr_t)pfn << MD_PAGE_SHIFT));
}

int pfn_valid(unsigned long pfn)
{
	return pfn < md_phys.nr_pfns;
}

/* ---- the OS ------------------------------------------------------------------- */

static size_t md_chunk_round(size_t npages)
{
	return (npages + MD_CHUNK_PAGES - 1) & ~(MD_CHUNK_PAGES - 1);
}

/* Byte offset in the bitmap table of the word of @pfn. */
static size_t md_bitmap_off(unsigned long pfn)
{
	return (pfn / MD_BITMAP_PAGES) * sizeof(uint64_t);
}

static bool md_bitmap_page_committed(size_t pg)
{
	return atomic_load_explicit(&md_phys.bitmap_flags[pg / 64], memory_order_acquire) &
	       (1UL << (pg % 64));
}

bool md__frames_ever_committed(unsigned long pfn)
{
	return md_bitmap_page_committed(md_bitmap_off(pfn) >> MD_PAGE_SHIFT);
}

static void md_bitmap_page_mark(size_t pg)
{
	unsigned long bit = 1UL << (pg % 64);

	if (!(atomic_fetch_or_explicit(&md_phys.bitmap_flags[pg / 64], bit,
				       memory_order_acq_rel) & bit))
		atomic_fetch_add_explicit(&md_phys.bitmap_pages, 1, memory_order_relaxed);
}

/*
 * Make the pages of the bitmap table that describe frames [pfn, pfn + npages)
 * read-write (section 5), one mprotect per run of pages not committed yet: a table
 * page serves 8 MiB of frames, and sort(1)'s 1.9 GiB buffer took 242 calls one page
 * at a time. Concurrent imports may both commit a shared page: mprotect is idempotent,
 * and the flag counts it once. 0 / -ENOMEM.
 */
static int md_bitmap_commit(unsigned long pfn, size_t npages)
{
	size_t pg = md_bitmap_off(pfn) >> MD_PAGE_SHIFT;
	size_t end = ((md_bitmap_off(pfn + npages) - 1) >> MD_PAGE_SHIFT) + 1;

	while (pg < end) {
		size_t run = pg;

		if (md_bitmap_page_committed(pg)) {
			pg++;
			continue;
		}
		while (run < end && !md_bitmap_page_committed(run))
			run++;
		if (mprotect((char *)md_phys.bitmaps + (pg << MD_PAGE_SHIFT),
			     (run - pg) << MD_PAGE_SHIFT, PROT_READ | PROT_WRITE) != 0)
			return -ENOMEM;
		for (; pg < run; pg++)
			md_bitmap_page_mark(pg);
	}
	return 0;
}

/*
 * The huge-page advice of thp= (section 2) for frames just committed. A refusal (a
 * kernel without transparent huge pages) is said once; the frames work as they are.
 */
static void md_thp_advise(unsigned long pfn, size_t npages)
{
	static atomic_bool refused;
	int advice = md_phys.thp == MD_THP_ALWAYS ? MADV_HUGEPAGE : MADV_NOHUGEPAGE;

	if (md_phys.thp == MD_THP_KERNEL ||
	    madvise(pfn_to_virt(pfn), npages << MD_PAGE_SHIFT, advice) == 0)
		return;
	if (!atomic_exchange_explicit(&refused, true, memory_order_relaxed))
		md__report("thp=%u: the kernel refused the advice (errno %d); the heap "
			   "stays in the pages the kernel chooses", md_phys.thp, errno);
}

/*
 * Import for page_arena: whole chunks of the reservation, committed. Called by vmem
 * with no lock of page_arena held.
 */
static int md_import(vmem_t *src, size_t size, int flags, uintptr_t *addrp)
{
	size_t npages = md_chunk_round(size), bytes = npages << MD_PAGE_SHIFT;
	size_t old = atomic_fetch_add(&md_phys.committed, bytes);
	uintptr_t pfn;
	int rc;

	(void)flags;
	if (old + bytes > md_phys.limit || old + bytes < old) {
		atomic_fetch_sub(&md_phys.committed, bytes);
		atomic_fetch_add(&md_phys.map_failures, 1);
		return -ENOMEM;
	}
	rc = vmem_xalloc(src, npages, MD_CHUNK_PAGES, 0, 0, 0, 0, VMEM_INSTANTFIT, &pfn);
	if (rc) {
		atomic_fetch_sub(&md_phys.committed, bytes);
		atomic_fetch_add(&md_phys.map_failures, 1);
		return -ENOMEM;
	}
	if (FAULT_HIT(FAULT_OS_MAP) || md_bitmap_commit(pfn, npages) != 0 ||
	    mprotect(pfn_to_virt(pfn), bytes, PROT_READ | PROT_WRITE) != 0) {
		vmem_xfree(src, pfn, npages);
		atomic_fetch_sub(&md_phys.committed, bytes);
		atomic_fetch_add(&md_phys.map_failures, 1);
		return -ENOMEM;
	}
	md_thp_advise(pfn, npages);
	atomic_fetch_add(&md_phys.chunk_maps, npages / MD_CHUNK_PAGES);
	*addrp = pfn;
	return 0;
}

/* Decommit [pfn, pfn + npages): drop the pages and the commit charge, keep the reservation. */
static void md_decommit(unsigned long pfn, size_t npages)
{
	void *addr = pfn_to_virt(pfn);
	size_t bytes = npages << MD_PAGE_SHIFT;

	if (mmap(addr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		 -1, 0) == MAP_FAILED) {
		/* Out of mappings: at least drop the contents and the access. */
		madvise(addr, bytes, MADV_DONTNEED);
		mprotect(addr, bytes, PROT_NONE);
	}
}

static void md_release(vmem_t *src, uintptr_t pfn, size_t size)
{
	size_t npages = md_chunk_round(size);

	md_decommit(pfn, npages);
	/* The page map keeps empty nodes while their chunk is committed (pages.c, 9). */
	pages__prune(pfn, npages);
	vmem_xfree(src, pfn, npages);
	atomic_fetch_add(&md_phys.chunk_unmaps, npages / MD_CHUNK_PAGES);
	atomic_fetch_sub(&md_phys.committed, npages << MD_PAGE_SHIFT);
}

/*
 * Reserve the bitmap table for md_phys.nr_pfns frames and commit its flags (section
 * 5): [words | flags], PROT_NONE but the flags. 0 / -ENOMEM.
 */
static int md_bitmap_init(void)
{
	size_t words = md_bitmap_off(md_phys.nr_pfns);
	size_t wbytes = (words + MD_PAGE_SIZE - 1) & ~(MD_PAGE_SIZE - 1);
	size_t npg = wbytes >> MD_PAGE_SHIFT;
	size_t fbytes = ((npg + 63) / 64) * sizeof(atomic_ulong);
	char *p;

	fbytes = (fbytes + MD_PAGE_SIZE - 1) & ~(MD_PAGE_SIZE - 1);
	p = mmap(NULL, wbytes + fbytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	if (mprotect(p + wbytes, fbytes, PROT_READ | PROT_WRITE) != 0) {
		munmap(p, wbytes + fbytes);
		return -ENOMEM;
	}
	md_phys.bitmaps = (uint64_t *)p;
	md_phys.bitmap_flags = (atomic_ulong *)(p + wbytes);
	return 0;
}

/*
 * Map @reserve bytes of address space PROT_NONE, chunk-aligned, into md_phys.base. The
 * descriptors live there, so it must end below a memdesc word's tag (memdesc.h).
 */
static bool md_reserve(size_t reserve)
{
	size_t chunk_bytes = MD_CHUNK_PAGES << MD_PAGE_SHIFT;
	uintptr_t base;
	void *p;

	p = mmap(NULL, reserve + chunk_bytes, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return false;
	base = ((uintptr_t)p + chunk_bytes - 1) & ~(uintptr_t)(chunk_bytes - 1);
	if (base + reserve > ((uintptr_t)1 << MEMDESC_TAG_SHIFT)) {
		munmap(p, reserve + chunk_bytes);
		return false;
	}
	md_phys.base = base;
	return true;
}

/*
 * Reserve twice @limit if the OS lets us, else less, a quarter at a time, down to the
 * smallest limit (section 3). The reserved bytes (a whole number of chunks), 0 if
 * nothing could be.
 */
static size_t md_reserve_for(size_t limit)
{
	size_t chunk_bytes = MD_CHUNK_PAGES << MD_PAGE_SHIFT;
	size_t reserve = limit * 2;

	for (; reserve >= MD_MIN_LIMIT; reserve -= reserve / 4) {
		reserve &= ~(chunk_bytes - 1);
		if (md_reserve(reserve))
			return reserve;
	}
	return 0;
}

int md__phys_init(void)
{
	bool asked;
	size_t limit = md_read_limit(&asked);
	size_t reserve = md_reserve_for(limit);

	if (!reserve)
		return -ENOMEM;
	if (reserve < limit) {
		if (asked)
			md__report("limit %zu MiB: only %zu MiB of address space could be "
				   "reserved; the limit is %zu MiB", limit >> 20, reserve >> 20,
				   reserve >> 20);
		limit = reserve;
	}
	md_phys.nr_pfns = (unsigned long)(reserve >> MD_PAGE_SHIFT);
	md_phys.limit = limit;
	md_phys.thp = md_read_thp();
	if (md_bitmap_init())
		return -ENOMEM;
	md_phys.os_arena = vmem_create("memdesc-os", 0, md_phys.nr_pfns, MD_CHUNK_PAGES, NULL,
				       NULL, NULL, 0, 0);
	if (!md_phys.os_arena)
		return -ENOMEM;
	md_phys.page_arena = vmem_create("memdesc-pages", 0, 0, 1, md_import, md_release,
					 md_phys.os_arena, 0, 0);
	if (!md_phys.page_arena)
		return -ENOMEM;
	return 0;
}

/* ---- frames for the page allocator ------------------------------------------- */

/* Frames of page_arena below pfn @below (0: anywhere; then it may import). 0 / -ENOMEM. */
static int md_arena_get(size_t npages, size_t align, unsigned long below, unsigned long *pfnp)
{
	uintptr_t pfn;
	int rc;

	if (align <= 1 && !below)
		rc = vmem_alloc(md_phys.page_arena, npages, VMEM_INSTANTFIT, &pfn);
	else
		rc = vmem_xalloc(md_phys.page_arena, npages, align > 1 ? align : 0, 0, 0, 0,
				 below, VMEM_INSTANTFIT, &pfn);
	if (rc)
		return -ENOMEM;
	atomic_fetch_add(&md_phys.arena_pages, npages);
	*pfnp = pfn;
	return 0;
}

int md__arena_alloc(size_t npages, size_t align, unsigned long *pfnp)
{
	return md_arena_get(npages, align, 0, pfnp);
}

/*
 * The lowest windows first: [0, 16 MiB), then 4 times larger each time, up to the
 * reservation. A constrained vmem allocation never imports, so each try looks only at
 * committed spans; instant-fit takes the lowest fitting range of the segment it picks.
 */
int md__arena_alloc_low(size_t npages, size_t align, unsigned long *pfnp)
{
	for (unsigned long lim = 4096; ; lim <<= 2) {
		if (lim > md_phys.nr_pfns)
			lim = md_phys.nr_pfns;
		if (md_arena_get(npages, align, lim, pfnp) == 0)
			return 0;
		if (lim == md_phys.nr_pfns)
			return -ENOMEM;
	}
}

int md__arena_take(unsigned long pfn, size_t npages)
{
	uintptr_t got;

	/* An exact window: vmem does not import for a constrained allocation. */
	if (vmem_xalloc(md_phys.page_arena, npages, 0, 0, 0, pfn, pfn + npages, VMEM_INSTANTFIT,
			&got))
		return -ENOMEM;
	if (got != pfn)
		md__panic("md__arena_take: asked for pfn %lu, vmem gave %lu", pfn,
			  (unsigned long)got);
	atomic_fetch_add(&md_phys.arena_pages, npages);
	return 0;
}

void md__arena_free(unsigned long pfn, size_t npages)
{
	if (vmem_free_checked(md_phys.page_arena, pfn, npages) != 0)
		md__panic("md__arena_free: page arena refused pfn %lu npages %zu", pfn, npages);
	atomic_fetch_sub(&md_phys.arena_pages, npages);
}

int md__arena_take_next(unsigned long pfn, size_t npages, size_t more)
{
	int rc = vmem_alloc_next(md_phys.page_arena, pfn, npages, more);

	if (rc == -EINVAL)
		md__panic("md__arena_take_next: page arena refused pfn %lu npages %zu + %zu", pfn,
			  npages, more);
	if (rc)
		return -ENOMEM;
	atomic_fetch_add(&md_phys.arena_pages, more);
	return 0;
}

int md__arena_join(unsigned long pfn, size_t npages, size_t next_npages)
{
	return vmem_join(md_phys.page_arena, pfn, npages, next_npages) ? -ENOMEM : 0;
}

bool md__arena_joinable(unsigned long pfn, size_t npages, size_t next_npages)
{
	return vmem_joinable(md_phys.page_arena, pfn, npages, next_npages) == 0;
}

int md__arena_split(unsigned long pfn, size_t npages, size_t at)
{
	return vmem_split(md_phys.page_arena, pfn, npages, at) ? -ENOMEM : 0;
}

/* Moves made (section 6); MD_MOVES_MAX once the kernel refused the flags. */
#define MD_MOVES_MAX 1024
static atomic_size_t md_moves_made;

int md__frames_move(unsigned long from, unsigned long to, size_t npages)
{
	void *src = pfn_to_virt(from), *dst = pfn_to_virt(to);
	size_t bytes = npages << MD_PAGE_SHIFT;
	size_t made = atomic_fetch_add(&md_moves_made, 1);

	if (made >= MD_MOVES_MAX) {
		atomic_fetch_sub(&md_moves_made, 1);
		return -ENOMEM;
	}
	/* An injected failure is the kernel's worst: the destination unmapped, then ENOMEM. */
	if (FAULT_HIT(FAULT_OS_MOVE)) {
		munmap(dst, bytes);
		errno = ENOMEM;
	} else if (mremap(src, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP,
			  dst) == dst) {
		atomic_fetch_add(&md_phys.moves, 1);
		atomic_fetch_add(&md_phys.pages_moved, npages);
		return 0;
	}
	if (errno == EINVAL)
		atomic_store(&md_moves_made, MD_MOVES_MAX);	/* not this kernel: copy */
	else
		atomic_fetch_sub(&md_moves_made, 1);
	/*
	 * The kernel unmaps the destination before it moves, and may fail after (out of
	 * memory for a VMA): map it again, read-write and empty, as a committed frame is.
	 */
	if (mmap(dst, bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == dst)
		return -ENOMEM;
	return -EFAULT;
}

void md__purge_range(unsigned long pfn, size_t npages)
{
	madvise(pfn_to_virt(pfn), npages << MD_PAGE_SHIFT, MADV_DONTNEED);
	atomic_fetch_add(&md_phys.purges, 1);
	atomic_fetch_add(&md_phys.pages_purged, npages);
}

#ifdef MEMDESC_FAULT_INJECTION
void md__test_arena_tags_empty(void)
{
	vmem__test_reserve_empty(md_phys.page_arena);
}
#endif
