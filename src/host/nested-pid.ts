// Pids as a runtime in a nested node writes them. A kind node is a container with a pid
// namespace of its own: its runtimes' pid files and state name their containers' inits as
// that namespace sees them, while events carry the host's pids. /proc/PID/status's NSpid
// gives a process's pid in each namespace from the host's down.
import { join } from 'node:path';
import { hostProcDir, inodeOrNull, type HostView } from './proc.js';

const MAX_STATUS_BYTES = 64 * 1024;
const MAX_CHILDREN_BYTES = 64 * 1024;

interface Status {
  /** the pid in each namespace, the host's first */
  nspid: number[];
  ppid: number;
}

function statusOf(view: HostView, pid: number): Status | null {
  const text = view.reads.readHead(join(hostProcDir(view, pid), 'status'), MAX_STATUS_BYTES)?.bytes.toString('latin1');
  const nspid = /^NSpid:\s*(.*)$/m.exec(text ?? '')?.[1]?.trim().split(/\s+/).map(Number);
  const ppid = Number(/^PPid:\s*(\d+)$/m.exec(text ?? '')?.[1]);
  return nspid === undefined || nspid.length === 0 || !Number.isInteger(ppid) ? null : { nspid, ppid };
}

/** The children of every thread of pid: a Go program (a shim) forks from any of them. */
function childrenOf(view: HostView, pid: number): number[] {
  const tasks = join(hostProcDir(view, pid), 'task');
  return (view.reads.readdir(tasks) ?? []).flatMap(({ name }) =>
    (view.reads.readHead(join(tasks, name, 'children'), MAX_CHILDREN_BYTES)?.bytes.toString('latin1') ?? '')
      .split(' ')
      .filter((p) => /^[0-9]+$/.test(p))
      .map(Number),
  );
}

function allPids(view: HostView): number[] {
  const procRoot = view.inInitPidns ? '/proc' : join(view.hostRoot, 'proc');
  return (view.reads.readdir(procRoot) ?? []).filter((d) => /^[0-9]+$/.test(d.name)).map((d) => Number(d.name));
}

/**
 * Whether host process `pid` is the one pid namespace `pidns` calls nsPid: it lives in pidns
 * (its last NSpid), or it is the init of a namespace its parent in pidns made (a container's
 * init), its pid in pidns then at its parent's depth.
 */
function isNamed(view: HostView, pid: number, nsPid: number, pidns: number): boolean {
  const own = statusOf(view, pid);
  if (own === null || own.nspid.length < 2) return false;
  const pidnsOf = (p: number): number | null => inodeOrNull(view.reads, join(hostProcDir(view, p), 'ns', 'pid'));
  if (own.nspid[own.nspid.length - 1] === nsPid && pidnsOf(pid) === pidns) return true;
  const parent = statusOf(view, own.ppid);
  return parent !== null && own.nspid[parent.nspid.length - 1] === nsPid && pidnsOf(own.ppid) === pidns;
}

/**
 * The host pid of what pid namespace pidns calls nsPid: first among the children of
 * `parent` (the runtime's parent: the shim or conmon that reaps the container's init), then
 * among every process on the host. null when none is.
 */
export function hostPidOf(view: HostView, nsPid: number, pidns: number, parent: number | null): number | null {
  const tried = new Set<number>();
  for (const candidates of [() => (parent === null ? [] : childrenOf(view, parent)), () => allPids(view)]) {
    for (const pid of candidates()) {
      if (tried.has(pid)) continue;
      tried.add(pid);
      if (isNamed(view, pid, nsPid, pidns)) return pid;
    }
  }
  return null;
}

/** Whether a runtime in pid namespace pidns writes pids the host does not call so. */
export function isNestedPidns(view: HostView, pidns: number): boolean {
  return pidns !== 0 && view.hostPidns !== 0 && pidns !== view.hostPidns;
}
