// What the seams say, and the one way they say it: events built from a session, handed to the
// facade's emitter (src/watcher/index.ts), which drops lifecycle events after close().
import { summarizeRuntime, type DiagnosticContext, type DiagnosticEvent } from '../diagnostics.js';
import type { ContainerEvent, GateTimeoutEvent, LifecycleType } from '../events.js';
import type { HostView } from '../host/proc.js';
import type { Session } from './containers.js';

export interface Report {
  /** A lifecycle event, to its type's listeners and to 'event'. */
  publish(event: ContainerEvent): void;
  diagnose(event: DiagnosticEvent): void;
  /** What must not stop the rest: a listener's exception before a held runtime is answered. */
  error(err: unknown): void;
  gateTimeout(event: GateTimeoutEvent): void;
}

export function containerEvent(type: LifecycleType, s: Session, ts: bigint, view: HostView): ContainerEvent {
  return {
    type,
    time: new Date().toISOString(),
    monotonicNs: ts.toString(),
    id: s.id,
    manager: s.meta.manager,
    runtime: s.runtime,
    bundle: s.bundle,
    pid: s.initPid,
    watcherPid: s.initPid === null ? null : view.inInitPidns ? s.initPid : (s.initVpid ?? null),
    mntns: s.mntns,
    cgroupId: s.cgroupId,
    nodeMntns: s.runtimeMntns ?? null,
    pod: s.meta.pod,
    container: s.meta.container,
    sandboxId: s.meta.sandboxId,
    containerdNamespace: s.meta.containerdNamespace,
    podLabels: s.meta.podLabels,
    restartCount: s.meta.restartCount,
  };
}

export function diagnosticContext(session: Session, ts: bigint): DiagnosticContext {
  return {
    ts,
    id: session.id,
    bundle: session.bundle,
    runtime: summarizeRuntime({ ...session.runtime, euid: session.euid ?? 0 }),
  };
}
