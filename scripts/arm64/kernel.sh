#!/bin/bash
# Debian's arm64 kernel, the one linux-image-arm64 of this machine's suite depends on, in the
# cache: its package and its BTF. Prints the kernel's directory (the .deb, boot/vmlinuz-*), or
# with `btf` the path of its BTF - the bytes /sys/kernel/btf/vmlinux shows on that kernel -
# from which the arm64 BPF object is built.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${OCINOTIFY_ARM64_CACHE:-/var/cache/ocinotify-arm64}
pkg=$("$here/apt.sh" apt-cache depends linux-image-arm64 | sed -n 's/^ *Depends: \(linux-image-[^ ]*-arm64\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
	echo "kernel.sh: no Debian arm64 kernel found (linux-image-arm64's dependency)" >&2
	exit 1
fi
dir=$cache/kernel/${pkg#linux-image-}
mkdir -p "$cache/kernel"
exec 7>"$cache/kernel/lock"
flock 7
if [ ! -f "$dir/vmlinux.btf" ]; then
	rm -rf "$dir" "$dir.tmp" && mkdir -p "$dir.tmp"
	(cd "$dir.tmp" && "$here/apt.sh" apt-get download -qq "$pkg")
	dpkg-deb --fsys-tarfile "$dir.tmp"/"$pkg"_*.deb | tar -x -C "$dir.tmp" ./boot
	node "$here/kernel-btf.mjs" "$dir.tmp"/boot/vmlinuz-* "$dir.tmp/vmlinux.btf"
	mv "$dir.tmp" "$dir"
fi
case ${1:-} in
btf) echo "$dir/vmlinux.btf" ;;
*) echo "$dir" ;;
esac
