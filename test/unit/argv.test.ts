import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  isValidContainerId,
  parseRuntimeArgv,
  runtimeNameOf,
  type RuntimeInvocation,
  type RuntimeName,
} from '../../src/argv.js';
import { ArgvError, OciNotifyError } from '../../src/errors.js';

interface Capture {
  runtime: RuntimeName;
  parent: string[];
  argv: string[];
}

const captures: Capture[] = readFileSync(new URL('../fixtures/argv/captured.ndjson', import.meta.url), 'utf8')
  .split('\n')
  .filter((line) => line !== '')
  .map((line) => JSON.parse(line) as Capture);

function parse(argv: string[], runtime: RuntimeName = runtimeNameOf(argv[0] ?? '') ?? 'runc'): RuntimeInvocation {
  return parseRuntimeArgv(argv, runtime);
}

function argvError(run: () => unknown): ArgvError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ArgvError);
    return error as ArgvError;
  }
  throw new Error('expected an ArgvError');
}

const CRUN_K8S = 'abfe57323c259e08b97ebd6d730df601b80bf8efa5723471a5f89fab3f74eeec';
const CRUN_K8S_KILLED = '8433477594f83de40f6729d3882db02100c99bfc3adc2e5aed4892d6ce001f64';
const RUNC_K8S = 'f3ae9dfa63bcb849e33089d8987e5183afbf8613e3b899ce936f50203bf7d9f0';
const RUNC_K8S_KILLED = '02bab22596f0026cde0ec1e9d6a60268dfb0f5bc56b64644f57368c916904c24';
const PODMAN = '03136be1ccd5279398401a97ba298b9562541f50c033fa33d91480ae4011955e';
const DOCKER = '19fd12f5cd641c65f4dcc0bd030b5c682bfe25111c0933b6e5b782c02a801351';
const K8S_TASKS = '/run/containerd/io.containerd.runtime.v2.task/k8s.io';
const K8S_ROOT = '/run/containerd/runc/k8s.io';
const PODMAN_USERDATA = `/var/lib/containers/storage/overlay-containers/${PODMAN}/userdata`;
const PODMAN_RUN_USERDATA = `/run/containers/storage/overlay-containers/${PODMAN}/userdata`;
const DOCKER_TASK = `/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/${DOCKER}`;

function shimGlobals(id: string): string[] {
  return ['--root', K8S_ROOT, '--log', `${K8S_TASKS}/${id}/log.json`, '--log-format', 'json'];
}

const expected: Partial<RuntimeInvocation>[] = [
  {
    runtime: 'crun', verb: 'create', id: CRUN_K8S, bundle: `${K8S_TASKS}/${CRUN_K8S}`,
    pidFile: `${K8S_TASKS}/${CRUN_K8S}/init.pid`, root: K8S_ROOT, globalFlags: shimGlobals(CRUN_K8S),
    isContainerCreation: true,
  },
  { runtime: 'crun', verb: 'start', id: CRUN_K8S, bundle: null, root: K8S_ROOT, isContainerCreation: false },
  { runtime: 'crun', verb: 'kill', id: CRUN_K8S_KILLED, globalFlags: shimGlobals(CRUN_K8S_KILLED), isContainerCreation: false },
  { runtime: 'crun', verb: 'delete', id: CRUN_K8S_KILLED, isContainerCreation: false },
  {
    runtime: 'runc', verb: 'create', id: RUNC_K8S, bundle: `${K8S_TASKS}/${RUNC_K8S}`,
    pidFile: `${K8S_TASKS}/${RUNC_K8S}/init.pid`, root: K8S_ROOT, globalFlags: shimGlobals(RUNC_K8S),
    isContainerCreation: true,
  },
  { runtime: 'runc', verb: 'start', id: RUNC_K8S, root: K8S_ROOT, isContainerCreation: false },
  { runtime: 'runc', verb: 'kill', id: RUNC_K8S_KILLED, root: K8S_ROOT, isContainerCreation: false },
  { runtime: 'runc', verb: 'delete', id: RUNC_K8S_KILLED, isContainerCreation: false },
  {
    runtime: 'runc', verb: 'create', id: PODMAN, bundle: PODMAN_USERDATA, pidFile: `${PODMAN_RUN_USERDATA}/pidfile`,
    root: null, globalFlags: ['--log-format=json', '--log', `${PODMAN_RUN_USERDATA}/oci-log`], isContainerCreation: true,
  },
  { runtime: 'runc', verb: 'start', id: PODMAN, root: null, globalFlags: [], isContainerCreation: false },
  { runtime: 'runc', verb: 'kill', id: PODMAN, isContainerCreation: false },
  { runtime: 'runc', verb: 'delete', id: PODMAN, pidFile: null, isContainerCreation: false },
  {
    runtime: 'runc', verb: 'create', id: DOCKER, bundle: DOCKER_TASK, pidFile: `${DOCKER_TASK}/init.pid`,
    root: '/var/run/docker/runtime-runc/moby', isContainerCreation: true,
  },
];

