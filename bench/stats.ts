// What the benchmarks report with: the median of their rounds, and numbers
// written for a table and for a BENCH line.

/** The middle value; for an even count, the mean of the two middle ones. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Three decimals, as BENCH lines give their figures. */
export const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** A rate for a table: no decimals from 100 up, one below. */
export const fmt = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
