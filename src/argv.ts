import { posix } from 'node:path';
import { ArgvError } from './errors.js';

export type RuntimeName = 'runc' | 'crun' | 'youki' | 'runsc' | 'conmon';

export interface RuntimeInvocation {
  runtime: RuntimeName;
  /** `create`, `run`, `start`, `kill`, `delete`, `state`, ...; null for conmon or a bare runtime. */
  verb: string | null;
  /** Runtimes: the container id positional of the verb; conmon: `-c/--cid`. */
  id: string | null;
  /** As written, possibly relative to the caller's cwd; `.` for create/run without a bundle flag. */
  bundle: string | null;
  /** `--pid-file`; conmon: `-p/--container-pidfile`. */
  pidFile: string | null;
  /** Global `--root`. */
  root: string | null;
  /** Everything between argv[0] and the verb, verbatim. */
  globalFlags: string[];
  /** conmon `-n/--name`. */
  name: string | null;
  /** conmon `-r/--runtime`. */
  runtimePath: string | null;
  /** conmon `--runtime-arg` values, in order. */
  runtimeArgs: string[];
  /** A verb that makes a new container from a bundle (`create`, `run`). */
  isContainerCreation: boolean;
  /** An internal verb the runtime execs itself with (runc `init`, runsc `boot`/`gofer`). */
  selfReexec: boolean;
}

/**
 * How a flag written without `=` treats the argument after it: 'value' always takes it,
 * 'bool' never does, 'optional' takes it only when it is one of OPTIONAL_VALUES.
 */
type FlagKind = 'value' | 'bool' | 'optional';

interface Flag {
  canonical: string;
  kind: FlagKind;
}

/** Flag names without dashes; one-letter names are short flags. */
type FlagTable = ReadonlyMap<string, Flag>;

/**
 * 'go': Go's flag package (runc, runsc): `-name` and `--name` are the same flag, a boolean
 * never takes the next argument. 'gnu': argp, clap, GOption (crun, youki, conmon): long
 * flags take two dashes, short flags one dash and may be clustered (`-dt`, `-bDIR`).
 */
type FlagStyle = 'go' | 'gnu';

interface RuntimeGrammar {
  style: FlagStyle;
  global: FlagTable;
  verbs: ReadonlyMap<string, FlagTable>;
  selfReexecVerbs: ReadonlySet<string>;
}

/** runc's `--rootless` is a string flag whose only values are these. */
const OPTIONAL_VALUES: ReadonlySet<string> = new Set(['true', 'false', 'auto']);

/** Each name may list aliases after `|`; the first is the canonical name. */
function flagTable(kinds: Partial<Record<FlagKind, readonly string[]>>): FlagTable {
  const table = new Map<string, Flag>();
  for (const [kind, specs] of Object.entries(kinds) as [FlagKind, readonly string[]][]) {
    for (const spec of specs) {
      const names = spec.split('|');
      const flag = { canonical: names[0] ?? spec, kind };
      for (const name of names) table.set(name, flag);
    }
  }
  return table;
}

const NO_FLAGS: FlagTable = new Map();

const EXEC_FLAGS = flagTable({
  value: [
    'console-socket', 'pidfd-socket', 'cwd', 'env|e', 'user|u', 'additional-gids|g', 'process|p',
    'apparmor', 'process-label', 'cap|c', 'preserve-fds', 'cgroup', 'pid-file',
  ],
  bool: ['tty|t', 'detach|d', 'no-new-privs', 'ignore-paused'],
});

const PS_FLAGS = flagTable({ value: ['format|f'] });

function verbTables(createRun: FlagTable): ReadonlyMap<string, FlagTable> {
  return new Map([
    ['create', createRun],
    ['run', createRun],
    ['exec', EXEC_FLAGS],
    ['ps', PS_FLAGS],
  ]);
}

const RUNC: RuntimeGrammar = {
  style: 'go',
  global: flagTable({
    value: ['root', 'log', 'log-format', 'criu'],
    optional: ['rootless'],
    bool: ['debug', 'systemd-cgroup', 'help|h', 'version|v'],
  }),
  verbs: verbTables(flagTable({
    value: ['bundle|b', 'config', 'console-socket', 'pidfd-socket', 'pid-file', 'preserve-fds'],
    bool: ['no-pivot', 'no-new-keyring', 'detach|d', 'keep', 'no-subreaper'],
  })),
  selfReexecVerbs: new Set(['init']),
};

