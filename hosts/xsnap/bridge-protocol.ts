// The wire format between XSBridgeHost (inside XS, xs-host.ts) and XSBridge
// (the Node parent, bridge.ts). PORTABLE: both sides import it, so the two
// ends cannot disagree.
//
// Every message is one ArrayBuffer: an opcode byte, then fixed fields
// (integers little-endian), then a tail. Payload bytes (data, writes, DER
// certificates, blob values) travel raw, never as JSON or base64; the few
// structured, rare values (connect options, connected info, errors) are JSON.
//
// XS -> parent: requests, through issueCommand(); XS blocks until the reply.
//   op   request body                                  reply body (after the status byte)
//   'C'  u32 stream, pack(options JSON, DER sections:  -
//        tls.ca[0..ca), clientCert?, clientKey?)
//   'W'  u32 stream, bytes                             u8: 1 = taken, 0 = buffer full (wait for writable)
//   'X'  u32 stream  (close; nothing more is delivered for it)
//   'T'  u32 timer, f64 ms                             -
//   'K'  u32 timer   (clear; its fire event is dropped even if already queued)
//   'G'  utf8 name                                     u8 present, value bytes
//   'S'  u16 n, n bytes utf8 name, value bytes         -
//   'D'  utf8 name                                     -
//   'L'  utf8 message                                  -
//   'R'  -                                             f64 in [0, 1)
//   'M'  bytes, for the parent's onMessage             the bytes onMessage returned
// Every reply starts with a status byte: 0 ok (body as above), 1 failed: the
// body is utf8 "<error name>\n<message>", which XS throws.
//
// Parent -> XS: events, one per crank, through globalThis.handleCommand():
//   'c'  u32 stream, JSON {alpn?, timings, peer?}      onConnected
//   'd'  u32 stream, bytes                             onData
//   'w'  u32 stream                                    onWritable
//   'x'  u32 stream                                    onClosed (last event of the stream)
//   'e'  u32 stream, JSON {kind, message}              onError (last event of the stream)
//   't'  u32 timer                                     the timer's callback
//   'm'  bytes                                         XSBridgeHost.onMessage (app/test channel)
//
// pack(head, sections): u32 n, n bytes JSON head, u32 count, then count
// sections, each u32 length + raw bytes: structured data with bulk bytes.
//
// Stream and timer ids are chosen by XS (counters from 1), so a request
// needs no reply to learn its id.

import type { ConnectOptions } from "../../src/host.js";
import { utf8Decode, utf8Encode } from "../../src/util/utf8.js";

export const Req = {
  connect: 0x43, // C
  write: 0x57, // W
  close: 0x58, // X
  setTimer: 0x54, // T
  clearTimer: 0x4b, // K
  blobGet: 0x47, // G
  blobSet: 0x53, // S
  blobDelete: 0x44, // D
  log: 0x4c, // L
  random: 0x52, // R
  message: 0x4d, // M
} as const;

export const Ev = {
  connected: 0x63, // c
  data: 0x64, // d
  writable: 0x77, // w
  closed: 0x78, // x
  error: 0x65, // e
  timer: 0x74, // t
  message: 0x6d, // m
} as const;

export const Status = { ok: 0, failed: 1 } as const;

/** Bytes of opcode + u32 id that start every stream and timer message. */
export const ID_HEADER = 5;

/** An opcode and a u32 id, then `tail`. */
export function withId(op: number, id: number, tail?: Uint8Array): Uint8Array {
  const out = new Uint8Array(ID_HEADER + (tail ? tail.length : 0));
  out[0] = op;
  new DataView(out.buffer).setUint32(1, id, true);
  if (tail) out.set(tail, ID_HEADER);
  return out;
}

/** An opcode, then `tail`. */
export function withOp(op: number, tail?: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + (tail ? tail.length : 0));
  out[0] = op;
  if (tail) out.set(tail, 1);
  return out;
}

export function readId(msg: Uint8Array): number {
  return new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getUint32(1, true);
}

