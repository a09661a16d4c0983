// runc 1.3 by hand in a kind-style node. runc >= 1.2 runs its `init` from a sealed copy of
// itself (libcontainer/exeseal): a file on a private overlayfs mount, or - where overlayfs
// cannot stack any deeper - a memfd. That exec is runc's, in the runtime's own mount namespace;
// `start` must be the entrypoint's exec, which bpftrace, tracing the same kernel on its own,
// timestamps on the same clock.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerEvent } from '../../src/index.js';
import { Lab, Recorder, busyboxRootfs, criAnnotations, privileged, sq, until, writeBundle } from '../kit/index.js';
import { KindNode, NODE_RUNC } from '../kit/node.js';

const STEPS = ['precreate', 'create', 'start', 'exit'];
const PER_SEAL = 3;
const ENTRYPOINT = '/bin/sleep';
/** Where the host's lab directory is in the node. */
const LAB = '/lab';
/**
 * runc on an overlayfs stacked on the node's own: exeseal's overlayfs cannot stack a third, and
 * falls back to a memfd. Its execs open the node's runc underneath, whose mark holds them.
 */
const STACKED = '/opt/stacked';

type Seal = 'overlayfs' | 'memfd';
const SEALS: Record<Seal, { binary: string; says: RegExp }> = {
  overlayfs: { binary: NODE_RUNC, says: /runc exeseal: using overlayfs for sealed \/proc\/self\/exe/ },
  memfd: { binary: join(STACKED, 'runc', 'runc'), says: /could not use overlayfs for \/proc\/self\/exe sealing -- falling back to making a temporary copy/ },
};

interface Traced {
  what: 'entry' | 'sealed';
  pid: number;
  ns: bigint;
}

/**
 * bpftrace's own view: every execve of the entrypoint (at its entry, before the kernel even
 * opens the file) and every exec of a file by /proc/self/fd/N (runc's sealed copy). In a mount
 * namespace of its own where tracefs is mounted for it (this machine does not mount it; the
 * namespace and the mount go with bpftrace), its output line-buffered.
 */
class Witness {
  private readonly child: ChildProcess;
  private out = '';
  private err = '';

  constructor() {
    const script = [
      'BEGIN { printf("ready\\n"); }',
      `tracepoint:syscalls:sys_enter_execve /str(args->filename) == "${ENTRYPOINT}"/ { printf("entry %d %llu\\n", pid, nsecs); }`,
      'tracepoint:sched:sched_process_exec /strncmp(str(args->filename), "/proc/self/fd/", 14) == 0/ { printf("sealed %d %llu\\n", pid, nsecs); }',
    ].join('\n');
    const sh = `mount -t tracefs tracefs /sys/kernel/tracing && exec bpftrace -B line -e ${sq(script)}`;
    this.child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', sh], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.err += d));
  }

  ready(): Promise<void> {
    const attached = (): boolean => {
      if (this.child.exitCode !== null) throw new Error(`bpftrace exited: ${this.err}`);
      return this.out.includes('ready\n');
    };
    return until(attached, () => `bpftrace to attach: ${this.err}`, 60_000, 50);
  }

  seen(): Traced[] {
    return this.out
      .split('\n')
      .map((l) => /^(entry|sealed) (\d+) (\d+)$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => ({ what: m[1] as Traced['what'], pid: Number(m[2]), ns: BigInt(m[3]!) }));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGINT');
    await exited;
  }
}

