#!/bin/sh
# PID 1 of the guest, after init: the mounts a node has, the tests, their exit status into the
# job share, power off. As PID 1 the shell also reaps the containers' orphaned processes while
# it waits for the tests. It must never exit: PID 1 exiting is a kernel panic.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# cgroup v2 alone: what Debian 12 and today's nodes boot with.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs shm /dev/shm
for d in /run /tmp /var/tmp; do mount -t tmpfs tmpfs "$d"; done
# This machine's /lib/modules has none for this kernel: request_module() (a mount of btrfs or
# xfs, a loop device: modules in Debian's kernels) finds them where fetch.sh unpacked them.
mkdir -p "/lib/modules/$(uname -r)"
mount --bind "$MODULES" "/lib/modules/$(uname -r)"

uname -r >"$JOB/release"
echo "kernel: $(uname -rv)"
cd "$CHECKOUT" || busybox poweroff -f

# This root is an overlay on two filesystems, where stat() and the kernel disagree on a file's
# device and the watcher cannot key a runtime binary yet (issue 12, point 1). Until it can,
# each runtime the watcher marks runs from a copy on tmpfs, a plain filesystem as on a node.
doctor=$(node bin/ocinotify doctor)
field() { echo "$doctor" | node -p "const d = JSON.parse(require('fs').readFileSync(0, 'utf8')); $1"; }
for bin in $(field 'd.runtimes.map((r) => r.path).join(" ")'); do
	mkdir -p "/run/runtimes${bin%/*}"
	cp -p "$bin" "/run/runtimes$bin" && mount --bind "/run/runtimes$bin" "$bin"
done
field '`mode: ${d.mode} (${d.modeReason}); runtimes on tmpfs: ${d.runtimes.map((r) => r.path).join(" ")}`'
# CI=true: a test that cannot run here fails instead of skipping. Under TCG runc runs 30 to 60
# times slower than on this machine: the per-test budgets (vitest.config.ts), which are about
# the machine, grow tenfold; the tests' own waits stay as they are. Through a pipe: plain
# output, without the cursor codes vitest sends a terminal.
{
	HOME=/root CI=true NO_COLOR=1 node node_modules/vitest/vitest.mjs run \
		--testTimeout=1200000 --hookTimeout=600000 $TESTS
	echo $? >"$JOB/status"
} 2>&1 | cat
sync
busybox poweroff -f
