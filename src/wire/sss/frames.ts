// lws' serialized Secure Streams: the frame types both ends of an SSPC link
// exchange, their limits, and the decoded messages. The bytes are described
// in docs/serialization.md; encode.ts writes them, decoder.ts reads them.

/** The protocol version carried in STREAMTYPE; lws' proxy hangs up on any other. */
export const SSS_VERSION = 1;

/** Every frame: type (1 byte), length of the rest (2 bytes, big-endian), body. */
export const FRAME_HEADER = 3;
/** The length field's limit: no body is longer. */
export const MAX_BODY = 0xffff;
/** flags:4, a µs count:4, a µs timestamp:8, before a payload's bytes. */
export const PAYLOAD_PREFIX = 16;
/** The most payload one frame carries. */
export const MAX_FRAME_PAYLOAD = MAX_BODY - PAYLOAD_PREFIX;
/** lws' own limit on a streamtype name (its 32-byte buffer with the NUL); we take a little more. */
export const MAX_STREAMTYPE_NAME = 64;
/** A metadata name's length is one byte. */
export const MAX_METADATA_NAME = 255;
/** What lws clients announce as initial tx credit when the app sets none. */
export const LWS_DEFAULT_TXCR = 500000000;

/** Client → proxy frame types (lws' LWSSS_SER_TXPRE_*). */
export const ToProxy = {
  STREAMTYPE: 0xaa,
  ONWARD_CONNECT: 0xab,
  DESTROYING: 0xac,
  TX_PAYLOAD: 0xad,
  METADATA: 0xae,
  TXCR_UPDATE: 0xaf,
  TIMEOUT_UPDATE: 0xb0,
  PAYLOAD_LENGTH_HINT: 0xb1,
  /** Reserved by lws, never parsed there: refused here too. */
  TLSNEG_ENCLAVE_SIGNED: 0xb2,
  LINK_VALIDITY_PROBE: 0xb3,
} as const;

/** Proxy → client frame types (lws' LWSSS_SER_RXPRE_*). */
export const ToClient = {
  RX_PAYLOAD: 0x55,
  CREATE_RESULT: 0x56,
  CONNSTATE: 0x57,
  TXCR_UPDATE: 0x58,
  METADATA: 0x59,
  /** Reserved by lws: refused. */
  TLSNEG_ENCLAVE_SIGN: 0x5a,
  PERF: 0x5b,
} as const;

/** Payload flags as they travel (the same bits as RxFlag). */
export const RIDESHARE_FLAG = 32;

/** TIMEOUT_UPDATE values with a meaning of their own. */
export const TIMEOUT_POLICY = 0;
export const TIMEOUT_CANCEL = 0xffffffff;

/** What the client sends. Timestamps are µs (a u64 read into a number; exact below 2^53). */
export type ProxyBound =
  | { readonly type: "streamtype"; readonly version: number; readonly pid: number; readonly txCredit: number; readonly streamtype: string }
  | { readonly type: "onward-connect" }
  | { readonly type: "destroying" }
  | { readonly type: "tx"; readonly flags: number; readonly heldUs: number; readonly timeUs: number; readonly rideshare?: string; readonly payload: Uint8Array }
  | { readonly type: "metadata"; readonly name: string; readonly value: Uint8Array }
  | { readonly type: "txcr"; readonly delta: number }
  | { readonly type: "timeout"; readonly ms: number }
  | { readonly type: "length-hint"; readonly length: number };

/** What the proxy sends. */
export type ClientBound =
  | { readonly type: "rx"; readonly flags: number; readonly latencyUs: number; readonly timeUs: number; readonly rideshare?: string; readonly payload: Uint8Array }
  | { readonly type: "create-result"; readonly result: number; readonly clientBuflen: number; readonly rideshares: readonly string[] }
  | { readonly type: "state"; readonly state: number; readonly ack: number }
  | { readonly type: "txcr"; readonly delta: number }
  | { readonly type: "metadata"; readonly name: string; readonly value: Uint8Array }
  | { readonly type: "perf"; readonly json: Uint8Array };

export type SssErrorCode =
  | "unknown-frame" // a type byte this direction does not define (or one lws reserves)
  | "bad-length" // a body shorter or longer than its type allows
  | "bad-version" // STREAMTYPE with a version other than SSS_VERSION
  | "bad-name" // an empty, over-long or non-UTF-8 streamtype, metadata or rideshare name
  | "too-large" // a frame over the decoder's limit, or a value an encoder cannot fit
  | "bad-value"; // an out-of-range number given to an encoder

export class SssError extends Error {
  readonly code: SssErrorCode;
  constructor(code: SssErrorCode, message: string) {
    super(`sss: ${message}`);
    this.name = "SssError";
    this.code = code;
  }
}

for (const table of [ToProxy, ToClient]) Object.freeze(table);
