// A Secure Stream: the app's handle. It owns the state machine (every
// transition checked), the retry and backoff sequencing, the stream timeout
// and the metadata; the protocol binding owns the wire.

import type { Host, HostError, HostErrorKind, ConnectOptions, ConnectTimings } from "../host.js";
import { BLOB } from "../host.js";
import type { Policy, StreamType } from "../policy/reader.js";
import type { ProtocolBinding, Connection, StreamLink, TxPull } from "../protocols/binding.js";
import { State, RxFlag, Ret, isLegalTransition, isPassThrough, stateName, type HandlerReturn } from "./states.js";
import { decideRetry } from "./retry.js";
import { SSError } from "./errors.js";
import { utf8Encode } from "../util/utf8.js";

export interface StreamHandlers {
  /** A state change; `ack` is protocol-specific (0 mostly). */
  onState?(state: number, ack: number): HandlerReturn | void;
  /** Received payload with RxFlag bits (SOM, EOM, ...). */
  onRx?(payload: Uint8Array, flags: number): HandlerReturn | void;
  /** Payload to send, at most maxLength bytes; flags SOM/EOM. Or a return code (TX_DONT_SEND...). */
  onTx?(maxLength: number): { payload: Uint8Array; flags: number } | HandlerReturn;
}

/** What the stream needs from its owner (the SecureStreams context). */
export interface StreamEnvironment {
  readonly host: Host;
  readonly policy: Policy;
  binding(protocol: string): ProtocolBinding | undefined;
  /** An illegal transition was attempted: a bug. */
  bug(message: string): void;
  /** The stream is gone (after DESTROYING). */
  forget(stream: SecureStream): void;
}

/** Longest metadata value accepted, in characters. */
export const MAX_METADATA_LENGTH = 4096;
/** Connect (DNS + TCP + TLS) must finish within this, unless the policy's timeout_ms is shorter. */
export const CONNECT_TIMEOUT_MS = 15000;

type Sequence = "idle" | "connecting" | "connected" | "waiting";

/** The handlers of a destroyed stream. */
const NO_HANDLERS: StreamHandlers = Object.freeze({});

export class SecureStream {
  readonly streamtype: string;
  /** The app's object, handed back as it was given. */
  readonly user: unknown;
  readonly #env: StreamEnvironment;
  readonly #policy: StreamType;
  /** The app's handlers; dropped (NO_HANDLERS) once the stream is destroyed, see destroy(). */
  #handlers: StreamHandlers;
  readonly #metadata = new Map<string, string>();
  #headers: [string, string][] | undefined;
  #state = 0;
  #sequence: Sequence = "idle";
  #failures = 0;
  #conn: Connection | undefined;
  #retryTimer: unknown;
  #timeoutTimer: unknown;
  #txLength: number | undefined;
  /** CONNECTED was reported and no DISCONNECTED since. */
  #dangling = false;
  /** The transport came up on the current connection. */
  #established = false;
  #destroyed = false;
  #destroyPending = false;
  #depth = 0;
  #timings: ConnectTimings = {};
  #peer: string | undefined;

  constructor(env: StreamEnvironment, policy: StreamType, handlers: StreamHandlers, user?: unknown) {
    this.#env = env;
    this.#policy = policy;
    this.#handlers = handlers;
    this.streamtype = policy.name;
    this.user = user;
  }

