// UTF-8 encoding and strict decoding without TextEncoder/TextDecoder, which
// the XS engine does not always provide.

export function utf8Encode(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

/** Decodes bytes[start, end); undefined if they are not well-formed UTF-8. */
export function utf8Decode(bytes: Uint8Array, start: number, end: number): string | undefined {
  let out = "";
  let i = start;
  while (i < end) {
    const b = bytes[i]!;
    let c: number;
    let n: number;
    if (b < 0x80) { c = b; n = 0; }
    else if (b >= 0xc2 && b < 0xe0) { c = b & 0x1f; n = 1; }
    else if (b >= 0xe0 && b < 0xf0) { c = b & 0x0f; n = 2; }
    else if (b >= 0xf0 && b < 0xf5) { c = b & 0x07; n = 3; }
    else return undefined;
    if (i + n >= end && n > 0) return undefined; // sequence runs past the end
    for (let k = 1; k <= n; k++) {
      const x = bytes[i + k]!;
      if ((x & 0xc0) !== 0x80) return undefined;
      c = (c << 6) | (x & 63);
    }
    // overlong forms, surrogates and values past U+10FFFF
    if ((n === 2 && (c < 0x800 || (c >= 0xd800 && c < 0xe000))) || (n === 3 && (c < 0x10000 || c > 0x10ffff))) return undefined;
    out += String.fromCodePoint(c);
    i += n + 1;
  }
  return out;
}
