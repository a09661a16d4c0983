// What this host offers ocinotify, checked for real: the same probes the watcher's mode choice uses.
import { closeSync, constants, existsSync, openSync, readFileSync, readSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { ContainerWatcher } from '../watcher/index.js';
import { discoverRuntimes, type RuntimeBinary } from '../host/runtimes.js';
import type { WatchMode } from '../events.js';
import { loadAddon, type InodeKey } from '../native.js';
import { MECHANISMS } from './mechanisms.js';

export interface MechanismCheck {
  name: string;
  /** the first Linux release that has it */
  since: string;
  ok: boolean;
  /** why the probe failed; '' when ok */
  error: string;
  /** what this kernel gets without it; '' when ok */
  without: string;
}

export interface RuntimeCheck {
  runtime: string;
  path: string;
  foundAt: string;
  /** the filesystem the binary is on (statfs magic, named when known) */
  filesystem: string;
  /** stat(2)'s device (major:minor) and inode */
  statKey: string;
  /** the kernel's, which the BPF side reads; null when it cannot be learnt */
  kernelKey: string | null;
  /** why the kernel's key is unknown: the BPF side then keys it by stat(2) and may miss it */
  keyError: string | null;
}

export interface DoctorReport {
  kernel: string;
  btf: boolean;
  euid: number;
  capabilities: { effective: string; missing: string[] };
  /** each kernel mechanism, tried on this kernel */
  mechanisms: MechanismCheck[];
  runtimes: RuntimeCheck[];
  ebpf: { ok: boolean; error: string };
  fanotifyPermissionEvents: { ok: boolean; error: string };
  /**
   * /proc/sys/kernel/tainted after the probes, and whether the use of fanotify permission
   * events set a flag: Debian's kernels taint themselves (X, 65536) on the first use, and say so
   * in the kernel log; nothing else changes.
   */
  kernelTaint: { flags: number; byFanotify: boolean };
  mode: WatchMode | null;
  modeReason: string;
}

/** Capabilities the full mode needs (bit numbers from linux/capability.h). */
const NEEDED_CAPS: Readonly<Record<string, number>> = {
  CAP_SYS_ADMIN: 21,
  CAP_SYS_PTRACE: 19,
  CAP_DAC_READ_SEARCH: 2,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
};

function effectiveCaps(): bigint {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('CapEff:'));
  return line ? BigInt(`0x${line.slice(7).trim()}`) : 0n;
}

/** statfs magics of the filesystems runtime binaries are found on (linux/magic.h). */
const FILESYSTEMS: Readonly<Record<number, string>> = {
  0xef53: 'ext4',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x794c7630: 'overlayfs',
  0x01021994: 'tmpfs',
  0x73717368: 'squashfs',
  0x2fc12fc1: 'zfs',
};

function filesystemOf(path: string): string {
  try {
    const { type } = statfsSync(path);
    return FILESYSTEMS[type] ?? `0x${type.toString(16)}`;
  } catch (err) {
    return (err as Error).message;
  }
}

function keyText(key: InodeKey): string {
  return `${key.dev >> 20n}:${key.dev & 0xfffffn} ${key.ino}`;
}

/** Debian's patch "fanotify: taint on use of FANOTIFY_ACCESS_PERMISSIONS" sets TAINT_AUX. */
const TAINT_AUX = 1 << 16;
const FANOTIFY_TAINT_LOG = 'Using fanotify permission checks may lead to deadlock; tainting kernel';

function taintFlags(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/tainted', 'utf8').trim());
  } catch {
    return 0;
  }
}

/** Whether the kernel's log (what is left of it in /dev/kmsg) has a line with text. */
function kernelLogHas(text: string): boolean {
  let fd: number;
  try {
    fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  const record = Buffer.alloc(8192);
  try {
    for (;;) {
      try {
        if (record.toString('utf8', 0, readSync(fd, record)).includes(text)) return true;
      } catch (err) {
        // EPIPE: the record was overwritten meanwhile, read on; EAGAIN: the end
        if ((err as NodeJS.ErrnoException).code !== 'EPIPE') return false;
      }
    }
  } finally {
    closeSync(fd);
  }
}

function mechanisms(): MechanismCheck[] {
  const probed = new Map(loadAddon().probeKernel().map((m) => [m.name, m.error]));
  return MECHANISMS.map(({ name, since, without }) => {
    const error = probed.get(name) ?? 'not probed';
    return { name, since, ok: error === '', error, without: error === '' ? '' : without };
  });
}

function runtimeCheck(r: RuntimeBinary): RuntimeCheck {
  const check = { runtime: r.runtime, path: r.path, foundAt: r.foundAt, filesystem: filesystemOf(r.path) };
  try {
    const { file, kernel, keyError } = loadAddon().inodeKeys(r.path);
    return { ...check, statKey: keyText(file), kernelKey: kernel && keyText(kernel), keyError: keyError || null };
  } catch (err) {
    return { ...check, statKey: '', kernelKey: null, keyError: (err as Error).message };
  }
}

export function doctor(options: { hostRoot?: string; runtimePaths?: string[] } = {}): DoctorReport {
  const caps = effectiveCaps();
  const taintBefore = taintFlags();
  const hostRoot = options.hostRoot ?? '/';
  const report: DoctorReport = {
    kernel: release(),
    btf: existsSync('/sys/kernel/btf/vmlinux'),
    euid: process.geteuid?.() ?? -1,
    capabilities: {
      effective: `0x${caps.toString(16)}`,
      missing: Object.entries(NEEDED_CAPS)
        .filter(([, bit]) => (caps & (1n << BigInt(bit))) === 0n)
        .map(([name]) => name),
    },
    mechanisms: mechanisms(),
    runtimes: discoverRuntimes({ hostRoot, extraPaths: options.runtimePaths ?? [] }).map(runtimeCheck),
    ebpf: { ok: false, error: '' },
    fanotifyPermissionEvents: { ok: false, error: '' },
    kernelTaint: { flags: 0, byFanotify: false },
    mode: null,
    modeReason: '',
  };
  for (const [mode, key] of [
    ['ebpf-only', 'ebpf'],
    ['fanotify-only', 'fanotifyPermissionEvents'],
  ] as const) {
    try {
      new ContainerWatcher({ mode, hostRoot, runtimePaths: options.runtimePaths }).close();
      report[key] = { ok: true, error: '' };
    } catch (err) {
      report[key] = { ok: false, error: (err as Error).message };
    }
  }
  try {
    const w = new ContainerWatcher({ hostRoot, runtimePaths: options.runtimePaths });
    report.mode = w.mode;
    report.modeReason = w.modeReason;
    w.close();
  } catch (err) {
    report.modeReason = (err as Error).message;
  }
  const flags = taintFlags();
  const setByProbes = (flags & ~taintBefore & TAINT_AUX) !== 0;
  report.kernelTaint = { flags, byFanotify: (flags & TAINT_AUX) !== 0 && (setByProbes || kernelLogHas(FANOTIFY_TAINT_LOG)) };
  return report;
}
