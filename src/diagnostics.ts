// Diagnostics: what the watcher met and could not take at face value - an argv no runtime
// would accept, a config.json it refused, a pid file that lies - as typed events with stable
// codes. They are bounded in size and carry no env value, file content or annotation value.
import { constants } from 'node:os';
import { CREATION_VERBS, type RuntimeName } from './argv.js';
import { ERROR_CODES, OciNotifyError, type ErrorCode } from './errors.js';

export type DiagnosticCode =
  | Extract<ErrorCode, `ERR_ARGV_${string}` | `ERR_SPEC_${string}`>
  /** annotations that are not strings, or longer than MAX_ANNOTATION_BYTES, were left out */
  | 'ERR_SPEC_ANNOTATIONS_DROPPED'
  /** config.json changed between `precreate` and `create` */
  | 'ERR_SPEC_CHANGED'
  /** the pid file is missing, a symlink, too large or not a pid */
  | 'ERR_PID_FILE'
  /** the pid the runtime's files name cannot be the container's init */
  | 'ERR_INIT_PID_REJECTED'
  /** the kernel saw the entrypoint exec'd by another pid than the one `create` reported */
  | 'ERR_INIT_PID_MISMATCH'
  /** fanotify-only: a runtime's `run` exited, whether its container ran is not seen */
  | 'ERR_RUN_UNFOLLOWED'
  /** the watchdog exited (killed, crashed); the watcher starts another */
  | 'ERR_WATCHDOG_EXITED'
  /** no watchdog could be started or reached: a stalled watcher holds runtimes until it runs again */
  | 'ERR_WATCHDOG_UNAVAILABLE';

export const DIAGNOSTIC_CODES: readonly DiagnosticCode[] = [
  ...ERROR_CODES.filter((c): c is Extract<DiagnosticCode, ErrorCode> => /^ERR_(ARGV|SPEC)_/.test(c)),
  'ERR_SPEC_ANNOTATIONS_DROPPED',
  'ERR_SPEC_CHANGED',
  'ERR_PID_FILE',
  'ERR_INIT_PID_REJECTED',
  'ERR_INIT_PID_MISMATCH',
  'ERR_RUN_UNFOLLOWED',
  'ERR_WATCHDOG_EXITED',
  'ERR_WATCHDOG_UNAVAILABLE',
];

/**
 * 'ignored': the exec is not followed as a container, no lifecycle event comes of it.
 * 'degraded': the container is followed; what the code names is missing or unverified.
 */
export type DiagnosticImpact = 'ignored' | 'degraded';

/** The runtime process, with its argv cut to a bounded head and tail. */
export interface RuntimeSummary {
  name: RuntimeName | null;
  path: string;
  /** host pid, or the watcher's view of it when the host's is unknown */
  pid: number;
  /** effective uid in the initial user namespace: diagnostics are only made for 0 */
  euid: number;
  argc: number;
  /** the first ARGV_HEAD and last ARGV_TAIL arguments, each at most ARG_CHARS characters */
  argv: string[];
  /** arguments left out between head and tail */
  argvOmitted: number;
  /** whether an argument in argv was shortened */
  argvClipped: boolean;
}

export type DiagnosticDetails = Readonly<Record<string, string | number | boolean | null | readonly string[]>>;

export interface DiagnosticEvent {
  type: 'diagnostic';
  time: string;
  /** CLOCK_MONOTONIC ns of the kernel event behind it (the runtime's exec or exit) */
  monotonicNs: string;
  code: DiagnosticCode;
  impact: DiagnosticImpact;
  /** for people; bounded; the code is what programs match */
  message: string;
  /** the container id, when the argv gave a valid one */
  id: string | null;
  bundle: string | null;
  /** null for what concerns the watcher itself (ERR_WATCHDOG_*) */
  runtime: RuntimeSummary | null;
  /** code-specific facts (paths, errno, annotation keys), each bounded */
  details: DiagnosticDetails;
}

export const ARGV_HEAD = 24;
export const ARGV_TAIL = 8;
export const ARG_CHARS = 256;
const MESSAGE_CHARS = 512;
const DETAIL_ITEMS = 16;
/** Error details that name where and why, never what a file or variable holds. */
const SAFE_DETAILS: ReadonlySet<string> = new Set(['configPath', 'errno', 'bytes', 'candidates', 'bundle', 'cwd', 'flag', 'verb', 'id']);

