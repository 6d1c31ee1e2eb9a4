// What a wire-protocol binding (h1, h2, ws, mqtt, raw) sees of a stream, and
// what it gives back. Every binding has the same two entry points: open a
// connection for a stream, and be told the stream has something to send.
//
// The stream decides everything about retries (docs/states.md); a binding
// only says how its connection ended: an orderly end between transactions,
// or a transaction interrupted, and whether that transaction may be sent
// again.

import type { ConnectOptions, Host, HostErrorKind, ConnectTimings } from "../host.js";
import type { StreamType } from "../policy/reader.js";
import type { ProtocolName } from "../policy/keys.js";

/** What onTx gave: bytes to send, nothing this time, or stop (the stream went away or failed). */
export type TxPull = { readonly payload: Uint8Array; readonly flags: number } | "none" | "stop";

/** How a connection ended, as its binding saw it. */
export interface ConnectionEnd {
  /** Why, for the log. Absent for an orderly end between transactions. */
  readonly reason?: string;
  /** The transport failed this way (before CONNECTED it decides UNREACHABLE or AUTH_FAILED). */
  readonly error?: HostErrorKind;
  /** A transaction was under way and did not finish. */
  readonly interrupted?: boolean;
  /**
   * The interrupted transaction may be sent again: none of it reached the
   * server, its method is idempotent, or the server said it did not act on
   * it (HTTP 503, 429).
   */
  readonly replayable?: boolean;
  /** The server asked to be left alone this long (HTTP 503, 429). */
  readonly retryAfterMs?: number;
  /** The fault is on this side (a request no connection can carry): retrying over the network cannot help. */
  readonly local?: boolean;
  /**
   * The server refused our credentials in its own protocol (MQTT CONNACK
   * "not authorized"): AUTH_FAILED before CONNECTED, as for "tls-auth", and no retry.
   */
  readonly authFailed?: boolean;
}

export interface StreamLink {
  readonly host: Host;
  readonly policy: StreamType;
  readonly streamtype: string;
  /** The length announced with requestTxLength() for the current transaction, if any. */
  readonly txLength: number | undefined;
  /** The app has asked for a transaction that has not finished yet. */
  readonly pending: boolean;
  /** How long a request may wait for the start of its response (the context's responseTimeoutMs). */
  readonly responseTimeoutMs: number;
  /** `template` with each ${name} replaced by that metadata's value (empty if unset), passed through encode. */
  expand(template: string, encode?: (value: string) => string): string;
  /** Metadata declared with a header name and holding a value: [header name without ':', value]. */
  headerMetadata(): [string, string][];
  /** Stores a value received from the peer (a response header mapped by the policy). */
  receivedHeader(header: string, value: string): void;
  /**
   * The transport is up (TLS verified): reports CONNECTED, once per link.
   * False means the stream is going away: stop.
   */
  connected(info: { readonly timings: ConnectTimings; readonly peer?: string }): boolean;
  /** Reports a user state (e.g. from http_resp_map); false means stop. */
  state(state: number): boolean;
  /** Delivers payload to the app; false means stop. */
  rx(payload: Uint8Array, flags: number): boolean;
  /**
   * Asks the app for payload of at most maxLength bytes; `flags` has SOM
   * when this call starts a message. More than maxLength ends the stream's
   * transaction (a local error) and gives "stop".
   */
  tx(maxLength: number, flags: number): TxPull;
  /**
   * The transaction finished with this result (QOS_ACK_REMOTE,
   * QOS_NACK_REMOTE or AUTH_FAILED): reported, the stream timeout is
   * cancelled and the retry count starts again. False means stop.
   */
  done(result: number): boolean;
  /**
   * A message-oriented binding (ws) moved a whole message, in or out: the
   * connection does useful work, so the retry count starts again. With
   * `requestMet`, a message went out and the app asked for nothing more
   * meanwhile: its requestTx() is satisfied, with no state reported (a ws
   * message has no result); the next requestTx() asks for more.
   */
  progress(requestMet: boolean): void;
  /**
   * With "perf" in the policy, delivers the connection's timings as a
   * PERF_JSON rx; `extra` adds protocol figures. False means stop.
   */
  perf(extra: Record<string, unknown>): boolean;
  /** The connection is over (the binding has closed it); nothing more comes from it. */
  ended(end: ConnectionEnd): void;
  /**
   * An exception escaped the binding's own code (a bug): logged, the
   * connection is closed and its transaction abandoned, the runtime goes
   * on. Bindings catch at every host callback and hand the error here.
   */
  fault(error: unknown): void;
}

export interface Connection {
  /** The stream has something to send (or a new transaction to start). */
  requestTx(): void;
  /** Ends the connection; the binding reports nothing more. */
  close(): void;
}

export interface ProtocolBinding {
  readonly name: ProtocolName;
  /**
   * Opens a connection for the stream. A transaction is started once the
   * transport is up if `link.pending`, and later on requestTx(). The
   * binding may report ended() before open() returns (a request that
   * cannot be made is refused before connecting).
   */
  open(link: StreamLink, connect: ConnectOptions): Connection;
}
