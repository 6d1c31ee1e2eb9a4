// The http/2 binding: Secure Streams to one endpoint share one connection
// (one per SecureStreams context, made by createH2Binding), each transaction
// an h2 stream on it. Requests are what the policy describes, as for h1
// (http-common.ts); the wire is src/wire/h2. What a stream sees is what h1
// gives it: CONNECTED once the connection is up (for a stream joining one
// that is up already, at once), a result per transaction, DISCONNECTED when
// the connection goes or the stream leaves it. See docs/h2.md.

import type { ByteStream, ConnectOptions, HostError, ConnectTimings } from "../host.js";
import type { ProtocolBinding, StreamLink, Connection, ConnectionEnd } from "./binding.js";
import { State, RxFlag } from "../ss/states.js";
import { Http1Error, encodeRequestHead } from "../wire/http1/index.js";
import {
  H2Error, ErrorCode, errorCodeName, FrameDecoder, FrameType, Flag, Setting, PREFACE, MIN_MAX_FRAME_SIZE, MAX_WINDOW,
  encodeFrame, writeFrameHeader, encodeSettings, encodeSettingsAck, encodePing, encodeWindowUpdate, encodeRstStream, encodeGoaway,
  readSettings, readPing, readGoaway, readWindowUpdate, readRstStream, checkPriority, readData, readHeadersFragment,
  HpackDecoder, HpackEncoder, type Frame, type Header,
} from "../wire/h2/index.js";
import {
  BODY_METHODS, IDEMPOTENT, planOf, requestPath, requestHeaders, requestBody, retryAfterMs, statusResult, shown, sameOriginTarget, hostHeader,
  type Plan, type BodyWriter,
} from "./http-common.js";
import { sameOptions } from "./same-options.js";
import { latin1String } from "../util/bytes.js";
import { utf8Encode } from "../util/utf8.js";
import { hasAsciiUpper, isDigits } from "../util/chars.js";

/** Largest payload handed to onRx at once. */
export const H2_RX_MAX = 4096;
/** Largest payload asked of onTx at once. */
export const H2_TX_MAX = 16384;
/** Redirects followed for one transaction (as h1). */
const MAX_REDIRECTS = 5;

export interface H2BindingOptions {
  /** Streams one connection carries at once, whatever the server allows (default 100); the rest wait their turn. */
  readonly maxStreams?: number;
  /**
   * Our SETTINGS_INITIAL_WINDOW_SIZE: what a server may send on one stream
   * before we ask for more (default 262144). No memory is set aside for it:
   * onRx takes data as it comes, and the window is topped up as it does.
   */
  readonly streamWindow?: number;
  /** The same for the whole connection (default 1048576). */
  readonly connectionWindow?: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE: a longer response header list fails its stream (default 32768). */
  readonly maxHeaderListSize?: number;
  /** Our SETTINGS_HEADER_TABLE_SIZE, and the most our encoder keeps (default 4096). */
  readonly headerTableSize?: number;
}

