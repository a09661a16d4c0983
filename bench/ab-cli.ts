// `ocinotify watch --json` builds against each other in one sitting, on a shared machine:
// rounds of the side by side (bench/side-by-side.ts: the bpftrace one-liner and the CLI on the
// same containers, the same reader), the variants' order rotating each round. Prints each
// block's p50s and stages, then per variant the median over rounds.
//
//   node --import ./bench/ts/register.mjs bench/ab-cli.ts NAME=CHECKOUT[:ARG,ARG...]...
//   e.g. before=/work/main after=. after-nice0=.:--nice,0    (AB_ROUNDS=4 AB_CONTAINERS=80)
//
// A CHECKOUT is a built tree (`make build`): its bin/, dist/ and build/ are what runs.
import { loadAverage } from './conditions.js';
import { BenchLab } from './lab.js';
import { CliWatcher } from './processes.js';
import { sideBySide, type SideBySide } from './side-by-side.js';
import { median } from './stats.js';
import { sleep } from '../test/kit/wait.js';

const ROUNDS = Number(process.env.AB_ROUNDS ?? 4);
const CONTAINERS = Number(process.env.AB_CONTAINERS ?? 80);
/** the side by side's creators */
const CREATORS = 2;

type Row = Record<string, number>;

function row(s: SideBySide, load: number): Row {
  const [o, b] = [s.ours, s.bpftrace];
  return {
    load,
    ours: o.readerLatencyUs.p50!,
    bpftrace: b.readerLatencyUs.p50!,
    ratio: o.readerLatencyUs.p50! / b.readerLatencyUs.p50!,
    oursP99: o.readerLatencyUs.p99!,
    oursToWrite: o.stages?.toWrite.p50 ?? NaN,
    oursToRead: o.stages?.toRead.p50 ?? NaN,
    oursToLine: o.stages?.toLine.p50 ?? NaN,
    btToWrite: b.stages?.toWrite.p50 ?? NaN,
    btToRead: b.stages?.toRead.p50 ?? NaN,
    btToLine: b.stages?.toLine.p50 ?? NaN,
  };
}

const round = (r: Row): string => Object.entries(r).map(([k, v]) => `${k} ${k === 'ratio' || k === 'load' ? v.toFixed(2) : Math.round(v)}`).join(' ');

async function main(): Promise<void> {
  const variants = process.argv.slice(2).map((a) => {
    const [name, rest] = a.split('=') as [string, string];
    const [checkout, args] = rest.split(':') as [string, string | undefined];
    return { name, checkout, args: args ? args.split(',') : [] };
  });
  if (variants.length < 2) throw new Error('usage: ab-cli.ts NAME=CHECKOUT[:ARG,ARG...] NAME=CHECKOUT...');
  const lab = new BenchLab();
  const rows = new Map<string, Row[]>();
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(i + r) % variants.length]!;
        const load = loadAverage();
        const { watcher } = await CliWatcher.start(v.checkout, v.args);
        try {
          await sleep(1000);
          const x = row(await sideBySide(lab, watcher, CONTAINERS, CREATORS), load);
          rows.set(v.name, [...(rows.get(v.name) ?? []), x]);
          process.stdout.write(`round ${r} ${v.name}: ${round(x)}\n`);
        } finally {
          await watcher.stop();
        }
      }
    }
  } finally {
    await lab.cleanup();
  }
  for (const [name, of] of rows) {
    const med = Object.fromEntries(Object.keys(of[0]!).map((k) => [k, median(of.map((x) => x[k]!))!]));
    process.stdout.write(`median of ${of.length} rounds, ${name}: ${round(med)}\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`ab-cli: ${(err as Error).stack}\n`);
  process.exitCode = 1;
});
