// The watcher's one way to the outside: the native reactor (records in; the gate's answers and
// the few control calls out) and every read of the host. Live, that is the addon and the
// machine; in the replay tests, what a real run recorded (test/replay/).
import { liveReads, type HostReads } from '../host/reads.js';
import { loadAddon, type NativeOptions, type NativeRecord, type NativeWatcher } from '../native.js';

export interface Port {
  readonly reads: HostReads;
  /** Starts the reactor: its records reach onBatch, in order, until the returned handle is closed. */
  open(options: NativeOptions, onBatch: (batch: NativeRecord[]) => void): NativeWatcher;
}

export const livePort: Port = {
  reads: liveReads,
  open: (options, onBatch) => new (loadAddon().Watcher)(options, onBatch),
};
