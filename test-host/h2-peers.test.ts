// The h2 binding against real http/2 servers on loopback: Node's http2
// secure server (many streams on one connection, a server limit on
// concurrent streams, small flow-control windows, GOAWAY mid-run, a header
// block larger than a frame, HPACK eviction both ways), and a raw TLS peer
// (support/h2-raw-peer.ts) for exact frame layouts and for every kind of
// frame-level violation, each of which must close the connection (or reset
// the stream) with a reason and a state change, never throw.

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { testPki, opensslAvailable, type TestPki } from "./support/pki.js";
import { requirePeer } from "./support/peers.js";
import { compile, runStream, patternBytes } from "./support/run-stream.js";
import { startRawPeer, type RawPeerConnection } from "./support/h2-raw-peer.js";
import { NodeHost } from "../hosts/node/host.js";
import { SecureStreams } from "../src/ss/context.js";
import { State, Ret, stateName } from "../src/ss/states.js";
import { createH2Binding, type H2BindingOptions } from "../src/protocols/h2.js";
import type { Policy } from "../src/policy/reader.js";
import { base64Encode } from "../src/util/base64.js";
import {
  encodeFrame, encodeSettings, FrameType, Flag, Setting, ErrorCode, HpackEncoder, encodeGoaway, encodeWindowUpdate,
} from "../src/wire/h2/index.js";

const body = patternBytes(1 << 20, 3);
let pki: TestPki;

before(() => {
  if (opensslAvailable()) pki = testPki();
});

function guard(t: import("node:test").TestContext): boolean {
  return requirePeer("openssl", opensslAvailable(), t);
}

interface TestServer {
  port: number;
  sessions: number;
  /** Most streams open at once, as the server saw them. */
  maxOpen: number;
  requests: string[];
  server: http2.Http2SecureServer;
  close(): void;
}

/**
 * GET /bytes/N: the first N bytes of `body`. POST /echo: the body back.
 * GET /hdr?i: three new 200-byte headers each time (HPACK eviction), the
 * request's x-tag echoed as x-echo. GET /big: a 30000-character header
 * (larger than a frame: CONTINUATION). GET /slow/N: answers after N ms.
 */
