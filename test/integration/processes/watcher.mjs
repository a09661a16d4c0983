// A watcher in a process of its own, for tests that kill it, block it or stop it.
// argv[2]: JSON { gateTimeoutMs, holdForever: [ids], onTimeout, timeoutRules: [{ namespace, onTimeout }],
// watchdog, snapshot, runtimePaths }. Prints one JSON line per event (lifecycle, watchdog, diagnostic, gateTimeout,
// lost), its stats on SIGUSR2; its ready line has its pid and its watchdog's.
import { ContainerWatcher } from '../../../dist/esm/index.js';

const opts = JSON.parse(process.argv[2] ?? '{}');
const holdForever = new Set(opts.holdForever ?? []);
const watcher = new ContainerWatcher({
  gateTimeoutMs: opts.gateTimeoutMs ?? 1000,
  gate: (e) => (holdForever.has(e.id) ? new Promise(() => undefined) : 'allow'),
  onTimeout: opts.onTimeout,
  timeoutRules: opts.timeoutRules,
  watchdog: opts.watchdog,
  snapshot: opts.snapshot,
  runtimePaths: opts.runtimePaths,
});
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
watcher.on('event', out);
watcher.on('watchdog', out);
watcher.on('diagnostic', out);
watcher.on('lost', out);
watcher.on('gateTimeout', (e) => out({ type: 'gateTimeout', ...e }));
out({ type: 'ready', mode: watcher.mode, pid: process.pid, watchdogPid: watcher.stats().watchdogPid });
process.on('SIGUSR2', () => out({ type: 'stats', ...watcher.stats() }));
process.once('SIGTERM', () => watcher.close());
