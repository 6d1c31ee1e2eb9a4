// Cases of the serialized Secure Streams codec (src/wire/sss): lws' own
// captured frames decoded and re-encoded byte for byte, every frame type
// round-tripped, malformed frames refused with their code, splits at every
// offset, and seeded random input. Portable: run on Node (sss-codec.test.ts)
// and on the XS engine, which must agree.

import {
  ClientBoundDecoder, ProxyBoundDecoder, SssError, MAX_FRAME_PAYLOAD, TIMEOUT_CANCEL,
  encodeCreateResult, encodeDestroying, encodeLengthHint, encodeMetadata, encodeOnwardConnect, encodePerf, encodeRx,
  encodeRxCredit, encodeState, encodeStreamtype, encodeTimeout, encodeTx, encodeTxCredit,
  type ClientBound, type ProxyBound,
} from "../../src/wire/sss/index.js";
import { utf8Encode } from "../../src/util/utf8.js";
import { prng } from "./prng.js";
import { FakeHost } from "./fake-host.js";
import { SspcContext } from "../../src/sspc/client.js";
import { State, stateName } from "../../src/ss/states.js";
import type { ByteStream, ConnectOptions, StreamHandlers } from "../../src/host.js";

export interface CaseResult { name: string; ok: boolean; detail?: string }

type Message = ProxyBound | ClientBound;

/** Frames of the fixture file: id → [direction, bytes]. */
export function parseFixtures(text: string): Map<string, { toProxy: boolean; bytes: Uint8Array }> {
  const out = new Map<string, { toProxy: boolean; bytes: Uint8Array }>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [id, dir, ...hex] = line.split(/\s+/);
    out.set(id!, { toProxy: dir === "c2p", bytes: Uint8Array.from(hex.map((h) => parseInt(h, 16))) });
  }
  return out;
}

const b = (s: string) => utf8Encode(s);
const bytesOf = (...n: number[]) => Uint8Array.from(n);

/** A message as plain JSON (byte arrays as lists), to compare. */
function plain(m: Message): string {
  return JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
}

function decodeAll(toProxy: boolean, chunks: Uint8Array[]): Message[] {
  const d = toProxy ? new ProxyBoundDecoder() : new ClientBoundDecoder();
  const out: Message[] = [];
  for (const c of chunks) d.push(c, (m: Message) => void out.push(m));
  return out;
}

function same(a: Uint8Array, e: Uint8Array): boolean {
  return a.length === e.length && a.every((x, i) => x === e[i]);
}

/** What each captured frame decodes to, and the encoder call that writes it again. */
const EXPECT: Record<string, [Message, () => Uint8Array]> = {
  "get-streamtype": [{ type: "streamtype", version: 1, pid: 10504, txCredit: 500000000, streamtype: "mintest" }, () => encodeStreamtype("mintest", 500000000, 10504)],
  "get-create-result": [{ type: "create-result", result: 0, clientBuflen: 0, rideshares: ["mintest"] }, () => encodeCreateResult(0, 0, ["mintest"])],
  "get-creating": [{ type: "state", state: 1, ack: 0 }, () => encodeState(1)],
  "get-onward-connect": [{ type: "onward-connect" }, () => encodeOnwardConnect()],
  "get-connecting": [{ type: "state", state: 6, ack: 0 }, () => encodeState(6)],
  "get-timeout": [{ type: "timeout", ms: 3000 }, () => encodeTimeout(3000)],
  "get-meta-ctype": [{ type: "metadata", name: "ctype", value: b("myctype") }, () => encodeMetadata(true, "ctype", "myctype")],
  "get-meta-uptag": [{ type: "metadata", name: "uptag", value: b("myuptag123") }, () => encodeMetadata(true, "uptag", "myuptag123")],
  "get-meta-test": [{ type: "metadata", name: "test", value: b("hello") }, () => encodeMetadata(false, "test", "hello")],
  "get-connected": [{ type: "state", state: 5, ack: 0 }, () => encodeState(5)],
  "get-rx-eom": [{ type: "rx", flags: 2, latencyUs: 0, timeUs: 3731665891, payload: new Uint8Array(0) }, () => encodeRx(new Uint8Array(0), 2, 3731665891)],
  "get-ack": [{ type: "state", state: 10, ack: 0 }, () => encodeState(10)],
  "get-meta-srv": [{ type: "metadata", name: "srv", value: b("node-local") }, () => encodeMetadata(false, "srv", "node-local")],
  "get-disconnected": [{ type: "state", state: 2, ack: 0 }, () => encodeState(2)],
  "post-meta-ctype": [{ type: "metadata", name: "ctype", value: b('multipart/form-data;boundary="boundary"') }, () => encodeMetadata(true, "ctype", 'multipart/form-data;boundary="boundary"')],
  "post-length-hint": [{ type: "length-hint", length: 5694 }, () => encodeLengthHint(5694)],
  "post-poll": [{ type: "state", state: 8, ack: 0 }, () => encodeState(8)],
  "post-rx-som": [{ type: "rx", flags: 1, latencyUs: 0, timeUs: 3756132933, payload: b("got 5694 bytes\n") }, () => encodeRx(b("got 5694 bytes\n"), 1, 3756132933)],
  "mqtt-streamtype": [{ type: "streamtype", version: 1, pid: 11285, txCredit: 500000000, streamtype: "mosq_nontls" }, () => encodeStreamtype("mosq_nontls", 500000000, 11285)],
  "mqtt-create-result": [{ type: "create-result", result: 0, clientBuflen: 0, rideshares: ["mosq_nontls"] }, () => encodeCreateResult(0, 0, ["mosq_nontls"])],
  "mqtt-tx": [{ type: "tx", flags: 3, heldUs: 1044683, timeUs: 3763828475, payload: b('{"unixtime":1795648700}') }, () => encodeTx(b('{"unixtime":1795648700}'), 3, 1044683, 3763828475)],
  "mqtt-rx": [{ type: "rx", flags: 3, latencyUs: 0, timeUs: 3763829104, payload: b('{"unixtime":1795648700}') }, () => encodeRx(b('{"unixtime":1795648700}'), 3, 3763829104)],
};

