#!/bin/sh
# compare.sh LIB MT_ALLOC SRCDIR [RUNS]: wall time and peak RSS of the real programs of
# the preload tests under glibc, memdesc (LIB), jemalloc and mimalloc; the median of
# RUNS (default 3) runs each, and the ratio to glibc. Not a test: the figures of the
# issue 5 report come from here (use a Release build of LIB).
set -eu
lib=$1
mt=$2
src=$3
runs=${4:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
je=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
mi=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2

awk 'BEGIN { x = 12345; for (i = 0; i < 1000000; i++) { x = (x * 1103515245 + 12345) % 2147483648; printf "%d line %x\n", x % 100000, x } }' >"$tmp/lines.txt"
inc="-D_GNU_SOURCE -I$src/xarray -I$src/alloc -I$src/memdesc -I/usr/include/x86_64-linux-gnu"

median() {
	sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

printf "%-8s %-9s %9s %9s %10s %9s\n" program malloc "time(s)" "x glibc" "peakRSS(KiB)" "x glibc"
for p in python mt gcc sort; do
	for m in glibc memdesc jemalloc mimalloc; do
		case $m in
		glibc) pre= ;;
		memdesc) pre=$lib ;;
		jemalloc) pre=$je ;;
		mimalloc) pre=$mi ;;
		esac
		: >"$tmp/t"
		: >"$tmp/m"
		i=0
		while [ $i -lt "$runs" ]; do
			( export LD_PRELOAD=$pre; /usr/bin/time -f "%e %M" -o "$tmp/one" sh -c '
				case $0 in
				python) python3 "$1/tests/preload/alloc_heavy.py" ;;
				mt) "$2" ;;
				gcc) for f in xarray/xarray.c alloc/vmem.c alloc/slab.c memdesc/pages.c; do
					gcc -O2 $4 -c "$1/$f" -o "$3/o.o"; done ;;
				sort) sort "$3/lines.txt" | md5sum ;;
				esac' "$p" "$src" "$mt" "$tmp" "$inc" >/dev/null )
			awk '{ print $1 }' "$tmp/one" >>"$tmp/t"
			awk '{ print $2 }' "$tmp/one" >>"$tmp/m"
			i=$((i + 1))
		done
		t=$(median <"$tmp/t")
		r=$(median <"$tmp/m")
		if [ $m = glibc ]; then
			t0=$t
			r0=$r
		fi
		printf "%-8s %-9s %9s %9s %10s %9s\n" "$p" "$m" "$t" \
			"$(awk -v a="$t" -v b="$t0" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" "$r" \
			"$(awk -v a="$r" -v b="$r0" 'BEGIN { printf "%.2f", a / b }')"
	done
done
