import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ARG_CHARS,
  ARGV_HEAD,
  ARGV_TAIL,
  RecentPids,
  diagnosticFromError,
  errnoName,
  mayCreate,
  summarizeRuntime,
  type DiagnosticContext,
} from '../../src/diagnostics.js';
import { ArgvError, SpecError } from '../../src/errors.js';
import { readStatePid } from '../../src/host/init-pid.js';
import { liveReads } from '../../src/host/reads.js';
import { parseSpec } from '../../src/spec.js';
import { diagnosticProblems } from '../schema.js';

const runtime = (argv: string[]) => summarizeRuntime({ name: 'runc', path: '/usr/sbin/runc', pid: 42, euid: 0, argv });
const ctx = (argv: string[] = ['runc', 'create']): DiagnosticContext => ({ ts: 5n, id: null, bundle: null, runtime: runtime(argv) });

describe('runtime summary', () => {
  it('keeps a short argv whole', () => {
    expect(runtime(['runc', 'create', 'x'])).toMatchObject({ argc: 3, argv: ['runc', 'create', 'x'], argvOmitted: 0, argvClipped: false });
  });

  it('keeps head and tail of 10,000 arguments, and says how many are left out', () => {
    const argv = ['runc', ...Array.from({ length: 9_998 }, (_, i) => `--a${i}`), 'the-id'];
    const s = runtime(argv);
    expect(s.argv).toHaveLength(ARGV_HEAD + ARGV_TAIL);
    expect(s.argv[0]).toBe('runc');
    expect(s.argv.at(-1)).toBe('the-id');
    expect(s.argc).toBe(10_000);
    expect(s.argvOmitted).toBe(10_000 - ARGV_HEAD - ARGV_TAIL);
  });

  it('clips a 1 MiB argument', () => {
    const s = runtime(['runc', 'create', 'x'.repeat(1 << 20)]);
    expect(s.argv[2]).toHaveLength(ARG_CHARS + 3);
    expect(s.argvClipped).toBe(true);
    expect(JSON.stringify(s).length).toBeLessThan(1024);
  });
});

describe('diagnostics from errors', () => {
  it('carries our code, message and only the details that name where and why', () => {
    const err = new ArgvError('ERR_ARGV_INVALID_ID', 'create: invalid container id', { verb: 'create', id: 'a/b', secret: 'no' });
    const d = diagnosticFromError(err, 'ERR_ARGV_INVALID_ID', 'ignored', ctx());
    expect(d).toMatchObject({ type: 'diagnostic', code: 'ERR_ARGV_INVALID_ID', impact: 'ignored', monotonicNs: '5', details: { verb: 'create', id: 'a/b' } });
    expect(d.details).not.toHaveProperty('secret');
    expect(diagnosticProblems(d)).toEqual([]);
  });

  it('never passes on the message of an error that is not ours: V8 quotes the JSON it choked on', () => {
    let syntax: unknown;
    try {
      JSON.parse('{"env": hunter2}');
    } catch (e) {
      syntax = e;
    }
    expect(String(syntax)).toContain('hunter2');
    const d = diagnosticFromError(syntax, 'ERR_SPEC_READ', 'degraded', ctx());
    expect(d.code).toBe('ERR_SPEC_READ');
    expect(JSON.stringify(d)).not.toContain('hunter2');
  });

  it('a spec that does not parse: the message names the file, not its content', () => {
    let err: unknown;
    try {
      parseSpec(Buffer.from('{"process":{"env":["TOKEN=hunter2"]} oops'), '/b/config.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    const d = diagnosticFromError(err, 'ERR_SPEC_READ', 'degraded', ctx());
    expect(d.code).toBe('ERR_SPEC_INVALID_JSON');
    expect(JSON.stringify(d)).not.toContain('hunter2');
  });
});

describe('helpers', () => {
  it('mayCreate mirrors the reactor prefilter', () => {
    expect(mayCreate(['runc', '--root', '/r', 'create', 'x'])).toBe(true);
    expect(mayCreate(['runc', 'run', 'x'])).toBe(true);
    expect(mayCreate(['create'])).toBe(false);
    expect(mayCreate(['runc', 'start', 'x'])).toBe(false);
  });

  it('names errnos, the kernel-internal restart codes too', () => {
    expect(errnoName(7)).toBe('E2BIG');
    expect(errnoName(512)).toBe('ERESTARTSYS');
    expect(errnoName(99999)).toBe('errno 99999');
  });

  it('RecentPids: once per pid, bounded', () => {
    const r = new RecentPids(2);
    expect(r.add(1)).toBe(true);
    expect(r.add(1)).toBe(false);
    expect(r.take(1)).toBe(true);
    expect(r.take(1)).toBe(false);
    r.add(1);
    r.add(2);
    r.add(3);
    expect(r.size).toBe(2);
    expect(r.take(1)).toBe(false);
  });
});

describe('init pid from runtime state', () => {
  const root = mkdtempSync(join(tmpdir(), 'ocinotify-state-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function state(id: string, text: string): void {
    mkdirSync(join(root, 'run', id), { recursive: true });
    writeFileSync(join(root, 'run', id, 'state.json'), text);
  }

  it('reads runc state.json however large the config it embeds (a 1 MiB annotation)', () => {
    state('big', `{"id":"big","init_process_pid":4242,"init_process_start":1,"config":{"labels":["${'x'.repeat(20 << 20)}"]}}`);
    expect(readStatePid(liveReads, root, '/run', 'big')).toBe(4242);
  });

  it('does not take a pid from inside the embedded config', () => {
    state('sneaky', `{"id":"sneaky","config":{"x":"${'y'.repeat(70_000)}","init_process_pid":1}}`);
    expect(readStatePid(liveReads, root, '/run', 'sneaky')).toBeNull();
  });

  it('parses a small state file whole, and crun status', () => {
    state('small', JSON.stringify({ created: 'now', init_process_pid: 77, id: 'small' }));
    expect(readStatePid(liveReads, root, '/run', 'small')).toBe(77);
    mkdirSync(join(root, 'crun', 'c'), { recursive: true });
    writeFileSync(join(root, 'crun', 'c', 'status'), JSON.stringify({ pid: 88 }));
    expect(readStatePid(liveReads, root, '/crun', 'c')).toBe(88);
    expect(readStatePid(liveReads, root, '/run', 'none')).toBeNull();
  });
});
