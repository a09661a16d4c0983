// The agent inside a kind-style node, as deploy/daemonset.yaml runs it there: created by the
// node's containerd over CRI with what the kubelet would ask for that pod spec (capabilities,
// the node's / at /host read-only with HostToContainer propagation, seccomp and AppArmor
// unconfined, read-only root, uid 0, its own pid namespace) and the image's ENTRYPOINT from
// deploy/Containerfile. Only the image's content is stood in for, as in daemonset.test.ts: the
// host's /usr for node and this tree for the package, handed to the node and mounted from there.
// The node has no CNI: the agent, which uses no network, gets the node's.
import { randomUUID } from 'node:crypto';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent } from '../../src/index.js';
import { Recorder, privileged, tail, until } from '../kit/index.js';
import { containerConfig, CriClient, hostNetworkPod, type ContainerConfig, type PodSandboxConfig } from '../kit/cri/client.js';
import { KindNode, NODE_RUNC } from '../kit/node.js';
import { BUSYBOX_IMAGE, type ImageSpec } from '../kit/oci-image.js';
import { REPO, agentLines, type AgentLine } from './agent-pod.js';
import { criAgent, readDaemonSet, readEntrypoint } from './manifest.js';

const STEPS = ['precreate', 'create', 'start', 'exit'];
/** Where the node keeps what stands in for the agent image's content. */
const HOST_USR = '/opt/ocinotify-image/usr';
const PACKAGE = '/opt/ocinotify-image/package';
const LOGS = '/var/log/pods';

/** The agent image: mount points and merged-/usr links; its /usr and package are mounted. */
function agentImage(name: string, mountPoints: readonly string[]): ImageSpec {
  return {
    name,
    entrypoint: [],
    path: '/usr/local/bin:/usr/bin:/bin',
    rootfs: (dir) => {
      for (const d of ['usr', 'proc', 'sys', 'dev', 'tmp', 'etc', ...mountPoints]) mkdirSync(join(dir, d), { recursive: true });
      for (const l of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${l}`, join(dir, l));
    },
  };
}

describe.skipIf(!privileged())('the agent inside a kind-style node, as deploy/daemonset.yaml runs it', () => {
  let node: KindNode;
  let cri: CriClient;
  let host: Recorder;
  let agentLog: string;
  const lines = (): AgentLine[] => agentLines(join(node.root, agentLog), (l) => /^\S+ stdout F (.*)$/.exec(l)?.[1]);

  beforeAll(async () => {
    const ds = readDaemonSet();
    const pod = ds.spec.template.spec;
    const entrypoint = readEntrypoint();
    const packageDir = entrypoint[1]!.replace(/\/bin\/ocinotify$/, '');
    const agent = criAgent(pod, entrypoint);
    const mountPoints = [...agent.mounts.map((m) => m.containerPath.slice(1)), packageDir.slice(1)];
    const image = agentImage(pod.containers[0]!.image, mountPoints);
    host = new Recorder();
    node = await KindNode.start({ images: [image], mounts: [{ host: '/usr', node: HOST_USR }, { host: REPO, node: PACKAGE }] });
    cri = new CriClient(node.criSocket);
    await cri.waitReady();
    const meta = { name: 'ocinotify-agent', namespace: 'ocinotify', uid: randomUUID() };
    const logDirectory = join(LOGS, `${meta.namespace}_${meta.name}_${meta.uid}`);
    const sandbox: PodSandboxConfig = hostNetworkPod({ ...meta, logDirectory, cgroupParent: '/ocinotify-agent' });
    sandbox.linux.securityContext.namespaceOptions = { network: 'NODE', pid: agent.hostPID ? 'NODE' : 'POD', ipc: 'POD' };
    const namespaceOptions = { network: 'NODE' as const, pid: agent.hostPID ? ('NODE' as const) : ('CONTAINER' as const), ipc: 'POD' as const };
    const config: ContainerConfig = {
      ...containerConfig(pod.containers[0]!.name, image.name, agent.command, agent.args),
      mounts: [
        ...agent.mounts,
        { containerPath: '/usr', hostPath: HOST_USR, readonly: true, propagation: 'PROPAGATION_PRIVATE' },
        { containerPath: packageDir, hostPath: PACKAGE, readonly: true, propagation: 'PROPAGATION_PRIVATE' },
      ],
      linux: { securityContext: { ...agent.securityContext, namespaceOptions } },
    };
    agentLog = join(logDirectory, config.logPath);
    const sandboxId = await cri.runPodSandbox(sandbox);
    await cri.startContainer(await cri.createContainer(sandboxId, config, sandbox));
    await until(() => lines().some((l) => l.type === 'ready'), () => `the agent to be ready: ${tail(join(node.root, agentLog), 20)}`, 60_000, 100);
  }, 180_000);

  afterAll(async () => {
    cri?.close();
    host?.close();
    await node?.remove();
  });

  it('runs in full mode and reports the node\'s pods, held, with pod metadata and the node\'s pids', async () => {
    expect(lines()[0]).toMatchObject({ type: 'ready', mode: 'full' });
    const pods = Array.from({ length: 2 }, (_, i) => ({ name: `app-${i}`, namespace: 'nested-ds', uid: randomUUID() }));
    const ids: { id: string; pod: (typeof pods)[number]; type: 'sandbox' | 'container'; nodePid?: number }[] = [];
    for (const pod of pods) {
      const config = hostNetworkPod({ ...pod, logDirectory: join(LOGS, `${pod.namespace}_${pod.name}_${pod.uid}`), cgroupParent: '/ocinotify-pods' });
      const sandboxId = await cri.runPodSandbox(config);
      const id = await cri.createContainer(sandboxId, containerConfig('app', BUSYBOX_IMAGE.name, ['/bin/sleep', '3600']), config);
      await cri.startContainer(id);
      ids.push({ id: sandboxId, pod, type: 'sandbox' }, { id, pod, type: 'container' });
    }
    await until(() => ids.every((c) => lines().some((l) => l.id === c.id && l.type === 'start')), 'the agent to report every start', 20_000);
    const running = await node.taskPids();
    for (const c of ids) c.nodePid = running.get(c.id);
    for (const { id } of ids.filter((c) => c.type === 'container')) {
      await cri.stopContainer(id);
    }
    for (const { id } of ids.filter((c) => c.type === 'sandbox')) await cri.stopPodSandbox(id);
    await until(() => ids.every((c) => lines().some((l) => l.id === c.id && l.type === 'exit')), 'the agent to report every exit', 20_000);
    for (const c of ids) {
      const mine = lines().filter((l) => l.id === c.id);
      expect(mine.map((l) => l.type), c.id).toEqual(STEPS);
      const [pre, create, start, exit] = mine;
      expect(pre!.held, c.id).toBe(true);
      for (const l of mine) expect(l.pod, `${c.id} ${l.type}`).toEqual(c.pod);
      // The agent's host is the node: its pids are the node's, as the node's containerd has them.
      expect(create!.pid, c.id).toBe(c.nodePid);
      expect(start!.pid, c.id).toBe(c.nodePid);
      expect(exit!.exitCode, c.id).toBe(137);
      // The watcher on the host saw the same containers, with the host's pids.
      const onHost = host.of(c.id);
      expect(onHost.map((e) => e.type), c.id).toEqual(STEPS);
      expect((onHost[1] as ContainerEvent).runtime.path).toBe(NODE_RUNC);
    }
  });
});
