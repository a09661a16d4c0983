// Real `ctr run`: no CRI annotations, so the bundle path alone says containerd, the
// container id and the containerd namespace; there is no pod.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNC, Recorder, privileged } from '../kit/index.js';
import { Containerd } from '../kit/containerd.js';
import { expectSteps } from './harness.js';
import { BUSYBOX_IMAGE } from '../kit/oci-image.js';

const NAMESPACES = ['ctr-a', 'ctr-b'];
const PER_NAMESPACE = 6;
const PARALLEL = 4;

interface Run {
  namespace: string;
  id: string;
}

describe.skipIf(!privileged())('containerd ctr run, real', () => {
  let rec: Recorder;
  let ctd: Containerd;

  beforeAll(async () => {
    rec = new Recorder();
    ctd = await Containerd.start();
    for (const ns of NAMESPACES) await ctd.importImages(ns);
  });

  afterAll(async () => {
    await ctd?.stop();
    rec?.close();
  });

  /** `ctr run -d`, SIGKILL, then delete: what a person does by hand. */
  async function lifecycle({ namespace, id }: Run): Promise<void> {
    await ctd.ctrRun(namespace, BUSYBOX_IMAGE.name, id, ['/bin/sleep', '3600']);
    await rec.until(() => rec.of(id, 'start').length > 0);
    await ctd.ctr(namespace, ['tasks', 'kill', '--signal', 'SIGKILL', id]);
    await rec.until(() => rec.of(id, 'exit').length > 0);
    await ctd.ctr(namespace, ['tasks', 'delete', '--force', id]);
    await ctd.ctr(namespace, ['containers', 'delete', id]);
  }

  function expectReported({ namespace, id }: Run): void {
    expectSteps(
      rec.of(id),
      id,
      {
        manager: 'containerd',
        pod: null,
        container: { name: null, type: null, image: null },
        sandboxId: null,
        containerdNamespace: namespace,
        bundle: join(ctd.dir, 'state', 'io.containerd.runtime.v2.task', namespace, id),
        runtime: { name: 'runc', path: RUNC },
      },
      // StopContainer with timeout 0, StopPodSandbox and `ctr task kill -s KILL` all SIGKILL.
      { exitCode: 137, signal: 9 },
      rec,
    );
  }

  it(`reports ${NAMESPACES.length * PER_NAMESPACE} containers in ${NAMESPACES.length} namespaces, ${PARALLEL} at a time, once per step`, async () => {
    const runs = NAMESPACES.flatMap((namespace) => Array.from({ length: PER_NAMESPACE }, (_, i) => ({ namespace, id: `${namespace}-${i}` })));
    const queue = [...runs];
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        for (let run = queue.shift(); run !== undefined; run = queue.shift()) await lifecycle(run);
      }),
    );
    for (const run of runs) expectReported(run);
    const ours = new Set(runs.map((r) => r.id));
    expect(rec.events.filter((e) => e.bundle?.startsWith(`${ctd.dir}/`) && !ours.has(e.id))).toEqual([]);
  });

  it('leaves no daemon, shim, mount, cgroup or directory behind', async () => {
    await ctd.stop();
    expect(ctd.leftovers()).toEqual({ processes: [], mounts: [], cgroups: [], paths: [] });
  });
});
