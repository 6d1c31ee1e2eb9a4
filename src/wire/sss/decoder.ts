// Reads serialized Secure Streams frames from a byte stream split anywhere:
// a frame may come in pieces across pushes, several frames in one push. A
// body that arrives whole in one push is handed on as a view of the input;
// a split body is gathered, into one buffer of exactly its length, at most
// `maxBody` bytes; except a payload frame longer than `maxGather`, whose
// payload is handed on in the pieces the pushes hold (views, no copy).
// Anything the peer gets wrong is an SssError, after which the decoder
// refuses further input: the link has to go.

import { utf8Decode } from "../../util/utf8.js";
import {
  FRAME_HEADER, MAX_BODY, MAX_STREAMTYPE_NAME, PAYLOAD_PREFIX, RIDESHARE_FLAG, SSS_VERSION, SssError, ToClient, ToProxy,
  type ClientBound, type ProxyBound,
} from "./frames.js";

export interface DecoderOptions {
  /** Longest frame body accepted (default and most: 65535, what the length field holds). */
  readonly maxBody?: number;
  /**
   * Longest payload frame body (TX_PAYLOAD to the proxy, RX_PAYLOAD to the
   * client) gathered whole when it arrives split across pushes (default: any).
   * A longer one comes as several messages, its payload in the pieces the
   * pushes hold, each with the frame's fields, as if it had been sent as
   * several frames: the start flags (SOM, POLL, RELATED_START) on the first,
   * the end flags (EOM, RELATED_END) on the last. Nothing of it is copied but
   * its 16-byte prefix. A frame that names a rideshare is always gathered.
   */
  readonly maxGather?: number;
}

/** Payload flags that belong to a message's first piece, and to its last. */
const START_FLAGS = 1 | 4 | 8;
const END_FLAGS = 2 | 16;

/** A payload message from a frame's prefix fields and a piece of its payload. */
type PieceOf<M> = (flags: number, micros: number, timeUs: number, payload: Uint8Array) => M;

class FrameDecoder<M> {
  readonly #parse: (type: number, body: Uint8Array) => M;
  readonly #piece: PieceOf<M>;
  readonly #payloadType: number;
  readonly #maxBody: number;
  readonly #maxGather: number;
  readonly #head = new Uint8Array(FRAME_HEADER);
  #headHave = 0;
  #body: Uint8Array | undefined;
  #bodyHave = 0;
  /** A payload frame handed on in pieces: its prefix, how much of it came, and the payload bytes to come (-1: none). */
  readonly #prefix = new Uint8Array(PAYLOAD_PREFIX);
  #prefixHave = 0;
  #left = -1;
  #firstPiece = false;
  #failed: SssError | undefined;

  constructor(parse: (type: number, body: Uint8Array) => M, payloadType: number, piece: PieceOf<M>, options: DecoderOptions) {
    this.#parse = parse;
    this.#piece = piece;
    this.#payloadType = payloadType;
    this.#maxBody = Math.min(options.maxBody ?? MAX_BODY, MAX_BODY);
    this.#maxGather = Math.max(options.maxGather ?? MAX_BODY, PAYLOAD_PREFIX);
  }

  /** A frame has started and not finished: the link ended mid-frame if it closes now. */
  get midFrame(): boolean {
    return this.#headHave > 0;
  }

