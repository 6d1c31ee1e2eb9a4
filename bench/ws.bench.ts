// WebSocket client benchmark: our Secure Streams ws binding on the Node host
// against the `ws` package's client, both talking to one `ws` echo server.
// Run: npm run bench:ws (build + node dist/bench/ws.bench.js).
//
//   ws-echo-64B  msg/s  sequential round trips of a 64-byte binary message on
//                       one connection: send, wait for the echo, send the next
//                       (ours: one stream, requestTx() from onRx at EOM)
//   ws-echo-1MB  MB/s   the same with 1 MiB messages (MB = 10^6 bytes of
//                       message, counted once per round trip); ours goes out as
//                       4 KiB frames (the binding's txMax), theirs as one frame
//
// As bench/h1.bench.ts: the server runs in a child process, so that its work
// is not added to the clients' time on this event loop; each round runs every
// client once on a fresh connection warmed by one untimed round trip, in an
// order that rotates from round to round; round 0 is a warm-up; the median
// of the rounds is reported. Every echo's length is checked.
//
// Machine-readable results: one `BENCH {json}` line per case; ratio is
// ours/theirs (throughput), so >= 1 means we are faster. Goal: >= 1.0x.
// Options (environment): WS_BENCH_ROUNDS (default 7), WS_BENCH_SMALL_N
// (round trips per round, default 5000), WS_BENCH_LARGE_N (1 MiB round trips
// per round, default 16), WS_BENCH_CLIENTS (ours or ws alone, e.g. to
// profile one: no BENCH lines then) and WS_BENCH_CASES (a comma-separated
// subset of the case names), WS_TXMAX and WS_BATCH (ours with a binding
// made by createWsBinding({ txMax, writeBatch }) instead of the default one).

import { fork } from "node:child_process";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { WebSocketServer, WebSocket } from "ws";
import { NodeHost } from "../hosts/node/host.js";
import { SecureStreams } from "../src/ss/context.js";
import { State, Ret, RxFlag, stateName } from "../src/ss/states.js";
import { ws, createWsBinding } from "../src/protocols/ws.js";
import { Policy } from "../src/policy/reader.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { fmt, median, round3 } from "./stats.js";

const SMALL = 64;
const LARGE = 1 << 20;
const ROUNDS = Number(process.env.WS_BENCH_ROUNDS ?? 7);
const SMALL_N = Number(process.env.WS_BENCH_SMALL_N ?? 5000);
const LARGE_N = Number(process.env.WS_BENCH_LARGE_N ?? 16);
const ONLY = process.env.WS_BENCH_CLIENTS?.split(",");
const ONLY_CASES = process.env.WS_BENCH_CASES?.split(",");

// ---------------------------------------------------------------------------
// The server (child process): echoes every message.

function serve(): void {
  let connections = 0;
  let messages = 0;
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 4 * LARGE }, () => {
    process.send!({ port: (wss.address() as AddressInfo).port });
  });
  wss.on("connection", (sock) => {
    connections++;
    sock.on("message", (data, isBinary) => {
      messages++;
      sock.send(data as Buffer, { binary: isBinary });
    });
  });
  process.on("message", (m: string) => {
    if (m === "stats") process.send!({ connections, messages });
    if (m === "cpu") {
      const used = process.cpuUsage();
      process.send!({ cpuMs: (used.user + used.system) / 1000 });
    }
    if (m === "exit") {
      for (const c of wss.clients) c.terminate();
      wss.close(() => process.exit(0));
    }
  });
}

// ---------------------------------------------------------------------------
// The clients. A Run opens a connection, makes one untimed round trip, then
// n timed ones; it resolves to the elapsed ms and this process's CPU time.

interface Timing {
  readonly ms: number;
  readonly cpuMs: number;
}
type Run = (message: Uint8Array, n: number) => Promise<Timing>;

function clock(): () => Timing {
  const start = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { ms: performance.now() - start, cpuMs: (used.user + used.system) / 1000 };
  };
}

