// http/1.1 client benchmark: our Secure Streams h1 binding on the Node host
// against node:http and undici, all three GETting from one node:http server.
// Run: npm run bench:h1 (build + node dist/bench/h1.bench.js).
//
//   h1-get-64B  req/s  sequential GETs of a 64-byte body on one kept-alive
//                      connection (ours: one stream, requestTx again from its
//                      QOS_ACK_REMOTE handler; node:http: http.Agent with
//                      keepAlive and one socket; undici: a Client, pipelining 1)
//   h1-get-8MB  MB/s   sequential GETs of an 8 MiB body, same connections
//                      (MB = 10^6 bytes)
//
// The server runs in a child process: with it in this process, its own work
// per request would be added to every client's time on the one event loop,
// pulling all ratios toward 1; apart, the client's own cost is what shows
// (that needs at least 2 cores; this machine has 2). Each round
// runs every client once, in an order that rotates from round to round,
// each on a fresh connection warmed by one untimed transaction; round 0 is
// a warm-up (JIT) and is not counted. Reported: the median of the rounds.
// Every transaction's body length is checked.
//
// Machine-readable results: one `BENCH {json}` line per comparison; ratio is
// ours/theirs (throughput), so >= 1 means we are faster.
// Options (environment): H1_BENCH_ROUNDS (default 7), H1_BENCH_SMALL_N
// (transactions per round, default 3000), H1_BENCH_LARGE_N (8 MiB bodies per
// round, default 16), H1_BENCH_CLIENTS (a comma-separated subset of
// ours,node:http,undici, e.g. to profile one: no BENCH lines then) and with
// it H1_BENCH_CASES (h1-get-64B and/or h1-get-8MB).

import { fork } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Client } from "undici";
import { NodeHost } from "../hosts/node/host.js";
import { SecureStreams } from "../src/ss/context.js";
import { State, Ret, stateName } from "../src/ss/states.js";
import { createH1Binding } from "../src/protocols/h1.js";
import { Policy } from "../src/policy/reader.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { fmt, median, round3 } from "./stats.js";

const SMALL = 64;
const LARGE = 8 * 1024 * 1024;
const ROUNDS = Number(process.env.H1_BENCH_ROUNDS ?? 7);
const SMALL_N = Number(process.env.H1_BENCH_SMALL_N ?? 3000);
const LARGE_N = Number(process.env.H1_BENCH_LARGE_N ?? 16);
/** Comma-separated subset of ours,node:http,undici (e.g. to profile one alone). */
const ONLY = process.env.H1_BENCH_CLIENTS?.split(",");
/** With ONLY: the cases to run (h1-get-64B, h1-get-8MB); default both. */
const ONLY_CASES = process.env.H1_BENCH_CASES?.split(",");

// ---------------------------------------------------------------------------
// The server (child process)

function serve(): void {
  const small = Buffer.alloc(SMALL, 0x61);
  const large = Buffer.alloc(LARGE);
  for (let i = 0; i < LARGE; i++) large[i] = (i * 31 + 7) & 0xff;
  let connections = 0;
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const body = req.url === "/small" ? small : req.url === "/large" ? large : undefined;
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 120_000;
  server.on("connection", () => connections++);
  server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on("message", (m: string) => {
    if (m === "stats") process.send!({ connections, requests });
    if (m === "exit") server.close(() => process.exit(0));
    if (m === "exit") server.closeAllConnections();
  });
}

// ---------------------------------------------------------------------------
// The clients. Each Run opens a connection, makes one untimed transaction,
// then n timed ones; it resolves to the elapsed ms of the timed part and the
// CPU time this process (the client alone: the server is the child) spent.

interface Timing {
  readonly ms: number;
  readonly cpuMs: number;
}
type Run = (path: string, length: number, n: number) => Promise<Timing>;

/** Starts the clock; the returned function stops it. */
function clock(): () => Timing {
  const start = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { ms: performance.now() - start, cpuMs: (used.user + used.system) / 1000 };
  };
}

