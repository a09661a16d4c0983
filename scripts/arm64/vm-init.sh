#!/bin/sh
# PID 1 of the arm64 test VM (scripts/arm64/vm.sh): mounts what runc and the watcher need,
# runs the job the host shares over 9p (tag "job", its script `run`), then powers off.
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
modprobe 9pnet_virtio && modprobe 9p
mkdir -p /job
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job /job
/job/run
echo "ocinotify-vm: job exited $?"
busybox poweroff -f
