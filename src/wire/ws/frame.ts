// WebSocket frames (RFC 6455, section 5): constants, the error every
// violation becomes, and the client's frame encoder. A client masks every
// frame it sends with a fresh 4-byte key (5.3); the caller draws the key
// from its host's random source, so the encoder itself stays pure.

export const Opcode = Object.freeze({
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const);

/** Close codes this client sends (RFC 6455, 7.4.1). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  INVALID_DATA: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
} as const);

/** Largest payload of a control frame (5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

export type WsErrorCode =
  | "protocol" // a frame the RFC forbids: reserved bits or opcodes, a masked server frame, bad fragmentation, bad close frame
  | "invalid-utf8" // a text message or a close reason that is not UTF-8
  | "too-big" // a message over the size limit
  | "handshake"; // the server's answer to the upgrade request is not a WebSocket handshake

/**
 * A violation by the peer, with the close code to answer it with (1002,
 * 1007, 1009); 0 for a failed handshake, when no WebSocket connection exists
 * yet to send a close frame on.
 */
export class WsError extends Error {
  // A field, so defined on the instance: assigning this.name fails on the
  // device, where Error.prototype is frozen (its name is not writable).
  override readonly name = "WsError";
  readonly code: WsErrorCode;
  readonly closeCode: number;
  constructor(code: WsErrorCode, message: string, closeCode: number) {
    super(`ws: ${message}`);
    this.code = code;
    this.closeCode = closeCode;
  }
}

/** Whether a peer may send this code in a close frame (7.4.1, 7.4.2; 1012-1014 as IANA registered them). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Bytes a frame of `length` payload bytes takes: header, mask key, payload. */
export function frameLength(length: number): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + 4 + length;
}

/**
 * One masked frame in a new array: header, then `payload` XORed with the
 * key `mask` (a u32, its bytes big-endian on the wire). The payload is
 * copied, never modified.
 */
export function encodeFrame(opcode: number, fin: boolean, payload: Uint8Array, mask: number): Uint8Array {
  const total = frameLength(payload.length);
  // Lay the payload out on a 4-byte boundary, so that masking goes a word at a time.
  const pad = (4 - ((total - payload.length) & 3)) & 3;
  const frame = new Uint8Array(new ArrayBuffer(pad + total), pad, total);
  encodeFrameInto(frame, 0, opcode, fin, payload, mask);
  return frame;
}

/**
 * Writes one masked frame into `target` at `at` (which must have
 * frameLength(payload.length) bytes free); returns the bytes written. The
 * payload is copied, never modified.
 */
export function encodeFrameInto(target: Uint8Array, at: number, opcode: number, fin: boolean, payload: Uint8Array, mask: number): number {
  const length = payload.length;
  const start = at;
  target[at] = (fin ? 0x80 : 0) | opcode;
  if (length < 126) {
    target[at + 1] = 0x80 | length;
    at += 2;
  } else if (length < 0x10000) {
    target[at + 1] = 0x80 | 126;
    target[at + 2] = length >> 8;
    target[at + 3] = length & 255;
    at += 4;
  } else {
    target[at + 1] = 0x80 | 127;
    const high = Math.floor(length / 0x100000000);
    target[at + 2] = high >>> 24;
    target[at + 3] = (high >>> 16) & 255;
    target[at + 4] = (high >>> 8) & 255;
    target[at + 5] = high & 255;
    target[at + 6] = length >>> 24;
    target[at + 7] = (length >>> 16) & 255;
    target[at + 8] = (length >>> 8) & 255;
    target[at + 9] = length & 255;
    at += 10;
  }
  const k0 = mask >>> 24, k1 = (mask >>> 16) & 255, k2 = (mask >>> 8) & 255, k3 = mask & 255;
  target[at] = k0;
  target[at + 1] = k1;
  target[at + 2] = k2;
  target[at + 3] = k3;
  at += 4;
  target.set(payload, at);
  maskInPlace(target, at, length, k0, k1, k2, k3);
  return at + length - start;
}

/** XORs target[at, at + length) with the key bytes k0..k3 (k0 on the first byte); by words where aligned. */
function maskInPlace(target: Uint8Array, at: number, length: number, k0: number, k1: number, k2: number, k3: number): void {
  const key = [k0, k1, k2, k3];
  const address = target.byteOffset + at;
  const lead = Math.min(length, (4 - (address & 3)) & 3);
  let i = 0;
  for (; i < lead; i++) target[at + i] ^= key[i]!;
  const words = (length - i) >> 2;
  if (words) {
    // from here on the key starts at byte i & 3 of its four
    const r = i;
    const word = LITTLE_ENDIAN
      ? key[r]! | (key[(r + 1) & 3]! << 8) | (key[(r + 2) & 3]! << 16) | (key[(r + 3) & 3]! << 24)
      : (key[r]! << 24) | (key[(r + 1) & 3]! << 16) | (key[(r + 2) & 3]! << 8) | key[(r + 3) & 3]!;
    const w = new Int32Array(target.buffer, address + i, words);
    for (let j = 0; j < words; j++) w[j] ^= word;
    i += words << 2;
  }
  for (; i < length; i++) target[at + i] ^= key[i & 3]!;
}

/** A close frame's payload: the code, then as much of `reason` (UTF-8) as fits in a control frame. */
export function closePayload(code: number, reason: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + Math.min(reason.length, MAX_CONTROL_PAYLOAD - 2));
  out[0] = code >> 8;
  out[1] = code & 255;
  let end = out.length - 2;
  // never cut a UTF-8 sequence in two
  if (end < reason.length) while (end > 0 && (reason[end]! & 0xc0) === 0x80) end--;
  out.set(reason.subarray(0, end), 2);
  return out.subarray(0, 2 + end);
}
