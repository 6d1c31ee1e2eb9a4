// XS footprint benchmark (issue 4's budgets): the runtime INSIDE the real XS
// engine (xsnap), the real bundle of its modules (src/ss, src/protocols/h1
// with src/wire/http1, src/policy, hosts/xsnap/xs-host), its sockets real
// Node sockets through the bridge (hosts/xsnap/bridge.ts).
// Run: npm run bench:xs (build + node dist/bench/xs.bench.js).
//
//   a. heap after boot with policies/demo.json open: the runtime's modules
//      (the bundle evaluated) + boot (XSBridgeHost, Policy.open, SecureStreams),
//      over an empty worker; with a breakdown by layer
//   b. heap per idle h1 stream (created, never connected), over N streams
//   c. live-heap high-water during a 1 MB and a 4 MB GET from a loopback
//      server (gc() at the end of every crank), over the figure before the GET
//   d. computrons per h1 transaction on a kept-alive connection (small GET),
//      and where they go (policy reads, request encoding, response parsing)
// plus the XS cost model these figures follow (slots per function, per
// private method, ...), which docs/footprint.md explains.
//
// Slots: currentHeapCount after gc(). xsnap is a 64-bit build (32-byte
// slots); the ESP32's XS has 16-byte slots, so "ESP32 bytes" = 16 x slots
// (+ chunks where shown). "chunks": snapshot bytes that are not slots
// (strings, ArrayBuffer data, bytecode, array items), as xsnap counts them.
// xsnap keeps one slot (64 bytes) per evaluated script: FootprintWorker
// takes it out, and after boot drives XS with messages instead.
//
// Machine-readable: `BENCH {json}` lines, "peer":"budget" with the budget as
// `theirs`, ratio = theirs/ours (>= 1: within budget).

import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";
import type { Crank } from "../hosts/xsnap/bridge.js";
import { State } from "../src/ss/states.js";
import { SecureStreams } from "../src/ss/context.js";
import { Policy, StreamType } from "../src/policy/reader.js";
import { createH1Binding } from "../src/protocols/h1.js";
import { NodeHost } from "../hosts/node/host.js";
import {
  FootprintWorker, footprintBundles, startLoopbackServer, loopbackPolicy, compileOrThrow, chunkBytes, esp32Bytes,
  median, MB, SLOT_BYTES_ESP32, XS_MISSING_GLOBALS, type HeapDelta, type LoopbackServer,
} from "../test-host/support/xs-footprint.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, "..", "..");
const dist = path.join(here, "..");

/** Budgets (issue 4). */
const BOOT_BUDGET = 1500; // slots: runtime + demo policy open
const IDLE_BUDGET = 128; // slots per idle stream
const HIGHWATER_NOISE = 64; // slots: 4 MB high-water <= 1 MB high-water + this
/**
 * Computrons per small h1 transaction on a kept-alive connection. No budget
 * was given; this one is what a transaction costs once the binding stops
 * re-reading the policy (17 reads of ~1,000 computrons each per transaction
 * today, section d), with room to spare. At the 2-5 M computrons/s we
 * estimate (not measured) for XS on a 240 MHz ESP32, 25,000 is 5-12 ms:
 * under a Wi-Fi round trip, so the JS does not set the pace of a request.
 */
const TXN_BUDGET = 25000;

const IDLE_STREAMS = 100;
const DOWNLOAD_ROUNDS = 2;
const TXN_WARMUP = 5;
const TXN_ROUNDS = 21;

function bench(line: { name: string; unit: string; ours: number; peer: string; theirs: number }): void {
  const ratio = Math.round((line.theirs / line.ours) * 1000) / 1000;
  console.log(`BENCH ${JSON.stringify({ ...line, ratio })}`);
}