  /** The last state reported (0 before CREATING). */
  get state(): number { return this.#state; }
  get destroyed(): boolean { return this.#destroyed; }

  /** Called once by the context after construction. */
  start(): void {
    if (this.#event(State.CREATING) === Ret.DESTROY_ME) return;
    // nailed_up connects at once, without the POLL of an on-demand connect
    if (this.#policy.flag("nailed_up")) this.#later(() => this.connect());
  }

  // ---- the app's API ----

  /** Asks to send: connects first if need be (POLL, CONNECTING...). */
  requestTx(): void {
    if (this.#destroyed) return;
    if (this.#conn) {
      this.#conn.requestTx();
      return;
    }
    this.#kick();
  }

  /** Like requestTx, announcing the payload length (HTTP Content-Length). */
  requestTxLength(length: number): void {
    if (!(Number.isSafeInteger(length) && length >= 0)) throw new SSError("bad-argument", `bad tx length ${length}`);
    this.#txLength = length;
    this.requestTx();
  }

  /** Connects now, starting the retry count afresh. */
  connect(): void {
    if (this.#destroyed) return;
    this.#failures = 0;
    if (this.#sequence === "waiting") this.#clearRetry();
    if (!this.#conn && this.#sequence !== "connecting") this.#open();
  }

  /**
   * Sets a metadata value declared by the policy. Values may not hold CR, LF
   * or NUL: they end up in headers and URLs, where those would inject.
   */
  setMetadata(name: string, value: string): void {
    if (!this.#declared(name)) throw new SSError("unknown-metadata", `${this.streamtype}: the policy declares no metadata "${name}"`);
    if (typeof value !== "string") throw new SSError("bad-metadata", `${this.streamtype}: metadata "${name}" must be a string`);
    if (/[\r\n\0]/.test(value)) throw new SSError("bad-metadata", `${this.streamtype}: metadata "${name}" holds CR, LF or NUL`);
    if (value.length > MAX_METADATA_LENGTH) throw new SSError("bad-metadata", `${this.streamtype}: metadata "${name}" is over ${MAX_METADATA_LENGTH} characters`);
    this.#metadata.set(name, value);
  }

  getMetadata(name: string): string | undefined {
    return this.#metadata.get(name);
  }

  /** Reports TIMEOUT after ms (0: the policy's timeout_ms; no-op if neither). */
  startTimeout(ms = 0): void {
    const wait = ms || (this.#policy.number("timeout_ms") ?? 0);
    this.cancelTimeout();
    if (!wait || this.#destroyed) return;
    this.#timeoutTimer = this.#env.host.setTimer(wait, () => {
      this.#timeoutTimer = undefined;
      this.#event(State.TIMEOUT);
    });
  }

  cancelTimeout(): void {
    if (this.#timeoutTimer !== undefined) this.#env.host.clearTimer(this.#timeoutTimer);
    this.#timeoutTimer = undefined;
  }

  /** Ends the stream: DISCONNECTED if it was connected, then DESTROYING. */
  destroy(): void {
    if (this.#destroyed) return;
    if (this.#depth > 0) {
      // inside one of our own callbacks: finish it first
      this.#destroyPending = true;
      return;
    }
    this.#destroyed = true;
    this.#closeConnection();
    this.#clearRetry();
    this.cancelTimeout();
    if (this.#dangling) this.#report(State.DISCONNECTED);
    if (this.#state !== 0) this.#report(State.DESTROYING);
    this.#env.forget(this);
    // Nothing calls a handler after this. Let go of them (and of whatever the
    // app's closures hold): XS keeps the most recent instance of a class with
    // private methods reachable until the next one is made, so a destroyed
    // stream, or the connection whose link points at it, can outlive destroy().
    this.#handlers = NO_HANDLERS;
  }

  // ---- sequencing ----

  /** A connection is wanted: connect unless one is under way or we are backing off. */
  #kick(): void {
    if (this.#destroyed || this.#conn || this.#sequence === "connecting" || this.#sequence === "waiting") return;
    if (this.#state !== State.POLL && this.#event(State.POLL) !== Ret.OK) return;
    this.#open();
  }

  #open(): void {
    const binding = this.#env.binding(this.#policy.protocol);
    if (!binding) {
      this.#env.host.log(`${this.streamtype}: no binding for protocol ${this.#policy.protocol}`);
      this.#event(State.ALL_RETRIES_FAILED);
      return;
    }
    this.#sequence = "connecting";
    this.#established = false;
    if (this.#event(State.CONNECTING) !== Ret.OK || this.#destroyed) return;
    let options: ConnectOptions;
    try {
      options = this.#connectOptions();
    } catch (e) {
      this.#env.host.log(`${this.streamtype}: ${(e as Error).message}`);
      // missing credentials will not appear by retrying: the app provides them and asks again
      this.#attemptFailed(e instanceof SSError && e.code === "missing-blob" ? State.AUTH_FAILED : State.UNREACHABLE);
      return;
    }
    this.#conn = binding.open(this.#link(), options);
  }

  #connectOptions(): ConnectOptions {
    const p = this.#policy;
    // a metadata value in the endpoint may only add to a host name, never make it a URL or a port
    const host = this.#expand(p.string("endpoint") ?? "", (value) => {
      if (!/^[A-Za-z0-9.-]*$/.test(value)) throw new SSError("bad-metadata", `endpoint metadata "${value}" is not a host name part`);
      return value;
    });
    const port = p.number("port");
    if (!host || !port) throw new SSError("bad-policy", "the policy gives no endpoint or port");
    const policyTimeout = p.number("timeout_ms");
    const timeoutMs = policyTimeout ? Math.min(policyTimeout, CONNECT_TIMEOUT_MS) : CONNECT_TIMEOUT_MS;
    if (!p.flag("tls")) return { host, port, timeoutMs };
    const store = p.trustStore;
    const ca: Uint8Array[] = [];
    for (let i = 0; store && i < store.size; i++) ca.push(store.cert(i).der);
    const n = p.number("client_cert");
    let clientCert: Uint8Array | undefined;
    let clientKey: Uint8Array | undefined;
    if (n !== undefined) {
      clientCert = this.#env.host.blobs.get(BLOB.clientCert(n));
      clientKey = this.#env.host.blobs.get(BLOB.clientKey(n));
      if (!clientCert || !clientKey) throw new SSError("missing-blob", `client_cert ${n} needs blobs ${BLOB.clientCert(n)} and ${BLOB.clientKey(n)}`);
    }
    return { host, port, timeoutMs, tls: { serverName: host, ca, clientCert, clientKey } };
  }

  /** After a failed attempt: report it, then back off or give up. */
  #attemptFailed(state: number): void {
    this.#conn = undefined;
    this.#sequence = "idle";
    if (this.#event(state) !== Ret.OK || this.#destroyed) return;
    if (state === State.AUTH_FAILED) {
      // credentials will not get better by retrying: the app refreshes them and asks again
      this.#failures = 0;
      return;
    }
    this.#backoff();
  }

  /** Schedules the next attempt after at least `minDelayMs`, or gives up when the retry policy says so. */
  #backoff(minDelayMs = 0): void {
    this.#failures++;
    const decision = decideRetry(this.#policy.retry, this.#failures, () => this.#env.host.random());
    if (!decision.retry) {
      this.#failures = 0;
      this.#sequence = "idle";
      this.#event(State.ALL_RETRIES_FAILED);
      return;
    }
    this.#sequence = "waiting";
    this.#retryTimer = this.#env.host.setTimer(Math.max(decision.delayMs, minDelayMs), () => {
      this.#retryTimer = undefined;
      this.#sequence = "idle";
      if (this.#destroyed || this.#conn) return;
      this.#open();
    });
  }

  #clearRetry(): void {
    if (this.#retryTimer !== undefined) this.#env.host.clearTimer(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#sequence === "waiting") this.#sequence = "idle";
  }

  #closeConnection(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    if (this.#sequence === "connecting" || this.#sequence === "connected") this.#sequence = "idle";
    conn?.close();
  }

  /** Whether the policy asks to reconnect after this connection ended. */
  #owesRetry(complete: boolean): boolean {
    if (this.#policy.flag("nailed_up")) return true;
    return !complete && !this.#policy.flag("opportunistic");
  }

  // ---- reporting ----

  /** Checks and reports a state; applies what the handler returns. */
  #event(state: number, ack = 0): HandlerReturn {
    if (this.#destroyed && state !== State.DESTROYING && state !== State.DISCONNECTED) return Ret.DESTROY_ME;
    if (!isLegalTransition(this.#state, state)) {
      this.#env.bug(`${this.streamtype}: illegal state transition ${stateName(this.#state)} -> ${stateName(state)}`);
      this.destroy();
      return Ret.DESTROY_ME;
    }
    const ret = this.#report(state, ack);
    this.#apply(ret);
    return this.#destroyed || this.#destroyPending ? Ret.DESTROY_ME : ret;
  }

  #report(state: number, ack = 0): HandlerReturn {
    if (!isPassThrough(state)) this.#state = state;
    if (state === State.CONNECTED) this.#dangling = true;
    if (state === State.DISCONNECTED) this.#dangling = false;
    return this.#call(() => this.#handlers.onState?.(state, ack));
  }

  /** Runs a handler, noting that we are inside it (destroy() waits for it to return). */
  #call(f: () => HandlerReturn | void): HandlerReturn {
    this.#depth++;
    let ret: HandlerReturn | void;
    try {
      ret = f();
    } finally {
      this.#depth--;
    }
    return ret ?? Ret.OK;
  }

  #apply(ret: HandlerReturn): void {
    if (this.#depth > 0) return; // the outermost call applies it
    if (ret === Ret.DESTROY_ME || this.#destroyPending) {
      this.#destroyPending = false;
      this.destroy();
    } else if (ret === Ret.DISCONNECT_ME && this.#conn) {
      this.#closeConnection();
      this.#connectionEnded(true, true);
    }
  }

  /**
   * The connection is gone. If CONNECTED was reported, the app gets
   * DISCONNECTED and a retry follows when the policy owes one or the server
   * asked for one (retryAfterMs); otherwise this attempt failed
   * (UNREACHABLE, then backoff). Nothing is retried when the app itself
   * asked to disconnect.
   */
  #connectionEnded(complete: boolean, byApp = false, retryAfterMs?: number): void {
    if (this.#dangling) {
      if (this.#event(State.DISCONNECTED) !== Ret.OK || this.#destroyed) return;
      if (!byApp && (retryAfterMs !== undefined || this.#owesRetry(complete))) this.#backoff(retryAfterMs);
      return;
    }
    if (byApp || this.#event(State.UNREACHABLE) !== Ret.OK || this.#destroyed) return;
    this.#backoff();
  }

  /** [metadata name, header name without ':'] of the metadata mapped to headers; read from the policy once. */
  #headerNames(): [string, string][] {
    if (!this.#headers) {
      this.#headers = [];
      for (const [name, header] of this.#policy.pairs("metadata")) {
        if (header) this.#headers.push([name as string, (header as string).slice(0, -1)]);
      }
    }
    return this.#headers;
  }

  #declared(name: string): boolean {
    for (const [n] of this.#policy.pairs("metadata")) if (n === name) return true;
    return false;
  }

  #expand(template: string, encode: (value: string) => string = (v) => v): string {
    return template.replace(/\$\{([^}]*)\}/g, (_, name: string) => encode(this.#metadata.get(name) ?? ""));
  }

  /** Runs f from the timer queue: keeps connects out of the caller's stack. */
  #later(f: () => void): void {
    this.#env.host.setTimer(0, () => {
      if (!this.#destroyed) f();
    });
  }

  /** A new view of this stream for a binding's connection. */
  #link(): StreamLink {
    return new SecureStream.#Link(this);
  }

  /**
   * The binding's view of a stream, one per connection, inert once that
   * connection is not the stream's any more. A class rather than an object
   * of closures: on XS its methods exist once, on the prototype, where 13
   * closures cost ~160 slots per connection.
   */
  static readonly #Link = class implements StreamLink {
    readonly #s: SecureStream;
    #mine = true;

    constructor(s: SecureStream) {
      this.#s = s;
    }

    get host() { return this.#s.#env.host; }
    get policy() { return this.#s.#policy; }
    get streamtype() { return this.#s.streamtype; }
    get txLength() { return this.#s.#txLength; }

    /** The connection is still the stream's, and the stream is alive. */
    #live(): boolean {
      return this.#mine && !this.#s.#destroyed;
    }

    /** The connection is over: nothing from it reaches the stream again. */
    #end(): void {
      this.#mine = false;
      this.#s.#conn = undefined;
    }

    expand(template: string, encode?: (value: string) => string): string {
      return this.#s.#expand(template, encode);
    }

    headerMetadata(): [string, string][] {
      const out: [string, string][] = [];
      for (const [name, header] of this.#s.#headerNames()) {
        const value = this.#s.#metadata.get(name);
        if (value !== undefined) out.push([header, value]);
      }
      return out;
    }

    receivedHeader(header: string, value: string): void {
      for (const [name, h] of this.#s.#headerNames()) if (h.toLowerCase() === header) this.#s.#metadata.set(name, value);
    }

    state(state: number): boolean {
      return this.#live() && this.#s.#event(state) === Ret.OK && this.#live();
    }

    rx(payload: Uint8Array, flags: number): boolean {
      if (!this.#live()) return false;
      const s = this.#s;
      const ret = s.#call(() => s.#handlers.onRx?.(payload, flags));
      s.#apply(ret);
      return ret === Ret.OK && this.#live();
    }

    tx(maxLength: number): TxPull {
      if (!this.#live()) return "stop";
      const s = this.#s;
      let pulled: { payload: Uint8Array; flags: number } | undefined;
      const out = s.#call(() => {
        const r = s.#handlers.onTx?.(maxLength) ?? Ret.TX_DONT_SEND;
        if (typeof r === "number") return r;
        pulled = r;
        return Ret.OK;
      });
      s.#apply(out);
      if (!this.#live() || out < 0) return "stop";
      if (out === Ret.TX_DONT_SEND || !pulled) return "none";
      if (pulled.payload.length > maxLength) throw new SSError("bad-tx", `${s.streamtype}: onTx gave ${pulled.payload.length} bytes, more than ${maxLength}`);
      if (pulled.flags & RxFlag.EOM) s.#txLength = undefined;
      return pulled;
    }

    established(info: { readonly timings: ConnectTimings; readonly peer?: string }): void {
      if (!this.#live()) return;
      const s = this.#s;
      s.#failures = 0;
      s.#established = true;
      s.#sequence = "connected";
      s.#timings = info.timings;
      s.#peer = info.peer;
    }

    transactionDone(): void {
      if (this.#live()) this.#s.cancelTimeout();
    }

    perf(extra: Record<string, unknown>): boolean {
      if (!this.#live() || !this.#s.#policy.flag("perf")) return true;
      return this.rx(utf8Encode(this.#s.#perfReport(extra)), RxFlag.PERF_JSON | RxFlag.SOM | RxFlag.EOM);
    }

    failed(error: HostError): void {
      if (!this.#live()) return;
      this.#end();
      const s = this.#s;
      s.#env.host.log(`${s.streamtype}: ${error.kind}: ${error.message}`);
      if (s.#established) {
        s.#sequence = "idle";
        s.#connectionEnded(false);
      } else {
        s.#attemptFailed(failureState(error.kind));
      }
    }

    closed({ complete, retryAfterMs }: { readonly complete: boolean; readonly retryAfterMs?: number }): void {
      if (!this.#live()) return;
      this.#end();
      this.#s.#sequence = "idle";
      this.#s.#connectionEnded(complete, false, retryAfterMs);
    }
  };

  /** JSON perf report for a connection, in the shape of lws' conmon report. */
  #perfReport(extra: Record<string, unknown>): string {
    const t = this.#timings;
    const us = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * 1000));
    return JSON.stringify({ peer: this.#peer, dns_us: us(t.dnsMs), sockconn_us: us(t.tcpMs), tls_us: us(t.tlsMs), ...extra });
  }
}

function failureState(kind: HostErrorKind): number {
  return kind === "tls-auth" ? State.AUTH_FAILED : State.UNREACHABLE;
}
