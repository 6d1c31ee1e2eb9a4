// What the http bindings (h1, h2, and ws for its upgrade) share: the request a policy describes
// (method, URL with ${metadata}, headers from metadata and blobs, multipart
// and form-urlencoded bodies from onTx) and the reading of a few response
// headers. Nothing here knows how the request goes on the wire.

import { BLOB, type ConnectOptions } from "../host.js";
import type { StreamLink } from "./binding.js";
import type { StreamType } from "../policy/reader.js";
import { utf8Encode } from "../util/utf8.js";
import { latin1String, hexString } from "../util/bytes.js";
import { State } from "../ss/states.js";
import { findNotVisible, isDigits } from "../util/chars.js";

/** Methods that carry a body without requestTxLength(). */
export const BODY_METHODS: readonly string[] = Object.freeze(["POST", "PUT", "PATCH"]);
/** Methods whose request may be sent again after it reached the server (RFC 9110, 9.2.2). */
export const IDEMPOTENT: readonly string[] = Object.freeze(["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"]);

/** A plan's empty lists: one frozen array (in flash on the device) rather than two new ones per streamtype. */
const NONE: readonly never[] = Object.freeze([]);

export interface MultipartSpec {
  readonly name: string;
  readonly filename: string | undefined;
  readonly type: string | undefined;
}

/** What the policy says about requests, read once per streamtype and binding: policy reads cost compute on XS. */
export interface Plan {
  readonly method: string;
  readonly url: string;
  readonly multipart: MultipartSpec | undefined;
  readonly formUrlencoded: boolean;
  readonly noContentLength: boolean;
  readonly blobHeaders: readonly BlobHeader[];
  readonly expect: number | undefined;
  readonly respMap: readonly [number, number][];
  readonly allowRedirects: boolean;
  readonly perf: boolean;
  /** Some metadata maps to a header (sent with the request, captured from the response). */
  readonly headerMetadata: boolean;
  /** The request is the policy's alone: no ${metadata} in the URL, no header from metadata or a blob. */
  readonly fixed: boolean;
  /** The method is idempotent and carries no body of itself: a request that may go on a pooled connection. */
  readonly replayable: boolean;
}

export type BlobHeader = { readonly header: string; readonly blob: string; readonly prefix: string; readonly hex: boolean };

/** lws' headers whose values come from blobs (auth token, serial, firmware version, device type), as the policy names them. */
export function blobHeadersOf(p: StreamType): BlobHeader[] {
  const blobHeaders: BlobHeader[] = [];
  const blobHeader = (key: string, blob: string, prefix = "", hex = false) => {
    const header = p.string(key);
    if (header) blobHeaders.push({ header: header.endsWith(":") ? header.slice(0, -1) : header, blob, prefix, hex });
  };
  const auth = p.string("http_auth_header");
  if (auth) blobHeader("http_auth_header", BLOB.auth, p.string("http_auth_preamble") ?? "", p.flag("auth_hexify"));
  blobHeader("http_dsn_header", BLOB.deviceSerial);
  blobHeader("http_fwv_header", BLOB.firmwareVersion);
  blobHeader("http_devtype_header", BLOB.deviceType);
  return blobHeaders;
}

export function planOf(p: StreamType): Plan {
  const name = p.string("http_multipart_name");
  const filename = p.string("http_multipart_filename");
  const type = p.string("http_mime_content_type");
  const blobHeaders = blobHeadersOf(p);
  const method = p.string("http_method") ?? "GET";
  const url = p.string("http_url") ?? "";
  const headerMetadata = p.pairs("metadata").some(([, header]) => !!header);
  const respMap = p.pairs("http_resp_map") as [number, number][];
  return {
    method,
    url,
    headerMetadata,
    fixed: !url.includes("${") && !headerMetadata && blobHeaders.length === 0,
    replayable: IDEMPOTENT.includes(method) && !BODY_METHODS.includes(method),
    perf: p.flag("perf"),
    multipart: name !== undefined || filename !== undefined || type !== undefined ? { name: name ?? "file", filename, type } : undefined,
    formUrlencoded: p.flag("http_www_form_urlencoded"),
    noContentLength: p.flag("http_no_content_length"),
    blobHeaders: blobHeaders.length ? blobHeaders : NONE,
    expect: p.number("http_expect"),
    respMap: respMap.length ? respMap : NONE,
    allowRedirects: p.flag("allow_redirects"),
  };
}

