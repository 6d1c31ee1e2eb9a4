// MQTT 3.1.1 packet encoder: every packet type, each into one Uint8Array of
// exactly its size. A PUBLISH head can be made apart from its payload, so a
// large payload is written as it is, never copied behind a header.

import {
  Packet, MqttError, MAX_REMAINING_LENGTH, MAX_STRING_BYTES,
  type MqttPacket, type ConnectPacket, type PublishPacket, type QoS,
} from "./packets.js";
import { checkTopicName, checkTopicFilter } from "./topic.js";
import { utf8Encode } from "../../util/utf8.js";

/** Bytes of the remaining-length varint for n. */
export function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
}

/** Encodes a packet. Throws MqttError ("bad-argument", "bad-topic", "too-large") for one that cannot be sent. */
export function encodePacket(p: MqttPacket): Uint8Array {
  switch (p.type) {
    case Packet.CONNECT: return encodeConnect(p);
    case Packet.CONNACK:
      return Uint8Array.of(0x20, 2, p.sessionPresent ? 1 : 0, byte(p.returnCode, "return code"));
    case Packet.PUBLISH: {
      const head = encodePublishHead(p, p.payload.length);
      const out = new Uint8Array(head.length + p.payload.length);
      out.set(head, 0);
      out.set(p.payload, head.length);
      return out;
    }
    case Packet.PUBACK: case Packet.PUBREC: case Packet.PUBCOMP: case Packet.UNSUBACK:
      return Uint8Array.of(p.type << 4, 2, ...u16(packetId(p.packetId)));
    case Packet.PUBREL:
      return Uint8Array.of(0x62, 2, ...u16(packetId(p.packetId)));
    case Packet.SUBSCRIBE: {
      if (p.subscriptions.length === 0) throw new MqttError("bad-argument", "SUBSCRIBE needs at least one topic filter");
      const parts: Uint8Array[] = [];
      for (const s of p.subscriptions) {
        checkTopicFilter(s.filter);
        parts.push(str(s.filter), Uint8Array.of(qos(s.qos)));
      }
      return frame(0x82, [Uint8Array.from(u16(packetId(p.packetId))), ...parts]);
    }
    case Packet.SUBACK:
      if (p.returnCodes.length === 0) throw new MqttError("bad-argument", "SUBACK needs at least one return code");
      return frame(0x90, [Uint8Array.from(u16(packetId(p.packetId))), Uint8Array.from(p.returnCodes, (c) => {
        if (c !== 0 && c !== 1 && c !== 2 && c !== 0x80) throw new MqttError("bad-argument", `SUBACK return code ${c}`);
        return c;
      })]);
    case Packet.UNSUBSCRIBE: {
      if (p.filters.length === 0) throw new MqttError("bad-argument", "UNSUBSCRIBE needs at least one topic filter");
      const parts: Uint8Array[] = [Uint8Array.from(u16(packetId(p.packetId)))];
      for (const f of p.filters) {
        checkTopicFilter(f);
        parts.push(str(f));
      }
      return frame(0xa2, parts);
    }
    case Packet.PINGREQ: case Packet.PINGRESP: case Packet.DISCONNECT:
      return Uint8Array.of(p.type << 4, 0);
    default:
      throw new MqttError("bad-argument", `no packet type ${(p as { type: unknown }).type}`);
  }
}

/**
 * The fixed header, topic and packet identifier of a PUBLISH whose payload
 * is payloadLength bytes: send the payload right after it.
 */
export function encodePublishHead(p: Omit<PublishPacket, "type" | "payload">, payloadLength: number): Uint8Array {
  checkTopicName(p.topic);
  const q = qos(p.qos);
  if (p.dup && q === 0) throw new MqttError("bad-argument", "DUP on a QoS 0 PUBLISH");
  const topic = str(p.topic);
  const idBytes = q > 0 ? 2 : 0;
  const remaining = topic.length + idBytes + payloadLength;
  if (remaining > MAX_REMAINING_LENGTH) throw new MqttError("too-large", `a PUBLISH of ${remaining} bytes is over MQTT's ${MAX_REMAINING_LENGTH}`);
  const first = 0x30 | (p.dup ? 8 : 0) | (q << 1) | (p.retain ? 1 : 0);
  const out = new Uint8Array(1 + varintSize(remaining) + topic.length + idBytes);
  out[0] = first;
  let at = writeVarint(out, 1, remaining);
  out.set(topic, at);
  at += topic.length;
  if (q > 0) {
    const id = packetId(p.packetId);
    out[at] = id >> 8;
    out[at + 1] = id & 255;
  }
  return out;
}

