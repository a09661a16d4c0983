// A container created while the watcher's reactor is stopped (a busy node can stop this
// process's threads for the budget): its runtime waits no longer than the budget, the watchdog
// answers it, and once the reactor runs again the container is reported with all its steps.
// expectSteps (harness.ts) accepts such a precreate only from a watcher that reported the takeover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, Recorder, criAnnotations, finish, privileged, timedRunc, unheldRuncMs } from '../kit/index.js';
import { expectSteps } from './harness.js';
import { ptraceStopThread } from './pauses.js';

/** Reactor threads are named so (addon/reactor.cc). */
const REACTOR_THREAD = 'ocinotify';
const BUDGET_MS = 1000;

describe.skipIf(!privileged())('a creation while the watcher is stalled', () => {
  let lab: Lab;
  let rec: Recorder;
  let unheld = 0;

  beforeAll(async () => {
    lab = new Lab('ocinotify-stalled-');
    unheld = await unheldRuncMs(lab);
    rec = new Recorder({ gateTimeoutMs: BUDGET_MS });
  });

  afterAll(async () => {
    rec?.close();
    await lab?.cleanup();
  });

  it('is answered by the watchdog within the budget, then reported whole; expectSteps takes it only with the takeover reported', async () => {
    const id = `stalled-${process.pid.toString(36)}`;
    const each = { manager: 'containerd', pod: { name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` }, runtime: { name: 'runc' } };
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    // Only the reactor thread stops: this one, with its event loop, runs on.
    const resume = await ptraceStopThread(process.pid, REACTOR_THREAD, 3 * BUDGET_MS);
    let created;
    try {
      created = await timedRunc(lab, ['create', '--bundle', bundle, id], 30_000);
    } finally {
      await resume();
    }
    expect(created.code, lab.log).toBe(0);
    expect(created.ms, 'runc create held no longer than the budget').toBeLessThan(BUDGET_MS + Math.max(1000, 4 * unheld));
    await finish(lab, rec, id);

    const [pre] = expectSteps(rec.of(id), id, each, { exitCode: 137, signal: 9 }, rec);
    expect({ held: pre.held, heldBy: pre.heldBy }).toEqual({ held: false, heldBy: 'watchdog' });
    expect(rec.tookOver()).toBe(true);
    // The same steps from a watcher that said nothing of a takeover fail.
    const silent = { context: () => 'a watcher that reported no takeover', tookOver: () => false } as unknown as Recorder;
    expect(() => expectSteps(rec.of(id), id, each, { exitCode: 137, signal: 9 }, silent)).toThrow(/heldBy/);
  });
});
