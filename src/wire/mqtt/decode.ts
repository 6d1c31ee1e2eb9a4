// Streaming MQTT 3.1.1 packet decoder. Bytes arrive in any split, down to
// one byte per push; a packet is gathered only up to its declared size,
// which must be within the limit before a byte of it is kept, so memory is
// bounded by maxPacketBytes whatever the peer sends. Every way a peer can
// get a packet wrong is an MqttError with a code and a reason; after one,
// the decoder takes nothing more (the connection must be closed).

import {
  Packet, MqttError, ConnackCode, SUBACK_FAILURE,
  type MqttPacket, type QoS, type Will,
} from "./packets.js";
import { topicNameFault, topicFilterFault } from "./topic.js";
import { utf8Decode } from "../../util/utf8.js";

export interface MqttDecoderOptions {
  /** Largest whole packet accepted (fixed header included), in bytes. */
  readonly maxPacketBytes: number;
  /** Called for each packet, as a method of this object (a binding can be its own options object). */
  onPacket(packet: MqttPacket): void;
}

const NAMES: readonly string[] = Object.freeze(["", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
  "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT"]);

/** MQTT's name of a packet type ("PUBACK"). */
export function packetName(type: number): string {
  return NAMES[type] || `type ${type}`;
}

export class MqttDecoder {
  readonly #max: number;
  readonly #sink: MqttDecoderOptions;
  /** The first byte of the packet being read, or -1 between packets. */
  #first = -1;
  #remaining = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  /** Remaining length read completely: #body is being filled. */
  #inBody = false;
  #body: Uint8Array | undefined;
  #filled = 0;
  #failed: MqttError | undefined;

  constructor(options: MqttDecoderOptions) {
    this.#max = options.maxPacketBytes;
    this.#sink = options;
  }

  /** Bytes of a packet read so far but not yet complete (0 between packets). */
  get partial(): number {
    return this.#first < 0 ? 0 : 1 + this.#lengthBytes + this.#filled;
  }