/** Bytes of a PUBLISH head for a topic of topicBytes UTF-8 bytes (header, topic, packet id). */
export function publishHeadSize(topicBytes: number, qos: QoS, payloadLength: number): number {
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + payloadLength;
  return 1 + varintSize(remaining) + remaining - payloadLength;
}

/**
 * Writes a PUBLISH head into `out` at `at` and returns where it ends: the
 * fast path for a binding that sends many messages to one topic. `topic` is
 * its UTF-8 bytes, already checked with topicNameFault(); packetId must be
 * 1..65535 for QoS 1 and 2; the remaining length must be within MQTT's.
 */
export function writePublishHead(out: Uint8Array, at: number, topic: Uint8Array, qos: QoS, retain: boolean, dup: boolean, packetId: number, payloadLength: number): number {
  const remaining = 2 + topic.length + (qos > 0 ? 2 : 0) + payloadLength;
  out[at++] = 0x30 | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
  at = writeVarint(out, at, remaining);
  out[at++] = topic.length >> 8;
  out[at++] = topic.length & 255;
  out.set(topic, at);
  at += topic.length;
  if (qos > 0) {
    out[at++] = packetId >> 8;
    out[at++] = packetId & 255;
  }
  return at;
}

function encodeConnect(p: ConnectPacket): Uint8Array {
  if (!(Number.isInteger(p.keepAlive) && p.keepAlive >= 0 && p.keepAlive <= 65535)) throw new MqttError("bad-argument", `keep-alive ${p.keepAlive} s`);
  if (p.password && p.username === undefined) throw new MqttError("bad-argument", "a password without a user name (3.1.2.9)");
  if (!p.cleanSession && p.clientId === "") throw new MqttError("bad-argument", "an empty client id needs a clean session (3.1.3.1)");
  let flags = p.cleanSession ? 2 : 0;
  const parts: Uint8Array[] = [];
  parts.push(str(p.clientId));
  if (p.will) {
    checkTopicName(p.will.topic);
    flags |= 4 | (qos(p.will.qos) << 3) | (p.will.retain ? 32 : 0);
    parts.push(str(p.will.topic), bin(p.will.payload));
  }
  if (p.username !== undefined) {
    flags |= 128;
    parts.push(str(p.username));
  }
  if (p.password) {
    flags |= 64;
    parts.push(bin(p.password));
  }
  // protocol name "MQTT", level 4, flags, keep-alive
  const variable = Uint8Array.of(0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, p.keepAlive >> 8, p.keepAlive & 255);
  return frame(0x10, [variable, ...parts]);
}

function frame(first: number, parts: readonly Uint8Array[]): Uint8Array {
  let remaining = 0;
  for (const part of parts) remaining += part.length;
  if (remaining > MAX_REMAINING_LENGTH) throw new MqttError("too-large", `a packet of ${remaining} bytes is over MQTT's ${MAX_REMAINING_LENGTH}`);
  const out = new Uint8Array(1 + varintSize(remaining) + remaining);
  out[0] = first;
  let at = writeVarint(out, 1, remaining);
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function writeVarint(out: Uint8Array, at: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 128;
    out[at++] = b;
  } while (n > 0);
  return at;
}

/** A UTF-8 string with its 16-bit length. */
function str(s: string): Uint8Array {
  if (s.includes("\0")) throw new MqttError("bad-utf8", "a string holds U+0000");
  const bytes = utf8Encode(s);
  return bin(bytes);
}

/** Binary data with its 16-bit length. */
function bin(bytes: Uint8Array): Uint8Array {
  if (bytes.length > MAX_STRING_BYTES) throw new MqttError("too-large", `a field of ${bytes.length} bytes is over ${MAX_STRING_BYTES}`);
  const out = new Uint8Array(2 + bytes.length);
  out[0] = bytes.length >> 8;
  out[1] = bytes.length & 255;
  out.set(bytes, 2);
  return out;
}

function u16(n: number): [number, number] {
  return [n >> 8, n & 255];
}

function packetId(id: number | undefined): number {
  if (!(Number.isInteger(id) && id! >= 1 && id! <= 65535)) throw new MqttError("bad-argument", `packet identifier ${id} (1..65535)`);
  return id!;
}

function qos(q: number): QoS {
  if (q !== 0 && q !== 1 && q !== 2) throw new MqttError("bad-argument", `QoS ${q}`);
  return q;
}

function byte(n: number, what: string): number {
  if (!(Number.isInteger(n) && n >= 0 && n <= 255)) throw new MqttError("bad-argument", `${what} ${n}`);
  return n;
}
