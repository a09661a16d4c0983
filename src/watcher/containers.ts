// The containers the watcher follows, under the three names records give them: the pid of the
// runtime that creates one, the pid of its init, and its id (what `runc start ID` names).
import type { ResolvedMetadata } from '../annotations/index.js';
import type { RuntimeInvocation } from '../argv.js';
import type { ContainerEvent } from '../events.js';
import type { SpecCheck } from './spec-check.js';

export interface Session {
  id: string;
  invocation: RuntimeInvocation;
  runtime: ContainerEvent['runtime'];
  bundle: string | null;
  meta: ResolvedMetadata;
  /** conmon's `-n` for this id, when conmon ran the runtime: podman's container name */
  conmonName: string | null;
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
  /** the runtime's mount namespace, which its container's init cannot share: the node's */
  runtimeMntns?: number | null;
  /** the runtime's pid namespace, in which its pid file names the init (a nested node's own) */
  runtimePidns?: number;
  /** the runtime's parent (a shim, conmon): it reaps the init, and outlives the runtime in its node */
  runtimeParent?: number | null;
  euid?: number;
  /** what `precreate` read, to tell whether config.json changed before `create` */
  specCheck?: SpecCheck | null;
}

/** exited inits remembered (Containers.ended): far more than exit during a snapshot's settling */
const MAX_ENDED = 4096;

export class Containers {
  /** by the pid of the runtime's `create`/`run`, until it exits */
  private readonly byRuntimePid = new Map<number, Session>();
  /** by the host pid of the container's init, until it exits */
  private readonly byInitPid = new Map<number, Session>();
  /**
   * byInitPid again, grouped by id: ids repeat across runtimes and their state roots, and
   * within an id the order is byInitPid's, so the first match is the one it would give.
   */
  private readonly byId = new Map<string, Map<number, Session>>();
  /** ids of containers reported as `existing`, until their exit */
  private readonly existingIds = new Set<string>();
  /**
   * Inits of containers followed and exited since attach, the latest MAX_ENDED: a scan of the
   * state roots may still find their state (not yet deleted, the init not yet reaped).
   */
  private readonly endedInits = new Set<number>();

  counts(): { sessions: number; containers: number } {
    return { sessions: this.byRuntimePid.size, containers: this.byInitPid.size };
  }

  runtime(pid: number): Session | undefined {
    return this.byRuntimePid.get(pid);
  }

  addRuntime(session: Session): void {
    this.byRuntimePid.set(session.runtime.pid, session);
  }

  /** Forgets the runtime of pid; with `only`, only while pid still names that session. */
  dropRuntime(pid: number, only?: Session): void {
    if (only === undefined || this.byRuntimePid.get(pid) === only) this.byRuntimePid.delete(pid);
  }

  /** Whether a runtime followed now is creating a container of this id. */
  creating(id: string): boolean {
    for (const s of this.byRuntimePid.values()) if (s.id === id) return true;
    return false;
  }

  container(initPid: number): Session | undefined {
    return this.byInitPid.get(initPid);
  }

  addContainer(initPid: number, session: Session): void {
    const before = this.byInitPid.get(initPid);
    if (before !== undefined && before.id !== session.id) this.unindex(before.id, initPid);
    this.byInitPid.set(initPid, session);
    let same = this.byId.get(session.id);
    if (same === undefined) this.byId.set(session.id, (same = new Map()));
    same.set(initPid, session);
  }

  /** A container the runtime's state roots showed at start, reported as `existing`. */
  addExisting(session: Session & { initPid: number }): void {
    this.addContainer(session.initPid, session);
    this.existingIds.add(session.id);
  }

  isExisting(id: string): boolean {
    return this.existingIds.has(id);
  }

  /** Forgets the container whose init was initPid: it exited, or its init is another pid. */
  dropContainer(initPid: number): Session | undefined {
    const session = this.byInitPid.get(initPid);
    if (session === undefined) return undefined;
    this.byInitPid.delete(initPid);
    this.unindex(session.id, initPid);
    return session;
  }

  /** The container whose init exited; one found at start is no longer reported as such. */
  exited(initPid: number): Session | undefined {
    const session = this.dropContainer(initPid);
    if (session === undefined) return undefined;
    if (session.runtime.pid === 0) this.existingIds.delete(session.id);
    this.endedInits.delete(initPid); // the newest entry
    this.endedInits.add(initPid);
    if (this.endedInits.size > MAX_ENDED) this.endedInits.delete(this.endedInits.values().next().value!);
    return session;
  }

  /** Whether a container whose init was initPid was followed and exited since attach. */
  ended(initPid: number): boolean {
    return this.endedInits.has(initPid);
  }

  /** The first container of this id not yet started that also passes `where`. */
  unstarted(id: string, where: (s: Session) => boolean = () => true): Session | undefined {
    for (const s of this.byId.get(id)?.values() ?? []) if (!s.started && where(s)) return s;
    return undefined;
  }

  /** The first container not yet started that the runtime of pid created. */
  unstartedOf(runtimePid: number): Session | undefined {
    for (const s of this.byInitPid.values()) if (s.runtime.pid === runtimePid && !s.started) return s;
    return undefined;
  }

  private unindex(id: string, initPid: number): void {
    const same = this.byId.get(id);
    same?.delete(initPid);
    if (same?.size === 0) this.byId.delete(id);
  }
}
