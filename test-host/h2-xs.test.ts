// lws' failure-path suite for http/2 with the whole runtime INSIDE the real
// XS engine (as h1-xs.test.ts): SecureStreams, the h2 binding, its codec and
// the policy reader run in an xsnap worker, their sockets bridged to Node,
// against the same Node http2 servers as h2-testsfail.test.ts. The expected
// states are the Node run's.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { testPki, opensslAvailable } from "./support/pki.js";
import { requirePeer } from "./support/peers.js";
import { runStreamInXS, type XSStreamRecord } from "./support/run-stream-xs.js";
import { BULK, bulkBody } from "./support/h1-servers.js";
import { startH2Servers, h2TestPolicy, type H2Servers } from "./support/h2-servers.js";
import { murmur3 } from "./support/murmur3.js";
import { patternBytes } from "./support/run-stream.js";
import { compilePolicy } from "../tools/policy/compile.js";

let servers: H2Servers;
let policy: Uint8Array;

before(async () => {
  if (!opensslAvailable()) return;
  const pki = testPki();
  servers = await startH2Servers(pki);
  const r = compilePolicy(JSON.stringify(h2TestPolicy(pki, servers)));
  if (!r.binary) throw new Error(`test policy does not compile: ${JSON.stringify(r.diagnostics)}`);
  policy = r.binary;
});

after(() => servers?.close());

const has = (states: string[], s: string) => states.includes(s);
const last = (states: string[]) => states[states.length - 1];
const guard = (t: import("node:test").TestContext) => requirePeer("openssl", opensslAvailable(), t);
const clean = (r: XSStreamRecord) => assert.deepEqual(r.pending, { connections: 0, timers: 0 });

describe("h2 inside XS", { concurrency: true }, () => {
  it("t_h2_tls: GET succeeds with QOS_ACK_REMOTE", async (t) => {
    if (!guard(t)) return;
    const r = await runStreamInXS(policy, "t_h2_tls", { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"), startTimeout: true });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"], r.logs.join("\n"));
    assert.equal(r.hash, murmur3(new TextEncoder().encode("status 200")));
    assert.equal(JSON.parse(r.perf[0]!).prot_specific.resp, 200);
    clean(r);
  });

  it("d_h2_tls: a server slower than timeout_ms gives TIMEOUT", async (t) => {
    if (!guard(t)) return;
    const r = await runStreamInXS(policy, "d_h2_tls", { until: (s) => has(s, "TIMEOUT") || has(s, "QOS_ACK_REMOTE"), startTimeout: true });
    assert.equal(last(r.states), "TIMEOUT");
    clean(r);
  });

  it("nxd_h2_tls: UNREACHABLE, then ALL_RETRIES_FAILED", async (t) => {
    if (!guard(t)) return;
    const r = await runStreamInXS(policy, "nxd_h2_tls", { until: (s) => has(s, "ALL_RETRIES_FAILED") });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "UNREACHABLE", "CONNECTING", "UNREACHABLE",
      "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"]);
    clean(r);
  });

  it("bulk_h2_tls: 10 MB arrive intact, in bounded pieces", async (t) => {
    if (!guard(t)) return;
    const r = await runStreamInXS(policy, "bulk_h2_tls", { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"), limitMs: 120000 });
    assert.equal(last(r.states), "QOS_ACK_REMOTE", r.logs.join("\n"));
    assert.equal(r.rxBytes, BULK);
    assert.equal(r.hash, murmur3(bulkBody));
    assert.ok(r.largestChunk <= 4096);
    clean(r);
  });

  it("post_h2: a 300 kB body is echoed intact", async (t) => {
    if (!guard(t)) return;
    const body = patternBytes(300000, 7);
    const r = await runStreamInXS(policy, "post_h2", { send: body, metadata: { tag: "v1" }, until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED") });
    assert.equal(last(r.states), "QOS_ACK_REMOTE", r.logs.join("\n"));
    assert.equal(r.hash, murmur3(body));
    clean(r);
  });

  for (const name of ["badcert_hostname", "badcert_expired", "badcert_selfsigned", "badcert_otherca"]) {
    it(`${name} (h2): never CONNECTED, ALL_RETRIES_FAILED`, async (t) => {
      if (!guard(t)) return;
      const r = await runStreamInXS(policy, name, { until: (s) => has(s, "ALL_RETRIES_FAILED") || has(s, "CONNECTED") });
      assert.ok(!has(r.states, "CONNECTED"));
      assert.equal(last(r.states), "ALL_RETRIES_FAILED");
      clean(r);
    });
  }
});
