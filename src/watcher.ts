// ContainerWatcher: turns the reactor's kernel records into container lifecycle events.
import { EventEmitter, on } from 'node:events';
import { posix } from 'node:path';
import { resolveAnnotations, type ResolvedMetadata, type ResolveHints } from './annotations/index.js';
import { CREATION_VERBS, START_VERB, parseRuntimeArgv, runtimeNameOf, type RuntimeInvocation, type RuntimeName } from './argv.js';
import { ArgvError, OciNotifyError, SpecError } from './errors.js';
import { normalizeVerdict, timeoutPolicyFor, type GateVerdict, type TimeoutPolicy, type TimeoutRule, type Verdict } from './gate.js';
import { defaultStateRoot, liveRuntimePids, scanExisting, userStateRoots, type ExistingContainer } from './host/state.js';
import {
  decodeStatus,
  type ContainerEvent,
  type LifecycleType,
  type LostEvent,
  type RuntimeChangeEvent,
  type WatchMode,
} from './events.js';
import { cgroupIdOf, hostProcDir, hostView, inodeOrNull, ownPidns, procDir, readCmdline, startTimeOf, type HostView } from './host/proc.js';
import {
  EXIT_KIND,
  RECORD_FLAG,
  type BinaryRecord,
  type ExecFailedRecord,
  type ExecRecord,
  type ExitRecord,
  type InitExecRecord,
  type NativeRecord,
  type NativeStats,
  type NativeWatcher,
} from './native.js';
import { discoverRuntimes, execNames, runtimeCandidates, type RuntimeBinary } from './host/runtimes.js';
import { readDockerContainer } from './docker-state.js';
import { SandboxPods } from './sandboxes.js';
import {
  RecentPids,
  diagnostic,
  diagnosticFromError,
  mayCreate,
  summarizeRuntime,
  errnoName,
  type DiagnosticContext,
  type DiagnosticEvent,
} from './diagnostics.js';
import { findInitPid } from './host/init-pid.js';
import { livePort, type Port } from './watcher/port.js';
import { SpecCheck } from './spec-check.js';
import { MAX_ANNOTATION_BYTES, readBundleSpec, specAnnotations, type OciSpec } from './spec.js';


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
  /** the init's pid in the watcher's pid namespace, when a kernel record told it */
  initVpid?: number;
  mntns: number | null;
  cgroupId: string | null;
  created: boolean;
  started: boolean;
  /** the runtime's exec of it was seen to succeed (sched_process_exec) */
  running: boolean;
  precreateTs: bigint;
  /** the runtime's mount namespace, which its container's init cannot share */
  runtimeMntns?: number | null;
  euid?: number;
  /** what `precreate` read, to tell whether config.json changed before `create` */
  specCheck?: SpecCheck | null;
}

const DEFAULT_GATE_TIMEOUT_MS = 1000;
/** longest the snapshot waits for runtime processes alive at start before its second scan */
const SNAPSHOT_SETTLE_MS = 10_000;
/** what a container found by a scan was made by, as far as the watcher can tell */
const EXISTING_INVOCATION: RuntimeInvocation = {
  runtime: 'runc',
  verb: 'create',
  id: null,
  bundle: null,
  pidFile: null,
  root: null,
  globalFlags: [],
  name: null,
  runtimePath: null,
  runtimeArgs: [],
  isContainerCreation: true,
  selfReexec: false,
};
const MAX_HELD = 4096;
/**
 * conmon's container names (-n), by the container id it was given (-c), until the runtime
 * creates that container. Not by pid: conmon forks before it spawns the runtime, so the
 * runtime's parent is not the process that exec'd conmon.
 */
const MAX_CONMON_NAMES = 4096;
/** paths by which a process execs a file it holds open: itself, for a runtime */
const SELF_PATH = /^\/(dev\/fd|proc\/self\/fd|proc\/self\/exe)(\/|$)/;

