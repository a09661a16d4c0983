// The addon's interface, typed. The one place that loads ocinotify.node (local build or prebuilt).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OciNotifyError } from './errors.js';
import { moduleUrl } from './module-url.js';

interface TaskFields {
  /** bpf_ktime_get_ns() of the kernel event: CLOCK_MONOTONIC. 0 when no BPF record was behind it. */
  ts: bigint;
  cgroupId: bigint;
  mntns: number;
  /** host (initial pid namespace) view; 0 when unknown */
  pid: number;
  tid: number;
  /** the watcher's pid namespace view; 0 when the task is not visible there */
  vpid: number;
  vtid: number;
  ppid: number;
  euid: number;
  /** the task's own pid namespace: a nested node's runtime writes pids as it sees them */
  pidns: number;
  flags: number;
  filename: string;
}

export interface ExecRecord extends TaskFields {
  kind: 'exec' | 'runtime-exec';
  /** non-zero while the exec is held by fanotify */
  cookie: number;
  held: boolean;
  /** the watchdog's answer, when it answered this exec at its permission check for a stalled reactor */
  watchdog: 'allowed' | 'denied' | null;
  argvSource: 'none' | 'sys_enter' | 'sched_exec' | 'proc';
  binary: string;
  argv: string[];
  /** a held creation's config.json, read by the addon while the record was on its way; null when it was not */
  spec: PrefetchedSpec | null;
}

/**
 * config.json as the addon read it ahead (addon/spec_reader.h): the bundle it guessed from the
 * argv, read through root like HostReads.readFileInRoot, at most NativeOptions.maxSpecBytes.
 */
export interface PrefetchedSpec {
  root: string;
  path: string;
  /** null when the read failed (error) or had not returned when the record left (slow) */
  bytes: Uint8Array | null;
  /** the read's errno name (ENOENT, ELOOP, EFBIG, ENOTREG...), '' when it read or is slow */
  error: string;
  /** still reading when the record left: the file system may hang, and JavaScript does not read it */
  slow: boolean;
}

export interface InitExecRecord extends TaskFields {
  kind: 'init-exec';
  sessionPid: number;
  runtimeMntns: number;
}

export interface ExitRecord extends TaskFields {
  kind: 'exit';
  exitKind: number;
  sessionPid: number;
  /** wait(2) status; -1 when seen through a pidfd, which does not tell */
  status: number;
}

export interface GateExpiredRecord {
  kind: 'gate-expired';
  cookie: number;
  /** what the deadline answered */
  allowed: boolean;
}

/** A held exec the watchdog answered, the reactor having stalled past its deadline. */
export interface WatchdogAnsweredRecord {
  kind: 'watchdog-answered';
  cookie: number;
  allowed: boolean;
}

/** The watchdog stood in for a stalled reactor ('takeover', then 'back'), exited, or could not start. */
export interface WatchdogRecord {
  kind: 'watchdog';
  /** CLOCK_MONOTONIC ns of the change (a takeover is told only once the reactor runs again) */
  ts: bigint;
  change: 'takeover' | 'back' | 'exited' | 'unavailable';
  /** 'exited', 'unavailable', a 'back' the watchdog did not give: what happened */
  message: string;
  /** 'takeover': how long the oldest exec it found pending had waited */
  waitedNs: number;
  /** 'back': its answers the kernel took while it stood in */
  allowed: number;
  denied: number;
  /** the watchdog's pid when the watcher spawned it, else 0 */
  pid: number;
}

export interface LostRecord {
  kind: 'lost';
  count: number;
  reason: string;
}

/** A runtime binary appeared at a candidate path (installed, upgraded) or is gone from all of them. */
export interface BinaryRecord {
  kind: 'binary';
  /** resolved through symlinks */
  path: string;
  /** the candidate path that led to it */
  foundAt: string;
  runtime: string;
  binaryKind: number;
  present: boolean;
  /** what the new binary lacks: its fanotify mark (not held), its kernel inode key (the BPF side may miss it); '' when nothing */
  markError: string;
  /** 'exec': learnt from a creation by a runtime known only by name (no candidate path led to it) */
  foundBy: 'path' | 'exec';
  /** 'exec': the runtime's mount namespace, where path is its path; 0 otherwise */
  mntns: number;
  /** 'exec', added: the runtime it was learnt from; 0 otherwise */
  pid: number;
}