async function startServer(settings: http2.Settings = {}, hook?: (s: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders, srv: TestServer) => boolean): Promise<TestServer> {
  const server = http2.createSecureServer({ cert: pki.server.chainPem, key: pki.server.keyPem, settings });
  const srv: TestServer = { port: 0, sessions: 0, maxOpen: 0, requests: [], server, close: () => {} };
  let open = 0;
  const live = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    srv.sessions++;
    live.add(s);
    s.on("close", () => live.delete(s));
  });
  server.on("stream", (stream, headers) => {
    open++;
    srv.maxOpen = Math.max(srv.maxOpen, open);
    stream.on("close", () => open--);
    stream.on("error", () => {});
    const path = String(headers[":path"]);
    srv.requests.push(`${headers[":method"]} ${path}`);
    if (hook?.(stream, headers, srv)) return;
    let m: RegExpExecArray | null;
    if ((m = /^\/bytes\/(\d+)$/.exec(path))) {
      stream.respond({ ":status": 200 });
      stream.end(body.subarray(0, Number(m[1])));
    } else if (path === "/echo") {
      const parts: Buffer[] = [];
      stream.on("data", (d: Buffer) => parts.push(d));
      stream.on("end", () => {
        stream.respond({ ":status": 200 });
        stream.end(Buffer.concat(parts));
      });
    } else if ((m = /^\/hdr\?(\d+)$/.exec(path))) {
      const i = Number(m[1]);
      const extra: Record<string, string> = {};
      for (let k = 0; k < 3; k++) extra[`x-h${k}`] = `${i}-${k}-`.padEnd(200, String.fromCharCode(97 + ((i + k) % 26)));
      stream.respond({ ":status": 200, "x-echo": String(headers["x-tag"] ?? ""), ...extra });
      stream.end(String(i));
    } else if (path === "/big") {
      let v = "";
      for (let i = 0; i < 30000; i++) v += "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[(i * 7919) % 62];
      stream.respond({ ":status": 200, "x-big": v });
      stream.end("big");
    } else if ((m = /^\/slow\/(\d+)$/.exec(path))) {
      setTimeout(() => {
        if (stream.closed) return;
        stream.respond({ ":status": 200 });
        stream.end("slow");
      }, Number(m[1]));
    } else {
      stream.respond({ ":status": 404 });
      stream.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  srv.port = (server.address() as AddressInfo).port;
  srv.close = () => {
    for (const s of live) s.destroy();
    server.close();
  };
  return srv;
}

function policyFor(port: number, streams: Record<string, object> = {}): Policy {
  const st = (url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port, protocol: "h2", http_method: "GET", http_url: url, tls: true,
    tls_trust_store: "local_test", retry: "default", ...extra,
  });
  return compile({
    retry: [{ default: { backoff: [50, 100, 200], conceal: 3, jitterpc: 10 } }],
    certs: [{ test_ca: base64Encode(pki.ca.certDer) }],
    trust_stores: [{ name: "local_test", stack: ["test_ca"] }],
    s: [
      { bytes: st("/bytes/${n}", { metadata: [{ n: "" }] }) },
      { echo: st("/echo", { http_method: "POST" }) },
      { hdr: st("/hdr?${i}", { metadata: [{ i: "" }, { tag: "x-tag:" }, { echo: "x-echo:" }] }) },
      { big: st("/big") },
      { slow: st("/slow/${ms}", { metadata: [{ ms: "" }] }) },
      { nailed: st("/bytes/10", { nailed_up: true }) },
      ...Object.entries(streams).map(([k, v]) => ({ [k]: st("/", v) })),
    ],
  });
}

interface Outcome {
  states: string[];
  hash: string;
  bytes: number;
  metadata: Record<string, string | undefined>;
}

/**
 * Runs `n` streams of `streamtype` at once in one context, each with the
 * metadata meta(i), until each has a result (QOS_*) or gave up.
 */
async function runMany(policy: Policy, streamtype: string, n: number, meta: (i: number) => Record<string, string>,
  o: { binding?: H2BindingOptions; send?: (i: number) => Uint8Array; logs?: string[]; keep?: string[] } = {}): Promise<Outcome[]> {
  const logs = o.logs ?? [];
  const host = new NodeHost({ log: (m) => logs.push(m) });
  const ss = new SecureStreams(host, policy, { bindings: [createH2Binding(o.binding)], strict: true });
  const outcomes: Outcome[] = [];
  await new Promise<void>((resolve, reject) => {
    let left = n;
    const limit = setTimeout(() => reject(new Error(`no result in time: ${outcomes.map((x) => x.states.join(" ")).join(" | ")}\n${logs.join("\n")}`)), 60000);
    for (let i = 0; i < n; i++) {
      const hash = createHash("sha256");
      const out: Outcome = { states: [], hash: "", bytes: 0, metadata: {} };
      outcomes.push(out);
      const send = o.send?.(i);
      let sent = 0;
      let finished = false;
      const stream = ss.create(streamtype, {
        onState: (state, _ack, s) => {
          out.states.push(stateName(state));
          if (state === State.CREATING) {
            for (const [k, v] of Object.entries(meta(i))) s.setMetadata(k, v);
            return send ? s.requestTxLength(send.length) : s.requestTx();
          }
          if (!finished && (state === State.QOS_ACK_REMOTE || state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED)) {
            finished = true;
            out.hash = hash.digest("hex");
            for (const k of o.keep ?? []) out.metadata[k] = s.getMetadata(k);
            if (--left === 0) {
              clearTimeout(limit);
              setImmediate(resolve);
            }
          }
          return Ret.OK;
        },
        onRx: (payload) => {
          out.bytes += payload.length;
          hash.update(payload);
          return Ret.OK;
        },
        onTx: (max, flags) => {
          if (!send) return Ret.TX_DONT_SEND;
          if (flags & 1) sent = 0; // SOM: from the first byte again
          const piece = send.subarray(sent, sent + max);
          sent += piece.length;
          return { payload: piece, flags: (flags & 1) | (sent >= send.length ? 2 : 0) };
        },
      });
      void stream;
    }
  });

  return outcomes;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("h2 against Node's http2 secure server", () => {
  test("100 streams to one endpoint multiplex on one connection, each answered", async (t) => {
    if (!guard(t)) return;
    const srv = await startServer();
    try {
      const out = await runMany(policyFor(srv.port), "bytes", 100, (i) => ({ n: String(1000 + i * 97) }));
      for (const [i, o] of out.entries()) {
        assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"], `stream ${i}`);
        assert.equal(o.hash, sha(body.subarray(0, 1000 + i * 97)), `stream ${i}`);
      }
      assert.equal(srv.sessions, 1, "one connection");
      assert.ok(srv.maxOpen > 1, `streams ran concurrently (at most ${srv.maxOpen} at once)`);
    } finally {
      srv.close();
    }
  });

  test("the server's SETTINGS_MAX_CONCURRENT_STREAMS is respected: the rest wait, none is refused", async (t) => {
    if (!guard(t)) return;
    const srv = await startServer({ maxConcurrentStreams: 5 });
    try {
      const logs: string[] = [];
      const out = await runMany(policyFor(srv.port), "slow", 30, () => ({ ms: "20" }), { logs });
      for (const o of out) assert.equal(o.states.at(-1), "QOS_ACK_REMOTE");
      assert.ok(srv.maxOpen <= 5, `${srv.maxOpen} streams open at once`);
      assert.equal(srv.sessions, 1);
      assert.ok(!logs.some((l) => /REFUSED_STREAM/.test(l)), logs.join("\n"));
    } finally {
      srv.close();
    }
  });

  test("10 MB download and 1 MB uploads through windows far smaller than the bodies", async (t) => {
    if (!guard(t)) return;
    const srv = await startServer({ initialWindowSize: 8192 });
    try {
      const big = patternBytes(10 * 1024 * 1024, 11);
      srv.server.removeAllListeners("stream");
      srv.server.on("stream", (stream, headers) => {
        stream.on("error", () => {});
        if (headers[":path"] === "/echo") {
          const parts: Buffer[] = [];
          stream.on("data", (d: Buffer) => parts.push(d));
          stream.on("end", () => {
            stream.respond({ ":status": 200 });
            stream.end(Buffer.concat(parts));
          });
          return;
        }
        stream.respond({ ":status": 200 });
        stream.end(big);
      });
      const window = { streamWindow: 16384, connectionWindow: 65535 };
      const [down] = await runMany(policyFor(srv.port), "bytes", 1, () => ({ n: "1" }), { binding: window });
      assert.equal(down!.states.at(-1), "QOS_ACK_REMOTE");
      assert.equal(down!.bytes, big.length);
      assert.equal(down!.hash, sha(big));
      const up = await runMany(policyFor(srv.port), "echo", 3, () => ({}), { binding: window, send: () => body });
      for (const o of up) {
        assert.equal(o.states.at(-1), "QOS_ACK_REMOTE");
        assert.equal(o.hash, sha(body));
      }
    } finally {
      srv.close();
    }
  });

  test("GOAWAY mid-run: streams above its last-stream-id go again on a new connection, none is lost", async (t) => {
    if (!guard(t)) return;
    let sentGoaway = false;
    const srv = await startServer({}, (stream, headers) => {
      // the 10th stream: the server says it processes streams up to this one only, and ignores the rest
      const session = stream.session!;
      const id = stream.id;
      const last = (session as unknown as { lastProcessed?: number }).lastProcessed;
      if (last !== undefined && id! > last) return true;
      if (!sentGoaway && srv.requests.length === 10) {
        sentGoaway = true;
        (session as unknown as { lastProcessed?: number }).lastProcessed = id;
        session.goaway(http2.constants.NGHTTP2_NO_ERROR, id);
      }
      const n = /^\/bytes\/(\d+)$/.exec(String(headers[":path"]));
      setTimeout(() => {
        if (stream.closed) return;
        stream.respond({ ":status": 200 });
        stream.end(body.subarray(0, Number(n?.[1] ?? 0)));
      }, 30);
      return true;
    });
    try {
      const logs: string[] = [];
      const out = await runMany(policyFor(srv.port), "bytes", 40, (i) => ({ n: String(500 + i) }), { logs });
      assert.ok(sentGoaway);
      for (const [i, o] of out.entries()) {
        assert.equal(o.states.filter((s) => s === "QOS_ACK_REMOTE").length, 1, `stream ${i}: ${o.states.join(" ")}`);
        assert.equal(o.hash, sha(body.subarray(0, 500 + i)), `stream ${i}`);
      }
      assert.ok(srv.sessions >= 2, "a second connection took the rest");
      assert.ok(logs.some((l) => /GOAWAY/.test(l)), logs.join("\n"));
    } finally {
      srv.close();
    }
  });

  test("a response header block larger than a frame arrives over CONTINUATION frames", async (t) => {
    if (!guard(t)) return;
    const srv = await startServer();
    try {
      const [o] = await runMany(policyFor(srv.port), "big", 1, () => ({}));
      assert.equal(o!.states.at(-1), "QOS_ACK_REMOTE");
      assert.equal(o!.bytes, 3);
    } finally {
      srv.close();
    }
  });

  test("HPACK: 150 transactions on one connection, tables evicting both ways, every header right", async (t) => {
    if (!guard(t)) return;
    const srv = await startServer();
    try {
      const out = await runMany(policyFor(srv.port), "hdr", 150, (i) => ({ i: String(i), tag: `t${i}-`.padEnd(300, "q") }), { keep: ["echo"] });
      for (const [i, o] of out.entries()) {
        assert.equal(o.states.at(-1), "QOS_ACK_REMOTE");
        assert.equal(o.metadata.echo, `t${i}-`.padEnd(300, "q"), `stream ${i}`);
      }
      assert.equal(srv.sessions, 1);
    } finally {
      srv.close();
    }
  });

  test("streams whose connect options differ (here timeout_ms) do not share a connection", async (t) => {
    if (!guard(t)) return;
    const srv = await startServer();
    try {
      await runMany(policyFor(srv.port), "bytes", 3, () => ({ n: "5" }));
      await runMany(policyFor(srv.port, { other: { timeout_ms: 4321 } }), "other", 1, () => ({}));
      assert.equal(srv.sessions, 2, "each run: one connection");
    } finally {
      srv.close();
    }
  });

  test("allow_redirects: same-origin redirects are followed on the same connection, as over h1; others are not", async (t) => {
    if (!guard(t)) return;
    // /r/N: a redirect (with a body) to /r/N-1, down to /bytes/1000; /303: a 303 to /bytes/7 (a POST goes on as GET);
    // /away: to another origin; /307: a 307 to /echo (a POST's body cannot go again)
    const srv = await startServer({}, (stream, headers, s) => {
      const path = String(headers[":path"]);
      const m = /^\/r\/(\d+)$/.exec(path);
      const to = m ? (m[1] === "0" ? "/bytes/1000" : `https://127.0.0.1:${s.port}/r/${Number(m[1]) - 1}`)
        : path === "/303" ? "/bytes/7" : path === "/away" ? "https://127.0.0.2:1/x" : path === "/307" ? "/echo" : undefined;
      if (to === undefined) return false;
      stream.on("data", () => {});
      stream.respond({ ":status": path === "/303" ? 303 : path === "/307" ? 307 : 302, location: to });
      stream.end("moved");
      return true;
    });
    try {
      const policy = policyFor(srv.port, {
        hops: { http_url: "/r/${n}", metadata: [{ n: "" }], allow_redirects: true },
        post303: { http_url: "/303", http_method: "POST", allow_redirects: true },
        post307: { http_url: "/307", http_method: "POST", allow_redirects: true },
        away: { http_url: "/away", allow_redirects: true },
        noallow: { http_url: "/r/${n}", metadata: [{ n: "" }] },
      });
      const logs: string[] = [];
      const [three] = await runMany(policy, "hops", 1, () => ({ n: "3" }), { logs });
      assert.deepEqual(three!.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"]);
      assert.equal(three!.hash, sha(body.subarray(0, 1000)), "the body of the last hop only");
      assert.deepEqual(srv.requests, ["GET /r/3", "GET /r/2", "GET /r/1", "GET /r/0", "GET /bytes/1000"]);
      assert.equal(srv.sessions, 1, "every hop on one connection");

      srv.requests.length = 0;
      const [post] = await runMany(policy, "post303", 1, () => ({}), { send: () => new Uint8Array(10) });
      assert.equal(post!.states.at(-1), "QOS_ACK_REMOTE");
      assert.equal(post!.bytes, 7);
      assert.deepEqual(srv.requests, ["POST /303", "GET /bytes/7"]);

      const [tooMany] = await runMany(policy, "hops", 1, () => ({ n: "5" }), { logs });
      assert.equal(tooMany!.states.at(-1), "QOS_NACK_REMOTE");
      assert.equal(tooMany!.bytes, 0, "a redirect's body is not the stream's");
      const [away] = await runMany(policy, "away", 1, () => ({}), { logs });
      assert.equal(away!.states.at(-1), "QOS_NACK_REMOTE");
      const [again] = await runMany(policy, "post307", 1, () => ({}), { logs, send: () => new Uint8Array(10) });
      assert.equal(again!.states.at(-1), "QOS_NACK_REMOTE");
      for (const why of ["more than 5 redirects", "another origin", "the request body cannot be sent again"]) {
        assert.ok(logs.some((l) => l.includes(`not followed: ${why}`)), `logged: ${why}\n${logs.join("\n")}`);
      }
      const [off] = await runMany(policy, "noallow", 1, () => ({ n: "1" }));
      assert.equal(off!.states.at(-1), "QOS_NACK_REMOTE", "without allow_redirects a 3xx is the result");
      assert.equal(off!.bytes, 5, "and its body is the stream's");
    } finally {
      srv.close();
    }
  });
});

describe("h2 against a raw TLS peer: exact frame layouts and violations", () => {
  const hpack = () => new HpackEncoder({ huffman: false });
  const settings = () => encodeSettings([[Setting.MAX_CONCURRENT_STREAMS, 100]]);
  /** The response a script sends: 200, "ok". */
  const ok = (c: RawPeerConnection, id: number, enc: HpackEncoder) => {
    c.socket.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, enc.encode([[":status", "200"]])));
    c.socket.write(encodeFrame(FrameType.DATA, Flag.END_STREAM, id, new TextEncoder().encode("ok")));
  };

  async function against(onRequest: (c: RawPeerConnection, id: number, enc: HpackEncoder) => void, o: { streams?: Record<string, object>; stream?: string; onConnect?: (c: RawPeerConnection) => void; binding?: H2BindingOptions } = {}) {
    const enc = new Map<RawPeerConnection, HpackEncoder>();
    const peer = await startRawPeer(pki.server, {
      onConnect: (c) => {
        enc.set(c, hpack());
        (o.onConnect ?? ((c) => c.socket.write(settings())))(c);
      },
      onRequest: (c, id) => onRequest(c, id, enc.get(c)!),
    });
    try {
      const r = await runStream(policyFor(peer.port, o.streams), o.stream ?? "bytes", {
        bindings: [createH2Binding(o.binding)], metadata: { n: "1" },
        until: (s) => s.includes("QOS_ACK_REMOTE") || s.includes("DISCONNECTED") || s.includes("ALL_RETRIES_FAILED"),
      });
      await new Promise((resolve) => setTimeout(resolve, 100)); // for our GOAWAY to reach the peer
      return { r, goaways: peer.goaways };
    } finally {
      peer.close();
    }
  }

  test("a header block split over HEADERS and two CONTINUATION frames (raw peer: it chooses the split)", async (t) => {
    if (!guard(t)) return;
    const { r } = await against((c, id, enc) => {
      const block = enc.encode([[":status", "200"], ["x-a", "a".repeat(50)], ["x-b", "b".repeat(50)]]);
      c.socket.write(encodeFrame(FrameType.HEADERS, 0, id, block.subarray(0, 10)));
      c.socket.write(encodeFrame(FrameType.CONTINUATION, 0, id, block.subarray(10, 40)));
      c.socket.write(encodeFrame(FrameType.CONTINUATION, Flag.END_HEADERS, id, block.subarray(40)));
      c.socket.write(encodeFrame(FrameType.DATA, Flag.END_STREAM, id, new TextEncoder().encode("ok")));
    });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"], r.logs.join("\n"));
    assert.equal(r.rxBytes, 2);
  });

  test("our GOAWAY reaches the server when the last stream leaves, even in the middle of a download", async (t) => {
    if (!guard(t)) return;
    for (const when of ["after its response", "mid-download"] as const) {
      const peer = await startRawPeer(pki.server, {
        onConnect: (c) => c.socket.write(settings()),
        onRequest: (c, id) => {
          const enc = hpack();
          c.socket.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, enc.encode([[":status", "200"]])));
          // 48 frames of 4 KiB: within our windows, more than one read
          for (let i = 0; i < 48; i++) c.socket.write(encodeFrame(FrameType.DATA, i === 47 ? Flag.END_STREAM : 0, id, new Uint8Array(4096)));
        },
      });
      try {
        const host = new NodeHost({ log: () => {} });
        const ss = new SecureStreams(host, policyFor(peer.port), { bindings: [createH2Binding()], strict: true });
        await new Promise<void>((resolve) => {
          const stream = ss.create("bytes", {
            onState: (state, _ack, st) => {
              if (state === State.CREATING) return st.setMetadata("n", "1"), st.requestTx();
              if (state === State.QOS_ACK_REMOTE && when === "after its response") {
                stream.destroy();
                resolve();
              }
              return Ret.OK;
            },
            onRx: () => {
              if (when === "mid-download") {
                stream.destroy(); // from the receive path: a write may be under way
                resolve();
              }
              return Ret.OK;
            },
          });
        });
        for (let i = 0; i < 100 && !peer.goaways.length; i++) await new Promise((resolve) => setTimeout(resolve, 20));
        assert.deepEqual(peer.goaways, [ErrorCode.NO_ERROR], when);
      } finally {
        peer.close();
      }
    }
  });

  test("h2q_oflow_txcr: a window taken over 2^31-1 is a FLOW_CONTROL_ERROR, unless the policy has the quirk", async (t) => {
    if (!guard(t)) return;
    const overflow = (c: RawPeerConnection, id: number, enc: HpackEncoder) => {
      c.socket.write(encodeWindowUpdate(0, 0x7fffffff));
      ok(c, id, enc);
    };
    const strict = await against(overflow);
    assert.ok(strict.r.states.includes("DISCONNECTED"), strict.r.states.join(" "));
    assert.ok(!strict.r.states.includes("QOS_ACK_REMOTE"));
    assert.deepEqual(strict.goaways.slice(0, 1), [ErrorCode.FLOW_CONTROL_ERROR]);
    assert.ok(strict.r.logs.some((l) => /over 2\^31-1/.test(l)), strict.r.logs.join("\n"));
    const quirk = await against(overflow, { streams: { quirky: { http_url: "/bytes/${n}", metadata: [{ n: "" }], h2q_oflow_txcr: true } }, stream: "quirky" });
    assert.equal(quirk.r.states.at(-1), "QOS_ACK_REMOTE", quirk.r.logs.join("\n"));
  });

  // DATA beyond the window runs with a 4096-byte stream window: a 16384-byte frame oversteps it (a larger window is topped up as the app takes the data)
  const violations: [string, (c: RawPeerConnection, id: number, enc: HpackEncoder) => void, number | "stream", RegExp][] = [
    ["a frame over SETTINGS_MAX_FRAME_SIZE", (c, id) => c.socket.write(encodeFrame(FrameType.DATA, 0, id, new Uint8Array(16385))), ErrorCode.FRAME_SIZE_ERROR, /frame of 16385 bytes/],
    ["an undecodable header block", (c, id) => c.socket.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, Uint8Array.of(0x80))), ErrorCode.COMPRESSION_ERROR, /index 0/],
    ["DATA beyond the stream's window", (c, id, enc) => {
      c.socket.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, id, enc.encode([[":status", "200"]])));
      c.socket.write(encodeFrame(FrameType.DATA, 0, id, new Uint8Array(16384)));
    }, "stream", /beyond the stream's window/],
    ["PUSH_PROMISE though push is off", (c, id) => c.socket.write(encodeFrame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, id, Uint8Array.of(0, 0, 0, 2, 0x82))), ErrorCode.PROTOCOL_ERROR, /PUSH_PROMISE/],
    ["a frame inside a header block", (c, id, enc) => {
      c.socket.write(encodeFrame(FrameType.HEADERS, 0, id, enc.encode([[":status", "200"]])));
      c.socket.write(encodeFrame(FrameType.PING, 0, 0, new Uint8Array(8)));
    }, ErrorCode.PROTOCOL_ERROR, /in the middle of a header block/],
    ["a stream the server may not open", (c, _id, enc) => c.socket.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 2, enc.encode([[":status", "200"]]))), ErrorCode.PROTOCOL_ERROR, /stream 2/],
    ["a response without :status", (c, id, enc) => c.socket.write(encodeFrame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, enc.encode([["x-a", "1"]]))), "stream", /without :status/],
    ["a bad SETTINGS value", (c) => c.socket.write(encodeSettings([[Setting.MAX_FRAME_SIZE, 100]])), ErrorCode.PROTOCOL_ERROR, /SETTINGS_MAX_FRAME_SIZE/],
    ["GOAWAY of 4 bytes", (c) => c.socket.write(encodeFrame(FrameType.GOAWAY, 0, 0, new Uint8Array(4))), ErrorCode.FRAME_SIZE_ERROR, /GOAWAY of 4/],
    ["DATA before the response head", (c, id) => c.socket.write(encodeFrame(FrameType.DATA, Flag.END_STREAM, id, new Uint8Array(1))), "stream", /DATA before the response head/],
  ];
  for (const [name, script, code, reason] of violations) {
    test(`violation: ${name} ${code === "stream" ? "resets the stream" : "closes the connection"}, with a reason and DISCONNECTED`, async (t) => {
      if (!guard(t)) return;
      const { r, goaways } = await against(script, { binding: { streamWindow: 4096 } });
      assert.deepEqual(r.states.slice(0, 5), ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED"], r.logs.join("\n"));
      assert.ok(r.logs.some((l) => reason.test(l)), r.logs.join("\n"));
      if (code !== "stream") assert.equal(goaways[0], code, `GOAWAY ${goaways}`);
    });
  }

  test("a server whose first frame is not SETTINGS", async (t) => {
    if (!guard(t)) return;
    const { r, goaways } = await against(() => {}, { onConnect: (c) => c.socket.write(encodeGoaway(0, 0)) });
    assert.ok(r.states.includes("DISCONNECTED"), r.states.join(" "));
    assert.equal(goaways[0], ErrorCode.PROTOCOL_ERROR);
  });
});