export class ContainerWatcher extends EventEmitter {
  readonly mode: WatchMode;
  /** Why this mode: what was unavailable, if anything. */
  readonly modeReason: string;
  /** as found at start, then kept up to date as runtimes are installed, upgraded or removed */
  private readonly binaries: RuntimeBinary[];
  private readonly native: NativeWatcher;
  private readonly view: HostView;
  private readonly options: WatchOptions;
  private readonly byRuntimePid = new Map<number, Session>();
  private readonly byInitPid = new Map<number, Session>();
  private readonly conmonNames = new Map<string, string>();
  /**
   * `runsc start` processes by pid, with the container they start. gVisor runs the entrypoint
   * in its own kernel, so the host never sees it exec: `runsc start` exiting 0 is the start.
   */
  private readonly sandboxStarts = new Map<number, Session>();
  private readonly sandboxPods = new SandboxPods();
  /** ids of containers reported as `existing`, until their exit */
  private readonly existingIds = new Set<string>();
  /** held precreates by fanotify cookie, until answered or expired */
  private readonly heldByCookie = new Map<number, Session>();
  /** execs already diagnosed at their permission event, not to be diagnosed again when they run */
  private readonly diagnosed = new RecentPids();
  private readonly closed = new AbortController();
  private readonly onAbort = (): void => this.close();

  constructor(options?: WatchOptions);
  /** @internal The reactor and the host reads: a recording, replayed by tests without root. */
  constructor(options: WatchOptions, port: Port);
  constructor(options: WatchOptions = {}, port: Port = livePort) {
    super();
    this.options = options;
    const hostRoot = options.hostRoot ?? '/';
    this.view = hostView(hostRoot, port.reads);
    const pidns = ownPidns(port.reads);
    const discover = { hostRoot, extraPaths: options.runtimePaths ?? [] };
    this.binaries = discoverRuntimes(discover, port.reads);
    const mode = options.mode ?? 'auto';
    this.native = port.open(
      {
        useBpf: mode !== 'fanotify-only',
        useFanotify: mode !== 'ebpf-only',
        gateTimeoutMs: options.gateTimeoutMs ?? DEFAULT_GATE_TIMEOUT_MS,
        allowOnExpiry: (options.onTimeout ?? 'fail-open') === 'fail-open',
        holdVerbs: { create: CREATION_VERBS, start: options.orderStart !== false ? [START_VERB] : [] },
        maxHeld: MAX_HELD,
        watcherPidns: pidns,
        watcherInInitPidns: this.view.inInitPidns,
        names: execNames(this.binaries),
        binaries: this.binaries.map((r) => ({ path: r.path, kind: r.kind })),
        candidates: runtimeCandidates(discover),
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
    // After attaching, so a container created meanwhile is in the stream, the scan or both (deduplicated).
    if (options.snapshot !== false) setImmediate(() => this.snapshot());
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

  /**
   * Reports containers found in the runtimes' state directories that the stream does not
   * already know, then scans again once every runtime process alive at start has exited:
   * a creation whose exec came before we attached writes its state after the first scan.
   */
  private snapshot(): void {
    if (this.closed.signal.aborted) return;
    const reported = new Set<string>();
    const scan = (): ExistingContainer[] => {
      const found = scanExisting(this.view, this.runtimes, userStateRoots(this.options.stateRoots ?? []));
      for (const c of found) this.reportExisting(c, reported);
      return found;
    };
    // Runtimes first, then the scan: one that writes its state after the scan was alive before
    // it, and is waited for; one already gone by then had written its state.
    const live = liveRuntimePids(this.view, this.runtimes);
    const inits = new Set(scan().map((c) => c.initPid));
    const runtimes = live.filter((pid) => !inits.has(pid) && !this.byRuntimePid.has(pid));
    const starts = new Map(runtimes.map((pid) => [pid, startTimeOf(this.view.reads, hostProcDir(this.view, pid))]));
    const deadline = Date.now() + SNAPSHOT_SETTLE_MS;
    const settle = (): void => {
      if (this.closed.signal.aborted) return;
      const alive = [...starts].filter(([pid, t]) => t !== null && startTimeOf(this.view.reads, hostProcDir(this.view, pid)) === t);
      if (alive.length > 0 && Date.now() < deadline) setTimeout(settle, 50).unref();
      else scan();
    };
    if (starts.size > 0) settle();
  }

  private reportExisting(c: ExistingContainer, reported: Set<string>): void {
    const key = `${c.stateDir}:${c.initPid}`;
    if (reported.has(key) || this.byInitPid.has(c.initPid)) return;
    if ([...this.byRuntimePid.values()].some((s) => s.id === c.id)) return; // the stream has it
    reported.add(key);
    const meta = resolveAnnotations(c.annotations, { bundle: c.bundle, id: c.id });
    const proc = hostProcDir(this.view, c.initPid);
    const session: Session = {
      id: c.id,
      invocation: { ...EXISTING_INVOCATION, id: c.id, runtime: c.runtime },
      runtime: { name: c.runtime, path: this.runtimes.find((r) => r.runtime === c.runtime)?.path ?? '', pid: 0, argv: [] },
      bundle: c.bundle,
      meta,
      pidFile: null,
      initPid: c.initPid,
      mntns: inodeOrNull(this.view.reads, `${proc}/ns/mnt`),
      cgroupId: cgroupIdOf(this.view.reads, proc),
      created: true,
      started: c.started,
      running: true,
      precreateTs: 0n,
    };
    this.byInitPid.set(c.initPid, session);
    this.existingIds.add(c.id);
    this.native.trackContainer(c.initPid, 0, c.started, inodeOrNull(this.view.reads, '/proc/self/ns/mnt') ?? 0);
    const event = this.event('existing', session, 0n);
    event.started = c.started;
    this.publish(event);
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
      case 'gate-expired': {
        const session = this.heldByCookie.get(rec.cookie);
        this.heldByCookie.delete(rec.cookie);
        if (session === undefined) return;
        if (!rec.allowed) this.deny(session, 'gate timeout (fail-closed)');
        this.emit('gateTimeout', { id: session.id, allowed: rec.allowed });
        return;
      }
      case 'binary':
        return this.onBinary(rec);
      case 'exec-failed':
        return this.onExecFailed(rec);
    }
  }

  /** A runtime binary was installed, upgraded (a new file at its path) or removed while we watch. */
  private onBinary(rec: BinaryRecord): void {
    const at = this.binaries.findIndex((b) => b.path === rec.path);
    const runtime = this.binaries[at]?.runtime ?? (rec.runtime as RuntimeName);
    if (at >= 0) this.binaries.splice(at, 1);
    if (rec.present) this.binaries.push({ path: rec.path, foundAt: rec.foundAt, runtime, kind: rec.binaryKind });
    const event: RuntimeChangeEvent = {
      type: 'runtime',
      time: new Date().toISOString(),
      change: rec.present ? 'added' : 'removed',
      runtime,
      path: rec.path,
      foundAt: rec.foundAt,
      markError: rec.markError || null,
    };
    this.emit('runtime', event);
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
      else if (session === null && parsed !== null) this.onSandboxStart(rec, ...parsed);
    } finally {
      if (held && session === null) this.native.answer(rec.cookie, true);
    }
    if (session === null) return;
    // Its exec came after we attached, but its record after the snapshot found it (the
    // deadline let it go while the scan ran): it was reported once, as `existing`.
    if (this.existingIds.has(session.id)) {
      if (held) this.native.answer(rec.cookie, true);
      return;
    }
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
      if (!this.wholeArgv(rec)) throw new ArgvError('ERR_ARGV_TRUNCATED', 'argv is longer than could be read');
      return [runtime, parseRuntimeArgv(rec.argv, runtime)];
    } catch (err) {
      this.diagnoseExec(rec, runtime, err);
      return null;
    }
  }

