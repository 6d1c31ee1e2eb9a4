// lws' failure-path suite for http/1.1 (as h1-testsfail.test.ts) with the
// whole runtime INSIDE the real XS engine: SecureStreams, the h1 binding and
// the policy reader run in an xsnap worker on XSBridgeHost, their sockets
// are NodeHost connections in this process (hosts/xsnap/bridge.ts), and the
// peers are the same Node http/https servers. The expected states are the
// Node run's.
//
// Each test has its own worker, so the tests run concurrently: the d_* ones
// spend 3 s waiting, and the two 10 MB runs keep both cores busy.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { testPki, opensslAvailable, type TestPki } from "./support/pki.js";
import { requirePeer } from "./support/peers.js";
import { patternBytes } from "./support/run-stream.js";
import { runStreamInXS, streamBundle, type XSStreamRecord } from "./support/run-stream-xs.js";
import { startH1Servers, h1TestPolicy, BULK, bulkBody, type H1Servers } from "./support/h1-servers.js";
import { murmur3, Murmur3 } from "./support/murmur3.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import type { Crank } from "../hosts/xsnap/bridge.js";

let pki: TestPki;
let servers: H1Servers;
let policy: Uint8Array;

before(async () => {
  if (!opensslAvailable()) return;
  pki = testPki();
  servers = await startH1Servers(pki);
  const r = compilePolicy(JSON.stringify(h1TestPolicy(pki, servers)));
  if (!r.binary) throw new Error(`test policy does not compile: ${JSON.stringify(r.diagnostics)}`);
  policy = r.binary;
});

after(() => servers?.close());

const has = (states: string[], s: string) => states.includes(s);
const last = (states: string[]) => states[states.length - 1];

function guard(t: import("node:test").TestContext): boolean {
  return requirePeer("openssl", opensslAvailable(), t);
}

/** Nothing of the stream outlives it: no connection or timer left in the bridge. */
function clean(r: XSStreamRecord): void {
  assert.deepEqual(r.pending, { connections: 0, timers: 0 });
}

function computeSummary(cranks: Crank[]): string {
  const byKind = new Map<string, { n: number; compute: number; max: number }>();
  for (const c of cranks) {
    const k = byKind.get(c.kind) ?? { n: 0, compute: 0, max: 0 };
    k.n++;
    k.compute += c.compute;
    k.max = Math.max(k.max, c.compute);
    byKind.set(c.kind, k);
  }
  return [...byKind].map(([kind, k]) => `${kind} x${k.n}: ${k.compute} (max ${k.max})`).join("; ");
}

