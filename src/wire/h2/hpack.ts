// HPACK (RFC 7541): header compression for HTTP/2. A decoder for the
// server's header blocks and an encoder for our requests, each with its own
// dynamic table. Names and values are byte strings, held as JS strings with
// one char per byte (latin1), as the http1 codec does.

import { H2Error, ErrorCode } from "./errors.js";
import { huffmanDecode, huffmanEncode, huffmanLength } from "./huffman.js";

export type Header = readonly [name: string, value: string];

/** RFC 7541, Appendix A: index 1 is the first entry. */
const STATIC: readonly Header[] = Object.freeze(([
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""],
  ["etag", ""], ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""],
  ["if-modified-since", ""], ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""],
  ["last-modified", ""], ["link", ""], ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""],
  ["proxy-authorization", ""], ["range", ""], ["referer", ""], ["refresh", ""], ["retry-after", ""],
  ["server", ""], ["set-cookie", ""], ["strict-transport-security", ""], ["transfer-encoding", ""],
  ["user-agent", ""], ["vary", ""], ["via", ""], ["www-authenticate", ""],
] as Header[]).map((h) => Object.freeze(h)));

/** The size an entry counts for in a dynamic table (RFC 7541, 4.1), and in SETTINGS_MAX_HEADER_LIST_SIZE. */
export const entrySize = (name: string, value: string): number => name.length + value.length + 32;

/** The dynamic table: newest entry first (index 62), evicted from the oldest end. */
class DynamicTable {
  readonly #entries: Header[] = [];
  #size = 0;
  #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  get size(): number {
    return this.#size;
  }
  get max(): number {
    return this.#max;
  }
  get length(): number {
    return this.#entries.length;
  }
  get(i: number): Header | undefined {
    return this.#entries[i];
  }
  setMax(max: number): void {
    this.#max = max;
    this.#evict(0);
  }
  add(name: string, value: string): void {
    const size = entrySize(name, value);
    this.#evict(size);
    // an entry larger than the table empties it and is not added (RFC 7541, 4.4)
    if (size > this.#max) return;
    this.#entries.unshift([name, value]);
    this.#size += size;
  }
  #evict(room: number): void {
    while (this.#entries.length && this.#size + room > this.#max) {
      const [n, v] = this.#entries.pop()!;
      this.#size -= entrySize(n, v);
    }
  }
}

export interface HpackDecoderOptions {
  /** The SETTINGS_HEADER_TABLE_SIZE this side advertised: the most the peer may size our table to. */
  readonly maxTableSize?: number;
  /** The SETTINGS_MAX_HEADER_LIST_SIZE this side advertised: a longer list is refused. */
  readonly maxHeaderListSize?: number;
}

export class HpackDecoder {
  readonly #table: DynamicTable;
  readonly #limit: number;
  readonly #maxList: number;

  constructor(options: HpackDecoderOptions = {}) {
    this.#limit = options.maxTableSize ?? 4096;
    this.#maxList = options.maxHeaderListSize ?? 16384;
    this.#table = new DynamicTable(this.#limit);
  }

  /** Bytes the dynamic table holds (entry sizes as RFC 7541 counts them). */
  get tableSize(): number {
    return this.#table.size;
  }
  get tableEntries(): number {
    return this.#table.length;
  }

