// The policy reader on the real XS engine (hosts/xsnap): it reads every
// policy (the repository's, and the lws corpus when present) exactly as Node does, survives the same 20,000 mutants with
// the same outcomes, and hands out certificates as views, not copies.
//
// Takes ~25 s on 2 cores, nearly all of it the XS half of the fuzz (run as
// two workers in parallel, in chunks of FUZZ_CHUNK iterations per crank so
// that the meter limit would stop a runaway loop).

import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { corpusPolicies, corpusPresent, repoPolicies, requireCorpus } from "./support/corpus.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { base64Encode } from "../src/util/base64.js";
import { fuzzPolicies, mergeReports, featurePolicy, type FuzzReport } from "./support/policy-fuzz.js";
import { readPolicy, type PolicyReading } from "./support/xs-policy-entry.js";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = path.join(here, "support", "xs-policy-entry.js");

const FUZZ_ITERATIONS = 20_000;
const FUZZ_SEED = 0x5eed;
const FUZZ_CHUNK = 1_000;
const XS_WORKERS = 2;
/** Per crank; a chunk of FUZZ_CHUNK mutants takes ~0.3e9 (see the diagnostics). */
const METERING_LIMIT = 1e9;

// The repository's policies, the lws corpus when present, and a policy with what
// those lack (metrics, options, server certs, non-ASCII names...).
const sources = [...repoPolicies(), ...(corpusPresent() ? corpusPolicies() : [])];
const demoCert = (JSON.parse(sources[0]!.text) as { certs: Record<string, string>[] }).certs[0]!;
sources.push({ file: "(featurePolicy)", text: featurePolicy(Object.values(demoCert)[0]!) });
const corpus = sources.map(({ file, text }) => {
  const r = compilePolicy(text);
  assert.ok(r.binary, `${file} compiles: ${JSON.stringify(r.diagnostics)}`);
  return { file, binary: r.binary };
});
const binaries = corpus.map((c) => c.binary);

let bundled: Promise<string> | undefined;
const bundle = (): Promise<string> => (bundled ??= bundleForXS(entry, { globalName: "lib" }));

/** A script that makes globalThis.bins: the corpus binaries, decoded inside XS. */
const binsScript = (): string =>
  `globalThis.bins = ${JSON.stringify(binaries.map((b) => base64Encode(b)))}.map((s) => lib.base64Decode(s));`;

test("the lws corpus is among the policies read", (t) => {
  if (requireCorpus(t)) assert.ok(sources.length > 18);
});

test("XS reads every policy (repository, corpus, featurePolicy) exactly as Node does", async () => {
  const onNode = binaries.map((b) => readPolicy(b));
  const { messages } = await runInXS([await bundle(), binsScript(), `for (const b of bins) send(JSON.stringify(lib.readPolicy(b)));`]);
  assert.equal(messages.length, corpus.length);
  messages.forEach((m, i) => {
    const onXS = JSON.parse(m) as PolicyReading;
    assert.ok(onXS.json === onNode[i]!.json, `${corpus[i]!.file}: canonical JSON differs on XS:\n${onXS.json}\n${onNode[i]!.json}`);
    assert.deepEqual(onXS.lookups, onNode[i]!.lookups, `${corpus[i]!.file}: lookups`);
    // every name is found, the missing ones are not
    const found = onNode[i]!.lookups.filter((l) => l[1] !== null);
    assert.equal(found.length, onNode[i]!.lookups.length - 2, corpus[i]!.file);
    for (const l of found) assert.equal(l[0], l[1]);
  });
});

