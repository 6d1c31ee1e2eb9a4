// Connection reuse across streams (src/protocols/h1.ts, createH1Binding):
// sequential streams, a new one per transaction, against real Node http and
// https servers that count the connections they accept. What is checked is
// what a server sees (connections, requests) and what each stream reports
// (CONNECTING and CONNECTED every time); never a time. One test runs the
// garbage collector: what a context keeps of a streamtype lives as long as
// a stream or a pooled connection uses it.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import v8 from "node:v8";
import vm from "node:vm";
import { NodeHost } from "../hosts/node/host.js";
import { SecureStreams } from "../src/ss/context.js";
import { State, Ret, RxFlag, stateName } from "../src/ss/states.js";
import { createH1Binding, sameOptions, type H1Binding, type H1BindingOptions } from "../src/protocols/h1.js";
import type { Policy } from "../src/policy/reader.js";
import { compile } from "./support/run-stream.js";
import { h1Handler } from "./support/h1-servers.js";
import { requirePeer } from "./support/peers.js";
import { peer, rawServer, closingServer, plainPolicy, tlsPolicy, ONE_TXN } from "./support/reuse-peers.js";
import { opensslAvailable, testPki, type TestPki } from "./support/pki.js";

const limit = { timeout: 30_000 };

interface Ctx {
  readonly ss: SecureStreams;
  readonly h1: H1Binding;
  readonly logs: string[];
  /** Runs one stream of `streamtype` to its result and destroys it; its states. */
  txn(streamtype: string, o?: { destroyOnRx?: boolean }): Promise<string[]>;
}

