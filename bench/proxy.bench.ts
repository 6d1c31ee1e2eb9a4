// Secure Streams through ss-proxy versus the same streams in-process, in the
// same run: throughput of 8 MiB downloads (8 streams at once) and the time
// of one small transaction (sequential, on a kept-alive connection). The
// proxy is a child process, as it is in use (lws' proxy manages 0.42x of
// in-process throughput for h1). Rounds interleave the two; medians reported.
//
// Run: npm run bench:proxy (build + node dist/bench/proxy.bench.js).
// Options (environment): PROXY_BENCH_ROUNDS (default 5), PROXY_BENCH_MIB
// (per stream, default 8), PROXY_BENCH_STREAMS (default 8), PROXY_BENCH_TXNS
// (small transactions per round, default 500).
// Machine-readable: BENCH lines with "peer":"in-process"; ratio = proxy /
// in-process for throughput, in-process / proxy for time (>= 1: the proxy
// is as good).

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { NodeHost } from "../hosts/node/host.js";
import { loadPolicy } from "../hosts/node/sim.js";
import { SecureStreams } from "../src/ss/context.js";
import { createH1Binding } from "../src/protocols/h1.js";
import { Ret, State } from "../src/ss/states.js";
import type { StreamApi, StreamHandlers } from "../src/ss/stream.js";
import { SspcContext } from "../src/sspc/client.js";
import { proxyAt, startBodyServer, startProxyChild, writeProxyPolicy } from "../test-host/support/proxy-rig.js";

const ROUNDS = Number(process.env.PROXY_BENCH_ROUNDS ?? 5);
const MIB = Number(process.env.PROXY_BENCH_MIB ?? 8);
const STREAMS = Number(process.env.PROXY_BENCH_STREAMS ?? 8);
const TXNS = Number(process.env.PROXY_BENCH_TXNS ?? 500);

type Factory = { create(streamtype: string, handlers: StreamHandlers<StreamApi>): StreamApi };

/** Downloads `n` bytes on each of `streams` streams at once; resolves to MB/s. */
function throughput(ss: Factory, streams: number, n: number): Promise<number> {
  const start = performance.now();
  return Promise.all(Array.from({ length: streams }, () => new Promise<number>((resolve, reject) => {
    let got = 0;
    const s = ss.create("get", {
      onState: (state, _a, st) => {
        if (state === State.QOS_ACK_REMOTE) {
          setImmediate(() => st.destroy());
          resolve(got);
        } else if (state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED) reject(new Error("failed"));
        return Ret.OK;
      },
      onRx: (p) => { got += p.length; return Ret.OK; },
    });
    s.setMetadata("n", String(n));
    s.requestTx();
  }))).then((sizes) => {
    if (sizes.some((x) => x !== n)) throw new Error(`short body: ${sizes}`);
    return (streams * n) / 1e6 / ((performance.now() - start) / 1000);
  });
}

/** `count` 64-byte GETs one after another on one stream; resolves to µs per transaction. */
function latency(ss: Factory, count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let done = 0;
    let start = 0;
    const s = ss.create("get", {
      onState: (state, _a, st) => {
        if (state === State.QOS_ACK_REMOTE) {
          if (++done === 1) start = performance.now(); // the first one pays for the connection
          if (done <= count) return st.requestTx();
          setImmediate(() => st.destroy());
          resolve(((performance.now() - start) * 1000) / count);
        } else if (state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED) reject(new Error("failed"));
        return Ret.OK;
      },
      onRx: () => Ret.OK,
    });
    s.setMetadata("n", "64");
    s.requestTx();
  });
}

/** CPU time (user + system) of a process, ms, from /proc (clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
const ownCpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

/** Runs f, adding the CPU ms it took of this process and of the proxy to `into`. */
async function metered<T>(proxyPid: number, into: { own: number; proxy: number; mb: number }, mb: number, f: () => Promise<T>): Promise<T> {
  const own = ownCpuMs(), proxy = cpuMsOf(proxyPid);
  const r = await f();
  into.own += ownCpuMs() - own;
  into.proxy += cpuMsOf(proxyPid) - proxy;
  into.mb += mb;
  return r;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(tmpdir(), "proxy-bench-"));
  const server = await startBodyServer();
  const policyFile = path.join(tmp, "policy.json");
  writeProxyPolicy(policyFile, server.port);
  const proxy = await startProxyChild(policyFile, ["--unix", path.join(tmp, "proxy.sock")]);
  const host = new NodeHost({ log: () => undefined });
  const inProcess = new SecureStreams(host, loadPolicy(policyFile, console.error)!, { bindings: [createH1Binding()] });
  const viaProxy = new SspcContext(host, { proxy: proxyAt(proxy.addresses[0]!) });
  const bytes = MIB * 1024 * 1024;
  const t = { in: [] as number[], proxy: [] as number[] };
  const l = { in: [] as number[], proxy: [] as number[] };
  // CPU per MB moved: this process (app, and the body server) and the proxy process
  const cpu = { in: { own: 0, proxy: 0, mb: 0 }, proxy: { own: 0, proxy: 0, mb: 0 } };
  try {
    // warm-up
    await throughput(inProcess, 2, 1 << 20);
    await throughput(viaProxy, 2, 1 << 20);
    await latency(inProcess, 50);
    await latency(viaProxy, 50);
    for (let r = 0; r < ROUNDS; r++) {
      t.in.push(await metered(proxy.child.pid!, cpu.in, STREAMS * bytes / 1e6, () => throughput(inProcess, STREAMS, bytes)));
      t.proxy.push(await metered(proxy.child.pid!, cpu.proxy, STREAMS * bytes / 1e6, () => throughput(viaProxy, STREAMS, bytes)));
      l.in.push(await latency(inProcess, TXNS));
      l.proxy.push(await latency(viaProxy, TXNS));
    }
  } finally {
    await proxy.stop();
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  const ti = median(t.in), tp = median(t.proxy), li = median(l.in), lp = median(l.proxy);
  console.log(`h1 through ss-proxy (Unix socket) vs in-process, median of ${ROUNDS} rounds`);
  console.log(`  throughput, ${STREAMS} x ${MIB} MiB:  in-process ${ti.toFixed(1)} MB/s   proxy ${tp.toFixed(1)} MB/s   (${(tp / ti).toFixed(2)}x)`);
  const perMb = (x: { own: number; proxy: number; mb: number }) => `app+server ${(x.own / x.mb).toFixed(2)} ms/MB, proxy process ${(x.proxy / x.mb).toFixed(2)} ms/MB`;
  console.log(`  CPU per MB downloaded: in-process ${perMb(cpu.in)};  through the proxy ${perMb(cpu.proxy)}`);
  console.log(`  time per 64 B transaction:   in-process ${li.toFixed(0)} µs   proxy ${lp.toFixed(0)} µs   (${(li / lp).toFixed(2)}x)`);
  const line = (name: string, unit: string, ours: number, theirs: number, ratio: number) =>
    console.log(`BENCH ${JSON.stringify({ name, unit, ours: +ours.toFixed(2), peer: "in-process", theirs: +theirs.toFixed(2), ratio: +ratio.toFixed(3) })}`);
  line(`proxy-h1-throughput-${STREAMS}x${MIB}MiB`, "MB/s", tp, ti, tp / ti);
  line("proxy-h1-txn-64B", "us", lp, li, li / lp);
}

await main();
