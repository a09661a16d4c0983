// The processes a benchmark watches with: our CLI, our library in a probe process, a
// bpftrace one-liner, a state-directory poller. Each runs on its own so that its CPU and
// memory are its own, and none of them is the process that runs the runtimes.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ContainerEvent } from 'ocinotify';
import { sleep, until } from '../test/kit/wait.js';
import { programIdsOf } from './bpf-time.js';
import type { Seen } from './probe.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TS_REGISTER = join(ROOT, 'bench', 'ts', 'register.mjs');
const CLK_TCK = 100;
/** from a loaded program to an attached one: a perf event open and an ioctl */
export const ATTACH_MARGIN_MS = 100;

/** What an SRE would type: every exec of runc, with the kernel's timestamp. */
export const BPFTRACE_ONE_LINER =
  'tracepoint:syscalls:sys_enter_execve /str(args->filename) == "/usr/sbin/runc"/ { printf("%llu %d ", nsecs, pid); join(args->argv); }';

/** A line as a reader got it, with when (CLOCK_MONOTONIC ns). */
type LineSink = (line: string, arrivalNs: bigint) => void;

/** Every LineProcess not yet stopped, for killAll(). */
const running = new Set<ChildProcess>();

/** Kills what is still running (an interrupted run): nothing of ours outlives it. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** A child whose stdout lines are read as they come; started() resolves at its first line. */
export class LineProcess {
  readonly child: ChildProcess;
  readonly spawnedNs = process.hrtime.bigint();
  private firstLineNs: bigint | null = null;
  private readonly first: Promise<string>;
  private readonly exited: Promise<void>;
  private stderr = '';

  constructor(command: string, args: string[], sink: LineSink) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this.child);
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.exited = new Promise((resolve) =>
      this.child.once('close', () => {
        running.delete(this.child);
        resolve();
      }),
    );
    this.first = new Promise((resolve, reject) => {
      const lines = createInterface({ input: this.child.stdout! });
      lines.on('line', (line) => {
        const now = process.hrtime.bigint();
        if (this.firstLineNs === null) {
          this.firstLineNs = now;
          resolve(line);
        }
        sink(line, now);
      });
      void this.exited.then(() => reject(new Error(`${command} exited: ${this.stderr.trim()}`)));
    });
  }

  /** The first stdout line, and ms from spawn to it. */
  async started(): Promise<{ line: string; ms: number }> {
    const line = await this.first;
    return { line, ms: Number(this.firstLineNs! - this.spawnedNs) / 1e6 };
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** CPU seconds (user + system, all threads) so far. */
  cpuSeconds(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  }

  /** Resident set size in kB. */
  rssKb(): number {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))?.[1] ?? NaN);
  }

  /** The highest resident set size it has had, in kB. */
  peakRssKb(): number {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))?.[1] ?? NaN);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  get errors(): string {
    return this.stderr;
  }
}

/** An event line of `ocinotify watch --json`, as the reader got it. */
export interface CliEvent {
  type: string;
  id: string;
  monotonicNs: bigint;
  arrivalNs: bigint;
  pid: number | null;
  podName: string | null;
  exitCode: number | null;
}

/** `ocinotify watch --json`: the watcher as deployed, from the package copy at pkg (BenchLab.pkg). */
export class CliWatcher extends LineProcess {
  readonly events: CliEvent[] = [];
  lost = 0;
  /** ids to keep; events of other containers on the machine are dropped */
  keep: (id: string) => boolean = () => true;

  private constructor(pkg: string, args: string[]) {
    super(join(pkg, 'bin', 'ocinotify'), ['watch', '--json', ...args], (line, arrivalNs) => this.onLine(line, arrivalNs));
  }

  static async start(pkg: string, args: string[] = []): Promise<{ watcher: CliWatcher; readyMs: number }> {
    const watcher = new CliWatcher(pkg, args);
    const { line, ms } = await watcher.started();
    if ((JSON.parse(line) as { mode?: string }).mode !== 'full') throw new Error(`watcher not in full mode: ${line}`);
    return { watcher, readyMs: ms };
  }

