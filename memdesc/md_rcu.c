/*
 * md_rcu.c: deferred frees after an RCU grace period, for the slab layer, the page map
 * and the malloc layer, with a worker thread that exists only while there is work
 * (and only in a process that has threads: one of a single thread runs them itself).
 *
 * 1. Why not liburcu's call_rcu
 *    liburcu-bp stays for the read side and for urcu_bp_synchronize_rcu(); its call_rcu
 *    does not suit a malloc that every program of a system may preload:
 *    - its worker is a thread that never ends, so a program whose last thread calls
 *      pthread_exit would never end (glibc ends a process when its last thread ends);
 *    - it is paused for fork() by setting a flag and polling in 1 ms steps until the
 *      worker, which sleeps poll(10 ms) after each wake-up, acknowledges: about 10 ms
 *      in the prepare handler and as much again in the parent, for every fork (shells,
 *      make and subprocess fork all the time);
 *    - it mallocs and starts its thread on first use, so the malloc started it at
 *      process start, in every process, used or not.
 *    Here: one queue, one worker started when callbacks wait for one, which blocks on
 *    a condition variable (no polling) and ends when there is nothing left to do; fork
 *    needs no handshake with it (section 4).
 *
 * 2. The queue
 *    Callbacks are liburcu's struct rcu_head (a link and a function), so an object
 *    embeds one head whichever mechanism frees it (the XArray's default is still
 *    liburcu's call_rcu); the head's link field is our link. One FIFO list under
 *    md_rcu.lock. md_rcu.queued and md_rcu.done count the callbacks queued and run
 *    since the process started. The runner (the worker, or a md_rcu_barrier() caller
 *    that could not start one) takes the whole list at once as a batch ("inflight"),
 *    drops the lock, waits for a grace period (urcu_bp_synchronize_rcu: every section
 *    open when the callbacks were queued has ended), runs the batch in queue order, and
 *    adds its length to done. There is one runner at a time (md_rcu.runner) and batches
 *    run in the order they were taken, so "done >= n" means that the first n callbacks
 *    ever queued have run: md_rcu_barrier() waits for done to reach the queued count it
 *    saw. A callback may queue more; they go to the next batch.
 *
 * 3. The worker's life
 *    md_rcu_call() never creates a thread: it may be called with allocator locks held
 *    (a slab reap under kmem_list_lock, a purge under md_purge_lock frees page-map
 *    nodes), and pthread_create mallocs (its TLS), which could then need those locks. It
 *    sets md_rcu__want_worker when no runner exists; md_rcu_kick(), one relaxed load,
 *    starts the worker at a point where the caller holds nothing: the malloc layer's
 *    outermost return (md__leave), thread exit, md_rcu_barrier(). Its mallocs enter
 *    the malloc as any caller's would. The worker is created detached, with every
 *    signal blocked (pthread_sigmask around pthread_create: it must not run a program's
 *    handlers), and:
 *      loop: a batch if the queue holds one (then its magazines, which only fill, go
 *      to the depots); else wait on md_rcu.work for at most
 *      MD_RCU_LINGER_MS, 20 ms (so a steady trickle of callbacks does not create a
 *      thread per callback); still nothing: give back its magazines and page cache
 *      (inside a section, as the malloc layer's thread exit does), look once more, and
 *      end.
 *    "The worker ends" and "a callback is queued" are both decided under md_rcu.lock:
 *    a callback queued after the worker cleared md_rcu.runner sets want_worker, and the
 *    next kick starts a new one. So the allocator never keeps a process alive: the
 *    last-thread rule of glibc holds (the worker may be the last thread; it ends within
 *    MD_RCU_LINGER_MS plus a grace period, and glibc then ends the process).
 *    If pthread_create fails, the callbacks stay queued, want_worker stays set and the
 *    next kick tries again; md_rcu_barrier() runs them itself.
 *    A process of one thread gets no worker: the kick runs the queue itself, in the
 *    kicking thread, when that thread is in no read-side section (md_rcu_run_here;
 *    glibc's __libc_single_threaded). Its grace period has no other reader to wait for:
 *    a membarrier or two (python3 pywork.py: 26 membarrier calls, 180 us in all). A
 *    thread of ours would clear __libc_single_threaded for good, and with it every
 *    single-thread path taken on that flag: glibc's (stdio without locks), the fork
 *    handlers' skip (md_env.c, section 3), the large-block cache's lock-free path
 *    (md_malloc.c). pywork started and ended a worker 3-4 times a run, and forked
 *    programs paid the handlers' full path from then on. Inside a read-side section (a
 *    kick from a signal handler that interrupted a free's bare section, or a program of
 *    its own using urcu-bp) the grace period would wait for the kicker itself: a
 *    worker starts as before.
 *
 * 4. fork()
 *    The callbacks free into the allocator, so they run inside a read-side section
 *    guarded the way the malloc layer guards its entry points (md_env.c, section 3): on
 *    entering, a runner checks md_rcu.paused and, if set, leaves the section and waits
 *    on md_rcu.pause_lock. The owner of the fork protocol calls, in its prepare handler:
 *    md_rcu_fork_pause() (pause_lock held, paused set), urcu_bp_synchronize_rcu() (every
 *    running batch has left its section; a later one saw the flag), md_rcu_fork_prepare()
 *    (md_rcu.lock held: the queue is consistent). A runner between taking its batch
 *    and running it keeps the batch in md_rcu.inflight, cleared inside its section, so
 *    at the fork the batch is either wholly run or wholly in inflight. The parent hook
 *    releases both locks; nothing had to be paused or acknowledged. The child hook
 *    (the forking thread, which holds both locks) re-initialises the conditions, has
 *    no runner, puts the inflight batch
 *    back at the head of the queue (its grace period will be waited again: harmless),
 *    sets want_worker if the queue is not empty (a worker starts lazily at the
 *    child's first kick, never in a child that has nothing to free) and releases the
 *    locks.
 *    A program that uses memdesc without its malloc layer and forks must call these
 *    hooks itself (as it must for vmem's and the caches' locks).
 *    Sanitizers: a thread started in the child of a multi-threaded fork (this worker
 *    too) can wait for ever on a lock of ASan's allocator that a parent thread held,
 *    and TSan refuses its reused thread id; the tests' children avoid starting one.
 *
 * 5. Rules for callers
 *    Never call md_rcu_barrier() (or any synchronize_rcu) inside a read-side section:
 *    it would wait for itself (the barrier returns -EDEADLK). A callback runs in a
 *    section: it must not wait for a grace period.
 *
 * 6. Costs
 *    md_rcu_call: a mutex and two stores (plus a signal if the worker waits). A grace
 *    period per batch, not per callback. fork: two uncontended mutexes. A process that
 *    never frees through RCU never has the thread.
 */