/** Frame types the captures do not show: our bytes, written out by hand from the format. */
const HANDMADE: [string, boolean, Uint8Array, Message, () => Uint8Array][] = [
  ["DESTROYING", true, bytesOf(0xac, 0, 0), { type: "destroying" }, () => encodeDestroying()],
  ["TXCR_UPDATE to the proxy (signed)", true, bytesOf(0xaf, 0, 4, 0xff, 0xff, 0xff, 0xfe), { type: "txcr", delta: -2 }, () => encodeTxCredit(-2)],
  ["TIMEOUT_UPDATE cancel", true, bytesOf(0xb0, 0, 4, 0xff, 0xff, 0xff, 0xff), { type: "timeout", ms: TIMEOUT_CANCEL }, () => encodeTimeout(TIMEOUT_CANCEL)],
  ["TXCR_UPDATE to the client", false, bytesOf(0x58, 0, 4, 0, 1, 0, 0), { type: "txcr", delta: 65536 }, () => encodeRxCredit(65536)],
  ["CONNSTATE of a user state (4-byte state)", false, bytesOf(0x57, 0, 8, 0, 0, 3, 0xe9, 0, 0, 0, 7), { type: "state", state: 1001, ack: 7 }, () => encodeState(1001, 7)],
  ["CREATE_RESULT refused, no list", false, bytesOf(0x56, 0, 5, 1, 0, 0, 0x80, 0), { type: "create-result", result: 1, clientBuflen: 32768, rideshares: [] }, () => encodeCreateResult(1, 32768)],
  ["CREATE_RESULT with a rideshare chain", false, bytesOf(0x56, 0, 9, 0, 0, 0, 0, 0, 0x2c, 0x61, 0x2c, 0x62), { type: "create-result", result: 0, clientBuflen: 0, rideshares: ["a", "b"] }, () => encodeCreateResult(0, 0, ["a", "b"])],
  ["PERF", false, bytesOf(0x5b, 0, 2, 0x7b, 0x7d), { type: "perf", json: b("{}") }, () => encodePerf(b("{}"))],
  ["RX_PAYLOAD with a rideshare name", false,
    bytesOf(0x55, 0, 20, 0, 0, 0, 0x21, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 2, 0x72, 0x73, 0x78),
    { type: "rx", flags: 33, latencyUs: 0, timeUs: 4294967298, rideshare: "rs", payload: b("x") }, () => encodeRx(b("x"), 1, 4294967298, "rs")],
  ["TX_PAYLOAD, a µs timestamp past 2^32", true,
    bytesOf(0xad, 0, 17, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x41),
    { type: "tx", flags: 2, heldUs: 5, timeUs: Number.MAX_SAFE_INTEGER, payload: b("A") }, () => encodeTx(b("A"), 2, 5, Number.MAX_SAFE_INTEGER)],
];

