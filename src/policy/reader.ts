// Reads a compiled policy in place: no parsing at open, no copies. Every
// offset is checked before it is followed, so a corrupt or hostile table gives
// a PolicyError, never a wrong read or a runaway loop. verify() adds the
// body CRC, for when a policy is installed rather than at every boot.

import {
  MAGIC, FORMAT_VERSION, HEADER_SIZE, NONE, H_MAGIC, H_VERSION, H_LENGTH, H_CRC,
  H_RELEASE, H_PRODUCT, H_SOCKS5, H_SCHEMA_VERSION, H_TABLE_COUNTS, H_INDEX_COUNT, H_SECTION_LENGTHS, ENTRY_SIZE,
  S_STRINGS, S_LISTS, S_RETRIES, S_CERTS, S_DER, S_STORES, S_METRICS, S_AUTHS, S_INDEX, S_RECORDS,
  MAX_U16_SECTION, R_NAME, R_DATA,
  C_NAME, C_LENGTH, C_OFFSET, T_NAME, T_CERTS, M_NAME, M_REPORT, M_SCHEDULE, M_HALFLIFE, M_OUTLIER, M_PRESENT,
  A_NAME, A_TYPE, A_STREAMTYPE, A_BLOB, I_NAME, I_RECORD,
} from "./format.js";
import { STREAMTYPE_KEYS, KEY_ID, PROTOCOLS, valueSize, type KeyKind, type ProtocolName } from "./keys.js";
import { policyCrc } from "./crc.js";
import { utf8Decode } from "../util/utf8.js";

export type PolicyErrorCode =
  | "truncated" | "bad-magic" | "bad-version" | "bad-length" | "bad-section"
  | "bad-reference" | "bad-record" | "bad-string" | "bad-checksum";

export class PolicyError extends Error {
  readonly code: PolicyErrorCode;
  constructor(code: PolicyErrorCode, message: string) {
    super(`policy: ${message}`);
    this.name = "PolicyError";
    this.code = code;
  }
}

function fail(code: PolicyErrorCode, message: string): never {
  throw new PolicyError(code, message);
}

/** Byte length of a section, from the header's counts and lengths. */
function size(v: DataView, section: number): number {
  if (section < S_INDEX) return v.getUint8(H_TABLE_COUNTS + section) * ENTRY_SIZE[section]!;
  if (section === S_INDEX) return v.getUint16(H_INDEX_COUNT, true) * ENTRY_SIZE[S_INDEX]!;
  if (section < S_DER) return v.getUint16(H_SECTION_LENGTHS + 2 * (section - S_STRINGS), true);
  return v.byteLength - start(v, S_DER);
}

/** Sections follow each other without gaps, so a section starts where the ones before it end. */
function start(v: DataView, section: number): number {
  let at = HEADER_SIZE;
  for (let s = 0; s < section; s++) at += size(v, s);
  return at;
}

const end = (v: DataView, section: number): number => start(v, section) + size(v, section);

/** Absolute position of entry i of a table section. */
function entry(v: DataView, section: number, i: number): number {
  const size = ENTRY_SIZE[section]!;
  if (!(i >= 0 && i < (end(v, section) - start(v, section)) / size)) fail("bad-reference", `entry ${i} is outside its table`);
  return start(v, section) + i * size;
}

/** Position of the NUL that ends the string at `ref`; checks it is inside the table. */
function stringEnd(v: DataView, ref: number): number {
  const limit = end(v, S_STRINGS);
  let p = start(v, S_STRINGS) + ref;
  if (p >= limit) fail("bad-reference", `string offset ${ref} is outside the string table`);
  while (v.getUint8(p) !== 0) if (++p >= limit) fail("bad-string", `string at ${ref} has no terminating NUL`);
  return p;
}

function str(v: DataView, ref: number): string | undefined {
  if (ref === NONE) return undefined;
  const stop = stringEnd(v, ref);
  const at = start(v, S_STRINGS) + ref;
  const text = utf8Decode(new Uint8Array(v.buffer, v.byteOffset + at, stop - at), 0, stop - at);
  if (text === undefined) fail("bad-string", `string at ${ref} is not valid UTF-8`);
  return text;
}

