// src/ scans chars instead of running RegExps (src/util/chars.ts). These
// cases hold each scan to the regular expression it replaced, over every
// Latin-1 char, the surrogates and many random strings of the chars that
// matter; and the whole-head path of the HTTP/1 parser to the line-by-line
// one, over heads with those chars in every place.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  findNotField, findNotToken, findNotVisible, hasAsciiUpper, hasCrLfNul, hasHighLatin1, hasLoneSurrogate,
  hasNotHostName, ipv4Octets, isDigits, isPlainText, isPlainToken,
} from "../src/util/chars.js";
import { base64Decode, base64Encode } from "../src/util/base64.js";
import { dotSegment, makeMultipart, retryAfterMs, sameOriginTarget } from "../src/protocols/http-common.js";
import { parseSocks5Proxy } from "../src/wire/socks5/index.js";
import { Http1ResponseParser, type Http1Head } from "../src/wire/http1/index.js";
import type { ConnectOptions } from "../src/host.js";

// the expressions src/ used before
const NOT_TOKEN = /[^!#$%&'*+.^_`|~0-9A-Za-z-]/;
const NOT_FIELD = /[^\t\x20-\x7e\x80-\xff]/;
const NOT_VISIBLE = /[^\x21-\x7e]/;
const NOT_HOST_NAME = /[^A-Za-z0-9.-]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const GOOD_HEAD = /^HTTP\/1\.[01] [0-9]{3}(?: [\t\x20-\x7e\x80-\xff]*)?(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*)*$/;

/** A deterministic generator (xorshift), so that a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const EDGES = "\0\t\n\r \x1f!\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\x7f\x80\xa0\xff\u0100\u20ac\ud800\udbff\udc00\udfffe.E%2";

function strings(count: number, alphabet: string, seed: number, maxLength = 12): string[] {
  const next = random(seed);
  const out = [""];
  for (let c = 0; c < 0x100; c++) out.push(String.fromCharCode(c), `a${String.fromCharCode(c)}b`);
  for (const c of "\ud800\udbff\udc00\udfff\u0100\uffff") out.push(c, `x${c}`, `${c}x`);
  for (let i = 0; i < count; i++) {
    let s = "";
    const n = Math.floor(next() * (maxLength + 1));
    for (let k = 0; k < n; k++) s += alphabet[Math.floor(next() * alphabet.length)];
    out.push(s);
  }
  return out;
}

test("each char class scan finds what its RegExp found", () => {
  for (const s of strings(20000, EDGES, 1)) {
    const at = (re: RegExp) => s.search(re);
    assert.equal(findNotToken(s), at(NOT_TOKEN), `token ${JSON.stringify(s)}`);
    assert.equal(findNotField(s), at(NOT_FIELD), `field ${JSON.stringify(s)}`);
    assert.equal(findNotVisible(s), at(NOT_VISIBLE), `visible ${JSON.stringify(s)}`);
    assert.equal(hasNotHostName(s), NOT_HOST_NAME.test(s), `host ${JSON.stringify(s)}`);
    assert.equal(isDigits(s), /^[0-9]+$/.test(s), `digits ${JSON.stringify(s)}`);
    assert.equal(hasCrLfNul(s), /[\r\n\0]/.test(s), `CR LF NUL ${JSON.stringify(s)}`);
    assert.equal(hasHighLatin1(s), /[\x80-\xff]/.test(s), `0x80-0xff ${JSON.stringify(s)}`);
    assert.equal(hasLoneSurrogate(s), LONE_SURROGATE.test(s), `surrogate ${JSON.stringify(s)}`);
    assert.equal(hasAsciiUpper(s), /[A-Z]/.test(s), `upper ${JSON.stringify(s)}`);
    if (isPlainToken(s)) assert.equal(at(NOT_TOKEN), -1, `plain token ${JSON.stringify(s)}`);
  }
  for (const pair of ["\ud800\udc00", "\udbff\udfff", "a\ud83d\ude00b"]) assert.equal(hasLoneSurrogate(pair), false);
  for (const lone of ["\ud800", "\udc00", "\udc00\ud800", "\ud800\ud800\udc00", "\ud800\udc00\udc00"]) assert.equal(hasLoneSurrogate(lone), true);
});

test("digits: the numbers' own spellings and every near miss", () => {
  for (const s of ["0", "4096", "007", "9007199254740993", "12345678901234567890"]) assert.equal(isDigits(s), true, s);
  for (const s of ["", "-0", "-1", "+1", " 1", "1 ", "1e3", "0x1f", "1.5", "Infinity", "NaN", "1_000", "\u0661"]) assert.equal(isDigits(s), false, s);
});

test("IPv4: dotted quads of 1 to 3 digits up to 255, as the RegExp and its check took them", () => {
  const old = (s: string) => {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
    return m && m.slice(1).every((x) => Number(x) <= 255) ? m.slice(1).map(Number) : undefined;
  };
  const cases = ["1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.002.003.004", "0001.1.1.1", "1.2.3", "1.2.3.4.5",
    "1..3.4", ".1.2.3", "1.2.3.4.", " 1.2.3.4", "1.2.3.4 ", "a.b.c.d", "1.2.3.-4", "1.2.3.+4", "1e1.2.3.4", "example.com", ""];
  for (const s of [...cases, ...strings(20000, "0123456789.25a ", 2, 16)]) assert.deepEqual(ipv4Octets(s), old(s), s);
});

test("plain text: JSON.stringify says yes only without controls but the CRLFs, quotes, backslashes and DEL", () => {
  for (const s of strings(20000, "\t\r\n \"\\\x7fa\x80\xff\x01\x0b\x1f", 3, 10)) {
    if (/[^\x00-\xff]/.test(s)) continue; // Latin-1 text only, as a head is
    const breaks = s.split("\r\n").length - 1;
    const plain = !/[\x00-\x1f\x7f"\\]/.test(s.split("\r\n").join(""));
    assert.equal(isPlainText(s, breaks), plain, JSON.stringify(s));
  }
});

/** What a parser makes of `bytes` pushed at once (the whole-head path) or a byte at a time (the line-by-line path). */
function parse(bytes: Uint8Array, oneByOne: boolean): string {
  const heads: Http1Head[] = [];
  const parser = new Http1ResponseParser({ onHead: (h) => heads.push(h), onBody: () => {}, onEnd: () => {} });
  try {
    if (oneByOne) for (let k = 0; k < bytes.length; k++) parser.push(bytes.subarray(k, k + 1));
    else parser.push(bytes);
  } catch (e) {
    return `error ${(e as Error).message}`;
  }
  return JSON.stringify(heads);
}

test("HTTP/1 heads: the whole-head path reads every head as the line-by-line path does", () => {
  const next = random(4);
  const pieces = ["HTTP/1.1 200 OK", "HTTP/1.0 204", "HTTP/1.1 200", "HTTP/1.1 404 Not Found", "HTTP/1.2 200 OK", "HTTP/1.1 20 OK",
    "HTTP/1.1 200OK", "HTTP/1.1 200 \tO\"K\\", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", "http/1.1 200 OK"];
  const names = ["Content-Length", "X-#$%&'*+.^_`|~", "X(Y)", "A B", "", "Ünd", "x\x7f", "Set-Cookie", "ETag", "a:b"];
  const values = ["0", " 5 ", "text/plain; q=\"a\\b\"", "\tx\t", "a\x7fb", "a\x01b", "\xa0x\xa0", "\xff", "", "a\rb", "a\nb", "(c)"];
  let fast = 0;
  for (let i = 0; i < 4000; i++) {
    let head = pieces[Math.floor(next() * pieces.length)]!;
    const n = Math.floor(next() * 4);
    for (let k = 0; k < n; k++) {
      const name = names[Math.floor(next() * names.length)]!;
      const value = values[Math.floor(next() * values.length)]!;
      head += `\r\n${name}:${value}`;
    }
    if (!/Content-Length/.test(head)) head += "\r\nContent-Length: 0";
    const bytes = Uint8Array.from(`${head}\r\n\r\n`, (c) => c.charCodeAt(0));
    const whole = parse(bytes, false);
    assert.equal(whole, parse(bytes, true), JSON.stringify(head));
    if (!head.includes("\r\n\r\n") && GOOD_HEAD.test(head) && !whole.startsWith("error")) fast++;
  }
  assert.ok(fast > 100, `only ${fast} heads took the whole-head path`);
});

const ORIGIN: ConnectOptions = { host: "example.com", port: 443, tls: {} } as unknown as ConnectOptions;

/** sameOriginTarget as it was, with its RegExps. */
function oldSameOrigin(location: string, options: ConnectOptions): string | { why: string } {
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

test("Location: every form reads as it did with the RegExps", () => {
  const v6: ConnectOptions = { host: "::1", port: 8443, tls: {} } as unknown as ConnectOptions;
  const plain: ConnectOptions = { host: "example.com", port: 80 } as unknown as ConnectOptions;
  const cases = ["/a", "//example.com/a", "https://example.com", "https://example.com/", "https://example.com?q", "https://example.com#f",
    "HTTPS://EXAMPLE.com:443/x?y#z", "https://example.com:/x", "https://example.com:0443/x", "https://example.com:44a/x",
    "https://u@example.com/", "https://[::1]:8443/x", "https://[::1]/x", "https://[]/x", "https://[::g]/x", "https://[::1]x/",
    "https://ex[ample.com/", "https://example.com]/", "ftp://example.com/", "1http://example.com/", "h+t.t-p://example.com/",
    "https:/example.com/", "https//example.com", "http://example.com/a b", "http://example.com/\u00e9", "", ":", "https:",
    "https://example.com:443:1/", "https://example.com/%2e%2e/x", "mailto:a@b"];
  const next = random(5);
  const alphabet = "hts:/[]@?#.:1a%e ";
  for (let i = 0; i < 20000; i++) {
    let s = "";
    const n = Math.floor(next() * 14);
    for (let k = 0; k < n; k++) s += alphabet[Math.floor(next() * alphabet.length)];
    cases.push(s, `https://${s}`);
  }
  for (const location of cases) {
    for (const options of [ORIGIN, v6, plain]) {
      assert.deepEqual(sameOriginTarget(location, options), oldSameOrigin(location, options), `${location} on ${options.host}`);
    }
  }
});

test("dot segments, Retry-After digits, quoting, SOCKS5 proxies and base64 read as with the RegExps", () => {
  const oldDot = (path: string) => {
    const end = path.search(/[?#]/);
    for (const segment of (end < 0 ? path : path.slice(0, end)).split("/")) if (/^(?:\.|%2e){1,2}$/i.test(segment)) return segment;
    return undefined;
  };
  for (const s of [...strings(20000, "./%2eE?#a", 6, 14), "/a/./b", "/%2E%2e/", "/a?/../", "/a#/../", "/.%2E", "/%2e.", "/...", "/%2e%2e%2e"]) {
    assert.equal(dotSegment(s), oldDot(s), s);
  }
  for (const s of ["120", "0", "", " 1", "1.5", "-1", "Wed, 21 Oct 2015 07:28:00 GMT"]) {
    const old = /^\d+$/.test(s) ? Number(s) * 1000 : 0;
    if (/^\d+$/.test(s) || s === "") assert.equal(retryAfterMs(s, false), Math.min(old, 3600 * 1000), s);
  }
  for (const name of ['a"b\\c', "\\\"", "plain", '"\\"']) {
    const part = makeMultipart({ name, filename: undefined, type: undefined }, () => 0);
    const text = new TextDecoder().decode(part.head);
    assert.ok(text.includes(`name="${name.replace(/["\\]/g, "\\$&")}"`), name);
  }
  const oldSocks = (text: string) => {
    const hostPort = text.slice(text.lastIndexOf("@") + 1);
    const colon = hostPort.lastIndexOf(":");
    return colon >= 1 && /^\d+$/.test(hostPort.slice(colon + 1));
  };
  for (const s of ["h:1080", "h:", "h:+1", "h:1e3", "h: 1", "h:0x10", "u:p@h:1080", "[::1]:1080", "h:65536"]) {
    const parsed = parseSocks5Proxy(s);
    if (!oldSocks(s)) assert.equal(parsed, undefined, s);
    else if (parsed) assert.equal(parsed.port, Number(s.slice(s.lastIndexOf(":") + 1)), s);
  }
  const oldB64 = (text: string) => text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text);
  for (const s of [...strings(20000, "QUJD=+/a-_ \u00e9", 7, 12), "QQ==", "QUI=", "QUJD", "Q===", "QQ=A", "=QQQ", "QUJ\u00e9"]) {
    const decoded = base64Decode(s);
    if (!oldB64(s)) assert.equal(decoded, undefined, s);
    else if (decoded) assert.equal(base64Encode(decoded), s, s);
  }
});