test("fuzz: 20,000 mutants, only PolicyErrors, and XS agrees with Node", { timeout: 180_000 }, async (t) => {
  const started = performance.now();
  // XS: XS_WORKERS workers, each a contiguous range of iterations in chunks of one crank each.
  const perWorker = FUZZ_ITERATIONS / XS_WORKERS;
  const code = await bundle();
  const onXS = Promise.all(Array.from({ length: XS_WORKERS }, async (_, w) => {
    const chunks: string[] = [];
    for (let first = w * perWorker; first < (w + 1) * perWorker; first += FUZZ_CHUNK) {
      chunks.push(`send(JSON.stringify(lib.fuzzPolicies(bins, ${FUZZ_CHUNK}, ${FUZZ_SEED}, ${first})));`);
    }
    const r = await runInXS([code, binsScript(), ...chunks], { meteringLimit: METERING_LIMIT });
    return { reports: r.messages.map((m) => JSON.parse(m) as FuzzReport), compute: r.steps.slice(2).map((s) => s.compute) };
  }));
  // Node, meanwhile, in the same chunks, yielding so that the workers get their next chunk at once.
  const nodeParts: FuzzReport[] = [];
  for (let first = 0; first < FUZZ_ITERATIONS; first += FUZZ_CHUNK) {
    nodeParts.push(fuzzPolicies(binaries, FUZZ_CHUNK, FUZZ_SEED, first));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const node = mergeReports(nodeParts);
  const nodeDone = performance.now();
  const xsRuns = await onXS;
  const xs = mergeReports(xsRuns.flatMap((r) => r.reports));
  const compute = xsRuns.flatMap((r) => r.compute);

  t.diagnostic(`Node: ${((nodeDone - started) / 1000).toFixed(1)} s; XS: ${((performance.now() - started) / 1000).toFixed(1)} s, ` +
    `max ${Math.max(...compute)} computrons per ${FUZZ_CHUNK}-mutant crank (limit ${METERING_LIMIT})`);
  t.diagnostic(`outcomes: ok ${node.ok}, ${JSON.stringify(node.byCode)}; by mutation ${JSON.stringify(node.byMutation)}; ` +
    `crc fixed ${node.crcFixed}, stale crc rejected ${node.checksumRejected}; digest ${node.digest}`);

  assert.equal(node.iterations, FUZZ_ITERATIONS);
  assert.deepEqual(node.failures, [], `exceptions other than PolicyError on Node (${node.failureCount}); replay one with fuzzPolicies(binaries, 1, ${FUZZ_SEED}, iteration)`);
  assert.equal(node.failureCount, 0);
  assert.equal(node.checksumMissed, 0, "verify() passed a changed policy with a stale CRC");
  // the fuzz reaches both the happy path and the checks
  assert.ok(node.ok > FUZZ_ITERATIONS / 10, `only ${node.ok} mutants read cleanly`);
  for (const c of ["truncated", "bad-magic", "bad-version", "bad-length", "bad-section", "bad-reference", "bad-record", "bad-string"]) {
    assert.ok((node.byCode[c] ?? 0) > 0, `no mutant gave ${c}`);
  }
  assert.ok(node.checksumRejected > FUZZ_ITERATIONS / 5);

  assert.deepEqual(xs.failures, [], `exceptions other than PolicyError on XS (${xs.failureCount})`);
  assert.deepEqual(xs, node, "XS and Node reports differ");
  assert.equal(xs.digest, node.digest);
});

test("XS: Cert.der is a view into the policy bytes, not a copy", async () => {
  // a policy with certificates in trust stores, placed at an odd offset inside a larger buffer
  const i = corpus.findIndex((c) => c.file === "policies/demo.json");
  assert.ok(i >= 0);
  const { messages } = await runInXS([await bundle(), binsScript(), `
    const src = bins[${i}];
    const outer = new Uint8Array(src.length + 7);
    outer.set(src, 3);
    const bytes = outer.subarray(3, 3 + src.length);
    const p = lib.Policy.open(bytes).verify();
    const out = { certs: p.certCount, stores: 0, sameBuffer: true, inside: true, live: true };
    const check = (der) => {
      if (der.buffer !== bytes.buffer) out.sameBuffer = false;
      if (!(der.byteOffset >= bytes.byteOffset && der.byteOffset + der.byteLength <= bytes.byteOffset + bytes.byteLength)) out.inside = false;
      // a change to the policy bytes shows through the view
      const at = der.byteOffset - outer.byteOffset;
      const before = der[0];
      outer[at] ^= 0xff;
      if (der[0] !== (before ^ 0xff)) out.live = false;
      outer[at] ^= 0xff;
    };
    for (let c = 0; c < p.certCount; c++) check(p.cert(c).der);
    for (let s = 0; s < p.trustStoreCount; s++) {
      const t = p.trustStore(s);
      for (let c = 0; c < t.size; c++) { check(t.cert(c).der); out.stores++; }
    }
    // an ArrayBuffer works the same
    const q = lib.Policy.open(src.buffer);
    out.fromArrayBuffer = q.cert(0).der.buffer === src.buffer;
    send(JSON.stringify(out));
  `]);
  const out = JSON.parse(messages[0]!) as Record<string, number | boolean>;
  assert.ok((out.certs as number) > 1 && (out.stores as number) > 0, JSON.stringify(out));
  assert.deepEqual(
    { sameBuffer: out.sameBuffer, inside: out.inside, live: out.live, fromArrayBuffer: out.fromArrayBuffer },
    { sameBuffer: true, inside: true, live: true, fromArrayBuffer: true },
  );
});
