// Every way runc is commonly exec'd for a creation yields exactly one precreate/create/start/exit,
// with the argv runc got, the absolute bundle and the CRI metadata of that bundle.
import { mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent } from '../../src/index.js';
import { Lab, RUNC, Recorder, criAnnotations, execRuntime, finish, privileged } from '../kit/index.js';

const PYTHON = '/usr/bin/python3';

/**
 * Opens runc and execs it through that fd: `fexecve` is glibc's fexecve, i.e.
 * execveat(fd, "", argv, envp, AT_EMPTY_PATH); `procfd` execs /proc/self/fd/N,
 * which needs the fd to survive the exec. python3 itself is exec'd by /bin/sh.
 */
const EXEC_BY_FD = `
import os, sys
mode, argv = sys.argv[1], sys.argv[2:]
fd = os.open(${JSON.stringify(RUNC)}, os.O_RDONLY)
if mode == 'fexecve':
    os.execve(fd, argv, os.environ)
os.set_inheritable(fd, True)
os.execv('/proc/self/fd/%d' % fd, argv)
`;

/**
 * Execs runc with part of its argv in pages the caller has never touched: a file mapped
 * privately, so that its pages have no entry in the caller's page tables until the kernel's own
 * copy of argv faults them in. `strings`: the arguments from the fifth on live there;
 * `pointers`: the argv array itself does. The kernel side cannot read such a page without a
 * fault, which a BPF program may not take.
 */
const EXEC_FROM_UNTOUCHED = `
import ctypes, mmap, os, struct, sys, tempfile
mode, argv = sys.argv[1], [a.encode() for a in sys.argv[2:]]
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
def untouched(data):
    f = tempfile.TemporaryFile()
    size = (len(data) // mmap.PAGESIZE + 2) * mmap.PAGESIZE
    f.write(data + bytes(size - len(data)))
    f.flush()
    addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_PRIVATE, f.fileno(), 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        sys.exit('mmap: ' + os.strerror(ctypes.get_errno()))
    return addr, f
kept = [ctypes.create_string_buffer(a) for a in argv]
addrs = [ctypes.addressof(b) for b in kept]
if mode == 'strings':
    blob, offsets = b'', []
    for a in argv[4:]:
        offsets.append(len(blob))
        blob += a + b'\\0'
    base, f = untouched(blob)
    addrs[4:] = [base + o for o in offsets]
    array = (ctypes.c_void_p * (len(addrs) + 1))(*addrs, None)
    argvp = ctypes.addressof(array)
else:
    argvp, f = untouched(struct.pack('<%dQ' % (len(addrs) + 1), *addrs, 0))
env = [ctypes.create_string_buffer(('%s=%s' % kv).encode()) for kv in os.environ.items()]
envp = (ctypes.c_void_p * (len(env) + 1))(*[ctypes.addressof(e) for e in env], None)
libc.execve.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
libc.execve(${JSON.stringify(RUNC)}.encode(), argvp, envp)
sys.exit('execve: ' + os.strerror(ctypes.get_errno()))
`;