/** Paces a run: call at each echo with its length; answers whether to send another. */
function roundTrips(length: number, n: number, resolve: (t: Timing) => void, close: () => void): (bytes: number) => boolean {
  let done = -1;
  let stop: () => Timing = () => ({ ms: 0, cpuMs: 0 });
  return (bytes) => {
    if (bytes !== length) throw new Error(`echo of ${bytes} bytes, expected ${length}`);
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
    s: [{ echo: { endpoint: "127.0.0.1", port, protocol: "ws", http_url: "/", ws_binary: true } }],
  }));
  if (!compiled.binary) throw new Error("bench policy does not compile");
  const policy = Policy.open(compiled.binary);
  const host = new NodeHost({ log: (m) => process.stderr.write(`[ours] ${m}\n`) });
  const ss = new SecureStreams(host, policy, { bindings: [process.env.WS_TXMAX ? createWsBinding({ txMax: Number(process.env.WS_TXMAX), writeBatch: Number(process.env.WS_BATCH ?? 16384) }) : ws] });
  return (message, n) => new Promise((resolve, reject) => {
    let bytes = 0;
    let sent = 0;
    const ended = roundTrips(message.length, n, resolve, () => setImmediate(() => stream.destroy()));
    const stream = ss.create("echo", {
      onRx: (payload, flags, s) => {
        bytes += payload.length;
        if (!(flags & RxFlag.EOM)) return Ret.OK;
        let again: boolean;
        try {
          again = ended(bytes);
        } catch (e) {
          reject(e);
          return Ret.DESTROY_ME;
        }
        bytes = 0;
        if (again) s.requestTx();
        return Ret.OK;
      },
      onTx: (max, flags) => {
        if (flags & RxFlag.SOM) sent = 0;
        const payload = message.subarray(sent, sent + max);
        const out = (sent === 0 ? RxFlag.SOM : 0) | (sent + payload.length === message.length ? RxFlag.EOM : 0);
        sent += payload.length;
        return { payload, flags: out };
      },
      onState: (state) => {
        if (state !== State.CREATING && state !== State.POLL && state !== State.CONNECTING && state !== State.CONNECTED &&
          state !== State.DISCONNECTED && state !== State.DESTROYING) {
          reject(new Error(`ours: ${stateName(state)}`));
          return Ret.DESTROY_ME;
        }
        return Ret.OK;
      },
    });
    stream.requestTx();
  });
}

function wsClient(port: number): Run {
  return (message, n) => new Promise((resolve, reject) => {
    const sock = new WebSocket(`ws://127.0.0.1:${port}/`);
    const ended = roundTrips(message.length, n, resolve, () => sock.close());
    sock.on("error", reject);
    sock.on("open", () => sock.send(message, { binary: true }));
    sock.on("message", (data: Buffer) => {
      try {
        if (ended(data.length)) sock.send(message, { binary: true });
      } catch (e) {
        reject(e);
      }
    });
  });
}

// ---------------------------------------------------------------------------

interface Case {
  readonly name: string;
  readonly unit: "msg/s" | "MB/s";
  readonly length: number;
  readonly n: number;
  readonly rate: (n: number, ms: number) => number;
}

const CASES: Case[] = [
  { name: "ws-echo-64B", unit: "msg/s", length: SMALL, n: SMALL_N, rate: (n, ms) => (n * 1000) / ms },
  { name: "ws-echo-1MB", unit: "MB/s", length: LARGE, n: LARGE_N, rate: (n, ms) => (n * LARGE) / 1e6 / (ms / 1000) },
];


