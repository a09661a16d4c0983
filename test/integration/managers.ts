// Real container managers on private state: podman (conmon -> runc) and dockerd (its own
// containerd, namespace moby). Each keeps everything under one temporary directory, runs on
// its own socket, puts its containers under a cgroup parent of its own, and cleans all of it.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfs, execRuntime, sleep, tail, until } from '../kit/index.js';
import { PrivatePodman } from '../kit/podman.js';
import { removeCgroupParent, unmountUnder } from './host-setup.js';

/**
 * podman as BRIEF section 5 runs it: containers.conf with the cgroupfs manager, the file events
 * logger, the host network namespace and explicit ulimits; storage, runroot and tmpdir private.
 */
export class PodmanLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'ocinotify-podman-'));
  readonly rootfs = busyboxRootfs(join(this.dir, 'rootfs'));
  readonly cgroupParent = `ocinotify-podman-${process.pid}`;
  private readonly engine: PrivatePodman;

  constructor(readonly runtime: string = 'runc') {
    this.engine = new PrivatePodman(this.dir, [`runtime = "${runtime}"`]);
  }

  /** podman with this lab's configuration; through /bin/sh (see execRuntime). */
  podman(args: string[]): Promise<string> {
    return this.engine.podman(args);
  }

  /** `podman run -d` of cmd in this lab's rootfs; resolves with the container id. */
  async run(name: string, cmd: string[]): Promise<string> {
    const out = await this.podman(['run', '-d', '--name', name, '--cgroup-parent', `/${this.cgroupParent}`, '--rootfs', this.rootfs, ...cmd]);
    return out.trim();
  }

  /** The bundle podman gives a container: containers/storage's per-container userdata. */
  bundleOf(id: string): string {
    return join(this.engine.storage, 'vfs-containers', id, 'userdata');
  }

  private cleaned = false;

  /** Idempotent. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    await this.podman(['rm', '--all', '--force', '--time', '0']).catch(() => undefined);
    unmountUnder(this.dir);
    await removeCgroupParent(this.cgroupParent);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * dockerd on a private data root, exec root and socket, without bridge or iptables; it starts
 * its own containerd (namespace moby) under the exec root. Images: `docker import` of a
 * busybox rootfs tar.
 */
export class DockerLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'ocinotify-docker-'));
  readonly dataRoot = join(this.dir, 'data');
  readonly execRoot = join(this.dir, 'exec');
  readonly socket = join(this.dir, 'docker.sock');
  readonly cgroupParent = `ocinotify-docker-${process.pid}`;
  readonly image = 'ocinotify/busybox:test';
  private readonly log = join(this.dir, 'client.log');
  private daemon: ChildProcess | null = null;
  private hostDirsBefore: string[] = [];

  /** Starts dockerd and waits until it answers; imports the busybox image. */
  async start(timeoutMs = 30_000): Promise<void> {
    // Its trust key would go to /etc/docker otherwise.
    writeFileSync(join(this.dir, 'daemon.json'), JSON.stringify({ 'deprecated-key-path': join(this.dir, 'key.json') }));
    this.hostDirsBefore = HOST_DIRS.filter((d) => existsSync(d));
    const out = openSync(join(this.dir, 'dockerd.log'), 'a');
    const daemon = spawn(
      '/usr/sbin/dockerd',
      [
        '--config-file', join(this.dir, 'daemon.json'),
        '--data-root', this.dataRoot,
        '--exec-root', this.execRoot,
        '--pidfile', join(this.dir, 'dockerd.pid'),
        '-H', `unix://${this.socket}`,
        '--bridge', 'none',
        '--iptables=false',
        '--ip6tables=false',
        '--storage-driver', 'vfs',
        '--cgroup-parent', `/${this.cgroupParent}`,
        '--userland-proxy=false',
      ],
      { stdio: ['ignore', out, out], env: { ...process.env, DOCKER_CONFIG: join(this.dir, 'config') } },
    );
    this.daemon = daemon;
    closeSync(out);
    const daemonLog = (): string => tail(join(this.dir, 'dockerd.log'), 8);
    await until(
      () => {
        if (daemon.exitCode !== null) throw new Error(`dockerd exited: ${daemonLog()}`);
        return this.docker(['version']).then(() => true, () => false);
      },
      () => `dockerd to answer: ${daemonLog()}`,
      timeoutMs,
      200,
    );
    const rootfs = busyboxRootfs(join(this.dir, 'rootfs'));
    const tar = join(this.dir, 'rootfs.tar');
    await execRuntime('/bin/tar', ['-C', rootfs, '-cf', tar, '.'], this.log);
    await this.docker(['import', tar, this.image]);
  }

  /** The docker CLI of the package (not whatever else is first on PATH), on this daemon. */
  docker(args: string[]): Promise<string> {
    return execRuntime(
      '/usr/bin/env',
      [`DOCKER_CONFIG=${join(this.dir, 'config')}`, '/usr/bin/docker', '-H', `unix://${this.socket}`, ...args],
      this.log,
    );
  }

  /** `docker run -d`; resolves with the container id. */
  async run(name: string, cmd: string[]): Promise<string> {
    return (await this.docker(['run', '-d', '--name', name, '--network', 'none', this.image, ...cmd])).trim();
  }

  private cleaned = false;

  /** Removes every container, stops dockerd (and with it its containerd) by pid, cleans up. Idempotent. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    if (this.daemon !== null && this.daemon.exitCode === null) {
      const ids = (await this.docker(['ps', '-aq']).catch(() => '')).split('\n').filter(Boolean);
      if (ids.length > 0) await this.docker(['rm', '-f', ...ids]).catch(() => undefined);
      const exited = new Promise((r) => this.daemon?.once('exit', r));
      this.daemon.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (this.daemon.exitCode === null && this.daemon.signalCode === null) {
        this.daemon.kill('SIGKILL');
        await exited;
      }
    }
    unmountUnder(this.dir);
    await removeCgroupParent(this.cgroupParent);
    rmSync(this.dir, { recursive: true, force: true });
    for (const d of HOST_DIRS) if (!this.hostDirsBefore.includes(d)) removeEmptyDirs(d);
  }
}

/** Paths dockerd and containerd's shims use whatever they are told: removed after, if they were not there before and are empty. */
const HOST_DIRS = ['/run/docker', '/run/containerd', '/etc/docker'];

function removeEmptyDirs(dir: string): void {
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) removeEmptyDirs(join(dir, entry.name));
    rmdirSync(dir);
  } catch {
    // not empty (in use by someone else), or gone
  }
}
