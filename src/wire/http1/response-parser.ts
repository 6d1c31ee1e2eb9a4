// Streaming HTTP/1.1 response parser for the client side of a connection.
// Byte-driven and resumable: a response may arrive in any split, down to one
// byte per push. Body bytes are handed on as views of the input, never
// copied or gathered; only the lines of a head (and of a chunked trailer) are
// assembled, and only when one spans two pushes, within a hard size limit.
//
// Framing follows RFC 9112: Content-Length, chunked, or until the connection
// closes; no body for 1xx, 204, 304 and answers to HEAD; interim 1xx heads
// skipped. Anything the peer can get wrong is an Http1Error with a code.

import { findNotField, findNotToken, isDigits, isPlainText, isPlainToken } from "../../util/chars.js";

export type Http1ErrorCode =
  | "head-too-large" // status line + headers over maxHeadBytes, or more than maxHeaders fields
  | "bad-status-line" // not "HTTP/1.0|1.1 NNN reason", or a bad line ending in it
  | "bad-header" // malformed or folded field line, unsupported Transfer-Encoding
  | "bad-length" // Content-Length not digits, conflicting, too large, or next to Transfer-Encoding
  | "bad-chunk" // chunk-size line, CRLF after chunk data, or trailer section
  | "unexpected-eof" // finish() before the response was complete
  | "body-after-end" // bytes after a response that ends HTTP on the connection
  | "bad-request"; // request.ts refused a request field

export class Http1Error extends Error {
  // A field, defined on the instance: assigning this.name throws on the
  // device, where Error.prototype is frozen in flash.
  override readonly name = "Http1Error";
  readonly code: Http1ErrorCode;
  constructor(code: Http1ErrorCode, message: string) {
    super(`http1: ${message}`);
    this.code = code;
  }
}

export interface Http1Head {
  readonly status: number;
  readonly reason: string;
  /** In arrival order, duplicates kept. Names lower-cased; values trimmed and
   *  decoded one char per byte (Latin-1), as HTTP defines field bytes. */
  readonly headers: ReadonlyArray<readonly [name: string, value: string]>;
  /** The Content-Length header. For a no-body response (HEAD, 304) it
   *  describes the resource, not this message. */
  readonly contentLength?: number;
  /** Transfer-Encoding is chunked. No body bytes follow a no-body response even then. */
  readonly chunked: boolean;
  /** Another response may follow on this connection. False for a body that
   *  runs until the connection closes, and for 101 (the connection leaves HTTP). */
  readonly keepAlive: boolean;
}

export interface Http1Limits {
  /** Status line + header lines + the empty line, CRLFs included. Also
   *  bounds a chunked body's trailer section. */
  readonly maxHeadBytes?: number;
  /** Header fields in one head (and trailer fields in one trailer section). */
  readonly maxHeaders?: number;
  /** A chunk-size line, extensions and CRLF included. */
  readonly maxChunkLine?: number;
}

export const DEFAULT_LIMITS = Object.freeze({ maxHeadBytes: 8192, maxHeaders: 100, maxChunkLine: 64 } as const);

export interface Http1ParserOptions {
  /** The final head of a response (interim 1xx heads other than 101 are skipped). */
  onHead(head: Http1Head): void;
  /** Body bytes: a view into the pushed input, valid during the call only. */
  onBody(bytes: Uint8Array): void;
  /** The response is complete. When head.keepAlive, the parser is already
   *  waiting for the next response, so expectNoBody() may be called from here. */
  onEnd(): void;
  readonly limits?: Http1Limits;
}

const HTAB = 9, LF = 10, CR = 13, SP = 32, SEMI = 59;

/** Allowed in a field value and a reason phrase: HTAB, SP, visible ASCII and
 *  obs-text (0x80-0xFF); no other control character, no DEL. */
const isFieldByte = (b: number): boolean => b === HTAB || (b >= 0x20 && b !== 0x7f && b <= 0xff);

