// Prometheus text-format metrics of a watcher, served on a loopback address only: the
// numbers tell which pods run on the node, which is nobody's business off the node.
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { DiagnosticEvent } from '../diagnostics.js';
import { OciNotifyError } from '../errors.js';
import type { ContainerEvent, GateTimeoutEvent, LostEvent } from '../events.js';
import type { ContainerWatcher } from '../watcher/index.js';

/** Seconds from the kernel's exec record to the `precreate` event in JS (the runtime is held meanwhile). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Held creations whose verdict is not yet known; more than this many at once is a leak. */
const MAX_PENDING = 10_000;

/** The --metrics address is not one we serve on (not loopback, malformed). */
export class MetricsAddressError extends OciNotifyError {
  declare readonly code: 'ERR_METRICS_ADDRESS';

  constructor(message: string) {
    super('ERR_METRICS_ADDRESS', message);
  }
}

/** The --metrics address is fine but cannot be listened on (in use). */
export class MetricsListenError extends OciNotifyError {
  declare readonly code: 'ERR_METRICS_LISTEN';

  constructor(message: string) {
    super('ERR_METRICS_LISTEN', message);
  }
}

/** 'PORT', 'HOST:PORT' or '[V6]:PORT', where HOST is loopback; anything else throws MetricsAddressError. */
export function parseMetricsAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]:|([^:[\]]+):)?(\d+)$/.exec(addr);
  if (!m) throw new MetricsAddressError(`--metrics needs PORT, HOST:PORT or [V6]:PORT, got '${addr}'`);
  const host = m[1] ?? m[2] ?? '127.0.0.1';
  const port = Number(m[3]);
  if (port > 65535) throw new MetricsAddressError(`--metrics port ${port} is out of range`);
  if (!isLoopback(host))
    throw new MetricsAddressError(
      `--metrics serves on loopback only (127.0.0.0/8, ::1, localhost), not '${host}': scrape it from the node, or through a sidecar`,
    );
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(host);
  return false;
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labels = (l: Record<string, string>) =>
  `{${Object.entries(l)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',')}}`;

/** Counters and the latency histogram of one watcher, fed by its events. */
export class WatcherMetrics {
  private readonly events = new Map<string, number>();
  private readonly decisions = { allow: 0, deny: 0 };
  private readonly timeouts = { allow: 0, deny: 0 };
  private readonly diagnostics = new Map<string, number>();
  private readonly buckets = LATENCY_BUCKETS.map(() => 0);
  private latencyCount = 0;
  private latencySum = 0;
  private lost = 0;
  /** ids of held precreates until their verdict shows: `denied`, or a `create`/`failed`/`exit` */
  private readonly pending = new Set<string>();

  constructor(private readonly watcher: ContainerWatcher) {
    watcher.on('event', (e: ContainerEvent) => this.onEvent(e));
    watcher.on('gateTimeout', (e: GateTimeoutEvent) => this.timeouts[e.allowed ? 'allow' : 'deny']++);
    watcher.on('lost', (e: LostEvent) => (this.lost += e.count));
    watcher.on('diagnostic', (e: DiagnosticEvent) => this.diagnostics.set(e.code, (this.diagnostics.get(e.code) ?? 0) + 1));
  }

