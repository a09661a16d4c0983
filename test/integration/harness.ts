// Real runtimes for integration tests: busybox bundles, runc on a private state root, event collection.
import { execFile, spawn } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { ContainerWatcher, type ContainerEvent, type WatchOptions } from '../../src/index.js';

const run = promisify(execFile);

export const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'sleep', 'true', 'false', 'echo', 'cat', 'ls'];

/** Root, and the tools the tests drive. Under CI=true a test that cannot run fails instead of skipping. */
export function privileged(): boolean {
  const ok = process.geteuid?.() === 0;
  if (!ok && process.env.CI === 'true') throw new Error('integration tests need root (CI=true forbids skipping)');
  return ok;
}

export const CRI_FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/oci/containerd-1.6-cri-container.json', import.meta.url), 'utf8'),
) as { annotations: Record<string, string> };

/** The fixture's containerd CRI annotations, made unique per container. */
export function criAnnotations(tag: string): Record<string, string> {
  return {
    ...CRI_FIXTURE.annotations,
    'io.kubernetes.cri.container-name': `c-${tag}`,
    'io.kubernetes.cri.sandbox-name': `pod-${tag}`,
    'io.kubernetes.cri.sandbox-uid': `uid-${tag}`,
  };
}

let specTemplate: Record<string, unknown> | undefined;

async function template(dir: string): Promise<Record<string, unknown>> {
  if (!specTemplate) {
    await run(RUNC, ['spec', '--bundle', dir]);
    specTemplate = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  }
  return structuredClone(specTemplate);
}

/** A private directory with a state root for runc and a shared busybox rootfs. */
export class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'ocinotify-it-'));
  readonly stateRoot = join(this.dir, 'state');
  readonly rootfs = join(this.dir, 'rootfs');

  constructor() {
    mkdirSync(join(this.rootfs, 'bin'), { recursive: true });
    cpSync(BUSYBOX, join(this.rootfs, 'bin', 'busybox'));
    for (const a of APPLETS) symlinkSync('busybox', join(this.rootfs, 'bin', a));
    for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(this.rootfs, d));
  }

  /** A bundle directory whose config.json runs args with these annotations. */
  async bundle(name: string, args: string[], annotations: Record<string, string> | null): Promise<string> {
    const bundle = join(this.dir, 'bundles', name);
    mkdirSync(bundle, { recursive: true });
    const spec = await template(bundle);
    const proc = spec.process as Record<string, unknown>;
    proc.terminal = false;
    proc.args = args;
    spec.root = { path: this.rootfs, readonly: true };
    if (annotations) spec.annotations = annotations;
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
    return bundle;
  }

  /**
   * runc with this lab's state root; global flags go before the verb.
   *
   * Through /bin/sh: node's child_process spawns with vfork semantics, so the
   * calling thread - ours, the one that answers the gate - waits until the
   * child's exec completes, and a held exec would wait for the deadline.
   * The container's init inherits runc's stdio: a file, never a pipe we
   * would wait on.
   */
  async runc(args: string[], opts: { cwd?: string; global?: string[] } = {}): Promise<string> {
    const argv = [...(opts.global ?? []), '--root', this.stateRoot, ...args];
    return execRuntime(RUNC, argv, this.log, opts.cwd);
  }

  /**
   * `runc delete` of a container whose exit was reported. The exit is reported
   * from sched_process_exit, before the kernel has made the init a zombie;
   * until then runc still calls the container running.
   */
  async deleteExited(id: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.runc(['delete', id]);
        return;
      } catch (err) {
        if (attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  get log(): string {
    return join(this.dir, 'runtime.log');
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

/** Runs a runtime via /bin/sh (see Lab.runc); resolves with its stdout, rejects on a non-zero exit. */
export function execRuntime(binary: string, argv: string[], log: string, cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const out = join(log + '.' + process.hrtime.bigint().toString() + '.out');
    const fd = openSync(out, 'w');
    const logFd = openSync(log, 'a');
    const child = spawn('/bin/sh', ['-c', 'exec "$@"', 'sh', binary, ...argv], { cwd, stdio: ['ignore', fd, logFd] });
    closeSync(fd);
    closeSync(logFd);
    child.on('error', reject);
    child.on('exit', (code) => {
      const stdout = readFileSync(out, 'utf8');
      rmSync(out, { force: true });
      if (code === 0) resolve(stdout);
      else reject(new Error(`${binary} ${argv.join(' ')} exited ${code}: ${tail(log)}`));
    });
  });
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-5).join('\n');
  } catch {
    return '';
  }
}

