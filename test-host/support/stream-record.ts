// What the scenario tests record of a stream's payload, and how they start
// it; shared by the Node run (run-stream.ts) and the XS run
// (xs-stream-entry.ts), so portable.

import { RxFlag, Ret, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream } from "../../src/ss/stream.js";
import { utf8Decode } from "../../src/util/utf8.js";

export interface RxRecord {
  rxBytes: number;
  rxChunks: number;
  largestChunk: number;
  perf: string[];
}

/** An onRx that counts the payload into `record` and feeds it to `hash`; PERF_JSON reports go to record.perf. */
export function rxRecorder(record: RxRecord, hash: { update(bytes: Uint8Array): unknown }) {
  return (payload: Uint8Array, flags: number): HandlerReturn => {
    if (flags & RxFlag.PERF_JSON) {
      record.perf.push(utf8Decode(payload, 0, payload.length) ?? "");
      return Ret.OK;
    }
    record.rxBytes += payload.length;
    record.rxChunks++;
    if (payload.length > record.largestChunk) record.largestChunk = payload.length;
    hash.update(payload);
    return Ret.OK;
  };
}

/** Sets the metadata, starts the policy's timeout if asked, and asks to send (announcing a body's length). */
export function beginStream(
  stream: SecureStream,
  o: { readonly metadata?: Record<string, string>; readonly startTimeout?: boolean; readonly send?: Uint8Array },
): void {
  for (const [k, v] of Object.entries(o.metadata ?? {})) stream.setMetadata(k, v);
  if (o.startTimeout) stream.startTimeout();
  if (o.send) stream.requestTxLength(o.send.length);
  else stream.requestTx();
}
