// Writes serialized Secure Streams frames, each as one new byte array that
// the caller hands to the link whole. Every value is checked against what its
// field holds: an encoder never writes a frame the other side would misread.

import { utf8Encode } from "../../util/utf8.js";
import {
  FRAME_HEADER, LWS_DEFAULT_TXCR, MAX_BODY, MAX_METADATA_NAME, MAX_STREAMTYPE_NAME, PAYLOAD_PREFIX, RIDESHARE_FLAG,
  SSS_VERSION, SssError, ToClient, ToProxy,
} from "./frames.js";

/** lws writes CREATE_RESULT's length with its high byte 0: the body must stay under 256 bytes. */
const MAX_CREATE_RESULT_BODY = 0xff;

function frame(type: number, bodyLength: number): Uint8Array {
  if (bodyLength > MAX_BODY) throw new SssError("too-large", `a frame body of ${bodyLength} bytes is over ${MAX_BODY}`);
  const bytes = new Uint8Array(FRAME_HEADER + bodyLength);
  bytes[0] = type;
  bytes[1] = bodyLength >> 8;
  bytes[2] = bodyLength & 0xff;
  return bytes;
}

// big-endian integers written byte by byte: no DataView (whose `buffer` would
// make V8 move a small array's bytes off its heap, on every frame)
function put32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = value >>> 16;
  bytes[at + 2] = value >>> 8;
  bytes[at + 3] = value;
}

function u32(value: number, what: string): number {
  if (!(Number.isInteger(value) && value >= 0 && value <= 0xffffffff)) throw new SssError("bad-value", `${what} ${value} is not a u32`);
  return value;
}

function i32(value: number, what: string): number {
  if (!(Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff)) throw new SssError("bad-value", `${what} ${value} is not an i32`);
  return value;
}

function putU64(bytes: Uint8Array, at: number, value: number, what: string): void {
  if (!(Number.isSafeInteger(value) && value >= 0)) throw new SssError("bad-value", `${what} ${value} is not a u64 we can write`);
  put32(bytes, at, Math.floor(value / 0x100000000));
  put32(bytes, at + 4, value >>> 0);
}

function name(text: string, max: number, what: string): Uint8Array {
  const bytes = utf8Encode(text);
  if (bytes.length < 1 || bytes.length > max) throw new SssError("bad-name", `${what} "${text}" must be 1 to ${max} bytes`);
  return bytes;
}

function empty(type: number): Uint8Array {
  return frame(type, 0);
}

function word(type: number, value: number): Uint8Array {
  const f = frame(type, 4);
  put32(f, 3, value);
  return f;
}

// ---- client → proxy ----

/** The first frame on a link: which streamtype to create, and the credit the client grants (lws' initial tx credit). */
export function encodeStreamtype(streamtype: string, txCredit = LWS_DEFAULT_TXCR, pid = 0): Uint8Array {
  const n = name(streamtype, MAX_STREAMTYPE_NAME, "streamtype");
  const f = frame(ToProxy.STREAMTYPE, 9 + n.length);
  f[3] = SSS_VERSION;
  put32(f, 4, u32(pid, "pid"));
  put32(f, 8, u32(txCredit, "tx credit"));
  f.set(n, 12);
  return f;
}

export function encodeOnwardConnect(): Uint8Array {
  return empty(ToProxy.ONWARD_CONNECT);
}

export function encodeDestroying(): Uint8Array {
  return empty(ToProxy.DESTROYING);
}

/** TX_PAYLOAD: `heldUs` is how long the write waited in the client, `timeUs` when it was written (monotonic µs). */
export function encodeTx(payload: Uint8Array, flags: number, heldUs = 0, timeUs = 0): Uint8Array {
  return payloadFrame(ToProxy.TX_PAYLOAD, payload, flags & ~RIDESHARE_FLAG, heldUs, timeUs, undefined);
}

export function encodeTxCredit(delta: number): Uint8Array {
  return word(ToProxy.TXCR_UPDATE, i32(delta, "tx credit") >>> 0);
}

/** TIMEOUT_UPDATE: ms, or TIMEOUT_POLICY (the policy's timeout_ms), or TIMEOUT_CANCEL. */
export function encodeTimeout(ms: number): Uint8Array {
  return word(ToProxy.TIMEOUT_UPDATE, u32(ms, "timeout"));
}

export function encodeLengthHint(length: number): Uint8Array {
  return word(ToProxy.PAYLOAD_LENGTH_HINT, u32(length, "payload length"));
}

// ---- proxy → client ----

