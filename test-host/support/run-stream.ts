// Runs one Secure Stream on the Node host against real local servers and
// records what the app sees, for the scenario tests.

import { rxRecorder, beginStream } from "./stream-record.js";
import { sendBytes } from "../../src/ss/send-bytes.js";
import { createHash } from "node:crypto";
import { NodeHost } from "../../hosts/node/host.js";
import { SecureStreams } from "../../src/ss/context.js";
import { State, Ret, stateName, type HandlerReturn } from "../../src/ss/states.js";
import { Policy } from "../../src/policy/reader.js";
import { h1 } from "../../src/protocols/h1.js";
import { compilePolicy } from "../../tools/policy/compile.js";
import type { SecureStream } from "../../src/ss/stream.js";

export interface StreamRecord {
  states: string[];
  rxBytes: number;
  rxChunks: number;
  largestChunk: number;
  sha256: string;
  perf: string[];
  logs: string[];
}

export function compile(policy: object): Policy {
  const r = compilePolicy(JSON.stringify(policy));
  const errors = r.diagnostics.filter((d) => !d.warning);
  if (!r.binary) throw new Error(`test policy does not compile: ${errors.map((d) => `${d.pointer}: ${d.message}`).join("; ")}`);
  return Policy.open(r.binary);
}

export interface RunOptions {
  readonly metadata?: Record<string, string>;
  readonly send?: Uint8Array;
  /** Stop when this returns true (checked after each state). */
  readonly until: (states: string[]) => boolean;
  /** Give up after this long (a test failure, not a result). */
  readonly limitMs?: number;
  readonly onState?: (state: number, stream: SecureStream) => HandlerReturn | void;
  readonly startTimeout?: boolean;
  readonly blobs?: Record<string, Uint8Array>;
  /** The host's DNS servers (NodeHostOptions.dnsServers). */
  readonly dnsServers?: readonly string[];
}

/** Runs the stream until `until` holds; transitions are checked strictly. */
export function runStream(policy: Policy, streamtype: string, o: RunOptions): Promise<StreamRecord> {
  const logs: string[] = [];
  const host = new NodeHost({ log: (m) => logs.push(m), ...(o.dnsServers ? { dnsServers: o.dnsServers } : {}) });
  for (const [k, v] of Object.entries(o.blobs ?? {})) host.blobs.set(k, v);
  const ss = new SecureStreams(host, policy, { bindings: [h1], strict: true });
  const hash = createHash("sha256");
  const record: StreamRecord = { states: [], rxBytes: 0, rxChunks: 0, largestChunk: 0, sha256: "", perf: [], logs };
  return new Promise((resolve, reject) => {
    let done = false;
    const end = (error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(limit);
      setImmediate(() => {
        stream.destroy();
        record.sha256 = hash.digest("hex");
        if (error) reject(error);
        else resolve(record);
      });
    };
    const limit = setTimeout(() => end(new Error(`${streamtype}: no result in time; states ${record.states.join(" ")}; logs ${logs.join(" | ")}`)), o.limitMs ?? 20000);
    let stream: SecureStream;
    stream = ss.create(streamtype, {
      onState: (state) => {
        if (done) return Ret.OK; // the test's own destroy() is not part of the record
        record.states.push(stateName(state));
        const ret = o.onState?.(state, stream!);
        if (o.until(record.states)) end();
        return ret ?? (state === State.TIMEOUT ? Ret.DISCONNECT_ME : Ret.OK);
      },
      onRx: rxRecorder(record, hash),
      onTx: sendBytes(o.send ?? new Uint8Array(0)),
    });
    beginStream(stream, o);
  });
}

/** Deterministic pseudo-random bytes (xorshift), so servers and tests agree on a body. */
export function patternBytes(length: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
