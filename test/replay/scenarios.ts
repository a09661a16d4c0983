// The scenarios recorded into test/fixtures/replay/ (capture.ts drives them): each one's watcher
// options, its gate, and what its recording must show to be worth keeping. The same checks run
// on every replay. Other watchers' containers on a shared machine may be in a recording too:
// the checks look only at this scenario's own containers.
import { expect } from 'vitest';
import type { ContainerEvent, LifecycleType } from '../../src/index.js';
import { DENY_REASON, type Emission, type FixtureOptions, type GateSpec } from './fixture.js';

export interface Scenario {
  name: string;
  description: string;
  options: FixtureOptions;
  gate: GateSpec;
  /** throws unless the emissions show what the scenario is for */
  check(emitted: readonly Emission[]): void;
}

export const IDS = {
  runcCri: 'rp-runc-cri',
  runcRun: 'rp-runc-run',
  crun: 'rp-crun',
  runsc: 'rp-runsc',
  denied: 'rp-denied',
  slowOpen: 'rp-slow-open',
  slowClosed: 'rp-slow-closed',
  failed: 'rp-failed',
  /** not a valid container id: runc refuses it, the watcher says why it ignored it */
  invalid: 'rp/invalid',
  late: 'rp-late',
  fanotifyOnly: 'rp-fanotify-only',
  ebpfOnly: 'rp-ebpf-only',
  /** held by the gate when the reactor stalls: the watchdog answers it */
  watchdogHeld: 'rp-watchdog-held',
  /** run while the reactor stalls: the watchdog answers its exec, the watcher reports it after */
  watchdogRun: 'rp-watchdog-run',
} as const;

export const PODMAN_NAME = 'rp-podman';
export const CRI_NAMESPACE = 'ocinotify-replay';
/** the pod namespace of the kind-node scenario's pod */
export const NESTED_NAMESPACE = 'ocinotify-replay-nested';
/** pods whose held creation the deadline denies (gate-timeout) */
export const FAIL_CLOSED_NAMESPACE = 'rp-fail-closed';
export const BURST = Array.from({ length: 6 }, (_, i) => `rp-burst-${i}`);
/** the private runc path the runtime-change scenario installs and removes */
export const LATE_RUNC_SUFFIX = '/late/bin/runc';

const FOUR_STEPS: LifecycleType[] = ['precreate', 'create', 'start', 'exit'];
const NO_GATE: GateSpec = { deny: [], hang: [] };
const QUIET: FixtureOptions = { snapshot: false };

export function eventsOf(emitted: readonly Emission[]): ContainerEvent[] {
  return emitted.filter((e) => e.on === 'event').map((e) => e.payload as unknown as ContainerEvent);
}

function typesOf(events: readonly ContainerEvent[], id: string): LifecycleType[] {
  return events.filter((e) => e.id === id).map((e) => e.type);
}

