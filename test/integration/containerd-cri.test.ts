// Real containerd + CRI: hostNetwork pods driven over gRPC as the kubelet would, each
// sandbox and container reported once per step with what the CRI was asked for.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTAINERD_CRI_KEYS as KEYS } from '../../src/annotations/index.js';
import { CRI_FIXTURE, Lab, RUNC, Recorder, lifecycle, privileged } from '../kit/index.js';
import { Containerd, K8S_NAMESPACE } from '../kit/containerd.js';
import { containerConfig, CriClient, hostNetworkPod, type PodSandboxConfig } from '../kit/cri/client.js';
import { expectSteps } from './harness.js';
import { BUSYBOX_IMAGE, PAUSE_IMAGE } from '../kit/oci-image.js';

const PODS = 3;
const CONTAINERS_PER_POD = 3;
const STEPS = ['precreate', 'create', 'start', 'exit'];

interface Asked {
  id: string;
  type: 'sandbox' | 'container';
  pod: { name: string; namespace: string; uid: string };
  name: string | null;
  image: string | null;
  sandboxId: string;
}

describe.skipIf(!privileged())('containerd CRI, real', () => {
  let rec: Recorder;
  let ctd: Containerd;
  let cri: CriClient;

  beforeAll(async () => {
    // Before containerd: nothing it runs may precede the watcher.
    rec = new Recorder();
    ctd = await Containerd.start();
    cri = new CriClient(ctd.socket);
    await cri.waitReady();
    await ctd.importImages(K8S_NAMESPACE);
  });

  afterAll(async () => {
    cri?.close();
    await ctd?.stop();
    rec?.close();
  });

  /** containerd 2.0 first names the pause image on sandboxes (`podsandbox.image-name`). */
  function sandboxImage(): string | null {
    return Number(ctd.version.split('.')[0]) >= 2 ? PAUSE_IMAGE.name : null;
  }

  async function runPod(index: number): Promise<Asked[]> {
    const pod = { name: `web-${index}`, namespace: 'ocinotify-cri', uid: randomUUID() };
    const config: PodSandboxConfig = hostNetworkPod({
      ...pod,
      logDirectory: join(ctd.dir, 'pods', `${pod.namespace}_${pod.name}_${pod.uid}`),
      cgroupParent: ctd.cgroupParent,
    });
    const sandboxId = await cri.runPodSandbox(config);
    const asked: Asked[] = [{ id: sandboxId, type: 'sandbox', pod, name: null, image: sandboxImage(), sandboxId }];
    for (let c = 0; c < CONTAINERS_PER_POD; c++) {
      const name = `app-${c}`;
      const id = await cri.createContainer(sandboxId, containerConfig(name, BUSYBOX_IMAGE.name, ['/bin/sleep', '3600']), config);
      await cri.startContainer(id);
      asked.push({ id, type: 'container', pod, name, image: BUSYBOX_IMAGE.name, sandboxId });
    }
    return asked;
  }

  async function stopPod(asked: Asked[]): Promise<void> {
    const [sandbox, ...containers] = asked;
    for (const c of containers) {
      await cri.stopContainer(c.id);
      await rec.until(() => rec.of(c.id, 'exit').length > 0);
      await cri.removeContainer(c.id);
    }
    await cri.stopPodSandbox(sandbox!.id);
    await rec.until(() => rec.of(sandbox!.id, 'exit').length > 0);
    await cri.removePodSandbox(sandbox!.id);
  }

  function expectReported(asked: Asked): void {
    expectSteps(
      rec.of(asked.id),
      asked.id,
      {
        manager: 'containerd',
        pod: asked.pod,
        container: { name: asked.name, type: asked.type, image: asked.image },
        sandboxId: asked.sandboxId,
        containerdNamespace: K8S_NAMESPACE,
        bundle: join(ctd.dir, 'state', 'io.containerd.runtime.v2.task', K8S_NAMESPACE, asked.id),
        runtime: { name: 'runc', path: RUNC },
      },
      // StopContainer with timeout 0, StopPodSandbox and `ctr task kill -s KILL` all SIGKILL.
      { exitCode: 137, signal: 9 },
      rec,
    );
  }

  it(`reports ${PODS} pods of 1 sandbox + ${CONTAINERS_PER_POD} containers each, once per step, as asked`, async () => {
    const pods = await Promise.all(Array.from({ length: PODS }, (_, i) => runPod(i)));
    const asked = pods.flat();
    await rec.until(() => asked.every((a) => rec.of(a.id, 'start').length > 0));
    await Promise.all(pods.map(stopPod));
    expect(asked).toHaveLength(PODS * (1 + CONTAINERS_PER_POD));
    for (const a of asked) expectReported(a);
    // Nothing else came out of this containerd: no extra session for a shim or runc re-exec.
    const ours = new Set(asked.map((a) => a.id));
    expect(rec.events.filter((e) => e.bundle?.startsWith(`${ctd.dir}/`) && !ours.has(e.id))).toEqual([]);
  });

  it('leaves no daemon, shim, mount, cgroup or directory behind', async () => {
    await ctd.stop();
    expect(ctd.leftovers()).toEqual({ processes: [], mounts: [], cgroups: [], paths: [] });
  });
});