describe.skipIf(!privileged())('runc 1.3 by hand in a kind-style node: start is the entrypoint, not the sealed re-exec', () => {
  let rec: Recorder;
  let node: KindNode;
  let witness: Witness;
  let lab: string;

  beforeAll(async () => {
    lab = mkdtempSync(join(tmpdir(), 'ocinotify-nested-runc-'));
    busyboxRootfs(join(lab, 'rootfs'));
    witness = new Witness();
    await witness.ready();
    rec = new Recorder();
    node = await KindNode.start({ mounts: [{ host: lab, node: LAB }] });
    await node.exec(['sh', '-c', `mkdir -p ${STACKED}/empty ${STACKED}/runc && mount -t overlay overlay -o lowerdir=/usr/sbin:${STACKED}/empty ${STACKED}/runc`]);
  }, 180_000);

  afterAll(async () => {
    rec?.close();
    await witness?.stop();
    await node?.remove();
    if (lab) rmSync(lab, { recursive: true, force: true });
  });

  /** runc in the node, as someone there would run it, logging at debug level to log. */
  function runc(binary: string, log: string, args: string[]): Promise<string> {
    return node.exec([binary, '--debug', '--log', log, '--root', '/run/by-hand', ...args]);
  }

  async function lifecycle(seal: Seal, id: string): Promise<void> {
    const { binary } = SEALS[seal];
    const log = `/run/by-hand-${id}.log`;
    writeBundle(join(lab, 'bundles', id), join(LAB, 'rootfs'), [ENTRYPOINT, '30'], criAnnotations(id));
    await runc(binary, log, ['create', '--bundle', join(LAB, 'bundles', id), '--pid-file', `/run/by-hand-${id}.pid`, id]);
    expect(await node.exec(['cat', log]), `${id}: runc's own word on its seal`).toMatch(SEALS[seal].says);
    await runc(binary, log, ['start', id]);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'start'), 20_000);
    await runc(binary, log, ['kill', id, 'KILL']);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'), 20_000);
    await until(() => runc(binary, log, ['delete', id]).then(() => true, () => false), `runc delete ${id}`, 10_000, 50);
  }

  it.each(Object.keys(SEALS) as Seal[])(`sealed copy on %s: ${PER_SEAL} containers, each start the entrypoint's own exec`, async (seal) => {
    const ids = Array.from({ length: PER_SEAL }, (_, i) => `by-hand-${seal}-${i}`);
    for (const id of ids) await lifecycle(seal, id);
    const traced = witness.seen();
    ids.forEach((id, i) => {
      const events = rec.of(id);
      expect(events.map((e) => e.type), id).toEqual(STEPS);
      const [pre, create, start, exit] = events as [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];
      for (const e of events) {
        expect(e.runtime).toMatchObject({ name: 'runc', path: NODE_RUNC });
        expect(e.pod).toEqual({ name: `pod-${id}`, namespace: 'demons', uid: `uid-${id}` });
        expect(e.nodeMntns).toBe(node.mntns);
      }
      // A binary nobody named: its first creation teaches the watcher its inode, later ones are held.
      expect(pre.held, id).toBe(seal !== 'overlayfs' || i > 0);
      expect(start.pid).toBe(create.pid);
      expect(exit).toMatchObject({ exitCode: 137, signal: 9 });
      // The entrypoint's execve, as bpftrace saw it: in the very process start names, before it.
      const entry = traced.filter((t) => t.what === 'entry' && t.pid === start.pid);
      expect(entry, `${id}: the entrypoint's execve`).toHaveLength(1);
      expect(BigInt(start.monotonicNs), id).toBeGreaterThan(entry[0]!.ns);
      // runc's exec of its sealed copy came during create, in another process, and is no start.
      const sealed = traced.filter((t) => t.what === 'sealed' && t.ns > BigInt(pre.monotonicNs) && t.ns < BigInt(create.monotonicNs));
      expect(sealed.length, `${id}: runc's exec of its sealed copy`).toBeGreaterThan(0);
      for (const s of sealed) {
        expect(s.pid).not.toBe(start.pid);
        expect(s.ns).toBeLessThan(entry[0]!.ns);
      }
    });
  });

  it('leaves no node behind', async () => {
    await node.remove();
    expect(node.leftovers()).toEqual({ processes: [], mounts: [], cgroups: [], paths: [] });
  });
});

/**
 * A container whose entrypoint is itself a runtime-named file (the first process of a nested
 * node can be): its exec is that container's start, and a runtime of its own from then on.
 */
describe.skipIf(!privileged())('an entrypoint named like a runtime', () => {
  let lab: Lab;
  let rec: Recorder;

  beforeAll(() => {
    lab = new Lab();
    // busybox-static under a runtime's name: exec'd, it says it has no such applet and exits 127.
    copyFileSync(join(lab.rootfs, 'bin', 'busybox'), join(lab.rootfs, 'bin', 'runc'));
    rec = new Recorder({ snapshot: false });
  });

  afterAll(async () => {
    rec?.close();
    await lab?.cleanup();
  });

  it("is the container's start, and its exit the container's", async () => {
    const id = `entry-runc-${process.pid.toString(36)}`;
    await lab.runc(['create', '--bundle', lab.bundle(id, ['/bin/runc', 'create', 'nested'], criAnnotations(id)), id]);
    await lab.runc(['start', id]);
    await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
    await lab.deleteExited(id);
    const events = rec.of(id);
    expect(events.map((e) => e.type)).toEqual(STEPS);
    expect(events[2]!.pid).toBe(events[1]!.pid);
    expect(events[3]).toMatchObject({ exitCode: 127, signal: null });
  });
});
