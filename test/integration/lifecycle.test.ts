// create/start/kill/delete of real runc containers through the full kernel path.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Lab, Recorder, criAnnotations, lifecycle, privileged, unheldRuncMs } from '../kit/index.js';
import { expectSteps } from './harness.js';

const COUNT = 50;

describe.skipIf(!privileged())('lifecycle with real runc', () => {
  let lab: Lab;
  let rec: Recorder;
  /**
   * How long a step may take to be reported, with up to 16 runtimes running beside it: from an
   * unheld runc create measured here (beforeAll), seconds in a guest under TCG.
   */
  let waitMs = 10_000;

  beforeAll(async () => {
    lab = new Lab();
    const unheld = await unheldRuncMs(lab);
    waitMs = Math.max(waitMs, 64 * unheld);
    // The deadline is also the watchdog's budget: a reactor thread that gets no CPU for that
    // long counts as stalled and the watchdog answers, unheld. 16 runtimes at once on a slow
    // machine starve it that long without anything being wrong: at 10 times, 6.1 under TCG on
    // a busy host still saw 2 takeovers in 200 short-lived creations.
    const gateTimeoutMs = Math.max(1000, 20 * unheld);
    console.log(`unheld runc create: ${unheld} ms; deadline ${gateTimeoutMs} ms, waits ${waitMs} ms`);
    rec = new Recorder({ gateTimeoutMs });
  });

  afterEach(() => {
    const { held, answeredByJs, expired, watchdogTakeovers } = rec.watcher.stats();
    console.log(`so far: held ${held}, answered by JS ${answeredByJs}, expired ${expired}, watchdog takeovers ${watchdogTakeovers}`);
  });

  afterAll(async () => {
    rec?.close();
    await lab?.cleanup();
  });

  async function lifecycleOf(id: string): Promise<void> {
    await lifecycle(lab, rec, id, lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)), waitMs);
  }

  function expectExactlyOnce(id: string): void {
    expectSteps(
      rec.of(id),
      id,
      {
        manager: 'containerd',
        pod: { name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` },
        container: { name: `c-${id}`, type: 'container', image: 'demo.local/busybox:1' },
        sandboxId: criAnnotations(id)['io.kubernetes.cri.sandbox-id'],
        runtime: { name: 'runc' },
      },
      { exitCode: 137, signal: 9 },
      rec,
    );
  }

  it(`reports ${COUNT} sequential containers exactly once per step`, async () => {
    const ids = Array.from({ length: COUNT }, (_, i) => `seq-${i}`);
    for (const id of ids) await lifecycleOf(id);
    for (const id of ids) expectExactlyOnce(id);
  });

  it(`reports ${COUNT} containers created 8 in parallel exactly once per step`, async () => {
    const ids = Array.from({ length: COUNT }, (_, i) => `par-${i}`);
    const queue = [...ids];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) await lifecycleOf(id);
      }),
    );
    for (const id of ids) expectExactlyOnce(id);
  });

  it('reports 200 short-lived containers from 16 parallel creators exactly once, none failed', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `short-${i}`);
    const queue = [...ids];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          await lab.runc(['create', '--bundle', lab.bundle(id, ['/bin/true'], criAnnotations(id)), id]);
          await lab.runc(['start', id]);
        }
      }),
    );
    await rec.until((ev) => ids.every((id) => ev.some((e) => e.id === id && (e.type === 'exit' || e.type === 'failed'))), Math.max(60_000, waitMs));
    for (const id of ids) await lab.deleteExited(id, waitMs);
    const wrong = ids.filter((id) => rec.of(id).map((e) => e.type).join() !== 'precreate,create,start,exit');
    expect(wrong.map((id) => `${id}: ${rec.of(id).map((e) => e.type).join()}`)).toEqual([]);
    for (const id of ids) expect(rec.of(id, 'exit')[0]!.exitCode).toBe(0);
  });
});

