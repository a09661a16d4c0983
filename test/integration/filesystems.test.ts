// A runtime binary on each filesystem nodes keep one on: tmpfs, ext4, xfs, a btrfs subvolume,
// overlayfs with its layers on one filesystem and on two (xino off, the binary in the lower and
// in the upper layer; xino on). On some of them stat(2) and the kernel name the binary's inode
// differently (addon/inode_key.h); the BPF side reads the kernel's. A copy of runc on each is
// given to the watcher (runtimePaths) and a container with containerd's CRI annotations runs
// through it: precreate (held), create, start, exit (7), with its pod. Needs root, loop devices
// and the kernel's ext4, xfs, btrfs and overlay (mkfs.xfs, mkfs.btrfs); every mount and loop
// device is undone in afterAll, whatever failed. A copy nobody listed is found from its first
// exec on an overlay where the two keys differ.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent, RuntimeChangeEvent, WatchOptions } from '../../src/index.js';
import { liveReads } from '../../src/host/reads.js';
import { loadAddon } from '../../src/native.js';
import { Lab, RUNC, Recorder, criAnnotations, deleteWhenStopped, ended, execRuntime, privileged, runcStatus, until } from '../kit/index.js';
import { expectSteps } from './harness.js';
import { Mounts } from './mounts.js';

/** Where the copies are, and whether stat(2)'s device differs from the kernel's s_dev there. */
const PLACES = [
  { name: 'tmpfs', keysDiffer: false },
  { name: 'ext4', keysDiffer: false },
  { name: 'xfs', keysDiffer: false },
  { name: 'btrfs subvolume', keysDiffer: true },
  { name: 'overlayfs, layers on one filesystem', keysDiffer: false },
  { name: 'overlayfs, layers on two filesystems, xino off, lower layer', keysDiffer: true },
  { name: 'overlayfs, layers on two filesystems, xino off, upper layer', keysDiffer: true },
  { name: 'overlayfs, layers on two filesystems, xino on', keysDiffer: false },
] as const;
type PlaceName = (typeof PLACES)[number]['name'];

function install(path: string): string {
  mkdirSync(dirname(path), { recursive: true });
  copyFileSync(RUNC, path);
  return path;
}

