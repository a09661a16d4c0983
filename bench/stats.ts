// Summaries of samples: nearest-rank percentiles and a log-spaced histogram (what the chart draws).

export interface Summary {
  unit: string;
  count: number;
  min: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
  /** counts per bin of HISTOGRAM_EDGES_US: [< edge 0, [edge 0, edge 1), ..., >= last edge] */
  histogram?: number[];
}

/** Bin edges in microseconds: 8 per decade from 1 us to 10 s. */
export const HISTOGRAM_EDGES_US: readonly number[] = Array.from({ length: 8 * 7 + 1 }, (_, i) =>
  Number((10 ** (i / 8)).toPrecision(3)),
);

export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

function histogram(sortedUs: Float64Array): number[] {
  const counts = new Array<number>(HISTOGRAM_EDGES_US.length + 1).fill(0);
  let bin = 0;
  for (const v of sortedUs) {
    while (bin < HISTOGRAM_EDGES_US.length && v >= HISTOGRAM_EDGES_US[bin]!) bin++;
    counts[bin]!++;
  }
  return counts;
}

/** Percentiles of samples; with `histogram`, samples are microseconds and binned too. */
export function summarize(samples: readonly number[], unit: string, withHistogram = false): Summary {
  const sorted = Float64Array.from(samples).sort();
  const out: Summary = {
    unit,
    count: sorted.length,
    min: sorted.length ? sorted[0]! : null,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : null,
    mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null,
  };
  if (withHistogram) out.histogram = histogram(sorted);
  return out;
}

export function median(values: readonly number[]): number | null {
  return percentile(Float64Array.from(values).sort(), 50);
}

/** From one CLOCK_MONOTONIC ns stamp to another, in microseconds. */
export function usBetween(fromNs: bigint | string, toNs: bigint | string): number {
  return Number(BigInt(toNs) - BigInt(fromNs)) / 1000;
}
