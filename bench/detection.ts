// How fast the library hands each event to JavaScript, what the gate costs a runtime, and
// what a storm of parallel creators does to both. The watcher is bench/probe.ts, in its own
// process; the runtimes run from the creators (bench/native/creator.c).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../test/kit/wait.js';
import { accuracy, STEPS, type Accuracy, type Step } from './check.js';
import type { BenchLab, CreatorsResult, Planned } from './lab.js';
import { Probe } from './processes.js';
import type { Seen } from './probe.js';
import { median, summarize, usBetween, type Summary } from './stats.js';

const SETTLE_MS = 300;
/** after start the watcher scans the state directories once: not what a steady node sees */
const WARM_MS = 1000;
const TRUE = (): string[] => ['/bin/true'];

export interface Detection {
  containers: number;
  /** kernel event -> the JS handler, per step, in us */
  latencyUs: Record<Step, Summary>;
  accuracy: Accuracy;
  failures: string[];
  /** precreates that arrived with the runtime held (a gate could have denied it) */
  held: number;
  /** native stats of the watcher: how many holds ran into the deadline */
  gateExpired: number;
  /** events about other people's containers the watcher handled meanwhile (tests running alongside) */
  foreignEvents: number;
}

export interface LatencyAndGate extends Detection {
  /** `runc create` wall time in ms without a watcher and with one whose gate allows at once */
  createMs: { off: Summary; gate: Summary };
  /** median: the median over rounds of each round's difference of medians; p99: of all samples */
  gateAddedMs: { median: number; p99: number; perRound: number[] };
}

/** CPU time a process's threads ran, and waited runnable for a CPU (schedstat), in seconds */
export interface ThreadTimes {
  /** the JS thread (the main thread: handlers, the watcher's JavaScript) */
  js: { ran: number; waited: number };
  /** the reactor thread: it answers every runtime exec it does not hold for JS */
  reactor: { ran: number; waited: number };
  /** the rest (V8's, libuv's) */
  others: { ran: number; waited: number };
}

export interface Storm extends Detection {
  creators: number;
  /** the watcher's blocks: seconds from the first creator's start to the last one's exit, summed */
  seconds: number;
  /**
   * The same storm without a watcher, in blocks interleaved with the watcher's: `runc create`
   * wall time as the creators saw it, off and on. added: median over rounds of each round's
   * difference of medians, relative to its off median.
   */
  gate: { off: Summary; on: Summary; addedPct: number; addedPctPerRound: number[]; offSeconds: number };
  /** where the watcher's time went (bench/probe.ts, /proc/PID/task/TID/schedstat) */
  profile: {
    threads: ThreadTimes;
    /** share of the time between the first event and the last that the JS thread was busy (median of rounds) */
    jsBusyShare: number | null;
    eventsPerTickMean: number | null;
    eventsPerTickMax: number;
  };
  containersPerS: number;
  eventsPerS: number;
  watcherCpuSeconds: number;
  /** precreate and create in JS before the entrypoint's exec (the start event's kernel time) */
  ordering: { containers: number; precreateFirst: number; createFirst: number; both: number; sharePct: number };
}

/**
 * Sequential containers in rounds, each a block without a watcher then a block with the probe
 * and an allow-at-once gate: detection latency on a quiet node, and what the hold adds to
 * `runc create`, compared within each round so that drift in the machine's load cancels out.
 */
export async function latencyAndGate(lab: BenchLab, gated: number, off: number, rounds: number): Promise<LatencyAndGate> {
  const offMs: number[] = [];
  const gateMs: number[] = [];
  const addedPerRound: number[] = [];
  const seen: Seen[] = [];
  const all: CreatorsResult = { ran: [], failures: [], begin: 0n, end: 0n };
  let expired = 0;
  let foreign = 0;
  const createMs = (r: CreatorsResult): number[] => r.ran.map((c) => Number(c.created - c.t0) / 1e6);
  for (let r = 0; r < rounds; r++) {
    const idle = await lab.create('lifecycle', lab.plan(`off${r}`, Math.ceil(off / rounds), TRUE), 1);
    const probe = await Probe.start(lab.pkg, join(lab.dir, `probe-lat${r}.ndjson`), 'allow');
    await sleep(WARM_MS);
    const result = await lab.create('lifecycle', lab.plan(`lat${r}`, Math.ceil(gated / rounds), TRUE), 1);
    await sleep(SETTLE_MS);
    const rows = await probe.collect();
    const mine = rows.filter((e) => e.id.startsWith(`lat${r}-`));
    seen.push(...mine);
    foreign += rows.filter((e) => e.type !== 'diagnostic').length - mine.length;
    expired += probe.stats.expired ?? 0;
    offMs.push(...createMs(idle));
    gateMs.push(...createMs(result));
    addedPerRound.push(median(createMs(result))! - median(createMs(idle))!);
    all.ran.push(...result.ran);
    all.failures.push(...result.failures, ...idle.failures);
  }
  const summaries = { off: summarize(offMs, 'ms'), gate: summarize(gateMs, 'ms') };
  return {
    ...detection(all, seen, expired, foreign),
    createMs: summaries,
    gateAddedMs: { median: median(addedPerRound)!, p99: summaries.gate.p99! - summaries.off.p99!, perRound: addedPerRound },
  };
}

/**
 * containers from `creators` parallel creators, the probe without a gate, in rounds: each a
 * block of the same storm without a watcher and one with it (the order alternating), so that
 * what the gate costs the creations is compared under the same load.
 */