/** Connection-specific headers, which HTTP/2 forbids (RFC 9113, 8.2.2). */
const CONNECTION_HEADERS: readonly string[] = Object.freeze(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"]);

/**
 * An http/2 binding with its own pool of connections: make one per
 * SecureStreams context. Streams whose connect options are the same in
 * every field (endpoint, port, TLS name, trust, client certificate) share a
 * connection.
 */
export function createH2Binding(options: H2BindingOptions = {}): ProtocolBinding {
  const settings: SessionSettings = {
    maxStreams: options.maxStreams ?? 100,
    streamWindow: Math.min(options.streamWindow ?? 262144, MAX_WINDOW),
    connectionWindow: Math.min(Math.max(options.connectionWindow ?? 1048576, 65535), MAX_WINDOW),
    maxHeaderListSize: options.maxHeaderListSize ?? 32768,
    headerTableSize: options.headerTableSize ?? 4096,
  };
  const sessions: Session[] = [];
  const binding: ProtocolBinding = {
    name: "h2",
    open(link, connect) {
      const tls = connect.tls ? { ...connect.tls, alpn: ["h2"] } : undefined;
      const opts: ConnectOptions = { ...connect, tls };
      const handle = new H2Handle(link, opts);
      if (handle.refused) return handle;
      let session = sessions.find((s) => s.usable && sameOptions(s.options, opts));
      if (!session) {
        session = new Session(opts, settings, link, (s) => {
          const i = sessions.indexOf(s);
          if (i >= 0) sessions.splice(i, 1);
        });
        sessions.push(session);
        session.attach(handle);
        session.connect();
      } else {
        session.attach(handle);
      }
      return handle;
    },
  };
  return Object.freeze(binding);
}

interface SessionSettings {
  readonly maxStreams: number;
  readonly streamWindow: number;
  readonly connectionWindow: number;
  readonly maxHeaderListSize: number;
  readonly headerTableSize: number;
}

type SessionPhase = "connecting" | "open" | "draining" | "closed";

/** One http/2 connection and the streams on it. */
class Session {
  readonly options: ConnectOptions;
  readonly #settings: SessionSettings;
  /** The link that asked for the connection: its host, for the transport and timers. */
  readonly #opener: StreamLink;
  readonly #forget: (s: Session) => void;
  #phase: SessionPhase = "connecting";
  #stream: ByteStream | undefined;
  #info: { readonly timings: ConnectTimings; readonly peer?: string } | undefined;
  readonly #handles = new Set<H2Handle>();
  readonly #active = new Map<number, H2Handle>();
  readonly #queue: H2Handle[] = [];
  readonly #decoder: FrameDecoder;
  readonly #hpackIn: HpackDecoder;
  readonly #hpackOut: HpackEncoder;
  #nextStreamId = 1;
  /** The server's first SETTINGS arrived: streams may start. */
  #settled = false;
  #peerMaxStreams = Infinity;
  #peerWindow = 65535;
  #peerMaxFrame = MIN_MAX_FRAME_SIZE;
  #sendWindow = 65535;
  #recvWindow: number;
  #recvConsumed = 0;
  /** A header block being gathered from HEADERS and CONTINUATION frames. */
  #block: { streamId: number; endStream: boolean; parts: Uint8Array[]; length: number } | undefined;
  #blocked = false;
  #pumpWanted = false;
  /** Frames written in this turn, sent together by flush(): one TLS record, one TCP segment, instead of many. */
  readonly #out: Uint8Array[] = [];
  #outBytes = 0;
  /** Streams above this id were not processed by the server (its GOAWAY). */
  #goawayLast = MAX_WINDOW;

  constructor(options: ConnectOptions, settings: SessionSettings, opener: StreamLink, forget: (s: Session) => void) {
    this.options = options;
    this.#settings = settings;
    this.#opener = opener;
    this.#forget = forget;
    this.#recvWindow = settings.connectionWindow;
    this.#decoder = new FrameDecoder({ maxFrameSize: MIN_MAX_FRAME_SIZE, onFrame: (f) => this.#frame(f) });
    this.#hpackIn = new HpackDecoder({ maxTableSize: settings.headerTableSize, maxHeaderListSize: settings.maxHeaderListSize });
    this.#hpackOut = new HpackEncoder({ maxTableSize: settings.headerTableSize });
  }

  /** New streams may join: the connection is not going away. */
  get usable(): boolean {
    return this.#phase === "connecting" || this.#phase === "open";
  }

  get up(): boolean {
    return this.#phase === "open" || this.#phase === "draining";
  }

  get #host() {
    return this.#opener.host;
  }

  attach(h: H2Handle): void {
    this.#handles.add(h);
    h.session = this;
    // joining a connection that is up: CONNECTED from the timer queue, once open() has returned
    if (this.#phase === "open") this.#later(() => h.connected(this.#info!));
  }

  /** The handle's stream is gone: its h2 stream is reset, and the connection closes with the last one. */
  detach(h: H2Handle): void {
    if (!this.#handles.delete(h)) return;
    this.cancel(h, ErrorCode.CANCEL);
    if (this.#handles.size === 0) this.close(ErrorCode.NO_ERROR);
  }

  /** Takes the handle's h2 stream (or its place in the queue) away, resetting it with `code`. */
  cancel(h: H2Handle, code: number): void {
    const q = this.#queue.indexOf(h);
    if (q >= 0) this.#queue.splice(q, 1);
    const id = h.streamId;
    if (id && this.#active.get(id) === h) {
      this.#active.delete(id);
      this.write(encodeRstStream(id, code));
      this.#schedule();
    }
    h.streamId = 0;
  }

  connect(): void {
    const guard = <A extends unknown[]>(f: (...a: A) => void) => (...a: A) => {
      try {
        f(...a);
        this.drain();
      } catch (e) {
        this.#fault(e);
      }
    };
    this.#stream = this.#host.connect(this.options, {
      onConnected: guard((info) => this.#connected(info)),
      onData: guard((bytes) => this.#receive(bytes)),
      onWritable: guard(() => {
        this.#blocked = false;
        this.#pumpWanted = true;
      }),
      onClosed: guard(() => this.#lost("the server closed the connection")),
      onError: guard((error: HostError) => this.#lost(`${error.kind}: ${error.message}`, error)),
    });
  }

  #connected(info: { readonly alpn?: string; readonly timings: ConnectTimings; readonly peer?: string }): void {
    if (this.#phase !== "connecting") return;
    // a host that cannot tell (Moddable's TLS) reports no ALPN: then the preface finds out
    if (this.options.tls && info.alpn !== undefined && info.alpn !== "h2") {
      this.#lost(`the server did not negotiate h2 with ALPN (it chose ${JSON.stringify(info.alpn)})`, { kind: "tls", message: "ALPN" });
      return;
    }
    this.#phase = "open";
    this.#info = { timings: info.timings, peer: info.peer };
    const s = this.#settings;
    this.write(PREFACE);
    this.write(encodeSettings([
      [Setting.ENABLE_PUSH, 0],
      [Setting.HEADER_TABLE_SIZE, s.headerTableSize],
      [Setting.INITIAL_WINDOW_SIZE, s.streamWindow],
      [Setting.MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE],
      [Setting.MAX_HEADER_LIST_SIZE, s.maxHeaderListSize],
    ]));
    if (s.connectionWindow > 65535) this.write(encodeWindowUpdate(0, s.connectionWindow - 65535));
    for (const h of [...this.#handles]) if (this.#phase === "open") h.connected(this.#info);
  }

  // ---- sending ----

  /** Queues a frame; drain() (or flush()) sends what this turn queued. */
  write(bytes: Uint8Array): void {
    if (!this.#stream) return;
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
  }

  /**
   * Ends a turn: sends what it queued, then lets request bodies go on while
   * the host takes them, FLUSH_AT bytes at a time. Bodies are pulled here,
   * at the bottom of the stack, and not deep in the receive path: TLS
   * encryption under a deep stack overflows the device's JS stack.
   */
  drain(): void {
    for (;;) {
      this.flush();
      if (!this.#pumpWanted || this.#blocked || !this.up) return;
      this.#pumpWanted = false;
      this.#pumpAll();
      if (!this.#outBytes) return;
    }
  }

  /** A body may go on (a window opened, a stream started): pumped when the turn ends. */
  wantPump(): void {
    this.#pumpWanted = true;
  }

  flush(): void {
    const out = this.#out;
    if (!out.length) return;
    let bytes = out[0]!;
    if (out.length > 1) {
      bytes = new Uint8Array(this.#outBytes);
      let at = 0;
      for (const b of out) {
        bytes.set(b, at);
        at += b.length;
      }
    }
    out.length = 0;
    this.#outBytes = 0;
    if (this.#stream && !this.#stream.write(bytes)) this.#blocked = true;
  }

  /** No more body now: the host's buffer is full, or this turn queued FLUSH_AT bytes (drain() goes on after sending them). */
  get blocked(): boolean {
    if (this.#outBytes < FLUSH_AT) return this.#blocked;
    this.#pumpWanted = true;
    return true;
  }

  /** The handle has a request ready: it gets an h2 stream now or when one is free. */
  enqueue(h: H2Handle): void {
    if (!this.#queue.includes(h)) this.#queue.push(h);
    this.#schedule();
  }

  #schedule(): void {
    while (this.#phase === "open" && this.#settled && this.#queue.length &&
      this.#active.size < Math.min(this.#peerMaxStreams, this.#settings.maxStreams)) {
      const h = this.#queue.shift()!;
      if (this.#nextStreamId > MAX_WINDOW) {
        // stream ids used up: this connection takes no more, the next one will
        this.#phase = "draining";
        this.#forget(this);
        h.retry("the connection's stream ids are used up");
        continue;
      }
      const id = this.#nextStreamId;
      this.#nextStreamId += 2;
      this.#active.set(id, h);
      h.start(id, this.#peerWindow);
    }
  }

  /** Sends a header block: HEADERS, then CONTINUATION frames if it is larger than the server's frame size. */
  sendHeaders(id: number, headers: Header[], endStream: boolean): void {
    const block = this.#hpackOut.encode(headers);
    const max = this.#peerMaxFrame;
    let at = 0;
    do {
      const n = Math.min(max, block.length - at);
      const last = at + n >= block.length;
      const type = at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (last ? Flag.END_HEADERS : 0) | (at === 0 && endStream ? Flag.END_STREAM : 0);
      this.write(encodeFrame(type, flags, id, block.subarray(at, at + n)));
      at += n;
    } while (at < block.length);
  }

  /** How much DATA the stream may send now: its window, the connection's, and the frame size. */
  credit(h: H2Handle): number {
    return Math.max(0, Math.min(h.sendWindow, this.#sendWindow, this.#peerMaxFrame));
  }

  sendData(h: H2Handle, bytes: Uint8Array, endStream: boolean): void {
    const out = new Uint8Array(9 + bytes.length);
    writeFrameHeader(out, 0, bytes.length, FrameType.DATA, endStream ? Flag.END_STREAM : 0, h.streamId);
    out.set(bytes, 9);
    this.#sendWindow -= bytes.length;
    h.sendWindow -= bytes.length;
    this.write(out);
  }

  /** The handle's h2 stream is over (both ways): it no longer counts against the server's limit. */
  release(h: H2Handle): void {
    if (h.streamId && this.#active.get(h.streamId) === h) this.#active.delete(h.streamId);
    h.streamId = 0;
  }

  /** After release(): the slot goes to the next in the queue; a connection the server is closing goes with its last stream. */
  settle(): void {
    this.#schedule();
    if (this.#phase === "draining" && this.#active.size === 0) this.close(ErrorCode.NO_ERROR, "the server closes the connection (GOAWAY)");
  }

  #pumpAll(): void {
    for (const h of [...this.#active.values()]) {
      if (this.blocked || !this.up) return;
      h.pump();
    }
  }

  // ---- receiving ----

  #receive(bytes: Uint8Array): void {
    if (!this.up) return;
    try {
      this.#decoder.push(bytes);
    } catch (e) {
      if (!(e instanceof H2Error)) throw e;
      this.#connectionError(e);
    }
  }

  #frame(f: Frame): void {
    if (!this.up) return;
    // a header block is one unit: nothing may come between its frames (RFC 9113, 6.10)
    if (this.#block && (f.type !== FrameType.CONTINUATION || f.streamId !== this.#block.streamId)) {
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, `h2: frame type ${f.type} in the middle of a header block`);
    }
    if (!this.#settled && f.type !== FrameType.SETTINGS) {
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: the server's first frame is not SETTINGS");
    }
    try {
      this.#dispatch(f);
    } catch (e) {
      if (!(e instanceof H2Error) || e.streamId === undefined) throw e;
      this.#streamError(e.streamId, e);
    }
  }

  #dispatch(f: Frame): void {
    switch (f.type) {
      case FrameType.DATA: return this.#data(f);
      case FrameType.HEADERS: return this.#headers(f);
      case FrameType.PRIORITY: return checkPriority(f);
      case FrameType.RST_STREAM: return this.#reset(f.streamId, readRstStream(f));
      case FrameType.SETTINGS: return this.#peerSettings(f);
      case FrameType.PUSH_PROMISE: throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: PUSH_PROMISE, though we disabled push");
      case FrameType.PING: {
        const data = readPing(f);
        if (!(f.flags & Flag.ACK)) this.write(encodePing(data.slice(), true));
        return;
      }
      case FrameType.GOAWAY: return this.#goaway(f);
      case FrameType.WINDOW_UPDATE: return this.#windowUpdate(f);
      case FrameType.CONTINUATION: return this.#continuation(f);
      default: return; // unknown frame types are ignored (RFC 9113, 4.1)
    }
  }

  #peerSettings(f: Frame): void {
    const list = readSettings(f);
    if (f.flags & Flag.ACK) {
      if (this.#settled) return;
      // A server sends its SETTINGS before it acknowledges ours, so they were
      // lost: Moddable's TLSSocket drops application data that arrives with
      // the end of the handshake. The protocol's defaults stand for them.
      this.#host.log(`${this.options.host}:${this.options.port}: h2: the server's SETTINGS never arrived (lost by the TLS stack?): going on with the protocol's defaults`);
      this.#settled = true;
      this.#schedule();
      return;
    }
    for (const [id, value] of list) {
      if (id === Setting.MAX_CONCURRENT_STREAMS) this.#peerMaxStreams = value;
      else if (id === Setting.MAX_FRAME_SIZE) this.#peerMaxFrame = value;
      else if (id === Setting.HEADER_TABLE_SIZE) this.#hpackOut.setPeerMaxTableSize(value);
      else if (id === Setting.INITIAL_WINDOW_SIZE) {
        const delta = value - this.#peerWindow;
        this.#peerWindow = value;
        for (const h of this.#active.values()) {
          h.sendWindow += delta;
          if (h.sendWindow > MAX_WINDOW) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "h2: SETTINGS_INITIAL_WINDOW_SIZE takes a stream's window over 2^31-1");
        }
      }
    }
    this.write(encodeSettingsAck());
    this.#settled = true;
    this.#schedule();
    this.#pumpWanted = true;
  }

  #windowUpdate(f: Frame): void {
    const increment = readWindowUpdate(f);
    if (f.streamId === 0) {
      this.#sendWindow += increment;
      if (this.#sendWindow > MAX_WINDOW) {
        if (!this.#quirk("h2q_oflow_txcr")) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "h2: WINDOW_UPDATE takes the connection's window over 2^31-1");
        this.#sendWindow = MAX_WINDOW;
      }
      this.#pumpWanted = true;
      return;
    }
    const h = this.#active.get(f.streamId);
    if (!h) return; // a stream we closed: its late frames are ignored
    h.sendWindow += increment;
    if (h.sendWindow > MAX_WINDOW) {
      if (!h.quirkOverflow) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, "h2: WINDOW_UPDATE takes the stream's window over 2^31-1", f.streamId);
      h.sendWindow = MAX_WINDOW;
    }
    this.#pumpWanted = true;
  }

  /** One of the streams' policies has the quirk (they share the connection's window). */
  #quirk(key: "h2q_oflow_txcr"): boolean {
    for (const h of this.#handles) if (h.policyFlag(key)) return true;
    return false;
  }

  #headers(f: Frame): void {
    this.#checkStreamId(f.streamId);
    const fragment = readHeadersFragment(f);
    this.#block = { streamId: f.streamId, endStream: (f.flags & Flag.END_STREAM) !== 0, parts: [], length: 0 };
    this.#gather(fragment, f.flags);
  }

  #continuation(f: Frame): void {
    if (!this.#block) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "h2: CONTINUATION without a header block");
    this.#gather(f.payload, f.flags);
  }

  #gather(fragment: Uint8Array, flags: number): void {
    const block = this.#block!;
    block.length += fragment.length;
    // a compressed block is bounded too: twice the list size allows for any Huffman coding of it
    if (block.length > 2 * this.#settings.maxHeaderListSize) {
      throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, `h2: header block over ${2 * this.#settings.maxHeaderListSize} bytes`);
    }
    block.parts.push(fragment.slice()); // frame payloads are views of the decoder's buffer
    if (!(flags & Flag.END_HEADERS)) return;
    this.#block = undefined;
    let whole = block.parts[0]!;
    if (block.parts.length > 1) {
      whole = new Uint8Array(block.length);
      let at = 0;
      for (const p of block.parts) {
        whole.set(p, at);
        at += p.length;
      }
    }
    let headers: Header[];
    try {
      headers = this.#hpackIn.decode(whole);
    } catch (e) {
      // too long a list fails its stream only: the table is still in step
      if (e instanceof H2Error && e.code === ErrorCode.PROTOCOL_ERROR) throw new H2Error(e.code, e.message, block.streamId);
      throw e;
    }
    const h = this.#active.get(block.streamId);
    if (h) h.headers(headers, block.endStream);
  }

  #data(f: Frame): void {
    const data = readData(f);
    this.#checkStreamId(f.streamId);
    // flow control counts the whole payload, padding included
    const length = f.payload.length;
    if (length > this.#recvWindow) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, `h2: ${length} bytes of DATA beyond the connection's window`);
    this.#recvWindow -= length;
    this.#recvConsumed += length;
    const h = this.#active.get(f.streamId);
    if (h) {
      if (length > h.recvWindow) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, `h2: ${length} bytes of DATA beyond the stream's window`, f.streamId);
      h.recvWindow -= length;
      h.data(data, length, (f.flags & Flag.END_STREAM) !== 0);
    }
    // the app has taken it (onRx is synchronous): the server may send that much more
    if (this.#recvConsumed >= this.#settings.connectionWindow / 2) this.#grantConnection();
  }

  /**
   * Grants the server more window on a stream whose data the app took, and
   * the connection what it took so far in the same write: one WINDOW_UPDATE
   * pair per half stream window, instead of a write for each window.
   */
  grant(h: H2Handle, consumed: number): void {
    this.write(encodeWindowUpdate(h.streamId, consumed));
    this.#grantConnection();
  }

  #grantConnection(): void {
    if (!this.up || this.#recvConsumed === 0) return;
    this.write(encodeWindowUpdate(0, this.#recvConsumed));
    this.#recvWindow += this.#recvConsumed;
    this.#recvConsumed = 0;
  }

  get streamWindow(): number {
    return this.#settings.streamWindow;
  }

  #checkStreamId(id: number): void {
    if (!(id & 1)) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `h2: the server used stream ${id}, which it may not open`);
    if (id >= this.#nextStreamId) throw new H2Error(ErrorCode.PROTOCOL_ERROR, `h2: frame on stream ${id}, which we have not opened`);
  }

  #reset(id: number, code: number): void {
    this.#checkStreamId(id);
    const h = this.#active.get(id);
    if (!h) return;
    this.#active.delete(id);
    h.streamId = 0;
    h.reset(code);
    this.#schedule();
  }

  #goaway(f: Frame): void {
    const { lastStreamId, code, debug } = readGoaway(f);
    this.#goawayLast = Math.min(this.#goawayLast, lastStreamId);
    const why = `the server sent GOAWAY (${errorCodeName(code)}${debug.length ? `: ${latin1String(debug.subarray(0, 80))}` : ""})`;
    this.#phase = "draining";
    this.#forget(this);
    // what the server did not act on goes again, on another connection
    for (const [id, h] of [...this.#active]) {
      if (id <= this.#goawayLast) continue;
      this.#active.delete(id);
      h.streamId = 0;
      h.retry(`${why}: stream ${id} was not processed`);
    }
    for (const h of [...this.#queue]) h.retry(`${why} before the request was sent`);
    this.#queue.length = 0;
    if (this.#active.size === 0) this.close(ErrorCode.NO_ERROR, why);
  }

  #streamError(id: number, e: H2Error): void {
    const h = this.#active.get(id);
    this.write(encodeRstStream(id, e.code));
    if (!h) return;
    this.#active.delete(id);
    h.streamId = 0;
    h.failed(`${e.message} (stream reset: ${errorCodeName(e.code)})`);
    this.#schedule();
  }

  #connectionError(e: H2Error): void {
    // the server is told why (we accept no streams from it: last stream 0), and each stream here learns it too
    this.write(encodeGoaway(0, e.code, utf8Encode(e.message.slice(0, 200))));
    this.#end(`${e.message} (connection closed: ${errorCodeName(e.code)})`);
  }

  /** Closes the connection with GOAWAY (an orderly end for streams still attached). */
  close(code: number, reason?: string): void {
    if (this.#phase === "closed") return;
    if (this.up) this.write(encodeGoaway(0, code));
    this.#end(reason);
  }

  /** The transport broke or the server closed it. */
  #lost(reason: string, error?: HostError): void {
    this.#end(reason, error);
  }

  #end(reason?: string, error?: HostError): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#forget(this);
    this.#decoder.stop();
    this.flush(); // a GOAWAY, if we sent one
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.close();
    const handles = [...this.#handles];
    this.#handles.clear();
    this.#active.clear();
    this.#queue.length = 0;
    for (const h of handles) h.lost(reason, error);
  }

  #fault(error: unknown): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#forget(this);
    this.#stream?.close();
    this.#stream = undefined;
    const handles = [...this.#handles];
    this.#handles.clear();
    for (const h of handles) h.fault(error);
  }

  #later(f: () => void): void {
    this.#host.setTimer(0, () => {
      try {
        f();
        this.drain();
      } catch (e) {
        this.#fault(e);
      }
    });
  }
}

type Phase = "connecting" | "idle" | "queued" | "sending" | "waiting" | "closed";

/** A request ready to go. */
interface Request {
  readonly method: string;
  readonly headers: Header[];
  readonly body: BodyWriter | undefined;
}

/** A stream's use of a session: one transaction at a time, each on a new h2 stream. */
class H2Handle implements Connection {
  readonly #link: StreamLink;
  readonly #options: ConnectOptions;
  readonly #plan: Plan;
  session: Session | undefined;
  #phase: Phase = "connecting";
  /** The h2 stream of the transaction under way; 0 when none. */
  streamId = 0;
  sendWindow = 0;
  recvWindow = 0;
  #recvConsumed = 0;
  readonly quirkOverflow: boolean;
  #prepared: Request | undefined;
  #request: Request | undefined;
  /** Body bytes pulled from onTx and not sent yet (the windows were shut), and whether they end the body. */
  #held: Uint8Array[] = [];
  #endAfterHeld = false;
  #status = 0;
  /** The Location of a redirect being read (allow_redirects): its body is discarded, and the next hop goes at its end. */
  #location: string | undefined;
  #redirects = 0;
  #retryAfter = "";
  #messageOpen = false;
  #remoteEnded = false;
  #localEnded = false;
  #replayable = true;
  #requestStart = 0;
  #responseTimer: unknown;
  #pumping = false;
  #pumpAgain = false;
  /** open() refused the request before connecting (ended() was reported). */
  refused = false;

  constructor(link: StreamLink, options: ConnectOptions) {
    this.#link = link;
    this.#options = options;
    this.#plan = planOf(link.policy);
    this.quirkOverflow = link.policy.flag("h2q_oflow_txcr");
    // a request that cannot be made is refused before any connection is spent on it
    if (link.pending && !(this.#prepared = this.#newTransaction())) this.refused = true;
  }

  policyFlag(key: string): boolean {
    return this.#link.policy.flag(key);
  }

  // ---- Connection ----

  requestTx(): void {
    if (this.#phase === "idle") this.#startTransaction();
    else if (this.#phase === "sending") this.pump();
    // connecting, queued, waiting: the stream's pending transaction starts when this one is done
    this.session?.drain();
  }

  close(): void {
    if (this.#phase === "closed") return;
    this.leave()?.flush();
  }

  // ---- from the session ----

  connected(info: { readonly timings: ConnectTimings; readonly peer?: string }): void {
    if (this.#phase !== "connecting") return;
    this.#phase = "idle";
    if (this.#link.connected(info) && this.#phase === "idle") this.#startTransaction();
  }

  /** The session gave this handle an h2 stream: the request goes. */
  start(id: number, peerWindow: number): void {
    const request = this.#request!;
    const s = this.session!;
    this.streamId = id;
    this.sendWindow = peerWindow;
    this.recvWindow = s.streamWindow;
    this.#recvConsumed = 0;
    this.#status = 0;
    this.#location = undefined;
    this.#retryAfter = "";
    this.#messageOpen = false;
    this.#remoteEnded = false;
    this.#localEnded = !request.body;
    this.#held = [];
    this.#endAfterHeld = false;
    this.#requestStart = this.#link.host.now();
    if (!IDEMPOTENT.includes(request.method)) this.#replayable = false;
    s.sendHeaders(id, request.headers, !request.body);
    if (request.body) {
      this.#phase = "sending";
      s.wantPump(); // when the turn ends (drain)
    } else {
      this.#awaitResponse();
    }
  }

  /** The request cannot go on this connection: the stream tries again (none of it reached the server). */
  retry(reason: string): void {
    if (this.#phase === "closed") return;
    this.#end({ reason, interrupted: true, replayable: true });
  }

  /** The server reset our h2 stream. */
  reset(code: number): void {
    if (this.#phase === "closed") return;
    const refused = code === ErrorCode.REFUSED_STREAM;
    this.#end({
      reason: `the server reset the stream (${errorCodeName(code)})`, interrupted: true,
      // REFUSED_STREAM: the server did nothing with it (RFC 9113, 8.7)
      replayable: refused || this.#replayable,
    });
  }

  /** A violation on our h2 stream: it was reset. */
  failed(reason: string): void {
    if (this.#phase === "closed") return;
    this.#end({ reason, interrupted: true, replayable: this.#replayable });
  }

  /** The connection is gone. */
  lost(reason: string | undefined, error: HostError | undefined): void {
    if (this.#phase === "closed") return;
    const inTransaction = this.#phase === "queued" || this.#phase === "sending" || this.#phase === "waiting" || this.#prepared !== undefined;
    this.#phase = "closed";
    this.#clearResponseTimer();
    this.session = undefined;
    this.#link.ended({ reason, error: error?.kind, interrupted: inTransaction, replayable: this.#replayable });
  }

  fault(error: unknown): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#clearResponseTimer();
    this.session = undefined;
    this.#link.fault(error);
  }

  // ---- request ----

  #startTransaction(): void {
    const request = this.#prepared ?? (this.#link.pending ? this.#newTransaction() : undefined);
    this.#prepared = undefined;
    if (!request || this.#phase !== "idle") return;
    if (!this.session!.usable) {
      // the server is closing this connection: an orderly end, and the stream connects again for its transaction
      this.#end({ reason: "the connection is closing (GOAWAY): the next transaction goes on a new one" });
      return;
    }
    this.#request = request;
    this.#phase = "queued";
    this.session!.enqueue(this);
  }

  /** The stream's next request, or (`hop`) a redirect's, which has no body. */
  #newTransaction(hop?: { readonly method: string; readonly path: string }): Request | undefined {
    const link = this.#link;
    const plan = this.#plan;
    if (!hop) {
      this.#replayable = true;
      this.#redirects = 0;
    }
    const target = hop ?? requestPath(link, plan);
    if ("refuse" in target) return this.#refuse(target.refuse);
    const headers = requestHeaders(link, plan);
    if (!Array.isArray(headers)) return this.#refuse(headers.refuse);
    const method = hop?.method ?? plan.method;
    let body: BodyWriter | undefined;
    let contentLength: number | undefined;
    if (!hop && (BODY_METHODS.includes(method) || link.txLength !== undefined)) ({ body, contentLength } = requestBody(link, plan, headers));
    const tls = this.#options.tls;
    const authority = hostHeader(this.#options);
    // the same checks as an http/1.1 head: no CR, LF or NUL from metadata, tokens where tokens go
    try {
      encodeRequestHead({ method, path: target.path, host: authority, headers, contentLength });
    } catch (e) {
      if (!(e instanceof Http1Error)) throw e;
      return this.#refuse(`request refused: ${e.message}`);
    }
    const out: Header[] = [[":method", method], [":scheme", tls ? "https" : "http"], [":authority", authority], [":path", target.path]];
    let size = 0;
    for (const [n, value] of headers) {
      const lower = n.toLowerCase();
      if (CONNECTION_HEADERS.includes(lower)) return this.#refuse(`request refused: header "${n}" is not allowed in http/2`);
      out.push([lower, value]);
      size += lower.length + value.length + 32;
    }
    if (contentLength !== undefined) out.push(["content-length", String(contentLength)]);
    if (size > 16384) return this.#refuse(`request refused: its headers are ${size} bytes, over 16384`);
    return { method, headers: out, body };
  }

  /** Pulls body payload from the app while the windows allow. */
  pump(): void {
    if (this.#phase !== "sending") return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    this.#pumpAgain = false;
    let pulled: "more" | "none" | "stop";
    try {
      pulled = this.#pull();
    } finally {
      this.#pumping = false;
    }
    if (pulled === "none" && this.#pumpAgain) {
      this.#link.host.setTimer(0, () => {
        try {
          if (this.#phase === "sending") this.pump();
          this.session?.drain();
        } catch (e) {
          this.#faultHere(e);
        }
      });
    }
  }

  #pull(): "more" | "none" | "stop" {
    const s = this.session!;
    const body = this.#request!.body!;
    while (this.#phase === "sending" && !s.blocked) {
      if (!this.#flush()) return "more";
      if (this.#endAfterHeld) {
        this.#localEnded = true;
        this.#awaitResponse();
        return "more";
      }
      if (!body.started) {
        body.started = true;
        if (body.multipart) this.#held.push(body.multipart.head);
        continue;
      }
      const left = body.announced === undefined ? H2_TX_MAX : Math.min(H2_TX_MAX, body.announced - body.sent);
      const pulled = this.#link.tx(left, body.pulled ? 0 : RxFlag.SOM);
      body.pulled = true;
      if (pulled === "stop" || this.#phase !== "sending") return "stop";
      if (pulled === "none") return "none";
      if (pulled.payload.length) this.#held.push(pulled.payload.slice());
      body.sent += pulled.payload.length;
      if (!(pulled.flags & RxFlag.EOM) && body.sent !== body.announced) continue;
      if (body.announced !== undefined && body.sent < body.announced) {
        const reason = `onTx ended the body after ${body.sent} of the ${body.announced} bytes requestTxLength() announced: the transaction is abandoned`;
        this.session?.cancel(this, ErrorCode.CANCEL);
        this.#end({ reason, local: true });
        return "stop";
      }
      if (body.multipart) this.#held.push(body.multipart.tail);
      this.#endAfterHeld = true;
    }
    return "more";
  }

  /** Sends held body bytes while the windows allow; true when none are left. END_STREAM goes with the last. */
  #flush(): boolean {
    const s = this.session!;
    while (this.#held.length) {
      const piece = this.#held[0]!;
      const credit = s.credit(this);
      if (piece.length && credit === 0) return false;
      if (s.blocked) return false;
      const n = Math.min(piece.length, credit);
      const last = n === piece.length && this.#held.length === 1 && this.#endAfterHeld;
      s.sendData(this, piece.subarray(0, n), last);
      if (n === piece.length) this.#held.shift();
      else this.#held[0] = piece.subarray(n);
      if (last) {
        this.#held.length = 0;
        this.#endAfterHeld = false;
        this.#localEnded = true;
        this.#awaitResponse();
        return true;
      }
    }
    if (this.#endAfterHeld) {
      // an empty body, or one whose last bytes went before its end was known
      s.sendData(this, EMPTY, true);
      this.#endAfterHeld = false;
      this.#localEnded = true;
      this.#awaitResponse();
    }
    return true;
  }

  #awaitResponse(): void {
    if (this.#phase === "closed") return;
    this.#phase = "waiting";
    if (this.#status) return; // the response started before the request ended
    const ms = this.#link.responseTimeoutMs;
    this.#clearResponseTimer();
    this.#responseTimer = this.#link.host.setTimer(ms, () => {
      try {
        this.#responseTimer = undefined;
        if (this.#phase === "waiting" && !this.#status) {
          const s = this.session;
          s?.cancel(this, ErrorCode.CANCEL);
          s?.flush();
          this.#end({ reason: `no response head within ${ms} ms`, interrupted: true, replayable: this.#replayable });
        }
      } catch (e) {
        this.#faultHere(e);
      }
    });
  }

  #clearResponseTimer(): void {
    if (this.#responseTimer !== undefined) this.#link.host.clearTimer(this.#responseTimer);
    this.#responseTimer = undefined;
  }

  // ---- response ----

  headers(list: Header[], endStream: boolean): void {
    if (this.#phase !== "sending" && this.#phase !== "waiting") return;
    if (this.#status) {
      // trailers: they end the stream, and are not passed on
      if (!endStream) return this.#violation("a second header block without END_STREAM");
    } else {
      let status = 0;
      for (const [name, value] of list) {
        if (name === ":status") {
          if (value.length !== 3 || !isDigits(value)) return this.#violation(`:status ${JSON.stringify(value)}`);
          status = Number(value);
        } else if (name.startsWith(":")) {
          return this.#violation(`pseudo-header ${name} in a response`);
        } else if (hasAsciiUpper(name)) {
          return this.#violation(`header name ${JSON.stringify(name)} is not lower case`);
        }
      }
      if (!status) return this.#violation("a response without :status");
      if (status < 200) {
        if (endStream) return this.#violation(`an informational ${status} ends the stream`);
        return; // 1xx: the final response follows
      }
      this.#clearResponseTimer();
      this.#status = status;
      if (status >= 300 && status < 400 && status !== 304 && this.#plan.allowRedirects) {
        // a redirect is the binding's business: the stream sees the response it leads to
        this.#location = list.find(([n]) => n === "location")?.[1];
        if (this.#location !== undefined) return endStream ? this.#onEnd() : undefined;
      }
      const link = this.#link;
      for (const [name, value] of list) {
        if (name[0] === ":") continue;
        if (name === "retry-after") this.#retryAfter = value;
        link.receivedHeader(name, value);
        if ((this.#phase as Phase) === "closed") return;
      }
      for (const [code, state] of this.#plan.respMap) {
        if (code === status && !link.state(state)) return;
      }
    }
    if (endStream) this.#onEnd();
  }

  /** DATA for our stream; `length` is what it counted against the windows. */
  data(bytes: Uint8Array, length: number, endStream: boolean): void {
    if (this.#phase !== "sending" && this.#phase !== "waiting") return;
    if (!this.#status) return this.#violation("DATA before the response head");
    // a redirect's body is counted against the windows and dropped
    for (let at = 0; this.#location === undefined && at < bytes.length; at += H2_RX_MAX) {
      const flags = this.#messageOpen ? 0 : RxFlag.SOM;
      this.#messageOpen = true;
      if (!this.#link.rx(bytes.subarray(at, at + H2_RX_MAX), flags)) return;
    }
    if (endStream) return this.#onEnd();
    this.#recvConsumed += length;
    const s = this.session;
    if (s && this.#recvConsumed >= s.streamWindow / 2) {
      s.grant(this, this.#recvConsumed);
      this.recvWindow += this.#recvConsumed;
      this.#recvConsumed = 0;
    }
  }

  #onEnd(): void {
    this.#remoteEnded = true;
    if (this.#location !== undefined) return this.#redirect(this.#location);
    const link = this.#link;
    if (!link.rx(new Uint8Array(0), this.#messageOpen ? RxFlag.EOM : RxFlag.SOM | RxFlag.EOM)) return;
    this.#messageOpen = false;
    const status = this.#status;
    if (!link.perf({ txn_resp_us: Math.round((link.host.now() - this.#requestStart) * 1000), prot_specific: { protocol: "http", resp: status } })) return;
    if (!this.#localEnded) {
      // the response came before our body ended (an early 413, 401...): the rest is not sent
      this.session?.cancel(this, ErrorCode.NO_ERROR);
    }
    this.#afterResponse();
  }

  #afterResponse(): void {
    const s = this.session;
    s?.release(this);
    const link = this.#link;
    const status = this.#status;
    this.#phase = "idle";
    this.#request = undefined;
    if (status === 503 || status === 429) {
      // the server did not act on it and asks us to wait: leave it, and try again no sooner than it says
      const retryAfter = retryAfterMs(this.#retryAfter, link.host.timeValid());
      this.#end({ reason: `HTTP ${status}: the server asks to be left alone for ${retryAfter} ms`, interrupted: true, replayable: true, retryAfterMs: retryAfter });
      s?.settle();
      return;
    }
    // the stream stays on the connection for its next transaction (a requestTx() from the result's handler starts it)
    if (link.done(statusResult(status, this.#plan)) && this.#phase === "idle" && link.pending) this.#startTransaction();
    s?.settle();
  }

  /**
   * Follows a redirect on the same connection, as h1 does: same origin only,
   * at most MAX_REDIRECTS hops, 303 (and 301/302 after POST) as GET, and
   * never a request whose streamed body would have to go again.
   */
  #redirect(location: string): void {
    const link = this.#link;
    const s = this.session;
    // the response came before our body ended: the rest is not sent
    if (!this.#localEnded) s?.cancel(this, ErrorCode.NO_ERROR);
    s?.release(this);
    const status = this.#status;
    const method = this.#request!.method;
    const hadBody = this.#request!.body !== undefined;
    this.#phase = "idle";
    this.#request = undefined;
    const next = status === 303 || ((status === 301 || status === 302) && method === "POST") ? "GET" : method;
    const target = sameOriginTarget(location, this.#options);
    const why = typeof target !== "string" ? target.why : ++this.#redirects > MAX_REDIRECTS ? `more than ${MAX_REDIRECTS} redirects`
      : next === method && hadBody ? "the request body cannot be sent again" : undefined;
    if (why !== undefined) {
      link.host.log(`${link.streamtype}: redirect to ${shown(location)} not followed: ${why}`);
      if (link.done(State.QOS_NACK_REMOTE) && this.#phase === "idle" && link.pending) this.#startTransaction();
    } else if ((this.#prepared = this.#newTransaction({ method: next, path: target as string }))) {
      this.#startTransaction();
    } else {
      // refused (reported to the stream): it leaves the connection
      this.session = undefined;
      s?.detach(this);
    }
    s?.settle();
  }

  #violation(what: string): void {
    const s = this.session;
    s?.cancel(this, ErrorCode.PROTOCOL_ERROR);
    this.#end({ reason: `h2: malformed response: ${what} (stream reset: PROTOCOL_ERROR)`, interrupted: true, replayable: this.#replayable });
  }

  /** This handle's link ends; the connection goes on for the others. */
  #end(end: ConnectionEnd): void {
    if (this.#phase === "closed") return;
    this.leave();
    this.#link.ended(end);
  }

  /**
   * Closed: the response timer cleared, off the session; returns the session
   * it was on. TypeScript-private: XS keeps a #method in every instance.
   */
  private leave(): Session | undefined {
    this.#phase = "closed";
    this.#clearResponseTimer();
    const s = this.session;
    this.session = undefined;
    s?.detach(this);
    return s;
  }

  #refuse(reason: string): undefined {
    this.#phase = "closed";
    this.#link.ended({ reason, local: true });
    return undefined;
  }

  #faultHere(error: unknown): void {
    const s = this.session;
    this.session = undefined;
    this.#phase = "closed";
    s?.detach(this);
    this.#link.fault(error);
  }
}

const EMPTY = new Uint8Array(0);
/** Queued bytes that are sent at once, whatever the turn still writes. */
const FLUSH_AT = 32768;

