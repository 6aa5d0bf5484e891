/* mdt_fault: see mdt_fault.h. */
#include "mdt_fault.h"
#include "mdt.h"
#include "fault.h"

#include <check.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MEMDESC_FAULT_INJECTION

/* The run in progress, named in the message of a failure. */
static struct {
	const char *workload;
	int point;			/* -1: warm-up or counting run */
	unsigned long n, k;
	bool active;
} mdt_fault_ctx;

/*
 * Check reports a failure through _ck_assert_failed(), then the test's process ends
 * (_exit in fork mode: no atexit). Fault-injection builds link the test programs with
 * --wrap=_ck_assert_failed (tests/CMakeLists.txt), so the failure message itself says
 * which run of a sweep failed and how to replay it.
 */
void __real__ck_assert_failed(const char *file, int line, const char *expr,
			      const char *msg, ...);
void __wrap__ck_assert_failed(const char *file, int line, const char *expr,
			      const char *msg, ...) __attribute__((noreturn));

void __wrap__ck_assert_failed(const char *file, int line, const char *expr,
			      const char *msg, ...)
{
	char text[1024], ctx[256] = "";

	if (msg) {
		va_list ap;

		va_start(ap, msg);
		vsnprintf(text, sizeof(text), msg, ap);
		va_end(ap);
	} else {
		snprintf(text, sizeof(text), "%s", expr);
	}
	if (mdt_fault_ctx.active && mdt_fault_ctx.point < 0)
		snprintf(ctx, sizeof(ctx), " [fault sweep %s: in a run with no fault armed]",
			 mdt_fault_ctx.workload);
	else if (mdt_fault_ctx.active)
		snprintf(ctx, sizeof(ctx), " [fault sweep %s: point %s armed at N=%lu, K=%lu; "
			 "replay: MDT_FAULT_POINT=%s MDT_FAULT_N=%lu MDT_FAULT_K=%lu]",
			 mdt_fault_ctx.workload,
			 fault_point_name((enum fault_point)mdt_fault_ctx.point), mdt_fault_ctx.n,
			 mdt_fault_ctx.k, fault_point_name((enum fault_point)mdt_fault_ctx.point),
			 mdt_fault_ctx.n, mdt_fault_ctx.k);
	__real__ck_assert_failed(file, line, expr, "%s%s", text, ctx);
	abort();
}

static unsigned long mdt_env_ulong(const char *name, unsigned long fallback)
{
	const char *v = getenv(name);

	return v && *v ? strtoul(v, NULL, 0) : fallback;
}

/* One run with point p armed at its n-th crossing for k crossings; true if it fired. */
static bool mdt_fault_run(const struct mdt_fault_workload *w, int p, unsigned long n,
			  unsigned long k)
{
	unsigned long before;

	mdt_fault_ctx.point = p;
	mdt_fault_ctx.n = n;
	mdt_fault_ctx.k = k;
	mdt_fault_ctx.active = true;
	before = p >= 0 ? fault_injected((enum fault_point)p) : 0;
	if (p >= 0)
		fault_arm((enum fault_point)p, n, k);
	w->run(w->arg);
	fault_disarm_all();
	w->clean(w->arg);
	mdt_fault_ctx.active = false;
	return p >= 0 && fault_injected((enum fault_point)p) != before;
}

/* A run count scaled like operation counts (MDT_SCALE; sanitizer builds 10%), >= @min. */
static unsigned long mdt_fault_budget(unsigned long n, unsigned long min)
{
	unsigned long scaled = (unsigned long)mdt_scaled(n);

	return scaled > min ? scaled : (n < min ? n : min);
}

#define MDT_FAULT_FOREVER (ULONG_MAX / 2)	/* K: every crossing from N on fails */
#define MDT_FAULT_FOREVER_RUNS 8

/*
 * The i-th run of a point crossed c times: (N, K). First one failing crossing for each
 * N in 1..all_below, then every stride-th N up to c; then MDT_FAULT_FOREVER_RUNS runs
 * with every crossing from N on failing, N spread over 1..c. False after the last.
 */
