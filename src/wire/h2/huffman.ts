// The HPACK Huffman code (RFC 7541, Appendix B). The code is canonical:
// codes of one length are consecutive, in symbol order, and each length
// continues from the last code of the shorter one, doubled. So the table is
// kept as the code length of each of the 257 symbols (256 is EOS), and the
// codes themselves are derived from it once, when the module loads.

import { H2Error, ErrorCode } from "./errors.js";

/** Code length of symbols 0..256, one character each: "a" is 5 bits, "b" 6, ... "z" 30. */
const LENGTHS =
  "isxxxxxxxtzxxzxxxxxxxxzxxxxxxxxx" + // 0-31
  "bffhibdgffdgdbbbaaabbbbbbbcdkbhf" + // 32-63
  "ibccccccccccccccccccccccdcdioijb" + // 64-95
  "kabababbbaccbbbabcbaabccccckgjix" + // 96-127
  "prpprrrsrssssststtrstssssqrsrsst" + // 128-159
  "rqprrssqsrrtqrssqqrqsrssprrrsrrs" + // 160-191
  "vvporsruvvvwwvtuoqvwwvwtqqvvxwww" + // 192-223
  "ptpqrqqsrruuttvsvwvvwwwwwxwwwwwv" + // 224-255
  "z"; // 256: EOS

export const EOS = 256;

function buildCodes(): { codes: Uint32Array; lengths: Uint8Array; firstCode: Uint32Array; firstIndex: Uint16Array; count: Uint16Array; symbols: Uint16Array } {
  const lengths = new Uint8Array(257);
  for (let s = 0; s < 257; s++) lengths[s] = LENGTHS.charCodeAt(s) - 0x60 + 4;
  const count = new Uint16Array(31);
  for (let s = 0; s < 257; s++) count[lengths[s]!]!++;
  const firstCode = new Uint32Array(31);
  const firstIndex = new Uint16Array(31);
  let code = 0;
  let index = 0;
  for (let len = 1; len <= 30; len++) {
    code = (code + count[len - 1]!) * 2;
    firstCode[len] = code;
    firstIndex[len] = index;
    index += count[len]!;
  }
  // symbols sorted by (length, symbol): the order the canonical codes follow
  const symbols = new Uint16Array(257);
  const next = Uint16Array.from(firstIndex);
  const codes = new Uint32Array(257);
  for (let s = 0; s < 257; s++) {
    const len = lengths[s]!;
    const i = next[len]!++;
    symbols[i] = s;
    codes[s] = firstCode[len]! + (i - firstIndex[len]!);
  }
  return { codes, lengths, firstCode, firstIndex, count, symbols };
}

const T = Object.freeze(buildCodes());

/** The code of symbol `s` (for tests against the RFC table). */
export function huffmanCode(s: number): { code: number; bits: number } {
  return { code: T.codes[s]!, bits: T.lengths[s]! };
}

/** Length in bytes of `bytes` Huffman-encoded. */
export function huffmanLength(bytes: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < bytes.length; i++) bits += T.lengths[bytes[i]!]!;
  return (bits + 7) >> 3;
}

/** Huffman-encodes `bytes` into out[at...], padded with the EOS prefix (all ones); returns the end. */
export function huffmanEncode(bytes: Uint8Array, out: Uint8Array, at: number): number {
  let acc = 0; // pending bits, right-aligned
  let n = 0; // how many
  for (let i = 0; i < bytes.length; i++) {
    const s = bytes[i]!;
    let len = T.lengths[s]!;
    const code = T.codes[s]!;
    // feed at most 8 bits at a time so `acc` stays within 32 bits
    while (len > 0) {
      const take = len > 8 ? 8 : len;
      len -= take;
      acc = ((acc << take) | ((code >>> len) & ((1 << take) - 1))) >>> 0;
      n += take;
      while (n >= 8) {
        n -= 8;
        out[at++] = (acc >>> n) & 0xff;
      }
      acc &= (1 << n) - 1;
    }
  }
  if (n > 0) out[at++] = ((acc << (8 - n)) | (0xff >> n)) & 0xff;
  return at;
}

/**
 * Decodes a Huffman-coded string; each byte is passed to `emit`. A code that
 * is not in the table, EOS, or padding that is longer than 7 bits or not all
 * ones is a COMPRESSION_ERROR (RFC 7541, 5.2).
 */
export function huffmanDecode(bytes: Uint8Array, start: number, end: number, emit: (byte: number) => void): void {
  let code = 0;
  let len = 0;
  let ones = true; // the bits since the last symbol are all ones
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    for (let bit = 7; bit >= 0; bit--) {
      const v = (b >> bit) & 1;
      code = code * 2 + v;
      len++;
      if (!v) ones = false;
      const offset = code - T.firstCode[len]!;
      if (offset >= 0 && offset < T.count[len]!) {
        const s = T.symbols[T.firstIndex[len]! + offset]!;
        if (s === EOS) throw new H2Error(ErrorCode.COMPRESSION_ERROR, "hpack: EOS inside a Huffman string");
        emit(s);
        code = 0;
        len = 0;
        ones = true;
      } else if (len >= 30) {
        throw new H2Error(ErrorCode.COMPRESSION_ERROR, "hpack: invalid Huffman code");
      }
    }
  }
  if (len > 7 || !ones) throw new H2Error(ErrorCode.COMPRESSION_ERROR, "hpack: Huffman padding is not an EOS prefix of at most 7 bits");
}
