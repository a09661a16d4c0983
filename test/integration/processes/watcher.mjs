// A watcher in a process of its own, for tests that kill it or block it.
// argv[2]: JSON { gateTimeoutMs, holdForever: [ids] }. Prints one JSON line per event.
import { ContainerWatcher } from '../../../dist/esm/index.js';

const opts = JSON.parse(process.argv[2] ?? '{}');
const holdForever = new Set(opts.holdForever ?? []);
const watcher = new ContainerWatcher({
  gateTimeoutMs: opts.gateTimeoutMs ?? 1000,
  gate: (e) => (holdForever.has(e.id) ? new Promise(() => undefined) : 'allow'),
});
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
watcher.on('event', out);
out({ type: 'ready', mode: watcher.mode });
process.once('SIGTERM', () => watcher.close());
