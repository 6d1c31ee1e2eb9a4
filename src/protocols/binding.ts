// What a wire-protocol binding (h1, h2, ws, mqtt, raw) sees of a stream, and
// what it gives back. Every binding has the same two entry points: open a
// connection for a stream, and be told the stream has something to send.

import type { ConnectOptions, Host, HostError, ConnectTimings } from "../host.js";
import type { StreamType } from "../policy/reader.js";
import type { ProtocolName } from "../policy/keys.js";

/** What onTx gave: bytes to send, nothing this time, or stop (the stream went away). */
export type TxPull = { readonly payload: Uint8Array; readonly flags: number } | "none" | "stop";

export interface StreamLink {
  readonly host: Host;
  readonly policy: StreamType;
  readonly streamtype: string;
  /** The length announced with requestTxLength(), if any. */
  readonly txLength: number | undefined;
  /** `template` with each ${name} replaced by that metadata's value (empty if unset), passed through encode. */
  expand(template: string, encode?: (value: string) => string): string;
  /** Metadata declared with a header name and holding a value: [header name without ':', value]. */
  headerMetadata(): [string, string][];
  /** Stores a value received from the peer (a response header mapped by the policy). */
  receivedHeader(header: string, value: string): void;
  /** Reports a state to the app; false means the stream is going away: stop. */
  state(state: number): boolean;
  /** Delivers payload to the app; false means stop. */
  rx(payload: Uint8Array, flags: number): boolean;
  /** Asks the app for payload of at most maxLength bytes. */
  tx(maxLength: number): TxPull;
  /**
   * The protocol is established (h1: the first response head on this
   * connection): the retry count starts again. A transport that comes up but
   * speaks garbage must not reset it, or conceal would never run out.
   */
  established(info: { readonly timings: ConnectTimings; readonly peer?: string }): void;
  /** The transaction is over (response complete): cancels the stream timeout. */
  transactionDone(): void;
  /**
   * With "perf" in the policy, delivers the connection's timings as a
   * PERF_JSON rx; `extra` adds protocol figures. False means stop.
   */
  perf(extra: Record<string, unknown>): boolean;
  /** Connecting failed, or the connection broke before it was established. */
  failed(error: HostError): void;
  /**
   * The connection ended. `complete`: the transaction had finished, so no
   * retry is owed. `retryAfterMs`: the server asked us to come back later
   * (HTTP 503/429): back off at least this long, whatever the policy's
   * reconnection rules.
   */
  closed(how: { readonly complete: boolean; readonly retryAfterMs?: number }): void;
}

export interface Connection {
  /** The stream has something to send (or a new transaction to start). */
  requestTx(): void;
  /** Ends the connection; the binding reports nothing more. */
  close(): void;
}

export interface ProtocolBinding {
  readonly name: ProtocolName;
  open(link: StreamLink, connect: ConnectOptions): Connection;
}