/** The request path for a new transaction ("/" + the expanded http_url), or why it is refused. */
export function requestPath(link: StreamLink, plan: Pick<Plan, "url">): { path: string } | { refuse: string } {
  // setMetadata() refuses what encodeURIComponent cannot encode
  const url = link.expand(plan.url, encodeURIComponent);
  const path = url.startsWith("/") ? url : `/${url}`;
  const dot = dotSegment(path);
  if (dot) return { refuse: `the URL ${shown(path)} has a "${dot}" path segment: metadata may not climb the path` };
  return { path };
}

/** The headers from metadata and from blobs, or why the request is refused. */
export function requestHeaders(link: StreamLink, plan: Pick<Plan, "headerMetadata" | "blobHeaders">): [string, string][] | { refuse: string } {
  const headers: [string, string][] = plan.headerMetadata ? link.headerMetadata() : [];
  const blobs = link.host.blobs;
  for (const { header, blob, prefix, hex } of plan.blobHeaders) {
    const value = blobs.get(blob);
    if (!value) continue;
    // The value stays out of every message: it is a credential.
    if (!hex && (value.includes(10) || value.includes(13))) {
      return { refuse: `blob "${blob}" holds a line break (as \`echo\` writes one at the end); store it without` };
    }
    headers.push([header, prefix + (hex ? hexString(value) : latin1String(value))]);
  }
  return headers;
}

export interface Multipart {
  readonly boundary: string;
  readonly head: Uint8Array;
  readonly tail: Uint8Array;
}

export function makeMultipart({ name, filename, type }: MultipartSpec, random: () => number): Multipart {
  let boundary = "xs-ss-";
  for (let i = 0; i < 16; i++) boundary += "0123456789abcdef"[Math.floor(random() * 16)];
  const partHead = `--${boundary}\r\nContent-Disposition: form-data; name="${quoted(name)}"` +
    (filename !== undefined ? `; filename="${quoted(filename)}"` : "") + "\r\n" +
    (type !== undefined ? `Content-Type: ${type}\r\n` : "") + "\r\n";
  return { boundary, head: utf8Encode(partHead), tail: utf8Encode(`\r\n--${boundary}--\r\n`) };
}

/** Framing and progress of one request body. */
export class BodyWriter {
  chunked = false;
  started = false;
  /** onTx was asked at least once (the first ask carries SOM). */
  pulled = false;
  /** Payload bytes onTx gave so far. */
  sent = 0;
  constructor(readonly multipart: Multipart | undefined, readonly announced: number | undefined) {}
  /** Bytes the framing adds to the app's payload. */
  overhead(): number {
    return this.multipart ? this.multipart.head.length + this.multipart.tail.length : 0;
  }
}

/**
 * The body of a new request, its framing headers added to `headers`
 * (Content-Type for multipart and forms); and its Content-Length, when the
 * app announced one and the policy does not say otherwise.
 */
export function requestBody(link: StreamLink, plan: Plan, headers: [string, string][]): { body: BodyWriter; contentLength: number | undefined } {
  const body = new BodyWriter(plan.multipart ? makeMultipart(plan.multipart, () => link.host.random()) : undefined, link.txLength);
  if (plan.formUrlencoded) headers.push(["Content-Type", "application/x-www-form-urlencoded"]);
  if (body.multipart) headers.push(["Content-Type", `multipart/form-data; boundary=${body.multipart.boundary}`]);
  const contentLength = link.txLength !== undefined && !plan.noContentLength ? link.txLength + body.overhead() : undefined;
  return { body, contentLength };
}

/** Longest Retry-After honoured: a server cannot park a device for longer. */
const MAX_RETRY_AFTER_MS = 3600 * 1000;

