// The http/1.1 binding: one transaction at a time over a host byte stream,
// kept alive between transactions when the server allows it. Request from
// the policy (method, URL with ${metadata}, headers from metadata and blobs,
// body from onTx with Content-Length or chunked, optionally multipart or
// form-urlencoded); response streamed to onRx in bounded pieces.

import type { ByteStream, ConnectOptions, ConnectTimings, HostError } from "../host.js";
import { BLOB } from "../host.js";
import type { ProtocolBinding, StreamLink, Connection } from "./binding.js";
import type { StreamType } from "../policy/reader.js";
import { State, RxFlag } from "../ss/states.js";
import { Http1ResponseParser, Http1Error, encodeRequestHead, encodeChunkHeader, CHUNK_END, LAST_CHUNK, type Http1Head } from "../wire/http1/index.js";
import { utf8Encode } from "../util/utf8.js";

/** Largest payload handed to onRx at once. */
export const H1_RX_MAX = 4096;
/** Largest payload asked of onTx at once. */
export const H1_TX_MAX = 4096;
/** Redirects followed for one transaction. */
const MAX_REDIRECTS = 5;

type Phase = "connecting" | "idle" | "sending" | "waiting" | "closed";

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
  /** A transaction is wanted as soon as the connection is idle. */
  #wanted = true;
  #parser: Http1ResponseParser;
  #body: BodyWriter | undefined;
  #head: Http1Head | undefined;
  #messageOpen = false;
  #redirects = 0;
  #path = "";
  /** The method of a redirect hop waiting for its new connection. */
  #redirectMethod: string | undefined;
  #connectedReported = false;
  /** The transport's connect report, handed to link.established() once HTTP answers. */
  #transport: { readonly timings: ConnectTimings; readonly peer?: string } | undefined;
  #establishedReported = false;
  /** The method of the request on the wire, and whether it carried a body (which cannot be sent again). */
  #method = "GET";
  #bodySent = false;
  #requestStart = 0;
  #blocked = false;

  constructor(link: StreamLink, options: ConnectOptions) {
    this.#link = link;
    this.#options = options;
    this.#plan = planOf(link.policy);
    this.#parser = this.#newParser();
    this.#connect();
  }

  requestTx(): void {
    if (this.#phase === "idle") this.#startTransaction();
    else if (this.#phase === "sending") this.#pump();
    else this.#wanted = true;
  }

  /** A handler may close us while we call it: check after each call out. */
  #isClosed(): boolean {
    return this.#phase === "closed";
  }

  close(): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#stream?.close();
    this.#stream = undefined;
  }

  #connect(): void {
    this.#phase = "connecting";
    this.#stream = this.#link.host.connect(this.#options, {
      onConnected: (info) => {
        if (this.#phase === "closed") return;
        this.#phase = "idle";
        const method = this.#redirectMethod;
        this.#redirectMethod = undefined;
        if (method) {
          this.#send(method, false);
          return;
        }
        // Not link.established() yet: as in lws (ss-h1.c resets its retry count at
        // ESTABLISHED_CLIENT_HTTP), the stream counts as up once HTTP answers, so a
        // server that accepts connections but answers garbage uses up the retries.
        this.#transport = info;
        if (this.#wanted) this.#startTransaction();
      },
      onData: (bytes) => this.#receive(bytes),
      onWritable: () => {
        this.#blocked = false;
        if (this.#phase === "sending") this.#pump();
      },
      onClosed: () => this.#peerClosed(),
      onError: (error) => this.#broken(error),
    });
  }

  #newParser(): Http1ResponseParser {
    return new Http1ResponseParser({
      onHead: (head) => this.#onHead(head),
      onBody: (bytes) => this.#onBody(bytes),
      onEnd: () => this.#onEnd(),
    });
  }

  // ---- request ----

  #startTransaction(): void {
    this.#wanted = false;
    const link = this.#link;
    const method = this.#plan.method;
    const url = link.expand(this.#plan.url, encodeURIComponent);
    this.#path = url.startsWith("/") ? url : `/${url}`;
    this.#redirects = 0;
    this.#send(method, method === "POST" || method === "PUT" || method === "PATCH" || link.txLength !== undefined);
  }

  /** Writes the request head for the current path, then the body from onTx when `hasBody`. */
  #send(method: string, hasBody: boolean): void {
    const link = this.#link;
    const plan = this.#plan;
    const headers: [string, string][] = [...link.headerMetadata(), ...this.#blobHeaders()];
    let contentLength: number | undefined;
    if (hasBody) {
      this.#body = new BodyWriter(plan.multipart ? this.#multipart(plan.multipart) : undefined);
      if (plan.formUrlencoded) headers.push(["Content-Type", "application/x-www-form-urlencoded"]);
      if (this.#body.multipart) headers.push(["Content-Type", `multipart/form-data; boundary=${this.#body.multipart.boundary}`]);
      if (link.txLength !== undefined && !plan.noContentLength) contentLength = link.txLength + this.#body.overhead();
      this.#body.chunked = contentLength === undefined;
    } else {
      this.#body = undefined;
    }
    let head: Uint8Array;
    try {
      head = encodeRequestHead({
        method, path: this.#path, host: this.#hostHeader(), headers, contentLength,
        chunked: hasBody && contentLength === undefined,
      });
    } catch (e) {
      // a header or path the policy or blobs made unsendable: nothing goes out
      this.#fail({ kind: "other", message: `request refused: ${(e as Error).message}` });
      return;
    }
    this.#requestStart = link.host.now();
    this.#method = method;
    this.#bodySent = hasBody;
    this.#head = undefined;
    this.#messageOpen = false;
    if (method === "HEAD") this.#parser.expectNoBody();
    this.#write(head);
    this.#phase = hasBody ? "sending" : "waiting";
    if (hasBody) this.#pump();
  }

  #hostHeader(): string {
    const { host, port, tls } = this.#options;
    return port === (tls ? 443 : 80) ? host : `${host}:${port}`;
  }

  /** Auth, serial, firmware and device-type headers the policy maps from blobs. */
  #blobHeaders(): [string, string][] {
    const blobs = this.#link.host.blobs;
    const out: [string, string][] = [];
    for (const { header, blob, prefix, hex } of this.#plan.blobHeaders) {
      const value = blobs.get(blob);
      if (value) out.push([header, prefix + (hex ? toHex(value) : latin1(value))]);
    }
    return out;
  }

  #multipart({ name, filename, type }: MultipartSpec): Multipart {
    let boundary = "xs-ss-";
    for (let i = 0; i < 16; i++) boundary += "0123456789abcdef"[Math.floor(this.#link.host.random() * 16)];
    const partHead = `--${boundary}\r\nContent-Disposition: form-data; name="${quoted(name)}"` +
      (filename !== undefined ? `; filename="${quoted(filename)}"` : "") + "\r\n" +
      (type !== undefined ? `Content-Type: ${type}\r\n` : "") + "\r\n";
    return { boundary, head: utf8Encode(partHead), tail: utf8Encode(`\r\n--${boundary}--\r\n`) };
  }

  /** Pulls body payload from the app while the host takes it. */
  #pump(): void {
    const body = this.#body;
    while (this.#phase === "sending" && body && !this.#blocked) {
      if (!body.started) {
        body.started = true;
        if (body.multipart) this.#writeBody(body, body.multipart.head);
        continue;
      }
      const pulled = this.#link.tx(H1_TX_MAX);
      if (pulled === "stop" || pulled === "none") return;
      if (pulled.payload.length) this.#writeBody(body, pulled.payload);
      if (pulled.flags & RxFlag.EOM) {
        if (body.multipart) this.#writeBody(body, body.multipart.tail);
        if (body.chunked) this.#write(LAST_CHUNK);
        this.#phase = "waiting";
      }
    }
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
    for (let at = 0; at < bytes.length && this.#phase !== "closed";) {
      if (this.#phase === "idle" || this.#phase === "connecting") {
        this.#fail({ kind: "other", message: "malformed response: data while no request is outstanding" });
        return;
      }
      try {
        const taken = this.#parser.push(bytes.subarray(at));
        if (taken === 0) throw new Http1Error("body-after-end", "data after the end of the response");
        at += taken;
      } catch (e) {
        if (!(e instanceof Http1Error)) throw e;
        this.#fail({ kind: "other", message: `malformed response: ${e.message}` });
        return;
      }
    }
  }

  #onHead(head: Http1Head): void {
    this.#head = head;
    const link = this.#link;
    if (!this.#establishedReported && this.#transport) {
      this.#establishedReported = true;
      link.established(this.#transport);
    }
    if (this.#isRedirect(head)) return; // its body is discarded, see #onEnd
    for (const [name, value] of head.headers) link.receivedHeader(name, value);
    if (!this.#report(State.CONNECTED)) return;
    for (const [status, state] of this.#plan.respMap) {
      if (status === head.status && !link.state(state as number)) return;
    }
  }

  #onBody(bytes: Uint8Array): void {
    if (this.#phase === "closed" || !this.#head || this.#isRedirect(this.#head)) return;
    for (let at = 0; at < bytes.length; at += H1_RX_MAX) {
      const flags = this.#messageOpen ? 0 : RxFlag.SOM;
      this.#messageOpen = true;
      if (!this.#link.rx(bytes.subarray(at, at + H1_RX_MAX), flags) || this.#isClosed()) return;
    }
  }

  #onEnd(): void {
    const head = this.#head!;
    const link = this.#link;
    // A response that ends before our request body did (an early 413, 401...)
    // leaves the rest of the body unsent: the server would read what we send
    // next as body, so this connection cannot carry another request.
    const keepAlive = head.keepAlive && this.#phase !== "sending";
    if (this.#phase === "sending") this.#phase = "waiting";
    if (this.#isRedirect(head)) {
      this.#redirect(head, keepAlive);
      return;
    }
    link.transactionDone();
    if (!link.rx(new Uint8Array(0), this.#messageOpen ? RxFlag.EOM : RxFlag.SOM | RxFlag.EOM)) return;
    this.#messageOpen = false;
    if (!link.perf({ txn_resp_us: Math.round((link.host.now() - this.#requestStart) * 1000), prot_specific: { protocol: "http", resp: head.status } })) return;
    const expect = this.#plan.expect;
    const good = expect !== undefined ? head.status === expect : head.status >= 200 && head.status < 300;
    const result = head.status === 401 || head.status === 403 ? State.AUTH_FAILED : good ? State.QOS_ACK_REMOTE : State.QOS_NACK_REMOTE;
    if (!link.state(result)) return;
    const retryAfterMs = head.status === 503 || head.status === 429 ? retryAfter(head, link.host.timeValid()) : undefined;
    if (retryAfterMs !== undefined && !this.#isClosed()) {
      // the server is overloaded: leave it, and try again no sooner than it asks (as lws does)
      this.close();
      link.closed({ complete: true, retryAfterMs });
      return;
    }
    if (keepAlive && !this.#isClosed()) {
      this.#phase = "idle";
      if (this.#wanted) this.#startTransaction();
    } else {
      this.#finish(true);
    }
  }

  #isRedirect(head: Http1Head): boolean {
    return head.status >= 300 && head.status < 400 && head.status !== 304 && this.#plan.allowRedirects &&
      head.headers.some(([n]) => n === "location");
  }

  /** Follows a redirect to a path on the same origin: the policy alone names endpoints. */
  #redirect(head: Http1Head, keepAlive: boolean): void {
    const location = head.headers.find(([n]) => n === "location")![1];
    const path = sameOriginPath(location, this.#options);
    const method = this.#method;
    // 303 (and, as browsers do, 301/302 after POST) continue with GET, without the body
    const next = head.status === 303 || ((head.status === 301 || head.status === 302) && method === "POST") ? "GET" : method;
    // 307/308 (or 301/302 after PUT...) repeat the request, body included: the body
    // was streamed from onTx and is gone, and sending the request without it would
    // have the server act on an empty body
    const why = path === undefined ? "another origin" : ++this.#redirects > MAX_REDIRECTS ? `more than ${MAX_REDIRECTS} redirects`
      : next === method && this.#bodySent ? "the request body cannot be sent again" : undefined;
    if (why !== undefined) {
      this.#link.host.log(`${this.#link.streamtype}: redirect to ${location} not followed: ${why}`);
      if (this.#report(State.CONNECTED) && this.#link.state(State.QOS_NACK_REMOTE)) this.#finish(true);
      return;
    }
    this.#path = path!;
    if (keepAlive) {
      this.#send(next, false);
    } else {
      // the server closes this connection: the next hop gets a fresh one to the same origin
      this.#stream?.close();
      this.#parser = this.#newParser();
      this.#redirectMethod = next;
      this.#connect();
    }
  }

  /** Reports CONNECTED once per connection, as lws does (not after a QOS result). */
  #report(state: number): boolean {
    if (state === State.CONNECTED && this.#connectedReported) return true;
    if (state === State.CONNECTED) this.#connectedReported = true;
    return this.#link.state(state);
  }

  #peerClosed(): void {
    if (this.#phase === "closed") return;
    if (this.#phase === "waiting" && this.#head) {
      // a body that runs until the connection closes ends here (onEnd finishes the connection)
      try {
        this.#parser.finish();
      } catch (e) {
        if (!(e instanceof Http1Error)) throw e;
        this.#fail({ kind: "reset", message: `connection closed mid-response: ${e.message}` });
        return;
      }
      this.#finish(false);
      return;
    }
    // between transactions the server may close a kept-alive connection
    this.#finish(this.#phase === "idle");
  }

  #broken(error: HostError): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#stream = undefined;
    this.#link.failed(error);
  }

  /** Ends this connection after a protocol error. */
  #fail(error: HostError): void {
    if (this.#phase === "closed") return;
    this.close();
    this.#link.failed(error);
  }

  /** The connection is over; `complete` when no transaction was left half done. */
  #finish(complete: boolean): void {
    if (this.#phase === "closed") return;
    this.close();
    this.#link.closed({ complete });
  }
}

interface MultipartSpec {
  readonly name: string;
  readonly filename: string | undefined;
  readonly type: string | undefined;
}

interface Plan {
  readonly method: string;
  readonly url: string;
  readonly multipart: MultipartSpec | undefined;
  readonly formUrlencoded: boolean;
  readonly noContentLength: boolean;
  readonly blobHeaders: readonly { header: string; blob: string; prefix: string; hex: boolean }[];
  readonly expect: number | undefined;
  readonly respMap: readonly [number, number][];
  readonly allowRedirects: boolean;
}

function planOf(p: StreamType): Plan {
  const name = p.string("http_multipart_name");
  const filename = p.string("http_multipart_filename");
  const type = p.string("http_mime_content_type");
  const blobHeaders: { header: string; blob: string; prefix: string; hex: boolean }[] = [];
  const blobHeader = (key: string, blob: string, prefix = "", hex = false) => {
    const header = p.string(key);
    if (header) blobHeaders.push({ header: header.replace(/:$/, ""), blob, prefix, hex });
  };
  const auth = p.string("http_auth_header");
  if (auth) blobHeader("http_auth_header", BLOB.auth, p.string("http_auth_preamble") ?? "", p.flag("auth_hexify"));
  blobHeader("http_dsn_header", BLOB.deviceSerial);
  blobHeader("http_fwv_header", BLOB.firmwareVersion);
  blobHeader("http_devtype_header", BLOB.deviceType);
  return {
    method: p.string("http_method") ?? "GET",
    url: p.string("http_url") ?? "",
    multipart: name !== undefined || filename !== undefined || type !== undefined ? { name: name ?? "file", filename, type } : undefined,
    formUrlencoded: p.flag("http_www_form_urlencoded"),
    noContentLength: p.flag("http_no_content_length"),
    blobHeaders,
    expect: p.number("http_expect"),
    respMap: p.pairs("http_resp_map") as [number, number][],
    allowRedirects: p.flag("allow_redirects"),
  };
}

interface Multipart {
  readonly boundary: string;
  readonly head: Uint8Array;
  readonly tail: Uint8Array;
}

/** Framing state of one request body. */
class BodyWriter {
  chunked = false;
  started = false;
  constructor(readonly multipart: Multipart | undefined) {}
  /** Bytes the framing adds to the app's payload. */
  overhead(): number {
    return this.multipart ? this.multipart.head.length + this.multipart.tail.length : 0;
  }
}

/** Longest Retry-After honoured: a server cannot park a device for longer. */
const MAX_RETRY_AFTER_MS = 3600 * 1000;

/** The wait a 503 or 429 asks for (Retry-After: seconds or an HTTP date), 0 when it names none. */
function retryAfter(head: Http1Head, clockValid: boolean): number {
  const value = head.headers.find(([n]) => n === "retry-after")?.[1] ?? "";
  let ms = 0;
  if (/^\d+$/.test(value)) ms = Number(value) * 1000;
  else if (clockValid && value) ms = (Date.parse(value) || Date.now()) - Date.now();
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** The path of `location` if it points at the origin we are connected to. */
function sameOriginPath(location: string, options: ConnectOptions): string | undefined {
  if (location.startsWith("/") && !location.startsWith("//")) return location;
  const m = /^(https?):\/\/([^/:?#]+)(?::(\d+))?([^#]*)$/i.exec(location);
  if (!m) return undefined;
  const tls = m[1]!.toLowerCase() === "https";
  const port = m[3] ? Number(m[3]) : tls ? 443 : 80;
  if (tls !== !!options.tls || m[2]!.toLowerCase() !== options.host.toLowerCase() || port !== options.port) return undefined;
  return m[4] ? (m[4].startsWith("/") ? m[4] : `/${m[4]}`) : "/";
}

function quoted(s: string): string {
  return s.replace(/["\\]/g, "\\$&");
}

function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += (b < 16 ? "0" : "") + b.toString(16);
  return out;
}

function latin1(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += String.fromCharCode(b);
  return out;
}

Object.freeze(h1); // preloaded into flash on the device (manifest.json)
