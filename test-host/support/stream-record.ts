// What the scenario tests record of a stream's payload, how they start it,
// and the app behaviours a scenario may ask for; shared by the Node run
// (run-stream.ts) and the XS run (xs-stream-entry.ts), so portable.

import { RxFlag, Ret, State, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { StreamApi, StreamHandlers } from "../../src/ss/stream.js";
import { sendBytes } from "../../src/ss/send-bytes.js";
import { utf8Decode } from "../../src/util/utf8.js";

export interface RxRecord {
  rxBytes: number;
  /** Pieces that carried EOM. */
  eoms: number;
  rxChunks: number;
  largestChunk: number;
  perf: string[];
}

/** What the app in a scenario does besides recording. JSON-safe: it crosses into XS as is. */
export interface ScenarioOptions {
  readonly metadata?: Record<string, string>;
  /** Payload to send, pulled in onTx pieces. */
  readonly send?: Uint8Array;
  /** Length to announce with requestTxLength() (default: send's length), to test what the runtime does when onTx disagrees. */
  readonly announce?: number;
  readonly startTimeout?: boolean;
  /** The app's handler throws at this state (its lws name), or "rx" / "tx" at the first payload. */
  readonly throwOn?: string;
  /** What onRx returns (default Ret.OK). */
  readonly rxReturn?: HandlerReturn;
  /** Give the body in pieces of this many bytes, calling requestTx() from inside onTx for each next one (lws' idiom). */
  readonly reentrantTx?: number;
  /** onTx gives the whole body at once, whatever maxLength says (an app bug the runtime must catch). */
  readonly txWhole?: boolean;
  /** The app calls requestTx() again at this state (its lws name). */
  readonly requestTxOn?: string;
  /** Ask for another transaction from QOS_ACK_REMOTE until this many have finished (default 1). */
  readonly transactions?: number;
}

/** An onRx that counts the payload into `record` and feeds it to `hash`; PERF_JSON reports go to record.perf. */
export function rxRecorder(record: RxRecord, hash: { update(bytes: Uint8Array): unknown }, o: ScenarioOptions = {}) {
  return (payload: Uint8Array, flags: number): HandlerReturn => {
    if (flags & RxFlag.PERF_JSON) {
      record.perf.push(utf8Decode(payload, 0, payload.length) ?? "");
      return Ret.OK;
    }
    if (o.throwOn === "rx") throw new Error("scenario: onRx throws");
    record.rxBytes += payload.length;
    record.rxChunks++;
    if (flags & RxFlag.EOM) record.eoms++;
    if (payload.length > record.largestChunk) record.largestChunk = payload.length;
    hash.update(payload);
    return o.rxReturn ?? Ret.OK;
  };
}

/**
 * The scenario's handlers: `onState` is the runner's (it records and
 * answers), wrapped with what the scenario asks of the app.
 */
export function scenarioHandlers<S extends StreamApi>(
  o: ScenarioOptions,
  record: RxRecord,
  hash: { update(bytes: Uint8Array): unknown },
  onState: (state: number, stream: S) => HandlerReturn | void,
): StreamHandlers<S> {
  const send = sendBytes(o.send ?? new Uint8Array(0));
  let finished = 0;
  return {
    onState: (state, _ack, stream) => {
      if (o.throwOn === stateName(state)) throw new Error(`scenario: onState(${o.throwOn}) throws`);
      const ret = onState(state, stream);
      if (o.requestTxOn === stateName(state)) stream.requestTx();
      if (state === State.QOS_ACK_REMOTE && ++finished < (o.transactions ?? 1)) stream.requestTx();
      return ret;
    },
    onRx: rxRecorder(record, hash, o),
    onTx: (max, flags, stream) => {
      if (o.throwOn === "tx") throw new Error("scenario: onTx throws");
      if (o.txWhole) return send(Infinity, flags);
      if (!o.reentrantTx) return send(max, flags);
      const piece = send(Math.min(max, o.reentrantTx), flags);
      if (!(piece.flags & RxFlag.EOM)) stream.requestTx();
      return piece;
    },
  };
}

/** Sets the metadata, starts the policy's timeout if asked, and asks to send (announcing a body's length). */
export function beginStream(stream: StreamApi, o: ScenarioOptions): void {
  for (const [k, v] of Object.entries(o.metadata ?? {})) stream.setMetadata(k, v);
  if (o.startTimeout) stream.startTimeout();
  if (o.send) stream.requestTxLength(o.announce ?? o.send.length);
  else stream.requestTx();
}
