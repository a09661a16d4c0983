#!/bin/bash
# Builds prebuilds/linux-<arch>/ocinotify.node: the addon with libbpf, libelf and zlib linked
# in statically, so that it needs nothing beyond libc and libstdc++ at run time; and beside it
# ocinotify-watchdog, the process the addon spawns (libstdc++ linked in: it needs only libc).
#
# Debian's libbpf.a and libelf.a are not position-independent and cannot go into a shared
# object, so the three libraries are rebuilt with -fPIC from Debian's own source packages
# (the same versions the shared libraries come from) into build-static/prefix. Not under
# build/: `node-gyp rebuild` deletes that directory.
#
# Runs on the machine's architecture: on an arm64 Debian 12 host it produces
# prebuilds/linux-arm64/ocinotify.node. Needs root for apt (deb-src, apt-get source).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
static=${OCINOTIFY_STATIC_DIR:-$root/build-static}
prefix=$static/prefix
src=$static/src
jobs=$(nproc)
arch=$(node -p process.arch)
out=prebuilds/linux-$arch/ocinotify.node
watchdog=prebuilds/linux-$arch/ocinotify-watchdog

fetch_sources() {
	[ -d "$src" ] && ls -d "$src"/libbpf-*/ "$src"/elfutils-*/ "$src"/zlib-*/ >/dev/null 2>&1 && return
	scripts/debian-sources.sh
	rm -rf "$src" && mkdir -p "$src"
	(cd "$src" && apt-get source -qq libbpf elfutils zlib)
}

build_zlib() {
	[ -f "$prefix/lib/libz.a" ] && return
	(cd "$src"/zlib-*/ && CFLAGS="-O2 -fPIC" ./configure --static --prefix="$prefix" >/dev/null &&
		make -j"$jobs" libz.a >/dev/null && make install >/dev/null)
}

# Only lib/ (libeu, which libelf uses) and libelf/ are built: the rest of elfutils is not needed.
build_libelf() {
	[ -f "$prefix/lib/libelf.a" ] && return
	(cd "$src"/elfutils-*/ &&
		CFLAGS="-O2 -fPIC" CPPFLAGS="-I$prefix/include" LDFLAGS="-L$prefix/lib" ./configure -q --prefix="$prefix" \
			--disable-debuginfod --disable-libdebuginfod --disable-nls \
			--without-bzlib --without-lzma --without-zstd >/dev/null &&
		make -C lib -j"$jobs" >/dev/null && make -C libelf -j"$jobs" libelf_pic.a >/dev/null &&
		mkdir -p "$prefix/lib" "$prefix/include" &&
		cp lib/libeu.a "$prefix/lib/libeu.a" && cp libelf/libelf_pic.a "$prefix/lib/libelf.a" &&
		cp libelf/libelf.h libelf/gelf.h libelf/nlist.h "$prefix/include/")
}

build_libbpf() {
	[ -f "$prefix/lib/libbpf.a" ] && return
	mkdir -p "$static/obj/libbpf"
	make -C "$(echo "$src"/libbpf-*/src)" -j"$jobs" BUILD_STATIC_ONLY=1 OBJDIR="$static/obj/libbpf" \
		PREFIX="$prefix" LIBDIR="$prefix/lib" CFLAGS="-g -O2 -fPIC" EXTRA_CFLAGS="-I$prefix/include" install >/dev/null
}

# In a scratch copy of the sources, so that build/Release (the development addon) is untouched.
build_addon() {
	local dir
	dir=$(mktemp -d /tmp/ocinotify-prebuilt.XXXXXX)
	trap 'rm -rf "$dir"' RETURN
	cp -r addon bpf binding.gyp package.json "$dir/"
	ln -s "$root/node_modules" "$dir/node_modules"
	(cd "$dir" && OCINOTIFY_STATIC_PREFIX="$prefix" npx node-gyp rebuild --silent)
	mkdir -p "$(dirname "$out")"
	strip --strip-unneeded -o "$out.tmp" "$dir/build/Release/ocinotify.node"
	strip -o "$watchdog.tmp" "$dir/build/Release/ocinotify-watchdog"
	mv "$out.tmp" "$out"
	mv "$watchdog.tmp" "$watchdog"
}

# The promise of the prebuilt: no shared library beyond the C and C++ runtimes.
check_needed() {
	local file=$1 allowed=$2 needed extra
	needed=$(readelf -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
	extra=$(grep -vE "^($allowed)\.so\.[0-9]+\$|^ld-linux" <<<"$needed" || true)
	if [ -n "$extra" ]; then
		echo "build-prebuilt: $file needs $extra" >&2
		exit 1
	fi
	echo "$file ($(stat -c %s "$file") bytes) needs: $(tr '\n' ' ' <<<"$needed")"
}

make --no-print-directory bpf
fetch_sources
build_zlib
build_libelf
build_libbpf
build_addon
check_needed "$out" 'libc|libm|libstdc\+\+|libgcc_s'
check_needed "$watchdog" 'libc|libm'
