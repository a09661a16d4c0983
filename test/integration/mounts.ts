// Filesystems a test makes for itself - tmpfs, loop-mounted images, overlays, a FUSE mount - and
// takes down again, in reverse order, whatever failed in between: every mount, loop device and
// FUSE daemon it made is undone by cleanup(), which the test calls when it ends.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { until } from '../kit/index.js';

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * A process leaving the filesystem (a container's init being reaped) may keep it busy a moment:
 * umount is tried again for a while, then detached lazily - and reported all the same.
 */
function umount(target: string): void {
  for (let attempt = 0; attempt < 25; attempt++) {
    try {
      run('umount', [target]);
      return;
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  run('umount', ['--lazy', target]);
  throw new Error(`${target} stayed busy: detached lazily`);
}

function modprobe(module: string): void {
  try {
    run('modprobe', ['-q', module]);
  } catch {
    // not a module either: what needed it says so
  }
}

/** Whether the kernel knows the filesystem, loading its module if it is one. */
function supported(fstype: string): boolean {
  const known = (): boolean => readFileSync('/proc/filesystems', 'utf8').split('\n').some((l) => l.split('\t')[1] === fstype);
  if (known()) return true;
  modprobe(fstype);
  return known();
}

export class Mounts {
  private readonly undo: { what: string; step: () => void }[] = [];

  constructor(readonly dir: string) {}

  /** mount -t fstype source target (made under dir) with options; returns target. */
  mount(fstype: string, source: string, name: string, options: string[] = []): string {
    if (!supported(fstype)) throw new Error(`this kernel has no ${fstype}`);
    const target = join(this.dir, name);
    mkdirSync(target, { recursive: true });
    run('mount', ['-t', fstype, ...(options.length ? ['-o', options.join(',')] : []), source, target]);
    this.undo.push({ what: `umount ${target}`, step: () => umount(target) });
    return target;
  }

  /** A fresh filesystem of fstype on a sparse image, through a loop device of its own; returns where it is mounted. */
  image(fstype: 'ext4' | 'xfs' | 'btrfs', sizeMiB: number): string {
    const image = join(this.dir, `${fstype}.img`);
    run('truncate', ['-s', `${sizeMiB}M`, image]);
    run(`mkfs.${fstype}`, fstype === 'ext4' ? ['-q', '-F', image] : ['-q', image]);
    if (!supported(fstype)) throw new Error(`this kernel has no ${fstype}`);
    // Debian's kernels build loop as a module: /dev/loop-control appears once it is loaded.
    if (!existsSync('/dev/loop-control')) modprobe('loop');
    const device = run('losetup', ['--find', '--show', image]);
    this.undo.push({ what: `losetup -d ${device}`, step: () => run('losetup', ['-d', device]) });
    return this.mount(fstype, device, fstype);
  }

  /** An overlay of lower under upper (work beside upper, on upper's filesystem); returns the merged directory. */
  overlay(name: string, lower: string, upper: string, options: string[] = []): string {
    const work = `${upper}.work`;
    for (const d of [lower, upper, work]) mkdirSync(d, { recursive: true });
    return this.mount('overlay', 'overlay', name, [`lowerdir=${lower}`, `upperdir=${upper}`, `workdir=${work}`, ...options]);
  }

  /**
   * file served through a FUSE filesystem (bindfs over a copy of it) and bind-mounted over itself.
   * Returns the FUSE daemon: SIGSTOP it and every open and read of file hangs, as on a stalled
   * FUSE or NFS mount; cleanup lets it go on (SIGCONT) before it unmounts.
   */
  async fuseOver(file: string): Promise<{ pid: number }> {
    if (!existsSync('/dev/fuse')) modprobe('fuse');
    if (!existsSync('/dev/fuse')) throw new Error('this kernel has no FUSE (/dev/fuse)');
    const src = join(this.dir, 'fuse-src');
    const target = join(this.dir, 'fuse');
    for (const d of [src, target]) mkdirSync(d, { recursive: true });
    copyFileSync(file, join(src, basename(file)));
    const daemon = spawn('bindfs', ['-f', src, target], { stdio: 'ignore' });
    let failed: Error | null = null;
    daemon.once('error', (err) => (failed = err));
    const pid = daemon.pid;
    if (pid === undefined) throw new Error('bindfs did not start (is it installed? make deps)');
    const signal = (sig: NodeJS.Signals): void => {
      try {
        process.kill(pid, sig);
      } catch {
        // gone already: it exits once unmounted
      }
    };
    this.undo.push({ what: `kill bindfs ${pid}`, step: () => signal('SIGTERM') });
    // Awaited, not slept on: the test's watcher runs on this thread and answers runtimes meanwhile.
    await until(() => {
      if (failed !== null || daemon.exitCode !== null) throw new Error(`bindfs ended before it mounted ${target}: ${failed?.message ?? `exit ${daemon.exitCode}`}`);
      return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === target);
    }, `bindfs to mount ${target}`);
    this.undo.push({
      what: `umount ${target}`,
      step: () => {
        signal('SIGCONT');
        umount(target);
      },
    });
    run('mount', ['--bind', join(target, basename(file)), file]);
    this.undo.push({
      what: `umount ${file}`,
      step: () => {
        signal('SIGCONT');
        umount(file);
      },
    });
    return { pid };
  }

  /** Undoes everything, last made first; throws afterwards if any step failed. */
  cleanup(): void {
    const failed: string[] = [];
    for (let u = this.undo.pop(); u !== undefined; u = this.undo.pop()) {
      try {
        u.step();
      } catch (err) {
        failed.push(`${u.what}: ${(err as Error).message}`);
      }
    }
    if (failed.length) throw new Error(`cleanup left behind:\n${failed.join('\n')}`);
  }
}
