#!/bin/sh
# The root filesystem of the kind-style node the nested tests run (test/kit/node.ts): Debian's
# unstable suite, where today's runtimes are (containerd 2.1, runc 1.3, crun 1.28), as a
# `debootstrap --variant=minbase` root. Built once and cached outside the tree; the mirror is
# this machine's own, read from its apt sources. Prints the root's path.
set -eu
cache=${OCINOTIFY_NODE_CACHE:-/var/cache/ocinotify-node}
suite=unstable
packages=containerd,runc,crun
# The cache's name says what it holds: another suite or package set is another root.
root=$cache/$suite-$(echo "$packages" | tr ',' '-')
if [ -f "$root.ready" ]; then
	echo "$root"
	exit 0
fi

# deb822 (.sources) or one-line (.list) entries: the first Debian archive that is not security's.
mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
	awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }
	     $1 == "deb" && $2 !~ /security/ && $2 !~ /^\[/ { print $2; exit }')
[ -n "$mirror" ] || { echo "node-root: no Debian mirror in this machine's apt sources" >&2; exit 1; }

mkdir -p "$cache"
rm -rf "$root.tmp"
start=$(date +%s)
debootstrap --variant=minbase --include="$packages" "$suite" "$root.tmp" "$mirror" >"$root.log" 2>&1 ||
	{ tail -20 "$root.log" >&2; exit 1; }
# Not a machine that boots: nothing in it may start services or keep the build's apt lists.
rm -rf "$root.tmp/var/lib/apt/lists"/* "$root.tmp/var/cache/apt"/*.bin
chroot "$root.tmp" dpkg-query -W -f '${Package} ${Version}\n' containerd runc crun >"$root.tmp/versions"
rm -rf "$root"
mv "$root.tmp" "$root"
echo "built in $(($(date +%s) - start)) s" >"$root.ready"
cat "$root/versions" >>"$root.ready"
echo "$root"
