// Did the watcher report each container exactly once per step, about that container?
import { decodeStatus } from '../src/events.js';
import type { Ran } from './lab.js';

export const STEPS = ['precreate', 'create', 'start', 'exit'] as const;
export type Step = (typeof STEPS)[number];

/** An event as any of our consumers (probe handler, CLI reader) saw it. */
export interface Observed {
  /** a step, or another event type the watcher has (not checked) */
  type: string;
  id: string;
  pid: number | null;
  podName: string | null;
  exitCode: number | null;
  reason?: string | null;
}

export interface Accuracy {
  containers: number;
  /** steps of a container never reported */
  missed: number;
  /** reports beyond the first of a step */
  duplicated: number;
  /** events naming the wrong pod, init pid or exit code, or a container that was never run */
  misattributed: number;
  /** `failed` or `denied` reported for a container that ran */
  spurious: number;
  /** a few of each, to look into */
  examples: string[];
}

/**
 * Checks events against what the creators ran. podOf gives the pod name each container's
 * bundle carries; knowsInit: the creators reaped the inits, so their pids are known;
 * failed: containers whose runtime failed (their events are not checked).
 */
export function accuracy(
  ran: readonly Ran[],
  events: readonly Observed[],
  podOf: (id: string) => string,
  knowsInit: boolean,
  failed: ReadonlySet<string> = new Set(),
): Accuracy {
  const out: Accuracy = { containers: ran.length, missed: 0, duplicated: 0, misattributed: 0, spurious: 0, examples: [] };
  const note = (what: string): void => {
    if (out.examples.length < 10) out.examples.push(what);
  };
  const byId = new Map<string, Observed[]>();
  for (const e of events) byId.set(e.id, [...(byId.get(e.id) ?? []), e]);
  for (const r of ran) {
    const mine = byId.get(r.id) ?? [];
    byId.delete(r.id);
    for (const step of STEPS) {
      const n = mine.filter((e) => e.type === step).length;
      if (n === 0) {
        out.missed++;
        note(`${r.id}: no ${step}`);
      }
      if (n > 1) {
        out.duplicated += n - 1;
        note(`${r.id}: ${n} x ${step}`);
      }
    }
    for (const e of mine) {
      if (e.type === 'failed' || e.type === 'denied') {
        out.spurious++;
        note(`${r.id}: ${e.type}${e.reason ? ` (${e.reason})` : ''}`);
      }
      if (!(STEPS as readonly string[]).includes(e.type)) continue;
      const wrong = [
        e.podName !== podOf(r.id) && `pod ${e.podName}`,
        knowsInit && e.type !== 'precreate' && e.pid !== r.initPid && `pid ${e.pid} (init ${r.initPid})`,
        e.type === 'exit' && e.exitCode !== decodeStatus(r.status).exitCode && `exit code ${e.exitCode}`,
      ].filter(Boolean);
      if (wrong.length > 0) {
        out.misattributed++;
        note(`${r.id} ${e.type}: ${wrong.join(', ')}`);
      }
    }
  }
  for (const [id, rest] of byId) {
    if (failed.has(id)) continue;
    out.misattributed += rest.length;
    note(`${id}: ${rest.length} events for a container no creator ran`);
  }
  return out;
}
