// The `ocinotify` command: watch (table or NDJSON) and doctor.
import { parseArgs } from 'node:util';
import { doctor } from './doctor.js';
import { OciNotifyError } from './errors.js';
import type { ContainerEvent, LostEvent, ReadyEvent, RuntimeChangeEvent, WatchMode } from './events.js';
import type { TimeoutPolicy } from './gate.js';
import type { DiagnosticEvent } from './diagnostics.js';
import { ContainerWatcher } from './watcher.js';

const USAGE = `usage: ocinotify <command> [options]

commands:
  watch     report every new container (table; --json for one JSON object per line)
  doctor    check kernel, BTF, fanotify, capabilities and runtimes; print the mode

watch options:
  --json                 NDJSON on stdout (first line: {"type":"ready",...}); logs on stderr
  --runtime-path PATH    also watch this runtime binary (repeatable)
  --gate-timeout MS      longest a runtime is held (default 1000)
  --mode MODE            auto | full | fanotify-only | ebpf-only (default auto)
  --host-root DIR        where the host's / is mounted (watcher in a container)
  --include-spec         put the full OCI spec in precreate events (holds env secrets)
  --on-timeout POLICY    what a held runtime gets when the budget expires: fail-open (default) | fail-closed
  --state-root DIR       also scan this runtime state root (a runtime's --root) at start (repeatable)
`;

const MODES: readonly string[] = ['auto', 'full', 'fanotify-only', 'ebpf-only'];

class UsageError extends Error {}

function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} needs a positive integer, got '${value}'`);
  return n;
}

function parseWatch(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      'runtime-path': { type: 'string', multiple: true, default: [] },
      'gate-timeout': { type: 'string' },
      mode: { type: 'string', default: 'auto' },
      'host-root': { type: 'string', default: '/' },
      'include-spec': { type: 'boolean', default: false },
      'state-root': { type: 'string', multiple: true, default: [] },
      'on-timeout': { type: 'string', default: 'fail-open' },
    },
    strict: true,
  });
  if (!MODES.includes(values.mode)) throw new UsageError(`--mode must be one of ${MODES.join(', ')}`);
  if (values['on-timeout'] !== 'fail-open' && values['on-timeout'] !== 'fail-closed')
    throw new UsageError('--on-timeout must be fail-open or fail-closed');
  return {
    json: values.json,
    options: {
      mode: values.mode as 'auto' | WatchMode,
      runtimePaths: values['runtime-path'],
      gateTimeoutMs: positiveInt(values['gate-timeout'], '--gate-timeout', 1000),
      hostRoot: values['host-root'],
      includeSpec: values['include-spec'],
      stateRoots: values['state-root'],
      onTimeout: values['on-timeout'] as TimeoutPolicy,
    },
  };
}

const COLUMNS = ['TIME', 'EVENT', 'ID', 'MANAGER', 'NAMESPACE/POD', 'CONTAINER', 'TYPE', 'PID', 'EXIT', 'POD UID'];
const WIDTHS = [12, 9, 13, 10, 30, 12, 9, 7, 4, 36];

function row(cells: string[]): string {
  return cells.map((c, i) => c.slice(0, WIDTHS[i]).padEnd(WIDTHS[i] ?? 0)).join(' ').trimEnd();
}

function tableRow(e: ContainerEvent): string {
  return row([
    e.time.slice(11, 23),
    e.type,
    e.id.slice(0, 12),
    e.manager,
    e.pod ? `${e.pod.namespace}/${e.pod.name}` : '-',
    e.container.name ?? '-',
    e.container.type ?? '-',
    e.pid === null ? '-' : String(e.pid),
    e.exitCode === undefined || e.exitCode === null ? '' : String(e.exitCode),
    e.pod?.uid ?? '',
  ]);
}

async function runWatch(args: string[]): Promise<number> {
  const { json, options } = parseWatch(args);
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
  const watcher = new ContainerWatcher({ ...options, signal: stop.signal });
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const ready: ReadyEvent = {
    type: 'ready',
    mode: watcher.mode,
    reason: watcher.modeReason,
    runtimes: watcher.runtimes.map((r) => r.path),
  };
  if (json) {
    out(JSON.stringify(ready));
  } else {
    process.stderr.write(`ocinotify: watching ${ready.runtimes.join(', ')} in ${ready.mode} mode${ready.reason ? ` (${ready.reason})` : ''}\n`);
    out(row(COLUMNS));
  }
  watcher.on('lost', (e: LostEvent) => {
    if (json) out(JSON.stringify(e));
    else process.stderr.write(`ocinotify: lost ${e.count} records (${e.reason})\n`);
  });
  watcher.on('runtime', (e: RuntimeChangeEvent) => {
    if (json) out(JSON.stringify(e));
    else process.stderr.write(`ocinotify: runtime ${e.change}: ${JSON.stringify(e.path)} (${e.runtime})${e.markError ? `, not held: ${e.markError}` : ''}\n`);
  });
  watcher.on('diagnostic', (e: DiagnosticEvent) => {
    if (json) out(JSON.stringify(e));
    // JSON.stringify escapes what argv or a path may hold: control characters, escape sequences.
    else process.stderr.write(`ocinotify: ${e.code} (${e.impact}) id=${JSON.stringify(e.id)} runtime pid ${e.runtime.pid}: ${JSON.stringify(e.message)}\n`);
  });
  for await (const event of watcher) out(json ? JSON.stringify(event) : tableRow(event));
  return 0;
}

function runDoctor(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: { 'host-root': { type: 'string', default: '/' }, 'runtime-path': { type: 'string', multiple: true, default: [] } },
  });
  const report = doctor({ hostRoot: values['host-root'], runtimePaths: values['runtime-path'] });
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return report.mode === null ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'watch':
        return await runWatch(rest);
      case 'doctor':
        return runDoctor(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ocinotify: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    const code = err instanceof OciNotifyError ? ` [${err.code}]` : '';
    process.stderr.write(`ocinotify: ${(err as Error).message}${code}\n`);
    return 1;
  }
}
