// The ws binding against the `ws` package's server (an independent
// implementation) on loopback, plain and TLS: echo of text and binary
// messages from 0 bytes to 1 MiB, fragmentation both ways, ping/pong, close
// codes both ways, subprotocol negotiation, the message size limit (1009),
// metadata in the URL and headers, and retries by the policy.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { testPki, opensslAvailable, type TestPki } from "./support/pki.js";
import { requirePeer } from "./support/peers.js";
import { compile, patternBytes } from "./support/run-stream.js";
import { startWsServers, type WsServers } from "./support/ws-servers.js";
import { runWs, has, type WsRecord } from "./support/ws-run.js";
import { base64Encode } from "../src/util/base64.js";
import { Ret } from "../src/ss/states.js";
import { createWsBinding, WS_DEFAULTS } from "../src/protocols/ws.js";
import type { Policy } from "../src/policy/reader.js";
import { NodeHost } from "../hosts/node/host.js";
import type { ConnectOptions, StreamHandlers, ByteStream } from "../src/host.js";

/** A NodeHost that watches the binding keep the host contract's flow control: no write between a refused one and onWritable. */
class FlowCheckingHost extends NodeHost {
  refused = 0;
  writesWhileBlocked = 0;
  bytes = 0;
  override connect(options: ConnectOptions, handlers: StreamHandlers): ByteStream {
    let blocked = false;
    const inner = super.connect(options, {
      ...handlers,
      onConnected: (info) => handlers.onConnected(info),
      onData: (b) => handlers.onData(b),
      onClosed: () => handlers.onClosed(),
      onError: (e) => handlers.onError(e),
      onWritable: () => {
        blocked = false;
        handlers.onWritable();
      },
    });
    return {
      write: (b) => {
        if (blocked) this.writesWhileBlocked++;
        this.bytes += b.length;
        const ok = inner.write(b);
        if (!ok) {
          blocked = true;
          this.refused++;
        }
        return ok;
      },
      close: () => inner.close(),
    };
  }
}

let pki: TestPki | undefined;
let servers: WsServers;
let policy: Policy;

const MIB = 1 << 20;

before(async () => {
  if (opensslAvailable()) pki = testPki();
  servers = await startWsServers(pki);
  const { plain, tls } = servers.ports;
  const st = (url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port: plain, protocol: "ws", http_url: url, ws_subprotocol: "echo.v1", ws_binary: true, ...extra,
  });
  policy = compile({
    retry: [{ quick: { backoff: [50, 100], conceal: 2, jitterpc: 0 } }],
    certs: pki ? [{ test_ca: base64Encode(pki.ca.certDer) }] : [],
    trust_stores: pki ? [{ name: "local_test", stack: ["test_ca"] }] : [],
    s: [
      { echo: st("/echo") },
      { echo_a: st("/echo?a") },
      { echo_b: st("/echo?b") },
      { echo_c: st("/echo?c") },
      { echo_text: st("/echo", { ws_binary: false }) },
      { echo1: st("/echo1") },
      { frag: st("/frag", { ws_binary: false }) },
      { ping: st("/ping") },
      { close4000: st("/close/4000") },
      { big_ok: st(`/big/${MIB}`) },
      { big_over: st(`/big/${MIB + 1}`) },
      { wrongproto: st("/wrongproto") },
      { noproto: st("/noproto") },
      { meta: st("echo?room=${room}", { metadata: [{ room: "" }, { tag: "x-tag:" }] }) },
      { nailed_close: st("/close/1001", { nailed_up: true, retry: "quick" }) },
      { nailed_hello: st("/hello-close", { nailed_up: true, retry: "quick" }) },
      { refused: st("/echo", { port: 1, retry: "quick" }) },
      ...(pki ? [
        { wss: st("/echo", { port: tls, tls: true, tls_trust_store: "local_test" }) },
        { wss_untrusted: st("/echo", { port: tls, tls: true }) },
      ] : []),
    ],
  });
});

after(() => servers?.close());

const text = (n: number) => {
  // UTF-8 with 1-, 2-, 3- and 4-byte characters, cut to n bytes on a character boundary
  const unit = Buffer.from("ascii é € 😀 ");
  const b = Buffer.alloc(n);
  for (let at = 0; at < n; at += unit.length) unit.copy(b, at);
  let end = n;
  while (end > 0 && (b[end - 1]! & 0xc0) === 0x80) end--;
  if (end > 0 && b[end - 1]! >= 0xc0) end--;
  return Buffer.concat([b.subarray(0, end), Buffer.alloc(n - end, 0x20)]);
};

const SIZES = [0, 1, 125, 126, 127, 4095, 4096, 4097, 65535, 65536, 65537, 300_000, MIB];

