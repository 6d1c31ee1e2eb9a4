// Streaming decoder for the frames a WebSocket server sends (RFC 6455,
// section 5). Byte-driven and resumable: frames may arrive in any split,
// down to one byte per push. Message data is handed on as views of the
// input, never copied or gathered, so a message of any size costs no
// memory here; only a frame header (at most 10 bytes) and a control frame's
// payload (at most 125) are assembled when they span two pushes.
//
// Every way a server can be wrong is a WsError carrying the close code to
// answer with: 1002 (protocol), 1007 (text that is not UTF-8), 1009 (a
// message over the limit, found from its frame headers, before its data).

import { Opcode, MAX_CONTROL_PAYLOAD, WsError, CloseCode, isValidCloseCode } from "./frame.js";
import { Utf8Check } from "./utf8-check.js";
import { utf8Decode } from "../../util/utf8.js";

export interface WsDecoderEvents {
  /**
   * Data of a text or binary message: a view of the pushed input, valid
   * during the call only. `first`: the message's first piece; `last`: its
   * final one (a message may be a single empty piece with both). A text
   * message's pieces are checked UTF-8 before they are handed on.
   */
  onData(bytes: Uint8Array, binary: boolean, first: boolean, last: boolean): boolean | void;
  onPing(payload: Uint8Array): boolean | void;
  onPong(payload: Uint8Array): boolean | void;
  /** A close frame: its code (undefined when it has none) and reason. The decoder takes nothing after it. */
  onClose(code: number | undefined, reason: string): boolean | void;
}

export interface WsDecoderOptions extends WsDecoderEvents {
  /** Largest message accepted, all its frames together (bytes). */
  readonly maxMessage: number;
}

// decoder states
const HEAD = 0; // the 2 bytes every frame starts with, then its extended length
const DATA = 1; // payload of a text, binary or continuation frame
const CONTROL = 2; // payload of a control frame, assembled
const CLOSED = 3; // a close frame was received: nothing may follow
const FAILED = 4;

const EMPTY = new Uint8Array(0);

/**
 * push() throws WsError for a fault of the server; an exception out of it,
 * a callback's included, leaves the decoder failed (later pushes rethrow).
 * A callback returning false stops the decoder where it is: the rest of
 * that input is ignored, and the decoder must not be used again.
 */
export class WsDecoder {
  readonly #on: WsDecoderOptions;
  #state = HEAD;
  #error: unknown;
  /** Frame header bytes assembled so far, and how many the header has. */
  readonly #head = new Uint8Array(10);
  #headHave = 0;
  #headNeed = 2;
  #fin = false;
  #opcode = 0;
  /** Payload bytes of the current frame still to come. */
  #left = 0;
  /** A control frame's payload, assembled. */
  readonly #control = new Uint8Array(MAX_CONTROL_PAYLOAD);
  #controlHave = 0;
  /** A text or binary message is open (its final frame has not come). */
  #inMessage = false;
  #binary = false;
  /** Its first piece has been handed on. */
  #started = false;
  /** Bytes of the open message so far. */
  #size = 0;
  readonly #utf8 = new Utf8Check();

  constructor(options: WsDecoderOptions) {
    this.#on = options;
  }

  /** A message is open: a server that goes now leaves it unfinished. */
  get inMessage(): boolean {
    return this.#inMessage;
  }

