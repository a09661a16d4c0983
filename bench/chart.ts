// The latency chart of docs/benchmarks.md: cumulative distributions on a log time axis,
// drawn as SVG straight from the histograms of the samples (no chart library).
import { HISTOGRAM_EDGES_US, type Summary } from './stats.js';

export interface Series {
  label: string;
  summary: Summary;
}

const W = 820;
const H = 460;
const PAD = { left: 64, right: 24, top: 48, bottom: 120 };
const X_DECADES = [1, 6] as const; // 10 us .. 1 s
const COLORS = ['#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#d62728', '#8c564b', '#7f7f7f'];
const TARGETS: [number, string][] = [
  [150, 'p50 target 150 us'],
  [1000, 'p99 target 1 ms'],
];

const x = (us: number): number => {
  const t = (Math.log10(us) - X_DECADES[0]) / (X_DECADES[1] - X_DECADES[0]);
  return PAD.left + Math.min(1, Math.max(0, t)) * (W - PAD.left - PAD.right);
};
const y = (share: number): number => PAD.top + (1 - share) * (H - PAD.top - PAD.bottom);
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Points of the cumulative share at each bin's upper edge. */
function cdf(summary: Summary): string {
  const bins = summary.histogram ?? [];
  const total = bins.reduce((a, b) => a + b, 0);
  let cum = 0;
  const pts: string[] = [`${x(10 ** X_DECADES[0]).toFixed(1)},${y(0).toFixed(1)}`];
  HISTOGRAM_EDGES_US.forEach((edge, i) => {
    const before = cum / total;
    cum += bins[i] ?? 0;
    if (edge < 10 ** X_DECADES[0] || edge > 10 ** X_DECADES[1]) return;
    pts.push(`${x(edge).toFixed(1)},${y(before).toFixed(1)}`, `${x(edge).toFixed(1)},${y(cum / total).toFixed(1)}`);
  });
  return pts.join(' ');
}

export function latencyChart(title: string, series: Series[], note: string): string {
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let d = X_DECADES[0]; d <= X_DECADES[1]; d++) {
    const us = 10 ** d;
    const label = us >= 1e6 ? `${us / 1e6} s` : us >= 1e3 ? `${us / 1e3} ms` : `${us} us`;
    out.push(
      `<line x1="${x(us)}" y1="${PAD.top}" x2="${x(us)}" y2="${y(0)}" stroke="#ddd"/>`,
      `<text x="${x(us)}" y="${y(0) + 16}" text-anchor="middle">${label}</text>`,
    );
  }
  for (const share of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
    out.push(
      `<line x1="${PAD.left}" y1="${y(share)}" x2="${W - PAD.right}" y2="${y(share)}" stroke="${share === 0.5 || share === 0.9 ? '#bbb' : '#eee'}"/>`,
      `<text x="${PAD.left - 6}" y="${y(share) + 4}" text-anchor="end">${Math.round(share * 100)} %</text>`,
    );
  }
  for (const [us, label] of TARGETS)
    out.push(
      `<line x1="${x(us)}" y1="${PAD.top}" x2="${x(us)}" y2="${y(0)}" stroke="#444" stroke-dasharray="4 3"/>`,
      `<text x="${x(us) + 4}" y="${y(0) - 6}" fill="#444">${label}</text>`,
    );
  out.push(
    `<text x="${(PAD.left + W - PAD.right) / 2}" y="${y(0) + 34}" text-anchor="middle">from the kernel event (CLOCK_MONOTONIC) to the consumer; log scale</text>`,
    `<text x="16" y="${(PAD.top + y(0)) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(PAD.top + y(0)) / 2})">share of events at or below</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const col = i % 2;
    const row = Math.floor(i / 2);
    const lx = PAD.left + col * 380;
    const ly = y(0) + 56 + row * 18;
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${cdf(s.summary)}"/>`,
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${ly - 4}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${lx + 28}" y="${ly}">${esc(`${s.label} (n=${s.summary.count})`)}</text>`,
    );
  });
  out.push(`<text x="${W - PAD.right}" y="${H - 8}" text-anchor="end" fill="#666" font-size="11">${esc(note)}</text>`, '</svg>');
  return `${out.join('\n')}\n`;
}
