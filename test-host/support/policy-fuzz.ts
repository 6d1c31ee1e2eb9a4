// Deterministic mutation fuzzer for the compiled-policy reader. PORTABLE: no
// Node imports, so the very same code runs on Node and, bundled, on XS; the
// report's digest lets the two be compared exactly.
//
// Every iteration takes one valid binary, applies one mutation (bit flips,
// truncation, extension, header field overwrite, u16 reference corruption,
// byte overwrite inside the byte-addressed sections), with or without fixing
// the CRC up afterwards, then opens the mutant and reads everything. The
// reader may only ever answer with a value or a PolicyError; anything else
// (RangeError from a DataView, TypeError, ...) is a failure.

import { Policy, PolicyError } from "../../src/policy/reader.js";
import { policyToJson } from "../../src/policy/to-json.js";
import { policyCrc } from "../../src/policy/crc.js";
import {
  HEADER_SIZE, ENTRY_SIZE, H_MAGIC, H_VERSION, H_SCHEMA_VERSION, H_RELEASE, H_LENGTH, H_CRC,
  H_PRODUCT, H_SOCKS5, H_TABLE_COUNTS, H_INDEX_COUNT, H_SECTION_LENGTHS,
  S_INDEX, S_STRINGS, S_LISTS, S_RECORDS, S_DER,
} from "../../src/policy/format.js";

export interface FuzzFailure {
  readonly iteration: number;
  readonly message: string;
}

export interface FuzzReport {
  /** Mutants tried. */
  iterations: number;
  /** Mutants read to the end without a PolicyError. */
  ok: number;
  /** Mutants rejected, by PolicyError code (the first one met). */
  byCode: Record<string, number>;
  /** Mutants per mutation kind (see MUTATIONS). */
  byMutation: Record<string, number>;
  /** Mutants whose CRC was recomputed, so that verify() passes and the deep checks run. */
  crcFixed: number;
  /** Mutants left with a stale CRC that verify() rejected (bad-checksum). */
  checksumRejected: number;
  /** Mutants left with a stale CRC whose covered bytes changed, yet verify() passed. Should be 0. */
  checksumMissed: number;
  /** Exceptions other than PolicyError (the first 10). */
  failures: FuzzFailure[];
  /** Count of all such exceptions. */
  failureCount: number;
  /** 32-bit FNV-1a over every outcome (and what was read), in order: Node and XS must agree. */
  digest: number;
}

export const MUTATIONS = ["bitflip", "truncate", "extend", "header", "reference", "bytes"] as const;

/** mulberry32: a small, fast, well-mixed 32-bit PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Header fields [offset, width in bytes]. */
const HEADER_FIELDS: readonly [number, number][] = [
  [H_MAGIC, 4], [H_VERSION, 1], [H_SCHEMA_VERSION, 1], [H_RELEASE, 2], [H_LENGTH, 4],
  [H_PRODUCT, 2], [H_SOCKS5, 2],
  [H_TABLE_COUNTS + 0, 1], [H_TABLE_COUNTS + 1, 1], [H_TABLE_COUNTS + 2, 1], [H_TABLE_COUNTS + 3, 1], [H_TABLE_COUNTS + 4, 1],
  [H_INDEX_COUNT, 2], [H_SECTION_LENGTHS, 2], [H_SECTION_LENGTHS + 2, 2], [H_SECTION_LENGTHS + 4, 2],
  // the length fields matter most: give them more weight
  [H_LENGTH, 4], [H_INDEX_COUNT, 2], [H_SECTION_LENGTHS, 2], [H_SECTION_LENGTHS + 2, 2], [H_SECTION_LENGTHS + 4, 2],
];

function readLE(b: Uint8Array, at: number, width: number): number {
  let v = 0;
  for (let i = width - 1; i >= 0; i--) v = v * 256 + b[at + i]!;
  return v;
}

function writeLE(b: Uint8Array, at: number, width: number, value: number): void {
  for (let i = 0; i < width; i++) {
    if (at + i < b.length) b[at + i] = value & 0xff;
    value = Math.floor(value / 256);
  }
}

/**
 * Section starts and ends of a valid binary, from its header, as the reader
 * computes them: [start, end) of sections 0..9.
 */
function sections(b: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  let at = HEADER_SIZE;
  for (let s = 0; s <= S_DER; s++) {
    let size: number;
    if (s < S_INDEX) size = b[H_TABLE_COUNTS + s]! * ENTRY_SIZE[s]!;
    else if (s === S_INDEX) size = readLE(b, H_INDEX_COUNT, 2) * ENTRY_SIZE[S_INDEX]!;
    else if (s < S_DER) size = readLE(b, H_SECTION_LENGTHS + 2 * (s - S_STRINGS), 2);
    else size = Math.max(0, b.length - at);
    out.push([at, at + size]);
    at += size;
  }
  return out;
}

/** FNV-1a, 32 bits, continued from `h`. */
function fnv(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return Math.imul(h ^ 0x1f, 0x01000193) >>> 0; // separator
}

