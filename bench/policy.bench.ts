// Policy size and open-cost benchmark: the compiled binary against the JSON
// policy lws reads. Run: npm run bench:policy (build + node dist/bench/policy.bench.js).
//
// Part 1 (Node): per corpus policy, minified JSON bytes vs binary bytes, and
// the "rest" ratio with certificates taken out on both sides (DER + its 8-byte
// table entry vs base64 string + quotes).
// Part 2 (XS, xsnap meter): heap slots retained and computrons of
// `Policy.open(bytes).streamtype(NAME)` vs `JSON.parse(text)` + find, with the
// bytes / text created in an earlier crank (on a device the binary is
// flash-mapped, so creating it is not counted).
//
// Machine-readable results: one `BENCH {json}` line per comparison; ratio is
// theirs/ours, so >= 1 means the binary policy is better.

import path from "node:path";
import { fileURLToPath } from "node:url";
import { corpusPolicies } from "../test-host/support/corpus.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { Policy } from "../src/policy/reader.js";
import { HEADER_SIZE, ENTRY_SIZE, H_TABLE_COUNTS, H_INDEX_COUNT, H_SECTION_LENGTHS, S_INDEX, S_STRINGS, S_DER, S_CERTS } from "../src/policy/format.js";
import { base64Encode } from "../src/util/base64.js";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = path.join(here, "..", "test-host", "support", "xs-policy-entry.js");

const SLOT_BUDGET = 32;
const REST_BUDGET = 35; // percent
const ROUNDS = 5;

interface Item {
  name: string;
  file: string;
  text: string;
  binary: Uint8Array;
}

/**
 * Short names from the corpus file names: the example's directory without
 * "minimal-secure-streams-" ("…-testsfail__policy-local.json.in" -> "testsfail"),
 * plus "-local" for a .json.in template whose directory also has a plain policy.
 */
function shortNames(files: string[]): string[] {
  const names = files.map((file) => {
    const parts = file.replace(/\.json(\.in)?$/, "").split("__");
    if (parts.length > 1) parts.pop(); // the leaf is always some "policy" file name
    return parts.join("-").replace(/^minimal-secure-streams-/, "").replace(/_/g, "-").replace(/-policy$/, "");
  });
  return names.map((n, i) => (names.filter((m) => m === n).length > 1 && files[i]!.endsWith(".in") ? `${n}-local` : n));
}

function bench(line: { name: string; unit: string; ours: number; peer: string; theirs: number }): void {
  const ratio = Math.round((line.theirs / line.ours) * 1000) / 1000;
  console.log(`BENCH ${JSON.stringify({ ...line, ratio })}`);
}

function pad(s: string | number, n: number, right = false): string {
  const t = String(s);
  return right ? t.padEnd(n) : t.padStart(n);
}

/** Start of section `s`, read from the header like the reader does. */
function sectionStart(b: Uint8Array, s: number): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = HEADER_SIZE;
  for (let i = 0; i < s; i++) {
    if (i < S_INDEX) at += v.getUint8(H_TABLE_COUNTS + i) * ENTRY_SIZE[i]!;
    else if (i === S_INDEX) at += v.getUint16(H_INDEX_COUNT, true) * ENTRY_SIZE[S_INDEX]!;
    else at += v.getUint16(H_SECTION_LENGTHS + 2 * (i - S_STRINGS), true);
  }
  return at;
}

function occurrences(hay: Uint8Array, needle: Uint8Array): number {
  let n = 0;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    n++;
  }
  return n;
}

