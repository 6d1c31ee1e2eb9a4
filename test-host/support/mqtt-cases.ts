// Byte fixtures and a fuzz for the MQTT 3.1.1 wire codec (src/wire/mqtt),
// with the driver that checks them. PORTABLE: no Node imports, no Buffer, so
// the very same module runs on Node and, bundled by hosts/xsnap, on XS; both
// must report the same results.
//
// Every packet fixture is encoded (the bytes must be the fixture's) and
// decoded whole, byte by byte and in pseudo-random splits (the packet must
// be the fixture's). Malformed fixtures must fail with their code, and the
// decoder must stay failed. The fuzz mutates valid packet streams and
// requires that nothing but an MqttError ever comes out.

import { prng } from "./prng.js";
import {
  MqttDecoder, MqttError, encodePacket, encodePublishHead, topicMatches, topicNameFault, topicFilterFault,
  type MqttPacket, type MqttErrorCode,
} from "../../src/wire/mqtt/index.js";
import { utf8Encode } from "../../src/util/utf8.js";

export interface CaseResult {
  name: string;
  ok: boolean;
  detail: string;
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string): Uint8Array => {
  const t = s.replace(/ /g, "");
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
};
const bytes = (s: string): Uint8Array => utf8Encode(s);

/** A packet as comparable JSON: byte fields as hex, absent fields left out. */
function shape(p: MqttPacket): string {
  return JSON.stringify(p, (_k, v: unknown) => (v instanceof Uint8Array ? `hex:${hex(v)}` : v));
}

/** [name, packet, its bytes in hex]. */
const PACKETS: readonly [string, MqttPacket, string][] = [
  ["CONNECT minimal", { type: 1, clientId: "", cleanSession: true, keepAlive: 0 },
    "10 0c 00044d515454 04 02 0000 0000"],
  ["CONNECT full", {
    type: 1, clientId: "dev1", cleanSession: false, keepAlive: 60, username: "u", password: bytes("pw"),
    will: { topic: "w/t", payload: bytes("gone"), qos: 1, retain: true },
  }, "10 22 00044d515454 04 ec 003c 0004 64657631 0003 772f74 0004 676f6e65 0001 75 0002 7077"],
  ["CONNECT will QoS 2 no retain", {
    type: 1, clientId: "c", cleanSession: true, keepAlive: 65535, will: { topic: "x", payload: new Uint8Array(0), qos: 2, retain: false },
  }, "10 12 00044d515454 04 16 ffff 0001 63 0001 78 0000"],
  ["CONNACK accepted", { type: 2, sessionPresent: false, returnCode: 0 }, "20 02 00 00"],
  ["CONNACK session present", { type: 2, sessionPresent: true, returnCode: 0 }, "20 02 01 00"],
  ["CONNACK not authorized", { type: 2, sessionPresent: false, returnCode: 5 }, "20 02 00 05"],
  ["PUBLISH QoS 0 empty", { type: 3, topic: "a/b", payload: new Uint8Array(0), qos: 0, retain: false, dup: false },
    "30 05 0003 612f62"],
  ["PUBLISH QoS 0 retain", { type: 3, topic: "a", payload: bytes("hi"), qos: 0, retain: true, dup: false },
    "31 05 0001 61 6869"],
  ["PUBLISH QoS 1", { type: 3, topic: "t", payload: bytes("x"), qos: 1, retain: false, dup: false, packetId: 1 },
    "32 06 0001 74 0001 78"],
  ["PUBLISH QoS 2 DUP", { type: 3, topic: "t", payload: bytes("x"), qos: 2, retain: false, dup: true, packetId: 0xbeef },
    "3c 06 0001 74 beef 78"],
  ["PUBLISH UTF-8 topic", { type: 3, topic: "é/€/😀", payload: new Uint8Array(0), qos: 0, retain: false, dup: false },
    "30 0d 000b c3a92fe282ac2ff09f9880"],
  ["PUBLISH $SYS topic", { type: 3, topic: "$SYS/x", payload: bytes("1"), qos: 0, retain: false, dup: false },
    "30 09 0006 245359532f78 31"],
  ["PUBACK", { type: 4, packetId: 1 }, "40 02 0001"],
  ["PUBREC", { type: 5, packetId: 65535 }, "50 02 ffff"],
  ["PUBREL", { type: 6, packetId: 258 }, "62 02 0102"],
  ["PUBCOMP", { type: 7, packetId: 7 }, "70 02 0007"],
  ["SUBSCRIBE one", { type: 8, packetId: 10, subscriptions: [{ filter: "a/+/c", qos: 1 }] },
    "82 0a 000a 0005 612f2b2f63 01"],
  ["SUBSCRIBE two", { type: 8, packetId: 2, subscriptions: [{ filter: "#", qos: 0 }, { filter: "s/#", qos: 2 }] },
    "82 0c 0002 0001 23 00 0003 732f23 02"],
  ["SUBACK", { type: 9, packetId: 10, returnCodes: [0, 1, 2, 0x80] }, "90 06 000a 00010280"],
  ["UNSUBSCRIBE", { type: 10, packetId: 3, filters: ["a/#", "b"] }, "a2 0a 0003 0003 612f23 0001 62"],
  ["UNSUBACK", { type: 11, packetId: 3 }, "b0 02 0003"],
  ["PINGREQ", { type: 12 }, "c0 00"],
  ["PINGRESP", { type: 13 }, "d0 00"],
  ["DISCONNECT", { type: 14 }, "e0 00"],
];

