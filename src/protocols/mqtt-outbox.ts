// The MQTT outbox in blob storage: unacknowledged QoS 1/2 publishes written
// as bytes after each change, so that they survive a reboot, and read back
// by the first connection to the same broker after it. A damaged blob is
// dropped (and said so), never trusted.
//
// Layout (big-endian): "MQO1", u16 count, then per publish: u8 flags (QoS in
// bits 0-1, retain 4, PUBREC received 8), u16 packet id, u8 owner length +
// owner (streamtype name, UTF-8), u16 topic length + topic, u32 payload
// length + payload.

import type { BlobStore } from "../host.js";
import { crc32 } from "../util/crc32.js";
import { utf8Encode, utf8Decode } from "../util/utf8.js";
import type { QoS } from "../wire/mqtt/index.js";

/** What is kept of a publish. */
export interface StoredPublish {
  readonly owner: string;
  readonly topic: Uint8Array;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly packetId: number;
  readonly released: boolean;
}

/** "MQO1". Frozen: on the device, module-level objects are preloaded into flash. */
const MAGIC: readonly number[] = Object.freeze([0x4d, 0x51, 0x4f, 0x31]);

/** The blob holding the outbox of the connections with this broker key: "mqo." and 8 hex digits (blob names are at most 15 characters). */
export function outboxBlobName(brokerKey: string): string {
  return `mqo.${(crc32(utf8Encode(brokerKey)) >>> 0).toString(16).padStart(8, "0")}`;
}

/**
 * Writes the publishes, oldest first, as many as fit in maxBytes (a device's
 * blob holds about 4000 bytes); returns how many were left out. No publish: the blob is deleted.
 */
export function saveOutbox(blobs: BlobStore, name: string, publishes: Iterable<StoredPublish>, maxBytes: number): number {
  const parts: Uint8Array[] = [];
  let size = 6;
  let count = 0;
  let left = 0;
  for (const p of publishes) {
    const owner = utf8Encode(p.owner).subarray(0, 255);
    const n = 1 + 2 + 1 + owner.length + 2 + p.topic.length + 4 + p.payload.length;
    if (left || size + n > maxBytes) {
      left++;
      continue;
    }
    const out = new Uint8Array(n);
    const v = new DataView(out.buffer);
    let at = 0;
    out[at++] = p.qos | (p.retain ? 4 : 0) | (p.released ? 8 : 0);
    v.setUint16(at, p.packetId);
    at += 2;
    out[at++] = owner.length;
    out.set(owner, at);
    at += owner.length;
    v.setUint16(at, p.topic.length);
    at += 2;
    out.set(p.topic, at);
    at += p.topic.length;
    v.setUint32(at, p.payload.length);
    at += 4;
    out.set(p.payload, at);
    parts.push(out);
    size += n;
    count++;
  }
  if (!count) {
    blobs.delete(name);
    return left;
  }
  const blob = new Uint8Array(size);
  blob.set(MAGIC, 0);
  blob[4] = count >> 8;
  blob[5] = count & 255;
  let at = 6;
  for (const part of parts) {
    blob.set(part, at);
    at += part.length;
  }
  blobs.set(name, blob);
  return left;
}

/** Reads the publishes back; a damaged blob gives an error message instead. */
export function loadOutbox(bytes: Uint8Array): StoredPublish[] | string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 6 || MAGIC.some((b, i) => bytes[i] !== b)) return "not an MQTT outbox";
  const count = v.getUint16(4);
  const out: StoredPublish[] = [];
  let at = 6;
  const need = (n: number) => at + n <= bytes.length;
  for (let i = 0; i < count; i++) {
    if (!need(4)) return "cut short";
    const flags = bytes[at]!;
    const packetId = v.getUint16(at + 1);
    const ownerLength = bytes[at + 3]!;
    at += 4;
    if ((flags & 3) === 0 || (flags & 3) === 3 || packetId === 0) return "a bad publish";
    if (!need(ownerLength + 2)) return "cut short";
    const owner = utf8Decode(bytes, at, at + ownerLength);
    at += ownerLength;
    const topicLength = v.getUint16(at);
    at += 2;
    if (owner === undefined || !need(topicLength + 4)) return "cut short";
    const topic = bytes.slice(at, at + topicLength);
    at += topicLength;
    const payloadLength = v.getUint32(at);
    at += 4;
    if (!need(payloadLength)) return "cut short";
    const payload = bytes.slice(at, at + payloadLength);
    at += payloadLength;
    out.push({ owner, topic, payload, qos: (flags & 3) as QoS, retain: (flags & 4) !== 0, packetId, released: (flags & 8) !== 0 });
  }
  if (at !== bytes.length) return "bytes after its last publish";
  return out;
}