const CRUN: RuntimeGrammar = {
  style: 'gnu',
  global: flagTable({
    value: ['root', 'log', 'log-format', 'log-level', 'cgroup-manager'],
    // crun ignores --rootless and accepts it only so that runc command lines work.
    optional: ['rootless'],
    bool: ['debug', 'systemd-cgroup', 'version|v|V'],
  }),
  verbs: verbTables(flagTable({
    value: ['bundle|b', 'config|f', 'console-socket', 'pid-file', 'preserve-fds'],
    bool: ['no-pivot', 'no-new-keyring', 'no-subreaper', 'detach|d', 'keep'],
  })),
  // crun's only re-exec (its cloned binary, through /dev/fd/N) repeats the original argv.
  selfReexecVerbs: new Set(),
};

const YOUKI: RuntimeGrammar = {
  style: 'gnu',
  global: flagTable({
    value: ['log|l', 'log-format', 'log-level', 'root|r'],
    bool: ['debug', 'systemd-cgroup|s', 'systemd-log', 'version|v'],
  }),
  verbs: verbTables(flagTable({
    value: ['bundle|b', 'console-socket|c', 'pid-file|p', 'preserve-fds'],
    bool: ['no-pivot', 'no-new-keyring', 'no-subreaper', 'keep', 'detach|d'],
  })),
  // youki's sealed-memfd re-exec repeats the original argv; its container init is a clone.
  selfReexecVerbs: new Set(),
};

const RUNSC: RuntimeGrammar = {
  style: 'go',
  global: flagTable({
    value: [
      'root', 'log', 'log-format', 'debug-log', 'debug-log-format', 'debug-command', 'panic-log',
      'coverage-report', 'pcap-log', 'traceback', 'strace-syscalls', 'strace-log-size', 'platform',
      'platform_device_path', 'watchdog-action', 'panic-signal', 'profile-block', 'profile-cpu',
      'profile-heap', 'profile-mutex', 'trace', 'ref-leak-mode', 'pod-init-config', 'file-access',
      'file-access-mounts', 'overlay2', 'host-uds', 'host-fifo', 'fdlimit', 'dcache', 'network',
      'gvisor-gro', 'qdisc', 'num-network-channels',
    ],
    // A Go boolean here, unlike runc's string --rootless.
    bool: ['debug', 'systemd-cgroup', 'rootless'],
  }),
  verbs: verbTables(flagTable({
    value: ['bundle', 'console-socket', 'pid-file', 'user-log'],
    bool: ['detach'],
  })),
  // runsc's "internal use only" commands: the sandbox (boot), the file proxy (gofer), umount.
  selfReexecVerbs: new Set(['boot', 'gofer', 'umount']),
};

const GRAMMARS: Readonly<Record<Exclude<RuntimeName, 'conmon'>, RuntimeGrammar>> = {
  runc: RUNC,
  crun: CRUN,
  youki: YOUKI,
  runsc: RUNSC,
};

const CONMON_FLAGS = flagTable({
  value: [
    'cid|c', 'cuuid|u', 'name|n', 'runtime|r', 'bundle|b', 'container-pidfile|p|pidfile',
    'conmon-pidfile|P', 'persist-dir|0', 'restore', 'restore-arg', 'runtime-opt', 'runtime-arg',
    'exec-process-spec', 'exit-dir', 'exit-command', 'exit-command-arg', 'exit-delay',
    'log-path|l', 'log-size-max', 'log-global-size-max', 'log-level', 'log-tag', 'timeout|T',
    'socket-dir-path', 'sdnotify-socket', 'seccomp-notify-socket', 'seccomp-notify-plugins',
  ],
  bool: [
    // A GOption without argument: podman's `--api-version 1` leaves `1` as a stray argument.
    'api-version',
    'terminal|t', 'stdin|i', 'leave-stdin-open', 'exec|e', 'exec-attach', 'no-new-keyring',
    'no-pivot', 'no-sync-log', 'replace-listen-pid', 'sync', 'syslog', 'systemd-cgroup|s',
    'version', 'full-attach',
  ],
});

/** The verbs that make a container: the parser's, and the reactor's and mayCreate's prefilter. */
export const CREATION_VERBS: readonly string[] = ['create', 'run'];
/** The verb that starts a created container: held natively as an ordering barrier (`orderStart`). */
export const START_VERB = 'start';

