// Gate policies and terminal events: concurrency of gates, fail-closed rules,
// denied and failed containers, containers that end before they start.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent, GateVerdict } from '../../src/index.js';
import { Lab, Recorder, criAnnotations, privileged, timedRunc } from '../kit/index.js';

const BUDGET_MS = 1000;
const SLACK_MS = 500;

describe.skipIf(!privileged())('concurrent gates', () => {
  // Its own watcher, with a budget long enough that 20 creates on a loaded 2-core machine fit in it.
  const budget = 5000;

  it('one container held for the whole budget does not delay 20 others', async () => {
    const lab = new Lab();
    const slow = 'slow-gate';
    const rec = new Recorder({
      gateTimeoutMs: budget,
      gate: (e) => (e.id === slow ? new Promise<GateVerdict>(() => undefined) : 'allow'),
    });
    try {
      let slowDone = 0;
      const slowCreate = timedRunc(lab, ['create', '--bundle', lab.bundle(slow, ['/bin/sleep', '30'], criAnnotations(slow)), slow]).then((r) => {
        slowDone = Date.now();
        return r;
      });
      await rec.until((ev) => ev.some((e) => e.id === slow && e.type === 'precreate'));
      const others = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const id = `quick-${i}`;
          const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
          return timedRunc(lab, ['create', '--bundle', bundle, id]);
        }),
      );
      const othersDone = Date.now();
      const slowResult = await slowCreate;
      const times = others.map((o) => o.ms).sort((a, b) => a - b);
      console.log(`held container: ${slowResult.ms} ms; 20 others meanwhile: median ${times[10]} ms, max ${times[19]} ms`);
      for (const o of others) expect(o.code, o.stderr).toBe(0);
      expect(othersDone).toBeLessThan(slowDone);
      expect(slowResult.code).toBe(0);
      expect(slowResult.ms).toBeGreaterThanOrEqual(budget - 50);
      expect(slowResult.ms).toBeLessThan(budget + SLACK_MS);
      for (let i = 0; i < 20; i++) expect(rec.of(`quick-${i}`, 'create')).toHaveLength(1);
    } finally {
      rec.close();
      await lab.cleanup();
    }
  });
});

describe.skipIf(!privileged())('gate policies and terminal events', () => {
  let lab: Lab;
  let rec: Recorder;
  const gates = new Map<string, (e: ContainerEvent) => GateVerdict | Promise<GateVerdict>>();

  beforeAll(() => {
    lab = new Lab();
    rec = new Recorder({
      gateTimeoutMs: BUDGET_MS,
      timeoutRules: [{ namespace: 'locked', onTimeout: 'fail-closed' }],
      gate: (e) => gates.get(e.id)?.(e) ?? 'allow',
    });
  });

  afterAll(async () => {
    rec?.close();
    await lab?.cleanup();
  });

  const forever = (): Promise<GateVerdict> => new Promise(() => undefined);

  it('a deny verdict fails the exec and the stream says so', async () => {
    const id = 'denied-one';
    gates.set(id, async () => ({ verdict: 'deny', reason: 'privileged outside kube-system' }));
    const res = await timedRunc(lab, ['create', '--bundle', lab.bundle(id, ['/bin/true'], criAnnotations(id)), id]);
    expect(res.code).not.toBe(0);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'denied'));
    expect(rec.of(id).map((e) => e.type)).toEqual(['precreate', 'denied']);
    expect(rec.of(id, 'denied')[0]!.reason).toBe('privileged outside kube-system');
  });

  it('fail-closed for a matching namespace: the deadline denies', async () => {
    const id = 'locked-one';
    gates.set(id, forever);
    const annotations = { ...criAnnotations(id), 'io.kubernetes.cri.sandbox-namespace': 'locked' };
    const res = await timedRunc(lab, ['create', '--bundle', lab.bundle(id, ['/bin/true'], annotations), id]);
    console.log(`fail-closed create: exit ${res.code} after ${res.ms} ms`);
    expect(res.code).not.toBe(0);
    expect(res.ms).toBeLessThan(BUDGET_MS + SLACK_MS);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'denied'));
    expect(rec.of(id, 'denied')[0]!.reason).toBe('gate timeout (fail-closed)');
    expect(rec.of(id, 'create')).toHaveLength(0);
  });

  it('fail-open elsewhere: the deadline allows', async () => {
    const id = 'open-one';
    gates.set(id, forever);
    const res = await timedRunc(lab, ['create', '--bundle', lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)), id]);
    expect(res.code).toBe(0);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'create'));
  });

  it('a gate that throws gets the timeout policy: fail-open here', async () => {
    const id = 'throwing-gate';
    gates.set(id, () => {
      throw new Error('policy engine down');
    });
    const res = await timedRunc(lab, ['create', '--bundle', lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)), id]);
    expect(res.code).toBe(0);
    expect(res.ms).toBeLessThan(BUDGET_MS / 2);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'create'));
  });

  it('a failed create (bad bundle) ends in `failed`', async () => {
    const id = 'bad-bundle';
    const bundle = lab.bundle(id, ['/bin/true'], criAnnotations(id));
    const res = await timedRunc(lab, ['create', '--bundle', bundle, '--pid-file', `${bundle}/init.pid`, '--console-socket', '/nonexistent.sock', id]);
    expect(res.code).not.toBe(0);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'failed'));
    expect(rec.of(id).map((e) => e.type)).toEqual(['precreate', 'failed']);
    expect(rec.of(id, 'failed')[0]!.reason).toMatch(/^runtime exited with code [1-9]/);
  });

  it('a container killed before start ends in `exit` without `start`', async () => {
    const id = 'killed-early';
    await lab.runc(['create', '--bundle', lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)), id]);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'create'));
    await lab.runc(['kill', id, 'KILL']);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await lab.deleteExited(id);
    expect(rec.of(id).map((e) => e.type)).toEqual(['precreate', 'create', 'exit']);
    expect(rec.of(id, 'exit')[0]!.exitCode).toBe(137);
    expect(rec.of(id, 'exit')[0]!.pid).toBe(rec.of(id, 'create')[0]!.pid);
  });

  it('delete of a container that never started ends in `exit`', async () => {
    const id = 'deleted-early';
    await lab.runc(['create', '--bundle', lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)), id]);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'create'));
    await lab.runc(['delete', '--force', id]);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await rec.fence(lab);
    expect(rec.of(id).map((e) => e.type)).toEqual(['precreate', 'create', 'exit']);
  });

  it('leaves no pending state behind', async () => {
    for (const id of ['open-one', 'throwing-gate'])
      await lab.runc(['delete', '--force', id]);
    // runtimes exec'd elsewhere on this machine are sessions too, while they run
    await rec.until(() => rec.watcher.stats().containers === 0 && rec.watcher.stats().sessions === 0, 10_000);
    expect(rec.watcher.stats()).toMatchObject({ sessions: 0, containers: 0, heldNow: 0 });
  });
});
