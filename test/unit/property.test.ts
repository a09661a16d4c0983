// Property-based tests: the argv parser, the spec reader and the annotation resolver on
// generated hostile input. No exception escapes but the documented typed ones, and every
// output fits the event schema. `make test` runs a few thousand cases per property;
// `make fuzz` sets OCINOTIFY_FUZZ_RUNS=100000.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONTAINERD_CRI_KEYS, CRIO_KEYS, KUBELET_KEYS, PODMAN_KEYS, resolveAnnotations } from '../../src/annotations/index.js';
import { isValidContainerId, parseRuntimeArgv, type RuntimeName } from '../../src/argv.js';
import { diagnosticFromError, summarizeRuntime } from '../../src/diagnostics.js';
import { ArgvError, ERROR_CODES, SpecError, type ErrorCode } from '../../src/errors.js';
import { MAX_ANNOTATION_BYTES, parseSpec, readBundleSpec, specAnnotations, type ReadFileInRoot } from '../../src/spec.js';
import { diagnosticProblems, metadataProblems } from '../schema.js';

const NUM_RUNS = Number(process.env.OCINOTIFY_FUZZ_RUNS ?? 3000);
const FUZZING = NUM_RUNS > 10_000;
const params = { numRuns: NUM_RUNS };
// 100,000 runs of a property take minutes; the default budget of vitest is for `make test`.
const TIMEOUT = FUZZING ? 3_600_000 : 120_000;

/** What the argv parser may throw: ERR_ARGV_TRUNCATED is the watcher's, never the parser's. */
const ARGV_CODES: readonly ErrorCode[] = ERROR_CODES.filter((c) => c.startsWith('ERR_ARGV_') && c !== 'ERR_ARGV_TRUNCATED');
const SPEC_CODES: readonly ErrorCode[] = ERROR_CODES.filter((c) => c.startsWith('ERR_SPEC_'));
const RUNTIME_NAMES: readonly RuntimeName[] = ['runc', 'crun', 'youki', 'runsc', 'conmon'];

/** Words the runtimes' grammars know, so that generated argv reach deep into the parser. */
const WORDS = [
  'create', 'run', 'start', 'kill', 'delete', 'state', 'exec', 'ps', 'init', 'boot', 'gofer', 'events', 'update',
  '--', '-', '--root', '--log', '--log-format', '--log-format=json', '--debug', '--systemd-cgroup', '--rootless',
  'true', 'auto', '--bundle', '-b', '--bundle=/b', '-b/b', '--pid-file', '--console-socket', '--preserve-fds', '3',
  '--no-pivot', '-d', '-dt', '--detach', '-c', '--cid', '-n', '--name', '-r', '--runtime', '--runtime-arg', '-p',
  '--container-pidfile', '--api-version', '1', '--network=none', '--platform', 'ptrace', '-e', 'K=V', '--unknown',
  '--unknown=1', '.', '..', 'a/b', 'id-1', 'x'.repeat(1024), 'x'.repeat(1025), 'a\u0001b', 'a\nb', '\u001b[31m',
];

const arg = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...WORDS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[\w+,.-]{1,70}$/) },
);
const argvArb = fc.array(arg, { maxLength: 30 });

function isTyped(err: unknown, cls: typeof ArgvError | typeof SpecError, codes: readonly ErrorCode[]): boolean {
  return err instanceof cls && codes.includes(err.code);
}