  private onLine(line: string, arrivalNs: bigint): void {
    const e = JSON.parse(line) as ContainerEvent | { type: 'ready' } | { type: 'lost'; count: number };
    if (e.type === 'lost') this.lost += e.count;
    if (e.type === 'ready' || e.type === 'lost' || typeof e.id !== 'string' || !this.keep(e.id)) return;
    this.events.push({
      type: e.type,
      id: e.id,
      monotonicNs: BigInt(e.monotonicNs),
      arrivalNs,
      pid: e.pid,
      podName: e.pod?.name ?? null,
      exitCode: e.exitCode ?? null,
    });
  }
}

/** bench/probe.ts: our library in its own process, timing its JS handler; from the package copy at pkg. */
export class Probe extends LineProcess {
  stats: Record<string, number> = {};

  private constructor(pkg: string, private readonly out: string, gate: 'allow' | 'none') {
    super(process.execPath, ['--import', TS_REGISTER, join(pkg, 'bench', 'probe.ts'), out, gate], (line) => {
      const msg = JSON.parse(line) as { type: string };
      if (msg.type === 'stats') this.stats = msg as unknown as Record<string, number>;
    });
  }

  static async start(pkg: string, out: string, gate: 'allow' | 'none'): Promise<Probe> {
    const probe = new Probe(pkg, out, gate);
    await probe.started();
    return probe;
  }

  /** Stops it and returns every event its handler saw. */
  async collect(): Promise<Seen[]> {
    await this.stop('SIGTERM');
    const text = readFileSync(this.out, 'utf8');
    return text ? text.split('\n').map((l) => JSON.parse(l) as Seen) : [];
  }
}

/** A runc exec as the bpftrace one-liner printed it. */
export interface TracedExec {
  kernelNs: bigint;
  arrivalNs: bigint;
  pid: number;
  argv: string[];
}

/**
 * The bpftrace one-liner, in a mount namespace of its own where tracefs is mounted for it
 * (this machine does not mount it; the namespace and the mount go away with bpftrace).
 */
export class Bpftrace extends LineProcess {
  readonly execs: TracedExec[] = [];

  private constructor() {
    const script = `mount -t tracefs tracefs /sys/kernel/tracing && exec bpftrace -B line -e '${BPFTRACE_ONE_LINER}'`;
    super('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], (line, arrivalNs) => {
      const m = /^(\d+) (\d+) (.*)$/.exec(line);
      if (m) this.execs.push({ kernelNs: BigInt(m[1]!), arrivalNs, pid: Number(m[2]), argv: m[3]!.split(' ') });
    });
  }

  /**
   * Starts it; resolves once its program is loaded (it prints "Attaching" before it compiles
   * and loads), with how long that took.
   */
  static async start(): Promise<{ tracer: Bpftrace; readyMs: number }> {
    const tracer = new Bpftrace();
    const { line } = await tracer.started();
    if (!line.startsWith('Attaching')) throw new Error(`bpftrace: ${line} ${tracer.errors}`);
    await until(() => programIdsOf(tracer.pid).size > 0, () => `bpftrace to load its program: ${tracer.errors}`, 30_000);
    const readyMs = Number(process.hrtime.bigint() - tracer.spawnedNs) / 1e6;
    await sleep(ATTACH_MARGIN_MS);
    return { tracer, readyMs };
  }

  stopTracing(): Promise<void> {
    return this.stop('SIGINT');
  }
}

/** bench/poller.ts: what naive agents do, list the runtime's state directory every 100 ms. */
export class Poller extends LineProcess {
  /** container id -> first time a poll listed it */
  readonly firstSeen = new Map<string, bigint>();

  private constructor(stateRoot: string) {
    super(process.execPath, ['--import', TS_REGISTER, join(ROOT, 'bench', 'poller.ts'), stateRoot], (line) => {
      const [ns, id] = line.split(' ');
      if (id !== undefined && !this.firstSeen.has(id)) this.firstSeen.set(id, BigInt(ns!));
    });
  }

  static async start(stateRoot: string): Promise<Poller> {
    const poller = new Poller(stateRoot);
    await poller.started();
    return poller;
  }
}
