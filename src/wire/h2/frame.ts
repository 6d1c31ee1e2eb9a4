// HTTP/2 frames (RFC 9113, 4 and 6): the 9-byte header, encoders for the
// frames a client sends, payload readers for the ones it receives, and a
// streaming decoder that cuts a byte stream into frames no larger than the
// size this side advertised.

import { H2Error, ErrorCode } from "./errors.js";

export const FrameType = Object.freeze({
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const);

export const Flag = Object.freeze({
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const);

export const Setting = Object.freeze({
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const);

/** The client connection preface (RFC 9113, 3.4). Shared: do not modify. */
export const PREFACE = /* @__PURE__ */ Uint8Array.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (c) => c.charCodeAt(0));

export const FRAME_HEADER_LENGTH = 9;
/** The smallest SETTINGS_MAX_FRAME_SIZE, and the default. */
export const MIN_MAX_FRAME_SIZE = 16384;
export const MAX_MAX_FRAME_SIZE = 16777215;
export const MAX_WINDOW = 0x7fffffff;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  /** A view: valid only during the callback that receives it. */
  readonly payload: Uint8Array;
}

/** A frame: header and payload in one array. */
export function encodeFrame(type: number, flags: number, streamId: number, payload?: Uint8Array, payloadLength?: number): Uint8Array {
  const length = payload ? payload.length : payloadLength ?? 0;
  const out = new Uint8Array(FRAME_HEADER_LENGTH + length);
  writeFrameHeader(out, 0, length, type, flags, streamId);
  if (payload) out.set(payload, FRAME_HEADER_LENGTH);
  return out;
}

export function writeFrameHeader(out: Uint8Array, at: number, length: number, type: number, flags: number, streamId: number): void {
  out[at] = length >>> 16;
  out[at + 1] = (length >>> 8) & 0xff;
  out[at + 2] = length & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  writeU32(out, at + 5, streamId & 0x7fffffff);
}

export function encodeSettings(settings: ReadonlyArray<readonly [id: number, value: number]>): Uint8Array {
  const out = encodeFrame(FrameType.SETTINGS, 0, 0, undefined, settings.length * 6);
  let at = FRAME_HEADER_LENGTH;
  for (const [id, value] of settings) {
    out[at] = id >> 8;
    out[at + 1] = id & 0xff;
    writeU32(out, at + 2, value);
    at += 6;
  }
  return out;
}

export const encodeSettingsAck = (): Uint8Array => encodeFrame(FrameType.SETTINGS, Flag.ACK, 0);

export function encodePing(data: Uint8Array, ack: boolean): Uint8Array {
  if (data.length !== 8) throw new H2Error(ErrorCode.INTERNAL_ERROR, "h2: PING data is 8 bytes");
  return encodeFrame(FrameType.PING, ack ? Flag.ACK : 0, 0, data);
}

export function encodeWindowUpdate(streamId: number, increment: number): Uint8Array {
  const out = encodeFrame(FrameType.WINDOW_UPDATE, 0, streamId, undefined, 4);
  writeU32(out, FRAME_HEADER_LENGTH, increment & 0x7fffffff);
  return out;
}

export function encodeRstStream(streamId: number, code: number): Uint8Array {
  const out = encodeFrame(FrameType.RST_STREAM, 0, streamId, undefined, 4);
  writeU32(out, FRAME_HEADER_LENGTH, code);
  return out;
}

export function encodeGoaway(lastStreamId: number, code: number, debug?: Uint8Array): Uint8Array {
  const out = encodeFrame(FrameType.GOAWAY, 0, 0, undefined, 8 + (debug?.length ?? 0));
  writeU32(out, FRAME_HEADER_LENGTH, lastStreamId & 0x7fffffff);
  writeU32(out, FRAME_HEADER_LENGTH + 4, code);
  if (debug) out.set(debug, FRAME_HEADER_LENGTH + 8);
  return out;
}

// ---- payload readers: each checks what RFC 9113 section 6 requires of the frame ----

/** The settings a SETTINGS frame carries, checked (6.5, 6.5.2). */
export function readSettings(frame: Frame): [id: number, value: number][] {
  const p = frame.payload;
  if (frame.streamId !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: SETTINGS on a stream");
  if (frame.flags & Flag.ACK) {
    if (p.length) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "h2: SETTINGS ACK with a payload");
    return [];
  }
  if (p.length % 6) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, `h2: SETTINGS payload of ${p.length} bytes is not a multiple of 6`);
  const out: [number, number][] = [];
  for (let at = 0; at < p.length; at += 6) {
    const id = (p[at]! << 8) | p[at + 1]!;
    const value = readU32(p, at + 2);
    if (id === Setting.ENABLE_PUSH && value > 1) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `h2: SETTINGS_ENABLE_PUSH ${value}`);
    if (id === Setting.INITIAL_WINDOW_SIZE && value > MAX_WINDOW) {
      throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, `h2: SETTINGS_INITIAL_WINDOW_SIZE ${value} is over 2^31-1`);
    }
    if (id === Setting.MAX_FRAME_SIZE && (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE)) {
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, `h2: SETTINGS_MAX_FRAME_SIZE ${value} is outside 2^14..2^24-1`);
    }
    out.push([id, value]);
  }
  return out;
}

