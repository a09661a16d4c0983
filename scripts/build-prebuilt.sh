#!/bin/bash
# Builds prebuilds/linux-<arch>/ocinotify.node: the addon with libbpf, libelf and zlib linked
# in statically, so that it needs nothing beyond libc and libstdc++ at run time; and beside it
# ocinotify-watchdog, the process the addon spawns (libstdc++ linked in: it needs only libc).
#
#   scripts/build-prebuilt.sh [x64|arm64]      (default: this machine's architecture)
#
# Debian's libbpf.a and libelf.a are not position-independent and cannot go into a shared
# object, so the three libraries are rebuilt with -fPIC from Debian's own source packages
# (the same versions the shared libraries come from) into a cache outside the tree, one
# prefix per architecture: a fresh clone reuses them, and `node-gyp rebuild` (which deletes
# build/) cannot touch them.
#
# Another architecture is cross-built with Debian's cross toolchain (g++-aarch64-linux-gnu),
# its BPF object compiled for that architecture against the BTF of Debian's kernel for it
# (scripts/arm64/kernel.sh). Needs root for apt (deb-src, apt-get source).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
host=$(node -p process.arch)
arch=${1:-$host}
static=${OCINOTIFY_STATIC_DIR:-/var/cache/ocinotify-static}
src=$static/src
work=$static/$arch
prefix=$work/prefix
jobs=$(nproc)
out=prebuilds/linux-$arch/ocinotify.node
watchdog=prebuilds/linux-$arch/ocinotify-watchdog

case $arch in
x64) triplet=x86_64-linux-gnu ;;
arm64) triplet=aarch64-linux-gnu ;;
*)
	echo "build-prebuilt: no prebuilt for $arch (x64, arm64)" >&2
	exit 2
	;;
esac
if [ "$arch" != "$host" ] && [ "$arch" != arm64 ]; then
	echo "build-prebuilt: cross-building for $arch is not supported (only arm64 from x64)" >&2
	exit 2
fi
# The triplet-named tools exist natively too (x86_64-linux-gnu-gcc): one path for both cases.
export CC=$triplet-gcc CXX=$triplet-g++ AR=$triplet-ar
command -v "$CXX" >/dev/null || {
	echo "build-prebuilt: no $CXX (Debian's g++ natively, g++-aarch64-linux-gnu for arm64 on x64)" >&2
	exit 1
}

# One build at a time per cache: a release pack and `make test` may run at once.
mkdir -p "$static"
exec 9>"$static/lock"
flock 9

# The source package of the version installed (what the headers and the shared libraries come
# from). A mirror may list a newer version (a security update) whose source it does not serve,
# or drop the installed one: then each other version it lists, newest first, until one comes.
fetch_source() {
	local want name v tried=""
	want=$(dpkg-query -W -f='${source:Package}=${source:Version}' "$1")
	name=${want%%=*}
	for v in "${want#*=}" $(apt-cache showsrc "$name" | sed -n 's/^Version: //p' | sort -rVu); do
		case " $tried " in *" $v "*) continue ;; esac
		tried="$tried $v"
		apt-get source -qq -o APT::Sandbox::User=root "$name=$v" && return 0
		echo "build-prebuilt: the source of $name $v could not be fetched; trying another version" >&2
	done
	echo "build-prebuilt: no version of the source package $name could be fetched (tried:$tried)" >&2
	return 1
}

fetch_sources() {
	[ -d "$src" ] && ls -d "$src"/libbpf-*/ "$src"/elfutils-*/ "$src"/zlib-*/ >/dev/null 2>&1 && return
	scripts/debian-sources.sh
	rm -rf "$src" "$src.tmp" && mkdir -p "$src.tmp"
	(cd "$src.tmp" && for pkg in libbpf1 libelf1 zlib1g; do fetch_source "$pkg"; done)
	mv "$src.tmp" "$src"
}

# Each architecture builds in a copy of the pristine sources (zlib and elfutils build in place).
copy_sources() {
	[ -d "$work/src" ] && return
	rm -rf "$work/src.tmp" && mkdir -p "$work/src.tmp"
	cp -r "$src"/libbpf-*/ "$src"/elfutils-*/ "$src"/zlib-*/ "$work/src.tmp/"
	mv "$work/src.tmp" "$work/src"
}

build_zlib() {
	[ -f "$prefix/lib/libz.a" ] && return
	(cd "$work"/src/zlib-*/ && CHOST=$triplet CFLAGS="-O2 -fPIC" ./configure --static --prefix="$prefix" >/dev/null &&
		make -j"$jobs" libz.a >/dev/null && make install >/dev/null)
}