  /**
   * Decodes a complete header block. Errors are COMPRESSION_ERROR (the table
   * is out of step with the peer's from then on: the connection is lost),
   * except a list over the size limit: PROTOCOL_ERROR, thrown once the whole
   * block has been read, so the table stays in step and only that stream fails.
   */
  decode(block: Uint8Array): Header[] {
    const out: Header[] = [];
    const r = { at: 0 };
    let listSize = 0;
    let over = false;
    let fieldSeen = false;
    while (r.at < block.length) {
      const b = block[r.at]!;
      let name: string;
      let value: string;
      if (b & 0x80) {
        const index = readInt(block, r, 7);
        if (index === 0) fail("indexed field with index 0");
        [name, value] = this.#entry(index);
      } else if ((b & 0xe0) === 0x20) {
        // dynamic table size update: only before the first field (RFC 7541, 4.2)
        if (fieldSeen) fail("dynamic table size update after a field");
        const size = readInt(block, r, 5);
        if (size > this.#limit) fail(`dynamic table size update to ${size}, over the ${this.#limit} advertised`);
        this.#table.setMax(size);
        continue;
      } else {
        const indexing = (b & 0xc0) === 0x40;
        const index = readInt(block, r, indexing ? 6 : 4);
        name = index ? this.#entry(index)[0] : readString(block, r);
        value = readString(block, r);
        if (indexing) this.#table.add(name, value);
      }
      fieldSeen = true;
      listSize += entrySize(name, value);
      if (listSize > this.#maxList) over = true;
      if (!over) out.push([name, value]);
    }
    if (over) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `hpack: header list over the ${this.#maxList}-byte SETTINGS_MAX_HEADER_LIST_SIZE`);
    return out;
  }

  #entry(index: number): Header {
    if (index <= STATIC.length) return STATIC[index - 1]!;
    const e = this.#table.get(index - STATIC.length - 1);
    if (!e) fail(`index ${index} is past the ${STATIC.length + this.#table.length} entries of the tables`);
    return e;
  }
}

export interface HpackEncoderOptions {
  /** Huffman-code strings: always, never, or "auto" when it makes them shorter (the default). */
  readonly huffman?: boolean | "auto";
  /** The peer's SETTINGS_HEADER_TABLE_SIZE at the start (the protocol's default: 4096). */
  readonly peerMaxTableSize?: number;
  /** The most this side keeps in its table, whatever the peer allows (default 4096); a smaller size is announced in the first block. */
  readonly maxTableSize?: number;
}

/** Headers whose values are credentials: sent as never-indexed literals (RFC 7541, 7.1.3). */
const SENSITIVE: readonly string[] = Object.freeze(["authorization", "proxy-authorization"]);

export class HpackEncoder {
  readonly #table: DynamicTable;
  readonly #huffman: boolean | "auto";
  readonly #cap: number;
  /** Size updates to announce at the start of the next block (the smallest, then the final). */
  #pendingMin = -1;
  #pendingFinal = -1;

  constructor(options: HpackEncoderOptions = {}) {
    this.#huffman = options.huffman ?? "auto";
    this.#cap = options.maxTableSize ?? 4096;
    const peer = options.peerMaxTableSize ?? 4096;
    this.#table = new DynamicTable(peer);
    this.setPeerMaxTableSize(peer);
  }

