// The host contract for code running inside XS under test (xsnap): every
// platform service is a request to the Node parent (XSBridge, bridge.ts),
// which serves it with a real NodeHost, so sockets, TLS verification and
// error classification are the Node host's. PORTABLE: bundled into XS, so
// no Node imports. Message format: bridge-protocol.ts.
//
// Requests go out through xsnap's native issueCommand(), which blocks XS
// until the parent replies: connect, write, close, timers, blobs and log are
// synchronous, as the contract wants. Events come back one per crank through
// globalThis.handleCommand (install()), and are dispatched here to the
// stream's handlers or the timer's callback. An event for a stream or timer
// this side no longer knows is dropped (the parent drops them too).
//
// Clock and randomness:
// - now() is XS's performance.now() (gettimeofday in xsnap-worker.c: µs
//   precision, no round trip), clamped so it never goes back: gettimeofday is
//   wall time and can step. Only differences are used (perf timings); timers
//   run in the parent and do not depend on it.
// - random() asks the parent (NodeHost: crypto). xsnap's Math.random is libc
//   random() with a fixed seed: every worker would draw the same jitter.

import type { BlobStore, ByteStream, ConnectOptions, Host, HostError, StreamHandlers, TimerId } from "../../src/host.js";
import { utf8Encode } from "../../src/util/utf8.js";
import {
  Req, Ev, Status, ID_HEADER, withId, withOp, readId, text, parseJson, encodeConnect,
} from "./bridge-protocol.js";

/** xsnap's native channel to the parent. */
export type IssueCommand = (request: ArrayBuffer) => ArrayBuffer;

declare const globalThis: {
  issueCommand?: IssueCommand;
  handleCommand?: (message: ArrayBuffer) => void;
  performance?: { now(): number };
};

export interface XSBridgeHostOptions {
  /** The channel to the parent; default: xsnap's global issueCommand. */
  readonly issueCommand?: IssueCommand;
}

/** A bridged host failure (the parent threw); `name` keeps the parent's error name. */
export class BridgeError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export class XSBridgeHost implements Host {
  readonly blobs: BlobStore;
  /** Receives XSBridge.post() messages (the app's or a test's channel in). */
  onMessage: ((bytes: Uint8Array) => void) | undefined;
  readonly #issue: IssueCommand;
  readonly #streams = new Map<number, StreamHandlers>();
  readonly #timers = new Map<number, () => void>();
  #nextStream = 1;
  #nextTimer = 1;
  #lastNow = 0;

  constructor(options: XSBridgeHostOptions = {}) {
    const issue = options.issueCommand ?? globalThis.issueCommand;
    if (!issue) throw new Error("XSBridgeHost: no issueCommand (not running under xsnap?)");
    this.#issue = issue;
    this.blobs = {
      get: (name) => {
        const r = this.#request(withOp(Req.blobGet, utf8Encode(name)));
        return r[0] === 1 ? r.slice(1) : undefined;
      },
      set: (name, value) => {
        const n = utf8Encode(name);
        const m = new Uint8Array(3 + n.length + value.length);
        m[0] = Req.blobSet;
        m[1] = n.length & 0xff;
        m[2] = n.length >> 8;
        m.set(n, 3);
        m.set(value, 3 + n.length);
        this.#request(m);
      },
      delete: (name) => void this.#request(withOp(Req.blobDelete, utf8Encode(name))),
    };
  }

  /** Routes the parent's events here: sets globalThis.handleCommand. */
  install(): this {
    globalThis.handleCommand = (message) => this.handleCommand(message);
    return this;
  }

  connect(options: ConnectOptions, handlers: StreamHandlers): ByteStream {
    const id = this.#nextStream++;
    this.#streams.set(id, handlers);
    this.#request(encodeConnect(id, options));
    return new BridgedStream(this, id);
  }

  setTimer(ms: number, callback: () => void): TimerId {
    const id = this.#nextTimer++;
    this.#timers.set(id, callback);
    const m = withId(Req.setTimer, id, new Uint8Array(8));
    new DataView(m.buffer).setFloat64(ID_HEADER, ms, true);
    this.#request(m);
    return id;
  }

