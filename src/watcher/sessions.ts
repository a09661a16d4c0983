// Exec record -> session: which execs of a runtime make a container the watcher follows.
// The kernel side passes runtime-looking execs by name (bpf/), the reactor holds `create`/`run`
// (addon/reactor.cc), argv.ts parses; the decision is here: a creation verb with an id, by real
// root, that is not a runtime re-exec'ing itself. Everything else held is let go at once.
import { posix } from 'node:path';
import { resolveAnnotations } from '../annotations/index.js';
import { parseRuntimeArgv, runtimeNameOf, type RuntimeInvocation, type RuntimeName } from '../argv.js';
import { diagnosticFromError, mayCreate, RecentPids, summarizeRuntime } from '../diagnostics.js';
import { ArgvError } from '../errors.js';
import { inodeOrNull, procDir, readCmdline, type HostView } from '../host/proc.js';
import type { RuntimeBinary } from '../host/runtimes.js';
import { RECORD_FLAG, type ExecRecord, type NativeWatcher } from '../native.js';
import type { Containers, Session } from './containers.js';
import type { Report } from './report.js';

/**
 * conmon's container names (-n), by the container id it was given (-c), until the runtime
 * creates that container. Not by pid: conmon forks before it spawns the runtime, so the
 * runtime's parent is not the process that exec'd conmon.
 */
const MAX_CONMON_NAMES = 4096;
/** paths by which a process execs a file it holds open: itself, for a runtime */
const SELF_PATH = /^\/(dev\/fd|proc\/self\/fd|proc\/self\/exe)(\/|$)/;

/** Where a parsed runtime exec goes. */
export interface ExecRoutes {
  /** A new container's runtime, followed from now on: its `precreate` (enrich.ts, gate.ts). */
  creation(session: Session, rec: ExecRecord, held: boolean): void;
  /** Any other exec of a runtime: maybe a step of a container followed already (lifecycle.ts). */
  step(rec: ExecRecord, runtime: RuntimeName, invocation: RuntimeInvocation): void;
}

export class Sessions {
  private readonly conmonNames = new Map<string, string>();
  /** execs already diagnosed at their permission event, not to be diagnosed again when they run */
  private readonly diagnosed = new RecentPids();

  constructor(
    private readonly view: HostView,
    /** the runtime binaries watched now, kept current by the facade */
    private readonly binaries: readonly RuntimeBinary[],
    private readonly containers: Containers,
    private readonly native: Pick<NativeWatcher, 'answer'>,
    private readonly report: Pick<Report, 'diagnose'>,
    private readonly routes: ExecRoutes,
  ) {}

  /** An exec of a runtime binary, held at its permission check when `held`. */
  onExec(rec: ExecRecord, held: boolean): void {
    let session: Session | null = null;
    try {
      const parsed = this.parse(rec);
      if (parsed !== null && !this.isReexec(rec)) session = this.sessionFor(rec, parsed[0], parsed[1]);
      if (session === null && parsed !== null) this.routes.step(rec, parsed[0], parsed[1]);
    } finally {
      if (held && session === null) this.native.answer(rec.cookie, true);
    }
    if (session === null) return;
    // Its exec came after we attached, but its record after the snapshot found it (the
    // deadline let it go while the scan ran): it was reported once, as `existing`.
    if (this.containers.isExisting(session.id)) {
      if (held) this.native.answer(rec.cookie, true);
      return;
    }
    this.containers.addRuntime(session);
    this.routes.creation(session, rec, held);
  }

  /**
   * A runtime's exec ran. With fanotify, creations arrive held at the permission check; this
   * record confirms the exec ran, and covers any creation that reached no permission event.
   */
  onRuntimeExec(rec: ExecRecord): void {
    const session = this.containers.runtime(rec.pid);
    if (session === undefined) this.onExec(rec, false);
    const running = session ?? this.containers.runtime(rec.pid);
    if (running !== undefined) running.running = true;
  }

  /** The exec of pid failed and will not run: a later exec of that pid may be diagnosed again. */
  execFailed(pid: number): void {
    this.diagnosed.take(pid);
  }

  private runtimeNameOf(rec: ExecRecord): RuntimeName | null {
    if (rec.flags & RECORD_FLAG.monitor) return 'conmon';
    return (
      this.binaries.find((r) => r.path === rec.binary)?.runtime ??
      runtimeNameOf(rec.binary) ??
      runtimeNameOf(rec.argv[0] ?? '')
    );
  }

  /**
   * A runtime re-exec'ing itself (crun's /dev/fd/N) repeats its argv: same process, same
   * session. An earlier exec of this pid that never ran (denied, failed) is no session.
   */
  private isReexec(rec: ExecRecord): boolean {
    const existing = this.containers.runtime(rec.pid || rec.vpid);
    if (existing === undefined) return false;
    return existing.running || rec.filename === '' || SELF_PATH.test(rec.filename);
  }

  private parse(rec: ExecRecord): [RuntimeName, RuntimeInvocation] | null {
    const runtime = this.runtimeNameOf(rec);
    if (runtime === null || rec.argv.length === 0) return null;
    try {
      if (!this.wholeArgv(rec)) throw new ArgvError('ERR_ARGV_TRUNCATED', 'argv could not be read whole');
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
    this.report.diagnose(diagnosticFromError(err, 'ERR_ARGV_INVALID_ID', 'ignored', { ts: rec.ts, id: null, bundle: null, runtime: summary }));
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
      conmonName,
      pidFile: invocation.pidFile === null ? null : absoluteOrNull(invocation.pidFile, cwd),
      initPid: null,
      mntns: null,
      cgroupId: null,
      created: false,
      started: false,
      running: false,
      precreateTs: rec.ts,
      runtimeMntns: rec.mntns || (proc ? inodeOrNull(this.view.reads, `${proc}/ns/mnt`) : null),
      runtimePidns: rec.pidns,
      runtimeParent: rec.ppid || null,
      euid: rec.euid,
      specCheck: null,
    };
  }

  private rememberConmon(id: string, name: string): void {
    if (this.conmonNames.size >= MAX_CONMON_NAMES) {
      const oldest = this.conmonNames.keys().next().value;
      if (oldest !== undefined) this.conmonNames.delete(oldest);
    }
    this.conmonNames.delete(id); // a re-used id is the newest entry
    this.conmonNames.set(id, name);
  }
}

function absoluteOrNull(path: string, cwd: string | null): string | null {
  if (posix.isAbsolute(path)) return posix.normalize(path);
  return cwd === null ? null : posix.join(cwd, path);
}