function check(path: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${path}: body of ${got} bytes, expected ${want}`);
}

/**
 * Paces one client's run: call the result at the end of each response with
 * its body size. The first transaction is the untimed warm one; after the
 * n timed ones it calls close() and resolves with the time. It answers
 * whether another request is wanted, and throws if the body was wrong.
 */
function transactions(path: string, length: number, n: number, resolve: (t: Timing) => void, close: () => void): (bytes: number) => boolean {
  let done = -1;
  let stop: () => Timing = () => ({ ms: 0, cpuMs: 0 });
  return (bytes) => {
    check(path, bytes, length);
    if (++done === 0) stop = clock();
    if (done < n) return true;
    const elapsed = stop();
    close();
    resolve(elapsed);
    return false;
  };
}

function oursClient(port: number): Run {
  const compiled = compilePolicy(JSON.stringify({
    s: [
      { small: { endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: "/small" } },
      { large: { endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: "/large" } },
    ],
  }));
  if (!compiled.binary) throw new Error("bench policy does not compile");
  const policy = Policy.open(compiled.binary);
  const host = new NodeHost({ log: (m) => process.stderr.write(`[ours] ${m}\n`) });
  const ss = new SecureStreams(host, policy, { bindings: [createH1Binding()] });
  return (path, length, n) => new Promise((resolve, reject) => {
    let bytes = 0;
    const ended = transactions(path, length, n, resolve, () => setImmediate(() => stream.destroy()));
    const stream = ss.create(path.slice(1), {
      onRx: (payload) => {
        bytes += payload.length;
        return Ret.OK;
      },
      onState: (state) => {
        if (state === State.QOS_ACK_REMOTE) {
          let again: boolean;
          try {
            again = ended(bytes);
          } catch (e) {
            reject(e);
            return Ret.DESTROY_ME;
          }
          bytes = 0;
          if (again) stream.requestTx();
        } else if (state !== State.CREATING && state !== State.POLL && state !== State.CONNECTING && state !== State.CONNECTED &&
          state !== State.DESTROYING) {
          reject(new Error(`ours: ${stateName(state)}`));
          return Ret.DESTROY_ME;
        }
        return Ret.OK;
      },
    });
    stream.requestTx();
  });
}

function nodeHttpClient(port: number): Run {
  return (path, length, n) => new Promise((resolve, reject) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ended = transactions(path, length, n, resolve, () => agent.destroy());
    const next = () => {
      const req = http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
        let bytes = 0;
        res.on("data", (chunk: Buffer) => (bytes += chunk.length));
        res.on("end", () => {
          try {
            if (ended(bytes)) next();
          } catch (e) {
            reject(e);
          }
        });
      });
      req.on("error", reject);
    };
    next();
  });
}

function undiciClient(port: number): Run {
  return (path, length, n) => new Promise((resolve, reject) => {
    const client = new Client(`http://127.0.0.1:${port}`, { pipelining: 1, keepAliveTimeout: 120_000 });
    const ended = transactions(path, length, n, resolve, () => void client.close());
    const next = () => {
      client.request({ path, method: "GET" }, (error, data) => {
        if (error) return reject(error);
        let bytes = 0;
        data.body.on("data", (chunk: Buffer) => (bytes += chunk.length));
        data.body.on("error", reject);
        data.body.on("end", () => {
          try {
            if (ended(bytes)) next();
          } catch (e) {
            reject(e);
          }
        });
      });
    };
    next();
  });
}

// ---------------------------------------------------------------------------

interface Case {
  readonly name: string;
  readonly unit: "req/s" | "MB/s";
  readonly path: string;
  readonly length: number;
  readonly n: number;
  /** Throughput from n transactions in ms. */
  readonly rate: (n: number, ms: number) => number;
}

const CASES: Case[] = [
  { name: "h1-get-64B", unit: "req/s", path: "/small", length: SMALL, n: SMALL_N, rate: (n, ms) => (n * 1000) / ms },
  { name: "h1-get-8MB", unit: "MB/s", path: "/large", length: LARGE, n: LARGE_N, rate: (n, ms) => (n * LARGE) / 1e6 / (ms / 1000) },
];


