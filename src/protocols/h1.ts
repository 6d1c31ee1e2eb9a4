// The http/1.1 binding: one transaction at a time over a host byte stream,
// kept alive between transactions when the server allows it, and handed to
// the next stream of the same trust context once its stream is done with it
// (a per-context pool, bounded; see docs/h1.md). Request from
// the policy (method, URL with ${metadata}, headers from metadata and blobs,
// body from onTx with Content-Length or chunked, optionally multipart or
// form-urlencoded); response streamed to onRx in bounded pieces.
//
// CONNECTED is the transport being up, so an app can connect first and ask
// for its body afterwards. What this binding reports when a connection ends
// (interrupted or not, replayable or not) is what keeps a finished request
// from ever being sent twice: see docs/h1.md and docs/states.md.

import type { ByteStream, ConnectOptions, HostError, StreamHandlers } from "../host.js";
import type { ProtocolBinding, StreamLink, Connection } from "./binding.js";
import type { StreamType } from "../policy/reader.js";
import { State, RxFlag } from "../ss/states.js";
import {
  Http1ResponseParser, Http1Error, encodeRequestHead, encodeChunkHeader, CHUNK_END, LAST_CHUNK, type Http1Head,
} from "../wire/http1/index.js";
import {
  BODY_METHODS, IDEMPOTENT, hostHeader, planOf, requestPath, requestHeaders, requestBody, retryAfterMs, statusResult, shown, sameOriginTarget,
  type Plan, type BodyWriter,
} from "./http-common.js";
import { sameOptions } from "./same-options.js";

export { sameOptions };

/** The policy's request plan, and h1's request of a fixed plan once made (for the Host it was made for). */
type H1Plan = Plan & { made?: { readonly host: string; readonly path: string; readonly request: Request } };

/** Largest payload handed to onRx at once. */
export const H1_RX_MAX = 4096;
/** Largest payload asked of onTx at once. */
export const H1_TX_MAX = 4096;
/** Longest request head sent: URL and headers come from metadata, and the server's own limit is often 8 KiB. */
export const H1_MAX_REQUEST_HEAD = 16384;
/** Redirects followed for one transaction. */
const MAX_REDIRECTS = 5;

/**
 * connecting: the transport is not up yet. idle: no transaction. sending:
 * the request body is being pulled from onTx. waiting: the request is out,
 * the response is coming. complete: a response just ended; what else
 * arrived with it is stray, and the next transaction starts once that is
 * known (see receive()). releasing: the stream let go of it just as its
 * response completed; it goes to the pool once that is known. parked: idle
 * in the pool, between streams.
 */
type Phase = "connecting" | "idle" | "sending" | "waiting" | "complete" | "releasing" | "parked" | "closed";

/** A request ready to go: its head, and the framing of its body if it has one. */
interface Request {
  readonly method: string;
  readonly head: Uint8Array;
  readonly body: BodyWriter | undefined;
}

/** How many idle connections the h1 binding keeps for the next streams, and how long; how large its rx pieces are. */
export interface H1BindingOptions {
  /** Idle connections kept per trust context (the same connect options, every field). Default 1; 0 turns reuse off. */
  readonly idlePerOrigin?: number;
  /** Idle connections kept in all; the oldest goes first. Default 2. */
  readonly idleTotal?: number;
  /** How long an idle connection is kept, in ms. Default 3000; 0 turns reuse off. */
  readonly idleMs?: number;
  /**
   * Largest piece of a body handed to onRx (default H1_RX_MAX). ss-proxy,
   * which gathers the pieces into frames of 64 KiB, takes each read whole.
   */
  readonly rxMax?: number;
  /**
   * The streams' apps read each onRx payload during the call only (ss-proxy
   * copies it into its frames): the connections' reads are lent
   * (ConnectOptions.lendReads); the parser copies what it keeps of a read.
   */
  readonly lendReads?: boolean;
}

/** Defaults that fit an ESP32: an idle TLS connection holds its TLS state and buffers. */
export const H1_IDLE_DEFAULTS = Object.freeze({ idlePerOrigin: 1, idleTotal: 2, idleMs: 3000 });