static bool mdt_fault_nth(const struct mdt_fault_workload *w, unsigned long c,
			  unsigned long i, unsigned long *n, unsigned long *k)
{
	unsigned long all_below = mdt_fault_budget(w->all_below, 20);
	unsigned long max_runs = mdt_fault_budget(w->max_runs, 30);
	unsigned long dense = c < all_below ? c : all_below;
	unsigned long stride = 1, sparse = 0;

	if (c > dense) {
		unsigned long room = max_runs > dense ? max_runs - dense : 1;

		stride = (c - dense + room - 1) / room;
		sparse = (c - dense) / stride;
	}
	*k = 1;
	if (i < dense) {
		*n = i + 1;
		return true;
	}
	i -= dense;
	if (i < sparse) {
		*n = dense + (i + 1) * stride;
		return true;
	}
	i -= sparse;
	if (i < MDT_FAULT_FOREVER_RUNS) {
		*n = 1 + c * i / MDT_FAULT_FOREVER_RUNS;
		*k = MDT_FAULT_FOREVER;
		return true;
	}
	return false;
}

void mdt_fault_sweep(const struct mdt_fault_workload *w)
{
	unsigned long count[FAULT_NR_POINTS];
	unsigned long only_n = mdt_env_ulong("MDT_FAULT_N", 0);
	unsigned long only_k = mdt_env_ulong("MDT_FAULT_K", 1);
	const char *only_p = getenv("MDT_FAULT_POINT");
	int only = only_p && *only_p ? fault_point_parse(only_p) : -1;

	if (only_p && *only_p && only < 0)
		ck_abort_msg("MDT_FAULT_POINT=%s: no such point", only_p);
	mdt_fault_ctx.workload = w->name;
	fault_disarm_all();
	mdt_fault_run(w, -1, 0, 0);	/* warm-up: caches, pools and reserves settle */
	for (int p = 0; p < FAULT_NR_POINTS; p++)
		count[p] = fault_calls((enum fault_point)p);
	mdt_fault_ctx.point = -1;
	mdt_fault_ctx.active = true;
	w->run(w->arg);
	for (int p = 0; p < FAULT_NR_POINTS; p++)
		count[p] = fault_calls((enum fault_point)p) - count[p];
	w->clean(w->arg);
	mdt_fault_ctx.active = false;

	for (int p = 0; p < FAULT_NR_POINTS; p++) {
		const char *name = fault_point_name((enum fault_point)p);
		unsigned long c = count[p], runs = 0, fired = 0, n, k;

		if (only >= 0 && p != only)
			continue;
		if (c == 0) {
			fprintf(stderr, "mdt_fault: %s: %-9s not crossed\n", w->name, name);
			continue;
		}
		/*
		 * A replay makes the same runs as the sweep and stops after the one asked
		 * for: the state the runs before it leave behind (pools, reserves, cached
		 * slabs) decides which call is the N-th crossing.
		 */
		for (unsigned long i = 0; mdt_fault_nth(w, c, i, &n, &k); i++) {
			bool hit = mdt_fault_run(w, p, n, k);

			fired += hit;
			runs++;
			if (only_n && n == only_n && k == only_k) {
				fprintf(stderr, "mdt_fault: %s: %s N=%lu K=%lu replayed (%s)\n",
					w->name, name, n, k, hit ? "fired" : "did not fire");
				return;
			}
		}
		if (only_n)
			ck_abort_msg("%s: no run of point %s has N=%lu K=%lu", w->name, name,
				     only_n, only_k);
		fprintf(stderr, "mdt_fault: %s: %-9s crossed %4lu times: %lu runs, %lu of them "
			"injected a failure\n", w->name, name, c, runs, fired);
		if (!fired)
			ck_abort_msg("%s: point %s crossed %lu times but no run injected a fault",
				     w->name, name, c);
	}
}

void mdt_fault_add_tcase(Suite *s, const TTest *test)
{
	TCase *tc = tcase_create("fault");

	tcase_set_tags(tc, "fault");
	tcase_set_timeout(tc, 0);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}
#endif /* MEMDESC_FAULT_INJECTION */
