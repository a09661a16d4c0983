// A private containerd for integration tests: its own root, state, socket, runc root and
// cgroup parent under one temp dir, the CRI plugin on, stopped by pid, nothing left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { RUNC } from './bundle.js';
import { execRuntime, tail } from './exec.js';
import { buildImageArchive, BUSYBOX_IMAGE, PAUSE_IMAGE } from './oci-image.js';
import { until } from './wait.js';

export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';
export const SHIM = 'containerd-shim-runc-v2';
/** CRI's containerd namespace. */
export const K8S_NAMESPACE = 'k8s.io';
/**
 * Where every shim puts its ttrpc socket whatever containerd's state dir is:
 * `/run/containerd/s/<sha256(address/namespace/id)>`, the one path outside our temp dir.
 * A shim removes it when it shuts down, not when it is killed.
 */
const SHIM_SOCKET_DIR = '/run/containerd/s';
const SHIM_SOCKET_DIRS = [SHIM_SOCKET_DIR, '/run/containerd'];
const STOP_TIMEOUT_MS = 10_000;

/** What a stopped containerd left on the machine: empty lists when clean. */
export interface Leftovers {
  processes: string[];
  mounts: string[];
  cgroups: string[];
  paths: string[];
}

export class Containerd {
  readonly dir = mkdtempSync(join(tmpdir(), 'ocinotify-ctd-'));
  readonly socket = join(this.dir, 'containerd.sock');
  readonly runcRoot = join(this.dir, 'runc');
  /** Every container's cgroup goes below this one (cgroupfs driver), which stop() removes. */
  readonly cgroupParent = `/${basename(this.dir)}`;
  readonly log = join(this.dir, 'containerd.log');
  /** For `ctr` and `runc` output. */
  readonly toolLog = join(this.dir, 'tools.log');
  /** containerd's own version, as `ctr version` reports the server's. */
  version = '';
  private readonly daemon: ChildProcess;
  private readonly preexisting = SHIM_SOCKET_DIRS.filter((d) => existsSync(d));
  private readonly exited: Promise<void>;
  private stopped = false;

