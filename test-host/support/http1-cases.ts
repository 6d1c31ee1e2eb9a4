// Byte fixtures for the HTTP/1.1 wire codec (src/wire/http1) and the driver
// that checks them. PORTABLE: no Node imports, no Buffer, so the very same
// module runs on Node and, bundled by hosts/xsnap, on XS; both must report
// the same results.
//
// Every response fixture is fed whole, byte by byte, and in pseudo-random
// splits. The events (heads, body bytes, ends, and bytes left over after an
// upgrade) must come out the same each way and match the fixture; body bytes
// must be views of the input just pushed, never more than that push took.
// A malformed fixture must fail with its code and message, and stay failed.

import { prng } from "./prng.js";
import {
  Http1ResponseParser, Http1Error, encodeRequestHead, encodeChunkHeader, CHUNK_END, LAST_CHUNK,
  type Http1ErrorCode, type Http1Head, type Http1Limits, type Http1Request,
} from "../../src/wire/http1/index.js";

export interface CaseResult {
  name: string;
  ok: boolean;
  detail: string;
}

/** Parser events, body pieces merged (their sizes depend on the split). */
type Event =
  | ["head", number, string, [string, string][], number | null, boolean, boolean]
  | ["body", string]
  | ["end"]
  | ["rest", string];

interface ResponseFixture {
  name: string;
  /** One char per byte. */
  wire: string;
  expect: Event[];
  /** Indexes of the responses (0 = first) that answer a HEAD request. */
  head?: number[];
  /** The connection closes after the wire bytes: finish() is called. */
  close?: boolean;
  /** Bytes after the end of a 101 belong to the new protocol: collected as "rest". */
  upgrade?: boolean;
  /** Expected failure: code and a fragment of the message. */
  error?: [Http1ErrorCode, string];
  limits?: Http1Limits;
}

type HeadOptions = { length?: number; chunked?: boolean; keepAlive?: boolean };

function H(status: number, reason: string, headers: [string, string][] = [], o: HeadOptions = {}): Event {
  return ["head", status, reason, headers, o.length ?? null, o.chunked ?? false, o.keepAlive ?? true];
}
const B = (text: string): Event => ["body", text];
const E: Event = ["end"];

const CL5: [string, string] = ["content-length", "5"];
const OK5 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

const bigValue = (total: number, before: string) => "x".repeat(total - before.length - "X: \r\n\r\n".length);
const HEAD_8192_PREFIX = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
const manyHeaders = (n: number) => Array.from({ length: n }, (_, i) => `H${i}: ${i}\r\n`).join("");
const allBytes = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");

