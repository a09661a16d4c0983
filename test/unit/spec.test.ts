import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciNotifyError, SpecError } from '../../src/errors.js';
import {
  MAX_ANNOTATION_BYTES,
  MAX_SPEC_BYTES,
  MAX_SPEC_DEPTH,
  parseSpec,
  readBundleSpec,
  specAnnotations,
  specCandidates,
  type OciSpec,
  type ReadFileInRoot,
} from '../../src/spec.js';

const FIXTURES = new URL('../fixtures/oci/', import.meta.url);
const fixtureNames = readdirSync(FIXTURES).filter((name) => name.endsWith('.json')).sort();

function fixtureBytes(name: string): Buffer {
  return readFileSync(new URL(name, FIXTURES));
}

function errnoError(code: string): Error {
  return Object.assign(new Error(code), { code });
}

/**
 * Real files under `root`, refused the way the native reader refuses them: no symlinks,
 * regular files only, nothing larger than maxBytes.
 */
const fsReader: ReadFileInRoot = (root, path, maxBytes) => {
  const file = join(root, path);
  const stat = lstatSync(file);
  if (stat.isSymbolicLink()) throw errnoError('ELOOP');
  if (stat.isDirectory()) throw errnoError('EISDIR');
  if (!stat.isFile()) throw errnoError('ENOTREG');
  if (stat.size > maxBytes) throw errnoError('EFBIG');
  return readFileSync(file);
};

function specError(run: () => unknown): SpecError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(SpecError);
    return error as SpecError;
  }
  throw new Error('expected a SpecError');
}

let root: string;

function bundleWith(name: string, files: Record<string, string | Buffer>): string {
  const bundle = `/bundles/${name}`;
  for (const [relative, content] of Object.entries(files)) {
    const file = join(root, bundle, relative);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, content);
  }
  mkdirSync(join(root, bundle), { recursive: true });
  return bundle;
}

function read(bundle: string, cwd: string | null = null, readFile: ReadFileInRoot = fsReader) {
  return readBundleSpec(bundle, { root, cwd, readFile });
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'ocinotify-spec-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('real config.json files (fixtures/oci)', () => {
  it('covers the five fixtures', () => {
    expect(fixtureNames).toEqual([
      'containerd-1.6-cri-container.json',
      'containerd-1.6-cri-sandbox.json',
      'containerd-1.6-ctr-run.json',
      'docker-20.10.json',
      'podman-4.3.json',
    ]);
  });

  it.each(fixtureNames)('%s reads and parses from its bundle', (name) => {
    const bytes = fixtureBytes(name);
    const bundle = bundleWith(name, { 'config.json': bytes });
    const { spec, configPath } = read(bundle);
    expect(configPath).toBe(`${bundle}/config.json`);
    expect(spec).toEqual(JSON.parse(bytes.toString('utf8')));
    expect(spec.ociVersion).toBe('1.0.2-dev');
    expect(spec.process?.args?.length).toBeGreaterThan(0);
    expect(typeof spec.root?.path).toBe('string');
  });

  it.each(fixtureNames)('%s has only short string annotations', (name) => {
    const spec = parseSpec(fixtureBytes(name), name);
    const { annotations, dropped } = specAnnotations(spec);
    expect(dropped).toEqual([]);
    expect(annotations).toEqual(spec.annotations ?? {});
  });

  it('finds podman config.json under userdata when the bundle is the container directory', () => {
    const bundle = bundleWith('podman-container', { 'userdata/config.json': fixtureBytes('podman-4.3.json') });
    const { spec, configPath } = read(bundle);
    expect(configPath).toBe(`${bundle}/userdata/config.json`);
    expect(spec.annotations?.['io.container.manager']).toBe('libpod');
  });
});

describe('specCandidates', () => {
  it('tries the bundle, then its userdata directory', () => {
    expect(specCandidates('/run/b', null)).toEqual(['/run/b/config.json', '/run/b/userdata/config.json']);
  });

  it('normalises .. lexically and never climbs above /', () => {
    expect(specCandidates('/a/b/../c/./', null)).toEqual(['/a/c/config.json', '/a/c/userdata/config.json']);
    expect(specCandidates('/../../etc', null)[0]).toBe('/etc/config.json');
    expect(specCandidates('../../../x', '/home')[0]).toBe('/x/config.json');
  });

  it('resolves a relative bundle against the cwd', () => {
    expect(specCandidates('.', '/srv/bundle')[0]).toBe('/srv/bundle/config.json');
    expect(specCandidates('b/../c', '/srv')[0]).toBe('/srv/c/config.json');
  });

  it.each([null, 'relative/cwd'])('refuses a relative bundle with cwd %j', (cwd) => {
    const error = specError(() => specCandidates('bundle', cwd));
    expect(error.code).toBe('ERR_SPEC_RELATIVE_BUNDLE');
    expect(error).toBeInstanceOf(OciNotifyError);
    expect(error.name).toBe('SpecError');
  });
});