  get tableSize(): number {
    return this.#table.size;
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed: the table follows, announced in the next block. */
  setPeerMaxTableSize(size: number): void {
    const max = Math.min(size, this.#cap);
    if (max === this.#table.max && this.#pendingFinal < 0) return;
    this.#pendingMin = this.#pendingMin < 0 ? max : Math.min(this.#pendingMin, max);
    this.#pendingFinal = max;
    this.#table.setMax(max);
  }

  /** A header block for `headers` (names must be lower case). */
  encode(headers: Iterable<Header>): Uint8Array {
    const w = new Writer();
    if (this.#pendingFinal >= 0) {
      if (this.#pendingMin < this.#pendingFinal) w.int(this.#pendingMin, 5, 0x20);
      w.int(this.#pendingFinal, 5, 0x20);
      this.#pendingMin = this.#pendingFinal = -1;
    }
    for (const [name, value] of headers) {
      const [full, nameOnly] = this.#find(name, value);
      if (full) {
        w.int(full, 7, 0x80);
        continue;
      }
      if (SENSITIVE.includes(name)) {
        w.int(nameOnly, 4, 0x10);
      } else {
        w.int(nameOnly, 6, 0x40);
        this.#table.add(name, value);
      }
      if (!nameOnly) this.#string(w, name);
      this.#string(w, value);
    }
    return w.bytes();
  }

  /** [index of name and value, index of the name], 0 for none. */
  #find(name: string, value: string): [number, number] {
    let nameIndex = 0;
    for (let i = 0; i < STATIC.length; i++) {
      const e = STATIC[i]!;
      if (e[0] !== name) continue;
      if (e[1] === value) return [i + 1, i + 1];
      if (!nameIndex) nameIndex = i + 1;
    }
    for (let i = 0; i < this.#table.length; i++) {
      const e = this.#table.get(i)!;
      if (e[0] !== name) continue;
      if (e[1] === value && !SENSITIVE.includes(name)) return [STATIC.length + 1 + i, 0];
      if (!nameIndex) nameIndex = STATIC.length + 1 + i;
    }
    return [0, nameIndex];
  }

  #string(w: Writer, text: string): void {
    const bytes = latin1(text);
    const hlen = this.#huffman === false ? 0 : huffmanLength(bytes);
    if (this.#huffman === true || (this.#huffman === "auto" && hlen < bytes.length)) {
      w.int(hlen, 7, 0x80);
      w.room(hlen);
      w.at = huffmanEncode(bytes, w.buffer, w.at);
    } else {
      w.int(bytes.length, 7, 0);
      w.room(bytes.length);
      w.buffer.set(bytes, w.at);
      w.at += bytes.length;
    }
  }
}

/** A growing output buffer. */
class Writer {
  buffer = new Uint8Array(256);
  at = 0;
  room(n: number): void {
    if (this.at + n <= this.buffer.length) return;
    const next = new Uint8Array(Math.max(this.buffer.length * 2, this.at + n));
    next.set(this.buffer.subarray(0, this.at));
    this.buffer = next;
  }
  /** An integer with an N-bit prefix (RFC 7541, 5.1); `first` holds the bits above the prefix. */
  int(value: number, prefix: number, first: number): void {
    this.room(6);
    const max = (1 << prefix) - 1;
    if (value < max) {
      this.buffer[this.at++] = first | value;
      return;
    }
    this.buffer[this.at++] = first | max;
    value -= max;
    while (value >= 128) {
      this.buffer[this.at++] = (value % 128) | 128;
      value = Math.floor(value / 128);
    }
    this.buffer[this.at++] = value;
  }
  bytes(): Uint8Array {
    return this.buffer.slice(0, this.at);
  }
}

/** Chars made into a string at once: each is an argument on the JS stack (512 slots on the device). */
const CHARS_AT_ONCE = 128;

/** Largest integer accepted in a header block: no size or index in it can be larger. */
const MAX_INT = 0x7fffffff;

function readInt(b: Uint8Array, r: { at: number }, prefix: number): number {
  const max = (1 << prefix) - 1;
  let value = b[r.at++]! & max;
  if (value < max) return value;
  let shift = 1;
  for (;;) {
    if (r.at >= b.length) fail("integer runs past the end of the block");
    const c = b[r.at++]!;
    value += (c & 127) * shift;
    if (value > MAX_INT) fail("integer over 2^31-1");
    if (!(c & 128)) return value;
    shift *= 128;
  }
}

function readString(b: Uint8Array, r: { at: number }): string {
  if (r.at >= b.length) fail("string missing at the end of the block");
  const huffman = b[r.at]! & 0x80;
  const length = readInt(b, r, 7);
  const end = r.at + length;
  if (end > b.length) fail(`string of ${length} bytes runs past the end of the block`);
  let out = "";
  if (huffman) {
    // collected in pieces: one concatenation per char would be quadratic on XS
    const codes: number[] = [];
    huffmanDecode(b, r.at, end, (c) => {
      codes.push(c);
      if (codes.length === CHARS_AT_ONCE) {
        out += String.fromCharCode(...codes);
        codes.length = 0;
      }
    });
    out += String.fromCharCode(...codes);
  } else {
    for (let i = r.at; i < end; i += CHARS_AT_ONCE) out += String.fromCharCode(...b.subarray(i, Math.min(end, i + CHARS_AT_ONCE)));
  }
  r.at = end;
  return out;
}

function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new H2Error(ErrorCode.INTERNAL_ERROR, `hpack: character U+${c.toString(16)} is not a byte`);
    out[i] = c;
  }
  return out;
}

function fail(why: string): never {
  throw new H2Error(ErrorCode.COMPRESSION_ERROR, `hpack: ${why}`);
}
