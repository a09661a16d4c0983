// Mode selection, each mode for real, and the CLI on top of them.
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerWatcher, type ContainerEvent, type DiagnosticEvent } from '../../src/index.js';
import { Lab, RUNC, Recorder, criAnnotations, lifecycle, ocinotify, privileged, until } from '../kit/index.js';
import { PROGRAM_NAMES, kernelState } from './kernel-state.js';
import { execFileSync } from 'node:child_process';

describe.skipIf(!privileged())('modes', () => {
  let lab: Lab;

  beforeAll(() => {
    lab = new Lab();
  });

  afterAll(async () => {
    await lab?.cleanup();
  });


  function expectResolved(e: ContainerEvent, id: string): void {
    expect(e.manager, e.type).toBe('containerd');
    expect(e.pod, e.type).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
    expect(e.container, e.type).toEqual({ name: `c-${id}`, type: 'container', image: 'demo.local/busybox:1' });
    expect(e.sandboxId, e.type).toBe(criAnnotations(id)['io.kubernetes.cri.sandbox-id']);
    expect(e.runtime.name, e.type).toBe('runc');
  }

  it('default mode is full, with both mechanisms', () => {
    const w = new ContainerWatcher();
    try {
      expect(w.mode).toBe('full');
      expect(w.modeReason).toMatch(/eBPF/);
      expect(w.modeReason).toMatch(/fanotify/);
      expect(w.runtimes.map((r) => r.path)).toContain(RUNC);
    } finally {
      w.close();
    }
    const full = new ContainerWatcher({ mode: 'full' });
    expect(full.mode).toBe('full');
    full.close();
  });

  it("mode 'ebpf-only': no fanotify group; precreate (not held), create, start, exit with metadata", async () => {
    const id = 'mode-ebpf';
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const before = kernelState();
    const rec = new Recorder({ mode: 'ebpf-only' }, new Set([id]));
    try {
      expect(rec.watcher.mode).toBe('ebpf-only');
      expect(rec.watcher.modeReason).toMatch(/fanotify/);
      const open = kernelState();
      expect(open.fanotifyGroups).toBe(before.fanotifyGroups);
      expect(open.bpfProgs - before.bpfProgs).toBe(PROGRAM_NAMES.length);
      await lifecycle(lab, rec, id, bundle);
      expect(rec.of(id).map((e) => e.type)).toEqual(['precreate', 'create', 'start', 'exit']);
      const [pre, create, start, exit] = rec.of(id);
      for (const e of [pre!, create!, start!, exit!]) expectResolved(e, id);
      expect(pre!.held).toBe(false);
      expect(pre!.specError).toBeNull();
      expect(pre!.runtime.argv).toEqual([RUNC, '--root', lab.stateRoot, 'create', '--bundle', bundle, id]);
      expect(create!.pid).toBeGreaterThan(0);
      expect(start!.pid).toBe(create!.pid);
      expect(exit!.exitCode).toBe(137);
      expect(rec.watcher.stats().held).toBe(0);
    } finally {
      rec.close();
    }
  });

  it("mode 'fanotify-only': no BPF; a held precreate with argv read from /proc and metadata", async () => {
    const id = 'mode-fanotify';
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const before = kernelState();
    const rec = new Recorder({ mode: 'fanotify-only' }, new Set([id]));
    try {
      expect(rec.watcher.mode).toBe('fanotify-only');
      expect(rec.watcher.modeReason).toMatch(/eBPF/);
      const open = kernelState();
      expect(open.fanotifyGroups).toBe(before.fanotifyGroups + 1);
      expect(open.bpfProgs).toBe(before.bpfProgs);
      expect(open.bpfLinks).toBe(before.bpfLinks);
      await lab.runc(['create', '--bundle', bundle, id]);
      await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'precreate'));
      const pre = rec.of(id, 'precreate');
      expect(pre).toHaveLength(1);
      expect(pre[0]!.held).toBe(true);
      expect(pre[0]!.specError).toBeNull();
      expect(pre[0]!.runtime.argv).toEqual([RUNC, '--root', lab.stateRoot, 'create', '--bundle', bundle, id]);
      expect(pre[0]!.runtime.path).toBe(RUNC);
      expect(pre[0]!.runtime.pid).toBeGreaterThan(0);
      expect(pre[0]!.bundle).toBe(bundle);
      expectResolved(pre[0]!, id);
      expect(rec.watcher.stats().answeredByJs).toBeGreaterThanOrEqual(1);
    } finally {
      rec.close();
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });

  it("mode 'fanotify-only': a foreground `runc run` gives its precreate and ERR_RUN_UNFOLLOWED, never a false `failed`", async () => {
    const id = 'mode-fanotify-run';
    const bundle = lab.bundle(id, ['/bin/true'], criAnnotations(id));
    const rec = new Recorder({ mode: 'fanotify-only' }, new Set([id]));
    const diagnostics: DiagnosticEvent[] = [];
    rec.watcher.on('diagnostic', (d: DiagnosticEvent) => {
      if (d.id === id) diagnostics.push(d);
    });
    try {
      await lab.runc(['run', '--bundle', bundle, id]);
      await until(() => diagnostics.length > 0, () => `ERR_RUN_UNFOLLOWED for ${id}; events ${JSON.stringify(rec.of(id).map((e) => e.type))}`);
      expect(diagnostics.map((d) => [d.code, d.impact])).toEqual([['ERR_RUN_UNFOLLOWED', 'degraded']]);
      expect(diagnostics[0]!.message).toContain(`runc run ${id} exited`);
      // The diagnostic ends the session (its runtime's exit): nothing for id comes after it.
      expect(rec.of(id).map((e) => e.type)).toEqual(['precreate']);
      expectResolved(rec.of(id)[0]!, id);
    } finally {
      rec.close();
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });

  it('ocinotify watch --json: a ready line, then the lifecycle as JSON lines; exit 0 on SIGTERM', async () => {
    const id = 'cli-json';
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const p = ocinotify(['watch', '--json']);
    try {
      await until(() => p.lines().length > 0, () => `the ready line (stderr: ${p.stderr()})`);
      const ready = p.records()[0]!;
      expect(ready).toMatchObject({ type: 'ready', mode: 'full' });
      expect(ready.runtimes).toContain(RUNC);
      const ofId = (): Record<string, unknown>[] => p.records().slice(1).filter((e) => e.id === id);
      await lab.runc(['create', '--bundle', bundle, id]);
      await lab.runc(['start', id]);
      await until(() => ofId().some((e) => e.type === 'start'), 'start');
      await lab.runc(['kill', id, 'KILL']);
      await until(() => ofId().some((e) => e.type === 'exit'), 'exit');
      await lab.deleteExited(id);
      const events = ofId();
      expect(events.map((e) => e.type)).toEqual(['precreate', 'create', 'start', 'exit']);
      expect(events[0]).toMatchObject({ held: true, manager: 'containerd', pod: { name: `pod-${id}` } });
      expect(events[0]).not.toHaveProperty('spec');
      expect(events[3]).toMatchObject({ exitCode: 137, signal: 9 });
      p.child.kill('SIGTERM');
      const code = await p.done;
      expect(p.child.signalCode).toBeNull();
      expect(code, p.stderr()).toBe(0);
    } finally {
      p.child.kill('SIGKILL');
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });

  it('ocinotify doctor exits 0 and reports mode full', async () => {
    const p = ocinotify(['doctor']);
    const code = await p.done;
    expect(code, p.stderr()).toBe(0);
    const report = JSON.parse(p.stdout()) as Record<string, unknown>;
    expect(report).toMatchObject({
      mode: 'full',
      ebpf: { ok: true },
      fanotifyPermissionEvents: { ok: true },
    });
    // Debian's kernels taint themselves on the first use of fanotify permission events (the
    // probes above, if nothing before them), and log it once; this project's VM kernel does not
    const logged = execFileSync('dmesg', { encoding: 'utf8' }).includes('fanotify permission checks may lead to deadlock');
    const { flags, byFanotify } = report.kernelTaint as { flags: number; byFanotify: boolean };
    console.log(`kernel taint flags ${flags}; the kernel log has the fanotify taint line: ${logged}`);
    expect(byFanotify).toBe(logged);
    if (logged) expect(flags & 65536).toBe(65536);
  });

  it('ocinotify watch --gate-timeout abc, --nice -21 exit 2 with a usage message', async () => {
    for (const [flag, value] of [['--gate-timeout', 'abc'], ['--nice', '-21']]) {
      const p = ocinotify(['watch', flag!, value!]);
      const code = await p.done;
      expect(code).toBe(2);
      expect(p.stderr()).toContain(flag);
      expect(p.stderr()).toMatch(/usage: ocinotify/);
      expect(p.stdout()).toBe('');
    }
  });

  it('ocinotify watch runs every thread at nice -10 (held runtimes wait on it), or at --nice N', async () => {
    for (const [args, nice] of [[[], -10], [['--nice', '0'], 0]] as const) {
      const p = ocinotify(['watch', '--json', ...args]);
      try {
        await until(() => p.lines().length > 0, () => `the ready line (stderr: ${p.stderr()})`);
        const tasks = readdirSync(`/proc/${p.child.pid}/task`).map((t) => `/proc/${p.child.pid}/task/${t}`);
        // and the watchdog it spawned
        const children = tasks.flatMap((t) => readFileSync(`${t}/children`, 'utf8').split(' ').filter(Boolean));
        expect(children.length).toBeGreaterThan(0);
        // field 19 of stat, the 17th after the command's closing parenthesis
        const nices = [...tasks, ...children.map((c) => `/proc/${c}`)].map((t) => Number(readFileSync(`${t}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]));
        expect(tasks.length).toBeGreaterThan(2); // the JS thread, the reactor's and node's own
        expect(new Set(nices), args.join(' ')).toEqual(new Set([nice]));
      } finally {
        p.child.kill('SIGTERM');
        expect(await p.done).toBe(0);
      }
    }
  });
});
