// The watcher's one way to the outside: the native reactor (records in; the gate's answers and
// the few control calls out), every read of the host, and the one thing it writes: what it
// learnt that a watcher started again needs. Live, that is the addon and the machine; in the
// replay tests, what a real run recorded (test/replay/).
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { liveReads, type HostReads } from '../host/reads.js';
import { loadAddon, type NativeOptions, type NativeRecord, type NativeWatcher } from '../native.js';

export interface Port {
  readonly reads: HostReads;
  /** Starts the reactor: its records reach onBatch, in order, until the returned handle is closed. */
  open(options: NativeOptions, onBatch: (batch: NativeRecord[]) => void): NativeWatcher;
  /** Where remember() writes, read back through reads. */
  readonly memoryDir: string;
  /** Replaces the file `name` under memoryDir with text; best effort (a watcher without root has none). */
  remember(name: string, text: string): void;
}

/** tmpfs on a node: gone with a reboot, like every container it remembers. */
const MEMORY_DIR = '/run/ocinotify';

export const livePort: Port = {
  reads: liveReads,
  open: (options, onBatch) => new (loadAddon().Watcher)(options, onBatch),
  memoryDir: MEMORY_DIR,
  remember: (name, text) => {
    try {
      mkdirSync(MEMORY_DIR, { recursive: true, mode: 0o700 });
      const file = join(MEMORY_DIR, name);
      writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    } catch {
      // not root, or a read-only /run: a restarted watcher then finds the host's containers only
    }
  },
};
