// Where tests and benchmarks run containers: a private directory with a busybox rootfs,
// bundles, a runc state root of its own and the runtimes' log; cleaned up with all it made.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUNC, busyboxRootfs, writeBundle } from './bundle.js';
import { execRuntime, sq, tail, timedShell, type Timed } from './exec.js';
import { sleep } from './wait.js';

/** Root, and the tools the tests drive. Under CI=true a test that cannot run fails instead of skipping. */
export function privileged(): boolean {
  const ok = process.geteuid?.() === 0;
  if (!ok && process.env.CI === 'true') throw new Error('integration tests need root (CI=true forbids skipping)');
  return ok;
}

export class Lab {
  readonly dir: string;
  readonly stateRoot: string;
  readonly rootfs: string;
  /** the runtimes' stderr */
  readonly log: string;

  constructor(prefix = 'ocinotify-it-') {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.stateRoot = join(this.dir, 'state');
    this.log = join(this.dir, 'runtime.log');
    try {
      this.rootfs = busyboxRootfs(join(this.dir, 'rootfs'));
    } catch (err) {
      rmSync(this.dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** A bundle directory (under bundles/name) whose config.json runs args with these annotations. */
  bundle(name: string, args: string[], annotations: Record<string, string> | null): string {
    return writeBundle(join(this.dir, 'bundles', name), this.rootfs, args, annotations);
  }

  /** runc with this lab's state root (see execRuntime); global flags go before the verb. */
  runc(args: string[], opts: { cwd?: string; global?: string[] } = {}): Promise<string> {
    return execRuntime(RUNC, [...(opts.global ?? []), '--root', this.stateRoot, ...args], this.log, opts.cwd);
  }

  /**
   * `runc delete` of a container whose exit was reported. The exit is reported from
   * sched_process_exit, before the kernel has made the init a zombie; until then runc still
   * calls the container running.
   */
  deleteExited(id: string, timeoutMs?: number): Promise<void> {
    return deleteWhenStopped(RUNC, ['--root', this.stateRoot], id, this.log, timeoutMs);
  }

  /** Deletes every container this lab left and its files. */
  async cleanup(): Promise<void> {
    try {
      const list = JSON.parse((await this.runc(['list', '--format', 'json'])) || '[]') as { id: string }[] | null;
      for (const c of list ?? []) await this.runc(['delete', '--force', c.id]).catch(() => undefined);
    } catch {
      // no state root: nothing was created
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * `<runtime> <global...> delete <id>`, retried while the runtime still calls the container
 * running: its init is a zombie until its parent reaps it, though the kernel - and the
 * watcher's `exit` - already saw it exit. Any failure is retried: with runtimes run in
 * parallel the end of the shared log may be another's.
 */
export async function deleteWhenStopped(binary: string, global: string[], id: string, log: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await execRuntime(binary, [...global, 'delete', id], log);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

/**
 * runc on lab's state root, timed by the shell itself (timedShell): the measurement does not
 * depend on our event loop; SIGKILLed after killAfterMs. runc's stdio goes to the lab's log, never to timedShell's pipe,
 * which a container init would inherit.
 */
export function timedRunc(lab: Lab, args: string[], killAfterMs?: number): Promise<Timed> {
  const cmd = [RUNC, '--root', lab.stateRoot, ...args].map(sq).join(' ');
  return timedShell(`${cmd} </dev/null >>${sq(lab.log)} 2>&1`, killAfterMs);
}

/**
 * The wall time, in ms, of an unheld `runc create` of a /bin/true container here and now (with
 * start: of `create && start`), the slowest of `times`: the scale of a test's time limits, so
 * that they hold on a slow or busy machine (a guest under TCG takes seconds) as on a quiet one.
 * Measure before the test's watchers start: nothing in this process holds the runtime then.
 */
export async function unheldRuncMs(lab: Lab, opts: { start?: boolean; times?: number } = {}): Promise<number> {
  let slowest = 0;
  for (let i = 0; i < (opts.times ?? 3); i++) {
    const id = `unheld-${i}-${process.pid.toString(36)}`;
    const runc = (args: string[]): string => [RUNC, '--root', lab.stateRoot, ...args].map(sq).join(' ');
    const create = runc(['create', '--bundle', lab.bundle(id, ['/bin/true'], null), id]);
    const res = await timedShell(`${opts.start ? `${create} && ${runc(['start', id])}` : create} </dev/null >>${sq(lab.log)} 2>&1`);
    await lab.runc(['delete', '--force', id]).catch(() => undefined);
    if (res.code !== 0) throw new Error(`unheld runc ${opts.start ? 'create && start' : 'create'} exited ${res.code}: ${tail(lab.log)}`);
    slowest = Math.max(slowest, res.ms);
  }
  return slowest;
}

/** runc state's status of id, or null when runc knows no such container. */
export async function runcStatus(lab: Lab, id: string): Promise<string | null> {
  try {
    return (JSON.parse(await lab.runc(['state', id])) as { status: string }).status;
  } catch {
    return null;
  }
}