/**
 * containerd before 1.6.11 wrote no sandbox-uid, before 1.5 no sandbox-name/-namespace: the
 * sandbox's pod comes from its log directory and its containers inherit it. Real runc, with
 * the annotation sets those releases wrote (the 1.6 fixtures minus the newer keys).
 */
describe.skipIf(!privileged())('older containerd annotation sets, through real runc', () => {
  const MISSING_BEFORE: Record<string, string[]> = {
    '1.6.11': [KEYS.sandboxUid],
    '1.5': [KEYS.sandboxUid, KEYS.sandboxName, KEYS.sandboxNamespace, KEYS.imageName],
  };
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

  function annotations(type: 'sandbox' | 'container', release: string, sandboxId: string, uid: string): Record<string, string> {
    const own: Record<string, string> =
      type === 'sandbox'
        ? { [KEYS.containerType]: 'sandbox', [KEYS.sandboxLogDirectory]: `/var/log/pods/legacy_pod-${release}_${uid}` }
        : { ...CRI_FIXTURE.annotations, [KEYS.containerName]: `c-${release}` };
    const all = { ...own, [KEYS.sandboxId]: sandboxId, [KEYS.sandboxName]: `pod-${release}`, [KEYS.sandboxNamespace]: 'legacy' };
    return Object.fromEntries(Object.entries(all).filter(([key]) => !MISSING_BEFORE[release]!.includes(key)));
  }

  it.each(Object.keys(MISSING_BEFORE))('containers of a sandbox seen earlier inherit its pod (before %s)', async (release) => {
    const tag = release.replace(/\./g, '-');
    const sandboxId = `sandbox-${tag}`;
    const uid = randomUUID();
    const pod = { name: `pod-${release}`, namespace: 'legacy', uid };
    await lab.runc(['create', '--bundle', lab.bundle(sandboxId, ['/bin/sleep', '30'], annotations('sandbox', release, sandboxId, uid)), sandboxId]);
    await lab.runc(['start', sandboxId]);
    const containers = [`app-${tag}-0`, `app-${tag}-1`];
    for (const id of containers)
      await lifecycle(lab, rec, id, lab.bundle(id, ['/bin/sleep', '30'], annotations('container', release, sandboxId, uid)));
    await lab.runc(['kill', sandboxId, 'KILL']);
    await rec.until(() => rec.of(sandboxId, 'exit').length > 0);
    await lab.deleteExited(sandboxId);
    for (const id of [sandboxId, ...containers]) {
      expect(rec.of(id).map((e) => e.type), id).toEqual(STEPS);
      for (const e of rec.of(id)) expect(e.pod, `${id} ${e.type}`).toEqual(pod);
    }
  });
});