/** A required string (names): absent is corruption. */
function name(v: DataView, ref: number): string {
  return str(v, ref) ?? fail("bad-reference", "a required name is absent");
}

/** Position of the first item of a list [u8 count][items], after checking count × itemSize fits. */
function list(v: DataView, ref: number, itemSize: number): { at: number; count: number } {
  const p = start(v, S_LISTS) + ref;
  if (p + 1 > end(v, S_LISTS)) fail("bad-reference", `list offset ${ref} is outside the list section`);
  const count = v.getUint8(p);
  if (p + 1 + count * itemSize > end(v, S_LISTS)) fail("bad-reference", `list at ${ref} runs past the list section`);
  return { at: p + 1, count };
}

/** Read position of leb128(); module state so that reading allocates nothing. */
let cursor = 0;

/** An unsigned LEB128 number at `cursor` (at most 32 bits), advancing it. */
function leb128(v: DataView): number {
  const limit = end(v, S_LISTS);
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    if (cursor >= limit || shift > 28) fail("bad-reference", "number runs past the list section");
    const b = v.getUint8(cursor++);
    value += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) break;
  }
  if (value > 0xffffffff) fail("bad-reference", "number is over 32 bits");
  return value;
}

/**
 * Finds key `id` in the record at `rec`: the position of its value, or -1 if
 * the key is absent. A record is [u8 n][n ascending key ids][values packed
 * in key order, each valueSize(kind) bytes].
 */
function slot(v: DataView, rec: number, id: number): number {
  const limit = end(v, S_RECORDS);
  if (rec >= limit) fail("bad-reference", "record offset is outside the record section");
  const n = v.getUint8(rec);
  if (rec + 1 + n > limit) fail("bad-record", "record key list runs past the record section");
  let at = rec + 1 + n;
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const k = v.getUint8(rec + 1 + i);
    if (k <= prev || k >= STREAMTYPE_KEYS.length) fail("bad-record", `bad key id ${k} in record`);
    prev = k;
    const size = valueSize(STREAMTYPE_KEYS[k]!.kind);
    if (k === id) {
      if (at + size > limit) fail("bad-record", "record values run past the record section");
      return at;
    }
    if (k > id) return -1;
    at += size;
  }
  return -1;
}

export class Policy {
  readonly #v: DataView;

  private constructor(v: DataView) {
    this.#v = v;
  }

  /** Checks the header and section table; the content is checked as it is read. */
  static open(data: ArrayBuffer | Uint8Array): Policy {
    const v = data instanceof Uint8Array ? new DataView(data.buffer, data.byteOffset, data.byteLength) : new DataView(data);
    if (v.byteLength < HEADER_SIZE) fail("truncated", `${v.byteLength} bytes is shorter than the ${HEADER_SIZE}-byte header`);
    if (v.getUint32(H_MAGIC, true) !== MAGIC) fail("bad-magic", "not a compiled policy (bad magic)");
    const version = v.getUint8(H_VERSION);
    if (version !== FORMAT_VERSION) fail("bad-version", `format version ${version}, this reader knows ${FORMAT_VERSION}`);
    const length = v.getUint32(H_LENGTH, true);
    if (length < HEADER_SIZE || length > v.byteLength) fail("bad-length", `length ${length} does not fit the ${v.byteLength} bytes given`);
    const p = new DataView(v.buffer, v.byteOffset, length);
    if (start(p, S_DER) > length) fail("bad-section", "the sections run past the end of the policy");
    if (size(p, S_STRINGS) > MAX_U16_SECTION || size(p, S_LISTS) > MAX_U16_SECTION || size(p, S_RECORDS) > MAX_U16_SECTION) {
      fail("bad-section", "a section is over the 65534-byte limit");
    }
    return new Policy(p);
  }

