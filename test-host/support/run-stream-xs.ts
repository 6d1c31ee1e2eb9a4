// Runs one Secure Stream INSIDE XS (xsnap) against real local servers and
// records what the app sees: the XS twin of run-stream.ts's runStream. The
// runtime (SecureStreams, h1, policy reader) runs in an xsnap worker on
// XSBridgeHost; its sockets are NodeHost connections in this process
// (hosts/xsnap/bridge.ts). The XS half is support/xs-stream-entry.ts.

import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForXS } from "../../hosts/xsnap/bundle.js";
import { XSBridge, type Crank } from "../../hosts/xsnap/bridge.js";
import { pack } from "../../hosts/xsnap/bridge-protocol.js";
import type { HandlerReturn } from "../../src/ss/states.js";
import type { XSReport, XSRxRecord, XSStartHead, XSStateReply, XSStreamOptions } from "./xs-stream-entry.js";

export interface XSStreamRecord extends XSRxRecord {
  states: string[];
  /** States reported after `until` held and before the test destroyed the stream. */
  after: string[];
  /** log() lines of the XS runtime and of the parent's NodeHost. */
  logs: string[];
  /** Meter figures of every crank of the run. */
  cranks: Crank[];
  /** Connections and timers the bridge still held once the stream was destroyed (should be none). */
  pending: { connections: number; timers: number };
}

export interface XSRunOptions extends XSStreamOptions {
  /** Stop when this returns true (checked after each state). */
  readonly until: (states: string[]) => boolean;
  /** Give up after this long (a test failure, not a result). */
  readonly limitMs?: number;
  /** Called for each state (its lws name) before `until`; its return is onState's. */
  readonly onState?: (state: string, states: readonly string[]) => HandlerReturn | void;
  /** Set in the parent's NodeHost blob store before the stream starts. */
  readonly blobs?: Record<string, Uint8Array>;
  /** Measure live heap slots after each crank (slow: a gc() crank each). */
  readonly liveSlots?: boolean;
}

const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), "xs-stream-entry.js");
let bundled: Promise<string> | undefined;

/** The XS bundle of the runtime + xs-stream-entry (global `xsStream`); bundleForXS refuses Node-only code. */
export function streamBundle(): Promise<string> {
  return (bundled ??= bundleForXS(entry, { globalName: "xsStream" }));
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Runs `streamtype` of the compiled `policy` in a fresh XS worker until `until` holds. */
export async function runStreamInXS(policy: Uint8Array, streamtype: string, o: XSRunOptions): Promise<XSStreamRecord> {
  const states: string[] = [];
  const after: string[] = [];
  let stopped = false;
  const logs: string[] = [];
  const cranks: Crank[] = [];
  let settle!: { resolve: (r: XSRxRecord) => void; reject: (e: Error) => void };
  const result = new Promise<XSRxRecord>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => {}); // it may fail before it is awaited; the await below still sees the error
  const onMessage = (bytes: Uint8Array): Uint8Array => {
    const r = JSON.parse(dec.decode(bytes)) as XSReport;
    if (r.t === "state") {
      (stopped ? after : states).push(r.state);
      const reply: XSStateReply = {};
      const ret = o.onState?.(r.state, states);
      if (ret !== undefined) reply.ret = ret;
      if (stopped || o.until(states)) reply.stop = stopped = true;
      return enc.encode(JSON.stringify(reply));
    }
    if (r.t === "end") settle.resolve(r.record);
    else settle.reject(new Error(r.message));
    return new Uint8Array(0);
  };
  const bridge = await XSBridge.start([await streamBundle(), "xsStream.serve();"], {
    log: (m) => logs.push(m),
    onMessage,
    onCrank: (c) => cranks.push(c),
    onFailure: (e) => settle.reject(e),
    liveSlots: o.liveSlots,
  });
  const limit = setTimeout(() => settle.reject(new Error(
    `${streamtype} (XS): no result in time; states ${states.join(" ")}; logs ${logs.join(" | ")}`)), o.limitMs ?? 20000);
  try {
    for (const [k, v] of Object.entries(o.blobs ?? {})) bridge.host.blobs.set(k, v);
    const { until: _u, limitMs: _l, onState: _s, blobs: _b, liveSlots: _v, send, ...scenario } = o;
    const head: XSStartHead = { streamtype, ...scenario };
    await bridge.post(pack(head, send ? [policy, send] : [policy]));
    const rx = await result;
    await bridge.idle();
    return { states, after, logs, cranks, ...rx, pending: bridge.pending };
  } finally {
    clearTimeout(limit);
    await bridge.close();
  }
}
