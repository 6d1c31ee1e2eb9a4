// The http/1.1 binding: one transaction at a time over a host byte stream,
// kept alive between transactions when the server allows it. Request from
// the policy (method, URL with ${metadata}, headers from metadata and blobs,
// body from onTx with Content-Length or chunked, optionally multipart or
// form-urlencoded); response streamed to onRx in bounded pieces.
//
// CONNECTED is the transport being up, so an app can connect first and ask
// for its body afterwards. What this binding reports when a connection ends
// (interrupted or not, replayable or not) is what keeps a finished request
// from ever being sent twice: see docs/h1.md and docs/states.md.

import type { ByteStream, ConnectOptions, HostError } from "../host.js";
import type { ProtocolBinding, StreamLink, Connection } from "./binding.js";
import { State, RxFlag } from "../ss/states.js";
import { Http1ResponseParser, Http1Error, encodeRequestHead, encodeChunkHeader, CHUNK_END, LAST_CHUNK, type Http1Head } from "../wire/http1/index.js";
import {
  BODY_METHODS, IDEMPOTENT, planOf, requestPath, requestHeaders, requestBody, retryAfterMs, statusResult, shown,
  type Plan, type BodyWriter,
} from "./http-common.js";

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
 * known (see #receive).
 */
type Phase = "connecting" | "idle" | "sending" | "waiting" | "complete" | "closed";

/** A request ready to go: its head, and the framing of its body if it has one. */
interface Request {
  readonly method: string;
  readonly head: Uint8Array;
  readonly body: BodyWriter | undefined;
}

export const h1: ProtocolBinding = {
  name: "h1",
  open: (link, options) => new H1Connection(link, options),
};

class H1Connection implements Connection {
  readonly #link: StreamLink;
  readonly #options: ConnectOptions;
  /** What the policy says about requests, read once per connection: policy reads cost compute on XS. */
  readonly #plan: Plan;
  #stream: ByteStream | undefined;
  #phase: Phase = "connecting";
  #parser: Http1ResponseParser;
  /** A request made before its connection was up (the first one, or a redirect's next hop). */
  #prepared: Request | undefined;
  #body: BodyWriter | undefined;
  #head: Http1Head | undefined;
  #messageOpen = false;
  #redirects = 0;
  #path = "";
  #method = "GET";
  /** Everything of this transaction that reached the server could be sent again. */
  #replayable = true;
  #requestStart = 0;
  #blocked = false;
  /** Inside #pump: a requestTx() from onTx asks for another pass, never a nested one. */
  #pumping = false;
  #pumpAgain = false;
  #responseTimer: unknown;

  constructor(link: StreamLink, options: ConnectOptions) {
    this.#link = link;
    this.#options = options;
    this.#plan = planOf(link.policy);
    this.#parser = this.#newParser();
    // a request that cannot be made is refused before any connection is spent on it
    if (link.pending && !(this.#prepared = this.#newTransaction())) return;
    this.#connect();
  }

  requestTx(): void {
    if (this.#phase === "idle") this.#startTransaction();
    else if (this.#phase === "sending") this.#pump();
    // connecting, waiting, complete: the stream's pending transaction starts when this one is done
  }

  close(): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#clearResponseTimer();
    this.#stream?.close();
    this.#stream = undefined;
  }

  #connect(): void {
    this.#phase = "connecting";
    // Every callback is guarded: an exception out of a host callback would end
    // the process (Node) or abort the XS machine (device). A handler's own
    // throw is contained by the stream already; what gets here is a bug of ours.
    this.#stream = this.#link.host.connect(this.#options, {
      onConnected: (info) => {
        try {
          this.#onConnected(info);
        } catch (e) {
          this.#fault(e);
        }
      },
      onData: (bytes) => {
        try {
          this.#receive(bytes);
        } catch (e) {
          this.#fault(e);
        }
      },
      onWritable: () => {
        try {
          this.#blocked = false;
          if (this.#phase === "sending") this.#pump();
        } catch (e) {
          this.#fault(e);
        }
      },
      onClosed: () => {
        try {
          this.#peerClosed();
        } catch (e) {
          this.#fault(e);
        }
      },
      onError: (error) => {
        try {
          this.#broken(error);
        } catch (e) {
          this.#fault(e);
        }
      },
    });
  }

  #onConnected(info: Parameters<StreamLink["connected"]>[0]): void {
    if (this.#phase === "closed") return;
    this.#phase = "idle";
    // once per stream link: a redirect's new connection reports nothing again
    // (the CONNECTED handler may have started the transaction itself, with requestTx())
    if (this.#link.connected(info) && this.#phase === "idle") this.#startTransaction();
  }

  #newParser(): Http1ResponseParser {
    return new Http1ResponseParser({
      onHead: (head) => this.#onHead(head),
      onBody: (bytes) => this.#onBody(bytes),
      onEnd: () => this.#onEnd(),
    });
  }

  // ---- request ----

  /** Sends the request made before the connection was up, else a new one if the stream has a transaction pending. */
  #startTransaction(): void {
    const request = this.#prepared ?? (this.#link.pending ? this.#newTransaction() : undefined);
    this.#prepared = undefined;
    if (request) this.#begin(request);
  }

  /** The request for a new transaction, or undefined when it was refused (ended() reported). */
  #newTransaction(): Request | undefined {
    const link = this.#link;
    this.#redirects = 0;
    this.#replayable = true;
    const target = requestPath(link, this.#plan);
    if ("refuse" in target) return this.#refuse(target.refuse);
    this.#path = target.path;
    const method = this.#plan.method;
    return this.#request(method, BODY_METHODS.includes(method) || link.txLength !== undefined);
  }

  /** The request for the current path, or undefined when it was refused (ended() reported). */
  #request(method: string, hasBody: boolean): Request | undefined {
    const headers = requestHeaders(this.#link, this.#plan);
    if (!Array.isArray(headers)) return this.#refuse(headers.refuse);
    let body: BodyWriter | undefined;
    let contentLength: number | undefined;
    if (hasBody) {
      ({ body, contentLength } = requestBody(this.#link, this.#plan, headers));
      body.chunked = contentLength === undefined;
    }
    let head: Uint8Array;
    try {
      head = encodeRequestHead({
        method, path: this.#path, host: this.#hostHeader(), headers, contentLength,
        chunked: hasBody && contentLength === undefined,
      });
    } catch (e) {
      if (!(e instanceof Http1Error)) throw e;
      return this.#refuse(`request refused: ${e.message}`);
    }
    if (head.length > H1_MAX_REQUEST_HEAD) {
      return this.#refuse(`request refused: its head is ${head.length} bytes, over the ${H1_MAX_REQUEST_HEAD}-byte limit`);
    }
    return { method, head, body };
  }

  /** Sends a request: its head, then its body from onTx. */
  #begin(request: Request): void {
    const link = this.#link;
    this.#requestStart = link.host.now();
    this.#method = request.method;
    if (!IDEMPOTENT.includes(request.method)) this.#replayable = false;
    this.#body = request.body;
    this.#head = undefined;
    this.#messageOpen = false;
    if (request.method === "HEAD") this.#parser.expectNoBody();
    this.#write(request.head);
    if (request.body) {
      this.#phase = "sending";
      this.#pump();
    } else {
      this.#awaitResponse();
    }
  }

  /** The request is out: its whole response head must arrive within the context's responseTimeoutMs. */
  #awaitResponse(): void {
    this.#phase = "waiting";
    const ms = this.#link.responseTimeoutMs;
    this.#responseTimer = this.#link.host.setTimer(ms, () => {
      try {
        this.#responseTimer = undefined;
        if (this.#phase === "waiting" && !this.#head) this.#interrupted(`no complete response head within ${ms} ms`);
      } catch (e) {
        this.#fault(e);
      }
    });
  }

  #clearResponseTimer(): void {
    if (this.#responseTimer !== undefined) this.#link.host.clearTimer(this.#responseTimer);
    this.#responseTimer = undefined;
  }

  #hostHeader(): string {
    const { host, port, tls } = this.#options;
    const name = host.includes(":") ? `[${host}]` : host; // an IPv6 literal
    return port === (tls ? 443 : 80) ? name : `${name}:${port}`;
  }

  /** Pulls body payload from the app while the host takes it. */
  #pump(): void {
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
    // onTx said "not now" and asked again (lws' requestTx() from tx): come back from the timer queue
    if (pulled === "none" && this.#pumpAgain) {
      this.#link.host.setTimer(0, () => {
        try {
          if (this.#phase === "sending") this.#pump();
        } catch (e) {
          this.#fault(e);
        }
      });
    }
  }

  /** Pulls until the host's buffer fills or the body ends ("more"), onTx gives nothing ("none"), or the link goes ("stop"). */
  #pull(): "more" | "none" | "stop" {
    const body = this.#body!;
    while (this.#phase === "sending" && !this.#blocked) {
      if (!body.started) {
        body.started = true;
        if (body.multipart) this.#writeBody(body, body.multipart.head);
        continue;
      }
      const left = body.announced === undefined ? H1_TX_MAX : Math.min(H1_TX_MAX, body.announced - body.sent);
      const pulled = this.#link.tx(left, body.pulled ? 0 : RxFlag.SOM);
      body.pulled = true;
      if (pulled === "stop" || this.#phase !== "sending") return "stop";
      if (pulled === "none") return "none";
      if (pulled.payload.length) this.#writeBody(body, pulled.payload);
      body.sent += pulled.payload.length;
      // the announced length ends the body, EOM or not
      if (!(pulled.flags & RxFlag.EOM) && body.sent !== body.announced) continue;
      if (body.announced !== undefined && body.sent < body.announced) {
        this.close();
        this.#link.ended({
          reason: `onTx ended the body after ${body.sent} of the ${body.announced} bytes requestTxLength() announced: the transaction is abandoned`,
          local: true,
        });
        return "stop";
      }
      if (body.multipart) this.#writeBody(body, body.multipart.tail);
      if (body.chunked) this.#write(LAST_CHUNK);
      this.#awaitResponse();
    }
    return "more";
  }

  #writeBody(body: BodyWriter, bytes: Uint8Array): void {
    if (body.chunked) {
      this.#write(encodeChunkHeader(bytes.length));
      this.#write(bytes);
      this.#write(CHUNK_END);
    } else {
      this.#write(bytes);
    }
  }

  #write(bytes: Uint8Array): void {
    if (this.#stream && !this.#stream.write(bytes)) this.#blocked = true;
  }

  // ---- response ----

  #receive(bytes: Uint8Array): void {
    // the parser takes one response at a time; what it leaves belongs to the next one
    const stream = this.#stream;
    for (let at = 0; at < bytes.length && this.#stream === stream && this.#phase !== "closed";) {
      if (this.#phase !== "sending" && this.#phase !== "waiting") {
        // after a complete response (a surplus byte, a body on a 204, a second
        // response nobody asked for): the transaction stays done, the connection goes
        this.#finish(`${bytes.length - at} bytes from the server while no request was outstanding: connection closed`);
        return;
      }
      try {
        at += this.#parser.push(bytes.subarray(at));
      } catch (e) {
        if (!(e instanceof Http1Error)) throw e;
        this.#interrupted(`malformed response: ${e.message}`);
        return;
      }
    }
    if (this.#phase !== "complete" || this.#stream !== stream) return;
    // nothing stray came with the response: the next request (or redirect hop) may go
    this.#phase = "idle";
    this.#startTransaction();
  }

  #onHead(head: Http1Head): void {
    this.#clearResponseTimer();
    this.#head = head;
    const link = this.#link;
    if (this.#isRedirect(head)) return; // its body is discarded, see #onEnd
    for (const [name, value] of head.headers) link.receivedHeader(name, value);
    for (const [status, state] of this.#plan.respMap) {
      if (status === head.status && !link.state(state as number)) return;
    }
  }

  #onBody(bytes: Uint8Array): void {
    if (this.#phase === "closed" || !this.#head || this.#isRedirect(this.#head)) return;
    for (let at = 0; at < bytes.length; at += H1_RX_MAX) {
      const flags = this.#messageOpen ? 0 : RxFlag.SOM;
      this.#messageOpen = true;
      if (!this.#link.rx(bytes.subarray(at, at + H1_RX_MAX), flags)) return;
    }
  }

  #onEnd(): void {
    const head = this.#head!;
    const link = this.#link;
    // A response that ends before our request body did (an early 413, 401...)
    // leaves the rest of the body unsent: the server would read what we send
    // next as body, so this connection cannot carry another request.
    const keepAlive = head.keepAlive && this.#phase !== "sending";
    this.#phase = "complete";
    if (this.#isRedirect(head)) {
      this.#redirect(head, keepAlive);
      return;
    }
    if (!link.rx(new Uint8Array(0), this.#messageOpen ? RxFlag.EOM : RxFlag.SOM | RxFlag.EOM)) return;
    this.#messageOpen = false;
    if (!link.perf({ txn_resp_us: Math.round((link.host.now() - this.#requestStart) * 1000), prot_specific: { protocol: "http", resp: head.status } })) return;
    if (head.status === 503 || head.status === 429) {
      // the server did not act on it and asks us to wait: leave it, and try again no sooner than it says
      const retryAfter = retryAfterMs(head.headers.find(([n]) => n === "retry-after")?.[1] ?? "", link.host.timeValid());
      this.close();
      link.ended({ reason: `HTTP ${head.status}: the server asks to be left alone for ${retryAfter} ms`, interrupted: true, replayable: true, retryAfterMs: retryAfter });
      return;
    }
    const result = statusResult(head.status, this.#plan);
    // false: the stream closed this connection (DISCONNECT_ME, destroy())
    if (link.done(result) && !keepAlive) this.#finish();
  }

  #isRedirect(head: Http1Head): boolean {
    return head.status >= 300 && head.status < 400 && head.status !== 304 && this.#plan.allowRedirects &&
      head.headers.some(([n]) => n === "location");
  }

  /** Follows a redirect to a path on the same origin: the policy alone names endpoints. */
  #redirect(head: Http1Head, keepAlive: boolean): void {
    const location = head.headers.find(([n]) => n === "location")![1];
    const target = sameOriginTarget(location, this.#options);
    const method = this.#method;
    // 303 (and, as browsers do, 301/302 after POST) continue with GET, without the body
    const next = head.status === 303 || ((head.status === 301 || head.status === 302) && method === "POST") ? "GET" : method;
    // 307/308 (or 301/302 after PUT...) repeat the request, body included: the body
    // was streamed from onTx and is gone, and sending the request without it would
    // have the server act on an empty body
    const why = typeof target !== "string" ? target.why : ++this.#redirects > MAX_REDIRECTS ? `more than ${MAX_REDIRECTS} redirects`
      : next === method && this.#body ? "the request body cannot be sent again" : undefined;
    if (why !== undefined) {
      this.#link.host.log(`${this.#link.streamtype}: redirect to ${shown(location)} not followed: ${why}`);
      if (this.#link.done(State.QOS_NACK_REMOTE) && !keepAlive) this.#finish();
      return;
    }
    this.#path = target as string;
    const request = this.#request(next, false);
    if (!request) return;
    this.#prepared = request;
    if (keepAlive) return; // sent once the bytes at hand are known to hold nothing more (#receive)
    // the server closes this connection: the next hop gets a fresh one to the same origin
    this.#stream?.close();
    this.#parser = this.#newParser();
    this.#connect();
  }

  #peerClosed(): void {
    if (this.#phase === "closed") return;
    if (this.#phase === "waiting" && this.#head) {
      // a body that runs until the connection closes ends here
      try {
        this.#parser.finish();
      } catch (e) {
        if (!(e instanceof Http1Error)) throw e;
        this.#interrupted(`connection closed mid-response: ${e.message}`);
        return;
      }
      this.#finish(); // (a no-op when the body's end finished the connection already)
      return;
    }
    if (this.#phase === "sending") this.#interrupted("the server closed the connection while the request was being sent");
    else if (this.#phase === "waiting") this.#interrupted("the server closed the connection before the response head");
    else this.#finish();
  }

  #broken(error: HostError): void {
    if (this.#phase === "closed") return;
    const inTransaction = this.#phase === "sending" || this.#phase === "waiting" || this.#prepared !== undefined;
    this.close();
    this.#link.ended({
      reason: `${error.kind}: ${error.message}`, error: error.kind,
      interrupted: inTransaction, replayable: this.#replayable,
    });
  }

  /** Ends this connection in the middle of a transaction. */
  #interrupted(reason: string): void {
    if (this.#phase === "closed") return;
    this.close();
    this.#link.ended({ reason, interrupted: true, replayable: this.#replayable });
  }

  /** Ends this connection with nothing left half done. */
  #finish(reason?: string): void {
    if (this.#phase === "closed") return;
    this.close();
    this.#link.ended({ reason });
  }

  /** Refuses a request this connection cannot carry: ended before it is sent, without a network retry. */
  #refuse(reason: string): undefined {
    this.close();
    this.#link.ended({ reason, local: true });
    return undefined;
  }

  #fault(error: unknown): void {
    this.close();
    this.#link.fault(error);
  }
}

/**
 * The path (and query) `location` names on the origin we are connected to,
 * or why it is not followed. The authority is read as RFC 3986 has it
 * ([userinfo@]host[:port], host possibly an [IPv6] literal); userinfo is
 * refused outright, as browsers warn about it: "http://a:1@b/" is host b.
 */
function sameOriginTarget(location: string, options: ConnectOptions): string | { why: string } {
  let path: string;
  if (location.startsWith("/") && !location.startsWith("//")) {
    path = location;
  } else {
    const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(location);
    if (!m) return { why: "not an absolute URL or path" };
    const scheme = m[1]!.toLowerCase();
    if (scheme !== "http" && scheme !== "https") return { why: `scheme ${scheme}` };
    const authority = m[2]!;
    if (authority.includes("@")) return { why: "it carries userinfo" };
    const a = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]*))(?::(\d*))?$/.exec(authority);
    if (!a) return { why: "malformed authority" };
    const host = (a[1] ?? a[2]!).toLowerCase();
    const tls = scheme === "https";
    const port = a[3] ? Number(a[3]) : tls ? 443 : 80;
    if (tls !== !!options.tls || host !== options.host.toLowerCase() || port !== options.port) return { why: "another origin" };
    path = m[3] ? (m[3].startsWith("/") ? m[3] : `/${m[3]}`) : "/";
  }
  const hash = path.indexOf("#");
  if (hash >= 0) path = path.slice(0, hash);
  if (/[^\x21-\x7e]/.test(path)) return { why: "characters a request target cannot hold" };
  return path;
}

Object.freeze(h1); // preloaded into flash on the device (manifest.json)
