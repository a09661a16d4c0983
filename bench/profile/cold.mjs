// The same work in a hot loop and once every 50 ms (as a watcher does it, between two
// containers): on this VM the second is several times slower, whatever the code.
//
//   node bench/profile/cold.mjs [config.json, default a real CRI container's]
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? new URL('../../test/fixtures/oci/containerd-1.6-cri-container.json', import.meta.url);
const bytes = readFileSync(file);
const decoder = new TextDecoder('utf-8', { fatal: true });
const work = () => JSON.parse(decoder.decode(bytes));
const sample = () => {
  const t = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - t) / 1e3;
};
const p = (v, q) => v.sort((a, b) => a - b)[Math.floor(v.length * q)].toFixed(1);
for (let i = 0; i < 1000; i++) work();
const hot = Array.from({ length: 1000 }, sample);
const spaced = [];
const timer = setInterval(() => {
  spaced.push(sample());
  if (spaced.length < 200) return;
  clearInterval(timer);
  console.log(`decode + JSON.parse of ${bytes.length} bytes, us: hot loop p50 ${p(hot, 0.5)}, once every 50 ms p50 ${p(spaced, 0.5)} p90 ${p(spaced, 0.9)}`);
}, 50);
