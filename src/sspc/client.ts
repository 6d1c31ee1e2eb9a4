// SSPC: Secure Streams through a proxy. The app sees the API of a local
// stream (StreamApi, StreamHandlers); each stream is one link to the proxy
// (lws' model), over which its calls and events travel as serialized Secure
// Streams frames (src/wire/sss, docs/serialization.md). The proxy holds the
// policy and makes the onward connections: a client only names a streamtype.

import type { ByteStream, ConnectOptions, Host, HostError } from "../host.js";
import { Ret, RxFlag, State, isPassThrough, type HandlerReturn } from "../ss/states.js";
import type { StreamApi, StreamHandlers } from "../ss/stream.js";
import { metadataFault } from "../ss/stream.js";
import { SSError } from "../ss/errors.js";
import { utf8Decode } from "../util/utf8.js";
import {
  ClientBoundDecoder, SssError, TIMEOUT_CANCEL, TIMEOUT_POLICY, type ClientBound,
  encodeDestroying, encodeLengthHint, encodeMetadata, encodeOnwardConnect, encodeStreamtype, encodeTimeout, encodeTx,
  encodeTxCredit, MAX_FRAME_PAYLOAD,
} from "../wire/sss/index.js";

export interface SspcOptions {
  /** Where the proxy listens: a local socket (`path`) or host and port. */
  readonly proxy: ConnectOptions;
  /** Waits between attempts to reach the proxy, ms; the last repeats. */
  readonly backoffMs?: readonly number[];
  /** Payload bytes the proxy may send a stream before the stream grants more (lws' initial tx credit). */
  readonly rxCredit?: number;
  /** Sent in STREAMTYPE for the proxy's logs (lws sends its pid; 0 where there is none). */
  readonly pid?: number;
  /**
   * Report QOS_ACK_LOCAL when the proxy has taken a whole message (EOM) from
   * the link (its credit for every byte came back), and QOS_NACK_LOCAL when
   * it refuses the streamtype or the link breaks with a message not taken.
   * Off by default: the states are then exactly the local ones.
   */
  readonly localQos?: boolean;
  /**
   * The app reads each onRx payload during the call only, and copies what it
   * keeps (lws' rule for its rx callback): the link's reads are then lent
   * (ConnectOptions.lendReads), and a payload is a view of memory the next
   * read overwrites. Spares an allocation per read (on Node, most of a fast
   * download's cost). Off by default: a payload is the app's to keep.
   */
  readonly lendRx?: boolean;
}

export const SSPC_BACKOFF_MS: readonly number[] = Object.freeze([100, 250, 500, 1000, 2000]);
export const SSPC_RX_CREDIT = 512 * 1024;
/** Largest rx piece handed to onRx (as the local h1 binding's); a larger frame is cut. */
export const SSPC_RX_PIECE = 4096;
/**
 * Most payload asked of onTx when the proxy counts no credit (lws' proxy);
 * ours grants credit, and onTx is asked for all of it (an app that gives
 * whole messages, as MQTT apps do locally, can give one as large as the
 * credit). What one call gives goes out in frames of at most MAX_FRAME_PAYLOAD.
 */
export const SSPC_TX_CHUNK = 16 * 1024;


// #flags bits
/** The app asked for a transaction that has not finished. */
const PENDING = 1;
/** ONWARD_CONNECT went for the current transaction. */
const ASKED = 2;
/** The app wants onTx called (requestTx), until EOM or TX_DONT_SEND. */
const TX_WANTED = 4;
/** A message is being sent: SOM went, EOM not yet. */
const MESSAGE_OPEN = 8;
/** The proxy reported CONNECTED and no DISCONNECTED since. */
const DANGLING = 16;
/** connect(): keep the onward connection up. */
const WANTED = 32;
const DESTROYED = 64;
const DESTROY_SOON = 128;
const DISCONNECT_SOON = 256;

type LinkPhase = "down" | "connecting" | "creating" | "created";

