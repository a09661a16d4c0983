// What a watcher holds in the kernel, counted from outside the library: this
// process's fds, fanotify groups and marks, BPF objects, the system-wide BPF
// programs and links carrying our program names, and tracefs mounts.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The BPF programs bpf/ocinotify.bpf.c defines. */
export const PROGRAM_NAMES = [
  'enter_execve',
  'enter_execveat',
  'exit_execve',
  'exit_execveat',
  'sched_exec',
  'sched_fork',
  'sched_exit',
] as const;

export interface KernelState {
  /** open fds of this process */
  fds: number;
  fanotifyGroups: number;
  /** "fanotify ino:" lines over all fanotify groups of this process */
  fanotifyMarks: number;
  /** anon_inode:bpf-link (bpf_link on some kernels) */
  bpfLinks: number;
  bpfProgs: number;
  bpfMaps: number;
  btf: number;
  perfEvents: number;
  /**
   * System-wide (bpftool): programs named like ours, and links to them -
   * those this process holds or that no process holds (pinned or leaked).
   * Those another process holds (another watcher running) are not counted.
   */
  systemProgs: number;
  systemLinks: number;
  /** tracefs lines of /proc/self/mountinfo */
  tracefs: string[];
}

function fdTargets(): { fd: string; target: string }[] {
  const out: { fd: string; target: string }[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.push({ fd, target: readlinkSync(`/proc/self/fd/${fd}`) });
    } catch {
      // the directory's own fd, closed by now
    }
  }
  return out;
}

function fdinfo(fd: string): string {
  try {
    return readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    return '';
  }
}

function bpftool(what: 'prog' | 'link'): Record<string, unknown>[] {
  const out = execFileSync('bpftool', ['-j', what, 'show'], { encoding: 'utf8' });
  return (JSON.parse(out || '[]') as Record<string, unknown>[] | null) ?? [];
}

function field(info: string, name: string): number | null {
  const m = new RegExp(`^${name}:\\s*(\\d+)$`, 'm').exec(info);
  return m ? Number(m[1]) : null;
}

/** BPF program and link ids held through fds by processes other than this one. */
function heldElsewhere(): { progs: Set<number>; links: Set<number> } {
  const progs = new Set<number>();
  const links = new Set<number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      let info: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (!/^anon_inode:bpf[-_](prog|link)$/.test(target)) continue;
        info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      } catch {
        continue;
      }
      const prog = field(info, 'prog_id');
      const link = field(info, 'link_id');
      if (prog !== null) progs.add(prog);
      if (link !== null) links.add(link);
    }
  }
  return { progs, links };
}

/** Our programs' ids (by name) and the links attaching them, on the whole system. */
export function systemBpfIds(): { progs: number[]; links: number[] } {
  const names: readonly string[] = PROGRAM_NAMES;
  const progs = bpftool('prog')
    .filter((p) => names.includes(String(p.name)))
    .map((p) => Number(p.id));
  const links = bpftool('link')
    .filter((l) => progs.includes(Number(l.prog_id)))
    .map((l) => Number(l.id));
  return { progs, links };
}

/** Counts of systemBpfIds() not held by another process. */
export function systemBpf(): { progs: number; links: number } {
  const { progs, links } = systemBpfIds();
  const other = heldElsewhere();
  return {
    progs: progs.filter((id) => !other.progs.has(id)).length,
    links: links.filter((id) => !other.links.has(id)).length,
  };
}

/** The BPF program and link ids this process holds fds for. */
export function ownBpfIds(): { progs: number[]; links: number[] } {
  const progs: number[] = [];
  const links: number[] = [];
  for (const { fd, target } of fdTargets()) {
    if (target === 'anon_inode:bpf-prog') progs.push(field(fdinfo(fd), 'prog_id') ?? -1);
    if (/^anon_inode:bpf[-_]link$/.test(target)) links.push(field(fdinfo(fd), 'link_id') ?? -1);
  }
  return { progs, links };
}

export function tracefsMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - tracefs /.test(l));
}

export function kernelState(): KernelState {
  const fds = fdTargets();
  let fanotifyGroups = 0;
  let fanotifyMarks = 0;
  for (const { fd, target } of fds) {
    const info = target === 'anon_inode:[fanotify]' || target.includes('fanotify') ? fdinfo(fd) : '';
    if (target === 'anon_inode:[fanotify]' || info.includes('fanotify flags')) {
      fanotifyGroups++;
      fanotifyMarks += info.split('\n').filter((l) => l.startsWith('fanotify ino:')).length;
    }
  }
  const count = (t: string): number => fds.filter((f) => f.target === t).length;
  const sys = systemBpf();
  return {
    fds: fds.length,
    fanotifyGroups,
    fanotifyMarks,
    bpfLinks: count('anon_inode:bpf-link') + count('anon_inode:bpf_link'),
    bpfProgs: count('anon_inode:bpf-prog'),
    bpfMaps: count('anon_inode:bpf-map'),
    btf: count('anon_inode:btf'),
    perfEvents: count('anon_inode:[perf_event]'),
    systemProgs: sys.progs,
    systemLinks: sys.links,
    tracefs: tracefsMounts(),
  };
}
