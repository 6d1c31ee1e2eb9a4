// MQTT 3.1.1 packet shapes and constants, shared by the encoder and the
// streaming decoder (OASIS MQTT 3.1.1, section 2 and 3).

// Frozen: on the device, module-level objects are preloaded into flash.
export const Packet = Object.freeze({
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const);

/** CONNACK return codes (3.2.2.3). */
export const ConnackCode = Object.freeze({
  ACCEPTED: 0,
  BAD_PROTOCOL: 1,
  ID_REJECTED: 2,
  UNAVAILABLE: 3,
  BAD_CREDENTIALS: 4,
  NOT_AUTHORIZED: 5,
} as const);

/** SUBACK return code for a refused subscription (3.9.3). */
export const SUBACK_FAILURE = 0x80;

export type QoS = 0 | 1 | 2;

export interface Will {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
}

export interface ConnectPacket {
  readonly type: typeof Packet.CONNECT;
  readonly clientId: string;
  readonly cleanSession: boolean;
  /** Seconds; 0 turns keep-alive off. */
  readonly keepAlive: number;
  readonly username?: string;
  readonly password?: Uint8Array;
  readonly will?: Will;
}

export interface ConnackPacket {
  readonly type: typeof Packet.CONNACK;
  readonly sessionPresent: boolean;
  readonly returnCode: number;
}

export interface PublishPacket {
  readonly type: typeof Packet.PUBLISH;
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly dup: boolean;
  /** Present for QoS 1 and 2 only. */
  readonly packetId?: number;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: a packet identifier and nothing else. */
export interface AckPacket {
  readonly type: typeof Packet.PUBACK | typeof Packet.PUBREC | typeof Packet.PUBREL | typeof Packet.PUBCOMP | typeof Packet.UNSUBACK;
  readonly packetId: number;
}

export interface SubscribePacket {
  readonly type: typeof Packet.SUBSCRIBE;
  readonly packetId: number;
  readonly subscriptions: readonly { readonly filter: string; readonly qos: QoS }[];
}

export interface SubackPacket {
  readonly type: typeof Packet.SUBACK;
  readonly packetId: number;
  /** Granted QoS (0..2) or SUBACK_FAILURE, one per subscription. */
  readonly returnCodes: readonly number[];
}

export interface UnsubscribePacket {
  readonly type: typeof Packet.UNSUBSCRIBE;
  readonly packetId: number;
  readonly filters: readonly string[];
}

export interface EmptyPacket {
  readonly type: typeof Packet.PINGREQ | typeof Packet.PINGRESP | typeof Packet.DISCONNECT;
}

export type MqttPacket =
  | ConnectPacket | ConnackPacket | PublishPacket | AckPacket
  | SubscribePacket | SubackPacket | UnsubscribePacket | EmptyPacket;

export type MqttErrorCode =
  | "too-large" // a packet over the size limit (either way)
  | "malformed" // bytes that are not an MQTT 3.1.1 packet
  | "bad-topic" // a topic name or filter the rules forbid
  | "bad-utf8" // a string that is not well-formed UTF-8 (or holds U+0000)
  | "bad-argument"; // a packet to encode with a field out of range

export class MqttError extends Error {
  readonly code: MqttErrorCode;
  constructor(code: MqttErrorCode, message: string) {
    super(`mqtt: ${message}`);
    this.name = "MqttError";
    this.code = code;
  }
}

/** The largest remaining length the 4-byte varint can say (2.2.3). */
export const MAX_REMAINING_LENGTH = 268_435_455;
/** Longest UTF-8 string field (a 16-bit length prefix). */
export const MAX_STRING_BYTES = 65535;