/** Where each verb takes its container id; `kill <id> [signal]`, `exec <id> <cmd...>`. */
const ID_POSITION: ReadonlyMap<string, 'first' | 'last'> = new Map([
  ...['create', 'run', 'start', 'delete', 'state', 'pause', 'resume', 'events', 'update',
    'checkpoint', 'restore'].map((verb) => [verb, 'last'] as const),
  ...['kill', 'exec', 'ps'].map((verb) => [verb, 'first'] as const),
]);

const RUNTIME_NAMES: ReadonlyMap<string, RuntimeName> = new Map([
  ['runc', 'runc'],
  ['docker-runc', 'runc'],
  ['crun', 'crun'],
  ['krun', 'crun'],
  ['youki', 'youki'],
  ['runsc', 'runsc'],
  ['conmon', 'conmon'],
]);

/** runc's release binaries are `runc.<arch>`; crun picks a handler from `crun-<handler>`. */
const RUNTIME_PATTERNS: readonly (readonly [RegExp, RuntimeName])[] = [
  [/^runc\.[\w-]+$/, 'runc'],
  [/^crun-.+$/, 'crun'],
];

/** How the kernel shows a binary that was replaced (e.g. by an upgrade) after it was opened. */
const DELETED_SUFFIX = ' (deleted)';

const MAX_ID_LENGTH = 1024;
/** runc's rule, `^[\w+-\.]+$`: the class holds the range `+`..`.`, i.e. `+ , - .`. */
const ID_PATTERN = /^[\w+,.-]+$/;

export function runtimeNameOf(exePathOrArgv0: string): RuntimeName | null {
  const path = exePathOrArgv0.endsWith(DELETED_SUFFIX)
    ? exePathOrArgv0.slice(0, -DELETED_SUFFIX.length)
    : exePathOrArgv0;
  const base = posix.basename(path);
  return RUNTIME_NAMES.get(base) ?? RUNTIME_PATTERNS.find(([pattern]) => pattern.test(base))?.[1] ?? null;
}

export function isValidContainerId(id: string): boolean {
  return id.length <= MAX_ID_LENGTH && id !== '.' && id !== '..' && ID_PATTERN.test(id);
}

export function parseRuntimeArgv(argv: readonly string[], runtime: RuntimeName): RuntimeInvocation {
  if (argv.length === 0) throw new ArgvError('ERR_ARGV_EMPTY', 'argv is empty', { runtime });
  return runtime === 'conmon' ? parseConmon(argv) : parseOciRuntime(argv, runtime, GRAMMARS[runtime]);
}

function parseOciRuntime(argv: readonly string[], runtime: RuntimeName, grammar: RuntimeGrammar): RuntimeInvocation {
  const global = scanFlags(argv, 1, grammar.global, grammar.style, true);
  const verb = argv[global.next] ?? null;
  // One literal of one shape, no spread: this runs on the way to every `precreate`, on cold caches.
  const invocation: RuntimeInvocation = {
    runtime,
    verb,
    root: lastValue(global.values, 'root'),
    globalFlags: argv.slice(1, global.next),
    name: null,
    runtimePath: null,
    runtimeArgs: [],
    id: null,
    bundle: null,
    pidFile: null,
    isContainerCreation: false,
    selfReexec: verb !== null && grammar.selfReexecVerbs.has(verb),
  };
  if (verb === null || invocation.selfReexec) return invocation;
  const command = scanFlags(argv, global.next + 1, grammar.verbs.get(verb) ?? NO_FLAGS, grammar.style, false);
  invocation.isContainerCreation = CREATION_VERBS.includes(verb);
  invocation.id = containerIdOf(verb, command.positionals);
  // runc and crun default the bundle to their cwd, which is the caller's.
  if (invocation.isContainerCreation) invocation.bundle = lastValue(command.values, 'bundle') ?? '.';
  invocation.pidFile = lastValue(command.values, 'pid-file');
  return invocation;
}

function parseConmon(argv: readonly string[]): RuntimeInvocation {
  const { values } = scanFlags(argv, 1, CONMON_FLAGS, 'gnu', false);
  const id = lastValue(values, 'cid');
  if (id !== null) checkContainerId(id, 'conmon');
  return {
    runtime: 'conmon',
    verb: null,
    id,
    bundle: lastValue(values, 'bundle'),
    pidFile: lastValue(values, 'container-pidfile'),
    root: null,
    globalFlags: argv.slice(1),
    name: lastValue(values, 'name'),
    runtimePath: lastValue(values, 'runtime'),
    runtimeArgs: values.get('runtime-arg') ?? [],
    isContainerCreation: false,
    selfReexec: false,
  };
}

