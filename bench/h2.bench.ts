// http/2 client benchmark: our Secure Streams h2 binding on the Node host
// against Node's own http2 client, both GETting from one Node http2 secure
// server (TLS, ALPN h2). Run: npm run bench:h2 (build + node dist/bench/h2.bench.js).
//
//   h2-get-64B  req/s  GETs of a 64-byte body, 16 at a time on one connection
//                      (ours: 16 streams of one context, each asking again from
//                      its QOS_ACK_REMOTE handler; node: one ClientHttp2Session,
//                      16 request loops)
//   h2-get-8MB  MB/s   sequential GETs of an 8 MiB body on one connection
//                      (MB = 10^6 bytes)
//   h2c-get-8MB MB/s   the same in cleartext (prior knowledge): the binding
//                      without TLS (ours reads the server's first flight
//                      through a JS stream once, in the warm-up, then
//                      connects without it: hosts/node/tls.ts)
//
// As bench/h1.bench.ts: the server runs in a child process; each round runs
// both clients once, in an order that alternates, each on a fresh connection
// warmed by one untimed transaction per loop; round 0 is a warm-up and is not
// counted; the median of the rounds is reported; every body length is checked.
// Both clients use the same receive windows (256 KiB per stream, 1 MiB per
// connection). Ratio is ours/theirs (throughput): >= 1 means we are faster.
// A second line gives each case's work per second of the client process's
// own CPU (user + system, process.cpuUsage()), which other load on a shared
// machine moves far less than the wall-clock rates.
// Options (environment): H2_BENCH_ROUNDS (default 7), H2_BENCH_SMALL_N
// (transactions per round, default 4000), H2_BENCH_LARGE_N (8 MiB bodies per
// round, default 8), H2_BENCH_CONCURRENCY (default 16), H2_BENCH_CASES (a
// comma-separated subset of the case names, for profiling one case; default
// all), H2_BENCH_CLIENTS (likewise: ours, node:http2).

import { fork } from "node:child_process";
import http2 from "node:http2";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { NodeHost } from "../hosts/node/host.js";
import { SecureStreams } from "../src/ss/context.js";
import { State, Ret, stateName } from "../src/ss/states.js";
import { createH2Binding } from "../src/protocols/h2.js";
import { Policy } from "../src/policy/reader.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { base64Encode } from "../src/util/base64.js";
import { fmt, median, round3 } from "./stats.js";

const SMALL = 64;
const LARGE = 8 * 1024 * 1024;
const ROUNDS = Number(process.env.H2_BENCH_ROUNDS ?? 7);
const SMALL_N = Number(process.env.H2_BENCH_SMALL_N ?? 4000);
const LARGE_N = Number(process.env.H2_BENCH_LARGE_N ?? 8);
const CONCURRENCY = Number(process.env.H2_BENCH_CONCURRENCY ?? 16);

const here = path.dirname(fileURLToPath(import.meta.url));
const certs = path.resolve(here, "../../policies/demo-certs");
const caPem = readFileSync(path.join(certs, "ca.pem"), "utf8");

function serve(): void {
  const small = Buffer.alloc(SMALL, 0x61);
  const large = Buffer.alloc(LARGE);
  for (let i = 0; i < LARGE; i++) large[i] = (i * 31 + 7) & 0xff;
  let sessions = 0;
  let requests = 0;
  const server = http2.createSecureServer({
    cert: readFileSync(path.join(certs, "server.pem"), "utf8") + caPem,
    key: readFileSync(path.join(certs, "server.key")),
    settings: { maxConcurrentStreams: 256 },
  });
  const plain = http2.createServer();
  const onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    requests++;
    stream.on("error", () => {});
    const body = headers[":path"] === "/small" ? small : headers[":path"] === "/large" ? large : undefined;
    if (!body) return void stream.respond({ ":status": 404 }, { endStream: true });
    stream.respond({ ":status": 200, "content-type": "application/octet-stream", "content-length": body.length });
    stream.end(body);
  };
  for (const s of [server, plain]) {
    s.on("session", () => sessions++);
    s.on("stream", onStream);
  }
  server.listen(0, "127.0.0.1", () => plain.listen(0, "127.0.0.1", () =>
    process.send!({ port: (server.address() as AddressInfo).port, plainPort: (plain.address() as AddressInfo).port })));
  process.on("message", (m: string) => {
    if (m === "stats") process.send!({ sessions, requests });
    if (m === "exit") process.exit(0);
  });
}

interface Timing {
  readonly ms: number;
  /** CPU time this process (the client) spent meanwhile, user + system. */
  readonly cpuMs: number;
}
/** Runs n timed transactions of `path` with `loops` running at once, after one untimed one per loop; cleartext h2 when `plain`. */
type Run = (path: string, length: number, n: number, loops: number, plain: boolean) => Promise<Timing>;

