// State roots of runtimes in nested nodes (kind, k3d: a container with its own mount
// namespace), learnt from their containers' creations and remembered under /run/ocinotify/, so
// that a watcher started again finds the containers such a node runs. A root is a path in the
// node's mount namespace: reached through a process of that namespace, as long as one lives.
import { join } from 'node:path';
import { runtimeNameOf, type RuntimeName } from '../argv.js';
import { isNestedPidns } from '../host/nested-pid.js';
import { hostProcDir, inodeOrNull, type HostView } from '../host/proc.js';
import { isNestedMntns, processesInMntns } from '../host/runtime-root.js';
import { defaultStateRoot, type StateRoot } from '../host/state.js';
import type { Session } from './containers.js';
import type { Port } from './port.js';

/** The file, under the port's own directory (/run/ocinotify). */
export const LEARNED_ROOTS_FILE = 'state-roots.json';
const MAX_FILE_BYTES = 1024 * 1024;
/** far more nodes than one host runs */
const MAX_ROOTS = 1024;

interface LearnedRoot {
  runtime: RuntimeName;
  /** the runtime's --root, in its node's mount namespace */
  dir: string;
  mntns: number;
}

function parse(text: string | undefined): LearnedRoot[] {
  try {
    const list = JSON.parse(text ?? '[]') as unknown;
    if (!Array.isArray(list)) return [];
    return list.filter(
      (r): r is LearnedRoot =>
        typeof r === 'object' && r !== null && runtimeNameOf(String(r.runtime)) === r.runtime &&
        typeof r.dir === 'string' && r.dir.startsWith('/') && Number.isInteger(r.mntns) && r.mntns > 0,
    );
  } catch {
    return [];
  }
}

/** a, then what b adds to it: one entry per (dir, node) */
function union(a: LearnedRoot[], b: LearnedRoot[]): LearnedRoot[] {
  return [...a, ...b.filter((r) => !a.some((k) => k.dir === r.dir && k.mntns === r.mntns))];
}

export class LearnedRoots {
  private roots: LearnedRoot[];
  private readonly file: string;

  constructor(
    private readonly view: HostView,
    private readonly port: Pick<Port, 'remember' | 'memoryDir'>,
  ) {
    this.file = join(port.memoryDir, LEARNED_ROOTS_FILE);
    this.roots = this.stored();
  }

  /**
   * A container was created by a runtime: its state root is remembered if it is a nested node's,
   * a mount and a pid namespace of its own (a runtime merely in a mount namespace of its own
   * is found again through the host's /proc; and a watcher in a mount namespace of its own
   * without a host root takes it for the host's).
   */
  learn(session: Session): void {
    const mntns = session.runtimeMntns;
    if (!mntns || !isNestedMntns(this.view, mntns) || !isNestedPidns(this.view, session.runtimePidns ?? 0)) return;
    const dir = session.invocation.root ?? defaultStateRoot(session.runtime.name);
    if (dir === null || this.roots.some((r) => r.dir === dir && r.mntns === mntns)) return;
    // Another watcher on the node may have learnt roots since: they are kept, not overwritten.
    this.roots = union(this.stored(), [...this.roots, { runtime: session.runtime.name, dir, mntns }]).slice(-MAX_ROOTS);
    this.save();
  }

  /** The roots whose node still runs, each through one of its processes; the others are forgotten. */
  stateRoots(): StateRoot[] {
    this.roots = union(this.stored(), this.roots);
    if (this.roots.length === 0) return [];
    const procs = processesInMntns(this.view, new Set(this.roots.map((r) => r.mntns)));
    const live = this.roots.filter((r) => procs.has(r.mntns));
    if (live.length !== this.roots.length) {
      this.roots = live;
      this.save();
    }
    return live.map((r) => {
      const proc = hostProcDir(this.view, procs.get(r.mntns)!);
      const pidns = inodeOrNull(this.view.reads, join(proc, 'ns', 'pid'));
      return { runtime: r.runtime, dir: r.dir, nested: false, base: join(proc, 'root'), mntns: r.mntns, ...(pidns === null ? {} : { pidns }) };
    });
  }

  private stored(): LearnedRoot[] {
    return parse(this.view.reads.readHead(this.file, MAX_FILE_BYTES)?.bytes.toString('utf8'));
  }

  private save(): void {
    this.port.remember(LEARNED_ROOTS_FILE, JSON.stringify(this.roots));
  }
}