  /**
   * Whether rec.argv is all of it. The kernel side copies the first 8 KiB; a held exec was read
   * whole by the reactor; a running one (ebpf-only mode) has its whole argv in /proc.
   */
  private wholeArgv(rec: ExecRecord): boolean {
    if (!(rec.flags & RECORD_FLAG.argsTruncated)) return true;
    const proc = rec.kind === 'runtime-exec' ? procDir(this.view, rec) : null;
    const argv = proc === null ? null : readCmdline(this.view.reads, proc);
    if (argv === null || argv.length === 0) return false;
    rec.argv = argv;
    return true;
  }

  /** A root exec that names a creation verb but cannot be one: said once, then ignored. */
  private diagnoseExec(rec: ExecRecord, runtime: RuntimeName, err: unknown): void {
    const pid = rec.pid || rec.vpid;
    if (rec.euid !== 0 || runtime === 'conmon' || !mayCreate(rec.argv)) return;
    if (rec.kind === 'runtime-exec' ? this.diagnosed.take(pid) : !this.diagnosed.add(pid)) return;
    const summary = summarizeRuntime({ name: runtime, path: rec.binary || rec.filename, pid, euid: rec.euid, argv: rec.argv });
    this.diagnose(diagnosticFromError(err, 'ERR_ARGV_INVALID_ID', 'ignored', { ts: rec.ts, id: null, bundle: null, runtime: summary }));
  }

  private diagnose(event: DiagnosticEvent): void {
    this.emit('diagnostic', event);
  }

  private diagnosticContext(session: Session, ts: bigint): DiagnosticContext {
    return {
      ts,
      id: session.id,
      bundle: session.bundle,
      runtime: summarizeRuntime({ ...session.runtime, euid: session.euid ?? 0 }),
    };
  }

