// Records the replay fixtures from real runs: `make replay-fixtures` (root, real runtimes; not
// part of `make test`), or one of them: `make replay-fixtures SCENARIO=podman`. Each scenario
// sets up what it needs, starts a watcher on a RecordingPort, drives its containers, closes
// the watcher and cleans up. A recording is kept only if its scenario's check passes, it
// replays faithfully and it is small; otherwise it is captured again.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ContainerWatcher, type LifecycleType } from '../../src/index.js';
import { moveHugetlbToV1 } from '../integration/host-setup.js';
import { ptraceStopThread } from '../integration/pauses.js';
import { PodmanLab } from '../integration/managers.js';
import { Containerd, K8S_NAMESPACE } from '../kit/containerd.js';
import { containerConfig, CriClient, hostNetworkPod, type PodSandboxConfig } from '../kit/cri/client.js';
import { criAnnotations, deleteWhenStopped, execRuntime, Lab, RUNC, sq, until } from '../kit/index.js';
import { KindNode } from '../kit/node.js';
import { BUSYBOX_IMAGE } from '../kit/oci-image.js';
import { gateOf, readFixture, serialize, writeFixture, type Emission, type Fixture, type FixtureOptions } from './fixture.js';
import { RecordingPort } from './recording-port.js';
import { expectFaithful, replay } from './replay.js';
import { BURST, CRI_NAMESPACE, eventsOf, FAIL_CLOSED_NAMESPACE, IDS, LATE_RUNC_SUFFIX, NESTED_NAMESPACE, PODMAN_NAME, SCENARIOS, type Scenario } from './scenarios.js';

const MAX_FIXTURE_BYTES = 500 * 1024;
const ATTEMPTS = 3;
const CRUN = '/usr/bin/crun';
const RUNSC = '/usr/bin/runsc';
const SLEEP = ['/bin/sleep', '30'];

/** One recording: a watcher on a RecordingPort, started when the scenario is ready for it. */
class Capture {
  readonly port = new RecordingPort();
  readonly watcher: ContainerWatcher;
  readonly options: FixtureOptions;

  constructor(readonly scenario: Scenario, extra: FixtureOptions) {
    this.options = { ...scenario.options, ...extra };
    this.watcher = new ContainerWatcher({ ...this.options, gate: gateOf(scenario.gate) }, this.port);
    this.port.listen(this.watcher);
  }

  until(what: string, predicate: (emitted: readonly Emission[]) => boolean): Promise<void> {
    return until(() => predicate(this.port.emitted), what, 20_000);
  }

  step(id: string, type: LifecycleType): Promise<void> {
    return this.until(`${type} of ${id}`, (emitted) => eventsOf(emitted).some((e) => e.id === id && e.type === type));
  }

  close(): void {
    this.watcher.close();
  }

  fixture(): Fixture {
    return this.port.fixture(this.scenario.name, this.scenario.description, this.options, this.scenario.gate);
  }
}

type Begin = (extra?: FixtureOptions) => Capture;

/** A pod of a sandbox and one container over CRI, run to the end of both. */
async function podLifecycle(cri: CriClient, c: Capture, config: PodSandboxConfig): Promise<void> {
  const sandbox = await cri.runPodSandbox(config);
  const id = await cri.createContainer(sandbox, containerConfig('app', BUSYBOX_IMAGE.name, ['/bin/sleep', '3600']), config);
  await cri.startContainer(id);
  await c.step(id, 'start');
  await cri.stopContainer(id);
  await c.step(id, 'exit');
  await cri.removeContainer(id);
  await cri.stopPodSandbox(sandbox);
  await c.step(sandbox, 'exit');
  await cri.removePodSandbox(sandbox);
}
type Exec = (args: string[]) => Promise<string>;

/** create (+ start) or run, then kill and remove one container, each step seen by the watcher. */
async function lifecycle(c: Capture, exec: Exec, id: string, create: string[], remove: () => Promise<void>): Promise<void> {
  await exec(create);
  if (create[0] === 'create') await exec(['start', id]);
  await c.step(id, 'start');
  await exec(['kill', id, 'KILL']);
  await c.step(id, 'exit');
  await remove();
}

