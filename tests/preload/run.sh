#!/bin/sh
# run.sh LIB CASE SRCDIR: a real program run twice, with the C library's malloc and with
# LIB (libmemdesc-malloc.so) preloaded; the outputs and exit statuses must be equal,
# and the preloaded run must show that memdesc's malloc started in the process
# (MEMDESC_OPTIONS=verbose=1 makes it say so on stderr).
#
# Cases: python (tests/preload/alloc_heavy.py), mt (tests/preload/mt_alloc, built by
# CMake: its path is the 4th argument), gcc (a multi-file C program compiled and run,
# plus a compile of one of our own sources), sort (a million deterministic lines).
#
# MEMDESC_PRELOAD_COMPARE=1 prints wall time and peak RSS of both runs (stderr).
set -eu
lib=$1
case=$2
src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# sysprog NAME: the Debian package's program (/usr/bin/NAME, installed by scripts/setup),
# not the first NAME in PATH (a pyenv or conda python3 is another program); PATH's where
# /usr/bin has none.
sysprog() {
	if [ -x "/usr/bin/$1" ]; then
		echo "/usr/bin/$1"
	else
		echo "$1"
	fi
}

# run_both NAME CMD...: runs CMD in $tmp/ref and $tmp/md (same relative layout).
run_both() {
	name=$1
	shift
	for side in ref md; do
		mkdir -p "$tmp/$side"
		if [ -d "$tmp/input" ]; then
			cp -r "$tmp/input/." "$tmp/$side/"
		fi
		rc=0
		if [ "$side" = md ]; then
			(cd "$tmp/$side" && LD_PRELOAD="$lib" MEMDESC_OPTIONS=verbose=1 "$@") \
				>"$tmp/$side.out" 2>"$tmp/$side.err" || rc=$?
		else
			(cd "$tmp/$side" && "$@") >"$tmp/$side.out" 2>"$tmp/$side.err" || rc=$?
		fi
		echo "$rc" >"$tmp/$side.rc"
	done
	if ! cmp -s "$tmp/ref.rc" "$tmp/md.rc"; then
		echo "$name: exit status $(cat "$tmp/ref.rc") without, $(cat "$tmp/md.rc") with memdesc" >&2
		sed 's/^/  stderr: /' "$tmp/md.err" | grep -v "memdesc: options:" | head -20 >&2
		exit 1
	fi
	if ! cmp -s "$tmp/ref.out" "$tmp/md.out"; then
		echo "$name: output differs under memdesc" >&2
		diff "$tmp/ref.out" "$tmp/md.out" | head -20 >&2
		exit 1
	fi
	if ! grep -q "memdesc: options:" "$tmp/md.err"; then
		echo "$name: memdesc's malloc did not start under LD_PRELOAD" >&2
		head -20 "$tmp/md.err" >&2
		exit 1
	fi
	if grep -v "memdesc: options:" "$tmp/md.err" | grep -q "memdesc:"; then
		echo "$name: memdesc reported an error" >&2
		grep "memdesc:" "$tmp/md.err" | head >&2
		exit 1
	fi
	echo "$name: same output ($(wc -c <"$tmp/md.out") bytes, exit $(cat "$tmp/md.rc")) with and without memdesc"
}

case "$case" in
python)
	run_both python "$(sysprog python3)" "$src/tests/preload/alloc_heavy.py"
	;;
mt)
	run_both mt_alloc "$4"
	;;
gcc)
	mkdir -p "$tmp/input"
	# A multi-file program: a hash table, a sorter and a driver.
	cat >"$tmp/input/table.c" <<'C'
#include <stdlib.h>
#include <string.h>
#include "prog.h"
struct ent { char *key; long val; struct ent *next; };
static struct ent *tab[4096];
static unsigned long hash(const char *s) { unsigned long h = 5381; while (*s) h = h * 33 + (unsigned char)*s++; return h; }
void table_add(const char *k, long v) {
	unsigned long h = hash(k) % 4096;
	for (struct ent *e = tab[h]; e; e = e->next) if (!strcmp(e->key, k)) { e->val += v; return; }
	struct ent *e = malloc(sizeof(*e)); e->key = strdup(k); e->val = v; e->next = tab[h]; tab[h] = e;
}
long table_dump(char ***keys, long **vals) {
	long n = 0, cap = 16; *keys = malloc(cap * sizeof(char *)); *vals = malloc(cap * sizeof(long));
	for (int i = 0; i < 4096; i++) for (struct ent *e = tab[i]; e; e = e->next) {
		if (n == cap) { cap *= 2; *keys = realloc(*keys, cap * sizeof(char *)); *vals = realloc(*vals, cap * sizeof(long)); }
		(*keys)[n] = e->key; (*vals)[n] = e->val; n++; }
	return n;
}
C
	cat >"$tmp/input/sorter.c" <<'C'
#include <stdlib.h>
#include <string.h>
#include "prog.h"
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
void sort_keys(char **k, long n) { qsort(k, (size_t)n, sizeof(*k), cmp); }
C
	cat >"$tmp/input/main.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "prog.h"
int main(void) {
	char buf[32]; unsigned long x = 1;
	for (int i = 0; i < 200000; i++) { x = x * 6364136223846793005UL + 1; snprintf(buf, sizeof(buf), "w%lu", (x >> 33) % 20000); table_add(buf, (long)(x % 7)); }
	char **k; long *v; long n = table_dump(&k, &v); sort_keys(k, n);
	unsigned long sum = 0; for (long i = 0; i < n; i++) sum = sum * 31 + (unsigned long)k[i][1] + (unsigned long)i;
	printf("%ld keys, %lu\n", n, sum); return 0;
}
C
	cat >"$tmp/input/prog.h" <<'C'
void table_add(const char *k, long v);
long table_dump(char ***keys, long **vals);
void sort_keys(char **k, long n);
C
	run_both gcc sh -c "gcc -O2 -Wall -o prog table.c sorter.c main.c && ./prog && \
gcc -O2 -c -D_GNU_SOURCE -I$src/xarray -I$(pkg-config --variable=includedir liburcu-bp)/x86_64-linux-gnu $src/xarray/xarray.c -o xa.o && \
gcc -O2 -c -D_GNU_SOURCE -I$src/alloc $src/alloc/vmem.c -o vmem.o && \
md5sum prog xa.o vmem.o"
	;;
sort)
	mkdir -p "$tmp/input"
	awk 'BEGIN { x = 12345; for (i = 0; i < 1000000; i++) { x = (x * 1103515245 + 12345) % 2147483648; printf "%d line %x\n", x % 100000, x } }' \
		>"$tmp/input/lines.txt"
	run_both sort sh -c "sort lines.txt | md5sum && sort -n -k1,1 -k3 --parallel=2 -S 64M lines.txt | md5sum && sort -u -k2 lines.txt | wc -l"
	;;
*)
	echo "run.sh: unknown case $case" >&2
	exit 2
	;;
esac
