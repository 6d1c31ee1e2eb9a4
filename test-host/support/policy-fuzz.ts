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

import { prng } from "./prng.js";
import { Policy, PolicyError, type StreamType } from "../../src/policy/reader.js";
import { policyToJson } from "../../src/policy/to-json.js";
import { policyCrc } from "../../src/policy/crc.js";
import {
  HEADER_SIZE, ENTRY_SIZE, H_MAGIC, H_VERSION, H_SCHEMA_VERSION, H_RELEASE, H_LENGTH, H_CRC,
  H_PRODUCT, H_SOCKS5, H_TABLE_COUNTS, H_INDEX_COUNT, H_SECTION_LENGTHS,
  S_INDEX, S_STRINGS, S_RECORDS, S_DER,
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
  /**
   * Sum (mod 2^32) of one FNV-1a hash per mutant over its number, mutation,
   * every outcome and everything read (the JSON text of the policy, lookup
   * results, certificate sizes): Node and XS must agree. A sum, so that runs
   * over consecutive ranges of iterations merge exactly (mergeReports).
   */
  digest: number;
}

export const MUTATIONS = ["bitflip", "truncate", "extend", "header", "reference", "bytes"] as const;


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

/**
 * FNV-1a over the code points of `text`, 32 bits, continued from `h`. Not
 * charCodeAt(i): XS keeps strings in UTF-8, so indexing is O(i) and a loop
 * over a long string quadratic; iteration is linear.
 */
function fnv(h: number, text: string): number {
  for (const ch of text) h = Math.imul(h ^ ch.codePointAt(0)!, 0x01000193) >>> 0;
  return Math.imul(h ^ 0x1f, 0x01000193) >>> 0; // separator
}

/** Reads of single streamtype keys, each going through slot() on its own; the last key id scans the whole record. */
const SINGLE_READS: ((st: StreamType) => unknown)[] = [
  (st) => st.has("aws_iot"),
  (st) => st.protocol,
  (st) => st.string("http_url"),
  (st) => st.number("timeout_ms"),
  (st) => st.number("port"),
  (st) => st.flag("tls"),
  (st) => st.retry?.backoff.join(","),
  (st) => st.trustStore?.size,
  (st) => st.auth?.name,
  (st) => st.cert("server_key")?.der.length,
  (st) => JSON.stringify(st.pairs("metadata")),
  (st) => JSON.stringify(st.pairs("http_resp_map")),
];

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
  /** JSON text of the unmutated policy: a mutant that reads the same is hashed as "same" (cheap and exact). */
  originalJson: string;
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
  if (json !== undefined) c.digest = fnv(c.digest, json === c.originalJson ? "same" : json);
  // every name in the index, looked up by name; then single keys read
  // straight from the record (policyToJson goes through keys() first, which
  // checks the whole record before any single key is read)
  const count = p.streamtypeCount;
  for (let i = 0; i < count; i++) {
    const found = guarded(c, () => {
      const name = p.streamtypeAt(i).name;
      const st = p.streamtype(name);
      return st === undefined ? "-" : st.name === name ? "=" : "!";
    });
    if (found !== undefined) c.digest = fnv(c.digest, found);
    const st = guarded(c, () => p.streamtypeAt(i));
    if (st === undefined) continue;
    for (const read of SINGLE_READS) {
      const value = guarded(c, () => String(read(st)));
      if (value !== undefined) c.digest = fnv(c.digest, value);
    }
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

/** A mutant of `original` (a new array; the original is left alone) made by mutation `kind`. */
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
      // the last byte of the section (the NUL ending the string table, the end of the last record or list)
      if (rand() % 4 === 0) {
        b[hi - 1] = rand() % 2 ? 0xff : 0x41;
        return b;
      }
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
    failures: [], failureCount: 0, digest: 0,
  };
}

/**
 * `iterations` mutants of `binaries` (valid compiled policies), numbered from
 * `first`, from `seed`. Each mutant depends only on (seed, its number), so a
 * long run can be split in ranges — chunks per XS crank, or parallel workers —
 * and mergeReports() of the parts equals the report of the whole run.
 */