#include "md_rcu.h"
#include "memdesc_impl.h"
#include "slab_impl.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/single_threaded.h>
#include <time.h>

#define MD_RCU_LINGER_MS 20	/* idle worker waits this long for more work, then ends */

static struct {
	pthread_mutex_t lock;		/* everything below but paused/pause_lock */
	pthread_cond_t work;		/* the worker waits for callbacks */
	pthread_cond_t done_cv;		/* barriers wait for done to grow */
	bool ready;			/* the conditions are initialised (monotonic clock) */
	struct rcu_head *head;		/* the queue, FIFO, linked through head->next */
	struct rcu_head *tail;		/* its last element, valid if head */
	struct rcu_head *inflight;	/* the batch a runner took and has not finished */
	unsigned long queued;		/* callbacks ever queued */
	unsigned long done;		/* callbacks ever run (the first done of queued) */
	unsigned long taken;		/* ever taken into a batch: queued - taken are in the
				 * queue, taken - done in the inflight batch */
	unsigned long spawns;		/* workers ever created */
	bool runner;			/* a runner (worker or barrier) exists */
	bool idle;			/* the worker waits on work */
	atomic_int paused;		/* fork: runners stay out of their section */
	pthread_mutex_t pause_lock;	/* held across fork; paused runners wait on it */
} md_rcu = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.pause_lock = PTHREAD_MUTEX_INITIALIZER,
};

atomic_int md_rcu__want_worker;

/* ---- the list ----------------------------------------------------------------- */

static struct rcu_head *md_rcu_next(struct rcu_head *h)
{
	struct cds_wfcq_node *n = h->next.next;

	return n ? caa_container_of(n, struct rcu_head, next) : NULL;
}

static void md_rcu_set_next(struct rcu_head *h, struct rcu_head *next)
{
	h->next.next = next ? &next->next : NULL;
}

static void md_rcu_init_locked(void)
{
	pthread_condattr_t ca;

	if (md_rcu.ready)
		return;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&md_rcu.work, &ca);
	pthread_cond_init(&md_rcu.done_cv, &ca);
	pthread_condattr_destroy(&ca);
	md_rcu.ready = true;
}

