#!/usr/bin/env node
// ss-sim: run one Secure Stream of a policy on the desktop simulator.

import { readFileSync } from "node:fs";
import { openPolicy, runSim, type SimOptions } from "./sim.js";
import type { ConnectOptions } from "../../src/host.js";

const USAGE = `usage: ss-sim --policy <policy.json|policy.ssp> --stream <streamtype> [options]
       ss-sim --proxy <unix path|@abstract|host:port> --stream <streamtype> [options]

Runs the stream as the device would, printing each state by its lws name;
with --proxy, through an ss-proxy, which holds the policy.

  --proxy <where>       run through an ss-proxy at a Unix socket path, @abstract
                        name, or host:port (no --policy: the proxy has it)
  --meta name=value     set stream metadata (repeatable)
  --blob name=file      put a file in blob storage: auth, device_serial, fw_version,
                        device_type, client_cert.0, client_key.0, ... (repeatable)
  --blob-dir <dir>      keep blobs as files in this directory (written atomically);
                        --blob values are stored there too
  --policy-store <dir>  keep policy updates here (two slots): boot on the one in
                        force, and fetch a new one if the policy has fetch_policy
  --send <file>         payload to send (its length is announced)
  --out <file>          write received payload here
  --duration <seconds>  keep the stream up this long to receive, instead of
                        stopping at the first result

Environment: socks_proxy=[user:pass@]host:port sends every connection (to the
servers, or to the ss-proxy over TCP) through that SOCKS5 proxy, unless the
policy's via-socks5 names one.

Exit status:
  0  the stream reached QOS_ACK_REMOTE (ws: received a whole message)
  1  the stream failed: QOS_NACK_REMOTE, TIMEOUT, AUTH_FAILED, ALL_RETRIES_FAILED,
     or it stopped with no result and nothing left to wait for
  2  usage error: unknown option, missing value or argument, unreadable file
  3  the policy cannot be used: it has errors (each printed as file:line:col),
     the compiled file is damaged (file, reason and code printed), or it has
     no such streamtype`;

/** A command line that cannot run: exit 2, with the usage text when `usage`. */
class UsageError extends Error {
  constructor(message: string, readonly usage = true) {
    super(message);
  }
}

interface Args {
  readonly policyFile?: string;
  readonly options: Omit<SimOptions, "policy">;
}

function readInput(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`, false);
  }
}

function parse(argv: string[]): Args | "help" {
  let policyFile: string | undefined;
  let stream: string | undefined;
  const metadata = new Map<string, string>();
  const blobs = new Map<string, Uint8Array>();
  let send: Uint8Array | undefined;
  let out: string | undefined;
  let durationMs: number | undefined;
  let blobDir: string | undefined;
  let policyStore: string | undefined;
  let proxy: ConnectOptions | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    const pair = (what: string) => {
      const v = value();
      const eq = v.indexOf("=");
      if (eq < 1) throw new UsageError(`${arg} takes ${what}, got "${v}"`);
      return [v.slice(0, eq), v.slice(eq + 1)] as const;
    };
    switch (arg) {
      case "--policy": policyFile = value(); break;
      case "--stream": stream = value(); break;
      case "--proxy": proxy = proxyAddress(value()); break;
      case "--meta": { const [k, v] = pair("name=value"); metadata.set(k, v); break; }
      case "--blob": { const [k, f] = pair("name=file"); blobs.set(k, readInput(f)); break; }
      case "--blob-dir": blobDir = value(); break;
      case "--policy-store": policyStore = value(); break;
      case "--send": send = readInput(value()); break;
      case "--out": out = value(); break;
      case "--duration": {
        const s = Number(value());
        if (!(s >= 0)) throw new UsageError("--duration takes a number of seconds");
        durationMs = s * 1000;
        break;
      }
      case "--help": case "-h": return "help";
      default: throw new UsageError(`unknown option ${arg}`);
    }
  }
  if (!stream || (!policyFile && !proxy)) throw new UsageError("--stream and one of --policy or --proxy are required");
  if (policyFile && proxy) throw new UsageError("--policy and --proxy do not go together: the proxy has the policy");
  return { policyFile, options: { stream, metadata, blobs, blobDir, policyStore, send, out, durationMs, proxy } };
}

/** host:port, else a socket path (or "@name", abstract). */
function proxyAddress(v: string): ConnectOptions {
  if (!/^.+:\d+$/.test(v) || v.includes("/")) return { host: "localhost", port: 0, path: v };
  const colon = v.lastIndexOf(":");
  const port = Number(v.slice(colon + 1));
  if (colon < 1 || !Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--proxy takes a socket path, @name or host:port, got "${v}"`);
  return { host: v.slice(0, colon), port };
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  let bytes: Uint8Array;
  try {
    args = parse(process.argv.slice(2));
    if (args === "help") {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (args.policyFile === undefined) return await runSim(args.options);
    bytes = readInput(args.policyFile);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`ss-sim: ${e.message}\n${e.usage ? `${USAGE}\n` : ""}`);
    return 2;
  }
  const { policyFile, options } = args;
  const policy = openPolicy(policyFile!, bytes, (line) => process.stderr.write(`${line}\n`));
  if (!policy) return 3;
  if (!policy.streamtype(options.stream)) {
    const names = Array.from({ length: policy.streamtypeCount }, (_, i) => policy.streamtypeAt(i).name);
    process.stderr.write(`ss-sim: ${policyFile} has no streamtype "${options.stream}" (it has ${names.join(", ") || "none"})\n`);
    return 3;
  }
  try {
    return await runSim({ ...options, policy });
  } catch (e) {
    process.stderr.write(`ss-sim: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main();
