// The `ocinotify` command: watch (table or NDJSON), list and doctor.
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { doctor } from './doctor.js';
import { eventJson } from './event-json.js';
import { setNice, WATCH_NICE } from './priority.js';
import { listContainers, type ListedContainer } from './list.js';
import { createLogger, LOG_LEVELS, type LogLevel } from './log.js';
import { MetricsAddressError, MetricsListenError, parseMetricsAddress, serveMetrics, WatcherMetrics } from './metrics.js';
import { OciNotifyError } from '../errors.js';
import type { ContainerEvent, GateTimeoutEvent, LostEvent, ReadyEvent, RuntimeChangeEvent, WatchdogEvent, WatchMode } from '../events.js';
import type { TimeoutPolicy } from '../watcher/gate.js';
import type { DiagnosticEvent } from '../diagnostics.js';
import { loadAddon } from '../native.js';
import { ContainerWatcher } from '../watcher/index.js';

const USAGE = `usage: ocinotify <command> [options]

commands:
  watch     report every new container (table; --json for one JSON object per line)
  list      print the containers running now, with their pod (table; --json for a JSON array)
  doctor    check kernel, BTF, fanotify, capabilities and runtimes; print the mode

watch options:
  --json                 NDJSON on stdout (first line: {"type":"ready",...}); logs on stderr
  --metrics ADDR         serve Prometheus metrics at http://ADDR/metrics; ADDR is PORT, 127.0.0.1:PORT
                         or [::1]:PORT (loopback only)
  --log-level LEVEL      stderr log: error | warn | info (default) | debug
  --runtime-path PATH    also watch this runtime binary (repeatable)
  --gate-timeout MS      longest a runtime is held (default 1000)
  --nice N               nice value of the watcher (default -10: held runtimes wait on it; needs CAP_SYS_NICE)
  --mode MODE            auto | full | fanotify-only | ebpf-only (default auto)
  --host-root DIR        where the host's / is mounted (watcher in a container)
  --include-spec         put the full OCI spec in precreate events (holds env secrets)
  --on-timeout POLICY    what a held runtime gets when the budget expires: fail-open (default) | fail-closed
  --state-root DIR       also scan this runtime state root (a runtime's --root) at start (repeatable)
  --watchdog-socket PATH answer for a stalled watcher through the sidecar listening at PATH
                         (ocinotify-watchdog --listen PATH) instead of a watchdog of its own
  --no-watchdog          no watchdog: a stopped watcher holds every runtime exec until it runs again

list options:
  --json                 a JSON array on stdout
  --host-root DIR        where the host's / is mounted
  --state-root DIR       also scan this runtime state root (repeatable)
  --runtime-path PATH    a runtime binary beyond the built-in list (repeatable)

exit codes:
  0  stopped by SIGINT/SIGTERM (watch); done (list, doctor)
  1  cannot watch or list here: privileges, kernel features or the build are missing (run \`ocinotify doctor\`)
  2  usage error: unknown command or option, bad value, a non-loopback --metrics address
  3  the --metrics address cannot be listened on (in use)
`;

const MODES: readonly string[] = ['auto', 'full', 'fanotify-only', 'ebpf-only'];
/**
 * How long the node stays without a container event before the watcher collects its heap and
 * hands malloc's free pages back to the kernel. A burst of containers leaves megabytes free in
 * malloc's arenas that glibc keeps, and V8's memory reducer does not always shrink the heap.
 */