function context(t: TestContext, policy: Policy, options?: H1BindingOptions): Ctx {
  const logs: string[] = [];
  const host = new NodeHost({ log: (m) => logs.push(m) });
  const h1 = createH1Binding(options);
  const ss = new SecureStreams(host, policy, { bindings: [h1], strict: true });
  t.after(() => h1.closeIdle());
  const txn = (streamtype: string, o: { destroyOnRx?: boolean } = {}) => new Promise<string[]>((resolve, reject) => {
    const states: string[] = [];
    const limit = setTimeout(() => reject(new Error(`${streamtype}: no result; ${states.join(" ")}; ${logs.join(" | ")}`)), 20_000);
    const finish = () => {
      clearTimeout(limit);
      resolve(states);
    };
    ss.create(streamtype, {
      onState(state, _ack, stream) {
        states.push(stateName(state));
        if (state === State.CREATING) return stream.requestTx();
        if (state === State.DESTROYING) finish();
        else if (state === State.QOS_ACK_REMOTE || state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED) return Ret.DESTROY_ME;
        return Ret.OK;
      },
      onRx(_payload, flags) {
        if (o.destroyOnRx && flags & RxFlag.SOM) return Ret.DESTROY_ME;
        return Ret.OK;
      },
    });
  });
  return { ss, h1, logs, txn };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("plain: five streams in turn, one connection; each stream still sees CONNECTING and CONNECTED", limit, async (t) => {
  const p = await peer(t);
  const c = context(t, compile(plainPolicy(p.port)));
  for (let i = 0; i < 5; i++) assert.deepEqual(await c.txn(i % 2 ? "get2" : "get"), ONE_TXN);
  assert.equal(p.connections, 1, "two streamtypes with the same connect options share it");
  assert.equal(p.seen.length, 5);
  assert.equal(c.h1.idle, 1);
});

test("a policy update with the same streamtype name and another http_url: new streams ask for the new URL (on the pooled connection)", limit, async (t) => {
  const p = await peer(t);
  const c = context(t, compile(plainPolicy(p.port)));
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  // h1 keeps a request plan (and a request made once) per StreamType; usePolicy() makes new StreamTypes
  const updated = plainPolicy(p.port) as { s: Record<string, { http_url: string }>[] };
  updated.s[0]!.get!.http_url = "/bytes/100";
  c.ss.usePolicy(compile(updated));
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.deepEqual(p.seen, ["GET /status/200", "GET /bytes/100", "GET /bytes/100"]);
  assert.equal(p.connections, 1, "the same endpoint: the idle connection serves the new policy's streams");
});

test("a streamtype's caches live while a stream or a pooled connection uses them, and go once the pool is emptied", limit, async (t) => {
  // the garbage collector decides when a WeakRef lets go: this test runs it
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  const collect = async () => {
    await sleep(50); // a WeakRef keeps its target until the current job is over
    gc();
    gc();
  };
  const p = await peer(t);
  const policy = compile(plainPolicy(p.port));
  // a new StreamType is a streamtype read from the policy again, and all that is made once per streamtype made again
  const made: string[] = [];
  const streamtype = policy.streamtype.bind(policy);
  policy.streamtype = (name: string) => (made.push(name), streamtype(name));
  const c = context(t, policy);
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  await collect();
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.deepEqual(made, ["get"], "the stream on the pooled connection found the streamtype's caches");
  c.h1.closeIdle();
  await collect();
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.deepEqual(made, ["get", "get"], "no stream and no pooled connection left: the caches went");
  assert.equal(p.connections, 2);
});

test("zero turns reuse off: idleMs 0 or idlePerOrigin 0, one connection per stream, none left open", limit, async (t) => {
  for (const options of [{ idleMs: 0 }, { idlePerOrigin: 0 }]) {
    const p = await peer(t);
    const c = context(t, compile(plainPolicy(p.port)), options);
    for (let i = 0; i < 3; i++) assert.deepEqual(await c.txn("get"), ONE_TXN);
    assert.equal(p.connections, 3, JSON.stringify(options));
    assert.equal(c.h1.idle, 0);
    for (let i = 0; i < 50 && p.open.size; i++) await sleep(10);
    assert.equal(p.open.size, 0, "each connection closed with its stream");
  }
});

test("Connection: close from the server is honoured: the next stream gets a new connection", limit, async (t) => {
  const p = await peer(t);
  const c = context(t, compile(plainPolicy(p.port)));
  assert.deepEqual(await c.txn("close"), ONE_TXN);
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.equal(p.connections, 2);
});

test("idle timeout: a connection idle longer than idleMs is closed, by us, and not reused", limit, async (t) => {
  const p = await peer(t);
  const c = context(t, compile(plainPolicy(p.port)), { idleMs: 100 });
  await c.txn("get");
  assert.equal(c.h1.idle, 1);
  for (let i = 0; i < 100 && (p.open.size || c.h1.idle); i++) await sleep(10);
  assert.equal(p.open.size, 0, "the idle connection was closed");
  assert.equal(c.h1.idle, 0);
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.equal(p.connections, 2);
});

test("stale idle connection: the server timed it out while it waited; the next stream connects afresh", limit, async (t) => {
  // the server ends each connection once its response is out, as a keep-alive timer does, without saying so
  const answer = h1Handler([]);
  const p = await peer(t, { handler: (req, res) => {
    res.on("finish", () => setTimeout(() => req.socket.end(), 20));
    answer(req, res);
  } });
  const c = context(t, compile(plainPolicy(p.port)));
  await c.txn("get");
  for (let i = 0; i < 100 && (p.open.size || c.h1.idle); i++) await sleep(10);
  assert.equal(p.open.size, 0, "the server closed it");
  assert.equal(c.h1.idle, 0, "and it left the pool when it did");
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.equal(p.connections, 2);
});

test("the server closes a reused connection as the request arrives: a GET goes once more on a fresh connection", limit, async (t) => {
  const p = await closingServer(t);
  const c = context(t, compile(plainPolicy(p.port)));
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.deepEqual(await c.txn("get"), ONE_TXN, "the stream sees one attempt: no UNREACHABLE, no DISCONNECTED in between");
  assert.equal(p.connections, 2);
  assert.deepEqual(p.seen, ["GET /status/200 HTTP/1.1", "GET /status/200 HTTP/1.1", "GET /status/200 HTTP/1.1"]);
  assert.ok(c.logs.some((l) => /closed a kept-alive connection before answering: the GET goes again on a fresh one/.test(l)), c.logs.join("\n"));
});

test("bytes after the response, in the same read as its end: the connection is not kept", limit, async (t) => {
  const p = await rawServer(t, (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokX"));
  const c = context(t, compile(plainPolicy(p.port)));
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.equal(c.h1.idle, 0);
  assert.deepEqual(await c.txn("get"), ONE_TXN);
  assert.equal(p.connections, 2);
});

test("a POST never takes a connection from the pool (it could not be sent again); it may leave its own there", limit, async (t) => {
  const p = await peer(t);
  const c = context(t, compile(plainPolicy(p.port)));
  const post = (streamtype: string) => new Promise<string[]>((resolve) => {
    const states: string[] = [];
    c.ss.create(streamtype, {
      onState(state, _ack, stream) {
        states.push(stateName(state));
        if (state === State.CREATING) return stream.requestTxLength(4);
        if (state === State.DESTROYING) resolve(states);
        if (state === State.QOS_ACK_REMOTE) return Ret.DESTROY_ME;
        return Ret.OK;
      },
      onTx: () => ({ payload: new TextEncoder().encode("data"), flags: RxFlag.SOM | RxFlag.EOM }),
    });
  });
  await c.txn("get");
  assert.deepEqual(await post("post"), ONE_TXN);
  assert.equal(p.connections, 2, "the POST connected afresh");
  assert.equal(c.h1.idle, 1, "one idle connection per origin: the POST's was not kept beside the GET's");
  await c.txn("get");
  assert.equal(p.connections, 2);
});

test("a response not read to its end (the stream destroyed mid-body) is not reused", limit, async (t) => {
  const p = await peer(t);
  const c = context(t, compile(plainPolicy(p.port)));
  const states = await c.txn("big", { destroyOnRx: true });
  assert.deepEqual(states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "DESTROYING"]);
  assert.equal(c.h1.idle, 0);
  await c.txn("get");
  assert.equal(p.connections, 2);
});

test("streams in parallel each get their own connection; afterwards at most idlePerOrigin stay", limit, async (t) => {
  const p = await peer(t);
  const c = context(t, compile(plainPolicy(p.port)), { idlePerOrigin: 2 });
  await Promise.all([c.txn("get"), c.txn("get"), c.txn("get")]);
  assert.equal(p.connections, 3);
  assert.equal(c.h1.idle, 2);
  await Promise.all([c.txn("get"), c.txn("get")]);
  assert.equal(p.connections, 3);
});

test("idleTotal bounds the pool across origins: the oldest idle connection goes", limit, async (t) => {
  const a = await peer(t);
  const b = await peer(t);
  const policy = compile({
    s: [a, b].map((x, i) => ({ [`s${i}`]: { endpoint: "127.0.0.1", port: x.port, protocol: "h1", http_method: "GET", http_url: "/status/200" } })),
  });
  const c = context(t, policy, { idleTotal: 1 });
  await c.txn("s0");
  await c.txn("s1");
  assert.equal(c.h1.idle, 1);
  for (let i = 0; i < 100 && a.open.size; i++) await sleep(10);
  assert.equal(a.open.size, 0, "s0's connection was closed to make room");
  await c.txn("s1");
  assert.equal(b.connections, 1);
});

// ---------------------------------------------------------------------------
// Trust contexts

function pkiOrSkip(t: TestContext): TestPki | undefined {
  return requirePeer("openssl", opensslAvailable(), t) ? testPki() : undefined;
}

test("TLS: streams of the same trust context share one connection", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const p = await peer(t, { tls: { cert: pki.server.chainPem, key: pki.server.keyPem } });
  const c = context(t, compile(tlsPolicy(pki, p.port)));
  for (let i = 0; i < 4; i++) assert.deepEqual(await c.txn(i % 2 ? "tls_a2" : "tls_a"), ONE_TXN);
  assert.equal(p.connections, 1);
  assert.deepEqual(p.handshakes, ["new"]);
});

test("TLS: two trust stores to the same host and port never share a connection (nor a TLS session)", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const p = await peer(t, { tls: { cert: pki.server.chainPem, key: pki.server.keyPem } });
  const c = context(t, compile(tlsPolicy(pki, p.port)), { idlePerOrigin: 4, idleTotal: 4 });
  for (const st of ["tls_a", "tls_b", "tls_a", "tls_b"]) assert.deepEqual(await c.txn(st), ONE_TXN);
  assert.equal(p.connections, 2, "one per trust store");
  assert.deepEqual(p.handshakes, ["new", "new"], "the second trust store did not resume the first one's session");
  assert.equal(c.h1.idle, 2);
});