describe('argv parser properties', () => {
  it(
    'returns a consistent invocation or throws a documented ArgvError, for every runtime',
    () => {
      fc.assert(
        fc.property(fc.constantFrom(...RUNTIME_NAMES), fc.string({ maxLength: 20 }), argvArb, (runtime, argv0, rest) => {
          const argv = [argv0, ...rest];
          let inv;
          try {
            inv = parseRuntimeArgv(argv, runtime);
          } catch (err) {
            if (!isTyped(err, ArgvError, ARGV_CODES)) throw err;
            return;
          }
          expect(inv.runtime).toBe(runtime);
          if (inv.id !== null) expect(isValidContainerId(inv.id)).toBe(true);
          if (runtime === 'conmon') {
            expect(inv.isContainerCreation).toBe(false);
            expect(inv.verb).toBeNull();
          } else {
            expect(inv.isContainerCreation).toBe(inv.verb === 'create' || inv.verb === 'run');
            expect(inv.bundle !== null).toBe(inv.isContainerCreation);
            if (inv.isContainerCreation) expect(inv.id).not.toBeNull();
            if (inv.verb !== null) expect(argv.slice(1)).toContain(inv.verb);
            expect(argv.slice(1, 1 + inv.globalFlags.length)).toEqual(inv.globalFlags);
          }
          if (inv.selfReexec) expect(inv.id).toBeNull();
          for (const s of [inv.bundle, inv.pidFile, inv.root, inv.name, inv.runtimePath]) expect(s === null || typeof s === 'string').toBe(true);
        }),
        params,
      );
    },
    TIMEOUT,
  );

  it(
    'finds the id of a creation wherever flags put it, and no other',
    () => {
      const id = fc.stringMatching(/^[\w+,.-]{1,64}$/).filter((s) => s !== '.' && s !== '..' && !s.startsWith('-')); // a leading dash makes a flag, for runc too
      const flags = fc.array(fc.constantFrom('--no-pivot', '--no-new-keyring', '--detach', '--pid-file=/p', '--bundle=/b'), { maxLength: 12 });
      fc.assert(
        fc.property(fc.constantFrom('create', 'run'), id, flags, flags, (verb, cid, before, after) => {
          const inv = parseRuntimeArgv(['runc', '--root', '/r', verb, ...before, cid, ...after], 'runc');
          expect(inv.id).toBe(cid);
          expect(inv.root).toBe('/r');
        }),
        params,
      );
    },
    TIMEOUT,
  );

  it(
    'summarises any argv within the diagnostic bounds',
    () => {
      fc.assert(
        fc.property(fc.array(fc.string({ maxLength: 600 }), { maxLength: 200 }), fc.constantFrom(...RUNTIME_NAMES), (argv, name) => {
          let err: unknown = null;
          try {
            parseRuntimeArgv(argv, name);
          } catch (e) {
            err = e;
          }
          const runtime = summarizeRuntime({ name, path: '/usr/sbin/runc', pid: 1, euid: 0, argv });
          const d = diagnosticFromError(err, 'ERR_ARGV_INVALID_ID', 'ignored', { ts: 1n, id: null, bundle: null, runtime });
          expect(diagnosticProblems(d)).toEqual([]);
        }),
        { numRuns: Math.min(NUM_RUNS, FUZZING ? NUM_RUNS : 1000) },
      );
    },
    TIMEOUT,
  );
});

/** A nesting of depth n of arrays or objects, as text. */
const nested = fc.tuple(fc.integer({ min: 1, max: 2000 }), fc.boolean()).map(([n, obj]) =>
  obj ? `${'{"a":'.repeat(n)}1${'}'.repeat(n)}` : `${'['.repeat(n)}${']'.repeat(n)}`,
);

const specText = fc.oneof(
  fc.json({ maxDepth: 6 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ ociVersion: '1.0.2', annotations: v, process: { env: ['A=1'] } })),
  fc.dictionary(fc.string({ maxLength: 30 }), fc.jsonValue({ maxDepth: 2 })).map((a) => JSON.stringify({ annotations: a })),
  nested,
  fc.string({ maxLength: 200 }),
);

const specBytes = fc.oneof(
  specText.map((t) => Buffer.from(t, 'utf8')),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.tuple(specText, fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0x80, max: 0xff })).map(([t, at, byte]) => {
    const b = Buffer.from(t, 'utf8');
    return Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at)]);
  }),
);