# Only lib/ (libeu, which libelf uses) and libelf/ are built: the rest of elfutils is not needed.
build_libelf() {
	[ -f "$prefix/lib/libelf.a" ] && return
	(cd "$work"/src/elfutils-*/ &&
		CFLAGS="-O2 -fPIC" CPPFLAGS="-I$prefix/include" LDFLAGS="-L$prefix/lib" ./configure -q --host="$triplet" --prefix="$prefix" \
			--disable-debuginfod --disable-libdebuginfod --disable-nls \
			--without-bzlib --without-lzma --without-zstd >/dev/null &&
		make -C lib -j"$jobs" >/dev/null && make -C libelf -j"$jobs" libelf_pic.a >/dev/null &&
		mkdir -p "$prefix/lib" "$prefix/include" &&
		cp lib/libeu.a "$prefix/lib/libeu.a" && cp libelf/libelf_pic.a "$prefix/lib/libelf.a" &&
		cp libelf/libelf.h libelf/gelf.h libelf/nlist.h "$prefix/include/")
}

build_libbpf() {
	[ -f "$prefix/lib/libbpf.a" ] && return
	mkdir -p "$work/obj/libbpf"
	make -C "$(echo "$work"/src/libbpf-*/src)" -j"$jobs" BUILD_STATIC_ONLY=1 OBJDIR="$work/obj/libbpf" \
		PREFIX="$prefix" LIBDIR="$prefix/lib" CFLAGS="-g -O2 -fPIC" EXTRA_CFLAGS="-I$prefix/include" install >/dev/null
}

# The BPF object and its skeleton for arch: this machine's kernel BTF natively (bpf/.output,
# as `make bpf`), Debian's arm64 kernel's BTF when cross-building. Prints the skeleton's dir.
build_bpf() {
	if [ "$arch" = "$host" ]; then
		make --no-print-directory bpf >&2
		echo bpf/.output
		return
	fi
	local btf
	btf=$(scripts/arm64/kernel.sh btf)
	make --no-print-directory bpf ARCH=arm64 OUT="$work/bpf" BTF="$btf" >&2
	echo "$work/bpf"
}

# In a scratch copy of the sources, so that build/Release (the development addon) is untouched.
# Removed however the script ends (a failed step exits it from inside the function).
scratch=
trap '[ -z "$scratch" ] || rm -rf "$scratch"' EXIT
build_addon() {
	local skel=$1 dir
	scratch=$(mktemp -d /tmp/ocinotify-prebuilt.XXXXXX)
	dir=$scratch
	cp -r addon binding.gyp package.json "$dir/"
	mkdir -p "$dir/bpf/.output"
	cp bpf/*.c bpf/*.h "$dir/bpf/"
	cp "$skel/ocinotify.skel.h" "$dir/bpf/.output/"
	ln -s "$root/node_modules" "$dir/node_modules"
	(cd "$dir" && OCINOTIFY_STATIC_PREFIX="$prefix" npx node-gyp rebuild --silent --arch="$arch")
	mkdir -p "$(dirname "$out")"
	"$triplet-strip" --strip-unneeded -o "$out.tmp" "$dir/build/Release/ocinotify.node"
	"$triplet-strip" -o "$watchdog.tmp" "$dir/build/Release/ocinotify-watchdog"
	mv "$out.tmp" "$out"
	mv "$watchdog.tmp" "$watchdog"
	rm -rf "$scratch"
	scratch=
}

# The promise of the prebuilt: the right machine, no shared library beyond the C and C++ runtimes.
check_result() {
	local file=$1 allowed=$2 machine needed extra
	machine=$(readelf -h "$file" | sed -n 's/^ *Machine: *//p')
	case $arch:$machine in
	x64:*X86-64* | arm64:AArch64) ;;
	*)
		echo "build-prebuilt: $file is for $machine, not $arch" >&2
		exit 1
		;;
	esac
	needed=$(readelf -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
	extra=$(grep -vE "^($allowed)\.so\.[0-9]+\$|^ld-linux" <<<"$needed" || true)
	if [ -n "$extra" ]; then
		echo "build-prebuilt: $file needs $extra" >&2
		exit 1
	fi
	echo "$file ($machine, $(stat -c %s "$file") bytes) needs: $(tr '\n' ' ' <<<"$needed")"
}

skel=$(build_bpf)
fetch_sources
copy_sources
build_zlib
build_libelf
build_libbpf
build_addon "$skel"
check_result "$out" 'libc|libm|libstdc\+\+|libgcc_s'
check_result "$watchdog" 'libc|libm'