const RESPONSES: ResponseFixture[] = [
  // ---- framing ----
  { name: "content-length body", wire: OK5, expect: [H(200, "OK", [CL5], { length: 5 }), B("hello"), E] },
  { name: "content-length 0", wire: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", expect: [H(200, "OK", [["content-length", "0"]], { length: 0 }), E] },
  {
    name: "binary body, every byte value",
    wire: `HTTP/1.1 200 OK\r\nContent-Length: 256\r\n\r\n${allBytes}`,
    expect: [H(200, "OK", [["content-length", "256"]], { length: 256 }), B(allBytes), E],
  },
  {
    name: "chunked with extensions and trailers",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6 ; a=\"b c\"; d\r\n world\r\n0\r\nX-Trailer: 1\r\nY:  2 \r\n\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true }), B("hello world"), E],
  },
  {
    name: "chunked, upper/lower hex and leading zeros",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n00b\r\nabcdefghijk\r\n000\r\n\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "Chunked"]], { chunked: true }), B("0123456789abcdefghijk"), E],
  },
  {
    name: "chunked, empty body",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true }), E],
  },
  {
    name: "chunk-size line of exactly 64 bytes",
    wire: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;${"e".repeat(60)}\r\nabc\r\n0\r\n\r\n`,
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true }), B("abc"), E],
  },
  {
    name: "HTTP/1.0 body until close",
    wire: "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of\r\nthis",
    close: true,
    expect: [H(200, "OK", [["server", "old"]], { keepAlive: false }), B("all of\r\nthis"), E],
  },
  {
    name: "HTTP/1.1 Connection: close, body until close",
    wire: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    close: true,
    expect: [H(200, "OK", [["connection", "close"]], { keepAlive: false }), B("until the end"), E],
  },
  {
    name: "HTTP/1.1 no length, no close: body until close anyway",
    wire: "HTTP/1.1 200 OK\r\n\r\nabc",
    close: true,
    expect: [H(200, "OK", [], { keepAlive: false }), B("abc"), E],
  },
  {
    name: "body until close, empty",
    wire: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
    close: true,
    expect: [H(200, "OK", [["connection", "close"]], { keepAlive: false }), E],
  },

  // ---- keep-alive ----
  {
    name: "HTTP/1.0 Connection: keep-alive",
    wire: `HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.0 204 None\r\nConnection: keep-alive\r\n\r\n`,
    expect: [
      H(200, "OK", [["connection", "Keep-Alive"], CL5], { length: 5 }), B("hello"), E,
      H(204, "None", [["connection", "keep-alive"]]), E,
    ],
  },
  {
    name: "HTTP/1.0 with length but no keep-alive",
    wire: "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    expect: [H(200, "OK", [CL5], { length: 5, keepAlive: false }), B("hello"), E],
  },
  {
    name: "HTTP/1.1 Connection: close with length",
    wire: "HTTP/1.1 200 OK\r\nConnection: upgrade, Close\r\nContent-Length: 5\r\n\r\nhello",
    expect: [H(200, "OK", [["connection", "upgrade, Close"], CL5], { length: 5, keepAlive: false }), B("hello"), E],
  },
  {
    name: "three responses back to back",
    wire: `${OK5}HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 1\r\nConnection: close\r\n\r\nz`,
    expect: [
      H(200, "OK", [CL5], { length: 5 }), B("hello"), E,
      H(201, "Created", [["transfer-encoding", "chunked"]], { chunked: true }), B("ab"), E,
      H(202, "Accepted", [["content-length", "1"], ["connection", "close"]], { length: 1, keepAlive: false }), B("z"), E,
    ],
  },

  // ---- responses without a body ----
  {
    name: "204 then the next response",
    wire: `HTTP/1.1 204 No Content\r\n\r\n${OK5}`,
    expect: [H(204, "No Content"), E, H(200, "OK", [CL5], { length: 5 }), B("hello"), E],
  },
  {
    name: "304 with Content-Length has no body",
    wire: `HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: "x"\r\n\r\n${OK5}`,
    expect: [H(304, "Not Modified", [["content-length", "100"], ["etag", '"x"']], { length: 100 }), E, H(200, "OK", [CL5], { length: 5 }), B("hello"), E],
  },
  {
    name: "HEAD: Content-Length without a body, then a GET",
    wire: `HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n${OK5}`,
    head: [0],
    expect: [H(200, "OK", [["content-length", "1234"]], { length: 1234 }), E, H(200, "OK", [CL5], { length: 5 }), B("hello"), E],
  },
  {
    name: "HEAD: chunked without a body, twice",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n",
    head: [0, 1],
    expect: [
      H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true }), E,
      H(404, "Not Found", [["transfer-encoding", "chunked"]], { chunked: true }), E,
    ],
  },
  {
    name: "HEAD with Connection: close has no body either",
    wire: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
    head: [0],
    close: true,
    expect: [H(200, "OK", [["connection", "close"]], { keepAlive: false }), E],
  },

  // ---- interim responses ----
  {
    name: "100 Continue skipped",
    wire: `HTTP/1.1 100 Continue\r\n\r\n${OK5}`,
    expect: [H(200, "OK", [CL5], { length: 5 }), B("hello"), E],
  },
  {
    name: "103 Early Hints and 100 skipped, HEAD applies to the final one",
    wire: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
    head: [0],
    expect: [H(200, "OK", [["content-length", "9"]], { length: 9 }), E],
  },
  {
    name: "101 Switching Protocols: the rest is the new protocol's",
    wire: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
    upgrade: true,
    expect: [H(101, "Switching Protocols", [["upgrade", "websocket"], ["connection", "Upgrade"]], { keepAlive: false }), E, ["rest", "\x81\x05hello"]],
  },

  // ---- heads ----
  {
    name: "header names lower-cased, values trimmed, duplicates kept in order",
    wire: "HTTP/1.1 200 OK\r\nX-A:  one \r\nSet-Cookie: a=1\r\nx-a:\ttwo\t\r\nEmpty:\r\nSpaces:   \r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
    expect: [H(200, "OK", [["x-a", "one"], ["set-cookie", "a=1"], ["x-a", "two"], ["empty", ""], ["spaces", ""], ["set-cookie", "b=2"], ["content-length", "0"]], { length: 0 }), E],
  },
  {
    name: "value with inner whitespace, obs-text and token punctuation in names",
    wire: "HTTP/1.1 200 OK\r\nX!#$%&'*+-.^_`|~9: a \t b caf\xe9 \xff\r\nContent-Length: 0\r\n\r\n",
    expect: [H(200, "OK", [["x!#$%&'*+-.^_`|~9", "a \t b caf\xe9 \xff"], ["content-length", "0"]], { length: 0 }), E],
  },
  {
    // NBSP is obs-text, not whitespace, in HTTP (String.prototype.trim would take it away)
    name: "a value's NBSP (0xA0) at either end is kept; only SP and HTAB around it go",
    wire: "HTTP/1.1 200 OK\r\nX-Nbsp: \t\xa0a\xa0 \r\nX-Only: \xa0\r\nContent-Length: 0\r\n\r\n",
    expect: [H(200, "OK", [["x-nbsp", "\xa0a\xa0"], ["x-only", "\xa0"], ["content-length", "0"]], { length: 0 }), E],
  },
  {
    name: "a long head, then a short one and a long one again, back to back",
    wire: `HTTP/1.1 200 OK\r\nX-Long: ${"a".repeat(300)}\r\nContent-Length: 5\r\n\r\nhello${OK5}HTTP/1.1 200 OK\r\nX-Long: ${"b".repeat(400)}\r\nContent-Length: 5\r\n\r\nhello`,
    expect: [
      H(200, "OK", [["x-long", "a".repeat(300)], CL5], { length: 5 }), B("hello"), E,
      H(200, "OK", [CL5], { length: 5 }), B("hello"), E,
      H(200, "OK", [["x-long", "b".repeat(400)], CL5], { length: 5 }), B("hello"), E,
    ],
  },
  {
    // trimmed in linear time: a RegExp anchored at the end would backtrack over the inner run
    name: "a value holding a run of 7,000 spaces keeps them; only the outer ones go",
    wire: `HTTP/1.1 200 OK\r\nX-Pad: \ta${" ".repeat(7000)}b \t\r\nContent-Length: 0\r\n\r\n`,
    expect: [H(200, "OK", [["x-pad", `a${" ".repeat(7000)}b`], ["content-length", "0"]], { length: 0 }), E],
  },
  { name: "status line without reason", wire: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", expect: [H(200, "", [["content-length", "0"]], { length: 0 }), E] },
  { name: "status line with empty reason", wire: "HTTP/1.1 204 \r\n\r\n", expect: [H(204, ""), E] },
  {
    name: "reason with spaces, tabs and obs-text",
    wire: "HTTP/1.1 599 Some\tthing  r\xe9ally odd \r\nContent-Length: 0\r\n\r\n",
    expect: [H(599, "Some\tthing  r\xe9ally odd ", [["content-length", "0"]], { length: 0 }), E],
  },
  {
    name: "Content-Length repeated and as a list, all equal",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\nhello",
    expect: [H(200, "OK", [CL5, ["content-length", "5, 5"]], { length: 5 }), B("hello"), E],
  },
  {
    name: "head of exactly 8192 bytes",
    wire: `${HEAD_8192_PREFIX}X: ${bigValue(8192, HEAD_8192_PREFIX)}\r\n\r\n`,
    expect: [H(200, "OK", [["content-length", "0"], ["x", bigValue(8192, HEAD_8192_PREFIX)]], { length: 0 }), E],
  },
  {
    name: "100 header fields",
    wire: `HTTP/1.1 204 No Content\r\n${manyHeaders(100)}\r\n`,
    expect: [H(204, "No Content", Array.from({ length: 100 }, (_, i): [string, string] => [`h${i}`, String(i)])), E],
  },

  // ---- malformed: status line ----
  { name: "HTTP/2 status line", wire: "HTTP/2 200 OK\r\n\r\n", expect: [], error: ["bad-status-line", "not an HTTP/1.x status line"] },
  { name: "lower-case protocol name", wire: "http/1.1 200 OK\r\n\r\n", expect: [], error: ["bad-status-line", "not an HTTP/1.x status line"] },
  { name: "HTTP/1.2", wire: "HTTP/1.2 200 OK\r\n\r\n", expect: [], error: ["bad-status-line", "unsupported HTTP version"] },
  { name: "two-digit status", wire: "HTTP/1.1 20 OK\r\n\r\n", expect: [], error: ["bad-status-line", "status code is not 3 digits"] },
  { name: "four-digit status", wire: "HTTP/1.1 2000 OK\r\n\r\n", expect: [], error: ["bad-status-line", "no space after the status code"] },
  { name: "status below 100", wire: "HTTP/1.1 099 Odd\r\n\r\n", expect: [], error: ["bad-status-line", "status code below 100"] },
  { name: "no space after version", wire: "HTTP/1.1\t200 OK\r\n\r\n", expect: [], error: ["bad-status-line", "no space after the version"] },
  { name: "status line too short", wire: "HTTP/1.1\r\n\r\n", expect: [], error: ["bad-status-line", "status line too short"] },
  { name: "empty status line", wire: "\r\nHTTP/1.1 200 OK\r\n\r\n", expect: [], error: ["bad-status-line", "empty status line"] },
  { name: "status line ends in a bare LF", wire: "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", expect: [], error: ["bad-status-line", "status line ends in a bare LF"] },
  { name: "bare CR in the reason", wire: "HTTP/1.1 200 O\rK\r\n\r\n", expect: [], error: ["bad-status-line", "CR in the reason phrase"] },
  { name: "NUL in the reason", wire: "HTTP/1.1 200 O\0K\r\n\r\n", expect: [], error: ["bad-status-line", "byte 0x00 in the reason phrase"] },
  { name: "not HTTP at all", wire: "SSH-2.0-OpenSSH_9.6\r\n", expect: [], error: ["bad-status-line", "not an HTTP/1.x status line: \"SSH-2.0-OpenSSH_9.6\""] },

  // ---- malformed: header lines ----
  { name: "folded header (SP)", wire: "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n", expect: [], error: ["bad-header", "folded header line (obs-fold)"] },
  { name: "folded header (HTAB)", wire: "HTTP/1.1 200 OK\r\nX-A: 1\r\n\t2\r\n\r\n", expect: [], error: ["bad-header", "folded header line (obs-fold)"] },
  { name: "header without colon", wire: "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", expect: [], error: ["bad-header", "header line without ':'"] },
  { name: "space before colon", wire: "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello", expect: [], error: ["bad-header", "whitespace in or after a header name"] },
  { name: "empty header name", wire: "HTTP/1.1 200 OK\r\n: v\r\n\r\n", expect: [], error: ["bad-header", "empty header name"] },
  { name: "non-token header name", wire: "HTTP/1.1 200 OK\r\nX(A): v\r\n\r\n", expect: [], error: ["bad-header", "'(' in a header name"] },
  { name: "non-ASCII header name", wire: "HTTP/1.1 200 OK\r\nX\xe9: v\r\n\r\n", expect: [], error: ["bad-header", "byte 0xe9 in a header name"] },
  { name: "NUL in a header value", wire: "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", expect: [], error: ["bad-header", "byte 0x00 in the value of header \"x-a\""] },
  { name: "bare CR in a header value", wire: "HTTP/1.1 200 OK\r\nX-A: a\rInjected: 1\r\n\r\n", expect: [], error: ["bad-header", "CR in the value of header \"x-a\""] },
  { name: "DEL in a header value", wire: "HTTP/1.1 200 OK\r\nX-A: a\x7f\r\n\r\n", expect: [], error: ["bad-header", "byte 0x7f in the value"] },
  { name: "header line ends in a bare LF", wire: "HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\n\r\n", expect: [], error: ["bad-header", "header line ends in a bare LF"] },
  { name: "head ends in a bare LF", wire: "HTTP/1.1 200 OK\r\nX-A: 1\r\n\n", expect: [], error: ["bad-header", "header line ends in a bare LF"] },
  { name: "Transfer-Encoding gzip, chunked", wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", expect: [], error: ["bad-header", "unsupported Transfer-Encoding \"gzip, chunked\""] },
  { name: "Transfer-Encoding chunked twice", wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", expect: [], error: ["bad-header", "unsupported Transfer-Encoding \"chunked,chunked\""] },
  { name: "Transfer-Encoding identity", wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", expect: [], error: ["bad-header", "unsupported Transfer-Encoding"] },

  // ---- malformed: lengths ----
  { name: "Content-Length with a letter", wire: "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", expect: [], error: ["bad-length", "Content-Length \"12a\" is not a decimal number"] },
  { name: "Content-Length negative", wire: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", expect: [], error: ["bad-length", "is not a decimal number"] },
  { name: "Content-Length with a sign", wire: "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", expect: [], error: ["bad-length", "is not a decimal number"] },
  { name: "Content-Length empty", wire: "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", expect: [], error: ["bad-length", "is not a decimal number"] },
  { name: "Content-Length hex", wire: "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", expect: [], error: ["bad-length", "is not a decimal number"] },
  { name: "Content-Length too large", wire: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", expect: [], error: ["bad-length", "Content-Length 99999999999999999999 is too large"] },
  { name: "Content-Length headers differ", wire: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", expect: [], error: ["bad-length", "conflicting Content-Length values 5 and 6"] },
  { name: "Content-Length list differs", wire: "HTTP/1.1 200 OK\r\nContent-Length: 5, 50\r\n\r\nhello", expect: [], error: ["bad-length", "conflicting Content-Length values 5 and 50"] },
  { name: "Content-Length and Transfer-Encoding", wire: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", expect: [], error: ["bad-length", "both Content-Length and Transfer-Encoding"] },

  // ---- malformed: limits ----
  {
    name: "head of 8193 bytes",
    wire: `${HEAD_8192_PREFIX}X: ${bigValue(8193, HEAD_8192_PREFIX)}\r\n\r\n`,
    expect: [],
    error: ["head-too-large", "response head larger than 8192 bytes"],
  },
  { name: "endless status line", wire: `HTTP/1.1 200 ${"x".repeat(9000)}`, expect: [], error: ["head-too-large", "response head larger than 8192 bytes"] },
  { name: "101 header fields", wire: `HTTP/1.1 204 No Content\r\n${manyHeaders(101)}\r\n`, expect: [], error: ["head-too-large", "more than 100 header fields"] },
  {
    name: "custom limits: 64-byte head",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Padding: 0123456789012345\r\n\r\nhello",
    limits: { maxHeadBytes: 64 },
    expect: [],
    error: ["head-too-large", "response head larger than 64 bytes"],
  },
  {
    name: "custom limits: 2 headers",
    wire: "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
    limits: { maxHeaders: 2 },
    expect: [],
    error: ["head-too-large", "more than 2 header fields"],
  },

  // ---- malformed: chunked bodies ----
  {
    name: "chunk size not hex",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\ng\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "chunk size starts with 'g', not a hex digit"],
  },
  {
    name: "chunk size missing",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "missing chunk size"],
  },
  {
    name: "chunk size with a sign",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "chunk size starts with '-'"],
  },
  {
    name: "garbage after chunk size",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "'x' after the chunk size"],
  },
  {
    name: "second number after chunk size",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 6\r\nhello\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "'6' after the chunk size"],
  },
  {
    name: "chunk-size line ends in a bare LF",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "LF after the chunk size"],
  },
  {
    name: "CR without LF on a chunk-size line",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\rhello\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "CR without LF on a chunk-size line"],
  },
  {
    name: "control byte in a chunk extension",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\0\r\nhello\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "byte 0x00 in a chunk extension"],
  },
  {
    name: "chunk-size line of 65 bytes",
    wire: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;${"e".repeat(61)}\r\nabc\r\n0\r\n\r\n`,
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "chunk-size line longer than 64 bytes"],
  },
  {
    name: "chunk size too large",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20000000000000\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "chunk size too large"],
  },
  {
    name: "chunk longer than its size",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true }), B("hello")],
    error: ["bad-chunk", "chunk data not followed by CRLF ('!' after 5 bytes)"],
  },
  {
    name: "chunk data followed by CR and no LF",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r0\r\n\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true }), B("hello")],
    error: ["bad-chunk", "chunk data not followed by CRLF ('0' after 5 bytes)"],
  },
  {
    name: "trailer without colon",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbroken\r\n\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "trailer line without ':'"],
  },
  {
    name: "folded trailer",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\n 2\r\n\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "folded trailer line"],
  },
  {
    name: "trailer line ends in a bare LF",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\n\r\n",
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "trailer line ends in a bare LF"],
  },
  {
    name: "endless trailer section",
    wire: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${`T: ${"x".repeat(95)}\r\n`.repeat(90)}\r\n`,
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "trailer section larger than 8192 bytes"],
  },
  {
    name: "101 trailer fields",
    wire: `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${"T: 1\r\n".repeat(101)}\r\n`,
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["bad-chunk", "more than 100 trailer fields"],
  },

  // ---- malformed: ends ----
  { name: "closed before the head ended", wire: "HTTP/1.1 200 OK\r\nContent-Le", close: true, expect: [], error: ["unexpected-eof", "connection closed inside the response head"] },
  { name: "closed after 100 Continue", wire: "HTTP/1.1 100 Continue\r\n\r\n", close: true, expect: [], error: ["unexpected-eof", "connection closed inside the response head"] },
  {
    name: "closed inside a Content-Length body",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
    close: true,
    expect: [H(200, "OK", [["content-length", "10"]], { length: 10 }), B("hello")],
    error: ["unexpected-eof", "connection closed with 5 body bytes still to come"],
  },
  {
    name: "closed inside a chunk",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    close: true,
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true }), B("hel")],
    error: ["unexpected-eof", "connection closed inside the chunked body"],
  },
  {
    name: "closed before the last chunk",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    close: true,
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true }), B("hello")],
    error: ["unexpected-eof", "connection closed inside the chunked body"],
  },
  {
    name: "closed inside the trailers",
    wire: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\n",
    close: true,
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true })],
    error: ["unexpected-eof", "connection closed inside the chunked body"],
  },
  { name: "closed between responses is clean", wire: OK5, close: true, expect: [H(200, "OK", [CL5], { length: 5 }), B("hello"), E] },

  // ---- malformed: bytes after the end ----
  {
    name: "more body than Content-Length, Connection: close",
    wire: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello!!",
    expect: [H(200, "OK", [["connection", "close"], CL5], { length: 5, keepAlive: false }), B("hello"), E],
    error: ["body-after-end", "bytes after the last response on this connection"],
  },
  {
    name: "more body than Content-Length, HTTP/1.0",
    wire: "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello!",
    expect: [H(200, "OK", [CL5], { length: 5, keepAlive: false }), B("hello"), E],
    error: ["body-after-end", "bytes after the last response"],
  },
  {
    name: "more body than Content-Length, kept alive: read as the next status line",
    wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhello\r\n",
    expect: [H(200, "OK", [["content-length", "2"]], { length: 2 }), B("he"), E],
    error: ["bad-status-line", "not an HTTP/1.x status line: \"llo\""],
  },
];

