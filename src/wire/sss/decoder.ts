// Reads serialized Secure Streams frames from a byte stream split anywhere:
// a frame may come in pieces across pushes, several frames in one push. A
// body that arrives whole in one push is handed on as a view of the input;
// only a split body is gathered, into one buffer of exactly its length, at
// most `maxBody` bytes. Anything the peer gets wrong is an SssError, after
// which the decoder refuses further input: the link has to go.

import { utf8Decode } from "../../util/utf8.js";
import {
  FRAME_HEADER, MAX_BODY, MAX_STREAMTYPE_NAME, PAYLOAD_PREFIX, RIDESHARE_FLAG, SSS_VERSION, SssError, ToClient, ToProxy,
  type ClientBound, type ProxyBound,
} from "./frames.js";

export interface DecoderOptions {
  /** Longest frame body accepted (default and most: 65535, what the length field holds). */
  readonly maxBody?: number;
}

class FrameDecoder<M> {
  readonly #parse: (type: number, body: Uint8Array) => M;
  readonly #maxBody: number;
  readonly #head = new Uint8Array(FRAME_HEADER);
  #headHave = 0;
  #body: Uint8Array | undefined;
  #bodyHave = 0;
  #failed: SssError | undefined;

  constructor(parse: (type: number, body: Uint8Array) => M, options: DecoderOptions) {
    this.#parse = parse;
    this.#maxBody = Math.min(options.maxBody ?? MAX_BODY, MAX_BODY);
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
        this.#body = new Uint8Array(length);
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

  #deliver(body: Uint8Array, onMessage: (message: M) => boolean | void): boolean | void {
    return onMessage(this.#parse(this.#head[0]!, body));
  }
}

/** Decodes what a client sends (the proxy's side of a link). */
export class ProxyBoundDecoder extends FrameDecoder<ProxyBound> {
  constructor(options: DecoderOptions = {}) {
    super(parseProxyBound, options);
  }
}

/** Decodes what a proxy sends (the client's side of a link). */
export class ClientBoundDecoder extends FrameDecoder<ClientBound> {
  constructor(options: DecoderOptions = {}) {
    super(parseClientBound, options);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

function view(body: Uint8Array): DataView {
  return new DataView(body.buffer, body.byteOffset, body.byteLength);
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

function u64(v: DataView, at: number): number {
  return v.getUint32(at) * 0x100000000 + v.getUint32(at + 4);
}

/** flags, µs, timestamp, [rideshare], payload: TX_PAYLOAD and RX_PAYLOAD alike. */
function payload(type: number, body: Uint8Array) {
  atLeast(type, body, PAYLOAD_PREFIX);
  const v = view(body);
  const flags = v.getUint32(0);
  let at = PAYLOAD_PREFIX;
  let rideshare: string | undefined;
  if (flags & RIDESHARE_FLAG) {
    atLeast(type, body, at + 1);
    const n = body[at]!;
    atLeast(type, body, at + 1 + n);
    rideshare = text(body.subarray(at + 1, at + 1 + n), 0xff, "a rideshare name");
    at += 1 + n;
  }
  return { flags, micros: v.getUint32(4), timeUs: u64(v, 8), rideshare, payload: body.subarray(at) };
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
      const v = view(body);
      return { type: "streamtype", version: body[0]!, pid: v.getUint32(1), txCredit: v.getUint32(5), streamtype: text(body.subarray(9), MAX_STREAMTYPE_NAME, "the streamtype name") };
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
      return { type: "txcr", delta: view(body).getInt32(0) };
    case ToProxy.TIMEOUT_UPDATE:
      exactly(type, body, 4);
      return { type: "timeout", ms: view(body).getUint32(0) };
    case ToProxy.PAYLOAD_LENGTH_HINT:
      exactly(type, body, 4);
      return { type: "length-hint", length: view(body).getUint32(0) };
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
      return { type: "create-result", result: body[0]!, clientBuflen: view(body).getUint32(1), rideshares: list.split(",").filter((s) => s.length > 0) };
    }
    case ToClient.CONNSTATE: {
      const v = view(body);
      if (body.length === 5) return { type: "state", state: body[0]!, ack: v.getUint32(1) };
      if (body.length === 8) return { type: "state", state: v.getUint32(0), ack: v.getUint32(4) };
      throw new SssError("bad-length", `frame 0x${hex(type)} has ${body.length} bytes, not 5 or 8`);
    }
    case ToClient.TXCR_UPDATE:
      exactly(type, body, 4);
      return { type: "txcr", delta: view(body).getInt32(0) };
    case ToClient.METADATA:
      return { type: "metadata", ...metadata(type, body) };
    case ToClient.PERF:
      return { type: "perf", json: body };
    default:
      throw new SssError("unknown-frame", `no proxy frame has type 0x${hex(type)}`);
  }
}