describe('readBundleSpec', () => {
  it('reads a relative bundle from the runtime cwd', () => {
    bundleWith('relative', { 'config.json': fixtureBytes('containerd-1.6-ctr-run.json') });
    const { configPath } = read('relative/../relative', '/bundles');
    expect(configPath).toBe('/bundles/relative/config.json');
  });

  it('reports both candidates when there is no config.json', () => {
    const bundle = bundleWith('missing', {});
    const error = specError(() => read(bundle));
    expect(error.code).toBe('ERR_SPEC_NOT_FOUND');
    expect(error.details?.['candidates']).toEqual([`${bundle}/config.json`, `${bundle}/userdata/config.json`]);
  });

  it('moves on when a path component is not a directory', () => {
    const bundle = bundleWith('not-dir', { userdata: 'file' });
    expect(specError(() => read(`${bundle}/userdata`)).code).toBe('ERR_SPEC_NOT_FOUND');
  });

  it('refuses a symlinked config.json', () => {
    const bundle = bundleWith('symlink', { 'real.json': fixtureBytes('docker-20.10.json') });
    symlinkSync('real.json', join(root, bundle, 'config.json'));
    const error = specError(() => read(bundle));
    expect(error.code).toBe('ERR_SPEC_SYMLINK');
    expect((error.cause as { code?: string }).code).toBe('ELOOP');
  });

  it('refuses a directory named config.json instead of trying userdata', () => {
    const bundle = bundleWith('dir', { 'config.json/x': '', 'userdata/config.json': fixtureBytes('podman-4.3.json') });
    expect(specError(() => read(bundle)).code).toBe('ERR_SPEC_NOT_REGULAR');
  });

  it('refuses a 17 MiB file unread', () => {
    const bundle = bundleWith('huge', { 'config.json': Buffer.alloc(17 * 1024 * 1024, 0x20) });
    expect(specError(() => read(bundle)).code).toBe('ERR_SPEC_TOO_LARGE');
  });

  it('passes the byte limit to the reader and enforces it on what comes back', () => {
    const seen: number[] = [];
    const careless: ReadFileInRoot = (_root, _path, maxBytes) => {
      seen.push(maxBytes);
      return Buffer.from('{"ociVersion":"1.0.2"}');
    };
    expect(readBundleSpec('/b', { root, cwd: null, readFile: careless }).spec.ociVersion).toBe('1.0.2');
    expect(seen).toEqual([MAX_SPEC_BYTES]);
    const error = specError(() => readBundleSpec('/b', { root, cwd: null, readFile: careless, maxBytes: 8 }));
    expect(error.code).toBe('ERR_SPEC_TOO_LARGE');
  });

  it.each([
    ['ELOOP', 'ERR_SPEC_SYMLINK'],
    ['EXDEV', 'ERR_SPEC_SYMLINK'],
    ['EFBIG', 'ERR_SPEC_TOO_LARGE'],
    ['ENOTREG', 'ERR_SPEC_NOT_REGULAR'],
    ['EISDIR', 'ERR_SPEC_NOT_REGULAR'],
    ['EACCES', 'ERR_SPEC_ACCESS'],
    ['EPERM', 'ERR_SPEC_ACCESS'],
    ['EIO', 'ERR_SPEC_READ'],
  ])('maps the reader errno %s to %s', (errno, code) => {
    const failing: ReadFileInRoot = () => {
      throw errnoError(errno);
    };
    const error = specError(() => read('/b', null, failing));
    expect(error.code).toBe(code);
    expect(error.details).toMatchObject({ configPath: '/b/config.json', errno });
  });

  it('maps a reader error without an errno to ERR_SPEC_READ', () => {
    const failing: ReadFileInRoot = () => {
      throw new TypeError('boom');
    };
    const error = specError(() => read('/b', null, failing));
    expect(error.code).toBe('ERR_SPEC_READ');
    expect(error.cause).toBeInstanceOf(TypeError);
  });
});

