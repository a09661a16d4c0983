// Percentiles of each column of hop.bt's lines (stdin), us after sys_enter_execve.
import { readFileSync } from 'node:fs';

const rows = readFileSync(0, 'utf8').split('\n').filter((l) => l.startsWith('hop ')).map((l) => l.split(' ').slice(1));
const at = (v, p) => v[Math.min(v.length - 1, Math.floor(v.length * p))];
for (let c = 0; c < (rows[0] ?? []).length; c += 2) {
  const v = rows.map((r) => Number(r[c + 1])).filter((x) => x > 0).sort((a, b) => a - b);
  if (v.length > 0) console.log(`${rows[0][c].padEnd(15)} p50 ${String(at(v, 0.5)).padStart(6)}  p90 ${String(at(v, 0.9)).padStart(6)}  p99 ${String(at(v, 0.99)).padStart(6)}  (${v.length})`);
}