/** [name, bytes in hex, error code]: what a peer can get wrong. */
const MALFORMED: readonly [string, string, MqttErrorCode][] = [
  ["reserved type 0", "00 00", "malformed"],
  ["reserved type 15", "f0 00", "malformed"],
  ["five-byte remaining length", "30 ff ff ff ff 01", "malformed"],
  ["CONNACK too long", "20 03 00 00 00", "malformed"],
  ["CONNACK too short", "20 01 00", "malformed"],
  ["CONNACK bad flags", "21 02 00 00", "malformed"],
  ["CONNACK reserved ack flags", "20 02 02 00", "malformed"],
  ["CONNACK return code 6", "20 02 00 06", "malformed"],
  ["CONNACK refusal with session present", "20 02 01 05", "malformed"],
  ["PUBLISH QoS 3", "36 05 0001 74 0001", "malformed"],
  ["PUBLISH DUP at QoS 0", "38 03 0001 74", "malformed"],
  ["PUBLISH packet id 0", "32 05 0001 74 0000", "malformed"],
  ["PUBLISH empty topic", "30 02 0000", "bad-topic"],
  ["PUBLISH wildcard topic", "30 03 0001 23", "bad-topic"],
  ["PUBLISH plus in topic", "30 05 0003 612f2b", "bad-topic"],
  ["PUBLISH topic past the end", "30 03 0005 61", "malformed"],
  ["PUBLISH topic not UTF-8", "30 04 0002 c328", "bad-utf8"],
  ["PUBLISH topic overlong UTF-8", "30 04 0002 c0af", "bad-utf8"],
  ["PUBLISH topic surrogate", "30 05 0003 eda080", "bad-utf8"],
  ["PUBLISH topic NUL", "30 03 0001 00", "bad-utf8"],
  ["PUBLISH QoS 1 no packet id", "32 03 0001 74", "malformed"],
  ["PUBACK bad length", "40 03 000100", "malformed"],
  ["PUBACK flags", "41 02 0001", "malformed"],
  ["PUBACK id 0", "40 02 0000", "malformed"],
  ["PUBREL flags 0", "60 02 0001", "malformed"],
  ["SUBSCRIBE flags 0", "80 06 0001 0001 23 00", "malformed"],
  ["SUBSCRIBE no filter", "82 02 0001", "malformed"],
  ["SUBSCRIBE QoS byte 3", "82 06 0001 0001 23 03", "malformed"],
  ["SUBSCRIBE # not last", "82 08 0001 0003 232f61 00", "bad-topic"],
  ["SUBSCRIBE a+ level", "82 07 0001 0002 612b 00", "bad-topic"],
  ["SUBSCRIBE missing QoS", "82 05 0001 0001 23", "malformed"],
  ["SUBACK no codes", "90 02 0001", "malformed"],
  ["SUBACK code 3", "90 03 0001 03", "malformed"],
  ["UNSUBSCRIBE no filter", "a2 02 0001", "malformed"],
  ["PINGRESP with body", "d0 01 00", "malformed"],
  ["DISCONNECT flags", "e1 00", "malformed"],
  ["CONNECT MQIsdp", "10 0e 00064d5149736470 03 02 0000 0000", "malformed"],
  ["CONNECT reserved flag", "10 0c 00044d515454 04 03 0000 0000", "malformed"],
  ["CONNECT password without user", "10 10 00044d515454 04 42 0000 0000 0002 7077", "malformed"],
  ["CONNECT will QoS without will", "10 0c 00044d515454 04 0a 0000 0000", "malformed"],
  ["CONNECT trailing bytes", "10 0d 00044d515454 04 02 0000 0000 00", "malformed"],
  ["over the size limit", "30 ff 7f", "too-large"],
];