async function main(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ["server"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const port = await new Promise<number>((resolve) => child.once("message", (m: { port: number }) => resolve(m.port)));
  const clients = ([["ours", oursClient(port)], ["ws", wsClient(port)]] as [string, Run][]).filter(([name]) => !ONLY || ONLY.includes(name));
  if (ONLY || ONLY_CASES) {
    for (const c of CASES.filter((c) => !ONLY_CASES || ONLY_CASES.includes(c.name))) {
      const message = new Uint8Array(c.length);
      for (let round = 0; round <= ROUNDS; round++) {
        for (const [name, run] of clients) {
          const t = await run(message, c.n);
          if (round > 0) console.log(`${c.name} ${name} round ${round}: ${fmt(c.rate(c.n, t.ms))} ${c.unit}, client CPU ${fmt((t.cpuMs * 1000) / c.n)} us/msg`);
        }
      }
    }
    child.send("exit");
    return;
  }
  console.log(`ws client benchmark: node ${process.version}, ws server in a child process, ${ROUNDS} rounds (+1 warm-up), median reported`);
  const results: Record<string, Record<string, number[]>> = {};
  const cpu: Record<string, Record<string, number[]>> = {};
  /** The server's CPU per round trip, by client: what each client's framing costs the peer. */
  const serverCpu: Record<string, Record<string, number[]>> = {};
  const serverMs = () => new Promise<number>((resolve) => {
    child.once("message", (m: { cpuMs: number }) => resolve(m.cpuMs));
    child.send("cpu");
  });
  for (const c of CASES) {
    serverCpu[c.name] = Object.fromEntries(clients.map(([name]) => [name, []]));
    const message = new Uint8Array(c.length);
    for (let i = 0; i < c.length; i++) message[i] = (i * 31 + 7) & 0xff;
    results[c.name] = Object.fromEntries(clients.map(([name]) => [name, []]));
    cpu[c.name] = Object.fromEntries(clients.map(([name]) => [name, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      for (let k = 0; k < clients.length; k++) {
        const [name, run] = clients[(k + round) % clients.length]!;
        const before = await serverMs();
        const t = await run(message, c.n);
        const server = (await serverMs()) - before;
        if (round > 0) {
          results[c.name]![name]!.push(c.rate(c.n, t.ms));
          cpu[c.name]![name]!.push((t.cpuMs * 1000) / c.n);
          serverCpu[c.name]![name]!.push((server * 1000) / (c.n + 1));
        }
      }
    }
  }
  child.send("stats");
  const stats = await new Promise<{ connections: number; messages: number }>((resolve) => child.once("message", resolve));
  child.send("exit");

  console.log("");
  console.log(`${"case".padEnd(12)} ${"unit".padEnd(6)} ${"ours".padStart(9)} ${"ws".padStart(9)}  ${"vs ws".padStart(6)}   ours min..max`);
  const lines: string[] = [];
  for (const c of CASES) {
    const r = results[c.name]!;
    const ours = median(r.ours!);
    const theirs = median(r.ws!);
    console.log(`${c.name.padEnd(12)} ${c.unit.padEnd(6)} ${fmt(ours).padStart(9)} ${fmt(theirs).padStart(9)}  ` +
      `${`${(ours / theirs).toFixed(2)}x`.padStart(6)}   ${fmt(Math.min(...r.ours!))}..${fmt(Math.max(...r.ours!))}`);
    lines.push(`BENCH ${JSON.stringify({ name: c.name, unit: c.unit, ours: round3(ours), peer: "ws", theirs: round3(theirs), ratio: round3(ours / theirs) })}`);
  }
  console.log(`\nclient CPU per round trip, microseconds (median; lower is better):`);
  for (const c of CASES) {
    const m = (k: string) => median(cpu[c.name]![k]!);
    console.log(`${c.name.padEnd(12)} ${"us/msg".padEnd(6)} ${fmt(m("ours")).padStart(9)} ${fmt(m("ws")).padStart(9)}  ${`${(m("ws") / m("ours")).toFixed(2)}x`.padStart(6)}`);
  }
  console.log(`\nserver CPU per round trip with each client, microseconds (median; what the client's framing costs the peer):`);
  for (const c of CASES) {
    const m = (k: string) => median(serverCpu[c.name]![k]!);
    console.log(`${c.name.padEnd(12)} ${"us/msg".padEnd(6)} ${fmt(m("ours")).padStart(9)} ${fmt(m("ws")).padStart(9)}`);
  }
  const expected = clients.length * CASES.reduce((n, c) => n + (ROUNDS + 1) * (c.n + 1), 0);
  console.log(`\nserver: ${stats.messages} messages (expected ${expected}) on ${stats.connections} connections ` +
    `(expected ${clients.length * CASES.length * (ROUNDS + 1)})`);
  console.log("goal: >= 1.0x ws\n");
  for (const l of lines) console.log(l);
}

if (process.argv[2] === "server") serve();
else await main();
