/*
 * test_md_rcu: memdesc's deferred frees (memdesc/md_rcu.c) on their own: a callback
 * runs only after every read-side section open when it was queued has ended (the
 * reader itself observes it), in queue order, exactly once; md_rcu_barrier(); many
 * producers; the worker ends when idle and a new one starts for new work, in a process
 * with threads; in a process of one thread the kick runs the queue itself (no thread
 * started), unless that thread is in a read-side section; fork with a
 * batch taken but not run (the child runs it, the parent too, each in its own memory);
 * producers queueing while the main thread forks;
 * a process whose last threads call pthread_exit while callbacks are queued ends.
 */
#include "mdt.h"
#include "md_rcu.h"
#include "memdesc.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <urcu-bp.h>

struct item {
	struct rcu_head head;
	atomic_int ran;		/* times the callback ran */
	unsigned long seq;	/* queue position, for the order check */
};

static atomic_ulong run_order;	/* next expected seq in test_order */
static atomic_int out_of_order;

static void item_run(struct rcu_head *h)
{
	struct item *it = caa_container_of(h, struct item, head);

	atomic_fetch_add(&it->ran, 1);
}

static void item_run_ordered(struct rcu_head *h)
{
	struct item *it = caa_container_of(h, struct item, head);

	if (atomic_fetch_add(&run_order, 1) != it->seq)
		atomic_store(&out_of_order, 1);
	atomic_fetch_add(&it->ran, 1);
}

static void queue_item(struct item *it, void (*fn)(struct rcu_head *))
{
	atomic_store(&it->ran, 0);
	md_rcu_call(&it->head, fn);
}

