// create/start/kill/delete of real runc containers through the full kernel path.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, Recorder, criAnnotations, lifecycle, privileged } from './harness.js';

const COUNT = 50;

describe.skipIf(!privileged())('lifecycle with real runc', () => {
  let lab: Lab;
  let rec: Recorder;

  beforeAll(() => {
    lab = new Lab();
    rec = new Recorder();
  });

  afterAll(async () => {
    rec?.close();
    await lab?.cleanup();
  });

  async function lifecycleOf(id: string): Promise<void> {
    await lifecycle(lab, rec, id, await lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)));
  }

  function expectExactlyOnce(id: string): void {
    const types = rec.of(id).map((e) => e.type);
    expect(types, id).toEqual(['precreate', 'create', 'start', 'exit']);
    const [pre, create, start, exit] = rec.of(id);
    for (const e of [pre!, create!, start!, exit!]) {
      expect(e.manager).toBe('containerd');
      expect(e.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
      expect(e.container).toEqual({ name: `c-${id}`, type: 'container', image: 'demo.local/busybox:1' });
      expect(e.sandboxId).toBe(criAnnotations(id)['io.kubernetes.cri.sandbox-id']);
      expect(e.runtime.name).toBe('runc');
    }
    expect(pre!.held).toBe(true);
    expect(pre!.specError).toBeNull();
    expect(BigInt(pre!.monotonicNs)).toBeLessThan(BigInt(start!.monotonicNs));
    expect(BigInt(create!.monotonicNs)).toBeLessThan(BigInt(start!.monotonicNs));
    expect(create!.pid).toBeGreaterThan(0);
    expect(start!.pid).toBe(create!.pid);
    expect(create!.mntns).toBeGreaterThan(0);
    expect(create!.cgroupId).toMatch(/^[1-9][0-9]*$/);
    expect(exit!.exitCode).toBe(137);
    expect(exit!.signal).toBe(9);
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
});
