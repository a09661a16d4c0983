// A watcher in a process of its own, as an agent embeds the library: notes when each
// event reaches its JS handler (process.hrtime.bigint() is CLOCK_MONOTONIC, the clock of
// monotonicNs). Prints a `ready` line once watching; on SIGTERM writes what it saw to
// OUT (one JSON object per line), prints its stats and exits.
//
//   probe OUT allow|none
//
// allow: a trivial gate that allows everything; none: no gate (the runtime is still held
// until JS has seen the precreate, then allowed). It runs at the nice value `ocinotify watch`
// takes (src/cli/priority.ts), set before the watcher starts its threads.
import { writeFileSync } from 'node:fs';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { ContainerWatcher, type ContainerEvent, type DiagnosticEvent } from 'ocinotify';
import { setNice, WATCH_NICE } from '../dist/esm/cli/priority.js';

export interface Seen {
  type: ContainerEvent['type'] | 'diagnostic';
  id: string;
  monotonicNs: string;
  /** when the handler ran */
  seenNs: string;
  pid: number | null;
  podName: string | null;
  exitCode: number | null;
  held: boolean | null;
  specError: string | null;
  /** `failed`, `denied`: why; a diagnostic: its code and message */
  reason: string | null;
}

const NO_EVENT = { seenNs: '0', pid: null, podName: null, exitCode: null, held: null, specError: null };
const [out, gateMode] = process.argv.slice(2);
const notNiced = setNice(WATCH_NICE);
if (notNiced !== null) throw new Error(`probe: nice ${WATCH_NICE}: ${notNiced}`);
const watcher = new ContainerWatcher({ gate: gateMode === 'allow' ? async () => 'allow' as const : undefined });
const seen: [bigint, ContainerEvent][] = [];
/** events handled per run of the JS thread (until its microtasks drain): how records are batched */
const perTick: number[] = [];
let tickOpen = false;
/** the JS thread's busy share between the first event and the last */
let eluAtFirst: EventLoopUtilization | null = null;
let eluAtLast: EventLoopUtilization | null = null;
watcher.on('event', (e: ContainerEvent) => {
  seen.push([process.hrtime.bigint(), e]);
  eluAtLast = performance.eventLoopUtilization();
  eluAtFirst ??= eluAtLast;
  if (!tickOpen) {
    tickOpen = true;
    perTick.push(0);
    queueMicrotask(() => (tickOpen = false));
  }
  perTick[perTick.length - 1]!++;
});
const diagnostics: DiagnosticEvent[] = [];
watcher.on('diagnostic', (d: DiagnosticEvent) => diagnostics.push(d));
process.stdout.write(`${JSON.stringify({ type: 'ready', mode: watcher.mode })}\n`);

process.once('SIGTERM', () => {
  const stats = watcher.stats();
  watcher.close();
  const rows = seen.map(([ns, e]): Seen => ({
    type: e.type,
    id: e.id,
    monotonicNs: e.monotonicNs,
    seenNs: ns.toString(),
    pid: e.pid,
    podName: e.pod?.name ?? null,
    exitCode: e.exitCode ?? null,
    held: e.held ?? null,
    specError: e.specError?.code ?? null,
    reason: e.reason ?? null,
  }));
  for (const d of diagnostics)
    rows.push({ ...NO_EVENT, type: 'diagnostic', id: d.id ?? '', monotonicNs: d.monotonicNs, reason: `${d.code}: ${d.message}` });
  writeFileSync(out!, rows.map((r) => JSON.stringify(r)).join('\n'));
  const js = {
    jsBusyShare: eluAtFirst && eluAtLast ? performance.eventLoopUtilization(eluAtLast, eluAtFirst).utilization : null,
    eventsPerTickMean: perTick.length ? seen.length / perTick.length : null,
    eventsPerTickMax: Math.max(0, ...perTick),
  };
  process.stdout.write(`${JSON.stringify({ type: 'stats', ...stats, ...js })}\n`);
});
