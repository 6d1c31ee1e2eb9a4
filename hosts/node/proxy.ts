// The Secure Streams proxy: it alone holds the policy (and the blobs) and
// makes the onward connections; clients (SSPC, src/sspc, or lws' own) reach
// it over a Unix domain socket or TCP, one link per stream, speaking lws'
// serialized Secure Streams (src/wire/sss, docs/serialization.md).
//
// Memory per link is bounded both ways (docs/serialization.md):
// - to the client: payload goes out only within the credit the client grants
//   (STREAMTYPE's initial credit, then its TXCR_UPDATEs), and while the
//   client's socket buffer is over a high-water mark or the credit is spent,
//   the link's onward connections stop being read (TCP holds the server back);
// - from the client: the proxy grants tx credit (TXCR_UPDATE) as its onward
//   connection takes the payload, and stops reading a client that sends past
//   it (lws' clients do not count credit), so the queue stays near the grant.

import net from "node:net";
import fs from "node:fs";
import type { ByteStream, ConnectOptions, Host, StreamHandlers as HostStreamHandlers } from "../../src/host.js";
import type { Policy } from "../../src/policy/reader.js";
import { SecureStreams } from "../../src/ss/context.js";
import { SSError } from "../../src/ss/errors.js";
import { Ret, RxFlag, State, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream } from "../../src/ss/stream.js";
import type { ProtocolBinding } from "../../src/protocols/binding.js";
import { createH1Binding } from "../../src/protocols/h1.js";
import { createH2Binding } from "../../src/protocols/h2.js";
import { ws } from "../../src/protocols/ws.js";
import { createMqttBinding } from "../../src/protocols/mqtt.js";
import { utf8Decode, utf8Encode } from "../../src/util/utf8.js";
import {
  ProxyBoundDecoder, SssError, TIMEOUT_CANCEL, type ProxyBound,
  encodeCreateResult, encodeMetadata, encodePerf, encodeRxCredit, encodeRxHead, encodeState, MAX_FRAME_PAYLOAD, RX_HEAD, writeRxHead,
} from "../../src/wire/sss/index.js";
import { NodeHost } from "./host.js";

export interface ProxyOptions {
  readonly policy: Policy;
  /** The host the onward connections are made with (its blobs, DNS); default a new NodeHost. */
  readonly host?: NodeHost;
  /**
   * Makes the bindings of one client link's context (each link has its own,
   * as in lws: one link per stream). Default: h1 (no idle pool: a link's
   * context has one stream), h2, ws and mqtt.
   */
  readonly bindings?: () => readonly ProtocolBinding[];
  /** Tx credit granted to each client, bytes of payload queued at the proxy (default 64 KiB). */
  readonly txCredit?: number;
  /** Bytes waiting in a client's socket buffer above which onward reads stop (default 64 KiB). */
  readonly highWater?: number;
  /** A link that has not named its streamtype by then is closed (lws: 3 s). */
  readonly handshakeMs?: number;
  /** The streams' responseTimeoutMs. */
  readonly responseTimeoutMs?: number;
  /** Illegal transitions throw (tests). */
  readonly strict?: boolean;
}

export const PROXY_TX_CREDIT = 64 * 1024;
export const PROXY_HIGH_WATER = 128 * 1024;
export const PROXY_HANDSHAKE_MS = 3000;
/** Payload flags of a message's first piece, and of its last. */
const START_FLAGS = RxFlag.SOM | RxFlag.RELATED_START | RxFlag.POLL;
const END_FLAGS = RxFlag.EOM | RxFlag.RELATED_END;
/** Most spare rx buffers kept (each a whole frame: RX_HEAD + MAX_FRAME_PAYLOAD bytes). */
const PROXY_SPARE_BUFFERS = 64;

/** Where to listen. */
export type ProxyListen =
  | { readonly path: string; readonly mode?: number }
  | { readonly abstract: string }
  | { readonly host: string; readonly port: number };

