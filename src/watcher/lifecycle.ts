// A followed container's steps after `precreate`: the runtime's exit is its `create` (or a
// `failed`), its init's exec of the entrypoint its `start`, its init's exit its `exit`; a
// runtime whose exec was refused makes it `denied`. Without the BPF side `start` is the
// runtime's `start` exec; under gVisor it is `runsc start` exiting 0.
import { START_VERB, type RuntimeInvocation, type RuntimeName } from '../argv.js';
import { diagnostic, errnoName } from '../diagnostics.js';
import { decodeStatus, type ContainerEvent, type LifecycleType, type WatchMode } from '../events.js';
import { findInitPid } from '../host/init-pid.js';
import { cgroupIdOf, hostProcDir, inodeOrNull, type HostView } from '../host/proc.js';
import { rootAfter } from '../host/runtime-root.js';
import { defaultStateRoot } from '../host/state.js';
import { EXIT_KIND, type ExecFailedRecord, type ExecRecord, type ExitRecord, type InitExecRecord, type NativeWatcher } from '../native.js';
import type { Containers, Session } from './containers.js';
import type { Enrich } from './enrich.js';
import type { LearnedRoots } from './learned-roots.js';
import { containerEvent, diagnosticContext, type Report } from './report.js';

export class Lifecycle {
  /**
   * `runsc start` processes by pid, with the container they start. gVisor runs the entrypoint
   * in its own kernel, so the host never sees it exec: `runsc start` exiting 0 is the start.
   */
  private readonly sandboxStarts = new Map<number, Session>();

  constructor(
    private readonly view: HostView,
    private readonly mode: WatchMode,
    private readonly containers: Containers,
    private readonly native: Pick<NativeWatcher, 'watchPid'>,
    private readonly report: Pick<Report, 'publish' | 'diagnose'>,
    private readonly enrich: Pick<Enrich, 'checkUnchanged' | 'exited'>,
    private readonly roots: Pick<LearnedRoots, 'learn'>,
  ) {}

  /** A runtime exec that creates nothing: `start` of a container followed, in the modes where that is its start. */
  onStep(rec: ExecRecord, runtime: RuntimeName, invocation: RuntimeInvocation): void {
    if (this.mode === 'fanotify-only') this.onStartExec(rec, invocation);
    else this.onSandboxStart(rec, runtime, invocation);
  }

  onExit(rec: ExitRecord): void {
    if (rec.exitKind === EXIT_KIND.runtime) return this.onRuntimeExit(rec);
    const session = this.containers.exited(rec.pid);
    if (session === undefined) return; // a runc init stage, not the container's init
    this.enrich.exited(session);
    const event = this.event('exit', session, rec.ts);
    const { exitCode, signal } = rec.status < 0 ? { exitCode: null, signal: null } : decodeStatus(rec.status);
    event.exitCode = exitCode;
    event.signal = signal;
    this.report.publish(event);
  }

  onInitExec(rec: InitExecRecord): void {
    const session = this.containers.container(rec.pid) ?? this.containers.runtime(rec.sessionPid) ?? this.misreportedInit(rec);
    if (session === undefined) return;
    if (rec.vpid) session.initVpid = rec.vpid;
    if (!session.created) this.markCreated(session, rec.pid, rec.mntns, String(rec.cgroupId), rec.ts);
    this.containers.addContainer(rec.pid, session);
    session.started = true;
    const event = this.event('start', session, rec.ts);
    event.pid = rec.pid;
    this.report.publish(event);
  }

  /** A held runtime whose exec failed (E2BIG, killed while held): no container, no exit to wait for. */
  onExecFailed(rec: ExecFailedRecord): void {
    const session = this.containers.runtime(rec.pid);
    if (session === undefined || session.running) return;
    this.containers.dropRuntime(rec.pid);
    const event = this.event('failed', session, rec.ts);
    event.reason = `runtime exec failed: ${errnoName(rec.errno)}`;
    this.report.publish(event);
  }

  /** The runtime's exec failed on our answer: no container. The caller lives on and may exec again. */
  deny(session: Session, reason: string): void {
    this.containers.dropRuntime(session.runtime.pid, session);
    const event = this.event('denied', session, session.precreateTs);
    event.reason = reason;
    this.report.publish(event);
  }

  /** Without the BPF side, `start` is the runtime's `start` exec, seen at its permission check. */
  private onStartExec(rec: ExecRecord, invocation: RuntimeInvocation): void {
    if (invocation.verb !== START_VERB || invocation.id === null || rec.euid !== 0) return;
    const session = this.containers.unstarted(invocation.id);
    if (session === undefined) return;
    session.started = true;
    this.report.publish(this.event('start', session, rec.ts));
  }