describe('captured runtime argv (fixtures/argv/captured.ndjson)', () => {
  it('covers every fixture line', () => {
    expect(captures).toHaveLength(expected.length);
  });

  it.each(captures.map((line, index) => [index, line] as const))('line %i parses as expected', (index, line) => {
    expect(runtimeNameOf(line.argv[0] ?? '')).toBe(line.runtime);
    const invocation = parseRuntimeArgv(line.argv, line.runtime);
    expect(invocation).toMatchObject({ ...expected[index], selfReexec: false, name: null, runtimePath: null });
  });

  it.each(captures.map((line, index) => [index, line] as const))(
    'line %i: the parent is no runtime unless it is conmon',
    (_index, line) => {
      const parent = runtimeNameOf(line.parent[0] ?? '');
      expect(parent === null || parent === 'conmon').toBe(true);
      if (parent === null) expect(['containerd-shim-runc-v2', 'podman']).toContain(line.parent[0]?.split('/').pop());
    },
  );

  const conmonLines = captures.filter((line) => runtimeNameOf(line.parent[0] ?? '') === 'conmon');

  it('has the conmon parent line', () => {
    expect(conmonLines).toHaveLength(1);
  });

  it.each(conmonLines.map((line) => [line] as const))('conmon parent agrees with the runtime it started', (line) => {
    const conmon = parseRuntimeArgv(line.parent, 'conmon');
    const child = parseRuntimeArgv(line.argv, line.runtime);
    expect(conmon).toMatchObject({
      runtime: 'conmon',
      verb: null,
      id: PODMAN,
      name: 'rp1',
      bundle: PODMAN_USERDATA,
      pidFile: `${PODMAN_RUN_USERDATA}/pidfile`,
      runtimePath: '/usr/sbin/runc',
      root: null,
      isContainerCreation: false,
      selfReexec: false,
    });
    expect(conmon.id).toBe(child.id);
    expect(conmon.bundle).toBe(child.bundle);
    expect(conmon.pidFile).toBe(child.pidFile);
    expect(conmon.runtimePath).toBe(line.argv[0]);
    expect(conmon.runtimeArgs).toEqual(child.globalFlags);
  });

  it.each(conmonLines.map((line) => [line] as const))('conmon parses the same with its lost empty argument restored', (line) => {
    const at = line.parent.indexOf('--network-config-dir');
    expect(at).toBeGreaterThan(0);
    const restored = [...line.parent.slice(0, at + 1), '--exit-command-arg', '', ...line.parent.slice(at + 1)];
    const { globalFlags: _lost, ...asCaptured } = parseRuntimeArgv(line.parent, 'conmon');
    const { globalFlags: _restored, ...withEmpty } = parseRuntimeArgv(restored, 'conmon');
    expect(withEmpty).toEqual(asCaptured);
  });
});

