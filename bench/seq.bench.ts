// Sequential transactions, a new Secure Stream for each (create, requestTx,
// result, destroy), as an app that wakes up and asks for one thing at a
// time. Run: npm run bench:seq (build + node dist/bench/seq.bench.js).
//
// Cases: GET of 4 KiB and of 1 MiB, plain and over TLS 1.2 (the server is
// held to TLS 1.2, the device's only version, for every client), against
// Node's http/https servers in a child process (with the server in this
// process its work would be added to every client's time). Clients:
//
//   ours         createH1Binding() defaults: an idle connection is kept for
//                the next stream (and the Node host resumes TLS sessions)
//   ours-fresh   createH1Binding({ idleMs: 0 }) on a host that resumes no
//                TLS session: a full connection per stream
//   ours-resume  TLS cases only: no connection reuse, TLS sessions resumed
//   node:http    http.get / https.get with agent: false (a connection each)
//   undici       a Client with keep-alive (one connection, pipelining 1)
//
// Each round runs every client once, in an order that rotates from round to
// round, each after one untimed transaction (so a client that keeps
// connections starts with one, as in a running app); round 0 is a warm-up
// and not counted. Reported: medians over the rounds of transactions per
// second and of this process's CPU time (user + system) per transaction.
// Every body's length is checked.
//
// Then, on XS (xsnap): the computrons of one plain 4 KiB transaction on a
// new stream each, with reuse (create, requestTx, response, destroy).
//
// BENCH lines (ARCHITECTURE.md): txn/s ours/theirs, CPU ms theirs/ours, so
// that ratio >= 1 means we are better. The lws figures of issue 9 were not
// measured in this run (lws is not built here): those lines name them so.
// Options (environment): SEQ_BENCH_ROUNDS (default 5), SEQ_BENCH_SCALE
// (multiplies the transactions per round, default 1), SEQ_BENCH_CASES (a
// comma-separated subset of the case names), SEQ_BENCH_XS=0 to skip XS.

import { fork } from "node:child_process";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Client } from "undici";
import { NodeHost } from "../hosts/node/host.js";
import { SecureStreams } from "../src/ss/context.js";
import type { StreamHandlers } from "../src/ss/stream.js";
import { State, Ret, stateName } from "../src/ss/states.js";
import { createH1Binding, type H1BindingOptions } from "../src/protocols/h1.js";
import { Policy } from "../src/policy/reader.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { base64Encode } from "../src/util/base64.js";
import { testPki } from "../test-host/support/pki.js";
import { FootprintWorker, footprintBundles, startLoopbackServer, loopbackPolicy, median as xsMedian } from "../test-host/support/xs-footprint.js";
import type { Crank } from "../hosts/xsnap/bridge.js";
import { median, round3 } from "./stats.js";

const KB4 = 4096;
const MIB = 1024 * 1024;
const ROUNDS = Number(process.env.SEQ_BENCH_ROUNDS ?? 5);
const SCALE = Number(process.env.SEQ_BENCH_SCALE ?? 1);
const ONLY_CASES = process.env.SEQ_BENCH_CASES?.split(",");
const XS = process.env.SEQ_BENCH_XS !== "0";
/** Computrons per plain 4 KiB transaction on XS (issue 9). */
const XS_BUDGET = 12000;
const XS_WARMUP = 5;
const XS_ROUNDS = 21;

/** lws Secure Streams (C, OpenSSL), new stream per transaction: issue 9's table, same kind of machine, not this run. */
const LWS: Record<string, { rate: number; unit: string }> = {
  "seq-plain-4k": { rate: 3780, unit: "txn/s" },
  "seq-tls-4k": { rate: 408, unit: "txn/s" },
  "seq-plain-1m": { rate: 530, unit: "MB/s" },
  "seq-tls-1m": { rate: 170, unit: "MB/s" },
};

// ---------------------------------------------------------------------------
// The servers (child process)