// ---- driver ----

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

function bytesOf(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}


/** Each chunk a copy in its own buffer, so a view of an earlier chunk cannot pass for one of the current. */
function split(bytes: Uint8Array, sizes: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = Math.max(1, sizes());
    chunks.push(bytes.slice(at, at + n));
    at += n;
  }
  return chunks;
}

interface Outcome {
  events: Event[];
  error?: Http1Error;
  problems: string[];
}

function feed(fx: ResponseFixture, chunks: Uint8Array[]): Outcome {
  const events: Event[] = [];
  const problems: string[] = [];
  let responses = 0;
  let last: Http1Head | undefined;
  let upgraded = false;
  let input: Uint8Array = new Uint8Array(0);
  let delivered = 0;
  let ends = 0;
  const add = (kind: "body" | "rest", text: string) => {
    const prev = events[events.length - 1];
    if (prev && prev[0] === kind) prev[1] += text;
    else events.push([kind, text]);
  };
  const parser = new Http1ResponseParser({
    onHead: (head) => {
      last = head;
      events.push(["head", head.status, head.reason, head.headers.map(([n, v]): [string, string] => [n, v]),
        head.contentLength ?? null, head.chunked, head.keepAlive]);
    },
    onBody: (bytes) => {
      const inside = bytes.buffer === input.buffer && bytes.byteOffset >= input.byteOffset &&
        bytes.byteOffset + bytes.length <= input.byteOffset + input.length;
      if (!inside) problems.push("a body piece is not a view of the input just pushed");
      if (bytes.length === 0) problems.push("an empty body piece");
      delivered += bytes.length;
      add("body", latin1(bytes));
    },
    onEnd: () => {
      events.push(["end"]);
      responses++;
      ends++;
      if (last?.status === 101) upgraded = true;
      else if (fx.head?.includes(responses)) parser.expectNoBody();
    },
    ...(fx.limits ? { limits: fx.limits } : {}),
  });
  if (fx.head?.includes(0)) parser.expectNoBody();
  let error: Http1Error | undefined;
  try {
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length;) {
        if (upgraded) {
          add("rest", latin1(chunk.subarray(at)));
          break;
        }
        input = at === 0 ? chunk : chunk.subarray(at);
        delivered = 0;
        ends = 0;
        const n = parser.push(input);
        if (!(n > 0 && n <= input.length)) problems.push(`push of ${input.length} bytes returned ${n}`);
        // push() stops right after a response, and only there.
        if (ends > 1 || (n < input.length && ends === 0)) problems.push(`push took ${n} of ${input.length} bytes and ended ${ends} responses`);
        if (delivered > n) problems.push(`push took ${n} bytes but delivered ${delivered} body bytes`);
        at += n;
      }
    }
    if (fx.close) parser.finish();
  } catch (e) {
    if (!(e instanceof Http1Error)) throw e;
    error = e;
    // A failed parser stays failed.
    for (const again of [() => parser.push(bytesOf("H")), () => parser.finish()]) {
      try {
        again();
        problems.push("the parser went on after failing");
      } catch (e2) {
        if (e2 !== e) problems.push("a failed parser threw a different error");
      }
    }
  }
  return error ? { events, error, problems } : { events, problems };
}