/**
 * The h1 binding for one SecureStreams context, with its own pool of idle
 * connections (there is no module state: on the device, modules are frozen
 * in flash). Give each context its own.
 */
export function createH1Binding(options: H1BindingOptions = {}): H1Binding {
  return new H1Pool(options);
}

export interface H1Binding extends ProtocolBinding {
  /** Idle connections in the pool now. */
  readonly idle: number;
  /** Closes every idle connection (the app is shutting down, or a test is done). */
  closeIdle(): void;
}

class H1Pool implements H1Binding {
  readonly name = "h1" as const;
  readonly #perOrigin: number;
  readonly #total: number;
  readonly #idleMs: number;
  /** @internal */
  readonly rxMax: number;
  /** @internal */
  readonly lendReads: boolean;
  /** Idle connections, oldest first. */
  readonly #idle: H1Connection[] = [];
  /**
   * What the policy says about each streamtype's requests, read once: a
   * policy read costs about 1,000 computrons on XS, and a stream per
   * transaction would read it all again each time. By StreamType, not
   * name: after a policy update, a streamtype of the same name may say
   * otherwise. An entry goes with its StreamType, once no stream and no
   * pooled connection uses it (see SecureStreams).
   */
  readonly #plans = new WeakMap<StreamType, H1Plan>();

  constructor(o: H1BindingOptions) {
    this.#idleMs = o.idleMs ?? H1_IDLE_DEFAULTS.idleMs;
    this.#perOrigin = this.#idleMs > 0 ? o.idlePerOrigin ?? H1_IDLE_DEFAULTS.idlePerOrigin : 0;
    this.#total = this.#perOrigin > 0 ? o.idleTotal ?? H1_IDLE_DEFAULTS.idleTotal : 0;
    this.rxMax = Math.max(1, o.rxMax ?? H1_RX_MAX);
    this.lendReads = o.lendReads === true;
  }

  get idle(): number {
    return this.#idle.length;
  }

  plan(link: StreamLink): H1Plan {
    let plan = this.#plans.get(link.policy);
    if (!plan) this.#plans.set(link.policy, (plan = planOf(link.policy)));
    return plan;
  }

  open(link: StreamLink, options: ConnectOptions): Connection {
    // A request that could not be sent again never goes out on a connection
    // from the pool: the server may have closed it, unseen, while it waited.
    if (this.#total > 0 && this.plan(link).replayable && link.txLength === undefined) {
      for (let i = this.#idle.length - 1; i >= 0; i--) {
        const conn = this.#idle[i]!;
        if (conn.host !== link.host || !sameOptions(conn.options, options)) continue;
        this.#idle.splice(i, 1);
        conn.adopt(link);
        return conn;
      }
    }
    return new H1Connection(link, options, this);
  }