function serve(): void {
  const bodies: Record<string, Buffer> = { "/4k": Buffer.alloc(KB4, 0x61), "/1m": Buffer.alloc(MIB, 0x62) };
  const handler: http.RequestListener = (req, res) => {
    const body = bodies[req.url ?? ""];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
    res.end(body);
  };
  process.once("message", ({ cert, key }: { cert: string; key: string }) => {
    const plain = http.createServer(handler);
    const secure = https.createServer({ cert, key, maxVersion: "TLSv1.2" }, handler);
    let connections = 0;
    for (const s of [plain, secure]) {
      s.keepAliveTimeout = 120_000;
      s.on("connection", () => connections++);
    }
    plain.listen(0, "127.0.0.1", () => secure.listen(0, "127.0.0.1", () => process.send!({
      plain: (plain.address() as AddressInfo).port, tls: (secure.address() as AddressInfo).port,
    })));
    process.on("message", (m: string) => {
      if (m === "stats") process.send!({ connections });
      if (m === "exit") {
        for (const s of [plain, secure]) s.closeAllConnections();
        process.exit(0);
      }
    });
  });
}

// ---------------------------------------------------------------------------
// Clients: run(case, n) makes one untimed transaction, then n timed ones.

interface Timing {
  readonly ms: number;
  readonly cpuMs: number;
}

interface Case {
  readonly name: string;
  readonly tls: boolean;
  readonly path: "/4k" | "/1m";
  readonly length: number;
  readonly n: number;
  readonly unit: "txn/s" | "MB/s";
}

type Run = (c: Case, n: number) => Promise<Timing>;

interface Peers {
  readonly ports: { plain: number; tls: number };
  readonly caPem: string;
  readonly caDer: Uint8Array;
}

function clock(): () => Timing {
  const start = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { ms: performance.now() - start, cpuMs: (used.user + used.system) / 1000 };
  };
}

/** Runs `one` 1 + n times in sequence (the first untimed); each resolves to the body length. */
async function sequence(c: Case, n: number, one: () => Promise<number>): Promise<Timing> {
  const check = (got: number) => {
    if (got !== c.length) throw new Error(`${c.name}: body of ${got} bytes, expected ${c.length}`);
  };
  check(await one());
  const stop = clock();
  for (let i = 0; i < n; i++) check(await one());
  return stop();
}

function oursClient(peers: Peers, binding: H1BindingOptions, resumeTls: boolean): Run {
  const st = (tls: boolean, path: string) => ({
    endpoint: "127.0.0.1", port: tls ? peers.ports.tls : peers.ports.plain, protocol: "h1", http_method: "GET", http_url: path,
    ...(tls ? { tls: true, tls_trust_store: "bench" } : {}),
  });
  const compiled = compilePolicy(JSON.stringify({
    certs: [{ bench_ca: base64Encode(peers.caDer) }],
    trust_stores: [{ name: "bench", stack: ["bench_ca"] }],
    s: [{ plain_4k: st(false, "/4k") }, { plain_1m: st(false, "/1m") }, { tls_4k: st(true, "/4k") }, { tls_1m: st(true, "/1m") }],
  }));
  if (!compiled.binary) throw new Error("bench policy does not compile");
  const host = new NodeHost({ log: (m) => process.stderr.write(`[ours] ${m}\n`), tlsResumption: resumeTls });
  const ss = new SecureStreams(host, Policy.open(compiled.binary), { bindings: [createH1Binding(binding)] });
  const handlers: StreamHandlers = {
    onState(state, _ack, stream) {
      const t = stream.user as { bytes: number; resolve(n: number): void; reject(e: Error): void };
      switch (state) {
        case State.CREATING: return stream.requestTx();
        case State.QOS_ACK_REMOTE: return Ret.DESTROY_ME;
        case State.DESTROYING: t.resolve(t.bytes); return Ret.OK;
        case State.POLL: case State.CONNECTING: case State.CONNECTED: case State.DISCONNECTED: return Ret.OK;
        default:
          t.reject(new Error(`ours: ${stateName(state)}`));
          return Ret.DESTROY_ME;
      }
    },
    onRx(payload, _flags, stream) {
      (stream.user as { bytes: number }).bytes += payload.length;
      return Ret.OK;
    },
  };
  return (c, n) => sequence(c, n, () => new Promise((resolve, reject) => {
    ss.create(`${c.tls ? "tls" : "plain"}_${c.path.slice(1)}`, handlers, { bytes: 0, resolve, reject });
  }));
}

function nodeHttpClient(peers: Peers): Run {
  return (c, n) => sequence(c, n, () => new Promise((resolve, reject) => {
    const done = (res: http.IncomingMessage) => {
      let bytes = 0;
      res.on("data", (chunk: Buffer) => (bytes += chunk.length));
      res.on("end", () => resolve(bytes));
      res.on("error", reject);
    };
    const req = c.tls
      ? https.get({ host: "127.0.0.1", port: peers.ports.tls, path: c.path, agent: false, ca: peers.caPem, servername: "localhost" }, done)
      : http.get({ host: "127.0.0.1", port: peers.ports.plain, path: c.path, agent: false }, done);
    req.on("error", reject);
  }));
}