  /** Checks the CRC of the whole policy: do it when a policy is installed. */
  verify(): this {
    const v = this.#v;
    const want = v.getUint32(H_CRC, true);
    const got = policyCrc(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    if (got !== want) fail("bad-checksum", `checksum ${got.toString(16)} does not match ${want.toString(16)}`);
    return this;
  }

  /** The whole compiled policy (a view, not a copy). */
  get bytes(): Uint8Array {
    return new Uint8Array(this.#v.buffer, this.#v.byteOffset, this.#v.byteLength);
  }

  get release(): string | undefined { return str(this.#v, this.#v.getUint16(H_RELEASE, true)); }
  get product(): string | undefined { return str(this.#v, this.#v.getUint16(H_PRODUCT, true)); }
  get viaSocks5(): string | undefined { return str(this.#v, this.#v.getUint16(H_SOCKS5, true)); }
  get schemaVersion(): number | undefined {
    const n = this.#v.getUint8(H_SCHEMA_VERSION);
    return n === 0xff ? undefined : n;
  }

  get streamtypeCount(): number { return this.#v.getUint16(H_INDEX_COUNT, true); }
  get retryCount(): number { return this.#v.getUint8(H_TABLE_COUNTS + S_RETRIES); }
  get certCount(): number { return this.#v.getUint8(H_TABLE_COUNTS + S_CERTS); }
  get trustStoreCount(): number { return this.#v.getUint8(H_TABLE_COUNTS + S_STORES); }
  get metricsCount(): number { return this.#v.getUint8(H_TABLE_COUNTS + S_METRICS); }
  get authCount(): number { return this.#v.getUint8(H_TABLE_COUNTS + S_AUTHS); }

  streamtypeAt(i: number): StreamType {
    return new StreamType(this.#v, entry(this.#v, S_INDEX, i));
  }

  /** Binary search of the name-sorted index; undefined if the policy has no such streamtype. */
  streamtype(wanted: string): StreamType | undefined {
    const v = this.#v;
    let lo = 0;
    let hi = this.streamtypeCount - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = entry(v, S_INDEX, mid);
      const c = compareName(v, wanted, v.getUint16(e + I_NAME, true));
      if (c === 0) return new StreamType(v, e);
      if (c < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return undefined;
  }

  retry(i: number): Retry { return new Retry(this.#v, entry(this.#v, S_RETRIES, i)); }
  cert(i: number): Cert { return new Cert(this.#v, entry(this.#v, S_CERTS, i)); }
  trustStore(i: number): TrustStore { return new TrustStore(this.#v, entry(this.#v, S_STORES, i)); }
  metrics(i: number): Metrics { return new Metrics(this.#v, entry(this.#v, S_METRICS, i)); }
  auth(i: number): Auth { return new Auth(this.#v, entry(this.#v, S_AUTHS, i)); }
}

/**
 * Compares `wanted` with the stored UTF-8 name at string `ref`, in code point
 * order, without decoding or allocating.
 */
function compareName(v: DataView, wanted: string, ref: number): number {
  if (ref === NONE) fail("bad-reference", "streamtype name is absent");
  const stop = stringEnd(v, ref);
  let p = start(v, S_STRINGS) + ref;
  let i = 0;
  while (i < wanted.length) {
    const c = wanted.codePointAt(i)!;
    i += c > 0xffff ? 2 : 1;
    // the stored code point at p
    if (p >= stop) return 1;
    const b = v.getUint8(p);
    let s: number;
    let n: number;
    if (b < 0x80) { s = b; n = 0; } else if (b < 0xe0) { s = b & 0x1f; n = 1; } else if (b < 0xf0) { s = b & 0x0f; n = 2; } else { s = b & 0x07; n = 3; }
    if (p + n >= stop && n) fail("bad-string", "streamtype name is not valid UTF-8");
    for (let k = 1; k <= n; k++) s = (s << 6) | (v.getUint8(p + k) & 63);
    p += n + 1;
    if (c !== s) return c - s;
  }
  return p < stop ? -1 : 0;
}

export class StreamType {
  readonly #v: DataView;
  readonly #index: number;

  constructor(v: DataView, indexEntry: number) {
    this.#v = v;
    this.#index = indexEntry;
  }

  get name(): string { return name(this.#v, this.#v.getUint16(this.#index + I_NAME, true)); }

  /** Absolute position of this streamtype's record. */
  get #record(): number {
    return start(this.#v, S_RECORDS) + this.#v.getUint16(this.#index + I_RECORD, true);
  }

  #slot(key: string, kinds: readonly KeyKind[]): number {
    const id = KEY_ID.get(key);
    if (id === undefined || !kinds.includes(STREAMTYPE_KEYS[id]!.kind)) throw new TypeError(`not a ${kinds.join("/")} key: ${key}`);
    return slot(this.#v, this.#record, id);
  }

  /** The value of a key stored in 1 or 2 bytes (numbers, indices, offsets). */
  #small(key: string, kinds: readonly KeyKind[]): number | undefined {
    const at = this.#slot(key, kinds);
    if (at < 0) return undefined;
    return valueSize(STREAMTYPE_KEYS[KEY_ID.get(key)!]!.kind) === 1 ? this.#v.getUint8(at) : this.#v.getUint16(at, true);
  }

  /** Whether the policy gives this key. */
  has(key: string): boolean {
    const id = KEY_ID.get(key);
    if (id === undefined) throw new TypeError(`unknown streamtype key: ${key}`);
    return slot(this.#v, this.#record, id) >= 0;
  }

  flag(key: string): boolean { return this.#slot(key, ["flag"]) >= 0; }

  string(key: string): string | undefined {
    const ref = this.#small(key, ["str"]);
    return ref === undefined ? undefined : str(this.#v, ref);
  }

  number(key: string): number | undefined {
    if (STREAMTYPE_KEYS[KEY_ID.get(key) ?? 0]!.kind !== "u32") return this.#small(key, ["u8", "u16"]);
    const at = this.#slot(key, ["u32"]);
    return at < 0 ? undefined : this.#v.getUint32(at, true);
  }

  /** The wire protocol; h1 when the policy does not say. */
  get protocol(): ProtocolName {
    const i = this.#small("protocol", ["protocol"]);
    if (i === undefined) return "h1";
    return PROTOCOLS[i] ?? fail("bad-record", `unknown protocol index ${i}`);
  }

  get retry(): Retry | undefined {
    const i = this.#small("retry", ["retry"]);
    return i === undefined ? undefined : new Retry(this.#v, entry(this.#v, S_RETRIES, i));
  }

  get trustStore(): TrustStore | undefined {
    const i = this.#small("tls_trust_store", ["store"]);
    return i === undefined ? undefined : new TrustStore(this.#v, entry(this.#v, S_STORES, i));
  }

  get auth(): Auth | undefined {
    const i = this.#small("use_auth", ["auth"]);
    return i === undefined ? undefined : new Auth(this.#v, entry(this.#v, S_AUTHS, i));
  }

  /** server_cert or server_key. */
  cert(key: "server_cert" | "server_key"): Cert | undefined {
    const i = this.#small(key, ["cert"]);
    return i === undefined ? undefined : new Cert(this.#v, entry(this.#v, S_CERTS, i));
  }

  /** metadata and options as [name, string]; http_resp_map as [status, state]. */
  pairs(key: "metadata" | "options" | "http_resp_map"): [string | number, string | number][] {
    const ref = this.#small(key, ["metadata", "options", "respmap"]);
    if (ref === undefined) return [];
    const { at, count } = list(this.#v, ref, 4);
    const out: [string | number, string | number][] = [];
    for (let i = 0; i < count; i++) {
      const a = this.#v.getUint16(at + 4 * i, true);
      const b = this.#v.getUint16(at + 4 * i + 2, true);
      out.push(key === "http_resp_map" ? [a, b] : [name(this.#v, a), name(this.#v, b)]);
    }
    return out;
  }

  /** Names of the keys this streamtype gives, in key-table order. */
  keys(): string[] {
    const out: string[] = [];
    for (const spec of STREAMTYPE_KEYS) if (this.has(spec.name)) out.push(spec.name);
    return out;
  }
}

export class Retry {
  readonly #v: DataView;
  readonly #e: number;
  constructor(v: DataView, e: number) { this.#v = v; this.#e = e; }

  get name(): string { return name(this.#v, this.#v.getUint16(this.#e + R_NAME, true)); }

  /**
   * Reads the retry data up to number `field` (a RETRY_NUMBER_KEYS index, or
   * 4 for the backoff count) and returns it; undefined when it is not given.
   */
  #read(field: number): number | undefined {
    const limit = end(this.#v, S_LISTS);
    cursor = start(this.#v, S_LISTS) + this.#v.getUint16(this.#e + R_DATA, true);
    if (cursor >= limit) fail("bad-reference", "retry data is outside the list section");
    const present = this.#v.getUint8(cursor++);
    for (let i = 0; i < 4; i++) {
      if (present & (1 << i)) {
        const value = leb128(this.#v);
        if (i === field) return value;
      } else if (i === field) {
        return undefined;
      }
    }
    if (cursor >= limit) fail("bad-reference", "retry data runs past the list section");
    return this.#v.getUint8(cursor++);
  }

  get conceal(): number | undefined { return this.#read(0); }
  get jitterpc(): number | undefined { return this.#read(1); }
  get svalidping(): number | undefined { return this.#read(2); }
  get svalidhup(): number | undefined { return this.#read(3); }

  /** The backoff table in ms (empty when the policy gives none). */
  get backoff(): number[] {
    const count = this.#read(4)!;
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(leb128(this.#v));
    return out;
  }
}

export class Cert {
  readonly #v: DataView;
  readonly #e: number;
  constructor(v: DataView, e: number) { this.#v = v; this.#e = e; }

  get name(): string { return name(this.#v, this.#v.getUint16(this.#e + C_NAME, true)); }

  /** The DER bytes as a view into the policy (no copy). */
  get der(): Uint8Array {
    const length = this.#v.getUint16(this.#e + C_LENGTH, true);
    const offset = this.#v.getUint32(this.#e + C_OFFSET, true);
    const base = start(this.#v, S_DER);
    if (offset + length > end(this.#v, S_DER) - base) fail("bad-reference", "certificate runs past the DER section");
    return new Uint8Array(this.#v.buffer, this.#v.byteOffset + base + offset, length);
  }
}

export class TrustStore {
  readonly #v: DataView;
  readonly #e: number;
  constructor(v: DataView, e: number) { this.#v = v; this.#e = e; }

  get name(): string { return name(this.#v, this.#v.getUint16(this.#e + T_NAME, true)); }

  get size(): number { return list(this.#v, this.#v.getUint16(this.#e + T_CERTS, true), 1).count; }

  cert(i: number): Cert {
    const { at, count } = list(this.#v, this.#v.getUint16(this.#e + T_CERTS, true), 1);
    if (!(i >= 0 && i < count)) throw new RangeError(`trust store has ${count} certs`);
    return new Cert(this.#v, entry(this.#v, S_CERTS, this.#v.getUint8(at + i)));
  }
}

export class Metrics {
  readonly #v: DataView;
  readonly #e: number;
  constructor(v: DataView, e: number) { this.#v = v; this.#e = e; }

  get name(): string { return name(this.#v, this.#v.getUint16(this.#e + M_NAME, true)); }
  get report(): string | undefined { return str(this.#v, this.#v.getUint16(this.#e + M_REPORT, true)); }
  #given(bit: number, value: number): number | undefined {
    return this.#v.getUint8(this.#e + M_PRESENT) & bit ? value : undefined;
  }
  get usSchedule(): number | undefined { return this.#given(1, this.#v.getUint32(this.#e + M_SCHEDULE, true)); }
  get usHalflife(): number | undefined { return this.#given(2, this.#v.getUint32(this.#e + M_HALFLIFE, true)); }
  get minOutlier(): number | undefined { return this.#given(4, this.#v.getUint8(this.#e + M_OUTLIER)); }
}

export class Auth {
  readonly #v: DataView;
  readonly #e: number;
  constructor(v: DataView, e: number) { this.#v = v; this.#e = e; }

  get name(): string { return name(this.#v, this.#v.getUint16(this.#e + A_NAME, true)); }
  get type(): string { return name(this.#v, this.#v.getUint16(this.#e + A_TYPE, true)); }
  get streamtype(): string | undefined { return str(this.#v, this.#v.getUint16(this.#e + A_STREAMTYPE, true)); }
  get blob(): number | undefined {
    const b = this.#v.getUint8(this.#e + A_BLOB);
    return b === 0xff ? undefined : b;
  }
}
