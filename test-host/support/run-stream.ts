// Runs one Secure Stream on the Node host against real local servers and
// records what the app sees, for the scenario tests.

import { scenarioHandlers, beginStream, type ScenarioOptions } from "./stream-record.js";
import { createHash } from "node:crypto";
import { NodeHost } from "../../hosts/node/host.js";
import { SecureStreams } from "../../src/ss/context.js";
import { State, Ret, stateName, type HandlerReturn } from "../../src/ss/states.js";
import { Policy } from "../../src/policy/reader.js";
import { createH1Binding, type H1Binding } from "../../src/protocols/h1.js";
import { compilePolicy } from "../../tools/policy/compile.js";
import type { ProtocolBinding } from "../../src/protocols/binding.js";
import type { StreamApi } from "../../src/ss/stream.js";
import { proxyLink, type ProxyLinkRig, type Via } from "./proxy-link.js";

export interface StreamRecord {
  states: string[];
  /** States reported after `until` held and before the test destroyed the stream (e.g. a QOS state after DISCONNECTED). */
  after: string[];
  /** Host timers still set when the run stopped, before the stream was destroyed: a retry would be one. */
  timersPending: number;
  rxBytes: number;
  eoms: number;
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

export interface RunOptions extends ScenarioOptions {
  /** Stop when this returns true (checked after each state). */
  readonly until: (states: string[]) => boolean;
  /** Give up after this long (a test failure, not a result). */
  readonly limitMs?: number;
  readonly onState?: (state: number, stream: StreamApi) => HandlerReturn | void;
  readonly blobs?: Record<string, Uint8Array>;
  /** The host's DNS servers (NodeHostOptions.dnsServers). */
  readonly dnsServers?: readonly string[];
  /** The context's responseTimeoutMs. */
  readonly responseTimeoutMs?: number;
  /** The protocol bindings (default: h1 only; through a proxy, the proxy's defaults). */
  readonly bindings?: readonly ProtocolBinding[];
  /** Run the app through an ss-proxy (default: SS_VIA_PROXY); "in-process" overrides the environment. */
  readonly via?: Via | "in-process";
}

/** A NodeHost that knows which of its timers are still set. */
class CountingHost extends NodeHost {
  readonly pending = new Set<unknown>();
  override setTimer(ms: number, callback: () => void): unknown {
    const id: unknown = super.setTimer(ms, () => {
      this.pending.delete(id);
      callback();
    });
    this.pending.add(id);
    return id;
  }
  override clearTimer(id: unknown): void {
    this.pending.delete(id);
    super.clearTimer(id);
  }
}

/**
 * Where runStream runs the app: in-process, or (SS_VIA_PROXY=unix or tcp in
 * the environment) through an ss-proxy started for the run, the app using
 * SSPC: the same scenarios, unchanged, through the proxy.
 */
export const VIA_PROXY = process.env.SS_VIA_PROXY as Via | undefined;

/** Runs the stream until `until` holds; transitions are checked strictly. */
export async function runStream(policy: Policy, streamtype: string, o: RunOptions): Promise<StreamRecord> {
  const logs: string[] = [];
  const host = new CountingHost({ log: (m) => logs.push(m), ...(o.dnsServers ? { dnsServers: o.dnsServers } : {}) });
  for (const [k, v] of Object.entries(o.blobs ?? {})) host.blobs.set(k, v);
  const bindings = o.bindings ?? [createH1Binding()];
  let ss: { create(name: string, handlers: ReturnType<typeof scenarioHandlers<StreamApi>>): StreamApi };
  let proxy: ProxyLinkRig | undefined;
  let client: CountingHost | undefined;
  const via = o.via ?? VIA_PROXY ?? "in-process";
  if (via !== "in-process") {
    client = new CountingHost({ log: (m) => logs.push(m) });
    proxy = await proxyLink(policy, host, client, via, { bindings: o.bindings, responseTimeoutMs: o.responseTimeoutMs });
    ss = proxy.ctx;
  } else {
    ss = new SecureStreams(host, policy, { bindings, strict: true, responseTimeoutMs: o.responseTimeoutMs });
  }
  const hash = createHash("sha256");
  const record: StreamRecord = { states: [], after: [], timersPending: 0, rxBytes: 0, eoms: 0, rxChunks: 0, largestChunk: 0, sha256: "", perf: [], logs };
  return await new Promise<StreamRecord>((resolve, reject) => {
    let done = false;
    let destroying = false;
    let failure: Error | undefined;
    const end = (error?: Error) => {
      failure ??= error; // an error wins, even after `until` held
      if (done) return;
      done = true;
      clearTimeout(limit);
      setImmediate(() => {
        // through the proxy, the app's side: the proxy's stream goes with its link, when the proxy sees it close
        record.timersPending = (client ?? host).pending.size;
        destroying = true;
        stream.destroy();
        // the context ends with the run: no pooled connection waits for a next stream
        for (const b of bindings) (b as Partial<H1Binding>).closeIdle?.();
        record.sha256 = hash.digest("hex");
        void proxy?.close();
        if (failure) reject(failure);
        else resolve(record);
      });
    };
    const limit = setTimeout(() => end(new Error(`${streamtype}: no result in time; states ${record.states.join(" ")}; logs ${logs.join(" | ")}`)), o.limitMs ?? 20000);
    const stream = ss.create(streamtype, scenarioHandlers<StreamApi>(o, record, hash, (state, s) => {
      if (destroying) return Ret.OK; // the test's own destroy() is not part of the record
      (done ? record.after : record.states).push(stateName(state));
      const ret = o.onState?.(state, s);
      if (!done && o.until(record.states)) end();
      return ret ?? (state === State.TIMEOUT ? Ret.DISCONNECT_ME : Ret.OK);
    }));
    try {
      beginStream(stream, o);
    } catch (e) {
      end(e as Error);
    }
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