describe.skipIf(!privileged())('a runtime binary on each filesystem', () => {
  let lab: Lab;
  let mounts: Mounts;
  let rec: Recorder;
  const runcAt = new Map<PlaceName, string>();
  const changes: RuntimeChangeEvent[] = [];
  const suffix = process.pid.toString(36);

  beforeAll(() => {
    lab = new Lab();
    mounts = new Mounts(mkdtempSync(join(tmpdir(), 'ocinotify-fs-')));
    const tmp = mounts.mount('tmpfs', 'tmpfs', 'tmpfs');
    const ext4 = mounts.image('ext4', 64);
    const xfs = mounts.image('xfs', 300);
    const btrfs = mounts.image('btrfs', 256);
    execFileSync('btrfs', ['-q', 'subvolume', 'create', join(btrfs, 'subvolume')]);
    const place = (name: PlaceName, runc: string): Map<PlaceName, string> => runcAt.set(name, runc);
    place('tmpfs', install(join(tmp, 'bin', 'runc')));
    place('ext4', install(join(ext4, 'bin', 'runc')));
    place('xfs', install(join(xfs, 'bin', 'runc')));
    place('btrfs subvolume', install(join(btrfs, 'subvolume', 'bin', 'runc')));
    // A layer's files are put there before the overlay is mounted over it.
    install(join(tmp, 'one', 'lower', 'bin', 'runc'));
    const oneFs = mounts.overlay('overlay-one-fs', join(tmp, 'one', 'lower'), join(tmp, 'one', 'upper'));
    place('overlayfs, layers on one filesystem', join(oneFs, 'bin', 'runc'));
    install(join(tmp, 'two', 'lower', 'bin', 'runc'));
    const twoFs = mounts.overlay('overlay-two-fs', join(tmp, 'two', 'lower'), join(xfs, 'two', 'upper'), ['xino=off']);
    place('overlayfs, layers on two filesystems, xino off, lower layer', join(twoFs, 'bin', 'runc'));
    place('overlayfs, layers on two filesystems, xino off, upper layer', install(join(twoFs, 'upper-bin', 'runc')));
    install(join(tmp, 'xino', 'lower', 'bin', 'runc'));
    writeFileSync(join(tmp, 'xino', 'lower', 'bin', 'runc.conf'), '');
    const xino = mounts.overlay('overlay-xino', join(tmp, 'xino', 'lower'), join(xfs, 'xino', 'upper'), ['xino=on']);
    place('overlayfs, layers on two filesystems, xino on', join(xino, 'bin', 'runc'));
    rec = new Recorder({ runtimePaths: [...runcAt.values()] });
    rec.watcher.on('runtime', (e: RuntimeChangeEvent) => changes.push(e));
  });

  afterAll(async () => {
    // The watcher holds each binary open: closed before the filesystems go.
    rec?.close();
    await lab?.cleanup();
    try {
      mounts?.cleanup();
    } finally {
      if (mounts) rmSync(mounts.dir, { recursive: true, force: true });
    }
  });

  /**
   * create, start, the entrypoint's exit, delete - through runc; then the container's events,
   * once caughtUp says the watcher has reported all it will.
   */
  async function lifecycleWith(runc: string, id: string, caughtUp: () => Promise<void>, recorder = rec): Promise<ContainerEvent[]> {
    const bundle = lab.bundle(id, ['/bin/sh', '-c', 'exit 7'], criAnnotations(id));
    const global = ['--root', lab.stateRoot];
    await execRuntime(runc, [...global, 'create', '--bundle', bundle, id], lab.log);
    await execRuntime(runc, [...global, 'start', id], lab.log);
    await until(async () => (await runcStatus(lab, id)) === 'stopped', `${id} to stop`);
    await caughtUp();
    await deleteWhenStopped(runc, global, id, lab.log);
    return recorder.of(id);
  }

  function expectLifecycle(events: ContainerEvent[], id: string, where: string, runc: string, recorder = rec): void {
    const [pre] = expectSteps(
      events,
      `${id} (${where})`,
      {
        manager: 'containerd',
        pod: { name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` },
        container: { name: `c-${id}`, type: 'container', image: 'demo.local/busybox:1' },
        runtime: { name: 'runc' },
      },
      { exitCode: 7, signal: null },
      recorder,
    );
    expect(pre.runtime.path, where).toBe(runc);
  }

  it('watches every copy, keyed as the kernel keys it: no runtime event says one lacks anything', async () => {
    expect(rec.watcher.mode).toBe('full');
    expect(rec.watcher.runtimes.map((r) => r.path)).toEqual(expect.arrayContaining([...runcAt.values()]));
    await rec.fence(lab); // the runtime events of the start have been emitted by now
    expect(changes).toEqual([]);
  });

  it("stat(2) and the kernel disagree on btrfs and on an overlay over two filesystems with xino off, and nowhere else", () => {
    const disagree = PLACES.map(({ name }) => {
      const { file, kernel, keyError } = loadAddon().inodeKeys(runcAt.get(name)!);
      expect(keyError, name).toBe('');
      expect(kernel!.ino, name).toBe(file.ino);
      return { name, keysDiffer: kernel!.dev !== file.dev };
    });
    expect(disagree).toEqual(PLACES);
    // xino puts the layer in the inode number's top bits, past a double's 53 (where doubles
    // are 2048 apart): the host reads keep them exact, so the binary and the file beside it
    // stay two files
    const xino = runcAt.get('overlayfs, layers on two filesystems, xino on')!;
    const beside = join(dirname(xino), 'runc.conf');
    const [runcIno, besideIno] = [xino, beside].map((p) => liveReads.stat(p)!.ino);
    expect(runcIno).toBe(loadAddon().inodeKeys(xino).kernel!.ino);
    expect(runcIno! >> 63n).toBe(1n);
    expect(runcIno).not.toBe(besideIno);
  });

  it.each(PLACES.map((p, i) => [p.name, i] as const))('the whole lifecycle with its pod through runc on %s', async (name, i) => {
    const runc = runcAt.get(name)!;
    const id = `fs-${i}-${suffix}`;
    const events = await lifecycleWith(runc, id, () => rec.fence(lab));
    expectLifecycle(events, id, name, runc);
  });

  it.each(PLACES.map((p, i) => [p.name, i] as const))(
    'a container created through runc on %s before the watcher started: existing, not started, then its start and exit',
    async (name, i) => {
      const runc = runcAt.get(name)!;
      const id = `fs-existing-${i}-${suffix}`;
      const global = ['--root', lab.stateRoot];
      await execRuntime(runc, [...global, 'create', '--bundle', lab.bundle(id, ['/bin/sh', '-c', 'exit 7'], criAnnotations(id)), id], lab.log);
      // its init still runs the binary: stat(2) of /proc/PID/exe against stat(2) of the binary
      const late = new Recorder({ runtimePaths: [runc], stateRoots: [lab.stateRoot] }, new Set([id]));
      try {
        await late.until((ev) => ev.some((e) => e.type === 'existing'));
        expect(late.of(id, 'existing')[0], name).toMatchObject({ started: false, pod: { name: `pod-${id}` } });
        await execRuntime(runc, [...global, 'start', id], lab.log);
        await late.until((ev) => ended(ev, id));
        expect(late.of(id).map((e) => e.type), name).toEqual(['existing', 'start', 'exit']);
        expect(late.of(id, 'exit')[0], name).toMatchObject({ exitCode: 7 });
      } finally {
        late.close();
        await deleteWhenStopped(runc, global, id, lab.log);
      }
    },
  );

  it('a runc nobody listed, on an overlay over two filesystems (xino off): found from its first exec, held from the second', async () => {
    // learnt from the BPF record's kernel key, checked against the file /proc/PID/exe opens:
    // stat(2)'s key would never match it here
    const runc = runcAt.get('overlayfs, layers on two filesystems, xino off, upper layer')!;
    const ids = [`fs-learnt-1-${suffix}`, `fs-learnt-2-${suffix}`];
    const learner = new Recorder({}, new Set(ids));
    const found: RuntimeChangeEvent[] = [];
    learner.watcher.on('runtime', (e: RuntimeChangeEvent) => found.push(e));
    try {
      expect(learner.watcher.runtimes.map((r) => r.path)).not.toContain(runc);
      const runs = [];
      for (const id of ids) runs.push(await lifecycleWith(runc, id, () => learner.until((ev) => ended(ev, id)), learner));
      expect(found, 'its runtime event').toEqual([expect.objectContaining({ change: 'added', foundBy: 'exec', path: runc, markError: null })]);
      // the first from the kernel's records alone, unheld; the second held like a listed one's
      const [first, second] = runs as [ContainerEvent[], ContainerEvent[]];
      expect(first.map((e) => e.type), ids[0]).toEqual(['precreate', 'create', 'start', 'exit']);
      expect(first[0], ids[0]).toMatchObject({ held: false, pod: { name: `pod-${ids[0]}` }, runtime: { path: runc } });
      expect(first[3], ids[0]).toMatchObject({ exitCode: 7 });
      expectLifecycle(second, ids[1]!, 'an unlisted runc on an overlay over two filesystems, learnt', runc, learner);
    } finally {
      learner.close();
    }
  });

  it.each<[WatchOptions['mode'], boolean, Partial<ContainerEvent>]>([
    ['ebpf-only', false, { exitCode: 7, signal: null }],
    ['fanotify-only', true, { exitCode: null }],
  ])('mode %s on an overlay over two filesystems (xino off)', async (mode, held, exit) => {
    const runc = runcAt.get('overlayfs, layers on two filesystems, xino off, lower layer')!;
    const id = `fs-${mode}-${suffix}`;
    const only = new Recorder({ mode, runtimePaths: [runc] }, new Set([id]));
    try {
      expect(only.watcher.mode).toBe(mode);
      // without the BPF side a `runc run` (a fence) ends in ERR_RUN_UNFOLLOWED, not an event: the exit is awaited
      const events = await lifecycleWith(runc, id, () => only.until((ev) => ended(ev, id)), only);
      expect(events.map((e) => e.type), id).toEqual(['precreate', 'create', 'start', 'exit']);
      expect(events[0]!.held, id).toBe(held);
      expect(events[0]!.pod, id).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
      expect(events[3], id).toMatchObject(exit);
    } finally {
      only.close();
    }
  });
});
