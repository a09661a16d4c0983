// A kind-style node: a privileged podman container with its own cgroup namespace, its root on
// overlayfs (the Debian unstable root scripts/node-root.sh caches, with containerd 2.1, runc 1.3
// and crun 1.28), /run and /tmp on tmpfs and /var on a volume, as kind runs its nodes. Its
// containerd serves CRI on /run/containerd/containerd.sock in the node's mount namespace,
// reached from the host through the node's root (/proc/PID/root). Removed completely.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupTree, mountsUnder, rmdirQuietly } from './containerd.js';
import { tail } from './exec.js';
import { buildImageArchive, BUSYBOX_IMAGE, PAUSE_IMAGE, type ImageSpec } from './oci-image.js';
import { PrivatePodman } from './podman.js';
import { until } from './wait.js';

const NODE_ROOT_SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'node-root.sh');
/** The node's runtimes, as its root has them. */
export const NODE_RUNC = '/usr/sbin/runc';
export const NODE_CRUN = '/usr/bin/crun';
/** containerd's state in the node: its bundles are under it. */
export const NODE_CONTAINERD_STATE = '/run/containerd';
/** Where the node finds what the host hands it (config, images): read-only. */
const HANDED = '/etc/ocinotify-node';
/** The CRI runtime handlers of the node's containerd: runc is the default. */
export type RuntimeHandler = 'runc' | 'crun';

export interface NodeMount {
  host: string;
  node: string;
}

/** The node's root, built when missing (the first build is ~75 s: debootstrap of Debian unstable). */
export function nodeRoot(): string {
  return execFileSync(NODE_ROOT_SCRIPT, { encoding: 'utf8' }).trim();
}

/** The versions the node's root has, as its build recorded them: `{ containerd: '2.1.9+ds1-5', ... }`. */
export function nodeVersions(root = nodeRoot()): Record<string, string> {
  return Object.fromEntries(
    readFileSync(join(root, 'versions'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string]),
  );
}

export class KindNode {
  readonly dir = mkdtempSync(join(tmpdir(), 'ocinotify-node-'));
  readonly name = `ocinotify-node-${process.pid}-${Date.now().toString(36)}`;
  /** The node's cgroup, in every hierarchy: removed with the node. */
  readonly cgroupParent = `/${this.name}`;
  /** the host pid of the node's init */
  pid = 0;
  private readonly engine: PrivatePodman;
  private removed = false;

  private constructor() {
    // The host's runc: its crun 1.8 refuses this hybrid cgroup host. tini reaps the node's orphans.
    this.engine = new PrivatePodman(this.dir, ['runtime = "runc"', 'init_path = "/usr/bin/tini"']);
  }

  /**
   * Starts a node and its containerd, with the busybox and pause images (and `images`) imported
   * for CRI; `mounts` are the host's directories it sees (read-only).
   */
  static async start(opts: { images?: readonly ImageSpec[]; mounts?: readonly NodeMount[] } = {}): Promise<KindNode> {
    const node = new KindNode();
    try {
      await node.boot(opts.images ?? [], opts.mounts ?? []);
    } catch (err) {
      await node.remove();
      throw err;
    }
    return node;
  }

  /** The node's root as the host reaches it. */
  get root(): string {
    return `/proc/${this.pid}/root`;
  }

  /** containerd's CRI socket, from the host. */
  get criSocket(): string {
    return join(this.root, NODE_CONTAINERD_STATE, 'containerd.sock');
  }

  /** The node's mount namespace: what events of its containers carry as nodeMntns. */
  get mntns(): number {
    return Number(/\[(\d+)\]/.exec(execFileSync('readlink', [`/proc/${this.pid}/ns/mnt`], { encoding: 'utf8' }))?.[1]);
  }

  /** A command in the node, through /bin/sh (see execRuntime); resolves with its stdout. */
  exec(args: string[]): Promise<string> {
    return this.podman(['exec', this.name, ...args]);
  }

  /** `ctr` in the node, in containerd's CRI namespace. */
  ctr(args: string[]): Promise<string> {
    return this.exec(['ctr', '--namespace', 'k8s.io', ...args]);
  }

