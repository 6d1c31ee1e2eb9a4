// Retry storm check: streams against a server that answers every request
// with a failure, in turn a 503 (Retry-After: 0), a 429 (Retry-After: 0)
// and a response head followed by a close mid-body, for a long run (10
// minutes by default). Each stream asks for one transaction; the count of
// connections it makes is compared with what its retry policy allows: at
// most conceal + 1, and for a policy that retries forever, no more than the
// attempts its backoff table (and the 500 ms reconnect floor) fits into the
// run. Before issue 7's fixes this server drew about 4,000 connections in
// 10 minutes from a `conceal: 2` stream.
//
// Run: npm run bench:storm (build + node dist/bench/storm.bench.js).
// Options (environment): STORM_SECONDS (default 600).
// Machine-readable: one BENCH line per stream, "peer":"budget" with the
// allowed count as theirs; ratio = allowed / made (>= 1 passes).

import net from "node:net";
import type { AddressInfo } from "node:net";
import { NodeHost } from "../hosts/node/host.js";
import { SecureStreams } from "../src/ss/context.js";
import { State, stateName } from "../src/ss/states.js";
import { createH1Binding } from "../src/protocols/h1.js";
import { Policy } from "../src/policy/reader.js";
import { MIN_RECONNECT_MS } from "../src/ss/stream.js";
import { compilePolicy } from "../tools/policy/compile.js";

const SECONDS = Number(process.env.STORM_SECONDS ?? 600);

const FAILURES = [
  "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 4\r\n\r\nbusy",
  "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 0\r\nContent-Length: 4\r\n\r\nslow",
  "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
];

interface Case {
  readonly name: string;
  readonly retry: { backoff: number[]; conceal: number; jitterpc?: number };
  readonly opportunistic?: boolean;
}

const CASES: Case[] = [
  { name: "storm-conceal2-backoff0", retry: { backoff: [0], conceal: 2 } },
  { name: "storm-conceal2-opportunistic", retry: { backoff: [0], conceal: 2 }, opportunistic: true },
  { name: "storm-forever-table", retry: { backoff: [200, 1000, 5000, 15000], conceal: 65535, jitterpc: 20 } },
];

/** The most attempts a retry table allows in `ms`: the first at once, then one per (at least) table delay, never under the floor. */
function allowed(c: Case, ms: number): number {
  let attempts = 1;
  let t = 0;
  for (let k = 1; attempts <= c.retry.conceal; k++) {
    const table = c.retry.backoff;
    t += Math.max(table[Math.min(k, table.length) - 1]!, MIN_RECONNECT_MS);
    if (t > ms) break;
    attempts++;
  }
  return attempts;
}

async function main(): Promise<void> {
  const connections = new Map<string, number>();
  let turn = 0;
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", (request: Buffer) => {
      const name = /GET \/([\w-]+)/.exec(request.toString("latin1"))?.[1] ?? "?";
      connections.set(name, (connections.get(name) ?? 0) + 1);
      const reply = FAILURES[turn++ % FAILURES.length]!;
      if (reply.includes("only ten")) socket.end(reply);
      else socket.write(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  const policyJson = {
    retry: CASES.map((c) => ({ [c.name]: { jitterpc: 0, ...c.retry } })),
    s: CASES.map((c) => ({
      [c.name]: { endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: `/${c.name}`, retry: c.name,
        ...(c.opportunistic ? { opportunistic: true } : {}) },
    })),
  };
  const compiled = compilePolicy(JSON.stringify(policyJson));
  if (!compiled.binary) throw new Error(JSON.stringify(compiled.diagnostics));
  const host = new NodeHost({ log: () => {} });
  const ss = new SecureStreams(host, Policy.open(compiled.binary), { bindings: [createH1Binding()] });
  const finals = new Map<string, string>();
  for (const c of CASES) {
    ss.create(c.name, {
      onState: (state) => {
        if (state === State.ALL_RETRIES_FAILED || state === State.QOS_ACK_REMOTE) finals.set(c.name, stateName(state));
      },
    }).requestTx();
  }
  process.stdout.write(`retry storm: ${CASES.length} streams, ${SECONDS} s against a server answering 503, 429, a cut-off body in turn\n`);
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  ss.destroyAll();
  server.close();

  let failed = 0;
  for (const c of CASES) {
    const made = connections.get(c.name) ?? 0;
    const limit = allowed(c, SECONDS * 1000);
    const ok = made <= limit;
    if (!ok) failed++;
    process.stdout.write(`  ${c.name.padEnd(30)} ${String(made).padStart(5)} connections, allowed ${String(limit).padStart(5)}` +
      `  (conceal ${c.retry.conceal}, backoff [${c.retry.backoff.join(", ")}]${c.opportunistic ? ", opportunistic" : ""}; ended: ${finals.get(c.name) ?? "still retrying"})` +
      `  ${ok ? "PASS" : "FAIL"}\n`);
    process.stdout.write(`BENCH ${JSON.stringify({ name: c.name, unit: "connections", ours: made, peer: "budget", theirs: limit,
      ratio: Math.round((limit / Math.max(made, 1)) * 1000) / 1000 })}\n`);
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
