// Base64 (RFC 4648, standard alphabet, with padding) without platform helpers:
// XS has no atob/btoa, and src/ may not use Node's buffers.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

export function base64Encode(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + "==";
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + "=";
  }
  return out;
}

/**
 * Strict decode: the length must be a multiple of 4, padding only at the end,
 * no whitespace, and unused bits zero. Returns undefined when malformed.
 */
export function base64Decode(text: string): Uint8Array | undefined {
  // padding: at most two '=', and only at the end; any other char off the alphabet fails below
  const eq = text.indexOf("=");
  if (text.length % 4 !== 0 || (eq >= 0 && (eq < text.length - 2 || !text.endsWith("=")))) return undefined;
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  let n = 0;
  let k = 0;
  // for...of walks the string once; indexing would rescan it on XS
  for (const c of text) {
    const v = c === "=" ? 0 : ALPHABET.indexOf(c);
    if (v < 0) return undefined;
    n = (n << 6) | v;
    if (++k < 4) continue;
    if (o < out.length) out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    else if (pad === 2 && (n & 0xffff) !== 0) return undefined; // unused bits must be zero
    if (o < out.length) out[o++] = n & 255;
    else if (pad === 1 && (n & 0xff) !== 0) return undefined;
    n = 0;
    k = 0;
  }
  return out;
}