  /** Decodes what `bytes` completes; onPacket for each packet. Throws MqttError. */
  push(bytes: Uint8Array): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(bytes);
    } catch (e) {
      if (e instanceof MqttError) this.#failed = e;
      throw e;
    }
  }

  #push(bytes: Uint8Array): void {
    let i = 0;
    const n = bytes.length;
    while (i < n) {
      if (this.#first < 0) {
        const b = bytes[i++]!;
        const type = b >> 4;
        if (type === 0 || type === 15) throw new MqttError("malformed", `reserved packet type ${type}`);
        this.#first = b;
        this.#remaining = 0;
        this.#multiplier = 1;
        this.#lengthBytes = 0;
        this.#inBody = false;
        continue;
      }
      if (!this.#inBody) {
        const b = bytes[i++]!;
        this.#remaining += (b & 127) * this.#multiplier;
        this.#multiplier *= 128;
        this.#lengthBytes++;
        if (b & 128) {
          if (this.#lengthBytes === 4) throw new MqttError("malformed", "a remaining length of more than 4 bytes");
          continue;
        }
        const total = 1 + this.#lengthBytes + this.#remaining;
        if (total > this.#max) {
          throw new MqttError("too-large", `a ${packetName(this.#first >> 4)} of ${total} bytes is over the ${this.#max}-byte limit`);
        }
        this.#inBody = true;
        this.#filled = 0;
        // the whole body is in this push: hand out a view, no copy
        if (n - i >= this.#remaining) {
          const body = bytes.subarray(i, i + this.#remaining);
          i += this.#remaining;
          this.#complete(body);
        } else {
          this.#body = new Uint8Array(this.#remaining);
        }
        continue;
      }
      const body = this.#body!;
      const take = Math.min(n - i, body.length - this.#filled);
      body.set(bytes.subarray(i, i + take), this.#filled);
      this.#filled += take;
      i += take;
      if (this.#filled === body.length) {
        this.#body = undefined;
        this.#complete(body);
      }
    }
  }

  #complete(body: Uint8Array): void {
    const first = this.#first;
    this.#first = -1;
    this.#inBody = false;
    this.#filled = 0;
    this.#sink.onPacket(decodeBody(first, body));
  }
}

/** Decodes one packet's body given its first byte. Throws MqttError. */
export function decodeBody(first: number, body: Uint8Array): MqttPacket {
  const type = first >> 4;
  const flags = first & 15;
  const name = packetName(type);
  const r = new Reader(body, name);
  const wantFlags = (f: number) => {
    if (flags !== f) throw new MqttError("malformed", `${name} with fixed-header flags ${flags} (must be ${f})`);
  };
  const wantLength = (len: number) => {
    if (body.length !== len) throw new MqttError("malformed", `${name} with a remaining length of ${body.length} (must be ${len})`);
  };
  switch (type) {
    case Packet.CONNECT: {
      wantFlags(0);
      const protocol = r.string("protocol name");
      const level = r.u8();
      if (protocol !== "MQTT" || level !== 4) throw new MqttError("malformed", `CONNECT for protocol "${protocol}" level ${level}, not MQTT 3.1.1`);
      const f = r.u8();
      if (f & 1) throw new MqttError("malformed", "CONNECT with the reserved flag set");
      const willQos = (f >> 3) & 3;
      if (willQos === 3) throw new MqttError("malformed", "CONNECT with will QoS 3");
      if (!(f & 4) && (willQos || f & 32)) throw new MqttError("malformed", "CONNECT with will QoS or retain but no will");
      if (f & 64 && !(f & 128)) throw new MqttError("malformed", "CONNECT with a password but no user name");
      const keepAlive = r.u16();
      const clientId = r.string("client id");
      let will: Will | undefined;
      if (f & 4) {
        const topic = r.topicName("will topic");
        will = { topic, payload: r.binary("will message"), qos: willQos as QoS, retain: (f & 32) !== 0 };
      }
      const username = f & 128 ? r.string("user name") : undefined;
      const password = f & 64 ? r.binary("password") : undefined;
      r.end();
      return { type, clientId, cleanSession: (f & 2) !== 0, keepAlive, username, password, will };
    }
    case Packet.CONNACK: {
      wantFlags(0);
      wantLength(2);
      const ackFlags = r.u8();
      const returnCode = r.u8();
      if (ackFlags & 0xfe) throw new MqttError("malformed", `CONNACK with reserved acknowledge flags ${ackFlags}`);
      if (returnCode > ConnackCode.NOT_AUTHORIZED) throw new MqttError("malformed", `CONNACK with return code ${returnCode}`);
      if (returnCode !== 0 && ackFlags) throw new MqttError("malformed", "CONNACK refusing with session present set");
      return { type, sessionPresent: ackFlags === 1, returnCode };
    }
    case Packet.PUBLISH: {
      const qos = (flags >> 1) & 3;
      if (qos === 3) throw new MqttError("malformed", "PUBLISH with QoS 3");
      const dup = (flags & 8) !== 0;
      if (dup && qos === 0) throw new MqttError("malformed", "PUBLISH with DUP at QoS 0");
      const topic = r.topicName("topic");
      const packetId = qos > 0 ? r.packetId() : undefined;
      return { type, topic, payload: r.rest(), qos: qos as QoS, retain: (flags & 1) !== 0, dup, packetId };
    }
    case Packet.PUBACK: case Packet.PUBREC: case Packet.PUBCOMP: case Packet.UNSUBACK:
    case Packet.PUBREL: {
      wantFlags(type === Packet.PUBREL ? 2 : 0);
      wantLength(2);
      return { type, packetId: r.packetId() };
    }
    case Packet.SUBSCRIBE: {
      wantFlags(2);
      const packetId = r.packetId();
      const subscriptions: { filter: string; qos: QoS }[] = [];
      while (!r.done) {
        const filter = r.topicFilter();
        const q = r.u8();
        if (q > 2) throw new MqttError("malformed", `SUBSCRIBE with requested QoS byte ${q}`);
        subscriptions.push({ filter, qos: q as QoS });
      }
      if (!subscriptions.length) throw new MqttError("malformed", "SUBSCRIBE without a topic filter");
      return { type, packetId, subscriptions };
    }
    case Packet.SUBACK: {
      wantFlags(0);
      const packetId = r.packetId();
      const returnCodes: number[] = [];
      while (!r.done) {
        const c = r.u8();
        if (c > 2 && c !== SUBACK_FAILURE) throw new MqttError("malformed", `SUBACK with return code ${c}`);
        returnCodes.push(c);
      }
      if (!returnCodes.length) throw new MqttError("malformed", "SUBACK without a return code");
      return { type, packetId, returnCodes };
    }
    case Packet.UNSUBSCRIBE: {
      wantFlags(2);
      const packetId = r.packetId();
      const filters: string[] = [];
      while (!r.done) filters.push(r.topicFilter());
      if (!filters.length) throw new MqttError("malformed", "UNSUBSCRIBE without a topic filter");
      return { type, packetId, filters };
    }
    case Packet.PINGREQ: case Packet.PINGRESP: case Packet.DISCONNECT:
      wantFlags(0);
      wantLength(0);
      return { type };
    default:
      throw new MqttError("malformed", `reserved packet type ${type}`);
  }
}

/** Reads the fields of one packet body; every overrun is an MqttError. */
class Reader {
  readonly #b: Uint8Array;
  readonly #name: string;
  #at = 0;

  constructor(body: Uint8Array, name: string) {
    this.#b = body;
    this.#name = name;
  }

  get done(): boolean { return this.#at >= this.#b.length; }

  u8(): number {
    if (this.#at + 1 > this.#b.length) this.#short();
    return this.#b[this.#at++]!;
  }

  u16(): number {
    if (this.#at + 2 > this.#b.length) this.#short();
    const v = (this.#b[this.#at]! << 8) | this.#b[this.#at + 1]!;
    this.#at += 2;
    return v;
  }

  packetId(): number {
    const id = this.u16();
    if (id === 0) throw new MqttError("malformed", `${this.#name} with packet identifier 0`);
    return id;
  }

  binary(what: string): Uint8Array {
    const len = this.u16();
    if (this.#at + len > this.#b.length) throw new MqttError("malformed", `${this.#name}: the ${what} runs past the packet's end`);
    const out = this.#b.subarray(this.#at, this.#at + len);
    this.#at += len;
    return out;
  }

  string(what: string): string {
    const start = this.#at + 2;
    const bytes = this.binary(what);
    const s = utf8Decode(this.#b, start, start + bytes.length);
    if (s === undefined) throw new MqttError("bad-utf8", `${this.#name}: the ${what} is not well-formed UTF-8`);
    if (s.includes("\0")) throw new MqttError("bad-utf8", `${this.#name}: the ${what} holds U+0000`);
    return s;
  }

  topicName(what: string): string {
    const s = this.string(what);
    const why = topicNameFault(s);
    if (why) throw new MqttError("bad-topic", `${this.#name}: the ${what} ${why}`);
    return s;
  }

  topicFilter(): string {
    const s = this.string("topic filter");
    const why = topicFilterFault(s);
    if (why) throw new MqttError("bad-topic", `${this.#name}: the topic filter ${why}`);
    return s;
  }

  rest(): Uint8Array {
    const out = this.#b.subarray(this.#at);
    this.#at = this.#b.length;
    return out;
  }

  end(): void {
    if (this.#at !== this.#b.length) throw new MqttError("malformed", `${this.#name} with ${this.#b.length - this.#at} bytes after its last field`);
  }

  #short(): never {
    throw new MqttError("malformed", `${this.#name} ends in the middle of a field`);
  }
}