/** An exec that looked like a runtime's failed (bpf sys_exit_execve): a held runtime that never ran. */
export interface ExecFailedRecord extends TaskFields {
  kind: 'exec-failed';
  errno: number;
}

export type NativeRecord =
  | ExecRecord
  | InitExecRecord
  | ExitRecord
  | GateExpiredRecord
  | LostRecord
  | BinaryRecord
  | ExecFailedRecord
  | WatchdogAnsweredRecord
  | WatchdogRecord;

/** enum oci_exit_kind of bpf/ocinotify.h: whose exit an 'exit' record reports. */
export interface ExitKinds {
  readonly runtime: number;
  readonly container: number;
  readonly prestart: number;
}

/** enum oci_binary_kind: what a runtime binary is. */
export interface BinaryKinds {
  readonly runtime: number;
  readonly monitor: number;
}

/** enum oci_record_flags: the bits of a record's flags. */
export interface RecordFlags {
  readonly argsTruncated: number;
  readonly execveat: number;
  readonly monitor: number;
  /** a runtime exec of a file known only by its name */
  readonly byName: number;
}

/** The header's enums, as the addon exports them. */
export interface NativeConstants {
  readonly exitKind: ExitKinds;
  readonly binaryKind: BinaryKinds;
  readonly recordFlag: RecordFlags;
}

/**
 * One of the header's enums, read from the addon at first use: importing the package loads no
 * native code. Each member becomes a plain value once read: they are read on every record.
 */
function headerEnum<K extends keyof NativeConstants>(name: K, members: readonly (keyof NativeConstants[K])[]): NativeConstants[K] {
  const values = {} as NativeConstants[K];
  for (const member of members) {
    Object.defineProperty(values, member, {
      enumerable: true,
      configurable: true,
      get: () => {
        const value = loadAddon().constants[name][member];
        Object.defineProperty(values, member, { value, enumerable: true });
        return value;
      },
    });
  }
  return values;
}

export const EXIT_KIND = headerEnum('exitKind', ['runtime', 'container', 'prestart']);
export const BINARY_KIND = headerEnum('binaryKind', ['runtime', 'monitor']);
export const RECORD_FLAG = headerEnum('recordFlag', ['argsTruncated', 'execveat', 'monitor', 'byName']);

export interface NativeOptions {
  useBpf: boolean;
  useFanotify: boolean;
  gateTimeoutMs: number;
  allowOnExpiry: boolean;
  /** the verbs whose execs are held: a creation until its verdict, a start until JS has handled every record before it */
  holdVerbs: { create: readonly string[]; start: readonly string[] };
  maxHeld: number;
  watcherPidns: number;
  watcherInInitPidns: boolean;
  /** the host's procfs: where a runtime found from its exec is opened (/proc/PID/exe) */
  hostProc: string;
  /** that procfs' pid namespace (a kind node's own, in one of its pods); 0: the initial one */
  hostPidns: number;
  names: string[];
  binaries: { path: string; kind: number }[];
  /** every path a runtime may appear at: watched for installs and upgrades */
  candidates: { path: string; runtime: string; kind: number }[];
  /**
   * The process that answers held and new execs while the reactor is stalled (src/watcher/index.ts):
   * spawned beside the addon, or the sidecar listening at socket; allowCreations: what it answers
   * a creation, reading no bundle.
   */
  watchdog: { enabled: boolean; allowCreations: boolean; socket: string };
  /** the largest config.json the addon reads ahead for a held creation (ExecRecord.spec) */
  maxSpecBytes: number;
}