/** RX_PAYLOAD; `rideshare` names the streamtype of a rideshare (and sets the RIDESHARE flag). */
export function encodeRx(payload: Uint8Array, flags: number, timeUs = 0, rideshare?: string, latencyUs = 0): Uint8Array {
  const f = rideshare === undefined ? flags & ~RIDESHARE_FLAG : flags | RIDESHARE_FLAG;
  return payloadFrame(ToClient.RX_PAYLOAD, payload, f, latencyUs, timeUs, rideshare);
}

/** Bytes of an RX_PAYLOAD before its payload (without a rideshare name). */
export const RX_HEAD = FRAME_HEADER + PAYLOAD_PREFIX;

/**
 * The 19 bytes before an RX_PAYLOAD's payload of `length` bytes: to send a
 * payload gathered from pieces without copying them into one array.
 */
export function encodeRxHead(length: number, flags: number, timeUs = 0): Uint8Array {
  const out = new Uint8Array(RX_HEAD);
  writeRxHead(out, 0, length, flags, timeUs);
  return out;
}

/** encodeRxHead's bytes written into `out` at `at`: before a payload gathered behind them, one array for the frame. */
export function writeRxHead(out: Uint8Array, at: number, length: number, flags: number, timeUs = 0): void {
  if (PAYLOAD_PREFIX + length > MAX_BODY) throw new SssError("too-large", `a payload of ${length} bytes does not fit a frame`);
  out[at] = ToClient.RX_PAYLOAD;
  out[at + 1] = (PAYLOAD_PREFIX + length) >> 8;
  out[at + 2] = (PAYLOAD_PREFIX + length) & 0xff;
  put32(out, at + 3, u32(flags & ~RIDESHARE_FLAG, "flags"));
  put32(out, at + 7, 0);
  putU64(out, at + 11, timeUs, "timestamp");
}

/**
 * CREATE_RESULT: 0 for created, anything else for refused. `rideshares`
 * lists the streamtype and its rideshares, written as lws does: each name
 * after a comma, so the list starts with one.
 */
export function encodeCreateResult(result: number, clientBuflen = 0, rideshares: readonly string[] = []): Uint8Array {
  if (!(Number.isInteger(result) && result >= 0 && result <= 0xff)) throw new SssError("bad-value", `create result ${result} is not a u8`);
  const list = utf8Encode(rideshares.map((r) => `,${r}`).join(""));
  if (5 + list.length > MAX_CREATE_RESULT_BODY) throw new SssError("too-large", `a rideshare list of ${list.length} bytes does not fit a create result`);
  const f = frame(ToClient.CREATE_RESULT, 5 + list.length);
  f[3] = result;
  put32(f, 4, u32(clientBuflen, "client_buflen"));
  f.set(list, 8);
  return f;
}

/** CONNSTATE: a one-byte state below 256, four bytes from there (user states), then the ack (ordinal). */
export function encodeState(state: number, ack = 0): Uint8Array {
  u32(state, "state");
  const wide = state > 0xff;
  const f = frame(ToClient.CONNSTATE, wide ? 8 : 5);
  if (wide) put32(f, 3, state);
  else f[3] = state;
  put32(f, wide ? 7 : 4, u32(ack >>> 0, "ack"));
  return f;
}

export function encodeRxCredit(delta: number): Uint8Array {
  return word(ToClient.TXCR_UPDATE, i32(delta, "tx credit") >>> 0);
}

export function encodePerf(json: Uint8Array): Uint8Array {
  const f = frame(ToClient.PERF, json.length);
  f.set(json, 3);
  return f;
}

// ---- either way ----

/** METADATA, to the proxy (`toProxy`) or to the client: name length, name, value. */
export function encodeMetadata(toProxy: boolean, metadataName: string, value: Uint8Array | string): Uint8Array {
  const n = name(metadataName, MAX_METADATA_NAME, "metadata name");
  const v = typeof value === "string" ? utf8Encode(value) : value;
  const f = frame(toProxy ? ToProxy.METADATA : ToClient.METADATA, 1 + n.length + v.length);
  f[3] = n.length;
  f.set(n, 4);
  f.set(v, 4 + n.length);
  return f;
}

function payloadFrame(type: number, payload: Uint8Array, flags: number, micros: number, timeUs: number, rideshare: string | undefined): Uint8Array {
  const rs = rideshare === undefined ? undefined : name(rideshare, 0xff, "rideshare");
  const extra = rs ? 1 + rs.length : 0;
  const f = frame(type, PAYLOAD_PREFIX + extra + payload.length);
  put32(f, 3, u32(flags, "flags"));
  put32(f, 7, u32(micros, "µs"));
  putU64(f, 11, timeUs, "timestamp");
  let at = FRAME_HEADER + PAYLOAD_PREFIX;
  if (rs) {
    f[at] = rs.length;
    f.set(rs, at + 1);
    at += extra;
  }
  f.set(payload, at);
  return f;
}
