// The snapshot: containers already running when the watcher attached, from the runtimes' state
// roots (src/host/state.ts), reported once as `existing` and followed to their exit.
import { resolveAnnotations } from '../annotations/index.js';
import type { RuntimeInvocation } from '../argv.js';
import { cgroupIdOf, hostProcDir, inodeOrNull, startTimeOf, type HostView } from '../host/proc.js';
import type { RuntimeBinary } from '../host/runtimes.js';
import { liveRuntimePids, scanExisting, type ExistingContainer, type StateRoot } from '../host/state.js';
import type { NativeWatcher } from '../native.js';
import type { Containers, Session } from './containers.js';
import { containerEvent, type Report } from './report.js';

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

export class Existing {
  /** state directory and init pid of each container reported */
  private readonly reported = new Set<string>();

  constructor(
    private readonly view: HostView,
    /** the runtime binaries watched now, kept current by the facade */
    private readonly binaries: readonly RuntimeBinary[],
    /** the state roots beyond the known ones: the caller's, and those learnt from nested nodes */
    private readonly stateRoots: () => readonly StateRoot[],
    private readonly containers: Containers,
    private readonly native: Pick<NativeWatcher, 'trackContainer'>,
    private readonly report: Pick<Report, 'publish'>,
    private readonly closed: AbortSignal,
  ) {}

  /**
   * Reports containers found in the runtimes' state directories that the stream does not
   * already know, then scans again once every runtime process alive at start has exited:
   * a creation whose exec came before we attached writes its state after the first scan.
   */
  snapshot(): void {
    if (this.closed.aborted) return;
    // Runtimes first, then the scan: one that writes its state after the scan was alive before
    // it, and is waited for; one already gone by then had written its state.
    const live = liveRuntimePids(this.view, this.binaries);
    const inits = new Set(this.scan().map((c) => c.initPid));
    const runtimes = live.filter((pid) => !inits.has(pid) && this.containers.runtime(pid) === undefined);
    const starts = new Map(runtimes.map((pid) => [pid, this.startTime(pid)]));
    const deadline = Date.now() + SNAPSHOT_SETTLE_MS;
    const settle = (): void => {
      if (this.closed.aborted) return;
      const alive = [...starts].filter(([pid, t]) => t !== null && this.startTime(pid) === t);
      if (alive.length > 0 && Date.now() < deadline) setTimeout(settle, 50).unref();
      else this.scan();
    };
    if (starts.size > 0) settle();
  }

  private scan(): ExistingContainer[] {
    const found = scanExisting(this.view, this.binaries, this.stateRoots());
    for (const c of found) this.reportExisting(c);
    return found;
  }

  private startTime(pid: number): number | null {
    return startTimeOf(this.view.reads, hostProcDir(this.view, pid));
  }

  private reportExisting(c: ExistingContainer): void {
    const key = `${c.stateDir}:${c.initPid}`;
    if (this.reported.has(key) || this.containers.container(c.initPid) !== undefined) return;
    // Followed from its creation and gone since: its state outlives it until the runtime's delete.
    if (this.containers.ended(c.initPid)) return;
    if (this.containers.creating(c.id)) return; // the stream has it
    this.reported.add(key);
    const proc = hostProcDir(this.view, c.initPid);
    const session: Session & { initPid: number } = {
      id: c.id,
      invocation: { ...EXISTING_INVOCATION, id: c.id, runtime: c.runtime },
      runtime: { name: c.runtime, path: this.binaries.find((r) => r.runtime === c.runtime)?.path ?? '', pid: 0, argv: [] },
      bundle: c.bundle,
      meta: resolveAnnotations(c.annotations, { bundle: c.bundle, id: c.id }),
      conmonName: null,
      pidFile: null,
      initPid: c.initPid,
      mntns: inodeOrNull(this.view.reads, `${proc}/ns/mnt`),
      cgroupId: cgroupIdOf(this.view.reads, proc),
      created: true,
      started: c.started,
      running: true,
      precreateTs: 0n,
      runtimeMntns: c.nodeMntns,
    };
    this.containers.addExisting(session);
    const runtimeMntns = c.nodeMntns ?? inodeOrNull(this.view.reads, '/proc/self/ns/mnt') ?? 0;
    this.native.trackContainer(c.initPid, 0, c.started, runtimeMntns);
    const event = containerEvent('existing', session, 0n, this.view);
    event.started = c.started;
    this.report.publish(event);
  }
}