/** Malformed input, and the code the decoder must refuse it with. */
const MALFORMED: [string, boolean, Uint8Array, string][] = [
  ["a client frame type sent to the client", false, bytesOf(0xab, 0, 0), "unknown-frame"],
  ["a proxy frame type sent to the proxy", true, bytesOf(0x57, 0, 5, 1, 0, 0, 0, 0), "unknown-frame"],
  ["reserved TLSNEG_ENCLAVE_SIGNED", true, bytesOf(0xb2, 0, 0), "unknown-frame"],
  ["reserved LINK_VALIDITY_PROBE", true, bytesOf(0xb3, 0, 0), "unknown-frame"],
  ["reserved TLSNEG_ENCLAVE_SIGN", false, bytesOf(0x5a, 0, 0), "unknown-frame"],
  ["STREAMTYPE version 2", true, bytesOf(0xaa, 0, 10, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x61), "bad-version"],
  ["STREAMTYPE without a name", true, bytesOf(0xaa, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0), "bad-length"],
  ["STREAMTYPE name not UTF-8", true, bytesOf(0xaa, 0, 10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff), "bad-name"],
  ["STREAMTYPE name over 64 bytes", true, (() => { const f = encodeStreamtype("a".repeat(64)); const g = new Uint8Array(f.length + 1); g.set(f); g[2]! += 1; g[f.length] = 0x61; return g; })(), "bad-name"],
  ["ONWARD_CONNECT with a body", true, bytesOf(0xab, 0, 1, 0), "bad-length"],
  ["TIMEOUT_UPDATE of 3 bytes", true, bytesOf(0xb0, 0, 3, 0, 0, 1), "bad-length"],
  ["PAYLOAD_LENGTH_HINT of 5 bytes", true, bytesOf(0xb1, 0, 5, 0, 0, 0, 0, 1), "bad-length"],
  ["TX_PAYLOAD shorter than its 16-byte prefix", true, bytesOf(0xad, 0, 15, ...new Array<number>(15).fill(0)), "bad-length"],
  ["TX_PAYLOAD with RIDESHARE and a name past the end", true, bytesOf(0xad, 0, 17, 0, 0, 0, 32, ...new Array<number>(12).fill(0), 9), "bad-length"],
  ["METADATA name length past the end", true, bytesOf(0xae, 0, 3, 5, 0x61, 0x62), "bad-length"],
  ["METADATA with an empty name", true, bytesOf(0xae, 0, 2, 0, 0x61), "bad-name"],
  ["METADATA with no body", false, bytesOf(0x59, 0, 0), "bad-length"],
  ["CONNSTATE of 6 bytes", false, bytesOf(0x57, 0, 6, 1, 0, 0, 0, 0, 0), "bad-length"],
  ["CREATE_RESULT of 4 bytes", false, bytesOf(0x56, 0, 4, 0, 0, 0, 0), "bad-length"],
  ["TXCR_UPDATE of 2 bytes", false, bytesOf(0x58, 0, 2, 0, 1), "bad-length"],
];

