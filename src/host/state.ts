// The runtimes' state directories: where each keeps one directory per container, and what
// the containers found there are (the watcher's `existing` events, `ocinotify list`).
import { join } from 'node:path';
import type { RuntimeName } from '../argv.js';
import { readBundleSpec, specAnnotations } from '../spec.js';
import { hostPidOf, isNestedPidns } from './nested-pid.js';
import { hostProcDir, startTimeOf, type HostView } from './proc.js';
import type { HostReads } from './reads.js';
import type { RuntimeBinary } from './runtimes.js';

export interface StateRoot {
  runtime: RuntimeName;
  dir: string;
  /** one more level for the manager's namespace (containerd's k8s.io, docker's moby) */
  nested: boolean;
  /** the runtime's own default, where it keeps state when no `--root` is given */
  isDefault?: true;
  /** false: its layout is not one directory per container with a state file (runsc) */
  scanned?: false;
  /** A nested node's root (learnt, src/watcher/learned-roots.ts): where dir resolves instead of the host root */
  base?: string;
  /** ...and that node's mount and pid namespaces: its state names inits by its own pids */
  mntns?: number;
  pidns?: number;
}

/** Every state root the watcher knows; `--state-root` and `stateRoots` add to it. */
export const STATE_ROOTS: readonly StateRoot[] = [
  { runtime: 'runc', dir: '/run/runc', nested: false, isDefault: true },
  { runtime: 'runc', dir: '/run/containerd/runc', nested: true },
  { runtime: 'runc', dir: '/run/docker/runtime-runc', nested: true },
  { runtime: 'runc', dir: '/run/k3s/containerd/runc', nested: true },
  { runtime: 'crun', dir: '/run/crun', nested: false, isDefault: true },
  { runtime: 'crun', dir: '/run/containerd/crun', nested: true },
  { runtime: 'youki', dir: '/run/youki', nested: false, isDefault: true },
  { runtime: 'runsc', dir: '/var/run/runsc', nested: false, isDefault: true, scanned: false },
];

/** The state root a runtime uses when no `--root` is given; null for conmon, which keeps none. */
export function defaultStateRoot(runtime: RuntimeName): string | null {
  return STATE_ROOTS.find((r) => r.runtime === runtime && r.isDefault)?.dir ?? null;
}

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
  /** the mount namespace of the node whose runtime made it (the host's, or a nested node's); null when unknown */
  nodeMntns: number | null;
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

/** Whether proc runs one of the runtime binaries (or a linkless copy of one): a `created` init. */
function runsRuntime(reads: HostReads, proc: string, runtimes: readonly RuntimeBinary[]): boolean {
  const exe = reads.stat(join(proc, 'exe'));
  if (exe === null) return false;
  if (exe.nlink === 0) return true;
  return runtimes.some((r) => {
    if (r.mntns !== undefined) return false; // its path is another mount namespace's
    const st = reads.stat(r.path);
    return st !== null && st.ino === exe.ino && st.dev === exe.dev;
  });
}

function containerDirs(reads: HostReads, root: string, nested: boolean): string[] {
  const list = (dir: string): string[] =>
    (reads.readdir(dir) ?? []).filter((d) => d.isDirectory).map((d) => join(dir, d.name));
  return nested ? list(root).flatMap(list) : list(root);
}

function readState(reads: HostReads, dir: string): StateFields | null {
  for (const name of ['state.json', 'status']) {
    const head = reads.readHead(join(dir, name), MAX_STATE_BYTES);
    if (head === null) continue; // not this layout, or unreadable
    if (!head.whole) return null;
    try {
      return parseState(head.bytes.toString('utf8'));
    } catch {
      // not JSON: not this layout
    }
  }
  return null;
}

/** A bundle's annotations, when the state does not copy them (crun's): null when it cannot be read. */
function bundleAnnotations(reads: HostReads, root: string, bundle: string | null): Record<string, string> | null {
  if (bundle === null) return null;
  try {
    return specAnnotations(readBundleSpec(bundle, { root, cwd: null, readFile: reads.readFileInRoot }).spec).annotations;
  } catch {
    return null;
  }
}

/** Every live container under the known state roots (and extra ones), as of now. */
export function scanExisting(
  view: HostView,
  runtimes: readonly RuntimeBinary[],
  extraRoots: readonly StateRoot[] = [],
): ExistingContainer[] {
  const { reads } = view;
  const found: ExistingContainer[] = [];
  const seen = new Set<string>();
  for (const root of [...STATE_ROOTS, ...extraRoots]) {
    if (root.scanned === false) continue;
    for (const stateDir of containerDirs(reads, join(root.base ?? view.hostRoot, root.dir), root.nested)) {
      const state = readState(reads, stateDir);
      if (state === null) continue;
      const pid = root.pidns !== undefined && isNestedPidns(view, root.pidns) ? hostPidOf(view, state.pid, root.pidns, null) : state.pid;
      if (pid === null) continue;
      const proc = hostProcDir(view, pid);
      const startTime = startTimeOf(reads, proc);
      if (startTime === null || (state.startTime !== null && state.startTime !== startTime)) continue;
      const key = `${pid}:${startTime}`;
      if (seen.has(key)) continue; // the same root reached by two paths
      seen.add(key);
      found.push({
        id: stateDir.slice(stateDir.lastIndexOf('/') + 1),
        runtime: root.runtime,
        stateDir,
        initPid: pid,
        bundle: state.bundle,
        annotations: state.annotations ?? bundleAnnotations(reads, root.base ?? view.hostRoot, state.bundle),
        started: !runsRuntime(reads, proc, runtimes),
        nodeMntns: root.mntns ?? (view.hostMntns || null),
      });
    }
  }
  return found;
}

/** Host pids of processes running a runtime binary right now: creations the stream may have missed the start of. */
export function liveRuntimePids(view: HostView, runtimes: readonly RuntimeBinary[]): number[] {
  const { reads } = view;
  const procRoot = view.inInitPidns ? '/proc' : join(view.hostRoot, 'proc');
  const inodes = new Set(
    runtimes.flatMap((r) => {
      if (r.mntns !== undefined) return []; // its path is another mount namespace's
      const st = reads.stat(r.path);
      return st === null ? [] : [`${st.dev}:${st.ino}`];
    }),
  );
  const pids: number[] = [];
  for (const { name } of reads.readdir(procRoot) ?? []) {
    if (!/^[0-9]+$/.test(name)) continue;
    const exe = reads.stat(join(procRoot, name, 'exe')); // null: gone, or a kernel thread
    if (exe !== null && inodes.has(`${exe.dev}:${exe.ino}`)) pids.push(Number(name));
  }
  return pids;
}

/** State roots the user named (`--state-root`): runc's layout, one directory per container. */
export function userStateRoots(dirs: readonly string[]): StateRoot[] {
  return dirs.map((dir) => ({ runtime: 'runc', dir, nested: false }));
}
