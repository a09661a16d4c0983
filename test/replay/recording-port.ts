// A port that passes everything to the live one and writes down, in order, what went through
// it: the reactor's batches, the control calls and their answers, every host read and its
// result or error. Records are copied before the watcher sees them (it may rewrite argv); read
// results are kept as they are (nothing changes them, and a copy of a Buffer is no Buffer).
import type { ContainerWatcher } from '../../src/index.js';
import type { HostReads } from '../../src/host/reads.js';
import type { NativeOptions, NativeStatus, NativeWatcher } from '../../src/native.js';
import { livePort, type Port } from '../../src/watcher/port.js';
import {
  CONTROL_METHODS,
  listen,
  READ_METHODS,
  type ControlMethod,
  type Emission,
  type Fixture,
  type FixtureOptions,
  type GateSpec,
  type LogEntry,
  type ReadMethod,
} from './fixture.js';

export class RecordingPort implements Port {
  readonly log: LogEntry[] = [];
  readonly emitted: Emission[] = [];
  readonly reads: HostReads;
  private opened: NativeOptions | null = null;
  private status: NativeStatus | null = null;
  private batches = 0;
  /** after the watcher closes its reactor, nothing more is written down */
  private closed = false;

  constructor(private readonly live: Port = livePort) {
    this.reads = Object.fromEntries(READ_METHODS.map((m) => [m, this.recordRead(m)])) as unknown as HostReads;
  }

  get memoryDir(): string {
    return this.live.memoryDir;
  }

  /** Written through: what a scenario teaches the watcher, a real run would remember. */
  remember(name: string, text: string): void {
    this.live.remember(name, text);
  }

  open(options: NativeOptions, onBatch: Parameters<Port['open']>[1]): NativeWatcher {
    this.opened = structuredClone(options);
    const native = this.live.open(options, (batch) => {
      if (!this.closed) {
        this.log.push({ batch: structuredClone(batch) });
        this.batches++;
      }
      onBatch(batch);
    });
    this.status = structuredClone(native.status);
    return this.wrap(native);
  }

  /** Call right after constructing the watcher. */
  listen(watcher: ContainerWatcher): void {
    listen(watcher, (e) => this.emitted.push(e));
  }

  fixture(scenario: string, description: string, options: FixtureOptions, gate: GateSpec): Fixture {
    if (this.opened === null || this.status === null) throw new Error('the watcher never opened its port');
    return { scenario, description, options, gate, opened: this.opened, status: this.status, log: this.log, emitted: this.emitted };
  }

  private recordRead(method: ReadMethod): (...args: unknown[]) => unknown {
    const read = this.live.reads[method] as (...args: unknown[]) => unknown;
    return (...args) => {
      try {
        const result = read(...args);
        if (!this.closed) this.log.push({ read: method, args, result });
        return result;
      } catch (err) {
        const { code, message } = err as NodeJS.ErrnoException;
        if (!this.closed) this.log.push({ read: method, args, error: { code: String(code), message } });
        throw err;
      }
    };
  }

  private wrap(native: NativeWatcher): NativeWatcher {
    const calls = Object.fromEntries(
      CONTROL_METHODS.map((call) => [
        call,
        (...args: unknown[]) => {
          const result = (native[call] as (...a: unknown[]) => unknown)(...args);
          if (!this.closed) this.log.push({ call, args, result: result ?? null, afterBatch: this.batches });
          return result;
        },
      ]),
    );
    return {
      ...(calls as Pick<NativeWatcher, ControlMethod>),
      status: native.status,
      stats: () => native.stats(),
      close: () => {
        this.closed = true;
        native.close();
      },
    };
  }
}
