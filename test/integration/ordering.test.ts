// `start` is held until JavaScript has handled every record before it: a container's
// `precreate` and `create` reach the listeners before its entrypoint runs, even when the
// JavaScript thread has fallen behind.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent } from '../../src/index.js';
import { Lab, RUNC, Recorder, busyWait, criAnnotations, privileged, sq, timedShell, unheldRuncMs } from '../kit/index.js';

describe.skipIf(!privileged())('runc start waits for create', () => {
  let lab: Lab;
  /** far longer than an unheld runc create and start take together (measured in beforeAll) */
  let behindMs = 1000;
  /** the hold of start must outlast behindMs */
  let gateTimeoutMs = 5000;

  beforeAll(async () => {
    lab = new Lab();
    const unheld = await unheldRuncMs(lab, { start: true });
    behindMs = Math.max(behindMs, 4 * unheld);
    gateTimeoutMs = Math.max(gateTimeoutMs, 2 * behindMs + 3000);
    console.log(`unheld runc create && start: ${unheld} ms; JS behind by ${behindMs} ms, deadline ${gateTimeoutMs} ms`);
  });

  afterAll(async () => {
    await lab?.cleanup();
  });

  /** The line the entrypoint writes into the lab's log (runc passes its stdio through). */
  const ranLine = (id: string): string => `entrypoint of ${id} ran`;

  /**
   * create then start at once from one shell, while the JS thread is busy: `behind` blocks it,
   * by default for behindMs.
   */
  async function createAndStartWhileBehind(rec: Recorder, id: string, behind = (): void => busyWait(behindMs)): Promise<Map<string, bigint>> {
    const bundle = lab.bundle(id, ['/bin/echo', ranLine(id)], criAnnotations(id));
    const seenAt = new Map<string, bigint>();
    rec.watcher.on('event', (e: ContainerEvent) => {
      if (e.id === id) seenAt.set(e.type, process.hrtime.bigint());
    });
    // After the precreate's (allowing) gate has answered: runc create goes on, JS is busy.
    rec.watcher.once('precreate', () => setImmediate(behind));
    const runc = (args: string[]): string => [RUNC, '--root', lab.stateRoot, ...args].map(sq).join(' ');
    const res = await timedShell(`{ ${runc(['create', '--bundle', bundle, id])} && ${runc(['start', id])}; } </dev/null >>${sq(lab.log)} 2>&1`);
    expect(res.code, res.stderr).toBe(0);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await lab.deleteExited(id);
    expect(rec.of(id).map((e) => e.type)).toEqual(['precreate', 'create', 'start', 'exit']);
    return seenAt;
  }

  it('reports create before the entrypoint runs though the JS thread is behind', async () => {
    const rec = new Recorder({ gateTimeoutMs }, new Set(['order-held']));
    try {
      const before = rec.watcher.stats();
      const seenAt = await createAndStartWhileBehind(rec, 'order-held');
      const after = rec.watcher.stats();
      const entrypoint = BigInt(rec.of('order-held', 'start')[0]!.monotonicNs);
      const lead = Number(entrypoint - seenAt.get('create')!) / 1e6;
      console.log(`create reached the listener ${lead.toFixed(2)} ms before the entrypoint's exec`);
      expect(seenAt.get('precreate')!).toBeLessThan(entrypoint);
      expect(seenAt.get('create')!).toBeLessThan(entrypoint);
      // create and start were both held, both answered by JS, neither by the deadline (at
      // least: on a shared machine this watcher holds other tenants' runtimes too)
      expect(after.held - before.held).toBeGreaterThanOrEqual(2);
      expect(after.answeredByJs - before.answeredByJs).toBeGreaterThanOrEqual(2);
      expect(after.expired - before.expired).toBe(0);
    } finally {
      rec.close();
    }
  });

  it('with orderStart: false, start is answered natively and may run first', async () => {
    const rec = new Recorder({ gateTimeoutMs, orderStart: false }, new Set(['order-free']));
    try {
      const before = rec.watcher.stats();
      // Busy until the entrypoint has run, not for a time: under TCG the spinning JS thread
      // slows runc's create and start too, past any multiple of an unheld pair. Capped below
      // the deadline, so that a start held for JS could not be let go by it meanwhile: the
      // entrypoint runs within the cap only when start was answered natively.
      const capMs = gateTimeoutMs - 1000;
      const untilEntrypoint = (): void => {
        const end = Date.now() + capMs;
        while (Date.now() < end && !readFileSync(lab.log, 'utf8').includes(ranLine('order-free'))) busyWait(1);
      };
      const seenAt = await createAndStartWhileBehind(rec, 'order-free', untilEntrypoint);
      const after = rec.watcher.stats();
      const entrypoint = BigInt(rec.of('order-free', 'start')[0]!.monotonicNs);
      console.log(`without the hold, create reached the listener ${(Number(seenAt.get('create')! - entrypoint) / 1e6).toFixed(2)} ms after the entrypoint's exec`);
      expect(after.held - before.held).toBeGreaterThanOrEqual(1);
      expect(after.answeredNative - before.answeredNative).toBeGreaterThanOrEqual(1);
      // nothing held the start: the entrypoint ran while JS was still busy (what the counts,
      // which include other tenants' runtimes, cannot say)
      expect(seenAt.get('create')!).toBeGreaterThan(entrypoint);
    } finally {
      rec.close();
    }
  });
});
