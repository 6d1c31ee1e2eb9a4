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

function frame(type: number, bodyLength: number): { bytes: Uint8Array; view: DataView } {
  if (bodyLength > MAX_BODY) throw new SssError("too-large", `a frame body of ${bodyLength} bytes is over ${MAX_BODY}`);
  const bytes = new Uint8Array(FRAME_HEADER + bodyLength);
  const view = new DataView(bytes.buffer);
  bytes[0] = type;
  view.setUint16(1, bodyLength);
  return { bytes, view };
}

function u32(value: number, what: string): number {
  if (!(Number.isInteger(value) && value >= 0 && value <= 0xffffffff)) throw new SssError("bad-value", `${what} ${value} is not a u32`);
  return value;
}

function i32(value: number, what: string): number {
  if (!(Number.isInteger(value) && value >= -0x80000000 && value <= 0x7fffffff)) throw new SssError("bad-value", `${what} ${value} is not an i32`);
  return value;
}

function setU64(view: DataView, at: number, value: number, what: string): void {
  if (!(Number.isSafeInteger(value) && value >= 0)) throw new SssError("bad-value", `${what} ${value} is not a u64 we can write`);
  view.setUint32(at, Math.floor(value / 0x100000000));
  view.setUint32(at + 4, value >>> 0);
}

function name(text: string, max: number, what: string): Uint8Array {
  const bytes = utf8Encode(text);
  if (bytes.length < 1 || bytes.length > max) throw new SssError("bad-name", `${what} "${text}" must be 1 to ${max} bytes`);
  return bytes;
}

function empty(type: number): Uint8Array {
  return frame(type, 0).bytes;
}

function word(type: number, value: number): Uint8Array {
  const f = frame(type, 4);
  f.view.setUint32(3, value);
  return f.bytes;
}

// ---- client → proxy ----

/** The first frame on a link: which streamtype to create, and the credit the client grants (lws' initial tx credit). */
export function encodeStreamtype(streamtype: string, txCredit = LWS_DEFAULT_TXCR, pid = 0): Uint8Array {
  const n = name(streamtype, MAX_STREAMTYPE_NAME, "streamtype");
  const f = frame(ToProxy.STREAMTYPE, 9 + n.length);
  f.bytes[3] = SSS_VERSION;
  f.view.setUint32(4, u32(pid, "pid"));
  f.view.setUint32(8, u32(txCredit, "tx credit"));
  f.bytes.set(n, 12);
  return f.bytes;
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

/**
 * The 19 bytes before an RX_PAYLOAD's payload of `length` bytes: to send a
 * payload gathered from pieces without copying them into one array.
 */
export function encodeRxHead(length: number, flags: number, timeUs = 0): Uint8Array {
  if (PAYLOAD_PREFIX + length > MAX_BODY) throw new SssError("too-large", `a payload of ${length} bytes does not fit a frame`);
  const out = new Uint8Array(FRAME_HEADER + PAYLOAD_PREFIX);
  const view = new DataView(out.buffer);
  out[0] = ToClient.RX_PAYLOAD;
  view.setUint16(1, PAYLOAD_PREFIX + length);
  view.setUint32(3, u32(flags & ~RIDESHARE_FLAG, "flags"));
  setU64(view, 11, timeUs, "timestamp");
  return out;
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
  f.bytes[3] = result;
  f.view.setUint32(4, u32(clientBuflen, "client_buflen"));
  f.bytes.set(list, 8);
  return f.bytes;
}

/** CONNSTATE: a one-byte state below 256, four bytes from there (user states), then the ack (ordinal). */
export function encodeState(state: number, ack = 0): Uint8Array {
  u32(state, "state");
  const wide = state > 0xff;
  const f = frame(ToClient.CONNSTATE, wide ? 8 : 5);
  if (wide) f.view.setUint32(3, state);
  else f.bytes[3] = state;
  f.view.setUint32(wide ? 7 : 4, u32(ack >>> 0, "ack"));
  return f.bytes;
}

export function encodeRxCredit(delta: number): Uint8Array {
  return word(ToClient.TXCR_UPDATE, i32(delta, "tx credit") >>> 0);
}

export function encodePerf(json: Uint8Array): Uint8Array {
  const f = frame(ToClient.PERF, json.length);
  f.bytes.set(json, 3);
  return f.bytes;
}

// ---- either way ----

/** METADATA, to the proxy (`toProxy`) or to the client: name length, name, value. */
export function encodeMetadata(toProxy: boolean, metadataName: string, value: Uint8Array | string): Uint8Array {
  const n = name(metadataName, MAX_METADATA_NAME, "metadata name");
  const v = typeof value === "string" ? utf8Encode(value) : value;
  const f = frame(toProxy ? ToProxy.METADATA : ToClient.METADATA, 1 + n.length + v.length);
  f.bytes[3] = n.length;
  f.bytes.set(n, 4);
  f.bytes.set(v, 4 + n.length);
  return f.bytes;
}

function payloadFrame(type: number, payload: Uint8Array, flags: number, micros: number, timeUs: number, rideshare: string | undefined): Uint8Array {
  const rs = rideshare === undefined ? undefined : name(rideshare, 0xff, "rideshare");
  const extra = rs ? 1 + rs.length : 0;
  const f = frame(type, PAYLOAD_PREFIX + extra + payload.length);
  f.view.setUint32(3, u32(flags, "flags"));
  f.view.setUint32(7, u32(micros, "µs"));
  setU64(f.view, 11, timeUs, "timestamp");
  let at = FRAME_HEADER + PAYLOAD_PREFIX;
  if (rs) {
    f.bytes[at] = rs.length;
    f.bytes.set(rs, at + 1);
    at += extra;
  }
  f.bytes.set(payload, at);
  return f.bytes;
}