  private constructor() {
    const config = join(this.dir, 'config.toml');
    writeFileSync(config, this.config());
    for (const d of ['cni/bin', 'cni/conf', 'pods']) mkdirSync(join(this.dir, d), { recursive: true });
    const logFd = openSync(this.log, 'a');
    // Through /bin/sh like every runtime-adjacent exec in these tests (execRuntime).
    this.daemon = spawn('/bin/sh', ['-c', 'exec "$@"', 'sh', CONTAINERD, '--config', config], {
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    this.exited = new Promise((resolve) => this.daemon.once('exit', () => resolve()));
  }

  /** Starts containerd and waits until it serves. */
  static async start(): Promise<Containerd> {
    const ctd = new Containerd();
    try {
      await ctd.waitServing();
      const version = await ctd.ctr('default', ['version']);
      ctd.version = /Server:[\s\S]*?Version:\s*(\S+)/.exec(version)?.[1] ?? '';
    } catch (err) {
      await ctd.stop();
      throw err;
    }
    return ctd;
  }

  get pid(): number {
    return this.daemon.pid ?? -1;
  }

  /** `ctr` against this containerd in a containerd namespace. */
  ctr(namespace: string, args: string[]): Promise<string> {
    return execRuntime(CTR, ['--address', this.socket, '--namespace', namespace, ...args], this.toolLog);
  }

  /**
   * `ctr run --detach` of image as id, with our runc root and cgroup parent (ctr's own
   * defaults are /run/containerd/runc/<namespace> and /<namespace>/<id>).
   */
  async ctrRun(namespace: string, image: string, id: string, args: string[]): Promise<void> {
    const own = ['--runc-root', this.runcRoot, '--cgroup', `${this.cgroupParent}/${id}`];
    await this.ctr(namespace, ['run', '--detach', '--null-io', ...own, image, id, ...args]);
  }

  /** Builds the busybox and pause images and imports them into namespace (unpacked). */
  async importImages(namespace: string): Promise<void> {
    const archive = join(this.dir, 'images.tar');
    if (!existsSync(archive)) buildImageArchive(archive, [BUSYBOX_IMAGE, PAUSE_IMAGE]);
    await this.ctr(namespace, ['images', 'import', archive]);
  }

  /**
   * Kills and deletes whatever tasks and containers are left, stops containerd by pid, ends
   * the shims it started, unmounts what they left under our dir, removes our cgroups and
   * dirs. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.daemon.exitCode === null && this.daemon.signalCode === null) {
      await this.removeAllContainers().catch(() => undefined);
      await this.signalDaemon();
    }
    // Normally none: only if containerd could not delete its containers.
    const shims = this.shims();
    const orphans = (): number[] => [...this.shims().map((s) => s.pid), ...this.containerPids()];
    for (const pid of orphans()) killQuietly(pid);
    // What stays is for leftovers() to tell.
    await until(() => orphans().length === 0, 'the shims and containers to go', STOP_TIMEOUT_MS).catch(() => undefined);
    for (const { socket } of shims) rmSync(socket, { force: true });
    for (const mount of this.mounts()) await this.unmount(mount);
    for (const cgroup of this.cgroups().reverse()) rmdirQuietly(cgroup);
    rmSync(this.dir, { recursive: true, force: true });
    for (const dir of SHIM_SOCKET_DIRS) if (!this.preexisting.includes(dir)) rmdirQuietly(dir);
  }

  /**
   * What is left of this containerd on the machine (call after stop()). /run/containerd/s is
   * shared with any other containerd's shims (docker's): one running meanwhile shows up here.
   */
  leftovers(): Leftovers {
    const alive = this.daemon.exitCode === null && this.daemon.signalCode === null;
    return {
      processes: [
        ...(alive ? [`containerd ${this.pid}`] : []),
        ...this.shims().map((s) => `${SHIM} ${s.pid}`),
        ...this.containerPids().map((p) => `container process ${p}`),
      ],
      mounts: this.mounts(),
      cgroups: this.cgroups(),
      paths: [this.dir, ...SHIM_SOCKET_DIRS.filter((d) => !this.preexisting.includes(d))].filter((p) => existsSync(p)),
    };
  }

  private config(): string {
    const cri = 'plugins."io.containerd.grpc.v1.cri"';
    const runc = `${cri}.containerd.runtimes.runc`;
    return `version = 2
root = ${toml(join(this.dir, 'root'))}
state = ${toml(join(this.dir, 'state'))}
# /opt/containerd and snapshotters this machine has no use for stay untouched.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = ${toml(this.socket)}
[ttrpc]
  address = ${toml(`${this.socket}.ttrpc`)}

[${cri}]
  sandbox_image = ${toml(PAUSE_IMAGE.name)}
  # No CAP_SYS_RESOURCE here: the sandbox's oom_score_adj -998 must be clamped to ours.
  restrict_oom_score_adj = true
  [${cri}.cni]
    # hostNetwork pods need no CNI; keep CRI away from /etc/cni and /opt/cni.
    bin_dir = ${toml(join(this.dir, 'cni/bin'))}
    conf_dir = ${toml(join(this.dir, 'cni/conf'))}
  [${cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
  [${runc}]
    runtime_type = "io.containerd.runc.v2"
  [${runc}.options]
    BinaryName = ${toml(RUNC)}
    Root = ${toml(this.runcRoot)}
    SystemdCgroup = false
`;
  }

  private waitServing(): Promise<void> {
    const serving = (): boolean | Promise<boolean> => {
      if (this.daemon.exitCode !== null || this.daemon.signalCode !== null) throw new Error(`containerd exited: ${tail(this.log, 10)}`);
      return existsSync(this.socket) && this.ctr('default', ['version']).then(() => true, () => false);
    };
    return until(serving, () => `containerd to serve: ${tail(this.log, 10)}`, 20_000, 50);
  }

  private async removeAllContainers(): Promise<void> {
    const namespaces = (await this.ctr('default', ['namespaces', 'list', '--quiet'])).split('\n').filter(Boolean);
    for (const ns of namespaces) {
      const tasks = (await this.ctr(ns, ['tasks', 'list', '--quiet'])).split('\n').filter(Boolean);
      for (const id of tasks) await this.ctr(ns, ['tasks', 'delete', '--force', id]).catch(() => undefined);
      const containers = (await this.ctr(ns, ['containers', 'list', '--quiet'])).split('\n').filter(Boolean);
      if (containers.length > 0) await this.ctr(ns, ['containers', 'delete', ...containers]).catch(() => undefined);
    }
  }

  private async signalDaemon(): Promise<void> {
    this.daemon.kill('SIGTERM');
    const timer = setTimeout(() => this.daemon.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** The shims our containerd started: they name its socket in their argv. */
  private shims(): { pid: number; socket: string }[] {
    const shims: { pid: number; socket: string }[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      } catch {
        continue;
      }
      const flag = (name: string): string | undefined => argv[argv.indexOf(name) + 1];
      if (!basename(argv[0] ?? '').startsWith('containerd-shim') || flag('-address') !== this.socket) continue;
      const socket = createHash('sha256').update(`${this.socket}/${flag('-namespace')}/${flag('-id')}`).digest('hex');
      shims.push({ pid: Number(entry), socket: join(SHIM_SOCKET_DIR, socket) });
    }
    return shims;
  }

  /** Processes in our cgroups: containers' processes. */
  private containerPids(): number[] {
    const pids = new Set<number>();
    for (const cgroup of this.cgroups()) {
      try {
        for (const pid of readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').split('\n')) if (pid) pids.add(Number(pid));
      } catch {
        // removed meanwhile
      }
    }
    return [...pids];
  }

  /** Mount points under our dir, deepest first. */
  private mounts(): string[] {
    return mountsUnder(this.dir);
  }

  private async unmount(point: string): Promise<void> {
    await execRuntime('umount', [point], this.toolLog).catch(() => execRuntime('umount', ['-l', point], this.toolLog));
  }

  /** Our cgroup parent and everything below it, in every cgroup hierarchy, parents first. */
  private cgroups(): string[] {
    return cgroupTree(this.cgroupParent);
  }
}

/** A cgroup and everything below it, in every cgroup hierarchy, parents first. */
export function cgroupTree(parent: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    found.push(dir);
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(join(dir, entry.name));
  };
  for (const root of cgroupMounts()) walk(join(root, parent));
  return found;
}

/** Every mounted cgroup hierarchy (v1 controllers and v2). */
export function cgroupMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => / - cgroup2? /.test(line))
    .map((line) => unescapeMount(line.split(' ')[4] ?? ''));
}

/** Mount points below dir, deepest first. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => unescapeMount(line.split(' ')[4] ?? ''))
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

export function rmdirQuietly(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty (someone else's) or gone
  }
}

function toml(s: string): string {
  return JSON.stringify(s);
}
