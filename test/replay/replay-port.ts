// A port that plays a fixture back: reads answered from the recording, batches fed in order,
// the reactor's control calls modelled. The watcher's timers (the snapshot, its settle loop)
// run for real, so a batch waits until every read recorded before it has been asked again:
// the snapshot and the stream interleave as they did when the fixture was captured.
import { ContainerWatcher } from '../../src/index.js';
import type { HostReads } from '../../src/host/reads.js';
import type { NativeOptions, NativeRecord, NativeStats, NativeWatcher } from '../../src/native.js';
import { livePort, type Port } from '../../src/watcher/port.js';
import { gateOf, listen, READ_METHODS, type ControlMethod, type Emission, type Fixture, type LogEntry, type ReadMethod } from './fixture.js';

type ReadEntry = Extract<LogEntry, { read: ReadMethod }>;
type CallEntry = Extract<LogEntry, { call: ControlMethod }>;

/** How long the replay waits for a recorded read that does not come before it says so. */
const STALL_MS = 3000;

const NO_STATS: NativeStats = {
  held: 0,
  heldNow: 0,
  answeredByJs: 0,
  expired: 0,
  answeredNative: 0,
  ringbufFull: 0,
  queueOverflow: 0,
  enterUnmatched: 0,
  answeredByWatchdog: 0,
  watchdogPid: 0,
  watchdogStarts: 0,
  watchdogTakeovers: 0,
  watchdogAllowed: 0,
  watchdogDenied: 0,
};

function readKey(method: string, args: readonly unknown[]): string {
  return `${method} ${JSON.stringify(args)}`;
}

export class ReplayPort implements Port {
  readonly reads: HostReads;
  /** the live port's: its file is read back as the recording read it */
  readonly memoryDir = livePort.memoryDir;
  /** the control calls the replayed watcher made, as the fixture has them */
  readonly calls: CallEntry[] = [];
  /** what went wrong: reads never recorded, recorded reads never asked */
  readonly problems: string[] = [];
  /** emissions, each with the number of batches delivered before it */
  readonly emitted: (Emission & { batch: number })[] = [];
  opened: NativeOptions | null = null;
  private readonly answers = new Map<string, { entry: ReadEntry; order: number }[]>();
  private readonly nextAnswer = new Map<string, number>();
  /** log index of each recorded read, in order, and whether the replay has asked it */
  private readonly readAt: number[] = [];
  private readonly asked: boolean[] = [];
  private firstUnasked = 0;
  private readonly batches: { at: number; batch: NativeRecord[] }[] = [];
  private delivered = 0;
  private readonly held = new Set<number>();
  private onBatch: ((batch: NativeRecord[]) => void) | null = null;
  private closed = false;
  private progressAt = Date.now();
  private finished!: () => void;
  /** resolves once every batch is delivered and every recorded read asked (or given up on) */
  readonly done = new Promise<void>((resolve) => (this.finished = resolve));

  constructor(
    private readonly fixture: Fixture,
    private readonly stallMs = STALL_MS,
  ) {
    fixture.log.forEach((entry, at) => {
      if ('batch' in entry) this.batches.push({ at, batch: entry.batch });
      if (!('read' in entry)) return;
      const key = readKey(entry.read, entry.args);
      const queue = this.answers.get(key) ?? [];
      queue.push({ entry, order: this.readAt.length });
      this.answers.set(key, queue);
      this.readAt.push(at);
      this.asked.push(false);
    });
    this.reads = Object.fromEntries(READ_METHODS.map((m) => [m, (...args: unknown[]) => this.read(m, args)])) as unknown as HostReads;
  }

  /** A watcher on this port with the fixture's options and gate, its emissions kept. */
  watch(): ContainerWatcher {
    const watcher = new ContainerWatcher({ ...this.fixture.options, gate: gateOf(this.fixture.gate) }, this);
    listen(watcher, (e) => this.emitted.push({ ...e, batch: this.delivered }));
    return watcher;
  }

  /** Nothing is written: a replay runs without root, and remembers nothing. */
  remember(): void {}