/** A policy with `count` streamtypes of varied names and shapes (the "big policy" of the issue). */
export function generatedPolicy(count: number): string {
  const verbs = ["get", "post", "put", "fetch", "upload", "poll", "report", "sync"];
  const things = ["status", "config", "firmware", "metrics", "logs", "telemetry", "image", "token", "events", "schedule"];
  const s: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${things[i % things.length]}_${verbs[(i * 7) % verbs.length]}_${i.toString(36)}`;
    const st: Record<string, unknown> = {
      endpoint: `svc${i % 17}.example.com`,
      port: i % 3 ? 443 : 8443,
      protocol: i % 5 === 4 ? "ws" : i % 5 === 3 ? "h2" : "h1",
      http_method: i % 4 ? "GET" : "POST",
      http_url: `/api/v${1 + (i % 3)}/${things[(i * 3) % things.length]}/${i}`,
      metadata: [{ ctype: "Content-Type:" }, { [`tag${i % 5}`]: "X-Tag:" }],
    };
    s.push({ [name]: st });
  }
  return JSON.stringify({
    release: "01234567",
    product: "generated",
    "schema-version": 1,
    s,
  }, null, 2);
}

function compileOrDie(file: string, text: string): Uint8Array {
  const r = compilePolicy(text);
  if (!r.binary) throw new Error(`${file} does not compile: ${JSON.stringify(r.diagnostics.slice(0, 3))}`);
  return r.binary;
}

// ---------------------------------------------------------------------------
// Part 1: bytes

function sizes(items: Item[]): void {
  console.log("\n== Policy size: binary vs minified JSON (Node) ==\n");
  console.log(`${pad("policy", 28, true)} ${pad("JSON", 6)} ${pad("binary", 6)} ${pad("ratio", 6)}  ${pad("JSON-rest", 9)} ${pad("bin-rest", 8)} ${pad("rest", 6)}  certs`);
  let totalJson = 0, totalBin = 0, totalJsonRest = 0, totalBinRest = 0;
  let certsOk = true;
  const certProblems: string[] = [];
  for (const it of items) {
    const json = JSON.parse(it.text) as { certs?: Record<string, string>[] };
    const minified = JSON.stringify(json).length;
    let b64 = 0;
    for (const o of json.certs ?? []) for (const v of Object.values(o)) b64 += v.length + 2;
    const p = Policy.open(it.binary).verify();
    let der = 0;
    let derUnique = 0;
    const seen = new Set<string>();
    for (let i = 0; i < p.certCount; i++) {
      const d = p.cert(i).der;
      der += d.length + ENTRY_SIZE[S_CERTS]!;
      const key = base64Encode(d);
      if (!seen.has(key)) {
        seen.add(key);
        derUnique += d.length;
        const n = occurrences(it.binary, d);
        if (n !== 1) certProblems.push(`${it.name}: cert ${p.cert(i).name} DER found ${n} times`);
      }
    }
    // DER section = the DER of each certificate once, nothing else
    const derSection = it.binary.length - sectionStart(it.binary, S_DER);
    if (derSection !== derUnique) certProblems.push(`${it.name}: DER section ${derSection} bytes, certificates ${derUnique}`);
    if (seen.size !== p.certCount) certProblems.push(`${it.name}: ${p.certCount - seen.size} duplicate certificate(s)`);
    const jsonRest = minified - b64;
    const binRest = it.binary.length - der;
    totalJson += minified; totalBin += it.binary.length; totalJsonRest += jsonRest; totalBinRest += binRest;
    console.log(`${pad(it.name, 28, true)} ${pad(minified, 6)} ${pad(it.binary.length, 6)} ${pad(pct(it.binary.length, minified), 6)}  ${pad(jsonRest, 9)} ${pad(binRest, 8)} ${pad(pct(binRest, jsonRest), 6)}  ${p.certCount}`);
    bench({ name: `policy-bytes-${it.name}`, unit: "bytes", ours: it.binary.length, peer: "json-minified", theirs: minified });
  }
  console.log(`${pad("TOTAL", 28, true)} ${pad(totalJson, 6)} ${pad(totalBin, 6)} ${pad(pct(totalBin, totalJson), 6)}  ${pad(totalJsonRest, 9)} ${pad(totalBinRest, 8)} ${pad(pct(totalBinRest, totalJsonRest), 6)}`);
  bench({ name: "policy-bytes-corpus", unit: "bytes", ours: totalBin, peer: "json-minified", theirs: totalJson });
  const rest = Math.round((totalBinRest / totalJsonRest) * 1000) / 10;
  bench({ name: "policy-rest-ratio-corpus", unit: "percent", ours: rest, peer: "budget", theirs: REST_BUDGET });
  certsOk = certProblems.length === 0;
  console.log("");
  goal(certsOk, `each certificate costs its DER size + ${ENTRY_SIZE[S_CERTS]} bytes (DER stored once, no other framing)`, certProblems.join("; "));
  goal(rest <= REST_BUDGET, `corpus "rest" ratio ${rest}% <= ${REST_BUDGET}%`);
}

const pct = (a: number, b: number): string => `${((a / b) * 100).toFixed(1)}%`;
const failures: string[] = [];

function goal(ok: boolean, what: string, detail = ""): void {
  console.log(`${ok ? "PASS" : "FAIL"}  ${what}${detail ? `: ${detail}` : ""}`);
  if (!ok) failures.push(what);
}

// ---------------------------------------------------------------------------
// Part 2: XS heap slots and compute

interface Measure {
  /** Slots retained by the first operation in a fresh worker (one-time costs included). */
  freshSlots: number;
  /**
   * Slots retained by each round. After the first they understate the
   * reader's share: its one-entry bounds cache holds the previous round's
   * DataView, freed when the next open replaces it. Not reported.
   */
  slots: number[];
  compute: number[];
  /** Wall time per operation, µs, over a loop of TIMING_LOOP inside XS (GC included). */
  micros: number;
}

const TIMING_LOOP = 1000;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * One fresh worker: the bundle, then the input (not counted), then ROUNDS x
 * [operation, cleanup], each its own crank, then a timing loop. Globals are
 * created up front so that assigning them costs no property slot inside a
 * measured crank; runInXS measures live slots with a gc() after every crank.
 */
async function measure(bundle: string, setup: string, op: string, cleanup: string): Promise<Measure> {
  const scripts = [bundle, `globalThis.st = undefined; globalThis.policy = undefined; ${setup}`];
  for (let i = 0; i < ROUNDS; i++) scripts.push(op, cleanup);
  scripts.push(`const t0 = performance.now(); for (let i = 0; i < ${TIMING_LOOP}; i++) { ${op} }
    send(String((performance.now() - t0) * 1000 / ${TIMING_LOOP})); ${cleanup}`);
  const { steps, messages } = await runInXS(scripts, { meteringLimit: 1e9 });
  const out: Measure = { freshSlots: 0, slots: [], compute: [], micros: Number(messages[0]) };
  for (let i = 0; i < ROUNDS; i++) {
    const before = steps[1 + 2 * i]!;
    const after = steps[2 + 2 * i]!;
    out.slots.push(after.liveSlots - before.liveSlots);
    out.compute.push(after.compute);
  }
  out.freshSlots = out.slots[0]!;
  return out;
}

async function openCost(items: Item[]): Promise<void> {
  console.log("\n== Open + look up one streamtype on XS (xsnap meter) ==");
  console.log("slots: heap slots retained by the operation, run first thing in a fresh worker (so one-time costs count:");
  console.log("  the reader's cached section bounds, JSON.parse's new property names); each side's 'st' global exists beforehand;");
  console.log(`compute: median computrons of ${ROUNDS} rounds; time: µs per operation over a ${TIMING_LOOP}-fold loop in XS, GC included\n`);
  const bundle = await bundleForXS(entry, { globalName: "lib" });
  console.log(`${pad("policy", 26, true)} ${pad("st", 3)} ${pad("bin slots", 9)} ${pad("JSON slots", 10)} ${pad("bin cpt", 8)} ${pad("JSON cpt", 8)} ${pad("cpt x", 6)} ${pad("bin µs", 7)} ${pad("JSON µs", 8)} ${pad("time x", 6)}`);
  let worstSlots = 0;
  let worstName = "";
  const moreCompute: string[] = [];
  const slower: string[] = [];
  for (const it of items) {
    const p = Policy.open(it.binary);
    const name = JSON.stringify(p.streamtypeAt(p.streamtypeCount >> 1).name);
    const ours = await measure(bundle, `globalThis.bytes = lib.base64Decode(${JSON.stringify(base64Encode(it.binary))});`,
      `globalThis.st = lib.Policy.open(bytes).streamtype(${name});`,
      `globalThis.st = undefined;`);
    const theirs = await measure(bundle, `globalThis.text = ${JSON.stringify(it.text)};`,
      `globalThis.policy = JSON.parse(text); globalThis.st = policy.s.find((o) => ${name} in o)[${name}];`,
      `globalThis.policy = undefined; globalThis.st = undefined;`);
    const oc = median(ours.compute), tc = median(theirs.compute);
    const worst = ours.freshSlots;
    if (worst > worstSlots) { worstSlots = worst; worstName = it.name; }
    if (oc >= tc) moreCompute.push(it.name);
    if (ours.micros >= theirs.micros) slower.push(it.name);
    console.log(`${pad(it.name, 26, true)} ${pad(p.streamtypeCount, 3)} ${pad(ours.freshSlots, 9)} ${pad(theirs.freshSlots, 10)} ` +
      `${pad(oc, 8)} ${pad(tc, 8)} ${pad((tc / oc).toFixed(2), 6)} ${pad(ours.micros.toFixed(1), 7)} ${pad(theirs.micros.toFixed(1), 8)} ${pad((theirs.micros / ours.micros).toFixed(1), 6)}`);
    bench({ name: `policy-open-slots-${it.name}`, unit: "slots", ours: ours.freshSlots, peer: "JSON.parse", theirs: theirs.freshSlots });
    bench({ name: `policy-open-compute-${it.name}`, unit: "computrons", ours: oc, peer: "JSON.parse", theirs: tc });
    bench({ name: `policy-open-time-${it.name}`, unit: "us", ours: round1(ours.micros), peer: "JSON.parse", theirs: round1(theirs.micros) });
    if (it.name === "300st") bench({ name: "policy-open-slots-300st", unit: "slots", ours: ours.freshSlots, peer: "budget", theirs: SLOT_BUDGET });
  }
  console.log("");
  goal(worstSlots <= SLOT_BUDGET, `open + lookup retains <= ${SLOT_BUDGET} slots whatever the policy size (worst: ${worstSlots}, ${worstName})`);
  goal(moreCompute.length === 0, "open + lookup costs fewer computrons than JSON.parse + find",
    moreCompute.length ? `not for ${moreCompute.join(", ")} (the meter charges native JSON.parse ~3 computrons per JSON value, interpreted code ~1 per bytecode)` : "");
  goal(slower.length === 0, "open + lookup takes less time on XS than JSON.parse + find", slower.length ? `not for ${slower.join(", ")}` : "");
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

async function main(): Promise<void> {
  const t0 = performance.now();
  const corpus = corpusPolicies();
  const short = shortNames(corpus.map((c) => c.file));
  const items: Item[] = corpus.map(({ file, text }, i) => ({ name: short[i]!, file, text, binary: compileOrDie(file, text) }));
  const names = new Set<string>();
  for (const it of items) {
    if (names.has(it.name)) throw new Error(`duplicate short name ${it.name}`);
    names.add(it.name);
  }
  sizes(items);
  const big = generatedPolicy(300);
  await openCost([...items, { name: "300st", file: "(generated)", text: big, binary: compileOrDie("300st", big) }]);
  console.log(`\n${failures.length ? `${failures.length} goal(s) missed` : "all goals met"} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  // a missed goal is a finding to report, not a crash: the exit status stays 0
}

await main();
