// Runtime binaries as nodes have them: replaced by upgrades (a new inode at the same path),
// installed after the watcher started, reached through a symlinked directory (k3s' data/current).
// Never touches the system's runc: every binary here is a private copy passed with runtimePaths.
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent, RuntimeChangeEvent } from '../../src/index.js';
import { Lab, RUNC, Recorder, criAnnotations, deleteWhenStopped, execRuntime, privileged, until } from '../kit/index.js';

/** Installs a copy of runc at path the way dpkg does: write a new file beside it, rename it over. */
function installRunc(path: string): number {
  mkdirSync(dirname(path), { recursive: true });
  copyFileSync(RUNC, `${path}.dpkg-new`);
  renameSync(`${path}.dpkg-new`, path);
  return statSync(path).ino;
}

describe.skipIf(!privileged())('runtime binaries replaced or installed while watching', () => {
  let lab: Lab;
  let rec: Recorder;
  let dir: string;
  const changes: RuntimeChangeEvent[] = [];
  const suffix = process.pid.toString(36);
  const paths = {
    upgraded: '',
    late: '',
    k3s: '',
  };

  beforeAll(() => {
    lab = new Lab();
    dir = mkdtempSync(join(tmpdir(), 'ocinotify-bin-'));
    paths.upgraded = join(dir, 'usr', 'sbin', 'runc');
    paths.late = join(dir, 'opt', 'late', 'bin', 'runc');
    paths.k3s = join(dir, 'k3s', 'data', 'current', 'bin', 'runc');
    installRunc(paths.upgraded);
    installRunc(join(dir, 'k3s', 'data', 'hash1', 'bin', 'runc'));
    symlinkSync('hash1', join(dir, 'k3s', 'data', 'current'));
    rec = new Recorder({ runtimePaths: Object.values(paths) });
    rec.watcher.on('runtime', (e: RuntimeChangeEvent) => changes.push(e));
  });

  afterAll(async () => {
    rec?.close();
    await lab?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function runtimeChange(change: 'added' | 'removed', path: string): Promise<void> {
    const seen = (): boolean => changes.some((c) => c.change === change && c.path === path);
    return until(seen, () => `'${change}' for ${path}; saw ${JSON.stringify(changes)}`, 5000);
  }

  /** create, start, kill, delete through binary; returns the container's events. */
  async function lifecycleWith(binary: string, id: string): Promise<ContainerEvent[]> {
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const global = ['--root', lab.stateRoot];
    await execRuntime(binary, [...global, 'create', '--bundle', bundle, id], lab.log);
    await execRuntime(binary, [...global, 'start', id], lab.log);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
    await execRuntime(binary, [...global, 'kill', id, 'KILL'], lab.log);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await deleteWhenStopped(binary, global, id, lab.log);
    return rec.of(id);
  }

  function expectCaught(events: ContainerEvent[], id: string, binary: string): void {
    expect(events.map((e) => e.type), id).toEqual(['precreate', 'create', 'start', 'exit']);
    const [pre, create] = events as [ContainerEvent, ContainerEvent];
    expect(pre.held).toBe(true);
    expect(pre.runtime.path).toBe(binary);
    expect(pre.runtime.name).toBe('runc');
    expect(create.pid).toBeGreaterThan(0);
    for (const e of events) {
      expect(e.manager).toBe('containerd');
      expect(e.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
      expect(e.container.name).toBe(`c-${id}`);
    }
  }

  it('watches the private copies found at start', () => {
    expect(rec.watcher.mode).toBe('full');
    const watched = rec.watcher.runtimes.map((r) => r.path);
    expect(watched).toContain(paths.upgraded);
    expect(watched).toContain(join(dir, 'k3s', 'data', 'hash1', 'bin', 'runc'));
    expect(watched).not.toContain(paths.late);
  });

  it('keeps catching runc across 5 upgrades (new inode, same path), without a restart', async () => {
    const id0 = `up-0-${suffix}`;
    expectCaught(await lifecycleWith(paths.upgraded, id0), id0, paths.upgraded);
    for (let round = 1; round <= 5; round++) {
      const before = statSync(paths.upgraded).ino;
      changes.length = 0;
      const ino = installRunc(paths.upgraded);
      expect(ino).not.toBe(before);
      await runtimeChange('added', paths.upgraded);
      // the old inode is forgotten: its mark and BPF key go with it
      expect(changes.filter((c) => c.change === 'removed' && c.path === paths.upgraded)).toHaveLength(1);
      const id = `up-${round}-${suffix}`;
      expectCaught(await lifecycleWith(paths.upgraded, id), id, paths.upgraded);
    }
    expect(rec.watcher.runtimes.filter((r) => r.path === paths.upgraded)).toHaveLength(1);
  });

  it('picks up a runtime installed after start, in directories that did not exist', async () => {
    changes.length = 0;
    installRunc(paths.late);
    await runtimeChange('added', paths.late);
    const id = `late-${suffix}`;
    expectCaught(await lifecycleWith(paths.late, id), id, paths.late);
    unlinkSync(paths.late);
    await runtimeChange('removed', paths.late);
    expect(rec.watcher.runtimes.map((r) => r.path)).not.toContain(paths.late);
  });

  it("follows a symlinked directory that an upgrade re-points (k3s' data/current)", async () => {
    const hash2 = join(dir, 'k3s', 'data', 'hash2', 'bin', 'runc');
    installRunc(hash2);
    changes.length = 0;
    symlinkSync('hash2', join(dir, 'k3s', 'data', 'current.new'));
    renameSync(join(dir, 'k3s', 'data', 'current.new'), join(dir, 'k3s', 'data', 'current'));
    await runtimeChange('added', hash2);
    await runtimeChange('removed', join(dir, 'k3s', 'data', 'hash1', 'bin', 'runc'));
    const id = `k3s-${suffix}`;
    expectCaught(await lifecycleWith(paths.k3s, id), id, hash2);
  });

  it('leaves no container behind', async () => {
    const list = JSON.parse((await lab.runc(['list', '--format', 'json'])) || '[]') as unknown[] | null;
    expect(list ?? []).toEqual([]);
  });
});
