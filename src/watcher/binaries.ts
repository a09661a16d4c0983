// The runtime binaries watched: as found at start, then kept current as the reactor sees
// runtimes installed, upgraded (a new file at the path), removed, or found from their first exec.
import { runtimeNameOf, type RuntimeName } from '../argv.js';
import type { RuntimeChangeEvent } from '../events.js';
import type { RuntimeBinary } from '../host/runtimes.js';
import { BINARY_KIND, type BinaryRecord, type NativeStatus } from '../native.js';

/**
 * The binaries found at start that cannot be fully watched (not marked, or not keyed as the
 * kernel keys them), each as the `added` it was, with what it lacks: never a silent miss.
 */
export function unwatchedAtStart(binaries: readonly RuntimeBinary[], errors: NativeStatus['binaryErrors']): RuntimeChangeEvent[] {
  return errors.flatMap(({ path, error }) => {
    const b = binaries.find((r) => r.path === path);
    if (b === undefined) return [];
    return [{ type: 'runtime', time: new Date().toISOString(), change: 'added', runtime: b.runtime, path, foundAt: b.foundAt, markError: error, foundBy: 'path', mntns: null }];
  });
}

/** Updates binaries in place (the seams hold the same array) and says what changed. */
export function applyBinaryChange(binaries: RuntimeBinary[], rec: BinaryRecord): RuntimeChangeEvent {
  // A path names a binary in one mount namespace: a kind node's /usr/sbin/runc is not the host's.
  const mntns = rec.foundBy === 'exec' ? rec.mntns : undefined;
  const at = binaries.findIndex((b) => b.path === rec.path && b.mntns === mntns);
  // A candidate's runtime is the one its path was listed for; an exec's is its file's name.
  const runtime = binaries[at]?.runtime ?? (mntns === undefined ? (rec.runtime as RuntimeName) : (runtimeNameOf(rec.runtime) ?? 'runc'));
  if (at >= 0) binaries.splice(at, 1);
  if (rec.present) {
    const kind = rec.binaryKind === BINARY_KIND.monitor ? 'monitor' : 'runtime';
    binaries.push({ path: rec.path, foundAt: rec.foundAt, runtime, kind, ...(mntns === undefined ? {} : { mntns }) });
  }
  return {
    type: 'runtime',
    time: new Date().toISOString(),
    change: rec.present ? 'added' : 'removed',
    runtime,
    path: rec.path,
    foundAt: rec.foundAt,
    markError: rec.markError || null,
    foundBy: rec.foundBy,
    mntns: mntns ?? null,
  };
}
