// Reads a compiled policy in place: no parsing at open, no copies. Every
// offset is checked before it is followed, so a corrupt or hostile table gives
// a PolicyError, never a wrong read or a runaway loop. verify() adds the
// body CRC, for when a policy is installed rather than at every boot.

import {
  MAGIC, FORMAT_VERSION, HEADER_SIZE, NONE, H_MAGIC, H_VERSION, H_LENGTH, H_CRC,
  H_RELEASE, H_PRODUCT, H_SOCKS5, H_SCHEMA_VERSION, H_TABLE_COUNTS, H_INDEX_COUNT, H_SECTION_LENGTHS, ENTRY_SIZE,
  S_STRINGS, S_LISTS, S_RETRIES, S_CERTS, S_DER, S_STORES, S_METRICS, S_AUTHS, S_INDEX, S_RECORDS,
  SECTION_COUNT, MAX_U16_SECTION, R_NAME, R_DATA,
  C_NAME, C_LENGTH, C_OFFSET, T_NAME, T_CERTS, M_NAME, M_REPORT, M_SCHEDULE, M_HALFLIFE, M_OUTLIER, M_PRESENT,
  A_NAME, A_TYPE, A_STREAMTYPE, A_BLOB, I_NAME, I_RECORD,
} from "./format.js";
import { STREAMTYPE_KEYS, KEY_ID, KEY_SIZE, KEY_CLASS, PROTOCOLS, type KeyClass, type ProtocolName } from "./keys.js";
import { policyCrc } from "./crc.js";
import { utf8Decode } from "../util/utf8.js";
import { hasHighLatin1 } from "../util/chars.js";

export type PolicyErrorCode =
  | "truncated" | "bad-magic" | "bad-version" | "bad-length" | "bad-section"
  | "bad-reference" | "bad-record" | "bad-string" | "bad-checksum";

export class PolicyError extends Error {
  // A field, defined on the instance: assigning this.name throws on the
  // device, where Error.prototype is frozen in flash.
  override readonly name = "PolicyError";
  readonly code: PolicyErrorCode;
  constructor(code: PolicyErrorCode, message: string) {
    super(`policy: ${message}`);
    this.code = code;
  }
}

function fail(code: PolicyErrorCode, message: string): never {
  throw new PolicyError(code, message);
}

// Entry sizes of the table sections, as plain constants for layout().
const RETRY_SIZE = ENTRY_SIZE[S_RETRIES]!;
const CERT_SIZE = ENTRY_SIZE[S_CERTS]!;
const STORE_SIZE = ENTRY_SIZE[S_STORES]!;
const METRICS_SIZE = ENTRY_SIZE[S_METRICS]!;
const AUTH_SIZE = ENTRY_SIZE[S_AUTHS]!;
const INDEX_SIZE = ENTRY_SIZE[S_INDEX]!;

// Section bounds of the policy read last, cached: every read needs them, and
// working them out from the header at each step was most of the reader's cost
// on XS. Module state (like `cursor` below), so a policy costs no extra slots;
// the array is made on first use, not at module load, so that it is in RAM
// when the module is preloaded (a plain array: 2 XS slots, a Uint32Array 7).
// open() checks the bounds before any Policy holds the view, and a view's
// bounds never change once cached.
let boundsOf: DataView | undefined;
let bounds: number[] | undefined;

/**
 * Where each section of `v` starts (index s) and where the policy ends (index
 * SECTION_COUNT): sections follow each other without gaps, so a section
 * starts where the ones before it end and ends where the next one starts.
 */
