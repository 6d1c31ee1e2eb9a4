// Bundle entry for the scenario tests that run the whole runtime inside XS
// (test-host/h1-xs.test.ts, through support/run-stream-xs.ts):
// bundleForXS(<dist>/test-host/support/xs-stream-entry.js, { globalName: "xsStream" }).
// PORTABLE: everything here runs inside the XS engine, on XSBridgeHost.
//
// startStream() is the XS half of support/run-stream.ts's runStream: it
// creates SecureStreams (h1, h2 and ws bindings, strict), runs one stream and reports to
// the parent through XSBridgeHost.message(), as JSON:
//   {t:"state", state}   each state; the parent answers {stop?, ret?}: stop
//                        when its `until` holds, ret to return from onState
//   {t:"end", record}    the rx summary, once the parent said stop
//   {t:"error", message} startStream threw (e.g. refused metadata)
// serve() lets the parent start it with XSBridge.post(pack(head, sections)):
// head {streamtype, metadata?, startTimeout?}, sections [policy, send?], so
// the policy and the payload come in as raw bytes (no base64 through a script).

import { scenarioHandlers, beginStream, type ScenarioOptions } from "./stream-record.js";
import { XSBridgeHost } from "../../hosts/xsnap/xs-host.js";
import { SecureStreams } from "../../src/ss/context.js";
import { Policy } from "../../src/policy/reader.js";
import { createH1Binding } from "../../src/protocols/h1.js";
import { ws } from "../../src/protocols/ws.js";
import { createH2Binding } from "../../src/protocols/h2.js";
import { State, Ret, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream } from "../../src/ss/stream.js";
import { utf8Decode, utf8Encode } from "../../src/util/utf8.js";
import { unpack } from "../../hosts/xsnap/bridge-protocol.js";
import { Murmur3 } from "./murmur3.js";

export interface XSStreamOptions extends ScenarioOptions {
  /** The context's responseTimeoutMs. */
  readonly responseTimeoutMs?: number;
}

/** The JSON head of the start message serve() takes: the options but `send`, which comes as raw bytes. */
export interface XSStartHead extends Omit<XSStreamOptions, "send"> {
  readonly streamtype: string;
}

/** What XS reports at the end: run-stream.ts's StreamRecord without states (the parent has them) and logs (the parent's). */
export interface XSRxRecord {
  /** Host timers still set when the run stopped, before the stream was destroyed: a retry would be one. */
  timersPending: number;
  rxBytes: number;
  eoms: number;
  rxChunks: number;
  largestChunk: number;
  /** MurmurHash3 x86_32 of the payload (support/murmur3.ts). */
  hash: string;
  perf: string[];
}

export type XSReport =
  | { t: "state"; state: string }
  | { t: "end"; record: XSRxRecord }
  | { t: "error"; message: string };

export interface XSStateReply {
  stop?: boolean;
  ret?: HandlerReturn;
}

let bridgeHost: XSBridgeHost | undefined;

function host(): XSBridgeHost {
  return (bridgeHost ??= new XSBridgeHost().install());
}

function report(r: XSReport): XSStateReply {
  const answer = host().message(utf8Encode(JSON.stringify(r)));
  return answer.length ? (JSON.parse(utf8Decode(answer, 0, answer.length) ?? "{}") as XSStateReply) : {};
}

/** Starts a stream for each message the parent posts (see the header). */
export function serve(): void {
  host().onMessage = (bytes) => {
    const { head, sections } = unpack<XSStartHead>(bytes);
    startStream(sections[0]!, head.streamtype, { ...head, send: sections[1] });
  };
}

/** Runs one stream of `streamtype` until the parent says stop; see the header for the reports. */
export function startStream(policyBytes: Uint8Array, streamtype: string, o: XSStreamOptions = {}): void {
  const h = host();
  const h1 = createH1Binding();
  const ss = new SecureStreams(h, Policy.open(policyBytes), { bindings: [h1, createH2Binding(), ws], strict: true, responseTimeoutMs: o.responseTimeoutMs });
  const hash = new Murmur3();
  const record: XSRxRecord = { timersPending: 0, rxBytes: 0, eoms: 0, rxChunks: 0, largestChunk: 0, hash: "", perf: [] };
  let done = false;
  let destroying = false;
  let stream: SecureStream | undefined;
  const end = () => {
    if (done) return;
    done = true;
    // From the timer queue, as runStream's setImmediate: not inside the stream's own callback.
    h.setTimer(0, () => {
      record.timersPending = h.pending.timers;
      destroying = true;
      stream?.destroy();
      h1.closeIdle(); // the context ends with the run: no connection waits for a next stream
      record.hash = hash.digest();
      report({ t: "end", record });
    });
  };
  try {
    stream = ss.create(streamtype, scenarioHandlers(o, record, hash, (state) => {
      if (destroying) return Ret.OK; // the test's own destroy() is not part of the record
      const reply = report({ t: "state", state: stateName(state) });
      if (reply.stop) end();
      return reply.ret ?? (state === State.TIMEOUT ? Ret.DISCONNECT_ME : Ret.OK);
    }));
    beginStream(stream, o);
  } catch (e) {
    done = true;
    ss.destroyAll();
    report({ t: "error", message: `${(e as Error).name}: ${(e as Error).message}` });
  }
}

/** Streams and timers XSBridgeHost still tracks (both 0 after a clean end). */
export function pending(): { streams: number; timers: number } {
  return host().pending;
}