// Parser states. Line states assemble CRLF-terminated lines; the others
// consume bytes as they come.
const HEAD = 0; // status line and header lines (also interim 1xx heads)
const BODY_LENGTH = 1; // Content-Length body
const BODY_CLOSE = 2; // body until the connection closes
const CHUNK_SIZE = 3; // hex digits of a chunk-size line
const CHUNK_EXT = 4; // whitespace or extension after the digits, up to CR
const CHUNK_SIZE_LF = 5;
const CHUNK_DATA = 6;
const CHUNK_DATA_CR = 7;
const CHUNK_DATA_LF = 8;
const TRAILER = 9; // trailer lines after the last chunk, up to the empty line
const DONE = 10; // no more HTTP on this connection
const FAILED = 11;
type State = typeof HEAD | typeof BODY_LENGTH | typeof BODY_CLOSE | typeof CHUNK_SIZE | typeof CHUNK_EXT
  | typeof CHUNK_SIZE_LF | typeof CHUNK_DATA | typeof CHUNK_DATA_CR | typeof CHUNK_DATA_LF
  | typeof TRAILER | typeof DONE | typeof FAILED;

/** Largest chunk size that one more hex digit keeps a safe integer. */
const MAX_CHUNK_BEFORE_DIGIT = 0x1ffffffffffff;
const EMPTY = new Uint8Array(0);

/**
 * Parses the responses arriving on one connection, one after another.
 *
 * push(bytes) consumes input up to the end of the current response and
 * returns how many bytes it took: all of them, unless a response ended inside
 * the input. The rest belongs to what follows: when the ended head said
 * keepAlive, push it again (the parser is already waiting for the next
 * response); after a 101 it belongs to the upgraded protocol; otherwise the
 * peer sent bytes after the last response, and pushing them is
 * 'body-after-end'. A non-empty push always consumes at least one byte.
 *
 * Errors: push() and finish() throw Http1Error for a fault of the peer. Any
 * exception out of them, a callback's included, leaves the parser failed: later
 * calls rethrow it until reset().
 */
export class Http1ResponseParser {
  readonly #on: Http1ParserOptions;
  /** One field for the three limits: on XS each field is a slot in every parser. */
  readonly #limits: Required<Http1Limits>;

  #state: State = HEAD;
  #error: unknown;
  /** No byte of the current response has been consumed yet. */
  #fresh = true;
  /** The current response answers a HEAD request. */
  #noBody = false;
  /** Set by #end(), so that push() stops right after a response. */
  #ended = false;

  // A line that spans pushes, and the bytes of the current head or trailer section.
  #line = EMPTY;
  #lineLength = 0;
  #sectionBytes = 0;
  #fields = 0;

  // The head under construction; #minor < 0 until the status line is read.
  #minor = -1;
  #status = 0;
  #reason = "";
  #headers: [string, string][] = [];
  #keepAlive = false;
  /** Length of the last head #wholeHead read (see there). */
  #lastHead = 0;

  /** Bytes left in the Content-Length body or the current chunk. */
  #remaining = 0;
  #chunkSize = 0;
  #chunkDigits = 0;
  #chunkLineBytes = 0;
  /** A ';' was seen on the chunk-size line: what follows is an extension. */
  #chunkExtension = false;

