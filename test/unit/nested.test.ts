// Nested nodes from the host's procfs, on a made-up one: a node's pids made the host's
// (NSpid), where a gone runtime's paths resolve, and the state roots remembered for a restart.
import { describe, expect, it } from 'vitest';
import type { DirEntry, FileStat, HostReads } from '../../src/host/reads.js';
import { hostPidOf, isNestedPidns } from '../../src/host/nested-pid.js';
import { INIT_PIDNS_INO, type HostView } from '../../src/host/proc.js';
import { rootAfter } from '../../src/host/runtime-root.js';
import { LEARNED_ROOTS_FILE, LearnedRoots } from '../../src/watcher/learned-roots.js';
import type { Session } from '../../src/watcher/containers.js';

const HOST_MNTNS = 4026531840;
/** two kind nodes: their mount and pid namespaces */
const NODE = { a: { mntns: 4026532100, pidns: 4026532101 }, b: { mntns: 4026532200, pidns: 4026532201 } };

interface Proc {
  nspid: number[];
  ppid: number;
  mntns: number;
  pidns: number;
  children?: number[];
}

/** The host's procfs as these processes make it, and files of a memory directory. */
function fakeHost(procs: Record<number, Proc>, files: Record<string, string> = {}): HostReads {
  const stat = (ino: number): FileStat => ({ dev: 4n, ino: BigInt(ino), nlink: 1, size: 0, isFile: false, isDirectory: false });
  const proc = (path: string): [Proc | undefined, string] => {
    const m = /^\/proc\/(\d+)\/(.*)$/.exec(path);
    return m ? [procs[Number(m[1])], m[2]!] : [undefined, ''];
  };
  return {
    readFileInRoot: () => {
      throw Object.assign(new Error('none'), { code: 'ENOENT' });
    },
    readHead: (path) => {
      if (path in files) return { bytes: Buffer.from(files[path]!), whole: true };
      const [p, rest] = proc(path);
      if (p === undefined) return null;
      if (rest === 'status') return { bytes: Buffer.from(`Name:\tx\nPPid:\t${p.ppid}\nNSpid:\t${p.nspid.join('\t')}\n`), whole: true };
      if (/^task\/\d+\/children$/.test(rest)) return { bytes: Buffer.from((p.children ?? []).join(' ')), whole: true };
      return null;
    },
    readlink: () => null,
    stat: (path) => {
      const [p, rest] = proc(path);
      if (p === undefined) return null;
      return rest === 'ns/mnt' ? stat(p.mntns) : rest === 'ns/pid' ? stat(p.pidns) : null;
    },
    realpath: (path) => path,
    readdir: (path): DirEntry[] | null => {
      if (path === '/proc') return Object.keys(procs).map((name) => ({ name, isDirectory: true }));
      const [p, rest] = proc(path);
      return p !== undefined && rest === 'task' ? [{ name: path.split('/')[2]!, isDirectory: true }] : null;
    },
  };
}

function view(reads: HostReads): HostView {
  return { hostRoot: '/', inInitPidns: true, hostPidns: INIT_PIDNS_INO, hostMntns: HOST_MNTNS, reads };
}

/** Each node: its init (pid 1 there), a shim (20 there) and a container init the shim reaps (21 there, 1 in its own). */
const PROCS: Record<number, Proc> = {
  1: { nspid: [1], ppid: 0, mntns: HOST_MNTNS, pidns: INIT_PIDNS_INO },
  100: { nspid: [100, 1], ppid: 1, mntns: NODE.a.mntns, pidns: NODE.a.pidns },
  120: { nspid: [120, 20], ppid: 100, mntns: NODE.a.mntns, pidns: NODE.a.pidns, children: [121] },
  121: { nspid: [121, 21, 1], ppid: 120, mntns: 4026532150, pidns: 4026532151 },
  200: { nspid: [200, 1], ppid: 1, mntns: NODE.b.mntns, pidns: NODE.b.pidns },
  220: { nspid: [220, 20], ppid: 200, mntns: NODE.b.mntns, pidns: NODE.b.pidns, children: [221] },
  221: { nspid: [221, 21, 1], ppid: 220, mntns: 4026532250, pidns: 4026532251 },
};

describe('a nested node\'s pids', () => {
  const v = view(fakeHost(PROCS));

  it('are nested only in a pid namespace that is not the host\'s', () => {
    expect(isNestedPidns(v, NODE.a.pidns)).toBe(true);
    expect(isNestedPidns(v, INIT_PIDNS_INO)).toBe(false);
    expect(isNestedPidns(v, 0)).toBe(false);
  });

  it("are the host's through NSpid, among the parent's children and else every process, in the right node", () => {
    expect(hostPidOf(v, 21, NODE.a.pidns, 120)).toBe(121);
    expect(hostPidOf(v, 21, NODE.b.pidns, 220)).toBe(221);
    // The parent gone: a scan finds it, and does not take the other node's pid 21.
    expect(hostPidOf(v, 21, NODE.b.pidns, null)).toBe(221);
    // A process living in the node's own pid namespace (a hostPID pod's).
    expect(hostPidOf(v, 20, NODE.a.pidns, null)).toBe(120);
    expect(hostPidOf(v, 99, NODE.a.pidns, 120)).toBeNull();
  });
});