/** A Lab, a watcher started once its bundles exist, and the lab cleaned whatever happens. */
async function inLab(begin: Begin, drive: (lab: Lab, c: Capture) => Promise<void>, extra?: (lab: Lab) => FixtureOptions): Promise<Capture> {
  const lab = new Lab();
  let c: Capture | undefined;
  try {
    c = begin(extra?.(lab));
    await drive(lab, c);
    return c;
  } finally {
    c?.close();
    await lab.cleanup();
  }
}

/** A runtime exec expected to fail: its error is the point. */
async function refused(exec: Promise<unknown>): Promise<void> {
  await expect(exec).rejects.toThrow();
}

function runcLifecycle(lab: Lab, c: Capture, id: string, create: string[]): Promise<void> {
  return lifecycle(c, (args) => lab.runc(args), id, create, () => lab.deleteExited(id));
}

function oneRuncLifecycle(begin: Begin, id: string): Promise<Capture> {
  return inLab(begin, async (lab, c) => {
    const bundle = await lab.bundle(id, SLEEP, criAnnotations(id));
    await runcLifecycle(lab, c, id, ['create', '--bundle', bundle, id]);
  });
}

/** Reactor threads are named so (addon/reactor.cc). */
const REACTOR_THREAD = 'ocinotify';
const REACTOR_STOPPED_MS = 1500;

