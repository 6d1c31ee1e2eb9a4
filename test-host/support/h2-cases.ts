// Fixtures for the HTTP/2 wire codec (src/wire/h2) and the driver that
// checks them. PORTABLE: no Node imports, no Buffer, so the same module runs
// on Node and, bundled by hosts/xsnap, on XS; both must report the same.
//
// HPACK: the examples of RFC 7541 Appendix C, decoded and encoded byte for
// byte (tables and sizes after each block checked too), the Huffman table
// against codes of Appendix B, malformed blocks with their errors, and a
// fuzz (random blocks and mutated real ones) where anything thrown must be
// an H2Error. Frames: whole, byte by byte and in random splits; the size
// limit; each payload check of RFC 9113 section 6; a fuzz of random streams.

import { prng } from "./prng.js";
import {
  H2Error, ErrorCode, HpackDecoder, HpackEncoder, FrameDecoder, FrameType, Flag, Setting,
  encodeFrame, encodeSettings, encodePing, encodeGoaway, encodeWindowUpdate, encodeRstStream,
  readSettings, readPing, readGoaway, readWindowUpdate, readRstStream, readData, readHeadersFragment, checkPriority,
  huffmanEncode, huffmanDecode, huffmanLength, huffmanCode, type Frame, type Header,
} from "../../src/wire/h2/index.js";

export interface CaseResult {
  name: string;
  ok: boolean;
  detail: string;
}

const hex = (s: string): Uint8Array => {
  const t = s.replace(/\s+/g, "");
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(i * 2, i * 2 + 2), 16);
  return out;
};
const toHex = (b: Uint8Array): string => {
  let s = "";
  for (const x of b) s += (x < 16 ? "0" : "") + x.toString(16);
  return s;
};
const bytesOf = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

interface Step {
  wire: string;
  headers: Header[];
  tableSize: number;
}