function undiciClient(peers: Peers): Run {
  return async (c, n) => {
    const client = new Client(c.tls ? `https://127.0.0.1:${peers.ports.tls}` : `http://127.0.0.1:${peers.ports.plain}`, {
      pipelining: 1, keepAliveTimeout: 120_000, connect: c.tls ? { ca: peers.caPem, servername: "localhost" } : undefined,
    });
    try {
      return await sequence(c, n, async () => {
        const { body } = await client.request({ path: c.path, method: "GET" });
        let bytes = 0;
        for await (const chunk of body) bytes += (chunk as Buffer).length;
        return bytes;
      });
    } finally {
      await client.close();
    }
  };
}

// ---------------------------------------------------------------------------
// XS: computrons per plain 4 KiB transaction, a new stream each, with reuse

async function xsComputrons(): Promise<{ total: number[]; cranks: number[] }> {
  const server = await startLoopbackServer();
  const { runtime, harness } = await footprintBundles();
  let recording: Crank[] | undefined;
  const w = await FootprintWorker.start({ onCrank: (c) => recording?.push(c) });
  const out = { total: [] as number[], cranks: [] as number[] };
  try {
    await w.setPolicyBytes(loopbackPolicy(server.port));
    await w.evaluate(harness);
    await w.evaluate(runtime);
    await w.boot();
    for (let i = 0; i < 1 + XS_WARMUP + XS_ROUNDS; i++) {
      const cranks: Crank[] = (recording = []);
      const done = w.next((s) => s === State.QOS_ACK_REMOTE || s === State.QOS_NACK_REMOTE || s === State.ALL_RETRIES_FAILED || s === State.UNREACHABLE);
      await w.post("o", undefined, "get_4k");
      await w.post("t");
      const state = await done;
      await w.bridge.idle();
      await w.post("c");
      await w.bridge.idle();
      recording = undefined;
      if (state !== State.QOS_ACK_REMOTE) throw new Error(`XS transaction ended in state ${state}`);
      if (i <= XS_WARMUP) continue; // the first connects; then warm-up
      if (cranks.some((c) => c.kind === "connected")) throw new Error("XS: the stream did not get the idle connection");
      out.total.push(cranks.reduce((a, c) => a + c.compute, 0));
      out.cranks.push(cranks.length);
    }
    await w.post("x");
  } finally {
    await w.close();
    server.close();
  }
  return out;
}

// ---------------------------------------------------------------------------

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(3));

function bench(line: { name: string; unit: string; ours: number; peer: string; theirs: number; ratio: number }): void {
  console.log(`BENCH ${JSON.stringify({ ...line, ours: round3(line.ours), theirs: round3(line.theirs), ratio: round3(line.ratio) })}`);
}

