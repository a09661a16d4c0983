// The event schema: what every consumer (API, CLI --json) sees. Field names are stable.
import type { ContainerType, Manager, PodRef } from './annotations/index.js';
import type { RuntimeName } from './argv.js';
import type { OciSpec } from './spec.js';

/**
 * precreate -> create -> start -> exit; precreate -> denied | failed; precreate -> create -> exit
 * (killed or deleted before start); existing (running when the watcher started) -> [start] -> exit.
 */
export type LifecycleType = 'precreate' | 'create' | 'start' | 'exit' | 'denied' | 'failed' | 'existing';

export interface RuntimeRef {
  name: RuntimeName;
  /** the runtime binary as marked (or as exec'd when unknown) */
  path: string;
  /** host pid of the runtime process that ran `create`/`run` */
  pid: number;
  argv: string[];
}

export interface ContainerEvent {
  type: LifecycleType;
  /** wall clock when the watcher produced the event */
  time: string;
  /**
   * CLOCK_MONOTONIC of the kernel event behind this one, in ns, as a decimal string. Without a
   * BPF record behind it (fanotify-only mode, a runtime exec'd by a name the kernel filter does
   * not know) it is the time the watcher saw the permission event or the pidfd's exit.
   */
  monotonicNs: string;
  id: string;
  manager: Manager;
  runtime: RuntimeRef;
  /** absolute bundle directory as the runtime sees it */
  bundle: string | null;
  /** the container's init pid as the host sees it; null before `create` */
  pid: number | null;
  /** the same pid as the watcher's pid namespace sees it: null when it cannot (a pod without hostPID) */
  watcherPid: number | null;
  /** mount namespace inode of the container's init; null before `create` */
  mntns: number | null;
  /** cgroup v2 id of the container's init, as a decimal string; null before `create` */
  cgroupId: string | null;
  /**
   * Mount namespace inode of the runtime that made the container: the node it runs on. A kind
   * or k3d node (a container of its own) has its own; on the host, the host's. null when unknown.
   */
  nodeMntns: number | null;
  pod: PodRef | null;
  container: { name: string | null; type: ContainerType | null; image: string | null };
  sandboxId: string | null;
  /** the containerd namespace from a shim's bundle path (`k8s.io` for CRI, `moby` for docker, ctr's `-n`) */
  containerdNamespace: string | null;
  /** the kubelet's labels as CRI-O records them (`io.kubernetes.cri-o.Labels`): the pod's, on a sandbox */
  podLabels: Record<string, string> | null;
  /** the kubelet's `io.kubernetes.container.restartCount` (CRI-O) */
  restartCount: number | null;
  /** `exit` only: the exit code, 128 + signal when killed */
  exitCode?: number | null;
  /** `exit` only: the terminating signal, or null */
  signal?: number | null;
  /** `precreate` only: why the spec could not be read, or null */
  specError?: { code: string; message: string } | null;
  /** `denied`, `failed`: why */
  reason?: string;
  /** `existing` only: whether the container had already run its entrypoint when it was found */
  started?: boolean;
  /** `precreate` only: whether the runtime is held until the gate answers */
  held?: boolean;
  /**
   * `precreate` only: who answered the runtime's exec: the watcher (held: the gate's verdict or
   * the deadline's), the watchdog (the watcher was stalled; `held: false`, reported once the watcher
   * ran again; the timeout policy answered it), or nobody (`ebpf-only`: nothing is held).
   */
  heldBy?: 'watcher' | 'watchdog' | null;
  /** `precreate` only: the bundle's spec. Not serialised unless `includeSpec` is set: env holds secrets. */
  spec?: OciSpec | null;
}

export interface ReadyEvent {
  type: 'ready';
  mode: WatchMode;
  reason: string;
  runtimes: string[];
}

export interface LostEvent {
  type: 'lost';
  time: string;
  count: number;
  reason: string;
}

/** The budget (`gateTimeoutMs`) answered a held creation before the gate did. */
export interface GateTimeoutEvent {
  /** the container id */
  id: string;
  /** what the deadline answered: true under fail-open */
  allowed: boolean;
  /** who answered at the deadline: the watcher's reactor, or its watchdog when the reactor was stalled */
  by: 'watcher' | 'watchdog';
}

/**
 * The watcher's process did not run (stopped, traced, frozen, starved) and its watchdog answered
 * runtime execs meanwhile ('takeover'), until the watcher ran again ('back'). Both are emitted once
 * the watcher runs again: `time` is then, `at` when it happened.
 */
export interface WatchdogEvent {
  type: 'watchdog';
  time: string;
  change: 'takeover' | 'back';
  /** CLOCK_MONOTONIC ns of the change, as a decimal string */
  monotonicNs: string;
  /** 'takeover': how long the oldest runtime exec the watchdog found pending had waited, in ms */
  waitedMs?: number;
  /** 'back': the watchdog's answers the kernel took while it stood in */
  answered?: { allowed: number; denied: number };
  /** 'back': how long it stood in, in ms */
  durationMs?: number;
  /** 'back': when the watchdog itself exited while standing in */
  reason?: string;
}

/** A runtime binary appeared at a known or given path (installed, upgraded) or is gone from it. */
export interface RuntimeChangeEvent {
  type: 'runtime';
  time: string;
  change: 'added' | 'removed';
  runtime: RuntimeName;
  /** resolved through symlinks */
  path: string;
  /** the known or given path it was found at */
  foundAt: string;
  /**
   * What it lacks, or null: `not held: ...` (fanotify could not mark it), `kernel inode key
   * unknown (...)` (the BPF side keys it by stat(2) and may miss its execs). Also reported,
   * as `added`, for a binary found at start.
   */
  markError: string | null;
  /**
   * 'path': found at a known or given path; 'exec': found from its first exec by real root under
   * a runtime's name (another mount namespace - a kind node's -, an unlisted path): its first
   * creation was reported unheld, the following ones are held.
   */
  foundBy: 'path' | 'exec';
  /** 'exec': the mount namespace of the runtime that ran it, where `path` is its path; else null */
  mntns: number | null;
}

export type WatchMode = 'full' | 'fanotify-only' | 'ebpf-only';

/** Decodes a wait(2) status into the shell's convention. */
export function decodeStatus(status: number): { exitCode: number; signal: number | null } {
  const signal = status & 0x7f;
  return signal === 0 ? { exitCode: (status >> 8) & 0xff, signal: null } : { exitCode: 128 + signal, signal };
}