const QUIET_TRIM_MS = 20_000;

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
      nice: { type: 'string' },
      mode: { type: 'string', default: 'auto' },
      'host-root': { type: 'string', default: '/' },
      'include-spec': { type: 'boolean', default: false },
      'state-root': { type: 'string', multiple: true, default: [] },
      'on-timeout': { type: 'string', default: 'fail-open' },
      metrics: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'watchdog-socket': { type: 'string' },
      'no-watchdog': { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values['no-watchdog'] && values['watchdog-socket'] !== undefined)
    throw new UsageError('--no-watchdog and --watchdog-socket exclude each other');
  if (!(LOG_LEVELS as readonly string[]).includes(values['log-level']))
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  if (!MODES.includes(values.mode)) throw new UsageError(`--mode must be one of ${MODES.join(', ')}`);
  if (values['on-timeout'] !== 'fail-open' && values['on-timeout'] !== 'fail-closed')
    throw new UsageError('--on-timeout must be fail-open or fail-closed');
  const nice = values.nice === undefined ? WATCH_NICE : Number(values.nice);
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new UsageError(`--nice needs an integer from -20 to 19, got '${values.nice}'`);
  return {
    json: values.json,
    nice,
    metrics: values.metrics === undefined ? null : parseMetricsAddress(values.metrics),
    logLevel: values['log-level'] as LogLevel,
    options: {
      mode: values.mode as 'auto' | WatchMode,
      runtimePaths: values['runtime-path'],
      gateTimeoutMs: positiveInt(values['gate-timeout'], '--gate-timeout', 1000),
      hostRoot: values['host-root'],
      includeSpec: values['include-spec'],
      stateRoots: values['state-root'],
      onTimeout: values['on-timeout'] as TimeoutPolicy,
      watchdog: values['no-watchdog'] ? false : values['watchdog-socket'] === undefined ? true : { socket: values['watchdog-socket'] },
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
  const { json, nice, metrics: metricsAddr, logLevel, options } = parseWatch(args);
  const log = createLogger(logLevel);
  // Before the watcher starts its threads and its watchdog: they inherit it.
  const notNiced = setNice(nice);
  if (notNiced !== null) log.info(`not at nice ${nice} (${notNiced}): on a busy node, held runtimes may wait while this process waits for a CPU`);
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
  // Stopped, the watcher would hold every runtime exec on the node until its watchdog stood in,
  // a budget later each; and it would report nothing until resumed. Ctrl-C stops it.
  process.on('SIGTSTP', () =>
    log.warn('not stopping on Ctrl-Z (SIGTSTP): a stopped watcher would hold every runtime exec on this node for the gate budget; Ctrl-C ends it'),
  );
  const watcher = new ContainerWatcher({ ...options, signal: stop.signal });
  let server: Server | null = null;
  if (metricsAddr) {
    try {
      server = await serveMetrics(new WatcherMetrics(watcher), metricsAddr.host, metricsAddr.port);
    } catch (err) {
      watcher.close();
      throw err;
    }
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const ready: ReadyEvent = {
    type: 'ready',
    mode: watcher.mode,
    reason: watcher.modeReason,
    runtimes: watcher.runtimes.map((r) => r.path),
  };
  log.info(`watching ${ready.runtimes.join(', ')} in ${ready.mode} mode${ready.reason ? ` (${ready.reason})` : ''}`);
  if (server) {
    const a = server.address() as AddressInfo;
    log.info(`metrics at http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`);
  }
  if (json) out(JSON.stringify(ready));
  else out(row(COLUMNS));
  const trim = setTimeout(() => {
    // A full collection first (bin/ocinotify runs node with --expose-gc): V8's own memory
    // reducer does the same after a burst, but not every time.
    (globalThis as { gc?: () => void }).gc?.();
    loadAddon().trimMalloc();
  }, QUIET_TRIM_MS).unref();
  watcher.on('lost', (e: LostEvent) => {
    if (json) out(JSON.stringify(e));
    log.warn(`lost ${e.count} records (${e.reason})`);
  });
  watcher.on('runtime', (e: RuntimeChangeEvent) => {
    if (json) out(JSON.stringify(e));
    log.info(`runtime ${e.change}: ${JSON.stringify(e.path)} (${e.runtime})${e.markError ? `: ${e.markError}` : ''}`);
  });
  watcher.on('diagnostic', (e: DiagnosticEvent) => {
    if (json) out(JSON.stringify(e));
    // JSON.stringify escapes what argv or a path may hold: control characters, escape sequences.
    const who = e.runtime === null ? '' : ` id=${JSON.stringify(e.id)} runtime pid ${e.runtime.pid}`;
    log.warn(`${e.code} (${e.impact})${who}: ${JSON.stringify(e.message)}`);
  });
  watcher.on('gateTimeout', (e: GateTimeoutEvent) =>
    log.warn(
      `gate budget expired for ${JSON.stringify(e.id)}: ${e.allowed ? 'allowed (fail-open)' : 'denied (fail-closed)'}${e.by === 'watchdog' ? ' by the watchdog' : ''}`,
    ),
  );
  watcher.on('watchdog', (e: WatchdogEvent) => {
    if (json) out(JSON.stringify(e));
    if (e.change === 'takeover') log.warn(`the watcher was not running: its watchdog answered runtime execs (oldest waited ${e.waitedMs} ms)`);
    else
      log.warn(
        `the watcher runs again after ${e.durationMs ?? '?'} ms: its watchdog allowed ${e.answered?.allowed ?? 0} and denied ${e.answered?.denied ?? 0} runtime execs${e.reason ? ` (${e.reason})` : ''}`,
      );
  });
  watcher.on('error', (err: Error) => log.error(`a record could not be processed: ${err.message}`));
  // Written as each event is emitted, not from an async iterator a microtask later: the line is
  // out before a held runtime is let go.
  watcher.on('event', (event: ContainerEvent) => {
    trim.refresh();
    // Not built unless logged: this runs before a held runtime is let go.
    if (logLevel === 'debug')
      log.debug(`${event.type} ${JSON.stringify(event.id)} ${event.manager}${event.pod ? ` ${event.pod.namespace}/${event.pod.name}` : ''}`);
    out(json ? eventJson(event) : tableRow(event));
  });
  try {
    if (!stop.signal.aborted) await once(watcher, 'close');
  } finally {
    server?.close();
  }
  log.info('stopped');
  return 0;
}

const LIST_COLUMNS = ['ID', 'MANAGER', 'NAMESPACE/POD', 'CONTAINER', 'TYPE', 'PID', 'MNTNS', 'STATE', 'POD UID'];
const LIST_WIDTHS = [13, 10, 30, 12, 9, 7, 10, 7, 36];

function listRow(cells: string[]): string {
  return cells.map((c, i) => c.slice(0, LIST_WIDTHS[i]).padEnd(LIST_WIDTHS[i] ?? 0)).join(' ').trimEnd();
}

function runList(args: string[]): number {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      'host-root': { type: 'string', default: '/' },
      'state-root': { type: 'string', multiple: true, default: [] },
      'runtime-path': { type: 'string', multiple: true, default: [] },
    },
    strict: true,
  });
  const found = listContainers({ hostRoot: values['host-root'], stateRoots: values['state-root'], runtimePaths: values['runtime-path'] });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(found)}\n`);
    return 0;
  }
  const cells = (c: ListedContainer) => [
    c.id.slice(0, 12),
    c.manager,
    c.pod ? `${c.pod.namespace}/${c.pod.name}` : '-',
    c.container.name ?? '-',
    c.container.type ?? '-',
    String(c.pid),
    c.mntns === null ? '-' : String(c.mntns),
    c.started ? 'running' : 'created',
    c.pod?.uid ?? '',
  ];
  process.stdout.write([LIST_COLUMNS, ...found.map(cells)].map((r) => `${listRow(r)}\n`).join(''));
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
      case 'list':
        return runList(rest);
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
    if (err instanceof MetricsListenError) {
      process.stderr.write(`ocinotify: ${err.message}\n`);
      return 3;
    }
    if (err instanceof UsageError || err instanceof MetricsAddressError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ocinotify: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    const code = err instanceof OciNotifyError ? ` [${err.code}]` : '';
    const hint = err instanceof OciNotifyError && err.code.startsWith('ERR_NO_') ? '\nocinotify: `ocinotify doctor` tells what is missing' : '';
    process.stderr.write(`ocinotify: ${(err as Error).message}${code}${hint}\n`);
    return 1;
  }
}