const TOPIC_NAMES: readonly [string, boolean][] = [
  ["a", true], ["a/b/c", true], ["/", true], ["a//b", true], ["$SYS/x", true], [" ", true],
  ["", false], ["a/+", false], ["#", false], ["a/b#", false], ["a\0b", false], ["\ud800", false],
];
const TOPIC_FILTERS: readonly [string, boolean][] = [
  ["#", true], ["+", true], ["a/#", true], ["+/+", true], ["a/+/c", true], ["/+", true], ["+/#", true],
  ["", false], ["a#", false], ["a/#/b", false], ["a+", false], ["a/b+/c", false], ["##", false], ["a\0", false],
];
const MATCHES: readonly [string, string, boolean][] = [
  ["a/b", "a/b", true], ["a/b", "a/c", false], ["a/+", "a/b", true], ["a/+", "a/b/c", false],
  ["a/#", "a/b/c", true], ["a/#", "a", true], ["#", "a/b", true], ["+", "a", true], ["+", "a/b", false],
  ["+/+", "/a", true], ["/+", "/a", true], ["+", "", true], ["#", "$SYS/x", false], ["+/x", "$SYS/x", false],
  ["$SYS/#", "$SYS/x", true], ["a/+/c", "a//c", true], ["a/b", "a/b/", false],
];

function decodeAll(input: Uint8Array, splits: number[], max = 1 << 20): { packets: string[]; error?: MqttError } {
  const packets: string[] = [];
  const d = new MqttDecoder({ maxPacketBytes: max, onPacket: (p) => packets.push(shape(p)) });
  let at = 0;
  try {
    for (const n of splits) {
      d.push(input.subarray(at, at + n));
      at += n;
    }
    if (at < input.length) d.push(input.subarray(at));
  } catch (e) {
    if (!(e instanceof MqttError)) throw e;
    return { packets, error: e };
  }
  return { packets };
}

function splitsOf(length: number, mode: "whole" | "bytes" | number): number[] {
  if (mode === "whole") return [length];
  if (mode === "bytes") return Array.from({ length }, () => 1);
  const rnd = prng(mode);
  const out: number[] = [];
  let left = length;
  while (left > 0) {
    const n = Math.min(left, 1 + (rnd() % 7));
    out.push(n);
    left -= n;
  }
  return out;
}