function check(fx: ResponseFixture, chunks: Uint8Array[]): CaseResult["detail"] | undefined {
  const out = feed(fx, chunks);
  const got = JSON.stringify(out.events);
  const want = JSON.stringify(fx.expect);
  if (out.problems.length) return out.problems.join("; ");
  if (got !== want) return `events ${got}, expected ${want}${out.error ? ` (error: ${out.error.message})` : ""}`;
  if (!fx.error) return out.error ? `unexpected ${out.error.code}: ${out.error.message}` : undefined;
  if (!out.error) return `expected ${fx.error[0]}, no error`;
  if (out.error.code !== fx.error[0] || !out.error.message.includes(fx.error[1])) {
    return `got ${out.error.code}: ${out.error.message}; expected ${fx.error[0]} with "${fx.error[1]}"`;
  }
  return undefined;
}

function responseCases(): CaseResult[] {
  const results: CaseResult[] = [];
  RESPONSES.forEach((fx, index) => {
    const bytes = bytesOf(fx.wire);
    const ways: [string, Uint8Array[][]][] = [
      ["whole", [[bytes.slice()]]],
      ["byte by byte", [split(bytes, () => 1)]],
      ["random splits", [1, 2, 3].map((seed) => {
        const next = prng(index * 7919 + seed);
        const most = seed === 3 ? 200 : 12;
        return split(bytes, () => 1 + (next() % most));
      })],
    ];
    for (const [way, runs] of ways) {
      let detail: string | undefined;
      for (const chunks of runs) {
        detail = check(fx, chunks);
        if (detail) break;
      }
      const summary = fx.error ? `${fx.error[0]} as expected` : `${fx.expect.length} events`;
      results.push({ name: `response: ${fx.name} (${way})`, ok: detail === undefined, detail: detail ?? summary });
    }
  });
  return results;
}