describe("a gone runtime's root", () => {
  const v = view(fakeHost(PROCS));

  it("is the host's for a runtime on the host, its parent's in a node, else a process of that node", () => {
    expect(rootAfter(v, { mntns: HOST_MNTNS, parent: 120 })).toBe('/');
    expect(rootAfter(v, { mntns: NODE.a.mntns, parent: 120 })).toBe('/proc/120/root');
    expect(rootAfter(v, { mntns: NODE.b.mntns, parent: 999 })).toBe('/proc/200/root');
    expect(rootAfter(v, { mntns: 4026539999, parent: null })).toBe('/');
  });
});

describe('state roots learnt from nested nodes', () => {
  const session = (node: { mntns: number; pidns: number }, root: string | null): Session =>
    ({ runtimeMntns: node.mntns, runtimePidns: node.pidns, runtime: { name: 'runc', path: '/usr/sbin/runc', pid: 1, argv: [] }, invocation: { root } }) as unknown as Session;

  it("remembers each (root, node) once, and only a nested node's", () => {
    const written: string[] = [];
    const roots = new LearnedRoots(view(fakeHost(PROCS)), { memoryDir: '/run/ocinotify', remember: (_, text) => written.push(text) });
    roots.learn(session({ mntns: HOST_MNTNS, pidns: INIT_PIDNS_INO }, '/run/containerd/runc/k8s.io'));
    // a mount namespace of its own on the host's pids: no node
    roots.learn(session({ mntns: NODE.a.mntns, pidns: INIT_PIDNS_INO }, '/run/runc'));
    roots.learn(session(NODE.a, '/run/containerd/runc/k8s.io'));
    roots.learn(session(NODE.a, '/run/containerd/runc/k8s.io'));
    roots.learn(session(NODE.b, null));
    expect(written.map((t) => JSON.parse(t))).toEqual([
      [{ runtime: 'runc', dir: '/run/containerd/runc/k8s.io', mntns: NODE.a.mntns }],
      [
        { runtime: 'runc', dir: '/run/containerd/runc/k8s.io', mntns: NODE.a.mntns },
        { runtime: 'runc', dir: '/run/runc', mntns: NODE.b.mntns },
      ],
    ]);
  });

  it('reaches them through a process of their node, and forgets nodes that are gone', () => {
    const file = JSON.stringify([
      { runtime: 'runc', dir: '/run/containerd/runc/k8s.io', mntns: NODE.a.mntns },
      { runtime: 'crun', dir: '/run/crun', mntns: 4026539999 },
      { runtime: 'sh', dir: '/x', mntns: NODE.a.mntns },
      { runtime: 'runc', dir: 'relative', mntns: NODE.a.mntns },
    ]);
    const written: string[] = [];
    const reads = fakeHost(PROCS, { [`/run/ocinotify/${LEARNED_ROOTS_FILE}`]: file });
    const roots = new LearnedRoots(view(reads), { memoryDir: '/run/ocinotify', remember: (_, text) => written.push(text) });
    expect(roots.stateRoots()).toEqual([
      { runtime: 'runc', dir: '/run/containerd/runc/k8s.io', nested: false, base: '/proc/100/root', mntns: NODE.a.mntns, pidns: NODE.a.pidns },
    ]);
    expect(written.map((t) => JSON.parse(t))).toEqual([[{ runtime: 'runc', dir: '/run/containerd/runc/k8s.io', mntns: NODE.a.mntns }]]);
  });

  it('keeps what another watcher of the node wrote since it started, learning and forgetting', () => {
    const path = `/run/ocinotify/${LEARNED_ROOTS_FILE}`;
    const files: Record<string, string> = {};
    const reads = fakeHost(PROCS, files);
    const port = { memoryDir: '/run/ocinotify', remember: (_: string, text: string) => (files[path] = text) };
    const roots = new LearnedRoots(view(reads), port);
    const other = { runtime: 'crun', dir: '/run/crun', mntns: NODE.b.mntns };
    const gone = { runtime: 'runc', dir: '/run/runc', mntns: 4026539999 };
    files[path] = JSON.stringify([other, gone]);
    roots.learn(session(NODE.a, '/run/containerd/runc/k8s.io'));
    const a = { runtime: 'runc', dir: '/run/containerd/runc/k8s.io', mntns: NODE.a.mntns };
    expect(JSON.parse(files[path]!)).toEqual([other, gone, a]);
    expect(roots.stateRoots().map((r) => r.dir)).toEqual(['/run/crun', '/run/containerd/runc/k8s.io']);
    expect(JSON.parse(files[path]!)).toEqual([other, a]);
  });

  it('takes a file that is not a list of roots for none', () => {
    const reads = fakeHost(PROCS, { [`/run/ocinotify/${LEARNED_ROOTS_FILE}`]: '{"not": "a list"' });
    expect(new LearnedRoots(view(reads), { memoryDir: '/run/ocinotify', remember: () => undefined }).stateRoots()).toEqual([]);
  });
});
