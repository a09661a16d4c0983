// Which process is a container's init once `create` returns: what the runtime's pid file or
// state directory names, believed only when the kernel agrees it can be. A pid file lives
// wherever the caller said; whoever can write there can make it name any process.
import { join, posix } from 'node:path';
import { hostPidOf, isNestedPidns } from './nested-pid.js';
import { hostProcDir, inodeOrNull, type HostView } from './proc.js';
import type { HostReads } from './reads.js';

const MAX_PID_FILE_BYTES = 64;
const PID_TEXT = /^[1-9][0-9]{0,9}$/;
const MAX_PID = 0x3fffffff; // PID_MAX_LIMIT

const PID_FILE_ERRNOS: ReadonlyMap<string, string> = new Map([
  ['ENOENT', 'missing'],
  ['ENOTDIR', 'missing'],
  ['ELOOP', 'symlink'],
  ['EXDEV', 'symlink'],
  ['EFBIG', 'too-large'],
  ['ENOTREG', 'not-a-regular-file'],
  ['EISDIR', 'not-a-regular-file'],
]);

export interface InitPidQuery {
  /** where the runtime's paths resolve: the host root, or a nested node's (/proc/PID/root) */
  root: string;
  /** absolute, as the runtime saw it */
  pidFile: string | null;
  /** the runtime's state root (`--root` or its default) */
  stateDir: string | null;
  id: string;
  /** mount namespace of the runtime: a container's init never shares it */
  runtimeMntns: number | null;
  /** pid namespace of the runtime, in which its pid file and state name the init (0: unknown) */
  runtimePidns: number;
  /** the runtime's parent, which reaps the init of what it created (a shim, conmon) */
  runtimeParent: number | null;
  /** whether pid is already another container's init */
  isKnownInit: (pid: number) => boolean;
}

export interface InitPidProblem {
  code: 'ERR_PID_FILE' | 'ERR_INIT_PID_REJECTED';
  message: string;
  details: Record<string, string | number | null>;
}

export interface InitPid {
  pid: number | null;
  /** what was wrong on the way, in order; a pid may still have been found */
  problems: InitPidProblem[];
}

export function findInitPid(view: HostView, q: InitPidQuery): InitPid {
  const problems: InitPidProblem[] = [];
  const accept = (named: number, source: string): number | null => {
    const pid = isNestedPidns(view, q.runtimePidns) ? hostPidOf(view, named, q.runtimePidns, q.runtimeParent) : named;
    const reason = pid === null ? "no host process is that pid of the runtime's pid namespace" : rejection(view, pid, q);
    if (pid !== null && reason === null) return pid;
    problems.push({
      code: 'ERR_INIT_PID_REJECTED',
      message: `${source} names pid ${named}, which cannot be the init of ${q.id}: ${reason}`,
      details: { pid: named, source, reason },
    });
    return null;
  };
  let pid: number | null = null;
  if (q.pidFile !== null) {
    const read = readPidFile(view, q.root, q.pidFile);
    if (typeof read === 'number') pid = accept(read, 'pid file');
    else
      problems.push({
        code: 'ERR_PID_FILE',
        message: `pid file ${q.pidFile} of ${q.id}: ${read}`,
        details: { pidFile: q.pidFile, reason: read },
      });
  }
  if (pid === null && q.stateDir !== null) {
    const fromState = readStatePid(view.reads, q.root, q.stateDir, q.id);
    if (fromState !== null) pid = accept(fromState, 'runtime state');
  }
  return { pid, problems };
}

/** The pid, or why the file does not hold one. */
function readPidFile(view: HostView, root: string, path: string): number | string {
  let text: string;
  try {
    text = view.reads.readFileInRoot(root, path, MAX_PID_FILE_BYTES).toString('latin1').trim();
  } catch (err) {
    const errno = String((err as { code?: unknown }).code ?? '');
    return PID_FILE_ERRNOS.get(errno) ?? `unreadable (${errno || 'error'})`;
  }
  if (!PID_TEXT.test(text) || Number(text) > MAX_PID) return 'not-a-pid';
  return Number(text);
}

/** How much of a state file is read: its pid comes first, the spec it embeds (up to 16 MiB) after. */
const STATE_PREFIX_BYTES = 64 * 1024;
/** runc, youki: Go/serde write the struct in order, the pid right after the validated id. */
const STATE_JSON_PID = /^\{"id":"[\w+,.-]+","init_process_pid":([1-9][0-9]{0,9}),/;

/**
 * The init pid a runtime recorded in its state directory: runc/youki `state.json`, crun `status`.
 * runc's state.json embeds the whole config.json: a large annotation makes it megabytes long,
 * so only its head is read.
 */
export function readStatePid(reads: HostReads, root: string, stateDir: string, id: string): number | null {
  const dir = join(root, posix.join(stateDir, id));
  const state = readHead(reads, join(dir, 'state.json'));
  if (state !== null) {
    const pid = STATE_JSON_PID.exec(state.text)?.[1] ?? (state.whole ? jsonField(state.text, 'init_process_pid') : undefined);
    if (pid !== undefined) return Number(pid);
  }
  const status = readHead(reads, join(dir, 'status'));
  const pid = status?.whole ? jsonField(status.text, 'pid') : undefined;
  return pid === undefined ? null : Number(pid);
}

function readHead(reads: HostReads, path: string): { text: string; whole: boolean } | null {
  const head = reads.readHead(path, STATE_PREFIX_BYTES);
  return head === null ? null : { text: head.bytes.toString('utf8'), whole: head.whole };
}

function jsonField(text: string, key: string): string | undefined {
  try {
    const value = (JSON.parse(text) as Record<string, unknown>)[key];
    return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= MAX_PID ? String(value) : undefined;
  } catch {
    return undefined;
  }
}

function rejection(view: HostView, pid: number, q: InitPidQuery): string | null {
  // A watcher in a pid namespace of its own without the host's /proc (hostRoot) cannot look the
  // pid up: it takes the runtime's word, as it must.
  if (!view.inInitPidns && view.hostRoot === '/') return null;
  const mntns = inodeOrNull(view.reads, `${hostProcDir(view, pid)}/ns/mnt`);
  // Gone already: a short-lived container can start and exit before a busy watcher reads its
  // pid file. The kernel's records of its start and exit follow in order and settle it (and
  // correct a pid file that lied: ERR_INIT_PID_MISMATCH); failing it here would lose them.
  if (mntns === null) return null;
  if (q.runtimeMntns !== null && mntns === q.runtimeMntns) return "it shares the runtime's mount namespace";
  if (q.isKnownInit(pid)) return "it is another container's init";
  return null;
}