// ---- request encoding ----

interface RequestFixture {
  name: string;
  request: Http1Request;
  /** Expected bytes, one char per byte. */
  wire?: string;
  /** Expected refusal: a fragment of the bad-request message. */
  refused?: string;
}

const GET: Http1Request = { method: "GET", path: "/", host: "example.com", headers: [] };

const REQUESTS: RequestFixture[] = [
  { name: "GET", request: GET, wire: "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n" },
  {
    name: "headers in order, with port in host and a query",
    request: { method: "GET", path: "/a/b?x=1&y=%20", host: "example.com:8080", headers: [["Accept", "*/*"], ["X-Id", "42"], ["X-Id", "43"]] },
    wire: "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nX-Id: 42\r\nX-Id: 43\r\n\r\n",
  },
  {
    name: "POST with Content-Length",
    request: { method: "POST", path: "/up", host: "h", headers: [["Content-Type", "text/plain"]], contentLength: 5 },
    wire: "POST /up HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
  },
  { name: "Content-Length 0", request: { ...GET, method: "PUT", contentLength: 0 }, wire: "PUT / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n" },
  { name: "chunked", request: { ...GET, method: "POST", chunked: true }, wire: "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n" },
  { name: "chunked false, no length", request: { ...GET, chunked: false }, wire: "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n" },
  {
    name: "header value with HTAB, empty value, Latin-1 char",
    request: { ...GET, headers: [["X-A", "a\tb"], ["X-Empty", ""], ["X-L", "caf\u00e9"]] },
    wire: "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\tb\r\nX-Empty: \r\nX-L: caf\xe9\r\n\r\n",
  },
  { name: "extension method", request: { ...GET, method: "M-SEARCH" }, wire: "M-SEARCH / HTTP/1.1\r\nHost: example.com\r\n\r\n" },
  // refusals
  { name: "method with a space", request: { ...GET, method: "GET /x" }, refused: 'method "GET /x" has a forbidden character U+0020 at 3' },
  { name: "method with CRLF", request: { ...GET, method: "GET\r\n" }, refused: 'method "GET\\r\\n" has a forbidden character U+000D' },
  { name: "empty method", request: { ...GET, method: "" }, refused: 'method "" is empty' },
  { name: "relative path", request: { ...GET, path: "index.html" }, refused: 'path "index.html" must start with "/"' },
  { name: "empty path", request: { ...GET, path: "" }, refused: 'path "" must start with "/"' },
  { name: "path with a space", request: { ...GET, path: "/a b" }, refused: 'path "/a b" has a forbidden character U+0020 at 2' },
  { name: "path injecting a header", request: { ...GET, path: "/a HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /b" }, refused: "path \"/a HTTP/1.1\\r\\nX-Evil: 1\\r\\n\\r\\nGET /b\" has a forbidden character U+0020 at 2" },
  { name: "path with LF", request: { ...GET, path: "/a\nb" }, refused: "has a forbidden character U+000A at 2" },
  { name: "path with NUL", request: { ...GET, path: "/a\0" }, refused: "path \"/a\\u0000\" has a forbidden character U+0000" },
  { name: "path with TAB", request: { ...GET, path: "/a\tb" }, refused: "forbidden character U+0009" },
  { name: "path with DEL", request: { ...GET, path: "/\x7f" }, refused: "forbidden character U+007F" },
  { name: "path not percent-encoded", request: { ...GET, path: "/caf\u00e9" }, refused: "forbidden character U+00E9" },
  { name: "host with CRLF", request: { ...GET, host: "a\r\nX-Evil: 1" }, refused: 'host "a\\r\\nX-Evil: 1" has a forbidden character U+000D at 1' },
  { name: "host with a space", request: { ...GET, host: "a b" }, refused: "host \"a b\" has a forbidden character U+0020" },
  { name: "empty host", request: { ...GET, host: "" }, refused: 'host "" is empty' },
  { name: "header name with a space", request: { ...GET, headers: [["X Y", "1"]] }, refused: 'header name "X Y" has a forbidden character U+0020' },
  { name: "header name with a colon", request: { ...GET, headers: [["X:Y", "1"]] }, refused: 'header name "X:Y" has a forbidden character U+003A' },
  { name: "header name with CRLF", request: { ...GET, headers: [["X\r\nEvil", "1"]] }, refused: "forbidden character U+000D" },
  { name: "empty header name", request: { ...GET, headers: [["", "1"]] }, refused: 'header name "" is empty' },
  { name: "non-ASCII header name", request: { ...GET, headers: [["X-\u00e9", "1"]] }, refused: "forbidden character U+00E9" },
  // the value itself is never shown: it may be a credential
  { name: "header value injecting a header", request: { ...GET, headers: [["X-A", "1\r\nX-Evil: 2"]] }, refused: 'value of header "X-A" has a forbidden character U+000D at 1' },
  { name: "header value with a bare LF", request: { ...GET, headers: [["X-A", "1\nX-Evil: 2"]] }, refused: "forbidden character U+000A at 1" },
  { name: "header value with NUL", request: { ...GET, headers: [["X-A", "a\0"]] }, refused: "forbidden character U+0000 at 1" },
  { name: "header value with DEL", request: { ...GET, headers: [["X-A", "a\x7f"]] }, refused: "forbidden character U+007F" },
  { name: "header value beyond Latin-1", request: { ...GET, headers: [["X-A", "\u20ac"]] }, refused: "forbidden character U+20AC" },
  { name: "Host header given by the caller", request: { ...GET, headers: [["host", "evil.example"]] }, refused: 'header name "host" is written by encodeRequestHead' },
  { name: "Content-Length header given by the caller", request: { ...GET, headers: [["Content-Length", "0"]] }, refused: 'header name "Content-Length" is written by encodeRequestHead' },
  { name: "Transfer-Encoding header given by the caller", request: { ...GET, headers: [["Transfer-Encoding", "chunked"]] }, refused: "is written by encodeRequestHead" },
  { name: "negative contentLength", request: { ...GET, contentLength: -1 }, refused: 'contentLength "-1" is not a non-negative integer' },
  { name: "fractional contentLength", request: { ...GET, contentLength: 1.5 }, refused: 'contentLength "1.5" is not a non-negative integer' },
  { name: "NaN contentLength", request: { ...GET, contentLength: NaN }, refused: 'contentLength "NaN" is not a non-negative integer' },
  { name: "contentLength with chunked", request: { ...GET, contentLength: 5, chunked: true }, refused: 'contentLength "5" cannot go with chunked' },
];

