// `ocinotify list`: the containers running now, with their pod metadata, from the runtimes'
// state directories - the same scan the watcher's `existing` events come from, without attaching.
import { resolveAnnotations, type ContainerType, type Manager, type PodRef } from '../annotations/index.js';
import type { RuntimeName } from '../argv.js';
import { cgroupIdOf, hostProcDir, hostView, inodeOrNull } from '../host/proc.js';
import { liveReads } from '../host/reads.js';
import { discoverRuntimes } from '../host/runtimes.js';
import { scanExisting, userStateRoots } from '../host/state.js';
import { LearnedRoots } from '../watcher/learned-roots.js';
import { livePort } from '../watcher/port.js';

export interface ListedContainer {
  id: string;
  runtime: RuntimeName;
  manager: Manager;
  /** host pid of the container's init */
  pid: number;
  /** mount namespace inode of the init, or null when it cannot be read */
  mntns: number | null;
  cgroupId: string | null;
  /** false while the init still waits for `start` */
  started: boolean;
  bundle: string | null;
  pod: PodRef | null;
  container: { name: string | null; type: ContainerType | null; image: string | null };
  sandboxId: string | null;
}

export interface ListOptions {
  /** where the host's / is mounted (in a pod); default '/' */
  hostRoot?: string;
  /** runtime state roots (a runtime's --root) to scan beyond the known ones */
  stateRoots?: readonly string[];
  /** runtime binaries beyond the built-in list (tells a `created` init from a started one) */
  runtimePaths?: readonly string[];
}

/** Every live container under the known (and given) state roots, sorted by namespace, pod, id. */
export function listContainers(options: ListOptions = {}): ListedContainer[] {
  const hostRoot = options.hostRoot ?? '/';
  const view = hostView(hostRoot, liveReads);
  const runtimes = discoverRuntimes({ hostRoot, extraPaths: [...(options.runtimePaths ?? [])] }, view.reads);
  const roots = [...userStateRoots(options.stateRoots ?? []), ...new LearnedRoots(view, livePort).stateRoots()];
  const listed = scanExisting(view, runtimes, roots).map((c): ListedContainer => {
    const meta = resolveAnnotations(c.annotations, { bundle: c.bundle, id: c.id });
    const proc = hostProcDir(view, c.initPid);
    return {
      id: c.id,
      runtime: c.runtime,
      manager: meta.manager,
      pid: c.initPid,
      mntns: inodeOrNull(view.reads, `${proc}/ns/mnt`),
      cgroupId: cgroupIdOf(view.reads, proc),
      started: c.started,
      bundle: c.bundle,
      pod: meta.pod,
      container: meta.container,
      sandboxId: meta.sandboxId,
    };
  });
  const key = (c: ListedContainer) => `${c.pod?.namespace ?? '\uffff'}/${c.pod?.name ?? ''}/${c.id}`;
  return listed.sort((a, b) => key(a).localeCompare(key(b)));
}