describe("h1 inside XS", { concurrency: true }, () => {
  it("the runtime's XS bundle is portable: no Node-only code, none of the globals xsnap lacks", async () => {
    const bundle = await streamBundle();
    assert.match(bundle, /\bXSBridgeHost\b/);
    assert.match(bundle, /\bSecureStreams\b/);
    // xsnap has no console, setTimeout, setInterval, queueMicrotask: the runtime must not reach for them.
    const { fileURLToPath } = await import("node:url");
    const entry = fileURLToPath(new URL("./support/xs-stream-entry.js", import.meta.url));
    await bundleForXS(entry, { forbidGlobals: ["console", "setTimeout", "setInterval", "queueMicrotask", "structuredClone"] });
  });

  it("murmur3 matches the reference vectors, however the input is split", () => {
    assert.equal(murmur3(new Uint8Array(0)), "00000000");
    assert.equal(murmur3(new TextEncoder().encode("hello")), "248bfa47");
    assert.equal(murmur3(new TextEncoder().encode("The quick brown fox jumps over the lazy dog")), "2e4ff723");
    const data = patternBytes(1001, 3);
    const whole = murmur3(data);
    for (const step of [1, 2, 3, 5, 7, 64, 1000]) {
      const h = new Murmur3();
      for (let at = 0; at < data.length; at += step) h.update(data.subarray(at, at + step));
      assert.equal(h.digest(), whole, `split every ${step}`);
    }
  });

  for (const name of ["d_h1", "d_h1_tls"]) {
    it(`${name}: a server slower than timeout_ms gives TIMEOUT`, async (t) => {
      if (!guard(t)) return;
      const r = await runStreamInXS(policy, name, { until: (s) => has(s, "TIMEOUT") || has(s, "QOS_ACK_REMOTE"), startTimeout: true });
      assert.equal(last(r.states), "TIMEOUT");
      assert.ok(!has(r.states, "QOS_ACK_REMOTE"));
      clean(r);
    });
  }

  for (const name of ["bulk_h1", "bulk_h1_tls"]) {
    it(`${name}: 10 MB arrive intact, in bounded pieces`, async (t) => {
      if (!guard(t)) return;
      const started = performance.now();
      const r = await runStreamInXS(policy, name, { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"), limitMs: 60000 });
      assert.equal(last(r.states), "QOS_ACK_REMOTE");
      assert.equal(r.rxBytes, BULK);
      assert.equal(r.hash, murmur3(bulkBody));
      assert.ok(r.largestChunk <= 4096, `largest rx ${r.largestChunk}`);
      clean(r);
      t.diagnostic(`${name}: ${Math.round(performance.now() - started)} ms, ${r.cranks.length} cranks; ${computeSummary(r.cranks)}`);
    });
  }

  for (const name of ["t_h1", "t_h1_tls"]) {
    it(`${name}: GET succeeds with QOS_ACK_REMOTE`, async (t) => {
      if (!guard(t)) return;
      const r = await runStreamInXS(policy, name, { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"), startTimeout: true });
      assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"]);
      for (const bad of ["TIMEOUT", "QOS_NACK_REMOTE", "ALL_RETRIES_FAILED"]) assert.ok(!has(r.states, bad));
      assert.equal(r.rxBytes, "status 200".length);
      assert.equal(r.hash, murmur3(new TextEncoder().encode("status 200")));
      if (name === "t_h1") {
        assert.equal(r.perf.length, 1);
        const perf = JSON.parse(r.perf[0]!);
        assert.equal(perf.prot_specific.resp, 200);
        assert.equal(typeof perf.sockconn_us, "number");
      }
      clean(r);
      t.diagnostic(`${name}: ${r.cranks.length} cranks; ${computeSummary(r.cranks)}`);
    });
  }

  for (const name of ["nxd_h1", "nxd_h1_tls"]) {
    it(`${name}: an unresolvable host is UNREACHABLE, then ALL_RETRIES_FAILED after conceal + 1 attempts`, async (t) => {
      if (!guard(t)) return;
      const r = await runStreamInXS(policy, name, { until: (s) => has(s, "ALL_RETRIES_FAILED") });
      assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "UNREACHABLE", "CONNECTING", "UNREACHABLE",
        "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"]);
      assert.ok(r.logs.some((l) => l.includes("dns")), r.logs.join("\n"));
      clean(r);
    });
  }

  for (const name of ["badcert_hostname", "badcert_expired", "badcert_selfsigned", "badcert_otherca"]) {
    it(`${name}: never CONNECTED, no payload, ALL_RETRIES_FAILED`, async (t) => {
      if (!guard(t)) return;
      const r = await runStreamInXS(policy, name, { until: (s) => has(s, "ALL_RETRIES_FAILED") || has(s, "CONNECTED") });
      assert.ok(!has(r.states, "CONNECTED"), r.states.join(" "));
      assert.equal(r.rxBytes, 0);
      assert.equal(last(r.states), "ALL_RETRIES_FAILED");
      const kind = { badcert_hostname: "tls-hostname", badcert_expired: "tls-expired", badcert_selfsigned: "tls-untrusted", badcert_otherca: "tls-untrusted" }[name];
      assert.ok(r.logs.some((l) => l.includes(kind!)), r.logs.join("\n"));
      clean(r);
    });
  }

  it("a status outside 2xx is QOS_NACK_REMOTE; http_resp_map gives its own state", async (t) => {
    if (!guard(t)) return;
    const nack = await runStreamInXS(policy, "nack_h1", { until: (s) => has(s, "QOS_NACK_REMOTE") || has(s, "QOS_ACK_REMOTE") });
    assert.equal(last(nack.states), "QOS_NACK_REMOTE");
    const mapped = await runStreamInXS(policy, "resp_map_h1", { until: (s) => has(s, "QOS_NACK_REMOTE") || has(s, "QOS_ACK_REMOTE") });
    assert.deepEqual(mapped.states.slice(3), ["CONNECTED", "USER_BASE+530", "QOS_NACK_REMOTE"]);
    clean(nack);
    clean(mapped);
  });

  it("POST sends the body with its length and metadata as headers, and gets it echoed intact", async (t) => {
    if (!guard(t)) return;
    const body = patternBytes(100000, 7);
    const r = await runStreamInXS(policy, "post_h1", {
      send: body, metadata: { tag: "v1" },
      until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"),
    });
    assert.equal(last(r.states), "QOS_ACK_REMOTE");
    assert.equal(r.rxBytes, body.length);
    assert.equal(r.hash, murmur3(body), "echoed intact");
    // Only this test POSTs (the others run concurrently).
    assert.deepEqual(servers.seen.filter((s) => s.startsWith("POST")), ["POST /echo"]);
    clean(r);
  });

  it("metadata goes into the URL percent-encoded; CR/LF injection is refused and nothing is sent", async (t) => {
    if (!guard(t)) return;
    // Only this test asks for /status/200?q= (the others run concurrently).
    const mine = () => servers.seen.filter((s) => s.startsWith("GET /status/200?q="));
    await runStreamInXS(policy, "meta_h1", { metadata: { q: "a b&c=d" }, until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "QOS_NACK_REMOTE") });
    assert.deepEqual(mine(), ["GET /status/200?q=a%20b%26c%3Dd"]);
    await assert.rejects(
      runStreamInXS(policy, "meta_h1", { metadata: { tag: "x\r\nX-Injected: 1" }, until: () => true }),
      /metadata "tag" holds CR, LF or NUL/,
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(mine(), ["GET /status/200?q=a%20b%26c%3Dd"], "the refused stream sent nothing");
  });

  it("nailed_up reconnects after the server drops the link, without sending its finished request again", async (t) => {
    if (!guard(t)) return;
    const r = await runStreamInXS(policy, "nailed_h1", { until: (s) => s.filter((x) => x === "CONNECTED").length >= 2 });
    assert.equal(r.states.filter((x) => x === "QOS_ACK_REMOTE").length, 1);
    const from = r.states.indexOf("CONNECTED");
    assert.deepEqual(r.states.slice(from, from + 5), ["CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED", "CONNECTING", "CONNECTED"]);
    clean(r);
  });
});