describe('parseSpec', () => {
  it.each([
    ['empty', Buffer.alloc(0), 'ERR_SPEC_EMPTY'],
    ['invalid JSON', Buffer.from('{"ociVersion": '), 'ERR_SPEC_INVALID_JSON'],
    ['whitespace only', Buffer.from('  \n'), 'ERR_SPEC_INVALID_JSON'],
    ['not UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'ERR_SPEC_NOT_UTF8'],
    ['an overlong UTF-8 slash', Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d]), 'ERR_SPEC_NOT_UTF8'],
    ['an array', Buffer.from('[]'), 'ERR_SPEC_NOT_OBJECT'],
    ['null', Buffer.from('null'), 'ERR_SPEC_NOT_OBJECT'],
    ['a number', Buffer.from('42'), 'ERR_SPEC_NOT_OBJECT'],
    ['17 MiB', Buffer.alloc(17 * 1024 * 1024, 0x20), 'ERR_SPEC_TOO_LARGE'],
  ])('refuses %s', (_what, bytes, code) => {
    const error = specError(() => parseSpec(bytes, '/b/config.json'));
    expect(error.code).toBe(code);
    expect(error.details?.['configPath']).toBe('/b/config.json');
  });

  it('accepts a byte order mark', () => {
    expect(parseSpec(Buffer.from('\uFEFF{"ociVersion":"1.0.2"}'), 'c').ociVersion).toBe('1.0.2');
  });

  it('refuses 100,000 nesting levels fast, without a RangeError', () => {
    const levels = 100_000;
    const deep = Buffer.from(`${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`);
    const start = performance.now();
    const error = specError(() => parseSpec(deep, 'c'));
    expect(error.code).toBe('ERR_SPEC_TOO_DEEP');
    expect(performance.now() - start).toBeLessThan(500);
    const arrays = Buffer.from(`{"a":${'['.repeat(levels)}${']'.repeat(levels)}}`);
    expect(specError(() => parseSpec(arrays, 'c')).code).toBe('ERR_SPEC_TOO_DEEP');
  });

  it('accepts exactly MAX_SPEC_DEPTH levels', () => {
    const nested = (levels: number) => Buffer.from(`${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`);
    expect(parseSpec(nested(MAX_SPEC_DEPTH), 'c')).toHaveProperty('a');
    expect(specError(() => parseSpec(nested(MAX_SPEC_DEPTH + 1), 'c')).code).toBe('ERR_SPEC_TOO_DEEP');
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const text = JSON.stringify({ a: '['.repeat(1000), b: '\\"{{{{', c: '"]]]' });
    expect(parseSpec(Buffer.from(text), 'c')).toEqual(JSON.parse(text));
  });
});

describe('specAnnotations', () => {
  const spec = (annotations: unknown): OciSpec => ({ ociVersion: '1.0.2', annotations }) as OciSpec;

  it.each([null, undefined, 'text', 42, ['a']])('reads %j annotations as none', (annotations) => {
    expect(specAnnotations(spec(annotations))).toEqual({ annotations: {}, dropped: [] });
  });

  it('drops values that are not strings', () => {
    const result = specAnnotations(spec({ a: 'x', n: 1, o: {}, l: null, b: true, s: '' }));
    expect(result).toEqual({ annotations: { a: 'x', s: '' }, dropped: ['n', 'o', 'l', 'b'] });
  });

  it('keeps 64 KiB values and drops longer ones, counting UTF-8 bytes', () => {
    const result = specAnnotations(
      spec({
        exact: 'a'.repeat(MAX_ANNOTATION_BYTES),
        over: 'a'.repeat(MAX_ANNOTATION_BYTES + 1),
        wide: 'é'.repeat(MAX_ANNOTATION_BYTES / 2 + 1),
        huge: 'a'.repeat(1 << 20),
      }),
    );
    expect(Object.keys(result.annotations)).toEqual(['exact']);
    expect(result.dropped).toEqual(['over', 'wide', 'huge']);
  });

  it('keeps a __proto__ key as a plain key', () => {
    const parsed = parseSpec(Buffer.from('{"annotations":{"__proto__":"x","k":"v"}}'), 'c');
    const { annotations } = specAnnotations(parsed);
    expect(Object.getPrototypeOf(annotations)).toBe(Object.prototype);
    expect(Object.keys(annotations)).toEqual(['__proto__', 'k']);
  });
});
