// A kind-style node (test/kit/node.ts): Debian unstable's containerd 2.1, runc 1.3 and crun 1.28
// in a privileged podman container, driven over CRI from the host. The watcher on the host was
// told about none of it: it finds the node's runtimes from their first exec, and reports every
// pod's containers with the host's pids, the nested containers' namespaces and the node's.
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent, RuntimeChangeEvent } from '../../src/index.js';
import { Recorder, privileged, until } from '../kit/index.js';
import { FrozenThread, newReactorTid, reactorTids } from './freeze.js';
import { containerConfig, CriClient, hostNetworkPod, type PodSandboxConfig } from '../kit/cri/client.js';
import { KindNode, NODE_CONTAINERD_STATE, NODE_CRUN, NODE_RUNC, nodeVersions, type RuntimeHandler } from '../kit/node.js';
import { BUSYBOX_IMAGE, PAUSE_IMAGE } from '../kit/oci-image.js';

const STEPS = ['precreate', 'create', 'start', 'exit'];
const PODS_PER_RUNTIME = 2;
const CONTAINERS_PER_POD = 2;
const BINARY: Record<RuntimeHandler, string> = { runc: NODE_RUNC, crun: NODE_CRUN };

interface Asked {
  id: string;
  handler: RuntimeHandler;
  type: 'sandbox' | 'container';
  pod: { name: string; namespace: string; uid: string };
  name: string | null;
  image: string;
  sandboxId: string;
  /** the init's pid as the node sees it, while it ran */
  nodePid?: number;
}

/** What the host itself says of a running container's init. */
interface Seen {
  /** its pids, the host's first: the second is the node's */
  nspid: number[];
  mntns: number;
  cgroupId: string;
}

/** NSpid of a host process: its pid in each pid namespace, the host's first. */
function nspid(pid: number): number[] {
  return /^NSpid:\s*(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!.trim().split(/\s+/).map(Number);
}

/** The cgroup v2 id of a host process, read the kernel's way: the inode of its v2 cgroup directory. */
function cgroupId(pid: number): string {
  const unified = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.includes(' - cgroup2 '))!.split(' ')[4]!;
  const path = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'))!.slice(3);
  return String(statSync(join(unified, path)).ino);
}