function layout(v: DataView): number[] {
  if (v === boundsOf) return bounds!;
  const b = bounds ?? (bounds = new Array<number>(SECTION_COUNT + 1).fill(0));
  // unrolled: on XS every call and loop turn is metered
  const counts = v.getUint32(H_TABLE_COUNTS, true); // entry counts of sections 0..3
  let at = HEADER_SIZE;
  b[S_RETRIES] = at;
  at += (counts & 0xff) * RETRY_SIZE;
  b[S_CERTS] = at;
  at += ((counts >>> 8) & 0xff) * CERT_SIZE;
  b[S_STORES] = at;
  at += ((counts >>> 16) & 0xff) * STORE_SIZE;
  b[S_METRICS] = at;
  at += (counts >>> 24) * METRICS_SIZE;
  b[S_AUTHS] = at;
  at += v.getUint8(H_TABLE_COUNTS + S_AUTHS) * AUTH_SIZE;
  b[S_INDEX] = at;
  at += v.getUint16(H_INDEX_COUNT, true) * INDEX_SIZE;
  b[S_STRINGS] = at;
  at += v.getUint16(H_SECTION_LENGTHS, true);
  b[S_LISTS] = at;
  at += v.getUint16(H_SECTION_LENGTHS + 2, true);
  b[S_RECORDS] = at;
  at += v.getUint16(H_SECTION_LENGTHS + 4, true);
  b[S_DER] = at;
  b[SECTION_COUNT] = v.byteLength;
  boundsOf = v;
  return b;
}

const start = (v: DataView, section: number): number => layout(v)[section]!;
const end = (v: DataView, section: number): number => layout(v)[section + 1]!;

/** Absolute position of entry i of a table section. */
function entry(v: DataView, section: number, i: number): number {
  const b = layout(v);
  const size = ENTRY_SIZE[section]!;
  if (!(i >= 0 && i < (b[section + 1]! - b[section]!) / size)) fail("bad-reference", `entry ${i} is outside its table`);
  return b[section]! + i * size;
}

/** The policy's bytes, as a byte view: kept with the section bounds, for native searches. */
let bytesOf: DataView | undefined;
let bytes: Uint8Array | undefined;

function byteView(v: DataView): Uint8Array {
  if (v !== bytesOf) {
    bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    bytesOf = v;
  }
  return bytes!;
}

/**
 * The stored string at `ref` as a "byte string" (one char per UTF-8 byte),
 * made by native calls: on XS a loop over bytes costs far more compute.
 */
function byteString(v: DataView, ref: number): string {
  const limit = end(v, S_STRINGS);
  const at = start(v, S_STRINGS) + ref;
  if (at >= limit) fail("bad-reference", `string offset ${ref} is outside the string table`);
  const b = byteView(v);
  const stop = b.indexOf(0, at);
  if (stop < 0 || stop >= limit) fail("bad-string", `string at ${ref} has no terminating NUL`);
  let out = "";
  // in slices: apply() puts every byte on the stack
  for (let p = at; p < stop; p += 1024) out += String.fromCharCode.apply(null, b.subarray(p, Math.min(stop, p + 1024)) as unknown as number[]);
  return out;
}

function str(v: DataView, ref: number): string | undefined {
  if (ref === NONE) return undefined;
  const raw = byteString(v, ref);
  // ASCII, the usual case, is its own decoding; anything else is decoded strictly
  // (decodeURIComponent would be native, but XS's accepts some malformed UTF-8)
  if (!hasHighLatin1(raw)) return raw;
  const b = byteView(v);
  const at = start(v, S_STRINGS) + ref;
  const text = utf8Decode(b, at, at + raw.length);
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
    const size = KEY_SIZE[k]!;
    if (k === id) {
      if (at + size > limit) fail("bad-record", "record values run past the record section");
      return at;
    }
    if (k > id) return -1;
    at += size;
  }
  if (at > limit) fail("bad-record", "record values run past the record section");
  return -1;
}

export class Policy {
  readonly #v: DataView;

  private constructor(v: DataView) {
    this.#v = v;
  }

