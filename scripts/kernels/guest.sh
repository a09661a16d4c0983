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
# The checkout may sit below one of these (a fresh clone in /tmp): it stays where it is, on top
# of the guest's own tmpfs.
mkdir -p /mnt/ocinotify-checkout
mount --bind "$CHECKOUT" /mnt/ocinotify-checkout
for d in /run /tmp /var/tmp; do mount -t tmpfs tmpfs "$d"; done
mkdir -p "$CHECKOUT"
mount --bind /mnt/ocinotify-checkout "$CHECKOUT"
# This machine's /lib/modules has none for this kernel: request_module() (a mount of btrfs or
# xfs, a loop device: modules in Debian's kernels) finds them where fetch.sh unpacked them.
mkdir -p "/lib/modules/$(uname -r)"
mount --bind "$MODULES" "/lib/modules/$(uname -r)"

uname -r >"$JOB/release"
echo "kernel: $(uname -rv); tainted: $(cat /proc/sys/kernel/tainted)"
cd "$CHECKOUT" || busybox poweroff -f

# This root is an overlay on two filesystems (9p under tmpfs): the runtimes the tests run are
# keyed on it as the kernel keys them, which doctor shows beside stat(2)'s key.
node bin/ocinotify doctor | node -e '
	const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
	console.log(`mode: ${d.mode} (${d.modeReason})`);
	for (const r of d.runtimes) console.log(`${r.path} on ${r.filesystem}: kernel key ${r.kernelKey}, stat key ${r.statKey}${r.keyError ? `: ${r.keyError}` : ""}`);'
# CI=true: a test that cannot run here fails instead of skipping. Under TCG runc runs 10 to 60
# times slower than on this machine: the per-test budgets (vitest.config.ts), which are about
# the machine, grow tenfold; the tests scale their own limits with a runc create they time
# (test/kit/lab.ts, unheldRuncMs), and the kit's waits for what should happen as much as the
# budgets (OCINOTIFY_TEST_WAIT_SCALE, test/kit/wait.ts). Through a pipe: plain
# output, without the cursor codes vitest sends a terminal.
{
	HOME=/root CI=true NO_COLOR=1 OCINOTIFY_TEST_WAIT_SCALE=10 node node_modules/vitest/vitest.mjs run \
		--testTimeout=1200000 --hookTimeout=600000 $TESTS
	echo $? >"$JOB/status"
} 2>&1 | cat
# Debian's kernels taint themselves on the first fanotify permission mark: shown, not judged.
echo "kernel tainted: $(cat /proc/sys/kernel/tainted)"
sync
busybox poweroff -f
