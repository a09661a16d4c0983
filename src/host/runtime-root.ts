// Where a runtime's paths resolve - its bundle, pid file and state - once it has exited: the
// host's root for a runtime in the host's mount namespace; for one in a nested node (a kind
// node, its own mount namespace) the root of its parent there (a shim, conmon), which outlives it.
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

/** The root the runtime's paths resolve in once it is gone. */
export function rootAfter(view: HostView, runtime: RuntimePlace): string {
  if (!isNestedMntns(view, runtime.mntns) || !runtime.parent) return view.hostRoot;
  const parent = hostProcDir(view, runtime.parent);
  return inodeOrNull(view.reads, join(parent, 'ns', 'mnt')) === runtime.mntns ? join(parent, 'root') : view.hostRoot;
}