describe.skipIf(!privileged())('runc invocation forms', () => {
  let lab: Lab;
  let rec: Recorder;
  let linkDir: string;
  const suffix = process.pid.toString(36);

  beforeAll(() => {
    lab = new Lab();
    rec = new Recorder();
    linkDir = mkdtempSync(join(tmpdir(), 'ocinotify-link-'));
  });

  it('watches in full mode (eBPF and fanotify), where every creation below is held', () => {
    expect(rec.watcher.mode).toBe('full');
  });

  afterAll(async () => {
    rec?.close();
    await lab?.cleanup();
    if (linkDir) rmSync(linkDir, { recursive: true, force: true });
  });

  const idOf = (form: string): string => `af-${form}-${suffix}`;

  /** argv as Lab.runc hands it to runc. */
  const labArgv = (args: string[], global: string[] = []): string[] => [RUNC, ...global, '--root', lab.stateRoot, ...args];

  /** start, kill and delete a container that `create` made; then a fence, past which no duplicate can come. */
  async function finishCreated(id: string): Promise<void> {
    await finish(lab, rec, id);
    await rec.fence(lab);
  }

  interface Expected {
    argv: string[];
    bundle: string;
    /** `run`: create and start come from the same kernel event. */
    run?: boolean;
    exitCode: number;
    signal: number | null;
  }

  function expectExactlyOnce(id: string, want: Expected): void {
    const events = rec.of(id);
    expect(events.map((e) => e.type), id).toEqual(['precreate', 'create', 'start', 'exit']);
    const [pre, create, start, exit] = events as [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];
    for (const e of events) {
      expect(e.id).toBe(id);
      expect(e.manager).toBe('containerd');
      expect(e.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
      expect(e.container).toEqual({ name: `c-${id}`, type: 'container', image: 'demo.local/busybox:1' });
      expect(e.sandboxId).toBe(criAnnotations(id)['io.kubernetes.cri.sandbox-id']);
      expect(e.bundle).toBe(want.bundle);
      expect(e.runtime.name).toBe('runc');
      expect(e.runtime.path).toBe(RUNC);
      expect(e.runtime.argv).toEqual(want.argv);
      expect(e.runtime.pid).toBe(pre.runtime.pid);
    }
    expect(pre.held).toBe(true);
    expect(pre.specError).toBeNull();
    expect(pre.pid).toBeNull();
    expect(pre.runtime.pid).toBeGreaterThan(0);
    // a kernel CLOCK_MONOTONIC time, also when no BPF record carried the argv (the symlink form)
    expect(BigInt(pre.monotonicNs)).toBeGreaterThan(0n);
    expect(BigInt(pre.monotonicNs)).toBeLessThan(BigInt(start.monotonicNs));
    if (want.run) expect(BigInt(create.monotonicNs)).toBeLessThanOrEqual(BigInt(start.monotonicNs));
    else expect(BigInt(create.monotonicNs)).toBeLessThan(BigInt(start.monotonicNs));
    expect(create.pid).toBeGreaterThan(0);
    expect(start.pid).toBe(create.pid);
    expect(exit.pid).toBe(create.pid);
    expect(create.mntns).toBeGreaterThan(0);
    expect(create.cgroupId).toMatch(/^[1-9][0-9]*$/);
    expect(BigInt(start.monotonicNs)).toBeLessThan(BigInt(exit.monotonicNs));
    expect(exit.exitCode).toBe(want.exitCode);
    expect(exit.signal).toBe(want.signal);
  }

  const killed = { exitCode: 137, signal: 9 } as const;

  it('runc run --bundle DIR id', async () => {
    const id = idOf('run');
    const bundle = lab.bundle(id, ['/bin/sleep', '0.2'], criAnnotations(id));
    const args = ['run', '--bundle', bundle, id];
    await lab.runc(args);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await rec.fence(lab);
    expectExactlyOnce(id, { argv: labArgv(args), bundle, run: true, exitCode: 0, signal: null });
  });

  it('runc create -b DIR id', async () => {
    const id = idOf('short-b');
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const args = ['create', '-b', bundle, id];
    await lab.runc(args);
    await finishCreated(id);
    expectExactlyOnce(id, { argv: labArgv(args), bundle, ...killed });
  });

  it('runc create --bundle=DIR id', async () => {
    const id = idOf('bundle-eq');
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const args = ['create', `--bundle=${bundle}`, id];
    await lab.runc(args);
    await finishCreated(id);
    expectExactlyOnce(id, { argv: labArgv(args), bundle, ...killed });
  });

  it('runc create --bundle ./name id, relative to the caller cwd', async () => {
    const id = idOf('rel');
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const args = ['create', '--bundle', `./${id}`, id];
    await lab.runc(args, { cwd: dirname(bundle) });
    await finishCreated(id);
    expectExactlyOnce(id, { argv: labArgv(args), bundle: realpathSync(bundle), ...killed });
  });

  it('runc create id without a bundle flag: the bundle is the caller cwd', async () => {
    const id = idOf('cwd');
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const args = ['create', id];
    await lab.runc(args, { cwd: bundle });
    await finishCreated(id);
    expectExactlyOnce(id, { argv: labArgv(args), bundle: realpathSync(bundle), ...killed });
  });

  it('global flags before the verb: --log FILE --log-format json --debug --root DIR', async () => {
    const id = idOf('global');
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const global = ['--log', join(lab.dir, 'runc-debug.json'), '--log-format', 'json', '--debug'];
    const args = ['create', '--bundle', bundle, id];
    await lab.runc(args, { global });
    await finishCreated(id);
    expectExactlyOnce(id, { argv: labArgv(args, global), bundle, ...killed });
  });

  it('global flag with = before the verb: --log-format=json', async () => {
    const id = idOf('global-eq');
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const global = ['--log-format=json'];
    const args = ['create', '--bundle', bundle, id];
    await lab.runc(args, { global });
    await finishCreated(id);
    expectExactlyOnce(id, { argv: labArgv(args, global), bundle, ...killed });
  });

  for (const mode of ['fexecve', 'procfd'] as const) {
    const how = mode === 'fexecve' ? 'execveat(fd, "", AT_EMPTY_PATH) (fexecve)' : 'execve("/proc/self/fd/N")';
    it(`runc exec'd by python3 through ${how}`, async () => {
      const id = idOf(mode);
      const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
      const argv = ['runc', '--root', lab.stateRoot, 'create', '--bundle', bundle, id];
      await execRuntime(PYTHON, ['-c', EXEC_BY_FD, mode, ...argv], lab.log);
      await finishCreated(id);
      expectExactlyOnce(id, { argv, bundle, ...killed });
    });
  }

  for (const mode of ['strings', 'pointers'] as const) {
    const what = mode === 'strings' ? 'its arguments from the fifth on' : 'its argv array';
    it(`runc with ${what} in pages the caller never touched: held, with the whole argv`, async () => {
      const id = idOf(`untouched-${mode}`);
      const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
      const argv = ['runc', '--root', lab.stateRoot, 'create', '--bundle', bundle, id];
      await execRuntime(PYTHON, ['-c', EXEC_FROM_UNTOUCHED, mode, ...argv], lab.log);
      await finishCreated(id);
      expectExactlyOnce(id, { argv, bundle, ...killed });
    });
  }

  it('runc exec\'d through a symlink with another basename', async () => {
    const id = idOf('symlink');
    const link = join(linkDir, 'oci-rt');
    symlinkSync(RUNC, link);
    const bundle = lab.bundle(id, ['/bin/sleep', '30'], criAnnotations(id));
    const argv = ['--root', lab.stateRoot, 'create', '--bundle', bundle, id];
    await execRuntime(link, argv, lab.log);
    await finishCreated(id);
    expectExactlyOnce(id, { argv: [link, ...argv], bundle, ...killed });
  });
});