test("sameOptions: every field counts, at any depth, bytes by content; absent and undefined alike", () => {
  const ca = Uint8Array.of(1, 2, 3);
  const base = { host: "h", port: 443, timeoutMs: 15000, tls: { serverName: "h", ca: [ca], alpn: ["http/1.1"] } };
  assert.ok(sameOptions(base, { ...base, tls: { ...base.tls, ca: [Uint8Array.of(1, 2, 3)], clientCert: undefined } }));
  assert.ok(!sameOptions(base, { ...base, tls: { ...base.tls, ca: [Uint8Array.of(1, 2, 4)] } }));
  assert.ok(!sameOptions(base, { ...base, tls: { ...base.tls, ca: [ca, ca] } }));
  assert.ok(!sameOptions(base, { ...base, tls: { ...base.tls, clientCert: ca, clientKey: ca } }));
  assert.ok(!sameOptions(base, { ...base, tls: { ...base.tls, alpn: ["h2"] } }));
  assert.ok(!sameOptions(base, { ...base, port: 444 }));
  assert.ok(!sameOptions(base, { host: "h", port: 443, timeoutMs: 15000 }));
  // a field the contract does not have yet (a proxy) is compared too
  const proxied = { ...base, socks5: { host: "p", port: 1080, password: Uint8Array.of(9) } };
  assert.ok(!sameOptions(base, proxied));
  assert.ok(sameOptions(proxied, { ...base, socks5: { host: "p", port: 1080, password: Uint8Array.of(9) } }));
  assert.ok(!sameOptions(proxied, { ...base, socks5: { host: "p", port: 1080, password: Uint8Array.of(8) } }));
  // what is not plain data compares by identity
  assert.ok(!sameOptions({ k: new DataView(new ArrayBuffer(1)) }, { k: new DataView(new ArrayBuffer(1)) }));
});