function echoed(r: WsRecord, sent: readonly Uint8Array[]): void {
  assert.deepEqual(r.badMarks, []);
  assert.equal(r.messages.length, sent.length);
  for (let i = 0; i < sent.length; i++) assert.ok(r.messages[i]!.equals(sent[i]!), `message ${i} (${sent[i]!.length} bytes) echoed intact`);
}

describe("ws against the ws package's server", { concurrency: true }, () => {
  it("echoes binary messages from 0 bytes to 1 MiB, one after another", async () => {
    const sent = SIZES.map((n, i) => patternBytes(n, i + 1));
    const r = await runWs(policy, "echo", { messages: sent, until: (r) => r.messages.length === sent.length });
    echoed(r, sent);
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED"]);
    assert.ok(r.largestPiece <= WS_DEFAULTS.rxMax, `pieces of at most ${WS_DEFAULTS.rxMax} bytes (${r.largestPiece})`);
    const seen = servers.seen.find((s) => s.url === "/echo" && s.headers["sec-websocket-protocol"] === "echo.v1");
    assert.ok(seen, "the server saw the subprotocol offered");
  });

  it("echoes text messages (multi-byte UTF-8 split across frames) from 0 bytes to 1 MiB", async () => {
    const sent = SIZES.map(text);
    // 1000-byte pieces: characters are cut between frames, which is legal
    const r = await runWs(policy, "echo_text", { messages: sent, txPiece: 1000, until: (r) => r.messages.length === sent.length });
    echoed(r, sent);
  });

  it("pipelines 200 messages asked for from inside onTx, echoed in order", async () => {
    const sent = Array.from({ length: 200 }, (_, i) => patternBytes(i * 37, i + 7));
    const r = await runWs(policy, "echo", { messages: sent, pipeline: true, until: (r) => r.messages.length === sent.length });
    echoed(r, sent);
  });

  it("flow control: 32 MiB pipelined, nothing written between a refused write and onWritable", async () => {
    const sent = Array.from({ length: 512 }, (_, i) => patternBytes(65536, i));
    let host: FlowCheckingHost | undefined;
    const r = await runWs(policy, "echo", {
      messages: sent, pipeline: true, limitMs: 120000,
      host: (log) => (host = new FlowCheckingHost({ log })),
      until: (r) => r.messages.length === sent.length,
    });
    echoed(r, sent);
    assert.ok(host!.refused > 0, "the host refused some writes (the test exercised backpressure)");
    assert.equal(host!.writesWhileBlocked, 0);
  });

  it("a message sent in many small onTx pieces goes as one fragmented message", async () => {
    const sent = [patternBytes(10_000, 99)];
    const r = await runWs(policy, "echo", { messages: sent, txPiece: 7, until: (r) => r.messages.length === 1 });
    echoed(r, sent);
  });

  it("a fragmented server message arrives as one message: SOM on its first piece, EOM on its last", async () => {
    const r = await runWs(policy, "frag", { until: (r) => r.messages.length === 2 });
    assert.deepEqual(r.badMarks, []);
    assert.deepEqual(r.messages.map(String), ["abcdefghi", "end"]);
    assert.ok(r.rxPieces >= 4, `the fragments came as pieces (${r.rxPieces})`);
  });

  it("answers the server's ping with a pong carrying its payload", async () => {
    const r = await runWs(policy, "ping", { until: (r) => r.messages.length === 1 });
    assert.equal(String(r.messages[0]), "pong hb");
  });

  it("a server close with 4000: echoed, DISCONNECTED, the code and reason in the log", async () => {
    const closed = servers.nextClose("/close/4000");
    const r = await runWs(policy, "close4000", { until: (r) => has(r, "DISCONNECTED") });
    assert.deepEqual(r.states, ["CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED"]);
    assert.ok(r.logs.some((l) => l.includes('4000 "bye"')), r.logs.join("\n"));
    assert.equal((await closed).closed?.code, 4000);
  });

  it("DISCONNECT_ME closes with 1000; the stream stays, idle", async () => {
    const closed = servers.nextClose("/echo?a");
    const r = await runWs(policy, "echo_a", {
      messages: [Buffer.from("hi")],
      onMessage: () => Ret.DISCONNECT_ME,
      until: (r) => has(r, "DISCONNECTED"),
    });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED"]);
    assert.deepEqual((await closed).closed, { code: 1000, reason: "" });
  });

  it("destroy() closes with 1000", async () => {
    const closed = servers.nextClose("/echo?b");
    await runWs(policy, "echo_b", { messages: [Buffer.from("hi")], until: (r) => r.messages.length === 1 });
    assert.equal((await closed).closed?.code, 1000);
  });

  it("a message of exactly the 1 MiB limit is taken", async () => {
    const r = await runWs(policy, "big_ok", { until: (r) => r.messages.length === 1 });
    assert.equal(r.messages[0]!.length, MIB);
  });

  it("a server message over the limit closes with 1009 before its data is read", async () => {
    const closed = servers.nextClose(`/big/${MIB + 1}`);
    const r = await runWs(policy, "big_over", { until: (r) => has(r, "DISCONNECTED") });
    assert.deepEqual(r.messages, []);
    assert.deepEqual(r.states, ["CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED"]);
    assert.ok(r.logs.some((l) => l.includes("over the 1048576-byte limit") && l.includes("1009")), r.logs.join("\n"));
    assert.equal((await closed).closed?.code, 1009);
  });

  it("the limit is the binding's option: a 1000-byte limit refuses a 1001-byte message", async () => {
    const closed = servers.nextClose("/echo?c");
    const r = await runWs(policy, "echo_c", {
      binding: createWsBinding({ maxMessage: 1000 }),
      messages: [Buffer.alloc(1000), Buffer.alloc(1001)],
      until: (r) => has(r, "DISCONNECTED"),
    });
    assert.equal(r.messages.length, 1);
    assert.equal((await closed).closed?.code, 1009);
  });

  it("a server that picks another subprotocol is refused: UNREACHABLE, no retry without a policy", async () => {
    const r = await runWs(policy, "wrongproto", { messages: [Buffer.from("x")], until: (r) => has(r, "ALL_RETRIES_FAILED") });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"]);
    assert.ok(r.logs.some((l) => l.includes('chose subprotocol "other"')), r.logs.join("\n"));
  });

  it("a server that picks no subprotocol when one was offered is refused", async () => {
    const r = await runWs(policy, "noproto", { until: (r) => has(r, "ALL_RETRIES_FAILED") });
    assert.deepEqual(r.states, ["CREATING", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"]);
    assert.ok(r.logs.some((l) => l.includes("chose no subprotocol")), r.logs.join("\n"));
  });

  it("http_url takes metadata (percent-encoded), and header metadata goes with the upgrade request", async () => {
    const r = await runWs(policy, "meta", {
      metadata: { room: "a b/c", tag: "t1" },
      messages: [Buffer.from("m")],
      until: (r) => r.messages.length === 1,
    });
    assert.equal(String(r.messages[0]), "m");
    const seen = servers.seen.find((s) => s.url.startsWith("/echo?room="));
    assert.equal(seen?.url, "/echo?room=a%20b%2Fc");
    assert.equal(seen?.headers["x-tag"], "t1");
  });

  it("nailed_up against a server that keeps closing: reconnects by the retry policy, then ALL_RETRIES_FAILED", async () => {
    const r = await runWs(policy, "nailed_close", { until: (r) => has(r, "ALL_RETRIES_FAILED") });
    assert.deepEqual(r.states, [
      "CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED",
      "CONNECTING", "CONNECTED", "DISCONNECTED",
      "CONNECTING", "CONNECTED", "DISCONNECTED", "ALL_RETRIES_FAILED",
    ]);
  });

  it("nailed_up against a server that sends a message and closes: each message starts the retry count again, so it keeps reconnecting", async () => {
    const r = await runWs(policy, "nailed_hello", { until: (r) => r.messages.length === 6 || has(r, "ALL_RETRIES_FAILED") });
    assert.ok(!has(r, "ALL_RETRIES_FAILED"), r.states.join(" "));
    assert.equal(r.states.filter((s) => s === "CONNECTED").length, 6);
    assert.deepEqual(r.messages.map(String), ["hi", "hi", "hi", "hi", "hi", "hi"]);
  });

  it("nothing listening: UNREACHABLE on each attempt, then ALL_RETRIES_FAILED", async () => {
    const r = await runWs(policy, "refused", { messages: [Buffer.from("x")], until: (r) => has(r, "ALL_RETRIES_FAILED") });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "UNREACHABLE", "CONNECTING", "UNREACHABLE", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"]);
  });

  it("wss: echoes 0 B, 64 KiB and 1 MiB over TLS with the test CA", async (t) => {
    if (!requirePeer("openssl", opensslAvailable(), t)) return;
    const sent = [0, 65536, MIB].map((n) => patternBytes(n, n + 3));
    const r = await runWs(policy, "wss", { messages: sent, until: (r) => r.messages.length === sent.length });
    echoed(r, sent);
  });

  it("wss: a server the trust store does not vouch for is UNREACHABLE", async (t) => {
    if (!requirePeer("openssl", opensslAvailable(), t)) return;
    const r = await runWs(policy, "wss_untrusted", { messages: [Buffer.from("x")], until: (r) => has(r, "ALL_RETRIES_FAILED") });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"]);
  });

  it("the binding's options are checked", () => {
    assert.throws(() => createWsBinding({ maxMessage: 0 }), /maxMessage must be a positive integer/);
    assert.throws(() => createWsBinding({ txMax: 1.5 }), /txMax must be a positive integer/);
  });
});
