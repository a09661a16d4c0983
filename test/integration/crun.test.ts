// Real crun through the full kernel path. crun re-execs a sealed copy of itself
// (execveat(memfd, "", AT_EMPTY_PATH)) before it does anything: one process, one container.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent } from '../../src/index.js';
import { Lab, Recorder, criAnnotations, deleteWhenStopped, execRuntime, privileged } from '../kit/index.js';
import { hugetlbOnV2, moveHugetlbToV1 } from './host-setup.js';

const CRUN = '/usr/bin/crun';
const COUNT = 12;

describe.skipIf(!privileged())('real crun', () => {
  let lab: Lab;
  let rec: Recorder;
  let stateRoot: string;
  let restoreHost: (() => Promise<void>) | null = null;
  const suffix = process.pid.toString(36);

  beforeAll(() => {
    restoreHost = moveHugetlbToV1();
    lab = new Lab();
    stateRoot = join(lab.dir, 'crun-state');
    rec = new Recorder();
  });

  afterAll(async () => {
    rec?.close();
    if (lab) {
      const list = await crun(['list', '--quiet']).catch(() => '');
      for (const id of list.split('\n').filter(Boolean)) await crun(['delete', '--force', id]).catch(() => undefined);
      await lab.cleanup();
    }
    await restoreHost?.();
  });

  const crun = (args: string[]): Promise<string> => execRuntime(CRUN, ['--root', stateRoot, ...args], lab.log);

  async function lifecycleOf(id: string, verb: 'create' | 'run'): Promise<void> {
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    if (verb === 'create') {
      await crun(['create', '--bundle', bundle, '--pid-file', join(lab.dir, `${id}.pid`), id]);
      await crun(['start', id]);
    } else {
      await crun(['run', '--detach', '--bundle', bundle, id]);
    }
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
    await crun(['kill', id, 'KILL']);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await deleteWhenStopped(CRUN, ['--root', stateRoot], id, lab.log);
  }

  function expectExactlyOnce(id: string, verb: 'create' | 'run'): void {
    const events = rec.of(id);
    expect(events.map((e) => e.type), id).toEqual(['precreate', 'create', 'start', 'exit']);
    const [pre, create, start, exit] = events as [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];
    for (const e of events) {
      expect(e.runtime.name).toBe('crun');
      expect(e.runtime.path).toBe(CRUN);
      expect(e.runtime.argv).toContain(verb);
      expect(e.manager).toBe('containerd');
      expect(e.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
      expect(e.container.name).toBe(`c-${id}`);
    }
    expect(pre.held).toBe(true);
    expect(pre.specError).toBeNull();
    expect(create.pid).toBeGreaterThan(0);
    expect(start.pid).toBe(create.pid);
    expect(create.mntns).toBeGreaterThan(0);
    if (verb === 'create') expect(BigInt(create.monotonicNs)).toBeLessThan(BigInt(start.monotonicNs));
    expect(exit.exitCode).toBe(137);
    expect(exit.signal).toBe(9);
  }

  it('runs here once hugetlb is off the cgroup v2 hierarchy', () => {
    expect(hugetlbOnV2()).toBe(false);
    expect(rec.watcher.mode).toBe('full');
    expect(rec.watcher.runtimes.map((r) => r.path)).toContain(CRUN);
  });

  it(`reports ${COUNT} crun create/start containers exactly once per step, re-exec and all`, async () => {
    const ids = Array.from({ length: COUNT }, (_, i) => `crun-${i}-${suffix}`);
    for (const id of ids) await lifecycleOf(id, 'create');
    for (const id of ids) expectExactlyOnce(id, 'create');
  });

  it('reports crun run --detach containers exactly once per step', async () => {
    const ids = Array.from({ length: 4 }, (_, i) => `crun-run-${i}-${suffix}`);
    for (const id of ids) await lifecycleOf(id, 'run');
    for (const id of ids) expectExactlyOnce(id, 'run');
  });

  it('reports 8 containers created 4 in parallel exactly once per step', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `crun-par-${i}-${suffix}`);
    await Promise.all([0, 1, 2, 3].map(async (w) => {
      for (let i = w; i < ids.length; i += 4) await lifecycleOf(ids[i]!, 'create');
    }));
    for (const id of ids) expectExactlyOnce(id, 'create');
  });

  it('reports no container of any other id and leaves none behind', async () => {
    const ours = rec.events.filter((e) => e.id.startsWith('crun-') && e.id.endsWith(suffix));
    expect(ours).toHaveLength((COUNT + 4 + 8) * 4);
    expect(await crun(['list', '--quiet'])).toBe('');
  });
});
