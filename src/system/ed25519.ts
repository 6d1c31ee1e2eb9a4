// Ed25519 signature check (RFC 8032, section 5.1.7), for signed policies on
// the device: field arithmetic on BigInt, points in extended coordinates.
// Only verification: the device never signs. Not constant time, which a
// check of public data does not need.

import { sha512 } from "./sha512.js";

const P = (1n << 255n) - 19n;
/** The group order. */
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

type Point = readonly [x: bigint, y: bigint, z: bigint, t: bigint];

const mod = (a: bigint): bigint => {
  const r = a % P;
  return r < 0n ? r + P : r;
};

function pow(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}

const inverse = (a: bigint): bigint => pow(a, P - 2n);

// Curve constants, worked out on first use (nothing is computed at module load on the device).
let constants: { d2: bigint; d: bigint; sqrtM1: bigint; base: Point } | undefined;

function curve(): { d2: bigint; d: bigint; sqrtM1: bigint; base: Point } {
  if (!constants) {
    const d = mod(-121665n * inverse(121666n));
    const sqrtM1 = pow(2n, (P - 1n) / 4n);
    constants = { d, d2: mod(2n * d), sqrtM1, base: [0n, 0n, 1n, 0n] };
    // the base point: y = 4/5, x even
    const by = mod(4n * inverse(5n));
    const bytes = new Uint8Array(32);
    for (let i = 0, v = by; i < 32; i++, v >>= 8n) bytes[i] = Number(v & 0xffn);
    constants.base = decode(bytes)!;
  }
  return constants;
}

function add(p: Point, q: Point): Point {
  const { d2 } = curve();
  const a = mod((p[1] - p[0]) * (q[1] - q[0]));
  const b = mod((p[1] + p[0]) * (q[1] + q[0]));
  const c = mod(p[3] * d2 * q[3]);
  const dd = mod(2n * p[2] * q[2]);
  const e = b - a, f = dd - c, g = dd + c, h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function double(p: Point): Point {
  const a = mod(p[0] * p[0]);
  const b = mod(p[1] * p[1]);
  const c = mod(2n * p[2] * p[2]);
  const h = a + b;
  const e = h - mod((p[0] + p[1]) * (p[0] + p[1]));
  const g = a - b;
  const f = c + g;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

const negate = (p: Point): Point => [mod(-p[0]), p[1], p[2], mod(-p[3])];

/** Little-endian bytes as a number. */
function number(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/** A point from its 32-byte encoding, or undefined when it is not one. */
function decode(bytes: Uint8Array): Point | undefined {
  const { d, sqrtM1 } = curve();
  const sign = bytes[31]! >> 7;
  const copy = Uint8Array.from(bytes); // not slice(): a Node Buffer's slice is a view, and this writes
  copy[31]! &= 0x7f;
  const y = number(copy);
  if (y >= P) return undefined;
  const y2 = (y * y) % P;
  const u = mod(y2 - 1n);
  const v = mod(d * y2 + 1n);
  // x = (u / v)^((p + 3) / 8), as u v^3 (u v^7)^((p - 5) / 8)
  const v3 = (v * v * v) % P;
  let x = (u * v3 % P) * pow(u * v3 * v3 * v % P, (P - 5n) / 8n) % P;
  const vx2 = (v * x * x) % P;
  if (vx2 !== u) {
    if (vx2 !== mod(-u)) return undefined;
    x = (x * sqrtM1) % P;
  }
  if (x === 0n && sign) return undefined;
  if (Number(x & 1n) !== sign) x = P - x;
  return [x, y, 1n, (x * y) % P];
}

function encode(p: Point): Uint8Array {
  const zi = inverse(p[2]);
  const x = (p[0] * zi) % P;
  let y = (p[1] * zi) % P;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, y >>= 8n) out[i] = Number(y & 0xffn);
  out[31]! |= Number(x & 1n) << 7;
  return out;
}

/**
 * Whether `signature` (64 bytes) is `publicKey`'s (32 bytes) over `message`:
 * [S]B = R + [k]A with k = SHA-512(R || A || M), checked as the encoding of
 * [S]B - [k]A being R's.
 */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  const a = decode(publicKey);
  if (!a) return false;
  const r = signature.subarray(0, 32);
  const s = number(signature.subarray(32));
  if (s >= L) return false;
  const k = number(sha512([r, publicKey, message])) % L;
  // [s]B + [k](-A), both scalars at once (Straus)
  const base = curve().base;
  const minusA = negate(a);
  const both = add(base, minusA);
  let q: Point = [0n, 1n, 1n, 0n];
  for (let bit = 255n; bit >= 0n; bit--) {
    q = double(q);
    const sb = (s >> bit) & 1n;
    const kb = (k >> bit) & 1n;
    if (sb && kb) q = add(q, both);
    else if (sb) q = add(q, base);
    else if (kb) q = add(q, minusA);
  }
  const got = encode(q);
  for (let i = 0; i < 32; i++) if (got[i] !== r[i]) return false;
  return true;
}