export function clip(text: string, max = ARG_CHARS): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

export function summarizeRuntime(runtime: {
  name: RuntimeName | null;
  path: string;
  pid: number;
  euid: number;
  argv: readonly string[];
}): RuntimeSummary {
  const { argv } = runtime;
  const kept = argv.length <= ARGV_HEAD + ARGV_TAIL ? argv : [...argv.slice(0, ARGV_HEAD), ...argv.slice(-ARGV_TAIL)];
  return {
    name: runtime.name,
    path: clip(runtime.path),
    pid: runtime.pid,
    euid: runtime.euid,
    argc: argv.length,
    argv: kept.map((a) => clip(a)),
    argvOmitted: argv.length - kept.length,
    argvClipped: kept.some((a) => a.length > ARG_CHARS),
  };
}

/** The same prefilter as the reactor's: an argument equal to a creation verb. */
export function mayCreate(argv: readonly string[]): boolean {
  return argv.some((arg, i) => i > 0 && CREATION_VERBS.includes(arg));
}

export interface DiagnosticContext {
  ts: bigint;
  id: string | null;
  bundle: string | null;
  runtime: RuntimeSummary | null;
}

export function diagnostic(
  code: DiagnosticCode,
  impact: DiagnosticImpact,
  message: string,
  ctx: DiagnosticContext,
  details: Record<string, unknown> = {},
): DiagnosticEvent {
  return {
    type: 'diagnostic',
    time: new Date().toISOString(),
    monotonicNs: ctx.ts.toString(),
    code,
    impact,
    message: clip(message, MESSAGE_CHARS),
    id: ctx.id,
    bundle: ctx.bundle,
    runtime: ctx.runtime,
    details: boundedDetails(details),
  };
}

/** A diagnostic for a thrown parser error: its code when it is one of ours, else fallback. */
export function diagnosticFromError(
  err: unknown,
  fallback: DiagnosticCode,
  impact: DiagnosticImpact,
  ctx: DiagnosticContext,
): DiagnosticEvent {
  if (err instanceof OciNotifyError && (DIAGNOSTIC_CODES as readonly string[]).includes(err.code)) {
    const details = Object.fromEntries(Object.entries(err.details ?? {}).filter(([k]) => SAFE_DETAILS.has(k)));
    return diagnostic(err.code as DiagnosticCode, impact, err.message, ctx, details);
  }
  // Not ours: its message could quote anything (V8 quotes JSON source), so it is not passed on.
  return diagnostic(fallback, impact, `unexpected ${(err as Error)?.name ?? typeof err}`, ctx);
}

function boundedDetails(details: Record<string, unknown>): DiagnosticDetails {
  const out: Record<string, string | number | boolean | null | readonly string[]> = {};
  for (const [key, value] of Object.entries(details)) {
    if (typeof value === 'string') out[key] = clip(value);
    else if (typeof value === 'number' || typeof value === 'boolean' || value === null) out[key] = value;
    else if (Array.isArray(value)) out[key] = value.slice(0, DETAIL_ITEMS).map((v) => clip(String(v)));
  }
  return out;
}

/** errno names, and the kernel's internal restart codes a syscall interrupted by a fatal signal returns */
const ERRNO_NAMES: ReadonlyMap<number, string> = new Map([
  ...Object.entries(constants.errno).map(([name, n]) => [n, name] as const),
  [512, 'ERESTARTSYS'],
  [513, 'ERESTARTNOINTR'],
  [514, 'ERESTARTNOHAND'],
  [516, 'ERESTART_RESTARTBLOCK'],
]);

export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** Pids recently diagnosed, so that the same exec seen twice (held, then run) is reported once. */
export class RecentPids {
  private readonly pids = new Set<number>();

  constructor(private readonly capacity = 1024) {}

  /** true the first time pid is added since it was last taken */
  add(pid: number): boolean {
    if (this.pids.has(pid)) return false;
    if (this.pids.size >= this.capacity) {
      const oldest = this.pids.values().next().value;
      if (oldest !== undefined) this.pids.delete(oldest);
    }
    this.pids.add(pid);
    return true;
  }

  take(pid: number): boolean {
    return this.pids.delete(pid);
  }

  get size(): number {
    return this.pids.size;
  }
}