/** Names to look up besides the ones the policy holds: misses on both sides, odd code points. */
const EXTRA_NAMES = ["", "a", "zzzz", "\u007f", "é", "\u0800x", "\u{1f600}", "mintest\u0000", "\uffff\uffff"];

function randomName(rand: () => number): string {
  const n = rand() % 12;
  let s = "";
  for (let i = 0; i < n; i++) {
    const r = rand() % 16;
    if (r < 10) s += String.fromCharCode(0x61 + (rand() % 26));
    else if (r < 12) s += String.fromCharCode(0x20 + (rand() % 0x60));
    else if (r < 14) s += String.fromCharCode(0x80 + (rand() % 0x780));
    else if (r < 15) s += String.fromCharCode(0x800 + (rand() % 0xd000));
    else s += String.fromCodePoint(0x10000 + (rand() % 0x10000));
  }
  return s;
}

interface Ctx {
  rand: () => number;
  iteration: number;
  report: FuzzReport;
  /** First PolicyError code met in this mutant, or "ok". */
  outcome: string;
  digest: number;
}

/**
 * Runs `f`; a PolicyError becomes part of the outcome and the digest, any
 * other exception a failure. Returns f's value, or undefined when it threw.
 */
function guarded<T>(c: Ctx, f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof PolicyError) {
      if (c.outcome === "ok") c.outcome = e.code;
      c.digest = fnv(c.digest, e.code);
    } else {
      c.report.failureCount++;
      c.digest = fnv(c.digest, "FAILURE");
      if (c.report.failures.length < 10) {
        const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        c.report.failures.push({ iteration: c.iteration, message });
      }
    }
    return undefined;
  }
}

/** Reads everything the policy holds, each part on its own so that one bad part does not hide the others. */
function traverse(c: Ctx, p: Policy): void {
  const json = guarded(c, () => JSON.stringify(policyToJson(p)));
  if (json !== undefined) c.digest = fnv(c.digest, json);
  // every name in the index, looked up by name
  const count = p.streamtypeCount;
  for (let i = 0; i < count; i++) {
    const found = guarded(c, () => {
      const name = p.streamtypeAt(i).name;
      const st = p.streamtype(name);
      return st === undefined ? "-" : st.name === name ? "=" : "!";
    });
    if (found !== undefined) c.digest = fnv(c.digest, found);
  }
  // misses and odd names
  for (let i = 0; i < 3; i++) {
    const name = i === 0 ? EXTRA_NAMES[c.rand() % EXTRA_NAMES.length]! : randomName(c.rand);
    const found = guarded(c, () => {
      const st = p.streamtype(name);
      return st === undefined ? "-" : st.name;
    });
    if (found !== undefined) c.digest = fnv(c.digest, found);
  }
  // every certificate of every trust store, and of the cert table
  const stores = p.trustStoreCount;
  for (let i = 0; i < stores; i++) {
    const sizes = guarded(c, () => {
      const t = p.trustStore(i);
      let out = "";
      for (let j = 0; j < t.size; j++) out += t.cert(j).der.length + ",";
      return out;
    });
    if (sizes !== undefined) c.digest = fnv(c.digest, sizes);
  }
  const certs = p.certCount;
  for (let i = 0; i < certs; i++) {
    const der = guarded(c, () => String(p.cert(i).der.byteLength));
    if (der !== undefined) c.digest = fnv(c.digest, der);
  }
}

