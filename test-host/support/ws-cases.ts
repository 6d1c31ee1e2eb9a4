// Byte fixtures for the WebSocket wire codec (src/wire/ws) and SHA-1
// (src/util/sha1), and the driver that checks them. PORTABLE: no Node
// imports, no Buffer, so the same module runs on Node and, bundled by
// hosts/xsnap, on XS; both must report the same results.
//
// Every server byte sequence is fed whole, byte by byte and in
// pseudo-random splits; the events must come out the same each way (data
// pieces merged into messages, first/last marks checked) and match the
// fixture, or fail with its error code and close code. Fuzzed input may
// only ever end in a WsError.

import { prng } from "./prng.js";
import { sha1 } from "../../src/util/sha1.js";
import { base64Encode } from "../../src/util/base64.js";
import {
  WsDecoder, WsError, encodeFrame, encodeFrameInto, frameLength, closePayload, acceptFor, makeKey, encodeUpgradeRequest, checkUpgradeResponse,
  Opcode, Utf8Check, type WsErrorCode,
} from "../../src/wire/ws/index.js";
import type { Http1Head } from "../../src/wire/http1/index.js";

export interface CaseResult {
  name: string;
  ok: boolean;
  detail: string;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const bytes = (...parts: (number[] | string | Uint8Array)[]): Uint8Array => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "string") for (const ch of p) out.push(ch.charCodeAt(0));
    else for (const b of p) out.push(b); // (no spread: XS's stack is small)
  }
  return Uint8Array.from(out);
};
const latin1 = (b: Uint8Array) => Array.from(b, (x) => String.fromCharCode(x)).join("");
/** An unmasked server frame. */
function frame(b0: number, payload: Uint8Array | string, lengthForm?: 126 | 127): Uint8Array {
  const p = typeof payload === "string" ? bytes(payload) : payload;
  const n = p.length;
  const form = lengthForm ?? (n < 126 ? 0 : n < 0x10000 ? 126 : 127);
  const head = form === 0 ? [b0, n] : form === 126 ? [b0, 126, n >> 8, n & 255]
    : [b0, 127, 0, 0, 0, 0, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return bytes(head, p);
}

type Event = string;

/** Feeds `wire` in the given pieces; events, or the error. */
function decode(wire: Uint8Array, cuts: number[], maxMessage: number): { events: Event[]; error?: WsError; bad?: string } {
  const events: Event[] = [];
  let message: string | undefined;
  let bad: string | undefined;
  const d = new WsDecoder({
    maxMessage,
    onData: (piece, binary, first, last) => {
      if (first !== (message === undefined)) bad ??= `first=${first} with a message ${message === undefined ? "not " : ""}open`;
      if (first) message = "";
      message += latin1(piece);
      if (last) {
        events.push(`${binary ? "binary" : "text"}:${message}`);
        message = undefined;
      }
    },
    onPing: (p) => { events.push(`ping:${latin1(p)}`); },
    onPong: (p) => { events.push(`pong:${latin1(p)}`); },
    onClose: (code, reason) => { events.push(`close:${code ?? "-"}:${reason}`); },
  });
  let at = 0;
  try {
    for (const cut of [...cuts, wire.length]) {
      if (cut > at) d.push(wire.subarray(at, cut));
      at = Math.max(at, cut);
    }
  } catch (e) {
    if (e instanceof WsError) return { events, error: e, bad };
    return { events, bad: `threw ${(e as Error)?.name}: ${(e as Error)?.message}` };
  }
  if (message !== undefined && !d.inMessage) bad ??= "a message left open";
  return { events, bad };
}

interface DecodeFixture {
  name: string;
  wire: Uint8Array;
  expect: Event[];
  error?: [WsErrorCode, number, string];
  maxMessage?: number;
}

const HELLO = frame(0x81, "Hello");
const EURO = [0xe2, 0x82, 0xac];
const big = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 255);