/**
 * Paces the loops: each calls `ended(bytes)` at the end of a response and
 * goes again while it answers true. The clock starts when every loop has
 * had its untimed transaction, and stops at the n-th timed one.
 */
function pacer(path: string, length: number, n: number, loops: number, resolve: (t: Timing) => void, close: () => void) {
  let warm = 0;
  let done = 0;
  let started = 0;
  let cpu = process.cpuUsage();
  const waiting: (() => void)[] = [];
  return {
    ended(bytes: number, again: () => void): void {
      if (bytes !== length) throw new Error(`${path}: body of ${bytes} bytes, expected ${length}`);
      if (warm < loops) {
        warm++;
        waiting.push(again);
        if (warm === loops) {
          started = performance.now();
          cpu = process.cpuUsage();
          for (const w of waiting.splice(0)) w();
        }
        return;
      }
      if (++done === n) {
        const ms = performance.now() - started;
        close();
        const used = process.cpuUsage(cpu);
        resolve({ ms, cpuMs: (used.user + used.system) / 1000 });
        return;
      }
      if (done + loops <= n) again(); // no more than n timed requests are started
    },
  };
}

function oursClient(port: number, plainPort: number): Run {
  const compiled = compilePolicy(JSON.stringify({
    certs: [{ demo_ca: base64Encode(new Uint8Array(Buffer.from(caPem.replace(/-----[^-]+-----|\s/g, ""), "base64"))) }],
    trust_stores: [{ name: "demo", stack: ["demo_ca"] }],
    s: [
      ...["small", "large"].map((name) => ({
        [name]: { endpoint: "127.0.0.1", port, protocol: "h2", http_method: "GET", http_url: `/${name}`, tls: true, tls_trust_store: "demo" },
      })),
      { large_plain: { endpoint: "127.0.0.1", port: plainPort, protocol: "h2", http_method: "GET", http_url: "/large" } },
    ],
  }));
  if (!compiled.binary) throw new Error(`bench policy does not compile: ${JSON.stringify(compiled.diagnostics)}`);
  const policy = Policy.open(compiled.binary);
  // One host for every run, as an app has: it has read the server's first
  // flight once (hosts/node/tls.ts). No session resumption: the node client
  // makes a full handshake each time too.
  const host = new NodeHost({ log: (m) => process.stderr.write(`[ours] ${m}\n`), tlsResumption: false });
  return (path, length, n, loops, plain) => new Promise((resolve, reject) => {
    // a context per run: a fresh connection, as the node client gets
    const ss = new SecureStreams(host, policy, { bindings: [createH2Binding()] });
    const streams: ReturnType<typeof ss.create>[] = [];
    const pace = pacer(path, length, n, loops, resolve, () => setImmediate(() => streams.forEach((s) => s.destroy())));
    for (let i = 0; i < loops; i++) {
      let bytes = 0;
      const stream = ss.create(path.slice(1) + (plain ? "_plain" : ""), {
        onRx: (payload) => {
          bytes += payload.length;
          return Ret.OK;
        },
        onState: (state, _ack, s) => {
          if (state === State.QOS_ACK_REMOTE) {
            const got = bytes;
            bytes = 0;
            try {
              pace.ended(got, () => s.requestTx());
            } catch (e) {
              reject(e);
            }
          } else if (![State.CREATING, State.POLL, State.CONNECTING, State.CONNECTED, State.DISCONNECTED, State.DESTROYING].includes(state as never)) {
            reject(new Error(`ours: ${stateName(state)}`));
          }
          return Ret.OK;
        },
      });
      streams.push(stream);
      stream.requestTx();
    }
  });
}

function nodeClient(port: number, plainPort: number): Run {
  return (path, length, n, loops, plain) => new Promise((resolve, reject) => {
    // the same receive windows as ours (createH2Binding's defaults): 256 KiB per stream, 1 MiB per connection
    const url = plain ? `http://127.0.0.1:${plainPort}` : `https://127.0.0.1:${port}`;
    const session = http2.connect(url, { ca: caPem, settings: { initialWindowSize: 262144 } });
    session.on("connect", () => session.setLocalWindowSize(1048576));
    session.on("error", reject);
    const pace = pacer(path, length, n, loops, resolve, () => session.close());
    const next = () => {
      const req = session.request({ ":path": path });
      let bytes = 0;
      req.on("data", (chunk: Buffer) => (bytes += chunk.length));
      req.on("error", reject);
      req.on("end", () => {
        try {
          pace.ended(bytes, next);
        } catch (e) {
          reject(e);
        }
      });
      req.end();
    };
    for (let i = 0; i < loops; i++) next();
  });
}

