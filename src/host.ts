// Reading facts about host processes: their /proc directory, namespaces, cgroup and argv.
import { closeSync, openSync, readFileSync, readSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface HostView {
  /** where the host's filesystem is mounted: '/' unless the watcher runs in a pod */
  hostRoot: string;
  /** true when the watcher shares the host's pid namespace */
  inInitPidns: boolean;
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

export function readlinkOrNull(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** The most argv bytes execve(2) accepts (3/4 of _STK_LIM): more cannot be a runtime's argv. */
const MAX_CMDLINE_BYTES = 6 * 1024 * 1024;

/** A running process's whole argv, or null when it is gone or its argv is larger than execve allows. */
export function readCmdline(proc: string): string[] | null {
  let fd: number;
  try {
    fd = openSync(`${proc}/cmdline`, 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.allocUnsafe(MAX_CMDLINE_BYTES + 1);
    let got = 0;
    for (let n = 1; n > 0 && got < buf.length; got += n) n = readSync(fd, buf, got, buf.length - got, null);
    if (got === 0 || got > MAX_CMDLINE_BYTES) return null;
    const text = buf.toString('utf8', 0, buf[got - 1] === 0 ? got - 1 : got);
    return text.split('\0');
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

export function inodeOrNull(path: string): number | null {
  try {
    return statSync(path).ino;
  } catch {
    return null;
  }
}

let cgroup2Mount: string | null | undefined;

/** Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts). */
function findCgroup2Mount(): string | null {
  if (cgroup2Mount !== undefined) return cgroup2Mount;
  cgroup2Mount = null;
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [left, right] = line.split(' - ');
      if (right?.startsWith('cgroup2 ')) {
        cgroup2Mount = left?.split(' ')[4] ?? null;
        break;
      }
    }
  } catch {
    // no mountinfo: no cgroup ids
  }
  return cgroup2Mount;
}

/** The cgroup v2 id (kernfs inode) of a process, as the kernel's bpf_get_current_cgroup_id() reports it. */
export function cgroupIdOf(proc: string): string | null {
  const mount = findCgroup2Mount();
  if (mount === null) return null;
  try {
    const line = readFileSync(join(proc, 'cgroup'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    if (line === undefined) return null;
    return String(statSync(join(mount, line.slice(3))).ino);
  } catch {
    return null;
  }
}