  /** A held runtime whose exec failed (E2BIG, killed while held): no container, no exit to wait for. */
  private onExecFailed(rec: ExecFailedRecord): void {
    this.diagnosed.take(rec.pid);
    const session = this.byRuntimePid.get(rec.pid);
    if (session === undefined || session.running) return;
    this.byRuntimePid.delete(rec.pid);
    const event = this.event('failed', session, rec.ts);
    event.reason = `runtime exec failed: ${errnoName(rec.errno)}`;
    this.publish(event);
  }

  /** A new container session if rec is a creation by real root, else null. */
  private sessionFor(rec: ExecRecord, runtime: RuntimeName, invocation: RuntimeInvocation): Session | null {
    if (runtime === 'conmon') {
      if (invocation.name !== null && invocation.id !== null && rec.euid === 0) this.rememberConmon(invocation.id, invocation.name);
      return null;
    }
    // Only real root creates containers we trust: anyone can exec a runtime with a crafted bundle.
    if (!invocation.isContainerCreation || invocation.id === null || rec.euid !== 0) return null;
    const proc = procDir(this.view, rec);
    // Read only for a relative path: the first look at a new process's /proc costs ~40 us.
    const relative = [invocation.bundle, invocation.pidFile].some((p) => p !== null && !posix.isAbsolute(p));
    const cwd = proc && relative ? this.view.reads.readlink(`${proc}/cwd`) : null;
    const bundle = invocation.bundle === null ? null : absoluteOrNull(invocation.bundle, cwd);
    const conmonName = this.conmonNames.get(invocation.id) ?? null;
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
      precreateTs: rec.ts,
      runtimeMntns: rec.mntns || (proc ? inodeOrNull(this.view.reads, `${proc}/ns/mnt`) : null),
      euid: rec.euid,
      specCheck: null,
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

  private onSandboxStart(rec: ExecRecord, runtime: RuntimeName, invocation: RuntimeInvocation): void {
    if (runtime !== 'runsc' || invocation.verb !== 'start' || invocation.id === null || rec.euid !== 0) return;
    const session = [...this.byInitPid.values()].find(
      (s) => s.id === invocation.id && s.invocation.root === invocation.root && s.runtime.name === 'runsc' && !s.started,
    );
    if (session !== undefined) this.sandboxStarts.set(rec.pid || rec.vpid, session);
  }

  private rememberConmon(id: string, name: string): void {
    if (this.conmonNames.size >= MAX_CONMON_NAMES) {
      const oldest = this.conmonNames.keys().next().value;
      if (oldest !== undefined) this.conmonNames.delete(oldest);
    }
    this.conmonNames.delete(id); // a re-used id is the newest entry
    this.conmonNames.set(id, name);
  }

  private precreate(session: Session, rec: ExecRecord, held: boolean): void {
    let spec: OciSpec | null = null;
    let specError: ContainerEvent['specError'] = null;
    // Built only when something is to be said: this is the path to the listener.
    const ctx = (): DiagnosticContext => this.diagnosticContext(session, rec.ts);
    try {
      if (session.bundle === null) {
        throw new SpecError('ERR_SPEC_RELATIVE_BUNDLE', `bundle ${session.invocation.bundle} is relative and the runtime's cwd is gone`, {
          bundle: session.invocation.bundle,
        });
      }
      const { root, read, bytes } = this.readSpec(session.bundle, rec);
      spec = read.spec;
      session.specCheck = SpecCheck.of(root, read.configPath, bytes);
      const { annotations, dropped } = specAnnotations(spec);
      if (dropped.length > 0) {
        const why = `${dropped.length} annotation(s) of ${read.configPath} are not strings or exceed ${MAX_ANNOTATION_BYTES} bytes`;
        this.diagnose(diagnostic('ERR_SPEC_ANNOTATIONS_DROPPED', 'degraded', why, ctx(), { configPath: read.configPath, keys: dropped }));
      }
      const hints: ResolveHints = { bundle: session.bundle, id: session.id, conmonName: this.conmonNames.get(session.id) ?? null };
      let resolved = resolveAnnotations(annotations, hints);
      if (resolved.manager === 'docker') resolved = resolveAnnotations(annotations, { ...hints, docker: readDockerContainer(this.view.reads, root, spec, session.id) });
      session.meta = this.sandboxPods.resolve(resolved);
    } catch (err) {
      const d = diagnosticFromError(err, 'ERR_SPEC_READ', 'degraded', ctx());
      specError = { code: d.code, message: d.message };
      this.diagnose(d);
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
    const fallback = this.options.onTimeout ?? 'fail-open';
    const policy = timeoutPolicyFor(event, fallback, this.options.timeoutRules ?? []);
    if (policy !== fallback) this.native.setExpiryVerdict(rec.cookie, policy === 'fail-open');
    // A gate that throws or rejects gave no verdict: its container gets what a timeout would.
    const noVerdict: Verdict = { allow: policy === 'fail-open', reason: 'gate failed' };
    this.heldByCookie.set(rec.cookie, session);
    let verdict: Promise<GateVerdict>;
    try {
      verdict = Promise.resolve(this.options.gate ? this.options.gate(event) : 'allow');
    } catch {
      verdict = Promise.reject(new Error('gate threw'));
    }
    // The deadline is enforced natively; a verdict after it is simply late.
    verdict.then(
      (v) => this.settle(session, rec.cookie, normalizeVerdict(v)),
      () => this.settle(session, rec.cookie, noVerdict),
    );
  }

  private settle(session: Session, cookie: number, verdict: Verdict): void {
    this.heldByCookie.delete(cookie);
    if (this.native.answer(cookie, verdict.allow) && !verdict.allow) this.deny(session, verdict.reason ?? 'denied by gate');
  }

  /** The runtime's exec failed on our answer: no container. The caller lives on and may exec again. */
  private deny(session: Session, reason: string): void {
    if (this.byRuntimePid.get(session.runtime.pid) === session) this.byRuntimePid.delete(session.runtime.pid);
    const event = this.event('denied', session, session.precreateTs);
    event.reason = reason;
    this.publish(event);
  }

  private reportError(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private onExit(rec: ExitRecord): void {
    if (rec.exitKind === EXIT_KIND.runtime) return this.onRuntimeExit(rec);
    const session = this.byInitPid.get(rec.pid);
    if (session === undefined) return; // a runc init stage, not the container's init
    this.byInitPid.delete(rec.pid);
    if (session.runtime.pid === 0) this.existingIds.delete(session.id);
    this.sandboxPods.forget(session.meta);
    const event = this.event('exit', session, rec.ts);
    const { exitCode, signal } = rec.status < 0 ? { exitCode: null, signal: null } : decodeStatus(rec.status);
    event.exitCode = exitCode;
    event.signal = signal;
    this.publish(event);
  }

  private onRuntimeExit(rec: ExitRecord): void {
    const starting = this.sandboxStarts.get(rec.pid);
    if (starting !== undefined) {
      this.sandboxStarts.delete(rec.pid);
      if (rec.status !== 0 || starting.started) return;
      starting.started = true;
      this.publish(this.event('start', starting, rec.ts));
      return;
    }
    const session = this.byRuntimePid.get(rec.pid);
    if (session === undefined) return;
    this.byRuntimePid.delete(rec.pid);
    if (session.created) return; // `run`: its container reported itself through the init's exec and exit
    // status -1: seen through a pidfd, which does not tell; the pid file does. `run --detach`
    // exits as soon as its container runs, which may be before the entrypoint's exec.
    const initPid = rec.status <= 0 ? this.initPidOf(session, rec.ts) : null;
    if (initPid === null) {
      this.fail(session, rec);
      return;
    }
    const proc = hostProcDir(this.view, initPid);
    this.markCreated(session, initPid, inodeOrNull(this.view.reads, `${proc}/ns/mnt`), cgroupIdOf(this.view.reads, proc), rec.ts);
  }

  /** A runtime that exited without making a container: a terminal event, not a pending one. */
  private fail(session: Session, rec: ExitRecord): void {
    const event = this.event('failed', session, rec.ts);
    if (rec.status > 0) {
      const { exitCode, signal } = decodeStatus(rec.status);
      event.reason = signal === null ? `runtime exited with code ${exitCode}` : `runtime killed by signal ${signal}`;
    } else {
      event.reason =
        session.invocation.verb === 'create'
          ? 'no init pid: neither the pid file nor the runtime state tells it'
          : 'runtime exited without starting the container';
    }
    this.publish(event);
  }

  private initPidOf(session: Session, ts: bigint): number | null {
    const found = findInitPid(this.view, {
      pidFile: session.pidFile,
      stateDir: session.invocation.root ?? defaultStateRoot(session.runtime.name),
      id: session.id,
      runtimeMntns: session.runtimeMntns ?? null,
      isKnownInit: (pid) => this.byInitPid.has(pid),
    });
    const impact = found.pid === null ? 'ignored' : 'degraded';
    for (const p of found.problems)
      this.diagnose(diagnostic(p.code, impact, p.message, this.diagnosticContext(session, ts), p.details));
    return found.pid;
  }

  /** The runtime (rather than the watcher) read config.json after `precreate`: was it the same file? */
  private checkSpecUnchanged(session: Session, ts: bigint): void {
    const check = session.specCheck;
    session.specCheck = null;
    const why = check?.changedSince(this.view.reads.readFileInRoot, this.view.hostRoot) ?? null;
    if (check == null || why === null) return;
    const message = `${check.configPath} changed between precreate and create (${why}): the metadata reported may not be what the runtime used`;
    this.diagnose(diagnostic('ERR_SPEC_CHANGED', 'degraded', message, this.diagnosticContext(session, ts), { configPath: check.configPath }));
  }

  /**
   * The kernel saw the entrypoint exec'd by a descendant of a runtime whose `create` was reported
   * with another pid: the pid file lied. The kernel is right; the container goes on with its pid.
   */
  private misreportedInit(rec: InitExecRecord): Session | undefined {
    if (rec.sessionPid === 0) return undefined;
    const session = [...this.byInitPid.values()].find((s) => s.runtime.pid === rec.sessionPid && !s.started);
    if (session === undefined || session.initPid === null) return undefined;
    const message = `create reported pid ${session.initPid} for ${session.id}, but its entrypoint ran in pid ${rec.pid}`;
    this.diagnose(
      diagnostic('ERR_INIT_PID_MISMATCH', 'degraded', message, this.diagnosticContext(session, rec.ts), {
        reported: session.initPid,
        actual: rec.pid,
      }),
    );
    this.byInitPid.delete(session.initPid);
    session.initPid = rec.pid;
    session.mntns = rec.mntns;
    session.cgroupId = String(rec.cgroupId);
    return session;
  }

  /**
   * The bundle's spec, read through the runtime's root, where its paths resolve, or through the
   * host's once the runtime is gone (its root no longer opens).
   */
  private readSpec(bundle: string, rec: ExecRecord): { root: string; read: ReturnType<typeof readBundleSpec>; bytes: Buffer | null } {
    const proc = procDir(this.view, rec);
    const attempt = (root: string): { root: string; read: ReturnType<typeof readBundleSpec>; bytes: Buffer | null } => {
      const reader = SpecCheck.recording(this.view.reads.readFileInRoot);
      const read = readBundleSpec(bundle, { root, cwd: null, readFile: reader.readFile });
      return { root, read, bytes: reader.last() };
    };
    if (proc === null) return attempt(this.view.hostRoot);
    try {
      return attempt(`${proc}/root`);
    } catch (err) {
      if (this.view.reads.readlink(`${proc}/root`) !== null) throw err;
      return attempt(this.view.hostRoot);
    }
  }

  private markCreated(session: Session, initPid: number, mntns: number | null, cgroupId: string | null, ts: bigint): void {
    session.created = true;
    session.initPid = initPid;
    session.mntns = mntns;
    session.cgroupId = cgroupId;
    this.byInitPid.set(initPid, session);
    if (this.mode === 'fanotify-only') this.native.watchPid(initPid, EXIT_KIND.container, session.runtime.pid);
    this.publish(this.event('create', session, ts));
    // After `create`, not on its way: a second read of config.json that only a diagnostic needs.
    this.checkSpecUnchanged(session, ts);
  }

  private onInitExec(rec: InitExecRecord): void {
    const session = this.byInitPid.get(rec.pid) ?? this.byRuntimePid.get(rec.sessionPid) ?? this.misreportedInit(rec);
    if (session === undefined) return;
    if (rec.vpid) session.initVpid = rec.vpid;
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
      watcherPid: s.initPid === null ? null : this.view.inInitPidns ? s.initPid : (s.initVpid ?? null),
      mntns: s.mntns,
      cgroupId: s.cgroupId,
      pod: s.meta.pod,
      container: s.meta.container,
      sandboxId: s.meta.sandboxId,
      containerdNamespace: s.meta.containerdNamespace,
      podLabels: s.meta.podLabels,
      restartCount: s.meta.restartCount,
    };
  }

  private publish(event: ContainerEvent): void {
    if (this.closed.signal.aborted) return; // a gate's late verdict, a snapshot's late scan
    this.emit(event.type, event);
    this.emit('event', event);
  }
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