/**
 * A large rx frame that arrives split across reads (most of them: the proxy
 * fills 64 KiB frames, a read holds at most as much) is handed on in the
 * pieces the reads hold, not gathered: no frame-sized array per frame, which
 * on the device would not fit, and on Node cost a copy and the garbage.
 */
function newDecoder(): ClientBoundDecoder {
  return new ClientBoundDecoder({ maxGather: SSPC_RX_PIECE });
}

/** Streams through one proxy: a factory for SspcStream, as SecureStreams is for local ones. */
export class SspcContext {
  readonly host: Host;
  readonly options: SspcOptions;
  readonly #streams = new Set<SspcStream>();

  constructor(host: Host, options: SspcOptions) {
    this.host = host;
    this.options = options;
  }

  /**
   * Creates a stream of `streamtype`; CREATING is reported before this
   * returns, as for local streams. The proxy decides whether the streamtype exists:
   * if its policy has none, the stream is destroyed (DESTROYING) with a log.
   */
  create(streamtype: string, handlers: StreamHandlers<SspcStream>, user?: unknown): SspcStream {
    const stream = new SspcStream(this, streamtype, handlers, user);
    this.#streams.add(stream);
    stream.start();
    return stream;
  }

  get streams(): number {
    return this.#streams.size;
  }

