/**
 * Whether a series sampled once a minute stays flat: a least-squares line through the last
 * two thirds of the samples (the first third is warm-up: caches, pools and autovacuum settle),
 * and the change that line makes over that span compared with the span's mean.
 *
 * @example
 * judgeFlat([100, 101, 99, 100, 102, 100], 0.1); // { flat: true, changeRatio: ~0.01, ... }
 */

export interface FlatnessVerdict {
  /** Samples the line was fitted to (the last two thirds, at least 2). */
  readonly samples: number;
  /** Slope of the fitted line, units per sample (per minute). */
  readonly slopePerSample: number;
  readonly mean: number;
  /** |slope × (samples − 1)|: how much the line moves over the span, in the series' unit. */
  readonly change: number;
  /** change / |mean|: the same, relative. */
  readonly changeRatio: number;
  /** changeRatio ≤ tolerance or change ≤ floor; null when there are too few samples to say. */
  readonly flat: boolean | null;
  /** The fitted line goes up (a series that is not flat either grows or falls). */
  readonly rising: boolean;
}

/** Least-squares slope of y over x = 0, 1, 2, ... */
export function leastSquaresSlope(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return 0;
  const meanX = (n - 1) / 2;
  const meanY = values.reduce((s, v) => s + v, 0) / n;
  let num = 0;
  let den = 0;
  values.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return num / den;
}

/** The last two thirds of a series (rounded up), the part the verdict looks at. */
export function judgedSpan<T>(values: readonly T[]): readonly T[] {
  return values.slice(Math.floor(values.length / 3));
}

/**
 * `floor`: a change this small is flat whatever the mean (a series that hovers near zero, like
 * unacked inbox rows, moves by more than a share of its mean from noise alone).
 */
export function judgeFlat(
  values: readonly number[],
  tolerance: number,
  floor = 0,
): FlatnessVerdict {
  const span = judgedSpan(values.filter((v) => Number.isFinite(v)));
  const n = span.length;
  const mean = n === 0 ? Number.NaN : span.reduce((s, v) => s + v, 0) / n;
  const slope = leastSquaresSlope(span);
  const change = Math.abs(slope * (n - 1));
  // A series that is zero throughout (no dead tuples at all) is flat.
  const changeRatio =
    mean === 0 ? (change === 0 ? 0 : Number.POSITIVE_INFINITY) : change / Math.abs(mean);
  return {
    samples: n,
    slopePerSample: slope,
    mean,
    change,
    changeRatio,
    flat: n < 3 ? null : changeRatio <= tolerance || change <= floor,
    rising: slope > 0,
  };
}