interface Case {
  readonly name: string;
  readonly unit: "req/s" | "MB/s";
  readonly path: string;
  readonly length: number;
  readonly n: number;
  readonly loops: number;
  readonly plain?: boolean;
  readonly rate: (n: number, ms: number) => number;
}

const ALL_CASES: Case[] = [
  { name: "h2-get-64B", unit: "req/s", path: "/small", length: SMALL, n: SMALL_N, loops: CONCURRENCY, rate: (n, ms) => (n * 1000) / ms },
  { name: "h2-get-8MB", unit: "MB/s", path: "/large", length: LARGE, n: LARGE_N, loops: 1, rate: (n, ms) => (n * LARGE) / 1e6 / (ms / 1000) },
  { name: "h2c-get-8MB", unit: "MB/s", path: "/large", length: LARGE, n: LARGE_N, loops: 1, plain: true, rate: (n, ms) => (n * LARGE) / 1e6 / (ms / 1000) },
];
const CASES = process.env.H2_BENCH_CASES ? ALL_CASES.filter((c) => process.env.H2_BENCH_CASES!.split(",").includes(c.name)) : ALL_CASES;


async function main(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ["server"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const { port, plainPort } = await new Promise<{ port: number; plainPort: number }>((resolve) => child.once("message", resolve));
  const only = process.env.H2_BENCH_CLIENTS?.split(",");
  const clients = ([["ours", oursClient(port, plainPort)], ["node:http2", nodeClient(port, plainPort)]] as [string, Run][])
    .filter(([name]) => !only || only.includes(name));
  console.log(`h2 client benchmark: node ${process.version}, server in a child process, ${ROUNDS} rounds (+1 warm-up), median reported`);
  const results: Record<string, Record<string, number[]>> = {};
  const perCpu: Record<string, Record<string, number[]>> = {};
  for (const c of CASES) {
    results[c.name] = Object.fromEntries(clients.map(([name]) => [name, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      for (let k = 0; k < clients.length; k++) {
        const [name, run] = clients[(k + round) % clients.length]!;
        const t = await run(c.path, c.length, c.n, c.loops, c.plain ?? false);
        if (round > 0) {
          results[c.name]![name]!.push(c.rate(c.n, t.ms));
          (perCpu[c.name] ??= {})[name] = [...(perCpu[c.name]?.[name] ?? []), c.rate(c.n, t.cpuMs)];
        }
      }
    }
  }
  child.send("stats");
  const stats = await new Promise<{ sessions: number; requests: number }>((resolve) => child.once("message", resolve));
  child.send("exit");
  console.log("");
  console.log(`${"case".padEnd(12)} ${"unit".padEnd(6)} ${"ours".padStart(9)} ${"node:http2".padStart(10)}  ${"ratio".padStart(6)}   ours min..max`);
  const lines: string[] = [];
  for (const c of CASES) {
    const r = results[c.name]!;
    if (!r.ours?.length || !r["node:http2"]?.length) continue; // a client left out by H2_BENCH_CLIENTS
    const ours = median(r.ours!);
    const theirs = median(r["node:http2"]!);
    console.log(`${c.name.padEnd(12)} ${c.unit.padEnd(6)} ${fmt(ours).padStart(9)} ${fmt(theirs).padStart(10)}  ${`${(ours / theirs).toFixed(2)}x`.padStart(6)}   ${fmt(Math.min(...r.ours!))}..${fmt(Math.max(...r.ours!))}`);
    lines.push(`BENCH ${JSON.stringify({ name: c.name, unit: c.unit, ours: round3(ours), peer: "node:http2", theirs: round3(theirs), ratio: round3(ours / theirs) })}`);
  }
  // the same work per second of the client's own CPU: a figure that other load on the machine moves far less than wall-clock rates
  console.log(`\nper client CPU second (median): ${CASES.map((c) => {
    const r = perCpu[c.name] ?? {};
    const theirs = r["node:http2"] ? median(r["node:http2"]) : NaN;
    return `${c.name} ${Object.entries(r).map(([n, v]) => `${n} ${fmt(median(v))}`).join(", ")}${r.ours && theirs ? ` (${(median(r.ours) / theirs).toFixed(2)}x)` : ""}`;
  }).join("; ")}`);
  console.log(`\nserver: ${stats.requests} requests on ${stats.sessions} connections (one per client run: ${clients.length * CASES.length * (ROUNDS + 1)})`);
  console.log("goal: >= 1.0x node:http2\n");
  for (const l of lines) console.log(l);
}

if (process.argv[2] === "server") serve();
else await main();
