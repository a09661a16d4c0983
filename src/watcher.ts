// ContainerWatcher: turns the reactor's kernel records into container lifecycle events.
import { EventEmitter, on } from 'node:events';
import { posix } from 'node:path';
import { resolveAnnotations, type ResolvedMetadata } from './annotations/index.js';
import { parseRuntimeArgv, runtimeNameOf, type RuntimeInvocation, type RuntimeName } from './argv.js';
import { OciNotifyError } from './errors.js';
import { decodeStatus, type ContainerEvent, type LifecycleType, type LostEvent, type WatchMode } from './events.js';
import {
  cgroupIdOf,
  hostProcDir,
  inodeOrNull,
  procDir,
  readlinkOrNull,
  readPidFile,
  readStatePid,
  type HostView,
} from './host.js';
import {
  EXIT_KIND,
  RECORD_FLAG,
  loadAddon,
  type ExecRecord,
  type ExitRecord,
  type InitExecRecord,
  type NativeRecord,
  type NativeStats,
  type NativeWatcher,
} from './native.js';
import { DEFAULT_STATE_ROOTS, discoverRuntimes, execNames, type RuntimeBinary } from './runtimes.js';
import { readBundleSpec, specAnnotations, specCandidates, type OciSpec } from './spec.js';

export type GateVerdict = 'allow' | 'deny' | { verdict: 'allow' | 'deny'; reason?: string } | undefined | void;

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
  /** Make `precreate` events carry the full spec when serialised (it holds the env: secrets). */
  includeSpec?: boolean;
  signal?: AbortSignal;
}

interface Session {
  id: string;
  invocation: RuntimeInvocation;
  runtime: ContainerEvent['runtime'];
  bundle: string | null;
  meta: ResolvedMetadata;
  pidFile: string | null;
  initPid: number | null;
  mntns: number | null;
  cgroupId: string | null;
  created: boolean;
  started: boolean;
  /** the runtime's exec of it was seen to succeed (sched_process_exec) */
  running: boolean;
}

const DEFAULT_GATE_TIMEOUT_MS = 1000;
const MAX_HELD = 4096;
/** conmon's container names, by conmon pid, until its runtime child shows up */
const MAX_CONMON_NAMES = 4096;
const INIT_PIDNS_INO = 0xeffffffc; // PROC_PID_INIT_INO
/** paths by which a process execs a file it holds open: itself, for a runtime */
const SELF_PATH = /^\/(dev\/fd|proc\/self\/fd|proc\/self\/exe)(\/|$)/;

export class ContainerWatcher extends EventEmitter {
  readonly mode: WatchMode;
  /** Why this mode: what was unavailable, if anything. */
  readonly modeReason: string;
  readonly runtimes: readonly RuntimeBinary[];
  private readonly native: NativeWatcher;
  private readonly view: HostView;
  private readonly options: WatchOptions;
  private readonly byRuntimePid = new Map<number, Session>();
  private readonly byInitPid = new Map<number, Session>();
  private readonly conmonNames = new Map<number, string>();
  private readonly closed = new AbortController();
  private readonly onAbort = (): void => this.close();

