// The cost to everyone else on the node: a loop of fork + exec + wait of /bin/true with
// nothing attached, with our watcher, and with the bpftrace one-liner. Rounds rotate the
// order, and each condition is compared with the `off` loop of its own round, so that drift
// in the machine's load spreads over all three. CPU time (the loop's and its children's:
// where the eBPF programs run) is the measure; wall time is kept alongside.
import type { BenchLab } from './lab.js';
import { Bpftrace, CliWatcher } from './processes.js';
import { median } from './stats.js';

export type Condition = 'off' | 'ours' | 'bpftrace';
const CONDITIONS: readonly Condition[] = ['off', 'ours', 'bpftrace'];

interface Loop {
  wallNs: number;
  cpuNs: number;
}

export interface ExecCost {
  execsPerCondition: number;
  rounds: { condition: Condition; wallUsPerExec: number; cpuUsPerExec: number }[];
  /** over all rounds */
  cpuUsPerExec: Record<Condition, number>;
  wallUsPerExec: Record<Condition, number>;
  /** median over rounds of (condition / off of the same round - 1) x 100, CPU and wall */
  overheadPct: { ours: number; bpftrace: number };
  wallOverheadPct: { ours: number; bpftrace: number };
  /** `watch` start to `ready`, and RSS while idle, of each watcher started here */
  watcherReadyMs: number[];
  watcherIdleRssKb: number[];
  bpftraceReadyMs: number[];
}

export async function execCost(lab: BenchLab, execs: number, rounds: number): Promise<ExecCost> {
  const perRound = Math.ceil(execs / rounds);
  const out: ExecCost = {
    execsPerCondition: perRound * rounds,
    rounds: [],
    cpuUsPerExec: { off: 0, ours: 0, bpftrace: 0 },
    wallUsPerExec: { off: 0, ours: 0, bpftrace: 0 },
    overheadPct: { ours: 0, bpftrace: 0 },
    wallOverheadPct: { ours: 0, bpftrace: 0 },
    watcherReadyMs: [],
    watcherIdleRssKb: [],
    bpftraceReadyMs: [],
  };
  await lab.execLoop(500); // page cache and allocator warm before the first timed loop
  const ratios = { cpu: { ours: [] as number[], bpftrace: [] as number[] }, wall: { ours: [] as number[], bpftrace: [] as number[] } };
  for (let r = 0; r < rounds; r++) {
    const round = {} as Record<Condition, Loop>;
    for (let c = 0; c < CONDITIONS.length; c++) {
      const condition = CONDITIONS[(r + c) % CONDITIONS.length]!;
      round[condition] = await timedWith(lab, condition, () => lab.execLoop(perRound), out);
      out.rounds.push({
        condition,
        wallUsPerExec: round[condition].wallNs / perRound / 1000,
        cpuUsPerExec: round[condition].cpuNs / perRound / 1000,
      });
    }
    for (const c of ['ours', 'bpftrace'] as const) {
      ratios.cpu[c].push(round[c].cpuNs / round.off.cpuNs - 1);
      ratios.wall[c].push(round[c].wallNs / round.off.wallNs - 1);
    }
  }
  for (const c of CONDITIONS) {
    const mine = out.rounds.filter((x) => x.condition === c);
    out.cpuUsPerExec[c] = mine.reduce((a, x) => a + x.cpuUsPerExec, 0) / mine.length;
    out.wallUsPerExec[c] = mine.reduce((a, x) => a + x.wallUsPerExec, 0) / mine.length;
  }
  for (const c of ['ours', 'bpftrace'] as const) {
    out.overheadPct[c] = median(ratios.cpu[c])! * 100;
    out.wallOverheadPct[c] = median(ratios.wall[c])! * 100;
  }
  return out;
}

async function timedWith(lab: BenchLab, condition: Condition, loop: () => Promise<Loop>, out: ExecCost): Promise<Loop> {
  if (condition === 'off') return loop();
  if (condition === 'ours') {
    const { watcher, readyMs } = await CliWatcher.start(lab.pkg);
    try {
      out.watcherReadyMs.push(readyMs);
      const result = await loop();
      out.watcherIdleRssKb.push(watcher.rssKb());
      return result;
    } finally {
      await watcher.stop();
    }
  }
  const { tracer, readyMs } = await Bpftrace.start();
  try {
    out.bpftraceReadyMs.push(readyMs);
    return await loop();
  } finally {
    await tracer.stopTracing();
  }
}
