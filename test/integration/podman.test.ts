// Real podman: podman -> conmon -> runc create; podman itself runs runc start, kill, delete.
// The spec names neither the container nor a pod: the name comes from conmon's -n.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Recorder, privileged } from '../kit/index.js';
import { expectSteps } from './harness.js';
import { cgroupDirs, mountsUnder } from './host-setup.js';
import { PodmanLab } from './managers.js';

const COUNT = 10;

describe.skipIf(!privileged())('real podman (conmon -> runc)', () => {
  let lab: PodmanLab;
  let rec: Recorder;
  const suffix = process.pid.toString(36);
  const idsByName = new Map<string, string>();

  beforeAll(() => {
    lab = new PodmanLab();
    rec = new Recorder();
  });

  afterAll(async () => {
    rec?.close();
    await lab?.cleanup();
  });

  async function lifecycleOf(name: string): Promise<void> {
    const id = await lab.run(name, ['/bin/sleep', '30']);
    idsByName.set(name, id);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
    await lab.podman(['kill', name]);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await lab.podman(['rm', name]);
  }

  function expectExactlyOnce(name: string): void {
    const id = idsByName.get(name)!;
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expectSteps(
      rec.of(id),
      name,
      { manager: 'podman', container: { name, type: null, image: null }, pod: null, runtime: { name: 'runc' }, bundle: lab.bundleOf(id) },
      { exitCode: 137 },
      rec,
    );
  }

  it(`reports ${COUNT} podman containers exactly once per step, named from conmon`, async () => {
    const names = Array.from({ length: COUNT }, (_, i) => `pm-${i}-${suffix}`);
    for (const name of names) await lifecycleOf(name);
    for (const name of names) expectExactlyOnce(name);
  });

  it('reports 6 containers started 3 in parallel exactly once per step', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `pm-par-${i}-${suffix}`);
    await Promise.all([0, 1, 2].map(async (w) => {
      for (let i = w; i < names.length; i += 3) await lifecycleOf(names[i]!);
    }));
    for (const name of names) expectExactlyOnce(name);
  });

  it('reports nothing else for these containers, and cleans up every container, mount and cgroup', async () => {
    const ids = new Set(idsByName.values());
    expect(rec.events.filter((e) => ids.has(e.id))).toHaveLength(ids.size * 4);
    expect((await lab.podman(['ps', '-aq'])).trim()).toBe('');
    await lab.cleanup();
    expect(mountsUnder(lab.dir)).toEqual([]);
    expect(cgroupDirs(lab.cgroupParent)).toEqual([]);
    expect(existsSync(lab.dir)).toBe(false);
  });
});