/** What the proxy holds at a moment, to measure that it stays bounded. */
export interface ProxyStats {
  readonly links: number;
  /** Client payload queued for onward connections. */
  readonly txQueued: number;
  /** Frames to clients waiting for credit. */
  readonly rxHeld: number;
  /** Bytes in the clients' socket buffers. */
  readonly socketBuffered: number;
}

export class SsProxy {
  readonly host: NodeHost;
  readonly policy: Policy;
  /** @internal */
  readonly options: ProxyOptions;
  readonly #servers: net.Server[] = [];
  readonly #links = new Set<ProxyLink>();
  /** Frame-sized rx buffers whose write has finished, for the next frame (no allocation, no GC, per 64 KiB). */
  readonly #spare: Buffer[] = [];

  /**
   * @internal A buffer for one RX_PAYLOAD frame of up to `size` payload
   * bytes, its head included (RX_HEAD + size): a spare one when it is frame-sized.
   */
  takeBuffer(size: number): Buffer {
    if (size === MAX_FRAME_PAYLOAD) return this.#spare.pop() ?? Buffer.allocUnsafeSlow(RX_HEAD + size);
    return Buffer.allocUnsafe(RX_HEAD + size);
  }

  /** @internal A buffer from takeBuffer() the socket has written. */
  giveBack(buffer: Buffer): void {
    if (buffer.length === RX_HEAD + MAX_FRAME_PAYLOAD && this.#spare.length < PROXY_SPARE_BUFFERS) this.#spare.push(buffer);
  }

  constructor(options: ProxyOptions) {
    this.options = options;
    this.policy = options.policy;
    this.host = options.host ?? new NodeHost();
  }

  /** Starts listening; resolves to what clients connect to (a path, "@name", or "host:port"). */
  async listen(where: ProxyListen): Promise<string> {
    const server = net.createServer({ allowHalfOpen: false }, (socket) => this.#accept(socket));
    this.#servers.push(server);
    if ("path" in where) {
      removeStaleSocket(where.path);
      // owner-only from the moment it exists: no window for another user to connect
      const old = process.umask(0o177);
      try {
        await listening(server, { path: where.path });
      } finally {
        process.umask(old);
      }
      fs.chmodSync(where.path, where.mode ?? 0o600);
      return where.path;
    }
    if ("abstract" in where) {
      await listening(server, { path: `\0${where.abstract}` });
      return `@${where.abstract}`;
    }
    await listening(server, { host: where.host, port: where.port });
    const a = server.address() as net.AddressInfo;
    return `${a.address}:${a.port}`;
  }

  /** Stops listening and drops every link (their streams are destroyed). */
  async close(): Promise<void> {
    for (const l of [...this.#links]) l.close("the proxy is closing");
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.#servers.length = 0;
  }

  stats(): ProxyStats {
    let txQueued = 0, rxHeld = 0, socketBuffered = 0;
    for (const l of this.#links) {
      txQueued += l.txQueued;
      rxHeld += l.rxHeld;
      socketBuffered += l.socketBuffered;
    }
    return { links: this.#links.size, txQueued, rxHeld, socketBuffered };
  }

  #accept(socket: net.Socket): void {
    const link = new ProxyLink(this, socket, () => this.#links.delete(link));
    this.#links.add(link);
  }
}

function listening(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** A socket file left by a proxy that is gone would make listen() fail: remove it, never a live one or a non-socket. */
function removeStaleSocket(path: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
  fs.unlinkSync(path);
}

/** A queued piece of client payload. */
interface TxItem { payload: Uint8Array; flags: number; at: number }

/**
 * One client link: one stream. A host of its own wraps the proxy's, so that
 * the link can stop reading its own onward connections.
 */
class ProxyLink implements Host {
  readonly #proxy: SsProxy;
  readonly #socket: net.Socket;
  readonly #gone: () => void;
  readonly #decoder = new ProxyBoundDecoder();
  readonly #onward = new Set<ByteStream & { pause?(): void; resume?(): void }>();
  readonly #tag: string;
  #ss: SecureStreams | undefined;
  #stream: SecureStream | undefined;
  #closed = false;
  #handshake: ReturnType<typeof setTimeout> | undefined;
  /** Payload bytes the client lets us send. */
  #rxCredit = 0;
  /** Frames (each as its pieces) waiting for credit, or behind one that waits. */
  readonly #held: { chunks: Uint8Array[]; payload: number; bytes: number; spare?: Buffer }[] = [];
  #heldBytes = 0;
  /** Rx payload of one message gathered within a tick: sent as one frame, not one per binding read. */
  #rxBuffer: Buffer | undefined;
  #rxBytes = 0;
  #rxFlags = 0;
  #rxFlushDue = false;
  /** The most payload gathered into one frame: a quarter of the client's first credit, at most what a frame holds. */
  #rxMax = MAX_FRAME_PAYLOAD;
  #paused = false;
  #corked = false;
  readonly #tx: TxItem[] = [];
  #txQueued = 0;
  /** Bytes taken by the onward connection and not yet granted back to the client. */
  #txTaken = 0;
  /** The binding asked for payload and got none: requestTx() when some comes. */
  #starved = false;
  /** ONWARD_CONNECT asked the stream for a message the client has not yet begun to send. */
  #asked = false;
  #lengthHint: number | undefined;
  /** Metadata values last sent to the client, to send only what changed. */
  readonly #sentMeta = new Map<string, string>();
  #headerMeta: string[] | undefined;

  constructor(proxy: SsProxy, socket: net.Socket, gone: () => void) {
    this.#proxy = proxy;
    this.#socket = socket;
    this.#gone = gone;
    this.#tag = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : "local";
    socket.setNoDelay?.(true);
    socket.on("data", (data: Buffer) => this.#receive(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)));
    socket.on("drain", () => this.#relieve());
    socket.on("error", (e) => this.close(`socket error: ${e.message}`, true));
    socket.on("close", () => this.close("the client closed the link", true));
    this.#handshake = setTimeout(() => this.close(`no streamtype within ${this.#handshakeMs} ms`), this.#handshakeMs);
  }

  get #handshakeMs(): number { return this.#proxy.options.handshakeMs ?? PROXY_HANDSHAKE_MS; }
  get txQueued(): number { return this.#txQueued; }
  get rxHeld(): number { return this.#heldBytes; }
  get socketBuffered(): number { return this.#socket.writableLength; }

  // ---- Host: the proxy's own, with this link's onward connections tracked ----

  get blobs() { return this.#proxy.host.blobs; }
  setTimer(ms: number, cb: () => void) { return this.#proxy.host.setTimer(ms, cb); }
  clearTimer(id: unknown) { this.#proxy.host.clearTimer(id); }
  now() { return this.#proxy.host.now(); }
  timeValid() { return this.#proxy.host.timeValid(); }
  random() { return this.#proxy.host.random(); }
  log(message: string) { this.#proxy.host.log(message); }

  connect(options: ConnectOptions, handlers: HostStreamHandlers): ByteStream {
    const forget = () => this.#onward.delete(stream);
    // each handler called on `handlers` itself: a binding's handlers may be a class instance (its methods on the prototype)
    const stream: ByteStream & { pause?(): void; resume?(): void } = this.#proxy.host.connect(options, {
      onData: (bytes) => handlers.onData(bytes),
      onWritable: () => handlers.onWritable(),
      onConnected: (info) => {
        if (this.#paused) stream.pause?.();
        handlers.onConnected(info);
      },
      onClosed: () => { forget(); handlers.onClosed(); },
      onError: (e) => { forget(); handlers.onError(e); },
    });
    this.#onward.add(stream);
    const close = stream.close.bind(stream);
    stream.close = () => { forget(); close(); };
    return stream;
  }

  // ---- the link ----

  close(why: string, quiet = false): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#handshake);
    if (!quiet || this.#stream === undefined) this.log(`proxy link ${this.#tag}${this.#stream ? ` (${this.#stream.streamtype})` : ""}: closed: ${why}`);
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.destroy();
    this.#ss?.destroyAll();
    this.#onward.clear();
    this.#tx.length = 0;
    this.#held.length = 0;
    this.#rxBuffer = undefined;
    this.#txQueued = this.#heldBytes = this.#rxBytes = 0;
    this.#socket.destroy();
    this.#gone();
  }

  #receive(bytes: Uint8Array): void {
    if (this.#closed) return;
    try {
      this.#decoder.push(bytes, (m) => {
        this.#message(m);
        return !this.#closed;
      });
    } catch (e) {
      if (e instanceof SssError) return this.close(`bad frame from the client: ${e.message}`);
      this.close(`internal error: ${(e as Error).message}`);
    }
  }

  #message(m: ProxyBound): void {
    if (!this.#stream) {
      if (m.type !== "streamtype") return this.close(`a ${m.type} frame before the streamtype`);
      return this.#create(m.streamtype, m.txCredit);
    }
    const s = this.#stream;
    switch (m.type) {
      case "streamtype":
        return this.close("a second streamtype on one link");
      case "onward-connect":
        // anything queued belongs to a transaction that is over
        this.#tx.length = 0;
        this.#txQueued = 0;
        this.#starved = false;
        this.#asked = true;
        if (this.#lengthHint !== undefined) s.requestTxLength(this.#lengthHint);
        else s.requestTx();
        this.#lengthHint = undefined;
        return;
      case "destroying":
        return this.close("the client destroyed the stream", true);
      case "tx":
        if (m.payload.length === 0 && !(m.flags & (RxFlag.SOM | RxFlag.EOM))) return;
        this.#tx.push({ payload: m.payload, flags: m.flags, at: 0 });
        this.#txQueued += m.payload.length;
        // a client that ignores its credit (lws' do) is not read until the queue drains
        if (this.#txQueued > (this.#proxy.options.txCredit ?? PROXY_TX_CREDIT) * 2) this.#socket.pause();
        {
          // the client's requestTx() on a live connection (ws, MQTT) arrives as the message itself, as in
          // lws: one requestTx() per message, except the one ONWARD_CONNECT already asked for
          const som = (m.flags & RxFlag.SOM) !== 0;
          const ask = this.#starved || som && !this.#asked;
          if (som) this.#asked = false;
          if (ask) {
            this.#starved = false;
            s.requestTx();
          }
        }
        return;
      case "metadata": {
        const value = utf8Decode(m.value, 0, m.value.length);
        try {
          if (value === undefined) throw new SSError("bad-metadata", "not UTF-8");
          s.setMetadata(m.name, value);
          this.#sentMeta.set(m.name, value);
        } catch (e) {
          if (!(e instanceof SSError)) throw e;
          this.log(`proxy link ${this.#tag} (${s.streamtype}): metadata "${m.name}" dropped: ${e.message}`);
        }
        return;
      }
      case "txcr":
        this.#rxCredit += m.delta;
        return this.#flush();
      case "timeout":
        if (m.ms === TIMEOUT_CANCEL) s.cancelTimeout();
        else s.startTimeout(m.ms);
        return;
      case "length-hint":
        this.#lengthHint = m.length;
        return;
    }
  }

  #create(streamtype: string, rxCredit: number): void {
    clearTimeout(this.#handshake);
    const policy = this.#proxy.policy;
    const st = policy.streamtype(streamtype);
    if (!st) {
      this.log(`proxy link ${this.#tag}: streamtype "${streamtype}" refused: the policy has no such streamtype`);
      this.#socket.end(encodeCreateResult(1));
      this.#closed = true;
      this.#gone();
      return;
    }
    this.#rxCredit = rxCredit;
    this.#rxMax = Math.max(1024, Math.min(MAX_FRAME_PAYLOAD, Math.floor(rxCredit / 4)));
    this.#write(encodeCreateResult(0, st.number("client_buflen") ?? 0, [streamtype]));
    const o = this.#proxy.options;
    this.#ss = new SecureStreams(this, policy, {
      // h1 hands on each read whole, not in 4 KiB pieces (they are gathered into frames here anyway),
      // and its reads are lent: #onRx copies each piece at once
      bindings: o.bindings?.() ?? [createH1Binding({ idleMs: 0, rxMax: 1 << 20, lendReads: true }), createH2Binding(), ws, createMqttBinding()],
      strict: o.strict,
      ...(o.responseTimeoutMs === undefined ? {} : { responseTimeoutMs: o.responseTimeoutMs }),
    });
    try {
      this.#stream = this.#ss.create(streamtype, {
        onState: (state, ack) => this.#onState(state, ack),
        onRx: (payload, flags) => this.#onRx(payload, flags),
        onTx: (max, flags) => this.#onTx(max, flags),
      });
    } catch (e) {
      return this.close(`creating the stream failed: ${(e as Error).message}`);
    }
    // what the client may send before the onward connection takes it (after CREATING, where lws' clients look for it)
    this.#write(encodeRxCredit(this.#proxy.options.txCredit ?? PROXY_TX_CREDIT));
  }

  #onState(state: number, ack: number): HandlerReturn {
    if (this.#closed || state === State.DESTROYING) return Ret.OK;
    this.#flushRx();
    this.#sendMetadata();
    this.#queue(encodeState(state, ack), 0);
    return Ret.OK;
  }

  #onRx(payload: Uint8Array, flags: number): HandlerReturn {
    if (this.#closed) return Ret.OK;
    if (flags & RxFlag.PERF_JSON) {
      this.#flushRx();
      this.#queue(encodePerf(payload), 0);
      return Ret.OK;
    }
    // a new message or an ended one: what is gathered goes first
    // an empty piece is a marker (lws' EOM after the body): a frame of its own, so that the
    // client's app sees it apart, as in-process (a DISCONNECT_ME before it means no EOM)
    if (flags & RxFlag.SOM || this.#rxFlags & RxFlag.EOM || payload.length === 0) this.#flushRx();
    if (flags & RxFlag.SOM) this.#sendMetadata();
    if (payload.length === 0) {
      this.#queueChunks([encodeRxHead(0, flags, Math.round(this.now() * 1000))], 0);
      return Ret.OK;
    }
    // copied (a binding's payload is only lent for the call) into frames filled to the brim: a piece
    // that does not fit goes on in the next frame, the start flags on its first part, the end flags on its last
    flags &= ~RxFlag.RIDESHARE;
    let at = 0;
    do {
      if (this.#rxBuffer && RX_HEAD + this.#rxBytes === this.#rxBuffer.length) this.#flushRx();
      if (!this.#rxBuffer) {
        // sized for a run of reads like this one, not for the largest frame
        this.#rxBuffer = this.#proxy.takeBuffer(Math.min(this.#rxMax, Math.max((payload.length - at) * 16, 4096)));
        this.#rxFlags = at === 0 ? flags & ~END_FLAGS : flags & ~(START_FLAGS | END_FLAGS);
      }
      const take = Math.min(this.#rxBuffer.length - RX_HEAD - this.#rxBytes, payload.length - at);
      this.#rxBuffer.set(take === payload.length ? payload : payload.subarray(at, at + take), RX_HEAD + this.#rxBytes);
      this.#rxBytes += take;
      at += take;
    } while (at < payload.length);
    this.#rxFlags |= flags & END_FLAGS;
    if (!this.#rxFlushDue) {
      this.#rxFlushDue = true;
      process.nextTick(() => this.#flushRx());
    }
    return Ret.OK;
  }

  #flushRx(): void {
    this.#rxFlushDue = false;
    const buffer = this.#rxBuffer;
    if (!buffer || this.#closed) return;
    const payload = this.#rxBytes;
    this.#rxBuffer = undefined;
    this.#rxBytes = 0;
    // the head goes in front of the payload gathered behind it: one array, one chunk to write
    writeRxHead(buffer, 0, payload, this.#rxFlags, Math.round(this.now() * 1000));
    this.#rxFlags = 0;
    this.#queueChunks([buffer.subarray(0, RX_HEAD + payload)], payload, buffer);
  }

  #onTx(max: number, flags: number): { payload: Uint8Array; flags: number } | HandlerReturn {
    const head = this.#tx[0];
    if (!head) {
      this.#starved = true;
      return Ret.TX_DONT_SEND;
    }
    if (flags & RxFlag.SOM && head.at > 0) {
      // a retry wants the message from its start; the client sent it once and the proxy keeps no copy
      this.log(`proxy link ${this.#tag} (${this.#stream?.streamtype}): a body cannot be sent again through the proxy`);
      return Ret.DISCONNECT_ME;
    }
    const piece = head.payload.subarray(head.at, head.at + max);
    const first = head.at === 0;
    head.at += piece.length;
    const last = head.at >= head.payload.length;
    if (last) this.#tx.shift();
    this.#txQueued -= piece.length;
    this.#txTaken += piece.length;
    const credit = this.#proxy.options.txCredit ?? PROXY_TX_CREDIT;
    if (this.#txTaken >= credit / 4 || this.#tx.length === 0) {
      this.#write(encodeRxCredit(this.#txTaken));
      this.#txTaken = 0;
    }
    if (this.#txQueued <= credit) this.#socket.resume();
    const out = (first ? head.flags & RxFlag.SOM : 0) | (last ? head.flags & RxFlag.EOM : 0);
    return { payload: piece, flags: out };
  }

  /** Response-header metadata that changed since last sent: before the state or payload it belongs with (as lws). */
  #sendMetadata(): void {
    const s = this.#stream;
    if (!s) return;
    if (!this.#headerMeta) {
      this.#headerMeta = [];
      const st = this.#proxy.policy.streamtype(s.streamtype)!;
      for (const [name, header] of st.pairs("metadata")) if (header) this.#headerMeta.push(name as string);
    }
    for (const name of this.#headerMeta) {
      const value = s.getMetadata(name);
      if (value === undefined || this.#sentMeta.get(name) === value) continue;
      this.#sentMeta.set(name, value);
      this.#queue(encodeMetadata(false, name, utf8Encode(value)), 0);
    }
  }

  /** Sends a frame, or holds it (and what follows) while the client's credit cannot cover its payload. */
  #queue(frame: Uint8Array, payload: number): void {
    this.#queueChunks([frame], payload);
  }

  /** `spare`: the buffer under the last chunk, given back to the proxy once written. */
  #queueChunks(chunks: Uint8Array[], payload: number, spare?: Buffer): void {
    if (this.#held.length === 0 && payload <= this.#rxCredit) {
      this.#rxCredit -= payload;
      this.#writeAll(chunks, spare);
    } else {
      const bytes = chunks.reduce((n, c) => n + c.length, 0);
      this.#held.push({ chunks, payload, bytes, spare });
      this.#heldBytes += bytes;
    }
    this.#pressure();
  }

  #flush(): void {
    while (this.#held.length > 0) {
      const frame = this.#held[0]!;
      if (frame.payload > this.#rxCredit) break;
      this.#rxCredit -= frame.payload;
      this.#held.shift();
      this.#heldBytes -= frame.bytes;
      this.#writeAll(frame.chunks, frame.spare);
    }
    this.#relieve();
  }

  #writeAll(chunks: Uint8Array[], spare: Buffer | undefined): void {
    for (let i = 0; i < chunks.length - 1; i++) this.#write(chunks[i]!);
    this.#write(chunks[chunks.length - 1]!, spare && (() => this.#proxy.giveBack(spare)));
  }

  #write(frame: Uint8Array, written?: () => void): void {
    if (this.#closed) return;
    // the frames of one tick (an onward read is many of them) leave in one writev
    if (!this.#corked) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        this.#socket.uncork();
      });
    }
    this.#socket.write(frame, written);
  }

  /** Stops reading the onward connections while the client is behind. */
  #pressure(): void {
    if (this.#paused || this.#closed) return;
    if (this.#held.length === 0 && this.#socket.writableLength <= (this.#proxy.options.highWater ?? PROXY_HIGH_WATER)) return;
    this.#paused = true;
    for (const s of this.#onward) s.pause?.();
  }

  #relieve(): void {
    if (!this.#paused || this.#closed) return;
    if (this.#held.length > 0 || this.#socket.writableLength > (this.#proxy.options.highWater ?? PROXY_HIGH_WATER)) return;
    this.#paused = false;
    for (const s of this.#onward) s.resume?.();
  }
}