  open(options: NativeOptions, onBatch: (batch: NativeRecord[]) => void): NativeWatcher {
    this.opened = options;
    this.onBatch = onBatch;
    // Before the watcher's own setImmediate (its snapshot): a first batch recorded before the
    // snapshot's reads goes first, as the thread-safe function's call did.
    setImmediate(this.pump);
    return {
      status: this.fixture.status,
      answer: (cookie, allow) => this.call('answer', [cookie, allow], this.held.delete(cookie)),
      setExpiryVerdict: (cookie, allow) => this.call('setExpiryVerdict', [cookie, allow], this.held.has(cookie)),
      trackContainer: (...args) => this.call('trackContainer', args, true),
      watchPid: (...args) => void this.call('watchPid', args, null),
      stats: () => NO_STATS,
      close: () => {
        this.closed = true;
      },
    };
  }

  /**
   * Hands a batch to the watcher as the thread-safe function would, whether or not the
   * watcher has closed its reactor: queued batches still arrive after close().
   */
  deliver(batch: readonly NativeRecord[]): void {
    // The reactor holds an exec from its record until answered or expired; a batch is made
    // before it is delivered, so an expiry in it has happened by the time JS sees the exec.
    for (const rec of batch) {
      if ((rec.kind === 'exec' || rec.kind === 'runtime-exec') && rec.held) this.held.add(rec.cookie);
      if (rec.kind === 'gate-expired') this.held.delete(rec.cookie);
    }
    this.delivered++;
    this.progressAt = Date.now();
    this.onBatch?.(structuredClone(batch) as NativeRecord[]);
  }

  /** Every batch of the fixture, in order. */
  get recordedBatches(): readonly (readonly NativeRecord[])[] {
    return this.batches.map((b) => b.batch);
  }

  private readonly pump = (): void => {
    if (this.closed) return this.finished();
    const next = this.batches[this.delivered];
    const waiting = this.unaskedBefore(next?.at ?? Infinity);
    if (waiting.length > 0 && Date.now() - this.progressAt < this.stallMs) {
      setTimeout(this.pump, 1);
      return;
    }
    if (waiting.length > 0) {
      const before = next === undefined ? 'by the end' : `before batch ${this.delivered}`;
      this.problems.push(`recorded reads never asked ${before}: ${waiting.slice(0, 10).map((i) => this.keyOf(i)).join('; ')}`);
      for (const i of waiting) this.asked[i] = true;
    }
    if (next === undefined) {
      // one more turn: the gate's verdicts for the last batch settle in its microtasks
      setImmediate(this.finished);
      return;
    }
    this.deliver(next.batch);
    setImmediate(this.pump);
  };

  /** Recorded reads (by order) before log index `at` that the replay has not asked yet. */
  private unaskedBefore(at: number): number[] {
    while (this.firstUnasked < this.asked.length && this.asked[this.firstUnasked]) this.firstUnasked++;
    const waiting: number[] = [];
    for (let i = this.firstUnasked; i < this.readAt.length && this.readAt[i]! < at; i++) if (!this.asked[i]) waiting.push(i);
    return waiting;
  }

  private keyOf(order: number): string {
    const entry = this.fixture.log[this.readAt[order]!] as ReadEntry;
    return readKey(entry.read, entry.args);
  }

  private read(method: ReadMethod, args: unknown[]): unknown {
    const key = readKey(method, args);
    const queue = this.answers.get(key);
    if (queue === undefined) {
      this.problems.push(`read never recorded: ${key}`);
      if (method === 'readFileInRoot') throw Object.assign(new Error(`ENOENT: ${key} was never recorded`), { code: 'ENOENT' });
      return null;
    }
    const n = this.nextAnswer.get(key) ?? 0;
    const { entry, order } = queue[Math.min(n, queue.length - 1)]!;
    this.nextAnswer.set(key, n + 1);
    if (n < queue.length) {
      this.asked[order] = true;
      this.progressAt = Date.now();
    }
    if (entry.error !== undefined) throw Object.assign(new Error(entry.error.message), { code: entry.error.code });
    return entry.result;
  }

  private call<T>(call: ControlMethod, args: unknown[], result: T): T {
    if (!this.closed) this.calls.push({ call, args, result, afterBatch: this.delivered });
    return result;
  }
}