export function runSssCases(fixtureText: string): CaseResult[] {
  const results: CaseResult[] = [];
  const check = (name: string, f: () => string | undefined) => {
    try {
      const why = f();
      results.push(why === undefined ? { name, ok: true } : { name, ok: false, detail: why });
    } catch (e) {
      results.push({ name, ok: false, detail: `threw ${(e as Error).name}: ${(e as Error).message}` });
    }
  };
  const fixtures = parseFixtures(fixtureText);

  for (const [id, [expected, encode]] of Object.entries(EXPECT)) {
    check(`lws capture ${id}: decodes, and encodes to the same bytes`, () => {
      const f = fixtures.get(id);
      if (!f) return "missing from the fixture file";
      const got = decodeAll(f.toProxy, [f.bytes]);
      if (got.length !== 1 || plain(got[0]!) !== plain(expected)) return `decoded ${got.map(plain).join(" ")}`;
      if (!same(encode(), f.bytes)) return `encoded ${Array.from(encode()).join(",")}`;
      return undefined;
    });
  }

  check("lws capture of a whole GET client stream, split at every offset and byte by byte", () => {
    const f = fixtures.get("get-c2p-stream")!;
    const whole = decodeAll(true, [f.bytes]).map(plain);
    const want = ["get-streamtype", "get-onward-connect", "get-timeout", "get-meta-ctype", "get-meta-uptag"].map((id) => plain(EXPECT[id]![0]));
    if (whole.join() !== want.join()) return `whole: ${whole.join(" ")}`;
    for (let cut = 1; cut < f.bytes.length; cut++) {
      const got = decodeAll(true, [f.bytes.subarray(0, cut), f.bytes.subarray(cut)]).map(plain);
      if (got.join() !== want.join()) return `split at ${cut}: ${got.join(" ")}`;
    }
    const bytewise = decodeAll(true, Array.from(f.bytes, (x) => bytesOf(x))).map(plain);
    return bytewise.join() === want.join() ? undefined : `byte by byte: ${bytewise.join(" ")}`;
  });

  for (const [name, toProxy, bytes, expected, encode] of HANDMADE) {
    check(`${name}: decodes, and encodes to the same bytes`, () => {
      const got = decodeAll(toProxy, [bytes]);
      if (got.length !== 1 || plain(got[0]!) !== plain(expected)) return `decoded ${got.map(plain).join(" ")}`;
      return same(encode(), bytes) ? undefined : `encoded ${Array.from(encode()).join(",")}`;
    });
  }

  for (const [name, toProxy, bytes, code] of MALFORMED) {
    check(`refused: ${name} (${code}), and nothing more is read`, () => {
      const d = toProxy ? new ProxyBoundDecoder() : new ClientBoundDecoder();
      try {
        d.push(bytes, () => undefined);
        return "accepted";
      } catch (e) {
        if (!(e instanceof SssError) || e.code !== code) return `threw ${(e as Error).message}`;
      }
      try {
        d.push(encodeOnwardConnect(), () => undefined);
        return "read on after the error";
      } catch (e) {
        return e instanceof SssError && e.code === code ? undefined : `then threw ${(e as Error).message}`;
      }
    });
  }

  check("a frame over the decoder's limit is refused on its header, before its body arrives", () => {
    const d = new ProxyBoundDecoder({ maxBody: 1024 });
    try {
      d.push(bytesOf(0xad, 0x04, 0x01), () => undefined);
      return "accepted";
    } catch (e) {
      return e instanceof SssError && e.code === "too-large" ? undefined : (e as Error).message;
    }
  });

  check("a 65535-byte body (the largest) round-trips, split mid-body; one more byte of payload does not encode", () => {
    const payload = new Uint8Array(MAX_FRAME_PAYLOAD).map((_, i) => i & 0xff);
    const f = encodeRx(payload, 3, 1);
    const got = decodeAll(false, [f.subarray(0, 30000), f.subarray(30000)]);
    if (got.length !== 1 || got[0]!.type !== "rx" || !same((got[0] as { payload: Uint8Array }).payload, payload)) return "did not round-trip";
    try {
      encodeTx(new Uint8Array(MAX_FRAME_PAYLOAD + 1), 0);
      return "encoded an over-long payload";
    } catch (e) {
      return e instanceof SssError && e.code === "too-large" ? undefined : (e as Error).message;
    }
  });

  check("maxGather: a longer payload frame split across pushes comes in pieces, the start flags on the first, the end flags on the last", () => {
    const payload = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
    const all = 1 | 2 | 4 | 8 | 16; // SOM EOM POLL RELATED_START RELATED_END
    for (const toProxy of [false, true]) {
      const f = toProxy ? encodeTx(payload, all, 5, 123456789) : encodeRx(payload, all, 123456789);
      for (let cut = 1; cut < f.length; cut++) {
        const d = toProxy ? new ProxyBoundDecoder({ maxGather: 100 }) : new ClientBoundDecoder({ maxGather: 100 });
        const got: { flags: number; timeUs: number; payload: Uint8Array }[] = [];
        for (const part of [f.subarray(0, cut), f.subarray(cut)]) d.push(part, (m: Message) => void got.push(m as (typeof got)[0]));
        const joined = got.flatMap((m) => Array.from(m.payload));
        if (!same(Uint8Array.from(joined), payload)) return `${toProxy ? "tx" : "rx"} cut at ${cut}: payload differs`;
        // a cut in the header or the prefix leaves the payload whole in the second push: one message
        const pieces = cut > 19 && cut < f.length ? 2 : 1;
        if (got.length !== pieces || got.some((m) => m.payload.length === 0 || m.timeUs !== 123456789)) return `cut at ${cut}: ${got.map((m) => plain(m as unknown as Message)).join(" ")}`;
        const flags = got.map((m) => m.flags).join();
        if (flags !== (pieces === 1 ? `${all}` : `${1 | 4 | 8},${2 | 16}`)) return `cut at ${cut}: flags ${flags}`;
      }
    }
    // byte by byte: 300 one-byte pieces; a frame within the limit, and one naming a rideshare, are gathered whole
    const d = new ClientBoundDecoder({ maxGather: 100 });
    const got: ClientBound[] = [];
    const frames = [encodeRx(payload, 3, 1), encodeRx(payload.subarray(0, 84), 3, 1), encodeRx(payload, 3, 1, "rs")];
    for (const f of frames) for (const x of f) d.push(bytesOf(x), (m: ClientBound) => void got.push(m));
    const sizes = got.map((m) => (m.type === "rx" ? m.payload.length : -1));
    if (sizes.length !== 302 || sizes.slice(0, 300).some((n) => n !== 1) || sizes[300] !== 84 || sizes[301] !== 300) return `sizes ${sizes.slice(295).join()}`;
    const r = got[301] as { rideshare?: string; flags: number };
    return r.rideshare === "rs" && r.flags === (3 | 32) ? undefined : `rideshare frame ${plain(got[301]!)}`;
  });

  check("encoders refuse what a field cannot hold", () => {
    const bad: [string, () => unknown][] = [
      ["empty streamtype", () => encodeStreamtype("")],
      ["credit over u32", () => encodeStreamtype("a", 2 ** 32)],
      ["credit delta over i32", () => encodeTxCredit(2 ** 31)],
      ["negative timeout", () => encodeTimeout(-1)],
      ["metadata name over 255 bytes", () => encodeMetadata(true, "n".repeat(256), "")],
      ["create result 256", () => encodeCreateResult(256)],
      ["a rideshare list too long for lws' one-byte length", () => encodeCreateResult(0, 0, ["x".repeat(251)])],
    ];
    for (const [what, f] of bad) {
      try {
        f();
        return `${what} was encoded`;
      } catch (e) {
        if (!(e instanceof SssError)) return `${what}: ${(e as Error).message}`;
      }
    }
    return undefined;
  });

  check("seeded random bytes: only SssError, never another exception, in both directions", () => {
    const next = prng(0x5555aaaa);
    for (let round = 0; round < 400; round++) {
      const toProxy = (round & 1) === 0;
      const d = toProxy ? new ProxyBoundDecoder({ maxBody: 4096 }) : new ClientBoundDecoder({ maxBody: 4096 });
      // mostly valid type bytes with random lengths and bodies, in random pieces
      const bytes = new Uint8Array(64 + (next() % 512)).map(() => next() & 0xff);
      if (next() & 1) bytes[0] = toProxy ? 0xaa + (next() % 10) : 0x55 + (next() % 7);
      bytes[1] = 0;
      let at = 0;
      try {
        while (at < bytes.length) {
          const n = 1 + (next() % 40);
          d.push(bytes.subarray(at, at + n), () => undefined);
          at += n;
        }
      } catch (e) {
        if (!(e instanceof SssError)) return `round ${round}: ${(e as Error).name}: ${(e as Error).message}`;
      }
    }
    return undefined;
  });

  sspcCases(fixtures, check);
  return results;
}

