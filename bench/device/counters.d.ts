declare module "bench/counters" {
  /** [slots, chunkBytes, stackPeakSlots (-1 unless instrumented), aliased preloaded objects]; collect: gc() first. */
  export function counters(collect: boolean): [number, number, number, number];
  /** Starts a new stack high-water mark (instrumented builds). */
  export function resetStackPeak(): void;
  /** [constructor name, instances, slots, ...] of what is live in RAM. */
  export function census(): (string | number)[];
}