const DRIVERS: Record<string, (begin: Begin) => Promise<Capture>> = {
  watchdog: (begin) =>
    inLab(begin, async (lab, c) => {
      const held = IDS.watchdogHeld;
      const create = lab.runc(['create', '--bundle', await lab.bundle(held, SLEEP, criAnnotations(held)), held]);
      await c.step(held, 'precreate');
      const run = await lab.bundle(IDS.watchdogRun, ['/bin/true'], criAnnotations(IDS.watchdogRun));
      // Only the reactor thread stops: this one, with its event loop, runs on.
      const resume = await ptraceStopThread(process.pid, REACTOR_THREAD, REACTOR_STOPPED_MS);
      try {
        await lab.runc(['run', '--bundle', run, IDS.watchdogRun]);
        await create;
      } finally {
        await resume();
      }
      await c.until('the hand-back', (emitted) => emitted.some((e) => e.on === 'watchdog' && e.payload.change === 'back'));
      await c.step(IDS.watchdogRun, 'exit');
      await lifecycle(c, (args) => lab.runc(args), held, ['start', held], () => lab.deleteExited(held));
    }),

  runc: (begin) =>
    inLab(begin, async (lab, c) => {
      const cri = await lab.bundle(IDS.runcCri, SLEEP, criAnnotations(IDS.runcCri));
      await runcLifecycle(lab, c, IDS.runcCri, ['create', '--bundle', cri, IDS.runcCri]);
      const run = await lab.bundle(IDS.runcRun, SLEEP, null);
      await runcLifecycle(lab, c, IDS.runcRun, ['run', '--detach', '--bundle', run, IDS.runcRun]);
    }),

  'fanotify-only': (begin) => oneRuncLifecycle(begin, IDS.fanotifyOnly),
  'ebpf-only': (begin) => oneRuncLifecycle(begin, IDS.ebpfOnly),

  async crun(begin) {
    const restoreHost = moveHugetlbToV1();
    try {
      return await inLab(begin, async (lab, c) => {
        const global = ['--root', join(lab.dir, 'crun-state')];
        const bundle = await lab.bundle(IDS.crun, SLEEP, criAnnotations(IDS.crun));
        const exec: Exec = (args) => execRuntime(CRUN, [...global, ...args], lab.log);
        await lifecycle(c, exec, IDS.crun, ['create', '--bundle', bundle, IDS.crun], () => deleteWhenStopped(CRUN, global, IDS.crun, lab.log));
      });
    } finally {
      await restoreHost?.();
    }
  },

  runsc: (begin) =>
    inLab(begin, async (lab, c) => {
      const global = ['--root', join(lab.dir, 'runsc-state'), '--network=none'];
      const sandbox = { ...criAnnotations(IDS.runsc), 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': IDS.runsc };
      const bundle = await lab.bundle(IDS.runsc, SLEEP, sandbox);
      const exec: Exec = (args) => execRuntime(RUNSC, [...global, ...args], lab.log);
      const create = ['create', '--bundle', bundle, '--pid-file', join(lab.dir, 'runsc.pid'), IDS.runsc];
      await lifecycle(c, exec, IDS.runsc, create, () => deleteWhenStopped(RUNSC, global, IDS.runsc, lab.log));
    }),

  async podman(begin) {
    const lab = new PodmanLab();
    let c: Capture | undefined;
    try {
      c = begin();
      const id = await lab.run(PODMAN_NAME, SLEEP);
      await c.step(id, 'start');
      await lab.podman(['kill', PODMAN_NAME]);
      await c.step(id, 'exit');
      await lab.podman(['rm', PODMAN_NAME]);
      return c;
    } finally {
      c?.close();
      await lab.cleanup();
    }
  },

  async 'containerd-cri'(begin) {
    const ctd = await Containerd.start();
    const cri = new CriClient(ctd.socket);
    let c: Capture | undefined;
    try {
      await cri.waitReady();
      await ctd.importImages(K8S_NAMESPACE);
      c = begin();
      const pod = { name: 'rp-pod', namespace: CRI_NAMESPACE, uid: '7e1a0c55-0000-4000-8000-00000000000b' };
      const logDirectory = join(ctd.dir, 'pods', `${pod.namespace}_${pod.name}_${pod.uid}`);
      await podLifecycle(cri, c, hostNetworkPod({ ...pod, logDirectory, cgroupParent: ctd.cgroupParent }));
      return c;
    } finally {
      c?.close();
      cri.close();
      await ctd.stop();
    }
  },

  async 'kind-node'(begin) {
    const node = await KindNode.start();
    const cri = new CriClient(node.criSocket);
    let c: Capture | undefined;
    try {
      await cri.waitReady();
      c = begin();
      const pod = { name: 'rp-nested', namespace: NESTED_NAMESPACE, uid: '7e1a0c55-0000-4000-8000-00000000000c' };
      await podLifecycle(cri, c, hostNetworkPod({ ...pod, logDirectory: `/var/log/pods/${pod.namespace}_${pod.name}_${pod.uid}`, cgroupParent: '/ocinotify-pods' }));
      return c;
    } finally {
      c?.close();
      cri.close();
      await node.remove();
    }
  },

  denied: (begin) =>
    inLab(begin, async (lab, c) => {
      const bundle = await lab.bundle(IDS.denied, SLEEP, criAnnotations(IDS.denied));
      await refused(lab.runc(['create', '--bundle', bundle, IDS.denied]));
      await c.step(IDS.denied, 'denied');
    }),

  'gate-timeout': (begin) =>
    inLab(begin, async (lab, c) => {
      const open = await lab.bundle(IDS.slowOpen, SLEEP, criAnnotations(IDS.slowOpen));
      await runcLifecycle(lab, c, IDS.slowOpen, ['create', '--bundle', open, IDS.slowOpen]);
      const annotations = { ...criAnnotations(IDS.slowClosed), 'io.kubernetes.cri.sandbox-namespace': FAIL_CLOSED_NAMESPACE };
      const closed = await lab.bundle(IDS.slowClosed, SLEEP, annotations);
      await refused(lab.runc(['create', '--bundle', closed, IDS.slowClosed]));
      await c.step(IDS.slowClosed, 'denied');
    }),

  failed: (begin) =>
    inLab(begin, async (lab, c) => {
      const bundle = await lab.bundle(IDS.failed, ['/nonexistent'], criAnnotations(IDS.failed));
      await refused(lab.runc(['create', '--bundle', bundle, IDS.failed]));
      await c.step(IDS.failed, 'failed');
      await refused(lab.runc(['create', '--bundle', bundle, IDS.invalid]));
      await c.until('the invalid id diagnosed', (emitted) =>
        emitted.some((e) => e.on === 'diagnostic' && JSON.stringify(e.payload).includes(IDS.invalid)),
      );
    }),

  'restart-burst': async (begin) => {
    const lab = new Lab();
    let c: Capture | undefined;
    try {
      const bundles = await Promise.all(BURST.map((id) => lab.bundle(id, SLEEP, criAnnotations(id))));
      const runc = `${sq(RUNC)} --root ${sq(lab.stateRoot)}`;
      const script = BURST.map((id, i) => `${runc} run --detach --bundle ${sq(bundles[i]!)} ${id} </dev/null >>${sq(lab.log)} 2>&1; sleep 0.3`);
      const burst = spawn('/bin/sh', ['-c', script.join('\n')], { stdio: 'ignore' });
      const finished = new Promise((resolve) => burst.once('exit', resolve));
      await until(() => stateDirs(lab).length >= 2, 'the burst to begin', 20_000);
      c = begin({ stateRoots: [lab.stateRoot] });
      await finished;
      const seen = (id: string) => (emitted: readonly Emission[]): boolean =>
        eventsOf(emitted).some((e) => e.id === id && (e.type === 'existing' || e.type === 'start'));
      for (const id of BURST) await c.until(`${id} reported`, seen(id));
      for (const id of BURST) await lab.runc(['kill', id, 'KILL']);
      for (const id of BURST) await c.step(id, 'exit');
      for (const id of BURST) await lab.deleteExited(id);
      return c;
    } finally {
      c?.close();
      await lab.cleanup();
    }
  },

  'runtime-change': async (begin) => {
    const dir = mkdtempSync(join(tmpdir(), 'ocinotify-rp-bin-'));
    const path = join(dir, 'opt', LATE_RUNC_SUFFIX);
    const change = (what: string) => (emitted: readonly Emission[]): boolean =>
      emitted.some((e) => e.on === 'runtime' && e.payload.change === what && e.payload.foundAt === path);
    try {
      return await inLab(
        begin,
        async (lab, c) => {
          mkdirSync(dirname(path), { recursive: true });
          copyFileSync(RUNC, `${path}.dpkg-new`);
          renameSync(`${path}.dpkg-new`, path);
          await c.until('the copy added', change('added'));
          const bundle = await lab.bundle(IDS.late, SLEEP, criAnnotations(IDS.late));
          const exec: Exec = (args) => execRuntime(path, ['--root', lab.stateRoot, ...args], lab.log);
          await lifecycle(c, exec, IDS.late, ['create', '--bundle', bundle, IDS.late], () => lab.deleteExited(IDS.late));
          unlinkSync(path);
          await c.until('the copy removed', change('removed'));
        },
        () => ({ runtimePaths: [path] }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

function stateDirs(lab: Lab): string[] {
  try {
    return readdirSync(lab.stateRoot);
  } catch {
    return [];
  }
}

/** Captures until a recording passes its check, replays faithfully and is small enough. */
async function capture(scenario: Scenario): Promise<{ path: string; bytes: number }> {
  const failures: string[] = [];
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const c = await DRIVERS[scenario.name]!((extra = {}) => new Capture(scenario, extra));
    const fixture = c.fixture();
    try {
      scenario.check(fixture.emitted);
      const bytes = Buffer.byteLength(serialize(fixture));
      if (bytes > MAX_FIXTURE_BYTES) throw new Error(`${bytes} bytes: the machine was busy with other containers`);
      expectFaithful(fixture, await replay(fixture));
      return { path: writeFixture(fixture), bytes };
    } catch (err) {
      failures.push(`attempt ${attempt}: ${(err as Error).message.slice(0, 2000)}`);
      console.warn(`${scenario.name}: recording ${attempt} not kept: ${failures.at(-1)!.slice(0, 300)}`);
    }
  }
  throw new Error(`${scenario.name}: no usable recording\n${failures.join('\n')}`);
}

// Root and the real runtimes: a capture that cannot run fails, it does not skip.
describe('replay fixtures, captured from real runs', () => {
  for (const scenario of SCENARIOS) {
    it(scenario.name, async () => {
      const { path, bytes } = await capture(scenario);
      console.log(`${path}: ${bytes} bytes, ${readFixture(scenario.name).emitted.length} emissions`);
    });
  }
});
