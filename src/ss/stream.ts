// A Secure Stream: the app's handle. It owns the state machine (every
// transition checked), the transaction the app asked for, the retry and
// backoff sequencing, the stream timeout and the metadata; the protocol
// binding owns the wire. The rules are in docs/states.md.

import type { Host, ConnectOptions, ConnectTimings, ConnectVia } from "../host.js";
import { parseSocks5Proxy } from "../wire/socks5/index.js";
import { BLOB } from "../host.js";
import type { StreamType } from "../policy/reader.js";
import type { ProtocolBinding, Connection, StreamLink, TxPull, ConnectionEnd } from "../protocols/binding.js";
import { State, RxFlag, Ret, isNextState, isPassThrough, stateName, type HandlerReturn } from "./states.js";
import { decideRetry } from "./retry.js";
import { SSError } from "./errors.js";
import { utf8Encode } from "../util/utf8.js";
import { hasCrLfNul, hasLoneSurrogate, hasNotHostName } from "../util/chars.js";

/**
 * What an app can do with a stream, local (SecureStream) or through a
 * proxy (SspcStream, src/sspc): the same calls, the same handlers.
 */
export interface StreamApi {
  readonly streamtype: string;
  readonly user: unknown;
  readonly state: number;
  readonly destroyed: boolean;
  requestTx(): HandlerReturn;
  requestTxLength(length: number): HandlerReturn;
  connect(): HandlerReturn;
  setMetadata(name: string, value: string): void;
  getMetadata(name: string): string | undefined;
  startTimeout(ms?: number): void;
  cancelTimeout(): void;
  destroy(): void;
}

export interface StreamHandlers<S extends StreamApi = SecureStream> {
  /** A state change; `ack` is protocol-specific (0 mostly). */
  onState?(state: number, ack: number, stream: S): HandlerReturn | void;
  /** Received payload with RxFlag bits (SOM, EOM, ...). */
  onRx?(payload: Uint8Array, flags: number, stream: S): HandlerReturn | void;
  /**
   * Payload to send, at most maxLength bytes, with flags SOM/EOM; or a
   * return code (TX_DONT_SEND...). `flags` has SOM when this call starts a
   * message: a message that is sent again (a retry) starts from its first byte.
   */
  onTx?(maxLength: number, flags: number, stream: S): { payload: Uint8Array; flags: number } | HandlerReturn;
}

/** What the stream needs from its owner (the SecureStreams context). */
export interface StreamEnvironment {
  readonly host: Host;
  readonly responseTimeoutMs: number;
  /**
   * The connect options of each streamtype whose options depend on nothing
   * but its policy (no metadata in the endpoint, no client certificate from
   * the blobs): made once, frozen, and the same object for all its streams,
   * which is also what a binding's pool compares first. Kept as long as the
   * StreamType is (see SecureStreams).
   */
  readonly connectOptions: WeakMap<StreamType, ConnectOptions>;
  binding(protocol: string): ProtocolBinding | undefined;
  /** An illegal transition was attempted: a bug. */
  bug(message: string): void;
  /** A handler threw: logged; the stream is being destroyed. */
  threw(stream: SecureStream, error: unknown): void;
  /** The stream is gone (after DESTROYING). */
  forget(stream: SecureStream): void;
  /** Whether the system lets this stream connect now (src/system). */
  mayConnect(stream: SecureStream): boolean;
  /** Not yet: `connect` is called when the stream may. */
  wait(stream: SecureStream, connect: () => void): void;
}

/** Longest metadata value accepted (set by the app or captured from a response), in characters. */
export const MAX_METADATA_LENGTH = 4096;
/** Connect (DNS + TCP + TLS) must finish within this, unless the policy's timeout_ms is shorter. */
export const CONNECT_TIMEOUT_MS = 15000;
/** No reconnect comes sooner than this after the previous attempt, whatever the policy's backoff says. */
export const MIN_RECONNECT_MS = 500;
/** Longest delay a host timer takes (the host contract's u32). */
export const MAX_TIMER_MS = 0xffffffff;

// #flags bits
/** CONNECTED was reported and no DISCONNECTED since. */
const DANGLING = 1;
/** The app asked for a transaction (requestTx) that has not finished. */
const PENDING = 2;
/** The app asked for a connection (connect(), or nailed_up): reconnect when it ends. */
const WANTED = 4;
const DESTROYED = 8;
/** destroy() or DESTROY_ME from inside a handler: applied when the outermost handler returns. */
const DESTROY_SOON = 16;
/** DISCONNECT_ME from inside a handler: applied when the outermost handler returns. */
const DISCONNECT_SOON = 32;