  private onSandboxStart(rec: ExecRecord, runtime: RuntimeName, invocation: RuntimeInvocation): void {
    if (runtime !== 'runsc' || invocation.verb !== START_VERB || invocation.id === null || rec.euid !== 0) return;
    const session = this.containers.unstarted(
      invocation.id,
      (s) => s.invocation.root === invocation.root && s.runtime.name === 'runsc',
    );
    if (session !== undefined) this.sandboxStarts.set(rec.pid || rec.vpid, session);
  }

  private onRuntimeExit(rec: ExitRecord): void {
    const starting = this.sandboxStarts.get(rec.pid);
    if (starting !== undefined) {
      this.sandboxStarts.delete(rec.pid);
      if (rec.status !== 0 || starting.started) return;
      starting.started = true;
      this.report.publish(this.event('start', starting, rec.ts));
      return;
    }
    const session = this.containers.runtime(rec.pid);
    if (session === undefined) return;
    this.containers.dropRuntime(rec.pid);
    if (session.created) return; // `run`: its container reported itself through the init's exec and exit
    // status -1: seen through a pidfd, which does not tell; the pid file does. `run --detach`
    // exits as soon as its container runs, which may be before the entrypoint's exec.
    const initPid = rec.status <= 0 ? this.initPidOf(session, rec.ts) : null;
    if (initPid === null && rec.status < 0 && session.invocation.verb === 'run') {
      this.unfollowedRun(session, rec.ts);
      return;
    }
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
    this.report.publish(event);
  }

  /**
   * A `run` seen through a pidfd alone (fanotify-only): it may have run its container and
   * removed it before exiting, or failed; its exit status, which would tell, is not seen.
   * `failed` would claim what is not known.
   */
  private unfollowedRun(session: Session, ts: bigint): void {
    const message = `${session.runtime.name} run ${session.id} exited; whether its container ran is not known: without the eBPF side only the runtime's exit is seen, and a foreground run removes its container before it exits`;
    this.report.diagnose(diagnostic('ERR_RUN_UNFOLLOWED', 'degraded', message, diagnosticContext(session, ts)));
  }

  private initPidOf(session: Session, ts: bigint): number | null {
    const found = findInitPid(this.view, {
      root: rootAfter(this.view, { mntns: session.runtimeMntns, parent: session.runtimeParent }),
      pidFile: session.pidFile,
      stateDir: session.invocation.root ?? defaultStateRoot(session.runtime.name),
      id: session.id,
      runtimeMntns: session.runtimeMntns ?? null,
      runtimePidns: session.runtimePidns ?? 0,
      runtimeParent: session.runtimeParent ?? null,
      isKnownInit: (pid) => this.containers.container(pid) !== undefined,
    });
    const impact = found.pid === null ? 'ignored' : 'degraded';
    for (const p of found.problems)
      this.report.diagnose(diagnostic(p.code, impact, p.message, diagnosticContext(session, ts), p.details));
    return found.pid;
  }

  /**
   * The kernel saw the entrypoint exec'd by a descendant of a runtime whose `create` was reported
   * with another pid: the pid file lied. The kernel is right; the container goes on with its pid.
   */
  private misreportedInit(rec: InitExecRecord): Session | undefined {
    if (rec.sessionPid === 0) return undefined;
    const session = this.containers.unstartedOf(rec.sessionPid);
    if (session === undefined || session.initPid === null) return undefined;
    const message = `create reported pid ${session.initPid} for ${session.id}, but its entrypoint ran in pid ${rec.pid}`;
    this.report.diagnose(
      diagnostic('ERR_INIT_PID_MISMATCH', 'degraded', message, diagnosticContext(session, rec.ts), {
        reported: session.initPid,
        actual: rec.pid,
      }),
    );
    this.containers.dropContainer(session.initPid);
    session.initPid = rec.pid;
    session.mntns = rec.mntns;
    session.cgroupId = String(rec.cgroupId);
    return session;
  }

  private markCreated(session: Session, initPid: number, mntns: number | null, cgroupId: string | null, ts: bigint): void {
    session.created = true;
    session.initPid = initPid;
    session.mntns = mntns;
    session.cgroupId = cgroupId;
    this.containers.addContainer(initPid, session);
    this.roots.learn(session);
    if (this.mode === 'fanotify-only') this.native.watchPid(initPid, EXIT_KIND.container, session.runtime.pid);
    this.report.publish(this.event('create', session, ts));
    // After `create`, not on its way: a second read of config.json that only a diagnostic needs.
    this.enrich.checkUnchanged(session, ts);
  }

  private event(type: LifecycleType, session: Session, ts: bigint): ContainerEvent {
    return containerEvent(type, session, ts, this.view);
  }
}
