#!/bin/sh
# install.sh BUILDDIR SRCDIR: cmake --install into a temporary prefix, then build a
# small program against the installed copy with pkg-config and with find_package, run
# both, and run memdesc-run from the prefix.
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
for f in include/md_malloc.h bin/memdesc-run; do
	[ -e "$prefix/$f" ] || { echo "install: $f missing" >&2; exit 1; }
done
libdir=$(dirname "$(find "$prefix" -name libmemdesc.so | head -1)")
[ -e "$libdir/libmemdesc-malloc.so" ] || { echo "install: libmemdesc-malloc.so missing" >&2; exit 1; }

# 1. pkg-config
PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_PATH
cc -o "$tmp/c-pkgconfig" "$src/tests/preload/consumer/consumer.c" \
	$(pkg-config --cflags --libs memdesc) -Wl,-rpath,"$libdir"
out=$("$tmp/c-pkgconfig")
[ "$out" = "installed 1" ] || { echo "pkg-config consumer printed '$out'" >&2; exit 1; }
echo "pkg-config: $(pkg-config --libs memdesc) -> ok"

# 2. find_package
cmake -S "$src/tests/preload/consumer" -B "$tmp/cbuild" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_BUILD_RPATH="$libdir" >"$tmp/cmake.log" 2>&1 ||
	{ cat "$tmp/cmake.log" >&2; exit 1; }
cmake --build "$tmp/cbuild" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
out=$("$tmp/cbuild/consumer")
[ "$out" = "installed 1" ] || { echo "find_package consumer printed '$out'" >&2; exit 1; }
echo "find_package(memdesc): memdesc::memdesc -> ok"

# 3. memdesc-run from the prefix preloads the installed override library.
err=$("$prefix/bin/memdesc-run" -o verbose=1 sh -c 'echo hi >/dev/null' 2>&1 >/dev/null)
case "$err" in
*"memdesc: options:"*) echo "memdesc-run: ok" ;;
*) echo "memdesc-run did not preload: '$err'" >&2; exit 1 ;;
esac