  constructor(options: WatchOptions = {}) {
    super();
    this.options = options;
    const hostRoot = options.hostRoot ?? '/';
    const pidns = inodeOrNull('/proc/self/ns/pid') ?? 0;
    this.view = { hostRoot, inInitPidns: pidns === INIT_PIDNS_INO };
    this.runtimes = discoverRuntimes({ hostRoot, extraPaths: options.runtimePaths ?? [] });
    const mode = options.mode ?? 'auto';
    this.native = new (loadAddon().Watcher)(
      {
        useBpf: mode !== 'fanotify-only',
        useFanotify: mode !== 'ebpf-only',
        gateTimeoutMs: options.gateTimeoutMs ?? DEFAULT_GATE_TIMEOUT_MS,
        maxHeld: MAX_HELD,
        watcherPidns: pidns,
        watcherInInitPidns: this.view.inInitPidns,
        names: execNames(this.runtimes),
        binaries: this.runtimes.map((r) => ({ path: r.path, kind: r.kind })),
      },
      (batch) => this.onBatch(batch),
    );
    const { status } = this.native;
    try {
      [this.mode, this.modeReason] = chooseMode(mode, status);
    } catch (err) {
      this.native.close();
      throw err;
    }
    options.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (options.signal?.aborted) this.close();
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
    return { ...this.native.stats(), sessions: this.byRuntimePid.size, containers: this.byInitPid.size };
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
        return this.onExec(rec, rec.held);
      case 'runtime-exec': {
        // With fanotify, creations arrive held at the permission check; this
        // record confirms the exec ran, and covers any creation that reached
        // no permission event.
        const session = this.byRuntimePid.get(rec.pid);
        if (session === undefined) this.onExec(rec, false);
        const running = session ?? this.byRuntimePid.get(rec.pid);
        if (running !== undefined) running.running = true;
        return;
      }
      case 'init-exec':
        return this.onInitExec(rec);
      case 'exit':
        return this.onExit(rec);
      case 'lost': {
        const event: LostEvent = { type: 'lost', time: new Date().toISOString(), count: rec.count, reason: rec.reason };
        this.emit('lost', event);
        return;
      }
      case 'gate-expired':
        return;
    }
  }

  private runtimeNameOf(rec: ExecRecord): RuntimeName | null {
    if (rec.flags & RECORD_FLAG.monitor) return 'conmon';
    return (
      this.runtimes.find((r) => r.path === rec.binary)?.runtime ??
      runtimeNameOf(rec.binary) ??
      runtimeNameOf(rec.argv[0] ?? '')
    );
  }

  private onExec(rec: ExecRecord, held: boolean): void {
    let session: Session | null = null;
    try {
      const parsed = this.parse(rec);
      if (parsed !== null && !this.isReexec(rec)) session = this.sessionFor(rec, ...parsed);
      if (session === null && parsed !== null && this.mode === 'fanotify-only') this.onVerbExec(rec, parsed[1]);
    } finally {
      if (held && session === null) this.native.answer(rec.cookie, true);
    }
    if (session === null) return;
    this.byRuntimePid.set(session.runtime.pid, session);
    this.precreate(session, rec, held);
  }

  /**
   * A runtime re-exec'ing itself (crun's /dev/fd/N) repeats its argv: same process, same
   * session. An earlier exec of this pid that never ran (denied, failed) is no session.
   */
  private isReexec(rec: ExecRecord): boolean {
    const existing = this.byRuntimePid.get(rec.pid || rec.vpid);
    if (existing === undefined) return false;
    return existing.running || rec.filename === '' || SELF_PATH.test(rec.filename);
  }

  private parse(rec: ExecRecord): [RuntimeName, RuntimeInvocation] | null {
    const runtime = this.runtimeNameOf(rec);
    if (runtime === null || rec.argv.length === 0) return null;
    try {
      return [runtime, parseRuntimeArgv(rec.argv, runtime)];
    } catch {
      return null;
    }
  }

  /** A new container session if rec is a creation by real root, else null. */
  private sessionFor(rec: ExecRecord, runtime: RuntimeName, invocation: RuntimeInvocation): Session | null {
    if (runtime === 'conmon') {
      if (invocation.name !== null) this.rememberConmon(rec.pid || rec.vpid, invocation.name);
      return null;
    }
    // Only real root creates containers we trust: anyone can exec a runtime with a crafted bundle.
    if (!invocation.isContainerCreation || invocation.id === null || rec.euid !== 0) return null;
    const proc = procDir(this.view, rec);
    const cwd = proc ? readlinkOrNull(`${proc}/cwd`) : null;
    const bundle = invocation.bundle === null ? null : absoluteOrNull(invocation.bundle, cwd);
    const conmonName = this.conmonNames.get(rec.ppid) ?? null;
    return {
      id: invocation.id,
      invocation,
      runtime: { name: runtime, path: rec.binary || rec.filename, pid: rec.pid || rec.vpid, argv: rec.argv },
      bundle,
      meta: resolveAnnotations(null, { bundle, id: invocation.id, conmonName }),
      pidFile: invocation.pidFile === null ? null : absoluteOrNull(invocation.pidFile, cwd),
      initPid: null,
      mntns: null,
      cgroupId: null,
      created: false,
      started: false,
      running: false,
    };
  }

  /** Without the BPF side, `start` is the runtime's `start` exec, seen at its permission check. */
  private onVerbExec(rec: ExecRecord, invocation: RuntimeInvocation): void {
    if (invocation.verb !== 'start' || invocation.id === null || rec.euid !== 0) return;
    const session = [...this.byInitPid.values()].find((s) => s.id === invocation.id && !s.started);
    if (session === undefined) return;
    session.started = true;
    this.publish(this.event('start', session, rec.ts));
  }

  private rememberConmon(pid: number, name: string): void {
    if (this.conmonNames.size >= MAX_CONMON_NAMES) {
      const oldest = this.conmonNames.keys().next().value;
      if (oldest !== undefined) this.conmonNames.delete(oldest);
    }
    this.conmonNames.set(pid, name);
  }

  private precreate(session: Session, rec: ExecRecord, held: boolean): void {
    let spec: OciSpec | null = null;
    let specError: ContainerEvent['specError'] = null;
    const proc = procDir(this.view, rec);
    const root = proc ? `${proc}/root` : this.view.hostRoot;
    if (session.bundle !== null) {
      try {
        spec = readBundleSpec(session.bundle, { root, cwd: null, readFile: loadAddon().readFileInRoot }).spec;
        const { annotations } = specAnnotations(spec);
        session.meta = resolveAnnotations(annotations, {
          bundle: session.bundle,
          id: session.id,
          conmonName: this.conmonNames.get(rec.ppid) ?? null,
        });
      } catch (err) {
        const e = err as OciNotifyError;
        specError = { code: e.code ?? 'ERR_SPEC_READ', message: e.message };
      }
    }
    const event = this.event('precreate', session, rec.ts);
    event.specError = specError;
    event.held = held;
    Object.defineProperty(event, 'spec', { value: spec, enumerable: this.options.includeSpec === true });
    if (!held) {
      this.publish(event);
      return;
    }
    // A listener's exception must not skip the gate.
    try {
      this.publish(event);
    } catch (err) {
      this.reportError(err);
    }
    let verdict: GateVerdict | Promise<GateVerdict>;
    try {
      verdict = this.options.gate ? this.options.gate(event) : 'allow';
    } catch {
      verdict = 'allow';
    }
    // The deadline is enforced natively; a verdict after it is simply late.
    Promise.resolve(verdict).then(
      (v) => this.answer(session, rec.cookie, allows(v)),
      () => this.answer(session, rec.cookie, true),
    );
  }

  private answer(session: Session, cookie: number, allow: boolean): void {
    // A denied exec fails in the caller, which lives on and may exec again.
    if (this.native.answer(cookie, allow) && !allow && this.byRuntimePid.get(session.runtime.pid) === session)
      this.byRuntimePid.delete(session.runtime.pid);
  }

  private reportError(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private onExit(rec: ExitRecord): void {
    if (rec.exitKind === EXIT_KIND.runtime) return this.onRuntimeExit(rec);
    const session = this.byInitPid.get(rec.pid);
    if (session === undefined) return; // a runc init stage, not the container's init
    this.byInitPid.delete(rec.pid);
    const event = this.event('exit', session, rec.ts);
    const { exitCode, signal } = rec.status < 0 ? { exitCode: null, signal: null } : decodeStatus(rec.status);
    event.exitCode = exitCode;
    event.signal = signal;
    this.publish(event);
  }

  private onRuntimeExit(rec: ExitRecord): void {
    const session = this.byRuntimePid.get(rec.pid);
    if (session === undefined) return;
    this.byRuntimePid.delete(rec.pid);
    // `run` reports its container through the init's own exec and exit.
    // status -1: seen through a pidfd, which does not tell; the pid file does.
    if (session.invocation.verb !== 'create' || session.created || rec.status > 0) return;
    const initPid = this.initPidOf(session);
    if (initPid === null) return;
    const proc = hostProcDir(this.view, initPid);
    this.markCreated(session, initPid, inodeOrNull(`${proc}/ns/mnt`), cgroupIdOf(proc), rec.ts);
  }

  private initPidOf(session: Session): number | null {
    const root = this.view.hostRoot;
    if (session.pidFile !== null) return readPidFile(root, session.pidFile);
    const stateDir = session.invocation.root ?? DEFAULT_STATE_ROOTS[session.runtime.name];
    return stateDir === null ? null : readStatePid(root, stateDir, session.id);
  }

  private markCreated(session: Session, initPid: number, mntns: number | null, cgroupId: string | null, ts: bigint): void {
    session.created = true;
    session.initPid = initPid;
    session.mntns = mntns;
    session.cgroupId = cgroupId;
    this.byInitPid.set(initPid, session);
    if (this.mode === 'fanotify-only') this.native.watchPid(initPid, EXIT_KIND.container, session.runtime.pid);
    this.publish(this.event('create', session, ts));
  }

  private onInitExec(rec: InitExecRecord): void {
    const session = this.byInitPid.get(rec.pid) ?? this.byRuntimePid.get(rec.sessionPid);
    if (session === undefined) return;
    if (!session.created) this.markCreated(session, rec.pid, rec.mntns, String(rec.cgroupId), rec.ts);
    this.byInitPid.set(rec.pid, session);
    session.started = true;
    const event = this.event('start', session, rec.ts);
    event.pid = rec.pid;
    this.publish(event);
  }

  private event(type: LifecycleType, s: Session, ts: bigint): ContainerEvent {
    return {
      type,
      time: new Date().toISOString(),
      monotonicNs: ts.toString(),
      id: s.id,
      manager: s.meta.manager,
      runtime: s.runtime,
      bundle: s.bundle,
      pid: s.initPid,
      mntns: s.mntns,
      cgroupId: s.cgroupId,
      pod: s.meta.pod,
      container: s.meta.container,
      sandboxId: s.meta.sandboxId,
    };
  }

  private publish(event: ContainerEvent): void {
    this.emit(event.type, event);
    this.emit('event', event);
  }
}

function allows(v: GateVerdict): boolean {
  if (v === 'deny') return false;
  return !(typeof v === 'object' && v !== null && v.verdict === 'deny');
}

function absoluteOrNull(path: string, cwd: string | null): string | null {
  if (posix.isAbsolute(path)) return posix.normalize(path);
  return cwd === null ? null : posix.join(cwd, path);
}

function chooseMode(
  wanted: 'auto' | WatchMode,
  status: { bpf: boolean; fanotify: boolean; bpfError: string; fanotifyError: string; marked: string[]; markErrors: string[] },
): [WatchMode, string] {
  const fanotify = status.fanotify && status.marked.length > 0;
  const why = [
    status.bpf ? null : `eBPF unavailable (${status.bpfError})`,
    fanotify
      ? null
      : `fanotify unavailable (${status.fanotifyError || status.markErrors.join('; ') || 'no runtime binary found to mark'})`,
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