describe('runtimeNameOf', () => {
  it.each([
    ['/usr/sbin/runc', 'runc'],
    ['runc', 'runc'],
    ['/usr/bin/runc (deleted)', 'runc'],
    ['/usr/local/bin/runc.amd64', 'runc'],
    ['/usr/bin/docker-runc', 'runc'],
    ['/usr/bin/crun', 'crun'],
    ['/usr/bin/crun-wasm', 'crun'],
    ['krun', 'crun'],
    ['/usr/local/bin/youki', 'youki'],
    ['/usr/local/bin/runsc', 'runsc'],
    ['/usr/bin/conmon', 'conmon'],
  ] as const)('%s is %s', (path, name) => {
    expect(runtimeNameOf(path)).toBe(name);
  });

  it.each([
    '/usr/bin/containerd-shim-runc-v2',
    'podman',
    '/dev/fd/5',
    '/proc/self/exe',
    'runcx',
    'crun-',
    'conmonrs',
    'constructor',
    '__proto__',
    '',
  ])('%j is no runtime', (path) => {
    expect(runtimeNameOf(path)).toBeNull();
  });
});

describe('flag spellings', () => {
  const create = { verb: 'create', id: 'c1', bundle: '/b', root: '/r', isContainerCreation: true };

  it.each([
    [['runc', '--root', '/r', 'create', '--bundle', '/b', 'c1']],
    [['runc', '--root=/r', 'create', '--bundle=/b', 'c1']],
    [['runc', '-root', '/r', 'create', '-bundle', '/b', 'c1']],
    [['runc', '-root=/r', 'create', '-bundle=/b', 'c1']],
    [['runc', '--root', '/r', 'create', '-b', '/b', 'c1']],
    [['runc', '--root', '/r', 'create', '-b=/b', 'c1']],
    [['runc', '--root', '/r', 'create', 'c1', '--bundle', '/b']],
    [['runc', '--debug', '--root', '/r', '--systemd-cgroup', 'create', '--no-pivot', '-b', '/b', 'c1']],
    [['runc', '--rootless', 'true', '--root', '/r', 'create', '-b', '/b', 'c1']],
    [['runc', '--rootless=auto', '--root', '/r', 'create', '-b', '/b', 'c1']],
    [['crun', '--root', '/r', 'create', '-b', '/b', 'c1']],
    [['crun', '--root=/r', 'create', '-b/b', 'c1']],
    [['crun', '--root', '/r', '--cgroup-manager', 'systemd', '--log-level', 'debug', 'create', '-f', 'spec.json', '-b', '/b', 'c1']],
    [['crun', '--rootless', 'false', '--root', '/r', 'create', '--bundle=/b', 'c1']],
    [['youki', '-r', '/r', '-l', '/log', '-s', 'create', '-b', '/b', 'c1']],
    [['youki', '--root', '/r', '--log-level', 'warn', 'create', '-c', '/sock', '-b', '/b', 'c1']],
    [['runsc', '--network=none', '--platform=ptrace', '--root', '/r', '--debug-log', '/tmp/', 'create', '--bundle', '/b', 'c1']],
    [['runsc', '-root', '/r', '--rootless', 'create', '-bundle=/b', 'c1']],
  ])('%j', (argv) => {
    expect(parse(argv)).toMatchObject(create);
  });

  it('keeps the global flags verbatim, values included', () => {
    expect(parse(['runc', '--log-format=json', '--log', '/l', '--debug', 'start', 'c1']).globalFlags).toEqual([
      '--log-format=json',
      '--log',
      '/l',
      '--debug',
    ]);
  });

  it('reads create and run flags that take values', () => {
    expect(
      parse([
        'runc', 'create', '--console-socket', '/s', '--preserve-fds', '2', '--pid-file', '/p', '--no-new-keyring',
        '--bundle', 'rel/bundle', 'c1',
      ]),
    ).toMatchObject({ id: 'c1', pidFile: '/p', bundle: 'rel/bundle' });
    expect(parse(['youki', 'create', '-p', '/p', '-c', '/s', 'c1'])).toMatchObject({ id: 'c1', pidFile: '/p', bundle: '.' });
  });

  it('defaults the bundle of create and run to the cwd', () => {
    expect(parse(['runc', 'create', 'c1']).bundle).toBe('.');
    expect(parse(['runc', 'run', '-d', '--keep', '--no-subreaper', 'c1'])).toMatchObject({
      verb: 'run',
      id: 'c1',
      bundle: '.',
      isContainerCreation: true,
    });
    expect(parse(['crun', 'run', '-d', 'c1'])).toMatchObject({ id: 'c1', bundle: '.', isContainerCreation: true });
    expect(parse(['runsc', 'run', '--detach', 'c1'])).toMatchObject({ id: 'c1', bundle: '.', isContainerCreation: true });
  });

  it('clusters short boolean flags before a value flag', () => {
    expect(parse(['crun', 'run', '-db', '/b', 'c1'])).toMatchObject({ id: 'c1', bundle: '/b' });
    expect(parse(['crun', 'run', '-db/b', 'c1'])).toMatchObject({ id: 'c1', bundle: '/b' });
  });

  it('takes rootless values only when they are rootless values', () => {
    expect(parse(['runc', '--rootless', 'create', 'c1'])).toMatchObject({ verb: 'create', id: 'c1' });
    expect(parse(['runc', '--rootless', 'auto', 'create', 'c1']).globalFlags).toEqual(['--rootless', 'auto']);
    // runsc's --rootless is a Go boolean: `true` would be its verb.
    expect(parse(['runsc', '--rootless', 'true']).verb).toBe('true');
  });

  it('reads an unknown --x as a boolean and an unknown --x=y as carrying its value', () => {
    expect(parse(['runc', '--new-flag', 'create', 'c1'])).toMatchObject({ verb: 'create', id: 'c1' });
    expect(parse(['runc', '--new-flag=v', 'create', 'c1'])).toMatchObject({ verb: 'create', id: 'c1' });
    expect(parse(['runc', 'create', '--new-flag', 'c1'])).toMatchObject({ verb: 'create', id: 'c1' });
    expect(parse(['runc', '--new-flag', 'value', 'create', 'c1']).verb).toBe('value');
  });

  it('treats everything after -- as positional', () => {
    expect(parse(['runc', '--root', '/r', '--', 'create', '--', 'c1'])).toMatchObject({ verb: 'create', id: 'c1', root: '/r' });
    expect(parse(['runc', 'kill', '--', 'c1', 'KILL']).id).toBe('c1');
  });

  it('treats an empty argument as a value or a positional', () => {
    expect(parse(['runc', '--log', '', 'create', '--pid-file', '', 'c1'])).toMatchObject({ pidFile: '', id: 'c1' });
    expect(parse(['runc', 'create', '--bundle', '', 'c1']).bundle).toBe('');
  });
});

