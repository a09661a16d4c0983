// ContainerWatcher: the facade. It takes the caller's options, opens the reactor through the
// port, chooses the mode, and hands each record to its seam: sessions.ts (runtime execs),
// lifecycle.ts (exits, init execs), gate.ts (deadlines); existing.ts runs the snapshot.
import { EventEmitter, on } from 'node:events';
import { join } from 'node:path';
import type { ContainerEvent, LostEvent, WatchdogEvent, WatchMode } from '../events.js';
import { CREATION_VERBS, START_VERB } from '../argv.js';
import { OciNotifyError } from '../errors.js';
import { hostView, INIT_PIDNS_INO, ownPidns, type HostView } from '../host/proc.js';
import { discoverRuntimes, execNames, runtimeCandidates, type DiscoverOptions, type RuntimeBinary } from '../host/runtimes.js';
import { userStateRoots } from '../host/state.js';
import { MAX_SPEC_BYTES } from '../spec.js';
import { BINARY_KIND, type NativeOptions, type NativeRecord, type NativeStats, type NativeStatus, type NativeWatcher } from '../native.js';
import { applyBinaryChange, unwatchedAtStart } from './binaries.js';
import { Containers } from './containers.js';
import { Enrich } from './enrich.js';
import { Existing } from './existing.js';
import { Gate, watchdogAllowsCreations, type GatePolicy, type GateVerdict, type TimeoutPolicy, type TimeoutRule } from './gate.js';
import { LearnedRoots } from './learned-roots.js';
import { Lifecycle } from './lifecycle.js';
import { livePort, type Port } from './port.js';
import type { Report } from './report.js';
import { Sessions } from './sessions.js';
import { warmUp } from './warm-up.js';
import { WatchdogReport } from './watchdog.js';

export interface WatchOptions {
  /** 'auto' (default) picks the strongest mode the kernel and privileges allow. */
  mode?: 'auto' | WatchMode;
  /** How long a runtime may be held before native code lets it go. Default 1000 ms. */
  gateTimeoutMs?: number;
  /** Runtime binaries beyond the built-in list. */
  runtimePaths?: readonly string[];
  /** Where the host's `/` is mounted when the watcher runs in a container. Default '/'. */
  hostRoot?: string;
  /** Decides on each held `precreate`; the runtime stays held until it settles or the deadline. */
  gate?: (event: ContainerEvent) => GateVerdict | Promise<GateVerdict>;
  /** What the deadline answers when the gate has not: 'fail-open' (default) or 'fail-closed'. */
  onTimeout?: TimeoutPolicy;
  /** Per namespace/pod timeout policies; the first rule that matches a container decides. */
  timeoutRules?: readonly TimeoutRule[];
  /**
   * Hold each runtime's `start` until every event before it (the container's `precreate` and
   * `create`) has been emitted, so no entrypoint runs before its container was reported. Let go
   * at the deadline, never denied. Default true; needs fanotify.
   */
  orderStart?: boolean;
  /** Report containers already running at start as `existing` events. Default true. */
  snapshot?: boolean;
  /** Runtime state roots (`--root` of the runtime) to scan beyond the known ones, e.g. '/run/my-runc'. */
  stateRoots?: readonly string[];
  /** Make `precreate` events carry the full spec when serialised (it holds the env: secrets). */
  includeSpec?: boolean;
  /**
   * A process apart from this one that answers held and new runtime execs with the timeout
   * policy when this process does not run (stopped, traced, frozen, starved), so that no runtime
   * on the node waits longer than the budget; it exits with this process. true (default): spawned
   * beside the addon, in a session of its own. `{ socket }`: the sidecar listening there
   * (`ocinotify-watchdog --listen`), outside this process's cgroup. false: none. Needs fanotify.
   */
  watchdog?: boolean | { socket: string };
  signal?: AbortSignal;
}

const DEFAULT_GATE_TIMEOUT_MS = 1000;
const DEFAULT_ON_TIMEOUT: TimeoutPolicy = 'fail-open';
const MAX_HELD = 4096;

