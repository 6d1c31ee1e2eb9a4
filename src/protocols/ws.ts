// The WebSocket binding (RFC 6455 client): one connection per stream. The
// upgrade request goes to the policy's http_url (with ${metadata}, as h1),
// offering ws_subprotocol; CONNECTED is the handshake accepted. Messages
// map to SOM/EOM both ways: a message sent is the onTx pieces from SOM to
// EOM, one frame each (TEXT, or BINARY with ws_binary, then CONTINUATION);
// a message received is handed to onRx in pieces, SOM on the first, EOM on
// the last, as its frames arrive, never gathered. Pings are answered, close
// codes exchanged both ways; every violation by the server closes the
// connection with the code RFC 6455 gives it (1002, 1007, 1009) and a
// reason in the log. See docs/ws.md.

import type { ByteStream, ConnectOptions, HostError } from "../host.js";
import type { ProtocolBinding, StreamLink, Connection } from "./binding.js";
import { RxFlag } from "../ss/states.js";
import { Http1ResponseParser, Http1Error } from "../wire/http1/index.js";
import {
  WsDecoder, WsError, Opcode, CloseCode, encodeFrame, encodeFrameInto, frameLength, closePayload, makeKey, encodeUpgradeRequest, checkUpgradeResponse,
} from "../wire/ws/index.js";
import { utf8Encode } from "../util/utf8.js";
import { blobHeadersOf, requestPath, requestHeaders, hostHeader } from "./http-common.js";

export interface WsBindingOptions {
  /** Largest message accepted from the server, all its frames together; a larger one closes with 1009. */
  readonly maxMessage?: number;
  /** Largest payload handed to onRx at once. */
  readonly rxMax?: number;
  /** Largest payload asked of onTx at once (one frame each). */
  readonly txMax?: number;
  /**
   * Frames made in one go (the pieces onTx gives while the host takes them)
   * are gathered into one write of up to this many bytes, in a buffer the
   * connection keeps once it sends: fewer writes (system calls on Node), no
   * allocation per frame. The buffer starts at one frame's size and doubles
   * only while the host takes every write whole, so on a device, whose
   * socket buffer is a few KiB, it stays small. A frame larger than this is
   * written alone.
   */
  readonly writeBatch?: number;
}

export const WS_DEFAULTS = Object.freeze({ maxMessage: 1 << 20, rxMax: 4096, txMax: 4096, writeBatch: 262144 });
/** Longest upgrade request head: URL and headers come from metadata (as h1). */
export const WS_MAX_REQUEST_HEAD = 16384;

const EMPTY = new Uint8Array(0);

/**
 * connecting: transport not up. upgrading: the upgrade request is out, its
 * answer is awaited. open: CONNECTED, messages flow. closed: nothing more.
 */
type Phase = "connecting" | "upgrading" | "open" | "closed";

