// `make bench`: every benchmark of issue 5 in one run, under the time budget, on real runc
// and the real kernel path. Prints one markdown table; writes bench/results/<UTC date>.json
// (summaries of the samples and the machine) and the latency chart next to it.
//
// BENCH_QUICK=1 runs a tenth of everything (to try changes to the benchmarks themselves) and
// writes bench/results/<UTC date>-quick.json instead.
//
// BENCH_ONLY=latency,storm runs only those phases (exec, latency, storm, side, cri, footprint)
// and writes bench/results/<UTC date>-<phases>.json: to measure one change before and after.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../test/kit/wait.js';
import { ConditionsSampler, loadAverage } from './conditions.js';
import { latencyAndGate, storm } from './detection.js';
import { execCost } from './exec-cost.js';
import { churn } from './footprint.js';
import { BenchLab, RUNC } from './lab.js';
import { CliWatcher, killAll } from './processes.js';
import { readBaseline, renderChart, renderReport, type Machine, type Results } from './report.js';
import { criSideBySide, sideBySide, stopContainerd } from './side-by-side.js';
import { summarize } from './stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const ONLY = process.env.BENCH_ONLY?.split(',').map((p) => p.trim()).filter(Boolean) ?? null;
const PHASES = ['exec', 'latency', 'storm', 'side', 'cri', 'footprint'];
const wanted = (phase: string): boolean => ONLY === null || ONLY.includes(phase);
const scale = (count: number): number => (QUICK ? Math.max(1, Math.round(count / 10)) : count);
/** `make bench` must finish in 10 minutes; deps and build take part of it. */
const BUDGET_S = Number(process.env.BENCH_BUDGET_S ?? 480);
/** what the phases after the churn and the cleanup need */
const RESERVE_S = 20;

const COUNTS = {
  execs: scale(20_000),
  execRounds: 6,
  gated: scale(1000),
  ungated: scale(200),
  latencyRounds: 8,
  storm: scale(2000),
  creators: 16,
  stormRounds: 4,
  sideBySide: scale(300),
  criPods: QUICK ? 2 : 8,
  criPerPod: 2,
  footprint: scale(10_000),
};

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const began = process.hrtime.bigint();

function log(message: string): void {
  const s = Number(process.hrtime.bigint() - began) / 1e9;
  process.stderr.write(`[bench ${s.toFixed(0).padStart(3)} s] ${message}\n`);
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
  } catch {
    return `${cmd}: not installed`;
  }
}

function machine(): Machine {
  return {
    kernel: release(),
    cpu: /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    runc: firstLine(RUNC, ['--version']),
    node: process.version,
    bpftrace: firstLine('bpftrace', ['--version']),
    containerd: firstLine('containerd', ['--version']),
  };
}

async function phase<T>(results: Results, lab: BenchLab, name: string, run: () => Promise<T>): Promise<T | undefined> {
  const sampler = new ConditionsSampler(name, lab.dir);
  log(`${name} (load ${loadAverage()})`);
  try {
    return await run();
  } catch (err) {
    results.errors.push(`${name}: ${(err as Error).message}`);
    log(`${name} failed: ${(err as Error).stack}`);
    return undefined;
  } finally {
    results.conditions.push(sampler.stop());
  }
}

async function main(): Promise<void> {
  if (process.geteuid?.() !== 0) throw new Error('the benchmarks need root (eBPF, fanotify, runc)');
  const unknown = (ONLY ?? []).filter((p) => !PHASES.includes(p));
  if (unknown.length) throw new Error(`BENCH_ONLY: no phase ${unknown.join(', ')} (phases: ${PHASES.join(', ')})`);
  const deadline = began + BigInt(BUDGET_S - RESERVE_S) * 1_000_000_000n;
  const date = new Date().toISOString().slice(0, 10);
  const results: Results = { date, seconds: 0, machine: machine(), conditions: [], errors: [] };
  const lab = new BenchLab();
  const stop = (): void => {
    killAll();
    void stopContainerd()
      .finally(() => lab.cleanup())
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    if (wanted('exec')) results.execCost = await phase(results, lab, 'exec loop', () => execCost(lab, COUNTS.execs, COUNTS.execRounds));
    if (wanted('latency')) {
      results.latency = await phase(results, lab, 'latency and gate', () =>
        latencyAndGate(lab, COUNTS.gated, COUNTS.ungated, COUNTS.latencyRounds),
      );
    }
    if (wanted('storm')) results.storm = await phase(results, lab, 'storm', () => storm(lab, COUNTS.storm, COUNTS.creators, COUNTS.stormRounds));
    if (!['side', 'cri', 'footprint'].some(wanted)) return finish(results, date);
    const readyMs = results.execCost?.watcherReadyMs ?? [];
    // At the priority of the bpftrace one-liner and of the reader they share: at its default
    // nice -10 the CLI would take the CPU from both while the one-liner's line is on its way.
    const { watcher, readyMs: ms } = await CliWatcher.start(lab.pkg, ['--nice', '0']);
    try {
      readyMs.push(ms);
      await sleep(1000);
      const idleRssKb = watcher.rssKb();
      results.footprint = { readyMs: summarize(readyMs, 'ms'), idleRssKb };
      if (wanted('side')) results.sideBySide = await phase(results, lab, 'side by side', () => sideBySide(lab, watcher, COUNTS.sideBySide, 2));
      if (wanted('cri')) {
        results.cri =
          (await phase(results, lab, 'containerd CRI', () => criSideBySide(watcher, COUNTS.criPods, COUNTS.criPerPod))) ??
          { error: results.errors.at(-1) ?? 'failed' };
      }
      // The watcher has reported these of ours already; the churn brings it to the target.
      const before = (results.sideBySide?.containers ?? 0) + (results.cri && 'containers' in results.cri ? results.cri.containers : 0);
      const c = !wanted('footprint') ? undefined : await phase(results, lab, 'footprint', () => churn(lab, watcher, COUNTS.footprint - before, 4, deadline));
      if (c) {
        results.footprint.churn = c;
        results.footprint.growthPct = (c.rssKb / idleRssKb - 1) * 100;
        results.footprint.foreignContainers = c.watcherContainers - c.containers - before;
      }
    } finally {
      await watcher.stop();
    }
  } finally {
    await lab.cleanup();
  }
  finish(results, date);
}

function finish(results: Results, date: string): void {
  results.seconds = Number(process.hrtime.bigint() - began) / 1e9;
  mkdirSync(RESULTS, { recursive: true });
  const name = [date, QUICK ? 'quick' : null, ONLY?.join('-') ?? null].filter(Boolean).join('-');
  const file = join(RESULTS, `${name}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(RESULTS, `${name}.svg`), renderChart(results));
  process.stdout.write(`${renderReport(results, readBaseline())}\n`);
  log(`wrote ${file}`);
  if (results.errors.length) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack}\n`);
  process.exitCode = 1;
});
