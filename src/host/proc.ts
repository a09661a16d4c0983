// Facts about host processes: their /proc directory, namespaces, cgroup, argv and start time.
import { join } from 'node:path';
import type { HostReads } from './reads.js';

export interface HostView {
  /** where the host's filesystem is mounted: '/' unless the watcher runs in a pod */
  hostRoot: string;
  /** true when the watcher shares the host's pid namespace */
  inInitPidns: boolean;
  /**
   * The pid namespace of the host's /proc (a kind node's own, for a watcher in one of its pods):
   * pids in events are as it sees them. 0 when unknown.
   */
  hostPidns: number;
  /** The host's mount namespace (its pid 1's): a runtime in another one is in a nested node. 0 when unknown. */
  hostMntns: number;
  reads: HostReads;
}

export const INIT_PIDNS_INO = 0xeffffffc; // PROC_PID_INIT_INO

/** How this process sees the host. */
export function hostView(hostRoot: string, reads: HostReads): HostView {
  const inInitPidns = ownPidns(reads) === INIT_PIDNS_INO;
  // Without a host root the watcher is on the host: its own namespaces are the host's (pid 1's
  // may not be open to it), and in a pid namespace of its own it has no host /proc: its host's
  // pids are then the initial namespace's. With one, the host is what the host root's pid 1 runs in.
  const init = hostRoot === '/' ? null : join(hostRoot, 'proc', '1');
  const ns = (name: string): number => inodeOrNull(reads, init === null ? `/proc/self/ns/${name}` : `${init}/ns/${name}`) ?? 0;
  return { hostRoot, inInitPidns, hostPidns: init === null ? INIT_PIDNS_INO : ns('pid'), hostMntns: ns('mnt'), reads };
}

/** The inode of this process's pid namespace, 0 when unknown. */
export function ownPidns(reads: HostReads): number {
  return inodeOrNull(reads, '/proc/self/ns/pid') ?? 0;
}

export interface TaskIds {
  pid: number;
  vpid: number;
}

/** The /proc directory of a task: through our own /proc when we can see it, else the host's. */
export function procDir(view: HostView, task: TaskIds): string | null {
  if (task.vpid) return `/proc/${task.vpid}`;
  if (task.pid && !view.inInitPidns && view.hostRoot !== '/') return join(view.hostRoot, 'proc', String(task.pid));
  return null;
}

/** The host /proc directory of a host pid. */
export function hostProcDir(view: HostView, hostPid: number): string {
  return view.inInitPidns ? `/proc/${hostPid}` : join(view.hostRoot, 'proc', String(hostPid));
}

/** The most argv bytes execve(2) accepts (3/4 of _STK_LIM): more cannot be a runtime's argv. */
const MAX_CMDLINE_BYTES = 6 * 1024 * 1024;

/** A running process's whole argv, or null when it is gone or its argv is larger than execve allows. */
export function readCmdline(reads: HostReads, proc: string): string[] | null {
  const head = reads.readHead(`${proc}/cmdline`, MAX_CMDLINE_BYTES);
  if (head === null || !head.whole || head.bytes.length === 0) return null;
  const { bytes } = head;
  return bytes.toString('utf8', 0, bytes[bytes.length - 1] === 0 ? bytes.length - 1 : bytes.length).split('\0');
}

/** A namespace's inode number (32 bits: the kernel's proc inum), or null. */
export function inodeOrNull(reads: HostReads, path: string): number | null {
  const ino = reads.stat(path)?.ino;
  return ino === undefined ? null : Number(ino);
}

/** mountinfo of a busy node runs to hundreds of KiB; the cgroup2 line is near the top. */
const MAX_MOUNTINFO_BYTES = 16 * 1024 * 1024;
const cgroup2Mounts = new WeakMap<HostReads, string | null>();

/** Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
function cgroup2Mount(reads: HostReads): string | null {
  if (cgroup2Mounts.has(reads)) return cgroup2Mounts.get(reads) ?? null;
  let mount: string | null = null;
  const mountinfo = reads.readHead('/proc/self/mountinfo', MAX_MOUNTINFO_BYTES)?.bytes.toString('utf8') ?? '';
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.startsWith('cgroup2 ')) {
      mount = left?.split(' ')[4] ?? null;
      break;
    }
  }
  cgroup2Mounts.set(reads, mount);
  return mount;
}

/** /proc/PID/cgroup and /proc/PID/stat are a line or a few; this is plenty. */
const MAX_PROC_LINE_BYTES = 64 * 1024;

/** The cgroup v2 id (kernfs inode) of a process, as the kernel's bpf_get_current_cgroup_id() reports it. */
export function cgroupIdOf(reads: HostReads, proc: string): string | null {
  const mount = cgroup2Mount(reads);
  if (mount === null) return null;
  const cgroups = reads.readHead(join(proc, 'cgroup'), MAX_PROC_LINE_BYTES)?.bytes.toString('utf8');
  const line = cgroups?.split('\n').find((l) => l.startsWith('0::'));
  if (line === undefined) return null;
  const ino = reads.stat(join(mount, line.slice(3)))?.ino;
  return ino === undefined ? null : String(ino);
}

/** Field 22 of /proc/PID/stat: start time in clock ticks, to tell a pid from its reuse; null once it has exited. */
export function startTimeOf(reads: HostReads, proc: string): number | null {
  const stat = reads.readHead(join(proc, 'stat'), MAX_PROC_LINE_BYTES)?.bytes.toString('utf8');
  if (stat === undefined) return null;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // A zombie (Z) or a task being reaped (X) has exited: it runs nothing, whatever its /proc says.
  if (fields[0] === 'Z' || fields[0] === 'X') return null;
  const value = Number(fields[19]);
  return Number.isFinite(value) ? value : null;
}
