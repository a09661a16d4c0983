// What this host offers ocinotify, checked for real: the same probes the watcher's mode choice uses.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { ContainerWatcher } from '../watcher/index.js';
import { discoverRuntimes } from '../host/runtimes.js';
import type { WatchMode } from '../events.js';

export interface DoctorReport {
  kernel: string;
  btf: boolean;
  euid: number;
  capabilities: { effective: string; missing: string[] };
  runtimes: { runtime: string; path: string; foundAt: string }[];
  ebpf: { ok: boolean; error: string };
  fanotifyPermissionEvents: { ok: boolean; error: string };
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

export function doctor(options: { hostRoot?: string; runtimePaths?: string[] } = {}): DoctorReport {
  const caps = effectiveCaps();
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
    runtimes: discoverRuntimes({ hostRoot, extraPaths: options.runtimePaths ?? [] }).map((r) => ({
      runtime: r.runtime,
      path: r.path,
      foundAt: r.foundAt,
    })),
    ebpf: { ok: false, error: '' },
    fanotifyPermissionEvents: { ok: false, error: '' },
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
  return report;
}