describe('verbs', () => {
  it('takes kill <id> [signal] exactly', () => {
    expect(parse(['runc', 'kill', 'c1', 'KILL'])).toMatchObject({ verb: 'kill', id: 'c1' });
    expect(parse(['runc', 'kill', '--all', 'c1', '9']).id).toBe('c1');
    expect(parse(['crun', 'kill', '-a', 'c1']).id).toBe('c1');
  });

  it('takes the id of exec and ps before their arguments', () => {
    expect(parse(['runc', 'exec', '-t', '--env', 'A=1', '-u', '0', '--cwd', '/', 'c1', 'sh', '-c', 'x'])).toMatchObject({
      verb: 'exec',
      id: 'c1',
      bundle: null,
      isContainerCreation: false,
    });
    expect(parse(['runc', 'ps', '--format', 'json', 'c1', '-ef']).id).toBe('c1');
  });

  it('takes the last positional of start, delete and state', () => {
    expect(parse(['runc', 'start', 'c1']).id).toBe('c1');
    expect(parse(['runc', 'delete', '-f', 'c1']).id).toBe('c1');
    expect(parse(['crun', 'state', 'c1']).id).toBe('c1');
  });

  it('leaves the id of id-less verbs null', () => {
    expect(parse(['runc', 'list', '--format', 'json'])).toMatchObject({ verb: 'list', id: null });
    expect(parse(['runc', 'spec'])).toMatchObject({ verb: 'spec', id: null, bundle: null });
    expect(parse(['runc', '--version'])).toMatchObject({ verb: null, id: null, isContainerCreation: false, selfReexec: false });
    expect(parse(['runc'])).toMatchObject({ verb: null, globalFlags: [] });
  });

  it('marks runc init and runsc internal verbs as self re-execs', () => {
    expect(parse(['runc', 'init'])).toMatchObject({ verb: 'init', selfReexec: true, isContainerCreation: false, id: null });
    expect(
      parse(['runsc', '--root=/r', '--network=none', 'boot', '--bundle=/b', '--controller-fd=3', 'c1']),
    ).toMatchObject({ verb: 'boot', selfReexec: true, isContainerCreation: false, root: '/r' });
    expect(parse(['runsc', '--root', '/r', 'gofer', '--bundle', '/b', '--spec-fd=3'])).toMatchObject({
      verb: 'gofer',
      selfReexec: true,
    });
    expect(parse(['runsc', 'umount', '--sync-fd=3', '/x']).selfReexec).toBe(true);
    expect(parse(['crun', 'init']).selfReexec).toBe(false);
  });

  it('never calls conmon a container creation', () => {
    expect(parseRuntimeArgv(['conmon', '-c', 'c1', '-u', 'c1', '-r', '/usr/bin/crun', '-b', '/b', '-n', 'web'], 'conmon')).toMatchObject({
      id: 'c1',
      name: 'web',
      bundle: '/b',
      runtimePath: '/usr/bin/crun',
      isContainerCreation: false,
      selfReexec: false,
    });
  });

  it('reads every conmon spelling', () => {
    const conmon = parseRuntimeArgv(
      [
        'conmon', '--api-version', '1', '-s', '-t', '-i', '--syslog', '--cid=c1', '--name', 'web', '--bundle=/b',
        '--container-pidfile', '/p', '--runtime=/usr/bin/runc', '--runtime-arg', '--root', '--runtime-arg=/r',
        '--log-level', 'debug', '-l', 'k8s-file:/log', '--exit-dir', '/e', '--socket-dir-path', '/s', '-cc2',
      ],
      'conmon',
    );
    expect(conmon).toMatchObject({ id: 'c2', name: 'web', bundle: '/b', pidFile: '/p', runtimePath: '/usr/bin/runc' });
    expect(conmon.runtimeArgs).toEqual(['--root', '/r']);
    expect(parseRuntimeArgv(['conmon', '--pidfile', '/old', '-p', '/new'], 'conmon')).toMatchObject({ id: null, pidFile: '/new' });
  });
});