/** The wait a 503 or 429 asks for (a Retry-After value: seconds or an HTTP date), 0 when it names none. */
export function retryAfterMs(value: string, clockValid: boolean): number {
  let ms = 0;
  if (isDigits(value)) ms = Number(value) * 1000;
  else if (clockValid && value) ms = (Date.parse(value) || Date.now()) - Date.now();
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** The result a final status gives: AUTH_FAILED for 401/403, else ACK for 2xx (or http_expect), NACK otherwise. */
export function statusResult(status: number, plan: Plan): number {
  const good = plan.expect !== undefined ? status === plan.expect : status >= 200 && status < 300;
  return status === 401 || status === 403 ? State.AUTH_FAILED : good ? State.QOS_ACK_REMOTE : State.QOS_NACK_REMOTE;
}

/** A "." or ".." segment in the path part of `path`, if it has one. */
export function dotSegment(path: string): string | undefined {
  const end = firstOf(path, "?#", 0);
  for (const segment of (end < 0 ? path : path.slice(0, end)).split("/")) {
    if (segment.length <= 6 && DOT_SEGMENTS.includes(segment.toLowerCase())) return segment;
  }
  return undefined;
}

/** "." and "..", each dot possibly percent-encoded. */
const DOT_SEGMENTS: readonly string[] = Object.freeze([".", "..", "%2e", "%2e%2e", ".%2e", "%2e."]);

/** The index of the first char of s from `from` that is in `chars`, or -1. */
function firstOf(s: string, chars: string, from: number): number {
  for (let k = from; k < s.length; k++) if (chars.includes(s[k]!)) return k;
  return -1;
}

/** A value for a log line: quoted, and cut short. */
export function shown(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}

function quoted(s: string): string {
  // backslashes first, so that those added for quotes are not doubled
  return s.split("\\").join("\\\\").split('"').join('\\"');
}

/**
 * The path (and query) `location` names on the origin we are connected to,
 * or why it is not followed. The authority is read as RFC 3986 has it
 * ([userinfo@]host[:port], host possibly an [IPv6] literal); userinfo is
 * refused outright, as browsers warn about it: "http://a:1@b/" is host b.
 */
export function sameOriginTarget(location: string, options: ConnectOptions): string | { why: string } {
  let path: string;
  if (location.startsWith("/") && !location.startsWith("//")) {
    path = location;
  } else {
    // scheme "://" authority, then the path and query up to a '#'
    const colon = schemeEnd(location);
    if (colon < 0 || !location.startsWith("//", colon + 1)) return { why: "not an absolute URL or path" };
    const scheme = location.slice(0, colon).toLowerCase();
    if (scheme !== "http" && scheme !== "https") return { why: `scheme ${scheme}` };
    const start = colon + 3;
    const stop = firstOf(location, "/?#", start);
    const authority = stop < 0 ? location.slice(start) : location.slice(start, stop);
    if (authority.includes("@")) return { why: "it carries userinfo" };
    const a = hostAndPort(authority);
    if (!a) return { why: "malformed authority" };
    const host = a.host.toLowerCase();
    const tls = scheme === "https";
    const port = a.port ? Number(a.port) : tls ? 443 : 80;
    if (tls !== !!options.tls || host !== options.host.toLowerCase() || port !== options.port) return { why: "another origin" };
    const hash = stop < 0 ? -1 : location.indexOf("#", stop);
    const rest = stop < 0 ? "" : hash < 0 ? location.slice(stop) : location.slice(stop, hash);
    path = rest ? (rest.startsWith("/") ? rest : `/${rest}`) : "/";
  }
  const hash = path.indexOf("#");
  if (hash >= 0) path = path.slice(0, hash);
  if (findNotVisible(path) >= 0) return { why: "characters a request target cannot hold" };
  return path;
}

/** The index of the ':' after a URL's scheme (a letter, then letters, digits, '+', '.', '-'), or -1. */
function schemeEnd(url: string): number {
  for (let k = 0; k < url.length; k++) {
    const c = url.charCodeAt(k);
    const letter = (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a;
    if (letter) continue;
    if (k > 0 && ((c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2e || c === 0x2d)) continue;
    return k > 0 && c === 0x3a ? k : -1;
  }
  return -1;
}

/** An authority without userinfo, as host (an [IPv6] literal unbracketed) and port digits ("" when none), or undefined. */
function hostAndPort(authority: string): { host: string; port: string } | undefined {
  let host: string;
  let k: number;
  if (authority.startsWith("[")) {
    k = authority.indexOf("]") + 1;
    if (k < 3) return undefined;
    host = authority.slice(1, k - 1);
    for (let i = 0; i < host.length; i++) {
      const c = host.charCodeAt(i);
      const hex = (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
      if (!hex && c !== 0x3a && c !== 0x2e) return undefined;
    }
  } else {
    k = firstOf(authority, ":[]", 0);
    if (k < 0) k = authority.length;
    host = authority.slice(0, k);
  }
  if (k === authority.length) return { host, port: "" };
  if (authority[k] !== ":") return undefined;
  const port = authority.slice(k + 1);
  return port === "" || isDigits(port) ? { host, port } : undefined;
}

/** The Host header (h1) or :authority (h2) for a connection: the port only when it is not the scheme's, an IPv6 literal in brackets. */
export function hostHeader({ host, port, tls }: ConnectOptions): string {
  const name = host.includes(":") ? `[${host}]` : host;
  return port === (tls ? 443 : 80) ? name : `${name}:${port}`;
}