  clearTimer(id: TimerId): void {
    // A timer that fired or was cleared costs no round trip.
    if (typeof id === "number" && this.#timers.delete(id)) this.#request(withId(Req.clearTimer, id));
  }

  now(): number {
    const t = globalThis.performance ? globalThis.performance.now() : 0;
    if (t > this.#lastNow) this.#lastNow = t;
    return this.#lastNow;
  }

  timeValid(): boolean {
    return true;
  }

  random(): number {
    const r = this.#request(withOp(Req.random));
    return new DataView(r.buffer, r.byteOffset, r.byteLength).getFloat64(0, true);
  }

  log(message: string): void {
    this.#request(withOp(Req.log, utf8Encode(message)));
  }

  /** Sends bytes to the parent's onMessage handler and returns its answer (test reports, app channels). */
  message(bytes: Uint8Array): Uint8Array {
    return this.#request(withOp(Req.message, bytes));
  }

  /** Streams and timers the parent may still deliver events for. */
  get pending(): { streams: number; timers: number } {
    return { streams: this.#streams.size, timers: this.#timers.size };
  }

  /** One event from the parent (a crank). Handlers' exceptions propagate: the crank fails loudly. */
  handleCommand(message: ArrayBuffer): void {
    const m = new Uint8Array(message);
    const op = m[0];
    if (op === Ev.message) {
      if (!this.onMessage) throw new Error("XSBridgeHost: a message came, and there is no onMessage");
      this.onMessage(m.subarray(1));
      return;
    }
    const id = readId(m);
    if (op === Ev.timer) {
      const callback = this.#timers.get(id);
      if (!callback) return;
      this.#timers.delete(id);
      callback();
      return;
    }
    const h = this.#streams.get(id);
    if (!h) return; // closed by us while the event was on its way
    const body = m.subarray(ID_HEADER);
    switch (op) {
      case Ev.connected:
        h.onConnected(parseJson(body));
        break;
      case Ev.data:
        // The handleCommand buffer is fresh per crank: the receiver may keep the view.
        h.onData(body);
        break;
      case Ev.writable:
        h.onWritable();
        break;
      case Ev.closed:
        this.#streams.delete(id);
        h.onClosed();
        break;
      case Ev.error:
        this.#streams.delete(id);
        h.onError(parseJson<HostError>(body));
        break;
      default:
        throw new Error(`XSBridgeHost: unknown event 0x${(op ?? 0).toString(16)}`);
    }
  }

  /** @internal */
  write(id: number, bytes: Uint8Array): boolean {
    if (!this.#streams.has(id)) return false;
    return this.#request(withId(Req.write, id, bytes))[0] === 1;
  }

  /** @internal */
  close(id: number): void {
    if (this.#streams.delete(id)) this.#request(withId(Req.close, id));
  }

  /** Issues a request; returns the reply body after the status byte, or throws the parent's error. */
  #request(m: Uint8Array): Uint8Array {
    // The message arrays are made whole for each request, so their buffer is exactly the message.
    const reply = new Uint8Array(this.#issue(m.byteLength === m.buffer.byteLength ? m.buffer as ArrayBuffer : m.slice().buffer));
    if (reply[0] === Status.ok) return reply.subarray(1);
    const detail = text(reply.subarray(1));
    const nl = detail.indexOf("\n");
    throw new BridgeError(nl < 0 ? "Error" : detail.slice(0, nl), nl < 0 ? detail : detail.slice(nl + 1));
  }
}

class BridgedStream implements ByteStream {
  readonly #host: XSBridgeHost;
  readonly #id: number;

  constructor(host: XSBridgeHost, id: number) {
    this.#host = host;
    this.#id = id;
  }

  write(bytes: Uint8Array): boolean {
    return this.#host.write(this.#id, bytes);
  }

  close(): void {
    this.#host.close(this.#id);
  }
}