function expectFourSteps(events: readonly ContainerEvent[], id: string, runtime: string, fields: Record<string, unknown> = {}, held = true): void {
  const own = events.filter((e) => e.id === id);
  expect(own.map((e) => e.type), id).toEqual(FOUR_STEPS);
  for (const e of own) expect(e, `${id} ${e.type}`).toMatchObject({ runtime: { name: runtime }, ...fields });
  expect(own[0]!.held, id).toBe(held);
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'runc',
    description: 'runc create/start/kill/delete of a bundle with containerd CRI annotations, then runc run --detach',
    options: QUIET,
    gate: NO_GATE,
    check(emitted) {
      const events = eventsOf(emitted);
      expectFourSteps(events, IDS.runcCri, 'runc', { manager: 'containerd', container: { name: `c-${IDS.runcCri}`, type: 'container', image: expect.any(String) } });
      expectFourSteps(events, IDS.runcRun, 'runc');
      expect(events.find((e) => e.id === IDS.runcRun)!.runtime.argv).toContain('run');
    },
  },
  {
    name: 'fanotify-only',
    description: 'runc create/start/kill/delete seen by fanotify alone: start is the `runc start` exec, exits come through pidfds',
    options: { snapshot: false, mode: 'fanotify-only' },
    gate: NO_GATE,
    check: (emitted) => expectFourSteps(eventsOf(emitted), IDS.fanotifyOnly, 'runc', { manager: 'containerd' }),
  },
  {
    name: 'ebpf-only',
    description: 'runc create/start/kill/delete seen by eBPF alone: nothing is held',
    options: { snapshot: false, mode: 'ebpf-only' },
    gate: NO_GATE,
    check: (emitted) => expectFourSteps(eventsOf(emitted), IDS.ebpfOnly, 'runc', { manager: 'containerd' }, false),
  },
  {
    name: 'crun',
    description: 'crun create/start/kill/delete (crun re-execs a sealed copy of itself)',
    options: QUIET,
    gate: NO_GATE,
    check: (emitted) => expectFourSteps(eventsOf(emitted), IDS.crun, 'crun', { manager: 'containerd' }),
  },
  {
    name: 'runsc',
    description: 'runsc (gVisor) create/start/kill/delete of a pod sandbox: start is `runsc start` exiting 0',
    options: QUIET,
    gate: NO_GATE,
    check: (emitted) => expectFourSteps(eventsOf(emitted), IDS.runsc, 'runsc', { sandboxId: IDS.runsc }),
  },
  {
    name: 'podman',
    description: 'podman run -d, kill, rm: podman -> conmon -> runc create; the name from conmon -n',
    options: QUIET,
    gate: NO_GATE,
    check(emitted) {
      const own = eventsOf(emitted).filter((e) => e.container.name === PODMAN_NAME);
      expect(own.length, 'podman events').toBeGreaterThan(0);
      expectFourSteps(own, own[0]!.id, 'runc', { manager: 'podman' });
    },
  },
  {
    name: 'containerd-cri',
    description: 'containerd CRI: a hostNetwork pod sandbox and one container, run, stopped and removed over gRPC',
    options: QUIET,
    gate: NO_GATE,
    check(emitted) {
      const own = eventsOf(emitted).filter((e) => e.pod?.namespace === CRI_NAMESPACE);
      const sandbox = own.find((e) => e.container.type === 'sandbox');
      const container = own.find((e) => e.container.type === 'container');
      expect(sandbox && container, 'a sandbox and a container').toBeTruthy();
      expectFourSteps(own, sandbox!.id, 'runc', { manager: 'containerd', containerdNamespace: 'k8s.io' });
      expectFourSteps(own, container!.id, 'runc', { manager: 'containerd', sandboxId: sandbox!.id, container: { name: 'app', type: 'container' } });
    },
  },
  {
    name: 'denied',
    description: 'a runc create the gate denies: the exec fails, no container',
    options: QUIET,
    gate: { deny: [IDS.denied], hang: [] },
    check(emitted) {
      const events = eventsOf(emitted);
      expect(typesOf(events, IDS.denied)).toEqual(['precreate', 'denied']);
      expect(events.find((e) => e.id === IDS.denied && e.type === 'denied')!.reason).toBe(DENY_REASON);
    },
  },
  {
    name: 'gate-timeout',
    description:
      'a gate that never answers: the deadline lets one runtime go (fail-open) and denies the other (a fail-closed rule for its namespace)',
    options: { snapshot: false, gateTimeoutMs: 300, timeoutRules: [{ namespace: FAIL_CLOSED_NAMESPACE, onTimeout: 'fail-closed' }] },
    gate: { deny: [], hang: [IDS.slowOpen, IDS.slowClosed] },
    check(emitted) {
      const events = eventsOf(emitted);
      expect(typesOf(events, IDS.slowOpen)).toEqual(FOUR_STEPS);
      expect(typesOf(events, IDS.slowClosed)).toEqual(['precreate', 'denied']);
      expect(events.find((e) => e.id === IDS.slowClosed && e.type === 'denied')!.reason).toBe('gate timeout (fail-closed)');
      const timeouts = emitted.filter((e) => e.on === 'gateTimeout').map((e) => e.payload);
      expect(timeouts).toContainEqual({ id: IDS.slowOpen, allowed: true, by: 'watcher' });
      expect(timeouts).toContainEqual({ id: IDS.slowClosed, allowed: false, by: 'watcher' });
    },
  },
  {
    name: 'failed',
    description: 'a runc create whose process cannot start (exits 1: no entrypoint), and one with an invalid id (a diagnostic)',
    options: QUIET,
    gate: NO_GATE,
    check(emitted) {
      const events = eventsOf(emitted);
      expect(typesOf(events, IDS.failed)).toEqual(['precreate', 'failed']);
      expect(events.find((e) => e.type === 'failed' && e.id === IDS.failed)!.reason).toBe('runtime exited with code 1');
      const diagnostics = emitted.filter((e) => e.on === 'diagnostic').map((e) => e.payload);
      expect(diagnostics).toContainEqual(
        expect.objectContaining({ code: 'ERR_ARGV_INVALID_ID', impact: 'ignored', runtime: expect.objectContaining({ argv: expect.arrayContaining([IDS.invalid]) }) }),
      );
    },
  },
  {
    name: 'restart-burst',
    description:
      'a watcher started in the middle of a burst of runc run --detach: the earlier containers are existing, the later ones from the stream, none twice',
    options: {},
    gate: NO_GATE,
    check(emitted) {
      const events = eventsOf(emitted);
      const existing = BURST.filter((id) => typesOf(events, id)[0] === 'existing');
      const streamed = BURST.filter((id) => typesOf(events, id)[0] === 'precreate');
      expect(existing.length, 'existing').toBeGreaterThan(0);
      expect(streamed.length, 'from the stream').toBeGreaterThan(0);
      for (const id of existing) expect(typesOf(events, id), id).toEqual(['existing', 'exit']);
      for (const id of streamed) expect(typesOf(events, id), id).toEqual(FOUR_STEPS);
      expect(existing.length + streamed.length).toBe(BURST.length);
    },
  },
  {
    name: 'runtime-change',
    description: 'a runc copy installed at a given runtime path while watching, a container run through it, then the copy removed',
    options: QUIET,
    gate: NO_GATE,
    check(emitted) {
      const changes = emitted.filter((e) => e.on === 'runtime' && String(e.payload.foundAt).endsWith(LATE_RUNC_SUFFIX));
      expect(changes.map((e) => e.payload.change)).toEqual(['added', 'removed']);
      expectFourSteps(eventsOf(emitted), IDS.late, 'runc', { runtime: { path: changes[0]!.payload.path } });
    },
  },
  {
    name: 'watchdog',
    description:
      'the reactor thread stopped 1.5 s (ptrace) with a creation held by a gate that never answers, and a runc run meanwhile: the watchdog answers both, the watcher reports them once it runs again',
    options: { snapshot: false, gateTimeoutMs: 500 },
    gate: { deny: [], hang: [IDS.watchdogHeld] },
    check(emitted) {
      const events = eventsOf(emitted);
      expectFourSteps(events, IDS.watchdogRun, 'runc', { manager: 'containerd' }, false);
      expect(events.find((e) => e.id === IDS.watchdogRun)!.heldBy).toBe('watchdog');
      expectFourSteps(events, IDS.watchdogHeld, 'runc', { manager: 'containerd' });
      const timeouts = emitted.filter((e) => e.on === 'gateTimeout').map((e) => e.payload);
      expect(timeouts).toContainEqual({ id: IDS.watchdogHeld, allowed: true, by: 'watchdog' });
      expect(emitted.filter((e) => e.on === 'watchdog').map((e) => e.payload.change)).toEqual(['takeover', 'back']);
    },
  },
  {
    name: 'kind-node',
    description:
      "a kind-style node (containerd 2.1, runc 1.3, a mount and pid namespace of its own) the watcher was told nothing of: its runc found from its first exec, that creation reported unheld, the next held, the node's pids made the host's",
    options: QUIET,
    gate: NO_GATE,
    check(emitted) {
      const own = eventsOf(emitted).filter((e) => e.pod?.namespace === NESTED_NAMESPACE);
      const sandbox = own.find((e) => e.container.type === 'sandbox');
      const container = own.find((e) => e.container.type === 'container');
      const nodeMntns = sandbox?.nodeMntns;
      const found = emitted.filter((e) => e.on === 'runtime' && e.payload.foundBy === 'exec' && e.payload.mntns === nodeMntns);
      expect(found.map((e) => [e.payload.change, e.payload.path])).toEqual([['added', '/usr/sbin/runc']]);
      expectFourSteps(own, sandbox!.id, 'runc', { manager: 'containerd', nodeMntns }, false);
      expectFourSteps(own, container!.id, 'runc', { manager: 'containerd', nodeMntns, container: { name: 'app', type: 'container' } });
    },
  },
];

export function scenario(name: string): Scenario {
  const found = SCENARIOS.find((s) => s.name === name);
  if (found === undefined) throw new Error(`no scenario ${name}`);
  return found;
}