const DECODES: DecodeFixture[] = [
  { name: "RFC 6455 5.7: a single unmasked text frame", wire: bytes([0x81, 0x05], "Hello"), expect: ["text:Hello"] },
  { name: "RFC 6455 5.7: a fragmented text message", wire: bytes([0x01, 0x03], "Hel", [0x80, 0x02], "lo"), expect: ["text:Hello"] },
  { name: "RFC 6455 5.7: ping and pong", wire: bytes([0x89, 0x05], "Hello", [0x8a, 0x05], "Hello"), expect: ["ping:Hello", "pong:Hello"] },
  { name: "RFC 6455 5.7: 256 bytes binary, 16-bit length", wire: frame(0x82, big(256)), expect: [`binary:${latin1(big(256))}`] },
  { name: "RFC 6455 5.7: 64 KiB binary, 64-bit length", wire: frame(0x82, big(65536)), expect: [`binary:${latin1(big(65536))}`] },
  { name: "empty text and empty binary", wire: bytes([0x81, 0], [0x82, 0]), expect: ["text:", "binary:"] },
  { name: "empty fragments around data", wire: bytes([0x02, 0], [0x00, 2, 1, 2], [0x00, 0], [0x80, 0]), expect: [`binary:${latin1(bytes([1, 2]))}`] },
  { name: "control frames between fragments", wire: bytes([0x01, 2], "ab", [0x89, 1], "p", [0x8a, 0], [0x80, 1], "c"), expect: ["ping:p", "pong:", "text:abc"] },
  { name: "several messages in one read", wire: bytes(HELLO, HELLO, frame(0x82, "x")), expect: ["text:Hello", "text:Hello", "binary:x"] },
  { name: "non-minimal length encodings are accepted", wire: bytes(frame(0x81, "hi", 126), frame(0x82, "yo", 127)), expect: ["text:hi", "binary:yo"] },
  { name: "UTF-8 split across fragments", wire: bytes([0x01, 1, EURO[0]!], [0x00, 1, EURO[1]!], [0x80, 1, EURO[2]!]), expect: [`text:${latin1(Uint8Array.from(EURO))}`] },
  { name: "4-byte UTF-8 and the largest code point", wire: frame(0x81, bytes([0xf0, 0x9f, 0x98, 0x80, 0xf4, 0x8f, 0xbf, 0xbf])), expect: [`text:${latin1(bytes([0xf0, 0x9f, 0x98, 0x80, 0xf4, 0x8f, 0xbf, 0xbf]))}`] },
  { name: "binary is not checked as UTF-8", wire: frame(0x82, bytes([0xff, 0xc0, 0x80])), expect: [`binary:${latin1(bytes([0xff, 0xc0, 0x80]))}`] },
  { name: "close without a payload", wire: bytes([0x88, 0]), expect: ["close:-:"] },
  { name: "close with a code and a UTF-8 reason", wire: frame(0x88, bytes([0x0f, 0xa0], "bye ", EURO)), expect: [`close:4000:bye \u20ac`] },
  { name: "close codes 1000, 1003, 1011, 1014, 3000, 4999 are valid", wire: bytes(frame(0x88, bytes([0x03, 0xe8]))), expect: ["close:1000:"] },
  { name: "a message of exactly the limit", wire: bytes([0x01, 2], "ab", [0x80, 2], "cd"), expect: ["text:abcd"], maxMessage: 4 },
  // ---- violations ----
  { name: "RSV1 set", wire: bytes([0xc1, 0]), expect: [], error: ["protocol", 1002, "reserved bits"] },
  { name: "RSV3 set", wire: bytes([0x91, 0]), expect: [], error: ["protocol", 1002, "reserved bits"] },
  { name: "a masked server frame", wire: bytes([0x81, 0x85, 1, 2, 3, 4], "Hello"), expect: [], error: ["protocol", 1002, "masked"] },
  { name: "reserved data opcode 3", wire: bytes([0x83, 0]), expect: [], error: ["protocol", 1002, "opcode 0x3"] },
  { name: "reserved control opcode 0xb", wire: bytes([0x8b, 0]), expect: [], error: ["protocol", 1002, "opcode 0xb"] },
  { name: "a fragmented ping", wire: bytes([0x09, 0]), expect: [], error: ["protocol", 1002, "fragmented control"] },
  { name: "a ping of 126 bytes", wire: frame(0x89, big(126)), expect: [], error: ["protocol", 1002, "control frame of 126"] },
  { name: "a continuation with nothing to continue", wire: bytes([0x80, 1], "x"), expect: [], error: ["protocol", 1002, "no message to continue"] },
  { name: "a new message inside a fragmented one", wire: bytes([0x01, 1], "a", [0x81, 1], "b"), expect: [], error: ["protocol", 1002, "before the previous"] },
  { name: "a 64-bit length with its top bit set", wire: bytes([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]), expect: [], error: ["protocol", 1002, "top bit"] },
  { name: "a frame over the limit fails from its header", wire: bytes([0x82, 5]), expect: [], error: ["too-big", 1009, "over the 4-byte limit"], maxMessage: 4 },
  { name: "fragments over the limit together", wire: bytes([0x02, 3], "abc", [0x80, 2], "de"), expect: [], error: ["too-big", 1009, "3 bytes, then a frame of 2"], maxMessage: 4 },
  { name: "a 2^63-byte frame is over any limit", wire: bytes([0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), expect: [], error: ["too-big", 1009, "Infinity"] },
  { name: "invalid UTF-8: 0xff", wire: frame(0x81, bytes([0x61, 0xff])), expect: [], error: ["invalid-utf8", 1007, "not UTF-8"] },
  { name: "invalid UTF-8: overlong NUL", wire: frame(0x81, bytes([0xc0, 0x80])), expect: [], error: ["invalid-utf8", 1007, "not UTF-8"] },
  { name: "invalid UTF-8: a surrogate", wire: frame(0x81, bytes([0xed, 0xa0, 0x80])), expect: [], error: ["invalid-utf8", 1007, "not UTF-8"] },
  { name: "invalid UTF-8: past U+10FFFF", wire: frame(0x81, bytes([0xf4, 0x90, 0x80, 0x80])), expect: [], error: ["invalid-utf8", 1007, "not UTF-8"] },
  { name: "invalid UTF-8: overlong 3-byte", wire: frame(0x81, bytes([0xe0, 0x80, 0xaf])), expect: [], error: ["invalid-utf8", 1007, "not UTF-8"] },
  { name: "invalid UTF-8 across fragments", wire: bytes([0x01, 1, 0xe2], [0x80, 1, 0x41]), expect: [], error: ["invalid-utf8", 1007, "not UTF-8"] },
  { name: "a text message ending inside a character", wire: bytes([0x01, 1, 0xe2], [0x80, 1, 0x82]), expect: [], error: ["invalid-utf8", 1007, "ends inside"] },
  { name: "close with a 1-byte payload", wire: bytes([0x88, 1, 3]), expect: [], error: ["protocol", 1002, "1-byte"] },
  { name: "close code 1005 may not be sent", wire: frame(0x88, bytes([0x03, 0xed])), expect: [], error: ["protocol", 1002, "close code 1005"] },
  { name: "close code 999", wire: frame(0x88, bytes([0x03, 0xe7])), expect: [], error: ["protocol", 1002, "close code 999"] },
  { name: "close code 5000", wire: frame(0x88, bytes([0x13, 0x88])), expect: [], error: ["protocol", 1002, "close code 5000"] },
  { name: "a close reason that is not UTF-8", wire: frame(0x88, bytes([0x03, 0xe8, 0xff])), expect: [], error: ["invalid-utf8", 1007, "close reason"] },
  { name: "bytes after the close frame", wire: bytes([0x88, 0], HELLO), expect: ["close:-:"], error: ["protocol", 1002, "after the close frame"] },
];

function decodeCases(out: CaseResult[]): void {
  const rnd = prng(0x5eed);
  for (const f of DECODES) {
    const max = f.maxMessage ?? 1 << 20;
    const splits: [string, number[]][] = [
      ["whole", []],
      ["bytewise", Array.from({ length: f.wire.length }, (_, i) => i)],
    ];
    for (let k = 0; k < 3; k++) {
      const cuts: number[] = [];
      for (let at = 0; at < f.wire.length; at += 1 + (rnd() % 7)) cuts.push(at);
      splits.push([`split ${k}`, cuts]);
    }
    for (const [how, cuts] of splits) {
      const r = decode(f.wire, cuts, max);
      const problems: string[] = [];
      if (r.bad) problems.push(r.bad);
      const got = JSON.stringify(r.events);
      const want = JSON.stringify(f.expect);
      if (got !== want) problems.push(`events ${got.slice(0, 200)}, want ${want.slice(0, 200)}`);
      if (f.error) {
        if (!r.error) problems.push(`no error, want ${f.error[0]}`);
        else if (r.error.code !== f.error[0] || r.error.closeCode !== f.error[1] || !r.error.message.includes(f.error[2])) {
          problems.push(`error ${r.error.code}/${r.error.closeCode} "${r.error.message}", want ${f.error.join("/")}`);
        }
      } else if (r.error) {
        problems.push(`unexpected error ${r.error.code}: ${r.error.message}`);
      }
      out.push({ name: `decode: ${f.name} (${how})`, ok: problems.length === 0, detail: problems.join("; ") });
    }
  }
  // a failed decoder stays failed
  const d = new WsDecoder({ maxMessage: 10, onData() {}, onPing() {}, onPong() {}, onClose() {} });
  let first: unknown, second: unknown;
  try { d.push(bytes([0xc1, 0])); } catch (e) { first = e; }
  try { d.push(HELLO); } catch (e) { second = e; }
  out.push({ name: "decode: a failed decoder rethrows its error", ok: first instanceof WsError && first === second, detail: String(second) });
  // a callback returning false stops the decoder at once
  const seen: string[] = [];
  const s = new WsDecoder({ maxMessage: 10, onData: (p) => { seen.push(latin1(p)); return false; }, onPing() {}, onPong() {}, onClose() {} });
  s.push(bytes(HELLO, HELLO));
  out.push({ name: "decode: a callback returning false stops the push", ok: seen.join() === "Hello", detail: seen.join() });
}

function encodeCases(out: CaseResult[]): void {
  const check = (name: string, got: string, want: string) => out.push({ name: `encode: ${name}`, ok: got === want, detail: `got ${got.slice(0, 120)}, want ${want.slice(0, 120)}` });
  // RFC 6455 5.7: a single-frame masked text message
  check("RFC 6455 5.7: masked Hello", hex(encodeFrame(Opcode.TEXT, true, bytes("Hello"), 0x37fa213d)), "818537fa213d7f9f4d5158");
  check("a non-final binary frame, empty", hex(encodeFrame(Opcode.BINARY, false, new Uint8Array(0), 0x01020304)), "028001020304");
  check("a final continuation", hex(encodeFrame(Opcode.CONTINUATION, true, bytes("a"), 0)), "80810000000061");
  check("125 bytes: 7-bit length", hex(encodeFrame(Opcode.BINARY, true, big(125), 0).subarray(0, 2)), "82fd");
  check("126 bytes: 16-bit length", hex(encodeFrame(Opcode.BINARY, true, big(126), 0).subarray(0, 4)), "82fe007e");
  check("65535 bytes: 16-bit length", hex(encodeFrame(Opcode.BINARY, true, big(65535), 0).subarray(0, 4)), "82feffff");
  check("65536 bytes: 64-bit length", hex(encodeFrame(Opcode.BINARY, true, big(65536), 0).subarray(0, 10)), "82ff0000000000010000");
  check("close payload", hex(closePayload(1000, bytes("ok"))), "03e86f6b");
  const long = Uint8Array.from([...bytes("x".repeat(122)), ...EURO]);
  check("a close reason cut to fit, never inside a character", hex(closePayload(1001, long)), `03e9${"78".repeat(122)}`);
  // masking round trip: every length around the word boundaries, payloads at every alignment
  const rnd = prng(7);
  let bad = "";
  for (let n = 0; n < 70 && !bad; n++) {
    for (let offset = 0; offset < 4 && !bad; offset++) {
      const backing = Uint8Array.from({ length: n + offset }, () => rnd() & 255);
      const payload = backing.subarray(offset);
      const before = hex(payload);
      const mask = rnd();
      const f = encodeFrame(Opcode.BINARY, true, payload, mask);
      const head = n < 126 ? 2 : 4;
      const key = f.subarray(head, head + 4);
      const body = f.subarray(head + 4);
      if (hex(key) !== (mask >>> 0).toString(16).padStart(8, "0")) bad = `n=${n}: key ${hex(key)}`;
      const clear = body.map((b, i) => b ^ key[i & 3]!);
      if (hex(clear) !== before) bad = `n=${n} offset=${offset}: unmasks to ${hex(clear)}`;
      if (hex(payload) !== before) bad = `n=${n}: the payload was modified`;
    }
  }
  out.push({ name: "encode: masking round-trips at every length and alignment", ok: !bad, detail: bad });
  // encodeFrameInto at any offset of a larger buffer writes what encodeFrame makes
  let into = "";
  for (let n = 0; n < 40 && !into; n++) {
    const payload = Uint8Array.from({ length: n * 7 }, () => rnd() & 255);
    const mask = rnd();
    const want = hex(encodeFrame(Opcode.TEXT, n % 2 === 0, payload, mask));
    for (let at = 0; at < 6; at++) {
      const target = new Uint8Array(at + frameLength(payload.length) + 3);
      const written = encodeFrameInto(target, at, Opcode.TEXT, n % 2 === 0, payload, mask);
      if (written !== frameLength(payload.length) || hex(target.subarray(at, at + written)) !== want || target[at + written] !== 0) {
        into = `n=${n * 7} at=${at}: ${hex(target)}`;
      }
    }
  }
  out.push({ name: "encode: encodeFrameInto at every offset matches encodeFrame", ok: !into, detail: into });
}

function handshakeCases(out: CaseResult[]): void {
  const check = (name: string, ok: boolean, detail: string) => out.push({ name: `handshake: ${name}`, ok, detail });
  const sha = (s: string) => hex(sha1(bytes(s)));
  check("sha1 of the empty string", sha("") === "da39a3ee5e6b4b0d3255bfef95601890afd80709", sha(""));
  check("sha1 of abc", sha("abc") === "a9993e364706816aba3e25717850c26c9cd0d89d", sha("abc"));
  check("sha1 of the 448-bit FIPS message", sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") === "84983e441c3bd26ebaae4aa1f95129e5e54670f1", "");
  check("sha1 of the quick brown fox", sha("The quick brown fox jumps over the lazy dog") === "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", "");
  check("sha1 of 1000 x 'a'", sha("a".repeat(1000)) === "291e9a6c66994949b57ba5e650361e98fc36b1ba", sha("a".repeat(1000)));
  check("RFC 6455 1.3: the accept for the sample nonce", acceptFor("dGhlIHNhbXBsZSBub25jZQ==") === "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", acceptFor("dGhlIHNhbXBsZSBub25jZQ=="));
  let i = 0;
  const key = makeKey(() => (i++ % 16) / 16);
  check("makeKey: 16 bytes base64", key === base64Encode(Uint8Array.from({ length: 16 }, (_, k) => (k % 16) * 16)) && key.length === 24, key);
  const req = latin1(encodeUpgradeRequest({ path: "/chat?x=1", host: "server.example.com", key: "dGhlIHNhbXBsZSBub25jZQ==", protocols: ["chat", "superchat"], headers: [["X-Tag", "1"]] }));
  check("the upgrade request", req === "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\nX-Tag: 1\r\n\r\n", JSON.stringify(req));
  let injected = "";
  try { encodeUpgradeRequest({ path: "/", host: "h", key: "k", protocols: ["a\r\nX: y"] }); } catch (e) { injected = (e as Error).message; }
  check("a subprotocol with a line break is refused", injected.includes("forbidden character"), injected);
  const K = "dGhlIHNhbXBsZSBub25jZQ==";
  const A = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
  const head = (status: number, headers: [string, string][]): Http1Head => ({ status, reason: status === 101 ? "Switching Protocols" : "Nope", headers, chunked: false, keepAlive: false });
  const good: [string, string][] = [["upgrade", "WebSocket"], ["connection", "keep-alive, Upgrade"], ["sec-websocket-accept", A]];
  const cases: [string, Http1Head, string[], string][] = [
    ["accepted, no subprotocol", head(101, good), [], "ok:"],
    ["accepted with the subprotocol offered", head(101, [...good, ["sec-websocket-protocol", "superchat"]]), ["chat", "superchat"], "ok:superchat"],
    ["HTTP 200", head(200, good), [], "instead of 101"],
    ["HTTP 403", head(403, []), [], "HTTP 403"],
    ["no Upgrade", head(101, good.slice(1)), [], "not websocket"],
    ["no Connection: upgrade", head(101, [good[0]!, ["connection", "close"], good[2]!]), [], "without upgrade"],
    ["a wrong accept", head(101, [good[0]!, good[1]!, ["sec-websocket-accept", "AAAA"]]), [], "does not match"],
    ["two accepts", head(101, [...good, ["sec-websocket-accept", A]]), [], "does not match"],
    ["an extension nobody offered", head(101, [...good, ["sec-websocket-extensions", "permessage-deflate"]]), [], "extension"],
    ["no subprotocol when one was offered", head(101, good), ["chat"], "chose no subprotocol"],
    ["another subprotocol", head(101, [...good, ["sec-websocket-protocol", "other"]]), ["chat"], "not one offered"],
    ["a subprotocol when none was offered", head(101, [...good, ["sec-websocket-protocol", "chat"]]), [], "none was offered"],
  ];
  for (const [name, h, protocols, want] of cases) {
    let got: string;
    try {
      got = `ok:${checkUpgradeResponse(h, K, protocols)}`;
    } catch (e) {
      got = e instanceof WsError && e.code === "handshake" ? e.message : `threw ${String(e)}`;
    }
    check(`response: ${name}`, want.startsWith("ok:") ? got === want : got.includes(want) && !got.startsWith("ok:"), got);
  }
}

function utf8Cases(out: CaseResult[]): void {
  // every 1- to 3-byte prefix split in two agrees with the whole check
  const samples = [bytes("plain"), Uint8Array.from([0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]), Uint8Array.from([0xe2, 0x28, 0xa1]), Uint8Array.from([0xf0, 0x80, 0x80, 0x80])];
  let bad = "";
  for (const s of samples) {
    const whole = new Utf8Check();
    const w = whole.push(s) && whole.complete;
    for (let cut = 0; cut <= s.length; cut++) {
      const c = new Utf8Check();
      const r = c.push(s, 0, cut) && c.push(s, cut) && c.complete;
      if (r !== w) bad = `${hex(s)} cut at ${cut}: ${r}, whole ${w}`;
    }
  }
  out.push({ name: "utf8: a split never changes the verdict", ok: !bad, detail: bad });
}

/** Random and mutated input: the decoder ends in a WsError or not at all, never another exception. */
function fuzzCases(out: CaseResult[]): void {
  const rnd = prng(0xf022);
  const seeds = DECODES.map((f) => f.wire).filter((w) => w.length < 600);
  let bad = "";
  let wsErrors = 0;
  for (let n = 0; n < 3000 && !bad; n++) {
    let wire: Uint8Array;
    if (n % 2) {
      wire = Uint8Array.from({ length: 1 + (rnd() % 64) }, () => rnd() & 255);
    } else {
      wire = seeds[rnd() % seeds.length]!.slice();
      for (let k = 0; k < 1 + (rnd() % 4); k++) if (wire.length) wire[rnd() % wire.length] = rnd() & 255;
    }
    const cuts: number[] = [];
    for (let at = 0; at < wire.length; at += 1 + (rnd() % 9)) cuts.push(at);
    const r = decode(wire, cuts, 1 + (rnd() % 300));
    if (r.bad && r.bad.startsWith("threw")) bad = `${hex(wire)}: ${r.bad}`;
    if (r.error) wsErrors++;
  }
  out.push({ name: "fuzz: 3000 random and mutated inputs end in WsError or nothing", ok: !bad && wsErrors > 1000, detail: bad || `${wsErrors} WsErrors` });
}

export function runWsCases(): CaseResult[] {
  const out: CaseResult[] = [];
  decodeCases(out);
  encodeCases(out);
  handshakeCases(out);
  utf8Cases(out);
  fuzzCases(out);
  return out;
}
