// Encodes a canonical policy into the binary table that src/policy/reader.ts
// reads (docs/policy-format.md). Deterministic: the same canonical policy
// always gives the same bytes.

import * as F from "../../src/policy/format.js";
import { STREAMTYPE_KEYS, PROTOCOLS } from "../../src/policy/keys.js";
import { RETRY_NUMBER_KEYS, METRIC_NUMBER_KEYS, type CanonicalPolicy, type PairList } from "../../src/policy/canonical.js";
import { policyCrc } from "../../src/policy/crc.js";
import { utf8Encode } from "../../src/util/utf8.js";
import { base64Decode } from "../../src/util/base64.js";

export class PolicyTooLargeError extends Error {}

/** A growable little-endian byte buffer. */
class Bytes {
  private buf = new Uint8Array(256);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  u8(x: number): void { this.room(1); this.buf[this.length++] = x; }
  u16(x: number): void { this.u8(x & 0xff); this.u8((x >>> 8) & 0xff); }
  u32(x: number): void { this.u16(x & 0xffff); this.u16(x >>> 16); }
  bytes(b: Uint8Array): void { this.room(b.length); this.buf.set(b, this.length); this.length += b.length; }
  /** Unsigned LEB128: 7 bits a byte, low first. */
  leb128(x: number): void {
    for (; x >= 0x80; x = Math.floor(x / 128)) this.u8((x % 128) | 0x80);
    this.u8(x);
  }
  align(n: number): void { while (this.length % n) this.u8(0); }
  view(): Uint8Array { return this.buf.subarray(0, this.length); }
}

/**
 * NUL-terminated UTF-8 strings. A string that is the tail of another is not
 * stored again: its reference points into the longer one. Built in two
 * passes: the first records every string used, the second hands out refs.
 */
class StringTable {
  readonly out = new Bytes();
  private readonly wanted = new Set<string>();
  private refs?: Map<string, number>;

  ref(s: string | undefined): number {
    if (s === undefined) return F.NONE;
    if (!this.refs) {
      this.wanted.add(s);
      return 0;
    }
    return this.refs.get(s)!;
  }

  /** Lays the recorded strings out, longest first so that tails find their host. */
  layout(): void {
    const encoded = [...this.wanted].map((s) => ({ s, b: utf8Encode(s) }));
    encoded.sort((x, y) => y.b.length - x.b.length || (x.s < y.s ? -1 : x.s > y.s ? 1 : 0));
    const placed: { at: number; b: Uint8Array }[] = [];
    this.refs = new Map();
    for (const { s, b } of encoded) {
      const host = placed.find((p) => endsWith(p.b, b));
      if (host) {
        this.refs.set(s, host.at + host.b.length - b.length);
        continue;
      }
      placed.push({ at: this.out.length, b });
      this.refs.set(s, this.out.length);
      this.out.bytes(b);
      this.out.u8(0);
    }
  }
}

function endsWith(host: Uint8Array, tail: Uint8Array): boolean {
  if (tail.length > host.length) return false;
  const shift = host.length - tail.length;
  for (let i = 0; i < tail.length; i++) if (host[shift + i] !== tail[i]) return false;
  return true;
}

/** Deduplicated lists and retry data, byte-addressed: [u8 count][items]. */
class ListTable {
  readonly out = new Bytes();
  private readonly refs = new Map<string, number>();

  /** A list of `count` items. */
  add(count: number, items: Bytes): number {
    const data = new Bytes();
    data.u8(count);
    data.bytes(items.view());
    return this.raw(data);
  }

  /** Bytes as they are (retry data). */
  raw(data: Bytes): number {
    const key = data.view().join(",");
    let r = this.refs.get(key);
    if (r === undefined) {
      r = this.out.length;
      this.out.bytes(data.view());
      this.refs.set(key, r);
    }
    return r;
  }
}

const indexOfName = <T>(list: T[], nameOf: (t: T) => string): Map<string, number> =>
  new Map(list.map((t, i) => [nameOf(t), i]));
const onlyKey = (o: object): string => Object.keys(o)[0]!;

export function emitPolicy(policy: CanonicalPolicy): Uint8Array {
  const strings = new StringTable();
  build(policy, strings); // records the strings
  strings.layout();
  return build(policy, strings);
}

