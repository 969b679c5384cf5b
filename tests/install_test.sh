#!/usr/bin/env bash
#  make install / uninstall into a scratch DESTDIR, then build the README's
#  embedding example against the installed headers, library and zkit.pc,
#  and run it: the README's example must compile and work as printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zk-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
prefix=/opt/zkit

make -s -C "$root" --no-print-directory ZK_DEPS_OK=1 install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
for f in bin/zkit-proxy bin/zkit-forwarder bin/zkit-worker bin/zkit-cat lib/libzkit.a \
         lib/libzkit.so lib/libzkit.so.0 include/zkit.h include/zk_proxy.h lib/pkgconfig/zkit.pc; do
    [ -e "$dest$prefix/$f" ] || { echo "install_test: $f not installed" >&2; exit 1; }
done
soname=$(objdump -p "$dest$prefix/lib/libzkit.so" | awk '/SONAME/ {print $2}')
[ "$soname" = libzkit.so.0 ] || { echo "install_test: soname is '$soname'" >&2; exit 1; }
grep -q "^prefix=$prefix\$" "$dest$prefix/lib/pkgconfig/zkit.pc"

#  The README's example, compiled with pkg-config against the installed tree.
sed -n '/<!-- example: embed -->/,/^```$/p' "$root/README.md" | sed '1,2d;$d' >"$tmp/example.c"
[ -s "$tmp/example.c" ] || { echo "install_test: no example found in README.md" >&2; exit 1; }
export PKG_CONFIG_PATH=$dest$prefix/lib/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dest
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/example" "$tmp/example.c" $(pkg-config --cflags --libs zkit)
output=$(LD_LIBRARY_PATH=$dest$prefix/lib timeout 10 "$tmp/example")
echo "example printed: $output"
[ "$output" = "hello through the proxy" ] || { echo "install_test: unexpected output" >&2; exit 1; }

make -s -C "$root" --no-print-directory ZK_DEPS_OK=1 uninstall DESTDIR="$dest" PREFIX="$prefix" >/dev/null
left=$(find "$dest" -type f -o -type l)
[ -z "$left" ] || { echo "install_test: uninstall left: $left" >&2; exit 1; }
echo "install_test: ok"