export function runMqttCases(): CaseResult[] {
  const results: CaseResult[] = [];
  const check = (name: string, ok: boolean, detail = "") => results.push({ name, ok, detail: ok ? "" : detail });

  for (const [name, packet, fixture] of PACKETS) {
    const want = unhex(fixture);
    let encoded = "";
    try {
      encoded = hex(encodePacket(packet));
    } catch (e) {
      encoded = `threw ${String(e)}`;
    }
    check(`encode ${name}`, encoded === hex(want), `${encoded} != ${hex(want)}`);
    for (const mode of ["whole", "bytes", 1, 2, 3] as const) {
      const r = decodeAll(want, splitsOf(want.length, mode));
      const got = r.error ? `error ${r.error.message}` : r.packets.join();
      check(`decode ${name} (${mode})`, got === shape(packet), `${got} != ${shape(packet)}`);
    }
  }

  // all fixtures back to back, in random splits: the decoder resumes across packets
  const stream = concat(PACKETS.map(([, , h]) => unhex(h)));
  for (const seed of [7, 8, 9]) {
    const r = decodeAll(stream, splitsOf(stream.length, seed));
    check(`decode all fixtures in one stream (seed ${seed})`, !r.error && r.packets.join("|") === PACKETS.map(([, p]) => shape(p)).join("|"),
      r.error?.message ?? `${r.packets.length} packets`);
  }

  for (const [name, fixture, code] of MALFORMED) {
    const input = unhex(fixture);
    for (const mode of ["whole", "bytes"] as const) {
      const r = decodeAll(input, splitsOf(input.length, mode), 1000);
      check(`malformed ${name} (${mode})`, r.error?.code === code, r.error ? `${r.error.code}: ${r.error.message}` : "no error");
    }
    // failed for good: the next push throws again, whatever it holds
    const d = new MqttDecoder({ maxPacketBytes: 1000, onPacket: () => undefined });
    let again = "";
    try { d.push(input); } catch { /* expected */ }
    try { d.push(unhex("c000")); } catch (e) { again = (e as MqttError).code; }
    check(`malformed ${name}: stays failed`, again === code, again);
  }

  // the limit holds before a byte of the body is kept: a 100 MB announcement is refused at once
  {
    const d = new MqttDecoder({ maxPacketBytes: 4096, onPacket: () => undefined });
    let code = "";
    try { d.push(unhex("30 80 80 80 30")); } catch (e) { code = (e as MqttError).code; }
    check("a packet over the limit is refused on its header", code === "too-large" && d.partial >= 0, code);
    const ok = new MqttDecoder({ maxPacketBytes: 7, onPacket: () => undefined });
    let err = "";
    try { ok.push(unhex("30 05 0001 74 6869")); } catch (e) { err = String(e); }
    check("a packet exactly at the limit is taken", err === "", err);
  }

  // remaining-length varint at its boundaries (PUBLISH heads, topic "t", QoS 0)
  for (const [payload, lengthHex] of [[0, "03"], [124, "7f"], [125, "8001"], [16380, "ff7f"], [16381, "808001"],
    [2097148, "ffff7f"], [2097149, "80808001"], [268435452, "ffffff7f"]] as const) {
    const head = hex(encodePublishHead({ topic: "t", qos: 0, retain: false, dup: false }, payload));
    check(`varint for a ${payload}-byte payload`, head === `30${lengthHex}000174`, head);
  }
  {
    let code = "";
    try { encodePublishHead({ topic: "t", qos: 0, retain: false, dup: false }, 268435453); } catch (e) { code = (e as MqttError).code; }
    check("a PUBLISH over 268435455 bytes is refused", code === "too-large", code);
  }

  // what the encoder refuses to send
  const refusals: [string, () => unknown, MqttErrorCode][] = [
    ["PUBLISH to a wildcard", () => encodePacket({ type: 3, topic: "a/#", payload: new Uint8Array(0), qos: 0, retain: false, dup: false }), "bad-topic"],
    ["PUBLISH QoS 1 without id", () => encodePacket({ type: 3, topic: "a", payload: new Uint8Array(0), qos: 1, retain: false, dup: false }), "bad-argument"],
    ["PUBLISH DUP at QoS 0", () => encodePacket({ type: 3, topic: "a", payload: new Uint8Array(0), qos: 0, retain: false, dup: true }), "bad-argument"],
    ["SUBSCRIBE a bad filter", () => encodePacket({ type: 8, packetId: 1, subscriptions: [{ filter: "a/#/b", qos: 0 }] }), "bad-topic"],
    ["SUBSCRIBE nothing", () => encodePacket({ type: 8, packetId: 1, subscriptions: [] }), "bad-argument"],
    ["packet id 0", () => encodePacket({ type: 4, packetId: 0 }), "bad-argument"],
    ["packet id 65536", () => encodePacket({ type: 4, packetId: 65536 }), "bad-argument"],
    ["CONNECT keep-alive 65536", () => encodePacket({ type: 1, clientId: "a", cleanSession: true, keepAlive: 65536 }), "bad-argument"],
    ["CONNECT password alone", () => encodePacket({ type: 1, clientId: "a", cleanSession: true, keepAlive: 0, password: new Uint8Array(1) }), "bad-argument"],
    ["CONNECT empty id, session kept", () => encodePacket({ type: 1, clientId: "", cleanSession: false, keepAlive: 0 }), "bad-argument"],
    ["CONNECT user name of 65536 bytes", () => encodePacket({ type: 1, clientId: "a", cleanSession: true, keepAlive: 0, username: "u".repeat(65536) }), "too-large"],
  ];
  for (const [name, f, code] of refusals) {
    let got = "";
    try { f(); } catch (e) { got = e instanceof MqttError ? e.code : `not an MqttError: ${String(e)}`; }
    check(`encoder refuses ${name}`, got === code, got);
  }

  for (const [t, ok] of TOPIC_NAMES) check(`topic name ${JSON.stringify(t)}`, (topicNameFault(t) === undefined) === ok, topicNameFault(t) ?? "accepted");
  for (const [f, ok] of TOPIC_FILTERS) check(`topic filter ${JSON.stringify(f)}`, (topicFilterFault(f) === undefined) === ok, topicFilterFault(f) ?? "accepted");
  for (const [f, t, ok] of MATCHES) check(`${JSON.stringify(f)} matches ${JSON.stringify(t)}: ${ok}`, topicMatches(f, t) === ok);

  results.push(fuzz(2000, 0x4d515454));
  return results;
}