describe.skipIf(!privileged())('a kind-style node: containerd 2.1 + runc 1.3 + crun 1.28, watched from the host', () => {
  let rec: Recorder;
  let node: KindNode;
  let cri: CriClient;
  const changes: RuntimeChangeEvent[] = [];
  /** when each precreate reached JavaScript (CLOCK_MONOTONIC, the clock of monotonicNs) */
  const reachedJs = new Map<string, bigint>();

  beforeAll(async () => {
    // Before the node: everything it runs comes after the watcher.
    rec = new Recorder();
    rec.watcher.on('runtime', (e: RuntimeChangeEvent) => changes.push(e));
    rec.watcher.on('precreate', (e: ContainerEvent) => reachedJs.set(e.id, process.hrtime.bigint()));
    node = await KindNode.start();
    cri = new CriClient(node.criSocket);
    await cri.waitReady();
  }, 180_000);

  afterAll(async () => {
    cri?.close();
    rec?.close();
    await node?.remove();
  });

  async function runPod(handler: RuntimeHandler, index: number): Promise<Asked[]> {
    const pod = { name: `${handler}-${index}`, namespace: 'nested', uid: randomUUID() };
    const config: PodSandboxConfig = hostNetworkPod({
      ...pod,
      logDirectory: `/var/log/pods/${pod.namespace}_${pod.name}_${pod.uid}`,
      cgroupParent: '/ocinotify-pods',
    });
    const sandboxId = await cri.runPodSandbox(config, handler);
    const asked: Asked[] = [{ id: sandboxId, handler, type: 'sandbox', pod, name: null, image: PAUSE_IMAGE.name, sandboxId }];
    for (let c = 0; c < CONTAINERS_PER_POD; c++) {
      const name = `app-${c}`;
      const id = await cri.createContainer(sandboxId, containerConfig(name, BUSYBOX_IMAGE.name, ['/bin/sleep', '3600']), config);
      await cri.startContainer(id);
      asked.push({ id, handler, type: 'container', pod, name, image: BUSYBOX_IMAGE.name, sandboxId });
    }
    return asked;
  }

  /** Stops and removes a pod, each step once watcher has reported its exit. */
  async function stopPod(asked: Asked[], watcher = rec): Promise<void> {
    const [sandbox, ...containers] = asked;
    for (const c of containers) {
      await cri.stopContainer(c.id);
      await watcher.until(() => watcher.of(c.id, 'exit').length > 0, 20_000);
      await cri.removeContainer(c.id);
    }
    await cri.stopPodSandbox(sandbox!.id);
    await watcher.until(() => watcher.of(sandbox!.id, 'exit').length > 0, 20_000);
    await cri.removePodSandbox(sandbox!.id);
  }

  /** The host's own view of each running init the watcher reported. */
  function seeRunning(asked: Asked[]): Map<string, Seen> {
    return new Map(
      asked.map((a) => {
        const pid = rec.of(a.id, 'create')[0]!.pid!;
        return [a.id, { nspid: nspid(pid), mntns: statSync(`/proc/${pid}/ns/mnt`).ino, cgroupId: cgroupId(pid) }];
      }),
    );
  }

  /** Every field of every step, as the CRI was asked and as the node and the kernel have it. */
  function expectReported(asked: Asked, held: boolean, seen: Seen): void {
    const events = rec.of(asked.id);
    expect(events.map((e) => e.type), asked.id).toEqual(STEPS);
    const [pre, create, start, exit] = events as [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];
    for (const e of events)
      expect(e, `${asked.handler} ${asked.type} ${e.type}`).toMatchObject({
        manager: 'containerd',
        pod: asked.pod,
        container: { name: asked.name, type: asked.type, image: asked.image },
        sandboxId: asked.sandboxId,
        containerdNamespace: 'k8s.io',
        bundle: join(NODE_CONTAINERD_STATE, 'io.containerd.runtime.v2.task', 'k8s.io', asked.id),
        runtime: { name: asked.handler, path: BINARY[asked.handler] },
        nodeMntns: node.mntns,
      });
    expect(pre.held, asked.id).toBe(held);
    expect(pre.specError, asked.id).toBeNull();
    // The host's pid of the init the node calls nodePid.
    expect(seen.nspid[0], asked.id).toBe(create.pid);
    expect(seen.nspid[1], asked.id).toBe(asked.nodePid);
    expect(start.pid).toBe(create.pid);
    expect(create.mntns).toBe(seen.mntns);
    expect(create.mntns).not.toBe(node.mntns);
    expect(create.cgroupId).toBe(seen.cgroupId);
    expect(BigInt(pre.monotonicNs)).toBeLessThan(BigInt(create.monotonicNs));
    expect(BigInt(create.monotonicNs)).toBeLessThan(BigInt(start.monotonicNs));
    expect(exit).toMatchObject({ exitCode: 137, signal: 9 });
    // Held: the runtime waited for JavaScript, so the entrypoint's first instruction came after.
    if (held) expect(reachedJs.get(asked.id)!, asked.id).toBeLessThan(BigInt(start.monotonicNs));
  }

  it('runs the versions the README names', async () => {
    const versions = nodeVersions();
    expect(versions.containerd).toMatch(/^2\.1\.9\b/);
    expect(versions.runc).toMatch(/^1\.3\.\d/);
    expect(versions.crun).toMatch(/^1\.28\b/);
    expect((await cri.waitReady()).runtimeVersion).toMatch(/^2\.1\.9/);
  });

  it(`finds runc and crun from their first exec and reports ${PODS_PER_RUNTIME} pods of each with every field`, async () => {
    const pods: Asked[][] = [];
    for (const handler of ['runc', 'crun'] as const)
      for (let i = 0; i < PODS_PER_RUNTIME; i++) {
        const pod = await runPod(handler, i);
        const running = await node.taskPids();
        for (const a of pod) a.nodePid = running.get(a.id);
        pods.push(pod);
      }
    const asked = pods.flat();
    await until(() => asked.every((a) => rec.of(a.id, 'start').length > 0), 'every start', 20_000);
    const seen = seeRunning(asked);
    for (const pod of pods) await stopPod(pod);
    for (const handler of ['runc', 'crun'] as const) {
      const found = changes.filter((c) => c.path === BINARY[handler]);
      expect(found, handler).toEqual([expect.objectContaining({ change: 'added', foundBy: 'exec', runtime: handler, mntns: node.mntns, markError: null })]);
      // The first creation by each binary taught the watcher its inode: not held. Every later one is.
      const ofHandler = asked.filter((a) => a.handler === handler);
      ofHandler.forEach((a, i) => expectReported(a, i > 0, seen.get(a.id)!));
    }
    expect(asked).toHaveLength(2 * PODS_PER_RUNTIME * (1 + CONTAINERS_PER_POD));
  });

  it('a watcher started while the node runs pods lists them as existing, and follows them to their exit', async () => {
    const pods = [await runPod('runc', 9), await runPod('crun', 9)];
    const asked = pods.flat();
    await until(() => asked.every((a) => rec.of(a.id, 'start').length > 0), 'every start', 20_000);
    const restarted = new Recorder({}, new Set(asked.map((a) => a.id)));
    try {
      await restarted.until((ev) => asked.every((a) => ev.some((e) => e.id === a.id && e.type === 'existing')), 20_000);
      for (const a of asked) {
        const [existing] = restarted.of(a.id);
        expect(existing, a.id).toMatchObject({
          type: 'existing',
          started: true,
          pid: rec.of(a.id, 'create')[0]!.pid,
          manager: 'containerd',
          pod: a.pod,
          container: { name: a.name, type: a.type },
          sandboxId: a.sandboxId,
          nodeMntns: node.mntns,
        });
      }
      rec.close();
      for (const pod of pods) {
        const [sandbox, ...containers] = pod;
        for (const c of containers) {
          await cri.stopContainer(c.id);
          await restarted.until(() => restarted.of(c.id, 'exit').length > 0, 20_000);
        }
        await cri.stopPodSandbox(sandbox!.id);
        await restarted.until(() => restarted.of(sandbox!.id, 'exit').length > 0, 20_000);
      }
      for (const a of asked) expect(restarted.of(a.id).map((e) => e.type), a.id).toEqual(['existing', 'exit']);
    } finally {
      restarted.close();
    }
  });

  it("learns a runtime whose first creations were over before its records were read: through the shim's root", async () => {
    const others = reactorTids();
    const late = new Recorder({ mode: 'ebpf-only', snapshot: false });
    const found: RuntimeChangeEvent[] = [];
    late.watcher.on('runtime', (e: RuntimeChangeEvent) => found.push(e));
    try {
      const frozen = await FrozenThread.freeze(await newReactorTid(others));
      const pod = await runPod('runc', 7).finally(() => frozen.resume());
      await until(() => found.some((e) => e.change === 'added' && e.path === NODE_RUNC && e.mntns === node.mntns), 'runc to be learnt', 20_000);
      expect(found.filter((e) => e.foundBy === 'exec' && e.mntns === node.mntns)).toHaveLength(1);
      await late.until((ev) => pod.every((a) => ev.some((e) => e.id === a.id && e.type === 'start')), 20_000);
      await stopPod(pod, late);
      for (const a of pod) expect(late.of(a.id).map((e) => e.type), a.id).toEqual(STEPS);
    } finally {
      late.close();
    }
  });

  it('leaves no node, process, mount, cgroup or directory behind', async () => {
    await node.remove();
    expect(node.leftovers()).toEqual({ processes: [], mounts: [], cgroups: [], paths: [] });
  });
});
