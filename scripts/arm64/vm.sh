#!/bin/bash
# Boots the arm64 test VM (scripts/arm64/root.sh) on qemu-system-aarch64 with TCG, the host's
# JOB directory shared over 9p; the VM's init runs JOB/run and powers off, and qemu exits.
# The disk is a snapshot: a run leaves root.img as it was. The console goes to JOB/console.log.
# exec: the caller's child is qemu itself, to stop by its pid.
#
#   scripts/arm64/vm.sh VM_DIR JOB_DIR
set -euo pipefail
vm=$1
job=$2
exec qemu-system-aarch64 -M virt -cpu max -accel tcg,thread=multi -smp 2 -m 2048 \
	-nodefaults -no-reboot -display none -monitor none \
	-kernel "$vm/vmlinuz" -initrd "$vm/initrd.img" \
	-append "root=/dev/vda rw console=ttyAMA0 panic=-1 init=/sbin/ocinotify-vm-init" \
	-drive if=none,id=root,file="$vm/root.img",format=raw,snapshot=on -device virtio-blk-pci,drive=root \
	-fsdev local,id=job,path="$job",security_model=none -device virtio-9p-pci,fsdev=job,mount_tag=job \
	-device virtio-rng-pci \
	-serial file:"$job/console.log"
