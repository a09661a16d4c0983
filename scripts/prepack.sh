#!/bin/bash
# npm's prepack (`npm pack`, `npm publish`): builds what the tarball ships - the TypeScript
# outputs and the prebuilt addons - or refuses to pack one without prebuilds/linux-x64.
#
# OCINOTIFY_PREBUILDS chooses the prebuilts built here:
#   auto (default)  x64, and arm64 where the cross toolchain is installed (make deps-arm64)
#   "x64 arm64"...  these, each a failure if it cannot be built
#   none            none: pack what prebuilds/ holds (prebuilts made on other machines)
# A prebuilt that is packed without being built here must not be older than the addon's
# sources.
set -euo pipefail
cd "$(dirname "$0")/.."
# stdout is npm's: `npm pack --json` prints the tarball's description there.
exec >&2

say() { echo "ocinotify prepack: $*"; }
refuse() {
	say "refusing to pack: $*"
	exit 1
}

case ${OCINOTIFY_PREBUILDS:-auto} in
auto)
	targets=x64
	command -v aarch64-linux-gnu-g++ >/dev/null && targets+=" arm64"
	;;
none) targets= ;;
*) targets=$OCINOTIFY_PREBUILDS ;;
esac

if [[ " $targets " != *" x64 "* ]] && [ ! -f prebuilds/linux-x64/ocinotify.node ]; then
	refuse "prebuilds/linux-x64/ocinotify.node is missing and OCINOTIFY_PREBUILDS=${OCINOTIFY_PREBUILDS:-auto} does not build it"
fi

make --no-print-directory deps
rm -rf dist
make --no-print-directory ts
for arch in $targets; do
	make --no-print-directory "prebuilds/linux-$arch/ocinotify.node" ||
		refuse "could not build prebuilds/linux-$arch/ocinotify.node (above); \`make prebuilt\` builds it as root on Debian 12 x64, \`make prebuilt-arm64\` the arm64 one"
done

for file in prebuilds/linux-*/ocinotify.node; do
	[ -f "$file" ] || continue
	make --no-print-directory -q "$file" ||
		refuse "$file is older than the addon's sources: rebuild it (make $file) or remove it"
	# The addon spawns its watchdog from beside itself: one without the other is no release.
	[ -x "$(dirname "$file")/ocinotify-watchdog" ] || refuse "$(dirname "$file")/ocinotify-watchdog is missing beside $file"
	say "packing $file ($(stat -c %s "$file") bytes)"
done
[ -f prebuilds/linux-x64/ocinotify.node ] || refuse "prebuilds/linux-x64/ocinotify.node is missing"
