// Side by side with what users would otherwise run, on the same containers in the same run:
// (a) containerd's own event stream, (b) a bpftrace one-liner, (c) polling the runtime's
// state directory every 100 ms. Ours is `ocinotify watch --json` read by the same reader.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Containerd, CTR, K8S_NAMESPACE } from '../test/kit/containerd.js';
import { containerConfig, CriClient, hostNetworkPod } from '../test/kit/cri/client.js';
import { BUSYBOX_IMAGE } from '../test/kit/oci-image.js';
import { sleep } from '../test/kit/wait.js';
import { accuracy, type Accuracy } from './check.js';
import type { BenchLab } from './lab.js';
import { BPFTRACE_ONE_LINER, Bpftrace, LineProcess, Poller, type CliEvent, type CliWatcher } from './processes.js';
import { summarize, usBetween, type Summary } from './stats.js';
import { WriteTrace } from './write-trace.js';

const SHORT_LIVED_MS = 50;
const POLL_INTERVAL_MS = 100;

export interface SideBySide {
  containers: number;
  /** containers whose init exited less than 50 ms after their runtime's create exec */
  shortLived: number;
  ours: { readerLatencyUs: Summary; accuracy: Accuracy; stages?: LineStages };
  bpftrace: { oneLiner: string; readyMs: number; readerLatencyUs: Summary; missed: number; stages?: LineStages };
  poller: { intervalMs: number; latencyMs: Summary; missed: number; shortLivedMissed: number };
}

/** A precreate line's way to the reader, in us (bench/write-trace.ts): each stage ends where the next begins. */
export interface LineStages {
  /** kernel event -> the writer's write(2) of the line: for ours, the library and the serialisation */
  toWrite: Summary;
  /** write(2) -> the reader's first read(2) of that pipe after it: the pipe and the reader's wake-up */
  toRead: Summary;
  /** read(2) -> the reader's line event: node's stream and readline */
  toLine: Summary;
}

function lineStages(trace: WriteTrace, pid: number, lines: { kernelNs: bigint; arrivalNs: bigint }[]): LineStages {
  const byKernelNs = trace.stages(pid);
  const rows = lines.flatMap((l) => {
    const s = byKernelNs.get(l.kernelNs);
    return s && s.readNs !== null && s.readNs <= l.arrivalNs ? [{ ...l, ...s, readNs: s.readNs }] : [];
  });
  return {
    toWrite: summarize(rows.map((r) => usBetween(r.kernelNs, r.writeNs)), 'us'),
    toRead: summarize(rows.map((r) => usBetween(r.writeNs, r.readNs)), 'us'),
    toLine: summarize(rows.map((r) => usBetween(r.readNs, r.arrivalNs)), 'us'),
  };
}

/** Lifecycle containers from `creators` creators; every 4th lives ~150 ms, the rest exit at once. */
export async function sideBySide(lab: BenchLab, cli: CliWatcher, containers: number, creators: number): Promise<SideBySide> {
  const planned = lab.plan('sbs', containers, (i) => (i % 4 === 3 ? ['/bin/sleep', '0.15'] : ['/bin/true']));
  const { tracer, readyMs } = await Bpftrace.start();
  const writes = await WriteTrace.start([cli.child, tracer.child]);
  const poller = await Poller.start(lab.stateRoot);
  const result = await lab.create('lifecycle', planned, creators);
  await sleep(POLL_INTERVAL_MS * 3);
  await tracer.stopTracing();
  await writes.stopTracing();
  await poller.stop();

  const ours = cli.events.filter((e) => e.id.startsWith('sbs-'));
  const precreate = firstOf(ours, 'precreate');
  const exit = firstOf(ours, 'exit');
  const traced = new Map(tracer.execs.filter((x) => x.argv.includes('create')).map((x) => [x.argv[x.argv.length - 1]!, x]));
  const shortLived = result.ran.filter((r) => {
    const [p, e] = [precreate.get(r.id), exit.get(r.id)];
    return p && e && Number(e.monotonicNs - p.monotonicNs) / 1e6 < SHORT_LIVED_MS;
  });
  const tracedCreates = result.ran.flatMap((r) => {
    const x = traced.get(r.id);
    return x ? [{ kernelNs: x.kernelNs, arrivalNs: x.arrivalNs }] : [];
  });
  const polled = result.ran.filter((r) => poller.firstSeen.has(r.id) && precreate.has(r.id));
  return {
    containers: result.ran.length,
    shortLived: shortLived.length,
    ours: {
      readerLatencyUs: summarize([...precreate.values()].map((e) => usBetween(e.monotonicNs, e.arrivalNs)), 'us', true),
      accuracy: accuracy(result.ran, ours, (id) => `pod-${id}`, true, new Set(result.failures.map((l) => l.split(' ')[0]!))),
      stages: lineStages(writes, cli.pid, [...precreate.values()].map((e) => ({ kernelNs: e.monotonicNs, arrivalNs: e.arrivalNs }))),
    },
    bpftrace: {
      oneLiner: BPFTRACE_ONE_LINER,
      readyMs,
      readerLatencyUs: summarize(tracedCreates.map((x) => usBetween(x.kernelNs, x.arrivalNs)), 'us', true),
      missed: result.ran.filter((r) => !traced.has(r.id)).length,
      stages: lineStages(writes, tracer.pid, tracedCreates),
    },
    poller: {
      intervalMs: POLL_INTERVAL_MS,
      latencyMs: summarize(polled.map((r) => usBetween(precreate.get(r.id)!.monotonicNs, poller.firstSeen.get(r.id)!) / 1000), 'ms'),
      missed: result.ran.filter((r) => !poller.firstSeen.has(r.id)).length,
      shortLivedMissed: shortLived.filter((r) => !poller.firstSeen.has(r.id)).length,
    },
  };
}

