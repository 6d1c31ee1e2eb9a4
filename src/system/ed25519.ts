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
/** The curve's d (-121665/121666), 2d and a square root of -1 (RFC 8032, 5.1): a wrong digit fails every test vector. */
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;
const D2 = 16295367250680780974490674513165176452449235426866156013048779062215315747161n;
const SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752n;
/** The base point B: y = 4/5, x even. */
const BASE_X = 15112221349535400772501151409588531511454012693041857206046113283949847762202n;
const BASE_Y = 46316835694926478169428394003475163141307993866256225615783033603165251855960n;

function add(p: Point, q: Point): Point {
  const a = mod((p[1] - p[0]) * (q[1] - q[0]));
  const b = mod((p[1] + p[0]) * (q[1] + q[0]));
  const c = mod(p[3] * D2 * q[3]);
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
  const sign = bytes[31]! >> 7;
  const copy = Uint8Array.from(bytes); // not slice(): on some Uint8Array subclasses it gives a view, and this writes
  copy[31]! &= 0x7f;
  const y = number(copy);
  if (y >= P) return undefined;
  const y2 = (y * y) % P;
  const u = mod(y2 - 1n);
  const v = mod(D * y2 + 1n);
  // x = (u / v)^((p + 3) / 8), as u v^3 (u v^7)^((p - 5) / 8)
  const v3 = (v * v * v) % P;
  let x = (u * v3 % P) * pow(u * v3 * v3 * v % P, (P - 5n) / 8n) % P;
  const vx2 = (v * x * x) % P;
  if (vx2 !== u) {
    if (vx2 !== mod(-u)) return undefined;
    x = (x * SQRT_M1) % P;
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
  const base: Point = [BASE_X, BASE_Y, 1n, (BASE_X * BASE_Y) % P];
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
