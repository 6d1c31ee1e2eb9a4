// lws' failure-path suite ("minimal-secure-streams-testsfail") for http/1.1,
// against Node's own http and https servers on loopback, with certificates
// made by the tests: what succeeds, times out, does not resolve, streams
// 10 MB, or presents a bad certificate gives the states lws gives.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { testPki, opensslAvailable } from "./support/pki.js";
import { requirePeer } from "./support/peers.js";
import { compile, runStream, patternBytes } from "./support/run-stream.js";
import { startH1Servers, h1TestPolicy, BULK, bulkBody, type H1Servers } from "./support/h1-servers.js";
import type { Policy } from "../src/policy/reader.js";

const bulkHash = createHash("sha256").update(bulkBody).digest("hex");

let servers: H1Servers;
let policy: Policy;
/** Requests seen by the servers, for "nothing was sent" checks. */
let seen: string[];

before(async () => {
  if (!opensslAvailable()) return;
  const pki = testPki();
  servers = await startH1Servers(pki);
  seen = servers.seen;
  policy = compile(h1TestPolicy(pki, servers));
});

after(() => servers?.close());

const has = (states: string[], s: string) => states.includes(s);
const last = (states: string[]) => states[states.length - 1];

function guard(t: import("node:test").TestContext): boolean {
  return requirePeer("openssl", opensslAvailable(), t);
}

for (const name of ["t_h1", "t_h1_tls"]) {
  test(`${name}: GET succeeds with QOS_ACK_REMOTE`, async (t) => {
    if (!guard(t)) return;
    const r = await runStream(policy, name, { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"), startTimeout: true });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"]);
    for (const bad of ["TIMEOUT", "QOS_NACK_REMOTE", "ALL_RETRIES_FAILED"]) assert.ok(!has(r.states, bad));
    assert.equal(r.rxBytes, "status 200".length);
    if (name === "t_h1") {
      // "perf": true reports the connection's timings, as lws' conmon does
      assert.equal(r.perf.length, 1);
      const perf = JSON.parse(r.perf[0]!);
      assert.equal(perf.prot_specific.resp, 200);
      assert.equal(typeof perf.sockconn_us, "number");
    }
  });
}

for (const name of ["d_h1", "d_h1_tls"]) {
  test(`${name}: a server slower than timeout_ms gives TIMEOUT`, async (t) => {
    if (!guard(t)) return;
    const r = await runStream(policy, name, { until: (s) => has(s, "TIMEOUT") || has(s, "QOS_ACK_REMOTE"), startTimeout: true });
    assert.equal(last(r.states), "TIMEOUT");
    assert.ok(!has(r.states, "QOS_ACK_REMOTE"));
  });
}

for (const name of ["nxd_h1", "nxd_h1_tls"]) {
  test(`${name}: an unresolvable host is UNREACHABLE, then ALL_RETRIES_FAILED after conceal + 1 attempts`, async (t) => {
    if (!guard(t)) return;
    const r = await runStream(policy, name, { until: (s) => has(s, "ALL_RETRIES_FAILED") });
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "UNREACHABLE", "CONNECTING", "UNREACHABLE",
      "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"]);
    assert.ok(r.logs.some((l) => l.includes("dns")), r.logs.join("\n"));
  });
}

for (const name of ["bulk_h1", "bulk_h1_tls"]) {
  test(`${name}: 10 MB arrive intact, in bounded pieces`, async (t) => {
    if (!guard(t)) return;
    const r = await runStream(policy, name, { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"), limitMs: 60000 });
    assert.equal(last(r.states), "QOS_ACK_REMOTE");
    assert.equal(r.rxBytes, BULK);
    assert.equal(r.sha256, bulkHash);
    assert.ok(r.largestChunk <= 4096, `largest rx ${r.largestChunk}`);
  });
}

for (const name of ["badcert_hostname", "badcert_expired", "badcert_selfsigned", "badcert_otherca"]) {
  test(`${name}: never CONNECTED, no payload, ALL_RETRIES_FAILED`, async (t) => {
    if (!guard(t)) return;
    const r = await runStream(policy, name, { until: (s) => has(s, "ALL_RETRIES_FAILED") || has(s, "CONNECTED") });
    assert.ok(!has(r.states, "CONNECTED"), r.states.join(" "));
    assert.equal(r.rxBytes, 0);
    assert.equal(last(r.states), "ALL_RETRIES_FAILED");
    const kind = { badcert_hostname: "tls-hostname", badcert_expired: "tls-expired", badcert_selfsigned: "tls-untrusted", badcert_otherca: "tls-untrusted" }[name];
    assert.ok(r.logs.some((l) => l.includes(kind!)), r.logs.join("\n"));
  });
}

test("a status outside 2xx is QOS_NACK_REMOTE; http_resp_map gives its own state", async (t) => {
  if (!guard(t)) return;
  const nack = await runStream(policy, "nack_h1", { until: (s) => has(s, "QOS_NACK_REMOTE") || has(s, "QOS_ACK_REMOTE") });
  assert.equal(last(nack.states), "QOS_NACK_REMOTE");
  const mapped = await runStream(policy, "resp_map_h1", { until: (s) => has(s, "QOS_NACK_REMOTE") || has(s, "QOS_ACK_REMOTE") });
  assert.deepEqual(mapped.states.slice(3), ["CONNECTED", "USER_BASE+530", "QOS_NACK_REMOTE"]);
});

test("POST sends the body with its length and metadata as headers", async (t) => {
  if (!guard(t)) return;
  const body = patternBytes(100000, 7);
  seen.length = 0;
  const r = await runStream(policy, "post_h1", {
    send: body, metadata: { tag: "v1" },
    until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED"),
  });
  assert.equal(last(r.states), "QOS_ACK_REMOTE");
  assert.equal(r.sha256, createHash("sha256").update(body).digest("hex"), "echoed intact");
  assert.deepEqual(seen, ["POST /echo"]);
});

test("metadata goes into the URL percent-encoded; CR/LF injection is refused and nothing is sent", async (t) => {
  if (!guard(t)) return;
  seen.length = 0;
  await runStream(policy, "meta_h1", { metadata: { q: "a b&c=d" }, until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "QOS_NACK_REMOTE") });
  assert.deepEqual(seen, ["GET /status/200?q=a%20b%26c%3Dd"]);
  seen.length = 0;
  await assert.rejects(
    runStream(policy, "meta_h1", { metadata: { tag: "x\r\nX-Injected: 1" }, until: () => true }),
    /metadata "tag" holds CR, LF or NUL/,
  );
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seen, []);
});

test("nailed_up reconnects after the server drops the link, without sending its finished request again", async (t) => {
  if (!guard(t)) return;
  const r = await runStream(policy, "nailed_h1", { until: (s) => s.filter((x) => x === "CONNECTED").length >= 2 });
  assert.equal(r.states.filter((x) => x === "QOS_ACK_REMOTE").length, 1);
  const from = r.states.indexOf("CONNECTED");
  assert.deepEqual(r.states.slice(from, from + 5), ["CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED", "CONNECTING", "CONNECTED"]);
});

test("503 with Retry-After: no result yet, a retry no sooner than asked, even when opportunistic", async (t) => {
  if (!guard(t)) return;
  const r = await runStream(policy, "busy_h1", { until: (s) => has(s, "QOS_ACK_REMOTE") || has(s, "ALL_RETRIES_FAILED") });
  assert.deepEqual(r.states.slice(2), ["CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"]);
});
