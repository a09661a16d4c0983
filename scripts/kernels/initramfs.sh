#!/bin/sh
# The initramfs that boots a guest on this machine's / (see init): busybox, init, and the
# modules init needs with their dependencies, in load order.
#   $1: a tree from fetch.sh. Writes $1/initramfs.cpio.gz, prints its path.
set -eu
tree=$1
rel=$(basename "$tree")
mods=$tree/lib/modules/$rel
here=$(dirname "$(readlink -f "$0")")
out=$tree/initramfs.cpio.gz

# The 9p share over virtio-pci, and overlayfs. Built in on some releases, modules on others
# (virtio_pci: a module in 6.1, built in in 6.12); their dependencies move between point
# releases, so they are read from modules.dep, never listed here.
NEEDED="virtio_pci 9pnet_virtio 9p overlay"

if [ "$out" -nt "$here/init" ] && [ "$out" -nt "$0" ]; then echo "$out"; exit 0; fi

stage=$(mktemp -d /tmp/ocinotify-initramfs.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/bin" "$stage/modules"
cp /bin/busybox "$stage/bin/"
cp "$here/init" "$stage/init"

# modules.dep path of a module name ("-" and "_" are one in module names).
path_of() {
	awk -F: -v m="$1" '{ n = $1; sub(/.*\//, "", n); sub(/\.ko(\.[a-z]+)?$/, "", n); gsub(/-/, "_", n)
		if (n == m) { print $1; exit } }' "$mods/modules.dep"
}

deps_of() {
	awk -F': *' -v p="$1" '$1 == p { print $2 }' "$mods/modules.dep"
}

# Dependencies first, each module once; busybox's insmod takes no .xz, so each is unpacked here.
add() {
	grep -qxF "$1" "$stage/modules/paths" 2>/dev/null && return
	local dep
	for dep in $(deps_of "$1"); do add "$dep"; done
	echo "$1" >>"$stage/modules/paths"
	local name=${1##*/}
	case $1 in
	*.ko.xz) xz -dc "$mods/$1" >"$stage/modules/${name%.xz}"; echo "${name%.xz}" ;;
	*.ko) cp "$mods/$1" "$stage/modules/"; echo "$name" ;;
	*) echo "no way to unpack $1" >&2; exit 1 ;;
	esac >>"$stage/modules/order"
}

: >"$stage/modules/order"
for m in $NEEDED; do
	p=$(path_of "$m")
	if [ -n "$p" ]; then add "$p"
	elif ! grep -qE "/$m\.ko" "$mods/modules.builtin"; then echo "$rel has no module $m" >&2; exit 1
	fi
done
rm "$stage/modules/paths"

(cd "$stage" && find . | cpio -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
