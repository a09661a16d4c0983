// The runtime binaries watched: as found at start, then kept current as the reactor sees
// runtimes installed, upgraded (a new file at the path) or removed.
import type { RuntimeName } from '../argv.js';
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
    return [{ type: 'runtime', time: new Date().toISOString(), change: 'added', runtime: b.runtime, path, foundAt: b.foundAt, markError: error }];
  });
}

/** Updates binaries in place (the seams hold the same array) and says what changed. */
export function applyBinaryChange(binaries: RuntimeBinary[], rec: BinaryRecord): RuntimeChangeEvent {
  const at = binaries.findIndex((b) => b.path === rec.path);
  const runtime = binaries[at]?.runtime ?? (rec.runtime as RuntimeName);
  if (at >= 0) binaries.splice(at, 1);
  if (rec.present) {
    const kind = rec.binaryKind === BINARY_KIND.monitor ? 'monitor' : 'runtime';
    binaries.push({ path: rec.path, foundAt: rec.foundAt, runtime, kind });
  }
  return {
    type: 'runtime',
    time: new Date().toISOString(),
    change: rec.present ? 'added' : 'removed',
    runtime,
    path: rec.path,
    foundAt: rec.foundAt,
    markError: rec.markError || null,
  };
}
