// lws' failure-path suite ("minimal-secure-streams-testsfail") for http/2,
// against Node's own http2 secure servers on loopback (ALPN h2): what
// succeeds, times out, does not resolve, streams 10 MB, or presents a bad
// certificate gives the states lws gives, the same as over http/1.1.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { testPki, opensslAvailable } from "./support/pki.js";
import { requirePeer } from "./support/peers.js";
import { compile, runStream, patternBytes, type RunOptions } from "./support/run-stream.js";
import { BULK, bulkBody } from "./support/h1-servers.js";
import { startH2Servers, h2TestPolicy, type H2Servers } from "./support/h2-servers.js";
import { createH2Binding } from "../src/protocols/h2.js";
import { createH1Binding } from "../src/protocols/h1.js";
import type { Policy } from "../src/policy/reader.js";

const bulkHash = createHash("sha256").update(bulkBody).digest("hex");

let servers: H2Servers;
let policy: Policy;
let seen: string[];

before(async () => {
  if (!opensslAvailable()) return;
  const pki = testPki();
  servers = await startH2Servers(pki);
  seen = servers.seen;
  policy = compile(h2TestPolicy(pki, servers));
});

after(() => servers?.close());

const has = (states: string[], s: string) => states.includes(s);
const last = (states: string[]) => states[states.length - 1];
const run = (name: string, o: RunOptions) => runStream(policy, name, { bindings: [createH1Binding(), createH2Binding()], ...o });

function guard(t: import("node:test").TestContext): boolean {
  return requirePeer("openssl", opensslAvailable(), t);
}

for (const name of ["t_h2_tls", "t_h2"]) {
  test(`${name}: GET succeeds with QOS_ACK_REMOTE`, async (t) => {
    if (!guard(t)) return;
    const r = await run(name, { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"), startTimeout: true });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"], r.logs.join("\n"));
    assert.equal(r.rxBytes, "status 200".length);
    if (name === "t_h2_tls") {
      assert.equal(r.perf.length, 1);
      assert.equal(JSON.parse(r.perf[0]!).prot_specific.resp, 200);
    }
  });
}

test("d_h2_tls: a server slower than timeout_ms gives TIMEOUT", async (t) => {
  if (!guard(t)) return;
  const r = await run("d_h2_tls", { until: (s) => has(s, "TIMEOUT") || has(s, "QOS_ACK_REMOTE"), startTimeout: true });
  assert.equal(last(r.states), "TIMEOUT");
  assert.ok(!has(r.states, "QOS_ACK_REMOTE"));
});

test("nxd_h2_tls: an unresolvable host is UNREACHABLE, then ALL_RETRIES_FAILED after conceal + 1 attempts", async (t) => {
  if (!guard(t)) return;
  const r = await run("nxd_h2_tls", { until: (s) => has(s, "ALL_RETRIES_FAILED") });
  assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "UNREACHABLE", "CONNECTING", "UNREACHABLE",
    "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"]);
  assert.ok(r.logs.some((l) => l.includes("dns")), r.logs.join("\n"));
});

test("bulk_h2_tls: 10 MB arrive intact, in bounded pieces, through windows smaller than the body", async (t) => {
  if (!guard(t)) return;
  const r = await run("bulk_h2_tls", { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"), limitMs: 60000 });
  assert.equal(last(r.states), "QOS_ACK_REMOTE", r.logs.join("\n"));
  assert.equal(r.rxBytes, BULK);
  assert.equal(r.sha256, bulkHash);
  assert.ok(r.largestChunk <= 4096, `largest rx ${r.largestChunk}`);
});

for (const name of ["badcert_hostname", "badcert_expired", "badcert_selfsigned", "badcert_otherca"]) {
  test(`${name} (h2): never CONNECTED, no payload, ALL_RETRIES_FAILED`, async (t) => {
    if (!guard(t)) return;
    const r = await run(name, { until: (s) => has(s, "ALL_RETRIES_FAILED") || has(s, "CONNECTED") });
    assert.ok(!has(r.states, "CONNECTED"), r.states.join(" "));
    assert.equal(r.rxBytes, 0);
    assert.equal(last(r.states), "ALL_RETRIES_FAILED");
    const kind = { badcert_hostname: "tls-hostname", badcert_expired: "tls-expired", badcert_selfsigned: "tls-untrusted", badcert_otherca: "tls-untrusted" }[name];
    assert.ok(r.logs.some((l) => l.includes(kind!)), r.logs.join("\n"));
  });
}

test("h2: a status outside 2xx is QOS_NACK_REMOTE; http_resp_map gives its own state", async (t) => {
  if (!guard(t)) return;
  const nack = await run("nack_h2", { until: (s) => has(s, "QOS_NACK_REMOTE") || has(s, "QOS_ACK_REMOTE") });
  assert.equal(last(nack.states), "QOS_NACK_REMOTE");
  const mapped = await run("resp_map_h2", { until: (s) => has(s, "QOS_NACK_REMOTE") || has(s, "QOS_ACK_REMOTE") });
  assert.deepEqual(mapped.states.slice(3), ["CONNECTED", "USER_BASE+530", "QOS_NACK_REMOTE"]);
});

test("h2: POST sends the body (larger than the server's window) and metadata as headers", async (t) => {
  if (!guard(t)) return;
  const body = patternBytes(300000, 7);
  seen.length = 0;
  const r = await run("post_h2", {
    send: body, metadata: { tag: "v1" },
    until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"),
  });
  assert.equal(last(r.states), "QOS_ACK_REMOTE", r.logs.join("\n"));
  assert.equal(r.sha256, createHash("sha256").update(body).digest("hex"), "echoed intact");
  assert.deepEqual(seen, ["POST /echo"]);
});

test("h2: metadata goes into the URL percent-encoded", async (t) => {
  if (!guard(t)) return;
  seen.length = 0;
  await run("meta_h2", { metadata: { q: "a b&c=d" }, until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "QOS_NACK_REMOTE") });
  assert.deepEqual(seen, ["GET /status/200?q=a%20b%26c%3Dd"]);
});

test("h2: 503 with Retry-After: no result yet, a retry no sooner than asked, even when opportunistic", async (t) => {
  if (!guard(t)) return;
  const r = await run("busy_h2", { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED") });
  assert.deepEqual(r.states.slice(2), ["CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"], r.logs.join("\n"));
});

test("h2: nailed_up keeps its connection after its transaction, and reconnects (without sending it again) when the server closes it", async (t) => {
  if (!guard(t)) return;
  const before = servers.sessions();
  let closed = false;
  const r = await run("nailed_h2", {
    until: (s) => s.filter((x) => x === "CONNECTED").length >= 2,
    onState: (state) => {
      if (state !== 5 /* CONNECTED */ || closed) return;
      closed = true;
      // up and idle for a while, then the server says goodbye (GOAWAY)
      setTimeout(() => {
        assert.equal(servers.sessions() - before, 1, "one connection, kept up");
        for (const s of servers.live) s.close();
      }, 300);
    },
  });
  const from = r.states.indexOf("CONNECTED");
  assert.deepEqual(r.states.slice(from), ["CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED", "CONNECTING", "CONNECTED"], r.logs.join("\n"));
  assert.ok(r.logs.some((l) => /GOAWAY/.test(l)), r.logs.join("\n"));
});
