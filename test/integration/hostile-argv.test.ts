// Hostile runtime argv, exec'd for real (full mode: eBPF + fanotify hold). An argv no runtime
// accepts is a diagnostic and no container; one the runtime accepts, however odd, is followed.
// The symlink and execveat forms are in argv-forms.test.ts; non-root callers in nonroot.test.ts.
import { linkSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiagnosticCode } from '../../src/index.js';
import { Lab, RUNC, criAnnotations, execRuntime, finish, privileged, sq, timedShell } from '../kit/index.js';
import { Observer } from './hostile.js';

const MiB = 1024 * 1024;

describe.skipIf(!privileged())('hostile runtime argv, exec\'d for real', () => {
  let lab: Lab;
  let obs: Observer;
  let hardLink: string;
  const suffix = process.pid.toString(36);
  const idOf = (name: string): string => `ha-${name}-${suffix}`;

  beforeAll(() => {
    lab = new Lab();
    obs = new Observer({ gateTimeoutMs: 5000 });
  });

  afterAll(async () => {
    obs?.close();
    if (hardLink) rmSync(hardLink, { force: true });
    await lab?.cleanup();
  });

  const bundleFor = (id: string): string => lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));

  /** start, kill and delete a created container; its four events, exactly once. */
  async function expectFollowed(id: string): Promise<void> {
    await finish(lab, obs, id);
    await obs.fence(lab);
    expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
    expect(obs.of(id, 'precreate')[0]!.held).toBe(true);
    expect(obs.of(id, 'create')[0]!.pod?.uid).toBe(`uid-${id}`);
  }

  /** runc refuses args; the watcher says why once (found by marker in argv) and reports nothing else. */
  async function expectIgnored(args: string[], marker: string, code: DiagnosticCode): Promise<void> {
    const before = obs.events.length;
    const outcome = await lab.runc(args).then(
      () => 'ok',
      (err: Error) => err.message,
    );
    expect(outcome).not.toBe('ok');
    await obs.fence(lab);
    const found = obs.diagnosticsWith(marker);
    expect(found.map((d) => [d.code, d.impact])).toEqual([[code, 'ignored']]);
    expect(found[0]!.id).toBeNull();
    expect(found[0]!.runtime!.euid).toBe(0);
    expect(found[0]!.runtime!.path).toBe(RUNC);
    expect(obs.events.slice(before).filter((e) => e.bundle?.includes(marker) || e.runtime.argv.some((a) => a.includes(marker)))).toEqual([]);
  }

  it('10,000 arguments (9,996 repeated flags runc accepts): followed, with the whole argv', async () => {
    const id = idOf('10k');
    const bundle = bundleFor(id);
    const flags = new Array<string>(9_996).fill('--no-new-keyring');
    await lab.runc(['create', ...flags, '--bundle', bundle, id]);
    await expectFollowed(id);
    const pre = obs.of(id, 'precreate')[0]!;
    expect(pre.runtime.argv).toHaveLength(1 + 2 + 1 + 9_996 + 3);
    expect(pre.runtime.argv.at(-1)).toBe(id);
    expect(obs.diagnosticsOf(id)).toEqual([]);
  });

  it('10,000 arguments in ebpf-only mode: the whole argv comes from /proc once the runtime runs', async () => {
    const ebpf = new Observer({ mode: 'ebpf-only' });
    try {
      const id = idOf('10k-ebpf');
      const bundle = bundleFor(id);
      await lab.runc(['create', ...new Array<string>(9_996).fill('--no-new-keyring'), '--bundle', bundle, id]);
      await expectFollowed(id);
      await ebpf.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
      expect(ebpf.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
      expect(ebpf.of(id, 'precreate')[0]!.runtime.argv).toHaveLength(10_003);
      expect(ebpf.diagnosticsOf(id)).toEqual([]);
      ebpf.expectSound();
    } finally {
      ebpf.close();
    }
  });

  it('a 100 KiB argument (--pid-file): read whole, the runtime\'s own failure ends it', async () => {
    const id = idOf('100k');
    const long = `/${'p'.repeat(100 * 1024)}`;
    await lab.runc(['create', '--pid-file', long, '--bundle', bundleFor(id), id]).catch(() => undefined);
    await obs.until((ev) => ev.some((e) => e.id === id && (e.type === 'failed' || e.type === 'create')));
    expect(obs.types(id)).toEqual(['precreate', 'failed']);
    expect(obs.of(id, 'precreate')[0]!.runtime.argv).toContain(long);
  });

  it('a 1 MiB argument: the kernel refuses the exec (E2BIG) after the hold; precreate, then failed', async () => {
    const id = idOf('1m');
    const bundle = bundleFor(id);
    // Built inside the shell: node could not pass it to /bin/sh either.
    const script = `big=$(head -c ${MiB} /dev/zero | tr '\\0' p); ${RUNC} --root ${sq(lab.stateRoot)} create --pid-file "/$big" --bundle ${sq(bundle)} ${id} 2>>${sq(lab.log)}`;
    const res = await timedShell(script);
    expect(res.code).not.toBe(0);
    await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'failed'));
    expect(obs.types(id)).toEqual(['precreate', 'failed']);
    expect(obs.of(id, 'failed')[0]!.reason).toBe('runtime exec failed: E2BIG');
    expect(obs.of(id, 'precreate')[0]!.runtime.argv.find((a) => a.startsWith('/pp'))).toHaveLength(MiB + 1);
  });

  it('a 1 MiB argument as the container id: ERR_ARGV_INVALID_ID, no event', async () => {
    const marker = `mib-id-${suffix}`;
    const script = `big=$(head -c ${MiB} /dev/zero | tr '\\0' i); ${RUNC} --root ${sq(lab.stateRoot)} create --bundle /nonexistent/${marker} "$big" 2>>${sq(lab.log)}`;
    expect((await timedShell(script)).code).not.toBe(0);
    await obs.fence(lab);
    const found = obs.diagnosticsWith(marker);
    expect(found.map((d) => d.code)).toEqual(['ERR_ARGV_INVALID_ID']);
    expect(found[0]!.runtime!.argvClipped).toBe(true);
    expect(JSON.stringify(found[0]).length).toBeLessThan(8192);
  });

  it('no container id: ERR_ARGV_MISSING_ID', async () => {
    const marker = `noid-${suffix}`;
    await expectIgnored(['create', '--bundle', `/nonexistent/${marker}`], marker, 'ERR_ARGV_MISSING_ID');
  });

  for (const [name, bad] of [
    ['slash', 'a/b'],
    ['dotdot', '..'],
    ['control', 'a\u0001b'],
    ['newline', 'a\nb'],
    ['escape', '\u001b[2J'],
    ['1025', 'x'.repeat(1025)],
  ] as const) {
    it(`an id with ${name === '1025' ? '1,025 characters' : JSON.stringify(bad)}: ERR_ARGV_INVALID_ID`, async () => {
      const marker = `badid-${name}-${suffix}`;
      await expectIgnored(['create', '--bundle', `/nonexistent/${marker}`, bad], marker, 'ERR_ARGV_INVALID_ID');
      // What the CLI prints: control characters escaped.
      expect(JSON.stringify(obs.diagnosticsWith(marker)[0])).not.toMatch(/[\u0000-\u001f]/);
    });
  }

  it('an id of 1,024 characters is valid: precreate, and runc\'s own failure ends it', async () => {
    const id = 'x'.repeat(1023) + suffix.slice(-1);
    await lab.runc(['create', '--bundle', bundleFor(idOf('1024')), id]).catch(() => undefined);
    await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'failed'));
    expect(obs.types(id)).toEqual(['precreate', 'failed']);
  });

  it('unknown flags: precreate, then runc refuses them (failed); nothing follows', async () => {
    for (const flag of ['--frobnicate', '--frobnicate=1']) {
      const id = idOf(`unknown-${flag.length}`);
      await lab.runc(['create', flag, '--bundle', bundleFor(id), id]).catch(() => undefined);
      await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'failed'));
      expect(obs.types(id)).toEqual(['precreate', 'failed']);
    }
  });

  it('--bundle with no value: ERR_ARGV_MISSING_VALUE', async () => {
    const marker = `novalue-${suffix}`;
    await expectIgnored(['create', marker, '--bundle'], marker, 'ERR_ARGV_MISSING_VALUE');
  });

  it('runc exec\'d by a relative path (./runc)', async () => {
    const id = idOf('relpath');
    const bundle = bundleFor(id);
    await execRuntime('./runc', ['--root', lab.stateRoot, 'create', '--bundle', bundle, id], lab.log, dirname(RUNC));
    await expectFollowed(id);
    const pre = obs.of(id, 'precreate')[0]!;
    expect(pre.runtime.argv[0]).toBe('./runc');
    expect(pre.runtime.path).toBe(RUNC);
  });

  it('runc exec\'d through a hard link of another name (argv read from the held thread)', async () => {
    const id = idOf('hardlink');
    hardLink = join(lab.dir, 'oci-hard');
    linkSync(RUNC, hardLink);
    const bundle = bundleFor(id);
    await execRuntime(hardLink, ['--root', lab.stateRoot, 'create', '--bundle', bundle, id], lab.log);
    await expectFollowed(id);
    const pre = obs.of(id, 'precreate')[0]!;
    expect(pre.runtime.argv[0]).toBe(hardLink);
    expect(pre.runtime.path).toBe(RUNC);
    expect(BigInt(pre.monotonicNs)).toBeGreaterThan(0n);
    rmSync(hardLink);
  });

  it('nothing crashed or left the schema; no session is left pending', async () => {
    obs.expectSound();
    expect(obs.watcher.stats().heldNow).toBe(0);
  });
});