export function fuzzPolicies(binaries: Uint8Array[], iterations: number, seed: number, first = 0): FuzzReport {
  const report = emptyReport();
  const originalJson = binaries.map((b) => JSON.stringify(policyToJson(Policy.open(b))));
  for (let n = first; n < first + iterations; n++) {
    // one PRNG per iteration, seeded by its number, so that any iteration can be replayed alone
    const rand = prng(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35));
    const which = rand() % binaries.length;
    const original = binaries[which]!;
    const kind = rand() % MUTATIONS.length;
    const mutant = mutate(rand, original, kind);
    const crcFixed = rand() % 2 === 0;
    if (crcFixed) fixCrc(mutant);
    const c: Ctx = {
      rand, originalJson: originalJson[which]!, iteration: n, report, outcome: "ok",
      digest: fnv(0x811c9dc5, `${n}:${which}:${kind}:${crcFixed ? 1 : 0}:${mutant.length}`),
    };
    const p = guarded(c, () => Policy.open(mutant));
    if (p) {
      if (crcFixed) {
        // verify must pass (the CRC is right), then the deep checks run
        if (guarded(c, () => p.verify()) !== undefined) traverse(c, p);
      } else {
        // a stale CRC: verify must notice any change; then read it regardless
        const verify: Ctx = { rand, originalJson: "", iteration: n, report, outcome: "ok", digest: 0 };
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
    report.digest = (report.digest + fnv(c.digest, c.outcome)) >>> 0;
  }
  return report;
}

/** Joins the reports of runs over consecutive ranges of iterations (in order) into the report of the whole run. */
export function mergeReports(parts: FuzzReport[]): FuzzReport {
  const out = emptyReport();
  for (const r of parts) {
    out.iterations += r.iterations;
    out.ok += r.ok;
    for (const [k, v] of Object.entries(r.byCode)) out.byCode[k] = (out.byCode[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.byMutation)) out.byMutation[k] = (out.byMutation[k] ?? 0) + v;
    out.crcFixed += r.crcFixed;
    out.checksumRejected += r.checksumRejected;
    out.checksumMissed += r.checksumMissed;
    for (const f of r.failures) if (out.failures.length < 10) out.failures.push(f);
    out.failureCount += r.failureCount;
    out.digest = (out.digest + r.digest) >>> 0;
  }
  return out;
}

/**
 * A policy (JSON text) using what the lws corpus does not: metrics, several
 * retries, server_cert/server_key, options, http_resp_map, via-socks5, u32
 * and MQTT keys, and non-ASCII streamtype names (UTF-8 of 2, 3 and 4 bytes),
 * so that the fuzz reaches every part of the reader. `cert` is a base64 DER
 * certificate.
 */
export function featurePolicy(cert: string): string {
  return JSON.stringify({
    release: "fuzz-1", product: "fuzz", "schema-version": 1, "via-socks5": "user:pass@127.0.0.1:1080",
    retry: [
      { default: { backoff: [1000, 2000, 300000], conceal: 5, jitterpc: 20, svalidping: 30, svalidhup: 35 } },
      { quick: { backoff: [10], conceal: 1 } },
      { bare: {} },
    ],
    certs: [{ ca: cert }, { srv: cert }],
    trust_stores: [{ name: "store", stack: ["ca", "srv"] }, { name: "one", stack: ["srv"] }],
    metrics: [
      { name: "net", us_schedule: 60000000, us_halflife: 3600000000, min_outlier: 200, report: "metrics_report" },
      { name: "quiet" },
    ],
    auth: [{ name: "sigv4", type: "sigv4", streamtype: "api", blob: 1 }, { name: "plain", type: "jwt" }],
    s: [
      { api: { endpoint: "api.example.com", port: 443, protocol: "h2", tls: true, tls_trust_store: "store", retry: "default",
        timeout_ms: 4000000000, http_method: "POST", http_url: "/v1/${thing}", metadata: [{ thing: "" }, { ctype: "content-type:" }],
        http_resp_map: [{ "200": 1 }, { "404": 2 }], use_auth: "sigv4", aws_region: "eu-west-1", proxy_buflen: 32768 } },
      { "café_ß": { endpoint: "xn--caf-dma.example", port: 80, protocol: "h1", http_method: "GET", http_url: "/", retry: "quick" } },
      { "日本語": { endpoint: "mqtt.example", port: 8883, protocol: "mqtt", tls: true, tls_trust_store: "one",
        mqtt_topic: "t/${id}", metadata: [{ id: "" }], mqtt_qos: 1, mqtt_keep_alive: 60, mqtt_will_topic: "w", mqtt_will_qos: 2, aws_iot: true } },
      { "emoji😀": { endpoint: "ws.example", port: 443, protocol: "ws", ws_subprotocol: "chat", ws_binary: true, retry: "bare", use_auth: "plain" } },
      { srv: { server: true, port: 7681, protocol: "h1", tls: true, server_cert: "srv", server_key: "ca", options: [{ mode: "fast" }] } },
      { raw_sink: { protocol: "raw", local_sink: true, attr_priority: 3, perf: true } },
    ],
  });
}