const failures: string[] = [];
function goal(ok: boolean, what: string, detail = ""): void {
  console.log(`${ok ? "PASS" : "FAIL"}  ${what}${detail ? `: ${detail}` : ""}`);
  if (!ok) failures.push(what);
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;
const pad = (s: string | number, n: number, right = false): string => (right ? String(s).padEnd(n) : String(s).padStart(n));

function row(what: string, d: HeapDelta, note = ""): void {
  console.log(`${pad(what, 52, true)} ${pad(d.slots, 7)} ${pad(kb(SLOT_BYTES_ESP32 * d.slots), 9)} ${pad(kb(chunkBytes(d)), 9)} ${pad(kb(esp32Bytes(d)), 9)}  ${note}`);
}

function header(): void {
  console.log(`${pad("", 52, true)} ${pad("slots", 7)} ${pad("ESP32", 9)} ${pad("chunks", 9)} ${pad("ESP32+ch", 9)}`);
}

// ---------------------------------------------------------------------------
// a + b: boot and idle streams (demo policy)

interface BootFigures {
  policyBytes: HeapDelta;
  modules: HeapDelta;
  boot: HeapDelta;
  bootHost: HeapDelta;
  bootPolicy: HeapDelta;
  bootContext: HeapDelta;
  total: HeapDelta;
  firstStream: HeapDelta;
  perStream: HeapDelta;
}

async function bootAndIdle(runtime: string, harness: string): Promise<BootFigures> {
  const demo = compileOrThrow(fs.readFileSync(path.join(root, "policies", "demo.json"), "utf8"), "policies/demo.json");
  const w = await FootprintWorker.start();
  try {
    const empty = await w.heap();
    await w.setPolicyBytes(demo);
    const withBytes = await w.heap();
    await w.evaluate(harness);
    const withHarness = await w.heap();
    await w.evaluate(runtime);
    const withModules = await w.heap();
    const [withHost, withPolicy, booted] = await w.bootInSteps();
    await w.post("i", 1, "demo_get");
    const one = await w.heap();
    await w.post("i", IDLE_STREAMS, "demo_get");
    const many = await w.heap();
    const streams = await w.stats<{ streams: number }>();
    if (streams.streams !== IDLE_STREAMS + 1) throw new Error(`expected ${IDLE_STREAMS + 1} streams, XS has ${streams.streams}`);
    const modules = w.delta(withHarness, withModules);
    const boot = w.delta(withModules, booted!);
    const perStreamTotal = w.delta(one, many);
    const f: BootFigures = {
      policyBytes: w.delta(empty, withBytes),
      modules,
      boot,
      bootHost: w.delta(withModules, withHost!),
      bootPolicy: w.delta(withHost!, withPolicy!),
      bootContext: w.delta(withPolicy!, booted!),
      total: { slots: modules.slots + boot.slots, bytes: modules.bytes + boot.bytes },
      firstStream: w.delta(booted!, one),
      perStream: { slots: perStreamTotal.slots / IDLE_STREAMS, bytes: perStreamTotal.bytes / IDLE_STREAMS },
    };
    console.log(`\n== a. Boot with policies/demo.json open (${demo.length}-byte policy), over an empty worker (${empty.slots} slots) ==\n`);
    header();
    row("policy bytes (in flash on a device: not counted)", f.policyBytes);
    row("runtime modules (the bundle evaluated)", f.modules, "all in RAM: xsnap cannot preload");
    row("boot: host + Policy.open + SecureStreams", f.boot);
    row("  XSBridgeHost (xsnap's host), installed", f.bootHost);
    row("  Policy.open(demo)", f.bootPolicy);
    row("  SecureStreams with h1", f.bootContext);
    row("runtime + policy open (modules + boot)", f.total, `budget ${BOOT_BUDGET} slots`);
    console.log(`\n== b. Idle h1 streams (demo_get, created, never connected) ==\n`);
    header();
    row("first stream (one-time costs included)", f.firstStream);
    row(`per stream, over ${IDLE_STREAMS} more`, { slots: round1(f.perStream.slots), bytes: round1(f.perStream.bytes) }, `budget ${IDLE_BUDGET} slots`);
    return f;
  } finally {
    await w.close();
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

// ---------------------------------------------------------------------------
// a (continued): what the modules cost, layer by layer

interface Layer {
  readonly name: string;
  /** Imports to keep reachable: [module path under dist, names]. */
  readonly imports: readonly (readonly [string, readonly string[]])[];
}

const POLICY: Layer["imports"][number] = ["src/policy/reader.js", ["Policy"]];
const SS: Layer["imports"] = [["src/ss/context.js", ["SecureStreams"]], ["src/ss/states.js", ["State", "Ret", "RxFlag"]]];
const H1: Layer["imports"][number] = ["src/protocols/h1.js", ["createH1Binding"]];
const XSHOST: Layer["imports"][number] = ["hosts/xsnap/xs-host.js", ["XSBridgeHost"]];

/** Cumulative: each layer's bundle holds the ones before it, so differences are what a layer adds. */
const LAYERS: readonly Layer[] = [
  { name: "src/policy/keys.ts tables (STREAMTYPE_KEYS, KEY_ID)", imports: [["src/policy/keys.js", ["STREAMTYPE_KEYS", "KEY_ID"]]] },
  { name: "policy reader (src/policy + src/util/utf8)", imports: [POLICY] },
  { name: "+ SS core (src/ss)", imports: [POLICY, ...SS] },
  { name: "+ h1 binding and http1 codec", imports: [POLICY, ...SS, H1] },
  { name: "+ XS bridge host (= the runtime bundle)", imports: [POLICY, ...SS, H1, XSHOST] },
];

async function layers(): Promise<HeapDelta[]> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xs-bench-"));
  const out: HeapDelta[] = [];
  try {
    for (const [i, layer] of LAYERS.entries()) {
      const names: string[] = [];
      const lines = layer.imports.map(([file, imported]) => {
        names.push(...imported);
        return `import { ${imported.join(", ")} } from ${JSON.stringify(path.join(dist, file))};`;
      });
      const entry = path.join(tmp, `layer${i}.js`);
      fs.writeFileSync(entry, `${lines.join("\n")}\nglobalThis.layer = { ${names.join(", ")} };\n`);
      const bundle = await bundleForXS(entry, { forbidGlobals: XS_MISSING_GLOBALS });
      const w = await FootprintWorker.start();
      try {
        const a = await w.heap();
        await w.evaluate(bundle);
        out.push(w.delta(a, await w.heap()));
      } finally {
        await w.close();
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`\n== a (continued). What the modules cost (each layer a fresh worker; a layer's bundle holds the ones above it) ==\n`);
  header();
  row(LAYERS[0]!.name, out[0]!, "(alone, with keys.ts's helper)");
  for (let i = 1; i < LAYERS.length; i++) {
    const prev = i > 1 ? out[i - 1]! : { slots: 0, bytes: 0 };
    const d = { slots: out[i]!.slots - prev.slots, bytes: out[i]!.bytes - prev.bytes };
    row(LAYERS[i]!.name, d, `cumulative ${out[i]!.slots} slots`);
  }
  return out;
}

// ---------------------------------------------------------------------------
// c: download high-water

interface Download {
  size: number;
  pre: number;
  highWater: number;
  /** Live slots once the GET is over (connection kept alive), over pre. */
  after: number;
  /** Live slots after the stream is destroyed, over pre. */
  closed: number;
  cranks: number;
  rx: { bytes: number; pieces: number; largest: number };
  ms: number;
}

async function downloads(harness: string, runtime: string, server: LoopbackServer): Promise<Download[]> {
  const out: Download[] = [];
  for (let round = 0; round < DOWNLOAD_ROUNDS; round++) {
    for (const size of [MB, 4 * MB]) {
      // A fresh worker for each GET: XS keeps the last instance of a class with private
      // methods alive until the next one is made, so in a worker that had a connection
      // before, the figure before the GET would already hold the previous H1Connection.
      let recording: number[] | undefined;
      const w = await FootprintWorker.start({ onCrank: (c: Crank) => recording?.push(c.heapCount) });
      try {
        await w.setPolicyBytes(loopbackPolicy(server.port));
        await w.evaluate(harness);
        await w.evaluate(runtime);
        await w.boot();
        await w.post("m", 1); // gc() at the end of every crank: each crank's heap count is its live slots
        await w.post("o", undefined, size === MB ? "dl_1m" : "dl_4m");
        const pre = await w.heap();
        const done = w.next((c) => c === State.QOS_ACK_REMOTE || c === State.QOS_NACK_REMOTE || c === State.ALL_RETRIES_FAILED, 60000);
        const cranks: number[] = (recording = []);
        const t0 = performance.now();
        await w.post("t");
        const state = await done;
        await w.bridge.idle();
        recording = undefined;
        const ms = performance.now() - t0;
        if (state !== State.QOS_ACK_REMOTE) throw new Error(`download of ${size} bytes ended in state ${state}; logs: ${w.logs.join(" | ")}`);
        const after = await w.heap();
        const { rx } = await w.stats<{ rx: Download["rx"] }>();
        await w.post("c");
        const closed = await w.heap();
        out.push({
          size, pre: pre.slots, highWater: Math.max(...cranks) - pre.slots, after: after.slots - pre.slots,
          closed: closed.slots - pre.slots, cranks: cranks.length, rx, ms,
        });
      } finally {
        await w.close();
      }
    }
  }
  console.log(`\n== c. Live-heap high-water during a GET from a loopback server (gc() after every crank) ==\n`);
  console.log(`${pad("GET", 6, true)} ${pad("cranks", 6)} ${pad("rx pieces", 9)} ${pad("largest", 7)} ${pad("pre", 6)} ${pad("high-water", 10)} ${pad("ESP32", 8)} ${pad("kept-alive", 10)} ${pad("destroyed", 9)} ${pad("ms", 6)}`);
  for (const d of out) {
    console.log(`${pad(`${d.size / MB} MB`, 6, true)} ${pad(d.cranks, 6)} ${pad(d.rx.pieces, 9)} ${pad(d.rx.largest, 7)} ${pad(d.pre, 6)} ${pad(`+${d.highWater}`, 10)} ${pad(kb(SLOT_BYTES_ESP32 * d.highWater), 8)} ${pad(`+${d.after}`, 10)} ${pad(`${d.closed >= 0 ? "+" : ""}${d.closed}`, 9)} ${pad(Math.round(d.ms), 6)}`);
  }
  console.log(`(a fresh worker each; slots over the figure with the stream created, before requestTx; "kept-alive": after the GET,`);
  console.log(` connection still open; "destroyed": after destroy(), what XS keeps of the last stream and connection until the next`);
  console.log(` ones are made. The body arrives as chunks (ArrayBuffers of up to 64 KB from the bridge), freed crank by crank.)`);
  for (const d of out) if (d.rx.bytes !== d.size) throw new Error(`GET of ${d.size} bytes delivered ${d.rx.bytes}`);
  return out;
}

// ---------------------------------------------------------------------------
// d: compute per transaction

interface Txn {
  total: number[];
  request: number[];
  response: number[];
  cranks: number[];
  noop: number;
}

async function transactions(harness: string, runtime: string, server: LoopbackServer): Promise<Txn> {
  let recording: Crank[] | undefined;
  const w = await FootprintWorker.start({ onCrank: (c) => recording?.push(c) });
  const out: Txn = { total: [], request: [], response: [], cranks: [], noop: 0 };
  try {
    await w.setPolicyBytes(loopbackPolicy(server.port));
    await w.evaluate(harness);
    await w.evaluate(runtime);
    await w.boot();
    await w.post("o", undefined, "small");
    const noops: number[] = [];
    for (let i = 0; i < 5; i++) noops.push(await w.post("n"));
    out.noop = median(noops);
    const served = server.requests();
    for (let i = 0; i < 1 + TXN_WARMUP + TXN_ROUNDS; i++) {
      const done = w.next((c) => c === State.QOS_ACK_REMOTE || c === State.QOS_NACK_REMOTE || c === State.ALL_RETRIES_FAILED || c === State.UNREACHABLE);
      const cranks: Crank[] = (recording = []);
      await w.post("t");
      const state = await done;
      await w.bridge.idle();
      recording = undefined;
      if (state !== State.QOS_ACK_REMOTE) throw new Error(`transaction ended in state ${state}`);
      if (i <= TXN_WARMUP) continue; // the first connects; then warm-up
      if (cranks.some((c) => c.kind === "connected")) throw new Error("the connection was not kept alive");
      const sum = (xs: Crank[]) => xs.reduce((a, c) => a + c.compute, 0);
      out.request.push(sum(cranks.filter((c) => c.kind === "message")));
      out.response.push(sum(cranks.filter((c) => c.kind !== "message")));
      out.total.push(sum(cranks));
      out.cranks.push(cranks.length);
    }
    if (server.requests() - served !== 1 + TXN_WARMUP + TXN_ROUNDS) throw new Error("the server did not see one request per transaction");
    await w.post("c");
  } finally {
    await w.close();
  }
  console.log(`\n== d. Computrons per h1 transaction: GET /small ("hello") on a kept-alive connection, median of ${TXN_ROUNDS} after ${TXN_WARMUP} warm-up ==\n`);
  console.log(`request crank (requestTx: request head built and written)   ${pad(median(out.request), 7)}`);
  console.log(`response crank(s) (parse, onRx x2, QOS_ACK_REMOTE)         ${pad(median(out.response), 7)}`);
  console.log(`transaction                                                ${pad(median(out.total), 7)}   (${median(out.cranks)} cranks; min ${Math.min(...out.total)}, max ${Math.max(...out.total)})`);
  console.log(`(includes delivering each message: a no-op message costs ${out.noop}; the harness's handlers and its report to the parent are a few dozen more)`);
  return out;
}

// ---------------------------------------------------------------------------
// d (continued): where a transaction's computrons go

/** The bytes of the loopback server's answer to GET /small, as the runtime receives them. */
async function smallResponse(port: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    // kept alive, as the runtime's connections are: the parser then waits for the next response
    const socket = net.connect(port, "127.0.0.1", () => socket.write("GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    socket.on("data", (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.toString("latin1").endsWith("\r\n\r\nhello")) {
        socket.destroy();
        resolve(new Uint8Array(all));
      }
    });
    socket.on("error", reject);
  });
}

interface Parts {
  readonly [label: string]: number;
}

async function computeParts(server: LoopbackServer): Promise<Parts> {
  const response = await smallResponse(server.port);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "xs-bench-"));
  try {
    const entry = path.join(tmp, "parts.js");
    fs.writeFileSync(entry, [
      `import { Policy } from ${JSON.stringify(path.join(dist, "src/policy/reader.js"))};`,
      `import { Http1ResponseParser, encodeRequestHead } from ${JSON.stringify(path.join(dist, "src/wire/http1/index.js"))};`,
      "globalThis.parts = { Policy, Http1ResponseParser, encodeRequestHead };",
    ].join("\n"));
    const bundle = await bundleForXS(entry, { forbidGlobals: XS_MISSING_GLOBALS });
    const policy = loopbackPolicy(server.port);
    const N = 20;
    const script = `
      const p = parts.Policy.open(new Uint8Array([${policy.join(",")}]));
      const st = p.streamtype("small");
      const bytes = new Uint8Array([${response.join(",")}]);
      const parser = new parts.Http1ResponseParser({ onHead() {}, onBody() {}, onEnd() {} });
      const request = { method: "GET", path: "/small", host: "127.0.0.1:${server.port}", headers: [] };
      parser.push(bytes); st.string("http_method"); parts.encodeRequestHead(request); // warm
      // a StreamType keeps what it read: each timed read is on a fresh one, made beforehand
      const fresh = () => { const list = []; for (let i = 0; i < ${N}; i++) list.push(p.streamtype("small")); let k = 0; return () => list[k++]; };
      const absentString = fresh(), absentPairs = fresh(), presentString = fresh();
      const runs = [
        ["policy key read, absent (string)", () => absentString().string("http_auth_header")],
        ["policy key read, absent (pairs)", () => absentPairs().pairs("metadata")],
        ["policy key read, present (string)", () => presentString().string("http_method")],
        ["encodeRequestHead (GET, no headers)", () => parts.encodeRequestHead(request)],
        ["Http1ResponseParser.push (${response.length}-byte response)", () => parser.push(bytes)],
      ];
      const empty = () => {};
      for (const [label, f] of runs) {
        const t0 = meterNow();
        for (let i = 0; i < ${N}; i++) empty();
        const t1 = meterNow();
        for (let i = 0; i < ${N}; i++) f();
        const t2 = meterNow();
        send(JSON.stringify([label, Math.round(((t2 - t1) - (t1 - t0)) / ${N})]));
      }`;
    const { messages } = await runInXS([bundle, script]);
    return Object.fromEntries(messages.map((m) => JSON.parse(m) as [string, number]));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Policy reads (StreamType methods) during one kept-alive transaction of the
 * "small" streamtype, counted on Node (same code as in XS) by wrapping them.
 */
async function countPolicyReads(server: LoopbackServer): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let on = false;
  const proto = StreamType.prototype as unknown as Record<string, (key: string) => unknown>;
  const saved: [string, (key: string) => unknown][] = [];
  for (const m of ["string", "flag", "number", "pairs", "has"]) {
    const orig = proto[m]!;
    saved.push([m, orig]);
    proto[m] = function (this: unknown, key: string) {
      if (on) counts.set(`${m}(${key})`, (counts.get(`${m}(${key})`) ?? 0) + 1);
      return orig.call(this, key);
    };
  }
  const host = new NodeHost({ log: () => {} });
  const ss = new SecureStreams(host, Policy.open(loopbackPolicy(server.port)), { bindings: [createH1Binding()] });
  try {
    let acked: () => void = () => {};
    const stream = ss.create("small", { onState: (state) => void (state === State.QOS_ACK_REMOTE && acked()) });
    const transaction = () => new Promise<void>((resolve) => { acked = resolve; stream.requestTx(); });
    await transaction(); // connects
    on = true;
    await transaction();
    on = false;
  } finally {
    ss.destroyAll();
    for (const [m, orig] of saved) proto[m] = orig;
  }
  return counts;
}