const REQ1: Header[] = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]];
const REQ2: Header[] = [...REQ1, ["cache-control", "no-cache"]];
const REQ3: Header[] = [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]];
const RES1: Header[] = [[":status", "302"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"], ["location", "https://www.example.com"]];
const RES2: Header[] = [[":status", "307"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"], ["location", "https://www.example.com"]];
const RES3: Header[] = [[":status", "200"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:22 GMT"], ["location", "https://www.example.com"],
  ["content-encoding", "gzip"], ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"]];

/** RFC 7541 C.3 to C.6: [section, table size, Huffman, steps]. */
const SEQUENCES: [string, number, boolean, Step[]][] = [
  ["C.3", 4096, false, [
    { wire: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", headers: REQ1, tableSize: 57 },
    { wire: "8286 84be 5808 6e6f 2d63 6163 6865", headers: REQ2, tableSize: 110 },
    { wire: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", headers: REQ3, tableSize: 164 },
  ]],
  ["C.4", 4096, true, [
    { wire: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", headers: REQ1, tableSize: 57 },
    { wire: "8286 84be 5886 a8eb 1064 9cbf", headers: REQ2, tableSize: 110 },
    { wire: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf", headers: REQ3, tableSize: 164 },
  ]],
  ["C.5", 256, false, [
    { wire: "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", headers: RES1, tableSize: 222 },
    { wire: "4803 3330 37c1 c0bf", headers: RES2, tableSize: 222 },
    { wire: "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31", headers: RES3, tableSize: 215 },
  ]],
  ["C.6", 256, true, [
    { wire: "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3", headers: RES1, tableSize: 222 },
    { wire: "4883 640e ffc1 c0bf", headers: RES2, tableSize: 222 },
    { wire: "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07", headers: RES3, tableSize: 215 },
  ]],
];

/** RFC 7541 C.2: one representation each, decoded by a fresh decoder. */
const SINGLES: [string, string, Header[], number][] = [
  ["C.2.1 literal with indexing", "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", [["custom-key", "custom-header"]], 55],
  ["C.2.2 literal without indexing", "040c 2f73 616d 706c 652f 7061 7468", [[":path", "/sample/path"]], 0],
  ["C.2.3 literal never indexed", "1008 7061 7373 776f 7264 0673 6563 7265 74", [["password", "secret"]], 0],
  ["C.2.4 indexed", "82", [[":method", "GET"]], 0],
];

/** Appendix B rows: symbol, code, bits. */
const HUFFMAN_ROWS: [number, number, number][] = [
  [0, 0x1ff8, 13], [1, 0x7fffd8, 23], [10, 0x3ffffffc, 30], [32, 0x14, 6], [48, 0x0, 5], [58, 0x5c, 7],
  [92, 0x7fff0, 19], [126, 0x1ffd, 13], [127, 0xffffffc, 28], [128, 0xfffe6, 20], [199, 0x1ffffec, 25],
  [211, 0x7ffffe0, 27], [255, 0x3ffffee, 26], [256, 0x3fffffff, 30],
];

/** Malformed header blocks and the start of the message each must fail with. */
const BAD_BLOCKS: [string, string, string][] = [
  ["index 0", "80", "hpack: indexed field with index 0"],
  ["index past the tables", "be", "hpack: index 62 is past"],
  ["name index past the tables", "7f00 0161", "hpack: index 63 is past"],
  ["integer past the end", "ff", "hpack: integer runs past"],
  ["integer overflow", "ff ff ff ff ff ff 0f", "hpack: integer over"],
  ["string past the end", "400a 6162", "hpack: string of 10 bytes runs past"],
  ["string missing", "40", "hpack: string missing"],
  ["table size over the limit", "3fe2 1f", "hpack: dynamic table size update to 4097"],
  ["table size update after a field", "82 20", "hpack: dynamic table size update after a field"],
  ["Huffman EOS", "0084 ffff ffff 00", "hpack: EOS inside"],
  ["Huffman padding too long", "0082 ffff 00", "hpack: Huffman padding"],
  ["Huffman padding not ones", "0081 00 00", "hpack: Huffman padding"],
];

function check(out: CaseResult[], name: string, fn: () => string | undefined): void {
  try {
    const problem = fn();
    out.push({ name, ok: problem === undefined, detail: problem ?? "" });
  } catch (e) {
    out.push({ name, ok: false, detail: `threw ${(e as Error)?.name}: ${(e as Error)?.message}` });
  }
}

function throwsH2(fn: () => unknown, code: number, start: string): string | undefined {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof H2Error)) return `threw ${(e as Error)?.name}: ${(e as Error)?.message}`;
    if (e.code !== code) return `code ${e.code} (${e.message}), expected ${code}`;
    if (!e.message.startsWith(start)) return `message "${e.message}", expected "${start}..."`;
    return undefined;
  }
  return "did not throw";
}

function hpackCases(out: CaseResult[]): void {
  for (const [sym, code, bits] of HUFFMAN_ROWS) {
    check(out, `huffman: symbol ${sym}`, () => {
      const c = huffmanCode(sym);
      return c.code === code && c.bits === bits ? undefined : `code ${c.code.toString(16)}/${c.bits}, expected ${code.toString(16)}/${bits}`;
    });
  }
  check(out, "huffman: every byte round-trips", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const enc = new Uint8Array(huffmanLength(all));
    const end = huffmanEncode(all, enc, 0);
    if (end !== enc.length) return `encoded ${end} bytes, expected ${enc.length}`;
    const back: number[] = [];
    huffmanDecode(enc, 0, enc.length, (b) => back.push(b));
    return same(back, [...all]) ? undefined : "round trip differs";
  });
  for (const [name, wire, headers, size] of SINGLES) {
    check(out, `hpack decode ${name}`, () => {
      const d = new HpackDecoder();
      const got = d.decode(hex(wire));
      if (!same(got, headers)) return `got ${JSON.stringify(got)}`;
      return d.tableSize === size ? undefined : `table size ${d.tableSize}, expected ${size}`;
    });
  }
  check(out, "hpack integer 1337 with a 5-bit prefix (C.1.2)", () => {
    // a size update carries a 5-bit prefix integer: 0x20 | 31, then 1337 - 31 in 7-bit groups
    const e = new HpackEncoder({ maxTableSize: 4096 });
    e.setPeerMaxTableSize(1337);
    const w = toHex(e.encode([]));
    return w === "3f9a0a" ? undefined : `got ${w}`;
  });
  for (const [section, size, huffman, steps] of SEQUENCES) {
    check(out, `hpack decode ${section}`, () => {
      const d = new HpackDecoder({ maxTableSize: size });
      for (const [i, s] of steps.entries()) {
        const got = d.decode(hex(s.wire));
        if (!same(got, s.headers)) return `step ${i + 1}: got ${JSON.stringify(got)}`;
        if (d.tableSize !== s.tableSize) return `step ${i + 1}: table size ${d.tableSize}, expected ${s.tableSize}`;
      }
      return undefined;
    });
    check(out, `hpack encode ${section} byte for byte`, () => {
      const e = new HpackEncoder({ huffman, peerMaxTableSize: size, maxTableSize: size });
      for (const [i, s] of steps.entries()) {
        const got = toHex(e.encode(s.headers));
        if (got !== s.wire.replace(/\s+/g, "")) return `step ${i + 1}: got ${got}`;
        if (e.tableSize !== s.tableSize) return `step ${i + 1}: table size ${e.tableSize}, expected ${s.tableSize}`;
      }
      return undefined;
    });
  }
  for (const [name, wire, start] of BAD_BLOCKS) {
    check(out, `hpack refuses: ${name}`, () => throwsH2(() => new HpackDecoder().decode(hex(wire)), ErrorCode.COMPRESSION_ERROR, start));
  }
  check(out, "hpack: a header list over the limit is a PROTOCOL_ERROR, and the table stays in step", () => {
    const d = new HpackDecoder({ maxHeaderListSize: 100 });
    const e = new HpackEncoder();
    const big = e.encode([["x-a", "a".repeat(40)], ["x-b", "b".repeat(40)]]);
    const p = throwsH2(() => d.decode(big), ErrorCode.PROTOCOL_ERROR, "hpack: header list over the 100-byte");
    if (p) return p;
    const got = d.decode(e.encode([["x-b", "b".repeat(40)]]));
    return same(got, [["x-b", "b".repeat(40)]]) ? undefined : `after: ${JSON.stringify(got)}`;
  });
  check(out, "hpack: eviction keeps encoder and decoder in step", () => {
    const rnd = prng(7);
    const e = new HpackEncoder({ maxTableSize: 200 });
    const d = new HpackDecoder({ maxTableSize: 4096 });
    for (let i = 0; i < 300; i++) {
      const list: Header[] = [];
      for (let k = rnd() % 5; k >= 0; k--) list.push([`x-h${rnd() % 12}`, "v".repeat(rnd() % 60) + (rnd() % 7)]);
      const got = d.decode(e.encode(list));
      if (!same(got, list)) return `block ${i}: got ${JSON.stringify(got)}`;
      if (d.tableSize !== e.tableSize) return `block ${i}: decoder table ${d.tableSize}, encoder ${e.tableSize}`;
      if (e.tableSize > 200) return `block ${i}: table ${e.tableSize} over 200`;
    }
    return undefined;
  });
  check(out, "hpack: the encoder follows a smaller peer table (size updates announced)", () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    d.decode(e.encode([["x-a", "1".repeat(100)]]));
    e.setPeerMaxTableSize(0);
    e.setPeerMaxTableSize(64);
    const block = e.encode([["x-b", "2"]]);
    if (block[0] !== 0x20 || block[1] !== 0x3f) return `block starts ${toHex(block.subarray(0, 3))}`;
    const got = d.decode(block);
    if (!same(got, [["x-b", "2"]])) return `got ${JSON.stringify(got)}`;
    return d.tableSize === e.tableSize ? undefined : `decoder ${d.tableSize}, encoder ${e.tableSize}`;
  });
  check(out, "hpack: authorization is never indexed", () => {
    const e = new HpackEncoder({ huffman: false });
    const w = e.encode([["authorization", "Bearer x"]]);
    return w[0] === 0x1f && w[1] === 23 - 15 && e.tableSize === 0 ? undefined : `got ${toHex(w)}`;
  });
  check(out, "hpack fuzz: random and mutated blocks throw nothing but H2Error", () => {
    const rnd = prng(1234);
    const seeds = SEQUENCES.flatMap(([, , , steps]) => steps.map((s) => hex(s.wire)));
    for (let i = 0; i < 3000; i++) {
      let block: Uint8Array;
      if (i % 2) {
        block = Uint8Array.from({ length: rnd() % 64 }, () => rnd() & 0xff);
      } else {
        block = seeds[rnd() % seeds.length]!.slice();
        for (let k = 1 + (rnd() % 4); k > 0; k--) block[rnd() % block.length] = rnd() & 0xff;
      }
      try {
        new HpackDecoder({ maxHeaderListSize: 4096 }).decode(block);
      } catch (e) {
        if (!(e instanceof H2Error)) return `block ${toHex(block)}: ${(e as Error)?.name}: ${(e as Error)?.message}`;
      }
    }
    return undefined;
  });
}

/** Frames of a stream, as decoded: [type, flags, stream, payload hex]. */
/**
 * The frames, with the pieces of a DATA frame split across pushes joined
 * (a piece without END_STREAM followed by DATA of the same stream); `pieces`
 * counts the DATA frames as passed on.
 */
function decodeAll(bytes: Uint8Array, splits: number[], maxFrameSize = 16384, pieces: number[] = []): [number, number, number, string][] {
  const got: [number, number, number, string][] = [];
  let open = false; // the last entry is DATA that a next piece may continue
  const d = new FrameDecoder({ maxFrameSize, onFrame: (f) => {
    const last = got[got.length - 1];
    if (f.type === FrameType.DATA) pieces.push(f.payload.length);
    if (f.type === FrameType.DATA && open && last && last[2] === f.streamId) {
      last[1] = f.flags;
      last[3] += toHex(f.payload);
    } else {
      got.push([f.type, f.flags, f.streamId, toHex(f.payload)]);
    }
    open = f.type === FrameType.DATA && !(f.flags & Flag.END_STREAM) && !(f.flags & Flag.PADDED);
  } });
  let at = 0;
  for (const s of splits) {
    d.push(bytes.subarray(at, Math.min(bytes.length, at + s)));
    at += s;
  }
  if (at < bytes.length) d.push(bytes.subarray(at));
  return got;
}

const frame = (type: number, flags: number, streamId: number, payload: string): Frame => ({ type, flags, streamId, payload: hex(payload) });

function frameCases(out: CaseResult[]): void {
  const big = new Uint8Array(16384).map((_, i) => i & 0xff);
  const stream = [
    encodeSettings([[Setting.MAX_CONCURRENT_STREAMS, 100], [Setting.INITIAL_WINDOW_SIZE, 65535]]),
    encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")),
    encodeFrame(FrameType.DATA, Flag.END_STREAM, 1, big),
    encodePing(hex("0102030405060708"), true),
    encodeWindowUpdate(0, 1 << 20),
    encodeRstStream(3, ErrorCode.CANCEL),
    encodeGoaway(5, ErrorCode.NO_ERROR, bytesOf("bye")),
    encodeFrame(FrameType.SETTINGS, Flag.ACK, 0),
  ];
  const all = new Uint8Array(stream.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of stream) {
    all.set(f, at);
    at += f.length;
  }
  const whole = decodeAll(all, []);
  check(out, "frames: a stream of every kind decodes", () => {
    if (whole.length !== stream.length) return `${whole.length} frames`;
    const types = whole.map((f) => f[0]);
    return same(types, [4, 1, 0, 6, 8, 3, 7, 4]) && whole[2]![3] === toHex(big) ? undefined : `types ${types}`;
  });
  check(out, "frames: byte by byte gives the same", () => same(decodeAll(all, Array(all.length).fill(1)), whole) ? undefined : "differs");
  check(out, "frames: random splits give the same", () => {
    const rnd = prng(99);
    for (let i = 0; i < 20; i++) {
      const splits: number[] = [];
      for (let n = 0; n < all.length;) {
        const s = 1 + (rnd() % 3000);
        splits.push(s);
        n += s;
      }
      if (!same(decodeAll(all, splits), whole)) return `split ${i} differs`;
    }
    return undefined;
  });
  check(out, "frames: an unpadded DATA frame split across pushes comes in pieces as it arrives, END_STREAM on the last", () => {
    const data = encodeFrame(FrameType.DATA, Flag.END_STREAM, 1, big);
    const seen: [number, number][] = [];
    const d = new FrameDecoder({ maxFrameSize: 16384, onFrame: (f) => seen.push([f.flags, f.payload.length]) });
    d.push(data.subarray(0, 5)); // half a header: nothing yet
    d.push(data.subarray(5, 1000));
    d.push(data.subarray(1000, 10000));
    d.push(data.subarray(10000));
    return same(seen, [[0, 991], [0, 9000], [Flag.END_STREAM, 16384 - 9991]]) ? undefined : JSON.stringify(seen);
  });
  check(out, "frames: a padded DATA frame split across pushes is gathered whole", () => {
    const padded = encodeFrame(FrameType.DATA, Flag.PADDED, 1, hex("03 616263 000000"));
    const pieces: number[] = [];
    const got = decodeAll(padded, [4, 5, 3], 16384, pieces);
    return same(pieces, [7]) && got.length === 1 && got[0]![3] === "03616263000000" ? undefined : JSON.stringify([pieces, got]);
  });
  check(out, "frames: over SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR", () =>
    throwsH2(() => decodeAll(encodeFrame(FrameType.DATA, 0, 1, new Uint8Array(16385)), []), ErrorCode.FRAME_SIZE_ERROR, "h2: frame of 16385 bytes is over the 16384-byte"));
  check(out, "frames: the limit applies to a header split from its frame", () =>
    throwsH2(() => decodeAll(hex("ffffff 00 00 00000001"), [2, 3, 4]), ErrorCode.FRAME_SIZE_ERROR, "h2: frame of 16777215 bytes"));
  check(out, "frames: encoded settings read back", () => {
    const f = decodeAll(encodeSettings([[Setting.HEADER_TABLE_SIZE, 0], [Setting.MAX_FRAME_SIZE, 16384]]), [])[0]!;
    const s = readSettings(frame(f[0], f[1], f[2], f[3]));
    return same(s, [[1, 0], [5, 16384]]) ? undefined : JSON.stringify(s);
  });
  const bad: [string, () => unknown, number, string][] = [
    ["SETTINGS on a stream", () => readSettings(frame(4, 0, 1, "")), ErrorCode.PROTOCOL_ERROR, "h2: SETTINGS on a stream"],
    ["SETTINGS length", () => readSettings(frame(4, 0, 0, "0001 0000")), ErrorCode.FRAME_SIZE_ERROR, "h2: SETTINGS payload of 4"],
    ["SETTINGS ACK with payload", () => readSettings(frame(4, 1, 0, "000100000000")), ErrorCode.FRAME_SIZE_ERROR, "h2: SETTINGS ACK"],
    ["ENABLE_PUSH 2", () => readSettings(frame(4, 0, 0, "000200000002")), ErrorCode.PROTOCOL_ERROR, "h2: SETTINGS_ENABLE_PUSH"],
    ["INITIAL_WINDOW_SIZE 2^31", () => readSettings(frame(4, 0, 0, "000480000000")), ErrorCode.FLOW_CONTROL_ERROR, "h2: SETTINGS_INITIAL_WINDOW_SIZE"],
    ["MAX_FRAME_SIZE small", () => readSettings(frame(4, 0, 0, "000500003fff")), ErrorCode.PROTOCOL_ERROR, "h2: SETTINGS_MAX_FRAME_SIZE"],
    ["PING length", () => readPing(frame(6, 0, 0, "00")), ErrorCode.FRAME_SIZE_ERROR, "h2: PING of 1"],
    ["PING on a stream", () => readPing(frame(6, 0, 3, "0000000000000000")), ErrorCode.PROTOCOL_ERROR, "h2: PING on a stream"],
    ["GOAWAY short", () => readGoaway(frame(7, 0, 0, "00000000")), ErrorCode.FRAME_SIZE_ERROR, "h2: GOAWAY of 4"],
    ["GOAWAY on a stream", () => readGoaway(frame(7, 0, 1, "0000000000000000")), ErrorCode.PROTOCOL_ERROR, "h2: GOAWAY on a stream"],
    ["WINDOW_UPDATE 0", () => readWindowUpdate(frame(8, 0, 0, "00000000")), ErrorCode.PROTOCOL_ERROR, "h2: WINDOW_UPDATE with an increment of 0"],
    ["WINDOW_UPDATE length", () => readWindowUpdate(frame(8, 0, 0, "000001")), ErrorCode.FRAME_SIZE_ERROR, "h2: WINDOW_UPDATE of 3"],
    ["RST_STREAM on 0", () => readRstStream(frame(3, 0, 0, "00000000")), ErrorCode.PROTOCOL_ERROR, "h2: RST_STREAM on stream 0"],
    ["RST_STREAM length", () => readRstStream(frame(3, 0, 1, "00")), ErrorCode.FRAME_SIZE_ERROR, "h2: RST_STREAM of 1"],
    ["PRIORITY length", () => checkPriority(frame(2, 0, 1, "00")), ErrorCode.FRAME_SIZE_ERROR, "h2: PRIORITY of 1"],
    ["DATA on 0", () => readData(frame(0, 0, 0, "")), ErrorCode.PROTOCOL_ERROR, "h2: DATA on stream 0"],
    ["DATA padding too long", () => readData(frame(0, Flag.PADDED, 1, "05 6162")), ErrorCode.PROTOCOL_ERROR, "h2: padding longer"],
    ["DATA padded, empty", () => readData(frame(0, Flag.PADDED, 1, "")), ErrorCode.FRAME_SIZE_ERROR, "h2: padded frame"],
    ["HEADERS on 0", () => readHeadersFragment(frame(1, 4, 0, "82")), ErrorCode.PROTOCOL_ERROR, "h2: HEADERS on stream 0"],
    ["HEADERS priority short", () => readHeadersFragment(frame(1, Flag.PRIORITY, 1, "0000")), ErrorCode.PROTOCOL_ERROR, "h2: padding longer"],
  ];
  for (const [name, fn, code, start] of bad) check(out, `frames refuse: ${name}`, () => throwsH2(fn, code, start));
  check(out, "frames: padding and priority are removed", () => {
    const d = toHex(readData(frame(0, Flag.PADDED, 1, "02 616263 0000")));
    const h = toHex(readHeadersFragment(frame(1, Flag.PADDED | Flag.PRIORITY, 1, "01 8000000310 82 00")));
    return d === "616263" && h === "82" ? undefined : `${d} ${h}`;
  });
  check(out, "frames fuzz: random streams throw nothing but H2Error", () => {
    const rnd = prng(4321);
    for (let i = 0; i < 300; i++) {
      const bytes = Uint8Array.from({ length: 1 + (rnd() % 200) }, () => (rnd() % 4 ? rnd() % 8 : rnd() & 0xff));
      const readers = [readData, readHeadersFragment, checkPriority, readRstStream, readSettings, () => 0, readPing, readGoaway, readWindowUpdate, () => 0];
      try {
        decodeAll(bytes, [1 + (rnd() % 20)], 64).forEach(([type, flags, id, p]) => {
          try {
            readers[type]?.(frame(type, flags, id, p));
          } catch (e) {
            if (!(e instanceof H2Error)) throw e;
          }
        });
      } catch (e) {
        if (!(e instanceof H2Error)) return `stream ${toHex(bytes)}: ${(e as Error)?.name}: ${(e as Error)?.message}`;
      }
    }
    return undefined;
  });
}

export function runH2Cases(): CaseResult[] {
  const out: CaseResult[] = [];
  hpackCases(out);
  frameCases(out);
  return out;
}
