// Where the benchmarks run containers: the kit's Lab (a temp dir with a busybox rootfs,
// bundles, a private runc state root), with the native helpers compiled for this machine and a
// copy of the package.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { criAnnotations, RUNC } from '../test/kit/bundle.js';
import { tail } from '../test/kit/exec.js';
import { Lab } from '../test/kit/lab.js';

export { RUNC };

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NATIVE = join(ROOT, 'bench', 'native');
/** What runs a watcher: the package as `make build` left it, and the probe that embeds it. */
const PACKAGE_FILES = [
  'package.json',
  'binding.gyp',
  'bin',
  'dist/esm',
  'build/Release/ocinotify.node',
  // spawned beside the addon: without it every watcher runs degraded (ERR_WATCHDOG_UNAVAILABLE)
  'build/Release/ocinotify-watchdog',
  'bench/probe.ts',
];

/** One container a creator is to run. */
export interface Planned {
  id: string;
  bundle: string;
}

/** What a creator reports for one container: CLOCK_MONOTONIC ns when each step ended. */
export interface Ran {
  id: string;
  t0: bigint;
  created: bigint;
  started: bigint;
  exited: bigint;
  deleted: bigint;
  /** the container's init as the creator reaped it (lifecycle mode); 0 when not known */
  initPid: number;
  /** the init's wait status */
  status: number;
}

export interface CreatorsResult {
  ran: Ran[];
  failures: string[];
  /** CLOCK_MONOTONIC ns: first creator spawned, last creator exited */
  begin: bigint;
  end: bigint;
}

export type CreatorMode = 'lifecycle' | 'run';

export class BenchLab extends Lab {
  /**
   * A copy of the package as built when the run began, where the watchers run from: a work
   * tree shared with others may be rebuilt meanwhile, and each number is of one build.
   */
  readonly pkg = join(this.dir, 'pkg');
  readonly creatorBin = join(this.dir, 'creator');
  readonly execloopBin = join(this.dir, 'execloop');
  readonly bpfstatsBin = join(this.dir, 'bpfstats');
  private readonly running = new Set<ChildProcess>();
  private lists = 0;

  constructor() {
    super('ocinotify-bench-');
    try {
      this.prepare();
    } catch (err) {
      rmSync(this.dir, { recursive: true, force: true });
      throw err;
    }
  }

  private prepare(): void {
    for (const f of PACKAGE_FILES) cpSync(join(ROOT, f), join(this.pkg, f), { recursive: true });
    const natives = [
      ['creator.c', this.creatorBin],
      ['execloop.c', this.execloopBin],
      ['bpfstats.c', this.bpfstatsBin],
    ] as const;
    for (const [src, out] of natives)
      execFileSync('cc', ['-O2', '-Wall', '-o', out, join(NATIVE, src)]);
  }

  /** Containers named prefix-0..count-1, each with its own bundle and CRI annotations (criAnnotations). */
  plan(prefix: string, count: number, args: (i: number) => string[]): Planned[] {
    return Array.from({ length: count }, (_, i) => {
      const id = `${prefix}-${i}`;
      return { id, bundle: this.bundle(id, args(i), criAnnotations(id)) };
    });
  }

  /**
   * Runs planned containers from `parallel` creator processes (round-robin), each one
   * container at a time. onRan sees each container as its creator reports it.
   */
  async create(mode: CreatorMode, planned: Planned[], parallel: number, onRan?: (ran: Ran) => void): Promise<CreatorsResult> {
    const ran: Ran[] = [];
    const failures: string[] = [];
    const begin = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: Math.min(parallel, planned.length) }, (_, k) => {
        const list = join(this.dir, `list-${this.lists++}`);
        writeFileSync(list, planned.filter((_, i) => i % parallel === k).map((p) => `${p.id} ${p.bundle}\n`).join(''));
        return this.creator(mode, list, (line) => {
          const r = parseRan(line);
          if (r === null) failures.push(line);
          else {
            ran.push(r);
            onRan?.(r);
          }
        });
      }),
    );
    return { ran, failures, begin, end: process.hrtime.bigint() };
  }

  private creator(mode: CreatorMode, list: string, onLine: (line: string) => void): Promise<void> {
    const child = spawn(this.creatorBin, [RUNC, this.stateRoot, mode, list, this.log], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.running.add(child);
    createInterface({ input: child.stdout! }).on('line', onLine);
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        this.running.delete(child);
        if (code === 0) resolve();
        else reject(new Error(`creator exited ${code}: ${tail(this.log)}`));
      });
    });
  }

  /**
   * fork+exec+wait of path, n times: elapsed and CPU ns (the loop's and its children's).
   * Async: the watchers' output keeps being read meanwhile.
   */
  async execLoop(n: number, path = '/bin/true'): Promise<{ wallNs: number; cpuNs: number }> {
    const { stdout } = await run(this.execloopBin, [String(n), path], { encoding: 'utf8' });
    const [wallNs, cpuNs] = stdout.trim().split(' ').map(Number);
    return { wallNs: wallNs!, cpuNs: cpuNs! };
  }

  /** Stops creators still running, then cleans up as a Lab does. */
  override cleanup(): Promise<void> {
    for (const child of this.running) child.kill('SIGKILL');
    return super.cleanup();
  }
}

function parseRan(line: string): Ran | null {
  const f = line.trim().split(' ');
  if (f.length !== 8 || f[1] === 'FAIL') return null;
  const [id, t0, created, started, exited, deleted, initPid, status] = f as [string, ...string[]];
  return {
    id,
    t0: BigInt(t0!),
    created: BigInt(created!),
    started: BigInt(started!),
    exited: BigInt(exited!),
    deleted: BigInt(deleted!),
    initPid: Number(initPid),
    status: Number(status),
  };
}