/* Wait (yielding, bounded) until the worker has ended; false if it never does. */
static bool wait_worker_gone(int secs)
{
	struct timespec ts = { 0, 1000 * 1000 };
	struct md_rcu_stats st;

	for (long i = 0; i < secs * 1000L; i++) {
		md_rcu_stats(&st);
		if (!st.worker)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* ---- grace period --------------------------------------------------------------- */

static struct item gp_item;
static atomic_int gp_reader_in, gp_queued, gp_seen_early;

/*
 * The reader enters its section, lets the main thread queue, waits until the worker
 * has taken the callback into a batch (so it is waiting for the grace period), then
 * looks at the callback many times before leaving: it must never have run.
 */
static void *gp_reader(void *arg)
{
	struct md_rcu_stats st;
	unsigned long want = (unsigned long)(uintptr_t)arg;

	urcu_bp_read_lock();
	atomic_store(&gp_reader_in, 1);
	while (!atomic_load(&gp_queued))
		sched_yield();
	do {
		sched_yield();
		md_rcu_stats(&st);
	} while (st.taken < want);
	for (int i = 0; i < 2000; i++) {
		if (atomic_load(&gp_item.ran))
			atomic_store(&gp_seen_early, 1);
		sched_yield();
	}
	if (atomic_load(&gp_item.ran))
		atomic_store(&gp_seen_early, 1);
	urcu_bp_read_unlock();
	return NULL;
}

START_TEST(test_grace_period)
{
	struct md_rcu_stats st;
	pthread_t t;

	md_rcu_stats(&st);
	atomic_store(&gp_reader_in, 0);
	atomic_store(&gp_queued, 0);
	atomic_store(&gp_seen_early, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, gp_reader, (void *)(uintptr_t)(st.queued + 1)),
			 0);
	while (!atomic_load(&gp_reader_in))
		sched_yield();
	queue_item(&gp_item, item_run);
	atomic_store(&gp_queued, 1);
	md_rcu_kick();		/* the worker starts and takes the callback */
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(!atomic_load(&gp_seen_early), "the callback ran inside the reader's section");
	ck_assert_int_eq(md_rcu_barrier(), 0);
	ck_assert_int_eq(atomic_load(&gp_item.ran), 1);
}
END_TEST

/* ---- barrier and order ----------------------------------------------------------- */

START_TEST(test_order_and_barrier)
{
	size_t n = mdt_scaled(5000);
	struct item *it = calloc(n, sizeof(*it));
	struct md_rcu_stats a, b;

	ck_assert_ptr_nonnull(it);
	ck_assert_int_eq(md_rcu_barrier(), 0);	/* nothing queued: returns */
	md_rcu_stats(&a);
	ck_assert_uint_eq(a.queued, a.done);
	atomic_store(&run_order, 0);
	atomic_store(&out_of_order, 0);
	for (size_t i = 0; i < n; i++) {
		it[i].seq = i;
		queue_item(&it[i], item_run_ordered);
		if (i % 1000 == 999)
			md_rcu_kick();	/* batches of several sizes */
	}
	ck_assert_int_eq(md_rcu_barrier(), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(atomic_load(&it[i].ran), 1);
	ck_assert_int_eq(atomic_load(&out_of_order), 0);
	md_rcu_stats(&b);
	ck_assert_uint_eq(b.queued - a.queued, n);
	ck_assert_uint_eq(b.done, b.queued);
	ck_assert_uint_eq(md_rcu_pending(), 0);
	free(it);
}
END_TEST

START_TEST(test_barrier_in_section)
{
	struct item it;

	queue_item(&it, item_run);
	urcu_bp_read_lock();
	ck_assert_int_eq(md_rcu_barrier(), -EDEADLK);	/* would wait for itself */
	urcu_bp_read_unlock();
	ck_assert_int_eq(md_rcu_barrier(), 0);
	ck_assert_int_eq(atomic_load(&it.ran), 1);
}
END_TEST

/* A callback that queues another: the barrier covers the first; the next the second. */
static struct item nest_outer, nest_inner;

static void nest_run(struct rcu_head *h)
{
	item_run(h);
	queue_item(&nest_inner, item_run);
}

START_TEST(test_callback_queues)
{
	queue_item(&nest_outer, nest_run);
	ck_assert_int_eq(md_rcu_barrier(), 0);
	ck_assert_int_eq(atomic_load(&nest_outer.ran), 1);
	ck_assert_int_eq(md_rcu_barrier(), 0);
	ck_assert_int_eq(atomic_load(&nest_inner.ran), 1);
}
END_TEST

/* ---- many producers ------------------------------------------------------------- */

#define NPROD 4

struct producer {
	struct item *it;
	size_t n;
};

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (size_t i = 0; i < p->n; i++) {
		queue_item(&p->it[i], item_run);
		if (i % 512 == 0)
			md_rcu_kick();
		if (i % 4096 == 2048 && md_rcu_barrier() != 0)
			return (void *)1;
	}
	return NULL;
}

START_TEST(test_producers)
{
	struct producer p[NPROD];
	pthread_t t[NPROD];
	size_t n = mdt_scaled(20000);

	for (int k = 0; k < NPROD; k++) {
		p[k].n = n;
		p[k].it = calloc(n, sizeof(struct item));
		ck_assert_ptr_nonnull(p[k].it);
		ck_assert_int_eq(pthread_create(&t[k], NULL, produce, &p[k]), 0);
	}
	for (int k = 0; k < NPROD; k++) {
		void *ret;

		ck_assert_int_eq(pthread_join(t[k], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_int_eq(md_rcu_barrier(), 0);
	for (int k = 0; k < NPROD; k++) {
		for (size_t i = 0; i < n; i++)
			ck_assert_int_eq(atomic_load(&p[k].it[i].ran), 1);
		free(p[k].it);
	}
	ck_assert_uint_eq(md_rcu_pending(), 0);
}
END_TEST

/* ---- the worker's life ---------------------------------------------------------- */

static void *no_work(void *arg)
{
	return arg;
}

START_TEST(test_worker_ends_and_restarts)
{
	struct md_rcu_stats a, b;
	struct item it;
	pthread_t t;

	/* A worker runs only once the process has had a second thread (this one, joined:
	 * glibc's __libc_single_threaded stays cleared); before, see test_run_here. */
	ck_assert_int_eq(pthread_create(&t, NULL, no_work, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert(!__libc_single_threaded);
	queue_item(&it, item_run);
	ck_assert_int_eq(md_rcu_barrier(), 0);
	ck_assert_msg(wait_worker_gone(30), "the idle worker did not end");
	md_rcu_stats(&a);
	/* Queued with no worker: none starts until a kick (no thread inside md_rcu_call). */
	queue_item(&it, item_run);
	md_rcu_stats(&b);
	ck_assert(!b.worker);
	ck_assert_uint_eq(b.spawns, a.spawns);
	ck_assert_int_eq(md_rcu_barrier(), 0);	/* kicks one */
	ck_assert_int_eq(atomic_load(&it.ran), 1);
	md_rcu_stats(&b);
	ck_assert_uint_eq(b.spawns, a.spawns + 1);
	ck_assert_msg(wait_worker_gone(30), "the idle worker did not end");
}
END_TEST

#if !defined(__SANITIZE_THREAD__)	/* TSan's runtime has a thread of its own */
/*
 * The child of test_run_here, a fresh process of one thread: queued callbacks wait for a
 * kick, which runs them in the kicking thread (no worker: the process stays
 * single-threaded); inside a read-side section a kick starts a worker instead, which
 * runs them once the section ends. Exit codes name the step.
 */
static int run_here_child(void)
{
	static struct item it[4];
	struct md_rcu_stats a, b;

	if (!__libc_single_threaded)
		return 2;
	md_rcu_stats(&a);
	for (int i = 0; i < 4; i++)
		queue_item(&it[i], item_run);
	for (int i = 0; i < 4; i++)
		if (atomic_load(&it[i].ran))
			return 3;	/* queueing runs nothing */
	md_rcu_kick();
	for (int i = 0; i < 4; i++)
		if (atomic_load(&it[i].ran) != 1)
			return 4;
	md_rcu_stats(&b);
	if (b.worker || b.spawns != a.spawns || b.done != b.queued || !__libc_single_threaded)
		return 5;
	urcu_bp_read_lock();
	queue_item(&it[0], item_run);
	md_rcu_kick();
	if (atomic_load(&it[0].ran))
		return 6;	/* its own grace period would wait for this section */
	md_rcu_stats(&b);
	if (b.spawns != a.spawns + 1)
		return 7;
	urcu_bp_read_unlock();
	if (md_rcu_barrier() != 0 || atomic_load(&it[0].ran) != 1)
		return 8;
	return 0;
}

START_TEST(test_run_here)
{
	const char *args[] = { "runhere", NULL };
	char err[4096];
	int status = mdt_run_self("", args, err, sizeof(err));

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x: %s",
		      status, err);
}
END_TEST
#endif

/* ---- fork with a batch in flight --------------------------------------------------- */

/*
 * The test's own fork handlers, the protocol md_env.c follows. During test_fork_inflight
 * the prepare handler also lets the reader that holds the worker's grace period go,
 * after the pause: the worker then finishes its grace period and stops at the pause with
 * its batch taken, so the child is forked with the batch in flight.
 */
static atomic_int fork_release_reader, fork_reader_released;

static void t_prefork(void)
{
	md_rcu_fork_pause();
	if (atomic_load(&fork_release_reader)) {
		atomic_store(&fork_release_reader, 0);
		atomic_store(&fork_reader_released, 1);
	}
	urcu_bp_synchronize_rcu();
	md_rcu_fork_prepare();
	urcu_bp_before_fork();
}

static void t_parent(void)
{
	urcu_bp_after_fork_parent();
	md_rcu_fork_parent();
}

static void t_child(void)
{
	urcu_bp_after_fork_child();
	md_rcu_fork_child();
}

static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;

static void fork_handlers_register(void)
{
	if (pthread_atfork(t_prefork, t_parent, t_child) != 0)
		abort();
}

/* Once per process (CK_FORK=no runs every test in one). */
static void fork_handlers(void)
{
	pthread_once(&fork_handlers_once, fork_handlers_register);
}

#define NFORK_ITEMS 64
static struct item fk[NFORK_ITEMS];
static atomic_int fk_reader_in;

static void *fk_reader(void *arg)
{
	struct md_rcu_stats st;
	unsigned long want = (unsigned long)(uintptr_t)arg;

	urcu_bp_read_lock();
	atomic_store(&fk_reader_in, 1);
	do {
		sched_yield();
		md_rcu_stats(&st);
	} while (st.taken < want);	/* the worker holds the batch, waiting for us */
	atomic_store(&fork_release_reader, 1);
	while (!atomic_load(&fork_reader_released))
		sched_yield();
	urcu_bp_read_unlock();
	return NULL;
}

/* The child: the batch was not run, is queued again, and runs here; 0 on success. */
static int fork_child_check(unsigned long queued_before)
{
	struct md_rcu_stats st;
	struct item mine;

	md_rcu_stats(&st);
	if (st.worker)
		return 20;	/* the parent's worker is not here */
	if (st.queued - st.done != NFORK_ITEMS || st.taken != st.done)
		return 21;	/* the batch came back into the queue */
	if (st.queued != queued_before + NFORK_ITEMS)
		return 22;
	for (int i = 0; i < NFORK_ITEMS; i++)
		if (atomic_load(&fk[i].ran))
			return 23;
	queue_item(&mine, item_run);
	if (md_rcu_barrier() != 0)
		return 24;
	for (int i = 0; i < NFORK_ITEMS; i++)
		if (atomic_load(&fk[i].ran) != 1)
			return 25;
	return atomic_load(&mine.ran) == 1 ? 0 : 26;
}

START_TEST(test_fork_inflight)
{
	struct md_rcu_stats st;
	pthread_t t;
	pid_t pid;
	int status;

	fork_handlers();
	md_rcu_stats(&st);
	atomic_store(&fk_reader_in, 0);
	atomic_store(&fork_reader_released, 0);
	ck_assert_int_eq(
		pthread_create(&t, NULL, fk_reader, (void *)(uintptr_t)(st.queued + NFORK_ITEMS)),
		0);
	while (!atomic_load(&fk_reader_in))
		sched_yield();
	for (int i = 0; i < NFORK_ITEMS; i++)
		queue_item(&fk[i], item_run);
	md_rcu_kick();
	/* Fork once the reader is waiting for us: the worker has taken the batch. */
	while (!atomic_load(&fork_release_reader))
		sched_yield();
	pid = fork();
	if (pid == 0) {
		alarm(60);
		_exit(fork_child_check(st.queued));
	}
	ck_assert_int_ge(pid, 0);	/* in the parent only: see test_fork_stress */
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	/* The parent ran its own copy once. */
	ck_assert_int_eq(md_rcu_barrier(), 0);
	for (int i = 0; i < NFORK_ITEMS; i++)
		ck_assert_int_eq(atomic_load(&fk[i].ran), 1);
}
END_TEST

/* ---- stress: producers while forking -------------------------------------------- */

#define NSTRESS 3
static atomic_int stress_stop;
/*
 * A producer that has queued all its items waits here for stress_stop: it stays alive
 * through the forks. One that ended before them would be a finished, unjoined thread
 * in every later child, which TSan reports at the child's exit as a leak (exit 66):
 * under load, or with MDT_SCALE=200, the producers finished first.
 */
static pthread_mutex_t stress_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stress_cond = PTHREAD_COND_INITIALIZER;

struct stress_prod {
	struct item *it;
	size_t n;
	size_t queued;	/* how many it queued before stress_stop */
};

static void *stress_producer(void *arg)
{
	struct stress_prod *p = arg;

	for (p->queued = 0; p->queued < p->n && !atomic_load(&stress_stop); p->queued++) {
		queue_item(&p->it[p->queued], item_run);
		if (p->queued % 64 == 0)
			md_rcu_kick();
	}
	pthread_mutex_lock(&stress_lock);
	while (!atomic_load(&stress_stop))
		pthread_cond_wait(&stress_cond, &stress_lock);
	pthread_mutex_unlock(&stress_lock);
	return NULL;
}

/*
 * The child: what it inherited is consistent (no runner; a batch in flight went back
 * into the queue). It starts no thread (a sanitizer's runtime may hold a lock of a
 * vanished parent thread, and TSan refuses reused thread ids) except in plain builds,
 * where it also runs everything it inherited and one callback of its own.
 */
static int stress_child(void)
{
	struct md_rcu_stats st;

	md_rcu_stats(&st);
	if (st.worker || st.taken != st.done || md_rcu_pending() != st.queued - st.done)
		return 50;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	{
		struct item mine;

		queue_item(&mine, item_run);
		if (md_rcu_barrier() != 0 || atomic_load(&mine.ran) != 1 || md_rcu_pending())
			return 51;
	}
#endif
	return 0;
}

START_TEST(test_fork_stress)
{
	struct stress_prod p[NSTRESS];
	pthread_t t[NSTRESS];
	size_t n = mdt_scaled(30000), forks = mdt_scaled(40);

	fork_handlers();
	atomic_store(&stress_stop, 0);
	for (int k = 0; k < NSTRESS; k++) {
		p[k].n = n;
		p[k].it = calloc(n, sizeof(struct item));
		ck_assert_ptr_nonnull(p[k].it);
		ck_assert_int_eq(pthread_create(&t[k], NULL, stress_producer, &p[k]), 0);
	}
	for (size_t f = 0; f < forks; f++) {
		pid_t pid = fork();
		int status;

		/*
		 * The child asserts nothing through Check before it exits: a passing
		 * ck_assert records its line with strdup(), and the sanitizers' malloc
		 * (gcc 12's ASan) may be locked for good in the child by a producer that
		 * was inside it at the fork (8 of 50 runs of the asan build hung here).
		 */
		if (pid == 0) {
			alarm(60);	/* a hang becomes a failure */
			_exit(stress_child());
		}
		ck_assert_int_ge(pid, 0);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "fork %zu: child status %#x", f, status);
	}
	pthread_mutex_lock(&stress_lock);
	atomic_store(&stress_stop, 1);
	pthread_cond_broadcast(&stress_cond);
	pthread_mutex_unlock(&stress_lock);
	for (int k = 0; k < NSTRESS; k++)
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
	ck_assert_int_eq(md_rcu_barrier(), 0);
	for (int k = 0; k < NSTRESS; k++) {
		for (size_t i = 0; i < p[k].queued; i++)
			ck_assert_int_eq(atomic_load(&p[k].it[i].ran), 1);
		free(p[k].it);
	}
	ck_assert_uint_eq(md_rcu_pending(), 0);
}
END_TEST

/* ---- the last threads end the process --------------------------------------------- */
#if !defined(__SANITIZE_THREAD__)	/* see main() */

static struct item last_items[2][16];

static void *last_thread(void *arg)
{
	struct item *it = arg;

	for (int i = 0; i < 16; i++)
		queue_item(&it[i], item_run);
	md_rcu_kick();
	return NULL;	/* pthread_exit */
}

/* main and two threads end with callbacks queued and a worker running: exit status 0. */
static void last_threads_exit(void)
{
	pthread_t t[2];

	for (int k = 0; k < 2; k++)
		if (pthread_create(&t[k], NULL, last_thread, last_items[k]) != 0)
			_exit(2);
	pthread_exit(NULL);
}

START_TEST(test_last_threads_exit)
{
	for (int round = 0; round < 5; round++) {
		const char *args[] = { "lastthreads", NULL };
		char err[4096];
		int status = mdt_run_self("", args, err, sizeof(err));

		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "round %d: status %#x%s: %s", round, status,
			      WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (hung)" : "",
			      err);
	}
}
END_TEST
#endif

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	/* Before Check allocates anything: the child's exit(0) runs the leak check. */
#if !defined(__SANITIZE_THREAD__)
	if (argc == 3 && strcmp(argv[1], "--child") == 0 && strcmp(argv[2], "runhere") == 0)
		return run_here_child();
	if (argc == 3 && strcmp(argv[1], "--child") == 0 && strcmp(argv[2], "lastthreads") == 0) {
		alarm(60);	/* a hang becomes SIGALRM */
		last_threads_exit();
	}
#else
	(void)argc;
	(void)argv;
#endif
	s = suite_create("md_rcu");
	tc = tcase_create("md_rcu");
	tcase_add_test(tc, test_grace_period);
	tcase_add_test(tc, test_order_and_barrier);
	tcase_add_test(tc, test_barrier_in_section);
	tcase_add_test(tc, test_callback_queues);
	tcase_add_test(tc, test_producers);
	tcase_add_test(tc, test_worker_ends_and_restarts);
#if !defined(__SANITIZE_THREAD__)
	tcase_add_test(tc, test_run_here);
#endif
	tcase_add_test(tc, test_fork_inflight);
	tcase_add_test(tc, test_fork_stress);
#if !defined(__SANITIZE_THREAD__)
	/* TSan's runtime keeps a thread of its own (started with the real pthread_create):
	 * a process whose last user thread exits does not end under TSan. */
	tcase_add_test(tc, test_last_threads_exit);
#endif
	suite_add_tcase(s, tc);
	return mdt_run(s);
}