describe('invalid argv', () => {
  it.each([
    [['runc', 'create', '--bundle'], 'ERR_ARGV_MISSING_VALUE'],
    [['runc', '--root'], 'ERR_ARGV_MISSING_VALUE'],
    [['crun', 'create', '-b'], 'ERR_ARGV_MISSING_VALUE'],
    [['conmon', '-c'], 'ERR_ARGV_MISSING_VALUE'],
    [['runc', 'create'], 'ERR_ARGV_MISSING_ID'],
    [['runc', 'create', '--bundle', '/b'], 'ERR_ARGV_MISSING_ID'],
    [['runc', 'run', '-d'], 'ERR_ARGV_MISSING_ID'],
    [['runc', 'kill'], 'ERR_ARGV_MISSING_ID'],
    [['runc', 'create', '../escape'], 'ERR_ARGV_INVALID_ID'],
    [['runc', 'create', '..'], 'ERR_ARGV_INVALID_ID'],
    [['runc', 'create', ''], 'ERR_ARGV_INVALID_ID'],
    [['runc', 'start', 'a/b'], 'ERR_ARGV_INVALID_ID'],
    [['conmon', '-c', 'a\nb'], 'ERR_ARGV_INVALID_ID'],
  ] as const)('%j throws %s', (argv, code) => {
    const runtime = runtimeNameOf(argv[0]) ?? 'runc';
    const error = argvError(() => parseRuntimeArgv(argv, runtime));
    expect(error.code).toBe(code);
    expect(error).toBeInstanceOf(OciNotifyError);
    expect(error.name).toBe('ArgvError');
  });

  it('throws on an empty argv', () => {
    expect(argvError(() => parseRuntimeArgv([], 'runc')).code).toBe('ERR_ARGV_EMPTY');
  });

  it('keeps error details small', () => {
    const error = argvError(() => parse(['runc', 'create', '/'.repeat(1 << 20)]));
    expect(error.code).toBe('ERR_ARGV_INVALID_ID');
    expect(JSON.stringify(error.details).length).toBeLessThan(512);
  });
});