void md_rcu_call(struct rcu_head *head, void (*func)(struct rcu_head *))
{
	head->func = func;
	md_rcu_set_next(head, NULL);
	pthread_mutex_lock(&md_rcu.lock);
	md_rcu_init_locked();
	if (md_rcu.head)
		md_rcu_set_next(md_rcu.tail, head);
	else
		md_rcu.head = head;
	md_rcu.tail = head;
	md_rcu.queued++;
	if (!md_rcu.runner)
		atomic_store_explicit(&md_rcu__want_worker, 1, memory_order_relaxed);
	else if (md_rcu.idle)
		pthread_cond_signal(&md_rcu.work);
	pthread_mutex_unlock(&md_rcu.lock);
}

void md_rcu_stats(struct md_rcu_stats *st)
{
	pthread_mutex_lock(&md_rcu.lock);
	st->queued = md_rcu.queued;
	st->taken = md_rcu.taken;
	st->done = md_rcu.done;
	st->spawns = md_rcu.spawns;
	st->worker = md_rcu.runner;
	pthread_mutex_unlock(&md_rcu.lock);
}

unsigned long md_rcu_pending(void)
{
	unsigned long n;

	pthread_mutex_lock(&md_rcu.lock);
	n = md_rcu.queued - md_rcu.done;
	pthread_mutex_unlock(&md_rcu.lock);
	return n;
}

/* ---- running callbacks -------------------------------------------------------- */

/* A read-side section that fork preparation waits out (section 4). */
static void md_rcu_section_enter(void)
{
	urcu_bp_read_lock();
	while (atomic_load(&md_rcu.paused)) {
		urcu_bp_read_unlock();
		pthread_mutex_lock(&md_rcu.pause_lock);
		pthread_mutex_unlock(&md_rcu.pause_lock);
		urcu_bp_read_lock();
	}
}

static void md_rcu_section_leave(void)
{
	urcu_bp_read_unlock();
}

/*
 * Take the whole queue and run it after a grace period. The caller is the runner and
 * holds md_rcu.lock, which is dropped meanwhile and held again on return. The worker
 * (kmem__service_thread) then gives its magazines to the depots before the batch counts
 * as done: it only frees, so they only fill, and what they hold serves no other thread
 * (with magazines grown by sharing, slab_mag.c section 3, up to 128 objects a cache)
 * until it ends.
 */
static void md_rcu_run_batch_locked(void)
{
	struct rcu_head *batch = md_rcu.head;
	unsigned long n = md_rcu.queued - md_rcu.taken;	/* the queue's length */

	md_rcu.head = md_rcu.tail = NULL;
	md_rcu.inflight = batch;
	md_rcu.taken = md_rcu.queued;
	pthread_mutex_unlock(&md_rcu.lock);

	urcu_bp_synchronize_rcu();
	md_rcu_section_enter();
	while (batch) {
		struct rcu_head *next = md_rcu_next(batch);

		batch->func(batch);
		batch = next;
	}
	if (kmem__service_thread)
		kmem_thread_flush();
	/* Inside the section: a fork sees the batch wholly run or wholly inflight. */
	pthread_mutex_lock(&md_rcu.lock);
	md_rcu.inflight = NULL;
	md_rcu.done += n;
	pthread_cond_broadcast(&md_rcu.done_cv);
	md_rcu_section_leave();
}

/* Give back what this thread caches in memdesc (as a thread exit would), in a section. */
static void md_rcu_drain_self(void)
{
	md_rcu_section_enter();
	kmem__thread_exit();
	pages__pcache_drain(true);
	md_rcu_section_leave();
}

static void md_rcu_deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ms * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec += ts->tv_nsec / 1000000000L;
		ts->tv_nsec %= 1000000000L;
	}
}

static void *md_rcu_worker(void *arg)
{
	bool drained = false;

	(void)arg;
	kmem__service_thread = true;	/* not one of the program's threads (kmem_threads) */
	pthread_mutex_lock(&md_rcu.lock);
	for (;;) {
		struct timespec until;
		int rc = 0;

		if (md_rcu.head) {
			md_rcu_run_batch_locked();
			continue;
		}
		md_rcu_deadline(&until, MD_RCU_LINGER_MS);
		md_rcu.idle = true;
		while (!md_rcu.head && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&md_rcu.work, &md_rcu.lock, &until);
		md_rcu.idle = false;
		if (md_rcu.head)
			continue;
		if (!drained) {
			/* May free into caches whose slabs then go through us: look again. */
			pthread_mutex_unlock(&md_rcu.lock);
			md_rcu_drain_self();
			drained = true;
			pthread_mutex_lock(&md_rcu.lock);
			continue;
		}
		break;
	}
	md_rcu.runner = false;
	pthread_mutex_unlock(&md_rcu.lock);
	return NULL;
}