// ---- the SSPC client on a scripted link (lws' proxy bytes), on a fake clock ----

/** A host whose connections are a script: `answer` sees each frame the client writes and replies with bytes. */
class ScriptHost extends FakeHost {
  readonly written: Uint8Array[] = [];
  connects = 0;
  /** While true, a connect fails (no proxy). */
  down = false;
  #handlers: StreamHandlers | undefined;
  constructor(readonly answer: (frame: Uint8Array, reply: (bytes: Uint8Array) => void) => void) {
    super();
  }
  override connect(_o: ConnectOptions, handlers: StreamHandlers): ByteStream {
    this.connects++;
    let open = true;
    this.#handlers = handlers;
    this.setTimer(0, () => {
      if (!open) return;
      if (this.down) {
        open = false;
        handlers.onError({ kind: "refused", message: "no proxy" });
      } else {
        handlers.onConnected({ timings: {} });
      }
    });
    return {
      write: (bytes) => {
        if (!open) return false;
        this.written.push(bytes.slice());
        this.answer(bytes, (reply) => this.setTimer(0, () => open && handlers.onData(reply)));
        return true;
      },
      close: () => void (open = false),
    };
  }
  /** The proxy dies: the link reports its end. */
  drop(): void {
    this.#handlers?.onClosed();
  }
}