function printParts(parts: Parts, reads: Map<string, number>): void {
  console.log(`\nwhere they go (each the mean of 20 calls in XS, loop overhead taken out):`);
  for (const [label, c] of Object.entries(parts)) console.log(`  ${pad(label, 52, true)} ${pad(c, 7)}`);
  const total = [...reads.values()].reduce((a, b) => a + b, 0);
  console.log(`  policy reads in one transaction (counted on Node, same code): ${total}`);
  console.log(`    ${[...reads].map(([k, n]) => (n > 1 ? `${k} x${n}` : k)).join(", ")}`);
}

// ---------------------------------------------------------------------------
// The XS cost model behind these figures (docs/footprint.md "What costs what")

interface Model {
  readonly [label: string]: number;
}

async function costModel(): Promise<Model> {
  const N = 100;
  const list = (f: (i: number) => string, sep = ",") => Array.from({ length: N }, (_, i) => f(i)).join(sep);
  const perItem = async (script: string): Promise<number> => {
    const { steps } = await runInXS(["globalThis.k = undefined;", script]);
    // N items in an array: the array's items are a chunk, not slots; the class of the instances is one-time
    return (steps[1]!.liveSlots - steps[0]!.liveSlots - 1) / N;
  };
  const instances = (members: string) =>
    `globalThis.k = (() => { class C { ${members} } const out = []; for (let i = 0; i < ${N}; i++) out.push(new C()); return out; })();`;
  const arrow = await perItem(`globalThis.k = [${list((i) => `(a) => a + ${i}`)}];`);
  const declaration = await perItem(`globalThis.k = (() => { ${list((i) => `function f${i}(a) { return a + ${i}; }`, "\n")} return [${list((i) => `f${i}`)}]; })();`);
  const uses10 = await perItem(`globalThis.k = (() => { ${Array.from({ length: 10 }, (_, j) => `const c${j} = ${j};`).join(" ")} return [${list(() => "(a) => a + c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9")}]; })();`);
  const object4 = await perItem(`globalThis.k = [${list((i) => `{ a: ${i}, b: 1, c: 2, d: 3 }`)}];`);
  const mapEntry = await perItem(`globalThis.k = new Map([${list((i) => `["k${i}", ${i}]`)}]);`);
  const methods = (prefix: string) => Array.from({ length: 20 }, (_, j) => `${prefix}m${j}() { return ${j}; }`).join(" ");
  const private20 = await perItem(instances(methods("#")));
  const public20 = await perItem(instances(methods("")));
  const out: Record<string, number> = {
    "arrow function or method": round1(arrow),
    "function declaration (with its prototype object)": round1(declaration),
    "+ each module-level variable a function uses": round1((uses10 - arrow) / 10),
    "object with 4 properties": round1(object4),
    "Map entry": round1(mapEntry),
    "instance of a class with 20 public methods": round1(public20),
    "instance of a class with 20 private methods": round1(private20),
  };
  // the most recent instance of a class with private methods outlives its last reference
  const { messages } = await runInXS([
    "globalThis.C = class { #m() { return 1; } }; globalThis.D = class { m() { return 1; } }; globalThis.wc = new WeakRef(new C()); globalThis.wd = new WeakRef(new D());",
    "gc();",
    "send(String(wc.deref() !== undefined)); send(String(wd.deref() !== undefined));",
  ]);
  out["last instance kept: class with a private method (1 = yes)"] = messages[0] === "true" ? 1 : 0;
  out["last instance kept: class without (1 = yes)"] = messages[1] === "true" ? 1 : 0;
  console.log(`\n== The XS cost model (xsnap, slots) ==\n`);
  for (const [label, v] of Object.entries(out)) console.log(`  ${pad(label, 60, true)} ${pad(v, 6)}`);
  return out;
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const t0 = performance.now();
  console.log(`XS footprint benchmark — ${new Date().toISOString().slice(0, 10)}, xsnap (XS 13.3, 64-bit: 32-byte slots); ESP32 figures at ${SLOT_BYTES_ESP32} bytes a slot`);
  const { runtime, harness } = await footprintBundles();
  const boot = await bootAndIdle(runtime, harness);
  const layer = await layers();
  await costModel();
  const server = await startLoopbackServer();
  let dl: Download[];
  let txn: Txn;
  try {
    dl = await downloads(harness, runtime, server);
    txn = await transactions(harness, runtime, server);
    printParts(await computeParts(server), await countPolicyReads(server));
  } finally {
    server.close();
  }

  const hw = (size: number) => Math.max(...dl.filter((d) => d.size === size).map((d) => d.highWater));
  const hw1 = hw(MB);
  const hw4 = hw(4 * MB);
  const largest = Math.max(...dl.map((d) => d.rx.largest));
  const modulesOnly = layer[layer.length - 1]!;
  const policyLayer = layer[1]!;

  console.log(`\n== Summary ==\n`);
  console.log(`runtime + demo policy open: ${boot.total.slots} slots (${kb(SLOT_BYTES_ESP32 * boot.total.slots)} on the ESP32) + ${kb(chunkBytes(boot.total))} chunks`);
  console.log(`  of which module objects ${boot.modules.slots} slots (layer bundles: ${modulesOnly.slots}, policy layer ${policyLayer.slots}); boot instances ${boot.boot.slots} slots`);
  console.log(`  manifest.json preloads every runtime module: on the device the module objects are in flash, and the boot`);
  console.log(`  instances (${boot.boot.slots} slots, ${kb(SLOT_BYTES_ESP32 * boot.boot.slots)}) stay in RAM, plus RAM aliases of preloaded state written at run time`);
  console.log(`idle stream: ${round1(boot.perStream.slots)} slots (${Math.round(SLOT_BYTES_ESP32 * boot.perStream.slots)} bytes on the ESP32)`);
  console.log(`download high-water: 1 MB +${hw1}, 4 MB +${hw4} slots (${kb(SLOT_BYTES_ESP32 * hw4)} on the ESP32); rx pieces <= ${largest} bytes`);
  console.log(`transaction: ${median(txn.total)} computrons`);
  console.log("");

  bench({ name: "xs-runtime-boot-slots", unit: "slots", ours: boot.total.slots, peer: "budget", theirs: BOOT_BUDGET });
  bench({ name: "xs-runtime-boot-instances-slots", unit: "slots", ours: boot.boot.slots, peer: "budget", theirs: BOOT_BUDGET });
  bench({ name: "xs-idle-stream-slots", unit: "slots", ours: round1(boot.perStream.slots), peer: "budget", theirs: IDLE_BUDGET });
  bench({ name: "xs-download-highwater-4mb-slots", unit: "slots", ours: hw4, peer: "budget", theirs: hw1 + HIGHWATER_NOISE });
  bench({ name: "xs-h1-transaction-compute", unit: "computrons", ours: median(txn.total), peer: "budget", theirs: TXN_BUDGET });
  console.log("");
  goal(boot.total.slots < BOOT_BUDGET, `runtime + policy open < ${BOOT_BUDGET} slots, as measured (every module in RAM)`,
    `${boot.total.slots} slots; the module objects alone are ${boot.modules.slots} (see docs/footprint.md: preload moves them to flash)`);
  goal(boot.boot.slots < BOOT_BUDGET, `boot instances (what stays in RAM with every module preloaded) < ${BOOT_BUDGET} slots`, `${boot.boot.slots} slots`);
  goal(boot.perStream.slots < IDLE_BUDGET, `idle stream < ${IDLE_BUDGET} slots`, `${round1(boot.perStream.slots)} slots`);
  goal(hw4 <= hw1 + HIGHWATER_NOISE, `4 MB high-water <= 1 MB high-water + ${HIGHWATER_NOISE} slots`, `${hw4} vs ${hw1}`);
  goal(largest <= 4096, "rx pieces <= 4096 bytes", `largest ${largest}`);
  goal(median(txn.total) <= TXN_BUDGET, `h1 transaction <= ${TXN_BUDGET} computrons`, `${median(txn.total)}`);
  console.log(`\n${failures.length ? `${failures.length} goal(s) missed` : "all goals met"} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  // a missed goal is a finding to report, not a crash: the exit status stays 0
}

await main();