export function text(bytes: Uint8Array): string {
  return utf8Decode(bytes, 0, bytes.length) ?? "";
}

export function json(value: unknown): Uint8Array {
  return utf8Encode(JSON.stringify(value));
}

export function parseJson<T>(bytes: Uint8Array): T {
  return JSON.parse(text(bytes)) as T;
}

/** JSON `head` and raw `sections`, in one array (format in the header). */
export function pack(head: unknown, sections: readonly Uint8Array[] = []): Uint8Array {
  const j = json(head);
  let size = 8 + j.length;
  for (const s of sections) size += 4 + s.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, j.length, true);
  out.set(j, 4);
  v.setUint32(4 + j.length, sections.length, true);
  let at = 8 + j.length;
  for (const s of sections) {
    v.setUint32(at, s.length, true);
    out.set(s, at + 4);
    at += 4 + s.length;
  }
  return out;
}

/** Reverses pack(); the sections are views into `bytes`. */
export function unpack<T>(bytes: Uint8Array): { head: T; sections: Uint8Array[] } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = v.getUint32(0, true);
  const head = parseJson<T>(bytes.subarray(4, 4 + n));
  const count = v.getUint32(4 + n, true);
  const sections: Uint8Array[] = [];
  let at = 8 + n;
  for (let i = 0; i < count; i++) {
    const len = v.getUint32(at, true);
    if (at + 4 + len > bytes.length) throw new RangeError("pack: a section runs past the end");
    sections.push(bytes.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return { head, sections };
}

/** The JSON part of a connect request: ConnectOptions with the DER blobs counted, not included. */
interface ConnectJson {
  host: string;
  port: number;
  timeoutMs?: number;
  tls?: { serverName: string; alpn?: string[]; ca: number; clientCert: boolean; clientKey: boolean };
}

export function encodeConnect(id: number, o: ConnectOptions): Uint8Array {
  const sections: Uint8Array[] = [];
  const head: ConnectJson = { host: o.host, port: o.port };
  if (o.timeoutMs !== undefined) head.timeoutMs = o.timeoutMs;
  if (o.tls) {
    const t = o.tls;
    head.tls = { serverName: t.serverName, ca: t.ca.length, clientCert: t.clientCert !== undefined, clientKey: t.clientKey !== undefined };
    if (t.alpn) head.tls.alpn = [...t.alpn];
    sections.push(...t.ca);
    if (t.clientCert) sections.push(t.clientCert);
    if (t.clientKey) sections.push(t.clientKey);
  }
  return withId(Req.connect, id, pack(head, sections));
}

/** Decodes a connect request; the DER blobs are views into `msg`. */
export function decodeConnect(msg: Uint8Array): { id: number; options: ConnectOptions } {
  const id = readId(msg);
  const { head, sections } = unpack<ConnectJson>(msg.subarray(ID_HEADER));
  if (!head.tls) return { id, options: { host: head.host, port: head.port, timeoutMs: head.timeoutMs } };
  const t = head.tls;
  if (sections.length !== t.ca + (t.clientCert ? 1 : 0) + (t.clientKey ? 1 : 0)) throw new RangeError("connect request: wrong number of DER sections");
  const ca = sections.slice(0, t.ca);
  let at = t.ca;
  const clientCert = t.clientCert ? sections[at++] : undefined;
  const clientKey = t.clientKey ? sections[at++] : undefined;
  return {
    id,
    options: { host: head.host, port: head.port, timeoutMs: head.timeoutMs, tls: { serverName: t.serverName, ca, clientCert, clientKey, alpn: t.alpn } },
  };
}

/** A failed reply: status byte, then "<name>\n<message>". */
export function failedReply(error: unknown): Uint8Array {
  const e = error instanceof Error ? error : new Error(String(error));
  return withOp(Status.failed, utf8Encode(`${e.name}\n${e.message}`));
}

/** An ok reply with an optional body. */
export function okReply(body?: Uint8Array): Uint8Array {
  return withOp(Status.ok, body);
}