/** Applies one random mutation in place (or returns a new array for size changes). */
function mutate(rand: () => number, original: Uint8Array, kind: number): Uint8Array {
  let b: Uint8Array;
  switch (MUTATIONS[kind]) {
    case "bitflip": {
      b = original.slice();
      const flips = 1 + (rand() % 8);
      for (let i = 0; i < flips; i++) {
        // half of the flips land in the header and tables, where they bite hardest
        const limit = rand() % 2 ? Math.min(b.length, 256) : b.length;
        const at = rand() % limit;
        b[at] = b[at]! ^ (1 << (rand() % 8));
      }
      return b;
    }
    case "truncate":
      return original.slice(0, rand() % original.length);
    case "extend": {
      const extra = 1 + (rand() % 64);
      b = new Uint8Array(original.length + extra);
      b.set(original);
      for (let i = original.length; i < b.length; i++) b[i] = rand() & 0xff;
      // half the time the header claims the extra bytes (they become DER)
      if (rand() % 2) writeLE(b, H_LENGTH, 4, b.length);
      return b;
    }
    case "header": {
      b = original.slice();
      const [at, width] = HEADER_FIELDS[rand() % HEADER_FIELDS.length]!;
      const old = readLE(b, at, width);
      const max = width === 4 ? 0xffffffff : width === 2 ? 0xffff : 0xff;
      const choices = [0, 0xff, 0xffff, 0xffffffff, old + 1, old - 1, old + 4, old - 4, rand(), rand() % 512];
      const v = choices[rand() % choices.length]!;
      writeLE(b, at, width, v < 0 ? max : v % (max + 1));
      return b;
    }
    case "reference": {
      // a u16 inside a table, the index, the lists or the records
      b = original.slice();
      const s = sections(original);
      const candidates: number[] = [];
      for (let i = 0; i <= S_RECORDS; i++) if (i !== S_STRINGS && s[i]![1] - s[i]![0] >= 2) candidates.push(i);
      if (!candidates.length) return b;
      const [lo, hi] = s[candidates[rand() % candidates.length]!]!;
      // tables hold u16s at even offsets; lists and records at any offset
      let at = lo + (rand() % (hi - lo - 1));
      if (at < s[S_STRINGS]![0] && (at - lo) % 2) at--;
      const old = readLE(b, at, 2);
      const choices = [0, 0xffff, 0xfffe, old + 1, old - 1, rand() & 0xffff, rand() % 64, s[S_DER]![0] - lo];
      writeLE(b, at, 2, choices[rand() % choices.length]! & 0xffff);
      return b;
    }
    default: {
      // "bytes": random bytes inside the strings, lists or records (bad UTF-8, lost NULs, bad key ids, counts)
      b = original.slice();
      const s = sections(original);
      const [lo, hi] = s[S_STRINGS + (rand() % 3)]!;
      if (hi <= lo) return b;
      const n = 1 + (rand() % 4);
      for (let i = 0; i < n; i++) {
        const pick = rand() % 4;
        b[lo + (rand() % (hi - lo))] = pick === 0 ? 0 : pick === 1 ? 0xff : pick === 2 ? 0x80 | (rand() & 0x3f) : rand() & 0xff;
      }
      return b;
    }
  }
}

/** Recomputes the CRC over the bytes the header's length covers (or all of them), as verify() does. */
function fixCrc(b: Uint8Array): void {
  if (b.length < H_CRC + 4) return;
  const length = readLE(b, H_LENGTH, 4);
  const covered = length >= H_CRC + 4 && length <= b.length ? b.subarray(0, length) : b;
  writeLE(b, H_CRC, 4, policyCrc(covered));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function emptyReport(): FuzzReport {
  return {
    iterations: 0, ok: 0, byCode: {}, byMutation: {}, crcFixed: 0, checksumRejected: 0, checksumMissed: 0,
    failures: [], failureCount: 0, digest: 0x811c9dc5,
  };
}

/**
 * `iterations` mutants of `binaries` (valid compiled policies), from `seed`.
 * Pass the report of an earlier run as `previous` to go on from where it
 * stopped: fuzzPolicies(b, m, seed, fuzzPolicies(b, n, seed)) equals
 * fuzzPolicies(b, n + m, seed), digest included, so a long run can be split
 * in chunks (XS meters each crank).
 */
export function fuzzPolicies(binaries: Uint8Array[], iterations: number, seed: number, previous?: FuzzReport): FuzzReport {
  const report = emptyReport();
  if (previous) {
    Object.assign(report, previous);
    report.byCode = { ...previous.byCode };
    report.byMutation = { ...previous.byMutation };
    report.failures = previous.failures.slice();
  }
  const first = report.iterations;
  for (let n = first; n < first + iterations; n++) {
    // one PRNG per iteration, seeded by its number, so that any iteration can be replayed alone
    const rand = prng(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35));
    const original = binaries[rand() % binaries.length]!;
    const kind = rand() % MUTATIONS.length;
    const mutant = mutate(rand, original, kind);
    const crcFixed = rand() % 2 === 0;
    if (crcFixed) fixCrc(mutant);
    const c: Ctx = { rand, iteration: n, report, outcome: "ok", digest: fnv(0x811c9dc5, `${n}:${kind}:${crcFixed ? 1 : 0}:${mutant.length}`) };
    const p = guarded(c, () => Policy.open(mutant));
    if (p) {
      if (crcFixed) {
        // verify must pass (the CRC is right), then the deep checks run
        if (guarded(c, () => p.verify()) !== undefined) traverse(c, p);
      } else {
        // a stale CRC: verify must notice any change; then read it regardless
        const verify: Ctx = { rand, iteration: n, report, outcome: "ok", digest: 0 };
        if (guarded(verify, () => p.verify()) === undefined) {
          if (verify.outcome === "bad-checksum") report.checksumRejected++;
        } else if (p.bytes.length !== original.length || !sameBytes(p.bytes, original)) {
          report.checksumMissed++;
        }
        c.digest = fnv(c.digest, verify.outcome);
        traverse(c, p);
      }
    }
    report.iterations++;
    if (c.outcome === "ok") report.ok++;
    else report.byCode[c.outcome] = (report.byCode[c.outcome] ?? 0) + 1;
    const m = MUTATIONS[kind]!;
    report.byMutation[m] = (report.byMutation[m] ?? 0) + 1;
    if (crcFixed) report.crcFixed++;
    report.digest = fnv(report.digest, `${c.digest}:${c.outcome}`);
  }
  return report;
}