  /** The init pid of each running task of the node's containerd, by container id, as the node sees it (`ctr tasks ls`). */
  async taskPids(): Promise<Map<string, number>> {
    const rows = (await this.ctr(['tasks', 'ls'])).split('\n').slice(1).filter(Boolean);
    return new Map(rows.map((r) => r.trim().split(/\s+/)).map(([id, pid]) => [id!, Number(pid)]));
  }

  /** Kills everything in the node, removes it, its volume, storage, cgroups and files. Idempotent. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await this.podman(['rm', '--force', '--volumes', '--time', '0', this.name]).catch(() => undefined);
    // A cgroup goes once its last process is reaped, a moment after podman is done.
    const cgroupsGone = (): boolean => {
      for (const cgroup of cgroupTree(this.cgroupParent).reverse()) rmdirQuietly(cgroup);
      return cgroupTree(this.cgroupParent).length === 0;
    };
    await until(cgroupsGone, () => `the node's cgroups to go: ${cgroupTree(this.cgroupParent).join(', ')}`, 10_000, 50).catch(() => undefined);
    for (const point of this.mounts()) execFileSync('umount', ['-l', point]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** What is left of the node on the host (after remove()): empty lists when clean. */
  leftovers(): { processes: number[]; mounts: string[]; cgroups: string[]; paths: string[] } {
    const alive = this.pid > 0 && existsSync(`/proc/${this.pid}`);
    return {
      processes: alive ? [this.pid] : [],
      mounts: this.mounts(),
      cgroups: cgroupTree(this.cgroupParent),
      paths: existsSync(this.dir) ? [this.dir] : [],
    };
  }

  private async boot(images: readonly ImageSpec[], mounts: readonly NodeMount[]): Promise<void> {
    const root = nodeRoot();
    const handed = join(this.dir, 'handed');
    mkdirSync(handed);
    writeFileSync(join(handed, 'config.toml'), CONTAINERD_CONFIG);
    buildImageArchive(join(handed, 'images.tar'), [BUSYBOX_IMAGE, PAUSE_IMAGE, ...images]);
    const volumes = [{ host: handed, node: HANDED }, ...mounts].flatMap((m) => ['-v', `${m.host}:${m.node}:ro`]);
    await this.podman([
      'run', '--detach', '--name', this.name, '--hostname', this.name,
      '--privileged', '--cgroupns', 'private', '--cgroup-parent', this.cgroupParent, '--init',
      '--tmpfs', '/run', '--tmpfs', '/tmp', '--volume', '/var',
      ...volumes,
      '--rootfs', `${root}:O`,
      'containerd', '--config', join(HANDED, 'config.toml'),
    ]);
    this.pid = Number((await this.podman(['inspect', '--format', '{{.State.Pid}}', this.name])).trim());
    // As kind's entrypoint does: hostPath mounts with HostToContainer propagation need a shared root.
    await this.exec(['mount', '--make-rshared', '/']);
    const serving = (): Promise<boolean> => this.ctr(['version']).then(() => true, () => false);
    await until(serving, () => `the node's containerd to serve: ${tail(join(this.dir, 'podman.log'), 10)}`, 30_000, 100);
    await this.ctr(['images', 'import', join(HANDED, 'images.tar')]);
  }

  private podman(args: string[]): Promise<string> {
    return this.engine.podman(args);
  }

  private mounts(): string[] {
    return mountsUnder(this.dir);
  }
}

/**
 * containerd 2.x's configuration (version 3): CRI with runc (the default handler) and crun,
 * the cgroupfs driver, the locally built pause image, no CNI (hostNetwork pods only).
 */
const CONTAINERD_CONFIG = `version = 3
root = "/var/lib/containerd"
state = "${NODE_CONTAINERD_STATE}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"]

[grpc]
  address = "${NODE_CONTAINERD_STATE}/containerd.sock"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "${PAUSE_IMAGE.name}"

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "${NODE_RUNC}"
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.crun.options]
        BinaryName = "${NODE_CRUN}"
        SystemdCgroup = false
`;
