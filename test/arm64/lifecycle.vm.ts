// `make test-arm64`: the release tarball on an arm64 kernel, packed from a fresh clone of HEAD
// (commit what is to be tested). An arm64 VM (qemu-system-aarch64,
// TCG; Debian's arm64 kernel; a debootstrap root with runc and busybox, node from the npm
// registry, no compiler: scripts/arm64/root.sh) installs the tarball, runs `ocinotify doctor`
// and follows one runc container through `ocinotify watch --json` (test/arm64/guest.mjs).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criAnnotations } from '../kit/index.js';
import { packFreshClone } from '../kit/pack.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const VM = process.env.OCINOTIFY_ARM64_VM;
/** the VM's whole run: boot, npm install, doctor, one container, on a loaded 2-core host */
const VM_DEADLINE_MS = 25 * 60_000;
const ANNOTATIONS = criAnnotations('arm64');

interface Line {
  type: string;
  id?: string;
  mode?: string;
  held?: boolean;
  pid?: number | null;
  exitCode?: number | null;
  pod?: { name: string; namespace: string; uid: string } | null;
}

interface Result {
  arch: string;
  kernel: string;
  node: string;
  ms: Record<string, number>;
  compilers?: string;
  install?: { code: number; stdout: string; stderr: string; prebuilt: boolean; built: boolean };
  doctor?: { code: number; stdout: string; report: { mode: string; ebpf: { ok: boolean }; fanotifyPermissionEvents: { ok: boolean }; runtimes: { path: string }[] } | null };
  runc?: { create: number; start: number; delete: number };
  watch?: { lines: Line[]; stderr: string; code: number };
  btfSha256?: string;
  error?: string;
}

/** Boots the VM on job and waits for qemu to exit; kills it (by pid) at the deadline. */
async function boot(job: string): Promise<number> {
  const qemu: ChildProcess = spawn(join(ROOT, 'scripts/arm64/vm.sh'), [VM!, job], { stdio: 'ignore' });
  const timer = setTimeout(() => qemu.kill('SIGKILL'), VM_DEADLINE_MS);
  try {
    return await new Promise<number>((resolve, reject) => {
      qemu.on('error', reject);
      qemu.on('exit', (code, signal) => (signal ? reject(new Error(`qemu killed by ${signal}; console: ${job}/console.log`)) : resolve(code ?? -1)));
    });
  } finally {
    clearTimeout(timer);
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill('SIGKILL');
  }
}

describe('the packed tarball on an arm64 kernel', () => {
  let job: string;
  let pack: string | undefined;
  let result: Result;
  let tarFiles: string[];
  let vmMs: number;

  beforeAll(async () => {
    if (!VM) throw new Error('OCINOTIFY_ARM64_VM is not set: run `make test-arm64`');
    job = mkdtempSync(join(tmpdir(), 'ocinotify-arm64-'));
    // The release: npm pack from a fresh clone, its prepack building both prebuilts.
    pack = mkdtempSync(join(tmpdir(), 'ocinotify-arm64-pack-'));
    const packed = await packFreshClone(pack);
    if (packed.code !== 0) throw new Error(`npm pack failed: ${packed.stderr.slice(-4000)}`);
    tarFiles = packed.files;
    copyFileSync(packed.tarball, join(job, basename(packed.tarball)));
    copyFileSync(join(ROOT, 'test/arm64/guest.mjs'), join(job, 'guest.mjs'));
    writeFileSync(join(job, 'annotations.json'), JSON.stringify(ANNOTATIONS));
    writeFileSync(join(job, 'run'), '#!/bin/sh\nexec node /job/guest.mjs >/job/guest.log 2>&1\n', { mode: 0o755 });
    const start = Date.now();
    const code = await boot(job);
    vmMs = Date.now() - start;
    const resultFile = join(job, 'result.json');
    if (!existsSync(resultFile)) throw new Error(`qemu exited ${code} without a result; console: ${job}/console.log`);
    result = JSON.parse(readFileSync(resultFile, 'utf8')) as Result;
    console.log(`arm64 VM: ${Math.round(vmMs / 1000)} s from boot to power-off; in the guest (ms): ${JSON.stringify(result.ms)}`);
  });

  afterAll(() => {
    if (pack) rmSync(pack, { recursive: true, force: true });
    // Kept when something failed: the console and the guest's log tell why.
    if (job && result && !result.error) rmSync(job, { recursive: true, force: true });
  });

  it('npm pack ships both prebuilts (prepack, with the cross toolchain installed)', () => {
    expect(tarFiles).toContain('prebuilds/linux-arm64/ocinotify.node');
    expect(tarFiles).toContain('prebuilds/linux-x64/ocinotify.node');
  });

  it('ran on Debian arm64 kernel of the VM, without a compiler', () => {
    expect(result.error).toBeUndefined();
    expect(result.arch).toBe('arm64');
    expect(result.kernel).toBe(basename(VM!).match(/^vm-(.+?)-node/)![1]);
    expect(result.compilers).toBe('');
  });

  it('installs from the tarball with the arm64 prebuilt, compiling nothing', () => {
    expect(result.install!.code).toBe(0);
    expect(result.install!.stdout).toContain('using the prebuilt addon for linux-arm64');
    expect(result.install!.prebuilt).toBe(true);
    expect(result.install!.built).toBe(false);
  });

  it('npx ocinotify doctor: full mode', () => {
    expect(result.doctor!.code).toBe(0);
    const report = result.doctor!.report!;
    expect(report.ebpf.ok).toBe(true);
    expect(report.fanotifyPermissionEvents.ok).toBe(true);
    expect(report.mode).toBe('full');
    expect(report.runtimes.map((r) => r.path)).toContain('/usr/sbin/runc');
  });

  it('ocinotify watch --json: precreate (held), create, start, exit, each with its pod', () => {
    expect(result.runc).toEqual({ create: 0, start: 0, delete: 0 });
    const lines = result.watch!.lines;
    expect(lines[0]).toMatchObject({ type: 'ready', mode: 'full' });
    const events = lines.filter((l) => l.id === 'arm64-lifecycle');
    expect(events.map((e) => e.type)).toEqual(['precreate', 'create', 'start', 'exit']);
    const pod = {
      name: ANNOTATIONS['io.kubernetes.cri.sandbox-name'],
      namespace: ANNOTATIONS['io.kubernetes.cri.sandbox-namespace'],
      uid: ANNOTATIONS['io.kubernetes.cri.sandbox-uid'],
    };
    for (const e of events) expect(e.pod).toEqual(pod);
    expect(events[0]!.held).toBe(true);
    expect(events[1]!.pid).toBeGreaterThan(1);
    expect(events[3]).toMatchObject({ pid: events[1]!.pid, exitCode: 3 });
    expect(result.watch!.code).toBe(0);
  });

  it('the BPF object was built against this kernel BTF', () => {
    const btf = execFileSync(join(ROOT, 'scripts/arm64/kernel.sh'), ['btf'], { encoding: 'utf8' }).trim();
    expect(result.btfSha256).toBe(createHash('sha256').update(readFileSync(btf)).digest('hex'));
  });
});
