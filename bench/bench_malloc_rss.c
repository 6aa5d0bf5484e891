/*
 * bench_malloc_rss: resident memory of a phased mixed workload, per allocator.
 *
 * malloc/resident/alloc:A runs memdesc-rss (rss_child.c) for allocator A in a child
 * process (fork + exec beside this binary) and reports, as counters, the resident MiB
 * after each phase above the child's baseline ("rss_<n>_<phase>") and the MiB the
 * workload holds live then ("live_<n>_<phase>", the same for every allocator). The
 * report makes one row per phase. The time of a run is the child's whole run and means
 * little. Why a child: see rss_child.c (resident memory is per process, and the four
 * allocators share this one). MDB_RSS_MIB sets the live target (default 128 MiB;
 * scripts/main's quick and smoke modes make it smaller).
 */
#include "alloc_table.h"
#include "mdb.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define RSS_PHASES 5

static const char *const phase_names[RSS_PHASES] = {
	"1_peak", "2_freed_3_4", "3_refill", "4_freed_all", "5_trimmed"
};

/* The path of memdesc-rss: beside this program. 0, or -1 if it cannot be built. */
static int child_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash == NULL || (size_t)(slash - buf) + sizeof("/memdesc-rss") > len)
		return -1;
	strcpy(slash, "/memdesc-rss");
	return 0;
}

/*
 * Run the child for @name; fill resident[] and live[] (bytes) for every phase.
 * Return: NULL, or what went wrong.
 */
static const char *run_child(const char *name, double *resident, double *live)
{
	char path[PATH_MAX], line[256];
	const char *mib = getenv("MDB_RSS_MIB");
	char *argv[] = { path, (char *)name, (char *)(mib && *mib ? mib : "128"), NULL };
	posix_spawn_file_actions_t fa;
	int fds[2], status, seen = 0;
	pid_t pid;
	FILE *f;

	if (child_path(path, sizeof(path)) != 0)
		return "cannot find memdesc-rss beside the benchmark";
	if (pipe(fds) != 0)
		return "pipe failed";
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	errno = posix_spawn(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (errno != 0) {
		close(fds[0]);
		return "cannot start memdesc-rss";
	}
	f = fdopen(fds[0], "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		unsigned p;
		double r, l;

		if (sscanf(line, "phase %u %*s %lf %lf", &p, &r, &l) == 3 && p >= 1 &&
		    p <= RSS_PHASES) {
			resident[p - 1] = r;
			live[p - 1] = l;
			seen |= 1 << (p - 1);
		}
	}
	if (f != NULL)
		fclose(f);
	else
		close(fds[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return "memdesc-rss failed";
	return seen == (1 << RSS_PHASES) - 1 ? NULL : "memdesc-rss printed no phase";
}

static void bm_resident(mdb_state *st)
{
	const struct mdb_alloc *a = mdb_alloc_get((long)mdb_arg(st, 0));
	double resident[RSS_PHASES] = { 0 }, live[RSS_PHASES] = { 0 };
	const char *err = NULL;
	char name[64];

	if (a == NULL || a->malloc == NULL) {
		mdb_skip_with_error(st, "allocator not built in (library missing at configure)");
		return;
	}
	mdb_set_label(st, a->name);
	while (mdb_keep_running(st))
		if ((err = run_child(a->name, resident, live)) != NULL)
			break;
	if (err != NULL) {
		mdb_skip_with_error(st, err);
		return;
	}
	for (int p = 0; p < RSS_PHASES; p++) {
		snprintf(name, sizeof(name), "rss_%s", phase_names[p]);
		mdb_counter(st, name, resident[p] / (1 << 20));
		snprintf(name, sizeof(name), "live_%s", phase_names[p]);
		mdb_counter(st, name, live[p] / (1 << 20));
	}
}
MDB_REGISTER(bm_resident, .name = "malloc/resident", .nargs = 1, .nsets = 4,
	     .arg_names = (const char *const[]){ "alloc" },
	     .args = (const int64_t[]){ 0, 1, 2, 3 }, .real_time = true, .min_time = 1e-6);
