// What the watcher costs to keep: RSS while idle and after many containers. The churn uses
// the cheapest lifecycle, `runc run` of /bin/true in the foreground (runc deletes it).
import { criAnnotations } from '../test/kit/bundle.js';
import { sleep } from '../test/kit/wait.js';
import { accuracy, type Accuracy } from './check.js';
import type { BenchLab, Ran } from './lab.js';
import type { CliWatcher } from './processes.js';

const BUNDLES = 64;
const BATCH = 1000;
/**
 * How long after the last container the settled RSS is read: V8 shrinks its heap after 15 to
 * 30 s of low allocation, and `watch` hands malloc's free pages back after 20 s without an event.
 */
export const QUIET_S = 60;

export interface Churn {
  /** containers of this churn (the watcher saw others before it) */
  containers: number;
  /** all containers the watcher reported a precreate for, ours and anyone else's */
  watcherContainers: number;
  seconds: number;
  /** stopped short of the target to stay within the time budget */
  cutShort: boolean;
  watcherCpuSeconds: number;
  /** RSS once the node has been quiet for QUIET_S: what a long-running watcher settles at */
  rssKb: number;
  /** RSS 1 s after the last container */
  rssKbAtEnd: number;
  /** RSS each second of the quiet after the churn, from 1 s to QUIET_S */
  quietRssKb?: number[];
  /** the highest RSS of the watcher's life (VmHWM), the churn included */
  peakRssKb: number;
  accuracy: Accuracy;
}

/** Runs containers until the watcher has seen `target` of ours in total, or the deadline. */
export async function churn(
  lab: BenchLab,
  cli: CliWatcher,
  target: number,
  creators: number,
  deadlineNs: bigint,
): Promise<Churn> {
  const bundles = Array.from({ length: BUNDLES }, (_, k) => lab.bundle(`churn-b${k}`, ['/bin/true'], criAnnotations(`churn-b${k}`)));
  const begin = process.hrtime.bigint();
  const cpu0 = cli.cpuSeconds();
  const ran: Ran[] = [];
  const failed = new Set<string>();
  let cutShort = false;
  for (let next = 0; ran.length < target; ) {
    const last = process.hrtime.bigint() - begin;
    const perBatch = ran.length > 0 ? last / BigInt(Math.ceil(ran.length / BATCH)) : 0n;
    if (process.hrtime.bigint() + perBatch + BigInt(QUIET_S) * 1_000_000_000n > deadlineNs) {
      cutShort = true;
      break;
    }
    const size = Math.min(BATCH, target - ran.length);
    const planned = Array.from({ length: size }, (_, i) => ({ id: `churn-${next + i}`, bundle: bundles[(next + i) % BUNDLES]! }));
    next += size;
    const result = await lab.create('run', planned, creators);
    ran.push(...result.ran);
    for (const line of result.failures) failed.add(line.split(' ')[0]!);
  }
  const end = process.hrtime.bigint();
  await sleep(1000);
  const cpu = cli.cpuSeconds() - cpu0;
  const rssKbAtEnd = cli.rssKb();
  const quietRssKb = [rssKbAtEnd];
  for (let s = 2; s <= QUIET_S; s++) {
    await sleep(1000);
    quietRssKb.push(cli.rssKb());
  }
  const events = cli.events.filter((e) => e.id.startsWith('churn-'));
  const podOf = (id: string): string => `pod-churn-b${Number(id.slice('churn-'.length)) % BUNDLES}`;
  return {
    containers: ran.length,
    watcherContainers: new Set(cli.events.filter((e) => e.type === 'precreate').map((e) => e.id)).size,
    seconds: Number(end - begin) / 1e9,
    cutShort,
    watcherCpuSeconds: cpu,
    rssKb: cli.rssKb(),
    rssKbAtEnd,
    quietRssKb,
    peakRssKb: cli.peakRssKb(),
    accuracy: accuracy(ran, events, podOf, false, failed),
  };
}