/** The handlers of a destroyed stream. */
const NO_HANDLERS: StreamHandlers = Object.freeze({});

/** The stream's side of its link, beyond what the binding sees. */
interface LinkControl extends StreamLink {
  attach(conn: Connection): void;
  requestTx(): void;
  /** Makes the link inert and closes its connection: nothing from it reaches the stream again. */
  kill(): void;
}

export class SecureStream implements StreamApi {
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
  #flags = 0;
  /** Failed attempts since the last finished transaction (or connect()). */
  #failures = 0;
  /** The connection being made or in use. */
  #link: LinkControl | undefined;
  #retryTimer: unknown;
  #timeoutTimer: unknown;
  #txLength: number | undefined;
  #depth = 0;
  /** What the context keeps of its streamtypes while a stream is alive (see SecureStreams). */
  readonly #types: unknown;

  constructor(env: StreamEnvironment, policy: StreamType, handlers: StreamHandlers, user?: unknown, types?: unknown) {
    this.#env = env;
    this.#policy = policy;
    this.#types = types;
    this.#handlers = handlers;
    this.streamtype = policy.name;
    this.user = user;
  }

  /** The last state reported (0 before CREATING). */
  get state(): number { return this.#state; }
  get destroyed(): boolean { return (this.#flags & DESTROYED) !== 0; }

  /** Called once by the context after construction. */
  start(): void {
    if (this.#policy.flag("nailed_up")) this.#flags |= WANTED;
    if (this.#event(State.CREATING) !== Ret.OK) return;
    // nailed_up connects at once, without the POLL of an on-demand connect
    if (this.#flags & WANTED) {
      this.#later(() => {
        if (this.#flags & WANTED && !this.#link && this.#retryTimer === undefined) this.#open();
      });
    }
  }

  // ---- the app's API ----

  /**
   * Asks for a transaction: connects first if need be (POLL, CONNECTING...),
   * or asks the connection for more (onTx is called again). Returns Ret.OK,
   * so that a handler can `return stream.requestTx()`.
   */
  requestTx(): HandlerReturn {
    if (this.destroyed) return Ret.OK;
    this.#flags |= PENDING;
    if (this.#link) this.#link.requestTx();
    else if (this.#retryTimer === undefined) this.#kick();
    // while backing off, the retry carries the transaction
    return Ret.OK;
  }

  /** Like requestTx, announcing the payload length (HTTP Content-Length). */
  requestTxLength(length: number): HandlerReturn {
    if (!(Number.isSafeInteger(length) && length >= 0)) throw new SSError("bad-argument", `bad tx length ${length}`);
    this.#txLength = length;
    return this.requestTx();
  }

  /**
   * Connects now, starting the retry count afresh, and keeps reconnecting
   * (with backoff) when the connection ends, until DISCONNECT_ME or
   * ALL_RETRIES_FAILED. A transaction starts when requestTx() asks for one.
   */
  connect(): HandlerReturn {
    if (this.destroyed) return Ret.OK;
    this.#flags |= WANTED;
    this.#failures = 0;
    this.#clearRetry();
    if (!this.#link) this.#open();
    return Ret.OK;
  }

  /**
   * Sets a metadata value the policy declares. Refused (SSError
   * "bad-metadata"): CR, LF or NUL (they would inject into headers and
   * URLs), a lone UTF-16 surrogate (no encoding exists for it), more than
   * MAX_METADATA_LENGTH characters, and, for a name the endpoint uses,
   * anything but host name characters.
   */
  setMetadata(name: string, value: string): void {
    const declared = this.#declared(name);
    if (!declared) throw new SSError("unknown-metadata", `${this.streamtype}: the policy declares no metadata "${name}"`);
    const why = metadataFault(value, this.#inEndpoint(name));
    if (why) throw new SSError("bad-metadata", `${this.streamtype}: metadata "${name}" ${why}`);
    this.#metadata.set(name, value);
  }

  getMetadata(name: string): string | undefined {
    return this.#metadata.get(name);
  }

  /** Reports TIMEOUT after ms (0: the policy's timeout_ms; no-op if neither). */
  startTimeout(ms = 0): void {
    const wait = ms || (this.#policy.number("timeout_ms") ?? 0);
    this.cancelTimeout();
    if (!wait || this.destroyed) return;
    this.#timeoutTimer = this.#env.host.setTimer(Math.min(wait, MAX_TIMER_MS), () => {
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
    if (this.destroyed) return;
    if (this.#depth > 0) {
      // inside one of our own callbacks: finish it first
      this.#flags |= DESTROY_SOON;
      return;
    }
    this.#flags |= DESTROYED;
    const link = this.#link;
    this.#link = undefined;
    link?.kill();
    this.#clearRetry();
    this.cancelTimeout();
    if (this.#flags & DANGLING) this.#report(State.DISCONNECTED);
    if (this.#state !== 0) this.#report(State.DESTROYING);
    this.#env.forget(this);
    // Nothing calls a handler after this. Let go of them (and of whatever the
    // app's closures hold): XS keeps the most recent instance of a class with
    // private methods reachable until the next one is made, so a destroyed
    // stream, or the connection whose link points at it, can outlive destroy().
    this.#handlers = NO_HANDLERS;
  }

  // ---- sequencing ----

  /** A transaction is wanted and there is no connection: POLL, then connect. */
  #kick(): void {
    if (this.#state !== State.POLL && this.#event(State.POLL) !== Ret.OK) return;
    if (this.#flags & PENDING && !this.#link && this.#retryTimer === undefined && !this.destroyed) this.#open();
  }

  #open(): void {
    if (!this.#env.mayConnect(this)) {
      // before the system is OPERATIONAL: the connection waits (docs/system.md)
      this.#env.wait(this, () => {
        if (this.#flags & (PENDING | WANTED) && !this.destroyed && !this.#link && this.#retryTimer === undefined) this.#open();
      });
      return;
    }
    const link = new SecureStream.#Link(this);
    this.#link = link;
    // the handler may set metadata, call connect() or answer DISCONNECT_ME
    if (this.#event(State.CONNECTING) !== Ret.OK || this.#link !== link) return;
    const binding = this.#env.binding(this.#policy.protocol);
    if (!binding) {
      link.ended({ reason: `no binding for protocol ${this.#policy.protocol}`, local: true });
      return;
    }
    let options: ConnectOptions;
    try {
      options = this.#connectOptions();
    } catch (e) {
      if (!(e instanceof SSError)) throw e;
      // missing credentials will not appear by retrying: the app provides them and asks again
      link.ended({ reason: e.message, local: true, error: e.code === "missing-blob" ? "tls-auth" : undefined });
      return;
    }
    link.attach(binding.open(link, options));
  }

  #connectOptions(): ConnectOptions {
    const p = this.#policy;
    const known = this.#env.connectOptions.get(p);
    if (known) return known;
    const template = p.string("endpoint") ?? "";
    const host = this.#expand(template);
    // metadata is checked when it is set or captured; this stands behind it: a server never names an endpoint
    if (host !== template && hasNotHostName(host)) throw new SSError("bad-metadata", `endpoint "${host}" is not a host name`);
    if (!host) throw new SSError("bad-policy", `the endpoint "${template}" is empty: set the metadata it names`);
    const port = p.number("port");
    if (!port) throw new SSError("bad-policy", "the policy gives no port");
    const policyTimeout = p.number("timeout_ms");
    const timeoutMs = policyTimeout ? Math.min(policyTimeout, CONNECT_TIMEOUT_MS) : CONNECT_TIMEOUT_MS;
    // the streamtype's own via-socks5, else the policy's
    const socks = p.string("via-socks5") ?? p.policyViaSocks5;
    let via: ConnectVia | undefined;
    if (socks) {
      const socks5 = parseSocks5Proxy(socks);
      if (!socks5) throw new SSError("bad-policy", `via-socks5 "${socks}" is not [user:pass@]host:port`);
      via = { socks5 };
    }
    // the policy's alone: the same for every stream of this streamtype
    const fixed = host === template && p.number("client_cert") === undefined;
    const made = this.#env.connectOptions;
    if (!p.flag("tls")) return kept(fixed && made, p, via ? { host, port, timeoutMs, via } : { host, port, timeoutMs });
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
    const tls = { serverName: host, ca, clientCert, clientKey };
    return kept(fixed && made, p, via ? { host, port, timeoutMs, tls, via } : { host, port, timeoutMs, tls });
  }

  /**
   * The link's connection is over. Reports DISCONNECTED (or, before
   * CONNECTED, UNREACHABLE or AUTH_FAILED), then decides: retry an
   * interrupted transaction with backoff, connect again for a transaction
   * that waits, reconnect a wanted connection, or give up (docs/states.md).
   */
  #ended(link: LinkControl, end: ConnectionEnd): void {
    if (this.#link === link) this.#link = undefined;
    if (end.reason) this.#env.host.log(`${this.streamtype}: ${end.reason}`);
    const wasUp = (this.#flags & DANGLING) !== 0;
    const authFailed = !wasUp && (end.error === "tls-auth" || end.error === "proxy-auth" || end.authFailed === true);
    const report = wasUp ? State.DISCONNECTED : authFailed ? State.AUTH_FAILED : end.local ? 0 : State.UNREACHABLE;
    if (report && this.#event(report) !== Ret.OK) return;
    if (authFailed) {
      // credentials will not get better by retrying: the app refreshes them and asks again
      this.#flags &= ~(PENDING | WANTED);
      this.#failures = 0;
      this.#txLength = undefined;
      return;
    }
    if (end.local) return this.#giveUp();
    if (!end.interrupted && wasUp) {
      // an orderly end: a transaction that waits gets a new connection at once
      if (this.#flags & PENDING) this.#kick();
      else if (this.#flags & WANTED) this.#backoff();
      return;
    }
    if (this.#flags & PENDING && end.interrupted && !end.replayable) {
      this.#env.host.log(`${this.streamtype}: not sent again: the server may have acted on it; requestTx() sends it anew`);
      return this.#giveUp();
    }
    if (!(this.#flags & (PENDING | WANTED))) return;
    // opportunistic retries nothing by itself, except what a server asked to get again later (as lws)
    if (this.#policy.flag("opportunistic") && end.retryAfterMs === undefined) return this.#giveUp();
    this.#backoff(end.retryAfterMs);
  }

  /** Schedules the next attempt after at least `minDelayMs`, or gives up when the retry policy says so. */
  #backoff(minDelayMs = 0): void {
    const decision = decideRetry(this.#policy.retry, ++this.#failures, () => this.#env.host.random());
    if (!decision.retry) return this.#giveUp();
    const delay = Math.min(Math.max(decision.delayMs, minDelayMs, MIN_RECONNECT_MS), MAX_TIMER_MS);
    this.#retryTimer = this.#env.host.setTimer(delay, () => {
      this.#retryTimer = undefined;
      if (!this.destroyed && !this.#link) this.#open();
    });
  }

  /** Nothing more is tried until the app asks: ALL_RETRIES_FAILED. */
  #giveUp(): void {
    this.#flags &= ~(PENDING | WANTED);
    this.#failures = 0;
    this.#txLength = undefined;
    this.#event(State.ALL_RETRIES_FAILED);
  }

  #clearRetry(): void {
    if (this.#retryTimer !== undefined) this.#env.host.clearTimer(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  /** DISCONNECT_ME: drop the connection, the transaction and any retry; the stream stays, idle. */
  #disconnect(): void {
    this.#flags &= ~(PENDING | WANTED | DISCONNECT_SOON);
    this.#txLength = undefined;
    this.#clearRetry();
    const link = this.#link;
    this.#link = undefined;
    link?.kill();
    if (this.#flags & DANGLING) this.#event(State.DISCONNECTED);
  }

  // ---- reporting ----

  /**
   * Checks and reports a state; applies what the handler returns. Returns
   * Ret.OK, or what stops the caller: DESTROY_ME (destroyed or about to be)
   * or DISCONNECT_ME.
   */
  #event(state: number, ack = 0): HandlerReturn {
    if (this.destroyed && state !== State.DESTROYING && state !== State.DISCONNECTED) return Ret.DESTROY_ME;
    // isLegalTransition(), with the pass-through test made once for here and #report
    const through = isPassThrough(state);
    if (!through && !isNextState(this.#state, state)) {
      this.#env.bug(`${this.streamtype}: illegal state transition ${stateName(this.#state)} -> ${stateName(state)}`);
      this.destroy();
      return Ret.DESTROY_ME;
    }
    const ret = this.#report(state, ack, through);
    this.#apply(ret);
    if (this.#flags & (DESTROYED | DESTROY_SOON)) return Ret.DESTROY_ME;
    return ret === Ret.DISCONNECT_ME || this.#flags & DISCONNECT_SOON ? Ret.DISCONNECT_ME : Ret.OK;
  }

  #report(state: number, ack = 0, through = isPassThrough(state)): HandlerReturn {
    if (!through) this.#state = state;
    if (state === State.CONNECTED) this.#flags |= DANGLING;
    if (state === State.DISCONNECTED) this.#flags &= ~DANGLING;
    // #call's work without its closure: a stream reports about seven states per transaction
    const handlers = this.#handlers;
    if (!handlers.onState) return Ret.OK;
    this.#depth++;
    try {
      return handlers.onState(state, ack, this) ?? Ret.OK;
    } catch (e) {
      this.#env.threw(this, e);
      return Ret.DESTROY_ME;
    } finally {
      this.#depth--;
    }
  }

  /**
   * Runs a handler, noting that we are inside it (destroy() and what
   * handlers return wait for the outermost one). A handler that throws
   * ends its own stream, never the runtime: the error is logged and the
   * stream destroyed.
   */
  #call(f: () => HandlerReturn | void): HandlerReturn {
    this.#depth++;
    try {
      return f() ?? Ret.OK;
    } catch (e) {
      this.#env.threw(this, e);
      return Ret.DESTROY_ME;
    } finally {
      this.#depth--;
    }
  }

  /** Applies a handler's return, once no handler of this stream is running. */
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

  #inEndpoint(name: string): boolean {
    return (this.#policy.string("endpoint") ?? "").includes(`\${${name}}`);
  }

  #expand(template: string, encode: (value: string) => string = (v) => v): string {
    // each "${name}" (name without "}") becomes the metadata's value; an unclosed "${" stays as it is
    let open = template.indexOf("${");
    if (open < 0) return template; // most endpoints and URLs name no metadata
    let out = "";
    let from = 0;
    for (; open >= 0; open = template.indexOf("${", from)) {
      const close = template.indexOf("}", open + 2);
      if (close < 0) break;
      out += template.slice(from, open) + encode(this.#metadata.get(template.slice(open + 2, close)) ?? "");
      from = close + 1;
    }
    return out + template.slice(from);
  }

  /** Runs f from the timer queue: keeps connects out of the caller's stack. */
  #later(f: () => void): void {
    this.#env.host.setTimer(0, () => {
      if (!this.destroyed) f();
    });
  }

  /**
   * The binding's view of a stream, one per connection, inert once that
   * connection is not the stream's any more. A class rather than an object
   * of closures: on XS its methods exist once, on the prototype, where 13
   * closures cost ~160 slots per connection.
   */
  static readonly #Link = class implements LinkControl {
    readonly #s: SecureStream;
    #conn: Connection | undefined;
    #live = true;
    /** CONNECTED was reported for this connection. */
    #up = false;
    #timings: ConnectTimings | undefined;
    #peer: string | undefined;

    constructor(s: SecureStream) {
      this.#s = s;
    }

    get host() { return this.#s.#env.host; }
    get policy() { return this.#s.#policy; }
    get streamtype() { return this.#s.streamtype; }
    get txLength() { return this.#s.#txLength; }
    get pending() { return this.#live && (this.#s.#flags & PENDING) !== 0; }
    get responseTimeoutMs() { return this.#s.#env.responseTimeoutMs; }

    attach(conn: Connection): void {
      if (this.#live) this.#conn = conn;
    }

    requestTx(): void {
      this.#conn?.requestTx();
    }

    kill(): void {
      this.#live = false;
      const conn = this.#conn;
      this.#conn = undefined;
      conn?.close();
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
      const s = this.#s;
      for (const [name, h] of s.#headerNames()) {
        if (h.toLowerCase() !== header) continue;
        // held to what setMetadata() takes: these values go out again with the next request
        const why = metadataFault(value, s.#inEndpoint(name));
        if (why) {
          s.#metadata.delete(name);
          s.#env.host.log(`${s.streamtype}: response header "${header}" not kept in metadata "${name}": it ${why}`);
        } else {
          s.#metadata.set(name, value);
        }
      }
    }

    connected(info: { readonly timings: ConnectTimings; readonly peer?: string }): boolean {
      if (!this.#live) return false;
      if (this.#up) return true;
      this.#up = true;
      this.#timings = info.timings;
      this.#peer = info.peer;
      this.#s.#event(State.CONNECTED);
      return this.#live;
    }

    state(state: number): boolean {
      if (this.#live) this.#s.#event(state);
      return this.#live;
    }

    rx(payload: Uint8Array, flags: number): boolean {
      if (!this.#live) return false;
      const s = this.#s;
      const handlers = s.#handlers;
      let ret: HandlerReturn = Ret.OK;
      if (handlers.onRx) {
        // #call's work without its closure, as in #report
        s.#depth++;
        try {
          ret = handlers.onRx(payload, flags, s) ?? Ret.OK;
        } catch (e) {
          s.#env.threw(s, e);
          ret = Ret.DESTROY_ME;
        } finally {
          s.#depth--;
        }
      }
      s.#apply(ret);
      return this.#live;
    }

    tx(maxLength: number, flags: number): TxPull {
      if (!this.#live) return "stop";
      const s = this.#s;
      let pulled: { payload: Uint8Array; flags: number } | undefined;
      s.#apply(s.#call(() => {
        const r = s.#handlers.onTx?.(maxLength, flags, s) ?? Ret.TX_DONT_SEND;
        if (typeof r === "number") return r;
        pulled = r;
        return Ret.OK;
      }));
      if (!this.#live) return "stop";
      if (!pulled) return "none";
      const length = pulled.payload instanceof Uint8Array ? pulled.payload.length : -1;
      if (length < 0 || length > maxLength) {
        const why = length < 0 ? "a payload that is not a Uint8Array"
          : `${length} bytes, more than the ${maxLength} asked for${s.#txLength !== undefined ? ` (requestTxLength(${s.#txLength}) announced the body's length)` : ""}`;
        this.#conn?.close();
        this.ended({ reason: `onTx gave ${why}: the transaction is abandoned`, local: true });
        return "stop";
      }
      return pulled;
    }

    done(result: number): boolean {
      if (!this.#live) return false;
      const s = this.#s;
      // finished before it is reported: a requestTx() from the handler asks for the next one
      s.#flags &= ~PENDING;
      s.#txLength = undefined;
      s.#failures = 0;
      s.cancelTimeout();
      s.#event(result);
      return this.#live;
    }

    progress(requestMet: boolean): void {
      if (!this.#live) return;
      const s = this.#s;
      s.#failures = 0;
      if (requestMet) {
        s.#flags &= ~PENDING;
        s.#txLength = undefined;
      }
    }

    perf(extra: Record<string, unknown>): boolean {
      if (!this.#live || !this.#s.#policy.flag("perf")) return this.#live;
      const t = this.#timings ?? {};
      const us = (ms: number | undefined) => (ms === undefined ? undefined : Math.round(ms * 1000));
      const report = JSON.stringify({ peer: this.#peer, dns_us: us(t.dnsMs), sockconn_us: us(t.tcpMs), tls_us: us(t.tlsMs), ...extra });
      return this.rx(utf8Encode(report), RxFlag.PERF_JSON | RxFlag.SOM | RxFlag.EOM);
    }

    fault(error: unknown): void {
      if (!this.#live) return;
      const s = this.#s;
      this.#conn?.close();
      const e = error as { name?: unknown; message?: unknown } | undefined;
      const reason = `${String(e?.name ?? "Error")}: ${String(e?.message ?? error)}`;
      s.#env.bug(`${s.streamtype}: ${reason}`);
      this.ended({ reason: `the connection is closed after an internal error (${reason})`, local: true });
    }

    ended(end: ConnectionEnd): void {
      if (!this.#live) return;
      this.#live = false;
      this.#conn = undefined;
      this.#s.#ended(this, end);
    }
  };
}

/**
 * Keeps, frozen, the connect options of a streamtype whose options are its
 * policy's alone (see StreamEnvironment.connectOptions). A function, not a
 * private method: on XS each private method is a slot in every instance.
 */
function kept(keep: WeakMap<StreamType, ConnectOptions> | false, policy: StreamType, options: ConnectOptions): ConnectOptions {
  if (!keep) return options;
  Object.freeze(options.tls?.ca);
  Object.freeze(options.tls);
  Object.freeze(options.via?.socks5);
  Object.freeze(options.via);
  keep.set(policy, Object.freeze(options));
  return options;
}

/** Why a metadata value cannot be used, or undefined when it can. */
export function metadataFault(value: unknown, inEndpoint: boolean): string | undefined {
  if (typeof value !== "string") return "must be a string";
  if (value.length > MAX_METADATA_LENGTH) return `is over ${MAX_METADATA_LENGTH} characters`;
  // they end up in headers and URLs, where they would inject
  if (hasCrLfNul(value)) return "holds CR, LF or NUL";
  // no URL or UTF-8 encoding exists for it
  if (hasLoneSurrogate(value)) return "holds a lone UTF-16 surrogate, which has no encoding";
  // never a port, a path or a URL
  if (inEndpoint && hasNotHostName(value)) return "is used in the endpoint and holds more than host name characters (letters, digits, '.', '-')";
  return undefined;
}