function requestCases(): CaseResult[] {
  const results: CaseResult[] = REQUESTS.map((fx) => {
    let detail: string | undefined;
    try {
      const bytes = encodeRequestHead(fx.request);
      if (fx.refused !== undefined) detail = `encoded ${JSON.stringify(latin1(bytes))}, expected a refusal`;
      else if (latin1(bytes) !== fx.wire) detail = `encoded ${JSON.stringify(latin1(bytes))}, expected ${JSON.stringify(fx.wire)}`;
    } catch (e) {
      if (!(e instanceof Http1Error)) throw e;
      if (fx.refused === undefined) detail = `refused: ${e.message}`;
      else if (e.code !== "bad-request" || !e.message.includes(fx.refused)) detail = `got ${e.code}: ${e.message}; expected bad-request with ${JSON.stringify(fx.refused)}`;
    }
    return { name: `request: ${fx.name}`, ok: detail === undefined, detail: detail ?? (fx.refused ? "refused as expected" : "bytes as expected") };
  });

  const chunkHeaders: [number, string | undefined][] = [
    [1, "1\r\n"], [10, "a\r\n"], [255, "ff\r\n"], [0x10000, "10000\r\n"], [Number.MAX_SAFE_INTEGER, "1fffffffffffff\r\n"],
    [0, undefined], [-1, undefined], [1.5, undefined], [NaN, undefined], [Infinity, undefined],
  ];
  for (const [length, wire] of chunkHeaders) {
    let detail: string | undefined;
    try {
      const got = latin1(encodeChunkHeader(length));
      if (got !== wire) detail = `encoded ${JSON.stringify(got)}, expected ${wire === undefined ? "a refusal" : JSON.stringify(wire)}`;
    } catch (e) {
      if (!(e instanceof Http1Error && e.code === "bad-request") || wire !== undefined) detail = `threw ${String(e)}`;
    }
    results.push({ name: `chunk header: ${length}`, ok: detail === undefined, detail: detail ?? (wire ? "bytes as expected" : "refused as expected") });
  }

  const constants = latin1(CHUNK_END) === "\r\n" && latin1(LAST_CHUNK) === "0\r\n\r\n";
  results.push({ name: "CHUNK_END and LAST_CHUNK bytes", ok: constants, detail: constants ? "bytes as expected" : `${JSON.stringify(latin1(CHUNK_END))} ${JSON.stringify(latin1(LAST_CHUNK))}` });

  // The chunk framing the encoder writes is what the parser reads.
  const pieces = ["hello", " ", "world, ".repeat(40)];
  let framed = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const p of pieces) framed += latin1(encodeChunkHeader(p.length)) + p + latin1(CHUNK_END);
  framed += latin1(LAST_CHUNK);
  const next = prng(7);
  const roundTrip = check({
    name: "round trip", wire: framed,
    expect: [H(200, "OK", [["transfer-encoding", "chunked"]], { chunked: true }), B(pieces.join("")), E],
  }, split(bytesOf(framed), () => 1 + (next() % 17)));
  results.push({ name: "chunk framing round trip through the parser", ok: roundTrip === undefined, detail: roundTrip ?? "body as expected" });
  return results;
}

/** Every fixture, every way of feeding it; the same on Node and XS. */
export function runHttp1Cases(): CaseResult[] {
  return [...responseCases(), ...requestCases()];
}
