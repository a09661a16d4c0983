#!/bin/bash
# apt for Debian's arm64 packages without changing this machine's dpkg (no foreign
# architecture added): a private configuration, arm64 only, its lists and downloads in the
# cache, the sources (mirror, suites) copied from this machine's deb entries. The lists are
# refreshed when a day old.
#
#   scripts/arm64/apt.sh apt-get download PKG...      (into the current directory)
#   scripts/arm64/apt.sh apt-cache depends PKG
set -euo pipefail
tool=$1
shift
cache=${OCINOTIFY_ARM64_CACHE:-/var/cache/ocinotify-arm64}/apt
mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/sources"
exec 8>"$cache/lock"
flock 8

apt_opts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Dir::State::status=/dev/null
	-o Dir::State::Lists="$cache/lists" -o Dir::Cache="$cache" -o Dir::Cache::archives="$cache/archives"
	-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$cache/sources"
	-o APT::Sandbox::User=root -o Debug::NoLocking=1)

# deb stanzas of the .sources files (deb-src ones would fetch the source indexes too), deb lines of the .list ones.
copy_sources() {
	local f
	rm -f "$cache/sources/"*
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -e "$f" ] && awk 'BEGIN { RS = ""; ORS = "\n\n" } /(^|\n)Types:[^\n]*[ \t]deb([ \t\n]|$)/' "$f" >"$cache/sources/$(basename "$f")"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -e "$f" ] && grep -E '^deb[[:space:]]' "$f" >"$cache/sources/$(basename "$f").list" || true
	done
}

if [ -z "$(find "$cache/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null)" ]; then
	copy_sources
	apt-get "${apt_opts[@]}" -qq update
fi
"$tool" "${apt_opts[@]}" "$@"
