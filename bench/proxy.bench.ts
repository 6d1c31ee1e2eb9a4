// Secure Streams through ss-proxy versus the same streams in-process, in the
// same run: throughput of 8 MiB downloads (8 streams at once) and the time
// of one small transaction (sequential, on a kept-alive connection). The
// proxy is a child process, as it is in use (lws' proxy manages 0.42x of
// in-process throughput for h1). Rounds interleave the two; medians reported.
// The downloads run twice: as any app (each rx payload the app's to keep),
// and with reads lent on both sides (this app reads rx during onRx only:
// h1's lendReads in-process, SSPC's lendRx through the proxy). Each prints
// the CPU ms per MB of this process (app and body server) and of the proxy.
// On the 2-core development machine, shared with other work, six runs gave
// h1 ratios of 0.38 to 0.74, median 0.55 (lent: 0.26 to 0.61, median 0.50;
// before lent reads and the other changes in docs/serialization.md,
// "Throughput": 0.29 to 0.42, median 0.37), the proxy process 0.75 to 0.92
// ms/MB (before: 1.52 to 2.03).
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
import { createH2Binding } from "../src/protocols/h2.js";
import { startH2Servers } from "../test-host/support/h2-servers.js";
import { opensslAvailable, testPki } from "../test-host/support/pki.js";
import { Ret, State } from "../src/ss/states.js";
import type { StreamApi, StreamHandlers } from "../src/ss/stream.js";
import { SspcContext } from "../src/sspc/client.js";
import { proxyAt, startBodyServer, startProxyChild, writeProxyPolicy } from "../test-host/support/proxy-rig.js";

const ROUNDS = Number(process.env.PROXY_BENCH_ROUNDS ?? 5);
const MIB = Number(process.env.PROXY_BENCH_MIB ?? 8);
const STREAMS = Number(process.env.PROXY_BENCH_STREAMS ?? 8);
const TXNS = Number(process.env.PROXY_BENCH_TXNS ?? 500);

type Factory = { create(streamtype: string, handlers: StreamHandlers<StreamApi>): StreamApi };

