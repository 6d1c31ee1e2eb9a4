#!/usr/bin/env node
// ss-sim: run one Secure Stream of a policy on the desktop simulator.

import { readFileSync } from "node:fs";
import { loadPolicy, runSim } from "./sim.js";

const USAGE = `usage: ss-sim --policy <policy.json|policy.ssp> --stream <streamtype> [options]

Runs the stream as the device would, printing each state by its lws name.
Exits 0 when the stream reached QOS_ACK_REMOTE, 1 when it failed, 2 on usage errors.

  --meta name=value     set stream metadata (repeatable)
  --blob name=file      put a file in blob storage: auth, device_serial, fw_version,
                        device_type, client_cert.0, client_key.0, ... (repeatable)
  --send <file>         payload to send (its length is announced)
  --out <file>          write received payload here
  --duration <seconds>  keep the stream up this long to receive, instead of
                        stopping at the first result`;

function parse(argv: string[]): Parameters<typeof runSim>[0] | "help" | "invalid" {
  let policyFile: string | undefined;
  let stream: string | undefined;
  const metadata = new Map<string, string>();
  const blobs = new Map<string, Uint8Array>();
  let send: Uint8Array | undefined;
  let out: string | undefined;
  let durationMs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    const pair = (what: string) => {
      const v = value();
      const eq = v.indexOf("=");
      if (eq < 1) throw new Error(`${arg} takes ${what}, got "${v}"`);
      return [v.slice(0, eq), v.slice(eq + 1)] as const;
    };
    switch (arg) {
      case "--policy": policyFile = value(); break;
      case "--stream": stream = value(); break;
      case "--meta": { const [k, v] = pair("name=value"); metadata.set(k, v); break; }
      case "--blob": { const [k, f] = pair("name=file"); blobs.set(k, new Uint8Array(readFileSync(f))); break; }
      case "--send": send = new Uint8Array(readFileSync(value())); break;
      case "--out": out = value(); break;
      case "--duration": {
        const s = Number(value());
        if (!(s >= 0)) throw new Error("--duration takes a number of seconds");
        durationMs = s * 1000;
        break;
      }
      case "--help": case "-h": return "help";
      default: throw new Error(`unknown option ${arg}`);
    }
  }
  if (!policyFile || !stream) throw new Error("--policy and --stream are required");
  const policy = loadPolicy(policyFile, (line) => process.stderr.write(`${line}\n`));
  if (!policy) return "invalid";
  return { policy, stream, metadata, blobs, send, out, durationMs };
}

async function main(): Promise<number> {
  let options: ReturnType<typeof parse>;
  try {
    options = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`ss-sim: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options === "invalid") return 1;
  try {
    return await runSim(options);
  } catch (e) {
    process.stderr.write(`ss-sim: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main();