  push(input: Uint8Array): void {
    if (this.#state === FAILED) throw this.#error;
    try {
      this.#push(input);
    } catch (e) {
      this.#state = FAILED;
      this.#error = e;
      throw e;
    }
  }

  #push(input: Uint8Array): void {
    const end = input.length;
    let i = 0;
    while (i < end) {
      switch (this.#state) {
        case HEAD: {
          const take = Math.min(this.#headNeed - this.#headHave, end - i);
          this.#head.set(input.subarray(i, i + take), this.#headHave);
          this.#headHave += take;
          i += take;
          if (this.#headHave < this.#headNeed) return;
          if (this.#headNeed === 2) {
            const extended = this.#head[1]! & 0x7f;
            if (extended >= 126) {
              this.#headNeed = extended === 126 ? 4 : 10;
              continue;
            }
          }
          if (!this.#frame()) return;
          break;
        }
        case DATA: {
          const take = Math.min(this.#left, end - i);
          this.#left -= take;
          const piece = input.subarray(i, i + take);
          i += take;
          if (!this.#data(piece)) return;
          if (this.#left === 0) this.#nextFrame();
          break;
        }
        case CONTROL: {
          const take = Math.min(this.#left, end - i);
          this.#control.set(input.subarray(i, i + take), this.#controlHave);
          this.#controlHave += take;
          this.#left -= take;
          i += take;
          if (this.#left === 0 && !this.#controlFrame()) return;
          break;
        }
        case CLOSED:
          throw new WsError("protocol", `${end - i} bytes after the close frame`, CloseCode.PROTOCOL_ERROR);
        default:
          throw this.#error;
      }
    }
  }

  /** A frame header is complete: checks it. False: a callback asked to stop. */
  #frame(): boolean {
    const h = this.#head;
    const b0 = h[0]!;
    const b1 = h[1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (b0 & 0x70) throw protocol(`reserved bits ${(b0 >> 4) & 7} set, and no extension was agreed`);
    if (b1 & 0x80) throw protocol("a masked frame from the server (RFC 6455, 5.1)");
    let length = b1 & 0x7f;
    if (length === 126) {
      length = (h[2]! << 8) | h[3]!;
    } else if (length === 127) {
      const high = ((h[2]! << 24) | (h[3]! << 16) | (h[4]! << 8) | h[5]!) >>> 0;
      if (high & 0x80000000) throw protocol("a 64-bit payload length with its top bit set");
      // past 2^53 the sum would lose precision: far over any limit anyway
      length = high >= 0x200000 ? Infinity : high * 0x100000000 + (((h[6]! << 24) | (h[7]! << 16) | (h[8]! << 8) | h[9]!) >>> 0);
    }
    this.#fin = fin;
    this.#opcode = opcode;
    this.#left = length;
    if (opcode >= 0x8) {
      if (opcode > Opcode.PONG) throw protocol(`reserved control opcode 0x${opcode.toString(16)}`);
      if (!fin) throw protocol("a fragmented control frame");
      if (length > MAX_CONTROL_PAYLOAD) throw protocol(`a control frame of ${length} bytes (at most ${MAX_CONTROL_PAYLOAD})`);
      this.#controlHave = 0;
      this.#state = CONTROL;
      return length > 0 || this.#controlFrame();
    }
    if (opcode > Opcode.BINARY) throw protocol(`reserved data opcode 0x${opcode.toString(16)}`);
    if (opcode === Opcode.CONTINUATION) {
      if (!this.#inMessage) throw protocol("a continuation frame with no message to continue");
    } else {
      if (this.#inMessage) throw protocol("a new message before the previous one's final frame");
      this.#inMessage = true;
      this.#binary = opcode === Opcode.BINARY;
      this.#started = false;
      this.#size = 0;
      this.#utf8.reset();
    }
    const limit = this.#on.maxMessage;
    if (length > limit - this.#size) {
      throw new WsError("too-big", `a message over the ${limit}-byte limit (${this.#size} bytes, then a frame of ${length})`, CloseCode.TOO_BIG);
    }
    this.#size += length;
    this.#state = DATA;
    // an empty frame has no data to wait for: it may end the message at once
    if (length === 0) {
      if (fin && !this.#data(EMPTY)) return false;
      this.#nextFrame();
    }
    return true;
  }

  /** Hands on a piece of message data. False: a callback asked to stop. */
  #data(piece: Uint8Array): boolean {
    const last = this.#fin && this.#left === 0;
    if (!this.#binary) {
      if (!this.#utf8.push(piece)) throw new WsError("invalid-utf8", "a text message that is not UTF-8", CloseCode.INVALID_DATA);
      if (last && !this.#utf8.complete) throw new WsError("invalid-utf8", "a text message that ends inside a UTF-8 character", CloseCode.INVALID_DATA);
    }
    if (!piece.length && !last) return true;
    const first = !this.#started;
    this.#started = true;
    if (last) this.#inMessage = false;
    return this.#on.onData(piece, this.#binary, first, last) !== false;
  }

  #nextFrame(): void {
    this.#state = HEAD;
    this.#headHave = 0;
    this.#headNeed = 2;
  }

  /** A control frame's payload is complete. False: a callback asked to stop. */
  #controlFrame(): boolean {
    const payload = this.#control.subarray(0, this.#controlHave);
    this.#nextFrame();
    switch (this.#opcode) {
      case Opcode.PING:
        return this.#on.onPing(payload) !== false;
      case Opcode.PONG:
        return this.#on.onPong(payload) !== false;
      default: {
        this.#state = CLOSED;
        if (payload.length === 0) return this.#on.onClose(undefined, "") !== false;
        if (payload.length === 1) throw protocol("a close frame with a 1-byte payload");
        const code = (payload[0]! << 8) | payload[1]!;
        if (!isValidCloseCode(code)) throw protocol(`close code ${code}, which may not be sent`);
        const reason = utf8Decode(payload, 2, payload.length);
        if (reason === undefined) throw new WsError("invalid-utf8", "a close reason that is not UTF-8", CloseCode.INVALID_DATA);
        return this.#on.onClose(code, reason) !== false;
      }
    }
  }
}

function protocol(message: string): WsError {
  return new WsError("protocol", message, CloseCode.PROTOCOL_ERROR);
}