/**
 * Mutates valid packet streams (byte flips, truncation, insertion, random
 * remaining lengths) and decodes them in random splits: only MqttErrors may
 * come out. The detail counts the outcomes, so Node and XS can be compared.
 */
export function fuzz(iterations: number, seed: number): CaseResult {
  const rnd = prng(seed);
  const base = PACKETS.map(([, , h]) => unhex(h));
  const counts: Record<string, number> = {};
  let packets = 0;
  for (let i = 0; i < iterations; i++) {
    const picks = 1 + (rnd() % 4);
    const parts: Uint8Array[] = [];
    for (let k = 0; k < picks; k++) parts.push(base[rnd() % base.length]!);
    const input = concat(parts);
    const edits = 1 + (rnd() % 4);
    let data = input;
    for (let e = 0; e < edits; e++) {
      const at = rnd() % Math.max(1, data.length);
      switch (rnd() % 4) {
        case 0: data[at] = rnd() & 255; break;
        case 1: data = data.subarray(0, at); break;
        case 2: data = concat([data.subarray(0, at), Uint8Array.of(rnd() & 255), data.subarray(at)]); break;
        default: data[at] = data[at]! ^ (1 << (rnd() % 8));
      }
    }
    try {
      const r = decodeAll(data, splitsOf(data.length, rnd()), 64);
      packets += r.packets.length;
      const key = r.error ? r.error.code : "ok";
      counts[key] = (counts[key] ?? 0) + 1;
    } catch (e) {
      return { name: "fuzz", ok: false, detail: `iteration ${i}: ${String(e)} on ${hex(data)}` };
    }
  }
  const summary = Object.keys(counts).sort().map((k) => `${k}=${counts[k]}`).join(" ");
  return { name: `fuzz: ${iterations} mutants, ${packets} packets decoded, ${summary}`, ok: true, detail: "" };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