export class ContainerWatcher extends EventEmitter {
  readonly mode: WatchMode;
  /** Why this mode: what was unavailable, if anything. */
  readonly modeReason: string;
  /** as found at start, then kept up to date as runtimes are installed, upgraded or removed */
  private readonly binaries: RuntimeBinary[];
  private readonly native: NativeWatcher;
  private readonly options: WatchOptions;
  private readonly containers = new Containers();
  private readonly sessions: Sessions;
  private readonly lifecycle: Lifecycle;
  private readonly gate: Gate;
  private readonly watchdog: WatchdogReport;
  private readonly closed = new AbortController();
  private readonly onAbort = (): void => this.close();

  constructor(options?: WatchOptions);
  /** @internal The reactor and the host reads: a recording, replayed by tests without root. */
  constructor(options: WatchOptions, port: Port);
  constructor(options: WatchOptions = {}, port: Port = livePort) {
    super();
    this.options = options;
    const hostRoot = options.hostRoot ?? '/';
    const view = hostView(hostRoot, port.reads);
    const pidns = ownPidns(port.reads);
    const discover = { hostRoot, extraPaths: options.runtimePaths ?? [] };
    this.binaries = discoverRuntimes(discover, port.reads);
    this.native = port.open(nativeOptions(options, { view, pidns, discover, binaries: this.binaries }), (batch) => this.onBatch(batch));
    try {
      [this.mode, this.modeReason] = chooseMode(options.mode ?? 'auto', this.native.status);
    } catch (err) {
      this.native.close();
      throw err;
    }
    const report: Report = {
      publish: (event) => this.publish(event),
      diagnose: (event) => this.emit('diagnostic', event),
      error: (err) => this.reportError(err),
      gateTimeout: (event) => this.emit('gateTimeout', event),
    };
    this.watchdog = new WatchdogReport((event: WatchdogEvent) => this.emit('watchdog', event), report.diagnose);
    const enrich = new Enrich(view, report, options.includeSpec === true);
    const learned = new LearnedRoots(view, port);
    this.lifecycle = new Lifecycle(view, this.mode, this.containers, this.native, report, enrich, learned);
    const policy = gatePolicy(options);
    this.gate = new Gate(this.native, report, policy, (session, reason) => this.lifecycle.deny(session, reason));
    this.sessions = new Sessions(view, this.binaries, this.containers, this.native, report, {
      creation: (session, rec, held) => this.gate.admit(enrich.precreate(session, rec, held), session, rec),
      step: (rec, runtime, invocation) => this.lifecycle.onStep(rec, runtime, invocation),
    });
    setImmediate(() => warmUp(this.closed.signal));
    const unwatched = unwatchedAtStart(this.binaries, this.native.status.binaryErrors);
    setImmediate(() => {
      for (const event of unwatched) if (!this.closed.signal.aborted) this.emit('runtime', event);
    });
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (options.signal?.aborted) this.close();
    if (options.snapshot !== false) {
      const roots = userStateRoots(options.stateRoots ?? []);
      const existing = new Existing(view, this.binaries, () => [...roots, ...learned.stateRoots()], this.containers, this.native, report, this.closed.signal);
      // After attaching, so a container created meanwhile is in the stream, the scan or both (deduplicated).
      setImmediate(() => existing.snapshot());
    }
  }

  /** The runtime binaries watched now. */
  get runtimes(): readonly RuntimeBinary[] {
    return this.binaries;
  }

