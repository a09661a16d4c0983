#!/bin/sh
# make test-kernels: boots each kernel under qemu on this machine's / (read-only, see init) with
# the checkout's build and runs TESTS inside (guest.sh). Fails if a test fails, if the guest
# does not finish within KERNEL_TIMEOUT seconds, or if the kernel logged a lockup, a BUG or a
# WARNING. Each run's files (env, status, console.log: the kernel's log) stay in
# $CACHE/runs/RELEASE until the next run of that kernel; runs of one kernel take turns
# ($CACHE/runs/RELEASE.lock).
#   $@: kernels as fetch.sh takes them ("6.1", "6.12", "6.1.0-47-amd64", ...)
set -eu
here=$(dirname "$(readlink -f "$0")")
checkout=$(dirname "$(dirname "$here")")
CACHE=${OCINOTIFY_KERNEL_CACHE:-/var/cache/ocinotify-kernels}
export OCINOTIFY_KERNEL_CACHE=$CACHE
: "${TESTS:?the test files to run in each guest}"
KERNEL_TIMEOUT=${KERNEL_TIMEOUT:-3600}
# The kernel's own words for a stuck CPU, a stuck task, a broken invariant.
BAD_LOG='soft lockup|BUG:|WARNING:|hung_task'

qemu=
# timeout runs qemu in a process group of its own, out of reach of the terminal's ^C: qemu
# must not outlive this script, whatever ends it.
trap '[ -z "$qemu" ] || { kill "$qemu" 2>/dev/null; wait "$qemu"; }' EXIT
trap 'exit 130' INT TERM

# Boots one unpacked kernel tree, runs TESTS in it, and says whether all went well.
boot() {
	tree=$1
	rel=$(basename "$tree")
	job=$CACHE/runs/$rel
	# One run of a kernel at a time: a second (another checkout's make test, say) would
	# remove this one's job directory while its guest runs. It waits its turn; the lock
	# goes with fd 9, when the next kernel's is taken or this script ends.
	mkdir -p "$CACHE/runs"
	exec 9>"$CACHE/runs/$rel.lock"
	if ! flock -n 9; then
		echo "== linux-image-$rel: another run of this kernel is going on ($job), waiting for it"
		flock 9
	fi
	initrd=$("$here/initramfs.sh" "$tree")
	rm -rf "$job"
	mkdir -p "$job"
	cat >"$job/env" <<-ENV
		CHECKOUT='$checkout'
		TESTS='$TESTS'
		MODULES='$tree/lib/modules/$rel'
	ENV
	echo "== linux-image-$rel: $TESTS"
	start=$(date +%s)
	# No KVM here (nested KVM spins): TCG. thread=single, both vCPUs on one host thread: with a
	# thread each, 6.12 took an "Oops: int3" in live code patching within a minute (a static
	# key that runc's cpuset cgroups flip, with execs on the other vCPU; no ocinotify needed).
	# norandmaps: TCG reuses the code it translated only at the same virtual address; with
	# randomised mappings every exec translated libc and the runtime anew, and took 3 to 5
	# times longer. ttyS0 is the kernel's console, into a file; ttyS1 is the guest's own
	# output, onto ours.
	timeout --kill-after=10 "$KERNEL_TIMEOUT" qemu-system-x86_64 \
		-accel tcg,thread=single -cpu max -smp 2 -m 2048 \
		-nodefaults -no-reboot -display none \
		-kernel "$tree/boot/vmlinuz-$rel" -initrd "$initrd" -append "console=ttyS0 panic=-1 norandmaps" \
		-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
		-device virtio-9p-pci,fsdev=root,mount_tag=root \
		-fsdev local,id=job,path="$job",security_model=none \
		-device virtio-9p-pci,fsdev=job,mount_tag=job \
		-serial file:"$job/console.log" -serial stdio &
	qemu=$!
	rc=0
	wait "$qemu" || rc=$?
	qemu=
	took=$(($(date +%s) - start))

	ok=true
	if [ ! -f "$job/status" ]; then
		echo "$rel: the guest did not finish (qemu exit $rc after ${took}s; timeout ${KERNEL_TIMEOUT}s): $job/console.log"
		ok=false
	elif [ "$(cat "$job/status")" != 0 ]; then
		echo "$rel: tests failed (exit $(cat "$job/status"))"
		ok=false
	fi
	if grep -E "$BAD_LOG" "$job/console.log"; then
		echo "$rel: the kernel log has the lines above: $job/console.log"
		ok=false
	fi
	verdict="$rel: $($ok && echo passed || echo FAILED) in ${took}s"
	echo "== $verdict"
	summary="$summary
$verdict"
	$ok
}

summary=
status=0
for k in "$@"; do
	tree=$("$here/fetch.sh" "$k")
	boot "$tree" || status=1
done
echo "== kernels:$summary"
exit $status