function build(policy: CanonicalPolicy, strings: StringTable): Uint8Array {
  const lists = new ListTable();
  const retries = policy.retry ?? [];
  const certs = policy.certs ?? [];
  const stores = policy.trust_stores ?? [];
  const auths = policy.auth ?? [];
  const retryIndex = indexOfName(retries, onlyKey);
  const certIndex = indexOfName(certs, onlyKey);
  const storeIndex = indexOfName(stores, (s) => s.name);
  const authIndex = indexOfName(auths, (a) => a.name);

  const header = { release: strings.ref(policy.release), product: strings.ref(policy.product), socks5: strings.ref(policy["via-socks5"]) };

  const retryTable = new Bytes();
  for (const item of retries) {
    const name = onlyKey(item);
    const r = item[name]!;
    const data = new Bytes();
    let present = 0;
    RETRY_NUMBER_KEYS.forEach((k, bit) => { if (r[k] !== undefined) present |= 1 << bit; });
    data.u8(present);
    for (const k of RETRY_NUMBER_KEYS) if (r[k] !== undefined) data.leb128(r[k]!);
    data.u8(r.backoff?.length ?? 0);
    for (const ms of r.backoff ?? []) data.leb128(ms);
    retryTable.u16(strings.ref(name));
    retryTable.u16(lists.raw(data));
  }

  const certTable = new Bytes();
  const der = new Bytes();
  for (const item of certs) {
    const name = onlyKey(item);
    const bytes = base64Decode(item[name]!)!;
    certTable.u16(strings.ref(name));
    certTable.u16(bytes.length);
    certTable.u32(der.length);
    der.bytes(bytes);
  }

  const storeTable = new Bytes();
  for (const s of stores) {
    const items = new Bytes();
    for (const c of s.stack) items.u8(certIndex.get(c)!);
    storeTable.u16(strings.ref(s.name));
    storeTable.u16(lists.add(s.stack.length, items));
  }

  const metricsTable = new Bytes();
  for (const m of policy.metrics ?? []) {
    let present = 0;
    METRIC_NUMBER_KEYS.forEach((k, bit) => { if (m[k] !== undefined) present |= 1 << bit; });
    metricsTable.u16(strings.ref(m.name));
    metricsTable.u16(strings.ref(m.report));
    metricsTable.u32(m.us_schedule ?? 0);
    metricsTable.u32(m.us_halflife ?? 0);
    metricsTable.u8(m.min_outlier ?? 0);
    metricsTable.u8(present);
    metricsTable.u16(0);
  }

  const authTable = new Bytes();
  for (const a of auths) {
    authTable.u16(strings.ref(a.name));
    authTable.u16(strings.ref(a.type));
    authTable.u16(strings.ref(a.streamtype));
    authTable.u8(a.blob ?? 0xff);
    authTable.u8(0);
  }

  const pairList = (pairs: PairList, numeric: boolean): number => {
    const items = new Bytes();
    for (const p of pairs) {
      const k = onlyKey(p);
      items.u16(numeric ? Number(k) : strings.ref(k));
      items.u16(numeric ? (p[k] as number) : strings.ref(p[k] as string));
    }
    return lists.add(pairs.length, items);
  };

  const index = new Bytes();
  const records = new Bytes();
  for (const item of policy.s ?? []) {
    const name = onlyKey(item);
    const st = item[name]!;
    const ids: number[] = [];
    const values = new Bytes();
    STREAMTYPE_KEYS.forEach((spec, id) => {
      const value = st[spec.name];
      if (value === undefined) return;
      ids.push(id);
      switch (spec.kind) {
        case "flag": break;
        case "u8": values.u8(value as number); break;
        case "u16": values.u16(value as number); break;
        case "u32": values.u32(value as number); break;
        case "str": values.u16(strings.ref(value as string)); break;
        case "protocol": values.u8(PROTOCOLS.indexOf(value as (typeof PROTOCOLS)[number])); break;
        case "retry": values.u8(retryIndex.get(value as string)!); break;
        case "store": values.u8(storeIndex.get(value as string)!); break;
        case "cert": values.u8(certIndex.get(value as string)!); break;
        case "auth": values.u8(authIndex.get(value as string)!); break;
        case "metadata": case "options": values.u16(pairList(value as PairList, false)); break;
        case "respmap": values.u16(pairList(value as PairList, true)); break;
      }
    });
    index.u16(strings.ref(name));
    index.u16(records.length);
    records.u8(ids.length);
    for (const id of ids) records.u8(id);
    records.bytes(values.view());
  }

  if (strings.out.length > F.MAX_U16_SECTION) throw new PolicyTooLargeError(`the string table (${strings.out.length} bytes) is over ${F.MAX_U16_SECTION} bytes`);
  if (lists.out.length > F.MAX_U16_SECTION) throw new PolicyTooLargeError(`the list section (${lists.out.length} bytes) is over ${F.MAX_U16_SECTION} bytes`);
  if (records.length > F.MAX_U16_SECTION) throw new PolicyTooLargeError(`the streamtype records (${records.length} bytes) are over ${F.MAX_U16_SECTION} bytes`);

  const counts = [retries.length, certs.length, stores.length, policy.metrics?.length ?? 0, auths.length];
  const tooMany = counts.findIndex((n) => n > F.MAX_TABLE_ENTRIES);
  if (tooMany >= 0) throw new PolicyTooLargeError(`more than ${F.MAX_TABLE_ENTRIES} entries in table ${tooMany}`);

  const out = new Bytes();
  out.u32(F.MAGIC);
  out.u8(F.FORMAT_VERSION);
  out.u8(policy["schema-version"] ?? 0xff);
  out.u16(header.release);
  out.u32(0); // length, patched below
  out.u32(0); // crc, patched below
  out.u16(header.product);
  out.u16(header.socks5);
  for (const n of counts) out.u8(n);
  out.u8(0); // reserved
  out.u16((policy.s ?? []).length);
  out.u16(strings.out.length);
  out.u16(lists.out.length);
  out.u16(records.length);
  out.u16(0); // reserved
  if (out.length !== F.HEADER_SIZE) throw new Error(`header is ${out.length} bytes`);
  // in SECTION order, without gaps
  for (const s of [retryTable, certTable, storeTable, metricsTable, authTable, index, strings.out, lists.out, records, der]) {
    out.bytes(s.view());
  }
  const bytes = out.view().slice();
  const dv = new DataView(bytes.buffer);
  dv.setUint32(F.H_LENGTH, bytes.length, true);
  dv.setUint32(F.H_CRC, policyCrc(bytes), true);
  return bytes;
}