/** Starts a watcher and records every event whose id is in ids (all events when ids is null). */
export class Recorder {
  readonly events: ContainerEvent[] = [];
  readonly watcher: ContainerWatcher;

  constructor(options: WatchOptions = {}, private readonly ids: Set<string> | null = null) {
    this.watcher = new ContainerWatcher(options);
    this.watcher.on('event', (e: ContainerEvent) => {
      if (this.ids === null || this.ids.has(e.id)) this.events.push(e);
    });
  }

  of(id: string, type?: ContainerEvent['type']): ContainerEvent[] {
    return this.events.filter((e) => e.id === id && (type === undefined || e.type === type));
  }

  /** Resolves once predicate holds on the recorded events, rejects after timeoutMs. */
  async until(predicate: (events: ContainerEvent[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.events)) {
      if (Date.now() > deadline) throw new Error(`timed out; recorded ${this.events.length} events`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.watcher.close();
  }
}

/** create, start, kill -9 and delete one container, waiting for the watcher to report start and exit. */
export async function lifecycle(lab: Lab, rec: Recorder, id: string, bundle: string): Promise<void> {
  await lab.runc(['create', '--bundle', bundle, id]);
  await lab.runc(['start', id]);
  await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'start'));
  await lab.runc(['kill', id, 'KILL']);
  await rec.until((ev) => ev.some((e) => e.id === id && e.type === 'exit'));
  await lab.deleteExited(id);
}

/** Runs a shell command that reports its own wall time in ms, independent of our event loop. */
export function timedShell(script: string): Promise<{ code: number; ms: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', `s=$(date +%s%N); ${script}; rc=$?; e=$(date +%s%N); echo "$rc $(( (e - s) / 1000000 ))"`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', () => {
      const [code, ms] = out.trim().split('\n').pop()!.split(' ').map(Number);
      resolve({ code: code ?? -1, ms: ms ?? -1, stderr: err });
    });
  });
}

type Steps = [ContainerEvent, ContainerEvent, ContainerEvent, ContainerEvent];

/**
 * One container's four steps, once each and in order, each matching `each` (what it should have
 * been resolved to); the precreate held with its spec read, start and exit in create's pid, and
 * the exit as `exit` says. Returns the steps for what is particular to a manager.
 */
export function expectSteps(events: ContainerEvent[], label: string, each: object, exit: Partial<ContainerEvent>): Steps {
  expect(events.map((e) => e.type), label).toEqual(['precreate', 'create', 'start', 'exit']);
  for (const e of events) expect(e, `${label} ${e.type}`).toMatchObject(each);
  const steps = events as Steps;
  const [pre, create, start, end] = steps;
  expect(pre.held, label).toBe(true);
  expect(pre.specError, label).toBeNull();
  expect(create.pid, label).toBeGreaterThan(0);
  expect(create.mntns, label).toBeGreaterThan(0);
  expect(create.cgroupId, label).toMatch(/^[1-9][0-9]*$/);
  expect(start.pid, label).toBe(create.pid);
  expect(BigInt(pre.monotonicNs), label).toBeLessThan(BigInt(start.monotonicNs));
  expect(BigInt(create.monotonicNs), label).toBeLessThan(BigInt(start.monotonicNs));
  expect(end, label).toMatchObject(exit);
  return steps;
}