export function readPing(frame: Frame): Uint8Array {
  if (frame.streamId !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: PING on a stream");
  if (frame.payload.length !== 8) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, `h2: PING of ${frame.payload.length} bytes`);
  return frame.payload;
}

export function readGoaway(frame: Frame): { lastStreamId: number; code: number; debug: Uint8Array } {
  const p = frame.payload;
  if (frame.streamId !== 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: GOAWAY on a stream");
  if (p.length < 8) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, `h2: GOAWAY of ${p.length} bytes`);
  return { lastStreamId: readU32(p, 0) & 0x7fffffff, code: readU32(p, 4), debug: p.subarray(8) };
}

/** The increment; 0 is an error of the stream (or, on stream 0, of the connection). */
export function readWindowUpdate(frame: Frame): number {
  if (frame.payload.length !== 4) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, `h2: WINDOW_UPDATE of ${frame.payload.length} bytes`);
  const increment = readU32(frame.payload, 0) & 0x7fffffff;
  if (increment === 0) {
    throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: WINDOW_UPDATE with an increment of 0", frame.streamId || undefined);
  }
  return increment;
}

export function readRstStream(frame: Frame): number {
  if (frame.streamId === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: RST_STREAM on stream 0");
  if (frame.payload.length !== 4) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, `h2: RST_STREAM of ${frame.payload.length} bytes`);
  return readU32(frame.payload, 0);
}

export function checkPriority(frame: Frame): void {
  if (frame.streamId === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: PRIORITY on stream 0");
  if (frame.payload.length !== 5) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, `h2: PRIORITY of ${frame.payload.length} bytes`, frame.streamId);
}