  /**
   * Decodes what `bytes` completes, calling onMessage for each message in
   * order; onMessage returns false to stop (the rest is dropped: the link
   * is going away). Throws SssError on the first malformed frame.
   */
  push(bytes: Uint8Array, onMessage: (message: M) => boolean | void): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(bytes, onMessage);
    } catch (e) {
      if (e instanceof SssError) this.#failed = e;
      throw e;
    }
  }

  #push(bytes: Uint8Array, onMessage: (message: M) => boolean | void): void {
    let at = 0;
    const end = bytes.length;
    while (at < end) {
      if (this.#headHave < FRAME_HEADER) {
        // the common case, a whole header in this push, reads without copying
        if (this.#headHave === 0 && end - at >= FRAME_HEADER) {
          this.#head[0] = bytes[at]!; this.#head[1] = bytes[at + 1]!; this.#head[2] = bytes[at + 2]!;
          this.#headHave = FRAME_HEADER;
          at += FRAME_HEADER;
        } else {
          this.#head[this.#headHave++] = bytes[at++]!;
          if (this.#headHave < FRAME_HEADER) continue;
        }
        const length = (this.#head[1]! << 8) | this.#head[2]!;
        if (length > this.#maxBody) throw new SssError("too-large", `a frame of type 0x${hex(this.#head[0]!)} says ${length} bytes, over the limit of ${this.#maxBody}`);
        this.#bodyHave = 0;
        this.#body = undefined;
        if (length <= end - at) {
          // whole in this push: a view, no copy
          const body = bytes.subarray(at, at + length);
          at += length;
          this.#headHave = 0;
          if (this.#deliver(body, onMessage) === false) return;
          continue;
        }
        if (this.#head[0] === this.#payloadType && length > this.#maxGather) {
          this.#prefixHave = 0;
          this.#left = length - PAYLOAD_PREFIX;
          continue;
        }
        this.#body = new Uint8Array(length);
      }
      if (this.#left >= 0) {
        if (this.#prefixHave < PAYLOAD_PREFIX) {
          at = this.#takePrefix(bytes, at, end);
          continue;
        }
        const take = Math.min(this.#left, end - at);
        const piece = bytes.subarray(at, at + take);
        at += take;
        if (this.#handPiece(piece, onMessage) === false) return;
        continue;
      }
      const body = this.#body!;
      const take = Math.min(body.length - this.#bodyHave, end - at);
      body.set(bytes.subarray(at, at + take), this.#bodyHave);
      this.#bodyHave += take;
      at += take;
      if (this.#bodyHave === body.length) {
        this.#headHave = 0;
        this.#body = undefined;
        if (this.#deliver(body, onMessage) === false) return;
      }
    }
  }

  /** Gathers a pieced frame's prefix; returns where it stopped reading. */
  #takePrefix(bytes: Uint8Array, at: number, end: number): number {
    const prefix = this.#prefix;
    const take = Math.min(PAYLOAD_PREFIX - this.#prefixHave, end - at);
    prefix.set(bytes.subarray(at, at + take), this.#prefixHave);
    this.#prefixHave += take;
    if (this.#prefixHave === PAYLOAD_PREFIX) {
      this.#firstPiece = true;
      if (u32(prefix, 0) & RIDESHARE_FLAG) {
        // a name follows the prefix: gathered as any other frame
        const body = (this.#body = new Uint8Array(PAYLOAD_PREFIX + this.#left));
        body.set(prefix);
        this.#bodyHave = PAYLOAD_PREFIX;
        this.#left = -1;
      }
    }
    return at + take;
  }

  #handPiece(piece: Uint8Array, onMessage: (message: M) => boolean | void): boolean | void {
    const prefix = this.#prefix;
    this.#left -= piece.length;
    const last = this.#left === 0;
    const flags = u32(prefix, 0) & ~((this.#firstPiece ? 0 : START_FLAGS) | (last ? 0 : END_FLAGS));
    this.#firstPiece = false;
    if (last) {
      this.#left = -1;
      this.#headHave = 0;
    }
    return onMessage(this.#piece(flags, u32(prefix, 4), u64(prefix, 8), piece));
  }

  #deliver(body: Uint8Array, onMessage: (message: M) => boolean | void): boolean | void {
    return onMessage(this.#parse(this.#head[0]!, body));
  }
}

/** Decodes what a client sends (the proxy's side of a link). */
export class ProxyBoundDecoder extends FrameDecoder<ProxyBound> {
  constructor(options: DecoderOptions = {}) {
    super(parseProxyBound, ToProxy.TX_PAYLOAD, (flags, heldUs, timeUs, payload) => ({ type: "tx", flags, heldUs, timeUs, payload }), options);
  }
}

/** Decodes what a proxy sends (the client's side of a link). */
export class ClientBoundDecoder extends FrameDecoder<ClientBound> {
  constructor(options: DecoderOptions = {}) {
    super(parseClientBound, ToClient.RX_PAYLOAD, (flags, latencyUs, timeUs, payload) => ({ type: "rx", flags, latencyUs, timeUs, payload }), options);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

// big-endian integers read byte by byte (no DataView: one object fewer per frame)
function u32(b: Uint8Array, at: number): number {
  return b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

function i32(b: Uint8Array, at: number): number {
  return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
}

function u64(b: Uint8Array, at: number): number {
  return u32(b, at) * 0x100000000 + u32(b, at + 4);
}

function exactly(type: number, body: Uint8Array, length: number): void {
  if (body.length !== length) throw new SssError("bad-length", `frame 0x${hex(type)} has ${body.length} bytes, not ${length}`);
}

function atLeast(type: number, body: Uint8Array, length: number): void {
  if (body.length < length) throw new SssError("bad-length", `frame 0x${hex(type)} has ${body.length} bytes, fewer than ${length}`);
}

function text(bytes: Uint8Array, max: number, what: string): string {
  const s = bytes.length >= 1 && bytes.length <= max ? utf8Decode(bytes, 0, bytes.length) : undefined;
  if (s === undefined) throw new SssError("bad-name", `${what} must be 1 to ${max} bytes of UTF-8`);
  return s;
}


/** flags, µs, timestamp, [rideshare], payload: TX_PAYLOAD and RX_PAYLOAD alike. */
function payload(type: number, body: Uint8Array) {
  atLeast(type, body, PAYLOAD_PREFIX);
  const flags = u32(body, 0);
  let at = PAYLOAD_PREFIX;
  let rideshare: string | undefined;
  if (flags & RIDESHARE_FLAG) {
    atLeast(type, body, at + 1);
    const n = body[at]!;
    atLeast(type, body, at + 1 + n);
    rideshare = text(body.subarray(at + 1, at + 1 + n), 0xff, "a rideshare name");
    at += 1 + n;
  }
  return { flags, micros: u32(body, 4), timeUs: u64(body, 8), rideshare, payload: body.subarray(at) };
}

function metadata(type: number, body: Uint8Array): { name: string; value: Uint8Array } {
  atLeast(type, body, 1);
  const n = body[0]!;
  atLeast(type, body, 1 + n);
  return { name: text(body.subarray(1, 1 + n), 0xff, "a metadata name"), value: body.subarray(1 + n) };
}

export function parseProxyBound(type: number, body: Uint8Array): ProxyBound {
  switch (type) {
    case ToProxy.STREAMTYPE: {
      // lws' own parser wants at least one name byte after the 9 fixed ones
      atLeast(type, body, 10);
      if (body[0] !== SSS_VERSION) throw new SssError("bad-version", `protocol version ${body[0]}, this end speaks ${SSS_VERSION}`);
      return { type: "streamtype", version: body[0]!, pid: u32(body, 1), txCredit: u32(body, 5), streamtype: text(body.subarray(9), MAX_STREAMTYPE_NAME, "the streamtype name") };
    }
    case ToProxy.ONWARD_CONNECT:
      exactly(type, body, 0);
      return { type: "onward-connect" };
    case ToProxy.DESTROYING:
      exactly(type, body, 0);
      return { type: "destroying" };
    case ToProxy.TX_PAYLOAD: {
      const p = payload(type, body);
      return { type: "tx", flags: p.flags, heldUs: p.micros, timeUs: p.timeUs, ...(p.rideshare === undefined ? {} : { rideshare: p.rideshare }), payload: p.payload };
    }
    case ToProxy.METADATA:
      return { type: "metadata", ...metadata(type, body) };
    case ToProxy.TXCR_UPDATE:
      exactly(type, body, 4);
      return { type: "txcr", delta: i32(body, 0) };
    case ToProxy.TIMEOUT_UPDATE:
      exactly(type, body, 4);
      return { type: "timeout", ms: u32(body, 0) };
    case ToProxy.PAYLOAD_LENGTH_HINT:
      exactly(type, body, 4);
      return { type: "length-hint", length: u32(body, 0) };
    default:
      throw new SssError("unknown-frame", `no client frame has type 0x${hex(type)}`);
  }
}

export function parseClientBound(type: number, body: Uint8Array): ClientBound {
  switch (type) {
    case ToClient.RX_PAYLOAD: {
      const p = payload(type, body);
      return { type: "rx", flags: p.flags, latencyUs: p.micros, timeUs: p.timeUs, ...(p.rideshare === undefined ? {} : { rideshare: p.rideshare }), payload: p.payload };
    }
    case ToClient.CREATE_RESULT: {
      atLeast(type, body, 5);
      const list = body.length > 5 ? utf8Decode(body, 5, body.length) : "";
      if (list === undefined) throw new SssError("bad-name", "the rideshare list is not UTF-8");
      // lws writes ",a,b": every name after a comma
      return { type: "create-result", result: body[0]!, clientBuflen: u32(body, 1), rideshares: list.split(",").filter((s) => s.length > 0) };
    }
    case ToClient.CONNSTATE: {
      if (body.length === 5) return { type: "state", state: body[0]!, ack: u32(body, 1) };
      if (body.length === 8) return { type: "state", state: u32(body, 0), ack: u32(body, 4) };
      throw new SssError("bad-length", `frame 0x${hex(type)} has ${body.length} bytes, not 5 or 8`);
    }
    case ToClient.TXCR_UPDATE:
      exactly(type, body, 4);
      return { type: "txcr", delta: i32(body, 0) };
    case ToClient.METADATA:
      return { type: "metadata", ...metadata(type, body) };
    case ToClient.PERF:
      return { type: "perf", json: body };
    default:
      throw new SssError("unknown-frame", `no proxy frame has type 0x${hex(type)}`);
  }
}
