// Where the watcher's JavaScript spends a record's time, from a V8 CPU profile of
// bench/profile/run.sh (PROFILE_NODE="--cpu-prof --cpu-prof-dir=DIR --cpu-prof-interval=20"):
// the samples under the batch callback (onBatch), by function, self and total, in us per
// precreate.
//
//   node bench/profile/cpu.mjs PROFILE.cpuprofile [precreates, default 300] [root function]
import { readFileSync } from 'node:fs';

const [file, count = '300', rootName = 'onBatch'] = process.argv.slice(2);
const { nodes, samples, timeDeltas } = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
const self = new Map();
const total = new Map();
let under = 0;
samples.forEach((id, i) => {
  const us = timeDeltas[i + 1] ?? 0;
  const stack = [];
  for (let at = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at));
  if (!stack.some((n) => n.callFrame.functionName === rootName)) return;
  under += us;
  const leaf = name(stack[0]);
  self.set(leaf, (self.get(leaf) ?? 0) + us);
  for (const n of new Set(stack.map(name))) total.set(n, (total.get(n) ?? 0) + us);
});
const per = (us) => (us / Number(count)).toFixed(1).padStart(7);
console.log(`under ${rootName}: ${per(under)} us per precreate`);
const top = (map, label) => {
  console.log(`${label}:`);
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${per(v)}  ${k}`);
};
top(self, 'self');
top(total, 'total');