test("TLS sessions (Node host): resumed only under the trust context that made them", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const p = await peer(t, { tls: { cert: pki.server.chainPem, key: pki.server.keyPem } });
  // reuse off: every stream makes a connection, and the server says how each began
  const c = context(t, compile(tlsPolicy(pki, p.port)), { idleMs: 0 });
  for (const st of ["tls_a", "tls_a", "tls_b", "tls_b", "tls_a"]) assert.deepEqual(await c.txn(st), ONE_TXN);
  assert.equal(p.connections, 5);
  assert.deepEqual(p.handshakes, ["new", "resumed", "new", "resumed", "resumed"],
    "store b never resumed store a's session; each resumed its own");
});

test("TLS sessions: a connection the device's rules refuse leaves no session behind to skip them with", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  // a chain over one TLS record: Node accepts it, the device's rules refuse it (node-host.test.ts)
  const p = await peer(t, { tls: { cert: pki.server.chainPem + pki.otherCa.certPem.repeat(24), key: pki.server.keyPem } });
  const c = context(t, compile(tlsPolicy(pki, p.port)), { idleMs: 0 });
  for (let i = 0; i < 2; i++) {
    const states = await c.txn("tls_a");
    assert.equal(states.includes("CONNECTED"), false, states.join(" "));
  }
  assert.equal(p.handshakes.includes("resumed"), false, p.handshakes.join(" "));
});
