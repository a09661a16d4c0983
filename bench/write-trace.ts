// Where a line spends its time between a tracer's kernel event and the reader: when the
// writer (`ocinotify watch --json`, the bpftrace one-liner) calls write(2) on its stdout, and
// when the reader (this process) first read(2)s that pipe after it: its wake-up. A bpftrace of
// its own, filtered by pid and fd in the kernel (never its own pipe: each line it prints would
// wake the reader again); each write is matched to its line by the kernel timestamp the line
// carries.
import type { ChildProcess } from 'node:child_process';
import { sleep, until } from '../test/kit/wait.js';
import { programIdsOf } from './bpf-time.js';
import { ATTACH_MARGIN_MS, LineProcess } from './processes.js';

/** A writer's stdout write(2): when, and the kernel event its line is about. */
export interface TracedWrite {
  pid: number;
  writeNs: bigint;
  kernelNs: bigint;
}

/** bytes of each write traced: enough for `{"type":…,"time":…,"monotonicNs":"…"` */
const PREFIX = 100;

/** Ours writes `"monotonicNs":"N"` within the prefix; the one-liner starts its line with nsecs. */
function kernelNsOf(text: string): bigint | null {
  const m = /"monotonicNs":"(\d+)"/.exec(text) ?? /^(\d+) \d+ /.exec(text);
  return m ? BigInt(m[1]!) : null;
}

export class WriteTrace extends LineProcess {
  readonly writes: TracedWrite[] = [];
  /** writer pid -> CLOCK_MONOTONIC ns of each read(2) of its pipe by the reader */
  readonly reads = new Map<number, bigint[]>();

  private constructor(writers: ChildProcess[]) {
    const fdOf = new Map(writers.map((w) => [readEndOf(w), w.pid!]));
    const who = writers.map((w) => `pid == ${w.pid}`).join(' || ');
    const fds = [...fdOf.keys()].map((fd) => `args->fd == ${fd}`).join(' || ');
    const program =
      `tracepoint:syscalls:sys_enter_write /(${who}) && args->fd == 1/ { printf("W %d %llu %r\\n", pid, nsecs, buf(args->buf, ${PREFIX})); } ` +
      `tracepoint:syscalls:sys_enter_read /tid == ${process.pid} && (${fds})/ { printf("R %d %llu\\n", args->fd, nsecs); }`;
    const script = `mount -t tracefs tracefs /sys/kernel/tracing && BPFTRACE_STRLEN=${PREFIX} exec bpftrace -B line -e '${program}'`;
    super('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], (line) => this.onLine(line, fdOf));
  }

  private onLine(line: string, fdOf: Map<number, number>): void {
    const w = /^W (\d+) (\d+) (.*)$/.exec(line);
    const kernelNs = w ? kernelNsOf(w[3]!) : null;
    if (w && kernelNs !== null) this.writes.push({ pid: Number(w[1]), writeNs: BigInt(w[2]!), kernelNs });
    const r = /^R (\d+) (\d+)$/.exec(line);
    const writer = r ? fdOf.get(Number(r[1])) : undefined;
    if (writer === undefined) return;
    const reads = this.reads.get(writer) ?? [];
    reads.push(BigInt(r![2]!));
    this.reads.set(writer, reads);
  }

  /** Traces the writers' stdout writes and this process's reads of them; resolves once attached. */
  static async start(writers: ChildProcess[]): Promise<WriteTrace> {
    const trace = new WriteTrace(writers);
    const { line } = await trace.started();
    if (!line.startsWith('Attaching')) throw new Error(`bpftrace: ${line} ${trace.errors}`);
    await until(() => programIdsOf(trace.pid).size > 0, () => `bpftrace to load its program: ${trace.errors}`, 30_000);
    await sleep(ATTACH_MARGIN_MS);
    return trace;
  }

  /** Per kernel event, the first write of pid about it and the reader's first read of that pipe after it. */
  stages(pid: number): Map<bigint, { writeNs: bigint; readNs: bigint | null }> {
    // Each CPU's buffer is printed in turn: not quite in time order.
    const reads = [...(this.reads.get(pid) ?? [])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const out = new Map<bigint, { writeNs: bigint; readNs: bigint | null }>();
    for (const w of this.writes) {
      if (w.pid !== pid || out.has(w.kernelNs)) continue;
      out.set(w.kernelNs, { writeNs: w.writeNs, readNs: firstAfter(reads, w.writeNs) });
    }
    return out;
  }

  stopTracing(): Promise<void> {
    return this.stop('SIGINT');
  }
}

/** The fd this process reads a child's stdout from. */
function readEndOf(child: ChildProcess): number {
  const fd = (child.stdout as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error(`no fd for the stdout of ${child.pid}`);
  return fd;
}

/** The first of sorted (ascending) after t. */
function firstAfter(sorted: bigint[], t: bigint): bigint | null {
  let [lo, hi] = [0, sorted.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return sorted[lo] ?? null;
}