  /** Every lifecycle event, in order, until close(). */
  async *[Symbol.asyncIterator](): AsyncIterator<ContainerEvent> {
    if (this.closed.signal.aborted) return;
    try {
      for await (const [event] of on(this, 'event', { signal: this.closed.signal }))
        yield event as ContainerEvent;
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
  }

  stats(): NativeStats & { sessions: number; containers: number } {
    return { ...this.native.stats(), ...this.containers.counts() };
  }

  /** Detaches everything: fanotify marks, BPF programs and maps, the reactor thread. Idempotent. */
  close(): void {
    if (this.closed.signal.aborted) return;
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.native.close();
    this.closed.abort();
    this.emit('close');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  private onBatch(batch: NativeRecord[]): void {
    for (const rec of batch) {
      // Batches the thread-safe function had queued still arrive after close(), and a listener
      // may close mid-batch: nothing is reported after `close`.
      if (this.closed.signal.aborted) return;
      try {
        this.onRecord(rec);
      } catch (err) {
        this.reportError(err);
      }
    }
  }

  private onRecord(rec: NativeRecord): void {
    switch (rec.kind) {
      case 'exec':
        return this.sessions.onExec(rec, rec.held);
      case 'runtime-exec':
        return this.sessions.onRuntimeExec(rec);
      case 'init-exec':
        return this.lifecycle.onInitExec(rec);
      case 'exit':
        return this.lifecycle.onExit(rec);
      case 'exec-failed':
        this.sessions.execFailed(rec.pid);
        return this.lifecycle.onExecFailed(rec);
      case 'gate-expired':
      case 'watchdog-answered':
        return this.gate.expired(rec);
      case 'watchdog':
        return this.watchdog.onRecord(rec);
      case 'lost': {
        const event: LostEvent = { type: 'lost', time: new Date().toISOString(), count: rec.count, reason: rec.reason };
        this.emit('lost', event);
        return;
      }
      case 'binary':
        this.emit('runtime', applyBinaryChange(this.binaries, rec));
        return;
    }
  }

  private reportError(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private publish(event: ContainerEvent): void {
    if (this.closed.signal.aborted) return; // a gate's late verdict, a snapshot's late scan
    this.emit(event.type, event);
    this.emit('event', event);
  }
}

function gatePolicy(options: WatchOptions): GatePolicy {
  return { gate: options.gate, onTimeout: options.onTimeout ?? DEFAULT_ON_TIMEOUT, timeoutRules: options.timeoutRules ?? [] };
}

/** What the reactor is asked for: every option it takes is built here. */
function nativeOptions(
  options: WatchOptions,
  host: { view: HostView; pidns: number; discover: DiscoverOptions; binaries: readonly RuntimeBinary[] },
): NativeOptions {
  const mode = options.mode ?? 'auto';
  const candidates = runtimeCandidates(host.discover);
  return {
    useBpf: mode !== 'fanotify-only',
    useFanotify: mode !== 'ebpf-only',
    gateTimeoutMs: options.gateTimeoutMs ?? DEFAULT_GATE_TIMEOUT_MS,
    allowOnExpiry: (options.onTimeout ?? DEFAULT_ON_TIMEOUT) === 'fail-open',
    holdVerbs: { create: CREATION_VERBS, start: options.orderStart !== false ? [START_VERB] : [] },
    maxHeld: MAX_HELD,
    watcherPidns: host.pidns,
    watcherInInitPidns: host.view.inInitPidns,
    hostProc: host.view.inInitPidns ? '/proc' : join(host.view.hostRoot, 'proc'),
    hostPidns: host.view.hostPidns === INIT_PIDNS_INO ? 0 : host.view.hostPidns,
    names: execNames(host.binaries, candidates),
    binaries: host.binaries.map((r) => ({ path: r.path, kind: BINARY_KIND[r.kind] })),
    candidates: candidates.map((c) => ({ ...c, kind: BINARY_KIND[c.kind] })),
    watchdog: {
      enabled: options.watchdog !== false,
      allowCreations: watchdogAllowsCreations(gatePolicy(options)),
      socket: typeof options.watchdog === 'object' ? options.watchdog.socket : '',
    },
    maxSpecBytes: MAX_SPEC_BYTES,
  };
}

function chooseMode(wanted: 'auto' | WatchMode, status: NativeStatus): [WatchMode, string] {
  const fanotify = status.fanotify && status.marked.length > 0;
  const why = [
    status.bpf ? null : `eBPF unavailable (${status.bpfError})`,
    fanotify
      ? null
      : `fanotify unavailable (${status.fanotifyError || status.binaryErrors.map((e) => `${e.path}: ${e.error}`).join('; ') || 'no runtime binary found to mark'})`,
  ].filter((s) => s !== null);
  const rootHint = process.geteuid?.() !== 0 ? '; ocinotify needs root (CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON)' : '';
  if (status.bpf && fanotify) return ['full', 'eBPF and fanotify permission events available'];
  const mode: WatchMode | null = status.bpf ? 'ebpf-only' : fanotify ? 'fanotify-only' : null;
  if (mode === null || wanted === 'full')
    throw new OciNotifyError('ERR_NO_MECHANISM', `cannot watch runtimes: ${why.join('; ')}${rootHint}`, { status });
  return [mode, why.join('; ')];
}

/** Convenience: start watching with options; same as `new ContainerWatcher(options)`. */
export function watch(options?: WatchOptions): ContainerWatcher {
  return new ContainerWatcher(options);
}
