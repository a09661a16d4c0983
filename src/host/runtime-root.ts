// Where a runtime's paths resolve - its bundle, pid file and state - once it has exited: the
// host's root for a runtime in the host's mount namespace; for one in a nested node (a kind
// node, its own mount namespace) the root of a process of that node that outlives it: its
// parent (a shim, conmon) first.
import { join } from 'node:path';
import { hostProcDir, inodeOrNull, type HostView } from './proc.js';

export interface RuntimePlace {
  /** the runtime's mount namespace, 0 or null when unknown */
  mntns: number | null | undefined;
  /** its parent's host pid, null when unknown */
  parent: number | null | undefined;
}

/** Whether a runtime in this mount namespace is in a node of its own, not on the host. */
export function isNestedMntns(view: HostView, mntns: number | null | undefined): boolean {
  return !!mntns && view.hostMntns !== 0 && mntns !== view.hostMntns;
}

/**
 * The root the runtime's paths resolve in once it is gone: its parent's when that is in the
 * same node, else any process's of that node.
 */
export function rootAfter(view: HostView, runtime: RuntimePlace): string {
  const mntns = runtime.mntns;
  if (!mntns || !isNestedMntns(view, mntns)) return view.hostRoot;
  const parent = runtime.parent ? hostProcDir(view, runtime.parent) : null;
  if (parent !== null && inodeOrNull(view.reads, join(parent, 'ns', 'mnt')) === mntns) return join(parent, 'root');
  const any = processesInMntns(view, new Set([mntns])).get(mntns);
  return any === undefined ? view.hostRoot : join(hostProcDir(view, any), 'root');
}

/** One host process in each of these mount namespaces, by namespace; those with none are left out. */
export function processesInMntns(view: HostView, wanted: ReadonlySet<number>): Map<number, number> {
  const found = new Map<number, number>();
  const procRoot = view.inInitPidns ? '/proc' : join(view.hostRoot, 'proc');
  for (const { name } of view.reads.readdir(procRoot) ?? []) {
    if (!/^[0-9]+$/.test(name)) continue;
    const mntns = inodeOrNull(view.reads, join(procRoot, name, 'ns', 'mnt'));
    if (mntns !== null && wanted.has(mntns) && !found.has(mntns)) found.set(mntns, Number(name));
    if (found.size === wanted.size) break;
  }
  return found;
}
