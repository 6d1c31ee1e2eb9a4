// The ws binding with the whole runtime INSIDE the real XS engine (xsnap,
// sockets bridged to Node as in h1-xs.test.ts), against the same `ws`
// package server and raw peer as ws.test.ts, with the states the Node run
// gives.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { testPki, opensslAvailable, type TestPki } from "./support/pki.js";
import { requirePeer } from "./support/peers.js";
import { patternBytes } from "./support/run-stream.js";
import { runStreamInXS, type XSStreamRecord } from "./support/run-stream-xs.js";
import { startWsServers, startRawPeer, switching, closeCodeIn, type WsServers, type RawPeer } from "./support/ws-servers.js";
import { murmur3 } from "./support/murmur3.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { base64Encode } from "../src/util/base64.js";

let pki: TestPki;
let servers: WsServers;
let raw: RawPeer;
let policy: Uint8Array;

before(async () => {
  if (!opensslAvailable()) return;
  pki = testPki();
  servers = await startWsServers(pki);
  // answers the handshake, then sends text that is not UTF-8
  raw = await startRawPeer((_, accept) => ({ reply: Buffer.concat([Buffer.from(switching(accept)), Buffer.from([0x81, 0x02, 0xc3, 0x28])]) }));
  const { plain, tls } = servers.ports;
  const st = (url: string, extra: object = {}) => ({ endpoint: "127.0.0.1", port: plain, protocol: "ws", http_url: url, ws_subprotocol: "echo.v1", ws_binary: true, ...extra });
  const r = compilePolicy(JSON.stringify({
    certs: [{ test_ca: base64Encode(pki.ca.certDer) }],
    trust_stores: [{ name: "local_test", stack: ["test_ca"] }],
    s: [
      { echo1: st("/echo1") },
      { echo1_tls: st("/echo1", { port: tls, tls: true, tls_trust_store: "local_test" }) },
      { wrongproto: st("/wrongproto") },
      { close4000: st("/close/4000") },
      { big_over: st(`/big/${(1 << 20) + 1}`) },
      { bad_utf8: st("/", { port: raw.port, ws_subprotocol: "" }) },
    ],
  }));
  if (!r.binary) throw new Error(`test policy does not compile: ${JSON.stringify(r.diagnostics)}`);
  policy = r.binary;
});

after(() => {
  servers?.close();
  raw?.close();
});

const has = (states: string[], s: string) => states.includes(s);

function clean(r: XSStreamRecord): void {
  assert.deepEqual(r.pending, { connections: 0, timers: 0 });
}

describe("ws inside XS", { concurrency: true }, () => {
  for (const name of ["echo1", "echo1_tls"]) {
    it(`${name}: a 200 KB message goes out in fragments and comes back whole, then the server's 1000 close`, async (t) => {
      if (!requirePeer("openssl", opensslAvailable(), t)) return;
      const send = patternBytes(200_000, 5);
      const r = await runStreamInXS(policy, name, { send, until: (s) => has(s, "DISCONNECTED"), limitMs: 60000 });
      assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED"]);
      assert.equal(r.rxBytes, send.length);
      assert.equal(r.eoms, 1);
      assert.equal(r.hash, murmur3(send));
      assert.ok(r.largestChunk <= 4096, `largest rx ${r.largestChunk}`);
      assert.ok(r.logs.some((l) => l.includes('1000 "done"')), r.logs.join("\n"));
      clean(r);
    });
  }

  it("wrongproto: another subprotocol is refused, UNREACHABLE then ALL_RETRIES_FAILED", async (t) => {
    if (!requirePeer("openssl", opensslAvailable(), t)) return;
    const r = await runStreamInXS(policy, "wrongproto", { until: (s) => has(s, "ALL_RETRIES_FAILED") });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"]);
    clean(r);
  });

  it("close4000: the server's code is echoed and logged", async (t) => {
    if (!requirePeer("openssl", opensslAvailable(), t)) return;
    const closed = servers.nextClose("/close/4000");
    const r = await runStreamInXS(policy, "close4000", { until: (s) => has(s, "DISCONNECTED") });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED"]);
    assert.equal((await closed).closed?.code, 4000);
    clean(r);
  });

  it("big_over: a message over the limit closes with 1009", async (t) => {
    if (!requirePeer("openssl", opensslAvailable(), t)) return;
    const closed = servers.nextClose(`/big/${(1 << 20) + 1}`);
    const r = await runStreamInXS(policy, "big_over", { until: (s) => has(s, "DISCONNECTED") });
    assert.equal(r.rxBytes, 0);
    assert.equal((await closed).closed?.code, 1009);
    clean(r);
  });

  it("bad_utf8: text that is not UTF-8 closes with 1007", async (t) => {
    if (!requirePeer("openssl", opensslAvailable(), t)) return;
    const closed = raw.nextClose();
    const r = await runStreamInXS(policy, "bad_utf8", { until: (s) => has(s, "DISCONNECTED") });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED"]);
    assert.equal(closeCodeIn(await closed), 1007);
    clean(r);
  });
});
