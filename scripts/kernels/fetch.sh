#!/bin/sh
# Debian's own kernel, downloaded and unpacked under the cache (never installed, never into
# /boot). Prints the unpacked tree: boot/vmlinuz-RELEASE and lib/modules/RELEASE.
#   $1: a line, "6.1" or "6.12" (its newest point release in the apt index), or a release
#       exactly as the package names it ("6.1.0-47-amd64", "6.12.100+deb12-amd64").
set -eu
CACHE=${OCINOTIFY_KERNEL_CACHE:-/var/cache/ocinotify-kernels}

# Debian names a line's point releases 6.1.0-<abi>-amd64 and 6.12.<n>+deb12-amd64.
newest() {
	apt-cache pkgnames "linux-image-$1." |
		grep -E "^linux-image-$(echo "$1" | sed 's/\./\\./g')\.[0-9]+(-[0-9]+)?(\+deb[0-9]+)?-amd64$" |
		sed 's/^linux-image-//' | sort -V | tail -n 1
}

release() {
	case $1 in
	*-amd64) echo "$1" ;;
	*) r=$(newest "$1")
		# A fresh machine has no index yet; a stale one may miss the line.
		[ -n "$r" ] || { apt-get update -qq >&2 && r=$(newest "$1"); }
		[ -n "$r" ] || { echo "no linux-image-$1.*-amd64 in the apt index" >&2; exit 1; }
		echo "$r" ;;
	esac
}

rel=$(release "$1")
tree=$CACHE/$rel
if [ ! -f "$tree/lib/modules/$rel/modules.dep" ]; then
	mkdir -p "$CACHE/debs/$rel"
	(cd "$CACHE/debs/$rel" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$rel" >&2)
	rm -rf "$tree"
	dpkg-deb -x "$(ls "$CACHE/debs/$rel"/*.deb | sort -V | tail -n 1)" "$tree"
	# The package leaves modules.dep to its postinst: the initramfs and the guest's modprobe need it.
	depmod -b "$tree" "$rel"
fi
echo "$tree"
