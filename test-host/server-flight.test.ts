// The Node host's reader of the server's first TLS flight
// (hosts/node/server-flight.ts), on byte fixtures: what it finds, and that
// its work stays linear however the network cuts the flight. Work is
// counted (bytes looked at, bytes copied), never timed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ServerFlightReader } from "../hosts/node/server-flight.js";

/** A handshake record holding these messages ([type, body] each). */
function record(...messages: [number, Uint8Array][]): Uint8Array {
  const body = concat(messages.map(([type, m]) => concat([Uint8Array.of(type, m.length >> 16, (m.length >> 8) & 255, m.length & 255), m])));
  return concat([Uint8Array.of(22, 3, 3, body.length >> 8, body.length & 255), body]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u24(n: number): Uint8Array {
  return Uint8Array.of(n >> 16, (n >> 8) & 255, n & 255);
}

/** A Certificate message body carrying these DER blobs. */
function certificateMessage(certs: Uint8Array[]): Uint8Array {
  const list = concat(certs.flatMap((c) => [u24(c.length), c]));
  return concat([u24(list.length), list]);
}

const leaf = new Uint8Array(900).fill(0x30);
const ca = new Uint8Array(1100).fill(0x31);

/** ServerHello, Certificate, then `filler` records of ~16 KiB (ServerKeyExchange-sized blobs), a CertificateRequest, ServerHelloDone. */
function flight(filler: number): Uint8Array {
  const records = [record([2, new Uint8Array(70)]), record([11, certificateMessage([leaf, ca])])];
  for (let i = 0; i < filler; i++) records.push(record([12, new Uint8Array(16000).fill(i)]));
  records.push(record([13, new Uint8Array(8)], [14, new Uint8Array(0)]));
  return concat(records);
}

test("a 256 KiB first flight fed one byte at a time: each byte looked at once and copied at most once", () => {
  const bytes = flight(17);
  assert.ok(bytes.length > 256 * 1024, `${bytes.length}`);
  const reader = new ServerFlightReader();
  let calls = 0;
  for (let i = 0; i < bytes.length && reader.push(bytes.subarray(i, i + 1)); i++) calls++;
  assert.equal(reader.done, true);
  assert.equal(calls, bytes.length - 1, "done exactly at the last byte (ServerHelloDone)");
  assert.deepEqual(reader.serverChain, [leaf, ca]);
  assert.equal(reader.certificateRequested, true);
  assert.equal(reader.splitMessage, undefined);
  assert.equal(reader.work.scanned, bytes.length);
  // record bodies are assembled once each; headers are not counted as copies
  assert.ok(reader.work.copied <= bytes.length, `${reader.work.copied} bytes copied for a ${bytes.length}-byte flight`);
});

test("the flight in one chunk is read in place: nothing copied; in odd pieces, still linear", () => {
  const bytes = flight(4);
  const whole = new ServerFlightReader();
  assert.equal(whole.push(bytes), false);
  assert.deepEqual(whole.serverChain, [leaf, ca]);
  assert.equal(whole.work.copied, 0);
  const pieces = new ServerFlightReader();
  for (let at = 0, n = 1; at < bytes.length; at += n, n = (n * 7 + 3) % 4099 + 1) pieces.push(bytes.subarray(at, at + n));
  assert.equal(pieces.done, true);
  assert.deepEqual(pieces.serverChain, [leaf, ca]);
  assert.equal(pieces.work.scanned, bytes.length);
  assert.ok(pieces.work.copied <= bytes.length);
});

test("reading stops at the first record that is not a handshake, and at a message split across records", () => {
  const appData = concat([record([2, new Uint8Array(10)]), Uint8Array.of(23, 3, 3, 0, 4, 1, 2, 3, 4), record([11, certificateMessage([leaf])])]);
  const r = new ServerFlightReader();
  assert.equal(r.push(appData), false);
  assert.equal(r.serverChain, undefined, "nothing read past the application data record");
  assert.equal(r.work.scanned, 5 + 14 + 5);

  // a Certificate message whose declared size runs past its record
  const message = certificateMessage([leaf, ca]);
  const head = concat([Uint8Array.of(11), u24(message.length), message.subarray(0, 100)]);
  const split = concat([Uint8Array.of(22, 3, 3, head.length >> 8, head.length & 255), head]);
  const s = new ServerFlightReader();
  for (let i = 0; i < split.length; i++) s.push(split.subarray(i, i + 1));
  assert.deepEqual(s.splitMessage, { name: "Certificate", size: message.length });
  assert.equal(s.done, true);
});

test("a record longer than TLS allows ends reading (Node refuses it)", () => {
  const r = new ServerFlightReader();
  assert.equal(r.push(Uint8Array.of(22, 3, 3, 0x48, 0x01)), false);
  assert.equal(r.serverChain, undefined);
});
