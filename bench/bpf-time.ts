// What a process's eBPF programs cost the tasks they run in, from the kernel's own
// accounting (run_cnt, run_time_ns): exact where a timed loop drowns in the noise of
// everything else on the machine.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';

export interface ProgramTime {
  name: string;
  runs: number;
  ns: number;
}

/** Keeps BPF run-time statistics on (bench/native/bpfstats.c) until stop(). */
export class BpfStats {
  private constructor(private readonly child: ChildProcess) {}

  static async start(bin: string): Promise<BpfStats> {
    const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    const [data] = (await once(child.stdout!, 'data')) as [Buffer];
    if (!data.toString().startsWith('on')) throw new Error('bpfstats did not turn statistics on');
    return new BpfStats(child);
  }

  async stop(): Promise<void> {
    this.child.stdin!.end();
    if (this.child.exitCode === null) await once(this.child, 'exit');
  }
}

/** The ids of the BPF programs pid holds, from its fds' fdinfo (programs and links). */
export function programIdsOf(pid: number): Set<number> {
  const ids = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const id = /^prog_id:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))?.[1];
      if (id !== undefined) ids.add(Number(id));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

/** Run counts and time so far of these programs. */
export function programTimes(ids: ReadonlySet<number>): Map<number, ProgramTime> {
  const all = JSON.parse(execFileSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' })) as {
    id: number;
    name?: string;
    run_cnt?: number;
    run_time_ns?: number;
  }[];
  return new Map(
    all.filter((p) => ids.has(p.id)).map((p) => [p.id, { name: p.name ?? String(p.id), runs: p.run_cnt ?? 0, ns: p.run_time_ns ?? 0 }]),
  );
}

/** Per program, what ran between two readings. */
export function timeBetween(before: Map<number, ProgramTime>, after: Map<number, ProgramTime>): ProgramTime[] {
  return [...after].map(([id, a]) => {
    const b = before.get(id);
    return { name: a.name, runs: a.runs - (b?.runs ?? 0), ns: a.ns - (b?.ns ?? 0) };
  });
}