  constructor(options: Http1ParserOptions) {
    this.#on = options;
    const l = options.limits;
    this.#limits = l ? {
      maxHeadBytes: l.maxHeadBytes ?? DEFAULT_LIMITS.maxHeadBytes,
      maxHeaders: l.maxHeaders ?? DEFAULT_LIMITS.maxHeaders,
      maxChunkLine: l.maxChunkLine ?? DEFAULT_LIMITS.maxChunkLine,
    } : DEFAULT_LIMITS;
  }

  /**
   * The next response answers a HEAD request: it has no body whatever its
   * headers say. Call before its first byte is pushed (when sending the
   * request, or from the previous response's onEnd); it applies to that one
   * response. Throws Error when called later.
   */
  expectNoBody(): void {
    if (this.#state !== HEAD || !this.#fresh) {
      throw new Error("Http1ResponseParser: expectNoBody() must come before the first byte of the response");
    }
    this.#noBody = true;
  }

  /** Consumes bytes up to the end of the current response; returns the count taken. */
  push(bytes: Uint8Array): number {
    if (this.#state === FAILED) throw this.#error;
    try {
      return this.#consume(bytes);
    } catch (e) {
      this.#state = FAILED;
      this.#error = e;
      throw e;
    }
  }

  /**
   * The connection closed. Ends a body that runs until close; between two
   * responses it is a clean close (whether a response was still owed is the
   * caller's knowledge); anywhere else it is 'unexpected-eof'.
   */
  finish(): void {
    if (this.#state === FAILED) throw this.#error;
    try {
      switch (this.#state) {
        case HEAD:
          if (!this.#fresh) throw new Http1Error("unexpected-eof", "connection closed inside the response head");
          this.#state = DONE;
          return;
        case BODY_LENGTH:
          throw new Http1Error("unexpected-eof", `connection closed with ${this.#remaining} body bytes still to come`);
        case BODY_CLOSE:
          this.#end();
          return;
        case DONE:
          return;
        default:
          throw new Http1Error("unexpected-eof", "connection closed inside the chunked body");
      }
    } catch (e) {
      this.#state = FAILED;
      this.#error = e;
      throw e;
    }
  }

  /** Back to the initial state, failure cleared: for a new connection. */
  reset(): void {
    this.#error = undefined;
    this.#noBody = false;
    this.#ended = false;
    this.#startResponse();
  }

  #startResponse(): void {
    this.#state = HEAD;
    this.#fresh = true;
    this.#startSection();
    this.#minor = -1;
    this.#status = 0;
    this.#reason = "";
    this.#headers = [];
  }

  #startSection(): void {
    this.#line = EMPTY; // a long line's buffer is not kept for the whole connection
    this.#lineLength = 0;
    this.#sectionBytes = 0;
    this.#fields = 0;
  }

  #consume(bytes: Uint8Array): number {
    const n = bytes.length;
    let i = 0;
    this.#ended = false;
    while (i < n) {
      switch (this.#state) {
        case HEAD: {
          // a whole head in this push, as it usually comes, is read in one go
          const whole = this.#fresh;
          this.#fresh = false;
          const after = whole ? this.#wholeHead(bytes, i) : -1;
          i = after >= 0 ? after : this.#readLine(bytes, i);
          break;
        }
        case TRAILER:
          i = this.#readLine(bytes, i);
          break;
        case BODY_LENGTH: {
          const take = Math.min(this.#remaining, n - i);
          this.#remaining -= take;
          this.#on.onBody(bytes.subarray(i, i + take));
          i += take;
          if (this.#remaining === 0) this.#end();
          break;
        }
        case BODY_CLOSE:
          this.#on.onBody(i === 0 ? bytes : bytes.subarray(i));
          i = n;
          break;
        case CHUNK_SIZE:
          this.#chunkSizeByte(bytes[i]!);
          i++;
          break;
        case CHUNK_EXT:
          this.#chunkExtensionByte(bytes[i]!);
          i++;
          break;
        case CHUNK_SIZE_LF:
          this.#countChunkLine();
          if (bytes[i] !== LF) throw new Http1Error("bad-chunk", "CR without LF on a chunk-size line");
          i++;
          if (this.#chunkSize === 0) {
            this.#state = TRAILER;
            this.#startSection();
          } else {
            this.#state = CHUNK_DATA;
            this.#remaining = this.#chunkSize;
          }
          break;
        case CHUNK_DATA: {
          const take = Math.min(this.#remaining, n - i);
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = CHUNK_DATA_CR;
          this.#on.onBody(bytes.subarray(i, i + take));
          i += take;
          break;
        }
        case CHUNK_DATA_CR:
          if (bytes[i] !== CR) throw noCrlfAfterData(bytes[i]!, this.#chunkSize);
          i++;
          this.#state = CHUNK_DATA_LF;
          break;
        case CHUNK_DATA_LF:
          if (bytes[i] !== LF) throw noCrlfAfterData(bytes[i]!, this.#chunkSize);
          i++;
          this.#startChunk();
          break;
        case DONE:
          throw new Http1Error("body-after-end", this.#status === 101
            ? "bytes pushed after a 101 response: they belong to the upgraded protocol"
            : "bytes after the last response on this connection");
        default:
          throw new Error("Http1ResponseParser: unreachable state");
      }
      if (this.#ended) return i;
    }
    return n;
  }

  /**
   * Takes bytes up to and including the next LF, within what is left of the
   * section's budget. A complete line is parsed from the input itself when
   * it did not span pushes.
   */
  #readLine(bytes: Uint8Array, i: number): number {
    const budget = this.#limits.maxHeadBytes - this.#sectionBytes;
    const stop = Math.min(bytes.length, i + budget);
    const lf = bytes.subarray(i, stop).indexOf(LF);
    if (lf < 0) {
      if (stop - i === budget) {
        throw this.#state === HEAD
          ? new Http1Error("head-too-large", `response head larger than ${this.#limits.maxHeadBytes} bytes`)
          : new Http1Error("bad-chunk", `trailer section larger than ${this.#limits.maxHeadBytes} bytes`);
      }
      this.#append(bytes, i, stop);
      this.#sectionBytes += stop - i;
      return stop;
    }
    const end = i + lf;
    this.#sectionBytes += lf + 1;
    let src = bytes;
    let start = i;
    let stopAt = end;
    if (this.#lineLength > 0) {
      this.#append(bytes, i, end);
      src = this.#line;
      start = 0;
      stopAt = this.#lineLength;
      this.#lineLength = 0;
    }
    if (stopAt === start || src[stopAt - 1] !== CR) {
      throw this.#state === TRAILER ? new Http1Error("bad-chunk", "trailer line ends in a bare LF")
        : this.#minor < 0 ? new Http1Error("bad-status-line", "status line ends in a bare LF")
        : new Http1Error("bad-header", "header line ends in a bare LF");
    }
    if (this.#state === HEAD) this.#headLine(src, start, stopAt - 1);
    else this.#trailerLine(src, start, stopAt - 1);
    return end + 1;
  }

  /**
   * The head starting at bytes[i], when all of it is there and it is
   * well-formed, read with a few native string operations per line (the
   * line-by-line path costs about three times as much on XS); returns where
   * the head ended. -1 leaves everything to the line-by-line path, which
   * also says what is wrong with a head this refuses: one that is cut off,
   * over the limits, malformed in any way, or an interim (1xx) response.
   * The bytes become text a piece at a time until the empty line shows: on
   * XS a byte costs about 6 computrons to turn into text, and 8 to search in
   * a Uint8Array, where a search in text is one native call.
   */
  #wholeHead(bytes: Uint8Array, i: number): number {
    const stop = Math.min(bytes.length, i + this.#limits.maxHeadBytes);
    let text = "";
    let end = -1;
    // the first piece as long as the previous head on this connection and a bit: the same server's heads differ little
    for (let at = i, piece = this.#lastHead + HEAD_PIECE / 4; end < 0; at += piece, piece = HEAD_PIECE) {
      if (at >= stop) return -1;
      const from = text.length;
      text += latin1(bytes, at, Math.min(stop, at + piece));
      end = text.indexOf("\r\n\r\n", from < 3 ? 0 : from - 3);
    }
    this.#lastHead = end + 4;
    // The head is bytes[i, i + end + 4). What it takes is checked with a few
    // native calls (a loop over its chars would cost several times more on
    // XS); anything unusual, a bare CR or LF, HTAB, a quote, a name of rarer
    // tchars, is left to the line-by-line path, which refuses what is wrong.
    const head = text.slice(0, end);
    const lines = head.split("\r\n");
    if (lines.length - 1 > this.#limits.maxHeaders || !isPlainText(head, lines.length - 1)) return -1;
    const first = lines[0]!;
    // "HTTP/1.x ddd", then SP and the reason phrase if there is one; a code of 200 or more is its own spelling
    if (!first.startsWith("HTTP/1.1 ") && !first.startsWith("HTTP/1.0 ")) return -1;
    const code = first.slice(9, 12);
    const status = Number(code);
    if (!(status >= 200) || String(status) !== code || (first.length > 12 && first.charCodeAt(12) !== SP)) return -1;
    const headers: [string, string][] = [];
    let names = "";
    for (let k = 1; k < lines.length; k++) {
      const line = lines[k]!;
      const colon = line.indexOf(":");
      if (colon < 1) return -1;
      const name = line.slice(0, colon);
      names += name;
      headers.push([name.toLowerCase(), fieldValue(line, colon + 1)]);
    }
    if (!isPlainToken(names)) return -1; // all the names at once
    this.#minor = first.charCodeAt(7) - 0x30;
    this.#status = status;
    this.#reason = first.slice(13);
    this.#headers = headers;
    this.#fields = headers.length;
    this.#sectionBytes = end + 4;
    this.#headDone();
    return i + end + 4;
  }

  #append(bytes: Uint8Array, start: number, end: number): void {
    const length = this.#lineLength + end - start;
    if (length > this.#line.length) {
      // Doubling keeps a line that arrives byte by byte linear; the budget caps it.
      const grown = new Uint8Array(Math.min(this.#limits.maxHeadBytes, Math.max(length, 2 * this.#line.length, 64)));
      grown.set(this.#line.subarray(0, this.#lineLength));
      this.#line = grown;
    }
    this.#line.set(bytes.subarray(start, end), this.#lineLength);
    this.#lineLength = length;
  }

  /** One line of a head, CRLF excluded: src[start, end). */
  #headLine(src: Uint8Array, start: number, end: number): void {
    if (this.#minor < 0) {
      this.#statusLine(src, start, end);
    } else if (start === end) {
      this.#headDone();
    } else {
      if (src[start] === SP || src[start] === HTAB) throw new Http1Error("bad-header", "folded header line (obs-fold)");
      if (++this.#fields > this.#limits.maxHeaders) throw new Http1Error("head-too-large", `more than ${this.#limits.maxHeaders} header fields`);
      this.#headers.push(parseField(src, start, end, "bad-header", "header"));
    }
  }

  #statusLine(b: Uint8Array, s: number, e: number): void {
    const bad = (why: string) => new Http1Error("bad-status-line", `${why}: "${preview(b, s, e)}"`);
    if (s === e) throw bad("empty status line");
    for (let k = 0; k < 7; k++) {
      if (s + k === e || b[s + k] !== "HTTP/1.".charCodeAt(k)) throw bad("not an HTTP/1.x status line");
    }
    if (e - s < 12) throw bad("status line too short");
    const minor = b[s + 7]! - 0x30;
    if (minor !== 0 && minor !== 1) throw bad("unsupported HTTP version");
    if (b[s + 8] !== SP) throw bad("no space after the version");
    let status = 0;
    for (let k = 9; k < 12; k++) {
      const d = b[s + k]! - 0x30;
      if (!(d >= 0 && d <= 9)) throw bad("status code is not 3 digits");
      status = status * 10 + d;
    }
    if (status < 100) throw bad("status code below 100");
    // "HTTP/1.1 200" without SP and reason is common enough to accept.
    if (e > s + 12 && b[s + 12] !== SP) throw bad("no space after the status code");
    for (let k = s + 13; k < e; k++) if (!isFieldByte(b[k]!)) throw bad(`${byteName(b[k]!)} in the reason phrase`);
    this.#minor = minor;
    this.#status = status;
    this.#reason = latin1(b, Math.min(s + 13, e), e);
  }

  #headDone(): void {
    const status = this.#status;
    if (status < 200 && status !== 101) {
      // An interim response (100 Continue, 103 Early Hints): the final one follows.
      this.#startResponse();
      this.#fresh = false;
      return;
    }
    const headers = this.#headers;
    let contentLength: number | undefined;
    let transferEncoding: string | undefined;
    let close = false;
    let keepAliveToken = false;
    // indexed, and the usual values first: on XS every iterator and closure is metered
    for (let k = 0; k < headers.length; k++) {
      const field = headers[k]!; // no destructuring: on XS it runs the array iterator
      const name = field[0];
      const value = field[1];
      if (name === "content-length") {
        contentLength = contentLength === undefined && isDigits(value) && value.length < 16 ? Number(value) : parseContentLength(value, contentLength);
      } else if (name === "transfer-encoding") {
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding},${value}`;
      } else if (name === "connection") {
        const v = value.toLowerCase();
        if (v === "keep-alive") keepAliveToken = true;
        else if (v === "close") close = true;
        else {
          for (const t of listTokens(value)) {
            if (t === "close") close = true;
            else if (t === "keep-alive") keepAliveToken = true;
          }
        }
      }
    }
    let chunked = false;
    if (transferEncoding !== undefined) {
      const codings = listTokens(transferEncoding);
      if (codings.length !== 1 || codings[0] !== "chunked") {
        throw new Http1Error("bad-header", `unsupported Transfer-Encoding "${transferEncoding}" (only chunked)`);
      }
      // Two framings at once is how responses get split or smuggled (RFC 9112 6.3).
      if (contentLength !== undefined) throw new Http1Error("bad-length", "both Content-Length and Transfer-Encoding");
      chunked = true;
    }
    const noBody = this.#noBody || status === 101 || status === 204 || status === 304;
    const untilClose = !noBody && !chunked && contentLength === undefined;
    const keepAlive = status !== 101 && !untilClose && !close && (this.#minor === 1 || keepAliveToken);
    const reason = this.#reason;
    const head: Http1Head = contentLength !== undefined
      ? { status, reason, headers, contentLength, chunked, keepAlive }
      : { status, reason, headers, chunked, keepAlive };
    this.#keepAlive = keepAlive;
    this.#line = EMPTY;
    if (noBody || contentLength === 0) {
      this.#on.onHead(head);
      this.#end();
    } else if (chunked) {
      this.#startChunk();
      this.#on.onHead(head);
    } else if (contentLength !== undefined) {
      this.#state = BODY_LENGTH;
      this.#remaining = contentLength;
      this.#on.onHead(head);
    } else {
      this.#state = BODY_CLOSE;
      this.#on.onHead(head);
    }
  }

  #startChunk(): void {
    this.#state = CHUNK_SIZE;
    this.#chunkSize = 0;
    this.#chunkDigits = 0;
    this.#chunkLineBytes = 0;
    this.#chunkExtension = false;
  }

  #countChunkLine(): void {
    if (++this.#chunkLineBytes > this.#limits.maxChunkLine) {
      throw new Http1Error("bad-chunk", `chunk-size line longer than ${this.#limits.maxChunkLine} bytes`);
    }
  }

  #chunkSizeByte(c: number): void {
    this.#countChunkLine();
    const digit = hexValue(c);
    if (digit >= 0) {
      if (this.#chunkSize > MAX_CHUNK_BEFORE_DIGIT) throw new Http1Error("bad-chunk", "chunk size too large");
      this.#chunkSize = this.#chunkSize * 16 + digit;
      this.#chunkDigits++;
    } else if (this.#chunkDigits === 0) {
      throw new Http1Error("bad-chunk", c === CR ? "missing chunk size" : `chunk size starts with ${byteName(c)}, not a hex digit`);
    } else if (c === CR) {
      this.#state = CHUNK_SIZE_LF;
    } else if (c === SEMI || c === SP || c === HTAB) {
      this.#state = CHUNK_EXT;
      this.#chunkExtension = c === SEMI;
    } else {
      throw new Http1Error("bad-chunk", `${byteName(c)} after the chunk size`);
    }
  }

  /** Extensions are skipped, but still checked, so a stray LF or NUL cannot hide in them. */
  #chunkExtensionByte(c: number): void {
    this.#countChunkLine();
    if (c === CR) this.#state = CHUNK_SIZE_LF;
    else if (!this.#chunkExtension && c === SEMI) this.#chunkExtension = true;
    else if (!this.#chunkExtension && c !== SP && c !== HTAB) throw new Http1Error("bad-chunk", `${byteName(c)} after the chunk size`);
    else if (!isFieldByte(c)) throw new Http1Error("bad-chunk", `${byteName(c)} in a chunk extension`);
  }

  /** Trailer fields are checked like headers, then dropped. */
  #trailerLine(src: Uint8Array, start: number, end: number): void {
    if (start === end) {
      this.#end();
      return;
    }
    if (src[start] === SP || src[start] === HTAB) throw new Http1Error("bad-chunk", "folded trailer line (obs-fold)");
    if (++this.#fields > this.#limits.maxHeaders) throw new Http1Error("bad-chunk", `more than ${this.#limits.maxHeaders} trailer fields`);
    parseField(src, start, end, "bad-chunk", "trailer");
  }

  /** The state is set before onEnd, so onEnd may call expectNoBody() for the next response. */
  #end(): void {
    this.#ended = true;
    this.#noBody = false;
    const keepAlive = this.#keepAlive;
    const status = this.#status;
    this.#startResponse();
    if (!keepAlive) {
      this.#state = DONE;
      this.#status = status; // for the body-after-end message
    }
    this.#on.onEnd();
  }
}

/** Typically a server that sent more data than the chunk size it announced. */
function noCrlfAfterData(c: number, chunkSize: number): Http1Error {
  return new Http1Error("bad-chunk", `chunk data not followed by CRLF (${byteName(c)} after ${chunkSize} bytes)`);
}

/** A field line without its CRLF; returns [lower-cased name, trimmed value]. */
function parseField(b: Uint8Array, s: number, e: number, code: "bad-header" | "bad-chunk", what: string): [string, string] {
  // one native decode and native searches: a JavaScript loop per byte costs
  // several times more compute on XS
  const line = latin1(b, s, e);
  const colon = line.indexOf(":");
  const bad = findNotToken(colon < 0 ? line : line.slice(0, colon));
  if (bad >= 0) {
    const c = line.charCodeAt(bad);
    throw new Http1Error(code, c === SP || c === HTAB
      ? `whitespace in or after a ${what} name: "${preview(b, s, e)}"`
      : `${byteName(c)} in a ${what} name: "${preview(b, s, e)}"`);
  }
  if (colon < 0) throw new Http1Error(code, `${what} line without ':': "${preview(b, s, e)}"`);
  if (colon === 0) throw new Http1Error(code, `empty ${what} name: "${preview(b, s, e)}"`);
  const name = line.slice(0, colon).toLowerCase();
  const value = line.slice(colon + 1);
  const badValue = findNotField(value);
  if (badValue >= 0) throw new Http1Error(code, `${byteName(value.charCodeAt(badValue))} in the value of ${what} "${name}"`);
  // The optional whitespace around the value is trimmed on the bytes (one char
  // per byte): linear, where a RegExp anchored at the end backtracks over
  // every run of inner spaces (quadratic in a hostile 8 KiB line).
  let vs = s + colon + 1;
  let ve = e;
  while (vs < ve && (b[vs] === SP || b[vs] === HTAB)) vs++;
  while (ve > vs && (b[ve - 1] === SP || b[ve - 1] === HTAB)) ve--;
  return [name, line.slice(vs - s, ve - s)];
}

/** Bytes of a head turned into text at a time while looking for its end. */
const HEAD_PIECE = 64;

/** Content-Length, possibly a list ("5, 5") or repeated: every value must agree. */
function parseContentLength(value: string, previous: number | undefined): number {
  let result = previous;
  for (const part of value.split(",")) {
    const digits = part.trim();
    if (!isDigits(digits)) throw new Http1Error("bad-length", `Content-Length "${value}" is not a decimal number`);
    const n = Number(digits);
    if (!Number.isSafeInteger(n)) throw new Http1Error("bad-length", `Content-Length ${digits} is too large`);
    if (result !== undefined && n !== result) throw new Http1Error("bad-length", `conflicting Content-Length values ${result} and ${n}`);
    result = n;
  }
  return result!;
}

/** The lower-cased, non-empty elements of a comma-separated list. */
function listTokens(value: string): string[] {
  return value.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t !== "");
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

/** One char per byte. Built in slices: apply() with a whole 8 KB line could
 *  overrun a small device stack. */
/**
 * A field value of a line the whole-head path accepted, from `at`, without
 * the SP and HTAB around it. Of what trim() takes away, only NBSP (0xA0) can be in such
 * a line (no other control, no character past 0xFF): without one, trim() is
 * the same, and one native call where a loop costs about 100 computrons on XS.
 */
function fieldValue(line: string, at: number): string {
  if (line.indexOf("\xa0") < 0) return line.slice(at).trim();
  let ve = line.length;
  while (at < ve && (line.charCodeAt(at) === SP || line.charCodeAt(at) === HTAB)) at++;
  while (ve > at && (line.charCodeAt(ve - 1) === SP || line.charCodeAt(ve - 1) === HTAB)) ve--;
  return line.slice(at, ve);
}

function latin1(b: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i += 256) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(end, i + 256)) as unknown as number[]);
  }
  return s;
}

function byteName(c: number): string {
  return c === CR ? "CR" : c === LF ? "LF" : c === SP ? "SP" : c === HTAB ? "HTAB"
    : c > 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, "0")}`;
}

/** The start of a line for an error message, control bytes escaped. */
function preview(b: Uint8Array, s: number, e: number): string {
  let out = "";
  for (let k = s; k < Math.min(e, s + 48); k++) {
    const c = b[k]!;
    out += c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`;
  }
  return e - s > 48 ? `${out}...` : out;
}
