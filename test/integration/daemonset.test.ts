// DaemonSet equivalence: the agent run under podman with exactly what deploy/daemonset.yaml
// grants it - capabilities, host mounts and their propagation, seccomp/AppArmor, hostPID,
// read-only root, memory limit, args - and the image's ENTRYPOINT from deploy/Containerfile.
// Only the image's content is stood in for (the host's /usr for node, this tree for the package).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, privileged, tail, until } from '../kit/index.js';
import { AGENT, agentLines, agentRootfs, expectFollowedFromHost, imageVolumes, removeAgent, type AgentLine } from './agent-pod.js';
import { PodmanLab } from './managers.js';
import { parseYaml, podmanArgs, readDaemonSet, readEntrypoint } from './manifest.js';

describe('deploy/daemonset.yaml', () => {
  it('is the DaemonSet the docs describe', () => {
    const ds = readDaemonSet();
    expect(ds.kind).toBe('DaemonSet');
    const pod = ds.spec.template.spec;
    expect(pod.hostPID).toBe(false);
    const [agent] = pod.containers;
    expect(agent!.args).toEqual(['watch', '--json', '--host-root', '/host']);
    expect(agent!.securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['SYS_ADMIN', 'SYS_PTRACE', 'BPF', 'PERFMON', 'DAC_READ_SEARCH', 'SYS_NICE'] });
    expect(agent!.securityContext.privileged).toBe(false);
    expect(agent!.volumeMounts).toEqual([{ name: 'host-root', mountPath: '/host', readOnly: true, mountPropagation: 'HostToContainer' }]);
    expect(pod.volumes).toEqual([{ name: 'host-root', hostPath: { path: '/', type: 'Directory' } }]);
    expect(podmanArgs(pod, readEntrypoint()).options).toEqual([
      '--user', '0',
      '--read-only', '--read-only-tmpfs=false',
      '--cap-drop', 'ALL',
      '--cap-add', 'SYS_ADMIN,SYS_PTRACE,BPF,PERFMON,DAC_READ_SEARCH,SYS_NICE',
      '--security-opt', 'seccomp=unconfined',
      '--security-opt', 'apparmor=unconfined',
      '-v', '/:/host:ro,rslave',
      '--memory', '256m',
      '--entrypoint', '["node","/opt/ocinotify/bin/ocinotify"]',
    ]);
  });

  it('the YAML reader refuses what it does not understand', () => {
    expect(parseYaml('a:\n  b: [1, "x"]\n  c:\n    - d: 1\n      e: true\n    - f\n')).toEqual({ a: { b: [1, 'x'], c: [{ d: 1, e: true }, 'f'] } });
    expect(() => parseYaml('a: &anchor x\n')).toThrow(/anchors/);
    expect(() => parseYaml('a: |\n  text\n')).toThrow(/block scalars/);
    expect(() => parseYaml('a: 1 # why\n')).toThrow(/trailing comment/);
    expect(() => parseYaml('a:\n  b: 1\n c: 2\n')).toThrow(/indentation/);
  });
});

describe.skipIf(!privileged())('the agent run as deploy/daemonset.yaml says', () => {
  let podman: PodmanLab;
  let lab: Lab;
  let log: string;
  /** The agent's stdout from the k8s-file log (the kubelet's format: TIME STREAM TAG LINE). */
  const lines = (): AgentLine[] => agentLines(log, (l) => /^\S+ stdout F (.*)$/.exec(l)?.[1]);

  beforeAll(async () => {
    podman = new PodmanLab();
    lab = new Lab();
    const entrypoint = readEntrypoint();
    const packageDir = entrypoint[1]!.replace(/\/bin\/ocinotify$/, '');
    const pod = readDaemonSet().spec.template.spec;
    const mountPoints = (pod.containers[0]!.volumeMounts ?? []).map((m) => m.mountPath.slice(1));
    const rootfs = agentRootfs(podman.dir, [...mountPoints, packageDir.slice(1)]);
    log = join(podman.dir, 'agent.log');
    const { options, args } = podmanArgs(pod, entrypoint);
    await podman.podman([
      'run', '-d', '--name', AGENT, '--cgroup-parent', `/${podman.cgroupParent}`,
      '--log-driver', 'k8s-file', '--log-opt', `path=${log}`,
      ...options,
      ...imageVolumes(packageDir),
      '--rootfs', rootfs,
      ...args,
    ]);
    await until(() => lines().some((l) => l.type === 'ready'), () => `the agent to be ready: ${tail(log, 20)}`, 30_000);
  }, 60_000);

  afterAll(() => removeAgent(podman, lab));

  it('runs in full mode and reports containers created on the host, held, with pod metadata', async () => {
    expect(lines()[0]).toMatchObject({ type: 'ready', mode: 'full' });
    const caps = JSON.parse(await podman.podman(['inspect', '--format', '{{json .EffectiveCaps}}', AGENT])) as string[];
    expect(caps.sort()).toEqual(['CAP_BPF', 'CAP_DAC_READ_SEARCH', 'CAP_PERFMON', 'CAP_SYS_ADMIN', 'CAP_SYS_NICE', 'CAP_SYS_PTRACE']);
    // SYS_NICE is there for watch's default nice: every thread of the agent runs at it.
    const pid = Number(await podman.podman(['inspect', '--format', '{{.State.Pid}}', AGENT]));
    const nices = readdirSync(`/proc/${pid}/task`).map((tid) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[16]));
    expect(new Set(nices)).toEqual(new Set([-10]));
    const followed = await expectFollowedFromHost(lab, Array.from({ length: 4 }, (_, i) => `ds-${i}`), lines);
    for (const [id, [pre, , , exit]] of followed) {
      expect(pre!.container?.name).toBe(`c-${id}`);
      expect(exit!.exitCode).toBe(137);
    }
  });
});