  /** Takes a clean idle connection its stream let go of; false when the bounds say no (the caller closes it). */
  park(conn: H1Connection): boolean {
    if (this.#total === 0) return false;
    let same = 0;
    for (const c of this.#idle) if (c.host === conn.host && sameOptions(c.options, conn.options)) same++;
    if (same >= this.#perOrigin) return false;
    if (this.#idle.length >= this.#total) this.#idle.shift()!.discard();
    this.#idle.push(conn);
    conn.parked(this.#idleMs);
    return true;
  }

  /** The connection left the pool (expired, closed by the server, or stray bytes). */
  remove(conn: H1Connection): void {
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  closeIdle(): void {
    while (this.#idle.length) this.#idle.pop()!.discard();
  }
}

/**
 * One byte stream and the transactions on it. It is also the handlers of
 * its byte stream (the on* methods): on XS a closure costs ~10 slots for
 * each connection, a method none. For the same reason its methods are
 * TypeScript-private, on the prototype, and only its fields are #private:
 * XS puts each #method in every instance.
 */
class H1Connection implements Connection, StreamHandlers {
  #link: StreamLink;
  readonly #pool: H1Pool;
  readonly #options: ConnectOptions;
  /** What the policy says about the stream's requests (the pool reads it once per streamtype). */
  #plan: H1Plan;
  #stream: ByteStream | undefined;
  /** The byte stream is up (onConnected came): what a stream adopting this connection reports as CONNECTED. */
  #info: Parameters<StreamLink["connected"]>[0] | undefined;
  /** KEEP_ALIVE, ANSWERED, ... (below the class): one field for eight booleans, each a slot per instance on XS. */
  #bits = KEEP_ALIVE | REPLAYABLE;
  /** Responses completed on this byte stream: after one, the server may close it while it waits. */
  #served = 0;
  /** The request sent last, kept for one resend on a fresh connection if the server closed a kept-alive one. */
  #sent: Request | undefined;
  /**
   * Set when the connection is parked, and left pending when a stream adopts
   * it: a stale one finds nothing to do when it fires, and one still pending
   * at the next park is set again for the rest when it fires. A host timer
   * set and cleared for each transaction costs ~500 computrons on XS.
   */
  #idleTimer: unknown;
  /** When the parked connection expires (host.now() ms); undefined when not parked. */
  #idleBy: number | undefined;
  #phase: Phase = "connecting";
  #parser: Http1ResponseParser;
  /** A request made before its connection was up (the first one, or a redirect's next hop). */
  #prepared: Request | undefined;
  #head: Http1Head | undefined;
  #redirects = 0;
  #path = "";
  #requestStart = 0;
  #responseTimer: unknown;
  /** The Host header of every request on this connection (its options never change). */
  readonly #host: string;

  constructor(link: StreamLink, options: ConnectOptions, pool: H1Pool) {
    this.#link = link;
    this.#pool = pool;
    this.#options = options;
    this.#host = hostHeader(options);
    this.#plan = pool.plan(link);
    this.#parser = this.newParser();
    // a request that cannot be made is refused before any connection is spent on it
    if (link.pending && !(this.#prepared = this.newTransaction())) return;
    this.connect();
  }

  get host(): StreamLink["host"] { return this.#link.host; }
  get options(): ConnectOptions { return this.#options; }

  requestTx(): void {
    if (this.#phase === "idle") this.startTransaction();
    else if (this.#phase === "sending") this.pump();
    // connecting, waiting, complete: the stream's pending transaction starts when this one is done
  }

  /** The stream lets go of this connection: to the pool if it is clean, else closed. */
  close(): void {
    const phase = this.#phase;
    if (phase === "closed" || phase === "parked" || phase === "releasing") return;
    // Clean: up, kept alive, between transactions, nothing half sent or half
    // read. An adopted connection still waiting to report CONNECTED has sent
    // nothing: the request it holds was never written.
    const clean = (this.#bits & KEEP_ALIVE) !== 0 && this.#stream !== undefined &&
      ((phase === "idle" || phase === "complete") && this.#prepared === undefined || phase === "connecting" && this.#info !== undefined);
    if (!clean) return this.shut();
    this.#prepared = undefined;
    // a response just ended inside receive(): parked once the bytes at hand are known to hold nothing more
    if (phase === "complete") this.#phase = "releasing";
    else if (!this.#pool.park(this)) this.shut();
  }

  /** The pool took this connection: it waits for the next stream, at most idleMs. */
  parked(idleMs: number): void {
    this.#phase = "parked";
    this.clearResponseTimer();
    this.#head = undefined;
    this.#sent = undefined;
    this.#idleBy = this.#link.host.now() + idleMs;
    // a timer still pending from an earlier park fires first, and is set again for the rest
    if (this.#idleTimer === undefined) this.setIdleTimer(idleMs);
  }

  private setIdleTimer(ms: number): void {
    this.#idleTimer = this.#link.host.setTimer(ms, () => {
      try {
        this.#idleTimer = undefined;
        if (this.#phase !== "parked" || this.#idleBy === undefined) return;
        const left = this.#idleBy - this.#link.host.now();
        if (left > 1) this.setIdleTimer(left);
        else this.discard();
      } catch (e) {
        this.fault(e);
      }
    });
  }

  /** A new stream takes this idle connection: CONNECTING was reported, CONNECTED comes from a promise job. */
  adopt(link: StreamLink): void {
    this.#idleBy = undefined; // its timer finds nothing to do when it fires
    this.#link = link;
    this.#plan = this.#pool.plan(link);
    this.#phase = "connecting";
    this.#redirects = 0;
    this.#bits &= ~MESSAGE_OPEN;
    if (link.pending && !(this.#prepared = this.newTransaction())) return;
    // Not from inside open(): the stream attaches this connection when open()
    // returns. A promise job runs as soon as the caller's code is done, in the
    // same turn (a 0 ms timer is a crank on XS and a millisecond on Node).
    void Promise.resolve([this, link] as const).then(adopted);
  }

  /** The adopting stream's CONNECTED, once open() has returned; it spent no time on DNS, TCP or TLS. */
  adopted(link: StreamLink): void {
    try {
      if (this.#link === link && this.#phase === "connecting") this.connected({ timings: {}, peer: this.#info!.peer });
    } catch (e) {
      this.fault(e);
    }
  }

  /** Leaves the pool for good. */
  discard(): void {
    this.#pool.remove(this);
    this.shut();
  }

  private shut(): void {
    if (this.#phase === "closed") return;
    if (this.#phase === "parked") this.#pool.remove(this);
    this.#phase = "closed";
    this.clearResponseTimer();
    this.clearIdleTimer();
    this.#stream?.close();
    this.#stream = undefined;
  }

  private clearIdleTimer(): void {
    if (this.#idleTimer !== undefined) this.#link.host.clearTimer(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#idleBy = undefined;
  }

  private connect(): void {
    this.#phase = "connecting";
    this.#info = undefined;
    this.#bits |= KEEP_ALIVE;
    this.#served = 0;
    this.#stream = this.#link.host.connect(this.#pool.lendReads ? { ...this.#options, lendReads: true } : this.#options, this);
  }

  // The byte stream's handlers. Every one is guarded: an exception out of a
  // host callback would end the Node program or abort the XS machine
  // (device). A handler's own throw is contained by the stream already; what
  // gets here is a bug of ours. The host calls nothing after close(), so a
  // byte stream this connection replaced (a redirect, a resend) is silent.

  onConnected(info: Parameters<StreamLink["connected"]>[0]): void {
    try {
      this.connected(info);
    } catch (e) {
      this.fault(e);
    }
  }

  onData(bytes: Uint8Array): void {
    try {
      // an idle connection has nothing to say: whatever it sends, it leaves the pool
      if (this.#phase === "parked") this.discard();
      else this.receive(bytes);
    } catch (e) {
      this.fault(e);
    }
  }

  onWritable(): void {
    try {
      this.#bits &= ~BLOCKED;
      if (this.#phase === "sending") this.pump();
    } catch (e) {
      this.fault(e);
    }
  }

  onClosed(): void {
    try {
      if (this.#phase === "parked") this.discard();
      else this.peerClosed();
    } catch (e) {
      this.fault(e);
    }
  }

  onError(error: HostError): void {
    try {
      if (this.#phase === "parked") this.discard();
      else this.broken(error);
    } catch (e) {
      this.fault(e);
    }
  }

  private newParser(): Http1ResponseParser {
    return new Http1ResponseParser({
      onHead: (head) => this.onHead(head),
      onBody: (bytes) => this.onBody(bytes),
      onEnd: () => this.onEnd(),
    });
  }

  private connected(info: Parameters<StreamLink["connected"]>[0]): void {
    if (this.#phase === "closed") return;
    this.#phase = "idle";
    this.#info ??= info;
    // once per stream link: a redirect's new connection reports nothing again
    // (the CONNECTED handler may have started the transaction itself, with requestTx())
    if (this.#link.connected(info) && this.#phase === "idle") this.startTransaction();
  }


  // ---- request ----

  /** Sends the request made before the connection was up, else a new one if the stream has a transaction pending. */
  private startTransaction(): void {
    const request = this.#prepared ?? (this.#link.pending ? this.newTransaction() : undefined);
    this.#prepared = undefined;
    if (request) this.begin(request);
  }

  /** The request for a new transaction, or undefined when it was refused (ended() reported). */
  private newTransaction(): Request | undefined {
    const link = this.#link;
    const plan = this.#plan;
    this.#redirects = 0;
    this.#bits = (this.#bits | REPLAYABLE) & ~RESENT;
    const hasBody = BODY_METHODS.includes(plan.method) || link.txLength !== undefined;
    // a request the policy alone makes (no metadata, no blob, no body) is the same every time
    const fixed = plan.fixed && !hasBody;
    const host = fixed ? this.#host : "";
    if (fixed && plan.made?.host === host) {
      this.#path = plan.made.path;
      return plan.made.request;
    }
    const target = requestPath(link, plan);
    if ("refuse" in target) return this.refuse(target.refuse);
    this.#path = target.path;
    const request = this.request(plan.method, hasBody);
    if (fixed && request) plan.made = { host, path: target.path, request };
    return request;
  }

  /** The request for the current path, or undefined when it was refused (ended() reported). */
  private request(method: string, hasBody: boolean): Request | undefined {
    const headers = requestHeaders(this.#link, this.#plan);
    if (!Array.isArray(headers)) return this.refuse(headers.refuse);
    let body: BodyWriter | undefined;
    let contentLength: number | undefined;
    if (hasBody) {
      ({ body, contentLength } = requestBody(this.#link, this.#plan, headers));
      body.chunked = contentLength === undefined;
    }
    let head: Uint8Array;
    try {
      head = encodeRequestHead({
        method, path: this.#path, host: this.#host, headers, contentLength,
        chunked: hasBody && contentLength === undefined,
      });
    } catch (e) {
      if (!(e instanceof Http1Error)) throw e;
      return this.refuse(`request refused: ${e.message}`);
    }
    if (head.length > H1_MAX_REQUEST_HEAD) {
      return this.refuse(`request refused: its head is ${head.length} bytes, over the ${H1_MAX_REQUEST_HEAD}-byte limit`);
    }
    return { method, head, body };
  }

  /** Sends a request: its head, then its body from onTx. */
  private begin(request: Request): void {
    const link = this.#link;
    if (this.#plan.perf) this.#requestStart = link.host.now();
    if (!IDEMPOTENT.includes(request.method)) this.#bits &= ~REPLAYABLE;
    this.#sent = request;
    this.#bits &= ~(ANSWERED | MESSAGE_OPEN);
    this.#head = undefined;
    if (request.method === "HEAD") this.#parser.expectNoBody();
    this.write(request.head);
    if (request.body) {
      this.#phase = "sending";
      this.pump();
    } else {
      this.awaitResponse();
    }
  }

  /** The request is out: its whole response head must arrive within the context's responseTimeoutMs. */
  private awaitResponse(): void {
    this.#phase = "waiting";
    const ms = this.#link.responseTimeoutMs;
    this.#responseTimer = this.#link.host.setTimer(ms, () => {
      try {
        this.#responseTimer = undefined;
        if (this.#phase === "waiting" && !this.#head) this.interrupted(`no complete response head within ${ms} ms`);
      } catch (e) {
        this.fault(e);
      }
    });
  }

  private clearResponseTimer(): void {
    if (this.#responseTimer !== undefined) this.#link.host.clearTimer(this.#responseTimer);
    this.#responseTimer = undefined;
  }

  /** Pulls body payload from the app while the host takes it. */
  private pump(): void {
    if (this.#bits & PUMPING) {
      this.#bits |= PUMP_AGAIN;
      return;
    }
    this.#bits = (this.#bits | PUMPING) & ~PUMP_AGAIN;
    let pulled: "more" | "none" | "stop";
    try {
      pulled = this.pull();
    } finally {
      this.#bits &= ~PUMPING;
    }
    // onTx said "not now" and asked again (lws' requestTx() from tx): come back from the timer queue
    if (pulled === "none" && (this.#bits & PUMP_AGAIN)) {
      this.#link.host.setTimer(0, () => {
        try {
          if (this.#phase === "sending") this.pump();
        } catch (e) {
          this.fault(e);
        }
      });
    }
  }

  /** Pulls until the host's buffer fills or the body ends ("more"), onTx gives nothing ("none"), or the link goes ("stop"). */
  private pull(): "more" | "none" | "stop" {
    const body = this.#sent!.body!;
    while (this.#phase === "sending" && !(this.#bits & BLOCKED)) {
      if (!body.started) {
        body.started = true;
        if (body.multipart) this.writeBody(body, body.multipart.head);
        continue;
      }
      const left = body.announced === undefined ? H1_TX_MAX : Math.min(H1_TX_MAX, body.announced - body.sent);
      const pulled = this.#link.tx(left, body.pulled ? 0 : RxFlag.SOM);
      body.pulled = true;
      if (pulled === "stop" || this.#phase !== "sending") return "stop";
      if (pulled === "none") return "none";
      if (pulled.payload.length) this.writeBody(body, pulled.payload);
      body.sent += pulled.payload.length;
      // the announced length ends the body, EOM or not
      if (!(pulled.flags & RxFlag.EOM) && body.sent !== body.announced) continue;
      if (body.announced !== undefined && body.sent < body.announced) {
        this.shut();
        this.#link.ended({
          reason: `onTx ended the body after ${body.sent} of the ${body.announced} bytes requestTxLength() announced: the transaction is abandoned`,
          local: true,
        });
        return "stop";
      }
      if (body.multipart) this.writeBody(body, body.multipart.tail);
      if (body.chunked) this.write(LAST_CHUNK);
      this.awaitResponse();
    }
    return "more";
  }

  private writeBody(body: BodyWriter, bytes: Uint8Array): void {
    if (body.chunked) {
      this.write(encodeChunkHeader(bytes.length));
      this.write(bytes);
      this.write(CHUNK_END);
    } else {
      this.write(bytes);
    }
  }

  private write(bytes: Uint8Array): void {
    if (this.#stream && !this.#stream.write(bytes)) this.#bits |= BLOCKED;
  }

  // ---- response ----

  private receive(bytes: Uint8Array): void {
    // the parser takes one response at a time; what it leaves belongs to the next one
    const stream = this.#stream;
    for (let at = 0; at < bytes.length && this.#stream === stream && this.#phase !== "closed";) {
      if (this.#phase === "releasing") {
        // the stream let go of the connection after its response; more came with it
        this.shut();
        return;
      }
      if (this.#phase !== "sending" && this.#phase !== "waiting") {
        // after a complete response (a surplus byte, a body on a 204, a second
        // response nobody asked for): the transaction stays done, the connection goes
        this.finish(`${bytes.length - at} bytes from the server while no request was outstanding: connection closed`);
        return;
      }
      this.#bits |= ANSWERED;
      try {
        at += this.#parser.push(bytes.subarray(at));
      } catch (e) {
        if (!(e instanceof Http1Error)) throw e;
        this.interrupted(`malformed response: ${e.message}`);
        return;
      }
    }
    if (this.#stream !== stream) return;
    if (this.#phase === "releasing") {
      if (!this.#pool.park(this)) this.shut();
      return;
    }
    if (this.#phase !== "complete") return;
    // nothing stray came with the response: the next request (or redirect hop) may go
    this.#phase = "idle";
    this.startTransaction();
  }

  private onHead(head: Http1Head): void {
    this.clearResponseTimer();
    this.#head = head;
    const link = this.#link;
    if (isRedirect(head, this.#plan)) return; // its body is discarded, see onEnd()
    if (this.#plan.headerMetadata) for (const [name, value] of head.headers) link.receivedHeader(name, value);
    // indexed: on XS, for-of and destructuring run the array iterator, even over an empty map
    const respMap = this.#plan.respMap;
    for (let k = 0; k < respMap.length; k++) {
      if (respMap[k]![0] === head.status && !link.state(respMap[k]![1])) return;
    }
  }

  private onBody(bytes: Uint8Array): void {
    if (this.#phase === "closed" || !this.#head || isRedirect(this.#head, this.#plan)) return;
    const max = this.#pool.rxMax;
    for (let at = 0; at < bytes.length; at += max) {
      const flags = this.#bits & MESSAGE_OPEN ? 0 : RxFlag.SOM;
      this.#bits |= MESSAGE_OPEN;
      if (!this.#link.rx(bytes.length <= max ? bytes : bytes.subarray(at, at + max), flags)) return;
    }
  }

  private onEnd(): void {
    const head = this.#head!;
    const link = this.#link;
    // A response that ends before our request body did (an early 413, 401...)
    // leaves the rest of the body unsent: the server would read what we send
    // next as body, so this connection cannot carry another request.
    const keepAlive = head.keepAlive && this.#phase !== "sending";
    this.#bits = keepAlive ? this.#bits | KEEP_ALIVE : this.#bits & ~KEEP_ALIVE;
    this.#served++;
    this.#phase = "complete";
    if (isRedirect(head, this.#plan)) {
      this.redirect(head, keepAlive);
      return;
    }
    if (!link.rx(new Uint8Array(0), this.#bits & MESSAGE_OPEN ? RxFlag.EOM : RxFlag.SOM | RxFlag.EOM)) return;
    this.#bits &= ~MESSAGE_OPEN;
    if (this.#plan.perf && !link.perf({ txn_resp_us: Math.round((link.host.now() - this.#requestStart) * 1000), prot_specific: { protocol: "http", resp: head.status } })) return;
    if (head.status === 503 || head.status === 429) {
      // the server did not act on it and asks us to wait: leave it, and try again no sooner than it says
      const retryAfter = retryAfterMs(head.headers.find(([n]) => n === "retry-after")?.[1] ?? "", link.host.timeValid());
      this.shut();
      link.ended({ reason: `HTTP ${head.status}: the server asks to be left alone for ${retryAfter} ms`, interrupted: true, replayable: true, retryAfterMs: retryAfter });
      return;
    }
    const result = statusResult(head.status, this.#plan);
    // false: the stream closed this connection (DISCONNECT_ME, destroy())
    if (link.done(result) && !keepAlive) this.finish();
  }

  /** Follows a redirect to a path on the same origin: the policy alone names endpoints. */
  private redirect(head: Http1Head, keepAlive: boolean): void {
    const location = head.headers.find(([n]) => n === "location")![1];
    const target = sameOriginTarget(location, this.#options);
    const method = this.#sent!.method;
    // 303 (and, as browsers do, 301/302 after POST) continue with GET, without the body
    const next = head.status === 303 || ((head.status === 301 || head.status === 302) && method === "POST") ? "GET" : method;
    // 307/308 (or 301/302 after PUT...) repeat the request, body included: the body
    // was streamed from onTx and is gone, and sending the request without it would
    // have the server act on an empty body
    const why = typeof target !== "string" ? target.why : ++this.#redirects > MAX_REDIRECTS ? `more than ${MAX_REDIRECTS} redirects`
      : next === method && this.#sent!.body ? "the request body cannot be sent again" : undefined;
    if (why !== undefined) {
      this.#link.host.log(`${this.#link.streamtype}: redirect to ${shown(location)} not followed: ${why}`);
      if (this.#link.done(State.QOS_NACK_REMOTE) && !keepAlive) this.finish();
      return;
    }
    this.#path = target as string;
    const request = this.request(next, false);
    if (!request) return;
    this.#prepared = request;
    if (keepAlive) return; // sent once the bytes at hand are known to hold nothing more (receive())
    // the server closes this connection: the next hop gets a fresh one to the same origin
    this.#stream?.close();
    this.#parser = this.newParser();
    this.connect();
  }

  private peerClosed(): void {
    if (this.#phase === "closed") return;
    if (this.#phase === "waiting" && this.#head) {
      // a body that runs until the connection closes ends here
      try {
        this.#parser.finish();
      } catch (e) {
        if (!(e instanceof Http1Error)) throw e;
        this.interrupted(`connection closed mid-response: ${e.message}`);
        return;
      }
      this.finish(); // (a no-op when the body's end finished the connection already)
      return;
    }
    if (this.#phase === "sending") this.interrupted("the server closed the connection while the request was being sent");
    else if (this.resendFresh()) return;
    else if (this.#phase === "waiting") this.interrupted("the server closed the connection before the response head");
    else this.finish();
  }

  private broken(error: HostError): void {
    if (this.#phase === "closed") return;
    if (error.kind === "reset" && this.resendFresh()) return;
    const inTransaction = this.#phase === "sending" || this.#phase === "waiting" || this.#prepared !== undefined;
    this.shut();
    this.#link.ended({
      reason: `${error.kind}: ${error.message}`, error: error.kind,
      interrupted: inTransaction, replayable: (this.#bits & REPLAYABLE) !== 0,
    });
  }

  /**
   * The server closed a kept-alive connection as our request went out, before
   * a byte of answer (it timed the connection out while the request was on
   * its way): an idempotent request without a body goes once more, on a
   * fresh connection, as RFC 9112 9.3.1 allows. Nothing of a body is ever
   * sent twice: it came from onTx and is gone.
   */
  private resendFresh(): boolean {
    const request = this.#sent;
    if (this.#phase !== "waiting" || this.#bits & (ANSWERED | RESENT) || !(this.#bits & REPLAYABLE) || this.#served === 0 ||
      !request || request.body || !IDEMPOTENT.includes(request.method)) return false;
    this.#bits |= RESENT;
    this.#link.host.log(`${this.#link.streamtype}: the server closed a kept-alive connection before answering: the ${request.method} goes again on a fresh one`);
    this.clearResponseTimer();
    this.#stream?.close();
    this.#parser = this.newParser();
    this.#prepared = request;
    this.connect();
    return true;
  }

  /** Ends this connection in the middle of a transaction. */
  private interrupted(reason: string): void {
    if (this.#phase === "closed") return;
    this.shut();
    this.#link.ended({ reason, interrupted: true, replayable: (this.#bits & REPLAYABLE) !== 0 });
  }

  /** Ends this connection with nothing left half done. */
  private finish(reason?: string): void {
    if (this.#phase === "closed") return;
    this.shut();
    this.#link.ended({ reason });
  }

  /** Refuses a request this connection cannot carry: ended before it is sent, without a network retry. */
  private refuse(reason: string): undefined {
    this.shut();
    this.#link.ended({ reason, local: true });
    return undefined;
  }

  private fault(error: unknown): void {
    this.shut();
    this.#link.fault(error);
  }
}

// H1Connection's #bits
/** Another request may follow on this byte stream (nothing said otherwise yet). */
const KEEP_ALIVE = 1;
/** A byte of the current response arrived. */
const ANSWERED = 2;
/** The request sent last went once more, on a fresh connection (resendFresh). */
const RESENT = 4;
/** onRx had the SOM of the current response. */
const MESSAGE_OPEN = 8;
/** Everything of this transaction that reached the server could be sent again. */
const REPLAYABLE = 16;
/** write() said the host's buffer is full: wait for onWritable. */
const BLOCKED = 32;
/** Inside pump(): a requestTx() from onTx asks for another pass (PUMP_AGAIN), never a nested one. */
const PUMPING = 64;
const PUMP_AGAIN = 128;

/** A redirect the policy lets us follow (its target is checked when it is followed). */
function isRedirect(head: Http1Head, plan: Plan): boolean {
  return head.status >= 300 && head.status < 400 && head.status !== 304 && plan.allowRedirects &&
    head.headers.some(([n]) => n === "location");
}

/** H1Connection.adopted from a promise job: a module function, where a bound method would be a closure per connection. */
function adopted(job: readonly [H1Connection, StreamLink]): void {
  job[0].adopted(job[1]);
}
