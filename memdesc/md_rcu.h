/*
 * md_rcu.h: memdesc's deferred frees: run a callback after an RCU grace period of
 * liburcu-bp, from a worker thread that exists only while there is work. Used by the
 * slab layer (type-stable slabs), the page map's XArray nodes and the malloc layer;
 * the design is written at the top of md_rcu.c. Not an installed header.
 */
#ifndef MEMDESC_MD_RCU_H
#define MEMDESC_MD_RCU_H

#include <stdbool.h>
#include <stdatomic.h>

struct rcu_head;	/* liburcu's (urcu/call-rcu.h): a link and a function */

/**
 * md_rcu_call() - run @func(@head) after a grace period: once every urcu-bp read-side
 * section that was open when this was called has ended.
 * @head: embedded in the object to free; untouched by the caller until @func runs.
 * @func: runs on the worker thread, a md_rcu_barrier() caller or, in a process of one
 *	thread, the thread that kicks (md_rcu_kick()), inside a read-side section that a
 *	fork waits out (md_rcu.c, section 4); it must not wait for a grace period and may
 *	queue further callbacks.
 * Context: any, read-side sections included; takes md_rcu's lock, never allocates and
 * never creates a thread and runs no callback (md_rcu_kick() does, at a point the caller
 * knows is safe).
 */
void md_rcu_call(struct rcu_head *head, void (*func)(struct rcu_head *));

/* Set when callbacks wait and no worker runs them (md_rcu.c, section 3). */
extern atomic_int md_rcu__want_worker;
void md_rcu__kick_slow(void);

/**
 * md_rcu_kick() - have the waiting callbacks run, if no runner does: here, in a process
 * of one thread outside any read-side section; else by a worker it starts.
 * Context: the caller holds no lock of memdesc or of the malloc layer and is in no md_
 * call (pthread_create mallocs, the callbacks free); one relaxed load when there is
 * nothing to do.
 */
static inline void md_rcu_kick(void)
{
	if (__builtin_expect(atomic_load_explicit(&md_rcu__want_worker, memory_order_relaxed), 0))
		md_rcu__kick_slow();
}

/**
 * md_rcu_barrier() - wait until every callback queued before this call has run.
 * Context: as md_rcu_kick(), and outside any read-side section. If no worker can be
 * started, the caller runs the callbacks itself.
 * Return: 0, or -EDEADLK (nothing waited) when called inside a read-side section.
 */
int md_rcu_barrier(void);

/**
 * struct md_rcu_stats - counters since the process started (a snapshot).
 * @queued: callbacks queued.
 * @taken: of them, taken by a runner into a batch (its grace period may be running).
 * @done: of them, run.
 * @spawns: worker threads created.
 * @worker: a worker (or a barrier running callbacks itself) exists now.
 */
struct md_rcu_stats {
	unsigned long queued, taken, done, spawns;
	bool worker;
};

/** md_rcu_stats() - fill @st. Context: any; takes md_rcu's lock. */
void md_rcu_stats(struct md_rcu_stats *st);

/** md_rcu_pending() - callbacks queued and not yet run (a snapshot). Context: any. */
unsigned long md_rcu_pending(void);

/*
 * fork (md_rcu.c, section 4). The owner of the process's fork protocol (the malloc
 * layer, md_env.c) calls, in its prepare handler: md_rcu_fork_pause(), then
 * urcu_bp_synchronize_rcu(), then md_rcu_fork_prepare(); and md_rcu_fork_parent() or
 * md_rcu_fork_child() after the fork.
 */
void md_rcu_fork_pause(void);
void md_rcu_fork_prepare(void);
void md_rcu_fork_parent(void);
void md_rcu_fork_child(void);

#endif /* MEMDESC_MD_RCU_H */
