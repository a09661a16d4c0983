// The watcher the way it is deployed: in a container (podman), with the host's / mounted at
// /host, its own pid and mount namespaces, and the privileges a DaemonSet gives it; containers
// are created on the host, outside it.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, RUNC, execRuntime, privileged } from '../kit/index.js';
import { agentLines, agentRootfs, expectFollowedFromHost, removeAgent, runAgent, type AgentLine } from './agent-pod.js';
import { PodmanLab } from './managers.js';

describe.skipIf(!privileged())('the watcher in a pod', () => {
  let podman: PodmanLab;
  let lab: Lab;
  let out: string;
  const lines = (): AgentLine[] => agentLines(join(out, 'events.ndjson'));

  beforeAll(async () => {
    podman = new PodmanLab();
    lab = new Lab();
    // The agent image: the host's /usr (node, libc) read-only, the package, nothing of the host's /run.
    const rootfs = agentRootfs(podman.dir, ['host', 'ocinotify', 'out']);
    out = join(podman.dir, 'out');
    mkdirSync(out);
    await runAgent(podman, rootfs, out);
  }, 60_000);

  afterAll(() => removeAgent(podman, lab));

  it('runs in full mode without the host pid namespace and resolves host containers', async () => {
    expect(lines()[0]).toMatchObject({ type: 'ready', mode: 'full' });
    const followed = await expectFollowedFromHost(lab, Array.from({ length: 6 }, (_, i) => `in-pod-${i}`), lines);
    for (const [id, [pre, create]] of followed) {
      expect(pre!.bundle).toBe(join(lab.dir, 'bundles', id));
      expect(create!.watcherPid).toBeNull(); // invisible from the pod's pid namespace
    }
  });

  it("pairs held execs with their own argv after execs of a runtime-named file it holds none of", async () => {
    // Invisible execs are paired with their argv in the kernel's order: an exec that reaches no
    // permission check (a copy of runc nobody named, a kind node's before it is learnt) must not
    // take the argv slot of the next one.
    const unlisted = join(lab.dir, 'unlisted', 'runc');
    mkdirSync(join(lab.dir, 'unlisted'));
    copyFileSync(RUNC, unlisted);
    for (let i = 0; i < 3; i++) await execRuntime(unlisted, ['--version'], lab.log);
    await expectFollowedFromHost(lab, Array.from({ length: 3 }, (_, i) => `in-pod-after-${i}`), lines);
  });
});