function containerIdOf(verb: string, positionals: readonly string[]): string | null {
  const position = ID_POSITION.get(verb);
  if (position === undefined) return null;
  const id = position === 'first' ? positionals[0] : positionals[positionals.length - 1];
  if (id === undefined) throw new ArgvError('ERR_ARGV_MISSING_ID', `${verb} needs a container id`, { verb });
  checkContainerId(id, verb);
  return id;
}

function checkContainerId(id: string, verb: string): void {
  if (!isValidContainerId(id)) {
    throw new ArgvError('ERR_ARGV_INVALID_ID', `${verb}: invalid container id`, { verb, id: preview(id) });
  }
}

function preview(text: string): string {
  return text.length > 128 ? `${text.slice(0, 128)}...` : text;
}

interface FlagScan {
  /** Values by canonical flag name, in order of appearance. */
  values: Map<string, string[]>;
  positionals: string[];
  /** Index of the first argument not consumed. */
  next: number;
}

/** Reads flags from argv[start]; stops at the first positional when stopAtPositional (the verb). */
function scanFlags(
  argv: readonly string[],
  start: number,
  table: FlagTable,
  style: FlagStyle,
  stopAtPositional: boolean,
): FlagScan {
  const scan: FlagScan = { values: new Map(), positionals: [], next: start };
  while (scan.next < argv.length) {
    const arg = argv[scan.next] as string;
    if (arg === '--') {
      scan.next += 1;
      if (stopAtPositional) break;
      for (; scan.next < argv.length; scan.next++) scan.positionals.push(argv[scan.next] as string);
      break;
    }
    if (!isFlag(arg)) {
      if (stopAtPositional) break;
      scan.positionals.push(arg);
      scan.next += 1;
    } else if (style === 'gnu' && !arg.startsWith('--')) {
      scan.next = readShortFlags(argv, scan.next, table, scan.values);
    } else {
      scan.next = readLongFlag(argv, scan.next, table, scan.values);
    }
  }
  return scan;
}

function isFlag(arg: string): boolean {
  return arg.length > 1 && arg.startsWith('-');
}

/** `--name`, `--name=value`; in Go style also `-name`, `-name=value`. */
function readLongFlag(argv: readonly string[], index: number, table: FlagTable, values: Map<string, string[]>): number {
  const arg = argv[index] as string;
  const body = arg.slice(arg.startsWith('--') ? 2 : 1);
  const eq = body.indexOf('=');
  const name = eq < 0 ? body : body.slice(0, eq);
  const inline = eq < 0 ? null : body.slice(eq + 1);
  return applyFlag(argv, index, table.get(name), inline, values);
}

/** A cluster of short flags, `-dt`; a value flag takes the rest of the cluster (`-bDIR`) or the next argument. */
function readShortFlags(argv: readonly string[], index: number, table: FlagTable, values: Map<string, string[]>): number {
  const arg = argv[index] as string;
  for (let at = 1; at < arg.length; at++) {
    const flag = table.get(arg.charAt(at));
    if (flag === undefined) return index + 1;
    if (flag.kind !== 'bool') {
      const rest = arg.slice(at + 1);
      return applyFlag(argv, index, flag, rest === '' ? null : rest, values);
    }
  }
  return index + 1;
}

/**
 * Records one flag and returns the index after it. An unknown flag is read as a boolean
 * unless written `--x=y`: guessing it takes a value could swallow the verb or the id, and
 * the runtime itself rejects unknown flags anyway.
 */
function applyFlag(
  argv: readonly string[],
  index: number,
  flag: Flag | undefined,
  inline: string | null,
  values: Map<string, string[]>,
): number {
  if (flag === undefined || flag.kind === 'bool') return index + 1;
  if (inline !== null) {
    record(values, flag.canonical, inline);
    return index + 1;
  }
  const next = argv[index + 1];
  if (flag.kind === 'optional') {
    if (next === undefined || !OPTIONAL_VALUES.has(next)) return index + 1;
  } else if (next === undefined) {
    throw new ArgvError('ERR_ARGV_MISSING_VALUE', `${preview(argv[index] as string)} needs a value`, {
      flag: flag.canonical,
    });
  }
  record(values, flag.canonical, next);
  return index + 2;
}

function record(values: Map<string, string[]>, name: string, value: string): void {
  const list = values.get(name);
  if (list === undefined) values.set(name, [value]);
  else list.push(value);
}

function lastValue(values: ReadonlyMap<string, readonly string[]>, name: string): string | null {
  const list = values.get(name);
  return list?.[list.length - 1] ?? null;
}
