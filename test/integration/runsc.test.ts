// Real runsc (gVisor): `runsc create` starts a sandbox (runsc boot) and a gofer, both re-execs
// of runsc itself; the entrypoint runs inside the sandbox's kernel, so the host never sees it
// exec. `create` is the sandbox (the pid runsc records), `start` is `runsc start` exiting 0 (the
// sandbox has started the entrypoint), `exit` is the sandbox's exit. runsc's `delete` takes
// about 1.5 s here: most of this file's time.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent } from '../../src/index.js';
import { Lab, Recorder, criAnnotations, deleteWhenStopped, execRuntime, privileged } from '../kit/index.js';

const RUNSC = '/usr/bin/runsc';
const COUNT = 10;

/**
 * runsc reads the CRI annotations: a `container` joins its pod's existing sandbox. Each
 * container here is a pod sandbox of its own, as the first container of every pod is.
 */
function sandboxAnnotations(id: string): Record<string, string> {
  return { ...criAnnotations(id), 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': id };
}

describe.skipIf(!privileged())('real runsc (gVisor)', () => {
  let lab: Lab;
  let rec: Recorder;
  let stateRoot: string;
  const suffix = process.pid.toString(36);

  beforeAll(() => {
    lab = new Lab();
    stateRoot = join(lab.dir, 'runsc-state');
    rec = new Recorder();
  });

  afterAll(async () => {
    rec?.close();
    if (lab) {
      const list = JSON.parse((await runsc(['list', '--format', 'json']).catch(() => '[]')) || '[]') as { id: string }[] | null;
      for (const c of list ?? []) await runsc(['delete', '--force', c.id]).catch(() => undefined);
      await lab.cleanup();
    }
  });

  const runsc = (args: string[]): Promise<string> =>
    execRuntime(RUNSC, ['--root', stateRoot, '--network=none', ...args], lab.log);

  async function lifecycleOf(id: string): Promise<void> {
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], sandboxAnnotations(id));
    await runsc(['create', '--bundle', bundle, '--pid-file', join(lab.dir, `${id}.pid`), id]);
    await runsc(['start', id]);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
    await runsc(['kill', id, 'KILL']);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await deleteWhenStopped(RUNSC, ['--root', stateRoot, '--network=none'], id, lab.log);
  }

  function expectExactlyOnce(id: string): void {
    const events = rec.of(id);
    expect(events.map((e) => e.type), id).toEqual(['precreate', 'create', 'start', 'exit']);
    const [pre, create, start, exit] = events as [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];
    for (const e of events) {
      expect(e.runtime.name).toBe('runsc');
      expect(e.runtime.path).toBe(RUNSC);
      expect(e.manager).toBe('containerd');
      expect(e.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
      expect(e.container).toMatchObject({ name: `c-${id}`, type: 'sandbox' });
      expect(e.sandboxId).toBe(id);
    }
    expect(pre.held).toBe(true);
    expect(pre.specError).toBeNull();
    expect(create.pid).toBeGreaterThan(0);
    expect(start.pid).toBe(create.pid);
    expect(exit.pid).toBe(create.pid);
    expect(BigInt(create.monotonicNs)).toBeLessThan(BigInt(start.monotonicNs));
    expect(BigInt(start.monotonicNs)).toBeLessThan(BigInt(exit.monotonicNs));
    // The sandbox exits with its entrypoint's status the way a shell reports it: 128 + SIGKILL.
    expect(exit.exitCode).toBe(137);
  }

  it(`reports ${COUNT} sandboxed containers exactly once per step; gofer and sandbox re-execs are none`, async () => {
    const ids = Array.from({ length: COUNT }, (_, i) => `rs-${i}-${suffix}`);
    for (const id of ids) await lifecycleOf(id);
    for (const id of ids) expectExactlyOnce(id);
    const ours = rec.events.filter((e) => e.runtime.path === RUNSC && e.bundle?.startsWith(lab.dir));
    expect(ours).toHaveLength(COUNT * 4);
  });

  it('leaves no sandbox behind', async () => {
    expect(JSON.parse((await runsc(['list', '--format', 'json'])) || '[]') ?? []).toEqual([]);
  });
});
