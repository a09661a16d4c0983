// Containers that already run when the watcher starts, read from the runtimes' state directories.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RuntimeName } from './argv.js';
import { hostProcDir, type HostView } from './host.js';
import type { RuntimeBinary } from './runtimes.js';

/**
 * Where runtimes keep one directory per container. `nested`: one more level for the
 * manager's namespace (containerd's k8s.io, docker's moby).
 */
const STATE_ROOTS: readonly { runtime: RuntimeName; dir: string; nested: boolean }[] = [
  { runtime: 'runc', dir: '/run/runc', nested: false },
  { runtime: 'runc', dir: '/run/containerd/runc', nested: true },
  { runtime: 'runc', dir: '/run/docker/runtime-runc', nested: true },
  { runtime: 'runc', dir: '/run/k3s/containerd/runc', nested: true },
  { runtime: 'crun', dir: '/run/crun', nested: false },
  { runtime: 'crun', dir: '/run/containerd/crun', nested: true },
  { runtime: 'youki', dir: '/run/youki', nested: false },
];

/** runc embeds the whole spec in its state: 16 MiB of config.json and then some */
const MAX_STATE_BYTES = 64 * 1024 * 1024;

export interface ExistingContainer {
  id: string;
  runtime: RuntimeName;
  /** the runtime's state directory of this container */
  stateDir: string;
  initPid: number;
  bundle: string | null;
  /** from runc's state (its copy of the spec's annotations); null when the state has none */
  annotations: Record<string, string> | null;
  /** false while the init still waits for `start` (it runs the runtime's binary) */
  started: boolean;
}

interface StateFields {
  pid: number;
  startTime: number | null;
  bundle: string | null;
  annotations: Record<string, string> | null;
}

/** runc/youki state.json, or crun's status file. */
function parseState(text: string): StateFields | null {
  const state = JSON.parse(text) as Record<string, unknown>;
  const pid = state.init_process_pid ?? state.pid;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return null;
  const start = state.init_process_start ?? state['process-start-time'];
  const labels = (state.config as { labels?: unknown } | undefined)?.labels;
  let bundle = typeof state.bundle === 'string' ? state.bundle : null;
  let annotations: Record<string, string> | null = null;
  if (Array.isArray(labels)) {
    annotations = {};
    for (const label of labels) {
      if (typeof label !== 'string') continue;
      const eq = label.indexOf('=');
      if (eq <= 0) continue;
      const [key, value] = [label.slice(0, eq), label.slice(eq + 1)];
      if (key === 'bundle') bundle = value;
      else annotations[key] = value;
    }
  }
  return { pid, startTime: typeof start === 'number' ? start : null, bundle, annotations };
}

/** Field 22 of /proc/PID/stat: start time in clock ticks, to tell a pid from its reuse. */
export function startTimeOf(proc: string): number | null {
  try {
    const stat = readFileSync(join(proc, 'stat'), 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const value = Number(fields[19]);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

/** Whether proc runs one of the runtime binaries (or a linkless copy of one): a `created` init. */
function runsRuntime(proc: string, runtimes: readonly RuntimeBinary[]): boolean {
  try {
    const exe = statSync(join(proc, 'exe'));
    if (exe.nlink === 0) return true;
    return runtimes.some((r) => {
      const st = statSync(r.path);
      return st.ino === exe.ino && st.dev === exe.dev;
    });
  } catch {
    return false;
  }
}

function containerDirs(root: string, nested: boolean): string[] {
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(dir, d.name));
    } catch {
      return [];
    }
  };
  return nested ? list(root).flatMap(list) : list(root);
}

function readState(dir: string): StateFields | null {
  for (const name of ['state.json', 'status']) {
    try {
      const path = join(dir, name);
      if (statSync(path).size > MAX_STATE_BYTES) return null;
      return parseState(readFileSync(path, 'utf8'));
    } catch {
      // not this layout, or unreadable
    }
  }
  return null;
}

/** Every live container under the known state roots (and extra ones), as of now. */
export function scanExisting(
  view: HostView,
  runtimes: readonly RuntimeBinary[],
  extraRoots: readonly { runtime: RuntimeName; dir: string; nested: boolean }[] = [],
): ExistingContainer[] {
  const found: ExistingContainer[] = [];
  const seen = new Set<string>();
  for (const root of [...STATE_ROOTS, ...extraRoots]) {
    for (const stateDir of containerDirs(join(view.hostRoot, root.dir), root.nested)) {
      const state = readState(stateDir);
      if (state === null) continue;
      const proc = hostProcDir(view, state.pid);
      const startTime = startTimeOf(proc);
      if (startTime === null || (state.startTime !== null && state.startTime !== startTime)) continue;
      const key = `${state.pid}:${startTime}`;
      if (seen.has(key)) continue; // the same root reached by two paths
      seen.add(key);
      found.push({
        id: stateDir.slice(stateDir.lastIndexOf('/') + 1),
        runtime: root.runtime,
        stateDir,
        initPid: state.pid,
        bundle: state.bundle,
        annotations: state.annotations,
        started: !runsRuntime(proc, runtimes),
      });
    }
  }
  return found;
}

/** Host pids of processes running a runtime binary right now: creations the stream may have missed the start of. */
export function liveRuntimePids(view: HostView, runtimes: readonly RuntimeBinary[]): number[] {
  const procRoot = view.inInitPidns ? '/proc' : join(view.hostRoot, 'proc');
  const inodes = new Set(
    runtimes.flatMap((r) => {
      try {
        const st = statSync(r.path);
        return [`${st.dev}:${st.ino}`];
      } catch {
        return [];
      }
    }),
  );
  const pids: number[] = [];
  for (const name of readdirSync(procRoot)) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const exe = statSync(join(procRoot, name, 'exe'));
      if (inodes.has(`${exe.dev}:${exe.ino}`)) pids.push(Number(name));
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}
