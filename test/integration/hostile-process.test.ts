// Processes that do not behave: a runtime gone before the watcher looked at it, a runtime killed
// while held, pid files that lie. Real runc, real kernel path. The non-root and user-namespace
// callers are in nonroot.test.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent, DiagnosticCode, WatchOptions } from '../../src/index.js';
import { Lab, RUNC, busyWait, criAnnotations, lifecycle, privileged, runcStatus, sleep, sq, timedRunc, timedShell, until } from '../kit/index.js';
import { Observer } from './hostile.js';

/** Blocks the event loop until path exists (at most 10 s). */
function spinUntil(path: string): void {
  const deadline = Date.now() + 10_000;
  while (!existsSync(path) && Date.now() < deadline) {
    // spin: the watcher must not read the runtime's exit before the shell is done
  }
}

describe.skipIf(!privileged())('runtimes and pid files that do not behave', () => {
  let lab: Lab;
  const suffix = process.pid.toString(36);
  const idOf = (name: string): string => `hp-${name}-${suffix}`;
  const observers: Observer[] = [];

  beforeAll(() => {
    lab = new Lab();
  });

  afterAll(async () => {
    for (const o of observers) o.close();
    await lab?.cleanup();
  });

  function observe(options: WatchOptions): Observer {
    const o = new Observer(options);
    observers.push(o);
    return o;
  }

  const bundleFor = (id: string, args = ['/bin/sleep', '30']): string => lab.bundle(id, args, criAnnotations(id));

  function expectMetadata(events: ContainerEvent[], id: string): void {
    for (const e of events) expect(e.pod, `${e.type} of ${id}`).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
  }

  for (const mode of ['full', 'ebpf-only'] as const) {
    it(`${mode}: the runtime has come and gone before the watcher reads anything; all four events, with metadata`, async () => {
      const obs = observe({ mode, gateTimeoutMs: 200 });
      expect(obs.watcher.mode).toBe(mode);
      const id = idOf(`gone-${mode}`);
      const bundle = bundleFor(id, ['/bin/true']);
      // runc run: create, start, /bin/true's exit and runc's own, all while our event loop is stuck.
      const run = timedRunc(lab, ['run', '--bundle', bundle, id]);
      busyWait(1500);
      const res = await run;
      expect(res.code, res.stderr).toBe(0);
      await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
      expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
      expectMetadata(obs.of(id), id);
      const pre = obs.of(id, 'precreate')[0]!;
      expect(pre.specError).toBeNull();
      expect(pre.held).toBe(mode === 'full');
      expect(obs.of(id, 'exit')[0]!.exitCode).toBe(0);
      await until(() => obs.watcher.stats().heldNow === 0, 'no held exec', 2000);
      obs.expectSound();
      obs.close();
    });
  }

  it('a runtime killed while held: its exec fails, precreate is followed by failed, nothing is left pending', async () => {
    const id = idOf('killed');
    const obs = observe({
      gateTimeoutMs: 5000,
      gate: (e) => {
        if (e.id !== id) return 'allow';
        process.kill(e.runtime.pid, 'SIGKILL');
        return sleep(100).then(() => 'allow' as const);
      },
    });
    const res = await timedRunc(lab, ['create', '--bundle', bundleFor(id), id]);
    expect(res.code).not.toBe(0);
    await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'failed'));
    expect(obs.types(id)).toEqual(['precreate', 'failed']);
    expect(obs.of(id, 'failed')[0]!.reason).toMatch(/^runtime exec failed: E/);
    expect(await runcStatus(lab, id)).toBeNull();
    // Other tenants' creates may be held for a moment too; ours must not stay.
    await until(() => obs.watcher.stats().heldNow === 0, 'no held exec', 2000);
    obs.expectSound();
    obs.close();
  });

  describe('pid files that lie', () => {
    let obs: Observer;
    /**
     * ids whose gate answer is followed by a stuck event loop until their marker file exists:
     * the shell tampers with the pid file after runc has exited and before the watcher reads it.
     */
    const stall = new Map<string, string>();
    let other: { id: string; pid: number };
    let outsider: ChildProcess;

    beforeAll(async () => {
      obs = observe({
        gateTimeoutMs: 5000,
        gate: (e) => {
          const marker = stall.get(e.id);
          if (marker !== undefined) setTimeout(() => spinUntil(marker), 0);
          return 'allow';
        },
      });
      other = { id: idOf('other'), pid: 0 };
      await lab.runc(['create', '--bundle', bundleFor(other.id), other.id]);
      other.pid = (JSON.parse(await lab.runc(['state', other.id])) as { pid: number }).pid;
      // a process in a mount namespace of its own that is no container
      outsider = spawn('unshare', ['--mount', '--propagation', 'private', 'sleep', '60'], { stdio: 'ignore' });
      const ours = readlinkSync('/proc/self/ns/mnt');
      const mntnsOf = (pid: number | undefined): string | null => {
        try {
          return readlinkSync(`/proc/${pid}/ns/mnt`);
        } catch {
          return null;
        }
      };
      await until(() => ![null, ours].includes(mntnsOf(outsider.pid)), 'the outsider to unshare its mount namespace');
    });

    afterAll(async () => {
      outsider?.kill('SIGKILL');
      await lab.runc(['delete', '--force', other.id]).catch(() => undefined);
    });

    /**
     * runc create with a pid file, which the shell rewrites once runc has exited and before the
     * watcher reads it; then start, kill, delete. Returns the real init pid.
     */
    async function createTampered(id: string, tamper: (pidFile: string) => string): Promise<number> {
      const bundle = bundleFor(id);
      const pidFile = join(lab.dir, `${id}.pid`);
      const marker = `${pidFile}.tampered`;
      stall.set(id, marker);
      const create = [RUNC, '--root', lab.stateRoot, 'create', '--pid-file', pidFile, '--bundle', bundle, id].map(sq).join(' ');
      const res = await timedShell(`${create} </dev/null >>${sq(lab.log)} 2>&1 && { ${tamper(pidFile)} ; }; touch ${sq(marker)}`);
      expect(res.code, res.stderr).toBe(0);
      const pid = (JSON.parse(await lab.runc(['state', id])) as { pid: number }).pid;
      await lab.runc(['start', id]);
      await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
      await lab.runc(['kill', id, 'KILL']);
      await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
      await lab.deleteExited(id);
      return pid;
    }

    function expectFollowedWith(id: string, pid: number, codes: DiagnosticCode[], createPid = pid): void {
      expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
      const [, create, start, exit] = obs.of(id) as [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];
      expect(create.pid).toBe(createPid);
      expect(start.pid).toBe(pid);
      expect(exit.pid).toBe(pid);
      expect(exit.exitCode).toBe(137);
      expect(obs.diagnosticsOf(id).map((d) => d.code)).toEqual(codes);
      for (const d of obs.diagnosticsOf(id)) expect(d.impact).toBe('degraded');
      expectMetadata(obs.of(id), id);
    }

    const cases: [string, (pidFile: string) => string, string][] = [
      ['missing', (p) => `rm -f ${sq(p)}`, 'missing'],
      ['garbage', (p) => `echo not-a-pid > ${sq(p)}`, 'not-a-pid'],
      ['huge', (p) => `head -c 1048576 /dev/zero | tr '\\0' 7 > ${sq(p)}`, 'too-large'],
      ['symlink', (p) => `mv ${sq(p)} ${sq(`${p}.real`)} && ln -s ${sq(`${p}.real`)} ${sq(p)}`, 'symlink'],
    ];
    for (const [name, tamper, reason] of cases) {
      it(`pid file ${name}: ERR_PID_FILE (${reason}); the pid comes from runc's state, the container is followed`, async () => {
        const id = idOf(`pid-${name}`);
        const pid = await createTampered(id, tamper);
        expectFollowedWith(id, pid, ['ERR_PID_FILE']);
        expect(obs.diagnosticsOf(id)[0]!.details.reason).toBe(reason);
      });
    }

    it("a pid file naming a process in the runtime's mount namespace: ERR_INIT_PID_REJECTED", async () => {
      const id = idOf('pid-samens');
      const pid = await createTampered(id, (p) => `echo ${process.pid} > ${sq(p)}`);
      expectFollowedWith(id, pid, ['ERR_INIT_PID_REJECTED']);
      expect(obs.diagnosticsOf(id)[0]!.details).toMatchObject({ pid: process.pid, source: 'pid file' });
      expect(obs.diagnosticsOf(id)[0]!.message).toContain("runtime's mount namespace");
    });

    it("a pid file naming another container's init: ERR_INIT_PID_REJECTED", async () => {
      // `other` is known to this watcher once it has seen it created.
      await obs.until((ev) => ev.some((e) => e.id === other.id && e.type === 'create'));
      const id = idOf('pid-other');
      const pid = await createTampered(id, (p) => `echo ${other.pid} > ${sq(p)}`);
      expectFollowedWith(id, pid, ['ERR_INIT_PID_REJECTED']);
      expect(obs.diagnosticsOf(id)[0]!.message).toContain("another container's init");
      expect(obs.of(other.id).map((e) => e.type)).toEqual(['precreate', 'create']);
    });

    it('a pid file naming a plausible stranger: create believes it, the kernel corrects it at start (ERR_INIT_PID_MISMATCH)', async () => {
      const id = idOf('pid-stranger');
      const pid = await createTampered(id, (p) => `echo ${outsider.pid} > ${sq(p)}`);
      expectFollowedWith(id, pid, ['ERR_INIT_PID_MISMATCH'], outsider.pid);
      expect(obs.diagnosticsOf(id)[0]!.details).toEqual({ reported: outsider.pid, actual: pid });
    });

    it('an untampered pid file: no diagnostic', async () => {
      const id = idOf('pid-honest');
      const pid = await createTampered(id, () => 'true');
      expectFollowedWith(id, pid, []);
    });

    it('still sound, and still following plain containers', async () => {
      const id = idOf('after');
      stall.clear();
      await lifecycle(lab, obs, id, bundleFor(id));
      expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
      obs.expectSound();
    });
  });
});
