// Hostile config.json files, each given to real runc with the real kernel path (full mode,
// held at the gate). Each case ends in a typed diagnostic or a clean ignore: the watcher never
// throws, never blocks, never invents a container, and follows every container runc makes.
import { execFileSync } from 'node:child_process';
import { constants, chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent, DiagnosticCode, DiagnosticEvent } from '../../src/index.js';
import { Lab, criAnnotations, finish, lifecycle, ocinotify, privileged, until } from '../kit/index.js';
import { Observer } from './hostile.js';
import { Mounts } from './mounts.js';

const MiB = 1024 * 1024;
const GATE_TIMEOUT_MS = 5000;

describe.skipIf(!privileged())('hostile config.json, through real runc', () => {
  let lab: Lab;
  let obs: Observer;
  const suffix = process.pid.toString(36);
  const idOf = (name: string): string => `hs-${name}-${suffix}`;

  beforeAll(() => {
    lab = new Lab();
    obs = new Observer({ gateTimeoutMs: GATE_TIMEOUT_MS });
  });

  afterAll(async () => {
    obs?.close();
    await lab?.cleanup();
  });

  it('watches in full mode', () => {
    expect(obs.watcher.mode).toBe('full');
  });

  /** A bundle whose config.json is the lab's, then rewritten by mutate. */
  function hostileBundle(id: string, mutate: (configPath: string, spec: Record<string, unknown>) => void): string {
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const configPath = join(bundle, 'config.json');
    mutate(configPath, JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>);
    return bundle;
  }

  function precreateOf(id: string): ContainerEvent {
    const pre = obs.of(id, 'precreate');
    expect(pre).toHaveLength(1);
    return pre[0]!;
  }

  /** runc refuses the bundle too: a precreate that says why, one diagnostic, then `failed`. */
  async function expectRefused(id: string, bundle: string, code: DiagnosticCode, specError: DiagnosticCode | null = code): Promise<void> {
    const outcome = await lab.runc(['create', '--bundle', bundle, id]).then(
      () => 'created',
      (err: Error) => err.message,
    );
    expect(outcome).not.toBe('created');
    await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'failed'));
    expect(obs.types(id)).toEqual(['precreate', 'failed']);
    const pre = precreateOf(id);
    expect(pre.held).toBe(true);
    expect(pre.specError?.code ?? null).toBe(specError);
    expect(obs.diagnosticsOf(id).map((d) => [d.code, d.impact])).toEqual([[code, 'degraded']]);
  }

  /** runc accepts the bundle: the container is followed to its exit whatever we made of its spec. */
  async function expectFollowed(id: string, bundle: string, codes: DiagnosticCode[], specError: DiagnosticCode | null): Promise<ContainerEvent> {
    await lifecycle(lab, obs, id, bundle);
    expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
    const pre = precreateOf(id);
    expect(pre.specError?.code ?? null).toBe(specError);
    expect(obs.diagnosticsOf(id).map((d) => d.code)).toEqual(codes);
    const [, create, start] = obs.of(id);
    expect(create!.pid).toBeGreaterThan(0);
    expect(start!.pid).toBe(create!.pid);
    return pre;
  }

  it('config.json missing: ERR_SPEC_NOT_FOUND, then failed', async () => {
    const id = idOf('missing');
    const bundle = await hostileBundle(id, (p) => rmSync(p));
    await expectRefused(id, bundle, 'ERR_SPEC_NOT_FOUND');
    const d = obs.diagnosticsOf(id)[0]!;
    expect(d.details.candidates).toEqual([join(bundle, 'config.json'), join(bundle, 'userdata', 'config.json')]);
    expect(d.bundle).toBe(bundle);
    expect(d.runtime!.pid).toBe(precreateOf(id).runtime.pid);
  });

  it('config.json empty: ERR_SPEC_EMPTY', async () => {
    const id = idOf('empty');
    await expectRefused(id, await hostileBundle(id, (p) => writeFileSync(p, '')), 'ERR_SPEC_EMPTY');
  });

  it('config.json invalid JSON: ERR_SPEC_INVALID_JSON, without quoting the file', async () => {
    const id = idOf('invalid');
    const bundle = await hostileBundle(id, (p) => writeFileSync(p, '{"process":{"env":["TOKEN=hunter2-invalid"]}, oops'));
    await expectRefused(id, bundle, 'ERR_SPEC_INVALID_JSON');
    expect(JSON.stringify([obs.of(id), obs.diagnosticsOf(id)])).not.toContain('hunter2');
  });

  it('config.json not UTF-8: ERR_SPEC_NOT_UTF8; runc accepts it, the container is followed', async () => {
    const id = idOf('latin1');
    const bundle = await hostileBundle(id, (p, spec) => {
      spec.hostname = 'HOSTNAME';
      writeFileSync(p, Buffer.from(JSON.stringify(spec)).toString('latin1').replace('HOSTNAME', 'h\u00ffst'), 'latin1');
    });
    const pre = await expectFollowed(id, bundle, ['ERR_SPEC_NOT_UTF8'], 'ERR_SPEC_NOT_UTF8');
    expect(pre.pod).toBeNull();
  });

  it('config.json of 17 MiB: refused unread (ERR_SPEC_TOO_LARGE); runc accepts it, the container is followed', async () => {
    const id = idOf('huge');
    const bundle = await hostileBundle(id, (p, spec) => {
      spec.annotations = { ...(spec.annotations as object), pad: 'x'.repeat(17 * MiB) };
      writeFileSync(p, JSON.stringify(spec));
    });
    const pre = await expectFollowed(id, bundle, ['ERR_SPEC_TOO_LARGE'], 'ERR_SPEC_TOO_LARGE');
    expect(obs.diagnosticsOf(id)[0]!.details.errno).toBe('EFBIG');
    expect(pre.manager).toBe('unknown');
  });

  it('config.json nested 100,000 deep: ERR_SPEC_TOO_DEEP, no RangeError', async () => {
    const id = idOf('deep');
    const bundle = await hostileBundle(id, (p, spec) => {
      const text = JSON.stringify({ ...spec, deep: 0 });
      writeFileSync(p, text.replace('"deep":0', `"deep":${'['.repeat(100_000)}${']'.repeat(100_000)}`));
    });
    await expectRefused(id, bundle, 'ERR_SPEC_TOO_DEEP');
  });

  it('annotations that are not strings: dropped with a diagnostic, the string ones still resolve', async () => {
    const id = idOf('nonstring');
    const bundle = await hostileBundle(id, (p, spec) => {
      spec.annotations = { ...(spec.annotations as object), 'io.kubernetes.cri.image-name': 7, nested: { a: 1 }, list: ['x'] };
      writeFileSync(p, JSON.stringify(spec));
    });
    // runc cannot unmarshal them into map[string]string either.
    await expectRefused(id, bundle, 'ERR_SPEC_ANNOTATIONS_DROPPED', null);
    const pre = precreateOf(id);
    expect(pre.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
    expect(pre.container.image).toBeNull();
    expect([...(obs.diagnosticsOf(id)[0]!.details.keys as string[])].sort()).toEqual(['io.kubernetes.cri.image-name', 'list', 'nested']);
  });

  it('a 1 MiB annotation: dropped with a diagnostic that names its key, never its value', async () => {
    const id = idOf('bigannotation');
    const bundle = await hostileBundle(id, (p, spec) => {
      spec.annotations = { ...(spec.annotations as object), big: 'v'.repeat(MiB) };
      writeFileSync(p, JSON.stringify(spec));
    });
    const pre = await expectFollowed(id, bundle, ['ERR_SPEC_ANNOTATIONS_DROPPED'], null);
    expect(pre.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
    const d = obs.diagnosticsOf(id)[0]!;
    expect(d.details.keys).toEqual(['big']);
    expect(JSON.stringify(d).length).toBeLessThan(4096);
  });

  it('config.json a symlink to a host file: not followed (ERR_SPEC_SYMLINK)', async () => {
    const id = idOf('hostfile');
    const bundle = await hostileBundle(id, (p) => {
      rmSync(p);
      symlinkSync('/etc/passwd', p);
    });
    await expectRefused(id, bundle, 'ERR_SPEC_SYMLINK');
    expect(obs.diagnosticsOf(id)[0]!.details.errno).toMatch(/^(EXDEV|ELOOP)$/);
  });

  it('config.json a symlink to a valid spec elsewhere on the host: not followed, the container still is', async () => {
    const id = idOf('abslink');
    const elsewhere = join(lab.dir, `elsewhere-${id}.json`);
    const bundle = await hostileBundle(id, (p) => {
      renameSync(p, elsewhere);
      symlinkSync(elsewhere, p);
    });
    const pre = await expectFollowed(id, bundle, ['ERR_SPEC_SYMLINK'], 'ERR_SPEC_SYMLINK');
    expect(pre.pod).toBeNull();
  });

  it('config.json a relative symlink out of the bundle: not followed, the container still is', async () => {
    const id = idOf('outlink');
    const bundle = await hostileBundle(id, (p) => {
      renameSync(p, join(lab.dir, 'bundles', `${id}.json`));
      symlinkSync(`../${id}.json`, p);
    });
    await expectFollowed(id, bundle, ['ERR_SPEC_SYMLINK'], 'ERR_SPEC_SYMLINK');
  });

  it('config.json a FIFO: precreate comes at once (ERR_SPEC_NOT_REGULAR) while runc blocks on it', async () => {
    const id = idOf('fifo');
    let spec = '';
    const bundle = await hostileBundle(id, (p, s) => {
      spec = JSON.stringify(s);
      rmSync(p);
      execFileSync('mkfifo', [p]);
    });
    const create = lab.runc(['create', '--bundle', bundle, id]);
    await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'precreate'), 5000);
    expect(precreateOf(id).specError?.code).toBe('ERR_SPEC_NOT_REGULAR');
    // runc is blocked opening the FIFO for reading; a writer lets it go on with a valid spec.
    let fd = -1;
    await until(() => {
      try {
        fd = openSync(join(bundle, 'config.json'), constants.O_WRONLY | constants.O_NONBLOCK);
        return true;
      } catch {
        return false;
      }
    }, 'runc to open the FIFO', 5000);
    writeSync(fd, spec);
    closeSync(fd);
    await create;
    await lab.runc(['start', id]);
    await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
    await lab.runc(['kill', id, 'KILL']);
    await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await lab.deleteExited(id);
    expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
    expect(obs.diagnosticsOf(id).map((d) => d.code)).toEqual(['ERR_SPEC_NOT_REGULAR']);
  });

  it('config.json on a FUSE mount that hangs: precreate once the reader has waited its quarter of the deadline (ERR_SPEC_SLOW), another creation resolved meanwhile, the container followed once the mount answers', async () => {
    const id = idOf('fuse');
    const other = idOf('fuse-other');
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const mounts = new Mounts(join(lab.dir, `mnt-${id}`));
    let arrived = 0n;
    const stamp = (e: ContainerEvent): void => {
      if (e.id === id) arrived = process.hrtime.bigint();
    };
    obs.watcher.on('precreate', stamp);
    try {
      const fuse = await mounts.fuseOver(join(bundle, 'config.json'));
      process.kill(fuse.pid, 'SIGSTOP');
      // runc waits on the mount too, once let go: its create ends after SIGCONT.
      const create = lab.runc(['create', '--bundle', bundle, id]);
      await obs.until((ev) => ev.some((e) => e.id === id && e.type === 'precreate'));
      const pre = precreateOf(id);
      expect(pre.specError?.code).toBe('ERR_SPEC_SLOW');
      expect(pre.pod).toBeNull();
      expect({ held: pre.held, heldBy: pre.heldBy }).toEqual({ held: true, heldBy: 'watcher' });
      // The batch waited for the read a quarter of the deadline, and JavaScript had the rest.
      const waitedMs = Number(arrived - BigInt(pre.monotonicNs)) / 1e6;
      expect(waitedMs).toBeGreaterThanOrEqual(GATE_TIMEOUT_MS / 4);
      expect(waitedMs).toBeLessThan(GATE_TIMEOUT_MS);
      // The reader is stuck on that read: the next creation is read on the JavaScript thread, whole.
      await lifecycle(lab, obs, other, lab.bundle(other, ['/bin/sleep', '30'], criAnnotations(other)));
      expect(obs.types(other)).toEqual(['precreate', 'create', 'start', 'exit']);
      expect(precreateOf(other)).toMatchObject({ specError: null, pod: { name: `pod-${other}` } });
      expect(obs.diagnosticsOf(other)).toEqual([]);
      process.kill(fuse.pid, 'SIGCONT');
      await create;
      await finish(lab, obs, id);
      expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
      expect(obs.diagnosticsOf(id).map((d) => [d.code, d.impact])).toEqual([['ERR_SPEC_SLOW', 'degraded']]);
    } finally {
      obs.watcher.off('precreate', stamp);
      await lab.runc(['delete', '--force', id]).catch(() => undefined);
      mounts.cleanup();
    }
  });

  it('config.json a directory: ERR_SPEC_NOT_REGULAR', async () => {
    const id = idOf('dir');
    const bundle = await hostileBundle(id, (p) => {
      rmSync(p);
      mkdirSync(p);
    });
    await expectRefused(id, bundle, 'ERR_SPEC_NOT_REGULAR');
  });

  it('config.json replaced while the runtime is held: ERR_SPEC_CHANGED at create', async () => {
    const id = idOf('swapped');
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const configPath = join(bundle, 'config.json');
    const swapped = JSON.parse(readFileSync(configPath, 'utf8')) as { annotations: Record<string, string> };
    swapped.annotations['io.kubernetes.cri.sandbox-namespace'] = 'kube-system';
    const swap = (e: ContainerEvent): void => {
      if (e.id !== id || e.type !== 'precreate') return;
      writeFileSync(`${configPath}.new`, JSON.stringify(swapped));
      renameSync(`${configPath}.new`, configPath);
    };
    obs.watcher.on('precreate', swap);
    try {
      await lifecycle(lab, obs, id, bundle);
    } finally {
      obs.watcher.off('precreate', swap);
    }
    expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
    // The gate saw the namespace the runtime did not use; the diagnostic says so, at create.
    expect(precreateOf(id).pod?.namespace).toBe('demons');
    const [d] = obs.diagnosticsOf(id) as [DiagnosticEvent];
    expect(d.code).toBe('ERR_SPEC_CHANGED');
    expect(d.details.configPath).toBe(configPath);
    expect(BigInt(d.monotonicNs)).toBe(BigInt(obs.of(id, 'create')[0]!.monotonicNs));
  });

  it('config.json unreadable to the watcher (CLI without CAP_DAC_OVERRIDE): ERR_SPEC_ACCESS, the container still followed', async () => {
    const id = idOf('noperm');
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    chmodSync(join(bundle, 'config.json'), 0o000);
    // uid 0 without the capabilities that bypass file modes: runc (full root) reads it, the watcher cannot.
    const cli = ocinotify(['watch', '--json'], ['setpriv', '--bounding-set=-dac_override,-dac_read_search', '--']);
    const lines = (): Record<string, unknown>[] => cli.records();
    try {
      await until(() => lines().some((l) => l.type === 'ready'), () => `the CLI to be ready (${cli.stderr()})`);
      await lab.runc(['create', '--bundle', bundle, id]);
      await lab.runc(['start', id]);
      await until(() => lines().some((l) => l.id === id && l.type === 'start'), 'the CLI to report start');
      await lab.runc(['delete', '--force', id]);
      await until(() => lines().some((l) => l.id === id && l.type === 'exit'), 'the CLI to report exit');
    } finally {
      cli.child.kill('SIGTERM');
      await cli.done;
    }
    const mine = lines().filter((l) => l.id === id);
    expect(mine.map((l) => l.type)).toEqual(['diagnostic', 'precreate', 'create', 'start', 'exit']);
    expect(mine[0]).toMatchObject({ code: 'ERR_SPEC_ACCESS', impact: 'degraded', details: { errno: 'EACCES' } });
    expect(mine[1]).toMatchObject({ specError: { code: 'ERR_SPEC_ACCESS' }, pod: null });
  });

  it('none of it crashed the watcher or left the schema, and it still follows a plain container', async () => {
    const id = idOf('after');
    await lifecycle(lab, obs, id, lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id)));
    expect(obs.types(id)).toEqual(['precreate', 'create', 'start', 'exit']);
    expect(obs.diagnosticsOf(id)).toEqual([]);
    obs.expectSound();
  });
});
