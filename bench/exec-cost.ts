// The cost to everyone else on the node: a loop of fork + exec + wait of /bin/true with
// nothing attached, with our watcher, and with the bpftrace one-liner. Rounds rotate the
// order, and each condition is compared with the `off` loop of its own round, so that drift
// in the machine's load spreads over all three. CPU time (the loop's and its children's:
// where the eBPF programs run) is the measure; wall time is kept alongside. The kernel's
// own accounting of the eBPF programs' run time (BPF_ENABLE_STATS) gives their exact share.
import { BpfStats, programIdsOf, programTimes, timeBetween, type ProgramTime } from './bpf-time.js';
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
  /** eBPF run time per fork+exec+exit, per program, summed over the rounds */
  bpfNsPerExec: { ours: number; bpftrace: number };
  bpfPrograms: { ours: ProgramTime[]; bpftrace: ProgramTime[] };
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
    bpfNsPerExec: { ours: 0, bpftrace: 0 },
    bpfPrograms: { ours: [], bpftrace: [] },
    watcherReadyMs: [],
    watcherIdleRssKb: [],
    bpftraceReadyMs: [],
  };
  await lab.execLoop(500); // page cache and allocator warm before the first timed loop
  const stats = await BpfStats.start(lab.bpfstatsBin);
  try {
    await runRounds(lab, perRound, rounds, out);
  } finally {
    await stats.stop();
  }
  for (const c of ['ours', 'bpftrace'] as const)
    out.bpfNsPerExec[c] = out.bpfPrograms[c].reduce((a, p) => a + p.ns, 0) / out.execsPerCondition;
  return out;
}

async function runRounds(lab: BenchLab, perRound: number, rounds: number, out: ExecCost): Promise<void> {
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
}

/** Adds what pid's programs ran during loop to out.bpfPrograms[condition], by program name. */
async function accounted(pid: number, condition: 'ours' | 'bpftrace', loop: () => Promise<Loop>, out: ExecCost): Promise<Loop> {
  const ids = programIdsOf(pid);
  const before = programTimes(ids);
  const result = await loop();
  for (const p of timeBetween(before, programTimes(ids))) {
    const sum = out.bpfPrograms[condition].find((q) => q.name === p.name);
    if (sum) {
      sum.runs += p.runs;
      sum.ns += p.ns;
    } else out.bpfPrograms[condition].push(p);
  }
  return result;
}

async function timedWith(lab: BenchLab, condition: Condition, loop: () => Promise<Loop>, out: ExecCost): Promise<Loop> {
  if (condition === 'off') return loop();
  if (condition === 'ours') {
    const { watcher, readyMs } = await CliWatcher.start(lab.pkg);
    try {
      out.watcherReadyMs.push(readyMs);
      const result = await accounted(watcher.pid, 'ours', loop, out);
      out.watcherIdleRssKb.push(watcher.rssKb());
      return result;
    } finally {
      await watcher.stop();
    }
  }
  const { tracer, readyMs } = await Bpftrace.start();
  try {
    out.bpftraceReadyMs.push(readyMs);
    return await accounted(tracer.pid, 'bpftrace', loop, out);
  } finally {
    await tracer.stopTracing();
  }
}