async function main(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ["server"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise<number>((resolve) => child.once("message", (m: { port: number }) => resolve(m.port)));
  const clients = ([
    ["ours", oursClient(port)],
    ["node:http", nodeHttpClient(port)],
    ["undici", undiciClient(port)],
  ] as [string, Run][]).filter(([name]) => !ONLY || ONLY.includes(name));
  if (ONLY) {
    for (const c of CASES.filter((c) => !ONLY_CASES || ONLY_CASES.includes(c.name))) {
      for (let round = 0; round <= ROUNDS; round++) {
        for (const [name, run] of clients) {
          const t = await run(c.path, c.length, c.n);
          if (round > 0) console.log(`${c.name} ${name} round ${round}: ${fmt(c.rate(c.n, t.ms))} ${c.unit}, client CPU ${fmt((t.cpuMs * 1000) / c.n)} us/txn`);
        }
      }
    }
    child.send("exit");
    return;
  }
  console.log(`h1 client benchmark: node ${process.version}, server in a child process, ` +
    `${ROUNDS} rounds (+1 warm-up), median reported`);
  const results: Record<string, Record<string, number[]>> = {};
  /** Client CPU microseconds per transaction. */
  const cpu: Record<string, Record<string, number[]>> = {};
  for (const c of CASES) {
    results[c.name] = Object.fromEntries(clients.map(([name]) => [name, []]));
    cpu[c.name] = Object.fromEntries(clients.map(([name]) => [name, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      for (let k = 0; k < clients.length; k++) {
        const [name, run] = clients[(k + round) % clients.length]!;
        const t = await run(c.path, c.length, c.n);
        if (round > 0) {
          results[c.name]![name]!.push(c.rate(c.n, t.ms));
          cpu[c.name]![name]!.push((t.cpuMs * 1000) / c.n);
        }
      }
    }
  }
  child.send("stats");
  const stats = await new Promise<{ connections: number; requests: number }>((resolve) => child.once("message", resolve));
  child.send("exit");

  console.log("");
  console.log(`${"case".padEnd(12)} ${"unit".padEnd(6)} ${"ours".padStart(9)} ${"node:http".padStart(9)} ${"undici".padStart(9)}` +
    `  ${"vs node:http".padStart(12)} ${"vs undici".padStart(9)}   ours min..max`);
  const lines: string[] = [];
  for (const c of CASES) {
    const r = results[c.name]!;
    const m = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)])) as Record<string, number>;
    const ours = m.ours!;
    console.log(`${c.name.padEnd(12)} ${c.unit.padEnd(6)} ${fmt(ours).padStart(9)} ${fmt(m["node:http"]!).padStart(9)} ` +
      `${fmt(m.undici!).padStart(9)}  ${`${(ours / m["node:http"]!).toFixed(2)}x`.padStart(12)} ` +
      `${`${(ours / m.undici!).toFixed(2)}x`.padStart(9)}   ${fmt(Math.min(...r.ours!))}..${fmt(Math.max(...r.ours!))}`);
    for (const peer of ["node:http", "undici"]) {
      lines.push(`BENCH ${JSON.stringify({ name: c.name, unit: c.unit, ours: round3(ours), peer, theirs: round3(m[peer]!), ratio: round3(ours / m[peer]!) })}`);
    }
  }
  console.log(`\nclient CPU per transaction, microseconds (median; lower is better; ratio theirs/ours):`);
  for (const c of CASES) {
    const m = (k: string) => median(cpu[c.name]![k]!);
    console.log(`${c.name.padEnd(12)} ${"us/txn".padEnd(6)} ${fmt(m("ours")).padStart(9)} ${fmt(m("node:http")).padStart(9)} ` +
      `${fmt(m("undici")).padStart(9)}  ${`${(m("node:http") / m("ours")).toFixed(2)}x`.padStart(12)} ` +
      `${`${(m("undici") / m("ours")).toFixed(2)}x`.padStart(9)}`);
  }
  const expected = clients.length * CASES.reduce((n, c) => n + (ROUNDS + 1) * (c.n + 1), 0);
  console.log(`\nserver: ${stats.requests} requests (expected ${expected}) on ${stats.connections} connections ` +
    `(expected ${clients.length * CASES.length * (ROUNDS + 1)}: one per client run)`);
  console.log("goals: >= 1.0x node:http, >= 0.8x undici\n");
  for (const l of lines) console.log(l);
}

if (process.argv[2] === "server") serve();
else await main();
