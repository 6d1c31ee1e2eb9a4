// The connection-reuse scenarios of h1-reuse.test.ts with the runtime INSIDE
// the real XS engine (xsnap): SecureStreams and the h1 binding's pool run on
// XSBridgeHost, their sockets are NodeHost connections in this process
// (hosts/xsnap/bridge.ts), the peers the same Node servers, counting the
// connections they accept. The XS half is support/xs-reuse-entry.ts.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { XSBridge } from "../hosts/xsnap/bridge.js";
import { pack } from "../hosts/xsnap/bridge-protocol.js";
import { compilePolicy } from "../tools/policy/compile.js";
import type { H1BindingOptions } from "../src/protocols/h1.js";
import type { XSReuseHead, XSReuseReport } from "./support/xs-reuse-entry.js";
import { peer, closingServer, plainPolicy, tlsPolicy, ONE_TXN } from "./support/reuse-peers.js";
import { requirePeer } from "./support/peers.js";
import { opensslAvailable, testPki } from "./support/pki.js";

const limit = { timeout: 60_000 };
const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), "support", "xs-reuse-entry.js");
let bundled: Promise<string> | undefined;

/** Runs the streamtypes in turn in one XS context; its report, and what the bridge still held after. */
async function runInXS(policy: object, streamtypes: string[], options?: H1BindingOptions): Promise<XSReuseReport & { pending: { connections: number; timers: number }; logs: string[] }> {
  const compiled = compilePolicy(JSON.stringify(policy));
  if (!compiled.binary) throw new Error(`policy does not compile: ${JSON.stringify(compiled.diagnostics)}`);
  const logs: string[] = [];
  let settle!: (r: XSReuseReport) => void;
  const report = new Promise<XSReuseReport>((resolve) => (settle = resolve));
  const bridge = await XSBridge.start([await (bundled ??= bundleForXS(entry, { globalName: "xsReuse" })), "xsReuse.serve();"], {
    log: (m) => logs.push(m),
    onMessage: (bytes) => settle(JSON.parse(new TextDecoder().decode(bytes)) as XSReuseReport),
  });
  try {
    const head: XSReuseHead = { streamtypes, ...(options ? { options } : {}) };
    await bridge.post(pack(head, [compiled.binary]));
    const r = await report;
    await bridge.idle();
    return { ...r, pending: bridge.pending, logs };
  } finally {
    await bridge.close();
  }
}

test("XS: five streams in turn share one connection; each sees CONNECTING and CONNECTED; nothing left after closeIdle", limit, async (t: TestContext) => {
  const p = await peer(t);
  const r = await runInXS(plainPolicy(p.port), ["get", "get2", "get", "get2", "get"]);
  for (const states of r.states) assert.deepEqual(states, ONE_TXN);
  assert.equal(p.connections, 1);
  assert.equal(p.seen.length, 5);
  assert.equal(r.idle, 1);
  assert.deepEqual(r.pending, { connections: 0, timers: 0 });
});

test("XS: idleMs 0 turns reuse off; Connection: close is honoured", limit, async (t: TestContext) => {
  const off = await peer(t);
  const r = await runInXS(plainPolicy(off.port), ["get", "get", "get"], { idleMs: 0 });
  for (const states of r.states) assert.deepEqual(states, ONE_TXN);
  assert.equal(off.connections, 3);
  const closing = await peer(t);
  const c = await runInXS(plainPolicy(closing.port), ["close", "get"]);
  for (const states of c.states) assert.deepEqual(states, ONE_TXN);
  assert.equal(closing.connections, 2);
});

test("XS: the server closes a reused connection as the request arrives: the GET goes again on a fresh one", limit, async (t: TestContext) => {
  const p = await closingServer(t);
  const r = await runInXS(plainPolicy(p.port), ["get", "get"]);
  for (const states of r.states) assert.deepEqual(states, ONE_TXN);
  assert.equal(p.connections, 2);
  assert.equal(p.seen.length, 3);
  assert.ok(r.logs.some((l) => /goes again on a fresh one/.test(l)), r.logs.join("\n"));
});

test("XS: two trust stores to the same host and port never share a connection", limit, async (t: TestContext) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  const pki = testPki();
  const p = await peer(t, { tls: { cert: pki.server.chainPem, key: pki.server.keyPem } });
  const r = await runInXS(tlsPolicy(pki, p.port), ["tls_a", "tls_b", "tls_a", "tls_b"], { idlePerOrigin: 4, idleTotal: 4 });
  for (const states of r.states) assert.deepEqual(states, ONE_TXN);
  assert.equal(p.connections, 2);
  assert.deepEqual(p.handshakes, ["new", "new"]);
  assert.equal(r.idle, 2);
});