export interface NativeStatus {
  bpf: boolean;
  fanotify: boolean;
  bpfError: string;
  fanotifyError: string;
  marked: string[];
  /** binaries found at start that a mechanism running cannot fully watch, and what they lack */
  binaryErrors: { path: string; error: string }[];
}

export interface NativeStats {
  held: number;
  heldNow: number;
  answeredByJs: number;
  expired: number;
  answeredNative: number;
  ringbufFull: number;
  queueOverflow: number;
  enterUnmatched: number;
  /** held execs whose answer the kernel took from the watchdog */
  answeredByWatchdog: number;
  /** the watchdog's pid when the watcher spawned it and it runs, else 0 */
  watchdogPid: number;
  watchdogStarts: number;
  watchdogTakeovers: number;
  /** answers the watchdog gave while it stood in, that the kernel took */
  watchdogAllowed: number;
  watchdogDenied: number;
}

export interface NativeWatcher {
  readonly status: NativeStatus;
  answer(cookie: number, allow: boolean): boolean;
  /** Reports an 'exit' record of exitKind when pid exits (pidfd; status -1: unknown). */
  watchPid(pid: number, exitKind: number, sessionPid: number): void;
  /** What the deadline answers for this held exec (the watcher-wide default until set). */
  setExpiryVerdict(cookie: number, allow: boolean): boolean;
  /** Follows a container init found by a scan to its entrypoint exec (if not started) and its exit. */
  trackContainer(pid: number, sessionPid: number, started: boolean, runtimeMntns: number): boolean;
  stats(): NativeStats;
  close(): void;
}

export interface InodeKey {
  /** the kernel's dev_t encoding: (major << 20) | minor */
  dev: bigint;
  ino: bigint;
}

export interface InodeKeys {
  /** what stat(2) reports */
  file: InodeKey;
  /** what the kernel (and the BPF side) keys the inode by; null when it cannot be learnt */
  kernel: InodeKey | null;
  keyError: string;
}

interface Addon {
  Watcher: new (options: NativeOptions, onBatch: (batch: NativeRecord[]) => void) => NativeWatcher;
  constants: NativeConstants;
  readFileInRoot(root: string, path: string, maxBytes: number): Buffer;
  /** stat(2)'s and the kernel's key of the inode path names (addon/inode_key.h); throws when it cannot be opened. */
  inodeKeys(path: string): InodeKeys;
  /** Each kernel mechanism, tried on the running kernel: error '' when present (addon/kernel_probe.h). */
  probeKernel(): { name: string; error: string }[];
  /** glibc's malloc_trim(0): free pages of every malloc arena back to the kernel; false if none (or not glibc). */
  trimMalloc(): boolean;
}

let addon: Addon | undefined;

/** The package root: the nearest ancestor holding binding.gyp (src/ in tests, dist/esm|cjs when built). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(moduleUrl));
  while (!existsSync(join(dir, 'binding.gyp'))) {
    const up = dirname(dir);
    if (up === dir) throw new OciNotifyError('ERR_ADDON_MISSING', 'cannot find the ocinotify package root');
    dir = up;
  }
  return dir;
}

/**
 * Where the addon is: a local build (`make build`, `npm install --build-from-source`) wins,
 * then the prebuilt one shipped in the package for this platform (scripts/build-prebuilt.sh).
 */
function addonPath(root: string): string {
  const local = join(root, 'build', 'Release', 'ocinotify.node');
  const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'ocinotify.node');
  return existsSync(local) || !existsSync(prebuilt) ? local : prebuilt;
}

export function loadAddon(): Addon {
  if (addon) return addon;
  const path = addonPath(packageRoot());
  try {
    addon = createRequire(moduleUrl)(path) as Addon;
  } catch (cause) {
    throw new OciNotifyError(
      'ERR_ADDON_MISSING',
      `cannot load the native addon ${path}: no prebuilt addon for ${process.platform}-${process.arch}; run \`make build\` or \`npm install --build-from-source\``,
      { path },
      { cause },
    );
  }
  return addon;
}