/** The data of a DATA frame, padding removed. */
export function readData(frame: Frame): Uint8Array {
  if (frame.streamId === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: DATA on stream 0");
  return unpad(frame, 0);
}

/** The header block fragment of a HEADERS frame, padding and priority removed. */
export function readHeadersFragment(frame: Frame): Uint8Array {
  if (frame.streamId === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: HEADERS on stream 0");
  return unpad(frame, frame.flags & Flag.PRIORITY ? 5 : 0);
}

function unpad(frame: Frame, skip: number): Uint8Array {
  const p = frame.payload;
  let start = 0;
  let end = p.length;
  if (frame.flags & Flag.PADDED) {
    if (p.length < 1) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, "h2: padded frame without a pad length");
    start = 1;
    end -= p[0]!;
  }
  start += skip;
  if (end < start) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: padding longer than the frame");
  return p.subarray(start, end);
}

export interface FrameDecoderOptions {
  /** The SETTINGS_MAX_FRAME_SIZE this side advertised: a longer frame is a FRAME_SIZE_ERROR. */
  readonly maxFrameSize: number;
  readonly onFrame: (frame: Frame) => void;
}

/**
 * Cuts a byte stream into frames. A frame that arrives whole is passed as a
 * view of the input; one split across pushes is gathered in a buffer of the
 * largest frame size, except an unpadded DATA frame: that one is passed on as
 * it arrives, in pieces (each a DATA frame of the same stream and length 1 or
 * more, END_STREAM on the last only), views of the input, never copied. Over
 * TLS, whose records hold 16384 bytes, nearly every full-size DATA frame is
 * split so. Flow control counts the pieces as it would the frame. onFrame
 * may stop() the decoder.
 */
export class FrameDecoder {
  readonly #maxFrameSize: number;
  readonly #onFrame: (frame: Frame) => void;
  readonly #header = new Uint8Array(FRAME_HEADER_LENGTH);
  #headerHave = 0;
  #buffer: Uint8Array | undefined;
  #have = 0;
  #length = -1; // payload length of the frame being gathered; -1 while reading a header
  /** The frame under way is an unpadded DATA frame, passed on in pieces rather than gathered. */
  #piecewise = false;
  #stopped = false;

  constructor(options: FrameDecoderOptions) {
    this.#maxFrameSize = options.maxFrameSize;
    this.#onFrame = options.onFrame;
  }

  stop(): void {
    this.#stopped = true;
    this.#buffer = undefined;
  }

  /** Takes bytes; throws H2Error (FRAME_SIZE_ERROR) on a frame over the limit. */
  push(bytes: Uint8Array): void {
    let at = 0;
    const end = bytes.length;
    while (at < end && !this.#stopped) {
      if (this.#length < 0) {
        // fast path: a whole frame in the input, nothing gathered
        if (this.#headerHave === 0 && end - at >= FRAME_HEADER_LENGTH) {
          const length = (bytes[at]! << 16) | (bytes[at + 1]! << 8) | bytes[at + 2]!;
          this.#checkLength(length);
          if (end - at - FRAME_HEADER_LENGTH >= length) {
            const p = at + FRAME_HEADER_LENGTH;
            this.#emit(bytes[at + 3]!, bytes[at + 4]!, readU32(bytes, at + 5) & 0x7fffffff, bytes.subarray(p, p + length));
            at = p + length;
            continue;
          }
        }
        const take = Math.min(FRAME_HEADER_LENGTH - this.#headerHave, end - at);
        this.#header.set(bytes.subarray(at, at + take), this.#headerHave);
        this.#headerHave += take;
        at += take;
        if (this.#headerHave < FRAME_HEADER_LENGTH) return;
        const h = this.#header;
        this.#length = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
        this.#checkLength(this.#length);
        this.#have = 0;
        if (this.#length === 0) {
          this.#finishGathered();
          continue;
        }
        this.#piecewise = h[3] === FrameType.DATA && !(h[4]! & Flag.PADDED);
        if (!this.#piecewise && !this.#buffer) this.#buffer = new Uint8Array(this.#maxFrameSize);
      }
      const take = Math.min(this.#length - this.#have, end - at);
      if (this.#piecewise) {
        this.#have += take;
        const last = this.#have === this.#length;
        const h = this.#header;
        if (last) {
          this.#headerHave = 0;
          this.#length = -1;
        }
        this.#emit(FrameType.DATA, last ? h[4]! : h[4]! & ~Flag.END_STREAM, readU32(h, 5) & 0x7fffffff, bytes.subarray(at, at + take));
        at += take;
        continue;
      }
      this.#buffer!.set(bytes.subarray(at, at + take), this.#have);
      this.#have += take;
      at += take;
      if (this.#have === this.#length) this.#finishGathered();
    }
  }

  /** A frame is under way (the stream ended mid-frame if it closes now). */
  get partial(): boolean {
    return this.#headerHave > 0;
  }

  #checkLength(length: number): void {
    if (length > this.#maxFrameSize) {
      this.stop();
      throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, `h2: frame of ${length} bytes is over the ${this.#maxFrameSize}-byte SETTINGS_MAX_FRAME_SIZE`);
    }
  }

  #finishGathered(): void {
    const h = this.#header;
    const length = this.#length;
    this.#headerHave = 0;
    this.#length = -1;
    const payload = length ? this.#buffer!.subarray(0, length) : EMPTY;
    this.#emit(h[3]!, h[4]!, readU32(h, 5) & 0x7fffffff, payload);
  }

  #emit(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    this.#onFrame({ type, flags, streamId, payload });
  }
}

const EMPTY = new Uint8Array(0);

export function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

export function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}