export interface CriSideBySide {
  containerdVersion: string;
  pods: number;
  /** sandboxes and containers: each is a `runc create` and a `/tasks/create` */
  containers: number;
  /** how much earlier our reader had ocinotify's event than containerd's `/tasks/create`, in ms */
  precreateEarlierMs: Summary;
  createEarlierMs: Summary;
  missedByUs: number;
  missedByContainerd: number;
}

/** The containerd criSideBySide runs, while it runs. */
let containerd: Containerd | null = null;

/** Stops the containerd of an interrupted run, with its shims and containers. */
export async function stopContainerd(): Promise<void> {
  await containerd?.stop();
}

/** `ctr events`: containerd's event stream (its Events API), as its own client prints it. */
class CtrEvents extends LineProcess {
  /** container id -> when /tasks/create reached us */
  readonly taskCreate = new Map<string, bigint>();

  constructor(socket: string) {
    super(CTR, ['--address', socket, 'events'], (line, arrivalNs) => {
      const at = line.indexOf(' /tasks/create ');
      if (at < 0) return;
      const id = (JSON.parse(line.slice(at + ' /tasks/create '.length)) as { container_id?: string }).container_id;
      if (id && !this.taskCreate.has(id)) this.taskCreate.set(id, arrivalNs);
    });
  }
}

/**
 * CRI pods through a private containerd (the integration tests' harness): a sandbox and
 * `perPod` containers each, run as the kubelet would over gRPC.
 */
export async function criSideBySide(cli: CliWatcher, pods: number, perPod: number): Promise<CriSideBySide> {
  const ctd = await Containerd.start();
  containerd = ctd;
  const cri = new CriClient(ctd.socket);
  const events = new CtrEvents(ctd.socket);
  const ids: string[] = [];
  try {
    await cri.waitReady();
    await ctd.importImages(K8S_NAMESPACE);
    await Promise.race([events.started(), sleep(5_000)]); // the import's /images/create: subscribed
    const sandboxes: string[] = [];
    for (let p = 0; p < pods; p++) {
      const pod = { name: `bench-${p}`, namespace: 'ocinotify-bench', uid: randomUUID() };
      const config = hostNetworkPod({
        ...pod,
        logDirectory: join(ctd.dir, 'pods', `${pod.namespace}_${pod.name}_${pod.uid}`),
        cgroupParent: ctd.cgroupParent,
      });
      const sandbox = await cri.runPodSandbox(config);
      sandboxes.push(sandbox);
      ids.push(sandbox);
      for (let c = 0; c < perPod; c++) {
        const id = await cri.createContainer(sandbox, containerConfig(`app-${c}`, BUSYBOX_IMAGE.name, ['/bin/sleep', '3600']), config);
        await cri.startContainer(id);
        ids.push(id);
      }
    }
    await sleep(300);
    for (const id of ids.filter((i) => !sandboxes.includes(i))) {
      await cri.stopContainer(id);
      await cri.removeContainer(id);
    }
    for (const id of sandboxes) {
      await cri.stopPodSandbox(id);
      await cri.removePodSandbox(id);
    }
  } finally {
    cri.close();
    await events.stop();
    await ctd.stop();
    containerd = null;
  }
  const ours = new Set(ids);
  const mine = cli.events.filter((e) => ours.has(e.id));
  const precreate = firstOf(mine, 'precreate');
  const create = firstOf(mine, 'create');
  const earlier = (of: Map<string, CliEvent>): Summary =>
    summarize(
      ids.flatMap((id) => {
        const [e, t] = [of.get(id), events.taskCreate.get(id)];
        return e && t ? [Number(t - e.arrivalNs) / 1e6] : [];
      }),
      'ms',
    );
  return {
    containerdVersion: ctd.version,
    pods,
    containers: ids.length,
    precreateEarlierMs: earlier(precreate),
    createEarlierMs: earlier(create),
    missedByUs: ids.filter((id) => !precreate.has(id)).length,
    missedByContainerd: ids.filter((id) => !events.taskCreate.has(id)).length,
  };
}

function firstOf(events: CliEvent[], type: CliEvent['type']): Map<string, CliEvent> {
  const out = new Map<string, CliEvent>();
  for (const e of events) if (e.type === type && !out.has(e.id)) out.set(e.id, e);
  return out;
}
