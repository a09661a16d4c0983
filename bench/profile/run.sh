#!/bin/bash
# bench/profile/run.sh [N] [CHECKOUT] [CREATORS]: N runc containers (shim-like argv) under
# bench/profile/steps.mjs, one after another, or from CREATORS parallel creators (a storm: no
# pause between containers), and with PROFILE_HOP=1 bench/profile/hop.bt (bpftrace) alongside.
# PROFILE_STEPS=0: no step timers (steps.mjs). PROFILE_NODE: node flags for the watcher, e.g.
# "--cpu-prof --cpu-prof-dir=DIR --cpu-prof-interval=20" (cpu.mjs reads the profile).
# As root, on a quiet machine; leaves nothing behind.
set -euo pipefail
N=${1:-300}
here=$(cd "$(dirname "$0")" && pwd)
checkout=${2:-$(cd "$here/../.." && pwd)}
dir=$(mktemp -d /tmp/ocinotify-profile.XXXXXX)
trap 'for id in $(runc --root "$dir/state" list -q 2>/dev/null); do runc --root "$dir/state" delete -f "$id"; done; rm -rf "$dir"' EXIT
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/dev" "$dir/rootfs/sys" "$dir/b"
cp /bin/busybox "$dir/rootfs/bin/" && ln -s busybox "$dir/rootfs/bin/true"
(cd "$dir/b" && runc spec)
node -e '
const fs = require("fs"); const [file, rootfs] = process.argv.slice(1);
const s = JSON.parse(fs.readFileSync(file, "utf8"));
s.process.terminal = false; s.process.args = ["/bin/true"]; s.root = { path: rootfs, readonly: true };
s.annotations = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-name": "pod-prof",
  "io.kubernetes.cri.sandbox-namespace": "prof", "io.kubernetes.cri.sandbox-uid": "uid-prof",
  "io.kubernetes.cri.container-name": "c", "io.kubernetes.cri.sandbox-id": "a".repeat(64) };
fs.writeFileSync(file, JSON.stringify(s));' "$dir/b/config.json" "$dir/rootfs"
if [ "${PROFILE_HOP:-0}" = 1 ]; then
  unshare --mount --propagation private sh -c "mount -t tracefs tracefs /sys/kernel/tracing && exec bpftrace $here/hop.bt" > "$dir/hop.out" 2>&1 &
  tracer=$!
  sleep 8
fi
node ${PROFILE_NODE:-} "$here/steps.mjs" "$checkout" > "$dir/steps.out" &
watcher=$!
sleep 1.5
creators=${3:-1}
creator() {
  for i in $(seq "$1" "$creators" "$N"); do
    runc --root "$dir/state" --log "$dir/runc.log" --log-format json create --bundle "$dir/b" --pid-file "$dir/b/init-$i.pid" "prof-$i" </dev/null >/dev/null 2>&1
    runc --root "$dir/state" start "prof-$i"
    [ "$creators" = 1 ] && sleep 0.03
    runc --root "$dir/state" delete -f "prof-$i"
  done
}
pids=()
for c in $(seq 1 "$creators"); do creator "$c" & pids+=($!); done
wait "${pids[@]}"
sleep 0.5
kill -INT "$watcher"; wait "$watcher" || true
cat "$dir/steps.out"
if [ "${PROFILE_HOP:-0}" = 1 ]; then
  kill -INT "$tracer"; wait "$tracer" || true
  node "$here/hop.mjs" < "$dir/hop.out"
fi