  /**
   * Checks the header and section table; the content is checked as it is
   * read. `data` is read in place: bytes, a view of them, or on the device a
   * Resource (flash), which Moddable's typings count as an ArrayBufferLike.
   */
  static open(data: ArrayBufferLike | ArrayBufferView): Policy {
    const v = ArrayBuffer.isView(data) ? new DataView(data.buffer, data.byteOffset, data.byteLength) : new DataView(data);
    if (v.byteLength < HEADER_SIZE) fail("truncated", `${v.byteLength} bytes is shorter than the ${HEADER_SIZE}-byte header`);
    if (v.getUint32(H_MAGIC, true) !== MAGIC) fail("bad-magic", "not a compiled policy (bad magic)");
    const version = v.getUint8(H_VERSION);
    if (version !== FORMAT_VERSION) fail("bad-version", `format version ${version}, this reader knows ${FORMAT_VERSION}`);
    const length = v.getUint32(H_LENGTH, true);
    if (length < HEADER_SIZE || length > v.byteLength) fail("bad-length", `length ${length} does not fit the ${v.byteLength} bytes given`);
    const p = length === v.byteLength ? v : new DataView(v.buffer, v.byteOffset, length);
    const b = layout(p);
    byteView(p); // made with the bounds, so that it is the policy's cost and not its first reader's
    if (b[S_DER]! > length) fail("bad-section", "the sections run past the end of the policy");
    if (b[S_LISTS]! - b[S_STRINGS]! > MAX_U16_SECTION || b[S_RECORDS]! - b[S_LISTS]! > MAX_U16_SECTION || b[S_DER]! - b[S_RECORDS]! > MAX_U16_SECTION) {
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
    // byte strings compare in UTF-8 byte order, the index's order, with native compares
    const key = utf8ByteString(wanted);
    if (key === undefined) return undefined;
    // the index holds exactly streamtypeCount entries (its size is worked out from that count)
    const index = layout(v)[S_INDEX]!;
    let lo = 0;
    let hi = v.getUint16(H_INDEX_COUNT, true) - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = index + mid * INDEX_SIZE;
      const ref = v.getUint16(e + I_NAME, true);
      if (ref === NONE) fail("bad-reference", "streamtype name is absent");
      const stored = byteString(v, ref);
      if (key === stored) return new StreamType(v, e);
      if (key < stored) hi = mid - 1;
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

/** `wanted` as a byte string (its UTF-8 bytes, one char each); undefined if it is not valid Unicode. */
function utf8ByteString(wanted: string): string | undefined {
  try {
    return unescape(encodeURIComponent(wanted));
  } catch {
    return undefined;
  }
}

export class StreamType {
  readonly #v: DataView;
  readonly #index: number;
  /**
   * Values read so far, by accessor (a key of the wrong class still throws):
   * a read costs about 1,000 computrons on XS, and a context that shares
   * this object (SecureStreams does, between the streams of a streamtype)
   * reads each key once for all of them.
   */
  #flags: Map<string, boolean> | undefined;
  #strings: Map<string, string | undefined> | undefined;
  #numbers: Map<string, number | undefined> | undefined;
  #name: string | undefined;
  #protocol: ProtocolName | undefined;

  constructor(v: DataView, indexEntry: number) {
    this.#v = v;
    this.#index = indexEntry;
  }

  get name(): string { return (this.#name ??= name(this.#v, this.#v.getUint16(this.#index + I_NAME, true))); }

  /** The via-socks5 of the whole policy this streamtype is part of. */
  get policyViaSocks5(): string | undefined { return str(this.#v, this.#v.getUint16(H_SOCKS5, true)); }

  /** Absolute position of this streamtype's record. */
  get #record(): number {
    return start(this.#v, S_RECORDS) + this.#v.getUint16(this.#index + I_RECORD, true);
  }

  /** The id of `key`, which the caller reads as a `cls` key: a wrong key is a programming error. */
  #id(key: string, cls: KeyClass): number {
    const id = KEY_ID.get(key);
    if (id === undefined || KEY_CLASS[id] !== cls) throw new TypeError(`not a ${cls} key: ${key}`);
    return id;
  }

  #slot(key: string, cls: KeyClass): number {
    return slot(this.#v, this.#record, this.#id(key, cls));
  }

  /** The value of a key stored in 1 or 2 bytes (numbers, indices, offsets). */
  #small(key: string, cls: KeyClass): number | undefined {
    const id = this.#id(key, cls);
    const at = slot(this.#v, this.#record, id);
    if (at < 0) return undefined;
    return KEY_SIZE[id] === 1 ? this.#v.getUint8(at) : this.#v.getUint16(at, true);
  }

  /** Whether the policy gives this key. */
  has(key: string): boolean {
    const id = KEY_ID.get(key);
    if (id === undefined) throw new TypeError(`unknown streamtype key: ${key}`);
    return slot(this.#v, this.#record, id) >= 0;
  }

  flag(key: string): boolean {
    const read = (this.#flags ??= new Map());
    let value = read.get(key);
    if (value === undefined) read.set(key, (value = this.#slot(key, "flag") >= 0));
    return value;
  }

  string(key: string): string | undefined {
    const read = (this.#strings ??= new Map());
    if (read.has(key)) return read.get(key);
    const ref = this.#small(key, "str");
    const value = ref === undefined ? undefined : str(this.#v, ref);
    read.set(key, value);
    return value;
  }

  number(key: string): number | undefined {
    const read = (this.#numbers ??= new Map());
    if (read.has(key)) return read.get(key);
    const value = KEY_CLASS[KEY_ID.get(key) ?? 0] !== "u32" ? this.#small(key, "small") : this.#u32(key);
    read.set(key, value);
    return value;
  }

  #u32(key: string): number | undefined {
    const at = this.#slot(key, "u32");
    return at < 0 ? undefined : this.#v.getUint32(at, true);
  }

  /** The wire protocol; h1 when the policy does not say. */
  get protocol(): ProtocolName {
    if (this.#protocol) return this.#protocol;
    const i = this.#small("protocol", "protocol");
    if (i === undefined) return (this.#protocol = "h1");
    return (this.#protocol = PROTOCOLS[i] ?? fail("bad-record", `unknown protocol index ${i}`));
  }

  get retry(): Retry | undefined {
    const i = this.#small("retry", "retry");
    return i === undefined ? undefined : new Retry(this.#v, entry(this.#v, S_RETRIES, i));
  }

  get trustStore(): TrustStore | undefined {
    const i = this.#small("tls_trust_store", "store");
    return i === undefined ? undefined : new TrustStore(this.#v, entry(this.#v, S_STORES, i));
  }

  get auth(): Auth | undefined {
    const i = this.#small("use_auth", "auth");
    return i === undefined ? undefined : new Auth(this.#v, entry(this.#v, S_AUTHS, i));
  }

  /** server_cert or server_key. */
  cert(key: "server_cert" | "server_key"): Cert | undefined {
    const i = this.#small(key, "cert");
    return i === undefined ? undefined : new Cert(this.#v, entry(this.#v, S_CERTS, i));
  }

  /** metadata and options as [name, string]; http_resp_map as [status, state]. */
  pairs(key: "metadata" | "options" | "http_resp_map"): [string | number, string | number][] {
    const ref = this.#small(key, "list");
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
    const v = this.#v;
    const rec = this.#record;
    // an id past every key walks (and checks) the whole record
    slot(v, rec, STREAMTYPE_KEYS.length);
    const out: string[] = [];
    for (let i = 0, n = v.getUint8(rec); i < n; i++) out.push(STREAMTYPE_KEYS[v.getUint8(rec + 1 + i)]!.name);
    return out;
  }

}

/** Numbers a retry's data may hold before its backoff count (RETRY_NUMBER_KEYS). */
const RETRY_FIELDS = 6;

export class Retry {
  readonly #v: DataView;
  readonly #e: number;
  constructor(v: DataView, e: number) { this.#v = v; this.#e = e; }

  get name(): string { return name(this.#v, this.#v.getUint16(this.#e + R_NAME, true)); }

  /**
   * Reads the retry data up to number `field` (a RETRY_NUMBER_KEYS index, or
   * RETRY_FIELDS for the backoff count) and returns it; undefined when it is not given.
   */
  #read(field: number): number | undefined {
    const limit = end(this.#v, S_LISTS);
    cursor = start(this.#v, S_LISTS) + this.#v.getUint16(this.#e + R_DATA, true);
    if (cursor >= limit) fail("bad-reference", "retry data is outside the list section");
    const present = this.#v.getUint8(cursor++);
    for (let i = 0; i < RETRY_FIELDS; i++) {
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
  /** Our extension: capped exponential backoff with full jitter, from this base delay. */
  get expBackoffMs(): number | undefined { return this.#read(4); }
  get maxBackoffMs(): number | undefined { return this.#read(5); }

  /** The backoff table in ms (empty when the policy gives none). */
  get backoff(): number[] {
    const count = this.#read(RETRY_FIELDS)!;
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
