// What a kernel without one of the mechanisms gets (src/cli/mechanisms.ts), shown on this one:
// the CLI runs under a seccomp filter (test/kit/without-syscalls.py) that fails the system call
// a kernel without it fails - ENOSYS for bpf(2), pidfd_open(2), openat2(2), EINVAL for a
// fanotify flag or mark it does not know, ENOSPC for an inotify watch. `doctor` names what is
// missing; `watch` takes the mode that is left, or fails with ERR_NO_MECHANISM, and says why.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, RUNC, criAnnotations, ocinotify, privileged, until, type Collected } from '../kit/index.js';
import type { DoctorReport } from '../../src/index.js';

const WITHOUT = fileURLToPath(new URL('../kit/without-syscalls.py', import.meta.url));

/** The CLI with these system calls failing: e.g. ['bpf=ENOSYS']. */
function without(calls: string[], args: string[]): Collected {
  return ocinotify(args, ['python3', WITHOUT, ...calls, '--']);
}

async function doctorWithout(calls: string[]): Promise<{ code: number | null; report: DoctorReport }> {
  const p = without(calls, ['doctor']);
  const code = await p.done;
  return { code, report: JSON.parse(p.stdout()) as DoctorReport };
}

function missing(report: DoctorReport): Record<string, string> {
  return Object.fromEntries(report.mechanisms.filter((m) => !m.ok).map((m) => [m.name, m.error]));
}

/** `watch --json` until its ready line, then stopped; its records and stderr. */
async function watchReady(calls: string[], extra: string[] = []): Promise<{ records: Record<string, unknown>[]; stderr: string }> {
  const p = without(calls, ['watch', '--json', ...extra]);
  try {
    await until(() => p.lines().length > 0, () => `the ready line (stderr: ${p.stderr()})`);
    return { records: p.records(), stderr: p.stderr() };
  } finally {
    p.child.kill('SIGTERM');
    await p.done;
  }
}