async function main(): Promise<void> {
  const pki = testPki();
  const child = fork(fileURLToPath(import.meta.url), ["server"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  child.send({ cert: pki.server.chainPem, key: pki.server.keyPem });
  const ports = await new Promise<{ plain: number; tls: number }>((resolve) => child.once("message", resolve));
  const peers: Peers = { ports, caPem: pki.ca.certPem, caDer: pki.ca.certDer };
  const n = (k: number) => Math.max(1, Math.round(k * SCALE));
  const cases: Case[] = ([
    { name: "seq-plain-4k", tls: false, path: "/4k", length: KB4, n: n(1500), unit: "txn/s" },
    { name: "seq-tls-4k", tls: true, path: "/4k", length: KB4, n: n(300), unit: "txn/s" },
    { name: "seq-plain-1m", tls: false, path: "/1m", length: MIB, n: n(150), unit: "MB/s" },
    { name: "seq-tls-1m", tls: true, path: "/1m", length: MIB, n: n(60), unit: "MB/s" },
  ] as Case[]).filter((c) => !ONLY_CASES || ONLY_CASES.includes(c.name));
  const clients: [string, Run, boolean][] = [
    ["ours", oursClient(peers, {}, true), false],
    ["ours-fresh", oursClient(peers, { idleMs: 0 }, false), false],
    ["ours-resume", oursClient(peers, { idleMs: 0 }, true), true],
    ["node:http", nodeHttpClient(peers), false],
    ["undici", undiciClient(peers), false],
  ];
  console.log(`sequential transactions, a new stream each: node ${process.version}, servers in a child process, ` +
    `${ROUNDS} rounds (+1 warm-up), medians`);
  const rate: Record<string, Record<string, number[]>> = {};
  const cpu: Record<string, Record<string, number[]>> = {};
  for (const c of cases) {
    const mine = clients.filter(([, , tlsOnly]) => !tlsOnly || c.tls);
    rate[c.name] = Object.fromEntries(mine.map(([name]) => [name, []]));
    cpu[c.name] = Object.fromEntries(mine.map(([name]) => [name, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      for (let k = 0; k < mine.length; k++) {
        const [name, run] = mine[(k + round) % mine.length]!;
        const t = await run(c, c.n);
        if (round === 0) continue;
        rate[c.name]![name]!.push(c.unit === "txn/s" ? (c.n * 1000) / t.ms : (c.n * c.length) / 1e6 / (t.ms / 1000));
        cpu[c.name]![name]!.push(t.cpuMs / c.n);
      }
    }
  }
  child.send("stats");
  const stats = await new Promise<{ connections: number }>((resolve) => child.once("message", resolve));
  child.send("exit");

  const names = clients.map(([name]) => name);
  console.log(`\n${"case".padEnd(13)} ${"unit".padEnd(6)} ${names.map((x) => x.padStart(11)).join(" ")}`);
  for (const c of cases) {
    const cells = names.map((x) => (rate[c.name]![x] ? fmt(median(rate[c.name]![x]!)) : "-").padStart(11));
    console.log(`${c.name.padEnd(13)} ${c.unit.padEnd(6)} ${cells.join(" ")}`);
  }
  console.log(`\nclient CPU per transaction, ms (median; lower is better):`);
  for (const c of cases) {
    const cells = names.map((x) => (cpu[c.name]![x] ? fmt(median(cpu[c.name]![x]!)) : "-").padStart(11));
    console.log(`${c.name.padEnd(13)} ${"ms".padEnd(6)} ${cells.join(" ")}`);
  }
  console.log(`\nserver: ${stats.connections} connections in all`);

  const lines: Parameters<typeof bench>[0][] = [];
  for (const c of cases) {
    const m = (x: string) => median(rate[c.name]![x]!);
    const p = (x: string) => median(cpu[c.name]![x]!);
    lines.push({ name: c.name, unit: c.unit, ours: m("ours"), peer: "undici keep-alive", theirs: m("undici"), ratio: m("ours") / m("undici") });
    lines.push({ name: c.name, unit: c.unit, ours: m("ours"), peer: "node:http agent:false", theirs: m("node:http"), ratio: m("ours") / m("node:http") });
    const lws = LWS[c.name]!;
    lines.push({ name: c.name, unit: lws.unit, ours: m("ours"), peer: "lws-ss (issue 9 figure, not this run)", theirs: lws.rate, ratio: m("ours") / lws.rate });
    lines.push({ name: `${c.name}-cpu`, unit: "ms/txn", ours: p("ours"), peer: "undici keep-alive", theirs: p("undici"), ratio: p("undici") / p("ours") });
    lines.push({ name: `${c.name}-noreuse-cpu`, unit: "ms/txn", ours: p("ours-fresh"), peer: "node:http agent:false", theirs: p("node:http"), ratio: p("node:http") / p("ours-fresh") });
  }
  let xs: { total: number[]; cranks: number[] } | undefined;
  if (XS && (!ONLY_CASES || ONLY_CASES.includes("seq-plain-4k"))) {
    xs = await xsComputrons();
    console.log(`\nXS (xsnap): plain 4 KiB GET, a new stream each, with reuse: ${xsMedian(xs.total)} computrons per transaction ` +
      `(median of ${XS_ROUNDS}; min ${Math.min(...xs.total)}, max ${Math.max(...xs.total)}; ${xsMedian(xs.cranks)} cranks)`);
    lines.push({ name: "xs-seq-plain-4k-compute", unit: "computrons", ours: xsMedian(xs.total), peer: "budget", theirs: XS_BUDGET, ratio: XS_BUDGET / xsMedian(xs.total) });
  }
  console.log("\ngoals (issue 9): reuse >= 2x lws plain 4k, >= 4x lws TLS 4k, >= 1.0x undici; without reuse CPU <= node:http agent:false; XS <= 12,000 computrons\n");
  for (const l of lines) bench(l);
}

if (process.argv[2] === "server") serve();
else await main();