describe('isValidContainerId', () => {
  it.each([PODMAN, 'a', 'web.1', 'my_ctr+x,y-z', 'A'.repeat(1024), '...'])('accepts %s', (id) => {
    expect(isValidContainerId(id)).toBe(true);
  });

  it.each(['', '.', '..', 'a/b', '/a', 'a b', 'a\nb', 'a\u0000b', 'a\u007fb', 'é', 'a:b', 'A'.repeat(1025)])(
    'rejects %j',
    (id) => {
      expect(isValidContainerId(id)).toBe(false);
    },
  );
});

describe('huge input', () => {
  function timed<T>(run: () => T): { result: T; ms: number } {
    const start = performance.now();
    const result = run();
    return { result, ms: performance.now() - start };
  }

  it('parses 10,000 arguments linearly', () => {
    const flags = Array.from({ length: 5_000 }, (_, i) => (i % 2 === 0 ? '--no-pivot' : '--preserve-fds=1'));
    const globals = Array.from({ length: 5_000 }, () => '--debug');
    const { result, ms } = timed(() => parse(['runc', ...globals, 'create', ...flags, '--bundle', '/b', 'c1']));
    expect(result).toMatchObject({ id: 'c1', bundle: '/b' });
    expect(result.globalFlags).toHaveLength(5_000);
    expect(ms).toBeLessThan(500);
  });

  it('parses 10,000 conmon runtime arguments linearly', () => {
    const args = Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? '--runtime-arg' : `--x${i}`));
    const { result, ms } = timed(() => parseRuntimeArgv(['conmon', ...args, '-c', 'c1'], 'conmon'));
    expect(result.runtimeArgs).toHaveLength(5_000);
    expect(result.id).toBe('c1');
    expect(ms).toBeLessThan(500);
  });

  it('parses 1 MiB arguments linearly', () => {
    const huge = `/${'b'.repeat(1 << 20)}`;
    const { result, ms } = timed(() =>
      parse(['runc', `--log=${huge}`, `--x${huge}`, 'create', '--bundle', huge, `--pid-file=${huge}`, 'c1']),
    );
    expect(result.bundle).toBe(huge);
    expect(result.pidFile).toBe(huge);
    expect(ms).toBeLessThan(500);
  });

  it('rejects a 1 MiB id fast', () => {
    const { ms } = timed(() => argvError(() => parse(['runc', 'create', 'a'.repeat(1 << 20)])));
    expect(ms).toBeLessThan(500);
  });
});
