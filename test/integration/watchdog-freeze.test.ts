// What no watchdog of the watcher's own can cover: a freeze of the cgroup that holds both (the
// cgroup freezer, `podman pause`, a kubelet's pod freeze). Measured here with the agent under
// podman as it is deployed; then the way out: a watchdog sidecar, in a container (a cgroup) of
// its own, holding the group over a shared socket. While frozen, every runtime exec on this
// machine waits - other tests' too: freezes are short and always thawed in a finally, through
// the freezer's own file, which needs no runtime exec.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Lab, RUNC, criAnnotations, ended, privileged, sleep, tail, timedRunc, timedShell, until } from '../kit/index.js';
import { AGENT, agentLines, agentRootfs, imageVolumes, removeAgent, runAgent, type AgentLine } from './agent-pod.js';
import { PodmanLab } from './managers.js';

const SIDECAR = 'ocinotify-watchdog-sidecar';
const BUDGET_MS = 1000;
const SLACK_MS = 500;
const FREEZE_MS = 1500;
const KILL_MS = 15_000;
/** the watchdog executable of this tree, as the agent's image has it at /ocinotify */
const WATCHDOG_IN_IMAGE = '/ocinotify/build/Release/ocinotify-watchdog';
const SOCKET_DIR = '/run/ocinotify';

interface Line extends AgentLine {
  change?: string;
  heldBy?: string | null;
  answered?: { allowed: number; denied: number };
}

describe.skipIf(!privileged())('a frozen cgroup', () => {
  let podman: PodmanLab;
  let lab: Lab;
  let out: string;
  let sockets: string;
  let rootfs: string;
  const lines = (): Line[] => agentLines(join(out, 'events.ndjson'));

  beforeAll(() => {
    podman = new PodmanLab();
    lab = new Lab();
    rootfs = agentRootfs(podman.dir, ['host', 'ocinotify', 'out', 'run/ocinotify']);
    out = join(podman.dir, 'out');
    sockets = join(podman.dir, 'sockets');
    mkdirSync(out);
    mkdirSync(sockets);
  });

  afterEach(async () => {
    await podman.podman(['rm', '--force', '--time', '5', SIDECAR]).catch(() => undefined);
    await podman.podman(['rm', '--force', '--time', '5', AGENT]).catch(() => undefined);
  });

  afterAll(() => removeAgent(podman, lab));

  /** The agent with these watch arguments and the sockets' directory; resolves with its pid once it is ready. */
  async function startAgent(args: string[]): Promise<number> {
    writeFileSync(join(out, 'events.ndjson'), '');
    await runAgent(podman, rootfs, out, ['--gate-timeout', String(BUDGET_MS), ...args], ['-v', `${sockets}:${SOCKET_DIR}`]);
    return Number((await podman.podman(['inspect', '--format', '{{.State.Pid}}', AGENT])).trim());
  }

  /** The v1 freezer file of pid's cgroup (this machine's podman: cgroupfs, cgroups v1). */
  function freezerOf(pid: number): string {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /^\d+:freezer:/.test(l));
    if (!line) throw new Error(`no freezer cgroup for ${pid}`);
    return join('/sys/fs/cgroup/freezer', line.slice(line.indexOf(':freezer:') + ':freezer:'.length), 'freezer.state');
  }

  function thaw(state: string): void {
    if (existsSync(state)) writeFileSync(state, 'THAWED');
  }

  it('frozen with the watchdog it spawned inside it, the agent holds every runtime exec until thawed', async () => {
    const agent = await startAgent([]);
    const state = freezerOf(agent);
    writeFileSync(state, 'FROZEN');
    let v;
    try {
      await until(() => readFileSync(state, 'utf8').trim() === 'FROZEN', 'the freeze');
      const thawAt = sleep(FREEZE_MS).then(() => thaw(state));
      v = await timedShell(`${RUNC} --version >/dev/null`, KILL_MS);
      await thawAt;
    } finally {
      thaw(state);
    }
    console.log(`cgroup of agent and watchdog frozen ${FREEZE_MS} ms: runc --version on the host took ${v.ms} ms`);
    expect(v.code).toBe(0);
    // It waited for the thaw: nothing in the frozen cgroup could answer it.
    expect(v.ms).toBeGreaterThan(FREEZE_MS - 200);
  });

  it('a watchdog sidecar in a cgroup of its own answers for a paused agent (podman pause): runtimes finish within the budget, nothing is lost', async () => {
    const socket = `${SOCKET_DIR}/watchdog.sock`;
    // What a pod's second container would run: no capability, its own pid namespace.
    await podman.podman([
      'run', '-d', '--name', SIDECAR, '--cgroup-parent', `/${podman.cgroupParent}`,
      '--cap-drop', 'all',
      ...imageVolumes('/ocinotify'),
      '-v', `${sockets}:${SOCKET_DIR}`,
      '--rootfs', rootfs,
      WATCHDOG_IN_IMAGE, '--listen', socket,
    ]);
    await until(() => existsSync(join(sockets, 'watchdog.sock')), 'the sidecar to listen');
    const agent = await startAgent(['--watchdog-socket', socket]);
    const state = freezerOf(agent);
    const id = 'frozen-with-sidecar';
    const bundle = lab.bundle(id, ['/bin/true'], criAnnotations(id));
    await podman.podman(['pause', AGENT]);
    let results;
    try {
      expect(readFileSync(state, 'utf8').trim()).toBe('FROZEN');
      results = await Promise.all([timedShell(`${RUNC} --version >/dev/null`, KILL_MS), timedRunc(lab, ['run', '--bundle', bundle, id], KILL_MS)]);
      await podman.podman(['unpause', AGENT]);
    } finally {
      thaw(state);
    }
    const [v, run] = results;
    console.log(`agent paused (podman pause) with a watchdog sidecar: runc --version ${v.ms} ms, runc run ${run.ms} ms (budget ${BUDGET_MS} ms)`);
    expect(v.code).toBe(0);
    expect(run.code, tail(lab.log)).toBe(0);
    expect(v.ms).toBeLessThan(BUDGET_MS + SLACK_MS);
    expect(run.ms).toBeLessThan(BUDGET_MS + SLACK_MS);
    await until(() => ended(lines() as { id?: string; type: string }[], id), () => `${id} reported after the thaw: ${tail(join(out, 'stderr.log'), 10)}`, 20_000);
    expect(lines().filter((l) => l.id === id).map((l) => l.type)).toEqual(['precreate', 'create', 'start', 'exit']);
    expect(lines().find((l) => l.id === id && l.type === 'precreate')).toMatchObject({ held: false, heldBy: 'watchdog' });
    expect(lines().filter((l) => l.type === 'watchdog').map((l) => l.change)).toEqual(['takeover', 'back']);
  });
});
