// Encodes the head of an HTTP/1.1 request and the framing of a chunked
// request body. This is a security boundary: method, path, host and headers
// come from policy and from stream metadata, and one CR or LF let through
// would let them add headers or smuggle a second request. So every field is
// checked and a bad one refused (Http1Error "bad-request"), never cleaned up.

import { Http1Error } from "./response-parser.js";
import { findNotField, findNotToken, findNotVisible } from "../../util/chars.js";

export interface Http1Request {
  readonly method: string;
  /** Origin form: starts with "/", already percent-encoded (visible ASCII only). */
  readonly path: string;
  /** The Host header value: name or address, with ":port" when not the default. */
  readonly host: string;
  /** Sent in order after Host. Values go out one byte per char, so chars
   *  above U+00FF are refused: UTF-8 text must be encoded by the caller. */
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>;
  readonly contentLength?: number;
  readonly chunked?: boolean;
}

/** Written from host, contentLength and chunked only, so that the framing
 *  always says one thing. */
const RESERVED = Object.freeze(["host", "content-length", "transfer-encoding"]);

export function encodeRequestHead(request: Http1Request): Uint8Array {
  const { method, path, host, contentLength } = request;
  checkToken(method, "method");
  if (path[0] !== "/") refuse("path", path, `must start with "/"`);
  checkChars(path, "path", findNotVisible(path));
  if (host === "") refuse("host", host, "is empty");
  checkChars(host, "host", findNotVisible(host));
  let text = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n`;
  for (const [name, value] of request.headers) {
    checkToken(name, "header name");
    if (RESERVED.includes(name.toLowerCase())) refuse("header name", name, "is written by encodeRequestHead from its own fields");
    // the value is left out of the message: it may be a credential
    checkChars(value, `value of header "${name}"`, findNotField(value), false);
    text += `${name}: ${value}\r\n`;
  }
  if (request.chunked) {
    if (contentLength !== undefined) refuse("contentLength", String(contentLength), "cannot go with chunked");
    text += "Transfer-Encoding: chunked\r\n";
  } else if (contentLength !== undefined) {
    if (!Number.isSafeInteger(contentLength) || contentLength < 0) refuse("contentLength", String(contentLength), "is not a non-negative integer");
    text += `Content-Length: ${contentLength}\r\n`;
  }
  return latin1Bytes(`${text}\r\n`);
}

/** The line that starts a chunk of `length` bytes; the data and CHUNK_END follow. */
export function encodeChunkHeader(length: number): Uint8Array {
  // A zero-length chunk would end the body: that is LAST_CHUNK's job.
  if (!Number.isSafeInteger(length) || length <= 0) {
    throw new Http1Error("bad-request", `chunk length ${length} is not a positive integer (LAST_CHUNK ends the body)`);
  }
  return latin1Bytes(`${length.toString(16)}\r\n`);
}

/** Follows the data of every chunk. Shared: do not modify. */
export const CHUNK_END = /* @__PURE__ */ latin1Bytes("\r\n");
/** Ends a chunked body (no trailers). Shared: do not modify. */
export const LAST_CHUNK = /* @__PURE__ */ latin1Bytes("0\r\n\r\n");

function checkToken(text: string, field: string): void {
  if (text === "") refuse(field, text, "is empty");
  checkChars(text, field, findNotToken(text));
}

/** Refuses `text` when `bad`, the index of a char it may not hold, is not -1. */
function checkChars(text: string, field: string, bad: number, show = true): void {
  if (bad < 0) return;
  const c = text.charCodeAt(bad);
  refuse(field, show ? text : undefined, `has a forbidden character U+${c.toString(16).padStart(4, "0").toUpperCase()} at ${bad}`);
}

function refuse(field: string, text: string | undefined, why: string): never {
  // JSON quoting shows CR, LF and NUL as escapes instead of breaking the message.
  const shown = text === undefined ? "" : ` ${JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text)}`;
  throw new Http1Error("bad-request", `${field}${shown} ${why}`);
}

function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  let i = 0;
  // for...of walks the string once (indexing would rescan it on XS)
  for (const ch of text) out[i++] = ch.charCodeAt(0);
  return out;
}