describe.skipIf(!privileged())('kernels without a mechanism', () => {
  let lab: Lab;

  beforeAll(() => {
    lab = new Lab();
  });

  afterAll(async () => {
    await lab?.cleanup();
  });

  it('here: doctor finds every mechanism, mode full', async () => {
    const { code, report } = await doctorWithout([]);
    expect(code).toBe(0);
    expect(missing(report)).toEqual({});
    expect(report.mode).toBe('full');
  });

  it('without bpf(2): doctor names BPF and what hangs on it; watch runs fanotify-only', async () => {
    const { code, report } = await doctorWithout(['bpf=ENOSYS']);
    expect(code).toBe(0);
    expect(Object.keys(missing(report))).toEqual(['BPF', 'tp_btf', 'BPF ring buffer', 'bpf_get_current_task_btf', 'bpf_loop']);
    expect(report.mechanisms.find((m) => m.name === 'bpf_loop')).toMatchObject({ since: '5.17', without: expect.stringMatching(/fanotify-only/) });
    expect(report.mode).toBe('fanotify-only');
    const { records } = await watchReady(['bpf=ENOSYS']);
    expect(records[0]).toMatchObject({ type: 'ready', mode: 'fanotify-only', reason: expect.stringMatching(/^eBPF unavailable/) });
  });

  it('without fanotify permission groups (before 4.20): ebpf-only', async () => {
    const { report } = await doctorWithout(['fanotify_init=EINVAL']);
    expect(missing(report)).toEqual({ fanotify: 'fanotify_init: Invalid argument', FAN_OPEN_EXEC_PERM: 'needs fanotify' });
    expect(report.mode).toBe('ebpf-only');
  });

  it('without FAN_OPEN_EXEC_PERM (before 5.0): ebpf-only, and each runtime binary says it is not held', async () => {
    const { report } = await doctorWithout(['fanotify_mark=EINVAL']);
    expect(missing(report)).toEqual({ FAN_OPEN_EXEC_PERM: 'fanotify_mark: Invalid argument' });
    expect(report.mode).toBe('ebpf-only');
    const p = without(['fanotify_mark=EINVAL'], ['watch', '--json']);
    try {
      const runc = (): Record<string, unknown> | undefined => p.records().find((r) => r.type === 'runtime' && r.path === RUNC);
      await until(() => runc() !== undefined, () => `a runtime event for ${RUNC} (stderr: ${p.stderr()})`);
      expect(p.records()[0]).toMatchObject({ type: 'ready', mode: 'ebpf-only' });
      expect(runc()).toMatchObject({ change: 'added', markError: 'not held: fanotify_mark: Invalid argument' });
    } finally {
      p.child.kill('SIGTERM');
      await p.done;
    }
  });

  it('without eBPF and fanotify: ERR_NO_MECHANISM, exit 1, doctor exits 1', async () => {
    const calls = ['bpf=ENOSYS', 'fanotify_init=EINVAL'];
    const { code, report } = await doctorWithout(calls);
    expect(code).toBe(1);
    expect(report.mode).toBeNull();
    const p = without(calls, ['watch', '--json']);
    expect(await p.done).toBe(1);
    expect(p.stderr()).toMatch(/\[ERR_NO_MECHANISM\]/);
    expect(p.stderr()).toMatch(/eBPF unavailable .*fanotify unavailable \(fanotify_init: Invalid argument\)/);
  });

  it('without eBPF or pidfd_open (before 5.3): fanotify-only cannot follow exits, so ERR_NO_MECHANISM', async () => {
    const calls = ['bpf=ENOSYS', 'pidfd_open=ENOSYS'];
    const { report } = await doctorWithout(calls);
    expect(missing(report)).toMatchObject({ pidfd_open: 'pidfd_open: Function not implemented' });
    expect(report.mode).toBeNull();
    const p = without(calls, ['watch']);
    expect(await p.done).toBe(1);
    expect(p.stderr()).toMatch(/fanotify unavailable \(pidfd_open: Function not implemented: without eBPF, exits are followed through pidfds\).*\[ERR_NO_MECHANISM\]/);
  });

  it('without openat2 (before 5.6): precreate says the spec could not be read, and there is no pod', async () => {
    const id = 'no-openat2';
    const p = without(['openat2=ENOSYS'], ['watch', '--json']);
    try {
      await until(() => p.lines().length > 0, () => `the ready line (stderr: ${p.stderr()})`);
      expect(p.records()[0]).toMatchObject({ type: 'ready', mode: 'full' });
      await lab.runc(['create', '--bundle', lab.bundle(id, ['/bin/true'], criAnnotations(id)), id]);
      const pre = (): Record<string, unknown> | undefined => p.records().find((r) => r.id === id && r.type === 'precreate');
      await until(() => pre() !== undefined, 'precreate');
      expect(pre()).toMatchObject({ held: true, pod: null, specError: { code: 'ERR_SPEC_READ' } });
    } finally {
      p.child.kill('SIGTERM');
      await p.done;
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
    }
  });

  it('when the kernel inode key cannot be learnt: each binary says it is keyed by stat(2)', async () => {
    const { report } = await doctorWithout(['inotify_add_watch=ENOSPC']);
    expect(Object.keys(missing(report))).toEqual(['inotify fdinfo']);
    const runc = report.runtimes.find((r) => r.path === RUNC)!;
    expect(runc).toMatchObject({ kernelKey: null, keyError: expect.stringMatching(/^inotify_add_watch .*: No space left on device$/) });
    const p = without(['inotify_add_watch=ENOSPC'], ['watch', '--json']);
    try {
      const event = (): Record<string, unknown> | undefined => p.records().find((r) => r.type === 'runtime' && r.path === RUNC);
      await until(() => event() !== undefined, () => `a runtime event for ${RUNC} (stderr: ${p.stderr()})`);
      expect(event()!.markError).toMatch(/^kernel inode key unknown \(inotify_add_watch .*: No space left on device\): keyed by stat\(2\)/);
    } finally {
      p.child.kill('SIGTERM');
      await p.done;
    }
  });
});