function sspcCases(fixtures: Map<string, { toProxy: boolean; bytes: Uint8Array }>, check: (name: string, f: () => string | undefined) => void): void {
  const f = (id: string) => fixtures.get(id)!.bytes;
  const cat = (...parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  };
  // lws' proxy for the GET session: its bytes, the elided 987-byte payload made up behind its real header
  const som = cat(bytesOf(0x55, 0x03, 0xeb, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0x6c, 0xb3, 0xd8), new Uint8Array(987).fill(0x41));
  const lwsProxy = (frame: Uint8Array, reply: (b: Uint8Array) => void) => {
    if (frame[0] === 0xaa) reply(cat(f("get-create-result"), f("get-creating")));
    if (frame[0] === 0xab) {
      reply(f("get-connecting"));
      // split at odd places, as a byte stream may be
      const rest = cat(f("get-meta-test"), f("get-connected"), som, f("get-rx-eom"), f("get-ack"), f("get-meta-srv"), f("get-disconnected"));
      reply(rest.subarray(0, 7));
      reply(rest.subarray(7, 600));
      reply(rest.subarray(600));
    }
  };

  check("SSPC against lws' proxy bytes: CREATING at create(), the proxy's states, payload pieces and metadata as lws sent them", () => {
    const host = new ScriptHost(lwsProxy);
    const states: string[] = [];
    const rx: number[] = [];
    let meta = "";
    const ctx = new SspcContext(host, { proxy: { host: "proxy", port: 1 } });
    const s = ctx.create("mintest", {
      onState: (state, _ack, stream) => {
        states.push(stateName(state));
        if (state === State.DISCONNECTED) meta = `${stream.getMetadata("test")},${stream.getMetadata("srv")}`;
      },
      onRx: (p, flags) => void rx.push(p.length, flags),
    });
    if (states.join() !== "CREATING") return `at create(): ${states.join()}`;
    s.setMetadata("ctype", "myctype");
    s.requestTx();
    host.advance(10);
    const want = "CREATING,CONNECTING,CONNECTED,QOS_ACK_REMOTE,DISCONNECTED";
    if (states.join() !== want) return `states ${states.join()}`;
    if (rx.join() !== "987,1,0,2") return `rx ${rx.join()}`;
    if (meta !== "hello,node-local") return `metadata ${meta}`;
    // what lws' proxy received from us: STREAMTYPE v1 "mintest", the metadata, then ONWARD_CONNECT
    const sent = host.written.map((w) => w[0]!.toString(16)).join(",");
    if (sent !== "aa,ae,ab") return `wrote ${sent}`;
    if (!same(host.written[1]!, f("get-meta-ctype"))) return "metadata frame differs from lws' client's";
    return undefined;
  });

  check("SSPC: the proxy goes away: DISCONNECTED, UPSTREAM_LINK_RETRY with backoff while it is down; back, the transaction is asked for again", () => {
    let answered = 0;
    const host = new ScriptHost((frame, reply) => {
      if (frame[0] === 0xaa) reply(cat(encodeCreateResult(0, 0, ["t"]), encodeState(State.CREATING)));
      if (frame[0] === 0xab && answered++ === 0) reply(cat(encodeState(State.CONNECTING), encodeState(State.CONNECTED), encodeRx(bytesOf(1, 2), 1)));
      else if (frame[0] === 0xab) reply(cat(encodeState(State.CONNECTING), encodeState(State.CONNECTED), encodeRx(bytesOf(1, 2, 3), 3), encodeState(State.QOS_ACK_REMOTE)));
    });
    const states: string[] = [];
    const ctx = new SspcContext(host, { proxy: { host: "proxy", port: 1 }, backoffMs: [100, 300] });
    const s = ctx.create("t", { onState: (state, ack) => void states.push(`${stateName(state)}${state === State.UPSTREAM_LINK_RETRY ? `@${ack}` : ""}`) });
    s.requestTx();
    host.advance(5);
    host.down = true;
    host.drop();
    host.advance(100); // the first retry, refused
    host.advance(300); // the second, refused
    host.down = false;
    host.advance(300); // the third: back
    const want = "CREATING,CONNECTING,CONNECTED,DISCONNECTED,UPSTREAM_LINK_RETRY@0,UPSTREAM_LINK_RETRY@100,UPSTREAM_LINK_RETRY@400,CONNECTING,CONNECTED,QOS_ACK_REMOTE";
    if (states.join() !== want) return `states ${states.join()}`;
    if (host.connects !== 4) return `${host.connects} connects`;
    return host.nextTimer() === undefined ? undefined : "a timer is left";
  });

  check("SSPC with localQos: QOS_ACK_LOCAL once the proxy took a whole message back in credit; QOS_NACK_LOCAL when the link breaks under one", () => {
    const host = new ScriptHost((frame, reply) => {
      if (frame[0] === 0xaa) reply(cat(encodeCreateResult(0, 0, ["t"]), encodeState(State.CREATING), encodeRxCredit(8)));
      if (frame[0] === 0xab) reply(cat(encodeState(State.CONNECTING), encodeState(State.CONNECTED)));
      // the proxy's onward connection takes what comes, and says so in credit
      if (frame[0] === 0xad) reply(encodeRxCredit(frame.length - 19));
    });
    const states: string[] = [];
    const body = bytesOf(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    let sent = 0;
    const ctx = new SspcContext(host, { proxy: { host: "proxy", port: 1 }, localQos: true });
    const s = ctx.create("t", {
      onState: (state) => void states.push(stateName(state)),
      onTx: (max) => {
        const piece = body.subarray(sent, sent + max);
        const flags = (sent === 0 ? 1 : 0) | (sent + piece.length >= body.length ? 2 : 0);
        sent += piece.length;
        return { payload: piece, flags };
      },
    });
    s.requestTx();
    host.advance(10);
    const pieces = host.written.filter((w) => w[0] === 0xad).map((w) => w.length - 19);
    // the credit of 8 cut the body in two
    if (pieces.join() !== "8,4") return `tx pieces ${pieces.join()}`;
    if (states.join() !== "CREATING,CONNECTING,CONNECTED,QOS_ACK_LOCAL") return `states ${states.join()}`;
    // a second message, and the proxy dies before taking it
    const quiet = new ScriptHost((frame, reply) => {
      if (frame[0] === 0xaa) reply(cat(encodeCreateResult(0, 0, ["t"]), encodeState(State.CREATING), encodeRxCredit(4)));
      if (frame[0] === 0xab) reply(cat(encodeState(State.CONNECTING), encodeState(State.CONNECTED)));
    });
    const s2: string[] = [];
    sent = 0;
    const c2 = new SspcContext(quiet, { proxy: { host: "proxy", port: 1 }, localQos: true, backoffMs: [1000] });
    c2.create("t", {
      onState: (state) => void s2.push(stateName(state)),
      onTx: (max) => { const p = body.subarray(sent, sent + max); sent += p.length; return { payload: p, flags: sent === p.length ? 1 : 0 }; },
    }).requestTx();
    quiet.advance(10);
    quiet.drop();
    return s2.join() === "CREATING,CONNECTING,CONNECTED,QOS_NACK_LOCAL,DISCONNECTED,UPSTREAM_LINK_RETRY" ? undefined : `states ${s2.join()}`;
  });

  check("SSPC: a refused streamtype destroys the stream with a log; a frame the client cannot read drops the link, never throws", () => {
    const host = new ScriptHost((frame, reply) => { if (frame[0] === 0xaa) reply(encodeCreateResult(1)); });
    const states: string[] = [];
    new SspcContext(host, { proxy: { host: "proxy", port: 1 } }).create("nope", { onState: (st) => void states.push(stateName(st)) });
    host.advance(5);
    if (states.join() !== "CREATING,DESTROYING") return `states ${states.join()}`;
    if (!host.logs.some((l) => l.includes("refused to create"))) return "no log";
    const bad = new ScriptHost((frame, reply) => { if (frame[0] === 0xaa) reply(bytesOf(0xab, 0, 0)); });
    const s2: string[] = [];
    new SspcContext(bad, { proxy: { host: "proxy", port: 1 }, backoffMs: [1000] }).create("x", { onState: (st) => void s2.push(stateName(st)) });
    bad.advance(5);
    if (s2.join() !== "CREATING,UPSTREAM_LINK_RETRY") return `states ${s2.join()}`;
    return bad.logs.some((l) => l.includes("bad frame")) ? undefined : "no log";
  });
}