export async function storm(lab: BenchLab, containers: number, creators: number, rounds: number): Promise<Storm> {
  const perRound = Math.ceil(containers / rounds);
  const [offMs, onMs, addedPct, busy, planned, seen] = [[] as number[], [] as number[], [] as number[], [] as number[], [] as Planned[], [] as Seen[]];
  const all: CreatorsResult = { ran: [], failures: [], begin: 0n, end: 0n };
  const threads: ThreadTimes = { js: { ran: 0, waited: 0 }, reactor: { ran: 0, waited: 0 }, others: { ran: 0, waited: 0 } };
  let [seconds, offSeconds, cpu, expired, foreign, perTickMax, ticks, events] = [0, 0, 0, 0, 0, 0, 0, 0];
  const createMs = (r: CreatorsResult): number[] => r.ran.map((c) => Number(c.created - c.t0) / 1e6);
  for (let r = 0; r < rounds; r++) {
    const off = async (): Promise<CreatorsResult> => {
      const result = await lab.create('lifecycle', lab.plan(`stormoff${r}`, perRound, TRUE), creators);
      offSeconds += Number(result.end - result.begin) / 1e9;
      all.failures.push(...result.failures);
      return result;
    };
    const idle = r % 2 === 0 ? await off() : null;
    const mine = lab.plan(`storm${r}`, perRound, TRUE);
    planned.push(...mine);
    const probe = await Probe.start(lab.pkg, join(lab.dir, `probe-storm${r}.ndjson`), 'none');
    await sleep(WARM_MS);
    const cpu0 = probe.cpuSeconds();
    const t0 = threadTimes(probe.pid);
    const result = await lab.create('lifecycle', mine, creators);
    const t1 = threadTimes(probe.pid);
    await sleep(SETTLE_MS);
    cpu += probe.cpuSeconds() - cpu0;
    for (const k of ['js', 'reactor', 'others'] as const) {
      threads[k].ran += t1[k].ran - t0[k].ran;
      threads[k].waited += t1[k].waited - t0[k].waited;
    }
    const rows = await probe.collect();
    const ours = rows.filter((e) => e.id.startsWith(`storm${r}-`));
    seen.push(...ours);
    foreign += rows.filter((e) => e.type !== 'diagnostic').length - ours.length;
    expired += probe.stats.expired ?? 0;
    if (probe.stats.jsBusyShare != null) busy.push(probe.stats.jsBusyShare);
    perTickMax = Math.max(perTickMax, probe.stats.eventsPerTickMax ?? 0);
    if (probe.stats.eventsPerTickMean) [ticks, events] = [ticks + ours.length / probe.stats.eventsPerTickMean, events + ours.length];
    seconds += Number(result.end - result.begin) / 1e9;
    all.ran.push(...result.ran);
    all.failures.push(...result.failures);
    const before = idle ?? (await off());
    offMs.push(...createMs(before));
    onMs.push(...createMs(result));
    addedPct.push((median(createMs(result))! / median(createMs(before))! - 1) * 100);
  }
  return {
    ...detection(all, seen, expired, foreign),
    creators,
    seconds,
    containersPerS: all.ran.length / seconds,
    eventsPerS: seen.length / seconds,
    watcherCpuSeconds: cpu,
    ordering: ordering(planned, seen),
    gate: { off: summarize(offMs, 'ms'), on: summarize(onMs, 'ms'), addedPct: median(addedPct)!, addedPctPerRound: addedPct, offSeconds },
    profile: { threads, jsBusyShare: median(busy), eventsPerTickMean: ticks ? events / ticks : null, eventsPerTickMax: perTickMax },
  };
}

/** the reactor thread's name (addon/reactor.cc) */
const REACTOR_COMM = 'ocinotify';

/** The schedstat of pid's threads, the main thread's and the reactor's apart: s on a CPU, s waiting for one. */
function threadTimes(pid: number): ThreadTimes {
  const out: ThreadTimes = { js: { ran: 0, waited: 0 }, reactor: { ran: 0, waited: 0 }, others: { ran: 0, waited: 0 } };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [ran, waited] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const t = Number(tid) === pid ? out.js : comm === REACTOR_COMM ? out.reactor : out.others;
      t.ran += ran! / 1e9;
      t.waited += waited! / 1e9;
    } catch {
      // a thread gone meanwhile
    }
  }
  return out;
}

function detection(result: CreatorsResult, seen: Seen[], gateExpired: number, foreignEvents: number): Detection {
  const failed = new Set(result.failures.map((line) => line.split(' ')[0]!));
  const latencyUs = Object.fromEntries(
    STEPS.map((step) => [step, summarize(seen.filter((e) => e.type === step).map((e) => usBetween(e.monotonicNs, e.seenNs)), 'us', true)]),
  ) as Record<Step, Summary>;
  return {
    containers: result.ran.length,
    latencyUs,
    accuracy: accuracy(result.ran, seen, (id) => `pod-${id}`, true, failed),
    failures: result.failures,
    held: seen.filter((e) => e.type === 'precreate' && e.held === true).length,
    gateExpired,
    foreignEvents,
  };
}

function ordering(planned: Planned[], seen: Seen[]): Storm['ordering'] {
  const byKey = new Map(seen.map((e) => [`${e.type} ${e.id}`, e]));
  const out = { containers: 0, precreateFirst: 0, createFirst: 0, both: 0, sharePct: 0 };
  for (const { id } of planned) {
    const [pre, create, start] = (['precreate', 'create', 'start'] as const).map((t) => byKey.get(`${t} ${id}`));
    if (!pre || !create || !start) continue;
    out.containers++;
    const preFirst = BigInt(pre.seenNs) < BigInt(start.monotonicNs);
    const createFirst = BigInt(create.seenNs) < BigInt(start.monotonicNs);
    out.precreateFirst += Number(preFirst);
    out.createFirst += Number(createFirst);
    out.both += Number(preFirst && createFirst);
  }
  out.sharePct = out.containers ? (out.both / out.containers) * 100 : 0;
  return out;
}