/** A ws binding with its own limits; `ws` is the one with the defaults. */
export function createWsBinding(options: WsBindingOptions = {}): ProtocolBinding {
  const limits = Object.freeze({ ...WS_DEFAULTS, ...options });
  for (const [k, v] of Object.entries(limits)) {
    if (!(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`ws binding: ${k} must be a positive integer, not ${v}`);
  }
  return Object.freeze({ name: "ws" as const, open: (link: StreamLink, connect: ConnectOptions) => new WsConnection(link, connect, limits) });
}

interface Limits {
  readonly maxMessage: number;
  readonly rxMax: number;
  readonly txMax: number;
  readonly writeBatch: number;
}

class WsConnection implements Connection {
  readonly #link: StreamLink;
  readonly #options: ConnectOptions;
  readonly #limits: Limits;
  readonly #binary: boolean;
  readonly #protocols: readonly string[];
  #stream: ByteStream | undefined;
  #phase: Phase = "connecting";
  #key = "";
  #request: Uint8Array | undefined;
  #head: Http1ResponseParser | undefined;
  #decoder: WsDecoder | undefined;
  #timer: unknown;
  /** The write buffer is full: wait for onWritable. */
  #blocked = false;
  /** requestTx() calls so far: one during onTx asks for another pull. */
  #asks = 0;
  /** onTx is wanted: the app asked, and has not yet said "nothing now" or finished a message since. */
  #want = false;
  /** Our message has had its SOM but not its EOM. */
  #sending = false;
  #pumping = false;
  #pumpAgain = false;
  /** The server's 101 has been read in full. */
  #upgraded = false;
  /** When the upgrade request went out. */
  #startedAt = 0;
  /** The host's report of the transport (timings, peer), for CONNECTED. */
  #transport: Parameters<StreamLink["connected"]>[0] | undefined;
  /** Frames not written yet (see WsBindingOptions.writeBatch), and how many bytes of it they fill. */
  #out: Uint8Array | undefined;
  #outLength = 0;

  constructor(link: StreamLink, options: ConnectOptions, limits: Limits) {
    this.#link = link;
    this.#options = options;
    this.#limits = limits;
    const p = link.policy;
    this.#binary = p.flag("ws_binary");
    this.#protocols = (p.string("ws_subprotocol") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    this.#want = link.pending;
    // a request that cannot be made is refused before any connection is spent on it
    if (!(this.#request = this.#upgradeRequest())) return;
    this.#connect();
  }

  requestTx(): void {
    this.#asks++;
    this.#want = true;
    if (this.#phase === "open") this.#pump();
  }

  /** The stream goes (DISCONNECT_ME, destroy()): a normal close, then the connection ends; nothing is reported. */
  close(): void {
    if (this.#phase === "open") this.#sendClose(CloseCode.NORMAL, "");
    this.#shut();
  }

  #shut(): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#clearTimer();
    this.#stream?.close();
    this.#stream = undefined;
  }

  // ---- handshake ----

  #upgradeRequest(): Uint8Array | undefined {
    const link = this.#link;
    const p = link.policy;
    // the path and headers as h1 makes them (the upgrade is an http/1.1 GET)
    const plan = { url: p.string("http_url") ?? "", headerMetadata: true, blobHeaders: blobHeadersOf(p) };
    const target = requestPath(link, plan);
    if ("refuse" in target) return this.#refuse(target.refuse);
    const path = target.path;
    const headers = requestHeaders(link, plan);
    if (!Array.isArray(headers)) return this.#refuse(headers.refuse);
    this.#key = makeKey(() => link.host.random());
    let head: Uint8Array;
    try {
      head = encodeUpgradeRequest({ path, host: hostHeader(this.#options), key: this.#key, protocols: this.#protocols, headers });
    } catch (e) {
      if (!(e instanceof Http1Error)) throw e;
      return this.#refuse(`upgrade request refused: ${e.message}`);
    }
    if (head.length > WS_MAX_REQUEST_HEAD) return this.#refuse(`upgrade request refused: its head is ${head.length} bytes, over the ${WS_MAX_REQUEST_HEAD}-byte limit`);
    return head;
  }


  #connect(): void {
    // Every callback is guarded: an exception out of a host callback would end
    // the Node program or abort the XS machine (device). What gets here is a bug of ours.
    this.#stream = this.#link.host.connect(this.#options, {
      onConnected: (info) => this.#guard(() => this.#upgrade(info)),
      onData: (bytes) => this.#guard(() => this.#receive(bytes)),
      onWritable: () => this.#guard(() => {
        this.#blocked = false;
        if (this.#phase === "open") this.#pump();
      }),
      onClosed: () => this.#guard(() => this.#peerClosed()),
      onError: (error) => this.#guard(() => this.#broken(error)),
    });
  }

  #guard(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.#shut();
      this.#link.fault(e);
    }
  }

  #upgrade(info: Parameters<StreamLink["connected"]>[0]): void {
    if (this.#phase !== "connecting") return;
    this.#phase = "upgrading";
    this.#transport = info;
    const started = this.#link.host.now();
    this.#head = new Http1ResponseParser({
      onHead: (head) => {
        const protocol = checkUpgradeResponse(head, this.#key, this.#protocols);
        if (protocol) this.#link.host.log(`${this.#link.streamtype}: ws subprotocol ${protocol}`);
      },
      onBody: () => {},
      // a 101 has no body: its end is the end of its head, and what follows is frames
      onEnd: () => {
        this.#upgraded = true;
      },
    });
    this.#write(this.#request!);
    this.#request = undefined;
    const ms = this.#link.responseTimeoutMs;
    this.#timer = this.#link.host.setTimer(ms, () => this.#guard(() => {
      this.#timer = undefined;
      if (this.#phase === "upgrading") this.#fail(`no answer to the upgrade request within ${ms} ms`);
    }));
    this.#startedAt = started;
  }

  // ---- receiving ----

  #receive(bytes: Uint8Array): void {
    if (this.#phase === "upgrading") {
      let used: number;
      try {
        used = this.#head!.push(bytes);
      } catch (e) {
        if (e instanceof WsError) return this.#fail(e.message);
        if (e instanceof Http1Error) return this.#fail(`ws: malformed answer to the upgrade request: ${e.message}`);
        throw e;
      }
      if (!this.#upgraded) return; // the head is not complete yet
      this.#clearTimer();
      this.#head = undefined;
      if (!this.#open()) return;
      bytes = bytes.subarray(used);
      if (!bytes.length) return;
    }
    if (this.#phase !== "open") return;
    try {
      this.#decoder!.push(bytes);
    } catch (e) {
      if (!(e instanceof WsError)) throw e;
      this.#protocolError(e);
    }
  }

  /** The handshake is accepted: CONNECTED, then whatever the app has to send. False: stop. */
  #open(): boolean {
    this.#phase = "open";
    this.#decoder = new WsDecoder({
      maxMessage: this.#limits.maxMessage,
      onData: (bytes, _binary, first, last) => this.#onData(bytes, first, last),
      onPing: (payload) => this.#control(Opcode.PONG, payload),
      onPong: () => true,
      onClose: (code, reason) => this.#onClose(code, reason),
    });
    const link = this.#link;
    if (!link.connected(this.#transport ?? { timings: {} }) || this.#phase !== "open") return false;
    if (!link.perf({ txn_resp_us: Math.round((link.host.now() - this.#startedAt) * 1000), prot_specific: { protocol: "ws" } })) return false;
    if (this.#want || link.pending) {
      this.#want = true;
      this.#pump();
    }
    return this.#phase === "open";
  }

  #onData(bytes: Uint8Array, first: boolean, last: boolean): boolean {
    const max = this.#limits.rxMax;
    const link = this.#link;
    if (bytes.length <= max) {
      if (!link.rx(bytes, (first ? RxFlag.SOM : 0) | (last ? RxFlag.EOM : 0))) return false;
    } else {
      for (let at = 0; at < bytes.length; at += max) {
        const end = at + max >= bytes.length;
        if (!link.rx(bytes.subarray(at, at + max), (first && at === 0 ? RxFlag.SOM : 0) | (last && end ? RxFlag.EOM : 0))) return false;
      }
    }
    if (last) link.progress(false);
    return this.#phase === "open";
  }

  #onClose(code: number | undefined, reason: string): boolean {
    // echo the code (RFC 6455, 5.5.1), then the connection is over
    if (code === undefined) this.#control(Opcode.CLOSE, EMPTY);
    else this.#sendClose(code, "");
    const why = `the server closed the connection: ${code ?? "no code"}${reason ? ` ${JSON.stringify(reason)}` : ""}`;
    this.#end(why);
    return false;
  }

  #protocolError(e: WsError): void {
    this.#sendClose(e.closeCode, e.message.startsWith("ws: ") ? e.message.slice(4) : e.message);
    this.#end(`${e.message}: closed with ${e.closeCode}`);
  }

  // ---- sending ----

  /** Pulls messages from onTx while the host takes them and the app has some. */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    let pulled: "more" | "none" | "stop";
    try {
      do {
        this.#pumpAgain = false;
        pulled = this.#pull();
      } while (pulled === "more" && this.#pumpAgain);
    } finally {
      this.#pumping = false;
      this.#flush();
    }
    // onTx said "not now" and asked again (lws' requestTx() from tx): come back from the timer queue
    if (pulled === "none" && this.#want) {
      this.#link.host.setTimer(0, () => this.#guard(() => {
        if (this.#phase === "open") this.#pump();
      }));
    }
  }

  #pull(): "more" | "none" | "stop" {
    const link = this.#link;
    const max = this.#limits.txMax;
    while (this.#phase === "open" && !this.#blocked && (this.#want || this.#sending)) {
      const asks = this.#asks;
      const pulled = link.tx(max, this.#sending ? 0 : RxFlag.SOM);
      if (pulled === "stop" || this.#phase !== "open") return "stop";
      if (pulled === "none") {
        // nothing now; a requestTx() from inside onTx asks again
        this.#want = this.#asks !== asks;
        return "none";
      }
      const { payload, flags } = pulled;
      if (this.#sending && flags & RxFlag.SOM) {
        this.#shut();
        link.ended({ reason: "onTx started a message (SOM) before the previous one's EOM: the message is abandoned", local: true });
        return "stop";
      }
      const fin = (flags & RxFlag.EOM) !== 0;
      const opcode = this.#sending ? Opcode.CONTINUATION : this.#binary ? Opcode.BINARY : Opcode.TEXT;
      this.#frame(opcode, fin, payload);
      this.#sending = !fin;
      if (fin) {
        const met = this.#asks === asks;
        if (met) this.#want = false;
        link.progress(met);
        if (this.#phase !== "open") return "stop";
      }
    }
    return "more";
  }

  /** Queues a frame in the write batch; a full batch is written first, a frame too big for one alone. */
  #frame(opcode: number, fin: boolean, payload: Uint8Array): void {
    const size = frameLength(payload.length);
    if (size > this.#limits.writeBatch) {
      // (only with a txMax over writeBatch) pulled already: it goes now, after what is batched
      this.#flush(true);
      this.#write(encodeFrame(opcode, fin, payload, this.#mask()));
      return;
    }
    if (this.#outLength + size > (this.#out?.length ?? 0)) this.#room(size);
    this.#outLength += encodeFrameInto(this.#out!, this.#outLength, opcode, fin, payload, this.#mask());
  }

  /** Makes room for a frame of `size` (at most writeBatch) bytes: a bigger buffer while the host takes every write, else a write. */
  #room(size: number): void {
    const batch = this.#limits.writeBatch;
    const out = this.#out;
    const used = this.#outLength;
    if (!out || (!this.#blocked && out.length < batch)) {
      const bigger = new Uint8Array(Math.min(batch, Math.max(used + size, out ? out.length * 2 : size)));
      if (used) bigger.set(out!.subarray(0, used));
      this.#out = bigger;
      if (used + size <= bigger.length) return;
    }
    // the batch is full: it goes (when blocked, only a control frame gets here: it must go now)
    this.#flush(true);
    if (this.#out!.length < size) this.#out = new Uint8Array(size);
  }

  /**
   * Writes the frames batched so far (the host copies them: the buffer is
   * used again); while the host's buffer is full they wait for onWritable,
   * unless `force` (a control frame must go now: it is tiny).
   */
  #flush(force = false): void {
    if (!this.#outLength || (this.#blocked && !force)) return;
    const bytes = this.#out!.subarray(0, this.#outLength);
    this.#outLength = 0;
    this.#write(bytes);
  }

  #mask(): number {
    return Math.floor(this.#link.host.random() * 0x100000000) >>> 0;
  }

  #control(opcode: number, payload: Uint8Array): boolean {
    this.#frame(opcode, true, payload);
    this.#flush(true);
    return this.#phase === "open";
  }

  #sendClose(code: number, reason: string): void {
    this.#control(Opcode.CLOSE, closePayload(code, utf8Encode(reason)));
  }

  #write(bytes: Uint8Array): void {
    if (this.#stream && !this.#stream.write(bytes)) this.#blocked = true;
  }

  // ---- endings ----

  /** Something of the app's was under way: a message half sent or half received, or a requestTx() not yet served. */
  #interrupted(): boolean {
    return this.#sending || this.#want || this.#link.pending || (this.#decoder?.inMessage ?? false);
  }

  /** Ends an open connection (after a close frame either way, or a violation). */
  #end(reason: string): void {
    if (this.#phase === "closed") return;
    const interrupted = this.#interrupted();
    this.#shut();
    this.#link.ended({ reason, interrupted, replayable: true });
  }

  /** The handshake failed: the attempt ends before CONNECTED. */
  #fail(reason: string): void {
    if (this.#phase === "closed") return;
    this.#shut();
    this.#link.ended({ reason, interrupted: this.#link.pending, replayable: true });
  }

  #peerClosed(): void {
    if (this.#phase === "open") this.#end("the server closed the connection without a close frame (1006)");
    else this.#fail("the server closed the connection before the handshake was done");
  }

  #broken(error: HostError): void {
    if (this.#phase === "closed") return;
    const interrupted = this.#phase === "open" ? this.#interrupted() : this.#link.pending;
    this.#shut();
    this.#link.ended({ reason: `${error.kind}: ${error.message}`, error: error.kind, interrupted, replayable: true });
  }

  /** Refuses a request this connection cannot carry: ended before connecting, without a network retry. */
  #refuse(reason: string): undefined {
    this.#shut();
    this.#link.ended({ reason, local: true });
    return undefined;
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#link.host.clearTimer(this.#timer);
    this.#timer = undefined;
  }
}

/** The ws binding with the default limits. */
export const ws: ProtocolBinding = createWsBinding();