  destroyAll(): void {
    for (const s of [...this.#streams]) s.destroy();
  }

  /** @internal */
  forget(stream: SspcStream): void {
    this.#streams.delete(stream);
  }
}

export class SspcStream implements StreamApi {
  readonly streamtype: string;
  readonly user: unknown;
  readonly #ctx: SspcContext;
  #handlers: StreamHandlers<SspcStream>;
  readonly #metadata = new Map<string, string>();
  #state = 0;
  #flags = 0;
  #depth = 0;
  #link: ByteStream | undefined;
  #phase: LinkPhase = "down";
  #decoder = newDecoder();
  #writable = true;
  #pumping = false;
  #attempts = 0;
  #retryTimer: unknown;
  /** When the link was first lost (or first tried), for UPSTREAM_LINK_RETRY's ack. */
  #linkLostAt: number | undefined;
  #txLength: number | undefined;
  /** Payload bytes of the current message sent so far. */
  #txSent = 0;
  /** The timeout to ask of the proxy's stream: ms, TIMEOUT_POLICY, or none. */
  #timeout: number | undefined;
  /** Payload bytes the proxy lets us send; undefined until it grants any (an lws proxy never does: no limit). */
  #txCredit: number | undefined;
  /** Rx payload delivered since credit was last granted back. */
  #rxConsumed = 0;
  /** Tx payload bytes the proxy has not yet given credit back for. */
  #untaken = 0;
  /** A message ended (EOM) and its QOS_ACK_LOCAL is due once the proxy took it all. */
  #ackDue = false;

  /** @internal Use SspcContext.create(). */
  constructor(ctx: SspcContext, streamtype: string, handlers: StreamHandlers<SspcStream>, user: unknown) {
    this.#ctx = ctx;
    this.streamtype = streamtype;
    this.#handlers = handlers;
    this.user = user;
  }

  get state(): number { return this.#state; }
  get destroyed(): boolean { return (this.#flags & DESTROYED) !== 0; }

  /** @internal */
  start(): void {
    if (this.#event(State.CREATING) !== Ret.OK) return;
    this.#openLink();
  }

  // ---- the app's API (as SecureStream's) ----

  requestTx(): HandlerReturn {
    if (this.destroyed) return Ret.OK;
    this.#flags |= PENDING | TX_WANTED;
    this.#relink();
    this.#askOnward();
    this.#pump();
    return Ret.OK;
  }

  requestTxLength(length: number): HandlerReturn {
    if (!(Number.isSafeInteger(length) && length >= 0 && length <= 0xffffffff)) throw new SSError("bad-argument", `bad tx length ${length}`);
    this.#txLength = length;
    return this.requestTx();
  }

  /** Asks the proxy to connect (ONWARD_CONNECT), and to do so again after each loss of the proxy. */
  connect(): HandlerReturn {
    if (this.destroyed) return Ret.OK;
    this.#flags |= WANTED;
    this.#relink();
    this.#askOnward();
    return Ret.OK;
  }

  /**
   * Sets metadata; it travels to the proxy, whose policy decides whether the
   * streamtype declares it (an undeclared name is logged there and dropped).
   */
  setMetadata(name: string, value: string): void {
    if (!name || name.length > 255) throw new SSError("unknown-metadata", `${this.streamtype}: bad metadata name "${name}"`);
    // the checks that need no policy; the proxy's stream makes the rest (a name the endpoint uses)
    const why = metadataFault(value, false);
    if (why) throw new SSError("bad-metadata", `${this.streamtype}: metadata "${name}" ${why}`);
    this.#metadata.set(name, value);
    if (this.#phase === "created") this.#send(encodeMetadata(true, name, value));
  }

  getMetadata(name: string): string | undefined {
    return this.#metadata.get(name);
  }

  /** The proxy's stream reports TIMEOUT after ms (0: the policy's timeout_ms). */
  startTimeout(ms = 0): void {
    if (this.destroyed) return;
    this.#timeout = ms ? Math.min(ms, TIMEOUT_CANCEL - 1) : TIMEOUT_POLICY;
    if (this.#phase === "created") this.#send(encodeTimeout(this.#timeout));
  }

  cancelTimeout(): void {
    if (this.#timeout === undefined) return;
    this.#timeout = undefined;
    if (this.#phase === "created") this.#send(encodeTimeout(TIMEOUT_CANCEL));
  }

  destroy(): void {
    if (this.destroyed) return;
    if (this.#depth > 0) {
      this.#flags |= DESTROY_SOON;
      return;
    }
    this.#flags |= DESTROYED;
    this.#clearRetry();
    if (this.#link && this.#phase === "created") this.#link.write(encodeDestroying());
    this.#closeLink();
    if (this.#flags & DANGLING) this.#report(State.DISCONNECTED, 0);
    this.#flags &= ~DANGLING;
    this.#report(State.DESTROYING, 0);
    this.#ctx.forget(this);
    this.#handlers = {};
  }

  // ---- the link ----

  #openLink(): void {
    if (this.destroyed || this.#link) return;
    this.#phase = "connecting";
    this.#decoder = newDecoder();
    this.#writable = true;
    this.#txCredit = undefined;
    this.#rxConsumed = 0;
    this.#untaken = 0;
    this.#ackDue = false;
    const host = this.#ctx.host;
    let link: ByteStream | undefined;
    // each callback checks it is still about the current link: a closed one says nothing more
    const current = () => link !== undefined && this.#link === link;
    const o = this.#ctx.options;
    link = host.connect(o.lendRx ? { ...o.proxy, lendReads: true } : o.proxy, {
      onConnected: () => {
        if (!current()) return;
        this.#phase = "creating";
        this.#send(encodeStreamtype(this.streamtype, this.#ctx.options.rxCredit ?? SSPC_RX_CREDIT, this.#ctx.options.pid ?? 0));
      },
      onData: (bytes) => {
        if (!current()) return;
        try {
          this.#decoder.push(bytes, (m) => {
            this.#message(m);
            return current();
          });
        } catch (e) {
          if (!(e instanceof SssError)) throw e;
          this.#lost(`the proxy sent a bad frame (${e.message})`);
        }
      },
      onWritable: () => {
        if (!current()) return;
        this.#writable = true;
        this.#pump();
      },
      onClosed: () => {
        if (current()) this.#lost("the proxy closed the link");
      },
      onError: (error: HostError) => {
        if (current()) this.#lost(`the link to the proxy failed (${error.kind}: ${error.message})`);
      },
    });
    this.#link = link;
  }

  /** After DISCONNECT_ME the link stays down until something is asked of it. */
  #relink(): void {
    if (this.#phase === "down" && this.#retryTimer === undefined) this.#openLink();
  }

  #closeLink(): void {
    const link = this.#link;
    this.#link = undefined;
    this.#phase = "down";
    link?.close();
  }

  #send(frame: Uint8Array): void {
    if (this.#link && !this.#link.write(frame)) this.#writable = false;
  }

  /** The link is gone: DISCONNECTED if the proxy had connected, then back to the proxy with backoff. */
  #lost(why: string): void {
    const host = this.#ctx.host;
    host.log(`${this.streamtype}: ${why}`);
    this.#closeLink();
    // a message the proxy had not taken all of is lost with the link
    const lostTx = this.#ctx.options.localQos && (this.#flags & MESSAGE_OPEN || this.#ackDue);
    this.#flags &= ~(ASKED | MESSAGE_OPEN);
    this.#ackDue = false;
    this.#untaken = 0;
    const now = host.now();
    if (lostTx && this.#event(State.QOS_NACK_LOCAL) !== Ret.OK) return;
    this.#linkLostAt ??= now;
    if (this.#flags & DANGLING) {
      this.#flags &= ~DANGLING;
      if (this.#event(State.DISCONNECTED) !== Ret.OK) return;
    }
    if (this.#event(State.UPSTREAM_LINK_RETRY, Math.round(now - this.#linkLostAt)) !== Ret.OK) return;
    const steps = this.#ctx.options.backoffMs ?? SSPC_BACKOFF_MS;
    const wait = steps[Math.min(this.#attempts, steps.length - 1)] ?? 1000;
    this.#attempts++;
    this.#clearRetry();
    this.#retryTimer = host.setTimer(wait, () => {
      this.#retryTimer = undefined;
      this.#openLink();
    });
  }

  #clearRetry(): void {
    if (this.#retryTimer !== undefined) this.#ctx.host.clearTimer(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  /** ONWARD_CONNECT (after the length hint) when a transaction or a connection is wanted and not yet asked for. */
  #askOnward(): void {
    if (this.#phase !== "created" || this.#flags & ASKED || !(this.#flags & (PENDING | WANTED))) return;
    this.#flags |= ASKED;
    if (this.#txLength !== undefined) this.#send(encodeLengthHint(this.#txLength));
    this.#send(encodeOnwardConnect());
  }

  #message(m: ClientBound): void {
    switch (m.type) {
      case "create-result":
        if (this.#phase !== "creating") return this.#lost("the proxy sent a second create result");
        if (m.result !== 0) {
          this.#ctx.host.log(`${this.streamtype}: the proxy refused to create the stream (result ${m.result}): its policy has no such streamtype`);
          this.#closeLink();
          if (this.#ctx.options.localQos && this.#event(State.QOS_NACK_LOCAL) !== Ret.OK) return;
          this.destroy();
          return;
        }
        this.#phase = "created";
        this.#attempts = 0;
        this.#linkLostAt = undefined;
        for (const [name, value] of this.#metadata) this.#send(encodeMetadata(true, name, value));
        if (this.#timeout !== undefined) this.#send(encodeTimeout(this.#timeout));
        this.#askOnward();
        return;
      case "state":
        if (this.#phase !== "created") return this.#lost("the proxy sent a state before its create result");
        return this.#proxyState(m.state, m.ack);
      case "rx":
        if (this.#phase !== "created") return this.#lost("the proxy sent payload before its create result");
        this.#deliver(m.payload, m.flags);
        this.#rxConsumed += m.payload.length;
        // granted back in batches: a TXCR_UPDATE per quarter of the window
        if (this.#link && this.#rxConsumed >= (this.#ctx.options.rxCredit ?? SSPC_RX_CREDIT) / 4) {
          this.#send(encodeTxCredit(this.#rxConsumed));
          this.#rxConsumed = 0;
        }
        return;
      case "txcr": {
        const first = this.#txCredit === undefined;
        this.#txCredit = (this.#txCredit ?? 0) + m.delta;
        if (!first) this.#untaken = Math.max(0, this.#untaken - m.delta);
        if (this.#ackDue && this.#untaken === 0) {
          this.#ackDue = false;
          if (this.#event(State.QOS_ACK_LOCAL) !== Ret.OK) return;
        }
        this.#pump();
        return;
      }
      case "metadata": {
        const value = utf8Decode(m.value, 0, m.value.length);
        if (value !== undefined) this.#metadata.set(m.name, value);
        return;
      }
      case "perf":
        this.#apply(this.#call(() => this.#handlers.onRx?.(m.json, RxFlag.PERF_JSON | RxFlag.SOM | RxFlag.EOM, this)));
        return;
    }
  }

  /** Rx to the app in pieces no larger than local ones: SOM (and RELATED_START) on the first, EOM (and RELATED_END) on the last. */
  #deliver(payload: Uint8Array, flags: number): void {
    const first = RxFlag.SOM | RxFlag.RELATED_START | RxFlag.POLL;
    const last = RxFlag.EOM | RxFlag.RELATED_END;
    let at = 0;
    do {
      const piece = payload.subarray(at, at + SSPC_RX_PIECE);
      const f = (flags & ~(first | last | RxFlag.RIDESHARE)) | (at === 0 ? flags & first : 0) | (at + piece.length >= payload.length ? flags & last : 0);
      at += piece.length;
      this.#apply(this.#call(() => this.#handlers.onRx?.(piece, f, this)));
      if (this.destroyed || this.#phase !== "created") return;
    } while (at < payload.length);
  }

  #proxyState(state: number, ack: number): void {
    switch (state) {
      case State.CREATING:
      case State.DESTROYING:
        return; // ours are reported here: CREATING at create(), DESTROYING at destroy()
      case State.POLL:
        // ONWARD_CONNECT is lws' one way to ask for the onward connection: the proxy's stream
        // polls for it; an app that only called connect() sees no POLL, as for local streams
        if (!(this.#flags & PENDING)) return;
        break;
      case State.CONNECTED:
        if (this.#flags & DANGLING) return;
        this.#flags |= DANGLING;
        break;
      case State.DISCONNECTED:
        this.#flags &= ~(DANGLING | MESSAGE_OPEN);
        break;
      case State.QOS_ACK_REMOTE:
      case State.QOS_NACK_REMOTE:
      case State.AUTH_FAILED:
      case State.ALL_RETRIES_FAILED:
        // finished before it is reported: a requestTx() from the handler asks for the next one
        this.#flags &= ~(PENDING | ASKED | TX_WANTED | MESSAGE_OPEN);
        this.#txLength = undefined;
        break;
    }
    if (this.#event(state, ack) !== Ret.OK) return;
    if (state === State.CONNECTED) this.#pump();
  }

  /** Pulls payload from onTx while the proxy's stream is connected, the link takes more and credit lasts. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#phase === "created" && this.#flags & DANGLING && this.#flags & TX_WANTED && this.#writable && !this.destroyed) {
        const credit = this.#txCredit ?? Infinity;
        if (credit <= 0) break;
        // an announced length is a limit, as for local streams: the proxy's binding would refuse more
        const left = this.#txLength === undefined ? Infinity : this.#txLength - this.#txSent;
        const max = Math.min(credit === Infinity ? SSPC_TX_CHUNK : credit, left);
        const som = this.#flags & MESSAGE_OPEN ? 0 : RxFlag.SOM;
        if (som) this.#txSent = 0;
        let pulled: { payload: Uint8Array; flags: number } | undefined;
        this.#apply(this.#call(() => {
          const r = this.#handlers.onTx?.(max, som, this) ?? Ret.TX_DONT_SEND;
          if (typeof r === "number") return r;
          pulled = r;
          return Ret.OK;
        }));
        if (this.#phase !== "created" || this.destroyed) break;
        if (!pulled) {
          this.#flags &= ~TX_WANTED;
          break;
        }
        const { payload, flags } = pulled;
        if (!(payload instanceof Uint8Array) || payload.length > max) {
          this.#abandon(`onTx gave ${payload instanceof Uint8Array ? `${payload.length} bytes, more than the ${max} asked for` : "a payload that is not a Uint8Array"}`);
          break;
        }
        const eom = (flags & RxFlag.EOM) !== 0;
        const f = (flags | som) & 0xff;
        const now = Math.round(this.#ctx.host.now() * 1000);
        if (payload.length <= MAX_FRAME_PAYLOAD) this.#send(encodeTx(payload, f, 0, now));
        else {
          for (let at = 0; at < payload.length; at += MAX_FRAME_PAYLOAD) {
            const end = Math.min(payload.length, at + MAX_FRAME_PAYLOAD);
            this.#send(encodeTx(payload.subarray(at, end), (f & ~(RxFlag.SOM | RxFlag.EOM)) | (at === 0 ? f & RxFlag.SOM : 0) | (end === payload.length ? f & RxFlag.EOM : 0), 0, now));
          }
        }
        if (this.#txCredit !== undefined) {
          this.#txCredit -= payload.length;
          this.#untaken += payload.length;
          if (eom && this.#ctx.options.localQos) this.#ackDue = true;
        }
        this.#txSent += payload.length;
        if (eom) this.#flags &= ~(MESSAGE_OPEN | TX_WANTED);
        else this.#flags |= MESSAGE_OPEN;
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** DISCONNECT_ME: the proxy's stream goes (with its connection); a fresh one is made for what comes next. */
  #disconnect(): void {
    this.#flags &= ~(PENDING | WANTED | ASKED | TX_WANTED | MESSAGE_OPEN | DISCONNECT_SOON);
    this.#txLength = undefined;
    this.#clearRetry();
    this.#closeLink();
    if (this.#flags & DANGLING) {
      this.#flags &= ~DANGLING;
      this.#event(State.DISCONNECTED);
    }
  }

  /** The app's onTx broke the transaction (as for local streams: DISCONNECTED, then ALL_RETRIES_FAILED). */
  #abandon(why: string): void {
    this.#ctx.host.log(`${this.streamtype}: ${why}: the transaction is abandoned`);
    const up = (this.#flags & DANGLING) !== 0;
    this.#disconnect();
    if (up && this.destroyed) return;
    this.#event(State.ALL_RETRIES_FAILED);
  }

  // ---- reporting ----

  #event(state: number, ack = 0): HandlerReturn {
    if (this.destroyed) return Ret.DESTROY_ME;
    const ret = this.#report(state, ack);
    this.#apply(ret);
    if (this.#flags & (DESTROYED | DESTROY_SOON)) return Ret.DESTROY_ME;
    return ret === Ret.DISCONNECT_ME || this.#flags & DISCONNECT_SOON ? Ret.DISCONNECT_ME : Ret.OK;
  }

  #report(state: number, ack: number): HandlerReturn {
    if (!isPassThrough(state)) this.#state = state;
    return this.#call(() => this.#handlers.onState?.(state, ack, this));
  }

  /** Runs a handler; one that throws ends its own stream (logged), as for local streams. */
  #call(f: () => HandlerReturn | void): HandlerReturn {
    this.#depth++;
    try {
      return f() ?? Ret.OK;
    } catch (e) {
      const err = e as { name?: unknown; message?: unknown } | undefined;
      this.#ctx.host.log(`${this.streamtype}: a handler threw ${String(err?.name ?? "")}: ${String(err?.message ?? e)}; the stream is destroyed`);
      return Ret.DESTROY_ME;
    } finally {
      this.#depth--;
    }
  }

  #apply(ret: HandlerReturn): void {
    if (ret === Ret.DESTROY_ME) this.#flags |= DESTROY_SOON;
    else if (ret === Ret.DISCONNECT_ME) this.#flags |= DISCONNECT_SOON;
    if (this.#depth > 0) return;
    if (this.#flags & DESTROY_SOON) {
      this.#flags &= ~DESTROY_SOON;
      this.destroy();
    } else if (this.#flags & DISCONNECT_SOON) {
      this.#disconnect();
    }
  }
}