/** Downloads `n` bytes on each of `streams` streams of `streamtype` at once; resolves to MB/s. */
function throughput(ss: Factory, streams: number, n: number, streamtype = "get"): Promise<number> {
  const start = performance.now();
  return Promise.all(Array.from({ length: streams }, () => new Promise<number>((resolve, reject) => {
    let got = 0;
    const s = ss.create(streamtype, {
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

/** CPU time of a process, ms, from /proc (clock ticks of 10 ms): user + system, and system alone. */
function cpuMsOf(pid: number): { all: number; sys: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return { all: (Number(fields[11]) + Number(fields[12])) * 10, sys: Number(fields[12]) * 10 };
}
interface Cpu { own: number; ownSys: number; proxy: number; proxySys: number; mb: number }

/** Runs f, adding the CPU ms it took of this process and of the proxy to `into`. */
async function metered<T>(proxyPid: number, into: Cpu, mb: number, f: () => Promise<T>): Promise<T> {
  const own = process.cpuUsage(), proxy = cpuMsOf(proxyPid);
  const r = await f();
  const used = process.cpuUsage(own), after = cpuMsOf(proxyPid);
  into.own += (used.user + used.system) / 1000;
  into.ownSys += used.system / 1000;
  into.proxy += after.all - proxy.all;
  into.proxySys += after.sys - proxy.sys;
  into.mb += mb;
  return r;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(tmpdir(), "proxy-bench-"));
  const server = await startBodyServer();
  const policyFile = path.join(tmp, "policy.json");
  // h2: the cleartext one of the h2 test servers (its TLS ones need the test PKI, made with openssl)
  const h2 = opensslAvailable() ? await startH2Servers(testPki()) : undefined;
  if (!h2) console.log("h2 case skipped: openssl is missing");
  writeProxyPolicy(policyFile, server.port, h2 ? {
    s: [{ h2get: { endpoint: "127.0.0.1", port: h2.ports.plain, protocol: "h2", http_url: "/bytes/${n}", metadata: [{ n: "" }] } }],
  } : {});
  const proxy = await startProxyChild(policyFile, ["--unix", path.join(tmp, "proxy.sock")]);
  const host = new NodeHost({ log: () => undefined });
  const inProcess = new SecureStreams(host, loadPolicy(policyFile, console.error)!, { bindings: [createH1Binding(), createH2Binding()] });
  const viaProxy = new SspcContext(host, { proxy: proxyAt(proxy.addresses[0]!) });
  // this app reads rx during onRx only (lws' rule): both sides may lend it their reads
  const inLent = new SecureStreams(host, loadPolicy(policyFile, console.error)!, { bindings: [createH1Binding({ lendReads: true })] });
  const viaLent = new SspcContext(host, { proxy: proxyAt(proxy.addresses[0]!), lendRx: true });
  const bytes = MIB * 1024 * 1024;
  const t = { in: [] as number[], proxy: [] as number[], inLent: [] as number[], proxyLent: [] as number[] };
  const l = { in: [] as number[], proxy: [] as number[] };
  const h = { in: [] as number[], proxy: [] as number[] };
  // CPU per MB moved: this process (app, and the body server) and the proxy process
  const none = (): Cpu => ({ own: 0, ownSys: 0, proxy: 0, proxySys: 0, mb: 0 });
  const cpu = { in: none(), proxy: none(), inLent: none(), proxyLent: none() };
  try {
    // warm-up
    await throughput(inProcess, 2, 1 << 20);
    await throughput(viaProxy, 2, 1 << 20);
    await throughput(inLent, 2, 1 << 20);
    await throughput(viaLent, 2, 1 << 20);
    await latency(inProcess, 50);
    await latency(viaProxy, 50);
    for (let r = 0; r < ROUNDS; r++) {
      t.in.push(await metered(proxy.child.pid!, cpu.in, STREAMS * bytes / 1e6, () => throughput(inProcess, STREAMS, bytes)));
      t.proxy.push(await metered(proxy.child.pid!, cpu.proxy, STREAMS * bytes / 1e6, () => throughput(viaProxy, STREAMS, bytes)));
      t.inLent.push(await metered(proxy.child.pid!, cpu.inLent, STREAMS * bytes / 1e6, () => throughput(inLent, STREAMS, bytes)));
      t.proxyLent.push(await metered(proxy.child.pid!, cpu.proxyLent, STREAMS * bytes / 1e6, () => throughput(viaLent, STREAMS, bytes)));
      if (h2) {
        h.in.push(await throughput(inProcess, STREAMS, 1 << 20, "h2get"));
        h.proxy.push(await throughput(viaProxy, STREAMS, 1 << 20, "h2get"));
      }
      l.in.push(await latency(inProcess, TXNS));
      l.proxy.push(await latency(viaProxy, TXNS));
    }
  } finally {
    await proxy.stop();
    await server.close();
    h2?.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  const ti = median(t.in), tp = median(t.proxy), li = median(l.in), lp = median(l.proxy);
  console.log(`h1 through ss-proxy (Unix socket) vs in-process, median of ${ROUNDS} rounds`);
  console.log(`  throughput, ${STREAMS} x ${MIB} MiB:  in-process ${ti.toFixed(1)} MB/s   proxy ${tp.toFixed(1)} MB/s   (${(tp / ti).toFixed(2)}x)`);
  const perMb = (x: Cpu) => `app+server ${(x.own / x.mb).toFixed(2)} ms/MB (kernel ${(x.ownSys / x.mb).toFixed(2)}), proxy process ${(x.proxy / x.mb).toFixed(2)} ms/MB (kernel ${(x.proxySys / x.mb).toFixed(2)})`;
  console.log(`  CPU per MB downloaded: in-process ${perMb(cpu.in)};  through the proxy ${perMb(cpu.proxy)}`);
  const til = median(t.inLent), tpl = median(t.proxyLent);
  console.log(`  the same, reads lent (an app that reads rx during onRx only: lendReads in-process, lendRx through the proxy):`);
  console.log(`  throughput, ${STREAMS} x ${MIB} MiB:  in-process ${til.toFixed(1)} MB/s   proxy ${tpl.toFixed(1)} MB/s   (${(tpl / til).toFixed(2)}x)`);
  console.log(`  CPU per MB downloaded: in-process ${perMb(cpu.inLent)};  through the proxy ${perMb(cpu.proxyLent)}`);
  console.log(`  (lent through the proxy against in-process as any app: ${(tpl / ti).toFixed(2)}x)`);
  if (h2) console.log(`  h2 throughput, ${STREAMS} x 1 MiB:  in-process ${median(h.in).toFixed(1)} MB/s   proxy ${median(h.proxy).toFixed(1)} MB/s   (${(median(h.proxy) / median(h.in)).toFixed(2)}x)`);
  console.log(`  time per 64 B transaction:   in-process ${li.toFixed(0)} µs   proxy ${lp.toFixed(0)} µs   (${(li / lp).toFixed(2)}x)`);
  const line = (name: string, unit: string, ours: number, theirs: number, ratio: number) =>
    console.log(`BENCH ${JSON.stringify({ name, unit, ours: +ours.toFixed(2), peer: "in-process", theirs: +theirs.toFixed(2), ratio: +ratio.toFixed(3) })}`);
  line(`proxy-h1-throughput-${STREAMS}x${MIB}MiB`, "MB/s", tp, ti, tp / ti);
  line(`proxy-h1-throughput-lent-${STREAMS}x${MIB}MiB`, "MB/s", tpl, til, tpl / til);
  line("proxy-h1-txn-64B", "us", lp, li, li / lp);
  if (h2) line(`proxy-h2-throughput-${STREAMS}x1MiB`, "MB/s", median(h.proxy), median(h.in), median(h.proxy) / median(h.in));
}

await main();
