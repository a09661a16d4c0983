// close() leaves nothing behind: fds, fanotify groups and marks, BPF programs,
// links and maps, tracefs mounts; and it lets go of a held runtime at once.
import { getEventListeners } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerWatcher, type ContainerEvent, type GateVerdict } from '../../src/index.js';
import { Lab, Recorder, criAnnotations, privileged, sleep, timedRunc, until } from '../kit/index.js';
import { PROGRAM_NAMES, kernelState, ownBpfIds, systemBpfIds, tracefsMounts, type KernelState } from './kernel-state.js';

const CYCLES = 20;

describe.skipIf(!privileged())('close() leaves nothing behind', () => {
  let lab: Lab;

  beforeAll(() => {
    lab = new Lab();
  });

  afterAll(async () => {
    await lab?.cleanup();
  });

  /** Asserts what one open watcher adds to before. */
  function expectOpen(open: KernelState, before: KernelState): void {
    expect(open.fanotifyGroups).toBe(before.fanotifyGroups + 1);
    expect(open.fanotifyMarks - before.fanotifyMarks).toBeGreaterThanOrEqual(1);
    expect(open.bpfLinks - before.bpfLinks).toBeGreaterThanOrEqual(PROGRAM_NAMES.length);
    expect(open.bpfProgs - before.bpfProgs).toBe(PROGRAM_NAMES.length);
    expect(open.bpfMaps).toBeGreaterThan(before.bpfMaps);
    expect(open.systemProgs - before.systemProgs).toBe(PROGRAM_NAMES.length);
    expect(open.systemLinks - before.systemLinks).toBeGreaterThanOrEqual(PROGRAM_NAMES.length);
    expect(open.tracefs).toEqual(before.tracefs);
  }

  /** After close: this process is back to before at once; the kernel has freed what we loaded. */
  async function expectClosed(before: KernelState, loaded: { progs: number[]; links: number[] }): Promise<void> {
    const gone = (): boolean => {
      const sys = systemBpfIds();
      return !sys.progs.some((id) => loaded.progs.includes(id)) && !sys.links.some((id) => loaded.links.includes(id));
    };
    await until(gone, `the kernel to free BPF programs ${loaded.progs} and links ${loaded.links}`, 2000);
    expect(kernelState()).toEqual(before);
  }

  it(`close() returns every fd, fanotify mark and BPF object, ${CYCLES} times over`, async () => {
    const before = kernelState();
    console.log(`baseline: ${JSON.stringify(before)}`);
    let openMs = 0;
    let closeMs = 0;
    for (let i = 0; i <= CYCLES; i++) {
      let t = performance.now();
      const w = new ContainerWatcher();
      openMs += performance.now() - t;
      const open = kernelState();
      if (i === 0) console.log(`open: ${JSON.stringify(open)}`);
      expect(w.mode).toBe('full');
      expectOpen(open, before);
      const loaded = ownBpfIds();
      expect(loaded.progs).toHaveLength(PROGRAM_NAMES.length);
      t = performance.now();
      w.close();
      closeMs += performance.now() - t;
      await expectClosed(before, loaded);
    }
    console.log(`mean over ${CYCLES + 1} cycles: open ${(openMs / (CYCLES + 1)).toFixed(0)} ms, close ${(closeMs / (CYCLES + 1)).toFixed(0)} ms`);
  });

  it('close() twice is harmless', async () => {
    const before = kernelState();
    const w = new ContainerWatcher();
    const loaded = ownBpfIds();
    let closes = 0;
    w.on('close', () => closes++);
    w.close();
    expect(() => w.close()).not.toThrow();
    expect(() => w[Symbol.dispose]()).not.toThrow();
    expect(closes).toBe(1);
    expect(w.stats()).toMatchObject({ sessions: 0, containers: 0 });
    await expectClosed(before, loaded);
  });

  it('a watcher closed while a create is held lets the runtime go at once', async () => {
    const id = 'held-at-close';
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const before = kernelState();
    let gateCalls = 0;
    const rec = new Recorder(
      {
        gateTimeoutMs: 10_000,
        // Only ours is held: runtimes exec'd elsewhere on this machine go at once.
        gate: (e) => {
          if (e.id !== id) return 'allow';
          gateCalls++;
          return new Promise<GateVerdict>(() => undefined);
        },
      },
      new Set([id]),
    );
    const loaded = ownBpfIds();
    try {
      const create = timedRunc(lab, ['create', '--bundle', bundle, id]);
      await rec.until((ev) => ev.some((e) => e.type === 'precreate'), 5000);
      await rec.fence(lab);
      // ours, and maybe another runtime exec'd on this machine at this moment
      expect(rec.watcher.stats().heldNow).toBeGreaterThanOrEqual(1);
      expect(gateCalls).toBe(1);
      rec.close();
      const res = await create;
      console.log(`runc create held with a 10 s deadline, watcher closed: ${res.ms} ms`);
      expect(res.code, res.stderr).toBe(0);
      expect(res.ms).toBeLessThan(2000);
      await expectClosed(before, loaded);
      expect(rec.of(id).map((e) => e.type)).toEqual(['precreate']);
    } finally {
      rec.close();
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });

  it('a verdict that settles after close() is ignored', async () => {
    const id = 'late-verdict';
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    let settled = false;
    const rec = new Recorder(
      {
        gateTimeoutMs: 10_000,
        gate: async (): Promise<GateVerdict> => {
          await sleep(200);
          settled = true;
          return 'deny';
        },
      },
      new Set([id]),
    );
    try {
      const create = timedRunc(lab, ['create', '--bundle', bundle, id]);
      await rec.until((ev) => ev.some((e) => e.type === 'precreate'), 5000);
      rec.close();
      const res = await create;
      // The watcher's handler of the verdict runs in the turn the gate settles in: nothing more to wait for.
      await until(() => settled, 'the gate to settle', 2000);
      expect(res.code, res.stderr).toBe(0);
      expect(res.ms).toBeLessThan(2000);
    } finally {
      rec.close();
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });

  it('an aborted options.signal closes the watcher', async () => {
    const before = kernelState();
    const ac = new AbortController();
    const w = new ContainerWatcher({ signal: ac.signal });
    const loaded = ownBpfIds();
    let closes = 0;
    w.on('close', () => closes++);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    expect(kernelState().fanotifyGroups).toBe(before.fanotifyGroups + 1);
    ac.abort();
    expect(closes).toBe(1);
    await expectClosed(before, loaded);
    w.close();
    expect(closes).toBe(1);

    // closed by hand: the listener on the caller's signal goes too
    const ac2 = new AbortController();
    const w2 = new ContainerWatcher({ signal: ac2.signal });
    w2.close();
    expect(getEventListeners(ac2.signal, 'abort')).toHaveLength(0);

    // already aborted: closed before the constructor returns
    const w3 = new ContainerWatcher({ signal: AbortSignal.abort() });
    expect(kernelState()).toEqual(before);
    const events: ContainerEvent[] = [];
    for await (const e of w3) events.push(e);
    expect(events).toEqual([]);
  });

  it('for await (const e of watcher) yields events and ends cleanly on close()', async () => {
    const id = 'iterated';
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const before = kernelState();
    const w = new ContainerWatcher();
    const loaded = ownBpfIds();
    const seen: ContainerEvent[] = [];
    const loop = (async () => {
      for await (const e of w) if (e.id === id) seen.push(e);
      return 'ended';
    })();
    try {
      await lab.runc(['create', '--bundle', bundle, id]);
      await lab.runc(['start', id]);
      await until(() => seen.some((e) => e.type === 'start'), 'the start event', 10_000);
      w.close();
      await expect(loop).resolves.toBe('ended');
      expect(seen.map((e) => e.type)).toEqual(['precreate', 'create', 'start']);
      await expectClosed(before, loaded);
    } finally {
      w.close();
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });

  it('leaves no tracefs mount behind', () => {
    const before = tracefsMounts();
    console.log(`tracefs mounted before: ${before.length > 0 ? before.join('; ') : 'no (the addon mounts it for the attach)'}`);
    const w = new ContainerWatcher();
    expect(w.mode).toBe('full');
    expect(tracefsMounts()).toEqual(before);
    w.close();
    expect(tracefsMounts()).toEqual(before);
  });
});
