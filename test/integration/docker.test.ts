// Real docker: dockerd -> its own containerd (namespace moby) -> shim -> runc create. The spec
// has no annotations; the name and image come from docker's own config.v2.json, found through
// the spec's mounts. docker's prestart hook (the dockerd binary, libnetwork-setkey) is no container.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Recorder, privileged } from '../kit/index.js';
import { expectSteps } from './harness.js';
import { cgroupDirs, mountsUnder } from './host-setup.js';
import { DockerLab } from './managers.js';

const COUNT = 10;

describe.skipIf(!privileged())('real docker (dockerd -> containerd -> shim -> runc)', () => {
  let lab: DockerLab;
  let rec: Recorder;
  const suffix = process.pid.toString(36);
  const idsByName = new Map<string, string>();

  beforeAll(async () => {
    lab = new DockerLab();
    rec = new Recorder();
    await lab.start();
  }, 60_000);

  afterAll(async () => {
    rec?.close();
    await lab?.cleanup();
  }, 60_000);

  async function lifecycleOf(name: string): Promise<void> {
    const id = await lab.run(name, ['/bin/sleep', '30']);
    idsByName.set(name, id);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
    await lab.docker(['kill', name]);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await lab.docker(['rm', name]);
  }

  function expectExactlyOnce(name: string): void {
    const id = idsByName.get(name)!;
    expectSteps(
      rec.of(id),
      name,
      {
        manager: 'docker',
        container: { name, type: null, image: lab.image },
        pod: null,
        runtime: { name: 'runc' },
        bundle: join(lab.execRoot, 'containerd/daemon/io.containerd.runtime.v2.task/moby', id),
      },
      { exitCode: 137 },
      rec,
    );
  }

  it(`reports ${COUNT} docker containers exactly once per step, named from docker's state`, async () => {
    const names = Array.from({ length: COUNT }, (_, i) => `dk-${i}-${suffix}`);
    for (const name of names) await lifecycleOf(name);
    for (const name of names) expectExactlyOnce(name);
  });

  it('reports 6 containers started 3 in parallel exactly once per step', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `dk-par-${i}-${suffix}`);
    await Promise.all([0, 1, 2].map(async (w) => {
      for (let i = w; i < names.length; i += 3) await lifecycleOf(names[i]!);
    }));
    for (const name of names) expectExactlyOnce(name);
  });

  it('reports no other container (the prestart hook is none) and cleans up daemon, mounts and cgroups', async () => {
    const ids = new Set(idsByName.values());
    const during = rec.events.filter((e) => e.runtime.path === '/usr/sbin/runc' && e.bundle?.startsWith(lab.dir));
    expect(during.filter((e) => !ids.has(e.id))).toEqual([]);
    expect(rec.events.filter((e) => ids.has(e.id))).toHaveLength(ids.size * 4);
    expect((await lab.docker(['ps', '-aq'])).trim()).toBe('');
    await lab.cleanup();
    expect(mountsUnder(lab.dir)).toEqual([]);
    expect(cgroupDirs(lab.cgroupParent)).toEqual([]);
    expect(existsSync(lab.dir)).toBe(false);
  });
});