/*
 * Run the queue in the kicking thread instead of a worker (section 3): the process has
 * this one thread (glibc's __libc_single_threaded) and it is in no read-side section
 * (its own grace period would wait for it: a kick from a signal handler that
 * interrupted a free's bare section, or a program of its own inside urcu-bp's).
 */
static bool md_rcu_run_here(void)
{
	return __libc_single_threaded && !urcu_bp_read_ongoing();
}

void md_rcu__kick_slow(void)
{
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t all, old;
	int rc;

	pthread_mutex_lock(&md_rcu.lock);
	atomic_store_explicit(&md_rcu__want_worker, 0, memory_order_relaxed);
	if (md_rcu.runner || !md_rcu.head) {
		pthread_mutex_unlock(&md_rcu.lock);
		return;
	}
	md_rcu.runner = true;
	if (md_rcu_run_here()) {
		while (md_rcu.head)
			md_rcu_run_batch_locked();
		md_rcu.runner = false;
		pthread_mutex_unlock(&md_rcu.lock);
		return;
	}
	pthread_mutex_unlock(&md_rcu.lock);

	rc = pthread_attr_init(&attr);
	if (!rc) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&tid, &attr, md_rcu_worker, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_lock(&md_rcu.lock);
	if (rc) {
		/* The callbacks wait; the next kick tries again. */
		md_rcu.runner = false;
		atomic_store_explicit(&md_rcu__want_worker, 1, memory_order_relaxed);
	} else {
		md_rcu.spawns++;
	}
	pthread_mutex_unlock(&md_rcu.lock);
}

int md_rcu_barrier(void)
{
	unsigned long target;

	if (urcu_bp_read_ongoing())
		return -EDEADLK;
	pthread_mutex_lock(&md_rcu.lock);
	md_rcu_init_locked();
	target = md_rcu.queued;
	while ((long)(md_rcu.done - target) < 0) {
		if (md_rcu.runner) {
			pthread_cond_wait(&md_rcu.done_cv, &md_rcu.lock);
			continue;
		}
		pthread_mutex_unlock(&md_rcu.lock);
		md_rcu_kick();
		pthread_mutex_lock(&md_rcu.lock);
		if (md_rcu.runner || (long)(md_rcu.done - target) >= 0)
			continue;	/* a worker runs (or ran) them: look again */
		/* No worker could start: run the queue here. */
		md_rcu.runner = true;
		while (md_rcu.head && (long)(md_rcu.done - target) < 0)
			md_rcu_run_batch_locked();
		md_rcu.runner = false;
		if (md_rcu.head)
			atomic_store_explicit(&md_rcu__want_worker, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&md_rcu.lock);
	return 0;
}

/* ---- fork --------------------------------------------------------------------- */

void md_rcu_fork_pause(void)
{
	pthread_mutex_lock(&md_rcu.pause_lock);
	atomic_store(&md_rcu.paused, 1);
}

void md_rcu_fork_prepare(void)
{
	pthread_mutex_lock(&md_rcu.lock);
}

void md_rcu_fork_parent(void)
{
	pthread_mutex_unlock(&md_rcu.lock);
	atomic_store(&md_rcu.paused, 0);
	pthread_mutex_unlock(&md_rcu.pause_lock);
}

void md_rcu_fork_child(void)
{
	struct rcu_head *b = md_rcu.inflight;

	/*
	 * This thread took both locks in the prepare hook: release them (re-initialising
	 * a held mutex is undefined, and TSan would still count it held). The conditions
	 * may record waiters that are not in the child: initialise them anew.
	 */
	md_rcu.ready = false;
	md_rcu_init_locked();
	/* The parent's runner is not here: its batch goes back in front of the queue. */
	if (b) {
		struct rcu_head *last = b;

		md_rcu.taken = md_rcu.done;	/* the batch is queued again, not taken */
		while (md_rcu_next(last))
			last = md_rcu_next(last);
		md_rcu_set_next(last, md_rcu.head);
		if (!md_rcu.head)
			md_rcu.tail = last;
		md_rcu.head = b;
		md_rcu.inflight = NULL;
	}
	md_rcu.runner = false;
	md_rcu.idle = false;
	atomic_store_explicit(&md_rcu__want_worker, md_rcu.head != NULL, memory_order_relaxed);
	pthread_mutex_unlock(&md_rcu.lock);
	atomic_store(&md_rcu.paused, 0);
	pthread_mutex_unlock(&md_rcu.pause_lock);
}
