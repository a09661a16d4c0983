// Where a precreate's time goes, for a profile rather than a benchmark: a watcher of this
// checkout whose private steps are timed by wrapping them (names as in src/watcher/sessions.ts
// and enrich.ts; src/watcher.ts in a checkout from before the split), and
// the split of each sample into the hop (kernel sys_enter_execve -> the JS batch callback)
// and the JavaScript after it. Prints percentiles on SIGINT. Run by bench/profile/run.sh.
// The wrappers cost time of their own on cold caches: PROFILE_STEPS=0 leaves them out (hop,
// js and total only).
//
//   node bench/profile/steps.mjs [root of a built checkout, default this one]
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = process.argv[2] ?? fileURLToPath(new URL('../..', import.meta.url));
const { ContainerWatcher } = await import(`${root}/dist/esm/index.js`);
const addon = createRequire(import.meta.url)(`${root}/build/Release/ocinotify.node`);
const now = () => process.hrtime.bigint();
const spent = new Map();
const timed = (name, fn) =>
  function (...args) {
    const t = now();
    try {
      return fn.apply(this, args);
    } finally {
      spent.set(name, (spent.get(name) ?? 0n) + (now() - t));
    }
  };
const P = ContainerWatcher.prototype;
let batchAt = 0n;
const onBatch = P.onBatch;
P.onBatch = function (batch) {
  batchAt = now();
  spent.clear();
  return onBatch.call(this, batch);
};
const seams = await Promise.all(['sessions', 'enrich'].map((seam) => import(`${root}/dist/esm/watcher/${seam}.js`).catch(() => ({}))));
const owners = [P, ...seams.flatMap((m) => Object.values(m).filter((v) => typeof v === 'function').map((c) => c.prototype))];
const steps = process.env.PROFILE_STEPS === '0' ? [] : ['parse', 'sessionFor', 'readSpec', 'rootOf'];
for (const step of steps)
  for (const owner of owners) if (Object.hasOwn(owner, step) && typeof owner[step] === 'function') owner[step] = timed(step, owner[step]);
if (steps.length > 0) addon.readFileInRoot = timed('readFileInRoot', addon.readFileInRoot);

const watcher = new ContainerWatcher({ gate: async () => 'allow' });
const rows = [];
watcher.on('precreate', (e) => {
  const t = now();
  if (!e.id.startsWith('prof-')) return;
  const kernel = BigInt(e.monotonicNs);
  const row = { hop: batchAt - kernel, js: t - batchAt, total: t - kernel };
  for (const [name, ns] of spent) row[name] = ns;
  rows.push(row);
});
process.stdout.write(`ready ${watcher.mode}\n`);
process.once('SIGINT', () => {
  watcher.close();
  const at = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
  process.stdout.write(`${rows.length} precreates, us\n`);
  for (const key of Object.keys(rows[0] ?? {})) {
    const v = rows.map((r) => Number(r[key] ?? 0n) / 1e3).sort((a, b) => a - b);
    process.stdout.write(`${key.padEnd(15)} p50 ${at(v, 0.5).toFixed(0).padStart(6)}  p90 ${at(v, 0.9).toFixed(0).padStart(6)}  p99 ${at(v, 0.99).toFixed(0).padStart(6)}\n`);
  }
  process.exit(0);
});
