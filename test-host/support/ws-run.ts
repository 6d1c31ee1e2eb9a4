// Runs one ws Secure Stream on the Node host against real local peers and
// records what the app sees: states, whole messages (pieces joined by
// SOM/EOM, the marks checked), logs. Messages to send go out one after
// another: the next when the previous one's echo is back, or, pipelined,
// each asked for from inside onTx (lws' requestTx() idiom).

import { NodeHost } from "../../hosts/node/host.js";
import { SecureStreams } from "../../src/ss/context.js";
import { RxFlag, Ret, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { Policy } from "../../src/policy/reader.js";
import type { ProtocolBinding } from "../../src/protocols/binding.js";
import { ws } from "../../src/protocols/ws.js";
import type { SecureStream, StreamApi, StreamHandlers } from "../../src/ss/stream.js";
import { proxyLink, type ProxyLinkRig, type Via } from "./proxy-link.js";

export interface WsRecord {
  states: string[];
  /** Whole messages received. */
  messages: Buffer[];
  /** SOM/EOM marks that broke the rules (a piece without SOM outside a message...). */
  badMarks: string[];
  rxPieces: number;
  largestPiece: number;
  logs: string[];
}

export interface WsRunOptions {
  readonly until: (r: WsRecord) => boolean;
  readonly messages?: readonly Uint8Array[];
  /** Send every message without waiting for echoes. */
  readonly pipeline?: boolean;
  /** onTx gives at most this much per call (default: what it is asked for). */
  readonly txPiece?: number;
  readonly metadata?: Record<string, string>;
  /** Called on each state; its return is onState's. */
  readonly onState?: (state: number, stream: SecureStream, r: WsRecord) => HandlerReturn | void;
  /** Called on each whole message; its return is onRx's. */
  readonly onMessage?: (message: Buffer, stream: SecureStream, r: WsRecord) => HandlerReturn | void;
  readonly binding?: ProtocolBinding;
  readonly limitMs?: number;
  /** The context's responseTimeoutMs (the wait for the 101). */
  readonly responseTimeoutMs?: number;
  /** The host to run on (default: a NodeHost logging into the record). */
  readonly host?: (log: (m: string) => void) => NodeHost;
  /** Run the app on SSPC through an ss-proxy on a Unix socket or TCP (the proxy has the binding). */
  readonly via?: Via;
}

export async function runWs(policy: Policy, streamtype: string, o: WsRunOptions): Promise<WsRecord> {
  const logs: string[] = [];
  const log = (m: string) => logs.push(m);
  const host = o.host ? o.host(log) : new NodeHost({ log });
  const bindings = [o.binding ?? ws];
  let proxy: ProxyLinkRig | undefined;
  // the handlers see a SecureStream's API either way (SspcStream has it)
  let ss: { create(name: string, handlers: StreamHandlers<SecureStream>): StreamApi };
  if (o.via) {
    proxy = await proxyLink(policy, host, new NodeHost({ log }), o.via, { bindings, responseTimeoutMs: o.responseTimeoutMs });
    ss = proxy.ctx as unknown as typeof ss;
  } else {
    ss = new SecureStreams(host, policy, { bindings, strict: true, responseTimeoutMs: o.responseTimeoutMs });
  }
  try {
    return await runOn(ss, streamtype, o, logs);
  } finally {
    await proxy?.close();
  }
}

function runOn(ss: { create(name: string, handlers: StreamHandlers<SecureStream>): StreamApi }, streamtype: string, o: WsRunOptions, logs: string[]): Promise<WsRecord> {
  const r: WsRecord = { states: [], messages: [], badMarks: [], rxPieces: 0, largestPiece: 0, logs };
  const toSend = o.messages ?? [];
  let next = 0; // the message being sent
  let sentInMessage = 0;
  let pieces: Buffer[] | undefined;
  return new Promise((resolve, reject) => {
    let done = false;
    const check = () => {
      if (done || !o.until(r)) return;
      done = true;
      clearTimeout(limit);
      setImmediate(() => {
        stream.destroy();
        resolve(r);
      });
    };
    const limit = setTimeout(() => {
      done = true;
      stream.destroy();
      reject(new Error(`${streamtype}: no result in time; states ${r.states.join(" ")}; ${r.messages.length} messages; logs ${logs.join(" | ")}`));
    }, o.limitMs ?? 30000);
    const stream = ss.create(streamtype, {
      onState: (state, _ack, s) => {
        if (done) return Ret.OK;
        r.states.push(stateName(state));
        const ret = o.onState?.(state, s, r);
        check();
        return ret ?? Ret.OK;
      },
      onRx: (payload, flags, s) => {
        r.rxPieces++;
        r.largestPiece = Math.max(r.largestPiece, payload.length);
        if (flags & RxFlag.SOM) {
          if (pieces) r.badMarks.push(`SOM inside a message (piece ${r.rxPieces})`);
          pieces = [];
        } else if (!pieces) {
          r.badMarks.push(`a piece outside a message (piece ${r.rxPieces})`);
          pieces = [];
        }
        pieces.push(Buffer.from(payload));
        if (!(flags & RxFlag.EOM)) return Ret.OK;
        const message = Buffer.concat(pieces);
        pieces = undefined;
        r.messages.push(message);
        const ret = o.onMessage?.(message, s, r);
        if (!o.pipeline && r.messages.length === next && next < toSend.length) s.requestTx();
        check();
        return ret ?? Ret.OK;
      },
      onTx: (max, flags, s) => {
        const m = toSend[next];
        if (!m) return Ret.TX_DONT_SEND;
        if (flags & RxFlag.SOM) sentInMessage = 0;
        const n = Math.min(max, o.txPiece ?? max, m.length - sentInMessage);
        const payload = m.subarray(sentInMessage, sentInMessage + n);
        const out = (sentInMessage === 0 ? RxFlag.SOM : 0) | (sentInMessage + n === m.length ? RxFlag.EOM : 0);
        sentInMessage += n;
        if (out & RxFlag.EOM) {
          next++;
          if (o.pipeline && next < toSend.length) s.requestTx();
        }
        return { payload, flags: out };
      },
    });
    for (const [k, v] of Object.entries(o.metadata ?? {})) stream.setMetadata(k, v);
    if (toSend.length) stream.requestTx();
    else stream.connect();
  });
}

export const has = (r: WsRecord, state: string) => r.states.includes(state);