describe('spec reader properties', () => {
  it(
    'parses any bytes into a JSON object or throws a documented SpecError',
    () => {
      fc.assert(
        fc.property(specBytes, fc.integer({ min: 1, max: 4096 }), (bytes, maxBytes) => {
          let spec;
          try {
            spec = parseSpec(bytes, '/b/config.json', maxBytes);
          } catch (err) {
            if (!isTyped(err, SpecError, SPEC_CODES)) throw err;
            return;
          }
          expect(typeof spec === 'object' && spec !== null && !Array.isArray(spec)).toBe(true);
          // What the watcher does next must not throw either.
          const { annotations, dropped } = specAnnotations(spec);
          for (const [k, v] of Object.entries(annotations)) {
            expect(typeof v).toBe('string');
            expect(Buffer.byteLength(v)).toBeLessThanOrEqual(MAX_ANNOTATION_BYTES);
            expect(dropped).not.toContain(k);
          }
          expect(metadataProblems({ ...resolveAnnotations(annotations, { id: 'x' }) })).toEqual([]);
        }),
        params,
      );
    },
    TIMEOUT,
  );

  it(
    'reads through any reader failure into a documented SpecError',
    () => {
      const errno = fc.constantFrom('ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV', 'EFBIG', 'ENOTREG', 'EISDIR', 'EACCES', 'EPERM', 'EIO', 'EINVAL', undefined);
      const outcome = fc.oneof(
        specBytes.map((b) => ({ bytes: b })),
        errno.map((code) => ({ code })),
        fc.anything().map((thrown) => ({ thrown })),
      );
      const bundle = fc.oneof(fc.constantFrom('/b', 'b', '.', '../..', '/a/../../b', ''), fc.string({ maxLength: 30 }));
      const cwd = fc.oneof(fc.constant(null), fc.constantFrom('/', '/run', 'rel'), fc.string({ maxLength: 10 }));
      fc.assert(
        fc.property(bundle, cwd, outcome, outcome, (b, c, first, second) => {
          let calls = 0;
          const readFile: ReadFileInRoot = () => {
            const o = calls++ === 0 ? first : second;
            if ('bytes' in o) return o.bytes;
            if ('code' in o) throw Object.assign(new Error(String(o.code)), { code: o.code });
            throw o.thrown;
          };
          try {
            const { spec, configPath } = readBundleSpec(b, { root: '/proc/1/root', cwd: c, readFile });
            expect(configPath.startsWith('/')).toBe(true);
            expect(typeof spec).toBe('object');
          } catch (err) {
            if (!isTyped(err, SpecError, SPEC_CODES)) throw err;
            const d = diagnosticFromError(err, 'ERR_SPEC_READ', 'degraded', {
              ts: 1n,
              id: 'x',
              bundle: null,
              runtime: summarizeRuntime({ name: 'runc', path: '/usr/sbin/runc', pid: 1, euid: 0, argv: ['runc'] }),
            });
            expect(diagnosticProblems(d)).toEqual([]);
          }
        }),
        params,
      );
    },
    TIMEOUT,
  );
});

const KNOWN_KEYS = [
  ...Object.values(CONTAINERD_CRI_KEYS),
  ...Object.values(CRIO_KEYS),
  ...Object.values(KUBELET_KEYS),
  ...Object.values(PODMAN_KEYS),
];

const annotationValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', 'sandbox', 'container', 'init', 'ephemeral', 'cri-o', 'libpod', '0', '99999999999', '-1'),
  fc.constantFrom('k8s_c_pod_ns_uid_0', 'k8s_POD_pod_ns_uid_0', 'k8s___', '/var/log/pods/ns_pod_uid', 'ns_pod_uid'),
  fc.dictionary(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 2 })).map((o) => JSON.stringify(o)),
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
);

describe('annotation resolver properties', () => {
  it(
    'resolves any annotations and hints into schema-valid metadata, never throwing',
    () => {
      const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...KNOWN_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }) });
      const annotations = fc.oneof(
        fc.dictionary(key, annotationValue, { maxKeys: 25 }),
        fc.constantFrom(null, undefined),
        fc.dictionary(key, fc.anything(), { maxKeys: 5 }) as fc.Arbitrary<Record<string, string>>,
      );
      const path = fc.oneof(
        fc.constant(null),
        fc.constantFrom(
          '/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc',
          '/run/containerd/io.containerd.runtime.v2.task/moby/abc',
          '/var/lib/containers/storage/overlay-containers/abc/userdata',
          '/io.containerd.runtime.v1.linux//',
        ),
        fc.string({ maxLength: 60 }),
      );
      const hints = fc.record(
        { bundle: path, id: fc.oneof(fc.constant(null), fc.string({ maxLength: 20 })), conmonName: fc.oneof(fc.constant(null), fc.string({ maxLength: 20 })) },
        { requiredKeys: [] },
      );
      fc.assert(
        fc.property(annotations, hints, (a, h) => {
          const meta = resolveAnnotations(a, h);
          expect(metadataProblems({ ...meta })).toEqual([]);
          expect(meta.podLabels === null || Object.values(meta.podLabels).every((v) => typeof v === 'string')).toBe(true);
          expect(meta.restartCount === null || (Number.isInteger(meta.restartCount) && meta.restartCount >= 0)).toBe(true);
        }),
        params,
      );
    },
    TIMEOUT,
  );
});
