#!/bin/sh
# Adds deb-src next to the Debian deb entries (idempotent) so that `apt-get source` works.
# Only Debian's archive is needed: the prebuilt addon's static libraries come from its sources.
set -eu
list=/etc/apt/sources.list.d/debian-src.sources
[ -f "$list" ] && exit 0
sed -n 's/^Types: deb$/Types: deb-src/; p' /etc/apt/sources.list.d/debian.sources > "$list.tmp"
mv "$list.tmp" "$list"
apt-get update -qq
