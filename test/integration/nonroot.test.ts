// A runtime exec'd by anyone but real root makes no event, whatever its bundle claims: any
// user can run runc on a crafted bundle carrying CRI annotations.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiagnosticEvent } from '../../src/index.js';
import { Lab, RUNC, Recorder, criAnnotations, execRuntime, privileged } from '../kit/index.js';

const NOBODY = 65534;
const SETPRIV = ['/usr/bin/setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];
/** uid 0 inside a new user namespace, 65534 in the initial one. */
const USERNS_ROOT = [...SETPRIV, '/usr/bin/unshare', '--user', '--map-root-user'];

interface IdMap {
  containerID: number;
  hostID: number;
  size: number;
}

/** The parts of `runc spec --rootless` this test rewrites. */
interface RootlessSpec {
  process: { terminal: boolean; args: string[] };
  root: { path: string; readonly: boolean };
  annotations?: Record<string, string>;
  linux: { uidMappings: IdMap[]; gidMappings: IdMap[] };
  mounts: { type: string; destination: string }[];
}

describe.skipIf(!privileged())('runtime execs by non-root users', () => {
  /** root's lab: the liveness containers */
  let lab: Lab;
  /** world-readable lab for the unprivileged user's bundles */
  let userLab: Lab;
  let userState: string;
  let rec: Recorder;
  /** Diagnostics are for root's execs only: anyone else could flood them. */
  const diagnostics: DiagnosticEvent[] = [];
  const suffix = process.pid.toString(36);

  beforeAll(() => {
    lab = new Lab();
    userLab = new Lab();
    userState = join(userLab.dir, 'user-state');
    mkdirSync(userState);
    chownSync(userState, NOBODY, NOBODY);
    execFileSync('chmod', ['-R', 'a+rX', userLab.dir]);
    chmodSync(userLab.dir, 0o755);
    rec = new Recorder();
    rec.watcher.on('diagnostic', (d: DiagnosticEvent) => diagnostics.push(d));
  });

  afterAll(async () => {
    rec?.close();
    if (userState) {
      try {
        const out = await execRuntime(RUNC, ['--root', userState, 'list', '--format', 'json'], userLab.log);
        for (const c of (JSON.parse(out || '[]') as { id: string }[] | null) ?? [])
          await execRuntime(RUNC, ['--root', userState, 'delete', '--force', c.id], userLab.log).catch(() => undefined);
      } catch {
        // nothing listed
      }
    }
    await userLab?.cleanup();
    await lab?.cleanup();
  });

  /**
   * A rootless bundle (runc spec --rootless) the unprivileged user can run: its user namespace
   * maps container root to hostUid as the runtime sees it, with the CRI annotations of id.
   */
  async function rootlessBundle(id: string, hostUid: number): Promise<string> {
    const bundle = join(userLab.dir, 'bundles', id);
    mkdirSync(bundle, { recursive: true, mode: 0o755 });
    await execRuntime(RUNC, ['spec', '--rootless', '--bundle', bundle], userLab.log);
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as RootlessSpec;
    spec.process.terminal = false;
    spec.process.args = ['/bin/sleep', '0.3'];
    spec.root = { path: userLab.rootfs, readonly: true };
    spec.annotations = criAnnotations(id);
    spec.linux.uidMappings = [{ containerID: 0, hostID: hostUid, size: 1 }];
    spec.linux.gidMappings = [{ containerID: 0, hostID: hostUid, size: 1 }];
    // Bind mounts (the rootless /sys) make runc 1.1 setns to the host mount namespace, which a
    // user namespace's root may not.
    spec.mounts = spec.mounts.filter(
      (m) => m.type !== 'bind' && !m.destination.startsWith('/sys'),
    );
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec), { mode: 0o644 });
    return bundle;
  }

  /** Runs argv (a wrapper, then runc's argv) via /bin/sh; 'ok' or runc's complaint. */
  async function attempt(argv: string[]): Promise<string> {
    const [binary, ...rest] = argv as [string, ...string[]];
    return execRuntime(binary, rest, userLab.log, userLab.dir).then(
      () => 'ok',
      (err: Error) => err.message,
    );
  }

  /**
   * The unprivileged user creates and starts a container; then, once a fence container has been
   * reported, nothing may have been reported for it; then a root container proves the watcher
   * resolves metadata all along.
   */
  async function expectSilent(id: string, wrapper: string[], runc: string, hostUid: number): Promise<void> {
    const bundle = await rootlessBundle(id, hostUid);
    const passedBefore = rec.watcher.stats().answeredNative;
    const created = await attempt([...wrapper, runc, '--root', userState, 'create', '--bundle', bundle, id]);
    const started = created === 'ok' ? await attempt([...wrapper, runc, '--root', userState, 'start', id]) : 'not created';
    await rec.fence(lab);

    // The gate saw the unprivileged execs and let them pass without a hold.
    expect(rec.watcher.stats().answeredNative - passedBefore).toBeGreaterThan(0);
    expect(rec.of(id), `create: ${created}; start: ${started}`).toEqual([]);
    expect(diagnostics.filter((d) => d.runtime?.argv.includes(id))).toEqual([]);
    expect(rec.events.filter((e) => e.pod?.uid === `uid-${id}` || e.bundle === bundle)).toEqual([]);

    const live = `${id}-root`;
    await lab.runc(['create', '--bundle', lab.bundle(live, ['/bin/sleep', '30'], criAnnotations(live)), live]);
    await rec.until((ev) => ev.some((e) => e.id === live && e.type === 'create'));
    await lab.runc(['delete', '--force', live]);
    const pre = rec.of(live, 'precreate');
    expect(pre).toHaveLength(1);
    expect(pre[0]!.held).toBe(true);
    expect(pre[0]!.pod).toEqual({ name: `pod-${live}`, namespace: 'demons', uid: `uid-${live}` });
    expect(rec.of(id)).toEqual([]);
  }

  it('watches in full mode', () => {
    expect(rec.watcher.mode).toBe('full');
  });

  it('uid 65534 running runc on a bundle with CRI annotations makes no event', async () => {
    await expectSilent(`nr-user-${suffix}`, SETPRIV, RUNC, NOBODY);
  });

  it('uid 65534 running runc through a symlink of another name (argv read from /proc) makes no event', async () => {
    const link = join(userLab.dir, 'oci-rt');
    symlinkSync(RUNC, link);
    await expectSilent(`nr-link-${suffix}`, SETPRIV, link, NOBODY);
  });

  it('uid 65534 running runc create with an invalid id makes no diagnostic', async () => {
    const marker = `nr-badid-${suffix}`;
    const out = await attempt([...SETPRIV, RUNC, '--root', userState, 'create', '--bundle', `/nonexistent/${marker}`, 'a/b']);
    expect(out).not.toBe('ok');
    await rec.fence(lab);
    expect(diagnostics.filter((d) => d.runtime?.argv.some((a) => a.includes(marker)))).toEqual([]);
  });

  it('uid 0 of a new user namespace (65534 outside) running runc makes no event', async () => {
    // In that namespace runc's own uid is 0: the container maps its root to it.
    await expectSilent(`nr-userns-${suffix}`, USERNS_ROOT, RUNC, 0);
  });
});
