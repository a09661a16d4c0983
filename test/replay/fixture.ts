// What a replay fixture holds: one real run of the watcher, as its port saw it (the reactor's
// status and batches, every control call and every host read, in the order they happened) and
// as its listeners saw it (every emission). JSON on disk: bigints as decimal strings, Buffers
// as base64 in a table of their own (the same config.json is read at precreate and at create).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContainerEvent, ContainerWatcher, GateVerdict, WatchOptions } from '../../src/index.js';
import type { HostReads } from '../../src/host/reads.js';
import type { NativeOptions, NativeRecord, NativeStatus, NativeWatcher } from '../../src/native.js';

export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/replay/', import.meta.url));

/** The watcher's emissions a fixture keeps, beside the per-type copies of `event`. */
export const CHANNELS = ['event', 'diagnostic', 'lost', 'runtime', 'gateTimeout', 'watchdog', 'error'] as const;
export type Channel = (typeof CHANNELS)[number];

export type ReadMethod = keyof HostReads;
export const READ_METHODS: readonly ReadMethod[] = ['readFileInRoot', 'readHead', 'readlink', 'stat', 'realpath', 'readdir'];
/** What the watcher asks of the reactor besides its records. */
export type ControlMethod = keyof Pick<NativeWatcher, 'answer' | 'setExpiryVerdict' | 'trackContainer' | 'watchPid'>;
export const CONTROL_METHODS: readonly ControlMethod[] = ['answer', 'setExpiryVerdict', 'trackContainer', 'watchPid'];

/** Options as data: the gate is a GateSpec, the signal is the test's own. */
export type FixtureOptions = Omit<WatchOptions, 'gate' | 'signal'>;

/**
 * A gate that decides by container id, synchronously: deny these, never answer those (the
 * deadline does), allow the rest - other watchers' containers on the machine included.
 */
export interface GateSpec {
  deny: string[];
  hang: string[];
}

export const DENY_REASON = 'replay: denied by id';

export function gateOf(spec: GateSpec): (event: ContainerEvent) => GateVerdict | Promise<GateVerdict> {
  return (event) => {
    if (spec.deny.includes(event.id)) return { verdict: 'deny', reason: DENY_REASON };
    if (spec.hang.includes(event.id)) return new Promise<GateVerdict>(() => undefined);
    return 'allow';
  };
}

export interface ReadError {
  code: string;
  message: string;
}

export type LogEntry =
  | { batch: NativeRecord[] }
  | { read: ReadMethod; args: unknown[]; result?: unknown; error?: ReadError }
  /** afterBatch: how many batches had been delivered when the call was made */
  | { call: ControlMethod; args: unknown[]; result: unknown; afterBatch: number };

export interface Emission {
  on: Channel;
  payload: Record<string, unknown>;
}

export interface Fixture {
  scenario: string;
  description: string;
  options: FixtureOptions;
  gate: GateSpec;
  /** what the watcher asked the reactor for */
  opened: NativeOptions;
  status: NativeStatus;
  log: LogEntry[];
  emitted: Emission[];
}

/** JSON's view of a value: what a listener serialising it would see (no non-enumerable spec). */
function asJson(value: unknown): Record<string, unknown> {
  if (value instanceof Error) return { name: value.name, message: value.message };
  return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
}

/** Every emission on the channels a fixture keeps, in order, from now on. */
export function listen(watcher: ContainerWatcher, push: (emission: Emission) => void): void {
  for (const on of CHANNELS) watcher.on(on, (payload: unknown) => push({ on, payload: asJson(payload) }));
}

/** An emission as compared: all but the wall clock. */
export function comparable({ on, payload }: Emission): Emission {
  const rest = { ...payload };
  delete rest.time;
  return { on, payload: rest };
}

const BIGINT_FIELDS = ['ts', 'cgroupId'] as const;

/** Bytes out to a shared table of base64 strings, each distinct content once. */
class BlobWriter {
  readonly blobs: string[] = [];
  private readonly index = new Map<string, number>();

  /** A record's bytes (the spec read ahead) were cloned: a Uint8Array, no longer a Buffer. */
  encode(value: unknown): unknown {
    if (value instanceof Uint8Array) {
      const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
      let at = this.index.get(text);
      if (at === undefined) {
        at = this.blobs.push(text) - 1;
        this.index.set(text, at);
      }
      return { blob: at };
    }
    if (Array.isArray(value)) return value.map((v) => this.encode(v));
    if (typeof value === 'bigint') return value.toString();
    if (value !== null && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.encode(v)]));
    return value;
  }
}

function decodeBlobs(value: unknown, blobs: readonly string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => decodeBlobs(v, blobs));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  if (entries.length === 1 && entries[0]![0] === 'blob') return Buffer.from(blobs[entries[0]![1] as number]!, 'base64');
  return Object.fromEntries(entries.map(([k, v]) => [k, decodeBlobs(v, blobs)]));
}

/** A stat's inode numbers are bigints (FileStat): decimal strings on disk. */
function restoreRead(entry: Extract<LogEntry, { read: ReadMethod }>): void {
  if (entry.read !== 'stat' || entry.result === null || typeof entry.result !== 'object') return;
  const st = entry.result as Record<string, unknown>;
  for (const field of ['dev', 'ino']) st[field] = BigInt(st[field] as string);
}

function restoreRecord(rec: Record<string, unknown>): NativeRecord {
  for (const field of BIGINT_FIELDS) if (typeof rec[field] === 'string') rec[field] = BigInt(rec[field]);
  return rec as unknown as NativeRecord;
}

/** One line per log entry and emission: small diffs when a scenario is captured again. */
export function serialize(fixture: Fixture): string {
  const writer = new BlobWriter();
  const { log, emitted, ...head } = fixture;
  const lines = (items: unknown[]): string => items.map((i) => `    ${JSON.stringify(writer.encode(i))}`).join(',\n');
  const logText = lines(log);
  const emittedText = lines(emitted);
  const top = JSON.stringify(head, null, 2).slice(0, -2);
  const blobs = writer.blobs.map((b) => `    ${JSON.stringify(b)}`).join(',\n');
  return `${top},\n  "log": [\n${logText}\n  ],\n  "emitted": [\n${emittedText}\n  ],\n  "blobs": [\n${blobs}\n  ]\n}\n`;
}

export function parse(text: string): Fixture {
  const { blobs, ...raw } = JSON.parse(text) as Fixture & { blobs: string[] };
  const fixture = decodeBlobs(raw, blobs) as Fixture;
  for (const entry of fixture.log) {
    if ('batch' in entry) entry.batch = entry.batch.map((r) => restoreRecord(r as never));
    else if ('read' in entry) restoreRead(entry);
  }
  return fixture;
}

export function fixturePath(scenario: string): string {
  return join(FIXTURE_DIR, `${scenario}.json`);
}

export function writeFixture(fixture: Fixture): string {
  const path = fixturePath(fixture.scenario);
  writeFileSync(path, serialize(fixture));
  return path;
}

export function readFixture(scenario: string): Fixture {
  return parse(readFileSync(fixturePath(scenario), 'utf8'));
}

/** Every fixture on disk, by scenario name. */
export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}
