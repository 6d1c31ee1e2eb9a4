// What the proxy tests share: ss-proxy as a child process (so that it can be
// killed, and its memory measured alone), a local http server with bodies of
// any size, and an SSPC download that records what the app sees.

import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { NodeHost } from "../../hosts/node/host.js";
import type { ConnectOptions } from "../../src/host.js";
import { SspcContext, type SspcOptions, type SspcStream } from "../../src/sspc/client.js";
import { Ret, RxFlag, State, stateName } from "../../src/ss/states.js";
import { repoRoot } from "./corpus.js";
import { patternBytes } from "./run-stream.js";

/** An ss-proxy child process and where it listens. */
export interface ProxyChild {
  readonly child: ChildProcess;
  readonly addresses: string[];
  readonly stderr: string[];
  /** Peak resident memory (VmHWM), KiB, read from /proc while it runs. */
  peakRssKiB(): number;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export async function startProxyChild(policyFile: string, listen: string[]): Promise<ProxyChild> {
  // SS_PROXY_NODE_ARGS: node options for the proxy alone (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p" to profile it)
  const nodeArgs = process.env.SS_PROXY_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, path.join(repoRoot, "dist/hosts/node/ss-proxy.js"), "--policy", policyFile, ...listen], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stderr: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (d: string) => stderr.push(d));
  const addresses: string[] = [];
  const wanted = listen.filter((a) => a.startsWith("--")).length;
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      for (const m of out.matchAll(/^listening (\S+)$/gm)) if (!addresses.includes(m[1]!)) addresses.push(m[1]!);
      if (addresses.length >= wanted) resolve();
    });
    child.once("exit", (code) => reject(new Error(`ss-proxy exited (${code}): ${stderr.join("")}`)));
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    child, addresses, stderr,
    peakRssKiB: () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? NaN),
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** ConnectOptions for an address ss-proxy printed. */
export function proxyAt(address: string): ConnectOptions {
  if (!/^.+:\d+$/.test(address) || address.includes("/")) return { host: "localhost", port: 0, path: address };
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}

/** GET /bytes/N: N pattern bytes; /slow/N: the same, 16 KiB every 10 ms. */
export async function startBodyServer(): Promise<{ port: number; close(): Promise<void>; server: http.Server }> {
  const server = http.createServer((req, res) => {
    const m = /^\/(bytes|slow)\/(\d+)$/.exec(req.url ?? "");
    if (!m) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const body = bodyOf(Number(m[2]));
    res.setHeader("content-length", body.length);
    res.setHeader("x-served", "body-server");
    if (m[1] === "bytes") {
      res.end(body);
      return;
    }
    let at = 0;
    const t = setInterval(() => {
      res.write(body.subarray(at, at + 16384));
      at += 16384;
      if (at >= body.length) {
        clearInterval(t);
        res.end();
      }
    }, 10);
    res.on("close", () => clearInterval(t));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const bodies = new Map<number, Uint8Array>();
export function bodyOf(n: number): Uint8Array {
  let b = bodies.get(n);
  if (!b) bodies.set(n, (b = patternBytes(n, 0x1234567)));
  return b;
}

export function sha(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A policy file with streamtypes on the body server: get (/bytes/N from metadata), slow, and meta (headers). */
export function writeProxyPolicy(file: string, port: number, extra: object = {}): void {
  writeFileSync(file, JSON.stringify({
    retry: [{ quick: { backoff: [100, 200, 400], conceal: 3, jitterpc: 0 } }],
    s: [
      { get: { endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: "bytes/${n}", retry: "quick", metadata: [{ n: "" }, { served: "x-served:" }] } },
      { slow: { endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: "slow/${n}", retry: "quick", metadata: [{ n: "" }] } },
      ...(Array.isArray((extra as { s?: unknown }).s) ? (extra as { s: object[] }).s : []),
    ],
  }));
}

/** What one SSPC download saw. */
export interface Download {
  states: string[];
  /** Bytes of the last message (since its SOM), hashed. */
  sha: string;
  bytes: number;
  served?: string;
}

/**
 * Downloads /bytes/N (or /slow/N) through the proxy with SSPC; resolves at
 * QOS_ACK_REMOTE (or rejects on a failure state or after limitMs).
 */
export function sspcDownload(ctx: SspcContext, streamtype: string, n: number, limitMs = 60000, onStream?: (s: SspcStream, d: Download) => void): Promise<Download> {
  return new Promise((resolve, reject) => {
    const d: Download = { states: [], sha: "", bytes: 0 };
    let hash = createHash("sha256");
    const limit = setTimeout(() => { s.destroy(); reject(new Error(`no result in ${limitMs} ms: ${d.states.join(" ")}`)); }, limitMs);
    const s = ctx.create(streamtype, {
      onState: (state, _ack, stream) => {
        d.states.push(stateName(state));
        if (state === State.QOS_ACK_REMOTE) {
          clearTimeout(limit);
          d.sha = hash.digest("hex");
          d.served = stream.getMetadata("served");
          setImmediate(() => stream.destroy());
          resolve(d);
        } else if (state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED || state === State.DESTROYING && !d.sha) {
          clearTimeout(limit);
          reject(new Error(`${streamtype}: ${d.states.join(" ")}`));
        }
        return Ret.OK;
      },
      onRx: (payload, flags) => {
        if (flags & RxFlag.SOM) {
          hash = createHash("sha256");
          d.bytes = 0;
        }
        hash.update(payload);
        d.bytes += payload.length;
        return Ret.OK;
      },
    });
    s.setMetadata("n", String(n));
    onStream?.(s, d);
    s.requestTx();
  });
}

export function sspc(proxy: ConnectOptions, options: Partial<SspcOptions> = {}, log: (m: string) => void = () => undefined): SspcContext {
  return new SspcContext(new NodeHost({ log }), { proxy, ...options });
}
