// Every real lws policy compiles, reads back to its canonical form, and the
// compiler is deterministic (the lws policy corpus, when present: see
// support/corpus.ts).

import { test } from "node:test";
import assert from "node:assert/strict";
import { corpusPolicies, corpusPresent, repoPolicies, requireCorpus } from "./support/corpus.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { formatDiagnostic } from "../tools/policy/diagnostics.js";
import { Policy } from "../src/policy/reader.js";
import { policyToJson } from "../src/policy/to-json.js";
import { base64Decode } from "../src/util/base64.js";

const corpus = corpusPresent() ? corpusPolicies() : [];

test("the corpus is there", (t) => {
  if (!requireCorpus(t)) return;
  assert.ok(corpus.length >= 18, `found ${corpus.length} policies`);
});

for (const { file, text } of [...repoPolicies(), ...corpus]) {
  test(`${file}: compiles, round-trips, deterministic`, () => {
    const result = compilePolicy(text);
    const errors = result.diagnostics.filter((d) => !d.warning).map((d) => formatDiagnostic(file, d));
    assert.deepEqual(errors, []);
    const binary = result.binary!;
    const policy = Policy.open(binary).verify();
    assert.deepEqual(policyToJson(policy), result.canonical);

    // same JSON, same bytes; and the canonical form compiles to the same bytes
    assert.deepEqual(compilePolicy(text).binary, binary);
    assert.deepEqual(compilePolicy(JSON.stringify(policyToJson(policy))).binary, binary);

    // every streamtype is found by name, in sorted order; others are not
    const names = (result.canonical!.s ?? []).map((o) => Object.keys(o)[0]!);
    assert.deepEqual([...names].sort(), names);
    for (const name of names) assert.equal(policy.streamtype(name)?.name, name);
    assert.equal(policy.streamtype("no-such-streamtype"), undefined);
    assert.equal(policy.streamtype(""), undefined);

    // certificates are the decoded DER, handed out as views into the policy
    const source = JSON.parse(text) as { certs?: Record<string, string>[] };
    const ders = new Map((source.certs ?? []).flatMap((o) => Object.entries(o)));
    for (let i = 0; i < policy.certCount; i++) {
      const cert = policy.cert(i);
      assert.equal(cert.der.buffer, binary.buffer, "no copy");
      assert.deepEqual(cert.der, base64Decode(ders.get(cert.name)!));
    }
  });
}

test("lws README spellings compile to their canonical names", (t) => {
  if (!requireCorpus(t)) return;
  const readme = corpus.find((c) => c.file === "seed-readme-example.json")!;
  const { canonical } = compilePolicy(readme.text);
  const mintest = canonical!.s![0]!.mintest!;
  assert.equal(mintest.protocol, "h1");
  assert.equal(mintest.http_method, "GET");
  assert.equal(mintest.http_url, "index.html");
  assert.equal("aux" in mintest || "plugins" in mintest, false);
  assert.deepEqual(canonical!.trust_stores, [{ name: "le_via_isrg", stack: ["isrg_root_x1", "LEX3_isrg_root_x1"] }]);
});

test("http_multipart_content_type is the canonical http_mime_content_type", () => {
  const mime = compilePolicy(`{"s": [{"up": {"http_multipart_content_type": "image/png"}}]}`).canonical!;
  assert.deepEqual(mime.s, [{ up: { http_mime_content_type: "image/png" } }]);
});

test("tls without a trust store compiles with a warning", () => {
  const result = compilePolicy(`{"s": [{"x": {"endpoint": "example.com", "port": 443, "tls": true}}]}`);
  assert.ok(result.binary);
  assert.deepEqual(result.diagnostics.map((d) => formatDiagnostic("p.json", d)), [
    "p.json:1:9: /s/0/x: warning: tls without tls_trust_store: no server certificate can be trusted, so this streamtype will never connect (system CAs are never used)",
  ]);
});

test("typed accessors read what the policy says", () => {
  const { binary } = compilePolicy(`{
    "retry": [{"r": {"backoff": [1000, 4294967295], "conceal": 65535, "jitterpc": 0}}],
    "s": [{"st": {"endpoint": "h.example", "port": 8443, "protocol": "mqtt", "retry": "r", "timeout_ms": 4000000000,
      "mqtt_qos": 2, "mqtt_topic": "t/\${id}", "metadata": [{"id": "", "ct": "content-type:"}],
      "http_resp_map": [{"530": 1530}], "ws_binary": false, "tls": true, "tls_trust_store": "x"}}],
    "certs": [], "trust_stores": []
  }`.replace(`, "tls_trust_store": "x"`, ""));
  const st = Policy.open(binary!).streamtype("st")!;
  assert.equal(st.string("endpoint"), "h.example");
  assert.equal(st.number("port"), 8443);
  assert.equal(st.number("timeout_ms"), 4000000000);
  assert.equal(st.number("mqtt_qos"), 2);
  assert.equal(st.protocol, "mqtt");
  assert.equal(st.flag("tls"), true);
  assert.equal(st.flag("ws_binary"), false);
  assert.equal(st.string("http_url"), undefined);
  assert.deepEqual(st.pairs("metadata"), [["id", ""], ["ct", "content-type:"]]);
  assert.deepEqual(st.pairs("http_resp_map"), [[530, 1530]]);
  const r = st.retry!;
  assert.deepEqual([r.name, r.backoff, r.conceal, r.jitterpc, r.svalidping], ["r", [1000, 4294967295], 65535, 0, undefined]);
  assert.throws(() => st.flag("port"), TypeError);
  assert.throws(() => st.has("no_such_key"), TypeError);
});