  private onEvent(e: ContainerEvent): void {
    const key = `${e.type}\0${e.manager}`;
    this.events.set(key, (this.events.get(key) ?? 0) + 1);
    if (e.type === 'precreate') {
      this.observeLatency(e.monotonicNs);
      if (e.held) {
        if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.values().next().value as string);
        this.pending.add(e.id);
      }
    } else if (this.pending.delete(e.id)) {
      this.decisions[e.type === 'denied' ? 'deny' : 'allow']++;
    }
  }

  private observeLatency(monotonicNs: string): void {
    const kernel = BigInt(monotonicNs);
    if (kernel === 0n) return;
    // process.hrtime.bigint() reads CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns().
    const seconds = Number(process.hrtime.bigint() - kernel) / 1e9;
    if (seconds < 0) return;
    this.latencyCount++;
    this.latencySum += seconds;
    LATENCY_BUCKETS.forEach((le, i) => {
      if (seconds <= le) this.buckets[i]!++;
    });
  }

  /** The Prometheus text exposition format, version 0.0.4. */
  render(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('ocinotify_events_total', 'counter', 'Container lifecycle events by type and manager.');
    for (const [key, n] of this.events) {
      const [type, manager] = key.split('\0') as [string, string];
      out.push(`ocinotify_events_total${labels({ type, manager })} ${n}`);
    }
    family('ocinotify_precreate_latency_seconds', 'histogram', 'Kernel exec record to precreate event in JS.');
    LATENCY_BUCKETS.forEach((le, i) => out.push(`ocinotify_precreate_latency_seconds_bucket${labels({ le: String(le) })} ${this.buckets[i]}`));
    out.push(`ocinotify_precreate_latency_seconds_bucket${labels({ le: '+Inf' })} ${this.latencyCount}`);
    out.push(`ocinotify_precreate_latency_seconds_sum ${this.latencySum}`, `ocinotify_precreate_latency_seconds_count ${this.latencyCount}`);
    family('ocinotify_gate_decisions_total', 'counter', 'Held creations by outcome: allowed or denied (gate or fail-closed timeout).');
    for (const decision of ['allow', 'deny'] as const) out.push(`ocinotify_gate_decisions_total${labels({ decision })} ${this.decisions[decision]}`);
    family('ocinotify_gate_timeouts_total', 'counter', 'Held creations the budget answered before the gate, by answer.');
    for (const answer of ['allow', 'deny'] as const) out.push(`ocinotify_gate_timeouts_total${labels({ answer })} ${this.timeouts[answer]}`);
    family('ocinotify_lost_records_total', 'counter', 'Kernel records dropped before the watcher read them.');
    out.push(`ocinotify_lost_records_total ${this.lost}`);
    family('ocinotify_diagnostics_total', 'counter', 'Diagnostics by code (input not taken at face value).');
    for (const [code, n] of this.diagnostics) out.push(`ocinotify_diagnostics_total${labels({ code })} ${n}`);
    const stats = this.watcher.stats();
    family('ocinotify_runtimes_held', 'gauge', 'Runtime execs held at the permission check now.');
    out.push(`ocinotify_runtimes_held ${stats.heldNow}`);
    family('ocinotify_containers_tracked', 'gauge', 'Containers followed until their exit.');
    out.push(`ocinotify_containers_tracked ${stats.containers}`);
    family('ocinotify_watchdog_takeovers_total', 'counter', 'Times the watcher did not run and its watchdog answered runtime execs, told once it ran again.');
    out.push(`ocinotify_watchdog_takeovers_total ${stats.watchdogTakeovers}`);
    family('ocinotify_watchdog_answers_total', 'counter', 'Runtime execs the watchdog answered while it stood in, by answer.');
    out.push(`ocinotify_watchdog_answers_total${labels({ answer: 'allow' })} ${stats.watchdogAllowed}`);
    out.push(`ocinotify_watchdog_answers_total${labels({ answer: 'deny' })} ${stats.watchdogDenied}`);
    family('ocinotify_watchdog_starts_total', 'counter', 'Watchdogs started (or sidecar connections made): more than one means one exited.');
    out.push(`ocinotify_watchdog_starts_total ${stats.watchdogStarts}`);
    // The names Prometheus client libraries use for the same numbers.
    const memory = process.memoryUsage();
    family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.');
    out.push(`process_resident_memory_bytes ${memory.rss}`);
    family('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap size in bytes.');
    out.push(`nodejs_heap_size_total_bytes ${memory.heapTotal}`);
    family('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use in bytes.');
    out.push(`nodejs_heap_size_used_bytes ${memory.heapUsed}`);
    return `${out.join('\n')}\n`;
  }
}

/** Serves metrics.render() at /metrics on host:port; resolves once listening. */
export function serveMetrics(metrics: WatcherMetrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('ocinotify: metrics are at /metrics\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(metrics.render());
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new MetricsListenError(`--metrics cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`)),
    );
    server.listen(port, host, () => {
      server.unref();
      resolve(server);
    });
  });
}
